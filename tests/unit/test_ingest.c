// SPDX-License-Identifier: MIT
/*
** test_ingest.c: unit tests of cm-ingest's pieces (ingest/naming.c, ingest/notebook.c,
** ingest/stats.c, the engine of ingest/walk*.c): repo_name derivation, archive names, path
** cleaning, magic sniffing, filters, notebooks, --stats, a JSONL dump and a stop signal.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
#include <unistd.h>

#include "util.h"
#include "io.h"
#include "json.h"
#include "record.h"
#include "atomic.h"
#include "ingest/ingest.h"

/* ---- names --------------------------------------------------------------------------------- */

static void test_name_kind(void **state)
{
    (void)state;
    assert_int_equal(ingest_name_kind("x.tar.gz"), NAME_ARCHIVE);
    assert_int_equal(ingest_name_kind("dir/x.TGZ"), NAME_ARCHIVE);
    assert_int_equal(ingest_name_kind("a.whl"), NAME_ARCHIVE);
    assert_int_equal(ingest_name_kind("a.7z"), NAME_ARCHIVE);
    assert_int_equal(ingest_name_kind("python3-x_1.0_all.deb"), NAME_DEB);
    assert_int_equal(ingest_name_kind("dump.jsonl"), NAME_JSONL);
    assert_int_equal(ingest_name_kind("dump.json.zst"), NAME_JSONL);
    assert_int_equal(ingest_name_kind("dump.ndjson.gz"), NAME_JSONL);
    assert_int_equal(ingest_name_kind("mod.py"), NAME_PLAIN);
    assert_int_equal(ingest_name_kind("data.csv.gz"), NAME_PLAIN);
    assert_int_equal(ingest_name_kind(".zip"), NAME_PLAIN); /* a name, not a suffix */
    assert_int_equal(ingest_name_kind("zip"), NAME_PLAIN);
}

static void test_strip_archive_ext(void **state)
{
    (void)state;
    assert_int_equal(ingest_strip_archive_ext("pandas-1.5.3.tar.gz"), strlen("pandas-1.5.3"));
    assert_int_equal(ingest_strip_archive_ext("python3-sklearn_1.2.1+dfsg-1_all.deb"),
                     strlen("python3-sklearn_1.2.1+dfsg-1_all"));
    assert_int_equal(ingest_strip_archive_ext("dump.jsonl.zst"), 4);
    assert_int_equal(ingest_strip_archive_ext("x.tar"), 1);
    assert_int_equal(ingest_strip_archive_ext("noext"), 5);
    assert_int_equal(ingest_strip_archive_ext("a.b.c"), 5);
}

static void test_github_wrapper(void **state)
{
    (void)state;
    size_t comp;
    const char *p = "numpy-1a2b3c4/src/x.py";
    assert_int_equal(ingest_github_wrapper(p, strlen(p), &comp), 5);
    assert_int_equal(comp, strlen("numpy-1a2b3c4"));
    p = "scikit-learn-0123456789abcdef0123456789abcdef01234567/setup.py";
    assert_int_equal(ingest_github_wrapper(p, strlen(p), &comp), strlen("scikit-learn"));
    /* not wrappers: too short or uppercase hex, a file, no NAME, a version */
    const char *no[] = { "numpy-1a2b3c/x.py",
                         "numpy-1A2B3C4D/x.py",
                         "numpy-1a2b3c4",
                         "-1a2b3c4d/x.py",
                         "pandas-1.5.3/x.py",
                         "src/x.py",
                         "",
                         "x-0123456789abcdef0123456789abcdef012345678/y" };
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_int_equal(ingest_github_wrapper(no[i], strlen(no[i]), &comp), 0);
}

static void test_clean_path(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
    } t[] = {
        { "./usr/lib/x.py", "usr/lib/x.py" },
        { "/abs/x", "abs/x" },
        { "././a", "a" },
        { "dir/", "dir" },
        { ".", "" },
        { "./", "" },
        { "a/./b", "a/./b" },
        { "", "" },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        size_t n = strlen(t[i].in);
        const char *p = ingest_clean_path(t[i].in, &n);
        assert_int_equal(n, strlen(t[i].out));
        assert_memory_equal(p, t[i].out, n);
    }
}

/* ---- magic --------------------------------------------------------------------------------- */

