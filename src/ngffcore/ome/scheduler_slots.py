"""The request scheduler's slots (the base of its engine, ``scheduler_queue.py``): how many
requests are in flight, counted against ``max_in_flight`` or abandoned, which request of a
running job gets the next free slot, and each request's counters. On the I/O loop only.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from ngffcore.store.protocol import ByteRange, Got
from ngffcore.ome.scheduler_fetch import Stop
from ngffcore.ome.scheduler_tasks import Job, TaskKey


class Slots:
    """Requests in flight: ``in_flight`` counted (at most ``max_in_flight``), ``running``
    all of them, ``abandoned_running`` those nobody waits for (at most as many more)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_in_flight: int) -> None:
        self.loop = loop
        self.max_in_flight = max_in_flight
        self._seq = itertools.count()
        # requests of running jobs waiting for a slot (they go before any queued job)
        self._slots: list[tuple[TaskKey, int, asyncio.Future[None], Job]] = []
        self._slot_waiting = 0  # of those, the ones still waiting
        self.in_flight = 0  # counted requests (abandoned ones are not)
        self.running = 0  # every request in flight, abandoned ones too
        self.abandoned_running = 0  # requests in flight that nobody waits for
        self.rtt: float | None = None  # the fastest request seen (seconds)
        self._turn_posted = False
        self.stats: dict[str, int] = dict.fromkeys(
            ("sent", "cancelled", "abandoned", "cache_hits", "bytes", "coalesced", "shared",
             "prefetched", "tiles", "tiles_cancelled", "failed"), 0)

    def _after_io(self) -> None:
        """What the next turn of the loop does after requests ended (the engine's)."""
        raise NotImplementedError

    def _free(self) -> bool:
        """A slot is free: fewer than ``max_in_flight`` counted requests, and fewer than
        that many more abandoned ones still running (a storm of views must not pile up
        requests without bound)."""
        return (self.in_flight < self.max_in_flight
                and self.in_flight + self.abandoned_running < 2 * self.max_in_flight)

    def _grant(self) -> None:
        """Free slots go to running jobs' waiting requests first."""
        while self._slots and (self._slots[0][2].done() or self._free()):
            _, _, fut, job = heapq.heappop(self._slots)
            if not fut.done():
                self._slot_waiting -= 1
                self.in_flight += 1
                fut.set_result(None)

    def _abandon(self, job: Job) -> None:
        """Nobody waits for ``job`` any more: its requests in flight stop counting (they
        run on), its reserved slot and waits for one end (nothing more is sent)."""
        for get in job.gets:
            if get[0]:
                get[0] = False
                self.in_flight -= 1
                self.abandoned_running += 1
                self.stats["abandoned"] += 1
        if job.reserved:  # started, nothing sent yet
            job.reserved = False
            self.in_flight -= 1
            self.stats["cancelled"] += 1
        for fut in job.slot_waits:
            if not fut.done():
                fut.set_exception(Stop())
                self._slot_waiting -= 1
                self.stats["cancelled"] += 1

    async def _acquire(self, job: Job) -> None:
        """A slot for one more request of ``job`` (Stop: nobody waits for it)."""
        if job.reserved:
            job.reserved = False
            if job.waiters:
                return
            self.in_flight -= 1
            raise Stop
        if not job.waiters:
            raise Stop
        if self._free() and not self._slot_waiting:
            self.in_flight += 1
            return
        # a job already running goes before any queued one
        fut: asyncio.Future[None] = self.loop.create_future()
        job.slot_waits.append(fut)
        self._slot_waiting += 1
        heapq.heappush(self._slots, (job.order(), next(self._seq), fut, job))
        try:
            await fut
        finally:
            job.slot_waits.remove(fut)
        if not job.waiters:  # abandoned between the grant and now
            self.in_flight -= 1
            raise Stop

    def _release(self) -> None:
        """Something arrived or a slot came free: decode and hand on at the next turn of
        the loop (so requests done together free their slots before the queue is looked
        at)."""
        if not self._turn_posted:
            self._turn_posted = True
            self.loop.call_soon(self._after_io)

    async def begin(self, job: Job, chunks: int = 1) -> list[bool]:
        """A request of ``job`` starts (after a slot): counted until it ends or the job is
        abandoned. The token ends it (:meth:`end`)."""
        await self._acquire(job)
        counted = [True]
        job.gets.append(counted)
        self.running += 1
        job.sent += 1
        self.stats["sent"] += 1
        self.stats["coalesced"] += max(chunks - 1, 0)
        return counted

    def end(self, job: Job, counted: list[bool]) -> None:
        job.gets.remove(counted)
        self.running -= 1
        if counted[0]:
            self.in_flight -= 1
        else:
            self.abandoned_running -= 1
        self._release()

    async def get(self, job: Job, key: str, byte_range: ByteRange, max_bytes: int | None,
                  chunks: int) -> Got | None:
        """One GET of ``job`` (the :class:`~ngffcore.ome.scheduler_fetch.Gate`). Never
        cancelled by the scheduler: abandoning a job stops counting this request, not it."""
        counted = await self.begin(job, chunks)
        sent = self.loop.time()
        try:
            got = await job.array.store.get(key, byte_range, max_bytes=max_bytes)
        finally:
            self.end(job, counted)
        took = self.loop.time() - sent
        self.rtt = took if self.rtt is None else min(self.rtt, took)
        if got is not None:
            self.stats["bytes"] += memoryview(got.data).nbytes
        return got


__all__ = ["Slots"]
