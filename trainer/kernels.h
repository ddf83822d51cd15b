// SPDX-License-Identifier: MIT
/*
** kernels.h: the forward and backward kernels of cm-train's GPT-2, in pairs (llm.c's layout).
**
** Dimensions: B = batch size, T = sequence length, C = channels, OC = output channels,
** NH = heads, hd = C/NH, V = vocabulary size, N = B*T rows. All tensors fp32, row-major.
** Weights of a linear layer are (OC, C), as in GPT-2/llm.c.
**
** Gradient conventions (documented per kernel, checked by tests/unit/test_kernels.c):
**   weight and bias gradients are ACCUMULATED (+=);
**   matmul/attention/gelu input gradients are WRITTEN (=);
**   layernorm/encoder input gradients are ACCUMULATED (+=) (they feed the residual stream).
**
** Every matmul goes through cblas_sgemm. Attention computes only the causal lower triangle, in
** row blocks, with one small sgemm per block and (batch, head) pairs spread over threads.
** The *_naive kernels are plain loops kept as the reference for tests.
**
** Determinism: every reduction runs in a fixed order that does not depend on the thread count
** (per-row work, or fixed chunks summed in order), so results depend only on the input, the
** OpenBLAS kernel set and the OpenBLAS thread count.
*/
#ifndef CM_KERNELS_H
#define CM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Threads for the kernels (OpenMP); OpenBLAS is set to one thread and each matmul is cut
** into one block per kernel thread (kern_sgemm); n >= 1. */
void kernels_set_threads(int n);
int kernels_threads(void);
int kernels_blas_threads(void);

/* Profiling (cm-train --profile): while kern_prof_on is set, the wall time spent in regions
** that run on every thread (OpenMP parallel regions, including the split sgemm calls) is
** added to kern_prof_parallel, in seconds. A step's serial share is the rest of its time. */
extern int kern_prof_on;
extern double kern_prof_parallel;

/* Row-major cblas_sgemm (ta, tb: transpose A, B) with the longer of M and N cut into one block
** per kernel thread; small products run on the calling thread. Results depend on the thread
** count only through the blocks (the same blocks give the same bits). */
void kern_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *Cm, int ldc);

/* x[0..n) = 0, split over the threads. */
void kern_zero(float *x, size_t n);

/* Rows of C floats, split over the threads. Gather: out row r = in row rows[r], r < k.
** Scatter: out (n rows) row rows[r] = in row r, every other row zero; rows ascending. */
void kern_gather_rows(float *out, const float *in, const uint32_t *rows, int k, int C);
void kern_scatter_rows(float *out, size_t n, const float *in, const uint32_t *rows, int k, int C);

/* n floats, zeroed by writing them (kern_zero) so that every page is mapped now: the first
** read-modify-write of untouched calloc pages costs two page faults per page. Exits on OOM. */
float *kern_zalloc(size_t n);

/* A vectorisable expf (Cephes polynomial, ~2 ulp), clamped to the float range. */
float kern_expf(float x);

/* ---------------------------------------------------------------------------------------
** Embedding: out(N,C) = wte[inp] + wpe[t]. */
void encoder_forward(float *out, const uint32_t *inp, const float *wte, const float *wpe, int B,
                     int T, int C);
/* dwte += scatter(dout), dwpe += sum over b (sequential: deterministic). Nothing when dwte or
** dwpe is NULL (a frozen model: LoRA). */
void encoder_backward(float *dwte, float *dwpe, const float *dout, const uint32_t *inp, int B,
                      int T, int C);

/* LayerNorm over C (eps 1e-5). mean, rstd: (N). */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int C);
/* dinp += ..., dweight += ..., dbias += ... (dweight and dbias both NULL: dinp only, a frozen
** LayerNorm) */
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean, const float *rstd,
                        int N, int C);

/* out(N,OC) = inp(N,C) @ weight(OC,C)^T + bias(OC) (+ add(N,OC) if add != NULL; add may be
** out itself, inp may not). bias may be NULL. */
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    const float *add, int N, int C, int OC);
/* dinp = dout @ weight (written; skipped if NULL); dweight += dout^T @ inp (skipped if NULL:
** a frozen weight);
** dbias += column sums of dout (skipped if NULL). */
void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC);
/* The pieces of the matmuls that are not products, shared with matmul_bf16.c: out(N,OC) filled
** with bias (+ add) rows (returns 1, the beta to accumulate on, or 0 when both are NULL), and
** dbias += column sums of dout(N,OC) (fixed chunks: thread-count independent). */
float kern_matmul_prefill(float *out, const float *bias, const float *add, int N, int OC);
void kern_bias_backward(float *dbias, const float *dout, int N, int OC);
void matmul_forward_naive(float *out, const float *inp, const float *weight, const float *bias,
                          const float *add, int N, int C, int OC);
void matmul_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, int N, int C, int OC);

/* Causal multi-head attention. qkv(B,T,3C) holds q|k|v per row; out(B,T,C);
** att(B,NH,T,T) keeps the softmax probabilities (upper triangle zero) for the backward.
** Query rows go in blocks of KERN_ATT_BLOCK, each against the keys up to the block's end. */
#define KERN_ATT_BLOCK 64
void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
/* dqkv = ... (written). scratch: KERN_ATT_SCRATCH(T) floats. */
void attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                        const float *att, int B, int T, int C, int NH);
/* The same without the T x T probabilities (long contexts: less memory and traffic): the
** forward keeps nothing, the backward recomputes each row block's probabilities (one more
** sgemm and softmax per block; bit-identical to the forward's). scratch: KERN_ATT_SCRATCH(T)
** floats, for the forward and for the backward. */
void attention_forward_rc(float *out, float *scratch, const float *qkv, int B, int T, int C,
                          int NH);
void attention_backward_rc(float *dqkv, float *scratch, const float *dout, const float *qkv, int B,
                           int T, int C, int NH);
/* Scratch floats of the attention kernels: two row blocks per thread. */
#define KERN_ATT_SCRATCH(T) ((size_t)kernels_threads() * 2 * KERN_ATT_BLOCK * (size_t)(T))
void attention_forward_naive(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
void attention_backward_naive(float *dqkv, const float *dout, const float *qkv, const float *att,
                              int B, int T, int C, int NH);

/* GELU, tanh approximation (GPT-2). dinp may equal dout (in place). */
void gelu_forward(float *out, const float *inp, size_t n);
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* Softmax cross-entropy over V, one row per position. logits(N,V) are overwritten: by the
** probabilities, or (dscale != NULL) by the gradient (probs - onehot(target)) * dscale[row].
** losses(N) get -log p(target). */
void crossentropy_forward(float *logits, float *losses, const uint32_t *targets,
                          const float *dscale, int N, int V);
void crossentropy_forward_naive(float *logits, float *losses, const uint32_t *targets,
                                const float *dscale, int N, int V);

/* Sum of squares of x[0..n) in a fixed order (chunks summed in order), as double. */
double kern_sumsq(const float *x, size_t n);

/* One AdamW step over n values: m, v moments; grad scaled by gscale (clipping) first.
** t is the 1-based step; weight decay is decoupled (param -= lr * wd * param). */
void adamw_update(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                  float beta1, float beta2, float eps, float wd, float gscale, int t);

#endif
