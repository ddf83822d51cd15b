// SPDX-License-Identifier: MIT
/*
** train.c: the train verb (cm-train's default): the training loop of a GPT-2 on a corpus
** packed by cm-shards or on synthetic ids, with AdamW, warmup and cosine decay, gradient
** accumulation, evaluations, a JSONL log, checkpoints and --resume.
**
** Causal language modelling as the Hugging Face course teaches it: inputs are a window of T
** tokens, labels the same window shifted by one. One run is a TrainRun: train_setup (data,
** model, log), train_loop (train_step, the log line, evaluations, train_checkpoint), train_end.
** A first SIGINT/SIGTERM stops at the next step boundary with a checkpoint and exit 130.
**
** Data parallel (dist.h, under mpirun): N ranks run this loop in step. Rank r's micro-batch a
** of step s (0-based, counted from the start of training) is global micro-batch
** g = (s N + r) A + a and reads windows [g B, (g + 1) B) (A = --accum, B = --batch): N ranks
** see the windows one process would with --accum N A, and N = 1 is the plain order. The
** gradients are summed over the ranks (each micro-batch's scaled by 1/(A N)), or ZeRO-1'd
** (zero.h); every rank takes the same AdamW step. Rank 0 alone logs, evaluates and writes the
** checkpoint, whose data position counts the windows of all ranks and whose accumulation is
** N A: a resume on N' ranks runs A' = N A / N' micro-batches each, the same global step.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"                /* defines: error, warn, now_sec, exit codes */
#include "io.h"                  /* defines: Out, Progress */
#include "atomic.h"              /* defines: cm_stopping, cm_stop_signal, atomic_sweep */
#include "hash.h"                /* defines: hash64 (the ranks' parameters compared) */
#include "shards/corpus.h"       /* defines: corpus_vocab_size, corpus_bytes_per_token */
#include "tokenize/bpe.h"        /* defines: bpe_load_mem, bpe_encode (--keyword-weights) */
#include "trainer/blasenv.h"     /* defines: blasenv_core, blasenv_cpu_avx512 */
#include "trainer/ckpt.h"        /* defines: CkptInfo, ckpt_save */
#include "trainer/data.h"        /* defines: DataSource, data_* */
#include "trainer/dist.h"        /* defines: dist_* (ranks of a data-parallel run) */
#include "trainer/eval.h"        /* defines: evaluate */
#include "trainer/init.h"        /* defines: init_load, init_evaluate */
#include "trainer/kernels.h"     /* defines: kernels_set_threads, kernels_threads */
#include "trainer/lora.h"        /* defines: lora_new, lora_init_weights, lora_saved_bytes */
#include "trainer/matmul_bf16.h" /* defines: mm_bf16_resolve */
#include "trainer/model.h"       /* defines: Gpt, gpt_* */
#include "trainer/options.h"     /* defines: TrainerOpts, opts_parse, TOPT_* */
#include "trainer/resume.h"      /* defines: resume_load, resume_fingerprint, log_truncate */
#include "trainer/verbs.h"       /* defines: verb_train */
#include "trainer/zero.h"        /* defines: Zero, zero_* (--zero 1) */

static const CliOpt train_opts[] = {
    /* data */
    { "data", 0, "DIR", NULL, "corpus directory written by cm-shards (index.sqlite + shards)",
      TOPT_DATA },
    { "where", 0, "SQL", NULL,
      "train only on documents matching an SQL condition on the\n"
      "documents table, e.g. \"imports LIKE '%pandas%'\"",
      TOPT_WHERE },
    { "synthetic", 0, "V", NULL, "random token ids in [0, V) instead of a corpus (benchmarks)",
      TOPT_SYNTHETIC },
    { "split", 0, "S", "valid", "the split the evaluations use", TOPT_SPLIT },
    /* model (GPT-2: learned positions, pre-LayerNorm, GELU MLP 4x, tied LM head, fp32) */
    { "layers", 0, "L", "4", "transformer blocks", TOPT_LAYERS },
    { "width", 0, "C", "256", "channels (a multiple of --heads)", TOPT_WIDTH },
    { "heads", 0, "H", "4", "attention heads", TOPT_HEADS },
    { "context", 0, "T", "256", "tokens per window", TOPT_CONTEXT },
    { "init-std", 0, "X", "0.02", "standard deviation of the initial weights", TOPT_INIT_STD },
    /* training (AdamW, linear warmup then cosine decay, global-norm clipping) */
    { "batch", 0, "B", "16", "windows of T+1 tokens per micro-batch", TOPT_BATCH },
    { "accum", 0, "K", "1", "micro-batches per optimizer step", TOPT_ACCUM },
    { "steps", 0, "N", "1000", "optimizer steps", TOPT_STEPS },
    { "lr", 0, "X", "3e-4", "peak rate: linear warmup, then cosine decay", TOPT_LR },
    { "min-lr", 0, "X", "lr/10", "learning rate at the last step", TOPT_MIN_LR },
    { "warmup", 0, "N", "min(100, steps/10)", "warmup steps", TOPT_WARMUP },
    { "weight-decay", 0, "X", "0.1", "AdamW weight decay (not on biases, LayerNorm)",
      TOPT_WEIGHT_DECAY },
    { "grad-clip", 0, "X", "1.0", "clip the global gradient norm to X (0: off)", TOPT_GRAD_CLIP },
    { "seed", 0, "S", "1", "initialisation and data order; same seed, same run", TOPT_SEED },
    { "keyword-weights", 0, "a,b,c", NULL,
      "per-sample loss weight 1 + count of these tokens in\n"
      "the window (Hugging Face course); each must be one token",
      TOPT_KEYWORDS },
    TRAINER_ROW_THREADS,
    TRAINER_ROW_BLAS_CORE,
    { "zero", 0, "0|1", "0",
      "under mpirun: 1 shards the AdamW moments across the\n"
      "ranks (ZeRO-1)",
      TOPT_ZERO },
    { "recompute", 0, NULL, NULL,
      "keep less for the backward and recompute it: attention\n"
      "probabilities (no L*B*H*T*T floats) and GELU outputs;\nslower, for long contexts and big "
      "batches",
      TOPT_RECOMPUTE },
    { "precision", 0, "auto|fp32|bf16", "auto",
      "matmul inputs: bf16 (oneDNN, fp32 accumulation;\n"
      "weights, AdamW, LayerNorm, softmax, loss stay fp32) or\nfp32 (OpenBLAS); auto: bf16 where "
      "the CPU has AVX512_BF16\nor AMX",
      TOPT_PRECISION },
    /* evaluation and output */
    { "log", 0, "FILE", NULL,
      "JSONL metrics per step ('-': stdout): step, loss, lr,\n"
      "grad_norm, tokens_per_s, and at evaluations valid_loss,\nperplexity, bits_per_byte",
      TOPT_LOG },
    { "eval-every", 0, "N", "0", "evaluate every N steps too (0: at the end only)",
      TOPT_EVAL_EVERY },
    { "eval-batches", 0, "N", "20", "batches per evaluation", TOPT_EVAL_BATCHES },
    { "profile", 0, NULL, NULL, "print the time per kernel class at the end", TOPT_PROFILE },
    /* checkpoints (weights, AdamW state, step, seed, data position; atomic writes) */
    { "ckpt", 0, "FILE", "DATA/model.ckpt",
      "where to save (a directory: DIR/ckpt.bin); eval and\ncomplete read the same default",
      TOPT_CKPT },
    { "ckpt-every", 0, "N", "0",
      "save every N steps too (always at the end and\non SIGINT/SIGTERM)", TOPT_CKPT_EVERY },
    { "resume", 0, NULL, NULL,
      "continue from --ckpt bit-identically (model and\n"
      "hyperparameters default to the checkpoint's)",
      TOPT_RESUME },
    { "time-limit", 0, "SECS", NULL, "stop after SECS seconds, saving a checkpoint",
      TOPT_TIME_LIMIT },
    { "init", 0, "FILE", NULL,
      "start from this checkpoint's weights (trained or imported)\n"
      "with a fresh optimizer and schedule; its shape is the model's,\n"
      "and the corpus must be encoded with its tokenizer",
      TOPT_INIT },
    /* LoRA (lora.h): low-rank adapters trained on a frozen base */
    { "lora-rank", 0, "R", NULL,
      "train LoRA adapters of rank R on the frozen model (usually\n"
      "--init's): no gradients or AdamW state for the base",
      TOPT_LORA_RANK },
    { "lora-alpha", 0, "A", "8", "LoRA scaling: the adapters add (A/R) x A^T B^T",
      TOPT_LORA_ALPHA },
    { "lora-targets", 0, "LIST", "c_attn",
      "PEFT module names of the adapted layers: c_attn,\n"
      "attn.c_proj, mlp.c_fc, mlp.c_proj (c_proj: both), or all",
      TOPT_LORA_TARGETS },
    { 0 }
};

