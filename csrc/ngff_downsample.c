/* Downsampling: argument checks, the input box, and the block kernels (mean, nearest; mode's
 * per-block work is in ngff_downsample_mode.c, gaussian in ngff_downsample_gauss.c).
 *
 * Work is split over the pool by output rows (every axis but the last). An output row is
 * computed from the input rows of its blocks: mean adds each block row into a line buffer of
 * accumulators (one per output pixel of the row) and divides once at the end; mode gathers
 * each block into a small buffer, sorts it and takes the longest run; nearest copies. Every
 * float mean is summed in one fixed order (block rows in C order, each row's part summed left
 * to right first), whatever the strides or the region, so region calls give identical bits.
 */
#include "ngff_downsample_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include "ngff_codecs.h"

static const int64_t ITEMSIZE[NGFF_DS_DTYPE_COUNT] = {1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 4, 8, 8, 16};

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Gaussian radius (scipy: int(truncate * sigma + 0.5) with sigma = f / 2, truncate 4). */
static int64_t radius_of(int32_t method, int64_t f)
{
    if (method != NGFF_DS_GAUSSIAN || f <= 1)
        return 0;
    return (int64_t)(4.0 * ((double)f / 2.0) + 0.5);
}

static int64_t sat_mul(int64_t a, int64_t b) /* a, b >= 0 */
{
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

void ngff_downsample_input_box(int32_t method, int32_t ndim, const int64_t *full_shape, const int64_t *factors,
                               const int64_t *out_start, const int64_t *out_shape,
                               int64_t *in_start, int64_t *in_shape)
{
    for (int32_t d = 0; d < ndim && d < NGFF_MAX_DIMS; d++) {
        /* clamped so that out-of-contract arguments cannot overflow */
        int64_t n = max64(full_shape[d], 0), f = min64(max64(factors[d], 1), INT64_MAX / 4);
        int64_t o0 = min64(max64(out_start[d], 0), n), m = min64(max64(out_shape[d], 0), n - o0);
        int64_t lo = min64(sat_mul(f, o0), n);
        if (m == 0) {
            in_start[d] = lo;
            in_shape[d] = 0;
            continue;
        }
        int64_t last = min64(sat_mul(f, o0 + m - 1), n); /* first pixel of the last block */
        int64_t hi;
        if (method == NGFF_DS_NEAREST) {
            hi = last >= n ? n : last + 1;
        } else if (method == NGFF_DS_GAUSSIAN) {
            int64_t r = radius_of(method, f);
            lo = max64(lo - r, 0);
            hi = last + 1 > n - r ? n : last + r + 1;
        } else {
            hi = last > n - f ? n : last + f;
        }
        in_start[d] = lo;
        in_shape[d] = max64(hi - lo, 0);
    }
}

/* ---------------------------------------------------------------------------------------
 * Mean: accumulate block rows into a line buffer, then round (ints) or divide (floats).
 * --------------------------------------------------------------------------------------- */

#define LD(T, p) ({ T v_; memcpy(&v_, (p), sizeof(T)); v_; })
#define LD_BOOL(p) ((uint8_t)(*(const uint8_t *)(p) != 0))

/* acc[o * LANES + l] += the sum of block o of this input row (f elements, the last of the
 * nfull + (tail > 0) blocks has `tail`), summed left to right before it is added. */
#define DEF_ACC(NAME, T, ACC, LANES, LOAD)                                                      \
    static void acc_##NAME(void *acc_, const uint8_t *p, int64_t s, int64_t f, int64_t nfull,   \
                           int64_t tail)                                                        \
    {                                                                                           \
        ACC *acc = acc_;                                                                        \
        if (LANES == 1 && f == 2 && s == (int64_t)sizeof(T)) {                                  \
            for (int64_t o = 0; o < nfull; o++)                                                 \
                acc[o] += (ACC)LOAD(T, p + 2 * o * (int64_t)sizeof(T)) +                        \
                          (ACC)LOAD(T, p + (2 * o + 1) * (int64_t)sizeof(T));                   \
        } else if (LANES == 1 && f == 1) {                                                      \
            for (int64_t o = 0; o < nfull; o++)                                                 \
                acc[o] += (ACC)LOAD(T, p + o * s);                                              \
        } else {                                                                                \
            for (int64_t o = 0; o < nfull; o++)                                                 \
                for (int l = 0; l < LANES; l++) {                                               \
                    const uint8_t *q = p + o * f * s + l * (int64_t)sizeof(T);                  \
                    ACC t = (ACC)LOAD(T, q);                                                    \
                    for (int64_t i = 1; i < f; i++)                                             \
                        t += (ACC)LOAD(T, q + i * s);                                           \
                    acc[o * LANES + l] += t;                                                    \
                }                                                                               \
        }                                                                                       \
        for (int l = 0; tail > 0 && l < LANES; l++) {                                           \
            const uint8_t *q = p + nfull * f * s + l * (int64_t)sizeof(T);                      \
            ACC t = (ACC)LOAD(T, q);                                                            \
            for (int64_t i = 1; i < tail; i++)                                                  \
                t += (ACC)LOAD(T, q + i * s);                                                   \
            acc[nfull * LANES + l] += t;                                                        \
        }                                                                                       \
    }

