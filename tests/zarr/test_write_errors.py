"""Bad writes (issue 15, item 8): a value that does not broadcast, a dtype that cannot be cast,
a selection out of bounds, a malformed codec config, a read-only array or store — each a
specific NgffError, raised before anything is written (the store's listing is unchanged)."""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np
import pytest

import ngffcore
from ngffcore.store.memory import MemoryStore

from servers import RangeServer


def _listing(path: str) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


@pytest.fixture
def arr(tmp_path):
    path = str(tmp_path / "a.zarr")
    a = ngffcore.create_array(path, shape=(10, 12), dtype="int16", chunks=(4, 5),
                              shards=(8, 10))
    a[...] = np.arange(120, dtype="int16").reshape(10, 12)
    return a, path


BAD = [
    ((slice(None), slice(None)), np.ones((10, 12), np.float32), ngffcore.CastError),
    ((slice(None), slice(None)), np.ones((10, 12), np.complex64), ngffcore.CastError),
    ((slice(None), slice(None)), 1.5 + 2j, ngffcore.CastError),
    (0, 40000, ngffcore.CastError),  # a Python int that does not fit int16
    (0, [1, 2, 3], ngffcore.ArgumentError),  # does not broadcast to 12
    ((slice(0, 2),), np.ones((3, 12), np.int16), ngffcore.ArgumentError),
    (10, 1, ngffcore.SelectionError),
    ((slice(None), -13), 1, ngffcore.SelectionError),
    ((slice(None, None, 2),), 1, ngffcore.SelectionError),
    ((slice(None),), "7", ngffcore.CastError),
    ((slice(None),), None, ngffcore.CastError),
    ((slice(None),), np.array(["a"]), ngffcore.CastError),
    ((slice(None),), np.array([object()]), ngffcore.CastError),
]


@pytest.mark.parametrize("selection,value,error", BAD)
def test_bad_write_raises_before_writing(arr, selection, value, error):
    a, path = arr
    before = _listing(path)
    with pytest.raises(error) as info:
        a[selection] = value
    assert isinstance(info.value, ngffcore.NgffError)
    assert _listing(path) == before


def test_python_values_follow_numpy_rules(arr):
    a, _ = arr
    a[0] = 1.9  # NumPy assigns a Python float into int16 by truncation
    assert (a[0] == 1).all()
    a[1] = [True] * 12
    assert (a[1] == 1).all()
    a[2] = np.arange(12, dtype=np.int8)  # same_kind widening
    np.testing.assert_array_equal(a[2], np.arange(12))
    a[3] = np.int64(70000).astype(np.int64) * 0 + 5  # same_kind narrowing of ints is allowed
    assert (a[3] == 5).all()


def test_read_only_array(tmp_path, arr):
    _, path = arr
    before = _listing(path)
    ro = ngffcore.open_array(path)
    assert not ro.writable
    with pytest.raises(ngffcore.ReadOnlyError):
        ro[0, 0] = 1
    with pytest.raises(PermissionError):
        ro.update_attributes({"a": 1})
    assert _listing(path) == before
    with pytest.raises(ngffcore.ArgumentError):
        ngffcore.open_array(path, mode="w")


def test_http_is_read_only(arr):
    _, path = arr
    with RangeServer(os.path.dirname(path)) as srv:
        url = f"{srv.url}/{os.path.basename(path)}"
        with pytest.raises(ngffcore.ReadOnlyError):
            ngffcore.open_array(url, mode="r+")
        with pytest.raises(ngffcore.ReadOnlyError):
            ngffcore.create_array(url + "/new", shape=(2,), dtype="uint8", chunks=(1,))
        assert ngffcore.open_array(url)[0, 0] == 0


def test_existing_metadata_refused(arr, tmp_path):
    _, path = arr
    before = _listing(path)
    with pytest.raises(ngffcore.ExistsError) as info:
        ngffcore.create_array(path, shape=(3,), dtype="uint8", chunks=(1,))
    assert isinstance(info.value, FileExistsError) and "zarr.json" in str(info.value)
    assert _listing(path) == before
    group = tmp_path / "g.zarr"
    group.mkdir()
    (group / ".zgroup").write_text('{"zarr_format": 2}')
    with pytest.raises(ngffcore.ExistsError):
        ngffcore.create_array(str(group), shape=(3,), dtype="uint8", chunks=(1,), zarr_format=2)


def test_overwrite_removes_old_chunks(arr):
    _, path = arr
    new = ngffcore.create_array(path, shape=(10, 12), dtype="int16", chunks=(4, 5),
                                overwrite=True)
    assert set(_listing(path)) == {"zarr.json"}
    assert (new[...] == 0).all()
    assert new.shards is None


