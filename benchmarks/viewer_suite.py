"""The pieces of the pan/zoom viewer benchmark (``test_bench_viewer.py``, issue 17): the three
engines, the real-time replay of the trace (``viewer_trace.py``) and the metrics computed from
the replay's timestamps and the server's request log.

Engines (each opened afresh, so every cache starts cold; metadata read before the replay):

* ``scheduler`` — (a) ``img.scheduler(max_in_flight=64)``: on each view ``set_view(level, y0,
  y1, x0, x1)``, then ``tile(level, row, col)`` for every visible tile (priority 0: the order
  is the scheduler's own), without waiting between.
* ``ngffcore`` — (b) ngffcore without the scheduler, as a naive viewer: on each view one
  ``img.tile_async(level, row, col)`` per visible tile, submitted to the viewer's own asyncio
  loop (``asyncio.run_coroutine_threadsafe``); nothing is ever cancelled.
* ``tensorstore`` — (c) the same with TensorStore: one ``t[:, y0:y1, x0:x1].read()`` per
  visible tile region on the level's ``zarr`` driver over the ``http`` kvstore, nothing
  cancelled.

Every engine asks for every visible tile on every view (a tile already drawn is asked for
again, as a viewer redrawing its view does): caches answer those (ngffcore's chunk cache and
TensorStore's cache pool, 512 MiB each, also join a read of a chunk already in flight).

Metrics (``analyze``), all from ``time.perf_counter`` stamps taken in the replay (view
issued; each call's future done) and the server's log of the replay's requests:

* A tile is *ready for view i* at the earliest completion of a call for it issued at or
  before view i. The view's *new* tiles are the visible ones not ready when it was issued
  (the rest were on screen already). *First*: from the view change to its first new tile
  ready; *all*: to the last (for views lasting at least ``SETTLED_MS``, the pauses and the
  slower steps; not ready by the end of the replay = never). A view none of whose new tiles
  ever became ready (all cancelled) has no *first*: counted as ``superseded``.
* A tile is *shown* if some view that shows it lasted until it was ready. Bytes (response
  sizes from the server log, per chunk object) of shown tiles vs tiles never shown (fetched
  for a view replaced before they were ready, or prefetched and never visible later);
  a second GET of an object is a *duplicate*.
* Requests: the server's count; threads of the process (``threading`` and the OS's
  ``/proc/self/task``, which also counts TensorStore's and obstore's native threads) after
  the open, at the peak of the replay, and once every call has ended.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import local_suite as bc
from servers import Request, byte_range
from viewer_trace import Trace, View

#: injected latency per request (the issue's RTT: 20 ms)
LATENCY_MS = float(os.environ.get("NGFF_BENCH_VIEWER_LATENCY_MS", "20"))
MAX_IN_FLIGHT = 64
CACHE_BYTES = 512 * 2**20
THREADS = bc.THREADS
#: views that lasted at least this long are the settled ones (time to all new tiles)
SETTLED_MS = 200
#: after the last view, how long to wait for the calls still running (then: a hang)
DRAIN_S = 30.0
#: pixels of each tile kept for the check against zarr-python (a strided sample: a copy of
#: ~10 KiB per tile, cheap enough for the callbacks of the timed replay)
SAMPLE = (slice(None), slice(None, None, 7), slice(None, None, 11))
HTTP_OPTIONS: Any = {"allow_http": True}
ENGINE_ORDER = ("scheduler", "ngffcore", "tensorstore")


def os_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


def settle_threads(timeout: float = 8.0) -> float:
    """Wait (untimed, before a replay) until no ngffcore fetch thread is alive: they end 5 s
    after their last request, so the previous engine's would otherwise count as this one's.
    Returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if not any(t.name == "ngffcore-fetch" for t in threading.enumerate()):
            break
        time.sleep(0.1)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------------


class Call:
    __slots__ = ("view", "key", "t_issue", "t_done", "status", "error")

    def __init__(self, view: int, key: tuple[int, int, int], t_issue: float) -> None:
        self.view, self.key, self.t_issue = view, key, t_issue
        self.t_done: float | None = None
        self.status = ""
        self.error = ""


