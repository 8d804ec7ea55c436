"""``ngffcore render``: one y/x plane of an image, composited to RGBA by
:meth:`Image.render_region` (omero windows and colours, or defaults from the data), written
as a PNG (``cli/png.py``) — a quick look before reading numbers.

Defaults: the coarsest level, the whole plane, omero's active channels, omero's
``defaultZ``/``defaultT`` (else 0; mapped onto the level when the pyramid downsamples z or
t), and ``<image name>.png`` in the current directory.
``--region`` takes pixel indices of the chosen level; they are handed to ``render_region``
as the physical interval whose pixel centres are exactly those pixels (docs/ome.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import tempfile
from collections.abc import Sequence
from typing import IO, Any
from urllib.parse import urlsplit

from ngffcore.cli.common import (
    CliError,
    add_image_choice,
    open_location,
    open_node,
    select_image,
)
from ngffcore.cli.png import encode_png
from ngffcore.ome.image import Image
from ngffcore.ome.region import axis_box

#: what ``--region`` names: the plane's axes (t and z have ``--t``/``--z``)
PLANE_AXES = ("y", "x")
#: suffixes dropped from a location's last component to name the picture, longest first
ZARR_SUFFIXES = (".ome.zarr", ".zarr")


def add_render_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``render`` on the ``ngffcore`` command's subparsers."""
    render = sub.add_parser(
        "render", parents=[common], help="draw a plane of an image as a PNG",
        description="Composite one y/x plane of an image (omero windows and colours, or "
                    "defaults from the data) and write it as an 8-bit RGBA PNG.")
    render.add_argument("-o", "--output", help="the PNG to write (default: <image "
                        "name>.png in the current directory)")
    which = render.add_mutually_exclusive_group()
    which.add_argument("--level", type=int,
                       help="level index (0 = finest, -1 = coarsest; default: the coarsest)")
    which.add_argument("--resolution", type=float, metavar="R",
                       help="the coarsest level whose y and x pixel sizes are at most R (in "
                            "the axes' units), as Image.level_for and `ngffcore read` choose; "
                            "the finest level if none is that fine")
    # kept as text and parsed in cmd_render, so a mistake is one error line (exit status 2)
    render.add_argument("--region", action="append", default=[], metavar="AXIS=START:STOP",
                        help="pixels START to STOP (half-open, in the chosen level; either "
                             "bound may be left out) along y or x (repeatable; default: the "
                             "whole plane)")
    render.add_argument("--channels", metavar="C,C,…",
                        help="channel indices or omero labels to draw (default: the active "
                             "ones, all if none is marked)")
    render.add_argument("--z", type=int, help="z plane, an index in the chosen level "
                        "(default: omero defaultZ, else 0; on a level with fewer planes, the "
                        "one holding it)")
    render.add_argument("--t", type=int, help="time point, an index in the chosen level "
                        "(default: omero defaultT, else 0, as for --z)")
    add_image_choice(render, "draw the image's label image NAME",
                     "the field image of a plate (or FIELD of a well)")


# -- the picture's name ------------------------------------------------------------------------

def _last_component(location: str) -> str:
    """The last path component of a path or URL (``s3://b/x/img.ome.zarr/`` → img.ome.zarr)."""
    parts = urlsplit(location)
    if parts.scheme and len(parts.scheme) > 1:  # a URL (C:\… is a path)
        path = parts.path.rstrip("/") or parts.netloc  # s3://bucket/ is the bucket's
    else:
        path = location.rstrip("/\\")
    name = re.split(r"[/\\]", path)[-1] if path else ""
    if name in ("", ".", ".."):
        name = os.path.basename(os.path.abspath(path or "."))
    return name


def picture_name(image_name: str | None, location: str) -> str:
    """``<name>.png``: the multiscale's name, else the location's last path component without
    ``.ome.zarr`` / ``.zarr``; anything but letters, digits, ``.``, ``_`` and ``-`` becomes
    ``_`` (no directories, no hidden files, nothing a shell needs quoted)."""
    name = image_name or ""
    if not name.strip():
        name = _last_component(location)
        for suffix in ZARR_SUFFIXES:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name = name[:-len(suffix)]
                break
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._") or "image"
    return f"{name}.png"


