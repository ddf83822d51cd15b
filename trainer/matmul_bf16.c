// SPDX-License-Identifier: MIT
/*
** matmul_bf16.c: bf16 matrix products through oneDNN's matmul primitive (see matmul_bf16.h).
**
** Each product is one 2-D oneDNN matmul: src (M,K) bf16, weights (K,N) bf16, dst (M,N) fp32,
** with a "sum" post-op when the destination accumulates (dst += product; the bias and the
** residual are written into dst first, in fp32, as the OpenBLAS path does with beta = 1).
** Transposed operands are strided views (oneDNN takes any strides), so no copy is made
** besides the conversion to bf16.
*/
#include "trainer/matmul_bf16.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cpuid.h>
#include <oneapi/dnnl/dnnl.h>

#include "util.h"            /* defines: xmalloc, die, now_sec */
#include "trainer/kernels.h" /* defines: kern_matmul_prefill, kern_bias_backward, kern_prof_* */

/* --------------------------------------------------------------------------------------- */
/* Conversion                                                                              */

/*
** dst[i] = bf16(src[i]), in 16 KiB blocks over the OpenMP threads.
*/
void bf16_convert(uint16_t *dst, const float *src, size_t n)
{
    size_t nb = (n + 4095) / 4096;
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nb; k++) {
        size_t i1 = (k + 1) * 4096 < n ? (k + 1) * 4096 : n;
        for (size_t i = k * 4096; i < i1; i++) dst[i] = bf16_from_f32(src[i]);
    }
}

/*
** dst[i] = fp32(bf16(src[i])).
*/
void bf16_round(float *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(bf16_from_f32(src[i]));
}

/*
** AVX512_BF16 (cpuid leaf 7 subleaf 1, EAX bit 5) or AMX-BF16 (leaf 7 subleaf 0, EDX bit 22).
*/
int bf16_cpu_native(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    int amx = (d >> 22) & 1;
    unsigned max7 = a;
    int avx512bf16 = 0;
    if (max7 >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        avx512bf16 = (a >> 5) & 1;
    }
    return avx512bf16 || amx;
}

/* --------------------------------------------------------------------------------------- */
/* oneDNN state                                                                            */

/* One cached primitive: a product shape and layout, its memory objects. */
typedef struct {
    int64_t M, K, N;            /* src (M,K) x weights (K,N) -> dst (M,N) */
    int64_t sa0, sa1, sb0, sb1; /* strides of src and weights (dst is dense) */
    int acc;                    /* dst += product (sum post-op) */
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst;
} MmEntry;

#define MM_CACHE 64

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static MmEntry g_cache[MM_CACHE];
static int g_ncache;
static char g_impl[128];   /* implementation of the first primitive created */
static uint16_t *g_buf[3]; /* bf16 operands */
static size_t g_cap[3];    /* their capacity in elements */

/*
** The engine and stream, created once. 0, or -1 when oneDNN has no CPU engine.
*/
static int mm_engine(void)
{
    if (g_engine) return 0;
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) {
        g_engine = NULL;
        return -1;
    }
    if (dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(g_engine);
        g_engine = NULL;
        return -1;
    }
    return 0;
}

