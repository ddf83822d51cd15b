// SPDX-License-Identifier: MIT
/*
** examples.c: the examples sampler of shards/corpus.h -- one instruction example per window,
** for prompt-masked fine-tuning.
**
** corpus_examples_open() reads the selected documents' rows once (shard, offset, tokens,
** prompt tokens; index v3's documents.n_prompt, 0 for indexes of version 1 and 2) into a table
** of a few integers per example, in document order. An example whose prompt is not shorter
** than the context (n_prompt >= window - 1) is left out and counted; one longer than the window
** keeps its first `window` tokens (its response cut) and is counted. A window holds the
** example's tokens, then end-of-text ids up to its end.
**
** CORPUS_RANDOM: draw k (0, 1, ...) is example perm_e[k mod N] of epoch e = k / N, where perm_e
** is a Fisher-Yates permutation of the N examples seeded by (seed, e): every example once per
** epoch, and draw k depends on (seed, k) alone, so seeking is setting k (the permutation of the
** epoch is rebuilt when k changes epoch). CORPUS_SEQUENTIAL: the examples in document order,
** once. Memory: 24 bytes per example, plus 4 per example for the permutation (random mode).
*/
#include "corpus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "corpus_priv.h" // defines: struct CorpusSampler, Examples
#include "hash.h"        // defines: splitmix64
#include "shard.h"       // defines: index_has_column
#include "util.h"        // defines: xmalloc, exit codes

typedef struct {
    uint64_t off;   /* first token in its shard's payload */
    uint32_t shard; /* shards.id */
    uint32_t n;     /* tokens in the window: min(n_tokens, window) */
    uint32_t np;    /* prompt tokens (< n) */
} ExampleRow;

struct Examples {
    ExampleRow *row;       /* the used examples, in document order */
    size_t n, cap;         /* count, allocated */
    uint32_t *perm;        /* random mode: the permutation of epoch perm_epoch */
    uint64_t perm_epoch;   /* UINT64_MAX: none built yet */
    CorpusExampleStats st; /* the counts */
};

void examples_free(Examples *e)
{
    if (!e) return;
    free(e->row);
    free(e->perm);
    free(e);
}

