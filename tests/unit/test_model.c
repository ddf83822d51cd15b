// SPDX-License-Identifier: MIT
/*
** test_model.c: cm-train's whole GPT-2. Test plan:
**   1. the gradient of the loss w.r.t. every parameter tensor equals central differences;
**   2. causality: changing tokens after position k never changes the logits at positions <= k;
**   3. generation with the key/value cache gives the logits of the full forward;
**   4. a tiny model overfits one batch to near-zero loss with AdamW;
**   5. same seed, same losses (bitwise), and the per-sample weights scale the gradient;
**   6. parameter layout: count, decay flags;
**   7. --recompute (no attention probabilities kept, GELU outputs recomputed) gives the same
**      loss and gradients bit for bit, with a smaller activation block;
**   8. the loss mask (instruction tuning): targets of mask 0 (prompt, padding) leave every
**      gradient and the loss bit-equal whatever their ids, a response target changes them;
**      the masked forward returns the sum over the scored targets and their count; an all-ones
**      mask with grad_scale 1/(B*T) is gpt_forward bit for bit; the gradient is the mean over
**      the scored targets of the whole step however they fall into micro-batches, and matches
**      central differences of that mean.
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
#include "trainer/model.h"

static void rand_tokens(uint32_t *ids, size_t n, int V, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) ids[i] = (uint32_t)(splitmix64(&seed) % (uint64_t)V);
}

static void test_layout(void **state)
{
    GptConfig cfg = { .L = 2, .C = 16, .NH = 2, .T = 8, .V = 32 };
    Gpt m;
    assert_null(gpt_config_check(&cfg));
    gpt_init(&m, &cfg);
    size_t want = 32 * 16 + 8 * 16 + 2 * (12 * 16 * 16 + 13 * 16) + 2 * 16;
    assert_int_equal(m.nparams, want);
    assert_string_equal(gpt_param_name(0), "wte");
    assert_true(gpt_param_decay(0) && gpt_param_decay(4) && !gpt_param_decay(5) &&
                !gpt_param_decay(2) && !gpt_param_decay(15));
    GptConfig bad = cfg;
    bad.NH = 3;
    assert_non_null(gpt_config_check(&bad));
    gpt_free(&m);
}

static void test_model_grad(void **state)
{
    GptConfig cfg = { .L = 2, .C = 16, .NH = 2, .T = 6, .V = 24 };
    int B = 2;
    size_t N = (size_t)B * cfg.T;
    Gpt m;
    gpt_init(&m, &cfg);
    gpt_init_weights(&m, 7, 0.3f);
    /* make LayerNorm and biases non-trivial so their gradients are checked too */
    uint64_t s = 99;
    for (int i = 0; i < GPT_NUM_PARAMS; i++)
        if (!gpt_param_decay(i)) {
            float *t = gpt_param_tensor(m.params_memory, &m, i);
            for (size_t j = 0; j < m.param_sizes[i]; j++)
                t[j] += ((splitmix64(&s) >> 40) / 16777216.0f - 0.5f) * 0.4f;
        }
    gpt_alloc_train(&m);
    uint32_t in[12], tg[12];
    rand_tokens(in, N, cfg.V, 1);
    rand_tokens(tg, N, cfg.V, 2);
    float w[2] = { 1.0f, 2.5f };
    gpt_zero_grad(&m);
    gpt_forward(&m, in, tg, w, B, 1.0f);
    gpt_backward(&m);
    /* the objective the gradient belongs to: sum_b w_b * mean over positions / B ... as in
    ** gpt_forward: sum_r loss_r * w_b / N */
    float eps = 1e-2f;
    for (int i = 0; i < GPT_NUM_PARAMS; i++) {
        float *p = gpt_param_tensor(m.params_memory, &m, i);
        float *g = gpt_param_tensor(m.grads_memory, &m, i);
        size_t n = m.param_sizes[i], stride = n / 12 ? n / 12 : 1;
        for (size_t j = 0; j < n; j += stride) {
            double f[2];
            for (int k = 0; k < 2; k++) {
                float old = p[j];
                p[j] = old + (k ? -eps : eps);
                gpt_forward(&m, in, tg, NULL, B, 0.0f);
                double sum = 0;
                for (size_t r = 0; r < N; r++) sum += m.acts.losses[r] * w[r / cfg.T];
                f[k] = sum / N;
                p[j] = old;
            }
            double num = (f[0] - f[1]) / (2 * eps);
            if (!(fabs(num - g[j]) <= 2e-4 + 3e-2 * fabs(num))) {
                print_error("%s[%zu]: analytic %.6g numeric %.6g\n", gpt_param_name(i), j,
                            (double)g[j], num);
                fail();
            }
        }
    }
    gpt_free(&m);
}

