// SPDX-License-Identifier: MIT
/*
** tok-split: print the GPT-2 pre-tokenization of documents, for comparison with Hugging Face.
**
**   tok-split [-p] [-r] [FILE]
**                      input: one JSON string per line (a document); output: per document a
**                      JSON array of its pre-tokens in byte-level form (as Hugging Face's
**                      ByteLevel pre-tokenizer returns them), e.g. ["def","Ġf","():","ĊĠĠĠ"]
**   -p                 split with the PCRE2 regex (the reference) instead of the fast matcher
**   -r                 input is raw bytes (any, invalid UTF-8 included), cut into 4 KiB documents
*/
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "util.h"
#include "io.h"
#include "json.h"
#include "tokenize/bpe.h"

typedef struct {
    Buf *out;
    int n;
} Ctx;

static void piece(void *arg, const char *p, size_t n)
{
    Ctx *c = arg;
    Buf s = { 0 };
    bpe_bytes_to_chars((const unsigned char *)p, n, &s);
    if (c->n++) buf_addc(c->out, ',');
    json_escape(c->out, s.buf ? s.buf : "", s.len);
    buf_free(&s);
}

/*
** -r: split raw 4 KiB chunks of fd.
*/
static int split_raw(BpePretok *pt, int fd)
{
    static char chunk[4096];
    Buf out = { 0 };
    for (;;) {
        ssize_t n = 0, r;
        while (n < (ssize_t)sizeof chunk && (r = read(fd, chunk + n, sizeof chunk - (size_t)n)) > 0)
            n += r;
        if (n <= 0) break;
        buf_reset(&out);
        buf_addc(&out, '[');
        Ctx c = { &out, 0 };
        if (bpe_pretok_split(pt, chunk, (size_t)n, piece, &c) != 0) {
            buf_free(&out);
            return 1;
        }
        buf_adds(&out, "]\n");
        fwrite(out.buf, 1, out.len, stdout);
    }
    buf_free(&out);
    return 0;
}

int main(int argc, char **argv)
{
    int i = 1, pcre = 0, raw = 0;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (!strcmp(argv[i], "-p"))
            pcre = 1;
        else if (!strcmp(argv[i], "-r"))
            raw = 1;
        else {
            fprintf(stderr, "usage: tok-split [-p] [-r] [FILE]\n");
            return 2;
        }
    }
    int fd = i < argc ? open(argv[i], O_RDONLY) : 0;
    if (fd < 0) {
        perror(argv[i]);
        return 3;
    }
    BpePretok *pt = bpe_pretok_new();
    bpe_pretok_use_pcre2(pt, pcre);
    if (raw) {
        int r = split_raw(pt, fd);
        bpe_pretok_free(pt);
        return r;
    }
    LineReader lr;
    lr_init(&lr, fd, i < argc ? argv[i] : "stdin", 0);
    Buf doc = { 0 }, out = { 0 };
    char *line;
    size_t len;
    int rc = 0, k;
    while ((k = lr_next(&lr, &line, &len)) == 1) {
        if (len < 2 || line[0] != '"' || line[len - 1] != '"') {
            fprintf(stderr, "tok-split: line %llu: not a JSON string\n",
                    (unsigned long long)lr.lineno);
            rc = 1;
            break;
        }
        buf_reset(&doc);
        json_decode_string(line + 1, len - 2, &doc);
        buf_reset(&out);
        buf_addc(&out, '[');
        Ctx c = { &out, 0 };
        if (bpe_pretok_split(pt, doc.buf ? doc.buf : "", doc.len, piece, &c) != 0) {
            rc = 1;
            break;
        }
        buf_adds(&out, "]\n");
        fwrite(out.buf, 1, out.len, stdout);
    }
    if (k < 0) rc = 1;
    bpe_pretok_free(pt);
    buf_free(&doc);
    buf_free(&out);
    lr_free(&lr);
    return rc;
}
