"""The local fast path of writes: a selection of whole chunks of an unsharded array in a local
directory is planned, gathered, encoded and written as files (temporary file + rename each)
in ONE native call, the twin of ``_core.read_chunk_files`` (a small write costs the encode
and the file system's rename, not a trip through the general pipeline in ``write.py``).

Taken only where the general path would read nothing and hold no lock: every chunk the
selection touches is covered whole (its in-array part), so no old bytes merge in.
"""

from __future__ import annotations

import numpy as np

from ngffcore import _core
from ngffcore.errors import NgffError, StoreError, WriteError
from ngffcore.store.protocol import Store
from ngffcore.zarr.cache import forget_everywhere, has_caches
from ngffcore.zarr.metadata import ArrayMetadata
from ngffcore.zarr.plan import Selection
from ngffcore.zarr.source import file_confine


def covers_whole_chunks(sel: Selection, shape: tuple[int, ...], chunks: tuple[int, ...]
                        ) -> bool:
    """Whether ``sel`` starts on chunk boundaries and ends on one or at the array's end."""
    for a, b, n, c in zip(sel.start, sel.stop, shape, chunks):
        if a % c or (b % c and b != n):
            return False
    return True


def write_files(store: Store, meta: ArrayMetadata, root: bytes, prefix: str, sel: Selection,
                value: np.ndarray, write_empty_chunks: bool) -> list[str]:
    """Write the whole chunks of ``sel`` from ``value`` (``write.value_array``'s result) as
    files beneath ``root`` in one native call; returns the keys written or deleted. A
    failure raises WriteError naming the chunk, with the chunks already changed."""
    pipeline = meta.codec.pipeline
    assert pipeline is not None
    skip_fill = not write_empty_chunks and meta.fill_value is not None
    confine = file_confine(store)  # as reads confine chunk files
    fsync = bool(getattr(store, "fsync", False))  # LocalStore's option; others have none
    try:
        written, deleted, nbytes = _core.write_chunk_files(
            pipeline, value, meta.shape, meta.grid_shape, sel.start, sel.stop, root,
            meta.key_encoding, meta.key_separator, prefix, confine, skip_fill=skip_fill,
            fsync=fsync)
    except NgffError as exc:
        done = list(getattr(exc, "written_chunks", [])) + list(getattr(exc, "deleted_chunks",
                                                                         []))
        keys = _keys(meta, sel, prefix, done)
        store.stats.add(put=len(getattr(exc, "written_chunks", [])), errors=1,
                        delete=len(getattr(exc, "deleted_chunks", [])))
        forget_everywhere(store.identity, keys)
        if isinstance(exc, StoreError):
            key = exc.key or "?"
            raise WriteError(f"writing {store.url}/{key} failed: {exc} ({len(keys)} objects "
                             "of this write were written: see .written)", key=exc.key,
                             written=keys) from exc
        raise
    store.stats.add(put=len(written), delete=len(deleted), bytes_written=nbytes)
    changed = list(written) + list(deleted)
    if not has_caches():
        return []
    keys = _keys(meta, sel, prefix, changed)
    forget_everywhere(store.identity, keys)
    return keys


def _keys(meta: ArrayMetadata, sel: Selection, prefix: str, indices: list[int]) -> list[str]:
    """Storage keys of the chunks at ``indices`` of the plan of ``sel``."""
    if not indices:
        return []
    coords, _ = _core.plan_chunks(meta.shape, meta.grid_shape, sel.start, sel.stop)
    picked = np.ascontiguousarray(coords[np.asarray(sorted(indices), dtype=np.int64)])
    keys: list[str] = _core.chunk_keys(picked, meta.key_encoding, meta.key_separator, prefix)
    return keys


__all__ = ["covers_whole_chunks", "write_files"]
