// SPDX-License-Identifier: MIT
/*
** verbs.h: the verbs of cm-train, one file each (train.c, eval.c, complete.c, plot.c); each
** parses its own options (its CliSpec, options.h) and returns the exit status. cm-train.c
** lists them in its verb table. argv[0] is the verb's name.
*/
#ifndef CM_TRAIN_VERBS_H
#define CM_TRAIN_VERBS_H

int verb_train(int argc, char **argv);    /* train.c */
int verb_eval(int argc, char **argv);     /* eval.c */
int verb_complete(int argc, char **argv); /* complete.c */
int verb_plot(int argc, char **argv);     /* plot.c */
int cmd_export(int argc, char **argv);    /* cmd_export.c: HF, GGUF */
int cmd_import(int argc, char **argv);    /* cmd_import.c: a Hugging Face GPT-2 */
int cmd_logits(int argc, char **argv);    /* cmd_logits.c: raw logits, for checking */
int cmd_merge(int argc, char **argv);     /* cmd_merge.c: LoRA adapters into the weights */

#endif
