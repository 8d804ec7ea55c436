"""OME-NGFF 0.6 in the image model (docs/ome.md, "OME-NGFF 0.6"): coordinate systems, level
transforms, the multiscale's own transforms, labels, plates, wells, bioformats2raw — on the
spec's own examples written as group metadata over small arrays (``tests/ome06_data.py``,
arrays by zarr-python) and on images ngff-zarr writes as 0.6.

Every expected point is written down by hand from the spec's definitions (parameter *i*
belongs to axis *i*; an affine's last column is its translation; a sequence applies its
members in order), never computed by the code under test.
"""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

import ngffcore
import ome06_data as d6
from ngffcore import CoordinateSystem, MetadataError, Transform
from ngffcore.ome.multiscales import Axis

UM = "micrometer"


def _close(actual, expected, tol=1e-12):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, float),
                               rtol=tol, atol=tol)


# --------------------------------------------------------------------------------------
# multiscales_strict examples
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_5d(tmp_path_factory):
    root = tmp_path_factory.mktemp("ms06") / "example.zarr"
    ome = d6.ome_of(d6.example("multiscales_strict/multiscales_example.json"))
    data = d6.write_image(root, ome, {"s0": (2, 2, 8, 8, 8), "s1": (2, 2, 4, 4, 4),
                                      "s2": (2, 2, 2, 2, 2)})
    return ngffcore.open(str(root)), data


def test_example_coordinate_systems_and_axes(example_5d):
    img, _ = example_5d
    assert isinstance(img, ngffcore.Image) and type(img).__name__ == "Image"
    assert img.version == "0.6rc0" and img.name == "example"
    axes = (Axis("t", "time", "millisecond"), Axis("c", "channel", None),
            Axis("z", "space", UM), Axis("y", "space", UM), Axis("x", "space", UM))
    assert img.coordinate_systems == [CoordinateSystem("intrinsic", axes)]
    assert img.intrinsic == CoordinateSystem("intrinsic", axes)
    assert img.axes == axes
    assert img.transforms == ()
    assert [lvl.path for lvl in img.levels] == ["s0", "s1", "s2"]


def test_example_level_scale_translation(example_5d):
    img, _ = example_5d
    expected = [((0.1, 1.0, 0.5, 0.5, 0.5), (0.0,) * 5),
                ((0.1, 1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.25, 0.25, 0.25)),
                ((0.1, 1.0, 2.0, 2.0, 2.0), (0.0, 0.0, 0.75, 0.75, 0.75))]
    for lvl, (s, t) in zip(img.levels, expected):
        assert lvl.is_axis_aligned
        _close(lvl.scale, s)
        _close(lvl.translation, t)


def test_example_level_transforms_map_points(example_5d):
    img, _ = example_5d
    t1 = img.levels[1].transform
    assert isinstance(t1, Transform) and t1.type == "sequence"
    assert t1.output.name == "intrinsic" and t1.input.path == "s1"
    # s1: scale (0.1, 1, 1, 1, 1) then translation (0, 0, .25, .25, .25)
    _close(t1.apply([[1, 1, 2, 3, 0], [0, 0, 0, 0, 0]]),
           [[0.1, 1, 2.25, 3.25, 0.25], [0, 0, 0.25, 0.25, 0.25]])
    # s2: scale (0.1, 1, 2, 2, 2) then translation (0, 0, .75, .75, .75)
    _close(img.transform(2).apply([[1, 0, 1, 1, 1]]), [[0.1, 0, 2.75, 2.75, 2.75]])
    assert img.transform(2) is img.levels[2].transform
    m = np.eye(6)
    m[[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]] = [0.1, 1, 2, 2, 2]
    m[2:5, 5] = 0.75
    _close(img.levels[2].transform.to_matrix(), m)
    _close(img.levels[2].transform.inverse().apply([[0.1, 0, 2.75, 2.75, 2.75]]),
           [[1, 0, 1, 1, 1]])


def test_example_pixels_and_level_choice(example_5d):
    img, data = example_5d
    for lvl in img.levels:
        np.testing.assert_array_equal(lvl.read(), data[lvl.path])
    assert img.level_for(1.0) == 1  # s1's voxels are 1 µm
    assert img.level_for(0.6) == 0
    assert img.level_for(5.0) == 2
    # z centres 0.5·k in [0, 2): k = 0..3
    r = img.read_region({"z": (0.0, 2.0)}, level=0)
    assert r.box == ((0, 2), (0, 2), (0, 4), (0, 8), (0, 8))
    assert r.affine is None and r.coordinate_system == "intrinsic"
    np.testing.assert_array_equal(r.data, data["s0"][:, :, :4])


