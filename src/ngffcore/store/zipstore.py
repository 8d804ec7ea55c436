"""``ZipStore``: a zipped OME-Zarr (``.ozx``, RFC-9) as a store layered over another store,
the one holding the archive object: each key is a file of the archive, each read one
ranged read of the archive object. Read-only.

Requests (each a ranged GET of the archive; never a HEAD or LIST):

* Open (on the first read): one suffix read of the last :data:`TAIL_BYTES`, which always
  holds the end records and usually the whole central directory; one more ranged read for
  a central directory starting before those bytes. (A ZIP64 end record outside them costs
  one more first: possible only with extensible data in it beside a near-maximal archive
  comment.) Every offset is checked (``zipdir``); the key → entry table is built once.
* An entry whose local header lies in those last bytes (a small archive: all of them) is
  served from them, with no request.
* An entry's first read: its local header and the bytes asked for, in one ranged read
  from the header (the local header's length is known only from itself: the read assumes
  it is at most :data:`EXTRA_MARGIN` bytes longer than the central one says). A part far
  from the header (a shard index at the end of a large shard) is read with the header
  read alongside, concurrently: two requests, one round trip. A local header longer than
  assumed costs one more read. The data offset is then remembered: later reads of the
  entry are one exact ranged read each.

Entries must be stored (method 0), unencrypted: reading another raises UnsupportedError
naming the entry. The store's ``stats`` are the inner store's: the requests this store
has sent are requests of the archive object.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ngffcore.errors import ArgumentError, NotFoundError, ReadOnlyError, StoreError
from ngffcore.store import zipdir
from ngffcore.store.bodies import body_limit, too_large
from ngffcore.store.ioloop import BODY_BUDGET, gather_or_cancel, hold_body
from ngffcore.store.keys import check_key
from ngffcore.store.protocol import (ByteRange, Got, Store, Suffix, check_range, check_span,
                                     span_in)
from ngffcore.store.stats import RequestStats

if TYPE_CHECKING:
    from typing_extensions import Buffer

#: bytes read from the archive's end on open: the largest end records (22-byte EOCD, its
#: longest comment, the ZIP64 locator and end record: 65633 bytes) fit whatever the comment,
#: so the directory costs at most two reads; with RFC-9's short comment the ~66 KiB also
#: hold the central directory of ~700 entries (sharded images have far fewer), and a
#: suffix read of this size costs about the latency of a small one
TAIL_BYTES = 66 * 1024
#: how much longer than the central header's extra field an entry's local one is assumed to
#: be at most: ZIP64 local headers carry a 20-byte sizes field the central one leaves out
#: (Python's ``force_zip64``), Info-ZIP's timestamps 4-8 bytes more; 64 covers these with
#: room. Longer ones (padding for page alignment) cost one more read, once per entry
EXTRA_MARGIN = 64
#: a first read of a part of an entry starting at most this far past its local header reads
#: the header and the part as one range; farther, the two are read concurrently
HEADER_GAP = 64 * 1024


@dataclass
class _Archive:
    """The archive as opened: its directory and the bytes at its end the open read."""

    size: int
    entries: dict[str, zipdir.Entry]
    #: where entries' bytes end: the central directory's offset
    data_end: int
    comment: bytes
    tail: bytes
    tail_start: int
    #: data offsets of entries read so far, by key
    data_at: dict[str, int] = field(default_factory=dict)


def _give_back(nbytes: int) -> None:
    """Return to the read's budget room the inner store took for bytes this store does not
    hand on (local headers, margins): every store's ``get`` holds exactly its result."""
    budget = BODY_BUDGET.get()
    if budget is not None and nbytes > 0:
        budget.release(nbytes)


