// SPDX-License-Identifier: MIT
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

uint32_t bpe_vocab_size(const Bpe *b); /* highest id + 1, added tokens included */
int64_t bpe_eot_id(const Bpe *b); /* id of "<|endoftext|>" (or the first special), -1 if none */
uint64_t bpe_fingerprint(const Bpe *b); /* XXH3-64 of the tokenizer.json bytes as loaded */

/* Encode text (any bytes; special tokens inside text are matched as Hugging Face does).
** Appends ids to *ids (realloc'd; *n and *cap updated). Returns 0 or -1. Thread-safe on a
** shared const Bpe (each thread keeps its own ids buffer). */
int bpe_encode(const Bpe *b, const char *text, size_t len, uint32_t **ids, size_t *n, size_t *cap);

/* Decode ids to bytes, appended to out. Returns 0, or -1 if an id is out of range. */
int bpe_decode(const Bpe *b, const uint32_t *ids, size_t n, Buf *out);

/* --- Additions (tokenize/ only; the functions above are the contract) ----------------------- */

/* Why a tokenizer file did not load: it could not be read (exit status CM_EIO), or its
** contents are wrong or unsupported (CM_EFORMAT). */
typedef enum {
    BPE_LOAD_OK = 0,
    BPE_LOAD_IO,    /* cannot open or read the file */
    BPE_LOAD_FORMAT /* not a tokenizer.json this code can use (message says why) */
} BpeLoadErr;
/* bpe_load_file, and on failure the kind of fault in *kind (kind may be NULL). */
Bpe *bpe_load_file_kind(const char *path, char *err, size_t errlen, BpeLoadErr *kind);

/* The GPT-2 split regex used by the ByteLevel pre-tokenizer (PCRE2 syntax). */
extern const char BPE_GPT2_PATTERN[];

/* The tokenizer.json bytes as loaded (NUL-terminated), e.g. to embed in a token stream. */
const char *bpe_json(const Bpe *b, size_t *len);
/* Number of merges. */
uint32_t bpe_merge_count(const Bpe *b);
/* Id of a token given as raw text (an added token's content or a model token's bytes), or -1. */
int64_t bpe_token_id(const Bpe *b, const char *tok, size_t n);
/* Raw bytes of token id, or NULL when no token has that id. */
const char *bpe_token_bytes(const Bpe *b, uint32_t id, size_t *n);

/* An encoder: a pre-tokenizer and a word cache for one thread (bpe_encode makes a throw-away
** one per call; use this for many texts). Memory: the cache holds at most 2^18 words of up to
** 256 bytes, then is emptied. */
typedef struct BpeEncoder BpeEncoder;
BpeEncoder *bpe_encoder_new(const Bpe *b);
int bpe_encoder_encode(BpeEncoder *e, const char *text, size_t len, uint32_t **ids, size_t *n,
                       size_t *cap);
void bpe_encoder_free(BpeEncoder *e);

/* The GPT-2 pre-tokenizer alone (one per thread): calls fn for each pre-token, in order; the
** pieces concatenate back to the text (bytes the regex cannot match, i.e. invalid UTF-8,
** become pieces of their own). Returns 0 or -1. */
typedef struct BpePretok BpePretok;
typedef void (*BpePieceFn)(void *ctx, const char *piece, size_t n);
BpePretok *bpe_pretok_new(void);
/* Split with the PCRE2 regex (the reference) instead of the faster hand-written matcher. */
void bpe_pretok_use_pcre2(BpePretok *p, int on);
int bpe_pretok_split(BpePretok *p, const char *text, size_t len, BpePieceFn fn, void *ctx);
void bpe_pretok_free(BpePretok *p);

/* The GPT-2 byte-to-unicode map: the code point byte b is written as in tokenizer.json. */
uint32_t bpe_byte_char(unsigned b);
/* Append the byte-level (tokenizer.json) form of raw bytes p[0..n) to out. */
void bpe_bytes_to_chars(const unsigned char *p, size_t n, Buf *out);

#endif
