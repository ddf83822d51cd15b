// SPDX-License-Identifier: MIT
/*
** batch.c: filling a batch of lines, and a worker's pass over it (see batch.h).
*/
#include "filter/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h" // defines: cm_stopping
#include "io.h"     // defines: Out, LineReader
#include "json.h"   // defines: JSON_ESCAPE_MAX

/* A buffer grown past this by one unusual line is freed when its batch is used again. */
#define BATCH_KEEP (8u << 20)

void batch_init(FilterBatch *b)
{
    memset(b, 0, sizeof *b);
}

void batch_free(FilterBatch *b)
{
    buf_free(&b->lines);
    buf_free(&b->text);
    buf_free(&b->notes);
    free(b->items);
    free(b->sigs);
    pair_list_free(&b->pairs);
    memset(b, 0, sizeof *b);
}

/* Empty b for the next lines; a buffer that one long line made big is given back. */
static void batch_reset(FilterBatch *b)
{
    Buf *bufs[] = { &b->lines, &b->text, &b->notes };
    for (int i = 0; i < 3; i++) {
        if (bufs[i]->cap > BATCH_KEEP) buf_free(bufs[i]);
        buf_reset(bufs[i]);
    }
    if (b->sig_cap * MH_PERMS * sizeof *b->sigs > BATCH_KEEP) {
        free(b->sigs);
        b->sigs = NULL;
        b->sig_cap = 0;
    }
    b->count = 0;
    b->sig_count = 0;
    b->pairs.count = 0;
    b->last_line = 0;
    b->end = 0;
}

/* --- the reader's side ------------------------------------------------------------------ */

/* A new item for the line the reader of in returned last. */
static FilterItem *item_add(FilterBatch *b, const RecordInput *in)
{
    if (b->count == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        b->items = xrealloc(b->items, b->cap * sizeof *b->items);
    }
    FilterItem *it = &b->items[b->count++];
    memset(it, 0, sizeof *it);
    it->lineno = in->lr.lineno;
    it->offset = in->lr.offset;
    it->kept_off = it->reject_off = it->near_off = NO_LINE;
    return it;
}

/* Is a whole line (or the end of the input) in the reader's buffer, so that taking it
** cannot block? */
static int line_at_hand(const LineReader *lr)
{
    return lr->eof || memchr(lr->buf + lr->start, '\n', lr->end - lr->start) != NULL;
}

void batch_fill(FilterBatch *b, RecordInput *in, int fill_up)
{
    batch_reset(b);
    while (b->count < BATCH_LINES && b->lines.len < BATCH_BYTES) {
        if (cm_stopping()) {
            b->end = 1;
            break;
        }
        if (b->count && !fill_up && !line_at_hand(&in->lr)) break;
        char *line;
        size_t len;
        int k = ri_take_line(in, &line, &len);
        b->last_line = in->lr.lineno;
        if (k == 0) {
            b->end = 1;
            break;
        }
        if (k < 0) {
            FilterItem *it = item_add(b, in);
            it->kind = ITEM_FAULT;
            it->err = in->err;
            if (in->err == RI_ERR_READ || !in->skip_bad) {
                b->end = 1;
                break;
            }
            continue;
        }
        if (record_line_blank(line, len)) continue;
        FilterItem *it = item_add(b, in);
        it->line_off = b->lines.len;
        it->line_len = len;
        buf_add(&b->lines, line, len);
    }
}

/* --- a worker's side -------------------------------------------------------------------- */

int batch_worker_init(BatchWorker *w, const FilterRules *rules, int rejects)
{
    memset(w, 0, sizeof *w);
    record_init(&w->rec);
    pairs_maker_init(&w->pairs, &rules->pairs_opts);
    w->rejects = rejects;
    return judge_init(&w->judge, rules);
}

void batch_worker_free(BatchWorker *w)
{
    judge_free(&w->judge);
    record_free(&w->rec);
    pairs_maker_free(&w->pairs);
}

size_t reject_field(const FilterRules *rules, int rule, const char *imports, size_t imports_len,
                    char *out, size_t cap)
{
    int m = snprintf(out, cap, "\"reject\":\"%s\"%s%.*s", rule_name(rules, rule),
                     imports_len ? "," : "", (int)imports_len, imports);
    return m < 0 ? 0 : (size_t)m < cap ? (size_t)m : cap - 1;
}

