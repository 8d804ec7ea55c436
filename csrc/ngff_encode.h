/* The write side of a chunk: gather a box of the caller's value into a chunk (over its
 * current bytes or the fill value), then byteswap -> delta -> bytes codecs, on the pool. */
#ifndef NGFF_ENCODE_H
#define NGFF_ENCODE_H

#include <stdint.h>

#include "ngff_decode.h"
#include "ngff_fetch.h"
#include "ngff_pool.h"
#include "ngff_status.h"

/* Most bytes one encoded chunk of the pipeline can take (every codec's bound, chained), or -1
 * on overflow. */
int64_t ngff_encode_bound(const ngff_pipeline *p);

typedef struct ngff_encode_batch {
    const ngff_pipeline *pipeline;
    const uint8_t *in;                 /* the caller's value: element at box offset 0 (selection
                                          start) */
    int64_t in_strides[NGFF_MAX_DIMS]; /* byte strides; may be 0 (numpy broadcast) or negative */
    int64_t n_chunks;
    const int64_t *boxes;              /* n_chunks x 3*ndim, exactly as ngff_grid_plan writes
                                          them: box start inside the chunk, box shape, box start
                                          in the value */
    const ngff_source *bases;          /* n_chunks: what fills the chunk outside its box: the
                                          chunk's current encoded bytes (MEMORY, or FILE as in
                                          decode batches), or MISSING: the fill value. NULL =
                                          all MISSING. Not read when the box covers the whole
                                          chunk. */
    const ngff_root *confine;          /* FILE bases are opened beneath it (as decode); may be
                                          NULL */
    uint8_t *out;                      /* caller-owned: chunk i is written at
                                          out + i * out_stride */
    int64_t out_stride;                /* >= ngff_encode_bound(pipeline), else
                                          NGFF_ERR_INVALID_ARGUMENT */
    int64_t *out_lens;                 /* n_chunks, written: the encoded length; -1 if the chunk
                                          is entirely the fill value and skip_fill is set
                                          (nothing encoded) */
    int32_t skip_fill;
    ngff_chunk_result *results;        /* n_chunks, written (status, codec, detail as decode) */
} ngff_encode_batch;

/* Runs every chunk of the batch on the pool (and the calling thread); many threads may call it
 * at once. NGFF_OK, or the status of the lowest-numbered failed chunk (its index in
 * *first_failed; -1 when the batch itself is invalid). Never touches Python. */
ngff_status ngff_pool_encode(ngff_pool *pool, const ngff_encode_batch *batch,
                             int64_t *first_failed);

/* Encodes one decoded chunk (chunk_nbytes bytes in the stored layout, the output byte order)
 * through byteswap, delta and the codecs into out (cap bytes, never written past; too small
 * is NGFF_ERR_INVALID_ARGUMENT). On the calling thread, with its per-thread state. */
ngff_status ngff_encode_buffer(const ngff_pipeline *p, const uint8_t *decoded, uint8_t *out,
                               int64_t cap, int64_t *out_len, ngff_chunk_result *res);

#endif
