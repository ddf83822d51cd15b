// SPDX-License-Identifier: MIT
/*
** template.c: instruction templates (see template.h; the file format is docs/FORMATS.md
** "Instruction template").
**
** A template file is UTF-8 text in sections. A line `[prompt]`, `[prompt_no_input]` or
** `[response]` (spaces after it allowed) starts a section; the section's text is its lines up to
** the next section line or the end of the file, joined by "\n" (the line break that ends its
** last line is not part of it, so an empty last line gives a trailing "\n"). "\r\n" counts as
** "\n". Before the first section only blank lines and lines starting with '#' (comments) may
** stand. In a section's text {instruction}, {input}, {system} (prompt sections) and {output}
** (response) are replaced by the record's fields; `{{` and `}}` stand for `{` and `}`; any other
** brace is an error. [prompt] and [response] are required, [response] must hold {output};
** [prompt_no_input] (used when the input is absent or empty) defaults to [prompt].
*/
#include "template.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TPL_MAX_FILE ((size_t)1 << 20) /* a template file is small */

const char *const template_builtin_names[] = { "alpaca", NULL };

/* Stanford Alpaca's prompts (github.com/tatsu-lab/stanford_alpaca, train.py PROMPT_DICT). */
static const char alpaca_prompt[] =
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n";
static const char alpaca_prompt_no_input[] =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n";

static const struct {
    const char *name, *prompt, *prompt_no_input, *response;
} builtins[] = { { "alpaca", alpaca_prompt, alpaca_prompt_no_input, "{output}" } };

static const char *const role_names[TPL_NFIELDS] = { "instruction", "input", "output", "system" };

/* Which placeholders a section may hold (bit per role). */
#define PROMPT_ROLES ((1u << TPL_INSTRUCTION) | (1u << TPL_INPUT) | (1u << TPL_SYSTEM))
#define RESPONSE_ROLES (1u << TPL_OUTPUT)

int template_role(const char *name, size_t n)
{
    for (int r = 0; r < TPL_NFIELDS; r++)
        if (strlen(role_names[r]) == n && !memcmp(role_names[r], name, n)) return r;
    return -1;
}

