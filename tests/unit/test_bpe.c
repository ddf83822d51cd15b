// SPDX-License-Identifier: MIT
/*
** test_bpe.c: unit tests of tokenize/bpe.[ch] and tokenize/train.[ch] (cmocka).
**
** Expected values are worked out by hand from the definitions (GPT-2 byte map, GPT-2 split
** regex, lowest-rank-first merging), not copied from the code's output.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "util.h"
#include "hash.h"
#include "tokstream.h"
#include "tokenize/bpe.h"
#include "tokenize/train.h"

/* --- byte map ---------------------------------------------------------------------------- */

static void test_byte_map(void **state)
{
    (void)state;
    uint8_t seen[512] = { 0 };
    for (unsigned b = 0; b < 256; b++) {
        uint32_t c = bpe_byte_char(b);
        assert_true(c < 512);
        assert_int_equal(seen[c], 0); /* a bijection */
        seen[c] = 1;
    }
    assert_int_equal(bpe_byte_char('a'), 'a');
    assert_int_equal(bpe_byte_char(' '), 0x120);  /* 'Ġ' */
    assert_int_equal(bpe_byte_char('\n'), 0x10A); /* 'Ċ' */
    assert_int_equal(bpe_byte_char(0), 0x100);
    assert_int_equal(bpe_byte_char(0xAD), 0x143); /* the last moved byte */
}

/* --- pre-tokenizer ---------------------------------------------------------------------- */

typedef struct {
    char out[1024];
    size_t n;
    int pieces;
} Collect;

static void collect(void *ctx, const char *p, size_t n)
{
    Collect *c = ctx;
    memcpy(c->out + c->n, p, n);
    c->n += n;
    c->out[c->n++] = '|';
    c->pieces++;
}

static void split_is(const char *in, size_t len, const char *want)
{
    BpePretok *p = bpe_pretok_new();
    Collect c = { .n = 0 };
    assert_int_equal(bpe_pretok_split(p, in, len, collect, &c), 0);
    c.out[c.n] = 0;
    assert_string_equal(c.out, want);
    bpe_pretok_free(p);
}

static void test_pretok(void **state)
{
    (void)state;
    split_is("Hello world", 11, "Hello| world|");
    split_is("it's we'll", 10, "it|'s| we|'ll|");
    split_is("x  = 42\n\n    y", 14, "x| | =| 42|\n\n   | y|"); /* \s+(?!\S) leaves one space */
    split_is("a.b(c)", 6, "a|.|b|(|c|)|");
    split_is("   ", 3, "   |");
    split_is("caf\xC3\xA9 123abc", 12, "caf\xC3\xA9| 123|abc|");
    /* invalid UTF-8 is not lost: bytes the regex cannot match become pieces */
    split_is("ab\xFF\xFEz", 5, "ab|\xFF\xFE|z|");
}

typedef struct {
    Buf all;
    Buf marks;
} Cat;

static void cat_piece(void *ctx, const char *p, size_t n)
{
    Cat *c = ctx;
    assert_true(n > 0);
    buf_add(&c->all, p, n);
    buf_addf(&c->marks, "%zu,", c->all.len);
}

/* Both matchers on random bytes: same cuts, and the pieces give back every byte. */
static void test_pretok_fast_vs_pcre2(void **state)
{
    (void)state;
    uint64_t rng = 7;
    static const char *frag[] = {
        "ab",          " c",           "'s",       "  ",   "\n",
        "\xC3\xA9",    "\xE2\x80\xA8", "\xC2\x85", "1",    "\xF0\x9F\x98\x80",
        "\xC3",        "\xED\xA0\x80", "\xFF",     "\x80", "(",
        "\xE1\xA0\x8E"
    };
    BpePretok *f = bpe_pretok_new(), *p = bpe_pretok_new();
    bpe_pretok_use_pcre2(p, 1);
    for (int round = 0; round < 200; round++) {
        Buf t = { 0 };
        int n = 1 + (int)(splitmix64(&rng) % 60);
        for (int i = 0; i < n; i++) {
            if (splitmix64(&rng) % 5 == 0)
                buf_addc(&t, (char)(splitmix64(&rng) & 255));
            else
                buf_adds(&t, frag[splitmix64(&rng) % 16]);
        }
        Cat a = { { 0 }, { 0 } }, b = { { 0 }, { 0 } };
        assert_int_equal(bpe_pretok_split(f, t.buf, t.len, cat_piece, &a), 0);
        assert_int_equal(bpe_pretok_split(p, t.buf, t.len, cat_piece, &b), 0);
        assert_int_equal(a.all.len, t.len);
        assert_memory_equal(a.all.buf, t.buf, t.len);
        assert_string_equal(a.marks.buf, b.marks.buf);
        buf_free(&a.all);
        buf_free(&a.marks);
        buf_free(&b.all);
        buf_free(&b.marks);
        buf_free(&t);
    }
    bpe_pretok_free(f);
    bpe_pretok_free(p);
}

