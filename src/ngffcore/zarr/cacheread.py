"""One read through a :class:`~ngffcore.zarr.cache.ChunkCache`: the chunks it takes from the
cache, those it decodes and keeps, and those it decodes straight into its output.

Whether the cache admits the read (``ChunkCache.admits``) is decided before anything is
allocated. A read it does not admit decodes its missing chunks into the caller's output
exactly like an uncached read, so a few pixels of a huge chunk never cost a whole-chunk
buffer. A read it admits decodes each batch of chunks, as they arrive, into a slab that
holds only the chunks that are stored; a chunk that is not (it reads as the fill value) is
kept as the marker ``MISSING``, never as a decoded buffer of its size.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Hashable

import numpy as np

from ngffcore import _core
from ngffcore.zarr.cache import MISSING, ChunkCache
from ngffcore.zarr.plan import ChunkPlan, Selection

if TYPE_CHECKING:
    from ngffcore.zarr.array import Array


def subplan(plan: ChunkPlan, which: list[int]) -> ChunkPlan:
    """Chunks ``which`` of ``plan``, with their boxes (and output positions) unchanged."""
    idx = np.asarray(which, dtype=np.int64)
    return ChunkPlan(np.ascontiguousarray(plan.boxes[idx]), [plan.keys[i] for i in which],
                     None if plan.inner is None else plan.inner[idx], plan.levels, plan.codec)


class CachedRead:
    """The state of one read of ``plan`` into ``out`` through ``cache``. ``todo``: indices
    of the chunks still to decode (neither found in the cache nor decoded yet)."""

    def __init__(self, array: "Array", plan: ChunkPlan, sel: Selection, out: np.ndarray,
                 cache: ChunkCache) -> None:
        self.array = array
        self.plan = plan
        self.sel = sel
        self.out = out
        self.cache = cache
        # everything that selects the bytes: two stores that differ in any of it (endpoint,
        # credentials, root, ...) never share entries, whatever their URLs look like
        ident = array._store.identity
        self.keys: list[Hashable] = (
            [(ident, k) for k in plan.keys] if plan.inner is None else
            [(ident, k, *row) for k, row in zip(plan.keys, plan.inner.tolist())])
        self.found: list[Any] = cache.lookup(self.keys)
        self.todo = [i for i, f in enumerate(self.found) if f is None]
        self.placed: set[int] = set()  # chunks already scattered into out
        self._lock = threading.Lock()
        self._batches: list[tuple[list[int], np.ndarray | None, list[np.ndarray]]] = []

    def nbytes(self, n_chunks: int) -> int:
        """Decoded bytes of ``n_chunks`` whole chunks: what admitting them would cost."""
        return (n_chunks * math.prod(self.plan.codec.chunk_shape)
                * self.array.dtype.itemsize)

    def direct(self) -> ChunkPlan | None:
        """If the cache does not admit this read's missing chunks, the plan that decodes them
        straight into ``out`` (an uncached read of just those; the caller runs it), and they
        count as placed; else None."""
        if not self.todo or self.cache.admits(self.nbytes(len(self.todo))):
            return None
        todo, self.todo = self.todo, []
        self.placed.update(todo)
        return subplan(self.plan, todo)

    def fill(self, which: list[int]) -> tuple[ChunkPlan, Any]:
        """The plan that fetches chunks ``which``, and the batch decoder (see
        ``pipeline.read_into``) that decodes them into slabs and places them into ``out``."""
        def decode(idx: np.ndarray, sources: list[Any], names: list[str]) -> None:
            self._decode([which[j] for j in idx.tolist()], sources, names)
        return subplan(self.plan, which), decode

    def _decode(self, which: list[int], sources: list[Any], names: list[str]) -> None:
        """One batch, on a decoding thread: the stored chunks into a new slab (from the
        cache: recycled memory where it has some), one block per chunk along axis 0; the
        missing ones as ``MISSING``; then all of them into ``out``."""
        got: list[np.ndarray] = [MISSING] * len(which)
        present = [k for k, s in enumerate(sources) if s is not None]
        slab = None
        if present:
            slab = decode_to_slab(self.cache, self.plan.codec, self.array.dtype, present,
                                  sources, names, got)
        self.scatter(got, which)
        with self._lock:
            self._batches.append((which, slab, got))

    def keep(self) -> None:
        """The chunks decoded since the last call fill their places in ``found`` and are
        offered to the cache, as one unit (they are evicted together)."""
        with self._lock:
            batches, self._batches = self._batches, []
        keys, slabs, chunks = [], [], []
        for which, slab, got in batches:
            for i, chunk in zip(which, got):
                self.found[i] = chunk
                keys.append(self.keys[i])
                chunks.append(chunk)
            self.placed.update(which)
            if slab is not None:
                slabs.append(slab)
        if keys:
            self.cache.insert(keys, slabs, chunks)

    def collect(self) -> None:
        """After waiting for other reads' claims: take what they cached."""
        self.todo = self.cache.collect(self.keys, self.todo, self.found)

    def finish(self) -> None:
        """Scatter the chunks not placed yet (found in the cache) into ``out``."""
        if not self.placed:
            self.scatter(self.found, None)
            return
        rest = [i for i in range(len(self.found)) if i not in self.placed]
        if rest:
            self.scatter([self.found[i] for i in rest], rest)

    def scatter(self, chunks: list[Any], which: list[int] | None) -> None:
        """Copy the boxes of chunks ``which`` of the plan (None: all, in order) from
        ``chunks`` (decoded, or ``MISSING``: the fill value) into ``out``: one native
        call."""
        plan = self.plan
        if which is None:  # a warm read: no per-call copy of the boxes
            names, boxes = [str(k) for k in plan.keys], plan.boxes
        else:
            names = [str(plan.keys[i]) for i in which]
            boxes = np.ascontiguousarray(plan.boxes[which])
        sources = [None if c is MISSING else c for c in chunks]
        _core.decode_batch(self.array.metadata.decoded_pipeline,
                           self.array._core_view(self.sel, self.out), boxes, sources, names)


def decode_to_slab(cache: Any, codec: Any, dtype: np.dtype[Any], which: list[int],
                   sources: list[Any], names: list[str], results: list[Any]) -> np.ndarray:
    """Chunks ``which`` (indexes into ``sources``/``names``) decoded by the innermost
    ``codec`` into a new slab from ``cache`` (recycled memory where it has some), one block
    per chunk along axis 0 — the layout the cache keeps; each chunk's view goes into
    ``results[k]``. One native call."""
    chunk = codec.chunk_shape
    ndim, c0 = len(chunk), chunk[0]
    assert codec.pipeline is not None  # innermost chunks always have one
    slab: np.ndarray = cache.new_slab((len(which) * c0, *chunk[1:]), dtype)
    boxes = np.zeros((len(which), 3 * ndim), dtype=np.int64)
    boxes[:, ndim:2 * ndim] = chunk
    boxes[:, 2 * ndim] = np.arange(len(which), dtype=np.int64) * c0
    _core.decode_batch(codec.pipeline, slab, boxes, [sources[k] for k in which],
                       [names[k] for k in which])
    for p, k in enumerate(which):
        results[k] = slab[p * c0:(p + 1) * c0]
    return slab


__all__ = ["CachedRead", "decode_to_slab", "subplan"]