/*
** Create the primitive for entry e (shape and strides filled in). Returns dnnl_success or
** oneDNN's status (dnnl_unimplemented: no implementation for bf16 on this CPU).
*/
static dnnl_status_t mm_create(MmEntry *e)
{
    dnnl_memory_desc_t sd, wd, dd;
    dnnl_dims_t sdims = { e->M, e->K }, sstr = { e->sa0, e->sa1 };
    dnnl_dims_t wdims = { e->K, e->N }, wstr = { e->sb0, e->sb1 };
    dnnl_dims_t ddims = { e->M, e->N }, dstr = { e->N, 1 };
    dnnl_status_t st;
    if ((st = dnnl_memory_desc_init_by_strides(&sd, 2, sdims, dnnl_bf16, sstr)) ||
        (st = dnnl_memory_desc_init_by_strides(&wd, 2, wdims, dnnl_bf16, wstr)) ||
        (st = dnnl_memory_desc_init_by_strides(&dd, 2, ddims, dnnl_f32, dstr)))
        return st;
    dnnl_matmul_desc_t desc;
    if ((st = dnnl_matmul_desc_init(&desc, &sd, &wd, NULL, &dd))) return st;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if ((st = dnnl_primitive_attr_create(&attr))) return st;
    if (e->acc) {
        if ((st = dnnl_post_ops_create(&po)) || (st = dnnl_post_ops_append_sum(po, 1.0f)) ||
            (st = dnnl_primitive_attr_set_post_ops(attr, po))) {
            if (po) dnnl_post_ops_destroy(po);
            dnnl_primitive_attr_destroy(attr);
            return st;
        }
    }
    dnnl_primitive_desc_t pd = NULL;
    st = dnnl_primitive_desc_create(&pd, &desc, attr, g_engine, NULL);
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    if (st) return st;
    if (!g_impl[0]) {
        const char *impl = NULL;
        if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
            impl)
            snprintf(g_impl, sizeof g_impl, "%s", impl);
    }
    st = dnnl_primitive_create(&e->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st) return st;
    if ((st = dnnl_memory_create(&e->src, &sd, g_engine, DNNL_MEMORY_NONE)) ||
        (st = dnnl_memory_create(&e->wei, &wd, g_engine, DNNL_MEMORY_NONE)) ||
        (st = dnnl_memory_create(&e->dst, &dd, g_engine, DNNL_MEMORY_NONE)))
        return st;
    return dnnl_success;
}

/*
** dst(M,N) (+)= src(M,K) @ wei(K,N) through the cached primitive of this shape.
*/
static void mm_run(int64_t M, int64_t K, int64_t N, const uint16_t *src, int64_t sa0, int64_t sa1,
                   const uint16_t *wei, int64_t sb0, int64_t sb1, float *dst, int acc)
{
    MmEntry *e = NULL;
    for (int i = 0; i < g_ncache && !e; i++) {
        MmEntry *c = &g_cache[i];
        if (c->M == M && c->K == K && c->N == N && c->sa0 == sa0 && c->sa1 == sa1 &&
            c->sb0 == sb0 && c->sb1 == sb1 && c->acc == acc)
            e = c;
    }
    if (!e) {
        if (mm_engine() != 0) die(CM_EINTERNAL, "oneDNN: no CPU engine");
        if (g_ncache == MM_CACHE) { /* full (shapes keep changing): start again */
            for (int i = 0; i < g_ncache; i++) {
                MmEntry *c = &g_cache[i];
                dnnl_primitive_destroy(c->prim);
                dnnl_memory_destroy(c->src);
                dnnl_memory_destroy(c->wei);
                dnnl_memory_destroy(c->dst);
            }
            g_ncache = 0;
        }
        e = &g_cache[g_ncache];
        memset(e, 0, sizeof *e);
        *e = (MmEntry){ M, K, N, sa0, sa1, sb0, sb1, acc, NULL, NULL, NULL, NULL };
        dnnl_status_t st = mm_create(e);
        if (st != dnnl_success)
            die(CM_EINTERNAL, "oneDNN: cannot create a bf16 matmul %lldx%lldx%lld (status %d)",
                (long long)M, (long long)K, (long long)N, (int)st);
        g_ncache++;
    }
    dnnl_memory_set_data_handle(e->src, (void *)src);
    dnnl_memory_set_data_handle(e->wei, (void *)wei);
    dnnl_memory_set_data_handle(e->dst, dst);
    dnnl_exec_arg_t args[3] = { { DNNL_ARG_SRC, e->src },
                                { DNNL_ARG_WEIGHTS, e->wei },
                                { DNNL_ARG_DST, e->dst } };
    dnnl_status_t st = dnnl_primitive_execute(e->prim, g_stream, 3, args);
    if (st == dnnl_success) st = dnnl_stream_wait(g_stream);
    if (st != dnnl_success) die(CM_EINTERNAL, "oneDNN: matmul failed (status %d)", (int)st);
}

/*
** Buffer i, grown to n bf16 values, filled with bf16(src[0..n)).
*/
static uint16_t *mm_operand(int i, const float *src, size_t n)
{
    if (g_cap[i] < n) {
        free(g_buf[i]);
        g_buf[i] = xmalloc(n * sizeof(uint16_t));
        g_cap[i] = n;
    }
    bf16_convert(g_buf[i], src, n);
    return g_buf[i];
}

