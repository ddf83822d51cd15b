// SPDX-License-Identifier: MIT
/*
** cat.c: `cm-shards cat` -- print the documents selected by --where back as JSONL, decoded with
** the tokenizer stored in the index (or as token ids), in document order (see shards.h). The
** corpus is opened by the reader (corpus.h), so it is checked like cm-train checks it. An
** instruction example (index v3, n_prompt > 0) gets "n_prompt": its leading prompt tokens.
*/
#include "shards.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "atomic.h"       // defines: cm_stopping
#include "corpus.h"       // defines: corpus_open_status, corpus_read_tokens
#include "corpus_index.h" // defines: corpus_select
#include "io.h"           // defines: Out
#include "json.h"         // defines: json_escape_out
#include "shard.h"        // defines: INDEX_NAME, index_error
#include "tokenize/bpe.h" // defines: bpe_load_mem, bpe_decode
#include "util.h"         // defines: error, Buf, exit codes

/* The columns cat selects, in this order (n_prompt: index v3; 0 for versions 1 and 2). */
#define CAT_COLUMNS \
    "id, shard, token_offset, n_tokens, n_bytes, repo_name, path, license, " \
    "imports, split, extra, "
enum {
    COL_ID,
    COL_SHARD,
    COL_OFFSET,
    COL_NTOKENS,
    COL_NBYTES,
    COL_REPO,
    COL_PATH,
    COL_LICENSE,
    COL_IMPORTS,
    COL_SPLIT,
    COL_EXTRA,
    COL_NPROMPT
};

typedef struct {
    const char *dir; /* the corpus directory, for messages */
    Corpus *c;       /* the open corpus */
    Bpe *bpe;        /* its tokenizer (NULL with --ids) */
    uint32_t *ids;   /* one document's ids */
    size_t cap;      /* allocated */
    Buf text, fixed; /* its decoded text, and the text with invalid UTF-8 repaired */
    Out o;           /* stdout */
} CatState;

/*
** Write a JSON string member "key":"value" (value NULL: nothing written).
*/
static void put_str(Out *o, int *first, const char *key, const unsigned char *v, int n)
{
    if (!v) return;
    out_puts(o, *first ? "{\"" : ",\"");
    *first = 0;
    out_puts(o, key);
    out_puts(o, "\":");
    json_escape_out(o, (const char *)v, (size_t)n);
}

static void put_column(Out *o, int *first, const char *key, sqlite3_stmt *st, int col)
{
    put_str(o, first, key, sqlite3_column_text(st, col), sqlite3_column_bytes(st, col));
}

/*
** "ids":[...] or "content":"..." of n ids. Returns 0, or CM_EFORMAT after the message.
*/
static int put_body(CatState *k, int *first, uint64_t n, int64_t id)
{
    if (!k->bpe) {
        out_puts(&k->o, *first ? "{\"ids\":[" : ",\"ids\":[");
        *first = 0;
        for (uint64_t i = 0; i < n; i++) {
            char num[16];
            int len = snprintf(num, sizeof num, i ? ",%u" : "%u", k->ids[i]);
            out_write(&k->o, num, (size_t)len);
        }
        out_putc(&k->o, ']');
        return 0;
    }
    buf_reset(&k->text);
    if (bpe_decode(k->bpe, k->ids, (size_t)n, &k->text)) {
        error("%s: document %lld: a token id is outside the stored tokenizer", k->dir,
              (long long)id);
        return CM_EFORMAT;
    }
    const Buf *t = &k->text;
    if (utf8_valid_prefix((const unsigned char *)t->buf, t->len) != t->len) {
        buf_reset(&k->fixed);
        utf8_repair((const unsigned char *)t->buf, t->len, &k->fixed);
        t = &k->fixed;
    }
    put_str(&k->o, first, "content", (const unsigned char *)(t->buf ? t->buf : ""), (int)t->len);
    return 0;
}