/* --- a hand-made tokenizer ---------------------------------------------------------------- */

/* vocab: bytes a b c d, space as 'Ġ'; merges: "a b" (rank 0), "ab c" (1), "Ġ a" (2) */
static const char small_json[] =
    "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":9,\"content\":\"<|endoftext|>\",\"special\":true}],"
    "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
    "\"trim_offsets\":true,\"use_regex\":true},\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},"
    "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"vocab\":{\"a\":0,\"b\":1,\"c\":2,"
    "\"d\":3,\"\\u0120\":4,\"ab\":5,\"abc\":6,\"\\u0120a\":7},\"merges\":[\"a b\",[\"ab\",\"c\"],\"\\u0120 a\"]}}";

static void test_small_encode(void **state)
{
    (void)state;
    char err[256];
    Bpe *b = bpe_load_mem(small_json, strlen(small_json), "small", err, sizeof err);
    assert_non_null(b);
    assert_int_equal(bpe_vocab_size(b), 10);
    assert_int_equal(bpe_eot_id(b), 9);
    assert_int_equal(bpe_merge_count(b), 3);
    assert_true(bpe_fingerprint(b) == hash64(small_json, strlen(small_json)));
    uint32_t *ids = NULL;
    size_t n = 0, cap = 0;
    /* "abcd" -> ab, then abc: [abc, d]; " abe": 'e' is not in the vocab (dropped), then
    ** Ġ a b: "a b" (rank 0) goes before "Ġ a" (rank 2): [Ġ, ab] */
    assert_int_equal(bpe_encode(b, "abcd abe", 8, &ids, &n, &cap), 0);
    uint32_t want[] = { 6, 3, 4, 5 };
    assert_int_equal(n, 4);
    assert_memory_equal(ids, want, sizeof want);
    /* special token inside the text */
    n = 0;
    assert_int_equal(bpe_encode(b, "ab<|endoftext|>c", 16, &ids, &n, &cap), 0);
    uint32_t want2[] = { 5, 9, 2 };
    assert_int_equal(n, 3);
    assert_memory_equal(ids, want2, sizeof want2);
    Buf out = { 0 };
    assert_int_equal(bpe_decode(b, want, 4, &out), 0);
    assert_int_equal(out.len, 7);
    assert_memory_equal(out.buf, "abcd ab", 7);
    uint32_t badid = 8; /* a hole: no token has id 8 */
    assert_int_equal(bpe_decode(b, &badid, 1, &out), -1);
    badid = 10;
    assert_int_equal(bpe_decode(b, &badid, 1, &out), -1);
    buf_free(&out);
    free(ids);
    bpe_free(b);
}

static void load_fails(const char *json, const char *want)
{
    char err[512] = "";
    Bpe *b = bpe_load_mem(json, strlen(json), "t.json", err, sizeof err);
    assert_null(b);
    if (!strstr(err, want)) fail_msg("error '%s' lacks '%s'", err, want);
}

static void test_load_errors(void **state)
{
    (void)state;
    load_fails("{\"model\":", "t.json: not valid JSON");
    load_fails("[]", "not a JSON object");
    load_fails("{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}",
               "model.type 'Unigram' is not supported");
    load_fails(
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
        "id 0 is given to two tokens");
    load_fails(
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a c\"]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
        "model.merges[0]: token 'c' is not in the vocab");
    load_fails(
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
        "merged token 'ab' is not in the vocab");
    load_fails(
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Whitespace\"}}",
        "pre_tokenizer 'Whitespace' is not supported");
    load_fails(
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],\"continuing_subword_prefix\":\"##\"},\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
        "continuing_subword_prefix is not supported");
    load_fails("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
               "pre_tokenizer null is not supported");
}

