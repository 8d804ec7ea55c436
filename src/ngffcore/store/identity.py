"""Store identities: what selects the bytes a store serves, as a hashable value.

Decoded-chunk cache keys start with one, so a cache shared by tenants never hands one
store's chunks to another. A URL is not enough: two stores opened from ``s3://bucket/img``
with different endpoints, credentials or options serve different bytes (or refuse one
tenant what the other may read), and obstore store objects with different endpoints have
equal reprs. An identity holds every option that can change the answer, with the secrets
among them only as a salted digest (never in clear: keys can end up in a debugger or a
log), and credential providers by object identity (two tenants' providers never match).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Hashable, Mapping
from datetime import timedelta
from typing import Any

#: per-process salt of the digests: a leaked key gives no offline test of a guessed secret
_SALT = os.urandom(16)
#: client options that tune how requests are sent, never which bytes come back: stores that
#: differ only in these share cache entries
_TUNING = frozenset({
    "timeout", "connect_timeout", "pool_idle_timeout", "pool_max_idle_per_host",
    "http2_keep_alive_interval", "http2_keep_alive_timeout", "http2_keep_alive_while_idle",
    "http1_only", "http2_only", "user_agent",
})


class ByObject:
    """Equal only to itself: stands for an object (a credential provider, a store without
    inspectable configuration) in an identity, and keeps it alive so its ``id`` is never
    reused by another while a key holds it."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ByObject) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __repr__(self) -> str:  # never the object's own repr: it may show a secret
        return f"ByObject({type(self.obj).__name__} at {id(self.obj):#x})"


def _canonical(value: Any, objects: list[ByObject]) -> Any:
    """``value`` as nested tuples of plain values (dictionaries sorted by key); objects
    other than plain values become placeholders, collected in ``objects``."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return (type(value).__name__, value)
    if isinstance(value, timedelta):
        return ("timedelta", value.total_seconds())
    if isinstance(value, Mapping):
        return ("map", tuple(sorted(((str(k), _canonical(v, objects))
                                     for k, v in value.items()), key=lambda kv: kv[0])))
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_canonical(v, objects) for v in value))
    objects.append(ByObject(value))
    return ("object", len(objects) - 1)


def _without_tuning(options: Mapping[str, Any]) -> dict[str, Any]:
    options = {k: v for k, v in options.items() if k != "retry_config"}
    client = options.get("client_options")
    if isinstance(client, Mapping):
        kept = {k: v for k, v in client.items() if k not in _TUNING}
        if kept:
            options["client_options"] = kept
        else:  # only tuning: as if none were given
            del options["client_options"]
    return options


def identity(kind: str, parts: Mapping[str, Any], options: Mapping[str, Any] | None = None
             ) -> tuple[Hashable, ...]:
    """The identity of a store of ``kind`` described by ``parts`` (its location, the
    configuration of an obstore object) and the store ``options`` it was opened with
    (retry and client tuning options are left out of both)."""
    objects: list[ByObject] = []
    canon = _canonical((_without_tuning(parts), _without_tuning(options or {})), objects)
    digest = hashlib.sha256(_SALT + repr(canon).encode()).hexdigest()
    return (kind, digest, *objects)


def obstore_parts(store: Any) -> dict[str, Any] | None:
    """What selects the bytes of an obstore store object: its type, URL, prefix,
    configuration (bucket, endpoint, region, credentials, …), client options and
    credential provider, as far as it exposes them; None if it exposes none of them
    (a ``MemoryStore``: then only that very object is itself)."""
    parts: dict[str, Any] = {"type": f"{type(store).__module__}.{type(store).__qualname__}"}
    for name in ("url", "prefix", "config", "client_options", "credential_provider"):
        try:
            value = getattr(store, name)
        except Exception:  # a property obstore cannot compute counts as absent
            continue
        if value is not None:
            parts[name] = value if name != "prefix" else str(value)
    return parts if len(parts) > 1 else None


def object_store_identity(store: Any) -> tuple[Hashable, ...]:
    """The identity of an ``ngffcore.store.ObjectStore``: for one opened from a URL, the URL
    and every store option (endpoint, region, credentials, headers, …; not retries or
    timeouts); for an obstore store object, what ``obstore_parts`` finds, or the object
    itself if it exposes nothing. Also whether 403 reads as missing (a tenant reading
    refusals as holes must not hand those holes to one that may read the chunks)."""
    flag = {"missing_on_403": store.missing_on_403}
    if store._options is not None:
        return identity("url", {"url": store.url, **flag}, store._options)
    parts = obstore_parts(store.store)
    if parts is None:
        return ("obstore", ByObject(store.store), store.missing_on_403)
    return identity("obstore", {**parts, **flag})


__all__ = ["identity", "obstore_parts", "object_store_identity", "ByObject"]
