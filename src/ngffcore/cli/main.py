"""The ``ngffcore`` command: ``info``, ``read``, ``validate`` and ``bench`` on any location.

``info`` describes what ``ngffcore.open`` finds (image, plate, well, collection, or a plain
array) as a text tree or as JSON; both come from one description, so they never disagree.
``read`` writes a physical region of an image to a ``.npy`` file through a memory map, in
chunk-aligned slabs with a progress bar when the read is large. ``validate`` prints the
problems ``ngffcore.ome.validate`` finds. ``bench`` (in ``bench.py``) times random tile reads,
cold and warm. Exit status: 0 success, 1 problems found (validate),
2 errors (nothing there, bad metadata, bad arguments).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import IO, Any, Union

import numpy as np

import ngffcore
from ngffcore.zarr.array import Array
from ngffcore.ome.collection import Collection, Plate, Well
from ngffcore.errors import MetadataError, NgffError
from ngffcore.ome.image import Image, LabelImage, Level
from ngffcore.store.location import open_store
from ngffcore.ome.region import Interval
from ngffcore.store.protocol import Store

Node = Union[Image, Plate, Well, Collection, Array]
Box = tuple[tuple[int, int], ...]

#: reads larger than this go in slabs, with a progress bar
DEFAULT_SLAB_BYTES = 64 * 2**20
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_BAR_WIDTH = 30


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


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("location", help="path or URL (file://, s3://, gs://, az://, http(s)://)")
    common.add_argument("--option", "-O", dest="options", action="append", default=[],
                        type=store_option, metavar="KEY=VALUE",
                        help="store option for remote locations (repeatable; the value is "
                             "parsed as JSON when it can be), e.g. skip_signature=true")
    common.add_argument("--zarr-format", type=int, choices=(2, 3), default=None,
                        help="skip probing for the Zarr format at the root")

    parser = argparse.ArgumentParser(
        prog="ngffcore", description="Inspect, read and validate OME-Zarr data.")
    parser.add_argument("--version", action="version", version=f"ngffcore {ngffcore.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser("info", parents=[common], help="describe what is at LOCATION")
    info.add_argument("--json", action="store_true", help="print the description as JSON")

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

    validate = sub.add_parser("validate", parents=[common],
                              help="check LOCATION against the OME-Zarr specification")
    validate.add_argument("--json", action="store_true", help="print the problems as JSON")
    validate.add_argument("--strict", action="store_true",
                          help="use the strict schemas (also require what the spec recommends)")
    validate.add_argument("--fail-on-warning", action="store_true",
                          help="exit 1 on warnings too, not only on errors")

    from ngffcore.cli.bench import add_bench_parser  # bench imports this module's helpers

    add_bench_parser(sub, common)
    return parser


# -- opening ---------------------------------------------------------------------------------

def _store_options(args: argparse.Namespace) -> dict[str, Any]:
    return dict(args.options)


def _open_store(args: argparse.Namespace) -> Store:
    try:
        return open_store(args.location, **_store_options(args))
    except (TypeError, ValueError) as exc:
        # location syntax and option mistakes (unknown scheme, options on a local path)
        raise CliError(f"{args.location}: {exc}") from None


def open_node(store: Store, args: argparse.Namespace, multiscale: int = 0) -> Node:
    """What ``ngffcore.open`` finds in ``store``; a plain Zarr array when it finds an array
    instead of an OME-Zarr group (the original error stands if that fails too)."""
    try:
        return ngffcore.open(store, zarr_format=args.zarr_format, multiscale=multiscale)
    except MetadataError as exc:
        try:
            return ngffcore.open_array(store, zarr_format=args.zarr_format)
        except NgffError:
            raise exc from None


# -- descriptions (the data behind both `info` outputs) --------------------------------------

def _fill_json(value: Any) -> Any:
    """A fill value as JSON, spelled as Zarr v3 metadata spells it."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, complex):
        return [_fill_json(value.real), _fill_json(value.imag)]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bytes):
        return value.hex()
    return value


