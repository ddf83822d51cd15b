// SPDX-License-Identifier: MIT
/*
** cm-train: train a GPT-2 code-completion model on a corpus packed by cm-shards, evaluate it,
** complete code with it, and plot its learning curves.
**
**   cm-train [train] --data DIR | --synthetic V  [model, optimisation, checkpoint options]
**   cm-train eval --ckpt FILE (--data DIR [--split S] | --synthetic V)
**   cm-train complete --ckpt FILE --data DIR --prompt TEXT [sampling options]
**   cm-train plot --log FILE -o OUT.svg
**
** Causal language modelling as the Hugging Face course teaches it: inputs are a window of T
** tokens, labels the same window shifted by one. The model and kernels are in model.[ch] and
** kernels.[ch]; data.[ch] draws windows; ckpt.[ch] writes and reads checkpoints.
*/
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"               /* defines: error, die, parse_*, Buf, exit codes */
#include "io.h"                 /* defines: Out, Progress, LineReader */
#include "json.h"               /* defines: json_parse_object, json_get (plot) */
#include "hash.h"               /* defines: hash64, splitmix64 */
#include "shards/corpus.h"      /* defines: corpus_open, corpus_* */
#include "tokenize/bpe.h"       /* defines: bpe_load_mem, bpe_encode, bpe_decode */
#include "trainer/kernels.h"    /* defines: kernels_env_setup, kernels_set_threads */
#include "trainer/model.h"      /* defines: Gpt, gpt_* */
#include "trainer/data.h"       /* defines: DataSource, data_* */
#include "trainer/ckpt.h"       /* defines: ckpt_save, ckpt_load */
#include "trainer/interchange.h" /* defines: interchange_verb (export, import, logits) */

#define CM_VERSION "0.1.0"

/* --------------------------------------------------------------------------------------- */
/* Options                                                                                 */

typedef struct {
    const char *zData;        /* corpus directory (--data) */
    long nSynthetic;          /* --synthetic V: random ids, vocabulary V (0: off) */
    GptConfig cfg;            /* model shape */
    long nBatch;              /* windows per micro-batch */
    long nSteps;              /* optimizer steps in all */
    long nAccum;              /* micro-batches per step */
    uint64_t seed;            /* run seed */
    const char *zLog;         /* JSONL metrics file, "-" for stdout */
    double lr, minLr;         /* peak and final learning rate (minLr < 0: lr/10) */
    long nWarmup;             /* warmup steps (-1: min(100, steps/10)) */
    double wd, clip;          /* weight decay, clipping norm (0: off) */
    long nEvalEvery;          /* evaluate every N steps (0: at the end only) */
    long nEvalBatches;        /* batches per evaluation */
    int bEvalBatchesGiven;    /* --eval-batches given: `eval` stops there, else the whole split */
    const char *zCkpt;        /* checkpoint file (or directory: DIR/ckpt.bin) */
    long nCkptEvery;          /* save every N steps (0: at the end and on signals) */
    int bResume;              /* continue from zCkpt */
    long nThreads;            /* threads (kernels and OpenBLAS) */
    const char *zWhere;       /* SQL selection of training documents */
    const char *zSplit;       /* eval: split */
    double timeLimit;         /* stop (with a checkpoint) after this many seconds (0: none) */
    const char *zKeywords;    /* --keyword-weights a,b,c */
    int bProfile;             /* print time per kernel class */
    int eProgress;            /* -1 auto, 0 off, 1 on */
    int bQuiet;               /* no start-up line */
    float initStd;            /* weight init standard deviation */
    /* complete */
    const char *zPrompt;      /* prompt text */
    long nMaxTokens;          /* tokens to generate */
    double temperature;       /* 0: greedy */
    long nTopK;               /* 0: off */
    double topP;              /* 1: off */
    /* plot */
    const char *zOut;         /* SVG output */
    unsigned given;           /* bit set of options given explicitly (GIVEN_*) */
} Opts;

enum { GIVEN_L = 1, GIVEN_C = 2, GIVEN_NH = 4, GIVEN_T = 8, GIVEN_B = 16, GIVEN_SEED = 32,
       GIVEN_LR = 64, GIVEN_MINLR = 128, GIVEN_WARMUP = 256, GIVEN_WD = 512, GIVEN_CLIP = 1024,
       GIVEN_ACCUM = 2048, GIVEN_STEPS = 4096 };

enum { OPT_DATA = 256, OPT_SYNTH, OPT_LAYERS, OPT_WIDTH, OPT_HEADS, OPT_CONTEXT, OPT_BATCH,
       OPT_STEPS, OPT_SEED, OPT_LOG, OPT_LR, OPT_MINLR, OPT_WARMUP, OPT_WD, OPT_CLIP, OPT_ACCUM,
       OPT_EVALEVERY, OPT_EVALBATCHES, OPT_CKPT, OPT_CKPTEVERY, OPT_RESUME, OPT_THREADS,
       OPT_WHERE, OPT_SPLIT, OPT_TIMELIMIT, OPT_KEYWORDS, OPT_PROFILE, OPT_PROGRESS,
       OPT_NOPROGRESS, OPT_PROMPT, OPT_MAXTOK, OPT_TEMP, OPT_TOPK, OPT_TOPP, OPT_VERSION,
       OPT_INITSTD, OPT_BLASCORE };

static const struct option long_options[] = {
    {"data", required_argument, 0, OPT_DATA},
    {"synthetic", required_argument, 0, OPT_SYNTH},
    {"layers", required_argument, 0, OPT_LAYERS},
    {"width", required_argument, 0, OPT_WIDTH},
    {"heads", required_argument, 0, OPT_HEADS},
    {"context", required_argument, 0, OPT_CONTEXT},
    {"batch", required_argument, 0, OPT_BATCH},
    {"steps", required_argument, 0, OPT_STEPS},
    {"seed", required_argument, 0, OPT_SEED},
    {"log", required_argument, 0, OPT_LOG},
    {"lr", required_argument, 0, OPT_LR},
    {"min-lr", required_argument, 0, OPT_MINLR},
    {"warmup", required_argument, 0, OPT_WARMUP},
    {"weight-decay", required_argument, 0, OPT_WD},
    {"grad-clip", required_argument, 0, OPT_CLIP},
    {"accum", required_argument, 0, OPT_ACCUM},
    {"eval-every", required_argument, 0, OPT_EVALEVERY},
    {"eval-batches", required_argument, 0, OPT_EVALBATCHES},
    {"ckpt", required_argument, 0, OPT_CKPT},
    {"ckpt-every", required_argument, 0, OPT_CKPTEVERY},
    {"resume", no_argument, 0, OPT_RESUME},
    {"threads", required_argument, 0, OPT_THREADS},
    {"blas-core", required_argument, 0, OPT_BLASCORE},
    {"where", required_argument, 0, OPT_WHERE},
    {"split", required_argument, 0, OPT_SPLIT},
    {"time-limit", required_argument, 0, OPT_TIMELIMIT},
    {"keyword-weights", required_argument, 0, OPT_KEYWORDS},
    {"profile", no_argument, 0, OPT_PROFILE},
    {"progress", no_argument, 0, OPT_PROGRESS},
    {"no-progress", no_argument, 0, OPT_NOPROGRESS},
    {"quiet", no_argument, 0, 'q'},
    {"prompt", required_argument, 0, OPT_PROMPT},
    {"max-tokens", required_argument, 0, OPT_MAXTOK},
    {"temperature", required_argument, 0, OPT_TEMP},
    {"top-k", required_argument, 0, OPT_TOPK},
    {"top-p", required_argument, 0, OPT_TOPP},
    {"init-std", required_argument, 0, OPT_INITSTD},
    {"output", required_argument, 0, 'o'},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, OPT_VERSION},
    {0, 0, 0, 0}
};

