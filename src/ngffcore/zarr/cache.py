"""The decoded-chunk cache: chunks a read decoded, kept for the next read that needs them.

Viewers read neighbouring and repeated tiles: a chunk decoded once serves them all with no
request and no decode. Reads through a cache decode every missing chunk whole into one
*slab* (one native call), then scatter the needed boxes from cached chunks into the output
(a second native call, a plain strided copy). The cache is an LRU of slabs, bounded in
bytes: a slab's chunks live and die together, so the bound counts real memory, never
views that keep a larger buffer alive. A read whose missing chunks alone would fill more
than ``bypass_fraction`` of the cache bypasses it (a whole-level read would evict everything
a viewer holds, for no later gain).

Slab memory is recycled (on CPython 3.10-3.13, where the reference count below was
checked): a slab evicted (or cleared) while no view of it is alive anywhere goes to a small
pool of spare buffers (at most ``spare_bytes``), and the next read takes its slab from there. Fresh memory costs a page fault per 4 KiB on first write, which for a
viewer's cold tile (12 chunks of 256 KiB) was a third of its decode time (measured: the
first 40-tile pass of a process 41.6 ms, with recycled memory 28.6 ms). "No view alive" is
the buffer's reference count, checked under the lock after the cache dropped its own views,
so a reader still scattering from an evicted chunk keeps its memory from being reused.

Concurrent reads that miss one chunk decode it once (``claim``/``release``: the others wait
for it). Keys are ``(store identity, chunk key, inner chunk index…)``; the identity holds
everything that selects the bytes (location, endpoint, credentials, options: see
``identity.py``), so images opened twice from one location with the same options share
entries and tenants with other options never do. A chunk known not to be stored is held as
``MISSING`` (it reads as the fill value), never as a decoded buffer. Cached chunks are
immutable (read-only arrays). Thread-safe.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from typing import Any

import numpy as np

from ngffcore.errors import ArgumentError

#: default size of an image's cache (bytes)
DEFAULT_CACHE_BYTES = 512 * 2**20
#: default bound of the spare slab buffers a cache keeps for reuse (bytes; also at most a
#: quarter of the cache)
DEFAULT_SPARE_BYTES = 64 * 2**20
#: what the cache holds for a chunk known not to be stored (it reads as the fill value): an
#: empty read-only array, never a decoded buffer of the chunk's size
MISSING = np.empty(0, dtype=np.uint8)
MISSING.flags.writeable = False
#: bytes a MISSING entry counts against ``max_bytes`` (about what its dictionary entries
#: cost), so a sparse array's holes are bounded like anything else
MISSING_BYTES = 256


def _extra_refs(obj: object) -> int:
    return sys.getrefcount(obj) - sys.getrefcount(object())


def _local_refs() -> int:
    probe = object()
    return _extra_refs(probe)


#: what ``_extra_refs(local)`` counts for an object that one local variable of the calling
#: function holds and nothing else does: 2 on CPython 3.11-3.13, 3 on 3.10 (the caller's
#: argument slot counts too), measured rather than assumed. A slab buffer counting more has a
#: view alive somewhere. Callers must call it exactly so: ``_extra_refs(local) <= _LOCAL_REFS``.
_LOCAL_REFS = _local_refs()
#: slab recycling is on only where that count was checked (CPython 3.10-3.13): an interpreter
#: that borrows references differently (3.14 may) could undercount a reader's view, and
#: recycling it would hand its pixels to another read
_RECYCLE = sys.implementation.name == "cpython" and (3, 10) <= sys.version_info[:2] <= (3, 13)


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
    ``bytes``: decoded bytes held; ``chunks``: chunks held; ``spare_bytes``: evicted slab
    memory kept for reuse; ``recycled``: slabs made from spare memory."""

    hits: int
    misses: int
    evictions: int
    bytes: int
    chunks: int
    spare_bytes: int = 0
    recycled: int = 0


