// SPDX-License-Identifier: MIT
/*
** matmul_bf16.h: cm-train's bf16 matrix products (--precision bf16), through oneDNN's matmul
** primitive: inputs rounded to bf16 (round to nearest even), products accumulated and written
** in fp32. Same shapes and gradient conventions as matmul_forward / matmul_backward of
** kernels.h (weights (OC, C) row-major; weight and bias gradients accumulated, dinp written),
** so the model switches path per call. Everything else stays fp32: master weights, AdamW
** state, LayerNorm, softmax, the loss, attention (OpenBLAS).
**
** oneDNN (Debian's libdnnl 2.6.3, OpenMP runtime: it runs on the kernels' OpenMP threads)
** uses avx512_bf16 / AMX instructions where the CPU has them; on an AVX-512 CPU without them
** it may run bf16 by emulation (conversions in its packing routines, fp32 arithmetic) or
** refuse. mm_bf16_probe() says which, before a run starts.
**
** Primitives are created once per shape (a small cache here) and reused; the bf16 copies of
** the operands live in buffers owned by this file that grow to the largest shape. Not
** thread-safe: call from one thread (the kernels' threads run inside each call).
*/
#ifndef CM_TRAIN_MATMUL_BF16_H
#define CM_TRAIN_MATMUL_BF16_H

#include <stddef.h>
#include <stdint.h>

/* fp32 -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN, +-Inf stays. */
static inline uint16_t bf16_from_f32(float x)
{
    union {
        float f;
        uint32_t u;
    } v = { x };
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40); /* NaN */
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}

/* bf16 bits -> fp32 (exact). */
static inline float bf16_to_f32(uint16_t h)
{
    union {
        uint32_t u;
        float f;
    } v = { (uint32_t)h << 16 };
    return v.f;
}

/* dst[i] = bf16(src[i]), over the kernels' threads. */
void bf16_convert(uint16_t *dst, const float *src, size_t n);
/* dst[i] = fp32(bf16(src[i])): the values a bf16 matmul sees (tests, references). */
void bf16_round(float *dst, const float *src, size_t n);

/* 1 if the CPU has bf16 arithmetic (AVX512_BF16 or AMX-BF16, by cpuid). */
int bf16_cpu_native(void);
/* NULL if oneDNN runs bf16 matmuls on this CPU (its implementation's name in *impl, e.g.
** "gemm:jit" or "brg:avx512_core_amx"); else why not. Creates the engine on first use. */
const char *mm_bf16_probe(const char **impl);

/* --precision: want 0 (auto: bf16 where bf16_cpu_native() and oneDNN runs it), 1 (fp32) or
** 2 (bf16: also emulated, when oneDNN runs it without bf16 instructions). Returns 1 for bf16,
** 0 for fp32, or -1 after a message when bf16 was asked for and oneDNN cannot run it. *what
** gets words for the start-up line ("fp32 (OpenBLAS)", "bf16 (oneDNN gemm:jit, emulated:
** no AVX512_BF16/AMX)"). */
int mm_bf16_resolve(int want, const char **what);

/* out(N,OC) = bf16(inp)(N,C) @ bf16(weight)(OC,C)^T + bias + add (fp32). add may be out. */
void mm_bf16_forward(float *out, const float *inp, const float *weight, const float *bias,
                     const float *add, int N, int C, int OC);
/* dinp = bf16(dout) @ bf16(weight) (written; skipped if NULL); dweight += bf16(dout)^T @
** bf16(inp); dbias += column sums of dout in fp32 (skipped if NULL). */
void mm_bf16_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                      const float *inp, const float *weight, int N, int C, int OC);
/* Release the primitives, the engine and the buffers (a later call starts again). */
void mm_bf16_free(void);

#endif
