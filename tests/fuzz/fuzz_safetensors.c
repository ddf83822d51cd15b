// SPDX-License-Identifier: MIT
/*
** fuzz_safetensors.c: libFuzzer target for the safetensors reader (trainer/safetensors.h
** st_parse, st_read_f32), which `cm-train import` runs on every weight file of a Hugging Face
** directory.
** fuzz-needs: trainer
**
** Input: the file. Properties: st_parse returns 0 or -2 (never crashes, never exits); on 0
** every tensor lies inside the buffer after the header, its size matches its shape and dtype,
** no two tensors share a name or overlap; every F32/F16/BF16 tensor converts (reading only
** its own bytes: ASan sees a read outside the copy, which is exactly the input's size).
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "util.h"
#include "trainer/safetensors.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so that a read past the end is a heap overflow */
    unsigned char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    StFile f;
    int rc = st_parse(&f, "fuzz.safetensors", buf, size);
    FUZZ_ASSERT(rc == 0 || rc == -2);
    if (rc == 0) {
        for (int i = 0; i < f.n; i++) {
            const StTensor *t = &f.t[i];
            FUZZ_ASSERT(t->begin <= t->end && f.data_off + t->end <= size);
            FUZZ_ASSERT(t->end - t->begin == st_numel(t) * (uint64_t)st_dtype_size(t->dtype));
            for (int j = 0; j < i; j++) {
                FUZZ_ASSERT(strcmp(t->name, f.t[j].name) != 0);
                if (t->begin != t->end && f.t[j].begin != f.t[j].end)
                    FUZZ_ASSERT(t->end <= f.t[j].begin || f.t[j].end <= t->begin);
            }
            if ((t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16) &&
                st_numel(t) <= 1 << 20) {
                float *out = malloc((size_t)st_numel(t) * sizeof(float) + 1);
                FUZZ_ASSERT(st_read_f32(&f, t, out) == 0);
                free(out);
            }
        }
        st_close(&f);
    }
    free(buf);
    return 0;
}

#ifdef FUZZ_SEEDS
/* Seeds: headers written by st_header (the export's writer) with their data. */
int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    StEntry e[4] = {
        { "transformer.wte.weight", ST_F32, 2, { 4, 2 } },
        { "transformer.h.0.attn.c_attn.bias", ST_BF16, 1, { 6 } },
        { "lm_head.weight", ST_F16, 2, { 2, 3 } },
        { "h.0.attn.masked_bias", ST_F32, 0, { 0 } },
    };
    for (int k = 1; k <= 4; k++) {
        Buf b = { 0 };
        st_header(&b, e, k, k % 2 ? "{\"format\":\"pt\"}" : NULL);
        uint64_t data = 0;
        for (int i = 0; i < k; i++) data += st_entry_bytes(&e[i]);
        for (uint64_t i = 0; i < data; i++) buf_addc(&b, (char)(i * 37));
        char name[32];
        snprintf(name, sizeof name, "tensors%d", k);
        seed_write(argv[1], name, b.buf, b.len);
        buf_free(&b);
    }
    return 0;
}
#endif
