// SPDX-License-Identifier: MIT
/*
** safetensors.c: the safetensors reader (mapped, checked before use) and header writer (see
** safetensors.h). The JSON is read with lib/json.h, which keeps every field in input order
** (duplicate names stay visible) and its position (messages give the file offset).
*/
#include "trainer/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"         /* defines: json_parse_object, json_get, json_decode_string */
#include "le.h"           /* defines: le_get64, le_put64, le_get16 */
#include "trainer/half.h" /* defines: f32_from_f16, f32_from_bf16 */

static const struct {
    const char *name;
    int size;
} st_types[ST_NTYPES] = {
    [ST_F64] = { "F64", 8 },   [ST_F32] = { "F32", 4 },         [ST_F16] = { "F16", 2 },
    [ST_BF16] = { "BF16", 2 }, [ST_I64] = { "I64", 8 },         [ST_I32] = { "I32", 4 },
    [ST_I16] = { "I16", 2 },   [ST_I8] = { "I8", 1 },           [ST_U64] = { "U64", 8 },
    [ST_U32] = { "U32", 4 },   [ST_U16] = { "U16", 2 },         [ST_U8] = { "U8", 1 },
    [ST_BOOL] = { "BOOL", 1 }, [ST_F8_E4M3] = { "F8_E4M3", 1 }, [ST_F8_E5M2] = { "F8_E5M2", 1 },
};

const char *st_dtype_name(int dtype)
{
    return dtype >= 0 && dtype < ST_NTYPES ? st_types[dtype].name : "?";
}

int st_dtype_size(int dtype)
{
    return dtype >= 0 && dtype < ST_NTYPES ? st_types[dtype].size : 0;
}

int st_dtype_parse(const char *s, size_t n)
{
    for (int i = 0; i < ST_NTYPES; i++)
        if (strlen(st_types[i].name) == n && memcmp(st_types[i].name, s, n) == 0) return i;
    return -1;
}

uint64_t st_numel(const StTensor *t)
{
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i]; /* checked against overflow when parsed */
    return n;
}

/* --------------------------------------------------------------------------------------- */
/* Reading the header                                                                      */

/* What the parser of one file needs for its messages. */
typedef struct {
    StFile *f;       /* the file being checked */
    const char *hdr; /* the JSON text (inside the file, at offset 8) */
} StParse;

