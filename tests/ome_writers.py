"""OME-Zarr test data written by the peers, with *independent* expectations.

Every ``write_*`` function writes one image (or plate / container) under a directory with an
independent writer — ome-zarr-py, ngff-zarr, or zarr-python plus hand-written group metadata
— and returns what a reader must find there, computed without ngffcore:

* pixel data, shape, dtype, chunks and shards of every level as **zarr-python** reads them;
* scale / translation per level composed **from the raw JSON** (``json.load`` of ``.zattrs``
  / ``zarr.json``) with plain Python, following the spec's rule
  ``x = (i * s_dataset + t_dataset) * s_multiscale + t_multiscale``;
* what the writer was *told* (the scale / translation passed to it) for level 0, so a test
  also catches a reader and a JSON parse that agree on something the writer never wrote;
* axes, name, version, omero channels, labels (colours, properties, source) from the raw JSON.

These are plain functions (no fixtures); the test modules call them from module- or
session-scoped fixtures so each dataset is written once.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

#: the verbatim copies of the official OME-NGFF example documents (see PROVENANCE.md there;
#: shared with tests/ome/test_validate.py)
SPEC_EXAMPLES = Path(__file__).parent / "data" / "ngff-spec"

UM = "micrometer"


# --------------------------------------------------------------------------------------
# expectations
# --------------------------------------------------------------------------------------


@dataclass
class LevelExpect:
    path: str  # dataset path, relative to the image group
    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: tuple[int, ...]  # inner chunks when sharded (as zarr-python reports them)
    shards: tuple[int, ...] | None
    scale: tuple[float, ...]  # composed, from the raw JSON
    translation: tuple[float, ...]
    data: np.ndarray  # zarr-python's read of the whole level


@dataclass
class ImageExpect:
    path: Path  # the image group on disk
    version: str
    name: str | None
    axes: list[tuple[str, str | None, str | None]]  # (name, type, unit), missing → None
    levels: list[LevelExpect]
    attributes: dict[str, Any]  # the group's raw attributes (.zattrs / zarr.json attributes)
    multiscales: list[dict[str, Any]]  # every raw multiscale of the group
    channels: list[dict[str, Any]]  # raw omero channels ([] without omero)
    labels: dict[str, "ImageExpect"] = field(default_factory=dict)
    # image-label (label images only)
    colors: dict[int, tuple[int, ...]] | None = None
    properties: dict[int, dict[str, Any]] | None = None
    source: dict[str, Any] | None = None
    # what the writer was told for level 0, by axis name (axes not named: scale 1 / 0)
    told_scale: dict[str, float] = field(default_factory=dict)
    told_translation: dict[str, float] = field(default_factory=dict)


@dataclass
class PlateExpect:
    path: Path
    version: str
    name: str | None
    rows: list[str]
    columns: list[str]
    wells: list[str]  # "row/column" paths, in metadata order
    acquisitions: list[dict[str, Any]]  # raw
    field_paths: dict[str, list[str]]  # well path → its image paths
    fields: dict[tuple[str, int], ImageExpect]  # (well path, field index) → image
    attributes: dict[str, Any]


@dataclass
class CollectionExpect:
    path: Path
    version: str
    series_paths: list[str]
    series: list[ImageExpect]


# --------------------------------------------------------------------------------------
# raw JSON (json.load, nothing else)
# --------------------------------------------------------------------------------------


def load_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def raw_attributes(group: Path) -> dict[str, Any]:
    """The group's attributes exactly as stored: ``zarr.json`` ``attributes`` (v3) or
    ``.zattrs`` (v2; ``{}`` when absent)."""
    if (group / "zarr.json").exists():
        return load_json(group / "zarr.json").get("attributes", {})
    if (group / ".zattrs").exists():
        return load_json(group / ".zattrs")
    return {}


def ome_namespace(attrs: dict[str, Any]) -> dict[str, Any]:
    """0.5 keeps OME metadata under ``ome``; 0.4 and older at the top level."""
    return attrs["ome"] if "ome" in attrs else attrs


def _transform(transforms: list[dict[str, Any]] | None, ndim: int
               ) -> tuple[list[float], list[float]]:
    scale = [1.0] * ndim
    translation = [0.0] * ndim
    for t in transforms or []:
        if t["type"] == "scale":
            scale = [float(v) for v in t["scale"]]
        elif t["type"] == "translation":
            translation = [float(v) for v in t["translation"]]
    return scale, translation


def compose(multiscale: dict[str, Any], index: int, ndim: int
            ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Level ``index``'s composed (scale, translation): dataset transform, then the
    multiscale's own — ``scale = s_d * s_m``, ``translation = t_d * s_m + t_m``."""
    sd, td = _transform(multiscale["datasets"][index].get("coordinateTransformations"), ndim)
    sm, tm = _transform(multiscale.get("coordinateTransformations"), ndim)
    scale = tuple(a * b for a, b in zip(sd, sm))
    translation = tuple(t * s + u for t, s, u in zip(td, sm, tm))
    return scale, translation


