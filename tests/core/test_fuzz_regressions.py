"""Inputs found by the libFuzzer targets (fuzz/, docs/fuzzing.md), replayed through the
Python API, and each bug they found checked once more through the public API.

``tests/data/fuzz/<target>-<name>.bin`` are raw fuzzer inputs: each crashed (or failed a
harness check on) the C core before its fix, or is a small corpus input the fuzzers found
interesting. ``fuzz_replay.replay`` parses them exactly as ``fuzz/fuzz_<target>.c`` does and
feeds them to ``ngffcore._core``; a replay ends in a correct result or a clean error.
"""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path

import blosc2
import numcodecs
import numpy as np
import pytest
import zarr
from fuzz_replay import replay

import ngffcore
from ngffcore import _core

DATA = Path(__file__).resolve().parents[1] / "data" / "fuzz"
INPUTS = sorted(DATA.glob("*.bin"))


def test_inputs_are_present():
    assert INPUTS, f"no fuzz inputs under {DATA}"
    targets = {p.name.split("-", 1)[0] for p in INPUTS}
    assert targets <= {"blosc", "zstd", "zlib", "lz4", "crc32c", "pipeline", "shard", "grid",
                       "render"}, targets


@pytest.fixture
def one_thread():
    """One native thread: every decode runs on the same worker, as in the fuzzers (state
    left in a decoder by one input shows in the next)."""
    threads = ngffcore.get_num_threads()
    ngffcore.set_num_threads(1)
    yield
    ngffcore.set_num_threads(threads)


@pytest.mark.parametrize("path", INPUTS, ids=[p.stem for p in INPUTS])
def test_replay(path, one_thread):
    replay(path.name.split("-", 1)[0], path.read_bytes())


# --------------------------------------------------------------------------------------
# grid: the last chunk of a huge axis (fuzz_grid: UBSan, signed overflow in ngff_grid_plan)
# --------------------------------------------------------------------------------------


def test_plan_last_chunk_of_huge_axis():
    # chunk 1 spans [2**62 + 1, 2**63 + 2): its end does not fit in int64
    coords, boxes = _core.plan_chunks([2**63 - 2], [2**62 + 1], [2**63 - 3], [2**63 - 2])
    assert coords.tolist() == [[1]]
    assert boxes.tolist() == [[2**63 - 3 - (2**62 + 1), 1, 0]]


def test_read_last_element_of_huge_axis(tmp_path):
    meta = {"zarr_format": 2, "shape": [2**63 - 2], "chunks": [2**62 + 1], "dtype": "|u1",
            "compressor": None, "fill_value": 7, "order": "C", "filters": None}
    (tmp_path / ".zarray").write_text(json.dumps(meta))
    # the grid arithmetic near 2**63 is what this guards: the chunk limit (default 1 GiB,
    # which refuses this chunk at open) is lifted for it
    before = ngffcore.get_max_chunk_bytes()
    ngffcore.set_max_chunk_bytes(2**63 - 1)
    try:
        a = ngffcore.open_array(str(tmp_path))
    finally:
        ngffcore.set_max_chunk_bytes(before)
    assert a[-1] == 7
    assert a[2**62 - 3: 2**62 + 3].tolist() == [7] * 6


# --------------------------------------------------------------------------------------
# grid: an empty selection is 0 chunks even when another axis's count overflows
# --------------------------------------------------------------------------------------


def test_plan_empty_selection_after_overflowing_axes():
    coords, boxes = _core.plan_chunks([2**62, 2**62, 10], [1, 1, 1], [0, 0, 5],
                                      [2**62, 2**62, 5])
    assert coords.shape == (0, 3) and boxes.shape == (0, 9)
    with pytest.raises(ValueError):  # non-empty: the count really overflows
        _core.plan_chunks([2**62, 2**62, 10], [1, 1, 1], [0, 0, 5], [2**62, 2**62, 6])


# --------------------------------------------------------------------------------------
# pipeline: a decoded size claimed by a codec inside the chain (fuzz_pipeline: malloc of
# 4.8 GB for a 17-byte input)
# --------------------------------------------------------------------------------------


def _pipeline_1d(n, codecs):
    return _core.Pipeline(itemsize=1, chunk_shape=(n,), chunk_strides=(1,), codecs=codecs)


