"""``coordinates`` and ``displacements``: OME-NGFF 0.6 transformations given by a field of
vectors sampled on a regular grid, and the interpolation of such a field at points.

The field is an array with one axis per input axis (the grid) and one more axis holding the
vectors (the "vector axis", ``type: "coordinate"`` / ``"displacement"`` in the field's own
coordinate system). Its own transform maps field array indices to the transformation's
input system; a point is looked up at its index-space position (via that transform's
inverse), the field is interpolated there (nearest, multilinear or cubic B-spline), and the
vector is the output point (``coordinates``) or is added to the input point
(``displacements``). Vector component *i* belongs to output axis *i*.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from ngffcore.errors import UnsupportedError
from ngffcore.ome.multiscales import Axis
from ngffcore.ome.transform_base import Transform, err, merge_ndim
from ngffcore.ome.transform_spline import bspline_coefficients, bspline_evaluate

__all__ = ["FieldData", "FieldLoader", "Coordinates", "Displacements", "sample_nearest",
           "sample_linear", "sample_cubic", "CUBIC", "MAX_LINEAR_NDIM", "MAX_CUBIC_NDIM"]

#: the two spellings of cubic B-spline interpolation: the text's ``bspline-cubic``, the
#: schema's ``cubic``. With ``nearest`` and ``linear``, the names the spec lists (all
#: evaluated; other names raise UnsupportedError when applied)
CUBIC = ("bspline-cubic", "cubic")
#: most grid axes linear interpolation evaluates (it visits 2**n corners per point)
MAX_LINEAR_NDIM = 8
#: most grid axes cubic interpolation evaluates (it visits 4**n neighbours per point)
MAX_CUBIC_NDIM = 6
_VECTOR_TYPES = ("coordinate", "displacement")


@dataclass(frozen=True)
class FieldData:
    """A field as the caller loaded it from the transformation's ``path``.

    ``data``: the array, grid axes plus one vector axis. ``axes``: the field's coordinate
    system axes (one per array axis) — the vector axis is the one of type ``"coordinate"``/
    ``"displacement"``; ``vector_axis`` gives its index directly instead. Without either,
    the vector axis is the last one. ``transform``: the field's own transform from array
    indices to the transformation's input system (its dataset's ``coordinateTransformations``,
    which must be invertible: a scale/translation as in the spec's example); None means array
    index *i* is input coordinate *i*. It may act on the grid axes only (N-D) or include the
    vector axis (N+1-D, as the field's coordinate system does); then the vector axis'
    coordinate is taken as 0 and dropped after the inverse."""

    data: Any
    axes: tuple[Axis, ...] | None = None
    vector_axis: int | None = None
    transform: Transform | None = None


#: ``load(path)`` → the field at ``path`` (already resolved by the caller against the group
#: holding the transformation): a bare array or a :class:`FieldData`
FieldLoader = Callable[[str], Union[np.ndarray, FieldData, Any]]


def _inside(idx: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Rows of ``idx`` inside the field's pixels: ``-0.5 <= i < n - 0.5`` on every axis (the
    spec's half-open pixel extent; NaN is outside)."""
    out: np.ndarray = np.all((idx >= -0.5) & (idx < grid - 0.5), axis=1)
    return out


def sample_nearest(vectors: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``vectors`` (grid shape + (k,)) at index-space points ``idx`` (n, grid ndim) by nearest
    neighbour (the sample whose pixel holds the point); NaN rows for points outside the
    grid's pixels."""
    grid = np.asarray(vectors.shape[:-1])
    out = np.full((idx.shape[0], vectors.shape[-1]), np.nan)
    ok = _inside(idx, grid)
    i = np.floor(idx[ok] + 0.5).astype(np.intp)
    np.clip(i, 0, grid - 1, out=i)
    out[ok] = vectors[tuple(i.T)]
    return out


def sample_linear(vectors: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``vectors`` at ``idx`` by multilinear interpolation between the 2**ndim surrounding
    samples; in the half pixel between the outermost samples and the grid's edge the edge
    value holds; NaN rows outside the grid's pixels."""
    grid = np.asarray(vectors.shape[:-1])
    ndim = len(grid)
    out = np.full((idx.shape[0], vectors.shape[-1]), np.nan)
    ok = _inside(idx, grid)
    x = np.clip(idx[ok], 0, grid - 1)
    i0 = np.minimum(np.floor(x).astype(np.intp), np.maximum(grid - 2, 0))
    frac = x - i0
    acc = np.zeros((x.shape[0], vectors.shape[-1]))
    for corner in range(2**ndim):
        w = np.ones(x.shape[0])
        at = []
        for a in range(ndim):
            if (corner >> a) & 1:
                w = w * frac[:, a]
                at.append(np.minimum(i0[:, a] + 1, grid[a] - 1))
            else:
                w = w * (1.0 - frac[:, a])
                at.append(i0[:, a])
        part = w[:, None] * vectors[tuple(at)]
        part[w == 0] = 0.0  # a NaN sample with no weight must not poison the point
        acc += part
    out[ok] = acc
    return out


def sample_cubic(vectors: np.ndarray, idx: np.ndarray,
                 coefficients: np.ndarray | None = None) -> np.ndarray:
    """``vectors`` (grid shape + (k,)) at index-space points ``idx`` (n, grid ndim) by the
    interpolating cubic B-spline (Thévenaz et al. 2000, section 8.3; see
    :mod:`ngffcore.ome.transform_spline`): it passes through every sample, and the samples
    are extended mirror-symmetrically about the outermost ones (scipy.ndimage's
    ``mode="mirror"``), which also gives the values in the half pixel between the outermost
    samples and the grid's edge. NaN rows outside the grid's pixels, as for the other
    interpolations. ``coefficients``: ``vectors`` already prefiltered (a cache); computed
    here when None. A NaN sample makes the whole field NaN (the prefilter is recursive)."""
    grid = np.asarray(vectors.shape[:-1])
    if coefficients is None:
        coefficients = bspline_coefficients(vectors, len(grid))
    out = np.full((idx.shape[0], vectors.shape[-1]), np.nan)
    ok = _inside(idx, grid)
    out[ok] = bspline_evaluate(coefficients, idx[ok])
    return out


class _Loaded:
    """A loaded field: vectors with the vector axis last; ``coefficients`` are its cubic
    B-spline coefficients, computed on the first cubic lookup and kept."""

    __slots__ = ("vectors", "to_index", "vector_axis", "with_vector_axis", "coefficients")

    def __init__(self, vectors: np.ndarray, to_index: Transform | None, vector_axis: int,
                 with_vector_axis: bool) -> None:
        self.vectors = vectors
        self.to_index = to_index
        self.vector_axis = vector_axis
        self.with_vector_axis = with_vector_axis
        self.coefficients: np.ndarray | None = None


class _Field(Transform):
    """The shared part of ``coordinates`` and ``displacements``: the field at ``path``,
    loaded through ``load`` on first use and kept."""

    vector_type = ""

    def __init__(self, path: str, *, interpolation: str = "linear",
                 load: FieldLoader | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        if not isinstance(path, str) or not path:
            raise err(self.where, f"{self.type} needs a non-empty string 'path'")
        self.path = path
        self.interpolation = interpolation
        self._load = load
        self._loaded: _Loaded | None = None

    def _key(self) -> tuple[Any, ...]:
        return (self.path, self.interpolation)

    def _vector_axis(self, fd: FieldData, data: np.ndarray, at: str) -> int:
        if fd.vector_axis is not None:
            if not -data.ndim <= fd.vector_axis < data.ndim:
                raise err(self.where, f"{at}: vector axis {fd.vector_axis} of a "
                                      f"{data.ndim}-D field")
            return fd.vector_axis % data.ndim
        if fd.axes is None:
            return data.ndim - 1
        if len(fd.axes) != data.ndim:
            raise err(self.where, f"{at}: the field has {data.ndim} dimensions but its "
                                  f"coordinate system {len(fd.axes)} axes")
        found = [i for i, a in enumerate(fd.axes) if a.type in _VECTOR_TYPES]
        if len(found) != 1:
            raise err(self.where, f"{at}: the field's axes must have exactly one axis of type "
                                  f"{self.vector_type!r}, found {len(found)}")
        axis = fd.axes[found[0]]
        if axis.type != self.vector_type:
            raise err(self.where, f"{at}: a {self.type} field's vector axis must have type "
                                  f"{self.vector_type!r}, not {axis.type!r}")
        return found[0]

    def field(self) -> _Loaded:
        """The field, loaded and checked (once)."""
        if self._loaded is not None:
            return self._loaded
        if self._load is None:
            raise UnsupportedError(f"the {self.type} field is stored at {self.path!r} and no "
                                   f"array loader was given", path=self.where)
        got = self._load(self.path)
        fd = got if isinstance(got, FieldData) else FieldData(got)
        at = f"field {self.path!r}"
        data = np.asarray(fd.data)
        if data.dtype.kind not in "biuf":
            raise err(self.where, f"{at} holds {data.dtype} values, not numbers")
        if data.ndim == 1:
            # xarray-style coordinate list: a 1-D grid of 1-vectors
            data, vec = data[:, None], 1
        else:
            vec = self._vector_axis(fd, data, at)
        grid_ndim = data.ndim - 1
        n_vec = data.shape[vec]
        if data.size == 0:
            raise err(self.where, f"{at} is empty (shape {data.shape})")
        if self.ndim_in is not None and grid_ndim != self.ndim_in:
            raise err(self.where, f"{at} has {grid_ndim} grid axes (besides its vector axis) "
                                  f"but the input system has {self.ndim_in} axes")
        if self.type == "displacements" and n_vec != grid_ndim:
            raise err(self.where, f"{at}: displacement vectors have {n_vec} components for "
                                  f"{grid_ndim}-D points")
        if self.ndim_out is not None and n_vec != self.ndim_out:
            raise err(self.where, f"{at} holds {n_vec}-component vectors but the output "
                                  f"system has {self.ndim_out} axes")
        to_index, with_vec = None, False
        if fd.transform is not None:
            t = fd.transform
            if t.ndim_in not in (None, grid_ndim, grid_ndim + 1) or t.ndim_out != t.ndim_in:
                raise err(self.where, f"{at}: its own transform maps {t.ndim_in}-D to "
                                      f"{t.ndim_out}-D points, not {grid_ndim}-D (or with the "
                                      f"vector axis, {grid_ndim + 1}-D) ones")
            to_index, with_vec = t.inverse(), t.ndim_in == grid_ndim + 1
        vectors = np.moveaxis(data, vec, -1).astype(np.float64)
        self._loaded = _Loaded(vectors, to_index, vec, with_vec)
        return self._loaded

    def _index_points(self, pts: np.ndarray, f: _Loaded) -> np.ndarray:
        if f.to_index is None:
            return pts
        if not f.with_vector_axis:
            return f.to_index.apply(pts)
        full = np.insert(pts, f.vector_axis, 0.0, axis=1)
        return np.delete(f.to_index.apply(full), f.vector_axis, axis=1)

    def _vectors_at(self, pts: np.ndarray) -> np.ndarray:
        f = self.field()
        grid_ndim = f.vectors.ndim - 1
        if pts.shape[1] != grid_ndim:
            raise err(self.where, f"{self.type} field {self.path!r} is {grid_ndim}-D; given "
                                  f"{pts.shape[1]}-D points")
        idx = self._index_points(pts, f)
        if self.interpolation == "nearest":
            return sample_nearest(f.vectors, idx)
        if self.interpolation == "linear":
            if grid_ndim > MAX_LINEAR_NDIM:
                raise UnsupportedError(f"linear interpolation of a {grid_ndim}-D field (at "
                                       f"most {MAX_LINEAR_NDIM}-D)", path=self.where)
            return sample_linear(f.vectors, idx)
        if self.interpolation in CUBIC:
            if grid_ndim > MAX_CUBIC_NDIM:
                raise UnsupportedError(f"cubic interpolation of a {grid_ndim}-D field (at "
                                       f"most {MAX_CUBIC_NDIM}-D)", path=self.where)
            if f.coefficients is None:
                f.coefficients = bspline_coefficients(f.vectors, grid_ndim)
            return sample_cubic(f.vectors, idx, f.coefficients)
        raise UnsupportedError(f"{self.interpolation!r} interpolation of a {self.type} field "
                               f"is not implemented (only 'nearest', 'linear' and "
                               f"'bspline-cubic'/'cubic')", path=self.where)


class Coordinates(_Field):
    """``coordinates``: the output point is the field's vector at the input point."""

    type = "coordinates"
    vector_type = "coordinate"

    def _fix_ndim(self, ndim_in: int | None, ndim_out: int | None) -> Transform:
        n_in = merge_ndim(self.ndim_in, ndim_in, "coordinates input", self.where)
        n_out = merge_ndim(self.ndim_out, ndim_out, "coordinates output", self.where)
        if (n_in, n_out) == (self.ndim_in, self.ndim_out):
            return self
        new = Coordinates(self.path, interpolation=self.interpolation, load=self._load,
                          input=self.input, output=self.output, ndim_in=n_in, ndim_out=n_out,
                          name=self.name, where=self.where)
        return new

    def _apply(self, pts: np.ndarray) -> np.ndarray:
        return self._vectors_at(pts)


class Displacements(_Field):
    """``displacements``: the output point is the input point plus the field's vector there
    (input and output have the same dimensionality)."""

    type = "displacements"
    vector_type = "displacement"

    def __init__(self, path: str, *, ndim_in: int | None = None, ndim_out: int | None = None,
                 **kw: Any) -> None:
        super().__init__(path, **kw)
        n = merge_ndim(ndim_in, ndim_out, "displacements input and output", self.where)
        self.ndim_in = self.ndim_out = n

    def _fix_ndim(self, ndim_in: int | None, ndim_out: int | None) -> Transform:
        n = merge_ndim(ndim_in, ndim_out, "displacements input and output", self.where)
        n = merge_ndim(self.ndim_in, n, "displacements input", self.where)
        if n == self.ndim_in:
            return self
        return Displacements(self.path, interpolation=self.interpolation, load=self._load,
                             input=self.input, output=self.output, ndim_in=n, ndim_out=n,
                             name=self.name, where=self.where)

    def _apply(self, pts: np.ndarray) -> np.ndarray:
        out: np.ndarray = pts + self._vectors_at(pts)
        return out
