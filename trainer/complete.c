// SPDX-License-Identifier: MIT
/*
** complete.c: the complete verb: a checkpoint's model continues a prompt (encoded with the
** corpus's tokenizer), greedy or sampled with temperature, top-k and top-p; prompt and
** continuation on stdout. With --template (an instruction-tuned model) the prompt is an
** instruction rendered by lib/template.h as `cm-tokenize encode --template` renders the
** examples the model was trained on, and only the response is printed.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "util.h"            /* defines: error, Buf, xmalloc, exit codes */
#include "io.h"              /* defines: Out */
#include "hash.h"            /* defines: splitmix64 */
#include "atomic.h"          /* defines: cm_stopping */
#include "template.h"        /* defines: Template, template_open, template_render_prompt */
#include "shards/corpus.h"   /* defines: corpus_tokenizer_json, corpus_vocab_size */
#include "tokenize/bpe.h"    /* defines: bpe_load_mem, bpe_encode, bpe_decode */
#include "trainer/ckpt.h"    /* defines: ckpt_load */
#include "trainer/kernels.h" /* defines: kernels_set_threads */
#include "trainer/model.h"   /* defines: Gpt, GptKV, gpt_kv_* */
#include "trainer/options.h" /* defines: TrainerOpts, opts_parse, TOPT_* */
#include "trainer/verbs.h"   /* defines: verb_complete */

static const CliOpt complete_opts[] = {
    { "ckpt", 0, "FILE", "DATA/model.ckpt", "the checkpoint (a directory: DIR/ckpt.bin)",
      TOPT_CKPT },
    { "data", 0, "DIR", NULL, "the corpus the model was trained on (its tokenizer)", TOPT_DATA },
    { "prompt", 0, "TEXT", NULL, "the code to continue", TOPT_PROMPT },
    { "template", 0, "NAME|FILE", NULL,
      "instead of --prompt: ask an instruction-tuned model with\n"
      "this template (built in: alpaca; or a template file, as\n"
      "for cm-tokenize encode --template); prints the response only",
      TOPT_TEMPLATE },
    { "instruction", 0, "TEXT", NULL, "with --template: the instruction", TOPT_INSTRUCTION },
    { "input", 0, "TEXT", NULL, "with --template: the input (optional)", TOPT_INPUT },
    { "system", 0, "TEXT", NULL, "with --template: the system text (optional)", TOPT_SYSTEM },
    { "max-tokens", 0, "N", "64", "tokens to generate at most (within the context)",
      TOPT_MAX_TOKENS },
    { "temperature", 0, "X", "0.8", "sampling temperature; 0 is greedy", TOPT_TEMPERATURE },
    { "top-k", 0, "K", "50", "sample among the K likeliest tokens (0: all)", TOPT_TOP_K },
    { "top-p", 0, "P", "0.95", "then among the fewest of mass >= P (1: all)", TOPT_TOP_P },
    { "seed", 0, "S", "1", "sampling seed; same seed, same text", TOPT_SEED },
    TRAINER_ROW_THREADS,
    TRAINER_ROW_BLAS_CORE,
    { 0 }
};

static const CliSpec complete_spec = {
    "cm-train",
    "complete",
    "--ckpt FILE --data DIR (--prompt TEXT | --template NAME|FILE --instruction TEXT\n"
    "       [--input TEXT]) [options]",
    "Continue a prompt with a checkpoint's model: the prompt and the generated code on stdout\n"
    "(generation stops at the end-of-text token, --max-tokens or the context length).\n"
    "With --template: the template's prompt for --instruction (and --input, --system) is\n"
    "encoded exactly as cm-tokenize encode --template encodes an example's prompt, and only\n"
    "the model's response is printed (then a newline, unless it ends with one). A prompt\n"
    "that leaves no room in the context for a response (T tokens or more: training skips\n"
    "such examples) is refused (exit 2); a template that is neither built in nor a file:\n"
    "exit 2, unreadable: 3, broken: 4.",
    "Memory is bounded by the model, not by the corpus: 4 bytes per parameter (8 while the\n"
    "checkpoint's checksum is verified) + the key/value cache, 8*L*T*C bytes, + 12*V bytes of\n"
    "logits and candidates + the tokenizer.\n" TRAINER_EXIT_NOTE,
    complete_opts,
    NULL
};

typedef struct {
    float p;     /* unnormalised probability */
    uint32_t id; /* token id */
} Cand;

