#define _GNU_SOURCE
#include "ngff_decode.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ngff_scatter.h"

struct ngff_worker {
    ngff_codec_ctx *codecs;
    uint8_t *buf[3]; /* 0: encoded bytes read from a file; 1, 2: decode ping-pong */
    size_t cap[3];
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
        free(w->buf[k]);
    free(w);
}

/* Scratch buffers only grow: a worker decodes chunks of similar size again and again. */
static uint8_t *scratch(ngff_worker *w, int k, size_t size)
{
    if (w->cap[k] < size) {
        size_t cap = size + size / 8 + 64;
        uint8_t *p = realloc(w->buf[k], cap);
        if (!p)
            return NULL;
        w->buf[k] = p;
        w->cap[k] = cap;
    }
    return w->buf[k];
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
    p->plain_layout = !p->byteswap && p->delta == NGFF_DELTA_NONE &&
                      ngff_box_is_contiguous(p->ndim, p->chunk_shape, p->itemsize,
                                             p->chunk_strides);
    return NGFF_OK;
}

static ngff_status fail(ngff_chunk_result *r, ngff_status st, int32_t codec)
{
    r->status = st;
    r->codec = codec;
    return st;
}

/* Reads exactly `want` bytes (or the whole file when want < 0) into dst, or into a worker
 * buffer when dst is NULL. Sets *missing when the file does not exist. */
static ngff_status read_file(ngff_worker *w, const ngff_source *s, int64_t exact_hint,
                             uint8_t *dst, uint8_t **data, size_t *len, int *missing,
                             char *detail)
{
    *missing = 0;
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            *missing = 1;
            return NGFF_OK;
        }
        snprintf(detail, NGFF_DETAIL_CAP, "open: %s", strerror(errno));
        return NGFF_ERR_IO;
    }
    int64_t want = s->len;
    if (want < 0) {
        struct stat st;
        if (fstat(fd, &st) != 0) {
            snprintf(detail, NGFF_DETAIL_CAP, "fstat: %s", strerror(errno));
            close(fd);
            return NGFF_ERR_IO;
        }
        want = (int64_t)st.st_size - s->offset;
        if (want < 0)
            want = 0;
    }
    if (dst && want != exact_hint) {
        close(fd);
        snprintf(detail, NGFF_DETAIL_CAP, "stored %lld bytes, expected %lld", (long long)want,
                 (long long)exact_hint);
        return NGFF_ERR_SIZE_MISMATCH;
    }
    uint8_t *buf = dst ? dst : scratch(w, 0, (size_t)want);
    if (!buf && want > 0) {
        close(fd);
        return NGFF_ERR_NOMEM;
    }
    int64_t got = 0;
    while (got < want) {
        ssize_t r = pread(fd, buf + got, (size_t)(want - got), (off_t)(s->offset + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            snprintf(detail, NGFF_DETAIL_CAP, "read: %s", strerror(errno));
            close(fd);
            return NGFF_ERR_IO;
        }
        if (r == 0)
            break;
        got += r;
    }
    close(fd);
    if (got != want) {
        snprintf(detail, NGFF_DETAIL_CAP, "file ends after %lld of %lld bytes",
                 (long long)got, (long long)want);
        return NGFF_ERR_TRUNCATED;
    }
    *data = buf;
    *len = (size_t)want;
    return NGFF_OK;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static ngff_status pread_exact(int fd, uint8_t *dst, int64_t n, int64_t at, char *detail)
{
    int64_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, dst + got, (size_t)(n - got), (off_t)(at + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            snprintf(detail, NGFF_DETAIL_CAP, "read: %s", strerror(errno));
            return NGFF_ERR_IO;
        }
        if (r == 0) {
            snprintf(detail, NGFF_DETAIL_CAP, "file ends after %lld of %lld bytes",
                     (long long)(at + got), (long long)(at + n));
            return NGFF_ERR_TRUNCATED;
        }
        got += r;
    }
    return NGFF_OK;
}

/*
 * Reads only what blosc needs to decode bytes [lo, hi) of a chunk stored as one plain blosc1
 * frame: the 16-byte header, the block-start table and the run of blocks holding the range.
 * The rest of the frame buffer is left unread; blosc's getitem never looks at it. Frames of
 * any other shape (blosc2 extended header, memcpyed, special values) return
 * NGFF_ERR_UNSUPPORTED so the caller reads the whole object.
 */
