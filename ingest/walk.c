// SPDX-License-Identifier: MIT
/*
** walk.c: cm-ingest's input loops. Every input becomes a stream of (repo_name, path, bytes)
** that is checked (size, NUL bytes, UTF-8, filters) and written as one JSONL record.
**
**   archives     libarchive, any format and filter; an entry that is itself an archive is
**                opened with a read callback that pulls from the outer entry's data (no temp
**                file, no full buffering), up to --max-depth levels.
**   directories  fts, sorted by name, so the output does not depend on the file system.
**   JSONL dumps  libarchive's raw format (so .gz/.zst/.xz/.bz2 are read the same way), split
**                into lines, each validated by record_parse and written back with record_write.
**
** Expansion cap (decompression bombs): per command-line input, the bytes produced by
** decompression at every level (stream filters, plus entry data decoded by zip/7z) may not
** exceed --max-expansion times the compressed bytes read (counted as at least 1 MiB) nor
** --max-expanded-size. When they do, the input is abandoned with a message.
*/
#include "ingest.h"
#include "record.h"
#include "json.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LEVELS 32          /* hard limit on --max-depth */
#define SNIFF_BYTES (64 * 1024)
#define MAX_WARNINGS 10        /* libarchive warnings printed per input */
#define READ_BLOCK (256 * 1024)

const char *const ingest_skip_names[SKIP__N] = {
    "binary", "invalid_utf8", "symlink", "special", "oversized", "excluded",
    "notebook_error", "expansion_cap", "read_error", "too_deep"
};

#define PIPE_JOBS 32           /* files in flight between the reader and the writer thread */
#define PIPE_BATCH 16          /* the writer wakes for this many jobs (fewer context switches) */
#define PIPE_KEEP (64 * 1024)  /* a slot keeps at most this much buffer after a job */

/* Scratch buffers of the code that writes records. */
typedef struct {
    Buf text;                  /* notebook conversion or UTF-8 repair */
    Buf extra;                 /* our fields, formatted */
} Writer;

/* One file on its way to the writer thread. */
typedef struct {
    Buf data;                  /* a copy of the content */
    Buf names;                 /* repo_name, path and source, back to back */
    size_t repo_n, path_n, src_n; /* their lengths */
} Job;

/* The ring between the reading thread and the writer thread. */
typedef struct {
    pthread_t th;              /* the writer */
    pthread_mutex_t mu;        /* guards head, tail, stop */
    pthread_cond_t cv_get;     /* a job was queued, or stop */
    pthread_cond_t cv_put;     /* a job was written */
    Job job[PIPE_JOBS];        /* slots; job[i % PIPE_JOBS] for i in [tail, head) are queued */
    unsigned head, tail;       /* jobs queued / written so far */
    int stop;                  /* no more jobs */
    int w_waits, r_waits;      /* the writer / the reader sleeps on its condition */
    int flush;                 /* the reader waits for the ring to empty */
    size_t bytes;              /* content bytes queued */
    size_t limit;              /* at most this many (unless the ring is empty) */
    Writer w;                  /* the writer thread's scratch buffers */
} Pipe;

/* Where an entry sits: the repository and path prefix in effect, and the chain of
** containers for messages and the "source" field. One per open level, on the C stack. */
typedef struct Scope {
    const char *repo;          /* repo_name in effect */
    size_t repo_n;             /* its length */
    const char *prefix;        /* path prefix inside the repository ("" or "dir/x.zip/") */
    size_t prefix_n;           /* its length */
    const char *source;        /* "input" or "input!inner.zip" */
    size_t source_n;           /* its length */
    int depth;                 /* 0 for a command-line input */
    int is_deb;                /* this level is a Debian package (ar) */
    int wrapper;               /* strip a GitHub NAME-SHA/ wrapper at this level */
} Scope;

