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

from ngffcore.errors import SelectionError
from ngffcore.multiscales import Axis

#: absorbs floating-point error: an edge at t + k·s (computed in floats) selects pixel k
_EPS = 1e-9

Interval = Union[tuple[float, float], float, None]


def axis_box(interval: Interval, scale: float, translation: float, size: int
             ) -> tuple[int, int]:
    """The half-open pixel range ``[start, stop)`` of one axis for a physical interval
    (``(a, b)``, a scalar point, or None for the whole axis), clipped to ``[0, size)``."""
    if interval is None:
        return 0, size
    if isinstance(interval, (int, float)):
        i = math.floor((float(interval) - translation) / scale + 0.5 + _EPS)
        if not 0 <= i < size:  # outside the image: nothing, not the nearest edge pixel
            i = min(max(i, 0), size)
            return i, i
        return i, i + 1
    a, b = (float(v) for v in interval)
    if not (math.isfinite(a) and math.isfinite(b)):
        raise SelectionError(f"region bounds must be finite numbers, not {interval!r}")
    if b < a:
        raise SelectionError(f"region interval {interval!r} ends before it starts")
    start = math.ceil((a - translation) / scale - _EPS)
    stop = math.ceil((b - translation) / scale - _EPS)
    if start >= stop and b > a:
        # narrower than a pixel: the pixel whose span holds the midpoint
        start = math.floor(((a + b) / 2 - translation) / scale + 0.5 + _EPS)
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
            if value is None or isinstance(value, (int, float)):
                out[i] = value
            elif isinstance(value, Sequence) and len(value) == 2:
                out[i] = (float(value[0]), float(value[1]))
            else:
                raise SelectionError(f"region[{name!r}] must be (start, stop), a number or "
                                     f"None, not {value!r:.60}")
        elif name in center:
            c, s = float(center[name]), float(size[name])
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
