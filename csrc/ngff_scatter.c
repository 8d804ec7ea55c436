#include "ngff_scatter.h"

#include <string.h>

#include "ngff_grid.h"

/* A box reduced to the fewest axes: unit axes dropped, axes that are contiguous in both
 * source and destination merged, so the inner loop runs as long as possible. */
typedef struct {
    int32_t ndim;
    int64_t shape[NGFF_MAX_DIMS];
    int64_t src[NGFF_MAX_DIMS];
    int64_t dst[NGFF_MAX_DIMS];
} flat_box;

static int collapse(int32_t ndim, const int64_t *shape, const int64_t *src_strides,
                    const int64_t *dst_strides, flat_box *b)
{
    b->ndim = 0;
    for (int32_t d = 0; d < ndim; d++) {
        if (shape[d] == 0)
            return 0; /* empty box */
        if (shape[d] == 1)
            continue;
        int32_t k = b->ndim;
        if (k > 0 && b->src[k - 1] == src_strides[d] * shape[d] &&
            b->dst[k - 1] == dst_strides[d] * shape[d]) {
            b->shape[k - 1] *= shape[d];
            b->src[k - 1] = src_strides[d];
            b->dst[k - 1] = dst_strides[d];
            continue;
        }
        b->shape[k] = shape[d];
        b->src[k] = src_strides[d];
        b->dst[k] = dst_strides[d];
        b->ndim++;
    }
    if (b->ndim == 0) { /* a single element */
        b->ndim = 1;
        b->shape[0] = 1;
        b->src[0] = 0;
        b->dst[0] = 0;
    }
    return 1;
}

static void swap_copy(uint8_t *dst, const uint8_t *src, int32_t itemsize)
{
    for (int32_t k = 0; k < itemsize; k++)
        dst[k] = src[itemsize - 1 - k];
}

/* Complex types swap each real/imag half separately: numpy byte order is per component. */
static void swap_copy_elem(uint8_t *dst, const uint8_t *src, int32_t itemsize, int32_t parts)
{
    int32_t part = itemsize / parts;
    for (int32_t p = 0; p < parts; p++)
        swap_copy(dst + p * part, src + p * part, part);
}

static void copy_row(uint8_t *dst, int64_t dst_stride, const uint8_t *src, int64_t src_stride,
                     int64_t n, int32_t itemsize, int32_t byteswap)
{
    if (!byteswap && dst_stride == itemsize && src_stride == itemsize) {
        memcpy(dst, src, (size_t)(n * itemsize));
        return;
    }
    if (byteswap) {
        int32_t parts = byteswap;
        for (int64_t i = 0; i < n; i++)
            swap_copy_elem(dst + i * dst_stride, src + i * src_stride, itemsize, parts);
        return;
    }
    switch (itemsize) {
    case 1:
        for (int64_t i = 0; i < n; i++)
            dst[i * dst_stride] = src[i * src_stride];
        break;
    case 2:
        for (int64_t i = 0; i < n; i++)
            memcpy(dst + i * dst_stride, src + i * src_stride, 2);
        break;
    case 4:
        for (int64_t i = 0; i < n; i++)
            memcpy(dst + i * dst_stride, src + i * src_stride, 4);
        break;
    case 8:
        for (int64_t i = 0; i < n; i++)
            memcpy(dst + i * dst_stride, src + i * src_stride, 8);
        break;
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy(dst + i * dst_stride, src + i * src_stride, (size_t)itemsize);
    }
}

void ngff_scatter(int32_t ndim, const int64_t *shape, int32_t itemsize, int32_t byteswap,
                  const uint8_t *src, const int64_t *src_strides, uint8_t *dst,
                  const int64_t *dst_strides)
{
    flat_box b;
    if (!collapse(ndim, shape, src_strides, dst_strides, &b))
        return;
    int32_t inner = b.ndim - 1;
    int64_t idx[NGFF_MAX_DIMS] = {0};
    for (;;) {
        copy_row(dst, b.dst[inner], src, b.src[inner], b.shape[inner], itemsize, byteswap);
        int32_t d = inner - 1;
        for (; d >= 0; d--) {
            src += b.src[d];
            dst += b.dst[d];
            if (++idx[d] < b.shape[d])
                break;
            src -= b.src[d] * b.shape[d];
            dst -= b.dst[d] * b.shape[d];
            idx[d] = 0;
        }
        if (d < 0)
            return;
    }
}

static int all_zero(const uint8_t *value, int32_t itemsize)
{
    for (int32_t k = 0; k < itemsize; k++)
        if (value[k])
            return 0;
    return 1;
}

static void fill_row(uint8_t *dst, int64_t stride, int64_t n, int32_t itemsize,
                     const uint8_t *value, int zero)
{
    if (stride == itemsize) {
        size_t total = (size_t)(n * itemsize);
        if (zero) {
            memset(dst, 0, total);
            return;
        }
        /* replicate the pattern by doubling */
        memcpy(dst, value, (size_t)itemsize);
        size_t done = (size_t)itemsize;
        while (done < total) {
            size_t k = done < total - done ? done : total - done;
            memcpy(dst + done, dst, k);
            done += k;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++)
        memcpy(dst + i * stride, value, (size_t)itemsize);
}

void ngff_fill(int32_t ndim, const int64_t *shape, int32_t itemsize, const uint8_t *value,
               uint8_t *dst, const int64_t *dst_strides)
{
    flat_box b;
    int64_t zeros[NGFF_MAX_DIMS] = {0};
    /* with all source strides 0 only the destination decides which axes merge */
    if (!collapse(ndim, shape, zeros, dst_strides, &b))
        return;
    int zero = all_zero(value, itemsize);
    int32_t inner = b.ndim - 1;
    int64_t idx[NGFF_MAX_DIMS] = {0};
    for (;;) {
        fill_row(dst, b.dst[inner], b.shape[inner], itemsize, value, zero);
        int32_t d = inner - 1;
        for (; d >= 0; d--) {
            dst += b.dst[d];
            if (++idx[d] < b.shape[d])
                break;
            dst -= b.dst[d] * b.shape[d];
            idx[d] = 0;
        }
        if (d < 0)
            return;
    }
}

int ngff_box_is_contiguous(int32_t ndim, const int64_t *shape, int32_t itemsize,
                           const int64_t *strides)
{
    int64_t expect = itemsize;
    for (int32_t d = ndim - 1; d >= 0; d--) {
        if (shape[d] == 1)
            continue;
        if (strides[d] != expect)
            return 0;
        expect *= shape[d];
    }
    return 1;
}
