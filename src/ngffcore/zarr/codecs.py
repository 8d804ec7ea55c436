"""Codec metadata (Zarr v2 compressor/filters, Zarr v3 codec chains) → native pipelines.

A chain is parsed once at open time into a :class:`ChunkCodec`: what the C core does per
chunk (a :class:`ngffcore._core.Pipeline`), what Python must do first (bz2 / lzma), and, for
``sharding_indexed``, how inner chunks are located and decoded.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ngffcore import _core
from ngffcore.errors import MetadataError, UnsupportedError
from ngffcore.zarr.codecparams import codec_params
from ngffcore.zarr.pystages import PythonStage, bound_stages, compressed_bound, python_stage

# Names accepted for each native bytes→bytes codec (Zarr v3 names, numcodecs ids, v2 ids).
_NATIVE_BYTES_CODECS = {
    "blosc": _core.CODEC_BLOSC,
    "numcodecs.blosc": _core.CODEC_BLOSC,
    "zstd": _core.CODEC_ZSTD,
    "numcodecs.zstd": _core.CODEC_ZSTD,
    "gzip": _core.CODEC_ZLIB,
    "numcodecs.gzip": _core.CODEC_ZLIB,
    "zlib": _core.CODEC_ZLIB,
    "numcodecs.zlib": _core.CODEC_ZLIB,
    "lz4": _core.CODEC_LZ4,
    "numcodecs.lz4": _core.CODEC_LZ4,
    "crc32c": _core.CODEC_CRC32C,
    "numcodecs.crc32c": _core.CODEC_CRC32C,
}
# Decoded in Python (stdlib, GIL released inside) before the native chain (pystages).
_PYTHON_BYTES_CODECS = ("bz2", "numcodecs.bz2", "lzma", "numcodecs.lzma")
SUPPORTED_V2_COMPRESSORS = ("blosc", "zstd", "zlib", "gzip", "lz4", "bz2", "lzma", "null")
SUPPORTED_V2_FILTERS = ("delta",)
SUPPORTED_V3_CODECS = (
    "bytes", "transpose", "blosc", "gzip", "zstd", "crc32c", "sharding_indexed",
    "numcodecs.zlib", "numcodecs.gzip", "numcodecs.lz4", "numcodecs.zstd", "numcodecs.blosc",
    "numcodecs.bz2", "numcodecs.lzma", "numcodecs.crc32c", "numcodecs.delta",
)

NATIVE_LITTLE = sys.byteorder == "little"


@dataclass(frozen=True)
class ShardLayout:
    """How inner chunks are found in a shard (Zarr v3 ``sharding_indexed``)."""

    chunks_per_shard: tuple[int, ...]  # in the shard's own (possibly transposed) axis order
    perm: tuple[int, ...]  # the shard's axis k is logical (array) axis perm[k]
    inner: "ChunkCodec"
    index_at_end: bool
    index_big_endian: bool
    index_crc32c: bool

    @property
    def n_inner(self) -> int:
        return int(np.prod(self.chunks_per_shard, dtype=np.int64))

    @property
    def index_nbytes(self) -> int:
        return self.n_inner * _core.SHARD_ENTRY_BYTES + (4 if self.index_crc32c else 0)


@dataclass(frozen=True)
class ChunkCodec:
    """Decoding of one chunk of shape ``chunk_shape``: Python pre-stages, then native."""

    chunk_shape: tuple[int, ...]  # logical (array axis order)
    pipeline: _core.Pipeline | None  # None when the chunk is a shard
    python_stages: tuple[PythonStage, ...] = ()
    shard: ShardLayout | None = None
    names: tuple[str, ...] = field(default=())
    #: "" or why ngffcore cannot write chunks of this chain (reading is unaffected)
    write_problem: str = ""

    def describe(self) -> str:
        return " → ".join(self.names) if self.names else "none"


def _conf(codec: Any, path: str) -> tuple[str, dict[str, Any]]:
    if isinstance(codec, str):
        return codec, {}
    if not isinstance(codec, dict) or not isinstance(codec.get("name"), str):
        raise MetadataError(f"codec entry {codec!r} has no name", path=path)
    conf = codec.get("configuration", {})
    if not isinstance(conf, dict):
        raise MetadataError(f"codec {codec['name']!r} configuration is not an object", path=path)
    return codec["name"], conf


def _native_output_bound(chunk_nbytes: int, codec_ids: list[int]) -> int:
    """The most bytes the native chain's input (a python stage's output) can hold."""
    n = chunk_nbytes
    for cid in codec_ids:
        n = n + 4 if cid == _core.CODEC_CRC32C else compressed_bound(n)
    return n


def _c_strides(shape: tuple[int, ...], itemsize: int) -> list[int]:
    strides = [0] * len(shape)
    acc = itemsize
    for d in range(len(shape) - 1, -1, -1):
        strides[d] = acc
        acc *= shape[d]
    return strides


def _logical_strides(chunk_shape: tuple[int, ...], perm: list[int], itemsize: int) -> list[int]:
    """Byte strides of logical axes when the stored array's axis k is logical axis perm[k]."""
    stored_shape = tuple(chunk_shape[p] for p in perm)
    stored = _c_strides(stored_shape, itemsize)
    strides = [0] * len(chunk_shape)
    for k, axis in enumerate(perm):
        strides[axis] = stored[k]
    return strides


