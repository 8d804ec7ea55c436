"""One OME-NGFF 0.6 coordinate transformation (a JSON object) → a :class:`Transform`.

Every malformed input is a :class:`MetadataError` naming ``where`` (the document and the
JSON path of the transform, extended with the member's path for nested ones) and what was
wrong; a well-formed transformation of a type the spec does not define is an
:class:`UnsupportedError` (a MetadataError subclass). The readings taken where the spec is
ambiguous are listed in :mod:`ngffcore.ome.transforms`.
"""

from __future__ import annotations

from typing import Any

from ngffcore.errors import UnsupportedError
from ngffcore.ome.coordinate_systems import parse_system_ref
from ngffcore.ome.transform_base import (
    MAX_NESTING,
    MAX_TRANSFORM_NDIM,
    MAX_TRANSFORMS,
    Transform,
    err,
    finite_vector,
)
from ngffcore.ome.transform_compose import Bijection, ByDimension, DimensionItem, SequenceTransform
from ngffcore.ome.transform_fields import Coordinates, Displacements, FieldLoader
from ngffcore.ome.transform_linear import Identity, MapAxis, ProjectAxis, Scale, Translation
from ngffcore.ome.transform_matrix import Affine, Rotation

__all__ = ["parse_transform", "TRANSFORM_TYPES"]

#: the type strings of OME-NGFF 0.6
TRANSFORM_TYPES = ("identity", "mapAxis", "projectAxis", "translation", "scale", "affine",
                   "rotation", "sequence", "byDimension", "bijection", "displacements",
                   "coordinates")


class _Context:
    """What the whole parse shares: the field loader and the count of transforms so far."""

    def __init__(self, load: FieldLoader | None) -> None:
        self.load = load
        self.count = 0


def _indices(value: object, what: str, where: str, *, required: bool = True) -> tuple[int, ...]:
    """A JSON list of axis indices (non-negative integers)."""
    if value is None and not required:
        return ()
    if not isinstance(value, list):
        raise err(where, f"{what} must be a list of axis indices (integers), not "
                         f"{value!r:.60}")
    if len(value) > MAX_TRANSFORM_NDIM:
        raise err(where, f"{what} lists {len(value)} axes (at most {MAX_TRANSFORM_NDIM})")
    for v in value:
        if not isinstance(v, int) or isinstance(v, bool):
            raise err(where, f"{what} holds {v!r:.40}: axis indices must be integers")
        if v < 0:
            raise err(where, f"{what} holds {v}: axis indices are zero-based, not negative")
    return tuple(value)


def _path(doc: dict[str, Any], where: str, kind: str) -> str:
    path = doc.get("path")
    if not isinstance(path, str) or not path:
        raise err(where, f"{kind} needs a non-empty string 'path', not {path!r:.60}")
    return path


def _matrix_kind(doc: dict[str, Any], kind: str, where: str, ctx: _Context,
                 kw: dict[str, Any]) -> Transform:
    inline, path = doc.get(kind), doc.get("path")
    if inline is not None and path is not None:
        raise err(where, f"{kind} gives both an inline {kind!r} matrix and a 'path': only "
                         f"one is allowed")
    if inline is None and path is None:
        raise err(where, f"{kind} needs its parameters: an inline {kind!r} matrix or a 'path'")
    cls = Affine if kind == "affine" else Rotation
    if path is not None:
        return cls(path=_path(doc, where, kind), load=ctx.load, **kw)
    return cls(inline, **kw)


def _vector_kind(doc: dict[str, Any], kind: str, where: str, kw: dict[str, Any]) -> Transform:
    if "path" in doc:
        # The transformation table's prose mentions a path, but the parameter list, the
        # schema and the spec's invalid test documents (bad_scale_path_not_allowed,
        # bad_translate_path_not_allowed) allow only the inline list: the rule wins.
        raise err(where, f"{kind} parameters must be given inline as {kind!r}: 'path' is "
                         f"not allowed for a {kind}")
    if kind not in doc:
        raise err(where, f"{kind} needs its {kind!r} list")
    values = finite_vector(doc[kind], kind, where)
    return Translation(values, **kw) if kind == "translation" else Scale(values, **kw)