class ZipStore:
    """The files of the ZIP archive ``key`` of the store ``inner``, by name. Thread-safe.

    The archive's directory is read on first use (see the module docs), not when the store
    is made. Runs inline exactly when ``inner`` does; ``local_root`` is None: chunks are
    byte ranges inside one file, never files the native core could open."""

    #: capability flags (see ``protocol.Store``): a suffix read of an entry is one plain
    #: ranged read (its size is known); no writes
    suffix_ranges = True
    atomic_put = False
    writable = False
    local_root: bytes | None = None

    def __init__(self, inner: Store, key: str) -> None:
        if not isinstance(key, str) or not key or key.endswith("/"):
            raise ArgumentError(f"archive key {key!r} names no object")
        self.inner = inner
        self.key = check_key(key)
        #: for messages: the archive's URL (``https://host/image.ozx``)
        self.url = f"{inner.url}/{key}"
        self.concurrency = inner.concurrency
        self.inline = inner.inline
        self._archive: _Archive | None = None
        self._loading: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ZipStore({self.url!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the inner store and the key (the directory is read again on use)."""
        return (ZipStore, (self.inner, self.key))

    @property
    def identity(self) -> Hashable:
        """The inner store's identity and the archive's key."""
        return ("zip", self.inner.identity, self.key)

    @property
    def stats(self) -> RequestStats:
        """The inner store's: every request this store sends is one of the archive object."""
        return self.inner.stats

    @property
    def max_bytes_in_flight(self) -> int | None:
        return getattr(self.inner, "max_bytes_in_flight", None)

    # -- the directory ----------------------------------------------------------------------

    async def _opened(self) -> _Archive:
        """The archive's directory, read on first use. Concurrent first uses on one event
        loop wait for one read of it; a failed read is not kept (the next use tries again)."""
        while True:
            archive = self._archive
            if archive is not None:
                return archive
            if self.inline:  # never suspends: nothing can run meanwhile
                self._archive = await self._load()
                return self._archive
            loop = asyncio.get_running_loop()
            mine: asyncio.Future[None] = loop.create_future()
            with self._lock:
                pending = self._loading
                leader = pending is None or pending[0] is not loop or pending[1].done()
                if leader:
                    self._loading = (loop, mine)
            if not leader:
                assert pending is not None
                await asyncio.wait({pending[1]})
                continue  # loaded, or failed: then try again here
            try:
                self._archive = await self._load()
            finally:
                mine.set_result(None)
                with self._lock:
                    if self._loading is not None and self._loading[1] is mine:
                        self._loading = None

    async def _load(self) -> _Archive:
        token = BODY_BUDGET.set(None)  # parsed at once, never held for decoding
        try:
            got = await self.inner.get(self.key, Suffix(TAIL_BYTES))
            if got is None:
                raise NotFoundError(f"{self.url}: no such archive", path=self.url)
            size = got.size
            tail = bytes(got.data)
            if len(tail) != min(size, TAIL_BYTES):
                raise StoreError(f"{self.url}: asked for its last {TAIL_BYTES} bytes, got "
                                 f"{len(tail)} of {size}", key=self.key)
            start = size - len(tail)
            end = zipdir.find_end(tail, size, self.url)
            if end.zip64_at is not None:
                record = await self._span(end.zip64_at, end.zip64_at + zipdir.ZIP64_END_SIZE,
                                          tail, start, size)
                end = zipdir.zip64_end(end, record, self.url)
            cd = await self._span(end.cd_offset, end.cd_offset + end.cd_size, tail, start,
                                  size)
            entries = zipdir.parse_central(cd, end, self.url)
            zipdir.check_root(entries, self.url)
            return _Archive(size, entries, end.cd_offset, end.comment, tail, start)
        finally:
            BODY_BUDGET.reset(token)

    async def _span(self, a: int, b: int, tail: bytes, start: int, size: int) -> bytes:
        """Archive bytes ``[a, b)`` (``b`` <= ``size``): from ``tail`` (the bytes from
        ``start`` on) as far as it holds them, the rest with one ranged read."""
        if a >= start:
            return tail[a - start:b - start]
        head = bytes(await self._fetch(a, min(b, start), size))
        return head + tail[:max(0, b - start)]

    # -- reads ----------------------------------------------------------------------------

    async def _fetch(self, a: int, b: int, size: int) -> Buffer:
        """Archive bytes ``[a, b)`` with one ranged read, checked to be all there (and the
        archive to be the one opened: same size)."""
        got = await self.inner.get(self.key, (a, b))
        if got is None:
            raise StoreError(f"{self.url} disappeared while reading it", key=self.key)
        n = len(memoryview(got.data))
        if got.size != size or n != b - a:
            _give_back(n)
            raise StoreError(f"{self.url} changed while reading it (asked for [{a}, {b}) of "
                             f"{size} bytes, got {n} of {got.size})", key=self.key)
        return got.data

    async def _entry(self, key: str) -> tuple[_Archive, zipdir.Entry | None]:
        check_key(key)
        archive = await self._opened()
        entry = archive.entries.get(key)
        if entry is not None:
            zipdir.check_stored(entry, self.url)
        return archive, entry

    async def get(self, key: str, byte_range: ByteRange = None, *,
                  max_bytes: int | None = None) -> Got | None:
        """The entry ``key`` (or ``byte_range`` of it) and its size; None if the archive
        holds no such file. A whole entry over ``max_bytes`` (a metadata document: over the
        metadata limit), or a range longer than ``max_bytes``, is refused before any read."""
        byte_range = check_range(byte_range)
        archive, entry = await self._entry(key)
        if entry is None:
            return None
        start, stop = span_in(byte_range, entry.size)
        limit = body_limit(key, max_bytes) if byte_range is None else max_bytes
        if limit is not None and stop - start > limit:
            raise too_large(self.url, key, stop - start, limit, declared=True)
        return Got(await self._read(archive, entry, start, stop), entry.size)

    async def _read(self, archive: _Archive, entry: zipdir.Entry, start: int, stop: int
                    ) -> Buffer:
        """Bytes ``[start, stop)`` of ``entry``'s data."""
        if stop <= start:
            return b""
        at = archive.data_at.get(entry.name)
        if entry.header_at >= archive.tail_start:  # read already, with the directory
            tail = memoryview(archive.tail)
            if at is None:
                at = self._data_offset(archive, entry,
                                       tail[entry.header_at - archive.tail_start:])
            out = tail[at + start - archive.tail_start:at + stop - archive.tail_start]
            await hold_body(len(out))
            return out
        if at is not None:
            return await self._fetch(at + start, at + stop, archive.size)
        return await self._first_read(archive, entry, start, stop)

    def _data_offset(self, archive: _Archive, entry: zipdir.Entry, header: Any) -> int:
        at = entry.header_at + zipdir.local_header_length(entry, header, archive.data_end,
                                                          self.url)
        archive.data_at[entry.name] = at
        return at

    async def _first_read(self, archive: _Archive, entry: zipdir.Entry, start: int,
                          stop: int) -> Buffer:
        """Bytes ``[start, stop)`` of an entry whose local header was never read: read with
        it (see the module docs)."""
        h = entry.header_at
        lo = h + zipdir.LOCAL_SIZE + len(entry.raw_name)  # data offset if no local extra
        hi = lo + entry.central_extra + EXTRA_MARGIN  # ... if as long as assumed at most
        probe = min(hi, archive.data_end)
        # [want_a, want_b) holds data [start, stop) wherever in [lo, hi] the data begins
        want_a, want_b = lo + start, min(hi + stop, archive.data_end)
        if want_a - probe <= HEADER_GAP:
            data = await self._fetch(h, max(probe, want_b), archive.size)
            header, window, window_at = data, data, h
        else:
            head = self._fetch(h, probe, archive.size)
            part = self._fetch(want_a, want_b, archive.size)
            if self.inline:  # nothing to overlap; no tasks on a store that never suspends
                try:
                    header = await head
                except BaseException:
                    part.close()
                    raise
                window = await part
            else:
                header, window = await gather_or_cancel(head, part)
            _give_back(len(memoryview(header)))
            window_at = want_a
        n = len(memoryview(window))
        at = self._data_offset(archive, entry, header)
        a, b = at + start - window_at, at + stop - window_at
        if a >= 0 and b <= n:
            _give_back(n - (b - a))
            return memoryview(window)[a:b]
        _give_back(n)  # a local header longer than assumed: one more, exact read
        return await self._fetch(at + start, at + stop, archive.size)

    async def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]
                         ) -> list[Buffer] | None:
        """Bytes ``[start, stop)`` of each range of the entry ``key`` (clipped to its end);
        None if the archive holds no such file. The first non-empty range is read as
        ``get`` reads it (learning the data offset), the others with one ``get_ranges`` of
        the inner store."""
        spans = [check_span(r, empty=True) for r in ranges]
        archive, entry = await self._entry(key)
        if entry is None:
            return None
        spans = [(min(a, entry.size), min(b, entry.size)) for a, b in spans]
        out: list[Buffer] = [b""] * len(spans)
        rest = [i for i, (a, b) in enumerate(spans) if b > a]
        if not rest:
            return out
        first = rest.pop(0)
        out[first] = await self._read(archive, entry, *spans[first])
        if rest and entry.header_at >= archive.tail_start:
            for i in rest:
                out[i] = await self._read(archive, entry, *spans[i])
        elif rest:
            at = archive.data_at[entry.name]
            parts = await self.inner.get_ranges(self.key, [(at + spans[i][0], at + spans[i][1])
                                                           for i in rest])
            for i, part in zip(rest, parts if parts is not None else [None] * len(rest)):
                if part is None or len(memoryview(part)) != spans[i][1] - spans[i][0]:
                    raise StoreError(f"{self.url} changed while reading {key!r}", key=self.key)
                out[i] = part
        return out

    # -- writes, listing ------------------------------------------------------------------

    async def put(self, key: str, data: Buffer) -> None:
        raise ReadOnlyError(f"cannot write {self.url}/{key}: a zipped OME-Zarr is read-only")

    async def delete(self, key: str) -> None:
        raise ReadOnlyError(f"cannot delete {self.url}/{key}: a zipped OME-Zarr is read-only")

    async def list_prefix(self, prefix: str) -> list[str]:
        """Files of the archive whose name starts with ``prefix``, sorted (from its
        directory: no request once it is read)."""
        archive = await self._opened()
        return sorted(k for k in archive.entries if k.startswith(prefix))


__all__ = ["EXTRA_MARGIN", "HEADER_GAP", "TAIL_BYTES", "ZipStore"]
