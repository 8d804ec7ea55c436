"""The request scheduler's units (``scheduler.py`` has the design): a tile request
(:class:`Task`, made of :class:`Read` s, one per channel run) and a fetch job (:class:`Job`:
chunks of one stored object for the tasks waiting on it); and a tile's assembly from its
chunks. Used on the I/O loop thread only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any, Callable

import numpy as np

from ngffcore import _core
from ngffcore.zarr.array import Array
from ngffcore.zarr.cache import MISSING

QUEUED, RUNNING, DONE, DROPPED = range(4)
#: a tile's place in the queue: (prefetch?, -priority, -level, distance to the view, seq)
TaskKey = tuple[int, float, int, float, int]


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
                 "size", "channels")

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


def assemble(task: Task) -> np.ndarray:
    """The tile from its chunks: per read one native scatter, as a read through the
    cache finishes (``CachedRead.scatter``)."""
    req = task.request
    out = np.empty(req.shape, dtype=req.array.dtype)
    for read in task.reads:
        target, block = req._target(read.rows, out)
        chunks = [task.got[k] for k in read.keys]
        _core.decode_batch(read.array.metadata.decoded_pipeline,
                           Array._core_view(read.sel, target), read.plan.boxes,
                           [None if c is MISSING else c for c in chunks],
                           [str(k) for k in read.plan.keys])
        req._place(block, read.rows, out)
    return out


__all__ = ["DONE", "DROPPED", "Job", "QUEUED", "RUNNING", "Read", "Task", "TaskKey",
           "assemble"]
