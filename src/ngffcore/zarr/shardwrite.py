"""Sharded writes, I/O-free: which shards a write covers whole, and one shard object built
from its inner chunks' encoded bytes (new ones, and old ones copied unchanged) with its index.
The write path (``write.py``) does the I/O; nothing here knows the store."""

from __future__ import annotations

from typing import Any

import numpy as np

from ngffcore import _core
from ngffcore.zarr.codecs import ShardLayout

#: an index entry of an empty inner chunk (offset and length both all ones)
EMPTY = np.uint64(2**64 - 1)


def inner_in_array(shape: tuple[int, ...], shard_shape: tuple[int, ...],
                   inner_shape: tuple[int, ...], origin: np.ndarray) -> int:
    """How many inner chunks of the shard at ``origin`` (element coordinates) hold any
    element of the array (an edge shard's chunks beyond the array never do)."""
    n = 1
    for d in range(len(shape)):
        extent = min(shard_shape[d], shape[d] - int(origin[d]))
        n *= -(-extent // inner_shape[d])
    return n


def assemble(layout: ShardLayout, new: dict[int, Any], old: Any = None,
             old_offsets: np.ndarray | None = None, old_nbytes: np.ndarray | None = None
             ) -> bytes | None:
    """The bytes of a shard whose inner chunk ``j`` is ``new[j]`` (encoded bytes, or None:
    empty) where given, else its old bytes (``old`` the old shard, with its parsed index)
    copied unchanged, else empty. None when every inner chunk is empty (the shard is to be
    deleted). Inner chunks are laid out in index order; the index goes where the layout
    says, little- or big-endian, with its crc32c when the layout has one."""
    n = layout.n_inner
    index = np.full((n, 2), EMPTY, dtype=np.uint64)
    parts: list[Any] = []
    at = 0 if layout.index_at_end else layout.index_nbytes
    old_view = memoryview(old).cast("B") if old is not None else None
    for j in range(n):
        if j in new:
            data = new[j]
        elif old_view is not None and old_offsets is not None and old_nbytes is not None \
                and old_offsets[j] >= 0:
            start = int(old_offsets[j])
            data = old_view[start:start + int(old_nbytes[j])]
        else:
            data = None
        if data is None:
            continue
        length = len(memoryview(data))
        index[j] = (at, length)
        parts.append(data)
        at += length
    if not parts:
        return None
    raw = index.astype(">u8" if layout.index_big_endian else "<u8").tobytes()
    if layout.index_crc32c:
        raw += _core.crc32c(raw).to_bytes(4, "little")
    return b"".join(parts + [raw] if layout.index_at_end else [raw] + parts)


def shard_origins(boxes: np.ndarray, sel_start: tuple[int, ...],
                  grid: tuple[int, ...]) -> np.ndarray:
    """Element origin of the shard holding each planned inner chunk (rows of ``boxes``)."""
    ndim = len(grid)
    start = np.asarray(sel_start, dtype=np.int64)
    chunk_origin = start + boxes[:, 2 * ndim:3 * ndim] - boxes[:, :ndim]
    g = np.asarray(grid, dtype=np.int64)
    origins: np.ndarray = (chunk_origin // g) * g
    return origins


def covers_chunk(boxes: np.ndarray, sel_start: tuple[int, ...], shape: tuple[int, ...],
                 chunk_shape: tuple[int, ...]) -> np.ndarray:
    """Per planned chunk: whether the write's box covers every element of it that lies in
    the array (then nothing of the old chunk survives: no read needed)."""
    ndim = len(shape)
    if not len(boxes):
        return np.zeros(0, dtype=bool)
    if len(boxes) == 1:  # one chunk (small writes): plain ints beat numpy's per-call cost
        row = boxes[0].tolist()
        return np.array([all(
            row[d] == 0 and row[ndim + d] == min(chunk_shape[d], shape[d] - (
                sel_start[d] + row[2 * ndim + d])) for d in range(ndim))])
    start = np.asarray(sel_start, dtype=np.int64)
    inner, extent = boxes[:, :ndim], boxes[:, ndim:2 * ndim]
    origin = start + boxes[:, 2 * ndim:3 * ndim] - inner
    full = np.minimum(np.asarray(chunk_shape, dtype=np.int64),
                      np.asarray(shape, dtype=np.int64) - origin)
    whole: np.ndarray = np.all((inner == 0) & (extent == full), axis=1)
    return whole


__all__ = ["assemble", "covers_chunk", "inner_in_array", "shard_origins"]
