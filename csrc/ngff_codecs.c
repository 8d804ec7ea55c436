#include "ngff_codecs.h"

#include <blosc2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngff_crc32c.h"
#include "ngff_extern.h"

struct ngff_codec_ctx {
    blosc2_context *blosc;
    int blosc_ext; /* the last frame given to ctx->blosc had a blosc2 (extended) header */
    ZSTD_DCtx *zstd;
    zng_stream zs;
    int zs_ready;
};

static pthread_once_t blosc_once = PTHREAD_ONCE_INIT;
static void blosc_global_init(void) { blosc2_init(); }

/* c-blosc 1.x's compressor format code for snappy (c-blosc2 no longer defines it) */
enum { NGFF_BLOSC_SNAPPY_FORMAT = 2 };

static blosc2_context *new_blosc_ctx(void)
{
    blosc2_dparams dparams = BLOSC2_DPARAMS_DEFAULTS;
    dparams.nthreads = 1; /* parallelism comes from our pool, one chunk per worker */
    return blosc2_create_dctx(dparams);
}

/* A blosc2 context that failed on a hostile frame can keep state that silently corrupts
 * the next (valid) chunk it decodes: never reuse it. */
static void reset_blosc(ngff_codec_ctx *ctx)
{
    blosc2_context *fresh = new_blosc_ctx();
    if (fresh) {
        blosc2_free_ctx(ctx->blosc);
        ctx->blosc = fresh;
        ctx->blosc_ext = 0;
    }
}

/* A blosc2 header: the shuffle and bitshuffle flags both set (frame of >= 16 bytes). */
static int blosc_extended(const uint8_t *src) { return (src[2] & 0x5) == 0x5; }

/*
 * c-blosc2 (3.3) keeps state from a frame with a blosc2 header in its context: the next
 * frame with a blosc1 header inherits the filters' metadata (a shuffle then regroups its
 * bytes wrongly: valid data decodes to wrong values, with no error), getitem does not reset
 * the special-value kind (a regular frame after a special one is "decoded" as a repeated
 * value) and never loads or clears dictionaries (it would use the last full decode's, which
 * points into that chunk's bytes). A full decode of a blosc2 frame re-reads all of it. So a
 * blosc1 frame, or a getitem, after a blosc2 frame gets a fresh context.
 */
static ngff_status blosc_ready(ngff_codec_ctx *ctx, const uint8_t *src, int getitem,
                               char *detail)
{
    int ext = blosc_extended(src);
    if (ctx->blosc_ext && (!ext || getitem)) {
        blosc2_context *fresh = new_blosc_ctx();
        if (!fresh) {
            snprintf(detail, NGFF_DETAIL_CAP, "blosc: cannot create a decoder context");
            return NGFF_ERR_NOMEM;
        }
        blosc2_free_ctx(ctx->blosc);
        ctx->blosc = fresh;
    }
    ctx->blosc_ext = ext;
    return NGFF_OK;
}

ngff_codec_ctx *ngff_codec_ctx_create(void)
{
    pthread_once(&blosc_once, blosc_global_init);
    ngff_codec_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->blosc = new_blosc_ctx();
    ctx->zstd = ZSTD_createDCtx();
    if (!ctx->blosc || !ctx->zstd) {
        ngff_codec_ctx_destroy(ctx);
        return NULL;
    }
    return ctx;
}

void ngff_codec_ctx_destroy(ngff_codec_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->blosc)
        blosc2_free_ctx(ctx->blosc);
    if (ctx->zstd)
        ZSTD_freeDCtx(ctx->zstd);
    if (ctx->zs_ready)
        zng_inflateEnd(&ctx->zs);
    free(ctx);
}

static uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* blosc2_cbuffer_sizes reads a fixed 16-byte header without a length: check it first. */
static ngff_status blosc_header(const uint8_t *src, size_t src_len, int32_t *nbytes,
                                int32_t *cbytes, char *detail)
{
    int32_t blocksize;
    if (src_len < BLOSC_MIN_HEADER_LENGTH) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: %zu bytes is shorter than a blosc header",
                 src_len);
        return NGFF_ERR_TRUNCATED;
    }
    int rc = blosc2_cbuffer_sizes(src, nbytes, cbytes, &blocksize);
    if (rc < 0) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: %s", blosc2_error_string(rc));
        return NGFF_ERR_CORRUPT;
    }
    if (*cbytes < 0 || *nbytes < 0) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: negative size in header");
        return NGFF_ERR_CORRUPT;
    }
    if ((size_t)*cbytes > src_len) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: header says %d compressed bytes, got %zu",
                 *cbytes, src_len);
        return NGFF_ERR_TRUNCATED;
    }
    /* Every c-blosc encoder (1.x and 2.x, forced block sizes included) makes a block larger
     * than one item a whole number of items. In a frame whose full blocks split an item,
     * c-blosc2 leaves the tail bytes of a shuffled block unwritten and still reports success:
     * stale memory (earlier chunks of any array read in this process) handed out as pixels.
     * (blosc2_cbuffer_sizes reports a block size beyond nbytes as nbytes, as c-blosc2
     * decodes it: one block.) Found by fuzzing (pipeline-blosc-split-item.bin). */
    int32_t typesize = src[3];
    if (typesize > 1 && blocksize > typesize && blocksize <= *nbytes &&
        blocksize % typesize != 0) {
        snprintf(detail, NGFF_DETAIL_CAP,
                 "blosc: block size %d is not a whole number of %d-byte items", blocksize,
                 typesize);
        return NGFF_ERR_CORRUPT;
    }
    /* c-blosc 1.x wrote snappy frames (format code 2 in bits 5-7 of the flags); c-blosc2
     * has no snappy and calls them "not supported": well-formed data this build cannot
     * decode, not corruption. (A memcpyed frame, or a blosc2 special-value chunk, never
     * reaches its compressor.) */
    int special = blosc_extended(src) && src_len >= BLOSC_EXTENDED_HEADER_LENGTH &&
                  (src[BLOSC2_CHUNK_BLOSC2_FLAGS] >> 4 & BLOSC2_SPECIAL_MASK) != 0;
    if ((src[BLOSC2_CHUNK_FLAGS] >> 5) == NGFF_BLOSC_SNAPPY_FORMAT &&
        !(src[BLOSC2_CHUNK_FLAGS] & BLOSC_MEMCPYED) && !special) {
        snprintf(detail, NGFF_DETAIL_CAP,
                 "blosc: the frame is compressed with snappy, which this build lacks "
                 "(it has blosclz, lz4, lz4hc, zlib, zstd)");
        return NGFF_ERR_UNSUPPORTED;
    }
    /* A c-blosc2 "special" chunk (extended header: shuffle and bitshuffle flags both set;
     * kind in bits 4-6 of byte 31) of uninitialized values decodes "successfully" without
     * writing the destination, which would hand out stale bytes (earlier chunks in a worker
     * buffer, or the caller's uninitialized output). */
    if (blosc_extended(src) && src_len >= BLOSC_EXTENDED_HEADER_LENGTH &&
        (src[BLOSC2_CHUNK_BLOSC2_FLAGS] >> 4 & BLOSC2_SPECIAL_MASK) == BLOSC2_SPECIAL_UNINIT) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: a chunk of uninitialized values has no data");
        return NGFF_ERR_CORRUPT;
    }
    return NGFF_OK;
}

