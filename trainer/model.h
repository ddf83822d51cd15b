// SPDX-License-Identifier: MIT
/*
** model.h: cm-train's GPT-2 (llm.c's layout): a parameter size table, one allocation for the
** parameters (and one each for their gradients and the AdamW moments), pointers carved in order.
**
** Architecture: token + learned position embeddings, L pre-LayerNorm blocks (causal multi-head
** attention, GELU MLP 4x), final LayerNorm, LM head tied to the token embedding. fp32; with
** m->bf16 set, the linear layers' products of gpt_forward / gpt_backward take bf16 inputs
** (matmul_bf16.h) and everything else stays fp32.
** Dimensions: B batch, T context, C width, NH heads, V vocabulary, L layers.
*/
#ifndef CM_MODEL_H
#define CM_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int L;  /* layers */
    int C;  /* width (channels) */
    int NH; /* attention heads (C % NH == 0) */
    int T;  /* context length */
    int V;  /* vocabulary size */
} GptConfig;

#define GPT_NUM_PARAMS 16

typedef struct GptLora GptLora; /* LoRA adapters (lora.h) */

typedef struct {
    float *wte;                 /* (V, C) token embedding, also the LM head */
    float *wpe;                 /* (T, C) position embedding */
    float *ln1w, *ln1b;         /* (L, C) */
    float *qkvw, *qkvb;         /* (L, 3C, C), (L, 3C) */
    float *attprojw, *attprojb; /* (L, C, C), (L, C) */
    float *ln2w, *ln2b;         /* (L, C) */
    float *fcw, *fcb;           /* (L, 4C, C), (L, 4C) */
    float *fcprojw, *fcprojb;   /* (L, C, 4C), (L, C) */
    float *lnfw, *lnfb;         /* (C) */
} GptParams;

typedef struct {
    float *encoded;                   /* (B, T, C) */
    float *ln1, *ln1_mean, *ln1_rstd; /* (L, B, T, C), (L, B, T) x2 */
    float *qkv;                       /* (L, B, T, 3C) */
    float *att;                       /* (L, B, NH, T, T) softmax probabilities
                                          ** (none with recompute) */
    float *atty;                      /* (L, B, T, C) attention output */
    float *residual2;                 /* (L, B, T, C) after attention */
    float *ln2, *ln2_mean, *ln2_rstd; /* (L, B, T, C), (L, B, T) x2 */
    float *fch, *fch_gelu;            /* (L, B, T, 4C); fch_gelu (B, T, 4C), one layer's,
                                          ** with recompute */
    float *residual3;                 /* (L, B, T, C) block outputs */
    float *lnf, *lnf_mean, *lnf_rstd; /* (B, T, C), (B, T) x2 */
    float *logits;                    /* (B, T, V): logits, probs or their gradient */
    float *losses;                    /* (B, T) */
    float *dscale;                    /* (B, T) gradient scale of each position's loss */
    /* backward scratch, shared by all layers */
    float *dres;  /* (B, T, C) residual stream gradient */
    float *dln;   /* (B, T, C) */
    float *datty; /* (B, T, C); after a masked forward, until the backward's first product:
                  ** the final LayerNorm's scored rows (n_rows, C) */
    float *dqkv;  /* (B, T, 3C) */
    float *dfc;   /* (B, T, 4C) */
    float *datt;  /* attention scratch (KERN_ATT_SCRATCH) */
} GptActs;

typedef struct {
    GptConfig cfg;                      /* shape */
    size_t param_sizes[GPT_NUM_PARAMS]; /* floats per tensor */
    size_t nparams;                     /* total floats */
    float *params_memory;               /* one block, carved into params */
    float *grads_memory;                /* same layout (NULL until gpt_alloc_train) */
    float *m_memory, *v_memory;         /* AdamW moments (NULL until gpt_alloc_train) */
    GptParams params, grads;            /* pointers into the blocks */
    GptActs acts;                       /* activations for batch acts_B */
    float *acts_memory;                 /* one block */
    int acts_B;                         /* batch the activations were sized for (0: none) */
    int acts_threads;                   /* threads the attention scratch was sized for */
    uint32_t *inputs;                   /* (B, T) copy of the last forward's inputs */
    uint32_t *rows;                     /* (2, B, T) after inputs: the positions the LM head of
                                          ** the last masked forward ran on (ascending), then
                                          ** their targets */
    int n_rows;                         /* scored positions the LM head ran on; -1: every one
                                          ** (an unmasked forward) */
    int last_B;                         /* batch of the last forward */
    int have_grad;                      /* last forward prepared a backward */
    int bf16;                           /* matmuls of forward/backward in bf16 (oneDNN) */
    int recompute;                      /* keep less for the backward, recompute it there:
                                          ** attention probabilities (attention_*_rc), GELU
                                          ** outputs (cm-train --recompute) */
    int acts_recompute;                 /* recompute the activations were sized for */
    GptLora *lora;                      /* LoRA adapters, or NULL (lora.h): applied by the forward
                                          ** and the key/value step; while attached, training
                                          ** updates them alone (the base is frozen) */
} Gpt;

