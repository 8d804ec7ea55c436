"""Physical regions → pixel boxes, and the choice of a level for a resolution.

Pure arithmetic, documented in docs/ome.md ("Pixel ↔ physical rounding"): pixel ``i`` has its
centre at ``translation + i·scale``; a half-open physical interval ``[a, b)`` selects the
pixels whose centres lie in it. The rule is the same on every level, so one region maps to
boxes that cover the same physical extent on all levels (up to one coarse pixel).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Union

from ngffcore.errors import ArgumentError, SelectionError
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


__all__ = ["axis_box", "region_intervals", "choose_level"]