static const char usage_short[] =
    "usage: cm-train [train] (--data DIR | --synthetic V) [--layers L] [--width C] [--heads H]\n"
    "                [--context T] [--batch B] [--steps N] [--seed S] [--log FILE] [options]\n"
    "       cm-train eval --ckpt FILE (--data DIR [--split S] | --synthetic V)\n"
    "       cm-train complete --ckpt FILE --data DIR --prompt TEXT [--max-tokens N]\n"
    "       cm-train plot --log FILE -o OUT.svg\n"
    "Try 'cm-train --help' for more information.\n";

static const char usage_long[] =
    "cm-train: train a GPT-2 code-completion model on a corpus packed by cm-shards.\n"
    "\n"
    "usage: cm-train [train] (--data DIR | --synthetic V) [options]\n"
    "       cm-train eval --ckpt FILE (--data DIR [--split valid] | --synthetic V) [--batch B]\n"
    "                [--eval-batches N]   (default: the whole split)\n"
    "       cm-train complete --ckpt FILE --data DIR --prompt TEXT [--max-tokens 64]\n"
    "                [--temperature 0.8] [--top-k 50] [--top-p 0.95] [--seed S]\n"
    "       cm-train plot --log FILE -o OUT.svg      (SVG chart of train/valid loss)\n"
    "\n"
    "Data:\n"
    "  --data DIR           corpus directory written by cm-shards (index.sqlite + shards)\n"
    "  --where SQL          train only on documents matching an SQL condition on the\n"
    "                       documents table, e.g. \"imports LIKE '%pandas%'\"\n"
    "  --synthetic V        random token ids in [0, V) instead of a corpus (benchmarks)\n"
    "Model (GPT-2: learned positions, pre-LayerNorm, GELU MLP 4x, tied LM head, fp32):\n"
    "  --layers L (4)  --width C (256)  --heads H (4)  --context T (256)\n"
    "Training (AdamW, linear warmup then cosine decay, global-norm clipping):\n"
    "  --batch B (16)       windows of T+1 tokens per micro-batch\n"
    "  --accum K (1)        micro-batches per optimizer step (gradient accumulation)\n"
    "  --steps N (1000)     optimizer steps\n"
    "  --lr X (3e-4)  --min-lr X (lr/10)  --warmup N (min(100, steps/10))\n"
    "  --weight-decay X (0.1, none on biases and LayerNorm)  --grad-clip X (1.0, 0 = off)\n"
    "  --seed S (1)         initialisation and data order; same seed, same run\n"
    "  --keyword-weights a,b,c  per-sample loss weight 1 + count of these tokens in the\n"
    "                       window (Hugging Face course); each must be one token\n"
    "  --threads N (cores)  threads for the kernels and OpenBLAS\n"
    "  --blas-core auto|env|NAME (auto)  OpenBLAS kernels: auto picks this CPU's best\n"
    "                       (SkylakeX with AVX-512, also over an OPENBLAS_CORETYPE preset\n"
    "                       naming slower ones); env keeps OPENBLAS_CORETYPE; or a core name\n"
    "Evaluation and output:\n"
    "  --log FILE           JSONL metrics per step: step, loss, lr, grad_norm, tokens_per_s,\n"
    "                       and at evaluations valid_loss, perplexity, bits_per_byte\n"
    "  --eval-every N (0)   evaluate on the valid split every N steps (and at the end)\n"
    "  --eval-batches N (20) batches per evaluation\n"
    "  --profile            print the time per kernel class at the end\n"
    "  --progress, --no-progress, -q/--quiet\n"
    "Checkpoints (weights, AdamW state, step, seed, data position; atomic writes):\n"
    "  --ckpt FILE|DIR      where to save (DIR/ckpt.bin for a directory; default with\n"
    "                       --data DIR: DIR/model.ckpt, also read by eval and complete)\n"
    "  --ckpt-every N (0)   save every N steps; always at the end and on SIGINT/SIGTERM\n"
    "  --resume             continue from --ckpt bit-identically (model and hyperparameters\n"
    "                       default to the checkpoint's)\n"
    "  --time-limit SECS    stop after SECS seconds, saving a checkpoint\n"
    "\n"
    "Memory is bounded by the model and the batch, not by the corpus (shards are mmapped):\n"
    "16 bytes per parameter + 4*B*T*(L*(16C + H*T) + V + 12C) bytes of activations.\n"
    "Deterministic for the same seed, OpenBLAS kernel set and thread count.\n"
    "Exit status: 0 done, 2 usage, 3 I/O error, 4 damaged corpus or checkpoint, 5 internal,\n"
    "130 stopped by SIGINT/SIGTERM (checkpoint saved when --ckpt is given).\n";

/*
** Parse an integer option in [lo, hi] or exit 2 naming it.
*/
static long opt_long(const char *name, const char *v, long lo, long hi)
{
    long x;
    if (parse_long(v, lo, hi, &x) != 0) {
        error("--%s: '%s' is not an integer in %ld..%ld", name, v, lo, hi);
        fputs(usage_short, stderr);
        exit(CM_EUSAGE);
    }
    return x;
}

/*
** Parse a floating-point option in [lo, hi] or exit 2 naming it.
*/
static double opt_double(const char *name, const char *v, double lo, double hi)
{
    double x;
    if (parse_double(v, &x) != 0 || !(x >= lo && x <= hi)) {
        error("--%s: '%s' is not a number in %g..%g", name, v, lo, hi);
        fputs(usage_short, stderr);
        exit(CM_EUSAGE);
    }
    return x;
}

/*
** Bad usage: message, short usage on stderr, exit 2.
*/
static void usage_error(const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    error("%s", msg);
    fputs(usage_short, stderr);
    exit(CM_EUSAGE);
}