def describe_array(array: Array) -> dict[str, Any]:
    meta = array.metadata
    return {
        "zarr_format": array.zarr_format,
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "chunks": list(array.chunks),
        "shards": None if array.shards is None else list(array.shards),
        "codec": meta.codec.describe(),
        "fill_value": _fill_json(array.fill_value),
        "dimension_names": None if meta.dimension_names is None else list(meta.dimension_names),
        "nbytes": array.nbytes,
    }


def describe_level(image: Image, level: Level) -> dict[str, Any]:
    extent = {axis.name: n * s for axis, n, s in zip(image.axes, level.shape, level.scale)
              if axis.is_spatial}
    return {"index": level.index, "path": level.path, **describe_array(level),
            "scale": list(level.scale), "translation": list(level.translation),
            "extent": extent}


def _describe_labels(image: Image) -> dict[str, Any]:
    try:
        labels = image.labels
    except NgffError as exc:
        # a broken label group should not hide the image it annotates
        return {"labels_error": str(exc)}
    return {"labels": {name: {"levels": len(label.levels), "shape": list(label.shape),
                              "dtype": str(label.dtype)}
                       for name, label in labels.items()}}


def describe_image(image: Image) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "label-image" if isinstance(image, LabelImage) else "image",
        "url": image.url,
        "name": image.name,
        "version": image.version,
        "multiscale": image.index,
        "multiscale_count": len(image.multiscales),
        "axes": [dataclasses.asdict(axis) for axis in image.axes],
        "levels": [describe_level(image, level) for level in image.levels],
        "channels": [dataclasses.asdict(channel) for channel in image.channels],
    }
    if isinstance(image, LabelImage):
        out["label_colors"] = len(image.colors)
        out["label_source"] = image.source
    out.update(_describe_labels(image))
    return out


def describe_well(well: Well, url: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "well", "url": url, "version": well.version,
        "fields": [{"index": i, "path": im.path, "acquisition": im.acquisition}
                   for i, im in enumerate(well.images)],
    }
    if len(well):
        out["first_field"] = describe_image(well.field(0))
    return out


def describe_plate(plate: Plate) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "plate", "url": plate.url, "name": plate.name, "version": plate.version,
        "rows": list(plate.rows), "columns": list(plate.columns),
        "wells": [w.path for w in plate.wells],
        "acquisitions": [dataclasses.asdict(a) for a in plate.acquisitions],
        "field_count": plate.field_count,
    }
    if plate.wells:
        first = plate.wells[0].path
        well = plate.well(first)
        if len(well):
            out["first_field"] = {"well": first, "field": 0,
                                  "image": describe_image(well.field(0))}
    return out


def describe_collection(collection: Collection) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "collection", "url": collection.url, "layout": collection.layout,
        "series": [{"index": i, "path": path, "name": name} for i, (path, name)
                   in enumerate(zip(collection.series, collection.names))],
    }
    if len(collection):
        # the other series are listed, not opened: a container may hold thousands
        out["first_series"] = describe_image(collection[0])
    return out


def describe(node: Node, url: str) -> dict[str, Any]:
    if isinstance(node, Image):
        return describe_image(node)
    if isinstance(node, Plate):
        return describe_plate(node)
    if isinstance(node, Well):
        return describe_well(node, url)
    if isinstance(node, Collection):
        return describe_collection(node)
    return {"kind": "array", "url": url, **describe_array(node)}


# -- text rendering of descriptions ----------------------------------------------------------

def _num(value: float) -> str:
    return f"{value:.6g}"


def _dims(values: Sequence[int] | None) -> str:
    return "none" if values is None else "×".join(str(v) for v in values) or "()"


def _unit_of(n: float) -> int:
    """Index of the largest binary unit that ``n`` bytes fill at least once."""
    unit = 0
    while n >= 1024 ** (unit + 1) and unit + 1 < len(_BYTE_UNITS):
        unit += 1
    return unit


