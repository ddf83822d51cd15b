// SPDX-License-Identifier: MIT
/*
** half.h: IEEE-754 binary16 (f16) and bfloat16 (bf16) conversions for the model interchange
** formats (safetensors, GGUF). f32 -> f16 and f32 -> bf16 round to nearest, ties to even (as
** PyTorch's .half() and .bfloat16() do); f16 overflow becomes infinity, tiny values become
** f16 subnormals or zero; NaN stays NaN. The way back is exact.
*/
#ifndef CM_HALF_H
#define CM_HALF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t half_f32_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static inline float half_bits_f32(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* f32 -> f16 bits, round to nearest even. */
static inline uint16_t f16_from_f32(float f)
{
    uint32_t x = half_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00;  /* NaN (quiet) */
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* >= 65520: infinity */
    if (ax < 0x38800000u) {                      /* below 2^-14: subnormal */
        /* units of 2^-24; the scaling is exact and nearbyintf rounds to even (1024 becomes
        ** the smallest normal, whose bits are 0x400: still right) */
        float units = nearbyintf(half_bits_f32(ax) * 16777216.0f);
        return sign | (uint16_t)units;
    }
    uint32_t h = ((ax >> 23) - 112) << 10 | (ax & 0x7fffffu) >> 13;
    uint32_t rest = ax & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1)))
        h++; /* a carry into the exponent is right */
    return sign | (uint16_t)h;
}

/* f16 bits -> f32 (exact). */
static inline float f32_from_f16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) {
        float v = (float)m * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    if (e == 31) return half_bits_f32(sign | 0x7f800000u | m << 13);
    return half_bits_f32(sign | (e + 112) << 23 | m << 13);
}

/* f32 -> bf16 bits, round to nearest even. */
static inline uint16_t bf16_from_f32(float f)
{
    uint32_t x = half_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(x >> 16 | 0x40); /* NaN (quiet) */
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* bf16 bits -> f32 (exact). */
static inline float f32_from_bf16(uint16_t b)
{
    return half_bits_f32((uint32_t)b << 16);
}

#endif
