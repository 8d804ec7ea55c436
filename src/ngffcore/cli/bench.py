"""``ngffcore bench LOCATION``: how fast a storage backend serves viewer tiles.

This module holds the command (arguments, opening the image, the passes, the JSON schema
below); ``bench_sample`` chooses what to read, ``bench_measure`` reads and measures it,
``bench_report`` turns the measurements into JSON and a table. Only ngffcore's public API
is used, as a storage backend's user would.

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
import json
import math
import time
from typing import IO, Any

import ngffcore
from ngffcore import Array, ChunkCache, Image, Plate, SelectionError
from ngffcore.cli.bench_measure import CountProgress, Runner, request_counts
from ngffcore.cli.bench_report import pass_json, render_table
from ngffcore.cli.bench_sample import Sampler
from ngffcore.cli.common import (
    CliError,
    add_image_choice,
    add_progress_choice,
    open_location,
    open_node,
    select_image,
)

SCHEMA_VERSION = 1


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
    bench.add_argument("--cache-bytes", type=byte_size, default=None,
                       metavar="SIZE", help="decoded-chunk cache size (default: ChunkCache's, "
                                            "512M)")
    bench.add_argument("--no-warm", dest="warm", action="store_false",
                       help="skip the warm pass")
    bench.add_argument("--json", metavar="PATH",
                       help="also write the results as JSON to PATH ('-': stdout, instead "
                            "of the table)")
    add_image_choice(bench, "benchmark the label image NAME",
                     "the field image of a plate (default: the first well's first field) "
                     "or FIELD of a well")
    add_progress_choice(bench, "no progress and no table (JSON is still written if asked)")


# -- the command -----------------------------------------------------------------------------

def _open(args: argparse.Namespace) -> tuple[Image, float, dict[str, float] | None]:
    t0 = time.perf_counter()
    store = open_location(args)
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
    # the image's stats are its store's, so they count the requests of the open too; None:
    # a local store, which sends no requests
    stats = None if target.stats is None else target.stats.snapshot()
    return target, seconds, stats


def _check_choices(image: Image, args: argparse.Namespace) -> list[int]:
    """The chosen levels (each once, non-negative), after the image's own checks of
    ``--level`` and ``--channels``; their messages start with the name ("level 3 out of
    range: …"), shown as the option's ("--level 3 out of range: …")."""
    geometry = image.geometry
    try:
        geometry.yx("tile")
    except SelectionError as exc:
        raise CliError(f"{image.url}: {exc}") from None
    try:
        geometry.check_channels(args.channels)
        if args.levels is None:
            return list(range(len(image.levels)))
        return list(dict.fromkeys(geometry.check_level(level) for level in args.levels))
    except SelectionError as exc:
        raise CliError(f"--{exc}") from None


def run_bench(args: argparse.Namespace, stderr: IO[str]) -> dict[str, Any]:
    """Open, run the passes and return the JSON report."""
    if args.tiles == 0 and args.rois == 0:
        raise CliError("nothing to read: --tiles 0 and no --rois")
    image, open_seconds, open_stats = _open(args)
    levels = _check_choices(image, args)
    sampler = Sampler(image, levels, args.size, args.planes == "random")
    show = not args.quiet and (args.progress or stderr.isatty())

    def progress(total: int, what: str) -> CountProgress | None:
        return CountProgress(stderr, total, what) if show and total else None

    runner = Runner(image, args.channels, args.size, args.concurrency, progress)
    tiles = sampler.tiles(args.tiles, args.seed)
    # cold: a fresh, empty cache
    cache = ChunkCache() if args.cache_bytes is None else ChunkCache(args.cache_bytes)
    image.cache = cache
    cold = runner.run_pass(tiles, "tiles", "cold")
    warm = runner.run_pass(tiles, "tiles", "warm") if args.warm else None
    rois = None
    if args.rois:
        image.cache = None  # ROIs: the uncached read path
        try:
            rois = runner.run_pass(sampler.rois(args.rois, args.roi_size, args.seed),
                                   "rois", "off")
        finally:
            image.cache = cache
    open_requests = None
    if open_stats is not None:
        zero = dict.fromkeys(open_stats, 0.0)
        open_requests = request_counts(zero, open_stats)
    level_rows = [{"index": lvl.index, "path": lvl.dataset_path, "shape": list(lvl.shape),
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
                  "channels": (image.geometry.channel_count
                               if image.geometry.index("c") is not None else None),
                  "levels": level_rows},
        "settings": {"tiles": args.tiles, "size": args.size, "levels": levels,
                     "channels": args.channels, "planes": args.planes, "seed": args.seed,
                     "concurrency": args.concurrency, "cache_bytes": cache.max_bytes,
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
