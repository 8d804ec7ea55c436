"""Replays libFuzzer inputs (fuzz/fuzz_<target>.c) through the Python API of ngffcore._core.

Each ``parse_*``/``replay_*`` pair mirrors the input format documented at the top of the
harness (the byte reader is fuzz/fuzz_common.h's: one byte at a time, little-endian, zeros
once the input is used up), so a crash input found by a fuzzer replays here as a normal test.
A replay must end in a result that agrees with a reference computed here, or in a clean
``ngffcore.NgffError``/``ValueError``; a crash of the interpreter is the failure it guards
against. Codec targets are replayed as one-codec pipelines (decode_batch), with the sizes the
harness derives (the stream's recorded size, or a probe) approximated from the same bytes.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
import zlib
from collections.abc import Callable
from typing import Any

import numcodecs
import numpy as np
import zstandard

import ngffcore
from ngffcore import _core

CLEAN_ERRORS = (ngffcore.NgffError, ValueError)
CODEC_TARGETS = {
    "blosc": _core.CODEC_BLOSC,
    "zstd": _core.CODEC_ZSTD,
    "zlib": _core.CODEC_ZLIB,
    "lz4": _core.CODEC_LZ4,
}
CAP = 1 << 20  # the codec harnesses' decoded-size cap


class Reader:
    """fuzz_common.h's fz_in."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u8(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def u16(self) -> int:
        lo = self.u8()
        return lo | self.u8() << 8

    def u32(self) -> int:
        lo = self.u16()
        return lo | self.u16() << 16

    def u64(self) -> int:
        lo = self.u32()
        return lo | self.u32() << 32

    def f64(self) -> float:
        return struct.unpack("<d", struct.pack("<Q", self.u64()))[0]

    def rest(self) -> bytes:
        return self.data[self.pos:]


def as_int64(u: int) -> int:
    return u - (1 << 64) if u >= 1 << 63 else u


def fnv_hash(data: bytes) -> int:
    """fuzz_common.h's fz_hash."""
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def nth_perm(n: int, k: int) -> list[int]:
    """fuzz_pipeline.c's nth_perm: the k-th permutation (Lehmer code) of 0..n-1."""
    items = list(range(n))
    fact = 1
    for i in range(n):
        fact *= i + 1
    k %= fact
    perm = []
    for i in range(n):
        fact //= n - i
        j, k = divmod(k, fact)
        perm.append(items.pop(j))
    return perm


def perm_strides(shape: list[int], perm: list[int], itemsize: int) -> tuple[list[int], int]:
    strides = [0] * len(shape)
    s = itemsize
    for axis in reversed(perm):
        strides[axis] = s
        s *= shape[axis]
    return strides, s


