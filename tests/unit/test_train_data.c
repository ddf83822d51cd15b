// SPDX-License-Identifier: MIT
/*
** test_train_data.c: cm-train's data path and checkpoints. Test plan:
**   1. labels are the inputs shifted by one (data_shift / data_batch);
**   2. synthetic windows depend on (seed, position) only: seek reproduces them, ids < V,
**      a finite source ends;
**   3. a checkpoint round-trips parameters, moments and header fields bit for bit; a
**      flipped payload byte or a truncation is reported as damaged (-2);
**   4. version 2 records the tokenizer fingerprint (offset 136); a version 1 file (the same
**      header with version 1 and offset 136 zero) is still read, its tokenizer fingerprint 0
**      (unknown); version 3 is refused;
**   5. the loss mask of an instruction example (data_mask): exactly the targets that are the
**      example's response tokens and its end-of-text are scored, for a prompt of 0 (a plain
**      document), a padded example and a truncated one; a window source's mask is all ones.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trainer/data.h"
#include "trainer/model.h"
#include "trainer/ckpt.h"
#include "trainer/blasenv.h"
#include "trainer/kernels.h"
#include "hash.h"
#include "le.h"

static void test_labels_shifted(void **state)
{
    int B = 3, T = 5;
    uint32_t w[18], in[15], tg[15];
    for (int i = 0; i < 18; i++) w[i] = 100 + i;
    data_shift(w, B, T, in, tg);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            assert_int_equal(in[b * T + t], w[b * (T + 1) + t]);
            assert_int_equal(tg[b * T + t], w[b * (T + 1) + t + 1]);
            if (t + 1 < T) assert_int_equal(tg[b * T + t], in[b * T + t + 1]);
        }
}

static void test_synthetic(void **state)
{
    DataSource d;
    int B = 4, T = 9;
    uint32_t win[40], in[36], tg[36], in2[36], tg2[36];
    data_synthetic(&d, 50, 7, (size_t)T + 1, 0);
    assert_int_equal(data_batch(&d, win, B, T, in, tg), B);
    for (int i = 0; i < 36; i++) assert_true(in[i] < 50 && tg[i] < 50);
    assert_int_equal(data_tell(&d), 4);
    data_batch(&d, win, B, T, in2, tg2);
    assert_true(memcmp(in, in2, sizeof in) != 0);
    data_seek(&d, 0);
    data_batch(&d, win, B, T, in2, tg2);
    assert_memory_equal(in, in2, sizeof in);
    assert_memory_equal(tg, tg2, sizeof tg);
    /* another seed, other windows */
    DataSource e;
    data_synthetic(&e, 50, 8, (size_t)T + 1, 0);
    data_batch(&e, win, B, T, in2, tg2);
    assert_true(memcmp(in, in2, sizeof in) != 0);
    /* a finite source ends */
    DataSource f;
    data_synthetic(&f, 50, 7, (size_t)T + 1, 6);
    assert_int_equal(data_batch(&f, win, B, T, in2, tg2), 4);
    assert_int_equal(data_batch(&f, win, B, T, in2, tg2), 2);
    assert_int_equal(data_batch(&f, win, B, T, in2, tg2), 0);
    data_free(&d);
    data_free(&e);
    data_free(&f);
}

static void test_ckpt_roundtrip(void **state)
{
    char path[] = "/tmp/test_ckpt.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    GptConfig cfg = { .L = 1, .C = 8, .NH = 2, .T = 4, .V = 10 };
    Gpt m, r;
    gpt_init(&m, &cfg);
    gpt_init_weights(&m, 3, 0.1f);
    gpt_alloc_train(&m);
    for (size_t i = 0; i < m.nparams; i++) {
        m.m_memory[i] = (float)i;
        m.v_memory[i] = 0.5f * i;
    }
    CkptInfo in = { .step = 17,
                    .seed = 99,
                    .data_pos = 68,
                    .data_fp = 0x1234,
                    .has_opt = 1,
                    .lr = 3e-4,
                    .min_lr = 3e-5,
                    .wd = 0.1,
                    .clip = 1,
                    .warmup = 5,
                    .steps = 100,
                    .batch = 4,
                    .accum = 2 };
    assert_int_equal(ckpt_save(path, &m, &in), 0);
    CkptInfo out;
    assert_int_equal(ckpt_load(path, &r, &out, 1), 0);
    assert_int_equal(out.step, 17);
    assert_int_equal(out.seed, 99);
    assert_int_equal(out.data_pos, 68);
    assert_int_equal(out.data_fp, 0x1234);
    assert_int_equal(out.batch, 4);
    assert_int_equal(out.accum, 2);
    assert_true(out.lr == 3e-4 && out.warmup == 5 && out.steps == 100);
    assert_memory_equal(&out.cfg, &cfg, sizeof cfg);
    assert_memory_equal(r.params_memory, m.params_memory, m.nparams * sizeof(float));
    assert_memory_equal(r.m_memory, m.m_memory, m.nparams * sizeof(float));
    assert_memory_equal(r.v_memory, m.v_memory, m.nparams * sizeof(float));
    gpt_free(&r);

    /* flip one payload byte */
    FILE *f = fopen(path, "r+b");
    fseek(f, CKPT_HEADER_BYTES + 10, SEEK_SET);
    int c = fgetc(f);
    fseek(f, CKPT_HEADER_BYTES + 10, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    assert_int_equal(ckpt_load(path, &r, &out, 1), -2);
    /* truncate */
    assert_int_equal(truncate(path, CKPT_HEADER_BYTES + 8), 0);
    assert_int_equal(ckpt_load(path, &r, &out, 1), -2);
    unlink(path);
    assert_int_equal(ckpt_load(path, &r, &out, 1), -1);
    gpt_free(&m);
}

/* Rewrite the header of the checkpoint at path: version, offset 136, header checksum. */
static void ckpt_set_version(const char *path, uint32_t version, uint64_t at136)
{
    unsigned char h[CKPT_HEADER_BYTES];
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fread(h, 1, sizeof h, f), sizeof h);
    le_put32(h + 8, version);
    le_put64(h + 136, at136);
    le_put64(h + 248, hash64(h, 248));
    rewind(f);
    assert_int_equal(fwrite(h, 1, sizeof h, f), sizeof h);
    fclose(f);
}

