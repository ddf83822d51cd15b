// SPDX-License-Identifier: MIT
/*
** template.h: instruction templates (docs/FORMATS.md "Instruction template"): how an instruction
** record (instruction, input, output, system) becomes prompt text + response text. The one
** renderer of `cm-tokenize encode --template` and `cm-train complete --template`, so a model is
** asked exactly as it was trained.
**
** A template is built in (`alpaca`, Stanford Alpaca's prompt with and without input) or a file
** (format in docs/FORMATS.md) with {instruction}, {input}, {system} placeholders in the prompt and
** {output} in the response. The token sequence of an example is encode(prompt) ++
** encode(response) ++ end-of-text, so the prompt length in tokens is exact.
*/
#ifndef CM_TEMPLATE_H
#define CM_TEMPLATE_H

#include <stddef.h>
#include "util.h"   /* Buf */
#include "record.h" /* Str */

enum { TPL_INSTRUCTION, TPL_INPUT, TPL_OUTPUT, TPL_SYSTEM, TPL_NFIELDS };

typedef struct {
    char *name;            /* "alpaca", or the file's path */
    char *prompt;          /* prompt text with placeholders, used when the input is non-empty */
    char *prompt_no_input; /* used when the input is absent or empty (may equal prompt) */
    char *response;        /* response text with placeholders ("{output}") */
} Template;

/* Names of the built-in templates, NULL-terminated (for --help and messages). */
extern const char *const template_builtin_names[];

/* spec: a built-in name or a template file. 0, or -1 with a message in err naming the file,
** the line and what is wrong (unknown placeholder, unterminated brace, missing part). */
int template_load(Template *t, const char *spec, char *err, size_t errlen);
void template_free(Template *t);

/* template_load with the exit status of what went wrong: CM_OK; CM_EUSAGE (spec is neither a
** built-in name nor an existing file); CM_EIO (the file cannot be read); CM_EFORMAT (the file is
** not a valid template). template_load is this with 0 / -1. */
int template_open(Template *t, const char *spec, char *err, size_t errlen);
/* Parse the template file text data[0..n) (name: for messages and t->name). 0, or -1 with a
** message "NAME: line L: why" in err. */
int template_parse(Template *t, const char *name, const char *data, size_t n, char *err,
                   size_t errlen);

/* Render prompt and response (appended to the Bufs) from field values (s NULL: absent).
** 0, or -1 with a message in err: a required field absent (instruction, output), or an empty
** output. */
int template_render(const Template *t, const Str values[TPL_NFIELDS], Buf *prompt, Buf *response,
                    char *err, size_t errlen);
/* Render the prompt only (output not needed: `cm-train complete`). 0, or -1 with a message in
** err (the instruction absent). */
int template_render_prompt(const Template *t, const Str values[TPL_NFIELDS], Buf *prompt, char *err,
                           size_t errlen);
/* Does any of t's texts hold the placeholder of role r? */
int template_uses(const Template *t, int r);
/* The field role of a placeholder name ("instruction", "input", "output", "system"), or -1. */
int template_role(const char *name, size_t n);
/* The name of role r (TPL_INSTRUCTION...). */
const char *template_role_name(int r);

#endif
