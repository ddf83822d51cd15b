// SPDX-License-Identifier: MIT
/*
** kernels.c: forward/backward kernels of the GPT-2 model (see kernels.h for the conventions).
**
** Matmuls are OpenBLAS cblas_sgemm calls; elementwise kernels are plain loops written so that
** gcc -O3 -march=native vectorises them (no libm calls in the hot loops: kern_expf is a
** polynomial) and split over OpenMP threads by rows. Reductions over rows (bias and LayerNorm
** parameter gradients) use a fixed number of chunks summed in order: the result does not
** depend on the thread count.
*/
#include "trainer/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "util.h"            /* defines: xmalloc, now_sec */
#include "trainer/blasenv.h" /* defines: blasenv_under_valgrind */

extern void openblas_set_num_threads(int);
extern int openblas_get_num_threads(void);

static int g_threads = 1; /* kernel threads (OpenMP); OpenBLAS runs on one inside each */

int kern_prof_on;
double kern_prof_parallel;

/* Thread number inside a parallel region. */
static inline int thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Threads of the enclosing parallel region. */
static inline int omp_threads(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* Start and end of a region that runs on every thread (an OpenMP parallel region, a threaded
** sgemm): its wall time is added to kern_prof_parallel when profiling. */
static inline double par_begin(void)
{
    return kern_prof_on ? now_sec() : 0.0;
}

static inline void par_end(double t0)
{
    if (kern_prof_on) kern_prof_parallel += now_sec() - t0;
}

/* Below this many multiply-adds an sgemm runs on the calling thread alone. */
#define SGEMM_SPLIT_MIN (1L << 18)

/*
** cblas_sgemm (row-major) of C(M,N) = alpha op(A) op(B) + beta C, spread over the kernel
** threads by OpenMP: the longer of M and N is cut into one contiguous block per thread (block
** edges on multiples of 16) and each thread runs OpenBLAS single-threaded on its block. One
** pool of threads serves the matmuls and the other kernels: OpenBLAS's own workers, spinning
** after each threaded call, took the cores the OpenMP loops wanted (DESIGN.md). Every output
** element is one dot product over the whole of K in OpenBLAS's order, so the blocks give the
** result of the whole call on any thread count that cuts the same blocks.
*/
void kern_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *Cm, int ldc)
{
    enum CBLAS_TRANSPOSE tA = ta ? CblasTrans : CblasNoTrans, tB = tb ? CblasTrans : CblasNoTrans;
    int nt = g_threads;
    if (nt < 2 || (long)M * N * K < SGEMM_SPLIT_MIN || (M < 32 && N < 32)) {
        cblas_sgemm(CblasRowMajor, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, Cm, ldc);
        return;
    }
    int by_rows = M >= N, len = by_rows ? M : N;
#pragma omp parallel num_threads(nt)
    {
        int t = thread_num(), n = omp_threads();
        int u0 = (int)((int64_t)(len / 16) * t / n) * 16;
        int u1 = t == n - 1 ? len : (int)((int64_t)(len / 16) * (t + 1) / n) * 16;
        if (u1 > u0) {
            if (by_rows)
                cblas_sgemm(CblasRowMajor, tA, tB, u1 - u0, N, K, alpha,
                            ta ? A + u0 : A + (size_t)u0 * lda, lda, B, ldb, beta,
                            Cm + (size_t)u0 * ldc, ldc);
            else
                cblas_sgemm(CblasRowMajor, tA, tB, M, u1 - u0, K, alpha, A, lda,
                            tb ? B + (size_t)u0 * ldb : B + u0, ldb, beta, Cm + u0, ldc);
        }
    }
}

/* kern_sgemm at the top level, timed as parallel. */
static void sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K,
                  float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                  float *Cm, int ldc)
{
    double t0 = par_begin();
    kern_sgemm(ta == CblasTrans, tb == CblasTrans, M, N, K, alpha, A, lda, B, ldb, beta, Cm, ldc);
    par_end(t0);
}

#define NCHUNK 16 /* fixed chunk count for deterministic column reductions */

