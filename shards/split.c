// SPDX-License-Identifier: MIT
/*
** split.c: the train/valid split of a corpus (rule in docs/FORMATS.md "The split").
**
** The unit is the repository (repo_name; documents without one form one unit ""), or the
** document's path with --split-by path. Units are taken in the order of XXH3-64(key, seed)
** (the key breaking ties); a unit goes to 'valid' when it brings the valid tokens closer to
** the target, valid_fraction x all tokens (valid + its tokens / 2 < target): the share ends
** within half a unit of the target. When that leaves 'valid' empty although there are two units or
** more and the fraction is above 0, the smallest unit (first in hash order among equals) is
** put there, so a split asked for is never empty; 'train' keeps at least one unit unless the
** fraction is 1. With --split-by repo and a single repository the split falls back to paths,
** with a warning. The result is printed on stderr (units, documents, token share).
**
** Pins (--split-from, split_from.c): a unit the index's split_pins table names (for the same
** unit kind) goes to its pinned split whatever the rule says; the pinned valid tokens count
** towards the target and the unpinned units are taken by the rule above. A single repository
** that is pinned is not split by path.
**
** split_assign runs at the end of every pack (and pack --resume), after merge, and in
** `cm-shards split`: so no repository is in both splits, and the valid share stays close to the
** fraction whatever the number and sizes of the repositories.
*/
#include "shards.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"       // defines: cm_stopping
#include "corpus_index.h" // defines: CorpusIndex, corpus_index_open, corpus_check_shards
#include "hash.h"         // defines: hash64_seed, hash_hex
#include "util.h"         // defines: error, warn, exit codes

/* One unit of the split: a repository or a path, its tokens and documents. */
typedef struct {
    char *key; /* repo_name, or repo_name NUL path (path mode) */
    size_t klen;
    uint64_t hash; /* XXH3-64(key, seed) */
    int64_t tokens;
    int64_t docs;
    int valid;
    int pinned; /* --split-from: 0 train, 1 valid; -1 not pinned (the share rule decides) */
} SplitUnit;

typedef struct {
    SplitUnit *u;
    size_t n, cap;
} UnitList;

const char *split_by_name(int by)
{
    return by == SPLIT_BY_PATH ? "path" : "repo";
}

int split_by_parse(const char *s)
{
    if (!s || !strcmp(s, "repo")) return SPLIT_BY_REPO;
    if (!strcmp(s, "path")) return SPLIT_BY_PATH;
    return -1;
}

static int unit_cmp(const void *a, const void *b)
{
    const SplitUnit *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    if (c) return c;
    return x->klen < y->klen ? -1 : x->klen > y->klen;
}

/* Read the units (per repository or per path) with their tokens and documents, and their pins
** when the index has pins of that kind (pinned). */
static int units_read(sqlite3 *db, const char *ipath, int by, uint64_t seed, int pinned,
                      UnitList *l)
{
    const char *key = by == SPLIT_BY_PATH
        ? "COALESCE(repo_name, '') || char(0) || COALESCE(path, '')"
        : "COALESCE(repo_name, '')";
    char *sql = pinned
        ? sqlite3_mprintf("SELECT u.k, u.t, u.c, p.split FROM (SELECT %s AS k, SUM(n_tokens) AS "
                          "t, COUNT(*) AS c FROM documents GROUP BY 1) u LEFT JOIN split_pins p "
                          "ON p.split_by = %Q AND p.unit = u.k",
                          key, split_by_name(by))
        : sqlite3_mprintf("SELECT %s, SUM(n_tokens), COUNT(*), NULL FROM documents GROUP BY 1",
                          key);
    sqlite3_stmt *st = NULL;
    int prc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    sqlite3_free(sql);
    if (prc != SQLITE_OK)
        return error("%s: %s", ipath, index_error_with(db, "cannot read the documents")), -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (l->n == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 256;
            l->u = xrealloc(l->u, l->cap * sizeof *l->u);
        }
        SplitUnit *u = &l->u[l->n++];
        u->klen = (size_t)sqlite3_column_bytes(st, 0);
        u->key = xmalloc(u->klen + 1);
        memcpy(u->key, sqlite3_column_blob(st, 0) ? sqlite3_column_blob(st, 0) : "", u->klen);
        u->key[u->klen] = 0;
        u->hash = hash64_seed(u->key, u->klen, seed);
        u->tokens = sqlite3_column_int64(st, 1);
        u->docs = sqlite3_column_int64(st, 2);
        const char *pin = (const char *)sqlite3_column_text(st, 3);
        u->pinned = pin ? !strcmp(pin, "valid") : -1;
        u->valid = u->pinned == 1;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return error("%s: %s", ipath, index_error_with(db, "cannot read the documents")), -1;
    return 0;
}

