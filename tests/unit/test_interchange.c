// SPDX-License-Identifier: MIT
/*
** test_interchange.c: the pieces of cm-train's model interchange. Test plan:
**   1. f16: every bit pattern survives f16 -> f32 -> f16; f32 -> f16 is the nearest value,
**      ties to even, against a search over all f16 values (edges: subnormals, 65504, 65520);
**   2. bf16: f32 -> bf16 is the nearest, ties to even; bf16 -> f32 -> bf16 is the identity;
**   3. Q8_0: the scale is max|x|/127 as f16, each value within half a step, blocks of 34 bytes;
**   4. GGUF: what the writer writes the reader reads back (every metadata kind, tensor shapes,
**      types, aligned offsets); every truncation of the file is refused, never read past;
**   5. safetensors: the header writer and the reader agree; every truncation is refused;
**   6. config.json written by the export parses back to the same shape; the tensor table has
**      transformers' names and its transposition is undone by the import's;
**   7. the blocked transposition equals the plain one on shapes that are and are not multiples
**      of its 8 x 8 and 32 x 32 blocks;
**   8. ix_write_values: values encoded straight into the writer's chunks, with units of 3 bytes
**      after a 5-byte head so that some straddle two chunks, give the bytes of encoding all of
**      them in one buffer.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "le.h"
#include "trainer/gguf.h"
#include "trainer/half.h"
#include "trainer/interchange.h"
#include "trainer/safetensors.h"

/* Send stderr to /dev/null (on) or back (off): the refusals below print one message each. */
static void quiet_stderr(int on)
{
    static int saved = -1;
    fflush(stderr);
    if (on) {
        saved = dup(2);
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        close(fd);
    } else if (saved >= 0) {
        dup2(saved, 2);
        close(saved);
        saved = -1;
    }
}

/* The f16 nearest to x (x finite, >= 0), ties to even: a binary search over the finite
** positive f16 values, which increase with their bit patterns. */
static uint16_t f16_reference(double x)
{
    if (x >= 65520.0) return 0x7c00;
    unsigned lo = 0, hi = 0x7bff;
    while (lo < hi) { /* largest h with value(h) <= x */
        unsigned mid = (lo + hi + 1) / 2;
        if ((double)f32_from_f16((uint16_t)mid) <= x)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (lo == 0x7bff) return 0x7bff;
    double a = x - f32_from_f16((uint16_t)lo), b = f32_from_f16((uint16_t)(lo + 1)) - x;
    if (a < b || (a == b && !(lo & 1))) return (uint16_t)lo;
    return (uint16_t)(lo + 1);
}

static void test_f16(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = f32_from_f16((uint16_t)h);
        if (isnan(f)) {
            assert_true(isnan(f32_from_f16(f16_from_f32(f))));
            continue;
        }
        assert_int_equal(f16_from_f32(f), h);
    }
    const float edges[] = { 0.0f,           5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f,
                            8.940697e-08f,  6.1035156e-05f, 6.1035152e-05f, 1.0f,
                            1.00048828125f, 1.00146484375f, 65504.0f,       65519.99f,
                            65520.0f,       1e10f,          3.14159265f };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        assert_int_equal(f16_from_f32(edges[i]), f16_reference(edges[i]));
        assert_int_equal(f16_from_f32(-edges[i]), 0x8000 | f16_reference(edges[i]));
    }
    uint64_t s = 7;
    for (int i = 0; i < 200000; i++) {
        uint32_t bits = (uint32_t)splitmix64(&s) & 0x7fffffffu;
        bits = (bits % (0x47800000u - 0x33000000u)) + 0x33000000u; /* 2^-25 .. 65536 */
        float f = half_bits_f32(bits);
        assert_int_equal(f16_from_f32(f), f16_reference(f));
    }
    assert_int_equal(f16_from_f32(INFINITY), 0x7c00);
    assert_true(isnan(f32_from_f16(f16_from_f32(NAN))));
}

static void test_bf16(void **state)
{
    (void)state;
    for (uint32_t b = 0; b < 0x10000; b++) {
        float f = f32_from_bf16((uint16_t)b);
        if (!isnan(f)) assert_int_equal(bf16_from_f32(f), b);
    }
    uint64_t s = 11;
    for (int i = 0; i < 200000; i++) {
        uint32_t bits = (uint32_t)splitmix64(&s) % 0x7f000000u;
        float f = half_bits_f32(bits);
        uint16_t lo = (uint16_t)(bits >> 16), got = bf16_from_f32(f);
        double a = (double)f - f32_from_bf16(lo), c = f32_from_bf16((uint16_t)(lo + 1)) - (double)f;
        uint16_t want = (a < c || (a == c && !(lo & 1))) ? lo : (uint16_t)(lo + 1);
        assert_int_equal(got, want);
    }
}