class Recorder:
    """Stamps of one replay. ``done`` runs in whatever thread completes a call (the I/O loop,
    a TensorStore thread): a clock read and, for a tile's first result, a small copy."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.view_t: list[float] = []
        self.samples: dict[tuple[int, int, int], tuple[tuple[int, ...], np.ndarray]] = {}
        self._lock = threading.Lock()

    def call(self, view: int, key: tuple[int, int, int]) -> Call:
        c = Call(view, key, time.perf_counter())
        self.calls.append(c)
        return c

    def done(self, c: Call, value: Any = None, status: str = "ok", error: str = "") -> None:
        c.t_done = time.perf_counter()
        if status == "ok" and c.key not in self.samples:
            a = np.asarray(value)
            self.samples[c.key] = (a.shape, a[SAMPLE].copy())
        c.error = error
        c.status = status  # last: ``pending`` polls it

    def done_future(self, c: Call) -> Callable[[Any], None]:
        """A callback for a ``concurrent.futures.Future``."""
        def cb(f: Any) -> None:
            if f.cancelled():
                self.done(c, status="cancelled")
                return
            exc = f.exception()
            if exc is not None:
                self.done(c, status="error", error=f"{type(exc).__name__}: {exc}")
            else:
                self.done(c, f.result())
        return cb

    def pending(self) -> int:
        return sum(1 for c in self.calls if not c.status)


# ---------------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------------


class Engine:
    name = title = config = ""

    def __init__(self, trace: Trace, zarr_format: int) -> None:
        self.trace, self.zarr_format = trace, zarr_format

    def open(self, url: str) -> None:
        raise NotImplementedError

    def show(self, i: int, view: View, tiles: list[tuple[int, int]], rec: Recorder) -> None:
        raise NotImplementedError

    def drain(self, timeout: float) -> bool:
        """After every call has ended: wait for work the engine does on its own (prefetch,
        abandoned requests). False on timeout."""
        return True

    def stats(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


def tile_span(trace: Trace, level: int, rc: tuple[int, int]) -> tuple[int, int, int, int]:
    h, w = trace.level_shapes[level]
    r, c = rc
    t = trace.tile
    return r * t, min((r + 1) * t, h), c * t, min((c + 1) * t, w)


class SchedulerEngine(Engine):
    name = "scheduler"
    title = "(a) ngffcore scheduler"
    config = (f"`ngffcore.open(url, zarr_format=…, cache=ChunkCache({CACHE_BYTES >> 20} MiB), "
              f"client_options={{'allow_http': True}})`, `sched = img.scheduler(max_in_flight={MAX_IN_FLIGHT})`; "
              f"per view `sched.set_view(level, y0, y1, x0, x1)` then `sched.tile(level, row, col)` per "
              f"visible tile (priority 0, row-major, no wait); after the trace `sched.wait_idle()`; "
              f"`set_num_threads({THREADS})`")

    def open(self, url: str) -> None:
        ngffcore = bc.import_ngffcore()
        self.img = ngffcore.open(url, zarr_format=self.zarr_format, cache=ngffcore.ChunkCache(CACHE_BYTES),
                                 client_options=HTTP_OPTIONS)
        self.sched = self.img.scheduler(max_in_flight=MAX_IN_FLIGHT)

    def show(self, i: int, view: View, tiles: list[tuple[int, int]], rec: Recorder) -> None:
        self.sched.set_view(view.level, view.y0, view.y1, view.x0, view.x1)
        for r, c in tiles:
            call = rec.call(i, (view.level, r, c))
            self.sched.tile(view.level, r, c).add_done_callback(rec.done_future(call))

    def drain(self, timeout: float) -> bool:
        return bool(self.sched.wait_idle(timeout))

    def stats(self) -> dict[str, Any]:
        return dict(self.sched.stats)

    def close(self) -> None:
        self.sched.close(wait=True, timeout=10)


class NaiveEngine(Engine):
    name = "ngffcore"
    title = "(b) ngffcore tile_async"
    config = (f"`ngffcore.open(…)` as (a); per view `asyncio.run_coroutine_threadsafe(img.tile_async(level, "
              f"row, col), loop)` per visible tile on the viewer's own asyncio loop (one thread), nothing "
              f"cancelled; the image's default `concurrency` (64 requests in flight per read)")

    def open(self, url: str) -> None:
        ngffcore = bc.import_ngffcore()
        self.img = ngffcore.open(url, zarr_format=self.zarr_format, cache=ngffcore.ChunkCache(CACHE_BYTES),
                                 client_options=HTTP_OPTIONS)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="viewer-loop", daemon=True)
        self.thread.start()

    def show(self, i: int, view: View, tiles: list[tuple[int, int]], rec: Recorder) -> None:
        for r, c in tiles:
            call = rec.call(i, (view.level, r, c))
            fut = asyncio.run_coroutine_threadsafe(self.img.tile_async(view.level, r, c), self.loop)
            fut.add_done_callback(rec.done_future(call))

    def stats(self) -> dict[str, Any]:
        s = self.img.cache.stats()
        return {"cache_hits": s.hits, "cache_misses": s.misses, "cache_mib": s.bytes >> 20}

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class TensorStoreEngine(Engine):
    name = "tensorstore"
    title = "(c) tensorstore"
    config = (f"one `ts.open` per level (`zarr`/`zarr3` driver, `http` kvstore, `recheck_cached_data: false`), "
              f"context `http_request_concurrency` {MAX_IN_FLIGHT}, `data_copy_concurrency` {THREADS}, "
              f"`cache_pool` {CACHE_BYTES >> 20} MiB; per view `t[:, y0:y1, x0:x1].read()` per visible tile "
              f"(`add_done_callback`), nothing cancelled")

    def open(self, url: str) -> None:
        import tensorstore as tstore

        self.context = tstore.Context({
            "data_copy_concurrency": {"limit": THREADS},
            "http_request_concurrency": {"limit": MAX_IN_FLIGHT},
            "cache_pool": {"total_bytes_limit": CACHE_BYTES},
        })
        driver = "zarr" if self.zarr_format == 2 else "zarr3"
        futs = [tstore.open({"driver": driver, "kvstore": {"driver": "http", "base_url": f"{url}/{lv}"},
                             "recheck_cached_data": False, "recheck_cached_metadata": False},
                            read=True, context=self.context) for lv in range(len(self.trace.level_shapes))]
        self.levels = [f.result() for f in futs]

    def show(self, i: int, view: View, tiles: list[tuple[int, int]], rec: Recorder) -> None:
        arr = self.levels[view.level]
        for rc in tiles:
            y0, y1, x0, x1 = tile_span(self.trace, view.level, rc)
            call = rec.call(i, (view.level, *rc))
            fut = arr[:, y0:y1, x0:x1].read()

            def cb(f: Any, call: Call = call) -> None:
                try:
                    value = f.result()
                except Exception as exc:  # noqa: BLE001 — a failed read fails only its tile
                    rec.done(call, status="error", error=f"{type(exc).__name__}: {exc}")
                    return
                rec.done(call, value)

            fut.add_done_callback(cb)


ENGINES: dict[str, type[Engine]] = {e.name: e for e in (SchedulerEngine, NaiveEngine, TensorStoreEngine)}


def make_engine(name: str, trace: Trace, zarr_format: int) -> Engine:
    return ENGINES[name](trace, zarr_format)


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------


@dataclass
class Replay:
    rec: Recorder
    t0: float = 0.0
    t_views_end: float = 0.0
    t_end: float = 0.0
    drained: bool = True
    hung: int = 0
    threads: dict[str, int] = field(default_factory=dict)
    show_s: list[float] = field(default_factory=list)  # per view: time the viewer thread spent issuing it


def replay(engine: Engine, trace: Trace) -> Replay:
    """Each view at its offset from the start (real time), then wait for every call to end
    (at most ``DRAIN_S``) and for the engine's own work."""
    rec = Recorder()
    out = Replay(rec)
    peak = os_threads()
    peak_py = threading.active_count()
    out.t0 = t0 = time.perf_counter()
    for v in trace.views:
        delay = t0 + v.t_ms / 1e3 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t = time.perf_counter()
        rec.view_t.append(t)
        engine.show(v.index, v, trace.visible(v), rec)
        out.show_s.append(time.perf_counter() - t)
        peak, peak_py = max(peak, os_threads()), max(peak_py, threading.active_count())
    out.t_views_end = time.perf_counter()
    deadline = out.t_views_end + DRAIN_S
    while rec.pending() and time.perf_counter() < deadline:
        time.sleep(0.005)
        peak, peak_py = max(peak, os_threads()), max(peak_py, threading.active_count())
    out.hung = rec.pending()
    out.drained = engine.drain(max(1.0, deadline - time.perf_counter()))
    out.t_end = time.perf_counter()
    out.threads = {"os_peak": max(peak, os_threads()), "py_peak": max(peak_py, threading.active_count()),
                   "os_after": os_threads(), "py_after": threading.active_count()}
    return out


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def object_tile(path: str) -> tuple[int, int, int] | None:
    """``/<image>/<level>/[c/]<ch>/<row>/<col>`` (0.4 "/" separator or 0.5 default keys) →
    (level, row, col); None for metadata."""
    parts = path.strip("/").split("/")
    if len(parts) < 5 or not all(p.isdigit() for p in parts[-3:]) or not parts[1].isdigit():
        return None
    return int(parts[1]), int(parts[-2]), int(parts[-1])


