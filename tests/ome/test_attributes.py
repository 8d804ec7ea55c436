"""Array properties (``shape dtype chunks shards fill_value ndim nbytes zarr_format``) against
what zarr-python reports for the same array."""

from __future__ import annotations

import math
import pathlib

import numcodecs
import numpy as np
import pytest
from zarr.codecs import BytesCodec, ShardingCodec, ZstdCodec

import ngffcore


def _v2(writer, make_data, shape, chunks, dtype, fill, order="C"):
    return writer.v2(make_data(shape, dtype), chunks=chunks, compressor=numcodecs.Zstd(level=1), fill_value=fill,
                     order=order, region=None)


def _v3(writer, make_data, shape, chunks, dtype, fill, shards=None, endian="little"):
    return writer.v3(make_data(shape, dtype), chunks=chunks, shards=shards, fill_value=fill,
                     serializer="auto" if shards else BytesCodec(endian=endian), region=None)


CASES = {
    "v2-u2-nullfill": lambda w, d: _v2(w, d, (37, 29), (16, 8), "<u2", None),
    "v2-big-i8": lambda w, d: _v2(w, d, (10,), (3,), ">i8", -3),
    "v2-big-f4-nan": lambda w, d: _v2(w, d, (4, 5, 6), (2, 5, 4), ">f4", float("nan")),
    "v2-f8-neg0": lambda w, d: _v2(w, d, (4, 5), (4, 5), "<f8", -0.0),
    "v2-c16-fill": lambda w, d: _v2(w, d, (3, 3), (2, 2), ">c16", complex(1.5, float("-inf"))),
    "v2-bool": lambda w, d: _v2(w, d, (8, 8), (3, 3), "|b1", True),
    "v2-u8-max": lambda w, d: _v2(w, d, (5,), (2,), "<u8", 2**64 - 1),
    "v2-F": lambda w, d: _v2(w, d, (7, 9), (4, 4), "<i2", 5, order="F"),
    "v2-0d": lambda w, d: _v2(w, d, (), (), "<f2", 0.5),
    "v2-5d": lambda w, d: _v2(w, d, (2, 3, 4, 5, 6), (1, 2, 3, 4, 5), "|u1", 9),
    "v2-zero-length": lambda w, d: _v2(w, d, (0, 4), (2, 2), "<i4", 0),
    "v3-u2": lambda w, d: _v3(w, d, (37, 29), (16, 8), "uint16", 0),
    "v3-big-endian": lambda w, d: _v3(w, d, (37, 29), (16, 8), "float64", float("inf"), endian="big"),
    "v3-f4-nan": lambda w, d: _v3(w, d, (6, 6), (4, 4), "float32", float("nan")),
    "v3-c8": lambda w, d: _v3(w, d, (6,), (4,), "complex64", complex(-1, 2)),
    "v3-bool": lambda w, d: _v3(w, d, (6,), (4,), "bool", True),
    "v3-i64-min": lambda w, d: _v3(w, d, (6,), (4,), "int64", -(2**63)),
    "v3-0d": lambda w, d: _v3(w, d, (), (), "int8", -1),
    "v3-sharded": lambda w, d: _v3(w, d, (30, 40), (5, 4), "int32", 7, shards=(10, 20)),
    "v3-sharded-3d": lambda w, d: _v3(w, d, (9, 9, 9), (1, 3, 3), "float32", 0, shards=(3, 3, 9)),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request, writer, make_data):
    return CASES[request.param](writer, make_data)


def _zarr(path):
    import zarr

    return zarr.open_array(path, mode="r")


def test_shape_ndim(case):
    z, a = _zarr(case), ngffcore.open_array(case)
    assert isinstance(a.shape, tuple) and all(type(n) is int for n in a.shape)
    assert a.shape == z.shape
    assert a.ndim == z.ndim == len(z.shape)


def test_dtype(case):
    z, a = _zarr(case), ngffcore.open_array(case)
    assert isinstance(a.dtype, np.dtype)
    assert a.dtype == z.dtype
    assert a.dtype.str == z.dtype.str  # byte order included


def test_chunks_shards(case):
    z, a = _zarr(case), ngffcore.open_array(case)
    assert isinstance(a.chunks, tuple) and all(type(n) is int for n in a.chunks)
    assert a.chunks == z.chunks
    assert a.shards == z.shards
    if a.shards is not None:
        assert isinstance(a.shards, tuple) and all(type(n) is int for n in a.shards)


def test_fill_value(case):
    z, a = _zarr(case), ngffcore.open_array(case)
    if z.fill_value is None:
        assert a.fill_value is None
        return
    assert a.fill_value is not None
    expected = np.asarray(z.fill_value, dtype=z.dtype)
    actual = np.asarray(a.fill_value, dtype=z.dtype)
    # bit-exact: NaN payloads and -0.0 count
    assert actual.tobytes() == expected.tobytes(), (a.fill_value, z.fill_value)


def test_nbytes_zarr_format(case):
    z, a = _zarr(case), ngffcore.open_array(case)
    assert a.nbytes == z.nbytes == math.prod(z.shape) * z.dtype.itemsize
    assert a.zarr_format == z.metadata.zarr_format
    assert type(a.nbytes) is int and type(a.zarr_format) is int


def test_nested_sharding_chunks(writer, make_data):
    data = make_data((16, 20), "uint16")
    inner = ShardingCodec(chunk_shape=(2, 5), codecs=[BytesCodec(), ZstdCodec(level=1)])
    outer = ShardingCodec(chunk_shape=(4, 5), codecs=[inner])
    path = writer.v3(data, chunks=(8, 10), serializer=outer)
    z, a = _zarr(path), ngffcore.open_array(path)
    assert a.chunks == z.chunks
    assert a.shards == z.shards


def test_location_forms(writer, make_data, identical):
    """A str path, a pathlib.Path, a trailing slash and a ``file://`` URL open the same array."""
    data = make_data((6, 7), "<i4")
    path = writer.v2(data, chunks=(4, 4), compressor=None)
    for loc in [path, pathlib.Path(path), path + "/", pathlib.Path(path).as_uri()]:
        a = ngffcore.open_array(loc)
        assert a.shape == (6, 7) and a.dtype == np.dtype("<i4")
        identical(a[...], data)


@pytest.mark.parametrize("fmt", [2, 3])
def test_location_with_unusual_characters(tmp_path, make_data, identical, fmt):
    """Spaces, non-ASCII, ``%`` and ``#`` in the path; the file:// URL is percent-encoded."""
    import zarr

    data = make_data((9, 7), "<u2")
    target = tmp_path / "dir with space ü%41#x" / "arr é"
    z = zarr.create_array(str(target), shape=data.shape, chunks=(4, 4), dtype=data.dtype, zarr_format=fmt)
    z[...] = data
    for loc in [str(target), target, target.as_uri()]:
        identical(ngffcore.open_array(loc)[...], data, repr(loc))


def test_relative_location(tmp_path, make_data, identical, monkeypatch):
    import zarr

    data = make_data((5, 5), "<i8")
    z = zarr.create_array(str(tmp_path / "sub" / "arr"), shape=data.shape, chunks=(2, 2), dtype=data.dtype)
    z[...] = data
    monkeypatch.chdir(tmp_path)
    identical(ngffcore.open_array("sub/arr")[...], data)
    identical(ngffcore.open_array("./sub/../sub/arr")[...], data)
