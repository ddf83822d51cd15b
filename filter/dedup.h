// SPDX-License-Identifier: MIT
/*
** dedup.h: exact and near-duplicate detection for a stream, first seen wins.
**
** Exact: the fingerprint is XXH3-64 of the content with all ASCII white space (space, \t, \n,
** \r, \v, \f) removed; the set keeps 8-byte fingerprints in an open-addressing table at most
** half full: 16-32 bytes per kept document.
**
** Near: MinHash over the set of word 5-grams ("shingles") of the file's word tokens (maximal runs
** of [A-Za-z0-9_] and non-ASCII bytes; a file of 1-4 tokens is one shingle; a file without tokens
** is not near-deduplicated), by one-permutation hashing with optimal densification (Li, Owen and
** Zhang 2012; Shrivastava 2017) in 16 views of 16 bins. A token's hash is that of filter/words.h; a
** shingle's 64-bit hash x combines its 5 token hashes in order (rotate, xor, multiply, then the
** splitmix64 finaliser). View v (0-15) hashes x to y = a_v*x + b_v (64-bit; a_v odd, a_v and b_v
** from splitmix64 of a fixed seed): y's top 4 bits pick the bin, the next 32 bits are the value,
** and each bin keeps the smallest value of its shingles; signature position 16v + bin holds it. An
** empty bin k (a minimum of 2^32-1 counts as empty) takes the value of the first non-empty bin of
** its view in its own probe sequence, the low 4 bits of the bytes of splitmix64 seeded by the fixed
** seed + k x 0xD1B54A32D192ED03, the same for every document (at most 512 probes). Two signatures
** agree at a position with probability the Jaccard similarity of the two shingle sets, as for 256
** independent permutations, at the cost of 16 multiply-adds per shingle instead of 256; 16 views
** rather than one keep the estimate as good as 256 permutations' for files of few shingles, where
** one view of 256 bins would have many empty bins. LSH: 32 bands of 8 rows; a band's key is XXH3 of
** its 8 values and the band number. A document whose band key was seen before is a candidate; it is
** a duplicate when the low 16 bits of the two signatures agree in at least threshold*256 places (an
** estimate of their Jaccard similarity, 0.85 by default). Memory per kept document: 512 bytes of
** signature (256 x 16 bits) plus 32 band entries of 12 bytes in a table at most half full:
** ~1.3-2 KB.
**
** Threads: a MinHasher signs on one thread at a time (each thread has its own); the sets and
** the index are for one thread (cm-filter decides duplicates in input order on one thread).
*/
#ifndef CM_FILTER_DEDUP_H
#define CM_FILTER_DEDUP_H

#include <stddef.h>
#include <stdint.h>
#include "filter/words.h"
#include "util.h"

/* --- exact -------------------------------------------------------------------------- */

typedef struct {
    uint64_t *keys; /* fingerprints (0 = empty slot) */
    size_t cap;     /* slots, a power of two */
    size_t count;   /* fingerprints stored */
} ExactSet;

/* XXH3-64 of s[0..n) without white space (scratch is reused); never 0. */
uint64_t dedup_fingerprint(const char *s, size_t n, Buf *scratch);
void exactset_init(ExactSet *e);
void exactset_free(ExactSet *e);
int exactset_has(const ExactSet *e, uint64_t fp);
void exactset_add(ExactSet *e, uint64_t fp);
size_t exactset_bytes(const ExactSet *e);
/* Bytes the table will hold after one more add (it may double). */
size_t exactset_bytes_next(const ExactSet *e);

/* --- near: signatures --------------------------------------------------------------- */

#define MH_PERMS 256 /* bins of the signature (the name is from when they were permutations) */
#define MH_BANDS 32
#define MH_ROWS 8
#define MH_SHINGLE 5

#define MH_VIEWS 16     /* one-permutation sketches in a signature */
#define MH_VIEW_BINS 16 /* bins of each: MH_PERMS / MH_VIEWS */
#define MH_BIN_BITS 4   /* log2(MH_VIEW_BINS) */

typedef struct {
    uint64_t mul[MH_VIEWS]; /* view v hashes shingle x to mul[v] * x + add[v] (mul[v] odd) */
    uint64_t add[MH_VIEWS];
    WordHashes words; /* scratch: token hashes of the current document, then its shingles' */
} MinHasher;

/* A signer with no scratch yet (signatures are the same in every run). */
void minhash_init(MinHasher *m);
void minhash_free(MinHasher *m);
/* Signature of s[0..n) into sig; returns the number of shingles (0: no tokens). */
size_t minhash_signature(MinHasher *m, const char *s, size_t n, uint32_t sig[MH_PERMS]);
/* Estimated Jaccard similarity of two signatures (fraction of equal values). */
double minhash_similarity(const uint32_t a[MH_PERMS], const uint32_t b[MH_PERMS]);

/* --- near: LSH index ---------------------------------------------------------------- */

typedef struct {
    double threshold;    /* Jaccard estimate at or above which a candidate is a duplicate */
    uint16_t *sigs;      /* low 16 bits of each kept document's signature, docs x 256 */
    size_t docs;         /* kept documents */
    size_t docs_cap;     /* room in sigs */
    uint64_t *band_keys; /* band keys (0 = empty slot) */
    uint32_t *band_docs; /* document that first had the key */
    size_t band_cap;     /* slots, a power of two */
    size_t band_count;   /* keys stored */
} NearIndex;

void near_init(NearIndex *x, double threshold);
void near_free(NearIndex *x);
/* Index of an earlier kept document that sig near-duplicates, or -1. */
long near_find(const NearIndex *x, const uint32_t sig[MH_PERMS]);
void near_add(NearIndex *x, const uint32_t sig[MH_PERMS]);
size_t near_bytes(const NearIndex *x);
/* Bytes the index will hold after one more near_add (its tables may double). */
size_t near_bytes_next(const NearIndex *x);

/* --- the decision ------------------------------------------------------------------- */

/*
** Exact and near dedup of one stream under a memory cap: first seen wins. A new document is
** added to the tables while they stay within cap_bytes (counting the doubling a table may
** need); after that the tables stop growing and later documents are compared with the
** documents kept so far only.
*/
typedef struct {
    int use_exact;      /* exact dedup on */
    int use_near;       /* near dedup on */
    uint64_t cap_bytes; /* --dedup-memory */
    int capped;         /* the cap was reached: the tables no longer grow */
    ExactSet exact;     /* fingerprints of kept documents */
    NearIndex near;     /* signatures of kept documents */
} Dedup;

enum { DEDUP_NEW = 0, DEDUP_EXACT, DEDUP_NEAR };

void dedup_init(Dedup *d, int use_exact, int use_near, double threshold, uint64_t cap_bytes);
void dedup_free(Dedup *d);
/* Is fp (use_exact) a fingerprint already kept? (lets a caller skip signing a copy) */
int dedup_has_exact(const Dedup *d, uint64_t fp);
/* Decide a document from its fingerprint fp (when use_exact) and its signature of `shingles`
** shingles (when use_near; 0 shingles: not near-deduplicated): DEDUP_EXACT, DEDUP_NEAR, or
** DEDUP_NEW (then it was added while there was room). */
int dedup_check(Dedup *d, uint64_t fp, const uint32_t sig[MH_PERMS], size_t shingles);
/* Documents kept in the tables (the near index's count when near dedup is on). */
size_t dedup_docs(const Dedup *d);
/* Bytes the tables hold. */
size_t dedup_bytes(const Dedup *d);

#endif