struct Ingest {
    const IngestOpts *o;       /* options */
    Out *out;                  /* records go here */
    IngestStats st;            /* counters */
    Progress prog;             /* stderr progress */
    Buf lvl[MAX_LEVELS + 1];   /* entry buffer per level */
    Writer w;                  /* scratch buffers when writing without the thread */
    Pipe *pipe;                /* the writer thread, or NULL */
    Buf extra;                 /* our fields for JSONL records */
    Buf path;                  /* repo-relative path of the entry */
    Buf line;                  /* JSONL line being assembled */
    Record rec;                /* parsed JSONL line */
    /* per command-line input */
    const char *input;         /* its name for messages */
    struct archive *levels[MAX_LEVELS + 1]; /* open archives, outermost first */
    int nlevels;               /* how many are open */
    uint64_t exp_done;         /* expanded bytes of levels already closed */
    uint64_t exp_data;         /* entry data bytes read from levels without a filter */
    int capped;                /* the expansion cap fired: unwind */
    int bad;                   /* something in this input was bad */
    int warnings;              /* libarchive warnings shown for this input */
    unsigned tick;             /* progress throttle */
};

static int archive_level(Ingest *g, struct archive *a, const Scope *sc);
static void pipe_start(Ingest *g);
static void pipe_stop(Ingest *g);

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
    record_init(&g->rec);
    if (opts->threads > 1) pipe_start(g);
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
    pipe_stop(g);
    progress_end(&g->prog);
}

/*
** Free the engine and its buffers.
*/
void ingest_free(Ingest *g)
{
    if (!g) return;
    for (int i = 0; i <= MAX_LEVELS; i++) buf_free(&g->lvl[i]);
    pipe_stop(g);
    buf_free(&g->w.text);
    buf_free(&g->w.extra);
    buf_free(&g->extra);
    buf_free(&g->path);
    buf_free(&g->line);
    record_free(&g->rec);
    free(g);
}

/*
** Show progress now and then (the clock is read every 64 calls). Only counters of the
** reading thread are shown (the writer thread owns the others).
*/
static void tick(Ingest *g)
{
    if (!g->prog.on || (++g->tick & 63)) return;
    progress_update(&g->prog, "%llu files, %.1f MB read",
                    (unsigned long long)g->st.seen, (double)g->st.content_in / 1e6);
}

/*
** Count a skipped entry.
*/
static void skip(Ingest *g, int reason)
{
    g->st.skipped[reason]++;
}

// ---------------------------------------------------------------------------------------------
// Records, and the writer thread
//
// With --threads=2 (the default) the reading thread (libarchive: decompression, entry loop)
// hands each file to a writer thread (UTF-8 check, notebook conversion, JSON escaping, write)
// through a ring of PIPE_JOBS slots, in order, so the output is the same as with one thread.
// Each slot holds a copy of the content; the ring holds at most 4 x --max-file-size of content
// (or one file) plus PIPE_JOBS x 64 KiB of kept buffers. Counters are split: the writer owns emitted, content_out, utf8_repaired,
// notebooks and the invalid_utf8 / notebook_error skips; the reader owns the rest.

/*
** Write our fields ("source", "notebook") into w->extra.
*/
static void build_extra(Ingest *g, Writer *w, const char *src, size_t src_n, int notebook)
{
    buf_reset(&w->extra);
    if (!g->o->no_source) {
        buf_adds(&w->extra, "\"source\":");
        json_escape(&w->extra, src, src_n);
    }
    if (notebook) {
        if (w->extra.len) buf_addc(&w->extra, ',');
        buf_adds(&w->extra, "\"notebook\":true");
    }
}

/*
** Check one file's bytes and write its record: UTF-8 (skip or repair), notebooks converted.
** path[0..path_n) is the repo-relative path. NUL bytes and size were checked by the caller.
** Runs in the writer thread when there is one.
*/
static void write_file(Ingest *g, Writer *w, const char *repo, size_t repo_n, const char *path,
                       size_t path_n, const char *src, size_t src_n, const char *data, size_t n)
{
    int notebook = 0;
    if (utf8_valid_prefix((const unsigned char *)data, n) != n) {
        if (!g->o->utf8_replace) {
            skip(g, SKIP_UTF8);
            return;
        }
        buf_reset(&w->text);
        utf8_repair((const unsigned char *)data, n, &w->text);
        data = w->text.buf;
        n = w->text.len;
        g->st.utf8_repaired++;
    }
    if (path_n > 6 && !strncasecmp(path + path_n - 6, ".ipynb", 6)) {
        Buf py = {0};
        char why[200];
        int cells = notebook_to_py(data, n, &py, why, sizeof why);
        if (cells <= 0) {
            if (cells == 0) snprintf(why, sizeof why, "no code cells");
            skip(g, SKIP_NOTEBOOK);
            warn("%.*s: %.*s: notebook skipped: %s", (int)src_n, src, (int)path_n, path, why);
            buf_free(&py);
            return;
        }
        buf_free(&w->text);
        w->text = py;
        data = w->text.buf;
        n = w->text.len;
        notebook = 1;
        g->st.notebooks++;
    }
    build_extra(g, w, src, src_n, notebook);
    record_write_parts(g->out, repo, repo_n, path, path_n, data, n, NULL, w->extra.buf, w->extra.len);
    g->st.emitted++;
    g->st.content_out += n;
}

