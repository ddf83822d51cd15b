// SPDX-License-Identifier: MIT
/*
** test_house.c: unit tests of the shared command-line, atomic-file, byte-order and record-input
** modules of lib/ (cli.h, atomic.h, le.h, record.h's RecordInput).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomic.h"
#include "cli.h"
#include "json.h"
#include "le.h"
#include "record.h"
#include "util.h"

enum { OPT_THREADS = 256, OPT_SIZE, OPT_MODE, OPT_FLAG };

static const CliOpt test_opts[] = { { "output", 'o', "FILE", "stdout", "write here", 'o' },
                                    { "threads", 0, "N", "2", "worker threads", OPT_THREADS },
                                    { "max-size", 0, "SIZE", NULL, "largest input", OPT_SIZE },
                                    { "mode", 0, "WORD", "fast", "fast or slow", OPT_MODE },
                                    { "flag", 'f', NULL, NULL, "a flag", OPT_FLAG },
                                    { 0 } };
static const CliSpec test_spec = {
    "cm-test", "verb", "[options] FILE...", "Tests the parser.", "Memory: bounded.", test_opts, NULL
};

/* Run the parser over a NULL-terminated argument list; returns the status (0 = parsed). */
static int parse(char **argv, Cli *c, long *threads, const char **out, int *flag)
{
    int argc = 0;
    while (argv[argc]) argc++;
    cli_init(c, &test_spec, argc, argv);
    int k, rc = CM_OK;
    while (rc == CM_OK && (k = cli_next(c)) > 0) {
        switch (k) {
        case 'o': *out = c->arg; break;
        case OPT_THREADS: rc = cli_long(c, 1, 64, threads); break;
        case OPT_FLAG: *flag = 1; break;
        default: break;
        }
    }
    if (rc == CM_OK && k == CLI_STOP) rc = c->status;
    return rc;
}

static void test_cli_parse(void **state)
{
    (void)state;
    char *argv[] = { "verb",   "-q", "in1",           "--threads", "4", "-o",
                     "x.json", "-f", "--no-progress", "in2",       NULL };
    Cli c;
    long threads = 0;
    const char *out = NULL;
    int flag = 0;
    assert_int_equal(parse(argv, &c, &threads, &out, &flag), CM_OK);
    assert_int_equal(threads, 4);
    assert_string_equal(out, "x.json");
    assert_int_equal(flag, 1);
    assert_int_equal(c.quiet, 1);
    assert_int_equal(c.progress, 0);
    /* operands, permuted after the options */
    assert_int_equal(c.argc - c.optind, 2);
    assert_string_equal(argv[c.optind], "in1");
    assert_string_equal(argv[c.optind + 1], "in2");
    cli_free(&c);
}

static void test_cli_errors(void **state)
{
    (void)state;
    Cli c;
    long threads = 0;
    const char *out = NULL;
    int flag = 0;
    char *unknown[] = { "verb", "--nope", NULL };
    assert_int_equal(parse(unknown, &c, &threads, &out, &flag), CM_EUSAGE);
    cli_free(&c);
    char *missing[] = { "verb", "--threads", NULL };
    assert_int_equal(parse(missing, &c, &threads, &out, &flag), CM_EUSAGE);
    cli_free(&c);
    char *range[] = { "verb", "--threads", "65", NULL };
    assert_int_equal(parse(range, &c, &threads, &out, &flag), CM_EUSAGE);
    cli_free(&c);
    char *word[] = { "verb", "--threads", "4x", NULL };
    assert_int_equal(parse(word, &c, &threads, &out, &flag), CM_EUSAGE);
    cli_free(&c);
    /* -q is common, but a verb's own -q would win: here it is the common one */
    char *ok[] = { "verb", "--progress", NULL };
    assert_int_equal(parse(ok, &c, &threads, &out, &flag), CM_OK);
    assert_int_equal(c.progress, 1);
    cli_free(&c);
}

