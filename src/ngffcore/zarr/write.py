"""Writes: numpy → gather → encode → put, the read pipeline run backwards, for every store.

One write of a box goes plan (``plan.py``, the same plan as a read: chunk keys and boxes) →
objects (each chunk, or each shard with its inner chunks) → batches → per batch: the objects'
old bytes where the box covers them only partly (one GET each) → ONE native call that copies
each chunk's box out of the caller's array, merges it into the old chunk (or the fill value)
and encodes it, on the worker pool with the GIL released → shards assembled
(``shardwrite.py``) → one PUT per object (or one DELETE for an object left all fill value).

Every object a batch changes is held (``writelocks.py``) from its read to its write, so
writes from many threads never lose an update. Objects are written whole by the store's
``put`` (atomic on every store: temporary file + rename locally, one PUT remotely).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ngffcore import _core
from ngffcore.errors import CastError, ArgumentError, StoreError, UnsupportedError, WriteError
from ngffcore.store.fanout import gather_bounded
from ngffcore.store.ioloop import settle
from ngffcore.store.protocol import Store
from ngffcore.zarr import writelocks
from ngffcore.zarr.codecs import ChunkCodec
from ngffcore.zarr.metadata import ArrayMetadata
from ngffcore.zarr.plan import ChunkPlan, Selection, plan_chunks
from ngffcore.zarr.sharding import shard_index
from ngffcore.zarr.shardwrite import assemble, covers_chunk, inner_in_array, shard_origins
from ngffcore.zarr.source import python_stages
from ngffcore.zarr.steps import to_completion

#: decoded bytes one batch gathers and encodes at least (small chunks: fewer native calls)
MIN_BATCH_BYTES = 16 * 2**20
#: batches encoded in the background while one is sent (each holds its encoded objects)
ENCODE_AHEAD = 2


@dataclass(frozen=True)
class WriteOptions:
    """``write_empty_chunks``: store a chunk even when it is all fill value (default: such a
    chunk is not stored, and deleted if it was, as zarr-python's default)."""

    write_empty_chunks: bool = False


@dataclass
class _Object:
    key: str
    rows: list[int]  # rows of the plan (innermost chunks) inside this object
    whole: bool  # the write covers all of it: nothing old survives, nothing is read


def value_array(value: Any, dtype: np.dtype, sel: Selection) -> np.ndarray:
    """``value`` as an array of ``dtype`` broadcast to the selection's shape, with length-1
    axes where the selection drops one (the core's ndim-dimensional view; no copy when
    ``value`` already has the dtype). numpy arrays cast with ``same_kind`` rules, signed and
    unsigned integers counting as one kind (wrapping as numpy's ``astype``); Python values
    follow NumPy's (they must fit the dtype)."""
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        if arr.dtype.kind in "OSUVMm" or not (
                np.can_cast(arr.dtype, dtype, "same_kind")
                # signed and unsigned integers count as one kind (np.arange gives int64)
                or (arr.dtype.kind in "iu" and dtype.kind in "iu")):
            raise CastError(f"cannot write {arr.dtype} values into a {dtype} array "
                            "(casting rule 'same_kind')")
        arr = arr.astype(dtype, copy=False)
    else:
        if value is None or isinstance(value, (str, bytes)):
            raise CastError(f"cannot write {value!r} into a {dtype} array")
        try:
            arr = np.array(value, dtype=dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise CastError(f"cannot write {_short(value)} into a {dtype} array: {exc}"
                            ) from None
    try:
        arr = np.broadcast_to(arr, sel.out_shape)
    except ValueError:
        raise ArgumentError(f"a value of shape {arr.shape} does not broadcast to the "
                            f"selection's shape {sel.out_shape}") from None
    if any(sel.dropped):
        arr = arr[tuple(None if d else slice(None) for d in sel.dropped)]
    return arr


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_writable(meta: ArrayMetadata, url: str) -> None:
    """UnsupportedError (before anything is written) for arrays ngffcore cannot write."""
    if len(meta.shard_levels) > 1:
        raise UnsupportedError("writing arrays with nested sharding is not supported",
                               path=url)
    if meta.codec.write_problem:
        raise UnsupportedError(f"cannot write this array: {meta.codec.write_problem}",
                               path=url)


def _objects(meta: ArrayMetadata, plan: ChunkPlan, sel: Selection) -> list[_Object]:
    leaf = plan.codec
    covered = covers_chunk(plan.boxes, sel.start, meta.shape, leaf.chunk_shape)
    if not meta.shard_levels:
        return [_Object(k, [i], bool(covered[i])) for i, k in enumerate(plan.keys)]
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(plan.keys):
        groups.setdefault(key, []).append(i)
    origins = shard_origins(plan.boxes, sel.start, meta.grid_shape)
    out = []
    for key, rows in groups.items():
        whole = bool(covered[rows].all()) and len(rows) == inner_in_array(
            meta.shape, meta.grid_shape, leaf.chunk_shape, origins[rows[0]])
        out.append(_Object(key, rows, whole))
    return out


def _batches(objects: list[_Object], object_nbytes: int, store: Store) -> list[list[_Object]]:
    """Consecutive objects in batches: enough chunks to keep every native thread busy (two
    per thread), at least MIN_BATCH_BYTES of chunks (small chunks: fewer native calls), and
    otherwise as few objects as that allows, because a batch's encoded objects are what a
    write holds in memory (one or two shards at a time when shards are large). Remote
    stores need no more: a batch's PUTs are in flight while the next batch encodes."""
    rows = max(1, len(objects[0].rows))
    per = max(1, -(-2 * _core.get_num_threads() // rows),
              MIN_BATCH_BYTES // max(object_nbytes, 1))
    return [objects[i:i + per] for i in range(0, len(objects), per)]


async def write_selection(store: Store, meta: ArrayMetadata, prefix: str, sel: Selection,
                          value: np.ndarray, options: WriteOptions, written: list[str]
                          ) -> None:
    """Write ``value`` (``value_array``'s result) into ``sel``; ``written`` receives the keys
    written or deleted as they are. On a store failure raises WriteError naming the object
    and listing those already written.

    Batches are pipelined: while one batch's objects are assembled and sent, the next
    batches' chunks (up to ENCODE_AHEAD batches) are already being encoded from worker
    threads, when those batches read nothing (all their objects are written whole, so they
    hold no lock and need no I/O first).
    """
    plan = plan_chunks(meta, sel, prefix)
    objects = _objects(meta, plan, sel)
    if not objects:
        return
    object_nbytes = int(np.prod(meta.grid_shape, dtype=np.int64)) * meta.dtype.itemsize
    skip_fill = not options.write_empty_chunks and meta.fill_value is not None
    batches = _batches(objects, object_nbytes, store)
    job = _Job(store, meta, plan, value, skip_fill, written)
    ahead: deque[tuple[_Batch, Future[list[Any]]]] = deque()
    following = 0  # the next batch not yet prepared or handed to the background
    current: _Batch | None = None
    encoded: list[Any] = []
    while True:
        # consecutive batches written whole need no lock and no read: encoded ahead, two at
        # once, so the pool's threads always have work (one batch's last chunk runs beside
        # the next batch's first) while another is sent; a write of one batch (a chunk, a
        # shard) stays on the calling thread: nothing to overlap, and a thread hop costs more
        # than the rest of a small write
        while (len(batches) > 1 and len(ahead) < ENCODE_AHEAD and following < len(batches)
               and all(o.whole for o in batches[following])):
            b = _Batch(batches[following])
            ahead.append((b, _background().submit(job.encode, b)))
            following += 1
        try:
            if current is not None:
                try:
                    await job.finish(current, encoded)
                finally:
                    writelocks.release(current.token)
            if ahead:
                current, fut = ahead.popleft()
                encoded = await _result(fut)
            elif following < len(batches):
                current, encoded = await job.start(batches[following])
                following += 1
            else:
                return
        except BaseException:
            for _, fut in ahead:  # they read the caller's value: done before we raise
                await _settled(fut)
            raise


@dataclass
class _Batch:
    objects: list[_Object]
    token: list[Any] = field(default_factory=list)  # the locks it holds (writelocks)
    olds: list[Any] = field(default_factory=list)  # old bytes per object (None: not read)
    indexes: list[Any] = field(default_factory=list)  # parsed old shard index per object
    bases: list[Any] | None = None  # per chunk row: what it merges into (None: all fill)


@dataclass
class _Job:
    """One write: what every batch of it shares."""

    store: Store
    meta: ArrayMetadata
    plan: ChunkPlan
    value: np.ndarray
    skip_fill: bool
    written: list[str]

    async def prepare(self, batch: list[_Object]) -> _Batch:
        """Hold the objects that are merged into (objects written whole need no lock:
        whatever else writes them overlaps this write), then read their old bytes."""
        b = _Batch(batch)
        partial = [o.key for o in batch if not o.whole]
        if partial:
            b.token = await writelocks.acquire(self.store.identity, partial)
        try:
            b.olds = await _each(self.store, [_old(self.store, o) for o in batch])
            b.bases = []
            levels = self.meta.shard_levels
            for obj, old in zip(batch, b.olds):
                index = None
                if levels and old is not None:
                    index = shard_index(levels[0], obj.key, old, len(memoryview(old)))
                b.indexes.append(index)
                b.bases.extend(None if obj.whole else _base(self.plan, row, old, index)
                               for row in obj.rows)
        except BaseException:
            writelocks.release(b.token)
            raise
        return b

    async def start(self, batch: list[_Object]) -> tuple[_Batch, list[Any]]:
        """``prepare`` then ``encode`` (the batch's locks let go if either fails)."""
        b = await self.prepare(batch)
        try:
            return b, await _run(self.encode, b)
        except BaseException:
            writelocks.release(b.token)
            raise

    def encode(self, b: _Batch) -> list[Any]:
        """The batch's chunks encoded (one native call; None: all fill value, skipped)."""
        rows = [r for o in b.objects for r in o.rows]
        bases = b.bases if b.bases is not None else [None] * len(rows)
        boxes = np.ascontiguousarray(self.plan.boxes[rows])
        return _encode(self.plan.codec, self.value, boxes, bases, _names(self.plan, rows),
                       self.skip_fill)

    async def finish(self, b: _Batch, encoded: list[Any]) -> None:
        """Assemble each object and send it (a put, or a delete for one left all fill)."""
        levels = self.meta.shard_levels
        olds = b.olds or [None] * len(b.objects)
        indexes = b.indexes or [None] * len(b.objects)
        at = 0
        jobs = []
        for obj, old, index in zip(b.objects, olds, indexes):
            mine = encoded[at:at + len(obj.rows)]
            at += len(obj.rows)
            if not levels:
                data = mine[0]
            else:
                assert self.plan.inner is not None
                new = {int(self.plan.inner[r, 0]): e for r, e in zip(obj.rows, mine)}
                data = assemble(levels[0], new, old, None if index is None else index[0],
                                None if index is None else index[1])
            if data is not None:
                jobs.append(_put(self.store, obj.key, data, self.written))
            elif obj.whole or old is not None:  # a partial write of a missing object: nothing
                jobs.append(_delete(self.store, obj.key, self.written))
        await _send_all(self.store, jobs, self.written)


_BACKGROUND: ThreadPoolExecutor | None = None
_BACKGROUND_LOCK = threading.Lock()


def _background() -> ThreadPoolExecutor:
    """Threads that encode the next batch while the current one is sent (each call's
    native work runs on the pool; these threads only wait for it)."""
    global _BACKGROUND
    with _BACKGROUND_LOCK:
        if _BACKGROUND is None:
            _BACKGROUND = ThreadPoolExecutor(max_workers=4,
                                             thread_name_prefix="ngffcore-encode")
        return _BACKGROUND


async def _result(fut: Future[Any]) -> Any:
    """The result of background work: waited for directly without an event loop; on one,
    awaited, and run to its end even if the caller is cancelled."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fut.result()
    wrapped = asyncio.wrap_future(fut)
    try:
        return await asyncio.shield(wrapped)
    except asyncio.CancelledError:
        await settle(wrapped)
        raise


async def _settled(fut: Future[Any]) -> None:
    """Wait for background work to end, whatever its outcome."""
    try:
        await _result(fut)
    except Exception:  # noqa: BLE001 - the caller is already raising its own error
        pass


async def _each(store: Store, aws: list[Any]) -> list[Any]:
    """Await all: one after the other on an inline store (nothing to overlap, and a
    synchronous write has no event loop), else many in flight (the store's concurrency)."""
    if store.inline:
        return [await aw for aw in aws]
    return await gather_bounded(store, aws)


async def _send_all(store: Store, jobs: list[Any], written: list[str]) -> None:
    """Run every put/delete (up to the store's concurrency at once). After a failure no new
    one starts, but those already sent finish — a request whose body went out may still
    complete at the server, so cancelling it would leave ``written`` short of what changed
    — and then the first failure is raised as a WriteError listing everything written."""
    failures: list[StoreError] = []
    if store.inline:
        for job in jobs:
            if failures:
                job.close()
                continue
            try:
                await job
            except StoreError as exc:  # raised below, after the rest
                failures.append(exc)
    else:
        slots = asyncio.Semaphore(max(1, store.concurrency))

        async def one(job: Any) -> None:
            started = False
            try:
                async with slots:
                    if not failures:
                        started = True
                        await job
            except StoreError as exc:  # raised below, after the rest
                failures.append(exc)
            finally:
                if not started:  # never awaited (a failure, or the caller cancelled)
                    job.close()

        await asyncio.gather(*(one(job) for job in jobs))
    if failures:
        first = failures[0]
        key = first.key or "?"
        raise WriteError(f"writing {store.url}/{key} failed: {first} ({len(written)} objects "
                         "of this write were written: see .written)", key=first.key,
                         written=written) from first


async def _old(store: Store, obj: _Object) -> Any:
    if obj.whole:
        return None
    got = await store.get(obj.key)
    return None if got is None else got.data


def _base(plan: ChunkPlan, row: int, old: Any, index: Any) -> Any:
    """What chunk ``row`` merges into: its old encoded bytes (bz2/lzma undone), or None."""
    if old is None:
        return None
    if index is not None:
        assert plan.inner is not None
        j = int(plan.inner[row, 0])
        offset, nbytes = int(index[0][j]), int(index[1][j])
        if offset < 0:
            return None
        old = memoryview(old).cast("B")[offset:offset + nbytes]
    if plan.codec.python_stages:
        return python_stages(plan, old, plan.keys[row])
    return old


def _names(plan: ChunkPlan, rows: list[int]) -> list[str]:
    if plan.inner is None:
        return [plan.keys[r] for r in rows]
    return [f"{plan.keys[r]} (inner chunk {int(plan.inner[r, 0])})" for r in rows]


def _encode(leaf: ChunkCodec, value: np.ndarray, boxes: np.ndarray, bases: list[Any],
            names: list[str], skip_fill: bool) -> list[Any]:
    assert leaf.pipeline is not None
    out: list[Any] = _core.encode_batch(leaf.pipeline, value, boxes, bases, names,
                                        skip_fill=skip_fill)
    if leaf.python_stages:
        stages = leaf.python_stages[::-1]  # encode order
        staged: list[Any] = []
        for data in out:
            if data is not None:
                for stage in stages:
                    data = stage.encode(data)
            staged.append(data)
        out = staged
    return out


async def _run(fn: Any, *args: Any) -> Any:
    """Native work: inline when no event loop runs (a synchronous write on an inline store),
    else on a worker thread, run to its end even if the caller is cancelled."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args)
    result: list[Any] = []
    await to_completion(lambda: result.append(fn(*args)))
    return result[0]


async def _put(store: Store, key: str, data: Any, written: list[str]) -> None:
    await store.put(key, data)
    written.append(key)


async def _delete(store: Store, key: str, written: list[str]) -> None:
    await store.delete(key)
    written.append(key)


__all__ = ["WriteOptions", "check_writable", "value_array", "write_selection"]
