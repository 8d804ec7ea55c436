"""Selections → boxes → the chunks a read touches, with their storage keys.

All boxes are half-open, in array (element) coordinates.
"""

from __future__ import annotations

import numbers
import numpy as np

from ngffcore import _core
from ngffcore.zarr.codecs import ChunkCodec, ShardLayout
from ngffcore.errors import SelectionError
from ngffcore.zarr.metadata import ArrayMetadata


class Selection:
    """A normalised basic selection: the box ``[start, stop)`` and which axes are dropped.

    A plain slotted class, not a dataclass: it is built on every read (hot path)."""

    __slots__ = ("start", "stop", "dropped", "out_shape")

    def __init__(self, start: tuple[int, ...], stop: tuple[int, ...],
                 dropped: tuple[bool, ...]) -> None:
        self.start = start
        self.stop = stop
        self.dropped = dropped  # integer-indexed axes, removed from the result
        self.out_shape = tuple(b - a for a, b, d in zip(start, stop, dropped) if not d)


def normalize_selection(selection: object, shape: tuple[int, ...]) -> Selection:
    """numpy basic indexing restricted to ints, step-1 slices and one Ellipsis."""
    items = selection if type(selection) is tuple else (selection,)
    ndim = len(shape)
    ellipsis_at = -1
    for k, item in enumerate(items):
        if item is Ellipsis:
            if ellipsis_at >= 0:
                raise SelectionError("an index can only have a single ellipsis ('...')")
            ellipsis_at = k
    n_items = len(items) - (ellipsis_at >= 0)
    if n_items > ndim:
        raise SelectionError(f"too many indices for array: array is {ndim}-dimensional, but "
                             f"{n_items} were indexed")
    if ellipsis_at >= 0:
        items = items[:ellipsis_at] + (slice(None),) * (ndim - n_items) + items[ellipsis_at + 1:]
    elif n_items < ndim:
        items = items + (slice(None),) * (ndim - n_items)
    start, stop, dropped = [], [], []
    for axis in range(ndim):
        item = items[axis]
        n = shape[axis]
        if type(item) is int:  # the common cases first
            if item < -n or item >= n:
                raise SelectionError(f"index {item} is out of bounds for axis {axis} with "
                                     f"size {n}")
            if item < 0:
                item += n
            start.append(item)
            stop.append(item + 1)
            dropped.append(True)
        elif type(item) is slice:
            if item.step is not None and item.step != 1:
                raise SelectionError(f"slice step {item.step!r} on axis {axis} is not supported"
                                     " (only step 1)")
            try:
                lo, hi, _ = item.indices(n)
            except TypeError:
                raise SelectionError(f"slice bounds on axis {axis} must be integers, not "
                                     f"{item!r}") from None
            start.append(lo)
            stop.append(hi if hi > lo else lo)
            dropped.append(False)
        elif isinstance(item, numbers.Integral) and not isinstance(item, (bool, np.bool_)):
            i = int(item)
            if i < -n or i >= n:
                raise SelectionError(f"index {i} is out of bounds for axis {axis} with size {n}")
            if i < 0:
                i += n
            start.append(i)
            stop.append(i + 1)
            dropped.append(True)
        else:
            raise SelectionError(f"unsupported index {item!r} on axis {axis}: only integers, "
                                 "step-1 slices and '...' are supported")
    return Selection(tuple(start), tuple(stop), tuple(dropped))


class ChunkPlan:
    """The chunks (innermost chunks, when sharded) a box touches.

    ``boxes`` is ``(n, 3*ndim)`` int64 as :func:`ngffcore._core.plan_chunks` gives it; ``keys``
    the storage object of each chunk (its shard when sharded); ``inner`` the C-order index of
    the chunk inside its shard, one column per sharding level; ``codec`` decodes one chunk.
    """

    __slots__ = ("boxes", "keys", "inner", "levels", "codec")

    def __init__(self, boxes: np.ndarray, keys: list[str], inner: np.ndarray | None,
                 levels: tuple[ShardLayout, ...], codec: ChunkCodec) -> None:
        self.boxes = boxes
        self.keys = keys
        self.inner = inner
        self.levels = levels
        self.codec = codec

    def __len__(self) -> int:
        return len(self.keys)


def plan_chunks(meta: ArrayMetadata, sel: Selection, prefix: str = "") -> ChunkPlan:
    """Chunks touched by ``sel``, in C order of the (innermost) chunk grid."""
    levels, leaf = meta.shard_levels, meta.leaf_codec
    coords, boxes = _core.plan_chunks(meta.shape, leaf.chunk_shape, sel.start, sel.stop)
    if not levels:
        keys = _core.chunk_keys(coords, meta.key_encoding, meta.key_separator, prefix)
        return ChunkPlan(boxes, keys, None, (), leaf)
    leaf_shape = np.asarray(leaf.chunk_shape, dtype=np.int64)
    origin = coords * leaf_shape  # element position of each chunk's origin
    grid = np.asarray(meta.grid_shape, dtype=np.int64)
    keys = _core.chunk_keys(np.ascontiguousarray(origin // grid), meta.key_encoding,
                            meta.key_separator, prefix)
    inner = np.empty((len(keys), len(levels)), dtype=np.int64)
    outer = grid
    for k, level in enumerate(levels):
        sub = np.asarray(level.inner.chunk_shape, dtype=np.int64)
        local = ((origin % outer) // sub)[:, list(level.perm)]  # in the shard's axis order
        inner[:, k] = np.ravel_multi_index(tuple(local.T), level.chunks_per_shard) \
            if len(keys) else 0
        outer = sub
    return ChunkPlan(boxes, keys, inner, levels, leaf)
