// SPDX-License-Identifier: MIT
/*
** dedup.c: exact fingerprints and one-permutation MinHash/LSH near-duplicate index (see dedup.h).
*/
#include "dedup.h"

#include <stdlib.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "filter/despace.h" // defines: despace
#include "filter/words.h"   // defines: word_hashes, mix64
#include "hash.h"           // defines: hash64, hash64_seed, splitmix64

/* Seed of the views and the densification probes: fixed, so signatures compare across runs. */
#define MH_SEED 0x636f64656d696c6cull /* "codemill" */

/* --- exact -------------------------------------------------------------------------- */

uint64_t dedup_fingerprint(const char *s, size_t n, Buf *scratch)
{
    buf_reset(scratch);
    buf_grow(scratch, n + 1);
    uint64_t h = hash64(scratch->buf, despace(scratch->buf, s, n));
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
    free(e->keys);
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
        if (e->keys[i] == fp) return 1;
        if (!e->keys[i]) return 0;
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
    if (2 * (e->count + 1) <= e->cap) return e->cap;
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
            if (e->keys[i]) exact_put(a, ncap, e->keys[i]);
        free(e->keys);
        e->keys = a;
        e->cap = ncap;
    }
    e->count += exact_put(e->keys, e->cap, fp);
}

/*
** Bytes the table holds (for --dedup-memory).
*/
size_t exactset_bytes(const ExactSet *e)
{
    return e->cap * sizeof *e->keys;
}

/*
** Bytes after one more add (the growth rule of exactset_add).
*/
size_t exactset_bytes_next(const ExactSet *e)
{
    return exact_cap_next(e) * sizeof *e->keys;
}

/* --- near: signatures --------------------------------------------------------------- */

/*
** The 16 views' multiply-add hashes, drawn from the fixed seed (so signatures are the same in
** every run); no token scratch until the first signature.
*/
void minhash_init(MinHasher *m)
{
    memset(m, 0, sizeof *m);
    uint64_t st = MH_SEED;
    for (int v = 0; v < MH_VIEWS; v++) {
        m->mul[v] = splitmix64(&st) | 1;
        m->add[v] = splitmix64(&st);
    }
}

/*
** Release the token scratch.
*/
void minhash_free(MinHasher *m)
{
    word_hashes_free(&m->words);
}

/*
** Turn the token hashes into shingle hashes, in place (a shingle's hash goes where its first
** token's was); returns their number. A file of 1-4 tokens is one shingle: the hash of them all.
*/
static size_t shingle_hashes(MinHasher *m, size_t count)
{
    uint64_t *t = m->words.hashes;
    if (count < MH_SHINGLE) {
        t[0] = hash64(t, count * sizeof *t);
        return 1;
    }
    for (size_t i = 0; i + MH_SHINGLE <= count; i++) {
        uint64_t h = t[i];
        for (int k = 1; k < MH_SHINGLE; k++)
            h = ((h << 23) | (h >> 41)) ^ (t[i + k] * 0x9E3779B97F4A7C15ull);
        t[i] = mix64(h);
    }
    return count - MH_SHINGLE + 1;
}

#define OPH_BITS (64 - MH_BIN_BITS) /* the bits below a bin number */
#define OPH_EMPTY UINT32_MAX        /* a bin without a value */

