// SPDX-License-Identifier: MIT
/*
** test_lib.c: unit tests of the shared library (lib/): UTF-8, sizes, JSON, records, the token
** stream and the line reader.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "io.h"
#include "json.h"
#include "record.h"
#include "hash.h"
#include "tokstream.h"

/* ---- util ---------------------------------------------------------------------------------- */

static void test_utf8_valid(void **state)
{
    (void)state;
    const char *ok = "plain ascii, caf\xc3\xa9, \xe2\x82\xac, \xf0\x9f\x98\x80";
    assert_int_equal(utf8_valid_prefix((const unsigned char *)ok, strlen(ok)), strlen(ok));
    /* overlong '/', surrogate, > U+10FFFF, lone continuation, truncated sequence */
    const char *bad[] = { "ab\xc0\xaf", "ab\xed\xa0\x80", "ab\xf4\x90\x80\x80", "ab\x80",
                          "ab\xe2\x82" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(utf8_valid_prefix((const unsigned char *)bad[i], strlen(bad[i])), 2);
}

static void test_utf8_repair(void **state)
{
    (void)state;
    Buf b = { 0 };
    const char *in = "a\xffz\xe2\x82";
    size_t reps = utf8_repair((const unsigned char *)in, strlen(in), &b);
    assert_int_equal(reps, 2);
    assert_string_equal(b.buf, "a\xef\xbf\xbdz\xef\xbf\xbd");
    assert_int_equal(utf8_valid_prefix((unsigned char *)b.buf, b.len), b.len);
    buf_free(&b);
}

static void test_parse_size(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(parse_size("123", &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(parse_size("64k", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(parse_size("10MiB", &v), 0);
    assert_int_equal(v, 10u << 20);
    assert_int_equal(parse_size("2G", &v), 0);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(parse_size("-1", &v), -1);
    assert_int_equal(parse_size("12x", &v), -1);
    assert_int_equal(parse_size("", &v), -1);
}

static void test_strv_split(void **state)
{
    (void)state;
    int n;
    char **v = strv_split(" numpy, pandas,,sklearn ", ',', &n);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "numpy");
    assert_string_equal(v[1], "pandas");
    assert_string_equal(v[2], "sklearn");
    assert_null(v[3]);
    strv_free(v);
}

/* ---- json ---------------------------------------------------------------------------------- */

static void test_json_object(void **state)
{
    (void)state;
    JsonObj o = { 0 };
    const char *line =
        "{\"a\": 1, \"b\":\"x\\ny\",\"c\":[1,{\"d\":null}],\"e\":true, \"f\":-2.5e3}";
    assert_int_equal(json_parse_object(&o, line, strlen(line)), 0);
    assert_int_equal(o.n, 5);
    const JsonField *b = json_get(&o, "b");
    assert_non_null(b);
    assert_int_equal(b->type, JSON_STRING);
    assert_true(b->escaped);
    Buf d = { 0 };
    json_decode_string(b->raw, b->rawlen, &d);
    assert_string_equal(d.buf, "x\ny");
    const JsonField *c = json_get(&o, "c");
    assert_int_equal(c->type, JSON_ARRAY);
    assert_int_equal(c->rawlen, strlen("[1,{\"d\":null}]"));
    int64_t a;
    assert_int_equal(json_get_int(&o, "a", &a), 0);
    assert_int_equal(a, 1);
    assert_null(json_get(&o, "zz"));
    buf_free(&d);
    json_obj_free(&o);
}

static void test_json_malformed(void **state)
{
    (void)state;
    struct {
        const char *s;
        size_t pos;
    } cases[] = {
        { "{\"a\":1", 6 },         /* unterminated object */
        { "{\"a\":\"x}", 8 },      /* unterminated string: reported at the end */
        { "{\"a\":01}", 6 },       /* leading zero: stops after 0 */
        { "{\"a\":tru}", 5 },      /* bad literal */
        { "[1,2]", 0 },            /* not an object */
        { "{\"a\":1} x", 8 },      /* trailing text */
        { "{\"a\":\"\\q\"}", 6 },  /* bad escape */
        { "{\"a\":\"\x01\"}", 6 }, /* control character */
        { "{\"a\":\"\xff\"}", 6 }, /* invalid UTF-8 */
        { "{a:1}", 1 },            /* unquoted key */
    };
    JsonObj o = { 0 };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = json_parse_object(&o, cases[i].s, strlen(cases[i].s));
        if (rc != -1) fail_msg("case %zu parsed: %s", i, cases[i].s);
        if (o.err_pos != cases[i].pos)
            fail_msg("case %zu (%s): error at %zu, want %zu (%s)", i, cases[i].s, o.err_pos,
                     cases[i].pos, o.err);
        assert_true(o.err[0] != 0);
    }
    json_obj_free(&o);
}

static void test_json_deep_nesting(void **state)
{
    (void)state;
    Buf b = { 0 };
    buf_adds(&b, "{\"a\":");
    for (int i = 0; i < 100000; i++) buf_addc(&b, '[');
    JsonObj o = { 0 };
    assert_int_equal(json_parse_object(&o, b.buf, b.len), -1);
    assert_string_equal(o.err, "nesting too deep");
    json_obj_free(&o);
    buf_free(&b);
}

static void test_json_surrogates(void **state)
{
    (void)state;
    Buf d = { 0 };
    const char *pair = "\\ud83d\\ude00"; /* U+1F600 */
    json_decode_string(pair, strlen(pair), &d);
    assert_string_equal(d.buf, "\xf0\x9f\x98\x80");
    buf_reset(&d);
    const char *lone = "a\\ud83db"; /* lone high surrogate → U+FFFD */
    json_decode_string(lone, strlen(lone), &d);
    assert_string_equal(d.buf,
                        "a\xef\xbf\xbd"
                        "b");
    buf_free(&d);
}

/* Every escape form, at every alignment around the decoder's 16-byte blocks and its tail. */
static void test_json_decode_alignments(void **state)
{
    (void)state;
    const char *raw_mid = "\\u00e9\\/\\\\\\\"\\n\\t\\ud83d\\ude00\\u0041\\r\\b\\f\\ud800x";
    const char *dec_mid = "\xc3\xa9/\\\"\n\t\xf0\x9f\x98\x80"
                          "A\r\b\f\xef\xbf\xbdx";
    for (size_t pre = 0; pre < 40; pre++)
        for (size_t post = 0; post < 20; post++) {
            char raw[160], want[160];
            memset(raw, 'a', pre);
            strcpy(raw + pre, raw_mid);
            size_t rn = strlen(raw);
            memset(raw + rn, 'z', post);
            raw[rn + post] = 0;
            memset(want, 'a', pre);
            strcpy(want + pre, dec_mid);
            size_t wn = strlen(want);
            memset(want + wn, 'z', post);
            want[wn + post] = 0;
            Buf d = { 0 };
            buf_add(&d, "keep", 4); /* decoding appends */
            json_decode_string(raw, strlen(raw), &d);
            assert_int_equal(d.len, 4 + strlen(want));
            assert_memory_equal(d.buf, "keep", 4);
            assert_string_equal(d.buf + 4, want);
            buf_free(&d);
        }
}

/* Parsing with a decode buffer (one pass) against parsing then json_decode_string: the same
** verdict, message and error position on random lines of string pieces (escapes, truncated
** and bad escapes, surrogates, UTF-8, bad bytes, runs across 16-byte blocks), and on success
** the same decoded values. */
static void test_json_decode_while_parsing(void **state)
{
    (void)state;
    static const char *piece[] = { "\\n",
                                   "\\\"",
                                   "\\\\",
                                   "\\/",
                                   "\\u00e9",
                                   "\\ud83d\\ude00",
                                   "\\ud83d",
                                   "\\ude00",
                                   "\\u12",
                                   "\\uzzzz",
                                   "\\ud83d\\uzz00",
                                   "\\q",
                                   "\\",
                                   "\"",
                                   "\xc3\xa9",
                                   "\xe2\x82\xac",
                                   "\xff",
                                   "\xc3",
                                   "\x01",
                                   "\t",
                                   "abc",
                                   "xxxxxxxxxxxxxxxxxxxxxxx",
                                   "'",
                                   "}" };
    uint64_t st = 7;
    for (int round = 0; round < 20000; round++) {
        char line[512];
        size_t n = (size_t)snprintf(line, sizeof line, "{\"k\":\"");
        int np = (int)((st = st * 6364136223846793005ull + 1442695040888963407ull) >> 60);
        for (int i = 0; i < np; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            const char *pc = piece[(st >> 33) % (sizeof piece / sizeof *piece)];
            /* mostly well-formed pieces: the bad ones end a line early */
            if ((st >> 20) % 4 &&
                (pc[0] == '"' || !strcmp(pc, "\\") || !strcmp(pc, "\\q") || !strcmp(pc, "\\u12") ||
                 !strcmp(pc, "\\uzzzz") || pc[0] == 1 || (unsigned char)pc[0] == 0xff ||
                 !strcmp(pc, "\xc3") || !strcmp(pc, "\t") || !strcmp(pc, "\\ud83d\\uzz00")))
                pc = "ok";
            n += (size_t)snprintf(line + n, sizeof line - n, "%s", pc);
        }
        if ((st >> 40) % 8) n += (size_t)snprintf(line + n, sizeof line - n, "\",\"n\":1}");
        JsonObj a = { 0 }, b = { 0 };
        Buf dec = { 0 };
        b.decode = &dec;
        int ra = json_parse_object(&a, line, n), rb = json_parse_object(&b, line, n);
        assert_int_equal(ra, rb);
        if (ra) {
            assert_string_equal(a.err, b.err);
            assert_int_equal(a.err_pos, b.err_pos);
        } else {
            Buf want = { 0 };
            json_decode_string(a.f[0].raw, a.f[0].rawlen, &want);
            assert_int_equal(b.f[0].dec_len, want.len);
            assert_memory_equal(dec.buf + b.f[0].dec_off, want.buf, want.len);
            assert_int_equal(dec.buf[b.f[0].dec_off + want.len], 0);
            assert_int_equal(a.f[0].escaped, b.f[0].escaped);
            assert_int_equal(a.f[0].rawlen, b.f[0].rawlen);
            buf_free(&want);
        }
        json_obj_free(&a);
        json_obj_free(&b);
        buf_free(&dec);
    }
}

static void test_json_escape_roundtrip(void **state)
{
    (void)state;
    /* every byte value that is valid alone in UTF-8, at every alignment around 16-byte blocks */
    char in[300];
    size_t n = 0;
    for (int c = 1; c < 128; c++) in[n++] = (char)c;
    memcpy(in + n, "\xc3\xa9\xe2\x82\xac", 5);
    n += 5;
    for (size_t off = 0; off < 40; off++) {
        Buf e = { 0 }, d = { 0 };
        json_escape(&e, in + off, n - off);
        char *line = NULL;
        size_t ll = (size_t)asprintf(&line, "{\"k\":%s}", e.buf);
        JsonObj o = { 0 };
        assert_int_equal(json_parse_object(&o, line, ll), 0);
        const JsonField *f = json_get(&o, "k");
        json_decode_string(f->raw, f->rawlen, &d);
        assert_int_equal(d.len, n - off);
        assert_memory_equal(d.buf, in + off, n - off);
        json_obj_free(&o);
        free(line);
        buf_free(&e);
        buf_free(&d);
    }
}

/* The plain escaper the fast one must agree with. */
static void escape_ref(Buf *b, const unsigned char *s, size_t n)
{
    buf_addc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        switch (c) {
        case '"': buf_adds(b, "\\\""); break;
        case '\\': buf_adds(b, "\\\\"); break;
        case '\n': buf_adds(b, "\\n"); break;
        case '\t': buf_adds(b, "\\t"); break;
        case '\r': buf_adds(b, "\\r"); break;
        case '\b': buf_adds(b, "\\b"); break;
        case '\f': buf_adds(b, "\\f"); break;
        default:
            if (c < 0x20)
                buf_addf(b, "\\u%04x", c);
            else
                buf_addc(b, (char)c);
        }
    }
    buf_addc(b, '"');
}

/* Random strings of quotes, backslashes, control bytes, UTF-8 and ASCII, of every length
** around the 16-byte block, escape as the plain escaper does. */
static void test_json_escape_random(void **state)
{
    (void)state;
    const char pool[] = "a\"\\\n\t\r\b\f\001\037 xyz\303\251\342\202\254/";
    uint64_t seed = 42;
    char src[200];
    Buf ref = { 0 }, got = { 0 };
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)(splitmix64(&seed) % 70);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = splitmix64(&seed);
            src[i] = (r & 1) ? (char)(r >> 8) : pool[(r >> 8) % (sizeof pool - 1)];
        }
        buf_reset(&ref);
        buf_reset(&got);
        escape_ref(&ref, (const unsigned char *)src, n);
        json_escape(&got, src, n);
        assert_int_equal(got.len, ref.len);
        assert_memory_equal(got.buf, ref.buf, ref.len);
    }
    buf_free(&ref);
    buf_free(&got);
}

