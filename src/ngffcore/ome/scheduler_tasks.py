"""The request scheduler's units (``scheduler.py`` has the design): a tile request
(:class:`Task`, made of :class:`Read` s, one per channel run) and a fetch job (:class:`Job`:
chunks of one stored object for the tasks waiting on it); and a tile's assembly from its
chunks. Used on the I/O loop thread only.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Hashable
from typing import Any, Callable

import numpy as np

from ngffcore import _core
from ngffcore.zarr.array import Array
from ngffcore.zarr.cache import MISSING

QUEUED, RUNNING, DONE, DROPPED = range(4)
#: a tile's place in the queue: (class, -priority, -level, distance to the view, seq); class
#: 0 explicit, 1 + tier for prefetch (:data:`LEAD`, :data:`REST`)
TaskKey = tuple[int, float, int, float, int]
#: prefetch tiers: what a view's next move most likely shows (the coarser level, the ring
#: ahead of the last pan), and the rest of the ring
LEAD, REST = 0, 1


class Read:
    """One read of a tile (one channel run): the level array, the core's view of it, the
    plan of its chunks and their cache keys."""

    __slots__ = ("array", "sel", "plan", "keys", "rows")

    def __init__(self, array: Array, sel: Any, plan: Any, keys: list[Hashable],
                 rows: list[int]) -> None:
        self.array, self.sel, self.plan, self.keys, self.rows = array, sel, plan, keys, rows


class Task:
    """A tile request: explicit (``fut`` is the caller's) or prefetch (``fut`` None: its
    chunks end in the cache, nothing is assembled). ``box``: its physical extent per axis
    name; ``centre``: of its y/x extent; ``level``: its level's index (coarser: larger)."""

    __slots__ = ("seq", "fut", "priority", "level", "box", "centre", "reads", "request",
                 "finish", "need", "got", "where", "jobs", "done", "key", "ident", "label",
                 "size", "channels", "tier")

    def __init__(self, fut: Any, priority: float, level: int, box: dict[str, tuple[float, float]],
                 reads: list[Read], request: Any, finish: Callable[[np.ndarray], Any] | None,
                 ident: Hashable = None) -> None:
        self.seq = 0
        self.fut = fut
        self.priority = priority
        self.level = level
        self.box = box
        y, x = box["y"], box["x"]
        self.centre = ((y[0] + y[1]) / 2, (x[0] + x[1]) / 2)
        self.reads = reads
        self.request = request  # the TileRequest: result shape, channel placement
        self.finish = finish  # e.g. compositing, for render()
        self.ident = ident  # prefetch: what the tile is, to keep it across views
        self.label: str | None = None
        self.size = 0
        self.channels: tuple[int, ...] | None = None
        self.tier = LEAD  # prefetch only
        self.need: set[Hashable] = set()
        self.got: dict[Hashable, Any] = {}
        #: chunk key -> (array, object key, inner row): what a job for it needs
        self.where: dict[Hashable, tuple[Array, str, tuple[int, ...]]] = {}
        self.jobs: set[Job] = set()
        self.done = False
        self.key: TaskKey = (0, 0.0, 0, 0.0, 0)

    @property
    def explicit(self) -> bool:
        return self.fut is not None


class Job:
    """Fetching some chunks of one stored object (``members``: cache key -> inner row) for
    the tasks in ``waiters``. Queued while it may still take more members of its object
    (tiles queued together share its requests and its coalesced ranges)."""

    __slots__ = ("seq", "array", "key", "members", "waiters", "state", "reserved", "gets",
                 "slot_waits", "entry", "sent")

    def __init__(self, seq: int, array: Array, key: str) -> None:
        self.seq = seq
        self.array = array
        self.key = key
        self.members: dict[Hashable, tuple[int, ...]] = {}
        self.waiters: set[Task] = set()
        self.state = QUEUED
        self.reserved = False  # holds the slot the queue gave it, for its first request
        self.gets: list[list[bool]] = []  # per request in flight: [counted against the limit]
        self.slot_waits: list[asyncio.Future[None]] = []
        self.entry: TaskKey | None = None  # its key in the queue (stale entries are skipped)
        self.sent = 0

    def order(self) -> TaskKey:
        return min(t.key for t in self.waiters)

    @property
    def explicit(self) -> bool:
        """Some explicit tile waits for it (else it is prefetch, below every explicit
        request)."""
        return any(t.fut is not None for t in self.waiters)

    def counted(self) -> int:
        """Its requests that count against ``max_in_flight`` now (a reserved slot too)."""
        return self.reserved + sum(1 for get in self.gets if get[0])


