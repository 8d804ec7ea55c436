"""numpy selection semantics of ``Array.__getitem__`` / ``Array.read``, against numpy indexing
of the data we wrote (the reference is numpy, never ngffcore)."""

from __future__ import annotations

import numcodecs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zarr.codecs import BloscCodec, BytesCodec, ZstdCodec

import ngffcore


@pytest.fixture(scope="module")
def arrays(writer, make_data):
    """name -> (path, data): a few layouts whose reads must all follow numpy semantics."""
    out = {}
    d = make_data((23, 17, 9), ">i4", seed=50)
    out["v2-blosc-3d"] = (
        writer.v2(d, chunks=(5, 4, 3), compressor=numcodecs.Blosc(cname="lz4", shuffle=1)),
        d,
    )
    d = make_data((23, 17, 9), "<f8", seed=51)
    out["v2-F-zlib-3d"] = (writer.v2(d, chunks=(8, 8, 4), compressor=numcodecs.Zlib(level=1), order="F"), d)
    d = make_data((40, 33), "uint16", seed=52)
    out["v3-sharded-2d"] = (
        writer.v3(d, chunks=(4, 5), shards=(8, 15), compressors=ZstdCodec(level=1), serializer=BytesCodec(endian="big")),
        d,
    )
    d = make_data((101,), "complex64", seed=53)
    out["v3-1d"] = (writer.v3(d, chunks=(10,), compressors=BloscCodec(cname="zstd", shuffle="shuffle")), d)
    return out


def np_index(data: np.ndarray, sel):
    """numpy's result as an ndarray (a trailing Ellipsis keeps all-int selections 0-d arrays
    of the array's own dtype instead of native-endian scalars)."""
    tup = sel if isinstance(sel, tuple) else (sel,)
    if not any(s is Ellipsis for s in tup):
        tup = tup + (Ellipsis,)
    return data[tup]


ARRAY_NAMES = ["v2-blosc-3d", "v2-F-zlib-3d", "v3-sharded-2d", "v3-1d"]

# selections valid for every array above (ndim >= 1, every axis length >= 9)
COMMON_SELECTIONS = [
    Ellipsis,
    (),
    0,
    -1,
    5,
    -9,
    np.int64(3),
    np.uint8(2),
    slice(None),
    slice(None, None, 1),
    slice(2, 7),
    slice(-5, None),
    slice(-100, 4),
    slice(3, 1000),
    slice(-3, -1),
    slice(1000, 2000),
    slice(5, 5),
    slice(7, 2),
    slice(-1, -5),
    slice(None, -1000),
    slice(np.int32(1), np.int64(6)),
    (Ellipsis,),
    (slice(1, 4), Ellipsis),
    (Ellipsis, slice(1, 4)),
    (Ellipsis, 2),
    (2, Ellipsis),
    (-2, Ellipsis),
]

ND_SELECTIONS = [  # ndim >= 2
    (1, 2),
    (-1, -1),
    (slice(None), 3),
    (3, slice(2, 9)),
    (slice(2, 6), slice(3, 7)),
    (slice(0, 0), slice(3, 7)),
    (slice(2, 6), -1),
    (Ellipsis, slice(8, 1000)),
    (slice(2, 3), slice(4, 5)),
    (1, Ellipsis, 2),
    (slice(-2, None), Ellipsis, slice(None, 2)),
]

SELECTIONS_3D = [
    (1, 2, 3),
    (-1, -2, -3),
    (1, slice(None), 3),
    (Ellipsis, 4, slice(1, 3)),
    (slice(4, 19), slice(3, 15), slice(1, 8)),
    (1, 2, Ellipsis, 3),
    (slice(None), slice(None), slice(None)),
]


def _selections_for(ndim: int) -> list:
    sels = list(COMMON_SELECTIONS)
    if ndim >= 2:
        sels += ND_SELECTIONS
    if ndim >= 3:
        sels += SELECTIONS_3D
    return sels


