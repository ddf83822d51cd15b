// SPDX-License-Identifier: MIT
/*
** batch.h: a batch of input lines on its way through cm-filter's threads.
**
** The reader (the main thread) copies the next lines of an input into a free batch
** (batch_fill); a worker parses them, applies every rule that does not depend on other
** records (filter/rules.h), signs the survivors for near dedup and renders the JSONL lines
** the record may be written as (batch_work); the main thread then takes the batches back in
** input order, decides exact and near copies and writes the rendered lines. So the output
** does not depend on the number of threads. With --pairs the worker renders, instead of a
** kept line, the instruction records of the file's definitions (filter/pairs.h), whatever the
** length of its line; the main thread writes those of the files it keeps, each new one once.
**
** Memory: a batch holds about BATCH_BYTES of lines (or one longer line), their rendered
** output lines (about the same again; up to 6x for content of control characters), 1 KB of
** signature per record that reaches dedup, and ~100 bytes per line. A line longer than
** RENDER_MAX is not rendered by the worker: the main thread parses it again to write it.
** --pairs: the records of a kept file, at most --pairs-max-bytes of output each (x6 escaped)
** per definition; a class's source is repeated in it by each of its methods' records.
*/
#ifndef CM_FILTER_BATCH_H
#define CM_FILTER_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"       // defines: RecordInput, RecordErr
#include "util.h"         // defines: Buf
#include "filter/rules.h" // defines: Judge, Verdict, FilterRules

#define BATCH_BYTES (256u << 10) /* a batch closes at this many bytes of lines */
#define BATCH_LINES 1024         /* or at this many lines */
#define RENDER_MAX (1u << 20)    /* longest line a worker renders */

enum { ITEM_RECORD = 0, ITEM_FAULT };

/* No rendered line (the offsets of a FilterItem). */
#define NO_LINE ((size_t)-1)

typedef struct {
    uint64_t lineno;           /* line number in its input */
    uint64_t offset;           /* byte offset of the line in its input */
    size_t line_off, line_len; /* the line in batch->lines */
    int kind;                  /* ITEM_RECORD, or ITEM_FAULT: a line that is no record */
    /* ITEM_FAULT */
    RecordErr err;     /* what is wrong */
    uint64_t err_byte; /* RI_ERR_PARSE: offset of the fault in the input */
    size_t why_off;    /* RI_ERR_PARSE: the message, in batch->notes */
    /* ITEM_RECORD */
    int rule;                        /* RULE_KEPT: every per-record rule passed (dedup next) */
    uint64_t content_bytes;          /* bytes of content */
    uint64_t fingerprint;            /* exact dedup */
    size_t shingles;                 /* near dedup: shingles of the signature (0: none) */
    size_t sig_index;                /* its signature: batch->sigs + sig_index * MH_PERMS */
    size_t kept_off, kept_len;       /* rendered kept line in batch->text, or NO_LINE */
    size_t reject_off, reject_len;   /* rendered --rejects line (a dedup candidate's says
                                          exact-dup), or NO_LINE */
    size_t near_off, near_len;       /* a dedup candidate's --rejects line saying near-dup */
    size_t imports_off, imports_len; /* not rendered (too long): the imports field in notes */
    size_t pair_first, pair_count;   /* --pairs, kept: its records in batch->pairs */
    PairCounts pair_counts;          /* --pairs, kept: definitions found and skipped */
} FilterItem;

typedef struct {
    Buf lines;         /* the lines, back to back */
    FilterItem *items; /* one per line that is not blank */
    size_t count, cap; /* items */
    uint32_t *sigs;    /* signatures of dedup candidates */
    size_t sig_count, sig_cap;
    Buf text;           /* rendered output lines (--pairs: instruction records of kept files) */
    PairList pairs;     /* --pairs: the records in text */
    Buf notes;          /* parse messages, imports fields of unrendered lines */
    uint64_t last_line; /* number of the last line read into the batch */
    int end;            /* the input ends after this batch (end, fault, stop) */
} FilterBatch;

void batch_init(FilterBatch *b);
void batch_free(FilterBatch *b);

/*
** Fill b with the next lines of in (blank lines skipped): up to BATCH_LINES items or
** BATCH_BYTES of lines; with fill_up 0 (a pipe, a terminal) fewer when the next line is not
** at hand yet, so that the lines read so far are not held back by a slow writer or a stop signal came. A line ri_take_line refuses becomes an
** ITEM_FAULT; b->end is set at the end of the input, at a read error, at a refused line under
** --on-error fail (nothing after it will be written), or on a stop signal.
*/
void batch_fill(FilterBatch *b, RecordInput *in, int fill_up);

/* What a worker needs: its Judge, a Record and a Verdict to reuse. */
typedef struct {
    Judge judge;
    Record rec;
    Verdict verdict;
    PairsMaker pairs; /* --pairs */
    int rejects;      /* render --rejects lines too */
} BatchWorker;

/* 0, or -1 when the judge cannot be made (message printed). */
int batch_worker_init(BatchWorker *w, const FilterRules *rules, int rejects);
void batch_worker_free(BatchWorker *w);

/* Parse, judge, sign and render every item of b (see above). */
void batch_work(FilterBatch *b, BatchWorker *w);

/* The reject field `"reject":"RULE"[,IMPORTS]` of a record into out (cap bytes, at least
** IMPORTS_FIELD_MAX + 64); returns its length. */
size_t reject_field(const FilterRules *rules, int rule, const char *imports, size_t imports_len,
                    char *out, size_t cap);

#endif
