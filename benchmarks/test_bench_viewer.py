"""The pan/zoom viewer benchmark (issue 17): a recorded browsing session over the 5-level
whole-slide image, replayed in real time over HTTP with 20 ms per request against (a) ngffcore's
request scheduler, (b) ngffcore without it and (c) TensorStore, each asked for the visible
tiles of every view as it comes.

Run (~2 min: one replay of ~37 s per engine, plus opening and checking)::

    pytest benchmarks/test_bench_viewer.py --benchmark-enable -p no:cacheprovider
    NGFF_BENCH_VIEWER_DATASETS=v2,v3 pytest benchmarks/test_bench_viewer.py --benchmark-enable -p no:cacheprovider
    NGFF_BENCH_VIEWER_VIEWS=40 pytest benchmarks/test_bench_viewer.py --benchmark-enable -p no:cacheprovider  # smoke

The trace is ``benchmarks/traces/pan_zoom.json`` (``viewer_trace.py``), the data the tile
benchmark's full-size slide (``tiles_data.py``, generated on first use); the engines, the replay
and the metrics are ``viewer_suite.py``'s; the report (printed, and written to
``benchmarks/results/viewer.md``) is ``viewer_report.py``'s. ``NGFF_BENCH_VIEWER_LATENCY_MS``
changes the injected latency (report ``results/viewer-<ms>ms.md``); a shortened trace writes
``results/viewer-smoke<n>.md``: neither replaces ``viewer.md``.

One pytest-benchmark round per engine (``benchmark.pedantic(..., rounds=1)``): its time is the
whole replay (the trace, then waiting for every call and the engine's own work to end); the
figures are in ``extra_info``. The server (``servers.ServerProcess``, a child process) logs
every request: its log of the replay gives the request count and the bytes. Every tile an
engine delivered is checked (a strided sample of its pixels and its shape) against
zarr-python's read of the local files after the replay; a mismatch, an error or a hang fails
the test.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import statistics
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import local_suite as bc
import report
import tiles_data as td
import tiles_suite as ts
import viewer_report
import viewer_suite as vs
import viewer_trace as vt
from servers import ServerProcess

DATASETS = tuple(d.strip() for d in os.environ.get("NGFF_BENCH_VIEWER_DATASETS", "v2").split(",") if d.strip())
GROUP = "viewer http {lat:g}ms/{ds} pan_zoom"

CASES = [
    pytest.param(ds, eng, id=f"{ds}-{eng}",
                 marks=pytest.mark.benchmark(group=GROUP.format(lat=vs.LATENCY_MS, ds=ds)))
    for ds in DATASETS
    for eng in vs.ENGINE_ORDER
]


@pytest.fixture(scope="session")
def viewer_plugin(request: pytest.FixtureRequest) -> viewer_report.ReportPlugin:
    """Writes ``results/viewer.md`` at the end of the session (registered on first use)."""
    return report.report_plugin(request.config, viewer_report.PLUGIN_NAME,
                                viewer_report.ReportPlugin)


@pytest.fixture(scope="session")
def viewer_root(viewer_plugin: Any) -> Path:
    if bc.small():
        pytest.skip("the trace browses the full-size slide (3 x 16384 x 16384): unset NGFF_BENCH_SMALL")
    return td.ensure_tiles_data(False)


@pytest.fixture(scope="session")
def viewer_server(viewer_root: Path) -> Any:
    with ServerProcess(viewer_root, latency=vs.LATENCY_MS / 1000, answer_head=True) as srv:
        yield srv


@pytest.fixture(scope="session")
def full_trace() -> vt.Trace:
    return vt.load()


@pytest.fixture(scope="session")
def trace(full_trace: vt.Trace) -> vt.Trace:
    tr = full_trace
    n = int(os.environ.get("NGFF_BENCH_VIEWER_VIEWS", "0"))  # smoke runs: the first n views only
    return dataclasses.replace(tr, views=tr.views[:n]) if n > 0 else tr


# ---------------------------------------------------------------------------------------------
# Reference and decode
# ---------------------------------------------------------------------------------------------


class Reference:
    """zarr-python's reads of the local files (samples as the recorder keeps them), cached
    across engines: the check of every tile an engine delivered."""

    def __init__(self, ds_path: str) -> None:
        self._levels: dict[int, Any] = {}
        self._path = ds_path
        self._cache: dict[tuple[int, int, int], tuple[tuple[int, ...], np.ndarray]] = {}

    def get(self, trace: vt.Trace, key: tuple[int, int, int]) -> tuple[tuple[int, ...], np.ndarray]:
        if key not in self._cache:
            lv = key[0]
            if lv not in self._levels:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._levels[lv] = zarr.open_array(f"{self._path}/{lv}", mode="r")
            y0, y1, x0, x1 = vs.tile_span(trace, lv, key[1:])
            a = np.asarray(self._levels[lv][:, y0:y1, x0:x1])
            self._cache[key] = (a.shape, a[vs.SAMPLE].copy())
        return self._cache[key]

    def check(self, trace: vt.Trace, rec: vs.Recorder) -> list[str]:
        bad = []
        for key, (shape, sample) in sorted(rec.samples.items()):
            rshape, rsample = self.get(trace, key)
            if tuple(shape) != tuple(rshape):
                bad.append(f"tile {key}: shape {shape}, zarr-python {rshape}")
            elif not np.array_equal(sample, rsample):
                idx = np.argwhere(sample != rsample)[0]
                bad.append(f"tile {key}: sampled pixel {tuple(idx)} = {sample[tuple(idx)]}, "
                           f"zarr-python {rsample[tuple(idx)]}")
        return bad


def decode_seconds(ds: Any, trace: vt.Trace, n: int = 24) -> list[float]:
    """ngffcore's decode of a tile's chunk bytes already in memory (``tiles_suite``'s limit
    row) for ``n`` distinct tiles spread over the trace, fastest of several runs each."""
    keys: list[tuple[int, int, int]] = []
    for v in trace.views:
        for rc in trace.visible(v):
            if (v.level, *rc) not in keys:
                keys.append((v.level, *rc))
    pick = [keys[round(j * (len(keys) - 1) / max(n - 1, 1))] for j in range(min(n, len(keys)))]
    tiles = []
    for j, key in enumerate(pick):
        y0, y1, x0, x1 = vs.tile_span(trace, key[0], key[1:])
        tiles.append(ts.Tile(j, key[0], (y0, y1), (x0, x1)))
    return ts.decode_seconds(ds, False, tuple(tiles))


class Facts:
    """Per dataset, computed once outside the replays: ngffcore's decode of trace tiles from
    memory (the target's "decode") and the zarr-python reference."""

    def __init__(self) -> None:
        self.decode: dict[str, list[float]] = {}
        self.ref: dict[str, Reference] = {}

    def get(self, name: str, trace: vt.Trace) -> tuple[list[float], Reference]:
        ds = td.DATASETS[name]
        if name not in self.decode:
            self.decode[name] = decode_seconds(ds, trace)
            self.ref[name] = Reference(str(ds.path(False)))
        return self.decode[name], self.ref[name]


@pytest.fixture(scope="session")
def viewer_facts(viewer_root: Path) -> Facts:
    bc.import_ngffcore()
    return Facts()


@pytest.mark.parametrize(("dataset", "engine"), CASES)
def test_viewer(benchmark: Any, request: pytest.FixtureRequest, viewer_plugin: viewer_report.ReportPlugin,
                trace: vt.Trace, dataset: str, engine: str) -> None:
    if benchmark.disabled:
        pytest.skip("benchmarks are disabled (the root pytest config): pass --benchmark-enable")
    ds = td.DATASETS[dataset]
    group = GROUP.format(lat=vs.LATENCY_MS, ds=dataset)
    facts: Facts = request.getfixturevalue("viewer_facts")
    srv: ServerProcess = request.getfixturevalue("viewer_server")
    root = str(request.getfixturevalue("viewer_root"))
    decode, reference = facts.get(dataset, trace)
    srv.latency = vs.LATENCY_MS / 1000

    def give_up(status: str, reason: str) -> None:
        viewer_plugin.notes.append({"group": group, "peer": engine, "status": status, "reason": reason})
        pytest.skip(reason)

    eng = vs.make_engine(engine, trace, ds.zarr_format)
    try:
        eng.open(f"{srv.url}/{ds.dirname}")
    except Exception as exc:
        if engine != "tensorstore":
            raise
        give_up("failed", f"open: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
    gc.collect()
    vs.settle_threads()
    before = {"os": vs.os_threads(), "py": threading.active_count()}
    srv.clear()  # the replay's requests only (metadata was read by the open)
    box: dict[str, vs.Replay] = {}

    def run() -> None:
        box["rp"] = vs.replay(eng, trace)

    try:
        benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    finally:
        log = srv.log()
        server_cpu = srv.cpu_seconds()
        stats = eng.stats() if "rp" in box else {}
        eng.close()
    rp = box["rp"]
    after_close = {"os": vs.os_threads(), "py": threading.active_count()}
    m = vs.analyze(trace, rp, log, root)
    bad = reference.check(trace, rp.rec)
    lat = vs.LATENCY_MS / 1000
    benchmark.extra_info.update(
        suite="viewer", kind="viewer", peer=engine, title=eng.title, config=eng.config, dataset=dataset,
        dataset_label=ds.label, latency_ms=vs.LATENCY_MS, max_in_flight=vs.MAX_IN_FLIGHT, threads=vs.THREADS,
        trace=trace.describe(), trace_views=len(trace.views), trace_full_views=len(request.getfixturevalue("full_trace").views),
        trace_s=trace.duration_ms / 1e3,
        decode_times=decode, decode_p50=statistics.median(decode), decode_max=max(decode),
        target_first_p95=lat + statistics.median(decode) + 0.003,
        metrics=m, engine_stats=stats, server_cpu_s=server_cpu,
        threads_before=before, threads_during=rp.threads, threads_after_close=after_close,
        checked_tiles=len(rp.rec.samples), mismatches=bad[:5],
    )
    problems = []
    if bad:
        problems.append(f"{len(bad)} tiles differ from zarr-python's read, e.g. {bad[0]}")
    if rp.hung:
        problems.append(f"{rp.hung} tile calls had not ended {vs.DRAIN_S:g} s after the last view")
    if not rp.drained:
        problems.append(f"the engine's own work had not ended {vs.DRAIN_S:g} s after the last view")
    if m["errors"]:
        problems.append(f"failed tiles: {m['errors']}")
    if problems:
        if engine == "tensorstore":
            give_up("failed", "; ".join(problems))
        pytest.fail(f"{engine}: " + "; ".join(problems))