CONFIG_ERRORS = [
    (dict(codecs=[{"name": "bytes", "configuration": {"endian": "little"}},
                  {"name": "nope"}]), ngffcore.UnsupportedError),
    (dict(codecs=[{"name": "bytes", "configuration": {"endian": "little"}},
                  {"name": "blosc", "configuration": {"cname": "snappy", "clevel": 5,
                                                      "shuffle": "shuffle"}}]),
     ngffcore.UnsupportedError),
    (dict(codecs=[{"name": "bytes", "configuration": {"endian": "little"}},
                  {"name": "gzip", "configuration": {"level": 12}}]), ngffcore.UnsupportedError),
    (dict(codecs=[{"name": "bytes", "configuration": {"endian": "middle"}}]),
     ngffcore.MetadataError),
    (dict(codecs="zstd"), ngffcore.ArgumentError),
    (dict(shards=(5, 5)), ngffcore.ArgumentError),  # not a multiple of the chunks
    (dict(shards=(8, 10), codecs=[{"name": "sharding_indexed", "configuration": {
        "chunk_shape": [4, 5], "codecs": [{"name": "bytes",
                                           "configuration": {"endian": "little"}}]}}]),
     ngffcore.ArgumentError),
    (dict(dtype="U4"), ngffcore.ArgumentError),
    (dict(chunks=(0, 5)), ngffcore.ArgumentError),
    (dict(chunks=(4,)), ngffcore.ArgumentError),
    (dict(fill_value="x"), ngffcore.CastError),
    (dict(zarr_format=2, compressor={"id": "snappy"}), ngffcore.UnsupportedError),
    (dict(zarr_format=2, compressor={"id": "blosc", "cname": "zstd", "clevel": 99}),
     ngffcore.UnsupportedError),
    (dict(zarr_format=2, filters=[{"id": "shuffle"}]), ngffcore.UnsupportedError),
    (dict(zarr_format=2, order="K"), ngffcore.ArgumentError),
    (dict(zarr_format=4), ngffcore.ArgumentError),
    (dict(zarr_format=2, shards=(8, 10)), ngffcore.ArgumentError),
]


@pytest.mark.parametrize("options,error", CONFIG_ERRORS)
def test_bad_config_writes_nothing(tmp_path, options, error):
    path = tmp_path / "a.zarr"
    kwargs = dict(shape=(10, 12), dtype="int16", chunks=(4, 5))
    kwargs.update(options)
    with pytest.raises(error) as info:
        ngffcore.create_array(str(path), **kwargs)
    assert isinstance(info.value, ngffcore.NgffError)
    assert not path.exists()


def test_memory_store_write_and_listing():
    store = MemoryStore()
    a = ngffcore.create_array(store, shape=(6,), dtype="uint8", chunks=(2,), fill_value=0)
    a[...] = [0, 0, 1, 2, 0, 3]
    assert store.keys() == ["c/1", "c/2", "zarr.json"]
    b = ngffcore.open_array(store, mode="r+")
    b[4:] = 0
    assert store.keys() == ["c/1", "zarr.json"]
    np.testing.assert_array_equal(a[...], [0, 0, 1, 2, 0, 0])


class _FailingStore(MemoryStore):
    """Fails the ``fail_at``-th put (counting from 1) with a StoreError."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.puts = 0

    async def put(self, key, data):
        self.puts += 1
        if self.puts == self.fail_at:
            raise ngffcore.StoreError(f"injected failure writing {key}", key=key)
        await super().put(key, data)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_store_failure_mid_write_lists_what_was_written(mode):
    """A write of many batches (encoded ahead in the background) whose 30th put fails:
    WriteError names that key, lists exactly the objects stored, and every stored chunk
    holds the new values; nothing is written after the error is raised."""
    store = _FailingStore(fail_at=1 + 30)  # the metadata document is put 1
    a = ngffcore.create_array(store, shape=(64, 1024, 1024), dtype="uint8",
                              chunks=(1, 1024, 1024), fill_value=0)
    value = np.arange(64, dtype=np.uint8)[:, None, None] + 1
    with pytest.raises(ngffcore.WriteError) as info:
        if mode == "sync":
            a[...] = value
        else:
            asyncio.run(a.write_async(..., value))
    err = info.value
    assert err.key is not None and err.key.startswith("c/")
    stored = [k for k in store.keys() if k != "zarr.json"]
    assert sorted(err.written) == sorted(stored)
    assert err.key not in stored and 29 <= len(stored) < 64
    for key in stored:
        z = int(key.split("/")[1])
        assert (a[z] == z + 1).all()
    n = len(store.keys())
    time.sleep(0.2)
    assert len(store.keys()) == n
