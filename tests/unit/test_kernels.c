// SPDX-License-Identifier: MIT
/*
** test_kernels.c: cm-train's kernels. Test plan:
**   1. the BLAS kernels equal the naive reference kernels (matmul, attention, cross-entropy),
**      with a context longer than one attention block so the causal blocking is exercised;
**   2. each layer's backward equals central finite differences of its forward
**      (layernorm, matmul, attention, GELU, cross-entropy);
**   3. kern_expf against expf; AdamW against a hand computation in double;
**   4. kern_zalloc's block is mapped when it returns (every page resident) and zero;
**   5. kern_gather_rows / kern_scatter_rows round-trip, the scatter zeroing every other row.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hash.h"
#include "trainer/blasenv.h"
#include "trainer/kernels.h"

/* --------------------------------------------------------------------------------------- */
/* Helpers                                                                                 */

static uint64_t rng_state = 42;

static float frand(void) /* uniform in [-1, 1) */
{
    return (float)((splitmix64(&rng_state) >> 40) * (2.0 / 16777216.0) - 1.0);
}

static float *rand_buf(size_t n, float scale)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

static float *zeros(size_t n)
{
    return calloc(n, sizeof(float));
}

/* Largest |a-b| / (atol + rtol |b|) over n values; <= 1 means close. */
static double close_ratio(const float *a, const float *b, size_t n, double atol, double rtol)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double r = fabs((double)a[i] - b[i]) / (atol + rtol * fabs((double)b[i]));
        if (!(r <= worst)) worst = r; /* NaN propagates as failure */
    }
    return worst;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* An objective f(ctx) = sum(out * R) re-running a forward. */
typedef double (*ObjFn)(void *ctx);

/* Compare analytic gradient g of x[0..n) with central differences of f, at up to `probes`
** spread indices. */
static void check_grad(const char *what, ObjFn f, void *ctx, float *x, const float *g, size_t n,
                       int probes, float eps, double atol, double rtol)
{
    size_t step = n / probes ? n / probes : 1;
    for (size_t i = 0; i < n; i += step) {
        float old = x[i];
        x[i] = old + eps;
        double fp = f(ctx);
        x[i] = old - eps;
        double fm = f(ctx);
        x[i] = old;
        double num = (fp - fm) / (2.0 * eps);
        if (!(fabs(num - g[i]) <= atol + rtol * fabs(num))) {
            print_error("%s[%zu]: analytic %.6g, numeric %.6g\n", what, i, (double)g[i], num);
            fail();
        }
    }
}

/* --------------------------------------------------------------------------------------- */
/* Reference equality                                                                      */

/* kern_sgemm, cut into row blocks (M >= N) or column blocks, on 1-3 threads, for every
** transpose pair: C = alpha op(A) op(B) + beta C against a double-precision loop. */
static void test_sgemm_split(void **state)
{
    static const int shapes[][3] = { { 301, 77, 40 }, { 45, 290, 33 } }; /* both above the cut */
    for (int s = 0; s < 2; s++)
        for (int tr = 0; tr < 4; tr++)
            for (int nt = 1; nt <= 3; nt++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = tr & 1, tb = tr >> 1;
                int lda = ta ? M : K, ldb = tb ? K : N;
                float *A = rand_buf((size_t)M * K, 1), *B = rand_buf((size_t)K * N, 1);
                float *Cm = rand_buf((size_t)M * N, 1),
                      *ref = malloc((size_t)M * N * sizeof(float));
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double acc = 0;
                        for (int k = 0; k < K; k++)
                            acc += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                                (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                        ref[(size_t)i * N + j] = (float)(0.75 * acc + 0.5 * Cm[(size_t)i * N + j]);
                    }
                kernels_set_threads(nt);
                kern_sgemm(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 0.5f, Cm, N);
                if (close_ratio(Cm, ref, (size_t)M * N, 1e-4, 1e-4) > 1) {
                    print_error("kern_sgemm %dx%dx%d ta=%d tb=%d on %d threads\n", M, N, K, ta, tb,
                                nt);
                    fail();
                }
                free(A);
                free(B);
                free(Cm);
                free(ref);
            }
    kernels_set_threads(2);
}

