"""The request scheduler's plans (``scheduler.py`` has the design): a tile request as a
:class:`~ngffcore.ome.scheduler_tasks.Task` (:func:`make_task`), a :class:`View`, and a
view's prefetch tiles by tier (:func:`prefetch_tasks`). Prefetch tasks are made on the I/O
loop, when their tier is due; explicit tiles' on the calling thread.
"""

from __future__ import annotations

import concurrent.futures
import math
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ngffcore.errors import NgffError
from ngffcore.ome.scheduler_tasks import LEAD, Read, Task
from ngffcore.ome.tile import TileRequest
from ngffcore.zarr.plan import normalize_selection

if TYPE_CHECKING:
    from ngffcore.ome.image import Image

#: the axes a tile or a view has an extent on (the others are read whole: channels)
PLACE_AXES = ("t", "z", "y", "x")


class View:
    """A view: level, physical box per axis (``PLACE_AXES`` the image has), centre (y, x),
    the pixel box on its level and its planes."""

    __slots__ = ("level", "box", "centre", "pixels", "planes")

    def __init__(self, level: int, box: dict[str, tuple[float, float]],
                 pixels: tuple[int, int, int, int], planes: dict[str, int]) -> None:
        self.level = level
        self.box = box
        y, x = box["y"], box["x"]
        self.centre = ((y[0] + y[1]) / 2, (x[0] + x[1]) / 2)
        self.pixels = pixels
        self.planes = planes

    def intersects(self, box: dict[str, tuple[float, float]]) -> bool:
        """Whether a tile's physical ``box`` overlaps this view on every axis both have
        (open intervals: tiles that only touch the view do not)."""
        for name, (lo, hi) in self.box.items():
            other = box.get(name)
            if other is None:
                continue
            eps = 1e-9 * (abs(lo) + abs(hi) + abs(other[0]) + abs(other[1]) + 1.0)
            if not (other[0] < hi - eps and lo < other[1] - eps):
                return False
        return True


def physical(level: Any, spans: dict[int, tuple[int, int]], names: Sequence[str]
              ) -> dict[str, tuple[float, float]]:
    """Pixel spans (axis index -> [a, b)) as physical intervals: pixel i covers
    ``translation + (i ± 0.5) * scale``."""
    out = {}
    for axis, (a, b) in spans.items():
        s, t = level.scale[axis], level.translation[axis]
        lo, hi = t + (a - 0.5) * s, t + (b - 0.5) * s
        out[names[axis]] = (min(lo, hi), max(lo, hi))
    return out


def make_task(image: "Image", level: int, row: int, col: int, size: int, t: int | None,
              z: int | None, channels: Sequence[int] | None, priority: float,
              fut: concurrent.futures.Future[Any] | None,
              finish: Callable[[np.ndarray], Any] | None = None,
              ident: Hashable = None) -> Task:
    """A tile request: geometry and checks from :class:`TileRequest` (the errors
    ``Image.tile`` raises), its reads planned to chunk keys as reads through the cache key
    them (``CachedRead``), and its physical box."""
    req = TileRequest.grid(image, level, row, col, size, t, z, channels)
    index = image.geometry.check_level(level)
    array = req.array
    ident_store = array.store.identity
    reads = []
    for sel, rows in req.reads:
        norm = normalize_selection(sel, array.shape)
        plan = array._plan_selection(norm)
        keys: list[Hashable] = (
            [(ident_store, k) for k in plan.keys] if plan.inner is None else
            [(ident_store, k, *r) for k, r in zip(plan.keys, plan.inner.tolist())])
        reads.append(Read(array, norm, plan, keys, rows))
    names = image.geometry.names
    sel = req.reads[0][0]
    spans = {}
    for name in PLACE_AXES:
        axis = image.geometry.index(name)
        if axis is not None:
            item = sel[axis]
            spans[axis] = (item.start, item.stop) if isinstance(item, slice) else (item, item + 1)
    task = Task(fut, priority, index, physical(array, spans, names), reads, req, finish, ident)
    task.size = size
    task.channels = tuple(req.channels)
    return task


