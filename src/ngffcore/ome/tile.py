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
from ngffcore.store.ioloop import gather_or_cancel, run_on_io_loop

if TYPE_CHECKING:
    from ngffcore.ome.image import Image

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


def _segments(channels: Sequence[int], chunk: int) -> list[tuple[int, int, list[int]]]:
    """The reads of a channel list: ``(first channel, stop, output rows)`` per read, rows
    listing where each channel of ``[first, stop)`` goes (-1: read but not wanted).

    Channels in separate chunks along c (``chunk`` 1: planar) are grouped into runs that are
    consecutive in the output, so one read fills them in place. Channels that share a chunk
    (interleaved RGB) are read together whatever order they are asked in: one request per
    chunk, never split by channel."""
    if chunk == 1:
        runs: list[tuple[int, int, list[int]]] = []
        for row, c in enumerate(channels):
            if runs and runs[-1][1] == c and runs[-1][2][-1] == row - 1:
                first, _, rows = runs[-1]
                runs[-1] = (first, c + 1, rows + [row])
            else:
                runs.append((c, c + 1, [row]))
        return runs
    by_chunk: dict[int, dict[int, int]] = {}
    for row, c in enumerate(channels):
        by_chunk.setdefault(c // chunk, {})[c] = row
    segments = []
    for wanted in by_chunk.values():
        first, stop = min(wanted), max(wanted) + 1
        segments.append((first, stop, [wanted.get(c, -1) for c in range(first, stop)]))
    return segments


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
            if plane_axis is None and value not in (None, 0):
                raise SelectionError(f"the image has no {key[-1].lower()} axis: "
                                     f"{key[-1].lower()} must be None or 0")
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
        chunk_c = self.array.chunks[ic] if ic is not None else 1
        self.reads: list[tuple[tuple[Any, ...], list[int]]] = []
        for first, stop, rows in _segments(chans, chunk_c):
            if ic is not None:
                sel[ic] = slice(first, stop)
            self.reads.append((tuple(sel), rows))

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

    def _view(self, block: np.ndarray) -> np.ndarray:
        """``block`` (c, h, w) seen in the level's axis order, as one read writes it."""
        if len(self.perm) == 2:  # no channel axis
            block = block[0]
        return block.transpose(np.argsort(self.perm))

    def _target(self, rows: list[int], out: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Where one read writes (in the level's axis order), and the block to place into
        ``out`` afterwards (None when the read lands in ``out`` directly)."""
        if rows[0] >= 0 and rows == list(range(rows[0], rows[0] + len(rows))):
            return self._view(out[rows[0]:rows[0] + len(rows)]), None
        # channels of one chunk asked out of order or with gaps: read together, then place
        block = np.empty((len(rows), *self.shape[1:]), dtype=out.dtype)
        return self._view(block), block

    @staticmethod
    def _place(block: np.ndarray | None, rows: list[int], out: np.ndarray) -> None:
        if block is not None:
            for k, row in enumerate(rows):
                if row >= 0:
                    out[row] = block[k]

    def _read_one(self, sel: tuple[Any, ...], rows: list[int], out: np.ndarray, cache: Any
                  ) -> None:
        target, block = self._target(rows, out)
        self.array.read(sel, out=target, cache=cache)
        self._place(block, rows, out)

    async def _read_one_async(self, sel: tuple[Any, ...], rows: list[int], out: np.ndarray,
                              cache: Any) -> None:
        target, block = self._target(rows, out)
        await self.array.read_async(sel, out=target, cache=cache)
        self._place(block, rows, out)

    def read(self, cache: Any) -> np.ndarray:
        out = np.empty(self.shape, dtype=self.array.dtype)
        if len(self.reads) == 1:
            sel, rows = self.reads[0]
            self._read_one(sel, rows, out, cache)
        else:  # all reads in flight together
            run_on_io_loop(self.read_async(cache, out))
        return out

    async def read_async(self, cache: Any, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            out = np.empty(self.shape, dtype=self.array.dtype)
        # one read failing stops the others, so nothing runs on after the tile has failed
        await gather_or_cancel(*(self._read_one_async(sel, rows, out, cache)
                                 for sel, rows in self.reads))
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
