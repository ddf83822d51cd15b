// SPDX-License-Identifier: MIT
/*
** cm-tokenize: train, encode and decode byte-level BPE (Hugging Face tokenizer.json compatible).
**
**   cm-tokenize train  --vocab-size N -o tok.json [FILE...]    JSONL records -> tokenizer.json
**   cm-tokenize encode -t tok.json [--jsonl] [FILE...]        JSONL records -> token stream
**   cm-tokenize decode [-t tok.json] [FILE...]                token stream / id arrays -> JSONL
**
** This file holds main and the verbs table; tk.h lists the files that do the work.
*/
#include <string.h>

#include "cli.h"
#include "util.h"
#include "tokenize/tk.h"

static const CliVerb verbs[] = {
    { "train", "learn a tokenizer.json from the `content` of JSONL records", tk_train_main },
    { "encode", "JSONL records -> binary token stream for cm-shards (or --jsonl id arrays)",
      tk_encode_main },
    { "decode", "token stream or id arrays -> JSONL records (or --raw text)", tk_decode_main },
    { 0 }
};

static const char about[] =
    "Byte-level BPE as GPT-2 and Hugging Face `tokenizers` define it, for codemill JSONL records.\n"
    "FILE '-' or none means stdin.\n"
    "Exit status: 0 ok, 1 some input bad (good records kept), 2 usage, 3 I/O error,\n"
    "4 tokenizer file wrong or damaged, 5 internal error, 130 interrupted, 141 output pipe closed.";

int main(int argc, char **argv)
{
    cm_init(TK_PROG);
    if (argc > 1 && !strcmp(argv[1], "help")) argv[1] = "--help"; /* `cm-tokenize help` */
    return cli_dispatch(TK_PROG, about, verbs, NULL, argc, argv);
}
