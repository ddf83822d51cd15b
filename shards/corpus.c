// SPDX-License-Identifier: MIT
/*
** corpus.c: the corpus reader of shards/corpus.h, used by cm-train and `cm-shards cat`.
**
** corpus_open() opens index.sqlite (read-only) and checks and maps every shard with the one
** opener/checker of corpus_index.h: for every row of `shards` the file is opened, its size
** (4096 + tokens x dtype) and its header checked against the index row and the corpus row, and
** it is mmapped read-only. Payload checksums are not recomputed here (that reads every byte;
** `cm-shards verify` does it). Memory: the index connection plus one range entry per run of
** adjacent selected documents per sampler; the token data stays in the page cache.
**
** The sampler sees the selected documents' token ranges as one virtual sequence (ranges of
** consecutive documents in the same shard are merged). A random window k starts at
** splitmix64(seed, k) mod (total - window + 1), so every token position is equally likely and
** window k depends on (seed, k) alone: seeking is just setting k. The examples sampler (one
** instruction example per window) is in examples.c; they share tell, seek, free and tokens
** (corpus_priv.h), and corpus_sampler_next on an examples sampler gives its next example.
*/
#include "corpus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sqlite3.h>

#include "corpus_index.h" // defines: CorpusIndex, corpus_index_open, shard_check, corpus_select
#include "corpus_priv.h"  // defines: struct Corpus, struct CorpusSampler, examples_free
#include "hash.h"         // defines: splitmix64
#include "util.h"         // defines: xmalloc

// ----------------------------------------------------------------------------
// opening

/*
** Check and map every shard of the index (corpus_index.h). Returns 0, or -1 after the fault.
*/
static int map_shards(Corpus *c, CorpusFaults *f)
{
    ShardRows it;
    ShardRow r;
    int k;
    if (shard_rows_begin(&it, &c->x, f)) return -1;
    while ((k = shard_rows_next(&it, &r, f)) > 0) {
        if ((size_t)r.id >= c->nsh) {
            size_t n = (size_t)r.id + 1;
            c->sh = xrealloc(c->sh, n * sizeof *c->sh);
            memset(c->sh + c->nsh, 0, (n - c->nsh) * sizeof *c->sh);
            c->nsh = n;
        }
        CShard *s = &c->sh[r.id];
        ShardMap m;
        if (shard_check(&c->x, &r, f, &m)) break;
        if (s->map) munmap(s->map, s->map_len); /* a duplicate id (not from pack): the last wins */
        s->tokens = r.tokens;
        s->map = m.map;
        s->map_len = m.len;
        s->data = m.map + SHARD_PAYLOAD_OFFSET;
    }
    shard_rows_end(&it);
    return f->count ? -1 : 0;
}

Corpus *corpus_open_status(const char *dir, int *status, char *err, size_t errlen)
{
    Corpus *c = xcalloc(1, sizeof *c);
    CorpusFaults f = { err, errlen, 0, 0 };
    if (corpus_index_open(&c->x, dir, CORPUS_INDEX_READ, &f) || map_shards(c, &f)) {
        if (status) *status = f.status;
        corpus_close(c);
        return NULL;
    }
    if (status) *status = 0;
    return c;
}

/*
** Open DIR/index.sqlite read-only, check and map every shard. Returns NULL with err on failure.
*/
Corpus *corpus_open(const char *dir, char *err, size_t errlen)
{
    return corpus_open_status(dir, NULL, err, errlen);
}

/*
** Unmap every shard, close the index and free the corpus.
*/
void corpus_close(Corpus *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->nsh; i++)
        if (c->sh[i].map) munmap(c->sh[i].map, c->sh[i].map_len);
    free(c->sh);
    corpus_index_close(&c->x);
    free(c);
}

uint32_t corpus_vocab_size(const Corpus *c)
{
    return c->x.vocab_size;
}
uint32_t corpus_eot_id(const Corpus *c)
{
    return c->x.eot_id;
}

const char *corpus_tokenizer_json(const Corpus *c, size_t *len)
{
    if (len) *len = c->x.tokenizer_len;
    return c->x.tokenizer_json;
}

