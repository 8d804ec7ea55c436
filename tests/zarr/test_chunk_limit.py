"""Issue 13, item 4: a few pixels of a huge declared chunk never cost the whole chunk.

A per-chunk decoded-size limit (``set_max_chunk_bytes``, default 1 GiB) refuses, at open,
arrays whose (innermost) chunk is larger. Below it, a read through a cache that does not
admit the chunk decodes straight into its output, and a missing chunk never costs a
whole-chunk slab (a read the cache admits keeps a cheap marker instead). Allocations are
measured with tracemalloc (numpy reports its buffers to it); pixels are compared with
zarr-python's reads of the same arrays.
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, ShardingCodec, ZstdCodec

import ngffcore
from ngffcore.zarr.cache import MISSING_BYTES
from servers import RangeServer

HTTP = {"client_options": {"allow_http": True}}
BIG = 16384  # a 16384 x 16384 uint8 chunk: 256 MiB decoded
BIG_BYTES = BIG * BIG


@pytest.fixture
def chunk_limit():
    old = ngffcore.get_max_chunk_bytes()
    yield ngffcore.set_max_chunk_bytes
    ngffcore.set_max_chunk_bytes(old)


def _v3_doc(shape: list[int], chunks: list[int], *, sharded_inner: list[int] | None = None,
            dtype: str = "uint8") -> dict[str, Any]:
    codecs: list[Any] = [{"name": "bytes", "configuration": {"endian": "little"}},
                         {"name": "zstd", "configuration": {"level": 1, "checksum": False}}]
    if sharded_inner is not None:
        codecs = [{"name": "sharding_indexed", "configuration": {
            "chunk_shape": sharded_inner, "codecs": codecs,
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
            "index_location": "end"}}]
    return {"zarr_format": 3, "node_type": "array", "shape": shape, "data_type": dtype,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 7, "codecs": codecs, "attributes": {}}


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.mkdir(parents=True)
    name = "zarr.json" if doc["zarr_format"] == 3 else ".zarray"
    (path / name).write_text(json.dumps(doc))
    return path


def test_default_limit_is_one_gib_and_refuses_a_3_gib_chunk(tmp_path):
    """The issue's array: a 3 GiB chunk declared (nothing stored). Refused at open, with
    the document, the chunk shape, its bytes and the knob in the message."""
    assert ngffcore.get_max_chunk_bytes() == 2**30
    path = _write(tmp_path / "a", _v3_doc([3, 2**15, 2**15], [3, 2**15, 2**15]))
    with pytest.raises(ngffcore.MetadataError) as exc:
        ngffcore.open_array(path)
    msg = str(exc.value)
    assert isinstance(exc.value, ValueError)
    assert "zarr.json" in msg and "[3, 32768, 32768]" in msg and str(3 * 2**30) in msg
    assert "set_max_chunk_bytes" in msg and str(2**30) in msg


@pytest.mark.parametrize("fmt", [2, 3])
def test_lowered_limit_refuses_at_open_and_the_boundary_opens(tmp_path, chunk_limit, fmt):
    path = tmp_path / "a"
    if fmt == 2:
        zarr.create_array(str(path), shape=(8, 16), chunks=(4, 8), dtype="<u2",
                          zarr_format=2, fill_value=0)
    else:
        zarr.create_array(str(path), shape=(8, 16), chunks=(4, 8), dtype="uint16",
                          fill_value=0)
    chunk_limit(4 * 8 * 2)  # exactly one chunk: opens
    assert ngffcore.open_array(path).chunks == (4, 8)
    chunk_limit(4 * 8 * 2 - 1)
    with pytest.raises(ngffcore.MetadataError, match=r"\[4, 8\].*64 bytes.*limit is 63"):
        ngffcore.open_array(path)
    with pytest.raises(ValueError):
        ngffcore.set_max_chunk_bytes(-1)


def test_sharded_limit_is_on_the_inner_chunk(tmp_path, chunk_limit):
    """A shard is never decoded whole (only its inner chunks are): a shard larger than the
    limit opens, an inner chunk larger than it does not."""
    path = tmp_path / "s"
    z = zarr.create_array(str(path), shape=(16, 16), chunks=(4, 4), shards=(16, 16),
                          dtype="uint8", compressors=None, fill_value=0)
    z[...] = np.arange(256, dtype=np.uint8).reshape(16, 16)
    chunk_limit(16)  # one 4x4 inner chunk; the shard is 256 bytes
    np.testing.assert_array_equal(ngffcore.open_array(path)[...],
                                  zarr.open_array(str(path), mode="r")[...])
    chunk_limit(15)
    with pytest.raises(ngffcore.MetadataError, match=r"\[4, 4\]"):
        ngffcore.open_array(path)


def _peak(fn: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """Arrays with 256 MiB chunks declared: ``empty`` stores none; ``one`` stores chunk
    (0, 0) (zstd: a few KiB); ``sharded`` is one shard of 256 MiB inner chunks, none
    stored. Served over HTTP too."""
    root = tmp_path_factory.mktemp("big")
    _write(root / "empty", _v3_doc([2 * BIG, 2 * BIG], [BIG, BIG]))
    one = zarr.create_array(str(root / "one"), shape=(2 * BIG, 2 * BIG), chunks=(BIG, BIG),
                            dtype="uint8", compressors=ZstdCodec(level=1), fill_value=7)
    one[:16, :16] = np.arange(256, dtype=np.uint8).reshape(16, 16)
    _write(root / "sharded", _v3_doc([2 * BIG, 2 * BIG], [2 * BIG, 2 * BIG],
                                     sharded_inner=[BIG, BIG]))
    with RangeServer(str(root)) as srv:
        yield root, srv


def _open(big, name: str, where: str) -> ngffcore.Array:
    root, srv = big
    if where == "local":
        return ngffcore.open_array(root / name)
    return ngffcore.open_array(f"{srv.url}/{name}", **HTTP)


@pytest.mark.parametrize("where", ["local", "http"])
@pytest.mark.parametrize("name", ["empty", "one", "sharded"])
@pytest.mark.parametrize("mode", ["read", "read_async"])
def test_a_tile_the_cache_does_not_admit_never_allocates_the_chunk(big, where, name, mode):
    """The default cache admits reads of up to 128 MiB of missing chunks: a 16-pixel tile of
    a 256 MiB chunk decodes straight into its output (stored or not)."""
    a = _open(big, name, where)
    cache = ngffcore.ChunkCache()
    assert not cache.admits(BIG_BYTES)
    sel = (slice(4, 8), slice(4, 8))

    def read() -> np.ndarray:
        if mode == "read":
            return a.read(sel, cache=cache)
        return asyncio.run(a.read_async(sel, cache=cache))

    got, peak = _peak(read)
    if name == "one":
        expected = zarr.open_array(str(big[0] / name), mode="r")[sel]
    else:
        expected = np.full((4, 4), 7, dtype=np.uint8)
    np.testing.assert_array_equal(got, expected)
    # the stored chunk still costs one decode buffer in the core (its own allocator, not
    # traced): what is traced here is Python-side memory, which must stay small
    assert peak < BIG_BYTES // 16, peak
    s = cache.stats()
    assert (s.bytes, s.chunks) == (0, 0)  # nothing kept: the read was not admitted


@pytest.mark.parametrize("where", ["local", "http"])
@pytest.mark.parametrize("name", ["empty", "sharded"])
def test_a_missing_chunk_the_cache_admits_is_kept_as_a_marker(big, where, name):
    """A cache that admits a 256 MiB chunk: the missing chunk is remembered (the next read
    needs no request) without a 256 MiB slab."""
    a = _open(big, name, where)
    cache = ngffcore.ChunkCache(4 * BIG_BYTES, spare_bytes=0)
    assert cache.admits(BIG_BYTES)
    sel = (slice(4, 8), slice(4, 8))
    got, peak = _peak(lambda: a.read(sel, cache=cache))
    np.testing.assert_array_equal(got, np.full((4, 4), 7, dtype=np.uint8))
    assert peak < BIG_BYTES // 16, peak
    s = cache.stats()
    assert (s.chunks, s.bytes, s.misses) == (1, MISSING_BYTES, 1)
    if where == "http":
        big[1].state.clear()
    got, peak = _peak(lambda: a.read((slice(100, 103), 9), cache=cache))
    np.testing.assert_array_equal(got, np.full(3, 7, dtype=np.uint8))
    assert cache.stats().hits == 1 and peak < 2**20
    if where == "http":
        assert big[1].state.requests() == []


@pytest.mark.parametrize("where", ["local", "http"])
@pytest.mark.parametrize("mode", ["read", "read_async"])
def test_admitted_read_mixing_stored_and_missing_chunks(tmp_path, where, mode):
    """Small chunks, some stored, some not (unsharded and sharded): zarr-python's pixels;
    the stored chunks cost one slab block each, the missing ones a marker; a second read is
    all hits and sends no request."""
    rng = np.random.default_rng(5)
    for name, shards in (("plain", None), ("sharded", (8, 16))):
        z = zarr.create_array(str(tmp_path / name), shape=(16, 32), chunks=(4, 8),
                              shards=shards, dtype="uint16", fill_value=3,
                              compressors=ZstdCodec(level=1))
        z[0:4, 0:16] = rng.integers(0, 60000, (4, 16))  # chunks (0,0) (0,1)
        z[8:12, 24:32] = rng.integers(0, 60000, (4, 8))  # chunk (2,3)
    with RangeServer(str(tmp_path)) as srv:
        for name in ("plain", "sharded"):
            a = (ngffcore.open_array(tmp_path / name) if where == "local"
                 else ngffcore.open_array(f"{srv.url}/{name}", **HTTP))
            cache = ngffcore.ChunkCache(2**20, bypass_fraction=1.0)
            sel = (slice(1, 15), slice(2, 31))
            expected = zarr.open_array(str(tmp_path / name), mode="r")[sel]
            for round_ in range(2):
                srv.state.clear()
                got = (a.read(sel, cache=cache) if mode == "read"
                       else asyncio.run(a.read_async(sel, cache=cache)))
                np.testing.assert_array_equal(got, expected, err_msg=f"{name} {round_}")
                s = cache.stats()
                assert s.chunks == 16 and s.bytes == 3 * 64 + 13 * MISSING_BYTES, name
                assert (s.hits, s.misses) == (16 * round_, 16)
                if round_ and where == "http":
                    assert srv.state.requests() == []
