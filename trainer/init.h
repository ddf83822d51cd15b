// SPDX-License-Identifier: MIT
/*
** init.h: `cm-train --init CKPT` (fine-tuning, domain adaptation): a new run that starts from
** a checkpoint's weights, with a fresh AdamW state and schedule (step 0, zero moments, the
** warmup and cosine decay of this run's options). The model's shape is the checkpoint's (shape
** options are not needed; given, they must agree). The corpus must be encoded with the
** model's tokenizer: its tokenizer fingerprint is compared with the model's (checkpoint v2:
** the header's tokenizer fingerprint; v1: the data fingerprint, that of the tokenizer for an
** import or a run without --where), and another tokenizer is refused with the command that
** re-encodes the corpus with the model's tokenizer.json.
*/
#ifndef CM_TRAIN_INIT_H
#define CM_TRAIN_INIT_H

#include <stdint.h>

#include "trainer/ckpt.h"    /* defines: CkptInfo */
#include "trainer/data.h"    /* defines: DataSource */
#include "trainer/model.h"   /* defines: Gpt */
#include "trainer/options.h" /* defines: TrainerOpts, Corpus */

/* Load o->init's weights into m (gpt_init'd here; the moments, if saved, are not used) and
** take its shape into o->cfg. tok_fp is the fingerprint of the data's tokenizer
** (resume_fingerprint(corpus, vocab, NULL)), data_fp that of the data with o->where (for a v1
** checkpoint trained with --where). Returns 0; or the exit status after a message: 2 for a
** shape option that differs, 3 when the file cannot be read, 4 for a damaged checkpoint or a
** corpus of another tokenizer (both fingerprints and the re-encode command named). */
int init_load(TrainerOpts *o, uint32_t vocab, uint64_t tok_fp, uint64_t data_fp, Gpt *m);

/* The evaluation of the initial weights before step 1, on stderr (unless o->quiet):
** "cm-train: step 0 (--init FILE): valid loss X, perplexity P[, bits per byte B]", on the
** windows every evaluation of the run uses (those of `cm-train eval --split S --batch B
** --eval-batches N` with this run's values). bpt: bytes per token of the split (0: unknown). */
void init_evaluate(const TrainerOpts *o, Gpt *m, DataSource *valid, double bpt);

#endif
