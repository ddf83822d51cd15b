// SPDX-License-Identifier: MIT
/*
** lora.c: LoRA adapters on cm-train's GPT-2: targets, initialisation, the adapter path of the
** forward and backward, AdamW on the adapters, and the merge into the base (see lora.h).
*/
#include "trainer/lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>

#include "util.h"            /* defines: xcalloc, xmalloc, now_sec */
#include "hash.h"            /* defines: splitmix64 */
#include "trainer/kernels.h" /* defines: kern_zalloc, adamw_update, kern_prof_*, kern_sgemm */

/* PEFT's module names (transformers' GPT-2), the weight tensors, in and out in units of C. */
static const struct {
    const char *name;
    int param, in_c, out_c;
} lora_targets[LORA_NT] = {
    { "attn.c_attn", 4, 1, 3 },
    { "attn.c_proj", 6, 1, 1 },
    { "mlp.c_fc", 10, 1, 4 },
    { "mlp.c_proj", 12, 4, 1 },
};

const char *lora_target_name(int t)
{
    return lora_targets[t].name;
}

int lora_target_param(int t)
{
    return lora_targets[t].param;
}

/*
** Whether PEFT's target name `want` (len n) matches module `name`: equal, or a suffix after a
** dot (PEFT matches "c_proj" to both attn.c_proj and mlp.c_proj).
*/
static int lora_name_matches(const char *name, const char *want, size_t n)
{
    size_t k = strlen(name);
    if (n == k) return memcmp(name, want, n) == 0;
    return n < k && name[k - n - 1] == '.' && memcmp(name + k - n, want, n) == 0;
}

int lora_parse_targets(const char *list, unsigned *mask, char *err, size_t errn)
{
    *mask = 0;
    const char *p = list;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        unsigned got = 0;
        if (n == 3 && memcmp(p, "all", 3) == 0) got = LORA_ALL;
        for (int t = 0; t < LORA_NT; t++)
            if (lora_name_matches(lora_targets[t].name, p, n)) got |= 1u << t;
        if (!got) {
            snprintf(err, errn,
                     "'%.*s' names no linear layer of GPT-2 (c_attn, attn.c_proj, mlp.c_fc, "
                     "mlp.c_proj, c_proj, c_fc or all)",
                     (int)n, p);
            return -1;
        }
        *mask |= got;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

void lora_targets_str(unsigned mask, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (int t = 0; t < LORA_NT; t++)
        if (mask >> t & 1) {
            int w = snprintf(buf + k, n - k, "%s%s", k ? "," : "", lora_targets[t].name);
            if (w < 0 || (size_t)w >= n - k) return;
            k += (size_t)w;
        }
}

size_t lora_count(const GptConfig *cfg, int rank, unsigned targets)
{
    size_t n = 0, C = (size_t)cfg->C;
    for (int t = 0; t < LORA_NT; t++)
        if (targets >> t & 1)
            n += (size_t)cfg->L * rank * C * (lora_targets[t].in_c + lora_targets[t].out_c);
    return n;
}

/*
** Point A, B (and dA, dB when grads is set) into the blocks, target by target.
*/
static void lora_point(GptLora *lo)
{
    float *p = lo->params, *g = lo->grads;
    for (int t = 0; t < LORA_NT; t++) {
        lo->A[t] = lo->B[t] = lo->dA[t] = lo->dB[t] = NULL;
        if (!(lo->targets >> t & 1)) continue;
        size_t na = (size_t)lo->L * lo->rank * lo->in[t],
               nb = (size_t)lo->L * lo->out[t] * lo->rank;
        lo->A[t] = p;
        lo->B[t] = p + na;
        p += na + nb;
        if (g) {
            lo->dA[t] = g;
            lo->dB[t] = g + na;
            g += na + nb;
        }
    }
}

GptLora *lora_new(const GptConfig *cfg, int rank, double alpha, unsigned targets)
{
    GptLora *lo = xcalloc(1, sizeof *lo);
    lo->rank = rank;
    lo->alpha = alpha;
    lo->scale = (float)(alpha / rank);
    lo->targets = targets & LORA_ALL;
    lo->L = cfg->L;
    for (int t = 0; t < LORA_NT; t++) {
        lo->in[t] = lora_targets[t].in_c * cfg->C;
        lo->out[t] = lora_targets[t].out_c * cfg->C;
    }
    lo->n = lora_count(cfg, rank, lo->targets);
    lo->params = xcalloc(lo->n, sizeof(float));
    lo->u1 = xcalloc((size_t)rank, sizeof(float));
    lora_point(lo);
    return lo;
}

void lora_init_weights(GptLora *lo, uint64_t seed)
{
    uint64_t st = seed ^ 0x10ba10ba5eed0001ull;
    for (int t = 0; t < LORA_NT; t++) {
        if (!lo->A[t]) continue;
        size_t na = (size_t)lo->L * lo->rank * lo->in[t];
        double bound = 1.0 / sqrt((double)lo->in[t]);
        for (size_t i = 0; i < na; i++) {
            double u01 = (splitmix64(&st) >> 11) * (1.0 / 9007199254740992.0);
            lo->A[t][i] = (float)((2.0 * u01 - 1.0) * bound);
        }
        memset(lo->B[t], 0, (size_t)lo->L * lo->out[t] * lo->rank * sizeof(float));
    }
}

void lora_alloc_train(GptLora *lo)
{
    if (lo->grads) return;
    lo->grads = kern_zalloc(lo->n);
    lo->m = kern_zalloc(lo->n);
    lo->v = kern_zalloc(lo->n);
    lora_point(lo);
}

void lora_free(GptLora *lo)
{
    if (!lo) return;
    free(lo->params);
    free(lo->grads);
    free(lo->m);
    free(lo->v);
    free(lo->u);
    free(lo->du);
    free(lo->u1);
    free(lo);
}

/* --------------------------------------------------------------------------------------- */
/* Forward and backward                                                                    */

/* kern_sgemm (row-major, spread over the kernel threads), timed as a parallel region under
** --profile. */
static void lora_sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, size_t M, size_t N,
                       size_t K, float alpha, const float *A, size_t lda, const float *B,
                       size_t ldb, float beta, float *Cm, size_t ldc)
{
    double t0 = kern_prof_on ? now_sec() : 0;
    kern_sgemm(ta == CblasTrans, tb == CblasTrans, (int)M, (int)N, (int)K, alpha, A, (int)lda, B,
               (int)ldb, beta, Cm, (int)ldc);
    if (kern_prof_on) kern_prof_parallel += now_sec() - t0;
}

