/*
 * The RGBA renderer (csrc/ngff_render.h): dtype, channel count, image size, input and output
 * strides (any axis order, reversed axes, gaps, zero strides) and channel windows, colours,
 * gamma and inversion from the input, over small buffers.
 *
 * Input (fuzz_common.h reader; tests/fuzz_replay.py parse_render mirrors it):
 *   u8 dtype % 11 | u8 channels % 5 | u8 height % 7 | u16 width % 300
 *   input layout:  u8 axis order of (c, y, x) in memory (% 6), u8 reversed axes (bits 0-2),
 *                  u8 steps (2 bits per axis: 1 + b % 3), u8 zero-stride axes (bits 0-2)
 *   output layout: the same four bytes for (y, x, component)
 *   u8 pool % 3: none, 1 thread, 2 threads
 *   per channel: u8 mode, then
 *     window (bits 0-1): 0 two u16 as int16; 1 two u32 as int32 / 16; 2 two raw f64;
 *                        3 start -(u8 % 3), end 2**(u8 % 40) (wide: the data-range scan)
 *     colour (bit 5): three raw f64, else three u8
 *     gamma (bits 3-4): 1 0.25 + u8 / 64, 2 a raw f64, else 1
 *     inverted: bit 6 a raw u32 (only 0 and 1 are valid), else bit 2
 *   payload: the samples, repeated to fill the input buffer (zeros if empty)
 * Checks: the status is exactly the documented one (bad channel, overlapping output); on
 * success every output byte equals a reference that follows the formula in ngff_render.h
 * in double arithmetic, sample by sample; bytes the output strides do not address are
 * never written.
 */
#include <math.h>

#include "fuzz_common.h"
#include "ngff_render.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static ngff_pool *pools[3];
static const int itemsize_of[NGFF_RENDER_DTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 8, 8, 2, 4, 8};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    pools[1] = ngff_pool_create(1);
    pools[2] = ngff_pool_create(2);
    if (!pools[1] || !pools[2])
        abort();
    return 0;
}

typedef struct layout {
    int64_t shape[3];
    int64_t strides[3];
    int64_t origin; /* offset of element (0, 0, 0) in the buffer */
    int64_t bytes;  /* buffer size */
} layout;

