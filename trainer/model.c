// SPDX-License-Identifier: MIT
/*
** model.c: the GPT-2 model of cm-train: parameter layout, forward, backward, AdamW update, and
** one-token generation with a key/value cache (see model.h).
*/
#include "trainer/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>

#include "util.h"                /* defines: xmalloc, xcalloc */
#include "hash.h"                /* defines: splitmix64 */
#include "trainer/kernels.h"     /* defines: the kernels */
#include "trainer/lora.h"        /* defines: GptLora, lora_* */
#include "trainer/matmul_bf16.h" /* defines: mm_bf16_forward, mm_bf16_backward */

/* --------------------------------------------------------------------------------------- */
/* Profiling                                                                               */

int gpt_profile_on;
double gpt_profile[PROF_N];
const char *const gpt_profile_names[PROF_N] = { "matmul",        "attention",    "layernorm",
                                                "gelu",          "softmax+xent", "embedding",
                                                "residual/copy", "adamw+norm" };

/* Run a kernel call, charging its time to class k when profiling. */
#define PROF(k, call) \
    do { \
        if (gpt_profile_on) { \
            double t0_ = now_sec(); \
            call; \
            gpt_profile[k] += now_sec() - t0_; \
        } else { \
            call; \
        } \
    } while (0)

/* --------------------------------------------------------------------------------------- */
/* Parameters                                                                              */

static const char *const param_names[GPT_NUM_PARAMS] = {
    "wte",  "wpe",  "ln1w", "ln1b", "qkvw",    "qkvb",    "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw",  "fcb",  "fcprojw", "fcprojb", "lnfw",     "lnfb"
};
/* Weight decay on matrices (dim >= 2: embeddings and linear weights), none on biases and LN. */
static const int param_decay[GPT_NUM_PARAMS] = { 1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0 };

/*
** Name of parameter tensor i (for messages and tests).
*/
const char *gpt_param_name(int i)
{
    return param_names[i];
}

/*
** 1 if weight decay applies to parameter tensor i.
*/
int gpt_param_decay(int i)
{
    return param_decay[i];
}

/*
** Check a configuration; NULL if usable, else what is wrong.
*/
const char *gpt_config_check(const GptConfig *c)
{
    if (c->L < 1 || c->L > 256) return "layers must be in 1..256";
    if (c->C < 1 || c->C > 16384) return "width must be in 1..16384";
    if (c->NH < 1 || c->C % c->NH) return "width must be a multiple of heads";
    if (c->T < 1 || c->T > 65536) return "context must be in 1..65536";
    if (c->V < 2 || c->V > (1 << 24)) return "vocabulary must be in 2..16777216";
    return NULL;
}

/*
** The size table (floats per tensor), in the order of GptParams.
*/
static void gpt_fill_sizes(size_t *s, const GptConfig *c)
{
    size_t L = c->L, C = c->C, T = c->T, V = c->V;
    s[0] = V * C;
    s[1] = T * C;
    s[2] = L * C;
    s[3] = L * C;
    s[4] = L * 3 * C * C;
    s[5] = L * 3 * C;
    s[6] = L * C * C;
    s[7] = L * C;
    s[8] = L * C;
    s[9] = L * C;
    s[10] = L * 4 * C * C;
    s[11] = L * 4 * C;
    s[12] = L * C * 4 * C;
    s[13] = L * C;
    s[14] = C;
    s[15] = C;
}

/*
** Carve the pointers of a GptParams out of one block laid out by the size table.
*/
static void gpt_point(GptParams *p, float *mem, const size_t *sizes)
{
    float **ptrs[GPT_NUM_PARAMS] = { &p->wte,     &p->wpe,     &p->ln1w,     &p->ln1b,
                                     &p->qkvw,    &p->qkvb,    &p->attprojw, &p->attprojb,
                                     &p->ln2w,    &p->ln2b,    &p->fcw,      &p->fcb,
                                     &p->fcprojw, &p->fcprojb, &p->lnfw,     &p->lnfb };
    for (int i = 0; i < GPT_NUM_PARAMS; i++) {
        *ptrs[i] = mem;
        mem += sizes[i];
    }
}

