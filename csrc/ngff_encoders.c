#define _GNU_SOURCE
#include "ngff_encoders.h"

#include <blosc2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngff_crc32c.h"
#include "ngff_extern.h"
#include "ngff_fetch.h"

struct ngff_enc_ctx {
    ZSTD_CCtx *zstd;
    zng_stream zs;
    int zs_ready, zs_level, zs_bits; /* the settings zs was initialised with */
    void *lz4;                       /* LZ4_sizeofState() bytes */
    void *lz4hc;                     /* LZ4_sizeofStateHC() bytes, made on first use (~256 KiB) */
    ngff_buffer shuffled;            /* blosc: one block after its shuffle */
};

ngff_enc_ctx *ngff_enc_ctx_create(void)
{
    ngff_enc_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->zstd = ZSTD_createCCtx();
    ctx->lz4 = malloc((size_t)LZ4_sizeofState());
    if (!ctx->zstd || !ctx->lz4) {
        ngff_enc_ctx_destroy(ctx);
        return NULL;
    }
    return ctx;
}

void ngff_enc_ctx_destroy(ngff_enc_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->zstd)
        ZSTD_freeCCtx(ctx->zstd);
    if (ctx->zs_ready)
        zng_deflateEnd(&ctx->zs);
    free(ctx->lz4);
    free(ctx->lz4hc);
    ngff_buffer_free(&ctx->shuffled);
    free(ctx);
}

static void store_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static ngff_status too_small(const char *codec, size_t cap, char *detail)
{
    snprintf(detail, NGFF_DETAIL_CAP, "%s: the output does not fit the %zu-byte buffer", codec,
             cap);
    return NGFF_ERR_INVALID_ARGUMENT;
}

static ngff_status bad_param(const char *codec, const char *param, long long value,
                             const char *allowed, char *detail)
{
    snprintf(detail, NGFF_DETAIL_CAP, "%s: %s %lld is not supported (%s)", codec, param, value,
             allowed);
    return NGFF_ERR_INVALID_ARGUMENT;
}

/* ---- limits and bounds ------------------------------------------------------------------ */

/* c-blosc 1.x (blosc/blosc.h, blosc.c) */
enum {
    B1_HEADER = 16,          /* BLOSC_MAX_OVERHEAD: a frame is at most nbytes + 16 */
    B1_MIN_BUFFERSIZE = 128, /* smaller buffers are stored as a copy */
    B1_MAX_SPLITS = 16,
    B1_L1 = 32 * 1024,
    B1_DOSHUFFLE = 0x1,
    B1_MEMCPYED = 0x2,
    B1_DOBITSHUFFLE = 0x4,
    B1_DONT_SPLIT = 0x10,
};
#define B1_MAX_BUFFERSIZE (INT32_MAX - B1_HEADER)
#define B1_MAX_BLOCKSIZE ((INT32_MAX - 255 * 4) / 3)

int64_t ngff_codec_encode_bound(int32_t codec, int64_t n)
{
    int64_t r, extra;
    if (n < 0)
        return -1;
    switch (codec) {
    case NGFF_CODEC_BLOSC:
        extra = B1_HEADER;
        break;
    case NGFF_CODEC_ZSTD: /* ZSTD_COMPRESSBOUND, plus room for the checksum */
        extra = (n >> 8) + (n < (128 << 10) ? ((128 << 10) - n) >> 11 : 0) + 32;
        break;
    case NGFF_CODEC_ZLIB: { /* zlib-ng's bound (its level-1 quick deflate grows by n/8) */
        size_t b = zng_compressBound((size_t)n);
        if (b < (size_t)n || b - (size_t)n > (size_t)INT64_MAX - 64)
            return -1;
        extra = (int64_t)(b - (size_t)n) + 18; /* a gzip wrapper is 12 bytes longer */
        break;
    }
    case NGFF_CODEC_LZ4: /* LZ4_COMPRESSBOUND plus the 4-byte size */
        extra = n / 255 + 16 + 4;
        break;
    case NGFF_CODEC_CRC32C:
        extra = 4;
        break;
    default:
        return -1;
    }
    return __builtin_add_overflow(n, extra, &r) ? -1 : r;
}