static const CliSpec train_spec = {
    "cm-train",
    "train",
    "(--data DIR | --synthetic V) [options]",
    "Train a GPT-2 code-completion model on a corpus packed by cm-shards ('train' may be left\n"
    "out: it is the default verb).\n"
    "An instruction corpus (encoded with cm-tokenize encode --template: prompt lengths in its\n"
    "index) is fine-tuned on one example per window, padded with end-of-text, the loss on the\n"
    "response tokens and end-of-text only (the mean over the step's scored targets, all\n"
    "micro-batches and ranks); examples whose prompt fills the context are skipped, longer\n"
    "ones cut, both counted on the start-up line. Start from a base model with --init.",
    "Memory is bounded by the model and the batch, not by the corpus (shards are mmapped):\n"
    "16 bytes per parameter + 4*B*T*(L*(16C + H*T) + V + 12C) bytes of activations\n"
    "(--recompute: 4*B*T*(L*12C + V + 16C)); the start-up line prints this estimate in GiB.\n"
    "LoRA (--lora-rank): 4 bytes per base parameter (frozen: no gradients, no moments) + 16 per\n"
    "adapter parameter; the start-up line prints the bytes saved. Adapters of rank R on a\n"
    "layer (out, in) add (alpha/R) x A^T B^T, A (R, in) uniform(+-1/sqrt(in)), B (out, R)\n"
    "zero: step 0 is the base model. 'cm-train export --format peft' and 'cm-train merge'.\n"
    "Deterministic for the same seed, OpenBLAS kernel set and thread count.\n"
    "Data parallel: 'mpirun -np N cm-train ...' trains one model on N processes (rank 0 logs\n"
    "and saves; each rank's default --threads is its share of the host's cores).\n"
    "Exit status: 0 done, 2 usage, 3 I/O error, 4 damaged corpus or checkpoint, 5 internal,\n"
    "130 stopped by SIGINT/SIGTERM (checkpoint saved when --ckpt is given; a second signal\n"
    "ends at once, temporaries removed).",
    train_opts,
    NULL
};

/* One training run: what train_setup opens and train_end releases. */
typedef struct {
    TrainerOpts *o;
    char *ckpt;              /* checkpoint path, or NULL: nothing is saved */
    Corpus *corpus;          /* --data, or NULL for synthetic ids */
    uint32_t vocab;          /* the data's vocabulary */
    uint64_t fingerprint;    /* of the training data (resume_fingerprint) */
    double bytes_per_token;  /* of the evaluated split (0: unknown) */
    DataSource train, valid; /* training windows, evaluation windows */
    int have_valid;          /* evaluations can run */
    int examples;            /* an instruction corpus: one example per window, masked loss */
    CorpusExampleStats ex;   /* its training split's examples (data_examples) */
    float *mask;             /* (B, T) loss mask of the micro-batch (examples) */
    uint32_t *keywords;      /* --keyword-weights token ids */
    int n_keywords;
    Gpt model;
    int have_model;
    CkptInfo info;  /* what a checkpoint records */
    uint64_t step0; /* steps done before this run (resume) */
    int resumed;
    Out log; /* the --log */
    int log_open;
    FILE *log_file;             /* its file (NULL for stdout) */
    uint32_t *windows;          /* one micro-batch: B windows of T+1 tokens */
    uint32_t *inputs, *targets; /* (B, T) */
    float *weights;             /* (B) loss weight per window (keywords) */
    const char *precision;      /* the matmuls' precision, for the start-up line */
    Progress progress;
    double t_start;       /* when the loop began */
    double flops;         /* per token of one step */
    uint64_t tokens_done; /* by this run (all ranks) */
    int rank, nranks;     /* this process, and the processes of the run (dist.h) */
    uint64_t data0;       /* training windows all ranks had drawn before this run */
    Zero zero;            /* --zero 1 on several ranks: the sharded moments */
    int zero_on;
    double step_s; /* --profile: wall time inside train_step, evaluations out */
} TrainRun;

