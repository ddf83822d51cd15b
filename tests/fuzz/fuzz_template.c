// SPDX-License-Identifier: MIT
/*
** fuzz_template.c: libFuzzer target for the instruction template file parser (lib/template.c).
**
** Input: a candidate template file. When template_parse accepts it, rendering must succeed
** with any field values and put the output's value in the response (a template file must hold
** {output}); an empty output must be refused with nothing appended. Field values carry a 0xff
** byte, which a template file (valid UTF-8) cannot hold, so where a value lands is seen
** exactly: the output in the response and never in the prompt, an absent input nowhere, no
** other field in the response; template_render_prompt gives the same prompt. When the parser
** refuses the file, the message names the file and a line.
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "template.h"
#include "fuzz.h"

/* Count of the marker m (3 bytes) in b. */
static size_t count(const Buf *b, const char *m)
{
    size_t k = 0;
    for (size_t i = 0; i + 3 <= b->len; i++) k += !memcmp(b->buf + i, m, 3);
    return k;
}

/* Render t with marked values (the input present or absent) and check where they land. */
static void check_render(const Template *t, int with_input)
{
    Str v[TPL_NFIELDS] = { { "\xffI}", 3 }, { "\xffN{", 3 }, { "\xffO{", 3 }, { "\xffS}", 3 } };
    if (!with_input) v[TPL_INPUT] = (Str){ NULL, 0 };
    Buf p = { 0 }, r = { 0 };
    char err[300];
    FUZZ_ASSERT(template_render(t, v, &p, &r, err, sizeof err) == 0);
    FUZZ_ASSERT(count(&r, "\xffO{") >= 1);                       /* the response holds the output */
    FUZZ_ASSERT(count(&p, "\xffO{") == 0);                       /* the prompt never does */
    FUZZ_ASSERT(with_input || count(&p, "\xffN{") == 0);         /* an absent input is empty */
    FUZZ_ASSERT(count(&r, "\xffI}") + count(&r, "\xffS}") == 0); /* only {output} there */
    /* the prompt alone renders the same prompt */
    Buf p2 = { 0 };
    FUZZ_ASSERT(template_render_prompt(t, v, &p2, err, sizeof err) == 0);
    FUZZ_ASSERT(p2.len == p.len && (!p.len || !memcmp(p.buf, p2.buf, p.len)));
    /* an empty output is refused and nothing is appended */
    v[TPL_OUTPUT] = (Str){ "", 0 };
    size_t pl = p.len, rl = r.len;
    FUZZ_ASSERT(template_render(t, v, &p, &r, err, sizeof err) == -1);
    FUZZ_ASSERT(p.len == pl && r.len == rl);
    buf_free(&p);
    buf_free(&p2);
    buf_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Template t;
    char err[400] = "";
    if (template_parse(&t, "fuzz.tpl", (const char *)data, size, err, sizeof err) == 0) {
        FUZZ_ASSERT(t.prompt && t.prompt_no_input && t.response);
        FUZZ_ASSERT(template_uses(&t, TPL_OUTPUT));
        check_render(&t, 1);
        check_render(&t, 0);
        template_free(&t);
    } else {
        FUZZ_ASSERT(!strncmp(err, "fuzz.tpl: line ", 15));
        FUZZ_ASSERT(t.prompt == NULL && t.response == NULL);
    }
    return 0;
}

#ifdef FUZZ_SEEDS
/* Seeds: Alpaca's prompts as a template file, and small files using every feature. */
int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    const char *d = argv[1];
    seed_str(d, "alpaca",
             "# Stanford Alpaca\n[prompt]\nBelow is an instruction that describes a task, paired "
             "with an input that provides further context. Write a response that appropriately "
             "completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n"
             "### Response:\n\n[prompt_no_input]\nBelow is an instruction that describes a task. "
             "Write a response that appropriately completes the request.\n\n### Instruction:\n"
             "{instruction}\n\n### Response:\n\n[response]\n{output}\n");
    seed_str(d, "system",
             "[prompt]\r\n<|system|>{system}\r\n<|user|>{instruction} {input}\r\n"
             "[response]  \r\n{{{output}}}");
    seed_str(d, "minimal", "[prompt]\n[response]\n{output}");
    seed_str(d, "broken", "[prompt]\n{instruction\n}\n[response]\n{outptu}\n");
    return 0;
}
#endif
