"""OME-NGFF 0.6 scenes (docs/ome.md, "OME-NGFF 0.6"): ``ngffcore.open_scene`` and
``ngffcore.open`` of a scene group, its coordinate systems, its images and the transforms
between any two systems (or from a level's array) — on the spec's scene examples written
over small images (``tests/ome06_data.py``) and on a scene ngff-zarr writes.

Expected points are worked out by hand from the spec's definitions.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import ngffcore
import ome06_data as d6
from ngffcore import CoordinateSystem, MetadataError
from ngffcore.ome.multiscales import Axis

UM = "micrometer"


def _close(actual, expected, tol=1e-12):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, float),
                               rtol=tol, atol=tol)


def _tile_ome(system="physical", ndim=2, scale=2.0, extra_scaled=False):
    names = "zyx"[-ndim:]
    systems = [{"name": system, "axes": d6.axes(*(f"{n}:space:{UM}" for n in names))}]
    extra = None
    if extra_scaled:  # a second system of the image: physical × 2
        systems.append({"name": "scaled", "axes": d6.axes(*(f"{n}:space" for n in names))})
        extra = [{"type": "scale", "scale": [2.0] * ndim, "input": {"name": system},
                  "output": {"name": "scaled"}}]
    return d6.multiscale(systems, [("s0", d6.scale(*[scale] * ndim))], system, extra=extra)


@pytest.fixture(scope="module")
def stitching(tmp_path_factory):
    root = tmp_path_factory.mktemp("scene") / "stitched.zarr"
    d6.write_group(root, d6.ome_of(d6.example("scene/scene_stitching.json")))
    data = {f"tile_{k}": d6.write_image(root / f"tile_{k}", _tile_ome(extra_scaled=k == 0),
                                        {"s0": (4, 5)}, seed=k)
            for k in range(4)}
    return root, data


def test_open_returns_a_scene(stitching):
    root, data = stitching
    for scene in (ngffcore.open(str(root)), ngffcore.open_scene(str(root))):
        assert isinstance(scene, ngffcore.Scene)
        assert scene.version == "0.6rc0"
        assert scene.coordinate_systems == [CoordinateSystem(
            "world", (Axis("x", "space", UM), Axis("y", "space", UM)))]
        assert sorted(scene.images) == ["tile_0", "tile_1", "tile_2", "tile_3"]
        for path, image in scene.images.items():
            assert isinstance(image, ngffcore.Image)
            assert image.intrinsic.name == "physical"
            np.testing.assert_array_equal(image.levels[0].read(), data[path]["s0"])
        assert [t.name for t in scene.transforms] == [f"tile_{k}_mm to world"
                                                      for k in range(4)]
        assert "world" in repr(scene)


def test_scene_transforms_between_systems(stitching):
    scene = ngffcore.open_scene(str(stitching[0]))
    tile1 = {"name": "physical", "path": "tile_1"}
    # tile_1 → world: + (0, 348); tile_3: + (276, 348)
    _close(scene.transform(tile1, {"name": "world"}).apply([[1, 2]]), [[1, 350]])
    _close(scene.transform({"name": "physical", "path": "tile_3"}, "world").apply([[1, 2]]),
           [[277, 350]])
    # world → tile_2 walks tile_2's translation backwards: − (276, 0)
    _close(scene.transform("world", {"name": "physical", "path": "tile_2"}).apply(
        [[276, 0], [300, 5]]), [[0, 0], [24, 5]])
    # tile_1 → tile_2 through world: + (0, 348) − (276, 0)
    t = scene.transform(tile1, {"name": "physical", "path": "tile_2"})
    _close(t.apply([[1, 2]]), [[-275, 350]])
    _close(t.to_matrix(), [[1, 0, -276], [0, 1, 348], [0, 0, 1]])
    assert t.input == ngffcore.SystemRef("physical", "tile_1")
    assert t.output == ngffcore.SystemRef("physical", "tile_2")


def test_scene_transform_from_a_level_and_an_image_system(stitching):
    scene = ngffcore.open_scene(str(stitching[0]))
    # tile_1's level s0: index × 2, then + (0, 348)
    _close(scene.transform({"path": "tile_1/s0"}, "world").apply([[1, 1]]), [[2, 350]])
    # tile_0's "scaled" system is physical × 2: (4, 6) → physical (2, 3) → world (2, 3)
    _close(scene.transform({"name": "scaled", "path": "tile_0"}, "world").apply([[4, 6]]),
           [[2, 3]])
    assert scene.coordinate_system({"name": "scaled", "path": "tile_0"}).axes[0].unit is None
    assert scene.coordinate_system("world").name == "world"
    with pytest.raises(ngffcore.ArgumentError, match="'nope'"):
        scene.transform("nope", "world")
    with pytest.raises(ngffcore.ArgumentError, match="tile_9"):
        scene.transform({"name": "physical", "path": "tile_9"}, "world")


def test_registration_scene_with_displacement_fields(tmp_path):
    root = tmp_path / "reg.zarr"
    d6.write_group(root, d6.ome_of(d6.example("scene/scene_registration.json")))
    for name in ("JRC2018F", "FCWB"):
        d6.write_image(root / name, _tile_ome(ndim=3, scale=1.0), {"s0": (4, 4, 4)})
    # constant fields (bare arrays, vector axis last): forward +(1, 0, −1), inverse
    # −(1, 0, −1); linear interpolation of a constant is that constant
    d6.write_group(root / "coordinateTransformations", {"version": "0.6rc0"})
    d6.write_array(root / "coordinateTransformations" / "dfield",
                   np.broadcast_to(np.array([1.0, 0.0, -1.0]), (4, 4, 4, 3)).copy())
    d6.write_array(root / "coordinateTransformations" / "invdfield",
                   np.broadcast_to(np.array([-1.0, 0.0, 1.0]), (6, 6, 6, 3)).copy())
    scene = ngffcore.open(str(root))
    assert isinstance(scene, ngffcore.Scene) and scene.coordinate_systems == []
    jrc = {"name": "physical", "path": "JRC2018F"}
    fcwb = {"name": "physical", "path": "FCWB"}
    forward = scene.transform(jrc, fcwb)
    # (1, 1, 1) + (1, 0, −1) = (2, 1, 0), then the example's affine, row by row:
    # 0.549687·2 − 0.0138092·1 + 2.9986 = 4.0841648
    # 0.0893289·2 + 1.04339·1 − 6.39702 = −5.1749722
    # 0.00779285·2 + 0.00299018·1 − 3.77146 = −3.75288412
    _close(forward.apply([[1, 1, 1]]), [[4.0841648, -5.1749722, -3.75288412]], 1e-9)
    # back through the bijection's explicit inverse (its affine inverts the forward's to
    # the digits written): (1, 1, 1) again
    back = scene.transform(fcwb, jrc)
    _close(back.apply(forward.apply([[1, 1, 1]])), [[1, 1, 1]], 1e-5)
    # a field is read once: asking for the path again reuses it (the arrays are gone now)
    shutil.rmtree(root / "coordinateTransformations")
    _close(scene.transform(jrc, fcwb).apply([[1, 1, 1]]),
           [[4.0841648, -5.1749722, -3.75288412]], 1e-9)


def test_field_paths_resolve_against_their_group_or_the_root(tmp_path):
    # the image "img" holds a coordinates transform: "fields/x" is img/fields/x (its own
    # group), "/fields/x" the store's root (the scene opened) — different arrays here
    root = tmp_path / "scene.zarr"
    systems = [{"name": "in", "axes": d6.axes("i:space")}, {"name": "out", "axes":
                                                            d6.axes("x:space")}]
    extra = [{"type": "byDimension", "input": {"name": "in"}, "output": {"name": "out"},
              "transformations": [{"transformation": {"type": "coordinates", "path": p},
                                   "inputAxes": [0], "outputAxes": [0]}]}
             for p in ("fields/x", "/fields/x")]
    extra[1]["output"] = {"name": "out2"}
    systems.append({"name": "out2", "axes": d6.axes("x:space")})
    ome = d6.multiscale(systems, [("s0", d6.scale(1.0))], "in", extra=extra)
    d6.write_image(root / "img", ome, {"s0": (3,)})
    d6.write_array(root / "img" / "fields" / "x", np.array([10.0, 11.0, 12.0]))
    d6.write_array(root / "fields" / "x", np.array([-10.0, -11.0, -12.0]))
    d6.write_group(root, {"version": "0.6", "scene": {
        "coordinateSystems": [{"name": "world", "axes": d6.axes("x:space")}],
        "coordinateTransformations": [{"type": "identity", "input": {"name": "out",
                                                                     "path": "img"},
                                       "output": {"name": "world"}}]}})
    scene = ngffcore.open_scene(str(root))
    _close(scene.transform({"path": "img/s0"}, "world").apply([[1]]), [[11]])
    _close(scene.transform({"path": "img/s0"}, {"name": "out2", "path": "img"}).apply([[2]]),
           [[-12]])


def test_ngff_zarr_scene(tmp_path):
    nz = pytest.importorskip("ngff_zarr")
    zarr = pytest.importorskip("zarr")
    zm = pytest.importorskip("ngff_zarr.v06.zarr_metadata")
    images, sources = {}, {}
    for k, name in enumerate(["tile_a", "tile_b"]):
        sources[name] = d6.pixels((16, 20), np.uint8, seed=k)
        image = nz.to_ngff_image(sources[name], dims=["y", "x"], scale={"y": 0.5, "x": 0.5})
        images[name] = nz.to_multiscales(image, scale_factors=[])
    world = zm.CoordinateSystem(name="world", axes=[
        zm.Axis(name="y", type="space", unit=UM), zm.Axis(name="x", type="space", unit=UM)])
    ts = [zm.Translation(input=zm.CoordinateSystemIdentifier(path=name, name="intrinsic"),
                         output=zm.CoordinateSystemIdentifier(name="world"),
                         translation=[0.0, 10.0 * k])
          for k, name in enumerate(images)]
    nz.to_ngff_zarr(str(tmp_path / "s.zarr"), nz.NgffScene(images=images,
                                                           coordinateTransformations=ts,
                                                           coordinateSystems=[world]),
                    version="0.6")
    scene = ngffcore.open_scene(str(tmp_path / "s.zarr"))
    assert [s.name for s in scene.coordinate_systems] == ["world"]
    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    for name, image in scene.images.items():
        (lvl,) = image.levels
        np.testing.assert_array_equal(lvl.read(), group[f"{name}/{lvl.path}"][...])
        np.testing.assert_array_equal(lvl.read(), sources[name])
    b = {"name": "intrinsic", "path": "tile_b"}
    _close(scene.transform(b, "world").apply([[1, 1]]), [[1, 11]])
    level = {"path": f"tile_b/{scene.images['tile_b'].levels[0].path}"}
    _close(scene.transform(level, {"name": "intrinsic", "path": "tile_a"}).apply([[2, 2]]),
           [[1, 11]])


# --------------------------------------------------------------------------------------
# bad input: a MetadataError naming the document and the JSON path
# --------------------------------------------------------------------------------------


def _bad_scene(tmp_path, transforms, systems=None, tiles=("tile_0",)):
    root = tmp_path / "bad.zarr"
    scene = {"coordinateTransformations": transforms}
    if systems is not None:
        scene["coordinateSystems"] = systems
    d6.write_group(root, {"version": "0.6", "scene": scene})
    for t in tiles:
        d6.write_image(root / t, _tile_ome(), {"s0": (2, 2)})
    with pytest.raises(MetadataError) as info:
        ngffcore.open_scene(str(root))
    assert "bad.zarr/zarr.json" in str(info.value)
    return str(info.value)


WORLD = [{"name": "world", "axes": d6.axes("y:space", "x:space")}]


def _tr(values, input=None, output=None):
    return {"type": "translation", "translation": values,
            "input": input or {"name": "physical", "path": "tile_0"},
            "output": output or {"name": "world"}}


def test_scene_system_not_defined(tmp_path):
    msg = _bad_scene(tmp_path, [_tr([0, 0], input={"name": "nope", "path": "tile_0"})], WORLD)
    assert "'nope'" in msg and "scene.coordinateTransformations[0].input" in msg
    msg = _bad_scene(tmp_path, [_tr([0, 0], output={"name": "galaxy"})], WORLD)
    assert "'galaxy'" in msg and "scene.coordinateTransformations[0].output" in msg


def test_scene_image_missing_or_not_an_image(tmp_path):
    msg = _bad_scene(tmp_path, [_tr([0, 0], input={"name": "physical", "path": "tile_7"})],
                     WORLD)
    assert "tile_7" in msg
    (tmp_path / "bad.zarr" / "plain").mkdir(parents=True)
    d6.write_group(tmp_path / "bad.zarr" / "plain", {"version": "0.6"})
    root = tmp_path / "bad.zarr"
    d6.write_group(root, {"version": "0.6", "scene": {"coordinateSystems": WORLD,
                                                      "coordinateTransformations": [
        _tr([0, 0], input={"name": "physical", "path": "plain"})]}})
    with pytest.raises(MetadataError, match="not a multiscale image"):
        ngffcore.open_scene(str(root))


def test_scene_dimensions_must_match(tmp_path):
    msg = _bad_scene(tmp_path, [_tr([0, 0, 1])], WORLD)
    assert "scene.coordinateTransformations[0]" in msg


def test_scene_unknown_type_and_missing_parts(tmp_path):
    msg = _bad_scene(tmp_path, [dict(_tr([0, 0]), type="warp")], WORLD)
    assert "'warp'" in msg and "scene.coordinateTransformations[0]" in msg
    msg = _bad_scene(tmp_path, [_tr([0, 0], input={"path": "tile_0"})], WORLD)
    assert "scene.coordinateTransformations[0].input" in msg
    root = tmp_path / "bad.zarr"
    d6.write_group(root, {"version": "0.6", "scene": {"coordinateSystems": WORLD}})
    with pytest.raises(MetadataError, match="coordinateTransformations"):
        ngffcore.open(str(root))


def test_open_scene_of_an_image_says_what_it_found(tmp_path):
    d6.write_image(tmp_path / "img.zarr", _tile_ome(), {"s0": (2, 2)})
    with pytest.raises(MetadataError, match="scene is missing"):
        ngffcore.open_scene(str(tmp_path / "img.zarr"))
