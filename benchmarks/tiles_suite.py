"""Shared pieces of the viewer-tile benchmarks: settings, the 40-tile workload, the engines, the
limit and replay rows, the reference pixels and per-tile statistics.

Used by ``test_bench_tiles.py`` (see its docstring and ``benchmarks/README.md``). Nothing runs at
import time except reading environment variables.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import local_suite as bc
from prefetch import prefetch
import tiles_data as td

#: Tiles per pass, tile edge, and the seed of their positions.
N_TILES = 40
TILE = 512
TILE_SEED = 4242
#: Decode threads for every engine (ngffcore pool, tensorstore data-copy / file-io concurrency,
#: zarr-python's thread pool, dask's threaded scheduler). The machine has 2 cores.
THREADS = bc.THREADS
#: Injected per-request latency of the HTTP server, ms.
LATENCY_MS = float(os.environ.get("NGFF_BENCH_TILE_LATENCY_MS", "20"))
#: Decoded-chunk cache of the engines that have one (ngffcore's default size; tensorstore's
#: cache pool gets the same bound).
CACHE_BYTES = 512 * 2**20
#: zarr-python's default ``async.concurrency`` (the benchmark conftest sets 2 for the local read
#: suite; the tile benchmarks put the default back for their duration).
ZARR_CONCURRENCY = 10
LIMIT_REPEATS = 7
REPLAY_REPEATS = 3
#: "local" and "http" (comma-separated) — where the engines read from.
WHERES = tuple(w.strip() for w in os.environ.get("NGFF_BENCH_TILE_WHERE", "local,http").split(",") if w.strip())
#: Datasets to run (``tiles_data.DATASETS`` keys).
DATASET_NAMES = tuple(d.strip() for d in os.environ.get("NGFF_BENCH_TILE_DATASETS", ",".join(td.DATASETS)).split(",")
                      if d.strip())
PASSES = ("cold", "warm")


def where_title(where: str) -> str:
    return f"http {LATENCY_MS:g}ms" if where == "http" else where


def group_name(dataset: str, where: str, pass_: str) -> str:
    return f"tiles {where_title(where)}/{dataset}/{pass_}"


# ---------------------------------------------------------------------------------------------
# Workload
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    index: int
    level: int
    y: tuple[int, int]
    x: tuple[int, int]

    @property
    def sel(self) -> tuple[slice, slice, slice]:
        return (slice(None), slice(*self.y), slice(*self.x))

    def chunks(self, chunks: tuple[int, int, int], channels: int = 3) -> int:
        """Chunk objects the tile touches (all channels)."""
        n = -(-channels // chunks[0]) if chunks[0] < channels else 1
        for (a, b), c in zip((self.y, self.x), chunks[1:]):
            n *= (b - 1) // c - a // c + 1
        return n


def _origin(rng: random.Random, size: int, tile: int) -> int:
    """A tile origin uniform in [0, size - tile], not on the chunk grid (unless the tile spans
    the whole axis)."""
    if size <= tile:
        return 0
    while True:
        o = rng.randrange(size - tile + 1)
        if o % td.CHUNK:
            return o


#: How the tiles are drawn (also printed in the report).
TILE_RULE = (
    "Levels: each of the 5 levels gets 8 of the 40 tiles, in a shuffled order (fixed seed). Origin: "
    "uniform over the level, y and x each redrawn while on the 512 chunk grid, so every "
    "tile cuts through 2 x 2 chunks per channel (12 chunk objects planar, 4 with 3-channel chunks); "
    "a level no larger than a tile is read whole (small data only: its levels 3 and 4 are 512 and "
    "256 pixels wide)."
)


def tiles(small: bool, n: int = N_TILES) -> tuple[Tile, ...]:
    """The workload: ``n`` tiles of ``TILE`` x ``TILE`` pixels (all channels); see ``TILE_RULE``."""
    rng = random.Random(TILE_SEED)
    shapes = td.level_shapes(small)
    levels = [i % len(shapes) for i in range(n)]
    rng.shuffle(levels)
    out = []
    for i, lvl in enumerate(levels):
        _, h, w = shapes[lvl]
        th, tw = min(TILE, h), min(TILE, w)
        y0, x0 = _origin(rng, h, th), _origin(rng, w, tw)
        out.append(Tile(i, lvl, (y0, y0 + th), (x0, x0 + tw)))
    return tuple(out)


def describe_tiles(ts: tuple[Tile, ...], chunks: tuple[int, int, int]) -> str:
    per_level: dict[int, int] = {}
    for t in ts:
        per_level[t.level] = per_level.get(t.level, 0) + 1
    n_chunks = sorted({t.chunks(chunks) for t in ts})
    return (f"{len(ts)} tiles of {TILE}x{TILE}x3, per level {dict(sorted(per_level.items()))}, "
            f"{'/'.join(map(str, n_chunks))} chunk objects each")


# ---------------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------------

HTTP_OPTIONS: Any = {"allow_http": True}


def location(ds: td.TileDataset, where: str, small: bool, base_url: str | None) -> str:
    if where == "http":
        assert base_url is not None
        return f"{base_url}/{ds.dirname}"
    return str(ds.path(small))


class Engine:
    """One reader of the image. ``open`` (untimed) reads the metadata; ``tile`` reads one tile
    as ``(3, h, w)``; ``make_cold`` (untimed) drops whatever decoded data the engine caches,
    returning the handle to use next (possibly a new one)."""

    name = ""
    title = ""
    config = ""

    def unavailable(self, where: str) -> str | None:
        return None

    def open(self, ds: td.TileDataset, loc: str, where: str) -> Any:
        raise NotImplementedError

    def tile(self, h: Any, t: Tile) -> np.ndarray:
        raise NotImplementedError

    def make_cold(self, h: Any, next_tile: Tile) -> Any:
        return h

    def cache_info(self, h: Any) -> str:
        return ""


class NgffEngine(Engine):
    name = title = "ngffcore"
    config = (f"`ngffcore.open(loc, zarr_format=…, cache=ChunkCache({CACHE_BYTES >> 20} MiB))` "
              f"(HTTP: `client_options={{'allow_http': True}}`, default `concurrency` 64), "
              f"`img.tile_box(level, y, x)`; `set_num_threads({THREADS})`; cold: `img.cache.clear()`")

    def open(self, ds: td.TileDataset, loc: str, where: str) -> Any:
        ngffcore = bc.import_ngffcore()
        opts: dict[str, Any] = {"client_options": HTTP_OPTIONS} if where == "http" else {}
        return ngffcore.open(loc, zarr_format=ds.zarr_format, cache=ngffcore.ChunkCache(CACHE_BYTES), **opts)

    def tile(self, h: Any, t: Tile) -> np.ndarray:
        return h.tile_box(t.level, t.y, t.x)

    def make_cold(self, h: Any, next_tile: Tile) -> Any:
        h.cache.clear()
        return h

    def cache_info(self, h: Any) -> str:
        s = h.cache.stats()
        return f"{s.hits} hits, {s.misses} misses, {s.bytes >> 20} MiB held"


class TensorStoreEngine(Engine):
    name = title = "tensorstore"
    config = (f"one `ts.open` per level (`zarr`/`zarr3` driver, `file` or `http` kvstore, "
              f"`recheck_cached_data: false`), context `data_copy_concurrency` = `file_io_concurrency` = "
              f"{THREADS}, `cache_pool` {CACHE_BYTES >> 20} MiB, default `http_request_concurrency` (32); "
              f"`t[:, y0:y1, x0:x1].read().result()`; cold: a fresh context and reopen")

    @dataclass
    class Handle:
        ds: td.TileDataset
        loc: str
        where: str
        context: Any
        levels: dict[int, Any]

    def _context(self) -> Any:
        import tensorstore as ts

        return ts.Context({
            "data_copy_concurrency": {"limit": THREADS},
            "file_io_concurrency": {"limit": THREADS},
            "cache_pool": {"total_bytes_limit": CACHE_BYTES},
        })

    def _spec(self, ds: td.TileDataset, loc: str, where: str, level: int) -> dict[str, Any]:
        kv: dict[str, Any] = ({"driver": "http", "base_url": f"{loc}/{level}"} if where == "http"
                              else {"driver": "file", "path": f"{loc}/{level}"})
        # without this every cached chunk is revalidated on read (a stat locally, a request
        # over HTTP): a viewer's cache of immutable data trusts what it holds, as ngffcore's does
        return {"driver": "zarr" if ds.zarr_format == 2 else "zarr3", "kvstore": kv,
                "recheck_cached_data": False, "recheck_cached_metadata": False}

    def _open_levels(self, h: "TensorStoreEngine.Handle", levels: list[int]) -> None:
        import tensorstore as ts

        futures = {lv: ts.open(self._spec(h.ds, h.loc, h.where, lv), read=True, context=h.context)
                   for lv in levels}
        for lv, f in futures.items():
            h.levels[lv] = f.result()

    def open(self, ds: td.TileDataset, loc: str, where: str) -> Any:
        h = self.Handle(ds, loc, where, self._context(), {})
        self._open_levels(h, list(range(td.N_LEVELS)))
        return h

    def tile(self, h: Any, t: Tile) -> np.ndarray:
        return h.levels[t.level][t.sel].read().result()

    def make_cold(self, h: Any, next_tile: Tile) -> Any:
        # TensorStore has no call that empties a cache pool: open the next tile's level again
        # in a fresh context (the other levels are reopened when a later tile needs them)
        new = self.Handle(h.ds, h.loc, h.where, self._context(), {})
        self._open_levels(new, [next_tile.level])
        return new


class ZarrEngine(Engine):
    name = "zarr"
    title = "zarr+obstore"
    config = (f"zarr-python, `zarr.storage.ObjectStore(obstore.store.LocalStore(path) | "
              f"HTTPStore.from_url(url, client_options={{'allow_http': True}}))`, one `zarr.open_array` "
              f"per level, `a[:, y0:y1, x0:x1]`; `async.concurrency` {ZARR_CONCURRENCY} (its default), "
              f"`threading.max_workers` {THREADS}; no decoded-chunk cache (warm = the same reads again)")

    def open(self, ds: td.TileDataset, loc: str, where: str) -> Any:
        import zarr
        from obstore.store import HTTPStore, LocalStore

        obj: Any
        if where == "http":
            obj = HTTPStore.from_url(loc, client_options=HTTP_OPTIONS)
        else:
            obj = LocalStore(prefix=loc)
        store = zarr.storage.ObjectStore(obj, read_only=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            levels = [zarr.open_array(store, path=str(i), mode="r",
                                      zarr_format=ds.zarr_format)  # type: ignore[arg-type]
                      for i in range(td.N_LEVELS)]
        assert type(levels[0]._async_array.codec_pipeline).__name__ == "BatchedCodecPipeline"
        return levels

    def tile(self, h: Any, t: Tile) -> np.ndarray:
        return h[t.level][t.sel]


class OmeZarrEngine(Engine):
    name = "ome_zarr"
    title = "ome-zarr-py"
    config = (f"ome-zarr-py `Reader(parse_url(loc))()` → the image node's `.data[level]` (dask arrays "
              f"over zarr-python: `LocalStore` locally, fsspec `HTTPFileSystem` over HTTP), "
              f"`[:, y0:y1, x0:x1].compute()`; dask threaded scheduler, {THREADS} workers; zarr "
              f"`async.concurrency` {ZARR_CONCURRENCY}; no decoded-chunk cache")

    def unavailable(self, where: str) -> str | None:
        try:
            import dask  # noqa: F401
            import ome_zarr  # noqa: F401
        except ImportError as exc:
            return f"ome-zarr-py not installed ({exc})"
        if where == "http":
            try:
                import aiohttp  # noqa: F401
                import fsspec  # noqa: F401
            except ImportError as exc:
                return f"needs fsspec + aiohttp for HTTP ({exc})"
        return None

    def open(self, ds: td.TileDataset, loc: str, where: str) -> Any:
        import logging

        from ome_zarr.io import parse_url
        from ome_zarr.reader import Multiscales, Reader

        logging.getLogger("ome_zarr").setLevel(logging.ERROR)  # "version mismatch" for 0.4 data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zloc = parse_url(loc)
            if zloc is None:
                raise RuntimeError(f"ome-zarr-py found nothing at {loc}")
            nodes = list(Reader(zloc)())
        for node in nodes:
            if any(isinstance(s, Multiscales) for s in node.specs):
                return list(node.data)
        raise RuntimeError(f"ome-zarr-py found no multiscales node at {loc}")

    def tile(self, h: Any, t: Tile) -> np.ndarray:
        return h[t.level][t.sel].compute()


ENGINES: dict[str, Engine] = {e.name: e for e in (NgffEngine(), TensorStoreEngine(), ZarrEngine(), OmeZarrEngine())}
ENGINE_TITLES = {"limit": "limit", "replay": "replay", **{k: e.title for k, e in ENGINES.items()}}


class PeerSettings:
    """For the duration of a benchmark: zarr-python's default ``async.concurrency`` (the
    conftest sets 2 for the read suite) and dask's threaded scheduler with ``THREADS`` workers."""

    def __enter__(self) -> "PeerSettings":
        import zarr

        self._zarr = zarr.config.set({"async.concurrency": ZARR_CONCURRENCY})
        self._zarr.__enter__()
        self._dask = None
        try:
            import dask

            self._dask = dask.config.set(scheduler="threads", num_workers=THREADS)
            self._dask.__enter__()
        except ImportError:
            pass
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._dask is not None:
            self._dask.__exit__(*exc)
        self._zarr.__exit__(*exc)


