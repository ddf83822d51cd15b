// SPDX-License-Identifier: MIT
/*
** pack.h: the state of `cm-shards pack` shared by its files (internal to shards/):
**
**   pack.c        pack_run: the main loop (stream in, documents to shards) and the summary;
**   pack_open.c   the corpus directory and its index: create, replace (--force) or resume;
**   pack_meta.c   one document's metadata parsed into its index row (DocRow);
**   pack_shard.c  the shard being written by the main thread (a PackShard): its temporary
**                 file, tokens, header, and the hand-over to the index thread;
**   pack_index.c  the index thread: a finished shard made durable, then its rows inserted.
**
** Crash-safety protocol, per shard:
**   1. tokens go to DIR/shard-NNNNN.bin.tmp (header placeholder, payload), checksummed as
**      written; the temporary name is registered (lib/atomic.h) so that every way out -- an
**      error, exit, a second SIGINT/SIGTERM -- removes it;
**   2. the header is written, the file fdatasync'ed, renamed to shard-NNNNN.bin, the directory
**      fsync'ed;
**   3. only then one SQLite transaction inserts the shard row and all its document rows.
** A pack killed at any moment leaves an index whose rows point only at complete shards.
** Documents are numbered by their position in the input stream (documents.id), so
** `pack --resume` skips the first MAX(id)+1 documents of the same input (checking their token
** counts), removes .tmp files and shard files the index does not know, and goes on with the
** next shard number. A first SIGINT/SIGTERM (cm_stopping) ends the loop after the document
** being read: the current shard is finished and recorded, the index left consistent, exit 130.
**
** Memory: the stream reader's buffer (the largest document), the metadata of the documents of
** two shards -- the one being written and the one the index thread commits -- (at most
** PACK_MAX_ROW_BYTES, 64 MiB, each; a shard is closed early when its metadata reaches that),
** the shard writer's chunks (4 MiB, swriter.h), and SQLite's page cache (64 MiB).
**
** Threads: the main thread reads the stream, parses metadata and fills the writer's chunks; the
** writer thread checksums and writes them (O_DIRECT); the index thread syncs finished shards
** and inserts their rows. At most one PackShard is in the index thread's hands.
*/
#ifndef CM_SHARDS_PACK_H
#define CM_SHARDS_PACK_H

#include <pthread.h>
#include <stdint.h>
#include <sqlite3.h>

#include "io.h"        // defines: Progress
#include "json.h"      // defines: JsonObj
#include "shards.h"    // defines: PackOpts
#include "swriter.h"   // defines: SWriter
#include "tokstream.h" // defines: TsReader, TsDoc
#include "util.h"      // defines: Buf

#define NOSTR UINT32_MAX /* DocRow string length meaning SQL NULL */
#define DOC_BATCH 128    /* documents rows per multi-row INSERT (measured: cheaper per row) */
#define IMP_BATCH 512    /* document_imports rows per multi-row INSERT */

/* The string fields of a DocRow. */
enum { FIELD_REPO, FIELD_PATH, FIELD_LICENSE, FIELD_IMPORTS, FIELD_HASH, FIELD_EXTRA, FIELD_COUNT };

/* One document's row of the documents table, its strings in the PackShard's arena. */
typedef struct {
    uint64_t id;               /* position of the document in the input stream */
    uint64_t offset;           /* first token in the shard */
    uint32_t n_tokens;         /* tokens, eot included */
    uint32_t n_prompt;         /* leading tokens that are prompt (0: a plain document) */
    int64_t n_bytes;           /* content bytes, -1 unknown */
    uint32_t off[FIELD_COUNT]; /* arena offsets of repo_name, path, license, imports, hash,
                                    extra */
    uint32_t len[FIELD_COUNT]; /* their lengths, NOSTR for NULL */
    char valid;                /* 1: valid split */
} DocRow;

/* A shard in the making: its file and the index rows of its documents. */
typedef struct {
    uint64_t shard_id;     /* shard number */
    int fd;                /* its .tmp file once written (header included), not yet synced */
    int tmp_slot;          /* tmp_register's slot while the .tmp file exists, else -1 */
    char tmp[4200];        /* its temporary name */
    char final[4096];      /* its final name */
    uint64_t tokens;       /* tokens in it */
    uint64_t checksum;     /* XXH3-64 of its payload */
    DocRow *rows;          /* its documents */
    size_t nrows, caprows; /* count, allocated */
    Buf arena;             /* their strings */
} PackShard;

