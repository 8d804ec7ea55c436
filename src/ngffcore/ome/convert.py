"""``convert``: an OME-Zarr image, plate or bioformats2raw collection re-encoded into another
layout (0.4 ↔ 0.5, chunks, shards, compressor), its levels copied, never recomputed; only
``levels`` beyond the source's are computed (``pyramid.PyramidWriter``).

Streaming: each array is copied in slabs of whole output objects (chunks, or shards), read
from the source in one read and written with one PUT per object, so memory is bounded by
``SLAB_BYTES`` (or one object, if larger) whatever the image size, and no object is read
back or written twice.

Resumable (docs/ome.md, "Converting"): a journal object in DEST records the parameters and,
per array, how many of its slabs are complete (slabs are visited in a fixed order); it is
rewritten (atomically) after each slab. A resume skips the complete slabs and rewrites the
rest, whole — the encoded bytes of an object depend only on its pixels and the parameters,
so a slab half written before a crash is rewritten to the same bytes. The group documents
go last (children first, the root last), then the journal is deleted: an interrupted DEST
never looks like a valid image.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, cast

import numpy as np

from ngffcore.errors import ArgumentError, ExistsError, MetadataError, ReadOnlyError
from ngffcore.ome.build import (METHODS, VERSIONS, clip_grids, parse_axes, parse_grid,
                                plan_pyramid)
from ngffcore.ome.convert_plan import ArrayCopy, ExtraLevels, Plan, join, make_plan
from ngffcore.ome.pyramid import PyramidWriter
from ngffcore.ome.writer import write_group
from ngffcore.store.localfile import is_temporary
from ngffcore.store.location import open_store
from ngffcore.store.protocol import Store, get_data
from ngffcore.store.sync import run_sync
from ngffcore.zarr.array import Array
from ngffcore.zarr.create import build_metadata
from ngffcore.zarr.grid import Box, slab_boxes
from ngffcore.zarr.metadata import ArrayMetadata, metadata_bytes, parse_json
from ngffcore.zarr.write import check_writable

#: the resume journal, at DEST's root (a leading dot: no Zarr key, hidden from listings)
JOURNAL = ".ngffcore-convert.json"
#: the most decoded bytes one slab holds (a slab is at least one output object)
SLAB_BYTES = 64 << 20
COMPRESSORS = ("zstd", "blosc", "gzip", "zlib", "none")
DEFAULT_LEVEL = {"zstd": 0, "blosc": 5, "gzip": 5, "zlib": 5}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Options:
    """The conversion's parameters (what a resume must repeat exactly)."""

    source: str
    version: str
    chunks: tuple[int, ...] | None
    shards: tuple[int, ...] | None
    compressor: str
    levels: int | None
    downsample: str


