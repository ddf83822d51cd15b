// SPDX-License-Identifier: MIT
/*
** gguf_export.c: write a cm-train model as a GGUF v3 file for llama.cpp (architecture "gpt2"):
** the gpt2.* hyperparameters, the tokenizer (tokens in tokenizer.json's byte-level spelling,
** their types, the merges, end-of-text as bos and eos, pre-tokenizer "gpt-2", no BOS added),
** norms, biases and the position embedding in F32, the matrices (token embedding, which is
** also the tied output, attn_qkv, attn_output, ffn_up, ffn_down) in F32, F16 or Q8_0. A Q8_0
** matrix whose rows are not a multiple of 32 is written F16 instead (said on stderr).
*/
#include "trainer/interchange.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"         /* defines: error, Buf, write_all, exit statuses */
#include "tokenize/bpe.h" /* defines: bpe_load_mem, bpe_eot_id */
#include "trainer/gguf.h" /* defines: GgufWriter, gguf_* */

/* llama.cpp's token types */
enum { TOK_NORMAL = 1, TOK_CONTROL = 3, TOK_USER_DEFINED = 4, TOK_UNUSED = 5 };

/* The tokenizer as GGUF wants it. */
typedef struct {
    json_t *root;     /* tokenizer.json (the strings below point into it) */
    const char **tok; /* V token strings */
    size_t *tok_len;
    int32_t *type;      /* V token types */
    char **pad;         /* "[PAD<id>]" names of ids the tokenizer does not use */
    const char **merge; /* merges "a b" */
    size_t *merge_len;
    Buf merge_text; /* the merges given as pairs, joined here */
    size_t nmerge;
} GgTok;

static void ggtok_free(GgTok *g, int V)
{
    for (int i = 0; g->pad && i < V; i++) free(g->pad[i]);
    free(g->pad);
    free(g->tok);
    free(g->tok_len);
    free(g->type);
    free(g->merge);
    free(g->merge_len);
    buf_free(&g->merge_text);
    if (g->root) json_decref(g->root);
}

/* Set token id from a string; 0 or CM_EFORMAT when the id is out of range. */
static int set_token(GgTok *g, int V, json_int_t id, const char *s, size_t n, int type)
{
    if (id < 0 || id >= V)
        return error("tokenizer.json: token '%.*s' has id %lld, outside the model's vocabulary "
                     "of %d",
                     (int)(n > 40 ? 40 : n), s, (long long)id, V),
               CM_EFORMAT;
    g->tok[id] = s;
    g->tok_len[id] = n;
    g->type[id] = type;
    return 0;
}

/* model.vocab and added_tokens into the token table; unused ids become [PAD<id>]. */
static int read_tokens(GgTok *g, int V)
{
    json_t *vocab = json_object_get(json_object_get(g->root, "model"), "vocab");
    json_t *added = json_object_get(g->root, "added_tokens");
    const char *key;
    json_t *val;
    if (!json_is_object(vocab)) return error("tokenizer.json: no model.vocab object"), CM_EFORMAT;
    json_object_foreach(vocab, key, val)
    {
        if (!json_is_integer(val))
            return error("tokenizer.json: model.vocab: '%s' has no integer id", key), CM_EFORMAT;
        if (set_token(g, V, json_integer_value(val), key, strlen(key), TOK_NORMAL))
            return CM_EFORMAT;
    }
    for (size_t i = 0; json_is_array(added) && i < json_array_size(added); i++) {
        json_t *a = json_array_get(added, i), *c = json_object_get(a, "content");
        json_t *id = json_object_get(a, "id");
        if (!json_is_string(c) || !json_is_integer(id))
            return error("tokenizer.json: added_tokens[%zu] lacks content or id", i), CM_EFORMAT;
        int type = json_is_true(json_object_get(a, "special")) ? TOK_CONTROL : TOK_USER_DEFINED;
        if (set_token(g, V, json_integer_value(id), json_string_value(c), json_string_length(c),
                      type))
            return CM_EFORMAT;
    }
    for (int i = 0; i < V; i++) {
        if (g->tok[i]) continue;
        Buf b = { 0 };
        buf_addf(&b, "[PAD%d]", i);
        g->pad[i] = buf_detach(&b, &g->tok_len[i]);
        g->tok[i] = g->pad[i];
        g->type[i] = TOK_UNUSED;
    }
    return 0;
}

