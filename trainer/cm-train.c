// SPDX-License-Identifier: MIT
/*
** cm-train: train a GPT-2 code-completion model on a corpus packed by cm-shards, evaluate it,
** complete code with it, and plot its learning curves.
**
**   cm-train [train] --data DIR | --synthetic V  [model, optimisation, checkpoint options]
**   cm-train eval --ckpt FILE (--data DIR [--split S] | --synthetic V)
**   cm-train complete --ckpt FILE --data DIR --prompt TEXT [sampling options]
**   cm-train plot --log FILE -o OUT.svg
**   cm-train export --ckpt FILE --format hf|gguf|peft -o OUT cm-train import --from DIR -o CKPT
**   cm-train merge -o OUT CKPT (a LoRA checkpoint's adapters folded into its weights)
**
** This file is the program: the BLAS environment, the signal policy and the verb table. Each
** verb is a file of its own (verbs.h) with its option table (options.h): train.c (the training
** loop, resume.c its reconciliation of checkpoint and log), eval.c, complete.c, plot.c,
** cmd_export.c, cmd_import.c, cmd_logits.c (interchange.[ch] and the format files). The
** model and kernels are in model.[ch] and kernels.[ch]; data.[ch] draws windows; ckpt.[ch]
** writes and reads checkpoints; blasenv.[ch] picks OpenBLAS's kernels.
*/
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"            /* defines: cm_init, error, exit codes */
#include "cli.h"             /* defines: CliVerb, cli_dispatch */
#include "atomic.h"          /* defines: atomic_signals_init */
#include "trainer/blasenv.h" /* defines: blasenv_setup */
#include "trainer/verbs.h"   /* defines: verb_train, verb_eval, verb_complete, verb_plot */

static const CliVerb verbs[] = {
    { "train", "train or fine-tune a GPT-2 model, LoRA too (the default verb)", verb_train },
    { "eval", "loss, perplexity, bits per byte (or response loss) on a split", verb_eval },
    { "complete", "continue a prompt, or answer an instruction (--template), with a model",
      verb_complete },
    { "plot", "SVG chart of the train and valid loss of a --log file", verb_plot },
    { "export", "write a checkpoint as a Hugging Face model, a GGUF file or a PEFT adapter",
      cmd_export },
    { "import", "read a Hugging Face GPT-2 model into a checkpoint", cmd_import },
    { "logits", "print a checkpoint's raw logits for a prompt (checks against other tools)",
      cmd_logits },
    { "merge", "fold a LoRA checkpoint's adapters into its weights (a plain checkpoint)",
      cmd_merge },
    { NULL, NULL, NULL }
};

static const char about[] =
    "cm-train: train a GPT-2 code-completion model on a corpus packed by cm-shards, evaluate\n"
    "it, complete code with it, plot its learning curves.\n"
    "Memory is bounded by the model and the batch, not by the corpus (shards are mmapped);\n"
    "'cm-train VERB --help' states each verb's bound.\n"
    "Exit status: 0 done, 2 usage, 3 I/O error, 4 damaged corpus or checkpoint, 5 internal,\n"
    "130 stopped by SIGINT/SIGTERM (checkpoint saved when --ckpt is given).";

int main(int argc, char **argv)
{
    blasenv_setup(argv); /* first: may execute the program again with OpenBLAS's settings */
    cm_init("cm-train");
    atomic_signals_init();
    int rc = cli_dispatch("cm-train", about, verbs, "train", argc, argv);
    if (fflush(stdout) != 0 && rc == CM_OK) {
        error("cannot write to stdout: %s", strerror(errno));
        rc = CM_EIO;
    }
    return rc;
}
