"""The :class:`Transform` base class of the OME-NGFF 0.6 coordinate transformations, and the
checks every transform shares: points in, points out, dimensionality bookkeeping, limits.

A transform maps points of its input coordinate system to points of its output system:
``apply`` takes an ``(n, ndim_in)`` array (point *k* is row *k*, coordinate *i* is along axis
*i* of the input system) and returns ``(n, ndim_out)`` float64. Pure: no I/O of its own
(transforms whose parameters live in arrays call the loader they were given).
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import numpy.typing as npt

from ngffcore.errors import ArgumentError, MetadataError, UnsupportedError
from ngffcore.ome.coordinate_systems import MAX_SYSTEM_AXES, SystemRef

__all__ = ["Transform", "MAX_TRANSFORM_NDIM", "MAX_NESTING", "MAX_TRANSFORMS",
           "as_points", "finite_vector", "merge_ndim"]

#: most dimensions a transform's input or output may have (the spec allows 5); checked
#: before any matrix is built, so a hostile parameter list never allocates much
MAX_TRANSFORM_NDIM = MAX_SYSTEM_AXES
#: deepest nesting of wrapper transforms (sequence, byDimension, bijection) read
MAX_NESTING = 32
#: most transforms (wrappers and leaves) one parsed transform may contain
MAX_TRANSFORMS = 10_000


def err(where: str, message: str) -> MetadataError:
    return MetadataError(message, path=where)


def is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def finite_vector(value: object, what: str, where: str) -> tuple[float, ...]:
    """A JSON list of finite numbers (1 to :data:`MAX_TRANSFORM_NDIM` of them) → floats."""
    if not isinstance(value, (list, tuple)) or not value:
        raise err(where, f"{what} must be a non-empty list of numbers, not {value!r:.80}")
    if len(value) > MAX_TRANSFORM_NDIM:
        raise err(where, f"{what} has {len(value)} entries: more dimensions than the "
                         f"{MAX_TRANSFORM_NDIM} read")
    out = []
    for v in value:
        if not is_number(v) or not math.isfinite(v):
            raise err(where, f"{what} holds {v!r:.40}, not a finite number")
        out.append(float(v))
    return tuple(out)


def merge_ndim(a: int | None, b: int | None, what: str, where: str) -> int | None:
    """The dimensionality two sources agree on (None if neither knows); a conflict is a
    :class:`MetadataError` naming ``what``."""
    if a is None:
        return b
    if b is not None and a != b:
        raise err(where, f"{what}: {a} dimensions here but {b} in the referenced coordinate "
                         f"system (or the neighbouring transform)")
    return a


def as_points(points: npt.ArrayLike, ndim: int | None, what: str) -> np.ndarray:
    """``points`` as a C-contiguous float64 ``(n, ndim)`` array (a copy: callers may write
    it). :class:`ArgumentError` for anything else."""
    try:
        arr = np.array(points, dtype=np.float64, copy=True, order="C")
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"{what}: points must be an (n, ndim) array of numbers: "
                            f"{exc}") from None
    if arr.ndim != 2:
        raise ArgumentError(f"{what}: points must be a 2-D (n, ndim) array, not shape "
                            f"{arr.shape}")
    if ndim is not None and arr.shape[1] != ndim:
        raise ArgumentError(f"{what}: points have {arr.shape[1]} coordinates but the "
                            f"transform's input has {ndim} dimensions")
    return arr


class Transform(ABC):
    """One coordinate transformation (base class; one subclass per spec type).

    ``type`` is the spec's type string; ``input``/``output`` the coordinate systems it maps
    between as written (None where absent, e.g. inside a ``sequence``); ``ndim_in``/
    ``ndim_out`` the dimensionalities where known (from the parameters or the systems the
    parser was told of; None e.g. for an ``identity`` nobody sized); ``name`` the optional
    ``name``; ``where`` the document and JSON path errors name.
    """

    type: str = ""

    def __init__(self, *, input: SystemRef | None = None, output: SystemRef | None = None,
                 ndim_in: int | None = None, ndim_out: int | None = None,
                 name: str | None = None, where: str = "transform") -> None:
        self.input = input
        self.output = output
        self.ndim_in = ndim_in
        self.ndim_out = ndim_out
        self.name = name
        self.where = where

    # -- the operations ---------------------------------------------------------------
    def apply(self, points: npt.ArrayLike) -> np.ndarray:
        """(n, ndim_in) float points in the input system → (n, ndim_out) float64 in the
        output system. :class:`ArgumentError` for points of the wrong shape;
        :class:`UnsupportedError` where this transform cannot be evaluated (a field
        without a loader, cubic interpolation)."""
        pts = as_points(points, self.ndim_in, f"{self.where} ({self.type})")
        # finite parameters and points can still map beyond float64: those coordinates come
        # out as inf (or NaN), as the arithmetic gives them, without a numpy warning
        with np.errstate(over="ignore", invalid="ignore"):
            out = self._apply(pts)
        return np.ascontiguousarray(out, dtype=np.float64)

    def to_matrix(self) -> np.ndarray:
        """Homogeneous ``(ndim_out + 1, ndim_in + 1)`` float64 matrix ``A`` with
        ``[y, 1] = A @ [x, 1]``, for the affine kinds (identity, mapAxis, projectAxis,
        translation, scale, affine, rotation and sequences, byDimensions and bijections of
        them); :class:`UnsupportedError` for the others or where a dimensionality is
        unknown."""
        raise UnsupportedError(f"a {self.type} transformation is not affine: it has no "
                               f"matrix", path=self.where)

    def inverse(self) -> Transform:
        """The inverse transform (input and output swapped) where the spec defines one in
        closed form; :class:`UnsupportedError` otherwise."""
        raise UnsupportedError(f"a {self.type} transformation has no closed-form inverse "
                               f"(wrap it in a bijection with an explicit inverse)",
                               path=self.where)

    @property
    def is_affine(self) -> bool:
        """Whether :meth:`to_matrix` can answer (without loading anything)."""
        return False

    # -- helpers for subclasses and wrappers -----------------------------------------
    @abstractmethod
    def _apply(self, pts: np.ndarray) -> np.ndarray:
        """``apply`` on checked points (float64, ``(n, ndim_in)`` where ndim_in is known)."""

    def _key(self) -> tuple[Any, ...]:
        """The parameters that make two transforms of this class equal."""
        return ()

    def _fix_ndim(self, ndim_in: int | None, ndim_out: int | None) -> Transform:
        """This transform with its dimensionalities checked against (and, where unknown,
        taken from) ``ndim_in``/``ndim_out``: :class:`MetadataError` on a mismatch."""
        merge_ndim(self.ndim_in, ndim_in, f"{self.type} input", self.where)
        merge_ndim(self.ndim_out, ndim_out, f"{self.type} output", self.where)
        return self

    def _swapped(self, **changes: Any) -> Transform:
        """A shallow copy with input/output swapped, then ``changes`` applied."""
        new = copy.copy(self)
        new.input, new.output = self.output, self.input
        new.ndim_in, new.ndim_out = self.ndim_out, self.ndim_in
        for k, v in changes.items():
            setattr(new, k, v)
        return new

    def with_refs(self, input: SystemRef | None, output: SystemRef | None) -> Transform:
        """A copy mapping between other systems (parameters shared)."""
        new = copy.copy(self)
        new.input, new.output = input, output
        return new

    def _unsized(self, what: str) -> UnsupportedError:
        return UnsupportedError(f"{what} of a {self.type} transformation whose "
                                f"dimensionality is unknown (give the coordinate systems)",
                                path=self.where)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Transform) or type(other) is not type(self):
            return NotImplemented
        return (self._key() == other._key() and self.input == other.input
                and self.output == other.output and self.name == other.name
                and (self.ndim_in, self.ndim_out) == (other.ndim_in, other.ndim_out))

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key(), self.input, self.output, self.name))

    def __repr__(self) -> str:
        params = ", ".join(repr(k) for k in self._key())
        refs = f"input={self.input!r}, output={self.output!r}"
        return f"{type(self).__name__}({params}{', ' if params else ''}{refs})"
