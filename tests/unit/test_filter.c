// SPDX-License-Identifier: MIT
/*
** test_filter.c: unit tests of cm-filter's modules: import scanner, quality rules, dedup.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "hash.h"
#include "filter/imports.h"
#include "filter/quality.h"
#include "filter/dedup.h"

/* --- imports ------------------------------------------------------------------------ */

/* Scan text for numpy/pandas/sklearn; bit 0 numpy, 1 pandas, 2 sklearn. */
static uint64_t scan3(const char *text)
{
    char *names[] = { "numpy", "pandas", "sklearn" };
    ImportScanner *s = imports_new(names, 3);
    assert_non_null(s);
    uint64_t m = imports_scan(s, text, strlen(text));
    imports_free(s);
    return m;
}

static void test_imports_seen(void **state)
{
    assert_int_equal(scan3("import numpy as np\n"), 1);
    assert_int_equal(scan3("import os, numpy\n"), 1);
    assert_int_equal(scan3("from sklearn.model_selection import train_test_split\n"), 4);
    assert_int_equal(scan3("from pandas import *\n"), 2);
    assert_int_equal(scan3("def f():\n    import numpy\n"), 1);
    assert_int_equal(scan3("try:\n\timport pandas as pd\nexcept ImportError:\n\tpass\n"), 2);
    assert_int_equal(scan3("import numpy.linalg\n"), 1);
    assert_int_equal(scan3("import os, \\\n    numpy as np, pandas\n"), 3);
    assert_int_equal(scan3("try: import sklearn\nexcept: pass\n"), 4);
    assert_int_equal(scan3("import os; import pandas\n"), 2);
    assert_int_equal(scan3("from numpy.linalg import(inv)\n"), 1);
    assert_int_equal(scan3("x = 1\r\nimport numpy\r\n"), 1);
    assert_int_equal(scan3("s = '''a'''\nimport sklearn\n"), 4);
    assert_int_equal(scan3("x = 'a' # '''\nimport numpy\n"), 1);
}

static void test_imports_not_fooled(void **state)
{
    assert_int_equal(scan3("# import numpy\n"), 0);
    assert_int_equal(scan3("x = \"import numpy\"\n"), 0);
    assert_int_equal(scan3("\"\"\"\nimport numpy\n\"\"\"\nimport os\n"), 0);
    assert_int_equal(
        scan3("def f():\n    '''Example:\n\n    from pandas import DataFrame\n    '''\n"), 0);
    assert_int_equal(scan3("import numpyro\n"), 0);
    assert_int_equal(scan3("import pandas_flavor\n"), 0);
    assert_int_equal(scan3("from numpyro import x\n"), 0);
    assert_int_equal(scan3("from . import numpy\n"), 0);
    assert_int_equal(scan3("from .numpy import x\n"), 0);
    assert_int_equal(scan3("myimport numpy\n"), 0);
    assert_int_equal(scan3("x.import numpy\n"), 0);
    assert_int_equal(scan3("print('it\\'s', \"import numpy\")\n"), 0);
    assert_int_equal(scan3(""), 0);
}

