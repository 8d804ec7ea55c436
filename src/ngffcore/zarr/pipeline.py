"""The chunk pipeline: a plan's chunks, from any store, decoded into the output.

One read goes plan (``plan.py``: chunk keys, inner-chunk indexes for shards) → source
(``source.py``: keys to bytes, through the Store protocol; sharding as a layer over the
store, ``sharding.py``) → decoder (here: batches handed to the core, one native call per
batch over disjoint parts of the output). :func:`read_into` picks the source by what the
store offers, never by its class:

* ``store.local_root`` set: every chunk's file range is known first (shard indexes read
  through the store), then ONE native call decodes them all, its C workers reading the files.
  Nothing here suspends on an inline store, so a synchronous read runs it inline.
* otherwise: every request in flight at once (``ByteSource``); while responses arrive, the
  chunks received so far are decoded in batches on worker threads (GIL released), so network
  and decode overlap; results do not depend on the order responses arrive in. The bytes held
  received and not yet decoded are bounded (:class:`Budget`).

:func:`planned_requests` is the dry run: the requests a read would send, sending none.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from ngffcore import _core
from ngffcore.store.ioloop import BODY_BUDGET, DEFAULT_MAX_BYTES_IN_FLIGHT, gather_or_cancel, settle
from ngffcore.store.protocol import Store
from ngffcore.zarr.plan import ChunkPlan
from ngffcore.zarr.sharding import (ReadOptions, ShardIndex, by_shard, chunk_names,
                                    needs_whole_shard, shard_requests, stored_parts)
from ngffcore.zarr.source import ByteSource, file_sources, python_stages, stored_sources

#: decodes one batch itself: (chunk indices into the plan, their sources, their names)
BatchDecoder = Callable[[np.ndarray, list[Any], list[str]], None]


def decode_chunks(plan: ChunkPlan, out: np.ndarray, idx: np.ndarray | None, sources: list[Any],
                  names: list[str], decode: BatchDecoder | None) -> None:
    """Decode chunks ``idx`` of ``plan`` (None: all of them, in order) from ``sources`` into
    ``out`` in one native call, or hand them to ``decode``; Python stages run first."""
    if plan.codec.python_stages:
        sources = [python_stages(plan, s, n) for s, n in zip(sources, names)]
    if decode is not None:
        decode(np.arange(len(plan), dtype=np.int64) if idx is None else idx, sources, names)
        return
    assert plan.codec.pipeline is not None  # innermost chunks always have one
    boxes = plan.boxes if idx is None else np.ascontiguousarray(plan.boxes[idx])
    _core.decode_batch(plan.codec.pipeline, out, boxes, sources, names)


async def read_into(store: Store, plan: ChunkPlan, out: np.ndarray,
                    index_cache: dict[str, ShardIndex | None],
                    decode: BatchDecoder | None = None,
                    options: ReadOptions = ReadOptions()) -> None:
    """Fetch and decode every chunk of ``plan`` into ``out`` (an ndim-dimensional view).
    ``decode(chunk indices, sources, names)``, if given, decodes each batch instead, on the
    decoding thread (a missing chunk's source is None): reads through the cache decode the
    chunks that exist into a slab of their own and place them from there, with no second
    trip through the event loop. ``index_cache`` keeps shard indexes fetched as bytes."""
    names = chunk_names(plan)
    if store.local_root is not None:
        sources = await file_sources(store, plan, names)
        if decode is not None:
            sources = stored_sources(sources)
        decode_chunks(plan, out, None, sources, names, decode)
        return
    await _stream(store, plan, out, names, index_cache, decode, options)


class Budget:
    """Bytes of one read received (or with room reserved, see ``ioloop.BODY_BUDGET``) and
    not yet decoded: at most ``limit``, except that a body is always let in when nothing is
    held, so an object larger than the limit still goes through (alone). Bodies are let in
    first come, first served: a large one waiting for room is not passed by small ones."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()
        # ``try_reserve`` comes from fetch threads; everything else runs on the loop
        self._lock = threading.Lock()

    def _fits(self, n: int) -> bool:
        return self.held == 0 or self.held + n <= self.limit

    def try_reserve(self, n: int) -> bool:
        """Count ``n`` more bytes as held if they fit now and nobody waits (any thread)."""
        with self._lock:
            if self._waiting or not self._fits(n):
                return False
            self.held += n
            return True

    async def reserve(self, n: int) -> None:
        """Wait until ``n`` more bytes fit, and count them as held."""
        if self.try_reserve(n):
            return
        entry = (n, asyncio.get_running_loop().create_future())
        with self._lock:
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
        with self._lock:
            self.held -= n
        self._let_in()

    def _let_in(self) -> None:
        admitted = []
        with self._lock:
            while self._waiting:
                n, fut = self._waiting[0]
                if fut.done():  # its reader was cancelled
                    self._waiting.popleft()
                elif self._fits(n):
                    self._waiting.popleft()
                    self.held += n
                    admitted.append(fut)
                else:
                    break
        for fut in admitted:
            fut.set_result(None)


#: stored bytes up to which an arrived batch is decoded on the loop's thread rather than on
#: an executor thread: the size of a few viewer-tile chunks (a cold HTTP tile's last chunks
#: then reach the caller ~1 ms sooner, docs/targets.md issue 17); larger batches leave the
#: loop free to take arrivals while they decode
INLINE_DECODE_BYTES = 1 << 20
#: output bytes up to which a read of whole chunks fetched together (``ByteSource.together``)
#: is decoded in one batch on the loop's thread once all have come: a viewer tile (3 × 512 ×
#: 512 × 2 bytes is 1.5 MiB); larger reads overlap decoding with the arrivals instead
SMALL_OUTPUT_BYTES = 4 << 20


def _stored_bytes(sources: Iterable[Any]) -> int:
    """Bytes held by chunk sources (None: not stored): the budget room they take."""
    return sum(len(s) for s in sources if s is not None)


class _Decoder:
    """Consumes (chunk index, source) pairs and decodes them in batches on a worker thread:
    whatever arrived while the previous batch was decoding forms the next batch."""

    def __init__(self, plan: ChunkPlan, out: np.ndarray, names: list[str], budget: Budget,
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
        decode_chunks(self.plan, self.out, idx, [s for _, s in batch],
                      [self.names[i] for i in idx.tolist()], self.decode)

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
                if batch and _stored_bytes(s for _, s in batch) <= INLINE_DECODE_BYTES:
                    self._decode_here(batch)
                elif batch:
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

    def _decode_here(self, batch: list[tuple[int, Any]]) -> None:
        """A small batch decoded on the loop's thread (the GIL released, the core's pool at
        work): handing it to an executor thread and back costs more than it decodes."""
        try:
            self._decode(batch)
        finally:
            self.budget.release(_stored_bytes(s for _, s in batch))

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[int, Any]]
                         ) -> None:
        held = _stored_bytes(s for _, s in batch)
        work = loop.run_in_executor(None, self._decode, batch)
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            await settle(work)  # cancelled or not, the batch writes into `out` until it ends
            raise
        finally:
            self.budget.release(held)


