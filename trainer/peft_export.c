// SPDX-License-Identifier: MIT
/*
** peft_export.c: `cm-train export --format peft`: a LoRA checkpoint's adapters as a Hugging Face
** PEFT adapter directory: adapter_config.json (LoraConfig: peft_type LORA, task_type
** CAUSAL_LM, r, lora_alpha, target_modules, fan_in_fan_out true for GPT-2's Conv1D layers,
** ...) and adapter_model.safetensors with PEFT's names,
**
**     base_model.model.transformer.h.N.attn.c_attn.lora_A.weight   (r, in)
**     base_model.model.transformer.h.N.attn.c_attn.lora_B.weight   (out, r)
**
** PEFT keeps lora_A and lora_B as nn.Linear weights even on Conv1D layers, which is cm-train's
** (out, in) layout: the adapters go out as they are, and the output features are in the order
** of the HF export's Conv1D columns (for c_attn q | k | v, as hf_export writes it). PEFT
** applies them as W_conv1d + (alpha / r) (B A)^T (fan_in_fan_out), i.e. cm-train's
** W + (alpha / r) B A.
*/
#include "trainer/interchange.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"                /* defines: error, Buf, write_all, exit statuses */
#include "atomic.h"              /* defines: atomic_write_file */
#include "json.h"                /* defines: json_escape */
#include "trainer/lora.h"        /* defines: GptLora, lora_target_name */
#include "trainer/safetensors.h" /* defines: StEntry, st_header */

/* One adapter tensor: its PEFT name, shape and values. */
typedef struct {
    char name[96];
    uint64_t rows, cols;
    const float *data;
} PeftTensor;

/* The adapters in PEFT's order (layer, target, A then B); returns the count. */
static int peft_tensors(const GptLora *lo, PeftTensor *t)
{
    int n = 0;
    size_t R = lo->rank;
    for (int l = 0; l < lo->L; l++)
        for (int k = 0; k < LORA_NT; k++) {
            if (!(lo->targets >> k & 1)) continue;
            size_t in = lo->in[k], out = lo->out[k];
            for (int ab = 0; ab < 2; ab++, n++) {
                snprintf(t[n].name, sizeof t[n].name,
                         "base_model.model.transformer.h.%d.%s.lora_%c.weight", l,
                         lora_target_name(k), ab ? 'B' : 'A');
                t[n].rows = ab ? out : R;
                t[n].cols = ab ? R : in;
                t[n].data = ab ? lo->B[k] + l * out * R : lo->A[k] + l * R * in;
            }
        }
    return n;
}

/*
** adapter_model.safetensors; returns its bytes, or 0 after a message.
*/
static uint64_t peft_write_weights(const GptLora *lo, int dtype, const char *path)
{
    int cap = lo->L * LORA_NT * 2;
    PeftTensor *t = xcalloc((size_t)cap, sizeof *t);
    StEntry *e = xcalloc((size_t)cap, sizeof *e);
    int n = peft_tensors(lo, t);
    for (int k = 0; k < n; k++) {
        e[k] = (StEntry){ .name = t[k].name, .dtype = dtype, .ndim = 2 };
        e[k].shape[0] = t[k].rows;
        e[k].shape[1] = t[k].cols;
    }
    Buf h = { 0 };
    st_header(&h, e, n, "{\"format\":\"pt\"}");
    uint64_t total = h.len;
    size_t es = (size_t)st_dtype_size(dtype);
    BulkFile bf;
    int rc = bulk_open(&bf, path, 0, 0);
    if (rc == 0) {
        rc = bulk_write(&bf, h.buf, h.len);
        for (int k = 0; k < n && rc == 0; k++) {
            size_t cnt = t[k].rows * t[k].cols;
            rc = ix_write_values(&bf, t[k].data, cnt, 1, es, ix_st_encoder(dtype));
            total += cnt * es;
        }
        rc = bulk_flush(&bf, NULL); /* reports a failed write; frees bf then */
        if (rc == 0) rc = bulk_close(&bf, NULL, 0);
    }
    buf_free(&h);
    free(e);
    free(t);
    return rc == 0 ? total : 0;
}

/*
** adapter_config.json: PEFT's LoraConfig fields (those of peft 0.10+; unknown ones are
** ignored by older versions).
*/
static void peft_config_json(Buf *b, const GptLora *lo, const char *base)
{
    buf_adds(b,
             "{\n  \"alpha_pattern\": {},\n  \"auto_mapping\": null,\n"
             "  \"base_model_name_or_path\": ");
    if (base)
        json_escape(b, base, strlen(base));
    else
        buf_adds(b, "null");
    buf_adds(b,
             ",\n  \"bias\": \"none\",\n  \"fan_in_fan_out\": true,\n"
             "  \"inference_mode\": true,\n  \"init_lora_weights\": true,\n"
             "  \"layers_pattern\": null,\n  \"layers_to_transform\": null,\n");
    if (lo->alpha == floor(lo->alpha))
        buf_addf(b, "  \"lora_alpha\": %.0f,\n", lo->alpha);
    else
        buf_addf(b, "  \"lora_alpha\": %.17g,\n", lo->alpha);
    buf_addf(b,
             "  \"lora_dropout\": 0.0,\n  \"modules_to_save\": null,\n  \"peft_type\": "
             "\"LORA\",\n  \"r\": %d,\n  \"rank_pattern\": {},\n  \"revision\": null,\n"
             "  \"target_modules\": [",
             lo->rank);
    int first = 1;
    for (int k = 0; k < LORA_NT; k++)
        if (lo->targets >> k & 1) {
            buf_addf(b, "%s\"%s\"", first ? "" : ", ", lora_target_name(k));
            first = 0;
        }
    buf_adds(b,
             "],\n  \"task_type\": \"CAUSAL_LM\",\n  \"use_dora\": false,\n"
             "  \"use_rslora\": false\n}\n");
}

int peft_export(const Gpt *m, const char *dtype, const char *base, const char *dir, int quiet)
{
    const GptLora *lo = m->lora;
    int d = strcmp(dtype, "f32") == 0 ? ST_F32
        : strcmp(dtype, "bf16") == 0  ? ST_BF16
        : strcmp(dtype, "f16") == 0   ? ST_F16
                                      : -1;
    if (d < 0) return error("--dtype %s: the peft format takes f32, bf16 or f16", dtype), CM_EUSAGE;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return error("cannot create '%s': %s", dir, strerror(errno)), CM_EIO;
    double t0 = now_sec();
    Buf path = { 0 }, cfg = { 0 };
    buf_addf(&path, "%s/adapter_model.safetensors", dir);
    uint64_t bytes = peft_write_weights(lo, d, path.buf);
    int rc = bytes ? 0 : CM_EIO;
    peft_config_json(&cfg, lo, base);
    buf_reset(&path);
    buf_addf(&path, "%s/adapter_config.json", dir);
    if (rc == 0 && atomic_write_file(path.buf, cfg.buf, cfg.len) != 0) rc = CM_EIO;
    if (rc == 0 && !quiet)
        fprintf(stderr,
                "cm-train export: %s: PEFT LoRA adapters r=%d alpha=%g, %d tensors (%s), %.2f MB, "
                "%.2f s\n",
                dir, lo->rank, lo->alpha, (int)(2 * lo->L * __builtin_popcount(lo->targets)), dtype,
                bytes / 1e6, now_sec() - t0);
    buf_free(&path);
    buf_free(&cfg);
    return rc;
}
