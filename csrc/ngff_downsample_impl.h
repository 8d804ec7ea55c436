/* Internals shared by ngff_downsample.c (checks, mean, nearest, mode) and
 * ngff_downsample_gauss.c (gaussian). Not part of the public C surface. */
#ifndef NGFF_DOWNSAMPLE_IMPL_H
#define NGFF_DOWNSAMPLE_IMPL_H

#include "ngff_half.h"
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


/* One output row of mode (ngff_downsample_mode.c): rows are the nrows input rows of its
 * blocks (at the first block's first pixel), s their element stride, f the factor along
 * them, nx outputs, the last block last_w wide; vals holds one block of dtype values. */
void ngff_ds_mode_row(int32_t dtype, const uint8_t *const *rows, int64_t nrows, int64_t s, int64_t f,
                      int64_t nx, int64_t last_w, void *vals, uint8_t *out, int64_t os);

/* Gaussian: in ngff_downsample_gauss.c. The context is checked. */
ngff_status ngff_ds_gaussian(ngff_pool *pool, const ds_ctx *c);

#endif
