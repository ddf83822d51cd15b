// SPDX-License-Identifier: MIT
/*
** test_bf16.c: cm-train's bf16 path (--precision bf16, trainer/matmul_bf16.h). Test plan:
**   1. fp32 -> bf16 conversion: round to nearest even on exact halfway cases, signed zero,
**      Inf, NaN, overflow to Inf, subnormals; the threaded array conversion equals the scalar
**      one across block boundaries (runs on every CPU: no oneDNN needed);
**   2. the oneDNN bf16 matmul forward and backward equal the naive kernels run on the
**      bf16-rounded inputs (tight: only the fp32 accumulation differs), and the naive kernels
**      on the fp32 inputs within bf16 tolerances; accumulation into dweight/dbias; odd shapes;
**   3. the whole model in bf16: loss and every parameter gradient close to fp32's (relative
**      L2 error), and two runs bitwise identical.
** Parts 2 and 3 need oneDNN to run bf16 matmuls on this CPU (natively or emulated); where it
** cannot they are skipped, saying why.
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

#include "hash.h"
#include "trainer/blasenv.h"
#include "trainer/kernels.h"
#include "trainer/matmul_bf16.h"
#include "trainer/model.h"

static uint64_t rng_state = 7;

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

static float *copy_buf(const float *x, size_t n)
{
    float *p = malloc(n * sizeof(float));
    memcpy(p, x, n * sizeof(float));
    return p;
}

/* Largest |a-b| / (atol + rtol |b|) over n values; <= 1 means close. */
static double close_ratio(const float *a, const float *b, size_t n, double atol, double rtol)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double r = fabs((double)a[i] - b[i]) / (atol + rtol * fabs((double)b[i]));
        if (!(r <= worst)) worst = r;
    }
    return worst;
}

/* ||a - b|| / ||b|| */
static double rel_l2(const float *a, const float *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)b[i] * b[i];
    }
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

static float from_bits(uint32_t u)
{
    union {
        uint32_t u;
        float f;
    } v = { u };
    return v.f;
}

/* Skip the test when oneDNN cannot run bf16 matmuls here. */
#define NEED_ONEDNN_BF16() \
    do { \
        const char *why_ = mm_bf16_probe(NULL); \
        if (why_) { \
            fprintf(stderr, "# skip: %s\n", why_); \
            skip(); \
        } \
    } while (0)

/* --------------------------------------------------------------------------------------- */
/* Conversion                                                                              */

