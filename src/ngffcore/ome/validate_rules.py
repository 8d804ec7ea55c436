"""The problems :func:`ngffcore.validate` reports (:class:`Problem`) and the semantic rules
of the OME-NGFF specification that its JSON schemas cannot express: axis counts and order,
transformation kinds and lengths, level shapes, dtypes and dimension names, omero windows
and colours, label values, plate rows, columns, wells and acquisitions, well fields.

:class:`Rules` collects the problems; each rule checks one piece of metadata already read
(by ``ome/validate.py``, which does the reading and decides what applies) and never reads
anything itself.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ngffcore.errors import MetadataError
from ngffcore.limits import MAX_JSON_DEPTH
from ngffcore.zarr.metadata import nests_deeper

Severity = Literal["error", "warning"]

_HEX_COLOR = re.compile(r"[0-9A-Fa-f]{6}")


@dataclass(frozen=True)
class Problem:
    """One problem found by :func:`validate`.

    ``path``: the metadata object it is in, relative to the validated location
    (``"zarr.json"``, ``".zattrs"``, ``"s1/.zarray"``). ``rule``: ``"schema"`` for the
    official JSON schema, else the name of the rule (``"axes-order"``, ``"level-shapes"``,
    …). ``severity``: ``"error"`` or ``"warning"`` (see :mod:`ngffcore.ome.validate`).
    """

    path: str
    message: str
    rule: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.severity}: {self.message} [{self.rule}]"


@dataclass(frozen=True)
class LevelDoc:
    """What a level's array document says, as far as it can be made out."""

    index: int
    path: str
    key: str
    shape: tuple[int, ...] | None
    dtype: np.dtype | None
    dimension_names: tuple[Any, ...] | None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer())


def _duplicates(values: Iterable[Any]) -> list[tuple[Any, int]]:
    counts = Counter(v for v in values if isinstance(v, (str, int, float)))
    return [(v, n) for v, n in counts.items() if n > 1]


def count_of(n: int, noun: str) -> str:
    """``count_of(1, "axis")`` → "1 axis", ``count_of(2, "axis")`` → "2 axes"."""
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun[:-2] + 'es' if noun.endswith('is') else noun + 's'}"


def _describe_axes(axes: Sequence[dict[str, Any]]) -> str:
    return ", ".join(f"{a.get('name')} ({a.get('type') or 'untyped'})" for a in axes)


def _axis_rank(axis_type: Any) -> int:
    # the spec's order: time, then channel or custom (or untyped), then space
    return 0 if axis_type == "time" else 2 if axis_type == "space" else 1


