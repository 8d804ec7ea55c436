"""Stores: bytes by key. Local directories are read directly; everything else via obstore.

A store never sends a HEAD or LIST: a missing object is learnt from the GET that wanted it.
Keys are ``/``-separated and relative to the store's root; keys that would escape the root
(``..``, absolute) are refused.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Sequence
from typing import Any, Coroutine, TypeVar

from ngffcore.errors import AuthError, NotFoundError, StoreError

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

    async def get_async(self, key: str) -> bytes | None:
        """``get`` for code that serves both store kinds from one coroutine (a local read is
        one short syscall, done inline)."""
        return self.get(key)

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


class RetryPolicy:
    """How many times, and after which pause, ngffcore re-sends a GET whose body failed: the
    store's obstore ``retry_config`` (obstore's defaults when it has none: 10 retries, 100 ms
    doubling to 15 s, 180 s in all). Pauses are jittered (50–100 % of the backoff) so many
    reads failing together do not retry in lockstep."""

    def __init__(self, max_retries: int = 10, init_backoff: float = 0.1,
                 max_backoff: float = 15.0, base: float = 2.0, retry_timeout: float = 180.0
                 ) -> None:
        self.max_retries = max_retries
        self.init_backoff = init_backoff
        self.max_backoff = max_backoff
        self.base = base
        self.retry_timeout = retry_timeout

    @classmethod
    def of(cls, store: Any) -> "RetryPolicy":
        config = getattr(store, "retry_config", None) or {}
        backoff = config.get("backoff") or {}
        defaults = cls()
        return cls(max_retries=int(config.get("max_retries", defaults.max_retries)),
                   init_backoff=_seconds(backoff.get("init_backoff"), defaults.init_backoff),
                   max_backoff=_seconds(backoff.get("max_backoff"), defaults.max_backoff),
                   base=float(backoff.get("base", defaults.base)),
                   retry_timeout=_seconds(config.get("retry_timeout"), defaults.retry_timeout))

    def delay(self, retries_done: int, elapsed: float) -> float | None:
        """Seconds to wait before the next attempt, or None when the budget is spent."""
        if retries_done >= self.max_retries or elapsed >= self.retry_timeout:
            return None
        backoff = min(self.max_backoff, self.init_backoff * self.base ** retries_done)
        return backoff * (0.5 + 0.5 * random.random())


def _seconds(value: Any, default: float) -> float:
    if value is None:
        return default
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


class RequestStats:
    """Requests one store has sent, by kind (thread-safe counters; ``snapshot()`` to read).

    ``get``: whole-object GETs; ``range_get``: GETs of ``[start, end)`` ranges (obstore may
    merge nearby ranges into one request: counted as sent); ``suffix_get``: GETs of an object's
    last bytes (shard indexes); ``not_found``: GETs answered 404 (read as fill value);
    ``errors``: GETs that failed; ``retries``: GETs ngffcore sent again because a body failed
    after its headers (each attempt also counts as a request of its kind; obstore's own
    retries before the headers are not visible here); ``bytes``: body bytes received;
    ``seconds``: summed request latency. A store never sends HEAD or LIST.
    """

    FIELDS = ("get", "range_get", "suffix_get", "not_found", "errors", "retries", "bytes",
              "seconds")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, float] = dict.fromkeys(self.FIELDS, 0)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, value in deltas.items():
                self._counts[name] += value

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._counts)

    @property
    def requests(self) -> int:
        c = self.snapshot()
        return int(c["get"] + c["range_get"] + c["suffix_get"])

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(self.FIELDS, 0)

    def __repr__(self) -> str:
        return f"RequestStats({self.snapshot()})"


async def gather_or_cancel(*aws: Any) -> list[Any]:
    """``asyncio.gather``, except that when one fails (or the caller is cancelled) the others
    are cancelled and awaited before the error propagates: no request of a failed read is
    left running."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def run_on_io_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on ngffcore's private event loop thread and wait for it."""
    return _LoopThread.run(coro)


