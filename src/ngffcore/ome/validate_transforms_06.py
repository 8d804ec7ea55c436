"""The OME-NGFF 0.6 rules for one coordinate transformation that its JSON schema cannot
express, checked on the JSON itself: parameter lengths against the dimensionality of the input
and output coordinate systems, matrix shapes, mapAxis permutations, projectAxis indices,
byDimension axis coverage, rotation orthonormality, sequence and wrapper nesting, and unknown
types.

:meth:`TransformRules.check_transform` is given a transformation object and the number of axes
of its input and output coordinate systems (None where unknown: the caller resolved the
references, see ``validate_rules_06``) and records every problem; it never raises and never
reads anything. It returns the output dimensionality the transformation implies, so that a
``sequence`` can carry the dimensionality from one member to the next.

The reading taken where the text is loose: parameter *i* belongs to axis *i*; an ``affine``
stored in JSON has exactly M rows of N+1 numbers (the homogeneous last row is omitted, as
the text says, so an (M+1)-row matrix is an error); members of ``sequence``, ``bijection``
and ``byDimension`` need no ``input``/``output`` of their own (and theirs are not
cross-checked); a ``byDimension`` member's ``inputAxes``/``outputAxes`` lengths are its
input/output dimensionality. Parameters stored in a Zarr array (``path``) are not read, so
their shapes are not checked.

:meth:`TransformRules.check_top` adds the reader's view: a top-level transformation that
these rules and the schema found nothing wrong with is also parsed by
:func:`ngffcore.ome.transforms.parse_transform` (what ``ngffcore.open`` uses), so that a
document ngffcore would refuse or could not evaluate is never reported clean: its
MetadataError is an error (rule ``transform``), its UnsupportedError a warning
(``ngffcore-support``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from ngffcore.errors import MetadataError, UnsupportedError
from ngffcore.ome.transform_base import MAX_NESTING, is_number
from ngffcore.ome.transform_matrix import ROTATION_TOLERANCE, rotation_error
from ngffcore.ome.transform_parse import TRANSFORM_TYPES, parse_transform
from ngffcore.ome.validate_rules import Rules, count_of

# The type names, the nesting bound and the rotation tolerance are the reader's
# (``transform_parse``, ``transform_base``, ``transform_matrix``): what the validator accepts
# and what ngffcore opens cannot drift apart.

Dim = int | None


def is_index(value: Any) -> bool:
    """An integer JSON value (``true`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


class TransformRules(Rules):
    """The per-transformation rules of OME-NGFF 0.6 (see the module docstring)."""

    def check_top(self, t: Any, where: str, n_in: Dim, n_out: Dim) -> None:
        """A transformation that is not a member of another: the rules, then the reader."""
        self.check_transform(t, where, n_in, n_out)
        said = (f"{where}:", f"{where}.", f"{where}[")
        if not isinstance(t, dict) or any(p.message.startswith(said) for p in self.problems):
            return
        try:
            parse_transform(t, where, ndim_in=n_in, ndim_out=n_out)
        except UnsupportedError as exc:  # a MetadataError too: caught first
            self.add("ngffcore-support", f"ngffcore cannot evaluate this transformation: {exc}",
                     severity="warning")
        except MetadataError as exc:
            self.add("transform", str(exc))

    def check_transform(self, t: Any, where: str, n_in: Dim, n_out: Dim, depth: int = 0) -> Dim:
        """Record the problems of transformation ``t`` (at JSON path ``where``) mapping an
        ``n_in``-dimensional system to an ``n_out``-dimensional one; returns the output
        dimensionality it implies (None: unknown)."""
        if not isinstance(t, dict):
            return n_out  # the schema says what is wrong with it
        kind = t.get("type")
        if depth > MAX_NESTING:
            self.add("transform-nesting", f"{where}: transformations nested more than "
                     f"{MAX_NESTING} deep")
            return n_out
        check = self._checks().get(kind) if isinstance(kind, str) else None
        if check is None:
            self.add("transform-type", f"{where}: unknown transformation type {kind!r} (0.6 "
                     f"defines {', '.join(TRANSFORM_TYPES)})")
            return n_out
        return check(t, where, n_in, n_out, depth)

    def _checks(self) -> dict[str, Callable[[dict[str, Any], str, Dim, Dim, int], Dim]]:
        return {"identity": self._identity, "mapAxis": self._map_axis,
                "projectAxis": self._project_axis, "translation": self._vector,
                "scale": self._vector, "affine": self._affine, "rotation": self._rotation,
                "sequence": self._sequence, "byDimension": self._by_dimension,
                "bijection": self._bijection, "displacements": self._displacements,
                "coordinates": self._coordinates}

    # -- helpers ------------------------------------------------------------------------------
    def _same_dims(self, where: str, kind: str, n_in: Dim, n_out: Dim) -> None:
        if n_in is not None and n_out is not None and n_in != n_out:
            self.add("transform-dims", f"{where}: {kind} maps {count_of(n_in, 'axis')} to "
                     f"{count_of(n_out, 'axis')}; its input and output have the same number "
                     "of axes")

    def _length(self, where: str, what: str, n: int, dims: tuple[tuple[str, Dim], ...]
                ) -> None:
        wrong: dict[int, list[str]] = {}
        for side, dim in dims:
            if dim is not None and dim != n:
                wrong.setdefault(dim, []).append(side)
        for dim, sides in wrong.items():
            has = "has" if len(sides) == 1 else "have"
            self.add("transform-dims", f"{where}: {what} has {count_of(n, 'value')} but the "
                     f"{' and '.join(sides)} {has} {count_of(dim, 'axis')}")

    def _indices(self, values: Any, where: str, what: str, bound: Dim, side: str
                 ) -> list[int] | None:
        """The integer axis indices of ``values`` (problems recorded for the others: not an
        integer, outside ``range(bound)``, repeated); None if it is not a list."""
        if not isinstance(values, list):
            return None
        good = []
        for v in values:
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if not is_index(v):
                self.add("transform-axes", f"{where}.{what}: {v!r} is not an axis index "
                         "(an integer)")
            elif bound is not None and not 0 <= v < bound:
                self.add("transform-axes", f"{where}.{what}: {v} is not an axis of the "
                         f"{side} ({count_of(bound, 'axis')}, indices 0 to {bound - 1})")
            else:
                good.append(v)
        return good

    # -- the types ----------------------------------------------------------------------------
    def _identity(self, t: dict[str, Any], where: str, n_in: Dim, n_out: Dim, depth: int
                  ) -> Dim:
        self._same_dims(where, "identity", n_in, n_out)
        return n_in if n_in is not None else n_out

    def _vector(self, t: dict[str, Any], where: str, n_in: Dim, n_out: Dim, depth: int) -> Dim:
        kind = t["type"]
        values = t.get(kind)
        if not isinstance(values, list):
            self._same_dims(where, kind, n_in, n_out)
            return n_in if n_in is not None else n_out
        self._length(where, kind, len(values), (("input", n_in), ("output", n_out)))
        return len(values)

    def _map_axis(self, t: dict[str, Any], where: str, n_in: Dim, n_out: Dim, depth: int
                  ) -> Dim:
        values = t.get("mapAxis")
        if not isinstance(values, list):
            return n_out
        n = len(values)
        self._length(where, "mapAxis", n, (("input", n_in), ("output", n_out)))
        good = self._indices(values, where, "mapAxis", n_in if n_in is not None else n,
                             "input") or []
        for v, count in Counter(good).items():
            if count > 1:
                self.add("transform-axes", f"{where}.mapAxis: input axis {v} appears {count} "
                         "times; each appears exactly once")
        return n

    def _project_axis(self, t: dict[str, Any], where: str, n_in: Dim, n_out: Dim, depth: int
                      ) -> Dim:
        dropped = self._indices(t.get("droppedInputs", []), where, "droppedInputs", n_in,
                                "input")
        created = self._indices(t.get("createdOutputs", []), where, "createdOutputs", n_out,
                                "output")
        for what, got in (("droppedInputs", dropped), ("createdOutputs", created)):
            for v, count in Counter(got or []).items():
                if count > 1:
                    self.add("transform-axes", f"{where}.{what}: {v} appears {count} times; "
                             "the values are unique")
        if n_in is None or dropped is None or created is None:
            return n_out
        implied = n_in - len(set(dropped)) + len(set(created))
        if n_out is not None and implied != n_out:
            self.add("transform-dims", f"{where}: projectAxis drops {len(set(dropped))} of "
                     f"the input's {count_of(n_in, 'axis')} and creates {len(set(created))}, "
                     f"which makes {implied}, but the output has {count_of(n_out, 'axis')}")
        return implied

    def _matrix(self, t: dict[str, Any], where: str, kind: str) -> list[list[Any]] | None:
        """The JSON matrix of an affine or rotation, if it is a list of lists."""
        m = t.get(kind)
        if not (isinstance(m, list) and m and all(isinstance(r, list) for r in m)):
            return None
        widths = sorted({len(r) for r in m})
        if len(widths) > 1:
            self.add("transform-matrix", f"{where}: the {kind} matrix's rows have different "
                     f"lengths ({', '.join(map(str, widths))}); it is a 2D array")
            return None
        return m

    def _affine(self, t: dict[str, Any], where: str, n_in: Dim, n_out: Dim, depth: int) -> Dim:
        m = self._matrix(t, where, "affine")
        if m is None:
            return n_out  # a path (not read), or malformed: the schema reports that
        rows, cols = len(m), len(m[0])
        shape = f"{n_out if n_out is not None else 'M'}×" \
                f"{n_in + 1 if n_in is not None else 'N+1'}"
        if n_out is not None and rows != n_out:
            homogeneous = " (the homogeneous last row is omitted)" if rows == n_out + 1 else ""
            self.add("transform-dims", f"{where}: affine has {count_of(rows, 'row')} but the "
                     f"output has {count_of(n_out, 'axis')}: it is stored as {shape}"
                     f"{homogeneous}")
        if n_in is not None and cols != n_in + 1:
            self.add("transform-dims", f"{where}: affine rows have {count_of(cols, 'value')} "
                     f"but the input has {count_of(n_in, 'axis')}: it is stored as {shape} "
                     "(a column per input axis, then the translation)")
        return rows

    def _rotation(self, t: dict[str, Any], where: str, n_in: Dim, n_out: Dim, depth: int
                  ) -> Dim:
        self._same_dims(where, "rotation", n_in, n_out)
        m = self._matrix(t, where, "rotation")
        if m is None:
            return n_in if n_in is not None else n_out
        n = len(m)
        if len(m[0]) != n:
            self.add("transform-matrix", f"{where}: rotation is {n}×{len(m[0])}; it is square "
                     "(N×N)")
            return n_in if n_in is not None else n_out
        self._length(where, "rotation", n, (("input", n_in), ("output", n_out)))
        self._orthonormal(m, where)
        return n

    def _orthonormal(self, m: list[list[Any]], where: str) -> None:
        if not all(is_number(v) and math.isfinite(v) for row in m for v in row):
            return  # the schema reports non-numbers
        gram_error, det = rotation_error(np.asarray(m, dtype=np.float64))
        if gram_error > ROTATION_TOLERANCE or abs(det - 1.0) > ROTATION_TOLERANCE:
            self.add("rotation-matrix", f"{where}: not a rotation: determinant {det:.6g}, rows "
                     f"{'not ' if gram_error > ROTATION_TOLERANCE else ''}orthonormal (a "
                     "rotation has orthonormal rows and columns and determinant 1)")

    def _sequence(self, t: dict[str, Any], where: str, n_in: Dim, n_out: Dim, depth: int
                  ) -> Dim:
        members = t.get("transformations")
        if not isinstance(members, list):
            return n_out
        if not members:
            self.add("sequence", f"{where}: a sequence holds at least one transformation")
            return n_out
        dim = n_in
        for i, member in enumerate(members):
            last = i == len(members) - 1
            dim = self.check_transform(member, f"{where}.transformations[{i}]", dim,
                                       n_out if last else None, depth + 1)
        return dim if dim is not None else n_out

    def _by_dimension(self, t: dict[str, Any], where: str, n_in: Dim, n_out: Dim, depth: int
                      ) -> Dim:
        members = t.get("transformations")
        if not isinstance(members, list):
            return n_out
        covered: Counter[int] = Counter()
        for i, item in enumerate(members):
            if not isinstance(item, dict):
                continue
            iw = f"{where}.transformations[{i}]"
            in_axes, out_axes = item.get("inputAxes"), item.get("outputAxes")
            self._indices(in_axes, iw, "inputAxes", n_in, "input")
            covered.update(self._indices(out_axes, iw, "outputAxes", n_out, "output") or [])
            # the member's parameters are as long as its axis lists
            self.check_transform(item.get("transformation"), f"{iw}.transformation",
                                 len(in_axes) if isinstance(in_axes, list) else None,
                                 len(out_axes) if isinstance(out_axes, list) else None,
                                 depth + 1)
        for axis, count in sorted(covered.items()):
            if count > 1:
                self.add("byDimension-axes", f"{where}: output axis {axis} is in the "
                         f"outputAxes of {count} transformations; every output axis is in "
                         "exactly one")
        if n_out is not None:
            missing = [a for a in range(n_out) if a not in covered]
            if missing:
                self.add("byDimension-axes", f"{where}: output "
                         f"{'axis' if len(missing) == 1 else 'axes'} "
                         f"{', '.join(map(str, missing))} of {count_of(n_out, 'axis')} "
                         "in no transformation's outputAxes; every output axis is in exactly one")
        return n_out

    def _bijection(self, t: dict[str, Any], where: str, n_in: Dim, n_out: Dim, depth: int
                   ) -> Dim:
        self._same_dims(where, "bijection", n_in, n_out)
        forward = self.check_transform(t.get("forward"), f"{where}.forward", n_in, n_out,
                                       depth + 1)
        self.check_transform(t.get("inverse"), f"{where}.inverse", n_out, n_in, depth + 1)
        return n_out if n_out is not None else forward

    def _displacements(self, t: dict[str, Any], where: str, n_in: Dim, n_out: Dim, depth: int
                       ) -> Dim:
        self._same_dims(where, "displacements", n_in, n_out)
        return n_in if n_in is not None else n_out

    def _coordinates(self, t: dict[str, Any], where: str, n_in: Dim, n_out: Dim, depth: int
                     ) -> Dim:
        return n_out  # any M: only the field (not read) says which


__all__ = ["TransformRules", "is_index"]
