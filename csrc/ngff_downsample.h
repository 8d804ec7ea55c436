/* Downsampling kernels for OME-Zarr pyramids (issue 16): mean, nearest, mode and gaussian,
 * any integer factor per axis, over a region of the image so slabs and chunks can be computed
 * apart with no seams. The exact rules are in docs/design.md ("Downsampling"). Never touches
 * Python. */
#ifndef NGFF_DOWNSAMPLE_H
#define NGFF_DOWNSAMPLE_H

#include <stdint.h>
#include "ngff_pool.h"
#include "ngff_status.h"

enum ngff_ds_method { NGFF_DS_MEAN = 0, NGFF_DS_NEAREST = 1, NGFF_DS_MODE = 2, NGFF_DS_GAUSSIAN = 3 };
enum ngff_ds_dtype { NGFF_DS_BOOL = 0, NGFF_DS_INT8, NGFF_DS_UINT8, NGFF_DS_INT16, NGFF_DS_UINT16, NGFF_DS_INT32,
                     NGFF_DS_UINT32, NGFF_DS_INT64, NGFF_DS_UINT64, NGFF_DS_FLOAT16, NGFF_DS_FLOAT32,
                     NGFF_DS_FLOAT64, NGFF_DS_COMPLEX64, NGFF_DS_COMPLEX128, NGFF_DS_DTYPE_COUNT };

/* Computes the output pixels [out_start, out_start + out_shape) of the level below an image of full_shape (the
   previous level; output level shape is ceil(full_shape / factors)). `in` holds the input box [in_start,
   in_start + in_shape) of the full image (native byte order, any strides incl. negative), which must contain every
   input pixel those outputs need: their blocks (mean/mode), their first pixels (nearest), or their blocks' first
   pixels +- radius clipped to the image (gaussian), i.e. ngff_downsample_input_box. Writes `out` (out_shape, any
   strides; distinct pixels must not alias, and out must not overlap in). ndim 1..NGFF_MAX_DIMS. The work is split
   over the pool (pool NULL: the calling thread); many threads may call at once. Never touches Python. Checks every
   argument (shapes, boxes inside the image, input box covering what is needed, factors >= 1, mode on integer or
   bool data only) -> NGFF_ERR_INVALID_ARGUMENT with a message in `detail` (NGFF_DETAIL_CAP bytes);
   NGFF_ERR_OVERFLOW when a size does not fit 64 bits; NGFF_ERR_NOMEM. `out` is untouched on an argument error. */
ngff_status ngff_downsample(ngff_pool *pool, int32_t method, int32_t dtype, int32_t ndim,
                            const int64_t *full_shape, const int64_t *factors,
                            const uint8_t *in, const int64_t *in_start, const int64_t *in_shape,
                            const int64_t *in_strides,
                            uint8_t *out, const int64_t *out_start, const int64_t *out_shape,
                            const int64_t *out_strides, char *detail);
/* The input box the outputs [out_start, out_start+out_shape) need (halo included, clipped to the image): per axis
   [f*o0, min(n, f*o1)) for mean and mode, [f*o0, f*(o1-1)+1) for nearest, [max(0, f*o0-r), min(n, f*(o1-1)+r+1))
   for gaussian (r = int(4*f/2 + 0.5) = 2f when f > 1, else 0). An empty output axis gives an empty box at
   min(f*o0, n). Arguments as ngff_downsample accepts them (otherwise the box is unspecified but computed without
   overflow or undefined behaviour). */
void ngff_downsample_input_box(int32_t method, int32_t ndim, const int64_t *full_shape, const int64_t *factors,
                               const int64_t *out_start, const int64_t *out_shape,
                               int64_t *in_start, int64_t *in_shape);

#endif
