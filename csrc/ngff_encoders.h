/* Bytes-to-bytes encoders, the inverse of ngff_codecs.h: blosc (c-blosc 1.x frames), zstd,
 * zlib/gzip, numcodecs-LZ4, crc32c. Their output is what the decoders here and the reference
 * implementations (numcodecs, zarr-python, tensorstore) read. */
#ifndef NGFF_ENCODERS_H
#define NGFF_ENCODERS_H

#include <stddef.h>
#include <stdint.h>

#include "ngff_decode.h"
#include "ngff_status.h"

/* Per-thread encoder state: compression contexts and the blosc shuffle buffer, reused from
 * chunk to chunk (the libraries' contexts are not thread-safe). */
typedef struct ngff_enc_ctx ngff_enc_ctx;

ngff_enc_ctx *ngff_enc_ctx_create(void);
void ngff_enc_ctx_destroy(ngff_enc_ctx *ctx);

/* The most bytes `codec` makes of n input bytes, or -1 if that overflows int64. */
int64_t ngff_codec_encode_bound(int32_t codec, int64_t n);

/* NGFF_ERR_INVALID_ARGUMENT, naming the codec and parameter in `detail`, for settings the
 * encoder refuses (unknown cname, shuffle not 0/1/2, level out of range, ...). */
ngff_status ngff_codec_params_check(int32_t codec, const ngff_codec_params *prm, char *detail);

/* Encodes src (n bytes; elements of `itemsize` bytes, blosc's default typesize) into dst,
 * which holds `cap` bytes: never written past. A dst too small for the output is
 * NGFF_ERR_INVALID_ARGUMENT (ngff_codec_encode_bound bytes always suffice). */
ngff_status ngff_codec_encode(ngff_enc_ctx *ctx, int32_t codec, const ngff_codec_params *prm,
                              int32_t itemsize, const uint8_t *src, size_t n, uint8_t *dst,
                              size_t cap, size_t *out_len, char *detail);

#endif
