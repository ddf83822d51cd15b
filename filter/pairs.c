// SPDX-License-Identifier: MIT
/*
** pairs.c: instruction records from documented definitions (the rules are in pairs.h), and
** the main thread's tally of them (exact copies, counts).
*/
#include "filter/pairs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h" // defines: hash64

const char *const pairs_skip_names[PSKIP_COUNT] = { "nested",          "private", "no-docstring",
                                                    "short-docstring", "stub",    "too-long" };

void pairs_opts_default(PairsOpts *o)
{
    o->min_words = 3;
    o->max_bytes = 8192;
    o->private_names = 0;
}

void pairs_maker_init(PairsMaker *m, const PairsOpts *opts)
{
    memset(m, 0, sizeof *m);
    m->opts = opts;
    pyscan_init(&m->scan);
}

void pairs_maker_free(PairsMaker *m)
{
    pyscan_free(&m->scan);
    Buf *bufs[] = { &m->sig, &m->doc, &m->summary, &m->qual, &m->instr, &m->output };
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) buf_free(bufs[i]);
}

void pair_list_free(PairList *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* --- the pieces of a record ------------------------------------------------------------- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Append c to out after the white space that came before it (pending), collapsed. */
static void sig_put(Buf *out, char c, int pending)
{
    char last = out->len ? out->buf[out->len - 1] : 0;
    if (pending && out->len && !strchr("([{", last) && !strchr(")]},", c)) buf_addc(out, ' ');
    buf_addc(out, c);
}

void pairs_signature(const char *t, size_t off, size_t len, Buf *out)
{
    buf_reset(out);
    size_t i = off, e = off + len;
    int depth = 0, space = 0;
    while (i < e) {
        char c = t[i];
        if (c == '#') {
            while (i < e && t[i] != '\n') i++;
        } else if (is_space(c) || c == '\\') {
            space = 1; /* a backslash here can only continue the line */
            i++;
        } else if (c == '\'' || c == '"') {
            size_t body_end;
            uint64_t lines = 0;
            size_t j = pyscan_string_end(t, e, i, &body_end, &lines);
            sig_put(out, c, space);
            buf_add(out, t + i + 1, j - i - 1);
            space = 0;
            i = j;
        } else {
            if (c == ')' || c == ']' || c == '}') {
                if (depth == 1 && c == ')' && out->len && out->buf[out->len - 1] == ',')
                    out->len--; /* the parameters' trailing comma */
                if (depth) depth--;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            }
            sig_put(out, c, space);
            space = 0;
            i++;
        }
    }
    if (out->buf) out->buf[out->len] = 0;
}

/* The docstring's value, escapes read unless raw (\\ \' \" \n; \t and \r become spaces; a
** backslash-newline joins; other escapes are kept as written). */
static void doc_decode(const char *s, size_t n, int raw, Buf *out)
{
    buf_reset(out);
    if (raw) {
        buf_add(out, s, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i], d = i + 1 < n ? s[i + 1] : 0;
        if (c != '\\' || i + 1 >= n) {
            buf_addc(out, c);
        } else if (d == '\n') {
            i++;
        } else if (d == '\r' && i + 2 < n && s[i + 2] == '\n') {
            i += 2;
        } else if (d == '\\' || d == '\'' || d == '"') {
            buf_addc(out, d);
            i++;
        } else if (d == 'n' || d == 't' || d == 'r') {
            buf_addc(out, d == 'n' ? '\n' : ' ');
            i++;
        } else {
            buf_addc(out, c);
        }
    }
}

/* Is s[0..n) a section underline (numpydoc's "-------", reST's "====="), white space aside? */
static int underline(const char *s, size_t n)
{
    size_t marks = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-' || s[i] == '=' || s[i] == '~')
            marks++;
        else if (!is_space(s[i]))
            return 0;
    }
    return marks >= 3;
}

void pairs_summary(const char *doc, size_t n, int raw, Buf *scratch, Buf *out, long *words)
{
    doc_decode(doc, n, raw, scratch);
    buf_reset(out);
    *words = 0;
    const char *s = scratch->buf ? scratch->buf : "";
    size_t len = scratch->len, i = 0, line_start = 0;
    long line_words = 0;
    while (i < len) { /* one line at a time; a blank line after words ends the paragraph */
        size_t e = i;
        while (e < len && s[e] != '\n') e++;
        if (underline(s + i, e - i)) { /* the line before was a section's title: not summary */
            out->len = line_start ? line_start - 1 : 0;
            *words -= line_words;
            break;
        }
        line_start = out->len + (out->len > 0);
        line_words = *words;
        int blank = 1;
        for (size_t k = i; k < e; k++) {
            if (is_space(s[k])) continue;
            if (blank || is_space(s[k - 1])) {
                if (out->len) buf_addc(out, ' ');
                (*words)++;
            }
            blank = 0;
            buf_addc(out, s[k]);
        }
        if (blank && out->len) break;
        line_words = *words - line_words;
        i = e + 1;
    }
    if (out->len) {
        char last = out->buf[out->len - 1];
        if (last == ':' || last == ';' || last == ',') out->len--;
        if (last != '.' && last != '!' && last != '?') buf_addc(out, '.');
    }
    if (out->buf) out->buf[out->len] = 0;
}

