"""Bad chunks, bad shards and bad / hostile metadata: each case raises the specific ngffcore
exception (never crashes), and chunk errors name the chunk key."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import struct
import zlib

import numcodecs
import numpy as np
import pytest
import zstandard
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, GzipCodec, ShardingCodec, ZstdCodec

import ngffcore

# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), written out here so the test depends on no crc library."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def test_crc32c_helper_known_value():
    assert crc32c(b"123456789") == 0xE3069283  # RFC 3720 check value


def chunk_file(path: str, key: str) -> str:
    return os.path.join(path, *key.split("/"))


def read_bytes(p: str) -> bytes:
    with open(p, "rb") as f:
        return f.read()


def write_bytes(p: str, b: bytes) -> None:
    with open(p, "wb") as f:
        f.write(b)


def expect_chunk_error(path: str, key: str, exc_type: type[Exception], selections=(Ellipsis,)):
    """Reading ``selections`` (each touching chunk ``key``) raises ``exc_type`` naming ``key``."""
    arr = ngffcore.open_array(path)
    for sel in selections:
        with pytest.raises(exc_type) as info:
            arr[sel]
        assert key in str(info.value), f"chunk key {key!r} not in message: {info.value}"
        if isinstance(info.value, ngffcore.DecodeError) or isinstance(info.value, ngffcore.StoreError):
            # the key may carry more detail (e.g. the inner chunk of a shard: "c/0/1[0]")
            assert info.value.key is not None and key in str(info.value.key), info.value.key
    return info.value


def _data(make_data, dtype="<u2"):
    return make_data((20, 20), dtype, seed=60)


# --------------------------------------------------------------------------------------
# bad chunks
# --------------------------------------------------------------------------------------

V2_CODECS = {
    "blosc": lambda: numcodecs.Blosc(cname="lz4", shuffle=1),
    "blosc-zstd": lambda: numcodecs.Blosc(cname="zstd", shuffle=2),
    "zstd": lambda: numcodecs.Zstd(level=1),
    "zlib": lambda: numcodecs.Zlib(level=1),
    "gzip": lambda: numcodecs.GZip(level=1),
    "lz4": lambda: numcodecs.LZ4(),
    "bz2": lambda: numcodecs.BZ2(),
    "lzma": lambda: numcodecs.LZMA(),
    "none": lambda: None,
}

V3_CODECS = {
    "bytes": lambda: None,
    "zstd": lambda: ZstdCodec(level=1),
    "gzip": lambda: GzipCodec(level=1),
    "blosc": lambda: BloscCodec(cname="lz4", shuffle="shuffle"),
    "crc32c": lambda: Crc32cCodec(),
}


def _v2_array(writer, make_data, codec, separator="."):
    path = writer.v2(_data(make_data), chunks=(8, 8), compressor=V2_CODECS[codec](), separator=separator)
    return path, "0.1" if separator == "." else "0/1"


def _v3_array(writer, make_data, codec):
    path = writer.v3(_data(make_data), chunks=(8, 8), compressors=V3_CODECS[codec]())
    return path, "c/0/1"


@pytest.fixture(scope="module")
def pristine(writer, make_data):
    """``pristine(fmt, codec)`` -> checks that an intact array of that codec still reads
    correctly, i.e. a bad chunk left no poisoned decoder state behind (per worker)."""
    cache: dict[tuple[str, str], str] = {}

    def check(fmt: str, codec: str) -> None:
        if (fmt, codec) not in cache:
            cache[fmt, codec] = (_v2_array if fmt == "v2" else _v3_array)(writer, make_data, codec)[0]
        arr = ngffcore.open_array(cache[fmt, codec])
        data = _data(make_data)
        for _ in range(4):  # enough batches to reach every worker of the pool
            got = arr[...]
            assert got.dtype == data.dtype and got.tobytes() == data.tobytes(), (
                f"intact {fmt} {codec} array reads wrong data after a bad chunk was decoded"
            )

    return check


@pytest.mark.parametrize("keep", ["half", "minus1", "one", "empty"])
@pytest.mark.parametrize("fmt_codec", [f"v2-{c}" for c in V2_CODECS] + [f"v3-{c}" for c in V3_CODECS])
def test_truncated_chunk(writer, make_data, pristine, fmt_codec, keep):
    fmt, codec = fmt_codec.split("-", 1)
    path, key = (_v2_array if fmt == "v2" else _v3_array)(writer, make_data, codec)
    p = chunk_file(path, key)
    raw = read_bytes(p)
    n = {"half": len(raw) // 2, "minus1": len(raw) - 1, "one": 1, "empty": 0}[keep]
    write_bytes(p, raw[:n])
    expect_chunk_error(path, key, ngffcore.DecodeError, [Ellipsis, (slice(0, 8), slice(8, 16)), (3, 12)])
    pristine(fmt, codec)


def test_truncated_chunk_slash_separator(writer, make_data):
    path, key = _v2_array(writer, make_data, "zstd", separator="/")
    p = chunk_file(path, key)
    write_bytes(p, read_bytes(p)[:7])
    expect_chunk_error(path, key, ngffcore.DecodeError)


def test_other_chunks_still_readable(writer, make_data, identical):
    """A bad chunk fails only the reads that touch it."""
    data = _data(make_data)
    path, key = _v2_array(writer, make_data, "blosc")
    write_bytes(chunk_file(path, key), b"garbage")
    arr = ngffcore.open_array(path)
    identical(arr[0:8, 0:8], data[0:8, 0:8])
    identical(arr[8:20, :], data[8:20, :])
    with pytest.raises(ngffcore.DecodeError):
        arr[0:8, 0:9]


# blosc header: version, versionlz, flags, typesize, nbytes(u32), blocksize(u32), cbytes(u32).
# Only corruptions that leave the frame inconsistent (c-blosc / numcodecs reject them, or the
# header claims more compressed bytes than the object holds); a changed typesize or blocksize
# can still describe a decodable frame.
BLOSC_HEADER_CORRUPTIONS = {
    "nbytes-huge": (4, struct.pack("<I", 0x7FFFFFFF)),
    "nbytes-small": (4, struct.pack("<I", 16)),
    "nbytes-zero": (4, struct.pack("<I", 0)),
    "cbytes-huge": (12, struct.pack("<I", 0x7FFFFFF0)),
    "cbytes-small": (12, struct.pack("<I", 17)),
    "blocksize-zero": (8, struct.pack("<I", 0)),
    "blocksize-huge": (8, struct.pack("<I", 0xFFFFFFFF)),
    "typesize-zero": (3, b"\x00"),
    "flags-ff": (2, b"\xff"),
    "all-ff": (0, b"\xff" * 16),
    "all-zero": (0, b"\x00" * 16),
}


@pytest.mark.parametrize("fmt", ["v2", "v3"])
@pytest.mark.parametrize("corruption", list(BLOSC_HEADER_CORRUPTIONS))
def test_corrupted_blosc_header(writer, make_data, pristine, corruption, fmt):
    if fmt == "v2":
        path, key = _v2_array(writer, make_data, "blosc")
    else:
        path, key = _v3_array(writer, make_data, "blosc")
    p = chunk_file(path, key)
    raw = bytearray(read_bytes(p))
    off, patch = BLOSC_HEADER_CORRUPTIONS[corruption]
    raw[off : off + len(patch)] = patch
    write_bytes(p, bytes(raw))
    expect_chunk_error(path, key, ngffcore.DecodeError, [Ellipsis, (3, 12), (slice(0, 8), slice(9, 11))])
    pristine(fmt, "blosc")


# chunk = 8 x 8 uint16 = 128 bytes; replacement frames decode to other sizes
def _blosc(raw: bytes) -> bytes:
    return numcodecs.Blosc(cname="lz4", shuffle=1, typesize=2).encode(raw)


def _lz4(raw: bytes) -> bytes:
    return numcodecs.LZ4().encode(raw)


def _zstd(raw: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=1).compress(raw)


def _zstd_nosize(raw: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=1, write_content_size=False).compress(raw)


WRONG_SIZE_FRAMES = {
    "v2-blosc": ("v2", "blosc", _blosc),
    "v2-blosc-zstd": ("v2", "blosc-zstd", _blosc),
    "v2-zstd": ("v2", "zstd", _zstd),
    "v2-zstd-no-content-size": ("v2", "zstd", _zstd_nosize),
    "v2-zlib": ("v2", "zlib", lambda r: zlib.compress(r)),
    "v2-gzip": ("v2", "gzip", lambda r: gzip.compress(r)),
    "v2-lz4": ("v2", "lz4", _lz4),
    "v2-bz2": ("v2", "bz2", lambda r: bz2.compress(r)),
    "v2-none": ("v2", "none", lambda r: r),
    "v3-bytes": ("v3", "bytes", lambda r: r),
    "v3-zstd": ("v3", "zstd", _zstd),
    "v3-zstd-no-content-size": ("v3", "zstd", _zstd_nosize),
    "v3-gzip": ("v3", "gzip", lambda r: gzip.compress(r)),
    "v3-blosc": ("v3", "blosc", _blosc),
    "v3-crc32c": ("v3", "crc32c", lambda r: r + struct.pack("<I", crc32c(r))),
}


@pytest.mark.parametrize("size", [64, 126, 130, 256, 4096])
@pytest.mark.parametrize("case", list(WRONG_SIZE_FRAMES))
def test_decoded_size_wrong(writer, make_data, pristine, case, size):
    fmt, codec, encode = WRONG_SIZE_FRAMES[case]
    path, key = (_v2_array if fmt == "v2" else _v3_array)(writer, make_data, codec)
    payload = (np.arange(size, dtype=np.uint8) * 7).tobytes()  # valid frame, wrong size
    write_bytes(chunk_file(path, key), encode(payload))
    expect_chunk_error(path, key, ngffcore.DecodeError, [Ellipsis, (3, 12), (slice(0, 8), slice(8, 16))])
    pristine(fmt, codec)


def test_lz4_size_header_lies(writer, make_data):
    """numcodecs' LZ4 frame = u32 size + raw block; a size header larger than the block."""
    path, key = _v2_array(writer, make_data, "lz4")
    p = chunk_file(path, key)
    raw = bytearray(read_bytes(p))
    raw[0:4] = struct.pack("<I", 0x7FFFFFFF)
    write_bytes(p, bytes(raw))
    expect_chunk_error(path, key, ngffcore.DecodeError)


