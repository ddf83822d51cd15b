// SPDX-License-Identifier: MIT
/*
** pyscan.c: Python definitions by indentation: logical lines, then a stack of the open
** definitions (see pyscan.h for the rules).
*/
#include "filter/pyscan.h"

#include <stdlib.h>
#include <string.h>

#include "util.h" // defines: xrealloc

/* One logical line (pyscan.h). */
typedef struct {
    size_t start;  /* first byte of its first physical line */
    size_t code;   /* its first byte that is not white space */
    size_t stop;   /* the end of its text: before the last '\n' (and a '\r' before it) */
    size_t end;    /* just past that '\n', or the text's end */
    size_t colon;  /* its first ':' at bracket depth 0, outside strings and comments */
    int indent;    /* indentation of its first physical line, tabs to 8 */
    int blank;     /* only white space or a comment: no statement */
    uint64_t line; /* 1-based number of its first physical line */
    uint64_t nl;   /* '\n' bytes it holds */
} LogLine;

void pyscan_init(PyScan *s)
{
    memset(s, 0, sizeof *s);
}

void pyscan_free(PyScan *s)
{
    free(s->defs);
    free(s->stack);
    memset(s, 0, sizeof *s);
}

size_t pyscan_string_end(const char *t, size_t n, size_t q, size_t *body_end, uint64_t *lines)
{
    char c = t[q];
    int triple = q + 2 < n && t[q + 1] == c && t[q + 2] == c;
    size_t i = q + (triple ? 3 : 1);
    while (i < n) {
        char x = t[i];
        if (x == '\\') {
            if (i + 1 < n && t[i + 1] == '\n') {
                (*lines)++;
            } else if (i + 2 < n && t[i + 1] == '\r' && t[i + 2] == '\n') {
                (*lines)++;
                i++;
            }
            i += 2;
        } else if (x == '\n') {
            if (!triple) break;
            (*lines)++;
            i++;
        } else if (x == c && (!triple || (i + 2 < n && t[i + 1] == c && t[i + 2] == c))) {
            *body_end = i;
            return i + (triple ? 3 : 1);
        } else {
            i++;
        }
    }
    if (i > n) i = n; /* a backslash as the last byte */
    *body_end = i;
    return i;
}

/* Indentation of the physical line at pos: sets ll->indent, returns its first other byte. */
static size_t indentation(const char *t, size_t n, size_t pos, LogLine *ll)
{
    int w = 0;
    for (; pos < n; pos++) {
        char c = t[pos];
        if (c == ' ')
            w++;
        else if (c == '\t')
            w = (w / 8 + 1) * 8;
        else if (c == '\f')
            w = 0;
        else if (c != '\r')
            break;
        if (w > (1 << 24)) w = 1 << 24; /* no overflow on absurd input */
    }
    ll->indent = w;
    return pos;
}

/* Close ll at i (a '\n' or n). */
static size_t line_close(const char *t, size_t n, size_t i, LogLine *ll)
{
    ll->end = i < n ? i + 1 : n;
    ll->stop = i;
    while (ll->stop > ll->code &&
           (t[ll->stop - 1] == '\r' || t[ll->stop - 1] == ' ' || t[ll->stop - 1] == '\t'))
        ll->stop--;
    return ll->end;
}

