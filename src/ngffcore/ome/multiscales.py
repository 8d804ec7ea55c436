"""OME-NGFF metadata → frozen descriptions: multiscales, axes, transforms, omero channels,
image-label, plate and well. Pure parsing: no I/O, no arrays.

Tolerant where ome-zarr-py is tolerant (missing optional fields, 0.1–0.3 layouts, extra keys);
a :class:`MetadataError` naming the document where the data can't be interpreted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ngffcore.errors import MetadataError, UnsupportedError
from ngffcore.limits import KNOWN_VERSIONS, MAX_LEVELS

if TYPE_CHECKING:  # the 0.6 model imports Axis from here: no import cycle at run time
    from ngffcore.ome.multiscales_06 import ImageSpace
    from ngffcore.ome.transforms import Transform

_SPACE_NAMES = ("x", "y", "z")
#: the 5-D axes of OME-NGFF 0.1 and 0.2, which did not write axes
_AXES_V01 = ("t", "c", "z", "y", "x")


@dataclass(frozen=True)
class Axis:
    """One image axis. ``type`` is "space", "time", "channel", another string, or None;
    ``unit`` is e.g. "micrometer" or None."""

    name: str
    type: str | None = None
    unit: str | None = None

    @property
    def is_spatial(self) -> bool:
        return self.type == "space" or (self.type is None and self.name.lower() in _SPACE_NAMES)


@dataclass(frozen=True)
class Dataset:
    """One level as the multiscale describes it: its path and composed transform (None
    while the level shapes are needed to infer it, for 0.1–0.3; None for a 0.6 level whose
    transform is not scale + translation). ``transform`` (0.6): the level's transform from
    array indices to the intrinsic coordinate system as parsed; None before 0.6 (the
    :class:`Level` builds it from scale and translation on first use)."""

    path: str
    scale: tuple[float, ...] | None
    translation: tuple[float, ...] | None
    transform: Transform | None = None


@dataclass(frozen=True)
class Multiscale:
    """One entry of ``multiscales``."""

    index: int
    version: str | None
    name: str | None
    type: str | None
    axes: tuple[Axis, ...]
    datasets: tuple[Dataset, ...]
    raw: dict[str, Any]
    #: coordinate systems, the intrinsic one's name and the multiscale's own transforms
    #: (0.6; before 0.6 one system named "intrinsic" holding ``axes``)
    space: ImageSpace


@dataclass(frozen=True)
class Window:
    """An omero rendering window; any field absent in the metadata is None."""

    start: float | None = None
    end: float | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Channel:
    """One omero channel: ``color`` is "RRGGBB" (upper case) or None."""

    label: str | None = None
    color: str | None = None
    window: Window = Window()
    active: bool = True
    inverted: bool = False
    coefficient: float = 1.0
    family: str | None = None


@dataclass(frozen=True)
class LabelInfo:
    """``image-label``: label value → RGBA colour, label value → properties, source."""

    colors: dict[int, tuple[int, int, int, int]]
    properties: dict[int, dict[str, Any]]
    source: dict[str, Any] | None
    version: str | None


@dataclass(frozen=True)
class PlateWell:
    """One well of a plate: ``path`` is "row/column"."""

    path: str
    row: str
    column: str
    row_index: int
    column_index: int


@dataclass(frozen=True)
class Acquisition:
    id: int
    name: str | None = None
    maximum_field_count: int | None = None
    description: str | None = None
    start_time: int | None = None
    end_time: int | None = None


@dataclass(frozen=True)
class PlateInfo:
    version: str | None
    name: str | None
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    wells: tuple[PlateWell, ...]
    acquisitions: tuple[Acquisition, ...]
    field_count: int | None


@dataclass(frozen=True)
class WellImage:
    path: str
    acquisition: int | None = None


@dataclass(frozen=True)
class WellInfo:
    version: str | None
    images: tuple[WellImage, ...]


def _err(where: str, message: str) -> MetadataError:
    return MetadataError(message, path=where)


def _floats(value: Any, n: int, what: str, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != n:
        raise _err(where, f"{what} must be a list of {n} numbers (one per axis), "
                          f"not {value!r:.80}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _err(where, f"{what} holds {v!r:.40}, not a finite number")
        out.append(float(v))
    return tuple(out)


def _axes(ms: dict[str, Any], version: str | None, ndim_hint: int | None, where: str
          ) -> tuple[Axis, ...]:
    raw = ms.get("axes")
    if raw is None:
        if version in ("0.1", "0.2") or (ndim_hint in (None, 5) and version is None):
            return tuple(Axis(n, "space" if n in _SPACE_NAMES else
                              {"t": "time", "c": "channel"}[n]) for n in _AXES_V01)
        raise _err(where, "multiscales has no axes")
    if not isinstance(raw, list) or not raw:
        raise _err(where, "axes must be a non-empty list")
    axes = []
    for a in raw:
        if isinstance(a, str):  # 0.3: names only
            kind = ("space" if a.lower() in _SPACE_NAMES else
                    {"t": "time", "c": "channel"}.get(a.lower()))
            axes.append(Axis(a, kind))
        elif isinstance(a, dict) and isinstance(a.get("name"), str):
            t, u = a.get("type"), a.get("unit")
            axes.append(Axis(a["name"], t if isinstance(t, str) else None,
                             u if isinstance(u, str) else None))
        else:
            raise _err(where, f"axis {a!r:.60} has no name")
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise _err(where, f"axis names repeat: {names}")
    return tuple(axes)


def _transform(transforms: Any, ndim: int, what: str, where: str
               ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A list of coordinateTransformations → (scale, translation), applied in order."""
    scale = [1.0] * ndim
    translation = [0.0] * ndim
    if transforms is None:
        return tuple(scale), tuple(translation)
    if not isinstance(transforms, list):
        raise _err(where, f"{what} coordinateTransformations must be a list")
    for t in transforms:
        kind = t.get("type") if isinstance(t, dict) else None
        if kind == "identity":
            continue
        if kind not in ("scale", "translation"):
            raise _err(where, f"{what} has a transformation of type {kind!r}; OME-NGFF "
                              f"0.4/0.5 allow scale, translation and identity")
        if "path" in t and kind not in t:
            raise UnsupportedError(f"{what} gives its {kind} by path ({t['path']!r}); "
                                   f"only inline values are supported", path=where)
        values = _floats(t.get(kind), ndim, f"{what} {kind}", where)
        if kind == "scale":
            # a later scale scales an earlier translation too: x' = (x·s + t)·s2
            scale = [a * b for a, b in zip(scale, values)]
            translation = [a * b for a, b in zip(translation, values)]
        else:
            translation = [a + b for a, b in zip(translation, values)]
    return tuple(scale), tuple(translation)


