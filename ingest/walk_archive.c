// SPDX-License-Identifier: MIT
/*
** walk_archive.c: cm-ingest's archives. libarchive reads any format and filter; an entry that
** is itself an archive is opened with a read callback that pulls from the outer entry's data
** (no temp file, no full buffering), up to --max-depth levels.
**
** Expansion cap (decompression bombs): per command-line input, the bytes produced by
** decompression at every level (stream filters, plus entry data decoded by zip/7z) may not
** exceed --max-expansion times the compressed bytes read (counted as at least 1 MiB) nor
** --max-expanded-size. When they do, the input is abandoned with a message.
*/
#include "walk.h"

#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
// Entry naming

/*
** Work out repo_name and the repo-relative path of entry `name` at scope sc, into g->path.
** Sets *repo and *repo_n.
*/
static void entry_naming(Ingest *g, const Scope *sc, const char *name, size_t n, const char **repo,
                         size_t *repo_n)
{
    size_t comp, nl;
    *repo = sc->repo;
    *repo_n = sc->repo_n;
    buf_reset(&g->path);
    if (sc->wrapper && (nl = ingest_github_wrapper(name, n, &comp)) > 0) {
        *repo = name;
        *repo_n = nl;
        buf_add(&g->path, name + comp + 1, n - comp - 1);
        return;
    }
    buf_add(&g->path, sc->prefix, sc->prefix_n);
    buf_add(&g->path, name, n);
}

// ---------------------------------------------------------------------------------------------
// Expansion cap

/*
** Has the current input expanded past the cap? Prints the message once and sets g->capped.
*/
int walk_cap_check(Ingest *g, const char *entry)
{
    if (g->capped) return 1;
    if (!g->nlevels) return 0;
    uint64_t exp = g->exp_done + g->exp_data;
    for (int i = 0; i < g->nlevels; i++)
        if (archive_filter_count(g->levels[i]) > 1)
            exp += (uint64_t)archive_filter_bytes(g->levels[i], 0);
    uint64_t comp = (uint64_t)archive_filter_bytes(g->levels[0], -1);
    uint64_t base = comp < (1u << 20) ? (1u << 20) : comp;
    if (exp <= g->o->max_expanded && (double)exp <= g->o->max_ratio * (double)base) return 0;
    g->capped = 1;
    g->bad = 1;
    g->st.capped_inputs++;
    if (exp > g->o->max_expanded)
        error(
            "%s: %s: expansion exceeds --max-expanded-size (%llu bytes expanded); rest of the input skipped",
            g->input, entry ? entry : "(header)", (unsigned long long)exp);
    else
        error(
            "%s: %s: expansion exceeds %gx (%llu bytes expanded from %llu); rest of the input skipped",
            g->input, entry ? entry : "(header)", g->o->max_ratio, (unsigned long long)exp,
            (unsigned long long)comp);
    return 1;
}

/*
** Register an open archive as the next level (for the cap), or unregister the innermost.
*/
void walk_level_push(Ingest *g, struct archive *a)
{
    g->levels[g->nlevels++] = a;
    g->st.archives++;
}

void walk_level_pop(Ingest *g)
{
    struct archive *a = g->levels[--g->nlevels];
    if (archive_filter_count(a) > 1) g->exp_done += (uint64_t)archive_filter_bytes(a, 0);
    if (g->nlevels == 0) g->st.bytes_in += (uint64_t)archive_filter_bytes(a, -1);
}

// ---------------------------------------------------------------------------------------------
// Archive entries

enum { RD_OK, RD_SKIP, RD_FATAL };

/*
** Drain the rest of the current entry, checking the cap: on a compressed level libarchive
** would decompress it anyway while skipping, and a bomb must be stopped while it expands.
** On an uncompressed level libarchive can skip without decoding: leave it to next_header.
*/
static int drain_entry(Ingest *g, struct archive *a, const char *entry)
{
    if (archive_filter_count(a) <= 1) return RD_SKIP;
    const void *b;
    size_t sz;
    la_int64_t off;
    for (;;) {
        int r = archive_read_data_block(a, &b, &sz, &off);
        if (r == ARCHIVE_EOF) return RD_SKIP;
        if (r < ARCHIVE_WARN) return RD_SKIP; /* reported by the next header */
        if (archive_filter_count(a) <= 1) g->exp_data += sz;
        if (walk_cap_check(g, entry)) return RD_FATAL;
    }
}