ngff_status ngff_codec_decoded_size(int32_t codec, const uint8_t *src, size_t src_len,
                                    int64_t *size, char *detail)
{
    switch (codec) {
    case NGFF_CODEC_BLOSC: {
        int32_t nbytes, cbytes;
        ngff_status st = blosc_header(src, src_len, &nbytes, &cbytes, detail);
        if (st == NGFF_OK)
            *size = nbytes;
        return st;
    }
    case NGFF_CODEC_ZSTD: {
        unsigned long long n = ZSTD_getFrameContentSize(src, src_len);
        if (n == NGFF_ZSTD_CONTENTSIZE_ERROR) {
            snprintf(detail, NGFF_DETAIL_CAP, "zstd: not a zstd frame");
            return NGFF_ERR_CORRUPT;
        }
        if (n == NGFF_ZSTD_CONTENTSIZE_UNKNOWN || n > (unsigned long long)INT64_MAX) {
            snprintf(detail, NGFF_DETAIL_CAP, "zstd: frame does not record its size");
            return NGFF_ERR_UNSUPPORTED;
        }
        *size = (int64_t)n;
        return NGFF_OK;
    }
    case NGFF_CODEC_LZ4:
        if (src_len < 4) {
            snprintf(detail, NGFF_DETAIL_CAP, "lz4: missing 4-byte size header");
            return NGFF_ERR_TRUNCATED;
        }
        *size = load_le32(src);
        return NGFF_OK;
    default:
        snprintf(detail, NGFF_DETAIL_CAP, "codec %d does not record its decoded size", codec);
        return NGFF_ERR_UNSUPPORTED;
    }
}

/* A blosc frame whose header says it decodes to `expected` bytes and fits in src. */
static ngff_status blosc_frame(const uint8_t *src, size_t src_len, size_t expected,
                               int32_t *cbytes, char *detail)
{
    int32_t nbytes;
    ngff_status st = blosc_header(src, src_len, &nbytes, cbytes, detail);
    if (st == NGFF_OK && (size_t)nbytes != expected) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: header says %d bytes, expected %zu", nbytes,
                 expected);
        return NGFF_ERR_SIZE_MISMATCH;
    }
    return st;
}

/* A blosc call's return value as a status; a failed context is replaced (see reset_blosc). */
static ngff_status blosc_result(ngff_codec_ctx *ctx, int rc, size_t want, char *detail)
{
    if (rc >= 0 && (size_t)rc == want)
        return NGFF_OK;
    reset_blosc(ctx);
    if (rc < 0) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: %s", blosc2_error_string(rc));
        return NGFF_ERR_CORRUPT;
    }
    snprintf(detail, NGFF_DETAIL_CAP, "blosc: decoded %d bytes, expected %zu", rc, want);
    return NGFF_ERR_SIZE_MISMATCH;
}

static ngff_status decode_blosc(ngff_codec_ctx *ctx, const uint8_t *src, size_t src_len,
                                uint8_t *dst, size_t expected, char *detail)
{
    int32_t cbytes;
    ngff_status st = blosc_frame(src, src_len, expected, &cbytes, detail);
    if (st != NGFF_OK)
        return st;
    if (expected > INT32_MAX) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: chunks over 2 GiB are not supported");
        return NGFF_ERR_UNSUPPORTED;
    }
    /* nothing to decode (a frame inside a chain may say 0 bytes), and c-blosc2 dereferences
     * NULL on a 0-byte blosc2 frame that is not marked memcpyed */
    if (expected == 0)
        return NGFF_OK;
    if ((st = blosc_ready(ctx, src, 0, detail)) != NGFF_OK)
        return st;
    int rc = blosc2_decompress_ctx(ctx->blosc, src, (int32_t)cbytes, dst, (int32_t)expected);
    st = blosc_result(ctx, rc, expected, detail);
    /* a codec (or plugin) this build lacks: the frame may well be valid. (Only for a whole
     * decode: a refused range falls back to one, which decides.) */
    return rc == BLOSC2_ERROR_CODEC_SUPPORT ? NGFF_ERR_UNSUPPORTED : st;
}

