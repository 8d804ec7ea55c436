/* Channel compositing to RGBA (see ngff_render.h for the arithmetic).
 *
 * Every channel's contribution is a packed integer triple: R in bits 0-15, G in 16-31, B in
 * 32-47, each 0..255, so blending is one 64-bit add per channel and sample followed by one
 * clamp per output pixel (with at most 128 channels a field stays below 2**15, so a signed
 * saturating SSE2 pack clamps four pixels at once).
 *
 * Integer inputs of at most 32 bits take a per-channel lookup table of those triples over
 * the integer values the window distinguishes (values below/above it are clamped to the
 * first/last entry, which have the same contribution), and float16 a table over its 65536
 * bit patterns; each entry is computed by the same function as a direct sample, so the two
 * paths give identical bytes and the choice is only about speed. Other inputs (and tables
 * that would be larger than the image) are computed per sample in double.
 *
 * Work: tables in segments, then bands of rows, each through ngff_pool_for; a band walks its
 * rows in blocks of BLOCK pixels, sums the channels into a small accumulator (pixel by pixel
 * for 1-4 tabled channels of <= 16 bits, the usual case; else one channel at a time), and
 * then packs the block into the output.
 */
#include "ngff_half.h"
#include "ngff_render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Exact equality with a float64 reference needs v * color + 0.5 rounded twice, never fused. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define BLOCK 256
#define BAND_PIXELS 16384   /* about this many pixels per row band task */
#define LUT_SEGMENT 8192    /* table entries per build task */
#define LUT_MAX 65536       /* largest table */
#define LUT_ALWAYS 4096     /* tables this small are always worth building */

#define FIELD_MASK 0x000000FF00FF00FFull

typedef struct chan_plan {
    const uint8_t *base; /* sample (c, 0, 0) */
    double start, end;
    double width; /* end - start, > 0 unless step */
    double color[3];
    double gamma;
    int32_t step, inverted, use_gamma;
    uint64_t *lut;  /* NULL: per sample */
    int64_t lut_lo; /* lut[k] is value lut_lo + k (float16: bit pattern k) */
    int64_t lut_n;
    int32_t scan;   /* the window range is wide: narrow it to the data's min..max first */
} chan_plan;

typedef struct render_ctx {
    int32_t dtype;
    int64_t n_channels, height, width;
    int64_t in_col_stride;
    int64_t in_row_stride;
    chan_plan *chans;
    uint8_t *out;
    int64_t out_strides[3];
    int64_t band_rows;
    int64_t lut_tasks;
    int64_t *ranges; /* scan: per band and channel, the data's min and max */
    int32_t pixel_major; /* 1..4 channels, all tables, dtype of at most 16 bits (not float16) */
} render_ctx;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LITTLE_ENDIAN_HOST 1
#else
#define LITTLE_ENDIAN_HOST 0
#endif

static const int32_t itemsizes[NGFF_RENDER_DTYPE_COUNT] = {
    [NGFF_RENDER_UINT8] = 1,  [NGFF_RENDER_INT8] = 1,    [NGFF_RENDER_UINT16] = 2,
    [NGFF_RENDER_INT16] = 2,  [NGFF_RENDER_UINT32] = 4,  [NGFF_RENDER_INT32] = 4,
    [NGFF_RENDER_UINT64] = 8, [NGFF_RENDER_INT64] = 8,   [NGFF_RENDER_FLOAT16] = 2,
    [NGFF_RENDER_FLOAT32] = 4, [NGFF_RENDER_FLOAT64] = 8,
};

/* ---------------------------------------------------------------------------------------- */
/* samples                                                                                    */

static inline uint8_t ld_u8(const uint8_t *p) { return *p; }
static inline int8_t ld_i8(const uint8_t *p) { return (int8_t)*p; }
#define LOADER(name, T)                                                                         \
    static inline T name(const uint8_t *p)                                                      \
    {                                                                                           \
        T v;                                                                                    \
        memcpy(&v, p, sizeof v);                                                                \
        return v;                                                                               \
    }
LOADER(ld_u16, uint16_t)
LOADER(ld_i16, int16_t)
LOADER(ld_u32, uint32_t)
LOADER(ld_i32, int32_t)
LOADER(ld_u64, uint64_t)
LOADER(ld_i64, int64_t)
LOADER(ld_f32, float)
LOADER(ld_f64, double)


/* The packed contribution of one sample value (the definition in ngff_render.h). */
static inline uint64_t contribution(const chan_plan *c, double x)
{
    if (x != x)
        return 0;
    double v;
    if (c->step) {
        v = x > c->start ? 1.0 : 0.0;
    } else {
        v = (x - c->start) / c->width;
        v = v > 0.0 ? v : 0.0;
        v = v < 1.0 ? v : 1.0;
    }
    if (c->inverted)
        v = 1.0 - v;
    if (c->use_gamma)
        v = pow(v, c->gamma);
    uint64_t r = (uint64_t)(v * c->color[0] + 0.5);
    uint64_t g = (uint64_t)(v * c->color[1] + 0.5);
    uint64_t b = (uint64_t)(v * c->color[2] + 0.5);
    return r | g << 16 | b << 32;
}