# ---------------------------------------------------------------------------------------------
# Reference, limit, replay
# ---------------------------------------------------------------------------------------------


def reference(ds: td.TileDataset, small: bool, ts: tuple[Tile, ...]) -> list[np.ndarray]:
    """Every tile read by zarr-python from the local files (an implementation independent of
    ngffcore), checked against ngffcore's plain ``Array.read``. Also brings the files into the
    page cache, so every engine's local reads start from the same state."""
    import zarr

    ngffcore = bc.import_ngffcore()
    img = ngffcore.open(str(ds.path(small)), zarr_format=ds.zarr_format, cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        levels = [zarr.open_array(str(ds.path(small) / str(i)), mode="r") for i in range(td.N_LEVELS)]
        out = []
        for t in ts:
            ref = np.asarray(levels[t.level][t.sel])
            got = img.levels[t.level][t.sel]
            if not bc.same_values(got, ref):
                raise AssertionError(f"ngffcore's read of tile {t} differs from zarr-python's: "
                                     f"{bc.first_mismatch(got, ref)}")
            out.append(ref)
    return out


def decode_seconds(ds: td.TileDataset, small: bool, ts: tuple[Tile, ...]) -> list[float]:
    """Per tile: the fastest of ``LIMIT_REPEATS`` runs of ``prep.run(out)`` after ``prep =
    prefetch(level, sel)`` — ngffcore's native decode + scatter of the tile's chunk bytes already
    in memory (all channels, one call, ``THREADS`` threads). The fastest, not the median: a bound
    should not carry the noise of a shared machine."""
    ngffcore = bc.import_ngffcore()
    img = ngffcore.open(str(ds.path(small)), zarr_format=ds.zarr_format, cache=False)
    out = []
    for t in ts:
        prep = prefetch(img.levels[t.level], t.sel)
        buf = np.empty(prep.shape, np.uint8)
        prep.run(buf)
        times = []
        for _ in range(LIMIT_REPEATS):
            t0 = time.perf_counter()
            prep.run(buf)
            times.append(time.perf_counter() - t0)
        out.append(min(times))
    return out


def tile_keys(ds: td.TileDataset, small: bool, ts: tuple[Tile, ...]) -> list[list[str]]:
    """The chunk object keys (relative to the image) each tile needs, from ngffcore's plan."""
    ngffcore = bc.import_ngffcore()
    img = ngffcore.open(str(ds.path(small)), zarr_format=ds.zarr_format, cache=False)
    return [[r.key for r in img.levels[t.level].plan(t.sel)] for t in ts]


def replay_seconds(base_url: str, keys: list[list[str]]) -> list[float]:
    """Per tile: median time to GET the tile's chunk objects all at once with bare obstore and
    read the bodies (no planning, no decode): this server + an HTTP client, one round trip."""
    import obstore
    from obstore.store import HTTPStore

    store = HTTPStore.from_url(base_url, client_options=HTTP_OPTIONS)

    async def one(key: str) -> None:
        res = await obstore.get_async(store, key)
        await res.bytes_async()

    async def run_all() -> list[float]:
        await asyncio.gather(*(one(k) for k in keys[0]))  # connections
        out = []
        for ks in keys:
            times = []
            for _ in range(REPLAY_REPEATS):
                t0 = time.perf_counter()
                await asyncio.gather(*(one(k) for k in ks))
                times.append(time.perf_counter() - t0)
            out.append(statistics.median(times))
        return out

    return asyncio.run(run_all())


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def summary(times: list[float]) -> dict[str, float]:
    """p50 (median), p95 (numpy's linear interpolation: for 40 tiles, between the 2nd and 3rd
    slowest), max and total of per-tile seconds."""
    a = np.asarray(times, dtype=np.float64)
    return {"p50": float(np.median(a)), "p95": float(np.percentile(a, 95)), "max": float(a.max()),
            "total": float(a.sum()), "n": int(a.size)}


def check_tile(got: Any, ref: np.ndarray, what: str, i: int) -> str | None:
    """None if tile ``i`` equals its reference, else a message saying how it differs."""
    g = np.asarray(got)
    if not bc.same_values(g, ref):
        return f"{what}: tile {i} differs: {bc.first_mismatch(g, ref)}"
    return None


def root_dir(small: bool) -> Path:
    return td.data_dir(small)
