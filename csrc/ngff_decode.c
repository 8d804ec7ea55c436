#define _GNU_SOURCE
#include "ngff_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngff_fetch.h"
#include "ngff_scatter.h"

struct ngff_worker {
    ngff_codec_ctx *codecs;
    ngff_buffer buf[3]; /* 0: encoded bytes read from a file; 1, 2: decode ping-pong */
};

ngff_worker *ngff_worker_create(void)
{
    ngff_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->codecs = ngff_codec_ctx_create();
    if (!w->codecs) {
        free(w);
        return NULL;
    }
    return w;
}

void ngff_worker_destroy(ngff_worker *w)
{
    if (!w)
        return;
    ngff_codec_ctx_destroy(w->codecs);
    for (int k = 0; k < 3; k++)
        ngff_buffer_free(&w->buf[k]);
    free(w);
}

ngff_status ngff_pipeline_init(ngff_pipeline *p)
{
    if (p->ndim < 0 || p->ndim > NGFF_MAX_DIMS || p->itemsize < 1 || p->itemsize > 16)
        return NGFF_ERR_INVALID_ARGUMENT;
    if (p->n_codecs < 0 || p->n_codecs > NGFF_MAX_CODECS)
        return NGFF_ERR_INVALID_ARGUMENT;
    if (p->delta < NGFF_DELTA_NONE || p->delta > NGFF_DELTA_FLOAT ||
        (p->delta == NGFF_DELTA_FLOAT && p->itemsize != 4 && p->itemsize != 8) ||
        (p->delta != NGFF_DELTA_NONE && p->itemsize != 1 && p->itemsize != 2 &&
         p->itemsize != 4 && p->itemsize != 8))
        return NGFF_ERR_INVALID_ARGUMENT;
    if (p->byteswap < 0 || p->byteswap > 2 || (p->byteswap && p->itemsize % p->byteswap))
        return NGFF_ERR_INVALID_ARGUMENT;
    for (int32_t k = 0; k < p->n_codecs; k++)
        if (p->codecs[k] < NGFF_CODEC_BLOSC || p->codecs[k] > NGFF_CODEC_CRC32C)
            return NGFF_ERR_INVALID_ARGUMENT;
    int64_t n = p->itemsize;
    for (int32_t d = 0; d < p->ndim; d++) {
        if (p->chunk_shape[d] <= 0)
            return NGFF_ERR_INVALID_ARGUMENT;
        if (__builtin_mul_overflow(n, p->chunk_shape[d], &n))
            return NGFF_ERR_OVERFLOW;
    }
    /* every stride must keep the whole chunk inside its chunk_nbytes buffer */
    int64_t reach = 0;
    for (int32_t d = 0; d < p->ndim; d++) {
        if (p->chunk_strides[d] < 0)
            return NGFF_ERR_INVALID_ARGUMENT;
        int64_t r;
        if (__builtin_mul_overflow(p->chunk_strides[d], p->chunk_shape[d] - 1, &r) ||
            __builtin_add_overflow(reach, r, &reach))
            return NGFF_ERR_OVERFLOW;
    }
    if (reach + p->itemsize > n)
        return NGFF_ERR_INVALID_ARGUMENT;
    p->chunk_nbytes = n;
    p->c_order = ngff_box_is_contiguous(p->ndim, p->chunk_shape, p->itemsize, p->chunk_strides);
    p->plain_layout = !p->byteswap && p->delta == NGFF_DELTA_NONE && p->c_order;
    return NGFF_OK;
}

static ngff_status fail(ngff_chunk_result *r, ngff_status st, int32_t codec)
{
    r->status = st;
    r->codec = codec;
    return st;
}

static int is_compressor(int32_t codec) { return codec != NGFF_CODEC_CRC32C; }

/* The most bytes codecs[0..k-1] (encode order) can make of a chunk, so the most a decoder at
 * position k may produce. Compressors grow incompressible data only a little (blosc falls
 * back to a copy plus its header, LZ4 by n/255 + 16, zstd and deflate by less), so
 * n + n/2 + 64 KiB per compressor is generous; crc32c adds 4. Without this a header of a
 * few bytes could make a worker allocate (and keep) gigabytes. */