static void test_matmul_matches_naive(void **state)
{
    int N = 37, C = 24, OC = 40;
    float *inp = rand_buf((size_t)N * C, 1), *w = rand_buf((size_t)OC * C, 1), *b = rand_buf(OC, 1);
    float *add = rand_buf((size_t)N * OC, 1);
    float *o1 = zeros((size_t)N * OC), *o2 = zeros((size_t)N * OC);
    matmul_forward(o1, inp, w, b, add, N, C, OC);
    matmul_forward_naive(o2, inp, w, b, add, N, C, OC);
    assert_true(close_ratio(o1, o2, (size_t)N * OC, 1e-4, 1e-4) <= 1);
    matmul_forward(o1, inp, w, NULL, NULL, N, C, OC);
    matmul_forward_naive(o2, inp, w, NULL, NULL, N, C, OC);
    assert_true(close_ratio(o1, o2, (size_t)N * OC, 1e-4, 1e-4) <= 1);

    float *dout = rand_buf((size_t)N * OC, 1);
    float *di1 = zeros((size_t)N * C), *di2 = zeros((size_t)N * C);
    float *dw1 = rand_buf((size_t)OC * C, 1), *dw2 = malloc((size_t)OC * C * sizeof(float));
    float *db1 = rand_buf(OC, 1), *db2 = malloc(OC * sizeof(float));
    memcpy(dw2, dw1, (size_t)OC * C * sizeof(float)); /* weight grads accumulate */
    memcpy(db2, db1, OC * sizeof(float));
    matmul_backward(di1, dw1, db1, dout, inp, w, N, C, OC);
    matmul_backward_naive(di2, dw2, db2, dout, inp, w, N, C, OC);
    assert_true(close_ratio(di1, di2, (size_t)N * C, 1e-4, 1e-4) <= 1);
    assert_true(close_ratio(dw1, dw2, (size_t)OC * C, 1e-4, 1e-4) <= 1);
    assert_true(close_ratio(db1, db2, OC, 1e-4, 1e-4) <= 1);
    free(inp);
    free(w);
    free(b);
    free(add);
    free(o1);
    free(o2);
    free(dout);
    free(di1);
    free(di2);
    free(dw1);
    free(dw2);
    free(db1);
    free(db2);
}

static void attention_case(int B, int T, int C, int NH)
{
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    float *qkv = rand_buf(nq, 1.5f);
    float *o1 = zeros(no), *o2 = zeros(no), *a1 = rand_buf(na, 1), *a2 = zeros(na);
    attention_forward(o1, a1, qkv, B, T, C, NH);
    attention_forward_naive(o2, a2, qkv, B, T, C, NH);
    assert_true(close_ratio(o1, o2, no, 1e-5, 1e-4) <= 1);
    assert_true(close_ratio(a1, a2, na, 1e-6, 1e-4) <= 1);
    /* the upper triangle is exactly zero */
    for (int bh = 0; bh < B * NH; bh++)
        for (int t = 0; t < T; t++)
            for (int j = t + 1; j < T; j++) assert_true(a1[((size_t)bh * T + t) * T + j] == 0.0f);

    float *dout = rand_buf(no, 1), *d1 = rand_buf(nq, 1), *d2 = zeros(nq);
    float *scratch = zeros(KERN_ATT_SCRATCH(T));
    attention_backward(d1, scratch, dout, qkv, a1, B, T, C, NH);
    attention_backward_naive(d2, dout, qkv, a2, B, T, C, NH);
    assert_true(close_ratio(d1, d2, nq, 1e-5, 1e-3) <= 1);
    /* without the T x T probabilities (recomputed): the same results bit for bit */
    float *o3 = zeros(no), *d3 = rand_buf(nq, 1);
    attention_forward_rc(o3, scratch, qkv, B, T, C, NH);
    assert_memory_equal(o3, o1, no * sizeof(float));
    attention_backward_rc(d3, scratch, dout, qkv, B, T, C, NH);
    assert_memory_equal(d3, d1, nq * sizeof(float));
    free(o3);
    free(d3);
    free(qkv);
    free(o1);
    free(o2);
    free(a1);
    free(a2);
    free(dout);
    free(d1);
    free(d2);
    free(scratch);
}

static void test_attention_matches_naive(void **state)
{
    attention_case(2, 8, 16, 2);
    attention_case(1, 150, 32, 4); /* three row blocks, the last one partial */
}