/* The enclosing classes of d, outermost first, joined by '.' into out (empty at top level). */
static void parent_name(const char *t, const PyDef *defs, long parent, Buf *out)
{
    if (parent < 0) return;
    parent_name(t, defs, defs[parent].parent, out);
    if (out->len) buf_addc(out, '.');
    buf_add(out, t + defs[parent].name_off, defs[parent].name_len);
}

/* Does d's name, or an enclosing class's, start with '_'? */
static int is_private(const char *t, const PyDef *defs, const PyDef *d)
{
    for (;;) {
        if (t[d->name_off] == '_') return 1;
        if (d->parent < 0) return 0;
        d = &defs[d->parent];
    }
}

/* Does the statement at s (len bytes) start with word, then end or a comment? */
static int lone_word(const char *s, size_t len, const char *word)
{
    size_t k = strlen(word);
    if (len < k || memcmp(s, word, k)) return 0;
    while (k < len && (s[k] == ' ' || s[k] == '\t')) k++;
    return k == len || s[k] == '#';
}

/* Nothing but the docstring, or a lone pass, ... or raise NotImplementedError[(...)]. */
static int is_stub(const char *t, const PyDef *d)
{
    if (d->stmts == 0) return 1;
    if (d->stmts > 1) return 0;
    const char *s = t + d->first_stmt;
    size_t len = d->first_stmt_len;
    static const char raise[] = "raise NotImplementedError";
    if (len >= sizeof raise - 1 && !memcmp(s, raise, sizeof raise - 1)) {
        char c = len > sizeof raise - 1 ? s[sizeof raise - 1] : 0;
        return c == 0 || c == '(' || c == ' ' || c == '\t' || c == '#';
    }
    return lone_word(s, len, "pass") || lone_word(s, len, "...");
}

/* d's source dedented into out (pairs.h). */
static void dedent(const char *t, const PyDef *d, Buf *out)
{
    buf_reset(out);
    const char *ind = t + d->head;
    size_t p = d->start;
    while (p < d->end) {
        const char *nl = memchr(t + p, '\n', d->end - p);
        size_t e = nl ? (size_t)(nl - t) : d->end, q = p;
        if (e - p >= d->indent_len && !memcmp(t + p, ind, d->indent_len)) {
            q = p + d->indent_len;
        } else { /* other white space: take off as much as the header's indentation */
            int w = 0;
            while (q < e && (t[q] == ' ' || t[q] == '\t') && w < d->indent) {
                w = t[q] == ' ' ? w + 1 : (w / 8 + 1) * 8;
                q++;
            }
            if (w != d->indent && q < e && !is_space(t[q])) q = p; /* less indented: as is */
        }
        size_t k = e;
        if (k > q && t[k - 1] == '\r') k--;
        buf_add(out, t + q, k - q);
        buf_addc(out, '\n');
        p = e + 1;
    }
}

/* --- one record ------------------------------------------------------------------------- */

static const char *const kind_names[2][3] = { { "function", "async function", "class" },
                                              { "method", "async method", "nested class" } };

/* The instruction of d (its signature in m->sig, summary in m->summary, parents in m->qual). */
static void instruction(PairsMaker *m, const char *t, const PyDef *d)
{
    Buf *b = &m->instr;
    buf_reset(b);
    int top = d->parent < 0;
    if (top)
        buf_addf(b, "Write a Python %s `", kind_names[0][d->kind]);
    else
        buf_addf(b, "Write the %s `", d->kind == PY_CLASS ? "class" : kind_names[1][d->kind]);
    buf_add(b, t + d->name_off, d->name_len);
    if (!(d->kind == PY_CLASS && m->sig.len == 2 && !memcmp(m->sig.buf, "()", 2)))
        buf_add(b, m->sig.buf, m->sig.len);
    if (!top) {
        buf_adds(
            b, d->kind == PY_CLASS ? "` nested in the Python class `" : "` of the Python class `");
        buf_add(b, m->qual.buf, m->qual.len);
    }
    buf_adds(b, "`: ");
    buf_add(b, m->summary.buf, m->summary.len);
}

/* Append `"key":` and the escaped string to b. */
static void field(Buf *b, const char *key, const char *s, size_t n)
{
    buf_addf(b, ",\"%s\":", key);
    json_escape(b, s, n);
}

