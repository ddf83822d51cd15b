// SPDX-License-Identifier: MIT
/*
** cmd_import.c: `cm-train import`: a transformers GPT-2 directory in, a cm-train checkpoint
** out (format v1, unchanged), with the model's tokenizer.json recorded beside it as
** CKPT.tokenizer.json and fingerprinted in the checkpoint's header.
*/
#include "trainer/interchange.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"   /* defines: error, exit statuses */
#include "cli.h"    /* defines: CliSpec, cli_* */
#include "atomic.h" /* defines: atomic_write_file */

enum { OPT_FROM = 1, OPT_OUT };

static const CliOpt import_opts[] = {
    { "from", 0, "DIR", NULL,
      "a transformers GPT-2 directory (config.json, model.safetensors\n"
      "or model.safetensors.index.json and its shards, tokenizer.json)",
      OPT_FROM },
    { "output", 'o', "FILE", NULL,
      "the checkpoint to write (its tokenizer goes to\n"
      "FILE.tokenizer.json)",
      OPT_OUT },
    { 0 }
};

static const CliSpec import_spec = {
    "cm-train",
    "import",
    "--from DIR -o FILE",
    "Read a GPT-2-architecture checkpoint as the Hugging Face Hub serves it (gpt2,\n"
    "distilgpt2, codeparrot-small, ...) into a cm-train checkpoint: any vocabulary size,\n"
    "names with or without 'transformer.', F32, F16 or BF16 tensors (stored as f32).\n"
    "cm-train ties the LM head to the token embedding: a separate lm_head.weight must equal\n"
    "transformer.wte.weight. Only safetensors files are read (never pickles).",
    "Memory: the model in f32; the files are mapped.\n"
    "The checkpoint is written with O_DIRECT by a writer thread where the file system\n"
    "allows it (CM_BUFFERED_WRITES=1: through the page cache), to FILE.tmp.PID, then\n"
    "fsync'd and renamed.\n"
    "Exit status: 0 done, 2 usage, 3 cannot read or write, 4 a file is damaged or not a\n"
    "GPT-2 cm-train can hold (the message names the file, the tensor and the offset).",
    import_opts,
    NULL
};

/* Write the checkpoint and its tokenizer sidecar (or remove a stale one). */
static int write_checkpoint(const char *path, const Gpt *m, const char *tok, size_t tok_len)
{
    CkptInfo info;
    memset(&info, 0, sizeof info);
    info.data_fp = ix_tokenizer_fingerprint(tok ? tok : "", tok ? tok_len : 0, m->cfg.V);
    info.tok_fp = info.data_fp;
    char *side = ix_sidecar_path(path);
    int rc = 0;
    if (tok) {
        if (atomic_write_file(side, tok, tok_len) != 0) rc = CM_EIO;
    } else if (unlink(side) != 0 && errno != ENOENT) {
        error("cannot remove '%s': %s", side, strerror(errno));
        rc = CM_EIO;
    }
    if (rc == 0 && ckpt_save(path, m, &info) != 0) rc = CM_EIO;
    free(side);
    return rc;
}

int cmd_import(int argc, char **argv)
{
    Cli c;
    int k = 0, rc = CM_OK;
    const char *from = NULL, *out = NULL;
    cli_init(&c, &import_spec, argc, argv);
    while (rc == CM_OK && (k = cli_next(&c)) > 0) {
        if (k == OPT_FROM) from = c.arg;
        if (k == OPT_OUT) out = c.arg;
    }
    if (rc == CM_OK && k == CLI_STOP) rc = c.status == CM_OK ? -1 : c.status;
    if (rc == CM_OK && c.optind < argc)
        rc = cli_usage_error(&c, "unexpected operand '%s'", argv[c.optind]);
    if (rc == CM_OK && !from) rc = cli_usage_error(&c, "--from DIR is needed");
    if (rc == CM_OK && !out) rc = cli_usage_error(&c, "-o FILE is needed");
    int quiet = c.quiet;
    cli_free(&c);
    if (rc) return rc < 0 ? CM_OK : rc;

    Gpt m;
    char *tok = NULL;
    size_t tok_len = 0;
    rc = hf_import(from, &m, &tok, &tok_len, quiet);
    if (rc) return rc;
    double t0 = now_sec();
    rc = write_checkpoint(out, &m, tok, tok_len);
    if (rc == 0 && !quiet) {
        char *side = ix_sidecar_path(out);
        fprintf(stderr, "cm-train import: wrote %s (%zu parameters) in %.2f s, %s%s\n", out,
                m.nparams, now_sec() - t0, tok ? "tokenizer in " : "no tokenizer", tok ? side : "");
        free(side);
    }
    free(tok);
    gpt_free(&m);
    return rc;
}