/* What one step measured. */
typedef struct {
    double loss, grad_norm, lr, tokens_per_s;
    double scored; /* targets scored by the step, all ranks (examples; else every position) */
} StepStats;

/* --------------------------------------------------------------------------------------- */
/* Setup                                                                                   */

/*
** Keyword token ids for --keyword-weights: each keyword must encode to one token (as is, or
** with a leading space). Returns the count, or -1 after a message.
*/
static int keyword_ids(Corpus *c, const char *list, uint32_t **ids)
{
    char err[512];
    size_t jl = 0;
    const char *json = corpus_tokenizer_json(c, &jl);
    Bpe *bpe = json ? bpe_load_mem(json, jl, "tokenizer in the index", err, sizeof err) : NULL;
    if (!bpe) return error("--keyword-weights: %s", json ? err : "no tokenizer in the index");
    int n = 0;
    char **kw = strv_split(list, ',', &n);
    *ids = xmalloc((size_t)(n ? n : 1) * sizeof(uint32_t));
    int rc = n;
    for (int i = 0; i < n && rc >= 0; i++) {
        uint32_t *t = NULL;
        size_t nt = 0, cap = 0;
        bpe_encode(bpe, kw[i], strlen(kw[i]), &t, &nt, &cap);
        if (nt != 1) {
            char *sp = xmalloc(strlen(kw[i]) + 2);
            sprintf(sp, " %s", kw[i]);
            nt = 0;
            bpe_encode(bpe, sp, strlen(sp), &t, &nt, &cap);
            free(sp);
        }
        if (nt != 1)
            rc = error("--keyword-weights: '%s' is not a single token of this tokenizer", kw[i]);
        else
            (*ids)[i] = t[0];
        free(t);
    }
    strv_free(kw);
    bpe_free(bpe);
    return rc;
}

/*
** The command-line checks before anything is opened, and the checkpoint path (none when the
** default DATA/model.ckpt cannot be written). 0 or the exit status.
*/
static int train_check_usage(TrainRun *r)
{
    TrainerOpts *o = r->o;
    r->ckpt = opts_ckpt_path(o);
    if (!o->data == !o->synthetic)
        return cli_spec_usage_error(&train_spec, "give one of --data DIR or --synthetic V");
    if (o->resume && !r->ckpt) return cli_spec_usage_error(&train_spec, "--resume needs --ckpt");
    if (o->resume && o->init)
        return cli_spec_usage_error(&train_spec,
                                    "--init starts a new run, --resume continues "
                                    "one: give one of them");
    if (!o->lora_rank && !o->resume && (o->lora_alpha >= 0 || o->lora_targets))
        return cli_spec_usage_error(&train_spec,
                                    "--lora-alpha and --lora-targets need --lora-rank");
    if (o->zero && o->lora_rank)
        return cli_spec_usage_error(&train_spec,
                                    "--zero 1 shards AdamW moments a LoRA run hardly has: "
                                    "leave out --zero with --lora-rank");
    if (r->ckpt && !o->ckpt && !o->resume && access(o->data, W_OK) != 0) {
        warn("cannot write to '%s': no checkpoint will be saved (give --ckpt FILE)", o->data);
        free(r->ckpt);
        r->ckpt = NULL;
    }
    return CM_OK;
}

/*
** The data's vocabulary and fingerprint (and the corpus, for --data). 0 or the exit status.
*/
static int train_open_data(TrainRun *r)
{
    TrainerOpts *o = r->o;
    r->vocab = (uint32_t)o->synthetic;
    if (o->data) {
        int rc = opts_open_corpus(o->data, &r->corpus);
        if (rc != 0) return rc;
        r->vocab = corpus_vocab_size(r->corpus);
        r->bytes_per_token = corpus_bytes_per_token(r->corpus, o->split);
    }
    r->fingerprint = resume_fingerprint(r->corpus, r->vocab, o->where);
    return CM_OK;
}

/*
** Several ranks: what rank 0 resumed from (the checkpoint's shape, batch, seed and schedule,
** its step and data position) to the others, which then allocate the model for it.
*/
static void train_share_config(TrainRun *r)
{
    TrainerOpts *o = r->o;
    if (r->nranks == 1) return;
    struct {
        GptConfig cfg;
        long batch, accum, steps, warmup;
        uint64_t seed, step0;
        double lr, min_lr, wd, clip;
        CkptInfo info;
        int resumed;
    } c;
    memset(&c, 0, sizeof c);
    c.cfg = o->cfg, c.batch = o->batch, c.accum = o->accum, c.steps = o->steps;
    c.warmup = o->warmup, c.seed = o->seed, c.step0 = r->step0, c.lr = o->lr;
    c.min_lr = o->min_lr, c.wd = o->weight_decay, c.clip = o->grad_clip, c.info = r->info;
    c.resumed = r->resumed;
    dist_bcast(&c, sizeof c);
    o->cfg = c.cfg, o->batch = c.batch, o->accum = c.accum, o->steps = c.steps;
    o->warmup = c.warmup, o->seed = c.seed, r->step0 = c.step0, o->lr = c.lr;
    o->min_lr = c.min_lr, o->weight_decay = c.wd, o->grad_clip = c.clip, r->info = c.info;
    r->resumed = c.resumed;
    if (r->resumed && r->rank > 0) {
        gpt_init(&r->model, &o->cfg);
        if (r->info.lora_rank)
            r->model.lora = lora_new(&o->cfg, (int)r->info.lora_rank, r->info.lora_alpha,
                                     r->info.lora_targets);
        r->have_model = 1;
    }
}

/*
** Several ranks: rank 0's parameters (and moments, when resumed) to every rank, so that all
** start from the same bits whatever their hosts' libm; with --zero 1 the moments are split.
*/
static void train_share_model(TrainRun *r)
{
    Gpt *m = &r->model;
    if (r->nranks == 1) return;
    dist_bcast(m->params_memory, m->nparams * sizeof(float));
    if (m->lora) { /* the adapters, and their moments when resumed (no --zero with LoRA) */
        dist_bcast(m->lora->params, m->lora->n * sizeof(float));
        if (r->resumed) {
            dist_bcast(m->lora->m, m->lora->n * sizeof(float));
            dist_bcast(m->lora->v, m->lora->n * sizeof(float));
        }
        return;
    }
    if (r->o->zero) {
        zero_setup(&r->zero, m);
        r->zero_on = 1;
    } else if (r->resumed) {
        dist_bcast(m->m_memory, m->nparams * sizeof(float));
        dist_bcast(m->v_memory, m->nparams * sizeof(float));
    }
}