static void test_imports_dotted_wanted_and_format(void **state)
{
    char *names[] = { "sklearn.svm", "scipy" };
    ImportScanner *s = imports_new(names, 2);
    assert_non_null(s);
    const char *a = "from sklearn.svm import SVC\nimport scipy.sparse\n";
    uint64_t m = imports_scan(s, a, strlen(a));
    assert_int_equal(m, 3);
    const char *b = "from sklearn import svm\n";
    assert_int_equal(imports_scan(s, b, strlen(b)), 0);
    char out[128];
    size_t n = imports_format(s, m, out, sizeof out);
    assert_string_equal(out, "\"imports\":[\"sklearn.svm\",\"scipy\"]");
    assert_int_equal(n, strlen(out));
    imports_format(s, 0, out, sizeof out);
    assert_string_equal(out, "\"imports\":[]");
    imports_free(s);
    char *bad[] = { "numpy-x" };
    assert_null(imports_new(bad, 1));
    char *bad2[] = { ".numpy" }, *bad3[] = { "1numpy" }, *bad4[] = { "a..b" };
    assert_null(imports_new(bad2, 1));
    assert_null(imports_new(bad3, 1));
    assert_null(imports_new(bad4, 1));
    char longname[IMPORTS_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    char *bad5[] = { longname };
    assert_null(imports_new(bad5, 1));
    longname[IMPORTS_NAME_MAX] = 0;
    ImportScanner *ok = imports_new(bad5, 1);
    assert_non_null(ok);
    imports_free(ok);
}

/* --- quality ------------------------------------------------------------------------ */

static void test_quality_stats(void **state)
{
    QualityStats st;
    const char *t = "ab = 1\r\ncd\n\xc3\xa9t\xc3\xa9\rx";
    quality_stats(t, strlen(t), &st);
    assert_int_equal(st.lines, 4); /* "ab = 1", "cd", "été", "x" */
    assert_int_equal(st.longest_line, 6);
    assert_int_equal(st.line_chars, 6 + 2 + 3 + 1);
    assert_int_equal(st.newlines, 2);
    assert_int_equal(st.equals, 1);
    assert_int_equal(st.chars, strlen(t) - 2); /* two continuation bytes */
    assert_int_equal(st.alnum, 2 + 1 + 2 + 3 + 1);
    /* the same text with "\n" only (the fast path) */
    const char *f = "ab = 1\ncd\n\xc3\xa9t\xc3\xa9\nx";
    quality_stats(f, strlen(f), &st);
    assert_int_equal(st.lines, 4);
    assert_int_equal(st.longest_line, 6);
    assert_int_equal(st.line_chars, 6 + 2 + 3 + 1);
    assert_int_equal(st.newlines, 3);
    assert_int_equal(st.equals, 1);
    assert_int_equal(st.chars, strlen(f) - 2);
    assert_int_equal(st.alnum, 2 + 1 + 2 + 3 + 1);
    /* non-ASCII characters are alphanumeric as Python's isalnum() says: a b c ½ ² yes;
    ** — → © and a combining accent no (fast and slow paths) */
    const char *u8 = "a"
                     "\xe2\x80\x94"
                     "b"
                     "\xe2\x86\x92"
                     "c"
                     "\xc2\xa9"
                     "\xc2\xbd"
                     "\xc2\xb2"
                     "e"
                     "\xcc\x81";
    quality_stats(u8, strlen(u8), &st);
    assert_int_equal(st.chars, 10);
    assert_int_equal(st.alnum, 6);
    Buf r = { 0 };
    buf_adds(&r, u8);
    buf_adds(&r, "\r\n");
    quality_stats(r.buf, r.len, &st);
    assert_int_equal(st.alnum, 6);
    buf_free(&r);
    /* a long line of 2-byte characters is measured in characters */
    Buf b = { 0 };
    buf_adds(&b, "abc\n");
    for (int i = 0; i < 10; i++) buf_adds(&b, "\xc3\xa9");
    buf_adds(&b, "\nabcdefgh\n");
    quality_stats(b.buf, b.len, &st);
    assert_int_equal(st.longest_line, 10);
    assert_int_equal(st.lines, 3);
    buf_free(&b);
    quality_stats("", 0, &st);
    assert_int_equal(st.lines, 0);
    quality_stats("\n", 1, &st);
    assert_int_equal(st.lines, 1);
    assert_int_equal(st.longest_line, 0);
}

/* A file that passes every rule: returns it in b. */
static void good_file(Buf *b)
{
    buf_reset(b);
    buf_adds(b,
             "import numpy as np\n\n\ndef scale(values, factor=2):\n"
             "    result = np.asarray(values) * factor\n    total = result.sum()\n"
             "    offset = 1\n    mean = total / len(result) + offset\n    return result, mean\n");
}

static void test_quality_thresholds(void **state)
{
    QualityOpts q;
    quality_defaults(&q);
    q.drop_prob = 1;
    Buf b = { 0 }, scratch = { 0 };
    good_file(&b);
    assert_int_equal(quality_check(&q, b.buf, b.len, &scratch), Q_OK);

    /* longest line: 1000 characters pass, 1001 do not (é is one character) */
    for (int extra = 0; extra < 2; extra++) {
        good_file(&b);
        buf_adds(&b, "# ");
        for (int i = 0; i < 998 + extra - 1; i++) buf_adds(&b, "a");
        buf_adds(&b, "\xc3\xa9\n");
        for (int i = 0; i < 30; i++) buf_adds(&b, "x = 1\n"); /* keep the mean down */
        assert_int_equal(quality_check(&q, b.buf, b.len, &scratch), extra ? Q_MAX_LINE : Q_OK);
    }
    /* mean line length: exactly 100 passes, just above does not */
    q.max_line = 0;
    for (int extra = 0; extra < 2; extra++) {
        buf_reset(&b);
        buf_adds(&b, "def f(a=1, b=2, c=3, d=4, e=5): pass"); /* 36 chars */
        for (int i = 36; i < 100; i++) buf_adds(&b, "a");
        buf_adds(&b, "\n");
        for (int i = 0; i < 100 + extra; i++) buf_adds(&b, "b"); /* mean 100 or 100.5 */
        assert_int_equal(quality_check(&q, b.buf, b.len, &scratch), extra ? Q_MEAN_LINE : Q_OK);
    }
    quality_defaults(&q);
    q.drop_prob = 1;
    /* alphanumeric fraction: 25 of 100 passes, 24 of 100 does not */
    for (int extra = 0; extra < 2; extra++) {
        buf_reset(&b);
        buf_adds(&b, "def f(): x=y=z=w=v=u"); /* 20 chars, 10 alnum */
        for (int i = 0; i < 15 - extra; i++) buf_adds(&b, "a");
        for (int i = 0; i < 100 - 20 - 15 + extra; i++) buf_adds(&b, "+");
        assert_int_equal(b.len, 100);
        assert_int_equal(quality_check(&q, b.buf, b.len, &scratch), extra ? Q_ALNUM : Q_OK);
    }
    /* '=': 5 pass, 4 do not */
    for (int extra = 0; extra < 2; extra++) {
        buf_reset(&b);
        buf_adds(&b,
                 extra ? "def f(a=1, b=2):\n    c = a >= b\n"
                       : "def f(a=1, b=2):\n    c = a == b\n");
        assert_int_equal(quality_check(&q, b.buf, b.len, &scratch), extra ? Q_FEW_ASSIGN : Q_OK);
    }
    /* autogenerated: line 5 counts, line 6 does not */
    for (int extra = 0; extra < 2; extra++) {
        good_file(&b);
        Buf c = { 0 };
        for (int i = 0; i < 4 + extra; i++) buf_adds(&c, "\n");
        buf_adds(&c, "# This file is AUTOMATICALLY GENERATED\n");
        buf_add(&c, b.buf, b.len);
        assert_int_equal(quality_check(&q, c.buf, c.len, &scratch), extra ? Q_OK : Q_AUTOGEN);
        buf_free(&c);
    }
    /* no keywords */
    buf_reset(&b);
    buf_adds(&b, "a = 1\nb = 2\nc = 3\nd = 4\ne = 5\n");
    assert_int_equal(quality_check(&q, b.buf, b.len, &scratch), Q_NO_KEYWORDS);
    q.no_keywords = 0;
    assert_int_equal(quality_check(&q, b.buf, b.len, &scratch), Q_OK);
    buf_free(&b);
    buf_free(&scratch);
}

static void test_quality_config_test_count(void **state)
{
    QualityOpts q;
    quality_defaults(&q);
    q.drop_prob = 1;
    Buf b = { 0 }, scratch = { 0 };
    /* 40 newlines: limit int(0.05*40) = 2 occurrences of "test" allowed, 3 are too many */
    for (int extra = 0; extra < 2; extra++) {
        good_file(&b); /* 9 lines */
        buf_adds(&b, "# Test one\n# a test two\n");
        if (extra) buf_adds(&b, "# contest\n");
        while (1) {
            size_t nl = 0;
            for (size_t i = 0; i < b.len; i++) nl += b.buf[i] == '\n';
            if (nl >= 40) break;
            buf_adds(&b, "y = 2\n");
        }
        assert_int_equal(quality_check(&q, b.buf, b.len, &scratch), extra ? Q_CONFIG_TEST : Q_OK);
    }
    good_file(&b);
    Buf c = { 0 };
    buf_adds(&c, "# Configuration file for the app\n");
    buf_add(&c, b.buf, b.len);
    assert_int_equal(quality_check(&q, c.buf, c.len, &scratch), Q_CONFIG_TEST);
    q.drop_prob = 0;
    assert_int_equal(quality_check(&q, c.buf, c.len, &scratch), Q_OK);
    q.config_test = 0;
    q.drop_prob = 1;
    assert_int_equal(quality_check(&q, c.buf, c.len, &scratch), Q_OK);
    buf_free(&c);
    buf_free(&b);
    buf_free(&scratch);
}

static void test_quality_unit_deterministic(void **state)
{
    QualityOpts q;
    quality_defaults(&q);
    char text[64];
    int below = 0;
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(text, sizeof text, "file %d", i);
        double u = quality_unit(&q, text, (size_t)n, Q_CONFIG_TEST);
        assert_true(u >= 0 && u < 1);
        assert_true(u == quality_unit(&q, text, (size_t)n, Q_CONFIG_TEST));
        below += u < 0.7;
    }
    /* a fair coin: 1400 expected, far outside this band only with a broken hash */
    assert_in_range(below, 1300, 1500);
    q.seed = 1;
    double a = quality_unit(&q, "x", 1, Q_CONFIG_TEST);
    q.seed = 2;
    assert_true(a != quality_unit(&q, "x", 1, Q_CONFIG_TEST));
    assert_true(quality_unit(&q, "x", 1, Q_CONFIG_TEST) != quality_unit(&q, "x", 1, Q_NO_KEYWORDS));
}