def crc32c_ref(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _decode_1d(codec: int, data: bytes, expected: int, box: tuple[int, int] | None = None,
               fill: int = 0xA5) -> tuple[bytes | None, Exception | None]:
    """``data`` decoded by one codec into ``expected`` bytes (optionally only a box), into
    an output filled with ``fill`` beforehand."""
    if expected <= 0:
        return None, None
    pipeline = _core.Pipeline(itemsize=1, chunk_shape=(expected,), chunk_strides=(1,),
                              codecs=(codec,))
    start, stop = box if box else (0, expected)
    out = np.full(stop - start, fill, np.uint8)
    boxes = np.array([[start, stop - start, 0]], np.int64)
    try:
        _core.decode_batch(pipeline, out, boxes, [data], ["fuzz"])
    except CLEAN_ERRORS as e:
        return None, e
    return out.tobytes(), None


def _declared_size(codec: int, data: bytes) -> int | None:
    if codec == _core.CODEC_BLOSC and len(data) >= 16:
        return int.from_bytes(data[4:8], "little", signed=True)
    if codec == _core.CODEC_LZ4 and len(data) >= 4:
        return int.from_bytes(data[:4], "little")
    if codec == _core.CODEC_ZSTD and len(data) >= 5 and data[:4] == b"\x28\xb5\x2f\xfd":
        try:
            size = zstandard.frame_content_size(data)
        except Exception:
            return None
        return size if size >= 0 else None
    return None


def replay_codec(target: str, data: bytes) -> None:
    codec = CODEC_TARGETS[target]
    declared = _declared_size(codec, data)
    sizes = []
    if declared is not None and declared >= 0:
        sizes.append(min(declared, CAP))
    else:
        if codec == _core.CODEC_BLOSC:
            sizes.append(len(data) % 64)
        _, err = _decode_1d(codec, data, CAP)  # the probe
        m = re.search(r"decoded (\d+) bytes", str(err)) if err else None
        if m and int(m.group(1)) < CAP:
            n = int(m.group(1))
            sizes += [n, n - 1]
    if declared == 0:
        # a 0-byte decode only happens inside a chain: [zstd, this codec] (encode order)
        pipeline = _core.Pipeline(itemsize=1, chunk_shape=(1,), chunk_strides=(1,),
                                  codecs=(_core.CODEC_ZSTD, codec))
        try:
            _core.decode_batch(pipeline, np.zeros(1, np.uint8), np.array([[0, 1, 0]], np.int64),
                               [data], ["fuzz"])
            raise AssertionError("an empty inner frame decoded to one byte")
        except ngffcore.DecodeError:
            pass
    for expected in sizes:
        got, _ = _decode_1d(codec, data, expected)
        if got is not None:
            _check_codec_result(codec, data, got)
            # every byte written: over a different fill the same bytes come back
            again, err = _decode_1d(codec, data, expected, fill=0x5A)
            assert again == got, f"a successful decode left output bytes unwritten ({err})"
        if codec == _core.CODEC_BLOSC and expected > 0:
            h = fnv_hash(data)
            start = h % expected
            stop = start + 1 + (h >> 24) % (expected - start)
            part, _ = _decode_1d(codec, data, expected, (start, stop))
            if part is not None and got is not None:
                assert part == got[start:stop], "blosc range differs from the full decode"
    if codec == _core.CODEC_BLOSC:
        # the worker still decodes a frame as numcodecs writes it, a range first (with one
        # thread, the same worker: no decoder state may survive the input)
        v = (np.arange(512, dtype="<u2") * 3 % 1000).astype("<u2")
        frame = bytes(numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE,
                                      blocksize=256).encode(v))
        part, err = _decode_1d(codec, frame, v.nbytes, (300, 700))
        assert part == v.tobytes()[300:700], f"a blosc1 range after this input: {err}"
        whole, err = _decode_1d(codec, frame, v.nbytes)
        assert whole == v.tobytes(), f"a blosc1 frame after this input: {err}"


def _check_codec_result(codec: int, data: bytes, got: bytes) -> None:
    """Independent decoders where they are safe on hostile bytes; compared only when they
    accept the stream (the zstd inside c-blosc2 is laxer than the zstandard package's: it
    decodes RLE blocks larger than the format's 128 KiB block limit)."""
    try:
        _check_codec_result_strict(codec, data, got)
    except (zlib.error, zstandard.ZstdError):
        pass


def _check_codec_result_strict(codec: int, data: bytes, got: bytes) -> None:
    if codec == _core.CODEC_ZLIB:
        d = zlib.decompressobj(15 + 32)
        want = d.decompress(data, len(got) + 1)
        while d.eof and d.unused_data and len(want) < len(got):  # gzip members
            rest = d.unused_data
            d = zlib.decompressobj(15 + 32)
            want += d.decompress(rest, len(got) + 1 - len(want))
        assert want == got, "zlib result differs from Python's zlib"
    elif codec == _core.CODEC_ZSTD:
        assert _zstd_all_frames(data, len(got) + 1) == got, "zstd result differs from zstandard"


def _zstd_all_frames(data: bytes, limit: int) -> bytes:
    """Every frame of ``data`` decoded one after the other, as ZSTD_decompress does (the
    package's ``decompress`` stops after the first frame); at most about ``limit`` bytes."""
    out = b""
    rest = data
    while rest and len(out) <= limit:
        d = zstandard.ZstdDecompressor().decompressobj()
        out += d.decompress(rest)
        if not d.eof:
            raise zstandard.ZstdError("truncated frame")
        rest = d.unused_data
    return out


