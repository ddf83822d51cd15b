// SPDX-License-Identifier: MIT
/*
** fuzz_gguf.c: libFuzzer target for the GGUF reader (trainer/gguf.h gguf_parse), which the
** tests use to check what `cm-train export --format gguf` writes.
** fuzz-needs: trainer
**
** Input: the file. Properties: gguf_parse returns 0 or -2 (never crashes); on 0 every tensor's
** data lies inside the buffer at an aligned offset, and every string of every string array can
** be walked without leaving the buffer.
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "util.h"
#include "le.h"
#include "trainer/gguf.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    GgufFile g;
    int rc = gguf_parse(&g, "fuzz.gguf", buf, size);
    FUZZ_ASSERT(rc == 0 || rc == -2);
    if (rc == 0) {
        FUZZ_ASSERT(g.data_off <= size);
        for (uint64_t i = 0; i < g.n_tensors; i++) {
            const GgufTensor *t = &g.t[i];
            FUZZ_ASSERT(t->offset % g.align == 0);
            FUZZ_ASSERT(g.data_off + t->offset + t->bytes <= size);
        }
        for (uint64_t i = 0; i < g.n_kv; i++) {
            const GgufKv *kv = &g.kv[i];
            if (kv->type != GGUF_ARR || kv->elem != GGUF_STR || kv->count == 0) continue;
            const char *s;
            size_t n;
            gguf_array_str(kv, kv->count - 1, &s, &n);
            FUZZ_ASSERT((const unsigned char *)s + n <= buf + size);
        }
        gguf_close(&g);
    }
    free(buf);
    return 0;
}

#ifdef FUZZ_SEEDS
/* Seeds: files made by the writer the export uses. */
int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    for (int k = 0; k < 2; k++) {
        GgufWriter w;
        gguf_writer_init(&w);
        const char *toks[2] = { "<|endoftext|>", "a" };
        size_t lens[2] = { 13, 1 };
        int32_t types[2] = { 3, 1 };
        gguf_kv_str(&w, "general.architecture", "gpt2");
        gguf_kv_u32(&w, "general.alignment", 32);
        gguf_kv_f32(&w, "gpt2.attention.layer_norm_epsilon", 1e-5f);
        gguf_kv_bool(&w, "tokenizer.ggml.add_bos_token", 0);
        gguf_kv_str_array(&w, "tokenizer.ggml.tokens", toks, lens, 2);
        gguf_kv_i32_array(&w, "tokenizer.ggml.token_type", types, 2);
        uint64_t a[1] = { 3 }, b[2] = { 32, 1 + k };
        gguf_add_tensor(&w, "output_norm.weight", GGML_F32, 1, a);
        gguf_add_tensor(&w, "token_embd.weight", k ? GGML_Q8_0 : GGML_F16, 2, b);
        Buf f = { 0 };
        gguf_header(&w, &f);
        for (size_t i = 0; i < (size_t)w.data_bytes; i++) buf_addc(&f, (char)i);
        char name[16];
        snprintf(name, sizeof name, "gguf%d", k);
        seed_write(argv[1], name, f.buf, f.len);
        buf_free(&f);
        gguf_writer_free(&w);
    }
    return 0;
}
#endif
