"""One streaming pass that writes every level of a pyramid: the base read once, each coarser
level computed from the finer level's data in memory, each object written once, whole.

Depth first over the coarsest level's objects (chunks, or shards when sharded): an object of
level k is computed from its *core* — the block of level k-1 it summarises, ``box × factor``
— which is assembled from the level-(k-1) objects inside it, each written as soon as it is
computed. Objects have the same shape on every level (clipped to the level), so a core is a
whole number of finer objects (``(o × f) / o``) and no object is computed or written twice.
Level 0's objects under one core are read from the source in one read and written in one
``Array.write`` (one batch, encoded in parallel).

Gaussian levels need a halo around each core (4σ, σ = factor/2): the parts of it outside the
core belong to neighbouring cores, so they are recomputed (not written) from base pixels that
a :class:`~ngffcore.ome.halo_cache.HaloCache` reads once and keeps while a later halo needs
them: the base is still read exactly once.

Memory: per level, one core buffer (factor^d objects of that level, when the object size is
not a multiple of the factor or for gaussian) or one object (mean/nearest/mode with factors
dividing the object shape, downsampled child by child), plus level 0's core read: at most
``Σ_k f^d × object_k`` pixels, independent of the image size; gaussian adds the halo cache's
shells (its docstring).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ngffcore import _core
from ngffcore.errors import ArgumentError
from ngffcore.ome.build import Pyramid
from ngffcore.ome.halo_cache import HaloCache
from ngffcore.zarr.array import Array

Box = tuple[tuple[int, int], ...]  # half-open (start, stop) per axis

METHOD_IDS = {"mean": "DS_MEAN", "nearest": "DS_NEAREST", "mode": "DS_MODE",
              "gaussian": "DS_GAUSSIAN"}


def method_id(method: str) -> int:
    return int(getattr(_core, METHOD_IDS[method]))


def _slices(box: Box) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in box)


def _shape(box: Box) -> tuple[int, ...]:
    return tuple(b - a for a, b in box)


def object_boxes(shape: tuple[int, ...], grid: tuple[int, ...], box: Box) -> list[Box]:
    """The objects (cells of ``grid`` over an array of ``shape``) inside ``box``, which is
    aligned to the grid (clipped at the array's end), in C order."""
    ranges = [range(a, b, g) for (a, b), g in zip(box, grid)]
    return [tuple((s, min(s + g, n)) for s, g, n in zip(starts, grid, shape))
            for starts in itertools.product(*ranges)]


def read_source(source: Any, box: Box, dtype: np.dtype) -> np.ndarray:
    """``source[box]`` as a numpy array of ``dtype`` (numpy, dask, zarr, ngffcore arrays,
    memory maps: anything with numpy ``__getitem__``)."""
    part = source[_slices(box)]
    compute = getattr(part, "compute", None)
    if callable(compute):
        part = compute()
    arr = np.asarray(part)
    if arr.shape != _shape(box):
        raise ArgumentError(f"the source returned shape {arr.shape} for the box {box}")
    return arr.astype(dtype, copy=False)


@dataclass
class PyramidWriter:
    """Writes ``source`` as level 0 of ``arrays`` and every coarser level from it."""

    source: Any
    arrays: list[Array]
    pyramid: Pyramid
    method: str
    dtype: np.dtype
    channel_axis: int | None = None

    def __post_init__(self) -> None:
        self.grids = [a.metadata.grid_shape for a in self.arrays]
        #: per channel (0 without a channel axis): (min, max) over the coarsest level
        self.value_ranges: dict[int, tuple[float, float]] = {}
        #: gaussian only: the base read once for every halo, and objects finished so far
        self.halo: HaloCache | None = None
        self._planned = self._finished = 0

    @property
    def _id(self) -> int:
        return method_id(self.method)

    def run(self) -> None:
        top = len(self.arrays) - 1
        shape = self.pyramid.shapes[top]
        whole = tuple((0, n) for n in shape)
        if top == 0:
            for obj in object_boxes(shape, self.grids[0], whole):
                data = read_source(self.source, obj, self.dtype)
                self.arrays[0].write(_slices(obj), data)
                self._note_range(data, obj)
            return
        tops = object_boxes(shape, self.grids[top], whole)
        if self.method == "gaussian":
            order: list[tuple[Box, int]] = []
            for obj in tops:
                self._finish_order(top, obj, order)
            self.halo = HaloCache(self.pyramid.shapes[0], self.dtype,
                                  lambda box: read_source(self.source, box, self.dtype), order)
        for obj in tops:
            data = self._emit(top, obj)
            self._note_range(data, obj)

    def _note_range(self, data: np.ndarray, box: Box) -> None:
        if not data.size or data.dtype.kind not in "iuf":
            return
        if self.channel_axis is None:
            parts = [(0, data)]
        else:
            c0 = box[self.channel_axis][0]
            parts = [(c0 + i, np.take(data, i, axis=self.channel_axis))
                     for i in range(data.shape[self.channel_axis])]
        for channel, part in parts:
            if part.dtype.kind == "f" and np.isnan(part).all():
                continue
            lo, hi = float(np.nanmin(part)), float(np.nanmax(part))
            old = self.value_ranges.get(channel)
            self.value_ranges[channel] = (lo, hi) if old is None else (min(old[0], lo),
                                                                      max(old[1], hi))

    def _finish_order(self, k: int, box: Box, order: list[tuple[Box, int]]) -> None:
        """Append ``(base box, finish index)`` for every base box that level k's ``box`` and
        every object beneath it may read, objects numbered in the order ``_emit`` finishes
        them (gaussian: children first)."""
        if k - 1 >= 1:
            for child in object_boxes(self.pyramid.shapes[k - 1], self.grids[k - 1],
                                      self._core_box(k, box)):
                self._finish_order(k - 1, child, order)
        index = self._planned
        self._planned += 1
        need = self._input_box(k, box)
        if k == 1:  # its core and halo, read together
            order.append((need, index))
            return
        for part in difference(need, self._core_box(k, box)):  # its halo, recomputed
            for j in range(k - 1, 0, -1):  # down the input boxes to the base
                part = self._input_box(j, part)
            order.append((part, index))

    def _input_box(self, k: int, box: Box) -> Box:
        """The level-(k-1) box that level k's ``box`` is computed from (halo included)."""
        start, shape = _core.downsample_input_box(
            self._id, self.pyramid.shapes[k - 1], self.pyramid.factors[k - 1],
            tuple(a for a, _ in box), _shape(box))
        return tuple((s, s + n) for s, n in zip(start, shape))

    def _base(self, box: Box) -> np.ndarray:
        """Base pixels of ``box``: through the halo cache for gaussian, else from the source
        (mean/nearest/mode read each base pixel once by construction)."""
        if self.halo is not None:
            return self.halo.read(box)
        return read_source(self.source, box, self.dtype)

    def _core_box(self, k: int, box: Box) -> Box:
        """The block of level k-1 the level-k ``box`` summarises."""
        f = self.pyramid.factors[k - 1]
        prev = self.pyramid.shapes[k - 1]
        return tuple((a * fk, min(b * fk, n)) for (a, b), fk, n in zip(box, f, prev))

    def _emit(self, k: int, box: Box) -> np.ndarray:
        """Compute level k over ``box`` (one of its objects), writing it and every finer
        object beneath it; returns its pixels."""
        f = self.pyramid.factors[k - 1]
        prev_shape = self.pyramid.shapes[k - 1]
        core = self._core_box(k, box)
        out = np.empty(_shape(box), dtype=self.dtype)
        if k - 1 == 0:
            core_data = self._base(core)
            self.arrays[0].write(_slices(core), core_data)
        elif self.method != "gaussian" and all(
                g % fk == 0 or g >= n for g, fk, n in zip(self.grids[k - 1], f, prev_shape)):
            # every child's blocks lie inside it: downsampled child by child, no core buffer
            for child in object_boxes(prev_shape, self.grids[k - 1], core):
                cdata = self._emit(k - 1, child)
                cout = tuple((a // fk, -(-b // fk)) for (a, b), fk in zip(child, f))
                view = out[tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(cout, box))]
                self._downsample(cdata, child, prev_shape, f, view, cout)
            self.arrays[k].write(_slices(box), out)
            return out
        else:
            core_data = np.empty(_shape(core), dtype=self.dtype)
            for child in object_boxes(prev_shape, self.grids[k - 1], core):
                core_data[tuple(slice(a - c, b - c) for (a, b), (c, _) in zip(child, core))] = \
                    self._emit(k - 1, child)
        data, region = core_data, core
        if self.method == "gaussian":
            data, region = self._with_halo(k, box, core, core_data)
        self._downsample(data, region, prev_shape, f, out, box)
        self.arrays[k].write(_slices(box), out)
        if self.halo is not None:
            self.halo.finished(self._finished)
            self._finished += 1
        return out

    def _with_halo(self, k: int, box: Box, core: Box, core_data: np.ndarray
                   ) -> tuple[np.ndarray, Box]:
        """The level-(k-1) input the gaussian of ``box`` needs: ``core_data`` and around it
        the halo, recomputed (not written) from the halo cache's base pixels."""
        need = self._input_box(k, box)
        if need == core:
            return core_data, core
        buf = np.empty(_shape(need), dtype=self.dtype)
        buf[tuple(slice(a - s, b - s) for (a, b), (s, _) in zip(core, need))] = core_data
        for part in difference(need, core):
            buf[tuple(slice(a - s, b - s) for (a, b), (s, _) in zip(part, need))] = \
                self._compute(k - 1, part)
        return buf, need

    def _compute(self, k: int, box: Box) -> np.ndarray:
        """Level k over ``box``, computed from base pixels without writing anything."""
        if k == 0:
            return self._base(box)
        f = self.pyramid.factors[k - 1]
        prev_shape = self.pyramid.shapes[k - 1]
        region = self._input_box(k, box)
        data = self._compute(k - 1, region)
        out = np.empty(_shape(box), dtype=self.dtype)
        self._downsample(data, region, prev_shape, f, out, box)
        return out

    def _downsample(self, data: np.ndarray, region: Box, prev_shape: tuple[int, ...],
                    f: tuple[int, ...], out: np.ndarray, box: Box) -> None:
        _core.downsample(self._id, data, tuple(a for a, _ in region), prev_shape, f, out,
                         tuple(a for a, _ in box))


def difference(outer: Box, inner: Box) -> list[Box]:
    """Disjoint boxes covering ``outer`` minus ``inner`` (``inner`` inside ``outer``)."""
    parts = []
    lo = list(outer)
    for d, ((oa, ob), (ia, ib)) in enumerate(zip(outer, inner)):
        if oa < ia:
            parts.append(tuple(lo[:d]) + ((oa, ia),) + tuple(outer[d + 1:]))
        if ib < ob:
            parts.append(tuple(lo[:d]) + ((ib, ob),) + tuple(outer[d + 1:]))
        lo[d] = (ia, ib)
    return parts


__all__ = ["METHOD_IDS", "PyramidWriter", "difference", "method_id", "object_boxes",
           "read_source"]