static uint64_t encoded_bound(const ngff_pipeline *p, int32_t k)
{
    uint64_t n = (uint64_t)p->chunk_nbytes;
    for (int32_t j = 0; j < k; j++) {
        uint64_t grow = is_compressor(p->codecs[j]) ? n / 2 + 65536 : 4;
        n = n > UINT64_MAX - grow ? UINT64_MAX : n + grow;
    }
    return n;
}

/* Undo numcodecs' Delta in place: a running sum in the element type. */
static void undo_delta(uint8_t *buf, int64_t nbytes, const ngff_pipeline *p)
{
    int64_t n = nbytes / p->itemsize;
#define CUMSUM(T)                                                                              \
    do {                                                                                       \
        T acc = 0, v;                                                                          \
        for (int64_t i = 0; i < n; i++) {                                                      \
            memcpy(&v, buf + i * (int64_t)sizeof(T), sizeof(T));                               \
            acc = (T)(acc + v);                                                                \
            memcpy(buf + i * (int64_t)sizeof(T), &acc, sizeof(T));                             \
        }                                                                                      \
    } while (0)
    if (p->delta == NGFF_DELTA_FLOAT) {
        if (p->itemsize == 4)
            CUMSUM(float);
        else
            CUMSUM(double);
        return;
    }
    /* integers wrap like numpy's: accumulate unsigned */
    switch (p->itemsize) {
    case 1: CUMSUM(uint8_t); break;
    case 2: CUMSUM(uint16_t); break;
    case 4: CUMSUM(uint32_t); break;
    default: CUMSUM(uint64_t); break;
    }
#undef CUMSUM
}

static void swap_in_place(uint8_t *buf, int64_t nbytes, int32_t itemsize)
{
    for (int64_t i = 0; i + itemsize <= nbytes; i += itemsize)
        for (int32_t a = 0, b = itemsize - 1; a < b; a++, b--) {
            uint8_t t = buf[i + a];
            buf[i + a] = buf[i + b];
            buf[i + b] = t;
        }
}

/* Where one chunk goes and how much of it is needed. */
typedef struct chunk_box {
    const int64_t *inner; /* box start inside the chunk */
    const int64_t *shape; /* box shape */
    uint8_t *dst;         /* output element at the box start */
    int full_box;         /* the box is the whole chunk */
    int direct;           /* ... and lands as one contiguous run: decode straight into it */
    size_t span_lo, span_hi; /* decoded bytes the box needs, first to last element */
    int blosc_partial;    /* decode only the blosc blocks holding the span */
    int partial_source;   /* only those blocks were read from the file (the rest is unread) */
} chunk_box;

/*
 * Blosc, block by block: each block is decoded into a small (cache-resident) buffer and its
 * part of the box scattered at once, so the whole chunk never round-trips through memory, and
 * blocks outside the box are never decoded. Needs C-order chunks whose blocks are whole
 * slabs along some axis j (blocks tile axis j-1). Sets *handled to 0 when that does not hold.
 */