def _option_text(value: Any) -> str:
    """A ``--option`` value as typed, so that ``store_option`` parses it back to ``value``:
    a string bare unless it would read as JSON (``"5"`` stays a string)."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
    return json.dumps(value)


def thumbnail_command(args: argparse.Namespace, image_name: str | None,
                      choice: Sequence[str] = ()) -> str:
    """The ``ngffcore render`` command line that draws the coarsest level of what ``args``
    (an ``info`` command line) opened; ``choice`` picks the image inside a plate, well or
    collection (``--field A/1/0``). Store options and ``--zarr-format`` are carried over."""
    words = ["ngffcore", "render", args.location]
    for key, value in args.options:
        words += ["-O", f"{key}={_option_text(value)}"]
    if args.zarr_format is not None:
        words += ["--zarr-format", str(args.zarr_format)]
    words += [*choice, "-o", picture_name(image_name, args.location)]
    return " ".join(shlex.quote(w) for w in words)


# -- the arguments -------------------------------------------------------------------------------

def _coarsest(image: Image) -> int:
    """The level with the fewest y·x pixels (the last one, in a pyramid listed finest first
    as the specification asks; by size so that another order still gets the smallest)."""
    y, x = image.geometry.yx("render")
    return min(range(len(image.levels)),
               key=lambda i: (image.levels[i].shape[y] * image.levels[i].shape[x], -i))


def _level(image: Image, args: argparse.Namespace) -> int:
    y, x = image.geometry.yx("render")
    if args.level is not None:
        return image.geometry.check_level(args.level)
    if args.resolution is not None:
        # y and x only: a z step must not pull a 2-D picture onto another level
        return image.level_for({image.axes[y].name: args.resolution,
                                image.axes[x].name: args.resolution})
    return _coarsest(image)


def _bound(text: str, spec: str) -> int | None:
    if not text.strip():
        return None
    try:
        return int(text)
    except ValueError:
        raise CliError(f"--region {spec}: {text!r} is not a whole pixel index") from None


def parse_region(specs: Sequence[str], image: Image, level: int
                 ) -> dict[str, tuple[int, int]]:
    """``AXIS=START:STOP`` pixel ranges of ``level`` by axis (``y``/``x``, any case), checked
    against the level; axes not named are whole."""
    geometry = image.geometry
    shape = image.levels[level].shape
    out: dict[str, tuple[int, int]] = {}
    for spec in specs:
        axis, sep, value = spec.partition("=")
        start_text, colon, stop_text = value.partition(":")
        axis = axis.strip().lower()
        if not sep or not colon:
            raise CliError(f"--region {spec}: write AXIS=START:STOP, e.g. y=0:512")
        if axis not in PLANE_AXES:
            raise CliError(f"--region {spec}: axis {axis!r} is not y or x (planes are "
                           f"chosen with --z and --t)")
        if axis in out:
            raise CliError(f"--region names axis {axis} more than once")
        index = geometry.index(axis)
        assert index is not None  # _level checked that y and x exist
        n = shape[index]
        start, stop = _bound(start_text, spec), _bound(stop_text, spec)
        start = 0 if start is None else start
        stop = n if stop is None else stop
        if not 0 <= start < stop <= n:
            raise CliError(f"--region {spec}: need 0 ≤ START < STOP ≤ {n} (level {level} has "
                           f"{n} pixels along {axis})")
        out[axis] = (start, stop)
    return out


def parse_channels(text: str | None, image: Image) -> list[int] | None:
    """Channel indices from ``0,2`` or omero labels (``DAPI,GFP``); None: the default."""
    if text is None:
        return None
    labels = [c.label for c in image.channels]
    out = []
    for item in text.split(","):
        item = item.strip()
        try:
            out.append(int(item))
            continue
        except ValueError:
            pass
        if item not in labels:
            known = ", ".join(repr(v) for v in labels if v) or "none"
            raise CliError(f"--channels: {item!r} is neither a channel index nor a channel "
                           f"label (labels: {known})")
        out.append(labels.index(item))
    count = image.geometry.channel_count
    bad = [c for c in out if not 0 <= c < count]
    if bad:
        # negative indices are refused too: render_region would take -1 as the last one
        raise CliError(f"--channels {text}: no channel {', '.join(map(str, bad))}: the image "
                       f"has {count} (0–{count - 1})")
    return out


def plane(image: Image, level: int, axis: str, given: int | None) -> int | None:
    """The ``axis`` ("z" or "t") plane of ``level`` to draw: ``given`` (an index in that
    level), else omero's default plane placed on that level (``Geometry.default_plane``)."""
    if given is not None:
        return given
    return image.geometry.default_plane(axis, level)


def physical_region(image: Image, level: int, pixels: dict[str, tuple[int, int]]
                    ) -> dict[str, tuple[float, float]]:
    """The physical intervals whose pixel centres are exactly ``pixels`` on ``level``:
    from half a pixel before the first centre to half a pixel before the one after the last,
    so rounding in ``render_region`` cannot gain or lose a pixel."""
    lvl = image.levels[level]
    out = {}
    for axis, (start, stop) in pixels.items():
        index = image.geometry.index(axis)
        assert index is not None
        s, t = lvl.scale[index], lvl.translation[index]
        out[image.axes[index].name] = (t + (start - 0.5) * s, t + (stop - 0.5) * s)
    return out


# -- writing -------------------------------------------------------------------------------------

def write_atomically(path: str, data: bytes) -> None:
    """``data`` at ``path`` through a temporary file in the same directory and a rename: a
    reader never sees half a picture, and a failure leaves what was there before."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".ngffcore-", suffix=".png.tmp")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file private (0600); a picture gets what open() would give
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            f.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        os.unlink(tmp)
        if isinstance(exc, OSError):
            raise CliError(f"cannot write {path}: {exc}") from None
        raise


def cmd_render(args: argparse.Namespace, stdout: IO[str]) -> int:
    store = open_location(args)
    image = select_image(open_node(store, args, args.multiscale), args)
    if not isinstance(image, Image):
        raise CliError(f"{store.url} is a plain Zarr array (no OME-Zarr metadata): nothing "
                       f"to composite; `ngffcore read` reads its pixels")
    level = _level(image, args)
    pixels = parse_region(args.region, image, level)
    channels = parse_channels(args.channels, image)
    rgba = image.render_region(physical_region(image, level, pixels), level=level,
                               t=plane(image, level, "t", args.t),
                               z=plane(image, level, "z", args.z), channels=channels)
    output = args.output or picture_name(image.name, args.location)
    write_atomically(output, encode_png(rgba))
    lvl = image.levels[level]
    h, w = rgba.shape[:2]
    print(f"{output}: {image.url} level {level} ({lvl.path}), {w}×{h} pixels", file=stdout)
    return 0
