"""Reads from object stores: every request in flight at once, decoded as bytes arrive.

After metadata is cached, a read sends exactly one GET per needed chunk object; for a
sharded array one suffix (or prefix) GET per shard index (cached on the array), then ranged
GETs for the needed inner chunks, nearby ranges merged, the whole shard in one GET when most
of it is needed. Never a HEAD or LIST. While responses arrive, the chunks received so far are
decoded and scattered in one native call per batch (GIL released), so network and decode
overlap; results do not depend on the order responses arrive in.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ngffcore import _core
from ngffcore.errors import ShardIndexError
from ngffcore.zarr.plan import ChunkPlan
from ngffcore.zarr.fetch import python_stages
from ngffcore.zarr.shard import shard_index
from ngffcore.store.ioloop import BODY_BUDGET, gather_or_cancel, settle
from ngffcore.store.objectstore import ObjectStore


@dataclass(frozen=True)
class RemoteOptions:
    """Request policy of remote reads (all sizes in bytes)."""

    coalesce_gap: int = 256 * 1024  # merge inner-chunk ranges separated by at most this
    whole_shard_fraction: float = 0.5  # fetch the whole shard when this much of it is needed
    # received but not yet decoded; None: the store's (open_store's max_bytes_in_flight)
    max_bytes_in_flight: int | None = None


ShardIndex = tuple[np.ndarray, np.ndarray, int]  # offsets, nbytes, shard size

#: bound on what one encoded chunk may take per decoded byte: filters can widen the stored
#: type (``astype`` u1 -> c16 is 16x) and compressors add a little to incompressible data
ENCODED_FACTOR = 32
#: plus this much per chunk (codec headers, checksums) and per stored object
CHUNK_SLACK = 1024
OBJECT_SLACK = 2**20


def max_object_bytes(plan: ChunkPlan, itemsize: int) -> int:
    """A generous upper bound on the size of one stored object (chunk or shard) of ``plan``:
    a response declaring more is refused before its body is read. Generous on purpose:
    it stops a 1 GiB body for a 64-byte chunk, not an unusually poor compression."""
    per_chunk = int(np.prod(plan.codec.chunk_shape, dtype=np.int64)) * max(itemsize, 1)
    chunks, index = 1, 0
    for level in plan.levels:
        index += chunks * level.index_nbytes
        chunks *= level.n_inner
    return chunks * (per_chunk * ENCODED_FACTOR + CHUNK_SLACK) + index + OBJECT_SLACK


#: decodes one batch itself: (chunk indices into the plan, their sources, their names)
BatchDecoder = Callable[[np.ndarray, list[Any], list[str]], None]


class _Budget:
    """Bytes of one read received (or with room reserved, see ``ioloop.BODY_BUDGET``) and
    not yet decoded: at most ``limit``, except that a body is always let in when nothing is
    held, so an object larger than the limit still goes through (alone). Bodies are let in
    first come, first served: a large one waiting for room is not passed by small ones."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, n: int) -> bool:
        return self.held == 0 or self.held + n <= self.limit

    async def reserve(self, n: int) -> None:
        """Wait until ``n`` more bytes fit, and count them as held."""
        if not self._waiting and self._fits(n):
            self.held += n
            return
        entry = (n, asyncio.get_running_loop().create_future())
        self._waiting.append(entry)
        try:
            await entry[1]
        except BaseException:
            if entry[1].done() and not entry[1].cancelled():
                self.release(n)  # let in just as the waiter was cancelled
            else:
                entry[1].cancel()
                self._let_in()
            raise

    def release(self, n: int) -> None:
        """``n`` held bytes are decoded (or dropped): let waiting bodies in. Synchronous, so
        a cancelled read cannot skip it."""
        self.held -= n
        self._let_in()

    def _let_in(self) -> None:
        while self._waiting:
            n, fut = self._waiting[0]
            if fut.done():  # its reader was cancelled
                self._waiting.popleft()
            elif self._fits(n):
                self._waiting.popleft()
                self.held += n
                fut.set_result(None)
            else:
                break


