"""Store keys: ``/``-separated, relative to the store's root; keys that would escape the root
(``..``, ``.``, absolute, backslashes, NUL) are refused."""

from __future__ import annotations

from ngffcore.errors import StoreError


def check_key(key: str) -> str:
    parts = key.split("/")
    if key.startswith("/") or any(p in ("..", ".") for p in parts) or "\\" in key or "\0" in key:
        raise StoreError(f"key {key!r} escapes the store root", key=key)
    return key


__all__ = ["check_key"]
