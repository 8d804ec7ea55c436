"""The base pixels of a gaussian pyramid, each read from the source once and kept only while a
later object's halo still needs them.

A gaussian level needs, around each object's core, a halo of the finer level; computing that
halo reaches down to base pixels beyond the core: behind it (read with earlier objects) and
ahead of it (not read yet). Re-reading them would read the base more than once; keeping whole
neighbouring objects would hold a row of objects. This cache keeps only thin cells. The writer
lists every base box each object may ask for (a level-1 object: its core and halo; a coarser
one: its halo ring, followed down the input boxes of every finer level), with the object's
place in its known depth-first finishing order. The base is cut, per axis, at every edge of
those boxes; a cell is read once, whole, the first time a request touches it, and kept until
the last object whose boxes touch it has finished. Cells inside one object's core are read and
dropped with it; the cells kept are the halo shells along the traversal front.

Memory: the request being served plus the kept shells, Σ_k H_k × (the front's cross-section),
H_k the reach of level k's halo into the base (4σ per level, summed down the levels). The
front grows with the image's cross-section: an exact filter that reads each pixel once must
keep the halo of everything read on one side of the front (docs/ome.md, "Writing images").
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable, Sequence

import numpy as np

Box = tuple[tuple[int, int], ...]
Cell = tuple[int, ...]  # cell index per axis


def _slices(box: Box) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in box)


def _intersect(a: Box, b: Box) -> Box | None:
    out = tuple((max(x0, y0), min(x1, y1)) for (x0, x1), (y0, y1) in zip(a, b))
    return out if all(lo < hi for lo, hi in out) else None


class HaloCache:
    """Reads base boxes for a pyramid pass: each base pixel from ``read`` (``read(box)`` →
    numpy array of the box's shape) at most once, kept while ``regions`` still need it.

    ``regions``: ``(base box, finish index)`` for every base box an object of a level ≥ 1 may
    ask for, finish indices counting objects in the order the pass finishes them. ``finished(i)`` tells that object i
    has finished. Not thread-safe: one pyramid pass owns it.
    """

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype,
                 read: Callable[[Box], np.ndarray],
                 regions: Sequence[tuple[Box, int]]) -> None:
        self.shape = shape
        self.dtype = dtype
        self._read = read
        self.cuts = _cuts(shape, [r for r, _ in regions])
        self._regions = _RegionIndex(self.cuts, regions)
        self._kept: dict[Cell, np.ndarray] = {}
        self._read_cells: set[Cell] = set()
        self._drops: list[tuple[int, Cell]] = []
        self._finished = 0
        self.kept_bytes = 0
        #: the most bytes kept at once, and base pixels read from the source (tests check
        #: these: every pixel once, ``rereads`` stays 0)
        self.peak_kept_bytes = 0
        self.pixels_read = 0
        self.rereads = 0

    def finished(self, index: int) -> None:
        """Object ``index`` (and every object before it) has finished: drop what only they
        needed."""
        self._finished = index + 1
        while self._drops and self._drops[0][0] < self._finished:
            _, cell = heapq.heappop(self._drops)
            data = self._kept.pop(cell, None)
            if data is not None:
                self.kept_bytes -= data.nbytes

    def read(self, box: Box) -> np.ndarray:
        """The base pixels of ``box`` (half-open per axis, inside the image)."""
        ranges = [range(bisect.bisect_right(c, a) - 1, bisect.bisect_left(c, b))
                  for c, (a, b) in zip(self.cuts, box)]
        kept: list[Cell] = []
        missing: list[Cell] = []
        for cell in itertools.product(*ranges):
            (missing if self._kept.get(cell) is None else kept).append(cell)
        groups = _groups(missing)
        if not kept and len(groups) == 1:
            # one read covers the box (an object's core, mostly): its view, no copy
            return self._read_group(groups[0], None, box)
        out = np.empty(tuple(b - a for a, b in box), dtype=self.dtype)
        for cell in kept:
            self._copy(self._kept[cell], self._cell_box(cell), out, box)
        for group in groups:
            self._read_group(group, out, box)
        return out

    def _read_group(self, group: tuple[Cell, Cell], out: np.ndarray | None,
                    box: Box) -> np.ndarray:
        """Read a box of cells from the source, keep the cells a later object needs, and copy
        its part of ``box`` into ``out`` (``out`` None: return that part, a view)."""
        first, last = group
        whole = tuple((c[i], c[j + 1]) for c, i, j in zip(self.cuts, first, last))
        data = self._read(whole)
        self.pixels_read += data.size
        for cell in itertools.product(*(range(i, j + 1) for i, j in zip(first, last))):
            if cell in self._read_cells:
                self.rereads += 1  # dropped too early: never expected (tests check)
            self._read_cells.add(cell)
            self._keep(cell, data, whole)
        if out is None:
            return data[tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(box, whole))]
        self._copy(data, whole, out, box)
        return out

    def _cell_box(self, cell: Cell) -> Box:
        return tuple((c[i], c[i + 1]) for c, i in zip(self.cuts, cell))

    @staticmethod
    def _copy(data: np.ndarray, data_box: Box, out: np.ndarray, out_box: Box) -> None:
        part = _intersect(data_box, out_box)
        if part is None:
            return
        out[tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(part, out_box))] = \
            data[tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(part, data_box))]

    def _keep(self, cell: Cell, data: np.ndarray, data_box: Box) -> None:
        last = self._regions.last_use(cell)
        if last < self._finished:
            return
        box = self._cell_box(cell)
        piece = data[tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(box, data_box))].copy()
        self._kept[cell] = piece
        heapq.heappush(self._drops, (last, cell))
        self.kept_bytes += piece.nbytes
        self.peak_kept_bytes = max(self.peak_kept_bytes, self.kept_bytes)


def _cuts(shape: tuple[int, ...], regions: list[Box]) -> list[list[int]]:
    """Per axis, the sorted cut positions: 0, the image end, every region edge."""
    cuts: list[set[int]] = [{0, n} for n in shape]
    for region in regions:
        for d, (a, b) in enumerate(region):
            cuts[d].add(a)
            cuts[d].add(b)
    return [sorted(c) for c in cuts]


class _RegionIndex:
    """For a cell, the last finish index among the regions touching it. Regions are found
    through their edges: per axis, the regions overlapping each cell interval."""

    def __init__(self, cuts: list[list[int]], regions: Sequence[tuple[Box, int]]) -> None:
        self._regions = list(regions)
        # per axis: cell interval index -> set of region numbers overlapping it
        self._by_axis: list[list[set[int]]] = []
        for d, c in enumerate(cuts):
            per: list[set[int]] = [set() for _ in range(len(c) - 1)]
            for n, (region, _) in enumerate(self._regions):
                a, b = region[d]
                for i in range(bisect.bisect_left(c, a), bisect.bisect_left(c, b)):
                    per[i].add(n)
            self._by_axis.append(per)

    def last_use(self, cell: Cell) -> int:
        common = set.intersection(*(axis[i] for axis, i in zip(self._by_axis, cell)))
        return max((self._regions[n][1] for n in common), default=-1)


def _groups(cells: list[Cell]) -> list[tuple[Cell, Cell]]:
    """Cover ``cells`` (cell indices) with disjoint boxes of cells, ``(first, last)``
    inclusive, growing each box along the last axis first, then the ones before it."""
    todo = set(cells)
    out = []
    for start in sorted(cells):
        if start not in todo:
            continue
        last = list(start)
        for d in reversed(range(len(start))):
            while True:
                grown = last.copy()
                grown[d] += 1
                slab = [range(s, e + 1) for s, e in zip(start, last)]
                slab[d] = range(grown[d], grown[d] + 1)
                block = list(itertools.product(*slab))
                if not all(c in todo for c in block):
                    break
                last = grown
        for c in itertools.product(*(range(s, e + 1) for s, e in zip(start, last))):
            todo.discard(c)
        out.append((tuple(start), tuple(last)))
    return out


__all__ = ["HaloCache"]
