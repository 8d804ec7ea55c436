"""Local stores and hostile file systems (issue 13): symbolic links leading outside the
opened root are refused unless the store follows external links; FIFOs, sockets and devices
are never read (a clear error at once, never a hang); metadata is bounded while it is read.
Expected pixels come from zarr-python reading the same files."""

from __future__ import annotations

import copy
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numcodecs
import numpy as np
import pytest
import zarr
from zarr.codecs import ZstdCodec

import ngffcore
from ngffcore.store import localfile
from ngffcore.zarr.cache import ChunkCache
from ngffcore.limits import MAX_METADATA_BYTES
from ngffcore.store.location import open_store

DATA = np.arange(64, dtype=np.uint16).reshape(8, 8)
OPTION = "follow_external_links"


def guarded(fn: Callable[[], Any], fifos: tuple[Path, ...] = (), timeout: float = 10) -> Any:
    """``fn()`` in a thread: a regression that blocks (on a FIFO) fails instead of hanging.
    A blocked open is released by opening the FIFO's other end."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        for fifo in fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        pytest.fail(f"still blocked after {timeout} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def write_image(root: Path, level: Path | None = None) -> None:
    """A one-level 0.4 image at ``root`` whose level array (zarr v2, zstd) is written at
    ``level`` (default: ``root / "0"``)."""
    zarr.create_array(str(level or root / "0"), data=DATA, chunks=(4, 4), zarr_format=2,
                      compressors=numcodecs.Zstd(level=1))
    attrs = {"multiscales": [{"version": "0.4", "axes": [{"name": "y", "type": "space"},
                                                         {"name": "x", "type": "space"}],
                              "datasets": [{"path": "0", "coordinateTransformations": [
                                  {"type": "scale", "scale": [1.0, 1.0]}]}]}]}
    (root / ".zgroup").write_text('{"zarr_format": 2}')
    (root / ".zattrs").write_text(json.dumps(attrs))


def expected(path: Path) -> np.ndarray:
    return np.asarray(zarr.open_array(str(path), mode="r")[...])


def refused_as_outside(exc: pytest.ExceptionInfo[ngffcore.StoreError], key: str) -> None:
    text = str(exc.value)
    assert isinstance(exc.value, OSError) and isinstance(exc.value, ngffcore.NgffError)
    assert key in text and "outside the store root" in text and OPTION in text, text


# -- links --------------------------------------------------------------------------------------

@pytest.mark.parametrize("absolute", [False, True])
def test_level_dir_linked_inside_the_root_reads(tmp_path, absolute):
    root = tmp_path / "img.zarr"
    root.mkdir()
    write_image(root, root / "data" / "0")
    target = root / "data" / "0"
    (root / "0").symlink_to(target if absolute else Path("data") / "0")
    image = ngffcore.open(root)
    np.testing.assert_array_equal(image.levels[0][...], expected(target))
    np.testing.assert_array_equal(image.levels[0][...], DATA)


def test_level_dir_linked_outside_the_root_is_refused(tmp_path):
    root = tmp_path / "img.zarr"
    root.mkdir()
    outside = tmp_path / "elsewhere" / "0"
    write_image(root, outside)
    (root / "0").symlink_to(outside)
    with pytest.raises(ngffcore.StoreError) as exc:
        ngffcore.open(root)
    refused_as_outside(exc, "0/.zarray")
    image = ngffcore.open(root, follow_external_links=True)
    np.testing.assert_array_equal(image.levels[0][...], expected(outside))


@pytest.fixture
def array_with_outside_chunk(tmp_path):
    """A v2 array whose chunk 1.0 is a link to a copy outside its root."""
    root = tmp_path / "a.zarr"
    zarr.create_array(str(root), data=DATA, chunks=(4, 4), zarr_format=2,
                      compressors=numcodecs.Zstd(level=1))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(root / "1.0", outside / "1.0")
    (root / "1.0").symlink_to(outside / "1.0")
    return root


@pytest.mark.parametrize("path", ["fast", "cache", "async"])
def test_chunk_linked_outside_the_root_is_refused(array_with_outside_chunk, path):
    root = array_with_outside_chunk
    ref = expected(root)  # zarr-python follows the link
    for follow in (False, True):
        a = ngffcore.open_array(root, follow_external_links=follow)
        read = {"fast": lambda: a[...],
                "cache": lambda: a.read(cache=ChunkCache()),
                "async": lambda: ngffcore.store.ioloop.run_on_io_loop(a.read_async())}[path]
        if follow:
            np.testing.assert_array_equal(read(), ref)
        else:
            with pytest.raises(ngffcore.StoreError) as exc:
                read()
            refused_as_outside(exc, "1.0")
            np.testing.assert_array_equal(a[:4], ref[:4])  # chunks inside still read


def test_chunk_decoded_in_python_linked_outside_is_refused(tmp_path):
    """lzma is decoded in Python: its file is read there, with the same rule."""
    root = tmp_path / "a.zarr"
    zarr.create_array(str(root), data=DATA, chunks=(4, 4), zarr_format=2,
                      compressors=numcodecs.LZMA())
    (tmp_path / "elsewhere").mkdir()
    shutil.move(root / "0.1", tmp_path / "elsewhere" / "0.1")
    (root / "0.1").symlink_to(tmp_path / "elsewhere" / "0.1")
    with pytest.raises(ngffcore.StoreError) as exc:
        ngffcore.open_array(root)[...]
    refused_as_outside(exc, "0.1")
    got = ngffcore.open_array(root, follow_external_links=True)[...]
    np.testing.assert_array_equal(got, expected(root))


def test_shard_linked_outside_the_root_is_refused(tmp_path):
    root = tmp_path / "s.zarr"
    zarr.create_array(str(root), data=DATA, shards=(4, 8), chunks=(2, 4), zarr_format=3,
                      compressors=ZstdCodec(level=1))
    (tmp_path / "elsewhere").mkdir()
    shutil.move(root / "c" / "1" / "0", tmp_path / "elsewhere" / "shard")
    (root / "c" / "1" / "0").symlink_to(tmp_path / "elsewhere" / "shard")
    with pytest.raises(ngffcore.StoreError) as exc:
        ngffcore.open_array(root)[...]
    refused_as_outside(exc, "c/1/0")
    np.testing.assert_array_equal(
        ngffcore.open_array(root, follow_external_links=True)[...], expected(root))


def test_zattrs_linked_outside_the_root_is_refused(tmp_path):
    root = tmp_path / "img.zarr"
    root.mkdir()
    write_image(root)
    (tmp_path / "attrs.json").write_bytes((root / ".zattrs").read_bytes())
    (root / ".zattrs").unlink()
    (root / ".zattrs").symlink_to(tmp_path / "attrs.json")
    with pytest.raises(ngffcore.StoreError) as exc:
        ngffcore.open(root)
    refused_as_outside(exc, ".zattrs")
    image = ngffcore.open(root, follow_external_links=True)
    np.testing.assert_array_equal(image.levels[0][...], expected(root / "0"))


def test_dangling_links_read_as_missing(tmp_path):
    root = tmp_path / "a.zarr"
    zarr.create_array(str(root), data=DATA, chunks=(4, 4), zarr_format=2, fill_value=7,
                      compressors=numcodecs.Zstd(level=1))
    (root / "0.0").unlink()
    (root / "0.0").symlink_to("gone")  # inside the root, to nothing
    (root / "1.1").unlink()
    (root / "1.1").symlink_to(tmp_path / "gone")  # outside, to nothing
    ref = expected(root)
    assert (ref[:4, :4] == 7).all() and (ref[4:, 4:] == 7).all()
    np.testing.assert_array_equal(ngffcore.open_array(root)[...], ref)


def test_the_option_survives_pickling_and_copies(array_with_outside_chunk):
    root = array_with_outside_chunk
    store = open_store(root, follow_external_links=True)
    for again in (pickle.loads(pickle.dumps(store)), copy.copy(store), copy.deepcopy(store)):
        assert again.follow_external_links is True
    a = ngffcore.open_array(root, follow_external_links=True)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(a))[...], expected(root))
    strict = pickle.loads(pickle.dumps(ngffcore.open_array(root)))
    with pytest.raises(ngffcore.StoreError):
        strict[...]
    assert open_store(f"file://{root}", follow_external_links=True
                               ).follow_external_links is True


def test_local_store_options_are_checked(tmp_path):
    with pytest.raises(TypeError, match="local paths take no store options.*region"):
        open_store(tmp_path, region="eu-west-1")
    with pytest.raises(TypeError, match=OPTION):
        open_store(tmp_path, follow_external_links="yes")


# -- special files ------------------------------------------------------------------------------

@pytest.fixture
def image(tmp_path):
    root = tmp_path / "img.zarr"
    root.mkdir()
    write_image(root)
    return root


def test_fifo_as_zattrs_fails_at_once(image):
    (image / ".zattrs").unlink()
    os.mkfifo(image / ".zattrs")
    with pytest.raises(ngffcore.StoreError, match=r"\.zattrs.*not a regular file \(FIFO\)"):
        guarded(lambda: ngffcore.open(image), (image / ".zattrs",))


def test_fifo_as_zarr_json_fails_at_once(tmp_path):
    root = tmp_path / "a.zarr"
    zarr.create_array(str(root), data=DATA, chunks=(4, 4), zarr_format=3)
    (root / "zarr.json").unlink()
    os.mkfifo(root / "zarr.json")
    for opener in (ngffcore.open_array, ngffcore.open):
        with pytest.raises(ngffcore.StoreError, match=r"zarr\.json.*not a regular file \(FIFO\)"):
            guarded(lambda: opener(root), (root / "zarr.json",))


@pytest.mark.parametrize("path", ["fast", "cache", "python"])
def test_fifo_as_chunk_fails_at_once(tmp_path, path):
    root = tmp_path / "a.zarr"
    codec = numcodecs.LZMA() if path == "python" else numcodecs.Zstd(level=1)
    zarr.create_array(str(root), data=DATA, chunks=(4, 4), zarr_format=2, compressors=codec)
    (root / "1.0").unlink()
    os.mkfifo(root / "1.0")
    a = ngffcore.open_array(root)
    read = (lambda: a.read(cache=ChunkCache())) if path == "cache" else (lambda: a[...])
    with pytest.raises(ngffcore.StoreError, match=r"1\.0.*not a regular file \(FIFO\)"):
        guarded(read, (root / "1.0",))


def test_fifo_as_shard_fails_at_once(tmp_path):
    root = tmp_path / "s.zarr"
    zarr.create_array(str(root), data=DATA, shards=(4, 8), chunks=(2, 4), zarr_format=3,
                      compressors=None)
    shard = root / "c" / "0" / "0"
    shard.unlink()
    os.mkfifo(shard)
    a = ngffcore.open_array(root)
    with pytest.raises(ngffcore.StoreError, match=r"c/0/0.*not a regular file \(FIFO\)"):
        guarded(lambda: a[...], (shard,))
    np.testing.assert_array_equal(a[4:], DATA[4:])  # the other shard still reads


def test_socket_as_chunk_fails_at_once(tmp_path):
    root = tmp_path / "a.zarr"
    zarr.create_array(str(root), data=DATA, chunks=(4, 4), zarr_format=2)
    (root / "0.0").unlink()
    cwd = os.getcwd()
    os.chdir(root)  # AF_UNIX paths are short: bind relative to the directory
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind("0.0")
    finally:
        os.chdir(cwd)
    try:
        with pytest.raises(ngffcore.StoreError, match=r"0\.0.*not a regular file \(socket\)"):
            guarded(lambda: ngffcore.open_array(root)[...])
    finally:
        sock.close()


def isolated(code: str, timeout: float = 60) -> str:
    """Run ``code`` in a child process whose memory is capped: a regression that reads
    /dev/zero without end fails there (or times out) instead of exhausting the machine."""
    script = ("import resource\nresource.setrlimit(resource.RLIMIT_AS, (2**32, 2**32))\n"
              + code)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=timeout)
    return proc.stdout + proc.stderr


def test_zattrs_linked_to_dev_zero_is_refused_at_once(image):
    (image / ".zattrs").unlink()
    (image / ".zattrs").symlink_to("/dev/zero")
    code = f"""
