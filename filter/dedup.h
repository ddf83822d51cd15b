// SPDX-License-Identifier: MIT
/*
** dedup.h: exact and near-duplicate detection for a stream, first seen wins.
**
** Exact: the fingerprint is XXH3-64 of the content with all ASCII white space (space, \t, \n,
** \r, \v, \f) removed; the set keeps 8-byte fingerprints in an open-addressing table at most
** half full: 16-32 bytes per kept document.
**
** Near: MinHash with 256 permutations over the set of word 5-grams ("shingles") of the file's
** word tokens (maximal runs of [A-Za-z0-9_] and non-ASCII bytes; a file of 1-4 tokens is one
** shingle; a file without tokens is not near-deduplicated). A token's hash is FNV-1a of its
** bytes, mixed by the splitmix64 finaliser; a shingle's 64-bit hash x combines its 5 token
** hashes in order (rotate, xor, multiply, then the same finaliser); permutation i is h_i(x) = (a_i*x + b_i) >> 32 (multiply-shift,
** a_i odd, a_i and b_i from splitmix64 of a fixed seed), the signature keeps the minimum of
** each. LSH: 32 bands of 8 rows; a band's key is XXH3 of its 8 values and the band number.
** A document whose band key was seen before is a candidate; it is a duplicate when the low
** 16 bits of the two signatures agree in at least threshold*256 places (an estimate of their
** Jaccard similarity, 0.85 by default). Memory per kept document: 512 bytes of signature
** (256 x 16 bits) plus 32 band entries of 12 bytes in a table at most half full: ~1.3-2 KB.
*/
#ifndef CM_FILTER_DEDUP_H
#define CM_FILTER_DEDUP_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

/* --- exact -------------------------------------------------------------------------- */

typedef struct {
    uint64_t *aKey;            /* fingerprints (0 = empty slot) */
    size_t cap;                /* slots, a power of two */
    size_t n;                  /* fingerprints stored */
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

/* --- near --------------------------------------------------------------------------- */

#define MH_PERMS 256
#define MH_BANDS 32
#define MH_ROWS 8
#define MH_SHINGLE 5

typedef struct {
    uint64_t aA[MH_PERMS];     /* multipliers (odd) */
    uint64_t aB[MH_PERMS];     /* offsets */
    double threshold;          /* Jaccard estimate at or above which a candidate is a duplicate */
    uint16_t *aSig;            /* low 16 bits of each kept document's signature, nDocs x 256 */
    size_t nDocs;              /* kept documents */
    size_t capDocs;            /* room in aSig */
    uint64_t *aBandKey;        /* band keys (0 = empty slot) */
    uint32_t *aBandDoc;        /* document that first had the key */
    size_t capBand;            /* slots, a power of two */
    size_t nBand;              /* keys stored */
    uint64_t *aTok;            /* scratch: token hashes of the current document */
    size_t capTok;             /* room in aTok */
} NearIndex;

void near_init(NearIndex *x, double threshold);
void near_free(NearIndex *x);
/* Signature of s[0..n) into sig; returns the number of shingles (0: no tokens). */
size_t near_signature(NearIndex *x, const char *s, size_t n, uint32_t sig[MH_PERMS]);
/* Index of an earlier kept document that sig near-duplicates, or -1. */
long near_find(const NearIndex *x, const uint32_t sig[MH_PERMS]);
void near_add(NearIndex *x, const uint32_t sig[MH_PERMS]);
size_t near_bytes(const NearIndex *x);
/* Bytes the index will hold after one more near_add (its tables may double). */
size_t near_bytes_next(const NearIndex *x);
/* Estimated Jaccard similarity of two signatures (fraction of equal values). */
double near_similarity(const uint32_t a[MH_PERMS], const uint32_t b[MH_PERMS]);

#endif
