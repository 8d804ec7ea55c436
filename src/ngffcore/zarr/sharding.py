"""Sharding (Zarr v3 ``sharding_indexed``) as a layer over any store: where an inner chunk's
bytes are inside its shard object.

The I/O-free part — parsing and checking an index, grouping a plan's chunks by shard, naming
them, choosing the requests for one shard (coalesced ranges, or the whole object) — is shared
by every read. The two reads it does are written against the Store protocol and nothing
else: :func:`fetch_index` (one request per shard index: a suffix or prefix ``get`` that also
tells the object's size) and :func:`locate` (the descent through nested shard indexes, whose
index bytes come from a reader the caller gives: bytes already fetched, or a ranged ``get``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import numpy as np

from ngffcore import _core
from ngffcore.errors import ShardIndexError
from ngffcore.store.protocol import Store, Suffix
from ngffcore.zarr.codecs import ShardLayout
from ngffcore.zarr.plan import ChunkPlan

#: a parsed shard index: offsets (-1: empty inner chunk), sizes, and the shard's size
ShardIndex = tuple[np.ndarray, np.ndarray, int]


@dataclass(frozen=True)
class ReadOptions:
    """Request policy of reads that fetch bytes (all sizes in bytes)."""

    coalesce_gap: int = 256 * 1024  # merge inner-chunk ranges separated by at most this
    whole_shard_fraction: float = 0.5  # fetch the whole shard when this much of it is needed
    # received but not yet decoded; None: the store's (open_store's max_bytes_in_flight)
    max_bytes_in_flight: int | None = None


def index_range(layout: ShardLayout, shard_len: int) -> tuple[int, int]:
    """``(start, length)`` of the index inside a shard of ``shard_len`` bytes."""
    n = layout.index_nbytes
    return (shard_len - n, n) if layout.index_at_end else (0, n)


def parse_index(layout: ShardLayout, raw: Any, key: str, shard_len: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (relative to the shard start) and sizes of every inner chunk; -1 if empty."""
    if len(raw) != layout.index_nbytes:
        raise ShardIndexError(
            f"shard index of {key!r}: {len(raw)} bytes, expected {layout.index_nbytes} "
            f"(shard is {shard_len} bytes)", key=key, codec="sharding_indexed")
    body = raw = memoryview(raw)  # any bytes-like object (obstore.Bytes: no copy)
    if layout.index_crc32c:
        body = raw[:-4]
        stored = int.from_bytes(raw[-4:], "little")
        actual = _core.crc32c(body)
        if stored != actual:
            raise ShardIndexError(
                f"shard index of {key!r}: crc32c mismatch (stored {stored:08x}, computed "
                f"{actual:08x})", key=key, codec="sharding_indexed")
    status, offsets, nbytes, bad = _core.shard_index_parse(body, layout.n_inner,
                                                           layout.index_big_endian, shard_len)
    if status != 0:
        detail = f"shard of {shard_len} bytes"
        if bad >= 0:
            detail = (f"entry {bad} (offset {offsets[bad]}, {nbytes[bad]} bytes) lies outside "
                      f"the {detail}")
        _core.raise_status(status, key, in_shard_index=True, detail=detail.encode())
    return offsets, nbytes


def shard_index(layout: ShardLayout, key: str, raw: Any, size: int) -> ShardIndex:
    """Parsed index of a shard object of ``size`` bytes, from its index bytes (or from the
    whole object: the index is cut out of it), with the size."""
    if size < layout.index_nbytes:
        raise ShardIndexError(
            f"shard index of {key!r}: shard is {size} bytes, too short for an index of "
            f"{layout.index_nbytes} bytes", key=key, codec="sharding_indexed")
    if len(raw) == size and size != layout.index_nbytes:
        start, length = index_range(layout, size)
        raw = memoryview(raw)[start:start + length]
    offsets, nbytes = parse_index(layout, raw, key, size)
    return offsets, nbytes, size


async def fetch_index(store: Store, key: str, layout: ShardLayout,
                      cache: dict[str, ShardIndex | None] | None) -> ShardIndex | None:
    """Index of the shard object ``key`` from one request (a suffix or prefix ``get``, which
    also tells the object's size), kept in ``cache`` if given; None if the shard does not
    exist (every inner chunk is then the fill value)."""
    if cache is not None and key in cache:
        return cache[key]
    n = layout.index_nbytes
    got = await store.get(key, Suffix(n) if layout.index_at_end else (0, n))
    index = None if got is None else shard_index(layout, key, got.data, got.size)
    if cache is not None:
        cache[key] = index
    return index


