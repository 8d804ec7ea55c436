"""``create_array``: a new Zarr v2 / v3 array's metadata document, checked by the same parser
every read uses, then written (atomically) where nothing was — or over an old array whose
metadata and chunks are removed first.

Defaults (what zarr-python 3 writes, so every peer reads them): v3 ``bytes`` (little endian)
+ ``zstd`` level 0 without checksum; v2 compressor ``{"id": "zstd", "level": 0}``, ``.``
separator; sharded arrays index at the end with ``bytes`` +
``crc32c``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ngffcore.errors import ArgumentError, CastError, ExistsError, ReadOnlyError
from ngffcore.store.location import open_store
from ngffcore.store.protocol import Store, get_data
from ngffcore.store.sync import run_sync
from ngffcore.zarr.array import Array
from ngffcore.zarr.metadata import (SUPPORTED_DTYPES, ArrayMetadata, metadata_bytes, parse_v2,
                                    parse_v3)
from ngffcore.zarr.write import check_writable

DEFAULT_V3_CODECS: tuple[dict[str, Any], ...] = (
    {"name": "zstd", "configuration": {"level": 0, "checksum": False}},
)
#: no "checksum" member: tensorstore refuses a zstd config that has one (numcodecs reads its
#: absence as False)
DEFAULT_V2_COMPRESSOR: dict[str, Any] = {"id": "zstd", "level": 0}
SHARD_INDEX_CODECS: list[dict[str, Any]] = [
    {"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]
#: every document that marks a Zarr node at a path
METADATA_NAMES = ("zarr.json", ".zarray", ".zgroup", ".zattrs")


def _ints(value: Any, what: str, *, positive: bool, ndim: int | None = None
          ) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise ArgumentError(f"{what} must be a sequence of integers, not {value!r}") from None
    lo = 1 if positive else 0
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo
               for v in items):
        raise ArgumentError(f"{what} {value!r} must hold integers >= {lo}")
    if ndim is not None and len(items) != ndim:
        raise ArgumentError(f"{what} {value!r} has {len(items)} dimensions, the shape {ndim}")
    return tuple(int(v) for v in items)


def _dtype(value: Any, zarr_format: int) -> np.dtype:
    try:
        dtype = np.dtype(value)
    except (TypeError, ValueError):
        raise ArgumentError(f"dtype {value!r} is not a numpy dtype") from None
    if dtype.newbyteorder("=").name not in SUPPORTED_DTYPES:
        raise ArgumentError(f"dtype {dtype} is not supported (supported: "
                            f"{', '.join(SUPPORTED_DTYPES)})")
    native: np.dtype[Any] = dtype if zarr_format == 2 else dtype.newbyteorder("=")
    return native


def fill_json(value: Any, dtype: np.dtype) -> Any:
    """``value`` as the JSON a Zarr document records for a fill value of ``dtype``."""
    try:
        scalar = np.array(value, dtype=dtype)[()]
    except (TypeError, ValueError, OverflowError) as exc:
        raise CastError(f"fill_value {value!r} cannot be a {dtype}: {exc}") from None
    if dtype.kind == "b":
        return bool(scalar)
    if dtype.kind in "iu":
        return int(scalar)
    if dtype.kind == "c":
        return [fill_json(scalar.real, scalar.real.dtype), fill_json(scalar.imag,
                                                                     scalar.imag.dtype)]
    f = float(scalar)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    return f


def v3_document(*, shape: tuple[int, ...], dtype: np.dtype, chunks: tuple[int, ...],
                shards: tuple[int, ...] | None, codecs: Any, fill_value: Any,
                dimension_separator: str | None, dimension_names: Any,
                attributes: dict[str, Any] | None) -> dict[str, Any]:
    chain: list[Any]
    if codecs is None:
        endian = [] if dtype.itemsize == 1 else [{"name": "bytes",
                                                  "configuration": {"endian": "little"}}]
        chain = (endian or [{"name": "bytes"}]) + [dict(c) for c in DEFAULT_V3_CODECS]
    elif isinstance(codecs, (list, tuple)):
        chain = list(codecs)
    else:
        raise ArgumentError(f"codecs must be a list of codec configurations, not {codecs!r}")
    has_sharding = any(isinstance(c, dict) and c.get("name") == "sharding_indexed"
                       for c in chain)
    grid = chunks
    if shards is not None:
        if has_sharding:
            raise ArgumentError("shards= and a codecs list that already holds "
                                "sharding_indexed: give one or the other")
        if any(s % c for s, c in zip(shards, chunks)):
            raise ArgumentError(f"shards {list(shards)} are not a multiple of chunks "
                                f"{list(chunks)}")
        chain = [{"name": "sharding_indexed", "configuration": {
            "chunk_shape": list(chunks), "codecs": chain,
            "index_codecs": [dict(c) for c in SHARD_INDEX_CODECS],
            "index_location": "end"}}]
        grid = shards
    sep = dimension_separator or "/"
    doc: dict[str, Any] = {
        "zarr_format": 3, "node_type": "array", "shape": list(shape),
        "data_type": dtype.name,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(grid)}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": sep}},
        "fill_value": fill_json(0 if fill_value is None else fill_value, dtype),
        "codecs": chain,
        "attributes": dict(attributes or {}),
    }
    if dimension_names is not None:
        names = list(dimension_names)
        if len(names) != len(shape) or not all(n is None or isinstance(n, str) for n in names):
            raise ArgumentError(f"dimension_names {dimension_names!r} must be one str or None "
                                "per axis")
        doc["dimension_names"] = names
    return doc


def v2_document(*, shape: tuple[int, ...], dtype: np.dtype, chunks: tuple[int, ...],
                compressor: Any, filters: Any, fill_value: Any, order: str,
                dimension_separator: str | None) -> dict[str, Any]:
    if compressor == "default":
        compressor = dict(DEFAULT_V2_COMPRESSOR)
    if compressor is not None and not (isinstance(compressor, dict)
                                       and isinstance(compressor.get("id"), str)):
        raise ArgumentError(f"compressor must be a numcodecs config dict with an 'id', "
                            f"None or 'default', not {compressor!r}")
    if filters is not None and not (isinstance(filters, (list, tuple))
                                    and all(isinstance(f, dict) for f in filters)):
        raise ArgumentError(f"filters must be a list of numcodecs config dicts, not "
                            f"{filters!r}")
    if order not in ("C", "F"):
        raise ArgumentError(f"order must be 'C' or 'F', not {order!r}")
    return {
        "zarr_format": 2, "shape": list(shape), "chunks": list(chunks), "dtype": dtype.str,
        "compressor": compressor, "filters": list(filters) if filters else None,
        "fill_value": None if fill_value is None else fill_json(fill_value, dtype),
        "order": order, "dimension_separator": dimension_separator or ".",
    }


def build_metadata(*, shape: Any, dtype: Any, chunks: Any, shards: Any = None,
                   zarr_format: int = 3, codecs: Any = None, compressor: Any = "default",
                   filters: Any = None, fill_value: Any = None, order: str = "C",
                   dimension_separator: str | None = None, dimension_names: Any = None,
                   attributes: dict[str, Any] | None = None, where: str = ""
                   ) -> tuple[dict[str, Any], ArrayMetadata]:
    """The metadata document of a new array and what ngffcore parses from it (the same
    parser as reads: a document ngffcore would refuse to read is never written)."""
    if zarr_format not in (2, 3):
        raise ArgumentError(f"zarr_format must be 2 or 3, not {zarr_format!r}")
    shape_t = _ints(shape, "shape", positive=False)
    chunks_t = _ints(chunks, "chunks", positive=True, ndim=len(shape_t))
    shards_t = None if shards is None else _ints(shards, "shards", positive=True,
                                                 ndim=len(shape_t))
    dt = _dtype(dtype, zarr_format)
    if dimension_separator not in (None, ".", "/"):
        raise ArgumentError(f"dimension_separator must be '.' or '/', not "
                            f"{dimension_separator!r}")
    if attributes is not None and not isinstance(attributes, dict):
        raise ArgumentError(f"attributes must be a dict, not {type(attributes).__name__}")
    if zarr_format == 3:
        if filters is not None or compressor not in ("default", None) or order != "C":
            raise ArgumentError("compressor=, filters= and order= are Zarr v2 options; "
                                "for zarr_format=3 give codecs=")
        doc = v3_document(shape=shape_t, dtype=dt, chunks=chunks_t, shards=shards_t,
                          codecs=codecs, fill_value=fill_value,
                          dimension_separator=dimension_separator,
                          dimension_names=dimension_names, attributes=attributes)
        meta = parse_v3(json.loads(json.dumps(doc)), where)
    else:
        if shards is not None or codecs is not None or dimension_names is not None:
            raise ArgumentError("shards=, codecs= and dimension_names= need zarr_format=3")
        doc = v2_document(shape=shape_t, dtype=dt, chunks=chunks_t, compressor=compressor,
                          filters=filters, fill_value=fill_value, order=order,
                          dimension_separator=dimension_separator)
        meta = parse_v2(json.loads(json.dumps(doc)), where, dict(attributes or {}))
    return doc, meta


async def clear_node(store: Store, path: str, overwrite: bool) -> None:
    """Make ``path`` free for a new array: nothing there → nothing to do; metadata there →
    ExistsError unless ``overwrite``, then its metadata documents (first: nothing reads as
    the old array from then on) and every object beneath it are removed."""
    if not store.writable:
        raise ReadOnlyError(f"{store.url} takes no writes")
    prefix = f"{path}/" if path else ""
    found = [name for name in METADATA_NAMES
             if await get_data(store, prefix + name) is not None]
    if not found:
        return
    if not overwrite:
        raise ExistsError(f"{store.url}/{prefix}{found[0]} exists: an array or group is "
                          "already there (create_array(..., overwrite=True) replaces it)",
                          path=f"{store.url}/{prefix}{found[0]}")
    for name in found:
        await store.delete(prefix + name)
    for key in await store.list_prefix(prefix):
        await store.delete(key)


def create_array(location: Any, *, shape: Any, dtype: Any, chunks: Any, shards: Any = None,
                 zarr_format: int = 3, codecs: Any = None, compressor: Any = "default",
                 filters: Any = None, fill_value: Any = None, order: str = "C",
                 dimension_separator: str | None = None, dimension_names: Any = None,
                 attributes: dict[str, Any] | None = None, overwrite: bool = False,
                 **store_options: Any) -> Array:
    """Create a Zarr array at ``location`` (path, URL or obstore store) and return it open
    for writing; nothing is stored but its metadata (every chunk reads as the fill value).

    ``shape``, ``chunks`` and ``shards`` are in elements, one per axis; with ``shards`` the
    chunks are the inner chunks of ``sharding_indexed`` (index at the end, ``bytes`` +
    ``crc32c``), and shards must be multiples of them. ``zarr_format=3``: ``codecs`` is the
    codec list as ``zarr.json`` records it (default ``bytes`` + ``zstd`` level 0);
    ``dimension_names`` one str or None per axis. ``zarr_format=2``: ``compressor`` a
    numcodecs config dict or None (``"default"``: zstd level 0), ``filters`` config dicts
    (``delta``), ``order`` ``"C"``/``"F"``, ``dimension_separator`` ``"."`` (default) or
    ``"/"``. ``fill_value`` None: the dtype's zero (v3), ``null`` (v2). ``attributes``:
    user attributes. Metadata already at ``location`` (an array or a group) raises
    ExistsError unless ``overwrite``, which first removes it and everything beneath it.
    Every argument is checked (and the document parsed as a read would) before anything is
    written. ``store_options``: as ``open_array``."""
    store = open_store(location, **store_options)
    return run_sync(store, create_array_in(
        store, "", shape=shape, dtype=dtype, chunks=chunks, shards=shards,
        zarr_format=zarr_format, codecs=codecs, compressor=compressor, filters=filters,
        fill_value=fill_value, order=order, dimension_separator=dimension_separator,
        dimension_names=dimension_names, attributes=attributes, overwrite=overwrite))


async def create_array_in(store: Store, path: str, *, overwrite: bool = False,
                          **options: Any) -> Array:
    """``create_array`` at ``path`` inside ``store`` (an OME-Zarr writer's arrays)."""
    prefix = f"{path}/" if path else ""
    where = f"{store.url}/{prefix}"
    doc, meta = build_metadata(where=where, **options)
    check_writable(meta, where)
    if not store.writable:
        raise ReadOnlyError(f"{store.url} takes no writes")
    await clear_node(store, path, overwrite)
    if meta.zarr_format == 3:
        await store.put(prefix + "zarr.json", metadata_bytes(doc))
    else:
        await store.put(prefix + ".zarray", metadata_bytes(doc))
        if options.get("attributes"):
            await store.put(prefix + ".zattrs", metadata_bytes(dict(options["attributes"])))
    return Array(store, meta, path, mode="r+")


__all__ = ["create_array", "create_array_in","DEFAULT_V2_COMPRESSOR", "DEFAULT_V3_CODECS", "build_metadata", "clear_node",
           "fill_json"]