ngff_status ngff_codec_params_check(int32_t codec, const ngff_codec_params *p, char *detail)
{
    switch (codec) {
    case NGFF_CODEC_BLOSC:
        if (p->cname != NGFF_BLOSC_BLOSCLZ && p->cname != NGFF_BLOSC_LZ4 &&
            p->cname != NGFF_BLOSC_LZ4HC && p->cname != NGFF_BLOSC_ZLIB &&
            p->cname != NGFF_BLOSC_ZSTD)
            return bad_param("blosc", "cname", p->cname,
                             "blosclz 0, lz4 1, lz4hc 2, zlib 4, zstd 5", detail);
        if (p->shuffle < 0 || p->shuffle > 2)
            return bad_param("blosc", "shuffle", p->shuffle, "0 none, 1 byte, 2 bit", detail);
        if (p->level < 0 || p->level > 9)
            return bad_param("blosc", "clevel", p->level, "0..9", detail);
        if (p->typesize < 0)
            return bad_param("blosc", "typesize", p->typesize, "1..255, 0: the item size",
                             detail);
        if (p->blocksize < 0)
            return bad_param("blosc", "blocksize", p->blocksize, ">= 0, 0: automatic", detail);
        return NGFF_OK;
    case NGFF_CODEC_ZSTD:
        if (p->level < ZSTD_minCLevel() || p->level > ZSTD_maxCLevel())
            return bad_param("zstd", "level", p->level, "zstd's level range", detail);
        if (p->checksum != 0 && p->checksum != 1)
            return bad_param("zstd", "checksum", p->checksum, "0 or 1", detail);
        return NGFF_OK;
    case NGFF_CODEC_ZLIB:
        if (p->level < -1 || p->level > 9)
            return bad_param(p->gzip ? "gzip" : "zlib", "level", p->level, "-1..9", detail);
        if (p->gzip != 0 && p->gzip != 1)
            return bad_param("zlib", "gzip", p->gzip, "0 or 1", detail);
        return NGFF_OK;
    case NGFF_CODEC_LZ4:
        if (p->level < 1)
            return bad_param("lz4", "acceleration", p->level, ">= 1", detail);
        return NGFF_OK;
    case NGFF_CODEC_CRC32C:
        return NGFF_OK;
    default:
        return bad_param("encoder", "codec", codec, "blosc, zstd, zlib, lz4, crc32c", detail);
    }
}

/* ---- zlib / gzip ------------------------------------------------------------------------ */

/* Deflates src into dst with the per-thread stream (re-initialised only when the settings
 * change). *full is set when dst filled up before the stream ended. */