def replay_crc32c(data: bytes) -> None:
    assert _core.crc32c(data) == crc32c_ref(data)
    if len(data) > 4:
        got, err = _decode_1d(_core.CODEC_CRC32C, data, len(data) - 4)
        ok = int.from_bytes(data[-4:], "little") == crc32c_ref(data[:-4])
        assert (got is not None) == ok, err
        if ok:
            assert got == data[:-4]


# ---------------------------------------------------------------------------------------
# pipeline
# ---------------------------------------------------------------------------------------


def parse_pipeline(data: bytes) -> dict[str, Any] | None:
    r = Reader(data)
    ndim = r.u8() % 5
    itemsize = 1 + r.u8() % 16
    byteswap = r.u8() % 3
    if byteswap and itemsize % byteswap:
        byteswap = 0
    b = r.u8()
    delta, delta_swap = b % 4, (b >> 2) & 1
    if itemsize not in (1, 2, 4, 8):
        delta = 0
    if delta == _core.DELTA_FLOAT and itemsize not in (4, 8):
        delta = _core.DELTA_INT
    codecs = [1 + r.u8() % 5 for _ in range(r.u8() % 4)]
    chunk = [1 + r.u8() % 64 for _ in range(ndim)]
    perm = nth_perm(ndim, r.u8())
    fill = bytes(r.u8() for _ in range(itemsize))
    full = r.u8() & 1
    inner, bshape = [], []
    for d in range(ndim):
        i = r.u8() % chunk[d]
        s = 1 + r.u8() % (chunk[d] - i)
        inner.append(0 if full else i)
        bshape.append(chunk[d] if full else s)
    at, oshape = [], []
    for d in range(ndim):
        pad = r.u8() % 4
        at.append(r.u8() % (pad + 1))
        oshape.append(bshape[d] + pad)
    operm = nth_perm(ndim, r.u8())
    flips = r.u8()
    source = r.u8() % 4
    if itemsize * int(np.prod(chunk, dtype=np.int64)) > 64 * 1024:
        return None
    return dict(ndim=ndim, itemsize=itemsize, byteswap=byteswap, delta=delta,
                delta_swap=delta_swap, codecs=codecs, chunk=chunk, perm=perm, fill=fill,
                inner=inner, bshape=bshape, at=at, oshape=oshape, operm=operm, flips=flips,
                source=source, payload=r.rest())


def _canary(i: int) -> int:
    return (0x5A + i * 31) & 0xFF


def replay_pipeline(data: bytes) -> None:
    c = parse_pipeline(data)
    if c is None:
        return
    ndim, itemsize = c["ndim"], c["itemsize"]
    chunk_strides, _ = perm_strides(c["chunk"], c["perm"], itemsize)
    pipeline = _core.Pipeline(itemsize=itemsize, chunk_shape=c["chunk"],
                              chunk_strides=chunk_strides, codecs=c["codecs"],
                              byteswap=c["byteswap"], delta=c["delta"],
                              delta_swap=bool(c["delta_swap"]), fill_value=c["fill"])
    ostrides, out_bytes = perm_strides(c["oshape"], c["operm"], itemsize)
    buf = bytearray(_canary(i) for i in range(out_bytes))
    origin = 0
    for d in range(ndim):
        if c["flips"] >> d & 1:
            origin += (c["oshape"][d] - 1) * ostrides[d]
            ostrides[d] = -ostrides[d]
    out = np.ndarray(tuple(c["oshape"]), dtype=np.dtype(f"V{itemsize}"), buffer=buf,
                     offset=origin, strides=tuple(ostrides))
    boxes = np.array([c["inner"] + c["bshape"] + c["at"]], np.int64).reshape(1, 3 * ndim)
    tmp = None
    try:
        if c["source"] == 0:
            src: Any = None
        elif c["source"] == 2:
            fd, tmp = tempfile.mkstemp(prefix="ngff-fuzz-")
            with os.fdopen(fd, "wb") as f:
                f.write(c["payload"])
            src = (os.fsencode(tmp), 0, -1)
        else:
            src = c["payload"]
        try:
            _core.decode_batch(pipeline, out, boxes, [src], ["fuzz"])
            ok = True
        except ngffcore.DecodeError:
            ok = False
    finally:
        if tmp:
            os.unlink(tmp)
    ref = None if c["source"] == 0 else _pipeline_reference(c, chunk_strides)
    if c["source"] != 0 and not (c["codecs"] and c["codecs"][0] == _core.CODEC_BLOSC):
        assert ok == (ref is not None), f"decode {'succeeds' if ok else 'fails'}, reference not"
    elif c["source"] != 0:
        # a blosc chunk may decode in part where the whole frame does not, never the reverse
        assert ok or ref is None, "the whole frame decodes, the read of its box fails"
    # bytes outside the box are never written; inside: the fill value or the reference
    for idx in np.ndindex(*c["oshape"]):
        pos = origin + sum(i * s for i, s in zip(idx, ostrides))
        inside = all(a <= i < a + s for i, a, s in zip(idx, c["at"], c["bshape"]))
        elem = bytes(buf[pos:pos + itemsize])
        if not inside:
            assert elem == bytes(_canary(pos + k) for k in range(itemsize)), idx
        elif ok and c["source"] == 0:
            assert elem == c["fill"], idx
        elif ok and ref is not None:
            at = sum((i + n - a) * st for i, n, a, st in zip(idx, c["inner"], c["at"],
                                                             chunk_strides))
            want = ref[at:at + itemsize]
            if c["byteswap"]:
                part = itemsize // c["byteswap"]
                want = b"".join(want[k:k + part][::-1] for k in range(0, itemsize, part))
            assert elem == want, f"element {idx} differs from the whole-chunk reference"


