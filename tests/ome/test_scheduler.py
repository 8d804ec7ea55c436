"""The request scheduler (issue 17): ``Image.scheduler()`` over HTTP.

Images are written with ``ngffcore.write_image`` (0.4 chunked, 0.5 sharded; 2–3 channels,
random pixels); every expected pixel is zarr-python's read of the same level, every expected
request comes from the chunk grid as written or from the shard files' indexes parsed here
with numpy, and requests are counted in the test server's own log (``servers.RangeServer``),
never in ngffcore's stats alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ngffcore
from servers import RangeServer

zarr = pytest.importorskip("zarr")

HTTP = {"client_options": {"allow_http": True}}
CHUNK = 64  # v04: (1, 64, 64) chunks on every level
INNER, SHARD = 32, 128  # v05s: (1, 32, 32) inner chunks in (1, 128, 128) shards
BAD = (1, 0, 1)  # bad.zarr: level 0 chunk (c, y, x) overwritten with junk


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scheduler")
    rng = np.random.default_rng(17)
    data3 = rng.integers(0, 65535, size=(3, 512, 768), dtype=np.uint16)
    ngffcore.write_image(str(root / "v04.zarr"), data3, axes="cyx", chunks=(1, CHUNK, CHUNK),
                         version="0.4")
    ngffcore.write_labels(str(root / "v04.zarr"), "cells",
                          rng.integers(0, 6, size=(512, 768), dtype=np.uint32))
    data2 = rng.integers(0, 65535, size=(2, 512, 768), dtype=np.uint16)
    ngffcore.write_image(str(root / "v05s.zarr"), data2, axes="cyx", chunks=(1, INNER, INNER),
                         shards=(1, SHARD, SHARD), version="0.5")
    ngffcore.write_image(str(root / "bad.zarr"), data3, axes="cyx", chunks=(1, CHUNK, CHUNK),
                         version="0.4")
    c, y, x = BAD
    (root / "bad.zarr" / "0" / str(c) / str(y) / str(x)).write_bytes(b"not a blosc frame" * 64)
    # all-zero regions are not stored: a missing 0.4 chunk, a missing shard, an empty inner
    # chunk (each reads as the fill value)
    sparse = rng.integers(1, 65535, size=(2, 512, 768), dtype=np.uint16)
    sparse[:, :128, :128] = 0
    sparse[:, 160:192, 160:192] = 0
    ngffcore.write_image(str(root / "sparse04.zarr"), sparse, axes="cyx",
                         chunks=(1, CHUNK, CHUNK), version="0.4")
    ngffcore.write_image(str(root / "sparse05.zarr"), sparse, axes="cyx",
                         chunks=(1, INNER, INNER), shards=(1, SHARD, SHARD), version="0.5")
    ngffcore.write_image(str(root / "czyx.zarr"),
                         rng.integers(0, 65535, size=(2, 4, 256, 256), dtype=np.uint16),
                         axes="czyx", chunks=(1, 1, CHUNK, CHUNK), version="0.5", levels=2)
    return root


@pytest.fixture(scope="module")
def srv(written: Path) -> Any:
    with RangeServer(str(written)) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(srv: Any) -> Any:
    srv.state.reset()
    yield
    srv.state.reset()


def _open(srv: Any, name: str) -> Any:
    img = ngffcore.open(f"{srv.url}/{name}", **HTTP)  # a fresh, empty cache every time
    srv.state.clear()  # the metadata requests of the open are not the tiles'
    return img


def _ref(root: Path, name: str, level: int, y: tuple[int, int], x: tuple[int, int],
         channels: list[int] | None = None) -> np.ndarray:
    arr = zarr.open_array(str(root / name / str(level)), mode="r")
    if channels is None:
        return np.asarray(arr[:, y[0]:y[1], x[0]:x[1]])
    return np.stack([np.asarray(arr[c, y[0]:y[1], x[0]:x[1]]) for c in channels])


def _span(n: int, index: int, size: int) -> tuple[int, int]:
    return index * size, min((index + 1) * size, n)


def _shape(root: Path, name: str, level: int) -> tuple[int, ...]:
    return tuple(zarr.open_array(str(root / name / str(level)), mode="r").shape)


def _log(srv: Any) -> list[Any]:
    reqs = srv.state.requests()
    assert all(r.method == "GET" for r in reqs), [(r.method, r.path) for r in reqs]
    return reqs


def _chunk_paths(name: str, level: int, channels: list[int], y: tuple[int, int],
                 x: tuple[int, int]) -> list[str]:
    """The 0.4 chunk objects (``/``-separated keys) a box touches."""
    return [f"/{name}/{level}/{c}/{i}/{j}" for c in channels
            for i in range(y[0] // CHUNK, (y[1] - 1) // CHUNK + 1)
            for j in range(x[0] // CHUNK, (x[1] - 1) // CHUNK + 1)]


def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def _shard_index(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and sizes per inner chunk of a shard written with a crc32c index at its end
    (the layout ``zarr.json`` declares), parsed with numpy."""
    n = (SHARD // INNER) ** 2
    raw = path.read_bytes()
    index = np.frombuffer(raw[-(16 * n + 4):-4], dtype="<u8").reshape(n, 2)
    return index[:, 0].astype(np.int64), index[:, 1].astype(np.int64)


# -- pixels and requests ---------------------------------------------------------------------

TILES = [(0, 0, 0), (0, 0, 1), (0, 1, 1), (0, 5, 7), (1, 0, 0), (1, 2, 3), (2, 1, 1)]


def test_tiles_bit_exact_one_get_per_channel_and_chunk(written: Path, srv: Any) -> None:
    """0.4: tiles of 96 pixels (across chunk edges, edge tiles clipped) on every level,
    asked for together: each equals zarr-python's read, and the server sees exactly one GET
    per channel and chunk the tiles touch (chunks shared by two tiles: still one)."""
    img = _open(srv, "v04.zarr")
    sched = img.scheduler()
    size = 96
    futs = [sched.tile(lv, r, c, size=size) for lv, r, c in TILES]
    touched: set[str] = set()
    per_tile = 0  # chunks each tile needs, summed (what the cache serves the second time)
    for (lv, r, c), fut in zip(TILES, futs):
        _, Y, X = _shape(written, "v04.zarr", lv)
        y, x = _span(Y, r, size), _span(X, c, size)
        got = fut.result(30)
        np.testing.assert_array_equal(got, _ref(written, "v04.zarr", lv, y, x))
        assert got.dtype == np.uint16 and got.shape == (3, y[1] - y[0], x[1] - x[0])
        touched.update(_chunk_paths("v04.zarr", lv, [0, 1, 2], y, x))
        per_tile += len(_chunk_paths("v04.zarr", lv, [0, 1, 2], y, x))
    assert sched.wait_idle(10)
    assert Counter(r.path for r in _log(srv)) == Counter(touched)  # each once, nothing else
    stats = sched.stats
    assert stats["sent"] == len(touched) and stats["bytes"] > 0
    assert stats["shared"] > 0  # tiles (0,0,1)/(0,1,1) share chunks with their neighbours
    # the same tiles again: from the cache, nothing sent
    srv.state.clear()
    again = [sched.tile(lv, r, c, size=size) for lv, r, c in TILES]
    for fut, first in zip(again, futs):
        np.testing.assert_array_equal(fut.result(30), first.result())
    assert _log(srv) == []
    assert sched.stats["cache_hits"] == per_tile
    sched.close()


def test_sharded_tiles_bit_exact_one_index_and_disjoint_ranges(written: Path, srv: Any
                                                                ) -> None:
    """0.5 sharded: pixels equal zarr-python's; per shard one index request (a suffix GET,
    or the whole shard when every inner chunk is needed), and data ranges that never
    overlap and cover exactly the inner chunks the tiles need (from the shard indexes)."""
    img = _open(srv, "v05s.zarr")
    sched = img.scheduler()
    size = 80
    tiles = [(0, 0, 0), (0, 0, 1), (0, 3, 5), (1, 1, 1), (2, 0, 0)]
    futs = [sched.tile(lv, r, c, size=size, channels=[1, 0]) for lv, r, c in tiles]
    needed: dict[str, set[int]] = {}
    for (lv, r, c), fut in zip(tiles, futs):
        _, Y, X = _shape(written, "v05s.zarr", lv)
        y, x = _span(Y, r, size), _span(X, c, size)
        np.testing.assert_array_equal(fut.result(30),
                                      _ref(written, "v05s.zarr", lv, y, x, [1, 0]))
        per = SHARD // INNER
        for ch in (0, 1):
            for i in range(y[0] // INNER, (y[1] - 1) // INNER + 1):
                for j in range(x[0] // INNER, (x[1] - 1) // INNER + 1):
                    key = f"/v05s.zarr/{lv}/c/{ch}/{i // per}/{j // per}"
                    needed.setdefault(key, set()).add((i % per) * per + j % per)
    assert sched.wait_idle(10)
    by_path: dict[str, list[str | None]] = {}
    for r in _log(srv):
        by_path.setdefault(r.path, []).append(r.range)
    assert set(by_path) == set(needed)
    for path, ranges in by_path.items():
        offsets, nbytes = _shard_index(written / path.lstrip("/"))
        size_ = (written / path.lstrip("/")).stat().st_size
        suffix = [r for r in ranges if r is not None and r.startswith("bytes=-")]
        if not suffix:  # every inner chunk needed, index not known: the whole shard at once
            assert ranges == [None] and len(needed[path]) == (SHARD // INNER) ** 2
            continue
        assert len(suffix) == 1, (path, ranges)
        # data: ranges, or the whole object when most of it is needed (the read's policy)
        spans = sorted((0, size_) if r is None else
                       tuple(int(v) + k for k, v in enumerate(r[6:].split("-")))
                       for r in ranges if r not in suffix)
        assert all(e0 <= s1 for (_, e0), (s1, _) in zip(spans, spans[1:])), spans  # disjoint
        for k in needed[path]:
            a, b = int(offsets[k]), int(offsets[k] + nbytes[k])
            assert any(s <= a and b <= e for s, e in spans), (path, k)
        assert all(e <= size_ for _, e in spans)
    sched.close()


def test_same_tile_twice_shares_gets_async_and_render(written: Path, srv: Any) -> None:
    """Two requests of one tile and ``tile_async`` of it: one GET per chunk; ``render``
    equals ``Image.render_tile`` of the same tile (same compositor, same pixels)."""
    img = _open(srv, "v04.zarr")
    sched = img.scheduler()
    a = sched.tile(1, 1, 2, size=CHUNK * 2)
    b = sched.tile(1, 1, 2, size=CHUNK * 2)

    async def third() -> np.ndarray:
        return await sched.tile_async(1, 1, 2, size=CHUNK * 2)

    c = asyncio.run(third())
    ref = _ref(written, "v04.zarr", 1, (128, 256), (256, 384))
    for got in (a.result(30), b.result(30), c):
        np.testing.assert_array_equal(got, ref)
    assert sched.wait_idle(10)
    assert Counter(r.path for r in _log(srv)) == Counter(
        _chunk_paths("v04.zarr", 1, [0, 1, 2], (128, 256), (256, 384)))
    rgba = sched.render(1, 1, 2, size=CHUNK * 2).result(30)
    other = ngffcore.open(f"{srv.url}/v04.zarr", **HTTP)
    np.testing.assert_array_equal(rgba, other.render_tile(1, 1, 2, size=CHUNK * 2))
    assert rgba.shape == (128, 128, 4) and rgba.dtype == np.uint8
    sched.close()


def test_label_tiles(written: Path, srv: Any) -> None:
    """``label=``: the tile is read from that label image's level."""
    img = _open(srv, "v04.zarr")
    sched = img.scheduler()
    got = sched.tile(1, 0, 1, size=100, label="cells").result(30)
    arr = zarr.open_array(str(written / "v04.zarr" / "labels" / "cells" / "1"), mode="r")
    np.testing.assert_array_equal(got, np.asarray(arr[0:100, 100:200])[None])
    with pytest.raises(ngffcore.SelectionError, match="no label image 'nuclei'"):
        sched.tile(0, 0, 0, label="nuclei")
    sched.close()


def test_tiles_from_many_threads(written: Path, srv: Any) -> None:
    img = _open(srv, "v04.zarr")
    sched = img.scheduler(max_in_flight=4)
    jobs = [(lv, r, c) for lv in range(3) for r in range(2) for c in range(3)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futs = list(pool.map(lambda j: sched.tile(j[0], j[1], j[2], size=CHUNK,
                                                  channels=[2, 0]), jobs))
    for (lv, r, c), fut in zip(jobs, futs):
        np.testing.assert_array_equal(
            fut.result(30), _ref(written, "v04.zarr", lv, _span(512 >> lv, r, CHUNK),
                                 _span(768 >> lv, c, CHUNK), [2, 0]))
    assert sched.wait_idle(10)
    assert len(_log(srv)) == len(jobs) * 2  # one chunk per channel per tile
    sched.close()


@pytest.mark.parametrize("name", ["sparse04.zarr", "sparse05.zarr"])
def test_missing_chunks_and_shards_read_as_fill(written: Path, srv: Any, name: str) -> None:
    """Chunks and shards not stored (404) and empty inner chunks: zeros, as zarr-python
    reads them, and the tiles around them exact."""
    img = _open(srv, name)
    sched = img.scheduler()
    size = 96
    tiles = [(0, 0, 0), (0, 1, 1), (0, 1, 2), (1, 0, 0), (2, 0, 0)]
    futs = [sched.tile(lv, r, c, size=size) for lv, r, c in tiles]
    for (lv, r, c), fut in zip(tiles, futs):
        _, Y, X = _shape(written, name, lv)
        y, x = _span(Y, r, size), _span(X, c, size)
        np.testing.assert_array_equal(fut.result(30), _ref(written, name, lv, y, x))
    assert not futs[0].result()[:, :96, :96].any()
    assert any(r.status == 404 for r in _log(srv))  # something asked for is not stored
    sched.close()


@pytest.mark.parametrize("name", ["v04.zarr", "v05s.zarr"])
def test_local_images(written: Path, name: str) -> None:
    """A local image: the same tiles (the core reads the files; one 'request' per object)."""
    img = ngffcore.open(str(written / name))
    sched = img.scheduler(max_in_flight=2)
    futs = [sched.tile(lv, r, c, size=100, channels=[1, 0]) for lv, r, c in TILES]
    for (lv, r, c), fut in zip(TILES, futs):
        _, Y, X = _shape(written, name, lv)
        np.testing.assert_array_equal(
            fut.result(30), _ref(written, name, lv, _span(Y, r, 100), _span(X, c, 100), [1, 0]))
    assert sched.wait_idle(10)
    assert sched.stats["sent"] > 0 and sched.stats["running"] == 0
    sched.close()


# -- cancelling, ordering, views ---------------------------------------------------------------


def _slow(srv: Any, path: str, seconds: float) -> None:
    srv.state.faults[path] = [f"slow:{seconds}"]


def test_cancel_while_queued_sends_nothing(written: Path, srv: Any) -> None:
    img = _open(srv, "v04.zarr")
    sched = img.scheduler(max_in_flight=1)
    _slow(srv, "/v04.zarr/0/0/0/0", 0.5)
    first = sched.tile(0, 0, 0, size=CHUNK, channels=[0])
    _until(lambda: srv.state.requests())
    queued = sched.tile(0, 3, 3, size=CHUNK, channels=[0, 1])
    also = sched.tile(0, 4, 4, size=CHUNK, channels=[2])
    assert sched.cancel(queued)
    also.cancel()  # the future's own cancel works as well
    np.testing.assert_array_equal(first.result(30),
                                  _ref(written, "v04.zarr", 0, (0, 64), (0, 64), [0]))
    assert sched.wait_idle(10)
    assert queued.cancelled() and also.cancelled()
    assert [r.path for r in _log(srv)] == ["/v04.zarr/0/0/0/0"]
    stats = sched.stats
    assert stats["sent"] == 1 and stats["cancelled"] == 3 and stats["abandoned"] == 0
    assert not sched.cancel(first)  # done: nothing to cancel
    sched.close()


def test_order_priority_then_coarser_then_nearer(written: Path, srv: Any) -> None:
    """``max_in_flight=1``: while one request is in flight, tiles asked for in a shuffled
    order reach the server by priority, then coarser level first, then nearer to the view's
    centre; the view's prefetch comes after all of them."""
    img = _open(srv, "v04.zarr")
    sched = img.scheduler(max_in_flight=1)
    srv.state.latency = 0.01
    _slow(srv, "/v04.zarr/0/0/0/0", 0.5)
    blocker = sched.tile(0, 0, 0, size=CHUNK, channels=[0])
    _until(lambda: srv.state.requests())
    sched.set_view(0, 0, 128, 0, 128)  # centre (64, 64) on level 0; the blocker is in view
    # (priority, level, row, col): one chunk of channel 1 each
    order = [(5, 0, 5, 7), (1, 1, 3, 5), (1, 0, 1, 2), (1, 0, 6, 8), (0, 2, 1, 1),
             (0, 0, 0, 2), (0, 0, 3, 3), (0, 0, 7, 11)]
    shuffled = order[:]
    random.Random(3).shuffle(shuffled)
    assert shuffled != order
    futs = [sched.tile(lv, r, c, size=CHUNK, channels=[1], priority=p)
            for p, lv, r, c in shuffled]
    blocker.result(30)
    for f in futs:
        f.result(30)
    assert sched.wait_idle(30)
    log = [r.path for r in _log(srv)]
    expected = [f"/v04.zarr/{lv}/1/{r}/{c}" for _, lv, r, c in order]
    assert log[1:1 + len(order)] == expected
    # prefetch (the ring around the view and the coarser level, of the last size and
    # channels asked for, planned once the view has lasted): after all of them
    prefetch = log[1 + len(order):]
    assert prefetch and not set(prefetch) & set(expected + log[:1])
    sched.close()


def test_set_view_cancels_abandons_and_prefetches(written: Path, srv: Any) -> None:
    img = _open(srv, "v04.zarr")
    rtt = 0.2
    srv.state.latency = rtt
    sched = img.scheduler(max_in_flight=2)
    far1 = sched.tile(0, 6, 10, size=CHUNK, channels=[0])
    far2 = sched.tile(0, 6, 11, size=CHUNK, channels=[0])
    _until(lambda: len(srv.state.requests()) == 2)
    queued = sched.tile(0, 7, 11, size=CHUNK)  # 3 chunks, no slot: queued
    # in view: its two chunks take both slots once the far ones are abandoned, so the
    # prefetch is sent after them (not just queued after them)
    visible = sched.tile(0, 1, 1, size=CHUNK, channels=[1, 2])
    t0 = time.monotonic()
    sched.set_view(0, 0, 128, 0, 128)
    with pytest.raises(concurrent.futures.CancelledError):
        far1.result(rtt / 2)  # cancelled at once, not when its bytes arrive
    assert far2.cancelled() and queued.cancelled()
    np.testing.assert_array_equal(visible.result(30),
                                  _ref(written, "v04.zarr", 0, (64, 128), (64, 128), [1, 2]))
    assert sched.wait_idle(30)
    stats = sched.stats
    assert stats["abandoned"] == 2 and stats["cancelled"] == 3
    log = _log(srv)
    paths = [r.path for r in log]
    assert not any(p.startswith("/v04.zarr/0/") and p.endswith("/7/11") for p in paths)
    # prefetch: the ring of 64-pixel tiles (the last size and channels asked for) around
    # [0, 128)² and the view's region on level 1 (pixels [0, 64)²: its tile (0, 0))
    ring = {f"/v04.zarr/0/{ch}/{r}/{c}" for ch in (1, 2) for r in range(3) for c in range(3)
            if not (r < 2 and c < 2)}
    coarse = {"/v04.zarr/1/1/0/0", "/v04.zarr/1/2/0/0"}
    after = {r.path: r.t for r in log if r.t > t0}
    assert ring | coarse <= set(after)
    first_prefetch = min(after[p] for p in ring | coarse)
    assert first_prefetch - t0 < 3 * rtt  # as soon as a slot came free
    assert max(after[f"/v04.zarr/0/{ch}/1/1"] for ch in (1, 2)) < first_prefetch
    # the abandoned requests' bytes went on into the cache: no request to read them now
    srv.state.clear()
    srv.state.latency = 0.0
    got = img.tile_box(0, (384, 448), (640, 768), channels=[0])
    np.testing.assert_array_equal(got, _ref(written, "v04.zarr", 0, (384, 448), (640, 768),
                                            [0]))
    assert _log(srv) == []
    sched.close()


def _concurrent(log: list[Any], paths: set[str], latency: float) -> int:
    """The most of ``paths``' requests the server held at once: each is answered
    ``latency`` after it arrived, so requests arriving less than that apart overlap."""
    times = sorted(r.t for r in log if r.path in paths)
    return max((sum(1 for u in times if t <= u < t + latency * 0.9) for t in times),
               default=0)


def test_prefetch_never_delays_explicit_tiles(written: Path, srv: Any) -> None:
    """``max_in_flight=4``: ``set_view`` then 4 tiles straight away: the server sees the 4
    explicit GETs before any prefetch GET. Then, with that view's prefetch in flight, a
    view that keeps it (it intersects) and 4 new tiles: their GETs reach the server at
    once, not after the prefetch's responses (prefetch holds at most a quarter of the
    slots, and gives its slot to an explicit request), and before the new view's
    prefetch."""
    img = _open(srv, "v04.zarr")
    latency = 0.3
    srv.state.latency = latency
    sched = img.scheduler(max_in_flight=4)
    sched.set_view(0, 0, 128, 0, 128)
    first = [(0, 0), (0, 1), (1, 0), (1, 1)]  # the view's tiles: one chunk each
    futs = [sched.tile(0, r, c, size=CHUNK, channels=[0]) for r, c in first]
    for (r, c), fut in zip(first, futs):
        np.testing.assert_array_equal(fut.result(30), _ref(
            written, "v04.zarr", 0, _span(512, r, CHUNK), _span(768, c, CHUNK), [0]))
    _until(lambda: len(srv.state.requests()) > 4)  # the view's prefetch has started
    log = srv.state.requests()
    assert {r.path for r in log[:4]} == {f"/v04.zarr/0/0/{r}/{c}" for r, c in first}
    # while that prefetch is in flight: a view that intersects it, and 4 tiles elsewhere
    t0 = time.monotonic()
    sched.set_view(0, 0, 192, 0, 192)
    second = [(6, 8), (6, 9), (7, 8), (7, 9)]
    futs = [sched.tile(0, r, c, size=CHUNK, channels=[1]) for r, c in second]
    for (r, c), fut in zip(second, futs):
        np.testing.assert_array_equal(fut.result(30), _ref(
            written, "v04.zarr", 0, _span(512, r, CHUNK), _span(768, c, CHUNK), [1]))
    mine = {f"/v04.zarr/0/1/{r}/{c}" for r, c in second}
    _until(lambda: any(r.t > t0 and r.path not in mine for r in srv.state.requests()))
    assert sched.stats["prefetch_yielded"] == 1  # the one prefetch request in flight
    sched.close()  # (the rest of the new view's prefetch is not waited for)
    log = _log(srv)
    arrived = [r.t - t0 for r in log if r.path in mine]
    assert len(arrived) == 4 and max(arrived) < latency / 2, arrived
    later = [r.t - t0 for r in log if r.t > t0 and r.path not in mine]
    assert min(later) > max(arrived)  # the new view's prefetch: after them


def test_prefetch_holds_at_most_its_share(written: Path, srv: Any) -> None:
    """Prefetch alone (no explicit tile waiting) never has more than a quarter of
    ``max_in_flight`` requests at the server at once (8: 2), and its requests are the ring
    of one tile around the view and the view's region on the next coarser level."""
    img = _open(srv, "v04.zarr")
    latency = 0.1
    sched = img.scheduler(max_in_flight=8)
    sched.tile(0, 2, 2, size=CHUNK, channels=[0]).result(30)  # size and channels to copy
    srv.state.clear()
    srv.state.latency = latency
    sched.set_view(0, 128, 256, 128, 256)  # tiles (2..3, 2..3) of 64 pixels on level 0
    assert sched.wait_idle(30)
    log = _log(srv)
    ring = {f"/v04.zarr/0/0/{r}/{c}" for r in range(1, 5) for c in range(1, 5)
            if not (2 <= r <= 3 and 2 <= c <= 3)}
    coarse = {"/v04.zarr/1/0/1/1"}  # level 1 pixels [64, 128)²
    assert {r.path for r in log} == ring | coarse and len(log) == len(ring | coarse)
    assert _concurrent(log, ring | coarse, latency) == 2
    sched.close()


def test_prefetch_ahead_of_a_pan_first(written: Path, srv: Any) -> None:
    """After a pan, the ring tiles ahead of it (within half a tile of the view) and the
    coarser level are prefetched within 3 round trips; the rest of the ring only once the
    view has lasted (``REST_DWELL``): a view replaced sooner never fetches it."""
    from ngffcore.ome.scheduler_queue import REST_DWELL

    img = _open(srv, "v04.zarr")
    rtt = 0.05
    sched = img.scheduler(max_in_flight=8)
    sched.tile(0, 0, 0, size=CHUNK, channels=[0]).result(30)  # measures a round trip
    srv.state.latency = rtt
    sched.set_view(0, 0, 128, 0, 128)
    sched.set_view(0, 0, 128, 48, 176)  # a pan to the right: columns 0-2, col 3 16 px away
    t0 = time.monotonic()
    ahead = {"/v04.zarr/0/0/0/3", "/v04.zarr/0/0/1/3", "/v04.zarr/0/0/2/3"}
    coarse = {"/v04.zarr/1/0/0/0", "/v04.zarr/1/0/0/1"}  # level 1 x [24, 88)
    rest = {"/v04.zarr/0/0/2/0", "/v04.zarr/0/0/2/1", "/v04.zarr/0/0/2/2"}
    _until(lambda: ahead | coarse <= {r.path for r in srv.state.requests()})
    got = {r.path: r.t - t0 for r in srv.state.requests() if r.path != "/v04.zarr/0/0/0/0"}
    assert set(got) == ahead | coarse and max(got.values()) < 3 * rtt, got
    assert sched.wait_idle(30)
    got = {r.path: r.t - t0 for r in _log(srv) if r.path != "/v04.zarr/0/0/0/0"}
    assert set(got) == ahead | coarse | rest
    assert min(got[p] for p in rest) >= REST_DWELL * 0.9
    # the same pan replaced before its rest is due: the rest is never sent
    srv.state.clear()
    sched.set_view(0, 256, 384, 0, 128)
    sched.set_view(0, 256, 384, 48, 176)
    time.sleep(REST_DWELL / 2)
    sched.set_view(1, 0, 256, 0, 384)  # level 1, covers everything prefetched so far
    assert sched.wait_idle(30)
    sent = {r.path for r in _log(srv)}
    assert "/v04.zarr/0/0/5/3" in sent  # ahead of the second pan
    assert not sent & {f"/v04.zarr/0/0/6/{c}" for c in range(3)}  # its rest, not
    sched.close()


def test_view_planes(written: Path, srv: Any) -> None:
    """t/z: a view at z=2 cancels queued tiles of other planes, keeps those of its plane
    (also on the coarser level, whose z is halved: its plane 1 holds z 2–3), and its
    prefetch asks for its own plane."""
    img = _open(srv, "czyx.zarr")
    sched = img.scheduler(max_in_flight=1)
    _slow(srv, "/czyx.zarr/0/c/0/2/0/0", 0.4)
    blocker = sched.tile(0, 0, 0, size=CHUNK, z=2, channels=[0])
    _until(lambda: srv.state.requests())
    other_z = sched.tile(0, 1, 1, size=CHUNK, z=0, channels=[0])
    same_z = sched.tile(0, 1, 1, size=CHUNK, z=2, channels=[1])
    coarse_same = sched.tile(1, 0, 0, size=CHUNK, z=1, channels=[1])
    coarse_other = sched.tile(1, 0, 0, size=CHUNK, z=0, channels=[1])
    sched.set_view(0, 0, 128, 0, 128, z=2)
    _until(other_z.cancelled)
    _until(coarse_other.cancelled)
    arr0 = zarr.open_array(str(written / "czyx.zarr" / "0"), mode="r")
    arr1 = zarr.open_array(str(written / "czyx.zarr" / "1"), mode="r")
    np.testing.assert_array_equal(blocker.result(30), np.asarray(arr0[0:1, 2, 0:64, 0:64]))
    np.testing.assert_array_equal(same_z.result(30), np.asarray(arr0[1:2, 2, 64:128, 64:128]))
    np.testing.assert_array_equal(coarse_same.result(30), np.asarray(arr1[1:2, 1, 0:64, 0:64]))
    assert sched.wait_idle(30)
    paths = {r.path for r in _log(srv)}
    assert not any(p.split("/")[5] != "2" for p in paths if p.startswith("/czyx.zarr/0/"))
    assert not any(p.split("/")[5] != "1" for p in paths if p.startswith("/czyx.zarr/1/"))
    assert "/czyx.zarr/0/c/1/2/2/2" in paths  # the ring, at the view's plane
    with pytest.raises(ngffcore.SelectionError):
        sched.set_view(0, 0, 10, 0, 10, z=4)
    sched.close()


def test_abandoned_requests_do_not_count_up_to_a_bound(written: Path, srv: Any) -> None:
    """Requests abandoned in flight free their slot at once (new ones are sent before they
    end), but at most ``max_in_flight`` of them: beyond, a new request waits for one."""
    img = _open(srv, "v04.zarr")
    sched = img.scheduler(max_in_flight=2)
    rtt = 0.8
    srv.state.latency = rtt
    a = [sched.tile(0, 6, k, size=CHUNK, channels=[0]) for k in range(2)]
    _until(lambda: len(srv.state.requests()) == 2)
    t0 = srv.state.requests()[0].t
    for f in a:
        assert sched.cancel(f)
    b = [sched.tile(0, 5, k, size=CHUNK, channels=[0]) for k in range(2)]
    _until(lambda: len(srv.state.requests()) == 4)
    # sent while the abandoned ones still ran: not answered yet
    assert [r.status for r in srv.state.requests()[:2]] == [0, 0]
    assert sched.stats["abandoned"] == 2
    for f in b:
        sched.cancel(f)
    c = sched.tile(0, 4, 0, size=CHUNK, channels=[0])  # 4 abandoned running: it waits
    np.testing.assert_array_equal(c.result(30),
                                  _ref(written, "v04.zarr", 0, (256, 320), (0, 64), [0]))
    log = srv.state.requests()
    assert len(log) == 5 and log[4].t - t0 >= rtt * 0.9
    assert sched.wait_idle(30)
    assert sched.stats["abandoned"] == 4
    sched.close()


def test_set_view_storm(written: Path, srv: Any) -> None:
    """1000 views (with visible tiles asked for now and then): at the end nothing runs or
    is queued, no request arrives any more, no thread was added, and every future is done:
    cancelled, or holding the right pixels. Requests in flight are bounded (``max_in_flight``
    counted, as many abandoned): the warm-up reaches that bound, so the fetch threads and
    connections the storm may use exist before threads are counted."""
    img = _open(srv, "v04.zarr")
    n = 4
    sched = img.scheduler(max_in_flight=n)
    srv.state.latency = 0.3
    first = [sched.tile(0, 7, k, size=CHUNK, channels=[0]) for k in range(n)]
    _until(lambda: len(srv.state.requests()) == n)
    for f in first:
        sched.cancel(f)  # abandoned: n more may go
    second = [sched.tile(0, 0, k, size=CHUNK, channels=[0]) for k in range(n)]
    _until(lambda: len(srv.state.requests()) == 2 * n)
    for f in second:
        f.result(30)
    assert sched.wait_idle(30)
    srv.state.latency = 0.002
    rnd = random.Random(5)
    futs = []
    threads = threading.active_count()
    for k in range(1000):
        lv = rnd.randrange(3)
        Y, X = 512 >> lv, 768 >> lv
        y0, x0 = rnd.randrange(-64, Y), rnd.randrange(-64, X)
        sched.set_view(lv, y0, y0 + 128, x0, x0 + 192)
        if k % 10 == 0:  # now and then the loop applies a view before the next comes
            time.sleep(0.002)
        if k % 25 == 0:
            r, c = max(y0, 0) // CHUNK, max(x0, 0) // CHUNK
            futs.append((sched.tile(lv, r, c, size=CHUNK, channels=[0, 2]), (lv, r, c)))
    assert sched.wait_idle(120)
    assert threading.active_count() <= threads  # (before the references: zarr has threads)
    stats = sched.stats
    assert (stats["running"], stats["in_flight"], stats["queued"]) == (0, 0, 0)
    assert stats["cancelled"] > 0 and stats["tiles_cancelled"] > 0
    assert all(f.done() for f, _ in futs)
    seen = len(srv.state.requests())
    time.sleep(0.3)
    assert len(srv.state.requests()) == seen
    for fut, (lv, r, c) in futs:
        if not fut.cancelled():
            np.testing.assert_array_equal(
                fut.result(), _ref(written, "v04.zarr", lv, _span(512 >> lv, r, CHUNK),
                                   _span(768 >> lv, c, CHUNK), [0, 2]))
    sched.close()


def test_coalesced_ranges_of_tiles_queued_together(written: Path, srv: Any) -> None:
    """Two tiles in one shard queued together (the only slot busy): one index request and
    ONE ranged GET serving both inner chunks (counted in ``coalesced``); a cold
    ``Image.tile_box`` pair sends two data requests for the same chunks."""
    img = _open(srv, "v05s.zarr")
    sched = img.scheduler(max_in_flight=1)
    _slow(srv, "/v05s.zarr/0/c/1/0/0", 0.4)
    blocker = sched.tile(0, 0, 0, size=INNER, channels=[1])  # the shard of channel 1
    _until(lambda: srv.state.requests())
    a = sched.tile(0, 0, 0, size=INNER, channels=[0])  # inner chunk 0 of shard c/0/0/0
    b = sched.tile(0, 0, 2, size=INNER, channels=[0])  # inner chunk 2 of the same shard
    np.testing.assert_array_equal(a.result(30),
                                  _ref(written, "v05s.zarr", 0, (0, 32), (0, 32), [0]))
    np.testing.assert_array_equal(b.result(30),
                                  _ref(written, "v05s.zarr", 0, (0, 32), (64, 96), [0]))
    blocker.result(30)
    assert sched.wait_idle(10)
    mine = [r.range for r in _log(srv) if r.path == "/v05s.zarr/0/c/0/0/0"]
    data = [r for r in mine if not r.startswith("bytes=-")]
    assert len(mine) == 2 and len(data) == 1, mine
    offsets, nbytes = _shard_index(written / "v05s.zarr/0/c/0/0/0")
    start, end = (int(v) for v in data[0].removeprefix("bytes=").split("-"))
    for k in (0, 2):
        assert start <= offsets[k] and offsets[k] + nbytes[k] <= end + 1
    assert sched.stats["coalesced"] == 1
    sched.close()
    # without the scheduler, two cold tiles are two reads: two data requests
    other = _open(srv, "v05s.zarr")
    other.tile_box(0, (0, 32), (0, 32), channels=[0])
    other.tile_box(0, (0, 32), (64, 96), channels=[0])
    assert len([r for r in _log(srv) if not r.range.startswith("bytes=-")]) == 2


# -- failures and bad input -------------------------------------------------------------------


def test_corrupt_chunk_fails_only_its_tiles(written: Path, srv: Any) -> None:
    img = _open(srv, "bad.zarr")
    sched = img.scheduler()
    c, cy, cx = BAD
    bad = sched.tile(0, cy, cx, size=CHUNK, channels=[0, c])  # needs the junk chunk
    same_place = sched.tile(0, cy, cx, size=CHUNK, channels=[0])  # shares its good chunk
    wide = sched.tile(0, 0, 0, size=CHUNK * 2, channels=[0, 2])
    with pytest.raises(ngffcore.DecodeError) as info:
        bad.result(30)
    assert "1/0/1" in str(info.value)
    np.testing.assert_array_equal(same_place.result(30),
                                  _ref(written, "bad.zarr", 0, (0, 64), (64, 128), [0]))
    np.testing.assert_array_equal(wide.result(30),
                                  _ref(written, "bad.zarr", 0, (0, 128), (0, 128), [0, 2]))
    assert sched.stats["failed"] == 1
    # the scheduler goes on: the next tile needing the chunk fails the same way, others work
    with pytest.raises(ngffcore.DecodeError):
        sched.tile(0, 0, 0, size=CHUNK * 2, channels=[c]).result(30)
    assert sched.tile(0, 2, 2, size=CHUNK).result(30).shape == (3, 64, 64)
    sched.close()


def test_bad_input_raises_at_the_call(written: Path, srv: Any) -> None:
    img = _open(srv, "v04.zarr")
    sched = img.scheduler()
    cases = [
        (ngffcore.SelectionError, lambda: sched.tile(0, 99, 0)),  # outside the level
        (ngffcore.SelectionError, lambda: sched.tile(0, 0, 2)),  # 768 / 512: 2 columns
        (ngffcore.SelectionError, lambda: sched.tile(3, 0, 0)),  # no such level
        (ngffcore.SelectionError, lambda: sched.tile(0, 0, 0, channels=[3])),
        (ngffcore.SelectionError, lambda: sched.tile(0, 0, 0, size=0)),
        (ngffcore.SelectionError, lambda: sched.render(0, 0, 0, channels=[5])),
        (ngffcore.SelectionError, lambda: sched.set_view(3, 0, 10, 0, 10)),
        (ngffcore.SelectionError, lambda: sched.set_view(-4, 0, 10, 0, 10)),
        (ngffcore.SelectionError, lambda: sched.set_view(0, 10, 10, 0, 10)),  # empty
        (ngffcore.SelectionError, lambda: sched.set_view(0, 0, 10, 0, 10, z=1)),  # no z
        (ngffcore.ArgumentError, lambda: sched.set_view(0, 0.5, 10, 0, 10)),
        (ngffcore.ArgumentError, lambda: sched.tile(0, 0, 0, priority="high")),
        (ngffcore.ArgumentError, lambda: img.scheduler(max_in_flight=0)),
        (ngffcore.ArgumentError, lambda: img.scheduler(cache={})),
    ]
    for error, call in cases:
        with pytest.raises(error):
            call()
    assert sched.wait_idle(5)
    assert sched.stats["tiles"] == 0 and _log(srv) == []
    sched.close()


def test_close_then_every_call_raises(written: Path, srv: Any) -> None:
    img = _open(srv, "v04.zarr")
    sched = img.scheduler(max_in_flight=1)
    _slow(srv, "/v04.zarr/0/0/0/0", 0.3)
    running = sched.tile(0, 0, 0, size=CHUNK, channels=[0])
    _until(lambda: srv.state.requests())
    queued = sched.tile(0, 1, 1, size=CHUNK, channels=[0])
    with sched:
        pass  # the context manager closes it
    assert sched.closed
    _until(running.cancelled)  # in flight: abandoned, its future cancelled
    _until(queued.cancelled)
    calls = [
        lambda: sched.tile(0, 0, 0),
        lambda: asyncio.run(sched.tile_async(0, 0, 0)),
        lambda: sched.render(0, 0, 0),
        lambda: asyncio.run(sched.render_async(0, 0, 0)),
        lambda: sched.set_view(0, 0, 10, 0, 10),
        lambda: sched.cancel(running),
        lambda: sched.wait_idle(1),
    ]
    for call in calls:
        with pytest.raises(ngffcore.ClosedError, match="closed"):
            call()
    sched.close(wait=True, timeout=10)  # a second close: nothing more, waits for the GET
    stats = sched.stats
    assert stats["running"] == 0 and stats["abandoned"] == 1 and stats["cancelled"] == 1
    assert [r.path for r in _log(srv)] == ["/v04.zarr/0/0/0/0"]
    assert stats["bytes"] > 0  # the abandoned GET's body still arrived (into the cache)
