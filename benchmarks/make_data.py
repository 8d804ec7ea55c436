"""Generate the benchmark datasets: a synthetic, microscopy-like uint16 volume.

Run it directly::

    python benchmarks/make_data.py            # ~1 GiB volume -> benchmarks/data/full/
    python benchmarks/make_data.py --small    # 128 MiB volume -> benchmarks/data/small/
    NGFF_BENCH_SMALL=1 python benchmarks/make_data.py   # same as --small

or import it: ``ensure_data(small)`` (used by the benchmark session fixture) regenerates the data
in a subprocess when the marker file with the current generator version is missing.

The volume is built from a fixed seed and is independent of how the work is split:

* background: a smooth low-frequency random field (a coarse random grid interpolated with wide
  Gaussian weights, separably), times an illumination vignette and a depth attenuation;
* a few hundred bright "nuclei": soft ellipsoids (anisotropic, z radius about half of the x/y one)
  with a dim halo ("cytoplasm");
* camera noise: shot noise (Gaussian approximation of Poisson, variance = photons) plus read
  noise, on top of a camera offset of 100.

That compresses about 2.5-3x with blosc-zstd + bitshuffle, like real fluorescence data (pure
noise-free phantoms compress 20x and would make every reader look I/O-free).

Every block of ``BLOCK_Z`` planes is drawn from its own RNG seeded by ``(SEED, z0)``, so slabs can
be generated and written by independent worker processes. Slabs are ``SLAB_Z`` planes, a multiple
of every chunk / shard z extent, so no two workers ever write the same chunk or shard object.

Datasets (all the same values):

* ``v2_zstd``  Zarr v2, blosc zstd clevel 5 bitshuffle, chunks 64x256x256
* ``v2_lz4``   Zarr v2, blosc lz4 clevel 5 byte shuffle, chunks 1x1024x1024
* ``v3_shard`` Zarr v3, shards 64x512x512 of inner chunks 32x128x128, zstd; default ``bytes``
  codec, index ``bytes`` + ``crc32c``

plus, for the per-stage benchmarks:

* ``empty_<name>``: the same metadata with no chunk objects at all (every read is fill_value);
* ``tiny_raw``: 64x64 uint8, chunks 1x1, no compressor (4096 one-byte chunk files), Zarr v2.
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

#: Bump whenever the generated values or the on-disk layout change: data is regenerated.
GENERATOR_VERSION = "1"
SEED = 20240611

SHAPE_FULL = (256, 2048, 1024)  # uint16: exactly 1 GiB
SHAPE_SMALL = (64, 1024, 1024)  # uint16: 128 MiB, for smoke runs
DTYPE = np.dtype("uint16")

BLOCK_Z = 16  # planes drawn from one RNG (fixed: the values do not depend on slab size)
SLAB_Z = 64  # planes per worker task (multiple of every chunk/shard z extent below)

HERE = Path(__file__).resolve().parent
DATA_ROOT = HERE / "data"
MARKER = "GENERATOR_VERSION.json"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    label: str  # short human label used in benchmark group names
    zarr_format: int
    chunks: tuple[int, ...]  # inner chunk shape when sharded
    shards: tuple[int, ...] | None
    codec: str  # "blosc-zstd-bitshuffle", "blosc-lz4-shuffle", "zstd"

    @property
    def chunk_nbytes(self) -> int:
        return math.prod(self.chunks) * DTYPE.itemsize


DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        DatasetSpec("v2_zstd", "v2-blosc-zstd-64x256x256", 2, (64, 256, 256), None, "blosc-zstd-bitshuffle"),
        DatasetSpec("v2_lz4", "v2-blosc-lz4-1x1024x1024", 2, (1, 1024, 1024), None, "blosc-lz4-shuffle"),
        DatasetSpec("v3_shard", "v3-shard-64x512x512-zstd", 3, (32, 128, 128), (64, 512, 512), "zstd"),
    ]
}

TINY_NAME = "tiny_raw"
TINY_SHAPE = (64, 64)
TINY_CHUNKS = (1, 1)


def env_small() -> bool:
    return os.environ.get("NGFF_BENCH_SMALL", "").strip().lower() not in ("", "0", "false", "no")


def shape_for(small: bool) -> tuple[int, int, int]:
    return SHAPE_SMALL if small else SHAPE_FULL


def data_dir(small: bool) -> Path:
    return DATA_ROOT / ("small" if small else "full")


def dataset_path(name: str, small: bool) -> Path:
    return data_dir(small) / f"{name}.zarr"


def empty_path(name: str, small: bool) -> Path:
    return data_dir(small) / f"empty_{name}.zarr"


def tiny_path(small: bool) -> Path:
    return data_dir(small) / f"{TINY_NAME}.zarr"


def expected_marker(small: bool) -> dict[str, Any]:
    return {
        "version": GENERATOR_VERSION,
        "seed": SEED,
        "shape": list(shape_for(small)),
        "dtype": DTYPE.str,
        "datasets": sorted(DATASETS),
    }


def data_ready(small: bool) -> bool:
    marker = data_dir(small) / MARKER
    try:
        found = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    want = expected_marker(small)
    return all(found.get(k) == v for k, v in want.items())


def ensure_data(small: bool, jobs: int = 2) -> Path:
    """Generate the data (in a subprocess, so the caller's process stays clean) unless present."""
    if not data_ready(small):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--jobs", str(jobs)]
        if small:
            cmd.append("--small")
        print(f"\n[ngffcore bench] generating benchmark data: {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)
        if not data_ready(small):
            raise RuntimeError(f"data generation finished but {data_dir(small) / MARKER} is not valid")
    return data_dir(small)


# --------------------------------------------------------------------------------------------
# The volume
# --------------------------------------------------------------------------------------------


@dataclass
class Scene:
    shape: tuple[int, int, int]
    coarse: np.ndarray  # coarse random grid for the background
    spacing: tuple[int, int, int]
    blobs: np.ndarray  # (n, 7): cz, cy, cx, rz, ry, rx, amplitude


def make_scene(shape: tuple[int, int, int], seed: int = SEED) -> Scene:
    rng = np.random.default_rng([seed, 0xB10B])
    spacing = (32, 128, 128)
    nodes = tuple(math.ceil(n / s) + 3 for n, s in zip(shape, spacing))
    coarse = rng.random(nodes, dtype=np.float32)
    vol = math.prod(shape)
    n_blobs = max(30, round(400 * vol / math.prod(SHAPE_FULL)))
    centers = rng.random((n_blobs, 3)) * np.array(shape, dtype=np.float64)
    rxy = rng.uniform(8.0, 18.0, n_blobs)
    ry = rxy * rng.uniform(0.85, 1.15, n_blobs)
    rx = rxy * rng.uniform(0.85, 1.15, n_blobs)
    rz = rxy * rng.uniform(0.4, 0.6, n_blobs)
    amp = rng.uniform(80.0, 400.0, n_blobs)
    blobs = np.column_stack([centers, rz, ry, rx, amp])
    return Scene(shape=shape, coarse=coarse, spacing=spacing, blobs=blobs)


def _interp_weights(n: int, n_nodes: int, spacing: int) -> np.ndarray:
    """(n, n_nodes) row-normalised wide Gaussian weights: a smooth interpolation of the grid."""
    pos = np.arange(n, dtype=np.float64)[:, None]
    node = (np.arange(n_nodes, dtype=np.float64)[None, :] - 1.0) * spacing
    w = np.exp(-0.5 * ((pos - node) / (0.8 * spacing)) ** 2)
    w /= w.sum(axis=1, keepdims=True)
    return w.astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def photons(scene: Scene, z0: int, z1: int) -> np.ndarray:
    """Expected photon counts (float32) for planes [z0, z1)."""
    nz, ny, nx = scene.shape
    cz, cy, cx = scene.coarse.shape
    sz, sy, sx = scene.spacing
    wz = _interp_weights(nz, cz, sz)[z0:z1]  # (b, cz)
    wy = _interp_weights(ny, cy, sy)  # (ny, cy)
    wx = _interp_weights(nx, cx, sx)  # (nx, cx)
    g = np.tensordot(wz, scene.coarse, axes=(1, 0))  # (b, cy, cx)
    g = np.einsum("yj,bjk->byk", wy, g)  # (b, ny, cx)
    field = np.tensordot(g, wx, axes=(2, 1))  # (b, ny, nx)
    # The smoothing shrinks the variance of the uniform grid; stretch it back to ~[0, 1].
    field = np.clip(0.5 + (field - 0.5) * 3.0, 0.0, 1.0).astype(np.float32)

    yy = (np.arange(ny, dtype=np.float32) - ny / 2) / (ny / 2)
    xx = (np.arange(nx, dtype=np.float32) - nx / 2) / (nx / 2)
    vignette = 1.0 - 0.35 * (yy[:, None] ** 2 + xx[None, :] ** 2) / 2.0
    depth = np.exp(-np.arange(z0, z1, dtype=np.float32) / (2.0 * nz))
    lam = (8.0 + 50.0 * field) * vignette[None] * depth[:, None, None]
    lam = lam.astype(np.float32, copy=False)

    for bz, by, bx, rz, ry, rx, amp in scene.blobs:
        ext = 2.5  # halo reaches r = 2
        lo_z, hi_z = max(z0, int(bz - ext * rz)), min(z1, int(bz + ext * rz) + 1)
        if lo_z >= hi_z:
            continue
        lo_y, hi_y = max(0, int(by - ext * ry)), min(ny, int(by + ext * ry) + 1)
        lo_x, hi_x = max(0, int(bx - ext * rx)), min(nx, int(bx + ext * rx) + 1)
        dz = ((np.arange(lo_z, hi_z, dtype=np.float32) - bz) / rz)[:, None, None]
        dy = ((np.arange(lo_y, hi_y, dtype=np.float32) - by) / ry)[None, :, None]
        dx = ((np.arange(lo_x, hi_x, dtype=np.float32) - bx) / rx)[None, None, :]
        r = np.sqrt(dz * dz + dy * dy + dx * dx)
        val = amp * (_sigmoid((1.0 - r) * 6.0) + 0.15 * _sigmoid((2.0 - r) * 4.0))
        lam[lo_z - z0 : hi_z - z0, lo_y:hi_y, lo_x:hi_x] += val.astype(np.float32)
    return lam


def render(scene: Scene, z0: int, z1: int, seed: int = SEED) -> np.ndarray:
    """uint16 camera counts for planes [z0, z1); deterministic per BLOCK_Z block."""
    out = np.empty((z1 - z0,) + scene.shape[1:], dtype=DTYPE)
    offset, read_noise = 100.0, 2.0
    for b0 in range(z0 - z0 % BLOCK_Z, z1, BLOCK_Z):
        b1 = min(b0 + BLOCK_Z, scene.shape[0])
        lam = photons(scene, b0, b1)
        rng = np.random.default_rng([seed, b0])
        noise = rng.standard_normal(lam.shape, dtype=np.float32)
        noise *= np.sqrt(lam + read_noise**2)
        lam += noise
        lam += offset
        np.rint(lam, out=lam)
        np.clip(lam, 0, np.iinfo(DTYPE).max, out=lam)
        lo, hi = max(b0, z0), min(b1, z1)
        out[lo - z0 : hi - z0] = lam[lo - b0 : hi - b0]
    return out


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _compressors(spec: DatasetSpec) -> Any:
    import zarr.codecs
    from numcodecs import Blosc

    if spec.codec == "blosc-zstd-bitshuffle":
        return Blosc(cname="zstd", clevel=5, shuffle=Blosc.BITSHUFFLE)
    if spec.codec == "blosc-lz4-shuffle":
        return Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)
    if spec.codec == "zstd":
        return zarr.codecs.ZstdCodec(level=5)
    raise ValueError(spec.codec)


def _create(path: Path, spec: DatasetSpec, shape: tuple[int, ...]) -> None:
    import zarr

    zarr.create_array(
        store=str(path),
        shape=shape,
        dtype=DTYPE,
        chunks=spec.chunks,
        shards=spec.shards,
        compressors=_compressors(spec),
        filters=None,
        fill_value=0,
        zarr_format=spec.zarr_format,
        overwrite=True,
    )


def _write_slab(args: tuple[str, bool, int, int]) -> tuple[int, float]:
    data_root, small, z0, z1 = args
    import zarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        scene = make_scene(shape_for(small))
        slab = render(scene, z0, z1)
        for name in DATASETS:
            arr = zarr.open_array(str(Path(data_root) / f"{name}.zarr"), mode="r+")
            arr[z0:z1] = slab
    return z0, time.perf_counter() - t0


def _write_tiny(path: Path) -> None:
    import zarr

    arr = zarr.create_array(
        store=str(path),
        shape=TINY_SHAPE,
        dtype="uint8",
        chunks=TINY_CHUNKS,
        compressors=None,
        filters=None,
        fill_value=0,
        zarr_format=2,
        overwrite=True,
        config={"write_empty_chunks": True},
    )
    arr[...] = tiny_values()


def tiny_values() -> np.ndarray:
    n = math.prod(TINY_SHAPE)
    return (np.arange(n) % 255 + 1).astype(np.uint8).reshape(TINY_SHAPE)


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def generate(small: bool, jobs: int = 2) -> None:
    shape = shape_for(small)
    root = data_dir(small)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).unlink(missing_ok=True)
    for p in root.iterdir():
        if p.suffix == ".zarr":
            shutil.rmtree(p)

    with warnings.catch_warnings():
        # zarr-python warns that numcodecs Blosc in v2 metadata is not a v3 spec codec etc.
        warnings.simplefilter("ignore")
        for name, spec in DATASETS.items():
            _create(dataset_path(name, small), spec, shape)
            _create(empty_path(name, small), spec, shape)
        _write_tiny(tiny_path(small))

    slab_z = SLAB_Z
    for spec in DATASETS.values():
        for ext in (spec.shards or spec.chunks)[:1]:
            assert slab_z % ext == 0, (slab_z, spec)
    tasks = [(str(root), small, z0, min(z0 + slab_z, shape[0])) for z0 in range(0, shape[0], slab_z)]
    nbytes = math.prod(shape) * DTYPE.itemsize
    print(f"generating {shape} {DTYPE} ({nbytes / 2**20:.0f} MiB) in {len(tasks)} slabs, {jobs} jobs -> {root}")
    t0 = time.perf_counter()
    if jobs <= 1:
        for t in tasks:
            z0, dt = _write_slab(t)
            print(f"  slab z={z0}: {dt:.1f} s", flush=True)
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as ex:
            for z0, dt in ex.map(_write_slab, tasks):
                print(f"  slab z={z0}: {dt:.1f} s", flush=True)
    print(f"written in {time.perf_counter() - t0:.1f} s")

    print(f"{'dataset':<10} {'codec':<24} {'chunks':<16} {'shards':<14} {'stored MiB':>10} {'ratio':>6} {'objects':>8}")
    for name, spec in DATASETS.items():
        p = dataset_path(name, small)
        stored = du(p)
        n_obj = sum(1 for q in p.rglob("*") if q.is_file() and not q.name.startswith((".z", "zarr.json")))
        print(
            f"{name:<10} {spec.codec:<24} {'x'.join(map(str, spec.chunks)):<16} "
            f"{'x'.join(map(str, spec.shards)) if spec.shards else '-':<14} "
            f"{stored / 2**20:>10.1f} {nbytes / stored:>6.2f} {n_obj:>8}"
        )
    (root / MARKER).write_text(json.dumps(expected_marker(small), indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="small variant for smoke runs (also NGFF_BENCH_SMALL=1)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    ap.add_argument("--force", action="store_true", help="regenerate even if the marker is current")
    args = ap.parse_args(argv)
    small = args.small or env_small()
    if data_ready(small) and not args.force:
        print(f"{data_dir(small)}: data for generator version {GENERATOR_VERSION} present, nothing to do")
        return 0
    generate(small, jobs=args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
