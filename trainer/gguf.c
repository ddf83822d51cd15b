// SPDX-License-Identifier: MIT
/*
** gguf.c: GGUF v3 writer, Q8_0 quantizer and a checking reader (see gguf.h).
*/
#include "trainer/gguf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "le.h"           /* defines: le_put32, le_put64, le_get32, le_get64 */
#include "trainer/half.h" /* defines: f16_from_f32, f32_from_f16 */

/* Bytes of one scalar of each metadata value type (strings and arrays: 0, variable). */
static const int kv_size[GGUF_NTYPES] = {
    [GGUF_U8] = 1,  [GGUF_I8] = 1,  [GGUF_U16] = 2,  [GGUF_I16] = 2, [GGUF_U32] = 4,
    [GGUF_I32] = 4, [GGUF_F32] = 4, [GGUF_BOOL] = 1, [GGUF_STR] = 0, [GGUF_ARR] = 0,
    [GGUF_U64] = 8, [GGUF_I64] = 8, [GGUF_F64] = 8,
};

const char *gguf_type_name(int type)
{
    switch (type) {
    case GGML_F32: return "F32";
    case GGML_F16: return "F16";
    case GGML_Q8_0: return "Q8_0";
    case GGML_BF16: return "BF16";
    default: return "?";
    }
}

uint64_t gguf_tensor_bytes(int type, int ndim, const uint64_t *ne)
{
    if (ndim < 1 || ndim > GGUF_MAX_DIMS) return 0;
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++)
        if (ne[i] == 0 || __builtin_mul_overflow(n, ne[i], &n)) return 0;
    uint64_t bytes;
    switch (type) {
    case GGML_F32:
        if (__builtin_mul_overflow(n, 4, &bytes)) return 0;
        return bytes;
    case GGML_F16:
    case GGML_BF16:
        if (__builtin_mul_overflow(n, 2, &bytes)) return 0;
        return bytes;
    case GGML_Q8_0:
        if (ne[0] % GGML_Q8_0_BLOCK) return 0;
        return n / GGML_Q8_0_BLOCK * GGML_Q8_0_BYTES; /* n/32*34 < n*2: no overflow */
    default: return 0;
    }
}

/* --------------------------------------------------------------------------------------- */
/* Q8_0                                                                                    */

void gguf_quantize_q8_0(const float *x, size_t n, unsigned char *out)
{
    for (size_t b = 0; b < n / GGML_Q8_0_BLOCK; b++) {
        const float *v = x + b * GGML_Q8_0_BLOCK;
        unsigned char *o = out + b * GGML_Q8_0_BYTES;
        float amax = 0.0f;
        for (int i = 0; i < GGML_Q8_0_BLOCK; i++)
            if (fabsf(v[i]) > amax) amax = fabsf(v[i]);
        float d = amax / 127.0f, inv = d != 0.0f ? 1.0f / d : 0.0f;
        le_put16(o, f16_from_f32(d));
        for (int i = 0; i < GGML_Q8_0_BLOCK; i++) {
            float q = roundf(v[i] * inv);
            if (q > 127.0f) q = 127.0f; /* d rounded to f16 can be a little smaller */
            if (q < -127.0f) q = -127.0f;
            o[2 + i] = (unsigned char)(int8_t)q;
        }
    }
}

void gguf_dequantize_q8_0(const unsigned char *in, size_t n, float *x)
{
    for (size_t b = 0; b < n / GGML_Q8_0_BLOCK; b++) {
        const unsigned char *o = in + b * GGML_Q8_0_BYTES;
        float d = f32_from_f16(le_get16(o));
        for (int i = 0; i < GGML_Q8_0_BLOCK; i++)
            x[b * GGML_Q8_0_BLOCK + i] = d * (float)(int8_t)o[2 + i];
    }
}

/* --------------------------------------------------------------------------------------- */
/* Writer                                                                                  */

static void put_u32(Buf *b, uint32_t v)
{
    unsigned char t[4];
    le_put32(t, v);
    buf_add(b, t, 4);
}
static void put_u64(Buf *b, uint64_t v)
{
    unsigned char t[8];
    le_put64(t, v);
    buf_add(b, t, 8);
}
static void put_str(Buf *b, const char *s, size_t n)
{
    put_u64(b, n);
    buf_add(b, s, n);
}

void gguf_writer_init(GgufWriter *w)
{
    memset(w, 0, sizeof *w);
}

void gguf_writer_free(GgufWriter *w)
{
    buf_free(&w->kv);
    buf_free(&w->info);
    memset(w, 0, sizeof *w);
}

/* Key and value type of a new pair. */
static void kv_begin(GgufWriter *w, const char *key, uint32_t type)
{
    put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, type);
    w->n_kv++;
}

