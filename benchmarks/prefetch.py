"""Benchmark-only: one read's encoded chunk bytes held in memory, so that its native decode +
scatter can be timed with no I/O (the ``limit`` rows and the ``fetch_roi`` / ``decode_roi``
stages). Built on ngffcore's zarr layer (plan, file sources, the core's ``decode_batch``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ngffcore import _core
from ngffcore.store.sync import run_sync
from ngffcore.zarr.plan import ChunkPlan, Selection, normalize_selection, plan_chunks
from ngffcore.zarr.sharding import chunk_names
from ngffcore.zarr.source import file_sources, load_source, python_stages


def prefetch(arr: Any, selection: Any = Ellipsis) -> "PrefetchedRead":
    """Read every chunk ``arr[selection]`` needs into memory now (Python stages applied);
    ``.run(out)`` then decodes and scatters them in one native call. Local arrays only:
    benchmarks of remote reads measure their limit on the same data opened locally."""
    store = arr.store
    if store.local_root is None:
        raise TypeError("prefetch reads local arrays only")
    sel = normalize_selection(selection, arr.shape)
    plan = plan_chunks(arr.metadata, sel, f"{arr.path}/" if arr.path else "")
    names = chunk_names(plan)
    sources = run_sync(store, file_sources(store, plan, names))
    if plan.codec.python_stages:
        loaded = [python_stages(plan, s, n) for s, n in zip(sources, names)]
    else:
        loaded = [load_source(s) for s in sources]
    return PrefetchedRead(arr.dtype, sel, plan, loaded, names)


@dataclass
class PrefetchedRead:
    """Encoded bytes of one read, held in memory; decoding them does no I/O."""

    dtype: np.dtype
    selection: Selection
    plan: ChunkPlan
    sources: list[Any]
    names: list[str]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.selection.out_shape

    def run(self, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            out = np.empty(self.shape, self.dtype)
        if out.shape != self.shape or out.dtype != self.dtype:
            raise TypeError(f"out must be {self.shape} {self.dtype}")
        if out.size:
            # the core writes boxes of an ndim-dimensional output: dropped axes as length 1
            view = out[tuple(None if d else slice(None) for d in self.selection.dropped)]
            assert self.plan.codec.pipeline is not None
            _core.decode_batch(self.plan.codec.pipeline, view, self.plan.boxes, self.sources,
                               self.names)
        return out
