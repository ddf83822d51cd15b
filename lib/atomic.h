// SPDX-License-Identifier: MIT
/*
** atomic.h: one temporary-file and signal policy for every codemill stage.
**
** Files: a file that must appear whole or not at all (tokenizer.json, checkpoints, --stats JSON,
** plots, shards) is written to PATH.tmp.PID beside PATH, fsync'd, renamed over PATH, and the
** directory is fsync'd. While it is being written its temporary name is registered, so it is
** removed on every way out: an error return that never commits, die(), a fatal write error
** (io.h's Out), a normal exit() (atexit), and a second SIGINT/SIGTERM. A temporary left by
** kill -9 is removed by the next writer of the same PATH (atomic_sweep).
**
** Signals: atomic_signals_init() installs the handler. The first SIGINT or SIGTERM only records
** itself (cm_stop_signal); every long loop polls cm_stopping() at a safe point, saves what can
** be saved, and exits CM_EINTR (130). A second one removes the registered temporaries and
** ends the process at once with CM_EINTR.
*/
#ifndef CM_ATOMIC_H
#define CM_ATOMIC_H

#include <signal.h>
#include <stddef.h>

/* The first stop signal seen (SIGINT or SIGTERM), 0 while none. */
extern volatile sig_atomic_t cm_stop_signal;

static inline int cm_stopping(void)
{
    return cm_stop_signal != 0;
}

/* Install the SIGINT/SIGTERM policy above (SA_RESTART: blocking calls go on after the first). */
void atomic_signals_init(void);

/* Register a path to remove on every way out but a commit. Returns a slot for
** tmp_unregister (>= 0), or -1 when the table (64 entries) is full (then nothing is removed). */
int tmp_register(const char *path);
/* Forget a registered path (after it was renamed or removed by its writer). */
void tmp_unregister(int slot);
/* Remove every registered path now; async-signal-safe. */
void tmp_remove_all(void);

typedef struct {
    char *path; /* the final name */
    char *tmp;  /* PATH.tmp.PID, or NULL when PATH is written in place */
    int fd;     /* open for writing, or -1 */
    int slot;   /* tmp_register's slot */
} AtomicFile;

/* Create PATH.tmp.PID (mode 0644) and register it. 0, or -1 after "cannot create 'TMP': why".
** A PATH that exists and is not a regular file (/dev/null, /dev/stdout, a FIFO, a symbolic link)
** is opened and written in place instead (f->tmp NULL): it is never renamed over. */
int atomic_open(AtomicFile *f, const char *path);
/* fsync, close, rename over PATH, fsync the directory. 0, or -1 after
** "cannot write 'PATH': why" (the temporary is removed). Frees f either way. */
int atomic_commit(AtomicFile *f);
/* After the writes: write_rc 0 commits (atomic_commit); else "cannot write 'TMP': why"
** (errno of the failed write) and the temporary is removed. 0 or -1. */
int atomic_finish(AtomicFile *f, int write_rc);
/* Close and remove the temporary; frees f. */
void atomic_abort(AtomicFile *f);
/* The whole file at once: 0 or -1 (message printed). */
int atomic_write_file(const char *path, const void *data, size_t n);
/* A whole output file named on the command line: "-" is stdout (through io.h's Out, so a
** closed pipe or a full disk ends the process as every stage's output does), anything else
** goes through atomic_write_file. 0 or -1 (message printed). */
int atomic_write_output(const char *path, const void *data, size_t n);
/* Remove PATH.tmp.PID files whose process is gone (a kill -9 during a write leaves one). */
void atomic_sweep(const char *path);

#endif
