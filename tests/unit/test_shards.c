// SPDX-License-Identifier: MIT
/*
** test_shards.c: the shard header (shards/shard.h) and the repository split (shards/shards.h).
**
** Test plan: a header survives encode/decode with every field; any changed byte of the first
** 256 is detected (header checksum or magic); bad versions and dtypes are refused with a reason;
** the dtype follows the vocabulary; the split puts about the asked share of repositories in
** `valid`, is a pure function of (repo, fraction, seed) and is monotonic in the fraction.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdlib.h>

#include <stdio.h>
#include <string.h>

#include "hash.h"
#include "shards/shard.h"
#include "shards/shards.h"

static ShardHeader sample(void)
{
    ShardHeader h = { 0 };
    h.version = SHARD_VERSION;
    h.dtype = 2;
    h.tokens = 123456789ull;
    h.fingerprint = 0x0123456789abcdefull;
    h.checksum = 0xfedcba9876543210ull;
    h.eot_id = 50256;
    h.vocab_size = 50257;
    h.documents = 4242;
    h.payload_offset = SHARD_PAYLOAD_OFFSET;
    return h;
}

static void test_header_round_trip(void **state)
{
    unsigned char b[SHARD_HEADER_BYTES];
    ShardHeader h = sample(), g;
    char err[160];
    shard_header_encode(&h, b);
    assert_memory_equal(b, "CMSHARD\0", 8);
    assert_int_equal(shard_header_decode(&g, b, sizeof b, err, sizeof err), 0);
    assert_memory_equal(&h, &g, sizeof h);
    for (int i = 64; i < 248; i++) assert_int_equal(b[i], 0); /* reserved */
}

static void test_header_every_byte_checked(void **state)
{
    unsigned char b[SHARD_HEADER_BYTES];
    ShardHeader h = sample(), g;
    char err[160];
    shard_header_encode(&h, b);
    for (int i = 0; i < SHARD_HEADER_BYTES; i++) {
        b[i] ^= 0x20;
        assert_int_equal(shard_header_decode(&g, b, sizeof b, err, sizeof err), -1);
        assert_true(strstr(err, "checksum") || strstr(err, "magic"));
        b[i] ^= 0x20;
    }
    assert_int_equal(shard_header_decode(&g, b, 100, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));
}

static void test_header_refuses_version_and_dtype(void **state)
{
    unsigned char b[SHARD_HEADER_BYTES];
    ShardHeader h = sample(), g;
    char err[160];
    h.dtype = 3;
    shard_header_encode(&h, b);
    assert_int_equal(shard_header_decode(&g, b, sizeof b, err, sizeof err), -1);
    assert_non_null(strstr(err, "dtype 3"));
    /* a future version with a valid checksum: refused by version */
    h = sample();
    shard_header_encode(&h, b);
    uint32_t v = 7;
    memcpy(b + 8, &v, 4);
    uint64_t c = hash64(b, 248);
    memcpy(b + 248, &c, 8);
    assert_int_equal(shard_header_decode(&g, b, sizeof b, err, sizeof err), -1);
    assert_non_null(strstr(err, "version 7"));
}

static void test_dtype_and_names(void **state)
{
    assert_int_equal(shard_dtype_for_vocab(257), 2);
    assert_int_equal(shard_dtype_for_vocab(65536), 2);
    assert_int_equal(shard_dtype_for_vocab(65537), 4);
    char n[32];
    shard_file_name(n, sizeof n, 3);
    assert_string_equal(n, "shard-00003.bin");
    uint64_t x;
    assert_int_equal(index_parse_hex64("0123456789abcdef", &x), 0);
    assert_true(x == 0x0123456789abcdefull);
    assert_int_equal(index_parse_hex64("0123456789abcde", &x), -1);
    assert_int_equal(index_parse_hex64("0123456789abcdefg", &x), -1);
}