class ObjectStore:
    """Any obstore store (S3, GCS, Azure, HTTP, …). Thread-safe; usable from any event loop.

    ``concurrency`` bounds requests in flight per read; ``missing_on_403`` reads objects
    answered 403 as missing (buckets that hide existence), off by default.
    """

    def __init__(self, store: Any, url: str, concurrency: int = 64,
                 missing_on_403: bool = False, *, options: dict[str, Any] | None = None
                 ) -> None:
        self.store = store
        self.url = url
        self.concurrency = concurrency
        self.missing_on_403 = missing_on_403
        self.stats = RequestStats()
        # the store options (credentials among them) this store was opened from a URL with,
        # or None for a store made from an obstore object; only pickles carry them, never
        # repr, str, task names or messages
        self._options = None if options is None else dict(options)
        self._retry_policy = RetryPolicy.of(store)
        from obstore.store import AzureStore

        #: whether a shard index at the end can be asked for with one suffix range GET
        #: (obstore's Azure client refuses suffix ranges: Azure Blob Storage has none)
        self.suffix_ranges = not isinstance(store, AzureStore)

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as how to re-open: the URL and store options it was opened with, or the
        obstore store object it wraps (obstore stores pickle their configuration). The
        unpickled store is created once per process and shared (:func:`shared_store`), so a
        worker builds one HTTP client per store, not one per task. Request counters do not
        travel."""
        if self._options is not None:
            spec: tuple[Any, ...] = ("url", self.url, self._options)
        else:
            import pickle

            spec = ("obstore", self.url, pickle.dumps(self.store))
        return (shared_store, (spec, self.concurrency, self.missing_on_403))

    def local_path(self, key: str) -> None:
        return None

    def _error(self, key: str, exc: Exception, retries: int = 0) -> StoreError:
        from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

        if isinstance(exc, (PermissionDeniedError, UnauthenticatedError)):
            return AuthError(f"access to {self.url}/{key} was refused: {exc}", key=key)
        after = f" (body failed {retries + 1} times)" if retries else ""
        return StoreError(f"cannot read {self.url}/{key}{after}: {exc}", key=key)

    async def _request(self, key: str, kind: str, options: Any) -> tuple[Any, int] | None:
        """One GET; (body as a bytes-like object, object size) or None if missing.

        obstore retries 5xx answers, resets and timeouts only until the response headers
        arrive. A body that fails after them (reset mid-body, cut short, stalled past the
        timeout) is retried here by sending the GET again, within the same store's
        ``retry_config`` (``max_retries``, backoff, ``retry_timeout``), so a flaky network
        costs a retry, not a failed read."""
        import obstore
        from obstore.exceptions import NotFoundError as ObsNotFound
        from obstore.exceptions import PermissionDeniedError

        check_key(key)
        t0 = time.perf_counter()
        body_retries = 0
        while True:
            t1 = time.perf_counter()
            try:
                result = await obstore.get_async(self.store, key, options=options)
            except (ObsNotFound, FileNotFoundError):
                self.stats.add(**{kind: 1, "not_found": 1, "seconds": time.perf_counter() - t1})
                return None
            except PermissionDeniedError as exc:
                self.stats.add(**{kind: 1, "errors": 1, "seconds": time.perf_counter() - t1})
                if self.missing_on_403:
                    return None
                raise self._error(key, exc) from exc
            except Exception as exc:  # obstore raises many kinds; all become StoreError
                self.stats.add(**{kind: 1, "errors": 1, "seconds": time.perf_counter() - t1})
                raise self._error(key, exc) from exc
            try:
                # obstore.Bytes exposes the buffer protocol: handed to the core without a copy
                data: Any = await result.bytes_async()
            except Exception as exc:
                self.stats.add(**{kind: 1, "errors": 1, "seconds": time.perf_counter() - t1})
                delay = self._retry_policy.delay(body_retries, time.perf_counter() - t0)
                if delay is None:
                    raise self._error(key, exc, retries=body_retries) from exc
                body_retries += 1
                self.stats.add(retries=1)
                await asyncio.sleep(delay)
                continue
            self.stats.add(**{kind: 1, "bytes": len(data), "seconds": time.perf_counter() - t1})
            return data, int(result.meta["size"])

    async def get_async(self, key: str) -> Any:
        """The whole object as a bytes-like object, or None if it does not exist."""
        got = await self._request(key, "get", None)
        return None if got is None else got[0]

    async def get_end_async(self, key: str, length: int, *, suffix: bool
                            ) -> tuple[bytes, int] | None:
        """The last (``suffix``) or first ``length`` bytes and the object's size, from one
        ranged GET (the response carries the size: no HEAD).

        Azure Blob Storage does not accept suffix ranges (``bytes=-n``; obstore's Azure client
        refuses them before sending): on an ``AzureStore`` the size comes from a 1-byte ranged
        GET and the end from a second ranged GET (two round trips instead of one; no HEAD)."""
        if not suffix:
            return await self._request(key, "range_get", {"range": (0, length)})
        if self.suffix_ranges:
            return await self._request(key, "suffix_get", {"range": {"suffix": length}})
        first = await self._request(key, "range_get", {"range": (0, 1)})
        if first is None:
            return None
        size = first[1]
        if size <= 1:
            return first
        got = await self._request(key, "range_get", {"range": (max(0, size - length), size)})
        if got is None:
            raise StoreError(f"{self.url}/{key} disappeared while reading it", key=key)
        return got

    async def get_ranges_async(self, key: str, ranges: Sequence[tuple[int, int]]
                               ) -> list[Any]:
        """Bytes of each ``(start, length)`` of one object, one ranged GET per range. Nearby
        ranges are merged by the caller (see ``coalesce``)."""
        parts = await gather_or_cancel(*(
            self._request(key, "range_get", {"range": (start, start + length)})
            for start, length in ranges))
        out = []
        for (start, length), part in zip(ranges, parts):
            if part is None:
                raise StoreError(f"{self.url}/{key} disappeared while reading it", key=key)
            out.append(part[0])
        return out

    def get(self, key: str) -> bytes | None:
        data = _LoopThread.run(self.get_async(key))
        return None if data is None else bytes(data)


Store = LocalStore | ObjectStore

#: stores re-created by unpickling, by a digest of how they were opened (bounded LRU)
_SHARED: dict[bytes, ObjectStore] = {}
_SHARED_LOCK = threading.Lock()
_SHARED_MAX = 64


def shared_store(spec: tuple[Any, ...], concurrency: int, missing_on_403: bool
                 ) -> ObjectStore:
    """The process's one :class:`ObjectStore` for ``spec`` (see ``ObjectStore.__reduce__``):
    created on first use, then returned to every later unpickling in this process."""
    import hashlib
    import pickle

    digest = hashlib.sha256(pickle.dumps((spec, concurrency, missing_on_403))).digest()
    with _SHARED_LOCK:
        found = _SHARED.pop(digest, None)
        if found is not None:
            _SHARED[digest] = found  # most recently used last
            return found
    if spec[0] == "url":
        from ngffcore.location import open_store

        store = open_store(spec[1], concurrency=concurrency, missing_on_403=missing_on_403,
                           **spec[2])
        assert isinstance(store, ObjectStore)
    else:
        store = ObjectStore(pickle.loads(spec[2]), url=spec[1], concurrency=concurrency,
                            missing_on_403=missing_on_403)
    with _SHARED_LOCK:
        store = _SHARED.setdefault(digest, store)
        while len(_SHARED) > _SHARED_MAX:
            del _SHARED[next(iter(_SHARED))]
    return store


__all__ = ["LocalStore", "ObjectStore", "RequestStats", "Store", "check_key", "shared_store"]
