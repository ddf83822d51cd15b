// SPDX-License-Identifier: MIT
/*
** interchange.c: what the Hugging Face and GGUF exports and the import share (interchange.h):
** the tensor table (cm-train's parameter, transformers' and llama.cpp's names, shapes, which
** are transposed), the layout changes, config.json, and where the tokenizer comes from.
*/
#include "trainer/interchange.h"

#include <errno.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"                /* defines: error, Buf, exit statuses */
#include "hash.h"                /* defines: hash64_seed */
#include "json.h"                /* defines: json_parse_object, json_get, json_get_int */
#include "le.h"                  /* defines: le_putf32, le_put16 */
#include "trainer/half.h"        /* defines: f16_from_f32, bf16_from_f32 */
#include "trainer/safetensors.h" /* defines: ST_F32, ST_F16 */
#include "shards/corpus.h"       /* defines: corpus_open, corpus_tokenizer_json */
#include "trainer/kernels.h"     /* defines: kernels_set_threads */

/* --------------------------------------------------------------------------------------- */
/* The verbs                                                                               */

void ix_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    kernels_set_threads(n > 0 ? (int)n : 1);
}

/* --------------------------------------------------------------------------------------- */
/* The tensor table                                                                        */

/* Per-parameter names and shapes: rows and cols in units of C (V and T for the embeddings). */
static const struct {
    const char *hf, *gguf; /* printf formats taking the layer */
    int rows_c, cols_c;    /* rows = rows_c * C (0: V, -1: T), cols = cols_c * C (0: 1) */
    int transpose;         /* a Conv1D weight */
} ix_table[GPT_NUM_PARAMS] = {
    { "wte.weight", "token_embd.weight", 0, 1, 0 },
    { "wpe.weight", "position_embd.weight", -1, 1, 0 },
    { "h.%d.ln_1.weight", "blk.%d.attn_norm.weight", 1, 0, 0 },
    { "h.%d.ln_1.bias", "blk.%d.attn_norm.bias", 1, 0, 0 },
    { "h.%d.attn.c_attn.weight", "blk.%d.attn_qkv.weight", 3, 1, 1 },
    { "h.%d.attn.c_attn.bias", "blk.%d.attn_qkv.bias", 3, 0, 0 },
    { "h.%d.attn.c_proj.weight", "blk.%d.attn_output.weight", 1, 1, 1 },
    { "h.%d.attn.c_proj.bias", "blk.%d.attn_output.bias", 1, 0, 0 },
    { "h.%d.ln_2.weight", "blk.%d.ffn_norm.weight", 1, 0, 0 },
    { "h.%d.ln_2.bias", "blk.%d.ffn_norm.bias", 1, 0, 0 },
    { "h.%d.mlp.c_fc.weight", "blk.%d.ffn_up.weight", 4, 1, 1 },
    { "h.%d.mlp.c_fc.bias", "blk.%d.ffn_up.bias", 4, 0, 0 },
    { "h.%d.mlp.c_proj.weight", "blk.%d.ffn_down.weight", 1, 4, 1 },
    { "h.%d.mlp.c_proj.bias", "blk.%d.ffn_down.bias", 1, 0, 0 },
    { "ln_f.weight", "output_norm.weight", 1, 0, 0 },
    { "ln_f.bias", "output_norm.bias", 1, 0, 0 },
};

int ix_tensor_count(const GptConfig *cfg)
{
    return 2 + 12 * cfg->L + 2;
}

void ix_tensor(const Gpt *m, int k, IxTensor *t)
{
    const GptConfig *c = &m->cfg;
    memset(t, 0, sizeof *t);
    if (k < 2) {
        t->param = k;
        t->layer = -1;
    } else if (k < 2 + 12 * c->L) {
        t->param = 2 + (k - 2) % 12;
        t->layer = (k - 2) / 12;
    } else {
        t->param = 14 + (k - 2 - 12 * c->L);
        t->layer = -1;
    }
    int p = t->param;
    uint64_t C = (uint64_t)c->C;
    t->rows = ix_table[p].rows_c == 0 ? (uint64_t)c->V
        : ix_table[p].rows_c < 0      ? (uint64_t)c->T
                                      : ix_table[p].rows_c * C;
    t->cols = ix_table[p].cols_c ? ix_table[p].cols_c * C : 1;
    t->is_vector = ix_table[p].cols_c == 0;
    t->transpose = ix_table[p].transpose;
    snprintf(t->hf, sizeof t->hf, ix_table[p].hf, t->layer);
    snprintf(t->gguf, sizeof t->gguf, ix_table[p].gguf, t->layer);
    const float *base = gpt_param_tensor(m->params_memory, m, p);
    t->data = base + (t->layer >= 0 ? (size_t)t->layer * t->rows * t->cols : 0);
}

