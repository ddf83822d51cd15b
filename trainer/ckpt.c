// SPDX-License-Identifier: MIT
/*
** ckpt.c: write and read cm-train checkpoints (see ckpt.h and docs/FORMATS.md).
*/
#include "trainer/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"   /* defines: error, write_all, fsync_dir, xstrdup */
#include "hash.h"   /* defines: hash64_new and the streaming XXH3 */

/* --------------------------------------------------------------------------------------- */
/* Header encoding (explicit little-endian offsets)                                        */

static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t get32(const unsigned char *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }
static void putf64(unsigned char *p, double d) { uint64_t v; memcpy(&v, &d, 8); put64(p, v); }
static double getf64(const unsigned char *p) { uint64_t v = get64(p); double d; memcpy(&d, &v, 8); return d; }

/*
** Serialise info (+ payload checksum) into the 256-byte header h.
*/
static void ckpt_encode(unsigned char *h, const CkptInfo *in, uint64_t payload_hash)
{
    memset(h, 0, CKPT_HEADER_BYTES);
    memcpy(h, CKPT_MAGIC, 8);
    put32(h + 8, CKPT_VERSION);
    put32(h + 12, CKPT_HEADER_BYTES);
    put32(h + 16, (uint32_t)in->cfg.L);
    put32(h + 20, (uint32_t)in->cfg.C);
    put32(h + 24, (uint32_t)in->cfg.NH);
    put32(h + 28, (uint32_t)in->cfg.T);
    put32(h + 32, (uint32_t)in->cfg.V);
    put32(h + 36, in->has_opt ? 1 : 0);
    put64(h + 40, in->step);
    put64(h + 48, in->seed);
    put64(h + 56, in->data_pos);
    put64(h + 64, in->data_fp);
    put64(h + 72, in->nparams);
    put64(h + 80, payload_hash);
    putf64(h + 88, in->lr);
    putf64(h + 96, in->min_lr);
    putf64(h + 104, in->wd);
    putf64(h + 112, in->clip);
    put32(h + 120, in->warmup);
    put32(h + 124, in->steps);
    put32(h + 128, in->batch);
    put32(h + 132, in->accum);
    put64(h + 248, hash64(h, 248));
}

/*
** Parse and check a header; -2 with a message naming path if it is not a v1 checkpoint.
*/
static int ckpt_decode(const unsigned char *h, const char *path, CkptInfo *in,
                       uint64_t *payload_hash)
{
    if (memcmp(h, CKPT_MAGIC, 8))
        return error("%s: offset 0: not a cm-train checkpoint (bad magic)", path), -2;
    if (get32(h + 8) != CKPT_VERSION)
        return error("%s: offset 8: checkpoint version %u, this cm-train reads version %d",
                     path, get32(h + 8), CKPT_VERSION), -2;
    if (get32(h + 12) != CKPT_HEADER_BYTES || get64(h + 248) != hash64(h, 248))
        return error("%s: offset 248: damaged checkpoint header (checksum mismatch)", path), -2;
    memset(in, 0, sizeof *in);
    in->cfg.L = (int)get32(h + 16);
    in->cfg.C = (int)get32(h + 20);
    in->cfg.NH = (int)get32(h + 24);
    in->cfg.T = (int)get32(h + 28);
    in->cfg.V = (int)get32(h + 32);
    in->has_opt = get32(h + 36) & 1;
    in->step = get64(h + 40);
    in->seed = get64(h + 48);
    in->data_pos = get64(h + 56);
    in->data_fp = get64(h + 64);
    in->nparams = get64(h + 72);
    *payload_hash = get64(h + 80);
    in->lr = getf64(h + 88);
    in->min_lr = getf64(h + 96);
    in->wd = getf64(h + 104);
    in->clip = getf64(h + 112);
    in->warmup = get32(h + 120);
    in->steps = get32(h + 124);
    in->batch = get32(h + 128);
    in->accum = get32(h + 132);
    const char *bad = gpt_config_check(&in->cfg);
    if (bad) return error("%s: offset 16: damaged checkpoint: %s", path, bad), -2;
    return 0;
}

