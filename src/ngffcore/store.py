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
from collections.abc import Hashable, Sequence
from typing import Any

from ngffcore.bodies import body_limit, too_large
from ngffcore.errors import AuthError, NotFoundError, StoreError
# the private I/O loop thread (shut down in order at exit) lives in ioloop.py
from ngffcore.ioloop import LoopThread as _LoopThread
from ngffcore.ioloop import (DEFAULT_MAX_BYTES_IN_FLIGHT, gather_or_cancel, read_body,
                             run_on_io_loop, track)
from ngffcore.localfile import open_regular, read_at, read_to_end
from ngffcore.redirects import refused_target


def check_key(key: str) -> str:
    parts = key.split("/")
    if key.startswith("/") or any(p in ("..", ".") for p in parts) or "\\" in key or "\0" in key:
        raise StoreError(f"key {key!r} escapes the store root", key=key)
    return key


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


class ObjectStore:
    """Any obstore store (S3, GCS, Azure, HTTP, …). Thread-safe; usable from any event loop.

    ``concurrency`` bounds requests in flight per read; ``missing_on_403`` reads objects
    answered 403 as missing (buckets that hide existence), off by default.
    """

    #: bytes one read may hold received and not yet decoded (a single larger object still
    #: goes through, alone): ``open_store(..., max_bytes_in_flight=)``
    max_bytes_in_flight: int = DEFAULT_MAX_BYTES_IN_FLIGHT

    def __init__(self, store: Any, url: str, concurrency: int = 64,
                 missing_on_403: bool = False, *, options: dict[str, Any] | None = None,
                 redirect_guard: str | None = None) -> None:
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
        # this store's token at the redirect trap (ngffcore.redirects), None when unguarded
        self._redirect_guard = redirect_guard
        from obstore.store import AzureStore

        #: whether a shard index at the end can be asked for with one suffix range GET
        #: (obstore's Azure client refuses suffix ranges: Azure Blob Storage has none)
        self.suffix_ranges = not isinstance(store, AzureStore)

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    @property
    def identity(self) -> Hashable:
        """What selects the bytes this store serves (hashable; decoded-chunk cache keys
        start with it): its URL and options, or its obstore object's configuration, with
        secrets only as a salted digest (see ``identity.object_store_identity``)."""
        if "_identity" not in self.__dict__:
            from ngffcore.identity import object_store_identity

            self.__dict__["_identity"] = object_store_identity(self)
        return self.__dict__["_identity"]  # type: ignore[no-any-return]

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
        return (shared_store, (spec, self.concurrency, self.missing_on_403,
                               self.max_bytes_in_flight))

    def local_path(self, key: str) -> None:
        return None

    def _error(self, key: str, exc: Exception, retries: int = 0) -> StoreError:
        from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

        if isinstance(exc, (PermissionDeniedError, UnauthenticatedError)):
            return AuthError(f"access to {self.url}/{key} was refused: {exc}", key=key)
        target = refused_target(self._redirect_guard, exc)
        if target is not None:
            return StoreError(f"{self.url}/{key} redirected to {target}, another host: refused "
                              "(open the store with allow_redirects=True to follow)", key=key)
        after = f" (body failed {retries + 1} times)" if retries else ""
        return StoreError(f"cannot read {self.url}/{key}{after}: {exc}", key=key)

    async def _request(self, key: str, kind: str, options: Any, max_bytes: int | None = None
                       ) -> tuple[Any, int] | None:
        """One GET; (body as a bytes-like object, object size) or None if missing.

        A body longer than ``max_bytes`` is refused from the length the response declares,
        before it is read (obstore refuses a response that declares none, and stops a body
        at its declared length); the count received is checked again after.

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
                result = await track(obstore.get_async(self.store, key, options=options))
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
            if max_bytes is not None:
                start, stop = result.range
                if stop - start > max_bytes:
                    # dropping the unread result closes the connection: the body never comes
                    # (deleted here, or the raised error's traceback would keep it open)
                    del result
                    self.stats.add(**{kind: 1, "errors": 1,
                                      "seconds": time.perf_counter() - t1})
                    raise too_large(self.url, key, stop - start, max_bytes, declared=True)
            try:
                # obstore.Bytes exposes the buffer protocol: handed to the core without a copy
                data: Any = await read_body(result)
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
            if max_bytes is not None and len(data) > max_bytes:
                raise too_large(self.url, key, len(data), max_bytes, declared=False)
            return data, int(result.meta["size"])

    async def get_async(self, key: str, *, max_bytes: int | None = None) -> Any:
        """The whole object as a bytes-like object, or None if it does not exist. A response
        declaring more than ``max_bytes`` (for a metadata document: more than the metadata
        limit) is refused before its body is read."""
        got = await self._request(key, "get", None, body_limit(key, max_bytes))
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

    def get(self, key: str, *, max_bytes: int | None = None) -> bytes | None:
        data = _LoopThread.run(self.get_async(key, max_bytes=max_bytes))
        return None if data is None else bytes(data)


Store = LocalStore | ObjectStore

#: stores re-created by unpickling, by a digest of how they were opened (bounded LRU)
_SHARED: dict[bytes, ObjectStore] = {}
_SHARED_LOCK = threading.Lock()
_SHARED_MAX = 64


def shared_store(spec: tuple[Any, ...], concurrency: int, missing_on_403: bool,
                 max_bytes_in_flight: int = DEFAULT_MAX_BYTES_IN_FLIGHT) -> ObjectStore:
    """The process's one :class:`ObjectStore` for ``spec`` (see ``ObjectStore.__reduce__``):
    created on first use, then returned to every later unpickling in this process."""
    import hashlib
    import pickle

    digest = hashlib.sha256(pickle.dumps((spec, concurrency, missing_on_403,
                                          max_bytes_in_flight))).digest()
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
    store.max_bytes_in_flight = max_bytes_in_flight
    with _SHARED_LOCK:
        store = _SHARED.setdefault(digest, store)
        while len(_SHARED) > _SHARED_MAX:
            del _SHARED[next(iter(_SHARED))]
    return store


__all__ = ["LocalStore", "ObjectStore", "RequestStats", "Store", "check_key", "shared_store"]