/* bpe_load_file_kind says whether the file could not be read (I/O) or was refused (format),
** the difference between exit status 3 and 4, without looking at the message. */
static void test_load_file_kind(void **state)
{
    (void)state;
    char dir[] = "/tmp/cm-test-bpe-XXXXXX", path[64], err[512];
    assert_non_null(mkdtemp(dir));
    BpeLoadErr kind = BPE_LOAD_OK;
    snprintf(path, sizeof path, "%s/none.json", dir);
    assert_null(bpe_load_file_kind(path, err, sizeof err, &kind));
    assert_int_equal(kind, BPE_LOAD_IO);
    assert_non_null(strstr(err, "none.json"));
    kind = BPE_LOAD_OK;
    assert_null(bpe_load_file_kind(dir, err, sizeof err, &kind)); /* read() fails: EISDIR */
    assert_int_equal(kind, BPE_LOAD_IO);
    snprintf(path, sizeof path, "%s/bad.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"model\":", f);
    fclose(f);
    assert_null(bpe_load_file_kind(path, err, sizeof err, &kind));
    assert_int_equal(kind, BPE_LOAD_FORMAT);
    assert_non_null(strstr(err, "not valid JSON"));
    assert_null(bpe_load_file_kind(path, err, sizeof err, NULL)); /* kind is optional */
    assert_null(bpe_load_file(path, err, sizeof err));
    assert_int_equal(truncate(path, (off_t)TS_MAX_JSON + 1), 0); /* sparse: zeros */
    assert_null(bpe_load_file_kind(path, err, sizeof err, &kind));
    assert_int_equal(kind, BPE_LOAD_FORMAT);
    assert_non_null(strstr(err, "larger than 64 MiB"));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(small_json, f);
    fclose(f);
    kind = BPE_LOAD_IO;
    Bpe *b = bpe_load_file_kind(path, err, sizeof err, &kind);
    assert_non_null(b);
    assert_int_equal(kind, BPE_LOAD_OK);
    bpe_free(b);
    unlink(path);
    rmdir(dir);
}

/* A vocab key outside the byte-level alphabet ("中") is kept as UTF-8, and so is a merged key
** holding it: "中" + "Ġ" is the key "中Ġ", not "中" followed by the byte 0x20. */
static void test_load_non_bytelevel_merge(void **state)
{
    (void)state;
    static const char json[] =
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\u4e2d\":0,\"\u0120\":1,\"\u4e2d\u0120\":2,\"\u0120\u4e2d\":3},"
        "\"merges\":[[\"\u4e2d\",\"\u0120\"],\"\u0120 \u4e2d\"]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}";
    char err[256] = "";
    Bpe *b = bpe_load_mem(json, strlen(json), "mixed", err, sizeof err);
    if (!b) fail_msg("%s", err);
    assert_int_equal(bpe_merge_count(b), 2);
    assert_int_equal(bpe_token_id(b, "\xE4\xB8\xAD\xC4\xA0", 5), 2); /* "中Ġ" as UTF-8 */
    assert_int_equal(bpe_token_id(b, " ", 1), 1);                    /* Ġ is the byte 0x20 */
    bpe_free(b);
}

/* --- training then round trip ------------------------------------------------------------- */

