"""Issue 13, items 8, 10 and 12: the bytes-in-flight bound, a clean exit after a read that
failed fast, and a read cancelled again while its cleanup runs.

* ``max_bytes_in_flight``: the bytes one remote read holds received and not yet decoded
  never exceed the bound (or one object, when a single object is larger), for whole-chunk
  GETs and for a sharded array's ranged and whole-shard GETs; decoding is slowed so that
  responses pile up. Pixels are compared with zarr-python's.
* Exit: a process whose remote read failed on one 403 among 1,000 requests in flight exits
  normally (before the fix it died of SIGSEGV / SIGABRT in about a third of the runs).
* Cancellation: ``read_async(out=buf)`` cancelled once, twice or many times while its
  decode batch runs raises CancelledError only when nothing writes into ``buf`` any more,
  leaving no task behind; 600 cached ``tile_box_async`` cancelled at random moments leave
  no task behind.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, ShardingCodec

import ngffcore
import tile_writers as tw
from ngffcore.zarr import pipeline
from servers import RangeServer

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cancel_exit")
    rng = np.random.default_rng(13)
    # 128 uncompressed 32 KiB chunks
    plain = rng.integers(0, 65535, (128, 128, 128)).astype("<u2")
    z = zarr.create_array(root / "plain", shape=plain.shape, chunks=(1, 128, 128),
                          dtype=plain.dtype, zarr_format=3, compressors=None, fill_value=0)
    z[...] = plain
    # 8 shards of 8 uncompressed 32 KiB inner chunks (8 × 16 × 128, along y)
    sh = rng.integers(0, 65535, (64, 128, 128)).astype("<u2")
    z = zarr.create_array(root / "sharded", shape=sh.shape, chunks=(8, 128, 128),
                          dtype=sh.dtype, serializer=ShardingCodec(
                              chunk_shape=(8, 16, 128), codecs=[BytesCodec()]),
                          compressors=None, fill_value=0)
    z[...] = sh
    # 1,000 small chunks for the exit test
    many = np.arange(64000, dtype="<u2").reshape(1000, 64)
    z = zarr.create_array(root / "many", shape=many.shape, chunks=(1, 64), dtype=many.dtype,
                          zarr_format=3, compressors=None, fill_value=0)
    z[...] = many
    tw.write_case(root, "img", "0.5", "czyx", (3, 2, 64, 96), (1, 1, 16, 16), n_levels=1,
                  seed=5)
    return root


@pytest.fixture()
def server(root):
    with RangeServer(str(root)) as srv:
        yield srv


def _reference(root: Path, name: str, sel: Any = Ellipsis) -> np.ndarray:
    return np.asarray(zarr.open_array(root / name, mode="r")[sel])


# -- the bytes-in-flight bound ---------------------------------------------------------------


class _Peak:
    """Replaces ``pipeline.Budget`` with a subclass recording the most bytes ever held."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.peak = 0
        self.limits: list[int] = []
        recorder = self

        self.lowest = 0
        self.budgets: list[pipeline.Budget] = []

        class Recording(pipeline.Budget):
            @property
            def held(self) -> int:
                return self._held

            @held.setter
            def held(self, value: int) -> None:
                self._held = value
                recorder.peak = max(recorder.peak, value)
                recorder.lowest = min(recorder.lowest, value)

            def __init__(self, limit: int) -> None:
                recorder.limits.append(limit)
                recorder.budgets.append(self)
                super().__init__(limit)

        monkeypatch.setattr(pipeline, "Budget", Recording)


def _slow_decode(monkeypatch: pytest.MonkeyPatch, seconds: float,
                 started: threading.Event | None = None) -> None:
    """Every decode batch of a remote read waits ``seconds`` before writing (so responses
    pile up, or a cancellation lands while a batch is in the core)."""
    real = pipeline._core.decode_batch

    def slow(*args: Any) -> Any:
        if started is not None:
            started.set()
        time.sleep(seconds)
        return real(*args)

    monkeypatch.setattr(pipeline._core, "decode_batch", slow)


@pytest.mark.parametrize("limit", [256 * 1024, 1024])
def test_bytes_in_flight_bound_holds_for_chunk_gets(root, server, monkeypatch, limit):
    peak = _Peak(monkeypatch)
    _slow_decode(monkeypatch, 0.01)
    arr = ngffcore.open_array(f"{server.url}/plain", max_bytes_in_flight=limit)
    got = arr[...]
    np.testing.assert_array_equal(got, _reference(root, "plain"), strict=True)
    assert peak.limits == [limit]
    chunk = 128 * 128 * 2
    # a 1 KiB bound is smaller than one chunk: the chunks still come, one at a time
    assert 0 < peak.peak <= max(limit, chunk), peak.peak


