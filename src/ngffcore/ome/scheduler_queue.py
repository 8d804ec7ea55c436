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

from ngffcore.zarr.cache import ChunkCache
from ngffcore.ome.scheduler_fetch import JobRun, ShardIndexes, decode_chunks
from ngffcore.ome.scheduler_slots import Slots
from ngffcore.ome.scheduler_tasks import (DONE, DROPPED, LEAD, QUEUED, REST, RUNNING, Buffers,
                                          Job, Task, TaskKey, assemble, first_tile)

#: chunks decoded per loop iteration at most: a burst of arrivals (a prefetch wave) must
#: not hold the loop, which sends the next requests, for long
DECODE_BATCH = 16
#: a view's first prefetch (the coarser level, the ring ahead of the last pan) is planned
#: this many round trips (the fastest request seen) after the view: a view replaced
#: sooner (a fling's steps, a storm) plans and sends nothing, and the tiles asked for
#: right after ``set_view`` are queued before it; within the issue's 3 round trips
LEAD_RTTS = 1.0
#: ... at most this long (seconds), and this long while no round trip was measured yet
MAX_PREFETCH_DELAY = 0.25
FIRST_PREFETCH_DELAY = 0.05
#: the rest of the ring is planned once the view has lasted this long (seconds): a view the
#: user rests on. Sooner, it would mostly fetch tiles never shown (on the benchmark's
#: pan/zoom trace, about as many bytes again as the tiles shown)
REST_DWELL = 0.6
#: tile arrays are touched in advance (``Buffers``) this long after the engine's last
#: activity, one per turn of the loop: not while requests are being sent
REFILL_DELAY = 0.003