/* Check a configuration; returns NULL or a message. */
const char *gpt_config_check(const GptConfig *cfg);
/* Floats of all parameters of a model of shape cfg (no allocation). */
size_t gpt_param_count(const GptConfig *cfg);
/* Allocate the parameters (zero). */
void gpt_init(Gpt *m, const GptConfig *cfg);
void gpt_free(Gpt *m);
/* GPT-2 initialisation from a seed: N(0, std) weights, residual projections std/sqrt(2L),
** zero biases, LayerNorm weights 1. Deterministic. */
void gpt_init_weights(Gpt *m, uint64_t seed, float std);
/* Allocate gradients and AdamW moments (zero): the adapters' alone when m->lora is set. */
void gpt_alloc_train(Gpt *m);
/* Name and whether weight decay applies, of parameter tensor i. */
const char *gpt_param_name(int i);
int gpt_param_decay(int i);
float *gpt_param_tensor(float *memory, const Gpt *m, int i);
/* Non-embedding-position parameter count used for FLOPs (all but wpe), and FLOPs per token
** of one training step (6N + 12 L T C, as the PyTorch peer counts; with LoRA 4N + 6 x the
** adapter parameters + 12 L T C: no weight gradients for the frozen base). */
double gpt_flops_per_token(const Gpt *m);

/* Bytes of the activations gpt_forward allocates for batch B (with or without recompute). */
double gpt_acts_bytes(const GptConfig *cfg, int B, int recompute);

/* Forward over inputs (B, T). With targets, fills acts.losses and returns the mean loss;
** with grad_scale > 0 also prepares the backward: each position's loss gradient is
** grad_scale * w[b] / (B*T) (w NULL: 1). Without targets, acts.logits holds the logits and
** the return value is 0. */
double gpt_forward(Gpt *m, const uint32_t *inputs, const uint32_t *targets, const float *w, int B,
                   float grad_scale);
/* The same with a loss weight per target position (instruction tuning: 0 on prompt and padding
** targets, 1 on response targets and the end-of-text): mask (B*T; NULL: all 1). A target of
** mask 0 is not scored: its loss is left out of the sum and its gradient is exactly zero, so its
** id has no effect on any gradient. Returns the SUM of mask[i] * loss[i] over the scored targets
** and in *scored the sum of mask[i]; with grad_scale > 0, position i's loss gradient is
** grad_scale * w[b] * mask[i], not divided by anything: the caller divides by the targets scored
** in the whole optimizer step (all micro-batches, all ranks) to get the gradient of their mean
** loss (cm-train folds 1/scored into the AdamW gradient scale). With a mask the LM head runs
** on the scored positions alone (in bf16 padded with unscored ones to a multiple of B*T/8):
** acts.logits and acts.losses hold n_rows rows, the positions in rows[0..n_rows). */
double gpt_forward_mask(Gpt *m, const uint32_t *inputs, const uint32_t *targets, const float *w,
                        const float *mask, int B, float grad_scale, double *scored);
/* Zero the gradients. */
void gpt_zero_grad(Gpt *m);
/* Accumulate the gradients of the last forward (which had grad_scale > 0). */
void gpt_backward(Gpt *m);
/* L2 norm of all gradients (fixed-order sum). */
double gpt_grad_norm(const Gpt *m);
/* AdamW over every tensor (no decay on biases and LayerNorm). t is the 1-based step. */
void gpt_update(Gpt *m, float lr, float beta1, float beta2, float eps, float wd, float gscale,
                int t);

/* Time per kernel class, filled while gpt_profile_on is set (cm-train --profile). */
enum {
    PROF_MATMUL,
    PROF_ATTENTION,
    PROF_LAYERNORM,
    PROF_GELU,
    PROF_XENT,
    PROF_EMBED,
    PROF_RESIDUAL,
    PROF_ADAMW,
    PROF_N
};
extern int gpt_profile_on;
extern double gpt_profile[PROF_N]; /* seconds */
extern const char *const gpt_profile_names[PROF_N];

/* Key/value cache for generation, one token at a time. */
typedef struct {
    float *k, *v;        /* (L, T, C) */
    float *x, *x2, *buf; /* (C) work vectors */
    float *qkv;          /* (3C) */
    float *fch;          /* (4C) */
    float *att;          /* (T) */
    float *logits;       /* (V) */
} GptKV;

void gpt_kv_init(GptKV *kv, const Gpt *m);
void gpt_kv_free(GptKV *kv);
/* Run token `tok` at position pos (0 <= pos < T), keys/values of 0..pos-1 taken from the
** cache; returns the logits (V) for the next token. */
float *gpt_kv_step(const Gpt *m, GptKV *kv, uint32_t tok, int pos);

#endif
