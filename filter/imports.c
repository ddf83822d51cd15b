// SPDX-License-Identifier: MIT
/*
** imports.c: find the Python modules a file imports (see imports.h for the rule).
**
** PCRE2 JIT finds the literal keyword fast (a literal prefix lets the JIT use its SIMD
** first-characters search: ~10 GB/s here); everything else is a few bytes of C per hit.
*/
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "imports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h" // defines: error, xmalloc, xcalloc, xstrdup

/* --- scanner state ------------------------------------------------------------------ */

struct ImportScanner {
    pcre2_code *re;           /* the `import` keyword pattern, JIT-compiled */
    pcre2_match_data *md;     /* match data, created once */
    int n;                    /* number of wanted modules */
    char *names[IMPORTS_MAX]; /* wanted module names ("numpy", "sklearn.svm") */
    size_t lens[IMPORTS_MAX]; /* their lengths */
    uint64_t all;             /* mask with every wanted bit set */
};

/* Lexer states: code, a comment, a one-line string, a triple-quoted string. */
enum { LX_CODE, LX_COMMENT, LX_STR, LX_TRIPLE };

typedef struct {
    size_t pos; /* bytes before pos have been lexed */
    int state;  /* LX_* at pos */
    char q;     /* quote character of the open string */
} Lex;

/*
** Is c a byte of a Python identifier (ASCII letters, digits, '_', or any byte of a
** non-ASCII UTF-8 sequence, as Python 3 identifiers may hold letters of any script)?
*/
static inline int is_ident(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
        c >= 0x80;
}

/*
** Is c a blank inside a line (space, tab, form feed)?
*/
static inline int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\f';
}

/* --- construction ------------------------------------------------------------------- */

/*
** Is s a dotted Python name made of ASCII identifiers ("numpy", "sklearn.svm")?
*/
static int valid_module(const char *s)
{
    int start = 1;
    if (!*s) return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '.') {
            if (start) return 0;
            start = 1;
        } else if (c < 0x80 && is_ident(c) && !(start && c >= '0' && c <= '9')) {
            start = 0;
        } else {
            return 0;
        }
    }
    return !start;
}

ImportScanner *imports_new(char *const *names, int n)
{
    if (n < 1 || n > IMPORTS_MAX) {
        error("between 1 and %d modules can be looked for, not %d", IMPORTS_MAX, n);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!valid_module(names[i]) || strlen(names[i]) > IMPORTS_NAME_MAX) {
            error("'%s' is not a Python module name", names[i]);
            return NULL;
        }
    ImportScanner *s = xcalloc(1, sizeof *s);
    int errcode;
    PCRE2_SIZE erroff;
    s->re = pcre2_compile(
        (PCRE2_SPTR) "import[ \\t\\\\(*]", /* the keyword, then a blank, \ ( or * */
        PCRE2_ZERO_TERMINATED,             /* pattern is NUL-terminated */
        0,                                 /* no options: bytes, no UTF check */
        &errcode, &erroff,                 /* OUT: error details */
        NULL);                             /* default compile context */
    if (!s->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        error("import pattern: PCRE2 error at %zu: %s", (size_t)erroff, (char *)msg);
        free(s);
        return NULL;
    }
    /* Without JIT (a platform PCRE2 does not support) the interpreter gives the same results. */
    (void)pcre2_jit_compile(s->re, PCRE2_JIT_COMPLETE);
    s->md = pcre2_match_data_create_from_pattern(s->re, NULL);
    s->n = n;
    for (int i = 0; i < n; i++) {
        s->names[i] = xstrdup(names[i]);
        s->lens[i] = strlen(names[i]);
    }
    s->all = n == 64 ? ~0ull : (1ull << n) - 1;
    return s;
}

/*
** Release the scanner, its pattern and match data (NULL is fine).
*/
void imports_free(ImportScanner *s)
{
    if (!s) return;
    pcre2_match_data_free(s->md);
    pcre2_code_free(s->re);
    for (int i = 0; i < s->n; i++) free(s->names[i]);
    free(s);
}

/* --- lexer -------------------------------------------------------------------------- */

/*
** Advance the lexer lx over t[lx->pos..target) (t has n bytes). Afterwards lx->pos may exceed
** target when target fell inside an escape or a closing quote: then target is not code.
*/
static void lex_run(Lex *lx, const char *t, size_t n, size_t target)
{
    size_t i = lx->pos;
    while (i < target) {
        switch (lx->state) {
        case LX_CODE:
            while (i < target && t[i] != '#' && t[i] != '"' && t[i] != '\'') i++;
            if (i >= target) break;
            if (t[i] == '#') {
                lx->state = LX_COMMENT;
                i++;
            } else if (i + 2 < n && t[i + 1] == t[i] && t[i + 2] == t[i]) {
                lx->state = LX_TRIPLE;
                lx->q = t[i];
                i += 3;
            } else {
                lx->state = LX_STR;
                lx->q = t[i];
                i++;
            }
            break;
        case LX_COMMENT: {
            const char *p = memchr(t + i, '\n', target - i);
            if (!p) {
                i = target;
            } else {
                i = (size_t)(p - t) + 1;
                lx->state = LX_CODE;
            }
            break;
        }
        case LX_STR:
            while (i < target && t[i] != lx->q && t[i] != '\\' && t[i] != '\n') i++;
            if (i >= target) break;
            if (t[i] == '\\') {
                i += 2; /* an escape, or a backslash-newline continuation */
            } else {
                lx->state = LX_CODE; /* closing quote, or an unterminated string */
                i++;
            }
            break;
        case LX_TRIPLE:
            while (i < target && t[i] != lx->q && t[i] != '\\') i++;
            if (i >= target) break;
            if (t[i] == '\\') {
                i += 2;
            } else if (i + 2 < n && t[i + 1] == lx->q && t[i + 2] == lx->q) {
                lx->state = LX_CODE;
                i += 3;
            } else {
                i++;
            }
            break;
        }
    }
    lx->pos = i;
}

