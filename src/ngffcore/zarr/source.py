"""Sources: the encoded bytes of each chunk of a plan, from any store (the Store protocol).

* A store with a ``local_root`` (a directory the native core may read beneath): file ranges
  ``(path, offset, length, root)`` that the C workers ``pread`` themselves, so chunk bytes
  never pass through Python and memory stays bounded by threads × chunk size. Shard indexes
  are read through the store (one ranged ``get`` each).
* Any other store: :class:`ByteSource`, one ``get`` per chunk object — for a shard its index
  (a suffix ``get``, cached per array), then its needed inner chunks as ranged ``get``s merged
  across small gaps, or the whole object when most of it is needed — every request in flight
  at once up to ``store.concurrency``, each body let in by the read's byte budget
  (``ioloop.BODY_BUDGET``), each chunk handed on as soon as its bytes arrived.

Also here: what a source of either kind may need before decoding — the Python stages (bz2,
lzma) and missing chunk files told apart for a read through the cache.
"""

from __future__ import annotations

import asyncio
import lzma
import os
from dataclasses import dataclass
from typing import Any, Callable, Coroutine, Union

import numpy as np

from ngffcore.errors import DecodeError, ShardIndexError
from ngffcore.store.ioloop import BODY_BUDGET, gather_or_cancel
from ngffcore.store.localfile import read_range
from ngffcore.store.protocol import Store, get_many
from ngffcore.zarr.plan import ChunkPlan
from ngffcore.zarr.sharding import (Part, ReadOptions, ShardIndex, by_shard, fetch_index,
                                    locate, needs_whole_shard, shard_index, shard_requests,
                                    stored_parts)

# None: missing (fill value); bytes-like: the encoded chunk; tuple: (path, offset, length,
# root) of a file range, opened beneath root (None: links may lead anywhere).
Source = Union[None, bytes, memoryview, tuple[bytes, int, int, Union[bytes, None]]]

#: bound on what one encoded chunk may take per decoded byte: filters can widen the stored
#: type (``astype`` u1 -> c16 is 16x) and compressors add a little to incompressible data
ENCODED_FACTOR = 32
#: plus this much per chunk (codec headers, checksums) and per stored object
CHUNK_SLACK = 1024
OBJECT_SLACK = 2**20


def max_object_bytes(plan: ChunkPlan, itemsize: int) -> int:
    """A generous upper bound on the size of one stored object (chunk or shard) of ``plan``:
    a response declaring more is refused before its body is read. Generous on purpose:
    it stops a 1 GiB body for a 64-byte chunk, not an unusually poor compression."""
    per_chunk = int(np.prod(plan.codec.chunk_shape, dtype=np.int64)) * max(itemsize, 1)
    chunks, index = 1, 0
    for level in plan.levels:
        index += chunks * level.index_nbytes
        chunks *= level.n_inner
    return chunks * (per_chunk * ENCODED_FACTOR + CHUNK_SLACK) + index + OBJECT_SLACK


# -- stores the native core reads itself ---------------------------------------------------


def file_confine(store: Store) -> bytes | None:
    """The directory the core keeps a store's file reads beneath: its ``confine`` when it has
    one (a LocalStore following external links has None), else its ``local_root``."""
    root: bytes | None = getattr(store, "confine", store.local_root)
    return root


async def file_sources(store: Store, plan: ChunkPlan, names: list[str]) -> list[Source]:
    """One file range per planned chunk of a store with a ``local_root`` (None: an empty
    inner chunk or a missing shard). Shard indexes are read through the store, and not
    cached: a read costs one ``pread``, and a cached index could go stale under a writer.
    ``names`` get the nested levels of inner chunks appended. Never suspends when the store
    is ``inline``."""
    root = store.local_root
    assert root is not None
    confine = file_confine(store)
    if not plan.levels:
        return [(root + k.encode(), 0, -1, confine) for k in plan.keys]
    sources: list[Source] = [None] * len(plan)
    for key, members in by_shard(plan).items():
        index = await fetch_index(store, key, plan.levels[0], None)
        if index is None:
            continue  # a missing shard: all fill
        parts, _ = stored_parts(plan, members, index)
        if len(plan.levels) > 1:
            parts = await _nested_parts(store, key, plan, parts, names)
        path = root + key.encode()
        for off, ln, i in parts:
            sources[i] = (path, off, ln, confine)
    return sources


async def _nested_parts(store: Store, key: str, plan: ChunkPlan, parts: list[Part],
                        names: list[str]) -> list[Part]:
    """The innermost chunks' ranges, each nested index read with one ranged ``get``."""
    async def read(start: int, length: int, shard_len: int) -> Any:
        got = await store.get(key, (start, start + length))
        return b"" if got is None else got.data

    cache: dict[Any, Any] = {}
    found: list[Part] = []
    for off, ln, i in parts:
        where = await locate(plan, i, names, off, ln, read, cache)
        if where is not None:
            found.append((where[0], where[1], i))
    return found


def stored_sources(sources: list[Any]) -> list[Any]:
    """Local sources with chunk files that do not exist replaced by None (missing), so a
    read through the cache knows before decoding which chunks need slab memory. (A file
    removed after this check reads as the fill value, as it would have a moment earlier.)"""
    return [None if isinstance(s, tuple) and s[2] < 0 and not os.path.exists(s[0]) else s
            for s in sources]


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


