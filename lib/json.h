// SPDX-License-Identifier: MIT
/*
** json.h: a strict, fast JSON reader and writer for one-object-per-line records (JSONL).
**
** Why not a general JSON library: records are flat objects whose big value is one string
** (`content`). Measured on this machine, jansson parses such JSONL at 61-72 MB/s, far below
** decompression speed; this reader validates the whole line (RFC 8259, UTF-8 checked) but only
** decodes the strings a caller asks for, and runs at memory speed on long strings
** (see docs/BENCHMARKS.md). Nested values (arrays, objects) are validated and kept as raw text.
*/
#ifndef CM_JSON_H
#define CM_JSON_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"
#include "io.h"

enum { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

typedef struct {
    const char *key; /* key text between the quotes, still escaped */
    size_t klen;     /* its length */
    int type;        /* JSON_* */
    const char *raw; /* the value's JSON text; for strings, the text between the quotes */
    size_t rawlen;   /* its length */
    int escaped;     /* strings: contains a backslash escape */
    size_t dec_off;  /* strings, when the object had a decode buffer: the decoded value at */
    size_t dec_len;  /* decode->buf + dec_off, dec_len bytes, then a NUL */
} JsonField;

typedef struct {
    JsonField *f;   /* fields in input order */
    int n;          /* count */
    int cap;        /* allocated */
    size_t err_pos; /* byte offset of the first error in the line */
    char err[160];  /* what went wrong */
    Buf *decode;    /* if set, top-level string values are decoded into it as they are parsed
                    ** (one pass over the text, not a scan and then a decode) */
} JsonObj;

/* Parse one JSON object spanning line[0..len) (surrounding white space allowed).
** Returns 0, or -1 with o->err and o->err_pos set. Pointers refer into line. */
int json_parse_object(JsonObj *o, const char *line, size_t len);
void json_obj_free(JsonObj *o);
/* Field with this (unescaped ASCII) key, or NULL. */
const JsonField *json_get(const JsonObj *o, const char *key);

/* Append the decoded value of a string field's raw text to out. Lone surrogates in \u escapes
** become U+FFFD. Returns 0 (the parser already validated the text). */
int json_decode_string(const char *raw, size_t rawlen, Buf *out);
/* Parse an integer field; 0 or -1. */
int json_get_int(const JsonObj *o, const char *key, int64_t *out);

/* Room json_escape_into needs for n input bytes (worst case \u00XX per byte, plus a block). */
#define JSON_ESCAPE_MAX(n) (6 * (size_t)(n) + 32)
/* Escape s[0..n) as a JSON string literal with its quotes into dst (JSON_ESCAPE_MAX(n) bytes
** of room); returns the bytes written. */
size_t json_escape_into(char *dst, const char *s, size_t n);
/* Append s[0..n) to out as a JSON string literal with its quotes. */
void json_escape(Buf *out, const char *s, size_t n);
/* Same, straight into an Out. */
void json_escape_out(Out *o, const char *s, size_t n);

/*
** The one JSON field writer: objects built into a Buf with commas and key escaping done once.
**   JsonWriter w; jw_begin(&w, &buf); jw_u64(&w, "records", n); jw_object(&w, "skipped");
**   jw_u64(&w, "binary", k); jw_close(&w); jw_close(&w);     ->  {"records":1,"skipped":{"binary":2}}
** jw_fmt writes a value formatted by printf (numbers in the precision a format wants).
*/
typedef struct {
    Buf *b;          /* destination */
    int depth;       /* open objects/arrays */
    uint64_t first;  /* bit d: nothing written yet at depth d */
    uint64_t arrays; /* bit d: depth d is an array */
} JsonWriter;

void jw_begin(JsonWriter *w, Buf *b);           /* "{" */
void jw_object(JsonWriter *w, const char *key); /* "key":{ (key NULL inside an array) */
void jw_array(JsonWriter *w, const char *key);  /* "key":[ */
void jw_close(JsonWriter *w);                   /* } or ] of the innermost open one */
void jw_str(JsonWriter *w, const char *key, const char *s, size_t n);
void jw_cstr(JsonWriter *w, const char *key, const char *s); /* NULL writes null */
void jw_u64(JsonWriter *w, const char *key, uint64_t v);
void jw_i64(JsonWriter *w, const char *key, int64_t v);
void jw_bool(JsonWriter *w, const char *key, int v);
void jw_fmt(JsonWriter *w, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
