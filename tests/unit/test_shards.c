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

#include <stdio.h>
#include <string.h>

#include "hash.h"
#include "shards/shard.h"
#include "shards/shards.h"

static ShardHeader sample(void)
{
    ShardHeader h = {0};
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

static void test_split_share_and_determinism(void **state)
{
    int valid = 0, n = 20000;
    for (int i = 0; i < n; i++) {
        char r[32];
        int k = snprintf(r, sizeof r, "owner%d/repo%d", i % 101, i);
        int v = split_is_valid(r, (size_t)k, 0.1, SPLIT_SEED_DEFAULT);
        valid += v;
        assert_int_equal(v, split_is_valid(r, (size_t)k, 0.1, SPLIT_SEED_DEFAULT));
        /* monotonic: valid at 0.1 implies valid at 0.3; never at 0, always at 1 */
        if (v) assert_int_equal(split_is_valid(r, (size_t)k, 0.3, SPLIT_SEED_DEFAULT), 1);
        assert_int_equal(split_is_valid(r, (size_t)k, 0.0, SPLIT_SEED_DEFAULT), 0);
        assert_int_equal(split_is_valid(r, (size_t)k, 1.0, SPLIT_SEED_DEFAULT), 1);
    }
    /* binomial(20000, 0.1): sd ~ 42; accept 6 sd */
    assert_in_range(valid, 2000 - 260, 2000 + 260);
    /* another seed: a different assignment */
    int same = 0;
    for (int i = 0; i < 1000; i++) {
        char r[32];
        int k = snprintf(r, sizeof r, "repo%d", i);
        same += split_is_valid(r, (size_t)k, 0.5, 1) == split_is_valid(r, (size_t)k, 0.5, 2);
    }
    assert_in_range(same, 350, 650);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_round_trip),
        cmocka_unit_test(test_header_every_byte_checked),
        cmocka_unit_test(test_header_refuses_version_and_dtype),
        cmocka_unit_test(test_dtype_and_names),
        cmocka_unit_test(test_split_share_and_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