def _in_unit(n: float, unit: int) -> str:
    return f"{int(n)}" if unit == 0 else f"{n / 1024 ** unit:.1f}"


def human_bytes(n: float) -> str:
    unit = _unit_of(n)
    return f"{_in_unit(n, unit)} {_BYTE_UNITS[unit]}"


def _per_axis(axes: Sequence[dict[str, Any]], values: Sequence[float]) -> str:
    return ", ".join(f"{axis['name']}={_num(value)}"
                     + (f" {axis['unit']}" if axis["unit"] else "")
                     for axis, value in zip(axes, values))


def _array_lines(d: dict[str, Any], pad: str) -> list[str]:
    return [f"{pad}shape {_dims(d['shape'])}  {d['dtype']}  {human_bytes(d['nbytes'])}",
            f"{pad}chunks {_dims(d['chunks'])}  shards {_dims(d['shards'])}  "
            f"codec {d['codec']}  (Zarr v{d['zarr_format']})"]


def _level_lines(d: dict[str, Any], axes: list[dict[str, Any]], pad: str) -> list[str]:
    lines = [f"{pad}level {d['index']}: {d['path']}"]
    inner = pad + "  "
    lines += _array_lines(d, inner)
    lines.append(f"{inner}pixel size {_per_axis(axes, d['scale'])}")
    if d["extent"]:
        # the extent holds the spatial axes only, in axis order
        spatial = [a for a in axes if a["name"] in d["extent"]]
        lines.append(f"{inner}extent {_per_axis(spatial, list(d['extent'].values()))}")
    lines.append(f"{inner}translation {_per_axis(axes, d['translation'])}")
    return lines


def _channel_line(ch: dict[str, Any], index: int, pad: str) -> str:
    w = ch["window"]
    window = " ".join(f"{k}={_num(w[k])}" for k in ("start", "end", "min", "max")
                      if w[k] is not None)
    colour = f"#{ch['color']}" if ch["color"] else "no colour"
    active = "" if ch["active"] else "  (inactive)"
    return (f"{pad}{index}: {ch['label'] or '(no label)'}  {colour}  "
            f"window {window or 'none'}{active}")


def image_lines(d: dict[str, Any], pad: str = "") -> list[str]:
    title = "Label image" if d["kind"] == "label-image" else "Image"
    inner = pad + "  "
    lines = [f"{pad}{title} {d['url']}",
             f"{inner}name {d['name']!r}  OME-NGFF {d['version']}  "
             f"multiscale {d['multiscale']} of {d['multiscale_count']}",
             f"{inner}axes " + ", ".join(
                 f"{a['name']} ({', '.join(str(v) for v in (a['type'], a['unit']) if v)})"
                 if a["type"] or a["unit"] else a["name"] for a in d["axes"]),
             f"{inner}levels ({len(d['levels'])})"]
    for level in d["levels"]:
        lines += _level_lines(level, d["axes"], inner + "  ")
    if d["channels"]:
        lines.append(f"{inner}channels ({len(d['channels'])})")
        lines += [_channel_line(ch, i, inner + "  ") for i, ch in enumerate(d["channels"])]
    if d["kind"] == "label-image":
        lines.append(f"{inner}label colours {d['label_colors']}  source {d['label_source']}")
    if "labels_error" in d:
        lines.append(f"{inner}labels: unreadable: {d['labels_error']}")
    elif d["labels"]:
        lines.append(f"{inner}labels ({len(d['labels'])})")
        lines += [f"{inner}  {name}: {lab['levels']} levels, shape {_dims(lab['shape'])} "
                  f"{lab['dtype']}" for name, lab in d["labels"].items()]
    return lines