def test_inner_codec_size_claim_is_bounded():
    # [zstd, lz4] in encode order: the LZ4 frame is decoded first, and claims ~4 GiB
    p = _pipeline_1d(16, [_core.CODEC_ZSTD, _core.CODEC_LZ4])
    out = np.zeros(16, np.uint8)
    chunk = struct.pack("<I", 0xFFFFFFF0) + b"\x00" * 8
    with pytest.raises(ngffcore.DecodeError, match="more than a 16-byte chunk encodes to"):
        _core.decode_batch(p, out, np.array([[0, 16, 0]], np.int64), [chunk], ["c/0"])


def test_inner_codec_of_incompressible_data_still_decodes():
    # the bound leaves room for what compressors really produce from random bytes
    data = np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes()
    enc = numcodecs.LZ4().encode(numcodecs.Zstd(level=1).encode(data))
    p = _pipeline_1d(len(data), [_core.CODEC_ZSTD, _core.CODEC_LZ4])
    out = np.zeros(len(data), np.uint8)
    _core.decode_batch(p, out, np.array([[0, len(data), 0]], np.int64), [bytes(enc)], ["k"])
    assert out.tobytes() == data


# --------------------------------------------------------------------------------------
# blosc: c-blosc2 "special" chunks of uninitialized values (fuzz_pipeline/fuzz_blosc: a
# decode that succeeds without writing the output, handing out stale memory)
# --------------------------------------------------------------------------------------


def _special_frame(nbytes: int, typesize: int, kind: int) -> bytes:
    """A 32-byte c-blosc2 special chunk (1 zeros, 4 uninitialized) of nbytes."""
    f = bytearray(blosc2.compress2(b"\x00" * nbytes, typesize=typesize, clevel=5)[:32])
    f[12:16] = struct.pack("<i", 32)
    f[31] = (f[31] & 0x8F) | kind << 4
    return bytes(f)


def _v2_blosc_array(path: Path, data: np.ndarray, chunks) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = zarr.create_array(str(path), shape=data.shape, chunks=chunks, dtype=data.dtype,
                              zarr_format=2, compressors=numcodecs.Blosc(cname="lz4"),
                              fill_value=0)
        z[...] = data
    return str(path)


def test_blosc_uninit_special_chunk_is_an_error(tmp_path):
    data = np.arange(64 * 32, dtype="<u2").reshape(64, 32)
    path = _v2_blosc_array(tmp_path / "a", data, (64, 32))
    (tmp_path / "a" / "0.0").write_bytes(_special_frame(data.nbytes, 2, 4))
    a = ngffcore.open_array(path)
    for sel in [(slice(None), slice(None)), (slice(3, 9), slice(1, 7))]:
        out = np.full(data[sel].shape, 0xABCD, "<u2")
        with pytest.raises(ngffcore.DecodeError, match="uninitialized") as e:
            a.read(sel, out=out)
        assert e.value.key == "0.0"


def test_blosc_zero_special_chunk_reads_zeros(tmp_path):
    data = np.arange(64 * 32, dtype="<u2").reshape(64, 32)
    path = _v2_blosc_array(tmp_path / "a", data, (64, 32))
    (tmp_path / "a" / "0.0").write_bytes(_special_frame(data.nbytes, 2, 1))
    a = ngffcore.open_array(path)
    assert not a[...].any()
    assert not a[3:9, 1:7].any()


# --------------------------------------------------------------------------------------
# blosc: a 0-byte blosc2 frame that is not memcpyed (fuzz_blosc: c-blosc2 dereferences NULL)
# --------------------------------------------------------------------------------------


def test_blosc_empty_frame_inside_a_chain():
    frame = (DATA / "blosc-empty-frame-not-memcpyed.bin").read_bytes()
    assert frame[2] & 0x7 == 0x5 and frame[4:8] == b"\0\0\0\0"  # blosc2 header, 0 bytes
    # blosc decoded first (encode order [zstd, blosc]): it says 0 bytes, zstd gets nothing
    p = _core.Pipeline(itemsize=2, chunk_shape=(4,), chunk_strides=(2,),
                       codecs=(_core.CODEC_ZSTD, _core.CODEC_BLOSC))
    with pytest.raises(ngffcore.DecodeError, match="zstd"):
        _core.decode_batch(p, np.zeros(4, "<u2"), np.array([[0, 4, 0]], np.int64), [frame],
                           ["c/0"])


# --------------------------------------------------------------------------------------
# blosc: c-blosc2 keeps state of a blosc2-format frame for the next frame (fuzz_pipeline,
# then fuzz_blosc: a getitem after a special chunk "decoded" a repeated value; and valid
# blosc1 frames came out wrong after a blosc2 frame with filter metadata)
# --------------------------------------------------------------------------------------


