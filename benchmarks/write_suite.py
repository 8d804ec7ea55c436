"""Shared pieces of the write benchmarks (issue 15): the volume, layouts, writers, the encode
limit, the write floor, checks and peak memory. Used by ``test_bench_write.py``; the S3 parts
(moto with injected latency) are in ``write_s3.py``.

The data is the read suite's volume (``make_data``: 256 x 2048 x 1024 uint16, 1 GiB), read once
per process from ``v2_zstd`` into one numpy array; every writer writes that array.

Peak memory of one write, each writer in a fresh process::

    python benchmarks/write_suite.py --memory ngffcore v2 [--small]

prints ``{"before": …, "peak": …, "delta": …}`` (VmRSS before the write with the volume
loaded, VmHWM after it, peak counter reset just before; see ``memory.py``).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import local_suite as bc  # noqa: E402
import make_data  # noqa: E402

THREADS = bc.THREADS
MiB = 2**20
#: Timed rounds (no warm-up: a first untimed write doubles as the check run). Whole writes of
#: 1 GiB take seconds for the slower peers.
ROUNDS = {"full": 3, "overwrite": 3, "s3": 3}
N_OVERWRITES = 200
OVERWRITE_SEED = 15
#: Where writers write (git-ignored with the rest of ``data/``); emptied between rounds.
OUT_ROOT = HERE / "data" / "write-out"

V2_COMPRESSOR = {"id": "blosc", "cname": "zstd", "clevel": 5, "shuffle": 2, "blocksize": 0}
V3_INNER_CODECS = [{"name": "bytes", "configuration": {"endian": "little"}},
                   {"name": "zstd", "configuration": {"level": 3, "checksum": False}}]
V3_INDEX_CODECS = [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]


@dataclass(frozen=True)
class Layout:
    key: str  # "v2" = workload (a), "v3" = workload (b)
    zarr_format: int
    chunks: tuple[int, ...]  # inner chunks when sharded
    shards: tuple[int, ...] | None
    note: str

    @property
    def objects(self) -> tuple[int, ...]:
        """Shape of one stored object (shard or chunk)."""
        return self.shards or self.chunks

    def object_nbytes(self) -> int:
        return math.prod(self.objects) * make_data.DTYPE.itemsize

    def n_objects(self, shape: tuple[int, ...]) -> int:
        return math.prod(math.ceil(s / c) for s, c in zip(shape, self.objects))

    def n_chunks(self, shape: tuple[int, ...]) -> int:
        return math.prod(math.ceil(s / c) for s, c in zip(shape, self.chunks))


LAYOUTS = {
    "v2": Layout("v2", 2, (64, 256, 256), None,
                 "(a) Zarr v2, blosc zstd clevel 5 bitshuffle, chunks 64x256x256"),
    "v2s": Layout("v2s", 2, (8, 64, 64), None,
                  "(c') Zarr v2, blosc zstd clevel 5 bitshuffle, small chunks 8x64x64 (64 KiB)"),
    "v3": Layout("v3", 3, (32, 128, 128), (64, 512, 512),
                 "(b) Zarr v3, shards 64x512x512 of inner chunks 32x128x128, bytes + zstd 3, index bytes + crc32c"),
}

_VOLUME: dict[bool, np.ndarray] = {}


def volume(small: bool) -> np.ndarray:
    """The read suite's volume, read once per process (from the generated ``v2_zstd``)."""
    if small not in _VOLUME:
        make_data.ensure_data(small)
        ngffcore = bc.import_ngffcore()
        _VOLUME.clear()
        _VOLUME[small] = ngffcore.open_array(str(make_data.dataset_path("v2_zstd", small)))[...]
    return _VOLUME[small]


# ---------------------------------------------------------------------------------------------
# Writers: create the array (metadata) and write the whole volume, one call, into `path`
# ---------------------------------------------------------------------------------------------


def ngffcore_create(layout: Layout, location: str, shape: tuple[int, ...], **store_options: Any) -> Any:
    ngffcore = bc.import_ngffcore()
    common: dict[str, Any] = dict(shape=shape, dtype=make_data.DTYPE, chunks=layout.chunks,
                                  fill_value=0, overwrite=True, **store_options)
    if layout.zarr_format == 2:
        return ngffcore.create_array(location, zarr_format=2, compressor=V2_COMPRESSOR, **common)
    return ngffcore.create_array(location, zarr_format=3, shards=layout.shards, codecs=V3_INNER_CODECS,
                                 **common)