def _compressor(text: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME:LEVEL``."""
    name, _, level = text.partition(":")
    if name not in COMPRESSORS:
        raise ArgumentError(f"compressor {text!r}: the name must be one of "
                            f"{', '.join(COMPRESSORS)}")
    if not level:
        return name, DEFAULT_LEVEL.get(name)
    if name == "none" or not level.lstrip("-").isdigit():
        raise ArgumentError(f"compressor {text!r}: the level must be an integer "
                            "(NAME:LEVEL)")
    return name, int(level)


def _codecs(spec: str, dtype: np.dtype, version: str) -> dict[str, Any]:
    """create_array options for the compressor ``spec`` (0.5: v3 codecs; 0.4: numcodecs)."""
    name, level = _compressor(spec)
    if version == "0.4":
        if name == "none":
            return {"compressor": None}
        conf: dict[str, Any] = {"id": name, "level": level} if name != "blosc" else {
            "id": "blosc", "cname": "zstd", "clevel": level, "shuffle": 1, "blocksize": 0}
        return {"compressor": conf}
    chain: list[dict[str, Any]] = [{"name": "bytes", "configuration": {"endian": "little"}}]
    if name == "zstd":
        chain.append({"name": "zstd", "configuration": {"level": level, "checksum": False}})
    elif name == "blosc":
        chain.append({"name": "blosc", "configuration": {
            "cname": "zstd", "clevel": level, "shuffle": "shuffle" if dtype.itemsize > 1
            else "bitshuffle", "typesize": dtype.itemsize, "blocksize": 0}})
    elif name == "gzip":
        chain.append({"name": "gzip", "configuration": {"level": level}})
    elif name == "zlib":
        chain.append({"name": "numcodecs.zlib", "configuration": {"level": level}})
    return {"codecs": chain}


def _array_dimensions(attributes: dict[str, Any] | None, ndim: int) -> list[str] | None:
    """xarray's ``_ARRAY_DIMENSIONS`` of a v2 array, when it names each dimension."""
    names = (attributes or {}).get("_ARRAY_DIMENSIONS")
    if isinstance(names, list) and len(names) == ndim and all(isinstance(n, str)
                                                              for n in names):
        return list(names)
    return None


def array_options(opts: Options, shape: tuple[int, ...], dtype: np.dtype,
                  like: Array | None, axes: Sequence[str] | None, where: str,
                  attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    """create_array options of an output array of ``shape``: ``opts``'s chunks / shards
    (level-0 shapes, clipped to the level) or those of the source array ``like``;
    ``attributes`` the array's own (copied as they are, whatever the formats)."""
    ndim = len(shape)
    for value, what in ((opts.chunks, "chunks"), (opts.shards, "shards")):
        if value is not None and len(value) < ndim:
            raise ArgumentError(f"{where}: {what} {list(value)} has {len(value)} dimensions, "
                                f"the array {ndim}")
    # arrays with fewer axes (label images have no c; images may lack t or c) take the
    # trailing values: OME-Zarr orders axes time, channel, space, so these are the same axes
    if opts.chunks is not None or opts.shards is not None:
        opts = replace(opts, chunks=opts.chunks[-ndim:] if opts.chunks else None,
                       shards=opts.shards[-ndim:] if opts.shards else None)
    if opts.chunks is not None or like is None:
        base = opts.chunks or (like.chunks if like is not None else shape)
        chunks, shards = clip_grids(base, opts.shards, shape)
    else:
        chunks, shards = clip_grids(like.chunks, opts.shards, shape)
        if opts.shards is None:
            chunks, shards = like.chunks, like.shards if opts.version == "0.5" else None
    dt = dtype.newbyteorder("=")
    out: dict[str, Any] = dict(shape=shape, dtype=dt, chunks=chunks,
                               **_codecs(opts.compressor, dt, opts.version))
    fill = like.fill_value if like is not None else None
    if opts.version == "0.5":
        # 0.5 requires dimension_names equal to the axes' names; a level the axes cannot
        # name (another dimension count) keeps a v2 source's xarray names, if any
        names = (list(axes) if axes and len(axes) == ndim
                 else _array_dimensions(attributes, ndim))
        out.update(zarr_format=3, shards=shards, fill_value=0 if fill is None else fill,
                   dimension_names=names)
    else:  # (0.4 has no place for a v3 source's dimension_names: the axes carry them)
        out.update(zarr_format=2, dimension_separator="/", fill_value=fill)
    if attributes:
        out["attributes"] = dict(attributes)
    return out


def _create(store: Store, path: str, options: dict[str, Any]) -> Array:
    """The array's metadata document written (again, on a resume: same bytes) without
    touching its objects (``create_array`` would remove them); v2: ``.zattrs`` too, when
    the array has attributes."""
    where = f"{store.url}/{path}/"
    doc, meta = build_metadata(where=where, **options)
    check_writable(meta, where)
    if meta.zarr_format == 2 and options.get("attributes"):
        run_sync(store, store.put(f"{path}/.zattrs", metadata_bytes(options["attributes"])))
    name = "zarr.json" if meta.zarr_format == 3 else ".zarray"
    run_sync(store, store.put(f"{path}/{name}", metadata_bytes(doc)))
    return Array(store, meta, path, mode="r+")


def slabs(shape: tuple[int, ...], grid: tuple[int, ...], itemsize: int) -> list[Box]:
    """The array cut into slabs of whole objects of ``grid``, at most SLAB_BYTES each
    (or one object), in a fixed order: cut along the outermost axis spanning several
    objects, then again inside any slab still too large."""
    def cut(box: Box) -> list[Box]:
        parts = slab_boxes(box, grid, itemsize, SLAB_BYTES)
        if parts == [box]:
            return parts
        return [s for p in parts for s in cut(p)]
    return cut(tuple((0, n) for n in shape))


def _nbytes(box: Box, itemsize: int) -> int:
    return math.prod(b - a for a, b in box) * itemsize


class _Skip:
    """Level 0 of the pass that computes extra levels: the source's coarsest level, already
    copied, so the pass reads it but writes nothing there."""

    def __init__(self, meta: ArrayMetadata) -> None:
        self.metadata = meta

    def write(self, selection: Any, value: Any) -> None:
        pass


@dataclass
class _Extra:
    levels: ExtraLevels
    paths: list[str]
    options: list[dict[str, Any]]
    pyramid: Any
    nbytes: int


def _ome(attrs: dict[str, Any], version: str) -> dict[str, Any]:
    return cast(dict[str, Any], attrs["ome"]) if version == "0.5" else attrs


def _plan_extra(opts: Options, plan: Plan, store_url: str) -> list[_Extra]:
    """Shapes, transforms and array options of the levels ``levels`` adds, with the
    datasets they add to their image's multiscales[0] (in the planned group attributes)."""
    out = []
    attrs_of = dict(plan.groups)
    for ex in plan.extra:
        src = ex.coarsest.source
        axes = parse_axes(ex.axes, src.ndim)
        pyramid = plan_pyramid(src.shape, axes, ex.scale, ex.translation,
                               levels=len(ex.paths) + 1)
        paths = ex.paths[:len(pyramid.shapes) - 1]  # no axis can shrink any further
        options = [array_options(opts, shape, src.dtype, None, [a.name for a in axes],
                                 f"{store_url}/{join(ex.image, p)}")
                   for p, shape in zip(paths, pyramid.shapes[1:])]
        datasets = _ome(attrs_of[ex.image], opts.version)["multiscales"][0]["datasets"]
        for p, sc, tr in zip(paths, pyramid.scales[1:], pyramid.translations[1:]):
            transforms: list[dict[str, Any]] = [{"type": "scale", "scale": list(sc)}]
            if any(t != 0 for t in tr):
                transforms.append({"type": "translation", "translation": list(tr)})
            datasets.append({"path": p, "coordinateTransformations": transforms})
        nbytes = sum(math.prod(s) for s in pyramid.shapes[1:]) * src.dtype.itemsize
        out.append(_Extra(ex, paths, options, pyramid, nbytes))
    return out


class _Journal:
    def __init__(self, store: Store, params: dict[str, Any]) -> None:
        self.store = store
        self.state: dict[str, Any] = {"ngffcore-convert": 1, "parameters": params,
                                      "done": {}, "extra": []}

    def save(self) -> None:
        run_sync(self.store, self.store.put(JOURNAL, json.dumps(self.state).encode()))


def _prepare_dest(store: Store, journal: _Journal, overwrite: bool, resume: bool) -> bool:
    """DEST empty, emptied (``overwrite``) or holding an interrupted conversion with the same
    parameters (``resume``); anything else is refused before a byte is written. False: a
    resume found nothing left to do."""
    if not store.writable:
        raise ReadOnlyError(f"{store.url} takes no writes")
    found = run_sync(store, store.list_prefix(""))
    if found and resume:
        raw = run_sync(store, get_data(store, JOURNAL))
        if raw is None and ("zarr.json" in found or ".zattrs" in found):
            # the root document is written last and the journal deleted after it: a
            # conversion killed after its last step (resume writes nothing without a journal)
            return False
        if raw is None:
            raise ExistsError(f"{store.url} is not empty ({found[0]} and {len(found) - 1} "
                              f"more) and holds no interrupted conversion ({JOURNAL}) to "
                              "resume: convert with --overwrite to replace it",
                              path=store.url)
        old = parse_json(raw, f"{store.url}/{JOURNAL}")
        if old.get("parameters") != journal.state["parameters"]:
            raise ExistsError(f"{store.url}/{JOURNAL}: the interrupted conversion had other "
                              f"parameters ({old.get('parameters')}); resume with those, or "
                              "convert with --overwrite", path=f"{store.url}/{JOURNAL}")
        journal.state = old
        _sweep(store)
        return True
    if found and not overwrite:
        raise ExistsError(f"{store.url} is not empty ({found[0]} and {len(found) - 1} more): "
                          "convert with --overwrite to replace it or --resume to finish an "
                          "interrupted conversion", path=store.url)
    for key in found:
        run_sync(store, store.delete(key))
    journal.save()
    return True


def _sweep(store: Store) -> None:
    """Temporary files of atomic puts cut short by the crash (local stores: the only ones
    that leave such debris; listings never show them)."""
    if store.local_root is None:
        return
    for dirpath, _, files in os.walk(os.fsdecode(store.local_root)):
        for name in files:
            if is_temporary(name):
                os.unlink(os.path.join(dirpath, name))


def convert(source: Any, dest: Any, *, version: str = "0.5", chunks: Any = None,
            shards: Any = None, compressor: str = "zstd", levels: int | None = None,
            downsample: str = "mean", overwrite: bool = False, resume: bool = False,
            progress: Progress | None = None, source_options: dict[str, Any] | None = None,
            dest_options: dict[str, Any] | None = None) -> bool:
    """Convert the OME-Zarr image, plate or bioformats2raw collection at ``source`` into
    ``dest`` (paths, URLs or stores) as OME-NGFF ``version``: ``chunks``/``shards`` level-0
    shapes (clipped per level; default: the source's), ``compressor`` "zstd", "blosc",
    "gzip", "zlib" or "none" (optionally ":LEVEL"), ``levels`` a total level count: levels
    beyond the source's are computed with ``downsample`` ("mode" for label images). A
    ``dest`` holding anything raises ExistsError unless ``overwrite`` (emptied first) or
    ``resume`` (finish an interrupted conversion with the same parameters). ``progress``
    is called with (bytes done, bytes total), decoded bytes. Returns False when ``resume``
    found DEST complete already (group metadata at its root, no journal): nothing written."""
    if version not in VERSIONS:
        raise ArgumentError(f"version must be one of {VERSIONS}, not {version!r}")
    if downsample not in METHODS:
        raise ArgumentError(f"downsample must be one of {METHODS}, not {downsample!r}")
    if levels is not None and (isinstance(levels, bool) or not isinstance(levels, int)
                               or levels < 1):
        raise ArgumentError(f"levels must be an integer >= 1, not {levels!r}")
    if overwrite and resume:
        raise ArgumentError("overwrite and resume exclude each other")
    _compressor(compressor)
    shard_shape = parse_grid(shards, "shards")
    if shard_shape is not None and version != "0.5":
        raise ArgumentError("shards need version 0.5 (Zarr v3); 0.4 is Zarr v2")
    src = source if hasattr(source, "list_prefix") else open_store(source, **(source_options
                                                                              or {}))
    dst = dest if hasattr(dest, "list_prefix") else open_store(dest, **(dest_options or {}))
    opts = Options(src.url, version, parse_grid(chunks, "chunks"), shard_shape, compressor,
                   levels, downsample)
    plan = run_sync(src, make_plan(src, version, levels))
    # every option checked (documents built) before DEST is touched
    copies = [(c, array_options(opts, c.source.shape, c.source.dtype, c.source, c.axes,
                                f"{dst.url}/{c.path}", c.attributes)) for c in plan.arrays]
    for c, options in copies:
        try:
            build_metadata(**options)
        except ArgumentError as exc:  # name the array: a plate has hundreds
            raise ArgumentError(f"{dst.url}/{c.path}: {exc}") from None
    extras = _plan_extra(opts, plan, dst.url)
    journal = _Journal(dst, json.loads(json.dumps(asdict(opts))))  # as the journal has it
    if not _prepare_dest(dst, journal, overwrite, resume):
        return False
    total = sum(c.source.nbytes for c in plan.arrays) + sum(e.nbytes for e in extras)
    done = 0
    for copy, options in copies:
        done = _copy(dst, copy, options, journal, done, total, progress)
    for extra in extras:
        done = _add_levels(dst, extra, opts, journal, done, total, progress)
    for key in plan.raw:
        raw = run_sync(src, get_data(src, key))
        if raw is None:
            raise MetadataError("vanished during the conversion", path=f"{src.url}/{key}")
        run_sync(dst, dst.put(key, raw))
    for path, attrs in reversed(plan.groups):  # children first, the root last
        run_sync(dst, write_group(dst, path, attrs, version))
    run_sync(dst, dst.delete(JOURNAL))
    if progress is not None:
        progress(total, total)
    return True


def _copy(dst: Store, copy: ArrayCopy, options: dict[str, Any], journal: _Journal,
          done: int, total: int, progress: Progress | None) -> int:
    out = _create(dst, copy.path, options)
    itemsize = out.dtype.itemsize
    complete = int(journal.state["done"].get(copy.path, 0))
    for i, box in enumerate(slabs(out.shape, out.metadata.grid_shape, itemsize)):
        done += _nbytes(box, itemsize)
        if i < complete:
            continue
        sel = tuple(slice(a, b) for a, b in box)
        out.write(sel, copy.source.read(sel))
        journal.state["done"][copy.path] = i + 1
        journal.save()
        if progress is not None:
            progress(done, total)
    return done


def _add_levels(dst: Store, extra: _Extra, opts: Options, journal: _Journal, done: int,
                total: int, progress: Progress | None) -> int:
    """One streaming pass over the source's coarsest level; rerun whole on a resume unless
    complete (its objects are written whole, so a rerun rewrites the same bytes)."""
    image = extra.levels.image
    arrays = [_create(dst, join(image, p), o) for p, o in zip(extra.paths, extra.options)]
    if arrays and image not in journal.state["extra"]:
        src = extra.levels.coarsest.source
        method = "mode" if extra.levels.label else opts.downsample
        first = cast(Array, _Skip(src.metadata))
        PyramidWriter(src, [first] + arrays, extra.pyramid, method,
                      src.dtype.newbyteorder("=")).run()
        journal.state["extra"].append(image)
        journal.save()
    done += extra.nbytes
    if progress is not None:
        progress(done, total)
    return done


__all__ = ["COMPRESSORS", "JOURNAL", "SLAB_BYTES", "array_options", "convert", "slabs"]
