// SPDX-License-Identifier: MIT
/*
** tk_decode.c: `cm-tokenize decode`: token streams or id arrays -> JSONL records or raw text.
**
** Each input's first 8 bytes tell which it is (a token stream begins with CMTOKSTR). So that a
** pipe can be sniffed and then read from its start, the input is read through a pipe that a
** feeder thread fills: the peeked bytes first, then the rest of the input.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic.h"
#include "io.h"
#include "json.h"
#include "tokstream.h"
#include "tokenize/tk.h"

enum { OPT_RAW = 256 };

static const CliOpt decode_opts[] = {
    { "tokenizer", 't', "FILE", NULL,
      "the tokenizer.json (needed for id arrays; a token\nstream's own is used when none is given)",
      't' },
    { "output", 'o', "FILE", "stdout", "output file", 'o' },
    { "raw", 0, NULL, NULL, "write only the decoded bytes, documents back to back", OPT_RAW },
    { 0 }
};

static const CliSpec decode_spec = {
    TK_PROG,
    "decode",
    "[-t tok.json] [options] [FILE...]",
    "Decode ids back to text (FILE '-' or none: stdin). Each input is either a binary token\n"
    "stream (detected by its magic CMTOKSTR; every document becomes a JSONL record: its metadata\n"
    "fields plus `content`, the trailing end-of-text id removed) or lines each holding a JSON\n"
    "array of ids (as written by encode --jsonl; each becomes {\"content\":...}).\n"
    "An instruction example (encode --template: a document with n_prompt > 0, or a line\n"
    "{\"ids\":[...],\"n_prompt\":N}) becomes `prompt` and `response` (the first n_prompt ids\n"
    "and the rest) instead of `content`; --raw writes the two back to back.",
    "Memory: one document and its ids (a line of ids: at most 256 MiB).",
    decode_opts,
    NULL
};

typedef struct {
    const char *tokenizer; /* -t */
    const char *output;    /* -o */
    int raw;               /* --raw */
} DecodeOpts;

/* One run of the verb. */
typedef struct {
    const DecodeOpts *o;
    Bpe *bpe; /* -t, or NULL */
    Out out;
    Buf text;     /* the document being decoded */
    size_t plen;  /* bytes of text that are its prompt (an instruction example) */
    int instruct; /* the document is an instruction example: prompt and response */
} DecodeRun;

/* An input read through a pipe: the sniffed bytes, then the rest. */
typedef struct {
    int src;     /* the input */
    int dst;     /* the pipe's write end */
    char pre[8]; /* bytes read to sniff the input */
    size_t npre; /* how many */
} Feeder;

/*
** Thread: write the peeked bytes then copy src to dst (lets a pipe be sniffed then re-read).
*/
static void *feed_run(void *arg)
{
    Feeder *f = arg;
    char buf[65536];
    if (write_all(f->dst, f->pre, f->npre) == 0) {
        for (;;) {
            ssize_t r = read(f->src, buf, sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0 || write_all(f->dst, buf, (size_t)r) != 0) break;
        }
    }
    close(f->dst);
    return NULL;
}

/*
** Write one decoded document: raw, or as a JSONL record with meta's fields and content.
*/
static void decode_emit(DecodeRun *run, const char *meta, size_t mlen)
{
    Out *out = &run->out;
    const Buf *text = &run->text;
    if (run->o->raw) {
        out_write(out, text->buf, text->len);
        return;
    }
    if (meta && mlen >= 2) {
        size_t e = mlen - 1; /* the closing brace */
        while (e > 0 && meta[e] != '}') e--;
        out_write(out, meta, e);
        if (e > 1) out_putc(out, ',');
    } else {
        out_putc(out, '{');
    }
    const char *t = text->buf ? text->buf : "";
    if (run->instruct) {
        out_puts(out, "\"prompt\":");
        json_escape_out(out, t, run->plen);
        out_puts(out, ",\"response\":");
        json_escape_out(out, t + run->plen, text->len - run->plen);
    } else {
        out_puts(out, "\"content\":");
        json_escape_out(out, t, text->len);
    }
    out_puts(out, "}\n");
}

/*
** Decode ids[0..n) into run->text, the first n_prompt of them (0: a plain document) as the
** prompt. 0, or -1 when an id is out of the vocabulary.
*/
static int decode_ids(DecodeRun *run, const Bpe *bpe, const uint32_t *ids, size_t n,
                      size_t n_prompt)
{
    buf_reset(&run->text);
    if (n_prompt > n) n_prompt = n;
    run->instruct = n_prompt > 0;
    if (bpe_decode(bpe, ids, n_prompt, &run->text) != 0) return -1;
    run->plen = run->text.len;
    return bpe_decode(bpe, ids + n_prompt, n - n_prompt, &run->text);
}

