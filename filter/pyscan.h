// SPDX-License-Identifier: MIT
/*
** pyscan.h: the function and class definitions of a Python source file, found by indentation
** (no Python parser): what cm-filter --pairs (filter/pairs.h) turns into instruction records.
**
** The text is cut into logical lines as Python's tokenizer does: a physical line goes on while
** a bracket ( [ { is open, a string is open ('...', "...", '''...''', """...""", any prefix:
** a backslash always escapes the next byte, so raw strings end where Python ends them), or it
** ends with a backslash; comments (# to the end of the line) and lines holding only white space
** or a comment are not statements. A logical line's indentation is that of its first physical
** line (a tab goes to the next multiple of 8, as Python counts it). '\n' ends a line; a '\r'
** before it is white space (CRLF files), so is a lone '\r'.
**
** A definition is a logical line starting with `def NAME`, `async def NAME` or `class NAME`
** with a ':' at bracket depth 0 (its header may span lines: a signature in brackets, a
** backslash), together with the `@decorator` lines just above it at the same indentation. Its
** body is every following statement indented deeper; it ends with the last such statement
** (comment and blank lines after it are not part of it), before the first statement indented
** at or below the header, or at the end of the text. Its docstring is the body's first
** statement when that is a string literal alone (prefix r or u, not b or f), on the next lines
** or after the header's ':' on the same line. Definitions inside a function are found and
** marked nested; those inside a class name it as their parent. Lambdas are not definitions.
**
** Not seen, knowingly: a docstring of several literals ("a" "b") or in parentheses; a `def`
** made by exec or inside a string; a header whose ':' follows a
** bracket that is never closed (the rest of the text is then one logical line); f-strings that
** reuse their own quote inside a {} (Python 3.12) may end a string early.
*/
#ifndef CM_FILTER_PYSCAN_H
#define CM_FILTER_PYSCAN_H

#include <stddef.h>
#include <stdint.h>

enum { PY_FUNC = 0, PY_ASYNC_FUNC, PY_CLASS };

#define PY_NONE ((size_t)-1) /* no docstring, no statement */

typedef struct {
    int kind;              /* PY_FUNC, PY_ASYNC_FUNC, PY_CLASS */
    int nested;            /* inside a function (at any depth) */
    long parent;           /* index of the enclosing definition in the list, or -1 */
    size_t start;          /* first byte of its first line (the first decorator's) */
    size_t end;            /* just past its last line ('\n' included), or the text's end */
    uint64_t line;         /* 1-based line number of start */
    size_t head;           /* first byte of the header's line (`def` / `class` line) */
    size_t indent_len;     /* bytes of white space before `def` / `async` / `class` */
    int indent;            /* that indentation as Python counts it (tabs to 8) */
    size_t name_off;       /* the name */
    size_t name_len;       /* its length */
    size_t sig_off;        /* after the name, up to the header's ':' (parameters and */
    size_t sig_len;        /*   return annotation, or a class's bases): source text */
    size_t doc_off;        /* the docstring's text between its quotes, or PY_NONE */
    size_t doc_len;        /* its length */
    int doc_raw;           /* it has an r prefix (escapes are not processed) */
    uint64_t stmts;        /* statements of its body after the docstring (logical lines;
                              a nested definition counts once, not its body) */
    size_t first_stmt;     /* the first of them (its first non-blank byte), or PY_NONE */
    size_t first_stmt_len; /* the length of that logical line, without its newline */
} PyDef;

typedef struct {
    size_t def;  /* index in defs */
    int waiting; /* its body's first statement (docstring or not) is still to come */
} PyOpen;

typedef struct {
    PyDef *defs; /* definitions in the order of their start in the text */
    size_t count, cap;
    PyOpen *stack; /* scratch: the open definitions, innermost last */
    size_t depth, stack_cap;
} PyScan;

void pyscan_init(PyScan *s);
void pyscan_free(PyScan *s);

/* Find every definition of text[0..n) (s->defs, s->count; the previous ones are dropped).
** Any bytes are accepted (a NUL is an ordinary byte). Returns s->count. */
size_t pyscan_run(PyScan *s, const char *text, size_t n);

/* The end of the string literal whose opening quote is at text[q] (triple when the next two
** bytes are the same quote): the offset just past its closing quote, or where an unterminated
** one stops (a single-quoted one at its line's '\n', a triple-quoted one at n). *body_end gets
** the offset of its closing quote (of n or that '\n' when unterminated); *lines counts the
** '\n' inside. */
size_t pyscan_string_end(const char *text, size_t n, size_t q, size_t *body_end, uint64_t *lines);

#endif