static ngff_status read_blosc_blocks(ngff_worker *w, const ngff_source *s, size_t lo, size_t hi,
                                     uint8_t **data, size_t *len, int *missing, char *detail)
{
    enum { HEADER = 16, FLAG_SHUFFLE = 0x1, FLAG_MEMCPYED = 0x2, FLAG_BITSHUFFLE = 0x4 };
    *missing = 0;
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            *missing = 1;
            return NGFF_OK;
        }
        snprintf(detail, NGFF_DETAIL_CAP, "open: %s", strerror(errno));
        return NGFF_ERR_IO;
    }
    ngff_status st = NGFF_ERR_UNSUPPORTED;
    uint8_t header[HEADER];
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size - s->offset < HEADER ||
        (s->len >= 0 && s->len < HEADER))
        goto done; /* let the full read report it */
    int64_t object_len = s->len >= 0 ? s->len : (int64_t)sb.st_size - s->offset;
    if ((st = pread_exact(fd, header, HEADER, s->offset, detail)) != NGFF_OK)
        goto done;
    st = NGFF_ERR_UNSUPPORTED;
    uint8_t flags = header[2];
    uint32_t nbytes = le32(header + 4), blocksize = le32(header + 8), cbytes = le32(header + 12);
    uint32_t typesize = header[3];
    /* getitem works in whole items: a range ending in trailing bytes needs a full decode */
    if ((flags & FLAG_MEMCPYED) || (flags & FLAG_SHUFFLE && flags & FLAG_BITSHUFFLE) ||
        blocksize == 0 || nbytes == 0 || typesize == 0 || cbytes > (uint64_t)object_len ||
        cbytes > INT32_MAX || hi > (nbytes / typesize) * typesize || lo >= hi)
        goto done;
    uint64_t nblocks = ((uint64_t)nbytes + blocksize - 1) / blocksize;
    uint64_t table_end = HEADER + 4 * nblocks;
    if (table_end > cbytes)
        goto done;
    uint8_t *buf = scratch(w, 0, cbytes);
    if (!buf) {
        st = NGFF_ERR_NOMEM;
        goto done;
    }
    memcpy(buf, header, HEADER);
    if ((st = pread_exact(fd, buf + HEADER, (int64_t)(table_end - HEADER),
                          s->offset + HEADER, detail)) != NGFF_OK)
        goto done;
    st = NGFF_ERR_UNSUPPORTED;
    uint64_t first = lo / blocksize, last = (hi - 1) / blocksize; /* inclusive */
    uint64_t start = le32(buf + HEADER + 4 * first);
    uint64_t end = last + 1 < nblocks ? le32(buf + HEADER + 4 * (last + 1)) : cbytes;
    /* blocks of a plain frame follow the table in order: anything else is not ours to trust */
    for (uint64_t b = first; b <= last; b++) {
        uint64_t bs = le32(buf + HEADER + 4 * b);
        if (bs < table_end || bs > end || bs < start)
            goto done;
    }
    if (start < table_end || end > cbytes || start >= end)
        goto done;
    if ((st = pread_exact(fd, buf + start, (int64_t)(end - start), s->offset + (int64_t)start,
                          detail)) != NGFF_OK)
        goto done;
    *data = buf;
    *len = cbytes;
    st = NGFF_OK;
done:
    close(fd);
    return st;
}

static int is_compressor(int32_t codec) { return codec != NGFF_CODEC_CRC32C; }

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

