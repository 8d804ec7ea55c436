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
from typing import Any, Optional

import numpy as np

from ngffcore.errors import MetadataError
from ngffcore.ome.coordinate_systems import (
    CoordinateSystem,
    SystemRef,
    parse_coordinate_systems,
    parse_system_ref,
)
from ngffcore.ome.multiscales import Axis, Dataset
from ngffcore.ome.region import Placement
from ngffcore.ome.transforms import MAX_TRANSFORMS, FieldLoader, Transform, parse_transform

#: the name of the one coordinate system of a 0.1–0.5 image (the spec's term for the
#: system the levels map to)
INTRINSIC = "intrinsic"

#: one transformation of a list: its JSON object, input and output (each naming a system)
Referenced = tuple[dict[str, Any], SystemRef, SystemRef]

#: ``resolve(ref)`` → the systems a reference of a transformation list may name and who
#: defines them, for messages (e.g. "the scene's coordinateSystems"); systems None: not
#: checked here (a system of another group, sized when that group is opened)
Resolver = Callable[[SystemRef], tuple[Optional[Sequence[CoordinateSystem]], str]]


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
                      dataset_path: str) -> Transform:
    """A level's transform built from its composed scale and translation (0.1–0.5): the
    sequence scale, then translation, from the level's array to ``"intrinsic"``."""
    n = len(scale)
    doc = {"type": "sequence", "input": {"path": dataset_path}, "output": {"name": INTRINSIC},
           "transformations": [{"type": "scale", "scale": list(scale)},
                               {"type": "translation", "translation": list(translation)}]}
    return parse_transform(doc, f"level {dataset_path!r} (scale, translation)", ndim_in=n,
                           ndim_out=n)


def _level(ms: dict[str, Any], j: int, path: str, by_name: dict[str, CoordinateSystem],
           at: str, load_field: FieldLoader | None) -> tuple[str, Transform]:
    """Dataset ``j``'s output system (its name) and transform (array → that system)."""
    here = f"{at}.datasets[{j}].coordinateTransformations"
    cts = ms["datasets"][j].get("coordinateTransformations")
    if not isinstance(cts, list) or not cts or not all(isinstance(t, dict) for t in cts):
        raise MetadataError("a 0.6 level needs a non-empty coordinateTransformations list "
                            "(its array → the intrinsic coordinate system)", path=here)
    at_output = f"{here}[{len(cts) - 1}].output"
    output = parse_system_ref(cts[-1].get("output"), at_output)
    name = output.name if output is not None else None
    if name is None and len(by_name) == 1:
        name = next(iter(by_name))  # tolerated: the one system there is
    if name is None:
        raise MetadataError("the transform's output names no coordinate system (it must "
                            "name the intrinsic one)", path=at_output)
    if name not in by_name:
        raise MetadataError(f"output names coordinate system {name!r}, which the "
                            f"multiscale's coordinateSystems ({sorted(by_name)}) do not "
                            f"define", path=at_output)
    if len(cts) == 1:
        doc, where = cts[0], f"{here}[0]"
    else:  # tolerated: several transforms apply in order, as a sequence would
        doc = {"type": "sequence", "input": {"path": path}, "output": {"name": name},
               "transformations": cts}
        where = here
    n = by_name[name].ndim
    return name, parse_transform(doc, where, load_field=load_field, ndim_in=n, ndim_out=n)


def transform_refs(raw: Any, at: str) -> list[Referenced]:
    """Each transformation of the ``coordinateTransformations`` list ``raw`` (at JSON path
    ``at``: the document and the list's path) with its ``input`` and ``output``, each of
    which must name a coordinate system (a multiscale's own transformations, a scene's).
    The list's length is bounded first: a scene opens every image its references name."""
    if not isinstance(raw, list):
        raise MetadataError("coordinateTransformations must be a list", path=at)
    if len(raw) > MAX_TRANSFORMS:
        raise MetadataError(f"coordinateTransformations lists {len(raw)} transformations "
                            f"(at most {MAX_TRANSFORMS} are read)", path=at)
    out = []
    for k, doc in enumerate(raw):
        here = f"{at}[{k}]"
        if not isinstance(doc, dict):
            raise MetadataError(f"a transformation must be an object, not {doc!r:.60}",
                                path=here)
        pair = []
        for key in ("input", "output"):
            ref = parse_system_ref(doc.get(key), f"{here}.{key}")
            if ref is None or ref.name is None:
                raise MetadataError(f"the transformation's {key} must name a coordinate "
                                    f"system", path=f"{here}.{key}")
            pair.append(ref)
        out.append((doc, pair[0], pair[1]))
    return out


def parse_transform_list(entries: Sequence[Referenced], at: str, resolve: Resolver,
                         load_field: FieldLoader | None) -> tuple[Transform, ...]:
    """The transformations ``transform_refs(raw, at)`` gave (``entries``), each sized by the
    systems its references name (``resolve``): MetadataError naming the JSON path for a
    system referenced but not defined, and whatever ``parse_transform`` refuses (dimensions
    not matching the systems, unknown types, ...)."""
    out = []
    for k, (doc, ref_in, ref_out) in enumerate(entries):
        here = f"{at}[{k}]"
        dims: list[int | None] = []
        for key, ref in (("input", ref_in), ("output", ref_out)):
            systems, holder = resolve(ref)
            if systems is None:
                dims.append(None)
                continue
            system = next((s for s in systems if s.name == ref.name), None)
            if system is None:
                raise MetadataError(f"{key} references coordinate system {ref.name!r}, which "
                                    f"{holder} does not define", path=f"{here}.{key}")
            dims.append(system.ndim)
        out.append(parse_transform(doc, here, load_field=load_field, ndim_in=dims[0],
                                   ndim_out=dims[1]))
    return tuple(out)


def _extra(ms: dict[str, Any], systems: tuple[CoordinateSystem, ...], at: str,
           load_field: FieldLoader | None) -> tuple[Transform, ...]:
    """The multiscale's own transformations (intrinsic → other systems)."""
    raw = ms.get("coordinateTransformations")
    if raw is None:
        return ()
    at = f"{at}.coordinateTransformations"
    holder = f"the multiscale (coordinateSystems {sorted(s.name for s in systems)})"

    def resolve(ref: SystemRef) -> tuple[Sequence[CoordinateSystem] | None, str]:
        # a reference with a path names a system of another group (a label image)
        return (None, "") if ref.path else (systems, holder)

    return parse_transform_list(transform_refs(raw, at), at, resolve, load_field)


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
    # aligned scales are non-zero and the matrix is finite (above): nothing left to check
    for i, (j, s, t) in enumerate(placement.aligned):
        scale[j], translation[j], target[j] = s, t, i
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
    levels = [_level(ms, j, path, by_name, located, load_field)
              for j, path in enumerate(paths)]
    names = {name for name, _ in levels}
    if len(names) > 1:
        raise MetadataError(f"the levels map to different coordinate systems "
                            f"({sorted(names)}); every dataset's transform must output the "
                            f"one intrinsic system", path=f"{located}.datasets")
    intrinsic = levels[0][0]
    transforms = [t for _, t in levels]
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
    extra = _extra(ms, systems, located, load_field)
    return axes, tuple(datasets), ImageSpace(systems, intrinsic, extra)


__all__ = ["INTRINSIC", "ImageSpace", "Resolver", "is_06", "space_05", "scale_translation",
           "level_scale_translation", "Referenced", "transform_refs", "parse_transform_list",
           "parse_multiscale_06"]
