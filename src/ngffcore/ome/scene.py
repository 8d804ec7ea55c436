"""OME-NGFF 0.6 scenes: :class:`Scene`, a group whose ``scene`` metadata holds coordinate
systems of its own and the transforms between them and the systems of the images below it
(referenced by ``{"name": ..., "path": ...}``), and :func:`open_scene`.

Opening a scene reads its group, then every image a transform references (concurrently,
bounded); nothing else. The transforms form one graph with the images' own (levels →
intrinsic → other systems): :meth:`Scene.transform` composes the chain between any two
systems, or from a level's array (``{"path": "<image>/<dataset path>"}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Union

from ngffcore.errors import ArgumentError, MetadataError, NotFoundError
from ngffcore.ome.coordinate_graph import TransformGraph, describe, join, node_from, node_of
from ngffcore.ome.coordinate_systems import CoordinateSystem, SystemRef, parse_coordinate_systems
from ngffcore.ome.group import GroupMetadata, child_group_async, read_group_async
from ngffcore.ome.image import Image
from ngffcore.ome.image_coords import add_image
from ngffcore.ome.image_open import FieldLoader, open_image_async
from ngffcore.ome.multiscales_06 import parse_transform_list, transform_refs
from ngffcore.ome.transforms import Transform
from ngffcore.store.fanout import gather_bounded
from ngffcore.store.ioloop import run_on_io_loop
from ngffcore.store.location import open_store
from ngffcore.store.protocol import Store
from ngffcore.zarr.cache import ChunkCache

#: a reference as Scene.transform takes it: ``{"name": ..., "path": ...}`` (either may be
#: absent), a :class:`SystemRef`, or a bare name (a system of the scene itself)
Reference = Union[str, SystemRef, Mapping[str, Any]]


class Scene:
    """A scene (OME-NGFF 0.6): ``coordinate_systems`` (its own, document order; the first
    is the one the spec recommends showing by default), ``transforms`` (its
    ``coordinateTransformations`` as written), ``images`` (path → :class:`Image`, every
    image a transform references) and :meth:`transform`. Immutable, thread-safe."""

    def __init__(self, group: GroupMetadata, systems: tuple[CoordinateSystem, ...],
                 transforms: tuple[Transform, ...], images: dict[str, Image],
                 cache: ChunkCache | None = None) -> None:
        self.cache = cache
        self._group = group
        self._systems = systems
        self._transforms = transforms
        self._images = images
        self._graph = _graph(systems, transforms, images)

    @property
    def coordinate_systems(self) -> list[CoordinateSystem]:
        return list(self._systems)

    @property
    def transforms(self) -> tuple[Transform, ...]:
        return self._transforms

    @property
    def images(self) -> Mapping[str, Image]:
        """Every image a scene transform references, by its path (as written, normalised:
        no leading/trailing "/")."""
        return MappingProxyType(self._images)

    @property
    def metadata(self) -> dict[str, Any]:
        return self._group.attributes

    @property
    def version(self) -> str | None:
        return self._group.version

    @property
    def url(self) -> str:
        return self._group.url

    @property
    def path(self) -> str:
        return self._group.path

    def __repr__(self) -> str:
        return (f"<ngffcore.Scene {self.url} systems={[s.name for s in self._systems]} "
                f"images={sorted(self._images)}>")

    @property
    def graph(self) -> TransformGraph:
        """Every system of the scene and of its images (nodes ``(name, path)``), their
        levels' arrays (``(None, "<image>/<dataset path>")``) and the transforms."""
        return self._graph

    def coordinate_system(self, ref: Reference) -> CoordinateSystem:
        """The system a reference names (a bare name: one of the scene's own)."""
        node = node_from(ref)
        system = self._graph.system(node)
        if system is None:
            raise ArgumentError(f"{self.url}: the scene has no {describe(node)}")
        return system

    def transform(self, input: Reference, output: Reference) -> Transform:
        """The transform from ``input`` to ``output``: references ``{"name": ..., "path":
        ...}`` as in the spec (``path`` the image's, relative to the scene; absent for the
        scene's own systems; a bare string names one of those), or ``{"path":
        "<image>/<dataset path>"}`` for a level's array indices. The chain of scene and
        image transforms on a shortest path, composed (walked backwards through
        closed-form inverses where needed). ArgumentError for a system the scene does not
        know; MetadataError / UnsupportedError when nothing leads there."""
        return self._graph.find(node_from(input), node_from(output), f"{self.url}: scene transform")


