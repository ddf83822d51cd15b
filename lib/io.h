// SPDX-License-Identifier: MIT
/*
** io.h: buffered output that reports write errors properly, and a line reader with a bound.
**
** Out: every stage writes its data through an Out. A consumer that closes the pipe (EPIPE)
** ends the process quietly with CM_EPIPE after running the registered cleanup; any other
** write error (ENOSPC, EFBIG from `ulimit -f`, EIO) is reported as
** "PROG: cannot write to 'NAME': REASON" and ends it with CM_EIO.
**
** LineReader: reads '\n'-terminated lines from a file descriptor; a line longer than
** max_line is an error (memory stays bounded by max_line plus the read buffer).
*/
#ifndef CM_IO_H
#define CM_IO_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

typedef struct {
    int fd;           /* destination */
    const char *name; /* for messages: "stdout" or the file name */
    char *buf;        /* pending bytes */
    size_t len;       /* bytes pending */
    size_t cap;       /* buffer size */
    uint64_t written; /* bytes handed to the kernel so far */
} Out;

void out_init(Out *o, int fd, const char *name, size_t cap);
void out_write(Out *o, const void *p, size_t n);
void out_putc(Out *o, char c);
void out_puts(Out *o, const char *s);
void out_flush(Out *o);
/* Flush and release the buffer (does not close fd). */
void out_done(Out *o);

/* A function run before the process exits because of a write error (remove temp files...). */
void out_on_fatal(void (*fn)(void));

typedef struct {
    int fd;            /* source */
    const char *name;  /* for messages: "stdin" or the file name */
    char *buf;         /* buffered bytes */
    size_t start, end; /* unread bytes are buf[start..end) */
    size_t cap;        /* allocated size */
    size_t max_line;   /* longest accepted line, without its '\n' */
    uint64_t lineno;   /* number of the line last returned (1-based) */
    uint64_t offset;   /* byte offset of the line last returned */
    uint64_t consumed; /* bytes returned so far (offset of the next line) */
    int eof;           /* read() returned 0 */
    int err;           /* errno of a failed read, or 0 */
    int quiet;         /* 1: lr_next prints nothing, its caller reports the fault (0 by lr_init) */
} LineReader;

void lr_init(LineReader *r, int fd, const char *name, size_t max_line);
/* Next line without its '\n' (a final line without '\n' counts). Returns 1 and sets line, len;
** 0 at end of input; -1 on a read error or a line longer than max_line (message printed,
** the rest of that line is skipped so the caller may go on). The pointer stays valid until
** the next call. */
int lr_next(LineReader *r, char **line, size_t *len);
void lr_free(LineReader *r);

/* Progress on stderr, shown only when stderr is a terminal (or forced). */
typedef struct {
    int on;          /* 1 show, 0 hide */
    double t0, last; /* start time, last print */
    int shown;       /* something was printed (needs a final newline) */
} Progress;

/* mode: -1 decide by isatty(2), 0 off, 1 on */
void progress_init(Progress *p, int mode);
/* Print "\rPROG: WHAT" at most every 0.25 s; fmt gets the elapsed seconds appended by caller. */
void progress_update(Progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_end(Progress *p);

/* Read a whole (small) file: 0 with *data (malloc'd, NUL-terminated) and *n; CM_EIO after
** "cannot open/read 'PATH': why"; or -1 quietly when it does not exist and missing_ok. */
int read_whole_file(const char *path, int missing_ok, char **data, size_t *n);

#endif
