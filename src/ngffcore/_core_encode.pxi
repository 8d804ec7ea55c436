# Included by _core.pyx (one extension module; kept apart to keep files short).
# ---------------------------------------------------------------------------------------------
# Encoding: gather boxes of a value into chunks and encode them (csrc/ngff_encode.c)
# ---------------------------------------------------------------------------------------------

# Encoder settings a codec_params dict may hold, and each codec's default level (the one
# numcodecs uses; zstd 0 is zstd's own default).
_PARAM_KEYS = frozenset(("level", "cname", "shuffle", "typesize", "blocksize", "gzip", "checksum"))
_DEFAULT_LEVEL = {NGFF_CODEC_ZSTD: 0, NGFF_CODEC_ZLIB: 1, NGFF_CODEC_BLOSC: 5, NGFF_CODEC_LZ4: 1}
BLOSC_CNAMES = {"blosclz": NGFF_BLOSC_BLOSCLZ, "lz4": NGFF_BLOSC_LZ4, "lz4hc": NGFF_BLOSC_LZ4HC,
                "zlib": NGFF_BLOSC_ZLIB, "zstd": NGFF_BLOSC_ZSTD}


cdef int _set_codec_params(ngff_pipeline *p, codecs, codec_params) except -1:
    """Fill ``p.params`` from one dict per codec (or none: all defaults). The encoders check
    the values (decoding ignores them)."""
    cdef Py_ssize_t k
    params = list(codec_params)
    if params and len(params) != len(codecs):
        raise ValueError(f"codec_params has {len(params)} entries for {len(codecs)} codecs")
    for k, c in enumerate(codecs):
        conf = params[k] if params else {}
        unknown = set(conf) - _PARAM_KEYS
        if unknown:
            raise ValueError(f"unknown codec parameter(s) {sorted(unknown)} for codec {k} "
                             f"({_CODEC_NAMES.get(c, c)})")
        try:
            p.params[k].level = conf.get("level", _DEFAULT_LEVEL.get(c, 0))
            p.params[k].cname = conf.get("cname", 0)
            p.params[k].shuffle = conf.get("shuffle", 0)
            p.params[k].typesize = conf.get("typesize", 0)
            p.params[k].blocksize = conf.get("blocksize", 0)
            p.params[k].gzip = conf.get("gzip", 0)
            p.params[k].checksum = conf.get("checksum", 0)
        except OverflowError:
            raise ValueError(f"a parameter of codec {k} ({_CODEC_NAMES.get(c, c)}) is out of "
                             f"range: {conf!r}") from None
    return 0


def encode_bound(Pipeline pipeline):
    """The most bytes one encoded chunk of ``pipeline`` can take."""
    cdef int64_t n = ngff_encode_bound(&pipeline.p)
    if n < 0:
        _raise_status(NGFF_ERR_OVERFLOW, None)
    return n