/* ---------------------------------------------------------------------------------------- */
/* one channel of a block into the accumulator                                                */

/* acc[i] (+)= f(sample i) for n samples starting at p, cs bytes apart; a separate loop for
 * contiguous samples lets the compiler drop the multiply. */
#define ACCUMULATE(first, n, p, cs, size, expr_of_p)                                            \
    do {                                                                                        \
        if ((cs) == (size)) {                                                                   \
            if (first)                                                                          \
                for (int64_t i = 0; i < (n); i++) {                                             \
                    const uint8_t *q = (p) + i * (size);                                        \
                    acc[i] = (expr_of_p);                                                       \
                }                                                                               \
            else                                                                                \
                for (int64_t i = 0; i < (n); i++) {                                             \
                    const uint8_t *q = (p) + i * (size);                                        \
                    acc[i] += (expr_of_p);                                                      \
                }                                                                               \
        } else {                                                                                \
            if (first)                                                                          \
                for (int64_t i = 0; i < (n); i++) {                                             \
                    const uint8_t *q = (p) + i * (cs);                                          \
                    acc[i] = (expr_of_p);                                                       \
                }                                                                               \
            else                                                                                \
                for (int64_t i = 0; i < (n); i++) {                                             \
                    const uint8_t *q = (p) + i * (cs);                                          \
                    acc[i] += (expr_of_p);                                                      \
                }                                                                               \
        }                                                                                       \
    } while (0)

/* table index of an integer sample: clamped to [0, n); branch-free, as samples beyond the
 * window are common and unpredictable */
static inline int64_t lut_index(int64_t v, int64_t lo, int64_t n)
{
    int64_t k = v - lo;
    k &= ~(k >> 63);         /* below: 0 */
    int64_t over = k - (n - 1);
    return k - (over & ~(over >> 63)); /* above: n - 1 */
}

/* A linear channel (a window, no gamma) per sample, for the dtypes without tables: the
 * samples of the block as doubles first, then the formula without branches (the compiler
 * vectorises it; the division stays a division, so the bytes equal contribution()'s). */
#define LOAD_BLOCK(load, size)                                                                  \
    do {                                                                                        \
        if (cs == (size))                                                                       \
            for (int64_t i = 0; i < n; i++)                                                     \
                xb[i] = (double)load(p + i * (size));                                           \
        else                                                                                    \
            for (int64_t i = 0; i < n; i++)                                                     \
                xb[i] = (double)load(p + i * cs);                                               \
    } while (0)

static inline uint64_t linear(double x, double s, double w, double ia, double ib, double cr,
                              double cg, double cb)
{
    double t = (x - s) / w;
    t = t > 0.0 ? t : 0.0;
    t = t < 1.0 ? t : 1.0;
    t = ia + ib * t; /* t, or exactly 1 - t */
    uint64_t v = (uint64_t)(uint32_t)(int32_t)(t * cr + 0.5) |
                 (uint64_t)(uint32_t)(int32_t)(t * cg + 0.5) << 16 |
                 (uint64_t)(uint32_t)(int32_t)(t * cb + 0.5) << 32;
    return x == x ? v : 0;
}

