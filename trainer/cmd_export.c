// SPDX-License-Identifier: MIT
/*
** cmd_export.c: `cm-train export`: a checkpoint out to Hugging Face transformers (a directory)
** or llama.cpp (one GGUF file), with the tokenizer it was trained with.
*/
#include "trainer/interchange.h"
#include "trainer/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h" /* defines: error, exit statuses */
#include "cli.h"  /* defines: CliSpec, cli_* */

enum {
    OPT_CKPT = 1,
    OPT_FORMAT,
    OPT_OUT,
    OPT_DTYPE,
    OPT_DATA,
    OPT_TOK,
    OPT_NOTOK,
    OPT_SKIPFP,
    OPT_BASE
};

static const CliOpt export_opts[] = {
    { "ckpt", 0, "FILE", "DATA/model.ckpt", "the checkpoint to export", OPT_CKPT },
    { "format", 0, "hf|gguf|peft", NULL,
      "hf: a transformers GPT-2 directory (model.safetensors,\n"
      "config.json, tokenizer files); gguf: one llama.cpp file;\n"
      "peft: a LoRA checkpoint's adapters as a PEFT adapter directory\n"
      "(adapter_config.json, adapter_model.safetensors)",
      OPT_FORMAT },
    { "output", 'o', "PATH", NULL, "the directory (hf) or file (gguf) to write", OPT_OUT },
    { "dtype", 0, "TYPE", "f32",
      "weights: f32, bf16 or f16 (hf); f32, f16 or q8_0 (gguf:\n"
      "norms, biases and positions stay f32)",
      OPT_DTYPE },
    { "data", 0, "DIR", NULL, "take the tokenizer from this corpus (the one trained on)",
      OPT_DATA },
    { "tokenizer", 0, "FILE", NULL, "take the tokenizer from this tokenizer.json", OPT_TOK },
    { "no-tokenizer", 0, NULL, NULL, "hf only: write the weights and config.json alone",
      OPT_NOTOK },
    { "skip-fingerprint-check", 0, NULL, NULL,
      "use the tokenizer even if its fingerprint is not\n"
      "the checkpoint's (a version 1 checkpoint trained with --where)",
      OPT_SKIPFP },
    { "base-model", 0, "NAME", NULL,
      "peft: base_model_name_or_path of adapter_config.json (the\n"
      "Hub name or directory of the base model's hf export)",
      OPT_BASE },
    { 0 }
};

static const CliSpec export_spec = {
    "cm-train",
    "export",
    "--ckpt FILE --format hf|gguf|peft -o PATH [--dtype TYPE] [options]",
    "Write a cm-train checkpoint for other tools: transformers' GPT2LMHeadModel\n"
    "(AutoModelForCausalLM.from_pretrained(PATH) and AutoTokenizer load it) or a GGUF v3\n"
    "file for llama.cpp (llama-cli -m PATH; Ollama: a Modelfile 'FROM ./PATH').\n"
    "The tokenizer comes from --tokenizer, --data, or the checkpoint's CKPT.tokenizer.json\n"
    "(written by cm-train import), and must match the checkpoint's tokenizer fingerprint.\n"
    "A LoRA checkpoint (cm-train --lora-rank) exports its adapters with --format peft (PEFT's\n"
    "PeftModel.from_pretrained(base, PATH) loads them on the hf export of its base); for hf\n"
    "or gguf, fold them into the weights first with 'cm-train merge'. The checkpoint may\n"
    "also be given as the operand.",
    "Memory: the model, plus one tensor converted at a time.\n"
    "The weights are written with O_DIRECT by a writer thread where the file system\n"
    "allows it (CM_BUFFERED_WRITES=1: through the page cache), to FILE.tmp.PID, then\n"
    "fsync'd and renamed.\n"
    "Exit status: 0 done, 2 usage, 3 cannot read or write, 4 bad checkpoint or tokenizer.",
    export_opts,
    NULL
};

typedef struct {
    const char *ckpt, *format, *out, *dtype, *data, *tok, *base;
    int no_tok, skip_fp, quiet;
} ExportOpts;

