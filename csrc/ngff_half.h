/* IEEE binary16 <-> binary64, shared by the kernels that read or write float16 (render,
 * downsample). */
#ifndef NGFF_HALF_H
#define NGFF_HALF_H

#include <stdint.h>
#include <string.h>

/* IEEE binary16 <-> binary64. Widening is exact; narrowing rounds to nearest, ties to even,
 * overflowing to infinity as numpy's astype(float16) does. */
static inline double ngff_half_to_double(uint16_t h)
{
    uint64_t sign = (uint64_t)(h >> 15) << 63;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (e == 0) {
        v = (double)m * 5.9604644775390625e-08; /* m * 2**-24, exact */
        return (h >> 15) ? -v : v;
    }
    uint64_t bits;
    if (e == 31)
        bits = sign | 0x7ff0000000000000ull | ((uint64_t)m << 42) | (m ? 0x0008000000000000ull : 0);
    else
        bits = sign | ((uint64_t)(e - 15 + 1023) << 52) | ((uint64_t)m << 42);
    memcpy(&v, &bits, 8);
    return v;
}

static inline uint16_t ngff_double_to_half(double d)
{
    uint64_t b;
    memcpy(&b, &d, 8);
    uint16_t sign = (uint16_t)((b >> 48) & 0x8000);
    uint64_t a = b & 0x7fffffffffffffffull;
    if (a >= 0x7ff0000000000000ull) /* inf, or NaN (kept quiet, sign kept) */
        return (uint16_t)(sign | (a > 0x7ff0000000000000ull ? 0x7e00 : 0x7c00));
    int e = (int)(a >> 52) - 1023;
    if (e > 15)
        return (uint16_t)(sign | 0x7c00);
    uint64_t mant = (a & 0xfffffffffffffull) | 0x10000000000000ull;
    int shift;
    uint64_t h;
    if (e >= -14) {
        shift = 42;
        h = ((uint64_t)(e + 15) << 10) | ((mant >> 42) & 0x3ff);
    } else {
        shift = 28 - e; /* subnormal: units of 2**-24 */
        if (shift > 54)
            return sign; /* below a quarter of the smallest subnormal */
        h = mant >> shift;
    }
    uint64_t rem = mant & ((1ull << shift) - 1), half = 1ull << (shift - 1);
    if (rem > half || (rem == half && (h & 1)))
        h++; /* a carry into the exponent is right, up to infinity (0x7c00) */
    return (uint16_t)(sign | h);
}

#endif