class ChunkCache:
    """A byte-bounded LRU of decoded chunks, shared by every level and channel of the images
    it is given to (``ngffcore.open(..., cache=ChunkCache(...))`` shares it across images).
    ``max_bytes`` bounds the chunks held; ``spare_bytes`` (default: 64 MiB, at most a quarter
    of ``max_bytes``) bounds the evicted slab buffers kept for reuse, so the memory a cache
    holds is at most ``max_bytes + spare_bytes``.
    Thread-safe: one lock around dictionary updates; no I/O or decoding under it."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES, *, bypass_fraction: float = 0.25,
                 spare_bytes: int | None = None) -> None:
        if max_bytes < 0:
            raise ArgumentError("max_bytes must be >= 0")
        if not 0 < bypass_fraction <= 1:
            raise ArgumentError("bypass_fraction must be in (0, 1]")
        if spare_bytes is not None and spare_bytes < 0:
            raise ArgumentError("spare_bytes must be >= 0")
        self.max_bytes = int(max_bytes)
        self.bypass_fraction = bypass_fraction
        self.spare_bytes = (min(DEFAULT_SPARE_BYTES, self.max_bytes // 4) if spare_bytes is None
                            else int(spare_bytes))
        self._lock = threading.Lock()
        self._slab_ids = itertools.count()
        # slab id -> (nbytes, keys, recyclable buffers); most recently used last. One entry
        # holds the chunks one read decoded, in one or more slabs, which live and die together
        self._slabs: OrderedDict[int, tuple[int, tuple[Hashable, ...], tuple[np.ndarray, ...]]
                                 ] = OrderedDict()
        self._spares: list[np.ndarray] = []  # most recently freed last
        self._spare_total = 0
        self._recycled = 0
        self._chunks: dict[Hashable, tuple[int, np.ndarray]] = {}  # key -> (slab id, chunk)
        # (store identity, object key) -> the chunk keys held of that object: what a write
        # of the object makes stale (forget), found without scanning every chunk
        self._by_object: dict[Hashable, set[Hashable]] = {}
        self._pending: dict[Hashable, Pending] = {}  # being decoded by some read
        self._bytes = 0
        self._hits = self._misses = self._evictions = 0
        _CACHES.add(self)

    def __repr__(self) -> str:
        s = self.stats()
        return (f"ChunkCache({s.bytes}/{self.max_bytes} bytes, {s.chunks} chunks, "
                f"{s.hits} hits, {s.misses} misses)")

    def new_slab(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        """A writable C-contiguous array for a read to decode missing chunks into: a view of a
        spare buffer when one fits (at least the size, at most twice it), else new memory."""
        nbytes = math.prod(shape) * dtype.itemsize
        buf = None
        with self._lock:
            best = -1
            for j, spare in enumerate(self._spares):
                if nbytes <= spare.nbytes <= 2 * nbytes and (
                        best < 0 or spare.nbytes < self._spares[best].nbytes):
                    best = j
            if best >= 0:
                buf = self._spares.pop(best)
                self._spare_total -= buf.nbytes
                self._recycled += 1
        if buf is None:
            buf = np.empty(max(nbytes, 1), dtype=np.uint8)
        return buf[:nbytes].view(dtype).reshape(shape)

    def _keep_spare(self, buf: np.ndarray) -> None:
        """With the lock held: keep ``buf``, which nothing but the cache refers to any more,
        as a spare (within ``spare_bytes``)."""
        if buf.nbytes > self.spare_bytes:
            return
        self._spares.append(buf)
        self._spare_total += buf.nbytes
        while self._spare_total > self.spare_bytes:
            self._spare_total -= self._spares.pop(0).nbytes

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
        # one Pending for all the chunks this read claims: they are released together, and
        # a tile's dozen claims then cost one lock and event, not twelve
        mine: Pending | None = None
        with self._lock:
            for i in todo:
                key = keys[i]
                if key in self._chunks:
                    continue  # put there since the lookup: ``collect`` takes it
                pending = self._pending.get(key)
                if pending is None:
                    if mine is None:
                        mine = Pending()
                    self._pending[key] = claim.owned[key] = mine
                    claim.mine.append(i)
                elif not any(p is pending for p in claim.others):
                    claim.others.append(pending)
        return claim

    def release(self, claim: Claim) -> None:
        """End a claim: readers waiting for its chunks wake (and find them cached, or decode
        them themselves if this read failed)."""
        with self._lock:
            for key, pending in claim.owned.items():
                if self._pending.get(key) is pending:
                    del self._pending[key]
        for pending in {id(p): p for p in claim.owned.values()}.values():
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

    def insert(self, keys: Sequence[Hashable], slab: np.ndarray | Sequence[np.ndarray],
               chunks: Sequence[np.ndarray]) -> None:
        """Hold ``chunks`` (one per key: views of ``slab``, or of the slabs it lists, or
        ``MISSING``) until they are evicted, all together."""
        if len(keys) != len(chunks):
            raise ArgumentError("one chunk per key")
        slabs = [slab] if isinstance(slab, np.ndarray) else list(slab)
        bufs = []
        nbytes = MISSING_BYTES * sum(chunk is MISSING for chunk in chunks)
        for one in slabs:
            base = one.base
            # a slab from ``new_slab`` is a view of a flat byte buffer that owns its memory;
            # only such a buffer can serve as a later slab. (Whether anyone else still holds
            # it is decided at eviction, by its reference count.)
            if (isinstance(base, np.ndarray) and base.base is None and base.ndim == 1
                    and base.dtype == np.uint8 and base.flags.writeable):
                bufs.append(base)
                nbytes += base.nbytes  # a spare may be up to 2x the slab
            else:
                nbytes += one.nbytes
        if nbytes > self.max_bytes:
            return
        for one in slabs:
            one.flags.writeable = False
        for chunk in chunks:  # views made before keep their own flag
            chunk.flags.writeable = False
        with self._lock:
            sid = next(self._slab_ids)
            kept = []
            for key, chunk in zip(keys, chunks):
                if key not in self._chunks:  # a concurrent read may have put it first
                    self._chunks[key] = (sid, chunk)
                    self._by_object.setdefault(_object_of(key), set()).add(key)
                    kept.append(key)
            if not kept:
                return  # nothing of this slab is held: it must not count
            self._slabs[sid] = (nbytes, tuple(kept), tuple(bufs))
            self._bytes += nbytes
            while self._bytes > self.max_bytes and self._slabs:
                old_sid, (size, old_keys, olds) = self._slabs.popitem(last=False)
                self._bytes -= size
                self._evictions += 1
                for key in old_keys:
                    # forgotten after a write (and maybe cached again since, in another slab)
                    if self._chunks.get(key, (None,))[0] == old_sid:
                        del self._chunks[key]
                        self._unindex(key)
                spare = list(olds)
                del olds  # the list holds the only references now: see _recycle
                self._recycle(spare)

    def _recycle(self, olds: list[np.ndarray]) -> None:
        """With the lock held: keep as spares the buffers of ``olds`` (which the caller
        handed over, keeping no other reference) that no reader holds any more."""
        while olds:
            old = olds.pop()
            if _RECYCLE and _extra_refs(old) <= _LOCAL_REFS:
                self._keep_spare(old)
            del old

    def forget(self, identity: Hashable, keys: Sequence[str]) -> None:
        """Drop the chunks of the objects ``keys`` (chunks or shards) of the store with
        ``identity``: a write through this process replaced them. Their slabs stay (with
        the other chunks decoded with them) until evicted."""
        with self._lock:
            for key in keys:
                for chunk_key in self._by_object.pop((identity, key), ()):
                    self._chunks.pop(chunk_key, None)

    def _unindex(self, key: Hashable) -> None:
        obj = _object_of(key)
        held = self._by_object.get(obj)
        if held is not None:
            held.discard(key)
            if not held:
                del self._by_object[obj]

    def clear(self) -> None:
        """Drop every chunk (their memory becomes spare slabs where no reader holds it)."""
        with self._lock:
            slabs = [buf for entry in self._slabs.values() for buf in entry[2]]
            self._slabs.clear()
            self._chunks.clear()
            self._by_object.clear()
            self._bytes = 0
            slabs.reverse()  # least recently used first: the spare bound keeps the newest
            self._recycle(slabs)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, self._evictions, self._bytes,
                              len(self._chunks), self._spare_total, self._recycled)


def _object_of(key: Hashable) -> Hashable:
    """The (store identity, object key) a chunk key ``(identity, key, inner...)`` belongs to."""
    return key[:2] if isinstance(key, tuple) else key


#: every live cache: a write drops what it replaced from each (``forget_everywhere``)
_CACHES: weakref.WeakSet[ChunkCache] = weakref.WeakSet()


def has_caches() -> bool:
    """Whether any cache is alive (a write then names what it replaced, for them)."""
    return len(_CACHES) > 0


def forget_everywhere(identity: Hashable, keys: Sequence[str]) -> None:
    """Drop the written objects ``keys`` of the store ``identity`` from every cache."""
    for cache in list(_CACHES):
        cache.forget(identity, keys)


__all__ = ["ChunkCache", "CacheStats", "DEFAULT_CACHE_BYTES", "forget_everywhere",
           "has_caches"]
