"""``ngffcore info``: what ``ngffcore.open`` finds at a location (image, plate, well,
collection, or a plain array) as a text tree or as JSON. Both come from one description
(the ``describe_*`` functions), so they never disagree. Both end with the ``ngffcore
render`` command that draws a thumbnail of the image (the text as a last ``thumbnail:`` line,
the JSON as its ``thumbnail`` key).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Sequence
from typing import IO, Any

import numpy as np

from ngffcore.cli.common import Node, dims_text, human_bytes, open_location, open_node
from ngffcore.cli.render import thumbnail_command
from ngffcore.errors import NgffError
from ngffcore.ome.collection import Collection, Plate, Well
from ngffcore.ome.image import Image, LabelImage, Level
from ngffcore.zarr.array import Array


def add_info_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``info`` on the ``ngffcore`` command's subparsers."""
    info = sub.add_parser("info", parents=[common], help="describe what is at LOCATION")
    info.add_argument("--json", action="store_true", help="print the description as JSON")


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


def _per_axis(axes: Sequence[dict[str, Any]], values: Sequence[float]) -> str:
    return ", ".join(f"{axis['name']}={_num(value)}"
                     + (f" {axis['unit']}" if axis["unit"] else "")
                     for axis, value in zip(axes, values))


def _array_lines(d: dict[str, Any], pad: str) -> list[str]:
    return [f"{pad}shape {dims_text(d['shape'])}  {d['dtype']}  {human_bytes(d['nbytes'])}",
            f"{pad}chunks {dims_text(d['chunks'])}  shards {dims_text(d['shards'])}  "
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
        lines += [f"{inner}  {name}: {lab['levels']} levels, shape {dims_text(lab['shape'])} "
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


def _members(head: list[str], items: list[str], first: dict[str, Any] | None,
             title: str) -> list[str]:
    """A container's heading, its members one per line, then its first image in full."""
    lines = head + [f"    {item}" for item in items]
    if first is not None:
        lines.append(f"  {title}:")
        lines += image_lines(first, "    ")
    return lines


def well_lines(d: dict[str, Any]) -> list[str]:
    return _members(
        [f"Well {d['url']}", f"  OME-NGFF {d['version']}  fields ({len(d['fields'])})"],
        [f"{f['index']}: {f['path']}"
         + (f"  acquisition {f['acquisition']}" if f["acquisition"] is not None else "")
         for f in d["fields"]],
        d.get("first_field"), "field 0")


def collection_lines(d: dict[str, Any]) -> list[str]:
    return _members(
        [f"Collection {d['url']} (bioformats2raw layout {d['layout']})",
         f"  series ({len(d['series'])})"],
        [f"{s['index']}: {s['path']}" + (f"  {s['name']}" if s["name"] else "")
         for s in d["series"]],
        d.get("first_series"), "series 0")


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


def thumbnail(d: dict[str, Any], args: argparse.Namespace) -> str | None:
    """The ``ngffcore render`` command that draws the coarsest level of the image ``d``
    describes (a container's first image, chosen with ``--field``/``--series``); None for a
    plain array, an empty container, or an image without y and x axes."""
    choice: list[str] = []
    image: dict[str, Any] | None = d
    if d["kind"] == "plate":
        first = d.get("first_field")
        image = first and first["image"]
        choice = [] if first is None else ["--field", f"{first['well']}/{first['field']}"]
    elif d["kind"] == "well":
        image, choice = d.get("first_field"), ["--field", "0"]
    elif d["kind"] == "collection":
        image, choice = d.get("first_series"), ["--series", "0"]
    elif d["kind"] not in ("image", "label-image"):
        image = None
    if image is None or not {"y", "x"} <= {a["name"].lower() for a in image["axes"]}:
        return None
    return thumbnail_command(args, image["name"], choice)


def cmd_info(args: argparse.Namespace, stdout: IO[str]) -> int:
    store = open_location(args)
    d = describe(open_node(store, args), store.url)
    command = thumbnail(d, args)
    if args.json:
        if command is not None:
            d["thumbnail"] = command
        print(json.dumps(d, indent=2), file=stdout)
    else:
        # last, so `ngffcore info LOCATION | tail -1` is the command
        print(render(d) + ("" if command is None else f"\nthumbnail: {command}"), file=stdout)
    return 0