def zarr_create(layout: Layout, store: Any, shape: tuple[int, ...], zarrs: bool = False) -> Any:
    zarr = bc.configure_zarr()
    import numcodecs

    common: dict[str, Any] = dict(store=store, shape=shape, dtype=make_data.DTYPE, fill_value=0,
                                  overwrite=True)
    with zarr.config.set(bc.ZARRS_CONFIG if zarrs else {}):
        if layout.zarr_format == 2:
            comp = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE)
            z = zarr.create_array(zarr_format=2, chunks=layout.chunks, compressors=comp, filters=None,
                                  **common)
        else:
            z = zarr.create_array(zarr_format=3, chunks=layout.chunks, shards=layout.shards,
                                  compressors=zarr.codecs.ZstdCodec(level=3, checksum=False), **common)
    pipe = type(z._async_array.codec_pipeline).__name__
    assert pipe == ("ZarrsCodecPipeline" if zarrs else "BatchedCodecPipeline"), pipe
    return z


def ts_metadata(layout: Layout, shape: tuple[int, ...]) -> dict[str, Any]:
    if layout.zarr_format == 2:
        return {"shape": list(shape), "chunks": list(layout.chunks), "dtype": "<u2", "order": "C",
                "compressor": V2_COMPRESSOR, "filters": None, "fill_value": 0}
    return {"shape": list(shape), "data_type": "uint16", "fill_value": 0,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(layout.shards or ())}},
            "chunk_key_encoding": {"name": "default"},
            "codecs": [{"name": "sharding_indexed", "configuration": {
                "chunk_shape": list(layout.chunks), "codecs": V3_INNER_CODECS,
                "index_codecs": V3_INDEX_CODECS, "index_location": "end"}}]}


def ts_create(layout: Layout, kvstore: dict[str, Any], shape: tuple[int, ...], context: Any = None) -> Any:
    import tensorstore as ts

    spec = {"driver": "zarr" if layout.zarr_format == 2 else "zarr3", "kvstore": kvstore,
            "metadata": ts_metadata(layout, shape)}
    return ts.open(spec, create=True, delete_existing=True,
                   context=context if context is not None else bc.ts_context()).result()


def local_writer(peer: str, layout: Layout, path: Path, vol: np.ndarray) -> Callable[[], None]:
    """The timed call of workloads (a)/(b) for a peer: create the array at ``path`` and write
    ``vol`` whole."""
    shape = vol.shape
    if peer == "ngffcore":
        def fn() -> None:
            ngffcore_create(layout, str(path), shape)[...] = vol
    elif peer in ("zarr", "zarrs"):
        zarr = bc.configure_zarr()

        def fn() -> None:
            z = zarr_create(layout, str(path), shape, zarrs=peer == "zarrs")
            with zarr.config.set(bc.ZARRS_CONFIG if peer == "zarrs" else {}):
                z[...] = vol
    elif peer == "tensorstore":
        def fn() -> None:
            t = ts_create(layout, {"driver": "file", "path": str(path)}, shape)
            t.write(vol).result()
    else:
        raise ValueError(peer)
    return fn


def open_existing(peer: str, path: Path, layout: Layout) -> Any:
    """A writable handle on an existing array (workload (c))."""
    if peer == "ngffcore":
        return bc.import_ngffcore().open_array(str(path), mode="r+")
    if peer in ("zarr", "zarrs"):
        zarr = bc.configure_zarr()
        with zarr.config.set(bc.ZARRS_CONFIG if peer == "zarrs" else {}):
            return zarr.open_array(str(path), mode="r+")
    if peer == "tensorstore":
        import tensorstore as ts

        spec = {"driver": "zarr" if layout.zarr_format == 2 else "zarr3",
                "kvstore": {"driver": "file", "path": str(path)}}
        return ts.open(spec, read=True, write=True, context=bc.ts_context()).result()
    raise ValueError(peer)