/*
** Start of tensor i inside a block of m's layout.
*/
float *gpt_param_tensor(float *memory, const Gpt *m, int i)
{
    for (int j = 0; j < i; j++) memory += m->param_sizes[j];
    return memory;
}

/*
** Total parameter floats for cfg, from the size table.
*/
size_t gpt_param_count(const GptConfig *cfg)
{
    size_t s[GPT_NUM_PARAMS], n = 0;
    gpt_fill_sizes(s, cfg);
    for (int i = 0; i < GPT_NUM_PARAMS; i++) n += s[i];
    return n;
}

/*
** Allocate zeroed parameters for cfg (which must pass gpt_config_check).
*/
void gpt_init(Gpt *m, const GptConfig *cfg)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    gpt_fill_sizes(m->param_sizes, cfg);
    for (int i = 0; i < GPT_NUM_PARAMS; i++) m->nparams += m->param_sizes[i];
    m->params_memory = xcalloc(m->nparams, sizeof(float));
    gpt_point(&m->params, m->params_memory, m->param_sizes);
}

/*
** Allocate the gradient and AdamW moment blocks.
*/
void gpt_alloc_train(Gpt *m)
{
    if (m->lora) { /* a frozen base: the adapters' alone */
        lora_alloc_train(m->lora);
        return;
    }
    if (m->grads_memory) return;
    m->grads_memory = kern_zalloc(m->nparams);
    m->m_memory = kern_zalloc(m->nparams);
    m->v_memory = kern_zalloc(m->nparams);
    gpt_point(&m->grads, m->grads_memory, m->param_sizes);
}

/*
** Free everything the model owns.
*/
void gpt_free(Gpt *m)
{
    free(m->params_memory);
    free(m->grads_memory);
    free(m->m_memory);
    free(m->v_memory);
    free(m->acts_memory);
    free(m->inputs);
    lora_free(m->lora);
    memset(m, 0, sizeof *m);
}

