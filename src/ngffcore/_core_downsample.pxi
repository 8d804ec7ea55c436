# Included by _core.pyx (one extension module; kept apart to keep files short).
# ---------------------------------------------------------------------------------------------
# Downsampling: a region of one pyramid level from a box of the level above
# (csrc/ngff_downsample.c; the rules are in docs/design.md, "Downsampling")
# ---------------------------------------------------------------------------------------------

import operator

DS_MEAN = NGFF_DS_MEAN
DS_NEAREST = NGFF_DS_NEAREST
DS_MODE = NGFF_DS_MODE
DS_GAUSSIAN = NGFF_DS_GAUSSIAN

_DS_METHOD_NAMES = {NGFF_DS_MEAN: "mean", NGFF_DS_NEAREST: "nearest", NGFF_DS_MODE: "mode",
                    NGFF_DS_GAUSSIAN: "gaussian"}
_DS_DTYPES = {
    ("b", 1): NGFF_DS_BOOL, ("i", 1): NGFF_DS_INT8, ("u", 1): NGFF_DS_UINT8,
    ("i", 2): NGFF_DS_INT16, ("u", 2): NGFF_DS_UINT16, ("i", 4): NGFF_DS_INT32,
    ("u", 4): NGFF_DS_UINT32, ("i", 8): NGFF_DS_INT64, ("u", 8): NGFF_DS_UINT64,
    ("f", 2): NGFF_DS_FLOAT16, ("f", 4): NGFF_DS_FLOAT32, ("f", 8): NGFF_DS_FLOAT64,
    ("c", 8): NGFF_DS_COMPLEX64, ("c", 16): NGFF_DS_COMPLEX128,
}


cdef int _ds_method(method) except -1:
    if method not in _DS_METHOD_NAMES:
        raise errors.ArgumentError(f"unknown downsampling method {method!r} (DS_MEAN, "
                                   f"DS_NEAREST, DS_MODE or DS_GAUSSIAN)")
    return method


cdef int _ds_ints(name, values, Py_ssize_t ndim, int64_t *dst) except -1:
    """Copy ``ndim`` integers into ``dst``; ArgumentError naming ``name`` otherwise."""
    cdef Py_ssize_t d
    try:
        vals = [operator.index(v) for v in values]
    except TypeError:
        raise errors.ArgumentError(f"{name} must be a sequence of integers, not {values!r}") \
            from None
    if len(vals) != ndim:
        raise errors.ArgumentError(f"{name} has {len(vals)} entries for {ndim} dimensions")
    for d in range(ndim):
        if not -(1 << 63) <= vals[d] < (1 << 63):
            raise errors.ArgumentError(f"{name}[{d}] = {vals[d]} does not fit 64 bits")
        dst[d] = vals[d]
    return 0


def downsample_input_box(int method, full_shape, factors, out_start, out_shape):
    """The box ``(start, shape)`` of the level above that the outputs ``[out_start, out_start +
    out_shape)`` of the level below need: their blocks (mean, mode), their first pixels
    (nearest), or their first pixels +- the gaussian radius, clipped to the image."""
    _ds_method(method)
    cdef Py_ssize_t ndim = len(full_shape)
    cdef int64_t full[NGFF_MAX_DIMS]
    cdef int64_t fac[NGFF_MAX_DIMS]
    cdef int64_t o_start[NGFF_MAX_DIMS]
    cdef int64_t o_shape[NGFF_MAX_DIMS]
    cdef int64_t i_start[NGFF_MAX_DIMS]
    cdef int64_t i_shape[NGFF_MAX_DIMS]
    cdef Py_ssize_t d
    if not 1 <= ndim <= NGFF_MAX_DIMS:
        raise errors.ArgumentError(f"{ndim} dimensions (1 to {NGFF_MAX_DIMS} are supported)")
    _ds_ints("full_shape", full_shape, ndim, full)
    _ds_ints("factors", factors, ndim, fac)
    _ds_ints("out_start", out_start, ndim, o_start)
    _ds_ints("out_shape", out_shape, ndim, o_shape)
    for d in range(ndim):
        if full[d] < 0 or fac[d] < 1 or fac[d] > ((1 << 63) - 2 - full[d]) // 4:
            raise errors.ArgumentError(f"axis {d}: full shape {full[d]} / factor {fac[d]} is "
                                       f"invalid (shape >= 0, factor >= 1)")
        level = full[d] // fac[d] + (full[d] % fac[d] != 0)  # (cdivision: no negative floor)
        if o_start[d] < 0 or o_shape[d] < 0 or o_start[d] + o_shape[d] > level:
            raise errors.ArgumentError(
                f"axis {d}: output box [{o_start[d]}, {o_start[d] + o_shape[d]}) is outside "
                f"the level's [0, {level})")
    ngff_downsample_input_box(method, <int32_t>ndim, full, fac, o_start, o_shape, i_start, i_shape)
    return (tuple([i_start[d] for d in range(ndim)]), tuple([i_shape[d] for d in range(ndim)]))


