"""Data for the viewer-tile benchmarks (``test_bench_tiles.py``): a 5-level RGB pyramid that looks
like a brightfield (H&E-stained) whole-slide image, as OME-NGFF 0.4 and 0.5.

Run it directly (the benchmark session calls ``ensure_tiles_data()``, which runs this file in a
subprocess when the marker is missing or stale)::

    python benchmarks/tiles_data.py            # 3 x 16384 x 16384 uint8 -> benchmarks/data/tiles/full/
    python benchmarks/tiles_data.py --small    # 3 x 4096 x 4096 (smoke runs; also NGFF_BENCH_SMALL=1)

Images (same pixels in all; 5 levels, each half the previous one in y and x, 2 x 2 mean with
rounding; axes ``c`` (channel), ``y``/``x`` (space, micrometer), level-0 pixel 0.25 um, each level's
``translation`` shifting its pixel centres by (factor - 1) / 2 level-0 pixels; omero channels
red / green / blue with windows 0-255, ``rdefs.model`` "color"):

* ``rgb_v2.ome.zarr``   OME-NGFF 0.4, Zarr v2, chunks 1 x 512 x 512 (planar: one object per
  channel), blosc lz4 clevel 5 byte shuffle (zarr v2's classic default compressor),
  ``dimension_separator`` "/" (0.4 requires it);
* ``rgb_v2c3.ome.zarr`` the same with chunks 3 x 512 x 512: one object holds a 512 x 512 block of
  all three channels (still ``cyx``, so valid OME-NGFF; a pixel-interleaved ``yxc`` layout
  would not be);
* ``rgb_v3.ome.zarr``   OME-NGFF 0.5, Zarr v3, chunks 1 x 512 x 512, codecs ``bytes`` + ``blosc``
  (lz4, clevel 5, shuffle, typesize 1), ``dimension_names`` c/y/x: the v2 planar image in the
  other format, same codec.

Multiscales/omero metadata is written by hand (``ngff_attributes``), the arrays with zarr-python.

Content (fixed seed): a few soft-edged tissue sections (~35 % of the slide) on white glass
(scanner white point above 255, so the background is mostly saturated at 255 — as in real
slides — and compresses well); inside the tissue, eosin-pink stroma whose density varies
smoothly, white holes (lumens / fat), and hematoxylin-purple nuclei of ~5-10 px whose density
follows a smooth "cellularity" field; colours from a Beer-Lambert stain model (optical density
= hematoxylin x (0.65, 0.70, 0.29) + eosin x (0.07, 0.99, 0.11)); then scanner noise (luminance
noise shared by the channels plus per-channel noise, ~4 grey levels in tissue, ~1 on glass).
Every smooth field is a coarse uniform random grid interpolated with wide Gaussian weights
(separable, as ``make_data``), so it is continuous across worker blocks. Blosc lz4 compresses
the result ~2.5-3x overall (~1.1x inside tissue, ~50x on glass), like lossless slide data.

Generation: level 0 in 2048 x 2048 blocks by worker processes, each writing its block and its
1024 x 1024 and 512 x 512 (= one chunk) reductions for levels 1 and 2, then returning the
level-2 block; the parent assembles level 2 and writes levels 3 and 4. No two workers write the
same chunk object. A marker ``GENERATOR_VERSION.json`` (version, seed, shape, datasets) makes
later runs reuse the data.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_data  # noqa: E402

#: Bump whenever the pixels, the metadata or the layouts change: the data is regenerated.
GENERATOR_VERSION = "1"
SEED = 20250605
SHAPE_FULL = (3, 16384, 16384)
SHAPE_SMALL = (3, 4096, 4096)
N_LEVELS = 5
CHUNK = 512
BLOCK = 2048  # level-0 pixels per worker task and axis: its level-2 reduction is one chunk
PIXEL_SIZE_UM = 0.25  # level 0 (a 40x scan)
TISSUE_FRACTION = 0.35
ROOT = make_data.DATA_ROOT / "tiles"
MARKER = "GENERATOR_VERSION.json"
CHANNELS = (("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF"))


@dataclass(frozen=True)
class TileDataset:
    name: str  # key, used in test ids and group names
    dirname: str
    ngff: str  # "0.4" / "0.5"
    zarr_format: int
    chunks: tuple[int, int, int]
    label: str

    def path(self, small: bool) -> Path:
        return data_dir(small) / self.dirname


DATASETS: dict[str, TileDataset] = {
    d.name: d
    for d in [
        TileDataset("v2", "rgb_v2.ome.zarr", "0.4", 2, (1, CHUNK, CHUNK), "0.4/v2 planar 1x512x512 blosc-lz4"),
        TileDataset("v2c3", "rgb_v2c3.ome.zarr", "0.4", 2, (3, CHUNK, CHUNK), "0.4/v2 3x512x512 blosc-lz4"),
        TileDataset("v3", "rgb_v3.ome.zarr", "0.5", 3, (1, CHUNK, CHUNK), "0.5/v3 planar 1x512x512 blosc-lz4"),
    ]
}


def shape_for(small: bool) -> tuple[int, int, int]:
    return SHAPE_SMALL if small else SHAPE_FULL


def level_shapes(small: bool) -> list[tuple[int, int, int]]:
    c, h, w = shape_for(small)
    return [(c, h >> i, w >> i) for i in range(N_LEVELS)]


def data_dir(small: bool) -> Path:
    return ROOT / ("small" if small else "full")


def expected_marker(small: bool) -> dict[str, Any]:
    return {
        "version": GENERATOR_VERSION,
        "seed": SEED,
        "shape": list(shape_for(small)),
        "levels": N_LEVELS,
        "datasets": {n: [d.dirname, d.ngff, d.zarr_format, list(d.chunks)] for n, d in DATASETS.items()},
    }


def data_ready(small: bool) -> bool:
    try:
        return json.loads((data_dir(small) / MARKER).read_text()) == expected_marker(small)
    except (OSError, ValueError):
        return False


def ensure_tiles_data(small: bool, jobs: int = 2) -> Path:
    """Generate the data (in a subprocess, keeping the caller's process clean) unless present."""
    if not data_ready(small):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--jobs", str(jobs)] + (["--small"] if small else [])
        print(f"\n[ngffcore bench] generating tile benchmark data: {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)
        if not data_ready(small):
            raise RuntimeError(f"data generation finished but {data_dir(small) / MARKER} is not valid")
    return data_dir(small)


# --------------------------------------------------------------------------------------------
# The slide
# --------------------------------------------------------------------------------------------

#: Smooth fields: name -> node spacing in level-0 pixels (``None``: width / 8).
FIELDS = {"tissue": None, "stroma": 192, "cell": 384, "nuclei": 9}
HEMATOXYLIN = np.array([0.65, 0.70, 0.29], np.float32)
EOSIN = np.array([0.07, 0.99, 0.11], np.float32)
WHITE = 262.0  # scanner white point: glass (optical density 0.015) reads ~258 -> mostly 255
GLASS_OD = 0.015


@dataclass
class Scene:
    width: int
    grids: dict[str, np.ndarray]
    spacing: dict[str, int]
    tissue_threshold: float


def _weights(lo: int, n: int, spacing: int, n_nodes: int) -> tuple[np.ndarray, int, int]:
    """Gaussian interpolation weights of pixels [lo, lo + n) on the grid nodes near them (node j
    sits at (j - 1) * spacing; weights beyond ~5 spacings are < 1e-8 and left out)."""
    j0 = max(0, lo // spacing + 1 - 5)
    j1 = min(n_nodes, (lo + n) // spacing + 1 + 6)
    pos = np.arange(lo, lo + n, dtype=np.float64)[:, None]
    node = (np.arange(j0, j1, dtype=np.float64)[None, :] - 1.0) * spacing
    w = np.exp(-0.5 * ((pos - node) / (0.8 * spacing)) ** 2)
    w /= w.sum(axis=1, keepdims=True)
    return w.astype(np.float32), j0, j1


def smooth_field(scene: Scene, name: str, y0: int, x0: int, h: int, w: int, stride: int = 1,
                 stretch: float = 3.0) -> np.ndarray:
    """Field ``name`` on pixels [y0, y0 + h) x [x0, x0 + w) (every ``stride``-th), in [0, 1]."""
    grid, spacing = scene.grids[name], scene.spacing[name]
    wy, a0, a1 = _weights(y0, h, spacing, grid.shape[0])
    wx, b0, b1 = _weights(x0, w, spacing, grid.shape[1])
    f = wy[::stride] @ grid[a0:a1, b0:b1] @ wx[::stride].T
    # interpolation shrinks the spread of the uniform grid: stretch it back to ~[0, 1]
    return np.clip(0.5 + (f - 0.5) * stretch, 0.0, 1.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_scene(width: int, seed: int = SEED) -> Scene:
    rng = np.random.default_rng([seed, 0x711E5])
    spacing = {k: (v if v is not None else width // 8) for k, v in FIELDS.items()}
    grids = {k: rng.random((math.ceil(width / s) + 3,) * 2, dtype=np.float32) for k, s in spacing.items()}
    scene = Scene(width, grids, spacing, 0.0)
    # threshold so that ~TISSUE_FRACTION of the slide is tissue (sampled every 32 pixels)
    coarse = smooth_field(scene, "tissue", 0, 0, width, width, stride=32)
    scene.tissue_threshold = float(np.quantile(coarse, 1.0 - TISSUE_FRACTION))
    return scene


def render_block(scene: Scene, y0: int, x0: int, n: int = BLOCK, seed: int = SEED) -> np.ndarray:
    """Level-0 pixels [y0, y0 + n) x [x0, x0 + n): (3, n, n) uint8 RGB. Deterministic per block."""
    tissue = _sigmoid((smooth_field(scene, "tissue", y0, x0, n, n) - scene.tissue_threshold) * 30.0)
    stroma = smooth_field(scene, "stroma", y0, x0, n, n)
    tissue *= _sigmoid((stroma - 0.12) * 40.0)  # lumens / fat: white holes where stroma is thin
    cell = smooth_field(scene, "cell", y0, x0, n, n)
    nuclei = _sigmoid((smooth_field(scene, "nuclei", y0, x0, n, n, stretch=2.5) - (0.85 - 0.25 * cell)) * 25.0)
    hema = tissue * (0.10 + 1.2 * nuclei)
    eosin = tissue * (0.20 + 0.6 * stroma)
    del stroma, cell, nuclei
    rng = np.random.default_rng([seed, y0, x0])
    luminance = rng.standard_normal((n, n), dtype=np.float32)
    sigma = 0.8 + 2.2 * tissue
    out = np.empty((3, n, n), np.uint8)
    for c in range(3):
        v = np.exp(-(hema * HEMATOXYLIN[c] + eosin * EOSIN[c] + GLASS_OD))
        v *= WHITE
        v += sigma * (luminance + 0.5 * rng.standard_normal((n, n), dtype=np.float32))
        np.clip(v, 0.0, 255.0, out=v)
        np.rint(v, out=out[c], casting="unsafe")
    return out


def downsample2(a: np.ndarray) -> np.ndarray:
    """2 x 2 mean over the last two axes, rounded half up, uint8."""
    s = a[..., ::2, ::2].astype(np.uint16)
    s += a[..., 1::2, ::2]
    s += a[..., ::2, 1::2]
    s += a[..., 1::2, 1::2]
    s += 2
    s >>= 2
    return s.astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Metadata and writing
# --------------------------------------------------------------------------------------------


def ngff_attributes(ds: TileDataset) -> dict[str, Any]:
    """The group attributes: multiscales + omero, 0.4 (top level) or 0.5 (under ``ome``)."""
    datasets = []
    for i in range(N_LEVELS):
        f = 2**i
        s = PIXEL_SIZE_UM * f
        t = PIXEL_SIZE_UM * (f - 1) / 2  # centre of a level-i pixel, in level-0 pixel units
        datasets.append({
            "path": str(i),
            "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, s, s]},
                {"type": "translation", "translation": [0.0, t, t]},
            ],
        })
    multiscale: dict[str, Any] = {
        "name": "synthetic H&E slide",
        "axes": [
            {"name": "c", "type": "channel"},
            {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"},
        ],
        "datasets": datasets,
        "type": "mean",
        "metadata": {"description": "2x2 mean per level, rounded half up", "generator": "benchmarks/tiles_data.py",
                     "generator_version": GENERATOR_VERSION},
    }
    omero: dict[str, Any] = {
        "name": "synthetic H&E slide",
        "channels": [
            {"label": label, "color": color, "active": True, "coefficient": 1.0, "family": "linear",
             "inverted": False, "window": {"start": 0, "end": 255, "min": 0, "max": 255}}
            for label, color in CHANNELS
        ],
        "rdefs": {"model": "color", "defaultT": 0, "defaultZ": 0},
    }
    if ds.ngff == "0.4":
        multiscale = {"version": "0.4", **multiscale}
        omero = {"version": "0.4", **omero}
        return {"multiscales": [multiscale], "omero": omero}
    return {"ome": {"version": "0.5", "multiscales": [multiscale], "omero": omero}}


def _compressor(ds: TileDataset) -> Any:
    if ds.zarr_format == 2:
        from numcodecs import Blosc

        return Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)
    import zarr.codecs

    return zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", typesize=1)


def create_dataset(ds: TileDataset, small: bool) -> None:
    import zarr

    path = ds.path(small)
    if path.exists():
        shutil.rmtree(path)
    zarr.create_group(store=str(path), zarr_format=ds.zarr_format,  # type: ignore[arg-type]
                      attributes=ngff_attributes(ds))
    for i, shape in enumerate(level_shapes(small)):
        kw: dict[str, Any] = {}
        if ds.zarr_format == 2:
            kw["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        else:
            kw["dimension_names"] = ("c", "y", "x")  # 0.5 wants them equal to the axes
        zarr.create_array(
            store=str(path), name=str(i), shape=shape, dtype="uint8", chunks=ds.chunks,
            compressors=_compressor(ds), filters=None, fill_value=0,
            zarr_format=ds.zarr_format, **kw,  # type: ignore[arg-type]
        )


def _write(small: bool, level: int, y0: int, x0: int, block: np.ndarray) -> None:
    import zarr

    for ds in DATASETS.values():
        arr = zarr.open_array(str(ds.path(small) / str(level)), mode="r+")
        arr[:, y0:y0 + block.shape[1], x0:x0 + block.shape[2]] = block


def _block_task(args: tuple[bool, int, int]) -> tuple[int, int, np.ndarray, float]:
    small, y0, x0 = args
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numcodecs Blosc in v2 metadata etc.
        t0 = time.perf_counter()
        scene = make_scene(shape_for(small)[1])
        block = render_block(scene, y0, x0)
        for level in range(3):  # 2048 -> 1024 -> 512: levels 0, 1, 2
            if level:
                block = downsample2(block)
            _write(small, level, y0 >> level, x0 >> level, block)
    return y0, x0, block, time.perf_counter() - t0


def generate(small: bool, jobs: int = 2) -> None:
    import multiprocessing as mp

    root = data_dir(small)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ds in DATASETS.values():
            create_dataset(ds, small)
    c, h, w = shape_for(small)
    assert h % BLOCK == 0 and w % BLOCK == 0 and (BLOCK >> 2) % CHUNK == 0
    tasks = [(small, y0, x0) for y0 in range(0, h, BLOCK) for x0 in range(0, w, BLOCK)]
    print(f"generating {shape_for(small)} uint8 x {N_LEVELS} levels, {len(tasks)} blocks, {jobs} jobs -> {root}",
          flush=True)
    t0 = time.perf_counter()
    level2 = np.empty((c, h >> 2, w >> 2), np.uint8)
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as ex:
        for k, (y0, x0, block, dt) in enumerate(ex.map(_block_task, tasks)):
            level2[:, y0 >> 2:(y0 >> 2) + block.shape[1], x0 >> 2:(x0 >> 2) + block.shape[2]] = block
            if k % max(1, len(tasks) // 8) == 0 or k == len(tasks) - 1:
                print(f"  block {k + 1}/{len(tasks)} ({y0}, {x0}): {dt:.1f} s", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = level2
        for level in range(3, N_LEVELS):
            data = downsample2(data)
            _write(small, level, 0, 0, data)
    elapsed = time.perf_counter() - t0
    raw = sum(math.prod(s) for s in level_shapes(small))
    print(f"written in {elapsed:.1f} s")
    for ds in DATASETS.values():
        stored = make_data.du(ds.path(small))
        objects = sum(1 for q in ds.path(small).rglob("*") if q.is_file() and not q.name.startswith(".z")
                      and q.name != "zarr.json")
        print(f"  {ds.dirname:<19} {ds.label:<36} {stored / 2**20:7.1f} MiB stored, ratio {raw / stored:.2f}, "
              f"{objects} chunk objects")
    marker = expected_marker(small)
    (root / MARKER).write_text(json.dumps(marker, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="3 x 4096 x 4096 variant (also NGFF_BENCH_SMALL=1)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--preview", metavar="PNG", help="also write level 4 (or the given level via --level) as a PNG")
    ap.add_argument("--level", type=int, default=N_LEVELS - 1)
    args = ap.parse_args(argv)
    small = args.small or make_data.env_small()
    if data_ready(small) and not args.force:
        print(f"{data_dir(small)}: tile data version {GENERATOR_VERSION} present, nothing to do")
    else:
        generate(small, args.jobs)
    if args.preview:
        import zarr
        from PIL import Image as PILImage

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            px = np.asarray(zarr.open_array(str(DATASETS["v2"].path(small) / str(args.level)), mode="r")[...])
        PILImage.fromarray(np.ascontiguousarray(px.transpose(1, 2, 0))).save(args.preview)
        print(f"preview of level {args.level} {px.shape}: {args.preview}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
