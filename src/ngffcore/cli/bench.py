"""``ngffcore bench LOCATION``: how fast a storage backend serves viewer tiles.

Opens the image once, then reads ``--tiles`` random tiles twice — a **cold** pass through a
fresh, empty decoded-chunk cache and a **warm** pass of the same tiles in the same order,
served from that cache — and optionally ``--rois`` random regions read without the cache
(the analysis path). It reports per pass the latency per item (p50/p95/p99/mean/min/max),
requests per item by kind, bytes fetched, chunks decoded, cache hits, items/s and MB/s, as a
table and as JSON.

Tile choice (reproducible: ``--seed``, default 0): the universe is every tile of a grid of
``--size`` × ``--size`` pixel tiles (edge tiles clipped) over the y/x plane of every chosen
level (``--level``, repeatable; default all), at the image's default t/z plane (omero
``rdefs.defaultT``/``defaultZ``, else 0), or over every t/z plane too with
``--planes random``. ``--tiles`` tiles are drawn uniformly **without replacement** from that
universe (so the cold pass never reads a tile twice, and fine levels, which have more tiles,
get more of them); when the universe is smaller, every tile is read once. ROIs:
a level drawn uniformly from the chosen levels, then a ``--roi-size`` × ``--roi-size`` y/x
box at a uniformly random position where it fits (clipped to small levels), same plane rule
and channels as tiles, read with ``Image.tile_box`` with the image's cache switched off (one
``Array.read`` per contiguous channel run, the uncached path).

Measurement: ``time.perf_counter`` around each read. ``--concurrency 1`` (default) reads one
item at a time: latency is the latency of a lone read, and each item's requests, bytes and
cache hits/misses are the difference of the store's ``RequestStats`` and the cache's stats
before and after it. ``--concurrency K`` keeps K reads in flight (asyncio, ``tile_async``):
latency is from an item's start to its end, throughput is what matters, and requests, bytes
and cache counts are known per pass only (the store counts them, not the read), so the
items' own fields are null. Remote stores count requests as sent (``get``: whole objects,
``range_get``, ``suffix_get``: shard indexes; ``not_found``/``errors`` are answers among
those). Local stores send no requests and count nothing: ``requests`` and ``fetched_bytes``
are null, and ``chunks`` — chunks decoded, which for a local store are file reads (ranged
reads within shard files) — is the number of cache misses. ROIs bypass the cache: their
``chunks`` are the chunks their box touches, computed from the level's chunk grid. MB are
10⁶ bytes. Notes: the operating system's page cache is not cleared (a local "cold" pass
may be served from memory); a sharded remote array keeps the shard indexes it has read for
as long as it is open, so the ROI pass (run after the tile passes) finds the indexes of the
shards the tiles touched already known.

JSON (``--json PATH``, ``--json -`` for stdout), schema ``version`` 1::

    {"version": 1, "tool": "ngffcore bench", "ngffcore": "0.1.0",
     "location": <as given>, "url": <image url>, "store": "local" | "remote",
     "image": {"axes": "czyx", "dtype": "uint16", "channels": 2,
               "levels": [{"index", "path", "shape", "chunks", "shards", "tiles"}]},
     "settings": {"tiles", "size", "levels", "channels", "planes", "seed", "concurrency",
                  "cache_bytes", "warm", "rois", "roi_size"},
     "open": {"seconds", "requests": REQUESTS | null, "fetched_bytes": int | null},
     "passes": {"cold": PASS, "warm": PASS | null, "rois": PASS | null}}

    REQUESTS = {"total", "get", "range_get", "suffix_get", "not_found", "errors"}  (ints)
    PASS = {"kind": "tiles" | "rois", "cache_state": "cold" | "warm" | "off", "count",
            "seconds",
            "latency_ms": {"p50", "p95", "p99", "mean", "min", "max"} | null (no items),
            "items_per_second", "pixel_bytes", "pixel_mb_per_second",
            "requests": REQUESTS | null, "requests_per_item": {same keys, floats} | null,
            "fetched_bytes": int | null, "fetched_bytes_per_item": float | null,
            "fetched_mb_per_second": float | null,
            "chunks": int, "chunks_per_item": float | null,
            "cache": {"hits", "misses", "evictions", "hit_rate"} | null (ROIs),
            "by_level": {"<level>": {"count", "p50_ms", "mean_ms", "requests_per_item",
                                     "chunks_per_item"}},
            "items": [ITEM]}
    ITEM = {"level", "t", "z", "row", "col", "y": [start, stop], "x": [start, stop], "ms",
            "pixel_bytes", "requests": REQUESTS | null, "fetched_bytes": int | null,
            "cache_hits": int | null, "cache_misses": int | null, "chunks": int | null}

``t``/``z`` are null when the image has no such axis; ``row``/``col`` are null for ROIs.
Percentiles are numpy's (linear interpolation). ``seconds`` of a pass is its wall time;
``items_per_second`` and the MB/s are over it. ``pixel_bytes`` are the decoded pixels
returned; ``fetched_bytes`` the response bodies received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

import ngffcore
from ngffcore.zarr.array import Array
from ngffcore.zarr.cache import DEFAULT_CACHE_BYTES, ChunkCache
from ngffcore.cli.main import (
    _BAR_WIDTH,
    CliError,
    Progress,
    _open_store,
    add_image_choice,
    add_progress_choice,
    human_bytes,
    open_node,
    select_image,
)
from ngffcore.ome.collection import Plate
from ngffcore.ome.image import Image
from ngffcore.store.objectstore import ObjectStore

SCHEMA_VERSION = 1
REQUEST_KINDS = ("get", "range_get", "suffix_get")
REQUEST_KEYS = ("total", *REQUEST_KINDS, "not_found", "errors")

Box = tuple[int, int]
Counts = dict[str, int]


# -- arguments -------------------------------------------------------------------------------

def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def channel_list(text: str) -> list[int]:
    """``0,2,3`` or ``0-2`` or a mix (``0-2,5``)."""
    out: list[int] = []
    try:
        for part in text.split(","):
            first, dash, last = part.strip().partition("-")
            if dash:
                out.extend(range(int(first), int(last) + 1))
            else:
                out.append(int(first))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--channels must look like 0,2 or 0-3, not "
                                         f"{text!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("--channels names no channel")
    return out


_SIZE_UNITS = {"": 1, "k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30,
               "gib": 2**30}


def byte_size(text: str) -> int:
    """``536870912``, ``512M``, ``512MiB``, ``2G`` (binary units)."""
    stripped = text.strip()
    number = stripped.rstrip("kKmMgGiIbB")
    unit = stripped[len(number):].lower()
    if unit == "b":
        unit = ""
    try:
        value = float(number) * _SIZE_UNITS[unit]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"--cache-bytes: {text!r} is not a size like 512M"
                                         ) from None
    if value < 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"--cache-bytes: {text!r} must be >= 0")
    return int(value)


def add_bench_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``bench`` on the ``ngffcore`` command's subparsers."""
    bench = sub.add_parser(
        "bench", parents=[common], help="benchmark tile and region reads from LOCATION",
        description="Read random tiles (and optionally regions) of an image cold and warm "
                    "and report latency percentiles, requests by kind, bytes and throughput.")
    bench.add_argument("--tiles", type=_count, default=40,
                       help="random tiles per pass (default 40; drawn without replacement)")
    bench.add_argument("--size", type=_positive, default=512,
                       help="tile size in pixels (default 512)")
    bench.add_argument("--level", dest="levels", type=int, action="append", default=None,
                       metavar="L", help="level to draw tiles from (repeatable; default "
                                         "every level, uniformly over all their tiles)")
    bench.add_argument("--channels", type=channel_list, default=None, metavar="C[,C…]",
                       help="channel indices, e.g. 0,2 or 0-3 (default all)")
    bench.add_argument("--planes", choices=("default", "random"), default="default",
                       help="t/z planes: the image's default plane, or random planes")
    bench.add_argument("--seed", type=int, default=0,
                       help="random seed (default 0: runs are reproducible)")
    bench.add_argument("--rois", type=_count, default=0,
                       help="random regions read without the cache after the tiles")
    bench.add_argument("--roi-size", type=_positive, default=1024,
                       help="region size in pixels along y and x (default 1024)")
    bench.add_argument("--concurrency", "-k", type=_positive, default=1,
                       help="reads in flight at once (default 1: latency of lone reads; "
                            "more measures throughput)")
    bench.add_argument("--cache-bytes", type=byte_size, default=DEFAULT_CACHE_BYTES,
                       metavar="SIZE", help="decoded-chunk cache size (default 512M)")
    bench.add_argument("--no-warm", dest="warm", action="store_false",
                       help="skip the warm pass")
    bench.add_argument("--json", metavar="PATH",
                       help="also write the results as JSON to PATH ('-': stdout, instead "
                            "of the table)")
    add_image_choice(bench, "benchmark the label image NAME",
                     "the field image of a plate (default: the first well's first field) "
                     "or FIELD of a well")
    add_progress_choice(bench, "no progress and no table (JSON is still written if asked)")


