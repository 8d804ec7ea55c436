"""Bounds on whole-object response bodies: what a GET of a key may bring before its body is
read (a metadata document: the metadata limit; a chunk: what the caller says its codec can
need), and the error for one over it."""

from __future__ import annotations

from ngffcore.errors import MetadataError, StoreError
from ngffcore.limits import MAX_METADATA_BYTES, MAX_OME_XML_BYTES

#: metadata documents by name, and the most bytes a whole-object GET of one may bring
METADATA_LIMITS = {**dict.fromkeys(("zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"),
                                   MAX_METADATA_BYTES),
                   "METADATA.ome.xml": MAX_OME_XML_BYTES}


def body_limit(key: str, max_bytes: int | None) -> int | None:
    """The most bytes a whole-object GET of ``key`` may bring: ``max_bytes`` when the caller
    knows one, the limit of a metadata document (zarr.json, .zattrs, …: the metadata limit;
    a bioformats2raw ``METADATA.ome.xml``: the OME-XML limit), else None (unbounded)."""
    if max_bytes is None:
        return METADATA_LIMITS.get(key.rsplit("/", 1)[-1])
    return max_bytes


def too_large(url: str, key: str, size: int, limit: int, declared: bool) -> Exception:
    """The error for an object larger than its bound: a MetadataError for a metadata
    document (as when it is parsed), a StoreError for anything else."""
    said = "declares" if declared else "sent"
    if key.rsplit("/", 1)[-1] in METADATA_LIMITS:
        return MetadataError(f"metadata document {said} {size} bytes, more than the "
                             f"{limit}-byte limit", path=f"{url}/{key}")
    return StoreError(f"{url}/{key} {said} {size} bytes, more than the {limit} bytes it can "
                      "need: refused", key=key)


__all__ = ["METADATA_LIMITS", "body_limit", "too_large"]