def _check_composed(scale: tuple[float, ...], translation: tuple[float, ...], what: str,
                    where: str) -> None:
    """Finite values can compose to 0 or ±inf (1e-300 · 1e-300 underflows): a level whose
    pixel size is 0 or infinite maps no physical region to pixels, so it is refused here,
    not met as a division by zero in a region read."""
    for k, (sc, tr) in enumerate(zip(scale, translation)):
        if sc == 0 or not math.isfinite(sc):
            raise _err(where, f"{what}: the composed scale of axis {k} is {sc!r}; a pixel "
                              f"size must be finite and non-zero")
        if not math.isfinite(tr):
            raise _err(where, f"{what}: the composed translation of axis {k} is {tr!r}, "
                              f"not finite")


def _dataset_path(ds: Any, i: int, j: int, where: str) -> str:
    if not isinstance(ds, dict) or not isinstance(ds.get("path"), str) or not ds["path"]:
        raise _err(where, f"multiscales[{i}].datasets[{j}] has no path")
    path: str = ds["path"].strip("/")
    if any(p in ("", ".", "..") for p in path.split("/")):
        raise _err(where, f"dataset path {ds['path']!r} leaves the image group")
    return path


def _datasets_05(ms: dict[str, Any], i: int, ndim: int, paths: list[str], where: str
                 ) -> tuple[Dataset, ...]:
    """0.1–0.5 levels: each dataset's scale/translation, then the multiscale's own."""
    top_scale, top_translation = _transform(ms.get("coordinateTransformations"), ndim,
                                            f"multiscales[{i}]", where)
    datasets = []
    for j, (ds, path) in enumerate(zip(ms["datasets"], paths)):
        if "coordinateTransformations" not in ds:
            datasets.append(Dataset(path, None, None))
            continue
        s, t = _transform(ds["coordinateTransformations"], ndim,
                          f"multiscales[{i}].datasets[{j}]", where)
        # dataset transforms first, then the multiscale's own
        scale = tuple(a * b for a, b in zip(s, top_scale))
        translation = tuple(a * b + c for a, b, c in zip(t, top_scale, top_translation))
        _check_composed(scale, translation, f"multiscales[{i}].datasets[{j}]", where)
        datasets.append(Dataset(path, scale, translation))
    return tuple(datasets)


def major_minor(version: str | None) -> str | None:
    """"0.4.0", "0.5-dev", "0.6rc0" → "0.4", "0.5", "0.6": the major.minor prefix decides."""
    return None if version is None else re.sub(r"^(\d+\.\d+).*", r"\1", version)


