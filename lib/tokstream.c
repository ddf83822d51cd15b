// SPDX-License-Identifier: MIT
/*
** tokstream.c: reader and writer of the token stream (see tokstream.h).
*/
#include "tokstream.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "le.h"

/* Header and frame fields go through le.h; the id arrays are written from and handed out as
** host memory (no copy per document), so the host itself must be little-endian. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "codemill formats are little-endian");

static int ts_fail(TsReader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ts_fail(TsReader *r, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, sizeof r->err, "%s: at byte %llu (document %llu): %s", r->name,
             (unsigned long long)r->offset, (unsigned long long)r->docs + 1, msg);
    return -1;
}

/* Make n bytes available at buf[start]; returns 1, 0 if the input ended before any of them
** was read, -2 if it ended part way, -1 on a read error. The buffer grows only when it is full
** of bytes actually read, so a frame that declares a huge size but is not followed by that
** much data costs no memory (found by fuzzing: a forged frame reserved 2 GiB). */
static int need(TsReader *r, size_t n)
{
    while (r->end - r->start < n) {
        if (r->eof) return r->end == r->start ? 0 : -2;
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (r->end == r->cap) { /* full of real data, and still short of n */
            size_t c = r->cap * 2;
            if (c > n) c = n;
            r->buf = xrealloc(r->buf, c);
            r->cap = c;
        }
        ssize_t k = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (k == 0) r->eof = 1;
        r->end += (size_t)k;
    }
    return 1;
}

static void consume(TsReader *r, size_t n)
{
    r->start += n;
    r->offset += n;
}

static int read_header(TsReader *r, TsHeader *h)
{
    int rc = need(r, 40);
    if (rc == 0)
        return ts_fail(r, "empty input: expected a token stream (from cm-tokenize encode)");
    if (rc == -1) return ts_fail(r, "read error: %s", strerror(errno));
    const unsigned char *p = r->buf + r->start;
    if (rc == -2 || memcmp(p, TS_MAGIC, 8))
        return ts_fail(r,
                       "not a codemill token stream (bad magic; expected output of "
                       "'cm-tokenize encode')");
    h->version = le_get32(p + 8);
    if (h->version < 1 || h->version > TS_VERSION)
        return ts_fail(r, "token stream version %u is not supported (this build reads 1 to %d)",
                       h->version, TS_VERSION);
    h->vocab_size = le_get32(p + 16);
    h->eot_id = le_get32(p + 20);
    h->fingerprint = le_get64(p + 24);
    uint64_t jl = le_get64(p + 32);
    if (h->vocab_size == 0 || h->eot_id >= h->vocab_size)
        return ts_fail(r, "bad header: vocab_size %u, eot_id %u", h->vocab_size, h->eot_id);
    if (jl > TS_MAX_JSON)
        return ts_fail(r, "bad header: tokenizer.json of %llu bytes", (unsigned long long)jl);
    consume(r, 40);
    rc = need(r, (size_t)jl);
    if (rc < 0 || (rc == 0 && jl)) return ts_fail(r, "truncated in the header's tokenizer.json");
    h->json = xmalloc((size_t)jl + 1);
    memcpy(h->json, r->buf + r->start, (size_t)jl);
    h->json[jl] = 0;
    h->json_len = (size_t)jl;
    consume(r, (size_t)jl);
    return 0;
}

int ts_open(TsReader *r, int fd, const char *name)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->name = name;
    r->cap = 1u << 20;
    r->buf = xmalloc(r->cap);
    if (read_header(r, &r->hdr)) return -1;
    r->version = r->hdr.version;
    return 0;
}

/*
** Largest of n ids read from unaligned memory: no branch in the loop, so the compiler
** vectorises it (a compare-and-branch per id was 15% of a pack's instructions).
*/
static uint32_t max_id(const unsigned char *ids, uint32_t n)
{
    uint32_t mx = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = le_get32(ids + 4 * (size_t)i);
        mx = v > mx ? v : mx;
    }
    return mx;
}

