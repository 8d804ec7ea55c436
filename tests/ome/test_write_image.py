"""write_image / write_labels (issue 16): pyramids whose every level equals a numpy (mean,
nearest, mode) or scipy (gaussian) reference, read back by ngffcore, zarr-python,
ome-zarr-py and ngff-zarr, valid by ngffcore.validate and ome-zarr-models; bad input raises
before anything is written."""

from __future__ import annotations

import collections
import itertools
import os
import warnings
from fractions import Fraction

import numpy as np
import pytest

import ngffcore
from ngffcore.ome.build import parse_axes, plan_pyramid
from ngffcore.store.memory import MemoryStore

zarr = pytest.importorskip("zarr")
_core = ngffcore._core
needs_kernels = pytest.mark.skipif(not hasattr(_core, "downsample"),
                                   reason="native downsampling kernels not built")


# -- reference models ---------------------------------------------------------------------
def _blocks(a: np.ndarray, f: tuple[int, ...]):
    out_shape = tuple(-(-n // k) for n, k in zip(a.shape, f))
    for o in itertools.product(*(range(n) for n in out_shape)):
        yield o, a[tuple(slice(i * k, (i + 1) * k) for i, k in zip(o, f))]


def ref_level(a: np.ndarray, f: tuple[int, ...], method: str) -> np.ndarray:
    out = np.empty(tuple(-(-n // k) for n, k in zip(a.shape, f)), a.dtype)
    if method == "gaussian":
        from scipy import ndimage

        sigma = [k / 2 if k > 1 else 0 for k in f]
        g = ndimage.gaussian_filter(a.astype(np.float64), sigma=sigma, mode="reflect",
                                    truncate=4.0)[tuple(slice(None, None, k) for k in f)]
        if a.dtype.kind in "iu":
            info = np.iinfo(a.dtype)
            return np.clip(np.round(g), info.min, info.max).astype(a.dtype)
        return g.astype(a.dtype)
    for o, block in _blocks(a, f):
        flat = block.ravel()
        if method == "nearest":
            out[o] = flat[0]
        elif method == "mode":
            counts = collections.Counter(flat.tolist())
            best = max(counts.values())
            out[o] = min(v for v, c in counts.items() if c == best)
        elif a.dtype.kind in "iub":
            out[o] = round(Fraction(sum(int(v) for v in flat), flat.size))
        else:
            out[o] = np.float64(flat.astype(np.float64).mean()).astype(a.dtype)
    return out


def ref_pyramid(a: np.ndarray, factors, method: str) -> list[np.ndarray]:
    levels = [a]
    for f in factors:
        levels.append(ref_level(levels[-1], tuple(f), method))
    return levels


# -- plans and bad input (no kernels needed) -------------------------------------------------
def test_default_pyramid_plan():
    axes = parse_axes("tczyx", 5)
    p = plan_pyramid((1, 2, 40, 1100, 900), axes, scale=[1, 1, 2.0, 0.5, 0.5])
    # z (2.0) joins once y's pixel size after the step reaches it: at the second step
    assert p.shapes == ((1, 2, 40, 1100, 900), (1, 2, 40, 550, 450), (1, 2, 20, 275, 225),
                        (1, 2, 10, 138, 113))
    assert p.factors == ((1, 1, 1, 2, 2), (1, 1, 2, 2, 2), (1, 1, 2, 2, 2))
    assert p.scales[3] == (1, 1, 8.0, 4.0, 4.0)
    # pixel centres stay put: translation moves by (f - 1) / 2 × the previous pixel size
    assert p.translations[1] == (0, 0, 0, 0.25, 0.25)
    assert p.translations[3] == (0, 0, 1.0 + 2.0, 0.25 + 0.5 + 1.0, 1.75)


def test_explicit_factors_and_levels():
    axes = parse_axes(["y", "x"], 2)
    p = plan_pyramid((10, 9), axes, factors=[[3, 1], [1, 4]])
    assert p.shapes == ((10, 9), (4, 9), (4, 3))
    assert plan_pyramid((10, 9), axes, levels=1).shapes == ((10, 9),)


BAD = [
    (dict(axes="cyq"), "unknown axis"),
    (dict(axes="yx"), "axes"),
    (dict(axes="cyx", factors=[[1, 2.5, 2]]), "factor"),
    (dict(axes="cyx", factors=[[1, 0, 2]]), "factor"),
    (dict(axes="cyx", downsample="median"), "downsample"),
    (dict(axes="cyx", version="0.6"), "version"),
    (dict(axes="cyx", version="0.4", shards=(1, 8, 8)), "shards"),
    (dict(axes="cyx", chunks=(1, 0, 8)), "chunks"),
    (dict(axes="cyx", scale=[1, 1]), "scale"),
    (dict(axes=[{"name": "c", "type": "channel"}, "y", "y"]), "repeat"),
    (dict(axes="cyx", channels=[{"label": "a"}]), "channels"),
]


@pytest.mark.parametrize("kwargs,match", BAD)
def test_bad_input_writes_nothing(tmp_path, kwargs, match):
    path = tmp_path / "img.zarr"
    data = np.zeros((2, 16, 16), np.uint16)
    with pytest.raises(ngffcore.ArgumentError, match=match):
        ngffcore.write_image(str(path), data, **kwargs)
    assert not path.exists() or not any(path.rglob("*"))


def test_mode_needs_integer_data(tmp_path):
    with pytest.raises(ngffcore.ArgumentError, match="mode"):
        ngffcore.write_image(str(tmp_path / "a"), np.zeros((4, 4), np.float32), axes="yx",
                             downsample="mode")


def test_destination_holding_anything_is_refused(tmp_path):
    path = tmp_path / "img.zarr"
    path.mkdir()
    ngffcore.write_image(str(path), np.zeros((8, 8), np.uint8), axes="yx", levels=1)  # empty dir
    before = sorted(p.name for p in path.rglob("*"))
    with pytest.raises(ngffcore.ExistsError):
        ngffcore.write_image(str(path), np.ones((8, 8), np.uint8), axes="yx", levels=1)
    assert sorted(p.name for p in path.rglob("*")) == before
    img = ngffcore.write_image(str(path), np.ones((8, 8), np.uint8), axes="yx", levels=1,
                               overwrite=True)
    assert (img.levels[0][...] == 1).all()


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_single_level_metadata(tmp_path, version):
    path = str(tmp_path / "img.zarr")
    data = np.arange(2 * 30 * 40, dtype=np.uint16).reshape(2, 30, 40)
    img = ngffcore.write_image(path, data, axes="cyx", levels=1, scale=[1, 0.5, 0.25],
                               translation=[0, 10, 20], units={"y": "micrometer",
                                                               "x": "micrometer"},
                               name="cells", version=version,
                               channels=[{"label": "DAPI", "color": "0000FF"},
                                         {"label": "GFP"}])
    assert img.version == version and img.name == "cells"
    assert [a.unit for a in img.axes] == [None, "micrometer", "micrometer"]
    assert img.levels[0].scale == (1, 0.5, 0.25)
    assert img.levels[0].translation == (0, 10, 20)
    np.testing.assert_array_equal(img.levels[0][...], data)
    assert ngffcore.validate(path) == []
    chans = img.channels
    assert [c.label for c in chans] == ["DAPI", "GFP"]
    assert chans[0].window.start == 0 and chans[0].window.end == 1199
    assert chans[1].window.start == 1200 and chans[1].window.end == 2399
    np.testing.assert_array_equal(zarr.open_array(os.path.join(path, "0"), mode="r")[...], data)


def test_memory_store_and_array_like_source():
    store = MemoryStore()
    src = np.arange(64 * 48, dtype=np.int32).reshape(64, 48)

    class Lazy:  # shape, dtype and numpy __getitem__ only
        shape, dtype = src.shape, src.dtype

        def __getitem__(self, key):
            return src[key]

    img = ngffcore.write_image(store, Lazy(), axes="yx", levels=1, chunks=(16, 16))
    np.testing.assert_array_equal(img.levels[0][...], src)


# -- pyramids (native kernels) ---------------------------------------------------------------
DTYPES = ["uint8", "int16", "uint16", "int32", "uint64", "float32", "float64"]


@needs_kernels
@pytest.mark.parametrize("method", ["mean", "nearest", "mode", "gaussian"])
@pytest.mark.parametrize("version,sharded", [("0.5", True), ("0.5", False), ("0.4", False)])
def test_pyramid_levels_equal_reference(tmp_path, method, version, sharded):
    rng = np.random.default_rng(1)
    dtype = "uint16" if method != "mode" else "uint8"
    data = rng.integers(0, 40 if method == "mode" else 60000, size=(2, 23, 70, 53)).astype(dtype)
    path = str(tmp_path / "img.zarr")
    factors = [[1, 1, 2, 2], [1, 2, 2, 3], [1, 1, 2, 2]]
    img = ngffcore.write_image(path, data, axes="czyx", factors=factors, downsample=method,
                               chunks=(1, 4, 16, 8), shards=(1, 8, 32, 16) if sharded else None,
                               version=version)
    expected = ref_pyramid(data, factors, method)
    assert [lvl.shape for lvl in img.levels] == [e.shape for e in expected]
    for lvl, exp in zip(img.levels, expected):
        np.testing.assert_array_equal(lvl[...], exp, err_msg=f"level {lvl.index} ({method})")
    assert ngffcore.validate(path) == []
    for k, exp in enumerate(expected):  # zarr-python reads the pixels
        np.testing.assert_array_equal(zarr.open_array(os.path.join(path, str(k)), mode="r")[...],
                                      exp)
    _peers_agree(path, version, img)


class _CountingSource:
    """A numpy array that counts how often each pixel is read through ``__getitem__``."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype = data, data.shape, data.dtype
        self.reads = np.zeros(data.shape, dtype=np.int32)

    def __getitem__(self, key):
        self.reads[key] += 1
        return self.data[key]


@needs_kernels
@pytest.mark.parametrize("method", ["mean", "nearest", "mode", "gaussian"])
@pytest.mark.parametrize("shape,chunks,shards,factors", [
    ((2, 23, 70, 53), (1, 4, 16, 8), (1, 8, 32, 16), [[1, 1, 2, 2], [1, 2, 2, 3], [1, 1, 2, 2]]),
    ((1, 9, 130, 97), (1, 3, 8, 8), None, [[1, 2, 2, 2], [1, 1, 3, 2], [1, 2, 2, 2]]),
    ((77, 301), (8, 16), (16, 32), [[2, 2], [2, 2], [2, 2], [2, 2]]),
])
def test_base_read_exactly_once(tmp_path, method, shape, chunks, shards, factors):
    """Every base pixel is read from the source exactly once, gaussian halos included, and
    the levels still equal the whole-image reference."""
    rng = np.random.default_rng(4)
    data = rng.integers(0, 50 if method == "mode" else 60000, size=shape).astype(
        "uint8" if method == "mode" else "uint16")
    source = _CountingSource(data)
    axes = "czyx"[-len(shape):]
    img = ngffcore.write_image(str(tmp_path / "img.zarr"), source, axes=axes, factors=factors,
                               downsample=method, chunks=chunks, shards=shards)
    assert source.reads.min() == 1 and source.reads.max() == 1, (
        f"{method}: pixels read {np.bincount(source.reads.ravel())} times")
    for lvl, exp in zip(img.levels, ref_pyramid(data, factors, method)):
        np.testing.assert_array_equal(lvl[...], exp, err_msg=f"level {lvl.index} ({method})")


def _peers_agree(path: str, version: str, img) -> None:
    """ome-zarr-models validates the image; ngff-zarr reads the same levels, axes and
    transforms."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if version == "0.5":
            from ome_zarr_models.v05.image import Image as ModelImage
        else:
            from ome_zarr_models.v04.image import Image as ModelImage
        ModelImage.from_zarr(zarr.open_group(path, mode="r"))
        import ngff_zarr

        ms = ngff_zarr.from_ngff_zarr(path)
    assert len(ms.images) == len(img.levels)
    for level, got in zip(img.levels, ms.images):
        assert tuple(got.data.shape) == level.shape
        names = [a.name for a in img.axes]
        assert list(got.dims) == names
        for d, name in enumerate(names):
            assert got.scale[name] == pytest.approx(level.scale[d])
            assert got.translation[name] == pytest.approx(level.translation[d])


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
def test_mean_every_dtype_odd_sizes(dtype):
    rng = np.random.default_rng(2)
    if np.dtype(dtype).kind == "f":
        data = rng.standard_normal((3, 37, 41)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, size=(3, 37, 41), endpoint=True, dtype=dtype)
    img = ngffcore.write_image(MemoryStore(), data, axes="zyx", factors=[[1, 2, 2], [2, 3, 2]],
                               chunks=(1, 8, 8))
    for lvl, exp in zip(img.levels, ref_pyramid(data, [[1, 2, 2], [2, 3, 2]], "mean")):
        if data.dtype == np.float64:  # the sum's order is not numpy's: within rounding
            np.testing.assert_allclose(lvl[...], exp, rtol=1e-13, atol=1e-15)
        else:
            np.testing.assert_array_equal(lvl[...], exp)


@needs_kernels
def test_peers_read_the_pyramid(tmp_path):
    path = str(tmp_path / "img.zarr")
    data = np.random.default_rng(3).integers(0, 1000, size=(2, 8, 300, 260)).astype(np.uint16)
    ngffcore.write_image(path, data, axes="czyx", scale=[1, 2.0, 0.5, 0.5], version="0.4",
                         units={"z": "micrometer", "y": "micrometer", "x": "micrometer"})
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    nodes = list(Reader(parse_url(path))())
    pyramid = nodes[0].data
    assert len(pyramid) == 2
    np.testing.assert_array_equal(np.asarray(pyramid[0]), data)
    import ngff_zarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ms = ngff_zarr.from_ngff_zarr(path)
    assert ms.images[1].scale["y"] == 1.0 and ms.images[1].translation["y"] == 0.25
    np.testing.assert_array_equal(np.asarray(ms.images[0].data), data)


@needs_kernels
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_labels_beside_the_image(tmp_path, version):
    path = str(tmp_path / "img.zarr")
    rng = np.random.default_rng(4)
    data = rng.integers(0, 1000, size=(2, 90, 70)).astype(np.uint16)
    img = ngffcore.write_image(path, data, axes="cyx", levels=3, chunks=(1, 32, 32),
                               version=version)
    labels = np.zeros((90, 70), np.uint32)
    labels[10:40, 5:30] = 7
    labels[50:85, 20:66] = 12
    labels[::7, ::5] = 3
    lab = ngffcore.write_labels(img, "cells", labels, colors={7: [255, 0, 0, 255]},
                                properties=[{"label-value": 7, "kind": "nucleus"}])
    assert lab.colors[7] == (255, 0, 0, 255)
    assert [lvl.shape for lvl in lab.levels] == [(90, 70), (45, 35), (23, 18)]
    base_values = set(np.unique(labels).tolist())
    for lvl, exp in zip(lab.levels, ref_pyramid(labels, [[2, 2], [2, 2]], "mode")):
        got = lvl[...]
        np.testing.assert_array_equal(got, exp)
        assert set(np.unique(got).tolist()) <= base_values
    ngffcore.write_labels(path, "more", labels)
    again = ngffcore.open(path)
    assert sorted(again.labels) == ["cells", "more"]
    with pytest.raises(ngffcore.ExistsError):
        ngffcore.write_labels(again, "cells", labels)
    assert ngffcore.validate(path) == []


LAZY_WRITER = r"""
import resource, sys
import numpy as np
cap = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
import ngffcore

class Lazy:
    '''A source of 4x the address-space cap, generated on read: nothing holds it whole.'''
    shape = (64, 8192, 8192)
    dtype = np.dtype(np.uint8)

    def __getitem__(self, key):
        z, y, x = key
        zz = np.arange(z.start, z.stop, dtype=np.uint32)[:, None, None]
        yy = np.arange(y.start, y.stop, dtype=np.uint32)[None, :, None]
        xx = np.arange(x.start, x.stop, dtype=np.uint32)[None, None, :]
        return ((zz * 7 + yy * 3 + xx) % 251).astype(np.uint8)

img = ngffcore.write_image(sys.argv[1], Lazy(), axes="zyx", chunks=(16, 512, 512),
                           codecs=[{"name": "zstd", "configuration": {"level": 1}}],
                           factors=[[1, 2, 2], [1, 2, 2]], downsample="nearest")
probe = img.levels[0][40:41, 8000:8010, 100:110]
expected = Lazy()[slice(40, 41), slice(8000, 8010), slice(100, 110)]
assert (probe == expected).all()
top = img.levels[2][5, :4, :4]  # nearest: level 2 pixel (i, j) is base pixel (4i, 4j)
i, j = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
assert (top == (5 * 7 + 4 * i * 3 + 4 * j) % 251).all()
print("ok", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@needs_kernels
def test_source_four_times_the_memory_cap(tmp_path):
    """A lazily generated 4 GiB source written with a 1 GiB address-space cap (RLIMIT_AS in
    a subprocess): the pass streams, it never holds the image."""
    import subprocess
    import sys

    cap = 1 << 30
    script = tmp_path / "lazy.py"
    script.write_text(LAZY_WRITER)
    env = dict(os.environ, MALLOC_ARENA_MAX="2", OMP_NUM_THREADS="2")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "big.zarr"), str(cap)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")


@needs_kernels
def test_image_and_labels_on_s3(moto_s3):
    """Any writable store: an image with its pyramid, then labels appended to the remote
    image; read back through S3."""
    _endpoint, client, options = moto_s3
    client.create_bucket(Bucket="images")
    url = "s3://images/cells.ome.zarr"
    data = np.random.default_rng(6).integers(0, 500, size=(2, 70, 60)).astype(np.uint16)
    img = ngffcore.write_image(url, data, axes="cyx", levels=2, chunks=(1, 32, 32),
                               shards=(1, 64, 64), **options)
    labels = (data[0] > 250).astype(np.uint8)
    ngffcore.write_labels(img, "mask", labels)
    again = ngffcore.open(url, **options)
    np.testing.assert_array_equal(again.levels[1][...], ref_level(data, (1, 2, 2), "mean"))
    np.testing.assert_array_equal(again.labels["mask"].levels[0][...], labels)
    assert ngffcore.validate(url, **options) == []


@needs_kernels
def test_dask_source(tmp_path):
    da = pytest.importorskip("dask.array")
    base = np.random.default_rng(7).integers(0, 255, size=(40, 50, 30)).astype(np.uint8)
    src = da.from_array(base, chunks=(7, 11, 13))
    img = ngffcore.write_image(str(tmp_path / "d.zarr"), src, axes="zyx",
                               factors=[[2, 2, 2]], downsample="nearest", chunks=(8, 16, 16))
    np.testing.assert_array_equal(img.levels[0][...], base)
    np.testing.assert_array_equal(img.levels[1][...], base[::2, ::2, ::2])