/* The logical line starting at pos into ll (ll->line set by the caller); returns its end. */
static size_t logical_line(const char *t, size_t n, size_t pos, LogLine *ll)
{
    ll->start = pos;
    ll->colon = PY_NONE;
    ll->nl = 0;
    size_t i = ll->code = indentation(t, n, pos, ll);
    ll->blank = i >= n || t[i] == '\n' || t[i] == '#';
    int depth = 0;
    while (i < n) {
        char c = t[i];
        if (c == '#') {
            const char *nl = memchr(t + i, '\n', n - i);
            i = nl ? (size_t)(nl - t) : n;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t body_end;
            i = pyscan_string_end(t, n, i, &body_end, &ll->nl);
            continue;
        }
        if (c == '\\' && i + 1 < n && (t[i + 1] == '\n' || t[i + 1] == '\r')) {
            size_t k = i + 1 + (t[i + 1] == '\r');
            if (k < n && t[k] == '\n') {
                ll->nl++;
                i = k + 1;
                continue;
            }
        }
        if (c == '(' || c == '[' || c == '{') {
            depth++;
        } else if (c == ')' || c == ']' || c == '}') {
            if (depth) depth--;
        } else if (c == ':' && !depth && ll->colon == PY_NONE) {
            ll->colon = i;
        } else if (c == '\n') {
            ll->nl++;
            if (!depth) return line_close(t, n, i, ll);
        }
        i++;
    }
    return line_close(t, n, n, ll);
}

/* Is word (a keyword) at t[p], followed by a space or a tab? */
static int keyword_at(const char *t, size_t n, size_t p, const char *word)
{
    size_t k = strlen(word);
    return p + k < n && !memcmp(t + p, word, k) && (t[p + k] == ' ' || t[p + k] == '\t');
}

static size_t skip_blanks(const char *t, size_t n, size_t p)
{
    while (p < n && (t[p] == ' ' || t[p] == '\t')) p++;
    return p;
}

static int ident_byte(unsigned char c, int first)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80 ||
        (!first && c >= '0' && c <= '9');
}

/*
** Is the statement at t[p] (its logical line ends at stop) a docstring: a string literal
** alone, prefix r/u only? Then set d->doc_*.
*/
static int docstring_at(const char *t, size_t n, size_t p, size_t stop, PyDef *d)
{
    size_t q = p;
    int raw = 0;
    while (q < stop && q - p < 2 && t[q] != '\'' && t[q] != '"') {
        char c = t[q] | 0x20;
        if (c == 'r')
            raw = 1;
        else if (c != 'u')
            return 0;
        q++;
    }
    if (q >= stop || (t[q] != '\'' && t[q] != '"')) return 0;
    int triple = q + 2 < n && t[q + 1] == t[q] && t[q + 2] == t[q];
    size_t body_end;
    uint64_t lines = 0;
    size_t e = pyscan_string_end(t, n, q, &body_end, &lines);
    if (e == body_end) return 0; /* unterminated */
    e = skip_blanks(t, n, e);
    if (e < stop && t[e] != '#' && t[e] != ';' && t[e] != '\r') return 0;
    d->doc_off = q + (triple ? 3 : 1);
    d->doc_len = body_end - d->doc_off;
    d->doc_raw = raw;
    return 1;
}

/* Close the open definitions indented at or deeper than indent; they end at last_end. */
static void close_scopes(PyScan *s, int indent, size_t last_end)
{
    while (s->depth && s->defs[s->stack[s->depth - 1].def].indent >= indent)
        s->defs[s->stack[--s->depth].def].end = last_end;
}

/* A statement (the logical line ll) in the body of the innermost open definition. */
static void statement_seen(PyScan *s, const char *t, size_t n, const LogLine *ll)
{
    if (!s->depth) return;
    PyOpen *o = &s->stack[s->depth - 1];
    PyDef *d = &s->defs[o->def];
    if (o->waiting) {
        o->waiting = 0;
        if (docstring_at(t, n, ll->code, ll->stop, d)) return;
    }
    if (!d->stmts++) {
        d->first_stmt = ll->code;
        d->first_stmt_len = ll->stop - ll->code;
    }
}

