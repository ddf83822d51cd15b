// SPDX-License-Identifier: MIT
/*
** walk_writer.c: cm-ingest's records: one file's bytes checked (UTF-8 skipped or repaired,
** notebooks converted), our fields added, one JSONL record written; and the writer thread.
**
** With --threads=2 (the default) the reading thread (libarchive: decompression, entry loop)
** hands each file to a writer thread (UTF-8 check, notebook conversion, JSON escaping, write)
** through a ring of PIPE_JOBS slots, in order, so the output is the same as with one thread.
** Each slot holds a copy of the content; the ring holds at most 4 x --max-file-size of content
** (or one file) plus PIPE_JOBS x 64 KiB of kept buffers. Counters are split: the writer owns
** emitted, content_out, utf8_repaired, notebooks and the invalid_utf8 / notebook_error skips;
** the reader owns the rest.
*/
#include "walk.h"
#include "json.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PIPE_JOBS 32          /* files in flight between the reader and the writer thread */
#define PIPE_BATCH 16         /* the writer wakes for this many jobs (fewer context switches) */
#define PIPE_KEEP (64 * 1024) /* a slot keeps at most this much buffer after a job */

/* One file on its way to the writer thread. */
typedef struct {
    Buf data;                     /* a copy of the content */
    Buf names;                    /* repo_name, path and source, back to back */
    size_t repo_n, path_n, src_n; /* their lengths */
} Job;

/* The ring between the reading thread and the writer thread. */
struct Pipe {
    pthread_t th;          /* the writer */
    pthread_mutex_t mu;    /* guards head, tail, stop */
    pthread_cond_t cv_get; /* a job was queued, or stop */
    pthread_cond_t cv_put; /* a job was written */
    Job job[PIPE_JOBS];    /* slots; job[i % PIPE_JOBS] for i in [tail, head) are queued */
    unsigned head, tail;   /* jobs queued / written so far */
    int stop;              /* no more jobs */
    int w_waits, r_waits;  /* the writer / the reader sleeps on its condition */
    int flush;             /* the reader waits for the ring to empty */
    size_t bytes;          /* content bytes queued */
    size_t limit;          /* at most this many (unless the ring is empty) */
    Writer w;              /* the writer thread's scratch buffers */
};

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
            walk_skip(g, SKIP_UTF8);
            return;
        }
        buf_reset(&w->text);
        utf8_repair((const unsigned char *)data, n, &w->text);
        data = w->text.buf;
        n = w->text.len;
        g->st.utf8_repaired++;
    }
    if (path_n > 6 && !strncasecmp(path + path_n - 6, ".ipynb", 6)) {
        Buf py = { 0 };
        char why[200];
        int cells = notebook_to_py(data, n, &py, why, sizeof why);
        if (cells <= 0) {
            if (cells == 0) snprintf(why, sizeof why, "no code cells");
            walk_skip(g, SKIP_NOTEBOOK);
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
    record_write_parts(g->out, repo, repo_n, path, path_n, data, n, NULL, w->extra.buf,
                       w->extra.len);
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
    int run = 0; /* working through a batch: go on until empty */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        unsigned q = p->head - p->tail;
        if (q == 0) {
            run = 0;
            if (p->stop) break;
        }
        if (!(q > 0 &&
              (run || p->stop || p->flush || p->r_waits || q >= PIPE_BATCH ||
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
        write_file(g, &p->w, nm, j->repo_n, nm + j->repo_n, j->path_n, nm + j->repo_n + j->path_n,
                   j->src_n, j->data.buf ? j->data.buf : "", n);
        if (j->data.cap > PIPE_KEEP) buf_free(&j->data);
        pthread_mutex_lock(&p->mu);
        p->tail++;
        p->bytes -= n;
        if (p->r_waits) pthread_cond_signal(&p->cv_put); /* wake only a sleeper */
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/*
** Start the writer thread; on failure stay single-threaded.
*/
void walk_writer_start(Ingest *g)
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
void walk_writer_drain(Ingest *g)
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
void walk_writer_stop(Ingest *g)
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
void walk_emit_file(Ingest *g, const Scope *sc, const char *repo, size_t repo_n, const char *path,
                    size_t path_n, const char *data, size_t n, Buf *own)
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
    Job *j = &p->job[p->head % PIPE_JOBS]; /* free: the writer is behind tail */
    pthread_mutex_unlock(&p->mu);
    if (own && own->buf == data && own->len == n) {
        Buf t = j->data; /* the job gets the filled buffer, the caller an old one */
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
