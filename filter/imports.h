// SPDX-License-Identifier: MIT
/*
** imports.h: which of a chosen set of Python modules a source file imports.
**
** The rule (docs/FORMATS.md "cm-filter"): a PCRE2 JIT pattern finds every `import` keyword
** (`import` followed by a space, tab, `\`, `(` or `*`); each hit is then checked in C:
**   - it starts a statement: before it on its line there is only indentation, or `;` / `:`
**     (`try: import numpy`), or a `from DOTTED` clause that itself starts the statement;
**   - it is code: a small lexer run from the start of the file (lazily, only up to the hit)
**     tracks comments, '...', "...", and triple-quoted strings with any prefix (r, b, f, u);
**   - the imported names are read: `import a.b as c, d` gives a.b and d; `from a.b import x`
**     gives a.b; relative imports (`from . import x`, `from .a import x`) give nothing.
** A wanted module M matches a name equal to M or starting with "M." (so numpy matches
** numpy.linalg, not numpyro; sklearn.model_selection may itself be wanted).
** Known limits: a `from` clause split by a backslash before `import` is missed; statements in
** strings built at run time (exec) are not seen.
*/
#ifndef CM_FILTER_IMPORTS_H
#define CM_FILTER_IMPORTS_H

#include <stddef.h>
#include <stdint.h>

#define IMPORTS_MAX 64       /* most modules one scanner looks for */
#define IMPORTS_NAME_MAX 128 /* longest module name */
/* Room for the longest `"imports":[...]` field imports_format writes. */
#define IMPORTS_FIELD_MAX (IMPORTS_MAX * (IMPORTS_NAME_MAX + 3) + 16)

/* A scanner holds its PCRE2 match data: one thread at a time uses it (give each its own). */
typedef struct ImportScanner ImportScanner;

/* Compile the scanner for the modules in names[0..n) (n <= IMPORTS_MAX). Returns NULL with
** a message printed when a name is not a dotted Python identifier of at most
** IMPORTS_NAME_MAX bytes, or PCRE2 fails. */
ImportScanner *imports_new(char *const *names, int n);
void imports_free(ImportScanner *s);

/* Bit i of the result is set when the text imports names[i]. Stops scanning early once every
** module has been seen. */
uint64_t imports_scan(ImportScanner *s, const char *text, size_t n);

/* Append `"imports":["a","b"]` for the bits of mask, in the order the names were given,
** to out (NUL-terminated, at most cap bytes including the NUL); returns its length. */
size_t imports_format(const ImportScanner *s, uint64_t mask, char *out, size_t cap);

#endif