def response_bytes(root: str, r: Request) -> int:
    if r.method != "GET" or r.status not in (200, 206):
        return 0
    size = os.path.getsize(os.path.join(root, r.path.lstrip("/")))
    if r.range is None:
        return size
    span = byte_range(r.range, size)
    return 0 if span is None else span[1] - span[0]


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    a = np.asarray(values, dtype=np.float64)
    return {"p50": float(np.median(a)), "p95": float(np.percentile(a, 95)), "max": float(a.max()), "n": int(a.size)}


def analyze(trace: Trace, rp: Replay, log: list[Request], root: str) -> dict[str, Any]:
    rec = rp.rec
    vt = rec.view_t
    ends = vt[1:] + [float("inf")]  # the last view lasts
    ok: dict[tuple[int, int, int], list[tuple[int, float]]] = {}
    status = Counter(c.status or "pending" for c in rec.calls)
    for c in rec.calls:
        if c.status == "ok" and c.t_done is not None:
            ok.setdefault(c.key, []).append((c.view, c.t_done))

    def ready(key: tuple[int, int, int], i: int) -> float | None:
        times = [t for v, t in ok.get(key, ()) if v <= i]
        return min(times) if times else None

    first: list[float] = []
    all_settled: list[float] = []
    by_kind: dict[str, list[float]] = {}
    superseded = settled_incomplete = views_with_new = 0
    shown: set[tuple[int, int, int]] = set()
    for v in trace.views:
        i = v.index
        keys = [(v.level, r, c) for r, c in trace.visible(v)]
        readies = {k: ready(k, i) for k in keys}
        for k, t in readies.items():
            if t is not None and t < ends[i]:
                shown.add(k)
        new = [t for t in readies.values() if t is None or t > vt[i]]
        if not new:
            continue
        views_with_new += 1
        got = [t for t in new if t is not None]
        if got:
            d = min(got) - vt[i]
            first.append(d)
            by_kind.setdefault(v.kind, []).append(d)
        else:
            superseded += 1
        if (ends[i] - vt[i]) * 1e3 >= SETTLED_MS:
            if len(got) == len(new):
                all_settled.append(max(got) - vt[i])
            else:
                settled_incomplete += 1

    req: Counter[str] = Counter()
    b: Counter[str] = Counter()
    g: Counter[str] = Counter()  # GETs by the same categories as the bytes
    seen: set[str] = set()
    per_level: Counter[int] = Counter()
    for r in log:
        req[r.method] += 1
        if r.status == 404:
            req["404"] += 1
        if r.method != "GET":
            continue
        n = response_bytes(root, r)
        key = object_tile(r.path)
        if key is None:
            b["other"] += n
            continue
        per_level[key[0]] += 1
        obj = f"{r.path}|{r.range}"
        cat = "duplicate" if obj in seen else "shown" if key in shown else "never_shown"
        seen.add(obj)
        b[cat] += n
        g[cat] += 1
    fetched_tiles = {k for k in (object_tile(r.path) for r in log if r.method == "GET") if k is not None}
    lag = [(t - rp.t0) * 1e3 - v.t_ms for t, v in zip(vt, trace.views)]
    return {
        "views": len(trace.views), "views_with_new": views_with_new, "superseded": superseded,
        "first": summary(first), "first_times": first,
        "first_by_kind": {k: summary(x) for k, x in sorted(by_kind.items())},
        "settled_ms": SETTLED_MS, "all_settled": summary(all_settled),
        "settled_incomplete": settled_incomplete,
        "requests": int(req["GET"] + req["HEAD"]), "gets": int(req["GET"]), "heads": int(req["HEAD"]),
        "404": int(req["404"]), "gets_per_level": {str(k): n for k, n in sorted(per_level.items())},
        "bytes_shown": int(b["shown"]), "bytes_never_shown": int(b["never_shown"]),
        "bytes_duplicate": int(b["duplicate"]), "bytes_other": int(b["other"]),
        "gets_shown": int(g["shown"]), "gets_never_shown": int(g["never_shown"]), "gets_duplicate": int(g["duplicate"]),
        "tiles_fetched": len(fetched_tiles), "tiles_fetched_never_shown": len(fetched_tiles - shown),
        "tiles_shown": len(shown),
        "calls": len(rec.calls), "calls_by_status": dict(status),
        "errors": sorted({c.error for c in rec.calls if c.status == "error"})[:5],
        "lag_ms_max": max(lag), "lag_ms_p95": float(np.percentile(lag, 95)), "issue": summary(rp.show_s),
        "replay_s": rp.t_views_end - rp.t0, "drain_s": rp.t_end - rp.t_views_end,
        "hung_calls": rp.hung, "drained": rp.drained,
    }
