// SPDX-License-Identifier: MIT
/*
** test_corpus.c: the corpus reader (shards/corpus.h) on corpora packed by pack_run.
**
** Test plan: pack a stream of known documents (ids chosen so every position is recognisable),
** then check corpus_open's validation (a truncated shard, a damaged header, a missing index are
** refused with the file named), the sampler (windows are real token runs of the selection,
** random mode deterministic from (seed, k) and resumable by seek, sequential mode covers the
** selection in order and ends), split/where selection, and the token counts. The examples
** sampler runs on a second corpus whose documents have prompts (ts_write_doc_prompt): windows
** hold one example then end-of-text padding, the skipped and truncated counts follow the rule
** of corpus.h (checked against a reference loop), random mode visits every example once per
** epoch and is deterministic and resumable by seek, sequential mode ends after the last
** example; an index of version 2 (no n_prompt column) is read as plain documents.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "io.h"
#include "shards/corpus.h"
#include "shards/corpus_index.h"
#include "shards/shard.h"
#include "shards/shards.h"
#include "tokstream.h"

#define NDOCS 60
#define VOCAB 1000
#define EOT 999

static char g_dir[256];
static char g_pdir[256]; /* the corpus with prompts */

/*
** Document d has length 5 + (d * 7) % 23 and ids (d * 31 + i) % 997, then EOT; repo r = d % 6.
*/
static uint32_t doc_len(int d)
{
    return 5 + (uint32_t)((d * 7) % 23);
}
static uint32_t doc_id(int d, uint32_t i)
{
    return (uint32_t)((d * 31 + (int)i) % 997);
}

/*
** Write the test stream to path, then pack it into dir with the given options.
*/
static int make_corpus(const char *dir, uint64_t shard_tokens, double valid, uint32_t vocab)
{
    char path[300];
    snprintf(path, sizeof path, "%s.tok", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    Out o;
    out_init(&o, fd, path, 0);
    const char *tok = "{\"fake\":true}";
    ts_write_header(&o, vocab, EOT, hash64(tok, strlen(tok)), tok, strlen(tok));
    uint64_t tokens = 0;
    for (int d = 0; d < NDOCS; d++) {
        uint32_t ids[64], n = doc_len(d);
        for (uint32_t i = 0; i + 1 < n; i++) ids[i] = doc_id(d, i);
        ids[n - 1] = EOT;
        char meta[200];
        int ml = snprintf(meta, sizeof meta,
                          "{\"repo_name\":\"org/r%d\",\"path\":\"f%d.py\","
                          "\"n_bytes\":%u,\"imports\":[\"%s\"]}",
                          d % 6, d, 3 * n, d % 2 ? "numpy" : "pandas");
        ts_write_doc(&o, meta, (uint32_t)ml, ids, n);
        tokens += n;
    }
    ts_write_end(&o, NDOCS, tokens);
    out_done(&o);
    close(fd);
    fd = open(path, O_RDONLY);
    PackOpts po = { 0 };
    po.dir = dir;
    po.input = path;
    po.fd = fd;
    po.shard_tokens = shard_tokens;
    po.valid_fraction = valid;
    po.split_seed = SPLIT_SEED_DEFAULT;
    po.progress = 0;
    po.force = 1;
    int rc = pack_run(&po);
    close(fd);
    unlink(path);
    return rc;
}

#define NEX 40 /* documents of the corpus with prompts */

/* Example d: prompt d % 8 tokens, then 2 + (d * 5) % 6 response tokens (the last one EOT);
** ids (d * 13 + i) % 900, so the first id tells the example. */
static uint32_t ex_prompt(int d)
{
    return (uint32_t)(d % 8);
}
static uint32_t ex_len(int d)
{
    return ex_prompt(d) + 2 + (uint32_t)((d * 5) % 6);
}
static uint32_t ex_id(int d, uint32_t i)
{
    return i + 1 < ex_len(d) ? (uint32_t)((d * 13 + (int)i) % 900) : EOT;
}

/*
** Pack NEX examples with prompts into dir (repository d % 4).
*/
static int make_prompt_corpus(const char *dir)
{
    char path[300];
    snprintf(path, sizeof path, "%s.tok", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    Out o;
    out_init(&o, fd, path, 0);
    const char *tok = "{\"fake\":true}";
    ts_write_header(&o, VOCAB, EOT, hash64(tok, strlen(tok)), tok, strlen(tok));
    uint64_t tokens = 0;
    for (int d = 0; d < NEX; d++) {
        uint32_t ids[64], n = ex_len(d);
        for (uint32_t i = 0; i < n; i++) ids[i] = ex_id(d, i);
        char meta[200];
        int ml = snprintf(meta, sizeof meta, "{\"repo_name\":\"org/e%d\",\"path\":\"x%d\"}", d % 4,
                          d);
        ts_write_doc_prompt(&o, meta, (uint32_t)ml, ids, n, ex_prompt(d));
        tokens += n;
    }
    ts_write_end(&o, NEX, tokens);
    out_done(&o);
    close(fd);
    fd = open(path, O_RDONLY);
    PackOpts po = { 0 };
    po.dir = dir;
    po.input = path;
    po.fd = fd;
    po.shard_tokens = 50;
    po.valid_fraction = 0.25;
    po.split_seed = SPLIT_SEED_DEFAULT;
    po.force = 1;
    po.quiet = 1;
    int rc = pack_run(&po);
    close(fd);
    unlink(path);
    return rc;
}

/* The repositories (0..5) in the valid split, read back from the index by setup. */
static int g_valid_repo[6];

static int setup(void **state)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/cm-test-corpus.%d", (int)getpid());
    int rc = make_corpus(g_dir, 100, 0.3, VOCAB);
    if (rc) return rc;
    snprintf(g_pdir, sizeof g_pdir, "%.240s.ex", g_dir);
    rc = make_prompt_corpus(g_pdir);
    if (rc) return rc;
    /* which repositories the split put in valid (split.c's rule is tested in test_shards) */
    char path[300];
    snprintf(path, sizeof path, "%s/index.sqlite", g_dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT DISTINCT repo_name FROM documents WHERE split = 'valid'", -1,
                           &st, NULL) != SQLITE_OK)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int r = atoi((const char *)sqlite3_column_text(st, 0) + strlen("org/r"));
        if (r >= 0 && r < 6) g_valid_repo[r] = 1;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", g_dir, g_pdir);
    return system(cmd);
}

