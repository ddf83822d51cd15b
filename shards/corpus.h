// SPDX-License-Identifier: MIT
/*
** corpus.h: read a packed corpus (CONTRACT header) — the cm-shards reader used by cm-train.
**
** A corpus is a directory holding index.sqlite and shard-NNNNN.bin files (docs/FORMATS.md).
** corpus_open() opens the index read-only, mmaps every shard and checks each shard's header
** against its index row (magic, version, dtype, token count, size); a damaged or truncated shard
** is refused with a message naming it. shards/ may add functions but must not change these.
*/
#ifndef CM_CORPUS_H
#define CM_CORPUS_H

#include <stddef.h>
#include <stdint.h>

typedef struct Corpus Corpus;
typedef struct CorpusSampler CorpusSampler;

/* Returns NULL and a message in err ("DIR/shard-00003.bin: truncated: ...") on failure. */
Corpus *corpus_open(const char *dir, char *err, size_t errlen);
void corpus_close(Corpus *c);

uint32_t corpus_vocab_size(const Corpus *c);
uint32_t corpus_eot_id(const Corpus *c);
/* The tokenizer.json stored in the index (owned by the corpus). */
const char *corpus_tokenizer_json(const Corpus *c, size_t *len);
/* Total tokens of a split ("train", "valid") or of everything (NULL). */
uint64_t corpus_tokens(const Corpus *c, const char *split);
/* Content bytes per token of a split (for bits per byte), from the index. */
double corpus_bytes_per_token(const Corpus *c, const char *split);

enum { CORPUS_RANDOM = 0, CORPUS_SEQUENTIAL = 1 };

/* A sampler over the documents of `split` (NULL: all) further restricted by an SQL boolean
** expression on the documents table (`where`, NULL: none), e.g. "imports LIKE '%pandas%'".
** CORPUS_RANDOM: window k is drawn from (seed, k) alone, uniformly over token positions of the
** selected documents' ranges, so a run is deterministic and resumable from its position.
** CORPUS_SEQUENTIAL: consecutive non-overlapping windows (stride T) over the selection, for
** evaluation; ends when fewer than T+1 tokens remain. Returns NULL and a message on failure
** (bad SQL, empty selection, selection shorter than one window). */
CorpusSampler *corpus_sampler_new(Corpus *c, const char *split, const char *where, int mode,
                                  uint64_t seed, size_t window, char *err, size_t errlen);
/* The same, with the kind of failure in *status: CM_EUSAGE for a bad --where (SQL the index
** refuses), CM_EFORMAT for anything else (nothing selected, too short, damaged rows). */
CorpusSampler *corpus_sampler_open(Corpus *c, const char *split, const char *where, int mode,
                                   uint64_t seed, size_t window, char *err, size_t errlen,
                                   int *status);
/* Fill w[0..window) with the next window of tokens (window = T+1). Returns 1, or 0 when a
** sequential sampler is exhausted. */
int corpus_sampler_next(CorpusSampler *s, uint32_t *w);
/* Position (number of windows drawn so far) and restoring it, for checkpoints. */
uint64_t corpus_sampler_tell(const CorpusSampler *s);
void corpus_sampler_seek(CorpusSampler *s, uint64_t pos);
void corpus_sampler_free(CorpusSampler *s);

/* Additions (not in the original contract): tokens in a sampler's selection (the length of one
** sequential pass is corpus_sampler_tokens(s) / (window - 1) windows). */
uint64_t corpus_sampler_tokens(const CorpusSampler *s);
struct sqlite3;
/* The open, read-only index connection, for further queries (owned by the corpus). */
struct sqlite3 *corpus_index(const Corpus *c);
/* corpus_open, and *status (may be NULL) the exit status of the fault on failure: CM_EIO (3)
** when the corpus cannot be read, CM_EFORMAT (4) when it is damaged (see corpus_index.h). */
Corpus *corpus_open_status(const char *dir, int *status, char *err, size_t errlen);
/* Copy n tokens of shard `shard` (shards.id) from token `offset` into out, widened to uint32.
** Returns 0, or -1 when the range is not inside that shard. */
int corpus_read_tokens(const Corpus *c, uint32_t shard, uint64_t offset, uint64_t n, uint32_t *out);

/*
** Instruction examples (index v3: documents.n_prompt, the leading tokens that are prompt;
** docs/FORMATS.md). Packing: one example per window. A window holds the example's first
** min(n_tokens, window) tokens, then end-of-text ids as padding; the trainer scores only the
** targets that are response tokens of that example (positions n_prompt .. n_tokens - 1 of
** the window), so no response is judged against another example's tokens.
** Examples whose prompt is not shorter than the context (n_prompt >= window - 1) are skipped and
** counted; longer ones are truncated (their response cut) and counted.
*/
typedef struct {
    uint64_t examples;     /* examples in the selection that are used */
    uint64_t skipped_long; /* prompt not shorter than the context: skipped */
    uint64_t truncated;    /* longer than the window: response cut */
    uint64_t tokens;       /* tokens of the used examples, within their windows */
    uint64_t response;     /* of which response (scored) tokens */
} CorpusExampleStats;

/* 1 when any document of the corpus has n_prompt > 0 (an instruction corpus); 0 otherwise, and
** for indexes of version 1 and 2 (no prompt lengths). */
int corpus_has_prompts(const Corpus *c);

/* An example sampler over the documents of `split`/`where` (as corpus_sampler_open).
** CORPUS_RANDOM: example k of the run is drawn from (seed, k) alone: epoch e = k / N goes
** through the N examples in a permutation seeded by (seed, e). CORPUS_SEQUENTIAL: each example
** once, in document order, then the end. st (may be NULL) gets the counts. Tell, seek and free
** are corpus_sampler_tell / _seek / _free; corpus_sampler_tokens gives st->tokens. */
CorpusSampler *corpus_examples_open(Corpus *c, const char *split, const char *where, int mode,
                                    uint64_t seed, size_t window, CorpusExampleStats *st, char *err,
                                    size_t errlen, int *status);
/* Next example: w[0..window) filled (padding: end-of-text), *n_prompt its prompt tokens, *n_tokens
** its tokens in the window (<= window). 1, or 0 when a sequential sampler is exhausted. */
int corpus_examples_next(CorpusSampler *s, uint32_t *w, uint32_t *n_prompt, uint32_t *n_tokens);

#endif
