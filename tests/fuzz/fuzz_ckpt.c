// SPDX-License-Identifier: MIT
/*
** fuzz_ckpt.c: libFuzzer target for cm-train's checkpoint loader (trainer/ckpt.h ckpt_load,
** ckpt_read_info), which `cm-train --resume` and `cm-train complete` run on a file on disk.
** fuzz-needs: trainer
**
** Input: byte 0 is a flag: bit 0 recomputes the header checksum (bytes 248..256) after the
** mutation, bit 1 the payload checksum (bytes 80..88) first, so that the fuzzer reaches the
** checks behind them; the rest is the checkpoint file, written to a temporary file. Properties:
** the loaders return 0, -1 or -2 (never crash, never exit); a loaded model has the shape and
** parameter count its header states; with_opt loads the moments when the header says so.
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "hash.h"
#include "util.h"
#include "trainer/ckpt.h"
#include "fuzz.h"

static char g_path[300];

/* Remove the temporary checkpoint file and its directory at exit. */
static void tmp_remove(void)
{
    if (!g_path[0]) return;
    unlink(g_path);
    char *slash = strrchr(g_path, '/');
    if (slash) {
        *slash = 0;
        rmdir(g_path);
    }
}

/* Path of the temporary checkpoint file (its directory is made once per process). */
static const char *tmp_path(void)
{
    if (!g_path[0]) {
        const char *t = getenv("TMPDIR");
        char dir[256];
        snprintf(dir, sizeof dir, "%s/cm-fuzz-ckpt.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            abort();
        }
        snprintf(g_path, sizeof g_path, "%s/model.ckpt", dir);
        atexit(tmp_remove);
    }
    return g_path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    size_t n = size - 1;
    fuzz_fix_header_sums(s, n, data[0], CKPT_HEADER_BYTES, 80); /* payload sum at byte 80 */
    const char *path = tmp_path();
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(s, 1, n, f) != n) || fclose(f)) abort();
    free(s);

    CkptInfo info;
    int rc = ckpt_read_info(path, &info);
    FUZZ_ASSERT(rc == 0 || rc == -1 || rc == -2);
    for (int with_opt = 0; with_opt < 2; with_opt++) {
        Gpt m;
        rc = ckpt_load(path, &m, &info, with_opt);
        FUZZ_ASSERT(rc == 0 || rc == -1 || rc == -2);
        if (rc == 0) {
            FUZZ_ASSERT(gpt_config_check(&m.cfg) == NULL);
            FUZZ_ASSERT(m.nparams == info.nparams);
            FUZZ_ASSERT(CKPT_HEADER_BYTES + 4 * m.nparams * (info.has_opt ? 3 : 1) == n);
            if (with_opt && info.has_opt) FUZZ_ASSERT(m.m_memory && m.v_memory);
            gpt_free(&m);
        }
    }
    return 0;
}

#ifdef FUZZ_SEEDS
/* Seeds: tiny models saved by ckpt_save, with and without the AdamW moments. */
int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    const char *path = tmp_path();
    GptConfig cfgs[2] = { { 1, 8, 2, 8, 16 }, { 2, 4, 1, 4, 7 } };
    for (int k = 0; k < 2; k++) {
        Gpt m;
        gpt_init(&m, &cfgs[k]);
        gpt_init_weights(&m, 42 + k, 0.02f);
        CkptInfo info;
        memset(&info, 0, sizeof info);
        info.step = 10 + k;
        info.seed = 1;
        info.data_pos = 80;
        info.lr = 3e-4;
        info.steps = 100;
        info.batch = 4;
        info.accum = 1;
        info.has_opt = k == 0;
        if (info.has_opt) gpt_alloc_train(&m);
        if (ckpt_save(path, &m, &info) != 0) return 1;
        gpt_free(&m);
        int fd = open(path, O_RDONLY);
        size_t n;
        char *b = fuzz_slurp(fd, &n);
        close(fd);
        for (int flag = 0; flag < 4; flag += 3) {
            Buf s = { 0 };
            buf_addc(&s, (char)flag);
            buf_add(&s, b, n);
            char name[32];
            snprintf(name, sizeof name, "model%d-flag%d", k, flag);
            seed_write(argv[1], name, s.buf, s.len);
            buf_free(&s);
        }
        free(b);
    }
    return 0;
}
#endif