class Buffers:
    """Arrays for tiles, their pages touched ahead of time. A new array's pages are mapped
    on its first write, which for a 512 x 512 tile of three channels costs ~0.4 ms, eight
    times the copy into it: on the way of every tile, and a first tile's. So the engine
    keeps as many arrays of each tile shape as its last burst of tiles took (at most
    ``limit`` bytes) touched in advance while it is idle (:meth:`refill`), and
    :meth:`take` hands them out."""

    def __init__(self, limit: int = 32 << 20) -> None:
        self.limit = limit
        self._spare: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self._taken: dict[tuple[tuple[int, ...], str], int] = {}  # since the last refill

    def take(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        key = (tuple(shape), dtype.str)
        self._taken[key] = self._taken.get(key, 0) + 1
        spare = self._spare.get(key)
        return spare.pop() if spare else np.empty(shape, dtype=dtype)

    def missing(self) -> bool:
        return bool(self._taken)

    def refill(self) -> bool:
        """Touch one more array for the shape most taken (the others are dropped: shapes
        change with the tiles asked for); False once nothing is missing."""
        if not self._taken:
            return False
        key = max(self._taken, key=self._taken.__getitem__)
        for other in [k for k in self._spare if k != key]:
            del self._spare[other]
        spare = self._spare.setdefault(key, [])
        shape, dtype = key
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if len(spare) >= self._taken[key] or (len(spare) + 1) * nbytes > self.limit:
            self._taken.clear()
            return False
        buf = np.empty(shape, dtype=dtype)
        buf.reshape(-1).view(np.uint8)[::4096] = 0  # one write per page maps them all
        spare.append(buf)
        return True


def first_tile(arrived: list[tuple[Job, Hashable, Any, str]], batch: int
               ) -> tuple[list[tuple[Job, Hashable, Any, str]],
                          list[tuple[Job, Hashable, Any, str]]]:
    """This turn's chunks to decode (``arrived`` in queue order) and the rest: the chunks
    that complete the first explicit tile in line, alone when they have all arrived (it is
    handed on before the others are decoded); else the first ``batch``."""
    tiles = [t for t in arrived[0][0].waiters if t.explicit]
    if tiles:
        need = min(tiles, key=lambda t: t.key).need
        mine = [a for a in arrived if a[1] in need]
        if {a[1] for a in mine} == need and len(mine) < len(arrived):
            return mine, [a for a in arrived if a[1] not in need]
    return arrived[:batch], arrived[batch:]


def assemble(task: Task, buffers: Buffers | None = None) -> np.ndarray:
    """The tile from its chunks: per read one native scatter, as a read through the
    cache finishes (``CachedRead.scatter``); into an array of ``buffers`` if given."""
    req = task.request
    dtype = np.dtype(req.array.dtype)
    out = (np.empty(req.shape, dtype=dtype) if buffers is None
           else buffers.take(req.shape, dtype))
    for read in task.reads:
        target, block = req._target(read.rows, out)
        chunks = [task.got[k] for k in read.keys]
        _core.decode_batch(read.array.metadata.decoded_pipeline,
                           Array._core_view(read.sel, target), read.plan.boxes,
                           [None if c is MISSING else c for c in chunks],
                           [str(k) for k in read.plan.keys])
        req._place(block, read.rows, out)
    return out


__all__ = ["Buffers", "DONE", "DROPPED", "Job", "LEAD", "QUEUED", "REST", "RUNNING", "Read",
           "Task", "TaskKey", "assemble", "first_tile"]