/*
** A standard normal deviate from the generator state (Box-Muller, one value per call).
*/
static float randn(uint64_t *st)
{
    double u1 = ((splitmix64(st) >> 11) + 1) * (1.0 / 9007199254740993.0);
    double u2 = (splitmix64(st) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/*
** GPT-2 initialisation: weights N(0, std), the two residual projections N(0, std/sqrt(2L)),
** biases 0, LayerNorm weights 1 and biases 0.
*/
void gpt_init_weights(Gpt *m, uint64_t seed, float std)
{
    uint64_t st = seed ^ 0x5eed5eed12345678ull;
    float pstd = std / sqrtf(2.0f * m->cfg.L);
    for (int i = 0; i < GPT_NUM_PARAMS; i++) {
        float *t = gpt_param_tensor(m->params_memory, m, i);
        size_t n = m->param_sizes[i];
        int is_ln_w = (i == 2 || i == 8 || i == 14);
        if (is_ln_w) {
            for (size_t j = 0; j < n; j++) t[j] = 1.0f;
            continue;
        }
        if (!param_decay[i]) {
            memset(t, 0, n * sizeof(float));
            continue;
        }
        float s = (i == 6 || i == 12) ? pstd : std;
        for (size_t j = 0; j < n; j++) t[j] = s * randn(&st);
    }
}

/*
** FLOPs of one training step per token: 6 x (parameters without wpe) + 12 L T C
** (attention), the count the PyTorch peer and nanoGPT use; with LoRA 4 x (the frozen base: no
** weight gradients) + 6 x the adapters + 12 L T C.
*/
double gpt_flops_per_token(const Gpt *m)
{
    const GptConfig *c = &m->cfg;
    double n = (double)(m->nparams - m->param_sizes[1]), att = 12.0 * c->L * c->T * c->C;
    if (m->lora) /* a frozen base: forward and input gradients (4N), no weight gradients */
        return 4.0 * n + 6.0 * (double)m->lora->n + att;
    return 6.0 * n + att;
}

/* --------------------------------------------------------------------------------------- */
/* Activations                                                                             */

/*
** Bytes of the activation block for batch B, as gpt_alloc_acts lays it out.
*/
double gpt_acts_bytes(const GptConfig *c, int B, int recompute)
{
    double L = c->L, C = c->C, NH = c->NH, T = c->T, V = c->V, N = (double)B * T;
    /* per position: each layer 16C + 4 (+ NH*T probabilities, or with recompute 4C less:
    ** one layer's GELU outputs), then 12C + V + 4 outside the layers */
    double per_layer = 16 * C + 4 + (recompute ? -4 * C : NH * T);
    return 4.0 *
        (N * (L * per_layer + (recompute ? 4 * C : 0) + 12 * C + V + 4) +
         (double)kernels_threads() * 2 * KERN_ATT_BLOCK * T);
}

/*
** (Re)allocate the activations for batch B: one block carved in order.
*/
static void gpt_alloc_acts(Gpt *m, int B)
{
    int threads = kernels_threads();
    if (m->acts_B == B && m->acts_threads >= threads && m->acts_recompute == m->recompute) return;
    size_t Lg = m->recompute ? 1 : m->cfg.L; /* layers of GELU outputs kept */
    size_t L = m->cfg.L, C = m->cfg.C, NH = m->cfg.NH, T = m->cfg.T, V = m->cfg.V;
    size_t N = (size_t)B * T;
    size_t sizes[26] = {
        N * C, /* encoded */
        L * N * C,
        L * N,
        L * N,                                 /* ln1 */
        L * N * 3 * C,                         /* qkv */
        m->recompute ? 0 : L * B * NH * T * T, /* att (none when recomputed) */
        L * N * C,                             /* atty */
        L * N * C,                             /* residual2 */
        L * N * C,
        L * N,
        L * N, /* ln2 */
        L * N * 4 * C,
        Lg * N * 4 * C, /* fch, fch_gelu */
        L * N * C,      /* residual3 */
        N * C,
        N,
        N, /* lnf */
        N * V,
        N,
        N, /* logits, losses, dscale */
        N * C,
        N * C,
        N * C,
        N * 3 * C,
        N * 4 * C,                                /* dres, dln, datty, dqkv, dfc */
        (size_t)threads * 2 * KERN_ATT_BLOCK * T, /* datt: attention scratch */
    };
    GptActs *a = &m->acts;
    float **ptrs[26] = { &a->encoded,  &a->ln1,      &a->ln1_mean,  &a->ln1_rstd,  &a->qkv,
                         &a->att,      &a->atty,     &a->residual2, &a->ln2,       &a->ln2_mean,
                         &a->ln2_rstd, &a->fch,      &a->fch_gelu,  &a->residual3, &a->lnf,
                         &a->lnf_mean, &a->lnf_rstd, &a->logits,    &a->losses,    &a->dscale,
                         &a->dres,     &a->dln,      &a->datty,     &a->dqkv,      &a->dfc,
                         &a->datt };
    size_t total = 0;
    for (int i = 0; i < 26; i++) total += sizes[i];
    free(m->acts_memory);
    free(m->inputs);
    m->acts_memory = xmalloc(total * sizeof(float));
    float *p = m->acts_memory;
    for (int i = 0; i < 26; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    m->inputs = xmalloc(3 * N * sizeof(uint32_t));
    m->rows = m->inputs + N;
    m->acts_B = B;
    m->acts_threads = threads;
    m->acts_recompute = m->recompute;
}

/* --------------------------------------------------------------------------------------- */
/* Forward and backward                                                                    */

/* A linear layer's product in the model's precision: OpenBLAS fp32, or oneDNN bf16. */
static void mm_fwd(const Gpt *m, float *out, const float *inp, const float *weight,
                   const float *bias, const float *add, int N, int C, int OC)
{
    if (m->bf16)
        mm_bf16_forward(out, inp, weight, bias, add, N, C, OC);
    else
        matmul_forward(out, inp, weight, bias, add, N, C, OC);
}

static void mm_bwd(const Gpt *m, float *dinp, float *dweight, float *dbias, const float *dout,
                   const float *inp, const float *weight, int N, int C, int OC)
{
    if (m->bf16)
        mm_bf16_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    else
        matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}

static double forward_loss(Gpt *m, const uint32_t *targets, const float *w, const float *mask,
                           int B, float grad_scale, double *scored);

/*
** The LM head of a masked forward on the scored positions alone: their final LayerNorm rows are
** gathered into acts.datty and their logits fill the first n_rows rows of acts.logits. Prompt
** and padding positions have zero gradient and stay out of the loss, so their logits were
** never used: on instruction pairs (55.7% of targets scored at T=256) this skips 44% of the
** largest product and of the softmax. In bf16 the count is padded with unscored positions
** (gradient scale 0) to a multiple of N/8: oneDNN caches a primitive per shape, and a count
** that changes every step would create three each step and churn the cache.
*/
static void head_scored(Gpt *m, const uint32_t *targets, const float *mask, size_t N)
{
    int C = m->cfg.C, V = m->cfg.V;
    GptActs *a = &m->acts;
    uint32_t *rows = m->rows, *tg = m->rows + N;
    size_t scored = 0, pad = 0, k = 0;
    for (size_t i = 0; i < N; i++) scored += mask[i] != 0.0f;
    if (m->bf16 && scored) {
        size_t q = (N + 7) / 8, want = (scored + q - 1) / q * q;
        pad = (want < N ? want : N) - scored;
    }
    for (size_t i = 0; i < N; i++) { /* in position order: the backward's scatter relies on it */
        if (mask[i] == 0.0f) {
            if (!pad) continue;
            pad--;
        }
        rows[k] = (uint32_t)i;
        tg[k++] = targets[i];
    }
    m->n_rows = (int)k;
    PROF(PROF_RESIDUAL, kern_gather_rows(a->datty, a->lnf, rows, k, C));
    if (k) PROF(PROF_MATMUL, mm_fwd(m, a->logits, a->datty, m->params.wte, NULL, NULL, k, C, V));
}

/*
** Forward pass (see model.h): gpt_forward (scored NULL: the mean loss over B*T positions, each
** gradient / (B*T)) and gpt_forward_mask (the sum over the scored targets). 0 without targets.
*/
static double forward(Gpt *m, const uint32_t *inputs, const uint32_t *targets, const float *w,
                      const float *mask, int B, float grad_scale, double *scored)
{
    gpt_alloc_acts(m, B);
    int L = m->cfg.L, C = m->cfg.C, NH = m->cfg.NH, T = m->cfg.T, V = m->cfg.V;
    size_t N = (size_t)B * T;
    GptParams *p = &m->params;
    GptActs *a = &m->acts;
    memcpy(m->inputs, inputs, N * sizeof(uint32_t));
    m->last_B = B;
    m->have_grad = 0;
    GptLora *lo = m->lora;
    if (lo) lora_reserve(lo, N);

    PROF(PROF_EMBED, encoder_forward(a->encoded, inputs, p->wte, p->wpe, B, T, C));
    const float *residual = a->encoded;
    for (int l = 0; l < L; l++) {
        float *ln1 = a->ln1 + l * N * C, *ln1_mean = a->ln1_mean + l * N,
              *ln1_rstd = a->ln1_rstd + l * N, *qkv = a->qkv + l * N * 3 * C,
              *att = m->recompute ? NULL : a->att + (size_t)l * B * NH * T * T,
              *atty = a->atty + l * N * C, *res2 = a->residual2 + l * N * C,
              *ln2 = a->ln2 + l * N * C, *ln2_mean = a->ln2_mean + l * N,
              *ln2_rstd = a->ln2_rstd + l * N, *fch = a->fch + l * N * 4 * C,
              *fch_gelu = a->fch_gelu + (m->recompute ? 0 : l * N * 4 * C),
              *res3 = a->residual3 + l * N * C;
        size_t c = C;
        PROF(PROF_LAYERNORM,
             layernorm_forward(ln1, ln1_mean, ln1_rstd, residual, p->ln1w + l * c, p->ln1b + l * c,
                               N, C));
        PROF(PROF_MATMUL,
             mm_fwd(m, qkv, ln1, p->qkvw + l * 3 * c * c, p->qkvb + l * 3 * c, NULL, N, C, 3 * C));
        if (lo) PROF(PROF_MATMUL, lora_forward(lo, LORA_C_ATTN, l, qkv, ln1, N));
        if (m->recompute)
            PROF(PROF_ATTENTION, attention_forward_rc(atty, a->datt, qkv, B, T, C, NH));
        else
            PROF(PROF_ATTENTION, attention_forward(atty, att, qkv, B, T, C, NH));
        PROF(
            PROF_MATMUL,
            mm_fwd(m, res2, atty, p->attprojw + l * c * c, p->attprojb + l * c, residual, N, C, C));
        if (lo) PROF(PROF_MATMUL, lora_forward(lo, LORA_ATTN_C_PROJ, l, res2, atty, N));
        PROF(PROF_LAYERNORM,
             layernorm_forward(ln2, ln2_mean, ln2_rstd, res2, p->ln2w + l * c, p->ln2b + l * c, N,
                               C));
        PROF(PROF_MATMUL,
             mm_fwd(m, fch, ln2, p->fcw + l * 4 * c * c, p->fcb + l * 4 * c, NULL, N, C, 4 * C));
        if (lo) PROF(PROF_MATMUL, lora_forward(lo, LORA_MLP_C_FC, l, fch, ln2, N));
        PROF(PROF_GELU, gelu_forward(fch_gelu, fch, N * 4 * C));
        PROF(PROF_MATMUL,
             mm_fwd(m, res3, fch_gelu, p->fcprojw + l * 4 * c * c, p->fcprojb + l * c, res2, N,
                    4 * C, C));
        if (lo) PROF(PROF_MATMUL, lora_forward(lo, LORA_MLP_C_PROJ, l, res3, fch_gelu, N));
        residual = res3;
    }
    PROF(PROF_LAYERNORM,
         layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, residual, p->lnfw, p->lnfb, N, C));
    if (targets && mask) {
        head_scored(m, targets, mask, N);
    } else {
        m->n_rows = -1;
        PROF(PROF_MATMUL, mm_fwd(m, a->logits, a->lnf, p->wte, NULL, NULL, N, C, V));
    }
    if (!targets) return 0.0;
    return forward_loss(m, targets, w, mask, B, grad_scale, scored);
}

double gpt_forward(Gpt *m, const uint32_t *inputs, const uint32_t *targets, const float *w, int B,
                   float grad_scale)
{
    return forward(m, inputs, targets, w, NULL, B, grad_scale, NULL);
}

double gpt_forward_mask(Gpt *m, const uint32_t *inputs, const uint32_t *targets, const float *w,
                        const float *mask, int B, float grad_scale, double *scored)
{
    double n = 0;
    double sum = forward(m, inputs, targets, w, mask, B, grad_scale, &n);
    if (scored) *scored = n;
    return sum;
}

/*
** The loss of the logits of the last forward against targets, and each row's gradient scale
** (dscale): grad_scale * w[b] / (B*T) without *scored (every position is a row; the mean over
** them is returned), grad_scale * w[b] * mask[i] with it (with a mask the rows are the scored
** positions head_scored kept; the sum of their losses times the mask is returned, the sum of
** the mask in *scored).
*/
static double forward_loss(Gpt *m, const uint32_t *targets, const float *w, const float *mask,
                           int B, float grad_scale, double *scored)
{
    int T = m->cfg.T, V = m->cfg.V;
    size_t N = (size_t)B * T, nr = m->n_rows < 0 ? N : (size_t)m->n_rows;
    const uint32_t *pos = m->n_rows < 0 ? NULL : m->rows; /* row r's position */
    if (pos) targets = m->rows + N;
    GptActs *a = &m->acts;
    float div = scored ? 1.0f : (float)N;
    const float *dscale = NULL;
    if (grad_scale > 0.0f) {
        for (size_t r = 0; r < nr; r++) {
            size_t i = pos ? pos[r] : r;
            float s = grad_scale * (w ? w[i / T] : 1.0f) / div;
            a->dscale[r] = mask ? s * mask[i] : s;
        }
        dscale = a->dscale;
        m->have_grad = 1;
    }
    if (nr) PROF(PROF_XENT, crossentropy_forward(a->logits, a->losses, targets, dscale, nr, V));
    double sum = 0.0, n = 0.0;
    for (size_t r = 0; r < nr; r++) {
        size_t i = pos ? pos[r] : r;
        if (mask && mask[i] == 0.0f) continue; /* bf16's padding: even an infinite loss stays out */
        sum += mask ? (double)mask[i] * a->losses[r] : a->losses[r];
        n += mask ? mask[i] : 1.0;
    }
    if (!scored) return sum / N;
    *scored = n;
    return sum;
}

/*
** Set every gradient to zero.
*/
void gpt_zero_grad(Gpt *m)
{
    if (m->grads_memory) PROF(PROF_RESIDUAL, kern_zero(m->grads_memory, m->nparams));
    if (m->lora && m->lora->grads) PROF(PROF_RESIDUAL, kern_zero(m->lora->grads, m->lora->n));
}

/* Tensor g at offset off, or NULL for a frozen model's gradients (LoRA: none allocated). */
#define GRAD(g, off) ((g) ? (g) + (off) : NULL)

/*
** Backward pass of the last forward: gradients accumulate into m->grads, and into the adapters'
** with LoRA (the frozen base gets none: the kernels compute input gradients only).
*/
void gpt_backward(Gpt *m)
{
    GptLora *lo = m->lora;
    if (!m->have_grad || (!m->grads_memory && !(lo && lo->grads))) return;
    int L = m->cfg.L, C = m->cfg.C, NH = m->cfg.NH, T = m->cfg.T, V = m->cfg.V, B = m->last_B;
    size_t N = (size_t)B * T, c = C;
    GptParams *p = &m->params, *g = &m->grads;
    GptActs *a = &m->acts;

    PROF(PROF_RESIDUAL, kern_zero(a->dres, N * C));
    const float *res_last = L > 0 ? a->residual3 + (L - 1) * N * C : a->encoded;
    if (m->n_rows < 0) {
        PROF(PROF_MATMUL, mm_bwd(m, a->dln, g->wte, NULL, a->logits, a->lnf, p->wte, N, C, V));
    } else { /* the scored rows alone (head_scored); the others' gradient is zero */
        int k = m->n_rows;
        if (k)
            PROF(PROF_MATMUL,
                 mm_bwd(m, a->dqkv, g->wte, NULL, a->logits, a->datty, p->wte, k, C, V));
        PROF(PROF_RESIDUAL, kern_scatter_rows(a->dln, N, a->dqkv, m->rows, k, C));
    }
    PROF(PROF_LAYERNORM,
         layernorm_backward(a->dres, g->lnfw, g->lnfb, a->dln, res_last, p->lnfw, a->lnf_mean,
                            a->lnf_rstd, N, C));
    for (int l = L - 1; l >= 0; l--) {
        const float *residual = l == 0 ? a->encoded : a->residual3 + (l - 1) * N * C;
        float *ln1 = a->ln1 + l * N * C, *ln1_mean = a->ln1_mean + l * N,
              *ln1_rstd = a->ln1_rstd + l * N, *qkv = a->qkv + l * N * 3 * C,
              *att = m->recompute ? NULL : a->att + (size_t)l * B * NH * T * T,
              *atty = a->atty + l * N * C, *res2 = a->residual2 + l * N * C,
              *ln2 = a->ln2 + l * N * C, *ln2_mean = a->ln2_mean + l * N,
              *ln2_rstd = a->ln2_rstd + l * N, *fch = a->fch + l * N * 4 * C,
              *fch_gelu = a->fch_gelu + (m->recompute ? 0 : l * N * 4 * C);
        if (m->recompute) PROF(PROF_GELU, gelu_forward(fch_gelu, fch, N * 4 * C));
        PROF(PROF_MATMUL,
             mm_bwd(m, a->dfc, GRAD(g->fcprojw, l * 4 * c * c), GRAD(g->fcprojb, l * c), a->dres,
                    fch_gelu, p->fcprojw + l * 4 * c * c, N, 4 * C, C));
        if (lo)
            PROF(PROF_MATMUL, lora_backward(lo, LORA_MLP_C_PROJ, l, a->dfc, a->dres, fch_gelu, N));
        PROF(PROF_GELU, gelu_backward(a->dfc, fch, a->dfc, N * 4 * C));
        PROF(PROF_MATMUL,
             mm_bwd(m, a->dln, GRAD(g->fcw, l * 4 * c * c), GRAD(g->fcb, l * 4 * c), a->dfc, ln2,
                    p->fcw + l * 4 * c * c, N, C, 4 * C));
        if (lo) PROF(PROF_MATMUL, lora_backward(lo, LORA_MLP_C_FC, l, a->dln, a->dfc, ln2, N));
        PROF(PROF_LAYERNORM,
             layernorm_backward(a->dres, GRAD(g->ln2w, l * c), GRAD(g->ln2b, l * c), a->dln, res2,
                                p->ln2w + l * c, ln2_mean, ln2_rstd, N, C));
        PROF(PROF_MATMUL,
             mm_bwd(m, a->datty, GRAD(g->attprojw, l * c * c), GRAD(g->attprojb, l * c), a->dres,
                    atty, p->attprojw + l * c * c, N, C, C));
        if (lo)
            PROF(PROF_MATMUL, lora_backward(lo, LORA_ATTN_C_PROJ, l, a->datty, a->dres, atty, N));
        if (m->recompute)
            PROF(PROF_ATTENTION,
                 attention_backward_rc(a->dqkv, a->datt, a->datty, qkv, B, T, C, NH));
        else
            PROF(PROF_ATTENTION,
                 attention_backward(a->dqkv, a->datt, a->datty, qkv, att, B, T, C, NH));
        PROF(PROF_MATMUL,
             mm_bwd(m, a->dln, GRAD(g->qkvw, l * 3 * c * c), GRAD(g->qkvb, l * 3 * c), a->dqkv, ln1,
                    p->qkvw + l * 3 * c * c, N, C, 3 * C));
        if (lo) PROF(PROF_MATMUL, lora_backward(lo, LORA_C_ATTN, l, a->dln, a->dqkv, ln1, N));
        PROF(PROF_LAYERNORM,
             layernorm_backward(a->dres, GRAD(g->ln1w, l * c), GRAD(g->ln1b, l * c), a->dln,
                                residual, p->ln1w + l * c, ln1_mean, ln1_rstd, N, C));
    }
    PROF(PROF_EMBED, encoder_backward(g->wte, g->wpe, a->dres, m->inputs, B, T, C));
}

/*
** Global L2 norm of the gradients (the base's, then the adapters').
*/
double gpt_grad_norm(const Gpt *m)
{
    double s = 0;
    if (m->grads_memory) PROF(PROF_ADAMW, s = kern_sumsq(m->grads_memory, m->nparams));
    if (m->lora && m->lora->grads) PROF(PROF_ADAMW, s += kern_sumsq(m->lora->grads, m->lora->n));
    return sqrt(s);
}

/*
** AdamW step on every parameter tensor; decay only on matrices.
*/
void gpt_update(Gpt *m, float lr, float beta1, float beta2, float eps, float wd, float gscale,
                int t)
{
    if (m->lora && m->lora->grads)
        PROF(PROF_ADAMW, lora_update(m->lora, lr, beta1, beta2, eps, wd, gscale, t));
    if (!m->grads_memory) return; /* frozen */
    size_t off = 0;
    for (int i = 0; i < GPT_NUM_PARAMS; i++) {
        size_t n = m->param_sizes[i];
        PROF(PROF_ADAMW,
             adamw_update(m->params_memory + off, m->grads_memory + off, m->m_memory + off,
                          m->v_memory + off, n, lr, beta1, beta2, eps, param_decay[i] ? wd : 0.0f,
                          gscale, t));
        off += n;
    }
}

/* --------------------------------------------------------------------------------------- */
/* Generation with a key/value cache                                                       */

/*
** Allocate a cache for m's context length.
*/
void gpt_kv_init(GptKV *kv, const Gpt *m)
{
    size_t L = m->cfg.L, C = m->cfg.C, T = m->cfg.T, V = m->cfg.V;
    kv->k = xcalloc(L * T * C, sizeof(float));
    kv->v = xcalloc(L * T * C, sizeof(float));
    kv->x = xmalloc(C * sizeof(float));
    kv->x2 = xmalloc(C * sizeof(float));
    kv->buf = xmalloc(C * sizeof(float));
    kv->qkv = xmalloc(3 * C * sizeof(float));
    kv->fch = xmalloc(8 * C * sizeof(float));
    kv->att = xmalloc(T * sizeof(float));
    kv->logits = xmalloc(V * sizeof(float));
}

/*
** Free a cache.
*/
void gpt_kv_free(GptKV *kv)
{
    free(kv->k);
    free(kv->v);
    free(kv->x);
    free(kv->x2);
    free(kv->buf);
    free(kv->qkv);
    free(kv->fch);
    free(kv->att);
    free(kv->logits);
    memset(kv, 0, sizeof *kv);
}

/*
** One token through the model at position pos, using and extending the cache.
*/
float *gpt_kv_step(const Gpt *m, GptKV *kv, uint32_t tok, int pos)
{
    int L = m->cfg.L, C = m->cfg.C, NH = m->cfg.NH, T = m->cfg.T, V = m->cfg.V, hd = C / NH;
    size_t c = C;
    const GptParams *p = &m->params;
    const GptLora *lo = m->lora;
    float mean, rstd, scale = 1.0f / sqrtf((float)hd);
    float *x = kv->x, *x2 = kv->x2, *buf = kv->buf, *gel = kv->fch + 4 * C;
    for (int i = 0; i < C; i++) x[i] = p->wte[(size_t)tok * C + i] + p->wpe[(size_t)pos * C + i];
    for (int l = 0; l < L; l++) {
        float *kc = kv->k + (size_t)l * T * C, *vc = kv->v + (size_t)l * T * C;
        layernorm_forward(buf, &mean, &rstd, x, p->ln1w + l * c, p->ln1b + l * c, 1, C);
        matmul_forward(kv->qkv, buf, p->qkvw + l * 3 * c * c, p->qkvb + l * 3 * c, NULL, 1, C,
                       3 * C);
        if (lo) lora_forward_row(lo, LORA_C_ATTN, l, kv->qkv, buf);
        memcpy(kc + (size_t)pos * C, kv->qkv + C, c * sizeof(float));
        memcpy(vc + (size_t)pos * C, kv->qkv + 2 * C, c * sizeof(float));
        for (int h = 0; h < NH; h++) {
            const float *q = kv->qkv + h * hd;
            float mx = -1e30f, sum = 0.0f;
            for (int j = 0; j <= pos; j++) {
                const float *k = kc + (size_t)j * C + h * hd;
                float s = 0.0f;
                for (int i = 0; i < hd; i++) s += q[i] * k[i];
                kv->att[j] = s * scale;
                if (kv->att[j] > mx) mx = kv->att[j];
            }
            for (int j = 0; j <= pos; j++) {
                kv->att[j] = expf(kv->att[j] - mx);
                sum += kv->att[j];
            }
            float *y = buf + h * hd;
            for (int i = 0; i < hd; i++) y[i] = 0.0f;
            for (int j = 0; j <= pos; j++) {
                const float *v = vc + (size_t)j * C + h * hd;
                float pj = kv->att[j] / sum;
                for (int i = 0; i < hd; i++) y[i] += pj * v[i];
            }
        }
        matmul_forward(x2, buf, p->attprojw + l * c * c, p->attprojb + l * c, x, 1, C, C);
        if (lo) lora_forward_row(lo, LORA_ATTN_C_PROJ, l, x2, buf);
        layernorm_forward(buf, &mean, &rstd, x2, p->ln2w + l * c, p->ln2b + l * c, 1, C);
        matmul_forward(kv->fch, buf, p->fcw + l * 4 * c * c, p->fcb + l * 4 * c, NULL, 1, C, 4 * C);
        if (lo) lora_forward_row(lo, LORA_MLP_C_FC, l, kv->fch, buf);
        gelu_forward(gel, kv->fch, 4 * c);
        matmul_forward(x, gel, p->fcprojw + l * 4 * c * c, p->fcprojb + l * c, x2, 1, 4 * C, C);
        if (lo) lora_forward_row(lo, LORA_MLP_C_PROJ, l, x, gel);
    }
    layernorm_forward(buf, &mean, &rstd, x, p->lnfw, p->lnfb, 1, C);
    matmul_forward(kv->logits, buf, p->wte, NULL, NULL, 1, C, V);
    return kv->logits;
}