/*
** Set the number of threads used by the kernels and by OpenBLAS.
*/
void kernels_set_threads(int n)
{
    if (n < 1 || blasenv_under_valgrind()) n = 1; /* valgrind serialises threads anyway */
    g_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(1); /* kern_sgemm spreads the matmuls over the OpenMP threads */
}

/*
** Threads the kernels use.
*/
int kernels_threads(void)
{
    return g_threads;
}

/*
** Threads OpenBLAS reports it uses.
*/
int kernels_blas_threads(void)
{
    return openblas_get_num_threads();
}

/* --------------------------------------------------------------------------------------- */
/* Math helpers                                                                            */

/*
** exp(x) for float with a degree-6 polynomial after range reduction (Cephes expf); inputs are
** clamped to [-87.3, 88.3] so the result is a normal float. Branch-free: loops over it
** vectorise.
*/
static inline __attribute__((always_inline)) float expf_fast(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    float n = x * 1.44269504088896341f;
    n = (n + 12582912.0f) - 12582912.0f; /* round to nearest: 1.5 * 2^23 trick, no libm */
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } s;
    s.i = ((int32_t)n + 127) << 23;
    return p * s.f;
}

/*
** Exported expf_fast (for tests).
*/
float kern_expf(float x)
{
    return expf_fast(x);
}

/* tanh via exp: 1 - 2/(exp(2x)+1) (absolute error ~1e-7). */
static inline __attribute__((always_inline)) float kern_tanhf(float x)
{
    return 1.0f - 2.0f / (expf_fast(2.0f * x) + 1.0f);
}

/* --------------------------------------------------------------------------------------- */
/* Embedding                                                                               */

/*
** out(B,T,C) = wte[inp[b,t]] + wpe[t].
*/
void encoder_forward(float *out, const uint32_t *inp, const float *wte, const float *wpe, int B,
                     int T, int C)
{
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        float *o = out + (size_t)bt * C;
        const float *e = wte + (size_t)inp[bt] * C;
        const float *p = wpe + (size_t)(bt % T) * C;
        for (int i = 0; i < C; i++) o[i] = e[i] + p[i];
    }
    par_end(t0);
}

/*
** dwte[inp[b,t]] += dout[b,t]; dwpe[t] += dout[b,t]. Threads take slices of the C channels
** and each walks every position in order, so repeated tokens add up in the same order as a
** sequential loop whatever the thread count.
*/
void encoder_backward(float *dwte, float *dwpe, const float *dout, const uint32_t *inp, int B,
                      int T, int C)
{
    if (!dwte || !dwpe) return; /* a frozen model (LoRA): no embedding gradients */
    int nsl = (C + 15) / 16;    /* slices of 16 channels (64 bytes: no shared cache lines) */
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (int sl = 0; sl < nsl; sl++) {
        int c0 = sl * 16, c1 = c0 + 16 < C ? c0 + 16 : C;
        for (int bt = 0; bt < B * T; bt++) {
            const float *d = dout + (size_t)bt * C;
            float *e = dwte + (size_t)inp[bt] * C;
            float *p = dwpe + (size_t)(bt % T) * C;
            for (int i = c0; i < c1; i++) {
                e[i] += d[i];
                p[i] += d[i];
            }
        }
    }
    par_end(t0);
}

/* --------------------------------------------------------------------------------------- */
/* LayerNorm                                                                               */

/*
** out = (inp - mean) * rstd * weight + bias, per row of C; mean and rstd are kept.
*/
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int C)
{
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const float *x = inp + (size_t)r * C;
        float *o = out + (size_t)r * C;
        float m = 0.0f;
#pragma omp simd reduction(+ : m)
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int i = 0; i < C; i++) {
            float d = x[i] - m;
            v += d * d;
        }
        v /= C;
        float s = 1.0f / sqrtf(v + 1e-5f);
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * weight[i] + bias[i];
        mean[r] = m;
        rstd[r] = s;
    }
    par_end(t0);
}

