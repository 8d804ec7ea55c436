"""Limits on what untrusted data can make ngffcore do, checked before any allocation or
request: the size of one read's output, of one metadata document, and the number of
pyramid levels. Defaults are generous (real data never meets them); the read limit is
configurable per process."""

from __future__ import annotations

import threading

#: largest metadata document parsed (zarr.json, .zarray, .zattrs): 64 MiB
MAX_METADATA_BYTES = 64 * 2**20
#: most levels an image may list (real pyramids have ≤ ~20)
MAX_LEVELS = 256
#: OME-NGFF versions whose layout ngffcore knows; a document without a version is read by
#: its layout (as ome-zarr-py does)
KNOWN_VERSIONS = ("0.1", "0.2", "0.3", "0.4", "0.5")

_lock = threading.Lock()
_max_read_bytes = 64 * 2**30


def set_max_read_bytes(n: int) -> None:
    """Largest output (in bytes) one read may allocate or fill; default 64 GiB. A read asking
    for more raises :class:`ngffcore.ReadLimitError` before allocating anything."""
    if not isinstance(n, int) or n < 0:
        raise ValueError("max read bytes must be an int >= 0")
    global _max_read_bytes
    with _lock:
        _max_read_bytes = n


def get_max_read_bytes() -> int:
    return _max_read_bytes


__all__ = ["MAX_METADATA_BYTES", "MAX_LEVELS", "KNOWN_VERSIONS", "set_max_read_bytes",
           "get_max_read_bytes"]
