"""Bounds on whole-object response bodies: what a GET of a key may bring before its body is
read (a metadata document: the metadata limit; a chunk: what the caller says its codec can
need), and the error for one over it."""

from __future__ import annotations

from ngffcore.errors import MetadataError, StoreError
from ngffcore.limits import MAX_METADATA_BYTES

#: Zarr metadata documents: a whole-object GET of one is bounded by MAX_METADATA_BYTES
METADATA_NAMES = ("zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata")


def body_limit(key: str, max_bytes: int | None) -> int | None:
    """The most bytes a whole-object GET of ``key`` may bring: ``max_bytes`` when the caller
    knows one, the metadata limit for a metadata document, else None (unbounded)."""
    if max_bytes is None and key.rsplit("/", 1)[-1] in METADATA_NAMES:
        return MAX_METADATA_BYTES
    return max_bytes


def too_large(url: str, key: str, size: int, limit: int, declared: bool) -> Exception:
    """The error for an object larger than its bound: a MetadataError for a metadata
    document (as when it is parsed), a StoreError for anything else."""
    said = "declares" if declared else "sent"
    if key.rsplit("/", 1)[-1] in METADATA_NAMES:
        return MetadataError(f"metadata document {said} {size} bytes, more than the "
                             f"{limit}-byte limit", path=f"{url}/{key}")
    return StoreError(f"{url}/{key} {said} {size} bytes, more than the {limit} bytes it can "
                      "need: refused", key=key)


__all__ = ["METADATA_NAMES", "body_limit", "too_large"]
