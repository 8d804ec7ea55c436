"""Image.render_tile / render_region: pixels as zarr-python reads them, composited with the
formula of test_render.reference (float64 NumPy), with omero's windows, colours and active
flags by default."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import zarr

import ngffcore
from test_render import reference


def _write(root, axes: str, shape, chunks, omero_channels):
    """A one-level 0.4 image written with zarr-python and hand-written metadata."""
    rng = np.random.default_rng(3)
    data = rng.integers(0, 4000, shape, dtype=np.uint16)
    path = root / f"img_{axes}.zarr"
    zarr.create_array(str(path / "0"), data=data, chunks=chunks, zarr_format=2)
    types = {"c": "channel", "y": "space", "x": "space"}
    attrs = {"multiscales": [{"version": "0.4", "axes": [{"name": a, "type": types[a]}
                                                          for a in axes],
                              "datasets": [{"path": "0", "coordinateTransformations": [
                                  {"type": "scale", "scale": [1.0] * len(axes)}]}]}],
             "omero": {"channels": omero_channels}}
    (path / ".zattrs").write_text(json.dumps(attrs))
    (path / ".zgroup").write_text('{"zarr_format": 2}')
    return path, data


CHANNELS = [
    {"label": "a", "color": "FF0000", "active": True,
     "window": {"start": 100, "end": 3000, "min": 0, "max": 65535}},
    {"label": "b", "color": "00FF80", "active": False,
     "window": {"start": 0, "end": 1000, "min": 0, "max": 65535}},
    {"label": "c", "color": "2040FF", "active": True, "inverted": True,
     "window": {"start": 500, "end": 3500, "min": 0, "max": 65535}},
]


def _expected(pixels_cyx, chans):
    windows = [(CHANNELS[c]["window"]["start"], CHANNELS[c]["window"]["end"]) for c in chans]
    colors = [CHANNELS[c]["color"] for c in chans]
    inverted = [bool(CHANNELS[c].get("inverted", False)) for c in chans]
    return reference(pixels_cyx[chans], 0, windows, colors, inverted)


@pytest.fixture(scope="module")
def planar(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("r"), "cyx", (3, 300, 500), (1, 128, 128), CHANNELS)


@pytest.fixture(scope="module")
def interleaved(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("r"), "yxc", (300, 500, 3), (128, 128, 3), CHANNELS)


def test_render_tile_uses_omero_active_channels(planar):
    path, data = planar
    img = ngffcore.open(path)
    rgba = img.render_tile(0, 1, 1, size=256)
    np.testing.assert_array_equal(rgba, _expected(data[:, 256:300, 256:500], [0, 2]))


def test_render_tile_interleaved_rgb(interleaved):
    path, data = interleaved
    img = ngffcore.open(path)
    rgba = img.render_tile(0, 0, 1, size=256, channels=[2, 1, 0])
    np.testing.assert_array_equal(
        rgba, _expected(np.moveaxis(data, -1, 0)[:, 0:256, 256:500], [2, 1, 0]))


def test_style_overrides_and_gamma(planar):
    path, data = planar
    img = ngffcore.open(path)
    rgba = img.render_tile(0, 0, 0, size=64, channels=[1], windows=[(0, 4000)],
                           colors=["FFFFFF"], inverted=[False], gamma=2.0)
    np.testing.assert_array_equal(
        rgba, reference(data[[1], 0:64, 0:64], 0, [(0, 4000)], ["FFFFFF"], [False], 2.0))


def test_render_region_matches_tile_box(planar):
    path, data = planar
    img = ngffcore.open(path)
    rgba = img.render_region({"y": (10.0, 90.0), "x": (20.5, 200.0)}, level=0)
    # pixel centres at i (scale 1, no translation): [10, 90) and [21, 200)
    np.testing.assert_array_equal(rgba, _expected(data[:, 10:90, 21:200], [0, 2]))
    got = asyncio.run(img.render_region_async({"y": (10.0, 90.0), "x": (20.5, 200.0)},
                                              level=0))
    np.testing.assert_array_equal(got, rgba)


def test_render_tile_async_and_cache(planar):
    path, data = planar
    img = ngffcore.open(path)
    first = asyncio.run(img.render_tile_async(0, 1, 0, size=128))
    misses = img.cache.stats().misses
    again = img.render_tile(0, 1, 0, size=128)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, _expected(data[:, 128:256, 0:128], [0, 2]))
    assert img.cache.stats().misses == misses  # the repeat came from the cache
