"""Encoder parameters of the native bytes→bytes codecs, from their metadata configuration.

Reading ignores them (every frame records what its decoder needs); writing needs them. They
are parsed leniently with the chain (an array whose config ngffcore could not encode is still
readable) and the first problem is kept: :func:`ngffcore.zarr.write` refuses to write such an
array before sending anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ngffcore.errors import UnsupportedError

#: c-blosc 1.x compressor codes (what the frame header records)
BLOSC_CNAMES = {"blosclz": 0, "lz4": 1, "lz4hc": 2, "zlib": 4, "zstd": 5}
_V3_SHUFFLES = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}

#: what each native codec takes when its config says nothing (numcodecs' and zarr-python's
#: defaults, so an array reads and writes the same everywhere)
DEFAULT_LEVELS = {"blosc": 5, "zstd": 0, "zlib": 1, "gzip": 1, "lz4": 1}


def _int(conf: dict[str, Any], key: str, default: int) -> int:
    value = conf.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UnsupportedError(f"{key} {value!r} is not an integer")
    return int(value)


def codec_params(name: str, conf: dict[str, Any], itemsize: int) -> tuple[dict[str, int], str]:
    """``(params, problem)`` for one native codec (v3 name, ``numcodecs.*`` name or v2 id):
    the encoder parameters (keys as ``_core.Pipeline(codec_params=...)`` takes them), and ""
    or why this config cannot be encoded."""
    kind = name.removeprefix("numcodecs.")
    try:
        if kind == "blosc":
            return _blosc(conf, itemsize, v3=name == "blosc"), ""
        if kind == "zstd":
            return {"level": _int(conf, "level", 0),
                    "checksum": int(bool(conf.get("checksum", False)))}, ""
        if kind in ("zlib", "gzip"):
            level = _int(conf, "level", DEFAULT_LEVELS[kind])
            if not -1 <= level <= 9:
                raise UnsupportedError(f"level {level} is not in -1..9")
            return {"level": level, "gzip": int(kind == "gzip")}, ""
        if kind == "lz4":
            accel = _int(conf, "acceleration", 1)
            if accel < 1:
                raise UnsupportedError(f"acceleration {accel} is below 1")
            return {"level": accel}, ""
        return {}, ""  # crc32c
    except UnsupportedError as exc:  # kept as the chain's write problem, raised on writing
        return {}, f"{name}: {exc}"


def _blosc(conf: dict[str, Any], itemsize: int, *, v3: bool) -> dict[str, int]:
    cname = conf.get("cname", "lz4")
    if cname not in BLOSC_CNAMES:
        raise UnsupportedError(f"cname {cname!r} cannot be written (writable: "
                         f"{', '.join(BLOSC_CNAMES)})")
    clevel = _int(conf, "clevel", 5)
    if not 0 <= clevel <= 9:
        raise UnsupportedError(f"clevel {clevel} is not in 0..9")
    shuffle = conf.get("shuffle", "noshuffle" if v3 else 1)
    if isinstance(shuffle, str):
        if shuffle not in _V3_SHUFFLES:
            raise UnsupportedError(f"shuffle {shuffle!r} is not one of {', '.join(_V3_SHUFFLES)}")
        shuffle_id = _V3_SHUFFLES[shuffle]
    elif isinstance(shuffle, int) and not isinstance(shuffle, bool) and -1 <= shuffle <= 2:
        # numcodecs' AUTOSHUFFLE (-1): bit shuffle for 1-byte items, else byte shuffle
        shuffle_id = (2 if itemsize == 1 else 1) if shuffle == -1 else shuffle
    else:
        raise UnsupportedError(f"shuffle {shuffle!r} is not -1, 0, 1 or 2")
    typesize = _int(conf, "typesize", itemsize) or itemsize
    if typesize < 1:
        raise UnsupportedError(f"typesize {typesize} is below 1")
    blocksize = _int(conf, "blocksize", 0)
    if blocksize < 0:
        raise UnsupportedError(f"blocksize {blocksize} is negative")
    return {"level": clevel, "cname": BLOSC_CNAMES[cname], "shuffle": shuffle_id,
            "typesize": typesize if typesize <= 255 else 1, "blocksize": blocksize}


__all__ = ["BLOSC_CNAMES", "DEFAULT_LEVELS", "codec_params"]