static void test_q8_0(void **state)
{
    (void)state;
    float x[64], y[64];
    unsigned char q[2 * GGML_Q8_0_BYTES];
    uint64_t s = 3;
    for (int i = 0; i < 64; i++) x[i] = (float)((int64_t)(splitmix64(&s) % 2001) - 1000) / 777.0f;
    for (int i = 32; i < 64; i++) x[i] = 0.0f;
    gguf_quantize_q8_0(x, 64, q);
    gguf_dequantize_q8_0(q, 64, y);
    float amax = 0;
    for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
    float d = f32_from_f16(le_get16(q));
    assert_int_equal(le_get16(q), f16_from_f32(amax / 127.0f));
    for (int i = 0; i < 32; i++) assert_true(fabsf(x[i] - y[i]) <= 0.5f * d + 1e-3f * amax);
    for (int i = 32; i < 64; i++) assert_true(y[i] == 0.0f);
    uint64_t ne[2] = { 64, 3 }, bad[2] = { 48, 3 };
    assert_int_equal(gguf_tensor_bytes(GGML_Q8_0, 2, ne), 3 * 2 * GGML_Q8_0_BYTES);
    assert_int_equal(gguf_tensor_bytes(GGML_Q8_0, 2, bad), 0);
    assert_int_equal(gguf_tensor_bytes(GGML_F16, 2, bad), 48 * 3 * 2);
}

/* A small GGUF: every metadata kind the export writes, three tensors. */
static void gguf_sample(Buf *file)
{
    GgufWriter w;
    gguf_writer_init(&w);
    const char *toks[3] = { "<|endoftext|>", "\xc4\xa0t", "he" };
    size_t lens[3] = { 13, 3, 2 };
    int32_t types[3] = { 3, 1, 1 };
    gguf_kv_str(&w, "general.architecture", "gpt2");
    gguf_kv_u32(&w, "gpt2.block_count", 2);
    gguf_kv_f32(&w, "gpt2.attention.layer_norm_epsilon", 1e-5f);
    gguf_kv_bool(&w, "tokenizer.ggml.add_bos_token", 0);
    gguf_kv_str_array(&w, "tokenizer.ggml.tokens", toks, lens, 3);
    gguf_kv_i32_array(&w, "tokenizer.ggml.token_type", types, 3);
    uint64_t a[1] = { 5 }, b[2] = { 32, 2 }, c[2] = { 7, 3 };
    assert_int_equal(gguf_add_tensor(&w, "a", GGML_F32, 1, a), 0);
    assert_int_equal(gguf_add_tensor(&w, "b", GGML_Q8_0, 2, b), 32);
    assert_int_equal(gguf_add_tensor(&w, "c", GGML_F16, 2, c), 32 + 96);
    gguf_header(&w, file);
    assert_int_equal(file->len % GGUF_ALIGN, 0);
    static const uint64_t bytes[3] = { 20, 68, 42 };
    for (int i = 0; i < 3; i++) {
        for (uint64_t k = 0; k < bytes[i]; k++) buf_addc(file, (char)(i + 1));
        for (size_t k = 0; k < gguf_padding(bytes[i]); k++) buf_addc(file, 0);
    }
    gguf_writer_free(&w);
}

