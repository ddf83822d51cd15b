// SPDX-License-Identifier: MIT
/*
** walk_jsonl.c: cm-ingest's JSONL dumps (the codeparrot / The Stack schema). libarchive's raw
** format reads them (so .gz/.zst/.xz/.bz2 are read the same way); the stream is split into
** lines, each validated by record_parse and written back with record_write, our "source"
** field added. A line longer than --max-line is reported and skipped.
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
        if (depth > 0) return 0;   /* compressed twice, or a stream libarchive passes through */
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

/*
** Process one JSONL line (lineno, at byte offset off of the decompressed input).
*/
static void jsonl_line(Ingest *g, const Scope *sc, const char *line, size_t len,
                       uint64_t lineno, uint64_t off)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    if (i == len) return;                  /* blank line */
    g->st.jsonl_lines++;
    Record *r = &g->rec;
    if (record_parse(r, line, len)) {
        error("%s: line %llu: byte %llu: %s", g->input, (unsigned long long)lineno,
              (unsigned long long)(off + r->err_pos), r->err);
        g->st.bad_lines++;
        g->bad = 1;
        return;
    }
    g->st.seen++;
    walk_tick(g);
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
    buf_reset(&g->extra);
    if (!g->o->no_source && !json_get(&r->obj, "source")) {
        buf_adds(&g->extra, "\"source\":");
        json_escape(&g->extra, sc->source, sc->source_n);
    }
    record_write(g->out, r, g->extra.buf, g->extra.len);
    g->st.emitted++;
    g->st.content_out += r->content.n;
}

/*
** Read a JSONL dump from archive a (raw format: one decompressed stream), line by line.
** A line longer than --max-line is reported and skipped. Returns 0, or -1 on a read error.
*/
int walk_jsonl_stream(Ingest *g, struct archive *a, const Scope *sc)
{
    struct archive_entry *e;
    Buf *ln = &g->line;
    uint64_t lineno = 0, off = 0, line_off = 0;
    int too_long = 0, rc = 0;
    buf_reset(ln);
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) return 0;
    if (r < ARCHIVE_WARN) {
        g->bad = 1;
        return error("%s: %s", g->input, archive_error_string(a));
    }
    for (;;) {
        const void *blk;
        size_t sz;
        la_int64_t boff;
        r = archive_read_data_block(a, &blk, &sz, &boff);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            error("%s: line %llu: byte %llu: %s", g->input, (unsigned long long)lineno + 1,
                  (unsigned long long)off, archive_error_string(a));
            g->bad = 1;
            rc = -1;
            break;
        }
        if (walk_cap_check(g, "data")) { rc = -1; break; }
        const char *p = blk, *end = p + sz;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t k = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (!too_long) {
                if (ln->len + k > g->o->max_line) {
                    error("%s: line %llu: byte %llu: line longer than --max-line (%llu bytes), skipped",
                          g->input, (unsigned long long)lineno + 1, (unsigned long long)line_off,
                          (unsigned long long)g->o->max_line);
                    g->st.bad_lines++;
                    g->bad = 1;
                    too_long = 1;
                    buf_reset(ln);
                } else if (nl && ln->len == 0) {
                    lineno++;
                    jsonl_line(g, sc, p, k, lineno, line_off);   /* straight from the block */
                } else {
                    buf_add(ln, p, k);
                    if (nl) {
                        lineno++;
                        jsonl_line(g, sc, ln->buf, ln->len, lineno, line_off);
                        buf_reset(ln);
                    }
                }
            }
            off += k;
            p += k;
            if (nl) {
                if (too_long) lineno++;
                too_long = 0;
                p++;
                off++;
                line_off = off;
            }
        }
    }
    if (ln->len && !too_long && rc == 0) {         /* a last line without '\n' */
        lineno++;
        jsonl_line(g, sc, ln->buf, ln->len, lineno, line_off);
    }
    buf_reset(ln);
    if (ln->cap > (8u << 20)) buf_free(ln);        /* give back a huge line's memory */
    return rc;
}
