# Declarations of the C core (csrc/). Every function is callable without the GIL.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t


cdef extern from "ngff_status.h" nogil:
    ctypedef enum ngff_status:
        NGFF_OK
        NGFF_ERR_NOMEM
        NGFF_ERR_INVALID_ARGUMENT
        NGFF_ERR_TRUNCATED
        NGFF_ERR_CORRUPT
        NGFF_ERR_SIZE_MISMATCH
        NGFF_ERR_CHECKSUM
        NGFF_ERR_SHARD_INDEX
        NGFF_ERR_UNSUPPORTED
        NGFF_ERR_IO
        NGFF_ERR_OVERFLOW
        NGFF_STATUS_COUNT
    const char *ngff_status_message(int status)


cdef extern from "ngff_grid.h" nogil:
    enum: NGFF_MAX_DIMS
    enum:
        NGFF_KEY_V2
        NGFF_KEY_DEFAULT
    int64_t ngff_grid_count(int32_t ndim, const int64_t *shape, const int64_t *chunk_shape,
                            const int64_t *sel_start, const int64_t *sel_stop)
    ngff_status ngff_grid_plan(int32_t ndim, const int64_t *shape, const int64_t *chunk_shape,
                               const int64_t *sel_start, const int64_t *sel_stop, int64_t n,
                               int64_t *chunk_coords, int64_t *boxes)
    int64_t ngff_chunk_key(int32_t encoding, char separator, int32_t ndim,
                           const int64_t *coords, char *buf, size_t cap)


cdef extern from "ngff_crc32c.h" nogil:
    uint32_t ngff_crc32c(uint32_t crc, const uint8_t *data, size_t len)


cdef extern from "ngff_codecs.h" nogil:
    enum: NGFF_DETAIL_CAP
    enum:
        NGFF_CODEC_BLOSC
        NGFF_CODEC_ZSTD
        NGFF_CODEC_ZLIB
        NGFF_CODEC_LZ4
        NGFF_CODEC_CRC32C


cdef extern from "ngff_shard.h" nogil:
    enum: NGFF_SHARD_ENTRY_BYTES
    ngff_status ngff_shard_index_parse(const uint8_t *index, int64_t index_len, int64_t n_inner,
                                       int32_t big_endian, int64_t shard_len, int64_t *offsets,
                                       int64_t *nbytes, int64_t *bad_entry)


cdef extern from "ngff_fetch.h" nogil:
    ctypedef struct ngff_root:
        int fd
    ngff_status ngff_root_open(ngff_root *r, const char *root, char *detail)
    void ngff_root_close(ngff_root *r)
    ngff_status ngff_open_regular(const ngff_root *root, const char *path,
                                  int directory_missing, int *fd, int64_t *size, char *detail)


cdef extern from "ngff_decode.h" nogil:
    enum: NGFF_MAX_CODECS
    enum:
        NGFF_DELTA_NONE
        NGFF_DELTA_INT
        NGFF_DELTA_UINT
        NGFF_DELTA_FLOAT
    enum:
        NGFF_SOURCE_MISSING
        NGFF_SOURCE_MEMORY
        NGFF_SOURCE_FILE

    enum:
        NGFF_BLOSC_BLOSCLZ
        NGFF_BLOSC_LZ4
        NGFF_BLOSC_LZ4HC
        NGFF_BLOSC_ZLIB
        NGFF_BLOSC_ZSTD

    ctypedef struct ngff_codec_params:
        int32_t level
        int32_t cname
        int32_t shuffle
        int32_t typesize
        int64_t blocksize
        int32_t gzip
        int32_t checksum

    ctypedef struct ngff_pipeline:
        int32_t ndim
        int32_t itemsize
        int32_t byteswap
        int32_t delta
        int32_t delta_swap
        int32_t n_codecs
        int32_t codecs[8]
        ngff_codec_params params[8]
        int64_t chunk_shape[32]
        int64_t chunk_strides[32]
        uint8_t fill_value[16]
        int64_t chunk_nbytes
        int32_t plain_layout

    ngff_status ngff_pipeline_init(ngff_pipeline *p)

    ctypedef struct ngff_source:
        int32_t kind
        const uint8_t *data
        int64_t len
        const char *path
        int64_t offset

    ctypedef struct ngff_chunk_result:
        int32_t status
        int32_t codec
        char detail[160]

    ctypedef struct ngff_batch:
        const ngff_pipeline *pipeline
        uint8_t *out
        int64_t out_strides[32]
        int64_t n_chunks
        const int64_t *boxes
        const ngff_source *sources
        const char *root
        const int64_t *chunk_coords
        int32_t key_encoding
        char key_separator
        const ngff_root *confine
        ngff_chunk_result *results


