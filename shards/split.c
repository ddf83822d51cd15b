// SPDX-License-Identifier: MIT
/*
** split.c: the train/valid split of a corpus -- split_is_valid (used by pack for each document)
** and `cm-shards split`, which recomputes it for every document of an index (see shards.h).
*/
#include "shards.h"

#include <sqlite3.h>

#include "atomic.h"        // defines: cm_stopping
#include "corpus_index.h"  // defines: CorpusIndex, corpus_index_open, corpus_check_shards
#include "hash.h"          // defines: hash64_seed, hash_hex
#include "util.h"          // defines: error, exit codes

/*
** Split of a repository: XXH3-64(repo_name, seed) mapped to [0,1) and compared with the fraction.
*/
int split_is_valid(const char *repo, size_t n, double valid_fraction, uint64_t seed)
{
    uint64_t h = hash64_seed(repo ? repo : "", repo ? n : 0, seed);
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    return u < valid_fraction;
}

typedef struct {
    double fraction;  /* the new valid fraction */
    uint64_t seed;    /* the seed */
} SplitRule;

/*
** SQL function cm_split(repo_name): 'valid' or 'train'.
*/
static void sql_split(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const SplitRule *rule = sqlite3_user_data(ctx);
    const char *s = (const char *)sqlite3_value_text(argv[0]);
    int n = sqlite3_value_bytes(argv[0]);
    int v = split_is_valid(s ? s : "", s ? (size_t)n : 0, rule->fraction, rule->seed);
    sqlite3_result_text(ctx, v ? "valid" : "train", 5, SQLITE_STATIC);
}

/* SQLite's progress callback: a stop signal interrupts the update (rolled back). */
static int split_stopping(void *arg)
{
    (void)arg;
    return cm_stopping();
}

int split_run(const char *dir, double valid_fraction, uint64_t seed, int have_seed)
{
    CorpusIndex x;
    CorpusFaults f = {NULL, 0, 0, 0};
    int rc = corpus_index_open(&x, dir, CORPUS_INDEX_WRITE, &f);
    if (!rc) rc = corpus_check_shards(&x, &f);
    if (rc) {
        corpus_index_close(&x);
        return rc;
    }
    SplitRule rule = {valid_fraction, have_seed ? seed : x.split_seed};
    char hex[17];
    hash_hex(rule.seed, hex);
    sqlite3_create_function(x.db, "cm_split", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, &rule,
                            sql_split, NULL, NULL);
    sqlite3_progress_handler(x.db, 100000, split_stopping, NULL);
    char *sql = sqlite3_mprintf("BEGIN; UPDATE documents SET split = cm_split(repo_name); "
                                "UPDATE corpus SET valid_fraction = %.17g, split_seed = %Q; COMMIT",
                                valid_fraction, hex);
    rc = index_exec(x.db, sql, x.ipath) ? CM_EIO : CM_OK;
    sqlite3_progress_handler(x.db, 0, NULL, NULL);
    if (rc) sqlite3_exec(x.db, "ROLLBACK", NULL, NULL, NULL);
    if (rc && cm_stopping()) rc = CM_EINTR; /* the message said "interrupted" */
    sqlite3_free(sql);
    corpus_index_close(&x);
    return rc;
}
