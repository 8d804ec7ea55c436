"""Decompression bombs: bz2 and lzma chunks (decoded in Python) never produce more than the
bytes the next stage can use, however small the chunk and however far it would expand."""

from __future__ import annotations

import bz2
import json
import lzma
import tracemalloc
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import zarr

import ngffcore

BOMB_BYTES = 64 * 2**20  # what the hostile chunks below expand to
# what decoding one of them may allocate (traced: Python's and liblzma's allocations) at
# most: liblzma's dictionary (8 MiB at the default preset 6) and a little output
MEMORY_CAP = 16 * 2**20

COMPRESSORS: dict[str, Any] = {
    "bz2": ({"id": "bz2", "level": 9}, bz2.compress),
    "lzma-xz": ({"id": "lzma", "format": 1, "check": -1, "preset": None, "filters": None},
                lambda b: lzma.compress(b, format=lzma.FORMAT_XZ)),
    "lzma-alone": ({"id": "lzma", "format": 2, "check": -1, "preset": None, "filters": None},
                   lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE)),
    "lzma-raw": ({"id": "lzma", "format": 3, "check": -1, "preset": None,
                  "filters": [{"id": lzma.FILTER_LZMA2, "preset": 1}]},
                 lambda b: lzma.compress(b, format=lzma.FORMAT_RAW,
                                         filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}])),
}


def _v2(tmp_path: Path, compressor: dict[str, Any], chunk: bytes, n: int = 64) -> Path:
    meta = {"zarr_format": 2, "shape": [n], "chunks": [n], "dtype": "|u1",
            "compressor": compressor, "filters": None, "fill_value": 0, "order": "C"}
    (tmp_path / ".zarray").write_text(json.dumps(meta))
    (tmp_path / "0").write_bytes(chunk)
    return tmp_path


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    zeros = bytes(BOMB_BYTES)
    return {name: make(zeros) for name, (_, make) in COMPRESSORS.items()}


@pytest.mark.parametrize("name", list(COMPRESSORS))
def test_bomb_stops_at_the_chunk_size(tmp_path, bombs, name):
    chunk = bombs[name]
    assert len(chunk) < 64 * 1024  # small on disk
    a = ngffcore.open_array(str(_v2(tmp_path, COMPRESSORS[name][0], chunk)))
    tracemalloc.start()
    try:
        with pytest.raises(ngffcore.DecodeError, match="more than 64 bytes") as info:
            a[...]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_CAP, f"decoding a 64-byte chunk allocated {peak} bytes"
    assert info.value.key == "0" and "'0'" in str(info.value)
    assert info.value.codec in ("bz2", "lzma")


def test_bomb_in_a_v3_chain_stops_at_the_bound(tmp_path, bombs):
    """numcodecs.lzma outside blosc: the lzma stage feeds a blosc frame, whose size is not
    known in advance, so it is bounded by what a 64-byte chunk compresses to at most."""
    z = zarr.create_array(str(tmp_path), shape=(64,), chunks=(64,), dtype="u1",
                          compressors=[zarr.codecs.BloscCodec()], fill_value=0)
    z[...] = 1
    meta = json.loads((tmp_path / "zarr.json").read_text())
    meta["codecs"].append({"name": "numcodecs.lzma", "configuration": {"format": 1}})
    (tmp_path / "zarr.json").write_text(json.dumps(meta))
    (tmp_path / "c" / "0").write_bytes(bombs["lzma-xz"])
    a = ngffcore.open_array(str(tmp_path))
    with pytest.raises(ngffcore.DecodeError, match=r"more than \d+ bytes"):
        a[...]


@pytest.mark.parametrize("name", list(COMPRESSORS))
def test_exact_size_still_decodes(tmp_path, name):
    data = np.arange(64, dtype=np.uint8)
    config, make = COMPRESSORS[name]
    chunk = make(data.tobytes())
    np.testing.assert_array_equal(
        np.frombuffer(numcodecs.get_codec(dict(config)).decode(chunk), np.uint8), data)
    got = ngffcore.open_array(str(_v2(tmp_path, config, chunk)))[...]
    np.testing.assert_array_equal(got, data, strict=True)


@pytest.mark.parametrize("name", list(COMPRESSORS))
def test_one_byte_too_many_is_refused(tmp_path, name):
    config, make = COMPRESSORS[name]
    a = ngffcore.open_array(str(_v2(tmp_path, config, make(bytes(65)))))
    with pytest.raises(ngffcore.DecodeError, match="more than 64 bytes"):
        a[...]


@pytest.mark.parametrize("name", list(COMPRESSORS))
def test_truncated_stream_is_a_decode_error(tmp_path, name):
    config, make = COMPRESSORS[name]
    chunk = make(np.random.default_rng(1).integers(0, 255, 64, dtype=np.uint8).tobytes())
    a = ngffcore.open_array(str(_v2(tmp_path, config, chunk[: len(chunk) // 2])))
    with pytest.raises(ngffcore.DecodeError) as info:
        a[...]
    assert info.value.key == "0"


@pytest.mark.parametrize("name", ["bz2", "lzma-xz"])
def test_streams_back_to_back_and_trailing_bytes_as_numcodecs(tmp_path, name):
    """Several streams in one chunk, and junk after the last one, decode as numcodecs (the
    stdlib's one-shot functions) decodes them."""
    config, make = COMPRESSORS[name]
    data = np.arange(64, dtype=np.uint8)
    chunk = make(data[:40].tobytes()) + make(data[40:].tobytes()) + b"these bytes start no stream"
    ref = np.frombuffer(numcodecs.get_codec(dict(config)).decode(chunk), np.uint8)
    np.testing.assert_array_equal(ref, data)
    got = ngffcore.open_array(str(_v2(tmp_path, config, chunk)))[...]
    np.testing.assert_array_equal(got, data, strict=True)


def test_lzma_header_declaring_a_huge_dictionary_is_refused(tmp_path):
    """An lzma "alone" header names its dictionary size (4 bytes at offset 1): liblzma
    would allocate up to 4 GiB for it before decoding a byte. The decoder's memory limit
    refuses it; the same stream with its honest dictionary decodes."""
    data = bytes(range(64))
    good = bytearray(lzma.compress(data, format=lzma.FORMAT_ALONE))
    bad = good[:1] + (0xFFFFFFFF).to_bytes(4, "little") + good[5:]
    conf = {"id": "lzma", "format": 2, "check": -1, "preset": None, "filters": None}
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    assert ngffcore.open_array(str(_v2(tmp_path / "good", conf, bytes(good))))[:].tobytes() == data
    with pytest.raises(ngffcore.DecodeError, match="(?i)memory") as info:
        ngffcore.open_array(str(_v2(tmp_path / "bad", conf, bytes(bad))))[:]
    assert info.value.key == "0"


def test_lzma_raw_dictionary_over_the_bound_is_refused_at_open(tmp_path):
    conf = {"id": "lzma", "format": 3, "check": -1, "preset": None,
            "filters": [{"id": lzma.FILTER_LZMA2, "dict_size": 3 * 2**30}]}
    with pytest.raises(ngffcore.MetadataError, match="dict_size"):
        ngffcore.open_array(str(_v2(tmp_path, conf, b"")))