/*
** The writer thread: take jobs in order until told to stop.
*/
static void *pipe_main(void *arg)
{
    Ingest *g = arg;
    Pipe *p = g->pipe;
    int run = 0;                       /* working through a batch: go on until empty */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        unsigned q = p->head - p->tail;
        if (q == 0) {
            run = 0;
            if (p->stop) break;
        }
        if (!(q > 0 && (run || p->stop || p->flush || p->r_waits || q >= PIPE_BATCH ||
                        p->bytes >= p->limit / 2))) {
            p->w_waits = 1;
            pthread_cond_wait(&p->cv_get, &p->mu);
            p->w_waits = 0;
            continue;
        }
        run = 1;
        Job *j = &p->job[p->tail % PIPE_JOBS];
        pthread_mutex_unlock(&p->mu);
        const char *nm = j->names.buf;
        size_t n = j->data.len;
        write_file(g, &p->w, nm, j->repo_n, nm + j->repo_n, j->path_n,
                   nm + j->repo_n + j->path_n, j->src_n, j->data.buf ? j->data.buf : "", n);
        if (j->data.cap > PIPE_KEEP) buf_free(&j->data);
        pthread_mutex_lock(&p->mu);
        p->tail++;
        p->bytes -= n;
        if (p->r_waits) pthread_cond_signal(&p->cv_put);   /* wake only a sleeper */
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/*
** Start the writer thread; on failure stay single-threaded.
*/
static void pipe_start(Ingest *g)
{
    Pipe *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_get, NULL);
    pthread_cond_init(&p->cv_put, NULL);
    p->limit = 4 * (size_t)g->o->max_file;
    g->pipe = p;
    if (pthread_create(&p->th, NULL, pipe_main, g) != 0) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv_get);
        pthread_cond_destroy(&p->cv_put);
        free(p);
        g->pipe = NULL;
    }
}

/*
** Wait until the writer has written every queued job (before the reader writes itself).
*/
static void pipe_drain(Ingest *g)
{
    Pipe *p = g->pipe;
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->flush = 1;
    if (p->w_waits) pthread_cond_signal(&p->cv_get);
    while (p->head != p->tail) {
        p->r_waits = 1;
        pthread_cond_wait(&p->cv_put, &p->mu);
        p->r_waits = 0;
    }
    p->flush = 0;
    pthread_mutex_unlock(&p->mu);
}

/*
** Stop and join the writer thread, free the ring.
*/
static void pipe_stop(Ingest *g)
{
    Pipe *p = g->pipe;
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->cv_get);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    for (int i = 0; i < PIPE_JOBS; i++) {
        buf_free(&p->job[i].data);
        buf_free(&p->job[i].names);
    }
    buf_free(&p->w.text);
    buf_free(&p->w.extra);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_get);
    pthread_cond_destroy(&p->cv_put);
    free(p);
    g->pipe = NULL;
}

