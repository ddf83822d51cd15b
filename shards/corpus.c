// SPDX-License-Identifier: MIT
/*
** corpus.c: the corpus reader of shards/corpus.h, used by cm-train and `cm-shards stats`.
**
** corpus_open() reads index.sqlite (read-only), then for every row of `shards` opens the file,
** checks its size (4096 + tokens x dtype) and its header against the index row and the corpus
** row, and mmaps it read-only. Payload checksums are not recomputed here (that reads every byte;
** `cm-shards verify` does it). Memory: the index connection plus one range entry per run of
** adjacent selected documents per sampler; the token data stays in the page cache.
**
** The sampler sees the selected documents' token ranges as one virtual sequence (ranges of
** consecutive documents in the same shard are merged). A random window k starts at
** splitmix64(seed, k) mod (total - window + 1), so every token position is equally likely and
** window k depends on (seed, k) alone: seeking is just setting k.
*/
#include "corpus.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>

#include "hash.h"   // defines: splitmix64
#include "shard.h"  // defines: ShardHeader, shard_header_decode, INDEX_NAME
#include "util.h"   // defines: xmalloc, Buf

typedef struct {
    uint64_t tokens;            /* token count (index and header agree) */
    unsigned char *map;         /* the whole file, mapped read-only (NULL: no such shard id) */
    size_t map_len;             /* its length */
    const unsigned char *data;  /* map + SHARD_PAYLOAD_OFFSET */
} CShard;

struct Corpus {
    sqlite3 *db;                /* index.sqlite, read-only */
    uint32_t vocab_size;        /* from the corpus row */
    uint32_t eot_id;            /* from the corpus row */
    uint32_t dtype;             /* bytes per token */
    uint64_t fingerprint;       /* tokenizer fingerprint */
    char *tok_json;             /* tokenizer.json */
    size_t tok_len;             /* its length */
    CShard *sh;                 /* indexed by shards.id */
    size_t nsh;                 /* max id + 1 */
};

typedef struct {
    uint32_t shard;             /* shards.id */
    uint64_t off;               /* first token in the shard's payload */
    uint64_t len;               /* tokens */
    uint64_t cum;               /* position of its first token in the virtual sequence */
} Range;

struct CorpusSampler {
    Corpus *c;                  /* the corpus (not owned) */
    Range *r;                   /* selected ranges, in document order */
    size_t nr;                  /* count */
    uint64_t total;             /* tokens in all ranges */
    size_t window;              /* T+1 */
    int mode;                   /* CORPUS_RANDOM or CORPUS_SEQUENTIAL */
    uint64_t seed;              /* random mode seed */
    uint64_t k;                 /* windows drawn so far */
};

// ----------------------------------------------------------------------------
// opening

/*
** Check one shard against its index row and map it. Returns 0, or -1 with err set.
*/
static int corpus_map_shard(Corpus *c, CShard *s, const char *dir, const char *file,
                            uint64_t tokens, uint64_t documents, const char *checksum, char *err,
                            size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    uint64_t want = SHARD_PAYLOAD_OFFSET + tokens * c->dtype;
    if ((uint64_t)st.st_size != want) {
        snprintf(err, errlen, "%s: %s: %llu bytes, the index says %llu (4096-byte header + "
                 "%llu tokens x %u bytes)", path,
                 (uint64_t)st.st_size < want ? "truncated" : "wrong size",
                 (unsigned long long)st.st_size, (unsigned long long)want,
                 (unsigned long long)tokens, c->dtype);
        close(fd);
        return -1;
    }
    s->map = mmap(NULL, (size_t)want, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        snprintf(err, errlen, "%s: cannot mmap: %s", path, strerror(errno));
        return -1;
    }
    s->map_len = (size_t)want;
    s->data = s->map + SHARD_PAYLOAD_OFFSET;
    s->tokens = tokens;
    ShardHeader h;
    char why[160];
    if (shard_header_decode(&h, s->map, s->map_len, why, sizeof why)) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    char hex[17];
    hash_hex(h.checksum, hex);
    const char *what = NULL;
    if (h.tokens != tokens) what = "token count";
    else if (h.dtype != c->dtype) what = "dtype";
    else if (h.fingerprint != c->fingerprint) what = "tokenizer fingerprint";
    else if (h.eot_id != c->eot_id) what = "end-of-text id";
    else if (h.vocab_size != c->vocab_size) what = "vocabulary size";
    else if (h.documents != documents) what = "document count";
    else if (!checksum || strcmp(hex, checksum)) what = "payload checksum";
    if (what) {
        snprintf(err, errlen, "%s: header does not match the index: %s differs", path, what);
        return -1;
    }
    return 0;
}