#define LD_B(T, p) LD_BOOL(p)
#define LD_T(T, p) LD(T, p)
#define LD_H(T, p) ngff_half_to_double(LD(uint16_t, p))

/* Rounds s / c to the nearest integer, ties to even (c > 0; sh = log2(c) when c is a power
 * of two, else -1, so the common 2x2 / 2x2x2 blocks take no division). */
#define DEF_RHE(NAME, ACC)                                                                      \
    static inline ACC rhe_##NAME(ACC s, ACC c, int sh)                                          \
    {                                                                                           \
        ACC q, r;                                                                               \
        if (sh >= 0) {                                                                          \
            q = s >> sh; /* arithmetic shift: floor */                                          \
            r = s & (c - 1);                                                                    \
        } else {                                                                                \
            q = s / c;                                                                          \
            r = s % c;                                                                          \
            if (r < 0) {                                                                        \
                q -= 1;                                                                         \
                r += c;                                                                         \
            }                                                                                   \
        }                                                                                       \
        if (2 * r > c || (2 * r == c && (q & 1)))                                               \
            q += 1;                                                                             \
        return q;                                                                               \
    }
DEF_RHE(32, int32_t)
DEF_RHE(64, int64_t)
DEF_RHE(128, __int128)

static int log2_exact(int64_t c)
{
    return c > 0 && (c & (c - 1)) == 0 ? __builtin_ctzll((unsigned long long)c) : -1;
}

/* out[o] = the mean of block o: its count is cnt, the last pixel's cnt_last. The common
 * power-of-two count over contiguous output is a branch-free loop the compiler vectorises. */
#define FIN_POW2_LOOP(T, ACC, OS)                                                               \
    for (int64_t o = 0; o < n - 1; o++) {                                                       \
        ACC s_ = acc[o], q_ = s_ >> sh, r_ = s_ & (c_ - 1);                                     \
        q_ += (ACC)((2 * r_ > c_) | ((2 * r_ == c_) & (q_ & 1)));                               \
        T v_ = (T)q_;                                                                           \
        memcpy(out + o * (OS), &v_, sizeof(T));                                                 \
    }
#define DEF_FIN_INT(NAME, T, ACC, K)                                                            \
    static void fin_##NAME(const void *acc_, uint8_t *out, int64_t os, int64_t n, int64_t cnt,  \
                           int64_t cnt_last)                                                    \
    {                                                                                           \
        const ACC *acc = acc_;                                                                  \
        const ACC c_ = (ACC)cnt;                                                                \
        const int sh = log2_exact(cnt);                                                         \
        if (sh >= 0 && os == (int64_t)sizeof(T)) {                                              \
            FIN_POW2_LOOP(T, ACC, (int64_t)sizeof(T))                                           \
        } else if (sh >= 0) {                                                                   \
            FIN_POW2_LOOP(T, ACC, os)                                                           \
        } else {                                                                                \
            for (int64_t o = 0; o < n - 1; o++) {                                               \
                T v = (T)rhe_##K(acc[o], c_, -1);                                               \
                memcpy(out + o * os, &v, sizeof(T));                                            \
            }                                                                                   \
        }                                                                                       \
        T v = (T)rhe_##K(acc[n - 1], (ACC)cnt_last, log2_exact(cnt_last));                      \
        memcpy(out + (n - 1) * os, &v, sizeof(T));                                              \
    }
