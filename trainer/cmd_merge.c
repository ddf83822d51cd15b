// SPDX-License-Identifier: MIT
/*
** cmd_merge.c: `cm-train merge`: a LoRA checkpoint's adapters folded into its weights,
** W' = W + (alpha / r) B A for every adapted layer (lora_merge), written as a plain checkpoint
** (no adapters, no optimizer state; the header's step, seed, fingerprints and schedule kept)
** that exports to Hugging Face and GGUF like any other. A tokenizer sidecar CKPT.tokenizer.json
** (cm-train import) is copied beside the output.
*/
#include "trainer/interchange.h"
#include "trainer/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"         /* defines: error, read_file, exit statuses */
#include "cli.h"          /* defines: CliSpec, cli_* */
#include "atomic.h"       /* defines: atomic_write_file */
#include "trainer/lora.h" /* defines: lora_merge, lora_targets_str */

enum { OPT_CKPT = 1, OPT_DATA, OPT_OUT };

static const CliOpt merge_opts[] = {
    { "ckpt", 0, "FILE", "DATA/model.ckpt", "the LoRA checkpoint (or the operand)", OPT_CKPT },
    { "data", 0, "DIR", NULL, "its corpus (only to find DATA/model.ckpt)", OPT_DATA },
    { "output", 'o', "FILE", NULL, "the plain checkpoint to write", OPT_OUT },
    { 0 }
};

static const CliSpec merge_spec = {
    "cm-train",
    "merge",
    "-o FILE [--ckpt] CKPT",
    "Fold the LoRA adapters of a checkpoint trained with --lora-rank into its weights,\n"
    "W' = W + (alpha/r) B A, and write a plain checkpoint: eval, complete, --init and\n"
    "export --format hf|gguf take it like any other. Its logits are the LoRA checkpoint's\n"
    "up to fp32 rounding.",
    "Memory: the model.\n"
    "Exit status: 0 done, 2 usage (or not a LoRA checkpoint), 3 cannot read or write, 4 bad\n"
    "checkpoint.",
    merge_opts,
    NULL
};

/* Copy the tokenizer sidecar of `from` beside `to`, if there is one. 0 or CM_EIO. */
static int merge_copy_sidecar(const char *from, const char *to)
{
    char *src = ix_sidecar_path(from), *dst = ix_sidecar_path(to);
    int rc = 0;
    FILE *f = fopen(src, "rb");
    if (f) {
        Buf b = { 0 };
        char tmp[1 << 16];
        size_t n;
        while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) buf_add(&b, tmp, n);
        if (ferror(f))
            rc = (error("cannot read '%s': %s", src, strerror(errno)), CM_EIO);
        else if (atomic_write_file(dst, b.buf ? b.buf : "", b.len) != 0)
            rc = CM_EIO;
        fclose(f);
        buf_free(&b);
    }
    free(src);
    free(dst);
    return rc;
}

/* Parse the command line into *ckpt (malloc'd) and *out; 0, -1 (help shown) or a status. */
static int merge_parse(int argc, char **argv, char **ckpt, const char **out, int *quiet)
{
    Cli c;
    int k = 0, rc = CM_OK;
    const char *ck = NULL, *data = NULL;
    *out = NULL;
    cli_init(&c, &merge_spec, argc, argv);
    while (rc == CM_OK && (k = cli_next(&c)) > 0) {
        switch (k) {
        case OPT_CKPT: ck = c.arg; break;
        case OPT_DATA: data = c.arg; break;
        case OPT_OUT: *out = c.arg; break;
        }
    }
    if (rc == CM_OK && k == CLI_STOP) rc = c.status == CM_OK ? -1 : c.status;
    if (rc == CM_OK && c.optind == argc - 1 && !ck) ck = argv[c.optind++];
    if (rc == CM_OK && c.optind < argc)
        rc = cli_usage_error(&c, "unexpected operand '%s'", argv[c.optind]);
    if (rc == CM_OK && !ck && !data) rc = cli_usage_error(&c, "the LoRA checkpoint is needed");
    if (rc == CM_OK && !*out) rc = cli_usage_error(&c, "-o FILE is needed");
    *quiet = c.quiet;
    cli_free(&c);
    *ckpt = rc == CM_OK ? ckpt_path_for(ck, data) : NULL;
    if (rc == CM_OK && strcmp(*ckpt, *out) == 0)
        rc = cli_spec_usage_error(&merge_spec,
                                  "-o %s: the input itself (its adapters would be "
                                  "lost): write the merged model elsewhere",
                                  *out);
    return rc;
}

int cmd_merge(int argc, char **argv)
{
    char *ckpt = NULL;
    const char *out;
    int quiet, rc = merge_parse(argc, argv, &ckpt, &out, &quiet);
    if (rc) {
        free(ckpt);
        return rc < 0 ? CM_OK : rc;
    }
    Gpt m;
    CkptInfo info;
    int r = ckpt_load(ckpt, &m, &info, 0);
    if (r) {
        free(ckpt);
        return r == -1 ? CM_EIO : CM_EFORMAT;
    }
    if (!m.lora) {
        rc = (error("%s: not a LoRA checkpoint: no adapters to merge", ckpt), CM_EUSAGE);
    } else {
        char t[128];
        int rank = m.lora->rank;
        double alpha = m.lora->alpha;
        lora_targets_str(m.lora->targets, t, sizeof t);
        lora_merge(&m);
        info.has_opt = 0;
        rc = ckpt_save(out, &m, &info) == 0 ? merge_copy_sidecar(ckpt, out) : CM_EIO;
        if (rc == 0 && !quiet)
            fprintf(stderr,
                    "cm-train merge: %s: adapters r=%d alpha=%g on %s folded into the weights "
                    "(W += %g B A), step %llu: a plain checkpoint\n",
                    out, rank, alpha, t, alpha / rank, (unsigned long long)info.step);
    }
    gpt_free(&m);
    free(ckpt);
    return rc;
}