def downsample(int method, src, src_start, full_shape, factors, out, out_start):
    """Compute ``out``, the box of the level below starting at ``out_start`` (its shape is
    ``out.shape``), from ``src``, the box of the level above (``full_shape``) starting at
    ``src_start``, with the GIL released (output rows on the worker pool, the caller included).

    ``src`` and ``out``: numpy arrays of one native-endian dtype (bool, (u)int8-64,
    float16/32/64, complex64/128; any strides; ``out`` writable and apart from ``src``).
    ``src`` must hold :func:`downsample_input_box` of the outputs. ``factors``: integers >= 1
    per axis (the level below has shape ``ceil(full_shape / factors)``). Mode takes integer
    and bool data only. Bad arguments raise :class:`~ngffcore.errors.ArgumentError` (out:
    :class:`~ngffcore.errors.OutputError`). Thread-safe.
    """
    _ds_method(method)
    if not isinstance(src, np.ndarray):
        raise errors.ArgumentError(f"src must be a numpy.ndarray, not {type(src).__name__}")
    if not isinstance(out, np.ndarray):
        raise errors.OutputError(f"out must be a numpy.ndarray, not {type(out).__name__}")
    dt = src.dtype
    code = _DS_DTYPES.get((dt.kind, dt.itemsize))
    if code is None or not dt.isnative:
        raise errors.ArgumentError(f"cannot downsample {dt} data (native-endian bool, "
                                   f"(u)int8-64, float16/32/64, complex64/128 only)")
    if method == NGFF_DS_MODE and dt.kind not in "biu":
        raise errors.ArgumentError(f"mode needs integer data, not {dt}")
    if out.dtype != dt:
        raise errors.OutputError(f"out has dtype {out.dtype}; src has {dt}")
    if not out.flags.writeable:
        raise errors.OutputError("out is read-only")
    cdef Py_ssize_t ndim = src.ndim
    if not 1 <= ndim <= NGFF_MAX_DIMS:
        raise errors.ArgumentError(f"src has {ndim} dimensions (1 to {NGFF_MAX_DIMS} are "
                                   f"supported)")
    if out.ndim != ndim:
        raise errors.OutputError(f"out has {out.ndim} dimensions; src has {ndim}")
    if out.size and src.size and np.may_share_memory(src, out):
        raise errors.OutputError("out overlaps src")
    if out.size > 1 and any(s == 0 and n > 1 for s, n in zip(out.strides, out.shape)):
        raise errors.OutputError("out has overlapping pixels (a zero stride)")

    cdef int64_t full[NGFF_MAX_DIMS]
    cdef int64_t fac[NGFF_MAX_DIMS]
    cdef int64_t i_start[NGFF_MAX_DIMS]
    cdef int64_t i_shape[NGFF_MAX_DIMS]
    cdef int64_t i_strides[NGFF_MAX_DIMS]
    cdef int64_t o_start[NGFF_MAX_DIMS]
    cdef int64_t o_shape[NGFF_MAX_DIMS]
    cdef int64_t o_strides[NGFF_MAX_DIMS]
    cdef Py_ssize_t d
    _ds_ints("full_shape", full_shape, ndim, full)
    _ds_ints("factors", factors, ndim, fac)
    _ds_ints("src_start", src_start, ndim, i_start)
    _ds_ints("out_start", out_start, ndim, o_start)
    for d in range(ndim):
        i_shape[d] = src.shape[d]
        i_strides[d] = src.strides[d]
        o_shape[d] = out.shape[d]
        o_strides[d] = out.strides[d]

    cdef char detail[NGFF_DETAIL_CAP]
    cdef Py_buffer in_view
    cdef Py_buffer out_view
    cdef bint have_in = False, have_out = False
    cdef ngff_pool *pool = NULL
    cdef ngff_status st
    cdef int32_t c_method = method, c_dtype = code, c_ndim = <int32_t>ndim
    detail[0] = 0
    try:
        PyObject_GetBuffer(src, &in_view, PyBUF_STRIDES)
        have_in = True
        PyObject_GetBuffer(out, &out_view, PyBUF_STRIDES | PyBUF_WRITABLE)
        have_out = True
        pool = _acquire_pool()
        with nogil:
            st = ngff_downsample(pool, c_method, c_dtype, c_ndim, full, fac,
                                 <const uint8_t *>in_view.buf, i_start, i_shape, i_strides,
                                 <uint8_t *>out_view.buf, o_start, o_shape, o_strides, detail)
        if st != NGFF_OK:  # the C checks name the axis and the box that is wrong
            _raise_status(st, None, 0, detail, False,
                          f"downsample ({_DS_METHOD_NAMES[method]})")
    finally:
        if pool != NULL:
            ngff_pool_release(pool)
        if have_out:
            PyBuffer_Release(&out_view)
        if have_in:
            PyBuffer_Release(&in_view)
