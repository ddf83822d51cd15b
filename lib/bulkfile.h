// SPDX-License-Identifier: MIT
/*
** bulkfile.h: a big file that must appear whole or not at all (a cm-train checkpoint, exported
** weights), written by the background writer of swriter.h (O_DIRECT when the file system takes
** it, the page cache otherwise) under the policy of atomic.h: PATH.tmp.PID beside PATH,
** registered for removal on every way out, fsync'd, renamed over PATH, the directory fsync'd.
** A PATH that is not a regular file (/dev/null, a FIFO) is written in place, as atomic.h does.
**
** Use: bulk_open, then the bytes after the head in order (bulk_write, or bulk_space /
** bulk_commit to encode straight into the writer's chunk), then bulk_flush (the payload's
** XXH3-64 when asked for) and bulk_close with the head; or bulk_abort. CM_BUFFERED_WRITES=1 in
** the environment sends every write through the page cache.
*/
#ifndef CM_BULKFILE_H
#define CM_BULKFILE_H

#include <stddef.h>
#include <stdint.h>

#include "atomic.h"
#include "swriter.h"

typedef struct {
    AtomicFile af; /* the temporary and its final name */
    SWriter *w;    /* the writer thread, NULL once closed */
} BulkFile;

/* Create PATH.tmp.PID for a file whose first head_len bytes are written last (bulk_close);
** hash: compute XXH3-64 of the bytes after them. 0, or -1 after a message. */
int bulk_open(BulkFile *b, const char *path, size_t head_len, int hash);
/* Room for *room >= 1 more bytes, or NULL when a write failed (bulk_flush reports it). */
unsigned char *bulk_space(BulkFile *b, size_t *room);
/* The first n bytes of the last space were filled. */
void bulk_commit(BulkFile *b, size_t n);
/* Append p[0..n). 0, or -1 with errno set (a write failed). */
int bulk_write(BulkFile *b, const void *p, size_t n);
/* Wait for every write; *checksum (may be NULL) gets the hash of the bytes after the head.
** 0, or -1 after "cannot write 'TMP': why" (the temporary is removed, b freed). */
int bulk_flush(BulkFile *b, uint64_t *checksum);
/* After bulk_flush: write the head at offset 0, fsync, rename over PATH, fsync the directory.
** 0, or -1 after a message (the temporary is removed). Frees b either way. */
int bulk_close(BulkFile *b, const void *head, size_t head_len);
/* Drop the file: wait for the writer, remove the temporary, free b. */
void bulk_abort(BulkFile *b);

#endif