def _pipeline_reference(c: dict[str, Any], chunk_strides: list[int]) -> bytes | None:
    """The decoded chunk as stored (delta undone): the codec chain decoded whole, as a 1-D
    byte chunk straight into a contiguous output, then numpy's cumulative sum."""
    itemsize = c["itemsize"]
    nbytes = itemsize * int(np.prod(c["chunk"], dtype=np.int64))
    pipeline = _core.Pipeline(itemsize=1, chunk_shape=(nbytes,), chunk_strides=(1,),
                              codecs=c["codecs"])
    raw = np.zeros(nbytes, np.uint8)
    try:
        _core.decode_batch(pipeline, raw, np.array([[0, nbytes, 0]], np.int64), [c["payload"]],
                           ["reference"])
    except ngffcore.DecodeError:
        return None
    if c["delta"]:
        kind = "f" if c["delta"] == _core.DELTA_FLOAT else "u"
        dt = np.dtype(f"{'>' if c['delta_swap'] else '<'}{kind}{itemsize}")
        with np.errstate(all="ignore"):
            raw = np.cumsum(raw.view(dt), dtype=dt).astype(dt).view(np.uint8)
    return raw.tobytes()


# ---------------------------------------------------------------------------------------
# shard index
# ---------------------------------------------------------------------------------------


