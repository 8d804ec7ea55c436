"""Regenerate the golden arrays in this directory.

Every chunk is encoded here with numcodecs (and, for one case, python-zstandard) directly,
and every ``.zarray`` / ``zarr.json`` is written by hand, so the files do not depend on how
zarr-python lays out arrays. When zarr-python is importable the script reads every case back
with it and checks the result against the ``expected.npy`` it wrote.

Usage (from the repository root)::

    python tests/data/golden/make_golden.py

The golden files are meant to stay fixed: regenerate them only on purpose and record the
versions used in README.md.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
from pathlib import Path
from typing import Any, Callable

import numcodecs
import numpy as np

HERE = Path(__file__).resolve().parent

SHAPE = (10, 12)
CHUNKS = (4, 8)  # 3 x 2 chunks; the last row/column of chunks are edge chunks
MISSING = (1, 1)  # this chunk is never written: it must read as the fill value


def reference(dtype: str) -> np.ndarray:
    """Half ramp (compressible), half pseudo-random (not), with a few special values."""
    dt = np.dtype(dtype)
    n = math.prod(SHAPE)
    rng = np.random.default_rng(1234)
    native = dt.newbyteorder("=")
    if native.kind == "f":
        vals = np.concatenate([np.arange(n // 2) * 0.5, rng.standard_normal(n - n // 2) * 100]).astype(native)
        vals[3] = -0.0
        vals[7] = np.inf
        vals[n - 2] = np.array([0x7FF8000000000001], "u8").view("f8")[0] if native.itemsize == 8 else np.nan
    else:
        info = np.iinfo(native)
        vals = np.concatenate(
            [np.arange(n // 2) % 100, rng.integers(info.min, info.max, n - n // 2, endpoint=True)]
        ).astype(native)
    return vals.reshape(SHAPE).astype(dt)


def chunk_grid() -> list[tuple[int, int]]:
    return [(i, j) for i in range(math.ceil(SHAPE[0] / CHUNKS[0])) for j in range(math.ceil(SHAPE[1] / CHUNKS[1]))]


def chunk_block(data: np.ndarray, i: int, j: int, fill: Any) -> np.ndarray:
    """Full-size chunk (i, j); the part outside the array is the fill value."""
    block = np.full(CHUNKS, fill if fill is not None else 0, dtype=data.dtype)
    part = data[i * CHUNKS[0] : (i + 1) * CHUNKS[0], j * CHUNKS[1] : (j + 1) * CHUNKS[1]]
    block[: part.shape[0], : part.shape[1]] = part
    return block


def expected_array(data: np.ndarray, fill: Any) -> np.ndarray:
    exp = data.copy()
    i, j = MISSING
    exp[i * CHUNKS[0] : (i + 1) * CHUNKS[0], j * CHUNKS[1] : (j + 1) * CHUNKS[1]] = fill if fill is not None else 0
    return exp


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def fresh_dir(name: str) -> Path:
    d = HERE / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    return d


# --------------------------------------------------------------------------------------
# Zarr v2
# --------------------------------------------------------------------------------------


def make_v2(name: str, dtype: str, compressor: Any, filters: list | None = None, order: str = "C",
            fill: Any = 0) -> None:
    d = fresh_dir(name)
    data = reference(dtype)
    fill_num = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}.get(fill, fill)
    for i, j in chunk_grid():
        if (i, j) == MISSING:
            continue
        block = chunk_block(data, i, j, fill_num)
        buf = np.asarray(block, order=order).tobytes(order=order)
        arr = np.frombuffer(buf, dtype=data.dtype)
        encoded: Any = arr
        for f in filters or []:
            encoded = f.encode(encoded)
        encoded = compressor.encode(encoded) if compressor is not None else encoded
        (d / f"{i}.{j}").write_bytes(bytes(memoryview(np.ascontiguousarray(encoded)).cast("B"))
                                     if isinstance(encoded, np.ndarray) else bytes(encoded))
    write_json(
        d / ".zarray",
        {
            "zarr_format": 2,
            "shape": list(SHAPE),
            "chunks": list(CHUNKS),
            "dtype": data.dtype.str,
            "fill_value": fill,
            "order": order,
            "filters": [f.get_config() for f in filters] if filters else None,
            "compressor": compressor.get_config() if compressor is not None else None,
            "dimension_separator": ".",
        },
    )
    np.save(d / "expected.npy", expected_array(data, fill_num))


# --------------------------------------------------------------------------------------
# Zarr v3
# --------------------------------------------------------------------------------------


def v3_meta(dtype: str, codecs: list, chunk_shape: tuple[int, ...], fill: Any = 0) -> dict:
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(SHAPE),
        "data_type": dtype,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunk_shape)}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill,
        "codecs": codecs,
        "attributes": {},
    }


def make_v3(name: str, dtype: str, codecs_json: list, encode: Callable[[np.ndarray], bytes], fill: Any = 0) -> None:
    d = fresh_dir(name)
    data = reference(dtype)
    for i, j in chunk_grid():
        if (i, j) == MISSING:
            continue
        p = d / "c" / str(i) / str(j)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(encode(chunk_block(data, i, j, fill)))
    write_json(d / "zarr.json", v3_meta(dtype, codecs_json, CHUNKS, fill))
    np.save(d / "expected.npy", expected_array(data, fill))


BYTES_LE = {"name": "bytes", "configuration": {"endian": "little"}}
BYTES_BE = {"name": "bytes", "configuration": {"endian": "big"}}
CRC32C = {"name": "crc32c"}


def _b(x: Any) -> bytes:
    return bytes(memoryview(np.ascontiguousarray(x)).cast("B")) if isinstance(x, np.ndarray) else bytes(x)


class ReproducibleGZip(numcodecs.GZip):
    """numcodecs' GZip with the header's MTIME zeroed, so regenerating gives the same bytes
    (the gzip header carries no header CRC here, so the frame stays valid)."""

    def encode(self, buf: Any) -> bytes:
        out = bytearray(_b(super().encode(buf)))
        assert out[:3] == b"\x1f\x8b\x08" and not out[3] & 0x02  # deflate, no FHCRC
        out[4:8] = b"\x00\x00\x00\x00"
        return bytes(out)


def crc(b: bytes) -> bytes:
    return _b(numcodecs.CRC32C().encode(b))  # appends the little-endian CRC-32C


SHARD = (10, 12)  # one shard per (padded) 10 x 12 region -> a single shard covers the array
INNER = (5, 4)  # 2 x 3 inner chunks
EMPTY_INNER = (1, 2)  # omitted from the shard (index entry 2**64-1, 2**64-1)


def make_v3_shard(name: str, index_location: str) -> None:
    """One shard file: inner chunks bytes(LE) + zstd, index of (offset, nbytes) u64 LE + crc32c."""
    d = fresh_dir(name)
    dtype = "uint16"
    data = reference(dtype)
    exp = data.copy()
    ei, ej = EMPTY_INNER
    exp[ei * INNER[0] : (ei + 1) * INNER[0], ej * INNER[1] : (ej + 1) * INNER[1]] = 0
    zstd = numcodecs.Zstd(level=3)
    n_inner = (SHARD[0] // INNER[0], SHARD[1] // INNER[1])
    index_size = n_inner[0] * n_inner[1] * 16 + 4
    body = b""
    entries: list[int] = []
    base = index_size if index_location == "start" else 0
    for i in range(n_inner[0]):
        for j in range(n_inner[1]):
            if (i, j) == EMPTY_INNER:
                entries += [2**64 - 1, 2**64 - 1]
                continue
            block = np.ascontiguousarray(exp[i * INNER[0] : (i + 1) * INNER[0], j * INNER[1] : (j + 1) * INNER[1]])
            enc = _b(zstd.encode(block.astype("<u2").tobytes()))
            entries += [base + len(body), len(enc)]
            body += enc
    index = crc(struct.pack(f"<{len(entries)}Q", *entries))
    assert len(index) == index_size
    shard = index + body if index_location == "start" else body + index
    p = d / "c" / "0" / "0"
    p.parent.mkdir(parents=True)
    p.write_bytes(shard)
    codecs = [
        {
            "name": "sharding_indexed",
            "configuration": {
                "chunk_shape": list(INNER),
                "codecs": [BYTES_LE, {"name": "zstd", "configuration": {"level": 3, "checksum": False}}],
                "index_codecs": [BYTES_LE, CRC32C],
                "index_location": index_location,
            },
        }
    ]
    write_json(d / "zarr.json", v3_meta(dtype, codecs, SHARD))
    np.save(d / "expected.npy", exp)


def zstd_no_content_size(raw: bytes) -> bytes:
    import zstandard

    frame = zstandard.ZstdCompressor(level=3, write_content_size=False).compress(raw)
    assert zstandard.get_frame_parameters(frame).content_size == zstandard.CONTENTSIZE_UNKNOWN
    return frame


# --------------------------------------------------------------------------------------


def main() -> None:
    for p in HERE.iterdir():
        if p.is_dir():
            shutil.rmtree(p)

    Blosc = numcodecs.Blosc
    shuffles = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}
    for cname in ["lz4", "lz4hc", "blosclz", "zstd", "zlib"]:
        for sname, shuffle in shuffles.items():
            make_v2(f"v2_blosc_{cname}_{sname}", "<u2", Blosc(cname=cname, clevel=5, shuffle=shuffle))
    make_v2("v2_blosc_zstd_typesize1", "<i4", Blosc(cname="zstd", clevel=5, shuffle=Blosc.SHUFFLE, typesize=1))
    make_v2("v2_blosc_lz4_bigendian_f8", ">f8", Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE), fill="NaN")
    make_v2("v2_zstd", "<i4", numcodecs.Zstd(level=3))
    make_v2("v2_zstd_checksum", "<i4", numcodecs.Zstd(level=3, checksum=True))
    make_v2("v2_zlib", "<i4", numcodecs.Zlib(level=6))
    make_v2("v2_gzip", "<i4", ReproducibleGZip(level=6))
    make_v2("v2_lz4", "<i4", numcodecs.LZ4(acceleration=1))
    make_v2("v2_bz2", "<i4", numcodecs.BZ2(level=9))
    make_v2("v2_lzma", "<i4", numcodecs.LZMA())
    make_v2("v2_none_F_bigendian", ">u4", None, order="F", fill=7)
    make_v2("v2_delta_blosc", "<i4", Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE),
            filters=[numcodecs.Delta(dtype="<i4")])
    make_v2("v2_delta_zlib_F", ">i2", numcodecs.Zlib(level=1), filters=[numcodecs.Delta(dtype=">i2")], order="F")

    zstd3 = numcodecs.Zstd(level=3)
    make_v3("v3_crc32c", "int32", [BYTES_LE, CRC32C], lambda b: crc(b.astype("<i4").tobytes()))
    make_v3(
        "v3_zstd_crc32c_bigendian",
        "uint16",
        [BYTES_BE, {"name": "zstd", "configuration": {"level": 3, "checksum": False}}, CRC32C],
        lambda b: crc(_b(zstd3.encode(b.astype(">u2").tobytes()))),
    )
    make_v3(
        "v3_gzip",
        "int32",
        [BYTES_LE, {"name": "gzip", "configuration": {"level": 6}}],
        lambda b: ReproducibleGZip(level=6).encode(b.astype("<i4").tobytes()),
    )
    make_v3(
        "v3_blosc_bitshuffle",
        "float64",
        [BYTES_LE, {"name": "blosc", "configuration": {"cname": "zstd", "clevel": 5, "shuffle": "bitshuffle",
                                                       "typesize": 8, "blocksize": 0}}],
        lambda b: _b(Blosc(cname="zstd", clevel=5, shuffle=Blosc.BITSHUFFLE).encode(b.astype("<f8"))),
    )
    make_v3(
        "v3_transpose_bytes_be",
        "int32",
        [{"name": "transpose", "configuration": {"order": [1, 0]}}, BYTES_BE],
        lambda b: np.ascontiguousarray(b.T).astype(">i4").tobytes(),
    )
    make_v3(
        "v3_zstd_no_content_size",
        "int32",
        [BYTES_LE, {"name": "zstd", "configuration": {"level": 3, "checksum": False}}],
        lambda b: zstd_no_content_size(b.astype("<i4").tobytes()),
    )
    make_v3_shard("v3_shard_index_end", "end")
    make_v3_shard("v3_shard_index_start", "start")

    verify_with_zarr()


def verify_with_zarr() -> None:
    try:
        import zarr
    except ImportError:  # pragma: no cover
        print("zarr not installed: golden files not cross-checked")
        return
    for d in sorted(p for p in HERE.iterdir() if p.is_dir()):
        expected = np.load(d / "expected.npy")
        got = np.asarray(zarr.open_array(str(d), mode="r")[...])
        assert got.dtype == expected.dtype, (d.name, got.dtype, expected.dtype)
        assert got.tobytes() == expected.tobytes(), d.name
        print(f"ok {d.name}")


if __name__ == "__main__":
    main()
