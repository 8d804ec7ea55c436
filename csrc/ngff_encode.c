#define _GNU_SOURCE
#include "ngff_encode.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngff_encoders.h"
#include "ngff_scatter.h"

/* Per-thread state, kept between batches like a decode worker's: ngff_pool_for gives its
 * tasks no worker, and calling threads join in, so it lives in thread-specific storage
 * (freed when the thread ends) instead of a pool slot. */
typedef struct enc_state {
    ngff_worker *decoder; /* decodes bases */
    ngff_enc_ctx *codecs;
    ngff_buffer buf[3]; /* 0: the decoded chunk; 1, 2: codec ping-pong */
} enc_state;

static pthread_key_t state_key;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;
static int state_key_ok;

static void state_destroy(void *arg)
{
    enc_state *s = arg;
    if (!s)
        return;
    ngff_worker_destroy(s->decoder);
    ngff_enc_ctx_destroy(s->codecs);
    for (int k = 0; k < 3; k++)
        ngff_buffer_free(&s->buf[k]);
    free(s);
}

static void state_key_create(void)
{
    state_key_ok = pthread_key_create(&state_key, state_destroy) == 0;
}

static enc_state *thread_state(void)
{
    pthread_once(&state_once, state_key_create);
    if (!state_key_ok)
        return NULL;
    enc_state *s = pthread_getspecific(state_key);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->decoder = ngff_worker_create();
    s->codecs = ngff_enc_ctx_create();
    if (!s->decoder || !s->codecs || pthread_setspecific(state_key, s) != 0) {
        state_destroy(s);
        return NULL;
    }
    return s;
}

int64_t ngff_encode_bound(const ngff_pipeline *p)
{
    int64_t n = p->chunk_nbytes;
    for (int32_t k = 0; k < p->n_codecs && n >= 0; k++)
        n = ngff_codec_encode_bound(p->codecs[k], n);
    return n;
}

static ngff_status fail(ngff_chunk_result *r, ngff_status st, int32_t codec)
{
    r->status = st;
    r->codec = codec;
    return st;
}

/* The chunk's elements tile its buffer exactly (strides are C strides of some axis order),
 * so gathering and filling write every byte that gets encoded. */
static int dense_layout(const ngff_pipeline *p)
{
    int used[NGFF_MAX_DIMS] = {0};
    int64_t expect = p->itemsize;
    for (;;) {
        int32_t next = -1, left = 0;
        for (int32_t d = 0; d < p->ndim; d++) {
            if (used[d] || p->chunk_shape[d] == 1)
                continue;
            left++;
            if (p->chunk_strides[d] == expect)
                next = d;
        }
        if (!left)
            return expect == p->chunk_nbytes;
        if (next < 0)
            return 0;
        used[next] = 1;
        expect *= p->chunk_shape[next];
    }
}

static void swap_parts(uint8_t *buf, size_t nbytes, int32_t itemsize, int32_t parts)
{
    size_t part = (size_t)(itemsize / parts);
    for (size_t i = 0; i + part <= nbytes; i += part)
        for (size_t a = 0, b = part - 1; a < b; a++, b--) {
            uint8_t t = buf[i + a];
            buf[i + a] = buf[i + b];
            buf[i + b] = t;
        }
}

/* numcodecs Delta.encode in place: first element kept, then differences in the element type
 * (integers wrap, as numpy's), back to front so each step still sees its predecessor. */
static void apply_delta(uint8_t *buf, size_t nbytes, const ngff_pipeline *p)
{
#define DIFF(T)                                                                                \
    do {                                                                                       \
        T prev, cur;                                                                           \
        for (size_t i = nbytes / sizeof(T); i-- > 1;) {                                        \
            memcpy(&cur, buf + i * sizeof(T), sizeof(T));                                      \
            memcpy(&prev, buf + (i - 1) * sizeof(T), sizeof(T));                               \
            cur = (T)(cur - prev);                                                             \
            memcpy(buf + i * sizeof(T), &cur, sizeof(T));                                      \
        }                                                                                      \
    } while (0)
    if (p->delta == NGFF_DELTA_FLOAT) {
        if (p->itemsize == 4)
            DIFF(float);
        else
            DIFF(double);
        return;
    }
    switch (p->itemsize) {
    case 1: DIFF(uint8_t); break;
    case 2: DIFF(uint16_t); break;
    case 4: DIFF(uint32_t); break;
    default: DIFF(uint64_t); break;
    }
#undef DIFF
}

/* The inverse of ngff_decode.c's order: to stored byte order, then delta (on native-endian
 * elements), all in place on the worker's chunk buffer. */