def by_shard(plan: ChunkPlan) -> dict[str, list[int]]:
    """The plan's chunks grouped by the object (shard, or chunk when unsharded) they are in."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(plan.keys):
        groups[key].append(i)
    return groups


def chunk_names(plan: ChunkPlan) -> list[str]:
    """What each chunk is called in error messages: its key, and for an inner chunk its
    index in the (outermost) shard; deeper levels are appended by :func:`locate`."""
    if not plan.levels:
        return list(plan.keys)
    assert plan.inner is not None
    return [f"{k}[{i}]" for k, i in zip(plan.keys, plan.inner[:, 0].tolist())]


def needs_whole_shard(plan: ChunkPlan, members: list[int]) -> bool:
    """Every inner chunk of the shard is needed: one GET of the whole shard, index included
    (asked only while its index is not cached)."""
    return len(np.unique(plan.inner[members, 0])) == plan.levels[0].n_inner  # type: ignore[index]


#: ``(start, length, chunk index)`` of a stored inner chunk; a request serves several
Part = tuple[int, int, int]


def coalesce(parts: list[Part], gap: int) -> list[tuple[int, int, list[Part]]]:
    """Merge parts into requests ``(start, end, members)`` across gaps up to ``gap``."""
    merged: list[tuple[int, int, list[Part]]] = []
    for start, length, i in sorted(parts):
        end = start + length
        if merged and start - merged[-1][1] <= gap:
            s0, e0, members = merged[-1]
            members.append((start, length, i))
            merged[-1] = (s0, max(e0, end), members)
        else:
            merged.append((start, end, [(start, length, i)]))
    return merged


def shard_requests(parts: list[Part], size: int, options: ReadOptions
                   ) -> list[tuple[int, int, list[Part]]]:
    """The data requests for one shard: the whole object when most of it is needed, else the
    parts merged across small gaps."""
    if sum(p[1] for p in parts) >= options.whole_shard_fraction * size:
        return [(0, size, parts)]
    return coalesce(parts, options.coalesce_gap)


def stored_parts(plan: ChunkPlan, members: list[int], index: ShardIndex
                 ) -> tuple[list[Part], list[int]]:
    """The members of one shard that are stored (as parts, absolute in the object) and
    those that are empty (fill value), from its index."""
    offsets, nbytes, _ = index
    lin = plan.inner[members, 0]  # type: ignore[index]
    parts: list[Part] = []
    empty: list[int] = []
    for i, off, ln in zip(members, offsets[lin].tolist(), nbytes[lin].tolist()):
        if off < 0:
            empty.append(i)
        else:
            parts.append((off, ln, i))
    return parts, empty


#: reads the index bytes of a nested shard occupying ``[start, start + length)`` of its object
IndexReader = Callable[[int, int, int], Awaitable[Any]]


async def locate(plan: ChunkPlan, i: int, names: list[str], off: int, ln: int,
                 read: IndexReader, cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]
                 ) -> tuple[int, int] | None:
    """Follow nested shard indexes from chunk ``i``'s outermost inner chunk (``ln`` bytes at
    ``off`` in its object) down to its innermost bytes: their ``(offset, length)`` in the
    object, or None if it is empty at some level. ``read(start, length, shard_len)`` gives
    index bytes; each nested index is read and parsed once per ``cache``."""
    for level in range(1, len(plan.levels)):
        layout = plan.levels[level]
        lin = int(plan.inner[i, level])  # type: ignore[index]
        name = names[i]
        names[i] = f"{name}[{lin}]"
        if (level, off) not in cache:
            raw: Any = b""
            if ln >= layout.index_nbytes:  # else shard_index reports the short shard
                start, length = index_range(layout, ln)
                raw = await read(off + start, length, ln)
            try:
                offsets, nbytes, _ = shard_index(layout, f"nested shard of {name}", raw, ln)
            except ShardIndexError as exc:
                raise ShardIndexError(f"{exc} (nested shard at byte {off} of {plan.keys[i]!r})",
                                      key=names[i], codec="sharding_indexed") from None
            cache[(level, off)] = offsets, nbytes
        offsets, nbytes = cache[(level, off)]
        if offsets[lin] < 0:
            return None
        off, ln = off + int(offsets[lin]), int(nbytes[lin])
    return off, ln


__all__ = ["ReadOptions", "ShardIndex", "by_shard", "chunk_names", "coalesce", "fetch_index",
           "index_range", "locate", "needs_whole_shard", "parse_index", "shard_index",
           "shard_requests", "stored_parts"]