# -- stores that hand over bytes -------------------------------------------------------------


@dataclass
class ByteSource:
    """Fetches every chunk of ``plan`` from ``store`` and hands each one's bytes (None: not
    stored) to ``put(chunk index, bytes)`` as they arrive; ``release(n)`` gives back budget
    room taken by bytes fetched but never handed on (gaps between merged ranges, indexes).
    Shard indexes are kept in ``index_cache``."""

    store: Store
    plan: ChunkPlan
    names: list[str]
    put: Callable[[int, Any], None]
    release: Callable[[int], None]
    index_cache: dict[str, ShardIndex | None]
    options: ReadOptions
    itemsize: int

    def __post_init__(self) -> None:
        self.max_bytes = max_object_bytes(self.plan, self.itemsize)
        self.sem = asyncio.Semaphore(self.store.concurrency)

    def together(self, budget_limit: int) -> bool:
        """Whether this is a small read of whole chunks, fetched together (``chunks``): at
        most the store's ``concurrency`` objects, at most ``budget_limit`` bytes even if
        every one were as large as it may be."""
        n = len(self.plan)
        return (not self.plan.levels and 1 < n <= self.store.concurrency
                and n * self.max_bytes <= budget_limit)

    async def chunks(self) -> list[Any]:
        """Every chunk's bytes (None: not stored), in plan order, fetched together."""
        gots = await get_many(self.store, self.plan.keys, max_bytes=self.max_bytes)
        return [None if got is None else got.data for got in gots]

    def jobs(self, budget_limit: int) -> list[Coroutine[Any, Any, None]]:
        """One job per chunk object (chunk or shard), or one fetching them all when they
        come ``together``."""
        if self.together(budget_limit):
            return [self._chunks_together()]
        if not self.plan.levels:
            return [self._chunk(i) for i in range(len(self.plan))]
        return [self._shard(key, members) for key, members in by_shard(self.plan).items()]

    async def _chunks_together(self) -> None:
        for i, data in enumerate(await self.chunks()):
            self.put(i, data)

    async def _chunk(self, i: int) -> None:
        async with self.sem:
            got = await self.store.get(self.plan.keys[i], max_bytes=self.max_bytes)
        self.put(i, None if got is None else got.data)

    async def _shard(self, key: str, members: list[int]) -> None:
        plan, cache = self.plan, self.index_cache
        whole = None
        if key not in cache and needs_whole_shard(plan, members):
            # every inner chunk is needed: one GET of the whole shard, index included
            async with self.sem:
                got = await self.store.get(key, max_bytes=self.max_bytes)
            if got is not None:
                whole = got.data
            cache[key] = None if got is None else shard_index(plan.levels[0], key, got.data,
                                                               got.size)
        else:
            token = BODY_BUDGET.set(None)  # an index is parsed at once, not held for decoding
            try:
                async with self.sem:
                    await fetch_index(self.store, key, plan.levels[0], cache)
            finally:
                BODY_BUDGET.reset(token)
        index = cache[key]
        if index is None:
            for i in members:
                self.put(i, None)
            return
        parts, empty = stored_parts(plan, members, index)
        for i in empty:
            self.put(i, None)  # empty inner chunk: fill value
        if whole is not None:
            await self._deliver(key, memoryview(whole), 0, parts)
        elif parts:
            await gather_or_cancel(*(self._range(key, start, end, index[2], group)
                                     for start, end, group in shard_requests(
                                         parts, index[2], self.options)))

    async def _range(self, key: str, start: int, end: int, size: int, parts: list[Part]
                     ) -> None:
        async with self.sem:
            whole = start == 0 and end == size
            got = await self.store.get(key, None if whole else (start, end),
                                       max_bytes=self.max_bytes if whole else None)
        n = 0 if got is None else len(memoryview(got.data))
        if got is None or n != end - start:
            raise ShardIndexError(f"shard {key!r}: expected {end - start} bytes at {start}, "
                                  f"got {n}", key=key, codec="sharding_indexed")
        await self._deliver(key, memoryview(got.data), start, parts)

    async def _deliver(self, key: str, view: memoryview, start: int, parts: list[Part]
                       ) -> None:
        """Hand on the chunks ``(offset, length, chunk)`` found in bytes fetched from
        ``start`` (descending through nested shards inside them)."""
        nested: dict[Any, Any] = {}
        queued = 0

        async def read(at: int, length: int, shard_len: int) -> Any:
            return view[at - start:at - start + length]

        for off, ln, i in parts:
            if len(self.plan.levels) > 1:
                where = await locate(self.plan, i, self.names, off, ln, read, nested)
                if where is None:
                    self.put(i, None)
                    continue
                off, ln = where
            region = view[off - start:off - start + ln]
            self.put(i, region)
            queued += len(region)
        # the bytes around the chunks (gaps, indexes, empty chunks) are not decoded
        self.release(len(view) - queued)


__all__ = ["ByteSource", "Source", "file_sources", "load_source", "max_object_bytes",
           "python_stages", "stored_sources"]
