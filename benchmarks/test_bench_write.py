"""Write benchmarks (issue 15): ngffcore against its peers writing the read suite's 1 GiB volume.

Groups (``write_report.WORKLOADS``) and rows (``extra_info["peer"]``):

* ``write/a-v2-full``: create + write the whole volume, Zarr v2 blosc-zstd-5 bitshuffle
  64x256x256 chunks; ``write/b-v3-full``: Zarr v3, shards 64x512x512 of 32x128x128 zstd-3.
  Rows ``limit`` (ngffcore's ``_core.encode_batch`` on the same chunks, batches of 2 x threads
  objects' worth, from memory, no I/O), ``floor`` (ngffcore's own output files written again
  from memory, temp + rename, one after the other), ``ngffcore``, ``tensorstore``, ``zarrs``,
  ``zarr``; every writer into an emptied directory before each round (untimed).
* ``write/c-v2-overwrite``: 200 whole-chunk writes, one after the other, into an existing
  array of (a)'s layout (a copy of ngffcore's (a) output per writer): random destination
  chunks, each given another chunk's values (fixed seed). ``limit``: 200 one-chunk
  ``encode_batch`` calls; ``floor``: the 200 encoded chunks written as files.
* ``write/d-v3-s3``: (b) to S3 (moto, ``write_s3.MotoServer``, 20 ms per request, 64 requests
  in flight where the writer has the knob); the server's request counts per writer in
  ``extra_info``. ``floor``: ngffcore's (b) objects PUT with bare obstore, 64 in flight.

Every writer's output is read back with zarr-python (first and last chunk, random unaligned
boxes; for (c) overwritten and untouched chunks) and compared with the volume; a mismatch
fails the test. Peak memory: ``test_write_memory`` (each writer in a fresh process).
The ratio tables go to ``results/write.md`` (``write-small.md`` for small data).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import local_suite as bc
import make_data
import report
import write_report as wr
import write_s3 as s3
import write_suite as ws

pytestmark = [
    # zarrs-python rebuilds zarr-python's obstore store on its side and says so
    pytest.mark.filterwarnings("ignore:Successfully reconstructed a store:RuntimeWarning"),
]

LOCAL_ROWS = ("limit", "floor", "ngffcore", "tensorstore", "zarrs", "zarr")
MEMORY: list[dict[str, Any]] = []


def _mark(workload: str) -> Any:
    return pytest.mark.benchmark(group=wr.group(workload))


@pytest.fixture(scope="module", autouse=True)
def write_results(request: pytest.FixtureRequest, is_small: bool) -> Iterator[None]:
    yield
    bs = getattr(request.config, "_benchmarksession", None)
    rows = [r for r in report.rows_from_session(bs.benchmarks if bs is not None else [])
            if r["extra"].get("suite") == "write"]
    if rows or MEMORY:
        out = wr.write(rows, MEMORY, is_small)
        print(f"\nwritten: {out}")


@pytest.fixture(scope="module")
def vol(is_small: bool, ngffcore: Any) -> np.ndarray:
    return ws.volume(is_small)


@pytest.fixture(scope="module")
def ref(vol: np.ndarray) -> Any:
    """ngffcore's output of (a) and (b), written once untimed and checked with zarr-python:
    the arrays whose pipelines the limits use, whose files the floors write, and the base of (c)."""
    paths: dict[str, Path] = {}

    def get(layout_key: str) -> Path:
        if layout_key not in paths:
            layout = ws.LAYOUTS[layout_key]
            path = ws.OUT_ROOT / f"ref-{layout_key}.zarr"
            ws.fresh_dir(path)
            ws.local_writer("ngffcore", layout, path, vol)()
            err = ws.check_with_zarr(str(path), lambda b: vol[b], ws.spot_boxes(vol.shape, layout.objects))
            assert err is None, f"ngffcore's reference write of {layout_key}: {err}"
            paths[layout_key] = path
        return paths[layout_key]

    return get


def _info(benchmark: Any, workload: str, peer: str, **extra: Any) -> None:
    benchmark.extra_info.update(suite="write", workload=workload, peer=peer, threads=bc.THREADS, **extra)


def _check(where: Any, vol: np.ndarray, layout: ws.Layout, what: str) -> None:
    err = ws.check_with_zarr(where, lambda b: vol[b], ws.spot_boxes(vol.shape, layout.objects))
    if err is not None:
        pytest.fail(f"{what}: {err}")


# ---------------------------------------------------------------------------------------------
# (a), (b): whole volume, local files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("workload", "peer"), [
    pytest.param(w, p, id=f"{w}-{p}", marks=_mark(w)) for w in ("a-v2-full", "b-v3-full") for p in LOCAL_ROWS])
def test_write_full(benchmark: Any, vol: np.ndarray, ref: Any, workload: str, peer: str) -> None:
    layout = ws.LAYOUTS[wr.WORKLOADS[workload].layout]
    rounds = bc.rounds_for(ws.ROUNDS["full"])
    _info(benchmark, workload, peer, chunks=layout.n_chunks(vol.shape), objects=layout.n_objects(vol.shape))
    base = ref(layout.key)
    if peer == "limit":
        fn = ws.encoder(bc.import_ngffcore().open_array(str(base)), vol)
        benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1, iterations=1)
        return
    path = ws.OUT_ROOT / f"{peer}-{layout.key}.zarr"
    if peer == "floor":
        objects = ws.read_objects(base)
        benchmark.extra_info["bytes"] = sum(len(v) for v in objects.values())
        fn = lambda: ws.write_files(path, objects)  # noqa: E731
    else:
        fn = ws.local_writer(peer, layout, path, vol)
    benchmark.pedantic(fn, setup=lambda: ws.fresh_dir(path), rounds=rounds, warmup_rounds=0, iterations=1)
    _check(str(path), vol, layout, f"{peer}'s write of {workload}")
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# (c): 200 single-chunk overwrites into an existing array of (a)'s layout
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workload,peer", [
    pytest.param(w, p, id=f"{w}-{p}", marks=_mark(w))
    for w in ("c-v2-overwrite", "c-v2s-overwrite") for p in LOCAL_ROWS])
def test_overwrite(benchmark: Any, vol: np.ndarray, ref: Any, workload: str, peer: str) -> None:
    layout_key = wr.WORKLOADS[workload].layout
    layout = ws.LAYOUTS[layout_key]
    pairs = ws.overwrites(layout, vol.shape)
    rounds = bc.rounds_for(ws.ROUNDS["overwrite"])
    _info(benchmark, workload, peer, chunks=len(pairs), objects=len(pairs))
    base = ref(layout_key)
    if peer == "limit":
        fn = ws.encoder(bc.import_ngffcore().open_array(str(base)), vol, [src for _, src in pairs], batch=1)
        benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1, iterations=1)
        return
    path = ws.OUT_ROOT / f"ow-{layout_key}-{peer}.zarr"
    ws.fresh_dir(path)
    shutil.copytree(base, path)
    if peer == "floor":
        # a whole chunk's encoding does not depend on where it goes: the source chunk's file
        files = ws.read_objects(base)
        key = lambda box: ".".join(str(s.start // c) for s, c in zip(box, layout.chunks))  # noqa: E731
        items = [(key(dst), files[key(src)]) for dst, src in pairs]
        fn = lambda: ws.write_files(path, items)  # noqa: E731
    else:
        fn = ws.overwriter(peer, ws.open_existing(peer, path, layout), vol, pairs)
    benchmark.pedantic(fn, rounds=rounds, warmup_rounds=0, iterations=1)
    # the last write to each destination wins; untouched chunks keep the volume's values
    last = ws.overwrite_expected(pairs)
    z = bc.configure_zarr().open_array(str(path), mode="r")
    for dst, src in list(last.values())[:8]:
        got = z[dst]
        if not np.array_equal(got, vol[src]):
            pytest.fail(f"{peer}: chunk {dst} after the overwrites: {bc.first_mismatch(got, vol[src])}")
    untouched: list[ws.Box] = []
    grid = [s // c for s, c in zip(vol.shape, layout.chunks)]
    for i in range(int(np.prod(grid))):
        box = ws.chunk_box(tuple(int(v) for v in np.unravel_index(i, grid)), layout.chunks, vol.shape)
        if ws.box_start(box) not in last:
            untouched.append(box)
        if len(untouched) >= 2:
            break
    for box in untouched:
        assert np.array_equal(z[box], vol[box]), f"{peer}: untouched chunk {box} changed"
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# (d): (b) to S3 (moto) with 20 ms per request
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[s3.MotoServer]:
    pytest.importorskip("moto")
    pytest.importorskip("boto3")
    srv = s3.MotoServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.mark.parametrize("peer", [pytest.param(p, id=f"d-v3-s3-{p}", marks=_mark("d-v3-s3"))
                                  for p in ("limit", "floor") + s3.PEERS])
def test_write_s3(benchmark: Any, vol: np.ndarray, ref: Any, moto: s3.MotoServer, peer: str) -> None:
    layout = ws.LAYOUTS["v3"]
    rounds = bc.rounds_for(ws.ROUNDS["s3"])
    _info(benchmark, "d-v3-s3", peer, chunks=layout.n_chunks(vol.shape),
          objects=layout.n_objects(vol.shape) + 1, latency_ms=moto.latency_ms, concurrency=s3.CONCURRENCY)
    base = ref("v3")
    if peer == "limit":
        fn = ws.encoder(bc.import_ngffcore().open_array(str(base)), vol)
        benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1, iterations=1)
        return
    prefix = f"{peer}.zarr/"
    if peer == "floor":
        fn = s3.putter(moto, prefix, ws.read_objects(base))
        own: Any = lambda: None  # noqa: E731
    else:
        fn, own = s3.s3_writer(peer, layout, moto, prefix, vol)

    def setup() -> None:
        moto.empty(prefix)
        moto.clear()

    setup()
    fn()  # untimed check run: its requests are the ones reported
    benchmark.extra_info["requests"] = moto.counts()
    benchmark.extra_info["own_stats"] = own()
    benchmark.pedantic(fn, setup=setup, rounds=rounds, warmup_rounds=0, iterations=1)
    benchmark.extra_info["requests_last_round"] = moto.counts()
    _check(bc.configure_zarr().storage.ObjectStore(moto.obstore(prefix)), vol, layout,
           f"{peer}'s write of d-v3-s3")
    moto.empty(prefix)


# ---------------------------------------------------------------------------------------------
# Peak memory
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("layout", list(ws.LAYOUTS))
@pytest.mark.parametrize("peer", ["ngffcore", "tensorstore", "zarrs", "zarr"])
def test_write_memory(bench_data: Path, is_small: bool, peer: str, layout: str) -> None:
    """Each writer in a fresh process; ngffcore is held to ``input + 2 x threads x largest
    object + 64 MiB``, the peers are reported."""
    r = ws.measure_memory(peer, layout, is_small)
    MEMORY.append(r)
    assert "error" not in r, f"{peer} on {layout}: {r['error']}"
    if peer == "ngffcore":
        used = r["in_nbytes"] + r["delta"]
        assert used <= r["budget"], (
            f"writing {layout}: input + peak - before = {used / ws.MiB:.0f} MiB, budget "
            f"{r['budget'] / ws.MiB:.0f} MiB")


def test_layout_sanity() -> None:
    """The layouts are the issue's: (a) 64x256x256 chunks, (b) 64x512x512 shards of 32x128x128."""
    assert ws.LAYOUTS["v2"].chunks == (64, 256, 256) and ws.LAYOUTS["v3"].shards == (64, 512, 512)
    assert make_data.shape_for(False) == (256, 2048, 1024)