/*
** Decode a token stream, with -t's tokenizer or else the one it carries. Returns the status.
*/
static int decode_stream(DecodeRun *run, int fd, const char *name)
{
    char err[512];
    TsReader r;
    TsDoc d;
    Bpe *own = NULL, *use = run->bpe;
    int rc = CM_OK, k;
    if (ts_open(&r, fd, name) != 0) {
        error("%s", r.err);
        ts_close(&r);
        return CM_EDATA;
    }
    if (!use) {
        own = bpe_load_mem(r.hdr.json, r.hdr.json_len, name, err, sizeof err);
        if (!own) {
            error("%s", err);
            ts_close(&r);
            return CM_EFORMAT;
        }
        use = own;
    } else if (bpe_fingerprint(use) != r.hdr.fingerprint) {
        const char *t = run->o->tokenizer;
        warn("%s: the stream was encoded with another tokenizer than %s; using %s", name, t, t);
    }
    while ((k = ts_next(&r, &d)) == 1) {
        size_t n = d.n;
        if (n && d.ids[n - 1] == r.hdr.eot_id) n--;
        if (decode_ids(run, use, d.ids, n, d.n_prompt) != 0) {
            error("%s: document %llu: an id is out of the vocabulary", name,
                  (unsigned long long)r.docs);
            rc = CM_EDATA;
            continue;
        }
        decode_emit(run, d.meta, d.meta_len);
    }
    if (k < 0) {
        error("%s", r.err);
        rc = CM_EDATA;
    }
    ts_close(&r);
    bpe_free(own);
    return rc;
}

/* The ids of one line. */
typedef struct {
    uint32_t *ids;
    size_t n, cap;
} IdArray;

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/*
** Parse "[1, 2, 3]" (blanks anywhere between the parts) into a. Returns 1, or 0 with *at set
** to the byte where it went wrong.
*/
static int parse_id_array(const char *line, size_t len, IdArray *a, size_t *at)
{
    size_t i = 0;
    a->n = 0;
    while (i < len && is_blank(line[i])) i++;
    int ok = i < len && line[i++] == '[';
    int need_num = 0, done_arr = 0;
    while (ok && i < len) {
        char c = line[i];
        if (is_blank(c)) {
            i++;
            continue;
        }
        if (done_arr) {
            ok = 0;
            break;
        }
        if (c == ']' && !need_num) {
            done_arr = 1;
            i++;
            continue;
        }
        if (c < '0' || c > '9') {
            ok = 0;
            break;
        }
        uint64_t v = 0;
        while (i < len && line[i] >= '0' && line[i] <= '9' && v <= UINT32_MAX)
            v = v * 10 + (uint64_t)(line[i++] - '0');
        if (v > UINT32_MAX) {
            ok = 0;
            break;
        }
        if (a->n == a->cap) {
            a->cap = a->cap ? a->cap * 2 : 1024;
            a->ids = xrealloc(a->ids, a->cap * sizeof *a->ids);
        }
        a->ids[a->n++] = (uint32_t)v;
        while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
        if (i < len && line[i] == ',') {
            i++;
            need_num = 1;
        } else
            need_num = 0;
    }
    *at = i;
    return ok && done_arr;
}

/*
** Parse an example line {"ids":[...],"n_prompt":N} (encode --template --jsonl) into a and
** *n_prompt. 1, or 0 with *at set to where it went wrong (or 0) and why.
*/
static int parse_id_object(const char *line, size_t len, IdArray *a, size_t *n_prompt, size_t *at,
                           const char **why)
{
    JsonObj o = { 0 };
    int64_t np = -1;
    int ok = 0;
    *at = 0;
    if (json_parse_object(&o, line, len) != 0) {
        *at = o.err_pos;
        *why = "not valid JSON";
        goto done;
    }
    const JsonField *f = json_get(&o, "ids"), *p = json_get(&o, "n_prompt");
    if (!f || f->type != JSON_ARRAY) {
        *why = "no \"ids\" array";
    } else if (!p || json_get_int(&o, "n_prompt", &np) != 0 || np < 0) {
        *why = "no \"n_prompt\" count";
    } else if (!parse_id_array(f->raw, f->rawlen, a, at)) {
        *at += (size_t)(f->raw - line);
        *why = "\"ids\" is not a JSON array of ids";
    } else if ((uint64_t)np > a->n) {
        *at = (size_t)(p->raw - line);
        *why = "n_prompt is larger than the number of ids";
    } else {
        ok = 1;
        *n_prompt = (size_t)np;
    }
done:
    json_obj_free(&o);
    return ok;
}

