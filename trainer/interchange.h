// SPDX-License-Identifier: MIT
/*
** interchange.h: cm-train's GPT-2 in other tools' formats: Hugging Face (transformers'
** GPT2LMHeadModel in safetensors, config.json, tokenizer files) and GGUF (llama.cpp's "gpt2").
**
** cm-train's model is llm.c's layout (model.h): linear weights (out, in), all layers of one
** kind in one block, LM head tied to wte. transformers' GPT-2 uses Conv1D, whose weights are
** (in, out): the four matrices of a block are transposed on the way out and back. llama.cpp's
** ggml stores a matrix as ne = {in, out} (innermost first), which is cm-train's layout as is.
**
** The tokenizer: a checkpoint made by `cm-train import` keeps the model's tokenizer.json in a
** sidecar file CKPT.tokenizer.json, and its header's data fingerprint is that of the tokenizer
** (hash64_seed(tokenizer.json, V), what `cm-train --data` computes for a corpus encoded with it).
** Every tokenizer handed to an export is checked against that fingerprint.
*/
#ifndef CM_INTERCHANGE_H
#define CM_INTERCHANGE_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"
#include "bulkfile.h"
#include "trainer/model.h"
#include "trainer/ckpt.h"

/* The verbs (argv[0] is the verb); each returns an exit status (util.h). */
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_logits(int argc, char **argv);

/* cm-train's fixed hyperparameters that other formats spell out. */
#define IX_LN_EPS 1e-5f          /* kernels.c layernorm_forward */
#define IX_ACTIVATION "gelu_new" /* kernels.c gelu_forward: the tanh approximation */

/* One parameter tensor of one layer (or the only one, for wte, wpe, lnf*): its names and
** shapes. rows x cols is cm-train's row-major layout (cols = 1 for vectors). */
typedef struct {
    int param;           /* index in model.h's order (0 wte .. 15 lnfb) */
    int layer;           /* block, or -1 */
    char hf[64];         /* transformers' name without "transformer." */
    char gguf[64];       /* llama.cpp's name */
    uint64_t rows, cols; /* cm-train's shape (a vector: rows = length, cols = 1) */
    int is_vector;       /* 1-D */
    int transpose;       /* stored transposed by transformers (Conv1D) */
    const float *data;   /* cm-train's values (rows x cols) */
} IxTensor;

/* Number of tensors of a model (2 + 12 L + 2) and tensor k of them, in transformers' order. */
int ix_tensor_count(const GptConfig *cfg);
void ix_tensor(const Gpt *m, int k, IxTensor *t);
/* The tensor in transformers' layout (transposed when t->transpose) into out; blocked. */
void ix_to_hf_layout(const IxTensor *t, float *out);
/* And back: transformers' layout in `in` to cm-train's into dst (rows x cols). */
void ix_from_hf_layout(const IxTensor *t, const float *in, float *dst);

/* Encode n values of src (n a multiple of per) into the file, per values into `bytes` bytes at
** a time by enc, straight into the writer's chunks. 0, or -1 when a write failed (bulk_flush
** reports it). */
typedef void (*IxEncode)(const float *src, size_t n, unsigned char *dst);
/* The encoders of safetensors' F32, F16 and BF16 (little-endian), and the one of an ST_* dtype. */
void ix_encode_f32(const float *src, size_t n, unsigned char *dst);
void ix_encode_f16(const float *src, size_t n, unsigned char *dst);
void ix_encode_bf16(const float *src, size_t n, unsigned char *dst);
IxEncode ix_st_encoder(int st_dtype);
int ix_write_values(BulkFile *b, const float *src, size_t n, size_t per, size_t bytes,
                    IxEncode enc);

/* Threads for the kernels: the online cores, as cm-train's --threads defaults to. */
void ix_default_threads(void);

/* The fingerprint a tokenizer.json gives a model of vocabulary V. */
uint64_t ix_tokenizer_fingerprint(const char *json, size_t n, int V);
/* Path of a checkpoint's tokenizer sidecar (malloc'd). */
char *ix_sidecar_path(const char *ckpt);

/* Where an export takes the tokenizer from: --tokenizer FILE, else --data DIR (the corpus
** index), else the checkpoint's sidecar. The json is checked against info->data_fp unless
** skip_check. Returns 0 with *json (malloc'd) and *len; or an exit status after a message. */
int ix_find_tokenizer(const char *ckpt, const CkptInfo *info, const char *tok_file,
                      const char *data_dir, int skip_check, char **json, size_t *len);

/* Exports. dtype is "f32", "bf16" or "f16" (hf) / "f32", "f16" or "q8_0" (gguf). tok may be
** NULL for hf (weights and config only). Return an exit status (message printed). */
int hf_export(const Gpt *m, const char *tok, size_t tok_len, const char *dtype, const char *dir,
              int quiet);
int gguf_export(const Gpt *m, const char *tok, size_t tok_len, const char *dtype, const char *path,
                int quiet);
/* A LoRA checkpoint's adapters (m->lora set) as a PEFT adapter directory (peft_export.c):
** adapter_config.json (base: its base_model_name_or_path, or NULL) and
** adapter_model.safetensors; dtype "f32", "bf16" or "f16". */
int peft_export(const Gpt *m, const char *dtype, const char *base, const char *dir, int quiet);

/* Import a transformers GPT-2 directory: config.json, model.safetensors or
** model.safetensors.index.json and its shards, tokenizer.json if present. On success m holds
** the model (gpt_init'd) and *tok the tokenizer (malloc'd, NULL if none). */
int hf_import(const char *dir, Gpt *m, char **tok, size_t *tok_len, int quiet);

/* HF config.json text for a model (the tokenizer's end-of-text id, or -1). Used by the
** export, and parsed back by the import. */
void hf_config_json(Buf *out, const GptConfig *cfg, int64_t eot, const char *torch_dtype);
/* Parse config.json text into cfg; 0 or an exit status after "NAME: what" (the fuzzed
** entry point of the config reader). */
int hf_config_parse(const char *text, size_t n, const char *name, GptConfig *cfg);

#endif