static void read_layout(fz_in *in, layout *l, int64_t item)
{
    static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                    {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    const int *perm = perms[fz_u8(in) % 6];
    uint8_t flips = fz_u8(in), steps = fz_u8(in), zero = fz_u8(in);
    int64_t alloc[3], s = item;
    for (int d = 0; d < 3; d++)
        alloc[d] = l->shape[d] * (1 + (steps >> (2 * d) & 3) % 3);
    for (int i = 2; i >= 0; i--) { /* C order over the allocation, memory order perm */
        int d = perm[i];
        l->strides[d] = s * (1 + (steps >> (2 * d) & 3) % 3);
        s *= alloc[d];
    }
    l->bytes = s;
    l->origin = 0;
    for (int d = 0; d < 3; d++) {
        if (zero >> d & 1)
            l->strides[d] = 0;
        if (flips >> d & 1 && l->shape[d] > 0) {
            l->origin += (l->shape[d] - 1) * l->strides[d];
            l->strides[d] = -l->strides[d];
        }
    }
}

static double half_to_double(uint16_t h)
{
    int e = h >> 10 & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return h >> 15 ? -v : v;
}

static double sample(const uint8_t *p, int dtype)
{
    union {
        uint8_t b[8];
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
        float f32;
        double f64;
    } u;
    memcpy(u.b, p, (size_t)itemsize_of[dtype]);
    switch (dtype) {
    case NGFF_RENDER_UINT8: return u.b[0];
    case NGFF_RENDER_INT8: return (int8_t)u.b[0];
    case NGFF_RENDER_UINT16: return u.u16;
    case NGFF_RENDER_INT16: return u.i16;
    case NGFF_RENDER_UINT32: return u.u32;
    case NGFF_RENDER_INT32: return u.i32;
    case NGFF_RENDER_UINT64: return (double)u.u64;
    case NGFF_RENDER_INT64: return (double)u.i64;
    case NGFF_RENDER_FLOAT16: return half_to_double(u.u16);
    case NGFF_RENDER_FLOAT32: return u.f32;
    default: return u.f64;
    }
}

static int channel_valid(const ngff_render_channel *c)
{
    if (!isfinite(c->start) || !isfinite(c->end) || !isfinite(c->gamma) || !(c->gamma > 0))
        return 0;
    if (c->end > c->start && !isfinite(c->end - c->start))
        return 0;
    for (int k = 0; k < 3; k++)
        if (!(c->color[k] >= 0 && c->color[k] <= 255))
            return 0;
    return c->inverted == 0 || c->inverted == 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    int dtype = fz_u8(&in) % NGFF_RENDER_DTYPE_COUNT;
    int64_t nc = fz_u8(&in) % 5, h = fz_u8(&in) % 7, w = fz_u16(&in) % 300;
    int64_t item = itemsize_of[dtype];
    layout li = {.shape = {nc, h, w}}, lo = {.shape = {h, w, 4}};
    read_layout(&in, &li, item);
    read_layout(&in, &lo, 1);
    ngff_pool *pool = pools[fz_u8(&in) % 3];
    ngff_render_channel ch[4];
    int valid = 1;
    for (int64_t c = 0; c < nc; c++) {
        ngff_render_channel *k = &ch[c];
        uint8_t mode = fz_u8(&in);
        switch (mode & 3) {
        case 0:
            k->start = (int16_t)fz_u16(&in);
            k->end = (int16_t)fz_u16(&in);
            break;
        case 1:
            k->start = (int32_t)fz_u32(&in) / 16.0;
            k->end = (int32_t)fz_u32(&in) / 16.0;
            break;
        case 2:
            k->start = fz_f64(&in);
            k->end = fz_f64(&in);
            break;
        default:
            k->start = -(double)(fz_u8(&in) % 3);
            k->end = ldexp(1.0, fz_u8(&in) % 40);
            break;
        }
        for (int j = 0; j < 3; j++)
            k->color[j] = mode & 0x20 ? fz_f64(&in) : fz_u8(&in);
        switch (mode >> 3 & 3) {
        case 1: k->gamma = 0.25 + fz_u8(&in) / 64.0; break;
        case 2: k->gamma = fz_f64(&in); break;
        default: k->gamma = 1.0; break;
        }
        k->inverted = mode & 0x40 ? (int32_t)fz_u32(&in) : mode >> 2 & 1;
        valid &= channel_valid(k);
    }

    /* the input buffer, samples from the payload */
    size_t in_bytes = (size_t)li.bytes;
    uint8_t *ibuf = malloc(in_bytes ? in_bytes : 1);
    for (size_t i = 0; i < in_bytes; i++)
        ibuf[i] = in.n ? in.p[i % in.n] : 0;
    size_t out_bytes = (size_t)lo.bytes;
    uint8_t *obuf = malloc(out_bytes ? out_bytes : 1);
    for (size_t i = 0; i < out_bytes; i++)
        obuf[i] = (uint8_t)(0xA7 + 13 * i);

    ngff_status st = ngff_render_rgba(pool, ibuf + li.origin, dtype, nc, h, w, li.strides, ch,
                                      obuf + lo.origin, lo.strides);
    int distinct = 1;
    for (int d = 0; d < 3; d++)
        if (lo.shape[d] > 1 && lo.strides[d] == 0)
            distinct = 0;
    ngff_status want = !valid ? NGFF_ERR_INVALID_ARGUMENT
                       : h == 0 || w == 0 ? NGFF_OK
                       : !distinct ? NGFF_ERR_INVALID_ARGUMENT
                                   : NGFF_OK;
    FZ_CHECK(st == want, "status %d, expected %d", st, want);

    uint8_t *addressed = calloc(out_bytes ? out_bytes : 1, 1);
    if (st == NGFF_OK) {
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                uint64_t sum[3] = {0, 0, 0};
                for (int64_t c = 0; c < nc; c++) {
                    const ngff_render_channel *k = &ch[c];
                    double v = sample(ibuf + li.origin + c * li.strides[0] + y * li.strides[1] +
                                          x * li.strides[2],
                                      dtype);
                    if (v != v)
                        continue;
                    double t;
                    if (k->end > k->start) {
                        t = (v - k->start) / (k->end - k->start);
                        t = t > 0 ? t : 0;
                        t = t < 1 ? t : 1;
                    } else {
                        t = v > k->start ? 1 : 0;
                    }
                    if (k->inverted)
                        t = 1 - t;
                    if (k->gamma != 1.0)
                        t = pow(t, k->gamma);
                    for (int j = 0; j < 3; j++)
                        sum[j] += (uint64_t)floor(t * k->color[j] + 0.5);
                }
                uint8_t px[4] = {sum[0] > 255 ? 255 : (uint8_t)sum[0],
                                 sum[1] > 255 ? 255 : (uint8_t)sum[1],
                                 sum[2] > 255 ? 255 : (uint8_t)sum[2], 255};
                for (int j = 0; j < 4; j++) {
                    int64_t off = lo.origin + y * lo.strides[0] + x * lo.strides[1] +
                                  j * lo.strides[2];
                    addressed[off] = 1;
                    FZ_CHECK(obuf[off] == px[j],
                             "pixel (%lld, %lld) component %d: %d, expected %d", (long long)y,
                             (long long)x, j, obuf[off], px[j]);
                }
            }
    }
    for (size_t i = 0; i < out_bytes; i++)
        FZ_CHECK(addressed[i] || obuf[i] == (uint8_t)(0xA7 + 13 * i),
                 "output byte %zu was written but is not addressed", i);
    free(addressed);
    free(ibuf);
    free(obuf);
    return 0;
}
