"""Test images for viewer tiles and the chunk cache (``test_tiles.py``, ``test_cache.py``).

Every image is written by an independent writer — zarr-python arrays plus hand-written
OME-NGFF group metadata, or ome-zarr-py's ``write_image`` — and every expectation is computed
without ngffcore: reference tiles are **zarr-python reads of the same boxes**, transposed to
``(channels, h, w)`` with numpy; chunk object names and chunk counts come from the chunk
grid written here, and shard indexes are parsed with numpy from the shard files' bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ome_writers as ow
from servers import RangeServer

UM = "micrometer"
_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


@dataclass
class TileCase:
    """One written image: what a tile reader must find there."""

    name: str
    path: Path  # the image group
    version: str  # "0.4" (Zarr v2) or "0.5" (Zarr v3)
    axes: str  # axis names in storage order, e.g. "czyx", "yxc"
    level_paths: list[str]
    shapes: list[tuple[int, ...]]
    chunks: tuple[int, ...]  # inner chunks when sharded
    shards: tuple[int, ...] | None
    default_t: int = 0  # what t=None must select (rdefs.defaultT, else 0)
    default_z: int = 0
    written: list[np.ndarray] = field(default_factory=list)  # the numpy data written
    _zarr: dict[int, Any] = field(default_factory=dict, repr=False)
    _refs: dict[Any, np.ndarray] = field(default_factory=dict, repr=False)

    # -- geometry --------------------------------------------------------------------------
    def size(self, axis: str, level: int = 0) -> int:
        return self.shapes[level][self.axes.index(axis)] if axis in self.axes else 1

    @property
    def n_channels(self) -> int:
        return self.size("c")

    @property
    def n_levels(self) -> int:
        return len(self.shapes)

    def chunk(self, axis: str) -> int:
        return self.chunks[self.axes.index(axis)] if axis in self.axes else 1

    # -- zarr-python reference reads ---------------------------------------------------------
    def zarr_array(self, level: int) -> Any:
        import zarr

        if level not in self._zarr:
            with ow.quiet():
                self._zarr[level] = zarr.open_array(str(self.path / self.level_paths[level]),
                                                    mode="r")
        return self._zarr[level]

    def reference(self, level: int, y: tuple[int, int], x: tuple[int, int],
                  t: int | None = None, z: int | None = None,
                  channels: list[int] | None = None) -> np.ndarray:
        """zarr-python's read of the box, as ``(channels, h, w)``; ``t``/``z`` None: the
        written defaults."""
        t = self.default_t if t is None else t
        z = self.default_z if z is None else z
        key = (level, tuple(y), tuple(x), t, z)
        if key not in self._refs:
            sel: list[Any] = []
            for a in self.axes:
                sel.append({"t": t, "z": z, "c": slice(None), "y": slice(*y),
                            "x": slice(*x)}[a])
            with ow.quiet():
                data = np.asarray(self.zarr_array(level)[tuple(sel)])
            kept = [a for a in self.axes if a in "cyx"]
            if "c" not in kept:
                data, kept = data[np.newaxis], ["c", *kept]
            self._refs[key] = np.ascontiguousarray(
                data.transpose([kept.index(a) for a in "cyx"]))
        ref = self._refs[key]
        chans = list(range(self.n_channels)) if channels is None else list(channels)
        return ref[chans]

    # -- chunk objects -----------------------------------------------------------------------
    def objects(self, level: int, y: tuple[int, int], x: tuple[int, int], t: int | None = None,
                z: int | None = None, channels: list[int] | None = None) -> list[str]:
        """Names (relative to the image group) of the chunk objects — shards when sharded —
        a box touches, one per object, for the given channels."""
        t = self.default_t if t is None else t
        z = self.default_z if z is None else z
        chans = list(range(self.n_channels)) if channels is None else channels
        grid = self.shards or self.chunks
        ranges: list[Any] = []
        for i, a in enumerate(self.axes):
            g = grid[i]
            if a == "t":
                ranges.append([t // g])
            elif a == "z":
                ranges.append([z // g])
            elif a == "c":
                ranges.append(sorted({c // g for c in chans}))
            else:
                lo, hi = (y if a == "y" else x)
                ranges.append(range(lo // g, (hi - 1) // g + 1))
        base = self.level_paths[level]
        prefix, sep = self.key_encoding(level)
        return [f"{base}/{prefix}" + sep.join(map(str, idx)) for idx in product(*ranges)]

    def key_encoding(self, level: int) -> tuple[str, str]:
        """(prefix, separator) of chunk keys, from the level's raw metadata."""
        arr = self.path / self.level_paths[level]
        if self.version == "0.5":
            enc = zarr_json(arr)["chunk_key_encoding"]
            if enc["name"] == "default":
                return "c" + enc.get("configuration", {}).get("separator", "/"), \
                    enc.get("configuration", {}).get("separator", "/")
            return "", enc.get("configuration", {}).get("separator", ".")
        meta = json.loads((arr / ".zarray").read_text(encoding="utf-8"))
        return "", meta.get("dimension_separator") or "."

    def inner_chunks_per_object(self, y: tuple[int, int], x: tuple[int, int]) -> int:
        """Inner chunks a box touches inside one y/x-aligned shard (boxes inside one shard)."""
        cy, cx = self.chunk("y"), self.chunk("x")
        return (((y[1] - 1) // cy - y[0] // cy + 1) * ((x[1] - 1) // cx - x[0] // cx + 1))


def _write_array(path: Path, data: np.ndarray, zarr_format: int, chunks: tuple[int, ...],
                 shards: tuple[int, ...] | None, names: str) -> None:
    import zarr

    kwargs: dict[str, Any] = {}
    if zarr_format == 3:
        kwargs["dimension_names"] = list(names)
        kwargs["shards"] = shards
    with ow.quiet():
        arr = zarr.create_array(str(path), shape=data.shape, chunks=chunks, dtype=data.dtype,
                                zarr_format=zarr_format, fill_value=0, **kwargs)
        arr[...] = data


def _data(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    return rng.integers(1, np.iinfo(dt).max, size=shape, endpoint=True, dtype=dt)


def write_case(root: Path, name: str, version: str, axes: str, shape: tuple[int, ...],
               chunks: tuple[int, ...], *, shards: tuple[int, ...] | None = None,
               n_levels: int = 3, dtype: str = "uint16", rdefs: dict[str, int] | None = None,
               missing_chunk: bool = False, seed: int = 0) -> TileCase:
    """An image written by hand: zarr-python arrays (level i halves y and x, rounding up)
    and group metadata with axes, per-level scale, omero channels (with ``rdefs`` if given).
    ``missing_chunk``: level 0's first chunk of the last channel is all zero (the fill
    value), which zarr-python does not store: the reader must fill it."""
    path = root / f"{name}.zarr"
    zarr_format = 3 if version == "0.5" else 2
    shapes, written, datasets = [], [], []
    for i in range(n_levels):
        shp = tuple(-(-s // 2 ** i) if a in "yx" else s for a, s in zip(axes, shape))
        data = _data(shp, dtype, seed * 100 + i)
        if missing_chunk and i == 0:
            box = tuple(slice(n - 1, n) if a == "c" else slice(0, c)
                        for a, n, c in zip(axes, shp, chunks))
            data[box] = 0
        _write_array(path / str(i), data, zarr_format, chunks, shards, axes)
        shapes.append(shp)
        written.append(data)
        datasets.append({"path": str(i), "coordinateTransformations": [
            {"type": "scale", "scale": [2.0 ** i * 0.5 if a in "yx" else 1.0 for a in axes]}]})
    ms: dict[str, Any] = {
        "name": name,
        "axes": [{"name": a, "type": _TYPES[a], **({"unit": UM} if a in "zyx" else {})}
                 for a in axes],
        "datasets": datasets,
    }
    n_c = shape[axes.index("c")] if "c" in axes else 1
    omero: dict[str, Any] = {"channels": [
        {"label": f"ch{k}", "color": "FFFFFF", "active": True,
         "window": {"start": 0, "end": 1000, "min": 0, "max": 65535}} for k in range(n_c)]}
    if rdefs is not None:
        omero["rdefs"] = {"model": "color", **rdefs}
    if version == "0.4":
        ms["version"] = "0.4"
        attrs: dict[str, Any] = {"multiscales": [ms], "omero": omero}
    else:
        attrs = {"ome": {"version": "0.5", "multiscales": [ms], "omero": omero}}
    ow._write_group_doc(path, version, attrs)
    rd = rdefs or {}
    return TileCase(name, path, version, axes, [str(i) for i in range(n_levels)], shapes,
                    tuple(chunks), None if shards is None else tuple(shards),
                    default_t=rd.get("defaultT", 0), default_z=rd.get("defaultZ", 0),
                    written=written)


def write_ome_zarr_py(root: Path, version: str) -> TileCase:
    """ome-zarr-py ``write_image``: czyx uint16 (2, 8, 64, 96), 3 levels, chunks
    (1, 4, 32, 32), with labels (see ``ome_writers.write_ome_zarr_image``)."""
    exp = ow.write_ome_zarr_image(root, version, name=f"ozp{version.replace('.', '')}.zarr")
    return TileCase(f"ozp-{version}", exp.path, version, "".join(a[0] for a in exp.axes),
                    [lv.path for lv in exp.levels], [lv.shape for lv in exp.levels],
                    exp.levels[0].chunks, exp.levels[0].shards,
                    written=[lv.data for lv in exp.levels])


#: name → (version, axes, shape, chunks, options)
HAND_CASES: dict[str, tuple[str, str, tuple[int, ...], tuple[int, ...], dict[str, Any]]] = {
    "czyx-0.4": ("0.4", "czyx", (3, 4, 70, 90), (1, 1, 16, 24), {"rdefs": {"defaultZ": 2}}),
    "czyx-0.5": ("0.5", "czyx", (3, 4, 70, 90), (1, 1, 16, 24),
                 {"rdefs": {"defaultZ": 3}, "missing_chunk": True}),
    "czyx-0.5-sharded": ("0.5", "czyx", (3, 4, 70, 90), (1, 1, 8, 12),
                         {"shards": (1, 1, 32, 48)}),
    "tczyx-0.4": ("0.4", "tczyx", (2, 3, 3, 40, 50), (1, 1, 1, 16, 16),
                  {"rdefs": {"defaultT": 1, "defaultZ": 2}, "n_levels": 2}),
    "tczyx-0.5-sharded": ("0.5", "tczyx", (2, 3, 3, 40, 50), (1, 1, 1, 8, 8),
                          {"shards": (1, 1, 1, 16, 16), "rdefs": {"defaultT": 1},
                           "n_levels": 2}),
    "yx-0.4": ("0.4", "yx", (50, 70), (16, 16), {"dtype": "float32"}),
    "yx-0.5": ("0.5", "yx", (50, 70), (16, 16), {"dtype": "uint8"}),
    "yxc-0.4": ("0.4", "yxc", (60, 80, 3), (16, 16, 3), {"dtype": "uint8", "n_levels": 2}),
    "yxc-0.5": ("0.5", "yxc", (60, 80, 3), (16, 16, 3), {"dtype": "uint8", "n_levels": 2}),
    "yxc-0.5-sharded": ("0.5", "yxc", (60, 80, 3), (16, 16, 3),
                        {"dtype": "uint8", "n_levels": 2, "shards": (32, 32, 3)}),
}


def write_cases(root: Path, names: list[str] | None = None, *, ome_zarr_py: bool = True
                ) -> dict[str, TileCase]:
    cases: dict[str, TileCase] = {}
    for seed, (name, (version, axes, shape, chunks, opts)) in enumerate(HAND_CASES.items()):
        if names is None or name in names:
            cases[name] = write_case(root, name, version, axes, shape, chunks, seed=seed + 1,
                                     **opts)
    if ome_zarr_py:
        for version in ("0.4", "0.5"):
            cases[f"ozp-{version}"] = write_ome_zarr_py(root, version)
    return cases


# --------------------------------------------------------------------------------------
# shard indexes, parsed with numpy from the files (sharding_indexed, index at the end,
# bytes little-endian + crc32c: zarr-python's default)
# --------------------------------------------------------------------------------------


def shard_index(shard_file: Path, n_inner: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``(offsets, nbytes, file size)`` per inner chunk (C order); -1 offsets: empty."""
    raw = shard_file.read_bytes()
    index = np.frombuffer(raw[-(16 * n_inner + 4):-4], dtype="<u8").reshape(n_inner, 2)
    empty = (index[:, 0] == 2**64 - 1) & (index[:, 1] == 2**64 - 1)
    offsets = np.where(empty, -1, index[:, 0].astype(np.int64))
    return offsets, index[:, 1].astype(np.int64), len(raw)


def index_nbytes(case: TileCase) -> int:
    assert case.shards is not None
    return 16 * math.prod(s // c for s, c in zip(case.shards, case.chunks)) + 4


def zarr_json(path: Path) -> dict[str, Any]:
    return json.loads((path / "zarr.json").read_text(encoding="utf-8"))


# -- the HTTP test server over a module's written cases (fixtures: import them) -------------


@pytest.fixture(scope="module")
def served(written):
    """``RangeServer`` over the root of the module's ``written`` fixture, for the module."""
    root, _ = written
    with RangeServer(str(root)) as srv:
        yield srv


@pytest.fixture
def server(served):
    """The module's server with its log, faults and latency reset for each test."""
    served.state.reset()
    return served


def url(srv: RangeServer, case: TileCase) -> str:
    return f"{srv.url}/{case.path.name}"