void lora_reserve(GptLora *lo, size_t N)
{
    if (N > lo->u_cap) {
        free(lo->u);
        free(lo->du);
        lo->u = xmalloc((size_t)LORA_NT * lo->L * N * lo->rank * sizeof(float));
        lo->du = xmalloc(N * lo->rank * sizeof(float));
        lo->u_cap = N;
    }
    lo->u_N = N;
}

/* x A^T of target t, layer l, as the last forward kept it (N rows of r). */
static float *lora_u(const GptLora *lo, int t, int l)
{
    return lo->u + ((size_t)t * lo->L + l) * lo->u_N * lo->rank;
}

/*
** out += scale (x A^T) B^T, u = x A^T (N x r) kept in u.
*/
static void lora_apply(const GptLora *lo, int t, int l, float *out, const float *x, size_t N,
                       float *u)
{
    size_t R = lo->rank, in = lo->in[t], out_f = lo->out[t];
    const float *A = lo->A[t] + (size_t)l * R * in, *B = lo->B[t] + (size_t)l * out_f * R;
    lora_sgemm(CblasNoTrans, CblasTrans, N, R, in, 1.0f, x, in, A, in, 0.0f, u, R);
    lora_sgemm(CblasNoTrans, CblasTrans, N, out_f, R, lo->scale, u, R, B, R, 1.0f, out, out_f);
}

void lora_forward(GptLora *lo, int t, int l, float *out, const float *x, size_t N)
{
    if (!(lo->targets >> t & 1)) return;
    lora_apply(lo, t, l, out, x, N, lora_u(lo, t, l));
}

void lora_forward_row(const GptLora *lo, int t, int l, float *out, const float *x)
{
    if (!(lo->targets >> t & 1)) return;
    lora_apply(lo, t, l, out, x, 1, lo->u1);
}

void lora_backward(GptLora *lo, int t, int l, float *dx, const float *dout, const float *x,
                   size_t N)
{
    if (!(lo->targets >> t & 1) || !lo->grads) return;
    size_t R = lo->rank, in = lo->in[t], out_f = lo->out[t];
    const float *A = lo->A[t] + (size_t)l * R * in, *B = lo->B[t] + (size_t)l * out_f * R;
    float *dA = lo->dA[t] + (size_t)l * R * in, *dB = lo->dB[t] + (size_t)l * out_f * R;
    const float *u = lora_u(lo, t, l);
    /* dB (out, r) += scale dout^T u;  du (N, r) = scale dout B */
    lora_sgemm(CblasTrans, CblasNoTrans, out_f, R, N, lo->scale, dout, out_f, u, R, 1.0f, dB, R);
    lora_sgemm(CblasNoTrans, CblasNoTrans, N, R, out_f, lo->scale, dout, out_f, B, R, 0.0f, lo->du,
               R);
    /* dA (r, in) += du^T x;  dx (N, in) += du A */
    lora_sgemm(CblasTrans, CblasNoTrans, R, in, N, 1.0f, lo->du, R, x, in, 1.0f, dA, in);
    lora_sgemm(CblasNoTrans, CblasNoTrans, N, in, R, 1.0f, lo->du, R, A, in, 1.0f, dx, in);
}

void lora_update(GptLora *lo, float lr, float beta1, float beta2, float eps, float wd, float gscale,
                 int t)
{
    adamw_update(lo->params, lo->grads, lo->m, lo->v, lo->n, lr, beta1, beta2, eps, wd, gscale, t);
}

/* --------------------------------------------------------------------------------------- */
/* Merge                                                                                   */

void lora_merge(Gpt *m)
{
    GptLora *lo = m->lora;
    if (!lo) return;
    size_t R = lo->rank;
    for (int t = 0; t < LORA_NT; t++) {
        if (!(lo->targets >> t & 1)) continue;
        size_t in = lo->in[t], out_f = lo->out[t];
        float *W = gpt_param_tensor(m->params_memory, m, lora_targets[t].param);
        for (int l = 0; l < lo->L; l++) /* W (out, in) += scale B (out, r) A (r, in) */
            lora_sgemm(CblasNoTrans, CblasNoTrans, out_f, in, R, lo->scale,
                       lo->B[t] + (size_t)l * out_f * R, R, lo->A[t] + (size_t)l * R * in, in, 1.0f,
                       W + (size_t)l * out_f * in, in);
    }
    lora_free(lo);
    m->lora = NULL;
}

double lora_saved_bytes(const Gpt *m)
{
    return 12.0 * (double)m->nparams;
}
