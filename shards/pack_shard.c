// SPDX-License-Identifier: MIT
/*
** pack_shard.c: the shard being written by `cm-shards pack` (see pack.h). The main thread
** reads the stream, parses metadata into the current PackShard and hands the shard's tokens to
** the writer thread (swriter.c); at the end of a shard it waits for the writer, writes the
** header and hands the PackShard to the index thread (pack_index.c), which fdatasyncs, renames,
** fsyncs the directory and inserts the rows in one transaction (the crash-safety order of
** pack.h), while the main thread fills the other PackShard.
**
** The temporary name DIR/shard-NNNNN.bin.tmp (docs/FORMATS.md) is registered with
** tmp_register from before the file is created until it is renamed or removed, so that an
** error, exit() or a second stop signal removes it.
*/
#include "pack.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "atomic.h" // defines: tmp_register, tmp_unregister
#include "shard.h"  // defines: ShardHeader, shard_header_encode, shard_file_name

void pack_shard_drop_tmp(PackShard *b)
{
    if (b->fd >= 0) close(b->fd);
    b->fd = -1;
    unlink(b->tmp);
    tmp_unregister(b->tmp_slot);
    b->tmp_slot = -1;
}

/*
** Start shard p->shard_id: create its .tmp file (the writer leaves room for the header).
*/
void pack_shard_begin(Packer *p)
{
    PackShard *b = p->cur;
    char name[64];
    shard_file_name(name, sizeof name, p->shard_id);
    b->shard_id = p->shard_id;
    snprintf(b->final, sizeof b->final, "%s/%s", p->o->dir, name);
    snprintf(b->tmp, sizeof b->tmp, "%s.tmp", b->final);
    b->tmp_slot = tmp_register(b->tmp);
    if (sw_begin(p->sw, b->tmp, SHARD_PAYLOAD_OFFSET))
        die(CM_EIO, "cannot create '%s': %s", b->tmp, strerror(errno));
    p->open = 1;
    p->tokens = 0;
    b->nrows = 0;
    buf_reset(&b->arena);
}

/*
** Append a document's ids (n little-endian u32 in the stream's read buffer, maybe unaligned) to
** the current shard: narrowed (dtype 2) or copied straight into the writer's chunk. Returns 0,
** or -1 with a message when a write of the shard failed.
*/
int pack_shard_write(Packer *p, const unsigned char *ids, uint32_t n)
{
    p->tokens += n;
    while (n > 0) {
        size_t room;
        unsigned char *dst = sw_space(p->sw, &room);
        if (!dst) return error("cannot write to '%s': %s", p->cur->tmp, strerror(errno));
        room /= p->dtype; /* chunks are a multiple of 4 bytes: never 0 */
        size_t k = n < room ? n : room;
        if (p->dtype == 4) {
            memcpy(dst, ids, 4 * k); /* little-endian in, little-endian out */
        } else {
            for (size_t i = 0; i < k; i++) /* the low half of each id (ids < 65536) */
                le_put16(dst + 2 * i, (uint16_t)le_get32(ids + 4 * i));
        }
        sw_commit(p->sw, k * p->dtype);
        ids += 4 * k;
        n -= (uint32_t)k;
    }
    return 0;
}

/*
** Flush the writer and write the header of the current shard. Returns the open file
** descriptor, or -1 with errno set. Sets *checksum.
*/
static int pack_shard_seal(Packer *p, const PackShard *b, uint64_t *checksum)
{
    ShardHeader h = { 0 };
    if (sw_flush(p->sw, &h.checksum)) return -1;
    h.version = SHARD_VERSION;
    h.dtype = p->dtype;
    h.tokens = p->tokens;
    h.fingerprint = p->ts.hdr.fingerprint;
    h.eot_id = p->ts.hdr.eot_id;
    h.vocab_size = p->ts.hdr.vocab_size;
    h.documents = b->nrows;
    h.payload_offset = SHARD_PAYLOAD_OFFSET;
    unsigned char hb[SHARD_HEADER_BYTES];
    shard_header_encode(&h, hb);
    *checksum = h.checksum;
    return sw_end(p->sw, hb, sizeof hb);
}

/*
** Finish writing the current shard (flush, header) and hand it to the index thread; the main
** thread goes on with the other PackShard. Returns 0, or an exit status.
*/
int pack_shard_finish(Packer *p)
{
    if (!p->open) return 0;
    PackShard *b = p->cur;
    p->open = 0;
    if (b->nrows == 0) { /* nothing was added (bad first document): no empty shard */
        sw_abort(p->sw);
        pack_shard_drop_tmp(b);
        return 0;
    }
    int fd = pack_shard_seal(p, b, &b->checksum);
    if (fd < 0) {
        int e = errno;
        sw_abort(p->sw);
        pack_shard_drop_tmp(b);
        error("cannot write to '%s': %s", b->tmp, strerror(e));
        return CM_EIO;
    }
    b->fd = fd;
    b->tokens = p->tokens;
    /* hand over: wait for the previous shard to be committed, then swap */
    double t0 = now_sec();
    int rc = pack_wait_idle(p);
    p->t_wait += now_sec() - t0;
    if (rc) {
        pack_shard_drop_tmp(b);
        return rc;
    }
    pthread_mutex_lock(&p->mu);
    p->pending = b;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    p->cur = b == &p->bt[0] ? &p->bt[1] : &p->bt[0];
    p->shard_id++;
    return 0;
}