static int all_docs(int d)
{
    (void)d;
    return 1;
}

/* Is w[0..n) a run of consecutive tokens of the concatenation of the documents d with keep(d)?
** *start_doc: the document of its first token. */
static int is_real_run(const uint32_t *w, size_t n, int (*keep)(int), int *start_doc)
{
    uint32_t all[NDOCS * 40];
    int docstart[NDOCS * 40];
    size_t nall = 0;
    for (int d = 0; d < NDOCS; d++)
        for (uint32_t i = 0; keep(d) && i < doc_len(d); i++) {
            docstart[nall] = d;
            all[nall++] = i + 1 < doc_len(d) ? doc_id(d, i) : EOT;
        }
    for (size_t s = 0; s + n <= nall; s++)
        if (!memcmp(all + s, w, n * sizeof *w)) {
            if (start_doc) *start_doc = docstart[s];
            return 1;
        }
    return 0;
}

/* The selection "valid" AND imports LIKE '%numpy%' of test_windows_come_from_selection. */
static int valid_numpy(int d)
{
    return d % 2 && g_valid_repo[d % 6];
}

static void test_open_and_counts(void **state)
{
    char err[512];
    Corpus *c = corpus_open(g_dir, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(corpus_vocab_size(c), VOCAB);
    assert_int_equal(corpus_eot_id(c), EOT);
    uint64_t total = 0, valid = 0;
    for (int d = 0; d < NDOCS; d++) {
        total += doc_len(d);
        if (g_valid_repo[d % 6]) valid += doc_len(d);
    }
    assert_int_equal(corpus_tokens(c, NULL), total);
    assert_int_equal(corpus_tokens(c, "valid"), valid);
    assert_int_equal(corpus_tokens(c, "train"), total - valid);
    assert_true(valid > 0 && valid < total); /* the split must actually split this corpus */
    double bpt = corpus_bytes_per_token(c, NULL);
    assert_true(bpt > 2.99 && bpt < 3.01);
    size_t jl;
    assert_string_equal(corpus_tokenizer_json(c, &jl), "{\"fake\":true}");
    corpus_close(c);
}

static void test_sequential_covers_selection(void **state)
{
    char err[512];
    Corpus *c = corpus_open(g_dir, err, sizeof err);
    assert_non_null(c);
    /* documents f10..f19 are consecutive: the sequential windows tile them exactly */
    CorpusSampler *s = corpus_sampler_new(c, NULL, "id BETWEEN 10 AND 19", CORPUS_SEQUENTIAL, 0, 9,
                                          err, sizeof err);
    assert_non_null(s);
    uint64_t sel = 0;
    uint32_t expect[1000];
    for (int d = 10; d <= 19; d++)
        for (uint32_t i = 0; i < doc_len(d); i++)
            expect[sel++] = i + 1 < doc_len(d) ? doc_id(d, i) : EOT;
    assert_int_equal(corpus_sampler_tokens(s), sel);
    uint32_t w[9];
    uint64_t k = 0;
    while (corpus_sampler_next(s, w)) {
        assert_memory_equal(w, expect + k * 8, sizeof w);
        k++;
    }
    assert_int_equal(k, (sel - 1) / 8);
    assert_int_equal(corpus_sampler_tell(s), k);
    corpus_sampler_free(s);
    corpus_close(c);
}

static void test_random_deterministic_and_resumable(void **state)
{
    char err[512];
    Corpus *c = corpus_open(g_dir, err, sizeof err);
    assert_non_null(c);
    CorpusSampler *a = corpus_sampler_new(c, "train", NULL, CORPUS_RANDOM, 42, 17, err, sizeof err);
    CorpusSampler *b = corpus_sampler_new(c, "train", NULL, CORPUS_RANDOM, 42, 17, err, sizeof err);
    CorpusSampler *o = corpus_sampler_new(c, "train", NULL, CORPUS_RANDOM, 43, 17, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(o);
    uint32_t wa[50][17], wb[17], wo[17];
    int differ = 0;
    for (int k = 0; k < 50; k++) {
        assert_int_equal(corpus_sampler_next(a, wa[k]), 1);
        assert_int_equal(corpus_sampler_next(b, wb), 1);
        assert_int_equal(corpus_sampler_next(o, wo), 1);
        assert_memory_equal(wa[k], wb, sizeof wb);
        differ += memcmp(wa[k], wo, sizeof wo) != 0;
        for (int i = 0; i < 17; i++) assert_true(wa[k][i] < VOCAB);
    }
    assert_true(differ > 40);
    /* resume: a fresh sampler seeked to 30 gives windows 30.. again */
    CorpusSampler *r = corpus_sampler_new(c, "train", NULL, CORPUS_RANDOM, 42, 17, err, sizeof err);
    corpus_sampler_seek(r, 30);
    for (int k = 30; k < 50; k++) {
        assert_int_equal(corpus_sampler_next(r, wb), 1);
        assert_memory_equal(wa[k], wb, sizeof wb);
    }
    assert_int_equal(corpus_sampler_tell(r), 50);
    corpus_sampler_free(a);
    corpus_sampler_free(b);
    corpus_sampler_free(o);
    corpus_sampler_free(r);
    corpus_close(c);
}

static void test_windows_come_from_selection(void **state)
{
    char err[512];
    Corpus *c = corpus_open(g_dir, err, sizeof err);
    assert_non_null(c);
    /* one document only (f7, 5 + 49 % 23 = 8 tokens): every window lies inside it */
    CorpusSampler *s = corpus_sampler_new(c, NULL, "path = 'f7.py'", CORPUS_RANDOM, 1, 4, err,
                                          sizeof err);
    assert_non_null(s);
    assert_int_equal(corpus_sampler_tokens(s), doc_len(7));
    for (int k = 0; k < 100; k++) {
        uint32_t w[4];
        int d = -1;
        assert_int_equal(corpus_sampler_next(s, w), 1);
        assert_true(is_real_run(w, 4, all_docs, &d));
        assert_int_equal(d, 7);
    }
    corpus_sampler_free(s);
    /* a split's windows: each is a token run of the selected documents, in id order (a
    ** window may join two selected documents that are not adjacent in the stream) */
    s = corpus_sampler_new(c, "valid", "imports LIKE '%numpy%'", CORPUS_RANDOM, 5, 3, err,
                           sizeof err);
    assert_non_null(s);
    for (int k = 0; k < 100; k++) {
        uint32_t w[3];
        assert_int_equal(corpus_sampler_next(s, w), 1);
        assert_true(is_real_run(w, 3, valid_numpy, NULL));
    }
    corpus_sampler_free(s);
    corpus_close(c);
}

static void test_bad_selections(void **state)
{
    char err[512];
    Corpus *c = corpus_open(g_dir, err, sizeof err);
    assert_non_null(c);
    assert_null(
        corpus_sampler_new(c, NULL, "no_such_column = 1", CORPUS_RANDOM, 0, 8, err, sizeof err));
    assert_non_null(strstr(err, "no_such_column"));
    assert_null(
        corpus_sampler_new(c, NULL, "path = 'nothing.py'", CORPUS_RANDOM, 0, 8, err, sizeof err));
    assert_non_null(strstr(err, "no documents"));
    assert_null(corpus_sampler_new(c, NULL, "id = 0", CORPUS_RANDOM, 0, 1000, err, sizeof err));
    assert_non_null(strstr(err, "fewer than one window"));
    assert_null(corpus_sampler_new(c, NULL, "1) ORDER BY id; DELETE FROM documents; SELECT (1",
                                   CORPUS_RANDOM, 0, 8, err, sizeof err));
    assert_non_null(strstr(err, "more than one SQL statement"));
    corpus_close(c);
}

/* corpus_select: split and condition combined, split bound, a tail appended */
static void test_select(void **state)
{
    char err[512], why[300];
    Corpus *c = corpus_open(g_dir, err, sizeof err);
    assert_non_null(c);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        corpus_select(corpus_index(c), "COUNT(*)", "valid", "id < 30", NULL, &st, why, sizeof why),
        0);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(corpus_index(c),
                                        "SELECT COUNT(*) FROM documents WHERE "
                                        "split = 'valid' AND id < 30",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(q, 0), n);
    sqlite3_finalize(q);
    assert_int_equal(
        corpus_select(corpus_index(c), "id", NULL, "", " LIMIT ?", &st, why, sizeof why), 0);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_count(st), 2);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(
        corpus_select(corpus_index(c), "id", NULL, "nope = 1", NULL, &st, why, sizeof why), -1);
    assert_non_null(strstr(why, "no such column: nope"));
    assert_null(st);
    corpus_close(c);
}

