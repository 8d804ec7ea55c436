"""The request scheduler's slots (the base of its engine, ``scheduler_queue.py``): how many
requests are in flight, counted against ``max_in_flight`` or abandoned, prefetch's share of
them, which request of a running job gets the next free slot, when a burst's first tile
goes ahead of the others, the engine's timer, and each request's counters. On the I/O loop
only.

Prefetch (jobs no explicit tile waits for) is strictly below every explicit request: it
gets a slot only while no explicit job is queued, waiting for a slot or has a request in
flight, and holds at most ``prefetch_share`` (a quarter of ``max_in_flight``, at least 1)
counted slots. An explicit request finding every slot taken while prefetch holds some takes
one of them: that prefetch request stops counting (it runs on, its bytes fill the cache,
as an abandoned one's do; ``stats["prefetch_yielded"]``), within the bound on abandoned
requests running.
"""

from __future__ import annotations

import asyncio
import itertools

from ngffcore.store.protocol import ByteRange, Got
from ngffcore.ome.scheduler_fetch import Stop
from ngffcore.ome.scheduler_tasks import Job, Task, TaskKey

#: when explicit requests start with none in flight, the first tile's go alone and the
#: others this long after (seconds): the first tile's responses are read, decoded and
#: handed on before the others' land (all at once, their threads and decoding would
#: contend with it for the interpreter and the cores)
HEAD_START = 0.002


class Slots:
    """Requests in flight: ``in_flight`` counted (at most ``max_in_flight``, prefetch at
    most ``prefetch_share`` of them), ``running`` all of them, ``abandoned_running`` those
    that stopped counting (abandoned, or prefetch that yielded its slot; at most as many
    more)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_in_flight: int) -> None:
        self.loop = loop
        self.max_in_flight = max_in_flight
        self.prefetch_share = max(1, max_in_flight // 4)
        self._seq = itertools.count()
        # requests of running jobs waiting for a slot (within their class, explicit or
        # prefetch, they go before any queued job); a few at most: a shard's data requests
        self._slots: list[tuple[TaskKey, int, asyncio.Future[None], Job]] = []
        self._running: set[Job] = set()  # jobs started and not ended
        self.in_flight = 0  # counted requests (abandoned ones are not)
        self.running = 0  # every request in flight, abandoned ones too
        self.abandoned_running = 0  # requests in flight that count no more
        self.rtt: float | None = None  # the fastest request seen (seconds)
        self._turn_posted = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._head: Task | None = None  # the tile whose requests go first (HEAD_START)
        self._head_until = 0.0
        self.stats: dict[str, int] = dict.fromkeys(
            ("sent", "cancelled", "abandoned", "cache_hits", "bytes", "coalesced", "shared",
             "prefetched", "prefetch_yielded", "tiles", "tiles_cancelled", "failed"), 0)

    def _after_io(self) -> None:
        """What the next turn of the loop does after requests ended (the engine's)."""
        raise NotImplementedError

    def _pump(self) -> None:
        """Start what the free slots allow (the engine's)."""
        raise NotImplementedError

    def _wake_at(self, when: float) -> None:
        """Pump again at loop time ``when`` (one timer: the earliest asked for)."""
        if self._timer is not None:
            if self._timer_at <= when:
                return
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _head_start(self, job: Job) -> bool:
        """Whether queued explicit ``job`` may start now (``HEAD_START``): a first tile's
        requests are sent ahead of the others of their burst."""
        now = self.loop.time()
        if now < self._head_until:
            if self._head in job.waiters:
                return True
            self._wake_at(self._head_until)
            return False
        if self._explicit_busy():
            return True
        self._head = min((t for t in job.waiters if t.explicit), key=lambda t: t.key,
                         default=None)
        self._head_until = now + HEAD_START
        return True

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

    def _free(self) -> bool:
        """A slot is free: fewer than ``max_in_flight`` counted requests, and fewer than
        that many more abandoned ones still running (a storm of views must not pile up
        requests without bound)."""
        return (self.in_flight < self.max_in_flight
                and self.in_flight + self.abandoned_running < 2 * self.max_in_flight)

    def _explicit_busy(self) -> bool:
        """An explicit request is waiting for a slot or for its response: prefetch waits
        (the queue's head is the engine's to look at)."""
        if any(job.explicit for _, _, fut, job in self._slots if not fut.done()):
            return True
        return any(job.explicit and job.counted() for job in self._running)

    def _prefetch_counted(self) -> int:
        return sum(job.counted() for job in self._running if not job.explicit)

    def _yield_prefetch(self) -> bool:
        """Every slot is taken and an explicit request wants one: a prefetch request in
        flight stops counting (it runs on; its bytes fill the cache), or a prefetch job
        that has not sent yet gives its slot back. False if none can (or the bound on
        requests running that count no more is reached)."""
        if self.in_flight + self.abandoned_running >= 2 * self.max_in_flight:
            return False
        for job in self._running:
            if job.explicit:
                continue
            if job.reserved:  # its first request waits for a slot again, as prefetch
                job.reserved = False
                self.in_flight -= 1
                return True
            for get in job.gets:
                if self._stop_counting(get):
                    self.stats["prefetch_yielded"] += 1
                    return True
        return False

    def _stop_counting(self, get: list[bool]) -> bool:
        """A request in flight runs on uncounted (abandoned or yielded); False if it was not
        counted."""
        if not get[0]:
            return False
        get[0] = False
        self.in_flight -= 1
        self.abandoned_running += 1
        return True

    def _slot_head(self) -> Job | None:
        """The running job whose next request is first in line for a slot: explicit ones
        first (a job's class is that of its waiters now), then by queue order."""
        self._slots = [entry for entry in self._slots if not entry[2].done()]
        if not self._slots:
            return None
        best = min(self._slots, key=lambda e: (not e[3].explicit, e[0], e[1]))
        self._slots.remove(best)
        self._slots.insert(0, best)
        return best[3]

    def _grant_head(self) -> None:
        """The request :meth:`_slot_head` named gets a slot."""
        _, _, fut, _ = self._slots.pop(0)
        self.in_flight += 1
        fut.set_result(None)

    def _abandon(self, job: Job) -> None:
        """Nobody waits for ``job`` any more: its requests in flight stop counting (they
        run on), its reserved slot and waits for one end (nothing more is sent)."""
        for get in job.gets:
            if self._stop_counting(get):
                self.stats["abandoned"] += 1
        if job.reserved:  # started, nothing sent yet
            job.reserved = False
            self.in_flight -= 1
            self.stats["cancelled"] += 1
        for fut in job.slot_waits:
            if not fut.done():
                fut.set_exception(Stop())
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
        # in line with the other running jobs' requests (and, by class, the queue): the
        # engine grants it now if the slots allow
        fut: asyncio.Future[None] = self.loop.create_future()
        job.slot_waits.append(fut)
        self._slots.append((job.order(), next(self._seq), fut, job))
        self._pump()
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
        """A request of ``job`` starts (after a slot): counted until it ends or stops
        counting. The token ends it (:meth:`end`)."""
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
