// SPDX-License-Identifier: MIT
/*
** rules.c: cm-filter's per-record rules (see rules.h).
*/
#include "filter/rules.h"

#include <string.h>
#include <strings.h>

const char *rule_name(const FilterRules *rules, int rule)
{
    if (rule == RULE_KEPT) return "kept";
    if (rule == RULE_NOT_PYTHON) return "not-python";
    if (rule == RULE_SELECT) return rules->keywords ? "keywords" : "imports";
    if (rule == RULE_EXACT) return "exact-dup";
    if (rule == RULE_NEAR) return "near-dup";
    return quality_rule_name(rule - RULE_QUALITY + 1);
}

int record_is_python(const Record *r)
{
    static const char *const ext[] = { ".py", ".pyw", ".pyi", ".ipynb", NULL };
    const JsonField *nb = json_get(&r->obj, "notebook");
    if (nb && nb->type == JSON_TRUE) return 1;
    if (!r->path.s || r->path.n == 0) return 1;
    for (int i = 0; ext[i]; i++) {
        size_t k = strlen(ext[i]);
        if (r->path.n >= k && !strncasecmp(r->path.s + r->path.n - k, ext[i], k)) return 1;
    }
    return 0;
}

/* Does any --keywords word occur in s[0..n)? (case-sensitive substring, as the HF course) */
static int has_keyword(const FilterRules *rules, const char *s, size_t n)
{
    for (int i = 0; i < rules->keywords_count; i++)
        if (memmem(s, n, rules->keywords[i], strlen(rules->keywords[i]))) return 1;
    return 0;
}

int judge_init(Judge *j, const FilterRules *rules)
{
    memset(j, 0, sizeof *j);
    j->rules = rules;
    minhash_init(&j->minhash);
    j->scanner = imports_new(rules->imports, rules->imports_count);
    return j->scanner ? 0 : -1;
}

void judge_free(Judge *j)
{
    imports_free(j->scanner);
    minhash_free(&j->minhash);
    buf_free(&j->scratch);
    j->scanner = NULL;
}

/* The rule that rejects r, or RULE_KEPT; fills v->imports on the way. */
static int judge_rules(Judge *j, const Record *r, Verdict *v)
{
    const FilterRules *rules = j->rules;
    const char *s = r->content.s;
    size_t n = r->content.n;
    if (!rules->any_file && !record_is_python(r)) return RULE_NOT_PYTHON;
    uint64_t mask = imports_scan(j->scanner, s, n);
    v->imports_len = imports_format(j->scanner, mask, v->imports, sizeof v->imports);
    if (rules->select && (rules->keywords ? !has_keyword(rules, s, n) : !mask)) return RULE_SELECT;
    if (rules->quality) {
        int q = quality_check(&rules->quality_opts, s, n, &j->scratch);
        if (q != Q_OK) return RULE_QUALITY + q - 1;
    }
    return RULE_KEPT;
}

void judge_record(Judge *j, const Record *r, Verdict *v)
{
    v->imports_len = 0;
    v->fingerprint = 0;
    v->shingles = 0;
    v->rule = judge_rules(j, r, v);
    if (v->rule == RULE_KEPT && j->rules->exact)
        v->fingerprint = dedup_fingerprint(r->content.s, r->content.n, &j->scratch);
}

void judge_signature(Judge *j, const Record *r, Verdict *v)
{
    v->shingles = minhash_signature(&j->minhash, r->content.s, r->content.n, v->sig);
}
