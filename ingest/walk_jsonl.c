// SPDX-License-Identifier: MIT
/*
** walk_jsonl.c: cm-ingest's JSONL dumps (the codeparrot / The Stack schema). libarchive's raw
** format reads them (so .gz/.zst/.xz/.bz2 are read the same way); the stream is split into
** lines, each parsed by the lib's RecordInput (ri_parse_line: one blank-line rule, messages
** "INPUT: line L: byte B: why") and written back with record_write, our "source" field
** added. A line longer than --max-line is reported and skipped. With --instructions a record
** without `content` (an instruction record) is written back as it came, "source" added.
*/
#include "walk.h"
#include "json.h"

#include <archive_entry.h>
#include <string.h>

/*
** Does the (possibly compressed) prefix hold JSONL, i.e. start with '{'? Decompresses the
** prefix with libarchive when it is a compressed stream.
*/
int walk_sniff_jsonl(const char *p, size_t n, int depth)
{
    size_t i = 0;
    if (ingest_sniff_archive((const unsigned char *)p, n) == 2) {
        if (depth > 0) return 0; /* compressed twice, or a stream libarchive passes through */
        struct archive *a = archive_read_new();
        archive_read_support_filter_all(a);
        archive_read_support_format_raw(a);
        struct archive_entry *e;
        char head[64];
        la_ssize_t k = -1;
        if (archive_read_open_memory(a, p, n) == ARCHIVE_OK &&
            archive_read_next_header(a, &e) == ARCHIVE_OK)
            k = archive_read_data(a, head, sizeof head);
        archive_read_free(a);
        if (k <= 0) return 0;
        return walk_sniff_jsonl(head, (size_t)k, depth + 1);
    }
    while (i < n && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t')) i++;
    return i < n && p[i] == '{';
}

/* A JSONL stream being split into lines. */
typedef struct {
    Ingest *g;         /* engine */
    const Scope *sc;   /* the dump's scope (its "source") */
    RecordInput ri;    /* the one record parser: blank-line rule, messages */
    Buf *ln;           /* a line that spans blocks, assembled */
    uint64_t lineno;   /* lines begun before the current one */
    uint64_t off;      /* bytes of the decompressed stream consumed */
    uint64_t line_off; /* where the current line begins */
    int too_long;      /* the current line passed --max-line: skip to its end */
} LineSplit;

/*
** Our fields of a JSONL record into g->extra: "source", unless --no-source or the record has one.
*/
static void jsonl_source(Ingest *g, const Scope *sc, const Record *r)
{
    buf_reset(&g->extra);
    if (!g->o->no_source && !json_get(&r->obj, "source")) {
        buf_adds(&g->extra, "\"source\":");
        json_escape(&g->extra, sc->source, sc->source_n);
    }
}

/*
** Process one JSONL line (ls->lineno, at byte offset ls->line_off of the decompressed input):
** a record is checked like a file (filters, size, NUL bytes) and written back with our
** "source" field unless it has one.
*/
static void jsonl_line(LineSplit *ls, const char *line, size_t len)
{
    Ingest *g = ls->g;
    int k = ri_parse_line(&ls->ri, line, len, ls->lineno, ls->line_off);
    if (k == 0) return; /* blank line */
    g->st.jsonl_lines++;
    if (k < 0) { /* reported by ri_parse_line */
        g->st.bad_lines++;
        g->bad = 1;
        return;
    }
    Record *r = &ls->ri.rec;
    g->st.seen++;
    walk_tick(g);
    if (!r->content.s) { /* an instruction record (--instructions): as it came */
        jsonl_source(g, ls->sc, r);
        record_write_raw(g->out, r, g->extra.buf, g->extra.len);
        g->st.emitted++;
        return;
    }
    g->st.content_in += r->content.n;
    if (r->path.s && !ingest_path_wanted(g->o, r->path.s, r->path.n)) {
        walk_skip(g, SKIP_EXCLUDED);
        return;
    }
    if (r->content.n > g->o->max_file) {
        walk_skip(g, SKIP_OVERSIZED);
        return;
    }
    if (memchr(r->content.s, 0, r->content.n)) {
        walk_skip(g, SKIP_BINARY);
        return;
    }
    jsonl_source(g, ls->sc, r);
    record_write(g->out, r, g->extra.buf, g->extra.len);
    g->st.emitted++;
    g->st.content_out += r->content.n;
}

/*
** A whole line: first a safe point for a stop signal (every record before is written), then
** the line.
*/
static void jsonl_next_line(LineSplit *ls, const char *line, size_t len)
{
    if (walk_stopping(ls->g)) {
        walk_stop(ls->g, "%s: at line %llu", ls->g->input, (unsigned long long)ls->lineno + 1);
        return;
    }
    ls->lineno++;
    jsonl_line(ls, line, len);
}

/*
** The part p[0..k) of the current line, before a '\n' (nl) or the block's end: processed
** straight from the block when it is the whole line, else assembled in ls->ln. A line longer
** than --max-line is reported and skipped to its end.
*/
static void jsonl_piece(LineSplit *ls, const char *p, size_t k, int nl)
{
    Ingest *g = ls->g;
    Buf *ln = ls->ln;
    if (ls->too_long) return;
    if (ln->len + k > g->o->max_line) {
        error("%s: line %llu: byte %llu: line longer than --max-line (%llu bytes), skipped",
              g->input, (unsigned long long)ls->lineno + 1, (unsigned long long)ls->line_off,
              (unsigned long long)g->o->max_line);
        g->st.bad_lines++;
        g->bad = 1;
        ls->too_long = 1;
        buf_reset(ln);
    } else if (nl && ln->len == 0) {
        jsonl_next_line(ls, p, k); /* straight from the block */
    } else {
        buf_add(ln, p, k);
        if (nl) {
            jsonl_next_line(ls, ln->buf, ln->len);
            buf_reset(ln);
        }
    }
}

/*
** Split one block of the decompressed stream into lines. 0, or -1 when a stop signal ended
** the stream.
*/
static int jsonl_block(LineSplit *ls, const char *p, size_t sz)
{
    const char *end = p + sz;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t k = nl ? (size_t)(nl - p) : (size_t)(end - p);
        jsonl_piece(ls, p, k, nl != NULL);
        if (ls->g->stopped) return -1;
        ls->off += k;
        p += k;
        if (nl) {
            if (ls->too_long) ls->lineno++;
            ls->too_long = 0;
            p++;
            ls->off++;
            ls->line_off = ls->off;
        }
    }
    return 0;
}

