// SPDX-License-Identifier: MIT
/*
** stats.c: `cm-shards stats` -- tokens, documents, repositories and bytes per split and per
** shard, from the index, as two tables or one JSON object (see shards.h). The corpus is opened
** and its shards checked by the one checker of corpus_index.h, so that a damaged corpus gives
** the same exit status here as in every other verb.
*/
#include "shards.h"

#include <stdio.h>
#include <string.h>
#include <sqlite3.h>

#include "corpus_index.h" // defines: CorpusIndex, corpus_index_open, corpus_check_shards
#include "json.h"         // defines: json_escape
#include "util.h"         // defines: error, Buf, exit codes

typedef struct {
    double documents, tokens, bytes; /* summed over the splits */
} StatsTotals;

static void stats_json(const CorpusIndex *x, const char *dir, sqlite3_stmt *sp, sqlite3_stmt *sh)
{
    StatsTotals t = { 0, 0, 0 };
    Buf b = { 0 };
    JsonWriter w;
    jw_begin(&w, &b);
    jw_cstr(&w, "corpus", dir);
    jw_bool(&w, "complete", x->complete);
    jw_u64(&w, "vocab_size", x->vocab_size);
    jw_u64(&w, "dtype", x->dtype);
    jw_object(&w, "splits");
    while (sqlite3_step(sp) == SQLITE_ROW) {
        double d = sqlite3_column_double(sp, 1), tk = sqlite3_column_double(sp, 3),
               by = sqlite3_column_double(sp, 4);
        jw_object(&w, (const char *)sqlite3_column_text(sp, 0));
        jw_fmt(&w, "documents", "%.0f", d);
        jw_i64(&w, "repos", sqlite3_column_int64(sp, 2));
        jw_fmt(&w, "tokens", "%.0f", tk);
        jw_fmt(&w, "bytes", "%.0f", by);
        jw_close(&w);
        t.documents += d, t.tokens += tk, t.bytes += by;
    }
    jw_close(&w);
    jw_fmt(&w, "documents", "%.0f", t.documents);
    jw_fmt(&w, "tokens", "%.0f", t.tokens);
    jw_fmt(&w, "bytes", "%.0f", t.bytes);
    jw_array(&w, "shards");
    while (sqlite3_step(sh) == SQLITE_ROW) {
        jw_object(&w, NULL);
        jw_i64(&w, "id", sqlite3_column_int64(sh, 0));
        jw_cstr(&w, "file", (const char *)sqlite3_column_text(sh, 1));
        jw_i64(&w, "documents", sqlite3_column_int64(sh, 2));
        jw_i64(&w, "tokens", sqlite3_column_int64(sh, 3));
        jw_i64(&w, "bytes", sqlite3_column_int64(sh, 4));
        jw_close(&w);
    }
    jw_close(&w);
    jw_close(&w);
    buf_addc(&b, '\n');
    fwrite(b.buf, 1, b.len, stdout);
    buf_free(&b);
}

static void stats_tables(const CorpusIndex *x, sqlite3_stmt *sp, sqlite3_stmt *sh)
{
    StatsTotals t = { 0, 0, 0 };
    printf("%-8s %12s %8s %15s %15s\n", "split", "documents", "repos", "tokens", "bytes");
    while (sqlite3_step(sp) == SQLITE_ROW) {
        double d = sqlite3_column_double(sp, 1), tk = sqlite3_column_double(sp, 3),
               b = sqlite3_column_double(sp, 4);
        printf("%-8s %12.0f %8lld %15.0f %15.0f\n", sqlite3_column_text(sp, 0), d,
               (long long)sqlite3_column_int64(sp, 2), tk, b);
        t.documents += d, t.tokens += tk, t.bytes += b;
    }
    printf("%-8s %12.0f %8s %15.0f %15.0f\n\n", "total", t.documents, "", t.tokens, t.bytes);
    printf("%-5s %-18s %12s %15s %15s\n", "shard", "file", "documents", "tokens", "bytes");
    while (sqlite3_step(sh) == SQLITE_ROW)
        printf("%-5lld %-18s %12lld %15lld %15lld\n", (long long)sqlite3_column_int64(sh, 0),
               sqlite3_column_text(sh, 1), (long long)sqlite3_column_int64(sh, 2),
               (long long)sqlite3_column_int64(sh, 3), (long long)sqlite3_column_int64(sh, 4));
    if (!x->complete) printf("\n(incomplete: the pack did not finish)\n");
}

int stats_run(const char *dir, int json)
{
    CorpusIndex x;
    CorpusFaults f = { NULL, 0, 0, 0 };
    int rc = corpus_index_open(&x, dir, CORPUS_INDEX_READ, &f);
    if (!rc) rc = corpus_check_shards(&x, &f);
    if (rc) {
        corpus_index_close(&x);
        return rc;
    }
    sqlite3_stmt *sp = NULL, *sh = NULL;
    if (sqlite3_prepare_v2(x.db,
                           "SELECT split, COUNT(*), COUNT(DISTINCT repo_name), "
                           "TOTAL(n_tokens), TOTAL(n_bytes) FROM documents GROUP BY split "
                           "ORDER BY split",
                           -1, &sp, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(x.db,
                           "SELECT id, file, documents, tokens, bytes FROM shards "
                           "ORDER BY id",
                           -1, &sh, NULL) != SQLITE_OK) {
        error("%s: %s", x.ipath, index_error(x.db));
        rc = CM_EFORMAT;
    } else if (json) {
        stats_json(&x, dir, sp, sh);
    } else {
        stats_tables(&x, sp, sh);
    }
    sqlite3_finalize(sp);
    sqlite3_finalize(sh);
    corpus_index_close(&x);
    return rc;
}