static ngff_status deflate_into(ngff_enc_ctx *ctx, int level, int bits, const uint8_t *src,
                                size_t n, uint8_t *dst, size_t cap, size_t *out_len, int *full,
                                char *detail)
{
    zng_stream *zs = &ctx->zs;
    *full = 0;
    if (ctx->zs_ready && (ctx->zs_level != level || ctx->zs_bits != bits)) {
        zng_deflateEnd(zs);
        ctx->zs_ready = 0;
    }
    int32_t rc;
    if (!ctx->zs_ready) {
        memset(zs, 0, sizeof *zs);
        rc = zng_deflateInit2_(zs, level, NGFF_Z_DEFLATED, bits, 8, 0, zlibng_version(),
                               (int32_t)sizeof *zs);
        if (rc != NGFF_Z_OK) {
            snprintf(detail, NGFF_DETAIL_CAP, "zlib: cannot start a deflate stream (%d)", rc);
            return rc == -4 ? NGFF_ERR_NOMEM : NGFF_ERR_INVALID_ARGUMENT;
        }
        ctx->zs_ready = 1;
        ctx->zs_level = level;
        ctx->zs_bits = bits;
    } else if (zng_deflateReset(zs) != NGFF_Z_OK) {
        snprintf(detail, NGFF_DETAIL_CAP, "zlib: cannot reset the deflate stream");
        return NGFF_ERR_INVALID_ARGUMENT;
    }
    zs->next_in = src;
    zs->next_out = dst;
    size_t left_in = n, left_out = cap;
    for (;;) {
        /* avail_in/out are 32-bit: feed buffers beyond 4 GiB in slices */
        uint32_t ai = left_in > UINT32_MAX ? UINT32_MAX : (uint32_t)left_in;
        uint32_t ao = left_out > UINT32_MAX ? UINT32_MAX : (uint32_t)left_out;
        zs->avail_in = ai;
        zs->avail_out = ao;
        rc = zng_deflate(zs, ai == left_in ? NGFF_Z_FINISH : NGFF_Z_NO_FLUSH);
        left_in -= ai - zs->avail_in;
        left_out -= ao - zs->avail_out;
        if (rc == NGFF_Z_STREAM_END)
            break;
        if ((rc == NGFF_Z_OK || rc == NGFF_Z_BUF_ERROR) && left_out == 0) {
            *full = 1;
            return NGFF_OK;
        }
        if (rc != NGFF_Z_OK) {
            snprintf(detail, NGFF_DETAIL_CAP, "zlib: deflate failed (%d)", rc);
            return NGFF_ERR_INVALID_ARGUMENT;
        }
    }
    *out_len = cap - left_out;
    return NGFF_OK;
}

/* ---- blosc: c-blosc 1.x frames ---------------------------------------------------------- */

static int hcr(int32_t cname) /* codecs c-blosc 1 gives bigger blocks */
{
    return cname == NGFF_BLOSC_LZ4HC || cname == NGFF_BLOSC_ZLIB || cname == NGFF_BLOSC_ZSTD;
}

/* c-blosc 1.x's default split mode (BLOSC_FORWARD_COMPAT_SPLIT) */
static int split_block(int32_t cname, int32_t typesize, int32_t blocksize)
{
    return cname != NGFF_BLOSC_ZSTD && typesize <= B1_MAX_SPLITS &&
           blocksize / typesize >= B1_MIN_BUFFERSIZE;
}

/* c-blosc 1.21's compute_blocksize, so blocks (and ratios) are those numcodecs writes. */
static int32_t compute_blocksize(int32_t cname, int32_t clevel, int32_t typesize,
                                 int32_t nbytes, int64_t forced)
{
    if (nbytes < typesize)
        return 1;
    int32_t blocksize = nbytes;
    if (forced) {
        blocksize = forced > B1_MAX_BLOCKSIZE ? B1_MAX_BLOCKSIZE : (int32_t)forced;
        if (blocksize < B1_MIN_BUFFERSIZE)
            blocksize = B1_MIN_BUFFERSIZE;
    } else if (nbytes >= B1_L1) {
        blocksize = B1_L1;
        if (hcr(cname))
            blocksize *= 2;
        static const int8_t shift[10] = {-2, -1, 0, 1, 2, 2, 3, 3, 3, 3};
        blocksize = shift[clevel] < 0 ? blocksize >> -shift[clevel] : blocksize << shift[clevel];
        if (clevel == 9 && hcr(cname))
            blocksize *= 2;
    }
    if (clevel > 0 && split_block(cname, typesize, blocksize)) {
        if (blocksize > (1 << 18))
            blocksize = 1 << 18;
        blocksize *= typesize;
        if (blocksize < (1 << 16))
            blocksize = 1 << 16;
        if (blocksize > 1024 * 1024)
            blocksize = 1024 * 1024;
    }
    if (blocksize > nbytes)
        blocksize = nbytes;
    if (blocksize > typesize)
        blocksize = blocksize / typesize * typesize;
    return blocksize;
}

typedef struct blosc_frame {
    int32_t cname, clevel, typesize, dont_split, shuffle;
} blosc_frame;