static ngff_status decode_zstd(ngff_codec_ctx *ctx, const uint8_t *src, size_t src_len,
                               uint8_t *dst, size_t expected, char *detail)
{
    unsigned long long declared = ZSTD_getFrameContentSize(src, src_len);
    if (declared == NGFF_ZSTD_CONTENTSIZE_ERROR) {
        snprintf(detail, NGFF_DETAIL_CAP, "zstd: not a zstd frame");
        return NGFF_ERR_CORRUPT;
    }
    /* Frames from streaming compressors omit the size: the fixed capacity still bounds it. */
    if (declared != NGFF_ZSTD_CONTENTSIZE_UNKNOWN && declared != expected) {
        snprintf(detail, NGFF_DETAIL_CAP, "zstd: frame says %llu bytes, expected %zu",
                 declared, expected);
        return NGFF_ERR_SIZE_MISMATCH;
    }
    size_t rc = ZSTD_decompressDCtx(ctx->zstd, dst, expected, src, src_len);
    if (ZSTD_isError(rc)) {
        snprintf(detail, NGFF_DETAIL_CAP, "zstd: %s", ZSTD_getErrorName(rc));
        return NGFF_ERR_CORRUPT;
    }
    if (rc != expected) {
        snprintf(detail, NGFF_DETAIL_CAP, "zstd: decoded %zu bytes, expected %zu", rc, expected);
        return NGFF_ERR_SIZE_MISMATCH;
    }
    return NGFF_OK;
}

static ngff_status decode_zlib(ngff_codec_ctx *ctx, const uint8_t *src, size_t src_len,
                               uint8_t *dst, size_t expected, char *detail)
{
    zng_stream *zs = &ctx->zs;
    if (!ctx->zs_ready) {
        memset(zs, 0, sizeof *zs);
        /* 15 + 32: accept zlib and gzip headers, as numcodecs' Zlib and GZip write them. */
        int32_t rc = zng_inflateInit2_(zs, 15 + 32, zlibng_version(), (int32_t)sizeof *zs);
        if (rc != NGFF_Z_OK) {
            snprintf(detail, NGFF_DETAIL_CAP, "zlib-ng: inflateInit2 failed (%d)", (int)rc);
            return rc == -4 ? NGFF_ERR_NOMEM : NGFF_ERR_UNSUPPORTED;
        }
        ctx->zs_ready = 1;
    } else {
        zng_inflateReset(zs);
    }
    /* the stream is reused: never let a previous (possibly failed) call's buffers leak in */
    zs->next_in = NULL;
    zs->avail_in = 0;
    zs->next_out = NULL;
    zs->avail_out = 0;
    const size_t step = (size_t)1 << 30; /* avail_in / avail_out are 32-bit */
    size_t in_pos = 0, out_pos = 0;
    for (;;) {
        if (zs->avail_in == 0 && in_pos < src_len) {
            size_t n = src_len - in_pos < step ? src_len - in_pos : step;
            zs->next_in = src + in_pos;
            zs->avail_in = (uint32_t)n;
            in_pos += n;
        }
        if (zs->avail_out == 0 && out_pos < expected) {
            size_t n = expected - out_pos < step ? expected - out_pos : step;
            zs->next_out = dst + out_pos;
            zs->avail_out = (uint32_t)n;
            out_pos += n;
        }
        int32_t rc = zng_inflate(zs, NGFF_Z_NO_FLUSH);
        if (rc == NGFF_Z_STREAM_END) {
            size_t produced = (size_t)(out_pos - zs->avail_out);
            int more_input = zs->avail_in > 0 || in_pos < src_len;
            /* gzip allows several members back to back */
            if (more_input && produced < expected) {
                zng_inflateReset(zs);
                continue;
            }
            if (produced != expected) {
                snprintf(detail, NGFF_DETAIL_CAP, "zlib: decoded %zu bytes, expected %zu",
                         produced, expected);
                return NGFF_ERR_SIZE_MISMATCH;
            }
            return NGFF_OK;
        }
        if (rc == NGFF_Z_OK)
            continue;
        if (rc == NGFF_Z_BUF_ERROR) {
            if (zs->avail_in == 0 && in_pos >= src_len) {
                snprintf(detail, NGFF_DETAIL_CAP,
                         "zlib: input ends before the end of the stream (%zu bytes decoded)",
                         (size_t)(out_pos - zs->avail_out));
                return NGFF_ERR_TRUNCATED;
            }
            if (zs->avail_out == 0 && out_pos >= expected) {
                snprintf(detail, NGFF_DETAIL_CAP, "zlib: decodes to more than %zu bytes",
                         expected);
                return NGFF_ERR_SIZE_MISMATCH;
            }
            continue; /* the other side has room again: refilled at the top */
        }
        snprintf(detail, NGFF_DETAIL_CAP, "zlib: %s",
                 zs->msg ? zs->msg : (rc == NGFF_Z_NEED_DICT ? "needs a dictionary" : "error"));
        return NGFF_ERR_CORRUPT;
    }
}

