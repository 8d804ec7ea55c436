"""Physical regions → pixel boxes, and the choice of a level for a resolution.

Pure arithmetic, documented in docs/ome.md ("Pixel ↔ physical rounding"): pixel ``i`` has its
centre at ``translation + i·scale``; a half-open physical interval ``[a, b)`` selects the
pixels whose centres lie in it. The rule is the same on every level, so one region maps to
boxes that cover the same physical extent on all levels (up to one coarse pixel).

:class:`Placement` says where a level's pixels lie in one coordinate system (OME-NGFF 0.6:
any system of the image): axis-aligned (scale + translation, axes possibly permuted by
``mapAxis``, scales possibly negative) regions map to boxes by the rule above, axis by
axis; for an affine (rotation, shear) the box is the array-space bounding box of the
region's preimage (docs/ome.md, "OME-NGFF 0.6").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from ngffcore.errors import ArgumentError, SelectionError, UnsupportedError
from ngffcore.ome.multiscales import Axis

#: absorbs floating-point error: an edge at t + k·s (computed in floats) selects pixel k
_EPS = 1e-9

Interval = Union[tuple[float, float], float, None]

#: pixel positions are clamped to ±this before rounding: a finite bound divided by a tiny
#: scale can overflow to ±inf, which has no integer (the result is clipped to the axis anyway)
_FAR = 2.0**62


def _floor(v: float) -> int:
    return math.floor(min(max(v, -_FAR), _FAR))


def _ceil(v: float) -> int:
    return math.ceil(min(max(v, -_FAR), _FAR))


def _bound(value: Any, what: str) -> float:
    """A region bound as a finite float, else ArgumentError (NaN and ±inf select nothing
    meaningful, and a string is not a position)."""
    if isinstance(value, bool):
        raise ArgumentError(f"{what} must be a finite number, not {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ArgumentError(f"{what} must be a finite number, not {value!r:.60}") from None
    if not math.isfinite(v):
        raise ArgumentError(f"{what} must be a finite number, not {value!r}")
    return v


def axis_box(interval: Interval, scale: float, translation: float, size: int
             ) -> tuple[int, int]:
    """The half-open pixel range ``[start, stop)`` of one axis for a physical interval
    (``(a, b)``, a scalar point, or None for the whole axis), clipped to ``[0, size)``."""
    if interval is None:
        return 0, size
    if isinstance(interval, (int, float)):
        i = _floor((_bound(interval, "region point") - translation) / scale + 0.5 + _EPS)
        if not 0 <= i < size:  # outside the image: nothing, not the nearest edge pixel
            i = min(max(i, 0), size)
            return i, i
        return i, i + 1
    a, b = (_bound(v, f"region bound of {interval!r}") for v in interval)
    if b < a:
        raise SelectionError(f"region interval {interval!r} ends before it starts")
    start = _ceil((a - translation) / scale - _EPS)
    stop = _ceil((b - translation) / scale - _EPS)
    if start >= stop and b > a:
        # narrower than a pixel: the pixel whose span holds the midpoint
        start = _floor((a / 2 + b / 2 - translation) / scale + 0.5 + _EPS)
        stop = start + 1
    start, stop = min(max(start, 0), size), min(max(stop, 0), size)
    return start, max(start, stop)


def region_intervals(axes: Sequence[Axis], region: Mapping[str, Any] | None,
                     center: Mapping[str, Any] | None, size: Mapping[str, Any] | None
                     ) -> list[Interval]:
    """Per-axis physical intervals from a ``{axis: (start, stop) | point}`` region and/or
    ``center``/``size`` mappings; axes not named are None (whole axis)."""
    names = [a.name for a in axes]
    out: list[Interval] = [None] * len(axes)
    region = dict(region or {})
    center = dict(center or {})
    size = dict(size or {})
    for what, mapping in (("region", region), ("center", center), ("size", size)):
        unknown = sorted(set(mapping) - set(names))
        if unknown:
            raise SelectionError(f"{what} names axes {unknown}; the image has {names}")
    if set(center) != set(size):
        raise SelectionError("center and size must name the same axes")
    both = sorted(set(region) & set(center))
    if both:
        raise SelectionError(f"axes {both} given both as a region and as center/size")
    for i, name in enumerate(names):
        if name in region:
            value = region[name]
            if value is None:
                out[i] = value
            elif isinstance(value, (int, float)):
                out[i] = _bound(value, f"region[{name!r}]")
            elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
                out[i] = (_bound(value[0], f"region[{name!r}] start"),
                          _bound(value[1], f"region[{name!r}] stop"))
            else:
                raise SelectionError(f"region[{name!r}] must be (start, stop), a number or "
                                     f"None, not {value!r:.60}")
        elif name in center:
            c = _bound(center[name], f"center[{name!r}]")
            s = _bound(size[name], f"size[{name!r}]")
            if s < 0:
                raise SelectionError(f"size[{name!r}] is negative")
            out[i] = (c - s / 2, c + s / 2)
    return out


def choose_level(axes: Sequence[Axis], scales: Sequence[Sequence[float]],
                 resolution: float | Mapping[str, float]) -> int:
    """Index of the coarsest level whose pixel size is ≤ the target on every spatial axis the
    target names (a number names all); level 0 if none is fine enough."""
    names = [a.name for a in axes]
    if isinstance(resolution, Mapping):
        unknown = sorted(set(resolution) - set(names))
        if unknown:
            raise SelectionError(f"resolution names axes {unknown}; the image has {names}")
        targets = {names.index(k): float(v) for k, v in resolution.items()}
    else:
        targets = {i: float(resolution) for i, a in enumerate(axes) if a.is_spatial}
    if not targets:
        raise SelectionError("the image has no spatial axes to choose a level by")
    for i, v in targets.items():
        if not (v > 0 and math.isfinite(v)):
            raise SelectionError(f"resolution for axis {names[i]!r} must be > 0, not {v}")
    fitting = [level for level, scale in enumerate(scales)
               if all(scale[i] <= v * (1 + _EPS) for i, v in targets.items())]
    if not fitting:
        return 0
    # by pixel area over the targeted axes, not by index: the spec orders levels finest
    # first, but a pyramid listed otherwise still gets its coarsest fitting level
    return max(fitting, key=lambda level: (math.prod(scales[level][i] for i in targets), level))


#: one system axis of an axis-aligned placement: (array axis, scale, translation)
AxisMap = tuple[int, float, float]


def _aligned(matrix: np.ndarray) -> tuple[AxisMap, ...] | None:
    """Per output axis ``(input axis, scale, translation)`` when the homogeneous matrix maps
    every input axis to exactly one output axis (a scale + translation, axes permuted);
    else None."""
    n_out, n_in = matrix.shape[0] - 1, matrix.shape[1] - 1
    if n_out != n_in:
        return None
    linear = matrix[:n_out, :n_in]
    nonzero = linear != 0
    if not (np.all(nonzero.sum(axis=0) == 1) and np.all(nonzero.sum(axis=1) == 1)):
        return None
    cols = nonzero.argmax(axis=1)
    return tuple((int(j), float(linear[i, j]), float(matrix[i, n_in]))
                 for i, j in enumerate(cols))


@dataclass(frozen=True, eq=False)
class Placement:
    """Where the pixels of one level lie in one coordinate system.

    ``matrix``: homogeneous ``(ndim_out + 1, ndim_in + 1)`` float64, array index (pixel
    centres at integers) → coordinates of the system; ``aligned``: per system axis
    ``(array axis, scale, translation)`` when the map is axis by axis (scale + translation,
    possibly permuted), else None (an affine with rotation or shear, or a change of
    dimensionality)."""

    matrix: np.ndarray
    aligned: tuple[AxisMap, ...] | None

    @classmethod
    def of(cls, matrix: np.ndarray, where: str | None = None) -> "Placement":
        """From a transform's homogeneous matrix (``where`` names it in errors)."""
        m = np.array(matrix, dtype=np.float64)
        if not np.all(np.isfinite(m)):  # finite parameters can compose to ±inf
            raise UnsupportedError("the transform's matrix holds values that are not finite",
                                   path=where)
        return cls(m, _aligned(m))

    @classmethod
    def diagonal(cls, scale: Sequence[float], translation: Sequence[float]) -> "Placement":
        """A scale + translation in axis order (the levels of OME-NGFF 0.1–0.5)."""
        n = len(scale)
        m = np.eye(n + 1)
        m[np.arange(n), np.arange(n)] = scale
        m[:n, n] = translation
        return cls(m, tuple((i, float(s), float(t))
                            for i, (s, t) in enumerate(zip(scale, translation))))

    @property
    def is_diagonal(self) -> bool:
        """Scale + translation in axis order with positive scales: a region's box then has
        the pixels in the system's axis order and orientation."""
        return self.aligned is not None and all(j == i and s > 0
                                                for i, (j, s, _) in enumerate(self.aligned))

    def pixel_size(self) -> tuple[float, ...]:
        """Per system axis: the extent of one pixel along it (``|scale|`` when aligned; the
        width of a pixel's bounding box under an affine)."""
        if self.aligned is not None:
            return tuple(abs(s) for _, s, _ in self.aligned)
        n_in = self.matrix.shape[1] - 1
        return tuple(float(v) for v in np.abs(self.matrix[:-1, :n_in]).sum(axis=1))

    def origin(self, start: Sequence[int]) -> tuple[float, ...]:
        """System coordinates of the centre of pixel ``start`` (one index per array axis)."""
        if self.aligned is not None:
            return tuple(t + start[j] * s for j, s, t in self.aligned)
        point = np.append(np.asarray(start, dtype=np.float64), 1.0)
        return tuple(float(v) for v in (self.matrix @ point)[:-1])

    def data_affine(self, start: Sequence[int]) -> np.ndarray:
        """The homogeneous matrix mapping indices of a box's pixels (0 at ``start``) to
        system coordinates."""
        shift = np.eye(len(start) + 1)
        shift[:-1, -1] = start
        out: np.ndarray = self.matrix @ shift
        return out

    def box(self, intervals: Sequence[Interval], shape: Sequence[int]
            ) -> tuple[tuple[int, int], ...]:
        """The half-open pixel box (per array axis) of a region given as one interval per
        system axis (``(a, b)``, a point, or None for the whole axis)."""
        if self.aligned is not None:
            out = [(0, n) for n in shape]
            for iv, (j, s, t) in zip(intervals, self.aligned):
                n = shape[j]
                if s > 0:
                    out[j] = axis_box(iv, s, t, n)
                else:
                    # a flipped axis: pixel k is pixel n-1-k of the axis scaled by -s from
                    # its last pixel's centre, where the same rule applies
                    a, b = axis_box(iv, -s, t + (n - 1) * s, n)
                    out[j] = (n - b, n - a)
            return tuple(out)
        return self._affine_box(intervals, shape)

    def _affine_box(self, intervals: Sequence[Interval], shape: Sequence[int]
                    ) -> tuple[tuple[int, int], ...]:
        n = len(shape)
        if self.matrix.shape != (n + 1, n + 1):
            raise UnsupportedError(f"a region can't be read through a transform from "
                                   f"{n} array dimensions to {self.matrix.shape[0] - 1} "
                                   f"coordinates: it has no inverse")
        linear, shift = self.matrix[:n, :n], self.matrix[:n, n]
        try:
            inverse = np.linalg.inv(linear)
        except np.linalg.LinAlgError:
            raise UnsupportedError("the transform's matrix is singular: a region in its "
                                   "output system has no preimage box") from None
        # the image's own extent in the system (pixels span [k - ½, k + ½)) stands for an
        # axis the region leaves whole: centre ± half-width of the box's affine image
        dims = np.asarray(shape, dtype=np.float64)
        centre = linear @ ((dims - 1) / 2) + shift
        half = np.abs(linear) @ (dims / 2)
        lo, hi = centre - half, centre + half
        for i, iv in enumerate(intervals):
            if iv is None:
                continue
            if isinstance(iv, (int, float)):
                lo[i] = hi[i] = _bound(iv, "region point")
            else:
                a, b = (_bound(v, f"region bound of {iv!r}") for v in iv)
                if b < a:
                    raise SelectionError(f"region interval {iv!r} ends before it starts")
                lo[i], hi[i] = a, b
        # the preimage of the region's box is a parallelotope: its bounding box in index
        # space is centre ± |A⁻¹| · half-widths
        c = inverse @ ((lo + hi) / 2 - shift)
        h = np.abs(inverse) @ ((hi - lo) / 2)
        box = []
        for j in range(n):
            a, b = float(c[j] - h[j]), float(c[j] + h[j])
            if b - a <= _EPS:  # a point: the pixel holding it
                box.append(axis_box((a + b) / 2, 1.0, 0.0, shape[j]))
            else:
                box.append(axis_box((a, b), 1.0, 0.0, shape[j]))
        return tuple(box)


__all__ = ["axis_box", "region_intervals", "choose_level", "Placement", "AxisMap"]