# -- the image and what to read --------------------------------------------------------------

@dataclass(frozen=True)
class Geometry:
    """Where the tiled axes are: indices of y, x and (if present) t, z, c."""

    y: int
    x: int
    t: int | None
    z: int | None
    c: int | None

    @classmethod
    def of(cls, image: Image) -> "Geometry":
        names = [a.name.lower() for a in image.axes]

        def find(name: str) -> int | None:
            return names.index(name) if name in names else None

        y, x = find("y"), find("x")
        if y is None or x is None:
            raise CliError(f"{image.url}: the image has no y and x axes to tile "
                           f"(axes {', '.join(a.name for a in image.axes)})")
        return cls(y, x, find("t"), find("z"), find("c"))


@dataclass(frozen=True)
class Item:
    """One read: a tile (``row``/``col`` of the grid) or an ROI (row/col None)."""

    level: int
    t: int | None
    z: int | None
    y: Box
    x: Box
    row: int | None = None
    col: int | None = None


def default_plane(image: Image, key: str) -> int:
    """omero ``rdefs.defaultT``/``defaultZ`` (the plane viewers open on), else 0."""
    attrs = image.metadata
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else attrs
    omero = ome.get("omero") if isinstance(ome, dict) else None
    rdefs = omero.get("rdefs") if isinstance(omero, dict) else None
    value = rdefs.get(key) if isinstance(rdefs, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class Sampler:
    """The tile universe of the chosen levels and the random draws from it."""

    def __init__(self, image: Image, geometry: Geometry, levels: Sequence[int], size: int,
                 random_planes: bool) -> None:
        self.image = image
        self.g = geometry
        self.levels = list(levels)
        self.size = size
        self.random_planes = random_planes
        self.default_t = self._clamped(geometry.t, default_plane(image, "defaultT"))
        self.default_z = self._clamped(geometry.z, default_plane(image, "defaultZ"))

    def _clamped(self, axis: int | None, value: int) -> int | None:
        if axis is None:
            return None
        n = self.image.levels[0].shape[axis]
        return value if 0 <= value < n else 0

    def _planes(self, level: int) -> tuple[int, int]:
        """Number of t and z planes a level's tiles range over."""
        if not self.random_planes:
            return 1, 1
        shape = self.image.levels[level].shape
        return (shape[self.g.t] if self.g.t is not None else 1,
                shape[self.g.z] if self.g.z is not None else 1)

    def grid(self, level: int) -> tuple[int, int]:
        """Tile rows and columns of a level."""
        shape = self.image.levels[level].shape
        return -(-shape[self.g.y] // self.size), -(-shape[self.g.x] // self.size)

    def tiles_in(self, level: int) -> int:
        rows, cols = self.grid(level)
        nt, nz = self._planes(level)
        return rows * cols * nt * nz

    def _plane(self, axis: int | None, index: int, default: int | None) -> int | None:
        if axis is None:
            return None
        return index if self.random_planes else default

    def tiles(self, n: int, seed: int) -> list[Item]:
        """``n`` distinct tiles drawn uniformly from the universe (all of it when smaller)."""
        counts = [self.tiles_in(lv) for lv in self.levels]
        total = sum(counts)
        picks = random.Random(seed).sample(range(total), min(n, total))
        out = []
        for index in picks:
            k = 0
            while index >= counts[k]:
                index -= counts[k]
                k += 1
            level = self.levels[k]
            rows, cols = self.grid(level)
            _, nz = self._planes(level)
            plane, cell = divmod(index, rows * cols)
            t, z = divmod(plane, nz)
            row, col = divmod(cell, cols)
            shape = self.image.levels[level].shape
            y = (row * self.size, min((row + 1) * self.size, shape[self.g.y]))
            x = (col * self.size, min((col + 1) * self.size, shape[self.g.x]))
            out.append(Item(level, self._plane(self.g.t, t, self.default_t),
                            self._plane(self.g.z, z, self.default_z), y, x, row, col))
        return out

    def rois(self, n: int, size: int, seed: int) -> list[Item]:
        rng = random.Random(f"rois:{seed}")  # independent of the tile draws
        out = []
        for _ in range(n):
            level = rng.choice(self.levels)
            shape = self.image.levels[level].shape
            nt, nz = self._planes(level)
            t, z = rng.randrange(nt), rng.randrange(nz)
            boxes = []
            for axis in (self.g.y, self.g.x):
                start = rng.randrange(max(1, shape[axis] - size + 1))
                boxes.append((start, min(start + size, shape[axis])))
            out.append(Item(level, self._plane(self.g.t, t, self.default_t),
                            self._plane(self.g.z, z, self.default_z), boxes[0], boxes[1]))
        return out


def channel_runs(channels: Sequence[int]) -> list[Box]:
    """Contiguous runs ``[first, stop)`` of a channel list (one read each)."""
    runs: list[Box] = []
    for c in channels:
        if runs and runs[-1][1] == c:
            runs[-1] = (runs[-1][0], c + 1)
        else:
            runs.append((c, c + 1))
    return runs


def _span(box: Box, chunk: int) -> int:
    return (box[1] - 1) // chunk - box[0] // chunk + 1


def chunks_touched(level: Array, g: Geometry, item: Item, channels: Sequence[int]) -> int:
    """Chunks (inner chunks when sharded) an uncached read of ``item`` decodes: the y and x
    boxes, one t and z plane, every channel run (runs are separate reads)."""
    chunks = level.chunks
    yx = _span(item.y, chunks[g.y]) * _span(item.x, chunks[g.x])
    if g.c is None:
        return yx
    return yx * sum(_span(run, chunks[g.c]) for run in channel_runs(channels))


# -- measurement -----------------------------------------------------------------------------

@dataclass
class Measured:
    item: Item
    seconds: float
    pixel_bytes: int
    requests: Counts | None = None
    fetched_bytes: int | None = None
    hits: int | None = None
    misses: int | None = None
    chunks: int | None = None


@dataclass
class PassResult:
    kind: str  # "tiles" or "rois"
    cache_state: str  # "cold", "warm" or "off"
    seconds: float
    items: list[Measured]
    requests: Counts | None
    fetched_bytes: int | None
    hits: int | None = None
    misses: int | None = None
    evictions: int | None = None
    chunks: int = 0


def _requests(before: dict[str, float], after: dict[str, float]) -> Counts:
    diff = {k: int(after[k] - before[k]) for k in (*REQUEST_KINDS, "not_found", "errors")}
    return {"total": sum(diff[k] for k in REQUEST_KINDS), **diff}


class CountProgress(Progress):
    """``[#####.....]  45% 18/40 cold tiles``: the ``read`` bar, counting items."""

    def __init__(self, stream: IO[str], total: int, what: str) -> None:
        super().__init__(stream, total)
        self._what = what

    def update(self, done: int) -> None:
        fraction = done / self._total if self._total else 1.0
        filled = int(fraction * _BAR_WIDTH)
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        self._stream.write(f"\r[{bar}] {int(fraction * 100):3d}% {done}/{self._total} "
                           f"{self._what}")
        self._stream.flush()


class Runner:
    """Reads items of one image and measures them."""

    def __init__(self, image: Image, geometry: Geometry, channels: list[int] | None,
                 size: int, concurrency: int,
                 progress: Callable[[int, str], CountProgress | None]) -> None:
        self.image = image
        self.size = size
        self.g = geometry
        self.channels = channels
        self.all_channels = (channels if channels is not None else
                             list(range(image.shape[geometry.c])) if geometry.c is not None
                             else [0])
        self.concurrency = concurrency
        self.progress = progress
        self.stats = image.stats

    def _snapshot(self) -> dict[str, float] | None:
        return None if self.stats is None else self.stats.snapshot()

    def _read(self, item: Item) -> np.ndarray:
        """A tile by its grid position (``Image.tile``), an ROI by its box (``tile_box``)."""
        if item.row is not None and item.col is not None:
            return self.image.tile(item.level, item.row, item.col, size=self.size, t=item.t,
                                   z=item.z, channels=self.channels)
        return self.image.tile_box(item.level, item.y, item.x, t=item.t, z=item.z,
                                   channels=self.channels)

    async def _read_async(self, item: Item) -> np.ndarray:
        if item.row is not None and item.col is not None:
            return await self.image.tile_async(item.level, item.row, item.col,
                                               size=self.size, t=item.t, z=item.z,
                                               channels=self.channels)
        return await self.image.tile_box_async(item.level, item.y, item.x, t=item.t,
                                               z=item.z, channels=self.channels)

    def run_pass(self, items: list[Item], kind: str, cache_state: str) -> PassResult:
        tile = kind == "tiles"
        cache = self.image.cache
        bar = self.progress(len(items), f"{cache_state} {kind}" if tile else kind)
        stats0, cache0 = self._snapshot(), cache.stats() if cache is not None else None
        t0 = time.perf_counter()
        try:
            if bar:
                bar.update(0)
            if self.concurrency == 1:
                measured = self._sequential(items, bar)
            else:
                measured = asyncio.run(self._concurrent(items, bar))
        finally:
            if bar:
                bar.finish()
        seconds = time.perf_counter() - t0
        stats1 = self._snapshot()
        result = PassResult(kind, cache_state, seconds, measured,
                            None if stats0 is None or stats1 is None else _requests(stats0,
                                                                                   stats1),
                            None if stats0 is None or stats1 is None
                            else int(stats1["bytes"] - stats0["bytes"]))
        if cache is not None and cache0 is not None:
            cache1 = cache.stats()
            result.hits = cache1.hits - cache0.hits
            result.misses = cache1.misses - cache0.misses
            result.evictions = cache1.evictions - cache0.evictions
            result.chunks = result.misses
        else:
            for m in measured:
                m.chunks = chunks_touched(self.image.levels[m.item.level], self.g, m.item,
                                          self.all_channels)
            result.chunks = sum(m.chunks or 0 for m in measured)
        return result

    def _sequential(self, items: list[Item], bar: CountProgress | None
                    ) -> list[Measured]:
        out = []
        cache = self.image.cache
        for done, item in enumerate(items, 1):
            s0 = self._snapshot()
            c0 = cache.stats() if cache is not None else None
            t0 = time.perf_counter()
            data = self._read(item)
            seconds = time.perf_counter() - t0
            s1 = self._snapshot()
            m = Measured(item, seconds, data.nbytes)
            if s0 is not None and s1 is not None:
                m.requests = _requests(s0, s1)
                m.fetched_bytes = int(s1["bytes"] - s0["bytes"])
            if cache is not None and c0 is not None:
                c1 = cache.stats()
                m.hits, m.misses = c1.hits - c0.hits, c1.misses - c0.misses
                m.chunks = m.misses
            out.append(m)
            if bar:
                bar.update(done)
        return out

    async def _concurrent(self, items: list[Item], bar: CountProgress | None
                          ) -> list[Measured]:
        results: list[Measured | None] = [None] * len(items)
        queue = iter(enumerate(items))
        done = 0

        async def worker() -> None:
            nonlocal done
            for i, item in queue:  # one shared iterator: each item is taken once
                t0 = time.perf_counter()
                data = await self._read_async(item)
                results[i] = Measured(item, time.perf_counter() - t0, data.nbytes)
                done += 1
                if bar:
                    bar.update(done)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(items)))))
        return [m for m in results if m is not None]