/*
** See matmul_bf16.h.
*/
const char *mm_bf16_probe(const char **impl)
{
    static char why[256];
    if (mm_engine() != 0) return "oneDNN has no CPU engine";
    /* a product of the shapes the model runs: transposed weights, accumulation */
    MmEntry e = { 64, 64, 64, 64, 1, 1, 64, 1, NULL, NULL, NULL, NULL };
    dnnl_status_t st = mm_create(&e);
    if (e.prim) dnnl_primitive_destroy(e.prim);
    if (e.src) dnnl_memory_destroy(e.src);
    if (e.wei) dnnl_memory_destroy(e.wei);
    if (e.dst) dnnl_memory_destroy(e.dst);
    if (st != dnnl_success) {
        snprintf(why, sizeof why, "oneDNN %s bf16 matmuls on this CPU (status %d)",
                 st == dnnl_unimplemented ? "has no implementation of" : "cannot create", (int)st);
        return why;
    }
    if (impl) *impl = g_impl[0] ? g_impl : "unknown";
    return NULL;
}

/*
** See matmul_bf16.h.
*/
int mm_bf16_resolve(int want, const char **what)
{
    static char desc[256];
    const char *impl = NULL, *why = NULL;
    int native = bf16_cpu_native();
    *what = "fp32 (OpenBLAS)";
    if (want == 1 || (want == 0 && !native)) return 0;
    if ((why = mm_bf16_probe(&impl)) != NULL) {
        if (want == 0) return 0;
        return error("--precision bf16: %s; use --precision fp32 (or auto)", why);
    }
    snprintf(desc, sizeof desc, "bf16 (oneDNN %s%s)", impl,
             native ? "" : ", emulated: this CPU has no AVX512_BF16/AMX, fp32 is faster");
    *what = desc;
    return 1;
}

/*
** See matmul_bf16.h.
*/
void mm_bf16_forward(float *out, const float *inp, const float *weight, const float *bias,
                     const float *add, int N, int C, int OC)
{
    float beta = kern_matmul_prefill(out, bias, add, N, OC);
    double t0 = kern_prof_on ? now_sec() : 0;
    uint16_t *x = mm_operand(0, inp, (size_t)N * C);
    uint16_t *w = mm_operand(1, weight, (size_t)OC * C);
    /* weights (K=C, N=OC): element (k, n) = weight[n][k] */
    mm_run(N, C, OC, x, C, 1, w, 1, C, out, beta != 0.0f);
    if (kern_prof_on) kern_prof_parallel += now_sec() - t0;
}

/*
** See matmul_bf16.h.
*/
void mm_bf16_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                      const float *inp, const float *weight, int N, int C, int OC)
{
    double t0 = kern_prof_on ? now_sec() : 0;
    uint16_t *d = mm_operand(0, dout, (size_t)N * OC);
    if (dinp) {
        uint16_t *w = mm_operand(1, weight, (size_t)OC * C);
        mm_run(N, OC, C, d, OC, 1, w, C, 1, dinp, 0); /* dout @ weight */
    }
    if (dweight) { /* NULL: a frozen weight (LoRA), no gradient */
        uint16_t *x = mm_operand(2, inp, (size_t)N * C);
        mm_run(OC, N, C, d, 1, OC, x, C, 1, dweight, 1); /* dout^T @ inp */
    }
    if (kern_prof_on) kern_prof_parallel += now_sec() - t0;
    if (dbias) kern_bias_backward(dbias, dout, N, OC);
}

/*
** See matmul_bf16.h.
*/
void mm_bf16_free(void)
{
    for (int i = 0; i < g_ncache; i++) {
        MmEntry *c = &g_cache[i];
        dnnl_primitive_destroy(c->prim);
        dnnl_memory_destroy(c->src);
        dnnl_memory_destroy(c->wei);
        dnnl_memory_destroy(c->dst);
    }
    g_ncache = 0;
    for (int i = 0; i < 3; i++) {
        free(g_buf[i]);
        g_buf[i] = NULL;
        g_cap[i] = 0;
    }
    if (g_stream) dnnl_stream_destroy(g_stream);
    if (g_engine) dnnl_engine_destroy(g_engine);
    g_stream = NULL;
    g_engine = NULL;
    g_impl[0] = 0;
}
