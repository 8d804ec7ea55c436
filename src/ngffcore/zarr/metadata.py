"""Array metadata: Zarr v2 ``.zarray`` and Zarr v3 ``zarr.json`` → :class:`ArrayMetadata`.

Everything that decides buffer sizes is validated here, before any allocation or request:
shapes and chunk shapes are non-negative / positive integers whose products fit in 63 bits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

import numpy as np

from ngffcore import _core
from ngffcore.zarr.codecs import ChunkCodec, ShardLayout, v2_chunk_codec, v3_chunk_codec
from ngffcore.errors import ArgumentError, MetadataError, UnsupportedError
from ngffcore.limits import MAX_JSON_DEPTH, MAX_METADATA_BYTES, get_max_chunk_bytes

_V3_DTYPES = {
    "bool": "|b1",
    "int8": "|i1", "int16": "<i2", "int32": "<i4", "int64": "<i8",
    "uint8": "|u1", "uint16": "<u2", "uint32": "<u4", "uint64": "<u8",
    "float16": "<f2", "float32": "<f4", "float64": "<f8",
    "complex64": "<c8", "complex128": "<c16",
}
SUPPORTED_DTYPES = tuple(_V3_DTYPES)
_MAX_NBYTES = 2**63 - 1


@dataclass(frozen=True)
class ArrayMetadata:
    """What ngffcore needs to read one array. Immutable; shared across threads.

    (The cached properties below still work on a frozen dataclass: they write the instance
    ``__dict__`` directly.)"""

    zarr_format: int
    shape: tuple[int, ...]
    dtype: np.dtype
    grid_shape: tuple[int, ...]  # chunk shape of the storage grid (the shard shape if sharded)
    fill_value: Any  # as zarr-python reports it (None for a Zarr v2 null fill)
    fill_bytes: bytes  # one element written for missing chunks
    key_encoding: int  # _core.KEY_V2 or _core.KEY_DEFAULT
    key_separator: str
    codec: ChunkCodec
    dimension_names: tuple[str | None, ...] | None = None
    attributes: dict[str, Any] | None = field(default=None, compare=False)
    #: the ``.zarray`` / ``zarr.json`` document this was parsed from: what a pickle carries
    #: (the compiled native pipeline is not picklable; unpickling re-parses it, no I/O)
    document: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def __reduce__(self) -> tuple[Any, ...]:
        if self.document is None:
            raise TypeError("ArrayMetadata built without its source document cannot be "
                            "pickled")
        # v2 attributes live in .zattrs: they travel when already read, else the unpickled
        # array reads them on first use as the original would have
        attrs = self.attributes if self.zarr_format == 2 else None
        return (_from_document, (self.zarr_format, self.document, attrs))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @cached_property
    def shard_levels(self) -> tuple[ShardLayout, ...]:
        """Sharding levels from the outermost in; empty if unsharded."""
        levels = []
        codec = self.codec
        while codec.shard is not None:
            levels.append(codec.shard)
            codec = codec.shard.inner
        return tuple(levels)

    @cached_property
    def leaf_codec(self) -> ChunkCodec:
        """Codec of the innermost chunks: the unit the core decodes."""
        return self.shard_levels[-1].inner if self.shard_levels else self.codec

    @cached_property
    def decoded_pipeline(self) -> _core.Pipeline:
        """Scatters chunks that are already decoded (whole innermost chunks, C order, in the
        result's byte order): the copy step of reads through a chunk cache."""
        shape = self.leaf_codec.chunk_shape
        strides = [self.dtype.itemsize] * len(shape)
        for d in range(len(shape) - 2, -1, -1):
            strides[d] = strides[d + 1] * shape[d + 1]
        return _core.Pipeline(itemsize=self.dtype.itemsize, chunk_shape=shape,
                              chunk_strides=strides, fill_value=self.fill_bytes)


def _from_document(zarr_format: int, document: dict[str, Any],
                   attributes: dict[str, Any] | None) -> ArrayMetadata:
    """Unpickle: re-parse the source document (validated when first parsed; no I/O)."""
    where = "(unpickled array metadata)"
    if zarr_format == 2:
        return parse_v2(document, where, attributes)
    return parse_v3(document, where)


def metadata_bytes(doc: dict[str, Any]) -> bytes:
    """A metadata document as written (indented as zarr-python writes it)."""
    try:
        return json.dumps(doc, indent=2, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"metadata is not JSON-serialisable: {exc}") from None


def parse_json(raw: Any, path: str) -> dict[str, Any]:
    """Decode a metadata document (any bytes-like object); anything but a JSON object is a
    MetadataError."""
    if len(raw) > MAX_METADATA_BYTES:
        raise MetadataError(f"metadata document of {len(raw)} bytes is larger than the "
                            f"{MAX_METADATA_BYTES}-byte limit", path=path)
    text = raw if isinstance(raw, (bytes, bytearray, str)) else bytes(raw)
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # ValueError also covers an integer of more digits than Python converts (4300)
        raise MetadataError(f"not valid JSON: {exc}", path=path) from None
    if not isinstance(doc, dict):
        raise MetadataError("metadata is not a JSON object", path=path)
    if nests_deeper(doc, text, MAX_JSON_DEPTH):
        raise MetadataError(f"metadata nests deeper than {MAX_JSON_DEPTH} levels (the limit)",
                            path=path)
    return doc


def nests_deeper(doc: Any, text: bytes | bytearray | str, limit: int) -> bool:
    """Whether a parsed document nests more than ``limit`` arrays/objects deep. A document
    with no more opening brackets than ``limit`` cannot (one C-speed count, the usual
    case); else an iterative walk of its containers (no recursion: that is what a hostile
    document would exhaust)."""
    if isinstance(text, str):
        if text.count("[") + text.count("{") <= limit:
            return False
    elif text.count(b"[") + text.count(b"{") <= limit:
        return False
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        for item in (value.values() if isinstance(value, dict) else value):
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1))
    return False


