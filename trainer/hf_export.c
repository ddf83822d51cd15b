// SPDX-License-Identifier: MIT
/*
** hf_export.c: write a cm-train model as a Hugging Face transformers GPT-2 directory:
** model.safetensors (GPT2LMHeadModel's names, Conv1D weights (in, out), the LM head tied to
** transformer.wte.weight and so not stored, as save_pretrained does), config.json,
** generation_config.json, and the tokenizer: tokenizer.json as it is, tokenizer_config.json and
** special_tokens_map.json naming the end-of-text token.
*/
#include "trainer/interchange.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"                /* defines: error, Buf, write_all, exit statuses */
#include "atomic.h"              /* defines: atomic_write_file */
#include "json.h"                /* defines: json_escape */
#include "tokenize/bpe.h"        /* defines: bpe_load_mem, bpe_eot_id, bpe_token_bytes */
#include "trainer/safetensors.h" /* defines: StEntry, st_header */

/* The dtypes of --dtype for hf, with torch's names. */
static const struct {
    const char *name;
    int st;
    const char *torch;
} hf_dtypes[] = {
    { "f32", ST_F32, "float32" },
    { "bf16", ST_BF16, "bfloat16" },
    { "f16", ST_F16, "float16" },
};

/* "DIR/NAME" (malloc'd). */
static char *join(const char *dir, const char *name)
{
    Buf b = { 0 };
    buf_addf(&b, "%s/%s", dir, name);
    return buf_detach(&b, NULL);
}

/*
** model.safetensors: the header, then every tensor in transformers' layout and dtype, encoded
** straight into the writer's chunks (bulkfile.h). Returns the bytes written, or 0 after a
** message.
*/
static uint64_t write_weights(const Gpt *m, int dtype, const char *path)
{
    int n = ix_tensor_count(&m->cfg);
    StEntry *e = xcalloc((size_t)n, sizeof *e);
    IxTensor *t = xcalloc((size_t)n, sizeof *t);
    char(*names)[80] = xcalloc((size_t)n, sizeof *names);
    size_t most = 0, es = (size_t)st_dtype_size(dtype);
    for (int k = 0; k < n; k++) {
        ix_tensor(m, k, &t[k]);
        snprintf(names[k], sizeof names[k], "transformer.%s", t[k].hf);
        e[k].name = names[k];
        e[k].dtype = dtype;
        e[k].ndim = t[k].is_vector ? 1 : 2;
        e[k].shape[0] = t[k].transpose ? t[k].cols : t[k].rows;
        e[k].shape[1] = t[k].transpose ? t[k].rows : t[k].cols;
        if (t[k].transpose && t[k].rows * t[k].cols > most) most = t[k].rows * t[k].cols;
    }
    Buf h = { 0 };
    st_header(&h, e, n, "{\"format\":\"pt\"}");
    float *f32 = xmalloc((most ? most : 1) * sizeof(float)); /* a transposed tensor */
    uint64_t total = h.len;
    BulkFile bf;
    int rc = bulk_open(&bf, path, 0, 0);
    if (rc == 0) {
        rc = bulk_write(&bf, h.buf, h.len);
        for (int k = 0; k < n && rc == 0; k++) {
            size_t cnt = t[k].rows * t[k].cols;
            if (t[k].transpose) ix_to_hf_layout(&t[k], f32);
            rc = ix_write_values(&bf, t[k].transpose ? f32 : t[k].data, cnt, 1, es,
                                 ix_st_encoder(dtype));
            total += cnt * es;
        }
        rc = bulk_flush(&bf, NULL); /* reports a failed write; frees bf then */
        if (rc == 0) rc = bulk_close(&bf, NULL, 0);
    }
    buf_free(&h);
    free(f32);
    free(names);
    free(t);
    free(e);
    return rc == 0 ? total : 0;
}

/* Write text into DIR/NAME atomically; 0 or CM_EIO. */
static int write_text(const char *dir, const char *name, const Buf *b)
{
    char *p = join(dir, name);
    int rc = atomic_write_file(p, b->buf, b->len) == 0 ? 0 : CM_EIO;
    free(p);
    return rc;
}

