#!/usr/bin/env python3
"""Writes the fuzzers' seed inputs, fuzz/seeds/<target>/<name>, from real encoded data.

* codec targets (blosc, zstd, zlib, lz4, crc32c): chunks encoded by numcodecs (every blosc
  compressor x shuffle, with and without small block sizes, memcpyed frames, blosc2 frames
  from python-blosc2; zstd with and without a recorded size; zlib, gzip, multi-member gzip;
  LZ4; payloads with their CRC-32C);
* pipeline: chunk files written by zarr-python (Zarr v2: every compressor, delta filter,
  C/F order, both byte orders; Zarr v3: bytes little/big, transpose, blosc/zstd/gzip and
  crc32c chains), each behind a header (fuzz/fuzz_pipeline.c) for the whole chunk, a
  partial box read from a file, and a partial box into a reversed, permuted output; every
  whole-chunk seed is checked to decode to the written data through ngffcore._core;
* shard: indexes of shard files written by zarr-python's sharding codec (index at the end
  and at the start, little/big-endian, with and without crc32c, empty inner chunks);
* grid, render: parameters typical of OME-Zarr images, samples from real-looking data.

Deterministic: running it again rewrites the same bytes. Needs numcodecs, zarr, blosc2,
zstandard and an installed ngffcore (pip install -e '.[test]').

    python fuzz/make_seeds.py [--out fuzz/seeds]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import shutil
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import blosc2
import numcodecs
import numpy as np
import zarr
import zstandard
from numcodecs import Blosc
from zarr.codecs import (BloscCodec, BytesCodec, Crc32cCodec, GzipCodec, ShardingCodec,
                         TransposeCodec, ZstdCodec)

from ngffcore import _core

BLOSC, ZSTD, ZLIB, LZ4, CRC32C = 1, 2, 3, 4, 5
SHUFFLES = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE,
            "bitshuffle": Blosc.BITSHUFFLE}
CNAMES = ["blosclz", "lz4", "lz4hc", "zstd", "zlib"]


def sample(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """Microscopy-like values: a smooth ramp, noise, and a dark (zero) corner."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    x = np.arange(n, dtype=np.float64)
    smooth = 40 * np.sin(x / 9.0) + (x % 97) * 1.5 + 60
    noise = rng.normal(0, 6, n)
    dt = np.dtype(dtype)
    v = smooth + noise
    v[: n // 8] = 0
    if dt.kind == "f":
        a = (v / 7).astype(dt)
    elif dt.kind == "c":
        a = (v / 7 + 1j * noise).astype(dt)
    elif dt.kind == "b":
        a = v > 80
    else:
        info = np.iinfo(dt)
        a = (np.rint(v).astype(np.int64) % (int(info.max) + 1 if info.max < 2**62 else 2**62)).astype(dt)
    return a.reshape(shape)


class Seeds:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.count: dict[str, int] = {}

    def add(self, target: str, name: str, data: bytes) -> None:
        d = self.root / target
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
        self.count[target] = self.count.get(target, 0) + 1


@contextlib.contextmanager
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---------------------------------------------------------------------------------------
# codec targets
# ---------------------------------------------------------------------------------------


def crc_le(data: bytes) -> bytes:
    return struct.pack("<I", _core.crc32c(data))


def codec_seeds(s: Seeds) -> None:
    dtypes = ["u1", "<u2", "<f4", "<f8", "<i2"]
    k = 0
    for cname in CNAMES:
        for sname, shuffle in SHUFFLES.items():
            for blocksize in (0, 256):
                dt = dtypes[k % len(dtypes)]
                k += 1
                a = sample((2048 // np.dtype(dt).itemsize,), dt, k)
                enc = Blosc(cname=cname, clevel=5, shuffle=shuffle, blocksize=blocksize).encode(a)
                s.add("blosc", f"{cname}-{sname}-bs{blocksize}-{dt.strip('<')}", bytes(enc))
    a = sample((1024,), "<u2", 1)
    s.add("blosc", "memcpyed", bytes(Blosc(cname="lz4", clevel=0).encode(a)))
    s.add("blosc", "typesize1-shuffle",
          bytes(Blosc(cname="zstd", clevel=3, shuffle=Blosc.SHUFFLE, blocksize=256)
                .encode(sample((3000,), "u1", 2))))
    s.add("blosc", "one-byte", bytes(Blosc(cname="lz4").encode(np.array([7], "u1"))))
    s.add("blosc", "empty", bytes(Blosc(cname="lz4").encode(np.zeros(0, "u1"))))
    s.add("blosc", "zeros", bytes(Blosc(cname="zstd").encode(np.zeros(4096, "u1"))))
    raw = sample((1024,), "<f4", 3).tobytes()
    for name, kw in {
        "b2-zstd-shuffle": dict(codec=blosc2.Codec.ZSTD, filters=[blosc2.Filter.SHUFFLE]),
        "b2-lz4-bitshuffle": dict(codec=blosc2.Codec.LZ4, filters=[blosc2.Filter.BITSHUFFLE]),
        "b2-blosclz-delta": dict(codec=blosc2.Codec.BLOSCLZ,
                                 filters=[blosc2.Filter.DELTA, blosc2.Filter.SHUFFLE]),
        "b2-zstd-trunc": dict(codec=blosc2.Codec.ZSTD,
                              filters=[blosc2.Filter.TRUNC_PREC, blosc2.Filter.SHUFFLE],
                              filters_meta=[10, 0]),
        "b2-lz4-delta-bs1024": dict(codec=blosc2.Codec.LZ4, blocksize=1024,
                                    filters=[blosc2.Filter.DELTA, blosc2.Filter.SHUFFLE]),
    }.items():
        s.add("blosc", name, bytes(blosc2.compress2(raw, typesize=4, clevel=5, **kw)))

    data = [sample((2048,), "<u2", 4).tobytes(), sample((512,), "<f8", 5).tobytes(), b"",
            b"\x00" * 3000]
    for i, d in enumerate(data):
        for level in (1, 19):
            s.add("zstd", f"d{i}-level{level}", bytes(numcodecs.Zstd(level=level).encode(d)))
        s.add("zlib", f"d{i}-zlib", bytes(numcodecs.Zlib(level=5).encode(d)))
        s.add("zlib", f"d{i}-gzip", bytes(numcodecs.GZip(level=5).encode(d)))
        s.add("lz4", f"d{i}", bytes(numcodecs.LZ4().encode(d)))
        s.add("crc32c", f"d{i}", d[:600] + crc_le(d[:600]))
    d = data[0]
    s.add("zstd", "checksum", bytes(numcodecs.Zstd(level=3, checksum=True).encode(d)))
    s.add("zstd", "no-content-size",
          zstandard.ZstdCompressor(write_content_size=False).compress(d))
    s.add("zstd", "two-frames", zstandard.ZstdCompressor().compress(d[:1000])
          + zstandard.ZstdCompressor().compress(d[1000:]))
    s.add("zstd", "skippable", struct.pack("<II", 0x184D2A50, 4) + b"skip"
          + zstandard.ZstdCompressor().compress(d))
    s.add("zlib", "gzip-two-members", gzip.compress(d[:1500], mtime=0) + gzip.compress(d[1500:], mtime=0))
    for name, strategy in (("rle", zlib.Z_RLE), ("huffman", zlib.Z_HUFFMAN_ONLY),
                           ("fixed", zlib.Z_FIXED)):
        c = zlib.compressobj(6, zlib.DEFLATED, 15, 8, strategy)
        s.add("zlib", f"zlib-{name}", c.compress(d) + c.flush())
    c = zlib.compressobj(6, zlib.DEFLATED, 9)
    s.add("zlib", "zlib-window9", c.compress(d) + c.flush())
    s.add("zlib", "zlib-stored", zlib.compress(d, 0))
    s.add("lz4", "accel-100", bytes(numcodecs.LZ4(acceleration=100).encode(d)))
    s.add("crc32c", "short", b"\x01\x02\x03")
    s.add("crc32c", "check-value", b"123456789" + crc_le(b"123456789"))


# ---------------------------------------------------------------------------------------
# pipeline
# ---------------------------------------------------------------------------------------


def perm_index(perm: list[int]) -> int:
    """Inverse of fuzz_pipeline.c's nth_perm."""
    items = list(range(len(perm)))
    k = 0
    for i, p in enumerate(perm):
        j = items.index(p)
        k += j * int(np.prod(range(1, len(perm) - i), dtype=np.int64))
        items.pop(j)
    return k


def pipeline_header(*, itemsize: int, byteswap: int, delta: int, delta_swap: int,
                    codecs: list[int], chunk: tuple[int, ...], perm: list[int], fill: bytes,
                    box: tuple[list[int], list[int]] | None, pads: list[int], ats: list[int],
                    operm: list[int], flips: int, source: int) -> bytes:
    ndim = len(chunk)
    h = [ndim, itemsize - 1, byteswap, delta | delta_swap << 2, len(codecs)]
    h += [c - 1 for c in codecs] + [c - 1 for c in chunk] + [perm_index(perm)] + list(fill)
    inner, shape = box if box else ([0] * ndim, list(chunk))
    h += [0 if box else 1]
    for i, n in zip(inner, shape):
        h += [i, n - 1]
    for p, a in zip(pads, ats):
        h += [p, a]
    h += [perm_index(operm), flips, source]
    assert all(0 <= v < 256 for v in h), h
    return bytes(h)


def decode_check(params: dict, chunk_bytes: bytes, want: np.ndarray) -> None:
    """The whole chunk through ngffcore._core equals what zarr-python was given."""
    chunk, perm, itemsize = params["chunk"], params["perm"], params["itemsize"]
    strides = [0] * len(chunk)
    st = itemsize
    for axis in reversed(perm):
        strides[axis] = st
        st *= chunk[axis]
    p = _core.Pipeline(itemsize=itemsize, chunk_shape=chunk, chunk_strides=strides,
                       codecs=params["codecs"], byteswap=params["byteswap"],
                       delta=params["delta"], delta_swap=bool(params["delta_swap"]))
    out = np.zeros(chunk, want.dtype)
    boxes = np.array([[0] * len(chunk) + list(chunk) + [0] * len(chunk)], np.int64)
    _core.decode_batch(p, out, boxes, [chunk_bytes], ["seed"])
    assert out.tobytes() == want.tobytes(), "seed header does not describe the chunk"


def chunk_variants(s: Seeds, name: str, params: dict, chunk_bytes: bytes) -> None:
    chunk = params["chunk"]
    ndim = len(chunk)
    ident = list(range(ndim))
    base = dict(params, fill=bytes(range(params["itemsize"])))
    # 1. the whole chunk into a matching C-order output: the direct decode
    s.add("pipeline", f"{name}-whole", pipeline_header(
        **base, box=None, pads=[0] * ndim, ats=[0] * ndim, operm=ident, flips=0, source=1)
        + chunk_bytes)
    # 2. a small box (blosc: the partial decode, block reads from the file) into padding
    inner = [c // 3 for c in chunk]
    shape = [max(1, c // 4) for c in chunk]
    s.add("pipeline", f"{name}-part-file", pipeline_header(
        **base, box=(inner, shape), pads=[2] * ndim, ats=[1] * ndim, operm=ident, flips=0,
        source=2) + chunk_bytes)
    # 3. most of the chunk into a reversed, permuted output (block by block, scatter)
    inner = [1 if c > 2 else 0 for c in chunk]
    shape = [c - i for c, i in zip(chunk, inner)]
    s.add("pipeline", f"{name}-most-flipped", pipeline_header(
        **base, box=(inner, shape), pads=[1] * ndim, ats=[0] * ndim, operm=ident[::-1],
        flips=1, source=3) + chunk_bytes)


def zarr_chunk(path: str, fmt: int) -> bytes:
    root = Path(path)
    files = sorted(f for f in root.rglob("*") if f.is_file()
                   and f.name not in (".zarray", ".zattrs", "zarr.json", ".zgroup"))
    assert len(files) == 1, files
    return files[0].read_bytes()


def delta_kind(dt: np.dtype) -> int:
    return {"i": _core.DELTA_INT, "u": _core.DELTA_UINT, "f": _core.DELTA_FLOAT}[dt.kind]


def pipeline_seeds(s: Seeds, tmp: Path) -> None:
    v2_compressors = {
        "blosc-lz4-shuffle": (Blosc(cname="lz4", shuffle=Blosc.SHUFFLE), [BLOSC]),
        "blosc-zstd-bitshuffle-bs256": (Blosc(cname="zstd", shuffle=Blosc.BITSHUFFLE,
                                              blocksize=256), [BLOSC]),
        "blosc-blosclz-noshuffle-bs512": (Blosc(cname="blosclz", shuffle=Blosc.NOSHUFFLE,
                                                blocksize=512), [BLOSC]),
        "blosc-lz4hc-shuffle-bs1024": (Blosc(cname="lz4hc", shuffle=Blosc.SHUFFLE,
                                             blocksize=1024), [BLOSC]),
        "blosc-zlib-bitshuffle": (Blosc(cname="zlib", shuffle=Blosc.BITSHUFFLE), [BLOSC]),
        "zstd": (numcodecs.Zstd(level=3), [ZSTD]),
        "zlib": (numcodecs.Zlib(level=5), [ZLIB]),
        "gzip": (numcodecs.GZip(level=5), [ZLIB]),
        "lz4": (numcodecs.LZ4(), [LZ4]),
        "raw": (None, []),
    }
    v2_cases = [  # dtype, chunk, order, delta
        ("|u1", (32, 48), "C", False), ("<u2", (64, 64), "C", False),
        (">u2", (16, 24, 8), "F", False), ("<i4", (8, 16, 16), "C", True),
        ("<f4", (24, 40), "F", False), (">f8", (4, 8, 8, 6), "C", False),
        ("<c8", (16, 16), "C", False), ("<u2", (48, 40), "C", True),
        ("|u1", (4, 32, 32), "C", False), (">i2", (40, 36), "C", True),
    ]
    n = 0
    for i, (cname, (comp, ids)) in enumerate(v2_compressors.items()):
        for j in range(3):
            dt_s, chunk, order, delta = v2_cases[(i + 3 * j) % len(v2_cases)]
            dt = np.dtype(dt_s)
            data = sample(chunk, dt_s, 100 + n)
            path = str(tmp / f"v2-{n}")
            n += 1
            filters = [numcodecs.Delta(dtype=dt_s)] if delta else None
            with quiet():
                z = zarr.create_array(path, shape=chunk, chunks=chunk, dtype=dt, zarr_format=2,
                                      compressors=comp, filters=filters, order=order,
                                      fill_value=0)
                z[...] = data
            ndim = len(chunk)
            params = dict(itemsize=dt.itemsize, byteswap=0,
                          delta=delta_kind(dt) if delta else 0,
                          delta_swap=int(delta and dt.byteorder == ">"), codecs=ids,
                          chunk=chunk, perm=list(range(ndim))[::-1] if order == "F"
                          else list(range(ndim)))
            chunk_bytes = zarr_chunk(path, 2)
            decode_check(params, chunk_bytes, data)
            chunk_variants(s, f"v2-{cname}-{dt.str.replace('<', 'le').replace('>', 'be').replace('|', '')}"
                           f"-{order}{'-delta' if delta else ''}", params, chunk_bytes)

    v3_chains = {
        "blosc-zstd-shuffle": ([BloscCodec(cname="zstd", shuffle="shuffle")], [BLOSC]),
        "blosc-lz4-bitshuffle-bs512": ([BloscCodec(cname="lz4", shuffle="bitshuffle",
                                                   blocksize=512)], [BLOSC]),
        "blosc-typesize1-bs256": ([BloscCodec(cname="zstd", shuffle="shuffle", typesize=1,
                                              blocksize=256)], [BLOSC]),
        "blosc+crc32c": ([BloscCodec(cname="lz4", shuffle="shuffle", blocksize=1024),
                          Crc32cCodec()], [BLOSC, CRC32C]),
        "zstd+crc32c": ([ZstdCodec(level=1), Crc32cCodec()], [ZSTD, CRC32C]),
        "gzip": ([GzipCodec(level=5)], [ZLIB]),
        "crc32c": ([Crc32cCodec()], [CRC32C]),
        "raw": ([], []),
    }
    v3_cases = [  # dtype, chunk, endian, transpose order
        ("<u2", (32, 64), "little", None), ("<f4", (16, 8, 24), "big", (2, 0, 1)),
        ("<u1", (48, 48), "little", (1, 0)), ("<i8", (16, 32), "big", None),
        ("<c8", (12, 20), "big", (1, 0)), ("<u2", (4, 16, 64), "little", (0, 2, 1)),
    ]
    for i, (cname, (comps, ids)) in enumerate(v3_chains.items()):
        for j in range(2):
            dt_s, chunk, endian, order = v3_cases[(i + 2 * j) % len(v3_cases)]
            dt = np.dtype(dt_s)
            data = sample(chunk, dt_s, 200 + n)
            path = str(tmp / f"v3-{n}")
            n += 1
            with quiet():
                z = zarr.create_array(path, shape=chunk, chunks=chunk, dtype=dt, zarr_format=3,
                                      serializer=BytesCodec(endian=endian if dt.itemsize > 1 else None),
                                      compressors=comps,
                                      filters=[TransposeCodec(order=order)] if order else None,
                                      fill_value=0)
                z[...] = data
            ndim = len(chunk)
            swap = 0 if endian == "little" or dt.itemsize == 1 else 2 if dt.kind == "c" else 1
            params = dict(itemsize=dt.itemsize, byteswap=swap, delta=0, delta_swap=0,
                          codecs=ids, chunk=chunk,
                          perm=list(order) if order else list(range(ndim)))
            chunk_bytes = zarr_chunk(path, 3)
            decode_check(params, chunk_bytes, data)
            chunk_variants(s, f"v3-{cname}-{dt.str.strip('<|')}-{endian}"
                           f"{'-T' + ''.join(map(str, order)) if order else ''}", params,
                           chunk_bytes)
    # blosc frames written by python-blosc2 (c-blosc2), as a Zarr v2 blosc chunk would hold
    # them: the delta filter (blocks decode only after the first) and bytedelta
    for name, filters in (("delta", [blosc2.Filter.DELTA, blosc2.Filter.SHUFFLE]),
                          ("bytedelta", [blosc2.Filter.SHUFFLE, blosc2.Filter.BYTEDELTA])):
        data = sample((32, 64), "<u2", 500)
        frame = bytes(blosc2.compress2(data.tobytes(), typesize=2, clevel=5, blocksize=512,
                                       codec=blosc2.Codec.ZSTD, filters=filters))
        params = dict(itemsize=2, byteswap=0, delta=0, delta_swap=0, codecs=[BLOSC],
                      chunk=(32, 64), perm=[0, 1])
        decode_check(params, frame, data)
        chunk_variants(s, f"blosc2-{name}-u2", params, frame)
    # a missing chunk: the fill value into a box
    s.add("pipeline", "missing", pipeline_header(
        itemsize=4, byteswap=0, delta=0, delta_swap=0, codecs=[BLOSC], chunk=(8, 8),
        perm=[0, 1], fill=b"\x01\x02\x03\x04", box=([2, 3], [4, 4]), pads=[1, 2], ats=[1, 0],
        operm=[1, 0], flips=2, source=0))


# ---------------------------------------------------------------------------------------
# shard
# ---------------------------------------------------------------------------------------


def shard_seeds(s: Seeds, tmp: Path) -> None:
    cases = {
        "end-crc": dict(index_location="end"),
        "start-crc": dict(index_location="start"),
        "end-big-crc": dict(index_location="end",
                            index_codecs=[BytesCodec(endian="big"), Crc32cCodec()]),
        "end-nocrc": dict(index_location="end", index_codecs=[BytesCodec()]),
        "start-big-nocrc": dict(index_location="start",
                                index_codecs=[BytesCodec(endian="big")]),
    }
    for k, (name, kw) in enumerate(cases.items()):
        for inner, shard in (((4, 5), (16, 20)), ((2, 2, 8), (8, 4, 32))):
            data = sample(shard, "<u2", 300 + k)
            data[: shard[0] // 2] = 0  # all-fill inner chunks are stored as empty entries
            path = str(tmp / f"shard-{name}-{len(shard)}")
            with quiet():
                z = zarr.create_array(path, shape=shard, chunks=inner, shards=shard,
                                      dtype="<u2", zarr_format=3, fill_value=0,
                                      serializer=ShardingCodec(
                                          chunk_shape=inner,
                                          codecs=[BytesCodec(), ZstdCodec(level=1)], **kw))
                z[...] = data
            blob = zarr_chunk(path, 3)
            n_inner = int(np.prod(shard) // np.prod(inner))
            crc = "nocrc" not in name
            big = "big" in name
            nbytes = 16 * n_inner + 4 * crc
            index = blob[-nbytes:] if kw["index_location"] == "end" else blob[:nbytes]
            flags = big | crc << 1
            # n_inner given, the shard length as a raw int64
            s.add("shard", f"{name}-{len(shard)}d-given",
                  struct.pack("<BHQ", flags | 4 | 2 << 3, n_inner, len(blob)) + index)
            # n_inner from the index length, shard length = index + the rest
            s.add("shard", f"{name}-{len(shard)}d-derived",
                  struct.pack("<BHQ", flags, 1, len(blob) - 16 * n_inner) + index)


# ---------------------------------------------------------------------------------------
# grid
# ---------------------------------------------------------------------------------------


def grid_dim(kind: int, shape: int, chunk: int, start: int, stop: int) -> bytes:
    fmt = {0: "<H", 1: "<I", 2: "<Q", 3: "<q"}[kind]
    vals = [shape, chunk if kind == 3 else chunk - 1, start,
            stop if kind == 3 else stop - start]
    return bytes([kind]) + b"".join(struct.pack(fmt, v) for v in vals)


def grid_seeds(s: Seeds) -> None:
    def add(name: str, kf: int, dims: list[tuple[int, int, int, int, int]], cap: int = 64,
            raw: list[int] | None = None, extra: bytes = b"") -> None:
        body = bytes([len(dims), kf]) + extra + b"".join(grid_dim(*d) for d in dims)
        body += bytes([cap]) + b"".join(struct.pack("<q", v) for v in (raw or [0] * len(dims)))
        s.add("grid", name, body)

    add("ome-5d-tile", 1, [(0, 1, 1, 0, 1), (0, 3, 1, 1, 2), (0, 20, 1, 5, 6),
                           (0, 4000, 256, 100, 612), (0, 4000, 256, 900, 1412)])
    add("v2-dot-2d", 0, [(0, 1000, 100, 0, 1000), (0, 777, 64, 13, 700)], cap=12)
    add("v3-slash-3d", 3, [(0, 50, 7, 3, 49), (0, 60, 60, 0, 60), (0, 9, 2, 8, 9)])
    add("zero-dims", 1, [])
    add("empty-selection", 0, [(0, 100, 10, 5, 5), (0, 100, 10, 0, 100)])
    add("huge-2d", 1, [(2, 2**62, 2**31, 2**62 - 5, 2**62), (1, 2**32 - 1, 2**20, 0, 3)])
    add("last-chunk-overflow", 0, [(2, 2**63 - 2, 2**62 + 1, 2**63 - 3, 2**63 - 2)])
    add("invalid-raw", 0, [(3, -1, 0, 5, 2), (3, 10, 3, 0, 10)])
    add("raw-keys", 3, [(0, 10, 3, 0, 10)], cap=5, raw=[-7])
    s.add("grid", "bad-separator", bytes([1, 4, ord("\\")]) + grid_dim(0, 10, 3, 0, 10)
          + bytes([64]) + struct.pack("<q", 2))


# ---------------------------------------------------------------------------------------
# render
# ---------------------------------------------------------------------------------------

RENDER_DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8"]
PERMS = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]


def render_seeds(s: Seeds) -> None:
    def chan(kind: str, a: float, b: float, color: tuple[int, int, int], gamma: int = 0,
             inverted: int = 0) -> bytes:
        mode = {"i16": 0, "i32": 1, "f64": 2}[kind] | inverted << 2 | gamma << 3
        win = (struct.pack("<hh", int(a), int(b)) if kind == "i16"
               else struct.pack("<ii", int(a * 16), int(b * 16)) if kind == "i32"
               else struct.pack("<dd", a, b))
        g = bytes([64]) if gamma == 1 else struct.pack("<d", 0.5) if gamma == 2 else b""
        return bytes([mode]) + win + bytes(color) + g

    def add(name: str, dtype: str, h: int, w: int, chans: list[bytes], inl=(0, 0, 0, 0),
            outl=(3, 0, 0, 0), pool: int = 0, data: np.ndarray | None = None) -> None:
        nc = len(chans)
        hdr = bytes([RENDER_DTYPES.index(dtype), nc, h]) + struct.pack("<H", w)
        hdr += bytes(inl) + bytes(outl) + bytes([pool]) + b"".join(chans)
        if data is None:
            data = sample((max(nc, 1), h, w), dtype, 400 + len(name))
        s.add("render", name, hdr + data.tobytes()[: 4096 - len(hdr)])

    rgb = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    add("u16-planar-3c", "u2", 6, 64, [chan("i16", 0, 4095, c) for c in rgb])
    add("u8-interleaved-3c", "u1", 6, 100, [chan("i16", 0, 255, c) for c in rgb],
        inl=(3, 0, 0, 0))
    add("i16-inverted-gamma", "i2", 5, 40, [chan("i16", -300, 900, (255, 255, 255), 1, 1),
                                             chan("i16", 50, 50, (0, 128, 255))])
    add("f32-nan", "f4", 4, 33, [chan("f64", -0.5, 20.25, (255, 200, 0), 1)],
        data=np.where(np.arange(4 * 33) % 7 == 0, np.nan, sample((4 * 33,), "f4", 7)).astype("f4"))
    add("f16", "f2", 3, 70, [chan("f64", 0, 30, (255, 0, 255)), chan("f64", 5, 1, (0, 255, 0))])
    add("u32-wide-scan", "u4", 6, 299, [bytes([3, 0, 32]) + bytes([255, 255, 255])],
        pool=2)
    add("i32", "i4", 6, 257, [chan("i32", -1000, 5000, (10, 20, 30)),
                              chan("i32", 0, 100, (255, 255, 255), 0, 1)], pool=1)
    add("u64-i64", "u8", 2, 20, [chan("f64", 0, 2.0**40, (1, 2, 3), 2)])
    add("i64", "i8", 2, 20, [chan("f64", -5, 5, (255, 0, 0))])
    add("f64-4c", "f8", 2, 9, [chan("f64", 0, 1 + c, rgb[c % 3]) for c in range(4)])
    add("no-channels", "u1", 3, 5, [])
    add("rgba-planar-out-flipped", "u2", 4, 50, [chan("i16", 100, 3000, c) for c in rgb],
        inl=(0, 0b110, 0b010101, 0), outl=(4, 0b011, 0b000101, 0))
    add("zero-stride-out", "u1", 2, 3, [chan("i16", 0, 255, (255, 255, 255))],
        outl=(3, 0, 0, 0b010))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "seeds")
    args = ap.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    s = Seeds(args.out)
    codec_seeds(s)
    with tempfile.TemporaryDirectory() as t:
        pipeline_seeds(s, Path(t))
        shard_seeds(s, Path(t))
    grid_seeds(s)
    render_seeds(s)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    for target, n in sorted(s.count.items()):
        print(f"{target:10s} {n:4d} seeds")
    print(f"total {total} bytes in {args.out}")


if __name__ == "__main__":
    main()
