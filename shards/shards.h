// SPDX-License-Identifier: MIT
/*
** shards.h: the verbs of cm-shards as library functions (pack, verify, stats, cat, merge,
** split), so that unit tests and other stages can call them. Each returns an exit status
** (lib/util.h); a corpus is opened and checked the same way in all of them (corpus_index.h):
** CM_EIO (3) when it cannot be read, CM_EFORMAT (4) when it is damaged. The long ones stop at
** a safe point on a first SIGINT/SIGTERM (cm_stopping, lib/atomic.h) with CM_EINTR (130).
*/
#ifndef CM_SHARDS_H
#define CM_SHARDS_H

#include <stddef.h>
#include <stdint.h>

#define PACK_SHARD_TOKENS_DEFAULT ((uint64_t)64 << 20) /* 64 Mi tokens: 128 MiB as uint16 */
#define PACK_MAX_ROW_BYTES ((size_t)64 << 20)          /* metadata buffered per shard */
#define PACK_VALID_FRACTION_DEFAULT 0.05

typedef struct {
    const char *dir;        /* corpus directory to create or resume */
    const char *input;      /* input name for messages ("stdin" or a path) */
    int fd;                 /* input file descriptor */
    uint64_t shard_tokens;  /* target tokens per shard */
    double valid_fraction;  /* share of repositories in the valid split */
    uint64_t split_seed;    /* seed of the split's hash order */
    int split_by;           /* SPLIT_BY_REPO or SPLIT_BY_PATH */
    const char *split_from; /* --split-from: a corpus whose units keep their split, or NULL */
    int resume;             /* finish an interrupted pack */
    int force;              /* replace an existing corpus */
    int progress;           /* -1 auto (stderr is a terminal), 0 off, 1 on */
    int quiet;              /* no summary line on stderr */
    const char *cmdline;    /* stored in the index */
} PackOpts;

/* Pack a token stream into a corpus directory. */
int pack_run(const PackOpts *o);

/* Check a corpus: every shard's checksum, header against index, sizes, document ranges.
** Prints each problem on stderr; returns CM_OK when sound, CM_EFORMAT when damaged, CM_EIO
** when a part cannot be read. */
int verify_run(const char *dir, int progress);

/* Print tokens, documents and bytes per split and per shard (a table, or JSON), after the
** shards were checked as the reader checks them. */
int stats_run(const char *dir, int json);

/* Print the documents selected by `where` as JSONL; ids_only: the ids instead of the text. */
int cat_run(const char *dir, const char *where, int64_t limit, int ids_only);

/* Combine corpora into dst, hard-linking (or symlinking) their shard files. */
int merge_run(const char *dst, const char *const *srcs, int nsrc, int force, const char *cmdline);

/* Recompute the train/valid assignment in the index with a new fraction (and seed, and unit),
** in one transaction (rolled back when interrupted); the result is printed unless quiet. */
int split_run(const char *dir, double valid_fraction, uint64_t seed, int have_seed, int by,
              const char *split_from, int quiet);

/* The unit of the split (split.c): whole repositories, or paths. */
enum { SPLIT_BY_REPO = 0, SPLIT_BY_PATH = 1 };
const char *split_by_name(int by); /* "repo", "path" */
int split_by_parse(const char *s); /* SPLIT_BY_*, or -1 */

typedef struct sqlite3 sqlite3;
/* Assign every document of the index db to 'train' or 'valid' by the rule of split.c (inside
** the caller's transaction). CM_OK or CM_EIO (message printed). */
int split_assign(sqlite3 *db, const char *ipath, double fraction, uint64_t seed, int by, int quiet);
/* --split-from (split_from.c): the pins, units of another corpus that keep its split. */
#define SPLIT_PINS_SQL \
    "CREATE TABLE IF NOT EXISTS split_pins(split_by TEXT NOT NULL, unit TEXT NOT NULL, " \
    "split TEXT NOT NULL, PRIMARY KEY(split_by, unit));"
/* Is `from` a corpus (its index opens)? CM_OK, or the exit status after the message. */
int split_from_check(const char *from);
/* Replace db's pins by the units (of kind by) of corpus `from` with their split there, inside
** the caller's transaction; says how many unless quiet. CM_OK or an exit status. */
int split_pin(sqlite3 *db, const char *ipath, const char *from, int by, int quiet);
/* The unit kinds of db's pins, a bit mask (1 << SPLIT_BY_*; 0: no pins), or -1 on an SQL error
** (reported). */
int split_pins_kinds(sqlite3 *db, const char *ipath);

/* Record the split's settings in the corpus row (a corpus of format 1 or 2 becomes format 3). */
int split_record(sqlite3 *db, const char *ipath, double fraction, uint64_t seed, int by);

#endif
