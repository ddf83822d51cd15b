/*
** bpe.h: byte-level BPE as GPT-2 / Hugging Face `tokenizers` define it (CONTRACT header).
**
** Used by cm-tokenize, by `cm-shards cat` (decode with the tokenizer stored in the index) and by
** `cm-train complete` (encode a prompt, decode the completion). The functions below are the
** stable interface; tokenize/ may add more but must not change these.
*/
#ifndef CM_BPE_H
#define CM_BPE_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

typedef struct Bpe Bpe;

/* Load a Hugging Face tokenizer.json (byte-level BPE) from memory. `name` is used in messages.
** Returns NULL and writes a message ("NAME: what is wrong") into err on failure. */
Bpe *bpe_load_mem(const char *json, size_t len, const char *name, char *err, size_t errlen);
/* Same, from a file. */
Bpe *bpe_load_file(const char *path, char *err, size_t errlen);
void bpe_free(Bpe *b);

uint32_t bpe_vocab_size(const Bpe *b);      /* highest id + 1, added tokens included */
int64_t bpe_eot_id(const Bpe *b);           /* id of "<|endoftext|>" (or the first special), -1 if none */
uint64_t bpe_fingerprint(const Bpe *b);     /* XXH3-64 of the tokenizer.json bytes as loaded */

/* Encode text (any bytes; special tokens inside text are matched as Hugging Face does).
** Appends ids to *ids (realloc'd; *n and *cap updated). Returns 0 or -1. Thread-safe on a
** shared const Bpe (each thread keeps its own ids buffer). */
int bpe_encode(const Bpe *b, const char *text, size_t len, uint32_t **ids, size_t *n, size_t *cap);

/* Decode ids to bytes, appended to out. Returns 0, or -1 if an id is out of range. */
int bpe_decode(const Bpe *b, const uint32_t *ids, size_t n, Buf *out);

#endif