/* --- dedup -------------------------------------------------------------------------- */

static void test_exact_fingerprint(void **state)
{
    Buf s = { 0 };
    const char *a = "def f(x):\n    return x + 1\n";
    const char *b = "def  f(x):\r\n\treturn x+1";
    const char *c = "def f(x):\n    return x + 2\n";
    uint64_t fa = dedup_fingerprint(a, strlen(a), &s);
    assert_true(fa == dedup_fingerprint(b, strlen(b), &s));
    assert_true(fa != dedup_fingerprint(c, strlen(c), &s));
    ExactSet e;
    exactset_init(&e);
    assert_false(exactset_has(&e, fa));
    for (uint64_t i = 1; i <= 5000; i++) exactset_add(&e, i * 0x9E3779B97F4A7C15ull);
    exactset_add(&e, fa);
    exactset_add(&e, fa);
    assert_int_equal(e.count, 5001);
    assert_true(exactset_has(&e, fa));
    assert_true(exactset_has(&e, 77 * 0x9E3779B97F4A7C15ull));
    assert_false(exactset_has(&e, 5001 * 0x9E3779B97F4A7C15ull));
    exactset_free(&e);
    buf_free(&s);
}

/* A ~100-line file; variant v changes lines 10, 40 and 70 when v != 0; seed picks the words. */
static void make_file(Buf *b, unsigned seed, int v)
{
    buf_reset(b);
    uint64_t st = seed;
    for (int i = 0; i < 100; i++) {
        uint64_t r = splitmix64(&st);
        if (v && (i == 10 || i == 40 || i == 70))
            buf_addf(b, "    changed_%d = other_%d(%d)\n", i, v, i);
        else
            buf_addf(b, "    value_%llu = compute_%llu(x, %d)\n", (unsigned long long)(r % 1000),
                     (unsigned long long)(r >> 40) % 1000, i);
    }
}

