// SPDX-License-Identifier: MIT
/*
** options.h: the options of cm-train's verbs. One struct holds their values, one enum names
** them for the CliOpt tables (each verb's file holds its own table and CliSpec, lib/cli.h),
** one parser fills the struct from a verb's table; and what options name is resolved here
** once: the --ckpt path and the --data corpus.
**
** A new verb: its file with its CliSpec and `int verb_NAME(int argc, char **argv)` (verbs.h),
** a row in cm-train.c's verb table, and here any option it adds (field, id, case).
*/
#ifndef CM_TRAIN_OPTIONS_H
#define CM_TRAIN_OPTIONS_H

#include <stdint.h>

#include "cli.h"           /* defines: CliSpec, CliOpt */
#include "trainer/model.h" /* defines: GptConfig */

typedef struct Corpus Corpus;

typedef struct {
    /* data */
    const char *data;  /* --data DIR: corpus directory */
    long synthetic;    /* --synthetic V: random ids, vocabulary V (0: off) */
    const char *where; /* --where SQL: selection of documents */
    const char *split; /* --split S: the split evaluated */
    /* model */
    GptConfig cfg;  /* --layers, --width, --heads, --context */
    float init_std; /* --init-std: weight initialisation standard deviation */
    /* optimisation */
    long batch;           /* windows per micro-batch */
    long accum;           /* micro-batches per optimizer step */
    long steps;           /* optimizer steps in all */
    uint64_t seed;        /* run seed (complete: the sampling seed) */
    double lr, min_lr;    /* peak and final learning rate (min_lr < 0: lr/10) */
    long warmup;          /* warmup steps (-1: min(100, steps/10)) */
    double weight_decay;  /* AdamW decoupled weight decay */
    double grad_clip;     /* global gradient norm clipping (0: off) */
    const char *keywords; /* --keyword-weights a,b,c */
    long threads;         /* threads of the kernels and of OpenBLAS */
    long zero;            /* --zero: 1 shards the AdamW moments across MPI ranks */
    int precision;        /* --precision: PREC_AUTO, PREC_FP32 or PREC_BF16 */
    int recompute;        /* --recompute: attention probabilities, GELU outputs */
    /* evaluation and output */
    const char *log;        /* JSONL metrics file, "-" for stdout (plot: the log to read) */
    long eval_every;        /* evaluate every N steps (0: at the end only) */
    long eval_batches;      /* batches per evaluation */
    int eval_batches_given; /* --eval-batches given: `eval` stops there, else the whole split */
    int profile;            /* print the time per kernel class */
    int progress;           /* -1 when stderr is a terminal, 0 off, 1 on */
    int quiet;              /* no start-up line */
    /* checkpoints */
    const char *ckpt;  /* checkpoint file (or directory: DIR/ckpt.bin) */
    long ckpt_every;   /* save every N steps (0: at the end and on signals) */
    int resume;        /* continue from ckpt */
    const char *init;  /* --init FILE: start from its weights (trainer/init.h) */
    double time_limit; /* stop (with a checkpoint) after this many seconds (0: none) */
    /* complete */
    const char *prompt; /* prompt text */
    long max_tokens;    /* tokens to generate */
    double temperature; /* 0: greedy */
    long top_k;         /* 0: off */
    double top_p;       /* 1: off */
    /* LoRA (lora.h): adapters on a frozen base */
    long lora_rank;           /* --lora-rank R (0: off, a full fine-tuning) */
    double lora_alpha;        /* --lora-alpha A (< 0: not given, PEFT's default 8) */
    const char *lora_targets; /* --lora-targets LIST (NULL: not given, c_attn) */
    unsigned lora_mask;       /* its LORA_* bit mask */
    /* complete --template (instruction tuning, issue 14) */
    const char *template_spec; /* --template NAME|FILE (lib/template.h) */
    const char *instruction;   /* --instruction TEXT */
    const char *input;         /* --input TEXT */
    const char *system;        /* --system TEXT */
    /* plot */
    const char *output; /* -o: the SVG file */
    unsigned given;     /* options given explicitly (GIVEN_*) */
} TrainerOpts;

