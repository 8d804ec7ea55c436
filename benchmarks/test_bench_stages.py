"""Per-stage micro benchmarks of ngffcore, and per-chunk overhead against the peers.

Groups ``stages/<dataset label>`` (ngffcore only; ``roi`` is the unaligned ~64-chunk box of
``test_bench_read.py``, ``tile`` one unaligned 256x256 tile of one plane):

* ``plan_roi`` / ``plan_tile``  ``a._plan(sel)``: selection -> chunks, boxes, keys; no reading
* ``fetch_roi``                 ``prefetch(a, sel)``: plan + read every needed chunk's bytes
* ``decode_roi``                ``prep.run(out)``: native decode + scatter of in-memory bytes
                                (the ``limit`` row of the read benchmarks)
* ``scatter_fill_roi``          ``a.read(roi, out=out)`` on an array with no chunk objects at all:
                                planning + fill-value scatter only
* ``read_roi``                  ``a.read(roi, out=out)`` on the real array, for scale
* ``io_full``                   the bytes a full read needs (``a.plan(...)``: whole chunk or
                                shard objects), ``pread`` on ``THREADS`` threads into reused
                                buffers, nothing decoded: the page-cache copy that any
                                ``pread``-based reader pays on top of the ``limit`` row (which
                                decodes bytes already in memory). Both are CPU-bound on the same
                                cores, so ``limit + io_full`` is a floor for a full read

Groups ``overhead/...`` (all peers) read ``tiny_raw``: 64x64 uint8, 1x1 chunks, no compressor,
so decoding costs nothing and the time is per-call / per-chunk overhead:

* ``overhead/200 single-chunk reads``: 200 reads of ``a[i:i+1, j:j+1]``, one after the other
* ``overhead/one read of 4096 chunks``: ``a[:, :]``

The report prints per-chunk times (median / chunks) for all of these.
"""

from __future__ import annotations

import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import local_suite as bc
from prefetch import prefetch
import make_data

DATASETS = list(make_data.DATASETS)


def _stage_group(dataset: str) -> str:
    return f"stages/{make_data.DATASETS[dataset].label}"


STAGES = ("plan_roi", "plan_tile", "fetch_roi", "decode_roi", "scatter_fill_roi", "read_roi", "io_full")

STAGE_CASES = [
    pytest.param(ds, st, id=f"{ds}-{st}", marks=pytest.mark.benchmark(group=_stage_group(ds)))
    for ds in DATASETS
    for st in STAGES
]


