// SPDX-License-Identifier: MIT
/*
** atomic.c: temporaries registered for removal, atomic file replacement, the stop-signal
** policy (see atomic.h).
*/
#include "atomic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "util.h"

volatile sig_atomic_t cm_stop_signal;

#define TMP_MAX_SLOTS 64

/*
** The registry: fixed storage, so that the signal handler can walk it without allocating.
** A slot is in use while used[i] is 1; writers take the mutex, the handler reads lock-free
** (a path is complete before its flag is set).
*/
static char tmp_paths[TMP_MAX_SLOTS][PATH_MAX];
static volatile sig_atomic_t tmp_used[TMP_MAX_SLOTS];
static pthread_mutex_t tmp_mu = PTHREAD_MUTEX_INITIALIZER;
static int tmp_atexit_done;

static void tmp_at_exit(void)
{
    tmp_remove_all();
}

int tmp_register(const char *path)
{
    if (strlen(path) >= PATH_MAX) return -1;
    pthread_mutex_lock(&tmp_mu);
    if (!tmp_atexit_done) {
        atexit(tmp_at_exit);
        tmp_atexit_done = 1;
    }
    int slot = -1;
    for (int i = 0; i < TMP_MAX_SLOTS; i++) {
        if (!tmp_used[i]) {
            strcpy(tmp_paths[i], path);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            tmp_used[i] = 1;
            slot = i;
            break;
        }
    }
    pthread_mutex_unlock(&tmp_mu);
    return slot;
}

void tmp_unregister(int slot)
{
    if (slot < 0 || slot >= TMP_MAX_SLOTS) return;
    pthread_mutex_lock(&tmp_mu);
    tmp_used[slot] = 0;
    pthread_mutex_unlock(&tmp_mu);
}

void tmp_remove_all(void)
{
    for (int i = 0; i < TMP_MAX_SLOTS; i++) {
        if (tmp_used[i]) {
            unlink(tmp_paths[i]);
            tmp_used[i] = 0;
        }
    }
}

static void on_stop_signal(int sig)
{
    if (cm_stop_signal) {
        tmp_remove_all();
        _exit(CM_EINTR);
    }
    cm_stop_signal = sig;
}

void atomic_signals_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* --- atomic files ------------------------------------------------------------------------ */

int atomic_open(AtomicFile *f, const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* a device, FIFO, socket or symbolic link (/dev/null, /dev/stdout, a pipe): written in
        ** place, never renamed over (as root, a rename would replace /dev/null with a regular
        ** file; a link would become a file) */
        f->path = xstrdup(path);
        f->tmp = NULL;
        f->slot = -1;
        f->fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (f->fd < 0) {
            int e = errno;
            error("cannot open '%s': %s", path, strerror(e));
            free(f->path);
            f->path = NULL;
            errno = e;
            return -1;
        }
        return 0;
    }
    size_t n = strlen(path) + 32;
    f->path = xstrdup(path);
    f->tmp = xmalloc(n);
    snprintf(f->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    f->slot = tmp_register(f->tmp);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int e = errno;
        tmp_unregister(f->slot);
        error("cannot create '%s': %s", f->tmp, strerror(e));
        free(f->path);
        free(f->tmp);
        f->path = f->tmp = NULL;
        errno = e;
        return -1;
    }
    return 0;
}

static void atomic_free(AtomicFile *f)
{
    tmp_unregister(f->slot);
    free(f->path);
    free(f->tmp);
    f->path = f->tmp = NULL;
    f->fd = -1;
    f->slot = -1;
}

void atomic_abort(AtomicFile *f)
{
    if (!f->path) return;
    if (f->fd >= 0) close(f->fd);
    if (f->tmp) unlink(f->tmp);
    atomic_free(f);
}

int atomic_commit(AtomicFile *f)
{
    if (!f->tmp) { /* written in place (not a regular file): close it, nothing to rename */
        int rc = close(f->fd);
        int e = errno;
        f->fd = -1;
        if (rc != 0) error("cannot write '%s': %s", f->path, strerror(e));
        atomic_free(f);
        errno = e;
        return rc;
    }
    int rc = fsync(f->fd);
    int e = errno;
    if (close(f->fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    f->fd = -1;
    if (rc == 0 && rename(f->tmp, f->path) != 0) {
        rc = -1;
        e = errno;
    }
    if (rc != 0) {
        error("cannot write '%s': %s", f->path, strerror(e));
        unlink(f->tmp);
        atomic_free(f);
        errno = e;
        return -1;
    }
    char *d = xstrdup(f->path);
    fsync_dir(dirname(d));
    free(d);
    atomic_free(f);
    return 0;
}

int atomic_finish(AtomicFile *f, int write_rc)
{
    if (write_rc == 0) return atomic_commit(f);
    int e = errno;
    error("cannot write '%s': %s", f->tmp ? f->tmp : f->path, strerror(e));
    atomic_abort(f);
    errno = e;
    return -1;
}

int atomic_write_file(const char *path, const void *data, size_t n)
{
    AtomicFile f;
    if (atomic_open(&f, path) != 0) return -1;
    if (write_all(f.fd, data, n) != 0) {
        int e = errno;
        error("cannot write '%s': %s", f.tmp ? f.tmp : f.path, strerror(e));
        atomic_abort(&f);
        errno = e;
        return -1;
    }
    return atomic_commit(&f);
}

int atomic_write_output(const char *path, const void *data, size_t n)
{
    if (strcmp(path, "-") != 0) return atomic_write_file(path, data, n);
    Out out;
    out_init(&out, 1, "stdout", 1 << 16);
    out_write(&out, data, n);
    out_done(&out);
    return 0;
}

void atomic_sweep(const char *path)
{
    char *d = xstrdup(path), *b = xstrdup(path);
    const char *dir = dirname(d), *base = basename(b);
    size_t bl = strlen(base);
    DIR *dh = opendir(dir);
    struct dirent *e;
    while (dh && (e = readdir(dh)) != NULL) {
        if (strncmp(e->d_name, base, bl) || strncmp(e->d_name + bl, ".tmp.", 5)) continue;
        char *end;
        long pid = strtol(e->d_name + bl + 5, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM) continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *full = xmalloc(n);
        snprintf(full, n, "%s/%s", dir, e->d_name);
        unlink(full);
        free(full);
    }
    if (dh) closedir(dh);
    free(d);
    free(b);
}