/* Report a fault at a file offset, naming the tensor when there is one; returns -2. */
static int st_fail(const StParse *p, uint64_t off, const char *tensor, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int st_fail(const StParse *p, uint64_t off, const char *tensor, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (tensor)
        error("%s: offset %llu: tensor '%s': %s", p->f->path, (unsigned long long)off, tensor, msg);
    else
        error("%s: offset %llu: %s", p->f->path, (unsigned long long)off, msg);
    return -2;
}

/* File offset of a pointer into the header text. */
static uint64_t hdr_pos(const StParse *p, const char *at)
{
    return 8 + (uint64_t)(at - p->hdr);
}

/*
** Parse a JSON array of non-negative integers raw[0..n) into v (at most max); *count gets how
** many. 0, or -1 if it is anything else (too long, negative, fractional, > 2^63).
*/
static int parse_uint_array(const char *raw, size_t n, uint64_t *v, int max, int *count)
{
    size_t i = 0;
    int k = 0;
    if (n < 2 || raw[0] != '[') return -1;
    i = 1;
    for (;;) {
        while (i < n && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r')) i++;
        if (i < n && raw[i] == ']' && k == 0) {
            i++;
            break;
        }
        if (i >= n || raw[i] < '0' || raw[i] > '9' || k == max) return -1;
        uint64_t x = 0;
        while (i < n && raw[i] >= '0' && raw[i] <= '9') {
            if (x > (UINT64_MAX >> 1) / 10) return -1;
            x = x * 10 + (uint64_t)(raw[i++] - '0');
        }
        if (x > (UINT64_MAX >> 1)) return -1;
        v[k++] = x;
        while (i < n && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r')) i++;
        if (i < n && raw[i] == ',') {
            i++;
            continue;
        }
        if (i < n && raw[i] == ']') {
            i++;
            break;
        }
        return -1;
    }
    *count = k;
    return i == n ? 0 : -1;
}

/* The decoded text of a JSON key or string field (malloc'd). */
static char *field_text(const char *raw, size_t n)
{
    if (!memchr(raw, '\\', n)) return xstrndup(raw, n);
    Buf b = { 0 };
    json_decode_string(raw, n, &b);
    if (!b.buf) buf_grow(&b, 1);
    return buf_detach(&b, NULL);
}

/*
** Fill t from one header entry {"dtype", "shape", "data_offsets"} (the field's raw text).
** 0 or -2 (message).
*/
static int parse_entry(const StParse *p, const JsonField *fld, StTensor *t)
{
    uint64_t pos = hdr_pos(p, fld->raw);
    if (fld->type != JSON_OBJECT) return st_fail(p, pos, t->name, "entry is not a JSON object");
    JsonObj o = { 0 };
    int rc = 0;
    if (json_parse_object(&o, fld->raw, fld->rawlen) != 0) {
        rc = st_fail(p, pos + o.err_pos, t->name, "%s", o.err);
        goto done;
    }
    const JsonField *dt = json_get(&o, "dtype"), *sh = json_get(&o, "shape"),
                    *off = json_get(&o, "data_offsets");
    if (!dt || dt->type != JSON_STRING || !sh || sh->type != JSON_ARRAY || !off ||
        off->type != JSON_ARRAY) {
        rc = st_fail(p, pos, t->name,
                     "needs \"dtype\" (a string), \"shape\" and "
                     "\"data_offsets\" (arrays)");
        goto done;
    }
    t->dtype = st_dtype_parse(dt->raw, dt->rawlen);
    if (t->dtype < 0) {
        rc = st_fail(p, hdr_pos(p, dt->raw), t->name, "unknown dtype '%.*s'",
                     (int)(dt->rawlen > 32 ? 32 : dt->rawlen), dt->raw);
        goto done;
    }
    if (parse_uint_array(sh->raw, sh->rawlen, t->shape, ST_MAX_DIMS, &t->ndim) != 0) {
        rc = st_fail(p, hdr_pos(p, sh->raw), t->name,
                     "shape is not a list of at most %d "
                     "sizes",
                     ST_MAX_DIMS);
        goto done;
    }
    uint64_t be[2];
    int nbe = 0;
    if (parse_uint_array(off->raw, off->rawlen, be, 2, &nbe) != 0 || nbe != 2 || be[0] > be[1]) {
        rc = st_fail(p, hdr_pos(p, off->raw), t->name,
                     "data_offsets is not [begin, end] with "
                     "begin <= end");
        goto done;
    }
    t->begin = be[0];
    t->end = be[1];
done:
    json_obj_free(&o);
    return rc;
}

/*
** Check one tensor's size against its shape and the data section. 0 or -2.
*/
static int check_extent(const StParse *p, const StTensor *t)
{
    StFile *f = p->f;
    uint64_t bytes = (uint64_t)st_dtype_size(t->dtype);
    for (int i = 0; i < t->ndim; i++)
        if (__builtin_mul_overflow(bytes, t->shape[i], &bytes))
            return st_fail(p, t->header_pos, t->name, "shape too large");
    uint64_t data_size = f->size - f->data_off;
    if (t->end > data_size)
        return st_fail(p, f->data_off + t->begin, t->name,
                       "data_offsets [%llu, %llu] run past "
                       "the end of the file (data section of %llu bytes)",
                       (unsigned long long)t->begin, (unsigned long long)t->end,
                       (unsigned long long)data_size);
    if (t->end - t->begin != bytes)
        return st_fail(p, f->data_off + t->begin, t->name,
                       "data_offsets [%llu, %llu] hold %llu "
                       "bytes, the shape and dtype %s need %llu",
                       (unsigned long long)t->begin, (unsigned long long)t->end,
                       (unsigned long long)(t->end - t->begin), st_dtype_name(t->dtype),
                       (unsigned long long)bytes);
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->header_pos > y->header_pos) - (x->header_pos < y->header_pos);
}

static int cmp_begin(const void *a, const void *b)
{
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/*
** Duplicate names and overlapping data ranges (empty tensors overlap nothing). 0 or -2.
*/
static int check_disjoint(const StParse *p)
{
    StFile *f = p->f;
    if (f->n < 2) return 0;
    const StTensor **v = xmalloc((size_t)f->n * sizeof *v);
    int rc = 0;
    for (int i = 0; i < f->n; i++) v[i] = &f->t[i];
    qsort(v, (size_t)f->n, sizeof *v, cmp_name);
    for (int i = 1; i < f->n && rc == 0; i++)
        if (strcmp(v[i]->name, v[i - 1]->name) == 0)
            rc = st_fail(p, v[i]->header_pos, v[i]->name,
                         "duplicate name (first entry at "
                         "offset %llu)",
                         (unsigned long long)v[i - 1]->header_pos);
    qsort(v, (size_t)f->n, sizeof *v, cmp_begin);
    const StTensor *last = NULL; /* the non-empty tensor that ends last so far */
    for (int i = 0; i < f->n && rc == 0; i++) {
        if (v[i]->begin == v[i]->end) continue;
        if (last && v[i]->begin < last->end)
            rc = st_fail(p, f->data_off + v[i]->begin, v[i]->name,
                         "data bytes [%llu, %llu) "
                         "overlap tensor '%s' [%llu, %llu)",
                         (unsigned long long)v[i]->begin, (unsigned long long)v[i]->end, last->name,
                         (unsigned long long)last->begin, (unsigned long long)last->end);
        if (!last || v[i]->end > last->end) last = v[i];
    }
    free(v);
    return rc;
}

/*
** Parse the header JSON (hdr[0..n)) into f->t. 0 or -2.
*/
static int parse_header(StParse *p, size_t n)
{
    StFile *f = p->f;
    JsonObj o = { 0 };
    int rc = 0;
    if (json_parse_object(&o, p->hdr, n) != 0) {
        rc = st_fail(p, 8 + o.err_pos, NULL, "header JSON: %s", o.err);
        goto done;
    }
    f->t = xcalloc((size_t)o.n + 1, sizeof *f->t);
    for (int i = 0; i < o.n && rc == 0; i++) {
        const JsonField *fld = &o.f[i];
        if (fld->klen == 12 && memcmp(fld->key, "__metadata__", 12) == 0) {
            if (fld->type != JSON_OBJECT)
                rc = st_fail(p, hdr_pos(p, fld->key), NULL, "__metadata__ is not an object");
            continue;
        }
        StTensor *t = &f->t[f->n++];
        t->name = field_text(fld->key, fld->klen);
        t->header_pos = hdr_pos(p, fld->key) - 1; /* at the key's opening quote */
        rc = parse_entry(p, fld, t);
        if (rc == 0) rc = check_extent(p, t);
    }
    if (rc == 0) rc = check_disjoint(p);
done:
    json_obj_free(&o);
    return rc;
}

/* --------------------------------------------------------------------------------------- */
/* Opening                                                                                 */

int st_parse(StFile *f, const char *name, const void *buf, size_t size)
{
    memset(f, 0, sizeof *f);
    f->path = xstrdup(name);
    f->base = buf;
    f->size = size;
    StParse p = { f, NULL };
    int rc;
    if (size < 8) {
        rc = st_fail(&p, 0, NULL, "file of %zu bytes is too short for the 8-byte header length",
                     size);
    } else {
        uint64_t n = le_get64(f->base);
        if (n > size - 8)
            rc = st_fail(&p, 0, NULL,
                         "header length %llu runs past the end of the file "
                         "(%zu bytes)",
                         (unsigned long long)n, size);
        else if (n > ST_MAX_HEADER)
            rc = st_fail(&p, 0, NULL, "header length %llu is over the limit of %u bytes",
                         (unsigned long long)n, ST_MAX_HEADER);
        else {
            f->data_off = 8 + n;
            p.hdr = (const char *)f->base + 8;
            rc = parse_header(&p, (size_t)n);
        }
    }
    if (rc) st_close(f);
    return rc;
}

int st_open(StFile *f, const char *path)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return error("cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return error("cannot read '%s': %s", path, strerror(e));
    }
    void *map = NULL;
    size_t size = (size_t)st.st_size;
    if (size > 0) {
        /* MAP_POPULATE: the pages are all read anyway; mapping them in one pass saves a fault
        ** per 4 KiB page */
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return error("cannot map '%s': %s", path, strerror(e));
        }
    }
    close(fd);
    int rc = st_parse(f, path, map ? map : "", size);
    if (rc) {
        if (map) munmap(map, size);
        return rc;
    }
    f->mapped = map != NULL;
    return 0;
}

void st_close(StFile *f)
{
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    if (f->mapped) munmap((void *)f->base, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const StTensor *st_find(const StFile *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

const float *st_f32_view(const StFile *f, const StTensor *t)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const unsigned char *src = f->base + f->data_off + t->begin;
    if (t->dtype == ST_F32 && (uintptr_t)src % sizeof(float) == 0) return (const float *)src;
#endif
    return NULL;
}

int st_read_f32(const StFile *f, const StTensor *t, float *out)
{
    const unsigned char *src = f->base + f->data_off + t->begin;
    uint64_t n = st_numel(t);
    switch (t->dtype) {
    case ST_F32:
        for (uint64_t i = 0; i < n; i++) out[i] = le_getf32(src + 4 * i);
        return 0;
    case ST_F16:
        for (uint64_t i = 0; i < n; i++) out[i] = f32_from_f16(le_get16(src + 2 * i));
        return 0;
    case ST_BF16:
        for (uint64_t i = 0; i < n; i++) out[i] = f32_from_bf16(le_get16(src + 2 * i));
        return 0;
    default:
        error("%s: offset %llu: tensor '%s': dtype %s cannot be read as weights (F32, F16 and "
              "BF16 can)",
              f->path, (unsigned long long)st_file_offset(f, t), t->name, st_dtype_name(t->dtype));
        return -2;
    }
}

/* --------------------------------------------------------------------------------------- */
/* Writing                                                                                 */

uint64_t st_entry_bytes(const StEntry *e)
{
    uint64_t n = (uint64_t)st_dtype_size(e->dtype);
    for (int i = 0; i < e->ndim; i++) n *= e->shape[i];
    return n;
}

void st_header(Buf *out, const StEntry *e, int n, const char *metadata_json)
{
    Buf j = { 0 };
    uint64_t off = 0;
    buf_addc(&j, '{');
    if (metadata_json) buf_addf(&j, "\"__metadata__\":%s", metadata_json);
    for (int i = 0; i < n; i++) {
        if (i || metadata_json) buf_addc(&j, ',');
        json_escape(&j, e[i].name, strlen(e[i].name));
        buf_addf(&j, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(e[i].dtype));
        for (int d = 0; d < e[i].ndim; d++)
            buf_addf(&j, "%s%llu", d ? "," : "", (unsigned long long)e[i].shape[d]);
        uint64_t bytes = st_entry_bytes(&e[i]);
        buf_addf(&j, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + bytes));
        off += bytes;
    }
    buf_addc(&j, '}');
    while ((8 + j.len) % 8) buf_addc(&j, ' '); /* the data section starts 8-byte aligned */
    unsigned char len[8];
    le_put64(len, j.len);
    buf_add(out, len, 8);
    buf_add(out, j.buf, j.len);
    buf_free(&j);
}
