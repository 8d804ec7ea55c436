"""OME-NGFF 0.6 multiscales → the image's coordinate model: its coordinate systems, each
level's transform from array indices to the *intrinsic* system (the ``output`` of the
datasets' transforms), and the multiscale's own ``coordinateTransformations`` (intrinsic →
other systems). 0.1–0.5 images get the same model: one system named ``"intrinsic"``
holding the multiscale's axes, each level's composed scale + translation as its transform.

Pure parsing: no I/O (the arrays of ``displacements``/``coordinates`` transforms come through
the loader the caller gives). Readings of the spec taken here are listed in docs/ome.md,
"OME-NGFF 0.6".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ngffcore.errors import MetadataError
from ngffcore.ome.coordinate_systems import (
    CoordinateSystem,
    SystemRef,
    parse_coordinate_systems,
    parse_system_ref,
)
from ngffcore.ome.multiscales import Axis, Dataset, _check_composed
from ngffcore.ome.region import Placement
from ngffcore.ome.transforms import MAX_TRANSFORMS, Transform, parse_transform

#: the name of the one coordinate system of a 0.1–0.5 image (the spec's term for the
#: system the levels map to)
INTRINSIC = "intrinsic"

#: ``load(path)`` → the array (or FieldData) a transform keeps at ``path`` (as written)
FieldLoader = Callable[[str], Any]


@dataclass(frozen=True)
class ImageSpace:
    """The coordinate model of one multiscale image.

    ``systems``: its ``coordinateSystems`` in document order; ``intrinsic``: the name of the
    one the levels map to; ``transforms``: the multiscale's own ``coordinateTransformations``
    (input/output as written: a reference without ``path`` names one of ``systems``, one
    with a ``path`` a system of the group there, e.g. a label image)."""

    systems: tuple[CoordinateSystem, ...]
    intrinsic: str
    transforms: tuple[Transform, ...] = ()

    def system(self, name: str) -> CoordinateSystem | None:
        return next((s for s in self.systems if s.name == name), None)

    @property
    def intrinsic_system(self) -> CoordinateSystem:
        system = self.system(self.intrinsic)
        assert system is not None  # parse_multiscale_06 checked it
        return system


def is_06(ms: dict[str, Any], version: str | None) -> bool:
    """Whether a multiscale is read by the 0.6 rules: its version is 0.6 (``version`` is the
    major.minor prefix), or it has ``coordinateSystems`` and no ``axes`` (tolerant of a
    missing version)."""
    return version == "0.6" or ("coordinateSystems" in ms and "axes" not in ms)


def space_05(axes: tuple[Axis, ...]) -> ImageSpace:
    """The model of a 0.1–0.5 image: one system, ``"intrinsic"``, holding its axes (the
    multiscale's own transforms are already composed into the levels')."""
    return ImageSpace((CoordinateSystem(INTRINSIC, axes),), INTRINSIC)


def scale_translation(scale: Sequence[float], translation: Sequence[float],
                      dataset_path: str, intrinsic: str = INTRINSIC) -> Transform:
    """A level's transform built from its composed scale and translation (0.1–0.5): the
    sequence scale, then translation, from the level's array to ``intrinsic``."""
    n = len(scale)
    doc = {"type": "sequence", "input": {"path": dataset_path}, "output": {"name": intrinsic},
           "transformations": [{"type": "scale", "scale": list(scale)},
                               {"type": "translation", "translation": list(translation)}]}
    return parse_transform(doc, f"level {dataset_path!r} (scale, translation)", ndim_in=n,
                           ndim_out=n)


def _ref_name(value: Any) -> str | None:
    """The ``name`` of a reference written as an object or (tolerated) a bare string."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return value["name"] or None
    return None


def _level(ms: dict[str, Any], j: int, path: str, by_name: dict[str, CoordinateSystem],
           at: str, load_field: FieldLoader | None) -> Transform:
    """Dataset ``j``'s transform (array → intrinsic), its output system checked."""
    here = f"{at}.datasets[{j}].coordinateTransformations"
    cts = ms["datasets"][j].get("coordinateTransformations")
    if not isinstance(cts, list) or not cts or not all(isinstance(t, dict) for t in cts):
        raise MetadataError("a 0.6 level needs a non-empty coordinateTransformations list "
                            "(its array → the intrinsic coordinate system)", path=here)
    name = _ref_name(cts[-1].get("output"))
    if name is None and len(by_name) == 1:
        name = next(iter(by_name))  # tolerated: the one system there is
    if name is None:
        raise MetadataError("the transform's output names no coordinate system (it must "
                            "name the intrinsic one)", path=f"{here}[{len(cts) - 1}].output")
    if name not in by_name:
        raise MetadataError(f"output names coordinate system {name!r}, which the "
                            f"multiscale's coordinateSystems ({sorted(by_name)}) do not "
                            f"define", path=f"{here}[{len(cts) - 1}].output")
    if len(cts) == 1:
        doc, where = cts[0], f"{here}[0]"
    else:  # tolerated: several transforms apply in order, as a sequence would
        doc = {"type": "sequence", "input": {"path": path}, "output": {"name": name},
               "transformations": cts}
        where = here
    n = by_name[name].ndim
    return parse_transform(doc, where, load_field=load_field, ndim_in=n, ndim_out=n)


