"""``write_plate``: an OME-Zarr 0.4 / 0.5 HCS plate written image by image.

``write_plate`` writes the row groups, one well group per well (``"images": []``) and then
the plate document, last, so a reader never finds a plate whose wells are missing. It
returns a :class:`PlateWriter`: a :class:`~ngffcore.ome.collection.Plate` (it reads like
one) whose ``write_field`` writes a field image with ``write_image_in`` and then lists it in
that well's document (``well_update.add_field``: one GET, one put, under the well's lock,
as ``write_image`` into a field's location does), so every well lists exactly the fields
written so far.
Every argument is checked before anything is written (docs/ome.md, "Writing plates").
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ngffcore.errors import ArgumentError, ExistsError, ReadOnlyError
from ngffcore.ome.build import (VERSIONS, multiscale_json, ome_attributes, parse_axes,
                                plan_pyramid)
from ngffcore.ome.collection import Plate
from ngffcore.ome.group import read_group_async
from ngffcore.ome.image import Image
from ngffcore.ome.image_open import open_image_async
from ngffcore.ome.well_update import NAME as _NAME
from ngffcore.ome.well_update import add_field, empty_well, listed_fields
from ngffcore.ome.writer import write_group, write_image_in
from ngffcore.store.fanout import gather_bounded
from ngffcore.store.location import open_store
from ngffcore.store.protocol import Store
from ngffcore.store.ioloop import run_on_io_loop
from ngffcore.zarr.metadata import metadata_bytes

_ACQUISITION_KEYS = {"id": int, "name": str, "maximumfieldcount": int, "description": str,
                     "starttime": int, "endtime": int}


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _names(values: Any, what: str) -> tuple[str, ...]:
    """Row or column names: strings (or ints, for numbered columns) of letters and digits,
    unique, at least one."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ArgumentError(f"{what} must be a list of names, not {values!r:.60}")
    out = []
    for v in values:
        name = str(int(v)) if _is_int(v) else v
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ArgumentError(f"{what} name {v!r} must be letters and digits only")
        out.append(name)
    if not out:
        raise ArgumentError(f"{what} must name at least one {what[:-1]}")
    repeated = sorted(n for n, k in Counter(out).items() if k > 1)
    if repeated:
        raise ArgumentError(f"{what} names {repeated} repeat")
    return tuple(out)


def _acquisitions(values: Any) -> list[dict[str, Any]] | None:
    """Acquisitions as the spec's objects (an int is ``{"id": int}``), ids unique."""
    if values is None:
        return None
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
        raise ArgumentError(f"acquisitions must be a list of dicts with an 'id', not "
                            f"{values!r:.60}")
    out = []
    for a in values:
        acq = {"id": a} if _is_int(a) else a
        if not isinstance(acq, Mapping) or not _is_int(acq.get("id")):
            raise ArgumentError(f"acquisition {a!r:.60} must be a dict with an integer 'id'")
        entry: dict[str, Any] = {}
        for key, value in acq.items():
            kind = _ACQUISITION_KEYS.get(key)
            if kind is None:
                raise ArgumentError(f"acquisition {a!r:.60}: unknown key {key!r} (known: "
                                    f"{', '.join(_ACQUISITION_KEYS)})")
            ok = _is_int(value) if kind is int else isinstance(value, str)
            if not ok or (kind is int and (value < (1 if key == "maximumfieldcount" else 0))):
                raise ArgumentError(f"acquisition {a!r:.60}: {key} {value!r} must be a"
                                    + (" positive integer" if key == "maximumfieldcount"
                                       else " non-negative integer" if kind is int
                                       else " string"))
            entry[key] = int(value) if kind is int else value
        out.append(entry)
    ids = [e["id"] for e in out]
    if len(set(ids)) != len(ids):
        raise ArgumentError(f"acquisition ids {ids} repeat")
    return out


def _wells(values: Any, rows: tuple[str, ...], columns: tuple[str, ...]
           ) -> list[dict[str, Any]]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ArgumentError(f"wells must be a list of 'row/column' strings, not "
                            f"{values!r:.60}")
    out = []
    for w in values:
        if not isinstance(w, str) or w.count("/") != 1:
            raise ArgumentError(f"well {w!r} must be a 'row/column' string like 'A/1'")
        row, column = w.split("/")
        if row not in rows:
            raise ArgumentError(f"well {w!r}: row {row!r} is not one of the rows {list(rows)}")
        if column not in columns:
            raise ArgumentError(f"well {w!r}: column {column!r} is not one of the columns "
                                f"{list(columns)}")
        out.append({"path": w, "rowIndex": rows.index(row),
                    "columnIndex": columns.index(column)})
    if not out:
        raise ArgumentError("wells must list at least one well")
    repeated = sorted(p for p, n in Counter(str(w["path"]) for w in out).items() if n > 1)
    if repeated:
        raise ArgumentError(f"wells {repeated} are listed more than once")
    return out


