// SPDX-License-Identifier: MIT
/*
** test_filter.c: unit tests of cm-filter's modules: import scanner, quality rules, dedup, the
** Python definition scanner and the instruction pairs made from it (--pairs).
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
#include "filter/despace.h"
#include "filter/pyscan.h"
#include "filter/pairs.h"
#include "record.h"
#include "json.h"

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

/* Non-overlapping occurrences of w in s[0..n), left to right (the rule's definition). */
static uint64_t reference_count(const char *s, size_t n, const char *w)
{
    uint64_t c = 0;
    size_t wl = strlen(w);
    for (const char *p = s; (p = memmem(p, (size_t)(s + n - p), w, wl)) != NULL; p += wl) c++;
    return c;
}

/*
** The "\n"-only statistics (bit-mask line scan) and the config/test counts (16-position scan)
** against byte-wise definitions, on random texts of every length around the block sizes.
*/
static void test_quality_scans(void **state)
{
    static const char *const words[] = { "test", "testest", "config", "conf", "tes", "t" };
    static const char *const filler[] = { "\n", " ", "\xc3\xa9", "x = 1", "e", "G", "\n\n" };
    QualityOpts q;
    quality_defaults(&q);
    q.autogen = q.no_keywords = 0;
    q.max_line = q.max_mean_line = q.min_equals = 0;
    q.min_alnum = 0;
    q.drop_prob = 1;
    Buf b = { 0 }, scratch = { 0 };
    uint64_t st = 5;
    for (int t = 0; t < 3000; t++) {
        buf_reset(&b);
        size_t len = t < 200 ? (size_t)t : (size_t)(splitmix64(&st) % 2000);
        unsigned rate = (unsigned)(t % 9) * 2 + 1; /* % of words: counts near the limit */
        while (b.len < len) {
            uint64_t r = splitmix64(&st);
            buf_adds(&b, r % 100 < rate ? words[(r >> 8) % 6] : filler[(r >> 8) % 7]);
        }
        QualityStats qs;
        quality_stats(b.buf ? b.buf : "", b.len, &qs);
        uint64_t lines = 0, newlines = 0, longest = 0, cur = 0, chars = 0, alnum = 0, eq = 0;
        for (size_t i = 0; i < b.len; i++) {
            unsigned char c = (unsigned char)b.buf[i];
            chars += (c & 0xC0) != 0x80;
            alnum += isalnum(c) || c >= 0xC0; /* the only non-ASCII piece is an alphanumeric */
            eq += c == '=';
            if (b.buf[i] == '\n') {
                newlines++, lines++;
                longest = cur > longest ? cur : longest;
                cur = 0;
            } else {
                cur += ((unsigned char)b.buf[i] & 0xC0) != 0x80;
            }
        }
        if (b.len && b.buf[b.len - 1] != '\n') lines++, longest = cur > longest ? cur : longest;
        assert_int_equal(qs.newlines, newlines);
        assert_int_equal(qs.lines, lines);
        assert_int_equal(qs.longest_line, longest);
        assert_int_equal(qs.chars, chars);
        assert_int_equal(qs.alnum, alnum);
        assert_int_equal(qs.equals, eq);
        uint64_t limit = (uint64_t)(0.05 * (double)newlines);
        int above = reference_count(b.buf ? b.buf : "", b.len, "config") > limit ||
            reference_count(b.buf ? b.buf : "", b.len, "test") > limit;
        assert_int_equal(quality_check(&q, b.buf ? b.buf : "", b.len, &scratch),
                         above ? Q_CONFIG_TEST : Q_OK);
    }
    /* long runs: every byte counter of a block lane fills (255 blocks, then summed) */
    for (size_t len = 4070; len < 4200; len += 7) {
        buf_reset(&b);
        for (size_t i = 0; i < len; i++) buf_addc(&b, i % 4000 == 3999 ? '\n' : '=');
        buf_adds(&b, "\xc3\xa9");
        QualityStats qs;
        quality_stats(b.buf, b.len, &qs);
        assert_int_equal(qs.equals, len - len / 4000);
        assert_int_equal(qs.alnum, 1);
        assert_int_equal(qs.chars, len + 1);
    }
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

/* despace drops exactly the six ASCII white-space bytes, at every length and offset. */
static void test_despace(void **state)
{
    const char alphabet[] = " \t\n\v\f\rab=\x08\x0e\x1f!\xa0\xff";
    char s[300], d[300], want[300];
    uint64_t st = 11;
    for (int t = 0; t < 2000; t++) {
        size_t n = t < 300 ? (size_t)t : (size_t)(splitmix64(&st) % 300);
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            s[i] = alphabet[splitmix64(&st) % (sizeof alphabet - 1)];
            if (!strchr(" \t\n\v\f\r", s[i])) want[w++] = s[i];
        }
        assert_int_equal(despace(d, s, n), w);
        assert_memory_equal(d, want, w);
    }
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

/* A token's hash as words.h defines it, a byte at a time. */
static uint64_t reference_token_hash(const unsigned char *p, size_t len)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ len;
    for (size_t at = 0; at < len; at += 8) {
        uint64_t w = 0;
        for (size_t k = 0; k < 8 && at + k < len; k++) w |= (uint64_t)p[at + k] << (8 * k);
        h ^= w;
        h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
        h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
        h ^= h >> 31;
    }
    return h;
}