static ngff_status decode_blosc_blocks(ngff_worker *w, const ngff_batch *b, const chunk_box *cb,
                                       const uint8_t *src, size_t src_len, int ping,
                                       ngff_chunk_result *res, int *handled)
{
    const ngff_pipeline *p = b->pipeline;
    const int32_t ndim = p->ndim;
    const size_t chunk_nbytes = (size_t)p->chunk_nbytes;
    char *detail = res->detail;
    *handled = 0;
    if (!p->c_order || ndim == 0)
        return NGFF_OK;
    size_t blocksize, typesize;
    ngff_status st = ngff_blosc_layout(src, src_len, chunk_nbytes, &blocksize, &typesize, detail);
    if (st == NGFF_ERR_UNSUPPORTED) { /* a frame that decodes only whole */
        detail[0] = 0;
        return NGFF_OK;
    }
    if (st != NGFF_OK)
        return fail(res, st, NGFF_CODEC_BLOSC);
    if (blocksize >= chunk_nbytes || typesize == 0 || chunk_nbytes % typesize)
        return NGFF_OK;
    const int64_t *slab = p->chunk_strides; /* bytes per step along each axis (C order) */
    int32_t j = -1;
    for (int32_t d = 0; d < ndim; d++) {
        size_t outer = d == 0 ? chunk_nbytes : (size_t)slab[d - 1];
        if (blocksize % (size_t)slab[d] == 0 && (d == 0 || outer % blocksize == 0)) {
            j = d;
            break;
        }
    }
    if (j < 0)
        return NGFF_OK;
    uint8_t *block = ngff_buffer_reserve(&w->buf[ping], blocksize + 2 * 256);
    if (!block)
        return fail(res, NGFF_ERR_NOMEM, NGFF_CODEC_BLOSC);
    size_t first = cb->full_box ? 0 : cb->span_lo / blocksize;
    size_t last = cb->full_box ? (chunk_nbytes - 1) / blocksize : (cb->span_hi - 1) / blocksize;
    int64_t sub_shape[NGFF_MAX_DIMS];
    for (size_t k = first; k <= last; k++) {
        size_t off = k * blocksize;
        size_t len = chunk_nbytes - off < blocksize ? chunk_nbytes - off : blocksize;
        uint8_t *dst = cb->dst;
        int inside = 1;
        for (int32_t d = 0; d < j; d++) { /* the block sits at one index of each outer axis */
            int64_t c = (int64_t)(off / (size_t)slab[d]) % p->chunk_shape[d];
            if (c < cb->inner[d] || c >= cb->inner[d] + cb->shape[d]) {
                inside = 0;
                break;
            }
            sub_shape[d] = 1;
            dst += (c - cb->inner[d]) * b->out_strides[d];
        }
        int64_t start = (int64_t)(off / (size_t)slab[j]) % p->chunk_shape[j];
        int64_t lo = start > cb->inner[j] ? start : cb->inner[j];
        int64_t stop = start + (int64_t)(len / (size_t)slab[j]);
        int64_t hi = stop < cb->inner[j] + cb->shape[j] ? stop : cb->inner[j] + cb->shape[j];
        if (!inside || lo >= hi)
            continue;
        size_t origin;
        st = ngff_blosc_decode_range(w->codecs, src, src_len, chunk_nbytes, off, off + len, block,
                                     blocksize + 2 * 256, &origin, detail);
        if (st != NGFF_OK && st != NGFF_ERR_NOMEM && !cb->partial_source) {
            /* c-blosc2's getitem refuses some frames its whole decode takes (a block size
             * beyond the chunk, pipeline-blosc-block-beyond-nbytes.bin): the whole decode
             * decides. Blocks already scattered are written again by it. */
            detail[0] = 0;
            return NGFF_OK;
        }
        if (st != NGFF_OK)
            return fail(res, st, NGFF_CODEC_BLOSC);
        sub_shape[j] = hi - lo;
        dst += (lo - cb->inner[j]) * b->out_strides[j];
        const uint8_t *from = block + (off - origin) + (size_t)(lo - start) * (size_t)slab[j];
        for (int32_t d = j + 1; d < ndim; d++) {
            sub_shape[d] = cb->shape[d];
            from += cb->inner[d] * slab[d];
        }
        ngff_scatter(ndim, sub_shape, p->itemsize, p->byteswap, from, p->chunk_strides, dst,
                     b->out_strides);
    }
    *handled = 1;
    return NGFF_OK;
}

/* Clears the identity byte shuffle of a 1-byte-item blosc frame (see
 * ngff_blosc_identity_shuffle): in place when the bytes are in a worker buffer, else in a
 * copy in buf[0] (unused by in-memory sources), so decoding 256 KiB of uint8 costs ~20 µs
 * instead of ~250 µs. Never writes the caller's bytes. */
