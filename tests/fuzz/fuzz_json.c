// SPDX-License-Identifier: MIT
/*
** fuzz_json.c: libFuzzer target for the JSONL object parser (lib/json.h).
**
** Input: one candidate JSONL line. Properties checked beyond "no crash, no sanitizer report":
**   - every field's key and raw value lie inside the input;
**   - every string field decodes (json_decode_string) to valid UTF-8, and escaping the
**     decoded bytes (json_escape) gives a literal that parses and decodes back to them;
**   - json_get_int on a number field does not misbehave;
**   - parsing with a decode buffer (one pass, JsonObj.decode) gives the same verdict, message,
**     error position and fields, and each string's decoded bytes equal json_decode_string's.
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "json.h"
#include "fuzz.h"

/*
** Escape-then-parse round trip of one decoded string value.
*/
static void roundtrip(const Buf *dec)
{
    Buf line = { 0 };
    buf_adds(&line, "{\"k\":");
    json_escape(&line, dec->buf ? dec->buf : "", dec->len);
    buf_addc(&line, '}');
    JsonObj o = { 0 };
    FUZZ_ASSERT(json_parse_object(&o, line.buf, line.len) == 0);
    FUZZ_ASSERT(o.n == 1 && o.f[0].type == JSON_STRING);
    Buf again = { 0 };
    json_decode_string(o.f[0].raw, o.f[0].rawlen, &again);
    FUZZ_ASSERT(again.len == dec->len);
    FUZZ_ASSERT(dec->len == 0 || memcmp(again.buf, dec->buf, dec->len) == 0);
    buf_free(&again);
    json_obj_free(&o);
    buf_free(&line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the parser must not read past len: hand it an exact-size heap copy */
    char *line = malloc(size ? size : 1);
    memcpy(line, data, size);
    JsonObj o = { 0 }, od = { 0 };
    Buf store = { 0 };
    od.decode = &store;
    int rc = json_parse_object(&o, line, size), rcd = json_parse_object(&od, line, size);
    FUZZ_ASSERT(rc == rcd);
    if (rc != 0) {
        FUZZ_ASSERT(!strcmp(o.err, od.err) && o.err_pos == od.err_pos);
    } else {
        FUZZ_ASSERT(o.n == od.n);
    }
    if (rc == 0) {
        for (int i = 0; i < o.n; i++) {
            const JsonField *f = &o.f[i];
            FUZZ_ASSERT(f->type == od.f[i].type && f->raw == od.f[i].raw &&
                        f->rawlen == od.f[i].rawlen);
            FUZZ_ASSERT(f->key >= line && f->key + f->klen <= line + size);
            FUZZ_ASSERT(f->raw >= line && f->raw + f->rawlen <= line + size);
            if (f->type == JSON_STRING) {
                Buf dec = { 0 };
                json_decode_string(f->raw, f->rawlen, &dec);
                FUZZ_ASSERT(od.f[i].dec_len == dec.len && od.f[i].dec_off + dec.len < store.len);
                FUZZ_ASSERT(dec.len == 0 || !memcmp(store.buf + od.f[i].dec_off, dec.buf, dec.len));
                FUZZ_ASSERT(utf8_valid_prefix((const unsigned char *)dec.buf, dec.len) == dec.len);
                roundtrip(&dec);
                buf_free(&dec);
            } else if (f->type == JSON_NUMBER && f->klen < 64 && !memchr(f->key, '\\', f->klen)) {
                char key[64];
                memcpy(key, f->key, f->klen);
                key[f->klen] = 0;
                int64_t v;
                (void)json_get_int(&o, key, &v);
            }
        }
    } else {
        FUZZ_ASSERT(o.err[0] != 0);
        FUZZ_ASSERT(o.err_pos <= size);
    }
    json_obj_free(&o);
    json_obj_free(&od);
    buf_free(&store);
    free(line);
    return 0;
}

#ifdef FUZZ_SEEDS
/* Seeds: typical codemill records and the corners of RFC 8259. */
int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    const char *d = argv[1];
    seed_str(d, "record",
             "{\"repo_name\":\"a/b\",\"path\":\"x.py\",\"size\":12,"
             "\"license\":\"mit\",\"content\":\"import os\\nx = 1\\n\"}");
    seed_str(d, "escapes", "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\ud800x\"}");
    seed_str(d, "nested", "{\"a\":[1,2,{\"b\":[true,false,null]}],\"o\":{\"x\":{\"y\":[]}}}");
    seed_str(d, "numbers",
             "{\"i\":-0,\"f\":1.5e-7,\"e\":2E+10,\"big\":123456789012345678901234,"
             "\"n\":-9223372036854775808}");
    seed_str(d, "utf8", "{\"c\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d\"}");
    seed_str(d, "ws", " \t{ \"a\" : \"b\" , \"c\" : 1 } \r");
    seed_str(d, "empty", "{}");
    char deep[200];
    memset(deep, '[', 70);
    snprintf(deep + 70, sizeof deep - 70, "%s", "1");
    Buf b = { 0 };
    buf_adds(&b, "{\"d\":");
    buf_adds(&b, deep);
    for (int i = 0; i < 70; i++) buf_addc(&b, ']');
    buf_addc(&b, '}');
    seed_write(d, "deep", b.buf, b.len);
    buf_free(&b);
    return 0;
}
#endif