def test_example_relative_world_system(tmp_path):
    doc = d6.example("multiscales_strict/multiscales_example_relative.json")
    ome = d6.ome_of(doc)  # no ome.version: the multiscale carries "0.6rc0"
    assert "version" not in ome
    root = tmp_path / "rel.zarr"
    d6.write_image(root, ome, {"s0": (1, 1, 8, 8, 8), "s1": (1, 1, 4, 4, 4),
                               "s2": (1, 1, 2, 2, 2)})
    img = ngffcore.open(str(root))
    assert img.version == "0.6rc0"
    assert [s.name for s in img.coordinate_systems] == ["world", "intrinsic"]
    assert img.intrinsic.name == "intrinsic"
    assert [t.name for t in img.transforms] == ["additional_translation"]
    # s0 scale 1, then + (0, 0, 10, 20, 30)
    _close(img.transform(0, "world").apply([[0, 0, 1, 2, 3]]), [[0, 0, 11, 22, 33]])
    # s2: ×(1, 1, 4, 4, 4) + (0, 0, 1.5, 1.5, 1.5), then + (0, 0, 10, 20, 30)
    t = img.transform(2, output="world")
    _close(t.apply([[0, 0, 1, 1, 1]]), [[0, 0, 15.5, 25.5, 35.5]])
    m = np.eye(6)
    m[2:5, 2:5] = np.diag([4, 4, 4])
    m[2:5, 5] = [11.5, 21.5, 31.5]
    _close(t.to_matrix(), m)
    _close(t.inverse().apply([[0, 0, 15.5, 25.5, 35.5]]), [[0, 0, 1, 1, 1]])
    # the same system by reference, and the intrinsic one by name
    _close(img.transform(0, {"name": "world"}).apply([[0, 0, 0, 0, 0]]), [[0, 0, 10, 20, 30]])
    assert img.transform(1, "intrinsic") is img.levels[1].transform


def test_example_extra_scale_to_physical(tmp_path):
    ome = d6.ome_of(d6.example("multiscales_strict/multiscales_transformations.json"))
    root = tmp_path / "t.zarr"
    d6.write_image(root, ome, {"s0": (6, 5)})
    img = ngffcore.open(str(root))
    assert [s.name for s in img.coordinate_systems] == ["physical", "intrinsic"]
    assert img.intrinsic.name == "intrinsic" and img.name == "image_with_coordinateTransformations"
    _close(img.transform(0, "physical").apply([[1, 2], [0.5, 0]]), [[10, 20], [5, 0]])
    _close(img.levels[0].scale, (1, 1))


def test_example_subspace_permute(tmp_path):
    ome = d6.ome_of(d6.example("subspace/subspacePermute.json"))
    root = tmp_path / "p.zarr"
    d6.write_image(root, ome, {"array": (3, 4)})
    img = ngffcore.open(str(root))
    assert img.intrinsic.name == "array_coordinates"
    assert [a.name for a in img.axes] == ["dim_0", "dim_1"]
    # mapAxis [1, 0]: output axis i = input axis mapAxis[i]
    _close(img.transform(0, "physical").apply([[2, 5], [0, 1]]), [[5, 2], [1, 0]])
    _close(img.transform(0, "physical").to_matrix(), [[0, 1, 0], [1, 0, 0], [0, 0, 1]])


def test_example_label_and_reference_to_it(tmp_path):
    root = tmp_path / "img.zarr"
    ome = d6.ome_of(d6.example("multiscales_strict/multiscales_reference_to_label.json"))
    image_data = d6.write_image(root, ome, {"s0": (4, 6, 8)})
    d6.write_group(root / "labels", {"version": "0.6rc0", "labels": ["cell_segmentation"]})
    label_ome = d6.ome_of(d6.example("label_strict/colors_properties.json"))
    label_data = d6.write_image(root / "labels" / "cell_segmentation", label_ome,
                                {"s0": (4, 6, 8)}, dtype=np.uint32, seed=3)
    img = ngffcore.open(str(root))
    np.testing.assert_array_equal(img.levels[0].read(), image_data["s0"])
    label = img.labels["cell_segmentation"]
    assert isinstance(label, ngffcore.LabelImage)
    assert label.version == "0.6rc0"
    assert label.colors == {0: (0, 0, 128, 128), 1: (0, 128, 0, 128)}
    assert label.properties[1] == {"area (pixels)": 1650, "class": "cell",
                                   "cell type": "neuron"}
    assert label.source == {"image": "../../"}
    np.testing.assert_array_equal(label.levels[0].read(), label_data["s0"])
    # level → physical is scale (0.5, 0.5, 1); the identity relates the label's physical
    # system to the image's (walked backwards: an identity's inverse is an identity)
    ref = {"name": "physical", "path": "labels/cell_segmentation"}
    _close(img.transform(0, ref).apply([[1, 2, 3]]), [[0.5, 1.0, 3.0]])
    _close(label.transform(0).apply([[1, 2, 3]]), [[0.5, 1.0, 3.0]])
    # the label opened on its own is a LabelImage too
    direct = ngffcore.open(str(root / "labels" / "cell_segmentation"))
    assert isinstance(direct, ngffcore.LabelImage) and direct.colors == label.colors


@pytest.mark.parametrize("version", ["0.6", "0.6rc0"])
def test_both_version_strings_open(tmp_path, version):
    ome = d6.multiscale([{"name": "physical", "axes": d6.axes("y:space:micrometer",
                                                               "x:space:micrometer")}],
                        [("0", d6.scale(2.0, 3.0))], "physical", version=version)
    d6.write_image(tmp_path / "v.zarr", ome, {"0": (3, 3)})
    img = ngffcore.open(str(tmp_path / "v.zarr"))
    assert img.version == version
    assert img.levels[0].scale == (2.0, 3.0) and img.levels[0].translation == (0.0, 0.0)


