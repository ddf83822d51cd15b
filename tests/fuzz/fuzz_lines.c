// SPDX-License-Identifier: MIT
/*
** fuzz_lines.c: libFuzzer target for the bounded line reader (lib/io.h LineReader) that every
** JSONL stage reads its input with.
**
** Input: byte 0 picks max_line (1..64) so that over-long lines are common; the rest is the
** input file. Properties: each line returned has no '\n', is at most max_line bytes, starts at
** the byte offset the reader reports, and line numbers count every line (skipped ones too);
** the lines and errors together account for the whole input.
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "io.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t max_line = 1 + data[0] % 64;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    size_t total_nl = 0;
    for (size_t i = 0; i < n; i++) total_nl += in[i] == '\n';
    size_t lines_in = total_nl + (n && in[n - 1] != '\n');
    int fd = fuzz_memfd(in, n);
    LineReader r;
    lr_init(&r, fd, "fuzz.jsonl", max_line);
    char *line;
    size_t len;
    int rc;
    uint64_t good = 0, bad = 0, last_lineno = 0;
    while ((rc = lr_next(&r, &line, &len)) != 0) {
        FUZZ_ASSERT(r.lineno > last_lineno);
        last_lineno = r.lineno;
        if (rc < 0) {
            bad++;
            continue;
        }
        good++;
        FUZZ_ASSERT(len <= max_line);
        FUZZ_ASSERT(memchr(line, '\n', len) == NULL);
        FUZZ_ASSERT(r.offset + len <= n);
        FUZZ_ASSERT(memcmp(line, in + r.offset, len) == 0);
        FUZZ_ASSERT(r.offset + len == n || in[r.offset + len] == '\n');
    }
    FUZZ_ASSERT(good + bad == lines_in);
    FUZZ_ASSERT(r.lineno == lines_in);
    lr_free(&r);
    close(fd);
    return 0;
}

#ifdef FUZZ_SEEDS
int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    const char *d = argv[1];
    seed_str(d, "short-lines", "\x20{\"content\":\"a\"}\n{\"content\":\"b\"}\n");
    seed_str(d, "no-final-nl",
             "\x10"
             "abc\ndef");
    seed_str(d, "too-long",
             "\x04"
             "aaaaaaaaaaaa\nb\nccccccc");
    seed_str(d, "empty-lines", "\x08\n\n\nx\n\n");
    seed_str(d, "crlf",
             "\x30"
             "a\r\nb\r\n");
    return 0;
}
#endif