/*
** Read the current entry's data into g->lvl[depth] (or point at libarchive's block when the
** entry came in one piece). Stops early at a NUL byte (binary) or past max_file (oversized);
** then *reason is set and RD_SKIP returned. `keep_binary` reads on through NULs (an entry
** whose magic says archive). RD_FATAL: the level cannot go on (message printed).
*/
static int read_entry(Ingest *g, struct archive *a, const Scope *sc, struct archive_entry *e,
                      const char *entry, int *sniff, const char **data, size_t *n, int *reason)
{
    Buf *b = &g->lvl[sc->depth];
    const void *blk;
    size_t sz;
    la_int64_t off, pos = 0;
    int64_t want = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
    int first = 1;
    buf_reset(b);
    if (want > 0 && (uint64_t)want <= g->o->max_file)
        buf_grow(b, (size_t)want); /* one allocation */
    *sniff = 0;
    *data = NULL;
    *n = 0;
    for (;;) {
        int r = archive_read_data_block(a, &blk, &sz, &off);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            if (g->capped) return RD_FATAL;
            error("%.*s: %s: %s", (int)sc->source_n, sc->source, entry, archive_error_string(a));
            g->bad = 1;
            *reason = SKIP_READ_ERROR;
            return r == ARCHIVE_FATAL ? RD_FATAL : RD_SKIP;
        }
        if (sz == 0) continue; /* libarchive may hand a NULL, empty block */
        if (archive_filter_count(a) <= 1) g->exp_data += sz;
        if (walk_cap_check(g, entry)) return RD_FATAL;
        if (off != pos) { /* a sparse hole: zeros, so binary */
            *reason = SKIP_BINARY;
            return drain_entry(g, a, entry);
        }
        if (first) {
            first = 0;
            *sniff = ingest_sniff_archive(blk, sz);
            if (*sniff == 1 && sc->depth < g->o->max_depth) {
                /* a container: keep reading through its NULs */
            } else if (memchr(blk, 0, sz)) {
                *reason = SKIP_BINARY;
                return drain_entry(g, a, entry);
            }
            if (want >= 0 && (uint64_t)want == sz && sz <= g->o->max_file) {
                *data = blk; /* the whole entry in one block: no copy */
                *n = sz;
                return RD_OK;
            }
        } else if (*sniff != 1 && memchr(blk, 0, sz)) {
            *reason = SKIP_BINARY;
            return drain_entry(g, a, entry);
        }
        pos += (la_int64_t)sz;
        if ((uint64_t)pos > g->o->max_file) {
            *reason = SKIP_OVERSIZED;
            return drain_entry(g, a, entry);
        }
        buf_add(b, blk, sz);
    }
    *data = b->buf ? b->buf : "";
    *n = b->len;
    return RD_OK;
}

/* A nested archive's source: the outer entry's data, pulled block by block. */
typedef struct {
    Ingest *g;             /* engine */
    struct archive *outer; /* the archive whose current entry holds this one */
    const char *entry;     /* the outer entry's name */
    int err;               /* the outer archive failed */
} Nest;

/*
** libarchive read callback of a nested archive: the next data block of the outer entry.
*/
static la_ssize_t nest_read(struct archive *a, void *ud, const void **buf)
{
    Nest *ns = ud;
    size_t sz;
    la_int64_t off;
    int r = archive_read_data_block(ns->outer, buf, &sz, &off);
    if (r == ARCHIVE_EOF) return 0;
    if (r < ARCHIVE_WARN) {
        ns->err = 1;
        archive_set_error(a, EIO, "%s", archive_error_string(ns->outer));
        return -1;
    }
    if (archive_filter_count(ns->outer) <= 1) ns->g->exp_data += sz;
    if (walk_cap_check(ns->g, ns->entry)) {
        archive_set_error(a, EFBIG, "expansion cap");
        return -1;
    }
    return (la_ssize_t)sz;
}

