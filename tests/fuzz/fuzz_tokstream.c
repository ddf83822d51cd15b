// SPDX-License-Identifier: MIT
/*
** fuzz_tokstream.c: libFuzzer target for the token stream reader (lib/tokstream.h), the input
** of `cm-shards pack`.
**
** Input: a candidate stream, read through a memory file with ts_open/ts_next to the end or to
** the first error. Random bytes almost never pass a frame's checksum, so when the first input
** byte is odd the rest is taken as the stream with every document frame's checksum fixed up
** first (fix_checksums): that lets the fuzzer reach the checks after the checksum. Properties: every returned document has ids < vocab_size, its eot id last
** is not required by the reader but its ids are readable (aligned) and its meta lies inside
** the input; an error leaves a message naming the input.
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "tokstream.h"
#include "fuzz.h"

#include "hash.h"
#include "le.h"

/*
** Walk the frames of stream s[0..n) (header, then DOC1 or DOC2 frames and END1, then maybe
** another header) and store the right checksum in each whole document frame; stops at the
** first frame it cannot follow.
*/
static void fix_checksums(unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i + 40 <= n && !memcmp(s + i, TS_MAGIC, 8)) {
        uint64_t jl = le_get64(s + i + 32);
        if (jl > n - i - 40) return;
        i += 40 + (size_t)jl;
        for (;;) {
            size_t fh = i + 20 <= n && !memcmp(s + i, "DOC2", 4) ? 20
                : i + 16 <= n && !memcmp(s + i, "DOC1", 4)       ? 16
                                                                 : 0;
            if (!fh) break;
            uint32_t ml = le_get32(s + i + 4), nt = le_get32(s + i + 8);
            uint64_t len = fh + (uint64_t)ml + 4 * (uint64_t)nt;
            if (len > n - i) return;
            le_put32(s + i + 12, (uint32_t)hash64(s + i + 16, (size_t)len - 16));
            i += (size_t)len;
        }
        if (i + 24 <= n && !memcmp(s + i, "END1", 4))
            i += 24;
        else
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    size--;
    if (data[0] & 1) fix_checksums(s, size);
    int fd = fuzz_memfd(s, size);
    free(s);
    TsReader r;
    if (ts_open(&r, fd, "fuzz.tok") == 0) {
        FUZZ_ASSERT(r.hdr.json && r.hdr.json_len <= size);
        TsDoc d;
        int rc;
        uint64_t sum = 0;
        while ((rc = ts_next(&r, &d)) == 1) {
            FUZZ_ASSERT(((uintptr_t)d.ids & 3) == 0);
            for (uint32_t i = 0; i < d.n; i++) {
                FUZZ_ASSERT(d.ids[i] < r.hdr.vocab_size);
                sum += d.ids[i];
            }
            FUZZ_ASSERT(d.meta_len <= size);
            if (d.meta_len) sum += (unsigned char)d.meta[d.meta_len - 1];
        }
        if (rc < 0) FUZZ_ASSERT(strncmp(r.err, "fuzz.tok: ", 10) == 0);
        (void)sum;
    } else {
        FUZZ_ASSERT(strncmp(r.err, "fuzz.tok: ", 10) == 0);
    }
    ts_close(&r);
    close(fd);
    return 0;
}

#ifdef FUZZ_SEEDS
/*
** Write one stream made by the real writer into DIR/NAME: ndocs documents of a few ids each,
** optionally without its end frame (a killed producer) or twice (concatenated streams).
*/
static void write_stream(const char *dir, const char *name, int ndocs, int with_end, int twice)
{
    static const char json[] = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},"
                               "\"merges\":[]},\"added_tokens\":[]}";
    int fd = fuzz_memfd("", 0);
    Out o;
    out_init(&o, fd, "memfd", 0);
    out_putc(&o, 1); /* the harness's flag byte: fix checksums */
    for (int s = 0; s < (twice ? 2 : 1); s++) {
        ts_write_header(&o, 300, 299, 0x1234abcdULL, json, sizeof json - 1);
        uint64_t toks = 0;
        for (int i = 0; i < ndocs; i++) {
            char meta[128];
            int ml = snprintf(meta, sizeof meta, "{\"repo_name\":\"r\",\"path\":\"f%d.py\"}", i);
            uint32_t ids[8];
            uint32_t n = (uint32_t)(1 + i % 7);
            for (uint32_t k = 0; k + 1 < n; k++) ids[k] = (uint32_t)(i * 31 + k * 7) % 299;
            ids[n - 1] = 299;
            ts_write_doc(&o, meta, (uint32_t)ml, ids, n);
            toks += n;
        }
        if (with_end) ts_write_end(&o, (uint64_t)ndocs, toks);
    }
    out_done(&o);
    size_t n;
    char *b = fuzz_slurp(fd, &n);
    seed_write(dir, name, b, n);
    free(b);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    write_stream(argv[1], "empty-stream", 0, 1, 0);
    write_stream(argv[1], "one-doc", 1, 1, 0);
    write_stream(argv[1], "five-docs", 5, 1, 0);
    write_stream(argv[1], "cut-short", 3, 0, 0);
    write_stream(argv[1], "concatenated", 2, 1, 1);
    return 0;
}
#endif