static void test_near_dedup(void **state)
{
    NearIndex x;
    MinHasher m;
    near_init(&x, 0.85);
    minhash_init(&m);
    Buf a = { 0 }, b = { 0 };
    uint32_t sa[MH_PERMS], sb[MH_PERMS];
    make_file(&a, 1, 0);
    make_file(&b, 1, 1);
    assert_true(minhash_signature(&m, a.buf, a.len, sa) > 0);
    assert_true(minhash_signature(&m, b.buf, b.len, sb) > 0);
    assert_true(minhash_similarity(sa, sb) >= 0.85);
    assert_int_equal(near_find(&x, sa), -1);
    near_add(&x, sa);
    assert_int_equal(near_find(&x, sb), 0);
    /* 50 distinct files are all new */
    for (unsigned s = 2; s < 52; s++) {
        make_file(&b, s, 0);
        minhash_signature(&m, b.buf, b.len, sb);
        assert_true(minhash_similarity(sa, sb) < 0.5);
        assert_int_equal(near_find(&x, sb), -1);
        near_add(&x, sb);
    }
    assert_int_equal(x.docs, 51);
    /* no tokens, no shingles */
    assert_int_equal(minhash_signature(&m, "+-*/ \n", 6, sb), 0);
    /* 1-4 tokens: one shingle */
    assert_int_equal(minhash_signature(&m, "a b c", 5, sb), 1);
    near_free(&x);
    minhash_free(&m);
    buf_free(&a);
    buf_free(&b);
}

