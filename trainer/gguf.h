// SPDX-License-Identifier: MIT
/*
** gguf.h: write (and, for tests and fuzzing, read) GGUF v3, llama.cpp's model file.
**
** Layout (all little-endian): "GGUF", u32 version 3, u64 tensor count, u64 key/value count;
** the key/value pairs (key as a string: u64 length + bytes; u32 value type; the value); the
** tensor infos (name, u32 n_dims, u64 dims innermost first, u32 ggml type, u64 offset in the
** data section); padding to general.alignment (32 by default); the data section, each tensor
** starting at a multiple of the alignment.
**
** Tensor types written: F32, F16 and Q8_0 (blocks of 32 values: an f16 scale d = max|x|/127,
** then 32 int8 q = round(x/d); a block is 34 bytes). The reader also knows BF16.
*/
#ifndef CM_GGUF_H
#define CM_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_VERSION 3
#define GGUF_ALIGN 32
#define GGUF_MAX_DIMS 4

/* ggml tensor types */
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q8_0 = 8, GGML_BF16 = 30 };
#define GGML_Q8_0_BLOCK 32 /* values per block */
#define GGML_Q8_0_BYTES 34 /* bytes per block */

/* metadata value types */
enum {
    GGUF_U8,
    GGUF_I8,
    GGUF_U16,
    GGUF_I16,
    GGUF_U32,
    GGUF_I32,
    GGUF_F32,
    GGUF_BOOL,
    GGUF_STR,
    GGUF_ARR,
    GGUF_U64,
    GGUF_I64,
    GGUF_F64,
    GGUF_NTYPES
};

/* Bytes of a tensor of this type and shape (ne innermost first); 0 if the type is unknown or
** a Q8_0 row (ne[0]) is not a multiple of 32. */
uint64_t gguf_tensor_bytes(int type, int ndim, const uint64_t *ne);
const char *gguf_type_name(int type);

/* Q8_0 of n values (n % 32 == 0) into n / 32 blocks; and back (for tests). */
void gguf_quantize_q8_0(const float *x, size_t n, unsigned char *out);
void gguf_dequantize_q8_0(const unsigned char *in, size_t n, float *x);

/* --------------------------------------------------------------------------------------- */
/* Writer: metadata and tensor infos are collected, then gguf_header gives the bytes up to
** the data section; the caller writes each tensor's data, in the order added, each padded
** with zeros to gguf_padding(). */
typedef struct {
    Buf kv; /* encoded key/value pairs */
    uint64_t n_kv;
    Buf info; /* encoded tensor infos */
    uint64_t n_tensors;
    uint64_t data_bytes; /* data section so far (aligned) */
} GgufWriter;

void gguf_writer_init(GgufWriter *w);
void gguf_writer_free(GgufWriter *w);
void gguf_kv_str(GgufWriter *w, const char *key, const char *val);
void gguf_kv_u32(GgufWriter *w, const char *key, uint32_t val);
void gguf_kv_f32(GgufWriter *w, const char *key, float val);
void gguf_kv_bool(GgufWriter *w, const char *key, int val);
/* An array of n strings (s[i] of len[i] bytes) / of n int32. */
void gguf_kv_str_array(GgufWriter *w, const char *key, const char *const *s, const size_t *len,
                       uint64_t n);
void gguf_kv_i32_array(GgufWriter *w, const char *key, const int32_t *v, uint64_t n);
/* Add a tensor; returns its offset in the data section (0 bytes: a bad shape for type). */
uint64_t gguf_add_tensor(GgufWriter *w, const char *name, int type, int ndim, const uint64_t *ne);
/* Header, metadata, tensor infos and the padding before the data section. */
void gguf_header(const GgufWriter *w, Buf *out);
/* Zero bytes that follow a tensor of `bytes` bytes. */
static inline size_t gguf_padding(uint64_t bytes)
{
    return (size_t)((GGUF_ALIGN - bytes % GGUF_ALIGN) % GGUF_ALIGN);
}

/* --------------------------------------------------------------------------------------- */
/* Reader (of a file held in memory): every count, length and offset is checked against the
** buffer; a bad file gives -2 and "NAME: offset N: what" (naming the key or tensor). */
typedef struct {
    char *key;                /* NUL-terminated (a key with a NUL byte is refused) */
    int type;                 /* GGUF_* */
    int elem;                 /* arrays: element type */
    uint64_t count;           /* arrays: elements */
    const unsigned char *val; /* the value's bytes in the buffer (arrays: the first element) */
    uint64_t pos;             /* offset of the key in the file */
} GgufKv;

typedef struct {
    char *name;
    int ndim;
    uint64_t ne[GGUF_MAX_DIMS];
    int type;
    uint64_t offset; /* in the data section */
    uint64_t bytes;
    uint64_t pos; /* offset of its info in the file */
} GgufTensor;

typedef struct {
    char *path;
    const unsigned char *base;
    size_t size;
    uint32_t version;
    uint32_t align;
    GgufKv *kv;
    uint64_t n_kv;
    GgufTensor *t;
    uint64_t n_tensors;
    uint64_t data_off; /* start of the data section in the file */
} GgufFile;

int gguf_parse(GgufFile *g, const char *name, const void *buf, size_t size);
void gguf_close(GgufFile *g);
const GgufKv *gguf_find_kv(const GgufFile *g, const char *key);
const GgufTensor *gguf_find_tensor(const GgufFile *g, const char *name);
/* Values: 0, or -1 if absent or of another type. A string is returned as pointer + length. */
int gguf_get_u32(const GgufFile *g, const char *key, uint32_t *out);
int gguf_get_str(const GgufFile *g, const char *key, const char **s, size_t *n);
/* Element i of a string array (the caller checked i < count). */
void gguf_array_str(const GgufKv *kv, uint64_t i, const char **s, size_t *n);

#endif