const char *template_role_name(int r)
{
    return r >= 0 && r < TPL_NFIELDS ? role_names[r] : "?";
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Where a section's text is, for messages: the file's name and the line its text starts on. */
typedef struct {
    const char *file;    /* template name */
    const char *section; /* "prompt", ... */
    int line;            /* line of the text's first byte */
} TplWhere;

/*
** Expand text: placeholders of the roles in `allowed` become values (absent: empty), `{{` and
** `}}` braces. out NULL: only check. *seen gets the bit of each placeholder met. Returns 0, or
** -1 with a message naming the file and line in err.
*/
static int expand(const char *text, unsigned allowed, const Str *values, Buf *out, unsigned *seen,
                  const TplWhere *w, char *err, size_t errlen)
{
    int line = w->line;
    const char *p = text, *lit = text;
    for (; *p; p++) {
        if (*p == '\n') line++;
        if (*p != '{' && *p != '}') continue;
        if (out) buf_add(out, lit, (size_t)(p - lit));
        if (p[1] == *p) { /* {{ or }} */
            if (out) buf_addc(out, *p);
            lit = p + 2;
            p++;
            continue;
        }
        if (*p == '}') {
            set_err(err, errlen, "%s: line %d: a single '}' (write '}}' for a literal brace)",
                    w->file, line);
            return -1;
        }
        const char *q = p + 1;
        while (is_name_char(*q)) q++;
        if (*q != '}' || q == p + 1) {
            set_err(err, errlen,
                    "%s: line %d: unterminated '{' (a placeholder is {name}; write '{{' for a "
                    "literal brace)",
                    w->file, line);
            return -1;
        }
        int r = template_role(p + 1, (size_t)(q - p - 1));
        if (r < 0) {
            set_err(err, errlen,
                    "%s: line %d: unknown placeholder {%.*s} (known: {instruction}, {input}, "
                    "{system}, {output})",
                    w->file, line, (int)(q - p - 1 > 60 ? 60 : q - p - 1), p + 1);
            return -1;
        }
        if (!(allowed & (1u << r))) {
            set_err(err, errlen, "%s: line %d: {%s} cannot stand in [%s]%s", w->file, line,
                    role_names[r], w->section,
                    r == TPL_OUTPUT ? " (the output is the response)"
                                    : " (the response holds {output} only)");
            return -1;
        }
        if (seen) *seen |= 1u << r;
        if (out && values && values[r].s) buf_add(out, values[r].s, values[r].n);
        lit = q + 1;
        p = q;
    }
    if (out) buf_add(out, lit, (size_t)(p - lit));
    return 0;
}

void template_free(Template *t)
{
    if (!t) return;
    free(t->name);
    free(t->prompt);
    free(t->prompt_no_input);
    free(t->response);
    memset(t, 0, sizeof *t);
}

/* --- the file ------------------------------------------------------------------------------- */

enum { SEC_PROMPT, SEC_PROMPT_NO_INPUT, SEC_RESPONSE, SEC_N };
static const char *const sec_names[SEC_N] = { "prompt", "prompt_no_input", "response" };

/* The parts of a file being parsed. */
typedef struct {
    const char *start[SEC_N]; /* text of each section (NULL: not seen) */
    const char *end[SEC_N];
    int hdr_line[SEC_N];  /* line of its `[name]` */
    int text_line[SEC_N]; /* line its text starts on */
} TplParts;

/*
** Is line[0..n) a section line `[name]` (spaces or tabs after it)? Returns the length of the
** name (inside the brackets) or 0.
*/
static size_t header_name(const char *line, size_t n)
{
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
    if (n < 3 || line[0] != '[' || line[n - 1] != ']') return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (!is_name_char(line[i])) return 0;
    return n - 2;
}

/*
** Split the text (no '\r' before a '\n', NUL-terminated) into sections. 0, or -1 with err.
*/
static int split_sections(const char *name, const char *d, size_t n, TplParts *pp, char *err,
                          size_t errlen)
{
    int cur = -1, lineno = 0;
    memset(pp, 0, sizeof *pp);
    for (size_t pos = 0; pos < n;) {
        const char *line = d + pos, *nl = memchr(line, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - line) : n - pos;
        lineno++;
        size_t hn = header_name(line, len);
        if (hn) {
            int s = -1;
            for (int k = 0; k < SEC_N; k++)
                if (strlen(sec_names[k]) == hn && !memcmp(sec_names[k], line + 1, hn)) s = k;
            if (s < 0) {
                set_err(err, errlen,
                        "%s: line %d: unknown section [%.*s] (sections: [prompt], "
                        "[prompt_no_input], [response])",
                        name, lineno, (int)(hn > 60 ? 60 : hn), line + 1);
                return -1;
            }
            if (pp->start[s]) {
                set_err(err, errlen, "%s: line %d: a second [%s] section (the first is line %d)",
                        name, lineno, sec_names[s], pp->hdr_line[s]);
                return -1;
            }
            if (cur >= 0) pp->end[cur] = line;
            cur = s;
            pp->start[s] = pp->end[s] = nl ? nl + 1 : d + n;
            pp->hdr_line[s] = lineno;
            pp->text_line[s] = lineno + 1;
        } else if (cur < 0 && len && line[0] != '#' && strspn(line, " \t") < len) {
            set_err(err, errlen,
                    "%s: line %d: text before the first section (start with [prompt]; '#' "
                    "starts a comment line there)",
                    name, lineno);
            return -1;
        }
        pos += len + (nl ? 1 : 0);
    }
    if (cur >= 0) pp->end[cur] = d + n;
    for (int s = 0; s < SEC_N; s++) /* the line break ending the last line is not text */
        if (pp->start[s] && pp->end[s] > pp->start[s] && pp->end[s][-1] == '\n') pp->end[s]--;
    return 0;
}

/*
** Check the text for what a file may not hold (NUL bytes, bad UTF-8) and copy it without the
** '\r' of "\r\n" into *norm. 0, or -1 with err.
*/
static int normalize(const char *name, const char *data, size_t n, Buf *norm, char *err,
                     size_t errlen)
{
    if (n > TPL_MAX_FILE) {
        set_err(err, errlen, "%s: line 1: larger than 1 MiB: not a template file", name);
        return -1;
    }
    const char *nul = memchr(data, 0, n);
    size_t ok = utf8_valid_prefix((const unsigned char *)data, n);
    size_t bad = nul && (size_t)(nul - data) < ok ? (size_t)(nul - data) : ok;
    if (bad < n) {
        int line = 1;
        for (size_t i = 0; i < bad; i++) line += data[i] == '\n';
        set_err(err, errlen, "%s: line %d: %s: not a template file", name, line,
                data[bad] ? "not valid UTF-8" : "a NUL byte");
        return -1;
    }
    buf_grow(norm, n + 1);
    for (size_t i = 0; i < n; i++)
        if (!(data[i] == '\r' && i + 1 < n && data[i + 1] == '\n')) buf_addc(norm, data[i]);
    return 0;
}

int template_parse(Template *t, const char *name, const char *data, size_t n, char *err,
                   size_t errlen)
{
    Buf norm = { 0 };
    TplParts pp;
    memset(t, 0, sizeof *t);
    if (normalize(name, data, n, &norm, err, errlen) ||
        split_sections(name, norm.buf, norm.len, &pp, err, errlen))
        goto fail;
    int last_line = 1;
    for (size_t i = 0; i < norm.len; i++) last_line += norm.buf[i] == '\n';
    for (int s = 0; s < SEC_N; s++) {
        if (!pp.start[s] && s != SEC_PROMPT_NO_INPUT) {
            set_err(err, errlen,
                    "%s: line %d: no [%s] section (a template needs [prompt] and "
                    "[response])",
                    name, last_line, sec_names[s]);
            goto fail;
        }
    }
    char *text[SEC_N];
    for (int s = 0; s < SEC_N; s++)
        text[s] = pp.start[s] ? xstrndup(pp.start[s], (size_t)(pp.end[s] - pp.start[s])) : NULL;
    t->name = xstrdup(name);
    t->prompt = text[SEC_PROMPT];
    t->prompt_no_input = text[SEC_PROMPT_NO_INPUT] ? text[SEC_PROMPT_NO_INPUT]
                                                   : xstrdup(text[SEC_PROMPT]);
    t->response = text[SEC_RESPONSE];
    for (int s = 0; s < SEC_N; s++) {
        if (!text[s]) continue;
        TplWhere w = { name, sec_names[s], pp.text_line[s] };
        unsigned seen = 0;
        if (expand(text[s], s == SEC_RESPONSE ? RESPONSE_ROLES : PROMPT_ROLES, NULL, NULL, &seen,
                   &w, err, errlen))
            goto fail;
        if (s == SEC_RESPONSE && !(seen & RESPONSE_ROLES)) {
            set_err(err, errlen, "%s: line %d: [response] has no {output}", name, pp.hdr_line[s]);
            goto fail;
        }
    }
    buf_free(&norm);
    return 0;
fail:
    buf_free(&norm);
    template_free(t);
    return -1;
}

/*
** Read a template file whole (at most TPL_MAX_FILE + 1 bytes: more is refused by the parser).
** Returns CM_OK, or CM_EIO with err.
*/
static int read_template_file(const char *path, Buf *b, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, "cannot open template '%s': %s", path, strerror(errno));
        return CM_EIO;
    }
    char tmp[1 << 16];
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            set_err(err, errlen, "cannot read template '%s': %s", path, strerror(errno));
            close(fd);
            return CM_EIO;
        }
        if (r == 0 || b->len > TPL_MAX_FILE) break;
        buf_add(b, tmp, (size_t)r);
    }
    close(fd);
    return CM_OK;
}