/* An anonymous temporary file (already unlinked), open for reading and writing. */
static int temp_fd(void)
{
    char name[] = "/tmp/cm-test-lib-XXXXXX";
    int fd = mkstemp(name);
    assert_true(fd >= 0);
    unlink(name);
    return fd;
}

/* ---- record -------------------------------------------------------------------------------- */

static char *slurp_fd(int fd, size_t *n)
{
    Buf b = { 0 };
    char tmp[4096];
    ssize_t k;
    lseek(fd, 0, SEEK_SET);
    while ((k = read(fd, tmp, sizeof tmp)) > 0) buf_add(&b, tmp, (size_t)k);
    return buf_detach(&b, n);
}

static void test_record_roundtrip(void **state)
{
    (void)state;
    const char *line = "{\"repo_name\":\"a/b\",\"path\":\"x.py\",\"copies\":\"3\",\"content\":"
                       "\"import numpy\\n\",\"size\":13,\"license\":\"mit\",\"imports\":[\"old\"]}";
    Record r;
    record_init(&r);
    assert_int_equal(record_parse(&r, line, strlen(line)), 0);
    assert_string_equal(r.repo_name.s, "a/b");
    assert_string_equal(r.path.s, "x.py");
    assert_string_equal(r.content.s, "import numpy\n");
    assert_string_equal(r.license.s, "mit");
    assert_int_equal(r.size, 13);

    int fd = temp_fd();
    Out o;
    out_init(&o, fd, "tmp", 64); /* a tiny buffer exercises the flush paths */
    const char *extra = "\"imports\":[\"numpy\"]";
    record_write(&o, &r, extra, strlen(extra));
    out_done(&o);
    size_t n;
    char *got = slurp_fd(fd, &n);
    close(fd);
    assert_string_equal(
        got,
        "{\"repo_name\":\"a/b\",\"path\":\"x.py\",\"size\":13,\"license\":\"mit\","
        "\"content\":\"import numpy\\n\",\"imports\":[\"numpy\"],\"copies\":\"3\"}\n");
    free(got);
    record_free(&r);
}

