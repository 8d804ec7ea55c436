"""The matrix kinds of OME-NGFF 0.6 coordinate transformation: ``affine`` and ``rotation``,
their parameters given inline (nested JSON lists, rows first) or stored in an array at
``path`` (loaded on first use through the caller's loader).

Matrices act on column vectors: row *r* computes output coordinate *r* from the input
coordinates in axis order; an affine's last column is its translation.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from ngffcore.errors import UnsupportedError
from ngffcore.ome.transform_base import (
    MAX_TRANSFORM_NDIM,
    Transform,
    err,
    finite_vector,
    merge_ndim,
)
from ngffcore.ome.transform_linear import eye_h

__all__ = ["Affine", "Rotation", "ArrayLoader", "check_matrix", "rotation_error",
           "ROTATION_TOLERANCE"]

#: ``load(path)`` → the array stored at ``path`` (resolved by the caller); for matrices the
#: result is used as an array (an object with a ``data`` array attribute counts too)
ArrayLoader = Callable[[str], Any]

#: largest |R Rᵀ − I| entry (and |det R − 1|) a rotation may have: JSON matrices are
#: written with few decimals (0.7071…), so the check is loose; it catches non-rotations
ROTATION_TOLERANCE = 1e-3


def rotation_error(m: np.ndarray) -> tuple[float, float]:
    """How far the square matrix ``m`` is from a rotation: (largest |m mᵀ − I| entry,
    det m). A rotation within :data:`ROTATION_TOLERANCE` has the first at most the tolerance
    and the second within the tolerance of 1 (the reader and the validator share this)."""
    gram = float(np.abs(m @ m.T - np.eye(m.shape[0])).max())
    return gram, float(np.linalg.det(m))


def check_matrix(value: object, what: str, where: str) -> np.ndarray:
    """A nested JSON list (rows of numbers) or an array → a finite 2-D float64 matrix of at
    most ``MAX_TRANSFORM_NDIM + 1`` rows and columns, checked before it is built."""
    if isinstance(value, list):
        if not value or not all(isinstance(r, list) for r in value):
            raise err(where, f"{what} must be a non-empty list of rows (lists of numbers), "
                             f"not {value!r:.80}")
        if len(value) > MAX_TRANSFORM_NDIM + 1 or any(
                len(r) != len(value[0]) for r in value):
            raise err(where, f"{what} is not a rectangular matrix of at most "
                             f"{MAX_TRANSFORM_NDIM + 1} rows")
        if len(value[0]) > MAX_TRANSFORM_NDIM + 1:
            raise err(where, f"{what} has {len(value[0])} columns (at most "
                             f"{MAX_TRANSFORM_NDIM + 1})")
        rows = [finite_vector(r, f"a row of {what}", where) for r in value]
        return np.array(rows, dtype=np.float64)
    arr = np.asarray(getattr(value, "data", value))
    if arr.ndim != 2 or arr.size == 0 or max(arr.shape) > MAX_TRANSFORM_NDIM + 1:
        raise err(where, f"{what} must be a 2-D matrix of at most {MAX_TRANSFORM_NDIM + 1} "
                         f"rows and columns, not an array of shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise err(where, f"{what} holds {arr.dtype} values, not numbers")
    out = arr.astype(np.float64)
    if not np.isfinite(out).all():
        raise err(where, f"{what} holds NaN or infinite values")
    return out


class _Matrix(Transform):
    """A kind parametrised by a matrix given inline or stored at ``path`` (loaded through
    ``load`` on first use, then kept)."""

    def __init__(self, matrix: npt.ArrayLike | None = None, *, path: str | None = None,
                 load: ArrayLoader | None = None, ndim_in: int | None = None,
                 ndim_out: int | None = None, **kw: Any) -> None:
        super().__init__(ndim_in=ndim_in, ndim_out=ndim_out, **kw)
        if (matrix is None) == (path is None):
            raise err(self.where, f"{self.type} needs either an inline {self.type!r} matrix "
                                  f"or a 'path' (exactly one of them)")
        self.path = path
        self._load = load
        self._matrix: np.ndarray | None = None
        if matrix is not None:
            self._matrix = self._shaped(check_matrix(matrix, self.type, self.where))
            self.ndim_in, self.ndim_out = self._dims(self._matrix)

    @staticmethod
    @abstractmethod
    def _dims(m: np.ndarray) -> tuple[int, int]:
        """(ndim_in, ndim_out) of a matrix as :meth:`_shaped` returns it."""

    @abstractmethod
    def _shaped(self, m: np.ndarray) -> np.ndarray:
        """``m`` (as stored) checked against the known dimensionalities and brought to the
        form this kind keeps."""

    def matrix(self) -> np.ndarray:
        """The parameters as stored (loaded on first use): ``(ndim_out, ndim_in + 1)`` for
        an affine, ``(n, n)`` for a rotation."""
        if self._matrix is None:
            if self._load is None or self.path is None:
                raise UnsupportedError(f"{self.type} parameters are stored at "
                                       f"{self.path!r} and no array loader was given",
                                       path=self.where)
            self._matrix = self._shaped(check_matrix(self._load(self.path),
                                                     f"{self.type} at {self.path!r}",
                                                     self.where))
        return self._matrix

    def _key(self) -> tuple[Any, ...]:
        if self.path is not None:
            return ("path", self.path)
        m = self.matrix()
        return (m.shape, tuple(m.ravel().tolist()))

    @property
    def is_affine(self) -> bool:
        return self._matrix is not None or self._load is not None

    def _fix_ndim(self, ndim_in: int | None, ndim_out: int | None) -> Transform:
        if self._matrix is None:
            n_in = merge_ndim(self.ndim_in, ndim_in, f"{self.type} input", self.where)
            n_out = merge_ndim(self.ndim_out, ndim_out, f"{self.type} output", self.where)
            if (n_in, n_out) == (self.ndim_in, self.ndim_out):
                return self
            return self._resized(n_in, n_out)
        want = (self.ndim_in if ndim_in is None else ndim_in,
                self.ndim_out if ndim_out is None else ndim_out)
        if want == (self.ndim_in, self.ndim_out):
            return self
        # _shaped checks the matrix against the new sizes, saying what is wrong, and trims
        # the full homogeneous form (one row more than the output has axes)
        new = self._resized(*want)
        new._matrix = new._shaped(self._matrix)
        new.ndim_in, new.ndim_out = new._dims(new._matrix)
        return new

    def _resized(self, ndim_in: int | None, ndim_out: int | None) -> _Matrix:
        new = copy.copy(self)
        new.ndim_in, new.ndim_out = ndim_in, ndim_out
        return new


class Affine(_Matrix):
    """``affine``: ``y = A[:, :-1] @ x + A[:, -1]`` with ``A`` of shape ``(ndim_out,
    ndim_in + 1)`` (the spec's form). The full homogeneous ``(ndim_out + 1, ndim_in + 1)``
    form whose last row is ``[0 … 0 1]`` is accepted too where the output dimensionality
    tells the two apart (the referenced system's axes)."""

    type = "affine"

    @staticmethod
    def _dims(m: np.ndarray) -> tuple[int, int]:
        return m.shape[1] - 1, m.shape[0]

    def _shaped(self, m: np.ndarray) -> np.ndarray:
        rows, cols = m.shape
        if cols < 2:
            raise err(self.where, f"an affine matrix needs ndim_in + 1 ≥ 2 columns, not {cols}")
        if self.ndim_in is not None and cols != self.ndim_in + 1:
            raise err(self.where, f"affine matrix is {rows}×{cols}: {cols} columns, but the "
                                  f"input has {self.ndim_in} axes (needs ndim_in + 1 = "
                                  f"{self.ndim_in + 1} columns)")
        if self.ndim_out is not None and rows != self.ndim_out:
            last = np.zeros(cols)
            last[-1] = 1.0
            if rows == self.ndim_out + 1 and np.array_equal(m[-1], last):
                return m[:-1].copy()
            raise err(self.where, f"affine matrix is {rows}×{cols}: {rows} rows, but the "
                                  f"output has {self.ndim_out} axes (needs ndim_out rows, or "
                                  f"ndim_out + 1 with a last row [0 … 0 1])")
        return m

    def _apply(self, pts: np.ndarray) -> np.ndarray:
        a = self.matrix()
        if pts.shape[1] != a.shape[1] - 1:
            raise err(self.where, f"affine matrix takes {a.shape[1] - 1}-D points, "
                                  f"given {pts.shape[1]}-D ones")
        out: np.ndarray = pts @ a[:, :-1].T + a[:, -1]
        return out

    def to_matrix(self) -> np.ndarray:
        a = self.matrix()
        return np.vstack([a, np.eye(1, a.shape[1], a.shape[1] - 1)])

    def inverse(self) -> Transform:
        h = self.to_matrix()
        if h.shape[0] != h.shape[1]:
            raise UnsupportedError(f"a {h.shape[1] - 1}-D → {h.shape[0] - 1}-D affine is not "
                                   f"invertible", path=self.where)
        lin = h[:-1, :-1]
        if np.linalg.cond(lin) > 1e12:
            raise UnsupportedError("the affine matrix is singular: not invertible",
                                   path=self.where)
        inv = np.linalg.inv(h)
        return Affine(inv[:-1], input=self.output, output=self.input, name=self.name,
                      where=self.where)


class Rotation(_Matrix):
    """``rotation``: ``y = R @ x`` with ``R`` an ``n × n`` orthonormal matrix of
    determinant 1 (checked to :data:`ROTATION_TOLERANCE`)."""

    type = "rotation"

    @staticmethod
    def _dims(m: np.ndarray) -> tuple[int, int]:
        return m.shape[0], m.shape[0]

    def _shaped(self, m: np.ndarray) -> np.ndarray:
        rows, cols = m.shape
        n = self.ndim_in if self.ndim_in is not None else self.ndim_out
        if rows != cols or (n is not None and rows != n) or (
                self.ndim_out is not None and rows != self.ndim_out):
            need = f"{n}×{n}" if n is not None else "square"
            raise err(self.where, f"rotation matrix is {rows}×{cols}, not {need}")
        gram, det = rotation_error(m)
        if gram > ROTATION_TOLERANCE or abs(det - 1.0) > ROTATION_TOLERANCE:
            raise err(self.where, "rotation matrix is not orthonormal with determinant 1")
        return m

    def _fix_ndim(self, ndim_in: int | None, ndim_out: int | None) -> Transform:
        n = merge_ndim(ndim_in, ndim_out, "rotation input and output", self.where)
        return super()._fix_ndim(n, n)

    def _apply(self, pts: np.ndarray) -> np.ndarray:
        r = self.matrix()
        if pts.shape[1] != r.shape[0]:
            raise err(self.where, f"rotation matrix takes {r.shape[0]}-D points, given "
                                  f"{pts.shape[1]}-D ones")
        out: np.ndarray = pts @ r.T
        return out

    def to_matrix(self) -> np.ndarray:
        r = self.matrix()
        h = eye_h(r.shape[0])
        h[:-1, :-1] = r
        return h

    def inverse(self) -> Transform:
        return Rotation(self.matrix().T.copy(), input=self.output, output=self.input,
                        name=self.name, where=self.where)