def _int_tuple(value: Any, what: str, path: str, *, positive: bool) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise MetadataError(f"{what} must be a list of integers, not {value!r}", path=path)
    if len(value) > _core.MAX_DIMS:
        raise UnsupportedError(f"{what} has {len(value)} dimensions; at most "
                               f"{_core.MAX_DIMS} are supported", path=path)
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int):
            raise MetadataError(f"{what} must be a list of integers, not {value!r}", path=path)
        if v < 0 or (positive and v == 0):
            raise MetadataError(f"{what} {value!r} has a {'non-positive' if positive else 'negative'}"
                                " entry", path=path)
        out.append(v)
    return tuple(out)


def _check_sizes(shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int,
                 path: str) -> None:
    if len(shape) != len(chunks):
        raise MetadataError(f"shape {list(shape)} and chunk shape {list(chunks)} have "
                            "different lengths", path=path)
    # the non-zero extents, not the product: an empty axis makes the product 0, yet the other
    # extents still become strides, grid counts and numpy shapes that must fit in 64 bits
    if math.prod(n for n in shape if n) * itemsize > _MAX_NBYTES:
        raise MetadataError(f"shape {list(shape)} of {itemsize}-byte items overflows 64 bits",
                            path=path)
    if math.prod(chunks) * itemsize > _MAX_NBYTES:
        raise MetadataError(f"chunk shape {list(chunks)} overflows 64 bits", path=path)


def _check_chunk_limit(codec: ChunkCodec, dtype: np.dtype, path: str) -> None:
    """One decode allocates a whole innermost chunk (a shard is never decoded whole: only
    its inner chunks are), however little of it a read wants: a declared chunk over
    ``set_max_chunk_bytes`` is refused here, before anything is allocated."""
    while codec.shard is not None:
        codec = codec.shard.inner
    nbytes = math.prod(codec.chunk_shape) * dtype.itemsize
    limit = get_max_chunk_bytes()
    if nbytes > limit:
        raise MetadataError(f"chunk shape {list(codec.chunk_shape)} of {dtype} decodes to "
                            f"{nbytes} bytes per chunk; the limit is {limit} "
                            "(ngffcore.set_max_chunk_bytes)", path=path)


