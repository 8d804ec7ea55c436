"""``ngffcore read``: a physical region of an image (or a pixel box of a plain array) into a
``.npy`` file through a memory map, in grid-aligned slabs (:func:`ngffcore.zarr.grid.slab_boxes`)
with a progress bar when the read is large.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Sequence
from typing import IO, Any

import numpy as np

from ngffcore.cli.common import (
    CliError,
    Progress,
    add_image_choice,
    add_progress_choice,
    axis_number,
    dims_text,
    human_bytes,
    open_location,
    open_node,
    region_item,
    resolution,
    select_image,
)
from ngffcore.ome.image import Image, Level
from ngffcore.ome.region import Interval
from ngffcore.zarr.array import Array
from ngffcore.zarr.grid import Box, slab_boxes

#: reads larger than this go in slabs, with a progress bar
DEFAULT_SLAB_BYTES = 64 * 2**20


def add_read_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``read`` on the ``ngffcore`` command's subparsers."""
    read = sub.add_parser("read", parents=[common],
                          help="read a physical region of an image into a .npy file")
    read.add_argument("-o", "--output", required=True, help="the .npy file to write")
    which = read.add_mutually_exclusive_group()
    which.add_argument("--level", type=int, help="level index (0 = finest)")
    which.add_argument("--resolution", type=resolution, metavar="R|AXIS=R,…",
                       help="the coarsest level with pixels at most this size")
    read.add_argument("--region", action="append", default=[], type=region_item,
                      metavar="AXIS=START:STOP", help="physical interval (repeatable); for a "
                      "plain array, pixel indices by dimension name or number")
    read.add_argument("--center", action="append", default=[], type=axis_number,
                      metavar="AXIS=C", help="region centre (with --size; repeatable)")
    read.add_argument("--size", action="append", default=[], type=axis_number,
                      metavar="AXIS=S", help="region size (with --center; repeatable)")
    add_image_choice(read, "read the image's label image NAME",
                     "the field image of a plate (or FIELD of a well)")
    add_progress_choice(read, "print nothing (no progress, no summary)")
    # tests force the slab path with small data
    read.add_argument("--slab-bytes", type=int, default=DEFAULT_SLAB_BYTES,
                      help=argparse.SUPPRESS)


# -- the box ---------------------------------------------------------------------------------

def _by_axis(pairs: list[tuple[str, Any]], option: str) -> dict[str, Any] | None:
    out = dict(pairs)
    if len(out) != len(pairs):
        repeated = sorted({k for k, _ in pairs if [p[0] for p in pairs].count(k) > 1})
        raise CliError(f"{option} names axis {', '.join(repeated)} more than once")
    return out or None


def image_box(image: Image, args: argparse.Namespace) -> tuple[Level, Box]:
    level, box = image.region_box(_by_axis(args.region, "--region"),
                                  center=_by_axis(args.center, "--center"),
                                  size=_by_axis(args.size, "--size"),
                                  resolution=args.resolution, level=args.level)
    return image.levels[level], box


def array_box(array: Array, args: argparse.Namespace) -> Box:
    """A plain array has no physical space: ``--region`` gives pixel indices, by dimension
    name or number, clipped as numpy clips slices."""
    if args.level is not None or args.resolution is not None or args.center or args.size \
            or args.multiscale or args.label is not None:
        raise CliError("a plain Zarr array has no levels, physical space or labels: use "
                       "--region DIM=START:STOP with pixel indices")
    names = list(array.metadata.dimension_names or [None] * array.ndim)
    box = [(0, n) for n in array.shape]
    for key, interval in args.region:
        axis = names.index(key) if key in names else (
            int(key) if key.isdigit() and int(key) < array.ndim else None)
        if axis is None:
            raise CliError(f"the array has no dimension {key!r} (names {names}, or 0–"
                           f"{array.ndim - 1})")
        box[axis] = _pixel_range(key, interval, array.shape[axis])
    return tuple(box)


