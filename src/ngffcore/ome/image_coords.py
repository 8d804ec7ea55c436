"""An image's coordinate model as :class:`Image` exposes it (OME-NGFF 0.6, "coordinateSystems"
and "coordinateTransformations"): its coordinate systems, the transform from a level's array
to any system reachable from it, and where a level's pixels lie in a system
(:class:`Placement`, for physical reads). 0.1–0.5 images have one system, ``"intrinsic"``,
that their levels' composed scale + translation maps to.

:class:`ImageCoordinates` is a mixin of :class:`~ngffcore.ome.image.Image`, which sets the
attributes it declares when it is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

from ngffcore.errors import ArgumentError, UnsupportedError
from ngffcore.ome.coordinate_graph import TransformGraph, join, node_from, node_of
from ngffcore.ome.coordinate_systems import CoordinateSystem, SystemRef
from ngffcore.ome.geometry import Geometry
from ngffcore.ome.group import GroupMetadata
from ngffcore.ome.level import Level
from ngffcore.ome.multiscales import Multiscale
from ngffcore.ome.multiscales_06 import ImageSpace
from ngffcore.ome.region import Placement
from ngffcore.ome.transforms import Transform

#: a coordinate system named for Image.transform: its name (a system of this image), or a
#: reference ``{"name": ..., "path": ...}`` (a system of the group at ``path``, e.g. a label)
SystemName = Union[str, SystemRef, Mapping[str, Any]]


class ImageCoordinates:
    """Coordinate systems, transforms and placements of one image (a mixin of Image)."""

    _group: GroupMetadata
    _ms: Multiscale
    _space: ImageSpace
    levels: tuple[Level, ...]
    geometry: Geometry
    _graph: TransformGraph | None
    _placements: dict[tuple[int, str], Placement]

    @property
    def coordinate_systems(self) -> list[CoordinateSystem]:
        """The multiscale's coordinate systems in document order (0.1–0.5: one,
        ``"intrinsic"``, holding ``axes``)."""
        return list(self._space.systems)

    @property
    def intrinsic(self) -> CoordinateSystem:
        """The system the levels map to (the ``output`` of the datasets' transforms)."""
        return self._space.intrinsic_system

    @property
    def transforms(self) -> tuple[Transform, ...]:
        """The multiscale's own ``coordinateTransformations`` (0.6; as written: intrinsic →
        other systems). 0.1–0.5: none (they are composed into the levels')."""
        return self._space.transforms

    def coordinate_system(self, name: str | None = None) -> CoordinateSystem:
        """The system called ``name`` (None: the intrinsic one); ArgumentError if the image
        has none of that name."""
        if name is None:
            return self.intrinsic
        system = self._space.system(name)
        if system is None:
            raise ArgumentError(f"{self._group.url}: no coordinate system {name!r} (the "
                                f"image has {[s.name for s in self._space.systems]})")
        return system

    def transform(self, level: int | Level = 0, output: SystemName | None = None
                  ) -> Transform:
        """The transform from ``level``'s array indices to the coordinate system ``output``
        (None: the intrinsic one, i.e. ``levels[level].transform``): the level's transform
        composed with the multiscale's own transforms on a shortest path between systems
        (walked backwards through closed-form inverses where needed). ``output``: a system
        name, or ``{"name": ..., "path": ...}`` for a system of another group the multiscale
        references (a label image). ArgumentError for a system the image does not know,
        MetadataError / UnsupportedError when no chain of transforms gets there."""
        lvl = level if isinstance(level, Level) else \
            self.levels[self.geometry.check_level(level)]
        if output is None or output == self._space.intrinsic:
            return lvl.transform
        return self.graph().find((None, lvl.path), node_from(output),
                                 f"{self._group.url}: transform of level {lvl.path!r}")

    def graph(self) -> TransformGraph:
        """The image's coordinate systems (path ""), its levels' arrays (``(None, dataset
        path)``) and the transforms between them."""
        if self._graph is None:
            graph = TransformGraph()
            add_image(graph, self, "")
            self._graph = graph
        return self._graph

    def placement(self, level: int, coordinate_system: str | None = None) -> Placement:
        """Where ``level``'s pixels lie in ``coordinate_system`` (None: intrinsic): the
        matrix of :meth:`transform` and, when axis by axis, each axis' scale and
        translation. UnsupportedError when the transform there is not affine (fields)."""
        index = self.geometry.check_level(level)
        name = self.coordinate_system(coordinate_system).name
        key = (index, name)
        found = self._placements.get(key)
        if found is None:
            lvl = self.levels[index]
            if name == self._space.intrinsic and lvl.is_axis_aligned \
                    and self._ms.axes == self.intrinsic.axes:
                # the levels of 0.1–0.5 (and most of 0.6): the composed scale and translation
                found = Placement.diagonal(lvl.scale, lvl.translation)
            else:
                t = self.transform(index, name)
                if not t.is_affine:
                    parts = getattr(t, "members", (t,))
                    kinds = sorted({m.type for m in parts if not m.is_affine}) or [t.type]
                    raise UnsupportedError(f"level {lvl.path!r} maps to coordinate system "
                                           f"{name!r} through {', '.join(kinds)}, which "
                                           f"has no matrix: regions there can't be read",
                                           path=self._group.url)
                found = Placement.of(t.to_matrix(), f"{self._group.url}: level {lvl.path!r} "
                                                    f"→ coordinate system {name!r}")
            self._placements[key] = found
        return found


def add_image(graph: TransformGraph, image: ImageCoordinates, path: str) -> None:
    """The image at ``path`` (relative to the graph's group; "" for the image itself) into
    ``graph``: its systems (nodes ``(name, path)``), its levels' arrays (``(None, "<path>/<dataset
    path>")``) with their transforms to the intrinsic system, and its own transforms."""
    space = image._space
    graph.add_systems(space.systems, path)
    intrinsic = (space.intrinsic, path)
    for lvl in image.levels:
        graph.add((None, join(path, lvl.path)), intrinsic, lvl.transform)
    for t in space.transforms:
        assert t.input is not None and t.output is not None  # transform_refs checked
        graph.add(node_of(t.input, path), node_of(t.output, path), t)


__all__ = ["ImageCoordinates", "SystemName", "add_image"]