/*
** Fill o from argv (after the subcommand).
*/
static void opts_parse(Opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->cfg = (GptConfig){.L = 4, .C = 256, .NH = 4, .T = 256, .V = 0};
    o->nBatch = 16;
    o->nSteps = 1000;
    o->nAccum = 1;
    o->seed = 1;
    o->lr = 3e-4;
    o->minLr = -1;
    o->nWarmup = -1;
    o->wd = 0.1;
    o->clip = 1.0;
    o->nEvalBatches = 20;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o->nThreads = ncpu > 0 ? ncpu : 1;
    o->eProgress = -1;
    o->initStd = 0.02f;
    o->nMaxTokens = 64;
    o->temperature = 0.8;
    o->nTopK = 50;
    o->topP = 0.95;
    o->zSplit = "valid";
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hqo:", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_DATA: o->zData = optarg; break;
        case OPT_SYNTH: o->nSynthetic = opt_long("synthetic", optarg, 2, 1 << 24); break;
        case OPT_LAYERS: o->cfg.L = (int)opt_long("layers", optarg, 1, 256); o->given |= GIVEN_L; break;
        case OPT_WIDTH: o->cfg.C = (int)opt_long("width", optarg, 1, 16384); o->given |= GIVEN_C; break;
        case OPT_HEADS: o->cfg.NH = (int)opt_long("heads", optarg, 1, 1024); o->given |= GIVEN_NH; break;
        case OPT_CONTEXT: o->cfg.T = (int)opt_long("context", optarg, 1, 65536); o->given |= GIVEN_T; break;
        case OPT_BATCH: o->nBatch = opt_long("batch", optarg, 1, 1 << 20); o->given |= GIVEN_B; break;
        case OPT_STEPS: o->nSteps = opt_long("steps", optarg, 0, 2000000000L); o->given |= GIVEN_STEPS; break;
        case OPT_SEED: o->seed = (uint64_t)opt_long("seed", optarg, 0, 0x7fffffffffffffffL); o->given |= GIVEN_SEED; break;
        case OPT_LOG: o->zLog = optarg; break;
        case OPT_LR: o->lr = opt_double("lr", optarg, 0, 10); o->given |= GIVEN_LR; break;
        case OPT_MINLR: o->minLr = opt_double("min-lr", optarg, 0, 10); o->given |= GIVEN_MINLR; break;
        case OPT_WARMUP: o->nWarmup = opt_long("warmup", optarg, 0, 2000000000L); o->given |= GIVEN_WARMUP; break;
        case OPT_WD: o->wd = opt_double("weight-decay", optarg, 0, 10); o->given |= GIVEN_WD; break;
        case OPT_CLIP: o->clip = opt_double("grad-clip", optarg, 0, 1e9); o->given |= GIVEN_CLIP; break;
        case OPT_ACCUM: o->nAccum = opt_long("accum", optarg, 1, 1 << 20); o->given |= GIVEN_ACCUM; break;
        case OPT_EVALEVERY: o->nEvalEvery = opt_long("eval-every", optarg, 0, 2000000000L); break;
        case OPT_EVALBATCHES:
            o->nEvalBatches = opt_long("eval-batches", optarg, 1, 1 << 30);
            o->bEvalBatchesGiven = 1;
            break;
        case OPT_CKPT: o->zCkpt = optarg; break;
        case OPT_CKPTEVERY: o->nCkptEvery = opt_long("ckpt-every", optarg, 0, 2000000000L); break;
        case OPT_RESUME: o->bResume = 1; break;
        case OPT_THREADS: o->nThreads = opt_long("threads", optarg, 1, 1024); break;
        case OPT_BLASCORE: break; /* read by kernels_env_setup() before OpenBLAS starts */
        case OPT_WHERE: o->zWhere = optarg; break;
        case OPT_SPLIT: o->zSplit = optarg; break;
        case OPT_TIMELIMIT: o->timeLimit = opt_double("time-limit", optarg, 0, 1e9); break;
        case OPT_KEYWORDS: o->zKeywords = optarg; break;
        case OPT_PROFILE: o->bProfile = 1; break;
        case OPT_PROGRESS: o->eProgress = 1; break;
        case OPT_NOPROGRESS: o->eProgress = 0; break;
        case 'q': o->bQuiet = 1; o->eProgress = 0; break;
        case OPT_PROMPT: o->zPrompt = optarg; break;
        case OPT_MAXTOK: o->nMaxTokens = opt_long("max-tokens", optarg, 0, 1 << 24); break;
        case OPT_TEMP: o->temperature = opt_double("temperature", optarg, 0, 100); break;
        case OPT_TOPK: o->nTopK = opt_long("top-k", optarg, 0, 1 << 24); break;
        case OPT_TOPP: o->topP = opt_double("top-p", optarg, 0, 1); break;
        case OPT_INITSTD: o->initStd = (float)opt_double("init-std", optarg, 0, 10); break;
        case 'o': o->zOut = optarg; break;
        case 'h': fputs(usage_long, stdout); exit(CM_OK);
        case OPT_VERSION: printf("cm-train %s\n", CM_VERSION); exit(CM_OK);
        case '?':
        default:
            if (optopt) {
                char s[2] = {(char)optopt, 0};
                usage_error("option '-%s' is unknown or needs a value", s);
            }
            usage_error("option '%s' is unknown or needs a value", argv[optind - 1]);
        }
    }
    if (optind < argc) usage_error("unexpected argument '%s'", argv[optind]);
}

/* --------------------------------------------------------------------------------------- */
/* Signals                                                                                 */

static volatile sig_atomic_t g_stop;   /* set by SIGINT/SIGTERM: stop at the next step */

/*
** SIGINT/SIGTERM handler: only sets the flag; the training loop saves and exits at the next
** step boundary.
*/
static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* --------------------------------------------------------------------------------------- */
/* Data                                                                                    */

/*
** Open the corpus at dir: exit status 3 if it cannot be read at all, 4 if it is damaged.
** Returns 0 with *out set, or the exit status after a message.
*/
static int open_corpus(const char *dir, Corpus **out)
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

/*
** Fingerprint of the training data: the tokenizer, the vocabulary and the selection.
*/
static uint64_t data_fingerprint(Corpus *c, uint32_t V, const char *where)
{
    if (!c) return hash64_seed("synthetic", 9, V);
    size_t n = 0;
    const char *json = corpus_tokenizer_json(c, &n);
    uint64_t h = hash64_seed(json ? json : "", json ? n : 0, V);
    return where ? hash64_seed(where, strlen(where), h) : h;
}

