/* Channel compositing: C planes of any numeric dtype → (h, w, 4) uint8 RGBA, with per
 * channel windows, colours, inversion and gamma, blended additively. Row bands run on the
 * worker pool, the calling thread included. Never touches Python. */
#ifndef NGFF_RENDER_H
#define NGFF_RENDER_H

#include <stdint.h>
#include "ngff_pool.h"
#include "ngff_status.h"

/* Input element types (native byte order). */
enum ngff_render_dtype {
    NGFF_RENDER_UINT8 = 0,
    NGFF_RENDER_INT8,
    NGFF_RENDER_UINT16,
    NGFF_RENDER_INT16,
    NGFF_RENDER_UINT32,
    NGFF_RENDER_INT32,
    NGFF_RENDER_UINT64, /* converted to double: exact up to 2**53 */
    NGFF_RENDER_INT64,
    NGFF_RENDER_FLOAT16, /* IEEE binary16 */
    NGFF_RENDER_FLOAT32,
    NGFF_RENDER_FLOAT64,
    NGFF_RENDER_DTYPE_COUNT
};

#define NGFF_RENDER_MAX_CHANNELS 128

/* How one channel is drawn. For a sample x (converted to double):
 *
 *   v = clip((x - start) / (end - start), 0, 1)     if end > start
 *   v = (x > start) ? 1 : 0                          otherwise (a step at start)
 *   v = 1 - v                                        if inverted
 *   v = pow(v, gamma)                                if gamma != 1
 *   contribution[k] = floor(v * color[k] + 0.5)     k = R, G, B (an integer 0..255)
 *
 * and a NaN sample contributes 0 (whatever the inversion). The output pixel is
 * min(255, sum of the channels' contributions) per component, alpha 255. Every step is
 * IEEE double arithmetic in this order, so a NumPy float64 reference gives the same bytes. */
typedef struct ngff_render_channel {
    double start, end; /* window, in input units; finite */
    double color[3];   /* R, G, B weights, each in [0, 255] */
    double gamma;      /* finite, > 0 */
    int32_t inverted;  /* 0 or 1 */
} ngff_render_channel;

/* Composites n_channels planes of height x width samples into out.
 *
 * Sample (c, y, x) is at in + c * in_strides[0] + y * in_strides[1] + x * in_strides[2]
 * (byte strides, any sign, zero allowed), so planar (c, y, x) and interleaved (y, x, c)
 * layouts and views need no copy; samples need not be aligned. Output component k (R, G,
 * B, A) of pixel (y, x) is the byte at
 * out + y * out_strides[0] + x * out_strides[1] + k * out_strides[2] (any sign). Distinct
 * output indices must address distinct bytes, and the output's byte range may not meet the
 * input's. Only those output bytes are written; the input is only read.
 *
 * n_channels may be 0 (black, opaque); at most NGFF_RENDER_MAX_CHANNELS. Tables, a data
 * range scan and row bands run on pool (NULL: the calling thread alone). Returns
 * NGFF_ERR_INVALID_ARGUMENT for a bad dtype, dimension, window, colour or gamma, an output
 * that overlaps itself or the input (out untouched), NGFF_ERR_OVERFLOW when an extent does
 * not fit 64 bits, NGFF_ERR_NOMEM. Thread-safe: many threads may render at once. */
ngff_status ngff_render_rgba(ngff_pool *pool, const uint8_t *in, int32_t dtype,
                             int64_t n_channels, int64_t height, int64_t width,
                             const int64_t in_strides[3], const ngff_render_channel *channels,
                             uint8_t *out, const int64_t out_strides[3]);

#endif
