// SPDX-License-Identifier: MIT
/*
** fuzz_utf8.c: libFuzzer target for the UTF-8 validator and repairer (lib/util.h), which decide
** what text cm-ingest keeps.
**
** Properties: utf8_repair's output is valid UTF-8; valid input is copied unchanged with no
** replacement; invalid input gets at least one replacement; the valid prefix of the input is a
** prefix of the output; repair is idempotent.
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    size_t pre = utf8_valid_prefix(in, size);
    FUZZ_ASSERT(pre <= size);
    Buf out = { 0 };
    size_t nrep = utf8_repair(in, size, &out);
    const unsigned char *o = (const unsigned char *)(out.buf ? out.buf : "");
    FUZZ_ASSERT(utf8_valid_prefix(o, out.len) == out.len);
    if (pre == size) {
        FUZZ_ASSERT(nrep == 0 && out.len == size && (size == 0 || memcmp(o, in, size) == 0));
    } else {
        FUZZ_ASSERT(nrep > 0);
        FUZZ_ASSERT(out.len >= pre && (pre == 0 || memcmp(o, in, pre) == 0));
    }
    Buf again = { 0 };
    FUZZ_ASSERT(utf8_repair(o, out.len, &again) == 0);
    FUZZ_ASSERT(again.len == out.len && (out.len == 0 || memcmp(again.buf, o, out.len) == 0));
    buf_free(&again);
    buf_free(&out);
    free(in);
    return 0;
}

#ifdef FUZZ_SEEDS
int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    const char *d = argv[1];
    seed_str(d, "ascii", "import pandas as pd\n");
    seed_str(d, "multibyte", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d \xf4\x8f\xbf\xbf");
    seed_str(d, "invalid", "\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82 \x80 \xff");
    seed_str(d, "latin1", "r\xe9sum\xe9 na\xefve");
    return 0;
}
#endif