/*
** Evaluate on every window of a (finite) source, at most max_batches batches of B.
** Returns the mean loss per token and the tokens seen in *ntok.
*/
static double evaluate(Gpt *m, DataSource *d, int B, long max_batches, uint64_t *ntok)
{
    int T = m->cfg.T;
    uint32_t *win = xmalloc((size_t)B * (T + 1) * sizeof(uint32_t));
    uint32_t *in = xmalloc((size_t)B * T * sizeof(uint32_t));
    uint32_t *tg = xmalloc((size_t)B * T * sizeof(uint32_t));
    double sum = 0;
    uint64_t n = 0;
    data_seek(d, 0);
    for (long k = 0; k < max_batches; k++) {
        int got = data_batch(d, win, B, T, in, tg);
        if (got == 0) break;
        double loss = gpt_forward(m, in, tg, NULL, got, 0.0f);
        sum += loss * got * T;
        n += (uint64_t)got * T;
        if (got < B) break;
    }
    free(win);
    free(in);
    free(tg);
    *ntok = n;
    return n ? sum / n : NAN;
}

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
        if (nt != 1) rc = error("--keyword-weights: '%s' is not a single token of this tokenizer", kw[i]);
        else (*ids)[i] = t[0];
        free(t);
    }
    strv_free(kw);
    bpe_free(bpe);
    return rc;
}

/* --------------------------------------------------------------------------------------- */
/* Log                                                                                     */

/*
** On resume, keep only the log lines of steps <= step (a killed run may have logged steps
** after its last checkpoint); they are logged again as the run continues. 0 or -1.
*/
static int log_truncate(const char *path, uint64_t step)
{
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : error("cannot read log '%s': %s", path, strerror(errno));
    Buf keep = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        unsigned long long s;
        if (sscanf(line, "{\"step\":%llu", &s) == 1 && s > step) continue;
        if (line[n - 1] != '\n') continue;    /* a half-written last line */
        buf_add(&keep, line, (size_t)n);
    }
    free(line);
    fclose(f);
    size_t tl = strlen(path) + 16;
    char *tmp = xmalloc(tl);
    snprintf(tmp, tl, "%s.tmp", path);
    f = fopen(tmp, "w");
    int rc = 0;
    if (!f || (keep.len && fwrite(keep.buf, 1, keep.len, f) != keep.len) || fclose(f) != 0 ||
        rename(tmp, path) != 0)
        rc = error("cannot rewrite log '%s': %s", path, strerror(errno));
    free(tmp);
    buf_free(&keep);
    return rc;
}

