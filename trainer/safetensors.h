// SPDX-License-Identifier: MIT
/*
** safetensors.h: read and write the safetensors format (Hugging Face's weight files).
**
** A file is: an 8-byte little-endian header length N, N bytes of JSON, then the data section.
** The JSON maps each tensor name to {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}
** (offsets relative to the data section, e - b = product(shape) * size(dtype)); an optional
** "__metadata__" holds string pairs (transformers wants {"format": "pt"}). Tensors are raw
** little-endian, row-major.
**
** The reader maps the file and checks all of it before anything is read: the header length
** against the file size, the JSON, each entry's dtype, shape and offsets (inside the data
** section, size matching the shape), duplicate names and overlapping tensors. A bad file is
** reported as "FILE: offset N: tensor 'NAME': what is wrong" and the data is never touched
** outside the mapping.
*/
#ifndef CM_SAFETENSORS_H
#define CM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

enum {
    ST_F64,
    ST_F32,
    ST_F16,
    ST_BF16,
    ST_I64,
    ST_I32,
    ST_I16,
    ST_I8,
    ST_U64,
    ST_U32,
    ST_U16,
    ST_U8,
    ST_BOOL,
    ST_F8_E4M3,
    ST_F8_E5M2,
    ST_NTYPES
};

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u * 1000 * 1000) /* the reference implementation's bound */

typedef struct {
    char *name;                  /* decoded tensor name */
    int dtype;                   /* ST_* */
    int ndim;                    /* dimensions (0: a scalar) */
    uint64_t shape[ST_MAX_DIMS]; /* sizes, outermost first */
    uint64_t begin, end;         /* byte range in the data section */
    uint64_t header_pos;         /* where its entry is in the file (for messages) */
} StTensor;

typedef struct {
    char *path;                /* name used in messages */
    const unsigned char *base; /* the whole file (mapped, or the caller's buffer) */
    size_t size;               /* its size */
    int mapped;                /* base is our mmap */
    uint64_t data_off;         /* 8 + header length: start of the data section */
    StTensor *t;               /* tensors in header order */
    int n;                     /* count */
} StFile;

/* Name and element size of a dtype; parse a dtype name (-1 unknown). */
const char *st_dtype_name(int dtype);
int st_dtype_size(int dtype);
int st_dtype_parse(const char *s, size_t n);

/* Map and check path. 0; -1 cannot read (message); -2 not a valid file (message). */
int st_open(StFile *f, const char *path);
/* Check a file held in memory (the buffer must outlive f). Same returns. */
int st_parse(StFile *f, const char *name, const void *buf, size_t size);
void st_close(StFile *f);

const StTensor *st_find(const StFile *f, const char *name);
/* Offset of a tensor's first byte in the file. */
static inline uint64_t st_file_offset(const StFile *f, const StTensor *t)
{
    return f->data_off + t->begin;
}
/* Elements of a tensor. */
uint64_t st_numel(const StTensor *t);
/* Convert an F32, F16 or BF16 tensor to f32 into out (st_numel floats). 0, or -2 after a
** message naming the file, tensor and offset for any other dtype. */
int st_read_f32(const StFile *f, const StTensor *t, float *out);
/* The tensor's values in place, when they are F32 in this host's byte order and aligned for
** float (the mapped file read without a copy); else NULL (st_read_f32 then). */
const float *st_f32_view(const StFile *f, const StTensor *t);

/* Writer. A tensor to be written: its data follow the header in the order given. */
typedef struct {
    const char *name;
    int dtype;
    int ndim;
    uint64_t shape[ST_MAX_DIMS];
} StEntry;

uint64_t st_entry_bytes(const StEntry *e);
/* The header for these entries (contiguous, in order): the 8-byte length, the JSON with
** metadata_json (an object's text, or NULL) as "__metadata__", spaces to an 8-byte boundary. */
void st_header(Buf *out, const StEntry *e, int n, const char *metadata_json);

#endif