/* word_hashes finds every token (runs across 64-byte blocks, at the end, long ones). */
static void test_word_hashes(void **state)
{
    WordHashes w = { 0 };
    Buf b = { 0 };
    uint64_t st = 7;
    const char *alphabet = "aZ09_ \n.(\xc3\xa9-";
    for (int t = 0; t < 400; t++) {
        buf_reset(&b);
        size_t len = t < 130 ? (size_t)t : (size_t)(splitmix64(&st) % 3000);
        int words = t % 3 == 0; /* mostly token bytes: long runs */
        for (size_t i = 0; i < len; i++) {
            uint64_t r = splitmix64(&st);
            buf_addc(&b, alphabet[words && r % 8 ? r % 5 : r % 11]);
        }
        const unsigned char *u = (const unsigned char *)(b.buf ? b.buf : "");
        size_t n = word_hashes(&w, (const char *)u, b.len), count = 0;
        for (size_t i = 0; i < b.len;) {
            size_t start = i;
            while (i < b.len && (isalnum(u[i]) || u[i] == '_' || u[i] >= 0x80)) i++;
            if (i == start) {
                i++;
                continue;
            }
            assert_true(count < n);
            assert_true(w.hashes[count++] == reference_token_hash(u + start, i - start));
        }
        assert_int_equal(n, count);
    }
    word_hashes_free(&w);
    buf_free(&b);
}

/* The signature as dedup.h defines it: 16 one-permutation views of 16 bins, densified. */
static size_t reference_signature(const MinHasher *m, const char *s, size_t n, uint32_t *sig)
{
    uint64_t tok[4096];
    uint32_t min[MH_PERMS];
    int full[MH_PERMS];
    size_t count = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (int i = 0; i < MH_PERMS; i++) sig[i] = min[i] = UINT32_MAX;
    for (size_t i = 0; i < n && count < 4096;) {
        size_t start = i;
        while (i < n && (isalnum(u[i]) || u[i] == '_' || u[i] >= 0x80)) i++;
        if (i == start) {
            i++;
            continue;
        }
        tok[count++] = reference_token_hash(u + start, i - start);
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
        for (int v = 0; v < MH_VIEWS; v++) { /* view v: bin = top 4 bits, value = next 32 */
            uint64_t y = m->mul[v] * x + m->add[v];
            int k = v * 16 + (int)(y >> 60);
            uint32_t val = (uint32_t)(y >> 28);
            if (val < min[k]) min[k] = val;
        }
    }
    for (int k = 0; k < MH_PERMS; k++) full[k] = min[k] != UINT32_MAX; /* 2^32-1: empty */
    for (int k = 0; k < MH_PERMS; k++) {
        int from = k, view = k / 16 * 16;
        uint64_t st = 0x636f64656d696c6cull + (uint64_t)k * 0xD1B54A32D192ED03ull, r = 0;
        for (int i = 0; !full[from] && i < 512; i++) { /* optimal densification: k's probes */
            if (i % 8 == 0) r = splitmix64(&st);
            from = view + (int)((r >> (8 * (i % 8))) & 15);
        }
        sig[k] = full[from] ? min[from] : UINT32_MAX;
    }
    return shingles;
}