/* Parse the command line; 0 or the status to exit with. */
static int export_parse(int argc, char **argv, ExportOpts *o)
{
    Cli c;
    int k = 0, rc = CM_OK;
    memset(o, 0, sizeof *o);
    o->dtype = "f32";
    cli_init(&c, &export_spec, argc, argv);
    while (rc == CM_OK && (k = cli_next(&c)) > 0) {
        switch (k) {
        case OPT_CKPT: o->ckpt = c.arg; break;
        case OPT_FORMAT: o->format = c.arg; break;
        case OPT_OUT: o->out = c.arg; break;
        case OPT_DTYPE: o->dtype = c.arg; break;
        case OPT_DATA: o->data = c.arg; break;
        case OPT_TOK: o->tok = c.arg; break;
        case OPT_NOTOK: o->no_tok = 1; break;
        case OPT_SKIPFP: o->skip_fp = 1; break;
        case OPT_BASE: o->base = c.arg; break;
        }
    }
    if (rc == CM_OK && k == CLI_STOP) rc = c.status == CM_OK ? -1 : c.status;
    if (rc == CM_OK && c.optind == argc - 1 && !o->ckpt) o->ckpt = argv[c.optind++];
    if (rc == CM_OK && c.optind < argc)
        rc = cli_usage_error(&c, "unexpected operand '%s'", argv[c.optind]);
    if (rc == CM_OK && !o->format) rc = cli_usage_error(&c, "--format hf, gguf or peft is needed");
    if (rc == CM_OK && strcmp(o->format, "hf") && strcmp(o->format, "gguf") &&
        strcmp(o->format, "peft"))
        rc = cli_usage_error(&c, "--format %s: hf, gguf or peft", o->format);
    if (rc == CM_OK && o->base && strcmp(o->format, "peft"))
        rc = cli_usage_error(&c, "--base-model: for --format peft");
    if (rc == CM_OK && !o->out) rc = cli_usage_error(&c, "-o PATH is needed");
    if (rc == CM_OK && !o->ckpt && !o->data) rc = cli_usage_error(&c, "--ckpt FILE is needed");
    if (rc == CM_OK && o->no_tok && strcmp(o->format, "hf"))
        rc = cli_usage_error(&c, "--no-tokenizer: a GGUF file needs its tokenizer");
    if (rc == CM_OK && o->no_tok && o->tok)
        rc = cli_usage_error(&c, "--no-tokenizer with --tokenizer");
    o->quiet = c.quiet;
    cli_free(&c);
    return rc;
}

/*
** A LoRA checkpoint goes out as PEFT adapters only, a plain one as weights only: 0, or
** CM_EUSAGE after a message naming what to do.
*/
static int export_check_lora(const ExportOpts *o, const char *ckpt, const Gpt *m)
{
    int peft = strcmp(o->format, "peft") == 0;
    if (peft && !m->lora)
        return error("%s: not a LoRA checkpoint: no adapters to export as PEFT (--format hf or "
                     "gguf exports its weights)",
                     ckpt),
               CM_EUSAGE;
    if (!peft && m->lora)
        return error("%s: a LoRA checkpoint: --format peft exports its adapters; for %s, fold "
                     "them into the weights first: cm-train merge -o MERGED.ckpt %s",
                     ckpt, o->format, ckpt),
               CM_EUSAGE;
    return 0;
}

int cmd_export(int argc, char **argv)
{
    ExportOpts o;
    int rc = export_parse(argc, argv, &o);
    if (rc) return rc < 0 ? CM_OK : rc;
    char *ckpt = ckpt_path_for(o.ckpt, o.data);
    Gpt m;
    CkptInfo info;
    char *tok = NULL;
    size_t tok_len = 0;
    int r = ckpt_load(ckpt, &m, &info, 0);
    if (r) {
        free(ckpt);
        return r == -1 ? CM_EIO : CM_EFORMAT;
    }
    rc = export_check_lora(&o, ckpt, &m);
    if (rc == 0 && strcmp(o.format, "peft") == 0) {
        rc = peft_export(&m, o.dtype, o.base, o.out, o.quiet);
    } else if (rc == 0) {
        if (!o.no_tok)
            rc = ix_find_tokenizer(ckpt, &info, o.tok, o.data, o.skip_fp, &tok, &tok_len);
        if (rc == 0 && strcmp(o.format, "hf") == 0)
            rc = hf_export(&m, tok, tok_len, o.dtype, o.out, o.quiet);
        else if (rc == 0)
            rc = gguf_export(&m, tok, tok_len, o.dtype, o.out, o.quiet);
    }
    free(tok);
    gpt_free(&m);
    free(ckpt);
    return rc;
}
