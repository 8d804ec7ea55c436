"""The napari reader: npe2 plugin ``ngffcore`` (manifest ``napari.yaml`` beside this module,
registered by the ``napari.manifest`` entry point; ``pip install 'ngffcore[napari]'``).

napari calls :func:`get_reader` with a path (or a list of paths) that matched the manifest's
patterns (``*.zarr``, ``*.ome.zarr``, ``*.ozx``) or is a directory (an image, plate, well,
bioformats2raw container or 0.6 scene). It answers None, without a
network request, for what is plainly not OME-Zarr (a directory or file without OME metadata),
and otherwise :func:`read_layers`, which returns napari layer data tuples
``(data, kwargs, layer_type)``:

* an image: ONE multiscale ``"image"`` layer, its channel axis split by napari
  (``channel_axis``), with per channel the omero label as name, the omero colour as colormap
  (a ``"#RRGGBB"`` string: napari makes a black-to-colour map of it; inverted channels a
  colour-to-black map), the omero window as contrast limits (only when every channel has
  one: otherwise napari computes them from the coarsest level) and ``active`` as visibility;
  scale and translate are level 0's, for the axes other than the channel axis;
* one multiscale ``"labels"`` layer per label image (its own level-0 scale and translate, its
  image-label colours and properties; a channel axis of size 1 is dropped so the label lines
  up with the split image channels). When the label images cannot be read, they are left
  out with a warning and the image still opens;
* a label image opened on its own: its labels layer;
* a plate: the first field of its first well; a well: its first field; a bioformats2raw
  container: its first series. One image (not every field or series: they share one place
  in space, and a plate can hold thousands); open a field or series by its own path to see
  another (``plate.zarr/B/3/0``, ``container.zarr/1``);
* a zipped OME-Zarr (``.ozx``, a zip whose root holds OME metadata), local or remote: read
  in place through ranged reads of the archive (``store/zipstore.py``), as a directory.

Pixels are read by ngffcore through :class:`LevelView`: a lazy window on a
:class:`ngffcore.Level` (numpy basic indexing composes without reading; ``numpy.asarray``
reads exactly the window, through the image's decoded-chunk cache). napari indexes a
multiscale level twice per draw: first every non-displayed axis whole and the viewport
crop, then the current plane, and only then converts to numpy. A ``Level`` on its own reads
at each step (napari's channel split alone reads a whole channel of every level), and
``to_dask`` reads whole dask blocks (napari turns dask's slice fusion off). Measured by
``tests/napari_reader/measure_slicing.py`` (1 GiB czyx uint16, 512² chunks; napari's reads of one
channel, median ms, local / HTTP at 20 ms a request): a 512 × 512 viewport of level 0 took
398 / 1616 through a ``Level``, 178 / 369 through ``to_dask``, 9 / 64 through ``to_dask``
with storage-grid blocks, 2.7 / 29 through this view, and 2.4 / 28 as one direct read;
panning it 8 times, 3.9 / 27 through this view and 20 / 204 without the cache.

Remote locations take their store options from obstore's environment variables (for S3:
``AWS_REGION``, ``AWS_ENDPOINT``, ``AWS_SKIP_SIGNATURE=true`` for public buckets, keys…).

Only numpy and ngffcore are imported here: the module imports without napari.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from collections.abc import Sequence
from typing import Any, Callable
from urllib.parse import unquote, urlparse

import numpy as np

import ngffcore
from ngffcore.ome.collection import Collection, Plate, Well
from ngffcore.ome.image import Image, LabelImage, Level
from ngffcore.ome.render import channel_settings
from ngffcore.ome.scene import Scene
from ngffcore.store.location import REMOTE_SCHEMES
from ngffcore.zarr.cache import ChunkCache
from ngffcore.zarr.plan import normalize_selection

#: keys of an OME-Zarr group ngffcore opens (labels groups are not among them: one of their
#: label images, or the image beside them, is what to open)
_OME_KEYS = ("multiscales", "plate", "well", "bioformats2raw.layout", "scene")
#: napari's layer data tuple: (data, layer kwargs, layer type)
LayerData = tuple[Any, dict[str, Any], str]


# -- does the reader take this? ---------------------------------------------------------------
def get_reader(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
               ) -> Callable[[Any], list[LayerData]] | None:
    """napari's ``napari_get_reader``: :func:`read_layers` when every path is OME-Zarr as far
    as can be told without a network request (a local directory holding OME metadata in
    ``zarr.json`` / ``.zattrs``, whatever its name; a zipped ``.ozx`` holding it; a remote URL
    of a scheme ngffcore opens), else None. A URL is not fetched here: reading it is what
    tells (and raises if it is not OME-Zarr)."""
    paths = _as_list(path)
    if not paths or not all(_kind(p) is not None for p in paths):
        return None
    return read_layers


def _as_list(path: Any) -> list[str]:
    if isinstance(path, (str, os.PathLike)):
        return [os.fspath(path)]
    try:
        return [os.fspath(p) for p in path]
    except TypeError:  # not a path nor an iterable of paths: nothing napari would send
        return []


def _local_path(location: str) -> str | None:
    """The local path ``location`` names (itself, or a ``file://`` URL's path); None for a
    remote URL."""
    if "://" not in location:
        return location
    parsed = urlparse(location)
    if parsed.scheme.lower() == "file" and parsed.netloc in ("", "localhost"):
        return unquote(parsed.path)
    return None


def _kind(location: str) -> str | None:
    """"local", "remote", "zip" (OME-Zarr zipped, RFC-9 ``.ozx``) or None (not ours)."""
    local = _local_path(location)
    if local is None:
        scheme = urlparse(location).scheme.lower()
        if scheme not in REMOTE_SCHEMES:
            return None
        return "zip" if location.rstrip("/").lower().endswith(".ozx") else "remote"
    if os.path.isdir(local):
        return "local" if _has_ome_metadata(local) else None
    if os.path.isfile(local) and zipfile.is_zipfile(local):  # reads the end of the file only
        return "zip" if _zip_has_ome_metadata(local) else None
    return None


def _is_ome(attributes: Any) -> bool:
    return isinstance(attributes, dict) and any(k in attributes for k in _OME_KEYS)


def _has_ome_metadata(directory: str) -> bool:
    """``zarr.json`` whose attributes hold an ``ome`` object with an OME key (0.5), or a
    ``.zattrs`` with one at the top (0.1–0.4)."""
    v3 = _json_file(os.path.join(directory, "zarr.json"))
    if isinstance(v3, dict):
        attrs = v3.get("attributes")
        if isinstance(attrs, dict) and _is_ome(attrs.get("ome")):
            return True
    return _is_ome(_json_file(os.path.join(directory, ".zattrs")))


def _json_file(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):  # missing, unreadable or not JSON: not OME metadata
        return None


def _zip_has_ome_metadata(path: str) -> bool:
    """An RFC-9 zip: the root ``zarr.json`` (or a 0.4 ``.zattrs``) holds OME metadata."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for name, v3 in (("zarr.json", True), (".zattrs", False)):
                if name in names:
                    doc = json.loads(zf.read(name))
                    attrs = doc.get("attributes", {}).get("ome") if v3 else doc
                    if _is_ome(attrs):
                        return True
    except (OSError, ValueError, zipfile.BadZipFile, AttributeError):
        return False
    return False


# -- reading -----------------------------------------------------------------------------
def read_layers(path: Any) -> list[LayerData]:
    """Layer data tuples of every location in ``path`` (a path or a list of them), in
    order: see the module docstring."""
    layers: list[LayerData] = []
    for location in _as_list(path):
        layers.extend(_read_location(location))
    return layers


def _read_location(location: str) -> list[LayerData]:
    node = ngffcore.open(location)
    image = first_image(node)
    base = _base_name(location)
    if isinstance(image, LabelImage):
        return [label_layer(image, base)]
    layers = [image_layer(image, base)]
    try:
        labels = image.labels
    except ngffcore.NgffError as exc:  # a broken label must not hide the image
        warnings.warn(f"{location}: label images not shown: {exc}", stacklevel=2)
        labels = {}
    layers.extend(label_layer(lbl, name) for name, lbl in labels.items())
    return layers


def first_image(node: Image | Plate | Well | Collection | Scene) -> Image:
    """The image a location shows: itself, a plate's first well's first field, a well's
    first field, a container's first series, a scene's first image (by path)."""
    if isinstance(node, Scene):
        if not node.images:
            raise ngffcore.MetadataError("the scene references no image", path=node.url)
        return node.images[min(node.images)]
    if isinstance(node, Plate):
        if not node.wells:
            raise ngffcore.MetadataError("the plate lists no wells", path=node.url)
        node = node.well(node.wells[0].path)
    if isinstance(node, Well):
        return node.field(0)
    if isinstance(node, Collection):
        return node[0]
    return node


def _base_name(location: str) -> str:
    name = location.rstrip("/").replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".ome.zarr", ".zarr", ".ozx"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name or location


# -- layer data ----------------------------------------------------------------------------
def image_layer(image: Image, base: str) -> LayerData:
    """``(levels, kwargs, "image")``: one multiscale image layer, channel axis split."""
    c = image.geometry.index("c")
    lvl0 = image.levels[0]
    keep = [i for i in range(image.ndim) if i != c]
    kwargs: dict[str, Any] = {
        "multiscale": True,
        "rgb": False,  # a 3 or 4 pixel wide x axis is not RGB
        "scale": [lvl0.scale[i] for i in keep],
        "translate": [lvl0.translation[i] for i in keep],
    }
    n = image.geometry.channel_count
    described = len(image.channels) == n
    labels = [ch.label for ch in image.channels] if described else [None] * n
    names = [label or (base if n == 1 else f"{base} c{i}") for i, label in enumerate(labels)]
    if described:
        windows, colors, inverted = channel_settings(image.channels, image.dtype)
        kwargs["colormap"] = [_colormap(col, inv) for col, inv in zip(colors, inverted)]
        kwargs["visible"] = [ch.active for ch in image.channels]
        if all(_has_window(ch) for ch in image.channels):
            kwargs["contrast_limits"] = [list(w) for w in windows]
    if c is None:  # one layer, no split: the per-channel lists have one entry
        kwargs["name"] = names[0]
        for key in ("colormap", "visible", "contrast_limits"):
            if key in kwargs:
                kwargs[key] = kwargs[key][0]
    else:
        kwargs["channel_axis"] = c
        kwargs["name"] = names
    return ([LevelView(lvl, image.cache) for lvl in image.levels], kwargs, "image")


def _has_window(ch: ngffcore.Channel) -> bool:
    s, e = ch.window.start, ch.window.end
    return s is not None and e is not None and bool(np.isfinite([s, e]).all()) and s < e


def _colormap(color: str, inverted: bool) -> Any:
    """A colour "RRGGBB" as napari takes it: the string "#RRGGBB" (napari ≥ 0.4.19 makes a
    black-to-colour map of it, or uses its own "red", "green", … for those colours); an
    inverted channel as a Colormap dict going from the colour to black."""
    if not inverted:
        return f"#{color.upper()}"
    rgb = [int(color[k:k + 2], 16) / 255 for k in (0, 2, 4)]
    return {"name": f"#{color.upper()} inverted", "colors": [rgb + [1.0], [0.0, 0.0, 0.0, 1.0]]}


def label_layer(label: Image, name: str) -> LayerData:
    """``(levels, kwargs, "labels")``: a multiscale labels layer of a label image."""
    c = label.geometry.index("c")
    drop = c if c is not None and label.shape[c] == 1 else None
    lvl0 = label.levels[0]
    keep = [i for i in range(label.ndim) if i != drop]
    kwargs: dict[str, Any] = {
        "name": name,
        "multiscale": True,
        "scale": [lvl0.scale[i] for i in keep],
        "translate": [lvl0.translation[i] for i in keep],
    }
    info = label.label_info if isinstance(label, LabelImage) else None
    if info is not None and info.colors:
        # napari takes a mapping as a direct label colormap; the None entry colours every
        # value not listed (transparent, as napari would, which warns when it is missing)
        colors: dict[Any, list[float]] = {v: [x / 255 for x in rgba]
                                          for v, rgba in info.colors.items()}
        colors[None] = [0.0, 0.0, 0.0, 0.0]
        kwargs["colormap"] = colors
    if info is not None and info.properties:
        values = sorted(info.properties)
        columns = sorted({k for p in info.properties.values() for k in p})
        features: dict[str, list[Any]] = {"index": values}
        for col in columns:
            features[col] = [info.properties[v].get(col) for v in values]
        kwargs["features"] = features
    views = []
    for lvl in label.levels:
        view = LevelView(lvl, label.cache)
        views.append(view if drop is None else view[(slice(None),) * drop + (0,)])
    return (views, kwargs, "labels")


# -- pixels ------------------------------------------------------------------------------
def _basic(key: Any) -> bool:
    """Only ints, step-1 slices and ``...``: what composes into a window."""
    items = key if isinstance(key, tuple) else (key,)
    for item in items:
        if isinstance(item, slice):
            if item.step not in (None, 1):
                return False
        elif item is not Ellipsis and not (isinstance(item, (int, np.integer))
                                           and not isinstance(item, (bool, np.bool_))):
            return False
    return True


class LevelView:
    """A lazy window on a :class:`ngffcore.Level`: what napari takes as one level of a
    multiscale layer (``shape``, ``dtype``, ``ndim``, ``size``, ``__getitem__``,
    ``__array__``).

    Indexing with ints, step-1 slices and ``...`` returns another window (nothing is read);
    ``numpy.asarray(view)`` reads the window with one :meth:`Level.read` through ``cache``
    (the image's decoded-chunk cache: napari re-reads a plane when it comes back to it). Any
    other index (steps, index arrays, masks) reads the window first and applies the index to
    the numpy result."""

    __slots__ = ("level", "cache", "_start", "_stop", "_dropped")

    def __init__(self, level: Level, cache: ChunkCache | None = None, *,
                 _window: tuple[tuple[int, ...], tuple[int, ...], tuple[bool, ...]] | None
                 = None) -> None:
        self.level = level
        self.cache = cache
        if _window is None:
            _window = ((0,) * level.ndim, tuple(level.shape), (False,) * level.ndim)
        self._start, self._stop, self._dropped = _window

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b, d in zip(self._start, self._stop, self._dropped)
                     if not d)

    @property
    def dtype(self) -> np.dtype:
        return self.level.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        if not self.ndim:
            raise TypeError("len() of a 0-d window")
        return self.shape[0]

    def __repr__(self) -> str:
        return (f"<ngffcore.napari.LevelView of level {self.level.index} "
                f"({self.level.path!r}) shape={self.shape} dtype={self.dtype}>")

    def selection(self) -> tuple[int | slice, ...]:
        """The window as a selection of the whole level."""
        return tuple(a if d else slice(a, b)
                     for a, b, d in zip(self._start, self._stop, self._dropped))

    def __getitem__(self, key: Any) -> Any:
        if not _basic(key):
            return np.asarray(self)[key]
        sel = normalize_selection(key, self.shape)
        start, stop, dropped = list(self._start), list(self._stop), list(self._dropped)
        kept = [i for i, d in enumerate(self._dropped) if not d]
        for k, axis in enumerate(kept):
            base = self._start[axis]
            start[axis] = base + sel.start[k]
            stop[axis] = base + sel.stop[k]
            dropped[axis] = sel.dropped[k]
        return LevelView(self.level, self.cache,
                         _window=(tuple(start), tuple(stop), tuple(dropped)))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self.level.read(self.selection(), cache=self.cache)
        return data if dtype is None else data.astype(dtype, copy=False)


__all__ = ["get_reader", "read_layers", "image_layer", "label_layer", "first_image",
           "LevelView"]