class _Decoder:
    """Consumes (chunk index, source) pairs and decodes them in batches on a worker thread:
    whatever arrived while the previous batch was decoding forms the next batch."""

    def __init__(self, plan: ChunkPlan, out: np.ndarray, names: list[str], budget: _Budget,
                 decode: BatchDecoder | None = None) -> None:
        self.plan = plan
        self.out = out
        self.names = names
        self.budget = budget
        self.decode = decode
        self.queue: asyncio.Queue[tuple[int, Any] | None] = asyncio.Queue()

    def put(self, index: int, source: bytes | memoryview | None) -> None:
        """Queue a chunk's bytes (their room in the budget was reserved when its response
        arrived; it is released once the chunk is decoded)."""
        self.queue.put_nowait((index, source))

    def close(self) -> None:
        self.queue.put_nowait(None)

    def _decode(self, batch: list[tuple[int, Any]]) -> None:
        idx = np.fromiter((i for i, _ in batch), dtype=np.int64, count=len(batch))
        sources = [s for _, s in batch]
        names = [self.names[i] for i in idx.tolist()]
        if self.plan.codec.python_stages:
            sources = [python_stages(self.plan, s, n) for s, n in zip(sources, names)]
        if self.decode is not None:
            self.decode(idx, sources, names)
            return
        assert self.plan.codec.pipeline is not None  # innermost chunks always have one
        _core.decode_batch(self.plan.codec.pipeline, self.out,
                           np.ascontiguousarray(self.plan.boxes[idx]), sources, names)

    async def run(self) -> None:
        """Hand batches to the core as chunks arrive, up to one batch per native thread at
        once (a batch of one chunk keeps one core busy; the next arrivals need not wait)."""
        loop = asyncio.get_running_loop()
        running: set[asyncio.Future[None]] = set()
        limit = max(1, _core.get_num_threads())
        done = False
        try:
            while not done:
                arrived = [await self.queue.get()]
                while not self.queue.empty():
                    arrived.append(self.queue.get_nowait())
                batch = [b for b in arrived if b is not None]
                done = len(batch) < len(arrived)  # the end marker came
                if batch:
                    running.add(asyncio.ensure_future(self._run_batch(loop, batch)))
                while len(running) >= limit or (done and running):
                    finished, running = await asyncio.wait(
                        running, return_when=asyncio.FIRST_COMPLETED)
                    for f in finished:
                        f.result()  # the first failed batch raises here
        finally:
            # a cancelled or failed read still waits for the batches it handed to the core,
            # so no native work writes into `out` after the read has returned (however often
            # it is cancelled meanwhile)
            if await settle(*running):
                raise asyncio.CancelledError

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[int, Any]]
                         ) -> None:
        held = sum(len(s) for _, s in batch if s is not None)
        work = loop.run_in_executor(None, self._decode, batch)
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            await settle(work)  # cancelled or not, the batch writes into `out` until it ends
            raise
        finally:
            self.budget.release(held)


def _coalesce(ranges: list[tuple[int, int, int]], gap: int) -> list[tuple[int, int, list]]:
    """Merge ``(start, length, chunk index)`` ranges into requests ``(start, end, members)``."""
    merged: list[tuple[int, int, list]] = []
    for start, length, i in sorted(ranges):
        end = start + length
        if merged and start - merged[-1][1] <= gap:
            s0, e0, members = merged[-1]
            members.append((start, length, i))
            merged[-1] = (s0, max(e0, end), members)
        else:
            merged.append((start, end, [(start, length, i)]))
    return merged


def shard_requests(ranges: list[tuple[int, int, int]], size: int, options: RemoteOptions
                   ) -> list[tuple[int, int, list]]:
    """The data requests for one shard: the whole object when most of it is needed, else the
    inner-chunk ranges ``(start, length, chunk)`` merged across small gaps."""
    if sum(r[1] for r in ranges) >= options.whole_shard_fraction * size:
        return [(0, size, ranges)]
    return _coalesce(ranges, options.coalesce_gap)


def _needs_whole_shard(plan: ChunkPlan, members: list[int]) -> bool:
    """Every inner chunk of the shard is needed: one GET of the whole shard, index included
    (asked only while its index is not cached)."""
    return len(np.unique(plan.inner[members, 0])) == plan.levels[0].n_inner  # type: ignore[index]


@dataclass(frozen=True)
class PlannedRequest:
    """One request a read would send. ``start``/``end``: half-open byte range, None for the
    whole object; both None with kind "range_get" when the range awaits a shard index (or,
    for an index at the end without suffix ranges, the object's size: ``chunks`` 0)."""

    kind: str  # "get", "range_get" or "suffix_get"
    key: str
    start: int | None = None
    end: int | None = None
    chunks: int = 1  # chunks this request serves


