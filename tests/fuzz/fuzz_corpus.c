// SPDX-License-Identifier: MIT
/*
** fuzz_corpus.c: libFuzzer target for the shard header and index reader that cm-train opens a
** corpus with (shards/corpus.h corpus_open, shards/shard.h shard_header_decode).
** fuzz-needs: shards tokenize
**
** Once per process, a small real corpus is packed (pack_run on a token stream written with
** lib/tokstream.h) into a temporary directory. Each input replaces that corpus's only shard
** file; byte 0 is a flag: bit 0 recomputes the shard's header checksum after the mutation,
** bit 1 its payload checksum first (random bytes rarely pass a checksum, so this lets the
** fuzzer reach the checks behind them). The rest is the shard file. Properties: the header
** decoder alone and corpus_open either accept it or refuse it with a message naming the file;
** an accepted corpus can be sampled (random and sequential windows) without reading outside
** the mapping.
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "tokstream.h"
#include "hash.h"
#include "shards/shard.h"
#include "shards/shards.h"
#include "shards/corpus.h"
#include "fuzz.h"

static char g_dir[256];   /* the packed corpus */
static char g_shard[300]; /* its shard file, rewritten for each input */

/* Remove the corpus directory at exit. */
static void corpus_dir_remove(void)
{
    char cmd[300];
    if (!g_dir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd)) {}
}

/* Write a token stream of ndocs documents into fd (vocab 300, eot 299). */
static void write_stream(int fd, int ndocs)
{
    static const char json[] = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}";
    Out o;
    out_init(&o, fd, "memfd", 0);
    ts_write_header(&o, 300, 299, hash64(json, sizeof json - 1), json, sizeof json - 1);
    uint64_t toks = 0;
    for (int i = 0; i < ndocs; i++) {
        char meta[128];
        int ml = snprintf(meta, sizeof meta, "{\"repo_name\":\"r%d\",\"path\":\"f%d.py\"}", i % 3,
                          i);
        uint32_t ids[16];
        uint32_t n = (uint32_t)(4 + i % 12);
        for (uint32_t k = 0; k + 1 < n; k++) ids[k] = (uint32_t)(i * 31 + k * 7) % 299;
        ids[n - 1] = 299;
        ts_write_doc(&o, meta, (uint32_t)ml, ids, n);
        toks += n;
    }
    ts_write_end(&o, (uint64_t)ndocs, toks);
    out_done(&o);
}

/* Pack the base corpus into a new temporary directory (g_dir). */
static void make_corpus(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/cm-fuzz-corpus.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        abort();
    }
    atexit(corpus_dir_remove);
    int fd = fuzz_memfd("", 0);
    write_stream(fd, 24);
    lseek(fd, 0, SEEK_SET);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/c", g_dir);
    PackOpts po;
    memset(&po, 0, sizeof po);
    po.dir = dir;
    po.input = "memfd";
    po.fd = fd;
    po.shard_tokens = 1 << 20;
    po.valid_fraction = 0.3;
    po.split_seed = SPLIT_SEED_DEFAULT;
    po.cmdline = "fuzz_corpus";
    if (pack_run(&po) != 0) {
        fprintf(stderr, "fuzz_corpus: pack_run failed\n");
        abort();
    }
    close(fd);
    char name[32];
    shard_file_name(name, sizeof name, 0);
    snprintf(g_shard, sizeof g_shard, "%s/%s", dir, name);
    snprintf(g_dir + strlen(g_dir), sizeof g_dir - strlen(g_dir), "%s", "");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    make_corpus();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    size_t n = size - 1;
    fuzz_fix_header_sums(s, n, data[0], SHARD_PAYLOAD_OFFSET, 32); /* payload sum at byte 32 */

    ShardHeader h;
    char err[512] = "";
    if (shard_header_decode(&h, s, n, err, sizeof err) != 0) FUZZ_ASSERT(err[0] != 0);

    FILE *f = fopen(g_shard, "wb");
    if (!f || (n && fwrite(s, 1, n, f) != n) || fclose(f)) abort();
    free(s);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/c", g_dir);
    err[0] = 0;
    Corpus *c = corpus_open(dir, err, sizeof err);
    if (!c) {
        FUZZ_ASSERT(strstr(err, dir) != NULL);
        return 0;
    }
    uint32_t w[9];
    CorpusSampler *sp = corpus_sampler_new(c, NULL, NULL, CORPUS_RANDOM, 7, 9, err, sizeof err);
    if (sp) {
        uint32_t acc = 0;
        for (int i = 0; i < 8 && corpus_sampler_next(sp, w); i++)
            for (int k = 0; k < 9; k++) acc ^= w[k];
        (void)acc;
        corpus_sampler_free(sp);
    }
    sp = corpus_sampler_new(c, "train", NULL, CORPUS_SEQUENTIAL, 0, 9, err, sizeof err);
    if (sp) {
        int guard = 0;
        while (corpus_sampler_next(sp, w) && guard++ < 100000) {}
        corpus_sampler_free(sp);
    }
    corpus_close(c);
    return 0;
}

#ifdef FUZZ_SEEDS
/* Seeds: the real shard file, as is and with the "fix checksums" flags. */
int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    make_corpus();
    int fd = open(g_shard, O_RDONLY);
    if (fd < 0) {
        perror(g_shard);
        return 1;
    }
    size_t n;
    char *b = fuzz_slurp(fd, &n);
    close(fd);
    for (int flag = 0; flag < 4; flag++) {
        Buf s = { 0 };
        buf_addc(&s, (char)flag);
        buf_add(&s, b, n);
        char name[32];
        snprintf(name, sizeof name, "shard-flag%d", flag);
        seed_write(argv[1], name, s.buf, s.len);
        buf_free(&s);
    }
    free(b);
    return 0;
}
#endif
