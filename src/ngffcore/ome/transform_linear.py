"""The parameter-vector kinds of OME-NGFF 0.6 coordinate transformation: ``identity``,
``mapAxis``, ``projectAxis``, ``translation`` and ``scale`` (all affine; the matrix kinds
are in :mod:`ngffcore.ome.transform_matrix`).

Parameter *i* belongs to axis *i*: of the input system for a permutation or dropped index,
of the output system for a created index; a scale/translation component's input and output
axis *i* are the same axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ngffcore.errors import UnsupportedError
from ngffcore.ome.transform_base import (
    MAX_TRANSFORM_NDIM,
    Transform,
    err,
    finite_vector,
    merge_ndim,
)

__all__ = ["Identity", "MapAxis", "ProjectAxis", "Translation", "Scale", "eye_h"]


def eye_h(n: int) -> np.ndarray:
    """The homogeneous ``(n + 1) × (n + 1)`` identity matrix."""
    return np.eye(n + 1, dtype=np.float64)


class Identity(Transform):
    """``identity``: output coordinate *i* = input coordinate *i*. ``ndim`` may be None
    until a coordinate system sizes it; ``apply`` then keeps the points' own width."""

    type = "identity"

    def __init__(self, ndim: int | None = None, **kw: Any) -> None:
        super().__init__(ndim_in=ndim, ndim_out=ndim, **kw)
        if ndim is not None and not 0 < ndim <= MAX_TRANSFORM_NDIM:
            raise err(self.where, f"a {ndim}-D identity (1 to {MAX_TRANSFORM_NDIM} dimensions "
                                  f"are supported)")

    def _apply(self, pts: np.ndarray) -> np.ndarray:
        return pts

    def _fix_ndim(self, ndim_in: int | None, ndim_out: int | None) -> Transform:
        n = merge_ndim(self.ndim_in, ndim_in, "identity input", self.where)
        n = merge_ndim(n, ndim_out, "identity output (= input)", self.where)
        if n == self.ndim_in:
            return self
        return Identity(n, input=self.input, output=self.output, name=self.name,
                        where=self.where)

    @property
    def is_affine(self) -> bool:
        return self.ndim_in is not None

    def to_matrix(self) -> np.ndarray:
        if self.ndim_in is None:
            raise self._unsized("the matrix")
        return eye_h(self.ndim_in)

    def inverse(self) -> Transform:
        return self._swapped()


class MapAxis(Transform):
    """``mapAxis``: output coordinate *i* = input coordinate ``axes[i]`` (a permutation of
    ``0 .. n-1``)."""

    type = "mapAxis"

    def __init__(self, axes: tuple[int, ...], **kw: Any) -> None:
        where = kw.get("where", "transform")
        n = len(axes)
        if not 1 <= n <= MAX_TRANSFORM_NDIM:
            raise err(where, f"mapAxis must list 1 to {MAX_TRANSFORM_NDIM} axis indices, "
                             f"not {n}")
        if sorted(axes) != list(range(n)):
            raise err(where, f"mapAxis {list(axes)} is not a permutation of 0..{n - 1}: "
                             f"each input axis index must appear exactly once")
        self.axes = tuple(axes)
        super().__init__(ndim_in=n, ndim_out=n, **kw)

    def _key(self) -> tuple[Any, ...]:
        return (self.axes,)

    def _apply(self, pts: np.ndarray) -> np.ndarray:
        return pts[:, list(self.axes)]

    @property
    def is_affine(self) -> bool:
        return True

    def to_matrix(self) -> np.ndarray:
        n = len(self.axes)
        m = np.zeros((n + 1, n + 1))
        m[np.arange(n), list(self.axes)] = 1.0
        m[n, n] = 1.0
        return m

    def inverse(self) -> Transform:
        inv = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inv[a] = i
        return self._swapped(axes=tuple(inv))


