// SPDX-License-Identifier: MIT
/*
** test_template.c: unit tests of the instruction templates (lib/template.c): the built-in
** alpaca prompts, the template file format (sections, escapes, line breaks) and the message of
** each kind of broken file, rendering and its refusals.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "util.h"
#include "template.h"

static Str str(const char *s)
{
    Str v = { s, s ? strlen(s) : 0 };
    return v;
}

/* Render t with the given fields into prompt/response strings (static buffers); rc returned. */
static int render(const Template *t, const char *ins, const char *inp, const char *out,
                  const char *sys, Buf *p, Buf *r, char *err)
{
    Str v[TPL_NFIELDS];
    v[TPL_INSTRUCTION] = str(ins);
    v[TPL_INPUT] = str(inp);
    v[TPL_OUTPUT] = str(out);
    v[TPL_SYSTEM] = str(sys);
    buf_reset(p);
    buf_reset(r);
    return template_render(t, v, p, r, err, 300);
}

static void test_alpaca(void **state)
{
    (void)state;
    Template t;
    char err[300];
    Buf p = { 0 }, r = { 0 };
    assert_int_equal(template_load(&t, "alpaca", err, sizeof err), 0);
    assert_int_equal(render(&t, "Add.", "1 2", "3", NULL, &p, &r, err), 0);
    assert_string_equal(p.buf,
                        "Below is an instruction that describes a task, paired with an input that "
                        "provides further context. Write a response that appropriately completes "
                        "the request.\n\n### Instruction:\nAdd.\n\n### Input:\n1 2\n\n### "
                        "Response:\n");
    assert_string_equal(r.buf, "3");
    /* an absent and an empty input both take the no-input prompt */
    const char *no_input = "Below is an instruction that describes a task. Write a response that "
                           "appropriately completes the request.\n\n### Instruction:\nAdd."
                           "\n\n### Response:\n";
    assert_int_equal(render(&t, "Add.", NULL, "3", NULL, &p, &r, err), 0);
    assert_string_equal(p.buf, no_input);
    assert_int_equal(render(&t, "Add.", "", "3", NULL, &p, &r, err), 0);
    assert_string_equal(p.buf, no_input);
    /* the prompt alone, for cm-train complete: no output needed */
    Str v[TPL_NFIELDS] = { str("Add."), str(NULL), str(NULL), str(NULL) };
    buf_reset(&p);
    assert_int_equal(template_render_prompt(&t, v, &p, err, sizeof err), 0);
    assert_string_equal(p.buf, no_input);
    template_free(&t);
    buf_free(&p);
    buf_free(&r);
}

static void test_render_refusals(void **state)
{
    (void)state;
    Template t;
    char err[300];
    Buf p = { 0 }, r = { 0 };
    assert_int_equal(template_load(&t, "alpaca", err, sizeof err), 0);
    assert_int_equal(render(&t, NULL, "x", "3", NULL, &p, &r, err), -1);
    assert_non_null(strstr(err, "instruction"));
    assert_int_equal(render(&t, "Add.", "x", NULL, NULL, &p, &r, err), -1);
    assert_non_null(strstr(err, "no output"));
    buf_reset(&p);
    buf_add(&p, "kept", 4);
    Str v[TPL_NFIELDS] = { str("Add."), str(NULL), str(""), str(NULL) };
    assert_int_equal(template_render(&t, v, &p, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "empty"));
    assert_string_equal(p.buf, "kept"); /* nothing half-rendered appended */
    template_free(&t);
    buf_free(&p);
    buf_free(&r);
}