static void accumulate_linear(const render_ctx *r, const chan_plan *c, const uint8_t *p,
                              int64_t n, uint64_t *restrict acc, int first)
{
    const int64_t cs = r->in_col_stride;
    double xb[BLOCK];
    switch (r->dtype) {
    case NGFF_RENDER_UINT8: LOAD_BLOCK(ld_u8, 1); break;
    case NGFF_RENDER_INT8: LOAD_BLOCK(ld_i8, 1); break;
    case NGFF_RENDER_UINT16: LOAD_BLOCK(ld_u16, 2); break;
    case NGFF_RENDER_INT16: LOAD_BLOCK(ld_i16, 2); break;
    case NGFF_RENDER_UINT32: LOAD_BLOCK(ld_u32, 4); break;
    case NGFF_RENDER_INT32: LOAD_BLOCK(ld_i32, 4); break;
    case NGFF_RENDER_UINT64: LOAD_BLOCK(ld_u64, 8); break;
    case NGFF_RENDER_INT64: LOAD_BLOCK(ld_i64, 8); break;
    case NGFF_RENDER_FLOAT16:
        for (int64_t i = 0; i < n; i++)
            xb[i] = ngff_half_to_double(ld_u16(p + i * cs));
        break;
    case NGFF_RENDER_FLOAT32: LOAD_BLOCK(ld_f32, 4); break;
    default: LOAD_BLOCK(ld_f64, 8); break;
    }
    const double s = c->start, w = c->width;
    const double ia = c->inverted ? 1.0 : 0.0, ib = c->inverted ? -1.0 : 1.0;
    const double cr = c->color[0], cg = c->color[1], cb = c->color[2];
    int64_t i = 0;
#if defined(__SSE2__)
    /* two samples at a time; maxpd(t, 0) is t > 0 ? t : 0 and minpd(t, 1) is t < 1 ? t : 1,
     * NaN included, so this is linear() lane by lane */
    const __m128d S = _mm_set1_pd(s), W = _mm_set1_pd(w), IA = _mm_set1_pd(ia),
                  IB = _mm_set1_pd(ib), CR = _mm_set1_pd(cr), CG = _mm_set1_pd(cg),
                  CB = _mm_set1_pd(cb), HALF = _mm_set1_pd(0.5), ZERO = _mm_setzero_pd(),
                  ONE = _mm_set1_pd(1.0);
    for (; i + 2 <= n; i += 2) {
        __m128d x = _mm_loadu_pd(xb + i);
        __m128d t = _mm_div_pd(_mm_sub_pd(x, S), W);
        t = _mm_min_pd(_mm_max_pd(t, ZERO), ONE);
        t = _mm_add_pd(IA, _mm_mul_pd(IB, t));
        __m128i r32 = _mm_cvttpd_epi32(_mm_add_pd(_mm_mul_pd(t, CR), HALF));
        __m128i g32 = _mm_cvttpd_epi32(_mm_add_pd(_mm_mul_pd(t, CG), HALF));
        __m128i b32 = _mm_cvttpd_epi32(_mm_add_pd(_mm_mul_pd(t, CB), HALF));
        __m128i rg = _mm_or_si128(r32, _mm_slli_epi32(g32, 16));
        __m128i v = _mm_unpacklo_epi32(rg, b32); /* per 64-bit lane: r | g << 16 | b << 32 */
        v = _mm_and_si128(v, _mm_castpd_si128(_mm_cmpeq_pd(x, x))); /* NaN: 0 */
        __m128i *a = (__m128i *)(acc + i);
        if (first)
            _mm_storeu_si128(a, v);
        else
            _mm_storeu_si128(a, _mm_add_epi64(_mm_loadu_si128(a), v));
    }
#endif
    if (first)
        for (; i < n; i++)
            acc[i] = linear(xb[i], s, w, ia, ib, cr, cg, cb);
    else
        for (; i < n; i++)
            acc[i] += linear(xb[i], s, w, ia, ib, cr, cg, cb);
}

static void accumulate(const render_ctx *r, const chan_plan *c, const uint8_t *p, int64_t n,
                       uint64_t *restrict acc, int first)
{
    const int64_t cs = r->in_col_stride;
    const uint64_t *lut = c->lut;
    const int64_t lo = c->lut_lo, ln = c->lut_n;
    if (lut) {
        switch (r->dtype) {
        case NGFF_RENDER_UINT8: /* full table: lo 0, 256 entries */
            ACCUMULATE(first, n, p, cs, 1, lut[ld_u8(q)]);
            return;
        case NGFF_RENDER_INT8: /* full table: lo -128 */
            ACCUMULATE(first, n, p, cs, 1, lut[(uint8_t)(ld_u8(q) ^ 0x80u)]);
            return;
        case NGFF_RENDER_FLOAT16: /* full table over bit patterns */
            ACCUMULATE(first, n, p, cs, 2, lut[ld_u16(q)]);
            return;
        case NGFF_RENDER_UINT16:
            ACCUMULATE(first, n, p, cs, 2, lut[lut_index(ld_u16(q), lo, ln)]);
            return;
        case NGFF_RENDER_INT16:
            ACCUMULATE(first, n, p, cs, 2, lut[lut_index(ld_i16(q), lo, ln)]);
            return;
        case NGFF_RENDER_UINT32:
            ACCUMULATE(first, n, p, cs, 4, lut[lut_index(ld_u32(q), lo, ln)]);
            return;
        case NGFF_RENDER_INT32:
            ACCUMULATE(first, n, p, cs, 4, lut[lut_index(ld_i32(q), lo, ln)]);
            return;
        default:
            break; /* no tables for the others */
        }
    }
    if (!c->step && !c->use_gamma) {
        accumulate_linear(r, c, p, n, acc, first);
        return;
    }
    switch (r->dtype) {
    case NGFF_RENDER_UINT8:
        ACCUMULATE(first, n, p, cs, 1, contribution(c, ld_u8(q)));
        return;
    case NGFF_RENDER_INT8:
        ACCUMULATE(first, n, p, cs, 1, contribution(c, ld_i8(q)));
        return;
    case NGFF_RENDER_UINT16:
        ACCUMULATE(first, n, p, cs, 2, contribution(c, ld_u16(q)));
        return;
    case NGFF_RENDER_INT16:
        ACCUMULATE(first, n, p, cs, 2, contribution(c, ld_i16(q)));
        return;
    case NGFF_RENDER_UINT32:
        ACCUMULATE(first, n, p, cs, 4, contribution(c, ld_u32(q)));
        return;
    case NGFF_RENDER_INT32:
        ACCUMULATE(first, n, p, cs, 4, contribution(c, ld_i32(q)));
        return;
    case NGFF_RENDER_UINT64:
        ACCUMULATE(first, n, p, cs, 8, contribution(c, (double)ld_u64(q)));
        return;
    case NGFF_RENDER_INT64:
        ACCUMULATE(first, n, p, cs, 8, contribution(c, (double)ld_i64(q)));
        return;
    case NGFF_RENDER_FLOAT16:
        ACCUMULATE(first, n, p, cs, 2, contribution(c, ngff_half_to_double(ld_u16(q))));
        return;
    case NGFF_RENDER_FLOAT32:
        ACCUMULATE(first, n, p, cs, 4, contribution(c, ld_f32(q)));
        return;
    case NGFF_RENDER_FLOAT64:
        ACCUMULATE(first, n, p, cs, 8, contribution(c, ld_f64(q)));
        return;
    default:
        return;
    }
}