# --------------------------------------------------------------------------------------
# transformations/*.json as a multiscale's own transforms
# --------------------------------------------------------------------------------------

#: example → (the system that is the intrinsic one, [(output system, points in the
#: intrinsic system, their images by hand)])
TRANSFORM_CASES = {
    # [[1, 2], [4, 5]] p + (3, 6)
    "affine2d2d.json": ("ji", [("yx", [[1, 2], [0, 0], [-1, 0.5]],
                                [[8, 20], [3, 6], [3, 4.5]])]),
    # c = k; y = j + 2i + 3; x = 4j + 5i + 6
    "affine2d2d_with_channel.json": ("cji", [("cyx", [[2, 1, 2]], [[2, 8, 20]])]),
    # z = i; y = 2i + 3j + 4; x = 5i + 6j + 7
    "affine2d3d.json": ("ij", [("zyx", [[1, 2]], [[1, 12, 24]])]),
    "identity.json": ("in", [("out", [[1.5, -2]], [[1.5, -2]])]),
    # out1: mapAxis [0, 1] (identity); out2: [1, 0] swaps
    "mapAxis1.json": ("in", [("out1", [[1, 2]], [[1, 2]]), ("out2", [[1, 2]], [[2, 1]])]),
    # (i, j) → (0, 0, i, j): outputs 0 and 1 created
    "projectAxis.json": ("in", [("out", [[3, 4]], [[0, 0, 3, 4]])]),
    # (c, i, j) → drop c, create output 0: (0, i, j)
    "projectAxis2.json": ("in", [("out", [[5, 3, 4]], [[0, 3, 4]])]),
    # [[0, -1], [1, 0]] (j, i) = (-i, j)
    "rotation.json": ("ji", [("yx", [[1, 2]], [[-2, 1]])]),
    "scale.json": ("in", [("out", [[1, 2]], [[2, 6.24]])]),
    "scale_with_discrete.json": ("in", [("out", [[1, 2, 3]], [[1, 6.24, 6]])]),
    # translation (0.1, 0.9), then scale (2, 3)
    "sequence.json": ("in", [("out", [[1, 2]], [[2.2, 8.7]])]),
    "translation.json": ("in", [("out", [[1, 2]], [[10, 0.58]])]),
    # x = i − 1 (axis 1 → 1), y = 2j (axis 0 → 0)
    "byDimension1.json": ("in", [("out", [[1, 2]], [[2, 1]])]),
    # (l, j, k, i): y = i + 0.5, x = k + 1.5 (inputs 3, 2 → outputs 1, 2); z = 2j
    "byDimension2.json": ("in", [("out", [[1, 2, 3, 4]], [[4, 4.5, 4.5]])]),
}

LEVEL_SCALE = 0.5  # the level's pixel size in the intrinsic system: indices = points / 0.5


def _transform_example_image(root, name, intrinsic, shape_n=4, extra=None):
    ex = d6.example(f"transformations/{name}")
    systems = ex["coordinateSystems"]
    n = next(len(s["axes"]) for s in systems if s["name"] == intrinsic)
    ome = d6.multiscale(systems, [("s0", d6.scale(*[LEVEL_SCALE] * n))], intrinsic,
                        extra=ex["coordinateTransformations"] if extra is None else extra)
    data = d6.write_image(root, ome, {"s0": (shape_n,) * n})
    return data


@pytest.mark.parametrize("name", sorted(TRANSFORM_CASES))
def test_transformation_examples_through_an_image(tmp_path, name):
    intrinsic, cases = TRANSFORM_CASES[name]
    root = tmp_path / "img.zarr"
    data = _transform_example_image(root, name, intrinsic)
    img = ngffcore.open(str(root))
    assert img.intrinsic.name == intrinsic
    np.testing.assert_array_equal(img.levels[0].read(), data["s0"])
    for output, points, expected in cases:
        t = img.transform(0, output)
        idx = np.asarray(points, dtype=float) / LEVEL_SCALE
        _close(t.apply(idx), expected, 1e-9)
        assert t.output.name == output


def test_transformation_example_matrices(tmp_path):
    root = tmp_path / "img.zarr"
    _transform_example_image(root, "affine2d3d.json", "ij")
    img = ngffcore.open(str(root))
    # level scale 0.5, then [[1, 0, 0], [2, 3, 4], [5, 6, 7]]: 4 × 3
    _close(img.transform(0, "zyx").to_matrix(),
           [[0.5, 0, 0], [1, 1.5, 4], [2.5, 3, 7], [0, 0, 1]])


@pytest.mark.parametrize("name", ["byDimensionInvalid1.json", "byDimensionInvalid2.json"])
def test_invalid_by_dimension_examples_refused_at_open(tmp_path, name):
    root = tmp_path / "bad.zarr"
    _transform_example_image(root, name, "in")
    with pytest.raises(MetadataError) as info:
        ngffcore.open(str(root))
    assert "zarr.json" in str(info.value)
    assert "multiscales[0].coordinateTransformations[0]" in str(info.value)