/* minhash_signature agrees with the definition, on every size of file (dense and sparse). */
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

/* --- pyscan ------------------------------------------------------------------------- */

/* The definitions of text, one a line: "NAME kind parent nested line doc|-". */
static char *scan_describe(const char *text)
{
    PyScan s;
    pyscan_init(&s);
    size_t n = strlen(text);
    size_t k = pyscan_run(&s, text, n);
    Buf b = { 0 };
    for (size_t i = 0; i < k; i++) {
        const PyDef *d = &s.defs[i];
        assert_true(d->start <= d->head && d->head < d->end && d->end <= n);
        if (i) assert_true(d->start >= s.defs[i - 1].start);
        buf_addf(&b, "%.*s %d %ld %d %llu %s\n", (int)d->name_len, text + d->name_off, d->kind,
                 d->parent, d->nested, (unsigned long long)d->line,
                 d->doc_off == PY_NONE ? "-" : "doc");
    }
    pyscan_free(&s);
    return b.buf ? b.buf : xstrdup("");
}

/* The source of definition i of text (start..end); the definition into *out. */
static char *scan_source(const char *text, size_t i, PyDef *out)
{
    PyScan s;
    pyscan_init(&s);
    size_t k = pyscan_run(&s, text, strlen(text));
    assert_true(i < k);
    *out = s.defs[i];
    char *src = xstrndup(text + out->start, out->end - out->start);
    pyscan_free(&s);
    return src;
}

static void test_pyscan_definitions(void **state)
{
    const char *text = "import os\n"
                       "@decorator\n"
                       "@other(1,\n"
                       "       2)\n"
                       "def add(a: int,\n"
                       "        b: int = 2,  # comment )\n"
                       "        ) -> int:\n"
                       "    \"\"\"Return the sum.\"\"\"\n"
                       "    s = \"def fake():\"\n"
                       "    return a + b\n"
                       "\n"
                       "class Outer(Base):\n"
                       "    '''Outer doc.'''\n"
                       "    class Inner:\n"
                       "        def m(self):\n"
                       "            def helper():\n"
                       "                class Local: pass\n"
                       "            return 1\n"
                       "    async def run(self):\n"
                       "        r'''Raw doc.'''\n"
                       "async  def top(): pass\n";
    char *got = scan_describe(text);
    assert_string_equal(got,
                        "add 0 -1 0 2 doc\n"
                        "Outer 2 -1 0 12 doc\n"
                        "Inner 2 1 0 14 -\n"
                        "m 0 2 0 15 -\n"
                        "helper 0 3 1 16 -\n"
                        "Local 2 4 1 17 -\n"
                        "run 1 1 0 19 doc\n"
                        "top 1 -1 0 21 -\n");
    free(got);
    PyDef d;
    char *src = scan_source(text, 0, &d);
    assert_string_equal(src,
                        "@decorator\n@other(1,\n       2)\ndef add(a: int,\n"
                        "        b: int = 2,  # comment )\n        ) -> int:\n"
                        "    \"\"\"Return the sum.\"\"\"\n    s = \"def fake():\"\n"
                        "    return a + b\n");
    assert_int_equal(d.stmts, 2);
    free(src);
    src = scan_source(text, 2, &d); /* Inner ends before `async def run` */
    assert_string_equal(src,
                        "    class Inner:\n        def m(self):\n            def helper():\n"
                        "                class Local: pass\n            return 1\n");
    free(src);
}