static void test_causality(void **state)
{
    GptConfig cfg = { .L = 2, .C = 32, .NH = 4, .T = 80, .V = 50 };
    int B = 2, T = cfg.T, V = cfg.V;
    Gpt m;
    gpt_init(&m, &cfg);
    gpt_init_weights(&m, 3, 0.2f);
    uint32_t *in = malloc((size_t)B * T * sizeof(uint32_t));
    rand_tokens(in, (size_t)B * T, V, 5);
    gpt_forward(&m, in, NULL, NULL, B, 0.0f);
    size_t nl = (size_t)B * T * V;
    float *ref = malloc(nl * sizeof(float));
    memcpy(ref, m.acts.logits, nl * sizeof(float));
    int ks[3] = { 0, 37, 70 };
    for (int c = 0; c < 3; c++) {
        int k = ks[c];
        uint32_t *in2 = malloc((size_t)B * T * sizeof(uint32_t));
        memcpy(in2, in, (size_t)B * T * sizeof(uint32_t));
        for (int b = 0; b < B; b++)
            for (int t = k + 1; t < T; t++) in2[b * T + t] = (in[b * T + t] + 1 + t) % V;
        gpt_forward(&m, in2, NULL, NULL, B, 0.0f);
        for (int b = 0; b < B; b++) {
            const float *x = m.acts.logits + (size_t)b * T * V, *y = ref + (size_t)b * T * V;
            assert_memory_equal(x, y, (size_t)(k + 1) * V * sizeof(float));
            /* and the later positions did change */
            assert_true(memcmp(x + (size_t)(k + 1) * V, y + (size_t)(k + 1) * V,
                               (size_t)(T - k - 1) * V * sizeof(float)) != 0);
        }
        free(in2);
    }
    free(in);
    free(ref);
    gpt_free(&m);
}

static void test_kv_cache(void **state)
{
    GptConfig cfg = { .L = 2, .C = 32, .NH = 2, .T = 20, .V = 40 };
    int T = cfg.T, V = cfg.V;
    Gpt m;
    GptKV kv;
    gpt_init(&m, &cfg);
    gpt_init_weights(&m, 11, 0.2f);
    uint32_t in[20];
    rand_tokens(in, T, V, 8);
    gpt_forward(&m, in, NULL, NULL, 1, 0.0f);
    gpt_kv_init(&kv, &m);
    for (int t = 0; t < T; t++) {
        float *lg = gpt_kv_step(&m, &kv, in[t], t);
        for (int i = 0; i < V; i++)
            assert_true(fabsf(lg[i] - m.acts.logits[(size_t)t * V + i]) < 1e-4f);
    }
    gpt_kv_free(&kv);
    gpt_free(&m);
}

