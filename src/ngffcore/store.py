"""Stores: bytes by key. Local directories are read directly; everything else via obstore.

A store never sends a HEAD or LIST: a missing object is learnt from the GET that wanted it.
Keys are ``/``-separated and relative to the store's root; keys that would escape the root
(``..``, absolute) are refused.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from typing import Any, Coroutine, TypeVar

from ngffcore.errors import NotFoundError, StoreError

T = TypeVar("T")


def check_key(key: str) -> str:
    parts = key.split("/")
    if key.startswith("/") or any(p in ("..", ".") for p in parts) or "\\" in key or "\0" in key:
        raise StoreError(f"key {key!r} escapes the store root", key=key)
    return key


class LocalStore:
    """A directory on the local file system. Thread-safe (no shared state)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.url = "file://" + self.root

    def __repr__(self) -> str:
        return f"LocalStore({self.root!r})"

    def local_path(self, key: str) -> str:
        """File path of ``key``; the C workers read chunk files themselves."""
        return os.path.join(self.root, check_key(key)) if key else self.root

    def get(self, key: str) -> bytes | None:
        """The whole object, or None if it does not exist."""
        try:
            with open(self.local_path(key), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self.url}/{key}: {exc}", key=key) from exc

    def get_end(self, key: str, length: int, *, suffix: bool) -> tuple[bytes, int] | None:
        """The last (``suffix``) or first ``length`` bytes and the object's size, or None if
        it does not exist. A shard index is read this way: one request, no size probe."""
        try:
            with open(self.local_path(key), "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(max(0, size - length) if suffix else 0)
                return f.read(length), size
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self.url}/{key}: {exc}", key=key) from exc

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [self.get(k) for k in keys]

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Bytes ``[start, start + length)`` for each ``(start, length)`` of one object."""
        try:
            with open(self.local_path(key), "rb") as f:
                out = []
                for start, length in ranges:
                    f.seek(start)
                    out.append(f.read(length))
                return out
        except OSError as exc:
            raise StoreError(f"cannot read {self.url}/{key}: {exc}", key=key) from exc


class _LoopThread:
    """One private event loop thread, so sync reads work inside a running event loop."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def run(cls, coro: Coroutine[Any, Any, T]) -> T:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="ngffcore-io",
                                 daemon=True).start()
                cls._loop = loop
        return asyncio.run_coroutine_threadsafe(coro, cls._loop).result()


class ObjectStore:
    """Any obstore store (S3, GCS, Azure, HTTP, …). Thread-safe."""

    def __init__(self, store: Any, url: str, concurrency: int = 64) -> None:
        self.store = store
        self.url = url
        self.concurrency = concurrency

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    def local_path(self, key: str) -> None:
        return None

    def _error(self, key: str, exc: Exception) -> StoreError:
        return StoreError(f"cannot read {self.url}/{key}: {exc}", key=key)

    async def _get(self, key: str, sem: asyncio.Semaphore | None = None,
                   options: dict[str, Any] | None = None) -> bytes | None:
        import obstore
        from obstore.exceptions import NotFoundError as ObsNotFound

        check_key(key)
        try:
            if sem is None:
                result = await obstore.get_async(self.store, key, options=options)
                return bytes(await result.bytes_async())
            async with sem:
                result = await obstore.get_async(self.store, key, options=options)
                return bytes(await result.bytes_async())
        except (ObsNotFound, FileNotFoundError):
            return None
        except Exception as exc:  # obstore raises many kinds; all become StoreError
            raise self._error(key, exc) from exc

    def get(self, key: str) -> bytes | None:
        return _LoopThread.run(self._get(key))

    def get_end(self, key: str, length: int, *, suffix: bool) -> tuple[bytes, int] | None:
        """The last (``suffix``) or first ``length`` bytes and the object's size, from one
        ranged GET (the response carries the size: no HEAD)."""
        import obstore
        from obstore.exceptions import NotFoundError as ObsNotFound

        check_key(key)
        rng: Any = {"suffix": length} if suffix else (0, length)

        async def one() -> tuple[bytes, int] | None:
            try:
                result = await obstore.get_async(self.store, key, options={"range": rng})
                data = bytes(await result.bytes_async())
                return data, int(result.meta["size"])
            except (ObsNotFound, FileNotFoundError):
                return None
            except Exception as exc:
                raise self._error(key, exc) from exc

        return _LoopThread.run(one())

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Bytes of each ``(start, length)`` of one object; obstore coalesces nearby ranges."""
        import obstore

        check_key(key)
        starts = [r[0] for r in ranges]
        ends = [r[0] + r[1] for r in ranges]

        async def all_of() -> list[bytes]:
            try:
                parts = await obstore.get_ranges_async(self.store, key, starts=starts, ends=ends)
            except Exception as exc:
                raise self._error(key, exc) from exc
            return [bytes(p) for p in parts]

        return _LoopThread.run(all_of())

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        async def all_of() -> list[bytes | None]:
            sem = asyncio.Semaphore(self.concurrency)
            return list(await asyncio.gather(*(self._get(k, sem) for k in keys)))

        return _LoopThread.run(all_of())


Store = LocalStore | ObjectStore

__all__ = ["LocalStore", "ObjectStore", "Store", "check_key", "NotFoundError"]