/* model.merges ("a b" strings, or ["a", "b"] pairs) as "a b" strings. */
static int read_merges(GgTok *g)
{
    json_t *merges = json_object_get(json_object_get(g->root, "model"), "merges");
    if (!json_is_array(merges)) return error("tokenizer.json: no model.merges array"), CM_EFORMAT;
    size_t n = json_array_size(merges);
    g->merge = xcalloc(n + 1, sizeof *g->merge);
    g->merge_len = xcalloc(n + 1, sizeof *g->merge_len);
    size_t *at = xcalloc(n + 1, sizeof *at); /* pairs: offsets in merge_text */
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(merges, i);
        if (json_is_string(m)) {
            g->merge[i] = json_string_value(m);
            g->merge_len[i] = json_string_length(m);
            continue;
        }
        json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
        if (json_array_size(m) != 2 || !json_is_string(a) || !json_is_string(b)) {
            free(at);
            return error("tokenizer.json: model.merges[%zu] is not \"a b\" or [a, b]", i),
                   CM_EFORMAT;
        }
        at[i] = g->merge_text.len;
        buf_add(&g->merge_text, json_string_value(a), json_string_length(a));
        buf_addc(&g->merge_text, ' ');
        buf_add(&g->merge_text, json_string_value(b), json_string_length(b));
        g->merge_len[i] = json_string_length(a) + 1 + json_string_length(b);
    }
    for (size_t i = 0; i < n; i++) /* merge_text stopped moving */
        if (!g->merge[i]) g->merge[i] = g->merge_text.buf + at[i];
    free(at);
    g->nmerge = n;
    return 0;
}

/* Parse tokenizer.json for GGUF. 0 or an exit status. */
static int ggtok_load(GgTok *g, const char *json, size_t n, int V)
{
    memset(g, 0, sizeof *g);
    json_error_t je;
    g->root = json_loadb(json, n, 0, &je);
    if (!g->root) return error("tokenizer.json: offset %d: %s", je.position, je.text), CM_EFORMAT;
    g->tok = xcalloc((size_t)V, sizeof *g->tok);
    g->tok_len = xcalloc((size_t)V, sizeof *g->tok_len);
    g->type = xcalloc((size_t)V, sizeof *g->type);
    g->pad = xcalloc((size_t)V, sizeof *g->pad);
    int rc = read_tokens(g, V);
    if (rc == 0) rc = read_merges(g);
    return rc;
}

/* The metadata: architecture, hyperparameters, tokenizer. */
static void put_metadata(GgufWriter *w, const GptConfig *c, const GgTok *g, uint32_t eot,
                         uint32_t file_type)
{
    gguf_kv_str(w, "general.architecture", "gpt2");
    gguf_kv_str(w, "general.name", "cm-train");
    gguf_kv_u32(w, "general.file_type", file_type);
    gguf_kv_u32(w, "general.alignment", GGUF_ALIGN);
    gguf_kv_u32(w, "gpt2.context_length", (uint32_t)c->T);
    gguf_kv_u32(w, "gpt2.embedding_length", (uint32_t)c->C);
    gguf_kv_u32(w, "gpt2.feed_forward_length", 4u * (uint32_t)c->C);
    gguf_kv_u32(w, "gpt2.block_count", (uint32_t)c->L);
    gguf_kv_u32(w, "gpt2.attention.head_count", (uint32_t)c->NH);
    gguf_kv_f32(w, "gpt2.attention.layer_norm_epsilon", IX_LN_EPS);
    gguf_kv_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_kv_str(w, "tokenizer.ggml.pre", "gpt-2");
    gguf_kv_str_array(w, "tokenizer.ggml.tokens", g->tok, g->tok_len, (uint64_t)c->V);
    gguf_kv_i32_array(w, "tokenizer.ggml.token_type", g->type, (uint64_t)c->V);
    gguf_kv_str_array(w, "tokenizer.ggml.merges", g->merge, g->merge_len, g->nmerge);
    gguf_kv_u32(w, "tokenizer.ggml.bos_token_id", eot);
    gguf_kv_u32(w, "tokenizer.ggml.eos_token_id", eot);
    gguf_kv_bool(w, "tokenizer.ggml.add_bos_token", 0);
    gguf_kv_bool(w, "tokenizer.ggml.add_eos_token", 0);
}

/* The ggml type of a tensor: matrices take the chosen one (Q8_0 needs rows of 32k values). */
static int tensor_type(const IxTensor *t, int want, int *fallback)
{
    if (t->is_vector || t->param == 1 || want == GGML_F32) return GGML_F32;
    if (want == GGML_Q8_0 && t->cols % GGML_Q8_0_BLOCK) {
        (*fallback)++;
        return GGML_F16;
    }
    return want;
}

