/*
** The author disclaims copyright to this source code.  In place of
** a legal notice, here is a blessing:
**
**    May you do good and not evil.
**
*************************************************************************
**
** jsonw.c: cm-ingest's record writer, byte for byte the output of lib/record.h
** record_write_parts() (tests/unit/test_ingest.c checks that), with a faster string escaper.
**
** Why a local copy: source code has an escaped character ('\n', '"') every 20-30 bytes, and
** lib/json.c's escaper calls memcpy() for the run before each one. This one stores the whole
** 16-byte vector speculatively (the destination has room for the worst case) and only moves
** the cursor, so an escaped character costs a few instructions. The lead may move it into
** lib/json.c (same output, same SSE2 baseline).
*/
#include "ingest.h"
#include "json.h"
#include "record.h"

#include <emmintrin.h>
#include <stdio.h>
#include <string.h>

static const char hexd[] = "0123456789abcdef";

/*
** Write the escape of the special byte c ('"', '\\' or a control character) at d; returns the
** new end.
*/
static inline char *put_escape(char *d, unsigned char c)
{
    *d++ = '\\';
    switch (c) {
    case '"': *d++ = '"'; break;
    case '\\': *d++ = '\\'; break;
    case '\n': *d++ = 'n'; break;
    case '\t': *d++ = 't'; break;
    case '\r': *d++ = 'r'; break;
    case '\b': *d++ = 'b'; break;
    case '\f': *d++ = 'f'; break;
    default:
        *d++ = 'u'; *d++ = '0'; *d++ = '0';
        *d++ = hexd[c >> 4];
        *d++ = hexd[c & 15];
    }
    return d;
}

/*
** Escape s[0..n) as a JSON string literal (with quotes) into dst, which must have room for
** 6 * n + 32 bytes (the vector loop stores 16 bytes ahead). Returns the bytes written.
*/
size_t ingest_escape_into(char *dst, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    char *d = dst;
    size_t i = 0;
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1f);
    *d++ = '"';
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(u + i));
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        _mm_storeu_si128((__m128i *)d, v);      /* speculative: the cursor says what counts */
        if (!mask) {
            d += 16;
            i += 16;
            continue;
        }
        unsigned k = (unsigned)__builtin_ctz(mask);
        d += k;
        i += k;
        d = put_escape(d, u[i++]);
    }
    for (; i < n; i++) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\' || c < 0x20) d = put_escape(d, c);
        else *d++ = (char)c;
    }
    *d++ = '"';
    return (size_t)(d - dst);
}

/*
** Append `"key":` and the escaped s[0..n) to the Out, which has room (checked by the caller).
*/
static void put_field(Out *o, const char *key, size_t klen, const char *s, size_t n)
{
    memcpy(o->buf + o->len, key, klen);
    o->len += klen;
    o->len += ingest_escape_into(o->buf + o->len, s, n);
}

/*
** Write one record: {"repo_name":..,"path":..,"size":N,"content":..,EXTRA}\n, exactly as
** record_write_parts(o, repo, path, content, NULL, extra) does.
*/
void ingest_write_record(Out *o, const char *repo, size_t repo_n, const char *path,
                         size_t path_n, const char *content, size_t n, const char *extra,
                         size_t extra_len)
{
    size_t need = 6 * (repo_n + path_n + n) + extra_len + 160;
    if (need > o->cap - o->len) {
        out_flush(o);
        if (need > o->cap) {           /* bigger than the whole buffer: the library's way */
            record_write_parts(o, repo, repo_n, path, path_n, content, n, NULL, extra, extra_len);
            return;
        }
    }
    put_field(o, "{\"repo_name\":", 13, repo, repo_n);
    put_field(o, ",\"path\":", 8, path, path_n);
    o->len += (size_t)snprintf(o->buf + o->len, 48, ",\"size\":%zu", n);
    put_field(o, ",\"content\":", 11, content, n);
    if (extra && extra_len) {
        o->buf[o->len++] = ',';
        memcpy(o->buf + o->len, extra, extra_len);
        o->len += extra_len;
    }
    o->buf[o->len++] = '}';
    o->buf[o->len++] = '\n';
}