def test_sequence_with_subspaces_is_refused_at_open(tmp_path):
    # members carrying inputAxes/outputAxes have no meaning in the 0.6 text (the
    # transform model's reading): the image says so, naming the document and path
    root = tmp_path / "sub.zarr"
    _transform_example_image(root, "sequenceSubspace1.json", "in")
    with pytest.raises(MetadataError, match=r"zarr.json: multiscales\[0\]"
                                            r"\.coordinateTransformations\[0\]"):
        ngffcore.open(str(root))


# fields: bijection (coordinates), byDimensionXarray/xarrayLike (1-D coordinates),
# displacements


def _bijection_fields(root):
    # forward: F[a, b] = (10 + a, 20 + 2b); inverse: G[y, x] = (y − 10, (x − 20) / 2), both
    # linear, so linear interpolation is exact and G inverts F on the grid
    a, b = np.meshgrid(np.arange(4.0), np.arange(5.0), indexing="ij")
    d6.write_array(root / "forward_coordinates", np.stack([10 + a, 20 + 2 * b], axis=-1))
    y, x = np.meshgrid(np.arange(20.0), np.arange(40.0), indexing="ij")
    d6.write_array(root / "inverse_coordinates", np.stack([y - 10, (x - 20) / 2], axis=-1))


@pytest.mark.parametrize("name", ["bijection.json", "bijection_verbose.json"])
def test_bijection_of_coordinate_fields(tmp_path, name):
    root = tmp_path / "bij.zarr"
    extra = None
    if name == "bijection_verbose.json":  # a bare transform: the systems of bijection.json
        extra = [d6.example("transformations/bijection_verbose.json")]
    _transform_example_image(root, "bijection.json", "src", extra=extra)
    img = ngffcore.open(str(root))  # the fields are not there yet: read on first use
    _bijection_fields(root)
    t = img.transform(0, "tgt")
    # p = (1, 2) (index (2, 4)) → F(1, 2) = (11, 24); p = (0.5, 1.5) → (10.5, 23)
    _close(t.apply([[2, 4], [1, 3]]), [[11, 24], [10.5, 23]], 1e-9)
    _close(t.inverse().apply([[11, 24]]), [[2, 4]], 1e-9)


def test_by_dimension_of_1d_coordinate_arrays(tmp_path):
    root = tmp_path / "xr.zarr"
    _transform_example_image(root, "byDimensionXarray.json", "array")
    d6.write_array(root / "xCoordinates", np.array([0.0, 1.5, 3.5, 7.0]))
    d6.write_array(root / "yCoordinates", np.array([10.0, 20.0, 30.0]))
    img = ngffcore.open(str(root))
    t = img.transform(0, "physical")
    # p = (2, 1) → (x[2], y[1]) = (3.5, 20); p = (0.5, 1.5) → (0.75, 25) linearly
    _close(t.apply(np.array([[2, 1], [0.5, 1.5]]) / LEVEL_SCALE), [[3.5, 20], [0.75, 25]])


def test_xarray_like_absolute_paths_resolve_at_the_store_root(tmp_path):
    root = tmp_path / "xr.zarr"  # opened as the store's root: "/x" is root/x
    _transform_example_image(root, "xarrayLike.json", "in")
    d6.write_array(root / "xCoordinates", np.array([5.0, 6.0, 8.0, 11.0]))
    d6.write_array(root / "yCoordinates", np.array([-1.0, -2.0, -4.0, -8.0]))
    img = ngffcore.open(str(root))
    _close(img.transform(0, "out").apply([[6, 4]]), [[11.0, -4.0]])


def test_displacement_field_example(tmp_path):
    # multiscales.json writes "ome": "0.6rc0" (a string) beside the multiscales: read as
    # the version it means; the field's own example declares a 2-value scale for its three
    # axes (c, y, x): written here as (1, 2, 2), what it evidently means
    doc = d6.example("transformations/displacements/multiscales.json")
    ome = {"version": doc["ome"], "multiscales": doc["multiscales"]}
    root = tmp_path / "img.zarr"
    d6.write_image(root, ome, {"s0": (5, 5)})
    field = d6.ome_of(d6.example("transformations/displacements/displacement_field.json"))
    field["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"] = [1, 2, 2]
    # D_y = 0.5 · (field index a), D_x = −1: at physical (y, x) the field index is
    # (y / 2, x / 2), so the output is (y + y / 4, x − 1)
    a = np.broadcast_to(np.arange(5.0)[:, None], (5, 5))
    d6.write_group(root / "coordinateTransformations" / "displacementField", field)
    d6.write_array(root / "coordinateTransformations" / "displacementField" / "s0",
                   np.stack([0.5 * a, np.full((5, 5), -1.0)]))
    img = ngffcore.open(str(root))
    t = img.transform(0, "output")
    # index (2, 3) → physical (4, 6) → (5, 5); index (1.5, 2.5) → (3, 5) → (3.75, 4)
    _close(t.apply([[2, 3], [1.5, 2.5]]), [[5, 5], [3.75, 4]], 1e-9)