int corpus_has_prompts(const Corpus *c)
{
    sqlite3 *db = c->x.db;
    if (index_has_column(db, NULL, "documents", "n_prompt") != 1) return 0;
    sqlite3_stmt *st = NULL;
    int has = 0;
    if (sqlite3_prepare_v2(db, "SELECT EXISTS(SELECT 1 FROM documents WHERE n_prompt > 0)", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        has = sqlite3_column_int(st, 0) != 0;
    sqlite3_finalize(st);
    return has;
}

/*
** Take one selected row (shard, offset, n_tokens, n_prompt): checked against the shards, then
** used, skipped or truncated. Returns 0, or -1 with err (a row the shards do not hold).
*/
static int examples_add(CorpusSampler *s, sqlite3_stmt *st, char *err, size_t errlen)
{
    const Corpus *c = s->c;
    Examples *e = s->ex;
    int64_t sh = sqlite3_column_int64(st, 0), off = sqlite3_column_int64(st, 1);
    int64_t n = sqlite3_column_int64(st, 2), np = sqlite3_column_int64(st, 3);
    if (sh < 0 || (size_t)sh >= c->nsh || !c->sh[sh].map || off < 0 || n < 0 ||
        (uint64_t)off + (uint64_t)n > c->sh[sh].tokens || np < 0 || (np > 0 && np >= n)) {
        snprintf(err, errlen,
                 "index row (shard %lld, offset %lld, %lld tokens, %lld of prompt) points "
                 "outside the shards or is damaged (run cm-shards verify)",
                 (long long)sh, (long long)off, (long long)n, (long long)np);
        return -1;
    }
    if (n == 0) return 0;
    if ((uint64_t)np >= s->window - 1) {
        e->st.skipped_long++;
        return 0;
    }
    if ((uint64_t)n > s->window) {
        e->st.truncated++;
        n = (int64_t)s->window;
    }
    if (e->n == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 256;
        e->row = xrealloc(e->row, e->cap * sizeof *e->row);
    }
    e->row[e->n++] = (ExampleRow){ (uint64_t)off, (uint32_t)sh, (uint32_t)n, (uint32_t)np };
    e->st.examples++;
    e->st.tokens += (uint64_t)n;
    e->st.response += (uint64_t)(n - np);
    return 0;
}

/*
** Read the selection into s->ex. Returns 0, or an exit status with err.
*/
static int examples_read(CorpusSampler *s, const char *split, const char *where, char *err,
                         size_t errlen)
{
    sqlite3 *db = s->c->x.db;
    int has_np = index_has_column(db, NULL, "documents", "n_prompt");
    const char *cols = has_np == 1 ? "shard, token_offset, n_tokens, n_prompt"
                                   : "shard, token_offset, n_tokens, 0";
    sqlite3_stmt *st = NULL;
    char why[300];
    if (corpus_select(db, cols, split, where, NULL, &st, why, sizeof why)) {
        snprintf(err, errlen, "bad selection '%s': %s", where ? where : "", why);
        return CM_EUSAGE;
    }
    int rc;
    uint64_t rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows++;
        if (examples_add(s, st, err, errlen)) {
            sqlite3_finalize(st);
            return CM_EFORMAT;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "bad selection '%s': %s", where ? where : "", sqlite3_errmsg(db));
        return CM_EUSAGE;
    }
    if (rows == 0) {
        snprintf(err, errlen, "no documents selected (split %s%s%s)", split ? split : "all",
                 where ? ", where " : "", where ? where : "");
        return CM_EFORMAT;
    }
    if (s->ex->n == 0) {
        snprintf(err, errlen,
                 "none of the %llu examples selected fits a window of %zu tokens: %llu have a "
                 "prompt of %zu tokens or more",
                 (unsigned long long)rows, s->window, (unsigned long long)s->ex->st.skipped_long,
                 s->window - 1);
        return CM_EFORMAT;
    }
    if (s->ex->n > UINT32_MAX) {
        snprintf(err, errlen, "more than %u examples selected", UINT32_MAX);
        return CM_EFORMAT;
    }
    return 0;
}

CorpusSampler *corpus_examples_open(Corpus *c, const char *split, const char *where, int mode,
                                    uint64_t seed, size_t window, CorpusExampleStats *st, char *err,
                                    size_t errlen, int *status)
{
    int dummy;
    if (!status) status = &dummy;
    *status = CM_EFORMAT;
    if (st) memset(st, 0, sizeof *st);
    if (window < 2) {
        snprintf(err, errlen, "window of %zu tokens: need at least 2 (T+1)", window);
        return NULL;
    }
    CorpusSampler *s = xcalloc(1, sizeof *s);
    s->c = c;
    s->window = window;
    s->mode = mode;
    s->seed = seed;
    s->ex = xcalloc(1, sizeof *s->ex);
    s->ex->perm_epoch = UINT64_MAX;
    int rc = examples_read(s, split, where, err, errlen);
    if (st) *st = s->ex->st;
    if (rc) {
        *status = rc;
        corpus_sampler_free(s);
        return NULL;
    }
    s->total = s->ex->st.tokens;
    *status = 0;
    return s;
}

/*
** Build the permutation of epoch ep (Fisher-Yates, seeded by (seed, ep)).
*/
static void examples_shuffle(CorpusSampler *s, uint64_t ep)
{
    Examples *e = s->ex;
    if (!e->perm) e->perm = xmalloc(e->n * sizeof *e->perm);
    for (size_t i = 0; i < e->n; i++) e->perm[i] = (uint32_t)i;
    uint64_t x = s->seed ^ (ep * 0x9E3779B97F4A7C15ull);
    splitmix64(&x);
    for (size_t i = e->n; i > 1; i--) {
        size_t j = (size_t)(splitmix64(&x) % i);
        uint32_t t = e->perm[i - 1];
        e->perm[i - 1] = e->perm[j];
        e->perm[j] = t;
    }
    e->perm_epoch = ep;
}

int corpus_examples_next(CorpusSampler *s, uint32_t *w, uint32_t *n_prompt, uint32_t *n_tokens)
{
    Examples *e = s->ex;
    size_t i;
    if (s->mode == CORPUS_SEQUENTIAL) {
        if (s->k >= e->n) return 0;
        i = (size_t)s->k;
    } else {
        uint64_t ep = s->k / e->n;
        if (ep != e->perm_epoch) examples_shuffle(s, ep);
        i = e->perm[s->k % e->n];
    }
    const ExampleRow *r = &e->row[i];
    corpus_read_tokens(s->c, r->shard, r->off, r->n, w); /* in range: checked when read */
    uint32_t eot = s->c->x.eot_id;
    for (size_t j = r->n; j < s->window; j++) w[j] = eot;
    if (n_prompt) *n_prompt = r->np;
    if (n_tokens) *n_tokens = r->n;
    s->k++;
    return 1;
}
