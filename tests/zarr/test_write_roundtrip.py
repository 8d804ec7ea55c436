"""Arrays written by ngffcore read back bit-exact by zarr-python, tensorstore and ngffcore, for
every configuration ``create_array`` takes; arrays written by zarr-python partially
overwritten by ngffcore and read back by zarr-python (issue 15)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import ngffcore

zarr = pytest.importorskip("zarr")
ts = pytest.importorskip("tensorstore")

SHAPE = (13, 37, 29)  # edge chunks on every axis
CHUNKS = (4, 16, 8)


def _data(dtype: str, shape: tuple[int, ...] = SHAPE, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) < 0.3
    if dt.kind in "iu":
        info = np.iinfo(dt)
        # smooth-ish, so compressors have something to find, with the full range present
        base = np.cumsum(rng.integers(-3, 4, size=shape), axis=-1)
        out = (base % 200).astype(dt)
        out.flat[0], out.flat[-1] = info.min, info.max
        return out
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    return rng.standard_normal(shape).astype(dt)


def _write_in_pieces(arr: ngffcore.Array, data: np.ndarray) -> None:
    """Whole chunks, partial chunks, edges, a scalar broadcast, then the final values."""
    arr[...] = data[0, 0, 0]  # every chunk written, mostly one value
    arr[2:9, 5:30, 3:20] = data[2:9, 5:30, 3:20]  # partial chunks inside
    arr[:, :, 24:] = data[:, :, 24:]  # edge chunks
    arr.write((slice(0, 4),), data[0:4])  # whole chunks along axis 0
    arr[7] = data[7]  # an integer index: a dropped axis
    arr[...] = data


def _read_zarr(path: str) -> np.ndarray:
    return zarr.open_array(path, mode="r")[...]


def _read_ts(path: str, driver: str) -> np.ndarray:
    spec = {"driver": driver, "kvstore": {"driver": "file", "path": path}}
    return ts.open(spec, read=True).result().read().result()


def _check(path: str, data: np.ndarray, driver: str | None) -> None:
    np.testing.assert_array_equal(ngffcore.open_array(path)[...], data)
    got = _read_zarr(path)
    assert got.dtype == data.dtype.newbyteorder("=") or got.dtype == data.dtype
    np.testing.assert_array_equal(got, data)
    if driver is not None:
        np.testing.assert_array_equal(_read_ts(path, driver), data)


BLOSC = [{"name": "blosc", "configuration": {"cname": cname, "clevel": level, "shuffle": shuffle,
                                             "typesize": 2, "blocksize": 0}}
         for cname, level, shuffle in [("lz4", 5, "shuffle"), ("zstd", 3, "bitshuffle"),
                                       ("blosclz", 9, "noshuffle"), ("lz4hc", 4, "shuffle"),
                                       ("zlib", 1, "bitshuffle")]]
LE = {"name": "bytes", "configuration": {"endian": "little"}}
BE = {"name": "bytes", "configuration": {"endian": "big"}}

V3_CHAINS = {
    "default": None,
    **{f"blosc-{c['configuration']['cname']}": [LE, c] for c in BLOSC},
    "gzip": [LE, {"name": "gzip", "configuration": {"level": 6}}],
    "zstd-checksum": [LE, {"name": "zstd", "configuration": {"level": 5, "checksum": True}}],
    "crc32c": [LE, {"name": "zstd", "configuration": {"level": 1, "checksum": False}},
               {"name": "crc32c"}],
    "big-endian": [BE, {"name": "gzip", "configuration": {"level": 1}}],
    "transpose": [{"name": "transpose", "configuration": {"order": [2, 0, 1]}}, LE,
                  {"name": "zstd", "configuration": {"level": 0, "checksum": False}}],
    "raw": [LE],
}


NUMCODECS_V3 = {
    "zlib": [LE, {"name": "numcodecs.zlib", "configuration": {"level": 1}}],
    "gzip": [LE, {"name": "numcodecs.gzip", "configuration": {"level": 1}}],
    "lz4": [LE, {"name": "numcodecs.lz4", "configuration": {"acceleration": 1}}],
    "zstd": [LE, {"name": "numcodecs.zstd", "configuration": {"level": 3}}],
    "blosc": [LE, {"name": "numcodecs.blosc", "configuration": {"cname": "zstd", "clevel": 5,
                                                                "shuffle": 2, "blocksize": 0}}],
    "bz2": [LE, {"name": "numcodecs.bz2", "configuration": {"level": 1}}],
    "lzma": [LE, {"name": "numcodecs.lzma", "configuration": {"format": 1, "check": -1,
                                                              "preset": None, "filters": None}}],
    "crc32c": [LE, {"name": "numcodecs.crc32c", "configuration": {}}],
    "delta": [{"name": "numcodecs.delta", "configuration": {"dtype": "<u2"}}, LE,
              {"name": "numcodecs.zlib", "configuration": {"level": 1}}],
}


@pytest.mark.parametrize("chain", list(NUMCODECS_V3))
@pytest.mark.parametrize("sharded", [False, True])
def test_v3_numcodecs_codecs(tmp_path, chain, sharded):
    """The numcodecs.* codecs zarr-python reads in v3 chains (tensorstore does not)."""
    path = str(tmp_path / "a.zarr")
    data = _data("uint16", seed=2)
    arr = ngffcore.create_array(path, shape=SHAPE, dtype="uint16", chunks=CHUNKS,
                                shards=(8, 32, 16) if sharded else None,
                                codecs=NUMCODECS_V3[chain])
    _write_in_pieces(arr, data)
    with warnings.catch_warnings():  # zarr-python warns that numcodecs.* are unstable
        warnings.simplefilter("ignore")
        _check(path, data, None)


@pytest.mark.parametrize("chain", list(V3_CHAINS))
def test_v3_codecs_uint16(tmp_path, chain):
    path = str(tmp_path / "a.zarr")
    data = _data("uint16")
    arr = ngffcore.create_array(path, shape=SHAPE, dtype="uint16", chunks=CHUNKS,
                                codecs=V3_CHAINS[chain])
    _write_in_pieces(arr, data)
    _check(path, data, "zarr3")


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int16", "int32", "uint32", "int64",
                                   "uint64", "float16", "float32", "float64", "complex64",
                                   "complex128"])
@pytest.mark.parametrize("sharded", [False, True])
def test_v3_dtypes(tmp_path, dtype, sharded):
    path = str(tmp_path / "a.zarr")
    data = _data(dtype)
    arr = ngffcore.create_array(path, shape=SHAPE, dtype=dtype, chunks=CHUNKS,
                                shards=(8, 32, 16) if sharded else None)
    _write_in_pieces(arr, data)
    _check(path, data, "zarr3")


SHARD_CHAINS = {
    "default": None,
    "blosc": [LE, BLOSC[1]],
    "crc32c-gzip": [LE, {"name": "gzip", "configuration": {"level": 1}}, {"name": "crc32c"}],
    "transpose": [{"name": "transpose", "configuration": {"order": [1, 2, 0]}}, LE,
                  {"name": "zstd", "configuration": {"level": 0, "checksum": False}}],
}


@pytest.mark.parametrize("chain", list(SHARD_CHAINS))
@pytest.mark.parametrize("shards", [(8, 32, 16), (4, 16, 8), (12, 48, 24)])
def test_v3_sharded(tmp_path, chain, shards):
    path = str(tmp_path / "a.zarr")
    data = _data("uint16", seed=1)
    arr = ngffcore.create_array(path, shape=SHAPE, dtype="uint16", chunks=CHUNKS,
                                shards=shards, codecs=SHARD_CHAINS[chain])
    _write_in_pieces(arr, data)
    _check(path, data, "zarr3")


def test_v3_dot_separator_dimension_names_attributes(tmp_path):
    path = str(tmp_path / "a.zarr")
    data = _data("float32")
    arr = ngffcore.create_array(path, shape=SHAPE, dtype="float32", chunks=CHUNKS,
                                dimension_separator=".", dimension_names=["z", "y", None],
                                attributes={"a": 1}, fill_value=float("nan"))
    _write_in_pieces(arr, data)
    _check(path, data, "zarr3")
    assert os.path.exists(os.path.join(path, "c.0.0.0"))
    z = zarr.open_array(path, mode="r")
    assert z.metadata.dimension_names == ("z", "y", None)
    assert dict(z.attrs) == {"a": 1}
    assert np.isnan(z.fill_value)


V2_COMPRESSORS = {
    "default": "default",
    "none": None,
    "blosc-zstd-bit": {"id": "blosc", "cname": "zstd", "clevel": 5, "shuffle": 2, "blocksize": 0},
    "blosc-lz4-byte": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0},
    "blosc-blosclz-auto": {"id": "blosc", "cname": "blosclz", "clevel": 9, "shuffle": -1,
                           "blocksize": 0},
    "blosc-zlib-none-block": {"id": "blosc", "cname": "zlib", "clevel": 3, "shuffle": 0,
                              "blocksize": 4096},
    "zstd": {"id": "zstd", "level": 3},
    "zlib": {"id": "zlib", "level": 1},
    "gzip": {"id": "gzip", "level": 5},
    "lz4": {"id": "lz4", "acceleration": 1},
    "bz2": {"id": "bz2", "level": 1},
    "lzma": {"id": "lzma", "format": 1, "check": -1, "preset": None, "filters": None},
}
# what tensorstore's zarr (v2) driver decodes
_TS_V2 = {"default", "none", "zstd", "zlib", "gzip", "bz2"} | {k for k in V2_COMPRESSORS
                                                              if k.startswith("blosc")}


@pytest.mark.parametrize("name", list(V2_COMPRESSORS))
def test_v2_compressors(tmp_path, name):
    path = str(tmp_path / "a.zarr")
    data = _data("<u2")
    arr = ngffcore.create_array(path, shape=SHAPE, dtype="<u2", chunks=CHUNKS, zarr_format=2,
                                compressor=V2_COMPRESSORS[name], fill_value=0)
    _write_in_pieces(arr, data)
    _check(path, data, "zarr" if name in _TS_V2 else None)


@pytest.mark.parametrize("dtype", ["<i4", ">i4", ">f8", "|u1", "<c8", "|b1"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_v2_dtypes_orders(tmp_path, dtype, order):
    path = str(tmp_path / "a.zarr")
    data = _data(dtype)
    arr = ngffcore.create_array(path, shape=SHAPE, dtype=dtype, chunks=CHUNKS, zarr_format=2,
                                order=order, dimension_separator="/")
    _write_in_pieces(arr, data)
    assert arr.dtype == np.dtype(dtype)
    _check(path, data, "zarr")
    assert os.path.exists(os.path.join(path, "0", "0", "0"))


@pytest.mark.parametrize("dtype", ["<i2", ">u4", "<f8"])
def test_v2_delta_filter(tmp_path, dtype):
    path = str(tmp_path / "a.zarr")
    data = _data(dtype)
    if data.dtype.kind == "f":  # differences and their sums exact: any roundtrip is bit-exact
        data = (np.round(data * 8) / 8).astype(dtype)
    arr = ngffcore.create_array(path, shape=SHAPE, dtype=dtype, chunks=CHUNKS, zarr_format=2,
                                filters=[{"id": "delta", "dtype": dtype}],
                                compressor={"id": "zlib", "level": 1})
    _write_in_pieces(arr, data)
    _check(path, data, None)


def test_v2_null_fill_stores_every_chunk(tmp_path):
    path = str(tmp_path / "a.zarr")
    arr = ngffcore.create_array(path, shape=(8, 8), dtype="<i4", chunks=(4, 4), zarr_format=2)
    arr[...] = 0
    assert sorted(f for f in os.listdir(path) if not f.startswith(".")) == \
        ["0.0", "0.1", "1.0", "1.1"]
    np.testing.assert_array_equal(_read_zarr(path), np.zeros((8, 8), "<i4"))


@pytest.mark.parametrize("sharded", [False, True])
def test_empty_chunks_not_stored_and_deleted(tmp_path, sharded):
    path = str(tmp_path / "a.zarr")
    arr = ngffcore.create_array(path, shape=(8, 8), dtype="uint8", chunks=(4, 4),
                                shards=(4, 8) if sharded else None, fill_value=7)
    arr[...] = 7
    assert not os.path.exists(os.path.join(path, "c"))
    arr[0, 0] = 1
    arr[5, 5] = 2
    objects = sorted(os.listdir(os.path.join(path, "c")))
    assert objects == ["0", "1"]
    arr[0:4, 0:4] = 7  # the first chunk is all fill again
    expected = np.full((8, 8), 7, np.uint8)
    expected[5, 5] = 2
    np.testing.assert_array_equal(_read_zarr(path), expected)
    # the chunk, or (sharded) its shard, which holds nothing else
    assert not os.path.exists(os.path.join(path, "c", "0", "0"))
    assert os.path.exists(os.path.join(path, "c", "1", "1" if not sharded else "0"))
    arr.write(..., 7, write_empty_chunks=True)
    assert os.path.exists(os.path.join(path, "c", "0", "0"))
    np.testing.assert_array_equal(_read_zarr(path), np.full((8, 8), 7, np.uint8))


ZARR_WRITTEN = {
    "v2-default": dict(zarr_format=2),
    "v2-raw": dict(zarr_format=2, compressors=None),
    "v3-default": dict(zarr_format=3),
    "v3-sharded": dict(zarr_format=3, shards=(8, 32, 16)),
}


@pytest.mark.parametrize("name", list(ZARR_WRITTEN))
def test_overwrite_zarr_python_array(tmp_path, name):
    path = str(tmp_path / "z.zarr")
    data = _data("int32", seed=3)
    z = zarr.create_array(path, shape=SHAPE, dtype="int32", chunks=CHUNKS, fill_value=0,
                          **ZARR_WRITTEN[name])
    z[...] = data
    arr = ngffcore.open_array(path, mode="r+")
    rng = np.random.default_rng(5)
    for _ in range(12):
        lo = [int(rng.integers(0, n)) for n in SHAPE]
        hi = [int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, SHAPE)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        patch = rng.integers(-1000, 1000, size=[b - a for a, b in zip(lo, hi)]).astype("int32")
        arr[box] = patch
        data[box] = patch
    np.testing.assert_array_equal(_read_zarr(path), data)
    np.testing.assert_array_equal(arr[...], data)


def test_attributes_update(tmp_path):
    for fmt in (2, 3):
        path = str(tmp_path / f"a{fmt}.zarr")
        arr = ngffcore.create_array(path, shape=(4,), dtype="uint8", chunks=(2,),
                                    zarr_format=fmt, attributes={"x": 1})
        arr.update_attributes({"y": [1, 2]})
        assert dict(zarr.open_array(path, mode="r").attrs) == {"x": 1, "y": [1, 2]}
        assert ngffcore.open_array(path).attrs == {"x": 1, "y": [1, 2]}
        assert not [f for f in os.listdir(path) if f.endswith(".partial")]


def test_write_never_changes_metadata(tmp_path):
    path = str(tmp_path / "a.zarr")
    arr = ngffcore.create_array(path, shape=(10, 10), dtype="int16", chunks=(3, 3),
                                shards=(6, 6))
    with open(os.path.join(path, "zarr.json"), "rb") as f:
        before = f.read()
    arr[...] = 5
    arr[2:4] = 1
    with open(os.path.join(path, "zarr.json"), "rb") as f:
        assert f.read() == before
    leftovers = [f for _, _, files in os.walk(path) for f in files if f.endswith(".partial")]
    assert leftovers == []


@pytest.mark.parametrize("sharded", [False, True])
def test_cached_reads_see_writes(tmp_path, sharded):
    """A read through a ChunkCache after a write returns the written values: the write drops
    what it replaced from every cache (whole-chunk native writes and merged writes alike)."""
    path = str(tmp_path / "a.zarr")
    arr = ngffcore.create_array(path, shape=(8, 8), dtype="uint8", chunks=(4, 4),
                                shards=(8, 8) if sharded else None, fill_value=0)
    cache = ngffcore.ChunkCache()
    reader = ngffcore.open_array(path)
    assert (reader.read(cache=cache) == 0).all()
    assert cache.stats().chunks == 4
    arr[0:4, 0:4] = 5  # a whole chunk
    arr[5, 5] = 9  # part of one
    expected = np.zeros((8, 8), np.uint8)
    expected[0:4, 0:4] = 5
    expected[5, 5] = 9
    np.testing.assert_array_equal(reader.read(cache=cache), expected)
