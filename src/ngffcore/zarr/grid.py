"""Grid-aligned cuts of a box: the rule that splits a large read into pieces that each read
whole storage cells (shards when sharded, else chunks), none read twice.

Used by the dask blocks (``ngffcore.dask``) and the command line's slabbed reads
(``ngffcore.cli.read``). Boxes are half-open ``((start, stop), ...)`` in array coordinates;
the grid is the array's global storage grid, so a box's first and last pieces along an axis
are clipped at the box, not shifted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Box = tuple[tuple[int, int], ...]


def cells_spanned(start: int, stop: int, cell: int) -> int:
    """How many cells of a grid of ``cell`` the interval ``[start, stop)`` touches."""
    return -(-stop // cell) - start // cell


def cut(start: int, stop: int, step: int) -> list[tuple[int, int]]:
    """``[start, stop)`` cut at the multiples of ``step`` (``[]`` when it is empty)."""
    out = []
    while start < stop:
        edge = min(stop, (start // step + 1) * step)
        out.append((start, edge))
        start = edge
    return out


def slab_boxes(box: Box, grid: Sequence[int], itemsize: int, limit: int) -> list[Box]:
    """``box`` cut along its outermost axis that spans more than one grid cell, at grid
    boundaries, into slabs of at most ``limit`` bytes (at least one cell thick): each slab
    reads whole chunks (shards), none is read twice."""
    extents = [b - a for a, b in box]
    total = math.prod(extents) * itemsize
    if total <= limit:
        return [box]
    for axis, ((a, b), g) in enumerate(zip(box, grid)):
        if cells_spanned(a, b, g) > 1:
            break
    else:
        return [box]
    per_unit = total // extents[axis]  # bytes of a slab one element thick
    step = max(1, limit // (per_unit * grid[axis])) * grid[axis]
    return [box[:axis] + (piece,) + box[axis + 1:] for piece in cut(a, b, step)]


__all__ = ["Box", "cells_spanned", "cut", "slab_boxes"]
