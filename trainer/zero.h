// SPDX-License-Identifier: MIT
/*
** zero.h: ZeRO stage 1 for cm-train's data-parallel runs (`--zero 1`, dist.h): the AdamW
** moments are split across the ranks, each rank keeping the moments of its shard of the flat
** parameters (model.h's one block): its slice of every piece of DIST_PIECE values, so that
** every transfer is one piece long (zero.c). A step: the gradients reduce-scattered (each rank
** gets the sum of its shard), the global norm from the shards' sums of squares, AdamW on the
** local shard (the same adamw_update, per tensor piece, with the tensor's weight decay), then
** the parameters all-gathered. Every rank keeps the full parameters and gradients; the moments
** take 8/N bytes per parameter instead of 8, plus 4/N for the shard of the summed gradients.
** Checkpoints keep the existing format: the moments are gathered to rank 0 to be written.
*/
#ifndef CM_TRAIN_ZERO_H
#define CM_TRAIN_ZERO_H

#include <stddef.h>

#include "trainer/model.h" /* defines: Gpt */

typedef struct {
    size_t len;       /* values in this rank's shard (its slices, one after the other) */
    float *g, *m, *v; /* its summed gradients and AdamW moments */
} Zero;

/* Take m's moments (rank 0's; the others' are ignored) into each rank's shard and free the
** full moment blocks of m on every rank (m->m_memory = m->v_memory = NULL). Collective. */
void zero_setup(Zero *z, Gpt *m);
void zero_free(Zero *z);
/* Reduce-scatter the gradients of every rank into the shard; returns the norm of the summed
** gradient (every rank the same). Collective. */
double zero_reduce(Zero *z, const Gpt *m);
/* AdamW on the shard (gpt_update's arguments), then the parameters all-gathered. Collective. */
void zero_update(Zero *z, Gpt *m, float lr, float beta1, float beta2, float eps, float wd,
                 float gscale, int t);
/* Before a checkpoint: the full moments gathered into new blocks m->m_memory, m->v_memory on
** rank 0 (NULL elsewhere); zero_drop_moments frees them after the save. Collective. */
void zero_gather_moments(const Zero *z, Gpt *m);
void zero_drop_moments(Gpt *m);

#endif
