// SPDX-License-Identifier: MIT
/*
** test_swriter.c: the big-file writer (lib/swriter.h), with O_DIRECT and through the page cache.
**
** Test plan: payloads of several sizes (empty, under one 4 KiB block, exactly one chunk, many
** chunks with a ragged tail), appended in uneven pieces, come back byte for byte after the head
** at offset 0 and the zero gap up to the payload offset; the checksum is XXH3-64 of the payload;
** the file has exactly the expected size. A file size limit (RLIMIT_FSIZE, at an offset that is
** not block-aligned) makes a write fail with EFBIG, reported by sw_space or sw_flush, and the
** writer then serves the next file normally. sw_abort writes the chunks already queued, drops
** the one being filled and closes the file.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_DIRECT */
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "swriter.h"

#define PAYLOAD_OFFSET 4096

static char g_dir[] = "/tmp/cm-test-swriter.XXXXXX";
static int g_direct_ok; /* the file system of g_dir takes O_DIRECT */

static void pattern(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(splitmix64(&s) >> 56);
}

/*
** Append p[0..n) through the writer in pieces of 1..max_piece bytes. Returns 0 or errno.
*/
static int append(SWriter *w, const unsigned char *p, size_t n, size_t max_piece, uint64_t seed)
{
    uint64_t s = seed;
    while (n > 0) {
        size_t want = 1 + (size_t)(splitmix64(&s) % max_piece);
        if (want > n) want = n;
        while (want > 0) {
            size_t room;
            unsigned char *dst = sw_space(w, &room);
            if (!dst) return errno;
            assert_true(room >= 1);
            size_t k = want < room ? want : room;
            memcpy(dst, p, k);
            sw_commit(w, k);
            p += k;
            n -= k;
            want -= k;
        }
    }
    return 0;
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void round_trip(int direct, size_t n, size_t max_piece)
{
    char path[256];
    snprintf(path, sizeof path, "%s/s-%d-%zu.bin", g_dir, direct, n);
    unsigned char *src = malloc(n + 1);
    pattern(src, n, n * 31 + 7);
    SWriter *w = sw_new(direct);
    assert_non_null(w);
    assert_int_equal(sw_begin(w, path, PAYLOAD_OFFSET), 0);
    assert_int_equal(sw_is_direct(w), direct && g_direct_ok);
    assert_int_equal(append(w, src, n, max_piece, n), 0);
    uint64_t sum = 0;
    assert_int_equal(sw_flush(w, &sum), 0);
    assert_true(sum == hash64(src, n));
    const char head[] = "HEAD of the file";
    int fd = sw_end(w, head, sizeof head);
    assert_true(fd >= 0);
    assert_int_equal(fdatasync(fd), 0);
    close(fd);
    sw_free(w);

    size_t got;
    unsigned char *b = read_file(path, &got);
    assert_int_equal(got, PAYLOAD_OFFSET + n);
    assert_memory_equal(b, head, sizeof head);
    for (size_t i = sizeof head; i < PAYLOAD_OFFSET; i++) assert_int_equal(b[i], 0);
    if (n) assert_memory_equal(b + PAYLOAD_OFFSET, src, n);
    free(b);
    free(src);
    unlink(path);
}

static void test_sizes_direct(void **state)
{
    (void)state;
    size_t sizes[] = { 0,
                       1,
                       4095,
                       4096,
                       SW_CHUNK,
                       SW_CHUNK + 1,
                       3 * SW_CHUNK + 12345,
                       (SW_CHUNKS + 3) * SW_CHUNK - 2 };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) round_trip(1, sizes[i], 70000);
}

static void test_sizes_buffered(void **state)
{
    (void)state;
    size_t sizes[] = { 0, 7, SW_CHUNK, 5 * SW_CHUNK + 999 };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) round_trip(0, sizes[i], 300000);
}

static void test_small_pieces(void **state)
{
    (void)state;
    round_trip(1, 2 * SW_CHUNK + 77, 13); /* many tiny appends across chunk borders */
}

