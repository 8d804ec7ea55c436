"""Listing a field in its well's document: the one place that rewrites a well's ``images``.

Both ways of writing a plate field end here: ``PlateWriter.write_field`` (the well at
``<row>/<column>`` of the plate's store) and ``write_image`` into a field's location
(``<plate>/<row>/<column>/<field>``: the well is the parent of the image's location, opened
as a store of its own). :func:`add_field` reads the well's document (one GET: 0.5
``zarr.json``, 0.4 ``.zattrs``), lists the field in it and writes it back in one put, under
a lock per well shared by every writer of this process, so fields of one well written at
once from several threads, by either way, all end up listed. Writers in other processes are
not covered by that lock (two processes adding fields to one well at the same moment can
lose one of the two entries).
"""

from __future__ import annotations

import copy
import os
import re
import threading
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlparse, urlunparse

from ngffcore.errors import AuthError, MetadataError
from ngffcore.ome.build import ome_attributes
from ngffcore.store.ioloop import run_on_io_loop
from ngffcore.store.location import open_store
from ngffcore.store.protocol import Store, get_data
from ngffcore.zarr.metadata import metadata_bytes, parse_json

#: row, column and field names as the plate and well schemas allow them
NAME = re.compile(r"[A-Za-z0-9]+")


class _WellLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


_guard = threading.Lock()
#: well → its lock, while someone holds or waits for it (dropped after: a process writing
#: many plates keeps no entry per well it ever wrote)
_locks: dict[Hashable, _WellLock] = {}


def _well_key(store: Store, path: str) -> Hashable:
    """Where the well is, spelt the same whichever store reaches it: the plate's store with
    ``path`` "A/1" (write_field) or a store rooted at the well itself (write_image): its URL
    (a local one resolved through links). Not a cache key, so the store's ``url`` serves:
    stores that differ only in options (credentials, endpoints) may share a key, which only
    makes their writers wait for each other."""
    url = f"{store.url.rstrip('/')}/{path}".rstrip("/")
    if url.startswith("file://"):
        return "file://" + os.path.realpath(url[len("file://"):])
    return url


@contextmanager
def well_locked(store: Store, path: str) -> Iterator[None]:
    """Hold the process-wide lock of the well at ``path`` (in a thread other than the I/O
    loop's: its holder waits for requests run there)."""
    key = _well_key(store, path)
    with _guard:
        entry = _locks.get(key)
        if entry is None:
            entry = _locks[key] = _WellLock()
        entry.users += 1
    try:
        with entry.lock:
            yield
    finally:
        with _guard:
            entry.users -= 1
            if not entry.users:
                del _locks[key]


def parent_of(location: Any, store_options: Mapping[str, Any]) -> tuple[Store, str] | None:
    """The group holding ``location`` (a path or URL, as ``open_store`` takes it), as a
    store rooted there (opened with the same options), and the name of ``location`` in it;
    None when there is none to find: a store object (its root has no known parent), a
    file system or bucket root, a URL with a query or fragment. Opening asks nothing of the
    store."""
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str):
        return None
    if "://" not in location or location.lower().startswith("file://"):
        # the directory LocalStore writes to (its root: abspath, as open_store makes it)
        path = unquote(urlparse(location).path) if "://" in location else location
        root = os.path.abspath(path)
        parent, name = os.path.split(root)
        return (open_store(parent, **store_options), name) if name else None
    parsed = urlparse(location.rstrip("/"))
    if parsed.query or parsed.fragment or parsed.params:
        return None
    parent, _, name = parsed.path.rpartition("/")
    if not name:  # the bucket itself
        return None
    url = urlunparse(parsed._replace(path=parent))
    return open_store(url, **store_options), unquote(name)


def empty_well(version: str) -> dict[str, Any]:
    """The attributes of a well listing no field (``write_plate`` writes every well so)."""
    well: dict[str, Any] = {"images": []}
    if version == "0.4":
        well["version"] = "0.4"
    return ome_attributes({"well": well}, version)


def _document(path: str, version: str) -> str:
    prefix = f"{path}/" if path else ""
    return prefix + ("zarr.json" if version == "0.5" else ".zattrs")


def _well_of(doc: Mapping[str, Any], version: str) -> Any:
    """The ``well`` object of a group document (0.5: ``attributes.ome.well``; 0.4: ``well``
    of ``.zattrs``), or None."""
    if version == "0.5":
        if doc.get("node_type") != "group":
            return None
        attrs = doc.get("attributes")
        ome = attrs.get("ome") if isinstance(attrs, Mapping) else None
        doc = ome if isinstance(ome, Mapping) else {}
    well = doc.get("well")
    return well if isinstance(well, Mapping) else None


