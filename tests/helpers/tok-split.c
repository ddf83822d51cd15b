/*
** tok-split: print the GPT-2 pre-tokenization of documents, for comparison with Hugging Face.
**
**   tok-split [FILE]   input: one JSON string per line (a document); output: per document a
**                      JSON array of its pre-tokens in byte-level form (as Hugging Face's
**                      ByteLevel pre-tokenizer returns them), e.g. ["def","Ġf","():","ĊĠĠĠ"]
*/
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "util.h"
#include "io.h"
#include "json.h"
#include "tokenize/bpe.h"

typedef struct { Buf *out; int n; } Ctx;

static void piece(void *arg, const char *p, size_t n)
{
    Ctx *c = arg;
    Buf s = {0};
    bpe_bytes_to_chars((const unsigned char *)p, n, &s);
    if (c->n++) buf_addc(c->out, ',');
    json_escape(c->out, s.buf ? s.buf : "", s.len);
    buf_free(&s);
}

int main(int argc, char **argv)
{
    int fd = argc > 1 ? open(argv[1], O_RDONLY) : 0;
    if (fd < 0) { perror(argv[1]); return 3; }
    LineReader lr;
    lr_init(&lr, fd, argc > 1 ? argv[1] : "stdin", 0);
    BpePretok *pt = bpe_pretok_new();
    Buf doc = {0}, out = {0};
    char *line;
    size_t len;
    int rc = 0, k;
    while ((k = lr_next(&lr, &line, &len)) == 1) {
        if (len < 2 || line[0] != '"' || line[len - 1] != '"') { fprintf(stderr, "tok-split: line %llu: not a JSON string\n", (unsigned long long)lr.lineno); rc = 1; break; }
        buf_reset(&doc);
        json_decode_string(line + 1, len - 2, &doc);
        buf_reset(&out);
        buf_addc(&out, '[');
        Ctx c = {&out, 0};
        if (bpe_pretok_split(pt, doc.buf ? doc.buf : "", doc.len, piece, &c) != 0) { rc = 1; break; }
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
