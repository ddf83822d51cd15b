// SPDX-License-Identifier: MIT
/*
** pool.c: worker threads and the in-order ring of batches (see pool.h).
**
** Batches are numbered as they are submitted; slot = number % depth. [head, tail) are in
** flight, [head, next) handed to workers (done[slot] says which are finished), [next, tail)
** wait for a worker. One mutex guards the numbers and the done flags; a worker owns a batch
** between taking it and setting its done flag, the main thread before submitting it and
** after pool_head returned it.
*/
#include "filter/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h" // defines: xcalloc, cm_thread_block_stop_signals

struct FilterPool {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a batch waits for a worker, or quit */
    pthread_cond_t done_cv; /* a batch was worked */
    FilterBatch *batches;   /* depth slots */
    int *done;              /* per slot: worked */
    size_t depth;
    size_t head, next, tail; /* batch numbers (see above) */
    int quit;                /* workers end */
    int threads;             /* worker threads started (0: the caller works) */
    pthread_t *tids;
    BatchWorker *workers; /* one per thread (one for the caller without threads) */
};

typedef struct {
    FilterPool *pool;
    BatchWorker *worker;
} WorkerArg;

/* A worker thread: take the next waiting batch, work it, mark it done; until quit. */
static void *worker_run(void *arg)
{
    WorkerArg *a = arg;
    FilterPool *p = a->pool;
    BatchWorker *w = a->worker;
    free(a);
    cm_thread_block_stop_signals();
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->next == p->tail) pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->quit) break;
        size_t slot = p->next++ % p->depth;
        pthread_mutex_unlock(&p->mu);
        batch_work(&p->batches[slot], w);
        pthread_mutex_lock(&p->mu);
        p->done[slot] = 1;
        pthread_cond_broadcast(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Start the worker threads; 0, or -1 when none could be started. */
static int workers_start(FilterPool *p, int threads)
{
    p->tids = xcalloc((size_t)threads, sizeof *p->tids);
    for (int i = 0; i < threads; i++) {
        WorkerArg *a = xmalloc(sizeof *a);
        a->pool = p;
        a->worker = &p->workers[i];
        if (pthread_create(&p->tids[i], NULL, worker_run, a) != 0) {
            free(a);
            break;
        }
        p->threads++;
    }
    return p->threads ? 0 : -1;
}

FilterPool *pool_new(int threads, const FilterRules *rules, int rejects)
{
    FilterPool *p = xcalloc(1, sizeof *p);
    int n = threads > 1 ? threads : 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->workers = xcalloc((size_t)n, sizeof *p->workers);
    for (int i = 0; i < n; i++) {
        if (batch_worker_init(&p->workers[i], rules, rejects) != 0) {
            for (int k = 0; k <= i; k++) batch_worker_free(&p->workers[k]);
            free(p->workers);
            free(p);
            return NULL;
        }
    }
    if (threads > 1 && workers_start(p, threads) != 0)
        warn("cannot start worker threads: filtering on one");
    p->depth = p->threads ? 2 * (size_t)p->threads : 1;
    p->batches = xcalloc(p->depth, sizeof *p->batches);
    p->done = xcalloc(p->depth, sizeof *p->done);
    return p;
}

void pool_free(FilterPool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->threads; i++) pthread_join(p->tids[i], NULL);
    int n = p->threads > 1 ? p->threads : 1;
    for (int i = 0; i < n; i++) batch_worker_free(&p->workers[i]);
    for (size_t i = 0; i < p->depth; i++) batch_free(&p->batches[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->workers);
    free(p->batches);
    free(p->done);
    free(p->tids);
    free(p);
}

FilterBatch *pool_free_batch(FilterPool *p)
{
    /* only the main thread moves tail and head: no lock needed to read them here */
    if (p->tail - p->head == p->depth) return NULL;
    return &p->batches[p->tail % p->depth];
}

void pool_submit(FilterPool *p)
{
    size_t slot = p->tail % p->depth;
    if (!p->threads) {
        batch_work(&p->batches[slot], &p->workers[0]);
        p->done[slot] = 1;
        p->tail++;
        p->next = p->tail;
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->done[slot] = 0;
    p->tail++;
    pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
}

FilterBatch *pool_head(FilterPool *p, int wait)
{
    if (p->head == p->tail) return NULL;
    size_t slot = p->head % p->depth;
    if (!p->threads) return &p->batches[slot];
    pthread_mutex_lock(&p->mu);
    while (!p->done[slot] && wait) pthread_cond_wait(&p->done_cv, &p->mu);
    int done = p->done[slot];
    pthread_mutex_unlock(&p->mu);
    return done ? &p->batches[slot] : NULL;
}

void pool_release(FilterPool *p)
{
    if (p->head == p->tail) return;
    pthread_mutex_lock(&p->mu);
    p->done[p->head % p->depth] = 0;
    p->head++;
    pthread_mutex_unlock(&p->mu);
}

size_t pool_pending(const FilterPool *p)
{
    return p->tail - p->head;
}
