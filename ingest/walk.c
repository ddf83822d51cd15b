// SPDX-License-Identifier: MIT
/*
** walk.c: cm-ingest's engine and its command-line inputs. An input is stdin, a file or a
** directory (walk_dir.c); a file's first 64 KiB are read and sniffed, then it is dispatched:
** an archive (walk_archive.c), a JSONL dump (walk_jsonl.c, command-line inputs only) or a
** plain file, which is checked here (filters, size, NUL bytes) and becomes one record
** (walk_writer.c). The sniffed prefix is replayed to libarchive, so stdin needs no seeking.
*/
#include "walk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------------------------------------
// Engine

/*
** Create an engine (see ingest.h).
*/
Ingest *ingest_new(const IngestOpts *opts, Out *out, int progress)
{
    Ingest *g = xcalloc(1, sizeof *g);
    g->o = opts;
    g->out = out;
    progress_init(&g->prog, progress);
    if (opts->threads > 1) walk_writer_start(g);
    return g;
}

/*
** The counters (complete only after ingest_finish()).
*/
const IngestStats *ingest_stats(const Ingest *g)
{
    return &g->st;
}

/*
** End the progress line.
*/
void ingest_finish(Ingest *g)
{
    walk_writer_stop(g);
    progress_end(&g->prog);
}

/*
** Free the engine and its buffers.
*/
void ingest_free(Ingest *g)
{
    if (!g) return;
    for (int i = 0; i <= MAX_LEVELS; i++) buf_free(&g->lvl[i]);
    walk_writer_stop(g);
    buf_free(&g->w.text);
    buf_free(&g->w.extra);
    buf_free(&g->extra);
    buf_free(&g->path);
    buf_free(&g->line);
    free(g);
}


/*
** Show progress now and then (the clock is read every 64 calls). Only counters of the
** reading thread are shown (the writer thread owns the others).
*/
void walk_tick(Ingest *g)
{
    if (!g->prog.on || (++g->tick & 63)) return;
    progress_update(&g->prog, "%llu files, %.1f MB read", (unsigned long long)g->st.seen,
                    (double)g->st.content_in / 1e6);
}

/*
** Count a skipped entry.
*/
void walk_skip(Ingest *g, int reason)
{
    g->st.skipped[reason]++;
}

/*
** Stop at a safe point (see walk.h): say where, once.
*/
int walk_stop(Ingest *g, const char *fmt, ...)
{
    if (g->stopped) return -1;
    char where[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(where, sizeof where, fmt, ap);
    va_end(ap);
    error("interrupted: %s (records before it are complete)", where);
    g->stopped = 1;
    return -1;
}

/*
** Did a stop signal end the walk (see ingest.h)?
*/
int ingest_stopped(const Ingest *g)
{
    return g->stopped;
}

// ---------------------------------------------------------------------------------------------
// Command-line inputs

/* Replay of a sniffed prefix, then the rest of a file descriptor. */
typedef struct {
    int fd;                /* source */
    const char *name;      /* for messages */
    char *pre;             /* sniffed prefix */
    size_t pre_n, pre_pos; /* its length and how much was returned */
    char *buf;             /* read buffer */
} Replay;

/*
** libarchive read callback: the sniffed prefix, then read(2).
*/
static la_ssize_t replay_read(struct archive *a, void *ud, const void **buf)
{
    Replay *rp = ud;
    if (rp->pre_pos < rp->pre_n) {
        *buf = rp->pre + rp->pre_pos;
        size_t k = rp->pre_n - rp->pre_pos;
        rp->pre_pos = rp->pre_n;
        return (la_ssize_t)k;
    }
    for (;;) {
        ssize_t k = read(rp->fd, rp->buf, READ_BLOCK);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            archive_set_error(a, errno, "read error: %s", strerror(errno));
            return -1;
        }
        *buf = rp->buf;
        return k;
    }
}

/*
** Read up to SNIFF_BYTES from fd into rp->pre. 0, -1 (message printed), or 1 when a stop
** signal came meanwhile (a slow pipe).
*/
static int replay_fill(Replay *rp)
{
    rp->pre = xmalloc(SNIFF_BYTES);
    rp->buf = xmalloc(READ_BLOCK);
    while (rp->pre_n < SNIFF_BYTES) {
        ssize_t k = read(rp->fd, rp->pre + rp->pre_n, SNIFF_BYTES - rp->pre_n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return error("%s: cannot read: %s", rp->name, strerror(errno));
        if (k == 0) break;
        rp->pre_n += (size_t)k;
        if (cm_stopping()) return 1;
    }
    return 0;
}


/*
** Process an opened archive handle as a command-line input: JSONL (raw) or entries.
*/
static int top_archive(Ingest *g, struct archive *a, const Scope *sc, int jsonl)
{
    if (jsonl) walk_writer_drain(g); /* JSONL records are written by this thread */
    walk_level_push(g, a);
    int r = jsonl ? walk_jsonl_stream(g, a, sc) : walk_archive_level(g, a, sc);
    if (r < 0 && !g->stopped) g->st.errors++;
    walk_level_pop(g);
    return r;
}

/*
** Base name of a path without trailing slashes, into b (for repo names).
*/
void walk_base_name(const char *path, Buf *b)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t s = n;
    while (s > 0 && path[s - 1] != '/') s--;
    buf_reset(b);
    buf_add(b, path + s, n - s);
}