def planned_requests(plan: ChunkPlan, index_cache: dict[str, ShardIndex | None],
                     options: RemoteOptions = RemoteOptions(), suffix_ranges: bool = True
                     ) -> list[PlannedRequest]:
    """The requests a read of ``plan`` would send now, without sending any. Shards whose
    index is not cached yet show their index request and one placeholder data request;
    without ``suffix_ranges`` (Azure) an index at the end costs a 1-byte GET for the size,
    then a ranged GET."""
    if not plan.levels:
        return [PlannedRequest("get", k) for k in plan.keys]
    out: list[PlannedRequest] = []
    by_shard: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(plan.keys):
        by_shard[key].append(i)
    for key, members in by_shard.items():
        layout = plan.levels[0]
        if key not in index_cache and _needs_whole_shard(plan, members):
            out.append(PlannedRequest("get", key, chunks=len(members)))
            continue
        if key not in index_cache:
            if layout.index_at_end and not suffix_ranges:
                out.append(PlannedRequest("range_get", key, 0, 1))
                out.append(PlannedRequest("range_get", key, chunks=0))
            else:
                out.append(PlannedRequest("suffix_get" if layout.index_at_end else "range_get",
                                          key, None if layout.index_at_end else 0,
                                          None if layout.index_at_end else layout.index_nbytes))
            out.append(PlannedRequest("range_get", key, chunks=len(members)))
            continue
        index = index_cache[key]
        if index is None:
            continue  # known missing: nothing to ask
        offsets, nbytes, size = index
        lin = plan.inner[members, 0]  # type: ignore[index]
        ranges = [(o, n, i) for i, o, n in zip(members, offsets[lin].tolist(),
                                               nbytes[lin].tolist()) if o >= 0]
        if ranges:
            for start, end, parts in shard_requests(ranges, size, options):
                whole = start == 0 and end == size
                out.append(PlannedRequest("get" if whole else "range_get", key,
                                          None if whole else start, None if whole else end,
                                          len(parts)))
    return out


async def _shard_index(store: ObjectStore, key: str, plan: ChunkPlan,
                       cache: dict[str, ShardIndex | None]) -> ShardIndex | None:
    if key not in cache:
        layout = plan.levels[0]
        got = await store.get_end_async(key, layout.index_nbytes, suffix=layout.index_at_end)
        cache[key] = None if got is None else shard_index(layout, key, got[0], got[1])
    return cache[key]


def _descend(plan: ChunkPlan, i: int, name: str, region: memoryview, base: int,
             cache: dict[Any, Any]) -> memoryview | None:
    """Follow nested shard indexes inside ``region`` (bytes already fetched) down to chunk
    ``i``'s innermost bytes; None if it is empty at some level. Indexes parsed once each."""
    for level in range(1, len(plan.levels)):
        layout = plan.levels[level]
        key = (level, base)
        if key not in cache:
            cache[key] = shard_index(layout, f"nested shard of {name}", region, len(region))
        offsets, nbytes, _ = cache[key]
        lin = int(plan.inner[i, level])  # type: ignore[index]
        off = int(offsets[lin])
        if off < 0:
            return None
        region = region[off:off + int(nbytes[lin])]
        base += off
    return region