# -- report ----------------------------------------------------------------------------------

def _latency(seconds: Sequence[float]) -> dict[str, float] | None:
    if not seconds:
        return None
    ms = np.asarray(seconds, dtype=float) * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(ms.mean()),
            "min": float(ms.min()), "max": float(ms.max())}


def _per(value: float | None, n: int) -> float | None:
    return None if value is None or n == 0 else value / n


def _rate(value: float | None, seconds: float) -> float | None:
    return None if value is None or seconds <= 0 else value / seconds


def item_json(m: Measured) -> dict[str, Any]:
    it = m.item
    return {"level": it.level, "t": it.t, "z": it.z, "row": it.row, "col": it.col,
            "y": list(it.y), "x": list(it.x), "ms": m.seconds * 1000.0,
            "pixel_bytes": m.pixel_bytes, "requests": m.requests,
            "fetched_bytes": m.fetched_bytes, "cache_hits": m.hits, "cache_misses": m.misses,
            "chunks": m.chunks}


def _by_level(p: PassResult) -> dict[str, Any]:
    levels = sorted({m.item.level for m in p.items})
    out = {}
    for level in levels:
        ms = [m for m in p.items if m.item.level == level]
        lat = _latency([m.seconds for m in ms])
        assert lat is not None
        reqs = [m.requests["total"] for m in ms if m.requests is not None]
        chunks = [m.chunks for m in ms if m.chunks is not None]
        out[str(level)] = {
            "count": len(ms), "p50_ms": lat["p50"], "mean_ms": lat["mean"],
            "requests_per_item": sum(reqs) / len(ms) if len(reqs) == len(ms) else None,
            "chunks_per_item": sum(chunks) / len(ms) if len(chunks) == len(ms) else None}
    return out


