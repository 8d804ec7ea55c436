"""Limits on what untrusted data can make ngffcore do, checked before any allocation or
request: the size of one read's output, of one metadata document, and the number of
pyramid levels. Defaults are generous (real data never meets them); the read limit and the
chunk limit are configurable per process."""

from __future__ import annotations

import threading

from ngffcore.errors import ArgumentError

#: largest metadata document parsed (zarr.json, .zarray, .zattrs): 64 MiB
MAX_METADATA_BYTES = 64 * 2**20
#: deepest nesting of a metadata document. Real metadata nests < 10 levels; every recursive
#: walk of a document (pickling an array or image, json.dumps, validation) must stay well
#: inside Python's recursion limit, whatever the caller's own stack depth
MAX_JSON_DEPTH = 128
#: largest OME-XML document of a bioformats2raw container (``OME/METADATA.ome.xml``)
MAX_OME_XML_BYTES = 256 * 2**20
#: most levels an image may list (real pyramids have ≤ ~20)
MAX_LEVELS = 256
#: OME-NGFF versions whose layout ngffcore knows; a document without a version is read by
#: its layout (as ome-zarr-py does)
KNOWN_VERSIONS = ("0.1", "0.2", "0.3", "0.4", "0.5", "0.6")

_lock = threading.Lock()
_max_read_bytes = 64 * 2**30
_max_chunk_bytes = 2**30


def set_max_read_bytes(n: int) -> None:
    """Largest output (in bytes) one read may allocate or fill; default 64 GiB. A read asking
    for more raises :class:`ngffcore.ReadLimitError` before allocating anything."""
    if not isinstance(n, int) or n < 0:
        raise ArgumentError("max read bytes must be an int >= 0")
    global _max_read_bytes
    with _lock:
        _max_read_bytes = n


def get_max_read_bytes() -> int:
    return _max_read_bytes


def set_max_chunk_bytes(n: int) -> None:
    """Largest decoded chunk (in bytes; the innermost chunk of a sharded array) an array may
    declare; default 1 GiB. Checked when an array is opened: one decode allocates a whole
    chunk, whatever the read wants of it, so a hostile ``zarr.json`` declaring a huge chunk
    raises :class:`ngffcore.MetadataError` instead. Arrays already open keep working."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ArgumentError("max chunk bytes must be an int >= 0")
    global _max_chunk_bytes
    with _lock:
        _max_chunk_bytes = n


def get_max_chunk_bytes() -> int:
    return _max_chunk_bytes


__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_OME_XML_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_LEVELS",
    "KNOWN_VERSIONS",
    "set_max_read_bytes",
    "get_max_read_bytes",
    "set_max_chunk_bytes",
    "get_max_chunk_bytes",
]