/*
** qsort order for sampling: probability descending, then id ascending (deterministic).
*/
static int cand_cmp(const void *a, const void *b)
{
    const Cand *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/*
** Choose the next token from logits: greedy at temperature 0, else softmax(logits/temp)
** restricted to the top k and to the smallest set of probability mass >= top_p.
*/
static uint32_t sample_token(const float *logits, int V, double temp, long top_k, double top_p,
                             uint64_t *rng, Cand *c)
{
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (temp <= 0) return (uint32_t)best;
    double mx = logits[best], sum = 0;
    for (int i = 0; i < V; i++) {
        c[i].p = (float)exp((logits[i] - mx) / temp);
        c[i].id = (uint32_t)i;
        sum += c[i].p;
    }
    qsort(c, (size_t)V, sizeof *c, cand_cmp);
    int n = V;
    if (top_k > 0 && top_k < n) n = (int)top_k;
    double acc = 0;
    for (int i = 0; i < n; i++) {
        acc += c[i].p / sum;
        if (acc >= top_p) {
            n = i + 1;
            break;
        }
    }
    double tot = 0;
    for (int i = 0; i < n; i++) tot += c[i].p;
    double r = (splitmix64(rng) >> 11) * (1.0 / 9007199254740992.0) * tot;
    for (int i = 0; i < n; i++) {
        r -= c[i].p;
        if (r < 0) return c[i].id;
    }
    return c[n - 1].id;
}

/*
** The corpus's tokenizer, checked against the model's vocabulary. 0, or the exit status
** after a message.
*/
static int complete_tokenizer(const TrainerOpts *o, const Gpt *m, Corpus **corpus, Bpe **bpe)
{
    char err[1024];
    int rc = opts_open_corpus(o->data, corpus);
    if (rc != 0) return rc;
    size_t jl = 0;
    const char *json = corpus_tokenizer_json(*corpus, &jl);
    if (!json || !(*bpe = bpe_load_mem(json, jl, o->data, err, sizeof err))) {
        error("%s", json ? err : "no tokenizer in the corpus index");
        return CM_EFORMAT;
    }
    if ((int)bpe_vocab_size(*bpe) > m->cfg.V || (int)corpus_vocab_size(*corpus) != m->cfg.V) {
        error("%s: the tokenizer has %u tokens (corpus vocabulary %u), the checkpoint's model "
              "%d: not trained on this corpus",
              o->data, bpe_vocab_size(*bpe), corpus_vocab_size(*corpus), m->cfg.V);
        return CM_EFORMAT;
    }
    return CM_OK;
}

/*
** Run the prompt ids[first..n) through the model and append up to --max-tokens sampled ids
** (not the end-of-text token eot) to ids. *gen0: where the generated ids begin.
*/
static void complete_generate(const TrainerOpts *o, const Gpt *m, int64_t eot, uint32_t **ids,
                              size_t *n, size_t *cap, size_t first)
{
    GptKV kv;
    gpt_kv_init(&kv, m);
    Cand *cand = xmalloc((size_t)m->cfg.V * sizeof *cand);
    uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + 1;
    float *logits = NULL;
    int pos = 0, T = m->cfg.T;
    for (size_t i = first; i < *n; i++) logits = gpt_kv_step(m, &kv, (*ids)[i], pos++);
    for (long k = 0; k < o->max_tokens && pos < T && !cm_stopping(); k++) {
        uint32_t t = sample_token(logits, m->cfg.V, o->temperature, o->top_k, o->top_p, &rng, cand);
        if ((int64_t)t == eot) break;
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 64;
            *ids = xrealloc(*ids, *cap * sizeof **ids);
        }
        (*ids)[(*n)++] = t;
        logits = gpt_kv_step(m, &kv, t, pos++);
    }
    free(cand);
    gpt_kv_free(&kv);
}

/*
** The --template prompt for --instruction, --input and --system, encoded as cm-tokenize
** encode --template encodes an example's prompt: encode(rendered prompt), one call. 0, or the
** exit status after a message (a prompt leaving no room for a response: 2).
*/
static int complete_template_ids(const TrainerOpts *o, const Template *tpl, const Bpe *bpe, int T,
                                 uint32_t **ids, size_t *n, size_t *cap)
{
    char err[1024];
    Str v[TPL_NFIELDS] = { { 0 } };
    const char *given[TPL_NFIELDS] = { 0 };
    given[TPL_INSTRUCTION] = o->instruction;
    given[TPL_INPUT] = o->input;
    given[TPL_SYSTEM] = o->system;
    for (int i = 0; i < TPL_NFIELDS; i++)
        if (given[i]) v[i] = (Str){ given[i], strlen(given[i]) };
    Buf prompt = { 0 };
    int rc = CM_OK;
    if (template_render_prompt(tpl, v, &prompt, err, sizeof err) != 0) {
        error("template %s: %s", tpl->name, err);
        rc = CM_EUSAGE;
    } else if (bpe_encode(bpe, prompt.buf ? prompt.buf : "", prompt.len, ids, n, cap) != 0) {
        error("cannot encode the prompt");
        rc = CM_EINTERNAL;
    } else if (*n >= (size_t)T) {
        rc = cli_spec_usage_error(&complete_spec,
                                  "the prompt of template %s is %zu tokens: the model's "
                                  "context is %d, no room for a response",
                                  tpl->name, *n, T);
    }
    buf_free(&prompt);
    return rc;
}