@pytest.mark.parametrize("where", ["data", "checksum"])
def test_crc32c_mismatch(writer, make_data, where):
    path, key = _v3_array(writer, make_data, "crc32c")
    p = chunk_file(path, key)
    raw = bytearray(read_bytes(p))
    raw[5 if where == "data" else -2] ^= 0x01
    write_bytes(p, bytes(raw))
    expect_chunk_error(path, key, ngffcore.DecodeError, [Ellipsis, (3, 12)])


def test_crc32c_mismatch_after_gzip(writer, make_data):
    data = _data(make_data)
    path = writer.v3(data, chunks=(8, 8), compressors=(GzipCodec(level=1), Crc32cCodec()))
    p = chunk_file(path, "c/1/0")
    raw = bytearray(read_bytes(p))
    raw[-1] ^= 0x80
    write_bytes(p, bytes(raw))
    expect_chunk_error(path, "c/1/0", ngffcore.DecodeError)


def test_chunk_is_a_directory(writer, make_data):
    """An I/O failure reading a chunk object is a StoreError (an OSError) naming the key."""
    path, key = _v2_array(writer, make_data, "zstd")
    p = chunk_file(path, key)
    os.remove(p)
    os.mkdir(p)
    err = expect_chunk_error(path, key, ngffcore.StoreError)
    assert isinstance(err, OSError)


