// SPDX-License-Identifier: MIT
/*
** test_lora.c: LoRA adapters on cm-train's GPT-2 (trainer/lora.h). Test plan:
**   1. targets: PEFT's suffix matching ("c_proj" is both projections), "all", bad names;
**   2. PEFT's initialisation: A within +-1/sqrt(in) and spread over it, B zero, from the seed;
**      step 0 equals the base: logits bit-equal (batch forward and key/value steps);
**   3. the gradients of A and B equal central differences (tiny model, all targets, B nonzero),
**      with and without --recompute (the same gradients bit for bit);
**   4. frozen base: no gradient or moment blocks for it; AdamW steps change the adapters and
**      leave every base parameter bit-identical; the input gradients still flow (the
**      adapters of the first layer get gradients);
**   5. merge: W + (alpha/r) B A gives the adapted logits up to fp32 rounding, adapters gone;
**   6. checkpoint v3: adapters and their moments round-trip; a header whose LoRA fields do
**      not fit is refused (-2).
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
#include <unistd.h>

#include "hash.h"
#include "le.h"
#include "trainer/blasenv.h"
#include "trainer/ckpt.h"
#include "trainer/kernels.h"
#include "trainer/lora.h"
#include "trainer/model.h"

static const GptConfig tiny = { .L = 2, .C = 16, .NH = 2, .T = 6, .V = 24 };

static void rand_tokens(uint32_t *ids, size_t n, int V, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) ids[i] = (uint32_t)(splitmix64(&seed) % (uint64_t)V);
}

static void rand_fill(float *x, size_t n, float scale, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) x[i] = ((splitmix64(&seed) >> 40) / 16777216.0f - 0.5f) * scale;
}

static void test_targets(void **state)
{
    unsigned m;
    char err[256];
    assert_int_equal(lora_parse_targets("c_attn", &m, err, sizeof err), 0);
    assert_int_equal(m, 1u << LORA_C_ATTN);
    assert_int_equal(lora_parse_targets("c_proj", &m, err, sizeof err), 0);
    assert_int_equal(m, (1u << LORA_ATTN_C_PROJ) | (1u << LORA_MLP_C_PROJ));
    assert_int_equal(lora_parse_targets("attn.c_attn,mlp.c_fc", &m, err, sizeof err), 0);
    assert_int_equal(m, (1u << LORA_C_ATTN) | (1u << LORA_MLP_C_FC));
    assert_int_equal(lora_parse_targets("all", &m, err, sizeof err), 0);
    assert_int_equal(m, LORA_ALL);
    assert_int_equal(lora_parse_targets("c_attn,attn", &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "'attn'"));
    assert_int_equal(lora_parse_targets("_attn", &m, err, sizeof err), -1);
    char s[128];
    lora_targets_str((1u << LORA_C_ATTN) | (1u << LORA_MLP_C_PROJ), s, sizeof s);
    assert_string_equal(s, "attn.c_attn,mlp.c_proj");
    /* A (L, r, in) + B (L, out, r) per target: c_attn 1+3, c_proj 1+1, c_fc 1+4, mlp c_proj 4+1 */
    assert_int_equal(lora_count(&tiny, 4, LORA_ALL), 2 * 4 * 16 * 16);
    assert_int_equal(lora_count(&tiny, 4, 1u << LORA_C_ATTN), 2 * 4 * 16 * 4);
}

/* A tiny base model with non-trivial weights. */
static void tiny_model(Gpt *m, uint64_t seed)
{
    gpt_init(m, &tiny);
    gpt_init_weights(m, seed, 0.3f);
    uint64_t s = seed * 7 + 1;
    for (int i = 0; i < GPT_NUM_PARAMS; i++)
        if (!gpt_param_decay(i))
            rand_fill(gpt_param_tensor(m->params_memory, m, i), m->param_sizes[i], 0.4f, s++);
}

static void test_init_step0(void **state)
{
    Gpt m;
    tiny_model(&m, 5);
    int B = 2, V = tiny.V;
    size_t N = (size_t)B * tiny.T;
    uint32_t in[12];
    rand_tokens(in, N, V, 3);
    gpt_forward(&m, in, NULL, NULL, B, 0.0f);
    float *base = malloc(N * V * sizeof(float));
    memcpy(base, m.acts.logits, N * V * sizeof(float));
    m.lora = lora_new(&tiny, 4, 8.0, LORA_ALL);
    lora_init_weights(m.lora, 11);
    /* A uniform within +-1/sqrt(in), using the range; B zero */
    for (int t = 0; t < LORA_NT; t++) {
        GptLora *lo = m.lora;
        size_t na = (size_t)lo->L * lo->rank * lo->in[t];
        float bound = 1.0f / sqrtf((float)lo->in[t]), lo_v = 1, hi_v = -1;
        for (size_t i = 0; i < na; i++) {
            assert_true(fabsf(lo->A[t][i]) <= bound);
            lo_v = fminf(lo_v, lo->A[t][i]);
            hi_v = fmaxf(hi_v, lo->A[t][i]);
        }
        assert_true(lo_v < -0.7f * bound && hi_v > 0.7f * bound);
        for (size_t i = 0; i < (size_t)lo->L * lo->out[t] * lo->rank; i++)
            assert_true(lo->B[t][i] == 0.0f);
    }
    GptLora *again = lora_new(&tiny, 4, 8.0, LORA_ALL);
    lora_init_weights(again, 11);
    assert_memory_equal(again->params, m.lora->params, again->n * sizeof(float));
    lora_init_weights(again, 12);
    assert_true(memcmp(again->params, m.lora->params, again->n * sizeof(float)) != 0);
    lora_free(again);
    gpt_forward(&m, in, NULL, NULL, B, 0.0f);
    for (size_t i = 0; i < N * V; i++) assert_true(m.acts.logits[i] == base[i]);
    GptKV kv;
    gpt_kv_init(&kv, &m);
    for (int t = 0; t < tiny.T; t++) {
        float *x = gpt_kv_step(&m, &kv, in[t], t);
        for (int j = 0; j < V; j++) assert_true(fabsf(x[j] - base[(size_t)t * V + j]) < 1e-4f);
    }
    gpt_kv_free(&kv);
    free(base);
    gpt_free(&m);
}