// ---------------------------------------------------------------------------------------------
// Plain files

/*
** A directory's plain file that --ext/--include/--exclude or its size drops is counted without
** being opened. Returns 1 when it was dropped.
*/
static int dropped_unopened(Ingest *g, const char *rel, int64_t fsize)
{
    size_t pn = strlen(rel);
    const char *p = ingest_clean_path(rel, &pn);
    int why = !ingest_path_wanted(g->o, p, pn) ? SKIP_EXCLUDED
        : fsize > (int64_t)g->o->max_file      ? SKIP_OVERSIZED
                                               : -1;
    if (why < 0) return 0;
    g->st.seen++;
    walk_tick(g);
    walk_skip(g, why);
    return 1;
}

/*
** Read the rest of a plain file after its sniffed prefix into b, stopping early past
** --max-file-size or at a NUL byte. 0: read whole; 1: skipped (counted); -1: read error
** (reported, counted) or a stop signal (a slow pipe: g->stopped, no record).
*/
static int read_plain(Ingest *g, Replay *rp, const char *fsname, Buf *b)
{
    buf_reset(b);
    buf_add(b, rp->pre, rp->pre_n);
    for (;;) {
        if (b->len > g->o->max_file) {
            walk_skip(g, SKIP_OVERSIZED);
            return 1;
        }
        if (memchr(b->buf, 0, b->len)) {
            walk_skip(g, SKIP_BINARY);
            return 1;
        }
        buf_grow(b, READ_BLOCK);
        ssize_t k = read(rp->fd, b->buf + b->len, READ_BLOCK);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            error("%s: cannot read: %s", fsname, strerror(errno));
            walk_skip(g, SKIP_READ_ERROR);
            g->bad = 1;
            return -1;
        }
        if (k == 0) return 0;
        b->len += (size_t)k;
        if (cm_stopping()) return walk_stop(g, "%s: before its end", fsname);
    }
}

/*
** A plain file: one record whose repo_name is its directory's (none for a command-line file)
** and whose path is rel. 0, or -1 on a read error.
*/
static int plain_file(Ingest *g, Replay *rp, const char *fsname, const Scope *dir, const char *rel,
                      int top)
{
    Scope sc = { 0 };
    sc.source = dir ? dir->source : fsname;
    sc.source_n = dir ? dir->source_n : strlen(fsname);
    size_t pn = strlen(rel);
    const char *p = ingest_clean_path(rel, &pn);
    g->st.seen++;
    walk_tick(g);
    if (top && !ingest_path_wanted(g->o, p, pn)) { /* (a directory's files: dropped_unopened) */
        walk_skip(g, SKIP_EXCLUDED);
        return 0;
    }
    Buf *b = &g->lvl[0];
    int r = read_plain(g, rp, fsname, b);
    if (r != 0) return r < 0 ? -1 : 0;
    g->st.bytes_in += b->len;
    walk_emit_file(g, &sc, dir ? dir->repo : "", dir ? dir->repo_n : 0, p, pn, b->buf ? b->buf : "",
                   b->len, b);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Archives and JSONL dumps given as files

/*
** A libarchive reader of the file: a named archive is read (and seeked) by libarchive itself,
** as zip and 7z want; stdin, JSONL and sniffed archives through the replay of rp. NULL when it
** cannot be opened (reported, counted).
*/
static struct archive *stream_open(Ingest *g, Replay *rp, const char *fsname, int kind,
                                   int is_jsonl)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    if (is_jsonl)
        archive_read_support_format_raw(a);
    else
        archive_read_support_format_all(a);
    if (!is_jsonl && (kind == NAME_ARCHIVE || kind == NAME_DEB) && rp->fd != 0) {
        close(rp->fd);
        rp->fd = -1;
        if (archive_read_open_filename(a, fsname, 1 << 20) == ARCHIVE_OK) return a;
        error("%s: not a readable archive: %s", fsname, archive_error_string(a));
    } else {
        if (archive_read_open(a, rp, NULL, replay_read, NULL) == ARCHIVE_OK) return a;
        error("%s: not a readable %s: %s", g->input, is_jsonl ? "JSONL stream" : "archive",
              archive_error_string(a));
    }
    g->bad = 1;
    g->st.errors++;
    archive_read_free(a);
    return NULL;
}

