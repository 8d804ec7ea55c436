#include "ngff_grid.h"

static int valid_args(int32_t ndim, const int64_t *shape, const int64_t *chunk_shape,
                      const int64_t *sel_start, const int64_t *sel_stop)
{
    if (ndim < 0 || ndim > NGFF_MAX_DIMS)
        return 0;
    for (int32_t d = 0; d < ndim; d++) {
        if (shape[d] < 0 || chunk_shape[d] <= 0)
            return 0;
        if (sel_start[d] < 0 || sel_stop[d] < sel_start[d] || sel_stop[d] > shape[d])
            return 0;
    }
    return 1;
}

int64_t ngff_grid_count(int32_t ndim, const int64_t *shape, const int64_t *chunk_shape,
                        const int64_t *sel_start, const int64_t *sel_stop)
{
    if (!valid_args(ndim, shape, chunk_shape, sel_start, sel_stop))
        return -1;
    /* empty first: an empty axis after one whose count would overflow is still 0 chunks */
    for (int32_t d = 0; d < ndim; d++)
        if (sel_stop[d] == sel_start[d])
            return 0;
    int64_t n = 1;
    for (int32_t d = 0; d < ndim; d++) {
        int64_t first = sel_start[d] / chunk_shape[d];
        int64_t last = (sel_stop[d] - 1) / chunk_shape[d];
        int64_t count = last - first + 1;
        if (__builtin_mul_overflow(n, count, &n))
            return -1;
    }
    return n;
}

ngff_status ngff_grid_plan(int32_t ndim, const int64_t *shape, const int64_t *chunk_shape,
                           const int64_t *sel_start, const int64_t *sel_stop, int64_t n,
                           int64_t *chunk_coords, int64_t *boxes)
{
    if (ngff_grid_count(ndim, shape, chunk_shape, sel_start, sel_stop) != n)
        return NGFF_ERR_INVALID_ARGUMENT;
    if (n == 0)
        return NGFF_OK;
    int64_t first[NGFF_MAX_DIMS], last[NGFF_MAX_DIMS], cur[NGFF_MAX_DIMS];
    for (int32_t d = 0; d < ndim; d++) {
        first[d] = sel_start[d] / chunk_shape[d];
        last[d] = (sel_stop[d] - 1) / chunk_shape[d];
        cur[d] = first[d];
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t *coords = chunk_coords + i * ndim;
        int64_t *box = boxes + i * 3 * ndim;
        for (int32_t d = 0; d < ndim; d++) {
            int64_t chunk_begin = cur[d] * chunk_shape[d]; /* <= sel_stop - 1 */
            int64_t lo = sel_start[d] > chunk_begin ? sel_start[d] : chunk_begin;
            /* chunk_begin + chunk_shape can pass INT64_MAX (the last chunk of a huge axis):
             * compare against what is left of the selection instead */
            int64_t hi = sel_stop[d] - chunk_begin <= chunk_shape[d] ? sel_stop[d]
                                                                     : chunk_begin + chunk_shape[d];
            coords[d] = cur[d];
            NGFF_BOX_INNER(box, ndim)[d] = lo - chunk_begin;
            NGFF_BOX_SHAPE(box, ndim)[d] = hi - lo;
            NGFF_BOX_OUT(box, ndim)[d] = lo - sel_start[d];
        }
        /* advance the C-order odometer */
        for (int32_t d = ndim - 1; d >= 0; d--) {
            if (++cur[d] <= last[d])
                break;
            cur[d] = first[d];
        }
    }
    return NGFF_OK;
}

static int64_t put_int(char *buf, size_t cap, size_t pos, int64_t value)
{
    char digits[24];
    int nd = 0;
    uint64_t v = (uint64_t)value;
    if (value < 0)
        return -1;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (pos + (size_t)nd > cap)
        return -1;
    for (int k = 0; k < nd; k++)
        buf[pos + (size_t)k] = digits[nd - 1 - k];
    return (int64_t)(pos + (size_t)nd);
}

int64_t ngff_chunk_key(int32_t encoding, char separator, int32_t ndim, const int64_t *coords,
                       char *buf, size_t cap)
{
    if (ndim < 0 || ndim > NGFF_MAX_DIMS || (separator != '/' && separator != '.'))
        return -1;
    size_t pos = 0;
    if (encoding == NGFF_KEY_DEFAULT) {
        if (cap < 1)
            return -1;
        buf[pos++] = 'c';
        for (int32_t d = 0; d < ndim; d++) {
            if (pos + 1 > cap)
                return -1;
            buf[pos++] = separator;
            int64_t r = put_int(buf, cap, pos, coords[d]);
            if (r < 0)
                return -1;
            pos = (size_t)r;
        }
        return (int64_t)pos;
    }
    if (encoding != NGFF_KEY_V2)
        return -1;
    if (ndim == 0)
        return put_int(buf, cap, 0, 0);
    for (int32_t d = 0; d < ndim; d++) {
        if (d > 0) {
            if (pos + 1 > cap)
                return -1;
            buf[pos++] = separator;
        }
        int64_t r = put_int(buf, cap, pos, coords[d]);
        if (r < 0)
            return -1;
        pos = (size_t)r;
    }
    return (int64_t)pos;
}
