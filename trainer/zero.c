// SPDX-License-Identifier: MIT
/*
** zero.c: ZeRO-1, the AdamW moments sharded across the ranks (see zero.h).
**
** The flat parameters are cut into pieces of DIST_PIECE values (the last one shorter), and
** each piece into dist_size() contiguous slices (dist_shard): this rank's shard is its slice of
** every piece, stored one after the other in Zero's buffers. Every transfer then moves one
** piece, so that MPI's temporary buffers stay at a piece's size whatever the model's.
*/
#include "trainer/zero.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"            /* defines: xmalloc */
#include "trainer/dist.h"    /* defines: dist_*, DIST_PIECE */
#include "trainer/kernels.h" /* defines: adamw_update, kern_sumsq, kern_zalloc */

/*
** Piece p (starting at value p * DIST_PIECE) of a flat tensor of n values: its length, and
** this rank's slice in it, [*lo, *lo + *len) relative to the piece's start.
*/
static size_t piece(size_t n, size_t p, size_t *lo, size_t *len)
{
    size_t start = p * DIST_PIECE, plen = n - start < DIST_PIECE ? n - start : DIST_PIECE;
    dist_shard(plen, lo, len);
    return plen;
}

/* The pieces of a tensor of n values. */
static size_t pieces(size_t n)
{
    return (n + DIST_PIECE - 1) / DIST_PIECE;
}

void zero_setup(Zero *z, Gpt *m)
{
    size_t n = m->nparams, lo, len, at = 0;
    z->len = 0;
    for (size_t p = 0; p < pieces(n); p++) {
        piece(n, p, &lo, &len);
        z->len += len;
    }
    size_t cap = z->len ? z->len : 1;
    z->g = kern_zalloc(cap);
    z->m = kern_zalloc(cap);
    z->v = kern_zalloc(cap);
    for (size_t p = 0; p < pieces(n); p++) {
        size_t plen = piece(n, p, &lo, &len), start = p * DIST_PIECE;
        dist_scatter(m->m_memory + start, z->m + at, plen);
        dist_scatter(m->v_memory + start, z->v + at, plen);
        at += len;
    }
    free(m->m_memory);
    free(m->v_memory);
    m->m_memory = m->v_memory = NULL;
}

void zero_free(Zero *z)
{
    free(z->g);
    free(z->m);
    free(z->v);
    memset(z, 0, sizeof *z);
}

double zero_reduce(Zero *z, const Gpt *m)
{
    size_t n = m->nparams, lo, len, at = 0;
    for (size_t p = 0; p < pieces(n); p++) {
        size_t plen = piece(n, p, &lo, &len);
        dist_reduce_scatter(m->grads_memory + p * DIST_PIECE, z->g + at, plen);
        at += len;
    }
    return sqrt(dist_sum_double(kern_sumsq(z->g, z->len)));
}

/*
** AdamW on values [a, b) of the flat parameters, whose shard copies start at index at of Zero's
** buffers: split at the tensors' boundaries (each its weight decay).
*/
static void update_range(Zero *z, Gpt *m, size_t a, size_t b, size_t at, float lr, float beta1,
                         float beta2, float eps, float wd, float gscale, int t)
{
    size_t off = 0;
    for (int i = 0; i < GPT_NUM_PARAMS && off < b; i++) {
        size_t end = off + m->param_sizes[i];
        size_t x = off > a ? off : a, y = end < b ? end : b;
        if (x < y)
            adamw_update(m->params_memory + x, z->g + at + (x - a), z->m + at + (x - a),
                         z->v + at + (x - a), y - x, lr, beta1, beta2, eps,
                         gpt_param_decay(i) ? wd : 0.0f, gscale, t);
        off = end;
    }
}

void zero_update(Zero *z, Gpt *m, float lr, float beta1, float beta2, float eps, float wd,
                 float gscale, int t)
{
    size_t n = m->nparams, lo, len, at = 0;
    for (size_t p = 0; p < pieces(n); p++) {
        size_t start = p * DIST_PIECE;
        piece(n, p, &lo, &len);
        update_range(z, m, start + lo, start + lo + len, at, lr, beta1, beta2, eps, wd, gscale, t);
        at += len;
    }
    for (size_t p = 0; p < pieces(n); p++) {
        size_t plen = piece(n, p, &lo, &len);
        dist_allgather(m->params_memory + p * DIST_PIECE, plen);
    }
}

void zero_gather_moments(const Zero *z, Gpt *m)
{
    size_t n = m->nparams, lo, len, at = 0;
    if (dist_rank() == 0) {
        m->m_memory = xmalloc(n * sizeof(float));
        m->v_memory = xmalloc(n * sizeof(float));
    }
    for (size_t p = 0; p < pieces(n); p++) {
        size_t plen = piece(n, p, &lo, &len), start = p * DIST_PIECE;
        dist_gather(z->m + at, m->m_memory ? m->m_memory + start : NULL, plen);
        dist_gather(z->v + at, m->v_memory ? m->v_memory + start : NULL, plen);
        at += len;
    }
}

void zero_drop_moments(Gpt *m)
{
    free(m->m_memory);
    free(m->v_memory);
    m->m_memory = m->v_memory = NULL;
}