def plate_grid(rows: list[str], columns: list[str], wells: list[str], pad: str) -> list[str]:
    """Rows × columns, ``#`` where a well exists, ``.`` where none does."""
    present = set(wells)
    width = max([len(c) for c in columns] + [1])
    label = max([len(r) for r in rows] + [1])
    lines = [pad + " " * label + " " + " ".join(c.rjust(width) for c in columns)]
    for r in rows:
        cells = " ".join(("#" if f"{r}/{c}" in present else ".").rjust(width) for c in columns)
        lines.append(f"{pad}{r.rjust(label)} {cells}")
    return lines


def plate_lines(d: dict[str, Any]) -> list[str]:
    lines = [f"Plate {d['url']}",
             f"  name {d['name']!r}  OME-NGFF {d['version']}  {len(d['rows'])} rows × "
             f"{len(d['columns'])} columns  {len(d['wells'])} wells  "
             f"field_count {d['field_count']}"]
    lines += plate_grid(d["rows"], d["columns"], d["wells"], "    ")
    if d["acquisitions"]:
        lines.append(f"  acquisitions ({len(d['acquisitions'])})")
        lines += [f"    {a['id']}: {a['name'] or '(no name)'}"
                  + (f"  max fields {a['maximum_field_count']}"
                     if a["maximum_field_count"] is not None else "")
                  for a in d["acquisitions"]]
    if "first_field" in d:
        first = d["first_field"]
        lines.append(f"  first field ({first['well']}, field {first['field']}):")
        lines += image_lines(first["image"], "    ")
    return lines


def well_lines(d: dict[str, Any]) -> list[str]:
    lines = [f"Well {d['url']}", f"  OME-NGFF {d['version']}  fields ({len(d['fields'])})"]
    lines += [f"    {f['index']}: {f['path']}"
              + (f"  acquisition {f['acquisition']}" if f["acquisition"] is not None else "")
              for f in d["fields"]]
    if "first_field" in d:
        lines.append("  field 0:")
        lines += image_lines(d["first_field"], "    ")
    return lines


def collection_lines(d: dict[str, Any]) -> list[str]:
    lines = [f"Collection {d['url']} (bioformats2raw layout {d['layout']})",
             f"  series ({len(d['series'])})"]
    lines += [f"    {s['index']}: {s['path']}" + (f"  {s['name']}" if s["name"] else "")
              for s in d["series"]]
    if "first_series" in d:
        lines.append("  series 0:")
        lines += image_lines(d["first_series"], "    ")
    return lines


def array_lines(d: dict[str, Any]) -> list[str]:
    lines = [f"Array {d['url']} (no OME-Zarr metadata)"]
    lines += _array_lines(d, "  ")
    lines.append(f"  fill value {d['fill_value']!r}")
    if d["dimension_names"]:
        lines.append(f"  dimension names {', '.join(str(n) for n in d['dimension_names'])}")
    return lines


def render(d: dict[str, Any]) -> str:
    kind = d["kind"]
    if kind in ("image", "label-image"):
        lines = image_lines(d)
    elif kind == "plate":
        lines = plate_lines(d)
    elif kind == "well":
        lines = well_lines(d)
    elif kind == "collection":
        lines = collection_lines(d)
    else:
        lines = array_lines(d)
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace, stdout: IO[str]) -> int:
    store = _open_store(args)
    d = describe(open_node(store, args), store.url)
    print(json.dumps(d, indent=2) if args.json else render(d), file=stdout)
    return 0


# -- read ------------------------------------------------------------------------------------

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