static void test_train_roundtrip(void **state)
{
    (void)state;
    uint64_t rng = 42;
    Buf text = { 0 };
    const char *w[] = { "def ",        "return ",          "self", ".x",
                        " = ",         "np.array(",        ")\n",  "    ",
                        "caf\xC3\xA9", "\xF0\x9F\x98\x80", "\r\n", "\t" };
    for (int i = 0; i < 4000; i++) buf_adds(&text, w[splitmix64(&rng) % 12]);
    const char *docs[1] = { text.buf };
    size_t lens[1] = { text.len };
    char *sp[] = { "<|endoftext|>" };
    BpeTrainOpts o = { .vocab_size = 300, .specials = sp, .n_specials = 1, .threads = 2 };
    BpeTrainer *t = bpe_trainer_new(&o);
    assert_int_equal(bpe_trainer_feed(t, docs, lens, 1), 0);
    Buf json = { 0 };
    assert_int_equal(bpe_trainer_finish(t, &json), 0);
    uint64_t nw, pr, nm;
    bpe_trainer_stats(t, &nw, &pr, &nm);
    assert_int_equal(nm, 300 - 257); /* vocab = 1 special + 256 bytes + one token per merge */
    bpe_trainer_free(t);
    char err[256];
    Bpe *b = bpe_load_mem(json.buf, json.len, "trained", err, sizeof err);
    assert_non_null(b);
    assert_int_equal(bpe_vocab_size(b), 300);
    assert_int_equal(bpe_eot_id(b), 0);
    /* every byte value round-trips, including invalid UTF-8 */
    char all[512];
    for (int i = 0; i < 512; i++) all[i] = (char)(splitmix64(&rng) & 255);
    uint32_t *ids = NULL;
    size_t n = 0, cap = 0;
    BpeEncoder *e = bpe_encoder_new(b);
    for (int round = 0; round < 2; round++) { /* second round goes through the cache */
        n = 0;
        assert_int_equal(bpe_encoder_encode(e, text.buf, text.len, &ids, &n, &cap), 0);
        assert_true(n < text.len / 2); /* it compresses */
        Buf back = { 0 };
        assert_int_equal(bpe_decode(b, ids, n, &back), 0);
        assert_int_equal(back.len, text.len);
        assert_memory_equal(back.buf, text.buf, text.len);
        buf_free(&back);
        n = 0;
        assert_int_equal(bpe_encoder_encode(e, all, sizeof all, &ids, &n, &cap), 0);
        assert_int_equal(bpe_decode(b, ids, n, &back), 0);
        assert_int_equal(back.len, sizeof all);
        assert_memory_equal(back.buf, all, sizeof all);
        buf_free(&back);
    }
    bpe_encoder_free(e);
    free(ids);
    bpe_free(b);
    buf_free(&json);
    buf_free(&text);
}

/* The example of Hugging Face's own trainer test (trainer.rs, test_train): with min_frequency 2
** the merges are exactly "r e", "a re", "i s" (the tie at count 2 goes to the smaller pair). */
static void test_train_hf_example(void **state)
{
    (void)state;
    const char *w[] = { "roses", "are", "are", "red", "voilets", "blue",
                        "BERT",  "is",  "is",  "big", "and",     "so" };
    size_t lens[12];
    for (int i = 0; i < 12; i++) lens[i] = strlen(w[i]);
    BpeTrainOpts o = { .vocab_size = 1000, .min_frequency = 2, .threads = 1 };
    BpeTrainer *t = bpe_trainer_new(&o);
    assert_int_equal(bpe_trainer_feed(t, w, lens, 12), 0);
    Buf json = { 0 };
    assert_int_equal(bpe_trainer_finish(t, &json), 0);
    bpe_trainer_free(t);
    char err[256];
    Bpe *b = bpe_load_mem(json.buf, json.len, "hf-example", err, sizeof err);
    assert_non_null(b);
    assert_int_equal(bpe_merge_count(b), 3);
    assert_int_equal(bpe_vocab_size(b), 259);
    assert_int_equal(bpe_token_id(b, "re", 2), 256);
    assert_int_equal(bpe_token_id(b, "are", 3), 257);
    assert_int_equal(bpe_token_id(b, "is", 2), 258);
    assert_int_equal(bpe_eot_id(b), -1);
    assert_non_null(strstr(json.buf, "[\n        \"a\",\n        \"re\"\n      ]"));
    bpe_free(b);
    buf_free(&json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_map),
        cmocka_unit_test(test_pretok),
        cmocka_unit_test(test_pretok_fast_vs_pcre2),
        cmocka_unit_test(test_small_encode),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_file_kind),
        cmocka_unit_test(test_load_non_bytelevel_merge),
        cmocka_unit_test(test_train_roundtrip),
        cmocka_unit_test(test_train_hf_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