cdef extern from "ngff_pool.h" nogil:
    ctypedef struct ngff_pool:
        pass
    ngff_pool *ngff_pool_create(int32_t nthreads)
    void ngff_pool_retain(ngff_pool *pool)
    void ngff_pool_release(ngff_pool *pool)
    int32_t ngff_pool_threads(const ngff_pool *pool)
    ngff_status ngff_pool_run(ngff_pool *pool, const ngff_batch *batch, int64_t *first_failed)
    ctypedef ngff_status (*ngff_task_fn)(void *ctx, int64_t task)
    ngff_status ngff_pool_for(ngff_pool *pool, int64_t n_tasks, ngff_task_fn fn, void *ctx,
                              int64_t *first_failed)


cdef extern from "ngff_encode.h" nogil:
    ctypedef struct ngff_encode_batch:
        const ngff_pipeline *pipeline
        const uint8_t *inp "in"
        int64_t in_strides[32]
        int64_t n_chunks
        const int64_t *boxes
        const ngff_source *bases
        const ngff_root *confine
        uint8_t *out
        int64_t out_stride
        int64_t *out_lens
        int32_t skip_fill
        ngff_chunk_result *results

    int64_t ngff_encode_bound(const ngff_pipeline *p)
    ngff_status ngff_pool_encode(ngff_pool *pool, const ngff_encode_batch *batch,
                                 int64_t *first_failed)
    ngff_status ngff_encode_buffer(const ngff_pipeline *p, const uint8_t *decoded, uint8_t *out,
                                   int64_t cap, int64_t *out_len, ngff_chunk_result *res)


cdef extern from "ngff_render.h" nogil:
    enum:
        NGFF_RENDER_UINT8
        NGFF_RENDER_INT8
        NGFF_RENDER_UINT16
        NGFF_RENDER_INT16
        NGFF_RENDER_UINT32
        NGFF_RENDER_INT32
        NGFF_RENDER_UINT64
        NGFF_RENDER_INT64
        NGFF_RENDER_FLOAT16
        NGFF_RENDER_FLOAT32
        NGFF_RENDER_FLOAT64
        NGFF_RENDER_DTYPE_COUNT
    enum: NGFF_RENDER_MAX_CHANNELS

    ctypedef struct ngff_render_channel:
        double start
        double end
        double color[3]
        double gamma
        int32_t inverted

    ngff_status ngff_render_rgba(ngff_pool *pool, const uint8_t *inp, int32_t dtype,
                                 int64_t n_channels, int64_t height, int64_t width,
                                 const int64_t *in_strides, const ngff_render_channel *channels,
                                 uint8_t *out, const int64_t *out_strides)


cdef extern from "ngff_downsample.h" nogil:
    enum:
        NGFF_DS_MEAN
        NGFF_DS_NEAREST
        NGFF_DS_MODE
        NGFF_DS_GAUSSIAN
    enum:
        NGFF_DS_BOOL
        NGFF_DS_INT8
        NGFF_DS_UINT8
        NGFF_DS_INT16
        NGFF_DS_UINT16
        NGFF_DS_INT32
        NGFF_DS_UINT32
        NGFF_DS_INT64
        NGFF_DS_UINT64
        NGFF_DS_FLOAT16
        NGFF_DS_FLOAT32
        NGFF_DS_FLOAT64
        NGFF_DS_COMPLEX64
        NGFF_DS_COMPLEX128
        NGFF_DS_DTYPE_COUNT

    ngff_status ngff_downsample(ngff_pool *pool, int32_t method, int32_t dtype, int32_t ndim,
                                const int64_t *full_shape, const int64_t *factors,
                                const uint8_t *inp, const int64_t *in_start,
                                const int64_t *in_shape, const int64_t *in_strides,
                                uint8_t *out, const int64_t *out_start, const int64_t *out_shape,
                                const int64_t *out_strides, char *detail)
    void ngff_downsample_input_box(int32_t method, int32_t ndim, const int64_t *full_shape,
                                   const int64_t *factors, const int64_t *out_start,
                                   const int64_t *out_shape, int64_t *in_start, int64_t *in_shape)


cdef extern from "ngff_write_files.h" nogil:
    enum:
        NGFF_WRITE_FAILED
        NGFF_WRITE_WRITTEN
        NGFF_WRITE_DELETED

    ctypedef struct ngff_write_files:
        const ngff_pipeline *pipeline
        const uint8_t *inp "in"
        int64_t in_strides[32]
        const int64_t *shape
        int64_t n_chunks
        const int64_t *chunk_coords
        const int64_t *boxes
        const char *root
        int32_t key_encoding
        char key_separator
        const ngff_root *confine
        int32_t skip_fill
        int32_t fsync
        ngff_chunk_result *results
        uint8_t *actions
        int64_t *nbytes

    ngff_status ngff_pool_write_files(ngff_pool *pool, const ngff_write_files *w,
                                      int64_t *first_failed)