def replay_shard(data: bytes) -> None:
    r = Reader(data)
    flags = r.u8()
    big, crc, given, kind = flags & 1, flags >> 1 & 1, flags >> 2 & 1, flags >> 3 & 3
    n16 = r.u16()
    raw_len = r.u64()
    index = r.rest()
    if crc:
        if len(index) >= 4 and int.from_bytes(index[-4:], "little") == crc32c_ref(index[:-4]):
            index = index[:-4]
        elif len(index) >= 4:
            index = index[:-4]
    n_inner = n16 % 4097 if given else max(0, len(index) // 16 + n16 % 3 - 1)
    shard_len = (len(index) + raw_len % (1 << 20) if kind == 0
                 else raw_len % (1 << 16) if kind == 1 else as_int64(raw_len))
    st, offsets, nbytes, bad = _core.shard_index_parse(index, n_inner, big, shard_len)
    order = ">" if big else "<"
    if shard_len < 0:
        assert st == 2  # NGFF_ERR_INVALID_ARGUMENT
        return
    if len(index) != 16 * n_inner:
        assert st == (3 if len(index) < 16 * n_inner else 7) and bad == -1  # TRUNCATED / SHARD
        return
    entries = np.frombuffer(index, dtype=f"{order}u8").reshape(n_inner, 2) if n_inner else []
    for i, (off, length) in enumerate(entries):
        off, length = int(off), int(length)
        if off == length == (1 << 64) - 1:
            assert offsets[i] == nbytes[i] == -1
            continue
        if off >= 1 << 63 or length >= 1 << 63 or off + length > shard_len:
            assert st == 7 and bad == i, (st, bad, i)
            return
        assert (offsets[i], nbytes[i]) == (off, length)
    assert st == 0 and bad == -1


# ---------------------------------------------------------------------------------------
# grid
# ---------------------------------------------------------------------------------------


def _grid_dim(r: Reader) -> tuple[int, int, int, int]:
    kind = r.u8() % 4
    if kind == 0:
        s = r.u16() % 4096
        c = 1 + r.u16() % 1024
        a = r.u16() % (s + 1)
        b = a + r.u16() % (s - a + 1)
    elif kind == 1:
        s = r.u32()
        c = 1 + r.u32()
        a = r.u32() % (s + 1)
        b = a + r.u32() % (s - a + 1)
    elif kind == 2:
        s = r.u64() % (1 << 63)
        c = 1 + r.u64() % ((1 << 63) - 1)
        a = r.u64() % (s + 1)
        b = a + r.u64() % (s - a + 1)
    else:
        s, c, a, b = (as_int64(r.u64()) for _ in range(4))
    return s, c, a, b


def replay_grid(data: bytes) -> None:
    r = Reader(data)
    ndim = r.u8() % 7
    kf = r.u8()
    enc = _core.KEY_DEFAULT if kf & 1 else _core.KEY_V2
    sep = "/" if kf & 2 else "."
    if kf & 4:
        sep = chr(r.u8())
    if kf & 8:
        enc = struct.unpack("b", bytes([r.u8()]))[0]
    dims = [_grid_dim(r) for _ in range(ndim)]
    shape, chunks, start, stop = ([d[k] for d in dims] for k in range(4))
    valid = all(s >= 0 and c > 0 and 0 <= a <= b <= s for s, c, a, b in dims)
    count = 1
    for s, c, a, b in dims if valid else ():
        count *= 0 if b == a else (b - 1) // c - a // c + 1
    if not valid or count >= 1 << 63 or count > 4096:
        if not valid or count >= 1 << 63:
            try:
                _core.plan_chunks(shape, chunks, start, stop)
                raise AssertionError("plan_chunks accepted an invalid grid")
            except ValueError:
                pass
        return
    coords, boxes = _core.plan_chunks(shape, chunks, start, stop)
    assert coords.shape == (count, ndim)
    total = 0
    for i in range(count):
        inner, bs, out = boxes[i, :ndim], boxes[i, ndim:2 * ndim], boxes[i, 2 * ndim:]
        vol = 1
        for d in range(ndim):
            assert 0 <= inner[d] and bs[d] >= 1 and int(inner[d]) + int(bs[d]) <= chunks[d]
            assert int(coords[i, d]) * chunks[d] + int(inner[d]) == start[d] + int(out[d])
            assert int(out[d]) + int(bs[d]) <= stop[d] - start[d]
            vol *= int(bs[d])
        total += vol
    assert total == int(np.prod([b - a for a, b in zip(start, stop)], dtype=object))
    if sep not in "/." or len(sep) != 1 or enc not in (_core.KEY_V2, _core.KEY_DEFAULT):
        return
    keys = _core.chunk_keys(np.ascontiguousarray(coords[:64]), enc, sep)
    for key, row in zip(keys, coords[:64]):
        parts = [str(int(v)) for v in row]
        want = ("c" + "".join(sep + p for p in parts) if enc == _core.KEY_DEFAULT
                else sep.join(parts) or "0")
        assert key == want, (key, want)


# ---------------------------------------------------------------------------------------
# render
# ---------------------------------------------------------------------------------------

_RENDER_DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8"]
_PERMS = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]


def _layout(r: Reader, shape: tuple[int, int, int], item: int) -> tuple[list[int], int, int]:
    perm = _PERMS[r.u8() % 6]
    flips, steps, zero = r.u8(), r.u8(), r.u8()
    step = [1 + (steps >> (2 * d) & 3) % 3 for d in range(3)]
    alloc = [shape[d] * step[d] for d in range(3)]
    strides = [0, 0, 0]
    s = item
    for d in reversed(perm):
        strides[d] = s * step[d]
        s *= alloc[d]
    origin = 0
    for d in range(3):
        if zero >> d & 1:
            strides[d] = 0
        if flips >> d & 1 and shape[d] > 0:
            origin += (shape[d] - 1) * strides[d]
            strides[d] = -strides[d]
    return strides, origin, s


