// SPDX-License-Identifier: MIT
/*
** options.c: the values of cm-train's options, their parsing by a verb's CliSpec, and what
** they name: the --ckpt path and the --data corpus (see options.h).
*/
#include "trainer/options.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"          /* defines: error, xmalloc, xstrdup, exit codes */
#include "shards/corpus.h" /* defines: corpus_open */
#include "trainer/lora.h"  /* defines: lora_parse_targets */

/*
** The defaults every verb starts from.
*/
static void opts_defaults(TrainerOpts *o)
{
    memset(o, 0, sizeof *o);
    o->cfg = (GptConfig){ .L = 4, .C = 256, .NH = 4, .T = 256, .V = 0 };
    o->init_std = 0.02f;
    o->batch = 16;
    o->accum = 1;
    o->steps = 1000;
    o->seed = 1;
    o->lr = 3e-4;
    o->min_lr = -1;
    o->warmup = -1;
    o->weight_decay = 0.1;
    o->grad_clip = 1.0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = ncpu > 0 ? ncpu : 1;
    o->eval_batches = 20;
    o->progress = -1;
    o->split = "valid";
    o->max_tokens = 64;
    o->temperature = 0.8;
    o->top_k = 50;
    o->top_p = 0.95;
    o->lora_alpha = -1;
}

/*
** The model's shape, the schedule, the batch and the threads: options noted in o->given when
** given (--init, --resume and eval weigh them against the checkpoint's). 1 when k is one of
** them (*rc: its result), else 0.
*/
static int set_shape_schedule(TrainerOpts *o, Cli *c, int k, int *rc)
{
    long v;
    double d;
    switch (k) {
    case TOPT_LAYERS:
        *rc = cli_int(c, 1, 256, &o->cfg.L);
        o->given |= GIVEN_LAYERS;
        break;
    case TOPT_WIDTH:
        *rc = cli_int(c, 1, 16384, &o->cfg.C);
        o->given |= GIVEN_WIDTH;
        break;
    case TOPT_HEADS:
        *rc = cli_int(c, 1, 1024, &o->cfg.NH);
        o->given |= GIVEN_HEADS;
        break;
    case TOPT_CONTEXT:
        *rc = cli_int(c, 1, 65536, &o->cfg.T);
        o->given |= GIVEN_CONTEXT;
        break;
    case TOPT_INIT_STD:
        if ((*rc = cli_double(c, 0, 10, &d)) == 0) o->init_std = (float)d;
        break;
    case TOPT_BATCH:
        *rc = cli_long(c, 1, 1 << 20, &o->batch);
        o->given |= GIVEN_BATCH;
        break;
    case TOPT_ACCUM:
        *rc = cli_long(c, 1, 1 << 20, &o->accum);
        o->given |= GIVEN_ACCUM;
        break;
    case TOPT_STEPS:
        *rc = cli_long(c, 0, 2000000000L, &o->steps);
        o->given |= GIVEN_STEPS;
        break;
    case TOPT_SEED:
        if ((*rc = cli_long(c, 0, LONG_MAX, &v)) == 0) o->seed = (uint64_t)v;
        o->given |= GIVEN_SEED;
        break;
    case TOPT_LR:
        *rc = cli_double(c, 0, 10, &o->lr);
        o->given |= GIVEN_LR;
        break;
    case TOPT_MIN_LR:
        *rc = cli_double(c, 0, 10, &o->min_lr);
        o->given |= GIVEN_MIN_LR;
        break;
    case TOPT_WARMUP:
        *rc = cli_long(c, 0, 2000000000L, &o->warmup);
        o->given |= GIVEN_WARMUP;
        break;
    case TOPT_WEIGHT_DECAY:
        *rc = cli_double(c, 0, 10, &o->weight_decay);
        o->given |= GIVEN_WEIGHT_DECAY;
        break;
    case TOPT_GRAD_CLIP:
        *rc = cli_double(c, 0, 1e9, &o->grad_clip);
        o->given |= GIVEN_GRAD_CLIP;
        break;
    case TOPT_THREADS:
        *rc = cli_long(c, 1, 1024, &o->threads);
        o->given |= GIVEN_THREADS;
        break;
    default: return 0;
    }
    return 1;
}

/*
** Generation (complete: --prompt, or --template with its fields; sampling) and LoRA. 1 when
** k is one of them (*rc: its result), else 0.
*/
static int set_generation_lora(TrainerOpts *o, Cli *c, int k, int *rc)
{
    switch (k) {
    case TOPT_PROMPT: o->prompt = c->arg; break;
    case TOPT_MAX_TOKENS: *rc = cli_long(c, 0, 1 << 24, &o->max_tokens); break;
    case TOPT_TEMPERATURE: *rc = cli_double(c, 0, 100, &o->temperature); break;
    case TOPT_TOP_K: *rc = cli_long(c, 0, 1 << 24, &o->top_k); break;
    case TOPT_TOP_P: *rc = cli_double(c, 0, 1, &o->top_p); break;
    case TOPT_LORA_RANK: *rc = cli_long(c, 1, 4096, &o->lora_rank); break;
    case TOPT_LORA_ALPHA: *rc = cli_double(c, 1e-6, 1e6, &o->lora_alpha); break;
    case TOPT_LORA_TARGETS: {
        char err[256];
        o->lora_targets = c->arg;
        if (lora_parse_targets(c->arg, &o->lora_mask, err, sizeof err) != 0)
            *rc = cli_usage_error(c, "--lora-targets: %s", err);
        break;
    }
    case TOPT_TEMPLATE: o->template_spec = c->arg; break;
    case TOPT_INSTRUCTION: o->instruction = c->arg; break;
    case TOPT_INPUT: o->input = c->arg; break;
    case TOPT_SYSTEM: o->system = c->arg; break;
    default: return 0;
    }
    return 1;
}

