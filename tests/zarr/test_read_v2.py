"""Zarr v2 arrays written by zarr-python, read by ngffcore, compared bit-exactly with zarr-python."""

from __future__ import annotations

import os

import numcodecs
import numpy as np
import pytest

import ngffcore

Blosc = numcodecs.Blosc

# --------------------------------------------------------------------------------------
# compressors
# --------------------------------------------------------------------------------------

BLOSC_CNAMES = ["lz4", "lz4hc", "blosclz", "zstd", "zlib"]
BLOSC_SHUFFLES = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}

COMPRESSORS = {
    **{
        f"blosc-{cname}-{sname}": Blosc(cname=cname, clevel=5, shuffle=shuffle)
        for cname in BLOSC_CNAMES
        for sname, shuffle in BLOSC_SHUFFLES.items()
    },
    "blosc-lz4-autoshuffle": Blosc(cname="lz4", clevel=5, shuffle=Blosc.AUTOSHUFFLE),
    "blosc-zstd-clevel0": Blosc(cname="zstd", clevel=0, shuffle=Blosc.SHUFFLE),  # memcpy'ed frames
    "blosc-blosclz-clevel9": Blosc(cname="blosclz", clevel=9, shuffle=Blosc.BITSHUFFLE),
    "blosc-lz4-blocksize256": Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE, blocksize=256),
    "zstd-1": numcodecs.Zstd(level=1),
    "zstd-19": numcodecs.Zstd(level=19),
    "zstd-neg": numcodecs.Zstd(level=-3),
    "zstd-checksum": numcodecs.Zstd(level=3, checksum=True),
    "zlib-1": numcodecs.Zlib(level=1),
    "zlib-9": numcodecs.Zlib(level=9),
    "gzip-1": numcodecs.GZip(level=1),
    "gzip-9": numcodecs.GZip(level=9),
    "lz4-1": numcodecs.LZ4(acceleration=1),
    "lz4-20": numcodecs.LZ4(acceleration=20),
    "bz2": numcodecs.BZ2(level=5),
    "lzma": numcodecs.LZMA(),
    "none": None,
}


@pytest.mark.parametrize("dtype", ["<u2", ">f8"])
@pytest.mark.parametrize("name", list(COMPRESSORS))
def test_compressor(writer, make_data, check_read, name, dtype):
    data = make_data((37, 29), dtype, seed=1)
    path = writer.v2(data, chunks=(16, 8), compressor=COMPRESSORS[name], name=name)
    check_read(path)


@pytest.mark.parametrize("name", list(COMPRESSORS))
def test_compressor_matches_written_data(writer, make_data, identical, name):
    """Independent of zarr's read path: what we wrote is what ngffcore reads."""
    data = make_data((21, 17), "<i4", seed=2)
    path = writer.v2(data, chunks=(8, 8), compressor=COMPRESSORS[name], name=name)
    identical(ngffcore.open_array(path)[...], data)


# --------------------------------------------------------------------------------------
# blosc: several blosc blocks per chunk, partial reads of small element spans
# --------------------------------------------------------------------------------------

SPAN_SELECTIONS = [
    (10, slice(3, 9)),
    (0, slice(0, 1)),
    (63, 63),
    (slice(20, 22), slice(None)),
    (slice(31, 34), slice(60, 64)),
    (slice(None), 5),
    (Ellipsis,),
    (slice(62, 66), slice(62, 66)),
    (40, slice(None)),
]


def blosc_header(path: str) -> tuple[int, int, int, int]:
    """(flags, typesize, nbytes, blocksize) of a blosc frame file."""
    with open(path, "rb") as f:
        head = f.read(16)
    return head[2], head[3], int.from_bytes(head[4:8], "little"), int.from_bytes(head[8:12], "little")


# c-blosc 1.21 honours a forced blocksize for zstd but not for lz4 / blosclz on this data,
# so the multi-block frames are zstd; clevel 0 gives a memcpy'ed frame (flag 0x02)
@pytest.mark.parametrize("codec", ["zstd-1", "zstd-5", "zstd-0"])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", ["<u2", ">u2", "<f8", "|u1", ">c8"])
@pytest.mark.parametrize("shuffle", list(BLOSC_SHUFFLES))
def test_blosc_multiblock_partial(writer, make_data, check_read, order, dtype, shuffle, codec):
    data = make_data((70, 70), dtype, seed=3)
    cname, clevel = codec.split("-")
    comp = Blosc(cname=cname, clevel=int(clevel), shuffle=BLOSC_SHUFFLES[shuffle], blocksize=512)
    path = writer.v2(data, chunks=(64, 64), compressor=comp, order=order)
    flags, _, nbytes, blocksize = blosc_header(os.path.join(path, "0.0"))
    assert nbytes // blocksize >= 8  # really several blosc blocks per chunk
    if clevel == "0":
        assert flags & 0x02  # memcpy'ed (incompressible chunks may be memcpy'ed at any clevel)
    check_read(path, SPAN_SELECTIONS)