def encode_batch(Pipeline pipeline, value, const int64_t[:, ::1] boxes, bases, keys, *,
                 bint skip_fill):
    """Gather and encode a batch of chunks in one native call, GIL released.

    ``value``: a buffer with ``pipeline.ndim`` dimensions of the pipeline's item size (any
    strides, 0 and negative included; read-only is fine), in the output byte order of the
    pipeline (what decoding produces). Row ``i`` of ``boxes`` (see :func:`plan_chunks`) puts
    the box of ``value`` starting at its third part into chunk ``i``; ``bases[i]`` fills the rest
    of that chunk: ``None`` (the fill value), its current encoded bytes, or a file tuple as in
    :func:`decode_batch` (not read when the box is the whole chunk). ``keys[i]`` names chunk
    ``i`` in errors. Returns one entry per chunk: a ``memoryview`` of its encoded bytes (slices
    of one buffer, not copied) or ``None`` when ``skip_fill`` and the chunk is all fill value.
    Thread-safe.
    """
    bases = list(bases)
    keys = list(keys)
    cdef Py_ssize_t n = len(bases)
    cdef Py_ssize_t i
    cdef int32_t d, ndim = pipeline.p.ndim
    if boxes.shape[0] != n or len(keys) != n:
        raise ValueError("boxes, bases and keys must have one entry per chunk")
    if n and boxes.shape[1] != 3 * ndim:
        raise ValueError("boxes do not match the pipeline's dimensions")
    cdef int64_t stride = ngff_encode_bound(&pipeline.p)
    if stride < 0:
        _raise_status(NGFF_ERR_OVERFLOW, None)
    if n == 0:
        return []
    cdef Py_buffer in_view
    PyObject_GetBuffer(value, &in_view, PyBUF_STRIDES)
    cdef ngff_encode_batch batch
    cdef ngff_source *srcs = NULL
    cdef ngff_chunk_result *results = NULL
    cdef Py_buffer *views = NULL
    cdef Py_ssize_t n_views = 0
    cdef int64_t failed = -1
    cdef ngff_status st
    cdef ngff_root confine
    cdef bint confined = False
    cdef bint seen_file = False
    cdef ngff_pool *pool = NULL
    cdef const int64_t *row
    try:
        if in_view.ndim != ndim or in_view.itemsize != pipeline.p.itemsize:
            raise ValueError(f"value has {in_view.ndim} dimensions of {in_view.itemsize}-byte "
                             f"items; the array has {ndim} of {pipeline.p.itemsize}")
        # every box must lie inside the value (C cannot know its shape) and its chunk
        for i in range(n):
            row = &boxes[i, 0]
            for d in range(ndim):
                if (row[d] < 0 or row[ndim + d] < 0 or row[2 * ndim + d] < 0
                        or row[d] + row[ndim + d] > pipeline.p.chunk_shape[d]
                        or row[2 * ndim + d] + row[ndim + d] > in_view.shape[d]):
                    raise ValueError(f"box {i} lies outside its chunk or the value")
        out = np.empty(n * stride, dtype=np.uint8)
        lens = np.empty(n, dtype=np.int64)
        root = None
        srcs = <ngff_source *>calloc(n, sizeof(ngff_source))
        results = <ngff_chunk_result *>calloc(n, sizeof(ngff_chunk_result))
        views = <Py_buffer *>calloc(n, sizeof(Py_buffer))
        if srcs == NULL or results == NULL or views == NULL:
            raise MemoryError()
        for i in range(n):
            src = bases[i]
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
                    raise ValueError("every file base of a batch must have the same root")
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
        batch.pipeline = &pipeline.p
        batch.inp = <const uint8_t *>in_view.buf
        for d in range(ndim):
            batch.in_strides[d] = in_view.strides[d]
        batch.n_chunks = n
        batch.boxes = &boxes[0, 0]
        batch.bases = srcs
        batch.confine = &confine if confined else NULL
        batch.out = _data_ptr(out)
        batch.out_stride = stride
        batch.out_lens = _int64_ptr(lens)
        batch.skip_fill = skip_fill
        batch.results = results
        pool = _acquire_pool()
        with nogil:
            st = ngff_pool_encode(pool, &batch, &failed)
        if st != NGFF_OK:
            if failed < 0:
                _raise_status(st, None)
            _raise_status(st, keys[failed], results[failed].codec, results[failed].detail)
        whole = memoryview(out)
        return [None if length < 0 else whole[i * stride:i * stride + length]
                for i, length in enumerate(lens.tolist())]
    finally:
        if pool != NULL:
            ngff_pool_release(pool)
        if confined:
            ngff_root_close(&confine)
        for i in range(n_views):
            PyBuffer_Release(&views[i])
        free(views)
        free(srcs)
        free(results)
        PyBuffer_Release(&in_view)


cdef uint8_t *_data_ptr(out) except NULL:
    cdef uint8_t[::1] v = out
    return &v[0]


cdef int64_t *_int64_ptr(arr) except NULL:
    cdef int64_t[::1] v = arr
    return &v[0]


def _encode_buffer(Pipeline pipeline, decoded, int64_t capacity, int64_t guard=64):
    """Encode one decoded chunk (``chunk_nbytes`` bytes: stored layout, output byte order)
    into a buffer of exactly ``capacity`` bytes followed by ``guard`` canary bytes (for tests
    of the encoders' bounds). Returns ``(encoded bytes, whether the canary is intact)``.
    """
    cdef const uint8_t[::1] src = decoded
    if src.shape[0] != pipeline.p.chunk_nbytes:
        raise ValueError(f"{src.shape[0]} bytes; a chunk is {pipeline.p.chunk_nbytes}")
    if capacity < 0 or guard < 0:
        raise ValueError("capacity and guard must be >= 0")
    buf = np.full(capacity + guard, 0xA5, dtype=np.uint8)
    cdef uint8_t[::1] dst = buf
    cdef ngff_chunk_result res
    cdef int64_t length = 0
    cdef ngff_status st
    with nogil:
        st = ngff_encode_buffer(&pipeline.p, &src[0], &dst[0], capacity, &length, &res)
    intact = bool((buf[capacity:] == 0xA5).all())
    if st != NGFF_OK:
        if not intact:  # report the overrun, not the status it ended with
            return b"", False
        _raise_status(st, None, res.codec, res.detail)
    return bytes(buf[:length]), intact