static void test_cli_choice_size(void **state)
{
    (void)state;
    char *argv[] = { "verb", "--mode", "slow", "--max-size", "64k", NULL };
    Cli c;
    cli_init(&c, &test_spec, 5, argv);
    static const char *const modes[] = { "fast", "slow", NULL };
    int k, mode = -1;
    uint64_t size = 0;
    while ((k = cli_next(&c)) > 0) {
        if (k == OPT_MODE) assert_int_equal(cli_choice(&c, modes, &mode), 0);
        if (k == OPT_SIZE) assert_int_equal(cli_size(&c, 1, 1 << 20, &size), 0);
    }
    assert_int_equal(k, CLI_DONE);
    assert_int_equal(mode, 1);
    assert_int_equal(size, 65536);
    cli_free(&c);
    char *bad[] = { "verb", "--mode", "medium", NULL };
    cli_init(&c, &test_spec, 3, bad);
    while ((k = cli_next(&c)) > 0)
        if (k == OPT_MODE) assert_int_equal(cli_choice(&c, modes, &mode), CM_EUSAGE);
    cli_free(&c);
}

/* --help goes to stdout with every option, its default and the notes */
static void test_cli_help(void **state)
{
    (void)state;
    fflush(stdout);
    char path[] = "/tmp/cm-test-help-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(1);
    dup2(fd, 1);
    int rc = cli_help(&test_spec);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    assert_int_equal(rc, CM_OK);
    char text[4096] = { 0 };
    assert_true(pread(fd, text, sizeof text - 1, 0) > 0);
    close(fd);
    unlink(path);
    assert_non_null(strstr(text, "usage: cm-test verb [options] FILE..."));
    assert_non_null(strstr(text, "-o, --output FILE"));
    assert_non_null(strstr(text, "(default: stdout)"));
    assert_non_null(strstr(text, "--no-progress"));
    assert_non_null(strstr(text, "-q, --quiet"));
    assert_non_null(strstr(text, "Memory: bounded."));
}

/* --- atomic files ------------------------------------------------------------------------- */

static void test_atomic_commit_abort(void **state)
{
    (void)state;
    char dir[] = "/tmp/cm-test-atomic-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/out.json", dir);
    assert_int_equal(atomic_write_file(path, "{}\n", 3), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 3);
    AtomicFile f;
    assert_int_equal(atomic_open(&f, path), 0);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s", f.tmp);
    assert_int_equal(write_all(f.fd, "changed", 7), 0);
    atomic_abort(&f);
    assert_int_not_equal(access(tmp, F_OK), 0); /* the temporary is gone */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 3); /* the old file is untouched */
    unlink(path);
    rmdir(dir);
    /* a device is written in place, never renamed over */
    assert_int_equal(atomic_write_file("/dev/null", "x", 1), 0);
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
}

/* A temporary left registered is removed when the process exits (error path without commit),
** and by a second SIGINT; a stale one of a dead process is swept. */
static void test_atomic_exit_and_signal(void **state)
{
    (void)state;
    char dir[] = "/tmp/cm-test-atomic-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], tmp[300];
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    pid_t pid = fork();
    if (pid == 0) {
        AtomicFile f;
        if (atomic_open(&f, path) != 0) _exit(9);
        exit(3); /* no commit: atexit removes it */
    }
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(WEXITSTATUS(st), 3);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)pid);
    assert_int_not_equal(access(tmp, F_OK), 0);

    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    if (pid == 0) {
        atomic_signals_init();
        AtomicFile f;
        if (atomic_open(&f, path) != 0) _exit(9);
        if (write(ready[1], "x", 1) != 1) _exit(9);
        for (;;) pause();
    }
    char ch;
    assert_int_equal(read(ready[0], &ch, 1), 1);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)pid);
    assert_int_equal(access(tmp, F_OK), 0);
    kill(pid, SIGINT); /* the first only records itself */
    usleep(100000);
    assert_int_equal(access(tmp, F_OK), 0);
    kill(pid, SIGINT); /* the second removes and exits 130 */
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), CM_EINTR);
    assert_int_not_equal(access(tmp, F_OK), 0);
    close(ready[0]);
    close(ready[1]);

    /* a stale temporary of a process that is gone */
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)pid);
    int fd = open(tmp, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
    atomic_sweep(path);
    assert_int_not_equal(access(tmp, F_OK), 0);
    rmdir(dir);
}

/* --- byte order --------------------------------------------------------------------------- */

