// SPDX-License-Identifier: MIT
/*
** resume.c: `cm-train --resume` reconciliation: the checkpoint against the options and the
** data, and the log cut back to the checkpoint's step (see resume.h).
*/
#include "trainer/resume.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"          /* defines: error, warn, Buf, exit codes */
#include "hash.h"          /* defines: hash64_seed */
#include "atomic.h"        /* defines: atomic_write_file, atomic_sweep */
#include "shards/corpus.h" /* defines: corpus_tokenizer_json */

/*
** See resume.h.
*/
uint64_t resume_fingerprint(Corpus *c, uint32_t vocab, const char *where)
{
    if (!c) return hash64_seed("synthetic", 9, vocab);
    size_t n = 0;
    const char *json = corpus_tokenizer_json(c, &n);
    uint64_t h = hash64_seed(json ? json : "", json ? n : 0, vocab);
    return where ? hash64_seed(where, strlen(where), h) : h;
}

/*
** The options given that differ from the checkpoint's: nonzero refuses the resume.
*/
static int resume_differs(const TrainerOpts *o, const CkptInfo *info)
{
    const GptConfig *c = &info->cfg;
    unsigned g = o->given;
    return ((g & GIVEN_LAYERS) && o->cfg.L != c->L) || ((g & GIVEN_WIDTH) && o->cfg.C != c->C) ||
        ((g & GIVEN_HEADS) && o->cfg.NH != c->NH) || ((g & GIVEN_CONTEXT) && o->cfg.T != c->T) ||
        ((g & GIVEN_BATCH) && (uint32_t)o->batch != info->batch) ||
        ((g & GIVEN_ACCUM) && (uint32_t)o->accum != info->accum) ||
        ((g & GIVEN_SEED) && o->seed != info->seed);
}

/*
** Take the checkpoint's shape, batch, accumulation and seed, and its hyperparameters where
** the command line gave none.
*/
static void resume_adopt(TrainerOpts *o, const CkptInfo *info)
{
    o->cfg = info->cfg;
    o->batch = info->batch;
    o->accum = info->accum;
    o->seed = info->seed;
    if (!(o->given & GIVEN_STEPS)) o->steps = info->steps;
    if (!(o->given & GIVEN_LR)) o->lr = info->lr;
    if (!(o->given & GIVEN_MIN_LR)) o->min_lr = info->min_lr;
    if (!(o->given & GIVEN_WARMUP)) o->warmup = info->warmup;
    if (!(o->given & GIVEN_WEIGHT_DECAY)) o->weight_decay = info->wd;
    if (!(o->given & GIVEN_GRAD_CLIP)) o->grad_clip = info->clip;
}

/*
** See resume.h.
*/
int resume_load(TrainerOpts *o, const char *path, uint32_t vocab, uint64_t fp, Gpt *m,
                CkptInfo *info, int *loaded)
{
    *loaded = 0;
    if (access(path, F_OK) != 0) {
        if (!o->quiet) warn("no checkpoint at '%s' yet: starting from step 0", path);
        return CM_OK;
    }
    int r = ckpt_load(path, m, info, 1);
    if (r) return r == -1 ? CM_EIO : CM_EFORMAT;
    *loaded = 1;
    if (!info->has_opt) {
        error("%s: saved without optimizer state: cannot resume (train anew from it)", path);
        return CM_EFORMAT;
    }
    const GptConfig *c = &info->cfg;
    if (resume_differs(o, info)) {
        error("%s: the model shape, batch, accumulation or seed given differ from the "
              "checkpoint's (L=%d C=%d heads=%d T=%d batch=%u accum=%u seed=%llu)",
              path, c->L, c->C, c->NH, c->T, info->batch, info->accum,
              (unsigned long long)info->seed);
        return CM_EUSAGE;
    }
    if ((uint32_t)c->V != vocab || info->data_fp != fp) {
        error("%s: trained on other data (vocabulary %d, fingerprint %016llx; this data: "
              "vocabulary %u, fingerprint %016llx)",
              path, c->V, (unsigned long long)info->data_fp, vocab, (unsigned long long)fp);
        return CM_EFORMAT;
    }
    resume_adopt(o, info);
    return CM_OK;
}

/*
** See resume.h.
*/
int log_truncate(const char *path, uint64_t step)
{
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : error("cannot read log '%s': %s", path, strerror(errno));
    Buf keep = { 0 };
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        unsigned long long s;
        if (sscanf(line, "{\"step\":%llu", &s) == 1 && s > step) continue;
        if (line[n - 1] != '\n') continue; /* a half-written last line */
        buf_add(&keep, line, (size_t)n);
    }
    free(line);
    fclose(f);
    atomic_sweep(path); /* a rewrite killed before its rename */
    int rc = atomic_write_file(path, keep.len ? keep.buf : "", keep.len);
    buf_free(&keep);
    return rc;
}
