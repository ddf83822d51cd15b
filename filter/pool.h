// SPDX-License-Identifier: MIT
/*
** pool.h: cm-filter's worker threads and the ring of batches in flight between them and the
** main thread.
**
** The main thread takes a free batch (pool_free_batch), fills it and submits it; a worker
** works it (batch_work); the main thread takes the batches back strictly in the order they
** were submitted (pool_head, pool_release). At most `depth` batches are in flight, which
** bounds the memory. With no worker threads, pool_submit works the batch on the calling
** thread at once.
*/
#ifndef CM_FILTER_POOL_H
#define CM_FILTER_POOL_H

#include <stddef.h>

#include "filter/batch.h" // defines: FilterBatch, BatchWorker
#include "filter/rules.h" // defines: FilterRules

typedef struct FilterPool FilterPool;

/* Most worker threads (--threads). */
#define POOL_MAX_THREADS 64

/*
** Start `threads` workers (1: none, the caller works each batch itself) judging by rules,
** rendering --rejects lines when rejects is set; 2 x threads batches in flight (1 without
** workers). NULL when a worker's judge cannot be made (message printed).
*/
FilterPool *pool_new(int threads, const FilterRules *rules, int rejects);
/* Stop and join the workers (a batch being worked is finished first) and free everything. */
void pool_free(FilterPool *p);

/* A free batch for the caller to fill, or NULL while `depth` batches are in flight. */
FilterBatch *pool_free_batch(FilterPool *p);
/* Submit the batch pool_free_batch gave out last. */
void pool_submit(FilterPool *p);
/* The oldest batch in flight once it is worked, or NULL: none in flight, or (wait 0) the
** oldest is not worked yet. */
FilterBatch *pool_head(FilterPool *p, int wait);
/* Give back the batch pool_head returned (consumed, or dropped). */
void pool_release(FilterPool *p);
/* Batches in flight. */
size_t pool_pending(const FilterPool *p);

#endif