/*
** Render r with extra as its JSONL line (record_write) at the end of b->text; returns its
** offset, its length in *len. The room is made first (every field escaped at worst, the
** extra fields no longer than the line they came from), so the Out never flushes.
*/
static size_t render_line(FilterBatch *b, const Record *r, const char *extra, size_t extra_len,
                          size_t line_len, size_t *len)
{
    size_t need = JSON_ESCAPE_MAX(r->repo_name.n) + JSON_ESCAPE_MAX(r->path.n) +
        JSON_ESCAPE_MAX(r->license.n) + JSON_ESCAPE_MAX(r->content.n) + extra_len + line_len + 256;
    buf_grow(&b->text, need);
    Out o = {
        .fd = -1, .name = "(batch)", .buf = b->text.buf + b->text.len, .len = 0, .cap = need
    };
    record_write(&o, r, extra, extra_len);
    size_t off = b->text.len;
    b->text.len += o.len;
    *len = o.len;
    return off;
}

/* Render a --rejects line of r for rule into b->text. */
static size_t render_reject(FilterBatch *b, const FilterItem *it, BatchWorker *w, int rule,
                            size_t *len)
{
    char extra[IMPORTS_FIELD_MAX + 64];
    const Verdict *v = &w->verdict;
    size_t n = reject_field(w->judge.rules, rule, v->imports, v->imports_len, extra, sizeof extra);
    return render_line(b, &w->rec, extra, n, it->line_len, len);
}

/*
** The lines the record may be written as: kept (when dedup may keep it), its --rejects line
** (for a dedup candidate: as exact-dup, and as near-dup). A line too long to render keeps only
** its imports field, for the main thread.
*/
static void render_item(FilterBatch *b, FilterItem *it, BatchWorker *w)
{
    const Verdict *v = &w->verdict;
    const FilterRules *rules = w->judge.rules;
    if (v->rule == RULE_KEPT && rules->pairs) {
        it->pair_first = b->pairs.count;
        pairs_make(&w->pairs, &w->rec, v->imports, v->imports_len, &b->text, &b->pairs,
                   &it->pair_counts);
        it->pair_count = b->pairs.count - it->pair_first;
    }
    if (it->line_len > RENDER_MAX) {
        it->imports_off = b->notes.len;
        it->imports_len = v->imports_len;
        buf_add(&b->notes, v->imports, v->imports_len);
        return;
    }
    if (v->rule == RULE_KEPT && !rules->pairs)
        it->kept_off = render_line(b, &w->rec, v->imports, v->imports_len, it->line_len,
                                   &it->kept_len);
    if (!w->rejects) return;
    if (v->rule != RULE_KEPT) {
        it->reject_off = render_reject(b, it, w, v->rule, &it->reject_len);
        return;
    }
    if (rules->exact) it->reject_off = render_reject(b, it, w, RULE_EXACT, &it->reject_len);
    if (rules->near) it->near_off = render_reject(b, it, w, RULE_NEAR, &it->near_len);
}

/* Keep a signature in b; returns its index. */
static size_t sig_push(FilterBatch *b, const uint32_t *sig)
{
    if (b->sig_count == b->sig_cap) {
        b->sig_cap = b->sig_cap ? 2 * b->sig_cap : 64;
        b->sigs = xrealloc(b->sigs, b->sig_cap * MH_PERMS * sizeof *b->sigs);
    }
    memcpy(b->sigs + b->sig_count * MH_PERMS, sig, MH_PERMS * sizeof *sig);
    return b->sig_count++;
}

/* Parse, judge, sign and render one line. */
static void work_item(FilterBatch *b, FilterItem *it, BatchWorker *w)
{
    Record *r = &w->rec;
    if (record_parse(r, b->lines.buf + it->line_off, it->line_len) != 0) {
        it->kind = ITEM_FAULT;
        it->err = RI_ERR_PARSE;
        it->err_byte = it->offset + r->err_pos;
        it->why_off = b->notes.len;
        buf_add(&b->notes, r->err, strlen(r->err) + 1);
        return;
    }
    Verdict *v = &w->verdict;
    judge_record(&w->judge, r, v);
    it->rule = v->rule;
    it->content_bytes = r->content.n;
    it->fingerprint = v->fingerprint;
    if (v->rule == RULE_KEPT && w->judge.rules->near) {
        judge_signature(&w->judge, r, v);
        it->shingles = v->shingles;
        if (v->shingles) it->sig_index = sig_push(b, v->sig);
    }
    render_item(b, it, w);
}

void batch_work(FilterBatch *b, BatchWorker *w)
{
    for (size_t i = 0; i < b->count; i++)
        if (b->items[i].kind == ITEM_RECORD) work_item(b, &b->items[i], w);
}