ngff_status ngff_decode_chunk(ngff_worker *w, const ngff_batch *b, int64_t i)
{
    const ngff_pipeline *p = b->pipeline;
    const int32_t ndim = p->ndim;
    const int64_t *box = b->boxes + i * 3 * ndim;
    const int64_t *inner = NGFF_BOX_INNER(box, ndim);
    const int64_t *shape = NGFF_BOX_SHAPE(box, ndim);
    const int64_t *out_at = NGFF_BOX_OUT(box, ndim);
    const ngff_source *s = &b->sources[i];
    ngff_chunk_result *res = &b->results[i];
    char *detail = res->detail;
    res->status = NGFF_OK;
    res->codec = 0;
    detail[0] = 0;

    uint8_t *dst = b->out;
    int full_box = 1;
    for (int32_t d = 0; d < ndim; d++) {
        if (inner[d] < 0 || shape[d] < 0 || inner[d] + shape[d] > p->chunk_shape[d])
            return fail(res, NGFF_ERR_INVALID_ARGUMENT, 0);
        dst += out_at[d] * b->out_strides[d];
        if (inner[d] != 0 || shape[d] != p->chunk_shape[d])
            full_box = 0;
    }
    if (s->kind == NGFF_SOURCE_MISSING) {
        ngff_fill(ndim, shape, p->itemsize, p->fill_value, dst, b->out_strides);
        return NGFF_OK;
    }
    const size_t chunk_nbytes = (size_t)p->chunk_nbytes;
    const int direct = full_box && p->plain_layout &&
                       ngff_box_is_contiguous(ndim, shape, p->itemsize, b->out_strides);

    const uint8_t *cur;
    size_t cur_len;
    ngff_status st;
    size_t span_lo = 0, span_hi = 0; /* bytes of the decoded chunk the box needs */
    if (!full_box) {
        span_hi = (size_t)p->itemsize;
        for (int32_t d = 0; d < ndim; d++) {
            span_lo += (size_t)(inner[d] * p->chunk_strides[d]);
            span_hi += (size_t)((inner[d] + shape[d] - 1) * p->chunk_strides[d]);
        }
    }
    const int blosc_partial = !full_box && p->n_codecs >= 1 &&
                              p->codecs[0] == NGFF_CODEC_BLOSC && p->delta == 0 &&
                              span_hi - span_lo <= chunk_nbytes / 2;
    if (s->kind == NGFF_SOURCE_FILE) {
        int missing;
        uint8_t *data;
        /* uncompressed chunk landing whole in the output: read it there */
        uint8_t *into = (direct && p->n_codecs == 0) ? dst : NULL;
        st = NGFF_ERR_UNSUPPORTED;
        if (blosc_partial && p->n_codecs == 1)
            st = read_blosc_blocks(w, s, span_lo, span_hi, &data, &cur_len, &missing, detail);
        if (st == NGFF_ERR_UNSUPPORTED) {
            detail[0] = 0;
            st = read_file(w, s, (int64_t)chunk_nbytes, into, &data, &cur_len, &missing,
                           detail);
        }
        if (st != NGFF_OK)
            return fail(res, st, 0);
        if (missing) {
            ngff_fill(ndim, shape, p->itemsize, p->fill_value, dst, b->out_strides);
            return NGFF_OK;
        }
        if (into)
            return NGFF_OK;
        cur = data;
    } else if (s->kind == NGFF_SOURCE_MEMORY) {
        if (s->len < 0 || (s->len > 0 && !s->data))
            return fail(res, NGFF_ERR_INVALID_ARGUMENT, 0);
        cur = s->data;
        cur_len = (size_t)s->len;
    } else {
        return fail(res, NGFF_ERR_INVALID_ARGUMENT, 0);
    }

    int ping = 1; /* next scratch buffer to decode into */
    for (int32_t k = p->n_codecs - 1; k >= 0; k--) {
        int32_t codec = p->codecs[k];
        if (codec == NGFF_CODEC_CRC32C) {
            st = ngff_crc32c_strip(cur, cur_len, &cur_len, detail);
            if (st != NGFF_OK)
                return fail(res, st, codec);
            continue;
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
            expected = (size_t)size;
        }
        if (final && crcs_after == 0 && direct) {
            st = ngff_codec_decode(w->codecs, codec, cur, cur_len, dst, expected, detail);
            return st == NGFF_OK ? NGFF_OK : fail(res, st, codec);
        }
        if (final && crcs_after == 0 && blosc_partial) {
            /* Only part of the chunk is wanted: decode just the blosc blocks holding it.
             * Whole blosc items (typesize <= 255 bytes) may overhang the range at both ends. */
            size_t origin, cap = span_hi - span_lo + 2 * 256;
            uint8_t *part = scratch(w, ping, cap);
            if (!part)
                return fail(res, NGFF_ERR_NOMEM, codec);
            st = ngff_blosc_decode_range(w->codecs, cur, cur_len, expected, span_lo, span_hi,
                                         part, cap, &origin, detail);
            if (st == NGFF_OK) {
                ngff_scatter(ndim, shape, p->itemsize, p->byteswap, part + (span_lo - origin),
                             p->chunk_strides, dst, b->out_strides);
                return NGFF_OK;
            }
            if (st != NGFF_ERR_UNSUPPORTED)
                return fail(res, st, codec);
            detail[0] = 0; /* fall back to a full decode */
        }
        uint8_t *target = scratch(w, ping, expected);
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
        /* never modify the caller's or the file buffer's bytes that we may not own */
        if (cur != w->buf[1] && cur != w->buf[2]) {
            uint8_t *copy = scratch(w, ping, chunk_nbytes);
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
        src += inner[d] * p->chunk_strides[d];
    ngff_scatter(ndim, shape, p->itemsize, p->byteswap, src, p->chunk_strides, dst,
                 b->out_strides);
    return NGFF_OK;
}
