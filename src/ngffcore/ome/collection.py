"""Collections of images: HCS plates (:class:`Plate` → :class:`Well` → field images) and
bioformats2raw containers (:class:`Collection` of series).

Nothing is read before it is asked for: opening a plate reads the plate group only; a well
is read on first use; a field image on first use. Fields of a plate are written alike by HCS
writers, so a field whose multiscales document equals that of a field already opened reuses
its levels' array metadata (1 GET instead of 1 + N); ``reuse_field_metadata=False`` turns
this off. Thread-safe: caches fill under a lock, and a value computed twice is the same.
"""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

from ngffcore.zarr.cache import ChunkCache
from ngffcore.errors import MetadataError, NotFoundError, SelectionError
from ngffcore.ome.group import GroupMetadata, child_group_async
from ngffcore.ome.image import Image
from ngffcore.ome.image_open import open_image_async
from ngffcore.zarr.metadata import ArrayMetadata
from ngffcore.ome.multiscales import (
    Acquisition,
    PlateInfo,
    PlateWell,
    WellImage,
    WellInfo,
    parse_plate,
    parse_well,
)
from ngffcore.store.protocol import Store, get_data
from ngffcore.store.sync import run_sync
from ngffcore.store.ioloop import run_on_io_loop



class _FieldTemplates:
    """Level array metadata by multiscales document, shared by every field of a plate."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._by_doc: dict[str, tuple[ArrayMetadata, ...]] = {}

    @staticmethod
    def _key(group: GroupMetadata) -> str:
        # the multiscales document plus the format: equal keys mean equal level paths and
        # transforms; HCS writers then write the arrays alike too
        return json.dumps([group.zarr_format, group.ome.get("multiscales")], sort_keys=True)

    def get(self, group: GroupMetadata) -> tuple[ArrayMetadata, ...] | None:
        if not self.enabled:
            return None
        with self._lock:
            return self._by_doc.get(self._key(group))

    def put(self, group: GroupMetadata, image: Image) -> None:
        if self.enabled:
            with self._lock:
                self._by_doc.setdefault(self._key(group),
                                        tuple(lvl.metadata for lvl in image.levels))


class Well:
    """One well: its field images (``images``, in the order the well lists them).
    ``field(i)`` opens field ``i`` as an :class:`Image`."""

    def __init__(self, store: Store, group: GroupMetadata, templates: _FieldTemplates,
                 cache: ChunkCache | None = None) -> None:
        self.cache = cache  # shared by every field image
        self._store = store
        self._group = group
        self._info: WellInfo = parse_well(group.ome, group.url)
        self._templates = templates
        self._fields: dict[int, Image] = {}
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        return self._group.path

    @property
    def url(self) -> str:
        return self._group.url

    @property
    def images(self) -> tuple[WellImage, ...]:
        return self._info.images

    @property
    def version(self) -> str | None:
        return self._info.version

    @property
    def metadata(self) -> dict[str, Any]:
        return self._group.attributes

    def __len__(self) -> int:
        return len(self._info.images)

    def __repr__(self) -> str:
        return f"<ngffcore.Well {self._group.url} fields={len(self)}>"

    def field(self, index: int) -> Image:
        """Field of view ``index`` (0-based, as listed by the well)."""
        return run_on_io_loop(self.field_async(index))

    async def field_async(self, index: int) -> Image:
        n = len(self._info.images)
        if not -n <= index < n:
            raise SelectionError(f"{self._group.url}: field {index} out of range: the well "
                                 f"has {n} fields")
        index %= n
        with self._lock:
            if index in self._fields:
                return self._fields[index]
        group = await child_group_async(self._store, self._group,
                                        self._info.images[index].path)
        image = await open_image_async(self._store, group,
                                       level_metadata=self._templates.get(group),
                                       cache=self.cache)
        self._templates.put(group, image)
        with self._lock:
            return self._fields.setdefault(index, image)


class Plate:
    """An HCS plate: ``rows`` and ``columns`` (names), ``wells`` (those present),
    ``acquisitions``, ``field_count``; ``well(row, column)`` opens one well."""

    def __init__(self, store: Store, group: GroupMetadata, reuse_field_metadata: bool = True,
                 cache: ChunkCache | None = None) -> None:
        self.cache = cache  # shared by every field image of the plate
        self._store = store
        self._group = group
        self._info: PlateInfo = parse_plate(group.ome, group.url)
        # a set: opening every well of a large plate must not scan the well list each time
        self._well_paths = frozenset(w.path for w in self._info.wells)
        self._templates = _FieldTemplates(reuse_field_metadata)
        self._wells: dict[str, Well] = {}
        self._lock = threading.Lock()

    @property
    def rows(self) -> tuple[str, ...]:
        """Row names, top to bottom."""
        return self._info.rows

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names, left to right."""
        return self._info.columns

    @property
    def wells(self) -> tuple[PlateWell, ...]:
        return self._info.wells

    @property
    def acquisitions(self) -> tuple[Acquisition, ...]:
        return self._info.acquisitions

    @property
    def field_count(self) -> int | None:
        return self._info.field_count

    @property
    def name(self) -> str | None:
        return self._info.name

    @property
    def version(self) -> str | None:
        return self._info.version

    @property
    def metadata(self) -> dict[str, Any]:
        return self._group.attributes

    @property
    def url(self) -> str:
        return self._group.url

    def __repr__(self) -> str:
        return (f"<ngffcore.Plate {self._group.url} {len(self.rows)}×{len(self.columns)} "
                f"wells={len(self.wells)}>")

    def _well_path(self, row: str | int, column: str | int | None) -> str:
        if column is None:
            if not isinstance(row, str) or row.count("/") != 1:
                raise SelectionError(f"well {row!r}: give (row, column) or 'row/column'")
            row, column = row.split("/")
        # a row or column is named as in the metadata ("B", "3"); an int column is its name
        # (plates number columns from 1: well("B", 3)), an int row its index
        r = self._info.rows[row] if isinstance(row, int) else str(row)
        c = str(column)
        path = f"{r}/{c}"
        if path not in self._well_paths:
            raise NotFoundError(f"{self._group.url}: the plate has no well {path!r}",
                                path=f"{self._group.url}/{path}")
        return path

    def well(self, row: str | int, column: str | int | None = None) -> Well:
        """The well at ``row`` (a name like "B", or a 0-based index) and ``column`` (a name
        like "3" or 3), or ``well("B/3")``."""
        return run_on_io_loop(self.well_async(row, column))

    async def well_async(self, row: str | int, column: str | int | None = None) -> Well:
        path = self._well_path(row, column)
        with self._lock:
            if path in self._wells:
                return self._wells[path]
        group = await child_group_async(self._store, self._group, path)
        well = Well(self._store, group, self._templates, self.cache)
        with self._lock:
            return self._wells.setdefault(path, well)


