// SPDX-License-Identifier: MIT
/*
** data.h: where cm-train's token windows come from: a corpus packed by cm-shards (through the
** shards/corpus.h reader) or a synthetic stream of random ids (benchmarks, tests), behind one
** small interface. A window holds T+1 tokens; inputs are window[0..T), labels window[1..T+1).
*/
#ifndef CM_TRAIN_DATA_H
#define CM_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef struct Corpus Corpus;
typedef struct CorpusSampler CorpusSampler;

typedef struct {
    CorpusSampler *sampler; /* corpus windows, or NULL for synthetic */
    uint32_t V;             /* synthetic: ids are uniform in [0, V) */
    uint64_t seed;          /* synthetic: window k depends on (seed, k) only */
    uint64_t pos;           /* synthetic: windows drawn so far */
    uint64_t limit;         /* synthetic: windows available (0: unlimited) */
    size_t window;          /* T + 1 */
} DataSource;

/* A synthetic source: `limit` windows (0: endless) of uniform random ids from `seed`. */
void data_synthetic(DataSource *d, uint32_t V, uint64_t seed, size_t window, uint64_t limit);
/* A corpus source over `split` (and `where`): random (training) or sequential (evaluation).
** Returns 0, or with a message in err: CM_EUSAGE for a bad `where`, CM_EFORMAT otherwise. */
int data_corpus(DataSource *d, Corpus *c, const char *split, const char *where, int sequential,
                uint64_t seed, size_t window, char *err, size_t errlen);
void data_free(DataSource *d);
/* Next window into w[0..window). Returns 1, or 0 when a finite source is exhausted. */
int data_next(DataSource *d, uint32_t *w);
/* Position (windows drawn) and restoring it. */
uint64_t data_tell(const DataSource *d);
void data_seek(DataSource *d, uint64_t pos);

/* Fill a batch of B windows: inputs(B,T) = window[0..T), targets(B,T) = window[1..T+1).
** Returns the number of windows filled (< B when the source ran out). */
int data_batch(DataSource *d, uint32_t *windows, int B, int T, uint32_t *inputs, uint32_t *targets);
/* Split B windows of T+1 tokens into inputs and targets (shift by one). */
void data_shift(const uint32_t *windows, int B, int T, uint32_t *inputs, uint32_t *targets);

#endif