def _members(doc: dict[str, Any], where: str) -> list[Any]:
    members = doc.get("transformations")
    if not isinstance(members, list) or not members:
        raise err(where, f"{doc.get('type')} needs a non-empty 'transformations' list, not "
                         f"{members!r:.60}")
    return members


def _sequence(doc: dict[str, Any], where: str, ctx: _Context, depth: int,
              kw: dict[str, Any]) -> Transform:
    parts = []
    for i, member in enumerate(_members(doc, where)):
        at = f"{where}.transformations[{i}]"
        if isinstance(member, dict) and ("inputAxes" in member or "outputAxes" in member):
            # sequenceSubspace1.json: members acting on named subsets of axes. The 0.6 text
            # defines inputAxes/outputAxes only for byDimension; a sequence of subspace
            # members has no defined meaning, so it is refused rather than guessed.
            raise UnsupportedError("a sequence member with inputAxes/outputAxes (a subspace "
                                   "sequence) is not defined by OME-NGFF 0.6; use "
                                   "byDimension", path=at)
        parts.append(_parse(member, at, ctx, depth + 1))
    return SequenceTransform(parts, **kw)


def _by_dimension(doc: dict[str, Any], where: str, ctx: _Context, depth: int,
                  kw: dict[str, Any]) -> Transform:
    items = []
    for i, item in enumerate(_members(doc, where)):
        at = f"{where}.transformations[{i}]"
        if not isinstance(item, dict):
            raise err(at, f"a byDimension entry must be an object, not {item!r:.60}")
        sub = item.get("transformation")
        if sub is None and "type" in item:
            # byDimensionXarray.json writes the member inline (its own type next to
            # inputAxes/outputAxes) instead of under "transformation": read both forms
            sub, sub_at = item, at
        else:
            sub_at = f"{at}.transformation"
        if sub is None:
            raise err(at, "a byDimension entry needs 'transformation', 'inputAxes' and "
                          "'outputAxes'")
        in_axes = _indices(item.get("inputAxes"), "inputAxes", at)
        out_axes = _indices(item.get("outputAxes"), "outputAxes", at)
        items.append(DimensionItem(_parse(sub, sub_at, ctx, depth + 1), in_axes, out_axes))
    return ByDimension(items, **kw)


def _bijection(doc: dict[str, Any], where: str, ctx: _Context, depth: int,
               kw: dict[str, Any]) -> Transform:
    sides = []
    for key in ("forward", "inverse"):
        if not isinstance(doc.get(key), dict):
            raise err(where, f"bijection needs a {key!r} transformation object, not "
                             f"{doc.get(key)!r:.60}")
        sides.append(_parse(doc[key], f"{where}.{key}", ctx, depth + 1))
    fwd, inv = sides
    # members without input/output are understood to map between the bijection's systems
    fwd = fwd.with_refs(fwd.input or kw["input"], fwd.output or kw["output"])
    inv = inv.with_refs(inv.input or kw["output"], inv.output or kw["input"])
    return Bijection(fwd, inv, **kw)


def _field_kind(doc: dict[str, Any], kind: str, where: str, ctx: _Context,
                kw: dict[str, Any]) -> Transform:
    interpolation = doc.get("interpolation", "linear")
    if not isinstance(interpolation, str) or not interpolation:
        raise err(where, f"interpolation must be a string such as 'linear', not "
                         f"{interpolation!r:.40}")
    cls = Coordinates if kind == "coordinates" else Displacements
    return cls(_path(doc, where, kind), interpolation=interpolation, load=ctx.load, **kw)


