// SPDX-License-Identifier: MIT
/*
** split_from.c: --split-from DIR of `cm-shards pack` and `cm-shards split` -- keep the split of
** another corpus (docs/FORMATS.md "The split").
**
** The units (repositories, or paths with --split-by path) of DIR's index are recorded in this
** corpus's index as pins: table split_pins(split_by, unit, split), one row per unit of DIR, whose
** split is 'valid' when any document of that unit is valid in DIR, else 'train'. split_assign
** (split.c) puts a pinned unit in its pinned split and the others by the share rule, at the end
** of every pack, pack --resume, merge and split, so the pins live with the corpus: DIR is read
** only when the option is given. Thus an instruction corpus made from a base corpus's
** repositories keeps every valid repository of the base corpus in valid.
*/
#include "shards.h"

#include <stdio.h>
#include <sqlite3.h>

#include "corpus_index.h" // defines: CorpusIndex, corpus_index_open
#include "shard.h"        // defines: index_exec, index_error
#include "util.h"         // defines: error, exit codes

/* DIR's units and their split: 'valid' when any of their documents is valid there. */
static const char *const pin_sql[] = {
    /* SPLIT_BY_REPO */
    "SELECT COALESCE(repo_name, ''), MAX(split = 'valid') FROM documents GROUP BY 1",
    /* SPLIT_BY_PATH */
    "SELECT COALESCE(repo_name, '') || char(0) || COALESCE(path, ''), MAX(split = 'valid') "
    "FROM documents GROUP BY 1",
};

int split_from_check(const char *from)
{
    CorpusIndex x;
    CorpusFaults f = { NULL, 0, 0, 0 };
    int rc = corpus_index_open(&x, from, CORPUS_INDEX_READ, &f);
    corpus_index_close(&x);
    if (rc) error("--split-from %s: not a corpus to take the split from", from);
    return rc;
}

/*
** Copy the units of x's documents, with their split, into db's split_pins. *n: the units.
** Returns 0 or -1 (reported).
*/
static int pins_copy(sqlite3 *db, const char *ipath, const CorpusIndex *x, int by, uint64_t *n)
{
    sqlite3_stmt *q = NULL, *ins = NULL;
    if (sqlite3_prepare_v2(x->db, pin_sql[by == SPLIT_BY_PATH], -1, &q, NULL) != SQLITE_OK)
        return error("%s: %s", x->ipath, index_error(x->db));
    if (sqlite3_prepare_v2(db, "INSERT INTO split_pins(split_by, unit, split) VALUES(?, ?, ?)", -1,
                           &ins, NULL) != SQLITE_OK) {
        sqlite3_finalize(q);
        return error("%s: %s", ipath, index_error(db));
    }
    int rc;
    *n = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        sqlite3_bind_text(ins, 1, split_by_name(by), -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, (const char *)sqlite3_column_blob(q, 0),
                          sqlite3_column_bytes(q, 0), SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 3, sqlite3_column_int(q, 1) ? "valid" : "train", 5, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) break;
        sqlite3_reset(ins);
        (*n)++;
    }
    int bad = 0;
    if (rc == SQLITE_ROW)
        bad = error("%s: %s", ipath, index_error(db));
    else if (rc != SQLITE_DONE)
        bad = error("%s: %s", x->ipath, index_error(x->db));
    sqlite3_finalize(q);
    sqlite3_finalize(ins);
    return bad;
}

int split_pin(sqlite3 *db, const char *ipath, const char *from, int by, int quiet)
{
    CorpusIndex x;
    CorpusFaults f = { NULL, 0, 0, 0 };
    int rc = corpus_index_open(&x, from, CORPUS_INDEX_READ, &f);
    if (rc) {
        error("--split-from %s: not a corpus to take the split from", from);
        corpus_index_close(&x);
        return rc;
    }
    uint64_t n = 0;
    if (index_exec(db, SPLIT_PINS_SQL "DELETE FROM split_pins;", ipath) ||
        pins_copy(db, ipath, &x, by, &n))
        rc = CM_EIO;
    else if (!quiet)
        fprintf(stderr, "%s: --split-from %s: %llu %s keep their split\n", cm_prog, from,
                (unsigned long long)n, by == SPLIT_BY_PATH ? "paths" : "repositories");
    corpus_index_close(&x);
    return rc;
}

int split_pins_kinds(sqlite3 *db, const char *ipath)
{
    sqlite3_stmt *st = NULL;
    int has = index_has_column(db, NULL, "split_pins", "unit"), kinds = 0;
    if (has < 0) return error("%s: %s", ipath, index_error(db)), -1;
    if (!has) return 0;
    if (sqlite3_prepare_v2(db, "SELECT DISTINCT split_by FROM split_pins", -1, &st, NULL) !=
        SQLITE_OK)
        return error("%s: %s", ipath, index_error(db)), -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int by = split_by_parse((const char *)sqlite3_column_text(st, 0));
        if (by >= 0) kinds |= 1 << by;
    }
    sqlite3_finalize(st);
    return kinds;
}