static void test_sniff(void **state)
{
    (void)state;
    unsigned char tar[512] = "file.py";
    memcpy(tar + 257, "ustar", 5);
    assert_int_equal(ingest_sniff_archive(tar, sizeof tar), 1);
    assert_int_equal(ingest_sniff_archive(tar, 261), 0); /* too short to see it */
    assert_int_equal(ingest_sniff_archive((const unsigned char *)"PK\003\004xx", 6), 1);
    assert_int_equal(ingest_sniff_archive((const unsigned char *)"!<arch>\ndebian", 14), 1);
    assert_int_equal(ingest_sniff_archive((const unsigned char *)"7z\274\257\047\034", 6), 1);
    assert_int_equal(ingest_sniff_archive((const unsigned char *)"\037\213\010\0", 4), 2);
    assert_int_equal(ingest_sniff_archive((const unsigned char *)"\050\265\057\375", 4), 2);
    assert_int_equal(ingest_sniff_archive((const unsigned char *)"\3757zXZ\0", 6), 2);
    assert_int_equal(ingest_sniff_archive((const unsigned char *)"BZh9", 4), 2);
    assert_int_equal(ingest_sniff_archive((const unsigned char *)"BZhX", 4), 0);
    assert_int_equal(ingest_sniff_archive((const unsigned char *)"import os\n", 10), 0);
    assert_int_equal(ingest_sniff_archive((const unsigned char *)"PK", 2), 0);
}

/* ---- filters ------------------------------------------------------------------------------- */

static void test_path_wanted(void **state)
{
    (void)state;
    IngestOpts o = { 0 };
    assert_true(ingest_path_wanted(&o, "anything", 8));
    o.ext = strv_split("py,ipynb", ',', NULL);
    assert_true(ingest_path_wanted(&o, "a/b.py", 6));
    assert_true(ingest_path_wanted(&o, "a/B.PY", 6));
    assert_true(ingest_path_wanted(&o, "n.ipynb", 7));
    assert_false(ingest_path_wanted(&o, "a/b.pyc", 7));
    assert_false(ingest_path_wanted(&o, "a/.py", 5)); /* a dot file, no extension */
    assert_false(ingest_path_wanted(&o, "a.py/README", 11));
    char *inc[] = { "src/*" }, *exc[] = { "test_*.py", "*/vendor/*" };
    o.include = inc;
    o.n_include = 1;
    o.exclude = exc;
    o.n_exclude = 2;
    assert_true(ingest_path_wanted(&o, "src/a/b.py", 10)); /* '*' crosses '/' */
    assert_false(ingest_path_wanted(&o, "lib/b.py", 8));
    assert_false(ingest_path_wanted(&o, "src/test_b.py", 13)); /* base-name match */
    assert_false(ingest_path_wanted(&o, "src/x/vendor/b.py", 17));
    /* the path is not NUL-terminated at n */
    assert_true(ingest_path_wanted(&o, "src/a.pyXYZ", 8));
    strv_free(o.ext);
}

/* ---- notebooks ----------------------------------------------------------------------------- */

static char *convert(const char *json, int *cells, char *err)
{
    Buf b = { 0 };
    *cells = notebook_to_py(json, strlen(json), &b, err, 200);
    buf_addc(&b, 0);
    return buf_detach(&b, NULL);
}

static void test_notebook_cells(void **state)
{
    (void)state;
    char err[200];
    int cells;
    const char *nb =
        "{\"nbformat\":4,\"metadata\":{\"language_info\":{\"name\":\"python\"}},\"cells\":["
        "{\"cell_type\":\"markdown\",\"source\":\"# doc\"},"
        "{\"cell_type\":\"code\",\"source\":[\"%matplotlib inline\\n\",\"  !ls -l\\n\",\"x = 1\"]},"
        "{\"cell_type\":\"code\",\"source\":\"%%timeit\\ny = x == 2\\nd = {'a': 1}\"},"
        "{\"cell_type\":\"raw\",\"source\":\"raw\"},"
        "{\"cell_type\":\"code\",\"source\":\"%%writefile a.txt\\nhello\\n\"},"
        "{\"cell_type\":\"code\",\"source\":[]}]}";
    char *py = convert(nb, &cells, err);
    assert_int_equal(cells, 4);
    assert_string_equal(py,
                        "# %%\n# %matplotlib inline\n#   !ls -l\nx = 1\n"
                        "\n# %%\n# %%timeit\ny = x == 2\nd = {'a': 1}\n"
                        "\n# %%\n# %%writefile a.txt\n# hello\n"
                        "\n# %%\n");
    free(py);
}

static void test_notebook_magic_lines(void **state)
{
    (void)state;
    char err[200];
    int cells;
    /* assignments from shell/magics are commented; comparisons and strings are not */
    const char *nb =
        "{\"cells\":[{\"cell_type\":\"code\",\"source\":"
        "\"a = !pwd\\nb = %env\\nc = x != 1\\nd = 'why?'\\ne = f(x) # ok?\\nobj??\\nc == !d\"}]}";
    char *py = convert(nb, &cells, err);
    assert_int_equal(cells, 1);
    assert_string_equal(py,
                        "# %%\n# a = !pwd\n# b = %env\nc = x != 1\nd = 'why?'\n"
                        "e = f(x) # ok?\n# obj??\nc == !d\n");
    free(py);
}

