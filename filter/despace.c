// SPDX-License-Identifier: MIT
/*
** despace.c: copy without ASCII white space (see despace.h).
*/
#include "filter/despace.h"

#include <stdint.h>

#ifdef __SSSE3__
#include <pthread.h>
#include <tmmintrin.h>

/* keep_shuffle[m]: the indices of the 1 bits of m, in order, as the bytes of a shuffle. */
static uint64_t keep_shuffle[256];
static pthread_once_t keep_shuffle_once = PTHREAD_ONCE_INIT;

static void keep_shuffle_fill(void)
{
    for (int m = 0; m < 256; m++) {
        uint64_t v = 0;
        int k = 0;
        for (int i = 0; i < 8; i++)
            if (m >> i & 1) v |= (uint64_t)i << (8 * k++);
        keep_shuffle[m] = v;
    }
}

/* Copy 16-byte blocks of s, each packed by two 8-byte shuffles; returns the bytes read. */
static size_t despace_blocks(char *d, const char *s, size_t n, size_t *written)
{
    pthread_once(&keep_shuffle_once, keep_shuffle_fill);
    size_t i = 0, j = 0;
    const __m128i space = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t'), span = _mm_set1_epi8(4);
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i from_tab = _mm_sub_epi8(x, tab); /* \t..\r: 0..4 */
        __m128i ws = _mm_or_si128(_mm_cmpeq_epi8(x, space),
                                  _mm_cmpeq_epi8(_mm_min_epu8(from_tab, span), from_tab));
        unsigned keep = ~(unsigned)_mm_movemask_epi8(ws) & 0xffff;
        unsigned lo = keep & 0xff, hi = keep >> 8;
        __m128i shuf = _mm_set_epi64x((long long)(keep_shuffle[hi] + 0x0808080808080808ull),
                                      (long long)keep_shuffle[lo]);
        __m128i packed = _mm_shuffle_epi8(x, shuf);
        _mm_storel_epi64((__m128i *)(d + j), packed);
        j += (size_t)__builtin_popcount(lo);
        _mm_storel_epi64((__m128i *)(d + j), _mm_srli_si128(packed, 8));
        j += (size_t)__builtin_popcount(hi);
    }
    *written = j;
    return i;
}
#endif

size_t despace(char *d, const char *s, size_t n)
{
    size_t i = 0, j = 0;
#ifdef __SSSE3__
    i = despace_blocks(d, s, n, &j);
#endif
    for (; i < n; i++) {
        char c = s[i];
        d[j] = c;
        j += !(c == ' ' || (c >= '\t' && c <= '\r')); /* \t \n \v \f \r */
    }
    return j;
}