/*
** One-permutation hashing in MH_VIEWS views: view v hashes shingle x to y = a_v*x + b_v; bin =
** the top MH_BIN_BITS bits of y, value = the 32 bits below; each bin keeps the smallest value of
** its shingles (OPH_EMPTY if none). low[v * MH_VIEW_BINS + bin].
*/
_Static_assert(MH_VIEWS == 16 && MH_VIEW_BINS == 16 && MH_PERMS == 256, "16 views of 16 bins");
#if defined(__AVX512F__) && defined(__AVX512DQ__)
/*
** oph_bins with the 256 minima in 16 registers: mins[b] lane v is bin b of view v; a shingle's
** 16 (bin, value) pairs are one vector each, and bin b takes the values of the lanes whose bin
** is b (a masked min). No loads or stores in the loop.
*/
static void oph_bins(const MinHasher *m, const uint64_t *sh, size_t n, uint32_t low[MH_PERMS])
{
    __m512i a0 = _mm512_loadu_si512(m->mul), a1 = _mm512_loadu_si512(m->mul + 8);
    __m512i c0 = _mm512_loadu_si512(m->add), c1 = _mm512_loadu_si512(m->add + 8);
    __m512i mins[MH_VIEW_BINS], one = _mm512_set1_epi32(1);
    for (int b = 0; b < MH_VIEW_BINS; b++) mins[b] = _mm512_set1_epi32(-1);
    for (size_t j = 0; j < n; j++) {
        __m512i x = _mm512_set1_epi64((long long)sh[j]);
        __m512i y0 = _mm512_add_epi64(_mm512_mullo_epi64(a0, x), c0);
        __m512i y1 = _mm512_add_epi64(_mm512_mullo_epi64(a1, x), c1);
        __m512i bin = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_srli_epi64(y0, OPH_BITS))),
            _mm512_cvtepi64_epi32(_mm512_srli_epi64(y1, OPH_BITS)), 1);
        __m512i val = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_srli_epi64(y0, OPH_BITS - 32))),
            _mm512_cvtepi64_epi32(_mm512_srli_epi64(y1, OPH_BITS - 32)), 1);
        for (int b = 0; b < MH_VIEW_BINS; b++) { /* bin is 0 in the lanes of bin b */
            __mmask16 here = _mm512_testn_epi32_mask(bin, bin);
            mins[b] = _mm512_mask_min_epu32(mins[b], here, mins[b], val);
            bin = _mm512_sub_epi32(bin, one);
        }
    }
    for (int b = 0; b < MH_VIEW_BINS; b++) {
        uint32_t lanes[MH_VIEWS];
        _mm512_storeu_si512(lanes, mins[b]);
        for (int v = 0; v < MH_VIEWS; v++) low[v * MH_VIEW_BINS + b] = lanes[v];
    }
}
#else
/* oph_bins a view at a time: a new minimum is rare after a bin's first few shingles, so the
** branch is predicted and the loop only loads. */
static void oph_bins(const MinHasher *m, const uint64_t *sh, size_t n, uint32_t low[MH_PERMS])
{
    for (int k = 0; k < MH_PERMS; k++) low[k] = OPH_EMPTY;
    for (size_t j = 0; j < n; j++) {
        uint64_t x = sh[j];
        for (int v = 0; v < MH_VIEWS; v++) {
            uint64_t y = m->mul[v] * x + m->add[v];
            uint32_t *b = low + (size_t)v * MH_VIEW_BINS + (size_t)(y >> OPH_BITS);
            uint32_t l = (uint32_t)(y >> (OPH_BITS - 32));
            if (__builtin_expect(l < *b, 0)) *b = l;
        }
    }
}
#endif

/*
** sig[k] = bin k's value; an empty bin takes the value of the first non-empty bin of its view in
** its own probe sequence (optimal densification: bin k's sequence is the bytes, modulo
** MH_VIEW_BINS, of splitmix64 seeded by MH_SEED + k x 0xD1B54A32D192ED03, the same for every
** document; at most 512 probes, then it stays empty). A bin whose smallest value is 2^32-1 counts
** as empty: the same for every document, and rare; every view has a non-empty bin otherwise.
*/
static void oph_densify(const uint32_t low[MH_PERMS], uint32_t sig[MH_PERMS])
{
    for (int k = 0; k < MH_PERMS; k++) {
        const uint32_t *view = low + (k / MH_VIEW_BINS) * MH_VIEW_BINS;
        uint64_t st = MH_SEED + (uint64_t)k * 0xD1B54A32D192ED03ull;
        uint32_t from = low[k];
        for (int tries = 0; from == OPH_EMPTY && tries < 64; tries++) {
            uint64_t r = splitmix64(&st);
            for (int i = 0; i < 8 && from == OPH_EMPTY; i++, r >>= 8)
                from = view[r & (MH_VIEW_BINS - 1)];
        }
        sig[k] = from;
    }
}