/* A tensor's values (cm-train's layout is ggml's) as type, straight into the writer's chunks,
** then the zeros up to the next GGUF_ALIGN. Adds its bytes to *total; 0 or -1. */
static int write_tensor(BulkFile *bf, const IxTensor *t, int type, uint64_t *total)
{
    static const unsigned char zeros[GGUF_ALIGN];
    size_t n = t->rows * t->cols;
    int rc = type == GGML_F32 ? ix_write_values(bf, t->data, n, 1, 4, ix_encode_f32)
        : type == GGML_F16
        ? ix_write_values(bf, t->data, n, 1, 2, ix_encode_f16)
        : ix_write_values(bf, t->data, n, GGML_Q8_0_BLOCK, GGML_Q8_0_BYTES, gguf_quantize_q8_0);
    uint64_t ne[2] = { t->cols, t->rows };
    uint64_t bytes = gguf_tensor_bytes(type, t->is_vector ? 1 : 2, t->is_vector ? &t->rows : ne);
    size_t pad = gguf_padding(bytes);
    if (rc == 0) rc = bulk_write(bf, zeros, pad);
    *total += bytes + pad;
    return rc;
}

/* The tensor infos, then header + data into path. Returns the bytes written, 0 on failure. */
static uint64_t write_gguf(GgufWriter *w, const Gpt *m, int want, const char *path, int *fallback)
{
    int n = ix_tensor_count(&m->cfg);
    IxTensor *t = xcalloc((size_t)n, sizeof *t);
    int *type = xcalloc((size_t)n, sizeof *type);
    for (int k = 0; k < n; k++) {
        ix_tensor(m, k, &t[k]);
        type[k] = tensor_type(&t[k], want, fallback);
        uint64_t ne[2] = { t[k].cols, t[k].rows };
        gguf_add_tensor(w, t[k].gguf, type[k], t[k].is_vector ? 1 : 2,
                        t[k].is_vector ? &t[k].rows : ne);
    }
    Buf h = { 0 };
    gguf_header(w, &h);
    uint64_t total = h.len;
    BulkFile bf;
    int rc = bulk_open(&bf, path, 0, 0);
    if (rc == 0) {
        rc = bulk_write(&bf, h.buf, h.len);
        for (int k = 0; k < n && rc == 0; k++) rc = write_tensor(&bf, &t[k], type[k], &total);
        rc = bulk_flush(&bf, NULL); /* reports a failed write; frees bf then */
        if (rc == 0) rc = bulk_close(&bf, NULL, 0);
    }
    buf_free(&h);
    free(type);
    free(t);
    return rc == 0 ? total : 0;
}

int gguf_export(const Gpt *m, const char *tok, size_t tok_len, const char *dtype, const char *path,
                int quiet)
{
    static const struct {
        const char *name;
        int type;
        uint32_t file_type;
    } types[] = {
        { "f32", GGML_F32, 0 },
        { "f16", GGML_F16, 1 },
        { "q8_0", GGML_Q8_0, 7 },
    };
    int d = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(dtype, types[i].name) == 0) d = i;
    if (d < 0) return error("--dtype %s: the gguf format takes f32, f16 or q8_0", dtype), CM_EUSAGE;
    char err[1024];
    Bpe *bpe = bpe_load_mem(tok, tok_len, "tokenizer.json", err, sizeof err);
    if (!bpe) return error("%s", err), CM_EFORMAT;
    int64_t eot = bpe_eot_id(bpe);
    bpe_free(bpe);
    if (eot < 0) return error("tokenizer.json: no end-of-text token for bos/eos"), CM_EFORMAT;
    double t0 = now_sec();
    GgTok g;
    int rc = ggtok_load(&g, tok, tok_len, m->cfg.V), fallback = 0;
    GgufWriter w;
    gguf_writer_init(&w);
    uint64_t bytes = 0;
    if (rc == 0) {
        put_metadata(&w, &m->cfg, &g, (uint32_t)eot, types[d].file_type);
        bytes = write_gguf(&w, m, types[d].type, path, &fallback);
        if (bytes == 0) rc = CM_EIO;
    }
    if (rc == 0 && fallback)
        warn("%s: %d matrices have rows of %d values, not a multiple of 32: written F16, not "
             "Q8_0",
             path, fallback, m->cfg.C);
    if (rc == 0 && !quiet)
        fprintf(stderr,
                "cm-train export: %s: GGUF v3 gpt2, %d tensors (%s), %d tokens, %zu "
                "merges, %.1f MB, %.2f s\n",
                path, ix_tensor_count(&m->cfg), dtype, m->cfg.V, g.nmerge, bytes / 1e6,
                now_sec() - t0);
    gguf_writer_free(&w);
    ggtok_free(&g, m->cfg.V);
    return rc;
}