int ts_next(TsReader *r, TsDoc *d)
{
    return ts_next_raw(r, d, NULL);
}

int ts_next_raw(TsReader *r, TsDoc *d, const unsigned char **raw)
{
    for (;;) {
        int rc = need(r, 16);
        if (rc == 0)
            return ts_fail(r,
                           "stream cut short: no end frame after %llu documents "
                           "(did the producer die?)",
                           (unsigned long long)r->stream_docs);
        if (rc == -1) return ts_fail(r, "read error: %s", strerror(errno));
        if (rc == -2) return ts_fail(r, "stream cut short inside a frame header");
        const unsigned char *p = r->buf + r->start;
        if (!memcmp(p, "END1", 4)) {
            rc = need(r, 24);
            if (rc != 1) return ts_fail(r, "stream cut short inside the end frame");
            p = r->buf + r->start;
            uint64_t nd = le_get64(p + 8), nt = le_get64(p + 16);
            if (nd != r->stream_docs || nt != r->stream_tokens)
                return ts_fail(r,
                               "end frame counts %llu documents / %llu tokens but the stream "
                               "held %llu / %llu",
                               (unsigned long long)nd, (unsigned long long)nt,
                               (unsigned long long)r->stream_docs,
                               (unsigned long long)r->stream_tokens);
            consume(r, 24);
            rc = need(r, 1);
            if (rc == 0) return 0;
            if (rc < 0) return ts_fail(r, "read error: %s", strerror(errno));
            /* another stream follows */
            TsHeader h2;
            memset(&h2, 0, sizeof h2);
            if (read_header(r, &h2)) return -1;
            free(h2.json);
            r->version = h2.version;
            if (h2.fingerprint != r->hdr.fingerprint || h2.vocab_size != r->hdr.vocab_size ||
                h2.eot_id != r->hdr.eot_id)
                return ts_fail(r, "concatenated stream was made with a different tokenizer");
            r->stream_docs = r->stream_tokens = 0;
            continue;
        }
        /* v1 frames: "DOC1" | meta_len | n | check; v2 frames add u32 n_prompt after check,
        ** and their check covers it */
        size_t fh = r->version >= 2 ? 20 : 16;
        if (memcmp(p, r->version >= 2 ? "DOC2" : "DOC1", 4))
            return ts_fail(r, "bad frame tag (damaged stream)");
        uint32_t ml = le_get32(p + 4), n = le_get32(p + 8), check = le_get32(p + 12);
        if (ml > TS_MAX_META) return ts_fail(r, "metadata of %u bytes exceeds the limit", ml);
        if (n > TS_MAX_TOKENS) return ts_fail(r, "%u tokens in one document exceeds the limit", n);
        size_t total = fh + (size_t)ml + 4 * (size_t)n;
        rc = need(r, total);
        if (rc != 1) {
            if (rc == -1) return ts_fail(r, "read error: %s", strerror(errno));
            return ts_fail(r, "stream cut short inside a document");
        }
        p = r->buf + r->start;
        uint32_t got = (uint32_t)hash64(p + 16, total - 16);
        if (got != check) return ts_fail(r, "checksum mismatch (damaged stream)");
        uint32_t n_prompt = fh == 20 ? le_get32(p + 16) : 0;
        if (n_prompt >= n && n_prompt)
            return ts_fail(r, "prompt of %u tokens in a document of %u (damaged stream)", n_prompt,
                           n);
        const unsigned char *ids = p + fh + ml;
        if (n && max_id(ids, n) >= r->hdr.vocab_size) {
            for (uint32_t i = 0; i < n; i++) { /* the first one, for the message */
                uint32_t id = le_get32(ids + 4 * (size_t)i);
                if (id >= r->hdr.vocab_size)
                    return ts_fail(r, "token id %u at position %u is outside the vocabulary (%u)",
                                   id, i, r->hdr.vocab_size);
            }
        }
        d->meta = (const char *)p + fh;
        d->meta_len = ml;
        d->n = n;
        d->n_prompt = n_prompt;
        if (raw) {
            *raw = ids;
            d->ids = NULL;
        } else if (n == 0) {
            static const uint32_t none[1];
            d->ids = none;
        } else if (((uintptr_t)ids & 3) == 0) {
            d->ids = (const uint32_t *)(const void *)ids;
        } else { /* give the caller aligned ids */
            if (r->idcap < n) {
                r->idcap = n;
                r->idbuf = xrealloc(r->idbuf, 4 * (size_t)n + 4);
            }
            memcpy(r->idbuf, ids, 4 * (size_t)n);
            d->ids = r->idbuf;
        }
        consume(r, total);
        r->docs++;
        r->stream_docs++;
        r->stream_tokens += n;
        return 1;
    }
}

