// SPDX-License-Identifier: MIT
/*
** words.c: word tokens as 64-bit hashes, a 64-byte bit mask at a time (see words.h).
*/
#include "filter/words.h"

#include <stdlib.h>
#include <string.h>

#include "util.h" // defines: xrealloc

#ifdef __SSE2__
#include <emmintrin.h>

/* 0xff where lo <= x <= hi (bytes, unsigned). */
static inline __m128i in_range(__m128i x, char lo, char hi)
{
    __m128i d = _mm_sub_epi8(x, _mm_set1_epi8(lo));
    return _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8((char)(hi - lo))), d);
}

/* Bit i: is p[i] a token byte, for the 64 bytes at p. */
static inline uint64_t token_bits(const unsigned char *p)
{
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(p + 16 * k));
        __m128i t = in_range(_mm_or_si128(x, _mm_set1_epi8(0x20)), 'a', 'z');
        t = _mm_or_si128(t, in_range(x, '0', '9'));
        t = _mm_or_si128(t, _mm_cmpeq_epi8(x, _mm_set1_epi8('_')));
        t = _mm_or_si128(t, _mm_cmplt_epi8(x, _mm_setzero_si128())); /* >= 0x80 */
        m |= (uint64_t)(uint16_t)_mm_movemask_epi8(t) << (16 * k);
    }
    return m;
}
#else
/* Is byte c a token byte? */
static inline int token_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
        c >= 0x80;
}

/* Bit i: is p[i] a token byte, for the 64 bytes at p. */
static inline uint64_t token_bits(const unsigned char *p)
{
    uint64_t m = 0;
    for (int i = 0; i < 64; i++) m |= (uint64_t)token_byte(p[i]) << i;
    return m;
}
#endif

/* The 8 bytes at p as a little-endian number. */
static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* Hash of the token p[0..len) (len >= 1); end: the end of the text (no read past it). */
static inline uint64_t token_hash(const unsigned char *p, size_t len, const unsigned char *end)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ len;
    for (; len > 8; p += 8, len -= 8) h = mix64(h ^ load_le64(p));
    uint64_t w;
    if (end - p >= 8) {
        w = load_le64(p) & (~0ull >> (64 - 8 * len));
    } else {
        unsigned char tail[8] = { 0 };
        memcpy(tail, p, len);
        w = load_le64(tail);
    }
    return mix64(h ^ w);
}

/* Fill w->bits for s[0..n) (bits past n are 0); returns the number of 64-bit words. */
static size_t classify(WordHashes *w, const unsigned char *s, size_t n)
{
    size_t words = (n + 63) / 64;
    if (words > w->bits_cap) {
        w->bits_cap = words + words / 2;
        w->bits = xrealloc(w->bits, w->bits_cap * sizeof *w->bits);
    }
    size_t full = n / 64;
    for (size_t k = 0; k < full; k++) w->bits[k] = token_bits(s + 64 * k);
    if (full < words) {
        unsigned char last[64] = { 0 };
        memcpy(last, s + 64 * full, n - 64 * full);
        w->bits[full] = token_bits(last);
    }
    return words;
}

/* Room in w->hashes for every token s[0..n) can have (at most (n + 1) / 2); old ones dropped. */
static uint64_t *reserve(WordHashes *w, size_t n)
{
    size_t need = n / 2 + 1;
    if (need > w->cap) {
        w->cap = need > 2 * w->cap ? need : 2 * w->cap;
        free(w->hashes); /* nothing to keep: no realloc copy */
        w->hashes = xmalloc(w->cap * sizeof *w->hashes);
    }
    return w->hashes;
}

/*
** The tokens are the runs of 1 bits: find a run's first 1 and its next 0 a word of bits at a
** time, hash the bytes between.
*/
size_t word_hashes(WordHashes *w, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t words = classify(w, u, n), count = 0, k = 0;
    uint64_t *out = reserve(w, n); /* untouched pages of it cost no memory */
    uint64_t cur = words ? w->bits[0] : 0;
    for (;;) {
        while (!cur) {
            if (++k >= words) return count;
            cur = w->bits[k];
        }
        size_t start = 64 * k + (size_t)__builtin_ctzll(cur);
        cur = ~cur & (~0ull << (start & 63)); /* the 0 bits from the start on */
        while (!cur) {
            if (++k >= words) break;
            cur = ~w->bits[k];
        }
        size_t stop = k >= words ? n : 64 * k + (size_t)__builtin_ctzll(cur);
        out[count++] = token_hash(u + start, stop - start, u + n);
        if (k >= words) return count;
        cur = ~cur & (~0ull << (stop & 63)) & w->bits[k]; /* the 1 bits from the stop on */
    }
}

void word_hashes_free(WordHashes *w)
{
    free(w->hashes);
    free(w->bits);
    memset(w, 0, sizeof *w);
}