typedef struct {
    const PackOpts *o;              /* options */
    char *ipath;                    /* DIR/index.sqlite */
    sqlite3 *db;                    /* the index (the index thread's while it runs) */
    sqlite3_stmt *ins_doc;          /* INSERT INTO documents, one row */
    sqlite3_stmt *ins_docs;         /* the same, DOC_BATCH rows per statement */
    sqlite3_stmt *ins_imp;          /* INSERT INTO document_imports, one row */
    sqlite3_stmt *ins_imps;         /* the same, IMP_BATCH rows per statement */
    uint64_t imp_id[IMP_BATCH];     /* pending document_imports rows (index thread) */
    const char *imp_mod[IMP_BATCH]; /* their modules: in the PackShard arena, or NULL when
                                       decoded */
    size_t imp_off[IMP_BATCH];      /* offset in wdec of a decoded (escaped) module */
    size_t imp_len[IMP_BATCH];      /* their lengths */
    int nimp;                       /* count pending */
    sqlite3_stmt *ins_shard;        /* INSERT INTO shards */
    TsReader ts;                    /* input */
    int ts_open;                    /* ts needs ts_close */
    uint32_t dtype;                 /* 2 or 4 */
    uint64_t shard_tokens;          /* target per shard */
    double valid_fraction;          /* split share */
    int split_by;                   /* SPLIT_BY_REPO or SPLIT_BY_PATH */
    uint64_t split_seed;            /* split hash seed */
    uint64_t shard_id;              /* number of the shard being written (or next) */
    int open;                       /* a shard file is being written */
    SWriter *sw;                    /* writes it (O_DIRECT, own thread) and checksums its payload */
    uint64_t tokens;                /* tokens in the current shard */
    PackShard bt[2];                /* the shard being filled and the one being committed */
    PackShard *cur;                 /* the one the main thread fills */
    JsonObj obj;                    /* meta parser */
    Buf dec;                        /* decoded strings scratch (main thread) */
    Buf wdec;                       /* decoded strings scratch (index thread) */
    uint64_t next_doc;              /* id of the next document */
    uint64_t docs_done;             /* documents packed in this run */
    uint64_t tokens_done;           /* tokens packed in this run */
    Progress prog;                  /* progress line */
    pthread_t th;                   /* the index thread */
    int th_started;                 /* it runs */
    pthread_mutex_t mu;             /* guards pending, busy, stop, werr */
    pthread_cond_t cv;              /* signals changes of those */
    PackShard *pending;             /* handed to the index thread, not yet taken */
    int busy;                       /* the index thread is committing a PackShard */
    int stop;                       /* the index thread should end */
    int werr;                       /* exit status of a failed commit, 0 when fine */
    double t_sync;                  /* seconds in fdatasync/rename/fsync of shards */
    double t_insert;                /* seconds inserting document rows */
    double c_insert;                /* CPU seconds of those inserts */
    double t_final;                 /* seconds building the secondary indexes */
    double c_final;                 /* CPU seconds of that */
    double t_wait;                  /* seconds the main thread waited for the index thread */
} Packer;

/* pack_open.c: open (create, replace or resume) the corpus directory and its index, after
** the stream header was read; skip the documents a resumed corpus holds. 0, -1 when a resumed
** corpus is already complete, or an exit status. */
int pack_open(Packer *p);
int pack_skip_done(Packer *p);
/* Prepare a statement or report. Returns 0 or -1. */
int pack_prepare(Packer *p, const char *sql, sqlite3_stmt **st);

/* pack_meta.c: parse a document's meta into a new row of the current shard. 0, or -1 with a
** message (bad meta). */
int pack_add_row(Packer *p, const TsDoc *d);

/* pack_shard.c: the current shard (main thread). */
void pack_shard_begin(Packer *p);
int pack_shard_write(Packer *p, const unsigned char *ids, uint32_t n);
int pack_shard_finish(Packer *p);
/* Close and remove a shard's .tmp file (whatever its state) and forget its registration. */
void pack_shard_drop_tmp(PackShard *b);

/* pack_index.c: the index thread and the end of the index. */
void *pack_index_thread(void *arg);
int pack_wait_idle(Packer *p);
int pack_stop_thread(Packer *p);
int pack_finalize_index(Packer *p, int complete);
/* CPU time of the calling thread, in seconds (for CM_SHARDS_TIMING). */
double pack_thread_cpu_sec(void);

#endif