int template_open(Template *t, const char *spec, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++) {
        if (strcmp(spec, builtins[i].name)) continue;
        t->name = xstrdup(builtins[i].name);
        t->prompt = xstrdup(builtins[i].prompt);
        t->prompt_no_input = xstrdup(builtins[i].prompt_no_input);
        t->response = xstrdup(builtins[i].response);
        return CM_OK;
    }
    if (!strchr(spec, '/') && access(spec, F_OK) != 0) {
        set_err(err, errlen,
                "template '%s': not a built-in template (alpaca) nor a file (a file in the "
                "current directory: ./%s)",
                spec, spec);
        return CM_EUSAGE;
    }
    Buf b = { 0 };
    int rc = read_template_file(spec, &b, err, errlen);
    if (rc == CM_OK && template_parse(t, spec, b.buf ? b.buf : "", b.len, err, errlen))
        rc = CM_EFORMAT;
    buf_free(&b);
    return rc;
}

int template_load(Template *t, const char *spec, char *err, size_t errlen)
{
    return template_open(t, spec, err, errlen) == CM_OK ? 0 : -1;
}

int template_uses(const Template *t, int r)
{
    const char *texts[3] = { t->prompt, t->prompt_no_input, t->response };
    unsigned seen = 0;
    for (int i = 0; i < 3; i++) {
        TplWhere w = { t->name, "", 1 };
        if (texts[i]) (void)expand(texts[i], ~0u, NULL, NULL, &seen, &w, NULL, 0);
    }
    return r >= 0 && r < TPL_NFIELDS && (seen >> r & 1);
}

/* --- rendering ------------------------------------------------------------------------------ */

int template_render_prompt(const Template *t, const Str values[TPL_NFIELDS], Buf *prompt, char *err,
                           size_t errlen)
{
    if (!values[TPL_INSTRUCTION].s) {
        set_err(err, errlen, "no instruction");
        return -1;
    }
    int has_input = values[TPL_INPUT].s && values[TPL_INPUT].n;
    const char *text = has_input || !t->prompt_no_input ? t->prompt : t->prompt_no_input;
    TplWhere w = { t->name, has_input ? "prompt" : "prompt_no_input", 1 };
    return expand(text, PROMPT_ROLES, values, prompt, NULL, &w, err, errlen);
}

int template_render(const Template *t, const Str values[TPL_NFIELDS], Buf *prompt, Buf *response,
                    char *err, size_t errlen)
{
    if (!values[TPL_INSTRUCTION].s) {
        set_err(err, errlen, "no instruction");
        return -1;
    }
    if (!values[TPL_OUTPUT].s) {
        set_err(err, errlen, "no output");
        return -1;
    }
    if (!values[TPL_OUTPUT].n) {
        set_err(err, errlen, "the output is empty");
        return -1;
    }
    size_t p0 = prompt->len, r0 = response->len;
    TplWhere w = { t->name, "response", 1 };
    if (template_render_prompt(t, values, prompt, err, errlen) ||
        expand(t->response, RESPONSE_ROLES, values, response, NULL, &w, err, errlen)) {
        prompt->len = p0; /* nothing half-rendered stays */
        response->len = r0;
        if (prompt->buf) prompt->buf[p0] = 0;
        if (response->buf) response->buf[r0] = 0;
        return -1;
    }
    return 0;
}
