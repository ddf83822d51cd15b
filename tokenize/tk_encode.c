// SPDX-License-Identifier: MIT
/*
** tk_encode.c: `cm-tokenize encode`: JSONL records -> the binary token stream of
** docs/FORMATS.md (or, with --jsonl, one JSON array of ids per record).
**
** Each batch of records is encoded by the threads, one document at a time taken in turn; the
** ids are then written in input order, so any --threads gives the same bytes. With several
** threads a reader thread parses the next batch meanwhile. A stop signal ends the run after the
** current batch with a clean stream (end frame written) and exit status 130.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "io.h"
#include "tokstream.h"
#include "tokenize/tk.h"

enum { OPT_JSONL = 256, OPT_EOT, OPT_THREADS, OPT_ON_ERROR, OPT_MAX_LINE, OPT_TEMPLATE, OPT_FIELD };

static const CliOpt encode_opts[] = {
    { "tokenizer", 't', "FILE", NULL,
      "a byte-level BPE tokenizer.json, ours or Hugging\nFace's (required)", 't' },
    { "output", 'o', "FILE", "stdout", "output file (binary output refuses a terminal)", 'o' },
    { "jsonl", 0, NULL, NULL, "write one JSON array of ids per record instead (no end-of-text)",
      OPT_JSONL },
    { "eot", 0, "TOKEN", "<|endoftext|>, else the first special", "end-of-text token", OPT_EOT },
    { "threads", 0, "N", "CPUs, at most 8",
      "encoding threads, 1..64; the output does not\ndepend on it", OPT_THREADS },
    { "on-error", 0, "skip|fail", "fail", "malformed record: skip it, or stop; exit 1 either way",
      OPT_ON_ERROR },
    { "max-line", 0, "SIZE", "256M", "longest accepted JSONL line", OPT_MAX_LINE },
    { "template", 0, "NAME|FILE", NULL,
      "the records are instruction records: encode each as\nprompt + response (built-in: alpaca; "
      "or a template\nfile, docs/FORMATS.md \"Instruction template\")",
      OPT_TEMPLATE },
    { "field", 0, "ROLE=NAME", NULL,
      "with --template: take ROLE (instruction, input, output,\nsystem) from field NAME "
      "(repeatable)",
      OPT_FIELD },
    { 0 }
};

static const CliSpec encode_spec = {
    TK_PROG,
    "encode",
    "-t tok.json [options] [FILE...]",
    "Encode the `content` of each JSONL record (FILE '-' or none: stdin). Default output: the\n"
    "binary token stream of docs/FORMATS.md (tokenizer.json inside; per document the record's\n"
    "other fields plus n_bytes and content_hash as metadata, then the ids with the end-of-text\n"
    "id last).\n"
    "\n"
    "With --template the records are instruction records (instruction/input/output,\n"
    "instruction/output/system or prompt/completion; instruction from `instruction` else\n"
    "`prompt`, output from `output` else `completion`, input from `input`, system from\n"
    "`system`; --field renames). Each becomes the ids of the template's prompt, then those of\n"
    "its response, then end-of-text; the document records n_prompt, the prompt's ids. A record\n"
    "without an instruction or an output, or with an empty output, is a bad record (--on-error).\n"
    "The metadata leaves out the rendered fields; n_bytes and content_hash are those of prompt +\n"
    "response. With --jsonl each line is {\"ids\":[...],\"n_prompt\":N} (no end-of-text).\n"
    "A template that is neither built in nor a file: exit 2; unreadable: 3; broken: 4.",
    "Memory: one batch of records (8 MiB of content, or the longest record) with its ids, and\n"
    "while it is encoded the next batch read ahead; plus a word cache per thread (at most 2^18\n"
    "words of up to 256 bytes).",
    encode_opts,
    NULL
};

typedef struct {
    const char *tokenizer; /* -t */
    const char *output;    /* -o */
    int jsonl;             /* --jsonl */
    const char *eot;       /* --eot */
    int threads;           /* --threads */
    int progress;          /* -1 auto, 0, 1 */
    TkInputOpts in;        /* the inputs, --on-error, --max-line, --field */
    const char *tpl_spec;  /* --template */
    Template tpl;          /* loaded by cmd_encode */
} EncodeOpts;

/* One encoding thread's state. */
typedef struct {
    BpeEncoder *enc; /* this thread's encoder */
    uint32_t *ids;   /* ids of the docs it encoded */
    size_t n, cap;   /* used, allocated */
    int failed;      /* an encode call failed */
} EncodeWorker;