/* Train on one fixed batch; returns the last loss. */
static double overfit(uint64_t seed, int steps, double *first)
{
    GptConfig cfg = { .L = 2, .C = 32, .NH = 2, .T = 16, .V = 64 };
    int B = 4;
    size_t N = (size_t)B * cfg.T;
    Gpt m;
    gpt_init(&m, &cfg);
    gpt_init_weights(&m, seed, 0.02f);
    gpt_alloc_train(&m);
    uint32_t in[64], tg[64];
    rand_tokens(in, N, cfg.V, 21);
    rand_tokens(tg, N, cfg.V, 22);
    double loss = 0;
    for (int t = 1; t <= steps; t++) {
        gpt_zero_grad(&m);
        loss = gpt_forward(&m, in, tg, NULL, B, 1.0f);
        if (t == 1 && first) *first = loss;
        gpt_backward(&m);
        gpt_update(&m, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, t);
    }
    gpt_free(&m);
    return loss;
}

static void test_overfit_one_batch(void **state)
{
    double first = 0, last = overfit(1, 150, &first);
    assert_true(fabs(first - log(64.0)) < 0.1); /* starts at chance */
    if (!(last < 0.05)) {
        print_error("loss after 150 steps: %g\n", last);
        fail();
    }
}

static void test_deterministic(void **state)
{
    double a = overfit(5, 4, NULL), b = overfit(5, 4, NULL), c = overfit(6, 4, NULL);
    assert_memory_equal(&a, &b, sizeof a);
    assert_true(a != c);
}

static void test_recompute(void **state)
{
    GptConfig cfg = { .L = 2, .C = 32, .NH = 2, .T = 70, .V = 40 }; /* two attention blocks */
    int B = 2;
    size_t N = (size_t)B * cfg.T;
    uint32_t *in = malloc(N * sizeof(uint32_t)), *tg = malloc(N * sizeof(uint32_t));
    rand_tokens(in, N, cfg.V, 3);
    rand_tokens(tg, N, cfg.V, 4);
    Gpt m;
    gpt_init(&m, &cfg);
    gpt_init_weights(&m, 9, 0.2f);
    gpt_alloc_train(&m);
    float *g = malloc(m.nparams * sizeof(float));
    double loss[2];
    for (int rc = 0; rc < 2; rc++) {
        m.recompute = rc;
        gpt_zero_grad(&m);
        loss[rc] = gpt_forward(&m, in, tg, NULL, B, 1.0f);
        gpt_backward(&m);
        if (rc == 0) memcpy(g, m.grads_memory, m.nparams * sizeof(float));
    }
    assert_memory_equal(&loss[0], &loss[1], sizeof(double));
    assert_memory_equal(g, m.grads_memory, m.nparams * sizeof(float));
    assert_true(gpt_acts_bytes(&cfg, B, 1) < gpt_acts_bytes(&cfg, B, 0));
    free(in);
    free(tg);
    free(g);
    gpt_free(&m);
}

/* A tiny model with non-trivial LayerNorms and biases, ready to train. */
static void mask_model(Gpt *m, const GptConfig *cfg)
{
    gpt_init(m, cfg);
    gpt_init_weights(m, 17, 0.3f);
    uint64_t s = 5;
    for (int i = 0; i < GPT_NUM_PARAMS; i++)
        if (!gpt_param_decay(i)) {
            float *t = gpt_param_tensor(m->params_memory, m, i);
            for (size_t j = 0; j < m->param_sizes[i]; j++)
                t[j] += ((splitmix64(&s) >> 40) / 16777216.0f - 0.5f) * 0.4f;
        }
    gpt_alloc_train(m);
}

/* Zeroed gradients, one masked forward and backward; the gradients copied to g. */
static double mask_grads(Gpt *m, const uint32_t *in, const uint32_t *tg, const float *mask, int B,
                         float *g, double *scored)
{
    gpt_zero_grad(m);
    double sum = gpt_forward_mask(m, in, tg, NULL, mask, B, 1.0f, scored);
    gpt_backward(m);
    memcpy(g, m->grads_memory, m->nparams * sizeof(float));
    return sum;
}

