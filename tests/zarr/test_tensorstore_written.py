"""Arrays written by tensorstore (an independent writer), read by ngffcore and compared
bit-exactly with zarr-python's reads of the same files and with the data written."""

from __future__ import annotations

import os

import numpy as np
import pytest

import ngffcore

# --------------------------------------------------------------------------------------
# driver "zarr" (Zarr v2)
# --------------------------------------------------------------------------------------

V2_COMPRESSORS = {
    "blosc-lz4-shuffle": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1},
    "blosc-zstd-bitshuffle": {"id": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 2},
    "blosc-zlib-noshuffle": {"id": "blosc", "cname": "zlib", "clevel": 5, "shuffle": 0},
    "blosc-blosclz-shuffle": {"id": "blosc", "cname": "blosclz", "clevel": 9, "shuffle": 1},
    "blosc-lz4hc-blocksize": {"id": "blosc", "cname": "lz4hc", "clevel": 5, "shuffle": 1, "blocksize": 512},
    "zstd-1": {"id": "zstd", "level": 1},
    "zstd-10": {"id": "zstd", "level": 10},
    "zlib-1": {"id": "zlib", "level": 1},
    "zlib-9": {"id": "zlib", "level": 9},
    "none": None,
}


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", ["<u2", ">i4", "<f8", ">f4", "|u1", "|b1", ">c8"])
@pytest.mark.parametrize("name", list(V2_COMPRESSORS))
def test_zarr2(writer, make_data, check_read, identical, name, dtype, order):
    data = make_data((37, 29), dtype, seed=40)
    meta = {
        "shape": list(data.shape),
        "chunks": [16, 8],
        "dtype": dtype,
        "compressor": V2_COMPRESSORS[name],
        "order": order,
    }
    path = writer.tensorstore("zarr", data, meta, name=name)
    check_read(path)
    identical(ngffcore.open_array(path)[...], data)


@pytest.mark.parametrize("separator", [".", "/"])
@pytest.mark.parametrize(("dtype", "fill"), [("<i4", None), ("<i4", -5), (">f8", "NaN"), ("<f4", "-Infinity")])
def test_zarr2_fill_and_missing_chunks(writer, make_data, check_read, identical, with_fill, dtype, fill, separator):
    data = make_data((30, 31), dtype, seed=41)
    region = (slice(4, 19), slice(10, 20))
    meta = {
        "shape": list(data.shape),
        "chunks": [8, 8],
        "dtype": dtype,
        "compressor": {"id": "zstd", "level": 1},
        "fill_value": fill,
        "dimension_separator": separator,
    }
    path = writer.tensorstore("zarr", data, meta, region=region)
    if separator == "/":
        assert os.path.isdir(os.path.join(path, "0"))
    check_read(path)
    fill_value = {None: None, -5: -5, "NaN": np.nan, "-Infinity": -np.inf}[fill]
    identical(ngffcore.open_array(path)[...], with_fill(data, region, fill_value))


@pytest.mark.parametrize(("shape", "chunks"), [((50,), (7,)), ((6, 7, 8), (4, 3, 5)), ((3, 4, 2, 5, 3), (2, 3, 2, 2, 2))])
def test_zarr2_dimensionality(writer, make_data, check_read, identical, shape, chunks):
    data = make_data(shape, "<i8", seed=42)
    meta = {"shape": list(shape), "chunks": list(chunks), "dtype": "<i8",
            "compressor": {"id": "blosc", "cname": "zstd", "clevel": 1, "shuffle": 1}}
    path = writer.tensorstore("zarr", data, meta)
    check_read(path)
    identical(ngffcore.open_array(path)[...], data)


# --------------------------------------------------------------------------------------
# driver "zarr3"
# --------------------------------------------------------------------------------------


def _bytes(endian: str = "little") -> dict:
    return {"name": "bytes", "configuration": {"endian": endian}}


CRC = {"name": "crc32c"}
ZSTD = {"name": "zstd", "configuration": {"level": 1, "checksum": False}}
GZIP = {"name": "gzip", "configuration": {"level": 3}}
BLOSC = {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5, "shuffle": "shuffle", "blocksize": 0}}
BLOSC_BIT = {"name": "blosc", "configuration": {"cname": "zstd", "clevel": 3, "shuffle": "bitshuffle", "blocksize": 0}}


