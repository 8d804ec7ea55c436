"""The native local write of whole chunks (``_core.write_chunk_files``, csrc/ngff_write_files.c)
against independent references: zarr-python reads the files it writes as the numpy model of
the array, each file is byte-identical to ``encode_batch`` of the same chunk, and files are
created only beneath the store root, whole or not at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import ngffcore
from ngffcore import _core
from ngffcore.errors import StoreError

zarr = pytest.importorskip("zarr")

SHAPE = (11, 13, 7)  # edge chunks on every axis
CHUNKS = (4, 5, 3)


def _v2(dtype, *, sep=".", order="C", compressor=None, filters=None, fill=0):
    return {"zarr_format": 2, "shape": list(SHAPE), "chunks": list(CHUNKS), "dtype": dtype,
            "compressor": compressor, "fill_value": fill, "order": order, "filters": filters,
            "dimension_separator": sep}


def _v3(data_type, codecs, *, sep="/", fill=0):
    return {"zarr_format": 3, "node_type": "array", "shape": list(SHAPE),
            "data_type": data_type,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(CHUNKS)}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": sep}},
            "fill_value": fill, "codecs": codecs, "attributes": {}}


CONFIGS = {
    "v3-slash-u2-zstd": _v3("uint16", [{"name": "bytes", "configuration": {"endian": "little"}},
                                       {"name": "zstd",
                                        "configuration": {"level": 0, "checksum": False}}]),
    "v3-dot-bigendian-f4-blosc": _v3(
        "float32", [{"name": "bytes", "configuration": {"endian": "big"}},
                    {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5,
                                                        "shuffle": "shuffle", "typesize": 4,
                                                        "blocksize": 0}}],
        sep=".", fill=1.5),
    "v2-dot-i4-F-zlib": _v2("<i4", order="F", compressor={"id": "zlib", "level": 1}, fill=-1),
    "v2-slash-i2-delta-blosc": _v2(
        "<i2", sep="/", filters=[{"id": "delta", "dtype": "<i2"}],
        compressor={"id": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 2, "blocksize": 0},
        fill=3),
    "v2-dot-bigendian-u8-raw": _v2(">u8"),
}


def _create(path, doc):
    """An empty array at ``path`` from a metadata document (no chunks yet)."""
    os.makedirs(path)
    name = ".zarray" if doc["zarr_format"] == 2 else "zarr.json"
    with open(os.path.join(path, name), "w") as f:
        json.dump(doc, f)
    return ngffcore.open_array(path)._meta


def _root(path):
    return os.fsencode(os.path.join(path, ""))


def _random(rng, dtype, shape):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), shape).astype(dtype)


def _aligned_box(rng, shape=SHAPE, chunks=CHUNKS):
    """A random selection of whole chunks (edges end at the array's end)."""
    start, stop = [], []
    for n, c in zip(shape, chunks):
        count = -(-n // c)
        a = int(rng.integers(0, count))
        b = int(rng.integers(a + 1, count + 1))
        start.append(a * c)
        stop.append(min(b * c, n))
    return tuple(start), tuple(stop)


def _write(meta, path, value, start, stop, *, skip_fill=False, confine=True, prefix="",
           store_root=None, fsync=False):
    root = _root(path)
    return _core.write_chunk_files(
        meta.codec.pipeline, value, meta.shape, meta.grid_shape, start, stop, root,
        meta.key_encoding, meta.key_separator, prefix,
        (store_root or root) if confine else None, skip_fill=skip_fill, fsync=fsync)


def _files(path):
    out = {}
    for dirpath, _, names in os.walk(path):
        for name in names:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


def _read_zarr(path):
    return zarr.open_array(path, mode="r")[...]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_files_decode_with_zarr_python_and_match_encode_batch(tmp_path, name):
    doc = CONFIGS[name]
    path = str(tmp_path / "a.zarr")
    meta = _create(path, doc)
    dtype = meta.dtype
    rng = np.random.default_rng(sum(map(ord, name)))
    model = np.full(SHAPE, doc["fill_value"], dtype=dtype)
    for step in range(8):
        start, stop = _aligned_box(rng)
        sel = tuple(slice(a, b) for a, b in zip(start, stop))
        box = tuple(b - a for a, b in zip(start, stop))
        if step % 4 == 3:  # a broadcast scalar: 0 strides, read-only
            value = np.broadcast_to(_random(rng, dtype, ()), box)
        elif step % 4 == 2:  # negative strides
            value = np.flip(_random(rng, dtype, box), axis=(0, 2))
        elif step % 4 == 1:  # non-contiguous
            value = _random(rng, dtype, box + (2,))[..., 1]
        else:
            value = _random(rng, dtype, box)
        written, deleted, nbytes = _write(meta, path, value, start, stop)
        coords, boxes = _core.plan_chunks(SHAPE, CHUNKS, start, stop)
        keys = _core.chunk_keys(coords, meta.key_encoding, meta.key_separator)
        assert written == list(range(len(keys))) and deleted == []
        expected = _core.encode_batch(meta.codec.pipeline, value, boxes, [None] * len(keys),
                                      keys, skip_fill=False)
        files = _files(path)
        for key, enc in zip(keys, expected):
            assert enc is not None
            assert files[key] == bytes(enc), key
        assert nbytes == sum(len(files[k]) for k in keys)
        model[sel] = value
        np.testing.assert_array_equal(_read_zarr(path), model)
    assert not [k for k in _files(path) if k.endswith(".partial")]
    # the whole array at once, edges included
    value = _random(rng, dtype, SHAPE)
    _write(meta, path, value, (0, 0, 0), SHAPE, fsync=True)
    np.testing.assert_array_equal(_read_zarr(path), value)
    assert not [k for k in _files(path) if k.endswith(".partial")]


def test_skip_fill_deletes_existing_and_writes_no_new_fill_chunks(tmp_path):
    path = str(tmp_path / "a.zarr")
    meta = _create(path, CONFIGS["v2-slash-i2-delta-blosc"])  # fill 3
    data = np.arange(np.prod(SHAPE), dtype="<i2").reshape(SHAPE)
    _write(meta, path, data[:8], (0, 0, 0), (8, 13, 7))  # chunk rows 0 and 1
    before = set(_files(path)) - {".zarray"}
    assert len(before) == 2 * 3 * 3
    # rows 1 and 2 all fill: row 1's files go, row 2 (never written) stays absent
    fill = np.full((7, 13, 7), 3, dtype="<i2")
    written, deleted, nbytes = _write(meta, path, fill, (4, 0, 0), (11, 13, 7), skip_fill=True)
    assert written == [] and nbytes == 0
    assert deleted == list(range(2 * 3 * 3))
    assert set(_files(path)) - {".zarray"} == {k for k in before if k.startswith("0/")}
    model = np.full(SHAPE, 3, dtype="<i2")
    model[:4] = data[:4]
    np.testing.assert_array_equal(_read_zarr(path), model)
    # one chunk of the row not all fill: written; the rest deleted (already absent: fine)
    fill[0, 0, 0] = 5
    written, deleted, _ = _write(meta, path, fill, (4, 0, 0), (11, 13, 7), skip_fill=True)
    assert written == [0] and len(deleted) == 17
    assert set(_files(path)) - {".zarray"} - before == set() and "1/0/0" in _files(path)
    model[4, 0, 0] = 5
    np.testing.assert_array_equal(_read_zarr(path), model)
    # without skip_fill an all-fill chunk is written
    written, deleted, _ = _write(meta, path, np.full((3, 5, 3), 3, "<i2"), (8, 0, 0),
                                 (11, 5, 3))
    assert written == [0] and deleted == [] and "2/0/0" in _files(path)
    assert not [k for k in _files(path) if k.endswith(".partial")]


@pytest.mark.parametrize("absolute", [True, False])
def test_symlink_leading_outside_the_root_is_refused(tmp_path, absolute):
    store = tmp_path / "store"
    outside = tmp_path / "outside"
    outside.mkdir()
    path = str(store / "arr")
    meta = _create(path, CONFIGS["v3-slash-u2-zstd"])
    os.symlink(str(outside) if absolute else "../../outside", os.path.join(path, "c"))
    value = np.ones(SHAPE, dtype="uint16")
    with pytest.raises(StoreError, match="symbolic link leads outside") as info:
        _write(meta, path, value, (0, 0, 0), SHAPE, prefix="arr/",
               store_root=_root(str(store)))
    assert info.value.key == "arr/c/0/0/0"
    assert "arr/c/0/0/0" in str(info.value)
    assert info.value.written_chunks == [] and info.value.deleted_chunks == []
    assert os.listdir(outside) == []  # no directory, no temporary file
    # a chunk file outside is neither replaced nor deleted through the link
    os.makedirs(outside / "0" / "0")
    (outside / "0" / "0" / "0").write_bytes(b"precious")
    with pytest.raises(StoreError, match="symbolic link leads outside"):
        _write(meta, path, np.zeros(SHAPE, "uint16"), (0, 0, 0), SHAPE, skip_fill=True,
               store_root=_root(str(store)))
    with pytest.raises(StoreError, match="symbolic link leads outside"):
        _write(meta, path, value, (0, 0, 0), SHAPE, store_root=_root(str(store)))
    assert (outside / "0" / "0" / "0").read_bytes() == b"precious"
    assert os.listdir(outside / "0" / "0") == ["0"]
    # unconfined, the link is followed
    _write(meta, path, value, (0, 0, 0), SHAPE, confine=False)
    np.testing.assert_array_equal(_read_zarr(path), value)


@pytest.mark.parametrize("absolute", [True, False])
def test_symlink_staying_inside_the_root_works(tmp_path, absolute):
    store = tmp_path / "store"
    path = str(store / "arr")
    meta = _create(path, CONFIGS["v3-slash-u2-zstd"])
    target = store / "elsewhere"
    target.mkdir()
    os.symlink(str(target) if absolute else "../elsewhere", os.path.join(path, "c"))
    value = np.arange(np.prod(SHAPE), dtype="uint16").reshape(SHAPE)
    written, _, _ = _write(meta, path, value, (0, 0, 0), SHAPE, store_root=_root(str(store)))
    assert len(written) == 3 * 3 * 3
    assert sorted(os.listdir(target)) == ["0", "1", "2"]
    np.testing.assert_array_equal(_read_zarr(path), value)


def test_relative_link_works_while_other_files_are_renamed(tmp_path):
    """openat2 answers EAGAIN when a rename anywhere races a ".." step; a busy machine (other
    writers' atomic renames) must not turn that into a failed write. Failed before the retry."""
    store = tmp_path / "store"
    path = str(store / "arr")
    meta = _create(path, CONFIGS["v3-slash-u2-zstd"])
    (store / "elsewhere").mkdir()
    os.symlink("../elsewhere", os.path.join(path, "c"))
    value = np.arange(np.prod(SHAPE), dtype="uint16").reshape(SHAPE)
    storm = tmp_path / "storm"
    storm.mkdir()
    code = ("import os, sys\n"
            "a, b = os.path.join(sys.argv[1], 'a'), os.path.join(sys.argv[1], 'b')\n"
            "open(a, 'w').close()\n"
            "print('ready', flush=True)\n"
            "while True:\n    os.rename(a, b)\n    os.rename(b, a)\n")
    renamer = subprocess.Popen([sys.executable, "-c", code, str(storm)], stdout=subprocess.PIPE)
    try:
        assert renamer.stdout.readline() == b"ready\n"
        for _ in range(20):
            written, _, _ = _write(meta, path, value, (0, 0, 0), SHAPE,
                                   store_root=_root(str(store)))
            assert len(written) == 3 * 3 * 3
    finally:
        renamer.kill()
        renamer.wait()
        renamer.stdout.close()
    np.testing.assert_array_equal(_read_zarr(path), value)


def test_path_component_that_is_a_file_names_the_key_and_lists_what_succeeded(tmp_path):
    store = tmp_path / "store"
    path = str(store / "arr")
    meta = _create(path, CONFIGS["v3-slash-u2-zstd"])
    os.makedirs(os.path.join(path, "c"))
    with open(os.path.join(path, "c", "1"), "wb") as f:  # where chunk row 1's directory goes
        f.write(b"not a directory")
    value = np.arange(np.prod(SHAPE), dtype="uint16").reshape(SHAPE)
    with pytest.raises(StoreError) as info:
        _write(meta, path, value, (0, 0, 0), SHAPE, prefix="arr/", store_root=_root(str(store)))
    exc = info.value
    assert isinstance(exc, OSError)
    assert exc.key == "arr/c/1/0/0"  # the lowest failed chunk of the plan
    assert "arr/c/1/0/0" in str(exc) and "Not a directory" in str(exc)
    assert exc.written_chunks == list(range(9)) + list(range(18, 27))  # rows 0 and 2
    assert exc.deleted_chunks == []
    got = zarr.open_array(path, mode="r")
    np.testing.assert_array_equal(got[0:4], value[0:4])  # the files written are complete
    np.testing.assert_array_equal(got[8:], value[8:])
    assert not [k for k in _files(path) if k.endswith(".partial")]


def test_rename_failure_removes_the_temporary_file(tmp_path):
    path = str(tmp_path / "a.zarr")
    meta = _create(path, CONFIGS["v2-dot-i4-F-zlib"])
    os.makedirs(os.path.join(path, "0.0.0", "sub"))  # a directory where the key goes
    value = np.ones((4, 5, 3), dtype="<i4")
    with pytest.raises(StoreError, match=r"'0\.0\.0'.*rename") as info:
        _write(meta, path, value, (0, 0, 0), (4, 5, 3))
    assert info.value.written_chunks == []
    assert sorted(os.listdir(path)) == [".zarray", "0.0.0"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory(tmp_path):
    path = str(tmp_path / "a.zarr")
    meta = _create(path, CONFIGS["v3-slash-u2-zstd"])
    os.makedirs(os.path.join(path, "c", "1"))
    os.chmod(os.path.join(path, "c", "1"), 0o555)
    value = np.arange(np.prod(SHAPE), dtype="uint16").reshape(SHAPE)
    try:
        with pytest.raises(StoreError, match=r"'c/1/0/0'.*Permission denied") as info:
            _write(meta, path, value, (0, 0, 0), SHAPE)
        assert info.value.written_chunks == list(range(9)) + list(range(18, 27))
        np.testing.assert_array_equal(zarr.open_array(path, mode="r")[0:4], value[0:4])
    finally:
        os.chmod(os.path.join(path, "c", "1"), 0o755)


def test_many_threads_on_disjoint_chunks(tmp_path):
    path = str(tmp_path / "a.zarr")
    doc = dict(CONFIGS["v3-slash-u2-zstd"], shape=[32, 20, 7])
    meta = _create(path, doc)
    n_threads, rounds = 8, 10
    finals = {}
    barrier = threading.Barrier(n_threads)
    errors = []

    def work(t):
        rng = np.random.default_rng(t)
        start, stop = (4 * t, 0, 0), (4 * t + 4, 20, 7)
        try:
            barrier.wait()
            for _ in range(rounds):
                value = rng.integers(0, 60000, (4, 20, 7)).astype("uint16")
                _write(meta, path, value, start, stop)
            finals[t] = value
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    expected = np.concatenate([finals[t] for t in range(n_threads)])
    np.testing.assert_array_equal(_read_zarr(path), expected)
    assert not [k for k in _files(path) if k.endswith(".partial")]


def test_arguments_are_checked_before_anything_is_written(tmp_path):
    path = str(tmp_path / "a.zarr")
    meta = _create(path, CONFIGS["v3-slash-u2-zstd"])
    value = np.ones((4, 5, 3), dtype="uint16")
    with pytest.raises(ValueError, match="whole chunks"):  # old bytes would be lost
        _write(meta, path, value, (1, 0, 0), (5, 5, 3))
    with pytest.raises(ValueError, match="whole chunks"):
        _write(meta, path, np.ones((3, 5, 3), "uint16"), (0, 0, 0), (3, 5, 3))
    with pytest.raises(ValueError, match="shape"):
        _write(meta, path, np.ones((4, 5, 2), "uint16"), (0, 0, 0), (4, 5, 3))
    with pytest.raises(ValueError, match="dimensions"):
        _write(meta, path, np.ones((4, 5, 3), "uint32"), (0, 0, 0), (4, 5, 3))
    with pytest.raises(ValueError, match="end in '/'"):
        _core.write_chunk_files(meta.codec.pipeline, value, SHAPE, CHUNKS, (0, 0, 0),
                                (4, 5, 3), os.fsencode(path), meta.key_encoding, "/",
                                skip_fill=False)
    with pytest.raises(ValueError, match="not beneath"):
        _core.write_chunk_files(meta.codec.pipeline, value, SHAPE, CHUNKS, (0, 0, 0),
                                (4, 5, 3), _root(path), meta.key_encoding, "/", "",
                                os.fsencode(str(tmp_path / "other" / "")), skip_fill=False)
    assert set(_files(path)) == {"zarr.json"}
    assert _write(meta, path, np.ones((0, 5, 3), "uint16"), (0, 0, 0), (0, 5, 3)) == ([], [], 0)
