/* Regular chunk grid: which chunks a box selection touches, the boxes, and chunk keys. */
#ifndef NGFF_GRID_H
#define NGFF_GRID_H

#include <stddef.h>
#include <stdint.h>
#include "ngff_status.h"

#define NGFF_MAX_DIMS 32

/* Per touched chunk, `box` holds 3*ndim int64: start of the box inside the chunk, the box
 * shape, and the box's start in the output (relative to sel_start). Boxes are half-open. */
#define NGFF_BOX_INNER(box, ndim) (box)
#define NGFF_BOX_SHAPE(box, ndim) ((box) + (ndim))
#define NGFF_BOX_OUT(box, ndim) ((box) + 2 * (ndim))

/* Number of chunks touched by [sel_start, sel_stop) (0 if the selection is empty), or -1 if
 * the arguments are invalid or the count overflows int64. */
int64_t ngff_grid_count(int32_t ndim, const int64_t *shape, const int64_t *chunk_shape,
                        const int64_t *sel_start, const int64_t *sel_stop);

/* Fills chunk_coords (n*ndim) and boxes (n*3*ndim) for the n chunks touched, in C order of
 * chunk coordinates. n must be ngff_grid_count(...). */
ngff_status ngff_grid_plan(int32_t ndim, const int64_t *shape, const int64_t *chunk_shape,
                           const int64_t *sel_start, const int64_t *sel_stop, int64_t n,
                           int64_t *chunk_coords, int64_t *boxes);

enum ngff_key_encoding {
    NGFF_KEY_V2 = 0,      /* "1.2.3" (or "1/2/3"); 0-d array: "0" */
    NGFF_KEY_DEFAULT = 1, /* "c/1/2/3" (or "c.1.2.3"); 0-d array: "c" */
};

/* Writes the chunk key (no NUL) into buf; returns its length, or -1 if cap is too small or
 * the arguments are invalid. */
int64_t ngff_chunk_key(int32_t encoding, char separator, int32_t ndim, const int64_t *coords,
                       char *buf, size_t cap);

#endif