static void units_free(UnitList *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->u[i].key);
    free(l->u);
    memset(l, 0, sizeof *l);
}

/* The rule of the file comment, on units already in hash order; pinned units keep their pin
** (their valid tokens count towards the target) and the others share what is left. */
static void units_choose(UnitList *l, double fraction)
{
    int64_t total = 0, valid = 0;
    size_t nvalid = 0, ntrain = 0;
    for (size_t i = 0; i < l->n; i++) {
        total += l->u[i].tokens;
        valid += l->u[i].pinned == 1 ? l->u[i].tokens : 0;
        nvalid += l->u[i].pinned == 1;
        ntrain += l->u[i].pinned == 0;
    }
    double target = fraction * (double)total;
    for (size_t i = 0; i < l->n; i++) {
        if (l->u[i].pinned >= 0) continue;
        if (fraction >= 1 || (double)valid + 0.5 * (double)l->u[i].tokens < target) {
            if (fraction < 1 && ntrain == 0 && nvalid + 1 == l->n) break; /* train keeps one */
            l->u[i].valid = 1;
            valid += l->u[i].tokens;
            nvalid++;
        }
    }
    if (nvalid == 0 && fraction > 0 && l->n >= 2) { /* the smallest unpinned unit */
        size_t best = l->n;
        for (size_t i = 0; i < l->n; i++)
            if (l->u[i].pinned < 0 && (best == l->n || l->u[i].tokens < l->u[best].tokens))
                best = i;
        if (best < l->n) l->u[best].valid = 1;
    }
}