@pytest.mark.parametrize(("dataset", "stage"), STAGE_CASES)
def test_stage(benchmark: Any, ngffcore: Any, arrays: Any, is_small: bool, dataset: str, stage: str) -> None:
    spec = make_data.DATASETS[dataset]
    shape = make_data.shape_for(is_small)
    wls = bc.dataset_workloads(dataset, is_small)
    roi = wls["roi"].single
    tile = wls["tiles"].selections[1]  # odd indices are the unaligned tiles
    a = arrays.get("ngffcore", make_data.dataset_path(dataset, is_small), spec.zarr_format)
    roi_out = np.empty(bc.sel_shape(roi, shape), a.dtype)
    roi_chunks = bc.chunks_touched(roi, shape, spec.chunks)
    tile_chunks = bc.chunks_touched(tile, shape, spec.chunks)
    rounds, iters = bc.rounds_for(bc.STAGE_ROUNDS), 1
    keep: list[Any] = []

    if stage == "plan_roi":
        fn, chunks, note, iters = (lambda: a._plan(roi)), roi_chunks, "a._plan(roi)", bc.STAGE_ITERATIONS
    elif stage == "plan_tile":
        fn, chunks, note, iters = (lambda: a._plan(tile)), tile_chunks, "a._plan(tile)", bc.STAGE_ITERATIONS
    elif stage == "fetch_roi":
        fn, chunks, note = (lambda: prefetch(a, roi)), roi_chunks, "prefetch(a, roi): plan + chunk bytes"
        rounds = bc.rounds_for(10)
    elif stage == "decode_roi":
        prep = prefetch(a, roi)
        out = np.empty(prep.shape, a.dtype)
        keep += [prep, out]
        fn, chunks, note = (lambda: prep.run(out)), roi_chunks, "prep.run(out): decode + scatter (limit)"
        rounds = bc.rounds_for(10)
    elif stage == "scatter_fill_roi":
        e = arrays.get("ngffcore", make_data.empty_path(dataset, is_small), spec.zarr_format)
        fn, chunks, note = (lambda: e.read(roi, out=roi_out)), roi_chunks, "read(roi, out) with every chunk missing"
    elif stage == "read_roi":
        fn, chunks, note = (lambda: a.read(roi, out=roi_out)), roi_chunks, "read(roi, out) (for scale)"
        rounds = bc.rounds_for(10)
    elif stage == "io_full":
        plan = a.plan(...)
        root = make_data.dataset_path(dataset, is_small)
        reads = [(str(root / r.key), r.start or 0,
                  (r.end - r.start) if r.end is not None else os.path.getsize(root / r.key))
                 for r in plan]
        pool = ThreadPoolExecutor(bc.THREADS)
        buffers: dict[int, memoryview] = {}
        biggest = max(n for _, _, n in reads)
        parts = [reads[i::bc.THREADS] for i in range(bc.THREADS)]

        def pread_part(part: list[tuple[str, int, int]]) -> int:
            buf = buffers.setdefault(threading.get_ident(), memoryview(bytearray(biggest)))
            got = 0
            for path, start, n in part:
                fd = os.open(path, os.O_RDONLY)
                try:
                    got += os.preadv(fd, [buf[:n]], start)
                finally:
                    os.close(fd)
            return got

        total = sum(n for _, _, n in reads)

        def fn() -> int:
            got = sum(pool.map(pread_part, parts))
            assert got == total
            return got

        keep.append(pool)
        chunks = sum(r.chunks for r in plan)
        note = f"pread of the full read's {len(reads)} objects ({total >> 20} MiB), no decode"
        rounds = bc.rounds_for(10)
    else:
        raise ValueError(stage)

    benchmark.extra_info.update(peer=stage, kind="stage", dataset=dataset, chunks=chunks, calls=1, note=note)
    result = benchmark.pedantic(fn, rounds=rounds, iterations=iters, warmup_rounds=bc.warmup_rounds())
    for k in keep:
        if isinstance(k, ThreadPoolExecutor):
            k.shutdown()
    del result, keep

    if stage == "scatter_fill_roi":
        assert (roi_out == e.fill_value).all(), "missing chunks must read as fill_value"


# ---------------------------------------------------------------------------------------------
# Per-chunk overhead, tiny uncompressed 1x1 chunks
# ---------------------------------------------------------------------------------------------

N_SINGLE = 200


def _single_chunk_selections() -> tuple[bc.Selection, ...]:
    rng = random.Random(99)
    ny, nx = make_data.TINY_SHAPE
    out = []
    for _ in range(N_SINGLE):
        i, j = rng.randrange(ny), rng.randrange(nx)
        out.append((slice(i, i + 1), slice(j, j + 1)))
    return tuple(out)


OVERHEAD = {
    "single": ("overhead/200 single-chunk reads",
               bc.Workload("single", _single_chunk_selections(), N_SINGLE, "200 reads of a[i:i+1, j:j+1]")),
    "all": ("overhead/one read of 4096 chunks",
            bc.Workload("all", ((slice(None), slice(None)),), 64 * 64, "a[:, :] of 64x64 1-byte chunks")),
}

OVERHEAD_CASES = [
    pytest.param(key, peer, id=f"{key}-{peer}", marks=pytest.mark.benchmark(group=OVERHEAD[key][0]))
    for key in OVERHEAD
    for peer in bc.PEERS
]


@pytest.mark.parametrize(("key", "peer"), OVERHEAD_CASES)
def test_overhead(benchmark: Any, ngffcore: Any, arrays: Any, is_small: bool, key: str, peer: str) -> None:
    _, wl = OVERHEAD[key]
    path = make_data.tiny_path(is_small)
    arr = arrays.get(peer, path, 2)
    runner = bc.make_runner(peer, arr, wl, make_data.TINY_SHAPE)
    benchmark.extra_info.update(
        peer=peer, kind="overhead", dataset="tiny_raw", chunks=wl.chunks_touched, calls=len(wl.selections),
        note=wl.note, workload_note=wl.note,
    )
    result = benchmark.pedantic(runner.fn, rounds=bc.rounds_for(10), warmup_rounds=bc.warmup_rounds(), iterations=1)
    got = runner.as_array(result)
    want = bc._stack([make_data.tiny_values()[s] for s in wl.selections])
    assert bc.same_values(got, want), bc.first_mismatch(got, want)