def _byteswap_parts(dtype: np.dtype) -> int:
    return 2 if dtype.kind == "c" else 1


def _delta_kind(dtype: np.dtype, path: str) -> int:
    if dtype.kind in "iu" and dtype.itemsize in (1, 2, 4, 8):
        return _core.DELTA_INT if dtype.kind == "i" else _core.DELTA_UINT
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        return _core.DELTA_FLOAT
    # bool: numcodecs encodes differences with XOR but decodes with a running OR, so there is
    # no decode that gives both numcodecs' result and the data written
    raise UnsupportedError(f"the delta filter on {dtype} is not supported (supported: int8-64, "
                           "uint8-64, float32/64)", path=path)


def _dtype_of(value: Any, path: str) -> np.dtype:
    try:
        dtype: np.dtype[Any] = np.dtype(value)
        return dtype
    except (TypeError, ValueError):
        raise MetadataError(f"filter dtype {value!r} is not a valid dtype", path=path) from None


def _is_native(dtype: np.dtype) -> bool:
    return dtype.byteorder in ("=", "|") or (dtype.byteorder == "<") == NATIVE_LITTLE


def _pipeline(
    *,
    chunk_shape: tuple[int, ...],
    out_dtype: np.dtype,
    stored_order_native: bool,
    perm: list[int],
    codec_ids: list[int],
    fill_bytes: bytes,
    delta: int = 0,
    delta_swap: bool = False,
    params: list[dict[str, int]] | None = None,
) -> _core.Pipeline:
    itemsize = out_dtype.itemsize
    swap = 0 if stored_order_native or itemsize == 1 else _byteswap_parts(out_dtype)
    try:
        return _core.Pipeline(
            itemsize=itemsize,
            chunk_shape=chunk_shape,
            chunk_strides=_logical_strides(chunk_shape, perm, itemsize),
            codecs=codec_ids,
            byteswap=swap,
            delta=delta,
            delta_swap=delta_swap,
            fill_value=fill_bytes,
            codec_params=params or (),
        )
    except ValueError as exc:
        raise MetadataError(str(exc)) from exc


def v2_chunk_codec(
    meta: dict[str, Any], dtype: np.dtype, chunk_shape: tuple[int, ...], fill_bytes: bytes,
    path: str,
) -> ChunkCodec:
    """Zarr v2: filters, then compressor; ``order`` C or F; ``dtype`` is stored and output."""
    order = meta.get("order", "C")
    if order not in ("C", "F"):
        raise MetadataError(f"order must be 'C' or 'F', not {order!r}", path=path)
    ndim = len(chunk_shape)
    perm = list(range(ndim)) if order == "C" else list(range(ndim - 1, -1, -1))
    names: list[str] = []
    delta = 0
    delta_swap = False
    filters = meta.get("filters") or []
    if not isinstance(filters, list):
        raise MetadataError("filters must be a list or null", path=path)
    for f in filters:
        fid = f.get("id") if isinstance(f, dict) else None
        if fid != "delta":
            raise UnsupportedError(
                f"filter {fid!r} is not supported (supported filters: "
                f"{', '.join(SUPPORTED_V2_FILTERS)})", path=path)
        if delta:
            raise UnsupportedError("more than one delta filter", path=path)
        fdtype = _dtype_of(f.get("dtype", dtype.str), path)
        astype = _dtype_of(f.get("astype", fdtype.str), path)
        if fdtype.newbyteorder("=") != dtype.newbyteorder("=") or astype != fdtype:
            raise UnsupportedError(
                f"delta filter with dtype {fdtype} / astype {astype} on a {dtype} array "
                "is not supported (only dtype == astype == the array's dtype)", path=path)
        delta = _delta_kind(fdtype, path)
        delta_swap = not _is_native(fdtype)
        names.append("delta")
    compressor = meta.get("compressor")
    codec_ids: list[int] = []
    params: list[dict[str, int]] = []
    problems: list[str] = []
    stages: list[PythonStage] = []
    if compressor is not None:
        cid = compressor.get("id") if isinstance(compressor, dict) else None
        if cid in ("blosc", "zstd", "zlib", "gzip", "lz4"):
            codec_ids.append(_NATIVE_BYTES_CODECS[cid])
            _add_params(params, problems, cid, compressor, dtype.itemsize)
        elif cid in ("bz2", "lzma"):
            stages.append(python_stage(cid, compressor, path))
        else:
            raise UnsupportedError(
                f"compressor {cid!r} is not supported (supported compressors: "
                f"{', '.join(SUPPORTED_V2_COMPRESSORS)})", path=path)
        names.append(str(cid))
    pipeline = _pipeline(
        chunk_shape=chunk_shape, out_dtype=dtype, stored_order_native=True, perm=perm,
        codec_ids=codec_ids, fill_bytes=fill_bytes, delta=delta, delta_swap=delta_swap,
        params=params)
    chunk_nbytes = math.prod(chunk_shape) * dtype.itemsize
    return ChunkCodec(chunk_shape, pipeline, bound_stages(stages, chunk_nbytes), None,
                      tuple(names), "; ".join(problems))


