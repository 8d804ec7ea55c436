"""Sources for a batch: where each planned chunk's encoded bytes are.

Local stores hand the C workers file ranges (they ``pread`` them, so bytes never pass through
Python and memory stays bounded by threads × chunk size); other stores hand over bytes.
"""

from __future__ import annotations

import lzma
import os
from collections import defaultdict
from typing import Any, Union

import numpy as np

from ngffcore.errors import DecodeError, ShardIndexError
from ngffcore.store.localfile import read_range
from ngffcore.zarr.plan import ChunkPlan
from ngffcore.zarr.shard import read_index, read_shard_index
from ngffcore.store.local import LocalStore

# None: missing (fill value); bytes: the encoded chunk; tuple: (path, offset, length, root) of
# a file range, opened beneath root (the store's ``confine``; None: links lead anywhere).
Source = Union[None, bytes, tuple[bytes, int, int, Union[bytes, None]]]


def chunk_sources(store: LocalStore, plan: ChunkPlan) -> tuple[list[Source], list[str]]:
    """One source per planned chunk of a local array, and the name each chunk has in error
    messages. (Object stores go through ``remote.read_into`` instead.)"""
    if not plan.levels:
        sources = _unsharded(store, plan.keys)
        names = plan.keys
    else:
        sources, names = _sharded(store, plan)
    if plan.codec.python_stages:
        sources = [python_stages(plan, s, name) for s, name in zip(sources, names)]
    return sources, names


def _unsharded(store: LocalStore, keys: list[str]) -> list[Source]:
    root = os.fsencode(os.path.join(store.root, ""))
    confine = store.confine
    return [(root + k.encode(), 0, -1, confine) for k in keys]


def _sharded(store: LocalStore, plan: ChunkPlan) -> tuple[list[Source], list[str]]:
    n = len(plan.keys)
    confine = store.confine
    sources: list[Source] = [None] * n
    names: list[str] = [""] * n
    by_shard: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(plan.keys):
        by_shard[key].append(i)
    assert plan.inner is not None
    for key, members in by_shard.items():
        idx = np.asarray(members)
        lin0 = plan.inner[idx, 0]
        for i, lin in zip(members, lin0.tolist()):
            names[i] = f"{key}[{lin}]"
        index = read_shard_index(store, key, plan.levels[0])
        if index is None:
            continue  # a missing shard: all fill
        offsets, nbytes, _ = index
        offs = offsets[lin0]
        lens = nbytes[lin0]
        if len(plan.levels) > 1:
            offs, lens = _nested(store, key, plan, idx, offs, lens, names)
        path = os.fsencode(store.local_path(key))
        for i, off, ln in zip(members, offs.tolist(), lens.tolist()):
            if off >= 0:
                sources[i] = (path, off, ln, confine)
    return sources, names


def _nested(store: LocalStore, key: str, plan: ChunkPlan, idx: np.ndarray, offs: np.ndarray,
            lens: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Follow nested shard indexes down to the innermost chunks (one index read per
    distinct inner shard)."""
    offs = offs.copy()
    lens = lens.copy()
    for level in range(1, len(plan.levels)):
        layout = plan.levels[level]
        cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for j, i in enumerate(idx.tolist()):
            lin = int(plan.inner[i, level])  # type: ignore[index]
            names[i] += f"[{lin}]"
            off, ln = int(offs[j]), int(lens[j])
            if off < 0:
                continue
            region = (off, ln)
            if region not in cache:
                try:
                    cache[region] = read_index(store, key, layout, off, ln)
                except ShardIndexError as exc:
                    raise ShardIndexError(f"{exc} (nested shard at byte {off} of {key!r})",
                                          key=names[i], codec="sharding_indexed") from None
            sub_off, sub_len = cache[region]
            offs[j], lens[j] = sub_off[lin], sub_len[lin]
    return offs, lens


def load_source(source: Any) -> Any:
    """The encoded bytes of a source (a local file range is read here, in Python, opened as
    the core opens it: see ``localfile.open_regular``)."""
    if not isinstance(source, tuple):
        return source
    path, off, ln = source[:3]
    return read_range(path, off, ln, source[3] if len(source) > 3 else None)


def python_stages(plan: ChunkPlan, source: Any, name: str) -> Any:
    """bz2 / lzma, which the core does not link: decoded here (the GIL is released inside).
    ``source`` is None, a file range, or any bytes-like object."""
    data = load_source(source)
    if data is None:
        return None
    for stage in plan.codec.python_stages:
        try:
            data = stage(data)
        except (OSError, ValueError, EOFError, lzma.LZMAError) as exc:
            codec = str(getattr(stage, "codec", None) or getattr(stage, "__module__", "python"))
            raise DecodeError(f"data is corrupt in chunk {name!r} ({codec}): {exc}", key=name,
                              codec=codec) from None
    return data
