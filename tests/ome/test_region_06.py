"""Physical reads under OME-NGFF 0.6 (docs/ome.md, "OME-NGFF 0.6"): ``read_region``,
``region_box``, ``level_for``, ``to_dask`` and tiles in any coordinate system of an image.

Axis-aligned systems (scale + translation, axes permuted by ``mapAxis``, flipped) select
the pixels whose centres lie in the region, axis by axis; through an affine or rotation the
pixels of the array-space bounding box of the region's preimage are read and
``Region.affine`` maps them. Every box, origin and matrix below is worked out by hand.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

import ngffcore
import ome06_data as d6
from ngffcore import UnsupportedError

UM = "micrometer"
YX = [{"name": "intrinsic", "axes": d6.axes("y:space:micrometer", "x:space:micrometer")}]


def _close(actual, expected, tol=1e-12):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, float),
                               rtol=tol, atol=tol)


def _image(tmp_path, ome, shapes, name="img.zarr"):
    data = d6.write_image(tmp_path / name, ome, shapes)
    return ngffcore.open(str(tmp_path / name)), data


def _with_system(name, transform, axes=("u:space:micrometer", "v:space:micrometer"),
                 levels=None):
    """intrinsic (y, x) with levels, plus system ``name`` reached from it by ``transform``."""
    systems = YX + [{"name": name, "axes": d6.axes(*axes)}]
    extra = [dict(transform, input={"name": "intrinsic"}, output={"name": name})]
    return d6.multiscale(systems, levels or [("s0", d6.scale(1, 1))], "intrinsic",
                         extra=extra)


# --------------------------------------------------------------------------------------
# scale + translation into another system
# --------------------------------------------------------------------------------------


@pytest.fixture
def physical(tmp_path):
    ome = d6.ome_of(d6.example("multiscales_strict/multiscales_transformations.json"))
    return _image(tmp_path, ome, {"s0": (6, 5)})


def test_region_in_a_scaled_system(physical):
    img, data = physical
    # physical = 10 × index: centres 10k in [0, 50) → k 0..4; in [0, 30) → k 0..2
    r = img.read_region({"y": (0, 50), "x": (0, 30)}, coordinate_system="physical")
    assert r.box == ((0, 5), (0, 3)) and r.level == 0
    assert r.affine is None and r.coordinate_system == "physical"
    _close(r.origin, (0, 0))
    _close(r.pixel_size, (10, 10))
    np.testing.assert_array_equal(r.data, data["s0"][0:5, 0:3])
    # a point: the pixel whose span [10k − 5, 10k + 5) holds it
    assert img.region_box({"y": 21, "x": 39}, coordinate_system="physical")[1] == ((2, 3),
                                                                                    (4, 5))
    # center ± size / 2: [15, 35) → centres 20, 30
    assert img.region_box(center={"y": 25}, size={"y": 20},
                          coordinate_system="physical")[1] == ((2, 4), (0, 5))
    # the same numbers in the intrinsic system select 10× more
    assert img.region_box({"y": (0, 5)})[1] == ((0, 5), (0, 5))
    # rendering takes the system too: the same pixel box, the same RGBA
    np.testing.assert_array_equal(
        img.render_region({"y": (0, 50), "x": (0, 30)}, coordinate_system="physical"),
        img.render_region({"y": (0, 5), "x": (0, 3)}))
    assert img.render_region({"y": (0, 50), "x": (0, 30)},
                             coordinate_system="physical").shape == (5, 3, 4)


def test_region_async_and_dask_agree(physical):
    img, data = physical
    region = {"y": (10, 40), "x": (5, 45)}
    r = asyncio.run(img.read_region_async(region, coordinate_system="physical"))
    assert r.box == ((1, 4), (1, 5))
    np.testing.assert_array_equal(r.data, data["s0"][1:4, 1:5])
    pytest.importorskip("dask")
    arr = img.to_dask(region=region, coordinate_system="physical")
    np.testing.assert_array_equal(arr.compute(), r.data)


def test_level_for_in_another_system(tmp_path):
    ome = _with_system("physical", d6.scale(10, 10),
                       levels=[("s0", d6.scale(1, 1)),
                               ("s1", d6.scale_translation([2, 2], [0.5, 0.5]))])
    img, data = _image(tmp_path, ome, {"s0": (8, 8), "s1": (4, 4)})
    assert img.level_for(2) == 1 and img.level_for(1.5) == 0
    assert img.level_for(20, coordinate_system="physical") == 1
    assert img.level_for(15, coordinate_system="physical") == 0
    assert img.level_for({"u": 25}, coordinate_system="physical") == 1
    # level 1 in physical: centres 10·(2k + 0.5) = 20k + 5; [0, 40) → k 0, 1
    r = img.read_region({"u": (0, 40)}, resolution=20, coordinate_system="physical")
    assert r.level == 1 and r.box == ((0, 2), (0, 4))
    _close(r.origin, (5, 5))
    _close(r.pixel_size, (20, 20))
    np.testing.assert_array_equal(r.data, data["s1"][0:2])
    with pytest.raises(ngffcore.SelectionError):
        img.read_region({"y": (0, 1)}, coordinate_system="physical")  # physical has u, v


# --------------------------------------------------------------------------------------
# axes permuted (mapAxis) and flipped
# --------------------------------------------------------------------------------------


def test_region_through_map_axis(tmp_path):
    ome = d6.ome_of(d6.example("subspace/subspacePermute.json"))
    img, data = _image(tmp_path, ome, {"array": (3, 4)})
    # physical (y, x) = (dim_1, dim_0): y picks array axis 1, x array axis 0
    r = img.read_region({"y": (1, 3), "x": (0, 2)}, coordinate_system="physical")
    assert r.box == ((0, 2), (1, 3))
    np.testing.assert_array_equal(r.data, data["array"][0:2, 1:3])
    # data index (a0, a1) is pixel (a0, a1 + 1): physical (a1 + 1, a0)
    _close(r.affine, [[0, 1, 1], [1, 0, 0], [0, 0, 1]])
    _close(r.origin, (1, 0))
    _close(r.pixel_size, (1, 1))
    # the intrinsic system is the array's own order: no affine
    assert img.read_region({"dim_0": (1, 3)}).affine is None


def test_level_whose_transform_permutes_axes(tmp_path):
    level = {"type": "sequence", "transformations": [
        {"type": "mapAxis", "mapAxis": [1, 0]}, {"type": "scale", "scale": [2, 3]}]}
    img, data = _image(tmp_path, d6.multiscale(YX, [("s0", level)], "intrinsic"),
                       {"s0": (4, 6)})
    # intrinsic (y, x) = (2·i1, 3·i0): array axis 0 is x (3 per pixel), axis 1 is y (2)
    assert [a.name for a in img.axes] == ["x", "y"]
    assert img.levels[0].scale == (3.0, 2.0) and img.levels[0].translation == (0.0, 0.0)
    # y centres 2k in [0, 4) → k 0, 1 on axis 1; x centres 3k in [0, 6) → k 0, 1 on axis 0
    r = img.read_region({"y": (0, 4), "x": (0, 6)})
    assert r.box == ((0, 2), (0, 2))
    np.testing.assert_array_equal(r.data, data["s0"][0:2, 0:2])
    _close(r.affine, [[0, 2, 0], [3, 0, 0], [0, 0, 1]])
    _close(r.pixel_size, (2, 3))
    assert img.level_for(2.5) == 0


def test_region_through_a_flip(tmp_path):
    img, data = _image(tmp_path, _with_system("flipped", d6.scale(-1, 1)), {"s0": (6, 4)})
    # u = −y: centres −k in [−3, −1) → k = 2, 3
    r = img.read_region({"u": (-3, -1)}, coordinate_system="flipped")
    assert r.box == ((2, 4), (0, 4))
    np.testing.assert_array_equal(r.data, data["s0"][2:4])
    _close(r.affine, [[-1, 0, -2], [0, 1, 0], [0, 0, 1]])
    _close(r.origin, (-2, 0))
    _close(r.pixel_size, (1, 1))
    assert img.region_box({"u": -4.2}, coordinate_system="flipped")[1] == ((4, 5), (0, 4))


# --------------------------------------------------------------------------------------
# rotation and affine: the bounding box of the preimage, no resampling
# --------------------------------------------------------------------------------------


def test_region_through_a_rotation(tmp_path):
    rot = {"type": "rotation", "rotation": [[0, -1], [1, 0]]}
    img, data = _image(tmp_path, _with_system("rotated", rot), {"s0": (6, 8)})
    # a quarter turn is axis by axis (x flipped): (u, v) = (−x, y). u in [−5, −2) holds
    # the centres x = 3, 4, 5 (−x = −3, −4, −5); v in [1, 3) the centres y = 1, 2
    r = img.read_region({"u": (-5, -2), "v": (1, 3)}, coordinate_system="rotated")
    assert r.box == ((1, 3), (3, 6))
    np.testing.assert_array_equal(r.data, data["s0"][1:3, 3:6])
    # data index (0, 0) is pixel (1, 3): (u, v) = (−3, 1)
    _close(r.affine, [[0, -1, -3], [1, 0, 1], [0, 0, 1]])
    _close(r.origin, (-3, 1))
    _close(r.pixel_size, (1, 1))
    # a point: the pixel holding (y, x) = (2, 3)
    assert img.region_box({"u": -3, "v": 2}, coordinate_system="rotated")[1] == ((2, 3),
                                                                                  (3, 4))
    # v left whole: every row
    assert img.region_box({"u": (-5, -2)}, coordinate_system="rotated")[1] == ((0, 6),
                                                                                (3, 6))


def test_region_through_a_scaled_45_degree_rotation(tmp_path):
    c = math.sqrt(0.5)
    rot = {"type": "rotation", "rotation": [[c, -c], [c, c]]}
    ome = _with_system("rotated", rot, levels=[("s0", d6.scale(2, 2)),
                                               ("s1", d6.scale_translation([4, 4], [1, 1]))])
    img, data = _image(tmp_path, ome, {"s0": (5, 5), "s1": (3, 3)})
    # index (a, b) → (2a, 2b) → (u, v) = (√2(a − b), √2(a + b)); u in [−1.5, 1.5) and
    # v in [2, 6) give a − b in [−1.06, 1.06), a + b in [1.41, 4.24): a and b each in
    # [0.177, 2.652] → centres 1, 2
    r = img.read_region({"u": (-1.5, 1.5), "v": (2, 6)}, level=0, coordinate_system="rotated")
    assert r.box == ((1, 3), (1, 3))
    np.testing.assert_array_equal(r.data, data["s0"][1:3, 1:3])
    _close(r.pixel_size, (2 * math.sqrt(2), 2 * math.sqrt(2)), 1e-12)
    _close(r.affine[:2, 2], (0, 2 * math.sqrt(2)), 1e-12)  # pixel (1, 1): (0, 2√2)
    # a pixel's bounding box is 2√2 ≈ 2.83 wide on s0 and 4√2 ≈ 5.66 on s1
    assert img.level_for(3, coordinate_system="rotated") == 0
    assert img.level_for(6, coordinate_system="rotated") == 1


def test_region_through_a_shear(tmp_path):
    shear = {"type": "affine", "affine": [[1, 1, 0], [0, 1, 0]]}
    img, data = _image(tmp_path, _with_system("sheared", shear), {"s0": (8, 8)})
    # (u, v) = (y + x, x): v in [1, 3) → x in [1, 3); u in [4, 6) → y in (1, 5)
    r = img.read_region({"u": (4, 6), "v": (1, 3)}, coordinate_system="sheared")
    assert r.box == ((1, 5), (1, 3))
    np.testing.assert_array_equal(r.data, data["s0"][1:5, 1:3])
    _close(r.affine, [[1, 1, 2], [0, 1, 1], [0, 0, 1]])
    _close(r.pixel_size, (2, 1))
    pytest.importorskip("dask")
    np.testing.assert_array_equal(
        img.to_dask(region={"u": (4, 6), "v": (1, 3)}, coordinate_system="sheared").compute(),
        r.data)


def test_level_whose_own_transform_is_affine(tmp_path):
    # not what the spec allows a level (scale, or scale + translation), read anyway:
    # scale/translation have no meaning there and say so; reads go through the matrix
    level = {"type": "affine", "affine": [[1, 1, 0], [0, 1, 0]]}
    coarse = {"type": "affine", "affine": [[2, 2, 0.5], [0, 2, 0.5]]}
    img, data = _image(tmp_path, d6.multiscale(YX, [("s0", level), ("s1", coarse)],
                                               "intrinsic"), {"s0": (6, 6), "s1": (3, 3)})
    lvl = img.levels[0]
    assert not lvl.is_axis_aligned
    with pytest.raises(UnsupportedError, match="affine"):
        lvl.scale
    with pytest.raises(UnsupportedError):
        lvl.translation
    # (y, x) = (i + j, j): x in [0, 2) → j in [0, 2); y in [1, 3) → i in (−1, 3)
    r = img.read_region({"y": (1, 3), "x": (0, 2)})
    assert r.box == ((0, 3), (0, 2))
    np.testing.assert_array_equal(r.data, data["s0"][0:3, 0:2])
    _close(r.affine, [[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    _close(r.pixel_size, (2, 1))
    # a pixel's bounding box is 2 × 1 (y, x) on s0, 4 × 2 on s1
    assert img.level_for({"x": 2}) == 1 and img.level_for({"y": 4}) == 1
    assert img.level_for({"x": 1.5}) == 0 and img.level_for({"y": 3}) == 0
    # tiles are array space: they still work
    tile = img.tile(0, 0, 0, size=4)
    np.testing.assert_array_equal(tile, data["s0"][None, 0:4, 0:4])


def test_regions_where_no_matrix_exists(tmp_path):
    project = {"type": "projectAxis", "createdOutputs": [0]}
    ome = _with_system("volume", project, axes=("z:space", "y:space", "x:space"))
    img, _ = _image(tmp_path, ome, {"s0": (4, 4)})
    with pytest.raises(UnsupportedError, match="2 array dimensions to 3"):
        img.read_region({"z": 0}, coordinate_system="volume")
    ome = _with_system("warped", {"type": "displacements", "path": "field"})
    img, _ = _image(tmp_path, ome, {"s0": (4, 4)}, name="disp.zarr")
    with pytest.raises(UnsupportedError, match="displacements"):
        img.read_region({"u": (0, 1)}, coordinate_system="warped")
    with pytest.raises(ngffcore.ArgumentError, match="'nope'"):
        img.read_region({"u": (0, 1)}, coordinate_system="nope")


# --------------------------------------------------------------------------------------
# a 0.6 image written by ngff-zarr: intrinsic reads, tiles, dask
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    nz = pytest.importorskip("ngff_zarr")
    root = tmp_path_factory.mktemp("nz06r") / "img.ome.zarr"
    source = d6.pixels((3, 40, 36), np.uint16)
    image = nz.to_ngff_image(source, dims=["z", "y", "x"],
                             scale={"z": 2.0, "y": 0.5, "x": 0.25},
                             translation={"z": 0.0, "y": 10.0, "x": -3.0})
    ms = nz.to_multiscales(image, scale_factors=[{"z": 1, "y": 2, "x": 2}])
    nz.to_ngff_zarr(str(root), ms, version="0.6")
    return ngffcore.open(str(root)), source


def test_written_06_region_by_pixel_centres(written):
    img, source = written
    # y centres 10 + 0.5k in [11, 13) → k 2..5; x centres −3 + 0.25k in [−2, −1) → k 4..7
    r = img.read_region({"y": (11, 13), "x": (-2, -1)}, level=0)
    assert r.box == ((0, 3), (2, 6), (4, 8)) and r.affine is None
    np.testing.assert_array_equal(r.data, source[:, 2:6, 4:8])
    _close(r.origin, (0, 11, -2))
    _close(r.pixel_size, (2, 0.5, 0.25))
    # z stays 2 per pixel on both levels: a number asks it of z too
    assert img.level_for(1.0) == 0 and img.level_for(2.0) == 1
    assert img.level_for({"y": 1.0, "x": 0.5}) == 1 and img.level_for({"y": 0.9}) == 0


def test_written_06_tiles_and_dask(written):
    img, source = written
    tile = img.tile(0, 1, 0, size=16)  # rows 16..31, columns 0..15 of plane z = 0
    np.testing.assert_array_equal(tile, source[None, 0, 16:32, 0:16])
    np.testing.assert_array_equal(img.tile_box(0, (3, 9), (30, 36), z=2),
                                  source[None, 2, 3:9, 30:36])
    pytest.importorskip("dask")
    np.testing.assert_array_equal(img.to_dask(level=0).compute(), source)
    arr = img.to_dask(region={"y": (11, 13)}, level=0)
    np.testing.assert_array_equal(arr.compute(), source[:, 2:6])
