"""An image's geometry, in one place: which axis is t, c, z, y or x, the plane a viewer
opens on (omero ``rdefs``), how many channels there are, and the checks of level and channel
indexes against them.

:class:`Image` builds its :class:`Geometry` once, when it is opened (``Image.geometry``);
tiles, rendering and ``ngffcore bench`` ask it, never the raw metadata. Pure: no I/O, no
arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ngffcore.errors import SelectionError
from ngffcore.ome.multiscales import Axis

#: the plane axes a viewer fixes, and the omero ``rdefs`` key of each one's default
PLANE_KEYS = {"t": "defaultT", "z": "defaultZ"}


def _plane_on(plane: int, axis: int, shapes: Sequence[Sequence[int]],
              transforms: Sequence[tuple[Sequence[float], Sequence[float]]] | None,
              level: int) -> int:
    """Level-0 ``plane`` of ``axis`` on ``level``: the plane whose span (centre ± half a
    pixel) holds the level-0 plane's centre, from the levels' transforms (without them, by
    the shapes' ratio), clipped to the level."""
    n0, n = shapes[0][axis], shapes[level][axis]
    if n == n0:
        return plane
    if transforms is not None:
        (s0, t0), (s, t) = (transforms[0][0][axis], transforms[0][1][axis]), \
            (transforms[level][0][axis], transforms[level][1][axis])
        centre = t0 + plane * s0
        index = math.floor((centre - t) / s + 0.5) if s > 0 else 0
    else:
        index = (plane * n) // max(n0, 1)
    return min(max(index, 0), max(n - 1, 0))


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _rdefs_planes(ome: Mapping[str, Any]) -> dict[str, int]:
    """omero ``rdefs.defaultT`` / ``defaultZ`` where given as ints (rendering metadata is
    advisory: anything else is ignored, as ome-zarr-py and napari do)."""
    omero = ome.get("omero")
    rdefs = omero.get("rdefs") if isinstance(omero, dict) else None
    out = {}
    if isinstance(rdefs, dict):
        for axis, key in PLANE_KEYS.items():
            value = rdefs.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                out[axis] = value
    return out


@dataclass(frozen=True)
class Geometry:
    """Where the named axes of one image are, its default plane, its channel count and its
    number of levels.

    Axes are found by name, case-insensitively ("t", "c", "z", "y", "x"): the name is what
    every OME-NGFF version writes (0.1–0.3 have no axis types). ``shape`` is level 0's."""

    names: tuple[str, ...]
    shape: tuple[int, ...]
    n_levels: int
    #: omero's default plane per plane axis the image has ("t", "z"), already checked
    #: against level 0 (an out-of-range default is ignored: 0)
    planes: Mapping[str, int]
    #: the same plane on every level: ``level_planes[axis][k]``
    level_planes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, axes: Sequence[Axis], shapes: Sequence[Sequence[int]], ome: Mapping[str, Any],
           transforms: Sequence[tuple[Sequence[float], Sequence[float]]] | None = None
           ) -> "Geometry":
        """From the multiscale's axes, every level's shape, the OME attributes and every
        level's ``(scale, translation)`` (to place the default plane on coarser levels)."""
        names = tuple(a.name.lower() for a in axes)
        shape = tuple(shapes[0])
        given = _rdefs_planes(ome)
        planes = {}
        level_planes = {}
        for axis in PLANE_KEYS:
            if axis in names:
                i = names.index(axis)
                value = given.get(axis, 0)
                planes[axis] = value if 0 <= value < shape[i] else 0
                level_planes[axis] = tuple(
                    _plane_on(planes[axis], i, shapes, transforms, k) for k in range(len(shapes)))
        return cls(names, shape, len(shapes), planes, level_planes)

    def index(self, name: str) -> int | None:
        """The position of the axis called ``name`` (any case), or None."""
        name = name.lower()
        return self.names.index(name) if name in self.names else None

    def yx(self, what: str) -> tuple[int, int]:
        """The y and x axes, or SelectionError saying the image cannot ``what`` (e.g.
        "tile") without them."""
        y, x = self.index("y"), self.index("x")
        if y is None or x is None:
            raise SelectionError(f"the image has no y and x axes to {what} "
                                 f"({list(self.names)})")
        return y, x

    def default_plane(self, axis: str, level: int = 0) -> int | None:
        """omero's ``rdefs.defaultT`` / ``defaultZ`` for ``axis`` ("t" or "z") when it lies
        within the axis, else 0; None when the image has no such axis. The default is a
        level-0 index: on ``level`` it is the plane whose span holds that plane's centre
        (defaultZ = 5 of a z axis halved per level is plane 2 of level 1), so a viewer keeps
        its place when it zooms out."""
        planes = self.level_planes.get(axis.lower())
        if planes is not None and 0 <= level < len(planes):
            return planes[level]
        return self.planes.get(axis.lower())

    @property
    def channel_count(self) -> int:
        """Size of the c axis (1 when there is none)."""
        c = self.index("c")
        return 1 if c is None else self.shape[c]

    def check_channels(self, channels: Sequence[int] | None) -> list[int]:
        """The channel indexes a read draws: all for None; else ``channels`` as ints, or
        SelectionError when one is out of range (an image without a c axis has channel 0
        only)."""
        n = self.channel_count
        if channels is None:
            return list(range(n))
        chans = [int(c) for c in channels]
        if not chans:
            raise SelectionError("channels names no channel")
        bad = [c for c in chans if not 0 <= c < n]
        if bad:
            raise SelectionError(f"channels {','.join(map(str, bad))} out of range: the "
                                 f"image has {_plural(n, 'channel')}")
        if self.index("c") is None and chans != [0]:
            raise SelectionError(f"channels {','.join(map(str, chans))}: the image has no "
                                 f"channel axis, so only [0] (or None)")
        return chans

    def check_level(self, level: int) -> int:
        """``level`` as an index into the levels (negative: from the coarsest), or
        SelectionError."""
        n = self.n_levels
        if not -n <= level < n:
            raise SelectionError(f"level {level} out of range: the image has "
                                 f"{_plural(n, 'level')}")
        return level % n


__all__ = ["Geometry", "PLANE_KEYS"]
