// SPDX-License-Identifier: MIT
/*
** tk_train.c: `cm-tokenize train`: JSONL records -> tokenizer.json (tokenize/train.h does the
** learning). The file appears whole or not at all (lib/atomic.h: temporary beside it, fsync,
** rename, fsync of the directory). A first stop signal ends the counting after the current
** batch, or the merging at once, without writing the file (exit 130); a second one ends the
** process at once, the temporary removed.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic.h"
#include "io.h"
#include "tokenize/tk.h"
#include "tokenize/train.h"

enum {
    OPT_VOCAB_SIZE = 256,
    OPT_MIN_FREQUENCY,
    OPT_SPECIAL,
    OPT_THREADS,
    OPT_MAX_WORDS,
    OPT_ON_ERROR,
    OPT_MAX_LINE
};

static const CliOpt train_opts[] = {
    { "vocab-size", 0, "N", NULL,
      "total ids (specials and 256 byte tokens included), 257..2^24\n(required)", OPT_VOCAB_SIZE },
    { "output", 'o', "FILE", NULL,
      "where to write the tokenizer.json (required; written\natomically; '-': stdout)", 'o' },
    { "min-frequency", 0, "F", "0", "do not merge pairs seen fewer than F times",
      OPT_MIN_FREQUENCY },
    { "special", 0, "LIST", "<|endoftext|>", "comma-separated special tokens, ids 0..; '' for none",
      OPT_SPECIAL },
    { "threads", 0, "N", "CPUs, at most 8", "counting threads, 1..64", OPT_THREADS },
    { "max-words", 0, "N", NULL,
      "cap on distinct words kept (default 0: none), checked after\neach 8 MiB batch: above it the rarest are dropped down to\nN/2 (a word dropped and seen again restarts from 0:\napproximate counts)",
      OPT_MAX_WORDS },
    { "on-error", 0, "skip|fail", "fail", "malformed record: skip it, or stop; exit 1 either way",
      OPT_ON_ERROR },
    { "max-line", 0, "SIZE", "256M", "longest accepted JSONL line", OPT_MAX_LINE },
    { 0 }
};

static const CliSpec train_spec = {
    TK_PROG,
    "train",
    "--vocab-size N -o tok.json [options] [FILE...]",
    "Learn byte-level BPE merges from the `content` field of JSONL records (FILE '-' or none:\n"
    "stdin) with Hugging Face's BpeTrainer algorithm (ties go to the pair with the smaller ids)\n"
    "and write a tokenizer.json that Hugging Face `tokenizers` loads as is. The alphabet always\n"
    "holds all 256 bytes, so every input encodes losslessly.",
    "Memory: the distinct words with their counts (about 70 bytes + the word each; at most\n"
    "--max-words of them plus one batch's new words), one batch of input (8 MiB), then for the\n"
    "merges about 20 bytes per symbol of the distinct words. Output does not depend on --threads.",
    train_opts,
    NULL
};

typedef struct {
    long vocab_size;        /* --vocab-size */
    const char *output;     /* -o */
    uint64_t min_frequency; /* --min-frequency */
    const char *special;    /* --special */
    int threads;            /* --threads */
    uint64_t max_words;     /* --max-words */
    int progress;           /* -1 auto, 0, 1 */
    int quiet;              /* -q: no summary line */
    TkInputOpts in;         /* the inputs, --on-error, --max-line */
} TrainOpts;

/*
** Write the tokenizer.json: to stdout for "-", in place into a device or FIFO, else atomically
** (lib/atomic.h). Returns the status.
*/
static int write_tokenizer(const char *path, const Buf *json)
{
    if (strcmp(path, "-") != 0) atomic_sweep(path);
    return atomic_write_output(path, json->buf, json->len) == 0 ? CM_OK : CM_EIO;
}

/*
** Count the words of every record, batch by batch, until the input ends or a stop signal.
** *shown: whether progress was shown. Returns CM_OK or CM_EINTERNAL.
*/
static int count_words(const TrainOpts *o, BpeTrainer *t, TkInput *in, int *shown)
{
    RecordBatch b = { 0 };
    Progress pr;
    int rc = CM_OK;
    progress_init(&pr, o->progress);
    double t0 = now_sec();
    while (!cm_stopping() && tk_input_batch(in, &b, 0) > 0) {
        const char **docs = xmalloc(b.n * sizeof *docs);
        for (size_t i = 0; i < b.n; i++) docs[i] = b.text.buf + b.toff[i];
        int r = bpe_trainer_feed(t, docs, b.tlen, b.n);
        free(docs);
        if (r) {
            rc = CM_EINTERNAL;
            break;
        }
        if (pr.on) {
            double dt = now_sec() - t0;
            progress_update(&pr, "counting words: %llu records, %.1f MB, %.1f MB/s",
                            (unsigned long long)in->records, in->bytes / 1e6,
                            dt > 0 ? in->bytes / 1e6 / dt : 0.0);
        }
    }
    progress_end(&pr);
    tk_batch_free(&b);
    *shown = pr.on;
    return rc;
}

