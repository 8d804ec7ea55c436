/* One chunk: bytes (memory, local file range, or missing) → codec chain → scatter into the
 * caller's output. The batch types are shared with the pool. */
#ifndef NGFF_DECODE_H
#define NGFF_DECODE_H

#include <stdint.h>
#include "ngff_codecs.h"
#include "ngff_fetch.h"
#include "ngff_grid.h"
#include "ngff_status.h"

#define NGFF_MAX_CODECS 8

enum ngff_delta_kind { NGFF_DELTA_NONE = 0, NGFF_DELTA_INT, NGFF_DELTA_UINT, NGFF_DELTA_FLOAT };

/* Encoder settings of one codec (decoding ignores them); see ngff_encoders.h. */
typedef struct ngff_codec_params {
    int32_t level;     /* zstd level (may be negative, as zstd allows); zlib/gzip 0..9 (-1:
                          zlib's default); blosc clevel 0..9; lz4: acceleration (>= 1) */
    int32_t cname;     /* blosc: enum ngff_blosc_cname (c-blosc1 compcodes) */
    int32_t shuffle;   /* blosc: 0 none, 1 byte shuffle, 2 bit shuffle */
    int32_t typesize;  /* blosc: item size the shuffle uses, 1..255 (0: the pipeline's
                          itemsize, >255 -> 1) */
    int64_t blocksize; /* blosc: 0 automatic (as c-blosc 1.x chooses), else bytes */
    int32_t gzip;      /* NGFF_CODEC_ZLIB: 1 gzip wrapper (numcodecs/zarr "gzip"), 0 zlib
                          wrapper ("zlib") */
    int32_t checksum;  /* NGFF_CODEC_ZSTD: 1 writes the frame content checksum */
} ngff_codec_params;

enum ngff_blosc_cname {
    NGFF_BLOSC_BLOSCLZ = 0,
    NGFF_BLOSC_LZ4 = 1,
    NGFF_BLOSC_LZ4HC = 2,
    NGFF_BLOSC_ZLIB = 4,
    NGFF_BLOSC_ZSTD = 5
};

/* How the chunks of one array are stored, and what the output wants. */
typedef struct ngff_pipeline {
    int32_t ndim;
    int32_t itemsize;                     /* bytes per element, 1..16 */
    int32_t byteswap;                     /* 0, or components to reverse (1 scalar, 2 complex) */
    int32_t delta;                        /* numcodecs Delta filter on the stored elements */
    int32_t delta_swap;                   /* stored elements are not native-endian */
    int32_t n_codecs;                     /* bytes->bytes codecs, in encode order */
    int32_t codecs[NGFF_MAX_CODECS];      /* enum ngff_codec_id */
    ngff_codec_params params[NGFF_MAX_CODECS]; /* codecs[k]'s encoder settings */
    int64_t chunk_shape[NGFF_MAX_DIMS];   /* logical chunk shape (array axis order) */
    int64_t chunk_strides[NGFF_MAX_DIMS]; /* byte strides of logical axes in the decoded chunk */
    uint8_t fill_value[16];               /* one element, in output byte order */
    /* derived by ngff_pipeline_init */
    int64_t chunk_nbytes;
    int32_t plain_layout; /* decoded bytes are the C-order chunk as the output wants it */
    int32_t c_order;      /* decoded elements are in C order (no transpose / F order) */
} ngff_pipeline;

/* Validates the pipeline and computes the derived fields. */
ngff_status ngff_pipeline_init(ngff_pipeline *p);

enum ngff_source_kind { NGFF_SOURCE_MISSING = 0, NGFF_SOURCE_MEMORY = 1, NGFF_SOURCE_FILE = 2 };

typedef struct ngff_source {
    int32_t kind;
    const uint8_t *data; /* MEMORY: the encoded chunk */
    int64_t len;         /* MEMORY: its length; FILE: bytes to read, or -1 for the whole file */
    const char *path;    /* FILE: NUL-terminated; a file that does not exist reads as fill */
    int64_t offset;      /* FILE: where the chunk starts */
} ngff_source;

typedef struct ngff_chunk_result {
    int32_t status; /* ngff_status */
    int32_t codec;  /* the codec that failed, 0 if none */
    char detail[NGFF_DETAIL_CAP];
} ngff_chunk_result;

/* A batch of chunks scattered into disjoint boxes of one output. */
typedef struct ngff_batch {
    const ngff_pipeline *pipeline;
    uint8_t *out;                         /* output element at box offset 0 */
    int64_t out_strides[NGFF_MAX_DIMS];   /* byte strides */
    int64_t n_chunks;
    const int64_t *boxes;                 /* n_chunks x 3*ndim, see ngff_grid_plan */
    const ngff_source *sources;           /* n_chunks; or NULL for chunk files by key: */
    const char *root;                     /*   directory path ending in '/' */
    const int64_t *chunk_coords;          /*   n_chunks x ndim: file = root + chunk key */
    int32_t key_encoding;                 /*   enum ngff_key_encoding */
    char key_separator;                   /*   '/' or '.' */
    const ngff_root *confine;             /* files are opened beneath it; NULL: anywhere */
    ngff_chunk_result *results;           /* n_chunks, written */
} ngff_batch;

/* Per-thread scratch buffers and codec contexts. */
typedef struct ngff_worker ngff_worker;
ngff_worker *ngff_worker_create(void);
void ngff_worker_destroy(ngff_worker *w);

/* Decodes chunk i of the batch into the output; the status is also stored in results[i]. */
ngff_status ngff_decode_chunk(ngff_worker *w, const ngff_batch *b, int64_t i);

#endif