# --------------------------------------------------------------------------------------
# plates, wells, bioformats2raw
# --------------------------------------------------------------------------------------


def _field_ome(version="0.6rc0"):
    return d6.multiscale([{"name": "physical", "axes": d6.axes("c:channel", "y:space:micrometer",
                                                               "x:space:micrometer")}],
                         [("s0", d6.scale(1, 0.5, 0.5)),
                          ("s1", d6.scale_translation([1, 1, 1], [0, 0.25, 0.25]))],
                         "physical", version=version)


def test_plate_and_wells(tmp_path):
    root = tmp_path / "plate.zarr"
    d6.write_group(root, d6.ome_of(d6.example("plate_strict/plate_6wells.json")))
    well = d6.ome_of(d6.example("well_strict/well_4fields.json"))
    data = {}
    for w in ("A/1", "B/3"):
        d6.write_group(root / w.split("/")[0], {"version": "0.6rc0"})
        d6.write_group(root / w, well)
        for f in ("0", "3"):
            data[w, f] = d6.write_image(root / w / f, _field_ome(), {"s0": (2, 4, 6),
                                                                     "s1": (2, 2, 3)},
                                        seed=len(data))
    plate = ngffcore.open(str(root))
    assert isinstance(plate, ngffcore.Plate)
    assert plate.version == "0.6rc0" and plate.name == "test"
    assert plate.rows == ("A", "B") and plate.columns == ("1", "2", "3")
    assert [a.id for a in plate.acquisitions] == [1, 2]
    assert [w.path for w in plate.wells] == ["A/1", "A/2", "A/3", "B/1", "B/2", "B/3"]
    w = plate.well("B", 3)
    assert [(im.path, im.acquisition) for im in w.images] == [("0", 1), ("1", 1), ("2", 2),
                                                             ("3", 2)]
    field = w.field(3)
    assert field.version == "0.6rc0" and field.intrinsic.name == "physical"
    _close(field.levels[1].scale, (1, 1, 1))
    _close(field.levels[1].translation, (0, 0.25, 0.25))
    _close(field.transform(1).apply([[1, 1, 2]]), [[1, 1.25, 2.25]])
    for lvl in field.levels:
        np.testing.assert_array_equal(lvl.read(), data["B/3", "3"][lvl.path])
    np.testing.assert_array_equal(plate.well("A/1").field(0).levels[0].read(),
                                  data["A/1", "0"]["s0"])


def test_well_opened_directly(tmp_path):
    root = tmp_path / "well.zarr"
    d6.write_group(root, d6.ome_of(d6.example("well_strict/well_2fields.json")))
    d6.write_image(root / "1", _field_ome("0.6"), {"s0": (2, 4, 6), "s1": (2, 2, 3)})
    well = ngffcore.open(str(root))
    assert isinstance(well, ngffcore.Well) and len(well) == 2
    assert [(im.path, im.acquisition) for im in well.images] == [("0", 0), ("1", 3)]
    assert well.field(1).levels[0].scale == (1.0, 0.5, 0.5)


def test_bioformats2raw_series(tmp_path):
    root = tmp_path / "bf.zarr"
    d6.write_group(root, d6.ome_of(d6.example("bf2raw/image.json")))
    d6.write_group(root / "OME", d6.ome_of(d6.example("ome/series-2.json")))
    data = [d6.write_image(root / s, _field_ome(), {"s0": (2, 4, 6), "s1": (2, 2, 3)}, seed=k)
            for k, s in enumerate(("0", "1"))]
    coll = ngffcore.open(str(root))
    assert isinstance(coll, ngffcore.Collection)
    assert coll.series == ("0", "1") and len(coll) == 2
    np.testing.assert_array_equal(coll[1].levels[1].read(), data[1]["s1"])
    assert coll[1].intrinsic.name == "physical"


def test_bioformats2raw_plate_opens_as_a_plate(tmp_path):
    # the spec: when a plate is present beside bioformats2raw.layout, the plate wins
    root = tmp_path / "bfplate.zarr"
    d6.write_group(root, d6.ome_of(d6.example("bf2raw/plate.json")))
    d6.write_group(root / "A", {"version": "0.6rc0"})
    d6.write_group(root / "A" / "1", {"version": "0.6rc0", "well": {"images": [{"path": "0"}]}})
    data = d6.write_image(root / "A" / "1" / "0", _field_ome(), {"s0": (2, 4, 6),
                                                                 "s1": (2, 2, 3)})
    plate = ngffcore.open(str(root))
    assert isinstance(plate, ngffcore.Plate)
    assert plate.name == "Plate Name 0" and [w.path for w in plate.wells] == ["A/1"]
    np.testing.assert_array_equal(plate.well("A", 1).field(0).levels[0].read(), data["s0"])