/*
** Hand one file to the writer (or write it now without a writer thread). When the content is
** the whole of buffer `own` (may be NULL), the buffer is swapped into the job instead of copied.
*/
static void emit_file(Ingest *g, const Scope *sc, const char *repo, size_t repo_n,
                      const char *path, size_t path_n, const char *data, size_t n, Buf *own)
{
    Pipe *p = g->pipe;
    g->st.content_in += n;
    if (!p) {
        write_file(g, &g->w, repo, repo_n, path, path_n, sc->source, sc->source_n, data, n);
        return;
    }
    pthread_mutex_lock(&p->mu);
    while (p->head - p->tail == PIPE_JOBS || (p->head != p->tail && p->bytes + n > p->limit)) {
        p->r_waits = 1;
        if (p->w_waits) pthread_cond_signal(&p->cv_get);
        pthread_cond_wait(&p->cv_put, &p->mu);
        p->r_waits = 0;
    }
    Job *j = &p->job[p->head % PIPE_JOBS];   /* free: the writer is behind tail */
    pthread_mutex_unlock(&p->mu);
    if (own && own->buf == data && own->len == n) {
        Buf t = j->data;               /* the job gets the filled buffer, the caller an old one */
        j->data = *own;
        *own = t;
    } else {
        buf_reset(&j->data);
        buf_add(&j->data, data, n);
    }
    buf_reset(&j->names);
    buf_add(&j->names, repo, repo_n);
    buf_add(&j->names, path, path_n);
    buf_add(&j->names, sc->source, sc->source_n);
    j->repo_n = repo_n;
    j->path_n = path_n;
    j->src_n = sc->source_n;
    pthread_mutex_lock(&p->mu);
    p->head++;
    p->bytes += n;
    if (p->w_waits && (p->head - p->tail >= PIPE_BATCH || p->bytes >= p->limit / 2))
        pthread_cond_signal(&p->cv_get);
    pthread_mutex_unlock(&p->mu);
}

/*
** Work out repo_name and the repo-relative path of entry `name` at scope sc, into g->path.
** Sets *repo and *repo_n.
*/
static void entry_naming(Ingest *g, const Scope *sc, const char *name, size_t n,
                         const char **repo, size_t *repo_n)
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
static int cap_check(Ingest *g, const char *entry)
{
    if (g->capped) return 1;
    if (!g->nlevels) return 0;
    uint64_t exp = g->exp_done + g->exp_data;
    for (int i = 0; i < g->nlevels; i++)
        if (archive_filter_count(g->levels[i]) > 1) exp += (uint64_t)archive_filter_bytes(g->levels[i], 0);
    uint64_t comp = (uint64_t)archive_filter_bytes(g->levels[0], -1);
    uint64_t base = comp < (1u << 20) ? (1u << 20) : comp;
    if (exp <= g->o->max_expanded && (double)exp <= g->o->max_ratio * (double)base) return 0;
    g->capped = 1;
    g->bad = 1;
    g->st.capped_inputs++;
    if (exp > g->o->max_expanded)
        error("%s: %s: expansion exceeds --max-expanded-size (%llu bytes expanded); rest of the input skipped",
              g->input, entry ? entry : "(header)", (unsigned long long)exp);
    else
        error("%s: %s: expansion exceeds %gx (%llu bytes expanded from %llu); rest of the input skipped",
              g->input, entry ? entry : "(header)", g->o->max_ratio, (unsigned long long)exp,
              (unsigned long long)comp);
    return 1;
}

/*
** Register an open archive as the next level (for the cap), or unregister the innermost.
*/
static void level_push(Ingest *g, struct archive *a)
{
    g->levels[g->nlevels++] = a;
    g->st.archives++;
}