def pass_json(p: PassResult) -> dict[str, Any]:
    n = len(p.items)
    pixel_bytes = sum(m.pixel_bytes for m in p.items)
    per_item = (None if p.requests is None or n == 0
                else {k: v / n for k, v in p.requests.items()})
    cache = None
    if p.hits is not None and p.misses is not None:
        looked = p.hits + p.misses
        cache = {"hits": p.hits, "misses": p.misses, "evictions": p.evictions,
                 "hit_rate": p.hits / looked if looked else None}
    return {
        "kind": p.kind, "cache_state": p.cache_state, "count": n, "seconds": p.seconds,
        "latency_ms": _latency([m.seconds for m in p.items]),
        "items_per_second": _rate(n, p.seconds),
        "pixel_bytes": pixel_bytes,
        "pixel_mb_per_second": _rate(pixel_bytes / 1e6, p.seconds),
        "requests": p.requests, "requests_per_item": per_item,
        "fetched_bytes": p.fetched_bytes,
        "fetched_bytes_per_item": _per(p.fetched_bytes, n),
        "fetched_mb_per_second": (None if p.fetched_bytes is None
                                  else _rate(p.fetched_bytes / 1e6, p.seconds)),
        "chunks": p.chunks, "chunks_per_item": _per(p.chunks, n),
        "cache": cache,
        "by_level": _by_level(p),
        "items": [item_json(m) for m in p.items],
    }