import ngffcore
for follow in (False, True):
    try:
        ngffcore.open({str(image)!r}, follow_external_links=follow)
    except ngffcore.StoreError as exc:
        print("refused:", exc)
"""
    out = isolated(code).splitlines()
    assert len(out) == 2, out
    assert ".zattrs" in out[0] and "outside the store root" in out[0] and OPTION in out[0]
    assert ".zattrs" in out[1] and "not a regular file (character device)" in out[1]


# -- metadata size --------------------------------------------------------------------------

def test_huge_metadata_file_is_refused_before_it_is_read(image):
    """A sparse 256 MiB .zattrs: refused from its size, without reading it."""
    with open(image / ".zattrs", "r+b") as f:
        f.truncate(256 * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(ngffcore.MetadataError, match=r"\.zattrs.*limit"):
            ngffcore.open(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MAX_METADATA_BYTES // 4, peak


def test_metadata_read_stops_at_the_limit_when_the_size_is_not_known():
    """A file reporting no size (as /proc files do) is read no further than the limit."""
    r, w = os.pipe()
    try:
        os.write(w, b"x" * 5000)
        got = localfile.read_to_end(r, 0, 100)
        assert len(got) == 101  # one byte over: enough to say it is over
        assert os.read(r, 10000) == b"x" * (5000 - 101)  # the rest was never read
    finally:
        os.close(r)
        os.close(w)
