"""Load and leaks (issue 6, item 5).

* 8 Python threads read one OME image at once, each mixing ``levels[i].read`` (with and
  without ``out=`` and the image's cache), ``tile``, ``tile_box``, ``read_region`` and, in
  ``asyncio.run`` batches on the same thread, ``read_async``, ``tile_async`` and
  ``read_region_async`` — locally and over HTTP (``servers.RangeServer``). Every result must
  equal zarr-python's read of the same pixels.
* 10,000 small local reads with the cache off and on (and 1,000 + 1,000 over HTTP) must
  not grow the process's resident memory, threads or open file descriptors.
* A cancellation storm: 1,000 ``read_async`` / ``tile_async`` tasks against a server that
  answers after 2 s (8 s under a sanitizer), all cancelled while their requests are in
  flight, must leave no task on the loop, no request still arriving at the server, threads
  and descriptors back at their baseline, and the next read exact.

Images: one written by ome-zarr-py (Zarr v2, unsharded) and one by zarr-python with
hand-written OME 0.5 metadata (sharded), see ``tile_writers.py``. Expected pixels are
zarr-python reads of whole levels; the pixel box of a physical region is derived here from
the scale and translation in the raw JSON (``ome_writers.expect_image``), not from ngffcore.

Resource counts come from /proc (Linux only): RSS from /proc/self/statm, threads from
/proc/self/task and ``threading.active_count()``, descriptors from /proc/self/fd.
The ``slow`` variants (50,000 local and 10,000 HTTP reads, 200 operations per thread) run with
``NGFF_SLOW=1`` or ``-m slow``.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import random
import resource
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import ngffcore
import ome_writers as ow
import tile_writers as tw
from servers import RangeServer

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"),
                                reason="resource counts come from /proc (Linux)")

MiB = 2**20
#: RSS may grow this much over a run of reads after warm-up (allocator and interpreter
#: noise, 0-2.3 MiB measured); a leak of 1.7 KiB per read over 10,000 reads exceeds it
RSS_TOLERANCE = 16 * MiB
#: HTTP reads: the store's connection pool may grow to the most requests one read had in
#: flight at once; each pooled connection costs 2 descriptors and a server thread here (the
#: server runs in this process). A leak per read would cost thousands. 4 was exceeded once
#: (41 tasks against 36 + 4) with a fuzzer busy on the other core: under contention more of
#: a read's requests overlap and the pool keeps one more connection, which is no leak
HTTP_POOL_SLACK = 8
#: under a sanitizer (.ci/sanitize and .ci/tsan preload its runtime) RSS is mostly the
#: sanitizer's own: ASan's quarantine of freed memory (256 MiB by default), TSan's shadow
#: memory and per-thread traces. RSS growth says nothing there and is not checked
UNDER_SANITIZER = any(rt in os.environ.get("LD_PRELOAD", "") for rt in ("libasan", "libtsan"))
#: how long the server holds each request of a cancellation storm: the cancellation of every
#: task must come before any answer (under a sanitizer 1,000 cancellations take seconds)
STORM_LATENCY = 8.0 if UNDER_SANITIZER else 2.0


# --------------------------------------------------------------------------------------
# the image and its references
# --------------------------------------------------------------------------------------


@dataclass
class Loaded:
    """One written image: where it is, zarr-python's read of every level, and per-level
    scale/translation from the raw JSON."""

    name: str
    path: Any
    axes: str
    full: list[np.ndarray]
    scale: list[tuple[float, ...]]
    translation: list[tuple[float, ...]]

    @property
    def n_levels(self) -> int:
        return len(self.full)

    def shape(self, level: int) -> tuple[int, ...]:
        return self.full[level].shape


def _load(case: tw.TileCase) -> Loaded:
    exp = ow.expect_image(case.path)
    full = [np.asarray(lv.data) for lv in exp.levels]
    for level in range(case.n_levels):  # the two readings of the written files agree
        with tw.ow.quiet():
            np.testing.assert_array_equal(full[level], case.zarr_array(level)[...])
    return Loaded(case.name, case.path, case.axes, full, [lv.scale for lv in exp.levels],
                  [lv.translation for lv in exp.levels])


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    ozp = tw.write_ome_zarr_py(root, "0.4")  # czyx (2, 8, 64, 96), chunks (1, 4, 32, 32)
    sharded = tw.write_case(root, "load-sharded", "0.5", "czyx", (3, 4, 96, 128),
                            (1, 1, 16, 16), shards=(1, 1, 32, 64), n_levels=3, seed=21)
    return root, {"ozp-0.4": _load(ozp), "sharded-0.5": _load(sharded)}


@pytest.fixture(scope="module")
def served(images):
    root, _ = images
    with RangeServer(str(root)) as srv:
        yield srv


@pytest.fixture
def server(served):
    served.state.reset()
    yield served
    served.state.latency = 0.0


def _location(images, served, name: str, where: str) -> str:
    _, loaded = images
    path = loaded[name].path
    return str(path) if where == "local" else f"{served.url}/{path.name}"


# --------------------------------------------------------------------------------------
# random operations and their expected results
# --------------------------------------------------------------------------------------


def _random_box(rng: random.Random, n: int, max_len: int) -> tuple[int, int]:
    length = rng.randint(1, min(n, max_len))
    start = rng.randint(0, n - length)
    return start, start + length


@dataclass(frozen=True)
class Op:
    kind: str  # read, read-out, read-cache, tile, tile-box, region, and *-async variants
    level: int
    args: tuple[Any, ...]


def _random_op(img: Loaded, rng: random.Random, asynchronous: bool) -> Op:
    level = rng.randrange(img.n_levels)
    c, z, y, x = img.shape(level)
    kinds = (["read", "tile", "tile-box", "region"] if asynchronous
             else ["read", "read-out", "read-cache", "tile", "tile-box", "region"])
    kind = rng.choice(kinds)
    if kind.startswith("read"):
        sel = (slice(*_random_box(rng, c, c)), rng.randrange(z),
               slice(*_random_box(rng, y, 48)), slice(*_random_box(rng, x, 48)))
        return Op(kind, level, (sel,))
    if kind == "tile":
        size = rng.choice([16, 32])
        row, col = rng.randrange(math.ceil(y / size)), rng.randrange(math.ceil(x / size))
        chans = rng.sample(range(c), rng.randint(1, c))  # any order: maybe several reads
        return Op(kind, level, (row, col, size, rng.randrange(z), chans))
    if kind == "tile-box":
        return Op(kind, level, (_random_box(rng, y, 40), _random_box(rng, x, 40),
                                rng.randrange(z), sorted(rng.sample(range(c), rng.randint(1, c)))))
    return Op(kind, level, (_random_box(rng, y, 40), _random_box(rng, x, 40)))


def _region_of(img: Loaded, level: int, ybox: tuple[int, int], xbox: tuple[int, int]
               ) -> dict[str, tuple[float, float]]:
    """Physical intervals whose pixel box on ``level`` is exactly ``ybox`` × ``xbox``: the
    bounds lie half a pixel before the first and after the last pixel centre."""
    out = {}
    for axis, (i0, i1) in (("y", ybox), ("x", xbox)):
        k = img.axes.index(axis)
        s, t = img.scale[level][k], img.translation[level][k]
        out[axis] = (t + (i0 - 0.5) * s, t + (i1 - 0.5) * s)
    return out


def expected(img: Loaded, op: Op) -> np.ndarray:
    data = img.full[op.level]
    if op.kind.startswith("read"):
        return data[op.args[0]]
    if op.kind == "tile":
        row, col, size, z, chans = op.args
        y0, x0 = row * size, col * size
        return data[chans, z, y0:min(y0 + size, data.shape[2]), x0:min(x0 + size, data.shape[3])]
    if op.kind == "tile-box":
        (y0, y1), (x0, x1), z, chans = op.args
        return data[chans, z, y0:y1, x0:x1]
    (y0, y1), (x0, x1) = op.args
    return data[:, :, y0:y1, x0:x1]


def run_sync(image: Any, img: Loaded, op: Op) -> np.ndarray:
    level = image.levels[op.level]
    if op.kind == "read":
        return level.read(op.args[0])
    if op.kind == "read-out":
        want = expected(img, op)
        out = np.empty(want.shape, want.dtype)
        assert level.read(op.args[0], out=out) is out
        return out
    if op.kind == "read-cache":
        return level.read(op.args[0], cache=image.cache)
    if op.kind == "tile":
        row, col, size, z, chans = op.args
        return image.tile(op.level, row, col, size=size, z=z, channels=chans)
    if op.kind == "tile-box":
        y, x, z, chans = op.args
        return image.tile_box(op.level, y, x, z=z, channels=chans)
    region = image.read_region(_region_of(img, op.level, *op.args), level=op.level)
    assert region.level == op.level
    return region.data


async def run_async(image: Any, img: Loaded, op: Op) -> np.ndarray:
    if op.kind == "read":
        return await image.levels[op.level].read_async(op.args[0])
    if op.kind == "tile":
        row, col, size, z, chans = op.args
        return await image.tile_async(op.level, row, col, size=size, z=z, channels=chans)
    if op.kind == "tile-box":
        y, x, z, chans = op.args
        return await image.tile_box_async(op.level, y, x, z=z, channels=chans)
    region = await image.read_region_async(_region_of(img, op.level, *op.args), level=op.level)
    return region.data


def _same(got: Any, want: np.ndarray) -> bool:
    return (isinstance(got, np.ndarray) and got.shape == want.shape and got.dtype == want.dtype
            and np.array_equal(got, want))


# --------------------------------------------------------------------------------------
# 8 threads, sync and async mixed
# --------------------------------------------------------------------------------------


def _eight_threads(image: Any, img: Loaded, rounds: int, sync_per_round: int,
                   async_per_round: int) -> tuple[list[str], int]:
    """8 threads, each ``rounds`` times: ``sync_per_round`` sync operations, then one
    ``asyncio.run`` of ``async_per_round`` operations gathered. Mismatches and errors."""
    errors: list[str] = []
    count = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def check(op: Op, got: Any) -> None:
        want = expected(img, op)
        with lock:
            count[0] += 1
            if not _same(got, want):
                errors.append(f"{op}: got {getattr(got, 'shape', got)!r}, "
                              f"want {want.shape} {want.dtype}")

    async def batch(ops: list[Op]) -> None:
        results = await asyncio.gather(*(run_async(image, img, op) for op in ops))
        for op, got in zip(ops, results):
            check(op, got)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            barrier.wait()
            for _ in range(rounds):
                for _ in range(sync_per_round):
                    op = _random_op(img, rng, asynchronous=False)
                    check(op, run_sync(image, img, op))
                asyncio.run(batch([_random_op(img, rng, asynchronous=True)
                                   for _ in range(async_per_round)]))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            with lock:
                errors.append(f"thread {seed}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(1000 + k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not any(th.is_alive() for th in threads), "a reader thread hung"
    return errors, count[0]


@pytest.mark.parametrize("where", ["local", "http"])
@pytest.mark.parametrize("name", ["ozp-0.4", "sharded-0.5"])
def test_eight_threads_sync_and_async_exact(images, server, name, where):
    _, loaded = images
    img = loaded[name]
    image = ngffcore.open(_location(images, server, name, where),
                          cache=ngffcore.ChunkCache(64 * 1024))  # small: it evicts
    errors, n = _eight_threads(image, img, rounds=3, sync_per_round=6, async_per_round=6)
    assert not errors, f"{len(errors)} of {n}: {errors[:5]}"
    assert n == 8 * 3 * 12


@pytest.mark.slow
@pytest.mark.parametrize("where", ["local", "http"])
@pytest.mark.parametrize("name", ["ozp-0.4", "sharded-0.5"])
def test_eight_threads_sync_and_async_exact_long(images, server, name, where):
    _, loaded = images
    img = loaded[name]
    image = ngffcore.open(_location(images, server, name, where),
                          cache=ngffcore.ChunkCache(64 * 1024))
    errors, n = _eight_threads(image, img, rounds=10, sync_per_round=10, async_per_round=10)
    assert not errors, f"{len(errors)} of {n}: {errors[:5]}"


# --------------------------------------------------------------------------------------
# 10,000 reads: no growth of memory, threads or descriptors
# --------------------------------------------------------------------------------------


def resources(fetch_threads: bool = True) -> dict[str, int]:
    """RSS (bytes), OS threads, Python threads and open descriptors of this process.
    ``fetch_threads`` False leaves out ngffcore's fetch threads (store/fetchthreads.py), a
    pool that earlier HTTP tests leave idle and that ends 5 s later, possibly mid-run."""
    with open("/proc/self/statm") as f:
        rss_pages = int(f.read().split()[1])
    fetch = 0 if fetch_threads else sum(t.name == "ngffcore-fetch" for t in threading.enumerate())
    return {"rss": rss_pages * resource.getpagesize(),
            "tasks": len(os.listdir("/proc/self/task")) - fetch,
            "threads": threading.active_count() - fetch,
            "fds": len(os.listdir("/proc/self/fd"))}


def quiescent(timeout: float = 10.0, fetch_threads: bool = True) -> dict[str, int]:
    """Resources once threads and descriptors have stopped changing (threads of earlier
    tests finishing), sampled every 0.1 s until three samples agree."""
    deadline = time.monotonic() + timeout
    samples: list[tuple[int, ...]] = []
    while True:
        gc.collect()
        now = resources(fetch_threads)
        samples.append((now["tasks"], now["threads"], now["fds"]))
        if len(samples) >= 3 and len(set(samples[-3:])) == 1 or time.monotonic() > deadline:
            return now
        time.sleep(0.1)


def _settled(baseline: dict[str, int], keys: tuple[str, ...], timeout: float,
             fetch_threads: bool = True) -> dict[str, int]:
    """Resources once ``keys`` are back at ``baseline`` (or after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        now = resources(fetch_threads)
        if all(now[k] <= baseline[k] for k in keys) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def _small_reads(img: Loaded, n: int, seed: int) -> list[tuple[int, tuple[Any, ...]]]:
    """``n`` reads of at most 64×64 pixels, one (c, z) plane, crossing chunk edges."""
    rng = random.Random(seed)
    reads = []
    for _ in range(n):
        level = rng.randrange(img.n_levels)
        c, z, y, x = img.shape(level)
        reads.append((level, (rng.randrange(c), rng.randrange(z),
                              slice(*_random_box(rng, y, 64)), slice(*_random_box(rng, x, 64)))))
    return reads


def _read_many(image: Any, img: Loaded, reads: list[tuple[int, tuple[Any, ...]]],
               cache: Any, tiles: bool) -> int:
    """Every read (through ``cache`` if given; every 4th one as a ``tile_box`` when
    ``tiles``), each checked against zarr-python's pixels; returns the mismatches."""
    bad = 0
    for k, (level, sel) in enumerate(reads):
        if tiles and k % 4 == 0:
            c, z, ys, xs = sel
            got = image.tile_box(level, (ys.start, ys.stop), (xs.start, xs.stop), z=z,
                                 channels=[c])[0]
        else:
            got = image.levels[level].read(sel, cache=cache)
        bad += not _same(got, img.full[level][sel])
    return bad


def _no_growth(image: Any, img: Loaded, n: int, cache: Any, tiles: bool, seed: int
               ) -> dict[str, Any]:
    """Warm up, then ``n`` reads: the resources before and after, and the mismatches."""
    warm = _small_reads(img, max(300, n // 10), seed)
    assert _read_many(image, img, warm, cache, tiles) == 0
    before = quiescent(fetch_threads=False)
    t0 = time.perf_counter()
    bad = _read_many(image, img, _small_reads(img, n, seed + 1), cache, tiles)
    seconds = time.perf_counter() - t0
    after = _settled(before, ("tasks", "threads", "fds"), timeout=2.0, fetch_threads=False)
    report = {"reads": n, "seconds": round(seconds, 2), "bad": bad,
              "rss_growth_mib": round((after["rss"] - before["rss"]) / MiB, 2),
              "before": before, "after": after}
    print(f"\n{img.name} cache={'on' if cache is not None else 'off'}: {report}")
    return report


def _assert_no_growth(report: dict[str, Any], pool_slack: int = 0) -> None:
    """No mismatch; RSS within RSS_TOLERANCE; descriptors and Python threads no more (for
    HTTP reads: at most ``pool_slack`` more pooled connections); OS threads no more.

    OS threads may also be fewer: obstore's tokio runtime keeps idle blocking-pool threads
    for 10 s (the 8-thread HTTP test leaves ~100 of them), and they may end mid-run."""
    before, after = report["before"], report["after"]
    assert report["bad"] == 0, report
    assert UNDER_SANITIZER or after["rss"] - before["rss"] < RSS_TOLERANCE, report
    assert after["fds"] <= before["fds"] + 2 * pool_slack, report  # fewer is fine: idle connections close
    # fewer is fine: threads of earlier tests (an in-process server's handlers of pooled
    # connections that idle out) may end mid-run
    assert after["threads"] <= before["threads"] + pool_slack, report
    assert after["tasks"] <= before["tasks"] + pool_slack, report


@pytest.mark.parametrize("cached", [False, True], ids=["cache-off", "cache-on"])
@pytest.mark.parametrize("name", ["ozp-0.4", "sharded-0.5"])
def test_ten_thousand_local_reads_leak_nothing(images, name, cached):
    _, loaded = images
    img = loaded[name]
    image = ngffcore.open(str(img.path), cache=False)
    # a small cache keeps evicting, so its bound is exercised as well as its hits
    cache = ngffcore.ChunkCache(256 * 1024) if cached else None
    image.cache = cache  # tile_box reads go through it too
    _assert_no_growth(_no_growth(image, img, 10_000, cache, tiles=cached, seed=7))


@pytest.mark.parametrize("cached", [False, True], ids=["cache-off", "cache-on"])
def test_a_thousand_http_reads_leak_nothing(images, server, cached):
    _, loaded = images
    img = loaded["sharded-0.5"]
    image = ngffcore.open(f"{server.url}/{img.path.name}", cache=False)
    cache = ngffcore.ChunkCache(256 * 1024) if cached else None
    image.cache = cache
    _assert_no_growth(_no_growth(image, img, 1_000, cache, tiles=cached, seed=11),
                      HTTP_POOL_SLACK)


@pytest.mark.slow
@pytest.mark.parametrize("cached", [False, True], ids=["cache-off", "cache-on"])
@pytest.mark.parametrize("where", ["local", "http"])
def test_many_reads_leak_nothing_long(images, server, where, cached):
    _, loaded = images
    img = loaded["sharded-0.5"]
    location = str(img.path) if where == "local" else f"{server.url}/{img.path.name}"
    image = ngffcore.open(location, cache=False)
    cache = ngffcore.ChunkCache(256 * 1024) if cached else None
    image.cache = cache
    n = 50_000 if where == "local" else 10_000
    _assert_no_growth(_no_growth(image, img, n, cache, tiles=cached, seed=13),
                      HTTP_POOL_SLACK if where == "http" else 0)


# --------------------------------------------------------------------------------------
# cancellation storm
# --------------------------------------------------------------------------------------


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _storm(image: Any, img: Loaded, srv: RangeServer, n_tasks: int) -> dict[str, Any]:
    """Start ``n_tasks`` reads (alternately ``read_async`` of one level-0 chunk and
    ``tile_async`` of one channel of one 16-pixel tile), let their requests reach the
    server (which answers after ``srv.state.latency``), cancel them all."""
    c, z, y, x = img.shape(0)
    cy, cx = 16, 16

    def make(k: int) -> Any:
        plane = k // 2 + 1
        ci, zi = plane % c, (plane // c) % z
        r = (plane // (c * z)) % (y // cy)
        q = (plane // (c * z * (y // cy))) % (x // cx)
        if k % 2:
            return image.tile_async(0, r, q, size=16, z=zi, channels=[ci])
        return image.levels[0].read_async((ci, zi, slice(r * cy, r * cy + cy),
                                           slice(q * cx, q * cx + cx)))

    async def main() -> dict[str, Any]:
        t0 = time.monotonic()
        tasks = [asyncio.ensure_future(make(k)) for k in range(n_tasks)]
        # the tasks run up to their first request; the server holds each for STORM_LATENCY,
        # so the cancellation comes (after half of them were logged, or 1 s) before any answer
        while len(srv.state.requests()) < n_tasks // 2 and time.monotonic() - t0 < 1.0:
            await asyncio.sleep(0.02)
        sent = len(srv.state.requests())
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return {"sent": sent, "results": results, "left": left}

    return asyncio.run(main())


def _warm_storm_image(server: RangeServer, img: Loaded) -> Any:
    """The image over HTTP (with its cache, so tile reads claim chunks too), after one read
    of each kind: the baseline then holds the store's pooled connections, the I/O thread
    and the executors."""
    # requests abandoned by the storm run to their end (GETs go out on fetch threads, which
    # cannot stop one midway) and their connections go back to the pool; a short idle timeout
    # (the client's default is 90 s) lets the check below see the pool let them go
    image = ngffcore.open(f"{server.url}/{img.path.name}",
                          client_options={"pool_idle_timeout": "3s"})
    level0 = img.full[0]
    assert _same(image.levels[0][0, 0, :16, :16], level0[0, 0, :16, :16])
    assert _same(asyncio.run(image.levels[0].read_async((0, 0, slice(0, 16), slice(0, 16)))),
                 level0[0, 0, :16, :16])
    assert _same(asyncio.run(image.tile_async(0, 0, 0, size=16, z=0, channels=[0])),
                 level0[[0], 0, :16, :16])
    return image


def _storm_and_check(image: Any, img: Loaded, server: RangeServer, n_tasks: int,
                     baseline: dict[str, int]) -> dict[str, Any]:
    """One storm and every check on what it leaves behind; the resources afterwards."""
    image.cache.clear()  # every tile must miss and ask the server
    server.state.clear()
    server.state.latency = STORM_LATENCY
    storm = _storm(image, img, server, n_tasks)
    cancelled = sum(isinstance(r, asyncio.CancelledError) for r in storm["results"])
    assert storm["left"] == [], "tasks still pending on the loop after the storm"
    # every task was cancelled while its first request waited on the server
    assert cancelled == n_tasks, [r for r in storm["results"]
                                  if not isinstance(r, asyncio.CancelledError)][:3]
    assert storm["sent"] > 0  # ~500 here; fewer under a sanitizer, which slows the start

    # requests already sent are logged as the server accepts them; then the log must stop
    # growing: nothing keeps asking after the cancellation
    deadline = time.monotonic() + 10
    last = now = -1
    while time.monotonic() < deadline:
        now = len(server.state.requests())
        if now == last:
            break
        last = now
        time.sleep(0.5)
    assert now == last, "requests still arriving 10 s after the cancellation"
    time.sleep(1.0)
    assert len(server.state.requests()) == last, "a request arrived after the log settled"
    assert last <= 2 * n_tasks  # at most the one request each task had in flight, or two

    # the abandoned requests end, their connections idle out of the pool (3 s) and the
    # server's handler threads with them; idle fetch threads end after 5 s and obstore's idle
    # blocking-pool threads after 10 s; then threads and descriptors are back where they
    # were (or fewer: pooled connections used by the storm were dropped)
    server.state.latency = 0.0
    after = _settled(baseline, ("tasks", "threads", "fds"), timeout=STORM_LATENCY + 18.0)
    print(f"\nstorm: {n_tasks} tasks, {storm['sent']} requests logged when cancelled, "
          f"{last} in all; baseline {baseline}, after {after}")
    for key in ("tasks", "threads", "fds"):
        assert after[key] <= baseline[key], (key, baseline, after)

    # and a normal read is exact
    level0 = img.full[0]
    sel = (1, 2, slice(5, 77), slice(3, 120))
    assert _same(image.levels[0][sel], level0[sel])
    assert _same(image.tile(0, 1, 2, size=32, z=1, channels=[2, 0]),
                 level0[[2, 0], 1, 32:64, 64:96])
    return after


def test_cancellation_storm_leaves_nothing_running(images, server):
    n_tasks = 1000
    _raise_fd_limit(4 * n_tasks + 256)
    _, loaded = images
    img = loaded["sharded-0.5"]
    image = _warm_storm_image(server, img)
    _storm_and_check(image, img, server, n_tasks, quiescent())


@pytest.mark.slow
def test_repeated_cancellation_storms_do_not_grow(images, server):
    """Four storms of 1,000: each leaves nothing behind, and memory stops growing after
    the first (which grows the allocator's arenas for the server's 1,000 threads)."""
    n_tasks = 1000
    _raise_fd_limit(4 * n_tasks + 256)
    _, loaded = images
    img = loaded["sharded-0.5"]
    image = _warm_storm_image(server, img)
    baseline = quiescent()
    rss = [_storm_and_check(image, img, server, n_tasks, baseline)["rss"] for _ in range(4)]
    print(f"RSS after each storm (MiB): {[round(r / MiB, 1) for r in rss]}")
    assert UNDER_SANITIZER or rss[-1] - rss[0] < RSS_TOLERANCE, rss