# --------------------------------------------------------------------------------------
# bad shards
# --------------------------------------------------------------------------------------

SHARD_KEY = "c/0/1"
N_INNER = 4  # (8, 10) shard of (4, 5) inner chunks


def _sharded(writer, make_data, location="end", crc=True, inner_crc=False):
    data = make_data((16, 20), "<u2", seed=61)
    codecs = [BytesCodec(), ZstdCodec(level=1)] + ([Crc32cCodec()] if inner_crc else [])
    index_codecs = [BytesCodec(), Crc32cCodec()] if crc else [BytesCodec()]
    sc = ShardingCodec(chunk_shape=(4, 5), codecs=codecs, index_codecs=index_codecs, index_location=location)
    path = writer.v3(data, chunks=(8, 10), serializer=sc)
    return path, chunk_file(path, SHARD_KEY)


def _index_span(raw: bytes, location: str, crc: bool) -> tuple[int, int]:
    size = N_INNER * 16 + (4 if crc else 0)
    return (0, size) if location == "start" else (len(raw) - size, len(raw))


def _rewrite_index(p: str, location: str, crc: bool, mutate) -> None:
    raw = bytearray(read_bytes(p))
    start, stop = _index_span(raw, location, crc)
    n = N_INNER * 16
    entries = list(struct.unpack(f"<{2 * N_INNER}Q", raw[start : start + n]))
    mutate(entries, len(raw))
    body = struct.pack(f"<{2 * N_INNER}Q", *entries)
    raw[start : start + n] = body
    if crc:
        raw[start + n : stop] = struct.pack("<I", crc32c(body))
    write_bytes(p, bytes(raw))


