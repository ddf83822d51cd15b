// SPDX-License-Identifier: MIT
/*
** record.h: the codemill JSONL record (format v1, docs/FORMATS.md "JSONL record").
**
** One JSON object per line. Field names follow the codeparrot / The Stack datasets:
**   repo_name, path, content, size, license
** plus codemill's own fields (documented in docs/FORMATS.md), and any other field of the input,
** which is passed through unchanged, in input order, after the known ones.
*/
#ifndef CM_RECORD_H
#define CM_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"
#include "io.h"
#include "json.h"

#define CM_RECORD_VERSION 1

typedef struct {
    const char *s;       /* bytes (NUL-terminated), or NULL when the field is absent */
    size_t n;            /* length */
} Str;

typedef struct {
    Str repo_name;       /* repository ("owner/name" or the archive's base name) */
    Str path;            /* path inside the repository */
    Str content;         /* the file's text, UTF-8 */
    Str license;         /* license identifier, or absent */
    int64_t size;        /* bytes of content as given in the input, -1 if absent */
    JsonObj obj;         /* all fields of the parsed line (extras are written back raw) */
    Buf store;           /* decoded strings live here */
    size_t err_pos;      /* parse error: byte offset in the line */
    char err[200];       /* parse error: message */
} Record;

void record_init(Record *r);
void record_free(Record *r);

/* Parse a JSONL line. Requires `content` (a string); repo_name/path/license must be strings
** when present; size a number. Returns 0, or -1 with r->err / r->err_pos set. */
int record_parse(Record *r, const char *line, size_t len);

/* Is field `key` one of those record_write writes itself (so not an extra)? */
int record_is_known_field(const char *key, size_t klen);

/* Write a record as one JSONL line: repo_name, path, size, license (when known), content,
** then `extra_json` (already-formatted `"k":v` pairs separated by commas, may be NULL), then the
** extra fields of r->obj (not known fields, and not keys that extra_json sets) in input order.
** When r->obj has no fields (a record built by hand), only the explicit ones are written. */
void record_write(Out *o, const Record *r, const char *extra_json, size_t extra_len);

/* Write a record from its parts (used by cm-ingest). license may be NULL. */
void record_write_parts(Out *o, const char *repo, size_t repo_n, const char *path, size_t path_n,
                        const char *content, size_t content_n, const char *license,
                        const char *extra_json, size_t extra_len);

#endif
