// SPDX-License-Identifier: MIT
/*
** init.c: `cm-train --init CKPT`: a new run from a checkpoint's weights, with a fresh
** optimizer and schedule; the model's tokenizer checked against the corpus's (see init.h).
*/
#include "trainer/init.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"                /* defines: error, Buf, exit codes */
#include "trainer/eval.h"        /* defines: evaluate */
#include "trainer/interchange.h" /* defines: ix_sidecar_path, ix_tokenizer_fingerprint */

/*
** The shape options given that differ from the checkpoint's: nonzero refuses the run.
*/
static int init_shape_differs(const TrainerOpts *o, const GptConfig *c)
{
    unsigned g = o->given;
    return ((g & GIVEN_LAYERS) && o->cfg.L != c->L) || ((g & GIVEN_WIDTH) && o->cfg.C != c->C) ||
        ((g & GIVEN_HEADS) && o->cfg.NH != c->NH) || ((g & GIVEN_CONTEXT) && o->cfg.T != c->T);
}

/*
** Whether the sidecar CKPT.tokenizer.json (cm-train import) exists and is the tokenizer of
** fingerprint fp: then the re-encode command can name it.
*/
static int init_sidecar_ok(const char *side, uint64_t fp, int V)
{
    FILE *f = fopen(side, "rb");
    if (!f) return 0;
    Buf b = { 0 };
    char tmp[1 << 16];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) buf_add(&b, tmp, n);
    int ok = !ferror(f) && ix_tokenizer_fingerprint(b.buf ? b.buf : "", b.len, V) == fp;
    fclose(f);
    buf_free(&b);
    return ok;
}

/*
** The refusal of a corpus encoded with another tokenizer: both fingerprints, and how to
** re-encode the corpus with the model's tokenizer.json. Returns CM_EFORMAT.
*/
static int init_refuse_tokenizer(const TrainerOpts *o, const CkptInfo *info, uint64_t model_fp,
                                 uint32_t vocab, uint64_t tok_fp)
{
    const char *data = o->data ? o->data : "synthetic data";
    error("%s: encoded with another tokenizer than the model in %s: this data's tokenizer "
          "fingerprint %016llx (vocabulary %u), the model's %016llx (vocabulary %d)%s",
          data, o->init, (unsigned long long)tok_fp, vocab, (unsigned long long)model_fp,
          info->cfg.V,
          info->version < 2 && !info->tok_fp
              ? " (a version 1 checkpoint: its data fingerprint, which also covers the --where "
                "of its run; give the same --where)"
              : "");
    char *side = ix_sidecar_path(o->init);
    if (init_sidecar_ok(side, model_fp, info->cfg.V))
        fprintf(stderr,
                "cm-train: re-encode the corpus with the model's tokenizer:\n"
                "  cm-tokenize encode -t %s kept.jsonl | cm-shards pack -o corpus-model/\n"
                "  cm-train --init %s --data corpus-model/ ...\n",
                side, o->init);
    else
        fprintf(stderr,
                "cm-train: re-encode the corpus with the model's tokenizer (that of the "
                "corpus it was trained on):\n"
                "  cm-train export --ckpt %s --data TRAINED_CORPUS/ --format hf -o model-hf/\n"
                "  cm-tokenize encode -t model-hf/tokenizer.json kept.jsonl | "
                "cm-shards pack -o corpus-model/\n"
                "  cm-train --init %s --data corpus-model/ ...\n",
                o->init, o->init);
    free(side);
    return CM_EFORMAT;
}

/*
** See init.h.
*/
int init_load(TrainerOpts *o, uint32_t vocab, uint64_t tok_fp, uint64_t data_fp, Gpt *m)
{
    CkptInfo info;
    int r = ckpt_load(o->init, m, &info, 0);
    if (r) return r == -1 ? CM_EIO : CM_EFORMAT;
    const GptConfig *c = &info.cfg;
    int rc = CM_OK;
    /* v2 records the tokenizer's fingerprint; a v1 file only the data's, which is the
    ** tokenizer's for an import or a run without --where, else covers that --where too */
    uint64_t model_fp = info.tok_fp ? info.tok_fp : info.data_fp;
    int same = (uint32_t)c->V == vocab &&
        (model_fp == tok_fp || (!info.tok_fp && info.data_fp == data_fp));
    if (init_shape_differs(o, c)) {
        error("%s: the model shape given differs from the checkpoint's (L=%d C=%d heads=%d "
              "T=%d): --init takes the shape from the checkpoint; leave out --layers, --width, "
              "--heads and --context",
              o->init, c->L, c->C, c->NH, c->T);
        rc = CM_EUSAGE;
    } else if (!same) {
        rc = init_refuse_tokenizer(o, &info, model_fp, vocab, tok_fp);
    }
    if (rc != CM_OK) {
        gpt_free(m);
        return rc;
    }
    o->cfg = *c;
    if (!o->quiet)
        fprintf(stderr,
                "cm-train: weights from %s (L=%d C=%d heads=%d T=%d V=%d, trained %llu "
                "steps); fresh AdamW state and schedule\n",
                o->init, c->L, c->C, c->NH, c->T, c->V, (unsigned long long)info.step);
    return CM_OK;
}

/*
** See init.h.
*/
void init_evaluate(const TrainerOpts *o, Gpt *m, DataSource *valid, double bpt)
{
    if (o->quiet) return;
    uint64_t nt = 0;
    double vl = evaluate(m, valid, (int)o->batch, o->eval_batches, 0, &nt);
    fprintf(stderr, "cm-train: step 0 (--init %s): valid loss%s %.9g, perplexity %.6g", o->init,
            valid->examples ? " (response tokens)" : "", vl, exp(vl));
    if (bpt > 0) fprintf(stderr, ", bits per byte %.6g", vl / M_LN2 / bpt);
    fprintf(stderr, " (%llu tokens)\n", (unsigned long long)nt);
}