/*
** --resume (the checkpoint's shape and hyperparameters, read by rank 0), then the shape
** checked and the schedule's defaults filled in. 0 or the exit status.
*/
static int train_config(TrainRun *r)
{
    TrainerOpts *o = r->o;
    int rc = CM_OK;
    if (o->resume && r->rank == 0) {
        o->accum *= r->nranks; /* a checkpoint counts the micro-batches of all ranks */
        rc = resume_load(o, r->ckpt, r->vocab, r->fingerprint, &r->model, &r->info, &r->have_model);
        if (rc == CM_OK && r->have_model) {
            r->step0 = r->info.step;
            r->resumed = 1;
        }
        if (rc == CM_OK && o->accum % r->nranks) {
            error("%s: its steps have %ld micro-batches: %d ranks cannot share them (run a "
                  "number of ranks that divides %ld)",
                  r->ckpt, o->accum, r->nranks, o->accum);
            rc = CM_EUSAGE;
        }
        o->accum /= r->nranks;
    } else if (o->init && r->rank == 0) {
        /* the weights on rank 0; train_share_model sends them to the others */
        rc = init_load(o, r->vocab, resume_fingerprint(r->corpus, r->vocab, NULL), r->fingerprint,
                       &r->model);
        if (rc == CM_OK) r->have_model = 1;
    }
    if ((rc = dist_agree(rc)) != CM_OK) return rc;
    train_share_config(r);
    o->cfg.V = (int)r->vocab;
    const char *bad = gpt_config_check(&o->cfg);
    if (bad) return cli_spec_usage_error(&train_spec, "%s", bad);
    if (o->min_lr < 0) o->min_lr = o->lr / 10;
    if (o->warmup < 0) o->warmup = o->steps / 10 < 100 ? o->steps / 10 : 100;
    return CM_OK;
}

/*
** The training and evaluation windows, and the keyword ids. 0 or the exit status.
*/
static int train_sources(TrainRun *r)
{
    TrainerOpts *o = r->o;
    char err[1024];
    size_t window = (size_t)o->cfg.T + 1;
    if (r->corpus) {
        r->examples = corpus_has_prompts(r->corpus);
        int st = r->examples ? data_examples(&r->train, r->corpus, "train", o->where, 0, o->seed,
                                             window, &r->ex, err, sizeof err)
                             : data_corpus(&r->train, r->corpus, "train", o->where, 0, o->seed,
                                           window, err, sizeof err);
        if (st) {
            error("%s: %s", o->data, err);
            return st;
        }
        st = r->examples
            ? data_examples(&r->valid, r->corpus, o->split, NULL, 1, 0, window, NULL, err,
                            sizeof err)
            : data_corpus(&r->valid, r->corpus, o->split, NULL, 1, 0, window, err, sizeof err);
        if (st == 0) {
            r->have_valid = 1;
        } else if (o->eval_every > 0) {
            /* evaluations asked for cannot run: never train on silently (issue: an empty
            ** valid split once made --eval-every a no-op) */
            error("%s: cannot evaluate every %ld steps on the '%s' split: %s. Re-split the "
                  "corpus ('cm-shards split --valid-fraction F %s') or leave out --eval-every",
                  o->data, o->eval_every, o->split, err, o->data);
            return CM_EFORMAT;
        } else {
            warn("%s: no evaluation at the end of the run: the '%s' split: %s", o->data, o->split,
                 err);
        }
        if (o->keywords && (r->n_keywords = keyword_ids(r->corpus, o->keywords, &r->keywords)) < 0)
            return CM_EUSAGE;
    } else {
        if (o->keywords)
            return cli_spec_usage_error(&train_spec,
                                        "--keyword-weights needs --data (a tokenizer)");
        data_synthetic(&r->train, r->vocab, o->seed, window, 0);
        data_synthetic(&r->valid, r->vocab, o->seed ^ 0x76616c6964ull, window,
                       (uint64_t)o->eval_batches * o->batch);
        r->have_valid = 1;
    }
    r->data0 = r->resumed ? r->info.data_pos : 0;
    data_seek(&r->train, r->data0);
    return CM_OK;
}

/*
** Open the --log: stdout for "-"; a file rewritten from the start, or on resume cut back to
** the checkpoint's step and appended to. 0 or the exit status.
*/
static int train_open_log(TrainRun *r)
{
    const char *path = r->o->log;
    if (!path) return CM_OK;
    if (strcmp(path, "-") == 0) {
        out_init(&r->log, 1, "stdout", 1 << 16);
    } else {
        if (r->resumed && log_truncate(path, r->step0) != 0) return CM_EIO;
        r->log_file = fopen(path, r->resumed ? "a" : "w");
        if (!r->log_file) {
            error("cannot open log '%s': %s", path, strerror(errno));
            return CM_EIO;
        }
        out_init(&r->log, fileno(r->log_file), path, 1 << 16);
    }
    r->log_open = 1;
    return CM_OK;
}

/*
** Bytes of the parameters, gradients and AdamW moments: 16 per parameter, or with LoRA 4 per
** base parameter (frozen) and 16 per adapter parameter.
*/
static double train_state_bytes(const Gpt *m)
{
    if (m->lora) return 4.0 * m->nparams + 16.0 * m->lora->n;
    return 16.0 * m->nparams;
}

/*
** The LoRA line of the start-up: rank, alpha, targets, adapter parameters, and the memory the
** frozen base does not take (its gradients and AdamW moments).
*/
static void train_lora_banner(const Gpt *m)
{
    const GptLora *lo = m->lora;
    char t[128];
    lora_targets_str(lo->targets, t, sizeof t);
    double saved = lora_saved_bytes(m);
    fprintf(stderr,
            "cm-train: LoRA r=%d alpha=%g (scale %g) on %s: %zu adapter parameters (%.3f%% of "
            "%zu) trained; base frozen: %.0f bytes (%.1f MiB) of gradients and AdamW moments "
            "not allocated, %.0f bytes (%.2f MiB) for the adapters'\n",
            lo->rank, lo->alpha, (double)lo->scale, t, lo->n, 100.0 * lo->n / m->nparams,
            m->nparams, saved, saved / (1 << 20), 12.0 * lo->n, 12.0 * lo->n / (1 << 20));
}

