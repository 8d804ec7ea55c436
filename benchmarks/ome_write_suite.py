"""Shared pieces of the OME-Zarr writing benchmarks (issue 16): the image, the label volume,
the writers (ngffcore and its peers), the limit, read-back checks and peak memory. Used by
``test_bench_ome_write.py``.

The image is the read suite's volume (``write_suite.volume``: 256 x 2048 x 1024 uint16),
planes 0..127, each 2048-row plane split into two 1024-row halves that become the two
channels: ``(1, 2, 128, 1024, 1024)`` t/c/z/y/x uint16 (512 MiB; small data: 32 planes of the
small volume, ``(1, 2, 32, 512, 1024)``). Every writer writes that numpy array.

Peak memory, each case in a fresh process::

    python benchmarks/ome_write_suite.py --memory convert|lazy4g [--small]

prints ``{"before": …, "peak": …, "delta": …}`` (VmRSS before, VmHWM after, peak reset first).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import local_suite as bc  # noqa: E402
import write_suite as ws  # noqa: E402

MiB = 2**20
GiB = 2**30
OUT_ROOT = HERE / "data" / "ome-write-out"
AXES = "tczyx"
LEVELS = 4
#: every writer does the same work: 2 on y and x per step, z kept (1)
STEP = (1, 1, 1, 2, 2)
FACTORS = [list(STEP)] * (LEVELS - 1)
ZSTD_LEVEL = 3
ZSTD = [{"name": "zstd", "configuration": {"level": ZSTD_LEVEL, "checksum": False}}]
#: Timed rounds per row (no warm-up: a first untimed write is the check run). The python
#: peers take tens of seconds per write, so they get fewer rounds to keep the run short.
ROUNDS = {"ngffcore": 3, "limit": 3, "tensorstore": 2, "ngff-zarr": 1, "ome-zarr": 1}
LAZY_SHAPE = (1, 2, 256, 2048, 2048)  # uint16: 4 GiB


def layout(shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(inner chunks, shards) of level 0: 1x1x32x128x128 in 1x1x64x512x512 (z clipped for
    small data)."""
    z = shape[-3]
    return (1, 1, min(32, z), 128, 128), (1, 1, min(64, z), 512, 512)


