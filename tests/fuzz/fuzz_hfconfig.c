// SPDX-License-Identifier: MIT
/*
** fuzz_hfconfig.c: libFuzzer target for the config.json reader of `cm-train import`
** (trainer/interchange.h hf_config_parse).
** fuzz-needs: trainer tokenize shards
**
** Input: the file's text. Properties: the reader returns 0 or 4 (never crashes); on 0 the shape
** passes gpt_config_check, and the config.json the export writes for it parses back to it.
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "util.h"
#include "trainer/interchange.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (size) memcpy(text, data, size);
    GptConfig cfg, back;
    int rc = hf_config_parse(text, size, "fuzz/config.json", &cfg);
    FUZZ_ASSERT(rc == 0 || rc == CM_EFORMAT);
    if (rc == 0) {
        FUZZ_ASSERT(gpt_config_check(&cfg) == NULL);
        Buf j = { 0 };
        hf_config_json(&j, &cfg, -1, "float32");
        FUZZ_ASSERT(hf_config_parse(j.buf, j.len, "again", &back) == 0);
        FUZZ_ASSERT(memcmp(&cfg, &back, sizeof cfg) == 0);
        buf_free(&j);
    }
    free(text);
    return 0;
}

#ifdef FUZZ_SEEDS
/* Seeds: the export's config.json, and one in the Hub's style (nested values, n_ctx). */
int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    GptConfig cfg = { .L = 12, .C = 768, .NH = 12, .T = 1024, .V = 50257 };
    Buf j = { 0 };
    hf_config_json(&j, &cfg, 50256, "float32");
    seed_write(argv[1], "export", j.buf, j.len);
    buf_free(&j);
    seed_str(argv[1], "hub",
             "{\"activation_function\": \"gelu_new\", \"architectures\": [\"GPT2LMHeadModel\"],"
             " \"attn_pdrop\": 0.1, \"bos_token_id\": 0, \"eos_token_id\": 0,"
             " \"layer_norm_epsilon\": 1e-05, \"model_type\": \"gpt2\", \"n_ctx\": 128,"
             " \"n_embd\": 64, \"n_head\": 4, \"n_inner\": null, \"n_layer\": 2,"
             " \"task_specific_params\": {\"text-generation\": {\"do_sample\": true}},"
             " \"tie_word_embeddings\": false, \"vocab_size\": 300}");
    return 0;
}
#endif