static void test_crossentropy_matches_naive(void **state)
{
    int N = 13, V = 300;
    float *l1 = rand_buf((size_t)N * V, 8), *l2 = malloc((size_t)N * V * sizeof(float));
    float *s = rand_buf(N, 1);
    uint32_t y[13];
    for (int i = 0; i < N; i++) y[i] = (uint32_t)(splitmix64(&rng_state) % V);
    float loss1[13], loss2[13];
    memcpy(l2, l1, (size_t)N * V * sizeof(float));
    crossentropy_forward(l1, loss1, y, s, N, V);
    crossentropy_forward_naive(l2, loss2, y, s, N, V);
    assert_true(close_ratio(loss1, loss2, N, 1e-5, 1e-5) <= 1);
    assert_true(close_ratio(l1, l2, (size_t)N * V, 1e-6, 1e-4) <= 1);
    free(l1);
    free(l2);
    free(s);
}

/* --------------------------------------------------------------------------------------- */
/* Gradient checks                                                                         */

typedef struct {
    int N, C, OC, B, T, NH;
    float *inp, *out, *R, *w, *b, *mean, *rstd, *att, *scratch;
    uint32_t *y;
} Ctx;

static double ln_obj(void *p)
{
    Ctx *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C);
    return dot(c->out, c->R, (size_t)c->N * c->C);
}

static void test_layernorm_grad(void **state)
{
    Ctx c = { .N = 5, .C = 12 };
    size_t n = (size_t)c.N * c.C;
    c.inp = rand_buf(n, 2);
    c.out = zeros(n);
    c.R = rand_buf(n, 1);
    c.w = rand_buf(c.C, 1);
    c.b = rand_buf(c.C, 1);
    c.mean = zeros(c.N);
    c.rstd = zeros(c.N);
    float *dinp = zeros(n), *dw = zeros(c.C), *db = zeros(c.C);
    ln_obj(&c);
    layernorm_backward(dinp, dw, db, c.R, c.inp, c.w, c.mean, c.rstd, c.N, c.C);
    check_grad("ln.dinp", ln_obj, &c, c.inp, dinp, n, 60, 1e-2f, 2e-3, 2e-2);
    check_grad("ln.dweight", ln_obj, &c, c.w, dw, c.C, 12, 1e-2f, 2e-3, 2e-2);
    check_grad("ln.dbias", ln_obj, &c, c.b, db, c.C, 12, 1e-2f, 2e-3, 2e-2);
    free(c.inp);
    free(c.out);
    free(c.R);
    free(c.w);
    free(c.b);
    free(c.mean);
    free(c.rstd);
    free(dinp);
    free(dw);
    free(db);
}

static double mm_obj(void *p)
{
    Ctx *c = p;
    matmul_forward(c->out, c->inp, c->w, c->b, NULL, c->N, c->C, c->OC);
    return dot(c->out, c->R, (size_t)c->N * c->OC);
}

static void test_matmul_grad(void **state)
{
    Ctx c = { .N = 6, .C = 10, .OC = 7 };
    c.inp = rand_buf((size_t)c.N * c.C, 1);
    c.out = zeros((size_t)c.N * c.OC);
    c.R = rand_buf((size_t)c.N * c.OC, 1);
    c.w = rand_buf((size_t)c.OC * c.C, 1);
    c.b = rand_buf(c.OC, 1);
    float *dinp = zeros((size_t)c.N * c.C), *dw = zeros((size_t)c.OC * c.C), *db = zeros(c.OC);
    matmul_backward(dinp, dw, db, c.R, c.inp, c.w, c.N, c.C, c.OC);
    check_grad("mm.dinp", mm_obj, &c, c.inp, dinp, (size_t)c.N * c.C, 60, 1e-2f, 1e-3, 1e-2);
    check_grad("mm.dweight", mm_obj, &c, c.w, dw, (size_t)c.OC * c.C, 70, 1e-2f, 1e-3, 1e-2);
    check_grad("mm.dbias", mm_obj, &c, c.b, db, c.OC, 7, 1e-2f, 1e-3, 1e-2);
    free(c.inp);
    free(c.out);
    free(c.R);
    free(c.w);
    free(c.b);
    free(dinp);
    free(dw);
    free(db);
}