def _graph(systems: tuple[CoordinateSystem, ...], transforms: tuple[Transform, ...],
           images: dict[str, Image]) -> TransformGraph:
    graph = TransformGraph()
    graph.add_systems(systems, "")
    for path, image in images.items():
        add_image(graph, image, path)
    for t in transforms:
        assert t.input is not None and t.output is not None  # transform_refs checked
        graph.add(node_of(t.input), node_of(t.output), t)
    return graph


async def _image(store: Store, group: GroupMetadata, path: str, where: str,
                 cache: ChunkCache | None) -> Image:
    try:
        child = await child_group_async(store, group, path)
    except NotFoundError:
        raise MetadataError(f"the scene references an image at {path!r}, which holds no "
                            f"group", path=where) from None
    if child.is_array or "multiscales" not in child.ome:
        raise MetadataError(f"the scene references {path!r}, which holds {child.found()}, "
                            f"not a multiscale image", path=where)
    return await open_image_async(store, child, cache=cache)


async def scene_from_group_async(store: Store, group: GroupMetadata,
                                 cache: ChunkCache | None = None) -> Scene:
    """The scene described by ``group`` (its ``scene`` metadata), its images opened.

    MetadataError naming the document and JSON path for: no ``scene`` object, no
    ``coordinateTransformations`` list, a reference without a name, a referenced image
    that is not there or not a multiscale image, a system referenced but not defined (by
    the scene or by the image at the reference's path), and whatever the transform parser
    refuses (dimensions not matching the systems, unknown types, …)."""
    where = f"{group.url}/zarr.json" if group.zarr_format == 3 else f"{group.url}/.zattrs"
    scene = group.ome.get("scene")
    if not isinstance(scene, dict):
        raise MetadataError("scene is missing or not a JSON object", path=where)
    systems: tuple[CoordinateSystem, ...] = ()
    if scene.get("coordinateSystems") is not None:
        systems = parse_coordinate_systems(scene["coordinateSystems"],
                                           f"{where}: scene.coordinateSystems")
    raw = scene.get("coordinateTransformations")
    at = f"{where}: scene.coordinateTransformations"
    entries = transform_refs(raw, at)  # bounded before any image is opened
    paths = sorted({join("", r.path) for _, ref_in, ref_out in entries
                    for r in (ref_in, ref_out) if r.path})
    opened = await gather_bounded(store, (_image(store, group, p, where, cache)
                                          for p in paths))
    images = dict(zip(paths, opened))

    def resolve(ref: SystemRef) -> tuple[Sequence[CoordinateSystem], str]:
        path = join("", ref.path)
        if path:
            return images[path].coordinate_systems, f"the image at {path!r}"
        return systems, "the scene's coordinateSystems"

    transforms = parse_transform_list(entries, at, resolve,
                                      FieldLoader(store, group.path, group.url))
    return Scene(group, systems, transforms, images, cache)


def open_scene(location: Any, *, zarr_format: int | None = None,
               cache: ChunkCache | bool = True, **store_options: Any) -> Scene:
    """Open the OME-NGFF 0.6 scene at ``location`` (path, URL or obstore store;
    ``store_options`` as for :func:`ngffcore.open`). MetadataError if the group there has no
    ``scene`` metadata (or it is malformed, see :func:`scene_from_group_async`)."""
    return run_on_io_loop(open_scene_async(location, zarr_format=zarr_format, cache=cache,
                                           **store_options))


async def open_scene_async(location: Any, *, zarr_format: int | None = None,
                           cache: ChunkCache | bool = True, **store_options: Any) -> Scene:
    """:func:`open_scene` for asyncio code."""
    store = open_store(location, **store_options)
    group = await read_group_async(store, "", zarr_format)
    chunk_cache = ChunkCache() if cache is True else (cache or None)
    return await scene_from_group_async(store, group, chunk_cache)


__all__ = ["Scene", "Reference", "open_scene", "open_scene_async", "scene_from_group_async"]