static void level_pop(Ingest *g)
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
        if (cap_check(g, entry)) return RD_FATAL;
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
    if (want > 0 && (uint64_t)want <= g->o->max_file) buf_grow(b, (size_t)want); /* one allocation */
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
        if (sz == 0) continue;             /* libarchive may hand a NULL, empty block */
        if (archive_filter_count(a) <= 1) g->exp_data += sz;
        if (cap_check(g, entry)) return RD_FATAL;
        if (off != pos) {                  /* a sparse hole: zeros, so binary */
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
                *data = blk;           /* the whole entry in one block: no copy */
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
    Ingest *g;                 /* engine */
    struct archive *outer;     /* the archive whose current entry holds this one */
    const char *entry;         /* the outer entry's name */
    int err;                   /* the outer archive failed */
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
    if (cap_check(ns->g, ns->entry)) {
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
    Buf src = {0}, pre = {0};
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
        in.wrapper = 0;            /* a .deb's payload: paths start at its root */
    } else if (in.is_deb) {        /* a package inside a dump: it is the repository */
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
    level_push(g, a);
    if (r != ARCHIVE_OK) {
        if (!g->capped) {
            error("%.*s: %.*s: not a readable archive: %s", (int)sc->source_n, sc->source,
                  (int)name_n, name, archive_error_string(a));
            g->bad = 1;
            g->st.errors++;
            skip(g, SKIP_READ_ERROR);
        }
    } else if (archive_level(g, a, &in) < 0) {
        g->st.errors++;
    }
    level_pop(g);
    archive_read_free(a);
    if (ns.err || g->capped) rc = RD_FATAL;
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
    const char *raw = archive_entry_pathname(e);    /* the bytes as stored: no conversion */
    if (!raw) raw = archive_entry_pathname_utf8(e);
    if (!raw) raw = "";
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFDIR) return RD_OK;
    g->st.seen++;
    tick(g);
    Buf fixed = {0};
    size_t n = strlen(raw);
    if (utf8_valid_prefix((const unsigned char *)raw, n) != n) {
        utf8_repair((const unsigned char *)raw, n, &fixed);
        raw = fixed.buf;
        n = fixed.len;
    }
    const char *name = ingest_clean_path(raw, &n);
    char *ename = xstrndup(name, n);        /* for messages */
    int rc = RD_OK;
    const char *repo;
    size_t repo_n;
    if (archive_entry_symlink(e) || archive_entry_hardlink(e) || type == AE_IFLNK) {
        skip(g, SKIP_SYMLINK);
        goto done;
    }
    if (type != AE_IFREG && type != 0) {
        skip(g, SKIP_SPECIAL);
        goto done;
    }
    if (sc->is_deb && (!strcmp(ename, "debian-binary") || !strncmp(ename, "control.tar", 11))) {
        skip(g, SKIP_EXCLUDED);
        goto done;
    }
    entry_naming(g, sc, name, n, &repo, &repo_n);
    int kind = ingest_name_kind(ename);
    if (kind == NAME_ARCHIVE || kind == NAME_DEB) {
        if (sc->depth >= g->o->max_depth) {
            skip(g, SKIP_DEPTH);
            warn("%.*s: %s: archive nested deeper than --max-depth=%d, skipped",
                 (int)sc->source_n, sc->source, ename, g->o->max_depth);
            goto done;
        }
        g->st.seen--;                      /* an archive is not a file: its entries are */
        rc = descend(g, a, sc, name, n, repo, repo_n, NULL, 0);
        goto done;
    }
    if (!ingest_path_wanted(g->o, g->path.buf, g->path.len)) {
        skip(g, SKIP_EXCLUDED);
        goto done;
    }
    if (archive_entry_size_is_set(e) && (uint64_t)archive_entry_size(e) > g->o->max_file) {
        rc = drain_entry(g, a, ename) == RD_FATAL ? RD_FATAL : RD_OK;
        skip(g, g->capped ? SKIP_EXPANSION : SKIP_OVERSIZED);
        goto done;
    }
    const char *data;
    size_t dn;
    int sniff, reason = 0;
    int r = read_entry(g, a, sc, e, ename, &sniff, &data, &dn, &reason);
    if (r != RD_OK) {
        skip(g, g->capped ? SKIP_EXPANSION : reason);
        if (r == RD_FATAL) rc = RD_FATAL;
        goto done;
    }
    if (sniff == 1 && sc->depth < g->o->max_depth) {
        g->st.seen--;
        rc = descend(g, a, sc, name, n, repo, repo_n, data, dn);
        goto done;
    }
    emit_file(g, sc, repo, repo_n, g->path.buf, g->path.len, data, dn, &g->lvl[sc->depth]);
done:
    free(ename);
    buf_free(&fixed);
    return rc;
}

/*
** The entry loop of one archive level. Returns 0, or -1 when it stopped on an error (reported)
** or on the expansion cap.
*/
static int archive_level(Ingest *g, struct archive *a, const Scope *sc)
{
    struct archive_entry *e;
    char last[256] = "";
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) return 0;
        if (cap_check(g, last[0] ? last : NULL)) return -1;
        if (r == ARCHIVE_WARN) {           /* log and go on; at most MAX_WARNINGS per input */
            if (++g->warnings <= MAX_WARNINGS)
                warn("%.*s: %s: %s%s", (int)sc->source_n, sc->source,
                     archive_entry_pathname(e) ? archive_entry_pathname(e) : "?",
                     archive_error_string(a),
                     g->warnings == MAX_WARNINGS ? " (further warnings for this input not shown)" : "");
        } else if (r != ARCHIVE_OK) {
            if (g->capped) return -1;
            if (last[0])
                error("%.*s: after '%s': %s", (int)sc->source_n, sc->source, last,
                      archive_error_string(a));
            else
                error("%.*s: first entry: %s", (int)sc->source_n, sc->source, archive_error_string(a));
            g->bad = 1;
            return -1;
        }
        const char *nm = archive_entry_pathname(e);
        snprintf(last, sizeof last, "%s", nm ? nm : "?");
        if (archive_entry_do(g, a, sc, e) == RD_FATAL) return -1;
    }
}

