"""``ngffcore convert SOURCE DEST``: :func:`ngffcore.ome.convert.convert` from the command
line, with a progress bar (bytes done / total and the time left) on stderr when it is a
terminal or ``--progress`` is given.
"""

from __future__ import annotations

import argparse
import time
from typing import IO, Any

from ngffcore.cli.common import (BAR_WIDTH, BYTE_UNITS, _in_unit, _unit_of, store_option)
from ngffcore.ome.convert import COMPRESSORS, convert
from ngffcore.ome.build import METHODS, VERSIONS


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of "
                                         "integers") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be >= 1")
    return values


def add_convert_parser(sub: Any) -> None:
    """Register ``convert`` on the ``ngffcore`` command's subparsers."""
    p = sub.add_parser("convert", help="re-encode an OME-Zarr image, plate or "
                       "bioformats2raw collection into another layout")
    p.add_argument("source", help="path or URL of the OME-Zarr data")
    p.add_argument("dest", help="path or URL to write (must be empty unless --overwrite or "
                   "--resume)")
    p.add_argument("--option", "-O", dest="options", action="append", default=[],
                   type=store_option, metavar="KEY=VALUE", help="store option for SOURCE")
    p.add_argument("--dest-option", dest="dest_options", action="append", default=[],
                   type=store_option, metavar="KEY=VALUE", help="store option for DEST")
    p.add_argument("--version", dest="ome_version", choices=VERSIONS, default="0.5",
                   help="OME-NGFF version to write (default 0.5)")
    p.add_argument("--chunks", type=_ints, metavar="N,N,…",
                   help="level-0 chunk shape (default: the source's)")
    p.add_argument("--shards", type=_ints, metavar="N,N,…",
                   help="level-0 shard shape (0.5 only; default: the source's shards)")
    p.add_argument("--compressor", default="zstd", metavar="NAME[:LEVEL]",
                   help=f"one of {', '.join(COMPRESSORS)} (default zstd)")
    p.add_argument("--levels", type=int, metavar="N",
                   help="total levels: those beyond the source's are computed")
    p.add_argument("--downsample", choices=METHODS, default="mean",
                   help="method of computed levels (label images: mode)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="empty DEST first")
    mode.add_argument("--resume", action="store_true",
                      help="finish an interrupted conversion into DEST")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true",
                       help="show progress even when stderr is not a terminal")
    shown.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


class ProgressBar:
    """``[#####.....] 45% 1.2/2.7 GiB ETA 0:01:23``, rewritten in place; the ETA from the
    rate of this run (a resume's skipped bytes don't count as speed)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._start = time.monotonic()
        self._first: int | None = None
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = done
            self._start = now
        fraction = done / total if total else 1.0
        filled = int(fraction * BAR_WIDTH)
        unit = _unit_of(total)
        rate = (done - self._first) / max(now - self._start, 1e-9)
        eta = "--:--:--"
        if rate > 0:
            left = int((total - done) / rate)
            eta = f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
        self._stream.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                           f"{int(fraction * 100):3d}% {_in_unit(done, unit)}/"
                           f"{_in_unit(total, unit)} {BYTE_UNITS[unit]} ETA {eta}")
        self._stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()


def cmd_convert(args: argparse.Namespace, stderr: IO[str]) -> int:
    show = args.progress or (not args.quiet and stderr.isatty())
    bar = ProgressBar(stderr) if show else None
    try:
        wrote = convert(args.source, args.dest, version=args.ome_version, chunks=args.chunks,
                shards=args.shards, compressor=args.compressor, levels=args.levels,
                downsample=args.downsample, overwrite=args.overwrite, resume=args.resume,
                progress=bar, source_options=dict(args.options),
                dest_options=dict(args.dest_options))
    finally:
        if bar is not None:
            bar.finish()
    if not wrote:
        print(f"ngffcore convert: nothing to resume: {args.dest} holds group metadata and no "
              "conversion journal (a conversion that had finished)", file=stderr)
    return 0