/* Options given on the command line (a resumed run takes the others from the checkpoint). */
enum {
    GIVEN_LAYERS = 1 << 0,
    GIVEN_WIDTH = 1 << 1,
    GIVEN_HEADS = 1 << 2,
    GIVEN_CONTEXT = 1 << 3,
    GIVEN_BATCH = 1 << 4,
    GIVEN_SEED = 1 << 5,
    GIVEN_LR = 1 << 6,
    GIVEN_MIN_LR = 1 << 7,
    GIVEN_WARMUP = 1 << 8,
    GIVEN_WEIGHT_DECAY = 1 << 9,
    GIVEN_GRAD_CLIP = 1 << 10,
    GIVEN_ACCUM = 1 << 11,
    GIVEN_STEPS = 1 << 12,
    GIVEN_THREADS = 1 << 13
};

/* Option ids of the CliOpt tables (-o is 'o'). */
enum {
    TOPT_DATA = 256,
    TOPT_SYNTHETIC,
    TOPT_WHERE,
    TOPT_SPLIT,
    TOPT_LAYERS,
    TOPT_WIDTH,
    TOPT_HEADS,
    TOPT_CONTEXT,
    TOPT_INIT_STD,
    TOPT_BATCH,
    TOPT_ACCUM,
    TOPT_STEPS,
    TOPT_SEED,
    TOPT_LR,
    TOPT_MIN_LR,
    TOPT_WARMUP,
    TOPT_WEIGHT_DECAY,
    TOPT_GRAD_CLIP,
    TOPT_KEYWORDS,
    TOPT_THREADS,
    TOPT_BLAS_CORE,
    TOPT_LOG,
    TOPT_EVAL_EVERY,
    TOPT_EVAL_BATCHES,
    TOPT_PROFILE,
    TOPT_CKPT,
    TOPT_CKPT_EVERY,
    TOPT_RESUME,
    TOPT_TIME_LIMIT,
    TOPT_PROMPT,
    TOPT_MAX_TOKENS,
    TOPT_TEMPERATURE,
    TOPT_TOP_K,
    TOPT_TOP_P,
    TOPT_INIT,
    TOPT_ZERO,
    TOPT_PRECISION,
    TOPT_RECOMPUTE,
    TOPT_LORA_RANK,
    TOPT_LORA_ALPHA,
    TOPT_LORA_TARGETS,
    /* complete --template (instruction tuning) */
    TOPT_TEMPLATE,
    TOPT_INSTRUCTION,
    TOPT_INPUT,
    TOPT_SYSTEM
};

/* --precision: matmul inputs in bf16 where the CPU has bf16 arithmetic, fp32, or bf16. */
enum { PREC_AUTO, PREC_FP32, PREC_BF16 };

/* Rows that several verbs share, word for word. */
#define TRAINER_ROW_THREADS \
    { \
        "threads", 0, "N", "cores", "threads for every kernel and matmul", TOPT_THREADS \
    }
#define TRAINER_ROW_BLAS_CORE \
    { \
        "blas-core", 0, "auto|env|NAME", "auto", \
            "OpenBLAS kernels: auto picks this CPU's best (SkylakeX with\n" \
            "AVX-512, also over an OPENBLAS_CORETYPE preset naming slower\n" \
            "ones); env keeps OPENBLAS_CORETYPE; or a core name", \
            TOPT_BLAS_CORE \
    }

/* Exit statuses, for the notes of every verb's --help. */
#define TRAINER_EXIT_NOTE \
    "Exit status: 0 done, 2 usage, 3 I/O error, 4 damaged corpus or checkpoint, 5 internal,\n" \
    "130 stopped by SIGINT/SIGTERM (a second signal ends at once, temporaries removed)."

/* Parse a verb's argv (argv[0] = the verb) by its CliSpec into o, defaults first. Returns 1
** when the verb should run; 0 when it ends here with *status: --help or --version printed
** (0, or the status of a failed write), or a usage error (2, message and short usage
** printed). Operands are refused: no verb takes any. */
int opts_parse(TrainerOpts *o, const CliSpec *spec, int argc, char **argv, int *status);

/* The checkpoint --ckpt names: a directory means DIR/ckpt.bin; none given with --data DIR
** means DIR/model.ckpt. A malloc'd path, or NULL when neither is given. */
char *opts_ckpt_path(const TrainerOpts *o);
/* The same rule from the two option values (the export, import and logits verbs). */
char *ckpt_path_for(const char *ckpt, const char *data);

/* Open the corpus at dir: exit status 3 if it cannot be read at all, 4 if it is damaged.
** Returns 0 with *out set, or the exit status after a message. */
int opts_open_corpus(const char *dir, Corpus **out);

#endif