def prefetch_tasks(image: "Image", view: View, template: Any, previous: View | None, tier: int
                   ) -> list[Task]:
    """The prefetch tiles of ``view`` in ``tier`` (on the I/O loop): :data:`LEAD`, the
    view's region on the next coarser level and the tiles of the ring around it (one
    tile, on its level) that lie ahead of the last pan (``previous`` -> ``view`` on the
    same level and plane) within half a tile of the view; :data:`REST`, the rest of the
    ring."""
    size, channels = template if template is not None else (512, None)
    iy, ix = image.geometry.yx("view")
    out: list[Task] = []

    def add(level: int, row: int, col: int, planes: dict[str, int]) -> None:
        ident = (level, row, col, size, tuple(sorted(planes.items())), channels)
        try:
            task = make_task(image, level, row, col, size, planes.get("t"),
                             planes.get("z"), channels, 0.0, None, None, ident)
        except NgffError:  # e.g. channels of an earlier request: no prefetch
            return
        task.tier = tier
        out.append(task)

    shape = image.levels[view.level].shape
    y0, y1, x0, x1 = view.pixels
    rows = tiles(y0, y1, shape[iy], size)
    cols = tiles(x0, x1, shape[ix], size)
    if rows and cols:
        (r0, r1), (c0, c1) = rows, cols
        ahead = _ahead(view, previous, size)
        for r in range(max(r0 - 1, 0), min(r1 + 1, -(-shape[iy] // size) - 1) + 1):
            for c in range(max(c0 - 1, 0), min(c1 + 1, -(-shape[ix] // size) - 1) + 1):
                if not (r0 <= r <= r1 and c0 <= c <= c1) \
                        and (tier == LEAD) == ahead(r, c):
                    add(view.level, r, c, view.planes)
    coarse = view.level + 1
    if tier == LEAD and coarse < len(image.levels):
        lvl = image.levels[coarse]
        names = image.geometry.names
        spans = {a: pixels(view.box[names[a]], lvl.scale[a], lvl.translation[a])
                 for a in (iy, ix)}
        planes = {}
        for name, value in view.planes.items():
            a = image.geometry.index(name)
            assert a is not None
            old = image.levels[view.level]
            centre = old.translation[a] + value * old.scale[a]
            planes[name] = min(max(round((centre - lvl.translation[a]) / lvl.scale[a]), 0),
                               lvl.shape[a] - 1)
        rows = tiles(*spans[iy], lvl.shape[iy], size)
        cols = tiles(*spans[ix], lvl.shape[ix], size)
        if rows and cols:
            for r in range(rows[0], rows[1] + 1):
                for c in range(cols[0], cols[1] + 1):
                    add(coarse, r, c, planes)
    return out


#: a ring tile is ahead of a pan when the direction from the view's centre to the tile's
#: centre is within this cosine of the pan's (0.5: 60 degrees either side)
AHEAD_COSINE = 0.5


def _ahead(view: View, previous: View | None, size: int) -> Callable[[int, int], bool]:
    """Whether ring tile (row, col) of ``size`` lies ahead of the pan ``previous`` ->
    ``view`` (same level and planes) within half a tile of the view's edge: the tiles the
    next step of that pan most likely shows. Nothing is ahead of a zoom, a first view or a
    view that did not move."""
    y0, y1, x0, x1 = view.pixels
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    dy = dx = 0.0
    if previous is not None and previous.level == view.level \
            and previous.planes == view.planes:
        p0, p1, q0, q1 = previous.pixels
        dy, dx = cy - (p0 + p1) / 2, cx - (q0 + q1) / 2
    norm = math.hypot(dy, dx)

    def ahead(row: int, col: int) -> bool:
        if norm == 0:
            return False
        ty, tx = (row + 0.5) * size - cy, (col + 0.5) * size - cx
        if ty * dy + tx * dx <= AHEAD_COSINE * norm * math.hypot(ty, tx):
            return False
        gap = max(row * size - y1, y0 - (row + 1) * size, col * size - x1,
                  x0 - (col + 1) * size)
        return gap < size / 2

    return ahead


def tiles(a: int, b: int, n: int, size: int) -> tuple[int, int] | None:
    """First and last index of the ``size`` tiles that ``[a, b)`` (clipped to ``[0, n)``)
    touches; None if nothing is left."""
    a, b = max(a, 0), min(b, n)
    if a >= b:
        return None
    return a // size, (b - 1) // size


def pixels(box: tuple[float, float], scale: float, translation: float) -> tuple[int, int]:
    """The pixel span of a level that a physical interval overlaps."""
    lo, hi = ((v - translation) / scale for v in box)
    lo, hi = min(lo, hi), max(lo, hi)
    eps = 1e-9 * (abs(lo) + abs(hi) + 1.0)
    return math.floor(lo - 0.5 + eps) + 1, math.ceil(hi + 0.5 - eps)


__all__ = ["AHEAD_COSINE", "PLACE_AXES", "View", "make_task", "physical", "pixels",
           "prefetch_tasks", "tiles"]