/*
** Sum of a column over the documents of a split (NULL: all). Returns -1 on an SQL error.
*/
static double corpus_sum(const Corpus *c, const char *col, const char *split)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT TOTAL(%s) FROM documents WHERE ?1 IS NULL OR split = ?1",
             col);
    sqlite3_stmt *st = NULL;
    double v = -1;
    if (sqlite3_prepare_v2(c->x.db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (split) sqlite3_bind_text(st, 1, split, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_double(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

uint64_t corpus_tokens(const Corpus *c, const char *split)
{
    double v = corpus_sum(c, "n_tokens", split);
    return v > 0 ? (uint64_t)v : 0;
}

double corpus_bytes_per_token(const Corpus *c, const char *split)
{
    double t = corpus_sum(c, "n_tokens", split);
    double b = corpus_sum(c, "n_bytes", split);
    return t > 0 && b > 0 ? b / t : 0.0;
}

// ----------------------------------------------------------------------------
// sampler

CorpusSampler *corpus_sampler_new(Corpus *c, const char *split, const char *where, int mode,
                                  uint64_t seed, size_t window, char *err, size_t errlen)
{
    return corpus_sampler_open(c, split, where, mode, seed, window, err, errlen, NULL);
}

CorpusSampler *corpus_sampler_open(Corpus *c, const char *split, const char *where, int mode,
                                   uint64_t seed, size_t window, char *err, size_t errlen,
                                   int *status)
{
    int dummy;
    if (!status) status = &dummy;
    *status = CM_EFORMAT;
    if (window < 2) {
        snprintf(err, errlen, "window of %zu tokens: need at least 2 (T+1)", window);
        return NULL;
    }
    sqlite3_stmt *st = NULL;
    char why[300];
    if (corpus_select(c->x.db, "shard, token_offset, n_tokens", split, where, NULL, &st, why,
                      sizeof why)) {
        snprintf(err, errlen, "bad selection '%s': %s", where ? where : "", why);
        *status = CM_EUSAGE;
        return NULL;
    }
    CorpusSampler *s = xcalloc(1, sizeof *s);
    s->c = c;
    s->window = window;
    s->mode = mode;
    s->seed = seed;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t sh = sqlite3_column_int64(st, 0);
        int64_t off = sqlite3_column_int64(st, 1);
        int64_t n = sqlite3_column_int64(st, 2);
        if (sh < 0 || (size_t)sh >= c->nsh || !c->sh[sh].map || off < 0 || n < 0 ||
            (uint64_t)off + (uint64_t)n > c->sh[sh].tokens) {
            snprintf(err, errlen,
                     "index row (shard %lld, offset %lld, %lld tokens) points "
                     "outside the shards (run cm-shards verify)",
                     (long long)sh, (long long)off, (long long)n);
            sqlite3_finalize(st);
            corpus_sampler_free(s);
            return NULL;
        }
        if (n == 0) continue;
        SampleRange *last = s->nr ? &s->r[s->nr - 1] : NULL;
        if (last && last->shard == (uint32_t)sh && last->off + last->len == (uint64_t)off) {
            last->len += (uint64_t)n;
        } else {
            if (s->nr == cap) {
                cap = cap ? 2 * cap : 256;
                s->r = xrealloc(s->r, cap * sizeof *s->r);
            }
            s->r[s->nr++] = (SampleRange){ (uint32_t)sh, (uint64_t)off, (uint64_t)n, s->total };
        }
        s->total += (uint64_t)n;
    }
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "bad selection '%s': %s", where ? where : "",
                 sqlite3_errmsg(c->x.db));
        *status = CM_EUSAGE;
        sqlite3_finalize(st);
        corpus_sampler_free(s);
        return NULL;
    }
    sqlite3_finalize(st);
    if (s->nr == 0) {
        snprintf(err, errlen, "no documents selected (split %s%s%s)", split ? split : "all",
                 where ? ", where " : "", where ? where : "");
        corpus_sampler_free(s);
        return NULL;
    }
    if (s->total < window) {
        snprintf(err, errlen, "the selection holds %llu tokens, fewer than one window of %zu",
                 (unsigned long long)s->total, window);
        corpus_sampler_free(s);
        return NULL;
    }
    return s;
}

/*
** Copy n tokens of shard s from token `off` into out, widened to uint32.
*/
static void copy_tokens(const Corpus *c, const CShard *s, uint64_t off, size_t n, uint32_t *out)
{
    shard_tokens_get(s->data, c->x.dtype, off, n, out);
}

/*
** Copy window tokens starting at virtual position pos into w.
*/
static void sampler_copy(const CorpusSampler *s, uint64_t pos, uint32_t *w)
{
    size_t lo = 0, hi = s->nr; /* last range with cum <= pos */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].cum <= pos)
            lo = mid;
        else
            hi = mid;
    }
    size_t got = 0;
    for (size_t i = lo; got < s->window && i < s->nr; i++) {
        const SampleRange *r = &s->r[i];
        uint64_t from = pos > r->cum ? pos - r->cum : 0;
        uint64_t avail = r->len - from;
        size_t n = s->window - got;
        if (avail < n) n = (size_t)avail;
        copy_tokens(s->c, &s->c->sh[r->shard], r->off + from, n, w + got);
        got += n;
    }
}

int corpus_sampler_next(CorpusSampler *s, uint32_t *w)
{
    if (s->ex) return corpus_examples_next(s, w, NULL, NULL); /* an examples sampler */
    uint64_t pos;
    if (s->mode == CORPUS_SEQUENTIAL) {
        pos = s->k * (uint64_t)(s->window - 1);
        if (pos + s->window > s->total) return 0;
    } else {
        uint64_t x = s->seed ^ (s->k * 0xD1B54A32D192ED03ull);
        splitmix64(&x);
        uint64_t r = splitmix64(&x);
        pos = r % (s->total - s->window + 1);
    }
    sampler_copy(s, pos, w);
    s->k++;
    return 1;
}

uint64_t corpus_sampler_tell(const CorpusSampler *s)
{
    return s->k;
}
void corpus_sampler_seek(CorpusSampler *s, uint64_t pos)
{
    s->k = pos;
}

void corpus_sampler_free(CorpusSampler *s)
{
    if (!s) return;
    free(s->r);
    examples_free(s->ex);
    free(s);
}

/*
** Tokens selected by a sampler (extension used by cm-train for epoch sizes and by tests).
*/
uint64_t corpus_sampler_tokens(const CorpusSampler *s)
{
    return s->total;
}

struct sqlite3 *corpus_index(const Corpus *c)
{
    return c->x.db;
}

int corpus_read_tokens(const Corpus *c, uint32_t shard, uint64_t offset, uint64_t n, uint32_t *out)
{
    if (shard >= c->nsh || !c->sh[shard].map || offset > c->sh[shard].tokens ||
        n > c->sh[shard].tokens - offset)
        return -1;
    copy_tokens(c, &c->sh[shard], offset, (size_t)n, out);
    return 0;
}
