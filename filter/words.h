// SPDX-License-Identifier: MIT
/*
** words.h: the word tokens of a text as 64-bit hashes (for the MinHash shingles of dedup.h).
**
** A word token is a maximal run of the bytes [A-Za-z0-9_] and any byte >= 0x80. Its hash: the
** token's bytes read as little-endian 64-bit words, the last one zero-padded (token bytes are
** never 0); h = 0x9E3779B97F4A7C15 xor the length, then for each word w: h = mix64(h xor w),
** mix64 being the splitmix64 finaliser. The scan classifies 64 bytes at a time into a bit
** mask (SSE2 where there is, a table otherwise) and hashes a word per load, not a byte.
*/
#ifndef CM_FILTER_WORDS_H
#define CM_FILTER_WORDS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *hashes; /* the hashes of the last text's tokens, in order */
    size_t cap;       /* room in hashes */
    uint64_t *bits;   /* scratch: bit i of bits[i / 64]: is byte i a token byte */
    size_t bits_cap;  /* room in bits */
} WordHashes;

/* The hashes of the tokens of s[0..n) into w->hashes; returns their number. */
size_t word_hashes(WordHashes *w, const char *s, size_t n);
/* Release the buffers (w is empty again). */
void word_hashes_free(WordHashes *w);

/* The splitmix64 / murmur3 finaliser. */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