/*
** Store the option cli_next returned (id k) in o. 0, or CM_EUSAGE after the message.
*/
static int opts_set(TrainerOpts *o, Cli *c, int k)
{
    int rc = 0;
    if (set_shape_schedule(o, c, k, &rc) || set_generation_lora(o, c, k, &rc)) return rc;
    switch (k) {
    case TOPT_DATA: o->data = c->arg; break;
    case TOPT_SYNTHETIC: rc = cli_long(c, 2, 1 << 24, &o->synthetic); break;
    case TOPT_WHERE: o->where = c->arg; break;
    case TOPT_SPLIT: o->split = c->arg; break;
    case TOPT_KEYWORDS: o->keywords = c->arg; break;
    case TOPT_ZERO: rc = cli_long(c, 0, 1, &o->zero); break;
    case TOPT_BLAS_CORE: break; /* read by blasenv_setup() before OpenBLAS starts */
    case TOPT_RECOMPUTE: o->recompute = 1; break;
    case TOPT_PRECISION: {
        static const char *const words[] = { "auto", "fp32", "bf16", NULL };
        rc = cli_choice(c, words, &o->precision);
        break;
    }
    case TOPT_LOG: o->log = c->arg; break;
    case TOPT_EVAL_EVERY: rc = cli_long(c, 0, 2000000000L, &o->eval_every); break;
    case TOPT_EVAL_BATCHES:
        rc = cli_long(c, 1, 1 << 30, &o->eval_batches);
        o->eval_batches_given = 1;
        break;
    case TOPT_PROFILE: o->profile = 1; break;
    case TOPT_CKPT: o->ckpt = c->arg; break;
    case TOPT_CKPT_EVERY: rc = cli_long(c, 0, 2000000000L, &o->ckpt_every); break;
    case TOPT_RESUME: o->resume = 1; break;
    case TOPT_INIT: o->init = c->arg; break;
    case TOPT_TIME_LIMIT: rc = cli_double(c, 0, 1e9, &o->time_limit); break;
    case 'o': o->output = c->arg; break;
    default: rc = cli_usage_error(c, "option id %d has no case (a bug)", k); break;
    }
    return rc;
}

/*
** See options.h.
*/
int opts_parse(TrainerOpts *o, const CliSpec *spec, int argc, char **argv, int *status)
{
    Cli c;
    int k, rc = CM_OK;
    opts_defaults(o);
    cli_init(&c, spec, argc, argv);
    while (rc == CM_OK && (k = cli_next(&c)) > 0) rc = opts_set(o, &c, k);
    if (rc == CM_OK && k == CLI_STOP) {
        *status = c.status;
        cli_free(&c);
        return 0;
    }
    if (rc == CM_OK && c.optind < argc)
        rc = cli_usage_error(&c, "unexpected argument '%s'", argv[c.optind]);
    o->quiet = c.quiet;
    /* -q also silences the progress line unless --progress asks for it */
    o->progress = c.quiet && c.progress < 0 ? 0 : c.progress;
    cli_free(&c);
    *status = rc;
    return rc == CM_OK;
}

/*
** See options.h.
*/
char *ckpt_path_for(const char *ckpt, const char *data)
{
    if (!ckpt && data) { /* default: DATA/model.ckpt, as the README shows */
        size_t n = strlen(data) + 16;
        char *p = xmalloc(n);
        snprintf(p, n, "%s/model.ckpt", data);
        return p;
    }
    if (!ckpt) return NULL;
    struct stat st;
    if (stat(ckpt, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(ckpt) + 16;
        char *p = xmalloc(n);
        snprintf(p, n, "%s/ckpt.bin", ckpt);
        return p;
    }
    return xstrdup(ckpt);
}

char *opts_ckpt_path(const TrainerOpts *o)
{
    return ckpt_path_for(o->ckpt, o->data);
}

/*
** See options.h.
*/
int opts_open_corpus(const char *dir, Corpus **out)
{
    char err[1024];
    struct stat st;
    if (stat(dir, &st) != 0) {
        error("cannot open corpus '%s': %s", dir, strerror(errno));
        return CM_EIO;
    }
    *out = corpus_open(dir, err, sizeof err);
    if (!*out) {
        error("%s", err);
        return CM_EFORMAT;
    }
    return 0;
}