/*
** The scope of an archive or dump given as a file: in a directory, the directory's repository
** with rel/ as path prefix; else a repository named after the file (stdin: "stdin"), its
** archive suffixes stripped. repo and pre hold the names.
*/
static void stream_scope(Scope *sc, const Replay *rp, const char *fsname, const Scope *dir,
                         const char *rel, int kind, Buf *repo, Buf *pre)
{
    sc->source = fsname;
    sc->source_n = strlen(fsname);
    if (rp->fd == 0) {
        sc->source = "-";
        sc->source_n = 1;
    }
    sc->wrapper = 1;
    sc->is_deb = kind == NAME_DEB;
    if (dir) {
        sc->repo = dir->repo;
        sc->repo_n = dir->repo_n;
        buf_add(pre, rel, strlen(rel));
        buf_addc(pre, '/');
        sc->prefix = pre->buf;
        sc->prefix_n = pre->len;
        sc->depth = 1;
    } else {
        walk_base_name(rp->fd == 0 ? "stdin" : fsname, repo);
        repo->len = ingest_strip_archive_ext(repo->buf);
        sc->repo = repo->buf;
        sc->repo_n = repo->len;
        sc->prefix = "";
    }
}

/*
** An archive or a JSONL dump: a new input for the expansion cap. 0, or -1 when it was
** damaged or capped.
*/
static int stream_input(Ingest *g, Replay *rp, const char *fsname, const Scope *dir,
                        const char *rel, int kind, int is_jsonl)
{
    g->input = dir ? fsname : (rp->fd == 0 ? "stdin" : fsname);
    g->capped = 0;
    g->warnings = 0;
    g->exp_done = g->exp_data = 0;
    struct archive *a = stream_open(g, rp, fsname, kind, is_jsonl);
    if (!a) return -1;
    Buf repo = { 0 }, pre = { 0 };
    Scope sc = { 0 };
    stream_scope(&sc, rp, fsname, dir, rel, kind, &repo, &pre);
    int rc = top_archive(g, a, &sc, is_jsonl) < 0 ? -1 : 0;
    archive_read_free(a);
    buf_free(&repo);
    buf_free(&pre);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Dispatch

/*
** A file given on the command line (top) or found in a directory walk (dir, at path rel):
** an archive, a JSONL dump (top level only) or a plain file. fsname names it in records and
** messages; fsize is its size when known (-1 otherwise).
*/
int walk_file(Ingest *g, const char *fsname, const Scope *dir, const char *rel, int top,
              int64_t fsize)
{
    Replay rp = { -1, fsname, NULL, 0, 0, NULL };
    int rc = 0, kind = ingest_name_kind(fsname);
    if (!top && kind == NAME_JSONL) kind = NAME_PLAIN; /* x.json in a repository is a file */
    if (!top && kind == NAME_PLAIN && dropped_unopened(g, rel, fsize))
        return 0; /* filters first: no need to open what is dropped */
    if (!strcmp(fsname, "-")) {
        rp.fd = 0;
        rp.name = "stdin";
    } else if ((rp.fd = open(fsname, O_RDONLY | O_CLOEXEC)) < 0) {
        g->bad = 1;
        return error("%s: cannot open: %s", fsname, strerror(errno));
    }
    int fill = replay_fill(&rp);
    if (fill > 0) {
        rc = walk_stop(g, "%s: at its start", rp.name);
    } else if (fill < 0) {
        g->bad = 1;
        rc = -1;
    } else if (rp.fd != 0 || rp.pre_n != 0) { /* (empty stdin: nothing to read) */
        int sn = ingest_sniff_archive((unsigned char *)rp.pre, rp.pre_n);
        int is_jsonl = top &&
            (kind == NAME_JSONL || (kind == NAME_PLAIN && walk_sniff_jsonl(rp.pre, rp.pre_n, 0)));
        if (!is_jsonl && kind == NAME_PLAIN && sn != 1 && !(sn == 2 && top))
            rc = plain_file(g, &rp, fsname, dir, rel, top);
        else
            rc = stream_input(g, &rp, fsname, dir, rel, kind, is_jsonl);
    }
    if (rp.fd > 0) close(rp.fd);
    free(rp.pre);
    free(rp.buf);
    return rc;
}

/*
** Process one command-line input (see ingest.h).
*/
int ingest_input(Ingest *g, const char *name)
{
    struct stat st;
    if (walk_stopping(g)) { /* a safe point: between inputs */
        walk_stop(g, "before input '%s'", name);
        return 0;
    }
    g->bad = 0;
    g->st.inputs++;
    g->input = name;
    if (strcmp(name, "-") != 0) {
        if (stat(name, &st) < 0) {
            error("%s: cannot open: %s", name, strerror(errno));
            g->st.errors++;
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            walk_dir(g, name);
            return g->bad ? 1 : 0;
        }
    }
    walk_file(g, name, NULL, name, 1, -1);
    return g->bad ? 1 : 0;
}