static void to_stored(uint8_t *chunk, size_t n, const ngff_pipeline *p)
{
    if (p->byteswap)
        swap_parts(chunk, n, p->itemsize, p->byteswap);
    if (p->delta != NGFF_DELTA_NONE) {
        if (p->delta_swap)
            swap_parts(chunk, n, p->itemsize, 1);
        apply_delta(chunk, n, p);
        if (p->delta_swap)
            swap_parts(chunk, n, p->itemsize, 1);
    }
}

/* Stored chunk bytes -> codecs[0], codecs[1], ... -> out (cap bytes). */
static ngff_status run_codecs(enc_state *s, const ngff_pipeline *p, const uint8_t *cur,
                              uint8_t *out, size_t cap, int64_t *out_len,
                              ngff_chunk_result *res)
{
    size_t cur_len = (size_t)p->chunk_nbytes;
    if (p->n_codecs == 0) {
        if (cur_len > cap) {
            snprintf(res->detail, NGFF_DETAIL_CAP, "%zu bytes do not fit the %zu-byte output",
                     cur_len, cap);
            return fail(res, NGFF_ERR_INVALID_ARGUMENT, 0);
        }
        memcpy(out, cur, cur_len);
        *out_len = (int64_t)cur_len;
        return NGFF_OK;
    }
    int ping = 1;
    int64_t bound = p->chunk_nbytes;
    for (int32_t k = 0; k < p->n_codecs; k++) {
        int32_t codec = p->codecs[k];
        uint8_t *dst = out;
        size_t dcap = cap;
        bound = ngff_codec_encode_bound(codec, bound);
        if (k < p->n_codecs - 1) {
            if (bound < 0 || (uint64_t)bound > SIZE_MAX)
                return fail(res, NGFF_ERR_OVERFLOW, codec);
            dcap = (size_t)bound;
            dst = ngff_buffer_reserve(&s->buf[ping], dcap ? dcap : 1);
            if (!dst)
                return fail(res, NGFF_ERR_NOMEM, codec);
        }
        size_t len = 0;
        ngff_status st = ngff_codec_encode(s->codecs, codec, &p->params[k], p->itemsize, cur,
                                           cur_len, dst, dcap, &len, res->detail);
        if (st != NGFF_OK)
            return fail(res, st, codec);
        cur = dst;
        cur_len = len;
        ping = 3 - ping;
    }
    *out_len = (int64_t)cur_len;
    return NGFF_OK;
}

ngff_status ngff_encode_buffer(const ngff_pipeline *p, const uint8_t *decoded, uint8_t *out,
                               int64_t cap, int64_t *out_len, ngff_chunk_result *res)
{
    res->status = NGFF_OK;
    res->codec = 0;
    res->detail[0] = 0;
    *out_len = 0;
    if (cap < 0 || (uint64_t)p->chunk_nbytes > SIZE_MAX)
        return fail(res, NGFF_ERR_INVALID_ARGUMENT, 0);
    enc_state *s = thread_state();
    uint8_t *chunk = s ? ngff_buffer_reserve(&s->buf[0], (size_t)p->chunk_nbytes) : NULL;
    if (!chunk)
        return fail(res, NGFF_ERR_NOMEM, 0);
    memcpy(chunk, decoded, (size_t)p->chunk_nbytes);
    to_stored(chunk, (size_t)p->chunk_nbytes, p);
    return run_codecs(s, p, chunk, out, (size_t)cap, out_len, res);
}

typedef struct encode_job {
    const ngff_encode_batch *b;
    uint8_t pattern[4096]; /* the fill value repeated: a whole number of elements */
    size_t pattern_len;
} encode_job;

static int all_fill(const uint8_t *chunk, size_t n, const encode_job *job)
{
    for (size_t off = 0; off < n; off += job->pattern_len) {
        size_t k = n - off < job->pattern_len ? n - off : job->pattern_len;
        if (memcmp(chunk + off, job->pattern, k) != 0)
            return 0;
    }
    return 1;
}

/* The chunk's bytes outside the box: its current encoded bytes decoded, or the fill value. */
static ngff_status load_base(enc_state *s, const ngff_encode_batch *b, int64_t i, uint8_t *chunk,
                             ngff_chunk_result *res)
{
    const ngff_pipeline *p = b->pipeline;
    const ngff_source *base = b->bases ? &b->bases[i] : NULL;
    if (!base || base->kind == NGFF_SOURCE_MISSING) {
        int64_t count = p->chunk_nbytes / p->itemsize, stride = p->itemsize;
        ngff_fill(1, &count, p->itemsize, p->fill_value, chunk, &stride);
        return NGFF_OK;
    }
    int64_t whole[3 * NGFF_MAX_DIMS] = {0};
    for (int32_t d = 0; d < p->ndim; d++)
        NGFF_BOX_SHAPE(whole, p->ndim)[d] = p->chunk_shape[d];
    ngff_batch dec = {.pipeline = p, .out = chunk, .n_chunks = 1, .boxes = whole,
                      .sources = base, .confine = b->confine, .results = res};
    memcpy(dec.out_strides, p->chunk_strides, sizeof dec.out_strides);
    return ngff_decode_chunk(s->decoder, &dec, 0);
}