/* The threads and the batch they share. */
typedef struct {
    const RecordBatch *b; /* the batch */
    EncodeWorker w[TK_MAX_THREADS];
    int nw;            /* workers */
    int64_t eot;       /* id appended to each document, or -1 (--jsonl) */
    size_t next;       /* next doc to take (atomic) */
    int *who;          /* per doc: worker that encoded it */
    size_t *off, *cnt; /* per doc: its ids in that worker's array */
    size_t *npr;       /* per doc: its prompt ids (--template), else 0 */
    size_t cap;        /* docs the per-doc arrays hold */
} EncodePool;

typedef struct {
    EncodePool *pool;
    int k; /* which worker */
} EncodeArg;

/* One run of the verb. */
typedef struct {
    const EncodeOpts *o;
    Bpe *bpe;
    int64_t eot; /* the end-of-text id, or -1 (--jsonl only) */
    Out out;
    EncodePool pool;
    Buf line;              /* --jsonl: the line being built */
    uint64_t docs, tokens; /* written */
    uint64_t too_big;      /* records over the stream's limits, skipped */
} EncodeRun;

/* --- the threads ---------------------------------------------------------------------------- */

/*
** Worker loop: take documents one at a time until the batch is done.
*/
static void *enc_run(void *arg)
{
    EncodeArg *a = arg;
    EncodePool *p = a->pool;
    EncodeWorker *w = &p->w[a->k];
    for (;;) {
        size_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (i >= p->b->n) break;
        size_t before = w->n, plen = p->b->plen ? p->b->plen[i] : 0;
        const char *text = p->b->text.buf + p->b->toff[i];
        if (plen && bpe_encoder_encode(w->enc, text, plen, &w->ids, &w->n, &w->cap))
            w->failed = 1; /* the prompt alone, so its ids end where the response's begin */
        p->npr[i] = w->n - before;
        if (bpe_encoder_encode(w->enc, text + plen, p->b->tlen[i] - plen, &w->ids, &w->n, &w->cap))
            w->failed = 1;
        if (p->eot >= 0) {
            if (w->n == w->cap) {
                w->cap = w->cap * 2 + 16;
                w->ids = xrealloc(w->ids, w->cap * sizeof *w->ids);
            }
            w->ids[w->n++] = (uint32_t)p->eot;
        }
        p->who[i] = a->k;
        p->off[i] = before;
        p->cnt[i] = w->n - before;
    }
    return NULL;
}

/*
** Encode every document of b with the pool's threads. Returns 0, or -1 when the
** pre-tokenizer failed.
*/
static int pool_encode(EncodePool *p, const RecordBatch *b)
{
    if (b->n > p->cap) {
        p->cap = b->cap;
        p->who = xrealloc(p->who, p->cap * sizeof *p->who);
        p->off = xrealloc(p->off, p->cap * sizeof *p->off);
        p->cnt = xrealloc(p->cnt, p->cap * sizeof *p->cnt);
        p->npr = xrealloc(p->npr, p->cap * sizeof *p->npr);
    }
    p->b = b;
    p->next = 0;
    for (int k = 0; k < p->nw; k++) p->w[k].n = 0;
    pthread_t th[TK_MAX_THREADS];
    EncodeArg args[TK_MAX_THREADS];
    int started = 0;
    size_t useful = b->n < (size_t)p->nw ? b->n : (size_t)p->nw;
    for (size_t k = 1; k < useful; k++) {
        args[k] = (EncodeArg){ p, (int)k };
        if (pthread_create(&th[k], NULL, enc_run, &args[k]) != 0) break;
        started++;
    }
    args[0] = (EncodeArg){ p, 0 };
    enc_run(&args[0]);
    for (int k = 1; k <= started; k++) pthread_join(th[k], NULL);
    int failed = 0;
    for (int k = 0; k < p->nw; k++) failed |= p->w[k].failed;
    return failed ? -1 : 0;
}

static void pool_free(EncodePool *p)
{
    for (int k = 0; k < TK_MAX_THREADS; k++) {
        bpe_encoder_free(p->w[k].enc);
        free(p->w[k].ids);
    }
    free(p->who);
    free(p->off);
    free(p->cnt);
    free(p->npr);
}

/* --- output --------------------------------------------------------------------------------- */