/*
** Backward of layernorm_forward: dinp += ..., dweight += ..., dbias += ... The parameter
** gradients are summed in NCHUNK fixed row chunks, then the chunks in order.
*/
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean, const float *rstd,
                        int N, int C)
{
    float *part = xcalloc((size_t)NCHUNK * 2 * C, sizeof(float));
    double t0 = par_begin();
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int k = 0; k < NCHUNK; k++) {
            int r0 = (int)((int64_t)N * k / NCHUNK), r1 = (int)((int64_t)N * (k + 1) / NCHUNK);
            float *pw = part + (size_t)k * 2 * C, *pb = pw + C;
            for (int r = r0; r < r1; r++) {
                const float *x = inp + (size_t)r * C, *d = dout + (size_t)r * C;
                float *dx = dinp + (size_t)r * C;
                float m = mean[r], s = rstd[r];
                float dnorm_mean = 0.0f, dnorm_norm = 0.0f;
#pragma omp simd reduction(+ : dnorm_mean, dnorm_norm)
                for (int i = 0; i < C; i++) {
                    float n = (x[i] - m) * s;
                    float dn = weight[i] * d[i];
                    dnorm_mean += dn;
                    dnorm_norm += dn * n;
                    if (dweight) { /* NULL: a frozen LayerNorm (LoRA), dinp only */
                        pw[i] += n * d[i];
                        pb[i] += d[i];
                    }
                }
                dnorm_mean /= C;
                dnorm_norm /= C;
                for (int i = 0; i < C; i++) {
                    float n = (x[i] - m) * s;
                    float dn = weight[i] * d[i];
                    dx[i] += (dn - dnorm_mean - n * dnorm_norm) * s;
                }
            }
        }
/* the chunks summed in order, per column (the implicit barrier above separates them) */
#pragma omp for schedule(static)
        for (int i = 0; i < (dweight ? C : 0); i++) {
            float sw = dweight[i], sb = dbias[i];
            for (int k = 0; k < NCHUNK; k++) {
                sw += part[(size_t)k * 2 * C + i];
                sb += part[(size_t)k * 2 * C + C + i];
            }
            dweight[i] = sw;
            dbias[i] = sb;
        }
    }
    par_end(t0);
    free(part);
}

/* --------------------------------------------------------------------------------------- */
/* Matmul (linear layer)                                                                   */

/*
** Fill out(N,OC) with bias (+ add) rows, the starting value for an accumulating sgemm.
** Returns the beta to use (0 when there was nothing to add).
*/
float kern_matmul_prefill(float *out, const float *bias, const float *add, int N, int OC)
{
    if (!bias && !add) return 0.0f;
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        float *o = out + (size_t)r * OC;
        const float *a = add ? add + (size_t)r * OC : NULL;
        if (bias && a)
            for (int i = 0; i < OC; i++) o[i] = a[i] + bias[i];
        else if (bias)
            for (int i = 0; i < OC; i++) o[i] = bias[i];
        else
            for (int i = 0; i < OC; i++) o[i] = a[i];
    }
    par_end(t0);
    return 1.0f;
}

/*
** out(N,OC) = inp(N,C) @ weight(OC,C)^T + bias + add, one sgemm.
*/
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    const float *add, int N, int C, int OC)
{
    float beta = kern_matmul_prefill(out, bias, add, N, OC);
    sgemm(CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC);
}

/*
** Column sums of dout(N,OC) added to dbias, in fixed chunks.
*/
void kern_bias_backward(float *dbias, const float *dout, int N, int OC)
{
    float *part = xcalloc((size_t)NCHUNK * OC, sizeof(float));
    double t0 = par_begin();
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int k = 0; k < NCHUNK; k++) {
            int r0 = (int)((int64_t)N * k / NCHUNK), r1 = (int)((int64_t)N * (k + 1) / NCHUNK);
            float *p = part + (size_t)k * OC;
            for (int r = r0; r < r1; r++) {
                const float *d = dout + (size_t)r * OC;
                for (int i = 0; i < OC; i++) p[i] += d[i];
            }
        }
#pragma omp for schedule(static)
        for (int i = 0; i < OC; i++) {
            float s = dbias[i];
            for (int k = 0; k < NCHUNK; k++) s += part[(size_t)k * OC + i];
            dbias[i] = s;
        }
    }
    par_end(t0);
    free(part);
}

/*
** dinp = dout @ weight; dweight += dout^T @ inp; dbias += colsum(dout). Two sgemms.
*/
void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC)
{
    if (dinp) sgemm(CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C, 0.0f, dinp, C);
    if (dweight)
        sgemm(CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) kern_bias_backward(dbias, dout, N, OC);
}