static void test_pyscan_strings_and_comments(void **state)
{
    /* "def" and "class" inside strings, comments and continued lines are no definitions */
    char *got = scan_describe("s = '''\ndef fake():\n    pass\n'''\n"
                              "t = \"class X: pass\"  # def y(): pass\n"
                              "# def z(): pass\n"
                              "u = (1,\n"
                              "def_ = 2)\n"
                              "x = 1 + \\\n"
                              "    2\n"
                              "v = r'\\'' 'def w(): pass'\n"
                              "classify = 3\n"
                              "def real(x='\"\"\"', y=\"#\"):\n"
                              "    \"it's the doc\"\n"
                              "    return x\n"
                              "lambda q: q\n");
    assert_string_equal(got, "real 0 -1 0 13 doc\n");
    free(got);
    /* docstrings: prefix r, u, R; single quotes; after a comment; on the header's line; not
    ** b or f strings, not a literal in an expression, not a later statement */
    got = scan_describe("def a():\n    'single'\n"
                        "def b():\n    u\"unicode\"\n"
                        "def c():\n    R'''raw'''\n"
                        "def d():\n    b'bytes'\n"
                        "def e():\n    f'fstr'\n"
                        "def f():\n    'doc'.strip()\n"
                        "def g():\n    x = 1\n    'late'\n"
                        "def h(): 'inline'\n"
                        "def i():\n    # a comment first\n\n    \"\"\"after comment\"\"\" # c\n");
    assert_string_equal(got,
                        "a 0 -1 0 1 doc\nb 0 -1 0 3 doc\nc 0 -1 0 5 doc\nd 0 -1 0 7 -\n"
                        "e 0 -1 0 9 -\nf 0 -1 0 11 -\ng 0 -1 0 13 -\nh 0 -1 0 16 doc\n"
                        "i 0 -1 0 17 doc\n");
    free(got);
}

static void test_pyscan_crlf_tabs_no_newline(void **state)
{
    const char *crlf = "class A:\r\n    \"\"\"Doc\r\n    more.\"\"\"\r\n    def m(self):\r\n"
                       "        return 1\r\n\r\nx = 1\r\n";
    char *got = scan_describe(crlf);
    assert_string_equal(got, "A 2 -1 0 1 doc\nm 0 0 0 4 -\n");
    free(got);
    PyDef d;
    char *src = scan_source(crlf, 0, &d);
    assert_string_equal(src,
                        "class A:\r\n    \"\"\"Doc\r\n    more.\"\"\"\r\n    def m(self):\r\n"
                        "        return 1\r\n");
    free(src);
    /* a tab is 8 columns: the method's body (a tab) is deeper than its def (4 spaces) */
    const char *tabs = "class T:\n    def m(self):\n\t\"\"\"Tab doc.\"\"\"\n\treturn 2\n"
                       "    def n(self):\n\treturn 3\n";
    got = scan_describe(tabs);
    assert_string_equal(got, "T 2 -1 0 1 -\nm 0 0 0 2 doc\nn 0 0 0 5 -\n");
    free(got);
    src = scan_source(tabs, 1, &d);
    assert_string_equal(src, "    def m(self):\n\t\"\"\"Tab doc.\"\"\"\n\treturn 2\n");
    free(src);
    /* the last definition ends at the end of a text without a final newline */
    const char *last = "def f():\n    \"\"\"Doc.\"\"\"\n    return 1";
    src = scan_source(last, 0, &d);
    assert_string_equal(src, last);
    assert_int_equal(d.end, strlen(last));
    free(src);
    /* an unclosed bracket or string runs to the end of the text, and no further */
    got = scan_describe("def f(:\n    '''open\n");
    assert_string_equal(got, "");
    free(got);
    got = scan_describe("def g():\n    '''open\n");
    assert_string_equal(got, "g 0 -1 0 1 -\n");
    free(got);
}

/* --- pairs -------------------------------------------------------------------------- */

/* Field key of the JSON object line[0..len) into out, decoded when a string; NULL when
** absent. */
static const char *json_field(const char *line, size_t len, const char *key, Buf *out)
{
    JsonObj o = { 0 };
    assert_int_equal(json_parse_object(&o, line, len), 0);
    const JsonField *f = json_get(&o, key);
    buf_reset(out);
    if (f && f->type == JSON_STRING)
        json_decode_string(f->raw, f->rawlen, out);
    else if (f)
        buf_add(out, f->raw, f->rawlen);
    json_obj_free(&o);
    if (!f) return NULL;
    buf_add(out, "", 0); /* a buffer even when empty */
    return out->buf;
}