/*
** Append ids[0..n) as "[1,2,3]".
*/
static void add_id_array(Buf *line, const uint32_t *ids, size_t n)
{
    buf_addc(line, '[');
    buf_grow(line, n * 11 + 4);
    char *q = line->buf + line->len;
    for (size_t k = 0; k < n; k++) {
        char num[12];
        int l = 0;
        uint32_t v = ids[k];
        do {
            num[l++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        if (k) *q++ = ',';
        while (l) *q++ = num[--l];
    }
    line->len = (size_t)(q - line->buf);
    buf_addc(line, ']');
}

/*
** Write one --jsonl line: "[1,2,3]\n", or with a template {"ids":[1,2,3],"n_prompt":N}.
*/
static void write_id_line(EncodeRun *run, const uint32_t *ids, size_t n, size_t n_prompt)
{
    Buf *line = &run->line;
    buf_reset(line);
    if (run->o->in.tpl) buf_adds(line, "{\"ids\":");
    add_id_array(line, ids, n);
    if (run->o->in.tpl) buf_addf(line, ",\"n_prompt\":%zu}", n_prompt);
    buf_addc(line, '\n');
    out_write(&run->out, line->buf, line->len);
}

/*
** Write the encoded documents of b in input order.
*/
static void write_batch(EncodeRun *run, const RecordBatch *b)
{
    EncodePool *p = &run->pool;
    for (size_t i = 0; i < b->n; i++) {
        const uint32_t *ids = p->w[p->who[i]].ids + p->off[i];
        size_t n = p->cnt[i];
        if (run->o->jsonl) {
            write_id_line(run, ids, n, p->npr[i]);
        } else {
            if (n > TS_MAX_TOKENS || b->mlen[i] > TS_MAX_META) { /* n counts the eot */
                (void)error(
                    "record %llu: %zu tokens / %zu bytes of metadata exceed the token stream limits; skipped",
                    (unsigned long long)(run->docs + run->too_big + 1), n - 1, b->mlen[i]);
                run->too_big++; /* (the reader thread owns the input until it is joined) */
                continue;
            }
            ts_write_doc_prompt(&run->out, b->meta.buf + b->moff[i], (uint32_t)b->mlen[i], ids,
                                (uint32_t)n, (uint32_t)p->npr[i]);
        }
        run->docs++;
        run->tokens += n;
    }
}

/* --- the run -------------------------------------------------------------------------------- */

/*
** Load the tokenizer and find the end-of-text id. Returns CM_OK or the exit status.
*/
static int encode_setup(EncodeRun *run)
{
    const EncodeOpts *o = run->o;
    int rc = CM_OK;
    run->bpe = tk_load_tokenizer(o->tokenizer, &rc);
    if (!run->bpe) return rc;
    run->eot = bpe_eot_id(run->bpe);
    if (o->eot) {
        run->eot = bpe_token_id(run->bpe, o->eot, strlen(o->eot));
        if (run->eot < 0) {
            error("%s: --eot '%s' is not a token of this tokenizer", o->tokenizer, o->eot);
            return CM_EUSAGE;
        }
    }
    if (run->eot < 0 && !o->jsonl) {
        error(
            "%s: no end-of-text token (no <|endoftext|> nor special token); name one with --eot TOKEN",
            o->tokenizer);
        return CM_EFORMAT;
    }
    return CM_OK;
}

/*
** Encode and write batch after batch until the input ends or a stop signal came. With several
** threads a reader thread reads ahead. Returns CM_OK or CM_EINTERNAL.
*/
static int encode_batches(EncodeRun *run, TkInput *in)
{
    const EncodeOpts *o = run->o;
    Progress pr;
    RecordBatch own = { 0 };
    BatchReader rd;
    int rc = CM_OK;
    progress_init(&pr, o->progress);
    double t0 = now_sec();
    int use_reader = o->threads > 1 && tk_reader_start(&rd, in, !o->jsonl) == 0;
    for (;;) {
        RecordBatch *b = &own;
        if (use_reader)
            b = tk_reader_take(&rd);
        else if (cm_stopping() || !tk_input_batch(in, &own, !o->jsonl))
            break;
        if (b->n == 0) break;
        if (pool_encode(&run->pool, b) != 0) {
            error("internal error: the pre-tokenizer failed");
            rc = CM_EINTERNAL;
            if (use_reader) tk_reader_release(&rd);
            break;
        }
        write_batch(run, b);
        if (pr.on) {
            double dt = now_sec() - t0;
            progress_update(&pr, "%llu records, %.1f MB, %.1f MB/s",
                            (unsigned long long)b->seen_records, b->seen_bytes / 1e6,
                            dt > 0 ? b->seen_bytes / 1e6 / dt : 0.0);
        }
        if (use_reader) tk_reader_release(&rd);
    }
    if (use_reader) tk_reader_stop(&rd);
    tk_batch_free(&own);
    progress_end(&pr);
    return rc;
}

/*
** encode: JSONL records -> token stream or id arrays. Returns the exit status.
*/
static int cmd_encode(const EncodeOpts *o)
{
    EncodeRun run;
    TkInput in;
    int rc, fd = -1;
    memset(&run, 0, sizeof run);
    run.o = o;
    tk_input_init(&in, &o->in);
    rc = encode_setup(&run);
    if (rc == CM_OK && (fd = tk_open_output(o->output, !o->jsonl, &rc)) >= 0) {
        out_init(&run.out, fd, o->output && strcmp(o->output, "-") ? o->output : "stdout", 1 << 20);
        size_t jlen;
        const char *json = bpe_json(run.bpe, &jlen);
        if (!o->jsonl)
            ts_write_header(&run.out, bpe_vocab_size(run.bpe), (uint32_t)run.eot,
                            bpe_fingerprint(run.bpe), json, jlen);
        run.pool.nw = o->threads;
        run.pool.eot = o->jsonl ? -1 : run.eot;
        for (int k = 0; k < o->threads; k++) run.pool.w[k].enc = bpe_encoder_new(run.bpe);
        rc = encode_batches(&run, &in);
        tk_input_close(&in); /* its status counts (the reader thread is joined) */
        if (rc == CM_OK) {
            if (!o->jsonl)
                ts_write_end(&run.out, run.docs,
                             run.tokens); /* also when interrupted: a clean stream */
            if (run.too_big && in.status < CM_EDATA) in.status = CM_EDATA;
            rc = cm_stopping() ? CM_EINTR : in.status;
            if (cm_stopping())
                (void)error("interrupted: %llu documents written", (unsigned long long)run.docs);
        }
        out_done(&run.out);
        if (tk_close_output(fd, o->output) != CM_OK) rc = CM_EIO;
    }
    buf_free(&run.line);
    pool_free(&run.pool);
    tk_input_close(&in);
    bpe_free(run.bpe);
    return rc;
}

/* --- the command line ----------------------------------------------------------------------- */

/*
** --field ROLE=NAME. Returns CM_OK or CM_EUSAGE (after the message).
*/
static int parse_field(Cli *c, EncodeOpts *o)
{
    const char *eq = strchr(c->arg, '=');
    int role = eq ? template_role(c->arg, (size_t)(eq - c->arg)) : -1;
    if (role < 0 || !eq[1])
        return cli_usage_error(c,
                               "--field '%s': want ROLE=NAME, ROLE one of instruction, input, "
                               "output, system",
                               c->arg);
    o->in.field[role] = eq + 1;
    return CM_OK;
}

/*
** Parse the command line into o. Returns -1 to go on, or the exit status to end with.
*/
static int encode_parse(EncodeOpts *o, int argc, char **argv)
{
    static const char *const on_error[] = { "fail", "skip", NULL };
    Cli c;
    uint64_t u;
    int k, rc = CM_OK;
    memset(o, 0, sizeof *o);
    o->threads = tk_default_threads();
    o->in.max_line = TK_MAX_LINE;
    cli_init(&c, &encode_spec, argc, argv);
    while (rc == CM_OK && (k = cli_next(&c)) > 0) {
        switch (k) {
        case 't': o->tokenizer = c.arg; break;
        case 'o': o->output = c.arg; break;
        case OPT_JSONL: o->jsonl = 1; break;
        case OPT_EOT: o->eot = c.arg; break;
        case OPT_THREADS: rc = cli_int(&c, 1, TK_MAX_THREADS, &o->threads); break;
        case OPT_ON_ERROR: rc = cli_choice(&c, on_error, &o->in.skip_bad); break;
        case OPT_TEMPLATE: o->tpl_spec = c.arg; break;
        case OPT_FIELD: rc = parse_field(&c, o); break;
        case OPT_MAX_LINE:
            if ((rc = cli_size(&c, 16, (uint64_t)4 << 30, &u)) == CM_OK) o->in.max_line = (size_t)u;
            break;
        }
    }
    if (rc == CM_OK && k == CLI_STOP)
        rc = c.status;
    else if (rc == CM_OK) {
        o->in.files = argv + c.optind;
        o->in.nfiles = argc - c.optind;
        o->progress = tk_progress_mode(&c);
        int fields = 0;
        for (int r = 0; r < TPL_NFIELDS; r++) fields |= o->in.field[r] != NULL;
        if (!o->tokenizer)
            rc = cli_usage_error(&c, "-t tok.json is required");
        else if (fields && !o->tpl_spec)
            rc = cli_usage_error(&c, "--field needs --template");
        else
            rc = -1;
    }
    cli_free(&c);
    return rc;
}

int tk_encode_main(int argc, char **argv)
{
    EncodeOpts o;
    int rc = encode_parse(&o, argc, argv);
    if (rc >= 0) return rc;
    if (o.tpl_spec) {
        char err[600];
        rc = template_open(&o.tpl, o.tpl_spec, err, sizeof err);
        if (rc != CM_OK) {
            error("%s", err);
            return rc;
        }
        o.in.tpl = &o.tpl;
    }
    atomic_signals_init();
    rc = cmd_encode(&o);
    template_free(&o.tpl);
    return rc;
}
