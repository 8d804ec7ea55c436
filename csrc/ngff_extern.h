/*
 * The few stable public functions of zstd, LZ4 and zlib-ng that the core calls.
 *
 * They come from the static libblosc2.a of the blosc2 wheel, which bundles zstd 1.5,
 * LZ4 1.10 and zlib-ng 2.x (native "zng_" API) but ships none of their headers. Only
 * long-stable entry points are declared here; zlib-ng's stream struct is checked at
 * run time by zng_inflateInit2_(..., sizeof(zng_stream)), which refuses a mismatch.
 * blosc2's own header (blosc2.h) is shipped by the wheel and included directly.
 */
#ifndef NGFF_EXTERN_H
#define NGFF_EXTERN_H

#include <stddef.h>
#include <stdint.h>

/* ---- zstd (lib/zstd.h, stable API since 1.3) ---- */
typedef struct ZSTD_DCtx_s ZSTD_DCtx;
#define NGFF_ZSTD_CONTENTSIZE_UNKNOWN (0ULL - 1)
#define NGFF_ZSTD_CONTENTSIZE_ERROR (0ULL - 2)
ZSTD_DCtx *ZSTD_createDCtx(void);
size_t ZSTD_freeDCtx(ZSTD_DCtx *dctx);
size_t ZSTD_decompressDCtx(ZSTD_DCtx *dctx, void *dst, size_t dst_capacity,
                           const void *src, size_t src_size);
unsigned long long ZSTD_getFrameContentSize(const void *src, size_t src_size);
unsigned ZSTD_isError(size_t code);
const char *ZSTD_getErrorName(size_t code);

/* ---- LZ4 (lib/lz4.h, stable block API) ---- */
int LZ4_decompress_safe(const char *src, char *dst, int compressed_size, int dst_capacity);

/* ---- zlib-ng native API (zlib-ng.h, 2.x) ---- */
typedef void *(*ngff_zng_alloc_func)(void *opaque, unsigned int items, unsigned int size);
typedef void (*ngff_zng_free_func)(void *opaque, void *address);
typedef struct zng_stream_s {
    const uint8_t *next_in;
    uint32_t avail_in;
    size_t total_in;
    uint8_t *next_out;
    uint32_t avail_out;
    size_t total_out;
    const char *msg;
    struct internal_state *state;
    ngff_zng_alloc_func zalloc;
    ngff_zng_free_func zfree;
    void *opaque;
    int data_type;
    uint32_t adler;
    unsigned long reserved;
} zng_stream;
#define NGFF_Z_OK 0
#define NGFF_Z_STREAM_END 1
#define NGFF_Z_NEED_DICT 2
#define NGFF_Z_BUF_ERROR (-5)
#define NGFF_Z_NO_FLUSH 0
#define NGFF_Z_FINISH 4
const char *zlibng_version(void);
int32_t zng_inflateInit2_(zng_stream *strm, int32_t window_bits, const char *version,
                          int32_t stream_size);
int32_t zng_inflate(zng_stream *strm, int32_t flush);
int32_t zng_inflateReset(zng_stream *strm);
int32_t zng_inflateEnd(zng_stream *strm);

/* ---- compress side (encoders, ngff_encoders.c) ---- */
typedef struct ZSTD_CCtx_s ZSTD_CCtx;
#define NGFF_ZSTD_c_compressionLevel 100
#define NGFF_ZSTD_c_contentSizeFlag 200
#define NGFF_ZSTD_c_checksumFlag 201
#define NGFF_ZSTD_reset_session_and_parameters 3
ZSTD_CCtx *ZSTD_createCCtx(void);
size_t ZSTD_freeCCtx(ZSTD_CCtx *cctx);
size_t ZSTD_CCtx_reset(ZSTD_CCtx *cctx, int reset);
size_t ZSTD_CCtx_setParameter(ZSTD_CCtx *cctx, int param, int value);
size_t ZSTD_compress2(ZSTD_CCtx *cctx, void *dst, size_t dst_capacity, const void *src,
                      size_t src_size);
size_t ZSTD_compressCCtx(ZSTD_CCtx *cctx, void *dst, size_t dst_capacity, const void *src,
                         size_t src_size, int level);
int ZSTD_maxCLevel(void);
int ZSTD_minCLevel(void);

#define NGFF_LZ4_MAX_INPUT_SIZE 0x7E000000
int LZ4_sizeofState(void);
int LZ4_compress_fast_extState(void *state, const char *src, char *dst, int src_size,
                               int dst_capacity, int acceleration);
int LZ4_sizeofStateHC(void);
int LZ4_compress_HC_extStateHC(void *state, const char *src, char *dst, int src_size,
                               int dst_capacity, int level);

#define NGFF_Z_DEFLATED 8
int32_t zng_deflateInit2_(zng_stream *strm, int32_t level, int32_t method, int32_t window_bits,
                          int32_t mem_level, int32_t strategy, const char *version,
                          int32_t stream_size);
int32_t zng_deflate(zng_stream *strm, int32_t flush);
int32_t zng_deflateReset(zng_stream *strm);
int32_t zng_deflateEnd(zng_stream *strm);
size_t zng_compressBound(size_t source_len);

/* c-blosc2's own blosclz encoder (blosc/blosclz.h, not in the installed headers); its last
 * argument (a blosc2_context) is unused. Output is the blosclz format c-blosc 1.x reads. */
int blosclz_compress(int clevel, const void *input, int length, void *output, int maxout,
                     void *ctx);

#endif