static void test_gguf_roundtrip(void **state)
{
    (void)state;
    Buf f = { 0 };
    gguf_sample(&f);
    GgufFile g;
    assert_int_equal(gguf_parse(&g, "sample.gguf", f.buf, f.len), 0);
    assert_int_equal(g.version, 3);
    assert_int_equal(g.n_kv, 6);
    assert_int_equal(g.n_tensors, 3);
    const char *s;
    size_t n;
    uint32_t u;
    assert_int_equal(gguf_get_str(&g, "general.architecture", &s, &n), 0);
    assert_true(n == 4 && memcmp(s, "gpt2", 4) == 0);
    assert_int_equal(gguf_get_u32(&g, "gpt2.block_count", &u), 0);
    assert_int_equal(u, 2);
    const GgufKv *kv = gguf_find_kv(&g, "tokenizer.ggml.tokens");
    assert_non_null(kv);
    assert_int_equal(kv->type, GGUF_ARR);
    assert_int_equal(kv->elem, GGUF_STR);
    assert_int_equal(kv->count, 3);
    gguf_array_str(kv, 1, &s, &n);
    assert_true(n == 3 && memcmp(s, "\xc4\xa0t", 3) == 0);
    kv = gguf_find_kv(&g, "gpt2.attention.layer_norm_epsilon");
    assert_true(kv && kv->type == GGUF_F32 && le_getf32(kv->val) == 1e-5f);
    const GgufTensor *t = gguf_find_tensor(&g, "c");
    assert_non_null(t);
    assert_true(t->type == GGML_F16 && t->ndim == 2 && t->ne[0] == 7 && t->ne[1] == 3);
    assert_int_equal(g.base[g.data_off + t->offset], 3);
    assert_int_equal(g.data_off % 32, 0);
    gguf_close(&g);
    /* every truncation into the data is refused (the last tensor's padding may go) */
    size_t end = f.len - gguf_padding(42);
    quiet_stderr(1);
    size_t refused = 0;
    for (size_t cut = 0; cut < f.len; cut++) {
        int rc = gguf_parse(&g, "cut.gguf", f.buf, cut);
        if (rc == 0) gguf_close(&g);
        refused += cut < end ? rc == -2 : rc == 0;
    }
    quiet_stderr(0);
    assert_int_equal(refused, f.len);
    buf_free(&f);
}

static void test_safetensors_roundtrip(void **state)
{
    (void)state;
    StEntry e[3] = {
        { "transformer.wte.weight", ST_F32, 2, { 3, 4 } },
        { "h.0.attn.c_attn.bias", ST_BF16, 1, { 6 } },
        { "odd \"name\"", ST_F16, 0, { 0 } },
    };
    Buf f = { 0 };
    st_header(&f, e, 3, "{\"format\":\"pt\"}");
    assert_int_equal(f.len % 8, 0);
    for (int i = 0; i < 12; i++) {
        unsigned char b[4];
        le_putf32(b, (float)i);
        buf_add(&f, b, 4);
    }
    for (int i = 0; i < 6; i++) {
        unsigned char b[2];
        le_put16(b, bf16_from_f32(-1.5f * i));
        buf_add(&f, b, 2);
    }
    {
        unsigned char b[2];
        le_put16(b, f16_from_f32(0.25f));
        buf_add(&f, b, 2);
    }
    StFile s;
    assert_int_equal(st_parse(&s, "m.safetensors", f.buf, f.len), 0);
    assert_int_equal(s.n, 3);
    const StTensor *t = st_find(&s, "h.0.attn.c_attn.bias");
    assert_non_null(t);
    float v[12];
    assert_int_equal(st_read_f32(&s, t, v), 0);
    for (int i = 0; i < 6; i++) assert_true(v[i] == -1.5f * i);
    t = st_find(&s, "transformer.wte.weight");
    assert_true(t && t->ndim == 2 && t->shape[1] == 4 && st_numel(t) == 12);
    assert_int_equal(st_read_f32(&s, t, v), 0);
    assert_true(v[11] == 11.0f);
    t = st_find(&s, "odd \"name\"");
    assert_true(t && t->ndim == 0 && st_numel(t) == 1);
    assert_int_equal(st_read_f32(&s, t, v), 0);
    assert_true(v[0] == 0.25f);
    st_close(&s);
    quiet_stderr(1);
    size_t refused = 0;
    for (size_t cut = 0; cut < f.len; cut++)
        refused += st_parse(&s, "cut.safetensors", f.buf, cut) == -2;
    quiet_stderr(0);
    assert_int_equal(refused, f.len);
    buf_free(&f);
}

