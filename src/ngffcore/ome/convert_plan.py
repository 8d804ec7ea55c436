"""What ``convert`` will write, found from the source's metadata alone (no listing, so HTTP
sources work): every group with its attributes in the target version's layout, every array
to copy, every extra level to compute, and the few plain objects (bioformats2raw's
``OME/METADATA.ome.xml``) copied byte for byte.

The walk follows the documents: an image's ``multiscales`` datasets and its ``labels``
group; a plate's wells; a well's fields; a bioformats2raw container's series (``OME``'s
``series`` list, else the OME-XML's ``Image`` count). Attributes are carried whole — unknown
keys too — and only their version layout changes: 0.4 keeps OME keys at the top with a
``version`` inside multiscales / plate / well / image-label; 0.5 puts them under ``ome``
beside one ``version``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ngffcore.errors import MetadataError, NotFoundError, UnsupportedError
from ngffcore.ome.collection import open_collection_async
from ngffcore.ome.group import OME_KEYS, GroupMetadata, read_group_async
from ngffcore.store.protocol import Store, get_data
from ngffcore.zarr.array import Array

#: the OME documents that carry their own ``version`` in 0.4
VERSIONED = ("plate", "well", "image-label")
#: source versions whose metadata converts by moving keys (older ones lack axes dicts and
#: per-dataset transforms: they would need rebuilding, which convert does not do)
CONVERTIBLE = ("0.4", "0.5")


@dataclass
class ArrayCopy:
    """One array: ``path`` in both stores; ``image`` the image group it is a level of."""

    path: str
    source: Array
    image: str
    label: bool
    axes: list[str] | None  # the multiscale's axis names (0.5 arrays' dimension_names)


@dataclass
class ExtraLevels:
    """Levels computed beyond the source's for the image at ``image`` (``--levels``)."""

    image: str
    coarsest: ArrayCopy
    axes: list[Any]
    scale: list[float]
    translation: list[float]
    paths: list[str]
    label: bool


@dataclass
class Plan:
    groups: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # parents first
    arrays: list[ArrayCopy] = field(default_factory=list)
    extra: list[ExtraLevels] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)  # keys copied byte for byte


def join(path: str, name: str) -> str:
    name = name.strip("/")
    return f"{path}/{name}" if path else name


def _split(group: GroupMetadata) -> tuple[dict[str, Any], dict[str, Any]]:
    """The group's OME content (without its version marks) and its other attributes."""
    if group.zarr_format == 3 and isinstance(group.attributes.get("ome"), dict):
        others = {k: v for k, v in group.attributes.items() if k != "ome"}
    else:  # 0.4 (or a pre-0.5 v3 writer): OME keys at the top level
        others = {k: v for k, v in group.attributes.items() if k not in OME_KEYS}
    content = copy.deepcopy(group.ome)
    content.pop("version", None)
    for entry in content.get("multiscales") or []:
        if isinstance(entry, dict):
            entry.pop("version", None)
    for key in VERSIONED + ("omero",):
        if isinstance(content.get(key), dict):
            content[key].pop("version", None)
    return content, copy.deepcopy(others)


def layout(content: dict[str, Any], others: dict[str, Any], version: str) -> dict[str, Any]:
    """Group attributes of ``version`` holding the OME ``content`` and ``others``."""
    content = copy.deepcopy(content)
    if version == "0.5":
        return {**others, "ome": {"version": "0.5", **content}} if content else dict(others)
    for i, entry in enumerate(content.get("multiscales") or []):
        if isinstance(entry, dict):
            content["multiscales"][i] = {"version": "0.4", **entry}
    for key in VERSIONED:
        if isinstance(content.get(key), dict):
            content[key] = {"version": "0.4", **content[key]}
    return {**others, **content}


