"""Shard indexes: fetched once per shard (one ranged read), checked, parsed in C."""

from __future__ import annotations

from typing import Any

import numpy as np

from ngffcore import _core
from ngffcore.zarr.codecs import ShardLayout
from ngffcore.errors import ShardIndexError
from ngffcore.store.local import LocalStore


def index_range(layout: ShardLayout, shard_len: int) -> tuple[int, int]:
    """``(start, length)`` of the index inside a shard of ``shard_len`` bytes."""
    n = layout.index_nbytes
    return (shard_len - n, n) if layout.index_at_end else (0, n)


def parse_index(layout: ShardLayout, raw: Any, key: str, shard_len: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (relative to the shard start) and sizes of every inner chunk; -1 if empty."""
    if len(raw) != layout.index_nbytes:
        raise ShardIndexError(
            f"shard index of {key!r}: {len(raw)} bytes, expected {layout.index_nbytes} "
            f"(shard is {shard_len} bytes)", key=key, codec="sharding_indexed")
    body = raw = memoryview(raw)  # any bytes-like object (obstore.Bytes: no copy)
    if layout.index_crc32c:
        body = raw[:-4]
        stored = int.from_bytes(raw[-4:], "little")
        actual = _core.crc32c(body)
        if stored != actual:
            raise ShardIndexError(
                f"shard index of {key!r}: crc32c mismatch (stored {stored:08x}, computed "
                f"{actual:08x})", key=key, codec="sharding_indexed")
    status, offsets, nbytes, bad = _core.shard_index_parse(body, layout.n_inner,
                                                           layout.index_big_endian, shard_len)
    if status != 0:
        detail = f"shard of {shard_len} bytes"
        if bad >= 0:
            detail = (f"entry {bad} (offset {offsets[bad]}, {nbytes[bad]} bytes) lies outside "
                      f"the {detail}")
        _core.raise_status(status, key, in_shard_index=True, detail=detail.encode())
    return offsets, nbytes


def shard_index(layout: ShardLayout, key: str, raw: Any, size: int
                ) -> tuple[np.ndarray, np.ndarray, int]:
    """Parsed index of a shard object of ``size`` bytes, from its index bytes (or from the
    whole object: the index is cut out of it), with the size."""
    if size < layout.index_nbytes:
        raise ShardIndexError(
            f"shard index of {key!r}: shard is {size} bytes, too short for an index of "
            f"{layout.index_nbytes} bytes", key=key, codec="sharding_indexed")
    if len(raw) == size and size != layout.index_nbytes:
        start, length = index_range(layout, size)
        raw = memoryview(raw)[start:start + length]
    offsets, nbytes = parse_index(layout, raw, key, size)
    return offsets, nbytes, size


def read_shard_index(store: LocalStore, key: str, layout: ShardLayout
                     ) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Index of the whole shard object ``key`` from one ranged read, with the object's size;
    None if the shard does not exist (every inner chunk is then fill value)."""
    got = store.get_end(key, layout.index_nbytes, suffix=layout.index_at_end)
    return None if got is None else shard_index(layout, key, got[0], got[1])


def read_index(store: LocalStore, key: str, layout: ShardLayout, base: int, shard_len: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Index of a nested shard occupying ``[base, base + shard_len)`` of object ``key``;
    offsets returned are absolute positions in the object."""
    raw = b""
    if shard_len >= layout.index_nbytes:  # else shard_index reports the short shard
        start, length = index_range(layout, shard_len)
        raw = store.get_ranges(key, [(base + start, length)])[0]
    offsets, nbytes, _ = shard_index(layout, key, raw, shard_len)
    present = offsets >= 0
    offsets[present] += base
    return offsets, nbytes