class ProjectAxis(Transform):
    """``projectAxis``: drop the input coordinates at ``dropped`` (``droppedInputs``), then
    insert zeros at output positions ``created`` (``createdOutputs``); the remaining input
    coordinates fill the other output positions in order. ``ndim_out = ndim_in −
    len(dropped) + len(created)``; either may be unknown until sized."""

    type = "projectAxis"

    def __init__(self, dropped: tuple[int, ...] = (), created: tuple[int, ...] = (), *,
                 ndim_in: int | None = None, ndim_out: int | None = None, **kw: Any) -> None:
        where = kw.get("where", "transform")
        if not dropped and not created:
            raise err(where, "projectAxis needs droppedInputs or createdOutputs")
        for what, idx in (("droppedInputs", dropped), ("createdOutputs", created)):
            if len(set(idx)) != len(idx):
                raise err(where, f"{what} {list(idx)} repeats an index")
            if any(i < 0 or i >= MAX_TRANSFORM_NDIM for i in idx):
                raise err(where, f"{what} {list(idx)} holds an index outside "
                                 f"0..{MAX_TRANSFORM_NDIM - 1}")
        self.dropped, self.created = tuple(dropped), tuple(created)
        super().__init__(**kw)
        self.ndim_in, self.ndim_out = self._sizes(ndim_in, ndim_out)

    def _sizes(self, ndim_in: int | None, ndim_out: int | None) -> tuple[int | None, int | None]:
        delta = len(self.created) - len(self.dropped)
        if ndim_in is None and ndim_out is not None:
            ndim_in = ndim_out - delta
        elif ndim_in is not None:
            if len(self.dropped) > ndim_in or any(i >= ndim_in for i in self.dropped):
                raise err(self.where, f"droppedInputs {list(self.dropped)} refers to axes a "
                                      f"{ndim_in}-D input does not have")
            ndim_out = merge_ndim(ndim_in + delta, ndim_out,
                                  f"projectAxis output ({ndim_in} input axes − "
                                  f"{len(self.dropped)} dropped + {len(self.created)} created)",
                                  self.where)
        if ndim_in is not None and ndim_out is not None:
            self._check_sizes(ndim_in, ndim_out)
        return ndim_in, ndim_out

    def _check_sizes(self, ndim_in: int, ndim_out: int) -> None:
        if ndim_out < 0 or ndim_in - len(self.dropped) < 0:
            raise err(self.where, f"projectAxis drops {len(self.dropped)} of {ndim_in} axes")
        if ndim_out > MAX_TRANSFORM_NDIM:
            raise err(self.where, f"projectAxis makes {ndim_out}-D points")
        if any(i >= ndim_in for i in self.dropped):
            raise err(self.where, f"droppedInputs {list(self.dropped)} refers to an axis "
                                  f"beyond the input's {ndim_in}")
        if any(i >= ndim_out for i in self.created):
            raise err(self.where, f"createdOutputs {list(self.created)} refers to an axis "
                                  f"beyond the output's {ndim_out}")

    def _key(self) -> tuple[Any, ...]:
        return (self.dropped, self.created)

    def _fix_ndim(self, ndim_in: int | None, ndim_out: int | None) -> Transform:
        n_in = merge_ndim(self.ndim_in, ndim_in, "projectAxis input", self.where)
        n_out = merge_ndim(self.ndim_out, ndim_out, "projectAxis output", self.where)
        if (n_in, n_out) == (self.ndim_in, self.ndim_out):
            return self
        return ProjectAxis(self.dropped, self.created, ndim_in=n_in, ndim_out=n_out,
                           input=self.input, output=self.output, name=self.name,
                           where=self.where)

    def _columns(self, ndim_in: int) -> tuple[list[int], list[int], int]:
        """(kept input columns, the output positions they fill, ndim_out)."""
        ndim_out = ndim_in - len(self.dropped) + len(self.created)
        self._check_sizes(ndim_in, ndim_out)
        kept = [i for i in range(ndim_in) if i not in self.dropped]
        slots = [o for o in range(ndim_out) if o not in self.created]
        return kept, slots, ndim_out

    def _apply(self, pts: np.ndarray) -> np.ndarray:
        kept, slots, ndim_out = self._columns(pts.shape[1])
        out = np.zeros((pts.shape[0], ndim_out))
        out[:, slots] = pts[:, kept]
        return out

    @property
    def is_affine(self) -> bool:
        return self.ndim_in is not None

    def to_matrix(self) -> np.ndarray:
        if self.ndim_in is None:
            raise self._unsized("the matrix")
        kept, slots, ndim_out = self._columns(self.ndim_in)
        m = np.zeros((ndim_out + 1, self.ndim_in + 1))
        m[slots, kept] = 1.0
        m[-1, -1] = 1.0
        return m

    def inverse(self) -> Transform:
        # Only adding axes loses nothing: dropping them again undoes it (a left inverse,
        # exact on the image of the forward map, which is all a point can come from).
        if self.dropped:
            raise UnsupportedError("a projectAxis that drops input axes has no inverse",
                                   path=self.where)
        return ProjectAxis(self.created, (), ndim_in=self.ndim_out, ndim_out=self.ndim_in,
                           input=self.output, output=self.input, name=self.name,
                           where=self.where)


class _Vector(Transform):
    """A square kind whose parameter is one number per axis."""

    def __init__(self, values: tuple[float, ...], **kw: Any) -> None:
        self.values = finite_vector(list(values), self.type, kw.get("where", "transform"))
        super().__init__(ndim_in=len(self.values), ndim_out=len(self.values), **kw)

    def _key(self) -> tuple[Any, ...]:
        return (self.values,)

    @property
    def is_affine(self) -> bool:
        return True


class Translation(_Vector):
    """``translation``: output coordinate *i* = input coordinate *i* + ``values[i]``."""

    type = "translation"

    def _apply(self, pts: np.ndarray) -> np.ndarray:
        out: np.ndarray = pts + np.asarray(self.values)
        return out

    def to_matrix(self) -> np.ndarray:
        m = eye_h(len(self.values))
        m[:-1, -1] = self.values
        return m

    def inverse(self) -> Transform:
        return self._swapped(values=tuple(-v for v in self.values))


class Scale(_Vector):
    """``scale``: output coordinate *i* = input coordinate *i* × ``values[i]``. Invertible
    when no factor is zero (the spec only says factors SHOULD be non-zero)."""

    type = "scale"

    def _apply(self, pts: np.ndarray) -> np.ndarray:
        out: np.ndarray = pts * np.asarray(self.values)
        return out

    def to_matrix(self) -> np.ndarray:
        n = len(self.values)
        m = eye_h(n)
        m[np.arange(n), np.arange(n)] = self.values
        return m

    def inverse(self) -> Transform:
        if any(v == 0 for v in self.values):
            raise UnsupportedError(f"scale {list(self.values)} has a zero factor: not "
                                   f"invertible", path=self.where)
        return self._swapped(values=tuple(1.0 / v for v in self.values))
