// SPDX-License-Identifier: MIT
/*
** data.c: token windows for cm-train from a corpus or a synthetic stream (see data.h).
*/
#include "trainer/data.h"

#include <string.h>

#include "hash.h"          /* defines: splitmix64 */
#include "shards/corpus.h" /* defines: corpus_sampler_* */

/*
** Set up a synthetic source.
*/
void data_synthetic(DataSource *d, uint32_t V, uint64_t seed, size_t window, uint64_t limit)
{
    memset(d, 0, sizeof *d);
    d->V = V;
    d->seed = seed;
    d->window = window;
    d->limit = limit;
}

/*
** Set up a corpus source (random windows for training, sequential ones for evaluation).
*/
int data_corpus(DataSource *d, Corpus *c, const char *split, const char *where, int sequential,
                uint64_t seed, size_t window, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->window = window;
    d->V = corpus_vocab_size(c);
    int status;
    d->sampler = corpus_sampler_open(c, split, where,
                                     sequential ? CORPUS_SEQUENTIAL : CORPUS_RANDOM, seed, window,
                                     err, errlen, &status);
    return d->sampler ? 0 : status;
}

/*
** Set up an instruction-example source (see data.h).
*/
int data_examples(DataSource *d, Corpus *c, const char *split, const char *where, int sequential,
                  uint64_t seed, size_t window, CorpusExampleStats *st, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->window = window;
    d->V = corpus_vocab_size(c);
    d->examples = 1;
    int status;
    d->sampler = corpus_examples_open(c, split, where,
                                      sequential ? CORPUS_SEQUENTIAL : CORPUS_RANDOM, seed, window,
                                      st, err, errlen, &status);
    return d->sampler ? 0 : status;
}

/*
** Release a source.
*/
void data_free(DataSource *d)
{
    if (d->sampler) corpus_sampler_free(d->sampler);
    memset(d, 0, sizeof *d);
}

/*
** Next window; synthetic window k is drawn from a generator seeded by (seed, k) alone.
*/
int data_next(DataSource *d, uint32_t *w)
{
    uint32_t np, nt;
    if (d->examples) return corpus_examples_next(d->sampler, w, &np, &nt);
    if (d->sampler) return corpus_sampler_next(d->sampler, w);
    if (d->limit && d->pos >= d->limit) return 0;
    uint64_t st = d->seed * 0x9E3779B97F4A7C15ull ^ (d->pos + 1) * 0xD1B54A32D192ED03ull;
    for (size_t i = 0; i < d->window; i++) w[i] = (uint32_t)(splitmix64(&st) % d->V);
    d->pos++;
    return 1;
}

/*
** Windows drawn so far.
*/
uint64_t data_tell(const DataSource *d)
{
    return d->sampler ? corpus_sampler_tell(d->sampler) : d->pos;
}

/*
** Continue from position pos (as returned by data_tell).
*/
void data_seek(DataSource *d, uint64_t pos)
{
    if (d->sampler)
        corpus_sampler_seek(d->sampler, pos);
    else
        d->pos = pos;
}

/*
** inputs[b] = windows[b][0..T), targets[b] = windows[b][1..T+1).
*/
void data_shift(const uint32_t *windows, int B, int T, uint32_t *inputs, uint32_t *targets)
{
    for (int b = 0; b < B; b++) {
        const uint32_t *w = windows + (size_t)b * (T + 1);
        memcpy(inputs + (size_t)b * T, w, (size_t)T * sizeof(uint32_t));
        memcpy(targets + (size_t)b * T, w + 1, (size_t)T * sizeof(uint32_t));
    }
}

/*
** Draw up to B windows and split them; returns how many were drawn.
*/
int data_batch(DataSource *d, uint32_t *windows, int B, int T, uint32_t *inputs, uint32_t *targets)
{
    int n = 0;
    while (n < B && data_next(d, windows + (size_t)n * (T + 1))) n++;
    data_shift(windows, n, T, inputs, targets);
    return n;
}

/*
** See data.h.
*/
int data_mask(uint32_t n_prompt, uint32_t n_tokens, int T, float *mask)
{
    int n = 0;
    for (int t = 0; t < T; t++) {
        uint32_t y = (uint32_t)t + 1; /* the window position target t predicts */
        mask[t] = y >= n_prompt && y < n_tokens ? 1.0f : 0.0f;
        n += mask[t] != 0.0f;
    }
    return n;
}

/*
** data_batch, and each window's loss mask (all 1 outside instruction examples).
*/
int data_batch_mask(DataSource *d, uint32_t *windows, int B, int T, uint32_t *inputs,
                    uint32_t *targets, float *mask)
{
    if (!d->examples) {
        int n = data_batch(d, windows, B, T, inputs, targets);
        for (size_t i = 0; i < (size_t)n * T; i++) mask[i] = 1.0f;
        return n;
    }
    int n = 0;
    uint32_t np, nt;
    while (n < B && corpus_examples_next(d->sampler, windows + (size_t)n * (T + 1), &np, &nt)) {
        data_mask(np, nt, T, mask + (size_t)n * T);
        n++;
    }
    data_shift(windows, n, T, inputs, targets);
    return n;
}
