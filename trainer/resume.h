// SPDX-License-Identifier: MIT
/*
** resume.h: what `cm-train --resume` reconciles before it goes on: the checkpoint against the
** options and the data (its shape and hyperparameters are adopted unless given, a different
** shape or other data is refused), and the log, cut back to the checkpoint's step.
*/
#ifndef CM_TRAIN_RESUME_H
#define CM_TRAIN_RESUME_H

#include <stdint.h>

#include "trainer/ckpt.h"    /* defines: CkptInfo */
#include "trainer/model.h"   /* defines: Gpt */
#include "trainer/options.h" /* defines: TrainerOpts */

/* Fingerprint of the training data: the tokenizer, the vocabulary and the selection (c NULL:
** synthetic ids). Stored in checkpoints; a resume on other data is refused. */
uint64_t resume_fingerprint(Corpus *c, uint32_t vocab, const char *where);

/* --resume from the checkpoint at path: when there is none yet, a warning (unless quiet) and
** *loaded = 0 (start from step 0). Else the model with its AdamW moments into m (*loaded = 1,
** the caller frees m), the header into info, and the shape, batch, accumulation, seed and the
** hyperparameters not given adopted into o. Returns 0, or the exit status after a message:
** 2 for a shape or seed given that differs, 3 for an I/O error, 4 for a damaged checkpoint,
** one without optimizer state, or one trained on other data (vocab and fp of this data). */
int resume_load(TrainerOpts *o, const char *path, uint32_t vocab, uint64_t fp, Gpt *m,
                CkptInfo *info, int *loaded);

/* Keep only the log lines of steps <= step (a killed run may have logged steps after its
** last checkpoint; they are logged again as the run continues), and no half-written last
** line. The log is rewritten through an AtomicFile. 0, or -1 after a message. */
int log_truncate(const char *path, uint64_t step);

#endif