@pytest.mark.parametrize("name", ARRAY_NAMES)
def test_selections_match_numpy(arrays, identical, name):
    path, data = arrays[name]
    arr = ngffcore.open_array(path)
    for sel in _selections_for(data.ndim):
        expected = np_index(data, sel)
        identical(arr[sel], expected, f"{name}[{sel!r}]")
        identical(arr.read(sel), expected, f"{name}.read({sel!r})")


@pytest.mark.parametrize("name", ARRAY_NAMES)
def test_selections_match_zarr(arrays, check_read, name):
    path, data = arrays[name]
    check_read(path, _selections_for(data.ndim))


def test_read_default_selection_is_everything(arrays, identical):
    path, data = arrays["v2-blosc-3d"]
    arr = ngffcore.open_array(path)
    identical(arr.read(), data)
    identical(arr.read(...), data)
    identical(arr.read(selection=...), data)


def test_int_selection_returns_0d_ndarray(arrays, identical):
    path, data = arrays["v3-sharded-2d"]
    arr = ngffcore.open_array(path)
    res = arr[3, 4]
    assert isinstance(res, np.ndarray) and res.shape == ()
    identical(res, np_index(data, (3, 4)))


# --------------------------------------------------------------------------------------
# out=
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ARRAY_NAMES)
@pytest.mark.parametrize("sel", [Ellipsis, (slice(2, 8),), (3,), (slice(5, 5),)], ids=["all", "slice", "int", "empty"])
def test_read_into_out(arrays, identical, name, sel):
    path, data = arrays[name]
    arr = ngffcore.open_array(path)
    expected = np_index(data, sel)
    out = np.empty(expected.shape, dtype=expected.dtype)
    out.reshape(-1).view(np.uint8)[:] = 0x5A  # poison
    res = arr.read(sel, out=out)
    assert res is out
    identical(out, expected)


@pytest.mark.parametrize("layout", ["F", "strided", "negative-strides"])
def test_read_into_noncontiguous_out(arrays, identical, layout):
    """``out`` only has to have the right shape and dtype: any writable layout works."""
    path, data = arrays["v2-blosc-3d"]
    arr = ngffcore.open_array(path)
    sel = (slice(1, 20), slice(2, 15), slice(None))
    expected = data[sel]
    if layout == "F":
        out = np.zeros(expected.shape, dtype=expected.dtype, order="F")
        base = out
    elif layout == "strided":
        base = np.zeros((expected.shape[0] * 2, expected.shape[1], expected.shape[2] * 3), dtype=expected.dtype)
        out = base[::2, :, ::3]
    else:
        base = np.zeros(expected.shape, dtype=expected.dtype)
        out = base[::-1, :, ::-1]
    assert out.shape == expected.shape
    res = arr.read(sel, out=out)
    assert res is out
    identical(np.ascontiguousarray(out), expected)
    if layout == "strided":  # nothing outside the view was touched
        mask = np.ones(base.shape, dtype=bool)
        mask[::2, :, ::3] = False
        assert not base[mask].any()


def test_out_wrong_shape(arrays):
    path, data = arrays["v2-blosc-3d"]
    arr = ngffcore.open_array(path)
    for shape in [(23, 17, 8), (23, 17, 9, 1), (23 * 17 * 9,), ()]:
        with pytest.raises(ngffcore.OutputError):
            arr.read(..., out=np.empty(shape, dtype=data.dtype))
    with pytest.raises(ngffcore.OutputError):
        arr.read((0, 0), out=np.empty((1,), dtype=data.dtype))  # expects shape (9,)


@pytest.mark.parametrize("bad_dtype", ["<f8", "<i8", "<u4", "<i4", "|u1"])
def test_out_wrong_dtype(arrays, bad_dtype):
    path, data = arrays["v2-blosc-3d"]  # dtype >i4
    arr = ngffcore.open_array(path)
    out = np.zeros(data.shape, dtype=bad_dtype)
    with pytest.raises(ngffcore.OutputError) as info:
        arr.read(..., out=out)
    assert isinstance(info.value, ValueError)
    assert not out.any()