/*
** Copy the corpus, damage it with fn, and expect corpus_open to fail naming `want`.
*/
static void expect_refused(const char *what, const char *want)
{
    char dir[300], cmd[900], err[512];
    snprintf(dir, sizeof dir, "%s.bad", g_dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s' && %s", dir, g_dir, dir, what);
    assert_int_equal(system(cmd), 0);
    int status = 0;
    Corpus *c = corpus_open_status(dir, &status, err, sizeof err);
    assert_null(c);
    assert_non_null(strstr(err, want));
    /* the one exit status of a fault: 3 when the index cannot be read, 4 when damaged */
    assert_int_equal(status, strstr(want, "index.sqlite") ? CM_EIO : CM_EFORMAT);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_damaged_shards_refused(void **state)
{
    char cmd[600], bad[300];
    snprintf(bad, sizeof bad, "%s.bad", g_dir);
    /* truncated by one token */
    snprintf(cmd, sizeof cmd, "truncate -s -2 '%s/shard-00001.bin'", bad);
    expect_refused(cmd, "shard-00001.bin: truncated");
    /* one byte of the header changed (token count) */
    snprintf(cmd, sizeof cmd,
             "printf '\\377' | dd of='%s/shard-00000.bin' bs=1 seek=16 "
             "conv=notrunc status=none",
             bad);
    expect_refused(cmd, "shard-00000.bin: header checksum mismatch");
    /* missing shard */
    snprintf(cmd, sizeof cmd, "rm '%s/shard-00002.bin'", bad);
    expect_refused(cmd, "shard-00002.bin: cannot open");
    /* not a corpus */
    snprintf(cmd, sizeof cmd, "rm '%s/index.sqlite'", bad);
    expect_refused(cmd, "index.sqlite: cannot open");
}

static void test_uint32_shards(void **state)
{
    char dir[300], err[512];
    snprintf(dir, sizeof dir, "%s.u32", g_dir);
    assert_int_equal(make_corpus(dir, 1 << 20, 0.0, 70000), 0);
    Corpus *c = corpus_open(dir, err, sizeof err);
    assert_non_null(c);
    CorpusSampler *s = corpus_sampler_new(c, "train", NULL, CORPUS_SEQUENTIAL, 0, 6, err,
                                          sizeof err);
    assert_non_null(s);
    uint32_t w[6];
    assert_int_equal(corpus_sampler_next(s, w), 1);
    for (uint32_t i = 0; i < 4; i++) assert_int_equal(w[i], doc_id(0, i)); /* doc 0: 4 ids */
    assert_int_equal(w[4], EOT);
    assert_int_equal(w[5], doc_id(1, 0));
    corpus_sampler_free(s);
    corpus_close(c);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* The counts of corpus.h's rule for window W over the examples d with keep(d), by a plain loop. */
static CorpusExampleStats ex_expect(size_t W, int (*keep)(int))
{
    CorpusExampleStats e = { 0 };
    for (int d = 0; d < NEX; d++) {
        if (!keep(d)) continue;
        if (ex_prompt(d) >= W - 1) {
            e.skipped_long++;
            continue;
        }
        uint32_t n = ex_len(d) > W ? (uint32_t)W : ex_len(d);
        e.truncated += ex_len(d) > W;
        e.examples++;
        e.tokens += n;
        e.response += n - ex_prompt(d);
    }
    return e;
}

/* Check that w[0..W) is example d's window (tokens, then EOT) with its counts. */
static void check_example(const uint32_t *w, size_t W, int d, uint32_t np, uint32_t nt)
{
    uint32_t n = ex_len(d) > W ? (uint32_t)W : ex_len(d);
    assert_int_equal(np, ex_prompt(d));
    assert_int_equal(nt, n);
    for (uint32_t i = 0; i < W; i++) assert_int_equal(w[i], i < n ? ex_id(d, i) : EOT);
}

/* The example a window holds, from its first id (ex_id(d, 0) = 13 d), or -1. */
static int example_of(const uint32_t *w)
{
    return w[0] % 13 == 0 && w[0] / 13 < NEX ? (int)(w[0] / 13) : -1;
}

static void stats_equal(const CorpusExampleStats *a, const CorpusExampleStats *b)
{
    assert_int_equal(a->examples, b->examples);
    assert_int_equal(a->skipped_long, b->skipped_long);
    assert_int_equal(a->truncated, b->truncated);
    assert_int_equal(a->tokens, b->tokens);
    assert_int_equal(a->response, b->response);
}

static void test_examples_sequential(void **state)
{
    char err[512];
    Corpus *c = corpus_open(g_pdir, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(corpus_has_prompts(c), 1);
    const size_t W = 8; /* prompts of 7 skipped, examples of 9..14 tokens cut */
    CorpusExampleStats st, want = ex_expect(W, all_docs);
    int status = -1;
    CorpusSampler *s = corpus_examples_open(c, NULL, NULL, CORPUS_SEQUENTIAL, 0, W, &st, err,
                                            sizeof err, &status);
    assert_non_null(s);
    assert_int_equal(status, 0);
    assert_true(want.skipped_long > 0 && want.truncated > 0 && want.examples > want.truncated);
    stats_equal(&st, &want);
    assert_int_equal(corpus_sampler_tokens(s), want.tokens);
    uint32_t w[8], np, nt;
    uint64_t k = 0;
    for (int d = 0; d < NEX; d++) {
        if (ex_prompt(d) >= W - 1) continue;
        assert_int_equal(corpus_examples_next(s, w, &np, &nt), 1);
        check_example(w, W, d, np, nt);
        k++;
    }
    assert_int_equal(corpus_examples_next(s, w, &np, &nt), 0); /* the end */
    assert_int_equal(corpus_sampler_next(s, w), 0);
    assert_int_equal(corpus_sampler_tell(s), k);
    assert_int_equal(k, want.examples);
    corpus_sampler_free(s);
    corpus_close(c);
}

static void test_examples_random(void **state)
{
    char err[512];
    Corpus *c = corpus_open(g_pdir, err, sizeof err);
    assert_non_null(c);
    const size_t W = 12;
    CorpusExampleStats st;
    CorpusSampler *a = corpus_examples_open(c, NULL, NULL, CORPUS_RANDOM, 7, W, &st, err,
                                            sizeof err, NULL);
    CorpusSampler *o = corpus_examples_open(c, NULL, NULL, CORPUS_RANDOM, 8, W, NULL, err,
                                            sizeof err, NULL);
    assert_non_null(a);
    assert_non_null(o);
    uint64_t N = st.examples;
    assert_int_equal(N, NEX); /* no prompt of 11 tokens or more */
    static uint32_t wa[3 * NEX][12];
    int order[3][NEX], differ = 0;
    for (uint64_t k = 0; k < 3 * N; k++) {
        uint32_t np, nt, wo[12];
        assert_int_equal(corpus_examples_next(a, wa[k], &np, &nt), 1);
        int d = example_of(wa[k]);
        assert_true(d >= 0);
        check_example(wa[k], W, d, np, nt);
        order[k / N][k % N] = d;
        assert_int_equal(corpus_examples_next(o, wo, &np, &nt), 1);
        differ += example_of(wo) != d;
    }
    assert_true(differ > NEX);    /* another seed, another order */
    for (int e = 0; e < 3; e++) { /* each epoch a permutation */
        int seen[NEX] = { 0 };
        for (int i = 0; i < NEX; i++) seen[order[e][i]]++;
        for (int d = 0; d < NEX; d++) assert_int_equal(seen[d], 1);
    }
    assert_true(memcmp(order[0], order[1], sizeof order[0]) != 0); /* a new order per epoch */
    /* the same seed again, seeked into epoch 1 then back to epoch 0: the same windows */
    CorpusSampler *r = corpus_examples_open(c, NULL, NULL, CORPUS_RANDOM, 7, W, NULL, err,
                                            sizeof err, NULL);
    assert_non_null(r);
    uint64_t at[] = { N + 3, 2 * N - 1, 2, 2 * N };
    for (int j = 0; j < 4; j++) {
        uint32_t w[12];
        corpus_sampler_seek(r, at[j]);
        assert_int_equal(corpus_sampler_next(r, w), 1); /* the window sampler's call works too */
        assert_memory_equal(w, wa[at[j]], sizeof w);
        assert_int_equal(corpus_sampler_tell(r), at[j] + 1);
    }
    corpus_sampler_free(a);
    corpus_sampler_free(o);
    corpus_sampler_free(r);
    corpus_close(c);
}

static int prompted(int d)
{
    return ex_prompt(d) > 0;
}

static void test_examples_selection_and_errors(void **state)
{
    char err[512];
    Corpus *c = corpus_open(g_pdir, err, sizeof err);
    assert_non_null(c);
    CorpusExampleStats st, want = ex_expect(5, prompted);
    int status;
    CorpusSampler *s = corpus_examples_open(c, NULL, "n_prompt > 0", CORPUS_SEQUENTIAL, 0, 5, &st,
                                            err, sizeof err, &status);
    assert_non_null(s);
    stats_equal(&st, &want);
    corpus_sampler_free(s);
    /* a split: only its repositories' examples */
    s = corpus_examples_open(c, "valid", NULL, CORPUS_SEQUENTIAL, 0, 30, &st, err, sizeof err,
                             &status);
    assert_non_null(s);
    assert_true(st.examples > 0 && st.examples < NEX);
    corpus_sampler_free(s);
    assert_null(corpus_examples_open(c, NULL, "nope = 1", CORPUS_RANDOM, 0, 8, &st, err, sizeof err,
                                     &status));
    assert_int_equal(status, CM_EUSAGE);
    assert_non_null(strstr(err, "nope"));
    assert_null(corpus_examples_open(c, NULL, "id > 1000", CORPUS_RANDOM, 0, 8, &st, err,
                                     sizeof err, &status));
    assert_int_equal(status, CM_EFORMAT);
    assert_non_null(strstr(err, "no documents selected"));
    /* every selected prompt too long for the window */
    assert_null(corpus_examples_open(c, NULL, "n_prompt >= 3", CORPUS_RANDOM, 0, 4, &st, err,
                                     sizeof err, &status));
    assert_int_equal(status, CM_EFORMAT);
    assert_non_null(strstr(err, "fits a window"));
    assert_int_equal(st.skipped_long, st.examples + st.skipped_long);
    assert_true(st.skipped_long > 0);
    assert_null(
        corpus_examples_open(c, NULL, NULL, CORPUS_RANDOM, 0, 1, &st, err, sizeof err, &status));
    corpus_close(c);
}

/* An index of version 3 made into version 2: the documents table without n_prompt. */
#define V2_SQL \
    "PRAGMA legacy_alter_table = ON; DROP VIEW examples; CREATE TABLE d2(id INTEGER PRIMARY " \
    "KEY, shard INTEGER NOT NULL, token_offset INTEGER NOT NULL, n_tokens INTEGER NOT NULL, " \
    "n_bytes INTEGER, repo_name TEXT, path TEXT, license TEXT, imports TEXT, content_hash TEXT, " \
    "split TEXT NOT NULL, extra TEXT); INSERT INTO d2 SELECT id, shard, token_offset, n_tokens, " \
    "n_bytes, repo_name, path, license, imports, content_hash, split, extra FROM documents; " \
    "DROP TABLE documents; ALTER TABLE d2 RENAME TO documents; PRAGMA user_version = 2; " \
    "UPDATE corpus SET format_version = 2"

/* An index of version 2 (no n_prompt column, no examples view) is read as plain documents. */
static void test_examples_on_v2_index(void **state)
{
    char dir[300], cmd[2000], err[512];
    snprintf(dir, sizeof dir, "%.280s.v2", g_pdir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s' && sqlite3 '%s/index.sqlite' \"%s\"",
             dir, g_pdir, dir, dir, V2_SQL);
    if (system(cmd) != 0) skip(); /* no sqlite3 shell */
    Corpus *c = corpus_open(dir, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(corpus_has_prompts(c), 0);
    CorpusExampleStats st;
    CorpusSampler *s = corpus_examples_open(c, NULL, NULL, CORPUS_SEQUENTIAL, 0, 8, &st, err,
                                            sizeof err, NULL);
    assert_non_null(s);
    assert_int_equal(st.examples, NEX);
    assert_int_equal(st.skipped_long, 0);
    assert_int_equal(st.response, st.tokens);
    uint32_t w[8], np, nt;
    assert_int_equal(corpus_examples_next(s, w, &np, &nt), 1);
    assert_int_equal(np, 0);
    assert_int_equal(w[0], ex_id(0, 0));
    corpus_sampler_free(s);
    corpus_close(c);
    /* and the plain corpus has no prompts */
    c = corpus_open(g_dir, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(corpus_has_prompts(c), 0);
    corpus_close(c);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_counts),
        cmocka_unit_test(test_sequential_covers_selection),
        cmocka_unit_test(test_random_deterministic_and_resumable),
        cmocka_unit_test(test_windows_come_from_selection),
        cmocka_unit_test(test_bad_selections),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_damaged_shards_refused),
        cmocka_unit_test(test_uint32_shards),
        cmocka_unit_test(test_examples_sequential),
        cmocka_unit_test(test_examples_random),
        cmocka_unit_test(test_examples_selection_and_errors),
        cmocka_unit_test(test_examples_on_v2_index),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