/* Row b of (B, T) as an instruction example: prompt targets 0..np-2, response np-1..nt-2,
** padding after (the rule of trainer/data.c's data_mask). */
static void example_mask(float *mask, int T, int np, int nt)
{
    for (int t = 0; t < T; t++) mask[t] = t + 1 >= np && t + 1 < nt ? 1.0f : 0.0f;
}

static void test_mask_prompt_targets(void **state)
{
    GptConfig cfg = { .L = 2, .C = 16, .NH = 2, .T = 10, .V = 30 };
    int B = 2, T = cfg.T;
    size_t N = (size_t)B * T;
    Gpt m;
    mask_model(&m, &cfg);
    uint32_t in[20], tg[20], tg2[20];
    float mask[20];
    rand_tokens(in, N, cfg.V, 31);
    rand_tokens(tg, N, cfg.V, 32);
    example_mask(mask, T, 4, 8);         /* prompt 4, response 3 + end-of-text, padding 3 */
    example_mask(mask + T, T, 6, T + 1); /* prompt 6, response truncated at the window */
    float *g1 = malloc(m.nparams * sizeof(float)), *g2 = malloc(m.nparams * sizeof(float));
    double n1 = 0, n2 = 0;
    double l1 = mask_grads(&m, in, tg, mask, B, g1, &n1);
    /* the LM head ran on the scored positions alone, in order: the sum and the count */
    double want = 0;
    int cnt = 0;
    for (size_t i = 0; i < N; i++)
        if (mask[i] != 0.0f) {
            assert_true(cnt < m.n_rows && m.rows[cnt] == i);
            want += m.acts.losses[cnt++];
        }
    assert_int_equal(m.n_rows, cnt);
    assert_int_equal((int)n1, cnt);
    assert_int_equal(cnt, 4 + 5);
    assert_true(fabs(l1 - want) <= 1e-9 * fabs(want));
    /* every unscored target (prompt, padding) changed: gradients and loss bit-equal */
    memcpy(tg2, tg, sizeof tg);
    int changed = 0;
    for (size_t i = 0; i < N; i++)
        if (mask[i] == 0.0f) tg2[i] = (tg[i] + 1 + (uint32_t)i) % (uint32_t)cfg.V, changed++;
    assert_int_equal(changed, (int)N - cnt);
    double l2 = mask_grads(&m, in, tg2, mask, B, g2, &n2);
    assert_memory_equal(g1, g2, m.nparams * sizeof(float));
    assert_memory_equal(&l1, &l2, sizeof l1);
    assert_memory_equal(&n1, &n2, sizeof n1);
    /* one response target changed: the gradients and the loss change */
    memcpy(tg2, tg, sizeof tg);
    tg2[5] = (tg[5] + 1) % (uint32_t)cfg.V; /* row 0, target 5 predicts token 6: response */
    assert_true(mask[5] == 1.0f);
    double l3 = mask_grads(&m, in, tg2, mask, B, g2, &n2);
    assert_true(memcmp(g1, g2, m.nparams * sizeof(float)) != 0);
    assert_true(l3 != l1);
    /* and without the mask the prompt targets do count */
    gpt_zero_grad(&m);
    gpt_forward(&m, in, tg, NULL, B, 1.0f);
    gpt_backward(&m);
    memcpy(g2, m.grads_memory, m.nparams * sizeof(float));
    gpt_zero_grad(&m);
    for (size_t i = 0; i < N; i++) tg2[i] = mask[i] == 0.0f ? (tg[i] + 1) % cfg.V : tg[i];
    gpt_forward(&m, in, tg2, NULL, B, 1.0f);
    gpt_backward(&m);
    assert_true(memcmp(g2, m.grads_memory, m.nparams * sizeof(float)) != 0);
    free(g1);
    free(g2);
    gpt_free(&m);
}