static ngff_status decode_lz4(const uint8_t *src, size_t src_len, uint8_t *dst,
                              size_t expected, char *detail)
{
    if (src_len < 4) {
        snprintf(detail, NGFF_DETAIL_CAP, "lz4: missing 4-byte size header");
        return NGFF_ERR_TRUNCATED;
    }
    uint32_t declared = load_le32(src);
    if (declared != expected) {
        snprintf(detail, NGFF_DETAIL_CAP, "lz4: header says %u bytes, expected %zu", declared,
                 expected);
        return NGFF_ERR_SIZE_MISMATCH;
    }
    if (src_len - 4 > INT32_MAX || expected > INT32_MAX) {
        snprintf(detail, NGFF_DETAIL_CAP, "lz4: blocks over 2 GiB are not supported");
        return NGFF_ERR_UNSUPPORTED;
    }
    int rc = LZ4_decompress_safe((const char *)src + 4, (char *)dst, (int)(src_len - 4),
                                 (int)expected);
    if (rc < 0) {
        snprintf(detail, NGFF_DETAIL_CAP, "lz4: malformed block (error %d)", rc);
        return NGFF_ERR_CORRUPT;
    }
    if ((size_t)rc != expected) {
        snprintf(detail, NGFF_DETAIL_CAP, "lz4: decoded %d bytes, expected %zu", rc, expected);
        return NGFF_ERR_SIZE_MISMATCH;
    }
    return NGFF_OK;
}

ngff_status ngff_codec_decode(ngff_codec_ctx *ctx, int32_t codec, const uint8_t *src,
                              size_t src_len, uint8_t *dst, size_t expected, char *detail)
{
    switch (codec) {
    case NGFF_CODEC_BLOSC:
        return decode_blosc(ctx, src, src_len, dst, expected, detail);
    case NGFF_CODEC_ZSTD:
        return decode_zstd(ctx, src, src_len, dst, expected, detail);
    case NGFF_CODEC_ZLIB:
        return decode_zlib(ctx, src, src_len, dst, expected, detail);
    case NGFF_CODEC_LZ4:
        return decode_lz4(src, src_len, dst, expected, detail);
    default:
        snprintf(detail, NGFF_DETAIL_CAP, "unknown codec id %d", codec);
        return NGFF_ERR_INVALID_ARGUMENT;
    }
}

ngff_status ngff_crc32c_strip(const uint8_t *src, size_t src_len, size_t *payload_len,
                              char *detail)
{
    if (src_len < 4) {
        snprintf(detail, NGFF_DETAIL_CAP, "crc32c: %zu bytes cannot hold a checksum", src_len);
        return NGFF_ERR_TRUNCATED;
    }
    uint32_t stored = load_le32(src + src_len - 4);
    uint32_t actual = ngff_crc32c(0, src, src_len - 4);
    if (stored != actual) {
        snprintf(detail, NGFF_DETAIL_CAP, "crc32c: stored %08x, computed %08x", stored, actual);
        return NGFF_ERR_CHECKSUM;
    }
    *payload_len = src_len - 4;
    return NGFF_OK;
}

int ngff_blosc_identity_shuffle(const uint8_t *src, size_t src_len)
{
    enum { FLAG_SHUFFLE = 0x1, FLAG_BITSHUFFLE = 0x4 };
    /* both flags set marks a blosc2 extended header: its filters live elsewhere */
    return src_len >= 16 && src[3] == 1 &&
           (src[2] & (FLAG_SHUFFLE | FLAG_BITSHUFFLE)) == FLAG_SHUFFLE;
}

