"""The decoded-chunk cache: chunks a read decoded, kept for the next read that needs them.

Viewers read neighbouring and repeated tiles: a chunk decoded once serves them all with no
request and no decode. Reads through a cache decode every missing chunk whole into one
*slab* (one native call), then scatter the needed boxes from cached chunks into the output
(a second native call, a plain strided copy). The cache is an LRU of slabs, bounded in
bytes: a slab's chunks live and die together, so the bound counts real memory, never
views that keep a larger buffer alive. A read whose missing chunks alone would fill more
than ``bypass_fraction`` of the cache bypasses it (a whole-level read would evict everything
a viewer holds, for no later gain).

Concurrent reads that miss one chunk decode it once (``claim``/``release``: the others wait
for it). Keys are ``(store url, chunk key, inner chunk index…)``: images opened twice from one
location share entries. Cached chunks are immutable (read-only arrays). Thread-safe.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from typing import Any

import numpy as np

#: default size of an image's cache (bytes)
DEFAULT_CACHE_BYTES = 512 * 2**20


class Pending:
    """A chunk some read is decoding: other reads wait for it, from threads (``wait``) or
    from any event loop (``wait_async``, which ties up no thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def wait(self) -> None:
        self._done.wait()

    async def wait_async(self) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._done.is_set():
                return
            self._waiters.append((loop, future))
        await future

    def set(self) -> None:
        with self._lock:
            self._done.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop has closed: nobody waits there any more
                pass


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class Claim:
    """What one read decodes itself (``mine``: indices of its keys) and the chunks other
    reads are decoding (``others``); see :meth:`ChunkCache.claim`."""

    mine: list[int]
    others: list[Pending]
    owned: dict[Hashable, Pending]


@dataclass(frozen=True)
class CacheStats:
    """``hits``/``misses``: chunks found / not found; ``evictions``: slabs dropped;
    ``bytes``: decoded bytes held; ``chunks``: chunks held."""

    hits: int
    misses: int
    evictions: int
    bytes: int
    chunks: int


class ChunkCache:
    """A byte-bounded LRU of decoded chunks, shared by every level and channel of the images
    it is given to (``ngffcore.open(..., cache=ChunkCache(...))`` shares it across images).
    Thread-safe: one lock around dictionary updates; no I/O or decoding under it."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES, *, bypass_fraction: float = 0.25
                 ) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        if not 0 < bypass_fraction <= 1:
            raise ValueError("bypass_fraction must be in (0, 1]")
        self.max_bytes = int(max_bytes)
        self.bypass_fraction = bypass_fraction
        self._lock = threading.Lock()
        self._slab_ids = itertools.count()
        # slab id -> (nbytes, keys); most recently used last
        self._slabs: OrderedDict[int, tuple[int, tuple[Hashable, ...]]] = OrderedDict()
        self._chunks: dict[Hashable, tuple[int, np.ndarray]] = {}  # key -> (slab id, chunk)
        self._pending: dict[Hashable, Pending] = {}  # being decoded by some read
        self._bytes = 0
        self._hits = self._misses = self._evictions = 0

    def __repr__(self) -> str:
        s = self.stats()
        return (f"ChunkCache({s.bytes}/{self.max_bytes} bytes, {s.chunks} chunks, "
                f"{s.hits} hits, {s.misses} misses)")

    def admits(self, nbytes: int) -> bool:
        """Whether a read decoding ``nbytes`` of missing chunks goes through the cache."""
        return nbytes <= self.max_bytes * self.bypass_fraction

    def claim(self, keys: Sequence[Hashable], todo: Sequence[int], nbytes: int) -> Claim:
        """Of the chunks ``todo`` (indices into ``keys``) not in the cache, claim for this
        read those no other read is decoding, so concurrent reads (neighbouring tiles) never
        fetch one chunk twice; the others are :class:`Pending` until their reader is done. A read the
        cache does not admit (``nbytes`` decoded) claims nothing and decodes all itself.
        Every claim must be released (``release``), also when the read fails."""
        if not self.admits(nbytes):
            return Claim(list(todo), [], {})
        claim = Claim([], [], {})
        with self._lock:
            for i in todo:
                key = keys[i]
                if key in self._chunks:
                    continue  # put there since the lookup: ``collect`` takes it
                pending = self._pending.get(key)
                if pending is None:
                    pending = self._pending[key] = Pending()
                    claim.owned[key] = pending
                    claim.mine.append(i)
                else:
                    claim.others.append(pending)
        return claim

    def release(self, claim: Claim) -> None:
        """End a claim: readers waiting for its chunks wake (and find them cached, or decode
        them themselves if this read failed)."""
        with self._lock:
            for key, pending in claim.owned.items():
                if self._pending.get(key) is pending:
                    del self._pending[key]
        for pending in claim.owned.values():
            pending.set()

    def collect(self, keys: Sequence[Hashable], todo: Sequence[int], found: list[Any]
                ) -> list[int]:
        """Fill ``found`` at ``todo`` from the cache; the indices still missing."""
        still = [i for i in todo if found[i] is None]
        for i, chunk in zip(still, self.lookup([keys[i] for i in still])):
            found[i] = chunk
        return [i for i in still if found[i] is None]

    def lookup(self, keys: Sequence[Hashable]) -> list[np.ndarray | None]:
        """The cached chunk for each key (None where absent); found slabs become the most
        recently used."""
        found: list[np.ndarray | None] = []
        with self._lock:
            for key in keys:
                entry = self._chunks.get(key)
                if entry is None:
                    found.append(None)
                    continue
                slab, chunk = entry
                self._slabs.move_to_end(slab)
                found.append(chunk)
            hits = sum(f is not None for f in found)
            self._hits += hits
            self._misses += len(found) - hits
        return found

    def insert(self, keys: Sequence[Hashable], slab: np.ndarray, chunks: Sequence[np.ndarray]
               ) -> None:
        """Hold ``chunks`` (views of ``slab``, one per key) until their slab is evicted."""
        if len(keys) != len(chunks):
            raise ValueError("one chunk per key")
        nbytes = slab.nbytes
        if nbytes > self.max_bytes:
            return
        slab.flags.writeable = False
        for chunk in chunks:  # views made before keep their own flag
            chunk.flags.writeable = False
        with self._lock:
            sid = next(self._slab_ids)
            kept = []
            for key, chunk in zip(keys, chunks):
                if key not in self._chunks:  # a concurrent read may have put it first
                    self._chunks[key] = (sid, chunk)
                    kept.append(key)
            if not kept:
                return  # nothing of this slab is held: it must not count
            self._slabs[sid] = (nbytes, tuple(kept))
            self._bytes += nbytes
            while self._bytes > self.max_bytes and self._slabs:
                _, (size, old_keys) = self._slabs.popitem(last=False)
                self._bytes -= size
                self._evictions += 1
                for key in old_keys:
                    del self._chunks[key]

    def clear(self) -> None:
        with self._lock:
            self._slabs.clear()
            self._chunks.clear()
            self._bytes = 0

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, self._evictions, self._bytes,
                              len(self._chunks))


__all__ = ["ChunkCache", "CacheStats", "DEFAULT_CACHE_BYTES"]