def _transpose(order: list[int]) -> dict:
    return {"name": "transpose", "configuration": {"order": order}}


def _shard(chunk_shape: list[int], codecs: list[dict], **extra) -> dict:
    conf = {"chunk_shape": chunk_shape, "codecs": codecs}
    conf.update(extra)
    return {"name": "sharding_indexed", "configuration": conf}


# (grid chunk shape, codecs) -- tensorstore fills in the typesize of blosc itself
ZARR3_LAYOUTS = {
    "bytes": ([8, 8], [_bytes()]),
    "bytes-big": ([8, 8], [_bytes("big")]),
    "zstd": ([8, 8], [_bytes(), ZSTD]),
    "gzip+crc": ([8, 8], [_bytes("big"), GZIP, CRC]),
    "blosc": ([8, 8], [_bytes(), BLOSC]),
    "transpose-blosc": ([8, 8], [_transpose([1, 0]), _bytes(), BLOSC_BIT]),
    "shard": ([16, 16], [_shard([4, 8], [_bytes(), ZSTD])]),
    "shard-no-index-location": ([16, 16], [_shard([4, 8], [_bytes(), BLOSC])]),
    "shard-index-start": ([16, 16], [_shard([4, 8], [_bytes(), GZIP], index_location="start")]),
    "shard-index-no-crc": ([16, 16], [_shard([8, 8], [_bytes()], index_codecs=[_bytes()])]),
    "shard-inner-transpose-crc": ([16, 16], [_shard([8, 4], [_transpose([1, 0]), _bytes("big"), ZSTD, CRC])]),
    "shard-nested": ([16, 16], [_shard([8, 8], [_shard([4, 4], [_bytes(), ZSTD])])]),
}


def _zarr3_meta(data, layout, dtype, **extra):
    """tensorstore ``zarr3`` metadata for ``data`` in one of ``ZARR3_LAYOUTS``."""
    chunk_shape, codecs = ZARR3_LAYOUTS[layout]
    return {
        "shape": list(data.shape),
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk_shape}},
        "data_type": dtype,
        "codecs": codecs,
        **extra,
    }


@pytest.mark.parametrize("dtype", ["uint16", "int64", "float32", "complex64", "bool"])
@pytest.mark.parametrize("layout", list(ZARR3_LAYOUTS))
def test_zarr3(writer, make_data, check_read, identical, layout, dtype):
    data = make_data((30, 20), dtype, seed=43)
    path = writer.tensorstore("zarr3", data, _zarr3_meta(data, layout, dtype), name=layout)
    check_read(path)
    check_read(path, [(slice(3, 9), slice(5, 13)), (29, slice(None)), (slice(None), 19), (17, 4)])
    identical(ngffcore.open_array(path)[...], data)


@pytest.mark.parametrize("layout", ["zstd", "shard", "shard-index-start", "shard-nested"])
@pytest.mark.parametrize(("dtype", "fill"), [("int32", 0), ("int32", 77), ("float64", "NaN"), ("float32", "Infinity")])
def test_zarr3_fill_and_missing(writer, make_data, check_read, identical, with_fill, layout, dtype, fill):
    """Partial writes: missing chunks, missing shards and missing inner chunks in a shard."""
    data = make_data((30, 20), dtype, seed=44)
    region = (slice(2, 7), slice(9, 18))
    meta = _zarr3_meta(data, layout, dtype, fill_value=fill)
    path = writer.tensorstore("zarr3", data, meta, region=region)
    check_read(path)
    fill_value = {0: 0, 77: 77, "NaN": np.nan, "Infinity": np.inf}[fill]
    identical(ngffcore.open_array(path)[...], with_fill(data, region, fill_value))


@pytest.mark.parametrize("encoding", [{"name": "default", "configuration": {"separator": "."}},
                                      {"name": "v2", "configuration": {"separator": "."}},
                                      {"name": "v2", "configuration": {"separator": "/"}}])
def test_zarr3_chunk_key_encoding(writer, make_data, check_read, identical, encoding):
    data = make_data((20, 20), "uint32", seed=45)
    meta = {
        "shape": [20, 20],
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [8, 8]}},
        "chunk_key_encoding": encoding,
        "data_type": "uint32",
        "codecs": [_bytes(), ZSTD],
    }
    path = writer.tensorstore("zarr3", data, meta)
    check_read(path)
    identical(ngffcore.open_array(path)[...], data)
