// SPDX-License-Identifier: MIT
/*
** corpus_index.h: the one opener and checker of a corpus directory (index.sqlite and its
** shard files), used by the reader (corpus.c), verify, stats, cat, merge, split and
** pack --resume, so that every verb reads the index rows the same way and refuses a damaged
** corpus with the same message and the same exit status:
**
**   - corpus_index_open: DIR/index.sqlite and its corpus row;
**   - shard_rows_next: the rows of `shards`, one by one, with their file names checked;
**   - shard_check: one shard file against its row and the corpus row -- opened, size, mapped,
**     header decoded and compared (the payload is not hashed: `cm-shards verify` does that);
**   - corpus_select: the documents selected by a split and a --where condition.
**
** Faults go to a CorpusFaults: printed one by one (verify lists every problem), or the first
** one kept in a buffer (the reader, whose caller prints it). Their exit status is CM_EIO (3)
** when something cannot be read (no such directory, no index, a file that cannot be opened
** or mapped for another reason than its absence) and CM_EFORMAT (4) when the corpus is
** damaged (not an index, wrong version, a shard missing, truncated, or not matching its row).
*/
#ifndef CM_SHARDS_CORPUS_INDEX_H
#define CM_SHARDS_CORPUS_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "shard.h" // defines: ShardHeader

typedef struct {
    char *err;     /* NULL: print each fault with error(); else keep the first one here */
    size_t errlen; /* its size */
    int count;     /* faults seen */
    int status;    /* CM_EIO when one was "cannot read", else CM_EFORMAT; CM_OK while none */
} CorpusFaults;

/* Record a fault of kind status (CM_EIO or CM_EFORMAT). */
void corpus_fault(CorpusFaults *f, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The opened index and its corpus row. */
typedef struct {
    char *dir;             /* the corpus directory */
    char *ipath;           /* DIR/index.sqlite */
    sqlite3 *db;           /* the open index */
    int own_db;            /* db is closed by corpus_index_close */
    uint64_t fingerprint;  /* tokenizer fingerprint */
    char *tokenizer_json;  /* the tokenizer.json stored in the row (NUL-terminated) */
    size_t tokenizer_len;  /* its length */
    uint32_t vocab_size;   /* vocabulary size */
    uint32_t eot_id;       /* end-of-text id */
    uint32_t dtype;        /* bytes per token: 2 or 4 */
    uint64_t shard_tokens; /* target tokens per shard */
    double valid_fraction; /* split share */
    uint64_t split_seed;   /* split seed */
    int split_by;          /* SPLIT_BY_REPO (format 1 corpora) or SPLIT_BY_PATH */
    int complete;          /* the pack finished */
} CorpusIndex;

enum { CORPUS_INDEX_READ = 0, CORPUS_INDEX_WRITE = 1 };

/* Open DIR/index.sqlite (CORPUS_INDEX_READ: see index_open_read; CORPUS_INDEX_WRITE:
** read-write) and read its corpus row. Returns 0, or the exit status after the fault.
** Close x either way. */
int corpus_index_open(CorpusIndex *x, const char *dir, int mode, CorpusFaults *f);
/* The same over a connection the caller opened (and closes): pack --resume. */
int corpus_index_attach(CorpusIndex *x, const char *dir, sqlite3 *db, CorpusFaults *f);
void corpus_index_close(CorpusIndex *x);

/* One row of the shards table. */
typedef struct {
    int64_t id;             /* shards.id */
    const char *file;       /* name in the corpus directory (no '/') */
    uint64_t tokens;        /* token count */
    uint64_t documents;     /* document count */
    uint64_t bytes;         /* file size, header included */
    const char *checksum;   /* XXH3-64 of the payload, 16 hex digits (may be NULL) */
    int64_t first_document; /* documents.id of its first document */
} ShardRow;

typedef struct {
    const CorpusIndex *x;
    sqlite3_stmt *st; /* SELECT ... FROM shards ORDER BY id */
} ShardRows;

/* Start reading the shard rows. 0, or the exit status after the fault. */
int shard_rows_begin(ShardRows *it, const CorpusIndex *x, CorpusFaults *f);
/* The next row (valid until the next call): 1; 0 at the end; -1 after an SQL fault, or a bad
** row when faults are kept in a buffer (printed bad rows are skipped). */
int shard_rows_next(ShardRows *it, ShardRow *r, CorpusFaults *f);
void shard_rows_end(ShardRows *it);

/* A shard file mapped read-only. */
typedef struct {
    char path[4200];    /* DIR/FILE */
    unsigned char *map; /* the whole file (NULL: not mapped) */
    size_t len;         /* its length: SHARD_PAYLOAD_OFFSET + tokens x dtype */
    ShardHeader h;      /* its header (zero when it does not decode) */
} ShardMap;

/* Check one shard file against its row and the corpus row: the row's byte count, the file's
** size, its header (magic, checksum, version, dtype) and the header fields against the rows.
** Returns -1 when the file could not be mapped (m->map NULL), else the number of faults
** found (0: sound; m stays mapped either way: shard_unmap). With faults kept in a buffer it
** stops at the first one and returns -1 with nothing mapped. */
int shard_check(const CorpusIndex *x, const ShardRow *r, CorpusFaults *f, ShardMap *m);
void shard_unmap(ShardMap *m);

/* shard_check every shard of the corpus (unmapping each). 0, or the exit status. */
int corpus_check_shards(const CorpusIndex *x, CorpusFaults *f);

/* Prepare "SELECT columns FROM documents WHERE split = ?1 AND (where) ORDER BY id tail"
** (split NULL or where NULL/empty: that part left out; split is bound here). Refuses more than
** one statement. Returns 0, or -1 with SQLite's reason (or "more than one SQL statement") in
** why. */
int corpus_select(sqlite3 *db, const char *columns, const char *split, const char *where,
                  const char *tail, sqlite3_stmt **st, char *why, size_t whylen);

#endif
