// SPDX-License-Identifier: MIT
/*
** cm-tokenize: train, encode and decode byte-level BPE (Hugging Face tokenizer.json compatible).
**
**   cm-tokenize train  --vocab-size N -o tok.json [FILE...]    JSONL records -> tokenizer.json
**   cm-tokenize encode -t tok.json [--jsonl] [FILE...]        JSONL records -> token stream
**   cm-tokenize decode -t tok.json [FILE...]                  token stream / id arrays -> JSONL
**
** Records are read in batches (at most BATCH_BYTES of content, or one record if larger) that the
** threads share; output keeps the input order, so any --threads gives the same bytes.
*/
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util.h"
#include "io.h"
#include "json.h"
#include "record.h"
#include "hash.h"
#include "tokstream.h"
#include "tokenize/bpe.h"
#include "tokenize/train.h"

#define VERSION "1.0"
#define BATCH_BYTES (8u << 20)      /* content bytes per batch */
#define BATCH_DOCS 8192             /* records per batch */
#define MAX_THREADS 64

/* ------------------------------------------------------------------------------------------ */
/* Usage                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static const char usage_main[] =
    "usage: cm-tokenize train  --vocab-size N -o tok.json [options] [FILE...]\n"
    "       cm-tokenize encode -t tok.json [--jsonl] [options] [FILE...]\n"
    "       cm-tokenize decode -t tok.json [--raw] [FILE...]\n"
    "       cm-tokenize VERB --help | --version\n";

static const char help_main[] =
    "Byte-level BPE as GPT-2 and Hugging Face `tokenizers` define it, for codemill JSONL records.\n"
    "\n"
    "  train    learn a tokenizer.json from the `content` of JSONL records\n"
    "  encode   JSONL records -> binary token stream for cm-shards (or --jsonl id arrays)\n"
    "  decode   token stream or id arrays -> JSONL records (or --raw text)\n"
    "\n"
    "FILE '-' or none means stdin. `cm-tokenize VERB --help` tells more.\n"
    "Exit status: 0 ok, 1 some input bad (good records kept), 2 usage, 3 I/O error,\n"
    "4 tokenizer file wrong or damaged, 5 internal error, 141 output pipe closed.\n";

static const char help_train[] =
    "usage: cm-tokenize train --vocab-size N -o tok.json [options] [FILE...]\n"
    "\n"
    "Learn byte-level BPE merges from the `content` field of JSONL records (Hugging Face's\n"
    "BpeTrainer algorithm; ties go to the pair with the smaller ids) and write a tokenizer.json\n"
    "that Hugging Face `tokenizers` loads as is. The alphabet always holds all 256 bytes, so\n"
    "every input encodes losslessly.\n"
    "\n"
    "  --vocab-size N        total ids (specials and 256 byte tokens included), 257..2^24\n"
    "  -o, --output FILE     where to write the tokenizer.json (required; written atomically)\n"
    "  --min-frequency F     do not merge pairs seen fewer than F times (default 0)\n"
    "  --special LIST        comma-separated special tokens, ids 0.. (default <|endoftext|>;\n"
    "                        --special '' for none)\n"
    "  --threads N           counting threads (default: number of CPUs, at most 8)\n"
    "  --max-words N         cap on distinct words kept: checked after each 8 MiB batch; above\n"
    "                        it the rarest are dropped down to N/2 (a word dropped and seen\n"
    "                        again restarts from 0: approximate counts; default 0 = no cap)\n"
    "  --on-error skip|fail  malformed record: skip it, or stop (default fail); exit 1 either way\n"
    "  --max-line SIZE       longest accepted JSONL line (default 256M)\n"
    "  --progress, --no-progress   progress on stderr (default: when stderr is a terminal)\n"
    "\n"
    "Memory: the distinct words with their counts (about 70 bytes + the word each; at most\n"
    "--max-words of them plus one batch's new words), one batch of input (8 MiB), then for the\n"
    "merges about 20 bytes per symbol of the distinct words. Output does not depend on --threads.\n";

static const char help_encode[] =
    "usage: cm-tokenize encode -t tok.json [options] [FILE...]\n"
    "\n"
    "Encode the `content` of each JSONL record. Default output: the binary token stream of\n"
    "docs/FORMATS.md (tokenizer.json inside; per document the record's other fields plus\n"
    "n_bytes and content_hash as metadata, then the ids with the end-of-text id last).\n"
    "\n"
    "  -t, --tokenizer FILE  a byte-level BPE tokenizer.json (ours or Hugging Face's)\n"
    "  -o, --output FILE     output file (default stdout; binary output refuses a terminal)\n"
    "  --jsonl               write one JSON array of ids per record instead (no end-of-text)\n"
    "  --eot TOKEN           end-of-text token (default <|endoftext|>, else the first special)\n"
    "  --threads N           encoding threads (default: number of CPUs, at most 8); output order\n"
    "                        and bytes do not depend on it\n"
    "  --on-error skip|fail  malformed record: skip it, or stop (default fail); exit 1 either way\n"
    "  --max-line SIZE       longest accepted JSONL line (default 256M)\n"
    "  --progress, --no-progress\n"
    "\n"
    "Memory: one batch of records (8 MiB of content, or the longest record) with its ids, plus a\n"
    "word cache per thread (at most 2^18 words).\n";

static const char help_decode[] =
    "usage: cm-tokenize decode -t tok.json [options] [FILE...]\n"
    "\n"
    "Decode ids back to text. Each input is either a binary token stream (detected by its magic\n"
    "CMTOKSTR; every document becomes a JSONL record: its metadata fields plus `content`, the\n"
    "trailing end-of-text id removed) or lines each holding a JSON array of ids (as written by\n"
    "encode --jsonl; each becomes {\"content\":...}).\n"
    "\n"
    "  -t, --tokenizer FILE  the tokenizer.json (for a token stream, default: the one inside)\n"
    "  -o, --output FILE     output file (default stdout)\n"
    "  --raw                 write only the decoded bytes, documents back to back\n"
    "\n"
    "Memory: one document and its ids.\n";

/*
** Print the short usage on stderr and return CM_EUSAGE.
*/
static int usage_error(const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vreport("", fmt, ap);
        va_end(ap);
    }
    fputs(usage_main, stderr);
    fprintf(stderr, "Try 'cm-tokenize VERB --help'.\n");
    return CM_EUSAGE;
}

