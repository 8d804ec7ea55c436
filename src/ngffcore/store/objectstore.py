"""``ObjectStore``: any obstore store (S3, GCS, Azure, HTTP, …) behind the Store protocol
(reads, and for object stores writes, one request each), and the process's shared stores
re-created by unpickling.

A store never sends a HEAD or LIST: a missing object is learnt from the GET that wanted it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ngffcore.errors import ArgumentError, AuthError, StoreError
from ngffcore.store.bodies import body_limit, too_large
from ngffcore.store.fetch import Body, BodyFailed, Declared, Headers, fetch, on_fetch_threads, on_fetch_thread, read_later
from ngffcore.store.ioloop import (BODY_BUDGET, DEFAULT_MAX_BYTES_IN_FLIGHT, gather_or_cancel,
                                   hold_body, track)
from ngffcore.store.keys import check_key
from ngffcore.store.protocol import ByteRange, Got, Suffix, check_range, check_span, span_in
from ngffcore.store.redirects import check_allow_redirects, guard_options, refused_target
from ngffcore.store.retry import RetryPolicy
from ngffcore.store.stats import RequestStats

if TYPE_CHECKING:
    from typing_extensions import Buffer


# Bounded by default: a viewer wants an error within seconds, not obstore's 3-minute budget.
DEFAULT_RETRY = {"max_retries": 3, "retry_timeout": timedelta(seconds=30),
                 "backoff": {"init_backoff": timedelta(milliseconds=100),
                             "max_backoff": timedelta(seconds=5), "base": 2}}
DEFAULT_CLIENT = {"timeout": "30s", "connect_timeout": "5s"}


#: the environment variables obstore reads a store's endpoint and allow-HTTP flag from (our
#: client options replace its environment-derived ones, so they are honoured here)
_ENV_ENDPOINTS = {"s3": ("AWS_ENDPOINT", "AWS_ENDPOINT_URL"), "az": ("AZURE_STORAGE_ENDPOINT",),
                  "gs": ("GOOGLE_SERVICE_ENDPOINT",)}
_ENV_ALLOW_HTTP = {"s3": "AWS_ALLOW_HTTP", "az": "AZURE_ALLOW_HTTP", "gs": "GOOGLE_ALLOW_HTTP"}


def _env_endpoint(scheme: str) -> str:
    for name in _ENV_ENDPOINTS.get(scheme, ()):
        value = os.environ.get(name, "")
        if value:
            return value
    return ""


def _env_allows_http(scheme: str) -> bool:
    name = _ENV_ALLOW_HTTP.get(scheme)
    return name is not None and os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _with_defaults(scheme: str, options: dict[str, Any], url: str = ""
                   ) -> tuple[dict[str, Any], str | None]:
    """Our defaults under the caller's options (the caller's always win), and the store's
    redirect guard token (None when unguarded). Plain HTTP is allowed when the caller named
    it: an ``http://`` location or endpoint. Unless ``allow_redirects=True``, a store whose
    host is known (an ``http(s)://`` location, or an ``endpoint``) refuses redirects to
    another host (see ``ngffcore.store.redirects``)."""
    options = dict(options)
    allow_redirects = bool(options.pop("allow_redirects", False))
    options.setdefault("retry_config", DEFAULT_RETRY)
    client = {**DEFAULT_CLIENT, **(options.get("client_options") or {})}
    endpoint = str(options.get("endpoint", "")) or _env_endpoint(scheme)
    if scheme == "http" or endpoint.startswith("http://") or _env_allows_http(scheme):
        client.setdefault("allow_http", True)
    token = None
    if allow_redirects:
        check_allow_redirects(options)
    else:
        host = urlparse(endpoint).hostname if endpoint else (
            urlparse(url).hostname if scheme in ("http", "https") else None)
        client, token = guard_options(host, client)
    options["client_options"] = client
    return options, token


class ObjectStore:
    """Any obstore store (S3, GCS, Azure, HTTP, …). Thread-safe; usable from any event loop.

    ``concurrency`` bounds requests in flight per read; ``missing_on_403`` reads objects
    answered 403 as missing (buckets that hide existence), off by default.
    """

    #: its coroutines await the network (``run_sync`` runs them on the I/O loop)
    inline = False
    #: no directory the native core could read
    local_root: bytes | None = None

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
        # this store's token at the redirect trap (ngffcore.store.redirects), None when unguarded
        self._redirect_guard = redirect_guard
        from obstore.store import AzureStore, HTTPStore

        #: whether ``get(key, Suffix(n))`` is one GET (obstore's Azure client refuses suffix
        #: ranges: Azure Blob Storage has none)
        self.suffix_ranges = not isinstance(store, AzureStore)
        #: plain HTTP(S) locations are read-only; object stores take PUT and DELETE, and
        #: show a PUT object whole or not at all
        self.writable = self.atomic_put = not isinstance(store, HTTPStore)

    @classmethod
    def from_url(cls, url: str, options: dict[str, Any], *, concurrency: int = 64,
                 missing_on_403: bool = False) -> "ObjectStore":
        """The store of an ``s3://``, ``gs://``, ``az://`` or ``http(s)://`` URL with obstore
        ``options`` (credentials, endpoint, ``client_options``, ``allow_redirects``, …), our
        defaults under them. The caller's options are remembered, not ours: a pickled store
        re-opens from them."""
        from obstore.store import from_url

        scheme = urlparse(url).scheme.lower()
        obstore_options, guard = _with_defaults(scheme, options, url)
        return cls(from_url(url, **obstore_options), url=url, concurrency=concurrency,
                   missing_on_403=missing_on_403, options=options, redirect_guard=guard)

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    @property
    def identity(self) -> Hashable:
        """What selects the bytes this store serves (hashable; decoded-chunk cache keys
        start with it): its URL and options, or its obstore object's configuration, with
        secrets only as a salted digest (see ``identity.object_store_identity``)."""
        if "_identity" not in self.__dict__:
            from ngffcore.store.identity import object_store_identity

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

    def _error(self, key: str, exc: Exception, retries: int = 0, verb: str = "read"
               ) -> StoreError:
        from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

        if isinstance(exc, (PermissionDeniedError, UnauthenticatedError)):
            return AuthError(f"access to {self.url}/{key} was refused: {exc}", key=key)
        target = refused_target(self._redirect_guard, exc)
        if target is not None:
            return StoreError(f"{self.url}/{key} redirected to {target}, another host: refused "
                              "(open the store with allow_redirects=True to follow)", key=key)
        after = f" (body failed {retries + 1} times)" if retries else ""
        return StoreError(f"cannot {verb} {self.url}/{key}{after}: {exc}", key=key)

    async def _request(self, key: str, kind: str, options: Any, max_bytes: int | None = None,
                       body_retries: int = 0, t0: float | None = None
                       ) -> tuple[Any, int] | None:
        """One GET; (body as a bytes-like object, object size) or None if missing.

        A body longer than ``max_bytes`` is refused from the length the response declares,
        before it is read (obstore refuses a response that declares none, and stops a body
        at its declared length); the count received is checked again after.

        obstore retries 5xx answers, resets and timeouts only until the response headers
        arrive. A body that fails after them (reset mid-body, cut short, stalled past the
        timeout) is retried here by sending the GET again, within the same store's
        ``retry_config`` (``max_retries``, backoff, ``retry_timeout``), so a flaky network
        costs a retry, not a failed read. (``body_retries``, ``t0``: retries already spent
        on this object since ``t0``, when ``get_many`` hands a failed body on.)"""
        check_key(key)
        t0 = time.perf_counter() if t0 is None else t0
        budget = BODY_BUDGET.get()
        while True:
            t1 = time.perf_counter()
            try:
                outcome = await on_fetch_thread(
                    lambda: fetch(self.store, key, options, max_bytes, budget), budget)
            except Exception as exc:
                outcome = exc
            got = await self._settle(key, kind, outcome, t1, max_bytes, budget)
            if not isinstance(got, BodyFailed):
                return got
            delay = self._retry_policy.delay(body_retries, time.perf_counter() - t0)
            if delay is None:
                raise self._error(key, got.error, retries=body_retries) from got.error
            body_retries += 1
            self.stats.add(retries=1)
            await asyncio.sleep(delay)

    async def _settle(self, key: str, kind: str, outcome: Any, t1: float,
                      max_bytes: int | None, budget: Any) -> tuple[Any, int] | None | BodyFailed:
        """What one GET's outcome means (counted in ``stats``): (body, size), None (missing),
        a BodyFailed to retry, or the StoreError/AuthError it raises."""
        from obstore.exceptions import NotFoundError as ObsNotFound
        from obstore.exceptions import PermissionDeniedError

        def count(**extra: Any) -> None:
            self.stats.add(**{kind: 1, "seconds": time.perf_counter() - t1, **extra})

        if isinstance(outcome, (ObsNotFound, FileNotFoundError)):
            count(not_found=1)
            return None
        if isinstance(outcome, PermissionDeniedError):
            count(errors=1)
            if self.missing_on_403:
                return None
            raise self._error(key, outcome) from outcome
        if isinstance(outcome, Exception):  # obstore raises many kinds; all become StoreError
            count(errors=1)
            raise self._error(key, outcome) from outcome
        if isinstance(outcome, Declared):  # longer than max_bytes: its body never read
            count(errors=1)
            raise too_large(self.url, key, outcome.nbytes, max_bytes or 0, declared=True)
        if isinstance(outcome, Headers):  # the budget was full: wait for room, then read
            outcome = await read_later(outcome, budget)
        if isinstance(outcome, BodyFailed):
            if outcome.reserved:
                budget.release(outcome.reserved)
            count(errors=1)
            return outcome
        data = outcome.data
        count(bytes=len(data))
        if max_bytes is not None and len(data) > max_bytes:
            if outcome.reserved:
                budget.release(outcome.reserved)
            raise too_large(self.url, key, len(data), max_bytes, declared=False)
        return data, outcome.size

    async def get_many(self, keys: Sequence[str], *, max_bytes: int | None = None
                       ) -> list[Got | None]:
        """Whole objects ``keys``, one GET each, all sent at once; results in order (None:
        missing). The loop wakes once when every response has come, instead of once per
        response (``fetch.on_fetch_threads``): for the dozen chunks of a viewer tile, their
        per-response Python no longer holds the GIL while the other bodies wait to land. A
        body failing after its headers is sent for again alone, as ``get`` retries it. Each
        body then takes its room in the read's budget (``hold_body``), as memory stores do."""
        limits = [body_limit(k, max_bytes) for k in keys]
        for key in keys:
            check_key(key)
        t1 = time.perf_counter()
        outcomes = await on_fetch_threads(
            [functools.partial(fetch, self.store, k, None, m, None) for k, m in zip(keys, limits)])
        out: list[Got | None] = []
        # the common outcome, a body within its limit, is counted for all at once: a dozen
        # settles one by one cost ~0.2 ms between the last body and the decode
        seconds = time.perf_counter() - t1
        fine = [type(o) is Body and (m is None or len(o.data) <= m)
                for o, m in zip(outcomes, limits)]
        n_fine = sum(fine)
        if n_fine:
            self.stats.add(get=n_fine, seconds=n_fine * seconds,
                           bytes=sum(len(o.data) for o, f in zip(outcomes, fine) if f))
        for key, limit, outcome, ok in zip(keys, limits, outcomes, fine):
            if ok:
                out.append(Got(outcome.data, outcome.size))
                continue
            got = await self._settle(key, "get", outcome, t1, limit, None)
            if isinstance(got, BodyFailed):  # sent for again, within the same retry policy
                delay = self._retry_policy.delay(0, time.perf_counter() - t1)
                if delay is None:
                    raise self._error(key, got.error) from got.error
                self.stats.add(retries=1)
                await asyncio.sleep(delay)
                got = await self._request(key, "get", None, limit, body_retries=1, t0=t1)
            out.append(None if got is None else Got(got[0], got[1]))
        await hold_body(sum(len(memoryview(g.data)) for g in out if g is not None))
        return out

    async def get(self, key: str, byte_range: ByteRange = None, *,
                  max_bytes: int | None = None) -> Got | None:
        """The object (or ``byte_range`` of it, see ``protocol.ByteRange``) as a bytes-like
        object, and its size, from one GET (the response carries the size: no HEAD); None if
        it does not exist. A response declaring more than ``max_bytes`` (for a whole
        metadata document: more than the metadata limit) is refused before its body is read.

        Azure Blob Storage does not accept suffix ranges (``bytes=-n``; obstore's Azure client
        refuses them before sending): there (``suffix_ranges`` False) a ``Suffix`` read costs
        a 1-byte ranged GET for the size and a second ranged GET for the end (no HEAD)."""
        byte_range = check_range(byte_range)
        if byte_range is None:
            got = await self._request(key, "get", None, body_limit(key, max_bytes))
        elif not isinstance(byte_range, Suffix):
            got = await self._request(key, "range_get", {"range": byte_range}, max_bytes)
        elif self.suffix_ranges:
            got = await self._request(key, "suffix_get", {"range": {"suffix": byte_range.length}},
                                      max_bytes)
        else:
            got = await self._request(key, "range_get", {"range": (0, 1)})
            if got is not None and got[1] > 1:
                start, stop = span_in(byte_range, got[1])
                got = await self._request(key, "range_get", {"range": (start, stop)}, max_bytes)
                if got is None:
                    raise StoreError(f"{self.url}/{key} disappeared while reading it", key=key)
        return None if got is None else Got(got[0], got[1])

    async def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]
                         ) -> list[Buffer] | None:
        """Bytes ``[start, stop)`` of each range of one object, one ranged GET per non-empty
        range, sent concurrently (nearby ranges are merged by the caller); None if the object
        does not exist."""
        spans = [check_span(r, empty=True) for r in ranges]
        wanted = [s for s in spans if s[1] > s[0]]
        parts = await gather_or_cancel(*(
            self._request(key, "range_get", {"range": span}) for span in wanted))
        if parts and all(p is None for p in parts):
            return None
        if any(p is None for p in parts):
            raise StoreError(f"{self.url}/{key} disappeared while reading it", key=key)
        got = iter(parts)
        return [next(got)[0] if b > a else b"" for a, b in spans]

    async def put(self, key: str, data: Buffer) -> None:
        """Write the object ``key`` with one PUT (an object store shows a PUT whole or not at
        all). StoreError on a read-only store (HTTP)."""
        import obstore

        self._writable(key)
        n = len(memoryview(data))
        t0 = time.perf_counter()
        try:
            await track(obstore.put_async(self.store, key, data, use_multipart=False))
        except Exception as exc:  # obstore raises many kinds; all become StoreError
            self.stats.add(put=1, errors=1, seconds=time.perf_counter() - t0)
            raise self._error(key, exc, verb="write") from exc
        self.stats.add(put=1, bytes_written=n, seconds=time.perf_counter() - t0)

    async def delete(self, key: str) -> None:
        """Delete the object ``key`` with one request; a missing object is no error.
        StoreError on a read-only store (HTTP)."""
        import obstore
        from obstore.exceptions import NotFoundError as ObsNotFound

        self._writable(key)
        t0 = time.perf_counter()
        try:
            await track(obstore.delete_async(self.store, key))
        except (ObsNotFound, FileNotFoundError):
            pass
        except Exception as exc:  # obstore raises many kinds; all become StoreError
            self.stats.add(delete=1, errors=1, seconds=time.perf_counter() - t0)
            raise self._error(key, exc, verb="delete") from exc
        self.stats.add(delete=1, seconds=time.perf_counter() - t0)

    async def list_prefix(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix``, sorted (one LIST request per page). StoreError on a
        read-only store (HTTP: nothing to list)."""
        import obstore

        if not self.writable:
            raise StoreError(f"cannot list {self.url}/{prefix}: the store is read-only",
                             key=prefix)
        found: list[str] = []
        t0 = time.perf_counter()
        try:
            async for page in obstore.list(self.store, prefix=prefix or None):
                self.stats.add(list=1)
                found.extend(str(meta["path"]) for meta in page)
        except Exception as exc:  # obstore raises many kinds; all become StoreError
            self.stats.add(list=1, errors=1, seconds=time.perf_counter() - t0)
            raise self._error(prefix, exc, verb="list") from exc
        return sorted(k for k in found if k.startswith(prefix))

    def _writable(self, key: str) -> None:
        if not key or key.endswith("/"):
            raise ArgumentError(f"key {key!r} names no object")
        check_key(key)
        if not self.writable:
            raise StoreError(f"cannot write {self.url}/{key}: the store is read-only", key=key)


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
        store = ObjectStore.from_url(spec[1], spec[2], concurrency=concurrency,
                                     missing_on_403=missing_on_403)
    else:
        store = ObjectStore(pickle.loads(spec[2]), url=spec[1], concurrency=concurrency,
                            missing_on_403=missing_on_403)
    store.max_bytes_in_flight = max_bytes_in_flight
    with _SHARED_LOCK:
        store = _SHARED.setdefault(digest, store)
        while len(_SHARED) > _SHARED_MAX:
            del _SHARED[next(iter(_SHARED))]
    return store


__all__ = ["ObjectStore", "shared_store"]