/*
** Print the document at the current row of st as one JSON line. Returns 0 or an exit status.
*/
static int cat_document(CatState *k, sqlite3_stmt *st)
{
    int64_t id = sqlite3_column_int64(st, COL_ID);
    uint64_t n = (uint64_t)sqlite3_column_int64(st, COL_NTOKENS);
    if (n > k->cap) {
        k->cap = n;
        k->ids = xrealloc(k->ids, k->cap * sizeof *k->ids);
    }
    if (corpus_read_tokens(k->c, (uint32_t)sqlite3_column_int64(st, COL_SHARD),
                           (uint64_t)sqlite3_column_int64(st, COL_OFFSET), n, k->ids)) {
        error("%s: document %lld points outside its shard (run cm-shards verify)", k->dir,
              (long long)id);
        return CM_EFORMAT;
    }
    if (n && k->ids[n - 1] == corpus_eot_id(k->c)) n--; /* the closing end-of-text */
    int first = 1;
    put_column(&k->o, &first, "repo_name", st, COL_REPO);
    put_column(&k->o, &first, "path", st, COL_PATH);
    if (sqlite3_column_type(st, COL_NBYTES) != SQLITE_NULL) {
        char num[40];
        snprintf(num, sizeof num, "%s\"size\":%lld", first ? "{" : ",",
                 (long long)sqlite3_column_int64(st, COL_NBYTES));
        out_puts(&k->o, num);
        first = 0;
    }
    put_column(&k->o, &first, "license", st, COL_LICENSE);
    int rc = put_body(k, &first, n, id);
    if (rc) return rc;
    if (sqlite3_column_type(st, COL_IMPORTS) != SQLITE_NULL) {
        out_puts(&k->o, ",\"imports\":");
        out_write(&k->o, sqlite3_column_text(st, COL_IMPORTS),
                  (size_t)sqlite3_column_bytes(st, COL_IMPORTS));
    }
    const char *extra = (const char *)sqlite3_column_text(st, COL_EXTRA);
    int el = sqlite3_column_bytes(st, COL_EXTRA);
    if (extra && el > 2 && extra[0] == '{') {
        out_putc(&k->o, ',');
        out_write(&k->o, extra + 1, (size_t)el - 2);
    }
    int64_t np = sqlite3_column_int64(st, COL_NPROMPT);
    if (np > 0) { /* an instruction example: its leading np tokens are the prompt */
        char num[40];
        snprintf(num, sizeof num, ",\"n_prompt\":%lld", (long long)np);
        out_puts(&k->o, num);
    }
    out_puts(&k->o, "}\n");
    return 0;
}

/*
** Load the stored tokenizer into k->bpe. Returns 0, or CM_EFORMAT after the message.
*/
static int cat_load_tokenizer(CatState *k)
{
    char err[512];
    size_t jl;
    const char *js = corpus_tokenizer_json(k->c, &jl);
    k->bpe = bpe_load_mem(js, jl, "the tokenizer stored in the index", err, sizeof err);
    if (k->bpe) return 0;
    error("%s/%s: %s (use --ids to see the token ids)", k->dir, INDEX_NAME, err);
    return CM_EFORMAT;
}

/*
** Print every row of st. Returns 0 or an exit status.
*/
static int cat_rows(CatState *k, sqlite3_stmt *st, const char *where)
{
    int r, rc = CM_OK;
    while (rc == CM_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cm_stopping()) {
            error("%s: interrupted", k->dir);
            return CM_EINTR;
        }
        rc = cat_document(k, st);
    }
    if (rc == CM_OK && r != SQLITE_DONE) {
        sqlite3 *db = corpus_index(k->c);
        error("--where '%s': %s", where ? where : "", index_error(db));
        rc = CM_EUSAGE;
    }
    return rc;
}

int cat_run(const char *dir, const char *where, int64_t limit, int ids_only)
{
    char err[512];
    int rc = CM_OK;
    CatState k;
    memset(&k, 0, sizeof k);
    k.dir = dir;
    k.c = corpus_open_status(dir, &rc, err, sizeof err);
    if (!k.c) {
        error("%s", err);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    out_init(&k.o, 1, "stdout", 0);
    if (!ids_only) rc = cat_load_tokenizer(&k);
    int has_np = index_has_column(corpus_index(k.c), NULL, "documents", "n_prompt") == 1;
    if (!rc &&
        corpus_select(corpus_index(k.c), has_np ? CAT_COLUMNS "n_prompt" : CAT_COLUMNS "0", NULL,
                      where, " LIMIT ?", &st, err, sizeof err)) {
        error("--where '%s': %s", where ? where : "", err);
        rc = CM_EUSAGE;
    }
    if (!rc) {
        sqlite3_bind_int64(st, sqlite3_bind_parameter_count(st), limit);
        rc = cat_rows(&k, st, where);
    }
    out_done(&k.o);
    sqlite3_finalize(st);
    bpe_free(k.bpe);
    free(k.ids);
    buf_free(&k.text);
    buf_free(&k.fixed);
    corpus_close(k.c);
    return rc;
}