static ngff_status unflag_identity_shuffle(ngff_worker *w, const uint8_t **cur, size_t cur_len)
{
    if (!ngff_blosc_identity_shuffle(*cur, cur_len))
        return NGFF_OK;
    uint8_t *own = (uint8_t *)(uintptr_t)*cur;
    if (*cur != w->buf[0].data && *cur != w->buf[1].data && *cur != w->buf[2].data) {
        own = ngff_buffer_reserve(&w->buf[0], cur_len);
        if (!own)
            return NGFF_ERR_NOMEM;
        memcpy(own, *cur, cur_len);
        *cur = own;
    }
    own[2] &= (uint8_t)~0x1;
    return NGFF_OK;
}

/* Encoded bytes → codec chain (reverse order) → scatter into the box. */
static ngff_status decode_bytes(ngff_worker *w, const ngff_batch *b, const chunk_box *cb,
                                const uint8_t *cur, size_t cur_len, ngff_chunk_result *res)
{
    const ngff_pipeline *p = b->pipeline;
    const int32_t ndim = p->ndim;
    const size_t chunk_nbytes = (size_t)p->chunk_nbytes;
    char *detail = res->detail;
    ngff_status st;
    int ping = 1; /* next scratch buffer to decode into */
    for (int32_t k = p->n_codecs - 1; k >= 0; k--) {
        int32_t codec = p->codecs[k];
        if (codec == NGFF_CODEC_CRC32C) {
            st = ngff_crc32c_strip(cur, cur_len, &cur_len, detail);
            if (st != NGFF_OK)
                return fail(res, st, codec);
            continue;
        }
        if (codec == NGFF_CODEC_BLOSC) {
            st = unflag_identity_shuffle(w, &cur, cur_len);
            if (st != NGFF_OK)
                return fail(res, st, codec);
        }
        int final = 1, crcs_after = 0;
        for (int32_t j = 0; j < k; j++) {
            if (is_compressor(p->codecs[j]))
                final = 0;
            else
                crcs_after++;
        }
        size_t expected;
        if (final) {
            expected = chunk_nbytes + 4 * (size_t)crcs_after;
        } else {
            int64_t size;
            st = ngff_codec_decoded_size(codec, cur, cur_len, &size, detail);
            if (st != NGFF_OK)
                return fail(res, st, codec);
            if ((uint64_t)size > encoded_bound(p, k) || (uint64_t)size > SIZE_MAX) {
                snprintf(detail, NGFF_DETAIL_CAP,
                         "header says %lld bytes, more than a %zu-byte chunk encodes to",
                         (long long)size, chunk_nbytes);
                return fail(res, NGFF_ERR_SIZE_MISMATCH, codec);
            }
            expected = (size_t)size;
        }
        if (final && crcs_after == 0 && cb->direct) {
            st = ngff_codec_decode(w->codecs, codec, cur, cur_len, cb->dst, expected, detail);
            return st == NGFF_OK ? NGFF_OK : fail(res, st, codec);
        }
        if (final && crcs_after == 0 && codec == NGFF_CODEC_BLOSC && p->delta == 0) {
            int handled;
            st = decode_blosc_blocks(w, b, cb, cur, cur_len, ping, res, &handled);
            if (st != NGFF_OK || handled)
                return st;
        }
        if (final && crcs_after == 0 && cb->blosc_partial) {
            /* Only part of the chunk is wanted: decode just the blosc blocks holding it.
             * Whole blosc items (typesize <= 255 bytes) may overhang the range at both ends. */
            size_t origin, cap = cb->span_hi - cb->span_lo + 2 * 256;
            uint8_t *part = ngff_buffer_reserve(&w->buf[ping], cap);
            if (!part)
                return fail(res, NGFF_ERR_NOMEM, codec);
            st = ngff_blosc_decode_range(w->codecs, cur, cur_len, expected, cb->span_lo,
                                         cb->span_hi, part, cap, &origin, detail);
            if (st == NGFF_OK) {
                ngff_scatter(ndim, cb->shape, p->itemsize, p->byteswap,
                             part + (cb->span_lo - origin), p->chunk_strides, cb->dst,
                             b->out_strides);
                return NGFF_OK;
            }
            /* a range c-blosc2 refuses goes to the full decode, which decides (as above),
             * unless only the range was read from the file */
            if (st == NGFF_ERR_NOMEM || (st != NGFF_ERR_UNSUPPORTED && cb->partial_source))
                return fail(res, st, codec);
            detail[0] = 0; /* fall back to a full decode */
        }
        uint8_t *target = ngff_buffer_reserve(&w->buf[ping], expected);
        if (!target && expected > 0)
            return fail(res, NGFF_ERR_NOMEM, codec);
        st = ngff_codec_decode(w->codecs, codec, cur, cur_len, target, expected, detail);
        if (st != NGFF_OK)
            return fail(res, st, codec);
        cur = target;
        cur_len = expected;
        ping = 3 - ping;
    }
    if (cur_len != chunk_nbytes) {
        snprintf(detail, NGFF_DETAIL_CAP, "%zu bytes, expected %zu", cur_len, chunk_nbytes);
        return fail(res, NGFF_ERR_SIZE_MISMATCH, 0);
    }
    if (p->delta != NGFF_DELTA_NONE) {
        /* never modify bytes we do not own (the caller's) */
        if (cur != w->buf[1].data && cur != w->buf[2].data) {
            uint8_t *copy = ngff_buffer_reserve(&w->buf[ping], chunk_nbytes);
            if (!copy && chunk_nbytes > 0)
                return fail(res, NGFF_ERR_NOMEM, 0);
            memcpy(copy, cur, chunk_nbytes);
            cur = copy;
        }
        uint8_t *mut = (uint8_t *)cur;
        if (p->delta_swap)
            swap_in_place(mut, (int64_t)chunk_nbytes, p->itemsize);
        undo_delta(mut, (int64_t)chunk_nbytes, p);
        if (p->delta_swap)
            swap_in_place(mut, (int64_t)chunk_nbytes, p->itemsize);
    }
    const uint8_t *src = cur;
    for (int32_t d = 0; d < ndim; d++)
        src += cb->inner[d] * p->chunk_strides[d];
    ngff_scatter(ndim, cb->shape, p->itemsize, p->byteswap, src, p->chunk_strides, cb->dst,
                 b->out_strides);
    return NGFF_OK;
}

