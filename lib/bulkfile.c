// SPDX-License-Identifier: MIT
/*
** bulkfile.c: big files written whole or not at all through the background writer (see
** bulkfile.h).
*/
#include "bulkfile.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "util.h" /* defines: error */

int bulk_open(BulkFile *b, const char *path, size_t head_len, int hash)
{
    memset(b, 0, sizeof *b);
    if (atomic_open(&b->af, path) != 0) return -1;
    b->w = sw_new(sw_direct_wanted());
    if (b->w && sw_begin_fd(b->w, b->af.fd, head_len, hash) == 0) return 0;
    int e = errno;
    error("cannot write '%s': %s", b->af.tmp ? b->af.tmp : b->af.path, strerror(e));
    bulk_abort(b);
    errno = e;
    return -1;
}

unsigned char *bulk_space(BulkFile *b, size_t *room)
{
    return sw_space(b->w, room);
}

void bulk_commit(BulkFile *b, size_t n)
{
    sw_commit(b->w, n);
}

int bulk_write(BulkFile *b, const void *p, size_t n)
{
    const unsigned char *s = p;
    while (n > 0) {
        size_t room;
        unsigned char *dst = sw_space(b->w, &room);
        if (!dst) return -1;
        size_t k = n < room ? n : room;
        memcpy(dst, s, k);
        sw_commit(b->w, k);
        s += k;
        n -= k;
    }
    return 0;
}

int bulk_flush(BulkFile *b, uint64_t *checksum)
{
    uint64_t h = 0;
    if (sw_flush(b->w, &h) == 0) {
        if (checksum) *checksum = h;
        return 0;
    }
    int e = errno;
    error("cannot write '%s': %s", b->af.tmp ? b->af.tmp : b->af.path, strerror(e));
    bulk_abort(b);
    errno = e;
    return -1;
}

int bulk_close(BulkFile *b, const void *head, size_t head_len)
{
    int fd = sw_end(b->w, head, head_len); /* the AtomicFile's fd: it stays open */
    int e = errno;
    sw_free(b->w);
    b->w = NULL;
    if (fd < 0) {
        error("cannot write '%s': %s", b->af.tmp ? b->af.tmp : b->af.path, strerror(e));
        atomic_abort(&b->af);
        errno = e;
        return -1;
    }
    return atomic_commit(&b->af);
}

void bulk_abort(BulkFile *b)
{
    if (b->w) sw_free(b->w); /* waits for queued writes; the fd is the AtomicFile's */
    b->w = NULL;
    atomic_abort(&b->af);
}
