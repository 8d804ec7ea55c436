"""``LocalStore``: a directory on the local file system, read without blocking and without
leaving its root (see ``localfile``)."""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence

from ngffcore.errors import StoreError
from ngffcore.store.bodies import body_limit, too_large
from ngffcore.store.keys import check_key
from ngffcore.store.localfile import open_regular, read_at, read_to_end


class LocalStore:
    """A directory on the local file system. Thread-safe (no shared state).

    Files are opened without blocking and only if they are regular files (a FIFO, socket or
    device is a StoreError at once). A symbolic link leading outside the root is refused
    (StoreError) unless ``follow_external_links`` (default False); links that stay inside
    work, and a dangling one reads as missing."""

    def __init__(self, root: str | os.PathLike[str], *,
                 follow_external_links: bool = False) -> None:
        if not isinstance(follow_external_links, bool):
            raise TypeError("follow_external_links must be True or False")
        self.root = os.path.abspath(os.fspath(root))
        self.url = "file://" + self.root
        self.follow_external_links = follow_external_links

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

    def get(self, key: str, *, max_bytes: int | None = None) -> bytes | None:
        """The whole object, or None if it does not exist. An object larger than
        ``max_bytes`` (a metadata document larger than the metadata limit) is refused before
        it is read."""
        limit = body_limit(key, max_bytes)
        opened = self._open(key)
        if opened is None:
            return None
        fd, size = opened
        try:
            if limit is not None and size > limit:
                raise too_large(self.url, key, size, limit, declared=True)
            data = read_to_end(fd, size, limit)  # bounded while reading, not after
        except StoreError:
            raise
        except OSError as exc:
            raise StoreError(f"cannot read {self.url}/{key}: {exc}", key=key) from exc
        finally:
            os.close(fd)
        if limit is not None and len(data) > limit:
            raise too_large(self.url, key, len(data), limit, declared=False)
        return data

    def get_end(self, key: str, length: int, *, suffix: bool) -> tuple[bytes, int] | None:
        """The last (``suffix``) or first ``length`` bytes and the object's size, or None if
        it does not exist. A shard index is read this way: one request, no size probe."""
        opened = self._open(key)
        if opened is None:
            return None
        fd, size = opened
        try:
            # at most the object: a hostile shard index length can be far larger than the
            # shard (the caller reports that)
            return read_at(fd, max(0, size - length) if suffix else 0, min(length, size)), size
        except OSError as exc:
            raise StoreError(f"cannot read {self.url}/{key}: {exc}", key=key) from exc
        finally:
            os.close(fd)

    async def get_async(self, key: str, *, max_bytes: int | None = None) -> bytes | None:
        """``get`` for code that serves both store kinds from one coroutine (a local read is
        one short syscall, done inline)."""
        return self.get(key, max_bytes=max_bytes)

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Bytes ``[start, start + length)`` for each ``(start, length)`` of one object."""
        opened = self._open(key)
        if opened is None:
            raise StoreError(f"cannot read {self.url}/{key}: it does not exist", key=key)
        fd, _ = opened
        try:
            return [read_at(fd, start, length) for start, length in ranges]
        except OSError as exc:
            raise StoreError(f"cannot read {self.url}/{key}: {exc}", key=key) from exc
        finally:
            os.close(fd)


__all__ = ["LocalStore"]