/*
** The start-up line of an instruction corpus: its training examples (used, skipped because the
** prompt fills the context, truncated) and the share of the windows' target positions scored.
*/
static void train_banner_examples(const TrainRun *r)
{
    const CorpusExampleStats *e = &r->ex;
    int T = r->o->cfg.T;
    double pos = (double)e->examples * T, win = (double)e->examples * (T + 1);
    fprintf(stderr,
            "cm-train: instruction examples (train split): %llu used, one per window padded "
            "with end-of-text; %llu skipped (prompt of %d tokens or more: no response target "
            "in the context), %llu truncated (longer than the window of %d tokens: response "
            "cut); loss on the response and end-of-text only: %llu of %.0f target positions "
            "scored (%.1f%%), prompt %.1f%%, padding %.1f%% of the window tokens\n",
            (unsigned long long)e->examples, (unsigned long long)e->skipped_long, T,
            (unsigned long long)e->truncated, T + 1, (unsigned long long)e->response, pos,
            pos > 0 ? 100.0 * e->response / pos : 0.0,
            win > 0 ? 100.0 * (double)(e->tokens - e->response) / win : 0.0,
            win > 0 ? 100.0 * (win - (double)e->tokens) / win : 0.0);
}

/*
** The start-up line on stderr (shape, batch, kernels, threads, memory estimate, first step),
** and a word on an OPENBLAS_CORETYPE preset that was overridden or that keeps slower kernels.
*/
static void train_banner(const TrainRun *r)
{
    const TrainerOpts *o = r->o;
    if (o->quiet) return;
    int B = (int)o->batch, T = o->cfg.T;
    size_t N = (size_t)B * T;
    double acts_gib = gpt_acts_bytes(&o->cfg, B, o->recompute) / (1 << 30);
    const char *core = blasenv_core(), *ct = getenv("OPENBLAS_CORETYPE");
    const char *over = getenv("CM_TRAIN_BLAS_OVERRODE");
    if (over)
        fprintf(stderr,
                "cm-train: OPENBLAS_CORETYPE=%s from the environment names slower "
                "kernels than this CPU runs: using %s (--blas-core env keeps the preset)\n",
                over, core);
    else if (ct && !blasenv_core_is_avx512(core) && blasenv_cpu_avx512())
        warn("OPENBLAS_CORETYPE=%s keeps OpenBLAS on its %s kernels; this CPU runs the faster "
             "SkylakeX ones (--blas-core auto)",
             ct, core);
    fprintf(stderr,
            "cm-train: GPT L=%d C=%d heads=%d T=%d V=%u, %.2fM parameters; "
            "batch %dx%d x%ld = %zu tokens/step; %d threads, OpenBLAS %s kernels on %d per "
            "thread; matmuls %s; ~%.2f GiB; %s step %llu of %ld\n",
            o->cfg.L, o->cfg.C, o->cfg.NH, T, r->vocab, r->model.nparams / 1e6, B, T, o->accum,
            N * o->accum, kernels_threads(), core, kernels_blas_threads(), r->precision,
            acts_gib + train_state_bytes(&r->model) / (1 << 30),
            r->resumed ? "resuming after" : "from", (unsigned long long)r->step0, o->steps);
    if (r->model.lora) train_lora_banner(&r->model);
    if (r->examples) train_banner_examples(r);
    if (r->nranks > 1) {
        double p = r->model.nparams / (double)(1 << 20), n = r->nranks;
        fprintf(stderr,
                "cm-train: data parallel on %d ranks (%s, %d on this host) = %zu "
                "tokens/step; %s; parameters, gradients, moments per rank: %.1f + %.1f + "
                "%.1f MiB\n",
                r->nranks, dist_library(), dist_local_size(), N * o->accum * r->nranks,
                r->zero_on ? "ZeRO-1: moments sharded, gradients "
                             "reduce-scattered, parameters all-gathered"
                           : "gradients all-reduced",
                4 * p, 4 * p + (r->zero_on ? 4 * p / n : 0), 8 * p / (r->zero_on ? n : 1));
    }
}

/*
** The batch buffers, the progress line, and the run's constants in the checkpoint header.
*/
static void train_prepare(TrainRun *r)
{
    const TrainerOpts *o = r->o;
    int B = (int)o->batch, T = o->cfg.T;
    gpt_profile_on = kern_prof_on = o->profile;
    r->windows = xmalloc((size_t)B * (T + 1) * sizeof(uint32_t));
    r->inputs = xmalloc((size_t)B * T * sizeof(uint32_t));
    r->targets = xmalloc((size_t)B * T * sizeof(uint32_t));
    r->weights = xmalloc((size_t)B * sizeof(float));
    r->mask = xmalloc((size_t)B * T * sizeof(float));
    progress_init(&r->progress, o->progress);
    r->t_start = now_sec();
    r->flops = gpt_flops_per_token(&r->model);
    CkptInfo *in = &r->info;
    in->cfg = o->cfg;
    in->seed = o->seed;
    in->data_fp = r->fingerprint;
    in->tok_fp = resume_fingerprint(r->corpus, r->vocab, NULL);
    in->has_opt = 1;
    in->lr = o->lr;
    in->min_lr = o->min_lr;
    in->wd = o->weight_decay;
    in->clip = o->grad_clip;
    in->warmup = (uint32_t)o->warmup;
    in->steps = (uint32_t)o->steps;
    in->batch = (uint32_t)B;
    in->accum = (uint32_t)(o->accum * r->nranks);
}