def _sanity_index(p: str, location: str, crc: bool) -> None:
    """The parsed index of the pristine shard is what the spec says (guards the helpers)."""
    raw = read_bytes(p)
    start, stop = _index_span(raw, location, crc)
    body = raw[start : start + N_INNER * 16]
    if crc:
        assert struct.unpack("<I", raw[start + N_INNER * 16 : stop])[0] == crc32c(body)
    entries = struct.unpack(f"<{2 * N_INNER}Q", body)
    for off, nb in zip(entries[0::2], entries[1::2]):
        assert off + nb <= len(raw)


INDEX_MUTATIONS = {
    "offset-past-end": lambda e, n: e.__setitem__(2, n + 100),
    "offset-at-end": lambda e, n: e.__setitem__(2, n),
    "length-past-end": lambda e, n: e.__setitem__(3, n),
    "length-huge": lambda e, n: e.__setitem__(3, 2**63),
    "offset-plus-length-overflows": lambda e, n: (e.__setitem__(2, 2**64 - 8), e.__setitem__(3, 16)),
    "offset-sentinel-only": lambda e, n: e.__setitem__(2, 2**64 - 1),
    "length-sentinel-only": lambda e, n: e.__setitem__(3, 2**64 - 1),
}


@pytest.mark.parametrize("crc", [True, False])
@pytest.mark.parametrize("location", ["start", "end"])
@pytest.mark.parametrize("mutation", list(INDEX_MUTATIONS))
def test_shard_index_points_outside(writer, make_data, mutation, location, crc):
    path, p = _sharded(writer, make_data, location, crc)
    _sanity_index(p, location, crc)
    _rewrite_index(p, location, crc, INDEX_MUTATIONS[mutation])
    # inner chunk 1 of shard (0, 1) covers rows 0:4, columns 15:20
    expect_chunk_error(path, SHARD_KEY, ngffcore.ShardIndexError, [Ellipsis, (2, 17), (slice(0, 4), slice(15, 20))])


def test_shard_index_rewrite_is_faithful(writer, make_data, identical):
    """Rewriting the index unchanged keeps the array readable (guards the helpers above)."""
    path, p = _sharded(writer, make_data)
    _rewrite_index(p, "end", True, lambda e, n: None)
    identical(ngffcore.open_array(path)[...], make_data((16, 20), "<u2", seed=61))


@pytest.mark.parametrize("location", ["start", "end"])
@pytest.mark.parametrize("keep", [0, 1, 10, N_INNER * 16 + 3])
def test_truncated_shard_index(writer, make_data, location, keep):
    """Shard object shorter than its index."""
    path, p = _sharded(writer, make_data, location)
    raw = read_bytes(p)
    write_bytes(p, raw[:keep] if location == "start" else raw[len(raw) - keep :] if keep else b"")
    expect_chunk_error(path, SHARD_KEY, ngffcore.ShardIndexError, [Ellipsis, (2, 17)])


def test_truncated_shard_body(writer, make_data):
    """index_location=start, file cut after the index: entries point past the end."""
    path, p = _sharded(writer, make_data, "start")
    raw = read_bytes(p)
    write_bytes(p, raw[: N_INNER * 16 + 4 + 3])
    expect_chunk_error(path, SHARD_KEY, ngffcore.ShardIndexError, [Ellipsis, (2, 17)])