/*
** Read a JSONL dump from archive a (raw format: one decompressed stream), line by line.
** A line longer than --max-line is reported and skipped. Returns 0, or -1 on a read error,
** the expansion cap or a stop signal (then before a line: no record is half-written).
*/
int walk_jsonl_stream(Ingest *g, struct archive *a, const Scope *sc)
{
    struct archive_entry *e;
    LineSplit ls = { g, sc, { 0 }, &g->line, 0, 0, 0, 0 };
    int rc = 0;
    buf_reset(ls.ln);
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) return 0;
    if (r < ARCHIVE_WARN) {
        g->bad = 1;
        return error("%s: %s", g->input, archive_error_string(a));
    }
    ri_init(&ls.ri, g->input, 1); /* cm-ingest always goes on after a bad line */
    ls.ri.rec.content_optional = g->o->instructions;
    for (;;) {
        const void *blk;
        size_t sz;
        la_int64_t boff;
        r = archive_read_data_block(a, &blk, &sz, &boff);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            error("%s: line %llu: byte %llu: %s", g->input, (unsigned long long)ls.lineno + 1,
                  (unsigned long long)ls.off, archive_error_string(a));
            g->bad = 1;
            rc = -1;
            break;
        }
        if (walk_cap_check(g, "data")) {
            rc = -1;
            break;
        }
        if (jsonl_block(&ls, blk, sz) < 0) {
            rc = -1;
            break;
        }
    }
    if (ls.ln->len && !ls.too_long && rc == 0) /* a last line without '\n' */
        jsonl_next_line(&ls, ls.ln->buf, ls.ln->len);
    ri_close(&ls.ri);
    buf_reset(ls.ln);
    if (ls.ln->cap > (8u << 20)) buf_free(ls.ln); /* give back a huge line's memory */
    return rc;
}