typedef struct {
    Buf text;
    PairList list;
    PairCounts counts;
} Pairs;

/* The pairs of content (path a.py in repository r) under opts. */
static void make_pairs(const char *content, const PairsOpts *opts, Pairs *p)
{
    memset(p, 0, sizeof *p);
    Record r;
    record_init(&r);
    r.repo_name = (Str){ "r", 1 };
    r.path = (Str){ "a.py", 4 };
    r.content = (Str){ content, strlen(content) };
    PairsMaker m;
    pairs_maker_init(&m, opts);
    pairs_make(&m, &r, "\"imports\":[\"numpy\"]", 19, &p->text, &p->list, &p->counts);
    pairs_maker_free(&m);
    record_free(&r);
}

static void pairs_free(Pairs *p)
{
    buf_free(&p->text);
    pair_list_free(&p->list);
}

/* Field key of pair i. */
static const char *pair_field(const Pairs *p, size_t i, const char *key, Buf *out)
{
    assert_true(i < p->list.count);
    const PairLine *l = &p->list.v[i];
    assert_int_equal(p->text.buf[l->off + l->len - 1], '\n');
    return json_field(p->text.buf + l->off, l->len - 1, key, out);
}

static void test_pairs_records(void **state)
{
    PairsOpts o;
    pairs_opts_default(&o);
    Pairs p;
    make_pairs("import numpy as np\n"
               "\n"
               "@cache\n"
               "def mean(x,  # the data\n"
               "         weights=(1,),\n"
               "         ) -> float:\n"
               "    \"\"\"\n"
               "    Weighted mean\n"
               "    of the data:\n"
               "\n"
               "    Parameters\n"
               "    ----------\n"
               "    \"\"\"\n"
               "    return np.mean(x)\n"
               "\n"
               "class Model(Base, metaclass=M):\n"
               "    '''A model that fits\\tthings'''\n"
               "\n"
               "    class Config():\n"
               "        \"\"\"Holds the settings here.\"\"\"\n"
               "        def get(self, key):\n"
               "            \"\"\"Return the value of key.\"\"\"\n"
               "            return self.d[key]\n"
               "\n"
               "    async def fit(self, X):\n"
               "        r\"\"\"Fit the model to X\\n now.\"\"\"\n"
               "        s = '''\n"
               "text at column 0\n"
               "'''\n"
               "        return self\n"
               "\n"
               "    def __init__(self):\n"
               "        \"\"\"Make a new model here.\"\"\"\n"
               "        self.d = {}\n"
               "\n"
               "    def _helper(self):\n"
               "        \"\"\"A private helper here.\"\"\"\n"
               "        return 1\n"
               "\n"
               "def short():\n"
               "    \"\"\"Too short.\"\"\"\n"
               "    return 1\n"
               "\n"
               "def stub():\n"
               "    \"\"\"Only a stub here.\"\"\"\n"
               "    raise NotImplementedError('no')\n"
               "\n"
               "def undocumented(x):\n"
               "    return x\n",
               &o, &p);
    Buf f = { 0 };
    assert_int_equal(p.list.count, 5);
    assert_int_equal(p.counts.defs, 10);
    assert_int_equal(p.counts.skipped[PSKIP_PRIVATE], 2);
    assert_int_equal(p.counts.skipped[PSKIP_SHORT_DOC], 1);
    assert_int_equal(p.counts.skipped[PSKIP_STUB], 1);
    assert_int_equal(p.counts.skipped[PSKIP_NO_DOC], 1);
    assert_int_equal(p.counts.skipped[PSKIP_NESTED], 0);
    assert_string_equal(pair_field(&p, 0, "instruction", &f),
                        "Write a Python function `mean(x, weights=(1,)) -> float`: "
                        "Weighted mean of the data.");
    assert_string_equal(pair_field(&p, 0, "name", &f), "mean");
    assert_string_equal(pair_field(&p, 0, "kind", &f), "function");
    assert_string_equal(pair_field(&p, 0, "line", &f), "3");
    assert_string_equal(pair_field(&p, 0, "input", &f), "");
    assert_string_equal(pair_field(&p, 0, "repo_name", &f), "r");
    assert_string_equal(pair_field(&p, 0, "path", &f), "a.py");
    assert_string_equal(pair_field(&p, 0, "imports", &f), "[\"numpy\"]");
    assert_null(pair_field(&p, 0, "license", &f));
    assert_true(strncmp(pair_field(&p, 0, "output", &f), "@cache\ndef mean(x,", 18) == 0);
    assert_string_equal(pair_field(&p, 1, "instruction", &f),
                        "Write a Python class `Model(Base, metaclass=M)`: A model that fits "
                        "things.");
    assert_string_equal(pair_field(&p, 2, "instruction", &f),
                        "Write the class `Config` nested in the Python class `Model`: "
                        "Holds the settings here.");
    assert_string_equal(pair_field(&p, 2, "kind", &f), "nested class");
    assert_string_equal(pair_field(&p, 3, "name", &f), "Model.Config.get");
    assert_string_equal(pair_field(&p, 3, "instruction", &f),
                        "Write the method `get(self, key)` of the Python class `Model.Config`: "
                        "Return the value of key.");
    assert_string_equal(pair_field(&p, 3, "output", &f),
                        "def get(self, key):\n    \"\"\"Return the value of key.\"\"\"\n"
                        "    return self.d[key]\n");
    assert_true(p.list.v[3].hash == hash64(f.buf, f.len));
    assert_string_equal(pair_field(&p, 4, "instruction", &f),
                        "Write the async method `fit(self, X)` of the Python class `Model`: "
                        "Fit the model to X\\n now.");
    assert_string_equal(pair_field(&p, 4, "output", &f),
                        "async def fit(self, X):\n    r\"\"\"Fit the model to X\\n now.\"\"\"\n"
                        "    s = '''\ntext at column 0\n'''\n    return self\n");
    pairs_free(&p);
    /* --pairs-private keeps __init__; a higher --pairs-min-words drops its 4 words */
    o.private_names = 1;
    o.min_words = 5;
    make_pairs("class A:\n    \"\"\"Class A holds many things.\"\"\"\n"
               "    def __init__(self):\n        \"\"\"Make a new one.\"\"\"\n        x = 1\n"
               "    def __call__(self):\n        \"\"\"Call the object with nothing.\"\"\"\n"
               "        return 1\n",
               &o, &p);
    assert_int_equal(p.list.count, 2);
    assert_string_equal(pair_field(&p, 0, "name", &f), "A");
    assert_string_equal(pair_field(&p, 1, "name", &f), "A.__call__");
    assert_int_equal(p.counts.skipped[PSKIP_SHORT_DOC], 1);
    pairs_free(&p);
    buf_free(&f);
}