static double att_obj(void *p)
{
    Ctx *c = p;
    attention_forward(c->out, c->att, c->inp, c->B, c->T, c->C, c->NH);
    return dot(c->out, c->R, (size_t)c->B * c->T * c->C);
}

static void test_attention_grad(void **state)
{
    Ctx c = { .B = 2, .T = 7, .C = 8, .NH = 2 };
    size_t nq = (size_t)c.B * c.T * 3 * c.C, no = (size_t)c.B * c.T * c.C;
    c.inp = rand_buf(nq, 1);
    c.out = zeros(no);
    c.R = rand_buf(no, 1);
    c.att = zeros((size_t)c.B * c.NH * c.T * c.T);
    c.scratch = zeros(KERN_ATT_SCRATCH(c.T));
    float *dqkv = zeros(nq);
    att_obj(&c);
    attention_backward(dqkv, c.scratch, c.R, c.inp, c.att, c.B, c.T, c.C, c.NH);
    check_grad("attention.dqkv", att_obj, &c, c.inp, dqkv, nq, 336, 1e-2f, 2e-3, 2e-2);
    free(c.inp);
    free(c.out);
    free(c.R);
    free(c.att);
    free(c.scratch);
    free(dqkv);
}

static double gelu_obj(void *p)
{
    Ctx *c = p;
    gelu_forward(c->out, c->inp, (size_t)c->N);
    return dot(c->out, c->R, (size_t)c->N);
}

static void test_gelu_grad(void **state)
{
    Ctx c = { .N = 64 };
    c.inp = rand_buf(c.N, 4);
    c.out = zeros(c.N);
    c.R = rand_buf(c.N, 1);
    float *d = zeros(c.N);
    gelu_backward(d, c.inp, c.R, c.N);
    check_grad("gelu", gelu_obj, &c, c.inp, d, c.N, 64, 1e-2f, 1e-3, 1e-2);
    /* values against the formula with libm tanh */
    gelu_forward(c.out, c.inp, c.N);
    for (int i = 0; i < c.N; i++) {
        double x = c.inp[i];
        double want = 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        assert_true(fabs(c.out[i] - want) <= 1e-6 + 1e-5 * fabs(want));
    }
    free(c.inp);
    free(c.out);
    free(c.R);
    free(d);
}

static double ce_obj(void *p)
{
    Ctx *c = p;
    float *tmp = malloc((size_t)c->N * c->C * sizeof(float)), loss[8];
    memcpy(tmp, c->inp, (size_t)c->N * c->C * sizeof(float));
    crossentropy_forward(tmp, loss, c->y, NULL, c->N, c->C);
    double s = 0;
    for (int i = 0; i < c->N; i++) s += loss[i] * c->R[i];
    free(tmp);
    return s;
}

static void test_crossentropy_grad(void **state)
{
    Ctx c = { .N = 4, .C = 20 };
    uint32_t y[4] = { 0, 7, 19, 3 };
    c.y = y;
    c.inp = rand_buf(80, 3);
    c.R = rand_buf(4, 1);
    float *g = malloc(80 * sizeof(float)), loss[4];
    memcpy(g, c.inp, 80 * sizeof(float));
    crossentropy_forward(g, loss, y, c.R, c.N, c.C); /* dscale = R: d(sum R*loss) */
    check_grad("crossentropy", ce_obj, &c, c.inp, g, 80, 80, 1e-2f, 1e-3, 1e-2);
    free(c.inp);
    free(c.R);
    free(g);
}

/* --------------------------------------------------------------------------------------- */
/* Math and optimizer                                                                      */

static void test_expf(void **state)
{
    for (float x = -80.0f; x < 80.0f; x += 0.0137f) {
        double want = exp((double)x), got = kern_expf(x);
        assert_true(fabs(got - want) <= 3e-7 * want);
    }
    assert_true(kern_expf(-1000.0f) >= 0.0f && kern_expf(-1000.0f) < 1e-37f);
    assert_true(isfinite(kern_expf(1000.0f)));
}

