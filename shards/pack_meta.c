// SPDX-License-Identifier: MIT
/*
** pack_meta.c: one document's metadata (the JSON object of the token stream) parsed into its
** row of the documents table (see pack.h): repo_name, path, license, content_hash and imports
** as columns, n_bytes (else size) as the byte count, the other fields but content as one JSON
** object (`extra`); every document starts in the train split (split.c assigns it at the end). Strings go to the current
** shard's arena.
*/
#include "pack.h"

#include <stdlib.h>
#include <string.h>

/*
** Append bytes to the arena and return their offset.
*/
static uint32_t arena_add(Packer *p, const void *s, size_t n)
{
    uint32_t off = (uint32_t)p->cur->arena.len;
    buf_add(&p->cur->arena, s, n);
    return off;
}

/*
** Store a string field's decoded value as row field f.
*/
static void row_set_string(Packer *p, DocRow *r, int f, const JsonField *jf)
{
    if (!jf || jf->type == JSON_NULL) return;
    if (jf->type != JSON_STRING) { /* keep numbers and others as their JSON text */
        r->off[f] = arena_add(p, jf->raw, jf->rawlen);
        r->len[f] = (uint32_t)jf->rawlen;
        return;
    }
    if (!jf->escaped) {
        r->off[f] = arena_add(p, jf->raw, jf->rawlen);
        r->len[f] = (uint32_t)jf->rawlen;
        return;
    }
    buf_reset(&p->dec);
    json_decode_string(jf->raw, jf->rawlen, &p->dec);
    r->off[f] = arena_add(p, p->dec.buf, p->dec.len);
    r->len[f] = (uint32_t)p->dec.len;
}

static int key_is(const JsonField *f, const char *k)
{
    size_t n = strlen(k);
    return f->klen == n && !memcmp(f->key, k, n);
}

/*
** The imports value as its JSON text (a string keeps its quotes) as the row's imports.
*/
static void row_set_imports(Packer *p, DocRow *r, const JsonField *f)
{
    Buf *a = &p->cur->arena;
    uint32_t off = (uint32_t)a->len;
    if (f->type == JSON_STRING) buf_addc(a, '"');
    buf_add(a, f->raw, f->rawlen);
    if (f->type == JSON_STRING) buf_addc(a, '"');
    r->off[FIELD_IMPORTS] = off;
    r->len[FIELD_IMPORTS] = (uint32_t)(a->len - off);
}

/* The meta fields that are columns of their own (content is not stored: the tokens are it). */
static int is_column(const JsonField *f)
{
    return key_is(f, "repo_name") || key_is(f, "path") || key_is(f, "license") ||
        key_is(f, "content_hash") || key_is(f, "imports") || key_is(f, "n_bytes") ||
        key_is(f, "size") || key_is(f, "content");
}

/*
** The other fields, as one JSON object in input order, as the row's extra. A pass of its own,
** after the named fields: the object must be contiguous in the arena.
*/
static void row_set_extra(Packer *p, DocRow *r)
{
    Buf *a = &p->cur->arena;
    size_t start = a->len;
    int nextra = 0;
    for (int i = 0; i < p->obj.n; i++) {
        const JsonField *f = &p->obj.f[i];
        if (is_column(f)) continue;
        buf_addc(a, nextra++ ? ',' : '{');
        buf_addc(a, '"');
        buf_add(a, f->key, f->klen);
        buf_add(a, "\":", 2);
        if (f->type == JSON_STRING) buf_addc(a, '"');
        buf_add(a, f->raw, f->rawlen);
        if (f->type == JSON_STRING) buf_addc(a, '"');
    }
    if (nextra) {
        buf_addc(a, '}');
        r->off[FIELD_EXTRA] = (uint32_t)start;
        r->len[FIELD_EXTRA] = (uint32_t)(a->len - start);
    }
}

/*
** A new row for the next document of the current shard, its strings all NULL.
*/
static DocRow *row_new(Packer *p, const TsDoc *d)
{
    PackShard *b = p->cur;
    if (b->nrows == b->caprows) {
        b->caprows = b->caprows ? 2 * b->caprows : 4096;
        b->rows = xrealloc(b->rows, b->caprows * sizeof *b->rows);
    }
    DocRow *r = &b->rows[b->nrows];
    r->id = p->next_doc;
    r->offset = p->tokens;
    r->n_tokens = d->n;
    r->n_prompt = d->n_prompt;
    r->n_bytes = -1;
    for (int i = 0; i < FIELD_COUNT; i++) r->len[i] = NOSTR, r->off[i] = 0;
    return r;
}

int pack_add_row(Packer *p, const TsDoc *d)
{
    DocRow *r = row_new(p, d);
    if (json_parse_object(&p->obj, d->meta, d->meta_len)) {
        return error("%s: document %llu: meta is not a JSON object: %s at byte %zu", p->o->input,
                     (unsigned long long)p->next_doc + 1, p->obj.err, p->obj.err_pos);
    }
    int64_t size = -1, nb = -1;
    for (int i = 0; i < p->obj.n; i++) {
        const JsonField *f = &p->obj.f[i];
        if (key_is(f, "repo_name"))
            row_set_string(p, r, FIELD_REPO, f);
        else if (key_is(f, "path"))
            row_set_string(p, r, FIELD_PATH, f);
        else if (key_is(f, "license"))
            row_set_string(p, r, FIELD_LICENSE, f);
        else if (key_is(f, "content_hash"))
            row_set_string(p, r, FIELD_HASH, f);
        else if (key_is(f, "imports") && f->type != JSON_NULL)
            row_set_imports(p, r, f);
        else if (key_is(f, "n_bytes") && f->type == JSON_NUMBER)
            nb = strtoll(f->raw, NULL, 10);
        else if (key_is(f, "size") && f->type == JSON_NUMBER)
            size = strtoll(f->raw, NULL, 10);
    }
    row_set_extra(p, r);
    r->n_bytes = nb >= 0 ? nb : size;
    r->valid = 0; /* 'train' until split_assign decides, at the end of the pack */
    p->cur->nrows++;
    return 0;
}