def _float_from(value: Any, dtype: np.dtype, path: str) -> Any:
    """A float fill value: number, "NaN", "Infinity", "-Infinity", or "0x…" bit pattern."""
    if isinstance(value, bool):
        raise MetadataError(f"fill_value {value!r} is not valid for {dtype}", path=path)
    if isinstance(value, (int, float)):
        return value
    if value == "NaN":
        return float("nan")
    if value == "Infinity":
        return float("inf")
    if value == "-Infinity":
        return float("-inf")
    if isinstance(value, str) and value.startswith("0x"):
        try:
            bits = int(value, 16)
            raw = bits.to_bytes(dtype.itemsize, "little")
        except (ValueError, OverflowError):
            raise MetadataError(f"fill_value {value!r} is not a {dtype.itemsize}-byte bit "
                                "pattern", path=path) from None
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<"))[0]
    raise MetadataError(f"fill_value {value!r} is not valid for {dtype}", path=path)


def _scalar(value: Any, dtype: np.dtype) -> np.generic:
    return cast(np.generic, np.asarray(value).astype(dtype)[()])


def _fill_scalar(value: Any, dtype: np.dtype, path: str) -> np.generic:
    """The fill value as a scalar of ``dtype`` (numpy semantics, e.g. wrap-free ints)."""
    kind = dtype.kind
    try:
        if kind == "b":
            if not isinstance(value, (bool, int)):
                raise MetadataError(f"fill_value {value!r} is not valid for bool", path=path)
            return _scalar(bool(value), dtype)
        if kind in "iu":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise MetadataError(f"fill_value {value!r} is not valid for {dtype}", path=path)
            info = np.iinfo(dtype)
            if not info.min <= value <= info.max:
                raise MetadataError(f"fill_value {value} is out of range for {dtype}",
                                    path=path)
            return _scalar(value, dtype)
        if kind == "f":
            return _scalar(_float_from(value, dtype, path), dtype)
        if kind == "c":
            if not isinstance(value, list) or len(value) != 2:
                raise MetadataError(f"fill_value {value!r} for {dtype} must be [real, imag]",
                                    path=path)
            part = np.dtype(f"{dtype.byteorder}f{dtype.itemsize // 2}")
            re_, im_ = (_fill_scalar(v, part, path) for v in value)
            out = np.zeros((), dtype=dtype)
            out.real = re_
            out.imag = im_
            return _scalar(out, dtype)
    except (OverflowError, TypeError) as exc:
        raise MetadataError(f"fill_value {value!r} is not valid for {dtype}: {exc}",
                            path=path) from None
    raise UnsupportedError(f"dtype {dtype} is not supported", path=path)


def _fill_bytes(scalar: np.generic, dtype: np.dtype) -> bytes:
    return np.array(scalar, dtype=dtype).tobytes()


def _v2_dtype(value: Any, path: str) -> np.dtype:
    if not isinstance(value, str):
        raise UnsupportedError(f"dtype {value!r} is not supported (structured dtypes are not; "
                               f"supported: {', '.join(SUPPORTED_DTYPES)})", path=path)
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise MetadataError(f"dtype {value!r} is not a valid numpy dtype string",
                            path=path) from None
    if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
        raise UnsupportedError(f"dtype {value!r} is not supported (supported: "
                               f"{', '.join(SUPPORTED_DTYPES)}, either byte order)", path=path)
    return dtype


def parse_v2(doc: dict[str, Any], path: str, attributes: dict[str, Any] | None = None
             ) -> ArrayMetadata:
    """Validate a ``.zarray`` document."""
    if doc.get("zarr_format") != 2:
        raise MetadataError(f"zarr_format is {doc.get('zarr_format')!r}, expected 2", path=path)
    for key in ("shape", "chunks", "dtype"):
        if key not in doc:
            raise MetadataError(f"missing {key!r}", path=path)
    dtype = _v2_dtype(doc["dtype"], path)
    shape = _int_tuple(doc["shape"], "shape", path, positive=False)
    chunks = _int_tuple(doc["chunks"], "chunks", path, positive=True)
    _check_sizes(shape, chunks, dtype.itemsize, path)
    raw_fill = doc.get("fill_value")
    if raw_fill is None:
        fill_value = None
        fill_bytes = bytes(dtype.itemsize)  # zarr-python reads a null fill as zeros
    else:
        scalar = _fill_scalar(raw_fill, dtype, path)
        fill_value = scalar
        fill_bytes = _fill_bytes(scalar, dtype)
    separator = doc.get("dimension_separator", ".") or "."
    if separator not in (".", "/"):
        raise MetadataError(f"dimension_separator must be '.' or '/', not {separator!r}",
                            path=path)
    codec = v2_chunk_codec(doc, dtype, chunks, fill_bytes, path)
    _check_chunk_limit(codec, dtype, path)
    return ArrayMetadata(
        zarr_format=2, shape=shape, dtype=dtype, grid_shape=chunks, fill_value=fill_value,
        fill_bytes=fill_bytes, key_encoding=_core.KEY_V2, key_separator=separator, codec=codec,
        attributes=attributes, document=doc,
    )