// ---------------------------------------------------------------------------------------------
// Command-line inputs

/* Replay of a sniffed prefix, then the rest of a file descriptor. */
typedef struct {
    int fd;                    /* source */
    const char *name;          /* for messages */
    char *pre;                 /* sniffed prefix */
    size_t pre_n, pre_pos;     /* its length and how much was returned */
    char *buf;                 /* read buffer */
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
** Read up to SNIFF_BYTES from fd into rp->pre. 0 or -1 (message printed).
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
    }
    return 0;
}

/*
** Does the (possibly compressed) prefix hold JSONL, i.e. start with '{'? Decompresses the
** prefix with libarchive when it is a compressed stream.
*/
static int sniff_jsonl(const char *p, size_t n, int depth)
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
        return sniff_jsonl(head, (size_t)k, depth + 1);
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
    tick(g);
    g->st.content_in += r->content.n;
    if (r->path.s && !ingest_path_wanted(g->o, r->path.s, r->path.n)) {
        skip(g, SKIP_EXCLUDED);
        return;
    }
    if (r->content.n > g->o->max_file) {
        skip(g, SKIP_OVERSIZED);
        return;
    }
    if (memchr(r->content.s, 0, r->content.n)) {
        skip(g, SKIP_BINARY);
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
static int jsonl_stream(Ingest *g, struct archive *a, const Scope *sc)
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
        if (cap_check(g, "data")) { rc = -1; break; }
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

/*
** Process an opened archive handle as a command-line input: JSONL (raw) or entries.
*/
static int top_archive(Ingest *g, struct archive *a, const Scope *sc, int jsonl)
{
    if (jsonl) pipe_drain(g);      /* JSONL records are written by this thread */
    level_push(g, a);
    int r = jsonl ? jsonl_stream(g, a, sc) : archive_level(g, a, sc);
    if (r < 0) g->st.errors++;
    level_pop(g);
    return r;
}

/*
** Base name of a path without trailing slashes, into b (for repo names).
*/
static void base_name(const char *path, Buf *b)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t s = n;
    while (s > 0 && path[s - 1] != '/') s--;
    buf_reset(b);
    buf_add(b, path + s, n - s);
}