void gguf_kv_str(GgufWriter *w, const char *key, const char *val)
{
    kv_begin(w, key, GGUF_STR);
    put_str(&w->kv, val, strlen(val));
}

void gguf_kv_u32(GgufWriter *w, const char *key, uint32_t val)
{
    kv_begin(w, key, GGUF_U32);
    put_u32(&w->kv, val);
}

void gguf_kv_f32(GgufWriter *w, const char *key, float val)
{
    kv_begin(w, key, GGUF_F32);
    unsigned char t[4];
    le_putf32(t, val);
    buf_add(&w->kv, t, 4);
}

void gguf_kv_bool(GgufWriter *w, const char *key, int val)
{
    kv_begin(w, key, GGUF_BOOL);
    buf_addc(&w->kv, val ? 1 : 0);
}

void gguf_kv_str_array(GgufWriter *w, const char *key, const char *const *s, const size_t *len,
                       uint64_t n)
{
    kv_begin(w, key, GGUF_ARR);
    put_u32(&w->kv, GGUF_STR);
    put_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++) put_str(&w->kv, s[i], len[i]);
}

void gguf_kv_i32_array(GgufWriter *w, const char *key, const int32_t *v, uint64_t n)
{
    kv_begin(w, key, GGUF_ARR);
    put_u32(&w->kv, GGUF_I32);
    put_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++) put_u32(&w->kv, (uint32_t)v[i]);
}

uint64_t gguf_add_tensor(GgufWriter *w, const char *name, int type, int ndim, const uint64_t *ne)
{
    uint64_t bytes = gguf_tensor_bytes(type, ndim, ne), off = w->data_bytes;
    put_str(&w->info, name, strlen(name));
    put_u32(&w->info, (uint32_t)ndim);
    for (int i = 0; i < ndim; i++) put_u64(&w->info, ne[i]);
    put_u32(&w->info, (uint32_t)type);
    put_u64(&w->info, off);
    w->n_tensors++;
    w->data_bytes += bytes + gguf_padding(bytes);
    return off;
}

void gguf_header(const GgufWriter *w, Buf *out)
{
    buf_add(out, GGUF_MAGIC, 4);
    put_u32(out, GGUF_VERSION);
    put_u64(out, w->n_tensors);
    put_u64(out, w->n_kv);
    buf_add(out, w->kv.buf, w->kv.len);
    buf_add(out, w->info.buf, w->info.len);
    while (out->len % GGUF_ALIGN) buf_addc(out, 0);
}

/* --------------------------------------------------------------------------------------- */
/* Reader                                                                                  */

typedef struct {
    GgufFile *g;
    uint64_t pos; /* next byte to read */
} Cur;