@pytest.mark.parametrize("location", ["start", "end"])
def test_shard_index_crc_mismatch(writer, make_data, location):
    path, p = _sharded(writer, make_data, location)
    raw = bytearray(read_bytes(p))
    start, _ = _index_span(raw, location, True)
    raw[start + 3] ^= 0x10  # inside the first entry's offset
    write_bytes(p, bytes(raw))
    expect_chunk_error(path, SHARD_KEY, ngffcore.DecodeError, [Ellipsis, (2, 17)])


def test_inner_chunk_crc_mismatch(writer, make_data):
    path, p = _sharded(writer, make_data, "end", inner_crc=True)
    raw = bytearray(read_bytes(p))
    entries = struct.unpack(f"<{2 * N_INNER}Q", raw[-(N_INNER * 16 + 4) : -4])
    off, nb = entries[0], entries[1]
    raw[off + nb - 1] ^= 0xFF  # last byte of inner chunk 0's crc32c
    write_bytes(p, bytes(raw))
    expect_chunk_error(path, SHARD_KEY, ngffcore.DecodeError, [Ellipsis, (0, 10)])


def test_inner_chunk_truncated_via_index(writer, make_data):
    """Index entry shortened: the inner zstd frame is cut, the index itself is consistent."""
    path, p = _sharded(writer, make_data, "end")
    _rewrite_index(p, "end", True, lambda e, n: e.__setitem__(1, max(1, e[1] // 2)))
    expect_chunk_error(path, SHARD_KEY, ngffcore.DecodeError, [Ellipsis, (0, 10)])


# --------------------------------------------------------------------------------------
# metadata: not found, malformed, unsupported
# --------------------------------------------------------------------------------------


def test_not_found_nonexistent(tmp_path):
    with pytest.raises(ngffcore.NotFoundError) as info:
        ngffcore.open_array(str(tmp_path / "does-not-exist"))
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, ngffcore.NgffError)


def test_not_found_empty_directory(tmp_path):
    with pytest.raises(ngffcore.NotFoundError):
        ngffcore.open_array(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        ngffcore.open_array(tmp_path.as_uri())


MALFORMED_JSON = {
    "truncated": b'{"zarr_format": 3, "shape": [4',
    "empty": b"",
    "not-json": b"hello",
    "list": b"[1, 2, 3]",
    "string": b'"zarr"',
    "null": b"null",
    "bad-utf8": b'{"zarr_format": 3, "x": "\xff\xfe"}',
    "trailing-garbage": b'{"zarr_format": 3} xyz',
}


@pytest.mark.parametrize("fmt", ["v2", "v3"])
@pytest.mark.parametrize("case", list(MALFORMED_JSON))
def test_malformed_metadata_json(writer, make_data, case, fmt):
    data = _data(make_data)
    if fmt == "v2":
        path = writer.v2(data, chunks=(8, 8))
        meta = os.path.join(path, ".zarray")
    else:
        path = writer.v3(data, chunks=(8, 8))
        meta = os.path.join(path, "zarr.json")
    write_bytes(meta, MALFORMED_JSON[case])
    with pytest.raises(ngffcore.MetadataError) as info:
        ngffcore.open_array(path)
    assert isinstance(info.value, ValueError)
    assert hasattr(info.value, "path")


def _check_unsupported(path, *names):
    with pytest.raises(ngffcore.UnsupportedError) as info:
        ngffcore.open_array(path)
    msg = str(info.value)
    assert isinstance(info.value, ngffcore.MetadataError) and isinstance(info.value, ValueError)
    for name in names:
        assert name in msg, f"{name!r} not in {msg!r}"
    return msg


def test_unknown_v2_compressor(writer, make_data, metadata_tools):
    path = writer.v2(_data(make_data), chunks=(8, 8))
    metadata_tools.patch(path, compressor={"id": "nosuchcodec", "level": 3})
    # names the offender and lists what is supported
    _check_unsupported(path, "nosuchcodec", "blosc", "zstd", "zlib", "gzip", "lz4")


def test_unknown_v2_filter(writer, make_data, metadata_tools):
    path = writer.v2(_data(make_data), chunks=(8, 8))
    metadata_tools.patch(path, filters=[{"id": "fixedscaleoffset", "offset": 0, "scale": 1, "dtype": "<u2"}])
    _check_unsupported(path, "fixedscaleoffset", "delta")


@pytest.mark.parametrize("position", ["bytes-bytes", "array-bytes", "array-array"])
def test_unknown_v3_codec(writer, make_data, metadata_tools, position):
    path = writer.v3(_data(make_data), chunks=(8, 8))
    bytes_codec = {"name": "bytes", "configuration": {"endian": "little"}}
    unknown = {"name": "nosuchcodec", "configuration": {}}
    codecs = {
        "bytes-bytes": [bytes_codec, unknown],
        "array-bytes": [unknown],
        "array-array": [unknown, bytes_codec],
    }[position]
    metadata_tools.patch(path, codecs=codecs)
    _check_unsupported(path, "nosuchcodec", "zstd", "gzip", "blosc", "crc32c")


@pytest.mark.parametrize("dtype", ["<M8[ns]", "|S4", "<U3", "|V2", "|O"])
def test_unsupported_v2_dtype(writer, make_data, metadata_tools, dtype):
    path = writer.v2(_data(make_data), chunks=(8, 8))
    metadata_tools.patch(path, dtype=dtype, fill_value=None)
    with pytest.raises(ngffcore.MetadataError):
        ngffcore.open_array(path)


@pytest.mark.parametrize("dtype", ["string", "float8_e4m3", "r16", "nosuchtype", "numpy.datetime64"])
def test_unsupported_v3_dtype(writer, make_data, metadata_tools, dtype):
    path = writer.v3(_data(make_data), chunks=(8, 8))
    metadata_tools.patch(path, data_type=dtype, fill_value=0)
    with pytest.raises(ngffcore.MetadataError):
        ngffcore.open_array(path)


def test_unsupported_v3_chunk_grid(writer, make_data, metadata_tools):
    path = writer.v3(_data(make_data), chunks=(8, 8))
    metadata_tools.patch(path, chunk_grid={"name": "rectilinear", "configuration": {"chunk_shapes": [[8, 12], [20]]}})
    _check_unsupported(path, "rectilinear", "regular")


def test_unsupported_storage_transformer(writer, make_data, metadata_tools):
    path = writer.v3(_data(make_data), chunks=(8, 8))
    metadata_tools.patch(path, storage_transformers=[{"name": "nosuchtransformer"}])
    with pytest.raises(ngffcore.MetadataError):
        ngffcore.open_array(path)


# --------------------------------------------------------------------------------------
# hostile metadata: MetadataError at open time, never a crash
# --------------------------------------------------------------------------------------

V2_HOSTILE = {
    "negative-shape": {"shape": [-1, 20]},
    "negative-chunk": {"chunks": [8, -8]},
    "zero-chunk": {"chunks": [0, 8]},
    "chunk-rank-mismatch": {"chunks": [8, 8, 8]},
    "chunk-rank-short": {"chunks": [8]},
    "shape-product-overflow": {"shape": [2**32, 2**32], "chunks": [2**31, 2**31]},
    "shape-product-overflow-3d": {"shape": [2**22, 2**22, 2**22], "chunks": [1, 1, 1]},
    "shape-element-2^63": {"shape": [2**63, 1], "chunks": [1, 1]},
    "shape-element-2^64": {"shape": [2**64, 1], "chunks": [1, 1]},
    "chunk-element-2^64": {"chunks": [2**64, 1]},
    "chunk-bytes-overflow": {"chunks": [2**33, 2**33]},
    "shape-float": {"shape": [20.5, 20]},
    "shape-bool": {"shape": [True, 20]},
    "shape-string": {"shape": "20,20"},
    "shape-null": {"shape": None},
    "chunks-null": {"chunks": None},
    "shape-missing": {"shape": "__delete__"},
    "chunks-missing": {"chunks": "__delete__"},
    "dtype-missing": {"dtype": "__delete__"},
    "dtype-garbage": {"dtype": "<q7"},
    "dtype-number": {"dtype": 5},
    "order-bad": {"order": "X"},
    "zarr-format-bad": {"zarr_format": 4},
    "separator-bad": {"dimension_separator": "-"},
    "fill-string-for-int": {"fill_value": "abc"},
    "fill-out-of-range": {"fill_value": 70000},
    "fill-list-for-int": {"fill_value": [1, 2]},
    "compressor-not-object": {"compressor": "zstd"},
    "compressor-no-id": {"compressor": {"level": 1}},
    "filters-not-list": {"filters": {"id": "delta", "dtype": "<u2"}},
    "delta-dtype-bad": {"filters": [{"id": "delta", "dtype": "<q7"}]},
}


@pytest.mark.parametrize("case", list(V2_HOSTILE))
def test_hostile_v2_metadata(writer, make_data, metadata_tools, case):
    path = writer.v2(_data(make_data), chunks=(8, 8), compressor=numcodecs.Zstd(level=1))
    metadata_tools.patch(path, **V2_HOSTILE[case])
    with pytest.raises(ngffcore.MetadataError):
        ngffcore.open_array(path)


def _grid(shape):
    return {"name": "regular", "configuration": {"chunk_shape": shape}}


def _shard_codec(inner, **extra):
    conf = {
        "chunk_shape": inner,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
        "index_location": "end",
    }
    conf.update(extra)
    return [{"name": "sharding_indexed", "configuration": conf}]


_BYTES_LE = {"name": "bytes", "configuration": {"endian": "little"}}

V3_HOSTILE = {
    "negative-shape": {"shape": [20, -20]},
    "zero-chunk": {"chunk_grid": _grid([8, 0])},
    "negative-chunk": {"chunk_grid": _grid([-8, 8])},
    "chunk-rank-mismatch": {"chunk_grid": _grid([8, 8, 8])},
    "shape-product-overflow": {"shape": [2**32, 2**32], "chunk_grid": _grid([2**20, 2**20])},
    "shape-element-2^64": {"shape": [2**64, 1]},
    "chunk-bytes-overflow": {"chunk_grid": _grid([2**33, 2**33])},
    "shape-float": {"shape": [20.0, 20]},
    "shape-missing": {"shape": "__delete__"},
    "grid-missing": {"chunk_grid": "__delete__"},
    "grid-no-config": {"chunk_grid": {"name": "regular"}},
    "codecs-missing": {"codecs": "__delete__"},
    "codecs-empty": {"codecs": []},
    "codecs-no-array-bytes": {"codecs": [{"name": "zstd", "configuration": {"level": 1}}]},
    "codecs-two-array-bytes": {"codecs": [_BYTES_LE, _BYTES_LE]},
    "bytes-endian-bad": {"codecs": [{"name": "bytes", "configuration": {"endian": "middle"}}]},
    "zarr-format-2": {"zarr_format": 2},
    "node-type-group": {"node_type": "group"},
    "fill-missing": {"fill_value": "__delete__"},
    "fill-string-for-int": {"fill_value": "abc"},
    "fill-out-of-range": {"fill_value": 70000},
    "fill-float-for-int": {"fill_value": 1.5},
    "key-encoding-bad": {"chunk_key_encoding": {"name": "nosuch"}},
    "key-separator-bad": {"chunk_key_encoding": {"name": "default", "configuration": {"separator": "-"}}},
    "transpose-not-permutation": {
        "codecs": [{"name": "transpose", "configuration": {"order": [0, 0]}}, _BYTES_LE]
    },
    "transpose-wrong-rank": {
        "codecs": [{"name": "transpose", "configuration": {"order": [2, 1, 0]}}, _BYTES_LE]
    },
    "transpose-out-of-range": {
        "codecs": [{"name": "transpose", "configuration": {"order": [1, 5]}}, _BYTES_LE]
    },
    "shard-not-divisible": {"codecs": _shard_codec([3, 8])},
    "shard-inner-rank-mismatch": {"codecs": _shard_codec([4])},
    "shard-inner-zero": {"codecs": _shard_codec([0, 8])},
    "shard-index-location-bad": {"codecs": _shard_codec([4, 8], index_location="middle")},
    "shard-index-codecs-empty": {"codecs": _shard_codec([4, 8], index_codecs=[])},
}


@pytest.mark.parametrize("case", list(V3_HOSTILE))
def test_hostile_v3_metadata(writer, make_data, metadata_tools, case):
    path = writer.v3(_data(make_data), chunks=(8, 8))
    metadata_tools.patch(path, **V3_HOSTILE[case])
    with pytest.raises(ngffcore.MetadataError):
        ngffcore.open_array(path)


def test_huge_but_valid_array_is_lazy(writer, make_data, metadata_tools, identical):
    """A 2**40-element array with no chunks written opens and reads small regions as fill."""
    path = writer.v3(np.zeros((4,), dtype="int32"), chunks=(4,), fill_value=3, region=None)
    metadata_tools.patch(path, shape=[2**40], chunk_grid=_grid([2**20]))
    arr = ngffcore.open_array(path)
    assert arr.shape == (2**40,)
    assert arr.nbytes == 2**42
    identical(arr[2**40 - 5 :], np.full(5, 3, dtype="int32"))
    identical(arr[123456789:123456799], np.full(10, 3, dtype="int32"))


def test_metadata_is_json_object_with_extra_keys(writer, make_data, identical):
    """Unknown keys in .zarray are tolerated (zarr v2 allowed them)."""
    data = _data(make_data)
    path = writer.v2(data, chunks=(8, 8))
    meta_file = os.path.join(path, ".zarray")
    with open(meta_file, encoding="utf-8") as f:
        meta = json.load(f)
    meta["something_else"] = {"x": 1}
    with open(meta_file, "w", encoding="utf-8") as f:
        json.dump(meta, f)
    identical(ngffcore.open_array(path)[...], data)


# --------------------------------------------------------------------------------------
# blosc frames of several blocks: bad block table / stream sizes, partial reads
# --------------------------------------------------------------------------------------

BLOCK = 5  # block 5 of 16 (256 uint16 each) = rows 20..23 of a 64 x 64 chunk


@pytest.fixture
def multiblock(writer, make_data):
    """v2 array (64, 128), chunks (64, 64) of 16 zstd blosc blocks; returns (path, key, file)."""
    data = make_data((64, 128), "<u2", seed=62)
    comp = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=1, blocksize=512)
    path = writer.v2(data, chunks=(64, 64), compressor=comp)
    p = chunk_file(path, "0.1")
    raw = read_bytes(p)
    flags, nbytes, blocksize, cbytes = raw[2], *struct.unpack("<III", raw[4:16])
    assert not flags & 0x02 and nbytes == 8192 and blocksize == 512 and cbytes == len(raw)
    return path, "0.1", p


MULTIBLOCK_SELECTIONS = [(21, slice(70, 75)), (21, 70), (slice(20, 24), slice(64, 128)), Ellipsis]


@pytest.mark.parametrize("value", [0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, "len", "len+10", 2, 0])
def test_blosc_block_start_out_of_range(multiblock, pristine, value):
    path, key, p = multiblock
    raw = bytearray(read_bytes(p))
    v = {"len": len(raw), "len+10": len(raw) + 10}.get(value, value)
    raw[16 + 4 * BLOCK : 20 + 4 * BLOCK] = struct.pack("<I", v)
    write_bytes(p, bytes(raw))
    expect_chunk_error(path, key, ngffcore.DecodeError, MULTIBLOCK_SELECTIONS)
    pristine("v2", "blosc-zstd")


@pytest.mark.parametrize("value", [0xFFFFFFFF, 0x7FFFFFFF, 0x10000])
def test_blosc_stream_size_out_of_range(multiblock, value):
    """The int32 compressed size at the start of block 5's stream."""
    path, key, p = multiblock
    raw = bytearray(read_bytes(p))
    (start,) = struct.unpack("<i", raw[16 + 4 * BLOCK : 20 + 4 * BLOCK])
    raw[start : start + 4] = struct.pack("<I", value)
    write_bytes(p, bytes(raw))
    expect_chunk_error(path, key, ngffcore.DecodeError, MULTIBLOCK_SELECTIONS)


@pytest.mark.parametrize("sel", [(0, slice(64, 70)), (slice(0, 4), slice(64, 128)), (2, 100)], ids=repr)
def test_blosc_truncated_partial_read_of_intact_block(multiblock, sel):
    """Cut off the last blocks; a read needing only block 0 (still intact) must still notice
    that the frame is shorter than its header says."""
    path, key, p = multiblock
    raw = read_bytes(p)
    write_bytes(p, raw[: len(raw) * 3 // 4])
    expect_chunk_error(path, key, ngffcore.DecodeError, [sel, Ellipsis])