/*
** LoRA (--lora-rank, or a resumed LoRA run): adapters attached to the model, which freezes its
** base. A resumed run keeps its checkpoint's adapters (LoRA options given must agree); --init
** from a LoRA checkpoint is refused (merge it first). 0 or the exit status.
*/
static int train_lora(TrainRun *r)
{
    TrainerOpts *o = r->o;
    Gpt *m = &r->model;
    GptLora *lo = m->lora;
    if (lo && !r->resumed) {
        error("%s: a LoRA checkpoint: --init takes plain weights (merge its adapters first: "
              "cm-train merge -o FILE %s; or --resume its run)",
              o->init, o->init);
        return CM_EUSAGE;
    }
    if (r->resumed) {
        if (!lo && !o->lora_rank) return CM_OK;
        if (!lo || (o->lora_rank && o->lora_rank != lo->rank) ||
            (o->lora_alpha >= 0 && o->lora_alpha != lo->alpha) ||
            (o->lora_targets && o->lora_mask != lo->targets)) {
            char t[128] = "";
            if (lo) lora_targets_str(lo->targets, t, sizeof t);
            if (lo)
                error("%s: the LoRA options given differ from the checkpoint's (rank %d, alpha "
                      "%g, targets %s)",
                      r->ckpt, lo->rank, lo->alpha, t);
            else
                error("%s: not a LoRA run: --resume continues it without --lora-rank", r->ckpt);
            return CM_EUSAGE;
        }
        if (o->zero)
            return cli_spec_usage_error(&train_spec, "%s: a LoRA run: leave out --zero", r->ckpt);
        return CM_OK;
    }
    if (!o->lora_rank) return CM_OK;
    m->lora = lora_new(&m->cfg, (int)o->lora_rank, o->lora_alpha >= 0 ? o->lora_alpha : 8.0,
                       o->lora_targets ? o->lora_mask : 1u << LORA_C_ATTN);
    lora_init_weights(m->lora, o->seed);
    return CM_OK;
}

/*
** Everything before the first step. 0 or the exit status (train_end releases what was
** opened either way).
*/
static int train_setup(TrainRun *r)
{
    TrainerOpts *o = r->o;
    int rc = train_check_usage(r);
    if (rc != CM_OK) return rc;
    kernels_set_threads((int)o->threads);
    if (r->ckpt && r->rank == 0) atomic_sweep(r->ckpt);
    rc = train_open_data(r);
    if ((rc = dist_agree(rc)) != CM_OK || (rc = train_config(r)) != CM_OK) return rc;
    rc = train_sources(r);
    if ((rc = dist_agree(rc)) != CM_OK) return rc;
    if (!r->have_model) {
        gpt_init(&r->model, &o->cfg);
        gpt_init_weights(&r->model, o->seed, o->init_std);
        r->have_model = 1;
    }
    if ((rc = dist_agree(train_lora(r))) != CM_OK) return rc;
    gpt_alloc_train(&r->model);
    if ((r->model.bf16 = mm_bf16_resolve(o->precision, &r->precision)) < 0) return CM_EUSAGE;
    r->model.recompute = o->recompute;
    train_share_model(r);
    rc = train_open_log(r);
    if ((rc = dist_agree(rc)) != CM_OK) return rc;
    train_banner(r);
    if (o->init && r->have_valid && r->rank == 0)
        init_evaluate(o, &r->model, &r->valid, r->examples ? 0 : r->bytes_per_token);
    train_prepare(r);
    return CM_OK;
}

/* --------------------------------------------------------------------------------------- */
/* Steps                                                                                   */

/*
** Learning rate at 1-based step s: linear warmup, then cosine decay to min_lr at the end.
*/
static double lr_at(long s, long steps, long warmup, double lr, double min_lr)
{
    if (s <= warmup && warmup > 0) return lr * s / warmup;
    if (steps <= warmup) return lr;
    double prog = (double)(s - warmup) / (double)(steps - warmup);
    if (prog > 1) prog = 1;
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + cos(M_PI * prog));
}

/*
** Loss weight of each window of the micro-batch: 1 + the keyword tokens among its inputs.
*/
static void keyword_weights(TrainRun *r)
{
    int B = (int)r->o->batch, T = r->o->cfg.T;
    for (int b = 0; b < B; b++) {
        int cnt = 0;
        for (int t = 0; t < T; t++)
            for (int j = 0; j < r->n_keywords; j++)
                cnt += r->inputs[(size_t)b * T + t] == r->keywords[j];
        r->weights[b] = 1.0f + (float)cnt;
    }
}

/*
** The --accum micro-batches of step s on this rank, forward and backward: the gradients add up
** in the model. *loss: the step's loss over all ranks; *gfactor: what the summed gradients are
** multiplied by to be its gradient; *scored: the targets scored (all ranks).
** Windows: every position scored, the mean over the step's positions (gpt_forward divides,
** *gfactor 1). Instruction examples: the mean over the step's scored targets (response tokens
** and end-of-text) of all micro-batches and ranks, each weighing the same: the forward passes
** sum, and *gfactor is 1 / (scored targets of the step). 0 or the exit status.
*/
static int train_micro_batches(TrainRun *r, long s, double *loss, double *gfactor, double *scored)
{
    const TrainerOpts *o = r->o;
    int B = (int)o->batch, T = o->cfg.T;
    uint64_t per_rank = (uint64_t)o->accum * B, nr = (uint64_t)r->nranks;
    double sum = 0, n = 0;
    /* global micro-batch (s-1) N A + rank A + k: windows from its index times B */
    data_seek(&r->train,
              r->data0 + ((uint64_t)(s - 1 - (long)r->step0) * nr + (uint64_t)r->rank) * per_rank);
    for (long k = 0; k < o->accum; k++) {
        if (data_batch_mask(&r->train, r->windows, B, T, r->inputs, r->targets, r->mask) != B) {
            error("%s: training data ran out", o->data ? o->data : "synthetic");
            if (r->nranks > 1) dist_abort(CM_EINTERNAL);
            return CM_EINTERNAL;
        }
        if (r->n_keywords > 0) keyword_weights(r);
        const float *w = r->n_keywords > 0 ? r->weights : NULL;
        if (r->examples) {
            double sc = 0;
            sum += gpt_forward_mask(&r->model, r->inputs, r->targets, w, r->mask, B, 1.0f, &sc);
            n += sc;
        } else {
            sum += gpt_forward(&r->model, r->inputs, r->targets, w, B,
                               1.0f / (float)(o->accum * r->nranks));
        }
        gpt_backward(&r->model);
    }
    if (r->examples) {
        sum = dist_sum_double(sum);
        n = dist_sum_double(n);
        *loss = n > 0 ? sum / n : 0.0;
        *gfactor = n > 0 ? 1.0 / n : 0.0;
        *scored = n;
    } else {
        *loss = dist_sum_double(sum / (double)o->accum) / r->nranks;
        *gfactor = 1.0;
        *scored = (double)B * T * o->accum * r->nranks;
    }
    return CM_OK;
}