/*
** Decode lines of id arrays, or of examples {"ids":[...],"n_prompt":N} (-t needed). Returns
** the status.
*/
static int decode_id_lines(DecodeRun *run, int fd, const char *name)
{
    if (!run->bpe) {
        error("%s: -t tok.json is needed to decode id arrays", name);
        return CM_EUSAGE;
    }
    LineReader lr;
    IdArray a = { 0 };
    char *line;
    size_t len, at;
    int k, rc = CM_OK;
    lr_init(&lr, fd, name, TK_MAX_LINE);
    while ((k = lr_next(&lr, &line, &len)) != 0) {
        if (k < 0) {
            rc = lr.err ? CM_EIO : CM_EDATA;
            if (lr.err) break;
            continue;
        }
        if (record_line_blank(line, len)) continue;
        size_t lead = 0, n_prompt = 0;
        while (lead < len && is_blank(line[lead])) lead++;
        const char *why = "not a JSON array of ids";
        int ok = lead < len && line[lead] == '{'
            ? parse_id_object(line, len, &a, &n_prompt, &at, &why)
            : parse_id_array(line, len, &a, &at);
        if (!ok) {
            error("%s: line %llu: byte %llu: %s", name, (unsigned long long)lr.lineno,
                  (unsigned long long)(lr.offset + at), why);
            rc = CM_EDATA;
            continue;
        }
        if (decode_ids(run, run->bpe, a.ids, a.n, n_prompt) != 0) {
            error("%s: line %llu: an id is not in the vocabulary (size %u)", name,
                  (unsigned long long)lr.lineno, bpe_vocab_size(run->bpe));
            rc = CM_EDATA;
            continue;
        }
        decode_emit(run, NULL, 0);
    }
    free(a.ids);
    lr_free(&lr);
    return rc;
}

/*
** Decode one input file ("-": stdin): sniff it, then read it through a feeder pipe.
** Returns the status.
*/
static int decode_input(DecodeRun *run, const char *f)
{
    const char *name = strcmp(f, "-") ? f : "stdin";
    int src = strcmp(f, "-") ? open(f, O_RDONLY | O_CLOEXEC) : 0;
    if (src < 0) {
        error("cannot open '%s': %s", f, strerror(errno));
        return CM_EIO;
    }
    Feeder fe = { .src = src };
    while (fe.npre < 8) {
        ssize_t r = read(src, fe.pre + fe.npre, 8 - fe.npre);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        fe.npre += (size_t)r;
    }
    if (fe.npre == 0) { /* empty input: nothing to decode */
        if (src > 0) close(src);
        return CM_OK;
    }
    int is_stream = fe.npre == 8 && !memcmp(fe.pre, TS_MAGIC, 8);
    int p[2];
    pthread_t th;
    if (pipe(p) != 0) die(CM_EINTERNAL, "pipe: %s", strerror(errno));
    fe.dst = p[1];
    if (pthread_create(&th, NULL, feed_run, &fe) != 0) die(CM_EINTERNAL, "cannot start a thread");
    int rc = is_stream ? decode_stream(run, p[0], name) : decode_id_lines(run, p[0], name);
    close(p[0]); /* a feeder still writing gets EPIPE and stops */
    pthread_join(th, NULL);
    if (src > 0) close(src);
    return rc;
}

/*
** decode: token streams or id arrays -> records or raw text. Returns the exit status.
*/
static int cmd_decode(const DecodeOpts *o, char **files, int nfiles)
{
    DecodeRun run;
    int rc = CM_OK;
    memset(&run, 0, sizeof run);
    run.o = o;
    if (o->tokenizer && !(run.bpe = tk_load_tokenizer(o->tokenizer, &rc))) return rc;
    int fd = tk_open_output(o->output, 0, &rc);
    if (fd < 0) {
        bpe_free(run.bpe);
        return rc;
    }
    out_init(&run.out, fd, o->output && strcmp(o->output, "-") ? o->output : "stdout", 1 << 20);
    for (int i = 0; i < (nfiles ? nfiles : 1); i++) {
        int r = decode_input(&run, nfiles ? files[i] : "-");
        if (r > rc) rc = r;
    }
    out_done(&run.out);
    if (tk_close_output(fd, o->output) != CM_OK) rc = CM_EIO;
    buf_free(&run.text);
    bpe_free(run.bpe);
    return rc;
}

int tk_decode_main(int argc, char **argv)
{
    DecodeOpts o;
    Cli c;
    int k, rc = CM_OK;
    memset(&o, 0, sizeof o);
    cli_init(&c, &decode_spec, argc, argv);
    while ((k = cli_next(&c)) > 0) {
        switch (k) {
        case 't': o.tokenizer = c.arg; break;
        case 'o': o.output = c.arg; break;
        case OPT_RAW: o.raw = 1; break;
        }
    }
    int optind_after = c.optind;
    if (k == CLI_STOP) rc = c.status;
    cli_free(&c);
    if (k == CLI_STOP) return rc;
    atomic_signals_init();
    return cmd_decode(&o, argv + optind_after, argc - optind_after);
}