static void test_pairs_limits_and_text(void **state)
{
    PairsOpts o;
    pairs_opts_default(&o);
    o.max_bytes = 60;
    Pairs p;
    Buf f = { 0 };
    /* CRLF and tabs: the output has '\n' line ends, the header's indentation taken off */
    make_pairs("class C:\r\n\tdef m(self):\r\n\t\t\"\"\"Return one or two.\"\"\"\r\n"
               "\t\treturn 1\r\n"
               "def big():\r\n    \"\"\"A big function body.\"\"\"\r\n    x = 1\r\n    y = 2\r\n"
               "    return x + y + 1000000",
               &o, &p);
    assert_int_equal(p.list.count, 1);
    assert_int_equal(p.counts.skipped[PSKIP_TOO_LONG], 1);
    assert_int_equal(p.counts.skipped[PSKIP_NO_DOC], 1);
    assert_string_equal(pair_field(&p, 0, "output", &f),
                        "def m(self):\n\t\"\"\"Return one or two.\"\"\"\n\treturn 1\n");
    pairs_free(&p);
    /* a file ending without a newline: the output ends with one */
    o.max_bytes = 8192;
    make_pairs("def big():\n    \"\"\"A big function body.\"\"\"\n    return 1000000", &o, &p);
    assert_int_equal(p.list.count, 1);
    assert_string_equal(pair_field(&p, 0, "output", &f),
                        "def big():\n    \"\"\"A big function body.\"\"\"\n    return 1000000\n");
    pairs_free(&p);
    /* stubs: only a docstring (on the header's line too), a lone pass; `...` alone is no doc */
    make_pairs("class E(Exception):\n    \"\"\"Raised when it fails.\"\"\"\n"
               "def s(): \"\"\"Nothing here at all.\"\"\"\n"
               "def t(): ...\n"
               "class P:\n    \"\"\"A protocol with stubs.\"\"\"\n    pass  # for now\n",
               &o, &p);
    assert_int_equal(p.list.count, 0);
    assert_int_equal(p.counts.skipped[PSKIP_STUB], 3);
    assert_int_equal(p.counts.skipped[PSKIP_NO_DOC], 1);
    pairs_free(&p);
    /* a function inside a function is skipped as nested, not as undocumented */
    make_pairs("def outer():\n    \"\"\"The outer function here.\"\"\"\n"
               "    def inner():\n        \"\"\"The inner function here.\"\"\"\n        return 2\n"
               "    return inner\n",
               &o, &p);
    assert_int_equal(p.list.count, 1);
    assert_int_equal(p.counts.skipped[PSKIP_NESTED], 1);
    pairs_free(&p);
    buf_free(&f);
}