/*
** Optimizer step s: --accum micro-batches forward and backward, clipping, AdamW. 0 or the
** exit status after a message (the data ran out, the loss diverged).
*/
static int train_step(TrainRun *r, long s, StepStats *st)
{
    const TrainerOpts *o = r->o;
    int B = (int)o->batch, T = o->cfg.T;
    size_t N = (size_t)B * T;
    uint64_t nr = (uint64_t)r->nranks;
    double t0 = now_sec(), loss = 0, gfactor = 1, scored = 0;
    gpt_zero_grad(&r->model);
    int rc = train_micro_batches(r, s, &loss, &gfactor, &scored);
    if (rc != CM_OK) return rc;
    double gnorm;
    if (r->zero_on) {
        gnorm = zero_reduce(&r->zero, &r->model);
    } else {
        if (r->model.lora)
            dist_sum_floats(r->model.lora->grads, r->model.lora->n);
        else
            dist_sum_floats(r->model.grads_memory, r->model.nparams);
        gnorm = gpt_grad_norm(&r->model);
    }
    gnorm *= gfactor; /* the norm of the gradient of the step's loss */
    float gscale = o->grad_clip > 0 && gnorm > o->grad_clip ? (float)(o->grad_clip / gnorm) : 1.0f;
    gscale *= (float)gfactor; /* AdamW scales the summed gradients to that gradient */
    double lr = lr_at(s, o->steps, o->warmup, o->lr, o->min_lr);
    if (r->zero_on)
        zero_update(&r->zero, &r->model, (float)lr, 0.9f, 0.95f, 1e-8f, (float)o->weight_decay,
                    gscale, (int)s);
    else
        gpt_update(&r->model, (float)lr, 0.9f, 0.95f, 1e-8f, (float)o->weight_decay, gscale,
                   (int)s);
    double dt = now_sec() - t0;
    r->step_s += dt;
    r->tokens_done += N * o->accum * nr;
    *st = (StepStats){ loss, gnorm, lr, N * o->accum * nr / dt, scored };
    if (!isfinite(loss)) {
        error("step %ld: loss is %g: training diverged (lower --lr?)", s, loss);
        return CM_EINTERNAL;
    }
    return CM_OK;
}

/*
** The evaluation after step s: its fields in the open log line, a line on stderr.
*/
static void train_evaluate(TrainRun *r, long s, double loss)
{
    const TrainerOpts *o = r->o;
    uint64_t nt = 0;
    gpt_profile_on = kern_prof_on = 0; /* the profile covers the training steps only */
    double vl = evaluate(&r->model, &r->valid, (int)o->batch, o->eval_batches, 0, &nt);
    gpt_profile_on = kern_prof_on = o->profile;
    if (r->log_open) {
        char line[256];
        int n = snprintf(line, sizeof line,
                         ",\"valid_loss\":%.9g,\"perplexity\":%.6g,\"valid_tokens\":%llu", vl,
                         exp(vl), (unsigned long long)nt);
        out_write(&r->log, line, (size_t)n);
        if (r->examples) {
            static const char f[] = ",\"valid_scored\":\"response\"";
            out_write(&r->log, f, sizeof f - 1);
        } else if (r->bytes_per_token > 0) {
            n = snprintf(line, sizeof line, ",\"bits_per_byte\":%.6g",
                         vl / M_LN2 / r->bytes_per_token);
            out_write(&r->log, line, (size_t)n);
        }
    }
    if (!o->quiet && !r->progress.on)
        fprintf(stderr, "cm-train: step %ld: loss %.4f, valid loss%s %.4f, perplexity %.2f\n", s,
                loss, r->examples ? " (response tokens)" : "", vl, exp(vl));
}

/*
** The log line of step s (with the evaluation's fields when one is due).
*/
static void train_report(TrainRun *r, long s, const StepStats *st)
{
    const TrainerOpts *o = r->o;
    int do_eval = r->rank == 0 && r->have_valid &&
        ((o->eval_every && s % o->eval_every == 0) || s == o->steps);
    if (r->log_open) {
        char line[512];
        int n = snprintf(line, sizeof line,
                         "{\"step\":%ld,\"loss\":%.9g,\"lr\":%.6g,\"grad_norm\":%.6g,"
                         "\"tokens\":%llu,\"tokens_per_s\":%.1f,\"mfu_gflops\":%.1f,"
                         "\"elapsed_s\":%.3f",
                         s, st->loss, st->lr, st->grad_norm, (unsigned long long)r->tokens_done,
                         st->tokens_per_s, r->flops * st->tokens_per_s / 1e9,
                         now_sec() - r->t_start);
        out_write(&r->log, line, (size_t)n);
        if (r->examples) {
            n = snprintf(line, sizeof line, ",\"scored_tokens\":%.0f", st->scored);
            out_write(&r->log, line, (size_t)n);
        }
    }
    if (do_eval) train_evaluate(r, s, st->loss);
    if (r->log_open) {
        out_write(&r->log, "}\n", 2);
        out_flush(&r->log);
    }
}

/*
** Save the checkpoint after step s (rank 0; every rank takes part: the data position counts
** all ranks' windows, ZeRO-1's moments are gathered, and the ranks' parameters are checked to
** be the same bits). 0 or the exit status, the same on every rank.
*/
static int train_checkpoint(TrainRun *r, long s)
{
    const TrainerOpts *o = r->o;
    int rc = CM_OK;
    r->info.step = (uint64_t)s;
    r->info.data_pos = r->data0 +
        (uint64_t)(s - (long)r->step0) * (uint64_t)r->nranks * (uint64_t)o->accum *
            (uint64_t)o->batch;
    if (r->nranks > 1 &&
        !dist_same_u64(hash64(r->model.params_memory, r->model.nparams * sizeof(float)))) {
        if (r->rank == 0) error("step %ld: the ranks' parameters differ (not saved)", s);
        return CM_EINTERNAL;
    }
    if (r->zero_on) zero_gather_moments(&r->zero, &r->model);
    if (r->rank == 0 && ckpt_save(r->ckpt, &r->model, &r->info) != 0) rc = CM_EIO;
    if (r->zero_on) zero_drop_moments(&r->model);
    return dist_agree(rc);
}

