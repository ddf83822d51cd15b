// SPDX-License-Identifier: MIT
/*
** rules.h: cm-filter's rules for one record, in decision order (the first that fails names
** the rejection):
**   not-python   the path is not .py/.pyw/.pyi/.ipynb and the record has no "notebook":true
**                (a record without a path counts as Python: The Stack's Python subset)
**   imports      it imports none of the wanted modules; with keywords, `keywords`: none of
**                the words occurs anywhere in content
**   codeparrot's quality rules (filter/quality.h)
**   exact-dup and near-dup (filter/dedup.h): these depend on the records before, so a Judge
**                only prepares them (fingerprint, MinHash signature); a Dedup decides them
**                in input order.
** A Judge is one thread's means to apply the rules (import scanner, MinHash scratch, buffers);
** the FilterRules it points to are shared and read-only.
*/
#ifndef CM_FILTER_RULES_H
#define CM_FILTER_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"         // defines: Record
#include "filter/dedup.h"   // defines: MinHasher, MH_PERMS
#include "filter/imports.h" // defines: ImportScanner, IMPORTS_FIELD_MAX
#include "filter/pairs.h"   // defines: PairsOpts
#include "filter/quality.h" // defines: QualityOpts, Q_*

/* Decisions in order; quality rules keep their Q_* order in between. */
enum {
    RULE_KEPT = 0,
    RULE_NOT_PYTHON,
    RULE_SELECT,  /* "imports" or "keywords" */
    RULE_QUALITY, /* + Q_* - 1: RULE_QUALITY .. RULE_QUALITY + Q_NRULES - 2 */
    RULE_EXACT = RULE_QUALITY + Q_NRULES - 1,
    RULE_NEAR,
    RULE_COUNT
};

/* The rules of a run, as the command line set them. */
typedef struct {
    char **imports; /* wanted modules */
    int imports_count;
    char **keywords; /* --keywords words, or NULL */
    int keywords_count;
    int select;               /* apply the imports/keywords rule */
    int any_file;             /* skip the Python-only rule */
    int quality;              /* apply the quality rules */
    QualityOpts quality_opts; /* their thresholds */
    int exact;                /* exact dedup */
    int near;                 /* near dedup */
    double near_threshold;    /* Jaccard threshold */
    int pairs;                /* --pairs: a kept file gives instruction records */
    PairsOpts pairs_opts;     /* their rules */
} FilterRules;

/* Name of decision `rule` as --rejects and --stats write it. */
const char *rule_name(const FilterRules *rules, int rule);

/* Does the path (or the notebook flag) say this record is Python source? */
int record_is_python(const Record *r);

typedef struct {
    const FilterRules *rules; /* shared, read-only */
    ImportScanner *scanner;   /* this thread's */
    MinHasher minhash;        /* this thread's permutations and token scratch */
    Buf scratch;              /* fingerprint and quality rules */
} Judge;

/* What the per-record rules found. */
typedef struct {
    int rule;                        /* RULE_KEPT: every per-record rule passed (dedup next) */
    uint64_t fingerprint;            /* rules->exact: exact fingerprint (rule RULE_KEPT) */
    size_t shingles;                 /* rules->near: shingles of sig (0: no near dedup) */
    uint32_t sig[MH_PERMS];          /* MinHash signature (judge_signature) */
    size_t imports_len;              /* length of imports (0: not scanned) */
    char imports[IMPORTS_FIELD_MAX]; /* the `"imports":[...]` field */
} Verdict;

/* 0, or -1 when the scanner cannot be made (message printed). */
int judge_init(Judge *j, const FilterRules *rules);
void judge_free(Judge *j);
/* Apply the per-record rules to r: sets v->rule, v->imports and (when every rule passed and
** exact dedup is on) v->fingerprint. v->shingles is 0 until judge_signature. */
void judge_record(Judge *j, const Record *r, Verdict *v);
/* The MinHash signature of r's content into v (rules->near). */
void judge_signature(Judge *j, const Record *r, Verdict *v);

#endif
