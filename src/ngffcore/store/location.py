"""Locations (paths, URLs, obstore stores, ngffcore stores) → a store rooted at the array or
group."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlparse

from ngffcore.errors import ArgumentError
from ngffcore.store.local import LocalStore
from ngffcore.store.memory import MemoryStore
from ngffcore.store.objectstore import ObjectStore
from ngffcore.store.protocol import Store
from ngffcore.store.zipstore import ZipStore

REMOTE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "azure", "http", "https")
#: the file name extension of zipped OME-Zarr (RFC-9), matched case-insensitively
ZIPPED_SUFFIX = ".ozx"

def _local_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - {"follow_external_links", "fsync"})
    if unknown:
        raise TypeError(f"local paths take no store options but follow_external_links and "
                        f"fsync: {unknown}")
    return options


def _local(path: str, options: dict[str, Any]) -> Store:
    """A local directory, or a zipped OME-Zarr file (``*.ozx`` that is not a directory)
    read through the directory holding it."""
    options = _local_options(options)
    if path.rstrip("/").lower().endswith(ZIPPED_SUFFIX) and not os.path.isdir(path):
        parent, name = os.path.split(os.path.abspath(path))
        return ZipStore(LocalStore(parent, **options), name)
    return LocalStore(path, **options)


def _remote(location: str, concurrency: int, missing_on_403: bool,
            options: dict[str, Any]) -> Store:
    """An object store at the URL ``location``, or for a URL whose last path segment ends
    in ``.ozx`` the zipped OME-Zarr there, read through the store of its parent URL."""
    url = location.rstrip("/")
    parsed = urlparse(url)
    name = parsed.path.rsplit("/", 1)[-1]
    if not name.lower().endswith(ZIPPED_SUFFIX):
        return ObjectStore.from_url(url, options, concurrency=concurrency,
                                    missing_on_403=missing_on_403)
    if parsed.query or parsed.fragment:
        raise ArgumentError(f"a zipped OME-Zarr URL takes no query or fragment: {location!r}")
    inner = ObjectStore.from_url(url[:len(url) - len(name)].rstrip("/"), options,
                                 concurrency=concurrency, missing_on_403=missing_on_403)
    return ZipStore(inner, unquote(name))


def open_store(location: Any, *, concurrency: int = 64, missing_on_403: bool = False,
               max_bytes_in_flight: int | None = None, **store_options: Any) -> Store:
    """A store rooted at ``location``: a local path, ``file://`` URL, ``s3://``, ``gs://``,
    ``az://``, ``http(s)://`` URL, or an obstore store object. ``concurrency`` bounds requests
    in flight per read; ``missing_on_403`` reads objects answered 403 as missing (for buckets
    that hide existence; off by default). ``max_bytes_in_flight`` bounds the bytes one read
    holds received and not yet decoded (default 512 MiB; a response waits for room before
    its body is read, and one object larger than the bound is read alone); local stores
    ignore it. ``allow_redirects=True`` lets a remote store follow
    redirects to other hosts (refused by default; not combinable with custom headers or S3
    session tokens, which obstore would forward). Other ``store_options`` go to obstore
    (endpoint, region, credentials, ``skip_signature``, ``client_options``, ``retry_config``,
    …).

    A local path or ``file://`` URL takes two options, ``follow_external_links`` (default
    False): whether symbolic links inside it may lead outside it (by default reading through
    one raises :class:`ngffcore.StoreError`; links that stay inside always work), and
    ``fsync`` (default False): whether writes are flushed to disk before they return. A
    store (``LocalStore``, ``ObjectStore``, ``MemoryStore``, ``ZipStore``) is returned as it
    is.

    A path or URL whose last segment ends in ``.ozx`` (any case; locally: a file, not a
    directory) is a zipped OME-Zarr (RFC-9): a read-only :class:`ZipStore` over the store
    of the directory or URL holding it, reading the archive by ranged reads."""
    if isinstance(location, (LocalStore, ObjectStore, MemoryStore, ZipStore)):
        return location
    store = _open_store(location, concurrency, missing_on_403, store_options)
    target = store.inner if isinstance(store, ZipStore) else store
    if max_bytes_in_flight is not None and isinstance(target, ObjectStore):
        if (isinstance(max_bytes_in_flight, bool) or not isinstance(max_bytes_in_flight, int)
                or max_bytes_in_flight <= 0):
            raise ArgumentError(f"max_bytes_in_flight must be a positive int, not "
                                f"{max_bytes_in_flight!r}")
        target.max_bytes_in_flight = max_bytes_in_flight
    return store


def _open_store(location: Any, concurrency: int, missing_on_403: bool,
                store_options: dict[str, Any]) -> Store:
    if type(location).__module__.startswith("obstore"):
        return ObjectStore(location, url=repr(location), concurrency=concurrency,
                           missing_on_403=missing_on_403)
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str):
        raise TypeError(f"location must be a path, URL or obstore store, not "
                        f"{type(location).__name__}")
    if "://" not in location:
        return _local(location, store_options)
    parsed = urlparse(location)
    scheme = parsed.scheme.lower()
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ArgumentError(f"file URL {location!r} names a remote host")
        return _local(unquote(parsed.path), store_options)
    if scheme in REMOTE_SCHEMES:
        return _remote(location, concurrency, missing_on_403, store_options)
    raise ArgumentError(f"unsupported location scheme {scheme!r} (supported: file, "
                     f"{', '.join(REMOTE_SCHEMES)})")