# ---------------------------------------------------------------------------------------------
# (c) single-chunk overwrites
# ---------------------------------------------------------------------------------------------

Box = tuple[slice, ...]


def chunk_box(index: tuple[int, ...], chunks: tuple[int, ...], shape: tuple[int, ...]) -> Box:
    return tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(index, chunks, shape))


def overwrites(layout: Layout, shape: tuple[int, ...]) -> list[tuple[Box, Box]]:
    """``N_OVERWRITES`` (destination chunk, source chunk) pairs, random (fixed seed), whole
    chunks of the same (full) shape so every value is a whole chunk; destination and source
    differ so a write that did nothing shows in the check."""
    grid = [s // c for s, c in zip(shape, layout.chunks)]  # full chunks only
    cells = [tuple(int(v) for v in np.unravel_index(i, grid)) for i in range(math.prod(grid))]
    rng = random.Random(OVERWRITE_SEED)
    out = []
    for _ in range(N_OVERWRITES):
        dst, src = rng.sample(cells, 2)
        out.append((chunk_box(dst, layout.chunks, shape), chunk_box(src, layout.chunks, shape)))
    return out


def box_start(box: Box) -> tuple[int, ...]:
    return tuple(int(s.start) for s in box)


def overwrite_expected(pairs: list[tuple[Box, Box]]) -> dict[tuple[int, ...], tuple[Box, Box]]:
    """Destination start -> (destination, source) of its last write (each a whole chunk)."""
    return {box_start(dst): (dst, src) for dst, src in pairs}


def overwriter(peer: str, handle: Any, vol: np.ndarray, pairs: list[tuple[Box, Box]]) -> Callable[[], None]:
    values = [(dst, vol[src]) for dst, src in pairs]  # views: every peer gets the same strided input
    if peer == "tensorstore":
        def fn() -> None:
            for dst, v in values:
                handle[dst].write(v).result()
    elif peer == "zarrs":
        zarr = bc.configure_zarr()

        def fn() -> None:
            with zarr.config.set(bc.ZARRS_CONFIG):
                for dst, v in values:
                    handle[dst] = v
    else:
        def fn() -> None:
            for dst, v in values:
                handle[dst] = v
    return fn


# ---------------------------------------------------------------------------------------------
# Limit (native encode, no I/O) and floor (writing already-encoded bytes)
# ---------------------------------------------------------------------------------------------


def encoder(arr: Any, vol: np.ndarray, sels: list[Box] | None = None, batch: int | None = None
            ) -> Callable[[], list[Any]]:
    """ngffcore's core encoding the (inner) chunks of ``sels`` (default: the whole array) of
    ``vol`` with ``arr``'s leaf pipeline: ``_core.plan_chunks`` untimed, then one
    ``_core.encode_batch`` per batch of ``batch`` chunks (default: about 2 x threads objects'
    worth, as a write batches), all cores (the native pool). Returns the last batch's output."""
    from ngffcore import _core

    leaf = arr.metadata.leaf_codec
    pipe = leaf.pipeline
    calls = []
    for sel in sels or [tuple(slice(0, s) for s in vol.shape)]:
        start = tuple(s.start for s in sel)
        stop = tuple(s.stop for s in sel)
        _coords, boxes = _core.plan_chunks(vol.shape, leaf.chunk_shape, start, stop)
        # boxes' third part is the position in `vol`, because the value is the whole volume
        per = batch or max(1, 2 * THREADS * len(boxes) // max(1, _objects_in(arr, sel)))
        for i in range(0, len(boxes), per):
            b = np.ascontiguousarray(boxes[i:i + per])
            calls.append((b, [None] * len(b), [f"chunk {i + k}" for k in range(len(b))]))

    def fn() -> list[Any]:
        out: list[Any] = []
        for b, bases, keys in calls:
            out = _core.encode_batch(pipe, vol, b, bases, keys, skip_fill=False)
        return out

    return fn


def _objects_in(arr: Any, sel: Box) -> int:
    obj = arr.metadata.grid_shape
    return math.prod(math.ceil((s.stop - s.start) / c) for s, c in zip(sel, obj))


def read_objects(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (relative key -> bytes)."""
    out = {}
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = Path(root) / name
            out[full.relative_to(path).as_posix()] = full.read_bytes()
    return out


def write_files(path: Path, objects: Any) -> None:
    """Write ``objects`` (a dict or (key, bytes) pairs) as files under ``path`` the way
    ngffcore's local store does: each into a temporary file beside it, then renamed over it
    (no fsync, the store's default), one after the other."""
    made: set[str] = set()
    for key, data in (objects.items() if isinstance(objects, dict) else objects):
        full = os.path.join(path, key)
        directory = os.path.dirname(full)
        if directory not in made:
            os.makedirs(directory, exist_ok=True)
            made.add(directory)
        tmp = f"{full}.partial"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            view = memoryview(data)
            done = 0
            while done < len(view):
                done += os.write(fd, view[done:])
        finally:
            os.close(fd)
        os.replace(tmp, full)


def fresh_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)


# ---------------------------------------------------------------------------------------------
# Checks (zarr-python reads back what each writer wrote)
# ---------------------------------------------------------------------------------------------


def spot_boxes(shape: tuple[int, ...], chunks: tuple[int, ...], n: int = 4) -> list[Box]:
    """The first and last chunk and ``n`` random unaligned boxes of about a chunk."""
    rng = random.Random(7)
    boxes = [tuple(slice(0, c) for c in chunks), tuple(slice(max(0, s - c), s) for s, c in zip(shape, chunks))]
    for _ in range(n):
        box = []
        for s, c in zip(shape, chunks):
            a = rng.randrange(0, max(1, s - c))
            box.append(slice(a, min(s, a + c + c // 3)))
        boxes.append(tuple(box))
    return boxes


def check_with_zarr(path: str | Any, expect: Callable[[Box], np.ndarray], boxes: list[Box]) -> str | None:
    """Read ``boxes`` back with zarr-python (default pipeline); the first mismatch, or None."""
    zarr = bc.configure_zarr()
    z = zarr.open_array(path, mode="r")
    for box in boxes:
        got, want = z[box], expect(box)
        if got.shape != want.shape or not np.array_equal(got, want):
            return f"zarr-python reads {box} differently: {bc.first_mismatch(got, want)}"
    return None


# ---------------------------------------------------------------------------------------------
# Peak memory (child process per writer)
# ---------------------------------------------------------------------------------------------


def memory_budget(layout: Layout, input_nbytes: int) -> int:
    return input_nbytes + 2 * THREADS * layout.object_nbytes() + 64 * MiB


def _memory_child(peer: str, layout_key: str, small: bool) -> dict[str, Any]:
    import memory

    layout = LAYOUTS[layout_key]
    vol = volume(small)
    path = OUT_ROOT / f"memory-{peer}-{layout_key}.zarr"
    fresh_dir(path)
    fn = local_writer(peer, layout, path, vol)
    gc.collect()
    before = memory._vm_rss()
    reset = memory._reset_peak()
    fn()
    peak = memory._status_bytes("VmHWM")
    shutil.rmtree(path, ignore_errors=True)
    return {"peer": peer, "layout": layout_key, "before": before, "peak": peak, "delta": peak - before,
            "peak_reset": reset, "in_nbytes": int(vol.nbytes)}


def measure_memory(peer: str, layout_key: str, small: bool, timeout: float = 900) -> dict[str, Any]:
    """One writer's peak in a fresh process: ``{"peer", "layout", "delta", "in_nbytes", "budget"}``
    or ``error``."""
    import subprocess

    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory", peer, layout_key] + (["--small"] if small else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    in_nbytes = math.prod(make_data.shape_for(small)) * make_data.DTYPE.itemsize
    base = {"peer": peer, "layout": layout_key, "in_nbytes": in_nbytes,
            "budget": memory_budget(LAYOUTS[layout_key], in_nbytes)}
    if proc.returncode != 0:
        return {**base, "error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
    return {**base, **json.loads(proc.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="write benchmark helpers")
    ap.add_argument("--memory", nargs=2, metavar=("PEER", "LAYOUT"), required=True)
    ap.add_argument("--small", action="store_true")
    args = ap.parse_args(argv)
    small = args.small or make_data.env_small()
    print(json.dumps(_memory_child(args.memory[0], args.memory[1], small)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
