// SPDX-License-Identifier: MIT
/*
** zero.c: ZeRO-1, the AdamW moments sharded across the ranks (see zero.h).
*/
#include "trainer/zero.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"            /* defines: xmalloc */
#include "trainer/dist.h"    /* defines: dist_* */
#include "trainer/kernels.h" /* defines: adamw_update, kern_sumsq */

void zero_setup(Zero *z, Gpt *m)
{
    size_t n = m->nparams;
    dist_shard(n, &z->lo, &z->len);
    size_t len = z->len ? z->len : 1;
    z->g = xcalloc(len, sizeof(float));
    z->m = xcalloc(len, sizeof(float));
    z->v = xcalloc(len, sizeof(float));
    dist_scatter(m->m_memory, z->m, n);
    dist_scatter(m->v_memory, z->v, n);
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
    dist_reduce_scatter(m->grads_memory, z->g, m->nparams);
    return sqrt(dist_sum_double(kern_sumsq(z->g, z->len)));
}

void zero_update(Zero *z, Gpt *m, float lr, float beta1, float beta2, float eps, float wd,
                 float gscale, int t)
{
    size_t off = 0, hi = z->lo + z->len;
    for (int i = 0; i < GPT_NUM_PARAMS; i++) {
        size_t a = off > z->lo ? off : z->lo, end = off + m->param_sizes[i];
        size_t b = end < hi ? end : hi;
        if (a < b)
            adamw_update(m->params_memory + a, z->g + (a - z->lo), z->m + (a - z->lo),
                         z->v + (a - z->lo), b - a, lr, beta1, beta2, eps,
                         gpt_param_decay(i) ? wd : 0.0f, gscale, t);
        off = end;
    }
    dist_allgather(m->params_memory, m->nparams);
}

void zero_gather_moments(const Zero *z, Gpt *m)
{
    if (dist_rank() == 0) {
        m->m_memory = xmalloc(m->nparams * sizeof(float));
        m->v_memory = xmalloc(m->nparams * sizeof(float));
    }
    dist_gather(z->m, m->m_memory, m->nparams);
    dist_gather(z->v, m->v_memory, m->nparams);
}

void zero_drop_moments(Gpt *m)
{
    free(m->m_memory);
    free(m->v_memory);
    m->m_memory = m->v_memory = NULL;
}