class Walker:
    """Builds a :class:`Plan` of the source below ``root`` for a target ``version``."""

    def __init__(self, store: Store, version: str, levels: int | None) -> None:
        self.store = store
        self.version = version
        self.levels = levels
        self.plan = Plan()

    def _group(self, path: str, group: GroupMetadata) -> tuple[dict[str, Any], dict[str, Any]]:
        found = group.version
        if group.ome and found is not None and found not in CONVERTIBLE:
            raise UnsupportedError(f"OME-NGFF {found} metadata cannot be converted (only "
                                   f"{', '.join(CONVERTIBLE)})", path=group.url)
        return _split(group)

    async def walk(self, path: str, group: GroupMetadata | None = None) -> None:
        if group is None:
            group = await read_group_async(self.store, path)
        if group.is_array:
            raise MetadataError("is a Zarr array, not an OME-Zarr group", path=group.url)
        content, others = self._group(path, group)
        if "multiscales" in content:
            await self._image(path, group, content, others)
        elif "plate" in content:
            self.plan.groups.append((path, layout(content, others, self.version)))
            await self._plate(path, group, content)
        elif "well" in content:
            self.plan.groups.append((path, layout(content, others, self.version)))
            await self._well(path, group, content)
        elif "bioformats2raw.layout" in content:
            self.plan.groups.append((path, layout(content, others, self.version)))
            await self._collection(path, group)
        else:
            raise MetadataError(f"holds no OME-Zarr image, plate, well or bioformats2raw "
                                f"collection ({group.found()})", path=group.url)

    async def _image(self, path: str, group: GroupMetadata, content: dict[str, Any],
                     others: dict[str, Any], label: bool = False) -> None:
        label = label or "image-label" in content
        multiscales = content["multiscales"]
        if not isinstance(multiscales, list) or not multiscales:
            raise MetadataError("multiscales must be a non-empty list", path=group.url)
        seen: set[str] = set()
        for m, entry in enumerate(multiscales):
            datasets = entry.get("datasets") if isinstance(entry, dict) else None
            if not isinstance(datasets, list) or not datasets or not all(
                    isinstance(d, dict) and isinstance(d.get("path"), str) for d in datasets):
                raise MetadataError(f"multiscales[{m}] has no datasets with paths",
                                    path=group.url)
            copies = []
            axes = entry.get("axes")
            names = ([a.get("name") for a in axes] if isinstance(axes, list) and all(
                isinstance(a, dict) and isinstance(a.get("name"), str) for a in axes)
                else None)
            for d in datasets:
                p = join(path, d["path"])
                if p not in seen:
                    seen.add(p)
                    source = await Array._open_async(self.store, group.zarr_format, p)
                    self.plan.arrays.append(ArrayCopy(p, source, path, label, names))
                copies.append(next(a for a in self.plan.arrays if a.path == p))
            if m == 0 and self.levels is not None and self.levels > len(datasets):
                self._extra(path, entry, copies[-1], label)
        self.plan.groups.append((path, layout(content, others, self.version)))
        try:
            labels = await read_group_async(self.store, join(path, "labels"), group.zarr_format)
        except NotFoundError:
            return
        lcontent, lothers = self._group(labels.path, labels)
        self.plan.groups.append((labels.path, layout(lcontent, lothers, self.version)))
        for name in lcontent.get("labels") or []:
            if isinstance(name, str):
                sub = await read_group_async(self.store, join(labels.path, name),
                                             group.zarr_format)
                scontent, sothers = self._group(sub.path, sub)
                if "multiscales" not in scontent:
                    raise MetadataError("a listed label image has no multiscales", path=sub.url)
                await self._image(sub.path, sub, scontent, sothers, label=True)

    def _extra(self, path: str, entry: dict[str, Any], coarsest: ArrayCopy, label: bool
               ) -> None:
        """Plan levels beyond the source's: appended to multiscales[0] (its dataset
        transforms continue the coarsest level's, as ``plan_pyramid`` composes them)."""
        datasets = entry["datasets"]
        ndim = len(coarsest.source.shape)
        scale, translation = [1.0] * ndim, [0.0] * ndim
        for t in datasets[-1].get("coordinateTransformations") or []:
            if isinstance(t, dict) and t.get("type") == "scale" and "scale" in t:
                scale = [float(v) for v in t["scale"]]
            elif isinstance(t, dict) and t.get("type") == "translation" \
                    and "translation" in t:
                translation = [float(v) for v in t["translation"]]
        used = {d["path"] for d in datasets}
        paths: list[str] = []
        k = len(datasets)
        while len(paths) < (self.levels or 0) - len(datasets):
            if str(k) not in used:
                paths.append(str(k))
            k += 1
        self.plan.extra.append(ExtraLevels(path, coarsest, list(entry.get("axes") or []),
                                           scale, translation, paths, label))

    async def _plate(self, path: str, group: GroupMetadata, content: dict[str, Any]) -> None:
        made = set()
        for w in content["plate"].get("wells") or []:
            if not isinstance(w, dict) or not isinstance(w.get("path"), str):
                raise MetadataError(f"plate well {w!r} has no path", path=group.url)
            parts = w["path"].strip("/").split("/")
            for i in range(1, len(parts)):  # the row groups between plate and well
                inner = join(path, "/".join(parts[:i]))
                if inner not in made:
                    made.add(inner)
                    self.plan.groups.append((inner, {}))
            await self.walk(join(path, w["path"]))

    async def _well(self, path: str, group: GroupMetadata, content: dict[str, Any]) -> None:
        for im in content["well"].get("images") or []:
            if not isinstance(im, dict) or not isinstance(im.get("path"), str):
                raise MetadataError(f"well image {im!r} has no path", path=group.url)
            await self.walk(join(path, im["path"]))

    async def _collection(self, path: str, group: GroupMetadata) -> None:
        collection = await open_collection_async(self.store, group)
        ome_path = join(path, "OME")
        try:
            ome = await read_group_async(self.store, ome_path, group.zarr_format)
            content, others = self._group(ome_path, ome)
            self.plan.groups.append((ome_path, layout(content, others, self.version)))
        except NotFoundError:  # 0.4 containers may have a bare OME directory
            self.plan.groups.append((ome_path, {}))
        if await get_data(self.store, join(ome_path, "METADATA.ome.xml")) is not None:
            self.plan.raw.append(join(ome_path, "METADATA.ome.xml"))
        for series in collection.series:
            await self.walk(join(path, series))


async def make_plan(store: Store, version: str, levels: int | None) -> Plan:
    walker = Walker(store, version, levels)
    await walker.walk("")
    return walker.plan


__all__ = ["ArrayCopy", "ExtraLevels", "Plan", "layout", "make_plan"]