def test_out_read_only(arrays):
    path, data = arrays["v3-1d"]
    arr = ngffcore.open_array(path)
    out = np.zeros(data.shape, dtype=data.dtype)
    out.flags.writeable = False
    with pytest.raises(ngffcore.OutputError):
        arr.read(..., out=out)


def test_out_not_an_ndarray(arrays):
    path, data = arrays["v3-1d"]
    arr = ngffcore.open_array(path)
    with pytest.raises((ngffcore.OutputError, TypeError)):
        arr.read(..., out=bytearray(data.nbytes))


# --------------------------------------------------------------------------------------
# invalid selections
# --------------------------------------------------------------------------------------

OUT_OF_RANGE = [23, -24, 1000, (0, 17), (0, -18), (0, 0, 9), (Ellipsis, -10), 2**63 - 1, -(2**63)]


@pytest.mark.parametrize("sel", OUT_OF_RANGE, ids=repr)
def test_out_of_range_int(arrays, sel):
    path, data = arrays["v2-blosc-3d"]  # shape (23, 17, 9)
    with pytest.raises(IndexError):
        data[sel]  # the reference agrees this is out of range
    arr = ngffcore.open_array(path)
    with pytest.raises(ngffcore.SelectionError) as info:
        arr[sel]
    assert isinstance(info.value, IndexError)
    with pytest.raises(ngffcore.SelectionError):
        arr.read(sel)


def test_huge_int_index(arrays):
    path, _ = arrays["v2-blosc-3d"]
    arr = ngffcore.open_array(path)
    for sel in [2**64, -(2**64) - 5, 10**30]:
        with pytest.raises(ngffcore.SelectionError):
            arr[sel]


UNSUPPORTED = {
    "step2": slice(None, None, 2),
    "step-1": slice(None, None, -1),
    "step0": slice(None, None, 0),
    "step3-3d": (slice(1, 10, 3), 0),
    "newaxis": None,
    "newaxis-tuple": (0, None),
    "list": [0, 1],
    "int-array": np.array([0, 2]),
    "bool-array": np.ones(23, dtype=bool),
    "float": 1.0,
    "float-in-tuple": (1, 2.0),
    "too-many": (0, 0, 0, 0),
    "two-ellipsis": (Ellipsis, 0, Ellipsis),
    "string": "a",
}


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_unsupported_selection(arrays, name):
    path, _ = arrays["v2-blosc-3d"]
    arr = ngffcore.open_array(path)
    sel = UNSUPPORTED[name]
    with pytest.raises(ngffcore.SelectionError) as info:
        arr[sel]
    assert isinstance(info.value, IndexError)
    with pytest.raises(ngffcore.SelectionError):
        arr.read(sel)


def test_zero_length_axis(writer, identical):
    data = np.zeros((0, 5), dtype="<u2")
    for path in [writer.v2(data, chunks=(3, 3)), writer.v3(data, chunks=(3, 3))]:
        arr = ngffcore.open_array(path)
        assert arr.shape == (0, 5)
        identical(arr[...], data.astype(arr.dtype))
        identical(arr[:, 2], data[:, 2].astype(arr.dtype))
        with pytest.raises(ngffcore.SelectionError):
            arr[0]


def test_zero_d_selections(writer, identical):
    data = np.array(-17, dtype=">i2")
    path = writer.v2(data, chunks=(), compressor=numcodecs.Zstd(level=1))
    arr = ngffcore.open_array(path)
    identical(arr[()], data)
    identical(arr[...], data)
    identical(arr.read(), data)
    out = np.zeros((), dtype=">i2")
    assert arr.read((), out=out) is out
    identical(out, data)
    for sel in [0, slice(None), (0,), None]:
        with pytest.raises(ngffcore.SelectionError):
            arr[sel]


# --------------------------------------------------------------------------------------
# property-based
# --------------------------------------------------------------------------------------


