"""Viewer tiles: a (level, y box, x box, t, z, channels) request → one read per contiguous
channel run, all in flight together, through the image's decoded-chunk cache.

Results are ``(channels, height, width)`` whatever the image's axis order: an interleaved
RGB image (``yxc``, all channels in one chunk) is read with one request per chunk and
returned as a transposed view, never split into per-channel requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ngffcore.errors import SelectionError
from ngffcore.store import run_on_io_loop

if TYPE_CHECKING:
    from ngffcore.image import Image

Box = tuple[int, int]


def _axis(image: "Image", *names: str) -> int | None:
    for i, axis in enumerate(image.axes):
        if axis.name.lower() in names:
            return i
    return None


def _default_plane(image: "Image", key: str) -> int:
    """omero's rendering defaults (``rdefs.defaultT`` / ``defaultZ``), else 0."""
    omero = image._group.ome.get("omero")
    rdefs = omero.get("rdefs") if isinstance(omero, dict) else None
    value = rdefs.get(key) if isinstance(rdefs, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _runs(channels: Sequence[int]) -> list[tuple[int, int, int]]:
    """Consecutive runs ``(first output row, first channel, count)`` of a channel list."""
    runs: list[tuple[int, int, int]] = []
    for k, c in enumerate(channels):
        if runs and runs[-1][1] + runs[-1][2] == c:
            row, first, n = runs[-1]
            runs[-1] = (row, first, n + 1)
        else:
            runs.append((k, c, 1))
    return runs


class TileRequest:
    """The reads one tile needs: per channel run, a selection of the level and the rows of
    the ``(channels, h, w)`` result it fills."""

    def __init__(self, image: "Image", level: int, y: Box, x: Box, t: int | None,
                 z: int | None, channels: Sequence[int] | None) -> None:
        if not -len(image.levels) <= level < len(image.levels):
            raise SelectionError(f"level {level} out of range: the image has "
                                 f"{len(image.levels)} levels")
        self.array = image.levels[level]
        shape = self.array.shape
        iy, ix = _axis(image, "y"), _axis(image, "x")
        if iy is None or ix is None:
            raise SelectionError(f"the image has no y and x axes to tile "
                                 f"({[a.name for a in image.axes]})")
        it, iz, ic = _axis(image, "t"), _axis(image, "z"), _axis(image, "c")
        sel: list[Any] = [0] * len(shape)
        for axis, box in ((iy, y), (ix, x)):
            start, stop = (int(v) for v in box)
            if not 0 <= start < stop <= shape[axis]:
                raise SelectionError(f"tile box {box} outside axis "
                                     f"{image.axes[axis].name!r} of size {shape[axis]}")
            sel[axis] = slice(start, stop)
        for plane_axis, value, key in ((it, t, "defaultT"), (iz, z, "defaultZ")):
            if plane_axis is not None:
                axis = plane_axis
                plane = _default_plane(image, key) if value is None else int(value)
                if not 0 <= plane < shape[axis]:
                    raise SelectionError(f"{image.axes[axis].name}={plane} out of range "
                                         f"[0, {shape[axis]})")
                sel[axis] = plane
        n_channels = shape[ic] if ic is not None else 1
        chans = list(range(n_channels)) if channels is None else [int(c) for c in channels]
        if ic is None and chans != [0]:
            raise SelectionError("the image has no channel axis: channels must be None or [0]")
        if not chans or any(not 0 <= c < n_channels for c in chans):
            raise SelectionError(f"channels {chans} out of range [0, {n_channels})")
        self.channels = chans
        self.shape = (len(chans), y[1] - y[0], x[1] - x[0])
        # each read's result axes come in the level's order; this permutation puts them as
        # (c, y, x) (a view, no copy)
        kept = [a for a in (ic, iy, ix) if a is not None]
        order = sorted(kept)
        self.perm = tuple(order.index(a) for a in kept)
        self.reads: list[tuple[tuple[Any, ...], int, int]] = []
        for row, first, n in _runs(chans):
            if ic is not None:
                sel[ic] = slice(first, first + n)
            self.reads.append((tuple(sel), row, n))

    @classmethod
    def grid(cls, image: "Image", level: int, row: int, col: int, size: int, t: int | None,
             z: int | None, channels: Sequence[int] | None) -> "TileRequest":
        """Tile ``(row, col)`` of a grid of ``size``-pixel tiles (edge tiles clipped)."""
        if not -len(image.levels) <= level < len(image.levels):
            raise SelectionError(f"level {level} out of range: the image has "
                                 f"{len(image.levels)} levels")
        shape = image.levels[level].shape
        iy, ix = _axis(image, "y"), _axis(image, "x")
        if iy is None or ix is None:
            raise SelectionError(f"the image has no y and x axes to tile "
                                 f"({[a.name for a in image.axes]})")
        return cls(image, level, grid_box(shape[iy], row, size, "row"),
                   grid_box(shape[ix], col, size, "column"), t, z, channels)

    def _target(self, out: np.ndarray, row: int, n: int) -> np.ndarray:
        """The part of ``out`` (c, h, w) one read fills, seen in the level's axis order."""
        part = out[row:row + n]
        if len(self.perm) == 2:  # no channel axis
            part = part[0]
        return part.transpose(np.argsort(self.perm))

    def read(self, cache: Any) -> np.ndarray:
        out = np.empty(self.shape, dtype=self.array.dtype)
        if len(self.reads) == 1:
            sel, row, n = self.reads[0]
            self.array.read(sel, out=self._target(out, row, n), cache=cache)
        else:  # all runs in flight together
            run_on_io_loop(self.read_async(cache, out))
        return out

    async def read_async(self, cache: Any, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            out = np.empty(self.shape, dtype=self.array.dtype)
        await asyncio.gather(*(self.array.read_async(sel, out=self._target(out, row, n),
                                                     cache=cache)
                               for sel, row, n in self.reads))
        return out


def grid_box(shape: int, index: int, size: int, what: str) -> Box:
    """Tile ``index`` of a grid of ``size``-pixel tiles over an axis of ``shape`` pixels,
    the last one clipped."""
    if size <= 0:
        raise SelectionError("tile size must be > 0")
    start = index * size
    if not 0 <= start < shape:
        raise SelectionError(f"tile {what} {index} out of range: the level has "
                             f"{-(-shape // size)} tiles of {size} pixels along {what}")
    return start, min(start + size, shape)


__all__ = ["TileRequest", "grid_box"]