void ts_close(TsReader *r)
{
    free(r->buf);
    free(r->hdr.json);
    free(r->idbuf);
    r->idbuf = NULL;
    r->buf = NULL;
    r->hdr.json = NULL;
}

void ts_write_header_version(Out *o, uint32_t version, uint32_t vocab_size, uint32_t eot_id,
                             uint64_t fingerprint, const char *json, size_t json_len)
{
    unsigned char h[40];
    memcpy(h, TS_MAGIC, 8);
    le_put32(h + 8, version);
    le_put32(h + 12, 0); /* flags */
    le_put32(h + 16, vocab_size);
    le_put32(h + 20, eot_id);
    le_put64(h + 24, fingerprint);
    le_put64(h + 32, json_len);
    out_write(o, h, sizeof h);
    out_write(o, json, json_len);
}

void ts_write_header(Out *o, uint32_t vocab_size, uint32_t eot_id, uint64_t fingerprint,
                     const char *json, size_t json_len)
{
    ts_write_header_version(o, TS_VERSION, vocab_size, eot_id, fingerprint, json, json_len);
}

void ts_write_doc_prompt(Out *o, const char *meta, uint32_t meta_len, const uint32_t *ids,
                         uint32_t n, uint32_t n_prompt)
{
    /* checksum over n_prompt || meta || ids without copying: stream the hash */
    unsigned char h[20];
    memcpy(h, "DOC2", 4);
    le_put32(h + 4, meta_len);
    le_put32(h + 8, n);
    le_put32(h + 16, n_prompt);
    Hash64State *hs = hash64_new();
    hash64_update(hs, h + 16, 4);
    hash64_update(hs, meta, meta_len);
    hash64_update(hs, ids, 4 * (size_t)n);
    le_put32(h + 12, (uint32_t)hash64_digest(hs));
    hash64_free(hs);
    out_write(o, h, sizeof h);
    out_write(o, meta, meta_len);
    out_write(o, ids, 4 * (size_t)n);
}

void ts_write_doc(Out *o, const char *meta, uint32_t meta_len, const uint32_t *ids, uint32_t n)
{
    ts_write_doc_prompt(o, meta, meta_len, ids, n, 0);
}

void ts_write_doc_v1(Out *o, const char *meta, uint32_t meta_len, const uint32_t *ids, uint32_t n)
{
    Hash64State *hs = hash64_new();
    hash64_update(hs, meta, meta_len);
    hash64_update(hs, ids, 4 * (size_t)n);
    uint32_t check = (uint32_t)hash64_digest(hs);
    hash64_free(hs);
    unsigned char h[16];
    memcpy(h, "DOC1", 4);
    le_put32(h + 4, meta_len);
    le_put32(h + 8, n);
    le_put32(h + 12, check);
    out_write(o, h, sizeof h);
    out_write(o, meta, meta_len);
    out_write(o, ids, 4 * (size_t)n);
}

void ts_write_end(Out *o, uint64_t docs, uint64_t tokens)
{
    unsigned char h[24];
    memcpy(h, "END1", 4);
    le_put32(h + 4, 0);
    le_put64(h + 8, docs);
    le_put64(h + 16, tokens);
    out_write(o, h, sizeof h);
}