/*
** Open DIR/index.sqlite read-only, check and map every shard. Returns NULL with err on failure.
*/
Corpus *corpus_open(const char *dir, char *err, size_t errlen)
{
    Corpus *c = xcalloc(1, sizeof *c);
    sqlite3_stmt *st = NULL;
    size_t plen = strlen(dir) + sizeof INDEX_NAME + 2;
    char *ipath = xmalloc(plen);
    snprintf(ipath, plen, "%s/%s", dir, INDEX_NAME);
    if (access(ipath, F_OK)) {
        snprintf(err, errlen, "%s: cannot open: %s (is '%s' a corpus made by cm-shards pack?)",
                 ipath, strerror(errno), dir);
        goto fail;
    }
    if (index_open_read(ipath, &c->db) != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open: %s", ipath, sqlite3_errmsg(c->db));
        goto fail;
    }
    sqlite3_busy_timeout(c->db, 5000);
    if (sqlite3_prepare_v2(c->db, "SELECT format_version, tokenizer_fingerprint, tokenizer_json, "
                           "vocab_size, eot_id, dtype FROM corpus", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: not a codemill corpus index: %s", ipath, sqlite3_errmsg(c->db));
        goto fail;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        snprintf(err, errlen, "%s: not a codemill corpus index (no corpus row)", ipath);
        goto fail;
    }
    int ver = sqlite3_column_int(st, 0);
    if (ver != INDEX_VERSION) {
        snprintf(err, errlen, "%s: index format version %d is not supported (this build reads %d)",
                 ipath, ver, INDEX_VERSION);
        goto fail;
    }
    if (index_parse_hex64((const char *)sqlite3_column_text(st, 1), &c->fingerprint)) {
        snprintf(err, errlen, "%s: bad tokenizer_fingerprint in the corpus row", ipath);
        goto fail;
    }
    c->tok_len = (size_t)sqlite3_column_bytes(st, 2);
    c->tok_json = xmalloc(c->tok_len + 1);
    memcpy(c->tok_json, sqlite3_column_text(st, 2) ? (const char *)sqlite3_column_text(st, 2) : "",
           c->tok_len);
    c->tok_json[c->tok_len] = 0;
    c->vocab_size = (uint32_t)sqlite3_column_int64(st, 3);
    c->eot_id = (uint32_t)sqlite3_column_int64(st, 4);
    c->dtype = (uint32_t)sqlite3_column_int(st, 5);
    sqlite3_finalize(st);
    st = NULL;
    if (c->dtype != 2 && c->dtype != 4) {
        snprintf(err, errlen, "%s: bad dtype %u in the corpus row", ipath, c->dtype);
        goto fail;
    }
    if (sqlite3_prepare_v2(c->db, "SELECT id, file, tokens, documents, checksum FROM shards "
                           "ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", ipath, sqlite3_errmsg(c->db));
        goto fail;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *file = (const char *)sqlite3_column_text(st, 1);
        if (id < 0 || id > (1 << 24) || !file || strchr(file, '/')) {
            snprintf(err, errlen, "%s: bad shards row (id %lld)", ipath, (long long)id);
            goto fail;
        }
        if ((size_t)id >= c->nsh) {
            size_t n = (size_t)id + 1;
            c->sh = xrealloc(c->sh, n * sizeof *c->sh);
            memset(c->sh + c->nsh, 0, (n - c->nsh) * sizeof *c->sh);
            c->nsh = n;
        }
        if (corpus_map_shard(c, &c->sh[id], dir, file, (uint64_t)sqlite3_column_int64(st, 2),
                             (uint64_t)sqlite3_column_int64(st, 3),
                             (const char *)sqlite3_column_text(st, 4), err, errlen))
            goto fail;
    }
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "%s: %s", ipath, sqlite3_errmsg(c->db));
        goto fail;
    }
    sqlite3_finalize(st);
    free(ipath);
    return c;