def _endpoint(doc: dict[str, Any], key: str, by_name: dict[str, CoordinateSystem],
              here: str) -> tuple[SystemRef, int | None]:
    ref = parse_system_ref(doc.get(key), f"{here}.{key}")
    if ref is None or ref.name is None:
        raise MetadataError(f"the transform needs an {key} naming a coordinate system",
                            path=f"{here}.{key}")
    if ref.path:  # a system of another group (a label image): sized when that is opened
        return ref, None
    system = by_name.get(ref.name)
    if system is None:
        raise MetadataError(f"{key} references coordinate system {ref.name!r}, which the "
                            f"multiscale's coordinateSystems ({sorted(by_name)}) do not "
                            f"define", path=f"{here}.{key}")
    return ref, system.ndim


def _extra(ms: dict[str, Any], by_name: dict[str, CoordinateSystem], at: str,
           load_field: FieldLoader | None) -> tuple[Transform, ...]:
    raw = ms.get("coordinateTransformations")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise MetadataError("coordinateTransformations must be a list",
                            path=f"{at}.coordinateTransformations")
    if len(raw) > MAX_TRANSFORMS:
        raise MetadataError(f"coordinateTransformations lists {len(raw)} transformations "
                            f"(at most {MAX_TRANSFORMS} are read)",
                            path=f"{at}.coordinateTransformations")
    out = []
    for k, doc in enumerate(raw):
        here = f"{at}.coordinateTransformations[{k}]"
        if not isinstance(doc, dict):
            raise MetadataError(f"a transformation must be an object, not {doc!r:.60}",
                                path=here)
        _, n_in = _endpoint(doc, "input", by_name, here)
        _, n_out = _endpoint(doc, "output", by_name, here)
        out.append(parse_transform(doc, here, load_field=load_field, ndim_in=n_in,
                                   ndim_out=n_out))
    return tuple(out)


def level_scale_translation(transform: Transform, where: str
                            ) -> tuple[tuple[float, ...], tuple[float, ...],
                                       tuple[int, ...]] | None:
    """Per array axis ``(scale, translation)`` of a level transform that is scale +
    translation (axes possibly permuted by ``mapAxis``), and for each array axis the
    intrinsic axis it maps to; None for any other transform (affine, rotation, fields)."""
    if not transform.is_affine:
        return None
    matrix = transform.to_matrix()
    n = matrix.shape[1] - 1
    if not np.all(np.isfinite(matrix)):  # finite parameters can compose to ±inf
        raise MetadataError("the level's transform composes to values that are not "
                            "finite", path=where)
    if matrix.shape[0] == n + 1 and np.linalg.matrix_rank(matrix[:n, :n]) < n:
        # a zero scale (or a flat affine) maps many pixels to one place: no region of the
        # system has a box, and nothing inverts it
        raise MetadataError("the level's transform is singular (a zero scale?): pixels "
                            "must map to distinct positions", path=where)
    placement = Placement.of(matrix)
    if placement.aligned is None:
        return None
    scale, translation, target = [0.0] * n, [0.0] * n, [0] * n
    for i, (j, s, t) in enumerate(placement.aligned):
        scale[j], translation[j], target[j] = s, t, i
    _check_composed(tuple(scale), tuple(translation), "the level's transform", where)
    return tuple(scale), tuple(translation), tuple(target)


def parse_multiscale_06(ms: dict[str, Any], i: int, paths: list[str], where: str,
                        load_field: FieldLoader | None
                        ) -> tuple[tuple[Axis, ...], tuple[Dataset, ...], ImageSpace]:
    """One 0.6 multiscale → its axes (one per array dimension: the intrinsic system's, in
    the order level 0's transform maps the array axes to them), datasets (scale and
    translation where the level's transform is axis-aligned, else None; the transform) and
    coordinate model. MetadataError naming ``where`` and the JSON path for a system
    referenced but not defined, levels mapping to different systems, and whatever
    ``parse_transform`` refuses (dimensions not matching the systems, unknown types, …)."""
    # 0.6 is Zarr v3: messages name the group's zarr.json and the JSON path in it
    doc = where if where.endswith(("zarr.json", ".zattrs")) else f"{where}/zarr.json"
    located = f"{doc}: multiscales[{i}]"
    systems = parse_coordinate_systems(ms.get("coordinateSystems"),
                                       f"{located}.coordinateSystems")
    if not systems:
        raise MetadataError("coordinateSystems must list at least one system",
                            path=f"{located}.coordinateSystems")
    by_name = {s.name: s for s in systems}
    transforms = [_level(ms, j, path, by_name, located, load_field)
                  for j, path in enumerate(paths)]
    names = {t.output.name if t.output is not None and t.output.name else None
             for t in transforms}
    intrinsic = _ref_name(ms["datasets"][0]["coordinateTransformations"][-1].get("output"))
    intrinsic = intrinsic or systems[0].name
    if len(names - {None}) > 1:
        raise MetadataError(f"the levels map to different coordinate systems "
                            f"({sorted(n for n in names if n)}); every dataset's transform "
                            f"must output the one intrinsic system",
                            path=f"{located}.datasets")
    datasets = []
    axes: tuple[Axis, ...] = by_name[intrinsic].axes
    for j, (path, t) in enumerate(zip(paths, transforms)):
        placed = level_scale_translation(t, f"{located}.datasets[{j}]")
        if placed is None:
            datasets.append(Dataset(path, None, None, t))
            continue
        scale, translation, target = placed
        if j == 0:
            axes = tuple(by_name[intrinsic].axes[k] for k in target)
        datasets.append(Dataset(path, scale, translation, t))
    extra = _extra(ms, by_name, located, load_field)
    return axes, tuple(datasets), ImageSpace(systems, intrinsic, extra)


__all__ = ["INTRINSIC", "ImageSpace", "FieldLoader", "is_06", "space_05", "scale_translation",
           "level_scale_translation", "parse_multiscale_06"]