/* One stream of a block: compressed bytes written (<= maxout), 0 if it does not compress. */
static int64_t blosc_stream(ngff_enc_ctx *ctx, const blosc_frame *f, const uint8_t *in,
                            int32_t len, uint8_t *out, int32_t maxout, char *detail)
{
    switch (f->cname) {
    case NGFF_BLOSC_BLOSCLZ:
        return blosclz_compress(f->clevel, in, len, out, maxout, NULL);
    case NGFF_BLOSC_LZ4: /* c-blosc 1's get_accel */
        return LZ4_compress_fast_extState(ctx->lz4, (const char *)in, (char *)out, len, maxout,
                                          10 - f->clevel);
    case NGFF_BLOSC_LZ4HC:
        if (!ctx->lz4hc && !(ctx->lz4hc = malloc((size_t)LZ4_sizeofStateHC())))
            return -(int64_t)NGFF_ERR_NOMEM;
        return LZ4_compress_HC_extStateHC(ctx->lz4hc, (const char *)in, (char *)out, len,
                                          maxout, f->clevel);
    case NGFF_BLOSC_ZLIB: {
        size_t got;
        int full;
        ngff_status st = deflate_into(ctx, f->clevel, 15, in, (size_t)len, out, (size_t)maxout,
                                      &got, &full, detail);
        if (st != NGFF_OK)
            return -(int64_t)st;
        return full ? 0 : (int64_t)got;
    }
    default: { /* zstd, with c-blosc 1's level mapping */
        int level = f->clevel < 9 ? f->clevel * 2 - 1 : ZSTD_maxCLevel();
        size_t r = ZSTD_compressCCtx(ctx->zstd, out, (size_t)maxout, in, (size_t)len, level);
        return ZSTD_isError(r) ? 0 : (int64_t)r;
    }
    }
}

/* Shuffles and compresses one block at dst + *ntbytes (c-blosc 1's blosc_c). Returns NGFF_OK
 * with *fits 0 when the frame would exceed maxbytes (the caller stores a copy instead). */
static ngff_status blosc_block(ngff_enc_ctx *ctx, const blosc_frame *f, const uint8_t *src,
                               int32_t bsize, int leftover, uint8_t *dst, size_t *ntbytes,
                               size_t maxbytes, int *fits, char *detail)
{
    const uint8_t *in = src;
    int32_t ts = f->typesize;
    *fits = 0;
    if ((f->shuffle == 1 && ts > 1) || (f->shuffle == 2 && bsize >= ts)) {
        uint8_t *tmp = ngff_buffer_reserve(&ctx->shuffled, (size_t)bsize);
        if (!tmp)
            return NGFF_ERR_NOMEM;
        if (f->shuffle == 1) {
            if (blosc2_shuffle(ts, bsize, src, tmp) < 0)
                goto shuffle_failed;
            in = tmp;
        } else if ((bsize / ts) % 8 == 0) {
            /* c-blosc 1 bit-shuffles only blocks of a multiple of 8 items and stores any
             * other block as it is (c-blosc2's version would shuffle most of it) */
            if (blosc2_bitshuffle(ts, bsize, src, tmp) < 0)
                goto shuffle_failed;
            in = tmp;
        }
    }
    int32_t nsplits = !f->dont_split && !leftover ? ts : 1;
    int32_t neblock = bsize / nsplits;
    uint8_t *out = dst + *ntbytes;
    size_t nt = *ntbytes;
    for (int32_t j = 0; j < nsplits; j++) {
        if (nt + 4 > maxbytes)
            return NGFF_OK;
        nt += 4;
        out += 4;
        int64_t maxout = neblock;
        if (nt + (size_t)maxout > maxbytes) {
            maxout = (int64_t)(maxbytes - nt);
            if (maxout <= 0)
                return NGFF_OK;
        }
        int64_t cbytes = blosc_stream(ctx, f, in + (size_t)j * (size_t)neblock, neblock, out,
                                      (int32_t)maxout, detail);
        if (cbytes < 0)
            return (ngff_status)-cbytes;
        if (cbytes > maxout) {
            snprintf(detail, NGFF_DETAIL_CAP, "blosc: the compressor overran its output");
            return NGFF_ERR_INVALID_ARGUMENT;
        }
        if (cbytes == 0 || cbytes == neblock) { /* stored raw: the decoder copies it */
            if (nt + (size_t)neblock > maxbytes)
                return NGFF_OK;
            memcpy(out, in + (size_t)j * (size_t)neblock, (size_t)neblock);
            cbytes = neblock;
        }
        store_le32(out - 4, (uint32_t)cbytes);
        out += cbytes;
        nt += (size_t)cbytes;
    }
    *ntbytes = nt;
    *fits = 1;
    return NGFF_OK;
shuffle_failed:
    snprintf(detail, NGFF_DETAIL_CAP, "blosc: the shuffle of a %d-byte block failed", bsize);
    return NGFF_ERR_INVALID_ARGUMENT;
}

