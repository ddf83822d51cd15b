// SPDX-License-Identifier: MIT
/*
** dedup.c: exact fingerprints and MinHash/LSH near-duplicate index (see dedup.h).
*/
#include "dedup.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"      // defines: hash64, hash64_seed, splitmix64

/* Seed of the MinHash permutations: fixed, so signatures are comparable across runs. */
#define MH_SEED 0x636f64656d696c6cull   /* "codemill" */

/* --- exact -------------------------------------------------------------------------- */

uint64_t dedup_fingerprint(const char *s, size_t n, Buf *scratch)
{
    buf_reset(scratch);
    buf_grow(scratch, n + 1);
    char *d = scratch->buf;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        d[j] = c;
        j += !(c == ' ' || (c >= '\t' && c <= '\r'));   /* \t \n \v \f \r */
    }
    uint64_t h = hash64(d, j);
    return h ? h : 1;
}

/*
** An empty set (no memory until the first add).
*/
void exactset_init(ExactSet *e)
{
    memset(e, 0, sizeof *e);
}

/*
** Release the table; the set is empty again.
*/
void exactset_free(ExactSet *e)
{
    free(e->aKey);
    memset(e, 0, sizeof *e);
}

/*
** Is fingerprint fp (never 0) in the set? Linear probing.
*/
int exactset_has(const ExactSet *e, uint64_t fp)
{
    if (!e->cap) return 0;
    size_t mask = e->cap - 1;
    for (size_t i = (size_t)fp & mask;; i = (i + 1) & mask) {
        if (e->aKey[i] == fp) return 1;
        if (!e->aKey[i]) return 0;
    }
}

/* Insert fp into the table a of cap slots (no growth); 1 if it was not there yet. */
static int exact_put(uint64_t *a, size_t cap, uint64_t fp)
{
    size_t mask = cap - 1;
    size_t i = (size_t)fp & mask;
    while (a[i] && a[i] != fp) i = (i + 1) & mask;
    if (a[i]) return 0;
    a[i] = fp;
    return 1;
}

/* Slots the table needs to hold one more fingerprint at most half full (1024 at first). */
static size_t exact_cap_next(const ExactSet *e)
{
    if (2 * (e->n + 1) <= e->cap) return e->cap;
    return e->cap ? 2 * e->cap : 1024;
}

/*
** Add fp, doubling the table first when it would become more than half full.
*/
void exactset_add(ExactSet *e, uint64_t fp)
{
    size_t ncap = exact_cap_next(e);
    if (ncap != e->cap) {
        uint64_t *a = xcalloc(ncap, sizeof *a);
        for (size_t i = 0; i < e->cap; i++)
            if (e->aKey[i]) exact_put(a, ncap, e->aKey[i]);
        free(e->aKey);
        e->aKey = a;
        e->cap = ncap;
    }
    e->n += exact_put(e->aKey, e->cap, fp);
}

/*
** Bytes the table holds (for --dedup-memory).
*/
size_t exactset_bytes(const ExactSet *e)
{
    return e->cap * sizeof *e->aKey;
}

/*
** Bytes after one more add (the growth rule of exactset_add).
*/
size_t exactset_bytes_next(const ExactSet *e)
{
    return exact_cap_next(e) * sizeof *e->aKey;
}

/* --- near: signatures --------------------------------------------------------------- */

/*
** An empty index with the 256 permutations drawn from the fixed seed (so signatures are
** the same in every run) and the duplicate threshold.
*/
void near_init(NearIndex *x, double threshold)
{
    memset(x, 0, sizeof *x);
    uint64_t st = MH_SEED;
    for (int i = 0; i < MH_PERMS; i++) {
        x->aA[i] = splitmix64(&st) | 1;
        x->aB[i] = splitmix64(&st);
    }
    x->threshold = threshold;
}

/*
** Release every table of the index.
*/
void near_free(NearIndex *x)
{
    free(x->aSig);
    free(x->aBandKey);
    free(x->aBandDoc);
    free(x->aTok);
    memset(x, 0, sizeof *x);
}

/*
** Is c a byte of a word token ([A-Za-z0-9_] or any non-ASCII byte)?
*/
static inline int tok_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c >= 0x80;
}

/* Fold the shingle hash h into the running minima of sig: h_i(h) = (a_i*h + b_i) >> 32. */
static inline void minhash_update(const NearIndex *x, uint64_t h, uint32_t *restrict sig)
{
    for (int i = 0; i < MH_PERMS; i++) {
        uint32_t v = (uint32_t)((x->aA[i] * h + x->aB[i]) >> 32);
        sig[i] = v < sig[i] ? v : sig[i];
    }
}

/* Final mixing of a 64-bit hash (the splitmix64 / murmur3 finaliser). */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/*
** The MinHash signature of s[0..n): tokens, their 5-gram shingles, 256 running minima.
** Returns the number of shingles (0 when s has no token).
*/
size_t near_signature(NearIndex *x, const char *s, size_t n, uint32_t sig[MH_PERMS])
{
    for (int i = 0; i < MH_PERMS; i++) sig[i] = UINT32_MAX;
    size_t nTok = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        while (i < n && !tok_byte(u[i])) i++;
        if (i >= n) break;
        uint64_t h = 0x9E3779B97F4A7C15ull;
        while (i < n && tok_byte(u[i])) h = (h ^ u[i++]) * 0x100000001B3ull;   /* FNV-1a step */
        if (nTok == x->capTok) {
            x->capTok = x->capTok ? 2 * x->capTok : 4096;
            x->aTok = xrealloc(x->aTok, x->capTok * sizeof *x->aTok);
        }
        x->aTok[nTok++] = mix64(h);
    }
    if (nTok == 0) return 0;
    if (nTok < MH_SHINGLE) {
        minhash_update(x, hash64(x->aTok, nTok * sizeof *x->aTok), sig);
        return 1;
    }
    for (size_t i = 0; i + MH_SHINGLE <= nTok; i++) {
        const uint64_t *t = x->aTok + i;
        uint64_t h = t[0];
        for (int k = 1; k < MH_SHINGLE; k++) h = ((h << 23) | (h >> 41)) ^ (t[k] * 0x9E3779B97F4A7C15ull);
        minhash_update(x, mix64(h), sig);
    }
    return nTok - MH_SHINGLE + 1;
}