static void test_le(void **state)
{
    (void)state;
    unsigned char b[8];
    le_put32(b, 0x01020304u);
    assert_int_equal(b[0], 4);
    assert_int_equal(b[3], 1);
    assert_int_equal(le_get32(b), 0x01020304u);
    le_put64(b, 0x0102030405060708ull);
    assert_int_equal(b[0], 8);
    assert_int_equal(b[7], 1);
    assert_true(le_get64(b) == 0x0102030405060708ull);
    le_put16(b, 0xabcd);
    assert_int_equal(b[0], 0xcd);
    assert_int_equal(le_get16(b), 0xabcd);
    le_putf32(b, 1.5f);
    assert_true(le_getf32(b) == 1.5f);
    le_putf64(b, -2.25);
    assert_true(le_getf64(b) == -2.25);
}

/* --- record input ---------------------------------------------------------------------------- */

static int write_input(char *path, const char *text)
{
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    if (write_all(fd, text, strlen(text)) != 0) return -1;
    close(fd);
    return 0;
}

static void test_record_input(void **state)
{
    (void)state;
    char path[] = "/tmp/cm-test-ri-XXXXXX";
    assert_int_equal(write_input(path,
                                 "{\"content\":\"a\"}\n \t\r\n\n{\"content\":1}\n"
                                 "{\"content\":\"b\"}\n"),
                     0);
    RecordInput ri;
    /* skip: the bad line is counted, both records come through, status CM_EDATA */
    assert_int_equal(ri_open(&ri, path, 1 << 20, 1), 0);
    assert_int_equal(ri_next(&ri), 1);
    assert_memory_equal(ri.rec.content.s, "a", 1);
    assert_int_equal(ri_next(&ri), 1);
    assert_memory_equal(ri.rec.content.s, "b", 1);
    assert_int_equal(ri_next(&ri), 0);
    assert_int_equal(ri.records, 2);
    assert_int_equal(ri.bad, 1);
    assert_int_equal(ri.err, RI_ERR_PARSE);
    assert_int_equal(ri.status, CM_EDATA);
    ri_close(&ri);
    /* fail: the input stops at the bad line, the record before it was delivered */
    assert_int_equal(ri_open(&ri, path, 1 << 20, 0), 0);
    assert_int_equal(ri_next(&ri), 1);
    assert_int_equal(ri_next(&ri), -1);
    assert_int_equal(ri.err, RI_ERR_PARSE);
    assert_int_equal(ri.lr.lineno, 4);
    ri_close(&ri);
    unlink(path);
    /* a missing file */
    assert_int_equal(ri_open(&ri, "/nonexistent/x.jsonl", 1 << 20, 0), -1);
    assert_int_equal(ri.err, RI_ERR_OPEN);
    assert_int_equal(ri.status, CM_EIO);
    ri_close(&ri);
    assert_true(record_line_blank(" \t\r", 3));
    assert_false(record_line_blank(" {", 2));
}

/* --- the JSON field writer ---------------------------------------------------------------- */

static void test_json_writer(void **state)
{
    (void)state;
    Buf b = { 0 };
    JsonWriter w;
    jw_begin(&w, &b);
    jw_u64(&w, "records", 3);
    jw_object(&w, "skipped");
    jw_u64(&w, "binary", 2);
    jw_i64(&w, "delta", -1);
    jw_close(&w);
    jw_array(&w, "files");
    jw_cstr(&w, NULL, "a\"b");
    jw_cstr(&w, NULL, NULL);
    jw_close(&w);
    jw_bool(&w, "complete", 1);
    jw_fmt(&w, "secs", "%.2f", 1.5);
    jw_close(&w);
    assert_string_equal(b.buf,
                        "{\"records\":3,\"skipped\":{\"binary\":2,\"delta\":-1},"
                        "\"files\":[\"a\\\"b\",null],\"complete\":true,\"secs\":1.50}");
    buf_free(&b);
}

int main(void)
{
    cm_init("test_house");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_parse),
        cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_cli_choice_size),
        cmocka_unit_test(test_cli_help),
        cmocka_unit_test(test_atomic_commit_abort),
        cmocka_unit_test(test_atomic_exit_and_signal),
        cmocka_unit_test(test_le),
        cmocka_unit_test(test_record_input),
        cmocka_unit_test(test_json_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