def image(small: bool) -> np.ndarray:
    vol = ws.volume(small)
    z = 32 if small else 128
    planes, rows, cols = vol[:z].shape
    out = np.ascontiguousarray(vol[:z].reshape(z, 2, rows // 2, cols).transpose(1, 0, 2, 3))[None]
    ws._VOLUME.clear()  # the 1 GiB read volume is not needed again
    return out


def labels(shape: tuple[int, ...]) -> np.ndarray:
    """A uint32 label volume (t, z, y, x): cells of 13 x 37 x 41 pixels (not aligned with the
    2x2 blocks, so mode decides at cell borders) with ids from a fixed seed, 0 in a quarter."""
    _t, z, y, x = shape
    rng = np.random.default_rng(16)
    table = rng.integers(1, 100_000, size=(z // 13 + 1, y // 37 + 1, x // 41 + 1), dtype=np.uint32)
    table[rng.random(table.shape) < 0.25] = 0
    zi, yi, xi = np.arange(z) // 13, np.arange(y) // 37, np.arange(x) // 41
    return table[zi[:, None, None], yi[None, :, None], xi[None, None, :]][None]


# ---------------------------------------------------------------------------------------------
# Writers: each returns the timed call writing `data` with its pyramid into `path`
# ---------------------------------------------------------------------------------------------


def _abs_factors(dims: str) -> list[dict[str, int]]:
    """Each level's factors from level 0 (the peers' form), z kept."""
    return [{"z": 1, "y": 2**k, "x": 2**k} for k in range(1, LEVELS)]


def ngffcore_writer(path: Path, data: Any, method: str) -> Callable[[], None]:
    ngffcore = bc.import_ngffcore()
    chunks, shards = layout(data.shape)

    def fn() -> None:
        ngffcore.write_image(str(path), data, axes=AXES, chunks=chunks, shards=shards, codecs=ZSTD,
                             factors=FACTORS, levels=LEVELS, downsample=method, overwrite=True)
    return fn


def ngffcore_labels_writer(image_path: Path, data: Any) -> Callable[[], None]:
    ngffcore = bc.import_ngffcore()
    chunks, shards = layout(data.shape[:1] + (1,) + data.shape[1:])
    img = ngffcore.open(str(image_path))

    def fn() -> None:
        ngffcore.write_labels(img, "cells", data, chunks=chunks[:1] + chunks[2:],
                              shards=shards[:1] + shards[2:], codecs=ZSTD, overwrite=True)
    return fn


def ngff_zarr_writer(path: Path, data: Any, method: str, dims: str = AXES) -> Callable[[], None]:
    import ngff_zarr as nz
    import zarr

    # bin shrink is ngff-zarr's block mean; dask-image (its other gaussian) is not installed
    m = {"mean": nz.Methods.DASK_BIN_SHRINK, "gaussian": nz.Methods.ITKWASM_GAUSSIAN,
         "mode": nz.Methods.DASK_IMAGE_MODE}[method]
    chunks, shards = layout(data.shape if len(dims) == 5 else data.shape[:1] + (1,) + data.shape[1:])
    if len(dims) == 4:
        chunks, shards = chunks[:1] + chunks[2:], shards[:1] + shards[2:]
    per_shard = tuple(s // c for s, c in zip(shards, chunks))

    def fn() -> None:
        img = nz.to_ngff_image(data, dims=list(dims))
        ms = nz.to_multiscales(img, scale_factors=_abs_factors(dims), method=m, chunks=chunks)
        nz.to_ngff_zarr(str(path), ms, version="0.5", chunks_per_shard=per_shard,
                        compressors=[zarr.codecs.ZstdCodec(level=ZSTD_LEVEL)])
    return fn


def ome_zarr_writer(path: Path, data: Any, method: str, dims: str = AXES) -> Callable[[], None]:
    import zarr
    from ome_zarr.format import FormatV05
    from ome_zarr.scale import Methods
    from ome_zarr.writer import write_image, write_labels

    chunks, shards = layout(data.shape if len(dims) == 5 else data.shape[:1] + (1,) + data.shape[1:])
    if len(dims) == 4:
        chunks, shards = chunks[:1] + chunks[2:], shards[:1] + shards[2:]
    opts = {"chunks": chunks, "shards": shards, "compressors": [zarr.codecs.ZstdCodec(level=ZSTD_LEVEL)]}

    def fn() -> None:
        group = zarr.open_group(str(path), mode="w", zarr_format=3)
        if method == "mean":
            write_image(data, group, scale_factors=_abs_factors(dims), method=Methods.LOCAL_MEAN,
                        fmt=FormatV05(), axes=dims, storage_options=opts)
        else:
            # no mode in ome-zarr-py: nearest, its recommended label method
            write_labels(data, group, name="cells", scaler=None, scale_factors=_abs_factors(dims),
                         method=Methods.NEAREST, fmt=FormatV05(), axes=dims, storage_options=opts)
    return fn


def _ts_spec(path: Path, shape: tuple[int, ...], dtype: np.dtype, chunks: tuple[int, ...],
             shards: tuple[int, ...], dims: str) -> dict[str, Any]:
    shards = tuple(min(s, n) if n % s else s for s, n in zip(shards, shape))
    shards = tuple(-(-min(s, n) // c) * c for s, c, n in zip(shards, chunks, shape))
    return {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)},
            "metadata": {"shape": list(shape), "data_type": dtype.name, "fill_value": 0,
                         "dimension_names": list(dims),
                         "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(shards)}},
                         "chunk_key_encoding": {"name": "default"},
                         "codecs": [{"name": "sharding_indexed", "configuration": {
                             "chunk_shape": list(chunks), "codecs": [ws.V3_INNER_CODECS[0], {
                                 "name": "zstd", "configuration": {"level": ZSTD_LEVEL, "checksum": False}}],
                             "index_codecs": ws.V3_INDEX_CODECS, "index_location": "end"}}]}}


def ts_writer(path: Path, data: Any, method: str, dims: str = AXES, source: Any = None) -> Callable[[], None]:
    """Level 0 written from ``data`` (or copied from ``source``'s level 0, (c)), then each level
    ``ts.downsample(previous level as written, STEP, method)`` (or copied from ``source``'s
    level) into its own sharded zarr3 array; then the OME group document."""
    import tensorstore as ts

    step = STEP if len(dims) == 5 else STEP[:1] + STEP[2:]
    full = data.shape if len(dims) == 5 else data.shape[:1] + (1,) + data.shape[1:]
    chunks, shards = layout(full)
    if len(dims) == 4:
        chunks, shards = chunks[:1] + chunks[2:], shards[:1] + shards[2:]

    def fn() -> None:
        ctx = bc.ts_context()
        shape, prev = tuple(data.shape), None
        for k in range(LEVELS):
            if k:
                shape = tuple(-(-n // f) for n, f in zip(shape, step))
            c = tuple(min(a, n) for a, n in zip(chunks, shape))
            spec = _ts_spec(path / str(k), shape, np.dtype(data.dtype), c, shards, dims)
            arr = ts.open(spec, create=True, delete_existing=True, context=ctx).result()
            if source is not None:
                src = ts.open({"driver": "zarr", "kvstore": {"driver": "file", "path": str(source / str(k))}},
                              read=True, context=ctx).result()
                arr.write(src).result()
            elif k == 0:
                arr.write(data).result()
            else:
                arr.write(ts.downsample(prev, list(step), method)).result()
            prev = arr
        (path / "zarr.json").write_text(json.dumps(group_json(dims, method)))
    return fn


def group_json(dims: str, method: str) -> dict[str, Any]:
    axes = [{"name": d, "type": "time" if d == "t" else "channel" if d == "c" else "space"} for d in dims]
    step = STEP if len(dims) == 5 else STEP[:1] + STEP[2:]
    datasets = [{"path": str(k), "coordinateTransformations": [
        {"type": "scale", "scale": [float(f**k) for f in step]}]} for k in range(LEVELS)]
    return {"zarr_format": 3, "node_type": "group", "attributes": {"ome": {
        "version": "0.5", "multiscales": [{"axes": axes, "datasets": datasets, "type": method}]}}}


# ---------------------------------------------------------------------------------------------
# (c) conversion of a 0.4 image
# ---------------------------------------------------------------------------------------------


def write_v04_source(path: Path, data: np.ndarray) -> None:
    """The 0.4 (Zarr v2) source of (c): ngffcore's write, (a)'s pyramid, chunks 1x1x64x256x256
    (z clipped), ngffcore's default v2 compressor."""
    ngffcore = bc.import_ngffcore()
    ngffcore.write_image(str(path), data, axes=AXES, chunks=(1, 1, min(64, data.shape[2]), 256, 256),
                         factors=FACTORS, levels=LEVELS, version="0.4", overwrite=True)


def converter(src: Path, dst: Path, shape: tuple[int, ...]) -> Callable[[], None]:
    from ngffcore.ome.convert import convert

    chunks, shards = layout(shape)

    def fn() -> None:
        convert(str(src), str(dst), version="0.5", chunks=chunks, shards=shards,
                compressor=f"zstd:{ZSTD_LEVEL}", overwrite=True)
    return fn


def ngff_zarr_converter(src: Path, dst: Path, shape: tuple[int, ...]) -> Callable[[], None]:
    import ngff_zarr as nz
    import zarr

    chunks, shards = layout(shape)

    def fn() -> None:
        ms = nz.from_ngff_zarr(str(src))
        for img in ms.images:
            img.data = img.data.rechunk(tuple(min(c, n) for c, n in zip(chunks, img.data.shape)))
        nz.to_ngff_zarr(str(dst), ms, version="0.5",
                        chunks_per_shard=tuple(s // c for s, c in zip(shards, chunks)),
                        compressors=[zarr.codecs.ZstdCodec(level=ZSTD_LEVEL)])
    return fn


def ome_zarr_converter(src: Path, dst: Path, shape: tuple[int, ...]) -> Callable[[], None]:
    import dask.array as da
    import zarr
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_multiscale

    chunks, shards = layout(shape)
    opts = {"chunks": chunks, "shards": shards, "compressors": [zarr.codecs.ZstdCodec(level=ZSTD_LEVEL)]}

    def fn() -> None:
        pyramid = [da.from_zarr(zarr.open_array(str(src / str(k)), mode="r")) for k in range(LEVELS)]
        group = zarr.open_group(str(dst), mode="w", zarr_format=3)
        write_multiscale(pyramid, group, fmt=FormatV05(), axes=AXES, storage_options=opts)
    return fn


# ---------------------------------------------------------------------------------------------
# Limit: downsample each level from the previous one in memory + encode every level
# ---------------------------------------------------------------------------------------------


def limit(ref_path: Path, data: np.ndarray, method: str, decode_from: Path | None = None) -> Callable[[], Any]:
    """``_core.downsample`` of each level from the previous one (whole levels, in memory) plus
    ``_core.encode_batch`` of every level's inner chunks with the pipelines of ngffcore's own
    output at ``ref_path``. (c) (``decode_from``): instead of downsampling, each source level
    is read whole with ngffcore (decode), then encoded."""
    from ngffcore import _core
    from ngffcore.ome.pyramid import method_id

    ngffcore = bc.import_ngffcore()
    step = STEP if data.ndim == 5 else STEP[:1] + STEP[2:]
    arrays = [ngffcore.open_array(str(ref_path / str(k))) for k in range(LEVELS)]
    # (c) decodes every level into buffers of its own (the image itself is not written to)
    levels = ([np.empty(a.shape, data.dtype) for a in arrays] if decode_from is not None
              else [data] + [np.empty(a.shape, data.dtype) for a in arrays[1:]])
    encoders = [ws.encoder(a, lv) for a, lv in zip(arrays, levels)]
    mid = method_id(method)
    sources = ([ngffcore.open_array(str(decode_from / str(k))) for k in range(LEVELS)]
               if decode_from is not None else [])

    def fn() -> Any:
        for k in range(1, LEVELS):
            if decode_from is None:
                src = levels[k - 1]
                _core.downsample(mid, src, (0,) * src.ndim, src.shape, step, levels[k], (0,) * src.ndim)
        for src_arr, out in zip(sources, levels):
            src_arr.read(..., out=out)
        return [e() for e in encoders]
    return fn


# ---------------------------------------------------------------------------------------------
# Checks: zarr-python reads levels back; numpy references on a few boxes
# ---------------------------------------------------------------------------------------------


def _block_reduce(a: np.ndarray, step: tuple[int, ...], method: str) -> np.ndarray:
    """One level from the previous (numpy): mean = exact sum, rounded half to even; mode =
    most frequent, smallest on ties. Partial edge blocks are not used (boxes are aligned)."""
    shape = [n // f for n, f in zip(a.shape, step)]
    a = a[tuple(slice(0, n * f) for n, f in zip(shape, step))]
    split = a.reshape([x for n, f in zip(shape, step) for x in (n, f)])
    blocks = split.transpose(list(range(0, 2 * a.ndim, 2)) + list(range(1, 2 * a.ndim, 2)))
    blocks = blocks.reshape(shape + [-1])
    if method == "mean":
        return np.rint(blocks.sum(axis=-1, dtype=np.int64) / blocks.shape[-1]).astype(a.dtype)
    srt = np.sort(blocks.reshape(-1, blocks.shape[-1]), axis=-1)
    counts = (srt[:, :, None] == srt[:, None, :]).sum(axis=-1)
    # sorted ascending: argmax takes the first (smallest) of the most frequent
    return srt[np.arange(len(srt)), np.argmax(counts, axis=-1)].reshape(shape)


def reference_box(data: np.ndarray, k: int, box: tuple[slice, ...], method: str) -> np.ndarray:
    step = STEP if data.ndim == 5 else STEP[:1] + STEP[2:]
    base = tuple(slice(s.start * f**k, s.stop * f**k) for s, f in zip(box, step))
    out = np.asarray(data[base])
    for _ in range(k):
        out = _block_reduce(out, step, method)
    return out


def check_levels(path: Path, data: np.ndarray, method: str, tolerance: int, small_box: bool = False
                 ) -> str | None:
    """zarr-python reads each level of the image at ``path``: level 0 must equal ``data``
    (spot boxes), levels 1.. must have ngffcore's shapes and, for mean/mode, be within
    ``tolerance`` x level of the numpy reference on three aligned boxes (gaussian, nearest:
    shapes only)."""
    zarr = bc.configure_zarr()
    step = STEP if data.ndim == 5 else STEP[:1] + STEP[2:]
    shape = data.shape
    paths = level_paths(path)
    if len(paths) != LEVELS:
        return f"{len(paths)} levels in the multiscales, expected {LEVELS}"
    for k in range(LEVELS):
        z = zarr.open_array(str(path / paths[k]), mode="r")
        if k == 0:
            err = ws.check_with_zarr(str(path / paths[0]), lambda b: data[b], ws.spot_boxes(shape, layout(
                shape if data.ndim == 5 else shape[:1] + (1,) + shape[1:])[0][-data.ndim:], 2))
            if err:
                return f"level 0: {err}"
            continue
        shape = tuple(-(-n // f) for n, f in zip(shape, step))
        if tuple(z.shape) != shape:
            return f"level {k} has shape {z.shape}, expected {shape}"
        if method in ("gaussian", "nearest"):
            continue
        edge = (4, 16, 16) if small_box else (8, 64, 64)
        lead = data.ndim - 3
        for i, corner in enumerate(((0, 0, 0), (shape[-3] // 2, shape[-2] // 3, shape[-1] // 2),
                                    (shape[-3] - edge[0], shape[-2] - edge[1], shape[-1] - edge[2]))):
            ch = 0 if i == 0 else shape[lead - 1] - 1  # first and last channel (or t)
            box = tuple(slice(0, 1) for _ in range(lead - 1)) + (slice(ch, ch + 1),) + \
                tuple(slice(max(0, c), max(0, c) + e) for c, e in zip(corner, edge))
            got, want = np.asarray(z[box]), reference_box(data, k, box, method)
            diff = int(np.abs(got.astype(np.int64) - want.astype(np.int64)).max()) if got.shape == want.shape else -1
            if diff < 0 or diff > tolerance * k:
                return f"level {k} box {box}: max |diff| {diff} vs the numpy {method} (allowed {tolerance * k})"
    return None


def level_paths(path: Path) -> list[str]:
    """The dataset paths of the first multiscale of the 0.5 image at ``path`` (writers name
    their levels differently)."""
    attrs = json.loads((path / "zarr.json").read_text())["attributes"]["ome"]
    return [d["path"] for d in attrs["multiscales"][0]["datasets"]]


# ---------------------------------------------------------------------------------------------
# Peak memory (fresh process)
# ---------------------------------------------------------------------------------------------


class LazySource:
    """A 4 GiB uint16 image generated on demand (never held): smooth ramps plus hashed noise."""

    shape = LAZY_SHAPE
    dtype = np.dtype("uint16")
    ndim = 5

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        # plane by plane, so the generator's own temporaries stay a few MiB (they count in
        # the peak being measured)
        t, c, z, y, x = (np.arange(*s.indices(n)) for s, n in zip(key, self.shape))
        yy, xx = y[:, None].astype(np.uint32), x[None, :].astype(np.uint32)
        plane = (yy // 8) * 5 + (xx // 8) * 7 + ((xx * 2654435761 + yy * 40503) >> 7) % 64
        out = np.empty((len(t), len(c), len(z), len(y), len(x)), self.dtype)
        for i, tv in enumerate(t):
            for j, cv in enumerate(c):
                for k, zv in enumerate(z):
                    out[i, j, k] = (plane + np.uint32(cv * 700 + zv * 3 + tv)) % 4096
        return out


def _memory_child(case: str, small: bool) -> dict[str, Any]:
    import memory

    OUT_ROOT.mkdir(parents=True, exist_ok=True)
    if case == "convert":
        src, dst = OUT_ROOT / "src-v04.ome.zarr", OUT_ROOT / "memory-convert.ome.zarr"
        if not (src / ".zattrs").exists():
            raise SystemExit(f"{src} missing: the benchmark writes it first")
        fn, in_nbytes = converter(src, dst, image_shape(small)), 0
    else:
        dst = OUT_ROOT / "memory-lazy.ome.zarr"
        fn = ngffcore_writer(dst, LazySource(), "mean")
        in_nbytes = int(np.prod(LAZY_SHAPE)) * 2
    gc.collect()
    before = memory._vm_rss()
    reset = memory._reset_peak()
    fn()
    peak = memory._status_bytes("VmHWM")
    shutil.rmtree(dst, ignore_errors=True)
    return {"case": case, "before": before, "peak": peak, "delta": peak - before, "peak_reset": reset,
            "source_nbytes": in_nbytes}


def image_shape(small: bool) -> tuple[int, ...]:
    return (1, 2, 32, 512, 1024) if small else (1, 2, 128, 1024, 1024)


def measure_memory(case: str, small: bool, timeout: float = 900) -> dict[str, Any]:
    import subprocess

    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory", case] + (["--small"] if small else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        return {"case": case, "error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    import make_data

    ap = argparse.ArgumentParser(description="OME-Zarr write benchmark helpers")
    ap.add_argument("--memory", choices=("convert", "lazy4g"), required=True)
    ap.add_argument("--small", action="store_true")
    args = ap.parse_args(argv)
    print(json.dumps(_memory_child(args.memory, args.small or make_data.env_small())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
