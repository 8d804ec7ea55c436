"""A PNG encoder for ``ngffcore render``: 8-bit RGBA (colour type 6) with the standard
library's zlib, so pictures need no imaging package.

The file is the signature, ``IHDR``, ``IDAT`` chunks and ``IEND``, each chunk with its CRC-32
(``zlib.crc32`` is the CRC the PNG specification defines). Each row gets the filter (None,
Sub, Up, Average or Paeth) whose output has the smallest sum of absolute values read as
signed bytes — the heuristic the PNG specification recommends and libpng uses — computed
with numpy for a strip of rows at a time, so memory stays a few times one strip (about
1 MiB of pixels) whatever the picture's size.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from ngffcore.errors import ArgumentError

__all__ = ["encode_png"]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: bytes per pixel (RGBA, 8 bits each): the distance to the "left" byte of the filters
BPP = 4
#: the largest width or height PNG allows (2**31 - 1)
MAX_SIDE = 2**31 - 1
#: bytes of pixels filtered at once (whole rows, at least one): bounds the temporaries,
#: which are a few int16 copies of the strip
STRIP_BYTES = 1 << 20
#: the most bytes of compressed data in one IDAT chunk (a chunk's length field is 31 bits;
#: smaller chunks also let a streaming decoder start early)
IDAT_BYTES = 1 << 20
#: zlib level: 6 is zlib's own default, most of level 9's size at a fraction of its time
ZLIB_LEVEL = 6


def _chunk(kind: bytes, data: bytes) -> bytes:
    # the CRC covers the chunk type and its data, not the length
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The Paeth predictor of left ``a``, up ``b`` and up-left ``c`` (int16 arrays), with
    the specification's tie order: a, then b, then c."""
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _filtered(strip: np.ndarray, above: np.ndarray) -> bytes:
    """The filtered scanlines of ``strip`` (rows × row bytes, uint8), each preceded by its
    filter type byte; ``above`` is the row before the strip (zeros before the first)."""
    x = strip.astype(np.int16)
    up = np.concatenate([above[np.newaxis].astype(np.int16), x[:-1]])
    left = np.zeros_like(x)
    left[:, BPP:] = x[:, :-BPP]
    upleft = np.zeros_like(x)
    upleft[:, BPP:] = up[:, :-BPP]
    predictions = (np.zeros_like(x), left, up, (left + up) // 2, _paeth(left, up, upleft))
    # every candidate is the residue modulo 256 that the decoder adds back
    candidates = np.stack([(x - p) & 0xFF for p in predictions]).astype(np.uint8)
    cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)
    best = cost.argmin(axis=0)  # ties go to the simpler filter (lower type)
    rows = np.arange(len(strip))
    out = np.empty((len(strip), strip.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = best
    out[:, 1:] = candidates[best, rows]
    return out.tobytes()


def encode_png(rgba: np.ndarray) -> bytes:
    """The PNG file of ``rgba``, an ``(height, width, 4)`` uint8 array (any strides), as
    8-bit non-interlaced RGBA. :class:`ngffcore.ArgumentError` for anything else, and for
    an empty picture (PNG has no 0-pixel images)."""
    if not isinstance(rgba, np.ndarray):
        raise ArgumentError(f"encode_png needs a numpy array, not {type(rgba).__name__}")
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ArgumentError(f"encode_png needs (height, width, 4) uint8 RGBA, not "
                            f"{rgba.shape} {rgba.dtype}")
    height, width = rgba.shape[:2]
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
        raise ArgumentError(f"a PNG is 1 to {MAX_SIDE} pixels wide and high, not "
                            f"{width}×{height}")
    rows = rgba.reshape(height, width * BPP)  # copies only a non-contiguous view
    compressor = zlib.compressobj(ZLIB_LEVEL)
    pieces = []
    above = np.zeros(width * BPP, dtype=np.uint8)
    step = max(1, STRIP_BYTES // (width * BPP))
    for start in range(0, height, step):
        strip = rows[start:start + step]
        pieces.append(compressor.compress(_filtered(strip, above)))
        above = strip[-1]
    pieces.append(compressor.flush())
    data = b"".join(pieces)
    # bit depth 8, colour type 6 (RGBA), compression 0, filter method 0, no interlace
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    idat = [_chunk(b"IDAT", data[i:i + IDAT_BYTES])
            for i in range(0, len(data), IDAT_BYTES)]
    return b"".join([SIGNATURE, _chunk(b"IHDR", header), *idat, _chunk(b"IEND", b"")])