@pytest.mark.parametrize("name", ["plain", "sharded"])
def test_bytes_in_flight_accounting_of_a_memory_store(root, monkeypatch, name):
    """A store whose bodies are in memory takes their room too: what a read gives back as
    chunks are decoded is what it took (never below zero, all of it back at the end), and
    the bound holds."""
    from ngffcore.store.memory import MemoryStore

    store = MemoryStore()
    base = root / name
    for path in sorted(base.rglob("*")):
        if path.is_file():
            asyncio.run(store.put(path.relative_to(base).as_posix(), path.read_bytes()))
    store.max_bytes_in_flight = 256 * 1024  # type: ignore[attr-defined]
    peak = _Peak(monkeypatch)
    _slow_decode(monkeypatch, 0.005)
    got = ngffcore.open_array(store)[...]
    np.testing.assert_array_equal(got, _reference(root, name), strict=True)
    assert peak.lowest == 0 and all(b.held == 0 for b in peak.budgets)
    assert 0 < peak.peak <= 256 * 1024 + 128 * 128 * 2, peak.peak


def test_bytes_in_flight_bound_holds_for_shards(root, server, monkeypatch):
    peak = _Peak(monkeypatch)
    _slow_decode(monkeypatch, 0.01)
    limit = 128 * 1024
    arr = ngffcore.open_array(f"{server.url}/sharded", max_bytes_in_flight=limit)
    # one ranged GET of two adjacent inner chunks (64 KiB) per shard, 8 in flight...
    sel = (slice(None, None), slice(0, 32), slice(0, 128))
    got = asyncio.run(arr.read_async(sel))
    np.testing.assert_array_equal(got, _reference(root, "sharded", sel), strict=True)
    ranged = [r for r in server.state.requests("GET") if r.range and not r.range.startswith(
        "bytes=-")]
    assert len(ranged) == 8, ranged
    assert 0 < peak.peak <= limit, peak.peak
    # ...and whole-shard GETs (256 KiB each, larger than the bound: one at a time)
    arr2 = ngffcore.open_array(f"{server.url}/sharded", max_bytes_in_flight=limit)
    got = arr2[...]
    np.testing.assert_array_equal(got, _reference(root, "sharded"), strict=True)
    assert any(r.range is None for r in server.state.requests("GET"))
    assert peak.peak <= 8 * 128 * 128 * 2 + 8 * 16 + 4, peak.peak


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1"])
def test_bytes_in_flight_must_be_a_positive_int(server, bad):
    with pytest.raises(ngffcore.ArgumentError, match="max_bytes_in_flight"):
        ngffcore.open_array(f"{server.url}/plain", max_bytes_in_flight=bad)


def test_bytes_in_flight_travels_with_a_pickle(server):
    import pickle

    arr = ngffcore.open_array(f"{server.url}/plain", max_bytes_in_flight=12345)
    assert pickle.loads(pickle.dumps(arr))._store.max_bytes_in_flight == 12345


# -- a second cancellation --------------------------------------------------------------------


@pytest.mark.parametrize("cancels", [1, 2, 25])
def test_cancelled_read_writes_nothing_after_raising(root, server, monkeypatch, cancels):
    started = threading.Event()
    _slow_decode(monkeypatch, 0.3, started)
    server.state.jitter = 0.2  # some requests still in flight when the first batch runs
    arr = ngffcore.open_array(f"{server.url}/plain")
    sentinel = np.uint16(7)

    async def main() -> tuple[np.ndarray, np.ndarray, list[Any]]:
        buf = np.full(arr.shape, sentinel, dtype=arr.dtype)
        task = asyncio.ensure_future(arr.read_async(out=buf))
        while not started.is_set():
            await asyncio.sleep(0.005)
        for _ in range(cancels):  # the first lands mid-batch, the others in the cleanup
            task.cancel()
            await asyncio.sleep(0.01)
        with pytest.raises(asyncio.CancelledError):
            await task
        snapshot = buf.copy()
        await asyncio.sleep(0.8)  # longer than any batch the core could still be running
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return snapshot, buf, left

    snapshot, buf, left = asyncio.run(main())
    assert left == []
    np.testing.assert_array_equal(buf, snapshot, strict=True)
    # what was written is right: each element is the sentinel or the true pixel
    ref = _reference(root, "plain")
    assert np.all((buf == sentinel) | (buf == ref))


