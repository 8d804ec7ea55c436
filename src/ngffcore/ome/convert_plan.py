"""What ``convert`` will write, found from the source's metadata alone (no listing, so HTTP
sources work): every group with its attributes in the target version's layout, every array
to copy, every extra level to compute, and the few plain objects (bioformats2raw's
``OME/METADATA.ome.xml``) copied byte for byte.

The walk follows the documents: an image's ``multiscales`` datasets and its ``labels``
group; a plate's wells; a well's fields; a bioformats2raw container's series (``OME``'s
``series`` list, else the OME-XML's ``Image`` count). Attributes are carried whole — unknown
keys too, ``omero`` untouched (its own ``version`` included), arrays' own attributes (a v2
``.zattrs``: one GET per array, sent with its ``.zarray`` GET) — and only their version
layout changes: 0.4 keeps OME keys at the top with a ``version`` inside multiscales / plate /
well / image-label; 0.5 puts them under ``ome`` beside one ``version``, other keys beside
``ome``. Metadata older than 0.4 is upgraded as the reader interprets it (``_upgrade``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from ngffcore.errors import MetadataError, NotFoundError, UnsupportedError
from ngffcore.limits import KNOWN_VERSIONS
from ngffcore.ome.collection import open_collection_async
from ngffcore.ome.group import OME_KEYS, GroupMetadata, read_group_async
from ngffcore.ome.multiscales import (Multiscale, infer_transforms, parse_multiscales,
                                      parse_plate)
from ngffcore.store.ioloop import gather_or_cancel
from ngffcore.store.protocol import Store, get_data
from ngffcore.zarr.array import Array
from ngffcore.zarr.metadata import parse_json

#: the OME documents that carry their own ``version`` in 0.4 (``omero``'s own ``version``,
#: which some writers add, is not OME-NGFF's layout: it is kept as it is)
VERSIONED = ("plate", "well", "image-label")


@dataclass
class ArrayCopy:
    """One array: ``path`` in both stores; ``image`` the image group it is a level of."""

    path: str
    source: Array
    image: str
    label: bool
    axes: list[str] | None  # the multiscale's axis names (0.5 arrays' dimension_names)
    #: the array's own attributes (v3 ``attributes``; v2 ``.zattrs``, {} when absent)
    attributes: dict[str, Any] = field(default_factory=dict)


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
    """The group's OME content (without its version marks) and its other attributes: 0.5's
    ``ome`` (unknown keys in it too) and the keys beside it; ≤ 0.4 has one namespace, so
    the OME keys and the rest (``_creator``, user keys: beside ``ome`` in a 0.5 copy)."""
    attrs = group.attributes
    if group.zarr_format == 3 and isinstance(attrs.get("ome"), dict):
        content = copy.deepcopy(attrs["ome"])
        others = {k: v for k, v in attrs.items() if k != "ome"}
    else:  # 0.4 and older (or a pre-0.5 v3 writer): OME keys at the top level
        content = copy.deepcopy({k: v for k, v in attrs.items() if k in OME_KEYS})
        others = {k: v for k, v in attrs.items() if k not in OME_KEYS}
    content.pop("version", None)
    for entry in content.get("multiscales") or []:
        if isinstance(entry, dict):
            entry.pop("version", None)
    for key in VERSIONED:
        if isinstance(content.get(key), dict):
            content[key].pop("version", None)
    return content, copy.deepcopy(others)


def layout(content: dict[str, Any], others: dict[str, Any], version: str, where: str = ""
           ) -> dict[str, Any]:
    """Group attributes of ``version`` holding the OME ``content`` and ``others``."""
    content = copy.deepcopy(content)
    if version == "0.5":
        return {**others, "ome": {"version": "0.5", **content}} if content else dict(others)
    for key in content.keys() & others.keys():
        # 0.5 → 0.4: one namespace left; dropping either value would lose an attribute
        if content[key] != others[key]:
            raise MetadataError(f"attribute {key!r} is both inside 'ome' and beside it, with "
                                "different values: 0.4 has one namespace for both, so it "
                                "cannot be converted to 0.4", path=where)
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
        # "0.4.0", "0.5-dev": the major.minor prefix decides (as the reader's)
        major = None if found is None else re.sub(r"^(\d+\.\d+).*", r"\1", found)
        if group.ome and major is not None and major not in KNOWN_VERSIONS:
            raise UnsupportedError(f"OME-NGFF {found} metadata cannot be converted (known: "
                                   f"{', '.join(KNOWN_VERSIONS)})", path=group.url)
        if group.ome and major == "0.6":  # read, but its coordinate systems have no 0.5 form
            raise UnsupportedError(f"OME-NGFF {found} metadata cannot be converted yet "
                                   f"(0.6 is read, not converted)", path=group.url)
        return _split(group)

    def _layout(self, group: GroupMetadata, content: dict[str, Any],
                others: dict[str, Any]) -> dict[str, Any]:
        return layout(content, others, self.version, group.url)

    async def walk(self, path: str, group: GroupMetadata | None = None) -> None:
        if group is None:
            group = await read_group_async(self.store, path)
        if group.is_array:
            raise MetadataError("is a Zarr array, not an OME-Zarr group", path=group.url)
        content, others = self._group(path, group)
        for key in ("plate", "well"):
            if key in content and not isinstance(content[key], dict):
                raise MetadataError(f"{key} is not a JSON object", path=group.url)
        if "multiscales" in content:
            await self._image(path, group, content, others)
        elif "plate" in content:
            _index_wells(group, content)
            self.plan.groups.append((path, self._layout(group, content, others)))
            await self._plate(path, group, content)
        elif "well" in content:
            self.plan.groups.append((path, self._layout(group, content, others)))
            await self._well(path, group, content)
        elif "bioformats2raw.layout" in content:
            self.plan.groups.append((path, self._layout(group, content, others)))
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
        parsed: tuple[Multiscale, ...] | None = None
        for m, entry in enumerate(multiscales):
            datasets = entry.get("datasets") if isinstance(entry, dict) else None
            if not isinstance(datasets, list) or not datasets or not all(
                    isinstance(d, dict) and isinstance(d.get("path"), str) for d in datasets):
                raise MetadataError(f"multiscales[{m}] has no datasets with paths",
                                    path=group.url)
            copies = []
            for d in datasets:
                p = join(path, d["path"])
                if p not in seen:
                    seen.add(p)
                    self.plan.arrays.append(await self._array(group, p, path, label))
                copies.append(next(a for a in self.plan.arrays if a.path == p))
            if _outdated(entry):
                # parsed once, by the reader's rules, for the whole group's version
                parsed = parsed or parse_multiscales(group.ome, group.version, group.url)
                _upgrade(entry, parsed[m], [c.source.shape for c in copies], group.url)
            axes = entry.get("axes")
            names = ([a.get("name") for a in axes] if isinstance(axes, list) and all(
                isinstance(a, dict) and isinstance(a.get("name"), str) for a in axes)
                else None)
            for c in copies:
                if c.axes is None:  # an array listed by two multiscales: the first's names
                    c.axes = names
            if m == 0 and self.levels is not None and self.levels > len(datasets):
                self._extra(path, entry, copies[-1], label)
        self.plan.groups.append((path, self._layout(group, content, others)))
        try:
            labels = await read_group_async(self.store, join(path, "labels"), group.zarr_format)
        except NotFoundError:
            return
        lcontent, lothers = self._group(labels.path, labels)
        self.plan.groups.append((labels.path, self._layout(labels, lcontent, lothers)))
        for name in lcontent.get("labels") or []:
            if isinstance(name, str):
                sub = await read_group_async(self.store, join(labels.path, name),
                                             group.zarr_format)
                scontent, sothers = self._group(sub.path, sub)
                if "multiscales" not in scontent:
                    raise MetadataError("a listed label image has no multiscales", path=sub.url)
                await self._image(sub.path, sub, scontent, sothers, label=True)

    async def _array(self, group: GroupMetadata, p: str, image: str, label: bool
                     ) -> ArrayCopy:
        """The array at ``p`` and its own attributes (v2: its ``.zattrs``, asked for
        together with its ``.zarray``; absent = none)."""
        if group.zarr_format != 2:
            source = await Array._open_async(self.store, group.zarr_format, p)
            return ArrayCopy(p, source, image, label, None,
                             dict(source.metadata.attributes or {}))
        opening = Array._open_async(self.store, 2, p)
        getting = get_data(self.store, f"{p}/.zattrs")
        if self.store.inline:  # its coroutines never suspend: nothing to overlap
            source, raw = await opening, await getting
        else:
            source, raw = await gather_or_cancel(opening, getting)
        attrs = parse_json(raw, f"{self.store.url}/{p}/.zattrs") if raw is not None else {}
        return ArrayCopy(p, source, image, label, None, attrs)

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
                    self.plan.groups.append((inner, await self._plain(inner, group)))
            await self.walk(join(path, w["path"]))

    async def _well(self, path: str, group: GroupMetadata, content: dict[str, Any]) -> None:
        for im in content["well"].get("images") or []:
            if not isinstance(im, dict) or not isinstance(im.get("path"), str):
                raise MetadataError(f"well image {im!r} has no path", path=group.url)
            await self.walk(join(path, im["path"]))

    async def _plain(self, path: str, parent: GroupMetadata) -> dict[str, Any]:
        """A group that is no OME node (a plate's row): its attributes, if it has any (a
        v2 row without ``.zattrs``: one 404)."""
        try:
            group = await read_group_async(self.store, path, parent.zarr_format)
        except NotFoundError:
            return {}
        return self._layout(group, *self._group(path, group))

    async def _collection(self, path: str, group: GroupMetadata) -> None:
        collection = await open_collection_async(self.store, group)
        ome_path = join(path, "OME")
        try:
            ome = await read_group_async(self.store, ome_path, group.zarr_format)
            content, others = self._group(ome_path, ome)
            self.plan.groups.append((ome_path, self._layout(ome, content, others)))
        except NotFoundError:  # 0.4 containers may have a bare OME directory
            self.plan.groups.append((ome_path, {}))
        if await get_data(self.store, join(ome_path, "METADATA.ome.xml")) is not None:
            self.plan.raw.append(join(ome_path, "METADATA.ome.xml"))
        for series in collection.series:
            await self.walk(join(path, series))


def _outdated(entry: dict[str, Any]) -> bool:
    """A multiscale in a layout older than 0.4's: axes absent or names only (0.1–0.3), or
    datasets without transforms."""
    axes = entry.get("axes")
    return (not isinstance(axes, list) or not all(isinstance(a, dict) for a in axes)
            or any("coordinateTransformations" not in d for d in entry["datasets"]))


def _upgrade(entry: dict[str, Any], ms: Multiscale, shapes: list[tuple[int, ...]],
             where: str) -> None:
    """A 0.1–0.3 multiscale rewritten as 0.4 / 0.5 require, meaning what the reader reads
    (``multiscales.parse_multiscales`` / ``infer_transforms``): axes as dicts (0.3 names;
    0.1/0.2 without axes: "tczyx"), types from the standard names (x/y/z space, t time,
    c channel); each dataset without transforms gets a scale: 1 at level 0, else level 0's
    shape over its own per axis."""
    for ds, shape in zip(ms.datasets, shapes):
        if len(shape) != len(ms.axes):
            raise MetadataError(f"level {ds.path!r} has {len(shape)} dimensions, the image "
                                f"{len(ms.axes)} axes ({''.join(a.name for a in ms.axes)})",
                                path=where)
    axes = entry.get("axes")
    if not isinstance(axes, list) or not all(isinstance(a, dict) for a in axes):
        entry["axes"] = [{"name": a.name, **({"type": a.type} if a.type else {}),
                          **({"unit": a.unit} if a.unit else {})} for a in ms.axes]
    if all("coordinateTransformations" in d for d in entry["datasets"]):
        return
    if entry.get("coordinateTransformations") is not None:
        # the reader ignores the multiscale's own transform for such a level: a scale
        # written there would be composed with it, so the copy would mean something else
        raise MetadataError(f"multiscales[{ms.index}] has its own coordinateTransformations "
                            "but datasets without any: their scale cannot be rewritten",
                            path=where)
    for d, ds in zip(entry["datasets"], infer_transforms(ms, shapes, where)):
        if "coordinateTransformations" not in d:
            d["coordinateTransformations"] = [{"type": "scale", "scale": list(ds.scale or ())}]


def _index_wells(group: GroupMetadata, content: dict[str, Any]) -> None:
    """Wells of plates older than 0.4 have no rowIndex / columnIndex (0.4 requires them):
    found from the well path's row and column names, as the reader finds them."""
    wells = content["plate"].get("wells")
    if not isinstance(wells, list) or all(
            isinstance(w, dict) and "rowIndex" in w and "columnIndex" in w for w in wells):
        return
    found = {w.path: w for w in parse_plate(group.ome, group.url).wells}
    for w in wells:
        pw = found[w["path"]]
        w.setdefault("rowIndex", pw.row_index)
        w.setdefault("columnIndex", pw.column_index)


async def make_plan(store: Store, version: str, levels: int | None) -> Plan:
    walker = Walker(store, version, levels)
    await walker.walk("")
    return walker.plan


__all__ = ["ArrayCopy", "ExtraLevels", "Plan", "layout", "make_plan"]