static ngff_status blosc_encode(ngff_enc_ctx *ctx, const ngff_codec_params *p, int32_t itemsize,
                                const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
                                size_t *out_len, char *detail)
{
    if (n > (size_t)B1_MAX_BUFFERSIZE) {
        snprintf(detail, NGFF_DETAIL_CAP, "blosc: a %zu-byte chunk exceeds c-blosc 1's limit of "
                 "%d bytes", n, B1_MAX_BUFFERSIZE);
        return NGFF_ERR_UNSUPPORTED;
    }
    if (cap < B1_HEADER)
        return too_small("blosc", cap, detail);
    blosc_frame f = {.cname = p->cname, .clevel = p->level, .shuffle = p->shuffle,
                     .typesize = p->typesize ? p->typesize : itemsize};
    if (f.typesize > 255) /* as c-blosc: the buffer is a stream of bytes */
        f.typesize = 1;
    int32_t nbytes = (int32_t)n;
    int32_t blocksize = compute_blocksize(f.cname, f.clevel, f.typesize, nbytes, p->blocksize);
    int32_t nblocks = nbytes / blocksize + (nbytes % blocksize ? 1 : 0);
    f.dont_split = !split_block(f.cname, f.typesize, blocksize);
    static const uint8_t format[6] = {0, 1, 1, 0, 3, 4}; /* blosclz, lz4, lz4hc, -, zlib, zstd */
    uint8_t flags = (uint8_t)(format[f.cname] << 5 | (f.dont_split ? B1_DONT_SPLIT : 0) |
                              (f.shuffle == 1 ? B1_DOSHUFFLE : 0) |
                              (f.shuffle == 2 ? B1_DOBITSHUFFLE : 0));
    size_t maxbytes = cap < n + B1_HEADER ? cap : n + B1_HEADER;
    size_t ntbytes = B1_HEADER + 4 * (size_t)nblocks;
    int fits = f.clevel > 0 && nbytes >= B1_MIN_BUFFERSIZE && ntbytes <= maxbytes;
    for (int32_t j = 0; fits && j < nblocks; j++) {
        int leftover = j == nblocks - 1 && nbytes % blocksize;
        int32_t bsize = leftover ? nbytes % blocksize : blocksize;
        store_le32(dst + B1_HEADER + 4 * (size_t)j, (uint32_t)ntbytes);
        ngff_status st = blosc_block(ctx, &f, src + (size_t)j * (size_t)blocksize, bsize,
                                     leftover, dst, &ntbytes, maxbytes, &fits, detail);
        if (st != NGFF_OK)
            return st;
    }
    if (!fits) { /* level 0, tiny, or incompressible: the header and a copy (as c-blosc 1) */
        if (n + B1_HEADER > cap)
            return too_small("blosc", cap, detail);
        flags |= B1_MEMCPYED;
        memcpy(dst + B1_HEADER, src, n);
        ntbytes = n + B1_HEADER;
    }
    dst[0] = 2; /* BLOSC_VERSION_FORMAT of c-blosc 1.x */
    dst[1] = 1; /* every compressor's format version */
    dst[2] = flags;
    dst[3] = (uint8_t)f.typesize;
    store_le32(dst + 4, (uint32_t)nbytes);
    store_le32(dst + 8, (uint32_t)blocksize);
    store_le32(dst + 12, (uint32_t)ntbytes);
    *out_len = ntbytes;
    return NGFF_OK;
}

