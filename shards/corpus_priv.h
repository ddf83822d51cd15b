// SPDX-License-Identifier: MIT
/*
** corpus_priv.h: the corpus reader's structures, shared by its two samplers (internal to
** shards/): corpus.c (opening, windows over token positions) and examples.c (one instruction
** example per window). Tell, seek and free of corpus.h serve both.
*/
#ifndef CM_SHARDS_CORPUS_PRIV_H
#define CM_SHARDS_CORPUS_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "corpus.h"       // defines: Corpus, CorpusSampler
#include "corpus_index.h" // defines: CorpusIndex

/* The examples of an examples sampler (examples.c). */
typedef struct Examples Examples;
void examples_free(Examples *e);

typedef struct {
    uint64_t tokens;           /* token count (index and header agree) */
    unsigned char *map;        /* the whole file, mapped read-only (NULL: no such shard id) */
    size_t map_len;            /* its length */
    const unsigned char *data; /* map + SHARD_PAYLOAD_OFFSET */
} CShard;

struct Corpus {
    CorpusIndex x; /* index.sqlite (read-only) and its corpus row */
    CShard *sh;    /* indexed by shards.id */
    size_t nsh;    /* max id + 1 */
};

typedef struct {
    uint32_t shard; /* shards.id */
    uint64_t off;   /* first token in the shard's payload */
    uint64_t len;   /* tokens */
    uint64_t cum;   /* position of its first token in the virtual sequence */
} SampleRange;

struct CorpusSampler {
    Corpus *c;      /* the corpus (not owned) */
    SampleRange *r; /* selected ranges, in document order */
    size_t nr;      /* count */
    uint64_t total; /* tokens in all ranges */
    size_t window;  /* T+1 */
    int mode;       /* CORPUS_RANDOM or CORPUS_SEQUENTIAL */
    uint64_t seed;  /* random mode seed */
    uint64_t k;     /* windows (or examples) drawn so far */
    Examples *ex;   /* an examples sampler (examples.c): its table; NULL for windows */
};

#endif
