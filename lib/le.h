// SPDX-License-Identifier: MIT
/*
** le.h: little-endian loads and stores for every on-disk header of codemill (shards, checkpoints,
** token streams, safetensors, GGUF). The formats are little-endian whatever the host; on x86-64
** and little-endian Arm these compile to plain unaligned loads and stores.
*/
#ifndef CM_LE_H
#define CM_LE_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define CM_LE_SWAP16(x) __builtin_bswap16(x)
#define CM_LE_SWAP32(x) __builtin_bswap32(x)
#define CM_LE_SWAP64(x) __builtin_bswap64(x)
#else
#define CM_LE_SWAP16(x) (x)
#define CM_LE_SWAP32(x) (x)
#define CM_LE_SWAP64(x) (x)
#endif

static inline uint16_t le_get16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return CM_LE_SWAP16(v);
}

static inline uint32_t le_get32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return CM_LE_SWAP32(v);
}

static inline uint64_t le_get64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return CM_LE_SWAP64(v);
}

static inline void le_put16(void *p, uint16_t v)
{
    v = CM_LE_SWAP16(v);
    memcpy(p, &v, sizeof v);
}

static inline void le_put32(void *p, uint32_t v)
{
    v = CM_LE_SWAP32(v);
    memcpy(p, &v, sizeof v);
}

static inline void le_put64(void *p, uint64_t v)
{
    v = CM_LE_SWAP64(v);
    memcpy(p, &v, sizeof v);
}

/* float and double travel as their IEEE-754 bit patterns */
static inline float le_getf32(const void *p)
{
    uint32_t u = le_get32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline void le_putf32(void *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    le_put32(p, u);
}

static inline double le_getf64(const void *p)
{
    uint64_t u = le_get64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline void le_putf64(void *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    le_put64(p, u);
}

#endif