/*
** Reference for matmul_forward: triple loop.
*/
void matmul_forward_naive(float *out, const float *inp, const float *weight, const float *bias,
                          const float *add, int N, int C, int OC)
{
    for (int r = 0; r < N; r++)
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            if (add) s += add[(size_t)r * OC + o];
            for (int i = 0; i < C; i++)
                s += (double)inp[(size_t)r * C + i] * weight[(size_t)o * C + i];
            out[(size_t)r * OC + o] = (float)s;
        }
}

/*
** Reference for matmul_backward: loops, same conventions.
*/
void matmul_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, int N, int C, int OC)
{
    if (dinp)
        for (int r = 0; r < N; r++)
            for (int i = 0; i < C; i++) {
                double s = 0;
                for (int o = 0; o < OC; o++)
                    s += (double)dout[(size_t)r * OC + o] * weight[(size_t)o * C + i];
                dinp[(size_t)r * C + i] = (float)s;
            }
    for (int o = 0; o < OC; o++) {
        for (int i = 0; i < (dweight ? C : 0); i++) {
            double s = 0;
            for (int r = 0; r < N; r++)
                s += (double)dout[(size_t)r * OC + o] * inp[(size_t)r * C + i];
            dweight[(size_t)o * C + i] += (float)s;
        }
        if (dbias) {
            double s = 0;
            for (int r = 0; r < N; r++) s += dout[(size_t)r * OC + o];
            dbias[o] += (float)s;
        }
    }
}

/* --------------------------------------------------------------------------------------- */
/* Attention                                                                               */

#define ATT_BLOCK KERN_ATT_BLOCK /* query rows per sgemm: keys 0..end of the block */

/*
** Softmax probabilities of query rows r0..r1-1 of one (b, h) against keys 0..r1-1: p (row
** stride T) gets row t at p + (t - r0) * T; keys after t get 0 up to column zero_to. One
** sgemm for the scores, then the masked softmax per row. The forward and the recomputing
** backward both call this, so they see the same probabilities bit for bit.
*/
static void att_probs(float *p, const float *q, const float *k, int r0, int r1, int T, int C3,
                      int hd, float scale, int zero_to)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, hd, scale,
                q + (size_t)r0 * C3, C3, k, C3, 0.0f, p, T);
    for (int t = r0; t < r1; t++) {
        float *row = p + (size_t)(t - r0) * T;
        float mx = row[0];
#pragma omp simd reduction(max : mx)
        for (int j = 1; j <= t; j++) mx = row[j] > mx ? row[j] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j <= t; j++) {
            row[j] = expf_fast(row[j] - mx);
            sum += row[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j <= t; j++) row[j] *= inv;
        memset(row + t + 1, 0, (size_t)(zero_to - t - 1) * sizeof(float));
    }
}

/*
** Causal attention for one (b, h): for each block of query rows, the probabilities against
** the keys up to the block's end (att_probs), then probabilities @ V (sgemm). With att the
** probabilities are kept there (T x T, upper triangle zero); without, they live in scratch
** (ATT_BLOCK x T) only for the block.
*/
static void attention_forward_bh(float *out, float *att, float *scratch, const float *qkv, int b,
                                 int h, int T, int C, int NH)
{
    int hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    const float *q = qkv + (size_t)b * T * C3 + h * hd;
    const float *k = q + C, *v = q + 2 * C;
    float *o = out + (size_t)b * T * C + h * hd;
    float *a = att ? att + ((size_t)b * NH + h) * T * T : NULL;
    for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
        int r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T;
        float *p = a ? a + (size_t)r0 * T : scratch;
        att_probs(p, q, k, r0, r1, T, C3, hd, scale, a ? T : r1);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, hd, r1, 1.0f, p, T, v, C3,
                    0.0f, o + (size_t)r0 * C, C);
    }
}


/*
** Causal multi-head attention over all (b, h), spread over threads; OpenBLAS runs
** single-threaded inside (the parallelism is across heads).
*/
void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH)
{
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++)
        attention_forward_bh(out, att, NULL, qkv, bh / NH, bh % NH, T, C, NH);
    par_end(t0);
}

