// SPDX-License-Identifier: MIT
/*
** lora.h: LoRA adapters (Hu et al. 2021, as Hugging Face PEFT implements them) on cm-train's
** GPT-2: for a targeted linear layer of weight W (out, in) (model.h's layout),
**
**     y = x W^T + b + (alpha / r) (x A^T) B^T,   A (r, in), B (out, r),
**
** A initialised as PEFT's kaiming_uniform_(a = sqrt 5), i.e. uniform(-1/sqrt(in), 1/sqrt(in)),
** from the run seed; B zero, so the adapted model starts equal to the base. While adapters are
** attached to a Gpt (m->lora), its forward, backward, key/value step, gradient norm and AdamW
** update include them, and the base is frozen: gpt_alloc_train allocates no gradients or
** moments for it and the backward computes no weight gradients (input gradients only).
**
** Targets are PEFT's module names for GPT-2 (transformers' Conv1D layers): attn.c_attn (the
** qkv product, PEFT's default for gpt2), attn.c_proj, mlp.c_fc, mlp.c_proj; a target name
** matches, as in PEFT, every module whose name is it or ends with "." + it.
**
** Memory: one block each for the adapters, their gradients and moments, laid out target by
** target (in the order above, targeted ones only): A (L, r, in), then B (L, out, r). The
** checkpoint stores them in this order (ckpt.h).
*/
#ifndef CM_TRAIN_LORA_H
#define CM_TRAIN_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "trainer/model.h" /* defines: Gpt, GptConfig */

enum { LORA_C_ATTN, LORA_ATTN_C_PROJ, LORA_MLP_C_FC, LORA_MLP_C_PROJ, LORA_NT };
#define LORA_ALL ((1u << LORA_NT) - 1)
#define LORA_MAX_RANK 4096

struct GptLora {
    int rank;                       /* r */
    double alpha;                   /* lora_alpha */
    float scale;                    /* alpha / r */
    unsigned targets;               /* bit t: target t has adapters */
    int L;                          /* layers */
    int in[LORA_NT], out[LORA_NT];  /* features of each target's linear layer */
    size_t n;                       /* floats of all adapters */
    float *params;                  /* the adapters (n floats) */
    float *grads, *m, *v;           /* gradients and AdamW moments (NULL until lora_alloc_train) */
    float *A[LORA_NT], *B[LORA_NT]; /* (L, r, in), (L, out, r) in params; NULL if not targeted */
    float *dA[LORA_NT], *dB[LORA_NT]; /* the same in grads */
    float *u;                         /* (NT, L, N, r): x A^T of the last forward, for backward */
    size_t u_cap, u_N;                /* rows u has room for; rows of the last forward */
    float *du;                        /* (N, r) backward scratch */
    float *u1;                        /* (r) one-token steps (gpt_kv_step) */
};

/* PEFT's module name of target t ("attn.c_attn", ...), and the model.h parameter tensor its
** weight is (4 qkvw, 6 attprojw, 10 fcw, 12 fcprojw). */
const char *lora_target_name(int t);
int lora_target_param(int t);
/* Parse a --lora-targets list ("c_attn", "attn.c_proj,mlp.c_fc", "c_proj", "all") into a mask.
** 0, or -1 with what is wrong in err. */
int lora_parse_targets(const char *list, unsigned *mask, char *err, size_t errn);
/* The targets of mask as PEFT's target_modules, comma-separated, into buf. */
void lora_targets_str(unsigned mask, char *buf, size_t n);
/* Floats of the adapters of a model of shape cfg. */
size_t lora_count(const GptConfig *cfg, int rank, unsigned targets);

/* New adapters for cfg (zero; rank 1..LORA_MAX_RANK, targets a nonzero subset of LORA_ALL). */
GptLora *lora_new(const GptConfig *cfg, int rank, double alpha, unsigned targets);
/* PEFT's initialisation from a seed: A uniform(-1/sqrt(in), 1/sqrt(in)), B zero. */
void lora_init_weights(GptLora *lo, uint64_t seed);
/* Gradients and AdamW moments (zero). */
void lora_alloc_train(GptLora *lo);
void lora_free(GptLora *lo);

/* The adapter path of gpt_forward: make room for N rows, then out(N, out) += scale (x A^T) B^T
** for target t of layer l, keeping x A^T for the backward. */
void lora_reserve(GptLora *lo, size_t N);
void lora_forward(GptLora *lo, int t, int l, float *out, const float *x, size_t N);
/* One row (gpt_kv_step): the same with the one-row scratch, nothing kept. */
void lora_forward_row(const GptLora *lo, int t, int l, float *out, const float *x);
/* Its backward, after the base layer's: dB += scale dout^T u, dA += du^T x,
** dx += du A with du = scale dout B (dx: the layer's input gradient, written by the base). */
void lora_backward(GptLora *lo, int t, int l, float *dx, const float *dout, const float *x,
                   size_t N);
/* AdamW on the adapters (weight decay on A and B, as the Hugging Face Trainer does). */
void lora_update(GptLora *lo, float lr, float beta1, float beta2, float eps, float wd, float gscale,
                 int t);

/* Fold the adapters into the base, W += scale B A, and detach them (m->lora freed, NULL). */
void lora_merge(Gpt *m);

/* Bytes a frozen base does not allocate: its gradients and AdamW moments (12 per parameter). */
double lora_saved_bytes(const Gpt *m);

#endif
