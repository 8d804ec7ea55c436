# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: binding=True, embedsignature=True, auto_pickle=False, autotestdict=False
"""Thin wrappers over the C core (csrc/): plan, chunk keys, shard index, and batch decode.

Every call that decodes runs with the GIL released; one call handles a whole batch.
"""
from cpython.buffer cimport (PyBUF_STRIDES, PyBUF_WRITABLE, PyBUF_SIMPLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from cpython.bytes cimport PyBytes_AS_STRING
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

from ngffcore._ngff cimport *

import os

import numpy as np

from ngffcore import errors

CODEC_BLOSC = NGFF_CODEC_BLOSC
CODEC_ZSTD = NGFF_CODEC_ZSTD
CODEC_ZLIB = NGFF_CODEC_ZLIB
CODEC_LZ4 = NGFF_CODEC_LZ4
CODEC_CRC32C = NGFF_CODEC_CRC32C
DELTA_NONE = NGFF_DELTA_NONE
DELTA_INT = NGFF_DELTA_INT
DELTA_UINT = NGFF_DELTA_UINT
DELTA_FLOAT = NGFF_DELTA_FLOAT
KEY_V2 = NGFF_KEY_V2
KEY_DEFAULT = NGFF_KEY_DEFAULT
MAX_DIMS = NGFF_MAX_DIMS
MAX_CODECS = NGFF_MAX_CODECS
SHARD_ENTRY_BYTES = NGFF_SHARD_ENTRY_BYTES

_CODEC_NAMES = {
    NGFF_CODEC_BLOSC: "blosc",
    NGFF_CODEC_ZSTD: "zstd",
    NGFF_CODEC_ZLIB: "zlib/gzip",
    NGFF_CODEC_LZ4: "lz4",
    NGFF_CODEC_CRC32C: "crc32c",
}
_STATUS_NAMES = (
    "NGFF_OK", "NGFF_ERR_NOMEM", "NGFF_ERR_INVALID_ARGUMENT", "NGFF_ERR_TRUNCATED",
    "NGFF_ERR_CORRUPT", "NGFF_ERR_SIZE_MISMATCH", "NGFF_ERR_CHECKSUM", "NGFF_ERR_SHARD_INDEX",
    "NGFF_ERR_UNSUPPORTED", "NGFF_ERR_IO", "NGFF_ERR_OVERFLOW",
)
assert len(_STATUS_NAMES) == NGFF_STATUS_COUNT


cdef _raise_status(int status, key, int codec=0, detail=b"", bint in_shard_index=False,
                   checked=None):
    name = _STATUS_NAMES[status] if 0 <= status < NGFF_STATUS_COUNT else "NGFF_UNKNOWN"
    errors.raise_for_status(
        name, ngff_status_message(status).decode(), key=key,
        codec=_CODEC_NAMES.get(codec), detail=detail.decode("utf-8", "replace"),
        in_shard_index=in_shard_index, checked=checked)


cdef class Pipeline:
    """How one array's chunks are stored (codec chain, layout) and what the output wants.

    ``chunk_strides`` are byte strides of the logical (array-order) axes inside a decoded
    chunk, so a transpose costs nothing. ``fill_value`` is one element in output byte order.
    Immutable and thread-safe once built.
    """
    cdef ngff_pipeline p

    def __init__(self, *, int itemsize, chunk_shape, chunk_strides, codecs=(), int byteswap=0,
                 int delta=NGFF_DELTA_NONE, bint delta_swap=False, bytes fill_value=b"",
                 codec_params=()):
        cdef Py_ssize_t d
        ndim = len(chunk_shape)
        if ndim > NGFF_MAX_DIMS or len(chunk_strides) != ndim:
            raise ValueError(f"chunks of {ndim} dimensions are not supported "
                             f"(at most {NGFF_MAX_DIMS})")
        if len(codecs) > NGFF_MAX_CODECS:
            raise ValueError(f"more than {NGFF_MAX_CODECS} codecs")
        if len(fill_value) not in (0, itemsize):
            raise ValueError("fill_value must be one element")
        self.p.ndim = <int32_t>ndim
        self.p.itemsize = itemsize
        self.p.byteswap = byteswap
        self.p.delta = delta
        self.p.delta_swap = delta_swap
        self.p.n_codecs = <int32_t>len(codecs)
        for d, c in enumerate(codecs):
            self.p.codecs[d] = c
        _set_codec_params(&self.p, codecs, codec_params)
        for d in range(ndim):
            self.p.chunk_shape[d] = chunk_shape[d]
            self.p.chunk_strides[d] = chunk_strides[d]
        for d in range(16):
            self.p.fill_value[d] = 0
        for d in range(len(fill_value)):
            self.p.fill_value[d] = fill_value[d]
        cdef ngff_status st = ngff_pipeline_init(&self.p)
        if st != NGFF_OK:
            raise ValueError(f"invalid pipeline: {ngff_status_message(st).decode()}")

    @property
    def ndim(self):
        return self.p.ndim

    @property
    def chunk_nbytes(self):
        """Bytes of one decoded chunk."""
        return self.p.chunk_nbytes


cdef struct grid_args:
    int32_t ndim
    int64_t shape[NGFF_MAX_DIMS]
    int64_t chunks[NGFF_MAX_DIMS]
    int64_t start[NGFF_MAX_DIMS]
    int64_t stop[NGFF_MAX_DIMS]


cdef int64_t _grid(grid_args *g, shape, chunk_shape, sel_start, sel_stop) except -1:
    """Copy a grid and a box into C arrays; the number of chunks the box touches."""
    cdef int32_t d
    g.ndim = <int32_t>len(shape)
    if g.ndim > NGFF_MAX_DIMS:
        raise ValueError(f"at most {NGFF_MAX_DIMS} dimensions")
    if len(chunk_shape) != g.ndim or len(sel_start) != g.ndim or len(sel_stop) != g.ndim:
        raise ValueError("shape, chunk shape and selection must have one entry per axis")
    for d in range(g.ndim):
        g.shape[d] = shape[d]
        g.chunks[d] = chunk_shape[d]
        g.start[d] = sel_start[d]
        g.stop[d] = sel_stop[d]
    cdef int64_t n = ngff_grid_count(g.ndim, g.shape, g.chunks, g.start, g.stop)
    if n < 0:
        raise ValueError("invalid selection or chunk grid")
    return n


def plan_chunks(shape, chunk_shape, sel_start, sel_stop):
    """Chunks touched by the half-open box ``[sel_start, sel_stop)``, in C order.

    Returns ``(coords, boxes)``: int64 arrays of shape ``(n, ndim)`` (chunk grid coordinates)
    and ``(n, 3 * ndim)`` (box start inside the chunk, box shape, box start in the output).
    """
    cdef grid_args g
    cdef int64_t n = _grid(&g, shape, chunk_shape, sel_start, sel_stop)
    cdef int32_t ndim = g.ndim
    coords = np.empty((n, ndim), dtype=np.int64)
    boxes = np.empty((n, 3 * ndim), dtype=np.int64)
    cdef int64_t[:, ::1] coords_v = coords
    cdef int64_t[:, ::1] boxes_v = boxes
    cdef ngff_status st
    if n > 0 and ndim > 0:
        with nogil:
            st = ngff_grid_plan(ndim, g.shape, g.chunks, g.start, g.stop, n,
                                &coords_v[0, 0], &boxes_v[0, 0])
        if st != NGFF_OK:
            raise ValueError(ngff_status_message(st).decode())
    return coords, boxes


def chunk_keys(const int64_t[:, ::1] coords, int encoding, str separator, str prefix=""):
    """Storage keys of the chunks at ``coords`` (rows), each prefixed with ``prefix``."""
    cdef char buf[NGFF_MAX_DIMS * 21 + 2]
    cdef Py_ssize_t i, n = coords.shape[0]
    cdef int32_t ndim = <int32_t>coords.shape[1]
    cdef char sep = ord(separator)
    cdef int64_t length
    cdef int64_t zero = 0
    keys = []
    for i in range(n):
        length = ngff_chunk_key(encoding, sep, ndim, &coords[i, 0] if ndim else &zero, buf,
                                sizeof(buf))
        if length < 0:
            raise ValueError("cannot form a chunk key")
        keys.append(prefix + buf[:length].decode("ascii"))
    return keys


def shard_index_parse(index, int64_t n_inner, bint big_endian, int64_t shard_len):
    """Parse a shard index (already stripped of its crc32c) of ``n_inner`` entries.

    Returns ``(status, offsets, nbytes, bad_entry)``: int64 arrays (empty inner chunks are
    ``-1``) when status is 0; otherwise ``bad_entry`` is the first entry outside
    ``[0, shard_len)`` (its raw values left in the arrays) or -1.
    """
    cdef const uint8_t[::1] view = index
    offsets = np.empty(n_inner, dtype=np.int64)
    nbytes = np.empty(n_inner, dtype=np.int64)
    cdef int64_t[::1] off_v = offsets
    cdef int64_t[::1] len_v = nbytes
    cdef const uint8_t *data = &view[0] if view.shape[0] else NULL
    cdef int64_t index_len = view.shape[0]
    cdef ngff_status st
    cdef int64_t bad = -1
    with nogil:
        st = ngff_shard_index_parse(data, index_len, n_inner, big_endian, shard_len,
                                    &off_v[0] if n_inner else NULL,
                                    &len_v[0] if n_inner else NULL, &bad)
    return st, offsets, nbytes, bad


def crc32c(data, uint32_t crc=0):
    """CRC-32C (Castagnoli) of a bytes-like object."""
    cdef const uint8_t[::1] view = data
    cdef size_t n = view.shape[0]
    cdef uint32_t result
    with nogil:
        result = ngff_crc32c(crc, &view[0] if n else NULL, n)
    return result


cdef ngff_pool *_pool = NULL


def default_num_threads():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def set_num_threads(int n):
    """Size of the native worker pool, counting the calling thread (``n >= 1``).

    Batches already running finish on the old pool.
    """
    global _pool
    if n < 1 or n > 1024:
        raise ValueError("the number of threads must be between 1 and 1024")
    cdef ngff_pool *pool = ngff_pool_create(n)
    if pool == NULL:
        raise MemoryError("cannot start the ngffcore worker pool")
    cdef ngff_pool *old = _pool
    _pool = pool
    if old != NULL:
        ngff_pool_release(old)


def get_num_threads():
    """Size of the native worker pool (threads that decode, including the caller)."""
    if _pool == NULL:
        set_num_threads(default_num_threads())
    return ngff_pool_threads(_pool)


cdef ngff_pool *_acquire_pool() except NULL:
    if _pool == NULL:
        set_num_threads(default_num_threads())
    ngff_pool_retain(_pool)
    return _pool


cdef int _set_output(ngff_batch *batch, Pipeline pipeline, out, Py_buffer *view) except -1:
    """Acquire ``out`` (writable, any strides) as the batch's output, after checking it has
    the pipeline's dimensions and item size. The caller releases ``view``."""
    cdef int32_t d
    PyObject_GetBuffer(out, view, PyBUF_STRIDES | PyBUF_WRITABLE)
    if view.ndim != pipeline.p.ndim or view.itemsize != pipeline.p.itemsize:
        PyBuffer_Release(view)
        raise ValueError(f"output has {view.ndim} dimensions of {view.itemsize}-byte items; "
                         f"the array has {pipeline.p.ndim} of {pipeline.p.itemsize}")
    batch.pipeline = &pipeline.p
    batch.out = <uint8_t *>view.buf
    for d in range(pipeline.p.ndim):
        batch.out_strides[d] = view.strides[d]
    return 0


cdef int _run(ngff_batch *batch, int64_t *failed) except -1:
    """Run a batch on the pool, GIL released; the status (>= 0)."""
    cdef ngff_pool *pool = _acquire_pool()
    cdef ngff_status st
    with nogil:
        st = ngff_pool_run(pool, batch, failed)
    ngff_pool_release(pool)
    return st


cdef int _open_root(ngff_root *r, bytes root) except -1:
    """Open the directory file sources must stay beneath (see ``ngff_root_open``)."""
    cdef char detail[NGFF_DETAIL_CAP]
    cdef const char *path = root
    cdef ngff_status st
    detail[0] = 0
    with nogil:
        st = ngff_root_open(r, path, detail)
    if st == NGFF_ERR_NOMEM:
        raise MemoryError()
    if st != NGFF_OK:
        ngff_root_close(r)
        raise errors.StoreError(f"cannot open the store root {os.fsdecode(root)!r}: "
                                f"{detail.decode('utf-8', 'replace') or 'not a directory path'}")
    return 0


def open_regular(bytes path, bytes root=None, bint directory_missing=True):
    """Open the file ``path`` for reading without blocking, if it is a regular file (a FIFO,
    socket or device is never read). With ``root`` (a directory path ending in ``/`` that
    ``path`` starts with) the path must resolve beneath it: a symbolic link leading outside
    is refused. Returns ``(status, fd, size, detail)``: ``fd`` -1 when the file does not
    exist (or is a directory, with ``directory_missing``); status != 0 is an error that
    ``detail`` describes (the caller names the key). The caller closes ``fd``."""
    cdef ngff_root r
    cdef int fd = -1
    cdef int64_t size = 0
    cdef char detail[NGFF_DETAIL_CAP]
    cdef const char *cpath = path
    cdef ngff_status st
    cdef ngff_root *confine = NULL
    detail[0] = 0
    if root is not None:
        _open_root(&r, root)
        confine = &r
    with nogil:
        st = ngff_open_regular(confine, cpath, directory_missing, &fd, &size, detail)
    if confine != NULL:
        ngff_root_close(confine)
    return st, fd, size, detail.decode("utf-8", "replace")


def decode_batch(Pipeline pipeline, out, const int64_t[:, ::1] boxes, sources, keys):
    """Decode and scatter a batch of chunks into ``out`` in one native call, GIL released.

    ``out`` is a writable buffer with ``pipeline.ndim`` dimensions (any strides); row ``i`` of
    ``boxes`` places chunk ``i`` (see :func:`plan_chunks`). ``sources[i]`` is ``None``
    (missing: fill value), a bytes-like object (the encoded chunk), or a tuple
    ``(path: bytes, offset: int, length: int[, root: bytes | None])`` of a local file range
    (``length`` -1: to the end; a missing file reads as fill value; with ``root``, a
    directory path ending in ``/`` that ``path`` starts with, the file is opened beneath it
    and a symbolic link leading outside is refused; every file source of a batch has the
    same root). ``keys[i]`` names chunk ``i`` in errors. Chunk boxes must be disjoint.
    Thread-safe.
    """
    sources = list(sources)
    keys = list(keys)
    cdef Py_ssize_t n = len(sources)
    cdef Py_ssize_t i
    cdef int32_t d, ndim = pipeline.p.ndim
    if boxes.shape[0] != n or len(keys) != n:
        raise ValueError("boxes, sources and keys must have one entry per chunk")
    if n and boxes.shape[1] != 3 * ndim:
        raise ValueError("boxes do not match the pipeline's dimensions")
    cdef ngff_batch batch
    cdef Py_buffer out_view
    _set_output(&batch, pipeline, out, &out_view)
    cdef ngff_source *srcs = NULL
    cdef ngff_chunk_result *results = NULL
    cdef Py_buffer *views = NULL
    cdef Py_ssize_t n_views = 0
    cdef int64_t failed = -1
    cdef int st
    cdef ngff_chunk_result *r = NULL
    cdef ngff_root confine
    cdef bint confined = False
    cdef bint seen_file = False
    try:
        if n == 0:
            return
        root = None  # the root every file source shares (None: no confinement)
        srcs = <ngff_source *>calloc(n, sizeof(ngff_source))
        results = <ngff_chunk_result *>calloc(n, sizeof(ngff_chunk_result))
        views = <Py_buffer *>calloc(n, sizeof(Py_buffer))
        if srcs == NULL or results == NULL or views == NULL:
            raise MemoryError()
        for i in range(n):
            src = sources[i]
            if src is None:
                srcs[i].kind = NGFF_SOURCE_MISSING
            elif type(src) is tuple:
                if len(src) == 4:
                    path, offset, length, src_root = src
                else:
                    path, offset, length = src
                    src_root = None
                if not seen_file and src_root is not None:
                    _open_root(&confine, src_root)
                    confined = True
                    root = src_root
                elif src_root is not root and src_root != root:
                    raise ValueError("every file source of a batch must have the same root")
                seen_file = True
                srcs[i].kind = NGFF_SOURCE_FILE
                srcs[i].path = PyBytes_AS_STRING(path)
                srcs[i].offset = offset
                srcs[i].len = length
            else:
                PyObject_GetBuffer(src, &views[n_views], PyBUF_SIMPLE)
                srcs[i].kind = NGFF_SOURCE_MEMORY
                srcs[i].data = <const uint8_t *>views[n_views].buf
                srcs[i].len = views[n_views].len
                n_views += 1
        batch.n_chunks = n
        batch.boxes = &boxes[0, 0]
        batch.sources = srcs
        batch.root = NULL
        batch.chunk_coords = NULL
        batch.confine = &confine if confined else NULL
        batch.results = results
        st = _run(&batch, &failed)
        if st != NGFF_OK:
            if failed < 0:
                _raise_status(st, None)
            r = &results[failed]
            _raise_status(st, keys[failed], r.codec, r.detail)
    finally:
        if confined:
            ngff_root_close(&confine)
        for i in range(n_views):
            PyBuffer_Release(&views[i])
        free(views)
        free(srcs)
        free(results)
        PyBuffer_Release(&out_view)


def read_chunk_files(Pipeline pipeline, out, shape, chunk_shape, sel_start, sel_stop,
                     bytes root, int encoding, str separator, str key_prefix="",
                     bytes confine=None):
    """Read the box ``[sel_start, sel_stop)`` of an unsharded array stored as one file per
    chunk under ``root`` (a directory path ending in ``/``) into ``out`` (the box's shape, any
    strides): plan, chunk paths, reads, decode and scatter all in one native call, GIL
    released. A missing file reads as the fill value. With ``confine`` (the store root: a
    directory path ending in ``/`` that ``root`` starts with) chunk files are opened beneath
    it: a symbolic link leading outside is refused (StoreError). Thread-safe."""
    cdef int32_t ndim = pipeline.p.ndim
    cdef int32_t d
    cdef grid_args g
    cdef int64_t n = _grid(&g, shape, chunk_shape, sel_start, sel_stop)
    if g.ndim != ndim:
        raise ValueError("the grid does not match the pipeline's dimensions")
    if n == 0:
        return
    cdef ngff_batch batch
    cdef Py_buffer out_view
    _set_output(&batch, pipeline, out, &out_view)
    cdef int64_t *coords = NULL
    cdef int64_t *boxes = NULL
    cdef ngff_chunk_result *results = NULL
    cdef int64_t failed = -1
    cdef int st
    cdef char key_buf[NGFF_MAX_DIMS * 21 + 2]
    cdef int64_t key_len
    cdef ngff_root confine_root
    cdef bint confined = False
    try:
        if confine is not None:
            _open_root(&confine_root, confine)
            confined = True
        coords = <int64_t *>calloc(n * (ndim if ndim else 1), sizeof(int64_t))
        boxes = <int64_t *>calloc(n * (3 * ndim if ndim else 1), sizeof(int64_t))
        results = <ngff_chunk_result *>calloc(n, sizeof(ngff_chunk_result))
        if coords == NULL or boxes == NULL or results == NULL:
            raise MemoryError()
        batch.n_chunks = n
        batch.boxes = boxes
        batch.sources = NULL
        batch.root = root
        batch.chunk_coords = coords
        batch.key_encoding = encoding
        batch.key_separator = ord(separator)
        batch.confine = &confine_root if confined else NULL
        batch.results = results
        with nogil:
            st = ngff_grid_plan(ndim, g.shape, g.chunks, g.start, g.stop, n, coords, boxes)
        if st == NGFF_OK:
            st = _run(&batch, &failed)
        if st != NGFF_OK:
            if failed < 0:
                _raise_status(st, None)
            key_len = ngff_chunk_key(encoding, ord(separator), ndim, coords + failed * ndim,
                                     key_buf, sizeof(key_buf))
            key = key_prefix + key_buf[:key_len].decode("ascii") if key_len >= 0 else None
            _raise_status(st, key, results[failed].codec, results[failed].detail)
    finally:
        if confined:
            ngff_root_close(&confine_root)
        free(coords)
        free(boxes)
        free(results)
        PyBuffer_Release(&out_view)


def raise_status(int status, key, *, bint in_shard_index=False, detail=b""):
    """Raise the exception for a native status (used for statuses returned to Python)."""
    _raise_status(status, key, 0, detail, in_shard_index)


# Encoding (gather + encode batches): in _core_encode.pxi, part of this module.
include "_core_encode.pxi"
include "_core_writefiles.pxi"  # native local writes (csrc/ngff_write_files.c)
include "_core_downsample.pxi"  # pyramid downsampling kernels (csrc/ngff_downsample.c)


# ---------------------------------------------------------------------------------------------
# Rendering: channel planes → RGBA (csrc/ngff_render.c)
# ---------------------------------------------------------------------------------------------

RENDER_MAX_CHANNELS = NGFF_RENDER_MAX_CHANNELS

_RENDER_DTYPES = {
    ("u", 1): NGFF_RENDER_UINT8, ("b", 1): NGFF_RENDER_UINT8, ("i", 1): NGFF_RENDER_INT8,
    ("u", 2): NGFF_RENDER_UINT16, ("i", 2): NGFF_RENDER_INT16,
    ("u", 4): NGFF_RENDER_UINT32, ("i", 4): NGFF_RENDER_INT32,
    ("u", 8): NGFF_RENDER_UINT64, ("i", 8): NGFF_RENDER_INT64,
    ("f", 2): NGFF_RENDER_FLOAT16, ("f", 4): NGFF_RENDER_FLOAT32, ("f", 8): NGFF_RENDER_FLOAT64,
}


def render_rgba(pixels, int channel_axis, out, windows, colors, inverted, gamma):
    """Composite the channels of ``pixels`` into ``out``, an RGBA image, in one native call
    with the GIL released (row bands on the worker pool, the caller included).

    ``pixels``: a 3-D ``numpy.ndarray`` (any strides, native byte order; bool, (u)int8–64,
    float16/32/64) whose axis ``channel_axis`` holds the C channels and whose two other axes
    are y then x. ``out``: a writable ``(h, w, 4)`` uint8 buffer (any strides) that does not
    overlap ``pixels``. Per channel: ``windows`` ``(C, 2)`` start, end (finite; end <= start
    is a step at start), ``colors`` ``(C, 3)`` R, G, B in 0..255, ``inverted`` ``(C,)``
    bools, ``gamma`` ``(C,)`` finite > 0. The arithmetic is documented in
    ``csrc/ngff_render.h``. Thread-safe.
    """
    if not isinstance(pixels, np.ndarray):
        raise TypeError(f"pixels must be a numpy.ndarray, not {type(pixels).__name__}")
    if pixels.ndim != 3:
        raise ValueError(f"pixels must have 3 dimensions (channel, y, x in some order), "
                         f"not {pixels.ndim}")
    if not -3 <= channel_axis < 3:
        raise ValueError(f"channel_axis {channel_axis} is out of range for 3 dimensions")
    channel_axis %= 3
    dt = pixels.dtype
    code = _RENDER_DTYPES.get((dt.kind, dt.itemsize))
    if code is None or not dt.isnative:
        raise ValueError(f"cannot render {dt} pixels (native-endian bool, int8-64, uint8-64, "
                         f"float16/32/64 only)")
    cdef int ya = 1 if channel_axis == 0 else 0
    cdef int xa = 1 if channel_axis == 2 else 2
    cdef int64_t n_channels = pixels.shape[channel_axis]
    cdef int64_t height = pixels.shape[ya]
    cdef int64_t width = pixels.shape[xa]
    if n_channels > NGFF_RENDER_MAX_CHANNELS:
        raise ValueError(f"{n_channels} channels; at most {NGFF_RENDER_MAX_CHANNELS} can be "
                         f"composited")
    win = np.asarray(windows, dtype=np.float64)
    col = np.asarray(colors, dtype=np.float64)
    inv = np.asarray(inverted, dtype=bool)
    gam = np.asarray(gamma, dtype=np.float64)
    for name, a, per in (("windows", win, (2,)), ("colors", col, (3,)), ("inverted", inv, ()),
                         ("gamma", gam, ())):
        if a.shape != (n_channels,) + per and not (n_channels == 0 and a.size == 0):
            raise ValueError(f"{name} has shape {a.shape}; {n_channels} channels need "
                             f"{(n_channels,) + per}")
    win = win.reshape(n_channels, 2)
    col = col.reshape(n_channels, 3)
    inv = inv.reshape(n_channels)
    gam = gam.reshape(n_channels)
    if not np.isfinite(win).all():
        raise ValueError("window start and end must be finite")
    with np.errstate(over="ignore"):
        spans = win[:, 1] - win[:, 0]
    if not np.isfinite(spans[spans > 0]).all():
        raise ValueError("window end - start must be finite")
    if not ((col >= 0) & (col <= 255)).all():
        raise ValueError("colour components must be in 0..255")
    if not (np.isfinite(gam) & (gam > 0)).all():
        raise ValueError("gamma must be finite and > 0")
    if not isinstance(out, np.ndarray) or out.dtype != np.uint8:
        raise errors.OutputError("out must be a numpy.ndarray of uint8")
    if out.shape != (height, width, 4):
        raise errors.OutputError(f"out has shape {out.shape}; the image needs "
                                 f"{(height, width, 4)}")
    if not out.flags.writeable:
        raise errors.OutputError("out is read-only")
    if n_channels and height and width and np.may_share_memory(pixels, out):
        raise errors.OutputError("out overlaps the pixels")

    cdef ngff_render_channel *chans = <ngff_render_channel *>calloc(
        n_channels if n_channels else 1, sizeof(ngff_render_channel))
    if chans == NULL:
        raise MemoryError()
    cdef Py_ssize_t c
    cdef int k
    cdef const double[:, :] win_v = win
    cdef const double[:, :] col_v = col
    cdef const double[:] gam_v = gam
    cdef Py_buffer in_view
    cdef Py_buffer out_view
    cdef bint have_in = False, have_out = False
    cdef int64_t in_strides[3]
    cdef int64_t out_strides[3]
    cdef int32_t dtype = code
    cdef ngff_pool *pool = NULL
    cdef ngff_status st
    try:
        for c in range(n_channels):
            chans[c].start = win_v[c, 0]
            chans[c].end = win_v[c, 1]
            for k in range(3):
                chans[c].color[k] = col_v[c, k]
            chans[c].gamma = gam_v[c]
            chans[c].inverted = 1 if inv[c] else 0
        PyObject_GetBuffer(pixels, &in_view, PyBUF_STRIDES)
        have_in = True
        PyObject_GetBuffer(out, &out_view, PyBUF_STRIDES | PyBUF_WRITABLE)
        have_out = True
        in_strides[0] = in_view.strides[channel_axis]
        in_strides[1] = in_view.strides[ya]
        in_strides[2] = in_view.strides[xa]
        for k in range(3):
            out_strides[k] = out_view.strides[k]
        pool = _acquire_pool()
        with nogil:
            st = ngff_render_rgba(pool, <const uint8_t *>in_view.buf, dtype, n_channels, height,
                                  width, in_strides, chans, <uint8_t *>out_view.buf,
                                  out_strides)
        if st == NGFF_ERR_INVALID_ARGUMENT:
            # the checks above make this an output that overlaps itself (e.g. a zero stride)
            raise errors.OutputError("out has overlapping pixels (zero or aliasing strides)")
        if st != NGFF_OK:
            _raise_status(st, None)
    finally:
        if pool != NULL:
            ngff_pool_release(pool)
        if have_out:
            PyBuffer_Release(&out_view)
        if have_in:
            PyBuffer_Release(&in_view)
        free(chans)
    return out