/* The JSONL line of d (m->instr, m->output ready) appended to text. */
static void render(PairsMaker *m, const Record *r, const char *t, const PyDef *d,
                   const char *imports, size_t imports_len, Buf *text)
{
    buf_adds(text, "{\"repo_name\":");
    json_escape(text, r->repo_name.s ? r->repo_name.s : "", r->repo_name.n);
    if (r->path.s) field(text, "path", r->path.s, r->path.n);
    if (r->license.s) field(text, "license", r->license.s, r->license.n);
    buf_adds(text, ",\"name\":\"");
    if (m->qual.len) {
        buf_add(text, m->qual.buf, m->qual.len); /* names: identifier bytes, no escapes */
        buf_addc(text, '.');
    }
    buf_add(text, t + d->name_off, d->name_len);
    buf_addf(text, "\",\"kind\":\"%s\",\"line\":%llu", kind_names[d->parent >= 0][d->kind],
             (unsigned long long)d->line);
    field(text, "instruction", m->instr.buf, m->instr.len);
    buf_adds(text, ",\"input\":\"\"");
    field(text, "output", m->output.buf, m->output.len);
    if (imports_len) {
        buf_addc(text, ',');
        buf_add(text, imports, imports_len);
    }
    buf_adds(text, "}\n");
}

/* Why d gives no record (PSKIP_*), or -1: it gives one (m->summary, m->output ready). */
static int skip_rule(PairsMaker *m, const char *t, const PyDef *d)
{
    const PyDef *defs = m->scan.defs;
    if (d->nested) return PSKIP_NESTED;
    if (!m->opts->private_names && is_private(t, defs, d)) return PSKIP_PRIVATE;
    if (d->doc_off == PY_NONE) return PSKIP_NO_DOC;
    long words;
    pairs_summary(t + d->doc_off, d->doc_len, d->doc_raw, &m->doc, &m->summary, &words);
    if (words < m->opts->min_words) return PSKIP_SHORT_DOC;
    if (is_stub(t, d)) return PSKIP_STUB;
    dedent(t, d, &m->output);
    if (m->output.len > m->opts->max_bytes) return PSKIP_TOO_LONG;
    return -1;
}

void pairs_make(PairsMaker *m, const Record *r, const char *imports, size_t imports_len, Buf *text,
                PairList *list, PairCounts *counts)
{
    memset(counts, 0, sizeof *counts);
    const char *t = r->content.s ? r->content.s : "";
    size_t n = pyscan_run(&m->scan, t, r->content.n);
    counts->defs = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        const PyDef *d = &m->scan.defs[i];
        int why = skip_rule(m, t, d);
        if (why >= 0) {
            counts->skipped[why]++;
            continue;
        }
        pairs_signature(t, d->sig_off, d->sig_len, &m->sig);
        buf_reset(&m->qual);
        parent_name(t, m->scan.defs, d->parent, &m->qual);
        instruction(m, t, d);
        if (list->count == list->cap) {
            list->cap = list->cap ? 2 * list->cap : 64;
            list->v = xrealloc(list->v, list->cap * sizeof *list->v);
        }
        PairLine *pl = &list->v[list->count++];
        pl->off = text->len;
        pl->hash = hash64(m->output.buf, m->output.len);
        render(m, r, t, d, imports, imports_len, text);
        pl->len = text->len - pl->off;
    }
}

/* --- the tally -------------------------------------------------------------------------- */

void pairs_tally_init(PairsTally *t)
{
    memset(t, 0, sizeof *t);
    exactset_init(&t->seen);
}

void pairs_tally_free(PairsTally *t)
{
    exactset_free(&t->seen);
}

void pairs_take(PairsTally *t, Out *o, const char *text, const PairLine *lines, size_t n,
                const PairCounts *counts)
{
    t->files++;
    t->defs += counts->defs;
    for (int k = 0; k < PSKIP_COUNT; k++) t->skipped[k] += counts->skipped[k];
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t key = lines[i].hash ? lines[i].hash : 1; /* 0 marks an empty slot */
        if (exactset_has(&t->seen, key)) {
            t->dups++;
            continue;
        }
        exactset_add(&t->seen, key);
        out_write(o, text + lines[i].off, lines[i].len);
        t->pairs++;
        t->bytes += lines[i].len;
        any = 1;
    }
    t->with += any;
}

void pairs_stats_json(const PairsTally *t, JsonWriter *w)
{
    jw_object(w, "pairs");
    jw_u64(w, "files", t->files);
    jw_u64(w, "files_with_pairs", t->with);
    jw_u64(w, "definitions", t->defs);
    jw_u64(w, "records", t->pairs);
    jw_u64(w, "bytes", t->bytes);
    jw_u64(w, "duplicates", t->dups);
    jw_object(w, "skipped");
    for (int k = 0; k < PSKIP_COUNT; k++) jw_u64(w, pairs_skip_names[k], t->skipped[k]);
    jw_close(w);
    jw_close(w);
}

void pairs_summary_line(const PairsTally *t, Buf *b)
{
    buf_addf(b, "; pairs %llu (%.1f MB) from %llu of %llu files, %llu definitions: duplicates %llu",
             (unsigned long long)t->pairs, t->bytes / 1e6, (unsigned long long)t->with,
             (unsigned long long)t->files, (unsigned long long)t->defs,
             (unsigned long long)t->dups);
    for (int k = 0; k < PSKIP_COUNT; k++)
        buf_addf(b, ", %s %llu", pairs_skip_names[k], (unsigned long long)t->skipped[k]);
}