static void test_mask_ones_is_forward(void **state)
{
    GptConfig cfg = { .L = 1, .C = 16, .NH = 2, .T = 7, .V = 20 };
    int B = 3;
    size_t N = (size_t)B * cfg.T;
    Gpt m;
    mask_model(&m, &cfg);
    uint32_t in[21], tg[21];
    float ones[21];
    for (size_t i = 0; i < N; i++) ones[i] = 1.0f;
    rand_tokens(in, N, cfg.V, 41);
    rand_tokens(tg, N, cfg.V, 42);
    float w[3] = { 1.0f, 0.5f, 3.0f };
    float *g = malloc(m.nparams * sizeof(float));
    gpt_zero_grad(&m);
    double mean = gpt_forward(&m, in, tg, w, B, 1.0f);
    gpt_backward(&m);
    memcpy(g, m.grads_memory, m.nparams * sizeof(float));
    double n = 0;
    gpt_zero_grad(&m);
    double sum = gpt_forward_mask(&m, in, tg, w, ones, B, 1.0f / (float)N, &n);
    gpt_backward(&m);
    assert_memory_equal(g, m.grads_memory, m.nparams * sizeof(float));
    assert_int_equal((int)n, (int)N);
    assert_true(fabs(sum / n - mean) <= 1e-12 * mean);
    free(g);
    gpt_free(&m);
}

static void test_mask_step_mean(void **state)
{
    /* one step of two examples as one micro-batch of 2, or as two of 1 (2 and 6 scored
    ** targets: a mean of the micro-batches' means would weigh each target of the first 3 times
    ** as much as one of the second) */
    GptConfig cfg = { .L = 1, .C = 16, .NH = 2, .T = 8, .V = 20 };
    int T = cfg.T;
    size_t N = (size_t)2 * T;
    Gpt m;
    mask_model(&m, &cfg);
    uint32_t in[16], tg[16];
    float mask[16];
    rand_tokens(in, N, cfg.V, 51);
    rand_tokens(tg, N, cfg.V, 52);
    example_mask(mask, T, 5, 7);     /* 2 scored */
    example_mask(mask + T, T, 2, 8); /* 6 scored */
    float *g1 = malloc(m.nparams * sizeof(float));
    double n1 = 0, na = 0, nb = 0;
    double s1 = mask_grads(&m, in, tg, mask, 2, g1, &n1);
    gpt_zero_grad(&m);
    double sa = gpt_forward_mask(&m, in, tg, NULL, mask, 1, 1.0f, &na);
    gpt_backward(&m); /* accumulates */
    double sb = gpt_forward_mask(&m, in + T, tg + T, NULL, mask + T, 1, 1.0f, &nb);
    gpt_backward(&m);
    assert_int_equal((int)n1, 8);
    assert_true(na == 2 && nb == 6);
    assert_true(fabs((sa + sb) / (na + nb) - s1 / n1) < 1e-6);
    double dmax = 0, gmax = 0;
    for (size_t i = 0; i < m.nparams; i++) {
        double a = g1[i] / n1, b = m.grads_memory[i] / (na + nb);
        if (fabs(a - b) > dmax) dmax = fabs(a - b);
        if (fabs(a) > gmax) gmax = fabs(a);
    }
    assert_true(gmax > 0 && dmax <= 1e-5 * gmax);
    /* the gradient / scored is that of the mean over the scored targets (central differences) */
    float eps = 1e-2f;
    for (int i = 0; i < GPT_NUM_PARAMS; i++) {
        float *p = gpt_param_tensor(m.params_memory, &m, i);
        float *g = gpt_param_tensor(g1, &m, i);
        size_t n = m.param_sizes[i], stride = n / 5 ? n / 5 : 1;
        for (size_t j = 0; j < n; j += stride) {
            double f[2], sc;
            for (int k = 0; k < 2; k++) {
                float old = p[j];
                p[j] = old + (k ? -eps : eps);
                f[k] = gpt_forward_mask(&m, in, tg, NULL, mask, 2, 0.0f, &sc) / sc;
                p[j] = old;
            }
            double num = (f[0] - f[1]) / (2 * eps), ana = g[j] / n1;
            if (!(fabs(num - ana) <= 2e-4 + 3e-2 * fabs(num))) {
                print_error("%s[%zu]: analytic %.6g numeric %.6g\n", gpt_param_name(i), j, ana,
                            num);
                fail();
            }
        }
    }
    free(g1);
    gpt_free(&m);
}

