"""Zarr v3 arrays written by zarr-python, read by ngffcore, compared bit-exactly with zarr-python."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import zstandard
from zarr.codecs import (
    BloscCodec,
    BytesCodec,
    Crc32cCodec,
    GzipCodec,
    ShardingCodec,
    TransposeCodec,
    ZstdCodec,
)

import ngffcore

V3_DTYPES = [
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
]


def _native(dtype: str) -> np.dtype:
    return np.dtype(dtype).newbyteorder("=")


# --------------------------------------------------------------------------------------
# bytes codec, dtypes, byte order
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("compressor", ["none", "zstd"])
@pytest.mark.parametrize("endian", ["little", "big"])
@pytest.mark.parametrize("dtype", V3_DTYPES)
def test_bytes_codec_dtypes(writer, make_data, check_read, identical, dtype, endian, compressor):
    data = make_data((13, 11), dtype, seed=20)
    path = writer.v3(
        data,
        chunks=(5, 4),
        serializer=BytesCodec(endian=endian) if np.dtype(dtype).itemsize > 1 else BytesCodec(),
        compressors=None if compressor == "none" else ZstdCodec(level=1),
    )
    arr = ngffcore.open_array(path)
    assert arr.dtype == _native(dtype)  # v3: native-endian dtype whatever the storage order
    check_read(path)
    identical(arr[...], data)


def test_big_endian_bytes_really_stored_big_endian(writer, identical):
    data = np.arange(8, dtype="<u4").reshape(2, 4)
    path = writer.v3(data, chunks=(2, 4), serializer=BytesCodec(endian="big"), compressors=None)
    with open(os.path.join(path, "c", "0", "0"), "rb") as f:
        raw = f.read()
    assert raw == data.astype(">u4").tobytes()
    identical(ngffcore.open_array(path)[...], data)


# --------------------------------------------------------------------------------------
# transpose codec
# --------------------------------------------------------------------------------------

TRANSPOSES = [
    ((6, 7), (4, 3), (1, 0)),
    ((6, 7), (4, 3), (0, 1)),
    ((5, 6, 7), (2, 4, 3), (2, 0, 1)),
    ((5, 6, 7), (2, 4, 3), (1, 2, 0)),
    ((5, 6, 7), (2, 4, 3), (2, 1, 0)),
    ((3, 4, 5, 2), (2, 3, 2, 2), (3, 1, 0, 2)),
]


@pytest.mark.parametrize("endian", ["little", "big"])
@pytest.mark.parametrize("compressor", ["none", "blosc", "gzip"])
@pytest.mark.parametrize(("shape", "chunks", "order"), TRANSPOSES, ids=[str(t[2]) for t in TRANSPOSES])
@pytest.mark.parametrize("dtype", ["uint16", "float64", "complex64"])
def test_transpose(writer, make_data, check_read, identical, shape, chunks, order, endian, compressor, dtype):
    data = make_data(shape, dtype, seed=21)
    comp = {
        "none": None,
        "blosc": BloscCodec(cname="lz4", shuffle="shuffle"),
        "gzip": GzipCodec(level=1),
    }[compressor]
    path = writer.v3(
        data,
        chunks=chunks,
        filters=[TransposeCodec(order=order)],
        serializer=BytesCodec(endian=endian),
        compressors=comp,
    )
    check_read(path)
    identical(ngffcore.open_array(path)[...], data)


# --------------------------------------------------------------------------------------
# bytes -> bytes codecs
# --------------------------------------------------------------------------------------

V3_COMPRESSORS = {
    **{
        f"blosc-{cname}-{shuffle}": BloscCodec(cname=cname, clevel=5, shuffle=shuffle)
        for cname in ["lz4", "lz4hc", "blosclz", "zstd", "zlib"]
        for shuffle in ["noshuffle", "shuffle", "bitshuffle"]
    },
    "blosc-typesize1": BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=1, blocksize=256),
    "blosc-typesize2": BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle", typesize=2, blocksize=256),
    "blosc-typesize3": BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=3, blocksize=256),
    "blosc-blocksize512": BloscCodec(cname="zstd", clevel=5, shuffle="shuffle", blocksize=512),
    "blosc-memcpy": BloscCodec(cname="zstd", clevel=0, shuffle="shuffle", blocksize=512),
    "gzip-1": GzipCodec(level=1),
    "gzip-9": GzipCodec(level=9),
    "zstd-0": ZstdCodec(level=0),
    "zstd-22": ZstdCodec(level=22),
    "zstd-checksum": ZstdCodec(level=3, checksum=True),
    "crc32c": Crc32cCodec(),
    "gzip+crc32c": (GzipCodec(level=5), Crc32cCodec()),
    "zstd+crc32c": (ZstdCodec(level=1), Crc32cCodec()),
    "blosc+crc32c": (BloscCodec(cname="zstd", shuffle="bitshuffle"), Crc32cCodec()),
    "crc32c+crc32c": (Crc32cCodec(), Crc32cCodec()),
}


@pytest.mark.parametrize("dtype", ["uint16", "float64"])
@pytest.mark.parametrize("name", list(V3_COMPRESSORS))
def test_compressors(writer, make_data, check_read, identical, name, dtype):
    data = make_data((70, 45), dtype, seed=22)
    path = writer.v3(data, chunks=(64, 16), compressors=V3_COMPRESSORS[name], name=name)
    check_read(
        path,
        [Ellipsis, (3, slice(2, 7)), (slice(60, 68), slice(10, 20)), (69, 44), (slice(None), 17)],
    )
    identical(ngffcore.open_array(path)[...], data)


# --------------------------------------------------------------------------------------
# chunk key encodings
# --------------------------------------------------------------------------------------

KEY_ENCODINGS = {
    "default-slash": ({"name": "default", "separator": "/"}, ("c", "0", "1")),
    "default-dot": ({"name": "default", "separator": "."}, ("c.0.1",)),
    "v2-dot": ({"name": "v2", "separator": "."}, ("0.1",)),
    "v2-slash": ({"name": "v2", "separator": "/"}, ("0", "1")),
}


@pytest.mark.parametrize("sharded", [False, True])
@pytest.mark.parametrize("encoding", list(KEY_ENCODINGS))
def test_chunk_key_encoding(writer, make_data, check_read, identical, encoding, sharded):
    cke, key_parts = KEY_ENCODINGS[encoding]
    data = make_data((12, 14), "int32", seed=23)
    if sharded:
        path = writer.v3(data, chunks=(3, 4), shards=(6, 8), compressors=ZstdCodec(level=1), chunk_key_encoding=cke)
    else:
        path = writer.v3(data, chunks=(6, 8), compressors=ZstdCodec(level=1), chunk_key_encoding=cke)
    assert os.path.isfile(os.path.join(path, *key_parts))  # the encoding is really in use
    check_read(path)
    identical(ngffcore.open_array(path)[...], data)


def test_default_key_encoding_without_configuration(writer, make_data, identical, check_read, metadata_tools):
    """``{"name": "default"}`` without configuration means separator ``/``."""
    data = make_data((12, 14), "int32", seed=24)
    path = writer.v3(data, chunks=(6, 8), compressors=None)
    metadata_tools.patch(path, chunk_key_encoding={"name": "default"})
    check_read(path)
    identical(ngffcore.open_array(path)[...], data)


def test_zero_d(writer, check_read, identical):
    data = np.array(-3.25, dtype="float64")
    path = writer.v3(data, chunks=(), compressors=GzipCodec(level=1))
    assert os.path.isfile(os.path.join(path, "c"))
    check_read(path)
    identical(ngffcore.open_array(path)[...], data)


def test_zero_d_missing_chunk(writer, check_read, identical):
    data = np.array(1, dtype="uint16")
    path = writer.v3(data, chunks=(), fill_value=7, region=None)
    check_read(path)
    identical(ngffcore.open_array(path)[()], np.array(7, dtype="uint16"))


@pytest.mark.parametrize(
    ("shape", "chunks"),
    [((100,), (7,)), ((9, 10, 11), (4, 3, 5)), ((3, 4, 2, 5, 3), (2, 3, 2, 2, 2)), ((5, 3), (8, 8))],
)
def test_dimensionality(writer, make_data, check_read, identical, shape, chunks):
    data = make_data(shape, "int16", seed=25)
    path = writer.v3(data, chunks=chunks, compressors=BloscCodec(cname="zstd", shuffle="shuffle"))
    check_read(path)
    identical(ngffcore.open_array(path)[...], data)


# --------------------------------------------------------------------------------------
# sharding
# --------------------------------------------------------------------------------------

SHARDINGS = {
    "default": lambda: dict(chunks=(4, 5), shards=(8, 10), compressors=ZstdCodec(level=1)),
    "default-nocompress": lambda: dict(chunks=(4, 5), shards=(8, 10), compressors=None),
    "default-blosc": lambda: dict(chunks=(4, 5), shards=(8, 10), compressors=BloscCodec(cname="lz4")),
    "one-inner-chunk": lambda: dict(chunks=(8, 10), shards=(8, 10), compressors=None),
    "unit-inner-chunks": lambda: dict(chunks=(1, 1), shards=(4, 5), compressors=None),
    "index-end": lambda: dict(
        chunks=(8, 10),
        serializer=ShardingCodec(chunk_shape=(4, 5), codecs=[BytesCodec(), GzipCodec(level=1)], index_location="end"),
    ),
    "index-start": lambda: dict(
        chunks=(8, 10),
        serializer=ShardingCodec(chunk_shape=(4, 5), codecs=[BytesCodec(), GzipCodec(level=1)], index_location="start"),
    ),
    "index-no-crc": lambda: dict(
        chunks=(8, 10),
        serializer=ShardingCodec(chunk_shape=(4, 5), codecs=[BytesCodec()], index_codecs=[BytesCodec()]),
    ),
    "index-no-crc-start": lambda: dict(
        chunks=(8, 10),
        serializer=ShardingCodec(
            chunk_shape=(4, 5), codecs=[BytesCodec()], index_codecs=[BytesCodec()], index_location="start"
        ),
    ),
    "index-big-endian": lambda: dict(
        chunks=(8, 10),
        serializer=ShardingCodec(
            chunk_shape=(4, 5), codecs=[BytesCodec()], index_codecs=[BytesCodec(endian="big"), Crc32cCodec()]
        ),
    ),
    "inner-big-endian-crc": lambda: dict(
        chunks=(8, 10),
        serializer=ShardingCodec(
            chunk_shape=(2, 5), codecs=[BytesCodec(endian="big"), ZstdCodec(level=1), Crc32cCodec()]
        ),
    ),
    "inner-transpose": lambda: dict(
        chunks=(8, 10),
        serializer=ShardingCodec(
            chunk_shape=(4, 5), codecs=[TransposeCodec(order=(1, 0)), BytesCodec(endian="big"), GzipCodec(level=1)]
        ),
    ),
    "outer-transpose": lambda: dict(
        chunks=(8, 10),
        filters=[TransposeCodec(order=(1, 0))],
        serializer=ShardingCodec(chunk_shape=(2, 2), codecs=[BytesCodec(), ZstdCodec(level=1)]),
    ),
    "shard-bigger-than-array": lambda: dict(chunks=(4, 4), shards=(32, 32), compressors=ZstdCodec(level=1)),
}


@pytest.mark.parametrize("dtype", ["uint8", "float32", "complex128"])
@pytest.mark.parametrize("name", list(SHARDINGS))
def test_sharding(writer, make_data, check_read, identical, name, dtype):
    data = make_data((21, 23), dtype, seed=26)  # edge shards and edge inner chunks
    kwargs = SHARDINGS[name]()
    kwargs.setdefault("compressors", None)
    path = writer.v3(data, name=name, **kwargs)
    check_read(path)
    check_read(path, [(slice(4, 8), slice(5, 10)), (9, slice(None)), (slice(None), 22), (20, 22)])
    identical(ngffcore.open_array(path)[...], data)


@pytest.mark.parametrize("index_location", ["start", "end"])
@pytest.mark.parametrize("fill", [0, 3.5, float("nan")])
def test_sharding_empty_inner_chunks(writer, check_read, identical, with_fill, index_location, fill):
    """Inner chunks equal to the fill value are omitted by zarr (index entry 2**64-1) and
    whole empty shards are not written at all: both must read as fill."""
    data = np.full((16, 20), fill, dtype="float32")
    data[0:4, 0:5] = 1.0  # one inner chunk of shard (0, 0)
    data[9, 17] = 2.0  # one inner chunk of shard (1, 1)
    data[4:8, 10:15] = fill  # explicitly written, all fill -> omitted
    sc = ShardingCodec(chunk_shape=(4, 5), codecs=[BytesCodec(), ZstdCodec(level=1)], index_location=index_location)
    path = writer.v3(data, chunks=(8, 10), serializer=sc, fill_value=fill)
    shard_files = sorted(
        os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(os.path.join(path, "c")) for f in fs
    )
    assert shard_files == [os.path.join("c", "0", "0"), os.path.join("c", "1", "1")]
    check_read(path)
    identical(ngffcore.open_array(path)[...], data)


def test_sharding_missing_shards_partial_write(writer, make_data, check_read, identical, with_fill):
    data = make_data((30, 30), "int64", seed=27)
    region = (slice(3, 11), slice(12, 29))
    path = writer.v3(data, chunks=(5, 5), shards=(10, 10), compressors=None, fill_value=-1, region=region)
    check_read(path)
    identical(ngffcore.open_array(path)[...], with_fill(data, region, -1))


@pytest.mark.parametrize("inner_location", ["start", "end"])
@pytest.mark.parametrize("outer_location", ["start", "end"])
def test_nested_sharding(writer, make_data, check_read, identical, inner_location, outer_location):
    data = make_data((24, 20), "float32", seed=28)
    data[8:16, 10:20] = 0  # an all-fill inner shard
    inner = ShardingCodec(
        chunk_shape=(2, 5), codecs=[BytesCodec(endian="big"), ZstdCodec(level=3)], index_location=inner_location
    )
    outer = ShardingCodec(chunk_shape=(4, 5), codecs=[inner], index_location=outer_location)
    path = writer.v3(data, chunks=(8, 10), serializer=outer, fill_value=0)
    check_read(path)
    check_read(path, [(slice(1, 3), slice(4, 6)), (17, 9), (slice(None), 0)])
    identical(ngffcore.open_array(path)[...], data)


def test_nested_sharding_three_levels(writer, make_data, check_read, identical):
    data = make_data((16, 16), "uint16", seed=29)
    l3 = ShardingCodec(chunk_shape=(1, 2), codecs=[BytesCodec(), GzipCodec(level=1)])
    l2 = ShardingCodec(chunk_shape=(2, 4), codecs=[l3], index_location="start")
    l1 = ShardingCodec(chunk_shape=(4, 8), codecs=[l2], index_codecs=[BytesCodec()])
    path = writer.v3(data, chunks=(8, 16), serializer=l1)
    check_read(path)
    identical(ngffcore.open_array(path)[...], data)


# --------------------------------------------------------------------------------------
# fill values
# --------------------------------------------------------------------------------------

HAND_FILLS = [
    ("float32", "NaN", np.float32("nan")),
    ("float64", "Infinity", np.float64("inf")),
    ("float16", "-Infinity", np.float16("-inf")),
    ("float32", "0x7fc00001", np.array([0x7FC00001], "u4").view("f4")[0]),
    ("float32", "0xffc00000", np.array([0xFFC00000], "u4").view("f4")[0]),
    ("float32", "0x80000000", np.float32(-0.0)),
    ("float64", "0x7ff8000000000001", np.array([0x7FF8000000000001], "u8").view("f8")[0]),
    ("float64", "0x3ff0000000000000", np.float64(1.0)),
    ("float16", "0x7e01", np.array([0x7E01], "u2").view("f2")[0]),
    ("float16", "0x3c00", np.float16(1.0)),
    ("float64", -0.0, np.float64(-0.0)),
    ("float32", 1.5, np.float32(1.5)),
    ("complex64", [1.0, -2.0], np.complex64(1 - 2j)),
    ("complex128", ["NaN", "Infinity"], np.complex128(complex(float("nan"), float("inf")))),
    ("complex64", ["0x7fc00001", "-Infinity"], np.array([0x7FC00001, 0xFF800000], "u4").view("c8")[0]),
    ("complex128", [-0.0, "0x7ff8000000000001"], np.array([1 << 63, 0x7FF8000000000001], "u8").view("c16")[0]),
    ("bool", True, np.True_),
    ("bool", False, np.False_),
    ("int8", -128, np.int8(-128)),
    ("int64", -(2**63), np.int64(-(2**63))),
    ("uint64", 2**64 - 1, np.uint64(2**64 - 1)),
    ("uint16", 65535, np.uint16(65535)),
]


@pytest.mark.parametrize("sharded", [False, True])
@pytest.mark.parametrize(("dtype", "fill_json", "fill"), HAND_FILLS, ids=[f"{d}-{f}" for d, f, _ in HAND_FILLS])
def test_fill_value_forms(writer, make_data, check_read, identical, metadata_tools, dtype, fill_json, fill, sharded):
    """Fill values in every JSON form the spec allows, patched into zarr.json by hand."""
    data = make_data((12, 10), dtype, seed=30)
    region = (slice(0, 4), slice(0, 5))
    kwargs = dict(chunks=(2, 5), shards=(4, 5)) if sharded else dict(chunks=(4, 5))
    path = writer.v3(data, compressors=ZstdCodec(level=1), region=region, **kwargs)
    metadata_tools.patch(path, fill_value=fill_json)
    if fill_json != "0x7e01":
        # zarr-python 3.1.6 drops the payload of a float16 hex NaN fill (reads 0x7e00):
        # there the spec (raw bit pattern) is the reference, checked below.
        check_read(path)
    expected = np.full(data.shape, fill, dtype=data.dtype)
    expected[region] = data[region]
    arr = ngffcore.open_array(path)
    identical(arr[...], expected)
    # the reported fill value is the same bit pattern
    assert np.asarray(arr.fill_value, dtype=data.dtype).tobytes() == np.asarray(fill, dtype=data.dtype).tobytes()


@pytest.mark.parametrize("fill", [float("nan"), float("inf"), float("-inf")])
def test_fill_value_written_by_zarr(writer, make_data, check_read, fill):
    data = make_data((12, 10), "float64", seed=31)
    path = writer.v3(data, chunks=(4, 5), fill_value=fill, region=(slice(4, 8), slice(None)))
    check_read(path)


# --------------------------------------------------------------------------------------
# zstd frames without a content size in the frame header
# --------------------------------------------------------------------------------------


def _zstd_no_content_size(raw: bytes, how: str) -> bytes:
    if how == "one-shot":
        frame = zstandard.ZstdCompressor(level=3, write_content_size=False).compress(raw)
    elif how == "one-shot-checksum":
        frame = zstandard.ZstdCompressor(level=3, write_content_size=False, write_checksum=True).compress(raw)
    else:  # streaming, several blocks
        buf = io.BytesIO()
        cctx = zstandard.ZstdCompressor(level=1)
        with cctx.stream_writer(buf, closefd=False) as w:
            step = max(1, len(raw) // 5)
            for i in range(0, len(raw), step):
                w.write(raw[i : i + step])
                w.flush(zstandard.FLUSH_BLOCK)
        frame = buf.getvalue()
    params = zstandard.get_frame_parameters(frame)
    assert params.content_size == zstandard.CONTENTSIZE_UNKNOWN
    return frame


@pytest.mark.parametrize("how", ["one-shot", "one-shot-checksum", "streaming"])
@pytest.mark.parametrize("fmt", [2, 3])
def test_zstd_frame_without_content_size(writer, make_data, check_read, identical, how, fmt):
    import numcodecs

    data = make_data((40, 30), "<u4", seed=32)
    chunks = (16, 16)
    if fmt == 3:
        path = writer.v3(data, chunks=chunks, compressors=ZstdCodec(level=1))
        key = lambda i, j: os.path.join(path, "c", str(i), str(j))  # noqa: E731
    else:
        path = writer.v2(data, chunks=chunks, compressor=numcodecs.Zstd(level=1))
        key = lambda i, j: os.path.join(path, f"{i}.{j}")  # noqa: E731
    # re-encode every chunk (including the edge chunks, padded to the full chunk shape)
    for i in range(3):
        for j in range(2):
            block = np.zeros(chunks, dtype="<u4")
            part = data[i * 16 : (i + 1) * 16, j * 16 : (j + 1) * 16]
            block[: part.shape[0], : part.shape[1]] = part
            with open(key(i, j), "wb") as f:
                f.write(_zstd_no_content_size(block.tobytes(), how))
    check_read(path)
    identical(ngffcore.open_array(path)[...], data)


def test_many_inner_chunks(writer, make_data, check_read, identical):
    """~1 MB, 16 shards x 64 inner chunks: reads spanning many batches / workers."""
    data = make_data((512, 512), "float32", seed=33)
    path = writer.v3(data, chunks=(32, 32), shards=(128, 128), compressors=ZstdCodec(level=1))
    check_read(path, [Ellipsis, (slice(5, 500), slice(17, 511)), (300, slice(None)), (slice(None), 31)])
    identical(ngffcore.open_array(path)[...], data)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "bool"])
def test_bytes_codec_without_configuration(writer, make_data, metadata_tools, check_read, identical, dtype):
    """For one-byte types the spec allows ``{"name": "bytes"}`` with no endian."""
    data = make_data((9, 7), dtype, seed=34)
    path = writer.v3(data, chunks=(4, 4), compressors=None)
    metadata_tools.patch(path, codecs=[{"name": "bytes"}])
    check_read(path)
    identical(ngffcore.open_array(path)[...], data)