def replay_render(data: bytes) -> None:
    r = Reader(data)
    dtype = np.dtype(_RENDER_DTYPES[r.u8() % 11])
    nc, h, w = r.u8() % 5, r.u8() % 7, r.u16() % 300
    istr, iorg, ibytes = _layout(r, (nc, h, w), dtype.itemsize)
    ostr, oorg, obytes = _layout(r, (h, w, 4), 1)
    r.u8()  # pool choice: the Python API uses ngffcore's pool
    windows, colors, gammas, inverted = [], [], [], []
    for _ in range(nc):
        mode = r.u8()
        if mode & 3 == 0:
            win = [struct.unpack("<h", struct.pack("<H", r.u16()))[0] for _ in range(2)]
        elif mode & 3 == 1:
            win = [struct.unpack("<i", struct.pack("<I", r.u32()))[0] / 16.0 for _ in range(2)]
        elif mode & 3 == 2:
            win = [r.f64(), r.f64()]
        else:
            win = [-float(r.u8() % 3)]
            win.append(float(2 ** (r.u8() % 40)))
        col = [r.f64() if mode & 0x20 else float(r.u8()) for _ in range(3)]
        g = mode >> 3 & 3
        gamma = 0.25 + r.u8() / 64.0 if g == 1 else r.f64() if g == 2 else 1.0
        inv = r.u32() != 0 if mode & 0x40 else bool(mode >> 2 & 1)
        windows.append(win)
        colors.append(col)
        gammas.append(gamma)
        inverted.append(inv)
    payload = r.rest()
    ibuf = bytearray(payload[i % len(payload)] if payload else 0 for i in range(ibytes))
    obuf = bytearray((0xA7 + 13 * i) & 0xFF for i in range(obytes))
    # (an empty image addresses nothing: numpy wants its offset inside the buffer)
    pixels = np.ndarray((nc, h, w), dtype=dtype, buffer=ibuf or bytearray(1),
                        offset=iorg if nc * h * w else 0, strides=tuple(istr))
    out = np.ndarray((h, w, 4), dtype=np.uint8, buffer=obuf or bytearray(1),
                     offset=oorg if h * w else 0, strides=tuple(ostr))
    try:
        with np.errstate(all="ignore"):
            _core.render_rgba(pixels, 0, out, np.array(windows, float).reshape(nc, 2),
                              np.array(colors, float).reshape(nc, 3), inverted, gammas)
    except CLEAN_ERRORS:
        assert obuf == bytearray((0xA7 + 13 * i) & 0xFF for i in range(obytes))
        return
    want = np.zeros((h, w, 3), np.uint64)
    with np.errstate(all="ignore"):
        for c in range(nc):
            x = pixels[c].astype(np.float64)
            s, e = windows[c]
            t = np.clip((x - s) / (e - s), 0.0, 1.0) if e > s else (x > s).astype(np.float64)
            if inverted[c]:
                t = 1.0 - t
            if gammas[c] != 1.0:
                t = np.power(t, gammas[c])
            for k in range(3):
                contrib = np.floor(t * colors[c][k] + 0.5)
                want[..., k] += np.where(np.isnan(x), 0, contrib).astype(np.uint64)
    rgba = np.concatenate([np.minimum(want, 255).astype(np.uint8),
                           np.full((h, w, 1), 255, np.uint8)], axis=2)
    assert np.array_equal(out, rgba)


REPLAYS: dict[str, Callable[[bytes], None]] = {
    **{t: (lambda data, t=t: replay_codec(t, data)) for t in CODEC_TARGETS},
    "crc32c": replay_crc32c,
    "pipeline": replay_pipeline,
    "shard": replay_shard,
    "grid": replay_grid,
    "render": replay_render,
}


def replay(target: str, data: bytes) -> None:
    REPLAYS[target](data)