def test_blosc1_chunk_after_blosc2_chunk_with_filter_metadata(tmp_path, one_thread):
    F = blosc2.Filter
    fa = np.linspace(0, 100, 64 * 64, dtype="<f4").reshape(64, 64)
    path_a = _v2_blosc_array(tmp_path / "a", fa, (64, 64))
    frame = blosc2.compress2(fa.tobytes(), typesize=4, clevel=5, codec=blosc2.Codec.ZSTD,
                             filters=[F.NOFILTER] * 4 + [F.SHUFFLE, F.TRUNC_PREC],
                             filters_meta=[0] * 5 + [10])  # 10 bits of mantissa kept
    (tmp_path / "a" / "0.0").write_bytes(frame)
    want_a = np.frombuffer(blosc2.decompress(frame), "<f4").reshape(64, 64)
    b = (np.arange(64 * 64, dtype="<u2") * 7).reshape(64, 64)
    path_b = _v2_blosc_array(tmp_path / "b", b, (64, 64))  # numcodecs: blosc1 header, shuffle
    a_arr, b_arr = ngffcore.open_array(path_a), ngffcore.open_array(path_b)
    for _ in range(2):  # a blosc2 frame, then blosc1 frames whole and in part
        np.testing.assert_array_equal(a_arr[...], want_a)
        np.testing.assert_array_equal(b_arr[...], b)
        np.testing.assert_array_equal(a_arr[...], want_a)
        np.testing.assert_array_equal(b_arr[3:9, 1:7], b[3:9, 1:7])


# --------------------------------------------------------------------------------------
# blosc: delta-filtered frames (fuzz_pipeline: partial and block-by-block decodes gave
# wrong values for every block after the first)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("filters", [
    [blosc2.Filter.DELTA, blosc2.Filter.SHUFFLE],
    [blosc2.Filter.SHUFFLE, blosc2.Filter.DELTA],
    [blosc2.Filter.SHUFFLE, blosc2.Filter.BYTEDELTA],
], ids=["delta-shuffle", "shuffle-delta", "bytedelta"])
def test_blosc2_delta_frames_partial_reads(tmp_path, filters):
    rng = np.random.default_rng(5)
    data = (np.cumsum(rng.integers(0, 9, 64 * 64)) % 60000).astype("<u2").reshape(64, 64)
    path = _v2_blosc_array(tmp_path / "a", data, (64, 64))
    frame = blosc2.compress2(data.tobytes(), typesize=2, clevel=5, blocksize=512,
                             codec=blosc2.Codec.LZ4, filters=filters)
    (tmp_path / "a" / "0.0").write_bytes(frame)
    a = ngffcore.open_array(path)
    for sel in [(slice(None), slice(None)),   # whole chunk, straight into the output
                (slice(20, 30), slice(5, 60)),  # a small part: partial decode, file reads
                (slice(1, 64), slice(1, 64)),   # most of it: block by block
                (slice(40, 41), slice(0, 64))]:
        np.testing.assert_array_equal(a[sel], data[sel])
    out = np.zeros((128, 64), "<u2")[::-2]  # strided, reversed: scattered block by block
    a.read((slice(None), slice(None)), out=out)
    np.testing.assert_array_equal(out, data)


# --------------------------------------------------------------------------------------
# blosc: blocks that split an item (fuzz_pipeline: c-blosc2 leaves the tail of such a
# shuffled block unwritten and reports success: stale memory as pixels)
# --------------------------------------------------------------------------------------


def test_blosc_blocks_splitting_an_item_are_an_error(tmp_path):
    """pipeline-blosc-split-item.bin's frame: 4096 bytes, typesize 9, 512-byte blocks (no
    c-blosc encoder writes that). Decoding it in a fresh process gave different bytes at
    504..511 from one call to the next; it must be refused, never decoded."""
    from fuzz_replay import parse_pipeline

    frame = parse_pipeline((DATA / "pipeline-blosc-split-item.bin").read_bytes())["payload"]
    assert frame[3] == 9 and int.from_bytes(frame[8:12], "little") == 512
    data = np.arange(16 * 32, dtype="<u8").reshape(16, 32)
    path = _v2_blosc_array(tmp_path / "a", data, (16, 32))
    (tmp_path / "a" / "0.0").write_bytes(frame)
    a = ngffcore.open_array(path)
    for sel in [(slice(None), slice(None)), (slice(1, 16), slice(1, 32)), (0, slice(0, 4))]:
        with pytest.raises(ngffcore.DecodeError, match="not a whole number of 9-byte items") as e:
            a.read(sel)
        assert e.value.key == "0.0"
