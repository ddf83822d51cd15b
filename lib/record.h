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
    const char *s; /* bytes (NUL-terminated), or NULL when the field is absent */
    size_t n;      /* length */
} Str;

typedef struct {
    Str repo_name;        /* repository ("owner/name" or the archive's base name) */
    Str path;             /* path inside the repository */
    Str content;          /* the file's text, UTF-8 (s NULL: absent, only with content_optional) */
    Str license;          /* license identifier, or absent */
    int64_t size;         /* bytes of content as given in the input, -1 if absent */
    JsonObj obj;          /* all fields of the parsed line (extras are written back raw) */
    Buf store;            /* decoded strings live here */
    size_t err_pos;       /* parse error: byte offset in the line */
    char err[200];        /* parse error: message */
    const char *line;     /* the line parsed last (valid as long as the caller's line) */
    int content_optional; /* set by the caller: a record without `content` parses (instruction
                          ** records: cm-tokenize encode --template, cm-ingest --instructions) */
} Record;

void record_init(Record *r);
void record_free(Record *r);

/* Parse a JSONL line. Requires `content` (a string; with r->content_optional it may be absent,
** content.s NULL); repo_name/path/license must be strings when present; size a number.
** Returns 0, or -1 with r->err / r->err_pos set. */
int record_parse(Record *r, const char *line, size_t len);

/* Is field `key` one of those record_write writes itself (so not an extra)? */
int record_is_known_field(const char *key, size_t klen);

/* Write a record as one JSONL line: repo_name, path, size, license (when known), content,
** then `extra_json` (already-formatted `"k":v` pairs separated by commas, may be NULL), then the
** extra fields of r->obj (not known fields, and not keys that extra_json sets) in input order.
** When r->obj has no fields (a record built by hand), only the explicit ones are written. */
void record_write(Out *o, const Record *r, const char *extra_json, size_t extra_len);

/* Write a record as it came: every field of r->obj raw, in input order (not keys that
** extra_json sets), then extra_json. For records without content (cm-ingest --instructions). */
void record_write_raw(Out *o, const Record *r, const char *extra_json, size_t extra_len);

/* Write a record from its parts (used by cm-ingest). license may be NULL. */
void record_write_parts(Out *o, const char *repo, size_t repo_n, const char *path, size_t path_n,
                        const char *content, size_t content_n, const char *license,
                        const char *extra_json, size_t extra_len);


/*
** Record input: the one JSONL input loop of cm-ingest (JSONL dumps), cm-filter and cm-tokenize.
**
** Rules, the same in every stage: a line holding only spaces, tabs or '\r' carries no record and
** is skipped; a line that is not a valid record (or longer than max_line) is reported as
** "PROG: NAME: line L: byte B: why" and counted; with --on-error fail (skip_bad 0) the input
** stops there ("output stopped at line L (use --on-error skip to go on)") and the status is
** CM_EDATA, with --on-error skip the reader goes on and the status is still CM_EDATA at the end.
** A read error stops the input with CM_EIO. The records before the fault are all delivered.
*/
typedef enum {
    RI_ERR_NONE = 0,
    RI_ERR_OPEN,     /* the input could not be opened */
    RI_ERR_READ,     /* read() failed */
    RI_ERR_TOO_LONG, /* a line longer than max_line */
    RI_ERR_PARSE     /* a line that is not a valid record */
} RecordErr;

typedef struct {
    const char *name; /* input name for messages ("stdin" or the path) */
    int skip_bad;     /* 1: --on-error skip, 0: fail */
    Record rec;       /* the record ri_next returned last */
    LineReader lr;    /* the file's lines (ri_open) */
    int fd;           /* -1 when lines come from elsewhere (ri_parse_line only) */
    uint64_t records; /* records delivered */
    uint64_t bad;     /* bad lines seen */
    uint64_t bytes;   /* bytes of lines read, with their '\n' */
    RecordErr err;    /* kind of the last fault */
    int status;       /* worst so far: CM_OK, CM_EDATA, CM_EIO */
} RecordInput;

/* The one blank-line rule: only spaces, tabs and '\r'. */
int record_line_blank(const char *line, size_t len);

/* For lines from any source (cm-ingest reads them out of archives): set up without a file. */
void ri_init(RecordInput *ri, const char *name, int skip_bad);
/* Parse one line: 1 a record in ri->rec, 0 a blank line, -1 a bad line (message printed,
** counted, status CM_EDATA; the caller stops when !skip_bad). off: the line's byte offset. */
int ri_parse_line(RecordInput *ri, const char *line, size_t len, uint64_t lineno, uint64_t off);

/* Open path ("-" or NULL: stdin) for ri_next. 0, or -1 after "cannot open 'PATH': why"
** (status CM_EIO, err RI_ERR_OPEN). */
int ri_open(RecordInput *ri, const char *path, size_t max_line, int skip_bad);
/* Next record: 1 (in ri->rec), 0 at the end of the input, -1 when the input stops early
** (read error, or a bad line under --on-error fail; message printed, ri->err says which). */
int ri_next(RecordInput *ri);
/* Close the file (not stdin) and free the reader. */
void ri_close(RecordInput *ri);

/*
** Lines parsed on other threads (cm-filter --threads): ri_take_line hands out the lines of an
** ri_open'ed input in order and prints nothing; whoever then meets them in input order skips
** the blank ones (record_line_blank), parses the others (record_parse) and reports each fault
** with ri_report, which prints the message ri_next would have printed, counts it and sets the
** status. (ri->records is not counted on this path.)
*/
/* 1: a line in *line, *len (valid until the next call; its number and byte offset are
** ri->lr.lineno and ri->lr.offset); 0: the end of the input; -1: a fault of line
** ri->lr.lineno, not reported yet: ri->err is RI_ERR_TOO_LONG (the line was skipped, the next
** call goes on) or RI_ERR_READ (the input ends there). */
int ri_take_line(RecordInput *ri, char **line, size_t *len);
/* Report a fault of line `lineno`: RI_ERR_PARSE (byte: its offset in the input, why: the
** record's err), RI_ERR_TOO_LONG or RI_ERR_READ (as ri_take_line returned them). Returns -1
** when the input stops there (a read error; a bad line under --on-error fail, after "output
** stopped at line L"), 0 to go on. */
int ri_report(RecordInput *ri, RecordErr kind, uint64_t lineno, uint64_t byte, const char *why);

#endif
