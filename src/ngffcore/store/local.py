"""``LocalStore``: a directory on the local file system, read without blocking and without
leaving its root, written atomically (see ``localfile``); its chunk files are read by the
native core itself, beneath ``local_root``."""

from __future__ import annotations

import os
import time
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from ngffcore.errors import ArgumentError, MetadataError, StoreError
from ngffcore.store.bodies import body_limit, too_large
from ngffcore.store.ioloop import hold_body
from ngffcore.store.keys import check_key
from ngffcore.store.localfile import (is_temporary, open_regular, read_at, read_to_end,
                                      write_atomic)
from ngffcore.store.protocol import ByteRange, Got, check_range, check_span, range_kind, span_in
from ngffcore.store.stats import RequestStats

if TYPE_CHECKING:
    from typing_extensions import Buffer


class LocalStore:
    """A directory on the local file system. Thread-safe (no shared state).

    Files are opened without blocking and only if they are regular files (a FIFO, socket or
    device is a StoreError at once). A symbolic link leading outside the root is refused
    (StoreError) unless ``follow_external_links`` (default False); links that stay inside
    work, and a dangling one reads as missing. Writes never go through a link leading
    outside either.

    ``put`` writes atomically (temporary file + rename); with ``fsync=True`` (default False)
    each written file and its directory are also flushed to disk before ``put`` returns.
    Every method runs to completion without suspending (``inline``)."""

    #: capability flags (see ``protocol.Store``)
    suffix_ranges = True
    atomic_put = True
    writable = True
    inline = True
    concurrency = 64

    def __init__(self, root: str | os.PathLike[str], *,
                 follow_external_links: bool = False, fsync: bool = False) -> None:
        if not isinstance(follow_external_links, bool):
            raise TypeError("follow_external_links must be True or False")
        if not isinstance(fsync, bool):
            raise TypeError("fsync must be True or False")
        self.root = os.path.abspath(os.fspath(root))
        self.url = "file://" + self.root
        self.follow_external_links = follow_external_links
        self.fsync = fsync
        self.stats = RequestStats()
        #: the native core reads chunk files beneath this directory itself (confined to it
        #: unless ``follow_external_links``: see ``confine``)
        self.local_root: bytes | None = os.fsencode(os.path.join(self.root, ""))

    @property
    def confine(self) -> bytes | None:
        """The root as file reads are kept beneath (a path ending in ``/``), or None when
        links may lead anywhere."""
        return None if self.follow_external_links else os.fsencode(os.path.join(self.root, ""))

    def _open(self, key: str) -> tuple[int, int] | None:
        return open_regular(os.fsencode(self.local_path(key)), self.confine,
                            f"{self.url}/{key}", key)

    def __repr__(self) -> str:
        return f"LocalStore({self.root!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as how to re-open: the root and the options (request counters do not
        travel)."""
        return (_reopen, (self.root, self.follow_external_links, self.fsync))

    @property
    def identity(self) -> Hashable:
        """What selects the bytes this store serves (hashable; decoded-chunk cache keys
        start with it): the root's real path, found on first use, so two spellings of one
        directory (a symlink, ``..``) share cache entries; and whether links may lead out of
        it (a confined store must never be served what a following one read through a link)."""
        ident = self.__dict__.get("_identity")
        if ident is None:
            ident = self.__dict__["_identity"] = ("file", os.path.realpath(self.root),
                                                  self.follow_external_links)
        return ident

    def local_path(self, key: str) -> str:
        """File path of ``key``; the C workers read chunk files themselves."""
        return os.path.join(self.root, check_key(key)) if key else self.root

    async def get(self, key: str, byte_range: ByteRange = None, *,
                  max_bytes: int | None = None) -> Got | None:
        """The object (or ``byte_range`` of it, see ``protocol.ByteRange``) and its size, or
        None if it does not exist. A whole object larger than ``max_bytes`` (a metadata
        document larger than the metadata limit) is refused before it is read; so is a range
        longer than ``max_bytes``. Never suspends (``inline``)."""
        byte_range = check_range(byte_range)
        kind = range_kind(byte_range)
        t0 = time.perf_counter()
        opened = self._open(key)
        if opened is None:
            self.stats.add(**{kind: 1, "not_found": 1})
            return None
        fd, size = opened
        try:
            if byte_range is None:
                data = self._read_whole(fd, key, size, body_limit(key, max_bytes))
                size = len(data)
            else:
                start, stop = span_in(byte_range, size)
                if max_bytes is not None and stop - start > max_bytes:
                    raise too_large(self.url, key, stop - start, max_bytes, declared=True)
                data = read_at(fd, start, stop - start)
        except BaseException:
            self.stats.add(**{kind: 1, "errors": 1})
            raise
        finally:
            os.close(fd)
        self.stats.add(**{kind: 1, "bytes": len(data), "seconds": time.perf_counter() - t0})
        await hold_body(len(data))
        return Got(data, size)

    def _read_whole(self, fd: int, key: str, size: int, limit: int | None) -> bytes:
        try:
            if limit is not None and size > limit:
                raise too_large(self.url, key, size, limit, declared=True)
            data = read_to_end(fd, size, limit)  # bounded while reading, not after
        except (StoreError, MetadataError):
            raise
        except OSError as exc:
            raise StoreError(f"cannot read {self.url}/{key}: {exc}", key=key) from exc
        if limit is not None and len(data) > limit:
            raise too_large(self.url, key, len(data), limit, declared=False)
        return data

    async def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]
                         ) -> list[Buffer] | None:
        """Bytes ``[start, stop)`` of each range of one object (clipped to its end), from one
        open; None if it does not exist. Never suspends (``inline``)."""
        spans = [check_span(r, empty=True) for r in ranges]
        opened = self._open(key)
        if opened is None:
            self.stats.add(range_get=1, not_found=1)
            return None
        fd, size = opened
        try:
            out: list[Buffer] = [read_at(fd, a, min(b, size) - a) if a < size else b""
                                 for a, b in spans]
        except OSError as exc:
            self.stats.add(range_get=len(spans), errors=1)
            raise StoreError(f"cannot read {self.url}/{key}: {exc}", key=key) from exc
        finally:
            os.close(fd)
        nbytes = sum(len(memoryview(d)) for d in out)
        self.stats.add(range_get=len(spans), bytes=nbytes)
        await hold_body(nbytes)
        return out

    def _write_path(self, key: str) -> str:
        """File path to write or delete ``key`` at; refused (StoreError) if it would lead
        outside the root through a symbolic link (unless ``follow_external_links``)."""
        if not key or key.endswith("/"):
            raise ArgumentError(f"key {key!r} names no object")
        path = self.local_path(key)
        if not self.follow_external_links:
            root = os.path.realpath(self.root)
            parent = os.path.realpath(os.path.dirname(path))
            if parent != root and not parent.startswith(os.path.join(root, "")):
                raise StoreError(f"cannot write {self.url}/{key}: a symbolic link leads "
                                 "outside the store root", key=key)
        return path

    async def put(self, key: str, data: Buffer) -> None:
        """Write the object ``key`` atomically (a temporary file in the same directory,
        renamed over it: readers see the old file or the new one, never a part), creating
        parent directories; flushed to disk first when the store was made with ``fsync``.
        Never suspends (``inline``)."""
        path = self._write_path(key)
        t0 = time.perf_counter()
        try:
            written = write_atomic(path, data, self.fsync)
        except OSError as exc:
            self.stats.add(put=1, errors=1)
            raise StoreError(f"cannot write {self.url}/{key}: {exc}", key=key) from exc
        self.stats.add(put=1, bytes_written=written, seconds=time.perf_counter() - t0)

    async def delete(self, key: str) -> None:
        """Remove the object ``key`` (a missing one is no error). Never suspends."""
        path = self._write_path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as exc:
            self.stats.add(delete=1, errors=1)
            raise StoreError(f"cannot delete {self.url}/{key}: {exc}", key=key) from exc
        self.stats.add(delete=1)

    async def list_prefix(self, prefix: str) -> list[str]:
        """Keys of the files beneath the directory ``prefix`` names (temporary files of
        writes in progress excluded), sorted. Never suspends."""
        base = self.local_path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        found = []
        for dirpath, _dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, self.root)
            for name in files:
                if not is_temporary(name):
                    key = name if rel == "." else f"{rel}/{name}".replace(os.sep, "/")
                    found.append(key)
        self.stats.add(list=1)
        return sorted(k for k in found if k.startswith(prefix))


def _reopen(root: str, follow_external_links: bool, fsync: bool) -> LocalStore:
    return LocalStore(root, follow_external_links=follow_external_links, fsync=fsync)


__all__ = ["LocalStore"]