/* record_write_parts through a big buffer (one-shot path) and a tiny one (field by field)
** gives the same bytes. */
static void test_record_write_parts_paths(void **state)
{
    (void)state;
    static char big[70000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = "ab\n\"c\001"[i % 6];
    char *outs[2];
    size_t lens[2];
    for (int k = 0; k < 2; k++) {
        int fd = temp_fd();
        Out o;
        out_init(&o, fd, "tmp", k ? 4096 : (1u << 20));
        record_write_parts(&o, "r\"p", 3, "a/b.py", 6, big, sizeof big, "mit", "\"x\":1", 5);
        record_write_parts(&o, NULL, 0, NULL, 0, "", 0, NULL, NULL, 0);
        out_done(&o);
        outs[k] = slurp_fd(fd, &lens[k]);
        close(fd);
    }
    assert_int_equal(lens[0], lens[1]);
    assert_memory_equal(outs[0], outs[1], lens[0]);
    assert_non_null(
        strstr(outs[0], "{\"repo_name\":\"\",\"path\":\"\",\"size\":0,\"content\":\"\"}\n"));
    assert_memory_equal(
        outs[0],
        "{\"repo_name\":\"r\\\"p\",\"path\":\"a/b.py\",\"size\":70000,\"license\":\"mit\",", 61);
    free(outs[0]);
    free(outs[1]);
}

static void test_record_errors(void **state)
{
    (void)state;
    Record r;
    record_init(&r);
    const char *nocontent = "{\"path\":\"x\"}";
    assert_int_equal(record_parse(&r, nocontent, strlen(nocontent)), -1);
    assert_string_equal(r.err, "missing field 'content'");
    const char *numcontent = "{\"content\":3}";
    assert_int_equal(record_parse(&r, numcontent, strlen(numcontent)), -1);
    assert_string_equal(r.err, "field 'content' is not a string");
    const char *badsize = "{\"content\":\"\",\"size\":[1]}";
    assert_int_equal(record_parse(&r, badsize, strlen(badsize)), -1);
    record_free(&r);
}

/* ---- line reader --------------------------------------------------------------------------- */

static int pipe_with(const char *data, size_t n)
{
    int fd = temp_fd();
    assert_int_equal(write_all(fd, data, n), 0);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static void test_line_reader(void **state)
{
    (void)state;
    const char *data = "one\n\nthree\nfourfourfourfour\nlast";
    int fd = pipe_with(data, strlen(data));
    LineReader r;
    lr_init(&r, fd, "mem", 8);
    char *l;
    size_t n;
    assert_int_equal(lr_next(&r, &l, &n), 1);
    assert_int_equal(n, 3);
    assert_memory_equal(l, "one", 3);
    assert_int_equal(lr_next(&r, &l, &n), 1);
    assert_int_equal(n, 0);
    assert_int_equal(lr_next(&r, &l, &n), 1);
    assert_int_equal(r.lineno, 3);
    assert_int_equal(r.offset, 5);
    assert_int_equal(lr_next(&r, &l, &n), -1); /* 16 bytes > max 8 */
    assert_int_equal(r.lineno, 4);
    assert_int_equal(lr_next(&r, &l, &n), 1);
    assert_int_equal(n, 4);
    assert_memory_equal(l, "last", 4);
    assert_int_equal(r.lineno, 5);
    assert_int_equal(lr_next(&r, &l, &n), 0);
    lr_free(&r);
    close(fd);
}

/* ---- token stream -------------------------------------------------------------------------- */

static void write_stream(int fd, int with_end, int corrupt)
{
    Out o;
    out_init(&o, fd, "tmp", 0);
    const char *tok = "{\"model\":{}}";
    ts_write_header(&o, 1000, 999, hash64(tok, strlen(tok)), tok, strlen(tok));
    uint32_t ids[3][4] = { { 5, 6, 7, 999 }, { 1, 999 }, { 42, 43, 999 } };
    uint32_t lens[3] = { 4, 2, 3 };
    const char *meta[3] = { "{\"path\":\"a\"}", "{\"path\":\"bb\"}", "{\"path\":\"c\"} " };
    for (int i = 0; i < 3; i++)
        ts_write_doc(&o, meta[i], (uint32_t)strlen(meta[i]), ids[i], lens[i]);
    if (with_end) ts_write_end(&o, 3, 9);
    out_flush(&o);
    if (corrupt) {
        /* flip one byte of the second document's ids */
        off_t pos = 40 + (off_t)strlen(tok) + 16 + 12 + 16 + 16 + 13 + 2;
        char c;
        assert_int_equal(pread(fd, &c, 1, pos), 1);
        c ^= 0x40;
        assert_int_equal(pwrite(fd, &c, 1, pos), 1);
    }
    out_done(&o);
    lseek(fd, 0, SEEK_SET);
}

static void test_tokstream_roundtrip(void **state)
{
    (void)state;
    int fd = temp_fd();
    write_stream(fd, 1, 0);
    TsReader r;
    assert_int_equal(ts_open(&r, fd, "mem"), 0);
    assert_int_equal(r.hdr.vocab_size, 1000);
    assert_int_equal(r.hdr.eot_id, 999);
    assert_string_equal(r.hdr.json, "{\"model\":{}}");
    TsDoc d;
    assert_int_equal(ts_next(&r, &d), 1);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.ids[3], 999);
    assert_int_equal(ts_next(&r, &d), 1);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.ids[0], 1);
    assert_memory_equal(d.meta, "{\"path\":\"bb\"}", d.meta_len);
    assert_int_equal(ts_next(&r, &d), 1);
    assert_int_equal(d.ids[1], 43);
    assert_int_equal(ts_next(&r, &d), 0);
    ts_close(&r);
    close(fd);
}

