// SPDX-License-Identifier: MIT
/*
** ckpt.c: write and read cm-train checkpoints (see ckpt.h and docs/FORMATS.md).
*/
#include "trainer/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"         /* defines: error, write_all */
#include "hash.h"         /* defines: hash64_new and the streaming XXH3 */
#include "le.h"           /* defines: le_get32/64, le_put32/64, le_getf64, le_putf64 */
#include "bulkfile.h"     /* defines: BulkFile, bulk_open, bulk_write, bulk_flush, bulk_close */
#include "trainer/lora.h" /* defines: GptLora, lora_new, lora_count, LORA_* */

/* --------------------------------------------------------------------------------------- */
/* Header encoding (explicit little-endian offsets, lib/le.h)                              */

/*
** Serialise info (+ payload checksum) into the 256-byte header h.
*/
static void ckpt_encode(unsigned char *h, const CkptInfo *in, uint64_t payload_hash)
{
    memset(h, 0, CKPT_HEADER_BYTES);
    memcpy(h, CKPT_MAGIC, 8);
    le_put32(h + 8, CKPT_VERSION);
    le_put32(h + 12, CKPT_HEADER_BYTES);
    le_put32(h + 16, (uint32_t)in->cfg.L);
    le_put32(h + 20, (uint32_t)in->cfg.C);
    le_put32(h + 24, (uint32_t)in->cfg.NH);
    le_put32(h + 28, (uint32_t)in->cfg.T);
    le_put32(h + 32, (uint32_t)in->cfg.V);
    le_put32(h + 36, in->has_opt ? 1 : 0);
    le_put64(h + 40, in->step);
    le_put64(h + 48, in->seed);
    le_put64(h + 56, in->data_pos);
    le_put64(h + 64, in->data_fp);
    le_put64(h + 72, in->nparams);
    le_put64(h + 80, payload_hash);
    le_putf64(h + 88, in->lr);
    le_putf64(h + 96, in->min_lr);
    le_putf64(h + 104, in->wd);
    le_putf64(h + 112, in->clip);
    le_put32(h + 120, in->warmup);
    le_put32(h + 124, in->steps);
    le_put32(h + 128, in->batch);
    le_put32(h + 132, in->accum);
    le_put64(h + 136, in->tok_fp);
    le_put32(h + 144, in->lora_rank);
    le_put32(h + 148, in->lora_targets);
    le_putf64(h + 152, in->lora_alpha);
    le_put64(h + 160, in->lora_n);
    le_put64(h + 248, hash64(h, 248));
}

/*
** The v3 LoRA fields of a decoded header: NULL if usable, else what is wrong.
*/
static const char *ckpt_lora_check(const CkptInfo *in)
{
    if (in->lora_rank == 0)
        return in->lora_targets || in->lora_n ? "adapter fields without a LoRA rank" : NULL;
    if (in->lora_rank > LORA_MAX_RANK) return "LoRA rank out of range";
    if (!in->lora_targets || (in->lora_targets & ~LORA_ALL)) return "bad LoRA target mask";
    if (!(in->lora_alpha > 0) || !(in->lora_alpha < 1e9)) return "bad LoRA alpha";
    if (in->lora_n != lora_count(&in->cfg, (int)in->lora_rank, in->lora_targets))
        return "the adapter count does not fit the LoRA rank and targets";
    return NULL;
}

/*
** Parse and check a header; -2 with a message naming path if it is not a v1, v2 or v3
** checkpoint.
*/
static int ckpt_decode(const unsigned char *h, const char *path, CkptInfo *in,
                       uint64_t *payload_hash)
{
    if (memcmp(h, CKPT_MAGIC, 8))
        return error("%s: offset 0: not a cm-train checkpoint (bad magic)", path), -2;
    uint32_t version = le_get32(h + 8);
    if (version < 1 || version > CKPT_VERSION)
        return error("%s: offset 8: checkpoint version %u, this cm-train reads versions 1 "
                     "to %d",
                     path, version, CKPT_VERSION),
               -2;
    if (le_get32(h + 12) != CKPT_HEADER_BYTES || le_get64(h + 248) != hash64(h, 248))
        return error("%s: offset 248: damaged checkpoint header (checksum mismatch)", path), -2;
    memset(in, 0, sizeof *in);
    in->cfg.L = (int)le_get32(h + 16);
    in->cfg.C = (int)le_get32(h + 20);
    in->cfg.NH = (int)le_get32(h + 24);
    in->cfg.T = (int)le_get32(h + 28);
    in->cfg.V = (int)le_get32(h + 32);
    in->has_opt = le_get32(h + 36) & 1;
    in->step = le_get64(h + 40);
    in->seed = le_get64(h + 48);
    in->data_pos = le_get64(h + 56);
    in->data_fp = le_get64(h + 64);
    in->nparams = le_get64(h + 72);
    *payload_hash = le_get64(h + 80);
    in->lr = le_getf64(h + 88);
    in->min_lr = le_getf64(h + 96);
    in->wd = le_getf64(h + 104);
    in->clip = le_getf64(h + 112);
    in->warmup = le_get32(h + 120);
    in->steps = le_get32(h + 124);
    in->batch = le_get32(h + 128);
    in->accum = le_get32(h + 132);
    in->tok_fp = version >= 2 ? le_get64(h + 136) : 0; /* zero in v1 */
    if (version >= 3) {                                /* zero in v1, v2 */
        in->lora_rank = le_get32(h + 144);
        in->lora_targets = le_get32(h + 148);
        in->lora_alpha = le_getf64(h + 152);
        in->lora_n = le_get64(h + 160);
    }
    in->version = version;
    const char *bad = gpt_config_check(&in->cfg);
    if (bad) return error("%s: offset 16: damaged checkpoint: %s", path, bad), -2;
    if ((bad = ckpt_lora_check(in)))
        return error("%s: offset 144: damaged checkpoint: %s", path, bad), -2;
    return 0;
}