/*
** A file given on the command line or found in a directory: archive, JSONL (top level only)
** or a plain file. `display` names it in records and messages, `prefix` is its directory's
** path inside the repository for archives found in a directory walk.
*/
static int file_input(Ingest *g, const char *fsname, const Scope *dir, const char *rel, int top,
                      int64_t fsize)
{
    Replay rp = { -1, fsname, NULL, 0, 0, NULL };
    Buf repo = {0}, pre = {0};
    Scope sc = {0};
    int rc = 0, kind = ingest_name_kind(fsname), is_jsonl = 0;
    struct archive *a = NULL;
    if (!top && kind == NAME_JSONL) kind = NAME_PLAIN;  /* x.json in a repository is a file */
    if (!top && kind == NAME_PLAIN) {      /* filters first: no need to open what is dropped */
        size_t pn = strlen(rel);
        const char *p = ingest_clean_path(rel, &pn);
        int why = !ingest_path_wanted(g->o, p, pn) ? SKIP_EXCLUDED
                : fsize > (int64_t)g->o->max_file ? SKIP_OVERSIZED : -1;
        if (why >= 0) {
            g->st.seen++;
            tick(g);
            skip(g, why);
            return 0;
        }
    }
    if (!strcmp(fsname, "-")) {
        rp.fd = 0;
        rp.name = "stdin";
    } else if ((rp.fd = open(fsname, O_RDONLY | O_CLOEXEC)) < 0) {
        g->bad = 1;
        return error("%s: cannot open: %s", fsname, strerror(errno));
    }
    if (replay_fill(&rp)) { g->bad = 1; rc = -1; goto done; }
    if (rp.fd == 0 && rp.pre_n == 0) goto done;     /* empty stdin: nothing to read */
    int sn = ingest_sniff_archive((unsigned char *)rp.pre, rp.pre_n);
    if (top && (kind == NAME_JSONL || (kind == NAME_PLAIN && sniff_jsonl(rp.pre, rp.pre_n, 0))))
        is_jsonl = 1;
    else if (kind == NAME_PLAIN && sn != 1 && !(sn == 2 && top)) {
        /* a plain file */
        sc.source = dir ? dir->source : fsname;
        sc.source_n = dir ? dir->source_n : strlen(fsname);
        size_t pn = strlen(rel);
        const char *p = ingest_clean_path(rel, &pn);
        const char *rn = dir ? dir->repo : "";
        size_t rnl = dir ? dir->repo_n : 0;
        g->st.seen++;
        tick(g);
        if (top && !ingest_path_wanted(g->o, p, pn)) {   /* (a directory's files: above) */
            skip(g, SKIP_EXCLUDED);
            goto done;
        }
        Buf *b = &g->lvl[0];
        buf_reset(b);
        buf_add(b, rp.pre, rp.pre_n);
        for (;;) {
            if (b->len > g->o->max_file) { skip(g, SKIP_OVERSIZED); goto done; }
            if (memchr(b->buf, 0, b->len)) { skip(g, SKIP_BINARY); goto done; }
            buf_grow(b, READ_BLOCK);
            ssize_t k = read(rp.fd, b->buf + b->len, READ_BLOCK);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) {
                error("%s: cannot read: %s", fsname, strerror(errno));
                skip(g, SKIP_READ_ERROR);
                g->bad = 1;
                rc = -1;
                goto done;
            }
            if (k == 0) break;
            b->len += (size_t)k;
        }
        g->st.bytes_in += b->len;
        emit_file(g, &sc, rn, rnl, p, pn, b->buf ? b->buf : "", b->len, b);
        goto done;
    }
    /* an archive or a JSONL dump */
    g->input = dir ? fsname : (rp.fd == 0 ? "stdin" : fsname);
    g->capped = 0;
    g->warnings = 0;
    g->exp_done = g->exp_data = 0;
    a = archive_read_new();
    archive_read_support_filter_all(a);
    if (is_jsonl) archive_read_support_format_raw(a);
    else archive_read_support_format_all(a);
    if (!is_jsonl && (kind == NAME_ARCHIVE || kind == NAME_DEB) && rp.fd != 0) {
        /* a named file: let libarchive read (and seek) it itself, zip and 7z want that */
        close(rp.fd);
        rp.fd = -1;
        if (archive_read_open_filename(a, fsname, 1 << 20) != ARCHIVE_OK) {
            error("%s: not a readable archive: %s", fsname, archive_error_string(a));
            g->bad = 1;
            g->st.errors++;
            rc = -1;
            goto done;
        }
    } else if (archive_read_open(a, &rp, NULL, replay_read, NULL) != ARCHIVE_OK) {
        error("%s: not a readable %s: %s", g->input, is_jsonl ? "JSONL stream" : "archive",
              archive_error_string(a));
        g->bad = 1;
        g->st.errors++;
        rc = -1;
        goto done;
    }
    sc.source = fsname;
    sc.source_n = strlen(fsname);
    if (rp.fd == 0) { sc.source = "-"; sc.source_n = 1; }
    sc.wrapper = 1;
    sc.is_deb = kind == NAME_DEB;
    if (dir) {
        sc.repo = dir->repo;
        sc.repo_n = dir->repo_n;
        buf_add(&pre, rel, strlen(rel));
        buf_addc(&pre, '/');
        sc.prefix = pre.buf;
        sc.prefix_n = pre.len;
        sc.depth = 1;
    } else {
        base_name(rp.fd == 0 ? "stdin" : fsname, &repo);
        repo.len = ingest_strip_archive_ext(repo.buf);
        sc.repo = repo.buf;
        sc.repo_n = repo.len;
        sc.prefix = "";
    }
    if (top_archive(g, a, &sc, is_jsonl) < 0) rc = -1;
done:
    if (a) archive_read_free(a);
    if (rp.fd > 0) close(rp.fd);
    free(rp.pre);
    free(rp.buf);
    buf_free(&repo);
    buf_free(&pre);
    return rc;
}