static int gg_fail(const GgufFile *g, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int gg_fail(const GgufFile *g, uint64_t off, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    error("%s: offset %llu: %s", g->path, (unsigned long long)off, msg);
    return -2;
}

/* Is there room for n more bytes? */
static int room(const Cur *c, uint64_t n)
{
    return c->pos <= c->g->size && n <= c->g->size - c->pos;
}

static int rd_u32(Cur *c, uint32_t *v, const char *what)
{
    if (!room(c, 4)) return gg_fail(c->g, c->pos, "file ends inside %s", what);
    *v = le_get32(c->g->base + c->pos);
    c->pos += 4;
    return 0;
}

static int rd_u64(Cur *c, uint64_t *v, const char *what)
{
    if (!room(c, 8)) return gg_fail(c->g, c->pos, "file ends inside %s", what);
    *v = le_get64(c->g->base + c->pos);
    c->pos += 8;
    return 0;
}

/* A string: pointer into the buffer and length. */
static int rd_str(Cur *c, const char **s, uint64_t *n, const char *what)
{
    uint64_t at = c->pos;
    if (rd_u64(c, n, what)) return -2;
    if (!room(c, *n))
        return gg_fail(c->g, at, "%s: string of %llu bytes runs past the end of the file", what,
                       (unsigned long long)*n);
    *s = (const char *)c->g->base + c->pos;
    c->pos += *n;
    return 0;
}

/* Skip one scalar or string value of type t. */
static int skip_value(Cur *c, int t, const char *key)
{
    if (t == GGUF_STR) {
        const char *s;
        uint64_t n;
        return rd_str(c, &s, &n, key);
    }
    if (!room(c, (uint64_t)kv_size[t]))
        return gg_fail(c->g, c->pos, "key '%s': file ends inside the value", key);
    c->pos += (uint64_t)kv_size[t];
    return 0;
}

/* One key/value pair. */
static int rd_kv(Cur *c, GgufKv *kv)
{
    const char *k;
    uint64_t kn;
    uint32_t t = 0;
    kv->pos = c->pos;
    if (rd_str(c, &k, &kn, "a metadata key")) return -2;
    if (memchr(k, 0, kn)) return gg_fail(c->g, kv->pos, "metadata key holds a NUL byte");
    kv->key = xstrndup(k, kn);
    if (rd_u32(c, &t, kv->key)) return -2;
    kv->type = t < GGUF_NTYPES ? (int)t : -1;
    if (kv->type < 0) return gg_fail(c->g, kv->pos, "key '%s': unknown value type %u", kv->key, t);
    if (kv->type != GGUF_ARR) {
        kv->val = c->g->base + c->pos;
        return skip_value(c, kv->type, kv->key);
    }
    uint32_t et = 0;
    if (rd_u32(c, &et, kv->key) || rd_u64(c, &kv->count, kv->key)) return -2;
    kv->elem = et < GGUF_NTYPES ? (int)et : -1;
    kv->val = c->g->base + c->pos;
    if (kv->elem < 0 || kv->elem == GGUF_ARR)
        return gg_fail(c->g, kv->pos, "key '%s': array of unknown type %u", kv->key, et);
    if (kv->elem != GGUF_STR) {
        uint64_t bytes;
        if (__builtin_mul_overflow(kv->count, (uint64_t)kv_size[kv->elem], &bytes) ||
            !room(c, bytes))
            return gg_fail(c->g, kv->pos,
                           "key '%s': array of %llu values runs past the end of "
                           "the file",
                           kv->key, (unsigned long long)kv->count);
        c->pos += bytes;
        return 0;
    }
    if (kv->count > (c->g->size - c->pos) / 8)
        return gg_fail(c->g, kv->pos,
                       "key '%s': array of %llu strings runs past the end of the "
                       "file",
                       kv->key, (unsigned long long)kv->count);
    for (uint64_t i = 0; i < kv->count; i++)
        if (skip_value(c, GGUF_STR, kv->key)) return -2;
    return 0;
}

/* One tensor info. */
static int rd_tensor(Cur *c, GgufTensor *t)
{
    const char *s;
    uint64_t n;
    uint32_t nd = 0, type = 0;
    t->pos = c->pos;
    if (rd_str(c, &s, &n, "a tensor name")) return -2;
    if (memchr(s, 0, n)) return gg_fail(c->g, t->pos, "tensor name holds a NUL byte");
    t->name = xstrndup(s, n);
    if (rd_u32(c, &nd, t->name)) return -2;
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return gg_fail(c->g, t->pos, "tensor '%s': %u dimensions (1 to %d are valid)", t->name, nd,
                       GGUF_MAX_DIMS);
    t->ndim = (int)nd;
    for (int i = 0; i < t->ndim; i++)
        if (rd_u64(c, &t->ne[i], t->name)) return -2;
    if (rd_u32(c, &type, t->name) || rd_u64(c, &t->offset, t->name)) return -2;
    t->type = (int)type;
    t->bytes = gguf_tensor_bytes(t->type, t->ndim, t->ne);
    if (t->bytes == 0)
        return gg_fail(c->g, t->pos, "tensor '%s': type %u with this shape is not read", t->name,
                       type);
    return 0;
}

static int cmp_offset(const void *a, const void *b)
{
    const GgufTensor *x = *(const GgufTensor *const *)a, *y = *(const GgufTensor *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static int cmp_tname(const void *a, const void *b)
{
    const GgufTensor *x = *(const GgufTensor *const *)a, *y = *(const GgufTensor *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* Data offsets aligned and inside the file; no two tensors overlap or share a name. */
static int check_tensor_data(GgufFile *g)
{
    uint64_t data = g->size - g->data_off;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        GgufTensor *t = &g->t[i];
        if (t->offset % g->align)
            return gg_fail(g, t->pos,
                           "tensor '%s': data offset %llu is not a multiple of the "
                           "alignment %u",
                           t->name, (unsigned long long)t->offset, g->align);
        if (t->offset > data || t->bytes > data - t->offset)
            return gg_fail(g, t->pos,
                           "tensor '%s': %llu bytes at data offset %llu run past "
                           "the end of the file (data section of %llu bytes)",
                           t->name, (unsigned long long)t->bytes, (unsigned long long)t->offset,
                           (unsigned long long)data);
    }
    if (g->n_tensors < 2) return 0;
    const GgufTensor **v = xmalloc((size_t)g->n_tensors * sizeof *v);
    int rc = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) v[i] = &g->t[i];
    qsort(v, (size_t)g->n_tensors, sizeof *v, cmp_offset);
    for (uint64_t i = 1; i < g->n_tensors && rc == 0; i++)
        if (v[i]->offset < v[i - 1]->offset + v[i - 1]->bytes)
            rc = gg_fail(g, g->data_off + v[i]->offset, "tensor '%s' overlaps tensor '%s'",
                         v[i]->name, v[i - 1]->name);
    qsort(v, (size_t)g->n_tensors, sizeof *v, cmp_tname);
    for (uint64_t i = 1; i < g->n_tensors && rc == 0; i++)
        if (strcmp(v[i]->name, v[i - 1]->name) == 0)
            rc = gg_fail(g, v[i]->pos, "tensor '%s': duplicate name", v[i]->name);
    free(v);
    return rc;
}

/* Header, metadata and tensor infos; sets the alignment and the data section. */
static int gguf_read_all(GgufFile *g, Cur *c)
{
    char magic[4];
    if (!room(c, 4))
        return gg_fail(g, 0, "file of %zu bytes is too short for a GGUF header", g->size);
    memcpy(magic, g->base, 4);
    c->pos = 4;
    if (memcmp(magic, GGUF_MAGIC, 4)) return gg_fail(g, 0, "not a GGUF file (bad magic)");
    if (rd_u32(c, &g->version, "the version")) return -2;
    if (g->version != 2 && g->version != 3)
        return gg_fail(g, 4, "GGUF version %u (2 and 3 are read)", g->version);
    if (rd_u64(c, &g->n_tensors, "the tensor count") || rd_u64(c, &g->n_kv, "the key count"))
        return -2;
    /* a pair takes at least 13 bytes, a tensor info 32: larger counts cannot be true */
    if (g->n_kv > g->size / 13 || g->n_tensors > g->size / 32)
        return gg_fail(g, 8, "%llu tensors and %llu keys cannot fit in %zu bytes",
                       (unsigned long long)g->n_tensors, (unsigned long long)g->n_kv, g->size);
    g->kv = xcalloc((size_t)g->n_kv + 1, sizeof *g->kv);
    g->t = xcalloc((size_t)g->n_tensors + 1, sizeof *g->t);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (rd_kv(c, &g->kv[i])) {
            g->n_kv = i + 1;
            return -2;
        }
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (rd_tensor(c, &g->t[i])) {
            g->n_tensors = i + 1;
            return -2;
        }
    g->align = GGUF_ALIGN;
    const GgufKv *a = gguf_find_kv(g, "general.alignment");
    if (a) {
        if (a->type != GGUF_U32) return gg_fail(g, a->pos, "general.alignment is not a u32");
        g->align = le_get32(a->val);
        if (g->align == 0 || (g->align & (g->align - 1)) || g->align > 1u << 20)
            return gg_fail(g, a->pos, "general.alignment %u is not a power of two", g->align);
    }
    g->data_off = (c->pos + g->align - 1) / g->align * g->align;
    if (g->data_off > g->size) return gg_fail(g, c->pos, "file ends before the data section");
    return check_tensor_data(g);
}

int gguf_parse(GgufFile *g, const char *name, const void *buf, size_t size)
{
    memset(g, 0, sizeof *g);
    g->path = xstrdup(name);
    g->base = buf;
    g->size = size;
    Cur c = { g, 0 };
    int rc = gguf_read_all(g, &c);
    if (rc) gguf_close(g);
    return rc;
}

void gguf_close(GgufFile *g)
{
    for (uint64_t i = 0; i < g->n_kv && g->kv; i++) free(g->kv[i].key);
    for (uint64_t i = 0; i < g->n_tensors && g->t; i++) free(g->t[i].name);
    free(g->kv);
    free(g->t);
    free(g->path);
    memset(g, 0, sizeof *g);
}

const GgufKv *gguf_find_kv(const GgufFile *g, const char *key)
{
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const GgufTensor *gguf_find_tensor(const GgufFile *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->t[i].name && strcmp(g->t[i].name, name) == 0) return &g->t[i];
    return NULL;
}

int gguf_get_u32(const GgufFile *g, const char *key, uint32_t *out)
{
    const GgufKv *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_U32) return -1;
    *out = le_get32(kv->val);
    return 0;
}

int gguf_get_str(const GgufFile *g, const char *key, const char **s, size_t *n)
{
    const GgufKv *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_STR) return -1;
    *n = (size_t)le_get64(kv->val);
    *s = (const char *)kv->val + 8;
    return 0;
}

void gguf_array_str(const GgufKv *kv, uint64_t i, const char **s, size_t *n)
{
    const unsigned char *p = kv->val;
    for (uint64_t k = 0; k < i; k++) p += 8 + le_get64(p);
    *n = (size_t)le_get64(p);
    *s = (const char *)p + 8;
}