/* The signature as dedup.h defines it, one shingle and one permutation at a time. */
static size_t reference_signature(const MinHasher *m, const char *s, size_t n, uint32_t *sig)
{
    uint64_t tok[4096];
    size_t count = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (int i = 0; i < MH_PERMS; i++) sig[i] = UINT32_MAX;
    for (size_t i = 0; i < n && count < 4096;) {
        int word = 0;
        uint64_t h = 0x9E3779B97F4A7C15ull;
        while (i < n && (isalnum(u[i]) || u[i] == '_' || u[i] >= 0x80)) {
            h = (h ^ u[i++]) * 0x100000001B3ull;
            word = 1;
        }
        if (!word) {
            i++;
            continue;
        }
        h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
        h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
        tok[count++] = h ^ (h >> 31);
    }
    if (count == 0) return 0;
    size_t shingles = count < MH_SHINGLE ? 1 : count - MH_SHINGLE + 1;
    for (size_t j = 0; j < shingles; j++) {
        uint64_t x;
        if (count < MH_SHINGLE) {
            x = hash64(tok, count * sizeof *tok);
        } else {
            x = tok[j];
            for (int k = 1; k < MH_SHINGLE; k++)
                x = ((x << 23) | (x >> 41)) ^ (tok[j + k] * 0x9E3779B97F4A7C15ull);
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
            x ^= x >> 31;
        }
        for (int i = 0; i < MH_PERMS; i++) {
            uint32_t v = (uint32_t)((m->mul[i] * x + m->add[i]) >> 32);
            if (v < sig[i]) sig[i] = v;
        }
    }
    return shingles;
}

/* The blocked minima (minhash_signature) agree with the definition, on every size of file. */
static void test_minhash_reference(void **state)
{
    MinHasher m;
    minhash_init(&m);
    Buf b = { 0 };
    uint32_t got[MH_PERMS], want[MH_PERMS];
    uint64_t st = 42;
    for (int t = 0; t < 300; t++) {
        buf_reset(&b);
        int words = t < 10 ? t : (int)(splitmix64(&st) % 2000);
        for (int w = 0; w < words; w++)
            buf_addf(&b, "%s%llx", w % 7 ? " " : "\n\t(",
                     (unsigned long long)(splitmix64(&st) % 5000));
        if (t % 5 == 0) buf_adds(&b, " \xc3\xa9t\xc3\xa9_x = 1");
        size_t n = minhash_signature(&m, b.buf ? b.buf : "", b.len, got);
        assert_int_equal(n, reference_signature(&m, b.buf ? b.buf : "", b.len, want));
        assert_memory_equal(got, want, sizeof got);
    }
    buf_free(&b);
    minhash_free(&m);
}

int main(void)
{
    cm_init("test_filter");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imports_seen),
        cmocka_unit_test(test_imports_not_fooled),
        cmocka_unit_test(test_imports_dotted_wanted_and_format),
        cmocka_unit_test(test_quality_stats),
        cmocka_unit_test(test_quality_thresholds),
        cmocka_unit_test(test_quality_config_test_count),
        cmocka_unit_test(test_quality_unit_deterministic),
        cmocka_unit_test(test_exact_fingerprint),
        cmocka_unit_test(test_near_dedup),
        cmocka_unit_test(test_minhash_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