/*
** fts comparison: by name, bytewise, so that the walk order is the same everywhere.
*/
static int fts_cmp(const FTSENT **a, const FTSENT **b)
{
    return strcmp((*a)->fts_name, (*b)->fts_name);
}

/*
** Walk a directory in sorted order; every regular file is an input whose repo is the
** directory's base name and whose path is relative to it.
*/
static int dir_input(Ingest *g, const char *dir)
{
    char *argv[2] = { (char *)dir, NULL };
    FTS *f = fts_open(argv, FTS_PHYSICAL | FTS_NOCHDIR, fts_cmp);
    if (!f) {
        g->bad = 1;
        return error("%s: cannot walk: %s", dir, strerror(errno));
    }
    Buf repo = {0};
    char cwd[PATH_MAX];
    if (!strcmp(dir, ".") || !strcmp(dir, "./")) base_name(getcwd(cwd, sizeof cwd) ? cwd : ".", &repo);
    else base_name(dir, &repo);
    Scope sc = {0};
    sc.repo = repo.buf ? repo.buf : "";
    sc.repo_n = repo.len;
    sc.prefix = "";
    sc.source = dir;
    sc.source_n = strlen(dir);
    int rc = 0;
    FTSENT *e;
    size_t root = strlen(dir);
    while ((e = fts_read(f)) != NULL) {
        const char *rel = e->fts_path + root;
        while (*rel == '/') rel++;
        switch (e->fts_info) {
        case FTS_D: case FTS_DP: case FTS_DOT:
            break;
        case FTS_DNR: case FTS_ERR: case FTS_NS:
            error("%s: %s", e->fts_path, strerror(e->fts_errno));
            g->bad = 1;
            rc = -1;
            break;
        case FTS_SL: case FTS_SLNONE:
            g->st.seen++;
            skip(g, SKIP_SYMLINK);
            break;
        case FTS_F:
            if (!*rel) rel = e->fts_name;  /* the "directory" was a file */
            if (file_input(g, e->fts_path, &sc, rel, 0, (int64_t)e->fts_statp->st_size) < 0) rc = -1;
            break;
        default:
            g->st.seen++;
            skip(g, SKIP_SPECIAL);
            break;
        }
    }
    fts_close(f);
    buf_free(&repo);
    return rc;
}

/*
** Process one command-line input (see ingest.h).
*/
int ingest_input(Ingest *g, const char *name)
{
    struct stat st;
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
            dir_input(g, name);
            return g->bad ? 1 : 0;
        }
    }
    file_input(g, name, NULL, name, 1, -1);
    return g->bad ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Statistics

/*
** Write the --stats JSON object (see docs/FORMATS.md).
*/
void ingest_stats_json(const IngestStats *st, double secs, Buf *out)
{
    uint64_t skipped = 0;
    for (int i = 0; i < SKIP__N; i++) skipped += st->skipped[i];
    buf_addf(out, "{\"version\":1,\"inputs\":%llu,\"entries_seen\":%llu,\"emitted\":%llu,"
             "\"skipped\":%llu,\"skipped_by_reason\":{",
             (unsigned long long)st->inputs, (unsigned long long)st->seen,
             (unsigned long long)st->emitted, (unsigned long long)skipped);
    for (int i = 0; i < SKIP__N; i++)
        buf_addf(out, "%s\"%s\":%llu", i ? "," : "", ingest_skip_names[i],
                 (unsigned long long)st->skipped[i]);
    buf_addf(out, "},\"utf8_repaired\":%llu,\"notebooks\":%llu,\"archives\":%llu,"
             "\"jsonl_lines\":%llu,\"bad_lines\":%llu,\"errors\":%llu,\"capped_inputs\":%llu,"
             "\"bytes_in\":%llu,\"content_bytes_in\":%llu,\"content_bytes_out\":%llu,"
             "\"seconds\":%.3f}\n",
             (unsigned long long)st->utf8_repaired, (unsigned long long)st->notebooks,
             (unsigned long long)st->archives, (unsigned long long)st->jsonl_lines,
             (unsigned long long)st->bad_lines, (unsigned long long)st->errors,
             (unsigned long long)st->capped_inputs,
             (unsigned long long)st->bytes_in, (unsigned long long)st->content_in,
             (unsigned long long)st->content_out, secs);
}
