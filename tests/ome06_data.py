"""OME-NGFF 0.6 test data written by hand, for tests/ome/test_ome_06.py, test_scene_06.py and
test_region_06.py: group documents (the spec's own examples from tests/data/ngff-spec/0.6,
``//`` comments stripped, or metadata written here) over small arrays written by
**zarr-python**, whose pixel values the tests know (they pass them in).

Plain functions, no fixtures.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from spec_json import strip_comments

SPEC06 = Path(__file__).parent / "data" / "ngff-spec" / "0.6"
EXAMPLES = SPEC06 / "examples"
UM = "micrometer"


def example(rel: str) -> Any:
    """An example document (``examples/<rel>``), comments stripped; a fresh copy."""
    return json.loads(strip_comments((EXAMPLES / rel).read_text()))


def ome_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``ome`` object of an example, whichever form it has: a whole ``zarr.json``
    (``attributes.ome``), the attributes (``ome``), or the OME keys themselves."""
    if "attributes" in doc:
        return copy.deepcopy(doc["attributes"]["ome"])
    if isinstance(doc.get("ome"), dict):
        return copy.deepcopy(doc["ome"])
    return copy.deepcopy(doc)


def write_group(path: Path, ome: dict[str, Any]) -> None:
    """A Zarr v3 group with ``attributes.ome = ome`` (and no other attribute)."""
    path.mkdir(parents=True, exist_ok=True)
    doc = {"zarr_format": 3, "node_type": "group", "attributes": {"ome": ome}}
    (path / "zarr.json").write_text(json.dumps(doc))


def pixels(shape: tuple[int, ...], dtype: Any = np.uint16, seed: int = 0) -> np.ndarray:
    """Deterministic, distinct-ish values: every pixel differs from its neighbours."""
    n = int(np.prod(shape))
    values = (np.arange(n, dtype=np.int64) * 7 + seed) % 60000
    return values.reshape(shape).astype(dtype)


def write_array(path: Path, data: np.ndarray, chunks: tuple[int, ...] | None = None) -> None:
    """``data`` as a Zarr v3 array at ``path`` (zarr-python)."""
    chunks = chunks or tuple(max(1, (n + 1) // 2) for n in data.shape)
    arr = zarr.create_array(store=str(path), shape=data.shape, dtype=data.dtype,
                            chunks=chunks, overwrite=True)
    arr[...] = data


def write_image(path: Path, ome: dict[str, Any], shapes: dict[str, tuple[int, ...]],
                dtype: Any = np.uint16, seed: int = 0) -> dict[str, np.ndarray]:
    """A group with ``ome`` and one array per dataset path in ``shapes``; the pixels of each
    (by dataset path)."""
    write_group(path, ome)
    out = {}
    for k, (ds, shape) in enumerate(shapes.items()):
        data = pixels(shape, dtype, seed + 1000 * k)
        write_array(path / ds, data)
        out[ds] = data
    return out


def axes(*spec: str) -> list[dict[str, Any]]:
    """Axis objects from "name:type[:unit]" strings."""
    out = []
    for s in spec:
        parts = s.split(":")
        axis = {"name": parts[0], "type": parts[1]}
        if len(parts) > 2:
            axis["unit"] = parts[2]
        out.append(axis)
    return out


def multiscale(systems: list[dict[str, Any]], levels: list[tuple[str, dict[str, Any]]],
               intrinsic: str, extra: list[dict[str, Any]] | None = None,
               version: str = "0.6", **more: Any) -> dict[str, Any]:
    """An ``ome`` object with one multiscale: ``levels`` are (dataset path, transform
    without input/output), written with input ``{"path"}`` and output ``{"name":
    intrinsic}`` as the spec wants."""
    datasets = []
    for path, t in levels:
        t = dict(t, input={"path": path}, output={"name": intrinsic})
        datasets.append({"path": path, "coordinateTransformations": [t]})
    ms: dict[str, Any] = {"coordinateSystems": systems, "datasets": datasets, **more}
    if extra is not None:
        ms["coordinateTransformations"] = extra
    return {"version": version, "multiscales": [ms]}


def scale(*values: float) -> dict[str, Any]:
    return {"type": "scale", "scale": list(values)}


def scale_translation(s: list[float], t: list[float]) -> dict[str, Any]:
    return {"type": "sequence", "transformations": [
        {"type": "scale", "scale": s}, {"type": "translation", "translation": t}]}
