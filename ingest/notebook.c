// SPDX-License-Identifier: MIT
/*
** notebook.c: Jupyter notebooks (.ipynb, nbformat 3 and 4) to one Python file in the
** "percent" format that jupytext and VS Code read back as cells:
**
**     # %%
**     import numpy as np
**     # %matplotlib inline
**
**     # %%
**     x = np.arange(3)
**
** Only code cells are kept (markdown and raw cells and all outputs are dropped). IPython
** syntax that is not Python is commented out so that the result parses: line magics
** (`%matplotlib inline`), shell escapes (`!pip install x`, `x = !ls`), help (`?x`, `x?`), and
** cell magics: `%%time`, `%%timeit`, `%%capture` and a few others run Python and only their
** first line is commented; any other cell magic (`%%bash`, `%%writefile f`, `%%html`) has its
** whole cell commented. The notebook is small (bounded by --max-file-size), so jansson's
** tree is fine here.
*/
#include "ingest.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
// Cell text

/* Cell magics whose body is Python. */
static const char *const py_cell_magics[] = { "time",   "timeit",  "capture",    "prun", "debug",
                                              "python", "python3", "autoreload", NULL };

/*
** Is the cell magic line "%%NAME args" one whose body is Python?
*/
static int cell_magic_is_python(const char *line, size_t n)
{
    size_t i = 2, j;
    for (j = i; j < n && line[j] != ' ' && line[j] != '\t' && line[j] != '\n'; j++) {}
    for (int k = 0; py_cell_magics[k]; k++)
        if (strlen(py_cell_magics[k]) == j - i && !memcmp(line + i, py_cell_magics[k], j - i))
            return 1;
    return 0;
}

/*
** Is line[0..n) (without its '\n') IPython-only syntax that must become a comment?
*/
static int line_is_magic(const char *line, size_t n)
{
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t')) i++;
    if (i == n) return 0;
    if (line[i] == '%' || line[i] == '!' || line[i] == '?') return 1;
    /* "x = !ls", "files = %sx ls" */
    const char *eq = memchr(line + i, '=', n - i);
    if (eq && eq > line + i && eq[-1] != '=' && eq[-1] != '!' && eq[-1] != '<' && eq[-1] != '>') {
        const char *q = eq + 1;
        if (q < line + n && *q == '=') return 0;
        while (q < line + n && *q == ' ') q++;
        if (q < line + n && (*q == '!' || *q == '%') && !(q + 1 < line + n && q[1] == '='))
            return 1;
    }
    /* "obj?" / "obj??" help (a line ending in '?' is never valid Python) */
    size_t e = n;
    while (e > i && (line[e - 1] == ' ' || line[e - 1] == '\t' || line[e - 1] == '\r')) e--;
    if (e > i && line[e - 1] == '?') {
        for (size_t k = i; k < e; k++)
            if (line[k] == '#' || line[k] == '"' || line[k] == '\'') return 0;
        return 1;
    }
    return 0;
}

/*
** Append one code cell's source src[0..n) to out, commenting magics as described above.
*/
static void emit_cell(const char *src, size_t n, Buf *out)
{
    size_t i = 0;
    int whole = 0; /* comment every line (non-Python cell magic) */
    while (i < n && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r')) i++;
    if (i + 2 <= n && src[i] == '%' && src[i + 1] == '%') {
        const char *nl = memchr(src + i, '\n', n - i);
        size_t ln = nl ? (size_t)(nl - (src + i)) : n - i;
        whole = !cell_magic_is_python(src + i, ln);
    }
    size_t p = 0;
    while (p < n) {
        const char *nl = memchr(src + p, '\n', n - p);
        size_t ln = nl ? (size_t)(nl - (src + p)) : n - p;
        if (whole || line_is_magic(src + p, ln)) buf_add(out, "# ", 2);
        buf_add(out, src + p, ln);
        buf_addc(out, '\n');
        p += ln + (nl ? 1 : 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Notebook

/*
** Join a "source" value (a string or an array of strings) into b. 0, or -1 if malformed.
*/
static int join_source(json_t *src, Buf *b)
{
    if (json_is_string(src)) {
        buf_add(b, json_string_value(src), json_string_length(src));
        return 0;
    }
    if (!json_is_array(src)) return -1;
    size_t i;
    json_t *v;
    json_array_foreach(src, i, v)
    {
        if (!json_is_string(v)) return -1;
        buf_add(b, json_string_value(v), json_string_length(v));
    }
    return 0;
}

/*
** The kernel language named by the notebook metadata, or NULL when it says nothing.
*/
static const char *notebook_language(json_t *root)
{
    json_t *md = json_object_get(root, "metadata");
    if (!json_is_object(md)) return NULL;
    json_t *v = json_object_get(json_object_get(md, "kernelspec"), "language");
    if (json_is_string(v)) return json_string_value(v);
    v = json_object_get(json_object_get(md, "language_info"), "name");
    if (json_is_string(v)) return json_string_value(v);
    return NULL;
}

/*
** Convert a notebook to percent-format Python (see ingest.h).
*/
int notebook_to_py(const char *json, size_t n, Buf *out, char *err, size_t errlen)
{
    json_error_t je;
    int ncode = 0, rc = -1;
    Buf cell = { 0 };
    json_t *root = json_loadb(json, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!root) {
        snprintf(err, errlen, "not JSON: line %d: %s", je.line, je.text);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "not a notebook: top level is not an object");
        goto done;
    }
    const char *lang = notebook_language(root);
    if (lang && strncasecmp(lang, "python", 6) != 0) {
        snprintf(err, errlen, "not a Python notebook (language '%.40s')", lang);
        goto done;
    }
    json_t *cells = json_object_get(root, "cells");
    const char *srckey = "source";
    if (!cells) { /* nbformat 3: worksheets[0].cells[].input */
        json_t *ws = json_object_get(root, "worksheets");
        if (json_is_array(ws) && json_array_size(ws) > 0)
            cells = json_object_get(json_array_get(ws, 0), "cells");
        srckey = "input";
    }
    if (!json_is_array(cells)) {
        snprintf(err, errlen, "not a notebook: no cells array");
        goto done;
    }
    size_t i;
    json_t *c;
    json_array_foreach(cells, i, c)
    {
        const char *type = json_string_value(json_object_get(c, "cell_type"));
        if (!type) {
            snprintf(err, errlen, "cell %zu has no cell_type", i);
            goto done;
        }
        if (strcmp(type, "code") != 0) continue;
        buf_reset(&cell);
        json_t *src = json_object_get(c, srckey);
        if (src && join_source(src, &cell)) {
            snprintf(err, errlen, "cell %zu: source is not text", i);
            goto done;
        }
        if (ncode > 0) buf_addc(out, '\n');
        buf_adds(out, "# %%\n");
        emit_cell(cell.buf ? cell.buf : "", cell.len, out);
        ncode++;
    }
    rc = ncode;
done:
    buf_free(&cell);
    json_decref(root);
    return rc;
}
