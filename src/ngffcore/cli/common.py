"""What every ``ngffcore`` command shares: argument value parsers and argument groups,
opening the location (store options, the node found there, the image a command picks out of
a plate, well or collection), :class:`CliError`, byte sizes for people, :class:`Progress`.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from typing import IO, Any, Union

import ngffcore
from ngffcore.errors import MetadataError, NgffError
from ngffcore.ome.collection import Collection, Plate, Well
from ngffcore.ome.image import Image
from ngffcore.ome.region import Interval
from ngffcore.ome.scene import Scene
from ngffcore.store.location import open_store
from ngffcore.store.protocol import Store
from ngffcore.zarr.array import Array

#: what a location can hold
Node = Union[Image, Plate, Well, Collection, Array]

BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
#: characters of a progress bar
BAR_WIDTH = 30


class CliError(Exception):
    """A mistake in the command line found after parsing (exit status 2)."""


# -- argument values -------------------------------------------------------------------------

def _split_pair(text: str, what: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{what} must look like NAME=VALUE, not {text!r}")
    return key, value


def store_option(text: str) -> tuple[str, Any]:
    """``key=value``; the value as JSON when it parses (``true``, ``5``, ``{"a": 1}``), else
    the string itself, so URLs and regions need no quoting."""
    key, value = _split_pair(text, "--option")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{what}: {text!r} is not a finite number")
    return value


def region_item(text: str) -> tuple[str, Interval]:
    """``AXIS=START:STOP`` (a half-open interval) or ``AXIS=VALUE`` (the pixel holding it)."""
    axis, value = _split_pair(text, "--region")
    if ":" not in value:
        return axis, _number(value, f"--region {axis}")
    start, _, stop = value.partition(":")
    return axis, (_number(start, f"--region {axis} start"), _number(stop, f"--region {axis} stop"))


def axis_number(text: str) -> tuple[str, float]:
    """``AXIS=NUMBER`` (``--center``, ``--size``)."""
    axis, value = _split_pair(text, "AXIS=NUMBER")
    return axis, _number(value, axis)


def resolution(text: str) -> float | dict[str, float]:
    """``R`` (every spatial axis) or ``AXIS=R[,AXIS=R…]``."""
    if "=" not in text:
        return _number(text, "--resolution")
    return dict(axis_number(part) for part in text.split(","))


def field_spec(text: str) -> tuple[str, ...]:
    """``ROW/COL/FIELD`` or ``ROW/COL`` (a plate), ``FIELD`` (a well)."""
    parts = tuple(text.split("/"))
    if len(parts) not in (1, 2, 3) or not all(parts):
        raise argparse.ArgumentTypeError(f"--field must be ROW/COL/FIELD, ROW/COL or FIELD, "
                                         f"not {text!r}")
    if len(parts) != 2 and not parts[-1].lstrip("-").isdigit():
        raise argparse.ArgumentTypeError(f"--field: the field {parts[-1]!r} is not an index")
    return parts


# -- parser ----------------------------------------------------------------------------------

def add_image_choice(p: argparse.ArgumentParser, label_help: str, field_help: str) -> None:
    """Which image of a group, plate, well or collection a command works on."""
    p.add_argument("--multiscale", type=int, default=0, help="which multiscale of the group")
    p.add_argument("--field", type=field_spec, metavar="ROW/COL/FIELD", help=field_help)
    p.add_argument("--series", type=int, help="the series of a bioformats2raw collection")
    p.add_argument("--label", metavar="NAME", help=label_help)


def add_progress_choice(p: argparse.ArgumentParser, quiet_help: str) -> None:
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true",
                       help="show progress even when stderr is not a terminal")
    shown.add_argument("--quiet", "-q", action="store_true", help=quiet_help)

def common_parser() -> argparse.ArgumentParser:
    """The arguments every command takes: the location, store options, the Zarr format."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("location", help="path or URL (file://, s3://, gs://, az://, http(s)://)")
    common.add_argument("--option", "-O", dest="options", action="append", default=[],
                        type=store_option, metavar="KEY=VALUE",
                        help="store option for remote locations (repeatable; the value is "
                             "parsed as JSON when it can be), e.g. skip_signature=true")
    common.add_argument("--zarr-format", type=int, choices=(2, 3), default=None,
                        help="skip probing for the Zarr format at the root")
    return common


# -- opening ---------------------------------------------------------------------------------

def open_location(args: argparse.Namespace) -> Store:
    """The store at ``args.location`` with the ``--option`` store options."""
    try:
        return open_store(args.location, **dict(args.options))
    except (TypeError, ValueError) as exc:
        # location syntax and option mistakes (unknown scheme, options on a local path)
        raise CliError(f"{args.location}: {exc}") from None


def open_node(store: Store, args: argparse.Namespace, multiscale: int = 0) -> Node:
    """What ``ngffcore.open`` finds in ``store``; a plain Zarr array when it finds an array
    instead of an OME-Zarr group (the original error stands if that fails too)."""
    try:
        node = ngffcore.open(store, zarr_format=args.zarr_format, multiscale=multiscale)
    except MetadataError as exc:
        try:
            return ngffcore.open_array(store, zarr_format=args.zarr_format)
        except NgffError:
            raise exc from None
    if isinstance(node, Scene):  # a 0.6 scene: its images are what the commands read
        raise CliError(f"{args.location} is an OME-NGFF scene of the images "
                       f"{sorted(node.images)}: give one of them as the location")
    return node



def _plate_field(plate: Plate, field: tuple[str, ...] | None) -> Image:
    if field is None or len(field) == 1:
        examples = ", ".join(w.path for w in plate.wells[:4])
        raise CliError(f"{plate.url} is a plate: choose a field with --field ROW/COL/FIELD "
                       f"(wells include {examples or 'none'})")
    index = int(field[2]) if len(field) == 3 else 0
    return plate.well(field[0], field[1]).field(index)


def _well_field(well: Well, field: tuple[str, ...] | None) -> Image:
    if field is not None and len(field) != 1:
        raise CliError("a well's field is chosen with --field FIELD (an index)")
    return well.field(int(field[0]) if field else 0)


def select_image(node: Node, args: argparse.Namespace) -> Image | Array:
    """The image (or plain array) that ``--field``/``--series``/``--multiscale``/``--label``
    pick out of what the location holds (an image location was opened with ``--multiscale``
    already)."""
    contained = isinstance(node, (Plate, Well, Collection))
    if args.field is not None and not isinstance(node, (Plate, Well)):
        raise CliError("--field applies to plates and wells only")
    if args.series is not None and not isinstance(node, Collection):
        raise CliError("--series applies to bioformats2raw collections only")
    if isinstance(node, Plate):
        node = _plate_field(node, args.field)
    elif isinstance(node, Well):
        node = _well_field(node, args.field)
    elif isinstance(node, Collection):
        node = node[args.series or 0]
    if isinstance(node, Array):
        return node
    if args.multiscale and contained:
        node = node.open_multiscale(args.multiscale)
    if args.label is not None:
        labels = node.labels
        if args.label not in labels:
            raise CliError(f"{node.url} has no label image {args.label!r} "
                           f"(labels: {', '.join(labels) or 'none'})")
        node = labels[args.label]
    return node


# -- output ----------------------------------------------------------------------------------

def dims_text(values: Sequence[int] | None) -> str:
    return "none" if values is None else "×".join(str(v) for v in values) or "()"


def _unit_of(n: float) -> int:
    """Index of the largest binary unit that ``n`` bytes fill at least once."""
    unit = 0
    while n >= 1024 ** (unit + 1) and unit + 1 < len(BYTE_UNITS):
        unit += 1
    return unit


def _in_unit(n: float, unit: int) -> str:
    return f"{int(n)}" if unit == 0 else f"{n / 1024 ** unit:.1f}"


def human_bytes(n: float) -> str:
    unit = _unit_of(n)
    return f"{_in_unit(n, unit)} {BYTE_UNITS[unit]}"


class Progress:
    """``[#####.....] 45% 1.2/2.7 GiB`` rewritten in place on a terminal stream; both sizes
    in the total's unit, so the numbers don't jump between units."""

    def __init__(self, stream: IO[str], total: int) -> None:
        self._stream = stream
        self._total = total
        self._unit = _unit_of(total)

    def update(self, done: int) -> None:
        fraction = done / self._total if self._total else 1.0
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        sizes = (f"{_in_unit(done, self._unit)}/{_in_unit(self._total, self._unit)} "
                 f"{BYTE_UNITS[self._unit]}")
        self._stream.write(f"\r[{bar}] {int(fraction * 100):3d}% {sizes}")
        self._stream.flush()

    def finish(self) -> None:
        self._stream.write("\n")
        self._stream.flush()