#: 0.1–0.3 axes are names from {t, c, z, y, x}, each with the meaning the spec fixes for it
_IMPLIED_TYPE = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


def _axes(multiscale: dict[str, Any], ndim: int) -> list[tuple[str, str | None, str | None]]:
    axes = multiscale.get("axes")
    if axes is None:  # 0.1 / 0.2: tczyx implied
        return [(n, _IMPLIED_TYPE[n], None) for n in "tczyx"[5 - ndim:]]
    out = []
    for a in axes:
        if isinstance(a, str):  # 0.3: names only, types implied by the names
            out.append((a, _IMPLIED_TYPE.get(a), None))
        else:
            out.append((a["name"], a.get("type"), a.get("unit")))
    return out


# --------------------------------------------------------------------------------------
# zarr-python reads
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Peers warn about their own API (deprecations, defaults) while writing: not under
    test here, so silenced around writer calls only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def zarr_read(path: Path) -> tuple[np.ndarray, Any]:
    """zarr-python's read of the whole array at ``path`` and the array object."""
    import zarr

    with quiet():
        arr = zarr.open_array(str(path), mode="r")
        data = np.asarray(arr[...])
    return data, arr


def expect_image(path: Path, multiscale: int = 0, *, told_scale: dict[str, float] | None = None,
                 told_translation: dict[str, float] | None = None,
                 infer_scale_from_shapes: bool = False) -> ImageExpect:
    """Expectations of the image group at ``path`` from its raw JSON and zarr-python."""
    attrs = raw_attributes(path)
    ome = ome_namespace(attrs)
    ms_all = ome["multiscales"]
    ms = ms_all[multiscale]
    version = ome.get("version") or ms.get("version")
    levels: list[LevelExpect] = []
    shapes = []
    for i, ds in enumerate(ms["datasets"]):
        data, arr = zarr_read(path / ds["path"])
        shapes.append(tuple(arr.shape))
        ndim = len(arr.shape)
        if infer_scale_from_shapes:
            # 0.1–0.3: no transforms; level i is shape_0 / shape_i of level 0 (exact divisions)
            scale = tuple(float(a // b) for a, b in zip(shapes[0], arr.shape))
            assert all(a % b == 0 for a, b in zip(shapes[0], arr.shape)), "test data must divide"
            translation = (0.0,) * ndim
        else:
            scale, translation = compose(ms, i, ndim)
        levels.append(LevelExpect(
            path=ds["path"], shape=tuple(arr.shape), dtype=np.dtype(arr.dtype),
            chunks=tuple(arr.chunks), shards=None if arr.shards is None else tuple(arr.shards),
            scale=scale, translation=translation, data=data))
    exp = ImageExpect(
        path=path, version=version, name=ms.get("name"), axes=_axes(ms, len(shapes[0])),
        levels=levels, attributes=attrs, multiscales=ms_all,
        channels=list(ome.get("omero", {}).get("channels", [])),
        told_scale=dict(told_scale or {}), told_translation=dict(told_translation or {}))
    image_label = ome.get("image-label")
    if image_label is not None:
        exp.colors = {c["label-value"]: tuple(c["rgba"]) for c in image_label.get("colors", [])}
        exp.properties = {p["label-value"]: {k: v for k, v in p.items() if k != "label-value"}
                          for p in image_label.get("properties", [])}
        exp.source = image_label.get("source")
    labels_dir = path / "labels"
    if labels_dir.is_dir():
        names = ome_namespace(raw_attributes(labels_dir)).get("labels", [])
        exp.labels = {n: expect_image(labels_dir / n) for n in names}
    return exp


# --------------------------------------------------------------------------------------
# pixel data
# --------------------------------------------------------------------------------------


def pixels(shape: tuple[int, ...], dtype: Any = "uint16", seed: int = 0) -> np.ndarray:
    """Deterministic data: a ramp with noise, so every pixel position is distinguishable
    and downsampled levels differ from each other."""
    rng = np.random.default_rng(seed)
    n = math.prod(shape)
    info = np.iinfo(dtype)
    ramp = np.arange(n, dtype=np.int64) % (int(info.max) - 1000)
    noise = rng.integers(0, 1000, n)
    return (ramp + noise).astype(dtype).reshape(shape)


def label_pixels(shape: tuple[int, ...], n_labels: int, dtype: Any = "uint8") -> np.ndarray:
    """Blocky label image with values 0..n_labels (0 = background)."""
    idx = np.indices(shape)
    blocks = sum((i // 8) * (k + 3) for k, i in enumerate(idx))
    return (blocks % (n_labels + 1)).astype(dtype)


# --------------------------------------------------------------------------------------
# ome-zarr-py
# --------------------------------------------------------------------------------------


def _ome_zarr_fmt(version: str) -> Any:
    with quiet():  # importing the peers warns about their own deprecations
        from ome_zarr.format import FormatV03, FormatV04, FormatV05

    return {"0.3": FormatV03, "0.4": FormatV04, "0.5": FormatV05}[version]()


def _open_group(path: Path, zarr_format: int) -> Any:
    import zarr

    return zarr.open_group(str(path), mode="w", zarr_format=zarr_format)


#: omero channels as given to the writers
OMERO = {
    "channels": [
        {"label": "DAPI", "color": "0000FF", "active": True, "inverted": False,
         "coefficient": 1.0, "family": "linear",
         "window": {"start": 0.0, "end": 1500.0, "min": 0.0, "max": 65535.0}},
        {"label": "GFP", "color": "00FF00", "active": False,
         "window": {"start": 10.0, "end": 500.0, "min": 0.0, "max": 4095.0}},
    ],
}

#: image-label metadata as given to the writers
CELL_COLORS = [{"label-value": 1, "rgba": [255, 0, 0, 255]},
               {"label-value": 2, "rgba": [0, 255, 0, 128]},
               {"label-value": 3, "rgba": [0, 0, 255, 0]}]
CELL_PROPERTIES = [{"label-value": 1, "class": "nucleus"},
                   {"label-value": 2, "class": "cell", "area": 12.5},
                   {"label-value": 3, "class": "cell", "area": 7.0, "dividing": True}]
CELL_SOURCE = {"image": "../../"}
NUCLEI_COLORS = [{"label-value": 1, "rgba": [10, 20, 30, 40]}]

#: the physical pixel size given to ome-zarr-py's write_image (czyx)
OZP_SCALE = {"z": 2.0, "y": 0.5, "x": 0.5}


def write_ome_zarr_image(root: Path, version: str, *, name: str | None = None,
                         with_labels: bool = True) -> ImageExpect:
    """ome-zarr-py ``write_image``: czyx uint16 (2, 8, 64, 96), 3 levels (x2, x4 in y/x),
    chunks (1, 4, 32, 32), pixel size z 2 µm, y/x 0.5 µm, omero channels; labels "cells"
    (``write_labels``: colours, properties, source) and "nuclei" (``write_multiscale_labels``)."""
    with quiet():  # importing the peers warns about their own deprecations
        from ome_zarr.writer import write_image, write_labels, write_multiscale_labels

    fmt = _ome_zarr_fmt(version)
    path = root / (name or f"ome_zarr_py_{version.replace('.', '')}.zarr")
    data = pixels((2, 8, 64, 96), "uint16", seed=1)
    with quiet():
        g = _open_group(path, fmt.zarr_format)
        write_image(data, g, scale_factors=[2, 4], fmt=fmt, axes="czyx", scale=dict(OZP_SCALE),
                    axes_units={"z": UM, "y": UM, "x": UM}, omero=copy.deepcopy(OMERO),
                    storage_options={"chunks": (1, 4, 32, 32)}, name="ozp-image")
        if with_labels:
            write_labels(label_pixels((8, 64, 96), 3), g, name="cells", scaler=None,
                         scale_factors=[2], fmt=fmt, axes="zyx", scale=dict(OZP_SCALE),
                         axes_units={"z": UM, "y": UM, "x": UM},
                         label_metadata={"colors": copy.deepcopy(CELL_COLORS),
                                         "properties": copy.deepcopy(CELL_PROPERTIES),
                                         "source": dict(CELL_SOURCE)})
            nuclei = label_pixels((8, 64, 96), 1, "uint32")
            write_multiscale_labels([nuclei, nuclei[:, ::2, ::2].copy()], g, name="nuclei",
                                    fmt=fmt, axes="zyx",
                                    label_metadata={"colors": copy.deepcopy(NUCLEI_COLORS)})
    return expect_image(path, told_scale={"c": 1.0, **OZP_SCALE},
                        told_translation={"c": 0.0, "z": 0.0, "y": 0.0, "x": 0.0})


def write_ome_zarr_multiscale(root: Path, version: str) -> ImageExpect:
    """ome-zarr-py ``write_multiscale`` with an explicit pyramid: tcyx uint8, a time axis
    with unit, t step 3 s, y/x 0.25 µm, omero passed as ``metadata={"omero": ...}``."""
    with quiet():  # importing the peers warns about their own deprecations
        from ome_zarr.writer import write_multiscale

    fmt = _ome_zarr_fmt(version)
    path = root / f"ome_zarr_py_multiscale_{version.replace('.', '')}.zarr"
    base = pixels((3, 2, 48, 64), "uint8", seed=2)
    pyramid = [base, base[:, :, ::2, ::2].copy(), base[:, :, ::4, ::4].copy()]
    axes = [{"name": "t", "type": "time", "unit": "second"}, {"name": "c", "type": "channel"},
            {"name": "y", "type": "space", "unit": UM}, {"name": "x", "type": "space", "unit": UM}]
    with quiet():
        g = _open_group(path, fmt.zarr_format)
        write_multiscale(pyramid, g, fmt=fmt, axes=axes, scale={"t": 3.0, "y": 0.25, "x": 0.25},
                         metadata={"omero": copy.deepcopy(OMERO)}, name="ozp-multiscale",
                         storage_options={"chunks": (1, 1, 16, 16)})
    return expect_image(path, told_scale={"t": 3.0, "c": 1.0, "y": 0.25, "x": 0.25},
                        told_translation={"t": 0.0, "c": 0.0, "y": 0.0, "x": 0.0})


def write_ome_zarr_v03(root: Path) -> ImageExpect:
    """ome-zarr-py, format 0.3: axes as names, no transforms — scales are inferred from the
    level shapes (level 0: 1; level i: shape_0 / shape_i), translation 0."""
    with quiet():  # importing the peers warns about their own deprecations
        from ome_zarr.writer import write_multiscale

    fmt = _ome_zarr_fmt("0.3")
    path = root / "ome_zarr_py_03.zarr"
    base = pixels((4, 32, 48), "uint16", seed=3)
    pyramid = [base, base[:, ::2, ::2].copy(), base[:, ::4, ::4].copy()]
    with quiet():
        g = _open_group(path, fmt.zarr_format)
        write_multiscale(pyramid, g, fmt=fmt, axes="zyx")
    return expect_image(path, infer_scale_from_shapes=True,
                        told_scale={"z": 1.0, "y": 1.0, "x": 1.0},
                        told_translation={"z": 0.0, "y": 0.0, "x": 0.0})


# --------------------------------------------------------------------------------------
# ngff-zarr
# --------------------------------------------------------------------------------------

#: what ngff-zarr is told (zyx); ngff-zarr requires a translation for every axis
NZ_SCALE = {"z": 2.0, "y": 0.5, "x": 0.5}
NZ_TRANSLATION = {"z": 0.0, "y": 10.0, "x": -3.0}
NZ_SHAPE = (8, 64, 64)


def write_ngff_zarr_image(root: Path, version: str, *, chunks_per_shard: int | None = None
                          ) -> ImageExpect:
    """ngff-zarr: zyx uint16 (8, 64, 64) with scale z 2 / y,x 0.5 µm and translation
    y 10, x −3; levels x2 and x4 in y/x (paths ``scaleN/<name>``), chunks 16 (z: 8);
    ``chunks_per_shard`` → sharded 0.5."""
    with quiet():  # importing the peers warns about their own deprecations
        import ngff_zarr as nz

    suffix = f"_sharded{chunks_per_shard}" if chunks_per_shard else ""
    path = root / f"ngff_zarr_{version.replace('.', '')}{suffix}.zarr"
    data = pixels(NZ_SHAPE, "uint16", seed=4)
    with quiet():
        img = nz.to_ngff_image(data, dims=["z", "y", "x"], scale=dict(NZ_SCALE),
                               translation=dict(NZ_TRANSLATION),
                               axes_units={"z": UM, "y": UM, "x": UM}, name="nzimage")
        ms = nz.to_multiscales(img, scale_factors=[{"z": 1, "y": 2, "x": 2},
                                                   {"z": 1, "y": 4, "x": 4}],
                               method=nz.Methods.DASK_BIN_SHRINK, chunks=16)
        kwargs: dict[str, Any] = {}
        if chunks_per_shard:
            kwargs["chunks_per_shard"] = chunks_per_shard
        nz.to_ngff_zarr(str(path), ms, version=version, **kwargs)
    return expect_image(path, told_scale=dict(NZ_SCALE), told_translation=dict(NZ_TRANSLATION))


def write_ngff_zarr_channels(root: Path, version: str) -> ImageExpect:
    """ngff-zarr czyx with omero channels (0.5: omero inside the ``ome`` namespace)."""
    with quiet():  # importing the peers warns about their own deprecations
        import ngff_zarr as nz
    with quiet():  # importing the peers warns about their own deprecations
        from ngff_zarr.v04.zarr_metadata import Omero, OmeroChannel, OmeroWindow

    path = root / f"ngff_zarr_channels_{version.replace('.', '')}.zarr"
    data = pixels((2, 4, 32, 32), "uint16", seed=5)
    with quiet():
        img = nz.to_ngff_image(data, dims=["c", "z", "y", "x"],
                               scale={"z": 1.5, "y": 0.25, "x": 0.25},
                               translation={"z": 0.0, "y": 0.0, "x": 0.0},
                               axes_units={"z": UM, "y": UM, "x": UM}, name="nzchannels")
        ms = nz.to_multiscales(img, scale_factors=[{"z": 1, "y": 2, "x": 2}],
                               method=nz.Methods.DASK_BIN_SHRINK, chunks=16)
        ms.metadata.omero = Omero(channels=[
            OmeroChannel(color="FF00FF", label="mCherry",
                         window=OmeroWindow(min=0.0, max=65535.0, start=100.0, end=2000.0)),
            OmeroChannel(color="FFFFFF", label="brightfield",
                         window=OmeroWindow(min=0.0, max=4095.0, start=0.0, end=4095.0)),
        ])
        nz.to_ngff_zarr(str(path), ms, version=version)
    return expect_image(path, told_scale={"c": 1.0, "z": 1.5, "y": 0.25, "x": 0.25},
                        told_translation={"c": 0.0, "z": 0.0, "y": 0.0, "x": 0.0})


# --------------------------------------------------------------------------------------
# hand-made groups (zarr-python arrays + group metadata written as given)
# --------------------------------------------------------------------------------------


def strip_json_comments(text: str) -> str:
    """The spec's example documents carry ``//`` line comments (never inside strings there):
    drop every line that is only a comment, and trailing ``//`` comments."""
    out = []
    for line in text.splitlines():
        if line.lstrip().startswith("//"):
            continue
        out.append(re.sub(r'\s//[^"]*$', "", line))
    return "\n".join(out) + "\n"


def spec_example(version: str, name: str) -> str:
    """The example document ``name`` (e.g. ``multiscales_example``), comments stripped."""
    path = SPEC_EXAMPLES / version / "examples" / "multiscales_strict" / f"{name}.json"
    return strip_json_comments(path.read_text(encoding="utf-8"))


def _write_array(path: Path, data: np.ndarray, zarr_format: int, chunks: tuple[int, ...],
                 dimension_names: list[str] | None = None, shards: Any = None) -> None:
    import zarr

    kwargs: dict[str, Any] = {}
    if zarr_format == 3:
        kwargs["dimension_names"] = dimension_names
        kwargs["shards"] = shards
    with quiet():
        z = zarr.create_array(str(path), shape=data.shape, chunks=chunks, dtype=data.dtype,
                              zarr_format=zarr_format, fill_value=0, **kwargs)
        z[...] = data


def _write_group_doc(path: Path, version: str, doc_text_or_attrs: str | dict[str, Any]) -> None:
    """0.4: ``.zgroup`` + ``.zattrs`` = the attributes; 0.5: ``zarr.json`` = the document
    (a whole group document when text is given, else built around the attributes)."""
    path.mkdir(parents=True, exist_ok=True)
    if version == "0.5":
        if isinstance(doc_text_or_attrs, str):
            text = doc_text_or_attrs
        else:
            text = json.dumps({"zarr_format": 3, "node_type": "group",
                               "attributes": doc_text_or_attrs}, indent=2)
        (path / "zarr.json").write_text(text, encoding="utf-8")
    else:
        (path / ".zgroup").write_text(json.dumps({"zarr_format": 2}), encoding="utf-8")
        text = (doc_text_or_attrs if isinstance(doc_text_or_attrs, str)
                else json.dumps(doc_text_or_attrs, indent=2))
        (path / ".zattrs").write_text(text, encoding="utf-8")


#: per-axis base extent for hand-made levels, by axis type / name
_BASE_EXTENT = {"time": 2, "channel": 3, "z": 8, "y": 16, "x": 24}


def write_spec_example(root: Path, version: str, name: str) -> ImageExpect:
    """A group whose metadata is exactly the official example document ``name``; its level
    arrays (zarr-python) have one axis per ``axes`` entry and shapes shrinking as the
    dataset scales grow."""
    text = spec_example(version, name)
    doc = json.loads(text)
    attrs = doc["attributes"] if version == "0.5" else doc
    ms = ome_namespace(attrs)["multiscales"][0]
    axes = ms["axes"]
    path = root / f"spec_{version.replace('.', '')}_{name}.zarr"
    zarr_format = 3 if version == "0.5" else 2
    s0, _ = _transform(ms["datasets"][0].get("coordinateTransformations"), len(axes))
    for i, ds in enumerate(ms["datasets"]):
        si, _ = _transform(ds.get("coordinateTransformations"), len(axes))
        shape = []
        for a, a0, ai in zip(axes, s0, si):
            key = a["name"] if a.get("type") == "space" else a.get("type")
            shape.append(max(1, round(_BASE_EXTENT.get(key, 8) * a0 / ai)))
        data = pixels(tuple(shape), "uint16", seed=10 + i)
        _write_array(path / ds["path"], data, zarr_format,
                     chunks=tuple(max(1, s // 2) for s in shape),
                     dimension_names=[a["name"] for a in axes])
    # group metadata last, exactly the document (zarr-python never touches it)
    _write_group_doc(path, version, text)
    return expect_image(path)


def write_two_multiscales(root: Path, version: str) -> tuple[ImageExpect, ImageExpect]:
    """One group with two multiscales (yx): the first at "a/0", "a/1" (0.5 µm, translation
    1, 2 and a multiscale-level scale 2), the second at "b/0" (3 µm)."""
    path = root / f"two_multiscales_{version.replace('.', '')}.zarr"
    zarr_format = 3 if version == "0.5" else 2
    axes = [{"name": "y", "type": "space", "unit": UM}, {"name": "x", "type": "space", "unit": UM}]
    first = {
        "name": "first", "axes": axes,
        "datasets": [
            {"path": "a/0", "coordinateTransformations": [
                {"type": "scale", "scale": [0.5, 0.5]},
                {"type": "translation", "translation": [1.0, 2.0]}]},
            {"path": "a/1", "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, 1.0]},
                {"type": "translation", "translation": [1.25, 2.25]}]},
        ],
        "coordinateTransformations": [{"type": "scale", "scale": [2.0, 2.0]},
                                      {"type": "translation", "translation": [-5.0, 7.0]}],
    }
    second = {
        "name": "second", "axes": axes,
        "datasets": [{"path": "b/0", "coordinateTransformations": [
            {"type": "scale", "scale": [3.0, 3.0]}]}],
    }
    if version == "0.4":
        first["version"] = second["version"] = "0.4"
        attrs: dict[str, Any] = {"multiscales": [first, second]}
    else:
        attrs = {"ome": {"version": "0.5", "multiscales": [first, second]}}
    a0 = pixels((32, 40), "uint16", seed=20)
    _write_array(path / "a" / "0", a0, zarr_format, (16, 16), ["y", "x"])
    _write_array(path / "a" / "1", a0[::2, ::2].copy(), zarr_format, (16, 16), ["y", "x"])
    _write_array(path / "b" / "0", pixels((12, 10), "int16", seed=21), zarr_format, (8, 8),
                 ["y", "x"])
    # the intermediate groups "a", "b" get (empty) group metadata, as real writers give them
    for sub in ("a", "b"):
        _write_group_doc(path / sub, version, {})
    _write_group_doc(path, version, attrs)
    return expect_image(path, 0), expect_image(path, 1)


# --------------------------------------------------------------------------------------
# plates (ome-zarr-py)
# --------------------------------------------------------------------------------------

PLATE_ROWS = ["A", "B"]
PLATE_COLUMNS = ["1", "2", "3"]
PLATE_ACQUISITIONS = [{"id": 0, "name": "first pass", "maximumfieldcount": 1},
                      {"id": 1, "name": "second pass", "maximumfieldcount": 1}]


def write_ome_zarr_plate(root: Path, version: str) -> PlateExpect:
    """ome-zarr-py HCS plate: rows A, B × columns 1, 2, 3, two fields per well ("0" from
    acquisition 0, "1" from acquisition 1), each field a cyx uint16 (2, 24, 32) image with
    2 levels written alike (same multiscales document), distinct pixels per field."""
    with quiet():  # importing the peers warns about their own deprecations
        from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    fmt = _ome_zarr_fmt(version)
    path = root / f"plate_{version.replace('.', '')}.zarr"
    wells = [f"{r}/{c}" for r in PLATE_ROWS for c in PLATE_COLUMNS]
    images = [{"path": "0", "acquisition": 0}, {"path": "1", "acquisition": 1}]
    with quiet():
        g = _open_group(path, fmt.zarr_format)
        write_plate_metadata(g, list(PLATE_ROWS), list(PLATE_COLUMNS), wells, fmt=fmt,
                             acquisitions=copy.deepcopy(PLATE_ACQUISITIONS), field_count=2,
                             name="test plate")
        for n, w in enumerate(wells):
            r, c = w.split("/")
            wg = g.require_group(r).require_group(c)
            write_well_metadata(wg, copy.deepcopy(images), fmt=fmt)
            for f in range(2):
                ig = wg.require_group(str(f))
                write_image(pixels((2, 24, 32), "uint16", seed=100 + 2 * n + f), ig,
                            scale_factors=[2], fmt=fmt, axes="cyx",
                            scale={"y": 0.65, "x": 0.65}, axes_units={"y": UM, "x": UM},
                            storage_options={"chunks": (1, 16, 16)})
    attrs = raw_attributes(path)
    plate = ome_namespace(attrs)["plate"]
    field_paths: dict[str, list[str]] = {}
    fields: dict[tuple[str, int], ImageExpect] = {}
    for w in plate["wells"]:
        well = ome_namespace(raw_attributes(path / w["path"]))["well"]
        field_paths[w["path"]] = [im["path"] for im in well["images"]]
        for i, im in enumerate(well["images"]):
            fields[(w["path"], i)] = expect_image(path / w["path"] / im["path"],
                                                  told_scale={"c": 1.0, "y": 0.65, "x": 0.65})
    return PlateExpect(
        path=path, version=version, name=plate.get("name"),
        rows=[r["name"] for r in plate["rows"]], columns=[c["name"] for c in plate["columns"]],
        wells=[w["path"] for w in plate["wells"]], acquisitions=plate.get("acquisitions", []),
        field_paths=field_paths, fields=fields, attributes=attrs)


# --------------------------------------------------------------------------------------
# bioformats2raw containers (by hand)
# --------------------------------------------------------------------------------------

# No Python peer writes bioformats2raw containers (bioformats2raw itself is a Java tool), so
# the container is written by hand following the spec's "bf2raw" layout: the root carries
# {"bioformats2raw.layout": 3}, each series is an image group written by ome-zarr-py, and
# the "OME" group holds METADATA.ome.xml and (optionally) the list of series paths.

_OME_XML = """<?xml version="1.0" encoding="UTF-8"?>
<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"
     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:schemaLocation="http://www.openmicroscopy.org/Schemas/OME/2016-06 http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd"
     Creator="ngffcore tests (by hand)">
{images}
</OME>
"""

_OME_IMAGE = """  <Image ID="Image:{i}" Name="series {i}">
    <Pixels ID="Pixels:{i}" DimensionOrder="XYZCT" Type="{type}" BigEndian="false"
            SizeX="{x}" SizeY="{y}" SizeZ="1" SizeC="{c}" SizeT="1">
{channels}      <MetadataOnly/>
    </Pixels>
  </Image>"""


def _ome_xml(series: list[tuple[int, int, int, str]]) -> str:
    images = []
    for i, (c, y, x, dtype) in enumerate(series):
        channels = "".join(f'      <Channel ID="Channel:{i}:{k}" SamplesPerPixel="1"/>\n'
                           for k in range(c))
        images.append(_OME_IMAGE.format(i=i, type=dtype, x=x, y=y, c=c, channels=channels))
    return _OME_XML.format(images="\n".join(images))


def write_bioformats2raw(root: Path, version: str = "0.4", *, series_list: bool = True,
                         ome_attrs: bool = True) -> CollectionExpect:
    """bioformats2raw layout 3 with two series ("0": tczyx uint16 (1, 2, 1, 32, 32);
    "1": tczyx uint8 (1, 1, 1, 24, 40)), 2 levels each. ``series_list=False``: the OME group
    has no "series" list (``ome_attrs=False``: 0.4 only, no ``.zattrs`` at all), so the series
    are the numbered groups "0", "1", as many as the ``<Image>`` elements of the XML."""
    with quiet():  # importing the peers warns about their own deprecations
        from ome_zarr.writer import write_image

    fmt = _ome_zarr_fmt(version)
    tag = "series" if series_list else ("noseries" if ome_attrs else "noattrs")
    path = root / f"bf2raw_{version.replace('.', '')}_{tag}.zarr"
    shapes = [((1, 2, 1, 32, 32), "uint16"), ((1, 1, 1, 24, 40), "uint8")]
    with quiet():
        g = _open_group(path, fmt.zarr_format)
        for i, (shape, dtype) in enumerate(shapes):
            write_image(pixels(shape, dtype, seed=200 + i), g.require_group(str(i)),
                        scale_factors=[2], fmt=fmt, axes="tczyx",
                        scale={"z": 1.0, "y": 0.8 + i, "x": 0.8 + i},
                        axes_units={"y": UM, "x": UM}, name=f"series {i}")
    # the root and OME groups, by hand (overwriting what zarr-python wrote for the root)
    if version == "0.5":
        _write_group_doc(path, version, {"ome": {"version": "0.5", "bioformats2raw.layout": 3}})
        ome_group: dict[str, Any] = {"ome": {"version": "0.5"}}
        if series_list:
            ome_group["ome"]["series"] = ["0", "1"]
        _write_group_doc(path / "OME", version, ome_group)
    else:
        _write_group_doc(path, version, {"bioformats2raw.layout": 3})
        if series_list:
            _write_group_doc(path / "OME", version, {"series": ["0", "1"]})
        elif ome_attrs:
            _write_group_doc(path / "OME", version, {})
        else:
            (path / "OME").mkdir(exist_ok=True)
            (path / "OME" / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    xml = _ome_xml([(s[1], s[3], s[4], d) for s, d in shapes])
    (path / "OME" / "METADATA.ome.xml").write_text(xml, encoding="utf-8")
    series_paths = ["0", "1"]
    return CollectionExpect(path=path, version=version, series_paths=series_paths,
                            series=[expect_image(path / p) for p in series_paths])


# --------------------------------------------------------------------------------------
# hand-made images with given transforms (for the region tests)
# --------------------------------------------------------------------------------------


def write_hand_image(root: Path, version: str, name: str, axes: list[dict[str, Any]],
                     levels: list[tuple[tuple[int, ...], list[float], list[float] | None]],
                     dtype: str = "uint16") -> ImageExpect:
    """A group written by hand: one level per ``(shape, scale, translation)`` (dataset
    transforms exactly as given), arrays by zarr-python, pixels distinct per level."""
    path = root / f"hand_{name}_{version.replace('.', '')}.zarr"
    zarr_format = 3 if version == "0.5" else 2
    datasets = []
    for i, (shape, scale, translation) in enumerate(levels):
        cts: list[dict[str, Any]] = [{"type": "scale", "scale": list(scale)}]
        if translation is not None:
            cts.append({"type": "translation", "translation": list(translation)})
        datasets.append({"path": str(i), "coordinateTransformations": cts})
        _write_array(path / str(i), pixels(shape, dtype, seed=300 + i), zarr_format,
                     chunks=tuple(min(s, 16) for s in shape),
                     dimension_names=[a["name"] for a in axes])
    ms: dict[str, Any] = {"name": name, "axes": axes, "datasets": datasets}
    if version == "0.4":
        ms["version"] = "0.4"
        attrs: dict[str, Any] = {"multiscales": [ms]}
    else:
        attrs = {"ome": {"version": "0.5", "multiscales": [ms]}}
    _write_group_doc(path, version, attrs)
    return expect_image(path)


# --------------------------------------------------------------------------------------
# a lazily written library of cases (one per test module, written on first use)
# --------------------------------------------------------------------------------------

IMAGE_WRITERS: dict[str, Any] = {
    "ome-zarr-py-0.4": lambda root: write_ome_zarr_image(root, "0.4"),
    "ome-zarr-py-0.5": lambda root: write_ome_zarr_image(root, "0.5"),
    "ome-zarr-py-multiscale-0.4": lambda root: write_ome_zarr_multiscale(root, "0.4"),
    "ome-zarr-py-multiscale-0.5": lambda root: write_ome_zarr_multiscale(root, "0.5"),
    "ome-zarr-py-0.3": write_ome_zarr_v03,
    "ngff-zarr-0.4": lambda root: write_ngff_zarr_image(root, "0.4"),
    "ngff-zarr-0.5": lambda root: write_ngff_zarr_image(root, "0.5"),
    "ngff-zarr-0.5-sharded": lambda root: write_ngff_zarr_image(root, "0.5", chunks_per_shard=2),
    "ngff-zarr-channels-0.4": lambda root: write_ngff_zarr_channels(root, "0.4"),
    "ngff-zarr-channels-0.5": lambda root: write_ngff_zarr_channels(root, "0.5"),
    "spec-0.4-multiscales_example":
        lambda root: write_spec_example(root, "0.4", "multiscales_example"),
    "spec-0.4-multiscales_transformations":
        lambda root: write_spec_example(root, "0.4", "multiscales_transformations"),
    "spec-0.5-multiscales_example":
        lambda root: write_spec_example(root, "0.5", "multiscales_example"),
    "spec-0.5-multiscales_transformations":
        lambda root: write_spec_example(root, "0.5", "multiscales_transformations"),
    "two-multiscales-0.4": lambda root: write_two_multiscales(root, "0.4")[0],
    "two-multiscales-0.5": lambda root: write_two_multiscales(root, "0.5")[0],
}


class Library:
    """``lib.image(case)`` writes case ``case`` of :data:`IMAGE_WRITERS` under ``root`` on
    first use and returns its expectations; ``lib.get(key, fn)`` does so for any writer."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, Any] = {}

    def get(self, key: str, write: Any) -> Any:
        if key not in self._cache:
            sub = self.root / re.sub(r"[^A-Za-z0-9_.-]", "_", key)
            sub.mkdir(parents=True, exist_ok=True)
            self._cache[key] = write(sub)
        return self._cache[key]

    def image(self, case: str) -> ImageExpect:
        return self.get(case, IMAGE_WRITERS[case])
