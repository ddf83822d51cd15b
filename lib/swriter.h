// SPDX-License-Identifier: MIT
/*
** swriter.h: writes big files from a background thread, bypassing the page cache: cm-shards'
** shards, and (through bulkfile.h) cm-train's checkpoints and exported weights.
**
** The caller fills fixed-size chunks (sw_space / sw_commit); a writer thread hashes each chunk
** (XXH3-64 of the payload, in order) and writes it at its offset with O_DIRECT, so the 1 GB of
** tokens of a 2M-document pack costs no kernel copy into the page cache (measured: that copy
** was a third of cm-shards' CPU, and its cost varied 3x with the state of the page cache) and
** does not evict the user's cache. When the file system refuses O_DIRECT (EINVAL: tmpfs on
** older kernels, some network file systems) the same writes go through the page cache. The
** unaligned end of the last chunk and the head (the bytes before the payload) are written
** through the page cache (no padding, no truncate); fsync of the file then makes everything
** durable, as before.
**
** The payload may start at any offset: the 4 KiB blocks before it that the payload shares are
** written as zeros with the first chunk, and sw_end writes the head over them.
**
** Memory: SW_CHUNKS chunks of SW_CHUNK bytes (4 MiB).
*/
#ifndef CM_SWRITER_H
#define CM_SWRITER_H

#include <stddef.h>
#include <stdint.h>

#define SW_CHUNK ((size_t)1 << 20) /* bytes per write (a multiple of 4096) */
#define SW_CHUNKS 4                /* chunks in flight: one filled, up to three queued */

typedef struct SWriter SWriter;

/* A writer with its thread, or NULL with errno set. direct: try O_DIRECT (0: never). */
SWriter *sw_new(int direct);
/* The default for sw_new's direct: 0 when the environment sets CM_BUFFERED_WRITES (every
** big write through the page cache), else 1. */
int sw_direct_wanted(void);
/* Wait for queued writes, stop the thread, close a file still open, free. */
void sw_free(SWriter *w);

/* Create (truncate) path for writing; the payload starts at byte payload_offset (bytes before
** it are written by sw_end). Returns 0, or -1 with errno set. */
int sw_begin(SWriter *w, const char *path, uint64_t payload_offset);
/* The same on an empty file the caller opened for writing and keeps owning (sw_abort and sw_end
** do not close it); O_DIRECT is tried only on a regular file. hash: compute the payload's
** checksum (0: sw_flush leaves *checksum 0). Returns 0, or -1 with errno set. */
int sw_begin_fd(SWriter *w, int fd, uint64_t payload_offset, int hash);
/* Room to append payload bytes: *room >= 1 bytes at the returned pointer. Returns NULL with
** errno set when a write of this file failed. */
unsigned char *sw_space(SWriter *w, size_t *room);
/* The first n bytes of the space returned last were filled. */
void sw_commit(SWriter *w, size_t n);
/* Write the payload bytes still buffered and wait for every write. Sets *checksum to XXH3-64
** of the whole payload. Returns 0, or -1 with errno set (sw_abort then drops the file). */
int sw_flush(SWriter *w, uint64_t *checksum);
/* After sw_flush: write head (head_len <= payload_offset bytes) at offset 0. Returns the open
** file descriptor, which the caller now owns (syncs and closes); or -1 with errno set (the file
** is closed unless sw_begin_fd's caller owns it; not removed). */
int sw_end(SWriter *w, const void *head, size_t head_len);
/* Drop the current file: wait for queued writes, close it unless the caller owns it (the caller
** removes it). */
void sw_abort(SWriter *w);
/* 1 when the current file is written with O_DIRECT. */
int sw_is_direct(const SWriter *w);

#endif