def v3_chunk_codec(
    codecs: Any, dtype: np.dtype, chunk_shape: tuple[int, ...], fill_bytes: bytes, path: str,
    perm: list[int] | None = None,
) -> ChunkCodec:
    """Zarr v3 codec chain for chunks of logical shape ``chunk_shape``; ``dtype`` is the
    native output. ``perm`` maps the chain's input axes to logical axes (transposes applied
    outside a sharding level carry into its inner chunks)."""
    if not isinstance(codecs, list) or not codecs:
        raise MetadataError("codecs must be a non-empty list", path=path)
    ndim = len(chunk_shape)
    perm = list(range(ndim)) if perm is None else list(perm)
    names: list[str] = []
    stored_native = True
    delta = 0
    saw_array_to_bytes = False
    codec_ids: list[int] = []
    params: list[dict[str, int]] = []
    problems: list[str] = []
    stages: list[PythonStage] = []
    for i, codec in enumerate(codecs):
        name, conf = _conf(codec, path)
        if not saw_array_to_bytes:
            if name == "transpose":
                order = conf.get("order")
                if order == "C":
                    order = list(range(ndim))
                elif order == "F":
                    order = list(range(ndim - 1, -1, -1))
                if (not isinstance(order, list) or sorted(order) != list(range(ndim))
                        or not all(isinstance(o, int) for o in order)):
                    raise MetadataError(f"transpose order {order!r} is not a permutation of "
                                        f"{ndim} axes", path=path)
                perm = [perm[o] for o in order]
                names.append("transpose")
                continue
            if name == "numcodecs.delta":
                if delta or perm != list(range(ndim)):
                    raise UnsupportedError("numcodecs.delta combined with transpose or "
                                           "another delta is not supported", path=path)
                fdtype = _dtype_of(conf.get("dtype", dtype.str), path)
                astype = _dtype_of(conf.get("astype", fdtype.str), path)
                if fdtype.newbyteorder("=") != dtype.newbyteorder("=") or astype != fdtype:
                    raise UnsupportedError("numcodecs.delta with astype != dtype is not "
                                           "supported", path=path)
                delta = _delta_kind(dtype, path)
                names.append("delta")
                continue
            if name == "bytes":
                endian = conf.get("endian")
                if endian is None:
                    if dtype.itemsize > 1:
                        raise MetadataError("the bytes codec needs 'endian' for multi-byte "
                                            "types", path=path)
                elif endian not in ("little", "big"):
                    raise MetadataError(f"bytes endian must be 'little' or 'big', not "
                                        f"{endian!r}", path=path)
                stored_native = endian is None or (endian == "little") == NATIVE_LITTLE
                names.append(f"bytes[{endian}]" if endian else "bytes")
                saw_array_to_bytes = True
                continue
            if name == "sharding_indexed":
                if delta:
                    raise UnsupportedError("numcodecs.delta before sharding_indexed is not "
                                           "supported", path=path)
                if i != len(codecs) - 1:
                    raise UnsupportedError("bytes→bytes codecs after sharding_indexed are "
                                           "not supported", path=path)
                return _sharding(conf, dtype, chunk_shape, perm, fill_bytes, path)
            raise UnsupportedError(
                f"codec {name!r} is not supported here (supported codecs: "
                f"{', '.join(SUPPORTED_V3_CODECS)})", path=path)
        if name in _NATIVE_BYTES_CODECS and not name.endswith("delta"):
            if stages:
                raise UnsupportedError(f"{name!r} after a bz2/lzma codec is not supported",
                                       path=path)
            codec_ids.append(_NATIVE_BYTES_CODECS[name])
            _add_params(params, problems, name, conf, dtype.itemsize)
        elif name in _PYTHON_BYTES_CODECS:
            stages.insert(0, python_stage(name, conf, path))
        else:
            raise UnsupportedError(
                f"codec {name!r} is not supported (supported codecs: "
                f"{', '.join(SUPPORTED_V3_CODECS)})", path=path)
        names.append(name)
    if not saw_array_to_bytes:
        raise MetadataError("the codec chain has no array→bytes codec ('bytes')", path=path)
    pipeline = _pipeline(
        chunk_shape=chunk_shape, out_dtype=dtype, stored_order_native=stored_native,
        perm=perm, codec_ids=codec_ids, fill_bytes=fill_bytes, delta=delta,
        delta_swap=delta != 0 and not stored_native, params=params)
    native_in = _native_output_bound(math.prod(chunk_shape) * dtype.itemsize, codec_ids)
    return ChunkCodec(chunk_shape, pipeline, bound_stages(stages, native_in), None,
                      tuple(names), "; ".join(problems))


