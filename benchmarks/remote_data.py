"""Data for the remote-read benchmarks (``test_bench_remote.py``): a 128 MiB volume, two layouts.

Run it directly (the benchmark session also calls ``ensure_remote_data()``, which runs this
file in a subprocess when the marker is missing or stale)::

    python benchmarks/remote_data.py [--force]

The values are ``make_data``'s synthetic fluorescence volume (same generator, same seed) at
64 x 1024 x 1024 uint16. It is written to ``benchmarks/data/remote/`` (git-ignored) as

* ``v2.zarr``: Zarr v2, blosc zstd clevel 5 bitshuffle, chunks 16 x 256 x 256 (4 x 4 x 4 = 64
  chunk objects of 2 MiB decoded);
* ``v3.zarr``: Zarr v3, shards 32 x 512 x 512 (2 x 2 x 2 = 8 shard objects) of inner chunks
  16 x 128 x 128 (32 per shard, 512 KiB decoded), zstd level 5, index ``bytes`` + ``crc32c`` at
  the end of the shard (zarr-python's defaults).

Chunks are much smaller than in the local suite's 1 GiB set so that request round trips, not
decode, are a large part of every remote read.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_data  # noqa: E402

#: Bump when the values or the layouts change: the data is regenerated.
REMOTE_VERSION = "1"
SHAPE = (64, 1024, 1024)
ROOT = make_data.DATA_ROOT / "remote"
MARKER = "REMOTE_VERSION.json"
SLAB_Z = 32  # planes per worker task: a multiple of every chunk / shard z extent below


@dataclass(frozen=True)
class RemoteSpec:
    name: str
    label: str
    zarr_format: int
    chunks: tuple[int, ...]  # inner chunks when sharded
    shards: tuple[int, ...] | None
    codec: str

    @property
    def path(self) -> Path:
        return ROOT / f"{self.name}.zarr"

    @property
    def grid(self) -> tuple[int, ...]:
        """Shape, in objects, of the stored grid (shards when sharded)."""
        return tuple(math.ceil(s / c) for s, c in zip(SHAPE, self.shards or self.chunks))


DATASETS: dict[str, RemoteSpec] = {
    s.name: s
    for s in [
        RemoteSpec("v2", "v2-blosc-zstd-16x256x256", 2, (16, 256, 256), None, "blosc-zstd-bitshuffle"),
        RemoteSpec("v3", "v3-shard-32x512x512-zstd", 3, (16, 128, 128), (32, 512, 512), "zstd"),
    ]
}


def expected_marker() -> dict[str, Any]:
    return {
        "version": REMOTE_VERSION,
        "generator": make_data.GENERATOR_VERSION,
        "seed": make_data.SEED,
        "shape": list(SHAPE),
        "dtype": make_data.DTYPE.str,
        "datasets": {n: [s.zarr_format, list(s.chunks), list(s.shards or []), s.codec] for n, s in DATASETS.items()},
    }


def data_ready() -> bool:
    try:
        return json.loads((ROOT / MARKER).read_text()) == expected_marker()
    except (OSError, ValueError):
        return False


def ensure_remote_data() -> Path:
    """Generate the data in a subprocess (keeps the benchmark process clean) unless present."""
    if not data_ready():
        cmd = [sys.executable, str(Path(__file__).resolve())]
        print(f"\n[ngffcore bench] generating remote benchmark data: {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)
        if not data_ready():
            raise RuntimeError(f"data generation finished but {ROOT / MARKER} is not valid")
    return ROOT


def _compressors(spec: RemoteSpec) -> Any:
    import zarr.codecs
    from numcodecs import Blosc

    if spec.codec == "blosc-zstd-bitshuffle":
        return Blosc(cname="zstd", clevel=5, shuffle=Blosc.BITSHUFFLE)
    if spec.codec == "zstd":
        return zarr.codecs.ZstdCodec(level=5)
    raise ValueError(spec.codec)


def _write_slab(z0: int, z1: int) -> tuple[int, float]:
    import zarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        scene = make_data.make_scene(SHAPE)
        slab = make_data.render(scene, z0, z1)
        for spec in DATASETS.values():
            zarr.open_array(str(spec.path), mode="r+")[z0:z1] = slab
    return z0, time.perf_counter() - t0


def generate(jobs: int = 2) -> None:
    import multiprocessing as mp

    import zarr

    ROOT.mkdir(parents=True, exist_ok=True)
    (ROOT / MARKER).unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numcodecs Blosc in v2 metadata etc.
        for spec in DATASETS.values():
            zarr.create_array(
                store=str(spec.path), shape=SHAPE, dtype=make_data.DTYPE, chunks=spec.chunks,
                shards=spec.shards, compressors=_compressors(spec), filters=None, fill_value=0,
                zarr_format=spec.zarr_format, overwrite=True,  # type: ignore[arg-type]
            )
    for spec in DATASETS.values():
        assert SLAB_Z % (spec.shards or spec.chunks)[0] == 0, spec
    slabs = [(z0, min(z0 + SLAB_Z, SHAPE[0])) for z0 in range(0, SHAPE[0], SLAB_Z)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as ex:
        for z0, dt in ex.map(_write_slab, *zip(*slabs)):
            print(f"  slab z={z0}: {dt:.1f} s", flush=True)
    nbytes = math.prod(SHAPE) * make_data.DTYPE.itemsize
    print(f"written {SHAPE} in {time.perf_counter() - t0:.1f} s -> {ROOT}")
    for spec in DATASETS.values():
        stored = make_data.du(spec.path)
        objects = sum(1 for q in spec.path.rglob("*") if q.is_file() and not q.name.startswith((".z", "zarr.json")))
        print(f"  {spec.name}: {spec.label:<28} {stored / 2**20:6.1f} MiB stored, ratio {nbytes / stored:.2f}, {objects} objects")
    (ROOT / MARKER).write_text(json.dumps(expected_marker(), indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    if data_ready() and not args.force:
        print(f"{ROOT}: remote data version {REMOTE_VERSION} present, nothing to do")
        return 0
    generate(args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
