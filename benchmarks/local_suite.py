"""Shared pieces of the ngffcore benchmark suite: settings, workloads, peers, result checks.

Imported by ``conftest.py``, the ``test_bench_*.py`` modules and ``memory.py``. Nothing here
runs at import time except reading environment variables.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

import make_data
from prefetch import prefetch

#: Threads every reader is allowed (ngffcore pool, zarr executor/async limit, zarrs rayon pool,
#: tensorstore data-copy and file-io concurrency). The machine the suite was written for has 2.
THREADS = int(os.environ.get("NGFF_BENCH_THREADS", "2"))

#: Rounds per workload (each after one warm-up round). Sized so that the whole suite fits in
#: about 15 minutes on 2 cores with the 1 GiB data. ``NGFF_BENCH_ROUNDS=N`` caps all of them
#: (smoke runs use 1).
ROUNDS = {"full": 5, "roi": 10, "tiles": 5, "slab": 20}
STAGE_ROUNDS = 20  # micro benchmarks (plan, fetch, ...): rounds ...
STAGE_ITERATIONS = 5  # ... of this many calls each


def rounds_for(default: int) -> int:
    cap = os.environ.get("NGFF_BENCH_ROUNDS")
    return max(1, min(default, int(cap))) if cap else default


def warmup_rounds() -> int:
    return int(os.environ.get("NGFF_BENCH_WARMUP", "1"))


def small() -> bool:
    return make_data.env_small()


# ---------------------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------------------

Selection = tuple[Any, ...]
N_TILES = 200
TILE = 256
TILE_SEED = 1234


@dataclass(frozen=True)
class Workload:
    """One read (``selections`` has one entry) or a sequence of reads (tiles)."""

    name: str
    selections: tuple[Selection, ...]
    chunks_touched: int  # chunk objects (inner chunks when sharded) touched by all the reads
    note: str = ""

    @property
    def single(self) -> Selection:
        assert len(self.selections) == 1
        return self.selections[0]


def sel_shape(sel: Selection, shape: tuple[int, ...]) -> tuple[int, ...]:
    return np.broadcast_to(np.empty((), np.uint8), shape)[sel].shape


def chunks_touched(sel: Selection, shape: tuple[int, ...], chunks: tuple[int, ...]) -> int:
    n = 1
    for s, dim, c in zip(sel, shape, chunks):
        if isinstance(s, int):  # one chunk along this axis
            continue
        start, stop, _ = s.indices(dim)
        if stop <= start:
            return 0
        n *= (stop - 1) // c - start // c + 1
    return n


def roi_selection(shape: tuple[int, ...], chunks: tuple[int, ...], target: int = 64) -> Selection:
    """An unaligned box touching ~``target`` chunks: it starts half a chunk into the grid on every
    axis and ends half a chunk into the last chunk, so every face cuts through chunks.

    Chunks touched per axis are doubled, smallest first, while they fit in the grid; an axis
    left at one chunk gets a box from 1/4 to 3/4 of the chunk (still unaligned at both ends).
    """
    grid = [math.ceil(s / c) for s, c in zip(shape, chunks)]
    n = [1] * len(shape)
    while math.prod(n) < target:
        growable = [i for i in range(len(n)) if n[i] * 2 <= grid[i]]
        if not growable:
            break
        i = min(growable, key=lambda k: (n[k], -grid[k]))
        n[i] *= 2
    sel = []
    for dim, c, k in zip(shape, chunks, n):
        if c == 1:
            start, stop = 1 if dim > k else 0, (1 if dim > k else 0) + k
        elif k == 1:
            start, stop = c // 4, c // 4 + max(1, c // 2)
        else:
            start = c // 2
            stop = start + (k - 1) * c
        sel.append(slice(start, min(stop, dim)))
    return tuple(sel)


def tile_selections(shape: tuple[int, ...], n: int = N_TILES, tile: int = TILE) -> tuple[Selection, ...]:
    """``n`` single-plane tiles of ``tile`` x ``tile`` (fixed seed); half snapped to a 256 grid."""
    rng = random.Random(TILE_SEED)
    nz, ny, nx = shape
    th, tw = min(tile, ny), min(tile, nx)
    out = []
    for i in range(n):
        z = rng.randrange(nz)
        y = rng.randrange(ny - th + 1)
        x = rng.randrange(nx - tw + 1)
        if i % 2 == 0:  # aligned to the tile grid
            y -= y % th
            x -= x % tw
        out.append((z, slice(y, y + th), slice(x, x + tw)))
    return tuple(out)


def slab_selection(shape: tuple[int, ...]) -> Selection:
    """4 planes x 1024 x 1024, centred in z so it crosses a z chunk boundary (at nz/2)."""
    nz, ny, nx = shape
    z0 = max(0, nz // 2 - 2)
    h, w = min(1024, ny), min(1024, nx)
    y0, x0 = (ny - h) // 2, (nx - w) // 2
    return (slice(z0, min(z0 + 4, nz)), slice(y0, y0 + h), slice(x0, x0 + w))


WORKLOAD_NAMES = ("full", "roi", "tiles", "slab")


def workloads(shape: tuple[int, ...], chunks: tuple[int, ...]) -> dict[str, Workload]:
    full = tuple(slice(0, s) for s in shape)
    roi = roi_selection(shape, chunks)
    tiles = tile_selections(shape)
    slab = slab_selection(shape)

    def desc(sel: Selection) -> str:
        return "[" + ", ".join(str(s) if isinstance(s, int) else f"{s.start}:{s.stop}" for s in sel) + "]"

    return {
        "full": Workload("full", (full,), chunks_touched(full, shape, chunks), "whole array"),
        "roi": Workload("roi", (roi,), chunks_touched(roi, shape, chunks), f"unaligned box {desc(roi)}"),
        "tiles": Workload(
            "tiles", tiles, sum(chunks_touched(t, shape, chunks) for t in tiles),
            f"{len(tiles)} reads of one {TILE}x{TILE} tile of one plane, one after the other",
        ),
        "slab": Workload("slab", (slab,), chunks_touched(slab, shape, chunks), f"thin slab {desc(slab)}"),
    }


def dataset_workloads(name: str, is_small: bool) -> dict[str, Workload]:
    spec = make_data.DATASETS[name]
    return workloads(make_data.shape_for(is_small), spec.chunks)


def group_name(dataset: str, workload: str) -> str:
    return f"{make_data.DATASETS[dataset].label}/{workload}"


# ---------------------------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------------------------

#: Rows of every read group, in display order. ``limit`` is ngffcore's native decode + scatter of
#: chunks already in memory (``prefetch.prefetch`` not timed, ``prep.run(out)`` timed).
PEERS = ("limit", "ngffcore", "ngffcore_out", "tensorstore", "zarrs", "zarr")
NGFF_PEERS = ("limit", "ngffcore", "ngffcore_out")


def import_ngffcore() -> Any:
    import ngffcore

    ngffcore.set_num_threads(THREADS)
    return ngffcore


_zarr_configured = False


def configure_zarr() -> Any:
    """Global zarr-python settings; must run before zarr's first synchronous call (the thread
    pool is created once with ``threading.max_workers``)."""
    global _zarr_configured
    import zarr

    if not _zarr_configured:
        zarr.config.set({"async.concurrency": THREADS, "threading.max_workers": THREADS})
        _zarr_configured = True
    return zarr


ZARRS_CONFIG = {
    "codec_pipeline.path": "zarrs.ZarrsCodecPipeline",
    # zarrs: rayon pool size comes from threading.max_workers (set globally), and at most this
    # many chunks in flight. strict: never silently fall back to the Python pipeline.
    "codec_pipeline.chunk_concurrent_maximum": THREADS,
    "codec_pipeline.strict": True,
    "codec_pipeline.validate_checksums": True,
}


def open_zarr(path: Path) -> Any:
    zarr = configure_zarr()
    arr = zarr.open_array(str(path), mode="r")
    assert type(arr._async_array.codec_pipeline).__name__ == "BatchedCodecPipeline"
    return arr


def open_zarrs(path: Path) -> Any:
    zarr = configure_zarr()
    with zarr.config.set(ZARRS_CONFIG):
        arr = zarr.open_array(str(path), mode="r")
    pipe = arr._async_array.codec_pipeline
    assert type(pipe).__name__ == "ZarrsCodecPipeline" and pipe.impl is not None, pipe
    return arr


def ts_context() -> Any:
    import tensorstore as ts

    return ts.Context(
        {
            "data_copy_concurrency": {"limit": THREADS},
            "file_io_concurrency": {"limit": THREADS},
            "cache_pool": {"total_bytes_limit": 0},  # no chunk cache: every read decodes
        }
    )


def open_tensorstore(path: Path, zarr_format: int) -> Any:
    import tensorstore as ts

    spec = {
        "driver": "zarr" if zarr_format == 2 else "zarr3",
        "kvstore": {"driver": "file", "path": str(path)},
    }
    return ts.open(spec, read=True, context=ts_context()).result()


def open_peer(peer: str, path: Path, zarr_format: int) -> Any:
    if peer in NGFF_PEERS:
        return import_ngffcore().open_array(str(path))
    if peer == "zarr":
        return open_zarr(path)
    if peer == "zarrs":
        return open_zarrs(path)
    if peer == "tensorstore":
        return open_tensorstore(path, zarr_format)
    raise ValueError(peer)


@dataclass
class Runner:
    """``fn()`` performs the workload once and returns something ``as_array`` turns into the
    result (one ndarray; tiles are stacked)."""

    fn: Callable[[], Any]
    as_array: Callable[[Any], np.ndarray]
    keep: list[Any] = field(default_factory=list)  # prefetched data etc., kept alive


def _stack(results: Any) -> np.ndarray:
    if isinstance(results, np.ndarray):
        return results
    if len(results) == 1:
        return np.asarray(results[0])
    return np.stack([np.asarray(r) for r in results])


def make_runner(peer: str, arr: Any, wl: Workload, shape: tuple[int, ...]) -> Runner:
    sels = wl.selections
    single = len(sels) == 1

    if peer == "limit":
        preps = [prefetch(arr, s) for s in sels]  # not timed: reads every chunk's bytes
        outs = [np.empty(p.shape, arr.dtype) for p in preps]
        if single:
            p0, o0 = preps[0], outs[0]

            def fn() -> Any:
                p0.run(o0)
                return o0
        else:
            pairs = list(zip(preps, outs))

            def fn() -> Any:
                for p, o in pairs:
                    p.run(o)
                return outs

        want = [sel_shape(s, shape) for s in sels]

        def as_array(res: Any) -> np.ndarray:
            res = [res] if single else res
            return _stack([np.asarray(r).reshape(w) for r, w in zip(res, want)])

        return Runner(fn, as_array, keep=[preps, outs])

    if peer == "ngffcore_out":
        outs = np.empty((len(sels),) + sel_shape(sels[0], shape), arr.dtype)
        if single:
            s0, o0 = sels[0], outs[0]

            def fn() -> Any:
                return arr.read(s0, out=o0)
        else:
            pairs = list(zip(sels, outs))

            def fn() -> Any:
                for s, o in pairs:
                    arr.read(s, out=o)
                return outs

        return Runner(fn, _stack, keep=[outs])

    if peer == "zarrs" and any(isinstance(x, int) for s in sels for x in s):
        # zarrs' pipeline does not take integer (axis-dropping) selections: with strict=False it
        # silently falls back to zarr-python's pipeline, with strict=True it raises. Read the
        # equivalent length-1 slice and drop the axis with a reshape (a view, free).
        zsels = [(tuple(slice(x, x + 1) if isinstance(x, int) else x for x in s), sel_shape(s, shape)) for s in sels]
        if single:
            (z0, w0), = zsels

            def fn() -> Any:
                return arr[z0].reshape(w0)
        else:

            def fn() -> Any:
                return [arr[z].reshape(w) for z, w in zsels]

        return Runner(fn, _stack)

    if peer in ("ngffcore", "zarr", "zarrs"):
        if single:
            s0 = sels[0]

            def fn() -> Any:
                return arr[s0]
        else:

            def fn() -> Any:
                return [arr[s] for s in sels]

        return Runner(fn, _stack)

    if peer == "tensorstore":
        if single:
            s0 = sels[0]

            def fn() -> Any:
                return arr[s0].read().result()
        else:

            def fn() -> Any:
                return [arr[s].read().result() for s in sels]

        return Runner(fn, _stack)

    raise ValueError(peer)


# ---------------------------------------------------------------------------------------------
# Result checks
# ---------------------------------------------------------------------------------------------


def same_values(got: np.ndarray, ref: np.ndarray) -> bool:
    """Equal shape and values; byte order may differ (v2 '>u2' vs native), kind may not."""
    return got.shape == ref.shape and got.dtype.kind == ref.dtype.kind and got.dtype.itemsize == ref.dtype.itemsize \
        and bool(np.array_equal(got, ref))


def first_mismatch(got: np.ndarray, ref: np.ndarray) -> str:
    if got.shape != ref.shape:
        return f"shape {got.shape} != reference {ref.shape}"
    bad = np.argwhere(got != ref)
    if not len(bad):
        return f"dtype {got.dtype} vs {ref.dtype} (values equal)"
    idx = tuple(bad[0])
    return f"{len(bad)} elements differ; first at {idx}: got {got[idx]}, reference {ref[idx]}"