def parse_multiscales(ome: dict[str, Any], group_version: str | None, where: str, *,
                      load_field: Callable[[str], Any] | None = None
                      ) -> tuple[Multiscale, ...]:
    """Every entry of ``multiscales`` in a group's OME attributes. ``load_field(path)``
    reads the array of a 0.6 ``displacements``/``coordinates`` transform (``path`` as
    written, relative to this group); None: such transforms parse but cannot be applied."""
    # imported here: the 0.6 model imports Axis from this module
    from ngffcore.ome import multiscales_06 as m06

    raw = ome.get("multiscales")
    if not isinstance(raw, list) or not raw:
        raise _err(where, "multiscales must be a non-empty list")
    out = []
    for i, ms in enumerate(raw):
        if not isinstance(ms, dict):
            raise _err(where, f"multiscales[{i}] is not a JSON object")
        version = ms.get("version", group_version)
        version = None if version is None else str(version)
        prefix = major_minor(version)
        if prefix is not None and prefix not in KNOWN_VERSIONS:
            raise UnsupportedError(f"OME-NGFF version {version!r} is not supported (known: "
                                   f"{', '.join(KNOWN_VERSIONS)})", path=where)
        datasets_raw = ms.get("datasets")
        if not isinstance(datasets_raw, list) or not datasets_raw:
            raise _err(where, f"multiscales[{i}].datasets must be a non-empty list")
        if len(datasets_raw) > MAX_LEVELS:
            raise _err(where, f"multiscales[{i}] lists {len(datasets_raw)} levels (limit "
                              f"{MAX_LEVELS})")
        paths = [_dataset_path(ds, i, j, where) for j, ds in enumerate(datasets_raw)]
        if m06.is_06(ms, prefix):
            axes, datasets, space = m06.parse_multiscale_06(ms, i, paths, where, load_field)
        else:
            axes = _axes(ms, version, None, where)
            datasets = _datasets_05(ms, i, len(axes), paths, where)
            space = m06.space_05(axes)
        name = ms.get("name")
        kind = ms.get("type")
        out.append(Multiscale(i, version, name if isinstance(name, str) else None,
                              kind if isinstance(kind, str) else None, axes, datasets,
                              ms, space))
    return tuple(out)


def infer_transforms(ms: Multiscale, shapes: list[tuple[int, ...]], where: str
                     ) -> tuple[Dataset, ...]:
    """0.1–0.3 levels carry no transform: level 0 has scale 1 and coarser levels the ratio
    of level 0's shape to theirs on each axis (what ome-zarr-py assumes), translation 0."""
    out = []
    for ds, shape in zip(ms.datasets, shapes):
        if ds.scale is not None or ds.transform is not None:
            out.append(ds)
            continue
        if len(shape) != len(ms.axes):
            raise _err(where, f"level {ds.path} has {len(shape)} dimensions, the image "
                              f"{len(ms.axes)} axes")
        # an empty axis (length 0) at either level has no ratio: its pixel size stays 1
        scale = tuple(a / b if a and b else 1.0 for a, b in zip(shapes[0], shape))
        out.append(Dataset(ds.path, scale, (0.0,) * len(shape)))
    return tuple(out)


