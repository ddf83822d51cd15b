// SPDX-License-Identifier: MIT
/*
** pairs.h: instruction records from the documented definitions of a kept file
** (cm-filter --pairs; docs/FORMATS.md "Instruction pairs").
**
** Every function, method and class that filter/pyscan.h finds becomes at most one record:
**   {"repo_name":..,"path":..,["license":..,]"name":"Class.method","kind":"method","line":N,
**    "instruction":"Write the method `fit(self, X, y=None)` of the Python class `Model`: Fit
**    the model.","input":"","output":"def fit(self, X, y=None):\n    \"\"\"Fit ...",
**    ["imports":[..]]}
** kind is function, async function, method, async method, class or nested class. The output
** is the definition's source from its first decorator to the last statement of its body,
** dedented (the header's indentation taken off every line that starts with it, or with as
** much white space), '\r' before '\n' dropped, ending with '\n'. The instruction names the
** signature (the source between the name and the header's ':', comments dropped, white space
** collapsed, no space inside brackets, a trailing comma of the parameters dropped; a class's
** "()" dropped) and the docstring's summary: its first paragraph (up to the first blank line)
** with escapes \\ \' \" \n \t read (not in r-strings), white space collapsed, a final . ! or ?
** kept, a final : ; or , turned into '.', else '.' added.
**
** A definition is skipped, counted under the first rule that applies:
**   nested           it is inside a function (its source is part of that function's)
**   private          its name or an enclosing class's starts with '_' (dunder methods too),
**                    unless --pairs-private
**   no-docstring     its body does not start with a string literal
**   short-docstring  the summary has fewer than --pairs-min-words words (default 3)
**   stub             nothing but the docstring, or a lone pass, ... or raise NotImplementedError
**   too-long         the output is longer than --pairs-max-bytes (default 8K)
** Exact copies (XXH3-64 of the output) are written once over the whole run, first seen wins.
*/
#ifndef CM_FILTER_PAIRS_H
#define CM_FILTER_PAIRS_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"          // defines: JsonWriter
#include "record.h"        // defines: Record
#include "util.h"          // defines: Buf
#include "filter/dedup.h"  // defines: ExactSet
#include "filter/pyscan.h" // defines: PyScan

typedef struct {
    long min_words;     /* --pairs-min-words */
    uint64_t max_bytes; /* --pairs-max-bytes */
    int private_names;  /* --pairs-private */
} PairsOpts;

enum {
    PSKIP_NESTED = 0,
    PSKIP_PRIVATE,
    PSKIP_NO_DOC,
    PSKIP_SHORT_DOC,
    PSKIP_STUB,
    PSKIP_TOO_LONG,
    PSKIP_COUNT
};

/* Names of the skip rules as --stats writes them. */
extern const char *const pairs_skip_names[PSKIP_COUNT];

void pairs_opts_default(PairsOpts *o);

/* One rendered record. */
typedef struct {
    size_t off, len; /* its JSONL line ('\n' included) in the caller's text Buf */
    uint64_t hash;   /* XXH3-64 of its output */
} PairLine;

typedef struct {
    PairLine *v;
    size_t count, cap;
} PairList;

/* What one file gave. */
typedef struct {
    uint32_t defs;                 /* definitions found */
    uint32_t skipped[PSKIP_COUNT]; /* skipped, per rule */
} PairCounts;

/* One thread's means to make pairs: the scanner and scratch buffers. */
typedef struct {
    const PairsOpts *opts; /* shared, read-only */
    PyScan scan;
    Buf sig, doc, summary, qual, instr, output;
} PairsMaker;

void pairs_maker_init(PairsMaker *m, const PairsOpts *opts);
void pairs_maker_free(PairsMaker *m);

/*
** The records of r's definitions, in the order of the file, appended to text (JSONL lines)
** and list; imports (`"imports":[...]`, may be empty) is added to each. Sets *counts.
*/
void pairs_make(PairsMaker *m, const Record *r, const char *imports, size_t imports_len, Buf *text,
                PairList *list, PairCounts *counts);

/* The pieces pairs_make puts together, for the tests: the collapsed signature of
** text[off..off+len), the summary of a docstring's text (words in *words). */
void pairs_signature(const char *text, size_t off, size_t len, Buf *out);
void pairs_summary(const char *doc, size_t n, int raw, Buf *scratch, Buf *out, long *words);

void pair_list_free(PairList *l);

/* The run's counts and the outputs seen (main thread, input order). */
typedef struct {
    ExactSet seen;  /* XXH3-64 of the outputs written */
    uint64_t files; /* kept files scanned */
    uint64_t with;  /* files that gave at least one new record */
    uint64_t defs;  /* definitions found */
    uint64_t pairs; /* records written */
    uint64_t bytes; /* bytes of their lines */
    uint64_t dups;  /* exact copies not written */
    uint64_t skipped[PSKIP_COUNT];
} PairsTally;

void pairs_tally_init(PairsTally *t);
void pairs_tally_free(PairsTally *t);
/* Take the records of one kept file (lines[0..n) in text): write the new ones to o, count. */
void pairs_take(PairsTally *t, Out *o, const char *text, const PairLine *lines, size_t n,
                const PairCounts *counts);
/* "pairs":{...} into w (--stats); the summary line's part into b. */
void pairs_stats_json(const PairsTally *t, JsonWriter *w);
void pairs_summary_line(const PairsTally *t, Buf *b);

#endif
