/* Bytes-to-bytes decoders: blosc (1 and 2 frames), zstd, zlib/gzip, numcodecs-LZ4, crc32c. */
#ifndef NGFF_CODECS_H
#define NGFF_CODECS_H

#include <stddef.h>
#include <stdint.h>
#include "ngff_status.h"

enum ngff_codec_id {
    NGFF_CODEC_BLOSC = 1,
    NGFF_CODEC_ZSTD = 2,
    NGFF_CODEC_ZLIB = 3,   /* zlib or gzip stream (auto-detected), as numcodecs Zlib/GZip */
    NGFF_CODEC_LZ4 = 4,    /* numcodecs LZ4: 4-byte little-endian size, then an LZ4 block */
    NGFF_CODEC_CRC32C = 5, /* 4-byte little-endian CRC-32C appended to the payload */
};

#define NGFF_DETAIL_CAP 160

/* Per-thread decoder state (library contexts are not thread-safe). */
typedef struct ngff_codec_ctx ngff_codec_ctx;

ngff_codec_ctx *ngff_codec_ctx_create(void);
void ngff_codec_ctx_destroy(ngff_codec_ctx *ctx);

/* Size the codec's decoded output will have, read from its header, or NGFF_ERR_UNSUPPORTED
 * when the format does not record it (zlib/gzip, zstd frames without content size). */
ngff_status ngff_codec_decoded_size(int32_t codec, const uint8_t *src, size_t src_len,
                                    int64_t *size, char *detail);

/* Decodes src into dst, which must receive exactly `expected` bytes. CRC32C is not handled
 * here (see ngff_crc32c_strip). `detail` (NGFF_DETAIL_CAP bytes) gets the library's message. */
ngff_status ngff_codec_decode(ngff_codec_ctx *ctx, int32_t codec, const uint8_t *src,
                              size_t src_len, uint8_t *dst, size_t expected, char *detail);

/* Checks the trailing CRC-32C of src and returns the payload length in *payload_len. */
ngff_status ngff_crc32c_strip(const uint8_t *src, size_t src_len, size_t *payload_len,
                              char *detail);

/* Blosc partial decode: decodes only the blosc blocks holding bytes [byte_start, byte_stop)
 * of the decoded chunk (whose full size must be `expected`). Writes whole items of the
 * chunk's blosc typesize into dst (capacity dst_cap) and sets *dst_origin to the decoded
 * offset of dst[0]. */
/* Whether a blosc frame carries the byte-shuffle flag for 1-byte items. That shuffle is the
 * identity, but c-blosc2 undoes it byte by byte at ~10x the cost of the decode itself; such
 * frames decode to the same bytes with the flag (bit 0 of header byte 2) cleared. */
int ngff_blosc_identity_shuffle(const uint8_t *src, size_t src_len);

/* Validates a blosc frame decoding to `expected` bytes; gives its block size and typesize.
 * NGFF_ERR_UNSUPPORTED (as ngff_blosc_decode_range) for delta-filtered frames, whose blocks
 * only decode after the first: decode those whole. */
ngff_status ngff_blosc_layout(const uint8_t *src, size_t src_len, size_t expected,
                              size_t *blocksize, size_t *typesize, char *detail);

ngff_status ngff_blosc_decode_range(ngff_codec_ctx *ctx, const uint8_t *src, size_t src_len,
                                    size_t expected, size_t byte_start, size_t byte_stop,
                                    uint8_t *dst, size_t dst_cap, size_t *dst_origin,
                                    char *detail);

#endif
