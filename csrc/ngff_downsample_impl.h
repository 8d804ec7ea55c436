/* Internals shared by ngff_downsample.c (checks, mean, nearest, mode) and
 * ngff_downsample_gauss.c (gaussian). Not part of the public C surface. */
#ifndef NGFF_DOWNSAMPLE_IMPL_H
#define NGFF_DOWNSAMPLE_IMPL_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "ngff_downsample.h"
#include "ngff_grid.h"

/* A checked call: every array holds ndim entries; `in` points at pixel in_start. */
typedef struct ds_ctx {
    int32_t method, dtype, ndim, lanes; /* lanes: 2 for complex (real, imaginary), else 1 */
    int64_t itemsize;
    int64_t full[NGFF_MAX_DIMS], fac[NGFF_MAX_DIMS];
    const uint8_t *in;
    int64_t in_start[NGFF_MAX_DIMS], in_shape[NGFF_MAX_DIMS], in_strides[NGFF_MAX_DIMS];
    uint8_t *out;
    int64_t out_start[NGFF_MAX_DIMS], out_shape[NGFF_MAX_DIMS], out_strides[NGFF_MAX_DIMS];
    int32_t threads; /* of the pool (1 without one) */
} ds_ctx;

/* Splits n_items items (each about `work` units) into tasks of at least ~min_work units,
 * a few per thread so uneven tasks still balance. Returns the items per task. */
static inline int64_t ds_items_per_task(int64_t n_items, int64_t work, int32_t threads)
{
    const int64_t min_work = 1 << 15;
    int64_t per = (n_items + (int64_t)threads * 4 - 1) / ((int64_t)threads * 4);
    int64_t floor_items = work > 0 ? (min_work + work - 1) / work : 1;
    if (per < floor_items)
        per = floor_items;
    return per < 1 ? 1 : per;
}

/* IEEE binary16 <-> binary64. Widening is exact; narrowing rounds to nearest, ties to even,
 * overflowing to infinity as numpy's astype(float16) does. */
static inline double ds_half_to_double(uint16_t h)
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

static inline uint16_t ds_double_to_half(double d)
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

/* One output row of mode (ngff_downsample_mode.c): rows are the nrows input rows of its
 * blocks (at the first block's first pixel), s their element stride, f the factor along
 * them, nx outputs, the last block last_w wide; vals holds one block of dtype values. */
void ngff_ds_mode_row(int32_t dtype, const uint8_t *const *rows, int64_t nrows, int64_t s, int64_t f,
                      int64_t nx, int64_t last_w, void *vals, uint8_t *out, int64_t os);

/* Gaussian: in ngff_downsample_gauss.c. The context is checked. */
ngff_status ngff_ds_gaussian(ngff_pool *pool, const ds_ctx *c);

#endif
