# Included by _core.pyx (one extension module; kept apart to keep files short).
# ---------------------------------------------------------------------------------------------
# Native local writes: whole chunks encoded and written as files (csrc/ngff_write_files.c)
# ---------------------------------------------------------------------------------------------


def write_chunk_files(Pipeline pipeline, value, shape, chunk_shape, sel_start, sel_stop,
                      bytes root, int encoding, str separator, str key_prefix="",
                      bytes confine=None, *, bint skip_fill, bint fsync=False):
    """Write the box ``[sel_start, sel_stop)`` of an unsharded array stored as one file per
    chunk under ``root`` (a directory path ending in ``/``) from ``value`` (the box's shape,
    any strides, 0 included; read-only is fine): plan, gather, encode and one atomic file
    write per chunk (a temporary file beside the key, renamed over it) in one native call,
    GIL released: the twin of :func:`read_chunk_files`.

    The box must cover every chunk it touches whole (its in-array part): no old bytes are
    read or merged; the rest of an edge chunk is the fill value. With ``skip_fill`` a chunk
    that is all fill value is deleted instead (a missing file is fine). With ``confine`` (the
    store root, a prefix of ``root`` ending in ``/``) files and directories are created
    beneath it: a symbolic link leading outside is refused (StoreError). ``fsync`` flushes
    each file and then its directory. Returns ``(written, deleted, nbytes)``: the indices (in
    :func:`plan_chunks` order) of the chunks written and deleted, and the bytes written. On
    failure raises for the lowest failed chunk, naming its key (``key_prefix`` + key), with
    ``written_chunks`` and ``deleted_chunks`` (plan indices of the chunks that did succeed)
    set on the exception. Thread-safe (for disjoint chunks).
    """
    cdef int32_t ndim = pipeline.p.ndim
    cdef int32_t d
    cdef grid_args g
    cdef int64_t n = _grid(&g, shape, chunk_shape, sel_start, sel_stop)
    if g.ndim != ndim:
        raise ValueError("the grid does not match the pipeline's dimensions")
    for d in range(ndim):
        if g.chunks[d] != pipeline.p.chunk_shape[d]:
            raise ValueError(f"chunk shape {tuple(chunk_shape)} differs from the pipeline's")
        # no old bytes are merged: a partly covered chunk would lose them
        if g.start[d] % g.chunks[d] or (g.stop[d] % g.chunks[d] and g.stop[d] != g.shape[d]):
            raise ValueError(f"the selection {tuple(sel_start)}..{tuple(sel_stop)} does not "
                             f"cover whole chunks of {tuple(chunk_shape)} in shape "
                             f"{tuple(shape)}")
    if len(separator) != 1:
        raise ValueError(f"key separator must be one character, not {separator!r}")
    if not root.endswith(b"/"):
        raise ValueError(f"root {os.fsdecode(root)!r} must end in '/'")
    if confine is not None and not root.startswith(confine):
        raise ValueError(f"root {os.fsdecode(root)!r} is not beneath {os.fsdecode(confine)!r}")
    if n == 0:
        return [], [], 0
    cdef Py_buffer in_view
    PyObject_GetBuffer(value, &in_view, PyBUF_STRIDES)
    cdef ngff_write_files w
    cdef int64_t *coords = NULL
    cdef int64_t *boxes = NULL
    cdef ngff_chunk_result *results = NULL
    cdef uint8_t *actions = NULL
    cdef int64_t *nbytes = NULL
    cdef int64_t failed = -1
    cdef int64_t total = 0
    cdef ngff_status st
    cdef ngff_root confine_root
    cdef bint confined = False
    cdef ngff_pool *pool = NULL
    cdef Py_ssize_t i
    cdef char key_buf[NGFF_MAX_DIMS * 21 + 2]
    cdef int64_t key_len
    try:
        if in_view.ndim != ndim or in_view.itemsize != pipeline.p.itemsize:
            raise ValueError(f"value has {in_view.ndim} dimensions of {in_view.itemsize}-byte "
                             f"items; the array has {ndim} of {pipeline.p.itemsize}")
        for d in range(ndim):
            if in_view.shape[d] != g.stop[d] - g.start[d]:
                got = tuple([in_view.shape[k] for k in range(ndim)])
                want = tuple([g.stop[k] - g.start[k] for k in range(ndim)])
                raise ValueError(f"value has shape {got}; the selection has {want}")
        coords = <int64_t *>calloc(n * (ndim if ndim else 1), sizeof(int64_t))
        boxes = <int64_t *>calloc(n * (3 * ndim if ndim else 1), sizeof(int64_t))
        results = <ngff_chunk_result *>calloc(n, sizeof(ngff_chunk_result))
        actions = <uint8_t *>calloc(n, sizeof(uint8_t))
        nbytes = <int64_t *>calloc(n, sizeof(int64_t))
        if (coords == NULL or boxes == NULL or results == NULL or actions == NULL
                or nbytes == NULL):
            raise MemoryError()
        if confine is not None:
            _open_root(&confine_root, confine)
            confined = True
        w.pipeline = &pipeline.p
        w.inp = <const uint8_t *>in_view.buf
        for d in range(ndim):
            w.in_strides[d] = in_view.strides[d]
        w.shape = g.shape
        w.n_chunks = n
        w.chunk_coords = coords
        w.boxes = boxes
        w.root = root
        w.key_encoding = encoding
        w.key_separator = ord(separator)
        w.confine = &confine_root if confined else NULL
        w.skip_fill = skip_fill
        w.fsync = fsync
        w.results = results
        w.actions = actions
        w.nbytes = nbytes
        pool = _acquire_pool()
        with nogil:
            st = ngff_grid_plan(ndim, g.shape, g.chunks, g.start, g.stop, n, coords, boxes)
            if st == NGFF_OK:
                st = ngff_pool_write_files(pool, &w, &failed)
        written = [i for i in range(n) if actions[i] == NGFF_WRITE_WRITTEN]
        deleted = [i for i in range(n) if actions[i] == NGFF_WRITE_DELETED]
        for i in range(n):
            total += nbytes[i]
        if st != NGFF_OK:
            key = None
            if failed >= 0:
                key_len = ngff_chunk_key(encoding, ord(separator), ndim, coords + failed * ndim,
                                         key_buf, sizeof(key_buf))
                if key_len >= 0:
                    key = key_prefix + key_buf[:key_len].decode("ascii")
            try:
                if failed < 0:
                    _raise_status(st, None)
                _raise_status(st, key, results[failed].codec, results[failed].detail)
            except Exception as exc:
                # what did change: the caller reports it (WriteError.written) and forgets it
                exc.written_chunks = written
                exc.deleted_chunks = deleted
                raise
        return written, deleted, total
    finally:
        if pool != NULL:
            ngff_pool_release(pool)
        if confined:
            ngff_root_close(&confine_root)
        free(coords)
        free(boxes)
        free(results)
        free(actions)
        free(nbytes)
        PyBuffer_Release(&in_view)
