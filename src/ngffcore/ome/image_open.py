"""Opening an image from its group: :func:`open_image_async` (multiscales → levels with
their array metadata and transforms) and :class:`FieldLoader`, which reads the arrays that
OME-NGFF 0.6 transforms keep by ``path`` (``displacements``/``coordinates`` fields, matrices)
for the transforms parsed from one group.
"""

from __future__ import annotations

from collections.abc import Sequence
import numpy as np

from ngffcore.errors import MetadataError, NotFoundError, SelectionError
from ngffcore.ome.coordinate_graph import join
from ngffcore.ome.group import GroupMetadata, consolidated_child, read_group_async
from ngffcore.ome.image import Image, LabelImage
from ngffcore.ome.level import Level
from ngffcore.ome.multiscales import LabelInfo, infer_transforms, parse_image_label, \
    parse_multiscales
from ngffcore.ome.transforms import FieldData
from ngffcore.store.fanout import gather_bounded
from ngffcore.store.protocol import Store
from ngffcore.store.ioloop import run_on_io_loop
from ngffcore.zarr.array import Array
from ngffcore.zarr.cache import ChunkCache
from ngffcore.zarr.metadata import ArrayMetadata, parse_v3


class FieldLoader:
    """``load_field`` for the transforms of the group at ``base`` (a store path): the array
    at a ``path`` relative to that group (a leading "/": relative to the store's root), read
    whole, or — when that path is an OME-Zarr multiscale image, as the spec stores fields —
    its level 0 with the image's axes and its level transform (:class:`FieldData`).

    Called by a transform on its first ``apply``, synchronously: metadata through the I/O
    loop (never call it on ngffcore's own loop thread), pixels as :meth:`Array.read` reads
    them. Picklable with its store."""

    def __init__(self, store: Store, base: str, url: str) -> None:
        self.store = store
        self.base = base
        self.url = url

    def __call__(self, path: str) -> np.ndarray | FieldData:
        key = join(self.base, path)
        found = run_on_io_loop(find_field_async(self.store, key, f"{self.url}: {path}"))
        if isinstance(found, Image):
            level = found.levels[0]
            return FieldData(level.read(), axes=found.axes, transform=level.transform)
        return found.read()


async def find_field_async(store: Store, key: str, where: str) -> Image | Array:
    """What a transform keeps at store path ``key``: a multiscale image (the spec's form
    of a field) or an array."""
    try:
        group = await read_group_async(store, key)
    except NotFoundError:
        group = None
    if group is not None and not group.is_array and "multiscales" in group.ome:
        return await open_image_async(store, group)
    try:
        return await Array._open_async(store, None, key)
    except NotFoundError:
        raise MetadataError(f"the transformation's array is not there ({key!r} holds no "
                            f"array and no multiscale image)", path=where) from None


async def _level_metadata(store: Store, group: GroupMetadata, path: str) -> ArrayMetadata:
    doc = consolidated_child(group, path)
    if doc is not None and doc.get("node_type") == "array":
        return parse_v3(doc, f"{group.url}/{path}/zarr.json (consolidated)")
    array = await Array._open_async(store, group.zarr_format, group.child_path(path))
    return array.metadata


async def open_image_async(store: Store, group: GroupMetadata, index: int = 0,
                           level_metadata: Sequence[ArrayMetadata] | None = None,
                           label: bool = False, cache: ChunkCache | None = None) -> Image:
    """The image described by ``group`` (multiscale ``index``). ``level_metadata`` (from a
    plate's first field) skips reading the levels' array metadata. ``label``: a
    :class:`LabelImage` even without ``image-label`` (it is listed under ``labels/``)."""
    where = group.url
    multiscales = parse_multiscales(group.ome, group.version, where,
                                    load_field=FieldLoader(store, group.path, group.url))
    if not -len(multiscales) <= index < len(multiscales):
        raise SelectionError(f"{where}: multiscale {index} out of range: the group has "
                             f"{len(multiscales)}")
    ms = multiscales[index % len(multiscales)]
    if level_metadata is None:
        metas = await gather_bounded(store, (_level_metadata(store, group, ds.path)
                                             for ds in ms.datasets))
    else:
        metas = list(level_metadata)
    ndim = len(ms.axes)
    for ds, meta in zip(ms.datasets, metas):
        if meta.ndim != ndim:
            raise MetadataError(f"level {ds.path!r} has {meta.ndim} dimensions, the image "
                                f"{ndim} axes ({''.join(a.name for a in ms.axes)})",
                                path=where)
    datasets = infer_transforms(ms, [m.shape for m in metas], where)
    # 0.6 levels come with their transform; 0.1–0.5 levels build theirs (scale, then
    # translation) on first use: every open, and a plate's every field, skips it
    levels = tuple(Level(store, meta, group.child_path(ds.path), ds.path, i, ds.scale,
                         ds.translation, ds.transform)
                   for i, (ds, meta) in enumerate(zip(datasets, metas)))
    if "image-label" in group.ome or label:
        info = (parse_image_label(group.ome, where) if "image-label" in group.ome
                else LabelInfo({}, {}, None, None))
        return LabelImage(store, group, multiscales, ms.index, levels, info, cache)
    return Image(store, group, multiscales, ms.index, levels, cache)


Image._opener = open_image_async

__all__ = ["open_image_async", "FieldLoader", "find_field_async"]
