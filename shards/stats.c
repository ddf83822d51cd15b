// SPDX-License-Identifier: MIT
/*
** stats.c: `cm-shards stats` -- tokens, documents, repositories and bytes per split and per
** shard, from the index, as two tables or one JSON object (see shards.h); for a corpus with
** instruction examples (documents with n_prompt > 0, index v3) also their prompt and response
** tokens per split. The corpus is opened
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

/*
** The examples per split as JSON: "examples": {"train": {"examples": N, "prompt_tokens": P,
** "response_tokens": R}, ...} (nothing when the corpus has none; se may be NULL).
*/
static void stats_json_examples(JsonWriter *w, sqlite3_stmt *se)
{
    int any = 0;
    while (se && sqlite3_step(se) == SQLITE_ROW) {
        if (!any++) jw_object(w, "examples");
        jw_object(w, (const char *)sqlite3_column_text(se, 0));
        jw_i64(w, "examples", sqlite3_column_int64(se, 1));
        jw_fmt(w, "prompt_tokens", "%.0f", sqlite3_column_double(se, 2));
        jw_fmt(w, "response_tokens", "%.0f", sqlite3_column_double(se, 3));
        jw_close(w);
    }
    if (any) jw_close(w);
}

/*
** The examples per split as a table after the others (nothing when there are none).
*/
static void stats_table_examples(sqlite3_stmt *se)
{
    int any = 0;
    while (se && sqlite3_step(se) == SQLITE_ROW) {
        if (!any++)
            printf("\n%-8s %12s %15s %15s\n", "split", "examples", "prompt tokens",
                   "response tokens");
        printf("%-8s %12lld %15.0f %15.0f\n", sqlite3_column_text(se, 0),
               (long long)sqlite3_column_int64(se, 1), sqlite3_column_double(se, 2),
               sqlite3_column_double(se, 3));
    }
}

static void stats_json(const CorpusIndex *x, const char *dir, sqlite3_stmt *sp, sqlite3_stmt *sh,
                       sqlite3_stmt *se)
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
    stats_json_examples(&w, se);
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

static void stats_tables(const CorpusIndex *x, sqlite3_stmt *sp, sqlite3_stmt *sh, sqlite3_stmt *se)
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
    stats_table_examples(se);
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
    sqlite3_stmt *sp = NULL, *sh = NULL, *se = NULL;
    /* index v3: the examples (an index of version 1 or 2 has none) */
    if (index_has_column(x.db, NULL, "documents", "n_prompt") == 1 &&
        sqlite3_prepare_v2(x.db,
                           "SELECT split, COUNT(*), TOTAL(n_prompt), TOTAL(n_tokens - n_prompt) "
                           "FROM documents WHERE n_prompt > 0 GROUP BY split ORDER BY split",
                           -1, &se, NULL) != SQLITE_OK) {
        error("%s: %s", x.ipath, index_error(x.db));
        rc = CM_EFORMAT;
    } else if (sqlite3_prepare_v2(x.db,
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
        stats_json(&x, dir, sp, sh, se);
    } else {
        stats_tables(&x, sp, sh, se);
    }
    sqlite3_finalize(se);
    sqlite3_finalize(sp);
    sqlite3_finalize(sh);
    corpus_index_close(&x);
    return rc;
}