/*
** Encode the prompt (--prompt, or tpl's for --instruction), generate, print the prompt and the
** decoded continuation (with a template: the continuation, the response, only). Returns the
** exit status.
*/
static int complete_run(const TrainerOpts *o, const Gpt *m, Bpe *bpe, const Template *tpl)
{
    uint32_t *ids = NULL;
    size_t n = 0, cap = 0;
    Buf text = { 0 };
    int rc = CM_OK;
    int64_t eot = bpe_eot_id(bpe);
    int T = m->cfg.T;
    if (tpl) {
        if ((rc = complete_template_ids(o, tpl, bpe, T, &ids, &n, &cap)) != CM_OK) goto done;
    } else if (bpe_encode(bpe, o->prompt, strlen(o->prompt), &ids, &n, &cap) != 0) {
        error("cannot encode the prompt");
        rc = CM_EINTERNAL;
        goto done;
    }
    size_t first = n > (size_t)T - 1 ? n - ((size_t)T - 1) : 0; /* keep room for one token */
    if (n == 0) {
        if (eot < 0) {
            rc = cli_spec_usage_error(&complete_spec,
                                      "empty prompt and no end-of-text token to start from");
            goto done;
        }
        ids = xrealloc(ids, sizeof(uint32_t));
        ids[0] = (uint32_t)eot;
        n = 1;
        cap = 1;
    }
    size_t gen0 = n;
    complete_generate(o, m, eot, &ids, &n, &cap, first);
    if (cm_stopping()) {
        error("complete: interrupted, nothing printed");
        rc = CM_EINTR;
        goto done;
    }
    if (!tpl) buf_adds(&text, o->prompt);
    if (n > gen0 && bpe_decode(bpe, ids + gen0, n - gen0, &text) != 0) {
        error("generated an id the tokenizer does not know");
        rc = CM_EINTERNAL;
        goto done;
    }
    Out out;
    out_init(&out, 1, "stdout", 1 << 12);
    out_write(&out, text.buf, text.len);
    if (!tpl || text.len == 0 || text.buf[text.len - 1] != '\n')
        out_putc(&out, '\n'); /* a response ends its own line; a continuation gets one */
    out_done(&out);
done:
    buf_free(&text);
    free(ids);
    return rc;
}

/*
** What is wrong with the options' combination, or NULL: --data and exactly one of --prompt
** and --template, the latter with --instruction; --instruction, --input, --system only with it.
*/
static const char *complete_usage(const TrainerOpts *o)
{
    if (!o->data) return "complete needs --data DIR (for the tokenizer)";
    if (o->prompt && o->template_spec)
        return "--prompt and --template exclude each other (a template makes the prompt)";
    if (o->template_spec && !o->instruction) return "--template needs --instruction TEXT";
    if (!o->template_spec && (o->instruction || o->input || o->system))
        return "--instruction, --input and --system need --template NAME|FILE";
    if (!o->prompt && !o->template_spec)
        return "complete needs --prompt TEXT (or --template NAME|FILE --instruction TEXT)";
    return NULL;
}

/*
** The complete verb.
*/
int verb_complete(int argc, char **argv)
{
    TrainerOpts o;
    int rc;
    if (!opts_parse(&o, &complete_spec, argc, argv, &rc)) return rc;
    char *ck = opts_ckpt_path(&o);
    if (!ck) return cli_spec_usage_error(&complete_spec, "complete needs --ckpt FILE");
    const char *bad = complete_usage(&o);
    if (bad) {
        free(ck);
        return cli_spec_usage_error(&complete_spec, "%s", bad);
    }
    Template tpl;
    char err[1024];
    if (o.template_spec && (rc = template_open(&tpl, o.template_spec, err, sizeof err)) != CM_OK) {
        free(ck);
        error("%s", err);
        return rc; /* 2 neither built in nor a file, 3 unreadable, 4 broken */
    }
    kernels_set_threads((int)o.threads);
    Gpt m;
    CkptInfo info;
    int r = ckpt_load(ck, &m, &info, 0);
    free(ck);
    if (r) {
        if (o.template_spec) template_free(&tpl);
        return r == -1 ? CM_EIO : CM_EFORMAT;
    }
    Corpus *corpus = NULL;
    Bpe *bpe = NULL;
    rc = complete_tokenizer(&o, &m, &corpus, &bpe);
    if (rc == CM_OK) rc = complete_run(&o, &m, bpe, o.template_spec ? &tpl : NULL);
    if (o.template_spec) template_free(&tpl);
    if (bpe) bpe_free(bpe);
    if (corpus) corpus_close(corpus);
    gpt_free(&m);
    return rc;
}