static void test_config_and_table(void **state)
{
    (void)state;
    GptConfig cfg = { .L = 3, .C = 48, .NH = 6, .T = 40, .V = 517 }, back;
    Buf j = { 0 };
    hf_config_json(&j, &cfg, 516, "float32");
    assert_int_equal(hf_config_parse(j.buf, j.len, "config.json", &back), 0);
    assert_memory_equal(&cfg, &back, sizeof cfg);
    buf_free(&j);
    const char *bad = "{\"model_type\":\"gpt2\",\"n_embd\":48,\"n_layer\":3,\"n_head\":5,"
                      "\"vocab_size\":517,\"n_positions\":40}";
    assert_int_equal(hf_config_parse(bad, strlen(bad), "bad.json", &back), CM_EFORMAT);

    Gpt m;
    gpt_init(&m, &cfg);
    gpt_init_weights(&m, 5, 0.5f);
    assert_int_equal(ix_tensor_count(&cfg), 2 + 12 * 3 + 2);
    IxTensor t;
    ix_tensor(&m, 2 + 12 * 2 + 2, &t); /* layer 2's c_attn.weight */
    assert_string_equal(t.hf, "h.2.attn.c_attn.weight");
    assert_string_equal(t.gguf, "blk.2.attn_qkv.weight");
    assert_true(t.rows == 144 && t.cols == 48 && t.transpose);
    assert_ptr_equal(t.data, m.params.qkvw + 2 * 144 * 48);
    float *hf = malloc(144 * 48 * sizeof(float)), *again = malloc(144 * 48 * sizeof(float));
    ix_to_hf_layout(&t, hf);
    assert_true(hf[1 * 144 + 7] == t.data[7 * 48 + 1]); /* (in, out) */
    ix_from_hf_layout(&t, hf, again);
    assert_memory_equal(again, t.data, 144 * 48 * sizeof(float));
    ix_tensor(&m, 2 + 12 * 3 + 1, &t);
    assert_string_equal(t.hf, "ln_f.bias");
    assert_true(t.is_vector && t.rows == 48);
    free(hf);
    free(again);
    gpt_free(&m);
}

static void test_transpose_shapes(void **state)
{
    (void)state;
    static const uint64_t shapes[][2] = { { 1, 1 },   { 7, 9 },   { 8, 8 },    { 33, 40 },
                                          { 40, 33 }, { 65, 71 }, { 144, 48 }, { 96, 768 } };
    uint64_t s = 11;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        uint64_t R = shapes[k][0], C = shapes[k][1];
        float *src = malloc(R * C * sizeof(float)), *hf = malloc(R * C * sizeof(float));
        float *back = malloc(R * C * sizeof(float));
        for (uint64_t i = 0; i < R * C; i++) src[i] = (float)(splitmix64(&s) >> 40);
        IxTensor t = { .rows = R, .cols = C, .transpose = 1, .data = src };
        ix_to_hf_layout(&t, hf);
        for (uint64_t r = 0; r < R; r++)
            for (uint64_t c = 0; c < C; c++) assert_true(hf[c * R + r] == src[r * C + c]);
        ix_from_hf_layout(&t, hf, back);
        assert_memory_equal(back, src, R * C * sizeof(float));
        free(src);
        free(hf);
        free(back);
    }
}

/* 2 values -> 3 bytes: the low bytes of each, then their sum's. */
static void enc_pairs(const float *src, size_t n, unsigned char *dst)
{
    for (size_t i = 0; i < n; i += 2, dst += 3) {
        dst[0] = (unsigned char)src[i];
        dst[1] = (unsigned char)src[i + 1];
        dst[2] = (unsigned char)(src[i] + src[i + 1]);
    }
}

static void test_write_values(void **state)
{
    (void)state;
    char dir[] = "/tmp/cm-test-ixwrite.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    size_t n = 2 * (SW_CHUNK + 12345); /* 3 x that / 2 bytes: three chunks and a tail */
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = (float)(i % 251);
    unsigned char *want = malloc(5 + n / 2 * 3);
    memcpy(want, "head!", 5);
    enc_pairs(v, n, want + 5);
    BulkFile b;
    assert_int_equal(bulk_open(&b, path, 0, 0), 0);
    assert_int_equal(bulk_write(&b, "head!", 5), 0);
    assert_int_equal(ix_write_values(&b, v, n, 2, 3, enc_pairs), 0);
    assert_int_equal(bulk_flush(&b, NULL), 0);
    assert_int_equal(bulk_close(&b, NULL, 0), 0);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *got = malloc(5 + n / 2 * 3 + 1);
    assert_int_equal(fread(got, 1, 5 + n / 2 * 3 + 1, f), 5 + n / 2 * 3);
    fclose(f);
    assert_memory_equal(got, want, 5 + n / 2 * 3);
    unlink(path);
    rmdir(dir);
    free(v);
    free(want);
    free(got);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_gguf_roundtrip),
        cmocka_unit_test(test_safetensors_roundtrip),
        cmocka_unit_test(test_config_and_table),
        cmocka_unit_test(test_transpose_shapes),
        cmocka_unit_test(test_write_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
