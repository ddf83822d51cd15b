// SPDX-License-Identifier: MIT
/*
** tk_input.c: the records of cm-tokenize train and encode (see tk.h). The input files are
** read one after the other through lib/record.h's RecordInput (its blank-line rule, its
** --on-error handling and messages); their records are gathered in batches that the threads
** share, and with several threads a reader thread fills the next batch while the current one is
** encoded.
*/
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "hash.h"
#include "tokenize/tk.h"

/* --- batches ------------------------------------------------------------------------------- */

/*
** Empty a batch, keeping its memory.
*/
static void batch_reset(RecordBatch *b)
{
    buf_reset(&b->text);
    buf_reset(&b->meta);
    b->n = 0;
}

void tk_batch_free(RecordBatch *b)
{
    buf_free(&b->text);
    buf_free(&b->meta);
    free(b->plen);
    free(b->toff);
    free(b->tlen);
    free(b->moff);
    free(b->mlen);
    memset(b, 0, sizeof *b);
}

/*
** Is the field named f->key one that the metadata leaves out (content) or sets itself?
*/
static int meta_skips(const JsonField *f)
{
    return (f->klen == 7 && !memcmp(f->key, "content", 7)) ||
        (f->klen == 7 && !memcmp(f->key, "n_bytes", 7)) ||
        (f->klen == 12 && !memcmp(f->key, "content_hash", 12));
}

/*
** Append a record's metadata: its fields (raw JSON) except those it leaves out, then n_bytes and
** content_hash of text[0..n) (computed here; input fields of those names are replaced). A code
** record (in NULL) leaves out content; an instruction record the fields its template rendered
** (tk_instruct_drops).
*/
static void meta_build(Buf *m, const Record *r, const TkInput *in, const char *text, size_t n)
{
    buf_addc(m, '{');
    int first = 1;
    for (int i = 0; i < r->obj.n; i++) {
        const JsonField *f = &r->obj.f[i];
        if (in ? tk_instruct_drops(in, f) : meta_skips(f)) continue;
        if (!first) buf_addc(m, ',');
        first = 0;
        buf_addc(m, '"');
        buf_add(m, f->key, f->klen);
        buf_add(m, "\":", 2);
        if (f->type == JSON_STRING) buf_addc(m, '"');
        buf_add(m, f->raw, f->rawlen);
        if (f->type == JSON_STRING) buf_addc(m, '"');
    }
    char hex[17];
    hash_hex(hash64(text, n), hex);
    buf_addf(m, "%s\"n_bytes\":%zu,\"content_hash\":\"%s\"}", first ? "" : ",", n, hex);
}

/*
** Make room for one more document.
*/
static void batch_room(RecordBatch *b)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->plen = xrealloc(b->plen, b->cap * sizeof *b->plen);
        b->toff = xrealloc(b->toff, b->cap * sizeof *b->toff);
        b->tlen = xrealloc(b->tlen, b->cap * sizeof *b->tlen);
        b->moff = xrealloc(b->moff, b->cap * sizeof *b->moff);
        b->mlen = xrealloc(b->mlen, b->cap * sizeof *b->mlen);
    }
}

/*
** Append record r to the batch.
*/
static void batch_add(RecordBatch *b, const Record *r, int with_meta)
{
    batch_room(b);
    b->plen[b->n] = 0;
    b->toff[b->n] = b->text.len;
    b->tlen[b->n] = r->content.n;
    buf_add(&b->text, r->content.s, r->content.n);
    if (with_meta) {
        b->moff[b->n] = b->meta.len;
        meta_build(&b->meta, r, NULL, r->content.s, r->content.n);
        b->mlen[b->n] = b->meta.len - b->moff[b->n];
    }
    b->n++;
}

/*
** Append the example the template made of instruction record r (in->prompt, in->response).
*/
static void batch_add_example(RecordBatch *b, const TkInput *in, const Record *r, int with_meta)
{
    batch_room(b);
    size_t off = b->text.len;
    b->toff[b->n] = off;
    b->plen[b->n] = in->prompt.len;
    buf_add(&b->text, in->prompt.buf, in->prompt.len);
    buf_add(&b->text, in->response.buf, in->response.len);
    b->tlen[b->n] = b->text.len - off;
    if (with_meta) {
        b->moff[b->n] = b->meta.len;
        meta_build(&b->meta, r, in, b->text.buf + off, b->tlen[b->n]);
        b->mlen[b->n] = b->meta.len - b->moff[b->n];
    }
    b->n++;
}

/* --- the inputs ---------------------------------------------------------------------------- */

void tk_input_init(TkInput *in, const TkInputOpts *o)
{
    memset(in, 0, sizeof *in);
    in->o = o;
    for (int r = 0; o->tpl && r < TPL_NFIELDS; r++)
        if (template_uses(o->tpl, r)) in->tpl_uses |= 1u << r;
}

