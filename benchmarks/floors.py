"""Floors: what this machine costs before ngffcore does anything, for the speed targets that
the benchmarks show missed (``docs/targets.md`` reads these figures).

Each measurement isolates one cost that every reader pays here and that the issues' ``limit``
rows leave out, so a target below ``limit + floor`` cannot be met on this machine by any
reader, and the table says by how much::

    python benchmarks/floors.py                    # all, ~2 min; writes results/floors.md
    python benchmarks/floors.py fresh remote-cpu   # some

* ``fresh``: the first write to fresh anonymous memory, per 4 KiB page (40 arrays of 768 KiB
  kept alive, the size of a viewer tile), against writing the same bytes again. Readers that
  return new arrays pay it per output byte.
* ``remote-cpu``: the 64-chunk ROI over HTTP (``remote_suite``'s ``v2-roi``, 20 ms): wall
  time, the reader's CPU time (all its threads: decode, obstore's runtime, Python), the
  server's CPU time, and the decode's own CPU time (the same chunks from the local copy).
  Reader and server share the 2 cores, so no read can finish before
  ``latency + (reader CPU + server CPU) / 2``; even a reader whose receiving cost nothing
  needs ``latency + (decode CPU + server CPU) / 2``.
* ``tile-replay``: the viewer-tile benchmark's 12 GETs per cold tile (``v2``, 20 ms), sent
  with bare obstore and bodies read, no decode: as ngffcore sends them (``get_async`` +
  ``bytes_async`` on one event loop) and with obstore's blocking API on 12 threads; p50 per
  tile, against ngffcore's cold tile p50 in the same run.
* ``cluster``: a ``LocalCluster`` of 2 worker processes x 1 thread: the time for the client
  to receive a 16384 x 16384 uint8 array (256 MiB, the tile slide's MIP) computed in a worker
  (``np.ones``), against a direct read of that slide's level 0 (3 x 16384 x 16384) in the
  client process.

Figures vary by ~20 % between runs on this shared VM: medians of several rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # servers.py

import local_suite as bc  # noqa: E402
from prefetch import prefetch  # noqa: E402
import remote_data as rd  # noqa: E402
import remote_suite as rs  # noqa: E402
import tiles_data as td  # noqa: E402
import tiles_suite as tsu  # noqa: E402
from servers import ServerProcess  # noqa: E402

HTTP: Any = {"allow_http": True}
LATENCY = 0.020


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3


def fresh(rounds: int = 7) -> list[str]:
    n, size = 40, 768 * 1024

    def once(reuse: list[np.ndarray] | None) -> float:
        keep = []
        t0 = time.perf_counter()
        for i in range(n):
            a = reuse[i] if reuse is not None else np.empty(size, np.uint8)
            a.fill(1)
            keep.append(a)
        return time.perf_counter() - t0

    reused = [np.empty(size, np.uint8) for _ in range(n)]
    once(reused)
    new = [once(None) for _ in range(rounds)]
    old = [once(reused) for _ in range(rounds)]
    pages = n * size // 4096
    per_page = (statistics.median(new) - statistics.median(old)) / pages * 1e6
    return [
        "## Fresh memory",
        "",
        f"40 x 768 KiB arrays written once: fresh {_median_ms(new):.1f} ms, reused "
        f"{_median_ms(old):.1f} ms; first touch costs **{per_page:.2f} µs per 4 KiB page** "
        f"({per_page * 192:.0f} µs per 768 KiB tile, {per_page * 262144 / 1e3:.0f} ms per GiB "
        "without huge pages).",
        "",
    ]


def remote_cpu(rounds: int = 9) -> list[str]:
    import ngffcore
    import psutil

    ngffcore.set_num_threads(bc.THREADS)
    w = rs._workloads()["v2-roi"]
    root = rd.ensure_remote_data()
    local = ngffcore.open_array(str(root / "v2.zarr"))
    prep = prefetch(local, w.sel)
    out = np.empty(prep.shape, local.dtype)
    prep.run(out)
    dec = []
    for _ in range(rounds):
        c0 = _cpu()
        prep.run(out)
        dec.append(_cpu() - c0)
    import obstore
    from obstore.store import HTTPStore

    keys = [r.key for r in local.plan(w.sel)]
    with ServerProcess(root, latency=LATENCY) as srv:
        a = ngffcore.open_array(f"{srv.url}/v2.zarr", client_options=HTTP)
        a[w.sel]
        server = psutil.Process(srv._proc.pid)
        wall, reader, serv = [], [], []
        for _ in range(rounds):
            s0, c0, t0 = sum(server.cpu_times()[:2]), _cpu(), time.perf_counter()
            a[w.sel]
            wall.append(time.perf_counter() - t0)
            reader.append(_cpu() - c0)
            serv.append(sum(server.cpu_times()[:2]) - s0)
        # the same 64 GETs with bare obstore, bodies read and dropped: receiving alone
        store = HTTPStore.from_url(f"{srv.url}/v2.zarr", client_options=HTTP)

        async def one(key: str) -> None:
            await (await obstore.get_async(store, key)).bytes_async()

        async def replay() -> list[float]:
            await asyncio.gather(*(one(k) for k in keys))
            out = []
            for _ in range(rounds):
                c0 = _cpu()
                await asyncio.gather(*(one(k) for k in keys))
                out.append(_cpu() - c0)
            return out

        receive = asyncio.run(replay())
    m = {k: _median_ms(v) for k, v in (("wall", wall), ("reader", reader), ("server", serv),
                                       ("decode", dec), ("receive", receive))}
    lat = LATENCY * 1e3
    floor = lat + (m["reader"] + m["server"]) / 2
    bare = lat + (m["decode"] + m["receive"] + m["server"]) / 2
    free_rx = lat + (m["decode"] + m["server"]) / 2
    return [
        "## Remote 64-chunk ROI: CPU on 2 cores",
        "",
        f"`v2-roi` over HTTP, {lat:g} ms, {len(wall)} rounds, medians: wall **{m['wall']:.1f} ms**; "
        f"reader CPU {m['reader']:.1f} ms (decode alone {m['decode']:.1f} ms; bare obstore "
        f"receiving the same 64 objects {m['receive']:.1f} ms); server CPU {m['server']:.1f} ms.",
        "",
        f"* floor with this reader: {lat:g} + ({m['reader']:.1f} + {m['server']:.1f}) / 2 = "
        f"**{floor:.1f} ms**",
        f"* floor with no cost beyond decode and bare obstore: {lat:g} + ({m['decode']:.1f} + "
        f"{m['receive']:.1f} + {m['server']:.1f}) / 2 = **{bare:.1f} ms**",
        f"* floor if receiving cost nothing: {lat:g} + ({m['decode']:.1f} + {m['server']:.1f}) / 2 "
        f"= **{free_rx:.1f} ms**",
        "",
    ]


def tile_replay(rounds: int = 3) -> list[str]:
    import ngffcore
    from ngffcore import _core
    import obstore
    from obstore.store import HTTPStore

    ngffcore.set_num_threads(bc.THREADS)
    ds = td.DATASETS["v2"]
    tiles = tsu.tiles(False)
    keys = tsu.tile_keys(ds, False, tiles)
    with ServerProcess(tsu.root_dir(False), latency=LATENCY, answer_head=True) as srv:
        loc = tsu.location(ds, "http", False, srv.url)
        img = ngffcore.open(loc, zarr_format=ds.zarr_format, client_options=HTTP)
        assert isinstance(img, ngffcore.Image) and img.cache is not None
        cache = img.cache
        img.tile_box(tiles[0].level, tiles[0].y, tiles[0].x)
        ngff = []
        for _ in range(rounds):
            for t in tiles:
                cache.clear()
                t0 = time.perf_counter()
                img.tile_box(t.level, t.y, t.x)
                ngff.append(time.perf_counter() - t0)
        store = HTTPStore.from_url(loc, client_options=HTTP)

        async def one(key: str) -> None:
            await (await obstore.get_async(store, key)).bytes_async()

        async def run_async() -> list[float]:
            await asyncio.gather(*(one(k) for k in keys[0]))
            out = []
            for _ in range(rounds):
                for ks in keys:
                    t0 = time.perf_counter()
                    await asyncio.gather(*(one(k) for k in ks))
                    out.append(time.perf_counter() - t0)
            return out

        in_loop = asyncio.run(run_async())
        pool = ThreadPoolExecutor(16)

        def blocking(key: str) -> Any:
            return obstore.get(store, key).bytes()

        list(pool.map(blocking, keys[0]))
        threads = []
        for _ in range(rounds):
            for ks in keys:
                t0 = time.perf_counter()
                list(pool.map(blocking, ks))
                threads.append(time.perf_counter() - t0)
        # the same GETs on threads, then the 12 chunks decoded by ngffcore's core in one
        # native call into a reused slab: the least any obstore-based reader can take
        decoded = []
        for _ in range(rounds):
            for t, ks in zip(tiles, keys):
                codec = img.levels[t.level].metadata.codec
                chunk = codec.chunk_shape
                ndim = len(chunk)
                boxes = np.zeros((len(ks), 3 * ndim), dtype=np.int64)
                boxes[:, ndim:2 * ndim] = chunk
                boxes[:, 2 * ndim] = np.arange(len(ks)) * chunk[0]
                slab = np.empty((len(ks) * chunk[0], *chunk[1:]), img.dtype)
                t0 = time.perf_counter()
                bodies = list(pool.map(blocking, ks))
                _core.decode_batch(codec.pipeline, slab, boxes, bodies, list(ks))
                decoded.append(time.perf_counter() - t0)
        pool.shutdown()
    return [
        "## Viewer tile over HTTP: the 12 GETs alone",
        "",
        f"`v2` tiles, {LATENCY * 1e3:g} ms, p50 per tile over {len(ngff)} tiles: ngffcore cold "
        f"**{_median_ms(ngff):.1f} ms**; bare obstore, `get_async` + `bytes_async` on one loop "
        f"(as ngffcore) **{_median_ms(in_loop):.1f} ms**; bare obstore, blocking `get().bytes()` "
        f"on 12 threads **{_median_ms(threads):.1f} ms**; the same on threads, then the 12 chunks "
        f"decoded by ngffcore's core in one native call **{_median_ms(decoded):.1f} ms** (the "
        f"least an obstore-based reader can take for the tile).",
        "",
    ]


def cluster(rounds: int = 5) -> list[str]:
    import ngffcore
    from distributed import Client, LocalCluster

    ngffcore.set_num_threads(bc.THREADS)
    img = ngffcore.open(str(td.DATASETS["v2"].path(False)), cache=False)
    assert isinstance(img, ngffcore.Image)
    level = img.levels[0]
    direct = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        level[...]
        direct.append(time.perf_counter() - t0)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
            Client(lc) as client:
        shape = (16384, 16384)
        client.submit(np.ones, (64, 64), np.uint8, pure=False).result()
        moved = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            got = client.submit(np.ones, shape, np.uint8, pure=False).result()
            moved.append(time.perf_counter() - t0)
            assert got.shape == shape
            del got
    return [
        "## LocalCluster: moving a slide-sized result",
        "",
        f"2 worker processes x 1 thread: a 16384 x 16384 uint8 array (256 MiB) made in a worker "
        f"and gathered by the client: **{_median_ms(moved):.0f} ms**; direct read of the 3 x 16384 "
        f"x 16384 level in the client: **{_median_ms(direct):.0f} ms** (1.3x: "
        f"{1.3 * _median_ms(direct):.0f} ms).",
        "",
    ]


MEASUREMENTS: dict[str, Callable[[], list[str]]] = {
    "fresh": fresh, "remote-cpu": remote_cpu, "tile-replay": tile_replay, "cluster": cluster,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("which", nargs="*", help=f"some of: {', '.join(MEASUREMENTS)} (default: all)")
    ap.add_argument("--out", default=str(HERE / "results" / "floors.md"))
    args = ap.parse_args(argv)
    unknown = [w for w in args.which if w not in MEASUREMENTS]
    if unknown:
        ap.error(f"unknown measurement(s) {unknown}; choose from {list(MEASUREMENTS)}")
    lines = [f"# Floors of this machine, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"{bc.THREADS} reader threads, python {platform.python_version()}, {platform.machine()}; "
             "`python benchmarks/floors.py` (see its docstring).", ""]
    for name in args.which or list(MEASUREMENTS):
        part = MEASUREMENTS[name]()
        print("\n".join(part), flush=True)
        lines += part
    Path(args.out).write_text("\n".join(lines))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
