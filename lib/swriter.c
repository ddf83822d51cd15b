// SPDX-License-Identifier: MIT
/*
** swriter.c: the big-file writer thread (see swriter.h).
**
** Chunks are used in ring order: the main thread fills chunk seq_filled % SW_CHUNKS and hands it
** over by incrementing seq_filled; the writer thread hashes and writes chunk
** seq_written % SW_CHUNKS and frees it by incrementing seq_written. The main thread may fill a
** chunk while seq_filled - seq_written < SW_CHUNKS. Both counters, err and stop are guarded by
** mu; fd, hash and direct belong to whoever holds the file: the writer while chunks are queued,
** the main thread once it has waited for seq_written == seq_filled.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_DIRECT */
#endif
#include "swriter.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h" // defines: Hash64State, hash64_update
#include "util.h" // defines: cm_thread_block_stop_signals

#define SW_ALIGN 4096 /* O_DIRECT alignment of buffers, offsets and lengths */

struct SWriter {
    pthread_t th;            /* the writer thread */
    pthread_mutex_t mu;      /* guards seq_filled, seq_written, err, stop */
    pthread_cond_t cv_work;  /* a chunk was queued, or stop */
    pthread_cond_t cv_done;  /* a chunk was written */
    unsigned char *mem;      /* SW_CHUNKS * SW_CHUNK bytes, SW_ALIGN-aligned */
    size_t len[SW_CHUNKS];   /* bytes in each queued chunk */
    size_t skip[SW_CHUNKS];  /* bytes before the payload in each (the first chunk's zero gap) */
    uint64_t off[SW_CHUNKS]; /* file offset of each queued chunk */
    uint64_t seq_filled;     /* chunks handed to the writer so far */
    uint64_t seq_written;    /* chunks it has finished with */
    int stop;                /* the thread should end */
    int err;                 /* errno of the first failed write of the current file */
    int want_direct;         /* try O_DIRECT for new files */
    int direct;              /* the current file is open with O_DIRECT */
    int fd;                  /* the current file, -1 when none */
    int owns_fd;             /* fd was opened by sw_begin (closed here) */
    int stream;              /* fd cannot seek (a pipe): written in order with write() */
    Hash64State *hash;       /* payload checksum of the current file, NULL when not wanted */
    uint64_t payload_offset; /* where the payload of the current file starts */
    uint64_t next_off;       /* main thread: file offset of the chunk being filled */
    size_t fill;             /* main thread: bytes in the chunk being filled */
    size_t gap;              /* main thread: zero bytes before the payload in that chunk */
};

static unsigned char *chunk(SWriter *w, uint64_t seq)
{
    return w->mem + (size_t)(seq % SW_CHUNKS) * SW_CHUNK;
}

/*
** Turn O_DIRECT off for the current file (the file system refused it, or what follows is not
** aligned). Returns 0 or -1.
*/
static int sw_buffered(SWriter *w)
{
    int fl = fcntl(w->fd, F_GETFL);
    if (fl < 0 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) < 0) return -1;
    w->direct = 0;
    return 0;
}

/*
** pwrite all of p[0..n) at off. Returns 0 or an errno. An unaligned length with O_DIRECT: the
** aligned part goes direct, the rest (the end of the file) through the page cache.
*/
static int sw_write_all(SWriter *w, const unsigned char *p, size_t n, uint64_t off)
{
    if (w->direct && (n % SW_ALIGN || off % SW_ALIGN)) {
        size_t head = off % SW_ALIGN ? 0 : n - n % SW_ALIGN;
        int e = head ? sw_write_all(w, p, head, off) : 0;
        if (e) return e;
        p += head;
        n -= head;
        off += head;
        if (w->direct && sw_buffered(w)) return errno;
    }
    while (n > 0) {
        ssize_t k = w->stream ? write(w->fd, p, n) : pwrite(w->fd, p, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EINVAL && w->direct) { /* alignment the device does not take */
                w->want_direct = 0;
                if (sw_buffered(w) == 0) continue;
            }
            return errno;
        }
        if (k == 0) return ENOSPC;
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
        /* a short direct write (at a file size limit) leaves an unaligned rest */
        if (n > 0 && w->direct && (k % SW_ALIGN) && sw_buffered(w)) return errno;
    }
    return 0;
}

static void *sw_thread(void *arg)
{
    SWriter *w = arg;
    cm_thread_block_stop_signals(); /* signals go to the main thread */
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->seq_written == w->seq_filled && !w->stop) pthread_cond_wait(&w->cv_work, &w->mu);
        if (w->seq_written == w->seq_filled) break;
        uint64_t seq = w->seq_written;
        size_t i = (size_t)(seq % SW_CHUNKS);
        int failed = w->err;
        pthread_mutex_unlock(&w->mu);
        int e = 0;
        if (!failed) {
            if (w->hash) hash64_update(w->hash, chunk(w, seq) + w->skip[i], w->len[i] - w->skip[i]);
            e = sw_write_all(w, chunk(w, seq), w->len[i], w->off[i]);
        }
        pthread_mutex_lock(&w->mu);
        if (e && !w->err) w->err = e;
        w->seq_written++;
        pthread_cond_broadcast(&w->cv_done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

SWriter *sw_new(int direct)
{
    SWriter *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->mem = aligned_alloc(SW_ALIGN, SW_CHUNKS * SW_CHUNK);
    if (!w->mem) {
        free(w);
        errno = ENOMEM;
        return NULL;
    }
    w->fd = -1;
    w->want_direct = direct;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv_work, NULL);
    pthread_cond_init(&w->cv_done, NULL);
    int e = pthread_create(&w->th, NULL, sw_thread, w);
    if (e) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv_work);
        pthread_cond_destroy(&w->cv_done);
        free(w->mem);
        free(w);
        errno = e;
        return NULL;
    }
    pthread_setname_np(w->th, "cm-write");
    return w;
}

