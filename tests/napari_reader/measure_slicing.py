"""How fast each kind of level array serves napari's reads (not a test: run it by hand).

    python tests/napari_reader/measure_slicing.py [--dir DIR] [--latency 0.02] [--repeats 5]

Writes (once, into DIR, default a temporary directory) a czyx uint16 image of
2 × 16 × 4096 × 4096 (1 GiB, 0.4, chunks 1 × 1 × 512 × 512, 4 levels halving y and x), then times, per
kind of level array, the reads napari makes of one channel of a multiscale image layer:

* ``plane``: the whole y/x plane of level 2 (1024 × 1024) at z = 8 (zoomed out);
* ``viewport``: a 512 × 512 crop of level 0 at z = 8, not aligned to the chunks (zoomed in);
* ``z-scroll``: the same crop at z = 0 … 15, one after another (scrolling through z);
* ``pan``: the crop at z = 8 moved right by 64 pixels 8 times (panning: the reads share
  most of their chunks).

Each read goes as napari's multiscale slicing sends it (``napari/layers/_scalar_field/
_slice.py``): the channel split first (``data[c]``), then ``data[:, y0:y1, x0:x1]`` (every
non-displayed axis whole), then ``numpy.asarray(that[z])``; for dask under napari's
``optimization.fuse.active = False``. The kinds: ``Level`` (ngffcore's level as it is: its
``__getitem__`` reads), ``dask`` (``Image.to_dask``, default blocks), ``dask grid``
(``to_dask`` with blocks = the storage grid), ``LevelView`` (``ngffcore.napari``, no cache)
and ``LevelView+cache`` (with the image's decoded-chunk cache, as the reader builds it);
``direct`` is the one read a viewer that knows the plane would send
(``level[c, z, y0:y1, x0:x1]``): the floor. Every repeat starts from a cold decoded-chunk
cache (a new image) and warm OS file cache; the median of ``--repeats`` is printed, in ms.
With ``--latency`` the same reads go over HTTP to ``tests/servers.py``'s server in a child
process, answering each request that many seconds after it arrives.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: servers.py

import ngffcore  # noqa: E402
from ngffcore.napari import LevelView  # noqa: E402

SHAPE = (2, 16, 4096, 4096)
NAME = "measure.ome.zarr"
Z = 8
VIEW = (slice(1000, 1512), slice(2100, 2612))  # level 0, off the 512 chunk grid


def write(root: Path) -> Path:
    path = root / NAME
    if (path / ".zattrs").exists():
        return path
    rng = np.random.default_rng(0)
    plane = (np.add.outer(np.arange(4096), np.arange(4096)) % 4000).astype(np.uint16)
    data = np.empty(SHAPE, np.uint16)
    for c in range(SHAPE[0]):
        for z in range(SHAPE[1]):
            data[c, z] = plane + rng.integers(0, 64, plane.shape, dtype=np.uint16)
    ngffcore.write_image(str(path), data, axes="czyx", chunks=(1, 1, 512, 512),
                         factors=[[1, 1, 2, 2]] * 3, version="0.4")
    return path


def kinds(location: str) -> dict[str, Callable[[], list[Any]]]:
    """Per kind: a function opening the image afresh and returning its level arrays."""
    def level() -> list[Any]:
        return list(ngffcore.open(location).levels)

    def dask_default() -> list[Any]:
        img = ngffcore.open(location)
        return [img.to_dask(i) for i in range(len(img.levels))]

    def dask_grid() -> list[Any]:
        img = ngffcore.open(location)
        return [img.to_dask(i, chunks=lvl.metadata.grid_shape)
                for i, lvl in enumerate(img.levels)]

    def view() -> list[Any]:
        return [LevelView(lvl) for lvl in ngffcore.open(location, cache=False).levels]

    def view_cached() -> list[Any]:
        img = ngffcore.open(location)
        return [LevelView(lvl, img.cache) for lvl in img.levels]

    return {"Level": level, "dask": dask_default, "dask grid": dask_grid,
            "LevelView": view, "LevelView+cache": view_cached}


def _boxes(box: tuple[slice, slice], shifts: int) -> list[tuple[slice, slice]]:
    return [(box[0], slice(box[1].start + 64 * k, box[1].stop + 64 * k))
            for k in range(shifts)]


def napari_read(levels: list[Any], index: int, boxes: list[tuple[slice, slice]],
                zs: list[int]) -> None:
    channel = levels[index][0]  # napari's channel split
    for box in boxes:
        crop = channel[(slice(None),) + box]  # every non-displayed axis whole
        for z in zs:
            out = np.asarray(crop[z])
            assert out.shape == (box[0].stop - box[0].start, box[1].stop - box[1].start)


CASES = {"plane": (2, [(slice(0, 1024), slice(0, 1024))], [Z]),
         "viewport": (0, [VIEW], [Z]),
         "z-scroll": (0, [VIEW], list(range(SHAPE[1]))),
         "pan": (0, _boxes(VIEW, 8), [Z])}


def measure(location: str, repeats: int) -> dict[tuple[str, str], float]:
    import dask

    out: dict[tuple[str, str], float] = {}
    for case, (index, boxes, zs) in CASES.items():
        for kind, opener in kinds(location).items():
            times = []
            for _ in range(repeats):
                levels = opener()
                t0 = time.perf_counter()
                with dask.config.set({"optimization.fuse.active": False}):
                    napari_read(levels, index, boxes, zs)
                times.append(time.perf_counter() - t0)
            out[(case, kind)] = statistics.median(times) * 1e3
        times = []
        for _ in range(repeats):
            lvl = ngffcore.open(location, cache=False).levels[index]
            t0 = time.perf_counter()
            for box in boxes:
                for z in zs:
                    lvl[(0, z) + box]
            times.append(time.perf_counter() - t0)
        out[(case, "direct")] = statistics.median(times) * 1e3
    return out


def report(title: str, results: dict[tuple[str, str], float]) -> None:
    names = ["direct", "Level", "dask", "dask grid", "LevelView", "LevelView+cache"]
    print(f"\n{title} (median ms)")
    print("| case | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for case in CASES:
        print(f"| {case} | " + " | ".join(f"{results[(case, n)]:.1f}" for n in names) + " |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=None)
    ap.add_argument("--latency", type=float, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="ngff-napari-"))
    path = write(root)
    report(f"local {path}", measure(str(path), args.repeats))
    if args.latency is not None:
        from servers import ServerProcess

        with ServerProcess(root, latency=args.latency) as srv:
            report(f"HTTP, {args.latency * 1e3:.0f} ms per request",
                   measure(f"{srv.url}/{NAME}", args.repeats))


if __name__ == "__main__":
    main()
