// SPDX-License-Identifier: MIT
/*
** tk.h: what the parts of cm-tokenize share (not a library interface: tokenize/ only).
**
**   cm-tokenize.c  main: the verbs table and cli_dispatch
**   tk_train.c     the train verb: records -> tokenizer.json (atomic)
**   tk_encode.c    the encode verb: records -> token stream or id arrays
**   tk_decode.c    the decode verb: token stream or id arrays -> records or text
**   tk_input.c     records in: the input files through RecordInput, in batches, with a reader
**                  thread that fills the next batch while the current one is encoded
**   tk_instruct.c  encode --template: an instruction record -> prompt + response, metadata
**   tk_common.c    the output file, the tokenizer with its exit status, option defaults
*/
#ifndef CM_TK_H
#define CM_TK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "util.h"
#include "cli.h"
#include "record.h"
#include "template.h"
#include "tokenize/bpe.h"

#define TK_PROG "cm-tokenize"
#define TK_BATCH_BYTES (8u << 20) /* content bytes per batch */
#define TK_BATCH_DOCS 8192        /* records per batch */
#define TK_MAX_THREADS 64
#define TK_MAX_LINE ((size_t)256 << 20)

/* The verbs (argv[0] is the verb). */
int tk_train_main(int argc, char **argv);
int tk_encode_main(int argc, char **argv);
int tk_decode_main(int argc, char **argv);

/* --- tk_common.c ------------------------------------------------------------------------- */

/* Default --threads: the number of CPUs, at most 8. */
int tk_default_threads(void);
/* The progress mode after -q/--progress/--no-progress: -q turns the automatic one off. */
int tk_progress_mode(const Cli *c);
/* Open -o FILE (NULL or "-": stdout). A binary stream refuses a terminal. Returns the fd, or
** -1 after a message, with *status CM_EIO (cannot create) or CM_EUSAGE (terminal). */
int tk_open_output(const char *path, int binary, int *status);
/* Close what tk_open_output opened (stdout stays). Returns CM_OK or CM_EIO (message printed). */
int tk_close_output(int fd, const char *path);
/* Load tokenizer.json; NULL after a message, with *status CM_EIO (cannot read) or CM_EFORMAT. */
Bpe *tk_load_tokenizer(const char *path, int *status);

/* --- tk_input.c -------------------------------------------------------------------------- */

/* The input options of train and encode. */
typedef struct {
    char **files;                   /* inputs ("-" = stdin) */
    int nfiles;                     /* how many; 0 = stdin */
    int skip_bad;                   /* --on-error skip */
    size_t max_line;                /* --max-line */
    const Template *tpl;            /* encode --template: instruction records, or NULL */
    const char *field[TPL_NFIELDS]; /* --field ROLE=NAME (NULL: the default names) */
} TkInputOpts;

/* The inputs of one run, read one after the other. */
typedef struct TkInput {
    const TkInputOpts *o;
    int idx;                       /* next input to open */
    int open;                      /* ri is open */
    RecordInput ri;                /* the current input */
    int status;                    /* worst exit status so far */
    int stop;                      /* --on-error fail hit: read no more */
    uint64_t records;              /* records read, all inputs */
    uint64_t bytes;                /* input bytes consumed, all inputs */
    uint64_t bytes_done;           /* bytes of the inputs already closed */
    Buf val[TPL_NFIELDS];          /* --template: the record's field values, decoded */
    Buf prompt, response;          /* --template: the rendered example */
    const char *used[TPL_NFIELDS]; /* --template: the field that gave each role, or NULL */
    unsigned tpl_uses;             /* --template: bit r: the template has role r's placeholder */
} TkInput;

/* A batch of records: their contents (and, for encode, their metadata) back to back. With a
** template a record's text is its prompt then its response, plen[i] bytes of prompt. */
typedef struct {
    Buf text;              /* contents, back to back */
    size_t *plen;          /* per doc: prompt bytes (--template), or NULL */
    Buf meta;              /* metadata JSON objects, back to back (encode only) */
    size_t *toff, *tlen;   /* per doc: content offset, length */
    size_t *moff, *mlen;   /* per doc: meta offset, length */
    size_t n, cap;         /* docs, allocated */
    uint64_t seen_records; /* TkInput.records when the batch was complete (for progress) */
    uint64_t seen_bytes;   /* TkInput.bytes then */
} RecordBatch;

void tk_input_init(TkInput *in, const TkInputOpts *o);
/* Fill b with the next records (at most TK_BATCH_DOCS, or TK_BATCH_BYTES of content, or one
** record if larger), with metadata when with_meta. Returns the number read; 0 at the end of
** all inputs, after a bad record under --on-error fail, or once a stop signal came.
** With o->tpl each record is an instruction record rendered by the template (tk_instruct.c);
** one it cannot render is a bad record, reported like a malformed line. */
size_t tk_input_batch(TkInput *in, RecordBatch *b, int with_meta);
void tk_input_close(TkInput *in);
void tk_batch_free(RecordBatch *b);

/* A reader thread: parses the next batch while the current one is worked on. */
typedef struct {
    TkInput *in;         /* the inputs (touched only by the reader thread until joined) */
    int with_meta;       /* build metadata */
    RecordBatch slot[2]; /* double buffer */
    int full[2];         /* slot holds a batch not yet released (a 0-document one = end) */
    int fill, take;      /* next slot to fill / to take */
    int quit;            /* main asks the reader to stop */
    int running;         /* the thread was started */
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} BatchReader;

/* Start the thread. Returns 0, or -1 when it could not be started (then read in place). */
int tk_reader_start(BatchReader *r, TkInput *in, int with_meta);
/* Wait for the next batch (0 documents at the end). */
RecordBatch *tk_reader_take(BatchReader *r);
/* Hand the batch taken last back to the reader. */
void tk_reader_release(BatchReader *r);
/* Stop and join the thread (it ends by itself at the end of the input); free the batches. */
void tk_reader_stop(BatchReader *r);

/* --- tk_instruct.c ----------------------------------------------------------------------- */

/* The default field names of each role (NULL-terminated), in the order they are tried. */
extern const char *const *const tk_field_defaults[TPL_NFIELDS];
/* Render record r (an instruction record) with o's template into in->prompt / in->response.
** 0, or -1 with why (the message) and *byte (offset of the fault in the line). */
int tk_instruct_render(TkInput *in, const Record *r, char *why, size_t whylen, size_t *byte);
/* Does the metadata of an instruction record leave field f out? Those the template rendered,
** and content, prompt, response, n_bytes, content_hash. */
int tk_instruct_drops(const TkInput *in, const JsonField *f);

#endif