def test_cancelled_cached_tiles_leave_no_task(root, server):
    server.state.latency = 0.02
    server.state.jitter = 0.03
    image = ngffcore.open(f"{server.url}/img.zarr")
    rng = np.random.default_rng(1)

    async def main() -> tuple[int, int, list[Any]]:
        done = cancelled = 0
        for wave in range(6):
            image.cache.clear()
            tasks = []
            for k in range(100):
                y0, x0 = int(rng.integers(0, 48)), int(rng.integers(0, 80))
                # channels 0 and 2 are two reads (not consecutive): gather_or_cancel runs both
                tasks.append(asyncio.ensure_future(image.tile_box_async(
                    0, (y0, y0 + 16), (x0, x0 + 16), z=k % 2, channels=[2, 0])))
            # each tile cancelled at a random moment, then again a little later (a viewer
            # dropping tiles twice over): the second lands while the first is cleaning up
            loop = asyncio.get_running_loop()
            for task in tasks:
                delay = float(rng.uniform(0.0, 0.08))
                loop.call_later(delay, task.cancel)
                loop.call_later(delay + float(rng.uniform(0.0, 0.01)), task.cancel)
            results = await asyncio.gather(*tasks, return_exceptions=True)
            cancelled += sum(isinstance(r, asyncio.CancelledError) for r in results)
            done += sum(isinstance(r, np.ndarray) for r in results)
            errors = [r for r in results if isinstance(r, BaseException)
                      and not isinstance(r, asyncio.CancelledError)]
            assert errors == []
        await asyncio.sleep(0.2)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return done, cancelled, left

    done, cancelled, left = asyncio.run(main())
    assert left == [], f"{len(left)} tasks left pending: {left[:3]}"
    assert cancelled > 100, (done, cancelled)
    # the cache the cancelled tiles shared still serves exact tiles
    full = _reference(root, "img.zarr/0")
    got = image.tile_box(0, (10, 40), (20, 70), z=1, channels=[2, 0])
    np.testing.assert_array_equal(got, full[[2, 0], 1, 10:40, 20:70], strict=True)


# -- exit after a read that failed fast --------------------------------------------------------


_FAILING_READ = textwrap.dedent("""
    import asyncio, os, sys
    sys.path.insert(0, {tests!r})
    from servers import RangeServer
    import ngffcore
    mode = sys.argv[1]
    srv = RangeServer({root!r}).__enter__()
    srv.state.faults["/many/c/5/0"] = ["403"]
    url = srv.url + "/many"
    if mode == "cli":  # what `python -m ngffcore read URL -o OUT` runs
        from ngffcore.cli.main import main
        out = os.path.join({out!r}, f"out{{os.getpid()}}.npy")
        status = main(["read", url, "-o", out, "-O", "concurrency=1000"])
        sys.exit(0 if status else 3)  # the read must fail
    arr = ngffcore.open_array(url, concurrency=1000)
    try:
        arr.read() if mode == "sync" else asyncio.run(arr.read_async())
    except ngffcore.AuthError:
        pass
    else:
        sys.exit(3)
""")


def _exit_codes(root: Path, tmp_path: Path, runs: int) -> dict[str, list[int]]:
    script = tmp_path / "failing_read.py"
    script.write_text(_FAILING_READ.format(tests=str(TESTS), root=str(root),
                                           out=str(tmp_path)))

    def run(mode: str) -> int:
        env = {**os.environ, "PYTHONFAULTHANDLER": ""}
        return subprocess.run([sys.executable, str(script), mode], env=env,
                              capture_output=True, timeout=60).returncode

    codes: dict[str, list[int]] = {}
    modes = ["sync", "async", "cli"]
    with ThreadPoolExecutor(4) as pool:
        for mode in modes:
            codes[mode] = list(pool.map(run, [mode] * runs))
    return codes


def _check_exits(codes: dict[str, list[int]]) -> None:
    for mode, rcs in codes.items():
        # a negative code is a signal (SIGSEGV -11, SIGABRT -6, SIGBUS -7); 3: no error seen
        assert rcs.count(0) == len(rcs), (mode, rcs)


def test_exit_after_a_failed_read_is_clean(root, tmp_path):
    _check_exits(_exit_codes(root, tmp_path, 6))


@pytest.mark.slow
def test_exit_after_a_failed_read_is_clean_50_runs(root, tmp_path):
    _check_exits(_exit_codes(root, tmp_path, 50))