def _series_from_xml(raw: Any, where: str) -> tuple[str | None, ...]:
    """Names of the ``Image`` elements of an OME-XML document (one per series)."""
    try:
        root = ET.fromstring(bytes(raw))
    except ET.ParseError as exc:
        raise MetadataError(f"OME-XML does not parse: {exc}", path=where) from None
    return tuple(el.get("Name") for el in root if el.tag.rsplit("}", 1)[-1] == "Image")


class Collection:
    """A bioformats2raw container: a sequence of series, each an :class:`Image`.

    ``series`` are the series' group paths, from ``OME/``'s ``series`` attribute, else the
    groups ``0 … n-1`` where n counts the ``Image`` elements of ``OME/METADATA.ome.xml``.
    ``collection[i]`` opens series ``i``; ``ome_xml`` is the OME-XML text (read on first use).
    """

    def __init__(self, store: Store, group: GroupMetadata, series: tuple[str, ...],
                 names: tuple[str | None, ...] | None, xml: Any = None,
                 cache: ChunkCache | None = None) -> None:
        self.cache = cache  # shared by every series
        self._store = store
        self._group = group
        self.series = series
        self._names = names
        self._xml = xml
        self._images: dict[int, Image] = {}
        self._lock = threading.Lock()

    @property
    def layout(self) -> int:
        return int(self._group.ome["bioformats2raw.layout"])

    @property
    def metadata(self) -> dict[str, Any]:
        return self._group.attributes

    @property
    def url(self) -> str:
        return self._group.url

    @property
    def ome_xml(self) -> str | None:
        """``OME/METADATA.ome.xml`` as text, or None if the container has none."""
        if self._xml is None:
            self._xml = run_sync(self._store, get_data(
                self._store, self._group.child_path("OME/METADATA.ome.xml"))) or b""
        return bytes(self._xml).decode("utf-8", "replace") if self._xml else None

    @property
    def names(self) -> tuple[str | None, ...]:
        """Series names from the OME-XML (None where it gives none)."""
        if self._names is None:
            xml = self.ome_xml
            found = _series_from_xml(xml.encode(), self.url) if xml else ()
            self._names = tuple(found[i] if i < len(found) else None
                                for i in range(len(self.series)))
        return self._names

    def __len__(self) -> int:
        return len(self.series)

    def __repr__(self) -> str:
        return f"<ngffcore.Collection {self.url} series={len(self)}>"

    def __getitem__(self, index: int) -> Image:
        return run_on_io_loop(self.image_async(index))

    def __iter__(self) -> Iterator[Image]:
        for i in range(len(self)):
            yield self[i]

    async def image_async(self, index: int) -> Image:
        n = len(self.series)
        if not -n <= index < n:
            raise SelectionError(f"{self.url}: series {index} out of range: the container "
                                 f"has {n}")
        index %= n
        with self._lock:
            if index in self._images:
                return self._images[index]
        group = await child_group_async(self._store, self._group, self.series[index])
        image = await open_image_async(self._store, group, cache=self.cache)
        with self._lock:
            return self._images.setdefault(index, image)


async def open_collection_async(store: Store, group: GroupMetadata,
                                cache: ChunkCache | None = None) -> Collection:
    """Read the series list of a bioformats2raw container (``OME/``'s attributes, else the
    OME-XML's Image count)."""
    try:
        ome_group = await child_group_async(store, group, "OME")
        series = ome_group.ome.get("series")
    except NotFoundError:
        series = None
    if series is not None:
        if not isinstance(series, list) or not all(isinstance(s, str) for s in series):
            raise MetadataError("OME series must be a list of group paths",
                                path=f"{group.url}/OME")
        return Collection(store, group, tuple(s.strip("/") for s in series), None,
                          cache=cache)
    key = group.child_path("OME/METADATA.ome.xml")
    xml = await get_data(store, key)
    if xml is None:
        raise MetadataError("bioformats2raw container without an OME series list or "
                            "OME/METADATA.ome.xml: its series can't be found without "
                            "listing", path=group.url)
    names = _series_from_xml(xml, f"{group.url}/OME/METADATA.ome.xml")
    return Collection(store, group, tuple(str(i) for i in range(len(names))), names, xml,
                      cache)


__all__ = ["Plate", "Well", "Collection", "open_collection_async"]