async def read_into(store: ObjectStore, plan: ChunkPlan, out: np.ndarray,
                    index_cache: dict[str, ShardIndex | None],
                    options: RemoteOptions = RemoteOptions(),
                    decode: BatchDecoder | None = None) -> None:
    """Fetch and decode every chunk of ``plan`` into ``out`` (an ndim-dimensional view).
    ``decode(chunk indices, sources, names)``, if given, decodes each batch instead, on the
    decoding thread (a missing chunk's source is None): reads through the cache decode the
    chunks that exist into a slab of their own and place them from there, with no second
    trip through the event loop."""
    n = len(plan)
    names = list(plan.keys) if not plan.levels else [
        f"{k}[{int(i)}]" for k, i in zip(plan.keys, plan.inner[:, 0])]  # type: ignore[index]
    budget = _Budget(options.max_bytes_in_flight or store.max_bytes_in_flight)
    decoder = _Decoder(plan, out, names, budget, decode)
    sem = asyncio.Semaphore(store.concurrency)

    async def get_chunk(i: int) -> None:
        async with sem:
            data = await store.get_async(plan.keys[i],
                                         max_bytes=max_object_bytes(plan, out.itemsize))
        decoder.put(i, data)

    def deliver(view: memoryview, start: int, parts: list[tuple[int, int, int]]) -> None:
        """Hand the chunks ``(offset, length, chunk)`` found in bytes fetched from ``start``."""
        nested: dict[Any, Any] = {}
        queued = 0
        for off, ln, i in parts:
            region: memoryview | None = view[off - start: off - start + ln]
            if len(plan.levels) > 1 and region is not None:
                region = _descend(plan, i, names[i], region, off, nested)
            decoder.put(i, region)
            queued += 0 if region is None else len(region)
        # the bytes around the chunks (gaps, indexes, empty chunks) are not decoded
        budget.release(len(view) - queued)

    async def get_shard(key: str, members: list[int]) -> None:
        layout = plan.levels[0]
        lin = plan.inner[members, 0]  # type: ignore[index]
        whole = None
        if key not in index_cache and _needs_whole_shard(plan, members):
            # every inner chunk is needed: one GET of the whole shard, index included
            async with sem:
                whole = await store.get_async(key,
                                              max_bytes=max_object_bytes(plan, out.itemsize))
            index_cache[key] = None if whole is None else shard_index(layout, key, whole,
                                                                       len(whole))
        else:
            token = BODY_BUDGET.set(None)  # an index is parsed at once, not held for decoding
            try:
                async with sem:
                    await _shard_index(store, key, plan, index_cache)
            finally:
                BODY_BUDGET.reset(token)
        index = index_cache[key]
        if index is None:
            for i in members:
                decoder.put(i, None)
            return
        offsets, nbytes, size = index
        ranges = []
        for i, off, ln in zip(members, offsets[lin].tolist(), nbytes[lin].tolist()):
            if off < 0:
                decoder.put(i, None)  # empty inner chunk: fill value
            else:
                ranges.append((off, ln, i))
        if whole is not None:
            deliver(memoryview(whole), 0, ranges)
            return
        if not ranges:
            return

        async def one(start: int, end: int, parts: list) -> None:
            async with sem:
                if start == 0 and end == size:
                    data = await store.get_async(key,
                                                 max_bytes=max_object_bytes(plan, out.itemsize))
                else:
                    data = (await store.get_ranges_async(key, [(start, end - start)]))[0]
            if data is None or len(data) != end - start:
                raise ShardIndexError(f"shard {key!r}: expected {end - start} bytes at "
                                      f"{start}, got {0 if data is None else len(data)}",
                                      key=key, codec="sharding_indexed")
            deliver(memoryview(data), start, parts)

        await gather_or_cancel(*(one(s, e, p) for s, e, p in shard_requests(ranges, size,
                                                                            options)))

    if not plan.levels:
        jobs = [get_chunk(i) for i in range(n)]
    else:
        by_shard: dict[str, list[int]] = defaultdict(list)
        for i, key in enumerate(plan.keys):
            by_shard[key].append(i)
        jobs = [get_shard(k, m) for k, m in by_shard.items()]

    # the read's tasks see its budget: each GET takes room for its body before reading it
    token = BODY_BUDGET.set(budget)
    try:
        consumer = asyncio.ensure_future(decoder.run())
        fetches = [asyncio.ensure_future(j) for j in jobs]
    finally:
        BODY_BUDGET.reset(token)

    def stop_fetching(task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            for f in fetches:
                f.cancel()

    consumer.add_done_callback(stop_fetching)  # a chunk failed to decode: stop asking
    try:
        # on failure or cancellation, every fetch is cancelled and has ended before this raises
        await gather_or_cancel(*fetches)
    except BaseException:
        # the batches already handed to the core finish before the error propagates, even
        # if the read is cancelled again meanwhile; the chunks still queued are dropped
        consumer.cancel()
        if await settle(consumer):
            raise asyncio.CancelledError from None
        if not consumer.cancelled() and consumer.exception() is not None:
            raise consumer.exception() from None  # type: ignore[misc]
        raise
    decoder.close()
    await consumer  # cancelling the read here cancels the consumer, which waits as above
