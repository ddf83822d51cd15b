// SPDX-License-Identifier: MIT
/*
** io.c: Out (buffered, error-checked output), LineReader (bounded lines) and Progress.
*/
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void (*fatal_hook)(void);

void out_on_fatal(void (*fn)(void))
{
    fatal_hook = fn;
}

void out_init(Out *o, int fd, const char *name, size_t cap)
{
    o->fd = fd;
    o->name = name;
    o->cap = cap ? cap : (1u << 18);
    o->buf = xmalloc(o->cap);
    o->len = 0;
    o->written = 0;
}

static void out_write_raw(Out *o, const void *p, size_t n)
{
    if (write_all(o->fd, p, n) < 0) {
        int e = errno;
        if (fatal_hook) fatal_hook();
        if (e == EPIPE) exit(CM_EPIPE);
        die(CM_EIO, "cannot write to '%s': %s", o->name, strerror(e));
    }
    o->written += n;
}

void out_flush(Out *o)
{
    if (o->len) {
        size_t n = o->len;
        o->len = 0;
        out_write_raw(o, o->buf, n);
    }
}

void out_write(Out *o, const void *p, size_t n)
{
    if (o->len + n <= o->cap) {
        memcpy(o->buf + o->len, p, n);
        o->len += n;
        return;
    }
    out_flush(o);
    if (n >= o->cap) {
        out_write_raw(o, p, n);
        return;
    }
    memcpy(o->buf, p, n);
    o->len = n;
}

void out_putc(Out *o, char c)
{
    if (o->len == o->cap) out_flush(o);
    o->buf[o->len++] = c;
}

void out_puts(Out *o, const char *s)
{
    out_write(o, s, strlen(s));
}

void out_done(Out *o)
{
    if (!o->buf) return;
    out_flush(o);
    free(o->buf);
    o->buf = NULL;
}

void lr_init(LineReader *r, int fd, const char *name, size_t max_line)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->name = name;
    r->max_line = max_line ? max_line : ((size_t)256 << 20);
    r->cap = 1u << 20;
    r->buf = xmalloc(r->cap);
}

/* Read more bytes into the buffer; returns bytes read, 0 at EOF, -1 on error. */
static ssize_t lr_fill(LineReader *r)
{
    if (r->start > 0 && r->start == r->end) r->start = r->end = 0;
    if (r->end == r->cap) {
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        } else {
            r->cap *= 2;
            r->buf = xrealloc(r->buf, r->cap);
        }
    }
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            r->err = errno;
            return -1;
        }
        if (n == 0) r->eof = 1;
        r->end += (size_t)n;
        return n;
    }
}

int lr_next(LineReader *r, char **line, size_t *len)
{
    size_t scanned = 0;
    for (;;) {
        char *p = r->buf + r->start;
        size_t avail = r->end - r->start;
        char *nl = scanned < avail ? memchr(p + scanned, '\n', avail - scanned) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - p);
            r->lineno++;
            r->offset = r->consumed;
            r->consumed += n + 1;
            r->start += n + 1;
            if (n > r->max_line) {
                if (!r->quiet)
                    error("%s: line %llu: longer than the limit of %zu bytes", r->name,
                          (unsigned long long)r->lineno, r->max_line);
                return -1;
            }
            *line = p;
            *len = n;
            return 1;
        }
        scanned = avail;
        if (avail > r->max_line) {
            /* skip the rest of the oversized line without keeping it */
            r->lineno++;
            r->offset = r->consumed;
            if (!r->quiet)
                error("%s: line %llu: longer than the limit of %zu bytes", r->name,
                      (unsigned long long)r->lineno, r->max_line);
            uint64_t skipped = avail;
            r->start = r->end = 0;
            for (;;) {
                if (r->eof) break;
                ssize_t k = lr_fill(r);
                if (k < 0) break;
                char *q = memchr(r->buf, '\n', r->end);
                if (q) {
                    size_t m = (size_t)(q - r->buf) + 1;
                    skipped += m;
                    r->start = m;
                    break;
                }
                skipped += r->end;
                r->start = r->end = 0;
            }
            r->consumed += skipped;
            return -1;
        }
        if (r->eof) {
            if (avail == 0) return 0;
            r->lineno++;
            r->offset = r->consumed;
            r->consumed += avail;
            *line = p;
            *len = avail;
            r->start = r->end;
            return 1;
        }
        if (lr_fill(r) < 0) {
            if (!r->quiet) error("cannot read '%s': %s", r->name, strerror(r->err));
            return -1;
        }
    }
}

void lr_free(LineReader *r)
{
    free(r->buf);
    r->buf = NULL;
}

void progress_init(Progress *p, int mode)
{
    memset(p, 0, sizeof *p);
    p->on = mode < 0 ? isatty(2) : mode;
    p->t0 = p->last = now_sec();
}

void progress_update(Progress *p, const char *fmt, ...)
{
    if (!p->on) return;
    double t = now_sec();
    if (t - p->last < 0.25) return;
    p->last = t;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r%s: %s (%.0fs)\033[K", cm_prog, msg, t - p->t0);
    p->shown = 1;
}

void progress_end(Progress *p)
{
    if (p->on && p->shown) fputc('\n', stderr);
    p->shown = 0;
}

int read_whole_file(const char *path, int missing_ok, char **data, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (missing_ok && errno == ENOENT) return -1;
        error("cannot open '%s': %s", path, strerror(errno));
        return CM_EIO;
    }
    Buf b = { 0 };
    char tmp[1 << 16];
    ssize_t r;
    while ((r = read(fd, tmp, sizeof tmp)) != 0) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            buf_free(&b);
            error("cannot read '%s': %s", path, strerror(e));
            return CM_EIO;
        }
        buf_add(&b, tmp, (size_t)r);
    }
    close(fd);
    if (!b.buf) buf_grow(&b, 1);
    *data = buf_detach(&b, n);
    return 0;
}