static ngff_status decode_file(ngff_worker *w, const ngff_batch *b, chunk_box *cb,
                               const ngff_source *s, ngff_chunk_result *res)
{
    const ngff_pipeline *p = b->pipeline;
    char *detail = res->detail;
    int missing;
    ngff_local f;
    ngff_status st = ngff_local_open(b->confine, s->path, s->offset, s->len, &f, &missing,
                                     detail);
    if (st != NGFF_OK)
        return fail(res, st, 0);
    if (missing) {
        ngff_fill(p->ndim, cb->shape, p->itemsize, p->fill_value, cb->dst, b->out_strides);
        return NGFF_OK;
    }
    if (cb->direct && p->n_codecs == 0) {
        /* uncompressed chunk landing whole in the output: read it there */
        if (f.len != p->chunk_nbytes) {
            snprintf(detail, NGFF_DETAIL_CAP, "stored %lld bytes, expected %lld",
                     (long long)f.len, (long long)p->chunk_nbytes);
            st = fail(res, NGFF_ERR_SIZE_MISMATCH, 0);
        } else if ((st = ngff_local_pread(&f, cb->dst, f.len, 0, detail)) != NGFF_OK) {
            fail(res, st, 0);
        }
        ngff_local_close(&f);
        return st;
    }
    st = NGFF_ERR_UNSUPPORTED;
    if (cb->blosc_partial && p->n_codecs == 1)
        st = ngff_local_read_blosc_blocks(&f, &w->buf[0], cb->span_lo, cb->span_hi, detail);
    cb->partial_source = st == NGFF_OK;
    if (st == NGFF_ERR_UNSUPPORTED) {
        detail[0] = 0;
        uint8_t *data = ngff_buffer_reserve(&w->buf[0], (size_t)f.len);
        st = !data && f.len > 0 ? NGFF_ERR_NOMEM
                                : ngff_local_pread(&f, data, f.len, 0, detail);
    }
    if (st == NGFF_OK)
        st = decode_bytes(w, b, cb, w->buf[0].data, (size_t)f.len, res);
    else
        fail(res, st, 0);
    ngff_local_close(&f);
    return st;
}