/* A documents table in memory: repo r has sizes[r] documents of tok tokens each. */
static sqlite3 *split_db(const int *sizes, int nrepo, int tok)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE documents(id INTEGER PRIMARY KEY, "
                                  "repo_name TEXT, path TEXT, n_tokens INTEGER, split TEXT)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    int id = 0;
    for (int r = 0; r < nrepo; r++)
        for (int d = 0; d < sizes[r]; d++) {
            char *sql = sqlite3_mprintf("INSERT INTO documents VALUES(%d, 'org/r%d', 'f%d.py', "
                                        "%d, 'train')",
                                        id++, r, d, tok);
            assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
            sqlite3_free(sql);
        }
    return db;
}

static int64_t split_q(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

#define VALID_TOKENS "SELECT COALESCE(SUM(n_tokens), 0) FROM documents WHERE split = 'valid'"
#define BOTH_SPLITS \
    "SELECT COUNT(*) FROM (SELECT repo_name FROM documents GROUP BY repo_name " \
    "HAVING COUNT(DISTINCT split) > 1)"

/* Many repositories of uneven sizes: the valid share stays at or just under the fraction, no
** repository is in both splits, the same seed gives the same split, another seed another. */
static void test_split_share(void **state)
{
    (void)state;
    int sizes[40];
    for (int r = 0; r < 40; r++) sizes[r] = 1 + (r * 7) % 23;
    sqlite3 *db = split_db(sizes, 40, 100);
    int64_t total = split_q(db, "SELECT SUM(n_tokens) FROM documents");
    assert_int_equal(split_assign(db, "mem", 0.1, SPLIT_SEED_DEFAULT, SPLIT_BY_REPO, 1), 0);
    int64_t v1 = split_q(db, VALID_TOKENS);
    /* within half of the largest repository (23 documents of 100 tokens) of the target */
    assert_true(v1 > 0);
    assert_in_range(v1, total / 10 - 23 * 50, total / 10 + 23 * 50);
    assert_int_equal(split_q(db, BOTH_SPLITS), 0);
    char *first = NULL;
    sqlite3_stmt *st = NULL;
    const char *valid_repos = "SELECT group_concat(repo_name) FROM (SELECT DISTINCT repo_name "
                              "FROM documents WHERE split = 'valid' ORDER BY 1)";
    assert_int_equal(sqlite3_prepare_v2(db, valid_repos, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    first = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    assert_int_equal(split_assign(db, "mem", 0.1, SPLIT_SEED_DEFAULT, SPLIT_BY_REPO, 1), 0);
    assert_int_equal(split_q(db, VALID_TOKENS), v1);
    assert_int_equal(split_assign(db, "mem", 0.1, 12345, SPLIT_BY_REPO, 1), 0);
    assert_int_equal(sqlite3_prepare_v2(db, valid_repos, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_not_equal((const char *)sqlite3_column_text(st, 0), first);
    sqlite3_finalize(st);
    free(first);
    /* 0: nothing valid; 1: everything */
    assert_int_equal(split_assign(db, "mem", 0.0, SPLIT_SEED_DEFAULT, SPLIT_BY_REPO, 1), 0);
    assert_int_equal(split_q(db, VALID_TOKENS), 0);
    assert_int_equal(split_assign(db, "mem", 1.0, SPLIT_SEED_DEFAULT, SPLIT_BY_REPO, 1), 0);
    assert_int_equal(split_q(db, VALID_TOKENS), total);
    sqlite3_close(db);
}

/* Few repositories, each bigger than the share asked for: valid is never empty (the smallest
** goes there) and train keeps the rest. */
static void test_split_never_empty(void **state)
{
    (void)state;
    int sizes[3] = { 50, 30, 40 };
    sqlite3 *db = split_db(sizes, 3, 10);
    assert_int_equal(split_assign(db, "mem", 0.05, SPLIT_SEED_DEFAULT, SPLIT_BY_REPO, 1), 0);
    assert_int_equal(split_q(db, VALID_TOKENS), 300); /* org/r1, the smallest */
    assert_int_equal(split_q(db,
                             "SELECT COUNT(DISTINCT repo_name) FROM documents "
                             "WHERE split = 'valid'"),
                     1);
    /* a share that would take every repository leaves train one */
    assert_int_equal(split_assign(db, "mem", 0.99, SPLIT_SEED_DEFAULT, SPLIT_BY_REPO, 1), 0);
    assert_true(split_q(db, "SELECT COUNT(*) FROM documents WHERE split = 'train'") > 0);
    sqlite3_close(db);
}

/* One repository: the split falls back to paths, near the fraction. */
static void test_split_one_repo(void **state)
{
    (void)state;
    int sizes[1] = { 200 };
    sqlite3 *db = split_db(sizes, 1, 10);
    assert_int_equal(split_assign(db, "mem", 0.1, SPLIT_SEED_DEFAULT, SPLIT_BY_REPO, 1), 0);
    assert_int_equal(split_q(db, VALID_TOKENS), 200); /* 20 of 200 paths */
    assert_int_equal(split_assign(db, "mem", 0.25, SPLIT_SEED_DEFAULT, SPLIT_BY_PATH, 1), 0);
    assert_int_equal(split_q(db, VALID_TOKENS), 500);
    sqlite3_close(db);
}

/* Pins (--split-from): pinned units keep their split whatever the fraction; the others follow
** the share rule, counting the pinned valid tokens; a pinned single repository stays whole. */
static void test_split_pins(void **state)
{
    (void)state;
    int sizes[20];
    for (int r = 0; r < 20; r++) sizes[r] = 5;
    sqlite3 *db = split_db(sizes, 20, 10); /* org/r0 .. org/r19, 50 tokens each */
    assert_int_equal(sqlite3_exec(db,
                                  SPLIT_PINS_SQL "INSERT INTO split_pins VALUES"
                                                 "('repo', 'org/r3', 'valid'),"
                                                 "('repo', 'org/r4', 'valid'),"
                                                 "('repo', 'org/r5', 'train'),"
                                                 "('path', 'org/r6', 'valid')", /* other kind */
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    const char *pinned = "SELECT group_concat(repo_name || ':' || split) FROM (SELECT DISTINCT "
                         "repo_name, split FROM documents WHERE repo_name IN ('org/r3', "
                         "'org/r4', 'org/r5') ORDER BY 1)";
    const char *want = "org/r3:valid,org/r4:valid,org/r5:train";
    double fr[] = { 0.0, 0.1, 0.3, 1.0 };
    for (int i = 0; i < 4; i++) {
        assert_int_equal(split_assign(db, "mem", fr[i], SPLIT_SEED_DEFAULT, SPLIT_BY_REPO, 1), 0);
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, pinned, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), want);
        sqlite3_finalize(st);
        assert_int_equal(split_q(db, BOTH_SPLITS), 0);
    }
    /* 0.3 of 1000 tokens: the two pinned repositories (100) and 4 more of 50 */
    assert_int_equal(split_assign(db, "mem", 0.3, SPLIT_SEED_DEFAULT, SPLIT_BY_REPO, 1), 0);
    assert_int_equal(split_q(db, VALID_TOKENS), 300);
    /* 0.1: the pins already give 100 tokens: nothing more */
    assert_int_equal(split_assign(db, "mem", 0.1, SPLIT_SEED_DEFAULT, SPLIT_BY_REPO, 1), 0);
    assert_int_equal(split_q(db, VALID_TOKENS), 100);
    sqlite3_close(db);
    /* a single pinned repository is not split by path */
    int one[1] = { 30 };
    db = split_db(one, 1, 10);
    assert_int_equal(
        sqlite3_exec(db, SPLIT_PINS_SQL "INSERT INTO split_pins VALUES('repo', 'org/r0', 'train')",
                     NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(split_assign(db, "mem", 0.5, SPLIT_SEED_DEFAULT, SPLIT_BY_REPO, 1), 0);
    assert_int_equal(split_q(db, VALID_TOKENS), 0);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_round_trip),
        cmocka_unit_test(test_header_every_byte_checked),
        cmocka_unit_test(test_header_refuses_version_and_dtype),
        cmocka_unit_test(test_dtype_and_names),
        cmocka_unit_test(test_split_share),
        cmocka_unit_test(test_split_never_empty),
        cmocka_unit_test(test_split_one_repo),
        cmocka_unit_test(test_split_pins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
