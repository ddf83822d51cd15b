/*
** The author disclaims copyright to this source code. In place of a legal notice, here is a
** blessing: may you do good and not evil.
**
*************************************************************************************************
** tsread.c: a faster next-document for the token stream of lib/tokstream.h, used by
** `cm-shards pack` (see tsread.h). Same format, same checks, same messages as lib's ts_next;
** it differs only in how the ids are checked against the vocabulary: a branch-free maximum
** over the document (vectorised at -O3) instead of a compare-and-branch per id, which was 15%
** of the instructions of a pack. The position of a bad id is searched only once one is known
** to exist. It works on lib's TsReader (opened with ts_open, closed with ts_close).
** (A candidate for lib/tokstream.c: the lead may merge it there.)
*/
#include "tsread.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"  // defines: hash64

// ----------------------------------------------------------------------------
// reading helpers (as in lib/tokstream.c)

static uint32_t rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/*
** Set r->err to "NAME: at byte N (document K): what" and return -1.
*/
static int tsr_fail(TsReader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int tsr_fail(TsReader *r, const char *fmt, ...)
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

/*
** Make n bytes available at buf[start]; returns 1, 0 if the input ended before any of them
** was read, -2 if it ended part way, -1 on a read error.
*/
static int tsr_need(TsReader *r, size_t n)
{
    while (r->end - r->start < n) {
        if (r->eof) return r->end == r->start ? 0 : -2;
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (r->cap < n) {
            size_t c = r->cap;
            while (c < n) c *= 2;
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

static void tsr_consume(TsReader *r, size_t n)
{
    r->start += n;
    r->offset += n;
}

/*
** Read the header of a concatenated stream and check it matches the first one's tokenizer.
*/
static int tsr_next_header(TsReader *r)
{
    int rc = tsr_need(r, 40);
    if (rc == -1) return tsr_fail(r, "read error: %s", strerror(errno));
    const unsigned char *p = r->buf + r->start;
    if (rc != 1 || memcmp(p, TS_MAGIC, 8))
        return tsr_fail(r, "not a codemill token stream (bad magic; expected output of "
                           "'cm-tokenize encode')");
    uint32_t version = rd32(p + 8), vocab = rd32(p + 16), eot = rd32(p + 20);
    uint64_t fp = rd64(p + 24), jl = rd64(p + 32);
    if (version != TS_VERSION)
        return tsr_fail(r, "token stream version %u is not supported (this build reads %d)",
                        version, TS_VERSION);
    if (vocab == 0 || eot >= vocab)
        return tsr_fail(r, "bad header: vocab_size %u, eot_id %u", vocab, eot);
    if (jl > TS_MAX_JSON) return tsr_fail(r, "bad header: tokenizer.json of %llu bytes",
                                          (unsigned long long)jl);
    tsr_consume(r, 40);
    rc = tsr_need(r, (size_t)jl);
    if (rc < 0 || (rc == 0 && jl)) return tsr_fail(r, "truncated in the header's tokenizer.json");
    tsr_consume(r, (size_t)jl);
    if (fp != r->hdr.fingerprint || vocab != r->hdr.vocab_size || eot != r->hdr.eot_id)
        return tsr_fail(r, "concatenated stream was made with a different tokenizer");
    return 0;
}

/*
** Largest of n ids read from unaligned memory: no branch in the loop, so -O3 vectorises it.
*/
static uint32_t tsr_max_id(const unsigned char *ids, uint32_t n)
{
    uint32_t mx = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = rd32(ids + 4 * (size_t)i);
        mx = v > mx ? v : mx;
    }
    return mx;
}

// ----------------------------------------------------------------------------
// next document

/*
** Like ts_next (lib/tokstream.h): 1 and *d filled (valid until the next call), 0 at a clean
** end, -1 with r->err set on a damaged or truncated stream. With raw not NULL, *raw is set to
** the ids as they lie in the read buffer (n little-endian u32, maybe unaligned) and d->ids to
** NULL: no aligned copy is made.
*/
int tsr_next(TsReader *r, TsDoc *d, const unsigned char **raw)
{
    for (;;) {
        int rc = tsr_need(r, 16);
        if (rc == 0)
            return tsr_fail(r, "stream cut short: no end frame after %llu documents "
                               "(did the producer die?)", (unsigned long long)r->stream_docs);
        if (rc == -1) return tsr_fail(r, "read error: %s", strerror(errno));
        if (rc == -2) return tsr_fail(r, "stream cut short inside a frame header");
        const unsigned char *p = r->buf + r->start;
        if (!memcmp(p, "END1", 4)) {
            rc = tsr_need(r, 24);
            if (rc != 1) return tsr_fail(r, "stream cut short inside the end frame");
            p = r->buf + r->start;
            uint64_t nd = rd64(p + 8), nt = rd64(p + 16);
            if (nd != r->stream_docs || nt != r->stream_tokens)
                return tsr_fail(r, "end frame counts %llu documents / %llu tokens but the "
                                   "stream held %llu / %llu", (unsigned long long)nd,
                                (unsigned long long)nt, (unsigned long long)r->stream_docs,
                                (unsigned long long)r->stream_tokens);
            tsr_consume(r, 24);
            rc = tsr_need(r, 1);
            if (rc == 0) return 0;
            if (rc < 0) return tsr_fail(r, "read error: %s", strerror(errno));
            if (tsr_next_header(r)) return -1; /* another stream follows */
            r->stream_docs = r->stream_tokens = 0;
            continue;
        }
        if (memcmp(p, "DOC1", 4)) return tsr_fail(r, "bad frame tag (damaged stream)");
        uint32_t ml = rd32(p + 4), n = rd32(p + 8), check = rd32(p + 12);
        if (ml > TS_MAX_META) return tsr_fail(r, "metadata of %u bytes exceeds the limit", ml);
        if (n > TS_MAX_TOKENS)
            return tsr_fail(r, "%u tokens in one document exceeds the limit", n);
        size_t total = 16 + (size_t)ml + 4 * (size_t)n;
        rc = tsr_need(r, total);
        if (rc != 1) {
            if (rc == -1) return tsr_fail(r, "read error: %s", strerror(errno));
            return tsr_fail(r, "stream cut short inside a document");
        }
        p = r->buf + r->start;
        uint32_t got = (uint32_t)hash64(p + 16, total - 16);
        if (got != check) return tsr_fail(r, "checksum mismatch (damaged stream)");
        const unsigned char *ids = p + 16 + ml;
        if (n && tsr_max_id(ids, n) >= r->hdr.vocab_size) {
            for (uint32_t i = 0; i < n; i++) { /* find the first one for the message */
                uint32_t id = rd32(ids + 4 * (size_t)i);
                if (id >= r->hdr.vocab_size)
                    return tsr_fail(r, "token id %u at position %u is outside the vocabulary "
                                       "(%u)", id, i, r->hdr.vocab_size);
            }
        }
        d->meta = (const char *)p + 16;
        d->meta_len = ml;
        d->n = n;
        if (raw) {
            *raw = ids;
            d->ids = NULL;
        } else if (n == 0) { /* as lib's ts_next: no memcpy from/to NULL for an empty one */
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
        tsr_consume(r, total);
        r->docs++;
        r->stream_docs++;
        r->stream_tokens += n;
        return 1;
    }
}
