"""bz2 and lzma, which the C core does not link: decoded in Python, with a bounded output.

A stage never produces more than the bytes the next stage can use (the chunk's size for the
last one, a compressed-size bound otherwise): a small hostile chunk that declares nothing
about its decoded size must not be able to grow until memory runs out.
"""

from __future__ import annotations

import bz2
import lzma
from dataclasses import dataclass, field, replace
from typing import Any

from ngffcore.errors import MetadataError
from ngffcore.limits import get_max_chunk_bytes

# lzma container formats numcodecs' LZMA accepts (``format`` in its config)
_LZMA_FORMATS = {
    lzma.FORMAT_AUTO: "auto", lzma.FORMAT_XZ: "xz", lzma.FORMAT_ALONE: "alone",
    lzma.FORMAT_RAW: "raw",
}


class StageError(ValueError):
    """A bz2/lzma stream is malformed, truncated or decodes to too many bytes."""


#: liblzma memory a decoder may use beyond the bytes it produces: a dictionary larger than
#: the output is never needed to decode it, but a header may declare one of up to 4 GiB
#: (allocated before any output); 128 MiB covers every preset (9: a 64 MiB dictionary)
LZMA_MEMORY_SLACK = 128 * 2**20


def compressed_bound(n: int) -> int:
    """A size no compressed form of ``n`` bytes exceeds (as the C core's encoded_bound)."""
    return n + n // 2 + 65536


@dataclass(frozen=True)
class PythonStage:
    """One bz2/lzma decode, producing at most ``limit`` bytes (set once the chain is known)."""

    codec: str  # "bz2" or "lzma"
    lzma_format: int = lzma.FORMAT_AUTO
    lzma_filters: tuple[dict[str, Any], ...] | None = field(default=None, compare=False)
    limit: int = -1
    #: encoding only: bz2 compresslevel; lzma preset (None: liblzma's default) and check
    level: int = 1
    preset: int | None = None
    check: int = -1

    def with_limit(self, limit: int) -> PythonStage:
        return replace(self, limit=limit)

    def encode(self, data: Any) -> bytes:
        """Compress ``data`` as numcodecs' BZ2 / LZMA encode (the stdlib releases the GIL)."""
        if self.codec == "bz2":
            return bz2.compress(data, self.level)
        if self.lzma_format == lzma.FORMAT_RAW:
            return lzma.compress(data, format=lzma.FORMAT_RAW,
                                 filters=list(self.lzma_filters or ()))
        fmt = lzma.FORMAT_XZ if self.lzma_format == lzma.FORMAT_AUTO else self.lzma_format
        check = self.check if fmt == lzma.FORMAT_XZ else -1
        return lzma.compress(data, format=fmt, check=check, preset=self.preset)

    def _decompressor(self) -> Any:
        if self.codec == "bz2":
            return bz2.BZ2Decompressor()
        if self.lzma_format == lzma.FORMAT_RAW:  # its dictionary was checked at open
            return lzma.LZMADecompressor(format=lzma.FORMAT_RAW,
                                         filters=list(self.lzma_filters or ()))
        return lzma.LZMADecompressor(format=self.lzma_format,
                                     memlimit=max(self.limit, 0) + LZMA_MEMORY_SLACK)

    def __call__(self, data: bytes) -> bytes:
        """Decode ``data`` as ``bz2.decompress`` / ``lzma.decompress`` do (streams back to
        back, trailing bytes that start no stream ignored), but stop past ``limit`` bytes."""
        limit = self.limit
        parts: list[bytes] = []
        total = streams = 0
        rest: bytes = bytes(data)
        while True:
            dec = self._decompressor()
            pending = rest
            try:
                while not dec.eof:
                    # one byte more than allowed is enough to know the stream is too long
                    out = dec.decompress(pending, max_length=limit - total + 1)
                    pending = b""
                    total += len(out)
                    parts.append(out)
                    if total > limit:
                        raise StageError(f"decodes to more than {limit} bytes")
                    if not dec.eof and dec.needs_input:
                        raise StageError(f"the stream ends early ({total} bytes decoded)")
            except (OSError, lzma.LZMAError, EOFError) as exc:
                if streams:
                    break  # bytes after a complete stream that start no stream: ignored
                raise StageError(str(exc)) from None
            streams += 1
            rest = dec.unused_data
            if not rest:
                break
        return b"".join(parts)


def lzma_stage(conf: dict[str, Any], path: str) -> PythonStage:
    """The lzma stage for numcodecs' LZMA config (v2 compressor or v3 ``numcodecs.lzma``):
    ``format`` picks the container; ``filters`` matter only for raw streams (an xz or alone
    header records its own)."""
    fmt = conf.get("format", lzma.FORMAT_XZ)
    if fmt is None:
        fmt = lzma.FORMAT_XZ
    if isinstance(fmt, bool) or fmt not in _LZMA_FORMATS:
        raise MetadataError(f"lzma format {fmt!r} is not one of {sorted(_LZMA_FORMATS)}",
                            path=path)
    filters = conf.get("filters")
    check, preset = conf.get("check", -1), conf.get("preset")
    if fmt != lzma.FORMAT_RAW:
        if not isinstance(check, int) or isinstance(check, bool):
            check = -1
        if not (isinstance(preset, int) and not isinstance(preset, bool)):
            preset = None
        return PythonStage("lzma", lzma_format=fmt, check=check, preset=preset)
    if (not isinstance(filters, list) or not filters
            or not all(isinstance(f, dict) and isinstance(f.get("id"), int) for f in filters)):
        raise MetadataError(f"lzma format 3 (raw) needs a list of filters with integer ids, "
                            f"not {filters!r}", path=path)
    # a raw stream has no header: its dictionary is the one named here (liblzma takes no
    # memory limit for raw streams), bounded as the other formats' headers are
    most = get_max_chunk_bytes() + LZMA_MEMORY_SLACK
    for f in filters:
        dict_size = f.get("dict_size", 0)
        if not isinstance(dict_size, int) or isinstance(dict_size, bool) or dict_size > most:
            raise MetadataError(f"lzma filter dict_size {dict_size!r} is over {most} bytes "
                                "(the chunk limit, ngffcore.set_max_chunk_bytes, + 128 MiB)",
                                path=path)
    try:
        lzma.LZMADecompressor(format=fmt, filters=filters)
    except (ValueError, TypeError, OverflowError, lzma.LZMAError, MemoryError) as exc:
        raise MetadataError(f"lzma filters {filters!r} are invalid: {exc}", path=path) from None
    return PythonStage("lzma", lzma_format=fmt, lzma_filters=tuple(dict(f) for f in filters))


def python_stage(name: str, conf: dict[str, Any], path: str) -> PythonStage:
    """The stage for a bz2/lzma codec name (v2 id, v3 ``numcodecs.*`` name)."""
    if name in ("bz2", "numcodecs.bz2"):
        level = conf.get("level", 1)
        ok = isinstance(level, int) and not isinstance(level, bool) and 1 <= level <= 9
        return PythonStage("bz2", level=level if ok else 1)
    return lzma_stage(conf, path)


def bound_stages(stages: list[PythonStage], native_out: int) -> tuple[PythonStage, ...]:
    """Give each stage (decode order) its output limit: ``native_out`` for the last, which
    feeds the native chain; each earlier one feeds a bz2/lzma stream of the next's output."""
    out: list[PythonStage] = []
    limit = native_out
    for stage in reversed(stages):
        out.append(stage.with_limit(limit))
        limit = compressed_bound(limit)
    return tuple(reversed(out))
