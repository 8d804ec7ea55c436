"""The request scheduler's engine (``scheduler.py`` has the public API and the design):
tile requests (:class:`Task`) waiting for chunks, fetch jobs (:class:`Job`, one stored
object each) in a priority queue, and the decoding of arrived bytes; the GET slots are its
base class (``scheduler_slots.py``).

Everything here runs on ngffcore's I/O loop thread and only there: the public methods post
operations (:meth:`Engine.post`), which the loop applies in order, in batches. No locks
are needed for the state below; the only cross-thread objects are the callers'
``concurrent.futures.Future`` objects and the operations mailbox.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import threading
from collections import deque
from collections.abc import Hashable
from typing import Any, Callable

from ngffcore.store.protocol import ByteRange, Got
from ngffcore.zarr.cache import ChunkCache
from ngffcore.zarr.sharding import chunk_names
from ngffcore.ome.scheduler_fetch import (ShardIndexes, Stop, decode_chunks, fetch_object,
                                          object_plan)
from ngffcore.ome.scheduler_slots import Slots
from ngffcore.ome.scheduler_tasks import (DONE, DROPPED, QUEUED, RUNNING, Job, Task, TaskKey,
                                          assemble)

#: chunks decoded per loop iteration at most: a burst of arrivals (a prefetch wave) must
#: not hold the loop, which sends the next requests, for long
DECODE_BATCH = 16
#: the longest prefetch waits after a view (seconds; it waits one round trip: see _pump)
MAX_PREFETCH_DELAY = 0.25


class Engine(Slots):
    """The scheduler's state machine, on the I/O loop ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_in_flight: int, cache: ChunkCache,
                 prefetch: Callable[[Any, Any], list[Task]]) -> None:
        super().__init__(loop, max_in_flight)
        self.cache = cache
        self._prefetch = prefetch  # (view, template) -> prefetch tasks of that view
        self._mail: deque[tuple[Any, ...]] = deque()
        self._mail_lock = threading.Lock()
        self._posted = False
        self.tasks: set[Task] = set()
        self._pending: dict[Hashable, Job] = {}  # chunk key -> the job that brings it
        self._queued: dict[tuple[int, str], Job] = {}  # (array id, object) -> queued job
        # jobs that still take chunks of their object: queued, or a shard's job until its
        # index has come (so tiles asking meanwhile share its coalesced data requests)
        self._open: dict[tuple[int, str], Job] = {}
        self._heap: list[tuple[TaskKey, int, Job]] = []
        self._dirty: set[Job] = set()
        self._prefetch_at = 0.0  # loop time before which no prefetch job starts
        self._timer: asyncio.TimerHandle | None = None
        self._jobs: set[asyncio.Task[None]] = set()  # running jobs (strong references)
        self._live = 0  # jobs started and not yet ended
        self._arrived: list[tuple[Job, Hashable, Any, str]] = []
        self._indexes = ShardIndexes()
        self.view: Any = None
        self.template: Any = None  # the last explicit tile: size, channels (prefetch copies)
        self.idle = threading.Event()
        self.idle.set()

    # -- the mailbox (any thread) ------------------------------------------------------------
    def post(self, *op: Any) -> None:
        self.idle.clear()  # until the loop has seen this operation
        with self._mail_lock:
            self._mail.append(op)
            if self._posted:
                return
            self._posted = True
        self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._mail_lock:
            ops = list(self._mail)
            self._mail.clear()
            self._posted = False
        for k, op in enumerate(ops):
            kind = op[0]
            try:
                if kind == "tile":
                    self._submit(op[1])
                elif kind == "cancel":
                    self._cancel(op[1])
                elif kind == "view":
                    # a storm of views: the ones another view follows at once only cancel
                    later = k + 1 < len(ops) and ops[k + 1][0] == "view"
                    self._apply_view(op[1], prefetch=not later)
                elif kind == "close":
                    for task in list(self.tasks):
                        self._cancel(task)
                    self.view = None
            except Exception as exc:  # a bug must not leave a future waiting forever
                if kind == "tile":
                    self._fail(op[1], exc)
                self.loop.call_exception_handler({
                    "message": f"ngffcore scheduler: {kind} failed", "exception": exc})
        self._pump()

    # -- tasks -------------------------------------------------------------------------------
    def _key(self, task: Task) -> TaskKey:
        """Queue order: explicit before prefetch, higher priority, coarser level, nearer to
        the view's centre (physical units), then first come."""
        dist = 0.0
        if self.view is not None:
            cy, cx = self.view.centre
            dist = math.hypot(task.centre[0] - cy, task.centre[1] - cx)
        return (0 if task.explicit else 1, -task.priority, -task.level, dist, task.seq)

    def _submit(self, task: Task) -> None:
        if task.done:  # cancelled before it was submitted
            return
        # a future cancelled meanwhile is submitted all the same: its "cancel" operation
        # follows and drops its jobs, counted as requests never sent
        task.seq = next(self._seq)
        task.key = self._key(task)
        self.tasks.add(task)
        if task.explicit:
            self.stats["tiles"] += 1
            if task.label is None:
                self.template = (task.size, task.channels)
        else:
            self.stats["prefetched"] += 1
        for read in task.reads:
            found = self.cache.lookup(read.keys)
            for i, (key, chunk) in enumerate(zip(read.keys, found)):
                if chunk is not None:
                    task.got[key] = chunk
                    if task.explicit:
                        self.stats["cache_hits"] += 1
                else:
                    task.need.add(key)
                    plan = read.plan
                    row = () if plan.inner is None else tuple(plan.inner[i].tolist())
                    task.where[key] = (read.array, plan.keys[i], row)
        for key in task.need:
            self._attach(task, key)
        if not task.need:
            self._complete(task)

    def _attach(self, task: Task, key: Hashable) -> None:
        """``task`` waits for chunk ``key``: from the job already bringing it, else from
        the queued job of its object (merged: one request, coalesced ranges), else a new
        job."""
        job = self._pending.get(key)
        if job is not None:
            self.stats["shared"] += 1
        else:
            array, obj, row = task.where[key]
            okey = (id(array), obj)
            job = self._open.get(okey)
            if job is None:
                job = self._queued[okey] = self._open[okey] = Job(next(self._seq), array, obj)
            job.members[key] = row
            self._pending[key] = job
        job.waiters.add(task)
        task.jobs.add(job)
        if job.state == QUEUED:
            self._dirty.add(job)

    def _leave(self, task: Task) -> None:
        """``task`` is over (done, failed or cancelled): its jobs lose a waiter. A queued job
        nobody waits for is dropped (never sent); a running one is abandoned: its requests
        in flight go on (their bytes fill the cache) but count no more, and it sends no
        other."""
        task.done = True
        self.tasks.discard(task)
        for job in task.jobs:
            job.waiters.discard(task)
            if job.waiters:
                if job.state == QUEUED:
                    self._dirty.add(job)
                continue
            if job.state == QUEUED:
                self._drop(job)
            elif job.state == RUNNING:
                self._abandon(job)
        task.jobs.clear()

    def _drop(self, job: Job) -> None:
        job.state = DROPPED
        self.stats["cancelled"] += 1
        self._queued.pop((id(job.array), job.key), None)
        self._close(job)
        for key in job.members:
            if self._pending.get(key) is job:
                del self._pending[key]

    def _cancel(self, task: Task) -> None:
        if task.done:
            return
        self._leave(task)
        if task.explicit:
            self.stats["tiles_cancelled"] += 1
            task.fut.cancel()

    def _fail(self, task: Task, exc: BaseException) -> None:
        if task.done:
            return
        self._leave(task)
        if task.explicit:
            self.stats["failed"] += 1
            if task.fut.set_running_or_notify_cancel():
                task.fut.set_exception(exc)

    def _complete(self, task: Task) -> None:
        self._leave(task)
        if not task.explicit:
            return
        try:
            result = assemble(task)
            if task.finish is not None:
                result = task.finish(result)
        except Exception as exc:
            self.stats["failed"] += 1
            if task.fut.set_running_or_notify_cancel():
                task.fut.set_exception(exc)
            return
        if task.fut.set_running_or_notify_cancel():
            task.fut.set_result(result)

    # -- the view ----------------------------------------------------------------------------
    def _apply_view(self, view: Any, prefetch: bool) -> None:
        """Cancel every request (queued, or abandon it in flight) that does not intersect
        ``view``; then queue its prefetch, keeping the prefetch tiles already queued."""
        self.view = view
        fresh = self._prefetch(view, self.template) if prefetch else []
        if fresh:
            # prefetch is a guess: it waits one round trip, so a view that lasts less (a
            # pan, a storm) does not send requests it would abandon before any byte came
            self._prefetch_at = self.loop.time() + min(self.rtt or 0.0, MAX_PREFETCH_DELAY)
        kept = {t.ident for t in fresh}
        for task in list(self.tasks):
            if not task.explicit and task.ident in kept:
                continue
            if not view.intersects(task.box):
                self._cancel(task)
        have = {t.ident for t in self.tasks if not t.explicit}
        for task in fresh:
            if task.ident not in have:
                self._submit(task)
        for task in self.tasks:  # distances changed: the whole queue is ordered again
            task.key = self._key(task)
        self._heap = []
        for job in self._queued.values():
            if job.waiters:
                job.entry = job.order()
                self._heap.append((job.entry, job.seq, job))
        heapq.heapify(self._heap)
        self._dirty.clear()

    # -- the queue and the slots -------------------------------------------------------------
    def _pump(self) -> None:
        for job in self._dirty:
            if job.state == QUEUED and job.waiters:
                order = job.order()
                if order != job.entry:
                    job.entry = order
                    heapq.heappush(self._heap, (order, job.seq, job))
        self._dirty.clear()
        self._grant()
        while self._free() and not self._slot_waiting and self._heap:
            order, _, job = self._heap[0]
            if job.state != QUEUED or order != job.entry:
                heapq.heappop(self._heap)
                continue  # stale: re-ordered or dropped since
            if order[0] and self.loop.time() < self._prefetch_at:  # explicit ones: all out
                if self._timer is None:
                    self._timer = self.loop.call_at(self._prefetch_at, self._on_timer)
                break
            heapq.heappop(self._heap)
            self._start(job)
        if not (self._live or self._queued or self._arrived or self._mail):
            self.idle.set()

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

    def _start(self, job: Job) -> None:
        job.state = RUNNING
        del self._queued[(id(job.array), job.key)]
        self.in_flight += 1
        self._live += 1
        job.reserved = True
        self.idle.clear()
        task = self.loop.create_task(self._run(job))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    # -- jobs --------------------------------------------------------------------------------
    def _close(self, job: Job) -> None:
        """``job`` takes no more chunks: a tile asking for its object now gets a new job."""
        okey = (id(job.array), job.key)
        if self._open.get(okey) is job:
            del self._open[okey]

    async def _run(self, job: Job) -> None:
        engine = self
        local: list[list[bool]] = []
        keys: list[Hashable] = []  # the members when the job closed, in its plan's order
        names: list[str] = []
        settled: set[Hashable] = set()

        class JobGate:
            async def get(self, key: str, byte_range: ByteRange = None,
                          max_bytes: int | None = None, chunks: int = 1) -> Got | None:
                return await engine.get(job, key, byte_range, max_bytes, chunks)

            async def local(self) -> None:
                local.append(await engine.begin(job))

            def done_local(self) -> None:
                engine.end(job, local.pop())

        class Members:
            def current(self) -> Any:
                return object_plan(job.array, job.key, list(job.members.values()))

            def close(self) -> tuple[Any, list[str]]:
                engine._close(job)
                keys[:] = list(job.members)
                plan = object_plan(job.array, job.key, [job.members[k] for k in keys])
                names[:] = chunk_names(plan)
                return plan, names

        def deliver(i: int, source: Any) -> None:
            settled.add(keys[i])
            self._arrived.append((job, keys[i], source, names[i]))
            self._release()

        def fail(which: list[int], exc: BaseException) -> None:
            failed = [keys[i] for i in which]
            settled.update(failed)
            self._chunks_failed(job, failed, exc)

        try:
            await fetch_object(job.array, Members(), JobGate(), deliver, fail, self._indexes)
        except Stop:
            pass
        except BaseException as exc:  # every chunk not handed on yet fails with it
            self._close(job)
            left = [k for k in job.members if k not in settled]
            settled.update(left)
            self._chunks_failed(job, left, exc)
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise
        finally:
            self._close(job)
            if job.reserved:
                job.reserved = False
                self.in_flight -= 1
            job.state = DONE
            self._live -= 1
            self._unsent(job, [k for k in job.members if k not in settled])
            self._release()

    def _unsent(self, job: Job, keys: list[Hashable]) -> None:
        """Chunks a stopped job never asked for: a tile that (re)joined it meanwhile gets a
        new job for them (and still takes from this one what it delivered)."""
        for key in keys:
            if self._pending.get(key) is job:
                del self._pending[key]
        for task in list(job.waiters):
            for key in keys:
                if key in task.need:
                    self._attach(task, key)

    def _chunks_failed(self, job: Job, keys: list[Hashable], exc: BaseException) -> None:
        for key in keys:
            if self._pending.get(key) is job:
                del self._pending[key]
        wanted = set(keys)
        for task in list(job.waiters):
            if wanted & task.need:
                self._fail(task, exc)

    @staticmethod
    def _detach_if_done(task: Task, job: Job) -> None:
        if job in task.jobs and not any(k in task.need for k in job.members):
            task.jobs.discard(job)
            job.waiters.discard(task)

    # -- arrivals ----------------------------------------------------------------------------
    def _after_io(self) -> None:
        """Decode what arrived (explicit tiles' chunks first, a bounded batch per turn of
        the loop), hand it to the tiles, then fill the free slots."""
        self._turn_posted = False
        if self._arrived:
            self._arrived.sort(key=lambda a: a[0].order() if a[0].waiters else (2,))
            batch, self._arrived = self._arrived[:DECODE_BATCH], self._arrived[DECODE_BATCH:]
            if self._arrived:
                self._release()
            by_array: dict[int, list[tuple[Job, Hashable, Any, str]]] = {}
            for item in batch:
                by_array.setdefault(id(item[0].array), []).append(item)
            for items in by_array.values():
                chunks = decode_chunks(items[0][0].array, self.cache, [i[1] for i in items],
                                       [i[2] for i in items], [i[3] for i in items])
                for (job, key, _, _), chunk in zip(items, chunks):
                    self._arrive(job, key, chunk)
        self._pump()

    def _arrive(self, job: Job, key: Hashable, chunk: Any) -> None:
        if self._pending.get(key) is job:
            del self._pending[key]
        if isinstance(chunk, BaseException):
            self._chunks_failed(job, [key], chunk)
            return
        for task in list(job.waiters):
            if key in task.need:
                task.got[key] = chunk
                task.need.discard(key)
                if not task.need:
                    self._complete(task)
                else:
                    self._detach_if_done(task, job)


__all__ = ["DECODE_BATCH", "Engine"]
