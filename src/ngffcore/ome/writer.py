"""``write_image`` and ``write_labels``: OME-Zarr 0.4 / 0.5 images with their pyramids
(``pyramid.py``: one streaming pass, every object written once), metadata from ``build.py``,
on any writable store. Every argument is checked before anything is written; the group
metadata goes last, so a reader never finds an image whose levels are not all written.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ngffcore.errors import ArgumentError, ExistsError, ReadOnlyError
from ngffcore.ome.build import (METHODS, VERSIONS, Pyramid, clip_grids, image_attributes,
                                parse_grid,
                                image_label_json, multiscale_json, ome_attributes, omero_json,
                                parse_axes, plan_pyramid)
from ngffcore.ome.group import read_group_async
from ngffcore.ome.image import Image, LabelImage
from ngffcore.ome.image_open import open_image_async
from ngffcore.ome.multiscales import Axis
from ngffcore.ome.pyramid import PyramidWriter
from ngffcore.ome.well_update import NAME, add_field, parent_of, read_well
from ngffcore.store.ioloop import run_on_io_loop
from ngffcore.store.location import open_store
from ngffcore.store.protocol import Store, get_data
from ngffcore.zarr.create import create_array_in
from ngffcore.zarr.metadata import SUPPORTED_DTYPES, metadata_bytes, parse_json

#: default chunk edge on y/x (and z up to it), and on every other spatial axis
DEFAULT_CHUNK = 256
DEFAULT_Z_CHUNK = 32


def _check_data(data: Any) -> tuple[tuple[int, ...], np.dtype]:
    shape = getattr(data, "shape", None)
    dtype = getattr(data, "dtype", None)
    if shape is None or dtype is None or not hasattr(data, "__getitem__"):
        raise ArgumentError(f"data must have shape, dtype and numpy __getitem__, not "
                            f"{type(data).__name__}")
    try:
        dt = np.dtype(dtype).newbyteorder("=")
    except (TypeError, ValueError):
        raise ArgumentError(f"data dtype {dtype!r} is not a numpy dtype") from None
    if dt.name not in SUPPORTED_DTYPES:
        raise ArgumentError(f"data of dtype {dt} cannot be written (supported: "
                            f"{', '.join(SUPPORTED_DTYPES)})")
    return tuple(int(s) for s in shape), dt


def _default_chunks(shape: tuple[int, ...], axes: Sequence[Axis]) -> tuple[int, ...]:
    out = []
    for n, a in zip(shape, axes):
        if not a.is_spatial:
            out.append(1)
        elif a.name == "z":
            out.append(min(n, DEFAULT_Z_CHUNK))
        else:
            out.append(min(n, DEFAULT_CHUNK))
    return tuple(max(1, c) for c in out)


def _v2_compressor(codecs: Any) -> Any:
    """The numcodecs compressor equivalent to a v3 bytes→bytes codec list (0.4 images)."""
    if codecs is None:
        return "default"
    if not isinstance(codecs, Sequence) or len(codecs) > 1:
        raise ArgumentError(f"version 0.4 takes at most one compressor codec, not {codecs!r}")
    if not codecs:
        return None
    codec = codecs[0]
    if not isinstance(codec, Mapping) or not isinstance(codec.get("name"), str):
        raise ArgumentError(f"codec {codec!r} must be a {{'name': ..., 'configuration': ...}}"
                            " dict")
    name = codec["name"].removeprefix("numcodecs.")
    conf = dict(codec.get("configuration") or {})
    if name == "blosc" and isinstance(conf.get("shuffle"), str):
        conf["shuffle"] = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}.get(conf["shuffle"],
                                                                              conf["shuffle"])
        conf.pop("typesize", None)
    if name in ("zstd", "gzip", "zlib", "lz4", "blosc", "bz2", "lzma"):
        return {"id": name, **conf}
    raise ArgumentError(f"codec {codec['name']!r} has no numcodecs compressor for 0.4")


def _v3_codecs(codecs: Any) -> Any:
    if codecs is None:
        return None
    if not isinstance(codecs, Sequence):
        raise ArgumentError(f"codecs must be a list of codec dicts, not {codecs!r}")
    return [{"name": "bytes", "configuration": {"endian": "little"}}] + list(codecs)


async def _clear(store: Store, path: str, overwrite: bool) -> None:
    """A destination holding anything is refused (ExistsError) unless ``overwrite``, which
    empties it first."""
    if not store.writable:
        raise ReadOnlyError(f"{store.url} takes no writes")
    prefix = f"{path}/" if path else ""
    found = await store.list_prefix(prefix)
    if found and not overwrite:
        raise ExistsError(f"{store.url}/{prefix} is not empty ({found[0]} and "
                          f"{len(found) - 1} more): write with overwrite=True to replace it",
                          path=f"{store.url}/{prefix}")
    for key in found:
        await store.delete(key)


def _plan(data: Any, axes: Any, scale: Any, translation: Any, units: Any, levels: Any,
          factors: Any, downsample: str, version: str, chunks: Any, shards: Any
          ) -> tuple[tuple[int, ...], np.dtype, tuple[Axis, ...], Pyramid, tuple[int, ...],
                     tuple[int, ...] | None]:
    shape, dtype = _check_data(data)
    if version not in VERSIONS:
        raise ArgumentError(f"version must be one of {VERSIONS}, not {version!r}")
    if downsample not in METHODS:
        raise ArgumentError(f"downsample must be one of {METHODS}, not {downsample!r}")
    if downsample == "mode" and dtype.kind not in "biu":
        raise ArgumentError(f"downsample='mode' is for labels (integer data), not {dtype}")
    parsed = parse_axes(axes, len(shape), units)
    pyramid = plan_pyramid(shape, parsed, scale, translation, levels, factors)
    chunk_shape = parse_grid(chunks, "chunks", len(shape)) or _default_chunks(shape, parsed)
    shard_shape = parse_grid(shards, "shards", len(shape))
    if shard_shape is not None:
        if version == "0.4":
            raise ArgumentError("shards need version='0.5' (Zarr v3); 0.4 is Zarr v2")
        if any(s % c for s, c in zip(shard_shape, chunk_shape)):
            raise ArgumentError(f"shards {list(shard_shape)} are not a multiple of chunks "
                                f"{list(chunk_shape)}")
    return shape, dtype, parsed, pyramid, chunk_shape, shard_shape


async def write_image_in(store: Store, path: str, data: Any, *, axes: Any, scale: Any = None,
                         translation: Any = None, units: Any = None, chunks: Any = None,
                         shards: Any = None, codecs: Any = None, levels: Any = None,
                         downsample: str = "mean", factors: Any = None, channels: Any = None,
                         name: str | None = None, version: str = "0.5",
                         overwrite: bool = False,
                         extra_attributes: Mapping[str, Any] | None = None) -> Pyramid:
    """``write_image`` at ``path`` inside ``store``; returns the pyramid written."""
    shape, dtype, parsed, pyramid, chunk_shape, shard_shape = _plan(
        data, axes, scale, translation, units, levels, factors, downsample, version, chunks,
        shards)
    compressor = _v2_compressor(codecs) if version == "0.4" else None
    v3_codecs = _v3_codecs(codecs) if version == "0.5" else None
    names = [a.name for a in parsed]
    if "c" in names:
        n_channels = shape[names.index("c")]
        if channels is not None and len(list(channels)) != n_channels:
            raise ArgumentError(f"{len(list(channels))} channels for {n_channels} in the data")
    await _clear(store, path, overwrite)
    prefix = f"{path}/" if path else ""
    arrays = []
    for k, level_shape in enumerate(pyramid.shapes):
        c, s = clip_grids(chunk_shape, shard_shape, level_shape)
        options: dict[str, Any] = dict(shape=level_shape, dtype=dtype, chunks=c)
        if version == "0.5":
            options.update(shards=s, codecs=v3_codecs, dimension_names=names, zarr_format=3)
        else:
            options.update(zarr_format=2, compressor=compressor, dimension_separator="/",
                           fill_value=0)
        arrays.append(await create_array_in(store, prefix + str(k), **options))
    writer = PyramidWriter(data, arrays, pyramid, downsample, dtype,
                           names.index("c") if "c" in names else None)
    await _run_blocking(writer.run)
    multiscale = multiscale_json(parsed, pyramid, downsample, name, version)
    omero = None
    if "c" in names or channels is not None:
        n = shape[names.index("c")] if "c" in names else 1
        omero = omero_json(channels, n, dtype, writer.value_ranges, version)
    attrs = image_attributes(multiscale, omero, version, extra_attributes)
    await write_group(store, path, attrs, version)
    return pyramid


async def _run_blocking(fn: Any) -> None:
    """The pyramid pass is synchronous (its writes are ``Array.write``): on a worker thread,
    so the I/O loop it is called from stays free for the requests of those writes."""
    await asyncio.get_running_loop().run_in_executor(None, fn)


async def write_group(store: Store, path: str, attributes: dict[str, Any], version: str
                      ) -> None:
    """A group document with ``attributes``, in one atomic put (0.5: ``zarr.json``; 0.4:
    ``.zattrs`` after ``.zgroup``)."""
    prefix = f"{path}/" if path else ""
    if version == "0.5":
        doc = {"zarr_format": 3, "node_type": "group", "attributes": attributes}
        await store.put(prefix + "zarr.json", metadata_bytes(doc))
    else:
        await store.put(prefix + ".zgroup", metadata_bytes({"zarr_format": 2}))
        await store.put(prefix + ".zattrs", metadata_bytes(attributes))


async def _open_image(store: Store, path: str, label: bool = False) -> Image:
    group = await read_group_async(store, path)
    return await open_image_async(store, group, 0, label=label)


def _parent_well(store: Store, location: Any, store_options: Mapping[str, Any],
                 version: str, acquisition: Any) -> tuple[Store, str] | None:
    """The group holding ``location`` (a store rooted there) and the image's name in it, if
    write_image is to list the image in it when that group is a well; checks what must be
    checked before the write. No request unless ``acquisition`` is given or the name is no
    field name: only those need to know beforehand whether the parent is a well (else the
    one GET of the well's document is the one under its lock, after the write)."""
    if acquisition is not None and (isinstance(acquisition, bool)
                                    or not isinstance(acquisition, (int, np.integer))
                                    or acquisition < 0):
        raise ArgumentError(f"{store.url}: acquisition {acquisition!r} must be an "
                            "acquisition id (an integer >= 0)")
    if version not in VERSIONS or not store.writable:
        return None  # write_image_in says why
    parent = parent_of(location, store_options)
    if parent is None:
        if acquisition is not None:
            raise ArgumentError(f"{store.url}: acquisition= is for a field of a well, and "
                                f"{location!r} has no parent group")
        return None
    well_store, field = parent
    valid = NAME.fullmatch(field) is not None
    if acquisition is None and valid:
        return parent
    if run_on_io_loop(read_well(well_store, "", version)) is None:
        if acquisition is not None:
            raise ArgumentError(f"{store.url}: acquisition= is for a field of a well, and "
                                f"{well_store.url} is no OME-Zarr {version} well")
        return None
    if not valid:
        raise ArgumentError(f"{store.url}: field name {field!r} in the well "
                            f"{well_store.url} must be letters and digits only")
    return parent


def write_image(location: Any, data: Any, *, axes: Any, scale: Any = None,
                translation: Any = None, units: Any = None, chunks: Any = None,
                shards: Any = None, codecs: Any = None, levels: Any = None,
                downsample: str = "mean", factors: Any = None, channels: Any = None,
                name: str | None = None, version: str = "0.5", overwrite: bool = False,
                acquisition: int | None = None, **store_options: Any) -> Image:
    """Write ``data`` (numpy, dask, or anything with ``shape``, ``dtype`` and numpy
    ``__getitem__``) as an OME-Zarr image with a pyramid at ``location`` (path, URL or
    store), and return it opened.

    ``axes``: names ("tczyx", ["c", "y", "x"]) or ``{name, type, unit}`` dicts;
    ``scale``/``translation``: level 0's pixel size and origin per axis; ``units``: dict
    axis → unit or a per-axis list. ``chunks``/``shards``: level-0 shapes in pixels (each
    level clips them; ``shards`` needs 0.5); ``codecs``: v3 codec dicts after ``bytes``
    (0.4: the numcodecs equivalent). ``levels`` (including 0) and ``factors`` (one per-axis
    integer list per step): see ``docs/ome.md``, "Writing". ``downsample``: "mean",
    "gaussian", "nearest" or "mode". ``channels``: omero channel dicts. A destination
    holding anything raises ExistsError unless ``overwrite``. One pass: the source is read
    once, every object written once.

    Into a field of a plate (``<plate>/<row>/<column>/<field>``: a path or URL whose parent
    group is a well of ``version``), the image is then listed in the well's ``images``
    (with ``acquisition``, an id, when given), as ``PlateWriter.write_field`` lists it;
    the name must then be letters and digits. See docs/ome.md, "Writing plates"."""
    store = open_store(location, **store_options)
    parent = _parent_well(store, location, store_options, version, acquisition)

    async def write() -> None:
        await write_image_in(
            store, "", data, axes=axes, scale=scale, translation=translation, units=units,
            chunks=chunks, shards=shards, codecs=codecs, levels=levels,
            downsample=downsample, factors=factors, channels=channels, name=name,
            version=version, overwrite=overwrite)

    run_on_io_loop(write())
    if parent is not None:
        # in this thread, not on the I/O loop: the well's lock is held across its requests
        add_field(parent[0], "", parent[1], None if acquisition is None else int(acquisition),
                  version)
    return run_on_io_loop(_open_image(store, ""))


def _image_factors(image: Image) -> list[list[int]]:
    """The factors between the image's levels: as recorded by ngffcore, else from the
    level shapes (⌈n / f⌉ = next: the smallest such f)."""
    recorded = image.multiscales[image.multiscale_index].get("metadata", {})
    factors = recorded.get("factors") if isinstance(recorded, Mapping) else None
    if isinstance(factors, list) and len(factors) == len(image.levels) - 1:
        return [list(map(int, f)) for f in factors]
    out = []
    for a, b in zip(image.levels, image.levels[1:]):
        out.append([max(1, math.ceil(n / max(m, 1))) if m < n else 1
                    for n, m in zip(a.shape, b.shape)])
    return out


def write_labels(image: Any, name: str, data: Any, *, colors: Any = None,
                 properties: Any = None, overwrite: bool = False,
                 **write_image_kwargs: Any) -> LabelImage:
    """Write ``data`` as the label image ``name`` beside ``image`` (an Image or a location):
    ``labels/<name>``, with the image's axes (without channels), transforms and factors and
    mode downsampling unless given; ``image-label`` metadata (``colors`` {value: [r, g, b,
    a]}, ``properties``, source); the ``labels`` list updated in one atomic write (existing
    labels kept; an existing ``name`` needs ``overwrite``)."""
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ArgumentError(f"label name {name!r} must be a non-empty name without '/'")
    if not isinstance(image, Image):
        from ngffcore.ome.node import open as open_node

        opened = open_node(image)
        if not isinstance(opened, Image):
            raise ArgumentError(f"{image!r} is not an image")
        image = opened
    store = image._store
    base = image.path
    version = image.version or "0.4"
    version = "0.5" if version.startswith("0.5") else "0.4"
    axes = list(image.axes)
    shape = tuple(int(s) for s in getattr(data, "shape", ()))
    level0 = image.levels[0]
    keep = [d for d, a in enumerate(axes) if a.name != "c"]
    if len(shape) == len(axes) and len(keep) < len(axes):
        if shape[[a.name for a in axes].index("c")] != 1:
            raise ArgumentError(f"label data of shape {shape} has a channel axis longer "
                                "than 1")
        keep = list(range(len(axes)))
    expected = tuple(image.shape[d] for d in keep)
    if shape != expected:
        raise ArgumentError(f"label data of shape {shape} does not match the image's shape "
                            f"{expected} (without channels)")
    kwargs: dict[str, Any] = dict(
        axes=[{"name": axes[d].name, "type": axes[d].type, "unit": axes[d].unit}
              for d in keep],
        scale=[level0.scale[d] for d in keep], translation=[level0.translation[d] for d in keep],
        factors=[[f[d] for d in keep] for f in _image_factors(image)], downsample="mode",
        version=version)
    kwargs.update(write_image_kwargs)
    if "levels" in write_image_kwargs and "factors" not in write_image_kwargs:
        kwargs.pop("factors")
    labels_path = f"{base}/labels" if base else "labels"
    path = f"{labels_path}/{name}"

    async def main() -> LabelImage:
        listed = await _label_names(store, labels_path)
        if name in listed and not overwrite:
            raise ExistsError(f"{store.url}/{path}: the image already has a label image "
                              f"{name!r} (overwrite=True replaces it)", path=f"{store.url}/{path}")
        label_meta = {"image-label": image_label_json(colors, properties, version)}
        await write_image_in(store, path, data, overwrite=overwrite,
                             extra_attributes=label_meta, **kwargs)
        names = listed if name in listed else listed + [name]
        await write_group(store, labels_path, ome_attributes({"labels": names}, version),
                          version)
        opened = await _open_image(store, path, label=True)
        assert isinstance(opened, LabelImage)
        return opened

    result: LabelImage = run_on_io_loop(main())
    image._labels = None  # listed again on next use
    return result


async def _label_names(store: Store, labels_path: str) -> list[str]:
    for key in ("zarr.json", ".zattrs"):
        raw = await get_data(store, f"{labels_path}/{key}")
        if raw is None:
            continue
        doc = parse_json(raw, f"{store.url}/{labels_path}/{key}")
        attrs = doc.get("attributes", {}).get("ome", {}) if key == "zarr.json" else doc
        names = attrs.get("labels", []) if isinstance(attrs, dict) else []
        return [str(n) for n in names] if isinstance(names, list) else []
    return []


__all__ = ["write_group", "write_image", "write_image_in", "write_labels"]