static void test_convert_scalar(void **state)
{
    assert_int_equal(bf16_from_f32(1.0f), 0x3f80);
    assert_int_equal(bf16_from_f32(-2.0f), 0xc000);
    assert_int_equal(bf16_from_f32(0.0f), 0x0000);
    assert_int_equal(bf16_from_f32(-0.0f), 0x8000);
    /* halfway cases go to the even neighbour */
    assert_int_equal(bf16_from_f32(from_bits(0x3f808000)), 0x3f80); /* 1 + 2^-8 -> 1 */
    assert_int_equal(bf16_from_f32(from_bits(0x3f818000)), 0x3f82); /* odd -> up */
    /* just above and below halfway */
    assert_int_equal(bf16_from_f32(from_bits(0x3f808001)), 0x3f81);
    assert_int_equal(bf16_from_f32(from_bits(0x3f817fff)), 0x3f81);
    /* rounding carries into the exponent */
    assert_int_equal(bf16_from_f32(from_bits(0x3fffffff)), 0x4000);
    /* infinities, overflow, NaN */
    assert_int_equal(bf16_from_f32(INFINITY), 0x7f80);
    assert_int_equal(bf16_from_f32(-INFINITY), 0xff80);
    assert_int_equal(bf16_from_f32(from_bits(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds up */
    uint16_t n1 = bf16_from_f32(NAN), n2 = bf16_from_f32(from_bits(0x7f800001));
    assert_true((n1 & 0x7f80) == 0x7f80 && (n1 & 0x7f) != 0);
    assert_true((n2 & 0x7f80) == 0x7f80 && (n2 & 0x7f) != 0); /* a NaN never becomes Inf */
    assert_true(isnan(bf16_to_f32(n2)));
    /* subnormals keep their top bits */
    assert_int_equal(bf16_from_f32(from_bits(0x00010000)), 0x0001);
    /* values a bf16 holds exactly come back unchanged */
    for (uint32_t h = 0; h < 0x10000; h += 7) {
        if ((h & 0x7f80) == 0x7f80) continue; /* Inf/NaN */
        assert_int_equal(bf16_from_f32(bf16_to_f32((uint16_t)h)), h);
    }
    /* relative error at most 2^-8 (half an ulp of 8 significant bits) for normal values */
    for (int i = 0; i < 10000; i++) {
        float x = frand() * 1000.0f;
        if (x == 0) continue;
        float y = bf16_to_f32(bf16_from_f32(x));
        assert_true(fabs((double)y - x) <= fabs((double)x) * (1.0 / 256.0));
    }
}

static void test_convert_array(void **state)
{
    size_t n = 3 * 4096 + 123; /* several blocks and a tail */
    float *x = rand_buf(n, 50.0f), *r = malloc(n * sizeof(float));
    uint16_t *h = malloc(n * sizeof(uint16_t));
    x[5] = NAN;
    x[4096] = -INFINITY;
    bf16_convert(h, x, n);
    bf16_round(r, x, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(h[i], bf16_from_f32(x[i]));
        if (i != 5) assert_true(r[i] == bf16_to_f32(h[i]));
    }
    assert_true(isnan(r[5]));
    free(x);
    free(r);
    free(h);
}

/* --------------------------------------------------------------------------------------- */
/* oneDNN matmuls against the naive kernels                                                */

static void matmul_case(int N, int C, int OC)
{
    size_t nx = (size_t)N * C, nw = (size_t)OC * C, no = (size_t)N * OC;
    float *inp = rand_buf(nx, 1), *w = rand_buf(nw, 0.5f), *b = rand_buf(OC, 1);
    float *add = rand_buf(no, 1), *dout = rand_buf(no, 1);
    float *inp_r = malloc(nx * sizeof(float)), *w_r = malloc(nw * sizeof(float));
    float *dout_r = malloc(no * sizeof(float));
    bf16_round(inp_r, inp, nx);
    bf16_round(w_r, w, nw);
    bf16_round(dout_r, dout, no);
    float *o = malloc(no * sizeof(float)), *o_r = malloc(no * sizeof(float));
    float *o_f = malloc(no * sizeof(float));

    /* forward with bias and a residual (add == out, as the model calls it) */
    memcpy(o, add, no * sizeof(float));
    mm_bf16_forward(o, inp, w, b, o, N, C, OC);
    matmul_forward_naive(o_r, inp_r, w_r, b, add, N, C, OC);
    matmul_forward_naive(o_f, inp, w, b, add, N, C, OC);
    assert_true(close_ratio(o, o_r, no, 1e-5, 1e-5) <= 1);
    assert_true(close_ratio(o, o_f, no, 2e-2 * sqrt(C) / 4, 1e-2) <= 1);
    /* no bias, no residual */
    mm_bf16_forward(o, inp, w, NULL, NULL, N, C, OC);
    matmul_forward_naive(o_r, inp_r, w_r, NULL, NULL, N, C, OC);
    assert_true(close_ratio(o, o_r, no, 1e-5, 1e-5) <= 1);

    /* backward: dinp written, dweight and dbias accumulated onto what they held */
    float *di = malloc(nx * sizeof(float)), *di_r = malloc(nx * sizeof(float));
    float *di_f = malloc(nx * sizeof(float));
    float *dw = rand_buf(nw, 1), *dw_r = copy_buf(dw, nw), *dw_f = copy_buf(dw, nw);
    float *db = rand_buf(OC, 1), *db_r = copy_buf(db, OC), *db_f = copy_buf(db, OC);
    mm_bf16_backward(di, dw, db, dout, inp, w, N, C, OC);
    matmul_backward_naive(di_r, dw_r, NULL, dout_r, inp_r, w_r, N, C, OC);
    matmul_backward_naive(di_f, dw_f, db_f, dout, inp, w, N, C, OC);
    assert_true(close_ratio(di, di_r, nx, 1e-5, 1e-5) <= 1);
    assert_true(close_ratio(dw, dw_r, nw, 1e-5 * N, 1e-5) <= 1);
    assert_true(close_ratio(di, di_f, nx, 2e-2 * sqrt(OC) / 4, 1e-2) <= 1);
    assert_true(close_ratio(dw, dw_f, nw, 2e-2 * sqrt(N) / 4, 1e-2) <= 1);
    /* the bias gradient is an fp32 column sum of the unrounded dout */
    assert_true(close_ratio(db, db_f, OC, 1e-5, 1e-5) <= 1);
    (void)db_r;
    /* dinp NULL and dbias NULL: the weight gradient only */
    memcpy(dw_r, dw, nw * sizeof(float));
    mm_bf16_backward(NULL, dw, NULL, dout, inp, w, N, C, OC);
    matmul_backward_naive(di_r, dw_r, NULL, dout_r, inp_r, w_r, N, C, OC);
    assert_true(close_ratio(dw, dw_r, nw, 1e-5 * N, 1e-5) <= 1);

    free(inp);
    free(w);
    free(b);
    free(add);
    free(dout);
    free(inp_r);
    free(w_r);
    free(dout_r);
    free(o);
    free(o_r);
    free(o_f);
    free(di);
    free(di_r);
    free(di_f);
    free(dw);
    free(dw_r);
    free(dw_f);
    free(db);
    free(db_r);
    free(db_f);
}

static void test_matmul_vs_naive(void **state)
{
    NEED_ONEDNN_BF16();
    matmul_case(37, 24, 40);  /* odd shapes: edges of every blocking */
    matmul_case(64, 64, 192); /* a qkv-shaped product */
    matmul_case(130, 96, 17);
    matmul_case(1, 33, 7); /* one row */
}

/* --------------------------------------------------------------------------------------- */
/* The whole model                                                                         */

/* Forward + backward on fixed tokens; the gradients into g (nparams), the loss returned. */
static double model_grads(Gpt *m, int bf16, float *g, const uint32_t *in, const uint32_t *tg, int B)
{
    m->bf16 = bf16;
    gpt_zero_grad(m);
    double loss = gpt_forward(m, in, tg, NULL, B, 1.0f);
    gpt_backward(m);
    memcpy(g, m->grads_memory, m->nparams * sizeof(float));
    return loss;
}

/* A model of shape cfg, initialised from seed, ready to train. */
static void train_model(Gpt *m, const GptConfig *cfg, uint64_t seed)
{
    gpt_init(m, cfg);
    gpt_init_weights(m, seed, 0.1f);
    gpt_alloc_train(m);
}

/* Every tensor's bf16 gradient within 3% (relative L2) of its fp32 gradient. */
static void assert_grads_close(const Gpt *m, const float *g16, const float *g32)
{
    size_t off = 0;
    for (int i = 0; i < GPT_NUM_PARAMS; i++) {
        size_t n = m->param_sizes[i];
        double e = rel_l2(g16 + off, g32 + off, n);
        if (e > 3e-2) fprintf(stderr, "# %s: relative L2 error %.4f\n", gpt_param_name(i), e);
        assert_true(e <= 3e-2);
        off += n;
    }
}

static void test_model_bf16(void **state)
{
    NEED_ONEDNN_BF16();
    GptConfig cfg = { .L = 2, .C = 32, .NH = 2, .T = 24, .V = 48 };
    int B = 3;
    size_t N = (size_t)B * cfg.T;
    Gpt m;
    train_model(&m, &cfg, 11);
    uint32_t *in = malloc(N * sizeof(uint32_t)), *tg = malloc(N * sizeof(uint32_t));
    uint64_t s = 5;
    for (size_t i = 0; i < N; i++) {
        in[i] = (uint32_t)(splitmix64(&s) % (uint64_t)cfg.V);
        tg[i] = (uint32_t)(splitmix64(&s) % (uint64_t)cfg.V);
    }
    float *g32 = malloc(m.nparams * sizeof(float)), *g16 = malloc(m.nparams * sizeof(float));
    float *g16b = malloc(m.nparams * sizeof(float));
    double l32 = model_grads(&m, 0, g32, in, tg, B);
    double l16 = model_grads(&m, 1, g16, in, tg, B);
    double l16b = model_grads(&m, 1, g16b, in, tg, B);
    assert_true(fabs(l16 - l32) < 1e-2 * fabs(l32));
    /* bitwise repeatable */
    assert_true(l16 == l16b);
    assert_memory_equal(g16, g16b, m.nparams * sizeof(float));
    assert_grads_close(&m, g16, g32);
    /* and not equal: the bf16 path did run */
    assert_true(memcmp(g16, g32, m.nparams * sizeof(float)) != 0);
    free(in);
    free(tg);
    free(g32);
    free(g16);
    free(g16b);
    gpt_free(&m);
}

/* A masked step (instruction tuning) in bf16: the LM head runs on the scored positions padded
** with unscored ones to a multiple of B*T/8 (oneDNN's cached shapes); the padding changes no
** gradient bit, and the gradients stay close to fp32's, which has no padding. */
static void test_model_bf16_mask(void **state)
{
    NEED_ONEDNN_BF16();
    GptConfig cfg = { .L = 1, .C = 32, .NH = 2, .T = 16, .V = 40 };
    int B = 4;
    size_t N = (size_t)B * cfg.T;
    Gpt m;
    train_model(&m, &cfg, 13);
    uint32_t in[64], tg[64], tg2[64];
    float mask[64];
    uint64_t s = 7;
    int scored = 0;
    for (size_t i = 0; i < N; i++) {
        in[i] = (uint32_t)(splitmix64(&s) % (uint64_t)cfg.V);
        tg[i] = (uint32_t)(splitmix64(&s) % (uint64_t)cfg.V);
        mask[i] = (i % cfg.T) >= 5 && (i % cfg.T) < 12 ? 1.0f : 0.0f; /* 7 of 16 per row */
        scored += mask[i] != 0.0f;
    }
    float *g32 = malloc(m.nparams * sizeof(float)), *g16 = malloc(m.nparams * sizeof(float));
    float *g16b = malloc(m.nparams * sizeof(float));
    double n = 0, l[3];
    for (int k = 0; k < 3; k++) {
        m.bf16 = k > 0;
        for (size_t i = 0; i < N; i++) /* the third run: every unscored target changed */
            tg2[i] = k == 2 && mask[i] == 0.0f ? (tg[i] + 1) % (uint32_t)cfg.V : tg[i];
        gpt_zero_grad(&m);
        l[k] = gpt_forward_mask(&m, in, tg2, NULL, mask, B, 1.0f, &n);
        gpt_backward(&m);
        memcpy(k == 0 ? g32 : k == 1 ? g16 : g16b, m.grads_memory, m.nparams * sizeof(float));
        assert_true(n == scored);
        if (k == 0)
            assert_int_equal(m.n_rows, scored); /* 28 */
        else
            assert_int_equal(m.n_rows, 32); /* padded to a multiple of 64 / 8 */
    }
    assert_true(l[1] == l[2]);
    assert_memory_equal(g16, g16b, m.nparams * sizeof(float));
    assert_true(fabs(l[1] - l[0]) < 1e-2 * fabs(l[0]));
    assert_grads_close(&m, g16, g32);
    free(g32);
    free(g16);
    free(g16b);
    gpt_free(&m);
}

static int teardown(void **state)
{
    mm_bf16_free();
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    blasenv_setup(argv);
    kernels_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convert_scalar),  cmocka_unit_test(test_convert_array),
        cmocka_unit_test(test_matmul_vs_naive), cmocka_unit_test(test_model_bf16),
        cmocka_unit_test(test_model_bf16_mask),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