/*
** The same without keeping the probabilities: scratch holds ATT_BLOCK x T per thread.
*/
void attention_forward_rc(float *out, float *scratch, const float *qkv, int B, int T, int C, int NH)
{
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++)
        attention_forward_bh(out, NULL, scratch + (size_t)thread_num() * ATT_BLOCK * T, qkv,
                             bh / NH, bh % NH, T, C, NH);
    par_end(t0);
}

/*
** Backward of attention for one (b, h). Per row block: the probabilities P (from att, or
** recomputed into the second half of scratch when att is NULL), dP = dO V^T (into scratch),
** dV += P^T dO, dS = P * (dP - rowsum(P*dP)) * scale, dQ = dS K, dK += dS^T Q.
*/
static void attention_backward_bh(float *dqkv, float *scratch, const float *dout, const float *qkv,
                                  const float *att, int b, int h, int T, int C, int NH)
{
    int hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    size_t base = (size_t)b * T * C3 + h * hd;
    const float *q = qkv + base, *k = q + C, *v = q + 2 * C;
    float *dq = dqkv + base, *dk = dq + C, *dv = dq + 2 * C;
    const float *dout_bh = dout + (size_t)b * T * C + h * hd;
    const float *a = att ? att + ((size_t)b * NH + h) * T * T : NULL;
    float *db = scratch, *pb = scratch + (size_t)ATT_BLOCK * T;
    for (int t = 0; t < T; t++) {
        memset(dk + (size_t)t * C3, 0, hd * sizeof(float));
        memset(dv + (size_t)t * C3, 0, hd * sizeof(float));
    }
    for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
        int r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T, nk = r1, nr = r1 - r0;
        const float *ab = a ? a + (size_t)r0 * T : pb;
        if (!a) att_probs(pb, q, k, r0, r1, T, C3, hd, scale, r1);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, nk, hd, 1.0f,
                    dout_bh + (size_t)r0 * C, C, v, C3, 0.0f, db, T);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, nr, 1.0f, ab, T,
                    dout_bh + (size_t)r0 * C, C, 1.0f, dv, C3);
        for (int t = r0; t < r1; t++) {
            const float *p = ab + (size_t)(t - r0) * T;
            float *d = db + (size_t)(t - r0) * T;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int j = 0; j <= t; j++) s += p[j] * d[j];
            for (int j = 0; j <= t; j++) d[j] = p[j] * (d[j] - s) * scale;
            for (int j = t + 1; j < nk; j++) d[j] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, nk, 1.0f, db, T, k, C3, 0.0f,
                    dq + (size_t)r0 * C3, C3);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, nr, 1.0f, db, T,
                    q + (size_t)r0 * C3, C3, 1.0f, dk, C3);
    }
}

/*
** Backward of attention_forward over all (b, h). dqkv is written.
*/
void attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                        const float *att, int B, int T, int C, int NH)
{
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++)
        attention_backward_bh(dqkv, scratch + (size_t)thread_num() * 2 * ATT_BLOCK * T, dout, qkv,
                              att, bh / NH, bh % NH, T, C, NH);
    par_end(t0);
}

/*
** Backward of attention_forward_rc: the probabilities recomputed per row block.
*/
void attention_backward_rc(float *dqkv, float *scratch, const float *dout, const float *qkv, int B,
                           int T, int C, int NH)
{
    attention_backward(dqkv, scratch, dout, qkv, NULL, B, T, C, NH);
}

/*
** Reference for attention_forward: loops over every (b, t, h), llm.c's formulation.
*/
void attention_forward_naive(float *out, float *att, const float *qkv, int B, int T, int C, int NH)
{
    int hd = C / NH, C3 = 3 * C;
    double scale = 1.0 / sqrt((double)hd);
    double *sc = xmalloc((size_t)T * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *q = qkv + ((size_t)b * T + t) * C3 + h * hd;
                float *row = att + (((size_t)b * NH + h) * T + t) * T;
                double mx = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    const float *k = qkv + ((size_t)b * T + j) * C3 + C + h * hd;
                    double s = 0;
                    for (int i = 0; i < hd; i++) s += (double)q[i] * k[i];
                    sc[j] = s * scale;
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int j = 0; j <= t; j++) {
                    sc[j] = exp(sc[j] - mx);
                    sum += sc[j];
                }
                for (int j = 0; j < T; j++) row[j] = j <= t ? (float)(sc[j] / sum) : 0.0f;
                float *o = out + ((size_t)b * T + t) * C + h * hd;
                for (int i = 0; i < hd; i++) {
                    double s = 0;
                    for (int j = 0; j <= t; j++)
                        s += (double)row[j] * qkv[((size_t)b * T + j) * C3 + 2 * C + h * hd + i];
                    o[i] = (float)s;
                }
            }
    free(sc);
}