# --------------------------------------------------------------------------------------
# images written by ngff-zarr as 0.6
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ngff_zarr_06(tmp_path_factory):
    nz = pytest.importorskip("ngff_zarr")
    zarr = pytest.importorskip("zarr")
    root = tmp_path_factory.mktemp("nz06") / "img.ome.zarr"
    told_scale = {"z": 2.0, "y": 0.5, "x": 0.25}
    told_translation = {"z": -1.0, "y": 10.0, "x": 3.0}
    source = d6.pixels((6, 32, 24), np.uint16)
    image = nz.to_ngff_image(source, dims=["z", "y", "x"], scale=told_scale,
                             translation=told_translation, axes_units={"z": UM, "y": UM,
                                                                       "x": UM})
    ms = nz.to_multiscales(image, scale_factors=[{"z": 1, "y": 2, "x": 2},
                                                  {"z": 1, "y": 4, "x": 4}])
    nz.to_ngff_zarr(str(root), ms, version="0.6")
    doc = json.loads((root / "zarr.json").read_text())
    # the peer's own view of what it wrote: the raw JSON and zarr-python's pixels
    group = zarr.open_group(str(root), mode="r")
    raw = doc["attributes"]["ome"]["multiscales"][0]
    pix = {ds["path"]: group[ds["path"]][...] for ds in raw["datasets"]}
    return root, doc, raw, pix, told_scale, told_translation, source


def _raw_level(ds):
    """(scale, translation) of a dataset transform, from the raw JSON with plain Python."""
    (t,) = ds["coordinateTransformations"]
    if t["type"] == "scale":
        return t["scale"], [0.0] * len(t["scale"])
    assert t["type"] == "sequence"
    s, tr = t["transformations"]
    assert (s["type"], tr["type"]) == ("scale", "translation")
    return s["scale"], tr["translation"]


def test_ngff_zarr_writes_06(ngff_zarr_06):
    _, doc, raw, *_ = ngff_zarr_06
    assert doc["attributes"]["ome"]["version"] in ("0.6", "0.6rc0")
    assert "coordinateSystems" in raw and "axes" not in raw


def test_ngff_zarr_06_read_back(ngff_zarr_06):
    root, doc, raw, pix, told_scale, told_translation, source = ngff_zarr_06
    img = ngffcore.open(str(root))
    assert img.version == doc["attributes"]["ome"]["version"]
    (system,) = raw["coordinateSystems"]
    assert [s.name for s in img.coordinate_systems] == [system["name"]]
    assert [(a.name, a.type, a.unit) for a in img.axes] == [
        (a["name"], a.get("type"), a.get("unit")) for a in system["axes"]]
    assert [lvl.path for lvl in img.levels] == [ds["path"] for ds in raw["datasets"]]
    for lvl, ds in zip(img.levels, raw["datasets"]):
        np.testing.assert_array_equal(lvl.read(), pix[ds["path"]])
        s, t = _raw_level(ds)
        _close(lvl.scale, s)
        _close(lvl.translation, t)
        idx = np.array([[0, 0, 0], [1, 2, 3], [5, 7, 1]], dtype=float)
        _close(lvl.transform.apply(idx), idx * np.array(s) + np.array(t))
    # level 0 is what the writer was told
    np.testing.assert_array_equal(img.levels[0].read(), source)
    _close(img.levels[0].scale, [told_scale[a] for a in "zyx"])
    _close(img.levels[0].translation, [told_translation[a] for a in "zyx"])
    # coarser levels keep pixel centres aligned: t_k = t_0 + (s_k − s_0) / 2
    for lvl in img.levels[1:]:
        _close(lvl.translation, [t0 + (sk - s0) / 2 for t0, sk, s0 in
                                 zip(img.levels[0].translation, lvl.scale,
                                     img.levels[0].scale)])


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_04_05_images_in_the_same_model(tmp_path, version):
    nz = pytest.importorskip("ngff_zarr")
    source = d6.pixels((16, 12), np.uint8)
    image = nz.to_ngff_image(source, dims=["y", "x"], scale={"y": 2.0, "x": 0.5},
                             translation={"y": 1.0, "x": -4.0})
    ms = nz.to_multiscales(image, scale_factors=[2])
    nz.to_ngff_zarr(str(tmp_path / "i.zarr"), ms, version=version)
    img = ngffcore.open(str(tmp_path / "i.zarr"))
    assert img.coordinate_systems == [CoordinateSystem("intrinsic", img.axes)]
    assert img.intrinsic.name == "intrinsic" and img.transforms == ()
    for lvl in img.levels:
        s, t = np.array(lvl.scale), np.array(lvl.translation)
        idx = np.array([[0, 0], [3, 5]], dtype=float)
        _close(lvl.transform.apply(idx), idx * s + t)
        _close(img.transform(lvl.index, "intrinsic").apply(idx), idx * s + t)
    _close(img.levels[0].scale, (2.0, 0.5))


def test_05_level_transform_built_once_on_first_use(tmp_path):
    # opening builds no transform (every open, a plate's every field); the first use
    # builds it, later uses get the same object, and an image pickled before that use
    # builds its own after unpickling
    img = ngffcore.write_image(str(tmp_path / "i.zarr"), d6.pixels((8, 6), np.uint8),
                               axes="yx", scale=[2.0, 0.5], translation=[1.0, -4.0],
                               levels=2, version="0.5")
    clone = pickle.loads(pickle.dumps(img))
    idx = np.array([[0, 0], [3, 5]], dtype=float)
    for image in (img, clone):
        for lvl in image.levels:
            t = lvl.transform
            assert lvl.transform is t
            _close(t.apply(idx), idx * np.array(lvl.scale) + np.array(lvl.translation))
    # level 1 halves each axis: scale (4, 1), translation t0 + (s1 - s0) / 2 = (2, -3.75)
    _close(clone.levels[1].transform.apply([[1, 1]]), [[2.0 + 4.0, -3.75 + 1.0]])