# --------------------------------------------------------------------------------------
# blosc typesize differing from the dtype's item size
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("typesize", [1, 2, 3, 8, 16])
@pytest.mark.parametrize("dtype", ["<u4", ">i8", "<f2"])
@pytest.mark.parametrize("shuffle", ["shuffle", "bitshuffle"])
def test_blosc_typesize_mismatch(writer, make_data, check_read, identical, typesize, dtype, shuffle):
    data = make_data((70, 70), dtype, seed=4)
    comp = Blosc(cname="zstd", clevel=3, shuffle=BLOSC_SHUFFLES[shuffle], blocksize=1024, typesize=typesize)
    path = writer.v2(data, chunks=(64, 64), compressor=comp)
    # sanity: the frames really carry the odd typesize, in several blocks
    _, frame_typesize, nbytes, blocksize = blosc_header(os.path.join(path, "0.0"))
    assert frame_typesize == typesize
    assert nbytes // blocksize >= 4
    check_read(path, SPAN_SELECTIONS)
    identical(ngffcore.open_array(path)[...], data)


# --------------------------------------------------------------------------------------
# delta filter
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("compressor", ["blosc", "zstd", "none"])
@pytest.mark.parametrize("dtype", ["|i1", "<u2", ">i4", "<i8", ">u8", "<f4"])
def test_delta_filter(writer, make_data, check_read, order, compressor, dtype):
    data = make_data((30, 26), dtype, seed=5)
    if data.dtype.kind == "f":  # finite values only: delta of inf/NaN does not round-trip
        rng = np.random.default_rng(5)
        data = (rng.standard_normal(data.shape) * 100).astype(dtype)
    comp = {
        "blosc": Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE),
        "zstd": numcodecs.Zstd(level=1),
        "none": None,
    }[compressor]
    path = writer.v2(
        data, chunks=(16, 12), compressor=comp, filters=[numcodecs.Delta(dtype=data.dtype.str)], order=order
    )
    check_read(path)


# --------------------------------------------------------------------------------------
# order, dimension separator, dimensionality, edge chunks
# --------------------------------------------------------------------------------------

SHAPES = {
    "0d": ((), ()),
    "1d": ((100,), (7,)),
    "1d-one-chunk": ((5,), (5,)),
    "2d": ((37, 29), (16, 8)),
    "2d-chunk-bigger-than-shape": ((9, 5), (16, 16)),
    "2d-unit-chunks": ((4, 5), (1, 1)),
    "3d": ((9, 10, 11), (4, 3, 5)),
    "5d": ((3, 4, 2, 5, 3), (2, 3, 2, 2, 2)),
}


@pytest.mark.parametrize("separator", [".", "/"])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_shapes_order_separator(writer, make_data, check_read, identical, shape_name, order, separator):
    shape, chunks = SHAPES[shape_name]
    data = make_data(shape, "<i2", seed=6)
    comp = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)
    path = writer.v2(data, chunks=chunks, compressor=comp, order=order, separator=separator)
    if shape and separator == "/" and len(shape) > 1:
        assert os.path.isdir(os.path.join(path, "0"))  # nested keys really used
    check_read(path)
    identical(ngffcore.open_array(path)[...], data)


def test_missing_dimension_separator_defaults_to_dot(writer, make_data, check_read, metadata_tools):
    data = make_data((12, 10), "<u4", seed=7)
    path = writer.v2(data, chunks=(5, 4), compressor=numcodecs.Zlib(level=1))
    meta = metadata_tools.read(os.path.join(path, ".zarray"))
    del meta["dimension_separator"]
    metadata_tools.write(os.path.join(path, ".zarray"), meta)
    check_read(path)


def test_empty_filters_list(writer, make_data, identical, metadata_tools):
    """``"filters": []`` (seen in the wild; zarr-python warns about it) means no filters."""
    data = make_data((12, 10), "<u4", seed=8)
    path = writer.v2(data, chunks=(5, 4), compressor=numcodecs.Zstd(level=1))
    metadata_tools.patch(path, filters=[])
    identical(ngffcore.open_array(path)[...], data)


# --------------------------------------------------------------------------------------
# dtypes in both byte orders
# --------------------------------------------------------------------------------------

DTYPES = ["|b1", "|i1", "|u1"] + [
    f"{bo}{t}" for t in ["i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"] for bo in "<>"
]


