// SPDX-License-Identifier: MIT
/*
** train.h: learn a byte-level BPE (the algorithm of Hugging Face's BpeTrainer) from text.
**
**   BpeTrainer *t = bpe_trainer_new(&opts);
**   bpe_trainer_feed(t, docs, lens, n);      (any number of times: counts pre-tokenized words)
**   bpe_trainer_finish(t, &json);            (merges, then the tokenizer.json text)
**   bpe_trainer_free(t);
**
** Memory: the word table (distinct pre-tokens with 64-bit counts); with max_words set, when the
** table exceeds it after a feed, the rarest words are dropped down to max_words/2 (wm_prune).
*/
#ifndef CM_BPE_TRAIN_H
#define CM_BPE_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include "util.h"

typedef struct {
    uint32_t vocab_size;         /* total ids wanted, specials and the 256 bytes included */
    uint64_t min_frequency;      /* a pair seen fewer times is not merged (0 = no limit) */
    char **specials;             /* special tokens (get ids 0..n-1), may be NULL */
    int n_specials;              /* how many */
    int threads;                 /* counting threads (1..64) */
    uint64_t max_words;          /* cap on distinct words, checked after each feed; 0 = none */
    volatile sig_atomic_t *stop; /* when set and it turns non-zero, finish gives up (returns -2) */
} BpeTrainOpts;

typedef struct BpeTrainer BpeTrainer;

BpeTrainer *bpe_trainer_new(const BpeTrainOpts *o);
/* Count the words of n documents (split among the threads in a fixed way: deterministic). */
int bpe_trainer_feed(BpeTrainer *t, const char *const *docs, const size_t *lens, size_t n);
/* Compute the merges and write the tokenizer.json into out. Returns 0, -1, or -2 if stopped. */
int bpe_trainer_finish(BpeTrainer *t, Buf *out);
/* Statistics after finish: distinct words, words pruned, merges learned. */
void bpe_trainer_stats(const BpeTrainer *t, uint64_t *words, uint64_t *pruned, uint64_t *merges);
void bpe_trainer_free(BpeTrainer *t);

#endif
