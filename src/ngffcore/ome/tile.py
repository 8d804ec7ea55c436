"""Viewer tiles: a (level, y span, x span, t, z, channels) request → one read per
contiguous channel run, all in flight together, through the image's decoded-chunk cache.
Which axes are y/x/t/z/c, the default plane and the index checks are the image's
:class:`~ngffcore.ome.geometry.Geometry`; this module owns the tile grid and the reads.

Results are ``(channels, height, width)`` whatever the image's axis order: an interleaved
RGB image (``yxc``, all channels in one chunk) is read with one request per chunk and
returned as a transposed view, never split into per-channel requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ngffcore.errors import SelectionError
from ngffcore.store.ioloop import gather_or_cancel, run_on_io_loop

if TYPE_CHECKING:
    from ngffcore.ome.image import Image

#: a half-open pixel interval ``(start, stop)`` along one axis
Span = tuple[int, int]


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

    def __init__(self, image: "Image", level: int, y: Span, x: Span, t: int | None,
                 z: int | None, channels: Sequence[int] | None) -> None:
        geometry = image.geometry
        level = geometry.check_level(level)
        self.array = image.levels[level]
        shape = self.array.shape
        iy, ix = geometry.yx("tile")
        ic = geometry.index("c")
        sel: list[Any] = [0] * len(shape)
        for axis, span in ((iy, y), (ix, x)):
            start, stop = (int(v) for v in span)
            if not 0 <= start < stop <= shape[axis]:
                raise SelectionError(f"tile box {span} outside axis "
                                     f"{image.axes[axis].name!r} of size {shape[axis]}")
            sel[axis] = slice(start, stop)
        for name, value in (("t", t), ("z", z)):
            plane_axis = geometry.index(name)
            if plane_axis is None:
                if value not in (None, 0):
                    raise SelectionError(f"the image has no {name} axis: {name} must be None "
                                         f"or 0")
                continue
            plane = geometry.default_plane(name, level) if value is None else int(value)
            assert plane is not None  # the image has the axis
            if not 0 <= plane < shape[plane_axis]:
                raise SelectionError(f"{image.axes[plane_axis].name}={plane} out of range "
                                     f"[0, {shape[plane_axis]})")
            sel[plane_axis] = plane
        chans = geometry.check_channels(channels)
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
        shape = image.levels[image.geometry.check_level(level)].shape
        iy, ix = image.geometry.yx("tile")
        return cls(image, level, grid_span(shape[iy], row, size, "row"),
                   grid_span(shape[ix], col, size, "column"), t, z, channels)

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


def grid_span(shape: int, index: int, size: int, what: str) -> Span:
    """Tile ``index`` of a grid of ``size``-pixel tiles over an axis of ``shape`` pixels,
    the last one clipped."""
    if size <= 0:
        raise SelectionError("tile size must be > 0")
    start = index * size
    if not 0 <= start < shape:
        raise SelectionError(f"tile {what} {index} out of range: the level has "
                             f"{-(-shape // size)} tiles of {size} pixels along {what}")
    return start, min(start + size, shape)


__all__ = ["TileRequest", "Span", "grid_span"]