/* --------------------------------------------------------------------------------------- */
/* Training                                                                                */

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
** Resolve --ckpt: a directory means DIR/ckpt.bin; none given with --data DIR means
** DIR/model.ckpt. Returns a malloc'd path or NULL.
*/
static char *ckpt_path(const char *z, const char *data)
{
    if (!z && data) {   /* default: DATA/model.ckpt, as the README shows */
        size_t n = strlen(data) + 16;
        char *p = xmalloc(n);
        snprintf(p, n, "%s/model.ckpt", data);
        return p;
    }
    if (!z) return NULL;
    struct stat st;
    if (stat(z, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(z) + 16;
        char *p = xmalloc(n);
        snprintf(p, n, "%s/ckpt.bin", z);
        return p;
    }
    return xstrdup(z);
}

/*
** The train subcommand. Returns the exit status.
*/
static int cmd_train(Opts *o)
{
    int rc = CM_OK;
    Corpus *corpus = NULL;
    DataSource train = {0}, valid = {0};
    int have_valid = 0;
    Gpt m;
    int have_model = 0;
    CkptInfo info;
    char *ck = ckpt_path(o->zCkpt, o->zData);
    uint32_t *kw = NULL, *win = NULL, *in = NULL, *tg = NULL;
    float *wts = NULL;
    int nkw = 0;
    Out log;
    int log_open = 0;
    FILE *logf = NULL;
    char err[1024];
    double bytes_per_tok = 0;
    uint64_t step0 = 0;

    memset(&m, 0, sizeof m);
    memset(&info, 0, sizeof info);
    if (!o->zData == !o->nSynthetic) usage_error("%s", "give one of --data DIR or --synthetic V");
    if (o->bResume && !ck) usage_error("%s", "--resume needs --ckpt");
    if (ck && !o->zCkpt && !o->bResume && access(o->zData, W_OK) != 0) {
        warn("cannot write to '%s': no checkpoint will be saved (give --ckpt FILE)", o->zData);
        free(ck);
        ck = NULL;
    }
    kernels_set_threads((int)o->nThreads);
    if (ck) ckpt_clean_stale(ck);

    /* the data's vocabulary */
    uint32_t V = (uint32_t)o->nSynthetic;
    if (o->zData) {
        if ((rc = open_corpus(o->zData, &corpus)) != 0) goto done;
        V = corpus_vocab_size(corpus);
        bytes_per_tok = corpus_bytes_per_token(corpus, o->zSplit);
    }
    uint64_t fp = data_fingerprint(corpus, V, o->zWhere);

    /* resume: shape and hyperparameters from the checkpoint unless given */
    int resumed = 0;
    if (o->bResume && access(ck, F_OK) == 0) {
        int r = ckpt_load(ck, &m, &info, 1);
        if (r) { rc = r == -1 ? CM_EIO : CM_EFORMAT; goto done; }
        have_model = 1;
        if (!info.has_opt) {
            error("%s: saved without optimizer state: cannot resume (train anew from it)", ck);
            rc = CM_EFORMAT;
            goto done;
        }
        const GptConfig *c = &info.cfg;
        if (((o->given & GIVEN_L) && o->cfg.L != c->L) || ((o->given & GIVEN_C) && o->cfg.C != c->C) ||
            ((o->given & GIVEN_NH) && o->cfg.NH != c->NH) || ((o->given & GIVEN_T) && o->cfg.T != c->T) ||
            ((o->given & GIVEN_B) && (uint32_t)o->nBatch != info.batch) ||
            ((o->given & GIVEN_ACCUM) && (uint32_t)o->nAccum != info.accum) ||
            ((o->given & GIVEN_SEED) && o->seed != info.seed)) {
            error("%s: the model shape, batch, accumulation or seed given differ from the "
                  "checkpoint's (L=%d C=%d heads=%d T=%d batch=%u accum=%u seed=%llu)", ck,
                  c->L, c->C, c->NH, c->T, info.batch, info.accum, (unsigned long long)info.seed);
            rc = CM_EUSAGE;
            goto done;
        }
        if ((uint32_t)c->V != V || info.data_fp != fp) {
            error("%s: trained on other data (vocabulary %d, fingerprint %016llx; this data: "
                  "vocabulary %u, fingerprint %016llx)", ck, c->V,
                  (unsigned long long)info.data_fp, V, (unsigned long long)fp);
            rc = CM_EFORMAT;
            goto done;
        }
        o->cfg = *c;
        o->nBatch = info.batch;
        o->nAccum = info.accum;
        o->seed = info.seed;
        if (!(o->given & GIVEN_STEPS)) o->nSteps = info.steps;
        if (!(o->given & GIVEN_LR)) o->lr = info.lr;
        if (!(o->given & GIVEN_MINLR)) o->minLr = info.min_lr;
        if (!(o->given & GIVEN_WARMUP)) o->nWarmup = info.warmup;
        if (!(o->given & GIVEN_WD)) o->wd = info.wd;
        if (!(o->given & GIVEN_CLIP)) o->clip = info.clip;
        step0 = info.step;
        resumed = 1;
    } else if (o->bResume && !o->bQuiet) {
        warn("no checkpoint at '%s' yet: starting from step 0", ck);
    }
    o->cfg.V = (int)V;
    const char *bad = gpt_config_check(&o->cfg);
    if (bad) usage_error("%s", bad);
    if (o->minLr < 0) o->minLr = o->lr / 10;
    if (o->nWarmup < 0) o->nWarmup = o->nSteps / 10 < 100 ? o->nSteps / 10 : 100;
    int B = (int)o->nBatch, T = o->cfg.T;

    /* data sources */
    if (corpus) {
        if (data_corpus(&train, corpus, "train", o->zWhere, 0, o->seed, (size_t)T + 1, err,
                        sizeof err)) {
            error("%s: %s", o->zData, err);
            rc = strncmp(err, "bad selection", 13) == 0 ? CM_EUSAGE : CM_EFORMAT;
            goto done;
        }
        if (data_corpus(&valid, corpus, o->zSplit, NULL, 1, 0, (size_t)T + 1, err,
                        sizeof err) == 0) have_valid = 1;
        else if (!o->bQuiet) warn("%s: no evaluation (%s)", o->zData, err);
        if (o->zKeywords && (nkw = keyword_ids(corpus, o->zKeywords, &kw)) < 0) {
            rc = CM_EUSAGE;
            goto done;
        }
    } else {
        if (o->zKeywords) usage_error("%s", "--keyword-weights needs --data (a tokenizer)");
        data_synthetic(&train, V, o->seed, (size_t)T + 1, 0);
        data_synthetic(&valid, V, o->seed ^ 0x76616c6964ull, (size_t)T + 1,
                       (uint64_t)o->nEvalBatches * B);
        have_valid = 1;
    }
    data_seek(&train, resumed ? info.data_pos : 0);

    /* model */
    if (!have_model) {
        gpt_init(&m, &o->cfg);
        gpt_init_weights(&m, o->seed, o->initStd);
        have_model = 1;
    }
    gpt_alloc_train(&m);

    /* log */
    if (o->zLog) {
        if (strcmp(o->zLog, "-") == 0) {
            out_init(&log, 1, "stdout", 1 << 16);
        } else {
            if (resumed && log_truncate(o->zLog, step0) != 0) { rc = CM_EIO; goto done; }
            logf = fopen(o->zLog, resumed ? "a" : "w");
            if (!logf) {
                error("cannot open log '%s': %s", o->zLog, strerror(errno));
                rc = CM_EIO;
                goto done;
            }
            out_init(&log, fileno(logf), o->zLog, 1 << 16);
        }
        log_open = 1;
    }

    size_t N = (size_t)B * T;
    double acts_gib = 4.0 * N * (o->cfg.L * (16.0 * o->cfg.C + (double)o->cfg.NH * T) + V +
                                 12.0 * o->cfg.C) / (1 << 30);
    const char *core = kernels_blas_core(), *ct = getenv("OPENBLAS_CORETYPE");
    const char *over = getenv("CM_TRAIN_BLAS_OVERRODE");
    if (!o->bQuiet && over)
        fprintf(stderr, "cm-train: OPENBLAS_CORETYPE=%s from the environment names slower "
                "kernels than this CPU runs: using %s (--blas-core env keeps the preset)\n",
                over, core);
    else if (!o->bQuiet && ct && !kernels_core_is_avx512(core) && kernels_cpu_avx512())
        warn("OPENBLAS_CORETYPE=%s keeps OpenBLAS on its %s kernels; this CPU runs the faster "
             "SkylakeX ones (--blas-core auto)", ct, core);
    if (!o->bQuiet)
        fprintf(stderr, "cm-train: GPT L=%d C=%d heads=%d T=%d V=%u, %.2fM parameters; "
                "batch %dx%d x%ld = %zu tokens/step; OpenBLAS %s kernels on %d threads, other kernels on %d; "
                "~%.2f GiB; %s step %llu of %ld\n",
                o->cfg.L, o->cfg.C, o->cfg.NH, T, V, m.nparams / 1e6, B, T, o->nAccum,
                N * o->nAccum, core, kernels_blas_threads(), kernels_threads(),
                acts_gib + 16.0 * m.nparams / (1 << 30), resumed ? "resuming after" : "from",
                (unsigned long long)step0, o->nSteps);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    gpt_profile_on = o->bProfile;
    win = xmalloc((size_t)B * (T + 1) * sizeof(uint32_t));
    in = xmalloc(N * sizeof(uint32_t));
    tg = xmalloc(N * sizeof(uint32_t));
    wts = xmalloc((size_t)B * sizeof(float));
    Progress prog;
    progress_init(&prog, o->eProgress);
    double t_start = now_sec(), flops = gpt_flops_per_token(&m);
    uint64_t tokens_done = 0;
    long s;
    info.cfg = o->cfg;
    info.seed = o->seed;
    info.data_fp = fp;
    info.has_opt = 1;
    info.lr = o->lr;
    info.min_lr = o->minLr;
    info.wd = o->wd;
    info.clip = o->clip;
    info.warmup = (uint32_t)o->nWarmup;
    info.steps = (uint32_t)o->nSteps;
    info.batch = (uint32_t)B;
    info.accum = (uint32_t)o->nAccum;
    for (s = (long)step0 + 1; s <= o->nSteps; s++) {
        double t0 = now_sec(), loss = 0;
        gpt_zero_grad(&m);
        for (long k = 0; k < o->nAccum; k++) {
            if (data_batch(&train, win, B, T, in, tg) != B) {
                error("%s: training data ran out", o->zData ? o->zData : "synthetic");
                rc = CM_EINTERNAL;
                goto done;
            }
            if (nkw > 0)
                for (int b = 0; b < B; b++) {
                    int cnt = 0;
                    for (int t = 0; t < T; t++)
                        for (int j = 0; j < nkw; j++) cnt += in[(size_t)b * T + t] == kw[j];
                    wts[b] = 1.0f + (float)cnt;
                }
            loss += gpt_forward(&m, in, tg, nkw > 0 ? wts : NULL, B, 1.0f / (float)o->nAccum);
            gpt_backward(&m);
        }
        loss /= (double)o->nAccum;
        double gnorm = gpt_grad_norm(&m);
        float gscale = o->clip > 0 && gnorm > o->clip ? (float)(o->clip / gnorm) : 1.0f;
        double lr = lr_at(s, o->nSteps, o->nWarmup, o->lr, o->minLr);
        gpt_update(&m, (float)lr, 0.9f, 0.95f, 1e-8f, (float)o->wd, gscale, (int)s);
        double dt = now_sec() - t0;
        tokens_done += N * o->nAccum;
        double tps = N * o->nAccum / dt;
        if (!isfinite(loss)) {
            error("step %ld: loss is %g: training diverged (lower --lr?)", s, loss);
            rc = CM_EINTERNAL;
            goto done;
        }
        int do_eval = have_valid && ((o->nEvalEvery && s % o->nEvalEvery == 0) || s == o->nSteps);
        if (log_open) {
            char line[512];
            int n = snprintf(line, sizeof line,
                             "{\"step\":%ld,\"loss\":%.9g,\"lr\":%.6g,\"grad_norm\":%.6g,"
                             "\"tokens\":%llu,\"tokens_per_s\":%.1f,\"mfu_gflops\":%.1f,"
                             "\"elapsed_s\":%.3f", s, loss, lr, gnorm,
                             (unsigned long long)tokens_done, tps, flops * tps / 1e9,
                             now_sec() - t_start);
            out_write(&log, line, (size_t)n);
        }
        if (do_eval) {
            uint64_t nt = 0;
            double vl = evaluate(&m, &valid, B, o->nEvalBatches, &nt);
            if (log_open) {
                char line[256];
                int n = snprintf(line, sizeof line,
                                 ",\"valid_loss\":%.9g,\"perplexity\":%.6g,\"valid_tokens\":%llu",
                                 vl, exp(vl), (unsigned long long)nt);
                out_write(&log, line, (size_t)n);
                if (bytes_per_tok > 0) {
                    n = snprintf(line, sizeof line, ",\"bits_per_byte\":%.6g",
                                 vl / M_LN2 / bytes_per_tok);
                    out_write(&log, line, (size_t)n);
                }
            }
            if (!o->bQuiet && !prog.on)
                fprintf(stderr, "cm-train: step %ld: loss %.4f, valid loss %.4f, perplexity %.2f\n",
                        s, loss, vl, exp(vl));
        }
        if (log_open) {
            out_write(&log, "}\n", 2);
            out_flush(&log);
        }
        double el = now_sec() - t_start;
        double eta = (double)(o->nSteps - s) * el / (double)(s - (long)step0);
        progress_update(&prog, "step %ld/%ld  loss %.4f  lr %.2e  %.0f tok/s  ETA %.0fs", s,
                        o->nSteps, loss, lr, tps, eta);
        int stop = g_stop || (o->timeLimit > 0 && el >= o->timeLimit);
        if (ck && ((o->nCkptEvery && s % o->nCkptEvery == 0) || s == o->nSteps || stop)) {
            info.step = (uint64_t)s;
            info.data_pos = data_tell(&train);
            if (ckpt_save(ck, &m, &info) != 0) { rc = CM_EIO; goto done; }
        }
        if (stop) {
            progress_end(&prog);
            if (g_stop || !o->bQuiet)
                fprintf(stderr, "cm-train: %s after step %ld%s%s\n",
                        g_stop ? "interrupted" : "time limit reached", s,
                        ck ? ", checkpoint saved to " : " (no --ckpt: nothing saved)",
                        ck ? ck : "");
            rc = g_stop ? CM_EINTR : CM_OK;
            s++;
            break;
        }
    }
    progress_end(&prog);
    if (o->bProfile) {
        double tot = 0;
        for (int i = 0; i < PROF_N; i++) tot += gpt_profile[i];
        long ns = s - 1 - (long)step0;
        fprintf(stderr, "cm-train: profile over %ld steps (ms per step):\n", ns);
        for (int i = 0; i < PROF_N; i++)
            fprintf(stderr, "  %-16s %9.1f  %5.1f%%\n", gpt_profile_names[i],
                    ns ? 1e3 * gpt_profile[i] / ns : 0, tot ? 100 * gpt_profile[i] / tot : 0);
        double wall = now_sec() - t_start;
        fprintf(stderr, "  %-16s %9.1f  (wall %.1f ms per step: %.0f tokens/s)\n", "kernels",
                ns ? 1e3 * tot / ns : 0, ns ? 1e3 * wall / ns : 0,
                wall > 0 ? (double)tokens_done / wall : 0);
    }

done:
    if (log_open) out_done(&log);
    if (logf && fclose(logf) != 0 && rc == CM_OK) {
        error("cannot write log '%s': %s", o->zLog, strerror(errno));
        rc = CM_EIO;
    }
    free(win); free(in); free(tg); free(wts); free(kw);
    data_free(&train);
    data_free(&valid);
    if (have_model) gpt_free(&m);
    if (corpus) corpus_close(corpus);
    free(ck);
    return rc;
}

/* --------------------------------------------------------------------------------------- */
/* Eval                                                                                    */

/*
** The eval subcommand: loss, perplexity and bits per byte of a checkpoint on a split.
*/
static int cmd_eval(Opts *o)
{
    int rc = CM_OK;
    Corpus *corpus = NULL;
    DataSource d = {0};
    Gpt m;
    CkptInfo info;
    char err[1024];
    char *ck = ckpt_path(o->zCkpt, o->zData);
    int have_model = 0;

    if (!ck) usage_error("%s", "eval needs --ckpt FILE (or --data DIR with DIR/model.ckpt)");
    if (!o->zData == !o->nSynthetic) usage_error("%s", "give one of --data DIR or --synthetic V");
    kernels_set_threads((int)o->nThreads);
    int r = ckpt_load(ck, &m, &info, 0);
    if (r) { rc = r == -1 ? CM_EIO : CM_EFORMAT; goto done; }
    have_model = 1;
    int T = m.cfg.T, B = (o->given & GIVEN_B) || !info.batch ? (int)o->nBatch : (int)info.batch;
    double bpt = 0;
    if (o->zData) {
        if ((rc = open_corpus(o->zData, &corpus)) != 0) goto done;
        if ((int)corpus_vocab_size(corpus) != m.cfg.V) {
            error("%s: vocabulary %u, the checkpoint's model has %d", o->zData,
                  corpus_vocab_size(corpus), m.cfg.V);
            rc = CM_EFORMAT;
            goto done;
        }
        if (data_corpus(&d, corpus, o->zSplit, o->zWhere, 1, 0, (size_t)T + 1, err, sizeof err)) {
            error("%s: %s", o->zData, err);
            rc = CM_EFORMAT;
            goto done;
        }
        bpt = corpus_bytes_per_token(corpus, o->zSplit);
    } else {
        if (o->nSynthetic != m.cfg.V) usage_error("%s", "--synthetic V must match the checkpoint's vocabulary");
        data_synthetic(&d, (uint32_t)m.cfg.V, info.seed ^ 0x76616c6964ull, (size_t)T + 1,
                       (uint64_t)o->nEvalBatches * B);
    }
    uint64_t nt = 0;
    long maxb = o->zData && !o->bEvalBatchesGiven ? 0x7fffffffL : o->nEvalBatches;
    double loss = evaluate(&m, &d, B, maxb, &nt);
    printf("{\"split\":\"%s\",\"step\":%llu,\"loss\":%.9g,\"perplexity\":%.6g,\"tokens\":%llu",
           o->zData ? o->zSplit : "synthetic", (unsigned long long)info.step, loss, exp(loss),
           (unsigned long long)nt);
    if (bpt > 0) printf(",\"bits_per_byte\":%.6g", loss / M_LN2 / bpt);
    printf("}\n");
    if (fflush(stdout) != 0) rc = CM_EIO;
done:
    data_free(&d);
    if (have_model) gpt_free(&m);
    if (corpus) corpus_close(corpus);
    free(ck);
    return rc;
}

/* --------------------------------------------------------------------------------------- */
/* Complete                                                                                */

typedef struct {
    float p;       /* unnormalised probability */
    uint32_t id;   /* token id */
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
    for (int i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
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
        if (acc >= top_p) { n = i + 1; break; }
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
** The complete subcommand: prompt + generated code on stdout.
*/
static int cmd_complete(Opts *o)
{
    int rc = CM_OK;
    Corpus *corpus = NULL;
    Bpe *bpe = NULL;
    Gpt m;
    GptKV kv;
    CkptInfo info;
    char err[1024];
    char *ck = ckpt_path(o->zCkpt, o->zData);
    int have_model = 0, have_kv = 0;
    uint32_t *ids = NULL;
    size_t n = 0, cap = 0;
    Cand *cand = NULL;
    Buf text = {0};

    if (!ck) usage_error("%s", "complete needs --ckpt FILE");
    if (!o->zData) usage_error("%s", "complete needs --data DIR (for the tokenizer)");
    if (!o->zPrompt) usage_error("%s", "complete needs --prompt TEXT");
    kernels_set_threads((int)o->nThreads);
    int r = ckpt_load(ck, &m, &info, 0);
    if (r) { rc = r == -1 ? CM_EIO : CM_EFORMAT; goto done; }
    have_model = 1;
    if ((rc = open_corpus(o->zData, &corpus)) != 0) goto done;
    size_t jl = 0;
    const char *json = corpus_tokenizer_json(corpus, &jl);
    if (!json || !(bpe = bpe_load_mem(json, jl, o->zData, err, sizeof err))) {
        error("%s", json ? err : "no tokenizer in the corpus index");
        rc = CM_EFORMAT;
        goto done;
    }
    if ((int)bpe_vocab_size(bpe) > m.cfg.V || (int)corpus_vocab_size(corpus) != m.cfg.V) {
        error("%s: the tokenizer has %u tokens (corpus vocabulary %u), the checkpoint's model "
              "%d: not trained on this corpus", o->zData, bpe_vocab_size(bpe),
              corpus_vocab_size(corpus), m.cfg.V);
        rc = CM_EFORMAT;
        goto done;
    }
    int64_t eot = bpe_eot_id(bpe);
    if (bpe_encode(bpe, o->zPrompt, strlen(o->zPrompt), &ids, &n, &cap) != 0) {
        error("cannot encode the prompt");
        rc = CM_EINTERNAL;
        goto done;
    }
    int T = m.cfg.T;
    size_t first = n > (size_t)T - 1 ? n - ((size_t)T - 1) : 0;   /* keep room for one token */
    if (n == 0) {
        if (eot < 0) usage_error("%s", "empty prompt and no end-of-text token to start from");
        ids = xrealloc(ids, sizeof(uint32_t));
        ids[0] = (uint32_t)eot;
        n = 1;
    }
    gpt_kv_init(&kv, &m);
    have_kv = 1;
    cand = xmalloc((size_t)m.cfg.V * sizeof *cand);
    uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + 1;
    float *logits = NULL;
    int pos = 0;
    for (size_t i = first; i < n; i++) logits = gpt_kv_step(&m, &kv, ids[i], pos++);
    size_t gen0 = n;
    for (long k = 0; k < o->nMaxTokens && pos < T; k++) {
        uint32_t t = sample_token(logits, m.cfg.V, o->temperature, o->nTopK, o->topP, &rng, cand);
        if ((int64_t)t == eot) break;
        if (n == cap) { cap = cap ? 2 * cap : 64; ids = xrealloc(ids, cap * sizeof *ids); }
        ids[n++] = t;
        logits = gpt_kv_step(&m, &kv, t, pos++);
    }
    buf_adds(&text, o->zPrompt);
    if (n > gen0 && bpe_decode(bpe, ids + gen0, n - gen0, &text) != 0) {
        error("generated an id the tokenizer does not know");
        rc = CM_EINTERNAL;
        goto done;
    }
    Out out;
    out_init(&out, 1, "stdout", 1 << 12);
    out_write(&out, text.buf, text.len);
    out_putc(&out, '\n');
    out_done(&out);
done:
    buf_free(&text);
    free(cand);
    free(ids);
    if (have_kv) gpt_kv_free(&kv);
    if (bpe) bpe_free(bpe);
    if (have_model) gpt_free(&m);
    if (corpus) corpus_close(corpus);
    free(ck);
    return rc;
}

/* --------------------------------------------------------------------------------------- */
/* Plot                                                                                    */

/*
** Value of numeric field `key` of a parsed object, or NAN.
*/
static double json_num(const JsonObj *j, const char *key)
{
    const JsonField *f = json_get(j, key);
    return f && f->type == JSON_NUMBER ? strtod(f->raw, NULL) : NAN;
}

/*
** Append one SVG polyline of (x[i], y[i]) (NAN y skipped) mapped into the plot box.
*/
static void svg_line(Buf *s, const double *x, const double *y, size_t n, double x0, double x1,
                     double y0, double y1, const char *color, int dots)
{
    buf_addf(s, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
    for (size_t i = 0; i < n; i++) {
        if (isnan(y[i])) continue;
        double px = 60 + 700 * (x[i] - x0) / (x1 - x0 ? x1 - x0 : 1);
        double py = 420 - 380 * (y[i] - y0) / (y1 - y0 ? y1 - y0 : 1);
        buf_addf(s, "%.1f,%.1f ", px, py);
    }
    buf_adds(s, "\"/>\n");
    if (dots)
        for (size_t i = 0; i < n; i++) {
            if (isnan(y[i])) continue;
            double px = 60 + 700 * (x[i] - x0) / (x1 - x0 ? x1 - x0 : 1);
            double py = 420 - 380 * (y[i] - y0) / (y1 - y0 ? y1 - y0 : 1);
            buf_addf(s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px, py, color);
        }
}

/*
** The plot subcommand: an SVG line chart of loss and valid_loss against step.
*/
static int cmd_plot(Opts *o)
{
    if (!o->zLog) usage_error("%s", "plot needs --log FILE");
    if (!o->zOut) usage_error("%s", "plot needs -o OUT.svg");
    int fd = strcmp(o->zLog, "-") == 0 ? 0 : open(o->zLog, O_RDONLY);
    if (fd < 0) return error("cannot open log '%s': %s", o->zLog, strerror(errno)), CM_EIO;
    LineReader lr;
    lr_init(&lr, fd, fd ? o->zLog : "stdin", 1 << 20);
    JsonObj j = {0};
    double *xs = NULL, *ys = NULL, *vs = NULL;
    size_t n = 0, cap = 0;
    char *line;
    size_t len;
    int r, rc = CM_OK;
    while ((r = lr_next(&lr, &line, &len)) != 0) {
        if (r < 0) { rc = CM_EDATA; continue; }
        if (len == 0) continue;
        if (json_parse_object(&j, line, len) != 0) {
            error("%s: line %llu: byte %zu: %s", lr.name, (unsigned long long)lr.lineno,
                  j.err_pos, j.err);
            rc = CM_EDATA;
            continue;
        }
        double st = json_num(&j, "step");
        if (isnan(st)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            xs = xrealloc(xs, cap * sizeof *xs);
            ys = xrealloc(ys, cap * sizeof *ys);
            vs = xrealloc(vs, cap * sizeof *vs);
        }
        xs[n] = st;
        ys[n] = json_num(&j, "loss");
        vs[n] = json_num(&j, "valid_loss");
        n++;
    }
    if (lr.err) rc = CM_EIO;
    json_obj_free(&j);
    lr_free(&lr);
    if (fd > 0) close(fd);
    if (n == 0) {
        error("%s: no steps to plot", o->zLog);
        free(xs); free(ys); free(vs);
        return rc ? rc : CM_EDATA;
    }
    double x0 = xs[0], x1 = xs[0], y0 = INFINITY, y1 = -INFINITY;
    int have_v = 0;
    for (size_t i = 0; i < n; i++) {
        if (xs[i] < x0) x0 = xs[i];
        if (xs[i] > x1) x1 = xs[i];
        double c[2] = {ys[i], vs[i]};
        for (int k = 0; k < 2; k++)
            if (!isnan(c[k])) { if (c[k] < y0) y0 = c[k]; if (c[k] > y1) y1 = c[k]; }
        if (!isnan(vs[i])) have_v = 1;
    }
    if (!isfinite(y0)) { y0 = 0; y1 = 1; }
    if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
    Buf s = {0};
    buf_adds(&s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"480\" "
                 "font-family=\"sans-serif\" font-size=\"12\">\n"
                 "<rect width=\"800\" height=\"480\" fill=\"white\"/>\n"
                 "<text x=\"400\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">cm-train loss</text>\n"
                 "<line x1=\"60\" y1=\"420\" x2=\"760\" y2=\"420\" stroke=\"black\"/>\n"
                 "<line x1=\"60\" y1=\"40\" x2=\"60\" y2=\"420\" stroke=\"black\"/>\n");
    for (int k = 0; k <= 5; k++) {
        double yv = y0 + (y1 - y0) * k / 5, py = 420 - 380.0 * k / 5;
        double xv = x0 + (x1 - x0) * k / 5, px = 60 + 700.0 * k / 5;
        buf_addf(&s, "<line x1=\"60\" y1=\"%.1f\" x2=\"760\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                     "<text x=\"54\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n"
                     "<text x=\"%.1f\" y=\"438\" text-anchor=\"middle\">%.0f</text>\n",
                 py, py, py + 4, yv, px, xv);
    }
    buf_adds(&s, "<text x=\"410\" y=\"465\" text-anchor=\"middle\">step</text>\n");
    svg_line(&s, xs, ys, n, x0, x1, y0, y1, "#1f77b4", 0);
    if (have_v) svg_line(&s, xs, vs, n, x0, x1, y0, y1, "#ff7f0e", 1);
    buf_adds(&s, "<rect x=\"600\" y=\"48\" width=\"150\" height=\"46\" fill=\"white\" stroke=\"#999\"/>\n"
                 "<line x1=\"610\" y1=\"63\" x2=\"640\" y2=\"63\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n"
                 "<text x=\"648\" y=\"67\">train loss</text>\n"
                 "<line x1=\"610\" y1=\"83\" x2=\"640\" y2=\"83\" stroke=\"#ff7f0e\" stroke-width=\"2\"/>\n"
                 "<text x=\"648\" y=\"87\">valid loss</text>\n</svg>\n");
    free(xs); free(ys); free(vs);
    int ofd = strcmp(o->zOut, "-") == 0 ? 1 : open(o->zOut, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (ofd < 0) {
        buf_free(&s);
        return error("cannot create '%s': %s", o->zOut, strerror(errno)), CM_EIO;
    }
    Out out;
    out_init(&out, ofd, ofd == 1 ? "stdout" : o->zOut, 1 << 16);
    out_write(&out, s.buf, s.len);
    out_done(&out);
    if (ofd != 1 && close(ofd) != 0) {
        error("cannot write '%s': %s", o->zOut, strerror(errno));
        rc = CM_EIO;
    }
    buf_free(&s);
    return rc;
}

/* --------------------------------------------------------------------------------------- */
/* Main                                                                                    */

int main(int argc, char **argv)
{
    kernels_env_setup(argv);
    cm_init("cm-train");
    int (*verb)(int, char **) = argc > 1 ? interchange_verb(argv[1]) : NULL;
    if (verb) return verb(argc - 1, argv + 1);
    int rc;
    Opts o;
    const char *cmd = "train";
    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        argc--;
        argv++;
    }
    opts_parse(&o, argc, argv);
    if (strcmp(cmd, "train") == 0) rc = cmd_train(&o);
    else if (strcmp(cmd, "eval") == 0) rc = cmd_eval(&o);
    else if (strcmp(cmd, "complete") == 0) rc = cmd_complete(&o);
    else if (strcmp(cmd, "plot") == 0) rc = cmd_plot(&o);
    else {
        error("unknown command '%s' (train, eval, complete, plot)", cmd);
        fputs(usage_short, stderr);
        rc = CM_EUSAGE;
    }
    if (fflush(stdout) != 0 && rc == CM_OK) {
        error("cannot write to stdout: %s", strerror(errno));
        rc = CM_EIO;
    }
    return rc;
}