/*
** The signature of s[0..n): tokens, their 5-gram shingles, one-permutation minima, densified.
** Returns the number of shingles (0 when s has no token: then sig is all UINT32_MAX).
*/
size_t minhash_signature(MinHasher *m, const char *s, size_t n, uint32_t sig[MH_PERMS])
{
    size_t count = word_hashes(&m->words, s, n);
    if (count == 0) {
        for (int i = 0; i < MH_PERMS; i++) sig[i] = UINT32_MAX;
        return 0;
    }
    size_t shingles = shingle_hashes(m, count);
    uint32_t low[MH_PERMS];
    oph_bins(m, m->words.hashes, shingles, low);
    oph_densify(low, sig);
    return shingles;
}

/*
** Fraction of the 256 positions where two signatures agree: the Jaccard estimate.
*/
double minhash_similarity(const uint32_t a[MH_PERMS], const uint32_t b[MH_PERMS])
{
    int same = 0;
    for (int i = 0; i < MH_PERMS; i++) same += a[i] == b[i];
    return same / (double)MH_PERMS;
}

/* --- near: LSH index ---------------------------------------------------------------- */

/*
** An empty index with the duplicate threshold (no memory until the first add).
*/
void near_init(NearIndex *x, double threshold)
{
    memset(x, 0, sizeof *x);
    x->threshold = threshold;
}

/*
** Release every table of the index.
*/
void near_free(NearIndex *x)
{
    free(x->sigs);
    free(x->band_keys);
    free(x->band_docs);
    double threshold = x->threshold;
    memset(x, 0, sizeof *x);
    x->threshold = threshold;
}

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
    if (!x->band_cap) return -1;
    int need = (int)(x->threshold * MH_PERMS + 0.999999);
    for (int b = 0; b < MH_BANDS; b++) {
        size_t i = band_slot(x->band_keys, x->band_cap, band_key(sig, b));
        if (!x->band_keys[i]) continue;
        uint32_t d = x->band_docs[i];
        const uint16_t *o = x->sigs + (size_t)d * MH_PERMS;
        int same = 0;
        for (int k = 0; k < MH_PERMS; k++) same += (uint16_t)sig[k] == o[k];
        if (same >= need) return (long)d;
    }
    return -1;
}

/*
** Room near_add needs for one more document: returns the signature slots (doubled, 1024 at
** first, when full) and sets *band_cap to the band table's slots (doubled, 65536 at first,
** until the 32 new keys fit at most half full).
*/
static size_t near_caps_next(const NearIndex *x, size_t *band_cap)
{
    size_t band = x->band_cap;
    if (2 * (x->band_count + MH_BANDS) > band) {
        band = band ? 2 * band : 65536;
        while (2 * (x->band_count + MH_BANDS) > band) band *= 2;
    }
    *band_cap = band;
    if (x->docs < x->docs_cap) return x->docs_cap;
    return x->docs_cap ? 2 * x->docs_cap : 1024;
}

/* Move the band table to cap slots (a power of two, larger than the present one). */
static void band_table_grow(NearIndex *x, size_t cap)
{
    uint64_t *keys = xcalloc(cap, sizeof *keys);
    uint32_t *docs = xmalloc(cap * sizeof *docs);
    for (size_t i = 0; i < x->band_cap; i++) {
        if (!x->band_keys[i]) continue;
        size_t j = band_slot(keys, cap, x->band_keys[i]);
        keys[j] = x->band_keys[i];
        docs[j] = x->band_docs[i];
    }
    free(x->band_keys);
    free(x->band_docs);
    x->band_keys = keys;
    x->band_docs = docs;
    x->band_cap = cap;
}

