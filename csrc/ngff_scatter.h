/* Copies a decoded chunk box (or a fill value) into a strided box of the caller's output. */
#ifndef NGFF_SCATTER_H
#define NGFF_SCATTER_H

#include <stdint.h>

/* Copies the box `shape` from src (byte strides src_strides, any order: a transposed chunk is
 * just other strides) to dst (byte strides dst_strides). byteswap is the number of components
 * whose bytes are reversed separately (0 none, 1 scalars, 2 complex). itemsize is 1..16.
 * Strides may be negative; src and dst must not overlap. */
void ngff_scatter(int32_t ndim, const int64_t *shape, int32_t itemsize, int32_t byteswap,
                  const uint8_t *src, const int64_t *src_strides, uint8_t *dst,
                  const int64_t *dst_strides);

/* Writes the one-element `value` into every element of the box. */
void ngff_fill(int32_t ndim, const int64_t *shape, int32_t itemsize, const uint8_t *value,
               uint8_t *dst, const int64_t *dst_strides);

/* 1 if the box `shape` at dst_strides is one C-contiguous run of bytes. */
int ngff_box_is_contiguous(int32_t ndim, const int64_t *shape, int32_t itemsize,
                           const int64_t *strides);

#endif