int sw_direct_wanted(void)
{
    return getenv("CM_BUFFERED_WRITES") == NULL;
}

/*
** Wait until the writer has finished every queued chunk. Returns the file's error (errno) or 0.
*/
static int sw_drain(SWriter *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->seq_written != w->seq_filled) pthread_cond_wait(&w->cv_done, &w->mu);
    int e = w->err;
    pthread_mutex_unlock(&w->mu);
    return e;
}

/*
** Queue the chunk being filled (w->fill bytes) and wait for the next one to be free.
** Returns 0, or -1 with errno set when a write of this file failed.
*/
static int sw_handoff(SWriter *w)
{
    pthread_mutex_lock(&w->mu);
    size_t i = (size_t)(w->seq_filled % SW_CHUNKS);
    w->len[i] = w->fill;
    w->skip[i] = w->gap;
    w->off[i] = w->next_off;
    w->seq_filled++;
    pthread_cond_signal(&w->cv_work);
    while (w->seq_filled - w->seq_written >= SW_CHUNKS) pthread_cond_wait(&w->cv_done, &w->mu);
    int e = w->err;
    pthread_mutex_unlock(&w->mu);
    w->next_off += w->fill;
    w->fill = w->gap = 0;
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

static void sw_close(SWriter *w)
{
    if (w->fd >= 0 && w->owns_fd) close(w->fd);
    w->fd = -1;
    hash64_free(w->hash);
    w->hash = NULL;
}

void sw_free(SWriter *w)
{
    if (!w) return;
    sw_drain(w);
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    sw_close(w);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv_work);
    pthread_cond_destroy(&w->cv_done);
    free(w->mem);
    free(w);
}

/*
** Start a file on fd (direct: opened with O_DIRECT): the first chunk begins at the 4 KiB block
** that holds payload_offset, zeros up to it.
*/
static void sw_start(SWriter *w, int fd, int owns, int direct, uint64_t payload_offset, int hash)
{
    w->fd = fd;
    w->owns_fd = owns;
    w->stream = 0;
    w->direct = direct;
    w->hash = hash ? hash64_new() : NULL;
    pthread_mutex_lock(&w->mu);
    w->err = 0;
    pthread_mutex_unlock(&w->mu);
    w->payload_offset = payload_offset;
    w->next_off = payload_offset - payload_offset % SW_ALIGN;
    w->fill = w->gap = (size_t)(payload_offset % SW_ALIGN);
    memset(chunk(w, w->seq_filled), 0, w->gap);
}

int sw_begin(SWriter *w, const char *path, uint64_t payload_offset)
{
    sw_abort(w);
    int fd = -1;
    if (w->want_direct) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
        if (fd < 0 && errno == EINVAL)
            w->want_direct = 0; /* the file system refuses it */
        else if (fd < 0)
            return -1;
    }
    int direct = fd >= 0;
    if (fd < 0) fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    sw_start(w, fd, 1, direct, payload_offset, 1);
    return 0;
}

int sw_begin_fd(SWriter *w, int fd, uint64_t payload_offset, int hash)
{
    sw_abort(w);
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    int fl = fcntl(fd, F_GETFL), direct = 0;
    if (fl < 0) return -1;
    /* only a regular file: on a pipe O_DIRECT means packet mode */
    if (w->want_direct && S_ISREG(st.st_mode) && !(fl & O_DIRECT)) {
        if (fcntl(fd, F_SETFL, fl | O_DIRECT) == 0)
            direct = 1;
        else if (errno == EINVAL)
            w->want_direct = 0; /* the file system refuses it */
        else
            return -1;
    }
    sw_start(w, fd, 0, direct || (fl & O_DIRECT), payload_offset, hash);
    w->stream = !S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) < 0 && errno == ESPIPE;
    return 0;
}

unsigned char *sw_space(SWriter *w, size_t *room)
{
    if (w->fill == SW_CHUNK && sw_handoff(w)) return NULL;
    *room = SW_CHUNK - w->fill;
    return chunk(w, w->seq_filled) + w->fill;
}

void sw_commit(SWriter *w, size_t n)
{
    w->fill += n;
}

int sw_flush(SWriter *w, uint64_t *checksum)
{
    int e = 0;
    if (w->fill > 0 && sw_handoff(w)) e = errno;
    if (!e) e = sw_drain(w);
    if (e) {
        errno = e;
        return -1;
    }
    *checksum = w->hash ? hash64_digest(w->hash) : 0;
    return 0;
}

int sw_end(SWriter *w, const void *head, size_t head_len)
{
    /* the writer is idle (sw_flush drained it): the head goes through the page cache */
    int e = 0;
    if (w->direct && sw_buffered(w)) e = errno;
    if (!e && head_len && w->stream) e = ESPIPE; /* a pipe cannot take a head written last */
    if (!e) e = sw_write_all(w, head, head_len, 0);
    if (!e && w->payload_offset && !w->stream && w->next_off == w->payload_offset &&
        ftruncate(w->fd, (off_t)w->payload_offset))
        e = errno; /* no payload: the file still reaches the payload offset */
    if (e) {
        sw_close(w);
        errno = e;
        return -1;
    }
    int fd = w->fd;
    w->fd = -1; /* the caller's now */
    sw_close(w);
    return fd;
}

void sw_abort(SWriter *w)
{
    sw_drain(w);
    w->fill = w->gap = 0;
    sw_close(w);
}

int sw_is_direct(const SWriter *w)
{
    return w->direct;
}