/* Blosc's delta filter (the blosc1 flag, or a blosc2 filter) encodes every block against
 * the first one, which blosc2_getitem_ctx does not decode: blocks after the first come out
 * wrong. Such frames, frames with a dictionary and c-blosc2 special-value chunks are decoded
 * whole. (Called on a checked frame of >= 16 bytes.) */
static int blosc_delta(const uint8_t *src, size_t src_len)
{
    if (!blosc_extended(src)) /* blosc1 header */
        return (src[2] & BLOSC_DODELTA) != 0;
    if (src_len < BLOSC_EXTENDED_HEADER_LENGTH)
        return 1; /* c-blosc2 refuses it anyway */
    if (src[BLOSC2_CHUNK_BLOSC2_FLAGS] & BLOSC2_USEDICT)
        return 1; /* and getitem never loads a frame's dictionary */
    if ((src[BLOSC2_CHUNK_BLOSC2_FLAGS] >> 4 & BLOSC2_SPECIAL_MASK) != 0)
        return 1; /* getitem and the whole decode repeat a special value differently (a block
                   * size beyond the chunk: pipeline-blosc-special-value-getitem.bin) */
    for (int k = 0; k < BLOSC2_MAX_FILTERS; k++)
        if (src[BLOSC2_CHUNK_FILTER_CODES + k] == BLOSC_DELTA)
            return 1;
    return 0;
}

ngff_status ngff_blosc_layout(const uint8_t *src, size_t src_len, size_t expected,
                              size_t *blocksize, size_t *typesize, char *detail)
{
    int32_t nbytes, cbytes, bsize;
    ngff_status st = blosc_frame(src, src_len, expected, &cbytes, detail);
    if (st != NGFF_OK)
        return st;
    if (blosc_delta(src, src_len)) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: delta-filtered frames decode only whole");
        return NGFF_ERR_UNSUPPORTED;
    }
    if (blosc2_cbuffer_sizes(src, &nbytes, &cbytes, &bsize) < 0 || bsize <= 0) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: invalid block size");
        return NGFF_ERR_CORRUPT;
    }
    int flags = 0;
    blosc1_cbuffer_metainfo(src, typesize, &flags);
    *blocksize = (size_t)bsize;
    return NGFF_OK;
}

ngff_status ngff_blosc_decode_range(ngff_codec_ctx *ctx, const uint8_t *src, size_t src_len,
                                    size_t expected, size_t byte_start, size_t byte_stop,
                                    uint8_t *dst, size_t dst_cap, size_t *dst_origin,
                                    char *detail)
{
    int32_t cbytes;
    ngff_status st = blosc_frame(src, src_len, expected, &cbytes, detail);
    if (st != NGFF_OK)
        return st;
    if (blosc_delta(src, src_len)) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: delta-filtered frames decode only whole");
        return NGFF_ERR_UNSUPPORTED;
    }
    size_t typesize = 0;
    int flags = 0;
    blosc1_cbuffer_metainfo(src, &typesize, &flags);
    if (typesize == 0 || byte_start >= byte_stop || byte_stop > expected) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: bad item range");
        return NGFF_ERR_INVALID_ARGUMENT;
    }
    size_t first = byte_start / typesize;
    size_t last = (byte_stop + typesize - 1) / typesize; /* exclusive */
    if (last * typesize > expected)
        last = expected / typesize;
    if (last * typesize < byte_stop) {
        /* trailing bytes that are not a whole item: only a full decode reaches them */
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: range ends in a partial item");
        return NGFF_ERR_UNSUPPORTED;
    }
    size_t want = (last - first) * typesize;
    if (first >= last || want > dst_cap || last > INT32_MAX) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: item range does not fit");
        return NGFF_ERR_INVALID_ARGUMENT;
    }
    if ((st = blosc_ready(ctx, src, 1, detail)) != NGFF_OK)
        return st;
    int rc = blosc2_getitem_ctx(ctx->blosc, src, cbytes, (int)first, (int)(last - first), dst,
                                (int32_t)dst_cap);
    *dst_origin = first * typesize;
    return blosc_result(ctx, rc, want, detail);
}