/* --------------------------------------------------------------------------------------- */
/* Save                                                                                    */

/*
** The payload blocks through a BulkFile, then the header (which holds their checksum) at
** offset 0. An output that is not a regular file (a FIFO) cannot take a header written last:
** there the checksum is computed first and the header goes ahead of the blocks.
*/
static int ckpt_write(const char *path, const CkptInfo *in, const float *const *blocks,
                      const size_t *sizes, int nb)
{
    unsigned char h[CKPT_HEADER_BYTES];
    uint64_t ph = 0;
    struct stat st;
    int ahead = lstat(path, &st) == 0 && !S_ISREG(st.st_mode);
    if (ahead) {
        Hash64State *hs = hash64_new();
        for (int i = 0; i < nb; i++) hash64_update(hs, blocks[i], sizes[i]);
        ckpt_encode(h, in, hash64_digest(hs));
        hash64_free(hs);
    }
    BulkFile b;
    if (bulk_open(&b, path, ahead ? 0 : sizeof h, !ahead) != 0) return -1;
    int rc = ahead ? bulk_write(&b, h, sizeof h) : 0;
    for (int i = 0; i < nb && rc == 0; i++) rc = bulk_write(&b, blocks[i], sizes[i]);
    if (bulk_flush(&b, &ph) != 0) return -1; /* reports a failed write (rc) too */
    if (!ahead) ckpt_encode(h, in, ph);
    return bulk_close(&b, h, ahead ? 0 : sizeof h);
}

/*
** Write header + blocks: PATH.tmp.PID beside path, fsync'd, renamed over path, the directory
** fsync'd (bulkfile.h: written by a background thread, with O_DIRECT where it can).
*/
int ckpt_save(const char *path, const Gpt *m, const CkptInfo *info)
{
    CkptInfo in = *info;
    const GptLora *lo = m->lora;
    in.cfg = m->cfg;
    in.nparams = m->nparams;
    in.has_opt = info->has_opt && (lo ? lo->m != NULL : m->m_memory != NULL);
    in.lora_rank = lo ? (uint32_t)lo->rank : 0;
    in.lora_targets = lo ? lo->targets : 0;
    in.lora_alpha = lo ? lo->alpha : 0.0;
    in.lora_n = lo ? lo->n : 0;
    /* the base, its moments (a full run), the adapters and their moments (a LoRA run) */
    const float *blocks[4] = { m->params_memory };
    size_t sizes[4] = { m->nparams * sizeof(float) };
    int nb = 1;
    if (lo) blocks[nb] = lo->params, sizes[nb++] = lo->n * sizeof(float);
    for (int i = 0; i < 2 && in.has_opt; i++) {
        blocks[nb] = lo ? (i ? lo->v : lo->m) : (i ? m->v_memory : m->m_memory);
        sizes[nb++] = (lo ? lo->n : m->nparams) * sizeof(float);
    }
    return ckpt_write(path, &in, blocks, sizes, nb);
}

/* --------------------------------------------------------------------------------------- */
/* Load                                                                                    */

/*
** Read exactly n bytes at the current offset; 0, -1 (I/O error) or -2 (file too short).
*/
static int read_full(int fd, void *p, size_t n, const char *path, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return error("cannot read '%s': %s", path, strerror(errno)), -1;
        if (r == 0)
            return error("%s: offset %llu: truncated checkpoint (file ends early)", path,
                         (unsigned long long)(off + got)),
                   -2;
        got += (size_t)r;
    }
    return 0;
}