def _plate_json(rows: tuple[str, ...], columns: tuple[str, ...], wells: list[dict[str, Any]],
                field_count: int, acquisitions: list[dict[str, Any]] | None,
                name: str | None, version: str) -> dict[str, Any]:
    plate: dict[str, Any] = {}
    if version == "0.4":
        plate["version"] = "0.4"
    if name is not None:
        plate["name"] = name
    if acquisitions is not None:
        plate["acquisitions"] = acquisitions
    plate.update(rows=[{"name": r} for r in rows], columns=[{"name": c} for c in columns],
                 wells=wells, field_count=field_count)
    return ome_attributes({"plate": plate}, version)


def _field_key(data: Any, version: str, kwargs: Mapping[str, Any]) -> tuple[str, str] | None:
    """What a reader keys shared field metadata on (the multiscales document, see
    ``collection._FieldTemplates``), and what that sharing assumes equal across fields
    (shape, dtype, chunks, shards, codecs); None when the arguments are bad
    (``write_image_in`` then says why)."""
    try:
        shape = tuple(int(s) for s in data.shape)
        axes = parse_axes(kwargs.get("axes"), len(shape), kwargs.get("units"))
        pyramid = plan_pyramid(shape, axes, kwargs.get("scale"), kwargs.get("translation"),
                               kwargs.get("levels"), kwargs.get("factors"))
        doc = multiscale_json(axes, pyramid, kwargs.get("downsample", "mean"),
                              kwargs.get("name"), version)
        arrays = [shape, np.dtype(data.dtype).newbyteorder("=").str]
        arrays += [kwargs.get(k) for k in ("chunks", "shards", "codecs")]
        return (json.dumps(doc, sort_keys=True, default=str),
                json.dumps(arrays, sort_keys=True, default=str))
    except (ArgumentError, AttributeError, TypeError, ValueError):
        return None


class PlateWriter(Plate):
    """A plate being written (returned by :func:`write_plate`): reads like any
    :class:`Plate` (wells list the fields written so far) and writes fields with
    :meth:`write_field`. Thread-safe: fields of one plate may be written from several
    threads."""

    def __init__(self, store: Store, group: Any, acquisitions: list[dict[str, Any]] | None,
                 version: str) -> None:
        # no shared field metadata: fields are rewritten (overwrite=True) under this
        # object, and its wells are re-read after every field
        super().__init__(store, group, reuse_field_metadata=False)
        self._version = version
        self._acquisitions = acquisitions
        self._write_lock = threading.Lock()
        self._written: dict[str, dict[int, int | None]] = {w.path: {} for w in self.wells}
        self._keys: dict[str, tuple[str, str]] = {}  # multiscales document → arrays, field

    def __repr__(self) -> str:
        return (f"<ngffcore.PlateWriter {self.url} {len(self.rows)}×{len(self.columns)} "
                f"wells={len(self.wells)}>")

    def _target(self, row: Any, column: Any) -> str:
        # named as Plate.well names them: a row name or 0-based index, a column name or int
        if _is_int(row) and 0 <= row < len(self.rows):
            r = self.rows[row]
        elif isinstance(row, str) and row in self.rows:
            r = row
        else:
            raise ArgumentError(f"{self.url}: row {row!r} is not one of the plate's rows "
                                f"{list(self.rows)} (or their 0-based index)")
        c = str(int(column)) if _is_int(column) else column
        if not isinstance(c, str) or c not in self.columns:
            raise ArgumentError(f"{self.url}: column {column!r} is not one of the plate's "
                                f"columns {list(self.columns)}")
        path = f"{r}/{c}"
        if path not in self._written:
            raise ArgumentError(f"{self.url}: well {path!r} is not one of the plate's wells "
                                "(write_plate's wells=)")
        return path

    def _acquisition(self, path: str, field: int, acquisition: Any) -> int | None:
        if self._acquisitions is None:
            if acquisition is not None:
                raise ArgumentError(f"{self.url}/{path}/{field}: acquisition={acquisition!r} "
                                    "but the plate has no acquisitions")
            return None
        ids = [a["id"] for a in self._acquisitions]
        if acquisition is None:
            if len(ids) > 1:
                raise ArgumentError(f"{self.url}/{path}/{field}: the plate has acquisitions "
                                    f"{ids}: say which with acquisition=")
            return int(ids[0])
        if not _is_int(acquisition) or acquisition not in ids:
            raise ArgumentError(f"{self.url}/{path}/{field}: acquisition {acquisition!r} is "
                                f"not one of the plate's acquisition ids {ids}")
        acq = self._acquisitions[ids.index(acquisition)]
        limit = acq.get("maximumfieldcount")
        written = self._written[path]
        used = sum(1 for f, a in written.items() if a == acquisition and f != field)
        if limit is not None and used >= limit:
            raise ArgumentError(f"{self.url}/{path}/{field}: well {path!r} already has "
                                f"{used} fields of acquisition {acquisition}, its "
                                f"maximumfieldcount")
        return int(acquisition)

    def write_field(self, row: str | int, column: str | int, field: int, data: Any,
                    **write_image_kwargs: Any) -> Image:
        """Write ``data`` as field ``field`` (0 … field_count - 1) of the well at ``row``,
        ``column`` (names, or as :meth:`Plate.well` takes them), at
        ``<row>/<column>/<field>``, then list it in the well's metadata; returns the field
        image. ``write_image_kwargs`` are :func:`ngffcore.write_image`'s (``axes`` …,
        ``overwrite`` to rewrite a field) plus ``acquisition=`` (an acquisition id; needed
        when the plate has several). Fields of one plate with equal multiscales metadata
        must have the same shape, dtype, chunks, shards and codecs (readers share their
        array metadata: docs/ome.md, "Writing plates")."""
        kwargs = dict(write_image_kwargs)
        acquisition = kwargs.pop("acquisition", None)
        version = kwargs.pop("version", self._version)
        if version != self._version:
            raise ArgumentError(f"{self.url}: fields of a {self._version} plate are written "
                                f"as {self._version}, not version={version!r}")
        path = self._target(row, column)
        count = self.field_count or 1
        if not _is_int(field) or not 0 <= field < count:
            raise ArgumentError(f"{self.url}/{path}: field {field!r} must be an integer "
                                f"0 … {count - 1} (field_count={count})")
        field = int(field)
        field_path = f"{path}/{field}"
        with self._write_lock:
            acq = self._acquisition(path, field, acquisition)
            key = _field_key(data, self._version, kwargs)
            first = self._keys.get(key[0]) if key is not None else None
            if key is not None and first is not None and first[0] != key[1]:
                raise ArgumentError(
                    f"{self.url}/{field_path}: field {field_path!r} has the multiscales "
                    f"metadata of field {first[1]!r} but not its shape, dtype, chunks, "
                    "shards and codecs; readers share array metadata between such fields, "
                    "so they must match (or differ in scale, axes, levels or name)")

        run_on_io_loop(write_image_in(self._store, field_path, data, version=self._version,
                                      **kwargs))
        # read-modify-write of the well's document under the process-wide lock of that
        # well, which write_image into a field's location takes too: concurrent fields of
        # one well, written either way, never lose each other
        doc = add_field(self._store, path, str(field), acq, self._version,
                        missing=empty_well(self._version))
        with self._write_lock:
            if key is not None:
                self._keys.setdefault(key[0], (key[1], field_path))
            # what the well now lists (fields written by write_image too) counts towards
            # maximumfieldcount
            self._written[path] = {**self._written[path], **listed_fields(doc or {},
                                                                          self._version)}
            self._written[path][field] = acq
        with self._lock:
            self._wells.pop(path, None)  # read again on next use
        image: Image = run_on_io_loop(_open_field(self._store, field_path))
        return image