static void test_file_format(void **state)
{
    (void)state;
    Template t;
    char err[300];
    Buf p = { 0 }, r = { 0 };
    const char *file = "# a comment\n\n[prompt]\r\n<{system}> {{literal}} {instruction}\n"
                       "in: {input}\n\n[prompt_no_input]  \n{instruction}:\n\n[response]\n"
                       "{output}}}\n";
    assert_int_equal(template_parse(&t, "my.tpl", file, strlen(file), err, sizeof err), 0);
    assert_string_equal(t.name, "my.tpl");
    assert_int_equal(render(&t, "Do", "x", "y", "S", &p, &r, err), 0);
    assert_string_equal(p.buf, "<S> {literal} Do\nin: x\n");
    assert_string_equal(r.buf, "y}");
    assert_int_equal(render(&t, "Do", NULL, "y", NULL, &p, &r, err), 0);
    assert_string_equal(p.buf, "Do:\n");
    template_free(&t);
    /* without [prompt_no_input] the prompt serves both; no final newline is fine */
    const char *f2 = "[prompt]\nQ: {instruction} {input}\n[response]\nA: {output}";
    assert_int_equal(template_parse(&t, "f2", f2, strlen(f2), err, sizeof err), 0);
    assert_int_equal(render(&t, "q", NULL, "a", NULL, &p, &r, err), 0);
    assert_string_equal(p.buf, "Q: q ");
    assert_string_equal(r.buf, "A: a");
    template_free(&t);
    buf_free(&p);
    buf_free(&r);
}

/* Each broken file gives a message with the file name, the line and the cause. */
static void test_file_broken(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        { "[prompt]\n{instruction}\n{question}\n[response]\n{output}\n",
          "bad.tpl: line 3: unknown placeholder {question}" },
        { "[prompt]\n{instruction\n[response]\n{output}\n", "bad.tpl: line 2: unterminated '{'" },
        { "[prompt]\nx }\n[response]\n{output}\n", "bad.tpl: line 2: a single '}'" },
        { "[prompt]\n{instruction}\n", "bad.tpl: line 3: no [response] section" },
        { "[response]\n{output}\n", "bad.tpl: line 3: no [prompt] section" },
        { "", "bad.tpl: line 1: no [prompt] section" },
        { "[prompt]\n{instruction}\n[response]\nnothing\n",
          "bad.tpl: line 3: [response] has no {output}" },
        { "[prompt]\n{output}\n[response]\n{output}\n", "bad.tpl: line 2: {output} cannot stand" },
        { "[prompt]\na\n[response]\n{instruction}{output}\n",
          "bad.tpl: line 4: {instruction} cannot stand" },
        { "hello\n[prompt]\na\n[response]\n{output}\n", "bad.tpl: line 1: text before" },
        { "[prompt]\na\n[promt]\n[response]\n{output}\n", "bad.tpl: line 3: unknown section" },
        { "[prompt]\na\n[prompt]\n[response]\n{output}\n", "bad.tpl: line 3: a second [prompt]" },
        { "[prompt]\na\n\xff\n[response]\n{output}\n", "bad.tpl: line 3: not valid UTF-8" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Template t;
        char err[300] = "";
        int rc = template_parse(&t, "bad.tpl", cases[i].text, strlen(cases[i].text), err,
                                sizeof err);
        if (rc != -1 || strncmp(err, cases[i].want, strlen(cases[i].want)))
            fail_msg("case %zu: rc %d, message '%s', want '%s...'", i, rc, err, cases[i].want);
        assert_null(t.prompt); /* nothing left to free */
    }
    Template t;
    char err[300] = "";
    const char nul[] = "[prompt]\na\0b\n[response]\n{output}\n";
    assert_int_equal(template_parse(&t, "bad.tpl", nul, sizeof nul - 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 2: a NUL byte"));
}

static void test_open_status(void **state)
{
    (void)state;
    Template t;
    char err[300];
    char path[] = "/tmp/cm-test-template-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *good = "[prompt]\n{instruction}\n[response]\n{output}\n";
    assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
    close(fd);
    assert_int_equal(template_open(&t, path, err, sizeof err), CM_OK);
    assert_string_equal(t.name, path);
    template_free(&t);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "[prompt]\n{x}\n", 13), 13);
    close(fd);
    assert_int_equal(template_open(&t, path, err, sizeof err), CM_EFORMAT);
    assert_non_null(strstr(err, path));
    assert_int_equal(template_load(&t, path, err, sizeof err), -1);
    unlink(path);
    assert_int_equal(template_open(&t, path, err, sizeof err), CM_EIO);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(template_open(&t, "no-such-builtin", err, sizeof err), CM_EUSAGE);
    assert_non_null(strstr(err, "alpaca"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alpaca),      cmocka_unit_test(test_render_refusals),
        cmocka_unit_test(test_file_format), cmocka_unit_test(test_file_broken),
        cmocka_unit_test(test_open_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