static void test_pairs_signature_and_summary(void **state)
{
    Buf b = { 0 }, s = { 0 };
    const char *sig = "( self ,\n   x : int = 1,   # one\n   y = ( 1 , ) ,\n"
                      "   z='a  #  b', \\\n   *args ,\n ) -> Dict[ str , int ] ";
    pairs_signature(sig, 0, strlen(sig), &b);
    assert_string_equal(b.buf,
                        "(self, x : int = 1, y = (1,), z='a  #  b', *args) -> Dict[str, int]");
    long words;
    const char *doc = "\n\n    Compute  the\tmean\n    of `x`:\n\n    More.\n";
    pairs_summary(doc, strlen(doc), 0, &s, &b, &words);
    assert_string_equal(b.buf, "Compute the mean of `x`.");
    assert_int_equal(words, 5);
    doc = "It\\'s \\\"quoted\\\" \\\\ here\\nand \\d kept";
    pairs_summary(doc, strlen(doc), 0, &s, &b, &words);
    assert_string_equal(b.buf, "It's \"quoted\" \\ here and \\d kept.");
    pairs_summary(doc, strlen(doc), 1, &s, &b, &words);
    assert_string_equal(b.buf, "It\\'s \\\"quoted\\\" \\\\ here\\nand \\d kept.");
    doc = "\n    Returns\n    -------\n    list\n";
    pairs_summary(doc, strlen(doc), 0, &s, &b, &words);
    assert_string_equal(b.buf, "");
    assert_int_equal(words, 0);
    doc = "Summary here!\nParameters\n----------\nx : int\n";
    pairs_summary(doc, strlen(doc), 0, &s, &b, &words);
    assert_string_equal(b.buf, "Summary here!");
    assert_int_equal(words, 2);
    buf_free(&b);
    buf_free(&s);
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
        cmocka_unit_test(test_quality_scans),
        cmocka_unit_test(test_quality_unit_deterministic),
        cmocka_unit_test(test_exact_fingerprint),
        cmocka_unit_test(test_near_dedup),
        cmocka_unit_test(test_minhash_reference),
        cmocka_unit_test(test_word_hashes),
        cmocka_unit_test(test_despace),
        cmocka_unit_test(test_pyscan_definitions),
        cmocka_unit_test(test_pyscan_strings_and_comments),
        cmocka_unit_test(test_pyscan_crlf_tabs_no_newline),
        cmocka_unit_test(test_pairs_records),
        cmocka_unit_test(test_pairs_limits_and_text),
        cmocka_unit_test(test_pairs_signature_and_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