# --------------------------------------------------------------------------------------
# the spec's attribute suites (tests/attributes/*/valid|invalid/image)
# --------------------------------------------------------------------------------------

SUITE = d6.SPEC06 / "tests" / "attributes"
VALID_IMAGES = sorted(SUITE.glob("*/valid/image/*.json"))
#: schema-valid documents whose transforms contradict their own coordinate systems: the
#: reader refuses them (issue 18, item 5), with the reason here
INCONSISTENT = {
    # a 2-value scale for a 3-axis intrinsic system
    "mismatch_axes_units.json": "scale input: 2 dimensions",
    # a byDimension writing output axes 0 and 1 of a 3-D system only
    "multiscales_transform_additional_transforms.json": "byDimension",
    # the extra transform's input names "intrinsic"; the systems are "world", "physical"
    "image_omero.json": "'intrinsic'",
}


def _raw_apply(t, idx):
    """A dataset transform of the raw JSON (identity, scale, translation or a sequence of
    them) on points, in plain numpy: the spec's definitions."""
    if t["type"] == "identity":
        return idx
    if t["type"] == "scale":
        return idx * np.array(t["scale"], float)
    if t["type"] == "translation":
        return idx + np.array(t["translation"], float)
    assert t["type"] == "sequence"
    for m in t["transformations"]:
        idx = _raw_apply(m, idx)
    return idx


def _suite_image(root, path):
    ome = json.loads(path.read_text())["ome"]
    ms = ome["multiscales"][0]
    ndim = {s["name"]: len(s["axes"]) for s in ms["coordinateSystems"]}
    shapes = {}
    for ds in ms["datasets"]:
        out = ds["coordinateTransformations"][0]["output"]["name"]
        shapes[ds["path"]] = (3,) * ndim[out]
    d6.write_image(root, ome, shapes)
    return ms


@pytest.mark.parametrize("path", VALID_IMAGES, ids=lambda p: f"{p.parts[-4]}-{p.name}")
def test_spec_suite_valid_images(tmp_path, path):
    ms = _suite_image(tmp_path / "img.zarr", path)
    if path.name in INCONSISTENT:
        with pytest.raises(MetadataError, match=INCONSISTENT[path.name]):
            ngffcore.open(str(tmp_path / "img.zarr"))
        return
    img = ngffcore.open(str(tmp_path / "img.zarr"))
    assert [s.name for s in img.coordinate_systems] == [s["name"]
                                                        for s in ms["coordinateSystems"]]
    for lvl, ds in zip(img.levels, ms["datasets"]):
        (t,) = ds["coordinateTransformations"]
        assert img.intrinsic.name == t["output"]["name"]
        idx = np.array([[0.0] * lvl.ndim, [1.0] * lvl.ndim, list(range(lvl.ndim))])
        _close(lvl.transform.apply(idx), _raw_apply(t, idx))


@pytest.mark.parametrize("name", [
    "duplicate_axes", "empty_transformations", "invalid_axes_count",
    "invalid_multiscales_transformations", "invalid_transformation_type",
    "missing_axes_name", "missing_coordinate_system_axes", "missing_coordinate_system_name",
    "missing_coordinate_systems", "missing_transformations", "no_axes"])
def test_spec_suite_invalid_images_the_reader_refuses(tmp_path, name):
    # the rest of the invalid suite (axis types and counts, channel colours, the form of a
    # dataset's input/output, ...) is read tolerantly: ngffcore.validate reports it
    ome = json.loads((SUITE / "spec" / "invalid" / "image" / f"{name}.json").read_text())["ome"]
    d6.write_group(tmp_path / "bad.zarr", ome)
    with pytest.raises(MetadataError, match=r"bad\.zarr/zarr\.json: multiscales\[0\]"):
        ngffcore.open(str(tmp_path / "bad.zarr"))


# --------------------------------------------------------------------------------------
# bad input: a MetadataError naming the document and the JSON path
# --------------------------------------------------------------------------------------

YX = [{"name": "physical", "axes": d6.axes("y:space:micrometer", "x:space:micrometer")}]


def _open_bad(tmp_path, ome, shapes=None):
    root = tmp_path / "bad.zarr"
    d6.write_image(root, ome, shapes or {"s0": (4, 4)})
    with pytest.raises(MetadataError) as info:
        ngffcore.open(str(root))
    assert f"{root.name}/zarr.json" in str(info.value)
    return str(info.value)


def test_level_transform_dimensions_must_match_the_system(tmp_path):
    msg = _open_bad(tmp_path, d6.multiscale(YX, [("s0", d6.scale(1, 1, 1))], "physical"))
    assert "multiscales[0].datasets[0].coordinateTransformations[0]" in msg


