"""OME-NGFF metadata written by ngffcore (0.4 and 0.5): axes from names or dicts, the pyramid
plan (levels, factors, per-level transforms), and the documents — multiscales, omero,
labels, image-label, plate and well — as the spec lays them out.

Everything here is I/O-free and checks its input: bad axes, factors or transforms raise
``ArgumentError`` before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ngffcore.errors import ArgumentError
from ngffcore.ome.multiscales import Axis

#: the axis names whose type ngffcore infers (anything else needs an explicit dict)
AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
VERSIONS = ("0.4", "0.5")
METHODS = ("mean", "gaussian", "nearest", "mode")
#: a default pyramid stops once every spatial axis is at most this many pixels
DEFAULT_MIN_SIZE = 256
#: channel colours used when none are given (omero: RRGGBB)
DEFAULT_COLORS = ("FFFFFF", "00FF00", "FF00FF", "00FFFF", "FFFF00", "FF0000", "0000FF")


def parse_axes(axes: Any, ndim: int, units: Any = None) -> tuple[Axis, ...]:
    """``axes`` ("tczyx", a list of names, or a list of ``{name, type, unit}`` dicts) as
    :class:`Axis` objects, one per dimension of the data, with ``units`` (a dict axis →
    unit, or a per-axis list) applied."""
    if isinstance(axes, str):
        items: list[Any] = list(axes)
    elif isinstance(axes, Sequence):
        items = list(axes)
    else:
        raise ArgumentError(f"axes must be a string of axis names or a list, not {axes!r}")
    if len(items) != ndim:
        raise ArgumentError(f"{len(items)} axes {axes!r} for data of {ndim} dimensions")
    out = []
    for item in items:
        if isinstance(item, str):
            if item not in AXIS_TYPES:
                raise ArgumentError(f"unknown axis name {item!r} (known: "
                                    f"{', '.join(AXIS_TYPES)}; give other axes as "
                                    "{'name': ..., 'type': ...} dicts)")
            out.append(Axis(item, AXIS_TYPES[item], None))
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            kind = item.get("type", AXIS_TYPES.get(item["name"]))
            if kind is not None and not isinstance(kind, str):
                raise ArgumentError(f"axis type {kind!r} must be a string")
            unit = item.get("unit")
            if unit is not None and not isinstance(unit, str):
                raise ArgumentError(f"axis unit {unit!r} must be a string")
            out.append(Axis(item["name"], kind, unit))
        else:
            raise ArgumentError(f"axis {item!r} is neither a name nor a {{name, type, unit}} "
                                "dict")
    names = [a.name for a in out]
    if len(set(names)) != len(names):
        raise ArgumentError(f"axis names {names} repeat")
    if units is not None:
        if isinstance(units, Mapping):
            unknown = set(units) - set(names)
            if unknown:
                raise ArgumentError(f"units for unknown axes {sorted(unknown)}")
            out = [Axis(a.name, a.type, units.get(a.name, a.unit)) for a in out]
        else:
            units = list(units)
            if len(units) != ndim:
                raise ArgumentError(f"{len(units)} units for {ndim} axes")
            out = [Axis(a.name, a.type, u if u is not None else a.unit)
                   for a, u in zip(out, units)]
    return tuple(out)


def axes_json(axes: Sequence[Axis]) -> list[dict[str, Any]]:
    out = []
    for a in axes:
        entry: dict[str, Any] = {"name": a.name}
        if a.type is not None:
            entry["type"] = a.type
        if a.unit is not None:
            entry["unit"] = a.unit
        out.append(entry)
    return out


def _floats(value: Any, ndim: int, what: str, default: float) -> tuple[float, ...]:
    if value is None:
        return (default,) * ndim
    try:
        items = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ArgumentError(f"{what} {value!r} must be a list of numbers") from None
    if len(items) != ndim or not all(math.isfinite(v) for v in items):
        raise ArgumentError(f"{what} {value!r} must hold {ndim} finite numbers")
    return items


@dataclass(frozen=True)
class Pyramid:
    """Shapes, factors (per step, relative to the previous level) and composed transforms of
    every level; level n+1 has shape ceil(shape_n / factor_n)."""

    shapes: tuple[tuple[int, ...], ...]
    factors: tuple[tuple[int, ...], ...]
    scales: tuple[tuple[float, ...], ...]
    translations: tuple[tuple[float, ...], ...]


def _default_step(shape: tuple[int, ...], axes: Sequence[Axis],
                  scale: tuple[float, ...]) -> tuple[int, ...]:
    """2 on y and x; on z only where z's current pixel size is at most y's pixel size after
    the step (so levels become isotropic, then shrink together); 1 on axes of length 1 and
    on non-spatial axes."""
    names = [a.name for a in axes]
    out = [1] * len(shape)
    y_after = None
    for d, a in enumerate(axes):
        if a.is_spatial and a.name in ("y", "x") and shape[d] > 1:
            out[d] = 2
            if a.name == "y":
                y_after = scale[d] * 2
    if "z" in names:
        d = names.index("z")
        ref = y_after if y_after is not None else math.inf
        if shape[d] > 1 and scale[d] <= ref:
            out[d] = 2
    for d, a in enumerate(axes):  # other spatial axes (custom names): like y/x
        if a.is_spatial and a.name not in ("x", "y", "z") and shape[d] > 1:
            out[d] = 2
    return tuple(out)


def plan_pyramid(shape: tuple[int, ...], axes: Sequence[Axis], scale: Any = None,
                 translation: Any = None, levels: Any = None, factors: Any = None
                 ) -> Pyramid:
    """The levels to write (see ``write_image``): ``factors`` one per-axis integer factor
    list per step, or defaults; ``levels`` including level 0, or until every spatial axis
    is at most DEFAULT_MIN_SIZE pixels or no axis would shrink."""
    ndim = len(shape)
    sc = _floats(scale, ndim, "scale", 1.0)
    if any(v <= 0 for v in sc):
        raise ArgumentError(f"scale {list(sc)} must be positive")
    tr = _floats(translation, ndim, "translation", 0.0)
    if levels is not None and (isinstance(levels, bool) or not isinstance(levels, int)
                               or levels < 1):
        raise ArgumentError(f"levels must be an integer >= 1, not {levels!r}")
    steps: list[tuple[int, ...]] = []
    if factors is not None:
        if not isinstance(factors, Sequence) or isinstance(factors, str):
            raise ArgumentError(f"factors must be a list of per-axis factor lists, not "
                                f"{factors!r}")
        for step in factors:
            if (not isinstance(step, Sequence) or len(step) != ndim
                    or not all(isinstance(f, (int, np.integer)) and not isinstance(f, bool)
                               and f >= 1 for f in step)):
                raise ArgumentError(f"factor {step!r} must hold {ndim} integers >= 1")
            steps.append(tuple(int(f) for f in step))
        if levels is not None and levels != len(steps) + 1:
            raise ArgumentError(f"levels={levels} but {len(steps)} factor steps (levels = "
                                "steps + 1)")
    shapes = [tuple(int(s) for s in shape)]
    scales = [sc]
    translations = [tr]
    k = 0
    while True:
        cur = shapes[-1]
        if factors is not None:
            if k >= len(steps):
                break
            step = steps[k]
        else:
            spatial = [cur[d] for d, a in enumerate(axes) if a.is_spatial]
            if levels is not None:
                if len(shapes) >= levels:
                    break
            elif not spatial or max(spatial) <= DEFAULT_MIN_SIZE:
                break
            step = _default_step(cur, axes, scales[-1])
            if all(f == 1 for f in step):
                break
            steps.append(step)
        shapes.append(tuple(-(-s // f) for s, f in zip(cur, step)))
        prev_sc, prev_tr = scales[-1], translations[-1]
        scales.append(tuple(s * f for s, f in zip(prev_sc, step)))
        translations.append(tuple(t + (f - 1) / 2 * s
                                  for t, f, s in zip(prev_tr, step, prev_sc)))
        k += 1
    return Pyramid(tuple(shapes), tuple(steps), tuple(scales), tuple(translations))


def parse_grid(value: Any, what: str, ndim: int | None = None) -> tuple[int, ...] | None:
    """A chunk or shard shape argument: None, or integers >= 1 (``ndim`` of them when
    given); ArgumentError otherwise."""
    if value is None:
        return None
    try:
        items = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ArgumentError(f"{what} {value!r} must be a list of integers") from None
    if not items or any(v < 1 for v in items) or (ndim is not None and len(items) != ndim):
        count = f"{ndim} " if ndim is not None else ""
        raise ArgumentError(f"{what} {value!r} must hold {count}integers >= 1")
    return items


def clip_grids(chunks: tuple[int, ...], shards: tuple[int, ...] | None,
               shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """A level's chunks (clipped to its shape) and shards (clipped to the shape rounded up
    to whole chunks: still a multiple of them), from level 0's."""
    c = tuple(max(1, min(ck, n)) for ck, n in zip(chunks, shape))
    if shards is None:
        return c, None
    return c, tuple(min(sk, -(-max(n, 1) // ck) * ck) for sk, ck, n in zip(shards, c, shape))


def multiscale_json(axes: Sequence[Axis], pyramid: Pyramid, method: str, name: str | None,
                    version: str) -> dict[str, Any]:
    """One ``multiscales`` entry: datasets "0", "1", … with scale (+ translation where any
    is non-zero) transforms, ``type`` the downsampling method."""
    datasets = []
    for k, (sc, tr) in enumerate(zip(pyramid.scales, pyramid.translations)):
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": list(sc)}]
        if any(t != 0 for t in tr):
            transforms.append({"type": "translation", "translation": list(tr)})
        datasets.append({"path": str(k), "coordinateTransformations": transforms})
    entry: dict[str, Any] = {"axes": axes_json(axes), "datasets": datasets, "type": method,
                             "metadata": {"method": f"ngffcore.{method}",
                                          "factors": [list(f) for f in pyramid.factors]}}
    if name is not None:
        entry["name"] = name
    if version == "0.4":
        entry = {"version": "0.4", **entry}
    return entry


def omero_json(channels: Any, n_channels: int, dtype: np.dtype,
               ranges: Mapping[int, tuple[float, float]], version: str) -> dict[str, Any]:
    """omero for ``n_channels`` channels: the given channel dicts (label, color, window,
    active), completed by defaults whose windows span ``ranges[i]`` (channel i's range in
    the data)."""
    every = list(ranges.values())
    overall = (min(r[0] for r in every), max(r[1] for r in every)) if every else (0.0, 1.0)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = float(info.min), float(info.max)
    elif dtype.kind == "b":
        lo, hi = 0.0, 1.0
    else:
        lo, hi = overall
    out = []
    given = list(channels) if channels is not None else []
    if channels is not None and len(given) != n_channels:
        raise ArgumentError(f"{len(given)} channels for {n_channels} in the data")
    for i in range(n_channels):
        start, end = ranges.get(i, overall)
        ch: dict[str, Any] = {"label": f"Channel {i}", "color": DEFAULT_COLORS[
            i % len(DEFAULT_COLORS)] if n_channels > 1 else "FFFFFF", "active": True,
            "coefficient": 1, "family": "linear", "inverted": False,
            "window": {"min": lo, "max": hi, "start": float(start), "end": float(end)}}
        if i < len(given):
            if not isinstance(given[i], Mapping):
                raise ArgumentError(f"channel {given[i]!r} must be a dict")
            user = dict(given[i])
            window = {**ch["window"], **dict(user.pop("window", {}) or {})}
            ch.update(user)
            ch["window"] = window
        out.append(ch)
    omero: dict[str, Any] = {"channels": out, "rdefs": {"model": "color"}}
    if version == "0.4":
        omero["version"] = "0.4"
    return omero


def image_attributes(multiscale: dict[str, Any], omero: dict[str, Any] | None, version: str,
                     extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The group attributes of an image: 0.5 under ``ome`` with the version; 0.4 at the
    top."""
    ome: dict[str, Any] = dict(extra or {})
    ome["multiscales"] = [multiscale]
    if omero is not None:
        ome["omero"] = omero
    return {"ome": {"version": "0.5", **ome}} if version == "0.5" else ome


def ome_attributes(content: Mapping[str, Any], version: str) -> dict[str, Any]:
    """Any OME content (labels, plate, well) as group attributes of ``version``."""
    return {"ome": {"version": "0.5", **content}} if version == "0.5" else dict(content)


def image_label_json(colors: Any, properties: Any, version: str) -> dict[str, Any]:
    """``image-label``: colours ``{value: [r, g, b, a]}``, properties (dicts with
    "label-value"), the source image two levels up."""
    out: dict[str, Any] = {"source": {"image": "../../"}}
    if version == "0.4":
        out["version"] = "0.4"
    if colors is not None:
        if not isinstance(colors, Mapping):
            raise ArgumentError(f"colors must be a dict label value → [r, g, b, a], not "
                                f"{colors!r}")
        entries = []
        for value, rgba in colors.items():
            rgba_list = list(rgba)
            if (not isinstance(value, (int, np.integer)) or len(rgba_list) != 4
                    or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255
                               for c in rgba_list)):
                raise ArgumentError(f"color {value!r}: {rgba!r} must be an integer label "
                                    "→ four integers 0..255")
            entries.append({"label-value": int(value), "rgba": [int(c) for c in rgba_list]})
        out["colors"] = entries
    if properties is not None:
        props = list(properties)
        if not all(isinstance(p, Mapping) and "label-value" in p for p in props):
            raise ArgumentError("properties must be dicts with a 'label-value'")
        out["properties"] = [dict(p) for p in props]
    return out


__all__ = ["AXIS_TYPES", "METHODS", "Pyramid", "VERSIONS", "axes_json", "clip_grids", "parse_grid", "image_attributes",
           "image_label_json", "multiscale_json", "ome_attributes", "omero_json", "parse_axes",
           "plan_pyramid"]