/* ---- the other codecs ------------------------------------------------------------------- */

static ngff_status zstd_encode(ngff_enc_ctx *ctx, const ngff_codec_params *p, const uint8_t *src,
                               size_t n, uint8_t *dst, size_t cap, size_t *out_len, char *detail)
{
    size_t r = ZSTD_CCtx_reset(ctx->zstd, NGFF_ZSTD_reset_session_and_parameters);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(ctx->zstd, NGFF_ZSTD_c_compressionLevel, p->level);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(ctx->zstd, NGFF_ZSTD_c_checksumFlag, p->checksum);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(ctx->zstd, NGFF_ZSTD_c_contentSizeFlag, 1);
    if (!ZSTD_isError(r))
        r = ZSTD_compress2(ctx->zstd, dst, cap, src, n);
    if (ZSTD_isError(r)) {
        snprintf(detail, NGFF_DETAIL_CAP, "zstd: %s (output buffer of %zu bytes)",
                 ZSTD_getErrorName(r), cap);
        return NGFF_ERR_INVALID_ARGUMENT;
    }
    *out_len = r;
    return NGFF_OK;
}

static ngff_status lz4_encode(ngff_enc_ctx *ctx, const ngff_codec_params *p, const uint8_t *src,
                              size_t n, uint8_t *dst, size_t cap, size_t *out_len, char *detail)
{
    if (n > NGFF_LZ4_MAX_INPUT_SIZE) {
        snprintf(detail, NGFF_DETAIL_CAP, "lz4: a %zu-byte chunk exceeds LZ4's limit of %d "
                 "bytes", n, NGFF_LZ4_MAX_INPUT_SIZE);
        return NGFF_ERR_UNSUPPORTED;
    }
    if (cap < 4)
        return too_small("lz4", cap, detail);
    size_t room = cap - 4 > INT32_MAX ? INT32_MAX : cap - 4;
    int r = LZ4_compress_fast_extState(ctx->lz4, (const char *)src, (char *)dst + 4, (int)n,
                                       (int)room, p->level);
    if (r <= 0)
        return too_small("lz4", cap, detail);
    store_le32(dst, (uint32_t)n);
    *out_len = (size_t)r + 4;
    return NGFF_OK;
}

ngff_status ngff_codec_encode(ngff_enc_ctx *ctx, int32_t codec, const ngff_codec_params *prm,
                              int32_t itemsize, const uint8_t *src, size_t n, uint8_t *dst,
                              size_t cap, size_t *out_len, char *detail)
{
    ngff_status st = ngff_codec_params_check(codec, prm, detail);
    if (st != NGFF_OK)
        return st;
    switch (codec) {
    case NGFF_CODEC_BLOSC:
        return blosc_encode(ctx, prm, itemsize, src, n, dst, cap, out_len, detail);
    case NGFF_CODEC_ZSTD:
        return zstd_encode(ctx, prm, src, n, dst, cap, out_len, detail);
    case NGFF_CODEC_ZLIB: {
        int full;
        st = deflate_into(ctx, prm->level, prm->gzip ? 31 : 15, src, n, dst, cap, out_len,
                          &full, detail);
        if (st == NGFF_OK && full)
            return too_small(prm->gzip ? "gzip" : "zlib", cap, detail);
        return st;
    }
    case NGFF_CODEC_LZ4:
        return lz4_encode(ctx, prm, src, n, dst, cap, out_len, detail);
    default: /* crc32c */
        if (cap < 4 || n > cap - 4)
            return too_small("crc32c", cap, detail);
        memcpy(dst, src, n);
        store_le32(dst + n, ngff_crc32c(0, src, n));
        *out_len = n + 4;
        return NGFF_OK;
    }
}