static void test_ckpt_versions(void **state)
{
    char path[] = "/tmp/test_ckpt.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    GptConfig cfg = { .L = 1, .C = 8, .NH = 2, .T = 4, .V = 10 };
    Gpt m, r;
    gpt_init(&m, &cfg);
    gpt_init_weights(&m, 3, 0.1f);
    CkptInfo in = { .data_fp = 0x1234, .tok_fp = 0xabcdef0123456789ull, .steps = 1 };
    assert_int_equal(ckpt_save(path, &m, &in), 0);
    CkptInfo out;
    assert_int_equal(ckpt_read_info(path, &out), 0);
    assert_int_equal(out.version, CKPT_VERSION);
    assert_true(out.tok_fp == 0xabcdef0123456789ull && out.data_fp == 0x1234);
    ckpt_set_version(path, 1, 0);
    assert_int_equal(ckpt_load(path, &r, &out, 0), 0);
    assert_int_equal(out.version, 1);
    assert_true(out.tok_fp == 0 && out.data_fp == 0x1234);
    assert_memory_equal(r.params_memory, m.params_memory, m.nparams * sizeof(float));
    gpt_free(&r);
    ckpt_set_version(path, 2, 0xabcdef0123456789ull);
    assert_int_equal(ckpt_load(path, &r, &out, 0), 0);
    assert_int_equal(out.version, 2);
    assert_true(out.tok_fp == 0xabcdef0123456789ull && !out.lora_rank && !r.lora);
    assert_memory_equal(r.params_memory, m.params_memory, m.nparams * sizeof(float));
    gpt_free(&r);
    ckpt_set_version(path, CKPT_VERSION + 1, 0);
    assert_int_equal(ckpt_read_info(path, &out), -2);
    unlink(path);
    gpt_free(&m);
}

/* Check data_mask(np, nt) against the window: scored targets are the window tokens [np, nt). */
static void check_mask(uint32_t np, uint32_t nt, int T)
{
    uint32_t w[33], in[32], tg[32];
    float mask[32];
    assert_true(T <= 32 && nt <= (uint32_t)T + 1);
    for (int i = 0; i <= T; i++) w[i] = i < (int)nt ? (i < (int)np ? 1000 : 2000) + i : 7;
    if (nt > np && nt <= (uint32_t)T) w[nt - 1] = 7; /* the end-of-text, then padding */
    data_shift(w, 1, T, in, tg);
    int n = data_mask(np, nt, T, mask), cnt = 0;
    for (int t = 0; t < T; t++) {
        int is_response = tg[t] >= 2000 || (t + 1 == (int)nt - 1 && nt <= (uint32_t)T);
        int want = (uint32_t)(t + 1) >= np && (uint32_t)(t + 1) < nt;
        assert_true(mask[t] == (want ? 1.0f : 0.0f));
        if (np > 0) assert_int_equal(want, is_response);
        cnt += want;
    }
    assert_int_equal(n, cnt);
}

static void test_example_mask(void **state)
{
    float mask[12];
    /* prompt 4 tokens, response 3 + end-of-text, 4 of padding: targets 3..6 */
    assert_int_equal(data_mask(4, 8, 11, mask), 4);
    for (int t = 0; t < 11; t++) assert_true(mask[t] == (t >= 3 && t <= 6 ? 1.0f : 0.0f));
    /* a plain document (prompt 0) of 5 tokens: targets 0..3 */
    assert_int_equal(data_mask(0, 5, 11, mask), 4);
    for (int t = 0; t < 11; t++) assert_true(mask[t] == (t <= 3 ? 1.0f : 0.0f));
    /* truncated: the window is all example, no end-of-text: targets np-1 .. T-1 */
    assert_int_equal(data_mask(6, 12, 11, mask), 6);
    for (int t = 0; t < 11; t++) assert_true(mask[t] == (t >= 5 ? 1.0f : 0.0f));
    check_mask(4, 8, 11);
    check_mask(0, 5, 11);
    check_mask(6, 12, 11);
    check_mask(10, 12, 11);
    check_mask(1, 2, 31);
    /* a source of windows (synthetic here): every target scored */
    DataSource d;
    uint32_t win[24], in[22], tg[22];
    float m2[22];
    data_synthetic(&d, 40, 3, 12, 0);
    assert_int_equal(data_batch_mask(&d, win, 2, 11, in, tg, m2), 2);
    for (int i = 0; i < 22; i++) assert_true(m2[i] == 1.0f);
    data_free(&d);
}

int main(int argc, char **argv)
{
    (void)argc;
    blasenv_setup(argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_shifted), cmocka_unit_test(test_synthetic),
        cmocka_unit_test(test_ckpt_roundtrip), cmocka_unit_test(test_ckpt_versions),
        cmocka_unit_test(test_example_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