async def _stream(store: Store, plan: ChunkPlan, out: np.ndarray, names: list[str],
                  index_cache: dict[str, ShardIndex | None], decode: BatchDecoder | None,
                  options: ReadOptions) -> None:
    """Every request in flight at once, chunks decoded in batches as their bytes arrive."""
    limit = options.max_bytes_in_flight or getattr(store, "max_bytes_in_flight", None)
    budget = Budget(limit or DEFAULT_MAX_BYTES_IN_FLIGHT)
    decoder = _Decoder(plan, out, names, budget, decode)
    source = ByteSource(store, plan, names, decoder.put, budget.release, index_cache, options,
                        out.itemsize)
    if out.nbytes <= SMALL_OUTPUT_BYTES and source.together(budget.limit):
        await _together(source, plan, out, names, budget, decode)
        return
    # the read's tasks see its budget: each GET takes room for its body before reading it
    token = BODY_BUDGET.set(budget)
    try:
        consumer = asyncio.ensure_future(decoder.run())
        fetches = [asyncio.ensure_future(j) for j in source.jobs(budget.limit)]
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


async def _together(source: ByteSource, plan: ChunkPlan, out: np.ndarray, names: list[str],
                    budget: Budget, decode: BatchDecoder | None) -> None:
    """A small read of whole chunks (a viewer tile): fetched together, then decoded in one
    native call on the loop's thread — no decoding task, queue or executor round trip
    between the last body and the caller (docs/targets.md, issue 17)."""
    token = BODY_BUDGET.set(budget)
    try:
        sources = await source.chunks()
    finally:
        BODY_BUDGET.reset(token)
    try:
        decode_chunks(plan, out, None, sources, names, decode)
    finally:
        budget.release(_stored_bytes(sources))


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
                     options: ReadOptions = ReadOptions(), suffix_ranges: bool = True
                     ) -> list[PlannedRequest]:
    """The requests a read of ``plan`` would send now, without sending any. Shards whose
    index is not cached yet show their index request and one placeholder data request;
    without ``suffix_ranges`` (Azure) an index at the end costs a 1-byte GET for the size,
    then a ranged GET."""
    if not plan.levels:
        return [PlannedRequest("get", k) for k in plan.keys]
    out: list[PlannedRequest] = []
    layout = plan.levels[0]
    for key, members in by_shard(plan).items():
        if key not in index_cache and needs_whole_shard(plan, members):
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
        parts, _ = stored_parts(plan, members, index)
        size = index[2]
        for start, end, group in (shard_requests(parts, size, options) if parts else ()):
            whole = start == 0 and end == size
            out.append(PlannedRequest("get" if whole else "range_get", key,
                                      None if whole else start, None if whole else end,
                                      len(group)))
    return out


__all__ = ["BatchDecoder", "Budget", "PlannedRequest", "ReadOptions", "decode_chunks",
           "planned_requests", "read_into"]
