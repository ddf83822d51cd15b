// SPDX-License-Identifier: MIT
/*
** data.h: where cm-train's token windows come from: a corpus packed by cm-shards (through the
** shards/corpus.h reader) or a synthetic stream of random ids (benchmarks, tests), behind one
** small interface. A window holds T+1 tokens; inputs are window[0..T), labels window[1..T+1).
** An instruction corpus (one whose documents carry prompt lengths) gives one example per
** window (shards/corpus.h: corpus_examples_*), padded with end-of-text, and a loss mask that
** scores only the example's response targets and its end-of-text (data_mask).
*/
#ifndef CM_TRAIN_DATA_H
#define CM_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "shards/corpus.h" /* defines: Corpus, CorpusSampler, CorpusExampleStats */

typedef struct {
    CorpusSampler *sampler; /* corpus windows, or NULL for synthetic */
    int examples;           /* the sampler draws instruction examples, one per window */
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
/* An instruction-example source over `split` (and `where`) of a corpus with prompts: random
** (training) or each example once (evaluation); st (may be NULL) gets the selection's counts
** (examples used, skipped, truncated; tokens; response tokens). Returns as data_corpus. */
int data_examples(DataSource *d, Corpus *c, const char *split, const char *where, int sequential,
                  uint64_t seed, size_t window, CorpusExampleStats *st, char *err, size_t errlen);
void data_free(DataSource *d);
/* Next window into w[0..window). Returns 1, or 0 when a finite source is exhausted. */
int data_next(DataSource *d, uint32_t *w);
/* Position (windows drawn) and restoring it. */
uint64_t data_tell(const DataSource *d);
void data_seek(DataSource *d, uint64_t pos);

/* Fill a batch of B windows: inputs(B,T) = window[0..T), targets(B,T) = window[1..T+1).
** Returns the number of windows filled (< B when the source ran out). */
int data_batch(DataSource *d, uint32_t *windows, int B, int T, uint32_t *inputs, uint32_t *targets);
/* data_batch with the loss mask (B*T) of the windows: for an example source, data_mask of
** each example; for any other, all 1. */
int data_batch_mask(DataSource *d, uint32_t *windows, int B, int T, uint32_t *inputs,
                    uint32_t *targets, float *mask);
/* The loss mask of one window holding an example of n_tokens tokens (<= T+1) of which the first
** n_prompt are prompt: target t (it predicts window token t+1) is scored (1) iff
** n_prompt <= t+1 < n_tokens, i.e. the response tokens and the end-of-text; the prompt and the
** padding get 0 (n_prompt 0: every real token of a plain document). Returns the scored count. */
int data_mask(uint32_t n_prompt, uint32_t n_tokens, int T, float *mask);
/* Split B windows of T+1 tokens into inputs and targets (shift by one). */
void data_shift(const uint32_t *windows, int B, int T, uint32_t *inputs, uint32_t *targets);

#endif