class Rules:
    """The problems found so far, and the rules that add to them."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.key = ""  # the group's attribute document, the default place of a problem

    def add(self, rule: str, message: str, *, path: str | None = None,
            severity: Severity = "error") -> None:
        problem = Problem(self.key if path is None else path, message, rule, severity)
        if problem not in self.problems:
            self.problems.append(problem)

    def load_json(self, raw: Any, key: str) -> dict[str, Any] | None:
        """A metadata document, or None after recording why it is unusable."""
        text = raw if isinstance(raw, (bytes, bytearray, str)) else bytes(raw)
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:  # ValueError: also a >4300-digit int
            self.add("json", f"not valid JSON: {exc}", path=key)
            return None
        if not isinstance(doc, dict):
            self.add("json", f"is not a JSON object but {type(doc).__name__}", path=key)
            return None
        if nests_deeper(doc, text, MAX_JSON_DEPTH):
            # the schema check recurses through the document: refused before it
            self.add("json", f"nests deeper than {MAX_JSON_DEPTH} levels", path=key)
            return None
        return doc

    # -- multiscales --------------------------------------------------------------------------
    def check_axes(self, axes: list[dict[str, Any]], where: str) -> None:
        types = [a.get("type") for a in axes]
        n_space, n_time = types.count("space"), types.count("time")
        other = [a for a in axes if a.get("type") not in ("space", "time")]
        if not 2 <= len(axes) <= 5:
            self.add("axes-count", f"{where}: {count_of(len(axes), 'axis')}; an image has 2 to 5")
        if not 2 <= n_space <= 3:
            self.add("axes-count", f"{where}: {count_of(n_space, 'space axis')}; an image has 2 "
                     "or 3")
        if n_time > 1:
            self.add("axes-count", f"{where}: {n_time} time axes; at most one is allowed")
        if len(other) > 1:
            self.add("axes-count", f"{where}: {len(other)} channel or custom axes "
                     f"({_describe_axes(other)}); at most one is allowed")
        ranks = [_axis_rank(t) for t in types]
        if ranks != sorted(ranks):
            self.add("axes-order", f"{where}: axes {_describe_axes(axes)} are out of order; "
                     "the order is time, then channel or custom, then space")
        for name, count in _duplicates(a.get("name") for a in axes):
            self.add("axes-names", f"{where}: axis name {name!r} is used {count} times; "
                     "names must be unique")

    def check_transforms(self, transforms: list[Any], where: str, n_axes: int | None) -> None:
        kinds = [t.get("type") if isinstance(t, dict) else None for t in transforms]
        n_scale = kinds.count("scale")
        if n_scale != 1:
            self.add("transforms", f"{where}: {count_of(n_scale, 'scale transformation')}; "
                     "exactly one is required")
        elif kinds.index("scale") != 0:
            self.add("transforms", f"{where}: {kinds[0]!r} comes before the scale; the scale "
                     "must be first (a translation is in physical units, after the scale)")
        if kinds.count("translation") > 1:
            self.add("transforms", f"{where}: {kinds.count('translation')} translations; at "
                     "most one is allowed")
        others = [k for k in kinds if k not in ("scale", "translation")]
        if others:
            self.add("transforms", f"{where}: only scale and translation are allowed here, "
                     f"not {others}")
        if n_axes is None:
            return
        for j, t in enumerate(transforms):
            kind = kinds[j]
            values = t.get(kind) if kind in ("scale", "translation") else None
            if isinstance(values, list) and len(values) != n_axes:
                self.add("transforms-length", f"{where}[{j}]: {kind} has "
                         f"{count_of(len(values), 'value')} for {count_of(n_axes, 'axis')}")

    # -- levels -------------------------------------------------------------------------------
    def check_levels(self, levels: list[LevelDoc], axes: list[dict[str, Any]] | None,
                     zarr_format: int, is_label: bool, *, dimension_names: bool = True
                     ) -> None:
        """Level ndim against the axes, dimension_names (v3, unless ``dimension_names`` is
        False), shapes non-increasing, one dtype, integer labels."""
        names = [a.get("name") for a in axes] if axes is not None else None
        for level in levels:
            if level.shape is None:
                continue
            if names is not None and len(level.shape) != len(names):
                self.add("level-ndim", f"level {level.index} ({level.path!r}) has "
                         f"{count_of(len(level.shape), 'dimension')}; the multiscale has "
                         f"{count_of(len(names), 'axis')}",
                         path=level.key)
            elif (names is not None and zarr_format == 3 and dimension_names
                  and all(isinstance(n, str) for n in names)):
                if level.dimension_names is None:
                    self.add("dimension-names", f"no dimension_names; OME-Zarr 0.5 wants the "
                             f"axes names {names}", path=level.key, severity="warning")
                elif list(level.dimension_names) != names:
                    self.add("dimension-names", f"dimension_names {list(level.dimension_names)} "
                             f"do not match the axes names {names}", path=level.key)
        shaped = [lv for lv in levels if lv.shape is not None]
        for prev, level in zip(shaped, shaped[1:]):
            assert prev.shape is not None and level.shape is not None
            if len(prev.shape) != len(level.shape):
                continue
            larger = [d for d, (a, b) in enumerate(zip(prev.shape, level.shape)) if b > a]
            if larger:
                along = ", ".join(str(names[d]) if names and len(names) == len(level.shape)
                                  else f"dimension {d}" for d in larger)
                self.add("level-shapes", f"level {level.index} ({level.path!r}) shape "
                         f"{list(level.shape)} is larger than level {prev.index} shape "
                         f"{list(prev.shape)} along {along}; levels go from largest to "
                         "smallest", path=level.key)
            elif level.shape == prev.shape:
                self.add("level-shapes", f"level {level.index} ({level.path!r}) has the same "
                         f"shape {list(level.shape)} as level {prev.index}: not downsampled",
                         path=level.key, severity="warning")
        typed = [lv for lv in levels if lv.dtype is not None]
        if not typed:
            return
        base = typed[0]
        assert base.dtype is not None
        for level in typed[1:]:
            assert level.dtype is not None
            # byte order is a storage detail (v2), not a different type
            if (level.dtype.kind, level.dtype.itemsize) != (base.dtype.kind,
                                                            base.dtype.itemsize):
                self.add("level-dtype", f"level {level.index} ({level.path!r}) has dtype "
                         f"{_dtype_name(level.dtype)}, level {base.index} has "
                         f"{_dtype_name(base.dtype)}; all levels have the same dtype",
                         path=level.key)
        if is_label and base.dtype.kind not in "iu":
            self.add("label-dtype", f"label image level {base.index} has dtype "
                     f"{_dtype_name(base.dtype)}; label images have an integer dtype "
                     "(int8 to uint64)", path=base.key)

    # -- other metadata -----------------------------------------------------------------------
    def check_omero(self, omero: dict[str, Any], where: str,
                    axes: list[dict[str, Any]] | None, level0: LevelDoc | None) -> None:
        channels = omero.get("channels")
        if not isinstance(channels, list):
            return
        for j, channel in enumerate(channels):
            if not isinstance(channel, dict):
                continue
            window = channel.get("window")
            if isinstance(window, dict):
                for low, high in (("start", "end"), ("min", "max")):
                    a: Any = window.get(low)
                    b: Any = window.get(high)
                    if _is_number(a) and _is_number(b) and a > b:
                        self.add("omero-window", f"{where}.channels[{j}].window: {low} {a} is "
                                 f"above {high} {b}", severity="warning")
            color = channel.get("color")
            if isinstance(color, str) and not _HEX_COLOR.fullmatch(color):
                self.add("omero-color", f"{where}.channels[{j}].color {color!r} is not an "
                         "RRGGBB hex color", severity="warning")
        if axes is None or level0 is None or level0.shape is None:
            return
        if len(level0.shape) != len(axes):
            return
        c = next((d for d, a in enumerate(axes) if a.get("type") == "channel"), None)
        size = 1 if c is None else level0.shape[c]
        if len(channels) != size:
            axis = "no channel axis" if c is None else \
                f"the channel axis {axes[c].get('name')!r} has size {size}"
            self.add("omero-channels", f"{where}.channels lists {len(channels)} channels but "
                     f"{axis}", severity="warning")

    def check_image_label(self, label: dict[str, Any], where: str, has_multiscales: bool
                          ) -> None:
        if not has_multiscales:
            self.add("label-image", f"{where}: a label image is a multiscale image, but the "
                     "group has no multiscales")
        for key in ("colors", "properties"):
            entries = label.get(key)
            if not isinstance(entries, list):
                continue
            values: list[int] = []
            for j, entry in enumerate(entries):
                value: Any = entry.get("label-value") if isinstance(entry, dict) else None
                if not _is_number(value):
                    continue
                if _is_int(value):
                    values.append(int(value))
                else:
                    self.add("label-values", f"{where}.{key}[{j}].label-value {value!r} is not "
                             "an integer pixel value")
            for value, count in _duplicates(values):
                self.add("label-values", f"{where}.{key}: label-value {value} appears {count} "
                         "times; label values must be unique")

    def check_plate(self, plate: dict[str, Any], where: str) -> None:
        names: dict[str, list[Any]] = {}
        for key in ("rows", "columns"):
            entries = plate.get(key)
            names[key] = [e.get("name") if isinstance(e, dict) else None
                          for e in entries] if isinstance(entries, list) else []
            for name, count in _duplicates(names[key]):
                self.add("plate-names", f"{where}.{key}: name {name!r} is used {count} times; "
                         "names must be unique")
        wells = plate.get("wells")
        if isinstance(wells, list):
            for j, well in enumerate(wells):
                if isinstance(well, dict):
                    self.check_well_entry(well, f"{where}.wells[{j}]", names)
            for path, count in _duplicates(w.get("path") for w in wells if isinstance(w, dict)):
                self.add("plate-wells", f"{where}.wells: path {path!r} is listed {count} times")
        acquisitions = plate.get("acquisitions")
        if isinstance(acquisitions, list):
            ids = [a.get("id") for a in acquisitions if isinstance(a, dict)]
            for ident, count in _duplicates(i for i in ids if _is_number(i)):
                self.add("plate-acquisitions", f"{where}.acquisitions: id {ident!r} is used "
                         f"{count} times; ids must be unique")

    def check_well_entry(self, well: dict[str, Any], where: str,
                         names: dict[str, list[Any]]) -> None:
        picked = []
        for index_key, list_key in (("rowIndex", "rows"), ("columnIndex", "columns")):
            index = well.get(index_key)
            if not (isinstance(index, int) and not isinstance(index, bool)):
                return
            if not 0 <= index < len(names[list_key]):
                self.add("plate-wells", f"{where}: {index_key} {index} is outside the "
                         f"{len(names[list_key])} {list_key} of the plate")
                return
            picked.append(names[list_key][index])
        path = well.get("path")
        expected = f"{picked[0]}/{picked[1]}"
        if isinstance(path, str) and all(isinstance(n, str) for n in picked) and path != expected:
            self.add("plate-wells", f"{where}: path {path!r} does not match rowIndex "
                     f"{well['rowIndex']} and columnIndex {well['columnIndex']}, which name "
                     f"{expected!r}")

    def check_well(self, well: dict[str, Any], where: str) -> None:
        images = well.get("images")
        if isinstance(images, list):
            paths = [i.get("path") for i in images if isinstance(i, dict)]
            for path, count in _duplicates(paths):
                self.add("well-images", f"{where}.images: path {path!r} is listed {count} "
                         "times; field paths must be unique")


def error_text(exc: MetadataError, key: str) -> str:
    """An ngffcore error's message without the location it starts with (the Problem's path
    already says it)."""
    text = str(exc)
    return text[len(key) + 2:] if text.startswith(f"{key}: ") else text


def _dtype_name(dtype: np.dtype) -> str:
    return dtype.name if dtype.byteorder in "=|" else dtype.str


def raw_level(index: int, path: str, key: str, doc: dict[str, Any], zarr_format: int
               ) -> LevelDoc:
    """Shape, dtype and dimension names read straight from an array document that ngffcore
    cannot open (each None when it cannot be made out)."""
    shape: Any = doc.get("shape")
    ok_shape = isinstance(shape, list) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    name = doc.get("dtype" if zarr_format == 2 else "data_type")
    try:
        # np.dtype(None) would be float64: only a named type counts
        dtype: np.dtype | None = np.dtype(name) if isinstance(name, str) else None
    except (TypeError, ValueError):
        dtype = None
    names = doc.get("dimension_names")
    return LevelDoc(index, path, key, tuple(shape) if ok_shape else None, dtype,
                  tuple(names) if isinstance(names, list) else None)


__all__ = ["Problem", "Severity", "Rules", "LevelDoc", "count_of", "error_text", "raw_level"]
