"""``ngffcore bench``: reading the items of a pass and measuring them — latency per read,
and the requests, bytes and cache hits each read (or, with concurrency, the pass) caused,
from the store's ``RequestStats`` and the cache's ``CacheStats`` before and after.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import numpy as np

from ngffcore import Image
from ngffcore.cli.bench_sample import Item, chunks_touched
from ngffcore.cli.common import BAR_WIDTH, Progress

REQUEST_KINDS = ("get", "range_get", "suffix_get")
REQUEST_KEYS = ("total", *REQUEST_KINDS, "not_found", "errors")

Counts = dict[str, int]


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


def request_counts(before: dict[str, float], after: dict[str, float]) -> Counts:
    """Requests by kind between two ``RequestStats.snapshot()`` of one store."""
    diff = {k: int(after[k] - before[k]) for k in (*REQUEST_KINDS, "not_found", "errors")}
    return {"total": sum(diff[k] for k in REQUEST_KINDS), **diff}


class CountProgress(Progress):
    """``[#####.....]  45% 18/40 cold tiles``: the ``read`` bar, counting items."""

    def __init__(self, stream: IO[str], total: int, what: str) -> None:
        super().__init__(stream, total)
        self._what = what

    def update(self, done: int) -> None:
        fraction = done / self._total if self._total else 1.0
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self._stream.write(f"\r[{bar}] {int(fraction * 100):3d}% {done}/{self._total} "
                           f"{self._what}")
        self._stream.flush()


class Runner:
    """Reads items of one image and measures them."""

    def __init__(self, image: Image, channels: list[int] | None, size: int, concurrency: int,
                 progress: Callable[[int, str], CountProgress | None]) -> None:
        self.image = image
        self.size = size
        self.channels = channels
        self.all_channels = image.geometry.check_channels(channels)
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
                            None if stats0 is None or stats1 is None else request_counts(stats0,
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
                m.chunks = chunks_touched(self.image, m.item, self.all_channels)
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
                m.requests = request_counts(s0, s1)
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


__all__ = ["REQUEST_KINDS", "REQUEST_KEYS", "Counts", "Measured", "PassResult", "CountProgress",
           "Runner", "request_counts"]
