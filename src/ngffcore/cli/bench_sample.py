"""``ngffcore bench``: what to read. The tile universe of the chosen levels (a grid of
``size``-pixel tiles over each level's y/x plane, at the image's default plane or every
plane), random draws from it, random regions, and the chunks an uncached read touches.

The image's :attr:`~ngffcore.Image.geometry` says where the axes are and which plane is the
default; nothing here reads metadata.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ngffcore import Image

#: a half-open pixel interval ``(start, stop)`` along one axis
Span = tuple[int, int]


@dataclass(frozen=True)
class Item:
    """One read: a tile (``row``/``col`` of the grid) or an ROI (row/col None)."""

    level: int
    t: int | None
    z: int | None
    y: Span
    x: Span
    row: int | None = None
    col: int | None = None


class Sampler:
    """The tile universe of the chosen levels and the random draws from it."""

    def __init__(self, image: Image, levels: Sequence[int], size: int,
                 random_planes: bool) -> None:
        geometry = image.geometry
        self.image = image
        self.y, self.x = geometry.yx("tile")
        self.t, self.z = geometry.index("t"), geometry.index("z")
        self.levels = list(levels)
        self.size = size
        self.random_planes = random_planes
        # the plane viewers open on (omero rdefs, else 0); None without the axis
        self.default_t = geometry.default_plane("t")
        self.default_z = geometry.default_plane("z")

    def _planes(self, level: int) -> tuple[int, int]:
        """Number of t and z planes a level's tiles range over."""
        if not self.random_planes:
            return 1, 1
        shape = self.image.levels[level].shape
        return (shape[self.t] if self.t is not None else 1,
                shape[self.z] if self.z is not None else 1)

    def grid(self, level: int) -> tuple[int, int]:
        """Tile rows and columns of a level."""
        shape = self.image.levels[level].shape
        return -(-shape[self.y] // self.size), -(-shape[self.x] // self.size)

    def tiles_in(self, level: int) -> int:
        rows, cols = self.grid(level)
        nt, nz = self._planes(level)
        return rows * cols * nt * nz

    def _plane(self, axis: int | None, index: int, default: int | None) -> int | None:
        if axis is None:
            return None
        return index if self.random_planes else default

    def tiles(self, n: int, seed: int) -> list[Item]:
        """``n`` distinct tiles drawn uniformly from the universe (all of it when smaller)."""
        counts = [self.tiles_in(lv) for lv in self.levels]
        total = sum(counts)
        picks = random.Random(seed).sample(range(total), min(n, total))
        out = []
        for index in picks:
            k = 0
            while index >= counts[k]:
                index -= counts[k]
                k += 1
            level = self.levels[k]
            rows, cols = self.grid(level)
            _, nz = self._planes(level)
            plane, cell = divmod(index, rows * cols)
            t, z = divmod(plane, nz)
            row, col = divmod(cell, cols)
            shape = self.image.levels[level].shape
            y = (row * self.size, min((row + 1) * self.size, shape[self.y]))
            x = (col * self.size, min((col + 1) * self.size, shape[self.x]))
            out.append(Item(level, self._plane(self.t, t, self.default_t),
                            self._plane(self.z, z, self.default_z), y, x, row, col))
        return out

    def rois(self, n: int, size: int, seed: int) -> list[Item]:
        rng = random.Random(f"rois:{seed}")  # independent of the tile draws
        out = []
        for _ in range(n):
            level = rng.choice(self.levels)
            shape = self.image.levels[level].shape
            nt, nz = self._planes(level)
            t, z = rng.randrange(nt), rng.randrange(nz)
            boxes = []
            for axis in (self.y, self.x):
                start = rng.randrange(max(1, shape[axis] - size + 1))
                boxes.append((start, min(start + size, shape[axis])))
            out.append(Item(level, self._plane(self.t, t, self.default_t),
                            self._plane(self.z, z, self.default_z), boxes[0], boxes[1]))
        return out


def channel_runs(channels: Sequence[int]) -> list[Span]:
    """Contiguous runs ``[first, stop)`` of a channel list (one read each)."""
    runs: list[Span] = []
    for c in channels:
        if runs and runs[-1][1] == c:
            runs[-1] = (runs[-1][0], c + 1)
        else:
            runs.append((c, c + 1))
    return runs


def _chunks_along(span: Span, chunk: int) -> int:
    return (span[1] - 1) // chunk - span[0] // chunk + 1


def chunks_touched(image: Image, item: Item, channels: Sequence[int]) -> int:
    """Chunks (inner chunks when sharded) an uncached read of ``item`` decodes: the y and x
    boxes, one t and z plane, every channel run (runs are separate reads)."""
    chunks = image.levels[item.level].chunks
    y, x = image.geometry.yx("tile")
    c = image.geometry.index("c")
    yx = _chunks_along(item.y, chunks[y]) * _chunks_along(item.x, chunks[x])
    if c is None:
        return yx
    return yx * sum(_chunks_along(run, chunks[c]) for run in channel_runs(channels))


__all__ = ["Item", "Sampler", "Span", "channel_runs", "chunks_touched"]