/* --------------------------------------------------------------------------------------- */
/* Save                                                                                    */

/*
** Write header + blocks to a temporary file beside path, fsync, rename, fsync the directory.
*/
int ckpt_save(const char *path, const Gpt *m, const CkptInfo *info)
{
    CkptInfo in = *info;
    in.cfg = m->cfg;
    in.nparams = m->nparams;
    in.has_opt = info->has_opt && m->m_memory;
    size_t bytes = m->nparams * sizeof(float);
    const float *blocks[3] = {m->params_memory, m->m_memory, m->v_memory};
    int nb = in.has_opt ? 3 : 1;
    Hash64State *hs = hash64_new();
    for (int i = 0; i < nb; i++) hash64_update(hs, blocks[i], bytes);
    unsigned char h[CKPT_HEADER_BYTES];
    ckpt_encode(h, &in, hash64_digest(hs));
    hash64_free(hs);

    size_t n = strlen(path) + 32;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        error("cannot create '%s': %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    int rc = write_all(fd, h, sizeof h);
    for (int i = 0; i < nb && rc == 0; i++) rc = write_all(fd, blocks[i], bytes);
    if (rc == 0) rc = fsync(fd);
    int saved = errno;
    if (close(fd) != 0 && rc == 0) { rc = -1; saved = errno; }
    if (rc == 0 && rename(tmp, path) != 0) { rc = -1; saved = errno; }
    if (rc != 0) {
        error("cannot write checkpoint '%s': %s", path, strerror(saved));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    char *d = xstrdup(path);
    fsync_dir(dirname(d));
    free(d);
    return 0;
}

/*
** Unlink PATH.tmp.PID files whose process is gone (a kill -9 during a save leaves one).
*/
void ckpt_clean_stale(const char *path)
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
        if (*end || pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno == EPERM)) continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *f = xmalloc(n);
        snprintf(f, n, "%s/%s", dir, e->d_name);
        unlink(f);
        free(f);
    }
    if (dh) closedir(dh);
    free(d);
    free(b);
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
                         (unsigned long long)(off + got)), -2;
        got += (size_t)r;
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
              "shape)", path, (unsigned long long)info->nparams);
        rc = -2;
    }
    if (rc == 0) {
        struct stat st;
        uint64_t want = CKPT_HEADER_BYTES + info->nparams * 4 * (info->has_opt ? 3 : 1);
        if (fstat(fd, &st) == 0 && (uint64_t)st.st_size != want) {
            error("%s: offset %llu: checkpoint is %s (%llu bytes, the header says %llu)", path,
                  (unsigned long long)((uint64_t)st.st_size < want ? (uint64_t)st.st_size : want),
                  (uint64_t)st.st_size < want ? "truncated" : "too long",
                  (unsigned long long)st.st_size, (unsigned long long)want);
            rc = -2;
        }
    }
    if (rc) { close(fd); return rc; }
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
    gpt_init(m, &info->cfg);   /* its size was checked against the file's */
    size_t bytes = m->nparams * sizeof(float);
    Hash64State *hs = hash64_new();
    rc = read_full(fd, m->params_memory, bytes, path, CKPT_HEADER_BYTES);
    if (rc == 0) hash64_update(hs, m->params_memory, bytes);
    if (rc == 0 && info->has_opt) {
        /* the moments go straight into the model, or (not wanted) through one scratch block
        ** only for the checksum */
        float *scratch = NULL;
        if (with_opt) gpt_alloc_train(m);
        else scratch = xmalloc(bytes);
        float *blocks[2] = {with_opt ? m->m_memory : scratch, with_opt ? m->v_memory : scratch};
        for (int i = 0; i < 2 && rc == 0; i++) {
            uint64_t off = CKPT_HEADER_BYTES + (uint64_t)(i + 1) * bytes;
            rc = read_full(fd, blocks[i], bytes, path, off);
            if (rc == 0) hash64_update(hs, blocks[i], bytes);
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
