"""Locations (paths, URLs, obstore stores) → a store rooted at the array or group."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlparse

from ngffcore.store import LocalStore, ObjectStore, Store

REMOTE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "azure", "http", "https")

# Bounded by default: a viewer wants an error within seconds, not obstore's 3-minute budget.
DEFAULT_RETRY = {"max_retries": 3, "retry_timeout": timedelta(seconds=30),
                 "backoff": {"init_backoff": timedelta(milliseconds=100),
                             "max_backoff": timedelta(seconds=5), "base": 2}}
DEFAULT_CLIENT = {"timeout": "30s", "connect_timeout": "5s"}


def _with_defaults(scheme: str, options: dict[str, Any]) -> dict[str, Any]:
    """Our defaults under the caller's options (the caller's always win). Plain HTTP is
    allowed when the caller named it: an ``http://`` location or endpoint."""
    options = dict(options)
    options.setdefault("retry_config", DEFAULT_RETRY)
    client = {**DEFAULT_CLIENT, **(options.get("client_options") or {})}
    endpoint = str(options.get("endpoint", ""))
    if scheme == "http" or endpoint.startswith("http://"):
        client.setdefault("allow_http", True)
    options["client_options"] = client
    return options


def open_store(location: Any, *, concurrency: int = 64, missing_on_403: bool = False,
               **store_options: Any) -> Store:
    """A store rooted at ``location``: a local path, ``file://`` URL, ``s3://``, ``gs://``,
    ``az://``, ``http(s)://`` URL, or an obstore store object. ``concurrency`` bounds requests
    in flight per read; ``missing_on_403`` reads objects answered 403 as missing (for buckets
    that hide existence; off by default). Other ``store_options`` go to obstore (endpoint,
    region, credentials, ``skip_signature``, ``client_options``, ``retry_config``, …)."""
    if isinstance(location, (LocalStore, ObjectStore)):
        return location
    if type(location).__module__.startswith("obstore"):
        return ObjectStore(location, url=repr(location), concurrency=concurrency,
                           missing_on_403=missing_on_403)
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str):
        raise TypeError(f"location must be a path, URL or obstore store, not "
                        f"{type(location).__name__}")
    if "://" not in location:
        if store_options:
            raise TypeError(f"local paths take no store options: {sorted(store_options)}")
        return LocalStore(location)
    parsed = urlparse(location)
    scheme = parsed.scheme.lower()
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"file URL {location!r} names a remote host")
        return LocalStore(unquote(parsed.path))
    if scheme in REMOTE_SCHEMES:
        from obstore.store import from_url

        # the caller's options are remembered (not ours): a pickled store re-opens from them
        url = location.rstrip("/")
        return ObjectStore(from_url(url, **_with_defaults(scheme, store_options)), url=url,
                           concurrency=concurrency, missing_on_403=missing_on_403,
                           options=store_options)
    raise ValueError(f"unsupported location scheme {scheme!r} (supported: file, "
                     f"{', '.join(REMOTE_SCHEMES)})")
