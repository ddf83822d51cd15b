// SPDX-License-Identifier: MIT
/*
** walk.h: the private parts of cm-ingest's engine, shared by the walk*.c files only (the
** public interface is ingest.h).
**
**   walk.c          the engine, command-line inputs: stdin and files sniffed and dispatched,
**                   plain files checked and read, the stop-signal safe points
**   walk_writer.c   records: UTF-8 and notebook checks, our fields, the writer thread
**   walk_archive.c  libarchive entries, archives nested in archives, the expansion cap
**   walk_dir.c      directories, walked in sorted order
**   walk_jsonl.c    JSONL dumps (plain or compressed), line by line
**
** Every input becomes a stream of (repo_name, path, bytes) that is checked (size, NUL bytes,
** UTF-8, filters) and written as one JSONL record.
*/
#ifndef CM_INGEST_WALK_H
#define CM_INGEST_WALK_H

#include "ingest.h"
#include "atomic.h"
#include "record.h"

#include <archive.h>
#include <stdint.h>

#define MAX_LEVELS 32 /* hard limit on --max-depth */
#define SNIFF_BYTES (64 * 1024)
#define MAX_WARNINGS 10 /* libarchive warnings printed per input */
#define READ_BLOCK (256 * 1024)

/* Scratch buffers of the code that writes records. */
typedef struct {
    Buf text;  /* notebook conversion or UTF-8 repair */
    Buf extra; /* our fields, formatted */
} Writer;

typedef struct Pipe Pipe; /* the writer thread's ring (walk_writer.c) */

/* Where an entry sits: the repository and path prefix in effect, and the chain of
** containers for messages and the "source" field. One per open level, on the C stack. */
typedef struct Scope {
    const char *repo;   /* repo_name in effect */
    size_t repo_n;      /* its length */
    const char *prefix; /* path prefix inside the repository ("" or "dir/x.zip/") */
    size_t prefix_n;    /* its length */
    const char *source; /* "input" or "input!inner.zip" */
    size_t source_n;    /* its length */
    int depth;          /* 0 for a command-line input */
    int is_deb;         /* this level is a Debian package (ar) */
    int wrapper;        /* strip a GitHub NAME-SHA/ wrapper at this level */
} Scope;

struct Ingest {
    const IngestOpts *o;     /* options */
    Out *out;                /* records go here */
    IngestStats st;          /* counters */
    Progress prog;           /* stderr progress */
    Buf lvl[MAX_LEVELS + 1]; /* entry buffer per level */
    Writer w;                /* scratch buffers when writing without the thread */
    Pipe *pipe;              /* the writer thread, or NULL */
    Buf extra;               /* our fields for JSONL records */
    Buf path;                /* repo-relative path of the entry */
    Buf line;                /* JSONL line being assembled */
    int stopped;             /* a stop signal was seen at a safe point: unwind, no more records */
    /* per command-line input */
    const char *input;                      /* its name for messages */
    struct archive *levels[MAX_LEVELS + 1]; /* open archives, outermost first */
    int nlevels;                            /* how many are open */
    uint64_t exp_done;                      /* expanded bytes of levels already closed */
    uint64_t exp_data;                      /* entry data bytes read from levels without a filter */
    int capped;                             /* the expansion cap fired: unwind */
    int bad;                                /* something in this input was bad */
    int warnings;                           /* libarchive warnings shown for this input */
    unsigned tick;                          /* progress throttle */
};

/* --- walk.c --- */

/* Show progress now and then; count a skipped entry. */
void walk_tick(Ingest *g);
void walk_skip(Ingest *g, int reason);

/*
** Safe points for a stop signal (lib/atomic.h): between archive entries, JSONL lines,
** directory entries and inputs, where every record before is whole (queued or written) and
** none is half-made. There the walk asks walk_stopping and, when it is so, unwinds with
** walk_stop, which says where the output ends.
*/
static inline int walk_stopping(const Ingest *g)
{
    return g->stopped || cm_stopping();
}

/* Stop here: the first time, print "interrupted: WHERE (records before it are complete)"
** (WHERE from fmt) and set g->stopped. Returns -1 for the caller to unwind with. */
int walk_stop(Ingest *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A file given on the command line (top) or found in directory scope dir at path rel. */
int walk_file(Ingest *g, const char *fsname, const Scope *dir, const char *rel, int top,
              int64_t fsize);

/* Base name of a path without trailing slashes, into b (for repo names). */
void walk_base_name(const char *path, Buf *b);

/* --- walk_writer.c --- */

void walk_writer_start(Ingest *g);
/* Wait until the writer thread has written every queued file (before this thread writes). */
void walk_writer_drain(Ingest *g);
void walk_writer_stop(Ingest *g);
/* Hand one file to the writer (or write it now without a writer thread). When the content is
** the whole of buffer own (may be NULL), the buffer is swapped into the job, not copied. */
void walk_emit_file(Ingest *g, const Scope *sc, const char *repo, size_t repo_n, const char *path,
                    size_t path_n, const char *data, size_t n, Buf *own);

/* --- walk_archive.c --- */

/* Has the current input expanded past the cap? Prints the message once, sets g->capped. */
int walk_cap_check(Ingest *g, const char *entry);
/* Register an open archive as the next level (for the cap), or unregister the innermost. */
void walk_level_push(Ingest *g, struct archive *a);
void walk_level_pop(Ingest *g);
/* The entry loop of one archive level: 0, or -1 when it stopped (error, cap or signal). */
int walk_archive_level(Ingest *g, struct archive *a, const Scope *sc);

/* --- walk_dir.c --- */

/* Walk a directory in sorted order: 0, or -1 when some of it could not be read, or a signal
** stopped it. */
int walk_dir(Ingest *g, const char *dir);

/* --- walk_jsonl.c --- */

/* Does the (possibly compressed) prefix hold JSONL, i.e. start with '{'? */
int walk_sniff_jsonl(const char *p, size_t n, int depth);
/* Read a JSONL dump from archive a (raw format): 0, or -1 when it stopped early (read error,
** cap or signal). */
int walk_jsonl_stream(Ingest *g, struct archive *a, const Scope *sc);

#endif