/* The kind of definition ll starts (PY_*), with *p at its name; -1 when none. */
static int definition_kind(const char *t, size_t n, const LogLine *ll, size_t *p)
{
    size_t q = ll->code;
    int kind;
    if (keyword_at(t, n, q, "def")) {
        kind = PY_FUNC;
        q += 3;
    } else if (keyword_at(t, n, q, "class")) {
        kind = PY_CLASS;
        q += 5;
    } else if (keyword_at(t, n, q, "async")) {
        q = skip_blanks(t, n, q + 5);
        if (!keyword_at(t, n, q, "def")) return -1;
        kind = PY_ASYNC_FUNC;
        q += 3;
    } else {
        return -1;
    }
    *p = skip_blanks(t, n, q);
    return kind;
}

/* A new definition for s (grown as needed). */
static PyDef *def_add(PyScan *s)
{
    if (s->count == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 32;
        s->defs = xrealloc(s->defs, s->cap * sizeof *s->defs);
    }
    if (s->depth == s->stack_cap) {
        s->stack_cap = s->stack_cap ? 2 * s->stack_cap : 16;
        s->stack = xrealloc(s->stack, s->stack_cap * sizeof *s->stack);
    }
    PyDef *d = &s->defs[s->count];
    memset(d, 0, sizeof *d);
    d->parent = s->depth ? (long)s->stack[s->depth - 1].def : -1;
    d->doc_off = d->first_stmt = PY_NONE;
    s->stack[s->depth].def = s->count++;
    s->stack[s->depth++].waiting = 1;
    return d;
}

/*
** Open the definition ll starts, if it does (decorated from dec, a line start, or PY_NONE;
** its line number dec_line).
*/
static void definition_open(PyScan *s, const char *t, size_t n, const LogLine *ll, size_t dec,
                            uint64_t dec_line)
{
    size_t p;
    int kind = definition_kind(t, n, ll, &p);
    if (kind < 0) return;
    size_t name = p;
    while (p < n && ident_byte((unsigned char)t[p], p == name)) p++;
    if (p == name || ll->colon == PY_NONE || ll->colon < p) return;
    PyDef *d = def_add(s);
    d->kind = kind;
    d->nested = d->parent >= 0 &&
        (s->defs[d->parent].kind != PY_CLASS || s->defs[d->parent].nested);
    d->start = dec != PY_NONE ? dec : ll->start;
    d->line = dec != PY_NONE ? dec_line : ll->line;
    d->end = ll->end;
    d->head = ll->start;
    d->indent_len = ll->code - ll->start;
    d->indent = ll->indent;
    d->name_off = name;
    d->name_len = p - name;
    d->sig_off = p;
    d->sig_len = ll->colon - p;
    size_t body = skip_blanks(t, n, ll->colon + 1);
    if (body < ll->stop && t[body] != '#') { /* `def f(): body` on one line */
        s->stack[s->depth - 1].waiting = 0;
        if (!docstring_at(t, n, body, ll->stop, d)) {
            d->stmts = 1;
            d->first_stmt = body;
            d->first_stmt_len = ll->stop - body;
        }
    }
}

size_t pyscan_run(PyScan *s, const char *t, size_t n)
{
    s->count = s->depth = 0;
    size_t pos = 0, last_end = 0, dec = PY_NONE;
    uint64_t line = 1, dec_line = 0;
    int dec_indent = -1;
    LogLine ll;
    while (pos < n) {
        ll.line = line;
        pos = logical_line(t, n, pos, &ll);
        line += ll.nl;
        if (ll.blank) continue;
        close_scopes(s, ll.indent, last_end);
        statement_seen(s, t, n, &ll);
        last_end = ll.end;
        if (t[ll.code] == '@') { /* a decorator: the first of a run at one indentation */
            if (dec == PY_NONE || dec_indent != ll.indent) {
                dec = ll.start;
                dec_line = ll.line;
                dec_indent = ll.indent;
            }
            continue;
        }
        definition_open(s, t, n, &ll, dec_indent == ll.indent ? dec : PY_NONE, dec_line);
        dec = PY_NONE;
        dec_indent = -1;
    }
    close_scopes(s, -1, last_end);
    return s->count;
}