@st.composite
def selections(draw, shape):
    items: list = []
    for n in shape:
        kinds = ["slice", "full"] + (["int"] if n > 0 else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            bound = st.none() | st.integers(-2 * n - 3, 2 * n + 3)
            items.append(slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1]))))
        else:
            items.append(slice(None))
    mode = draw(st.sampled_from(["plain", "ellipsis", "truncate"]))
    if mode == "ellipsis":
        pos = draw(st.integers(0, len(items)))
        k = draw(st.integers(0, len(items) - pos))
        items[pos : pos + k] = [Ellipsis]
    elif mode == "truncate":
        items = items[: draw(st.integers(0, len(items)))]
    sel = tuple(items)
    if len(sel) == 1 and draw(st.booleans()):
        return sel[0]
    return sel


@pytest.mark.parametrize("name", ARRAY_NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_selections_fixed_arrays(arrays, identical, name, data):
    path, ref = arrays[name]
    sel = data.draw(selections(ref.shape), label="selection")
    arr = ngffcore.open_array(path)
    identical(arr[sel], np_index(ref, sel), f"{name}[{sel!r}]")


LAYOUTS = ["v2-blosc-C", "v2-zlib-F", "v2-none-C", "v3-zstd", "v3-sharded", "v3-sharded-start-big"]
V2_DTYPES = ["|u1", "<i2", ">u4", "<f8", ">c8", "|b1", ">f2"]
V3_DTYPES = ["uint8", "int16", "uint32", "float64", "complex64", "bool", "float16"]


@st.composite
def array_specs(draw):
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(0, 11), min_size=ndim, max_size=ndim)))
    chunks = tuple(draw(st.integers(1, max(1, n + 2))) for n in shape)
    layout = draw(st.sampled_from(LAYOUTS))
    factors = tuple(draw(st.integers(1, 3)) for _ in shape)
    dtype = draw(st.sampled_from(V2_DTYPES if layout.startswith("v2") else V3_DTYPES))
    written = draw(st.sampled_from(["all", "part", "none"]))
    return shape, chunks, layout, factors, dtype, written


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=array_specs(), data=st.data())
def test_random_arrays(writer, make_data, identical, with_fill, spec, data):
    from zarr.codecs import ShardingCodec

    shape, chunks, layout, factors, dtype, written = spec
    values = make_data(shape, dtype, seed=len(shape))
    region = {"all": Ellipsis, "none": None, "part": tuple(slice(n // 3, n - n // 4) for n in shape)}[written]
    # not NaN: zarr skips writing chunks that compare equal to the fill, and NaN == NaN there
    # ignores payloads, so a one-element chunk holding a payload NaN would not be written
    fill = -1.5 if np.dtype(dtype).kind == "f" else 1
    if layout == "v2-blosc-C":
        path = writer.v2(values, chunks=chunks, compressor=numcodecs.Blosc(cname="zstd", clevel=1, shuffle=2),
                         fill_value=fill, region=region)
    elif layout == "v2-zlib-F":
        path = writer.v2(values, chunks=chunks, compressor=numcodecs.Zlib(level=1), order="F", separator="/",
                         fill_value=fill, region=region)
    elif layout == "v2-none-C":
        path = writer.v2(values, chunks=chunks, compressor=None, fill_value=fill, region=region)
    elif layout == "v3-zstd":
        path = writer.v3(values, chunks=chunks, compressors=ZstdCodec(level=1), fill_value=fill, region=region)
    elif layout == "v3-sharded":
        shards = tuple(c * f for c, f in zip(chunks, factors))
        path = writer.v3(values, chunks=chunks, shards=shards, compressors=BloscCodec(cname="lz4"),
                         fill_value=fill, region=region)
    else:
        shards = tuple(c * f for c, f in zip(chunks, factors))
        sc = ShardingCodec(chunk_shape=chunks, codecs=[BytesCodec(endian="big")], index_location="start")
        path = writer.v3(values, chunks=shards, serializer=sc, fill_value=fill, region=region)
    expected = with_fill(values, region, fill)
    arr = ngffcore.open_array(path)
    assert arr.shape == shape
    sel = data.draw(selections(shape), label="selection")
    identical(arr[sel], np_index(expected, sel), f"{layout} {shape}/{chunks} [{sel!r}]")
    identical(arr[...], expected, f"{layout} {shape}/{chunks} [...]")
