/* Gaussian downsampling: scipy.ndimage.gaussian_filter(x.astype(float64), sigma = f/2 on each
 * axis whose factor f > 1, mode='reflect', truncate=4.0), then every f-th pixel from the
 * first, then a cast to the dtype (integers: rounded half to even, clipped).
 *
 * The region's input box (halo included) is converted to a float64 buffer once, then filtered
 * one axis at a time (scipy's order: axis 0 first), each pass computing only the decimated
 * positions along its axis into a new, smaller buffer; the last buffer is cast into `out`.
 * Each filtered value is computed exactly as scipy's correlate1d computes it for a symmetric
 * kernel (centre first, then the pairs from the outermost in) from the same inputs, so a value
 * does not depend on the region it was computed in: slabs and chunks have no seams. Passes are
 * split over the pool by output lines. */
#include "ngff_downsample_impl.h"

#include <stdlib.h>

/* Bit-exact with a float64 reference: products and sums rounded one by one, never fused. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* numpy's pairwise sum of float64 (what phi_x.sum() computes in scipy's _gaussian_kernel1d). */
static double pairwise_sum(const double *a, int64_t n)
{
    if (n < 8) {
        double res = 0.;
        for (int64_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        int64_t i;
        for (int j = 0; j < 8; j++)
            r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* scipy's normalised kernel exp(-0.5 / sigma**2 * x**2), x in [-rad, rad]. */
static void gauss_weights(int64_t f, int64_t rad, double *w)
{
    double sigma = (double)f / 2.0, k = -0.5 / (sigma * sigma);
    for (int64_t x = -rad; x <= rad; x++)
        w[x + rad] = exp(k * (double)(x * x));
    double sum = pairwise_sum(w, 2 * rad + 1);
    for (int64_t i = 0; i <= 2 * rad; i++)
        w[i] /= sum;
}

/* scipy's 'reflect' extension (d c b a | a b c d | d c b a), repeated for long kernels. */
static inline int64_t reflect(int64_t i, int64_t n)
{
    if (i >= 0 && i < n)
        return i;
    int64_t p = 2 * n;
    i %= p;
    if (i < 0)
        i += p;
    return i < n ? i : p - 1 - i;
}

/* Row converters: n elements (lanes interleaved) between the dtype and float64. */
#define LDV(T, p) ({ T v_; memcpy(&v_, (p), sizeof(T)); v_; })
#define DEF_CVT(NAME, T, LANES, TO_D)                                                           \
    static void cvt_##NAME(const uint8_t *p, int64_t s, int64_t n, double *dst)                 \
    {                                                                                           \
        for (int64_t i = 0; i < n; i++)                                                         \
            for (int l = 0; l < LANES; l++)                                                     \
                dst[i * LANES + l] = TO_D(LDV(T, p + i * s + l * (int64_t)sizeof(T)));          \
    }
#define TO_D(v) ((double)(v))
#define TO_D_BOOL(v) ((double)((v) != 0))
#define TO_D_HALF(v) ngff_half_to_double(v)
DEF_CVT(b, uint8_t, 1, TO_D_BOOL)
DEF_CVT(i8, int8_t, 1, TO_D)
DEF_CVT(u8, uint8_t, 1, TO_D)
DEF_CVT(i16, int16_t, 1, TO_D)
DEF_CVT(u16, uint16_t, 1, TO_D)
DEF_CVT(i32, int32_t, 1, TO_D)
DEF_CVT(u32, uint32_t, 1, TO_D)
DEF_CVT(i64, int64_t, 1, TO_D)
DEF_CVT(u64, uint64_t, 1, TO_D)
DEF_CVT(f16, uint16_t, 1, TO_D_HALF)
DEF_CVT(f32, float, 1, TO_D)
DEF_CVT(f64, double, 1, TO_D)
DEF_CVT(c64, float, 2, TO_D)
DEF_CVT(c128, double, 2, TO_D)

/* Integers: round half to even (rint in the default rounding mode), clip to the range. */
#define DEF_ST_INT(NAME, T, LO, HI)                                                             \
    static void st_##NAME(const double *src, int64_t n, uint8_t *p, int64_t s)                  \
    {                                                                                           \
        for (int64_t i = 0; i < n; i++) {                                                       \
            double v = rint(src[i]);                                                            \
            T t = v != v ? (T)0 : v <= (LO) ? (T)(LO) : v >= (HI) ? (T)(HI) : (T)v;             \
            memcpy(p + i * s, &t, sizeof(T));                                                   \
        }                                                                                       \
    }
DEF_ST_INT(b, uint8_t, 0.0, 1.0)
DEF_ST_INT(i8, int8_t, -128.0, 127.0)
DEF_ST_INT(u8, uint8_t, 0.0, 255.0)
DEF_ST_INT(i16, int16_t, -32768.0, 32767.0)
DEF_ST_INT(u16, uint16_t, 0.0, 65535.0)
DEF_ST_INT(i32, int32_t, -2147483648.0, 2147483647.0)
DEF_ST_INT(u32, uint32_t, 0.0, 4294967295.0)

static void st_i64(const double *src, int64_t n, uint8_t *p, int64_t s)
{
    for (int64_t i = 0; i < n; i++) {
        double v = rint(src[i]);
        /* 2**63 is the first double above INT64_MAX */
        int64_t t = v != v ? 0 : v >= 9223372036854775808.0 ? INT64_MAX : v <= -9223372036854775808.0 ? INT64_MIN : (int64_t)v;
        memcpy(p + i * s, &t, 8);
    }
}

static void st_u64(const double *src, int64_t n, uint8_t *p, int64_t s)
{
    for (int64_t i = 0; i < n; i++) {
        double v = rint(src[i]);
        uint64_t t = v != v || v <= 0.0 ? 0 : v >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)v;
        memcpy(p + i * s, &t, 8);
    }
}

#define DEF_ST_FLT(NAME, T, LANES, FROM_D)                                                      \
    static void st_##NAME(const double *src, int64_t n, uint8_t *p, int64_t s)                  \
    {                                                                                           \
        for (int64_t i = 0; i < n; i++)                                                         \
            for (int l = 0; l < LANES; l++) {                                                   \
                T t = FROM_D(src[i * LANES + l]);                                               \
                memcpy(p + i * s + l * (int64_t)sizeof(T), &t, sizeof(T));                      \
            }                                                                                   \
    }
#define FROM_F(v) ((float)(v))
#define FROM_D(v) (v)
#define FROM_H(v) ngff_double_to_half(v)
DEF_ST_FLT(f16, uint16_t, 1, FROM_H)
DEF_ST_FLT(f32, float, 1, FROM_F)
DEF_ST_FLT(f64, double, 1, FROM_D)
DEF_ST_FLT(c64, float, 2, FROM_F)
DEF_ST_FLT(c128, double, 2, FROM_D)

typedef void (*cvt_fn)(const uint8_t *, int64_t, int64_t, double *);
typedef void (*st_fn)(const double *, int64_t, uint8_t *, int64_t);
static const cvt_fn CVT[NGFF_DS_DTYPE_COUNT] = {cvt_b,  cvt_i8,  cvt_u8,  cvt_i16, cvt_u16,
                                               cvt_i32, cvt_u32, cvt_i64, cvt_u64, cvt_f16,
                                               cvt_f32, cvt_f64, cvt_c64, cvt_c128};
static const st_fn ST[NGFF_DS_DTYPE_COUNT] = {st_b,   st_i8,  st_u8,  st_i16, st_u16,
                                             st_i32, st_u32, st_i64, st_u64, st_f16,
                                             st_f32, st_f64, st_c64, st_c128};

typedef struct g_plan {
    const ds_ctx *c;
    int64_t box_start[NGFF_MAX_DIMS], box_shape[NGFF_MAX_DIMS];
    int64_t items_per_task, n_items;
    /* conversion / store: rows of `shape` (every axis but the last) */
    const int64_t *shape;
    double *buf;
    /* one pass along `axis`: src is (A, N, R), dst (A, M, R) */
    const double *src;
    double *dst;
    int64_t A, N, M, R, rad, f, o0, n, base;
    const double *w; /* 2 * rad + 1 weights */
} g_plan;

static void row_index(const int64_t *shape, int32_t L, int64_t r, int64_t *idx)
{
    for (int32_t d = L - 1; d >= 0; d--) {
        idx[d] = r % shape[d];
        r /= shape[d];
    }
}

static ngff_status convert_task(void *ctx_, int64_t task)
{
    const g_plan *g = ctx_;
    const ds_ctx *c = g->c;
    const int32_t L = c->ndim - 1;
    const int64_t nx = g->box_shape[L];
    int64_t idx[NGFF_MAX_DIMS];
    int64_t r1 = task * g->items_per_task + g->items_per_task;
    if (r1 > g->n_items)
        r1 = g->n_items;
    for (int64_t r = task * g->items_per_task; r < r1; r++) {
        row_index(g->box_shape, L, r, idx);
        int64_t off = (g->box_start[L] - c->in_start[L]) * c->in_strides[L];
        for (int32_t d = 0; d < L; d++)
            off += (g->box_start[d] + idx[d] - c->in_start[d]) * c->in_strides[d];
        CVT[c->dtype](c->in + off, c->in_strides[L], nx, g->buf + r * nx * c->lanes);
    }
    return NGFF_OK;
}

static ngff_status store_task(void *ctx_, int64_t task)
{
    const g_plan *g = ctx_;
    const ds_ctx *c = g->c;
    const int32_t L = c->ndim - 1;
    const int64_t nx = c->out_shape[L];
    int64_t idx[NGFF_MAX_DIMS];
    int64_t r1 = task * g->items_per_task + g->items_per_task;
    if (r1 > g->n_items)
        r1 = g->n_items;
    for (int64_t r = task * g->items_per_task; r < r1; r++) {
        row_index(c->out_shape, L, r, idx);
        int64_t off = 0;
        for (int32_t d = 0; d < L; d++)
            off += idx[d] * c->out_strides[d];
        ST[c->dtype](g->buf + r * nx * c->lanes, nx, c->out + off, c->out_strides[L]);
    }
    return NGFF_OK;
}

/* Output line (a, m) of a pass: scipy's symmetric correlation, vectorised over R. */
static ngff_status pass_task(void *ctx_, int64_t task)
{
    const g_plan *g = ctx_;
    const int64_t rad = g->rad, R = g->R;
    int64_t *ix = malloc((size_t)(2 * rad + 1) * sizeof *ix);
    if (ix == NULL)
        return NGFF_ERR_NOMEM;
    const double *w = g->w + rad; /* w[j], j in [-rad, rad] */
    int64_t i1 = task * g->items_per_task + g->items_per_task;
    if (i1 > g->n_items)
        i1 = g->n_items;
    for (int64_t it = task * g->items_per_task; it < i1; it++) {
        int64_t a = it / g->M, m = it % g->M;
        int64_t ctr = g->f * (g->o0 + m);
        for (int64_t j = -rad; j <= rad; j++)
            ix[j + rad] = reflect(ctr + j, g->n) - g->base;
        const double *plane = g->src + a * g->N * R;
        double *o = g->dst + it * R;
        const double *cp = plane + ix[rad] * R;
        for (int64_t r = 0; r < R; r++)
            o[r] = cp[r] * w[0];
        for (int64_t j = -rad; j < 0; j++) {
            const double *lo = plane + ix[rad + j] * R, *hi = plane + ix[rad - j] * R;
            const double wj = w[j];
            for (int64_t r = 0; r < R; r++)
                o[r] += (lo[r] + hi[r]) * wj;
        }
    }
    free(ix);
    return NGFF_OK;
}

static ngff_status run(ngff_pool *pool, g_plan *g, int64_t n_items, int64_t work, ngff_task_fn fn)
{
    g->n_items = n_items;
    g->items_per_task = ds_items_per_task(n_items, work, g->c->threads);
    int64_t n_tasks = (n_items + g->items_per_task - 1) / g->items_per_task;
    return ngff_pool_for(n_tasks > 1 ? pool : NULL, n_tasks, fn, g, NULL);
}

ngff_status ngff_ds_gaussian(ngff_pool *pool, const ds_ctx *c)
{
    const int32_t nd = c->ndim, L = nd - 1;
    g_plan g;
    memset(&g, 0, sizeof g);
    g.c = c;
    ngff_downsample_input_box(NGFF_DS_GAUSSIAN, nd, c->full, c->fac, c->out_start, c->out_shape, g.box_start,
                              g.box_shape);
    /* buffer sizes: the box, then smaller after each pass */
    int64_t cur[NGFF_MAX_DIMS], vol = c->lanes, rows = 1;
    for (int32_t d = 0; d < nd; d++) {
        cur[d] = g.box_shape[d];
        if (__builtin_mul_overflow(vol, cur[d], &vol) || (d < L && __builtin_mul_overflow(rows, cur[d], &rows)))
            return NGFF_ERR_OVERFLOW;
    }
    if ((uint64_t)vol > SIZE_MAX / sizeof(double))
        return NGFF_ERR_OVERFLOW;
    double *buf = malloc((size_t)vol * sizeof(double) + 1);
    if (buf == NULL)
        return NGFF_ERR_NOMEM;
    g.buf = buf;
    ngff_status st = run(pool, &g, rows, cur[L] * c->lanes, convert_task);

    for (int32_t k = 0; k < nd && st == NGFF_OK; k++) {
        if (c->fac[k] <= 1)
            continue;
        int64_t rad = (int64_t)(4.0 * ((double)c->fac[k] / 2.0) + 0.5);
        int64_t A = 1, R = c->lanes, M = c->out_shape[k];
        for (int32_t d = 0; d < k; d++)
            A *= cur[d];
        for (int32_t d = k + 1; d < nd; d++)
            R *= cur[d];
        /* the next buffer is smaller than the current one (M <= N), so no overflow */
        double *next = malloc((size_t)(A * M * R) * sizeof(double) + 1);
        double *w = malloc((size_t)(2 * rad + 1) * sizeof(double));
        if (next == NULL || w == NULL) {
            free(next);
            free(w);
            st = NGFF_ERR_NOMEM;
            break;
        }
        gauss_weights(c->fac[k], rad, w);
        g.src = buf;
        g.dst = next;
        g.A = A;
        g.N = cur[k];
        g.M = M;
        g.R = R;
        g.rad = rad;
        g.f = c->fac[k];
        g.o0 = c->out_start[k];
        g.n = c->full[k];
        g.base = g.box_start[k];
        g.w = w;
        st = run(pool, &g, A * M, R * (rad + 2), pass_task);
        free(w);
        free(buf);
        buf = next;
        cur[k] = M;
    }
    if (st == NGFF_OK) {
        int64_t out_rows = 1;
        for (int32_t d = 0; d < L; d++)
            out_rows *= c->out_shape[d];
        g.buf = buf;
        st = run(pool, &g, out_rows, c->out_shape[L] * c->lanes, store_task);
    }
    free(buf);
    return st;
}
