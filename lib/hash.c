// SPDX-License-Identifier: MIT
/*
** hash.c: thin wrappers over libxxhash (see hash.h).
*/
#include "hash.h"

#include <stdlib.h>
#include <xxhash.h>

#include "util.h"

uint64_t hash64(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

uint64_t hash64_seed(const void *p, size_t n, uint64_t seed)
{
    return XXH3_64bits_withSeed(p, n, seed);
}

void hash_hex(uint64_t h, char out[17])
{
    static const char d[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = d[h & 15];
        h >>= 4;
    }
    out[16] = 0;
}

struct Hash64State {
    XXH3_state_t *st; /* libxxhash state */
};

Hash64State *hash64_new(void)
{
    Hash64State *s = xmalloc(sizeof *s);
    s->st = XXH3_createState();
    if (!s->st) die(CM_EINTERNAL, "out of memory (xxhash state)");
    XXH3_64bits_reset(s->st);
    return s;
}

void hash64_update(Hash64State *s, const void *p, size_t n)
{
    XXH3_64bits_update(s->st, p, n);
}

uint64_t hash64_digest(const Hash64State *s)
{
    return XXH3_64bits_digest(s->st);
}

void hash64_free(Hash64State *s)
{
    if (!s) return;
    XXH3_freeState(s->st);
    free(s);
}
