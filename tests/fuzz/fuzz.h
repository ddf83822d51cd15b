// SPDX-License-Identifier: MIT
/*
** fuzz.h: helpers shared by the libFuzzer targets of tests/fuzz/ (header-only).
**
** Every target file fuzz_NAME.c holds LLVMFuzzerTestOneInput() and, under #ifdef FUZZ_SEEDS,
** a main() that writes its seed corpus into the directory given as argv[1] (tools/fuzz.sh
** builds each file twice: once with -fsanitize=fuzzer, once with -DFUZZ_SEEDS). Seeds are made
** by codemill's own writers, never copied from third-party files.
**
** A line "fuzz-needs: FOLDER ..." in a target's opening comment names the stage folders whose
** code it links besides lib/; tools/fuzz.sh skips a target while such a folder has no code.
*/
#ifndef CM_FUZZ_H
#define CM_FUZZ_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hash.h"

/*
** Return a read-only-from-the-start file descriptor holding data[0..size): an anonymous
** memory file, so readers that take an fd (LineReader, TsReader) see a real file. Aborts on
** failure (a harness fault, not a finding).
*/
static inline int fuzz_memfd(const void *data, size_t size)
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0) {
        perror("memfd_create");
        abort();
    }
    const char *p = data;
    size_t left = size;
    while (left) {
        ssize_t k = write(fd, p, left);
        if (k < 0) {
            if (errno == EINTR) continue;
            perror("write");
            abort();
        }
        p += k;
        left -= (size_t)k;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) {
        perror("lseek");
        abort();
    }
    return fd;
}

/*
** Read the whole of fd (from offset 0) into a malloc'd buffer; *n gets its length.
*/
static inline char *fuzz_slurp(int fd, size_t *n)
{
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0 || lseek(fd, 0, SEEK_SET) != 0) {
        perror("lseek");
        abort();
    }
    char *b = malloc((size_t)end + 1);
    if (!b) abort();
    size_t got = 0;
    while (got < (size_t)end) {
        ssize_t k = read(fd, b + got, (size_t)end - got);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            perror("read");
            abort();
        }
        got += (size_t)k;
    }
    b[got] = 0;
    *n = got;
    return b;
}

/*
** Seed generators: write data[0..n) to DIR/NAME; exits with status 1 on failure.
*/
static inline void seed_write(const char *dir, const char *name, const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "seeds: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* Same for a NUL-terminated string. */
static inline void seed_str(const char *dir, const char *name, const char *s)
{
    seed_write(dir, name, s, strlen(s));
}

/*
** For files with a 256-byte header whose last 8 bytes are XXH3-64 of its first 248 (shards,
** checkpoints): when flags has bit 1, store XXH3-64 of the payload (from payload_off) at
** sum_off; when bit 0, recompute the header checksum. Lets the fuzzer get past both checks.
*/
static inline void fuzz_fix_header_sums(unsigned char *s, size_t n, int flags, size_t payload_off,
                                        size_t sum_off)
{
    if (n < 256) return;
    if ((flags & 2) && n >= payload_off) {
        uint64_t c = hash64(s + payload_off, n - payload_off);
        memcpy(s + sum_off, &c, 8);
    }
    if (flags & 1) {
        uint64_t c = hash64(s, 248);
        memcpy(s + 248, &c, 8);
    }
}

/* Abort with a message: a property the target checks does not hold (libFuzzer saves the input). */
#define FUZZ_ASSERT(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
            abort(); \
        } \
    } while (0)

#endif
