// SPDX-License-Identifier: MIT
/*
** util.h: errors, exit codes, allocation and small string buffers shared by every codemill stage.
**
** Conventions (see docs/FORMATS.md and README.md "Exit codes"):
**   error()/warn() print "PROG: message" on stderr; error() returns -1 so callers can
**   `return error(...)`; die() prints and exits with the given status.
*/
#ifndef CM_UTIL_H
#define CM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

/* Exit statuses of every codemill executable. */
enum {
    CM_OK = 0,     /* everything read was processed */
    CM_EDATA = 1,  /* some input was bad (corrupt archive, malformed line, ...): good data kept */
    CM_EUSAGE = 2, /* bad command line */
    CM_EIO = 3,    /* cannot read or write (missing file, disk full, file too large) */
    CM_EFORMAT =
        4, /* a file codemill needs (tokenizer, shard, index, checkpoint) is wrong or damaged */
    CM_EINTERNAL = 5, /* out of memory or a bug */
    CM_EINTR = 130,   /* stopped by SIGINT/SIGTERM after saving what could be saved */
    CM_EPIPE = 141    /* the consumer closed our stdout: quiet stop, like SIGPIPE */
};

extern const char *cm_prog; /* "cm-ingest", ... set by cm_init() */

/* Call first in main(): sets the program name, ignores SIGPIPE and SIGXFSZ so that write
** errors come back as EPIPE / EFBIG and are reported instead of killing the process. */
void cm_init(const char *prog);
/* In a worker thread: block SIGINT and SIGTERM, so that they reach the main thread (which
** finishes its unit of work and stops cleanly). */
void cm_thread_block_stop_signals(void);

void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
void vreport(const char *prefix, const char *fmt, va_list ap);

#define xmalloc(n) xmalloc_at((n), __FILE__, __LINE__)
#define xcalloc(n, s) xcalloc_at((n), (s), __FILE__, __LINE__)
#define xrealloc(p, n) xrealloc_at((p), (n), __FILE__, __LINE__)
void *xmalloc_at(size_t n, const char *file, int line);
void *xcalloc_at(size_t n, size_t size, const char *file, int line);
void *xrealloc_at(void *p, size_t n, const char *file, int line);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* A growable byte buffer, always NUL-terminated after len. */
typedef struct {
    char *buf;  /* data (NULL until first growth) */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
} Buf;

void buf_grow(Buf *b, size_t extra);
void buf_add(Buf *b, const void *data, size_t n);
void buf_addc(Buf *b, char c);
void buf_adds(Buf *b, const char *s);
void buf_addf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(Buf *b);
void buf_free(Buf *b);
char *buf_detach(Buf *b, size_t *len);

/* Parse "123", "64k", "64K", "10M", "2G" (powers of 1024) into *out; 0 or -1. */
int parse_size(const char *s, uint64_t *out);
/* Parse a decimal integer in [lo, hi]; 0 or -1. */
int parse_long(const char *s, long lo, long hi, long *out);
/* Parse a double; 0 or -1. */
int parse_double(const char *s, double *out);

/* Split "a,b,c" into a NULL-terminated array of strings (empty items dropped); free with strv_free. */
char **strv_split(const char *s, char sep, int *n);
void strv_free(char **v);

/* Monotonic time in seconds. */
double now_sec(void);

/* Length of the longest prefix of s[0..n) that is valid UTF-8 (RFC 3629: no surrogates,
** no overlongs, max U+10FFFF). Returns n when the whole input is valid. */
size_t utf8_valid_prefix(const unsigned char *s, size_t n);

/* Copy s into out replacing each invalid UTF-8 sequence by U+FFFD; returns the number of
** replacements made. */
size_t utf8_repair(const unsigned char *s, size_t n, Buf *out);

/* Write all of buf to fd, retrying on EINTR; 0 or -1 with errno set. */
int write_all(int fd, const void *buf, size_t n);

/* fsync a directory so that a rename inside it is durable; 0 or -1. */
int fsync_dir(const char *dir);

#endif