/*
** Reference for attention_backward: loops, dqkv written.
*/
void attention_backward_naive(float *dqkv, const float *dout, const float *qkv, const float *att,
                              int B, int T, int C, int NH)
{
    int hd = C / NH, C3 = 3 * C;
    double scale = 1.0 / sqrt((double)hd);
    double *dp = xmalloc((size_t)T * sizeof(double));
    memset(dqkv, 0, (size_t)B * T * C3 * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *p = att + (((size_t)b * NH + h) * T + t) * T;
                const float *d = dout + ((size_t)b * T + t) * C + h * hd;
                double s = 0;
                for (int j = 0; j <= t; j++) {
                    const float *v = qkv + ((size_t)b * T + j) * C3 + 2 * C + h * hd;
                    float *dv = dqkv + ((size_t)b * T + j) * C3 + 2 * C + h * hd;
                    double x = 0;
                    for (int i = 0; i < hd; i++) {
                        x += (double)d[i] * v[i];
                        dv[i] += p[j] * d[i];
                    }
                    dp[j] = x;
                    s += p[j] * x;
                }
                const float *q = qkv + ((size_t)b * T + t) * C3 + h * hd;
                float *dq = dqkv + ((size_t)b * T + t) * C3 + h * hd;
                for (int j = 0; j <= t; j++) {
                    double ds = p[j] * (dp[j] - s) * scale;
                    const float *k = qkv + ((size_t)b * T + j) * C3 + C + h * hd;
                    float *dk = dqkv + ((size_t)b * T + j) * C3 + C + h * hd;
                    for (int i = 0; i < hd; i++) {
                        dq[i] += (float)(ds * k[i]);
                        dk[i] += (float)(ds * q[i]);
                    }
                }
            }
    free(dp);
}

/* --------------------------------------------------------------------------------------- */
/* GELU                                                                                    */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

/*
** out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
*/
void gelu_forward(float *out, const float *inp, size_t n)
{
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        out[i] = 0.5f * x * (1.0f + kern_tanhf(u));
    }
    par_end(t0);
}

/*
** dinp = gelu'(inp) * dout (written; dinp may be dout).
*/
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        float th = kern_tanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) +
            0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = g * dout[i];
    }
    par_end(t0);
}

/* --------------------------------------------------------------------------------------- */
/* Cross-entropy                                                                           */

/*
** Softmax + cross-entropy per row; logits overwritten by probabilities or by the gradient.
*/
void crossentropy_forward(float *logits, float *losses, const uint32_t *targets,
                          const float *dscale, int N, int V)
{
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        float *x = logits + (size_t)r * V;
        float mx = x[0];
#pragma omp simd reduction(max : mx)
        for (int i = 1; i < V; i++) mx = x[i] > mx ? x[i] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int i = 0; i < V; i++) {
            x[i] = expf_fast(x[i] - mx);
            sum += x[i];
        }
        float inv = 1.0f / sum;
        uint32_t y = targets[r];
        losses[r] = -logf(x[y] * inv);
        if (dscale) {
            float s = inv * dscale[r];
            for (int i = 0; i < V; i++) x[i] *= s;
            x[y] -= dscale[r];
        } else {
            for (int i = 0; i < V; i++) x[i] *= inv;
        }
    }
    par_end(t0);
}