def _parse(doc: object, where: str, ctx: _Context, depth: int) -> Transform:
    if depth > MAX_NESTING:
        raise err(where, f"transformations nest deeper than {MAX_NESTING} levels")
    ctx.count += 1
    if ctx.count > MAX_TRANSFORMS:
        raise err(where, f"more than {MAX_TRANSFORMS} transformations in one")
    if not isinstance(doc, dict):
        raise err(where, f"a coordinate transformation must be an object, not {doc!r:.60}")
    kind = doc.get("type")
    if not isinstance(kind, str) or not kind:
        raise err(where, f"a coordinate transformation needs a string 'type', not "
                         f"{kind!r:.40}")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise err(where, f"'name' must be a string, not {name!r:.40}")
    kw: dict[str, Any] = {
        "input": parse_system_ref(doc.get("input"), f"{where}.input"),
        "output": parse_system_ref(doc.get("output"), f"{where}.output"),
        "name": name, "where": where,
    }
    if kind == "identity":
        return Identity(None, **kw)
    if kind == "mapAxis":
        if "mapAxis" not in doc:
            raise err(where, "mapAxis needs its 'mapAxis' list of axis indices")
        return MapAxis(_indices(doc["mapAxis"], "mapAxis", where), **kw)
    if kind == "projectAxis":
        return ProjectAxis(_indices(doc.get("droppedInputs"), "droppedInputs", where,
                                    required=False),
                           _indices(doc.get("createdOutputs"), "createdOutputs", where,
                                    required=False), **kw)
    if kind in ("translation", "scale"):
        return _vector_kind(doc, kind, where, kw)
    if kind in ("affine", "rotation"):
        return _matrix_kind(doc, kind, where, ctx, kw)
    if kind == "sequence":
        return _sequence(doc, where, ctx, depth, kw)
    if kind == "byDimension":
        return _by_dimension(doc, where, ctx, depth, kw)
    if kind == "bijection":
        return _bijection(doc, where, ctx, depth, kw)
    if kind in ("displacements", "coordinates"):
        return _field_kind(doc, kind, where, ctx, kw)
    raise UnsupportedError(f"unknown coordinate transformation type {kind!r:.60} (OME-NGFF "
                           f"0.6 defines {', '.join(TRANSFORM_TYPES)})", path=where)


def parse_transform(doc: object, where: str, *, load_field: FieldLoader | None = None,
                    ndim_in: int | None = None, ndim_out: int | None = None,
                    require_refs: bool = False) -> Transform:
    """One transform JSON object → :class:`Transform`.

    ``where`` names the document and JSON path for messages (e.g.
    ``"http://host/img.zarr/zarr.json: multiscales[0].datasets[1].coordinateTransformations[0]"``).
    ``load_field(path)`` returns the array stored at ``path`` (resolved by the caller against
    the group holding the transform) for ``displacements``/``coordinates`` fields and
    ``affine``/``rotation`` matrices given by ``path`` — a bare array, or a
    :class:`~ngffcore.ome.transform_fields.FieldData` carrying the field's axes and its own
    index → input-system transform. It is called on first use, not here; without it those
    transforms parse but raise :class:`UnsupportedError` when evaluated.

    ``ndim_in``/``ndim_out`` (from the referenced coordinate systems, or a dataset array's
    rank) are checked against the parameters (a mismatch is a :class:`MetadataError` naming
    ``where``) and size the transforms whose parameters don't (identity, projectAxis,
    byDimension's unused inputs, path-given matrices). ``require_refs``: the transform must
    have both ``input`` and ``output`` (as every transform outside a sequence, byDimension or
    bijection must); whether a reference names an existing system is the caller's check.
    """
    for what, n in (("input", ndim_in), ("output", ndim_out)):
        if n is not None and (not isinstance(n, int) or isinstance(n, bool)
                              or not 0 < n <= MAX_TRANSFORM_NDIM):
            raise err(where, f"the {what} coordinate system has {n!r:.20} dimensions (1 to "
                             f"{MAX_TRANSFORM_NDIM} are supported)")
    t = _parse(doc, where, _Context(load_field), 0)
    if require_refs:
        missing = [k for k, v in (("input", t.input), ("output", t.output)) if v is None]
        if missing:
            raise err(where, f"the transformation needs {' and '.join(map(repr, missing))} "
                             f"(a coordinate system reference)")
    return t._fix_ndim(ndim_in, ndim_out)