@pytest.mark.parametrize("layout", ["none-C", "blosc-C", "zlib-F", "blosc-F"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype(writer, make_data, check_read, identical, dtype, layout):
    data = make_data((13, 11), dtype, seed=9)
    comp_name, order = layout.split("-")
    comp = {
        "none": None,
        "blosc": Blosc(cname="zstd", clevel=3, shuffle=Blosc.SHUFFLE),
        "zlib": numcodecs.Zlib(level=3),
    }[comp_name]
    path = writer.v2(data, chunks=(5, 4), compressor=comp, order=order)
    arr = ngffcore.open_array(path)
    assert arr.dtype == np.dtype(dtype)  # v2: metadata byte order is kept, as zarr-python
    check_read(path)
    identical(arr[...], data)


# --------------------------------------------------------------------------------------
# fill values and missing chunks
# --------------------------------------------------------------------------------------

FILLS = [
    ("<i4", None),
    ("<i4", 0),
    ("<i4", -7),
    (">i2", -32768),
    ("<u8", 2**64 - 1),
    (">u4", 4_000_000_000),
    ("|b1", None),
    ("|b1", True),
    ("<f4", None),
    ("<f4", 0.5),
    (">f8", -0.0),
    ("<f8", float("nan")),
    (">f4", float("nan")),
    ("<f2", float("inf")),
    (">f8", float("-inf")),
    ("<f8", 1e300),
    ("<c8", None),
    ("<c8", 1 + 2j),
    (">c16", complex(float("nan"), -0.0)),
    ("<c16", complex(float("-inf"), 3.5)),
]

REGIONS = {
    "nothing-written": None,
    "one-chunk": (slice(0, 16), slice(8, 16)),
    "partial-edge-chunk": (slice(30, 35), slice(20, 29)),
    "ragged": (slice(3, 20), slice(5, 27)),
}


@pytest.mark.parametrize("region_name", list(REGIONS))
@pytest.mark.parametrize(("dtype", "fill"), FILLS, ids=[f"{d}-{f}" for d, f in FILLS])
def test_fill_value_and_missing_chunks(writer, make_data, check_read, identical, with_fill, dtype, fill, region_name):
    region = REGIONS[region_name]
    data = make_data((37, 29), dtype, seed=10)
    path = writer.v2(
        data,
        chunks=(16, 8),
        compressor=Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE),
        fill_value=fill,
        region=region,
    )
    n_chunk_files = len([f for f in os.listdir(path) if not f.startswith(".")])
    assert n_chunk_files < 3 * 4  # some chunks really are missing
    check_read(path)
    identical(ngffcore.open_array(path)[...], with_fill(data, region, fill))


def test_fill_value_nan_string_form(writer, make_data, check_read, metadata_tools):
    data = make_data((10, 10), "<f8", seed=11)
    path = writer.v2(data, chunks=(4, 4), compressor=None, region=(slice(0, 4), slice(0, 4)))
    for text in ["NaN", "Infinity", "-Infinity"]:
        metadata_tools.patch(path, fill_value=text)
        check_read(path)


def test_zero_d_missing_chunk(writer, check_read, identical):
    data = np.array(5, dtype=">i8")
    path = writer.v2(data, chunks=(), compressor=None, fill_value=42, region=None)
    assert not os.path.exists(os.path.join(path, "0"))
    check_read(path)
    identical(ngffcore.open_array(path)[...], np.array(42, dtype=">i8"))


def test_many_chunks(writer, make_data, check_read, identical):
    """~1 MB, 256 chunks: reads spanning many batches / workers."""
    data = make_data((512, 512), "<u4", seed=12)
    path = writer.v2(data, chunks=(32, 32), compressor=Blosc(cname="lz4", clevel=1, shuffle=Blosc.SHUFFLE))
    check_read(path, [Ellipsis, (slice(5, 500), slice(17, 511)), (300, slice(None)), (slice(None), 31)])
    identical(ngffcore.open_array(path)[...], data)


@pytest.mark.parametrize("source", ["memory", "file"])
@pytest.mark.parametrize("box", ["whole", "part"])
def test_uint8_byte_shuffle_frames_decode_without_touching_the_source(tmp_path, source, box):
    """1-byte items with the byte-shuffle flag (zarr v2's default Blosc on uint8) decode from
    a flag-cleared copy (c-blosc2 is ~10x slower with the flag): same pixels, and the
    caller's encoded bytes are never modified."""
    from ngffcore import _core
    from ngffcore.zarr.metadata import parse_v2

    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:256, 0:256]
    data = ((x // 9 + y // 13) % 200 + rng.integers(0, 3, (256, 256))).astype(np.uint8)
    frame = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE, blocksize=8192).encode(data)
    assert frame[3] == 1 and frame[2] & 0x5 == 0x1  # typesize 1, byte shuffle
    original = bytes(frame)
    meta = parse_v2({"zarr_format": 2, "shape": [256, 256], "chunks": [256, 256],
                     "dtype": "|u1", "compressor": Blosc(cname="lz4").get_config(),
                     "fill_value": 0, "order": "C", "filters": None}, "mem")
    (path := tmp_path / "chunk").write_bytes(frame)
    src = frame if source == "memory" else (str(path).encode(), 0, -1)
    (y0, y1), (x0, x1) = ((0, 256), (0, 256)) if box == "whole" else ((37, 201), (5, 250))
    out = np.zeros((y1 - y0, x1 - x0), np.uint8)
    boxes = np.array([[y0, x0, y1 - y0, x1 - x0, 0, 0]], dtype=np.int64)
    _core.decode_batch(meta.codec.pipeline, out, boxes, [src], ["c"])
    np.testing.assert_array_equal(out, data[y0:y1, x0:x1])
    assert bytes(frame) == original and path.read_bytes() == original