/* ------------------------------------------------------------------------------------------ */
/* Options shared by the verbs                                                                 */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *tokenizer;   /* -t */
    const char *output;      /* -o */
    int jsonl;               /* encode --jsonl */
    int raw;                 /* decode --raw */
    const char *eot;         /* --eot */
    int threads;             /* --threads */
    int skip_bad;            /* --on-error skip */
    size_t max_line;         /* --max-line */
    int progress;            /* -1 auto, 0, 1 */
    long vocab_size;         /* train --vocab-size */
    uint64_t min_frequency;  /* train --min-frequency */
    const char *special;     /* train --special */
    uint64_t max_words;      /* train --max-words */
    char **files;            /* inputs ("-" = stdin) */
    int nfiles;              /* how many */
} Opts;

enum { O_JSONL = 256, O_RAW, O_EOT, O_THREADS, O_ONERR, O_MAXLINE, O_PROG, O_NOPROG, O_VOCAB,
       O_MINF, O_SPECIAL, O_MAXW, O_VERSION };

/*
** Parse argv (after the verb) into o. Returns 0, 1 when --help/--version was handled, or
** CM_EUSAGE.
*/
static int opts_parse(Opts *o, const char *verb, int argc, char **argv)
{
    static const struct option lo[] = {
        {"tokenizer", 1, 0, 't'}, {"output", 1, 0, 'o'}, {"help", 0, 0, 'h'},
        {"jsonl", 0, 0, O_JSONL}, {"raw", 0, 0, O_RAW}, {"eot", 1, 0, O_EOT},
        {"threads", 1, 0, O_THREADS}, {"on-error", 1, 0, O_ONERR}, {"max-line", 1, 0, O_MAXLINE},
        {"progress", 0, 0, O_PROG}, {"no-progress", 0, 0, O_NOPROG}, {"vocab-size", 1, 0, O_VOCAB},
        {"min-frequency", 1, 0, O_MINF}, {"special", 1, 0, O_SPECIAL}, {"max-words", 1, 0, O_MAXW},
        {"version", 0, 0, O_VERSION}, {0, 0, 0, 0}};
    int is_train = !strcmp(verb, "train"), is_enc = !strcmp(verb, "encode"), is_dec = !strcmp(verb, "decode");
    long n;
    uint64_t u;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
    o->progress = -1;
    o->max_line = (size_t)256 << 20;
    o->special = "<|endoftext|>";
    optind = 1;
    opterr = 0;
    int c, at = optind;
    while ((at = optind, c = getopt_long(argc, argv, "+t:o:h", lo, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(is_train ? help_train : is_enc ? help_encode : help_decode, stdout);
            return 1;
        case O_VERSION: printf("cm-tokenize %s\n", VERSION); return 1;
        case 't': if (is_train) goto bad; o->tokenizer = optarg; break;
        case 'o': o->output = optarg; break;
        case O_JSONL: if (!is_enc) goto bad; o->jsonl = 1; break;
        case O_RAW: if (!is_dec) goto bad; o->raw = 1; break;
        case O_EOT: if (!is_enc) goto bad; o->eot = optarg; break;
        case O_THREADS:
            if (is_dec || parse_long(optarg, 1, MAX_THREADS, &n)) return usage_error("--threads: want 1..%d, got '%s'", MAX_THREADS, optarg);
            o->threads = (int)n;
            break;
        case O_ONERR:
            if (is_dec) goto bad;
            if (!strcmp(optarg, "skip")) o->skip_bad = 1;
            else if (!strcmp(optarg, "fail")) o->skip_bad = 0;
            else return usage_error("--on-error: want skip or fail, got '%s'", optarg);
            break;
        case O_MAXLINE:
            if (is_dec || parse_size(optarg, &u) || u < 16 || u > ((uint64_t)4 << 30)) return usage_error("--max-line: bad size '%s'", optarg);
            o->max_line = (size_t)u;
            break;
        case O_PROG: o->progress = 1; break;
        case O_NOPROG: o->progress = 0; break;
        case O_VOCAB:
            if (!is_train || parse_long(optarg, 1, 1L << 24, &n)) return usage_error("--vocab-size: want 257..16777216, got '%s'", optarg);
            o->vocab_size = n;
            break;
        case O_MINF:
            if (!is_train || parse_long(optarg, 0, 1L << 62, &n)) return usage_error("--min-frequency: want a count, got '%s'", optarg);
            o->min_frequency = (uint64_t)n;
            break;
        case O_SPECIAL: if (!is_train) goto bad; o->special = optarg; break;
        case O_MAXW:
            if (!is_train || parse_size(optarg, &u)) return usage_error("--max-words: want a count, got '%s'", optarg);
            o->max_words = u;
            break;
        default:
        bad:
            if (c == '?') return usage_error("%s: unknown option or missing argument '%s'", verb, argv[at < argc ? at : argc - 1]);
            return usage_error("%s: option '%s' does not apply here", verb, argv[at < argc ? at : argc - 1]);
        }
    }
    o->files = argv + optind;
    o->nfiles = argc - optind;
    if (is_train) {
        if (!o->vocab_size) return usage_error("train: --vocab-size is required");
        if (!o->output) return usage_error("train: -o tok.json is required");
    }
    if (is_enc && !o->tokenizer) return usage_error("encode: -t tok.json is required");
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Interruption                                                                                */
/* ------------------------------------------------------------------------------------------ */

static volatile sig_atomic_t g_stop;   /* SIGINT/SIGTERM seen: finish the batch, save, exit 130 */
static char *g_tmp_path;               /* temp file to remove if we die while writing it */

/*
** First signal: ask the main loop to stop after the current batch. Second: leave at once.
*/
static void on_signal(int sig)
{
    (void)sig;
    if (g_stop) {
        if (g_tmp_path) unlink(g_tmp_path);
        _exit(CM_EINTR);
    }
    g_stop = 1;
}

/*
** Catch SIGINT and SIGTERM (see on_signal).
*/
static void signals_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/*
** Exit status for a tokenizer that failed to load: I/O problems 3, anything else 4.
*/
static int load_status(const char *err)
{
    return strstr(err, ": cannot open: ") || strstr(err, ": cannot read: ") ? CM_EIO : CM_EFORMAT;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading records in batches                                                                  */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const Opts *o;           /* options */
    int idx;                 /* current input (index into files, or 0 for stdin) */
    int open;                /* lr is open */
    int fd;                  /* its fd */
    const char *name;        /* its name */
    LineReader lr;           /* reader */
    Record rec;              /* parse space */
    int status;              /* worst exit status so far */
    int stop;                /* --on-error fail hit: read no more */
    uint64_t records;        /* records read */
    uint64_t bad;            /* records rejected */
    uint64_t bytes;          /* input bytes consumed */
} Input;

typedef struct {
    Buf text;                /* contents, back to back */
    Buf meta;                /* metadata JSON objects, back to back (encode only) */
    size_t *toff, *tlen;     /* per doc: content offset, length */
    size_t *moff, *mlen;     /* per doc: meta offset, length */
    size_t n, cap;           /* docs, allocated */
    uint64_t seen_records;   /* Input.records when the batch was complete (for progress) */
    uint64_t seen_bytes;     /* Input.bytes then */
} Batch;

/*
** Empty a batch, keeping its memory.
*/
static void batch_reset(Batch *b)
{
    buf_reset(&b->text);
    buf_reset(&b->meta);
    b->n = 0;
}

/*
** Free a batch's memory.
*/
static void batch_free(Batch *b)
{
    buf_free(&b->text);
    buf_free(&b->meta);
    free(b->toff);
    free(b->tlen);
    free(b->moff);
    free(b->mlen);
}

/*
** Append the record's metadata: its fields except content (raw JSON), then n_bytes and
** content_hash (computed here; input fields of those names are replaced).
*/
static void meta_build(Buf *m, const Record *r)
{
    buf_addc(m, '{');
    int first = 1;
    for (int i = 0; i < r->obj.n; i++) {
        const JsonField *f = &r->obj.f[i];
        if ((f->klen == 7 && !memcmp(f->key, "content", 7)) || (f->klen == 7 && !memcmp(f->key, "n_bytes", 7))
            || (f->klen == 12 && !memcmp(f->key, "content_hash", 12)))
            continue;
        if (!first) buf_addc(m, ',');
        first = 0;
        buf_addc(m, '"');
        buf_add(m, f->key, f->klen);
        buf_add(m, "\":", 2);
        if (f->type == JSON_STRING) buf_addc(m, '"');
        buf_add(m, f->raw, f->rawlen);
        if (f->type == JSON_STRING) buf_addc(m, '"');
    }
    char hex[17];
    hash_hex(hash64(r->content.s, r->content.n), hex);
    buf_addf(m, "%s\"n_bytes\":%zu,\"content_hash\":\"%s\"}", first ? "" : ",", r->content.n, hex);
}

/*
** Open the next input; returns 1, or 0 when there are no more. A file that cannot be opened is
** reported (exit status 3 at the end) and skipped.
*/
static int input_next_file(Input *in)
{
    int nf = in->o->nfiles;
    while (in->idx < (nf ? nf : 1)) {
        const char *f = nf ? in->o->files[in->idx] : "-";
        in->idx++;
        if (!strcmp(f, "-")) { in->fd = 0; in->name = "stdin"; }
        else {
            in->fd = open(f, O_RDONLY | O_CLOEXEC);
            if (in->fd < 0) {
                (void)error("%s: cannot open: %s", f, strerror(errno));
                in->status = CM_EIO;
                continue;
            }
            in->name = f;
        }
        lr_init(&in->lr, in->fd, in->name, in->o->max_line);
        in->open = 1;
        return 1;
    }
    return 0;
}

/*
** Close the current input, if open.
*/
static void input_close(Input *in)
{
    if (!in->open) return;
    lr_free(&in->lr);
    if (in->fd > 0) close(in->fd);
    in->open = 0;
}

/*
** Fill b with the next records (content, and metadata when with_meta). Returns the number read;
** 0 at the end of all inputs (or after a fatal record with --on-error fail).
*/
static size_t input_batch(Input *in, Batch *b, int with_meta)
{
    batch_reset(b);
    while (!in->stop && !g_stop && b->n < BATCH_DOCS && b->text.len < BATCH_BYTES) {
        if (!in->open && !input_next_file(in)) break;
        char *line;
        size_t len;
        int rc = lr_next(&in->lr, &line, &len);
        if (rc == 0) {
            if (in->lr.err) in->status = CM_EIO;
            input_close(in);
            continue;
        }
        if (rc < 0) {
            if (in->lr.err) {  /* read error: message printed; go to the next input */
                in->status = CM_EIO;
                input_close(in);
                continue;
            }
            in->bad++;        /* line too long (message printed by lr_next) */
            if (in->status < CM_EDATA) in->status = CM_EDATA;
            if (!in->o->skip_bad) in->stop = 1;
            continue;
        }
        in->bytes += len + 1;
        if (len == 0 || (len == 1 && line[0] == '\r')) continue;  /* blank line */
        if (record_parse(&in->rec, line, len) != 0) {
            (void)error("%s: line %llu: byte %llu: %s", in->name, (unsigned long long)in->lr.lineno,
                 (unsigned long long)(in->lr.offset + in->rec.err_pos), in->rec.err);
            in->bad++;
            if (in->status < CM_EDATA) in->status = CM_EDATA;
            if (!in->o->skip_bad) in->stop = 1;
            continue;
        }
        in->records++;
        if (b->n == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 256;
            b->toff = xrealloc(b->toff, b->cap * sizeof *b->toff);
            b->tlen = xrealloc(b->tlen, b->cap * sizeof *b->tlen);
            b->moff = xrealloc(b->moff, b->cap * sizeof *b->moff);
            b->mlen = xrealloc(b->mlen, b->cap * sizeof *b->mlen);
        }
        b->toff[b->n] = b->text.len;
        b->tlen[b->n] = in->rec.content.n;
        buf_add(&b->text, in->rec.content.s, in->rec.content.n);
        if (with_meta) {
            b->moff[b->n] = b->meta.len;
            meta_build(&b->meta, &in->rec);
            b->mlen[b->n] = b->meta.len - b->moff[b->n];
        }
        b->n++;
    }
    b->seen_records = in->records;
    b->seen_bytes = in->bytes;
    return b->n;
}

/* --- A reader thread: parses the next batch while the current one is encoded ------------- */

typedef struct {
    Input *in;               /* the inputs (touched only by the reader thread until joined) */
    int with_meta;           /* build metadata */
    Batch slot[2];           /* double buffer */
    int full[2];             /* slot holds a batch not yet released (a 0-document one = end) */
    int fill, take;          /* next slot to fill / to take */
    int quit;                /* main asks the reader to stop */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} Reader;

/*
** Reader thread: fill free slots with batches until the end of the input (or quit).
*/
static void *reader_run(void *arg)
{
    Reader *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (r->full[r->fill] && !r->quit) pthread_cond_wait(&r->cv, &r->mu);
        int s = r->fill, quit = r->quit;
        pthread_mutex_unlock(&r->mu);
        size_t n = quit ? 0 : input_batch(r->in, &r->slot[s], r->with_meta);
        if (quit) r->slot[s].n = 0;
        pthread_mutex_lock(&r->mu);
        r->full[s] = 1;
        r->fill ^= 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        if (n == 0) return NULL;
    }
}

/*
** Wait for the next batch (0 documents at the end).
*/
static Batch *reader_take(Reader *r)
{
    pthread_mutex_lock(&r->mu);
    while (!r->full[r->take]) pthread_cond_wait(&r->cv, &r->mu);
    Batch *b = &r->slot[r->take];
    pthread_mutex_unlock(&r->mu);
    return b;
}

/*
** Hand the batch taken last back to the reader.
*/
static void reader_release(Reader *r)
{
    pthread_mutex_lock(&r->mu);
    r->full[r->take] = 0;
    r->take ^= 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* ------------------------------------------------------------------------------------------ */
/* encode                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    BpeEncoder *enc;         /* this thread's encoder */
    uint32_t *ids;           /* ids of the docs it encoded */
    size_t n, cap;           /* used, allocated */
    int failed;              /* an encode call failed */
} Worker;

typedef struct {
    const Batch *b;          /* the batch */
    Worker *w;               /* workers */
    int64_t eot;             /* id appended to each document, or -1 (--jsonl) */
    size_t next;             /* next doc to take (atomic) */
    int *who;                /* per doc: worker that encoded it */
    size_t *off, *cnt;       /* per doc: its ids in that worker's array */
} EncJob;

typedef struct { EncJob *job; int k; } EncArg;

/*
** Worker loop: take documents one at a time until the batch is done.
*/
static void *enc_run(void *arg)
{
    EncArg *a = arg;
    EncJob *j = a->job;
    Worker *w = &j->w[a->k];
    for (;;) {
        size_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (i >= j->b->n) break;
        size_t before = w->n;
        if (bpe_encoder_encode(w->enc, j->b->text.buf + j->b->toff[i], j->b->tlen[i], &w->ids, &w->n, &w->cap))
            w->failed = 1;
        if (j->eot >= 0) {
            if (w->n == w->cap) {
                w->cap = w->cap * 2 + 16;
                w->ids = xrealloc(w->ids, w->cap * sizeof *w->ids);
            }
            w->ids[w->n++] = (uint32_t)j->eot;
        }
        j->who[i] = a->k;
        j->off[i] = before;
        j->cnt[i] = w->n - before;
    }
    return NULL;
}

/*
** Open the output (-o FILE or stdout). Returns the fd or -1.
*/
static int output_open(const Opts *o, int binary)
{
    if (!o->output || !strcmp(o->output, "-")) {
        if (binary && isatty(1)) {
            error("refusing to write a binary token stream to a terminal (use -o FILE, a pipe, or --jsonl)");
            return -2;
        }
        return 1;
    }
    int fd = open(o->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) error("%s: cannot create: %s", o->output, strerror(errno));
    return fd;
}

/*
** encode: JSONL records -> token stream or id arrays. Returns the exit status.
*/
static int cmd_encode(Opts *o)
{
    char err[512];
    int rc = CM_OK, fd = -1;
    Bpe *bpe = NULL;
    Worker w[MAX_THREADS];
    EncJob job;
    Batch b = {0};
    Input in;
    Out out;
    Progress pr;
    Reader rd;
    pthread_t rth;
    int out_open = 0, use_reader = 0;
    memset(w, 0, sizeof w);
    memset(&job, 0, sizeof job);
    memset(&in, 0, sizeof in);
    memset(&rd, 0, sizeof rd);
    in.o = o;
    record_init(&in.rec);
    rd.in = &in;
    rd.with_meta = !o->jsonl;
    pthread_mutex_init(&rd.mu, NULL);
    pthread_cond_init(&rd.cv, NULL);

    bpe = bpe_load_file(o->tokenizer, err, sizeof err);
    if (!bpe) { error("%s", err); rc = load_status(err); goto done; }
    int64_t eot = bpe_eot_id(bpe);
    if (o->eot) {
        eot = bpe_token_id(bpe, o->eot, strlen(o->eot));
        if (eot < 0) { error("%s: --eot '%s' is not a token of this tokenizer", o->tokenizer, o->eot); rc = CM_EUSAGE; goto done; }
    }
    if (eot < 0 && !o->jsonl) {
        error("%s: no end-of-text token (no <|endoftext|> nor special token); name one with --eot TOKEN", o->tokenizer);
        rc = CM_EFORMAT;
        goto done;
    }
    fd = output_open(o, !o->jsonl);
    if (fd < 0) { rc = fd == -2 ? CM_EUSAGE : CM_EIO; goto done; }
    out_init(&out, fd, o->output && strcmp(o->output, "-") ? o->output : "stdout", 1 << 20);
    out_open = 1;
    progress_init(&pr, o->progress);
    size_t jlen;
    const char *json = bpe_json(bpe, &jlen);
    if (!o->jsonl) ts_write_header(&out, bpe_vocab_size(bpe), (uint32_t)eot, bpe_fingerprint(bpe), json, jlen);

    int nw = o->threads;
    for (int k = 0; k < nw; k++) w[k].enc = bpe_encoder_new(bpe);
    job.w = w;
    job.eot = o->jsonl ? -1 : eot;
    size_t jcap = 0;
    uint64_t docs = 0, tokens = 0, too_big = 0;
    Buf line = {0};
    double t0 = now_sec();
    /* With several threads a reader thread parses batch k+1 while batch k is encoded. */
    use_reader = nw > 1 && pthread_create(&rth, NULL, reader_run, &rd) == 0;
    for (;;) {
        Batch *bp = &b;
        if (use_reader) bp = reader_take(&rd);
        else if (g_stop || !input_batch(&in, &b, !o->jsonl)) break;
        if (bp->n == 0) break;
        if (bp->n > jcap) {
            jcap = bp->cap;
            job.who = xrealloc(job.who, jcap * sizeof *job.who);
            job.off = xrealloc(job.off, jcap * sizeof *job.off);
            job.cnt = xrealloc(job.cnt, jcap * sizeof *job.cnt);
        }
        job.b = bp;
        job.next = 0;
        for (int k = 0; k < nw; k++) w[k].n = 0;
        pthread_t th[MAX_THREADS];
        EncArg args[MAX_THREADS];
        int started = 0;
        size_t useful = bp->n < (size_t)nw ? bp->n : (size_t)nw;
        for (size_t k = 1; k < useful; k++) {
            args[k].job = &job;
            args[k].k = (int)k;
            if (pthread_create(&th[k], NULL, enc_run, &args[k]) != 0) break;
            started++;
        }
        args[0].job = &job;
        args[0].k = 0;
        enc_run(&args[0]);
        for (int k = 1; k <= started; k++) pthread_join(th[k], NULL);
        int failed = 0;
        for (int k = 0; k < nw; k++) failed |= w[k].failed;
        if (failed) {
            error("internal error: the pre-tokenizer failed");
            rc = CM_EINTERNAL;
            if (use_reader) reader_release(&rd);
            break;
        }
        for (size_t i = 0; i < bp->n; i++) {
            const uint32_t *ids = w[job.who[i]].ids + job.off[i];
            size_t n = job.cnt[i];
            if (o->jsonl) {
                buf_reset(&line);
                buf_addc(&line, '[');
                buf_grow(&line, n * 11 + 4);
                char *q = line.buf + line.len;
                for (size_t k = 0; k < n; k++) {
                    char num[12];
                    int l = 0;
                    uint32_t v = ids[k];
                    do { num[l++] = (char)('0' + v % 10); v /= 10; } while (v);
                    if (k) *q++ = ',';
                    while (l) *q++ = num[--l];
                }
                line.len = (size_t)(q - line.buf);
                buf_add(&line, "]\n", 2);
                out_write(&out, line.buf, line.len);
            } else {
                if (n > TS_MAX_TOKENS || bp->mlen[i] > TS_MAX_META) {  /* n counts the eot */
                    (void)error("record %llu: %zu tokens / %zu bytes of metadata exceed the token stream limits; skipped",
                                (unsigned long long)(docs + too_big + 1), n - 1, bp->mlen[i]);
                    too_big++;  /* (the reader thread owns `in` until it is joined) */
                    continue;
                }
                ts_write_doc(&out, bp->meta.buf + bp->moff[i], (uint32_t)bp->mlen[i], ids, (uint32_t)n);
            }
            docs++;
            tokens += n;
        }
        if (pr.on) {
            double dt = now_sec() - t0;
            progress_update(&pr, "%llu records, %.1f MB, %.1f MB/s", (unsigned long long)bp->seen_records,
                            bp->seen_bytes / 1e6, dt > 0 ? bp->seen_bytes / 1e6 / dt : 0.0);
        }
        if (use_reader) reader_release(&rd);
    }
    if (use_reader) {  /* stop the reader (it ends by itself at the end of the input) */
        pthread_mutex_lock(&rd.mu);
        rd.quit = 1;
        pthread_cond_broadcast(&rd.cv);
        pthread_mutex_unlock(&rd.mu);
        pthread_join(rth, NULL);
        use_reader = 0;
    }
    buf_free(&line);
    progress_end(&pr);
    if (rc == CM_EINTERNAL) goto done;
    if (!o->jsonl) ts_write_end(&out, docs, tokens);  /* also when interrupted: a clean stream */
    if (too_big && in.status < CM_EDATA) in.status = CM_EDATA;
    rc = g_stop ? CM_EINTR : in.status;
    if (g_stop) (void)error("interrupted: %llu documents written", (unsigned long long)docs);
done:
    if (out_open) {
        out_done(&out);
        if (fd > 1 && close(fd) != 0) { error("%s: cannot write: %s", o->output, strerror(errno)); rc = CM_EIO; }
    }
    for (int k = 0; k < MAX_THREADS; k++) { bpe_encoder_free(w[k].enc); free(w[k].ids); }
    free(job.who);
    free(job.off);
    free(job.cnt);
    input_close(&in);
    record_free(&in.rec);
    batch_free(&b);
    batch_free(&rd.slot[0]);
    batch_free(&rd.slot[1]);
    pthread_mutex_destroy(&rd.mu);
    pthread_cond_destroy(&rd.cv);
    bpe_free(bpe);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* decode                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct { int src; int dst; char pre[8]; size_t npre; } Feeder;

/*
** Thread: write the peeked bytes then copy src to dst (lets a pipe be sniffed then re-read).
*/
static void *feed_run(void *arg)
{
    Feeder *f = arg;
    char buf[65536];
    if (write_all(f->dst, f->pre, f->npre) == 0) {
        for (;;) {
            ssize_t r = read(f->src, buf, sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0 || write_all(f->dst, buf, (size_t)r) != 0) break;
        }
    }
    close(f->dst);
    return NULL;
}

/*
** Write one decoded document: raw, or as a JSONL record with meta's fields and content.
*/
static void decode_emit(Out *out, const Opts *o, const char *meta, size_t mlen, const Buf *text)
{
    if (o->raw) { out_write(out, text->buf, text->len); return; }
    if (meta && mlen >= 2) {
        size_t e = mlen - 1;  /* the closing brace */
        while (e > 0 && meta[e] != '}') e--;
        out_write(out, meta, e);
        if (e > 1) out_putc(out, ',');
    } else {
        out_putc(out, '{');
    }
    out_puts(out, "\"content\":");
    json_escape_out(out, text->buf ? text->buf : "", text->len);
    out_puts(out, "}\n");
}

/*
** Decode one input (fd already sniffed through a pipe feeder). Returns an exit status.
*/
static int decode_one(const Opts *o, Bpe **bpe, int fd, const char *name, int is_stream, Out *out)
{
    char err[512];
    Buf text = {0};
    int rc = CM_OK;
    if (is_stream) {
        TsReader r;
        TsDoc d;
        Bpe *own = NULL;
        if (ts_open(&r, fd, name) != 0) { error("%s", r.err); ts_close(&r); return CM_EDATA; }
        Bpe *use = *bpe;
        if (!use) {
            own = bpe_load_mem(r.hdr.json, r.hdr.json_len, name, err, sizeof err);
            if (!own) { error("%s", err); ts_close(&r); return CM_EFORMAT; }
            use = own;
        } else if (bpe_fingerprint(use) != r.hdr.fingerprint) {
            warn("%s: the stream was encoded with another tokenizer than %s; using %s", name, o->tokenizer, o->tokenizer);
        }
        int k;
        while ((k = ts_next(&r, &d)) == 1) {
            size_t n = d.n;
            if (n && d.ids[n - 1] == r.hdr.eot_id) n--;
            buf_reset(&text);
            if (bpe_decode(use, d.ids, n, &text) != 0) {
                error("%s: document %llu: an id is out of the vocabulary", name, (unsigned long long)r.docs);
                rc = CM_EDATA;
                continue;
            }
            decode_emit(out, o, d.meta, d.meta_len, &text);
        }
        if (k < 0) { error("%s", r.err); rc = CM_EDATA; }
        ts_close(&r);
        bpe_free(own);
    } else {
        if (!*bpe) { error("%s: -t tok.json is needed to decode id arrays", name); return CM_EUSAGE; }
        LineReader lr;
        lr_init(&lr, fd, name, o->max_line);
        char *line;
        size_t len;
        uint32_t *ids = NULL;
        size_t cap = 0;
        int k;
        while ((k = lr_next(&lr, &line, &len)) != 0) {
            if (k < 0) { rc = lr.err ? CM_EIO : CM_EDATA; if (lr.err) break; continue; }
            size_t n = 0, i = 0;
            while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
            if (i == len) continue;
            int ok = line[i++] == '[';
            int need_num = 0, done_arr = 0;
            while (ok && i < len) {
                char c = line[i];
                if (c == ' ' || c == '\t' || c == '\r') { i++; continue; }
                if (done_arr) { ok = 0; break; }
                if (c == ']' && !need_num) { done_arr = 1; i++; continue; }
                if (c >= '0' && c <= '9') {
                    uint64_t v = 0;
                    while (i < len && line[i] >= '0' && line[i] <= '9' && v <= UINT32_MAX) v = v * 10 + (uint64_t)(line[i++] - '0');
                    if (v > UINT32_MAX) { ok = 0; break; }
                    if (n == cap) { cap = cap ? cap * 2 : 1024; ids = xrealloc(ids, cap * sizeof *ids); }
                    ids[n++] = (uint32_t)v;
                    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
                    if (i < len && line[i] == ',') { i++; need_num = 1; } else need_num = 0;
                    continue;
                }
                ok = 0;
            }
            if (!ok || !done_arr) {
                (void)error("%s: line %llu: byte %llu: not a JSON array of ids", name, (unsigned long long)lr.lineno,
                     (unsigned long long)(lr.offset + i));
                rc = CM_EDATA;
                continue;
            }
            buf_reset(&text);
            if (bpe_decode(*bpe, ids, n, &text) != 0) {
                (void)error("%s: line %llu: an id is not in the vocabulary (size %u)", name, (unsigned long long)lr.lineno, bpe_vocab_size(*bpe));
                rc = CM_EDATA;
                continue;
            }
            decode_emit(out, o, NULL, 0, &text);
        }
        free(ids);
        lr_free(&lr);
    }
    buf_free(&text);
    return rc;
}

/*
** decode: token streams or id arrays -> records or raw text. Returns the exit status.
*/
static int cmd_decode(Opts *o)
{
    char err[512];
    Bpe *bpe = NULL;
    int rc = CM_OK;
    if (o->tokenizer) {
        bpe = bpe_load_file(o->tokenizer, err, sizeof err);
        if (!bpe) { error("%s", err); return load_status(err); }
    }
    int fd = output_open(o, 0);
    if (fd < 0) { bpe_free(bpe); return CM_EIO; }
    Out out;
    out_init(&out, fd, o->output && strcmp(o->output, "-") ? o->output : "stdout", 1 << 20);
    int nf = o->nfiles ? o->nfiles : 1;
    for (int i = 0; i < nf; i++) {
        const char *f = o->nfiles ? o->files[i] : "-";
        const char *name = strcmp(f, "-") ? f : "stdin";
        int src = strcmp(f, "-") ? open(f, O_RDONLY | O_CLOEXEC) : 0;
        if (src < 0) { (void)error("%s: cannot open: %s", f, strerror(errno)); rc = CM_EIO; continue; }
        Feeder fe = {.src = src};
        while (fe.npre < 8) {
            ssize_t r = read(src, fe.pre + fe.npre, 8 - fe.npre);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            fe.npre += (size_t)r;
        }
        if (fe.npre == 0) {  /* empty input: nothing to decode */
            if (src > 0) close(src);
            continue;
        }
        int is_stream = fe.npre == 8 && !memcmp(fe.pre, TS_MAGIC, 8);
        int p[2];
        pthread_t th;
        if (pipe(p) != 0) die(CM_EINTERNAL, "pipe: %s", strerror(errno));
        fe.dst = p[1];
        if (pthread_create(&th, NULL, feed_run, &fe) != 0) die(CM_EINTERNAL, "cannot start a thread");
        int r = decode_one(o, &bpe, p[0], name, is_stream, &out);
        close(p[0]);  /* a feeder still writing gets EPIPE and stops */
        pthread_join(th, NULL);
        if (src > 0) close(src);
        if (r > rc) rc = r;
    }
    out_done(&out);
    if (fd > 1 && close(fd) != 0) { error("%s: cannot write: %s", o->output, strerror(errno)); rc = CM_EIO; }
    bpe_free(bpe);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* train                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static void tmp_cleanup(void)
{
    if (g_tmp_path) unlink(g_tmp_path);
}

/*
** train: JSONL records -> tokenizer.json (written atomically). Returns the exit status.
*/
static int cmd_train(Opts *o)
{
    int rc = CM_OK, nsp = 0;
    char **sp = o->special && *o->special ? strv_split(o->special, ',', &nsp) : NULL;
    BpeTrainOpts to = {
        .vocab_size = (uint32_t)o->vocab_size, .min_frequency = o->min_frequency, .specials = sp,
        .n_specials = nsp, .threads = o->threads, .max_words = o->max_words, .stop = &g_stop};
    BpeTrainer *t = NULL;
    Batch b = {0};
    Input in;
    Buf json = {0};
    Progress pr;
    memset(&in, 0, sizeof in);
    in.o = o;
    record_init(&in.rec);
    if ((uint64_t)o->vocab_size < 256u + (uint64_t)nsp) {
        rc = usage_error("train: --vocab-size %ld is smaller than the 256 byte tokens plus %d specials", o->vocab_size, nsp);
        goto done;
    }
    for (int i = 0; i < nsp; i++)
        if (utf8_valid_prefix((const unsigned char *)sp[i], strlen(sp[i])) != strlen(sp[i])) {
            rc = usage_error("train: --special: token %d is not valid UTF-8", i + 1);
            goto done;
        }
    t = bpe_trainer_new(&to);
    progress_init(&pr, o->progress);
    double t0 = now_sec();
    while (!g_stop && input_batch(&in, &b, 0) > 0) {
        const char **docs = xmalloc(b.n * sizeof *docs);
        for (size_t i = 0; i < b.n; i++) docs[i] = b.text.buf + b.toff[i];
        int r = bpe_trainer_feed(t, docs, b.tlen, b.n);
        free(docs);
        if (r) { rc = CM_EINTERNAL; goto done; }
        if (pr.on) {
            double dt = now_sec() - t0;
            progress_update(&pr, "counting words: %llu records, %.1f MB, %.1f MB/s", (unsigned long long)in.records,
                            in.bytes / 1e6, dt > 0 ? in.bytes / 1e6 / dt : 0.0);
        }
    }
    progress_end(&pr);
    if (g_stop) { (void)error("interrupted while counting words: %s not written", o->output); rc = CM_EINTR; goto done; }
    int fr = bpe_trainer_finish(t, &json);
    if (fr == -2) { (void)error("interrupted while merging: %s not written", o->output); rc = CM_EINTR; goto done; }
    if (fr != 0) { rc = CM_EINTERNAL; goto done; }

    /* Write atomically: temp file in the same folder, fsync, rename. */
    size_t pl = strlen(o->output);
    g_tmp_path = xmalloc(pl + 32);
    snprintf(g_tmp_path, pl + 32, "%s.tmp%ld", o->output, (long)getpid());
    out_on_fatal(tmp_cleanup);
    int fd = strcmp(o->output, "-") ? open(g_tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666) : 1;
    if (fd < 0) { error("%s: cannot create: %s", g_tmp_path, strerror(errno)); rc = CM_EIO; goto done; }
    Out out;
    out_init(&out, fd, fd == 1 ? "stdout" : o->output, 1 << 20);
    out_write(&out, json.buf, json.len);
    out_done(&out);
    if (fd != 1) {
        if (fsync(fd) != 0 || close(fd) != 0) {
            error("%s: cannot write: %s", o->output, strerror(errno));
            unlink(g_tmp_path);
            rc = CM_EIO;
            goto done;
        }
        if (rename(g_tmp_path, o->output) != 0) {
            error("%s: cannot rename into place: %s", o->output, strerror(errno));
            unlink(g_tmp_path);
            rc = CM_EIO;
            goto done;
        }
    }
    uint64_t nwords, pruned, merges;
    bpe_trainer_stats(t, &nwords, &pruned, &merges);
    if (pr.on)
        fprintf(stderr, "cm-tokenize: %llu records, %llu distinct words (%llu pruned), %llu merges -> %s\n",
                (unsigned long long)in.records, (unsigned long long)nwords, (unsigned long long)pruned,
                (unsigned long long)merges, o->output);
    rc = in.status;
done:
    free(g_tmp_path);
    g_tmp_path = NULL;
    buf_free(&json);
    bpe_trainer_free(t);
    input_close(&in);
    record_free(&in.rec);
    batch_free(&b);
    strv_free(sp);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* main                                                                                        */
/* ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    cm_init("cm-tokenize");
    if (argc < 2) return usage_error(NULL);
    const char *verb = argv[1];
    if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || !strcmp(verb, "help")) {
        fputs(usage_main, stdout);
        fputc('\n', stdout);
        fputs(help_main, stdout);
        return CM_OK;
    }
    if (!strcmp(verb, "--version")) { printf("cm-tokenize %s\n", VERSION); return CM_OK; }
    if (strcmp(verb, "train") && strcmp(verb, "encode") && strcmp(verb, "decode"))
        return usage_error("unknown verb '%s'", verb);
    Opts o;
    memset(&o, 0, sizeof o);
    int r = opts_parse(&o, verb, argc - 1, argv + 1);
    if (r == 1) return fflush(stdout) == 0 ? CM_OK : CM_EIO;
    if (r) return r;
    signals_init();
    if (!strcmp(verb, "encode")) return cmd_encode(&o);
    if (!strcmp(verb, "decode")) return cmd_decode(&o);
    return cmd_train(&o);
}