/* Write the choice: every document 'train', then the valid units' documents 'valid'. */
static int units_write(sqlite3 *db, const char *ipath, int by, const UnitList *l)
{
    const char *upd = by == SPLIT_BY_PATH
        ? "UPDATE documents SET split = 'valid' WHERE (COALESCE(repo_name, '') || char(0) || "
          "COALESCE(path, '')) IN (SELECT key FROM temp.split_valid)"
        : "UPDATE documents SET split = 'valid' WHERE COALESCE(repo_name, '') IN "
          "(SELECT key FROM temp.split_valid)";
    if (index_exec(db,
                   "DROP TABLE IF EXISTS temp.split_valid; "
                   "CREATE TEMP TABLE split_valid(key BLOB PRIMARY KEY); "
                   "UPDATE documents SET split = 'train' WHERE split <> 'train'",
                   ipath))
        return -1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO temp.split_valid VALUES(?)", -1, &st, NULL))
        return error("%s: %s", ipath, index_error_with(db, "cannot write the split")), -1;
    for (size_t i = 0; i < l->n; i++) {
        if (!l->u[i].valid) continue;
        sqlite3_bind_text(st, 1, l->u[i].key, (int)l->u[i].klen, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_finalize(st);
            return error("%s: %s", ipath, index_error_with(db, "cannot write the split")), -1;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (index_exec(db, upd, ipath)) return -1;
    return index_exec(db, "DROP TABLE temp.split_valid", ipath);
}

/* "cm-shards: split by repository: valid 2 of 21 repositories, 310 of 9120 documents,
** 5.1% of the tokens (--valid-fraction 0.05)" */
static void units_report(const UnitList *l, int by, double fraction)
{
    int64_t tok = 0, vtok = 0, docs = 0, vdocs = 0;
    size_t nv = 0, np = 0;
    for (size_t i = 0; i < l->n; i++) {
        np += l->u[i].pinned >= 0;
        tok += l->u[i].tokens;
        docs += l->u[i].docs;
        if (l->u[i].valid) {
            nv++;
            vtok += l->u[i].tokens;
            vdocs += l->u[i].docs;
        }
    }
    const char *what = by == SPLIT_BY_PATH ? "paths" : "repositories";
    fprintf(stderr,
            "%s: split by %s: valid %zu of %zu %s, %lld of %lld documents, %.1f%% of the "
            "tokens (--valid-fraction %g)\n",
            cm_prog, by == SPLIT_BY_PATH ? "path" : "repository", nv, l->n, what, (long long)vdocs,
            (long long)docs, tok ? 100.0 * vtok / tok : 0.0, fraction);
    if (np)
        fprintf(stderr, "%s: split: %zu of the %zu %s kept the split of --split-from\n", cm_prog,
                np, l->n, what);
}

int split_assign(sqlite3 *db, const char *ipath, double fraction, uint64_t seed, int by, int quiet)
{
    UnitList l = { 0 };
    int pins = split_pins_kinds(db, ipath);
    if (pins < 0) return CM_EIO;
    if (units_read(db, ipath, by, seed, (pins >> by) & 1, &l)) return CM_EIO;
    if (by == SPLIT_BY_REPO && l.n == 1 && l.u[0].pinned < 0 && fraction > 0 && fraction < 1) {
        warn("%s: one repository only ('%s'): the split is by path instead (--split-by path to "
             "ask for it)",
             ipath, l.u[0].key);
        units_free(&l);
        by = SPLIT_BY_PATH;
        if (units_read(db, ipath, by, seed, 0, &l)) return CM_EIO;
    }
    if (l.n) qsort(l.u, l.n, sizeof *l.u, unit_cmp);
    units_choose(&l, fraction);
    int rc = units_write(db, ipath, by, &l) ? CM_EIO : CM_OK;
    if (!rc && !quiet) units_report(&l, by, fraction);
    units_free(&l);
    return rc;
}

int split_record(sqlite3 *db, const char *ipath, double fraction, uint64_t seed, int by)
{
    /* a corpus of format 1 or 2 becomes format 3 (split_by, n_prompt columns) */
    if (index_upgrade(db, ipath)) return CM_EIO;
    char hex[17];
    hash_hex(seed, hex);
    char *sql = sqlite3_mprintf("UPDATE corpus SET valid_fraction = %.17g, split_seed = %Q, "
                                "split_by = %Q, format_version = %d",
                                fraction, hex, split_by_name(by), INDEX_VERSION);
    int rc = index_exec(db, sql, ipath) ? CM_EIO : CM_OK;
    sqlite3_free(sql);
    return rc;
}

/*
** Without --split-from, pins of another unit kind than `by` would be ignored: refused instead.
** CM_OK, CM_EUSAGE or CM_EIO.
*/
static int split_check_pins(sqlite3 *db, const char *ipath, int by, const char *dir)
{
    int pins = split_pins_kinds(db, ipath);
    if (pins < 0) return CM_EIO;
    if (pins == 0 || ((pins >> by) & 1)) return CM_OK;
    error("%s: keeps the split of another corpus by %s (--split-from): give --split-from DIR "
          "again to split by %s",
          dir, split_by_name(by == SPLIT_BY_REPO ? SPLIT_BY_PATH : SPLIT_BY_REPO),
          split_by_name(by));
    return CM_EUSAGE;
}

/* SQLite's progress callback: a stop signal interrupts the update (rolled back). */
static int split_stopping(void *arg)
{
    (void)arg;
    return cm_stopping();
}

int split_run(const char *dir, double valid_fraction, uint64_t seed, int have_seed, int by,
              const char *split_from, int quiet)
{
    CorpusIndex x;
    CorpusFaults f = { NULL, 0, 0, 0 };
    int rc = corpus_index_open(&x, dir, CORPUS_INDEX_WRITE, &f);
    if (!rc) rc = corpus_check_shards(&x, &f);
    if (rc) {
        corpus_index_close(&x);
        return rc;
    }
    uint64_t s = have_seed ? seed : x.split_seed;
    sqlite3_progress_handler(x.db, 100000, split_stopping, NULL);
    rc = index_exec(x.db, "BEGIN", x.ipath) ? CM_EIO : CM_OK;
    if (!rc && split_from) rc = split_pin(x.db, x.ipath, split_from, by, quiet);
    if (!rc && !split_from) rc = split_check_pins(x.db, x.ipath, by, dir);
    if (!rc) rc = split_assign(x.db, x.ipath, valid_fraction, s, by, quiet);
    if (!rc) rc = split_record(x.db, x.ipath, valid_fraction, s, by);
    if (!rc) rc = index_exec(x.db, "COMMIT", x.ipath) ? CM_EIO : CM_OK;
    sqlite3_progress_handler(x.db, 0, NULL, NULL);
    if (rc) sqlite3_exec(x.db, "ROLLBACK", NULL, NULL, NULL);
    if (rc && cm_stopping()) rc = CM_EINTR; /* the message said "interrupted" */
    corpus_index_close(&x);
    return rc;
}