/*
** Fraction of the 256 positions where two signatures agree: the Jaccard estimate.
*/
double near_similarity(const uint32_t a[MH_PERMS], const uint32_t b[MH_PERMS])
{
    int same = 0;
    for (int i = 0; i < MH_PERMS; i++) same += a[i] == b[i];
    return same / (double)MH_PERMS;
}

/* --- near: LSH index ---------------------------------------------------------------- */

/* Key of band b of sig (never 0). */
static uint64_t band_key(const uint32_t *sig, int b)
{
    uint64_t k = hash64_seed(sig + b * MH_ROWS, MH_ROWS * sizeof *sig, (uint64_t)b);
    return k ? k : 1;
}

/* Slot of key in the band table: where it is, or the empty slot where it would go. */
static size_t band_slot(const uint64_t *keys, size_t cap, uint64_t k)
{
    size_t mask = cap - 1;
    size_t i = (size_t)(k ^ (k >> 29)) & mask;
    while (keys[i] && keys[i] != k) i = (i + 1) & mask;
    return i;
}

/*
** The first kept document sharing a band with sig whose stored signature agrees in at least
** threshold x 256 places, or -1.
*/
long near_find(const NearIndex *x, const uint32_t sig[MH_PERMS])
{
    if (!x->capBand) return -1;
    int need = (int)(x->threshold * MH_PERMS + 0.999999);
    for (int b = 0; b < MH_BANDS; b++) {
        size_t i = band_slot(x->aBandKey, x->capBand, band_key(sig, b));
        if (!x->aBandKey[i]) continue;
        uint32_t d = x->aBandDoc[i];
        const uint16_t *o = x->aSig + (size_t)d * MH_PERMS;
        int same = 0;
        for (int k = 0; k < MH_PERMS; k++) same += (uint16_t)sig[k] == o[k];
        if (same >= need) return (long)d;
    }
    return -1;
}

/*
** Room near_add needs for one more document: returns the signature slots (doubled, 1024 at
** first, when full) and sets *pBand to the band table's slots (doubled, 65536 at first, until
** the 32 new keys fit at most half full).
*/
static size_t near_caps_next(const NearIndex *x, size_t *pBand)
{
    size_t band = x->capBand;
    if (2 * (x->nBand + MH_BANDS) > band) {
        band = band ? 2 * band : 65536;
        while (2 * (x->nBand + MH_BANDS) > band) band *= 2;
    }
    *pBand = band;
    if (x->nDocs < x->capDocs) return x->capDocs;
    return x->capDocs ? 2 * x->capDocs : 1024;
}

/*
** Keep sig: store its low 16 bits and put its 32 band keys in the table (a key already
** there keeps its first document). Grows the tables by doubling.
*/
void near_add(NearIndex *x, const uint32_t sig[MH_PERMS])
{
    size_t ncap, ndocs = near_caps_next(x, &ncap);
    if (ndocs != x->capDocs) {
        x->capDocs = ndocs;
        x->aSig = xrealloc(x->aSig, x->capDocs * MH_PERMS * sizeof *x->aSig);
    }
    uint16_t *o = x->aSig + x->nDocs * MH_PERMS;
    for (int k = 0; k < MH_PERMS; k++) o[k] = (uint16_t)sig[k];
    if (ncap != x->capBand) {
        uint64_t *keys = xcalloc(ncap, sizeof *keys);
        uint32_t *docs = xmalloc(ncap * sizeof *docs);
        for (size_t i = 0; i < x->capBand; i++) {
            if (!x->aBandKey[i]) continue;
            size_t j = band_slot(keys, ncap, x->aBandKey[i]);
            keys[j] = x->aBandKey[i];
            docs[j] = x->aBandDoc[i];
        }
        free(x->aBandKey);
        free(x->aBandDoc);
        x->aBandKey = keys;
        x->aBandDoc = docs;
        x->capBand = ncap;
    }
    for (int b = 0; b < MH_BANDS; b++) {
        uint64_t k = band_key(sig, b);
        size_t i = band_slot(x->aBandKey, x->capBand, k);
        if (x->aBandKey[i]) continue;               /* first seen keeps the key */
        x->aBandKey[i] = k;
        x->aBandDoc[i] = (uint32_t)x->nDocs;
        x->nBand++;
    }
    x->nDocs++;
}

/*
** Bytes the index holds (for --dedup-memory).
*/
size_t near_bytes(const NearIndex *x)
{
    return x->capDocs * MH_PERMS * sizeof *x->aSig +
           x->capBand * (sizeof *x->aBandKey + sizeof *x->aBandDoc);
}

/*
** Bytes after one more near_add (its growth rules, near_caps_next).
*/
size_t near_bytes_next(const NearIndex *x)
{
    size_t band, docs = near_caps_next(x, &band);
    return docs * MH_PERMS * sizeof *x->aSig + band * (sizeof *x->aBandKey + sizeof *x->aBandDoc);
}
