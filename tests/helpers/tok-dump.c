// SPDX-License-Identifier: MIT
/*
** tok-dump: read a codemill token stream with lib/tokstream.h and print it, for the tests.
**
**   tok-dump [-m] [FILE]   one line per document: the JSON array of its ids without the final
**                          end-of-text id (so it matches `cm-tokenize encode --jsonl`); with -m
**                          the metadata object instead. A header line "# vocab V eot E docs"
**                          goes to stderr. Exit 1 with the reader's message on a damaged stream.
*/
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "util.h"
#include "tokstream.h"

int main(int argc, char **argv)
{
    int meta = 0, i = 1;
    if (i < argc && !strcmp(argv[i], "-m")) {
        meta = 1;
        i++;
    }
    int fd = i < argc ? open(argv[i], O_RDONLY) : 0;
    if (fd < 0) {
        perror(argv[i]);
        return 3;
    }
    TsReader r;
    TsDoc d;
    if (ts_open(&r, fd, i < argc ? argv[i] : "stdin") != 0) {
        fprintf(stderr, "tok-dump: %s\n", r.err);
        ts_close(&r);
        return 1;
    }
    int k;
    unsigned long long docs = 0;
    while ((k = ts_next(&r, &d)) == 1) {
        docs++;
        if (meta) {
            fwrite(d.meta, 1, d.meta_len, stdout);
            putchar('\n');
            continue;
        }
        if (!d.n || d.ids[d.n - 1] != r.hdr.eot_id) {
            fprintf(stderr, "tok-dump: document %llu does not end with eot\n", docs);
            return 1;
        }
        putchar('[');
        for (uint32_t j = 0; j + 1 < d.n; j++) printf(j ? ",%u" : "%u", d.ids[j]);
        puts("]");
    }
    fprintf(stderr, "# vocab %u eot %u docs %llu\n", r.hdr.vocab_size, r.hdr.eot_id, docs);
    if (k < 0) {
        fprintf(stderr, "tok-dump: %s\n", r.err);
        ts_close(&r);
        return 1;
    }
    ts_close(&r);
    return 0;
}