async def _open_field(store: Store, path: str) -> Image:
    group = await read_group_async(store, path)
    return await open_image_async(store, group)


def write_plate(location: Any, *, rows: Any, columns: Any, wells: Any, field_count: int = 1,
                acquisitions: Any = None, name: str | None = None, version: str = "0.5",
                **store_options: Any) -> PlateWriter:
    """Write an empty OME-Zarr HCS plate at ``location`` (path, URL or store; an empty
    destination) and return it as a :class:`PlateWriter`, whose ``write_field`` writes its
    field images one by one.

    ``rows``/``columns``: names (letters and digits; ints name numbered columns);
    ``wells``: "row/column" strings of the wells present; ``field_count``: fields per
    well (field indices 0 … field_count - 1); ``acquisitions``: the spec's acquisition
    dicts (``{"id": 0, "name": …, "maximumfieldcount": …}``) or ids; ``name``: the plate's
    name. Every well is written listing no fields; the plate document goes last."""
    if version not in VERSIONS:
        raise ArgumentError(f"version must be one of {VERSIONS}, not {version!r}")
    row_names = _names(rows, "rows")
    column_names = _names(columns, "columns")
    well_list = _wells(wells, row_names, column_names)
    if not _is_int(field_count) or field_count < 1:
        raise ArgumentError(f"field_count must be an integer >= 1, not {field_count!r}")
    acqs = _acquisitions(acquisitions)
    if name is not None and not isinstance(name, str):
        raise ArgumentError(f"plate name must be a string, not {name!r}")
    attrs = _plate_json(row_names, column_names, well_list, int(field_count), acqs, name,
                        version)
    metadata_bytes(attrs)  # not JSON (a NaN in an acquisition): refused before any write
    store = open_store(location, **store_options)

    async def main() -> PlateWriter:
        if not store.writable:
            raise ReadOnlyError(f"{store.url} takes no writes")
        found = await store.list_prefix("")
        if found:
            raise ExistsError(f"{store.url} is not empty ({found[0]} and {len(found) - 1} "
                              "more): write_plate writes a new plate only",
                              path=store.url)
        used_rows = sorted({w["path"].split("/")[0] for w in well_list})
        empty = empty_well(version)
        groups = ([write_group(store, r, {}, version) for r in used_rows]
                  + [write_group(store, w["path"], empty, version) for w in well_list])
        await gather_bounded(store, groups)
        await write_group(store, "", attrs, version)
        group = await read_group_async(store, "")
        return PlateWriter(store, group, acqs, version)

    result: PlateWriter = run_on_io_loop(main())
    return result


__all__ = ["PlateWriter", "write_plate"]
