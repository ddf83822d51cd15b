// SPDX-License-Identifier: MIT
/*
** fuzz_pairs.c: libFuzzer target for cm-filter --pairs: the Python definition scanner
** (filter/pyscan.h) and the instruction records made from its finds (filter/pairs.h).
** fuzz-needs: filter
**
** Input: byte 0 picks the options (bit 0 --pairs-private, bits 1-2 --pairs-min-words 0..3,
** bit 3 a --pairs-max-bytes of 64); the rest, made valid UTF-8 as a record's content is, is
** the file. Properties: every definition lies inside the text in order, inside its parent,
** its name and docstring inside it, its line number that of its first byte; every record is
** one valid JSON line with input "", an output ending in '\n' no longer than the limit whose
** XXH3-64 is the record's, an instruction starting "Write "; definitions = records + skipped;
** a second run gives the same bytes.
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "hash.h"
#include "json.h"
#include "record.h"
#include "util.h"
#include "filter/pairs.h"
#include "filter/pyscan.h"
#include "fuzz.h"

/* The scanner's finds in t[0..n) hold together. */
static void check_defs(const PyScan *s, const char *t, size_t n)
{
    for (size_t i = 0; i < s->count; i++) {
        const PyDef *d = &s->defs[i];
        FUZZ_ASSERT(d->start <= d->head && d->head < d->end && d->end <= n);
        FUZZ_ASSERT(d->name_off > d->head && d->name_off + d->name_len <= d->end);
        FUZZ_ASSERT(d->sig_off == d->name_off + d->name_len && d->sig_off + d->sig_len <= n);
        if (d->doc_off != PY_NONE) FUZZ_ASSERT(d->doc_off + d->doc_len <= d->end);
        if (i) FUZZ_ASSERT(d->start > s->defs[i - 1].start);
        uint64_t line = 1;
        for (size_t k = 0; k < d->start; k++) line += t[k] == '\n';
        FUZZ_ASSERT(d->line == line);
        FUZZ_ASSERT(d->parent < (long)i);
        if (d->parent >= 0) {
            const PyDef *p = &s->defs[d->parent];
            FUZZ_ASSERT(p->head < d->start && d->end <= p->end && p->indent < d->indent);
        } else {
            FUZZ_ASSERT(!d->nested);
        }
    }
}

/* Every record of text/list is a valid line with the fields and limits of pairs.h. */
static void check_records(const Buf *text, const PairList *list, const PairsOpts *o)
{
    Buf v = { 0 };
    JsonObj obj = { 0 };
    size_t at = 0;
    for (size_t i = 0; i < list->count; i++) {
        const PairLine *l = &list->v[i];
        FUZZ_ASSERT(l->off == at && l->len > 1 && text->buf[l->off + l->len - 1] == '\n');
        at += l->len;
        FUZZ_ASSERT(json_parse_object(&obj, text->buf + l->off, l->len - 1) == 0);
        const JsonField *in = json_get(&obj, "input");
        const JsonField *out = json_get(&obj, "output");
        const JsonField *ins = json_get(&obj, "instruction");
        FUZZ_ASSERT(in && in->type == JSON_STRING && in->rawlen == 0);
        FUZZ_ASSERT(ins && ins->type == JSON_STRING && ins->rawlen > 6);
        FUZZ_ASSERT(!memcmp(ins->raw, "Write ", 6));
        FUZZ_ASSERT(out && out->type == JSON_STRING);
        buf_reset(&v);
        json_decode_string(out->raw, out->rawlen, &v);
        FUZZ_ASSERT(v.len > 0 && v.len <= o->max_bytes && v.buf[v.len - 1] == '\n');
        FUZZ_ASSERT(hash64(v.buf, v.len) == l->hash);
        FUZZ_ASSERT(json_get(&obj, "name") && json_get(&obj, "line"));
    }
    FUZZ_ASSERT(at == text->len);
    json_obj_free(&obj);
    buf_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    PairsOpts o;
    pairs_opts_default(&o);
    o.private_names = data[0] & 1;
    o.min_words = (data[0] >> 1) & 3;
    if (data[0] & 8) o.max_bytes = 64;
    Buf content = { 0 };
    utf8_repair(data + 1, size - 1, &content);
    const char *t = content.buf ? content.buf : "";
    PairsMaker m;
    pairs_maker_init(&m, &o);
    pyscan_run(&m.scan, t, content.len);
    check_defs(&m.scan, t, content.len);

    Record r;
    record_init(&r);
    r.repo_name = (Str){ "r", 1 };
    r.path = (Str){ "p.py", 4 };
    r.content = (Str){ t, content.len };
    Buf text[2] = { { 0 }, { 0 } };
    PairList list[2] = { { 0 }, { 0 } };
    PairCounts counts[2];
    for (int k = 0; k < 2; k++) pairs_make(&m, &r, "", 0, &text[k], &list[k], &counts[k]);
    check_records(&text[0], &list[0], &o);
    uint64_t skipped = 0;
    for (int k = 0; k < PSKIP_COUNT; k++) skipped += counts[0].skipped[k];
    FUZZ_ASSERT(counts[0].defs == list[0].count + skipped);
    FUZZ_ASSERT(text[0].len == text[1].len && list[0].count == list[1].count);
    FUZZ_ASSERT(!text[0].len || !memcmp(text[0].buf, text[1].buf, text[0].len));
    for (int k = 0; k < 2; k++) {
        buf_free(&text[k]);
        pair_list_free(&list[k]);
    }
    record_free(&r);
    pairs_maker_free(&m);
    buf_free(&content);
    return 0;
}

#ifdef FUZZ_SEEDS
int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    const char *d = argv[1];
    seed_str(d, "functions",
             "\x10import numpy\n@dec\ndef f(a,\n      b=(1,)) -> int:\n"
             "    \"\"\"Return a plus b here.\"\"\"\n    return a + b\n");
    seed_str(d, "class",
             "\x01"
             "class A(B):\n    '''A class of things.'''\n    class C:\n"
             "        def m(self):\n            r\"\"\"Do the m thing.\"\"\"\n"
             "            def inner():\n                'inner doc here'\n"
             "                return 1\n            return inner\n"
             "    async def _p(self): 'private doc string'; return 2\n");
    seed_str(d, "crlf-tabs",
             "\x06"
             "class T:\r\n\tdef m(self):\r\n\t\t\"\"\"Tab doc with words.\"\"\"\r\n"
             "\t\ts = '''\r\ndef fake():\r\n'''\r\n\t\treturn s");
    seed_str(d, "stubs",
             "\x08"
             "def s():\n    \"\"\"Only a stub here.\"\"\"\n    pass\n"
             "class E(Exception):\n    \"\"\"\n    Returns\n    -------\n    \"\"\"\n"
             "def big():\n    \"\"\"A long body here.\"\"\"\n    x = 1\n    y = 2\n"
             "    return x + y + 123456789\n");
    seed_str(d, "broken",
             "\x02"
             "def f(:\n    '''open\ndef g():\n  \\\n  'x' 'y'\n");
    return 0;
}
#endif