def _color(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.lstrip("#").upper()
    return value if len(value) == 6 and all(c in "0123456789ABCDEF" for c in value) else None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def parse_channels(ome: dict[str, Any]) -> tuple[Channel, ...]:
    """``omero.channels``; absent or malformed rendering metadata gives no channels (it is
    advisory: ome-zarr-py and napari ignore what they can't read)."""
    omero = ome.get("omero")
    if not isinstance(omero, dict) or not isinstance(omero.get("channels"), list):
        return ()
    out = []
    for ch in omero["channels"]:
        if not isinstance(ch, dict):
            continue
        w: dict[str, Any] = ch["window"] if isinstance(ch.get("window"), dict) else {}
        label = ch.get("label")
        family = ch.get("family")
        coefficient = _num(ch.get("coefficient"))
        out.append(Channel(
            label=str(label) if label is not None else None,
            color=_color(ch.get("color")),
            window=Window(_num(w.get("start")), _num(w.get("end")), _num(w.get("min")),
                          _num(w.get("max"))),
            active=bool(ch.get("active", True)),
            inverted=bool(ch.get("inverted", False)),
            coefficient=1.0 if coefficient is None else coefficient,
            family=family if isinstance(family, str) else None))
    return tuple(out)


def parse_image_label(ome: dict[str, Any], where: str) -> LabelInfo:
    raw = ome.get("image-label")
    if not isinstance(raw, dict):
        raise _err(where, "image-label is missing or not a JSON object")
    colors: dict[int, tuple[int, int, int, int]] = {}
    for c in raw.get("colors") or []:
        value = c.get("label-value") if isinstance(c, dict) else None
        rgba = c.get("rgba") if isinstance(c, dict) else None
        if isinstance(value, int) and isinstance(rgba, list) and len(rgba) == 4:
            colors[value] = tuple(int(x) for x in rgba)  # type: ignore[assignment]
    properties: dict[int, dict[str, Any]] = {}
    for p in raw.get("properties") or []:
        value = p.get("label-value") if isinstance(p, dict) else None
        if isinstance(value, int):
            properties[value] = {k: v for k, v in p.items() if k != "label-value"}
    source = raw.get("source")
    version = raw.get("version")
    return LabelInfo(colors, properties, source if isinstance(source, dict) else None,
                     None if version is None else str(version))


def parse_label_names(ome: dict[str, Any], where: str) -> tuple[str, ...]:
    names = ome.get("labels")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _err(where, "labels must be a list of label image paths")
    return tuple(names)


def _names(value: Any, what: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _err(where, f"plate {what} must be a list")
    out = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, (str, int)):
            raise _err(where, f"plate {what} entry {item!r:.60} has no name")
        out.append(str(name))
    return tuple(out)


def parse_plate(ome: dict[str, Any], where: str) -> PlateInfo:
    plate = ome.get("plate")
    if not isinstance(plate, dict):
        raise _err(where, "plate is not a JSON object")
    rows = _names(plate.get("rows"), "rows", where)
    columns = _names(plate.get("columns"), "columns", where)
    wells = []
    # older plates (before 0.4's indices) match wells to rows/columns by name: a dict of
    # name → first index keeps that one lookup per well, not a scan of every row and column
    row_at: dict[str, int] = {}
    column_at: dict[str, int] = {}
    for i, row_name in enumerate(rows):
        row_at.setdefault(row_name, i)
    for i, column_name in enumerate(columns):
        column_at.setdefault(column_name, i)
    for w in plate.get("wells") or []:
        path = w.get("path") if isinstance(w, dict) else None
        if not isinstance(path, str) or path.count("/") != 1:
            raise _err(where, f"plate well {w!r:.60} has no 'row/column' path")
        row, column = path.split("/")
        ri, ci = w.get("rowIndex"), w.get("columnIndex")
        ri = ri if isinstance(ri, int) else row_at.get(row, -1)
        ci = ci if isinstance(ci, int) else column_at.get(column, -1)
        if not (0 <= ri < len(rows) and 0 <= ci < len(columns)):
            raise _err(where, f"well {path!r} lies outside the plate's rows/columns")
        wells.append(PlateWell(path, row, column, ri, ci))
    acquisitions = []
    for a in plate.get("acquisitions") or []:
        if not isinstance(a, dict) or not isinstance(a.get("id"), int):
            raise _err(where, f"acquisition {a!r:.60} has no integer id")
        mfc = a.get("maximumfieldcount")
        acquisitions.append(Acquisition(
            a["id"], a.get("name") if isinstance(a.get("name"), str) else None,
            mfc if isinstance(mfc, int) else None,
            a.get("description") if isinstance(a.get("description"), str) else None,
            a.get("starttime") if isinstance(a.get("starttime"), int) else None,
            a.get("endtime") if isinstance(a.get("endtime"), int) else None))
    fc = plate.get("field_count")
    version = plate.get("version", ome.get("version"))
    name = plate.get("name")
    return PlateInfo(None if version is None else str(version),
                     name if isinstance(name, str) else None, rows, columns, tuple(wells),
                     tuple(acquisitions), fc if isinstance(fc, int) else None)


def parse_well(ome: dict[str, Any], where: str) -> WellInfo:
    well = ome.get("well")
    if not isinstance(well, dict) or not isinstance(well.get("images"), list):
        raise _err(where, "well has no images list")
    images = []
    for im in well["images"]:
        path = im.get("path") if isinstance(im, dict) else None
        if not isinstance(path, str) or not path or "/" in path or path in (".", ".."):
            raise _err(where, f"well image {im!r:.60} has no valid path")
        acq = im.get("acquisition")
        images.append(WellImage(path, acq if isinstance(acq, int) else None))
    version = well.get("version", ome.get("version"))
    return WellInfo(None if version is None else str(version), tuple(images))


__all__ = ["Axis", "Dataset", "Multiscale", "Window", "Channel", "LabelInfo", "PlateWell",
           "Acquisition", "PlateInfo", "WellImage", "WellInfo", "parse_multiscales",
           "infer_transforms", "major_minor", "parse_channels", "parse_image_label",
           "parse_label_names", "parse_plate", "parse_well"]