static void test_notebook_errors(void **state)
{
    (void)state;
    char err[200];
    int cells;
    char *py = convert("{\"cells\": [", &cells, err);
    assert_int_equal(cells, -1);
    assert_non_null(strstr(err, "not JSON"));
    free(py);
    py = convert("[1,2]", &cells, err);
    assert_int_equal(cells, -1);
    free(py);
    py = convert("{\"metadata\":{\"kernelspec\":{\"language\":\"julia\"}},\"cells\":[]}", &cells,
                 err);
    assert_int_equal(cells, -1);
    assert_non_null(strstr(err, "julia"));
    free(py);
    py = convert("{\"cells\":[{\"cell_type\":\"code\",\"source\":[1]}]}", &cells, err);
    assert_int_equal(cells, -1);
    free(py);
    py = convert("{\"cells\":[{\"cell_type\":\"markdown\",\"source\":\"x\"}]}", &cells, err);
    assert_int_equal(cells, 0); /* no code cells */
    free(py);
}

/* ---- stats --------------------------------------------------------------------------------- */

static void test_stats_json(void **state)
{
    (void)state;
    IngestStats st = { 0 };
    st.seen = 5;
    st.emitted = 3;
    st.skipped[SKIP_BINARY] = 2;
    Buf b = { 0 };
    ingest_stats_json(&st, 1.5, &b);
    assert_non_null(strstr(b.buf, "\"entries_seen\":5,\"emitted\":3,\"skipped\":2,"));
    assert_non_null(strstr(b.buf, "\"binary\":2,\"invalid_utf8\":0"));
    assert_int_equal(b.buf[b.len - 1], '\n');
    buf_free(&b);
}

/* Write text to a new temporary file named *.SUFFIX; returns its path (static storage). */
static const char *temp_file(const char *suffix, const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/test_ingest.XXXXXX%s", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* Lines in fd from its start. */
static int count_lines(int fd)
{
    char buf[4096];
    int n = 0;
    ssize_t k;
    lseek(fd, 0, SEEK_SET);
    while ((k = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < k; i++) n += buf[i] == '\n';
    return n;
}

/*
** A JSONL dump through the engine (the lib's RecordInput: blank lines skipped, a bad line
** counted and reported, the rest kept); then a stop signal: the next input is not begun.
*/
static void test_engine_jsonl_and_stop(void **state)
{
    (void)state;
    const char *path = temp_file(
        ".jsonl",
        "{\"path\":\"a.py\",\"content\":\"a = 1\\n\"}\n"
        " \t\r\n"
        "{\"content\": oops}\n"
        "{\"path\":\"b.py\",\"content\":\"b = 2\\n\",\"license\":\"mit\"}\n"
        "{\"path\":\"c.py\",\"content\":\"c = 3\\n\"}"); /* no final newline */
    char opath[] = "/tmp/test_ingest.out.XXXXXX";
    int fd = mkstemp(opath);
    assert_true(fd >= 0);
    unlink(opath);
    IngestOpts o;
    memset(&o, 0, sizeof o);
    o.max_file = 1 << 20;
    o.max_line = 1 << 20;
    o.max_ratio = 200;
    o.max_expanded = 1 << 30;
    o.max_depth = 4;
    o.threads = 2;
    Out out;
    out_init(&out, fd, "out", 0);
    Ingest *g = ingest_new(&o, &out, 0);
    assert_int_equal(ingest_input(g, path), 1); /* a bad line: 1, the rest kept */
    assert_false(ingest_stopped(g));
    cm_stop_signal = SIGINT;                    /* as the handler would */
    assert_int_equal(ingest_input(g, path), 0); /* a safe point: not begun */
    assert_true(ingest_stopped(g));
    cm_stop_signal = 0;
    ingest_finish(g);
    out_done(&out);
    const IngestStats *st = ingest_stats(g);
    assert_int_equal(st->inputs, 1);
    assert_int_equal(st->jsonl_lines, 4);
    assert_int_equal(st->bad_lines, 1);
    assert_int_equal(st->emitted, 3);
    assert_int_equal(count_lines(fd), 3);
    ingest_free(g);
    close(fd);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_kind),
        cmocka_unit_test(test_strip_archive_ext),
        cmocka_unit_test(test_github_wrapper),
        cmocka_unit_test(test_clean_path),
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_path_wanted),
        cmocka_unit_test(test_notebook_cells),
        cmocka_unit_test(test_notebook_magic_lines),
        cmocka_unit_test(test_notebook_errors),
        cmocka_unit_test(test_stats_json),
        cmocka_unit_test(test_engine_jsonl_and_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