/* --- statement parsing -------------------------------------------------------------- */

/*
** Does position j start a statement: only blanks between the line start (or a `;` or `:`
** of a simple statement on the same line) and j?
*/
static int at_statement_start(const char *t, size_t j)
{
    while (j > 0 && is_blank(t[j - 1])) j--;
    if (j == 0) return 1;
    char c = t[j - 1];
    return c == '\n' || c == '\r' || c == ';' || c == ':';
}

/*
** Set the bits of the wanted modules that name[0..len) is or is inside of.
*/
static void match_name(const ImportScanner *s, const char *name, size_t len, uint64_t *mask)
{
    for (int i = 0; i < s->n; i++) {
        size_t w = s->lens[i];
        if (len >= w && !memcmp(name, s->names[i], w) && (len == w || name[w] == '.'))
            *mask |= 1ull << i;
    }
}

/* Skip blanks and backslash-newline continuations from i; return the new position. */
static size_t skip_space(const char *t, size_t n, size_t i)
{
    for (;;) {
        while (i < n && is_blank(t[i])) i++;
        if (i + 1 < n && t[i] == '\\' && t[i + 1] == '\n') {
            i += 2;
        } else if (i + 2 < n && t[i] == '\\' && t[i + 1] == '\r' && t[i + 2] == '\n') {
            i += 3;
        } else {
            return i;
        }
    }
}

/* Length of the dotted name at t[i..n). */
static size_t dotted_len(const char *t, size_t n, size_t i)
{
    size_t j = i;
    while (j < n && (is_ident((unsigned char)t[j]) || t[j] == '.')) j++;
    return j - i;
}

/*
** The keyword `import` is at t[h]. If it is an import statement, add its wanted modules to
** *mask. Returns 1 when the hit is an import statement (whether or not it matched).
*/
static int parse_statement(const ImportScanner *s, const char *t, size_t n, size_t h,
                           uint64_t *mask)
{
    if (h > 0 && (is_ident((unsigned char)t[h - 1]) || t[h - 1] == '.')) return 0;
    if (at_statement_start(t, h)) {
        /* import a.b [as c], d ... */
        size_t i = h + 6;
        for (;;) {
            i = skip_space(t, n, i);
            size_t len = dotted_len(t, n, i);
            if (!len) break;
            match_name(s, t + i, len, mask);
            i = skip_space(t, n, i + len);
            if (i + 2 < n && t[i] == 'a' && t[i + 1] == 's' && !is_ident((unsigned char)t[i + 2])) {
                i = skip_space(t, n, i + 2);
                i += dotted_len(t, n, i);
                i = skip_space(t, n, i);
            }
            if (i < n && t[i] == ',') {
                i++;
                continue;
            }
            break;
        }
        return 1;
    }
    /* from DOTTED import ...: walk back over blanks, the name, blanks, `from` */
    size_t j = h;
    while (j > 0 && is_blank(t[j - 1])) j--;
    if (j == h) return 0;
    size_t end = j;
    while (j > 0 && (is_ident((unsigned char)t[j - 1]) || t[j - 1] == '.')) j--;
    size_t start = j;
    if (start == end) return 0;
    size_t k = j;
    while (k > 0 && is_blank(t[k - 1])) k--;
    if (k == start || k < 4 || memcmp(t + k - 4, "from", 4)) return 0;
    if (k > 4 && (is_ident((unsigned char)t[k - 5]) || t[k - 5] == '.')) return 0;
    if (!at_statement_start(t, k - 4)) return 0;
    if (t[start] != '.') match_name(s, t + start, end - start, mask);
    return 1;
}

/* --- scanning ----------------------------------------------------------------------- */

uint64_t imports_scan(ImportScanner *s, const char *text, size_t n)
{
    uint64_t mask = 0;
    Lex lx = { 0, LX_CODE, 0 };
    size_t at = 0;
    while (at < n) {
        int rc = pcre2_match(s->re,               /* the keyword pattern */
                             (PCRE2_SPTR)text, n, /* subject */
                             at,                  /* start offset */
                             PCRE2_NO_UTF_CHECK,  /* bytes; nothing to check */
                             s->md, NULL);        /* OUT: match data */
        if (rc < 0) break;                        /* PCRE2_ERROR_NOMATCH, or a limit */
        size_t h = pcre2_get_ovector_pointer(s->md)[0];
        at = h + 6;
        uint64_t found = 0;
        if (!parse_statement(s, text, n, h, &found) || !(found & ~mask)) continue;
        /* only now pay for the lexer: is the keyword in code? */
        if (lx.pos <= h) lex_run(&lx, text, n, h);
        if (lx.pos != h || lx.state != LX_CODE) continue;
        mask |= found;
        if (mask == s->all) break;
    }
    return mask;
}

/*
** Format the `"imports":[...]` field of mask (see imports.h).
*/
size_t imports_format(const ImportScanner *s, uint64_t mask, char *out, size_t cap)
{
    size_t len = 0;
    int k = snprintf(out, cap, "\"imports\":[");
    len = (size_t)k;
    int first = 1;
    for (int i = 0; i < s->n && len < cap; i++) {
        if (!(mask >> i & 1)) continue;
        k = snprintf(out + len, cap - len, "%s\"%s\"", first ? "" : ",", s->names[i]);
        if (k < 0) break;
        len += (size_t)k;
        first = 0;
    }
    if (len < cap) {
        k = snprintf(out + len, cap - len, "]");
        len += (size_t)k;
    }
    return len < cap ? len : cap - 1;
}
