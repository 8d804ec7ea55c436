"""Physical regions → pixel boxes, and resolution → level (docs/ome.md).

Expected boxes are literal, worked out by hand from the documented rule: pixel ``i`` of a level
has its centre at ``t + i*s`` and spans ``[t + (i-½)s, t + (i+½)s)``; ``[a, b)`` selects the
pixels whose centres lie in it (``start = ⌈(a−t)/s⌉``, ``stop = ⌈(b−t)/s⌉``, clipped to
``[0, n)``); an interval holding no centre selects the pixel whose span holds its midpoint;
a scalar selects the pixel whose span holds it. Pixel data are compared with zarr-python's
read of the expected box.

The main subject is the ngff-zarr image (zyx, written in 0.4 and 0.5):

=====  =======================  ======================  =======================
level  z (n, s, t)              y (n, s, t)             x (n, s, t)
=====  =======================  ======================  =======================
0      8, 2.0, 0.0              64, 0.5, 10.0           64, 0.5, −3.0
1      8, 2.0, 0.0              32, 1.0, 10.25          32, 1.0, −2.75
2      8, 2.0, 0.0              16, 2.0, 10.75          16, 2.0, −2.25
=====  =======================  ======================  =======================
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import ngffcore
import ome_writers as ow

VERSIONS = ["0.4", "0.5"]
ALL_Z = (0, 8)
ALL_Y0, ALL_X0 = (0, 64), (0, 64)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return ow.Library(tmp_path_factory.mktemp("ome_region"))


@pytest.fixture(scope="module")
def nz(lib):
    """version → (image, expectations) of the ngff-zarr image."""
    cache = {}

    def get(version):
        if version not in cache:
            exp = lib.image(f"ngff-zarr-{version}")
            # the table in the module docstring is what the writer wrote
            assert [lv.scale for lv in exp.levels] == [(2.0, 0.5, 0.5), (2.0, 1.0, 1.0),
                                                       (2.0, 2.0, 2.0)]
            assert [lv.translation for lv in exp.levels] == [
                (0.0, 10.0, -3.0), (0.0, 10.25, -2.75), (0.0, 10.75, -2.25)]
            cache[version] = (ngffcore.open(str(exp.path)), exp)
        return cache[version]

    return get


def check(r, exp, level, box, origin=None):
    """``r`` read ``box`` on ``level``: level, box, data (zarr-python's read of that box on
    that level, no axis dropped) and origin (the first pixel's centre)."""
    assert r.level == level
    assert r.box == box
    e = exp.levels[level]
    expected = e.data[tuple(slice(a, b) for a, b in box)]
    assert r.data.ndim == len(e.shape)
    np.testing.assert_array_equal(r.data, expected, strict=True)
    if origin is None:
        origin = tuple(t + a * s for (a, _), s, t in zip(box, e.scale, e.translation))
    assert r.origin == pytest.approx(origin, rel=1e-12, abs=1e-12)


# --------------------------------------------------------------------------------------
# [a, b) → pixels whose centres lie in it
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_interval_selects_centres(nz, version):
    img, exp = nz(version)
    # y: t 10, s 0.5 → centres 10.0, 10.5, 11.0 (i=2) … 12.5 (i=5); 12.6 excludes 13.0 (i=6)
    r = img.read_region({"y": (11.0, 12.6)}, level=0)
    check(r, exp, 0, (ALL_Z, (2, 6), ALL_X0), origin=(0.0, 11.0, -3.0))
    # x: t −3, s 0.5 → centre of pixel 6 is 0.0, of pixel 13 is 3.5, of pixel 14 is 4.0
    r = img.read_region({"x": (0.0, 4.0)}, level=0)
    check(r, exp, 0, (ALL_Z, ALL_Y0, (6, 14)), origin=(0.0, 10.0, 0.0))
    # z: t 0, s 2 → centres 2, 4, 6 (i = 1..3) lie in [2, 7)
    r = img.read_region({"z": (2.0, 7.0)}, level=0)
    check(r, exp, 0, ((1, 4), ALL_Y0, ALL_X0), origin=(2.0, 10.0, -3.0))


@pytest.mark.parametrize("version", VERSIONS)
def test_interval_edges_are_half_open(nz, version):
    img, exp = nz(version)
    # a on a centre is included, b on a centre is excluded
    check(img.read_region({"y": (10.0, 10.5)}, level=0), exp, 0, (ALL_Z, (0, 1), ALL_X0))
    check(img.read_region({"y": (10.5, 11.0)}, level=0), exp, 0, (ALL_Z, (1, 2), ALL_X0))
    check(img.read_region({"y": (10.5, 11.01)}, level=0), exp, 0, (ALL_Z, (1, 3), ALL_X0))


@pytest.mark.parametrize("version", VERSIONS)
def test_several_axes_and_levels(nz, version):
    img, exp = nz(version)
    region = {"y": (11.0, 12.6), "x": (0.0, 4.0)}
    check(img.read_region(region, level=0), exp, 0, (ALL_Z, (2, 6), (6, 14)),
          origin=(0.0, 11.0, 0.0))
    # level 1: y t 10.25 s 1 → ⌈0.75⌉ = 1, ⌈2.35⌉ = 3; x t −2.75 → ⌈2.75⌉ = 3, ⌈6.75⌉ = 7
    check(img.read_region(region, level=1), exp, 1, (ALL_Z, (1, 3), (3, 7)),
          origin=(0.0, 11.25, 0.25))
    # level 2: y t 10.75 s 2 → ⌈0.125⌉ = 1, ⌈0.925⌉ = 1: no centre → midpoint 11.8 lies in
    # pixel 1's span [11.75, 13.75); x t −2.25 → ⌈1.125⌉ = 2, ⌈3.125⌉ = 4
    check(img.read_region(region, level=2), exp, 2, (ALL_Z, (1, 2), (2, 4)),
          origin=(0.0, 12.75, 1.75))


@pytest.mark.parametrize("version", VERSIONS)
def test_clipped_to_the_image(nz, version):
    img, exp = nz(version)
    check(img.read_region({"y": (0.0, 11.0)}, level=0), exp, 0, (ALL_Z, (0, 2), ALL_X0))
    check(img.read_region({"y": (40.0, 100.0)}, level=0), exp, 0, (ALL_Z, (60, 64), ALL_X0))
    check(img.read_region({"z": (-100.0, 100.0), "y": (-1e9, 1e9)}, level=0), exp, 0,
          (ALL_Z, ALL_Y0, ALL_X0))
    # overlapping the image's edge without holding a centre: y [9.8, 9.9) → midpoint 9.85
    # lies in pixel 0's span [9.75, 10.25)
    check(img.read_region({"y": (9.8, 9.9)}, level=0), exp, 0, (ALL_Z, (0, 1), ALL_X0))


@pytest.mark.parametrize("version", VERSIONS)
def test_sub_pixel_interval_gives_the_pixel_of_its_midpoint(nz, version):
    img, exp = nz(version)
    # y [11.1, 11.2): ⌈2.2⌉ = ⌈2.4⌉ = 3, no centre; midpoint 11.15 in pixel 2 [10.75, 11.25)
    check(img.read_region({"y": (11.1, 11.2)}, level=0), exp, 0, (ALL_Z, (2, 3), ALL_X0),
          origin=(0.0, 11.0, -3.0))
    # x [-1.6, -1.4) holds exactly one centre, −1.5 (pixel 3)
    check(img.read_region({"x": (-1.6, -1.4)}, level=0), exp, 0, (ALL_Z, ALL_Y0, (3, 4)))
    # on level 2 (s 2): y [14.0, 14.5) → midpoint 14.25 in pixel 2 [13.75, 15.75)
    check(img.read_region({"y": (14.0, 14.5)}, level=2), exp, 2, (ALL_Z, (2, 3), (0, 16)))


@pytest.mark.parametrize("version", VERSIONS)
def test_scalar_selects_the_pixel_containing_it(nz, version):
    img, exp = nz(version)
    # y 11.3 lies in pixel 3's span [11.25, 11.75); the axis is kept, length 1
    r = img.read_region({"y": 11.3}, level=0)
    check(r, exp, 0, (ALL_Z, (3, 4), ALL_X0), origin=(0.0, 11.5, -3.0))
    assert r.data.shape == (8, 1, 64)
    # a pixel's lower edge belongs to it: 10.25 starts pixel 1
    check(img.read_region({"y": 10.25}, level=0), exp, 0, (ALL_Z, (1, 2), ALL_X0))
    # x −3.0 is pixel 0's centre; z 5.0 is the edge between pixels 2 and 3 → pixel 3
    r = img.read_region({"x": -3.0, "z": 5.0}, level=0)
    check(r, exp, 0, ((3, 4), ALL_Y0, (0, 1)), origin=(6.0, 10.0, -3.0))
    assert r.data.shape == (1, 64, 1)


@pytest.mark.parametrize("version", VERSIONS)
def test_center_and_size(nz, version):
    img, exp = nz(version)
    # y [10.5, 11.5) → pixels 1, 2
    check(img.read_region(center={"y": 11.0}, size={"y": 1.0}, level=0), exp, 0,
          (ALL_Z, (1, 3), ALL_X0))
    # y [24, 28) → ⌈28⌉ .. ⌈36⌉; x [9, 17) → ⌈24⌉ .. ⌈40⌉
    check(img.read_region(center={"y": 26.0, "x": 13.0}, size={"y": 4.0, "x": 8.0}, level=0),
          exp, 0, (ALL_Z, (28, 36), (24, 40)), origin=(0.0, 24.0, 9.0))
    # the same on level 1: y t 10.25 → ⌈13.75⌉ = 14 .. ⌈17.75⌉ = 18; x t −2.75 → 12 .. 20
    check(img.read_region(center={"y": 26.0, "x": 13.0}, size={"y": 4.0, "x": 8.0}, level=1),
          exp, 1, (ALL_Z, (14, 18), (12, 20)), origin=(0.0, 24.25, 9.25))


@pytest.mark.parametrize("version", VERSIONS)
def test_unnamed_axes_are_read_whole(nz, version):
    img, exp = nz(version)
    r = img.read_region({}, level=1)
    check(r, exp, 1, ((0, 8), (0, 32), (0, 32)), origin=(0.0, 10.25, -2.75))
    r = img.read_region(level=2)
    check(r, exp, 2, ((0, 8), (0, 16), (0, 16)))
    r = img.read_region({"y": None, "x": (0.0, 4.0)}, level=0)  # None: whole axis
    check(r, exp, 0, (ALL_Z, ALL_Y0, (6, 14)))


OUTSIDE = {"interval-above": {"y": (100.0, 200.0)}, "interval-below": {"x": (-100.0, -50.0)},
           "point-above": {"y": 1000.0}, "point-below": {"z": -9.0}}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("where", list(OUTSIDE))
def test_region_outside_the_image_is_empty(nz, version, where):
    """Docs: interval boxes are clipped to [0, n); a scalar selects the pixel whose span
    contains it, none (length 0) when it lies outside the image — never the nearest edge
    pixel. The other axes are read whole."""
    img, exp = nz(version)
    region = OUTSIDE[where]
    r = img.read_region(region, level=0)
    axis = {"z": 0, "y": 1, "x": 2}[next(iter(region))]
    start, stop = r.box[axis]
    assert start == stop, (region, r.box)
    assert 0 <= start <= exp.levels[0].shape[axis]
    expected_shape = list(exp.levels[0].shape)
    expected_shape[axis] = 0
    assert r.data.shape == tuple(expected_shape)
    assert r.data.dtype == exp.levels[0].dtype


# --------------------------------------------------------------------------------------
# floating point: a = t + k*s selects pixel k
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fine(lib):
    """yx, level 0: scale 0.1, translation 0; level 1: scale 0.2, translation 0.05."""
    axes = [{"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"}]
    exp = lib.get("fine", lambda root: ow.write_hand_image(
        root, "0.5", "fine", axes, [((40, 40), [0.1, 0.1], None),
                                    ((20, 20), [0.2, 0.2], [0.05, 0.05])]))
    return ngffcore.open(str(exp.path)), exp


def test_floating_point_tolerance(fine):
    img, exp = fine
    a = 3 * 0.1  # 0.30000000000000004: (a − 0)/0.1 = 3.0000000000000004
    b = 0.6  # 0.6/0.1 = 5.999999999999999
    check(img.read_region({"y": (a, b)}, level=0), exp, 0, ((3, 6), (0, 40)))
    a = 7 * 0.1  # 0.7000000000000001
    check(img.read_region({"x": (a, 1.0)}, level=0), exp, 0, ((0, 40), (7, 10)))
    # level 1: centres 0.05 + 0.2 i; 0.05 + 3*0.2 = 0.6500000000000001
    check(img.read_region({"y": (0.05 + 3 * 0.2, 1.45)}, level=1), exp, 1, ((3, 7), (0, 20)))


# --------------------------------------------------------------------------------------
# channel / time axes can be named too
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_non_spatial_axes(lib, version):
    exp = lib.image(f"ome-zarr-py-{version}")  # czyx; c: s 1, t 0; z 2 µm; y/x 0.5 µm
    img = ngffcore.open(str(exp.path))
    check(img.read_region({"c": 1}, level=0), exp, 0, ((1, 2), (0, 8), (0, 64), (0, 96)))
    check(img.read_region({"c": (0, 1), "y": (1.0, 2.0)}, level=0), exp, 0,
          ((0, 1), (0, 8), (2, 4), (0, 96)))
    # level 1 (y/x 1 µm, translation 0.25): y [1, 2) → ⌈0.75⌉ = 1 .. ⌈1.75⌉ = 2
    check(img.read_region({"c": 1, "y": (1.0, 2.0)}, level=1), exp, 1,
          ((1, 2), (0, 8), (1, 2), (0, 48)), origin=(1.0, 0.0, 1.25, 0.25))


# --------------------------------------------------------------------------------------
# resolution → level
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_level_for_number_applies_to_every_spatial_axis(nz, version):
    img, _ = nz(version)
    # z is 2.0 on every level: below 2 no level is fine enough on z → level 0
    assert img.level_for(0.5) == 0
    assert img.level_for(1.0) == 0
    assert img.level_for(1.5) == 0
    assert img.level_for(2.0) == 2
    assert img.level_for(100.0) == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_level_for_mapping_names_axes(nz, version):
    img, _ = nz(version)
    assert img.level_for({"y": 1.0, "x": 1.0}) == 1
    assert img.level_for({"y": 1.9, "x": 1.9}) == 1
    assert img.level_for({"y": 0.9, "x": 0.9}) == 0
    assert img.level_for({"y": 0.5, "x": 0.5}) == 0
    assert img.level_for({"y": 5.0, "x": 5.0}) == 2
    assert img.level_for({"x": 1.0}) == 1  # only x named
    assert img.level_for({"y": 1.0, "x": 2.0}) == 1  # level 2's y (2.0) is too coarse
    assert img.level_for({"x": 0.4}) == 0  # none fine enough
    assert img.level_for({"z": 2.0}) == 2
    assert img.level_for({"z": 1.0}) == 0


def test_level_for_ignores_channel_axes(lib):
    exp = lib.image("ome-zarr-py-0.5")  # c (s 1), z 2, y/x 0.5 / 1 / 2
    img = ngffcore.open(str(exp.path))
    assert img.level_for(2.0) == 2  # the channel axis (scale 1) does not count
    assert img.level_for(1.0) == 0  # z is 2.0 everywhere
    assert img.level_for({"y": 1.0, "x": 1.0}) == 1


def test_level_for_axes_without_types(lib):
    """0.3 axes carry no type: x/y/z by name are spatial."""
    exp = lib.image("ome-zarr-py-0.3")  # zyx; scales (1,1,1), (1,2,2), (1,4,4)
    img = ngffcore.open(str(exp.path))
    assert img.level_for(1.0) == 0
    assert img.level_for(4.0) == 2
    assert img.level_for({"y": 2.0, "x": 3.0}) == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_read_region_with_resolution(nz, version):
    img, exp = nz(version)
    region = {"y": (11.0, 12.6), "x": (0.0, 4.0)}
    check(img.read_region(region, resolution=2.0), exp, 2, (ALL_Z, (1, 2), (2, 4)))
    check(img.read_region(region, resolution={"y": 1.0, "x": 1.0}), exp, 1,
          (ALL_Z, (1, 3), (3, 7)))
    check(img.read_region(region, resolution=0.5), exp, 0, (ALL_Z, (2, 6), (6, 14)))
    check(img.read_region(region), exp, 0, (ALL_Z, (2, 6), (6, 14)))  # default: level 0


# --------------------------------------------------------------------------------------
# async
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_read_region_async(nz, version):
    img, exp = nz(version)

    async def main():
        return await asyncio.gather(
            img.read_region_async({"y": (11.0, 12.6), "x": (0.0, 4.0)}, level=1),
            img.read_region_async(center={"y": 26.0, "x": 13.0}, size={"y": 4.0, "x": 8.0},
                                  resolution=0.5),
            img.read_region_async({"y": 11.3}, resolution={"y": 2.0, "x": 2.0}),
        )

    r1, r2, r3 = asyncio.run(main())
    check(r1, exp, 1, (ALL_Z, (1, 3), (3, 7)), origin=(0.0, 11.25, 0.25))
    check(r2, exp, 0, (ALL_Z, (28, 36), (24, 40)), origin=(0.0, 24.0, 9.0))
    # level 2, y 11.3: pixel 0 spans [9.75, 11.75)
    check(r3, exp, 2, (ALL_Z, (0, 1), (0, 16)), origin=(0.0, 10.75, -2.25))