/*
** tokenizer.json (as given), tokenizer_config.json and special_tokens_map.json.
*/
static int write_tokenizer(const char *dir, const char *tok, size_t tok_len, const Bpe *bpe, int T)
{
    Buf j = { 0 }, eot = { 0 }, cfg = { 0 }, map = { 0 };
    int64_t id = bpe_eot_id(bpe);
    size_t n = 0;
    const char *s = id >= 0 ? bpe_token_bytes(bpe, (uint32_t)id, &n) : NULL;
    if (s)
        json_escape(&eot, s, n);
    else
        buf_adds(&eot, "null");
    buf_add(&j, tok, tok_len);
    buf_addf(&cfg,
             "{\n  \"tokenizer_class\": \"GPT2TokenizerFast\",\n  \"bos_token\": %s,\n"
             "  \"eos_token\": %s,\n  \"unk_token\": %s,\n  \"model_max_length\": %d,\n"
             "  \"add_prefix_space\": false,\n  \"add_bos_token\": false,\n"
             "  \"clean_up_tokenization_spaces\": false\n}\n",
             eot.buf, eot.buf, eot.buf, T);
    buf_addf(&map, "{\n  \"bos_token\": %s,\n  \"eos_token\": %s,\n  \"unk_token\": %s\n}\n",
             eot.buf, eot.buf, eot.buf);
    int rc = write_text(dir, "tokenizer.json", &j);
    if (rc == 0) rc = write_text(dir, "tokenizer_config.json", &cfg);
    if (rc == 0) rc = write_text(dir, "special_tokens_map.json", &map);
    buf_free(&j);
    buf_free(&eot);
    buf_free(&cfg);
    buf_free(&map);
    return rc;
}

/* The tokenizer, loaded to learn its end-of-text token and checked against the model. */
static int load_tokenizer(const char *tok, size_t tok_len, int V, Bpe **out)
{
    char err[1024];
    *out = bpe_load_mem(tok, tok_len, "tokenizer.json", err, sizeof err);
    if (!*out) return error("%s", err), CM_EFORMAT;
    if ((int64_t)bpe_vocab_size(*out) > V) {
        error("tokenizer.json: %u tokens, more than the model's vocabulary of %d",
              bpe_vocab_size(*out), V);
        bpe_free(*out);
        *out = NULL;
        return CM_EFORMAT;
    }
    return 0;
}

int hf_export(const Gpt *m, const char *tok, size_t tok_len, const char *dtype, const char *dir,
              int quiet)
{
    int d = -1;
    for (size_t i = 0; i < sizeof hf_dtypes / sizeof hf_dtypes[0]; i++)
        if (strcmp(dtype, hf_dtypes[i].name) == 0) d = (int)i;
    if (d < 0) return error("--dtype %s: the hf format takes f32, bf16 or f16", dtype), CM_EUSAGE;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return error("cannot create '%s': %s", dir, strerror(errno)), CM_EIO;
    Bpe *bpe = NULL;
    int rc = tok ? load_tokenizer(tok, tok_len, m->cfg.V, &bpe) : 0;
    if (rc) return rc;
    double t0 = now_sec();
    char *wpath = join(dir, "model.safetensors");
    uint64_t bytes = write_weights(m, hf_dtypes[d].st, wpath);
    free(wpath);
    if (bytes == 0) rc = CM_EIO;
    int64_t eot = bpe ? bpe_eot_id(bpe) : -1;
    Buf cfg = { 0 }, gen = { 0 };
    hf_config_json(&cfg, &m->cfg, eot, hf_dtypes[d].torch);
    if (eot >= 0)
        buf_addf(&gen, "{\n  \"bos_token_id\": %lld,\n  \"eos_token_id\": %lld\n}\n",
                 (long long)eot, (long long)eot);
    else
        buf_adds(&gen, "{}\n");
    if (rc == 0) rc = write_text(dir, "config.json", &cfg);
    if (rc == 0) rc = write_text(dir, "generation_config.json", &gen);
    if (rc == 0 && bpe) rc = write_tokenizer(dir, tok, tok_len, bpe, m->cfg.T);
    if (rc == 0 && !quiet)
        fprintf(stderr, "cm-train export: %s: %d tensors (%s), %.1f MB of weights%s, %.2f s\n", dir,
                ix_tensor_count(&m->cfg), dtype, bytes / 1e6,
                bpe ? ", tokenizer" : ", no tokenizer", now_sec() - t0);
    buf_free(&cfg);
    buf_free(&gen);
    if (bpe) bpe_free(bpe);
    return rc;
}