/*
** Open a new archive reader with every filter and format.
*/
static struct archive *archive_new_all(void)
{
    struct archive *a = archive_read_new();
    if (!a) die(CM_EINTERNAL, "out of memory");
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    return a;
}

/*
** Descend into the entry `name` of archive `outer` (whose data is an archive): either streamed
** from the outer entry (mem == NULL) or from memory. repo[0..repo_n) and g->path are the
** entry's naming (entry_naming): its entries keep that repo_name (a GitHub wrapper's NAME) and
** have g->path as prefix (copied before the inner level reuses g->path). Returns RD_OK or
** RD_FATAL (the outer level is broken or the cap fired).
*/
static int descend(Ingest *g, struct archive *outer, const Scope *sc, const char *name,
                   size_t name_n, const char *repo, size_t repo_n, const char *mem, size_t mem_n)
{
    Scope in = *sc;
    Buf src = { 0 }, pre = { 0 };
    Nest ns = { g, outer, name, 0 };
    int rc = RD_OK;
    in.depth = sc->depth + 1;
    buf_add(&src, sc->source, sc->source_n);
    buf_addc(&src, '!');
    buf_add(&src, name, name_n);
    in.source = src.buf;
    in.source_n = src.len;
    in.is_deb = ingest_name_kind(name) == NAME_DEB;
    in.wrapper = 1;
    if (sc->is_deb && name_n >= 9 && !memcmp(name, "data.tar", 8)) {
        in.wrapper = 0;     /* a .deb's payload: paths start at its root */
    } else if (in.is_deb) { /* a package inside a dump: it is the repository */
        const char *slash = memrchr(name, '/', name_n);
        const char *base = slash ? slash + 1 : name;
        buf_add(&pre, base, name_n - (size_t)(base - name));
        in.repo = pre.buf;
        in.repo_n = ingest_strip_archive_ext(pre.buf);
        in.prefix = "";
        in.prefix_n = 0;
    } else {
        in.repo = repo;
        in.repo_n = repo_n;
        buf_add(&pre, g->path.buf, g->path.len);
        buf_addc(&pre, '/');
        in.prefix = pre.buf;
        in.prefix_n = pre.len;
    }
    struct archive *a = archive_new_all();
    int r = mem ? archive_read_open_memory(a, mem, mem_n)
                : archive_read_open(a, &ns, NULL, nest_read, NULL);
    walk_level_push(g, a);
    if (r != ARCHIVE_OK) {
        if (!g->capped) {
            error("%.*s: %.*s: not a readable archive: %s", (int)sc->source_n, sc->source,
                  (int)name_n, name, archive_error_string(a));
            g->bad = 1;
            g->st.errors++;
            walk_skip(g, SKIP_READ_ERROR);
        }
    } else if (walk_archive_level(g, a, &in) < 0 && !g->stopped) {
        g->st.errors++;
    }
    walk_level_pop(g);
    archive_read_free(a);
    if (ns.err || g->capped || g->stopped) rc = RD_FATAL;
    buf_free(&src);
    buf_free(&pre);
    return rc;
}

