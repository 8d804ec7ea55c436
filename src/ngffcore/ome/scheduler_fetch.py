"""The request scheduler's fetch jobs (``scheduler.py``): the encoded bytes of some chunks of
ONE stored object — a chunk, or inner chunks of one shard — and their decoding into chunks
for the cache.

Every GET goes through a :class:`Gate` the scheduler gives each job: it waits for a slot
(``max_in_flight``), counts the request and its bytes, and refuses (:class:`Stop`) to send
anything for a job nobody waits for any more. So a job stops between its requests when its
tiles are cancelled, and a request already sent is never cancelled: it runs to its end and
its bytes are decoded into the cache.

Built from the read pipeline's own parts (``zarr/sharding.py``: indexes, coalesced ranges,
nested shards; ``zarr/source.py``: local file ranges, size bounds), so a scheduled tile asks
for exactly what ``Level.plan`` says a read would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Sequence
from typing import Any, Callable, Protocol

import numpy as np

from ngffcore import _core
from ngffcore.errors import ShardIndexError
from ngffcore.store.protocol import ByteRange, Got, Suffix
from ngffcore.zarr.array import Array
from ngffcore.zarr.cache import MISSING, ChunkCache
from ngffcore.zarr.cacheread import decode_to_slab
from ngffcore.zarr.plan import ChunkPlan
from ngffcore.zarr.sharding import (Part, ReadOptions, ShardIndex, chunk_names, locate,
                                    needs_whole_shard, shard_index, shard_requests,
                                    stored_parts)
from ngffcore.zarr.source import (file_sources, max_object_bytes, python_stages,
                                  stored_sources)

#: the read pipeline's request policy (coalescing gap, whole-shard fraction)
OPTIONS = ReadOptions()

#: hands on chunk ``i`` of a job's plan: None (not stored: the fill value), bytes-like, or a
#: local file range the core reads itself
Deliver = Callable[[int, Any], None]
#: chunks ``i...`` of a job's plan failed with this error
Fail = Callable[[list[int], BaseException], None]


class Stop(Exception):
    """Nobody waits for this job any more: it sends nothing further."""


class Gate(Protocol):
    """What a job sends through (the scheduler's slots and counters)."""

    async def get(self, key: str, byte_range: ByteRange = None, max_bytes: int | None = None,
                  chunks: int = 1) -> Got | None:
        """One GET, once a slot is free (``chunks``: inner chunks it serves)."""

    async def local(self) -> None:
        """Take a slot for reading local files (released by ``done_local``)."""

    def done_local(self) -> None: ...


class Members(Protocol):
    """The chunks a job fetches: more may join until it is closed."""

    def current(self) -> ChunkPlan:
        """The plan of the chunks so far (the job stays open)."""

    def close(self) -> tuple[ChunkPlan, list[str]]:
        """No chunk joins any more: their plan and names (for errors)."""


def object_plan(array: Array, key: str, rows: Sequence[tuple[int, ...]]) -> ChunkPlan:
    """A plan of chunks of the one object ``key`` of ``array``: ``rows`` are the inner chunk
    indices per sharding level (empty tuples when unsharded). Boxes are unused: jobs decode
    whole chunks."""
    meta = array.metadata
    levels = meta.shard_levels
    n = len(rows)
    inner = np.asarray(rows, dtype=np.int64).reshape(n, len(levels)) if levels else None
    return ChunkPlan(np.zeros((n, 3 * meta.ndim), dtype=np.int64), [key] * n, inner, levels,
                     meta.leaf_codec)


class ShardIndexes:
    """Shard indexes being fetched now, so two jobs on one shard send one index request.
    Indexes fetched live in the level's own index cache (``Array._index_cache``), shared
    with ordinary reads. Used on the scheduler's loop only."""

    def __init__(self) -> None:
        self._fetching: dict[tuple[int, str], asyncio.Future[None]] = {}

    async def get(self, array: Array, plan: ChunkPlan, gate: Gate
                  ) -> tuple[ShardIndex | None, Any]:
        """The index of the plan's shard (None: the shard does not exist), and the whole
        shard's bytes when they were fetched for it (every inner chunk is needed and the
        index was not cached: one GET, as ``ByteSource`` does)."""
        cache = array._index_cache
        key, layout = plan.keys[0], plan.levels[0]
        while key not in cache:
            ident = (id(array), key)
            other = self._fetching.get(ident)
            if other is not None:
                await asyncio.shield(other)  # its error is ours; a job that stopped: retry
                continue
            mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._fetching[ident] = mine
            try:
                if needs_whole_shard(plan, list(range(len(plan)))):
                    got = await gate.get(key, None, max_object_bytes(plan, array.dtype.itemsize),
                                         chunks=len(plan))
                    cache[key] = (None if got is None
                                  else shard_index(layout, key, got.data, got.size))
                    return cache[key], None if got is None else got.data
                n = layout.index_nbytes
                got = await gate.get(key, Suffix(n) if layout.index_at_end else (0, n), None, 0)
                cache[key] = None if got is None else shard_index(layout, key, got.data,
                                                                   got.size)
            except (Stop, asyncio.CancelledError):
                raise  # the others fetch it themselves (finally: done without an error)
            except BaseException as exc:
                mine.set_exception(exc)
                mine.exception()  # retrieved: a job that nobody else waited for logs nothing
                raise
            finally:
                del self._fetching[ident]
                if not mine.done():
                    mine.set_result(None)
        return cache[key], None


async def fetch_object(array: Array, members: Members, gate: Gate, deliver: Deliver,
                       fail: Fail, indexes: ShardIndexes) -> None:
    """Fetch the chunks of ``members`` (all in one object of ``array``) and ``deliver`` each
    (by its index in the closed plan) as its bytes arrive; ``fail`` the ones a failed
    request or a bad nested index held. A shard's job stays open until its index is known:
    chunks that join meanwhile share its data requests. Raises :class:`Stop` (the job is
    not wanted) or the error that failed every chunk not handed on."""
    store = array.store
    if store.local_root is not None or not array.metadata.shard_levels:
        plan, names = members.close()
    if store.local_root is not None:
        # the core reads the files itself when decoding: one "request" for the object
        await gate.local()
        try:
            sources = stored_sources(await file_sources(store, plan, names))
        finally:
            gate.done_local()
        for i, source in enumerate(sources):
            deliver(i, source)
        return
    if not array.metadata.shard_levels:
        got = await gate.get(plan.keys[0], None, max_object_bytes(plan, array.dtype.itemsize))
        for i in range(len(plan)):
            deliver(i, None if got is None else got.data)
        return
    index, whole = await indexes.get(array, members.current(), gate)
    plan, names = members.close()
    every = list(range(len(plan)))
    if index is None:  # no such shard: every chunk is the fill value
        for i in every:
            deliver(i, None)
        return
    parts, empty = stored_parts(plan, every, index)
    for i in empty:
        deliver(i, None)
    if whole is not None:
        await _deliver_parts(plan, names, memoryview(whole), 0, parts, deliver, fail)
        return
    if not parts:
        return
    requests = shard_requests(parts, index[2], OPTIONS)
    # every range of the shard in flight together; one failing fails only its chunks
    results = await asyncio.gather(
        *(_range(array, plan, names, gate, start, end, index[2], group, deliver, fail)
          for start, end, group in requests), return_exceptions=True)
    stopped = False
    for (_, _, group), result in zip(requests, results):
        if isinstance(result, Stop):
            stopped = True
        elif isinstance(result, asyncio.CancelledError):
            raise result
        elif isinstance(result, BaseException):
            fail([i for _, _, i in group], result)
    if stopped:
        raise Stop


async def _range(array: Array, plan: ChunkPlan, names: list[str], gate: Gate, start: int,
                 end: int, size: int, group: list[Part], deliver: Deliver, fail: Fail) -> None:
    key = plan.keys[0]
    whole = start == 0 and end == size
    got = await gate.get(key, None if whole else (start, end),
                         max_object_bytes(plan, array.dtype.itemsize) if whole else None,
                         chunks=len(group))
    n = 0 if got is None else len(memoryview(got.data))
    if got is None or n != end - start:
        raise ShardIndexError(f"shard {key!r}: expected {end - start} bytes at {start}, "
                              f"got {n}", key=key, codec="sharding_indexed")
    await _deliver_parts(plan, names, memoryview(got.data), start, group, deliver, fail)


async def _deliver_parts(plan: ChunkPlan, names: list[str], view: memoryview, start: int,
                         parts: list[Part], deliver: Deliver, fail: Fail) -> None:
    """Hand on the chunks ``(offset, length, i)`` inside bytes fetched from ``start``,
    descending through nested shard indexes (a bad one fails only its chunk)."""
    nested: dict[Any, Any] = {}

    async def read(at: int, length: int, shard_len: int) -> Any:
        return view[at - start:at - start + length]

    for off, ln, i in parts:
        if len(plan.levels) > 1:
            try:
                where = await locate(plan, i, names, off, ln, read, nested)
            except ShardIndexError as exc:
                fail([i], exc)
                continue
            if where is None:
                deliver(i, None)
                continue
            off, ln = where
        deliver(i, view[off - start:off - start + ln])


def decode_chunks(array: Array, cache: ChunkCache, keys: list[Hashable], sources: list[Any],
                  names: list[str]) -> list[Any]:
    """Decode whole chunks of ``array`` (sources as delivered) into one slab, keep them in
    ``cache`` and return them (``MISSING`` for a chunk not stored). One native call; if it
    fails, each chunk is decoded alone, so one corrupt chunk fails only itself: its place in
    the result is its exception."""
    codec = array.metadata.leaf_codec
    results: list[Any] = [MISSING] * len(keys)
    if codec.python_stages:
        staged = []
        for k, (source, name) in enumerate(zip(sources, names)):
            try:
                staged.append(python_stages(_plan_of(array), source, name))
            except Exception as exc:  # a DecodeError naming the chunk
                results[k] = exc
                staged.append(None)
        sources = staged
    present = [k for k, s in enumerate(sources) if s is not None
               and not isinstance(results[k], BaseException)]
    try:
        slabs = [_decode(array, cache, present, sources, names, results)] if present else []
    except Exception:
        slabs = []
        for k in present:
            try:
                slabs.append(_decode(array, cache, [k], sources, names, results))
            except Exception as exc:
                results[k] = exc
    ok = [k for k, r in enumerate(results) if not isinstance(r, BaseException)]
    if ok:
        cache.insert([keys[k] for k in ok], slabs, [results[k] for k in ok])
    return results


def _plan_of(array: Array) -> ChunkPlan:
    """A plan that only carries the array's codec (what ``python_stages`` looks at)."""
    meta = array.metadata
    return ChunkPlan(np.zeros((0, 3 * meta.ndim), dtype=np.int64), [], None, (),
                     meta.leaf_codec)


def _decode(array: Array, cache: ChunkCache, which: list[int], sources: list[Any],
            names: list[str], results: list[Any]) -> np.ndarray:
    """Chunks ``which`` into a new slab, as a read through the cache lays them out."""
    return decode_to_slab(cache, array.metadata.leaf_codec, array.dtype, which, sources,
                          names, results)


class JobRun:
    """One job's run for the scheduler's engine (``scheduler_queue.py``): the :class:`Gate`
    it sends through and the :class:`Members` it fetches, its chunks handed to the engine
    as they arrive. One plain object per job, not classes made per job: classes are cyclic
    garbage, which brings the collector's full passes (tens of milliseconds that stall
    every thread, the viewer's too) more often."""

    __slots__ = ("engine", "job", "tokens", "keys", "names", "settled")

    def __init__(self, engine: Any, job: Any) -> None:
        self.engine, self.job = engine, job
        self.tokens: list[list[bool]] = []  # local reads' slots
        self.keys: list[Hashable] = []  # the members when the job closed, in its plan's order
        self.names: list[str] = []
        self.settled: set[Hashable] = set()

    async def get(self, key: str, byte_range: ByteRange = None, max_bytes: int | None = None,
                  chunks: int = 1) -> Got | None:
        got: Got | None = await self.engine.get(self.job, key, byte_range, max_bytes, chunks)
        return got

    async def local(self) -> None:
        self.tokens.append(await self.engine.begin(self.job))

    def done_local(self) -> None:
        self.engine.end(self.job, self.tokens.pop())

    def current(self) -> Any:
        job = self.job
        return object_plan(job.array, job.key, list(job.members.values()))

    def close(self) -> tuple[Any, list[str]]:
        job = self.job
        self.engine._close(job)
        self.keys[:] = list(job.members)
        plan = object_plan(job.array, job.key, [job.members[k] for k in self.keys])
        self.names[:] = chunk_names(plan)
        return plan, self.names

    def deliver(self, i: int, source: Any) -> None:
        key = self.keys[i]
        self.settled.add(key)
        self.engine._arrived.append((self.job, key, source, self.names[i]))
        self.engine._release()

    def fail(self, which: list[int], exc: BaseException) -> None:
        failed = [self.keys[i] for i in which]
        self.settled.update(failed)
        self.engine._chunks_failed(self.job, failed, exc)

    async def run(self) -> None:
        engine, job, settled = self.engine, self.job, self.settled
        try:
            await fetch_object(job.array, self, self, self.deliver, self.fail, engine._indexes)
        except Stop:
            pass
        except BaseException as exc:  # every chunk not handed on yet fails with it
            engine._close(job)
            left = [k for k in job.members if k not in settled]
            settled.update(left)
            engine._chunks_failed(job, left, exc)
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise
        finally:
            engine._ended(job, [k for k in job.members if k not in settled])


__all__ = ["Gate", "JobRun", "Members", "OPTIONS", "ShardIndexes", "Stop", "decode_chunks",
           "fetch_object", "object_plan"]