/* Clamp each 16-bit field to 255 and pack R, G, B, 255 into bytes 0..3 (little-endian). */
static inline uint32_t pack(uint64_t a)
{
    uint64_t hi = (a >> 8) & FIELD_MASK;                        /* non-zero: field > 255 */
    uint64_t over = ((hi + FIELD_MASK) >> 8) & 0x0000000100010001ull; /* 1 per such field */
    uint64_t f = (a & FIELD_MASK) | (over * 0xFF);
    return (uint32_t)(f & 0xFF) | (uint32_t)((f >> 8) & 0xFF00) |
           (uint32_t)((f >> 16) & 0xFF0000) | 0xFF000000u;
}

static void store(const render_ctx *r, const uint64_t *restrict acc, int64_t n,
                  uint8_t *restrict o)
{
    const int64_t ocs = r->out_strides[1], oks = r->out_strides[2];
    if (LITTLE_ENDIAN_HOST && ocs == 4 && oks == 1) {
        int64_t i = 0;
#if defined(__SSE2__)
        /* fields are < 2**15 (at most 128 channels of 255), so a signed saturating pack
         * clamps them; alpha is or-ed in */
        const __m128i alpha = _mm_set1_epi32((int)0xFF000000u);
        for (; i + 4 <= n; i += 4) {
            __m128i lo = _mm_loadu_si128((const __m128i *)(acc + i));
            __m128i hi = _mm_loadu_si128((const __m128i *)(acc + i + 2));
            __m128i px = _mm_or_si128(_mm_packus_epi16(lo, hi), alpha);
            _mm_storeu_si128((__m128i *)(o + 4 * i), px);
        }
#endif
        for (; i < n; i++) {
            uint32_t px = pack(acc[i]);
            memcpy(o + 4 * i, &px, 4);
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uint32_t px = pack(acc[i]);
        uint8_t *q = o + i * ocs;
        q[0] = (uint8_t)px;
        q[oks] = (uint8_t)(px >> 8);
        q[2 * oks] = (uint8_t)(px >> 16);
        q[3 * oks] = 0xFF;
    }
}

/* The common case, every channel through a table of a <= 16-bit integer dtype and at most
 * 4 channels, pixel by pixel: the sum stays in a register (one accumulator store per pixel,
 * not per channel) and the channel loop unrolls for each constant nc. */
#define SUM_KERNEL(name, index_of_q)                                                            \
    static inline __attribute__((always_inline)) void name(                                    \
        const render_ctx *r, int nc, const uint8_t *const *rows, int64_t n,                    \
        uint64_t *restrict acc)                                                                \
    {                                                                                           \
        const int64_t cs = r->in_col_stride;                                                    \
        const uint8_t *row[4];                                                                  \
        const uint64_t *lut[4];                                                                 \
        int64_t lo[4], ln[4];                                                                   \
        for (int c = 0; c < nc; c++) {                                                          \
            row[c] = rows[c];                                                                   \
            lut[c] = r->chans[c].lut;                                                           \
            lo[c] = r->chans[c].lut_lo;                                                         \
            ln[c] = r->chans[c].lut_n;                                                          \
        }                                                                                       \
        for (int64_t i = 0; i < n; i++) {                                                       \
            uint64_t a = 0;                                                                     \
            for (int c = 0; c < nc; c++) {                                                      \
                const uint8_t *q = row[c] + i * cs;                                             \
                (void)lo[c];                                                                    \
                (void)ln[c];                                                                    \
                a += lut[c][index_of_q];                                                        \
            }                                                                                   \
            acc[i] = a;                                                                         \
        }                                                                                       \
    }

SUM_KERNEL(sum_u8, ld_u8(q))
SUM_KERNEL(sum_i8, (uint8_t)(ld_u8(q) ^ 0x80u))

/* Contiguous 16-bit samples: first every channel's clamped table indices for the block, in
 * 16-bit unsigned arithmetic that vectorises (int16 is biased to unsigned order by 0x8000),
 * then the table sums pixel by pixel. Strided samples (interleaved channels) clamp in the
 * sum loop instead. */
static inline void indices16(const uint8_t *p, int64_t n, uint16_t bias, uint16_t lo,
                             uint16_t top, uint16_t *restrict idx)
{
    for (int64_t i = 0; i < n; i++) {
        uint16_t u = (uint16_t)(ld_u16(p + 2 * i) ^ bias);
        uint16_t k = u > lo ? (uint16_t)(u - lo) : 0;
        idx[i] = k < top ? k : top;
    }
}

SUM_KERNEL(sum_u16_strided, lut_index(ld_u16(q), lo[c], ln[c]))
SUM_KERNEL(sum_i16_strided, lut_index(ld_i16(q), lo[c], ln[c]))

static inline __attribute__((always_inline)) void sum16(const render_ctx *r, int nc,
                                                        const uint8_t *const *rows, int64_t n,
                                                        uint64_t *restrict acc)
{
    uint16_t idx[4][BLOCK];
    const uint64_t *lut[4];
    uint16_t bias = r->dtype == NGFF_RENDER_INT16 ? 0x8000 : 0;
    for (int c = 0; c < nc; c++) {
        const chan_plan *ch = &r->chans[c];
        lut[c] = ch->lut;
        indices16(rows[c], n, bias, (uint16_t)((uint16_t)ch->lut_lo ^ bias),
                  (uint16_t)(ch->lut_n - 1), idx[c]);
    }
    for (int64_t i = 0; i < n; i++) {
        uint64_t a = 0;
        for (int c = 0; c < nc; c++)
            a += lut[c][idx[c][i]];
        acc[i] = a;
    }
}

#define SUM_DISPATCH(kernel)                                                                    \
    switch (nc) {                                                                               \
    case 1: kernel(r, 1, rows, n, acc); return;                                                 \
    case 2: kernel(r, 2, rows, n, acc); return;                                                 \
    case 3: kernel(r, 3, rows, n, acc); return;                                                 \
    default: kernel(r, 4, rows, n, acc); return;                                                \
    }

static void sum_tables(const render_ctx *r, const uint8_t *const *rows, int64_t n,
                       uint64_t *restrict acc)
{
    int nc = (int)r->n_channels;
    switch (r->dtype) {
    case NGFF_RENDER_UINT8: SUM_DISPATCH(sum_u8)
    case NGFF_RENDER_INT8: SUM_DISPATCH(sum_i8)
    case NGFF_RENDER_UINT16:
        if (r->in_col_stride == 2)
            SUM_DISPATCH(sum16)
        SUM_DISPATCH(sum_u16_strided)
    default: /* INT16 */
        if (r->in_col_stride == 2)
            SUM_DISPATCH(sum16)
        SUM_DISPATCH(sum_i16_strided)
    }
}

static ngff_status render_band(void *ctx_, int64_t band)
{
    const render_ctx *r = ctx_;
    uint64_t acc[BLOCK];
    int64_t y0 = band * r->band_rows;
    int64_t y1 = y0 + r->band_rows < r->height ? y0 + r->band_rows : r->height;
    for (int64_t y = y0; y < y1; y++) {
        uint8_t *orow = r->out + y * r->out_strides[0];
        for (int64_t x0 = 0; x0 < r->width; x0 += BLOCK) {
            int64_t n = r->width - x0 < BLOCK ? r->width - x0 : BLOCK;
            if (r->n_channels == 0) {
                memset(acc, 0, (size_t)n * sizeof *acc);
            } else if (r->pixel_major) {
                const uint8_t *rows[4];
                for (int64_t c = 0; c < r->n_channels; c++)
                    rows[c] = r->chans[c].base + y * r->in_row_stride + x0 * r->in_col_stride;
                sum_tables(r, rows, n, acc);
            } else {
                for (int64_t c = 0; c < r->n_channels; c++) {
                    const chan_plan *ch = &r->chans[c];
                    const uint8_t *p = ch->base + y * r->in_row_stride + x0 * r->in_col_stride;
                    accumulate(r, ch, p, n, acc, c == 0);
                }
            }
            store(r, acc, n, orow + x0 * r->out_strides[1]);
        }
    }
    return NGFF_OK;
}

/* The min and max of the scanned channels' samples in one band of rows. */
#define MINMAX_ROW(T, load, size)                                                               \
    do {                                                                                        \
        T mn_ = (T)lo_, mx_ = (T)hi_;                                                           \
        if (cs == (size))                                                                       \
            for (int64_t i = 0; i < r->width; i++) {                                            \
                T v_ = load(p + i * (size));                                                    \
                mn_ = v_ < mn_ ? v_ : mn_;                                                      \
                mx_ = v_ > mx_ ? v_ : mx_;                                                      \
            }                                                                                   \
        else                                                                                    \
            for (int64_t i = 0; i < r->width; i++) {                                            \
                T v_ = load(p + i * cs);                                                        \
                mn_ = v_ < mn_ ? v_ : mn_;                                                      \
                mx_ = v_ > mx_ ? v_ : mx_;                                                      \
            }                                                                                   \
        lo_ = mn_;                                                                              \
        hi_ = mx_;                                                                              \
    } while (0)

static ngff_status scan_band(void *ctx_, int64_t band)
{
    const render_ctx *r = ctx_;
    const int64_t cs = r->in_col_stride;
    int64_t y0 = band * r->band_rows;
    int64_t y1 = y0 + r->band_rows < r->height ? y0 + r->band_rows : r->height;
    for (int64_t c = 0; c < r->n_channels; c++) {
        const chan_plan *ch = &r->chans[c];
        if (!ch->scan)
            continue;
        const uint8_t *first = ch->base + y0 * r->in_row_stride;
        int64_t lo_, hi_;
        switch (r->dtype) { /* start from the band's first sample */
        case NGFF_RENDER_UINT16: lo_ = ld_u16(first); break;
        case NGFF_RENDER_INT16: lo_ = ld_i16(first); break;
        case NGFF_RENDER_UINT32: lo_ = ld_u32(first); break;
        default: lo_ = ld_i32(first); break;
        }
        hi_ = lo_;
        for (int64_t y = y0; y < y1; y++) {
            const uint8_t *p = ch->base + y * r->in_row_stride;
            switch (r->dtype) {
            case NGFF_RENDER_UINT16: MINMAX_ROW(uint16_t, ld_u16, 2); break;
            case NGFF_RENDER_INT16: MINMAX_ROW(int16_t, ld_i16, 2); break;
            case NGFF_RENDER_UINT32: MINMAX_ROW(uint32_t, ld_u32, 4); break;
            default: MINMAX_ROW(int32_t, ld_i32, 4); break;
            }
        }
        r->ranges[2 * (band * r->n_channels + c)] = lo_;
        r->ranges[2 * (band * r->n_channels + c) + 1] = hi_;
    }
    return NGFF_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* tables                                                                                     */

static ngff_status build_lut_segment(void *ctx_, int64_t task)
{
    const render_ctx *r = ctx_;
    /* task → (channel, segment): walk the channels' segment counts */
    for (int64_t c = 0; c < r->n_channels; c++) {
        const chan_plan *ch = &r->chans[c];
        if (!ch->lut)
            continue;
        int64_t segs = (ch->lut_n + LUT_SEGMENT - 1) / LUT_SEGMENT;
        if (task >= segs) {
            task -= segs;
            continue;
        }
        int64_t k0 = task * LUT_SEGMENT;
        int64_t k1 = k0 + LUT_SEGMENT < ch->lut_n ? k0 + LUT_SEGMENT : ch->lut_n;
        if (r->dtype == NGFF_RENDER_FLOAT16)
            for (int64_t k = k0; k < k1; k++)
                ch->lut[k] = contribution(ch, ngff_half_to_double((uint16_t)k));
        else
            for (int64_t k = k0; k < k1; k++)
                ch->lut[k] = contribution(ch, (double)(ch->lut_lo + k));
        return NGFF_OK;
    }
    return NGFF_ERR_INVALID_ARGUMENT; /* not reached */
}

/* The integer range [lo, lo + n) a table for this channel needs: every value below lo
 * (above lo + n - 1) has the same contribution as lo (lo + n - 1). 0 when not an integer
 * dtype of at most 32 bits. */
static int64_t lut_range(const chan_plan *c, int32_t dtype, int64_t *lo)
{
    double dmin, dmax;
    switch (dtype) {
    case NGFF_RENDER_UINT8: *lo = 0; return 256;
    case NGFF_RENDER_INT8: *lo = -128; return 256;
    case NGFF_RENDER_FLOAT16: *lo = 0; return 65536;
    case NGFF_RENDER_UINT16: dmin = 0; dmax = 65535; break;
    case NGFF_RENDER_INT16: dmin = -32768; dmax = 32767; break;
    case NGFF_RENDER_UINT32: dmin = 0; dmax = 4294967295.0; break;
    case NGFF_RENDER_INT32: dmin = -2147483648.0; dmax = 2147483647.0; break;
    default: return 0;
    }
    /* values <= floor(start) give v = 0 (step or not); values >= ceil(end) give v = 1, and
     * in a step every value >= floor(start) + 1 does */
    double a = floor(c->start);
    double b = c->step ? a + 1 : ceil(c->end);
    a = a < dmin ? dmin : a > dmax ? dmax : a;
    b = b < a ? a : b > dmax ? dmax : b;
    *lo = (int64_t)a;
    return (int64_t)b - (int64_t)a + 1;
}

/* ---------------------------------------------------------------------------------------- */
/* argument checks                                                                            */

/* Bytes from the lowest to one past the highest byte addressed by an array of dims n[d]
 * (all > 0) with byte strides s[d] and item size `item`; *low_off is the offset of the
 * lowest byte from the base. Returns NGFF_ERR_OVERFLOW when that does not fit. */
static ngff_status extent(int ndim, const int64_t *n, const int64_t *s, int64_t item,
                          int64_t *low_off, int64_t *span)
{
    int64_t lo = 0, hi = item;
    for (int d = 0; d < ndim; d++) {
        int64_t t;
        if (s[d] == INT64_MIN || __builtin_mul_overflow(n[d] - 1, s[d] < 0 ? -s[d] : s[d], &t))
            return NGFF_ERR_OVERFLOW;
        if (s[d] < 0) {
            if (__builtin_sub_overflow(lo, t, &lo))
                return NGFF_ERR_OVERFLOW;
        } else if (__builtin_add_overflow(hi, t, &hi)) {
            return NGFF_ERR_OVERFLOW;
        }
    }
    if (__builtin_sub_overflow(hi, lo, span))
        return NGFF_ERR_OVERFLOW;
    *low_off = lo;
    return NGFF_OK;
}

/* Distinct output indices address distinct bytes: sorted by |stride|, each axis of more
 * than one element steps over everything the smaller axes cover. */
static int output_is_distinct(const int64_t n[3], const int64_t s[3])
{
    int64_t a[3], m[3];
    int k = 0;
    for (int d = 0; d < 3; d++)
        if (n[d] > 1) {
            a[k] = s[d] < 0 ? -s[d] : s[d];
            m[k++] = n[d];
        }
    for (int i = 1; i < k; i++) /* insertion sort by |stride| */
        for (int j = i; j > 0 && a[j] < a[j - 1]; j--) {
            int64_t t = a[j]; a[j] = a[j - 1]; a[j - 1] = t;
            t = m[j]; m[j] = m[j - 1]; m[j - 1] = t;
        }
    int64_t covered = 1; /* bytes spanned by the smaller axes (extent() ruled out overflow) */
    for (int i = 0; i < k; i++) {
        if (a[i] < covered)
            return 0;
        covered = (m[i] - 1) * a[i] + covered;
    }
    return 1;
}

static int channel_ok(const ngff_render_channel *c)
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

ngff_status ngff_render_rgba(ngff_pool *pool, const uint8_t *in, int32_t dtype,
                             int64_t n_channels, int64_t height, int64_t width,
                             const int64_t in_strides[3], const ngff_render_channel *channels,
                             uint8_t *out, const int64_t out_strides[3])
{
    if (dtype < 0 || dtype >= NGFF_RENDER_DTYPE_COUNT || n_channels < 0 ||
        n_channels > NGFF_RENDER_MAX_CHANNELS || height < 0 || width < 0 || !in_strides ||
        !out_strides || (n_channels > 0 && !channels))
        return NGFF_ERR_INVALID_ARGUMENT;
    for (int64_t c = 0; c < n_channels; c++)
        if (!channel_ok(&channels[c]))
            return NGFF_ERR_INVALID_ARGUMENT;
    if (height == 0 || width == 0)
        return NGFF_OK;
    if (!out || (n_channels > 0 && !in))
        return NGFF_ERR_INVALID_ARGUMENT;

    const int64_t item = itemsizes[dtype];
    const int64_t out_n[3] = {height, width, 4};
    int64_t out_lo, out_span, in_lo = 0, in_span = 0;
    ngff_status st = extent(3, out_n, out_strides, 1, &out_lo, &out_span);
    if (st != NGFF_OK)
        return st;
    if (!output_is_distinct(out_n, out_strides))
        return NGFF_ERR_INVALID_ARGUMENT;
    int64_t pixels;
    if (__builtin_mul_overflow(height, width, &pixels))
        return NGFF_ERR_OVERFLOW;
    if (n_channels > 0) {
        const int64_t in_n[3] = {n_channels, height, width};
        st = extent(3, in_n, in_strides, item, &in_lo, &in_span);
        if (st != NGFF_OK)
            return st;
        /* byte ranges may not meet (conservative, like numpy.may_share_memory) */
        uintptr_t i0 = (uintptr_t)in + (uintptr_t)in_lo, o0 = (uintptr_t)out + (uintptr_t)out_lo;
        if (i0 < o0 + (uintptr_t)out_span && o0 < i0 + (uintptr_t)in_span)
            return NGFF_ERR_INVALID_ARGUMENT;
    }

    chan_plan *chans = calloc((size_t)(n_channels > 0 ? n_channels : 1), sizeof *chans);
    if (!chans)
        return NGFF_ERR_NOMEM;
    int any_scan = 0;
    for (int64_t c = 0; c < n_channels; c++) {
        const ngff_render_channel *src = &channels[c];
        chan_plan *ch = &chans[c];
        ch->base = in + c * in_strides[0];
        ch->start = src->start;
        ch->end = src->end;
        ch->step = !(src->end > src->start);
        ch->width = ch->step ? 0.0 : src->end - src->start;
        memcpy(ch->color, src->color, sizeof ch->color);
        ch->gamma = src->gamma;
        ch->use_gamma = src->gamma != 1.0;
        ch->inverted = src->inverted;
        ch->lut_n = lut_range(ch, dtype, &ch->lut_lo);
        /* 8-bit and float16 tables are always whole (their kernels index them directly) */
        ch->scan = ch->lut_n > LUT_ALWAYS &&
                   (dtype == NGFF_RENDER_UINT16 || dtype == NGFF_RENDER_INT16 ||
                    dtype == NGFF_RENDER_UINT32 || dtype == NGFF_RENDER_INT32);
        any_scan |= ch->scan;
    }

    render_ctx r = {
        .dtype = dtype,
        .n_channels = n_channels,
        .height = height,
        .width = width,
        .in_row_stride = in_strides[1],
        .in_col_stride = in_strides[2],
        .chans = chans,
        .out = out,
        .out_strides = {out_strides[0], out_strides[1], out_strides[2]},
    };
    int64_t band = (BAND_PIXELS + width - 1) / width;
    r.band_rows = band < 1 ? 1 : band;
    int64_t n_bands = (height + r.band_rows - 1) / r.band_rows;

    if (any_scan) {
        /* A wide window (e.g. the whole uint16 range) over data that uses a fraction of it
         * (12-bit cameras): a table over the data's min..max only. Values outside the
         * window share the contribution of its ends, so the table covers the intersection
         * and clamps to it. */
        r.ranges = malloc((size_t)(n_bands * n_channels * 2) * sizeof *r.ranges);
        if (!r.ranges) {
            free(chans);
            return NGFF_ERR_NOMEM;
        }
        st = ngff_pool_for(n_bands > 1 ? pool : NULL, n_bands, scan_band, &r, NULL);
        for (int64_t c = 0; c < n_channels; c++) {
            chan_plan *ch = &chans[c];
            if (!ch->scan)
                continue;
            int64_t dmin = r.ranges[2 * c], dmax = r.ranges[2 * c + 1];
            for (int64_t b = 1; b < n_bands; b++) {
                int64_t bmin = r.ranges[2 * (b * n_channels + c)];
                int64_t bmax = r.ranges[2 * (b * n_channels + c) + 1];
                dmin = bmin < dmin ? bmin : dmin;
                dmax = bmax > dmax ? bmax : dmax;
            }
            int64_t wlo = ch->lut_lo, whi = ch->lut_lo + ch->lut_n - 1;
            int64_t lo = dmin < wlo ? wlo : dmin > whi ? whi : dmin;
            int64_t hi = dmax < wlo ? wlo : dmax > whi ? whi : dmax;
            ch->lut_lo = lo;
            ch->lut_n = hi - lo + 1;
        }
        free(r.ranges);
        r.ranges = NULL;
        if (st != NGFF_OK) {
            free(chans);
            return st;
        }
    }

    int64_t lut_total = 0, lut_tasks = 0;
    for (int64_t c = 0; c < n_channels; c++) {
        chan_plan *ch = &chans[c];
        int64_t n = ch->lut_n;
        if (n > 0 && n <= LUT_MAX && (n <= LUT_ALWAYS || n <= pixels / 2)) {
            lut_total += n;
            lut_tasks += (n + LUT_SEGMENT - 1) / LUT_SEGMENT;
        } else {
            ch->lut_n = 0;
        }
    }
    uint64_t *luts = NULL;
    if (lut_total > 0) {
        luts = malloc((size_t)lut_total * sizeof *luts);
        if (!luts) {
            free(chans);
            return NGFF_ERR_NOMEM;
        }
        uint64_t *next = luts;
        for (int64_t c = 0; c < n_channels; c++)
            if (chans[c].lut_n > 0) {
                chans[c].lut = next;
                next += chans[c].lut_n;
            }
    }

    r.lut_tasks = lut_tasks;
    r.pixel_major = n_channels >= 1 && n_channels <= 4 &&
                    (dtype == NGFF_RENDER_UINT8 || dtype == NGFF_RENDER_INT8 ||
                     dtype == NGFF_RENDER_UINT16 || dtype == NGFF_RENDER_INT16);
    for (int64_t c = 0; c < n_channels; c++)
        r.pixel_major &= chans[c].lut != NULL;

    if (lut_tasks > 0)
        st = ngff_pool_for(lut_total <= LUT_SEGMENT ? NULL : pool, lut_tasks,
                           build_lut_segment, &r, NULL);
    if (st == NGFF_OK)
        st = ngff_pool_for(n_bands > 1 ? pool : NULL, n_bands, render_band, &r, NULL);
    free(luts);
    free(chans);
    return st;
}
