"""``MemoryStore``: objects held in a dict in this process (tests, scratch arrays, the write
path's staging), behind the Store protocol."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

from ngffcore.errors import ArgumentError
from ngffcore.store.bodies import body_limit, too_large
from ngffcore.store.ioloop import hold_body
from ngffcore.store.keys import check_key
from ngffcore.store.protocol import ByteRange, Got, check_range, check_span, range_kind, span_in
from ngffcore.store.stats import RequestStats

if TYPE_CHECKING:
    from typing_extensions import Buffer

#: numbers the instances: an identity is never reused, even after a store is freed (a
#: decoded-chunk cache must not serve one store's chunks to a later one)
_instances = itertools.count()


class MemoryStore:
    """Objects in a dict, by key. Thread-safe; every method runs to completion without
    suspending (``inline``). ``put`` stores a copy of the bytes, seen whole or not at all;
    reads return the stored bytes (or a zero-copy view of a range of them)."""

    #: capability flags (see ``protocol.Store``)
    suffix_ranges = True
    atomic_put = True
    writable = True
    inline = True
    concurrency = 64
    local_root: bytes | None = None

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, bytes] = {}
        number = next(_instances)
        self.identity: Hashable = ("memory", number)
        self.url = f"memory://{number}"
        self.stats = RequestStats()
        for key, data in (objects or {}).items():
            self._objects[self._key(key)] = bytes(data)

    def __repr__(self) -> str:
        return f"MemoryStore({self.url!r})"

    @staticmethod
    def _key(key: str) -> str:
        if not key or key.endswith("/"):
            raise ArgumentError(f"key {key!r} names no object")
        return check_key(key)

    async def get(self, key: str, byte_range: ByteRange = None, *,
                  max_bytes: int | None = None) -> Got | None:
        """The object (or ``byte_range`` of it) and its size; None if it does not exist. A
        whole object over ``max_bytes`` (a metadata document: over the metadata limit), or
        a range longer than ``max_bytes``, is refused."""
        byte_range = check_range(byte_range)
        kind = range_kind(byte_range)
        with self._lock:
            data = self._objects.get(check_key(key))
        if data is None:
            self.stats.add(**{kind: 1, "not_found": 1})
            return None
        start, stop = span_in(byte_range, len(data))
        limit = body_limit(key, max_bytes) if byte_range is None else max_bytes
        if limit is not None and stop - start > limit:
            self.stats.add(**{kind: 1, "errors": 1})
            raise too_large(self.url, key, stop - start, limit, declared=True)
        out: Buffer = data if byte_range is None else memoryview(data)[start:stop]
        self.stats.add(**{kind: 1, "bytes": stop - start})
        await hold_body(stop - start)
        return Got(out, len(data))

    async def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]
                         ) -> list[Buffer] | None:
        """Zero-copy views of bytes ``[start, stop)`` of each range (clipped to the object's
        end); None if it does not exist."""
        spans = [check_span(r, empty=True) for r in ranges]
        with self._lock:
            data = self._objects.get(check_key(key))
        if data is None:
            self.stats.add(range_get=1, not_found=1)
            return None
        view = memoryview(data)
        out = [view[a:b] for a, b in spans]
        self.stats.add(range_get=len(spans), bytes=sum(len(v) for v in out))
        await hold_body(sum(len(v) for v in out))
        return list(out)

    async def put(self, key: str, data: Buffer) -> None:
        """Store a copy of ``data`` as the object ``key``."""
        t0 = time.perf_counter()
        key = self._key(key)
        copy = bytes(data)
        with self._lock:
            self._objects[key] = copy
        self.stats.add(put=1, bytes_written=len(copy), seconds=time.perf_counter() - t0)

    async def delete(self, key: str) -> None:
        """Remove the object ``key``; a missing one is no error."""
        key = self._key(key)
        with self._lock:
            self._objects.pop(key, None)
        self.stats.add(delete=1)

    async def list_prefix(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix``, sorted."""
        with self._lock:
            found = sorted(k for k in self._objects if k.startswith(prefix))
        self.stats.add(list=1)
        return found

    def keys(self) -> list[str]:
        """The keys of every object, sorted."""
        with self._lock:
            return sorted(self._objects)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a MemoryStore lives in one process: it cannot be pickled")


__all__ = ["MemoryStore"]
