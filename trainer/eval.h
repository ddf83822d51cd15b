// SPDX-License-Identifier: MIT
/*
** eval.h: the loss of a model on every window of a (finite) data source, for the eval verb
** and the evaluations during training.
*/
#ifndef CM_TRAIN_EVAL_H
#define CM_TRAIN_EVAL_H

#include <stdint.h>

#include "trainer/data.h"  /* defines: DataSource */
#include "trainer/model.h" /* defines: Gpt */

/* Mean loss per token over at most max_batches batches of B windows of d (from its start);
** the tokens seen in *ntok (NAN and 0 when none). With stop_on_signal it also stops early when
** cm_stopping() (the caller then reports the interruption). */
double evaluate(Gpt *m, DataSource *d, int B, long max_batches, int stop_on_signal, uint64_t *ntok);

#endif
