// SPDX-License-Identifier: MIT
/*
** ckpt.h: cm-train checkpoints (format v3, docs/FORMATS.md "Checkpoint"; v1 and v2 are read).
**
** A 256-byte little-endian header (magic, version, model shape, step, seed, data position and
** fingerprint, hyperparameters, v2: the tokenizer's fingerprint alone, v3: the LoRA rank,
** targets, alpha and adapter count, payload checksum, header checksum), then the parameters,
** then (when saved for resuming) the AdamW moments m and v, all fp32. v3 with LoRA (rank > 0):
** the base's moments are absent (it is frozen); after the base parameters come the adapters
** (lora.h's block: per target A (L, r, in) then B (L, out, r)), then, when saved for resuming,
** their moments m and v. Written through lib/atomic.h's
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
#define CKPT_VERSION 3 /* written; versions 1, 2 and 3 are read */
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
    /* v3: LoRA adapters (lora.h), all zero without them (and in v1, v2 files) */
    uint32_t lora_rank;    /* r (0: no adapters) */
    uint32_t lora_targets; /* bit mask of LORA_* targets */
    double lora_alpha;     /* lora_alpha */
    uint64_t lora_n;       /* floats of the adapters */
} CkptInfo;

/* Write m (and its AdamW moments if info->has_opt; with m->lora its adapters, and their
** moments, the base's parameters alone) atomically to path. 0, or -1 after a
** message (the target is left as it was, the temporary removed). */
int ckpt_save(const char *path, const Gpt *m, const CkptInfo *info);
/* Read the header of path into info. 0; -1 on I/O error (errno kept, message printed);
** -2 if the file is not a valid checkpoint (message printed). */
int ckpt_read_info(const char *path, CkptInfo *info);
/* Load a checkpoint: header into info, parameters into a new model m (gpt_init'd here), the
** adapters into m->lora when it has them, and the moments too when with_opt and present
** (gpt_alloc_train'd: the adapters' alone for a LoRA checkpoint). Verifies the checksums.
** Returns 0, -1 (I/O) or -2 (damaged / not a checkpoint), with a message. */
int ckpt_load(const char *path, Gpt *m, CkptInfo *info, int with_opt);

#endif