#ifdef __AVX2__
/* d[j * ds + i] = s[i * ss + j] for an 8 x 8 block, in registers. */
static inline void transpose_8x8(float *d, size_t ds, const float *s, size_t ss)
{
    __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ss);
    __m256 r2 = _mm256_loadu_ps(s + 2 * ss), r3 = _mm256_loadu_ps(s + 3 * ss);
    __m256 r4 = _mm256_loadu_ps(s + 4 * ss), r5 = _mm256_loadu_ps(s + 5 * ss);
    __m256 r6 = _mm256_loadu_ps(s + 6 * ss), r7 = _mm256_loadu_ps(s + 7 * ss);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(d + ds, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(d + 2 * ds, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(d + 3 * ds, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(d + 4 * ds, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(d + 5 * ds, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(d + 6 * ds, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(d + 7 * ds, _mm256_permute2f128_ps(u3, u7, 0x31));
}
#endif

/*
** dst (cols x rows) = transpose of src (rows x cols), in 32 x 32 tiles of 8 x 8 register
** transposes (AVX2; measured 1.6-2x the plain tiled loop on GPT-2's 768 x 2304 .. 3072 x 768,
** which is bound by cache and TLB misses: the rows are 3 to 12 KiB apart).
*/
static void transpose_f32(float *dst, const float *src, uint64_t rows, uint64_t cols)
{
    const uint64_t B = 32;
    for (uint64_t r0 = 0; r0 < rows; r0 += B)
        for (uint64_t c0 = 0; c0 < cols; c0 += B) {
            uint64_t r1 = r0 + B < rows ? r0 + B : rows, c1 = c0 + B < cols ? c0 + B : cols;
            uint64_t r = r0;
#ifdef __AVX2__
            for (; r + 8 <= r1; r += 8) {
                uint64_t c = c0;
                for (; c + 8 <= c1; c += 8)
                    transpose_8x8(dst + c * rows + r, rows, src + r * cols + c, cols);
                for (uint64_t rr = r; rr < r + 8; rr++) /* the ragged right edge */
                    for (uint64_t cc = c; cc < c1; cc++) dst[cc * rows + rr] = src[rr * cols + cc];
            }
#endif
            for (; r < r1; r++)
                for (uint64_t c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c];
        }
}

void ix_to_hf_layout(const IxTensor *t, float *out)
{
    if (t->transpose)
        transpose_f32(out, t->data, t->rows, t->cols);
    else
        memcpy(out, t->data, t->rows * t->cols * sizeof(float));
}

void ix_from_hf_layout(const IxTensor *t, const float *in, float *dst)
{
    if (t->transpose)
        transpose_f32(dst, in, t->cols, t->rows);
    else
        memcpy(dst, in, t->rows * t->cols * sizeof(float));
}

void ix_encode_f32(const float *src, size_t n, unsigned char *dst)
{
    for (size_t i = 0; i < n; i++) le_putf32(dst + 4 * i, src[i]);
}

void ix_encode_f16(const float *src, size_t n, unsigned char *dst)
{
    for (size_t i = 0; i < n; i++) le_put16(dst + 2 * i, f16_from_f32(src[i]));
}

void ix_encode_bf16(const float *src, size_t n, unsigned char *dst)
{
    for (size_t i = 0; i < n; i++) le_put16(dst + 2 * i, bf16_from_f32(src[i]));
}

IxEncode ix_st_encoder(int st_dtype)
{
    return st_dtype == ST_F32 ? ix_encode_f32 : st_dtype == ST_F16 ? ix_encode_f16 : ix_encode_bf16;
}

int ix_write_values(BulkFile *b, const float *src, size_t n, size_t per, size_t bytes, IxEncode enc)
{
    unsigned char one[64]; /* a unit that straddles two chunks */
    while (n > 0) {
        size_t room;
        unsigned char *dst = bulk_space(b, &room);
        if (!dst) return -1;
        size_t units = room / bytes;
        if (units == 0) {
            enc(src, per, one);
            if (bulk_write(b, one, bytes) != 0) return -1;
            units = 1;
        } else {
            if (units > n / per) units = n / per;
            enc(src, units * per, dst);
            bulk_commit(b, units * bytes);
        }
        src += units * per;
        n -= units * per;
    }
    return 0;
}

/* --------------------------------------------------------------------------------------- */
/* config.json                                                                             */

void hf_config_json(Buf *out, const GptConfig *cfg, int64_t eot, const char *torch_dtype)
{
    char id[32];
    if (eot >= 0)
        snprintf(id, sizeof id, "%lld", (long long)eot);
    else
        snprintf(id, sizeof id, "null");
    buf_addf(out,
             "{\n"
             "  \"architectures\": [\"GPT2LMHeadModel\"],\n"
             "  \"model_type\": \"gpt2\",\n"
             "  \"vocab_size\": %d,\n"
             "  \"n_positions\": %d,\n"
             "  \"n_ctx\": %d,\n"
             "  \"n_embd\": %d,\n"
             "  \"n_layer\": %d,\n"
             "  \"n_head\": %d,\n"
             "  \"n_inner\": null,\n"
             "  \"activation_function\": \"%s\",\n"
             "  \"layer_norm_epsilon\": 1e-05,\n"
             "  \"resid_pdrop\": 0.0,\n"
             "  \"embd_pdrop\": 0.0,\n"
             "  \"attn_pdrop\": 0.0,\n"
             "  \"initializer_range\": 0.02,\n"
             "  \"scale_attn_weights\": true,\n"
             "  \"scale_attn_by_inverse_layer_idx\": false,\n"
             "  \"reorder_and_upcast_attn\": false,\n"
             "  \"use_cache\": true,\n"
             "  \"bos_token_id\": %s,\n"
             "  \"eos_token_id\": %s,\n"
             "  \"tie_word_embeddings\": true,\n"
             "  \"torch_dtype\": \"%s\"\n"
             "}\n",
             cfg->V, cfg->T, cfg->T, cfg->C, cfg->L, cfg->NH, IX_ACTIVATION, id, id, torch_dtype);
}

/* A string field equals one of the words (NULL-terminated list); absent counts as `dflt`. */
static int field_is(const JsonObj *o, const char *key, const char *const *words, int dflt)
{
    const JsonField *f = json_get(o, key);
    if (!f) return dflt;
    if (f->type != JSON_STRING) return 0;
    for (; *words; words++)
        if (strlen(*words) == f->rawlen && memcmp(*words, f->raw, f->rawlen) == 0) return 1;
    return 0;
}

/* A boolean field, absent = dflt; -1 when it is not a boolean. */
static int field_bool(const JsonObj *o, const char *key, int dflt)
{
    const JsonField *f = json_get(o, key);
    if (!f) return dflt;
    return f->type == JSON_TRUE ? 1 : f->type == JSON_FALSE ? 0 : -1;
}

/* A number field as a double; 0, or -1 when absent or not a number. */
static int field_double(const JsonObj *o, const char *key, double *out)
{
    const JsonField *f = json_get(o, key);
    char tmp[64];
    if (!f || f->type != JSON_NUMBER || f->rawlen >= sizeof tmp) return -1;
    memcpy(tmp, f->raw, f->rawlen);
    tmp[f->rawlen] = 0;
    *out = strtod(tmp, NULL);
    return 0;
}

/* An integer field that must fit an int; 0, or -1. */
static int field_int(const JsonObj *o, const char *key, int *out)
{
    int64_t v;
    if (json_get_int(o, key, &v) != 0 || v < 0 || v > (1 << 30)) return -1;
    *out = (int)v;
    return 0;
}

/*
** The architecture checks: what cm-train's GPT-2 cannot represent. NULL or the reason.
*/
static const char *config_unsupported(const JsonObj *o, const GptConfig *cfg, char *why, size_t n)
{
    static const char *const gpt2[] = { "gpt2", NULL };
    static const char *const tanh_gelu[] = { "gelu_new", "gelu_pytorch_tanh", NULL };
    double eps;
    int inner;
    if (!field_is(o, "model_type", gpt2, 0)) return "model_type is not \"gpt2\"";
    if (!field_is(o, "activation_function", tanh_gelu, 1))
        return "activation_function is not the tanh GELU (\"gelu_new\") cm-train computes";
    if (field_double(o, "layer_norm_epsilon", &eps) == 0 && fabs(eps - 1e-5) > 1e-12) {
        snprintf(why, n, "layer_norm_epsilon %g: cm-train's LayerNorm uses 1e-05", eps);
        return why;
    }
    const JsonField *f = json_get(o, "n_inner");
    if (f && f->type != JSON_NULL && (field_int(o, "n_inner", &inner) || inner != 4 * cfg->C)) {
        snprintf(why, n, "n_inner is not null or 4 * n_embd (%d)", 4 * cfg->C);
        return why;
    }
    if (field_bool(o, "scale_attn_weights", 1) != 1) return "scale_attn_weights is not true";
    if (field_bool(o, "scale_attn_by_inverse_layer_idx", 0) != 0)
        return "scale_attn_by_inverse_layer_idx is not false";
    if (field_bool(o, "add_cross_attention", 0) != 0) return "add_cross_attention is not false";
    return NULL;
}

int hf_config_parse(const char *text, size_t n, const char *name, GptConfig *cfg)
{
    JsonObj o = { 0 };
    int rc = 0;
    char why[160];
    memset(cfg, 0, sizeof *cfg);
    if (json_parse_object(&o, text, n) != 0) {
        error("%s: offset %zu: %s", name, o.err_pos, o.err);
        rc = CM_EFORMAT;
        goto done;
    }
    const char *missing = field_int(&o, "n_embd", &cfg->C)                         ? "n_embd"
        : field_int(&o, "n_layer", &cfg->L)                                        ? "n_layer"
        : field_int(&o, "n_head", &cfg->NH)                                        ? "n_head"
        : field_int(&o, "vocab_size", &cfg->V)                                     ? "vocab_size"
        : field_int(&o, "n_positions", &cfg->T) && field_int(&o, "n_ctx", &cfg->T) ? "n_positions"
                                                                                   : NULL;
    if (missing) {
        error("%s: \"%s\" is missing or not a non-negative integer", name, missing);
        rc = CM_EFORMAT;
        goto done;
    }
    const char *bad = gpt_config_check(cfg);
    if (!bad) bad = config_unsupported(&o, cfg, why, sizeof why);
    if (bad) {
        error("%s: not a GPT-2 cm-train can hold: %s", name, bad);
        rc = CM_EFORMAT;
    }
done:
    json_obj_free(&o);
    return rc;
}

/* --------------------------------------------------------------------------------------- */
/* The tokenizer                                                                           */

uint64_t ix_tokenizer_fingerprint(const char *json, size_t n, int V)
{
    return hash64_seed(json, n, (uint64_t)V);
}

char *ix_sidecar_path(const char *ckpt)
{
    Buf b = { 0 };
    buf_addf(&b, "%s.tokenizer.json", ckpt);
    return buf_detach(&b, NULL);
}


/* The tokenizer in a corpus index, copied. 0 or an exit status. */
static int corpus_tokenizer(const char *dir, char **json, size_t *len)
{
    char err[1024];
    struct stat st;
    if (stat(dir, &st) != 0) {
        error("cannot open corpus '%s': %s", dir, strerror(errno));
        return CM_EIO;
    }
    Corpus *c = corpus_open(dir, err, sizeof err);
    if (!c) {
        error("%s", err);
        return CM_EFORMAT;
    }
    size_t n = 0;
    const char *j = corpus_tokenizer_json(c, &n);
    int rc = 0;
    if (!j) {
        error("%s: the corpus index holds no tokenizer", dir);
        rc = CM_EFORMAT;
    } else {
        *json = xstrndup(j, n);
        *len = n;
    }
    corpus_close(c);
    return rc;
}

int ix_find_tokenizer(const char *ckpt, const CkptInfo *info, const char *tok_file,
                      const char *data_dir, int skip_check, char **json, size_t *len)
{
    char *side = ix_sidecar_path(ckpt);
    const char *from = tok_file ? tok_file : data_dir ? data_dir : side;
    int rc = tok_file ? read_whole_file(tok_file, 0, json, len)
        : data_dir    ? corpus_tokenizer(data_dir, json, len)
                      : read_whole_file(side, 1, json, len);
    if (rc == -1) {
        error("%s: no tokenizer recorded beside this checkpoint (%s): give --data DIR (the "
              "corpus it was trained on) or --tokenizer FILE",
              ckpt, side);
        rc = CM_EUSAGE;
    }
    if (rc == 0 && !skip_check) {
        /* checkpoint v2 records the tokenizer's own fingerprint; v1 only the data's */
        uint64_t want = info->tok_fp ? info->tok_fp : info->data_fp;
        uint64_t fp = ix_tokenizer_fingerprint(*json, *len, info->cfg.V);
        if (fp != want) {
            error("%s: the tokenizer's fingerprint %016llx (vocabulary %d) is not the "
                  "checkpoint's %016llx: the model was trained on other data%s",
                  from, (unsigned long long)fp, info->cfg.V, (unsigned long long)want,
                  info->tok_fp
                      ? ""
                      : " (a version 1 checkpoint of a run with --where "
                        "fingerprints its selection too: then add --skip-fingerprint-check)");
            free(*json);
            *json = NULL;
            rc = CM_EFORMAT;
        }
    }
    free(side);
    return rc;
}