static void test_adamw(void **state)
{
    float p[3] = { 0.5f, -1.0f, 2.0f }, g[3] = { 0.1f, -0.2f, 0.3f }, m[3] = { 0 }, v[3] = { 0 };
    double pd[3] = { 0.5, -1.0, 2.0 }, md[3] = { 0 }, vd[3] = { 0 };
    double lr = 0.01, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1, gs = 0.5;
    for (int t = 1; t <= 3; t++) {
        adamw_update(p, g, m, v, 3, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd,
                     (float)gs, t);
        for (int i = 0; i < 3; i++) {
            double gi = g[i] * gs;
            md[i] = b1 * md[i] + (1 - b1) * gi;
            vd[i] = b2 * vd[i] + (1 - b2) * gi * gi;
            double mh = md[i] / (1 - pow(b1, t)), vh = vd[i] / (1 - pow(b2, t));
            pd[i] -= lr * (mh / (sqrt(vh) + eps) + wd * pd[i]);
        }
    }
    for (int i = 0; i < 3; i++) {
        assert_true(fabs(p[i] - pd[i]) < 1e-6);
        assert_true(fabs(m[i] - md[i]) < 1e-7);
        assert_true(fabs(v[i] - vd[i]) < 1e-8);
    }
}

static void test_sumsq(void **state)
{
    size_t n = 1001;
    float *x = rand_buf(n, 1);
    double want = 0;
    for (size_t i = 0; i < n; i++) want += (double)x[i] * x[i];
    assert_true(fabs(kern_sumsq(x, n) - want) < 1e-4);
    free(x);
}

/* 16 MiB, far above malloc's mmap threshold, where calloc would return unmapped pages (the
** first AdamW step then paid two faults per page): every page resident before any read. */
static void test_zalloc_mapped(void **state)
{
    size_t n = (size_t)4 << 20, page = (size_t)sysconf(_SC_PAGESIZE);
    float *x = kern_zalloc(n);
    uintptr_t lo = (uintptr_t)x & ~(uintptr_t)(page - 1), hi = (uintptr_t)(x + n);
    size_t np = (hi - lo + page - 1) / page, missing = 0;
    unsigned char *vec = malloc(np);
    assert_int_equal(mincore((void *)lo, hi - lo, vec), 0);
    for (size_t i = 0; i < np; i++) missing += !(vec[i] & 1);
    if (missing) print_error("kern_zalloc: %zu of %zu pages not mapped\n", missing, np);
    assert_true(missing == 0);
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++) nonzero += x[i] != 0.0f;
    assert_true(nonzero == 0);
    free(vec);
    free(x);
}

/* Rows {0, 3, 4, 8} of 10 gathered then scattered back into a block full of garbage: those
** rows equal, the six others (before, between and after them) zero; none listed: all zero. */
static void test_gather_scatter_rows(void **state)
{
    enum { n = 10, C = 5 };
    static const uint32_t rows[] = { 0, 3, 4, 8 };
    float *in = rand_buf(n * C, 1), *mid = malloc(4 * C * sizeof(float)), *out = rand_buf(n * C, 1);
    kern_gather_rows(mid, in, rows, 4, C);
    kern_scatter_rows(out, n, mid, rows, 4, C);
    for (int i = 0, r = 0; i < n; i++) {
        int kept = r < 4 && rows[r] == (uint32_t)i;
        for (int c = 0; c < C; c++) assert_true(out[i * C + c] == (kept ? in[i * C + c] : 0.0f));
        r += kept;
    }
    kern_scatter_rows(out, n, mid, rows, 0, C);
    for (int i = 0; i < n * C; i++) assert_true(out[i] == 0.0f);
    free(in);
    free(mid);
    free(out);
}

int main(int argc, char **argv)
{
    (void)argc;
    blasenv_setup(argv); /* fast OpenBLAS kernels, passive OpenMP waits */
    kernels_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_split),
        cmocka_unit_test(test_matmul_matches_naive),
        cmocka_unit_test(test_attention_matches_naive),
        cmocka_unit_test(test_crossentropy_matches_naive),
        cmocka_unit_test(test_layernorm_grad),
        cmocka_unit_test(test_matmul_grad),
        cmocka_unit_test(test_attention_grad),
        cmocka_unit_test(test_gelu_grad),
        cmocka_unit_test(test_crossentropy_grad),
        cmocka_unit_test(test_expf),
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_sumsq),
        cmocka_unit_test(test_zalloc_mapped),
        cmocka_unit_test(test_gather_scatter_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