/*
** read_full in pieces of 4 MiB, each hashed into hs while it is still in the cache (hashing
** the 500 MB of a GPT-2 124M after reading them all read them from memory twice). 0, -1, -2.
*/
static int read_hashed(int fd, void *p, size_t n, Hash64State *hs, const char *path, uint64_t off)
{
    const size_t piece = (size_t)4 << 20;
    for (size_t done = 0; done < n; done += piece) {
        size_t k = n - done < piece ? n - done : piece;
        int rc = read_full(fd, (char *)p + done, k, path, off + done);
        if (rc) return rc;
        hash64_update(hs, (char *)p + done, k);
    }
    return 0;
}

/*
** Open path and read its header.
*/
static int ckpt_open(const char *path, CkptInfo *info, uint64_t *phash, int *pfd)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return error("cannot open checkpoint '%s': %s", path, strerror(errno)), -1;
    unsigned char h[CKPT_HEADER_BYTES];
    int rc = read_full(fd, h, sizeof h, path, 0);
    if (rc == 0) rc = ckpt_decode(h, path, info, phash);
    if (rc == 0 && gpt_param_count(&info->cfg) != info->nparams) {
        error("%s: offset 72: damaged checkpoint (parameter count %llu does not fit the model "
              "shape)",
              path, (unsigned long long)info->nparams);
        rc = -2;
    }
    if (rc == 0) {
        struct stat st;
        uint64_t opt = info->has_opt ? 3 : 1;
        uint64_t want = CKPT_HEADER_BYTES +
            4 * (info->lora_rank ? info->nparams + info->lora_n * opt : info->nparams * opt);
        if (fstat(fd, &st) == 0 && (uint64_t)st.st_size != want) {
            error("%s: offset %llu: checkpoint is %s (%llu bytes, the header says %llu)", path,
                  (unsigned long long)((uint64_t)st.st_size < want ? (uint64_t)st.st_size : want),
                  (uint64_t)st.st_size < want ? "truncated" : "too long",
                  (unsigned long long)st.st_size, (unsigned long long)want);
            rc = -2;
        }
    }
    if (rc) {
        close(fd);
        return rc;
    }
    *pfd = fd;
    return 0;
}

/*
** Header only.
*/
int ckpt_read_info(const char *path, CkptInfo *info)
{
    uint64_t ph;
    int fd;
    int rc = ckpt_open(path, info, &ph, &fd);
    if (rc == 0) close(fd);
    return rc;
}

/*
** Header, parameters and (optionally) moments, with the payload checksum verified.
*/
int ckpt_load(const char *path, Gpt *m, CkptInfo *info, int with_opt)
{
    uint64_t ph;
    int fd;
    int rc = ckpt_open(path, info, &ph, &fd);
    if (rc) return rc;
    gpt_init(m, &info->cfg); /* its size was checked against the file's */
    if (info->lora_rank)
        m->lora = lora_new(&info->cfg, (int)info->lora_rank, info->lora_alpha, info->lora_targets);
    GptLora *lo = m->lora;
    size_t bytes = m->nparams * sizeof(float), obytes = (lo ? lo->n : m->nparams) * sizeof(float);
    Hash64State *hs = hash64_new();
    rc = read_hashed(fd, m->params_memory, bytes, hs, path, CKPT_HEADER_BYTES);
    uint64_t off = CKPT_HEADER_BYTES + bytes;
    if (rc == 0 && lo) {
        rc = read_hashed(fd, lo->params, obytes, hs, path, off);
        off += obytes;
    }
    if (rc == 0 && info->has_opt) {
        /* the moments (the base's, or the adapters') go straight into the model, or (not
        ** wanted) through one scratch block only for the checksum */
        float *scratch = NULL;
        if (with_opt)
            gpt_alloc_train(m);
        else
            scratch = xmalloc(obytes);
        float *blocks[2] = { with_opt ? (lo ? lo->m : m->m_memory) : scratch,
                             with_opt ? (lo ? lo->v : m->v_memory) : scratch };
        for (int i = 0; i < 2 && rc == 0; i++) {
            rc = read_hashed(fd, blocks[i], obytes, hs, path, off);
            off += obytes;
        }
        free(scratch);
    }
    if (rc == 0 && hash64_digest(hs) != ph) {
        error("%s: offset %d: damaged checkpoint (payload checksum mismatch)", path,
              CKPT_HEADER_BYTES);
        rc = -2;
    }
    hash64_free(hs);
    close(fd);
    if (rc) gpt_free(m);
    return rc;
}
