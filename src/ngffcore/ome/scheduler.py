"""A request scheduler for viewers: :class:`Scheduler` (``Image.scheduler()``), one per opened
image, shared by its levels, label images and channels. Tiles are asked for with a priority
and come back as ``concurrent.futures.Future`` objects; ``set_view`` says what is visible,
which cancels what is not and queues the surroundings; ``max_in_flight`` bounds the object
requests (GETs) in flight.

Design
------
*The unit queued is a fetch job: the chunks one tile read needs from ONE stored object* (a
chunk, or inner chunks of one shard), planned from each tile's selection with the read
pipeline's own planner (``zarr/plan.py``) — not the tile. Only at that grain can the
scheduler count GETs against ``max_in_flight``, drop a request before it is sent, and share
one request between tiles: a tile asking for a chunk that a job already brings waits for
that job; a tile needing other inner chunks of a shard whose job is still queued (or still
waiting for the shard's index) joins that job, so their ranges are coalesced into the same
requests (``stats["coalesced"]``); two jobs on one shard send one index request. Chunks
found in the cache (``stats["cache_hits"]``) are never queued. A job's bytes are decoded on
arrival into a slab and kept in the cache (as a read through the cache would), and handed
to the tiles waiting for them; when a tile has all its chunks it is assembled from them, one
native scatter per channel run (what a read that hits the cache does). A chunk that fails
(a request error, corrupt bytes) fails only the tiles that need it, with its error.

*Order*: explicit tiles before prefetch; then higher ``priority``; then coarser level
before finer; then nearer first (tile centre to view centre, in physical units, so label
images and other levels compare); then first come. A running job's next request (a shard's
ranges after its index) goes before any queued job of its class (explicit or prefetch).
When explicit requests start while none is in flight, the first tile's go alone and the
others 2 ms after: its responses are read, decoded and handed on before theirs land and
compete with it for the interpreter and the cores (the time to a view's first tile). Tiles
found whole in the cache are assembled after the requests of their batch are out, into
arrays whose pages were touched while the engine was idle (a new array's page faults cost
eight times the copy into it).

*Cancel and abandon*: a tile's future cancelled (``cancel``, ``Future.cancel``, ``set_view``,
``close``) leaves its jobs. A queued job nobody waits for is dropped: nothing is sent
(``stats["cancelled"]`` counts such jobs, each at least one request never sent). A running
job nobody waits for is abandoned: requests already sent are never cancelled (the network
call runs on; its bytes are decoded into the cache), but they stop counting against
``max_in_flight`` (``stats["abandoned"]`` counts them), and the job sends nothing more. A
tile asking for an abandoned job's chunks takes it back. Abandoned requests still running
are bounded too, by as many again as ``max_in_flight``: beyond that a new request waits
for one of them, so a storm of views cannot pile up requests (nor the threads and
connections that carry them) without bound.

*Prefetch* (``set_view``) is strictly below every explicit tile. It is planned lazily, on
the loop, once due and once no explicit request is queued, waiting for a slot or for its
response: the tiles asked for right after ``set_view`` are queued (and sent) first, and a
view replaced before its prefetch is due plans and sends nothing. It then holds at most a
quarter of ``max_in_flight`` (at least 1), only while no explicit request waits; an
explicit request finding every slot taken takes one from prefetch (that request runs on,
its bytes fill the cache, but it stops counting: ``stats["prefetch_yielded"]``). A new view
drops the prefetch not sent yet (and, as for any request, abandons what it does not
intersect). A view's prefetch comes in two tiers, each in the queue's order: first, one
round trip (the fastest request seen; at most 0.25 s, 0.05 s before any was measured)
after the view, the view's region on the next coarser level and the ring tiles ahead of
the last pan (the previous view on the same level and plane; within 60 degrees of its
direction and half a tile of the view's edge) — what the next step most likely shows;
then, once the view has lasted 0.6 s (a view the user rests on), the rest of the ring.
Sooner, the whole ring would mostly bring tiles never shown: on the benchmark's pan/zoom
trace, about half as many bytes again as the tiles shown (now under a tenth).

Modules: this one (the API, views), ``scheduler_plan.py`` (tile requests, views and
their prefetch tiles), ``scheduler_tasks.py`` (tiles, jobs, assembly),
``scheduler_queue.py`` (the engine: mailbox, queue, prefetch plans, arrivals),
``scheduler_slots.py`` (its slot accounting and pacing), ``scheduler_fetch.py`` (one job's
requests, on the read pipeline's sharding and source helpers, and decoding).

*Threads*: the engine (``scheduler_queue.py``) lives on ngffcore's I/O loop thread and only
there; every public method can be called from any thread: it checks its arguments on the
calling thread (raising the specific :class:`~ngffcore.errors.NgffError` at once) and posts
an operation that the loop applies in order, in batches (tiles asked for together are
planned together; a storm of views is applied as one cancel pass each, and only the last
may plan prefetch). Futures are completed on the I/O loop thread, so callbacks added to them
must not block. Decoding and assembly are native calls made on the loop thread (the GIL
released; per turn of the loop the chunks that complete the first tile in line, else at
most 16): no thread is started per request or per view. The engine makes no cyclic garbage
per request (no class or closure cycle per job): the collector's full passes, which stall
every thread for tens of milliseconds, stay rare.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import numbers
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ngffcore.errors import ArgumentError, ClosedError, SelectionError
from ngffcore.ome.scheduler_plan import View, make_task, physical, prefetch_tasks
from ngffcore.ome.scheduler_queue import Engine
from ngffcore.ome.scheduler_tasks import Task
from ngffcore.store.ioloop import run_on_io_loop
from ngffcore.zarr.cache import ChunkCache

if TYPE_CHECKING:
    from ngffcore.ome.image import Image

async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def _plane(image: "Image", name: str, value: int | None, level: int) -> int | None:
    """A t/z index checked as ``Image.tile`` checks it (None: the default plane)."""
    geometry = image.geometry
    axis = geometry.index(name)
    if axis is None:
        if value not in (None, 0):
            raise SelectionError(f"the image has no {name} axis: {name} must be None or 0")
        return None
    plane = geometry.default_plane(name, level) if value is None else int(value)
    n = image.levels[level].shape[axis]
    if plane is None or not 0 <= plane < n:
        raise SelectionError(f"{image.axes[axis].name}={plane} out of range [0, {n})")
    return plane


class Scheduler:
    """Tiles of one image (its levels, label images and channels) through one queue: see
    the module's documentation for the design. Made by :meth:`Image.scheduler`.

    ``max_in_flight``: object requests (GETs) in flight at most (abandoned ones do not
    count); ``cache``: the :class:`ChunkCache` chunks come from and go to (default: the
    image's; a new one of the default size if the image has none). Thread-safe; a context
    manager (``close`` on exit)."""

    def __init__(self, image: "Image", max_in_flight: int = 64, cache: ChunkCache | None = None
                 ) -> None:
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, numbers.Integral) \
                or max_in_flight < 1:
            raise ArgumentError(f"max_in_flight must be an int >= 1, not {max_in_flight!r}")
        if cache is not None and not isinstance(cache, ChunkCache):
            raise ArgumentError(f"cache must be a ChunkCache or None, not "
                                f"{type(cache).__name__}")
        self.image: "Image" = image
        self.cache: ChunkCache = cache if cache is not None else image.cache or ChunkCache()
        self._lock: threading.Lock = threading.Lock()
        self._closed: bool = False
        self._loop: asyncio.AbstractEventLoop = run_on_io_loop(_running_loop())
        self._engine: Engine = Engine(self._loop, int(max_in_flight), self.cache,
                                      self._prefetch)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"max_in_flight={self._engine.max_in_flight}"
        return f"<ngffcore.Scheduler {self.image.url} {state}>"

    def __enter__(self) -> "Scheduler":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tiles -------------------------------------------------------------------------------
    def tile(self, level: int, y: int, x: int, *, channels: Sequence[int] | None = None,
             t: int | None = None, z: int | None = None, size: int = 512,
             priority: float = 0, label: str | None = None) -> concurrent.futures.Future[Any]:
        """Tile ``(y, x)`` (tile indices) of a grid of ``size``-pixel tiles over ``level``:
        a future of its ``(channels, h, w)`` pixels, exactly as :meth:`Image.tile` gives
        them (edge tiles clipped; ``t``/``z`` default to the image's default plane;
        ``channels`` to all). ``priority``: higher goes first. ``label``: the name of a
        label image of this image (``Image.labels``): the tile is read from that label
        image's ``level``, on its own grid, channels and planes (its checks apply), through
        this scheduler's queue and cache. Out-of-range tiles, levels, planes or channels and
        an unknown label raise :class:`SelectionError` here; a closed scheduler
        :class:`ClosedError`. A chunk that fails fails the future with its error."""
        self._check_open("tile")
        return self._post(self._target(label), level, y, x, size, t, z, channels, priority,
                          label, None)

    async def tile_async(self, level: int, y: int, x: int, *,
                         channels: Sequence[int] | None = None, t: int | None = None,
                         z: int | None = None, size: int = 512, priority: float = 0,
                         label: str | None = None) -> np.ndarray:
        """:meth:`tile` awaited; cancelling the await cancels the request."""
        self._check_open("tile_async")
        target = await self._target_async(label)
        return await asyncio.wrap_future(self._post(target, level, y, x, size, t, z, channels,
                                                    priority, label, None))

    def render(self, level: int, y: int, x: int, *, channels: Sequence[int] | None = None,
               t: int | None = None, z: int | None = None, size: int = 512,
               priority: float = 0, label: str | None = None, **style: Any
               ) -> concurrent.futures.Future[Any]:
        """:meth:`tile` composited to ``(h, w, 4)`` uint8 RGBA as :meth:`Image.render_tile`
        composites it (``channels`` default to omero's active ones; ``style``: ``windows``,
        ``colors``, ``inverted``, ``gamma``)."""
        self._check_open("render")
        target = self._target(label)
        chans = target._drawn_channels(channels)
        return self._post(target, level, y, x, size, t, z, chans, priority, label,
                          lambda pixels: target._composite(pixels, chans, style))

    async def render_async(self, level: int, y: int, x: int, *,
                           channels: Sequence[int] | None = None, t: int | None = None,
                           z: int | None = None, size: int = 512, priority: float = 0,
                           label: str | None = None, **style: Any) -> np.ndarray:
        """:meth:`render` awaited."""
        self._check_open("render_async")
        target = await self._target_async(label)
        chans = target._drawn_channels(channels)
        return await asyncio.wrap_future(self._post(
            target, level, y, x, size, t, z, chans, priority, label,
            lambda pixels: target._composite(pixels, chans, style)))

    def _post(self, target: "Image", level: int, y: int, x: int, size: int, t: int | None,
              z: int | None, channels: Sequence[int] | None, priority: float,
              label: str | None, finish: Callable[[np.ndarray], Any] | None
              ) -> concurrent.futures.Future[Any]:
        if isinstance(priority, bool) or not isinstance(priority, numbers.Real) \
                or not math.isfinite(priority):
            raise ArgumentError(f"priority must be a finite number, not {priority!r}")
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        task = make_task(target, level, y, x, size, t, z, channels, float(priority), fut,
                         finish)
        task.label = label
        engine = self._engine

        def cancelled(f: concurrent.futures.Future[Any]) -> None:
            if f.cancelled() and not task.done:
                try:
                    engine.post("cancel", task)
                except RuntimeError:  # the I/O loop has closed (exit): nothing runs
                    pass

        fut.add_done_callback(cancelled)
        engine.post("tile", task)
        return fut

    def _target(self, label: str | None) -> "Image":
        if label is None:
            return self.image
        return self._label(label, self.image.labels)

    async def _target_async(self, label: str | None) -> "Image":
        if label is None:
            return self.image
        return self._label(label, await self.image.labels_async())

    def _label(self, name: str, labels: Any) -> "Image":
        if name not in labels:
            raise SelectionError(f"{self.image.url}: no label image {name!r} (labels: "
                                 f"{sorted(labels) or 'none'})")
        target: "Image" = labels[name]
        return target

    # -- the view ----------------------------------------------------------------------------
    def set_view(self, level: int, y0: int, y1: int, x0: int, x1: int, *,
                 t: int | None = None, z: int | None = None) -> None:
        """What is visible now: the half-open pixel box ``[y0, y1) × [x0, x1)`` of
        ``level`` at plane ``t``/``z`` (default: the image's default plane); it may extend
        past the level's edges. Fetches nothing visible itself. Every request (explicit or
        prefetch, any level or label image) whose physical extent does not intersect the
        view's (on y, x, and the t/z plane) is cancelled: queued, nothing is sent; in
        flight, it is abandoned (its future cancelled, its bytes still fill the cache).
        The prefetch of the view before that was not sent yet is dropped. Then queues this
        view's prefetch, below every explicit tile (see the module's documentation): the
        ring of one tile (of the last explicitly requested size and channels, else 512 and
        all) around the view, and the view's region on the next coarser level; the coarser
        level and the ring tiles ahead of the last pan first, one round trip after the
        view, once the explicit tiles are answered; the rest of the ring once the view has
        lasted 0.6 s. A missing level, a plane out of range or an empty box raise
        :class:`SelectionError`; a closed scheduler :class:`ClosedError`."""
        self._check_open("set_view")
        image = self.image
        index = image.geometry.check_level(level)
        box: list[int] = []
        for v in (y0, y1, x0, x1):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise ArgumentError(f"view bounds must be integers, not {v!r}")
            box.append(int(v))
        if not (box[0] < box[1] and box[2] < box[3]):
            raise SelectionError(f"empty view box y=[{y0}, {y1}) x=[{x0}, {x1})")
        iy, ix = image.geometry.yx("view")
        spans = {iy: (box[0], box[1]), ix: (box[2], box[3])}
        planes = {}
        for name, value in (("t", t), ("z", z)):
            plane = _plane(image, name, value, index)
            if plane is not None:
                planes[name] = plane
                spans[image.geometry.index(name)] = (plane, plane + 1)  # type: ignore[index]
        view = View(index, physical(image.levels[index], spans, image.geometry.names),
                    (box[0], box[1], box[2], box[3]), planes)
        self._engine.post("view", view)

    def _prefetch(self, view: View, template: Any, previous: View | None, tier: int
                  ) -> list[Task]:
        """The prefetch tiles of ``view`` in ``tier`` (on the I/O loop): see
        :func:`~ngffcore.ome.scheduler_plan.prefetch_tasks`."""
        return prefetch_tasks(self.image, view, template, previous, tier)

    # -- the rest ----------------------------------------------------------------------------
    def cancel(self, fut: concurrent.futures.Future[Any]) -> bool:
        """Cancel a tile (as ``fut.cancel()`` does): queued, nothing is sent; in flight,
        abandoned. False if it had completed already."""
        self._check_open("cancel")
        if not isinstance(fut, concurrent.futures.Future):
            raise ArgumentError(f"cancel takes a future from this scheduler, not "
                                f"{type(fut).__name__}")
        return fut.cancel()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or in flight, abandoned requests and the view's
        prefetch still to plan included (the rest of the ring: up to 0.6 s after the last
        view); not from a future's callback (that runs on the I/O loop). False on timeout."""
        self._check_open("wait_idle")
        return self._wait(timeout)

    def _wait(self, timeout: float | None) -> bool:
        if _on_loop(self._loop):
            raise ArgumentError("wait_idle/close(wait=True) would block the I/O loop")
        return self._engine.idle.wait(timeout)

    def close(self, wait: bool = False, timeout: float | None = None) -> None:
        """Cancel every request (queued ones are dropped, those in flight abandoned: their
        bytes still fill the cache); then every call raises :class:`ClosedError`. ``wait``:
        block until the abandoned requests have ended (at most ``timeout`` seconds). A
        second ``close`` does nothing more."""
        with self._lock:
            first = not self._closed
            self._closed = True
        if first:
            self._engine.post("close")
        if wait:
            self._wait(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def stats(self) -> dict[str, int]:
        """Counters: ``sent`` (requests sent: GETs, shard indexes included; for a local store,
        objects read), ``cancelled`` (requests dropped before they were sent), ``abandoned``
        (requests in flight when nobody waited for them any more), ``cache_hits`` (chunks
        explicit tiles found in the cache), ``bytes`` (body bytes received), ``coalesced``
        (inner chunks that shared a request with another: requests saved), ``shared``
        (chunk needs served by a job another tile had started or queued), ``prefetched``
        (prefetch tiles queued), ``prefetch_yielded`` (prefetch requests that stopped
        counting to let an explicit request go), ``tiles``, ``tiles_cancelled``,
        ``failed``; and now: ``in_flight`` (counted requests), ``running`` (every request in
        flight, abandoned ones too), ``queued`` (jobs)."""
        engine = self._engine
        out = dict(engine.stats)
        out.update(in_flight=engine.in_flight, running=engine.running,
                   queued=len(engine._queued))
        return out

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise ClosedError(f"{what}: the scheduler of {self.image.url} is closed")


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


__all__ = ["Scheduler", "View", "make_task"]