/*
** Keep sig: store its low 16 bits and put its 32 band keys in the table (a key already
** there keeps its first document). Grows the tables by doubling.
*/
void near_add(NearIndex *x, const uint32_t sig[MH_PERMS])
{
    size_t band_cap, docs_cap = near_caps_next(x, &band_cap);
    if (docs_cap != x->docs_cap) {
        x->docs_cap = docs_cap;
        x->sigs = xrealloc(x->sigs, x->docs_cap * MH_PERMS * sizeof *x->sigs);
    }
    uint16_t *o = x->sigs + x->docs * MH_PERMS;
    for (int k = 0; k < MH_PERMS; k++) o[k] = (uint16_t)sig[k];
    if (band_cap != x->band_cap) band_table_grow(x, band_cap);
    for (int b = 0; b < MH_BANDS; b++) {
        uint64_t k = band_key(sig, b);
        size_t i = band_slot(x->band_keys, x->band_cap, k);
        if (x->band_keys[i]) continue; /* first seen keeps the key */
        x->band_keys[i] = k;
        x->band_docs[i] = (uint32_t)x->docs;
        x->band_count++;
    }
    x->docs++;
}

/*
** Bytes the index holds (for --dedup-memory).
*/
size_t near_bytes(const NearIndex *x)
{
    return x->docs_cap * MH_PERMS * sizeof *x->sigs +
        x->band_cap * (sizeof *x->band_keys + sizeof *x->band_docs);
}

/*
** Bytes after one more near_add (its growth rules, near_caps_next).
*/
size_t near_bytes_next(const NearIndex *x)
{
    size_t band, docs = near_caps_next(x, &band);
    return docs * MH_PERMS * sizeof *x->sigs + band * (sizeof *x->band_keys + sizeof *x->band_docs);
}

/* --- the decision ------------------------------------------------------------------- */

void dedup_init(Dedup *d, int use_exact, int use_near, double threshold, uint64_t cap_bytes)
{
    memset(d, 0, sizeof *d);
    d->use_exact = use_exact;
    d->use_near = use_near;
    d->cap_bytes = cap_bytes;
    exactset_init(&d->exact);
    near_init(&d->near, threshold);
}

void dedup_free(Dedup *d)
{
    exactset_free(&d->exact);
    near_free(&d->near);
}

int dedup_has_exact(const Dedup *d, uint64_t fp)
{
    return d->use_exact && exactset_has(&d->exact, fp);
}

/*
** Would one more document take the tables past the cap (counting the doubling a table may
** need)? Sets capped when it would: from then on the tables stay as they are.
*/
static int dedup_room(Dedup *d)
{
    if (d->capped) return 0;
    size_t next = (d->use_exact ? exactset_bytes_next(&d->exact) : 0) +
        (d->use_near ? near_bytes_next(&d->near) : 0);
    if (next <= d->cap_bytes) return 1;
    d->capped = 1;
    return 0;
}

int dedup_check(Dedup *d, uint64_t fp, const uint32_t sig[MH_PERMS], size_t shingles)
{
    if (d->use_exact && exactset_has(&d->exact, fp)) return DEDUP_EXACT;
    if (d->use_near && shingles && near_find(&d->near, sig) >= 0) return DEDUP_NEAR;
    if ((d->use_exact || d->use_near) && dedup_room(d)) {
        if (d->use_exact) exactset_add(&d->exact, fp);
        if (d->use_near && shingles) near_add(&d->near, sig);
    }
    return DEDUP_NEW;
}

size_t dedup_docs(const Dedup *d)
{
    return d->use_near ? d->near.docs : d->exact.count;
}

size_t dedup_bytes(const Dedup *d)
{
    return exactset_bytes(&d->exact) + near_bytes(&d->near);
}