static void file_size_limit(int direct)
{
    char path[256], next[256];
    snprintf(path, sizeof path, "%s/limit-%d.bin", g_dir, direct);
    snprintf(next, sizeof next, "%s/next-%d.bin", g_dir, direct);
    size_t n = 6 * SW_CHUNK;
    unsigned char *src = malloc(n);
    pattern(src, n, 99);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = PAYLOAD_OFFSET + 2 * SW_CHUNK + 1000; /* inside the third chunk, unaligned */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    SWriter *w = sw_new(direct);
    assert_non_null(w);
    assert_int_equal(sw_begin(w, path, PAYLOAD_OFFSET), 0);
    int e = append(w, src, n, SW_CHUNK / 3, 5);
    uint64_t sum;
    if (e == 0) {
        assert_int_equal(sw_flush(w, &sum), -1);
        e = errno;
    }
    assert_int_equal(e, EFBIG);
    sw_abort(w);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    /* the writer goes on with the next file as if nothing happened */
    assert_int_equal(sw_begin(w, next, PAYLOAD_OFFSET), 0);
    assert_int_equal(append(w, src, SW_CHUNK + 5, 4096, 1), 0);
    assert_int_equal(sw_flush(w, &sum), 0);
    assert_true(sum == hash64(src, SW_CHUNK + 5));
    int fd = sw_end(w, "h", 1);
    assert_true(fd >= 0);
    close(fd);
    sw_free(w);
    struct stat sb;
    assert_int_equal(stat(next, &sb), 0);
    assert_int_equal(sb.st_size, PAYLOAD_OFFSET + SW_CHUNK + 5);
    unlink(path);
    unlink(next);
    free(src);
}

static void test_file_size_limit_direct(void **state)
{
    (void)state;
    file_size_limit(1);
}

static void test_file_size_limit_buffered(void **state)
{
    (void)state;
    file_size_limit(0);
}

static void test_abort_then_free(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/abort.bin", g_dir);
    unsigned char *src = malloc(3 * SW_CHUNK);
    pattern(src, 3 * SW_CHUNK, 3);
    SWriter *w = sw_new(1);
    assert_non_null(w);
    assert_int_equal(sw_begin(w, path, PAYLOAD_OFFSET), 0);
    assert_int_equal(append(w, src, 3 * SW_CHUNK, SW_CHUNK, 2), 0);
    /* two chunks were handed over; the third, full, waits for the next sw_space: abort writes
    ** the queued ones, drops the one being filled and closes the file */
    sw_abort(w);
    sw_free(w);
    size_t got;
    unsigned char *b = read_file(path, &got);
    assert_int_equal(got, PAYLOAD_OFFSET + 2 * SW_CHUNK);
    assert_memory_equal(b + PAYLOAD_OFFSET, src, 2 * SW_CHUNK);
    free(b);
    unlink(path);
    free(src);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGXFSZ, SIG_IGN); /* as cm_init does: EFBIG instead of a signal */
    if (!mkdtemp(g_dir)) return -1;
    char probe[256];
    snprintf(probe, sizeof probe, "%s/probe", g_dir);
    int fd = open(probe, O_WRONLY | O_CREAT | O_DIRECT, 0644);
    if (fd < 0)
        fd = open(probe, O_WRONLY | O_CREAT, 0644);
    else
        g_direct_ok = 1;
    if (fd < 0) return -1;
    close(fd);
    unlink(probe);
    if (!g_direct_ok) fprintf(stderr, "# %s: no O_DIRECT here: both cases run buffered\n", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(g_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_direct),
        cmocka_unit_test(test_sizes_buffered),
        cmocka_unit_test(test_small_pieces),
        cmocka_unit_test(test_file_size_limit_direct),
        cmocka_unit_test(test_file_size_limit_buffered),
        cmocka_unit_test(test_abort_then_free),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