#define DEF_FIN_FLT(NAME, T, LANES, STORE)                                                      \
    static void fin_##NAME(const void *acc_, uint8_t *out, int64_t os, int64_t n, int64_t cnt,  \
                           int64_t cnt_last)                                                    \
    {                                                                                           \
        const double *acc = acc_;                                                               \
        for (int64_t o = 0; o < n; o++)                                                         \
            for (int l = 0; l < LANES; l++) {                                                   \
                T v = STORE(acc[o * LANES + l] / (double)(o == n - 1 ? cnt_last : cnt));        \
                memcpy(out + o * os + l * (int64_t)sizeof(T), &v, sizeof(T));                   \
            }                                                                                   \
    }
#define ST_CAST_F(x) ((float)(x))
#define ST_CAST_D(x) (x)
#define ST_HALF(x) ngff_double_to_half(x)

#define DEF_INT3(NAME, T, LOAD)                                                                 \
    DEF_ACC(NAME##_32, T, int32_t, 1, LOAD)                                                     \
    DEF_ACC(NAME##_64, T, int64_t, 1, LOAD)                                                     \
    DEF_ACC(NAME##_128, T, __int128, 1, LOAD)                                                   \
    DEF_FIN_INT(NAME##_32, T, int32_t, 32)                                                      \
    DEF_FIN_INT(NAME##_64, T, int64_t, 64)                                                      \
    DEF_FIN_INT(NAME##_128, T, __int128, 128)

DEF_INT3(b, uint8_t, LD_B)
DEF_INT3(i8, int8_t, LD_T)
DEF_INT3(u8, uint8_t, LD_T)
DEF_INT3(i16, int16_t, LD_T)
DEF_INT3(u16, uint16_t, LD_T)
DEF_INT3(i32, int32_t, LD_T)
DEF_INT3(u32, uint32_t, LD_T)
DEF_INT3(i64, int64_t, LD_T)
DEF_INT3(u64, uint64_t, LD_T)
DEF_ACC(f16, uint16_t, double, 1, LD_H)
DEF_ACC(f32, float, double, 1, LD_T)
DEF_ACC(f64, double, double, 1, LD_T)
DEF_ACC(c64, float, double, 2, LD_T)
DEF_ACC(c128, double, double, 2, LD_T)
DEF_FIN_FLT(f16, uint16_t, 1, ST_HALF)
DEF_FIN_FLT(f32, float, 1, ST_CAST_F)
DEF_FIN_FLT(f64, double, 1, ST_CAST_D)
DEF_FIN_FLT(c64, float, 2, ST_CAST_F)
DEF_FIN_FLT(c128, double, 2, ST_CAST_D)

typedef void (*acc_fn)(void *, const uint8_t *, int64_t, int64_t, int64_t, int64_t);
typedef void (*fin_fn)(const void *, uint8_t *, int64_t, int64_t, int64_t, int64_t);

/* [dtype][accumulator: int32, int64, int128] (floats: one double kernel) */
#define INT3(N) {acc_##N##_32, acc_##N##_64, acc_##N##_128}
#define FIN3(N) {fin_##N##_32, fin_##N##_64, fin_##N##_128}
static const acc_fn ACC_FNS[NGFF_DS_DTYPE_COUNT][3] = {
    INT3(b), INT3(i8), INT3(u8), INT3(i16), INT3(u16), INT3(i32), INT3(u32), INT3(i64), INT3(u64),
    {acc_f16, acc_f16, acc_f16}, {acc_f32, acc_f32, acc_f32}, {acc_f64, acc_f64, acc_f64},
    {acc_c64, acc_c64, acc_c64}, {acc_c128, acc_c128, acc_c128}};
static const fin_fn FIN_FNS[NGFF_DS_DTYPE_COUNT][3] = {
    FIN3(b), FIN3(i8), FIN3(u8), FIN3(i16), FIN3(u16), FIN3(i32), FIN3(u32), FIN3(i64), FIN3(u64),
    {fin_f16, fin_f16, fin_f16}, {fin_f32, fin_f32, fin_f32}, {fin_f64, fin_f64, fin_f64},
    {fin_c64, fin_c64, fin_c64}, {fin_c128, fin_c128, fin_c128}};
static const int64_t ACC_BYTES[3] = {4, 8, 16};

/* Nearest: out[o] = row[f * o], one element of `size` bytes (a constant per case). */
#define NEAREST_CASE(SIZE)                                                                      \
    case SIZE:                                                                                  \
        for (int64_t o = 0; o < nx; o++)                                                        \
            memcpy(out + o * os, p + o * step, SIZE);                                           \
        break;
static void nearest_row(const uint8_t *p, int64_t step, int64_t nx, int64_t size, uint8_t *out,
                        int64_t os)
{
    switch (size) {
        NEAREST_CASE(1)
        NEAREST_CASE(2)
        NEAREST_CASE(4)
        NEAREST_CASE(8)
        NEAREST_CASE(16)
    default:
        break;
    }
}

/* ---------------------------------------------------------------------------------------
 * Row tasks (mean, nearest, mode) and the entry point.
 * --------------------------------------------------------------------------------------- */

typedef struct row_plan {
    const ds_ctx *c;
    int64_t n_rows, rows_per_task;
    int64_t max_block_rows; /* input rows of one output row's blocks, at most */
    int64_t max_block;      /* pixels of one block, at most */
    int32_t acc_kind;       /* mean on integers: accumulator int32 / int64 / int128 */
} row_plan;

static ngff_status row_task(void *ctx_, int64_t task)
{
    const row_plan *rp = ctx_;
    const ds_ctx *c = rp->c;
    const int32_t L = c->ndim - 1;
    const int64_t r0 = task * rp->rows_per_task, r1 = min64(r0 + rp->rows_per_task, rp->n_rows);
    int64_t o[NGFF_MAX_DIMS], bl[NGFF_MAX_DIMS], k[NGFF_MAX_DIMS];
    int64_t rem = r0;
    for (int32_t d = L - 1; d >= 0; d--) {
        o[d] = rem % c->out_shape[d];
        rem /= c->out_shape[d];
    }
    const int64_t nx = c->out_shape[L], f = c->fac[L], s = c->in_strides[L];
    const int64_t first = f * c->out_start[L], last = f * (c->out_start[L] + nx - 1);
    const int64_t last_w = min64(f, c->full[L] - last);
    const int64_t nfull = last_w == f ? nx : nx - 1, tail = last_w == f ? 0 : last_w;
    const int64_t x_off = (first - c->in_start[L]) * s;

    int64_t acc_bytes = c->dtype >= NGFF_DS_FLOAT16 ? 8 : ACC_BYTES[rp->acc_kind];
    size_t scratch = (size_t)rp->max_block_rows * sizeof(const uint8_t *);
    size_t extra = c->method == NGFF_DS_MEAN   ? (size_t)(nx * c->lanes * acc_bytes)
                   : c->method == NGFF_DS_MODE ? (size_t)(rp->max_block * c->itemsize)
                                               : 0;
    const uint8_t **rows = malloc(scratch + extra + 16);
    if (rows == NULL)
        return NGFF_ERR_NOMEM;
    void *buf = (uint8_t *)rows + ((scratch + 15) & ~(size_t)15);

    for (int64_t r = r0; r < r1; r++) {
        int64_t off = x_off, nrows = 1;
        uint8_t *orow = c->out;
        for (int32_t d = 0; d < L; d++) {
            int64_t bs = c->fac[d] * (c->out_start[d] + o[d]);
            bl[d] = c->method == NGFF_DS_NEAREST ? 1 : min64(c->fac[d], c->full[d] - bs);
            k[d] = 0;
            off += (bs - c->in_start[d]) * c->in_strides[d];
            orow += o[d] * c->out_strides[d];
            nrows *= bl[d];
        }
        /* the block's input rows, in C order */
        for (int64_t i = 0; i < nrows; i++) {
            rows[i] = c->in + off;
            for (int32_t d = L - 1; d >= 0; d--) {
                if (++k[d] < bl[d]) {
                    off += c->in_strides[d];
                    break;
                }
                off -= (bl[d] - 1) * c->in_strides[d];
                k[d] = 0;
            }
        }
        if (c->method == NGFF_DS_MEAN) {
            acc_fn acc = ACC_FNS[c->dtype][rp->acc_kind];
            memset(buf, 0, (size_t)(nx * c->lanes * acc_bytes));
            for (int64_t i = 0; i < nrows; i++)
                acc(buf, rows[i], s, f, nfull, tail);
            FIN_FNS[c->dtype][rp->acc_kind](buf, orow, c->out_strides[L], nx, nrows * f, nrows * last_w);
        } else if (c->method == NGFF_DS_MODE) {
            ngff_ds_mode_row(c->dtype, rows, nrows, s, f, nx, last_w, buf, orow, c->out_strides[L]);
        } else {
            nearest_row(rows[0], f * s, nx, c->itemsize, orow, c->out_strides[L]);
        }
        for (int32_t d = L - 1; d >= 0; d--) {
            if (++o[d] < c->out_shape[d])
                break;
            o[d] = 0;
        }
    }
    free(rows);
    return NGFF_OK;
}

static int mul_ok(int64_t *acc, int64_t v)
{
    return !__builtin_mul_overflow(*acc, v, acc);
}

#define FAIL(...)                                                                               \
    do {                                                                                        \
        if (detail)                                                                             \
            snprintf(detail, NGFF_DETAIL_CAP, __VA_ARGS__);                                     \
        return NGFF_ERR_INVALID_ARGUMENT;                                                       \
    } while (0)

ngff_status ngff_downsample(ngff_pool *pool, int32_t method, int32_t dtype, int32_t ndim,
                            const int64_t *full_shape, const int64_t *factors,
                            const uint8_t *in, const int64_t *in_start, const int64_t *in_shape,
                            const int64_t *in_strides,
                            uint8_t *out, const int64_t *out_start, const int64_t *out_shape,
                            const int64_t *out_strides, char *detail)
{
    if (detail)
        detail[0] = 0;
    if (method < NGFF_DS_MEAN || method > NGFF_DS_GAUSSIAN)
        FAIL("unknown downsampling method %d", (int)method);
    if (dtype < 0 || dtype >= NGFF_DS_DTYPE_COUNT)
        FAIL("unknown dtype code %d", (int)dtype);
    if (ndim < 1 || ndim > NGFF_MAX_DIMS)
        FAIL("%d dimensions (1 to %d are supported)", (int)ndim, NGFF_MAX_DIMS);
    if (!full_shape || !factors || !in_start || !in_shape || !in_strides || !out_start || !out_shape ||
        !out_strides)
        FAIL("a shape, box or stride array is NULL");
    if (method == NGFF_DS_MODE && dtype >= NGFF_DS_FLOAT16)
        FAIL("mode needs integer data");
    int empty = 0;
    for (int32_t d = 0; d < ndim; d++) {
        int64_t n = full_shape[d], f = factors[d];
        if (n < 0)
            FAIL("axis %d: full shape %lld is negative", (int)d, (long long)n);
        if (f < 1)
            FAIL("axis %d: factor %lld is not >= 1", (int)d, (long long)f);
        if (f > (INT64_MAX - n - 1) / 4)
            FAIL("axis %d: factor %lld is too large", (int)d, (long long)f);
        int64_t level = n / f + (n % f != 0);
        if (out_start[d] < 0 || out_shape[d] < 0 || out_start[d] > level || out_shape[d] > level - out_start[d])
            FAIL("axis %d: output box [%lld, %lld) is outside the level's [0, %lld)", (int)d,
                 (long long)out_start[d], (long long)(out_start[d] + out_shape[d]), (long long)level);
        if (in_start[d] < 0 || in_shape[d] < 0 || in_start[d] > n || in_shape[d] > n - in_start[d])
            FAIL("axis %d: input box [%lld, %lld) is outside the image's [0, %lld)", (int)d,
                 (long long)in_start[d], (long long)(in_start[d] + in_shape[d]), (long long)n);
        empty |= out_shape[d] == 0;
    }
    if (empty)
        return NGFF_OK;
    if (!in || !out)
        FAIL("the input or output buffer is NULL");
    int64_t need_start[NGFF_MAX_DIMS], need_shape[NGFF_MAX_DIMS];
    ngff_downsample_input_box(method, ndim, full_shape, factors, out_start, out_shape, need_start, need_shape);
    for (int32_t d = 0; d < ndim; d++)
        if (need_start[d] < in_start[d] || need_start[d] + need_shape[d] > in_start[d] + in_shape[d])
            FAIL("axis %d: input box [%lld, %lld) does not cover [%lld, %lld), what the outputs need",
                 (int)d, (long long)in_start[d], (long long)(in_start[d] + in_shape[d]),
                 (long long)need_start[d], (long long)(need_start[d] + need_shape[d]));

    ds_ctx c;
    memset(&c, 0, sizeof c);
    c.method = method;
    c.dtype = dtype;
    c.ndim = ndim;
    c.lanes = dtype >= NGFF_DS_COMPLEX64 ? 2 : 1;
    c.itemsize = ITEMSIZE[dtype];
    c.in = in;
    c.out = out;
    c.threads = pool ? ngff_pool_threads(pool) : 1;
    if (c.threads < 1)
        c.threads = 1;
    for (int32_t d = 0; d < ndim; d++) {
        c.full[d] = full_shape[d];
        c.fac[d] = factors[d];
        c.in_start[d] = in_start[d];
        c.in_shape[d] = in_shape[d];
        c.in_strides[d] = in_strides[d];
        c.out_start[d] = out_start[d];
        c.out_shape[d] = out_shape[d];
        c.out_strides[d] = out_strides[d];
    }
    if (method == NGFF_DS_GAUSSIAN)
        return ngff_ds_gaussian(pool, &c);

    row_plan rp;
    memset(&rp, 0, sizeof rp);
    rp.c = &c;
    rp.n_rows = 1;
    rp.max_block_rows = 1;
    const int32_t L = ndim - 1;
    for (int32_t d = 0; d < L; d++)
        if (!mul_ok(&rp.n_rows, out_shape[d]) ||
            !mul_ok(&rp.max_block_rows, method == NGFF_DS_NEAREST ? 1 : min64(factors[d], full_shape[d])))
            return NGFF_ERR_OVERFLOW;
    rp.max_block = rp.max_block_rows;
    if (!mul_ok(&rp.max_block, min64(factors[L], full_shape[L])))
        return NGFF_ERR_OVERFLOW;
    if (c.itemsize <= 2 && rp.max_block <= (1 << 15))
        rp.acc_kind = 0;
    else if (c.itemsize <= 4 && rp.max_block <= (INT64_C(1) << 31))
        rp.acc_kind = 1;
    else
        rp.acc_kind = 2;
    int64_t row_work = rp.max_block_rows;
    if (!mul_ok(&row_work, min64(full_shape[L], factors[L] * out_shape[L])))
        row_work = INT64_MAX;
    rp.rows_per_task = ds_items_per_task(rp.n_rows, row_work, c.threads);
    int64_t n_tasks = (rp.n_rows + rp.rows_per_task - 1) / rp.rows_per_task;
    return ngff_pool_for(n_tasks > 1 ? pool : NULL, n_tasks, row_task, &rp, NULL);
}