static void test_tokstream_truncated(void **state)
{
    (void)state;
    int fd = temp_fd();
    write_stream(fd, 0, 0);
    TsReader r;
    assert_int_equal(ts_open(&r, fd, "mem"), 0);
    TsDoc d;
    for (int i = 0; i < 3; i++) assert_int_equal(ts_next(&r, &d), 1);
    assert_int_equal(ts_next(&r, &d), -1);
    assert_non_null(strstr(r.err, "cut short"));
    ts_close(&r);
    close(fd);
}

static void test_tokstream_corrupt(void **state)
{
    (void)state;
    int fd = temp_fd();
    write_stream(fd, 1, 1);
    TsReader r;
    assert_int_equal(ts_open(&r, fd, "mem"), 0);
    TsDoc d;
    assert_int_equal(ts_next(&r, &d), 1);
    assert_int_equal(ts_next(&r, &d), -1);
    assert_non_null(strstr(r.err, "(document 2)"));
    assert_non_null(strstr(r.err, "checksum"));
    ts_close(&r);
    close(fd);
}

static void test_tokstream_not_a_stream(void **state)
{
    (void)state;
    const char *junk = "{\"content\":\"this is JSONL, not tokens\"}\n{\"content\":\"x\"}\n";
    int fd = pipe_with(junk, strlen(junk));
    TsReader r;
    assert_int_equal(ts_open(&r, fd, "stdin"), -1);
    assert_non_null(strstr(r.err, "not a codemill token stream"));
    ts_close(&r);
    close(fd);
}

int main(void)
{
    cm_init("test_lib");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_repair),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_strv_split),
        cmocka_unit_test(test_json_object),
        cmocka_unit_test(test_json_malformed),
        cmocka_unit_test(test_json_deep_nesting),
        cmocka_unit_test(test_json_surrogates),
        cmocka_unit_test(test_json_decode_alignments),
        cmocka_unit_test(test_json_decode_while_parsing),
        cmocka_unit_test(test_json_escape_roundtrip),
        cmocka_unit_test(test_record_roundtrip),
        cmocka_unit_test(test_json_escape_random),
        cmocka_unit_test(test_record_write_parts_paths),
        cmocka_unit_test(test_record_errors),
        cmocka_unit_test(test_line_reader),
        cmocka_unit_test(test_tokstream_roundtrip),
        cmocka_unit_test(test_tokstream_truncated),
        cmocka_unit_test(test_tokstream_corrupt),
        cmocka_unit_test(test_tokstream_not_a_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
