// SPDX-License-Identifier: MIT
/*
** cmd_logits.c: `cm-train logits`: the raw next-token logits of a checkpoint for a sequence of
** token ids, so that other implementations (PyTorch, transformers, llama.cpp) can be checked
** against cm-train number by number. Output: n x V little-endian f32, row i being the logits
** after ids[0..i].
*/
#include "trainer/interchange.h"
#include "trainer/options.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"            /* defines: error, parse_long, exit statuses */
#include "cli.h"             /* defines: CliSpec, cli_* */
#include "io.h"              /* defines: Out */
#include "le.h"              /* defines: le_putf32 */
#include "trainer/kernels.h" /* defines: kernels_set_threads */

enum { OPT_CKPT = 1, OPT_DATA, OPT_IDS, OPT_OUT, OPT_KV, OPT_THREADS };

static const CliOpt logits_opts[] = {
    { "ckpt", 0, "FILE", "DATA/model.ckpt", "the checkpoint", OPT_CKPT },
    { "data", 0, "DIR", NULL, "its corpus (only to find DATA/model.ckpt)", OPT_DATA },
    { "ids", 0, "I,J,...", NULL, "the token ids (at most the context length)", OPT_IDS },
    { "output", 'o', "FILE", "stdout", "where the n x V f32 values go", OPT_OUT },
    { "kv", 0, NULL, NULL,
      "one token at a time with the key/value cache (the path of\n"
      "`complete`) instead of the batch forward (the path of training and eval)",
      OPT_KV },
    { "threads", 0, "N", "cores", "threads for every kernel and matmul", OPT_THREADS },
    { 0 }
};

static const CliSpec logits_spec = {
    "cm-train",
    "logits",
    "--ckpt FILE --ids I,J,... [-o FILE] [--kv]",
    "Print the model's logits for a sequence of token ids as raw little-endian f32, one row\n"
    "of V values per position, for comparisons with other implementations.",
    "Exit status: 0 done, 2 usage, 3 cannot read or write, 4 bad checkpoint.",
    logits_opts,
    NULL
};

/* Parse "1,2,3" into ids; 0 or -1. */
static int parse_ids(const char *s, int V, uint32_t **ids, int *n)
{
    int cnt = 0;
    char **v = strv_split(s, ',', &cnt);
    *ids = xcalloc((size_t)cnt + 1, sizeof **ids);
    *n = cnt;
    int rc = cnt > 0 ? 0 : -1;
    for (int i = 0; i < cnt && rc == 0; i++) {
        long x;
        if (parse_long(v[i], 0, V - 1, &x) != 0)
            rc = -1;
        else
            (*ids)[i] = (uint32_t)x;
    }
    strv_free(v);
    return rc;
}

/* The logits of ids[0..n) into out (n x V). */
static void compute(Gpt *m, const uint32_t *ids, int n, int kv, float *out)
{
    size_t V = (size_t)m->cfg.V;
    if (kv) {
        GptKV c;
        gpt_kv_init(&c, m);
        for (int i = 0; i < n; i++) memcpy(out + i * V, gpt_kv_step(m, &c, ids[i], i), V * 4);
        gpt_kv_free(&c);
        return;
    }
    uint32_t *in = xcalloc((size_t)m->cfg.T, sizeof *in); /* padded: causal, so unseen */
    memcpy(in, ids, (size_t)n * sizeof *in);
    gpt_forward(m, in, NULL, NULL, 1, 0.0f);
    memcpy(out, m->acts.logits, (size_t)n * V * sizeof(float));
    free(in);
}

/* Write the values to path ("-" or NULL: stdout). */
static int write_values(const char *path, const float *x, size_t n)
{
    int fd = !path || strcmp(path, "-") == 0 ? 1 : open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return error("cannot create '%s': %s", path, strerror(errno)), CM_EIO;
    if (fd == 1 && isatty(1))
        return error("binary logits not written to a terminal (-o FILE)"), CM_EUSAGE;
    Out o;
    out_init(&o, fd, fd == 1 ? "stdout" : path, 1 << 16);
    unsigned char b[4];
    for (size_t i = 0; i < n; i++) {
        le_putf32(b, x[i]);
        out_write(&o, b, 4);
    }
    out_done(&o);
    if (fd != 1 && close(fd) != 0)
        return error("cannot write '%s': %s", path, strerror(errno)), CM_EIO;
    return 0;
}

int cmd_logits(int argc, char **argv)
{
    Cli c;
    int k = 0, rc = CM_OK, kv = 0, threads = 0;
    const char *ckpt = NULL, *data = NULL, *ids_arg = NULL, *out = NULL;
    cli_init(&c, &logits_spec, argc, argv);
    while (rc == CM_OK && (k = cli_next(&c)) > 0) {
        switch (k) {
        case OPT_CKPT: ckpt = c.arg; break;
        case OPT_DATA: data = c.arg; break;
        case OPT_IDS: ids_arg = c.arg; break;
        case OPT_OUT: out = c.arg; break;
        case OPT_KV: kv = 1; break;
        case OPT_THREADS: rc = cli_int(&c, 1, 1024, &threads); break;
        }
    }
    if (rc == CM_OK && k == CLI_STOP) rc = c.status == CM_OK ? -1 : c.status;
    if (rc == CM_OK && (!ckpt && !data)) rc = cli_usage_error(&c, "--ckpt FILE is needed");
    if (rc == CM_OK && !ids_arg) rc = cli_usage_error(&c, "--ids I,J,... is needed");
    cli_free(&c);
    if (rc) return rc < 0 ? CM_OK : rc;
    if (threads)
        kernels_set_threads(threads);
    else
        ix_default_threads();

    char *path = ckpt_path_for(ckpt, data);
    Gpt m;
    CkptInfo info;
    uint32_t *ids = NULL;
    int n = 0, r = ckpt_load(path, &m, &info, 0);
    free(path);
    if (r) return r == -1 ? CM_EIO : CM_EFORMAT;
    if (parse_ids(ids_arg, m.cfg.V, &ids, &n) != 0 || n > m.cfg.T) {
        rc = cli_spec_usage_error(&logits_spec, "--ids: '%s' is not 1 to %d ids below %d", ids_arg,
                                  m.cfg.T, m.cfg.V);
    } else {
        float *x = xmalloc((size_t)n * m.cfg.V * sizeof(float));
        compute(&m, ids, n, kv, x);
        rc = write_values(out, x, (size_t)n * m.cfg.V);
        free(x);
    }
    free(ids);
    gpt_free(&m);
    return rc;
}