/*
** Reference for crossentropy_forward, in double with libm.
*/
void crossentropy_forward_naive(float *logits, float *losses, const uint32_t *targets,
                                const float *dscale, int N, int V)
{
    for (int r = 0; r < N; r++) {
        float *x = logits + (size_t)r * V;
        double mx = x[0], sum = 0;
        for (int i = 1; i < V; i++)
            if (x[i] > mx) mx = x[i];
        for (int i = 0; i < V; i++) sum += exp(x[i] - mx);
        uint32_t y = targets[r];
        losses[r] = (float)-(x[y] - mx - log(sum));
        for (int i = 0; i < V; i++) {
            double p = exp(x[i] - mx) / sum;
            x[i] = dscale ? (float)((p - (i == (int)y)) * dscale[r]) : (float)p;
        }
    }
}

/* --------------------------------------------------------------------------------------- */
/* Optimizer                                                                               */

/*
** Sum of squares in double, NCHUNK fixed chunks summed in order.
*/
double kern_sumsq(const float *x, size_t n)
{
    double part[NCHUNK];
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (int k = 0; k < NCHUNK; k++) {
        size_t i0 = n * k / NCHUNK, i1 = n * (k + 1) / NCHUNK;
        float acc[16] = { 0 };
        size_t i = i0;
        for (; i + 16 <= i1; i += 16)
            for (int j = 0; j < 16; j++) acc[j] += x[i + j] * x[i + j];
        double s = 0;
        for (; i < i1; i++) s += (double)x[i] * x[i];
        for (int j = 0; j < 16; j++) s += acc[j];
        part[k] = s;
    }
    par_end(t0);
    double s = 0;
    for (int k = 0; k < NCHUNK; k++) s += part[k];
    return s;
}

/*
** AdamW (Loshchilov & Hutter): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
** p -= lr (mhat / (sqrt(vhat) + eps) + wd p), with g = grad * gscale.
*/
void adamw_update(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                  float beta1, float beta2, float eps, float wd, float gscale, int t)
{
    float c1 = 1.0f / (1.0f - powf(beta1, (float)t));
    float c2 = 1.0f / (1.0f - powf(beta2, (float)t));
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = grad[i] * gscale;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] -= lr * (mi * c1 / (sqrtf(vi * c2) + eps) + wd * param[i]);
    }
    par_end(t0);
}

/*
** x[0..n) = 0, split over the threads.
*/
void kern_zero(float *x, size_t n)
{
    size_t nb = (n + 4095) / 4096; /* 16 KiB blocks */
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nb; k++) {
        size_t i0 = k * 4096, i1 = i0 + 4096 < n ? i0 + 4096 : n;
        memset(x + i0, 0, (i1 - i0) * sizeof(float));
    }
    par_end(t0);
}

/*
** out row r = in row rows[r], r < k (rows of C floats).
*/
void kern_gather_rows(float *out, const float *in, const uint32_t *rows, int k, int C)
{
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (int r = 0; r < k; r++)
        memcpy(out + (size_t)r * C, in + (size_t)rows[r] * C, (size_t)C * sizeof(float));
    par_end(t0);
}

/*
** out (n rows of C floats) row rows[r] = in row r for r < k, and zero rows between them: each
** r writes the gap before its row (r == k: the gap after the last), so every row of out is
** written once. rows ascending.
*/
void kern_scatter_rows(float *out, size_t n, const float *in, const uint32_t *rows, int k, int C)
{
    double t0 = par_begin();
#pragma omp parallel for schedule(static)
    for (int r = 0; r <= k; r++) {
        size_t from = r ? rows[r - 1] + (size_t)1 : 0, to = r < k ? rows[r] : n;
        memset(out + from * C, 0, (to - from) * C * sizeof(float));
        if (r < k) memcpy(out + to * C, in + (size_t)r * C, (size_t)C * sizeof(float));
    }
    par_end(t0);
}

/*
** n zeroed floats, written now: calloc leaves a large block unmapped, and a loop that first
** reads a page and then writes it (AdamW's moments) takes a fault for the shared zero page and
** another to copy it, which flushes the page from every thread's TLB: config M's first AdamW
** step took 558 ms instead of 21; writing its 136 MB of moments here takes 40-65 ms.
*/
float *kern_zalloc(size_t n)
{
    float *x = xmalloc((n ? n : 1) * sizeof(float));
    kern_zero(x, n);
    return x;
}
