"""``ngffcore.open``: a location → the OME-Zarr node its group metadata describes
(:class:`Image`, :class:`Plate`, :class:`Well`, :class:`Collection` or :class:`Scene`)."""

from __future__ import annotations

from typing import Any, Union

from ngffcore.zarr.cache import ChunkCache
from ngffcore.ome.collection import Collection, Plate, Well, _FieldTemplates, open_collection_async
from ngffcore.errors import MetadataError, NotFoundError
from ngffcore.ome.group import GroupMetadata, read_group_async
from ngffcore.ome.image import Image
from ngffcore.ome.image_open import open_image_async
from ngffcore.ome.scene import Scene, scene_from_group_async
from ngffcore.store.location import open_store
from ngffcore.store.protocol import Store
from ngffcore.store.ioloop import run_on_io_loop

Node = Union[Image, Plate, Well, Collection, Scene]


def open(location: Any, *, zarr_format: int | None = None, multiscale: int = 0,
         reuse_field_metadata: bool = True, cache: ChunkCache | bool = True,
         **store_options: Any) -> Node:
    """Open the OME-Zarr group at ``location`` (path, URL or obstore store; ``store_options``
    as for :func:`open_array`).

    Returns an :class:`Image` for a multiscale image (``multiscale`` picks one of several),
    a :class:`Plate` (also when bioformats2raw metadata is beside the plate's: the spec
    gives the plate precedence), a :class:`Well`, a :class:`Collection` for a
    bioformats2raw container, or a :class:`Scene` for an OME-NGFF 0.6 scene; raises
    :class:`MetadataError` saying what was found for anything else, and
    :class:`NotFoundError` if there is nothing there. ``zarr_format`` (2 or 3) skips the
    format probe at the root (docs/ome.md, "Requests"). ``cache``: the decoded-chunk cache
    that tile reads use, shared by everything opened here (True: a new
    :class:`ChunkCache` of default size; False: none; or a cache to share across opens).
    Thread-safe results.
    """
    return run_on_io_loop(open_async(location, zarr_format=zarr_format, multiscale=multiscale,
                                     reuse_field_metadata=reuse_field_metadata, cache=cache,
                                     **store_options))


async def open_async(location: Any, *, zarr_format: int | None = None, multiscale: int = 0,
                     reuse_field_metadata: bool = True, cache: ChunkCache | bool = True,
                     **store_options: Any) -> Node:
    """:func:`open` for asyncio code."""
    store = open_store(location, **store_options)
    try:
        group = await read_group_async(store, "", zarr_format)
    except NotFoundError as exc:
        raise await _not_a_group(store, zarr_format) or exc
    chunk_cache = ChunkCache() if cache is True else (cache or None)
    return await open_node_async(store, group, multiscale, reuse_field_metadata, chunk_cache)


async def open_node_async(store: Store, group: GroupMetadata, multiscale: int = 0,
                          reuse_field_metadata: bool = True, cache: ChunkCache | None = None
                          ) -> Node:
    ome = group.ome
    if group.is_array:
        raise MetadataError(f"found {group.found()}, not an OME-Zarr group",
                            path=group.url)
    if "bioformats2raw.layout" in ome and "plate" not in ome:
        return await open_collection_async(store, group, cache)
    if "scene" in ome and "multiscales" not in ome:
        return await scene_from_group_async(store, group, cache)
    if "multiscales" in ome:
        return await open_image_async(store, group, multiscale, cache=cache)
    if "plate" in ome:
        return Plate(store, group, reuse_field_metadata, cache)
    if "well" in ome:
        return Well(store, group, _FieldTemplates(reuse_field_metadata), cache)
    if "labels" in ome:
        raise MetadataError(f"found a labels group listing {ome['labels']!r:.200}; open one "
                            f"of its label images (e.g. {group.url}/<name>) or the image "
                            f"beside it", path=group.url)
    if group.zarr_format == 2 and group.path == "":
        array = await _not_a_group(store, 2)
        if array is not None:
            raise array
    raise MetadataError(f"found {group.found()}; expected OME-Zarr multiscales, plate, well, "
                        f"scene or bioformats2raw metadata", path=group.url)


async def _not_a_group(store: Store, zarr_format: int | None) -> MetadataError | None:
    """When there is no (OME) group metadata, say if a v2 array is there instead (this
    extra request is made only on the way to an error)."""
    if zarr_format in (None, 2) and await store.get(".zarray") is not None:
        return MetadataError("found a Zarr v2 array, not an OME-Zarr group; open it with "
                             "ngffcore.open_array", path=store.url)
    return None


__all__ = ["open", "open_async", "open_node_async", "Node"]