/* The weighted mean loss gpt_forward's gradient belongs to (grad_scale 1, no weights). */
static double loss_of(Gpt *m, const uint32_t *in, const uint32_t *tg, int B)
{
    return gpt_forward(m, in, tg, NULL, B, 0.0f);
}

/* A model with adapters of rank 3 on all targets, A and B random; gradients computed. */
static void grad_model(Gpt *m, int recompute, const uint32_t *in, const uint32_t *tg, int B)
{
    tiny_model(m, 7);
    m->recompute = recompute;
    m->lora = lora_new(&tiny, 3, 6.0, LORA_ALL);
    rand_fill(m->lora->params, m->lora->n, 0.6f, 99);
    gpt_alloc_train(m);
    gpt_zero_grad(m);
    gpt_forward(m, in, tg, NULL, B, 1.0f);
    gpt_backward(m);
}

static void test_lora_grad(void **state)
{
    int B = 2;
    size_t N = (size_t)B * tiny.T;
    uint32_t in[12], tg[12];
    rand_tokens(in, N, tiny.V, 1);
    rand_tokens(tg, N, tiny.V, 2);
    Gpt m, rc;
    grad_model(&m, 0, in, tg, B);
    grad_model(&rc, 1, in, tg, B);
    GptLora *lo = m.lora;
    assert_memory_equal(lo->grads, rc.lora->grads, lo->n * sizeof(float));
    float eps = 1e-2f;
    int checked = 0, nonzero = 0;
    for (int t = 0; t < LORA_NT; t++)
        for (int ab = 0; ab < 2; ab++) {
            float *p = ab ? lo->B[t] : lo->A[t], *g = ab ? lo->dB[t] : lo->dA[t];
            size_t n = (size_t)lo->L * lo->rank * lo->in[t] * (ab ? 0 : 1) +
                (size_t)lo->L * lo->out[t] * lo->rank * (ab ? 1 : 0);
            for (size_t j = 0; j < n; j += n / 9 + 1) {
                float old = p[j];
                p[j] = old + eps;
                double f0 = loss_of(&m, in, tg, B);
                p[j] = old - eps;
                double f1 = loss_of(&m, in, tg, B);
                p[j] = old;
                double num = (f0 - f1) / (2 * eps);
                if (!(fabs(num - g[j]) <= 2e-4 + 3e-2 * fabs(num))) {
                    print_error("target %s lora_%c[%zu]: analytic %.6g numeric %.6g\n",
                                lora_target_name(t), ab ? 'B' : 'A', j, (double)g[j], num);
                    fail();
                }
                checked++;
                nonzero += fabs(num) > 1e-4;
            }
        }
    assert_true(checked > 60 && nonzero > checked / 2);
    gpt_free(&m);
    gpt_free(&rc);
}

static void test_frozen_base(void **state)
{
    int B = 2;
    size_t N = (size_t)B * tiny.T;
    uint32_t in[12], tg[12];
    rand_tokens(in, N, tiny.V, 4);
    rand_tokens(tg, N, tiny.V, 6);
    Gpt m;
    tiny_model(&m, 9);
    m.lora = lora_new(&tiny, 2, 4.0, (1u << LORA_C_ATTN) | (1u << LORA_MLP_C_FC));
    lora_init_weights(m.lora, 1);
    gpt_alloc_train(&m);
    assert_null(m.grads_memory);
    assert_null(m.m_memory);
    assert_null(m.v_memory);
    assert_non_null(m.lora->grads);
    float *base = malloc(m.nparams * sizeof(float)), *a0 = malloc(m.lora->n * sizeof(float));
    memcpy(base, m.params_memory, m.nparams * sizeof(float));
    memcpy(a0, m.lora->params, m.lora->n * sizeof(float));
    double first = 0, last = 0;
    for (int s = 1; s <= 30; s++) {
        gpt_zero_grad(&m);
        double loss = gpt_forward(&m, in, tg, NULL, B, 1.0f);
        gpt_backward(&m);
        if (s == 1) {
            /* B is zero: only B has gradients at step 1 (dA = scale dout B x = 0), the first
            ** layer's included: the input gradient flowed through the frozen layers above */
            GptLora *lo = m.lora;
            double sa = 0, sb = 0;
            for (size_t i = 0; i < (size_t)lo->rank * lo->in[LORA_C_ATTN]; i++)
                sa += fabs(lo->dA[LORA_C_ATTN][i]);
            for (size_t i = 0; i < (size_t)lo->out[LORA_C_ATTN] * lo->rank; i++)
                sb += fabs(lo->dB[LORA_C_ATTN][i]);
            assert_true(sa == 0.0 && sb > 0.0);
        }
        assert_true(gpt_grad_norm(&m) > 0);
        gpt_update(&m, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, s);
        if (s == 1) first = loss;
        last = loss;
    }
    assert_memory_equal(m.params_memory, base, m.nparams * sizeof(float));
    assert_true(memcmp(m.lora->params, a0, m.lora->n * sizeof(float)) != 0);
    assert_true(last < first - 0.05);
    free(base);
    free(a0);
    gpt_free(&m);
}