/*
** Close the current input, if open, keeping its counts and status.
*/
void tk_input_close(TkInput *in)
{
    if (!in->open) { /* (called again at the end: frees the scratch buffers) */
        for (int r = 0; r < TPL_NFIELDS; r++) buf_free(&in->val[r]);
        buf_free(&in->prompt);
        buf_free(&in->response);
        return;
    }
    if (in->ri.status > in->status) in->status = in->ri.status;
    in->bytes_done += in->ri.bytes;
    ri_close(&in->ri);
    in->open = 0;
}

/*
** Open the next input; returns 1, or 0 when there are no more. A file that cannot be opened is
** reported (exit status 3 at the end) and skipped.
*/
static int input_next_file(TkInput *in)
{
    int nf = in->o->nfiles;
    while (in->idx < (nf ? nf : 1)) {
        const char *f = nf ? in->o->files[in->idx] : "-";
        in->idx++;
        if (ri_open(&in->ri, f, in->o->max_line, in->o->skip_bad) != 0) {
            if (in->ri.status > in->status) in->status = in->ri.status;
            ri_close(&in->ri);
            continue;
        }
        in->ri.rec.content_optional = in->o->tpl != NULL; /* instruction records */
        in->open = 1;
        return 1;
    }
    return 0;
}

/*
** The next record of all inputs: 1 (in in->ri.rec), or 0 when no more is to be read (the end
** of the last input, or a bad record under --on-error fail). A read error ends that input
** only.
*/
static int input_next(TkInput *in)
{
    while (!in->stop) {
        if (!in->open && !input_next_file(in)) return 0;
        int k = ri_next(&in->ri);
        in->bytes = in->bytes_done + in->ri.bytes;
        if (k > 0) {
            in->records++;
            return 1;
        }
        if (k < 0 && in->ri.err != RI_ERR_READ) in->stop = 1; /* --on-error fail */
        tk_input_close(in);
    }
    return 0;
}

/*
** Render the instruction record just read (--template). 1 when it is to be added; 0 when it is
** bad (reported and counted like a malformed line; under --on-error fail the input stops).
*/
static int input_render(TkInput *in)
{
    char why[400];
    size_t byte;
    const Record *r = &in->ri.rec;
    if (tk_instruct_render(in, r, why, sizeof why, &byte) == 0) return 1;
    in->records--; /* not delivered */
    in->ri.records--;
    if (ri_report(&in->ri, RI_ERR_PARSE, in->ri.lr.lineno, in->ri.lr.offset + byte, why) < 0) {
        in->stop = 1; /* --on-error fail */
        tk_input_close(in);
    }
    return 0;
}

size_t tk_input_batch(TkInput *in, RecordBatch *b, int with_meta)
{
    batch_reset(b);
    while (!cm_stopping() && b->n < TK_BATCH_DOCS && b->text.len < TK_BATCH_BYTES &&
           input_next(in)) {
        if (!in->o->tpl)
            batch_add(b, &in->ri.rec, with_meta);
        else if (input_render(in))
            batch_add_example(b, in, &in->ri.rec, with_meta);
    }
    b->seen_records = in->records;
    b->seen_bytes = in->bytes;
    return b->n;
}

/* --- the reader thread --------------------------------------------------------------------- */

/*
** Reader thread: fill free slots with batches until the end of the input (or quit).
*/
static void *reader_run(void *arg)
{
    BatchReader *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (r->full[r->fill] && !r->quit) pthread_cond_wait(&r->cv, &r->mu);
        int s = r->fill, quit = r->quit;
        pthread_mutex_unlock(&r->mu);
        size_t n = quit ? 0 : tk_input_batch(r->in, &r->slot[s], r->with_meta);
        if (quit) r->slot[s].n = 0;
        pthread_mutex_lock(&r->mu);
        r->full[s] = 1;
        r->fill ^= 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        if (n == 0) return NULL;
    }
}

int tk_reader_start(BatchReader *r, TkInput *in, int with_meta)
{
    memset(r, 0, sizeof *r);
    r->in = in;
    r->with_meta = with_meta;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->th, NULL, reader_run, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        return -1;
    }
    r->running = 1;
    return 0;
}

RecordBatch *tk_reader_take(BatchReader *r)
{
    pthread_mutex_lock(&r->mu);
    while (!r->full[r->take]) pthread_cond_wait(&r->cv, &r->mu);
    RecordBatch *b = &r->slot[r->take];
    pthread_mutex_unlock(&r->mu);
    return b;
}

void tk_reader_release(BatchReader *r)
{
    pthread_mutex_lock(&r->mu);
    r->full[r->take] = 0;
    r->take ^= 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void tk_reader_stop(BatchReader *r)
{
    if (!r->running) return;
    pthread_mutex_lock(&r->mu);
    r->quit = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->th, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    tk_batch_free(&r->slot[0]);
    tk_batch_free(&r->slot[1]);
    r->running = 0;
}