async def read_well(store: Store, path: str, version: str, *, refused_as_none: bool = True
                    ) -> dict[str, Any] | None:
    """The document of the group at ``path`` (0.5: the whole ``zarr.json``; 0.4:
    ``.zattrs``) if that group is a well, else None. One GET, of the document ``version``
    names (a well's fields share its version). A document that is no JSON object is not a
    well: it is left alone; so is one the credentials may not read, unless not
    ``refused_as_none`` (they may be limited to the image's own prefix: its parent is none
    of that writer's business then)."""
    key = _document(path, version)
    try:
        raw = await get_data(store, key)
    except AuthError:
        if not refused_as_none:
            raise
        return None
    if raw is None:
        return None
    try:
        doc = parse_json(raw, f"{store.url}/{key}")
    except MetadataError:
        return None
    return doc if _well_of(doc, version) is not None else None


def _order(name: str) -> tuple[int, int, str]:
    # fields named 0, 1, … in numeric order, so Well.field(i) is field i once 0 … i are in
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def with_field(doc: Mapping[str, Any], version: str, name: str, acquisition: int | None,
               url: str) -> dict[str, Any] | None:
    """A copy of the well document ``doc`` whose ``images`` list ``name`` (with
    ``acquisition`` when not None), or None when it already does so. A new entry goes before
    the first entry that sorts after it (numbers numerically), so fields written in any
    order end up in field order while entries of other writers keep their order. Everything
    else in the document is kept."""
    new = copy.deepcopy(dict(doc))
    well = _well_of(new, version)
    images = well.get("images", [])
    if not isinstance(images, list) or not all(isinstance(i, Mapping) for i in images):
        raise MetadataError(f"the well's images are not a list of objects: cannot list "
                            f"field {name!r} in it", path=url)
    entry: dict[str, Any] = {"path": name}
    if acquisition is not None:
        entry["acquisition"] = acquisition
    for k, image in enumerate(images):
        if str(image.get("path")) == name:
            if acquisition is None or image.get("acquisition") == acquisition:
                return None
            images[k] = {**image, "acquisition": acquisition}
            break
    else:
        at = next((k for k, image in enumerate(images)
                   if _order(str(image.get("path"))) > _order(name)), len(images))
        images.insert(at, entry)
    well["images"] = images
    if version == "0.5" and isinstance(new.get("consolidated_metadata"), Mapping):
        # a reader takes the well's children from it (absent there means absent): the new
        # field would be hidden, so the stale listing goes
        new["consolidated_metadata"] = None
    return new


async def _put_well(store: Store, path: str, doc: dict[str, Any], version: str) -> None:
    # one put of the one document (0.4: .zattrs; its .zgroup never changes)
    await store.put(_document(path, version), metadata_bytes(doc))


def add_field(store: Store, path: str, name: str, acquisition: int | None, version: str,
              *, missing: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """List the field ``name`` in the well at ``path`` of ``store``: under the well's lock,
    one GET of its document and, unless it lists the field so already, one put of it with
    the field added (:func:`with_field`). Returns the well document as it now is, or None
    when the group is no well. ``missing``: the attributes to start from when the group has
    no well document (write_field: the plate's own well, listing nothing)."""
    url = f"{store.url}/{_document(path, version)}"
    with well_locked(store, path):
        # the plate's own well (missing given) must be read: never rewritten from nothing
        doc = run_on_io_loop(read_well(store, path, version, refused_as_none=missing is None))
        if doc is None:
            if missing is None:
                return None
            doc = ({"zarr_format": 3, "node_type": "group", "attributes": missing}
                   if version == "0.5" else dict(missing))
        new = with_field(doc, version, name, acquisition, url)
        if new is None:
            return doc
        run_on_io_loop(_put_well(store, path, new, version))
        return new


def listed_fields(doc: Mapping[str, Any], version: str) -> dict[int, int | None]:
    """The numbered fields a well document lists (field → acquisition id or None)."""
    well = _well_of(doc, version) or {}
    out: dict[int, int | None] = {}
    for image in well.get("images", []):
        path = str(image.get("path"))
        if path.isdigit():
            acq = image.get("acquisition")
            out[int(path)] = acq if isinstance(acq, int) else None
    return out


__all__ = ["NAME", "add_field", "empty_well", "listed_fields", "parent_of", "read_well",
           "well_locked", "with_field"]