class Engine(Slots):
    """The scheduler's state machine, on the I/O loop ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_in_flight: int, cache: ChunkCache,
                 prefetch: Callable[[Any, Any, Any, int], list[Task]]) -> None:
        super().__init__(loop, max_in_flight)
        self.cache = cache
        # (view, template, previous view, tier) -> that view's prefetch tasks of that tier
        self._prefetch = prefetch
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
        # the view's prefetch tiers still to plan, in order; the loop time of the view
        self._plan: list[int] = []
        self._view_at = 0.0
        self._jobs: set[asyncio.Task[None]] = set()  # running jobs (strong references)
        self._live = 0  # jobs started and not yet ended
        self._arrived: list[tuple[Job, Hashable, Any, str]] = []
        self._ready: list[Task] = []  # explicit tiles found whole in the cache
        self.buffers = Buffers()
        self._refill_at: float | None = None  # when the next array is touched (scheduled)
        self._indexes = ShardIndexes()
        self.view: Any = None
        self.previous: Any = None  # the view before (the direction of a pan)
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
        for op in ops:
            kind = op[0]
            try:
                if kind == "tile":
                    self._submit(op[1])
                elif kind == "cancel":
                    self._cancel(op[1])
                elif kind == "view":
                    self._apply_view(op[1])
                elif kind == "close":
                    for task in list(self.tasks):
                        self._cancel(task)
                    self.view = self.previous = None
                    self._plan = []
                    self.buffers = Buffers()  # the arrays touched in advance go
            except Exception as exc:  # a bug must not leave a future waiting forever
                if kind == "tile":
                    self._fail(op[1], exc)
                self.loop.call_exception_handler({
                    "message": f"ngffcore scheduler: {kind} failed", "exception": exc})
        self._pump()
        if self._ready:
            # tiles found whole in the cache are assembled after the jobs just started have
            # sent their requests (their first steps run first): an assembly releases the
            # interpreter, which the caller still posting tiles may keep for milliseconds
            self.loop.call_soon(self._complete_ready)

    def _complete_ready(self) -> None:
        ready, self._ready = self._ready, []
        for task in ready:
            if not task.done:
                self._complete(task)

    # -- tasks -------------------------------------------------------------------------------
    def _key(self, task: Task) -> TaskKey:
        """Queue order: explicit before prefetch (its first tier before the rest), higher
        priority, coarser level, nearer to the view's centre (physical units), then first
        come."""
        dist = 0.0
        if self.view is not None:
            cy, cx = self.view.centre
            dist = math.hypot(task.centre[0] - cy, task.centre[1] - cx)
        return (0 if task.explicit else 1 + task.tier, -task.priority, -task.level, dist,
                task.seq)

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
            if task.explicit:  # assembled once the requests of the batch are out (_drain)
                self._ready.append(task)
            else:
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
            result = assemble(task, self.buffers)
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
    def _apply_view(self, view: Any) -> None:
        """Cancel every request (queued, or abandon it in flight) that does not intersect
        ``view``, and the prefetch of the view before that was not sent; its own prefetch
        is planned later (``_plan_prefetch``), so the tiles asked for right after it are
        queued first and a view replaced soon plans nothing."""
        self.previous, self.view = self.view, view
        self._view_at = self.loop.time()
        self._plan = [LEAD, REST]
        for task in list(self.tasks):
            if not view.intersects(task.box):
                self._cancel(task)
            elif not task.explicit and not any(j.state == RUNNING for j in task.jobs):
                self._cancel(task)  # the old view's prefetch, not sent: the view changed
        for task in self.tasks:  # distances changed: the whole queue is ordered again
            task.key = self._key(task)
        self._heap = []
        for job in self._queued.values():
            if job.waiters:
                job.entry = job.order()
                self._heap.append((job.entry, job.seq, job))
        heapq.heapify(self._heap)
        self._dirty.clear()

    def _plan_prefetch(self) -> None:
        """Queue the view's prefetch tiers that are due, once no explicit request waits
        for a slot or a response (planning costs the loop time those need); a timer for
        the next one."""
        while self._plan:
            due = self._due(self._plan[0])
            if self.loop.time() < due:
                self._wake_at(due)
                return
            if self._queue_explicit() or self._explicit_busy():
                return  # planned when the explicit requests are answered (_after_io)
            tier = self._plan.pop(0)
            have = {t.ident for t in self.tasks if not t.explicit}
            for task in self._prefetch(self.view, self.template, self.previous, tier):
                if task.ident not in have:
                    self._submit(task)

    def _due(self, tier: int) -> float:
        """When the view's prefetch ``tier`` is due (the round trip as measured by now:
        the view's own tiles may have measured the first)."""
        lead = (FIRST_PREFETCH_DELAY if self.rtt is None
                else min(LEAD_RTTS * self.rtt, MAX_PREFETCH_DELAY))
        return self._view_at + (lead if tier == LEAD else max(lead, REST_DWELL))

    # -- the queue and the slots -------------------------------------------------------------
    def _queue_head(self) -> Job | None:
        """The first queued job (stale heap entries dropped)."""
        heap = self._heap
        while heap:
            order, _, job = heap[0]
            if job.state == QUEUED and order == job.entry:
                return job
            heapq.heappop(heap)
        return None

    def _queue_explicit(self) -> bool:
        job = self._queue_head()
        return job is not None and job.entry is not None and job.entry[0] == 0

    def _refresh(self) -> None:
        """Queued jobs whose waiters changed take their new place in the queue."""
        for job in self._dirty:
            if job.state == QUEUED and job.waiters:
                order = job.order()
                if order != job.entry:
                    job.entry = order
                    heapq.heappush(self._heap, (order, job.seq, job))
        self._dirty.clear()

    def _pump(self) -> None:
        self._refresh()
        if self._plan:
            self._plan_prefetch()
            self._refresh()  # the prefetch jobs just queued
        self._fill()
        if self.buffers.missing() and self._refill_at is None:
            self._refill_at = self.loop.time() + REFILL_DELAY
            self.loop.call_at(self._refill_at, self._refill)
        if not (self._live or self._queued or self._arrived or self._mail or self._plan
                or self._ready):
            self.idle.set()

    def _refill(self) -> None:
        """Touch one tile array in advance (``Buffers``), then the next at the next turn of
        the loop; later while arrivals wait or tiles are being posted and sent."""
        if self._arrived or self._mail or self._ready or self._queue_explicit():
            self._refill_at = self.loop.time() + REFILL_DELAY
            self.loop.call_at(self._refill_at, self._refill)
        elif self.buffers.refill():
            self.loop.call_soon(self._refill)
        else:
            self._refill_at = None

    def _fill(self) -> None:
        """Free slots to the next requests: explicit ones first (a running job's next
        request before a queued job), taking a slot from prefetch if need be; then
        prefetch, within its share, while no explicit request waits for a slot or a
        response."""
        prefetch_ok: bool | None = None  # computed once needed, kept while only prefetch goes
        counted = 0
        while True:
            running = self._slot_head()
            job = self._queue_head()
            if running is None and job is None:
                return
            queued_class = 2 if job is None or job.entry is None else min(job.entry[0], 1)
            running_class = 2 if running is None else 0 if running.explicit else 1
            if running_class <= queued_class:
                klass, job = running_class, None
            else:
                klass = queued_class
            if klass == 0:
                if job is not None and not self._head_start(job):
                    return
                if not (self._free() or self._yield_prefetch()):
                    return
            else:
                if prefetch_ok is None:
                    prefetch_ok = not self._explicit_busy()
                    counted = self._prefetch_counted()
                if not (prefetch_ok and self._free() and counted < self.prefetch_share):
                    return
                counted += 1
            if job is None:
                self._grant_head()
            else:
                heapq.heappop(self._heap)
                self._start(job)

    def _start(self, job: Job) -> None:
        job.state = RUNNING
        del self._queued[(id(job.array), job.key)]
        self.in_flight += 1
        self._live += 1
        self._running.add(job)
        job.reserved = True
        self.idle.clear()
        task = self.loop.create_task(JobRun(self, job).run())
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    # -- jobs --------------------------------------------------------------------------------
    def _close(self, job: Job) -> None:
        """``job`` takes no more chunks: a tile asking for its object now gets a new job."""
        okey = (id(job.array), job.key)
        if self._open.get(okey) is job:
            del self._open[okey]

    def _ended(self, job: Job, unsent: list[Hashable]) -> None:
        """``job``'s run ended (``scheduler_fetch.JobRun``)."""
        self._close(job)
        if job.reserved:
            job.reserved = False
            self.in_flight -= 1
        job.state = DONE
        self._live -= 1
        self._running.discard(job)
        self._unsent(job, unsent)
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
            self._arrived.sort(key=lambda a: a[0].order() if a[0].waiters else (3,))
            batch, self._arrived = first_tile(self._arrived, DECODE_BATCH)
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