def _pixel_range(key: str, interval: Interval, n: int) -> tuple[int, int]:
    """A ``START:STOP`` slice clipped as numpy clips it, or one index (negative from the
    end), of an axis of ``n`` pixels."""
    if interval is None:
        return 0, n
    values = interval if isinstance(interval, tuple) else (interval,)
    if not all(v == int(v) for v in values):
        raise CliError(f"--region {key}: a plain array takes integer pixel indices")
    if len(values) == 2:
        start, stop, _ = slice(int(values[0]), int(values[1])).indices(n)
        return start, max(start, stop)
    try:
        index = range(n)[int(values[0])]
    except IndexError:
        raise CliError(f"--region {key}={values[0]:g}: out of range for {n} pixels") from None
    return index, index + 1


# -- writing ---------------------------------------------------------------------------------

def _wants_progress(args: argparse.Namespace, stderr: IO[str], nbytes: int) -> bool:
    """Asked for, or a large read on a terminal (a small one is over before a bar helps)."""
    if args.quiet:
        return False
    return bool(args.progress or (nbytes > args.slab_bytes and stderr.isatty()))


def read_in_slabs(array: Array, box: Box, out: np.ndarray, slab_bytes: int,
                  progress: Progress | None) -> None:
    """Read ``box`` of ``array`` into ``out`` slab by slab (:func:`slab_boxes`: whole
    chunks or shards each, at most ``slab_bytes``)."""
    origin = [a for a, _ in box]
    grid = array.metadata.grid_shape
    done = 0
    if progress:
        progress.update(0)
    try:
        for slab in slab_boxes(box, grid, array.dtype.itemsize, slab_bytes):
            # the leading ... keeps a 0-d result a view (out[()] would be a scalar copy)
            view = out[(Ellipsis,) + tuple(slice(a - o, b - o)
                                           for (a, b), o in zip(slab, origin))]
            array.read(tuple(slice(a, b) for a, b in slab), out=view)
            done += view.nbytes
            if progress:
                progress.update(done)
    finally:
        if progress:
            # an error message then starts on a line of its own
            progress.finish()


def _box_text(box: Box, names: Sequence[str]) -> str:
    return " ".join(f"{n}={a}:{b}" for n, (a, b) in zip(names, box))


def _create_npy(path: str, dtype: np.dtype, shape: tuple[int, ...]
                ) -> np.memmap[Any, Any] | None:
    """The output file, memory-mapped; None when it is empty (numpy refuses to map an
    empty file, so it is written whole)."""
    try:
        if math.prod(shape) == 0:
            with open(path, "wb") as f:  # np.save(path) would append ".npy" to the name
                np.save(f, np.empty(shape, dtype))
            return None
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc}") from None


def _write_npy(path: str, array: Array, box: Box, slab_bytes: int,
               progress: Progress | None) -> None:
    out = _create_npy(path, array.dtype, tuple(b - a for a, b in box))
    if out is None:
        return
    try:
        read_in_slabs(array, box, out, slab_bytes, progress)
        out.flush()
    except BaseException:
        del out
        # a half-written file must not pass for the data
        os.remove(path)
        raise
    del out


def cmd_read(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    store = open_location(args)
    target = select_image(open_node(store, args, args.multiscale), args)
    array: Array
    if isinstance(target, Image):
        level, box = image_box(target, args)
        array = level
        names = [a.name for a in target.axes]
        what = f"{target.url} level {level.index} ({level.path})"
    else:
        array, box = target, array_box(target, args)
        dims = target.metadata.dimension_names
        names = [str(n) if n else str(i) for i, n in enumerate(dims or [None] * target.ndim)]
        what = f"{store.url} (array)"
    nbytes = math.prod(b - a for a, b in box) * array.dtype.itemsize
    progress = Progress(stderr, nbytes) if _wants_progress(args, stderr, nbytes) else None
    t0 = time.perf_counter()
    _write_npy(args.output, array, box, args.slab_bytes, progress)
    seconds = time.perf_counter() - t0
    if not args.quiet:
        shape = dims_text([b - a for a, b in box])
        print(f"{args.output}: {what}, box {_box_text(box, names)}, shape {shape}, "
              f"{array.dtype}, {human_bytes(nbytes)}, {seconds:.3f} s", file=stdout)
    return 0
