// SPDX-License-Identifier: MIT
/*
** ingest-jsonbench.c: measure the JSONL record reader and writer of lib/record.h (and jansson,
** the general-purpose library a C programmer would reach for, on the same bytes) in MB/s.
**
**   ingest-jsonbench FILE.jsonl [ROUNDS]
**
** Loads FILE into memory (so that only parsing is timed), then for ROUNDS rounds (default 5)
** times record_parse over every line, record_write of every parsed record into an Out on
** /dev/null, and jansson's json_loadb over every line. Prints one line per measurement, best
** round: "parse MB/s", "emit MB/s", "jansson MB/s" (MB = 1e6 bytes of JSONL input).
** A benchmark helper, not a test: it asserts nothing about speed.
*/
#include "util.h"
#include "io.h"
#include "record.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* jansson, declared here because <jansson.h> and lib/json.h both define JSON_OBJECT etc.
** A freshly loaded value has one reference, so json_delete is what json_decref would do. */
typedef struct json_t json_t;
json_t *json_loadb(const char *buffer, size_t buflen, size_t flags, void *error);
void json_delete(json_t *json);

/*
** Read the whole file into a Buf; exits on error.
*/
static void load(const char *path, Buf *b)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) die(CM_EIO, "cannot open '%s'", path);
    for (;;) {
        buf_grow(b, 1 << 20);
        ssize_t k = read(fd, b->buf + b->len, b->cap - b->len - 1);
        if (k < 0) die(CM_EIO, "cannot read '%s'", path);
        if (k == 0) break;
        b->len += (size_t)k;
    }
    close(fd);
}

int main(int argc, char **argv)
{
    cm_init("ingest-jsonbench");
    if (argc < 2) die(CM_EUSAGE, "usage: ingest-jsonbench FILE.jsonl [ROUNDS]");
    long rounds = 5;
    if (argc > 2 && parse_long(argv[2], 1, 1000, &rounds)) die(CM_EUSAGE, "bad ROUNDS");
    Buf in = { 0 };
    load(argv[1], &in);
    /* line table */
    size_t nl = 0, cap = 1024;
    size_t *off = xmalloc(cap * sizeof *off), *len = xmalloc(cap * sizeof *len);
    for (size_t p = 0; p < in.len;) {
        char *e = memchr(in.buf + p, '\n', in.len - p);
        size_t k = e ? (size_t)(e - (in.buf + p)) : in.len - p;
        if (nl == cap) {
            cap *= 2;
            off = xrealloc(off, cap * sizeof *off);
            len = xrealloc(len, cap * sizeof *len);
        }
        off[nl] = p;
        len[nl++] = k;
        p += k + 1;
    }
    double best_parse = 1e9, best_emit = 1e9, best_jansson = 1e9;
    Record r;
    record_init(&r);
    int devnull = open("/dev/null", O_WRONLY);
    Out o;
    out_init(&o, devnull, "/dev/null", 8u << 20);
    size_t bad = 0;
    for (long k = 0; k < rounds; k++) {
        double t0 = now_sec();
        for (size_t i = 0; i < nl; i++) bad += record_parse(&r, in.buf + off[i], len[i]) != 0;
        double t1 = now_sec();
        double emit = 0;
        for (size_t i = 0; i < nl; i++) { /* emit = write time only, parse excluded */
            if (record_parse(&r, in.buf + off[i], len[i])) continue;
            double a = now_sec();
            record_write(&o, &r, "\"source\":\"bench\"", 16);
            emit += now_sec() - a;
        }
        double t2 = now_sec();
        for (size_t i = 0; i < nl; i++) {
            json_t *j = json_loadb(in.buf + off[i], len[i], 0, NULL);
            if (j) json_delete(j);
        }
        double t3 = now_sec();
        if (t1 - t0 < best_parse) best_parse = t1 - t0;
        if (emit < best_emit) best_emit = emit;
        if (t3 - t2 < best_jansson) best_jansson = t3 - t2;
    }
    out_flush(&o);
    double mb = (double)in.len / 1e6;
    printf("lines %zu bytes %zu bad %zu\n", nl, in.len, bad / (size_t)rounds);
    printf("parse %.0f MB/s\n", mb / best_parse);
    printf("emit %.0f MB/s\n", mb / best_emit);
    printf("jansson %.0f MB/s\n", mb / best_jansson);
    out_done(&o);
    close(devnull);
    record_free(&r);
    free(off);
    free(len);
    buf_free(&in);
    return 0;
}