def slab_boxes(box: Box, grid: Sequence[int], itemsize: int, limit: int) -> list[Box]:
    """``box`` cut along its outermost axis that spans more than one grid cell, at grid
    boundaries, into slabs of at most ``limit`` bytes (at least one cell thick): each slab
    reads whole chunks (shards), none is read twice."""
    extents = [b - a for a, b in box]
    total = math.prod(extents) * itemsize
    if total <= limit:
        return [box]
    for axis, ((a, b), g) in enumerate(zip(box, grid)):
        if a // g != (b - 1) // g:
            break
    else:
        return [box]
    per_unit = total // extents[axis]  # bytes of a slab one element thick
    step = max(1, limit // (per_unit * grid[axis])) * grid[axis]
    out = []
    start = a
    while start < b:
        stop = min(b, (start // step + 1) * step)
        out.append(box[:axis] + ((start, stop),) + box[axis + 1:])
        start = stop
    return out


class Progress:
    """``[#####.....] 45% 1.2/2.7 GiB`` rewritten in place on a terminal stream; both sizes
    in the total's unit, so the numbers don't jump between units."""

    def __init__(self, stream: IO[str], total: int) -> None:
        self._stream = stream
        self._total = total
        self._unit = _unit_of(total)

    def update(self, done: int) -> None:
        fraction = done / self._total if self._total else 1.0
        filled = int(fraction * _BAR_WIDTH)
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        sizes = (f"{_in_unit(done, self._unit)}/{_in_unit(self._total, self._unit)} "
                 f"{_BYTE_UNITS[self._unit]}")
        self._stream.write(f"\r[{bar}] {int(fraction * 100):3d}% {sizes}")
        self._stream.flush()

    def finish(self) -> None:
        self._stream.write("\n")
        self._stream.flush()


def _wants_progress(args: argparse.Namespace, stderr: IO[str], nbytes: int) -> bool:
    """Asked for, or a large read on a terminal (a small one is over before a bar helps)."""
    if args.quiet:
        return False
    return bool(args.progress or (nbytes > args.slab_bytes and stderr.isatty()))


def read_into(array: Array, box: Box, out: np.ndarray, slab_bytes: int,
              progress: Progress | None) -> None:
    """Read ``box`` of ``array`` into ``out`` slab by slab."""
    origin = [a for a, _ in box]
    grid = array.shards or array.chunks
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
        read_into(array, box, out, slab_bytes, progress)
        out.flush()
    except BaseException:
        del out
        # a half-written file must not pass for the data
        os.remove(path)
        raise
    del out


def cmd_read(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    store = _open_store(args)
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
        shape = _dims([b - a for a, b in box])
        print(f"{args.output}: {what}, box {_box_text(box, names)}, shape {shape}, "
              f"{array.dtype}, {human_bytes(nbytes)}, {seconds:.3f} s", file=stdout)
    return 0


# -- validate --------------------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace, stdout: IO[str]) -> int:
    store = _open_store(args)
    try:
        problems = ngffcore.validate(store, zarr_format=args.zarr_format, strict=args.strict)
    except ImportError as exc:  # jsonschema is an optional dependency
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps([dataclasses.asdict(p) for p in problems], indent=2), file=stdout)
    else:
        for problem in problems:
            print(problem, file=stdout)
        errors = sum(p.severity == "error" for p in problems)
        print(f"{store.url}: {errors} error(s), {len(problems) - errors} warning(s)"
              if problems else f"{store.url}: no problems found", file=stdout)
    # warnings flag what is legal but suspect: they fail only when asked to
    failing = [p for p in problems if p.severity == "error" or args.fail_on_warning]
    return 1 if failing else 0


# -- entry point -----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse printed them
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 2
    stdout, stderr = sys.stdout, sys.stderr
    try:
        if args.command == "info":
            return cmd_info(args, stdout)
        if args.command == "read":
            return cmd_read(args, stdout, stderr)
        if args.command == "bench":
            from ngffcore.cli.bench import cmd_bench

            return cmd_bench(args, stdout, stderr)
        return cmd_validate(args, stdout)
    except (NgffError, CliError) as exc:
        print(f"ngffcore {args.command}: error: {exc}", file=stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ngffcore {args.command}: interrupted", file=stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`ngffcore info … | head`): no traceback, and no second
        # error when Python flushes stdout at exit; 141 is what a shell reports for SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


__all__ = ["main", "build_parser"]