/*
** Whether to stop after this step: a stop signal (on any rank), or --time-limit (rank 0's
** clock, el seconds). The same answer on every rank.
*/
static int train_stop(const TrainRun *r, double el, int *signalled)
{
    int flag = cm_stopping() ? 2 : r->rank == 0 && r->o->time_limit > 0 && el >= r->o->time_limit;
    flag = dist_agree(flag);
    *signalled = flag == 2;
    return flag != 0;
}

/*
** The time per kernel class over the ns steps of this run, on stderr (--profile), and the
** serial share: the part of the steps' wall time outside the regions that run on every thread
** (OpenMP parallel regions, the split sgemm calls, oneDNN's calls), as measured by the kernels.
*/
static void train_profile(const TrainRun *r, long ns)
{
    double tot = 0;
    for (int i = 0; i < PROF_N; i++) tot += gpt_profile[i];
    fprintf(stderr, "cm-train: profile over %ld steps (ms per step):\n", ns);
    for (int i = 0; i < PROF_N; i++)
        fprintf(stderr, "  %-16s %9.1f  %5.1f%%\n", gpt_profile_names[i],
                ns ? 1e3 * gpt_profile[i] / ns : 0, tot ? 100 * gpt_profile[i] / tot : 0);
    /* the steps' own wall time: start-up, evaluations and checkpoints are not steps */
    fprintf(stderr, "  %-16s %9.1f  (a step takes %.1f ms of wall time; the run %.1f s in all)\n",
            "kernels", ns ? 1e3 * tot / ns : 0, ns ? 1e3 * r->step_s / ns : 0,
            now_sec() - r->t_start);
    double ser = r->step_s - kern_prof_parallel;
    fprintf(stderr,
            "  %-16s %9.1f  %5.1f%% of the steps' %.1f ms, on %d threads (outside "
            "parallel regions)\n",
            "serial", ns ? 1e3 * ser / ns : 0, r->step_s > 0 ? 100 * ser / r->step_s : 0,
            ns ? 1e3 * r->step_s / ns : 0, kernels_threads());
}

/* --------------------------------------------------------------------------------------- */
/* The loop                                                                                */

/*
** Steps step0+1 .. --steps, each logged; evaluations and checkpoints when due. A stop signal
** or --time-limit ends the run after a step, with a checkpoint (exit 130 for a signal, 0 for
** the time limit). Returns the exit status.
*/
static int train_loop(TrainRun *r)
{
    const TrainerOpts *o = r->o;
    if (cm_stopping()) {
        fprintf(stderr, "cm-train: interrupted before step %llu: nothing saved\n",
                (unsigned long long)r->step0 + 1);
        return CM_EINTR;
    }
    int rc = CM_OK;
    long s;
    for (s = (long)r->step0 + 1; s <= o->steps; s++) {
        StepStats st;
        if ((rc = train_step(r, s, &st)) != CM_OK) return rc;
        train_report(r, s, &st);
        double el = now_sec() - r->t_start;
        double eta = (double)(o->steps - s) * el / (double)(s - (long)r->step0);
        progress_update(&r->progress, "step %ld/%ld  loss %.4f  lr %.2e  %.0f tok/s  ETA %.0fs", s,
                        o->steps, st.loss, st.lr, st.tokens_per_s, eta);
        int signalled, stop = train_stop(r, el, &signalled);
        if (r->ckpt && ((o->ckpt_every && s % o->ckpt_every == 0) || s == o->steps || stop) &&
            (rc = train_checkpoint(r, s)) != CM_OK)
            return rc;
        if (stop) {
            progress_end(&r->progress);
            if (r->rank == 0 && (signalled || !o->quiet))
                fprintf(stderr, "cm-train: %s after step %ld%s%s\n",
                        signalled ? "interrupted" : "time limit reached", s,
                        r->ckpt ? ", checkpoint saved to " : " (no --ckpt: nothing saved)",
                        r->ckpt ? r->ckpt : "");
            rc = signalled ? CM_EINTR : CM_OK;
            s++;
            break;
        }
    }
    progress_end(&r->progress);
    if (o->profile) train_profile(r, s - 1 - (long)r->step0);
    if (o->profile && r->nranks > 1)
        fprintf(stderr, "  %-16s %9.1f  (rank 0; %.2f MB per step)\n", "mpi collectives",
                s - 1 > (long)r->step0 ? 1e3 * dist_comm_seconds() / (s - 1 - (long)r->step0) : 0,
                s - 1 > (long)r->step0 ? dist_comm_bytes() / 1e6 / (s - 1 - (long)r->step0) : 0);
    return rc;
}

/*
** Close the log (its write errors become CM_EIO) and release the run. Returns the status.
*/
static int train_end(TrainRun *r, int rc)
{
    if (r->log_open) out_done(&r->log);
    if (r->log_file && fclose(r->log_file) != 0 && rc == CM_OK) {
        error("cannot write log '%s': %s", r->o->log, strerror(errno));
        rc = CM_EIO;
    }
    free(r->windows);
    free(r->inputs);
    free(r->targets);
    free(r->weights);
    free(r->mask);
    free(r->keywords);
    data_free(&r->train);
    data_free(&r->valid);
    if (r->have_model) gpt_free(&r->model);
    zero_free(&r->zero);
    if (r->corpus) corpus_close(r->corpus);
    free(r->ckpt);
    return rc;
}

/*
** The train verb.
*/
int verb_train(int argc, char **argv)
{
    TrainerOpts o;
    int rc;
    if (!opts_parse(&o, &train_spec, argc, argv, &rc)) return rc;
    if ((rc = dist_init()) != CM_OK) {
        dist_finalize();
        return rc;
    }
    TrainRun r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    r.rank = dist_rank();
    r.nranks = dist_size();
    if (r.rank > 0) { /* rank 0 speaks for the job */
        o.log = NULL;
        o.quiet = 1;
        o.progress = 0;
        o.profile = 0;
    }
    if (r.nranks > 1 && !(o.given & GIVEN_THREADS)) { /* a share of this host's cores */
        long online = sysconf(_SC_NPROCESSORS_ONLN), cpus = dist_cpus();
        o.threads = cpus < online ? cpus : cpus / dist_local_size();
        if (o.threads < 1) o.threads = 1;
    }
    rc = train_setup(&r);
    if (rc == CM_OK) rc = train_loop(&r);
    rc = train_end(&r, rc);
    dist_finalize();
    return rc;
}