ngff_status ngff_decode_chunk(ngff_worker *w, const ngff_batch *b, int64_t i)
{
    const ngff_pipeline *p = b->pipeline;
    const int32_t ndim = p->ndim;
    const int64_t *box = b->boxes + i * 3 * ndim;
    const int64_t *out_at = NGFF_BOX_OUT(box, ndim);
    ngff_source by_key;
    char path[4096];
    const ngff_source *s = b->sources ? &b->sources[i] : &by_key;
    ngff_chunk_result *res = &b->results[i];
    res->status = NGFF_OK;
    res->codec = 0;
    res->detail[0] = 0;

    if (!b->sources) {
        /* the chunk's file: root + its key, formed here so Python builds no path per chunk */
        size_t root_len = strlen(b->root);
        int64_t key_len = root_len < sizeof path
                              ? ngff_chunk_key(b->key_encoding, b->key_separator, ndim,
                                               b->chunk_coords + i * ndim, path + root_len,
                                               sizeof path - root_len - 1)
                              : -1;
        if (key_len < 0)
            return fail(res, NGFF_ERR_INVALID_ARGUMENT, 0);
        memcpy(path, b->root, root_len);
        path[root_len + (size_t)key_len] = 0;
        by_key = (ngff_source){.kind = NGFF_SOURCE_FILE, .path = path, .offset = 0, .len = -1};
    }
    chunk_box cb = {.inner = NGFF_BOX_INNER(box, ndim), .shape = NGFF_BOX_SHAPE(box, ndim),
                    .dst = b->out, .full_box = 1};
    for (int32_t d = 0; d < ndim; d++) {
        if (cb.inner[d] < 0 || cb.shape[d] < 0 || cb.inner[d] + cb.shape[d] > p->chunk_shape[d])
            return fail(res, NGFF_ERR_INVALID_ARGUMENT, 0);
        cb.dst += out_at[d] * b->out_strides[d];
        if (cb.inner[d] != 0 || cb.shape[d] != p->chunk_shape[d])
            cb.full_box = 0;
    }
    if (s->kind == NGFF_SOURCE_MISSING) {
        ngff_fill(ndim, cb.shape, p->itemsize, p->fill_value, cb.dst, b->out_strides);
        return NGFF_OK;
    }
    const size_t chunk_nbytes = (size_t)p->chunk_nbytes;
    cb.direct = cb.full_box && p->plain_layout &&
                ngff_box_is_contiguous(ndim, cb.shape, p->itemsize, b->out_strides);
    if (!cb.full_box) {
        cb.span_hi = (size_t)p->itemsize;
        for (int32_t d = 0; d < ndim; d++) {
            cb.span_lo += (size_t)(cb.inner[d] * p->chunk_strides[d]);
            cb.span_hi += (size_t)((cb.inner[d] + cb.shape[d] - 1) * p->chunk_strides[d]);
        }
        cb.blosc_partial = p->n_codecs >= 1 && p->codecs[0] == NGFF_CODEC_BLOSC &&
                           p->delta == 0 && cb.span_hi - cb.span_lo <= chunk_nbytes / 2;
    }
    if (s->kind == NGFF_SOURCE_FILE)
        return decode_file(w, b, &cb, s, res);
    if (s->kind != NGFF_SOURCE_MEMORY || s->len < 0 || (s->len > 0 && !s->data))
        return fail(res, NGFF_ERR_INVALID_ARGUMENT, 0);
    return decode_bytes(w, b, &cb, s->data, (size_t)s->len, res);
}