/*
** Handle the current entry `e` of archive a at scope sc. Returns RD_OK, or RD_FATAL when the
** level must stop.
*/
static int archive_entry_do(Ingest *g, struct archive *a, const Scope *sc, struct archive_entry *e)
{
    const char *raw = archive_entry_pathname(e); /* the bytes as stored: no conversion */
    if (!raw) raw = archive_entry_pathname_utf8(e);
    if (!raw) raw = "";
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFDIR) return RD_OK;
    g->st.seen++;
    walk_tick(g);
    Buf fixed = { 0 };
    size_t n = strlen(raw);
    if (utf8_valid_prefix((const unsigned char *)raw, n) != n) {
        utf8_repair((const unsigned char *)raw, n, &fixed);
        raw = fixed.buf;
        n = fixed.len;
    }
    const char *name = ingest_clean_path(raw, &n);
    char *ename = xstrndup(name, n); /* for messages */
    int rc = RD_OK;
    const char *repo;
    size_t repo_n;
    if (archive_entry_symlink(e) || archive_entry_hardlink(e) || type == AE_IFLNK) {
        walk_skip(g, SKIP_SYMLINK);
        goto done;
    }
    if (type != AE_IFREG && type != 0) {
        walk_skip(g, SKIP_SPECIAL);
        goto done;
    }
    if (sc->is_deb && (!strcmp(ename, "debian-binary") || !strncmp(ename, "control.tar", 11))) {
        walk_skip(g, SKIP_EXCLUDED);
        goto done;
    }
    entry_naming(g, sc, name, n, &repo, &repo_n);
    int kind = ingest_name_kind(ename);
    if (kind == NAME_ARCHIVE || kind == NAME_DEB) {
        if (sc->depth >= g->o->max_depth) {
            walk_skip(g, SKIP_DEPTH);
            warn("%.*s: %s: archive nested deeper than --max-depth=%d, skipped", (int)sc->source_n,
                 sc->source, ename, g->o->max_depth);
            goto done;
        }
        g->st.seen--; /* an archive is not a file: its entries are */
        rc = descend(g, a, sc, name, n, repo, repo_n, NULL, 0);
        goto done;
    }
    if (!ingest_path_wanted(g->o, g->path.buf, g->path.len)) {
        walk_skip(g, SKIP_EXCLUDED);
        goto done;
    }
    if (archive_entry_size_is_set(e) && (uint64_t)archive_entry_size(e) > g->o->max_file) {
        rc = drain_entry(g, a, ename) == RD_FATAL ? RD_FATAL : RD_OK;
        walk_skip(g, g->capped ? SKIP_EXPANSION : SKIP_OVERSIZED);
        goto done;
    }
    const char *data;
    size_t dn;
    int sniff, reason = 0;
    int r = read_entry(g, a, sc, e, ename, &sniff, &data, &dn, &reason);
    if (r != RD_OK) {
        walk_skip(g, g->capped ? SKIP_EXPANSION : reason);
        if (r == RD_FATAL) rc = RD_FATAL;
        goto done;
    }
    if (sniff == 1 && sc->depth < g->o->max_depth) {
        g->st.seen--;
        rc = descend(g, a, sc, name, n, repo, repo_n, data, dn);
        goto done;
    }
    walk_emit_file(g, sc, repo, repo_n, g->path.buf, g->path.len, data, dn, &g->lvl[sc->depth]);
done:
    free(ename);
    buf_free(&fixed);
    return rc;
}

/*
** The entry loop of one archive level. Returns 0, or -1 when it stopped on an error (reported),
** on the expansion cap or on a stop signal (then before an entry, so no record is half-made).
*/
int walk_archive_level(Ingest *g, struct archive *a, const Scope *sc)
{
    struct archive_entry *e;
    char last[256] = "";
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) return 0;
        if (walk_cap_check(g, last[0] ? last : NULL)) return -1;
        if (r == ARCHIVE_WARN) { /* log and go on; at most MAX_WARNINGS per input */
            if (++g->warnings <= MAX_WARNINGS)
                warn("%.*s: %s: %s%s", (int)sc->source_n, sc->source,
                     archive_entry_pathname(e) ? archive_entry_pathname(e) : "?",
                     archive_error_string(a),
                     g->warnings == MAX_WARNINGS ? " (further warnings for this input not shown)"
                                                 : "");
        } else if (r != ARCHIVE_OK) {
            if (g->capped) return -1;
            if (last[0])
                error("%.*s: after '%s': %s", (int)sc->source_n, sc->source, last,
                      archive_error_string(a));
            else
                error("%.*s: first entry: %s", (int)sc->source_n, sc->source,
                      archive_error_string(a));
            g->bad = 1;
            return -1;
        }
        const char *nm = archive_entry_pathname(e);
        if (walk_stopping(g)) /* a safe point: between entries */
            return walk_stop(g, "%.*s: at entry '%s'", (int)sc->source_n, sc->source,
                             nm ? nm : "?");
        snprintf(last, sizeof last, "%s", nm ? nm : "?");
        if (archive_entry_do(g, a, sc, e) == RD_FATAL) return -1;
    }
}