static ngff_status encode_task(void *arg, int64_t i)
{
    const encode_job *job = arg;
    const ngff_encode_batch *b = job->b;
    const ngff_pipeline *p = b->pipeline;
    const int32_t ndim = p->ndim;
    const size_t n = (size_t)p->chunk_nbytes;
    ngff_chunk_result *res = &b->results[i];
    res->status = NGFF_OK;
    res->codec = 0;
    res->detail[0] = 0;
    b->out_lens[i] = 0;
    const int64_t *box = b->boxes + i * 3 * ndim;
    const int64_t *inner = NGFF_BOX_INNER(box, ndim), *shape = NGFF_BOX_SHAPE(box, ndim);
    const int64_t *at = NGFF_BOX_OUT(box, ndim);
    int full = 1;
    const uint8_t *src = b->in;
    for (int32_t d = 0; d < ndim; d++) {
        if (inner[d] < 0 || shape[d] < 0 || at[d] < 0 || inner[d] > p->chunk_shape[d] - shape[d])
            return fail(res, NGFF_ERR_INVALID_ARGUMENT, 0);
        if (inner[d] != 0 || shape[d] != p->chunk_shape[d])
            full = 0;
        src += at[d] * b->in_strides[d];
    }
    enc_state *s = thread_state();
    if (!s)
        return fail(res, NGFF_ERR_NOMEM, 0);
    uint8_t *slot = b->out + i * b->out_stride;
    const uint8_t *stored;
    if (full && p->plain_layout && p->n_codecs > 0 &&
        ngff_box_is_contiguous(ndim, shape, p->itemsize, b->in_strides)) {
        stored = src; /* the value already is the stored chunk: compress it where it is */
    } else {
        uint8_t *chunk = ngff_buffer_reserve(&s->buf[0], n);
        if (!chunk)
            return fail(res, NGFF_ERR_NOMEM, 0);
        if (!full) {
            ngff_status st = load_base(s, b, i, chunk, res);
            if (st != NGFF_OK)
                return st;
        }
        uint8_t *dst = chunk;
        for (int32_t d = 0; d < ndim; d++)
            dst += inner[d] * p->chunk_strides[d];
        ngff_scatter(ndim, shape, p->itemsize, 0, src, b->in_strides, dst, p->chunk_strides);
        if (b->skip_fill && all_fill(chunk, n, job)) {
            b->out_lens[i] = -1;
            return NGFF_OK;
        }
        to_stored(chunk, n, p);
        stored = chunk;
    }
    if (stored == src && b->skip_fill && all_fill(src, n, job)) {
        b->out_lens[i] = -1;
        return NGFF_OK;
    }
    return run_codecs(s, p, stored, slot, (size_t)b->out_stride, &b->out_lens[i], res);
}

ngff_status ngff_pool_encode(ngff_pool *pool, const ngff_encode_batch *b, int64_t *first_failed)
{
    *first_failed = -1;
    if (b->n_chunks <= 0)
        return NGFF_OK;
    const ngff_pipeline *p = b->pipeline;
    if (!p || !b->in || !b->boxes || !b->out || !b->out_lens || !b->results)
        return NGFF_ERR_INVALID_ARGUMENT;
    int64_t bound = ngff_encode_bound(p), total;
    if (bound < 0 || (uint64_t)p->chunk_nbytes > SIZE_MAX ||
        __builtin_mul_overflow(b->n_chunks, b->out_stride, &total))
        return NGFF_ERR_OVERFLOW;
    if (b->out_stride < bound || !dense_layout(p))
        return NGFF_ERR_INVALID_ARGUMENT;
    encode_job job = {.b = b};
    job.pattern_len = sizeof job.pattern / (size_t)p->itemsize * (size_t)p->itemsize;
    for (size_t k = 0; k < job.pattern_len; k += (size_t)p->itemsize)
        memcpy(job.pattern + k, p->fill_value, (size_t)p->itemsize);
    ngff_pool_for(pool, b->n_chunks, encode_task, &job, NULL);
    for (int64_t i = 0; i < b->n_chunks; i++)
        if (b->results[i].status != NGFF_OK) {
            *first_failed = i;
            return (ngff_status)b->results[i].status;
        }
    return NGFF_OK;
}