/* Scored positions scattered through the batch (the LM head gathers them; one row has none, one
** target is weighted 0.5): the gradient of the sum against central differences; an all-zero
** mask gives no loss and no gradient. */
static void test_mask_scattered(void **state)
{
    GptConfig cfg = { .L = 1, .C = 16, .NH = 2, .T = 9, .V = 24 };
    int B = 3, T = cfg.T;
    size_t N = (size_t)B * T;
    Gpt m;
    mask_model(&m, &cfg);
    uint32_t in[27], tg[27];
    float mask[27] = { 0 };
    rand_tokens(in, N, cfg.V, 61);
    rand_tokens(tg, N, cfg.V, 62);
    uint64_t s = 63;
    for (int t = 0; t < T; t++) { /* rows 0 and 2; row 1 unscored */
        mask[t] = (splitmix64(&s) & 3) != 0;
        mask[2 * T + t] = (splitmix64(&s) & 1) != 0;
    }
    mask[2 * T + 4] = 0.5f;
    float *g1 = malloc(m.nparams * sizeof(float));
    double n1 = 0, want_n = 0;
    for (size_t i = 0; i < N; i++) want_n += mask[i];
    mask_grads(&m, in, tg, mask, B, g1, &n1);
    assert_true(n1 == want_n && m.n_rows > 0 && m.n_rows < (int)N);
    float eps = 1e-2f;
    int checked = 0;
    for (int i = 0; i < GPT_NUM_PARAMS; i++) {
        float *p = gpt_param_tensor(m.params_memory, &m, i);
        float *g = gpt_param_tensor(g1, &m, i);
        size_t n = m.param_sizes[i], stride = n / 7 ? n / 7 : 1;
        for (size_t j = 0; j < n; j += stride, checked++) {
            double f[2], sc;
            for (int k = 0; k < 2; k++) {
                float old = p[j];
                p[j] = old + (k ? -eps : eps);
                f[k] = gpt_forward_mask(&m, in, tg, NULL, mask, B, 0.0f, &sc);
                p[j] = old;
            }
            double num = (f[0] - f[1]) / (2 * eps), ana = g[j];
            if (!(fabs(num - ana) <= 2e-3 + 3e-2 * fabs(num))) {
                print_error("%s[%zu]: analytic %.6g numeric %.6g\n", gpt_param_name(i), j, ana,
                            num);
                fail();
            }
        }
    }
    assert_true(checked > 50);
    /* nothing scored */
    float none[27] = { 0 };
    double n0 = -1;
    double l0 = mask_grads(&m, in, tg, none, B, g1, &n0);
    assert_true(l0 == 0.0 && n0 == 0.0 && m.n_rows == 0);
    for (size_t i = 0; i < m.nparams; i++) assert_true(g1[i] == 0.0f);
    free(g1);
    gpt_free(&m);
}

int main(int argc, char **argv)
{
    (void)argc;
    blasenv_setup(argv); /* fast OpenBLAS kernels, passive OpenMP waits */
    kernels_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_model_grad),
        cmocka_unit_test(test_causality),
        cmocka_unit_test(test_kv_cache),
        cmocka_unit_test(test_overfit_one_batch),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_recompute),
        cmocka_unit_test(test_mask_prompt_targets),
        cmocka_unit_test(test_mask_ones_is_forward),
        cmocka_unit_test(test_mask_step_mean),
        cmocka_unit_test(test_mask_scattered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
