// SPDX-License-Identifier: MIT
/*
** eval.c: the eval verb (loss, perplexity and bits per byte of a checkpoint on a split or on
** synthetic ids) and the evaluation loop it shares with training (see eval.h).
*/
#include "trainer/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"            /* defines: error, xmalloc, exit codes */
#include "atomic.h"          /* defines: cm_stopping */
#include "shards/corpus.h"   /* defines: corpus_vocab_size, corpus_bytes_per_token */
#include "trainer/ckpt.h"    /* defines: ckpt_load */
#include "trainer/kernels.h" /* defines: kernels_set_threads */
#include "trainer/options.h" /* defines: TrainerOpts, opts_parse, TOPT_* */
#include "trainer/verbs.h"   /* defines: verb_eval */

static const CliOpt eval_opts[] = {
    { "ckpt", 0, "FILE", "DATA/model.ckpt", "the checkpoint (a directory: DIR/ckpt.bin)",
      TOPT_CKPT },
    { "data", 0, "DIR", NULL, "corpus directory written by cm-shards", TOPT_DATA },
    { "split", 0, "S", "valid", "the split to evaluate", TOPT_SPLIT },
    { "where", 0, "SQL", NULL,
      "only the documents matching an SQL condition on the\n"
      "documents table",
      TOPT_WHERE },
    { "synthetic", 0, "V", NULL,
      "random ids in [0, V) instead of a corpus (V: the\n"
      "checkpoint's vocabulary)",
      TOPT_SYNTHETIC },
    { "batch", 0, "B", "the checkpoint's", "windows of T+1 tokens per batch", TOPT_BATCH },
    { "eval-batches", 0, "N", "the whole split; 20 with --synthetic", "batches to evaluate",
      TOPT_EVAL_BATCHES },
    TRAINER_ROW_THREADS,
    TRAINER_ROW_BLAS_CORE,
    { 0 }
};

static const CliSpec eval_spec = {
    "cm-train",
    "eval",
    "--ckpt FILE (--data DIR [--split S] | --synthetic V) [options]",
    "Loss, perplexity and bits per byte of a checkpoint's model on a split of a corpus\n"
    "(or on synthetic ids): one JSON object on stdout. On an instruction corpus (prompt\n"
    "lengths in its index) the loss is over the response tokens and end-of-text of each\n"
    "example, one example per window (\"scored\":\"response\", \"tokens\": those scored;\n"
    "no bits per byte).",
    "Memory is bounded by the model and the batch, not by the corpus (shards are mmapped):\n"
    "4 bytes per parameter (8 while the checkpoint's checksum is verified) + about\n"
    "4*B*T*(L*(16C + H*T) + V + 12C) bytes of activations.\n" TRAINER_EXIT_NOTE,
    eval_opts,
    NULL
};

/*
** See eval.h.
*/
double evaluate(Gpt *m, DataSource *d, int B, long max_batches, int stop_on_signal, uint64_t *ntok)
{
    int T = m->cfg.T;
    uint32_t *win = xmalloc((size_t)B * (T + 1) * sizeof(uint32_t));
    uint32_t *in = xmalloc((size_t)B * T * sizeof(uint32_t));
    uint32_t *tg = xmalloc((size_t)B * T * sizeof(uint32_t));
    float *mask = d->examples ? xmalloc((size_t)B * T * sizeof(float)) : NULL;
    double sum = 0;
    uint64_t n = 0;
    data_seek(d, 0);
    for (long k = 0; k < max_batches; k++) {
        if (stop_on_signal && cm_stopping()) break;
        int got = mask ? data_batch_mask(d, win, B, T, in, tg, mask)
                       : data_batch(d, win, B, T, in, tg);
        if (got == 0) break;
        if (mask) { /* instruction examples: the response targets and end-of-text only */
            double sc = 0;
            sum += gpt_forward_mask(m, in, tg, NULL, mask, got, 0.0f, &sc);
            n += (uint64_t)sc;
        } else {
            double loss = gpt_forward(m, in, tg, NULL, got, 0.0f);
            sum += loss * got * T;
            n += (uint64_t)got * T;
        }
        if (got < B) break;
    }
    free(win);
    free(in);
    free(tg);
    free(mask);
    *ntok = n;
    return n ? sum / n : NAN;
}

