// SPDX-License-Identifier: MIT
/*
** ckpt.h: cm-train checkpoints (format v2, docs/FORMATS.md "Checkpoint"; v1 is still read).
**
** A 256-byte little-endian header (magic, version, model shape, step, seed, data position and
** fingerprint, hyperparameters, v2: the tokenizer's fingerprint alone, payload checksum,
** header checksum), then the parameters, then
** (when saved for resuming) the AdamW moments m and v, all fp32. Written through lib/atomic.h's
** AtomicFile (a temporary file in the same directory, fsync'd, renamed over the target, the
** directory fsync'd): a crash leaves the old checkpoint or the new one, never a mix; a
** temporary left by kill -9 is removed by atomic_sweep(path) before the next run saves.
*/
#ifndef CM_TRAIN_CKPT_H
#define CM_TRAIN_CKPT_H

#include <stddef.h>
#include <stdint.h>
#include "trainer/model.h"

#define CKPT_MAGIC "CMTRAIN\x1a"
#define CKPT_VERSION 2 /* written; versions 1 and 2 are read */
#define CKPT_HEADER_BYTES 256

typedef struct {
    GptConfig cfg;     /* model shape */
    uint64_t step;     /* optimizer steps done */
    uint64_t seed;     /* run seed (init, data order) */
    uint64_t data_pos; /* training windows drawn so far */
    uint64_t data_fp;  /* fingerprint of the training data (tokenizer, split, selection) */
    uint64_t tok_fp;   /* v2: of the tokenizer alone, hash64_seed(tokenizer.json, V) (0:
                           ** unknown, as in every v1 file) */
    uint32_t version;  /* read: the file's format version */
    uint64_t nparams;  /* floats per block */
    int has_opt;       /* AdamW moments follow the parameters */
    double lr, min_lr; /* peak and final learning rate */
    double wd, clip;   /* weight decay, gradient clipping norm */
    uint32_t warmup;   /* warmup steps */
    uint32_t steps;    /* planned total steps */
    uint32_t batch;    /* windows per micro-batch */
    uint32_t accum;    /* micro-batches per step */
} CkptInfo;

/* Write m (and its AdamW moments if info->has_opt) atomically to path. 0, or -1 after a
** message (the target is left as it was, the temporary removed). */
int ckpt_save(const char *path, const Gpt *m, const CkptInfo *info);
/* Read the header of path into info. 0; -1 on I/O error (errno kept, message printed);
** -2 if the file is not a valid checkpoint (message printed). */
int ckpt_read_info(const char *path, CkptInfo *info);
/* Load a checkpoint: header into info, parameters into a new model m (gpt_init'd here), and
** the moments too when with_opt and present (gpt_alloc_train'd). Verifies the checksums.
** Returns 0, -1 (I/O) or -2 (damaged / not a checkpoint), with a message. */
int ckpt_load(const char *path, Gpt *m, CkptInfo *info, int with_opt);

#endif