static void test_merge(void **state)
{
    int B = 2, V = tiny.V;
    size_t N = (size_t)B * tiny.T;
    uint32_t in[12];
    rand_tokens(in, N, V, 8);
    Gpt m;
    tiny_model(&m, 3);
    m.lora = lora_new(&tiny, 4, 2.0, LORA_ALL);
    rand_fill(m.lora->params, m.lora->n, 0.5f, 17);
    gpt_forward(&m, in, NULL, NULL, B, 0.0f);
    float *ad = malloc(N * V * sizeof(float));
    memcpy(ad, m.acts.logits, N * V * sizeof(float));
    lora_merge(&m);
    assert_null(m.lora);
    gpt_forward(&m, in, NULL, NULL, B, 0.0f);
    double most = 0, diff = 0;
    for (size_t i = 0; i < N * V; i++) {
        most = fmax(most, fabs(ad[i]));
        diff = fmax(diff, fabs(ad[i] - m.acts.logits[i]));
    }
    assert_true(most > 0.1 && diff < 1e-5 * (1 + most));
    free(ad);
    gpt_free(&m);
}

/* Rewrite a header field (u32 at off) and the header checksum. */
static void patch_u32(const char *path, int off, uint32_t v)
{
    unsigned char h[CKPT_HEADER_BYTES];
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fread(h, 1, sizeof h, f), sizeof h);
    le_put32(h + off, v);
    le_put64(h + 248, hash64(h, 248));
    rewind(f);
    assert_int_equal(fwrite(h, 1, sizeof h, f), sizeof h);
    fclose(f);
}

static void test_ckpt_lora(void **state)
{
    char path[] = "/tmp/test_lora.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    Gpt m, r;
    tiny_model(&m, 2);
    m.lora = lora_new(&tiny, 3, 5.5, (1u << LORA_ATTN_C_PROJ) | (1u << LORA_MLP_C_PROJ));
    gpt_alloc_train(&m);
    GptLora *lo = m.lora;
    rand_fill(lo->params, lo->n, 1.0f, 1);
    rand_fill(lo->m, lo->n, 1.0f, 2);
    rand_fill(lo->v, lo->n, 1.0f, 3);
    CkptInfo in = { .step = 7, .has_opt = 1, .steps = 9 }, out;
    assert_int_equal(ckpt_save(path, &m, &in), 0);
    assert_int_equal(ckpt_load(path, &r, &out, 1), 0);
    assert_int_equal(out.version, 3);
    assert_int_equal(out.lora_rank, 3);
    assert_true(out.lora_alpha == 5.5 && out.lora_targets == lo->targets && out.lora_n == lo->n);
    assert_non_null(r.lora);
    assert_null(r.m_memory);
    assert_memory_equal(r.params_memory, m.params_memory, m.nparams * sizeof(float));
    assert_memory_equal(r.lora->params, lo->params, lo->n * sizeof(float));
    assert_memory_equal(r.lora->m, lo->m, lo->n * sizeof(float));
    assert_memory_equal(r.lora->v, lo->v, lo->n * sizeof(float));
    assert_true(r.lora->scale == lo->scale);
    gpt_free(&r);
    assert_int_equal(ckpt_load(path, &r, &out, 0), 0); /* moments skipped */
    assert_null(r.lora->m);
    gpt_free(&r);
    patch_u32(path, 148, 1u << LORA_C_ATTN); /* another target: the count no longer fits */
    assert_int_equal(ckpt_load(path, &r, &out, 0), -2);
    patch_u32(path, 148, 0x30); /* a target bit that does not exist */
    assert_int_equal(ckpt_read_info(path, &out), -2);
    unlink(path);
    gpt_free(&m);
}

int main(int argc, char **argv)
{
    (void)argc;
    blasenv_setup(argv);
    kernels_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_targets),   cmocka_unit_test(test_init_step0),
        cmocka_unit_test(test_lora_grad), cmocka_unit_test(test_frozen_base),
        cmocka_unit_test(test_merge),     cmocka_unit_test(test_ckpt_lora),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
