// SPDX-License-Identifier: MIT
/*
** hash.h: the hashes codemill uses, all from xxHash (libxxhash): XXH3-64 for content
** fingerprints and checksums. One place so that every stage hashes the same way.
*/
#ifndef CM_HASH_H
#define CM_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash64(const void *p, size_t n);                     /* XXH3_64bits */
uint64_t hash64_seed(const void *p, size_t n, uint64_t seed); /* XXH3_64bits_withSeed */
/* 16 lowercase hex digits of h into out[17]. */
void hash_hex(uint64_t h, char out[17]);

/* Streaming XXH3-64 (for shard payload checksums). */
typedef struct Hash64State Hash64State;
Hash64State *hash64_new(void);
void hash64_update(Hash64State *s, const void *p, size_t n);
uint64_t hash64_digest(const Hash64State *s);
void hash64_free(Hash64State *s);

/* splitmix64: a fast, well-mixed 64-bit PRNG step and finaliser (deterministic per seed). */
static inline uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