def test_extra_transform_dimensions_must_match_the_systems(tmp_path):
    systems = YX + [{"name": "other", "axes": d6.axes("z:space", "y:space", "x:space")}]
    extra = [{"type": "scale", "scale": [1, 2], "input": {"name": "physical"},
              "output": {"name": "other"}}]
    msg = _open_bad(tmp_path, d6.multiscale(systems, [("s0", d6.scale(1, 1))], "physical",
                                            extra=extra))
    assert "multiscales[0].coordinateTransformations[0]" in msg


def test_unknown_transform_type(tmp_path):
    extra = [{"type": "warp", "input": {"name": "physical"}, "output": {"name": "physical"}}]
    msg = _open_bad(tmp_path, d6.multiscale(YX, [("s0", d6.scale(1, 1))], "physical",
                                            extra=extra))
    assert "'warp'" in msg and "multiscales[0].coordinateTransformations[0]" in msg
    msg = _open_bad(tmp_path, d6.multiscale(YX, [("s0", {"type": "warp"})], "physical"))
    assert "multiscales[0].datasets[0].coordinateTransformations[0]" in msg


def test_systems_referenced_but_not_defined(tmp_path):
    msg = _open_bad(tmp_path, d6.multiscale(YX, [("s0", d6.scale(1, 1))], "nowhere"))
    assert "'nowhere'" in msg and "datasets[0].coordinateTransformations[0].output" in msg
    extra = [{"type": "identity", "input": {"name": "physical"}, "output": {"name": "world"}}]
    msg = _open_bad(tmp_path, d6.multiscale(YX, [("s0", d6.scale(1, 1))], "physical",
                                            extra=extra))
    assert "'world'" in msg and "coordinateTransformations[0].output" in msg


def test_levels_mapping_to_different_systems(tmp_path):
    systems = YX + [{"name": "other", "axes": d6.axes("y:space", "x:space")}]
    ome = d6.multiscale(systems, [("s0", d6.scale(1, 1)), ("s1", d6.scale(2, 2))], "physical")
    ome["multiscales"][0]["datasets"][1]["coordinateTransformations"][0]["output"] = {
        "name": "other"}
    msg = _open_bad(tmp_path, ome, {"s0": (4, 4), "s1": (2, 2)})
    assert "different coordinate systems" in msg


def test_sequences_nested_too_deep(tmp_path):
    t: dict = d6.scale(1, 1)
    for _ in range(40):
        t = {"type": "sequence", "transformations": [t]}
    msg = _open_bad(tmp_path, d6.multiscale(YX, [("s0", t)], "physical"))
    assert "multiscales[0].datasets[0].coordinateTransformations[0]" in msg


def test_too_many_extra_transforms(tmp_path):
    extra = [{"type": "identity", "input": {"name": "physical"},
              "output": {"name": "physical"}}] * 10_001
    msg = _open_bad(tmp_path, d6.multiscale(YX, [("s0", d6.scale(1, 1))], "physical",
                                            extra=extra))
    assert "10001 transformations" in msg


def test_missing_level_transform_and_systems(tmp_path):
    ome = d6.multiscale(YX, [("s0", d6.scale(1, 1))], "physical")
    del ome["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    assert "coordinateTransformations" in _open_bad(tmp_path, ome)
    ome = d6.multiscale([], [("s0", d6.scale(1, 1))], "physical")
    assert "coordinateSystems" in _open_bad(tmp_path, ome)


def test_zero_scale_level_refused(tmp_path):
    msg = _open_bad(tmp_path, d6.multiscale(YX, [("s0", d6.scale(0, 1))], "physical"))
    assert "datasets[0]" in msg


def test_unreachable_and_unknown_systems(tmp_path):
    systems = YX + [{"name": "lonely", "axes": d6.axes("y:space", "x:space")},
                    {"name": "behind", "axes": d6.axes("y:space", "x:space")}]
    # behind → physical by a scale with a zero factor: no inverse to walk it backwards
    extra = [{"type": "scale", "scale": [0, 1], "input": {"name": "behind"},
              "output": {"name": "physical"}}]
    d6.write_image(tmp_path / "g.zarr", d6.multiscale(systems, [("s0", d6.scale(1, 1))],
                                                      "physical", extra=extra),
                   {"s0": (4, 4)})
    img = ngffcore.open(str(tmp_path / "g.zarr"))
    with pytest.raises(MetadataError, match="'lonely'"):
        img.transform(0, "lonely")
    with pytest.raises(ngffcore.UnsupportedError, match="'behind'"):
        img.transform(0, "behind")
    with pytest.raises(ngffcore.ArgumentError, match="'nope'"):
        img.transform(0, "nope")
    with pytest.raises(ngffcore.ArgumentError, match="'nope'"):
        img.coordinate_system("nope")


def test_pickled_image_keeps_its_transforms(tmp_path):
    import pickle

    root = tmp_path / "img.zarr"
    _transform_example_image(root, "bijection.json", "src")
    _bijection_fields(root)
    img = pickle.loads(pickle.dumps(ngffcore.open(str(root))))
    _close(img.transform(0, "tgt").apply([[2, 4]]), [[11, 24]], 1e-9)
    assert math.isclose(img.levels[0].scale[0], LEVEL_SCALE)