fail:
    sqlite3_finalize(st);
    free(ipath);
    corpus_close(c);
    return NULL;
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
    if (c->db) sqlite3_close(c->db);
    free(c->tok_json);
    free(c);
}

uint32_t corpus_vocab_size(const Corpus *c) { return c->vocab_size; }
uint32_t corpus_eot_id(const Corpus *c) { return c->eot_id; }

const char *corpus_tokenizer_json(const Corpus *c, size_t *len)
{
    if (len) *len = c->tok_len;
    return c->tok_json;
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
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) == SQLITE_OK) {
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
    if (window < 2) {
        snprintf(err, errlen, "window of %zu tokens: need at least 2 (T+1)", window);
        return NULL;
    }
    Buf sql = {0};
    buf_adds(&sql, "SELECT shard, token_offset, n_tokens FROM documents "
                   "WHERE (?1 IS NULL OR split = ?1)");
    if (where && *where) {
        buf_adds(&sql, " AND (");
        buf_adds(&sql, where);
        buf_adds(&sql, "\n)");
    }
    buf_adds(&sql, " ORDER BY id");
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    if (sqlite3_prepare_v2(c->db, sql.buf, -1, &st, &tail) != SQLITE_OK) {
        snprintf(err, errlen, "bad selection '%s': %s", where ? where : "",
                 sqlite3_errmsg(c->db));
        buf_free(&sql);
        return NULL;
    }
    while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';')) tail++;
    if (tail && *tail) {
        snprintf(err, errlen, "bad selection '%s': more than one SQL statement", where);
        sqlite3_finalize(st);
        buf_free(&sql);
        return NULL;
    }
    buf_free(&sql);
    if (split) sqlite3_bind_text(st, 1, split, -1, SQLITE_TRANSIENT);
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
            snprintf(err, errlen, "index row (shard %lld, offset %lld, %lld tokens) points "
                     "outside the shards (run cm-shards verify)", (long long)sh, (long long)off,
                     (long long)n);
            sqlite3_finalize(st);
            corpus_sampler_free(s);
            return NULL;
        }
        if (n == 0) continue;
        Range *last = s->nr ? &s->r[s->nr - 1] : NULL;
        if (last && last->shard == (uint32_t)sh && last->off + last->len == (uint64_t)off) {
            last->len += (uint64_t)n;
        } else {
            if (s->nr == cap) {
                cap = cap ? 2 * cap : 256;
                s->r = xrealloc(s->r, cap * sizeof *s->r);
            }
            s->r[s->nr++] = (Range){(uint32_t)sh, (uint64_t)off, (uint64_t)n, s->total};
        }
        s->total += (uint64_t)n;
    }
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "bad selection '%s': %s", where ? where : "", sqlite3_errmsg(c->db));
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
    shard_tokens_get(s->data, c->dtype, off, n, out);
}

/*
** Copy window tokens starting at virtual position pos into w.
*/
static void sampler_copy(const CorpusSampler *s, uint64_t pos, uint32_t *w)
{
    size_t lo = 0, hi = s->nr; /* last range with cum <= pos */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].cum <= pos) lo = mid;
        else hi = mid;
    }
    size_t got = 0;
    for (size_t i = lo; got < s->window && i < s->nr; i++) {
        const Range *r = &s->r[i];
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

uint64_t corpus_sampler_tell(const CorpusSampler *s) { return s->k; }
void corpus_sampler_seek(CorpusSampler *s, uint64_t pos) { s->k = pos; }

void corpus_sampler_free(CorpusSampler *s)
{
    if (!s) return;
    free(s->r);
    free(s);
}

/*
** Tokens selected by a sampler (extension used by cm-train for epoch sizes and by tests).
*/
uint64_t corpus_sampler_tokens(const CorpusSampler *s) { return s->total; }

struct sqlite3 *corpus_index(const Corpus *c) { return c->db; }

int corpus_read_tokens(const Corpus *c, uint32_t shard, uint64_t offset, uint64_t n,
                       uint32_t *out)
{
    if (shard >= c->nsh || !c->sh[shard].map || offset > c->sh[shard].tokens ||
        n > c->sh[shard].tokens - offset)
        return -1;
    copy_tokens(c, &c->sh[shard], offset, (size_t)n, out);
    return 0;
}