/*
** The windows to evaluate: the split of the corpus (*bpt: its bytes per token), or synthetic
** ids drawn from the checkpoint's seed. 0, or the exit status after a message.
*/
static int eval_source(const TrainerOpts *o, const Gpt *m, const CkptInfo *info, int B,
                       Corpus **corpus, DataSource *d, double *bpt)
{
    char err[1024];
    int rc, T = m->cfg.T;
    if (!o->data) {
        if (o->synthetic != m->cfg.V)
            return cli_spec_usage_error(&eval_spec,
                                        "--synthetic V must match the checkpoint's vocabulary");
        data_synthetic(d, (uint32_t)m->cfg.V, info->seed ^ 0x76616c6964ull, (size_t)T + 1,
                       (uint64_t)o->eval_batches * B);
        return CM_OK;
    }
    if ((rc = opts_open_corpus(o->data, corpus)) != 0) return rc;
    if ((int)corpus_vocab_size(*corpus) != m->cfg.V) {
        error("%s: vocabulary %u, the checkpoint's model has %d", o->data,
              corpus_vocab_size(*corpus), m->cfg.V);
        return CM_EFORMAT;
    }
    int st = corpus_has_prompts(*corpus)
        ? data_examples(d, *corpus, o->split, o->where, 1, 0, (size_t)T + 1, NULL, err, sizeof err)
        : data_corpus(d, *corpus, o->split, o->where, 1, 0, (size_t)T + 1, err, sizeof err);
    if (st) {
        error("%s: %s", o->data, err);
        return st; /* a bad --where is a usage error here as in training */
    }
    *bpt = corpus_bytes_per_token(*corpus, o->split);
    return CM_OK;
}

/*
** Evaluate the loaded model m and print the JSON result. Returns the exit status.
*/
static int eval_run(const TrainerOpts *o, Gpt *m, const CkptInfo *info)
{
    Corpus *corpus = NULL;
    DataSource d = { 0 };
    double bpt = 0;
    int B = (o->given & GIVEN_BATCH) || !info->batch ? (int)o->batch : (int)info->batch;
    int rc = eval_source(o, m, info, B, &corpus, &d, &bpt);
    if (rc == CM_OK) {
        uint64_t nt = 0;
        long maxb = o->data && !o->eval_batches_given ? 0x7fffffffL : o->eval_batches;
        double loss = evaluate(m, &d, B, maxb, 1, &nt);
        if (cm_stopping()) {
            error("eval: interrupted, nothing printed");
            rc = CM_EINTR;
        } else {
            printf("{\"split\":\"%s\",\"step\":%llu,\"loss\":%.9g,\"perplexity\":%.6g,"
                   "\"tokens\":%llu",
                   o->data ? o->split : "synthetic", (unsigned long long)info->step, loss,
                   exp(loss), (unsigned long long)nt);
            if (d.examples) /* the loss of the response tokens and end-of-text only */
                printf(",\"scored\":\"response\"");
            else if (bpt > 0)
                printf(",\"bits_per_byte\":%.6g", loss / M_LN2 / bpt);
            printf("}\n");
            if (fflush(stdout) != 0) rc = CM_EIO;
        }
    }
    data_free(&d);
    if (corpus) corpus_close(corpus);
    return rc;
}

/*
** The eval verb.
*/
int verb_eval(int argc, char **argv)
{
    TrainerOpts o;
    int rc;
    if (!opts_parse(&o, &eval_spec, argc, argv, &rc)) return rc;
    char *ck = opts_ckpt_path(&o);
    if (!ck)
        return cli_spec_usage_error(&eval_spec,
                                    "eval needs --ckpt FILE (or --data DIR with DIR/model.ckpt)");
    if (!o.data == !o.synthetic) {
        free(ck);
        return cli_spec_usage_error(&eval_spec, "give one of --data DIR or --synthetic V");
    }
    kernels_set_threads((int)o.threads);
    Gpt m;
    CkptInfo info;
    int r = ckpt_load(ck, &m, &info, 0);
    free(ck);
    if (r) return r == -1 ? CM_EIO : CM_EFORMAT;
    rc = eval_run(&o, &m, &info);
    gpt_free(&m);
    return rc;
}