/*
** Count, merge, write. Returns the status.
*/
static int run_training(const TrainOpts *o, BpeTrainer *t, TkInput *in)
{
    Buf json = { 0 };
    int shown;
    int rc = count_words(o, t, in, &shown);
    tk_input_close(in);
    if (rc == CM_OK && cm_stopping()) {
        error("interrupted while counting words: %s not written", o->output);
        rc = CM_EINTR;
    }
    if (rc == CM_OK) {
        int fr = bpe_trainer_finish(t, &json);
        if (fr == -2) {
            error("interrupted while merging: %s not written", o->output);
            rc = CM_EINTR;
        } else if (fr != 0) {
            rc = CM_EINTERNAL;
        }
    }
    if (rc == CM_OK) rc = write_tokenizer(o->output, &json);
    buf_free(&json);
    if (rc != CM_OK) return rc;
    uint64_t nwords, pruned, merges;
    bpe_trainer_stats(t, &nwords, &pruned, &merges);
    if (shown && !o->quiet) /* the summary goes with the progress line */
        fprintf(stderr, "%s: %llu records, %llu distinct words (%llu pruned), %llu merges -> %s\n",
                TK_PROG, (unsigned long long)in->records, (unsigned long long)nwords,
                (unsigned long long)pruned, (unsigned long long)merges, o->output);
    return in->status;
}

/*
** train: JSONL records -> tokenizer.json. Returns the exit status.
*/
static int cmd_train(const TrainOpts *o)
{
    int rc, nsp = 0;
    char **sp = o->special && *o->special ? strv_split(o->special, ',', &nsp) : NULL;
    if ((uint64_t)o->vocab_size < 256u + (uint64_t)nsp) {
        rc = cli_spec_usage_error(
            &train_spec, "--vocab-size %ld is smaller than the 256 byte tokens plus %d specials",
            o->vocab_size, nsp);
        strv_free(sp);
        return rc;
    }
    for (int i = 0; i < nsp; i++)
        if (utf8_valid_prefix((const unsigned char *)sp[i], strlen(sp[i])) != strlen(sp[i])) {
            rc = cli_spec_usage_error(&train_spec, "--special: token %d is not valid UTF-8", i + 1);
            strv_free(sp);
            return rc;
        }
    BpeTrainOpts to = { .vocab_size = (uint32_t)o->vocab_size,
                        .min_frequency = o->min_frequency,
                        .specials = sp,
                        .n_specials = nsp,
                        .threads = o->threads,
                        .max_words = o->max_words,
                        .stop = &cm_stop_signal };
    BpeTrainer *t = bpe_trainer_new(&to);
    TkInput in;
    tk_input_init(&in, &o->in);
    rc = run_training(o, t, &in);
    bpe_trainer_free(t);
    strv_free(sp);
    return rc;
}

/*
** One option of the table (id k) into o. Returns CM_OK or CM_EUSAGE.
*/
static int train_option(TrainOpts *o, Cli *c, int k)
{
    static const char *const on_error[] = { "fail", "skip", NULL };
    long n;
    uint64_t u;
    int rc = CM_OK;
    switch (k) {
    case OPT_VOCAB_SIZE: rc = cli_long(c, 1, 1L << 24, &o->vocab_size); break;
    case 'o': o->output = c->arg; break;
    case OPT_MIN_FREQUENCY:
        if ((rc = cli_long(c, 0, 1L << 62, &n)) == CM_OK) o->min_frequency = (uint64_t)n;
        break;
    case OPT_SPECIAL: o->special = c->arg; break;
    case OPT_THREADS: rc = cli_int(c, 1, TK_MAX_THREADS, &o->threads); break;
    case OPT_MAX_WORDS: rc = cli_size(c, 0, UINT64_MAX, &o->max_words); break;
    case OPT_ON_ERROR: rc = cli_choice(c, on_error, &o->in.skip_bad); break;
    case OPT_MAX_LINE:
        if ((rc = cli_size(c, 16, (uint64_t)4 << 30, &u)) == CM_OK) o->in.max_line = (size_t)u;
        break;
    }
    return rc;
}

/*
** Parse the command line into o. Returns -1 to go on, or the exit status to end with.
*/
static int train_parse(TrainOpts *o, int argc, char **argv)
{
    Cli c;
    int k, rc = CM_OK;
    memset(o, 0, sizeof *o);
    o->threads = tk_default_threads();
    o->in.max_line = TK_MAX_LINE;
    o->special = "<|endoftext|>";
    cli_init(&c, &train_spec, argc, argv);
    while (rc == CM_OK && (k = cli_next(&c)) > 0) rc = train_option(o, &c, k);
    if (rc == CM_OK && k == CLI_STOP)
        rc = c.status;
    else if (rc == CM_OK) {
        o->in.files = argv + c.optind;
        o->in.nfiles = argc - c.optind;
        o->progress = tk_progress_mode(&c);
        o->quiet = c.quiet;
        if (!o->vocab_size)
            rc = cli_usage_error(&c, "--vocab-size is required");
        else if (!o->output)
            rc = cli_usage_error(&c, "-o tok.json is required");
        else
            rc = -1;
    }
    cli_free(&c);
    return rc;
}

int tk_train_main(int argc, char **argv)
{
    TrainOpts o;
    int rc = train_parse(&o, argc, argv);
    if (rc >= 0) return rc;
    atomic_signals_init();
    return cmd_train(&o);
}