def _add_params(params: list[dict[str, int]], problems: list[str], name: str,
                conf: dict[str, Any], itemsize: int) -> None:
    found, problem = codec_params(name, conf, itemsize)
    params.append(found)
    if problem:
        problems.append(problem)


def _sharding(conf: dict[str, Any], dtype: np.dtype, logical_shape: tuple[int, ...],
              perm: list[int], fill_bytes: bytes, path: str) -> ChunkCodec:
    # the sharding codec sees the shard in its own axis order (after any transpose)
    shard_shape = tuple(logical_shape[p] for p in perm)
    inner_shape = conf.get("chunk_shape")
    if (not isinstance(inner_shape, list) or len(inner_shape) != len(shard_shape)
            or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0
                       for c in inner_shape)):
        raise MetadataError(f"sharding chunk_shape {inner_shape!r} is invalid", path=path)
    if any(s % c for s, c in zip(shard_shape, inner_shape)):
        raise MetadataError(f"shard shape {list(shard_shape)} is not a multiple of the inner "
                            f"chunk shape {inner_shape}", path=path)
    # the index holds one 16-byte entry per inner chunk and is requested as one byte range:
    # its size must be a 64-bit offset (a range length beyond that overflows every client)
    n_inner = math.prod(s // c for s, c in zip(shard_shape, inner_shape))
    if n_inner * _core.SHARD_ENTRY_BYTES + 4 > 2**63 - 1:
        raise MetadataError(f"shard shape {list(shard_shape)} holds {n_inner} inner chunks of "
                            f"{inner_shape}: its index would overflow 64 bits", path=path)
    location = conf.get("index_location", "end")
    if location not in ("start", "end"):
        raise MetadataError(f"index_location must be 'start' or 'end', not {location!r}",
                            path=path)
    index_big = False
    index_crc = False
    index_codecs = conf.get("index_codecs", [{"name": "bytes",
                                              "configuration": {"endian": "little"}},
                                             {"name": "crc32c"}])
    if not isinstance(index_codecs, list) or not index_codecs:
        raise MetadataError("index_codecs must be a non-empty list", path=path)
    for k, codec in enumerate(index_codecs):
        name, iconf = _conf(codec, path)
        if k == 0 and name == "bytes":
            index_big = iconf.get("endian", "little") == "big"
        elif k == 1 and name == "crc32c" and len(index_codecs) == 2:
            index_crc = True
        else:
            raise UnsupportedError(f"shard index codecs {index_codecs!r} are not supported "
                                   "(supported: bytes, optionally followed by crc32c)",
                                   path=path)
    inner_logical = [0] * len(perm)
    for k, axis in enumerate(perm):
        inner_logical[axis] = inner_shape[k]
    inner = v3_chunk_codec(conf.get("codecs"), dtype, tuple(inner_logical), fill_bytes, path,
                           perm)
    layout = ShardLayout(
        chunks_per_shard=tuple(s // c for s, c in zip(shard_shape, inner_shape)),
        perm=tuple(perm),
        inner=inner,
        index_at_end=location == "end",
        index_big_endian=index_big,
        index_crc32c=index_crc,
    )
    return ChunkCodec(logical_shape, None, (), layout,
                      ("sharding_indexed",) + inner.names, inner.write_problem)
