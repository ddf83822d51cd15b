// SPDX-License-Identifier: MIT
/*
** fuzz_bpe.c: libFuzzer target for the tokenizer.json loader (tokenize/bpe.h bpe_load_mem),
** which every stage after cm-tokenize runs on a file the user names or a token stream carries.
** fuzz-needs: tokenize
**
** Input: a candidate tokenizer.json. When it loads, a fixed text (code, a special token,
** multi-byte UTF-8) is encoded twice and decoded. Properties: a refused file leaves a message
** naming it; encoding is deterministic; every id is below bpe_vocab_size; the eot id (if any)
** is below it too; decoding what was encoded succeeds.
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "json.h"
#include "tokenize/bpe.h"
#include "fuzz.h"

static const char sample[] =
    "import numpy as np\n\nx = np.zeros((3, 4))  # caf\xc3\xa9 \xf0\x9f\x90\x8d"
    "<|endoftext|>def f():\n\treturn 1\r\n   ";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    Bpe *b = bpe_load_mem((const char *)data, size, "fuzz.json", err, sizeof err);
    if (!b) {
        FUZZ_ASSERT(strncmp(err, "fuzz.json: ", 11) == 0);
        return 0;
    }
    uint32_t V = bpe_vocab_size(b);
    FUZZ_ASSERT(V > 0);
    FUZZ_ASSERT(bpe_eot_id(b) < (int64_t)V);
    uint32_t *ids = NULL, *ids2 = NULL;
    size_t n = 0, cap = 0, n2 = 0, cap2 = 0;
    int rc = bpe_encode(b, sample, sizeof sample - 1, &ids, &n, &cap);
    int rc2 = bpe_encode(b, sample, sizeof sample - 1, &ids2, &n2, &cap2);
    FUZZ_ASSERT(rc == rc2);
    if (rc == 0) {
        FUZZ_ASSERT(n == n2 && (n == 0 || memcmp(ids, ids2, n * sizeof *ids) == 0));
        for (size_t i = 0; i < n; i++) FUZZ_ASSERT(ids[i] < V);
        Buf out = { 0 };
        FUZZ_ASSERT(bpe_decode(b, ids, n, &out) == 0);
        buf_free(&out);
    }
    free(ids);
    free(ids2);
    bpe_free(b);
    return 0;
}

#ifdef FUZZ_SEEDS
/* Append `"TOKEN":ID` for the bytes p[0..n) in the byte-to-unicode alphabet. */
static void vocab_entry(Buf *j, const char *p, size_t n, int id, int *first)
{
    Buf t = { 0 };
    bpe_bytes_to_chars((const unsigned char *)p, n, &t);
    if (!*first) buf_addc(j, ',');
    *first = 0;
    json_escape(j, t.buf, t.len);
    buf_addf(j, ":%d", id);
    buf_free(&t);
}

/* A byte-level tokenizer.json: 256 byte tokens, a few merges, optional added tokens. */
static void make_tokenizer(Buf *j, int with_added, int pair_merges)
{
    static const char *const merges[][2] = {
        { "i", "m" }, { "im", "p" }, { "imp", "o" }, { "n", "p" },
        { " ", "n" }, { "r", "t" },  { " n", "p" },
    };
    int nm = (int)(sizeof merges / sizeof merges[0]);
    int first = 1, id = 0;
    buf_adds(j, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[");
    if (with_added)
        buf_adds(j,
                 "{\"id\":263,\"content\":\"<|endoftext|>\",\"single_word\":false,"
                 "\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}");
    buf_adds(j,
             "],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\","
             "\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true},"
             "\"post_processor\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
             "\"trim_offsets\":false,\"use_regex\":true},\"decoder\":{\"type\":\"ByteLevel\","
             "\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},"
             "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
             "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,"
             "\"fuse_unk\":false,\"byte_fallback\":false,\"vocab\":{");
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        vocab_entry(j, &ch, 1, id++, &first);
    }
    for (int i = 0; i < nm; i++) {
        char m[16];
        snprintf(m, sizeof m, "%s%s", merges[i][0], merges[i][1]);
        vocab_entry(j, m, strlen(m), id++, &first);
    }
    buf_adds(j, "},\"merges\":[");
    for (int i = 0; i < nm; i++) {
        Buf l = { 0 }, r = { 0 };
        bpe_bytes_to_chars((const unsigned char *)merges[i][0], strlen(merges[i][0]), &l);
        bpe_bytes_to_chars((const unsigned char *)merges[i][1], strlen(merges[i][1]), &r);
        if (i) buf_addc(j, ',');
        if (pair_merges) {
            buf_addc(j, '[');
            json_escape(j, l.buf, l.len);
            buf_addc(j, ',');
            json_escape(j, r.buf, r.len);
            buf_addc(j, ']');
        } else {
            Buf s = { 0 };
            buf_add(&s, l.buf, l.len);
            buf_addc(&s, ' ');
            buf_add(&s, r.buf, r.len);
            json_escape(j, s.buf, s.len);
            buf_free(&s);
        }
        buf_free(&l);
        buf_free(&r);
    }
    buf_adds(j, "]}}");
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    const char *d = argv[1];
    Buf j = { 0 };
    make_tokenizer(&j, 1, 0);
    seed_write(d, "bytelevel-added", j.buf, j.len);
    buf_reset(&j);
    make_tokenizer(&j, 0, 1);
    seed_write(d, "bytelevel-pairs", j.buf, j.len);
    buf_free(&j);
    seed_str(d, "tiny",
             "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},"
             "\"merges\":[\"a b\"]},\"pre_tokenizer\":{\"type\":\"ByteLevel\","
             "\"add_prefix_space\":false,\"use_regex\":true},\"added_tokens\":[]}");
    seed_str(d, "split-seq",
             "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":"
             "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
             "\"'s|'t| ?\\\\p{L}+| ?\\\\p{N}+\"},\"behavior\":\"Isolated\",\"invert\":false},"
             "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]}}");
    return 0;
}
#endif