def parse_v3(doc: dict[str, Any], path: str) -> ArrayMetadata:
    """Validate an array's ``zarr.json`` document."""
    if doc.get("zarr_format") != 3:
        raise MetadataError(f"zarr_format is {doc.get('zarr_format')!r}, expected 3", path=path)
    if doc.get("node_type") != "array":
        raise MetadataError(f"node_type is {doc.get('node_type')!r}, not 'array'", path=path)
    for key in ("shape", "data_type", "chunk_grid", "chunk_key_encoding", "fill_value",
                "codecs"):
        if key not in doc:
            raise MetadataError(f"missing {key!r}", path=path)
    data_type = doc["data_type"]
    if not isinstance(data_type, str) or data_type not in _V3_DTYPES:
        raise UnsupportedError(f"data_type {data_type!r} is not supported (supported: "
                               f"{', '.join(SUPPORTED_DTYPES)})", path=path)
    dtype = np.dtype(_V3_DTYPES[data_type]).newbyteorder("=")
    if dtype.itemsize == 1:
        dtype = dtype.newbyteorder("|")
    shape = _int_tuple(doc["shape"], "shape", path, positive=False)
    grid = doc["chunk_grid"]
    if not isinstance(grid, dict) or grid.get("name") != "regular":
        name = grid.get("name") if isinstance(grid, dict) else grid
        raise UnsupportedError(f"chunk grid {name!r} is not supported (supported: regular)",
                               path=path)
    chunks = _int_tuple((grid.get("configuration") or {}).get("chunk_shape"), "chunk_shape",
                        path, positive=True)
    _check_sizes(shape, chunks, dtype.itemsize, path)
    enc = doc["chunk_key_encoding"]
    if not isinstance(enc, dict) or enc.get("name") not in ("default", "v2"):
        raise UnsupportedError(f"chunk_key_encoding {enc!r} is not supported "
                               "(supported: default, v2)", path=path)
    enc_conf = enc.get("configuration") or {}
    separator = enc_conf.get("separator", "/" if enc["name"] == "default" else ".")
    if separator not in (".", "/"):
        raise MetadataError(f"chunk key separator must be '.' or '/', not {separator!r}",
                            path=path)
    if doc.get("storage_transformers"):
        raise UnsupportedError("storage_transformers are not supported", path=path)
    scalar = _fill_scalar(doc["fill_value"], dtype, path)
    fill_bytes = _fill_bytes(scalar, dtype)
    codec = v3_chunk_codec(doc["codecs"], dtype, chunks, fill_bytes, path)
    _check_chunk_limit(codec, dtype, path)
    names = doc.get("dimension_names")
    if names is not None and (not isinstance(names, list) or len(names) != len(shape)):
        raise MetadataError(f"dimension_names {names!r} do not match {len(shape)} axes",
                            path=path)
    attributes = doc.get("attributes", {})
    if not isinstance(attributes, dict):
        raise MetadataError("attributes must be an object", path=path)
    return ArrayMetadata(
        zarr_format=3, shape=shape, dtype=dtype, grid_shape=chunks, fill_value=scalar,
        fill_bytes=fill_bytes,
        key_encoding=_core.KEY_DEFAULT if enc["name"] == "default" else _core.KEY_V2,
        key_separator=separator, codec=codec,
        dimension_names=tuple(names) if names is not None else None, attributes=attributes,
        document=doc,
    )


__all__ = ["ArrayMetadata", "parse_json", "parse_v2", "parse_v3", "SUPPORTED_DTYPES"]