def _num(value: float | None) -> str:
    """Three or more significant digits, never scientific notation; "-" for None."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def render_table(report: dict[str, Any]) -> str:
    remote = report["store"] == "remote"
    settings, image = report["settings"], report["image"]
    levels = settings["levels"]
    universe = sum(image["levels"][lv]["tiles"] for lv in levels)
    channels = settings["channels"]
    lines = [
        f"ngffcore bench {report['url']} ({report['store']} store)",
        f"  {image['axes']} {image['dtype']}, levels {', '.join(map(str, levels))} of "
        f"{len(image['levels'])}, {settings['size']}-px tiles "
        f"({universe} at these levels), channels "
        f"{'all' if channels is None else ','.join(map(str, channels))}, "
        f"{'random planes' if settings['planes'] == 'random' else 'default plane'}, "
        f"seed {settings['seed']}, "
        f"concurrency {settings['concurrency']}, cache {human_bytes(settings['cache_bytes'])}",
    ]
    op = report["open"]
    text = f"  open {_num(op['seconds'] * 1000)} ms"
    if op["requests"] is not None:
        r = op["requests"]
        kinds = ", ".join(f"{r[k]} {k}" for k in REQUEST_KINDS if r[k])
        text += (f", {r['total']} request{'' if r['total'] == 1 else 's'} ({kinds or 'none'}"
                 + (f"; {r['not_found']} not found" if r["not_found"] else "")
                 + f"), {human_bytes(op['fetched_bytes'])}")
    lines += [text, ""]
    head = (f"{'pass':<10} {'items':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
            f"{'mean ms':>8} {'max ms':>8} {'req/item':>9} {'KiB/item':>9} "
            f"{'chunks/item':>11} {'hit %':>6} {'items/s':>8} {'px MB/s':>8} {'net MB/s':>9}")
    lines.append(head)
    notes = []
    for name, p in report["passes"].items():
        if p is None:
            continue
        lat = p["latency_ms"]
        cells = [_num(lat[k] if lat else None) for k in ("p50", "p95", "p99", "mean", "max")]
        per = p["requests_per_item"]
        fetched = p["fetched_bytes_per_item"]
        hit = p["cache"]["hit_rate"] if p["cache"] else None
        lines.append(
            f"{name:<10} {p['count']:>6} {cells[0]:>8} {cells[1]:>8} {cells[2]:>8} "
            f"{cells[3]:>8} {cells[4]:>8} {_num(per['total'] if per else None):>9} "
            f"{_num(None if fetched is None else fetched / 1024):>9} "
            f"{_num(p['chunks_per_item']):>11} "
            f"{_num(None if hit is None else hit * 100):>6} "
            f"{_num(p['items_per_second']):>8} "
            f"{_num(p['pixel_mb_per_second']):>8} "
            f"{_num(p['fetched_mb_per_second']):>9}")
        if per is not None and p["count"]:
            kinds = ", ".join(f"{k} {per[k]:.2f}" for k in (*REQUEST_KINDS, "not_found")
                              if per[k])
            notes.append(f"  {name}: requests per item by kind: {kinds or 'none'}")
        if name == "warm" and p["cache"] and p["cache"]["misses"]:
            notes.append(f"  warm: {p['cache']['misses']} chunk lookups missed the cache "
                         f"({p['cache']['evictions']} evictions): the tiles need more than "
                         f"--cache-bytes {human_bytes(settings['cache_bytes'])}, or single "
                         f"reads larger than a quarter of it bypass it")
    if settings["tiles"] > report["passes"]["cold"]["count"]:
        notes.append(f"  only {report['passes']['cold']['count']} distinct tiles at these "
                     f"levels (asked for {settings['tiles']}): each is read once per pass")
    if settings["concurrency"] > 1:
        notes.append("  concurrency > 1: requests, bytes and cache counts are per pass "
                     "(shown per item as the mean); latency is per read while others are "
                     "in flight")
    if not remote:
        notes.append("  local store: no requests are counted; chunks/item are chunks decoded "
                     "(cache misses; for ROIs the chunks they touch), each a file read")
    if notes:
        lines += [""] + notes
    return "\n".join(lines)


# -- the command -----------------------------------------------------------------------------

def _open(args: argparse.Namespace) -> tuple[Image, float, dict[str, float] | None]:
    t0 = time.perf_counter()
    store = _open_store(args)
    node = open_node(store, args, args.multiscale)
    if isinstance(node, Plate) and args.field is None:
        if not node.wells:
            raise CliError(f"{node.url} is a plate with no wells")
        row, col = node.wells[0].path.split("/")
        args.field = (row, col, "0")
    target = select_image(node, args)
    seconds = time.perf_counter() - t0
    if isinstance(target, Array):
        raise CliError(f"{store.url} is a plain Zarr array, not an OME-Zarr image: bench reads "
                       f"tiles of images (also of a plate's fields and a collection's series)")
    stats = store.stats.snapshot() if isinstance(store, ObjectStore) else None
    return target, seconds, stats


def _check_levels(image: Image, levels: list[int] | None) -> list[int]:
    n = len(image.levels)
    if levels is None:
        return list(range(n))
    out = []
    for level in levels:
        if not -n <= level < n:
            raise CliError(f"--level {level} out of range: the image has {n} levels")
        if level % n not in out:
            out.append(level % n)
    return out


def _check_channels(image: Image, g: Geometry, channels: list[int] | None) -> None:
    if channels is None:
        return
    n = image.shape[g.c] if g.c is not None else 1
    if g.c is None and channels != [0]:
        raise CliError("the image has no channel axis: --channels can only be 0")
    bad = [c for c in channels if not 0 <= c < n]
    if bad:
        raise CliError(f"--channels {','.join(map(str, bad))} out of range: the image has "
                       f"{n} channel{'' if n == 1 else 's'}")


def run_bench(args: argparse.Namespace, stderr: IO[str]) -> dict[str, Any]:
    """Open, run the passes and return the JSON report."""
    if args.tiles == 0 and args.rois == 0:
        raise CliError("nothing to read: --tiles 0 and no --rois")
    image, open_seconds, open_stats = _open(args)
    g = Geometry.of(image)
    levels = _check_levels(image, args.levels)
    _check_channels(image, g, args.channels)
    sampler = Sampler(image, g, levels, args.size, args.planes == "random")
    show = not args.quiet and (args.progress or stderr.isatty())

    def progress(total: int, what: str) -> CountProgress | None:
        return CountProgress(stderr, total, what) if show and total else None

    runner = Runner(image, g, args.channels, args.size, args.concurrency, progress)
    tiles = sampler.tiles(args.tiles, args.seed)
    image.cache = ChunkCache(args.cache_bytes)  # cold: a fresh, empty cache
    cold = runner.run_pass(tiles, "tiles", "cold")
    warm = runner.run_pass(tiles, "tiles", "warm") if args.warm else None
    rois = None
    if args.rois:
        cache, image.cache = image.cache, None  # ROIs: the uncached read path
        try:
            rois = runner.run_pass(sampler.rois(args.rois, args.roi_size, args.seed),
                                   "rois", "off")
        finally:
            image.cache = cache
    open_requests = None
    if open_stats is not None:
        zero = dict.fromkeys(open_stats, 0.0)
        open_requests = _requests(zero, open_stats)
    level_rows = [{"index": lvl.index, "path": lvl.path, "shape": list(lvl.shape),
                   "chunks": list(lvl.chunks),
                   "shards": None if lvl.shards is None else list(lvl.shards),
                   "tiles": sampler.tiles_in(i)}
                  for i, lvl in enumerate(image.levels)]
    return {
        "version": SCHEMA_VERSION,
        "tool": "ngffcore bench",
        "ngffcore": ngffcore.__version__,
        "location": args.location,
        "url": image.url,
        "store": "local" if open_stats is None else "remote",
        "image": {"axes": "".join(a.name for a in image.axes), "dtype": str(image.dtype),
                  "channels": image.shape[g.c] if g.c is not None else None,
                  "levels": level_rows},
        "settings": {"tiles": args.tiles, "size": args.size, "levels": levels,
                     "channels": args.channels, "planes": args.planes, "seed": args.seed,
                     "concurrency": args.concurrency, "cache_bytes": args.cache_bytes,
                     "warm": args.warm, "rois": args.rois, "roi_size": args.roi_size},
        "open": {"seconds": open_seconds, "requests": open_requests,
                 "fetched_bytes": None if open_stats is None else int(open_stats["bytes"])},
        "passes": {"cold": pass_json(cold), "warm": None if warm is None else pass_json(warm),
                   "rois": None if rois is None else pass_json(rois)},
    }


def cmd_bench(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    report = run_bench(args, stderr)
    text = json.dumps(report, indent=2)
    if args.json == "-":
        print(text, file=stdout)
    else:
        if args.json is not None:
            try:
                with open(args.json, "w", encoding="utf-8") as f:
                    f.write(text + "\n")
            except OSError as exc:
                raise CliError(f"cannot write {args.json}: {exc}") from None
        if not args.quiet:
            print(render_table(report), file=stdout)
    return 0


__all__ = ["add_bench_parser", "cmd_bench", "run_bench", "render_table", "SCHEMA_VERSION"]
