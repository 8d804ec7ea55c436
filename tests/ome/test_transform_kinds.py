"""The OME-NGFF 0.6 transform kinds built by hand (``ngffcore.ome.transforms``): each kind
applied to points against values worked out by hand, matrices against hand-built ones,
inverses by round trips, the affine forms the parser accepts, parameters stored at a
``path``, equality, point checks; and coordinate systems and system references. Pure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ngffcore
from ngffcore.ome.multiscales import Axis
from ngffcore.ome.transforms import (
    ByDimension,
    CoordinateSystem,
    DimensionItem,
    Identity,
    MapAxis,
    Scale,
    SequenceTransform,
    SystemRef,
    Transform,
    Translation,
    parse_coordinate_systems,
    parse_transform,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "ngff-spec" / "0.6" / "examples"


def check_round_trip(t: Transform, pts: np.ndarray) -> None:
    back = t.inverse().apply(t.apply(pts))
    np.testing.assert_allclose(back, pts, atol=1e-9)


# ---------------------------------------------------------------- built by hand


def test_map_axis_permutations_3d() -> None:
    t = parse_transform({"type": "mapAxis", "mapAxis": [2, 0, 1]}, "m")
    # output i = input mapAxis[i]: (a, b, c) → (c, a, b)
    np.testing.assert_array_equal(t.apply([[1, 2, 3]]), [[3, 1, 2]])
    inv = t.inverse()
    assert isinstance(inv, MapAxis) and inv.axes == (1, 2, 0)
    np.testing.assert_array_equal(inv.apply([[3, 1, 2]]), [[1, 2, 3]])
    np.testing.assert_array_equal(t.to_matrix() @ [1, 2, 3, 1], [3, 1, 2, 1])


def test_sequence_of_scale_and_translation_is_the_composed_matrix() -> None:
    s = parse_transform({"type": "sequence", "transformations": [
        {"type": "scale", "scale": [2, 4, 0.5]},
        {"type": "translation", "translation": [1, -2, 3]}]}, "seq", ndim_in=3, ndim_out=3)
    by_hand = np.array([[2, 0, 0, 1], [0, 4, 0, -2], [0, 0, 0.5, 3], [0, 0, 0, 1]], float)
    np.testing.assert_allclose(s.to_matrix(), by_hand)
    pts = np.array([[1, 1, 1], [0, 2, 4.0]])
    np.testing.assert_allclose(s.apply(pts), [[3, 2, 3.5], [1, 6, 5]])
    check_round_trip(s, pts)


def test_nested_sequences_and_identity_sized_by_neighbours() -> None:
    s = parse_transform({"type": "sequence", "transformations": [
        {"type": "identity"},
        {"type": "sequence", "transformations": [{"type": "identity"},
                                                 {"type": "scale", "scale": [2, 3]}]},
        {"type": "identity"}]}, "seq")
    assert (s.ndim_in, s.ndim_out) == (2, 2)  # the identities take the scale's size
    np.testing.assert_allclose(s.to_matrix(), np.diag([2, 3, 1]))
    with pytest.raises(ngffcore.MetadataError, match=r"seq.transformations\[1\]"):
        parse_transform({"type": "sequence", "transformations": [
            {"type": "scale", "scale": [2, 3, 4]}, {"type": "translation",
                                                   "translation": [1, 2]}]}, "seq")


def test_affine_homogeneous_form_accepted_when_sizes_tell() -> None:
    full = {"type": "affine", "affine": [[2, 0, 1], [0, 3, 2], [0, 0, 1]]}
    t = parse_transform(full, "a", ndim_in=2, ndim_out=2)
    np.testing.assert_allclose(t.apply([[1, 1]]), [[3, 5]])
    # without sizes it is the spec's form: 3 rows = a 2-D → 3-D affine
    assert parse_transform(full, "a").ndim_out == 3
    with pytest.raises(ngffcore.MetadataError, match="a: affine matrix is 3×3"):
        parse_transform({"type": "affine", "affine": [[2, 0, 1], [0, 3, 2], [0, 1, 1]]}, "a",
                        ndim_in=2, ndim_out=2)


def test_affine_inverse() -> None:
    t = parse_transform({"type": "affine", "affine": [[0, 2, 1], [3, 0, -1]]}, "a")
    inv = t.inverse()
    # y0 = 2 x1 + 1, y1 = 3 x0 − 1  ⇒  x0 = (y1 + 1) / 3, x1 = (y0 − 1) / 2
    np.testing.assert_allclose(inv.to_matrix(), [[0, 1 / 3, 1 / 3], [0.5, 0, -0.5], [0, 0, 1]])
    with pytest.raises(ngffcore.UnsupportedError, match="singular"):
        parse_transform({"type": "affine", "affine": [[1, 2, 0], [2, 4, 0]]}, "a").inverse()


def test_affine_and_rotation_from_path() -> None:
    arrays = {"m": np.array([[1.0, 0, 5], [0, 2, 6]]), "r": np.array([[0.0, 1], [-1, 0]])}
    loads: list[str] = []

    def load(path: str) -> np.ndarray:
        loads.append(path)
        return arrays[path]

    a = parse_transform({"type": "affine", "path": "m"}, "a", load_field=load, ndim_in=2)
    assert loads == []  # loaded on first use
    np.testing.assert_allclose(a.apply([[1, 1]]), [[6, 8]])
    np.testing.assert_allclose(a.apply([[0, 0]]), [[5, 6]])
    assert loads == ["m"]
    r = parse_transform({"type": "rotation", "path": "r"}, "r", load_field=load)
    np.testing.assert_allclose(r.apply([[1, 2]]), [[2, -1]])
    with pytest.raises(ngffcore.UnsupportedError, match="no array loader"):
        parse_transform({"type": "affine", "path": "m"}, "a").apply([[1, 1]])
    bad = parse_transform({"type": "affine", "path": "m"}, "doc: ct[0]", load_field=load,
                          ndim_in=3)
    with pytest.raises(ngffcore.MetadataError, match="doc: ct.0.: affine matrix is 2×3"):
        bad.apply([[1, 1, 1]])


def test_scale_with_zero_has_no_inverse() -> None:
    t = parse_transform({"type": "scale", "scale": [2, 0]}, "s")
    np.testing.assert_array_equal(t.apply([[1, 1]]), [[2, 0]])
    with pytest.raises(ngffcore.UnsupportedError, match="zero"):
        t.inverse()
    # a sequence is invertible only if every member is
    with pytest.raises(ngffcore.UnsupportedError):
        SequenceTransform([Translation((1.0, 1.0)), t]).inverse()


def test_by_dimension_built_directly_and_inverted() -> None:
    b = ByDimension([DimensionItem(Scale((2.0, 4.0)), (2, 0), (0, 2)),
                     DimensionItem(Translation((5.0,)), (1,), (1,))], ndim_in=3, ndim_out=3)
    # out0 = 2 in2, out2 = 4 in0, out1 = in1 + 5
    np.testing.assert_allclose(b.apply([[1, 2, 3]]), [[6, 7, 4]])
    check_round_trip(b, np.array([[1.0, 2, 3], [-1, 0, 8]]))
    np.testing.assert_allclose(b.to_matrix() @ [1, 2, 3, 1], [6, 7, 4, 1])


def test_bijection_of_affines() -> None:
    fwd = {"type": "scale", "scale": [2, 2]}
    inv = {"type": "scale", "scale": [0.5, 0.5]}
    b = parse_transform({"type": "bijection", "forward": fwd, "inverse": inv,
                         "input": {"name": "a"}, "output": {"name": "b"}}, "bij")
    np.testing.assert_allclose(b.apply([[1, 3]]), [[2, 6]])
    np.testing.assert_allclose(b.to_matrix(), np.diag([2, 2, 1]))
    np.testing.assert_allclose(b.inverse().apply([[2, 6]]), [[1, 3]])
    assert b.inverse().input == SystemRef("b")
    with pytest.raises(ngffcore.MetadataError, match="bij"):
        parse_transform({"type": "bijection", "forward": fwd, "inverse": inv}, "bij",
                        ndim_in=2, ndim_out=3)


def test_empty_points_and_point_checks() -> None:
    others = [{"type": "affine", "affine": [[1, 0, 0], [2, 3, 4], [5, 6, 7]]},
              {"type": "projectAxis", "createdOutputs": [0, 1]},
              {"type": "byDimension", "transformations": [
                  {"transformation": {"type": "scale", "scale": [2]}, "inputAxes": [3],
                   "outputAxes": [0]}]},
              {"type": "sequence", "transformations": [{"type": "scale", "scale": [1, 2]},
                                                       {"type": "translation",
                                                        "translation": [1, 2]}]}]
    for t in [Identity(2), Scale((1.0, 2.0))] + [
            parse_transform(d, "w", ndim_in=4 if d["type"] == "byDimension" else 2)
            for d in others]:
        assert t.ndim_in is not None and t.ndim_out is not None
        out = t.apply(np.zeros((0, t.ndim_in)))
        assert out.shape == (0, t.ndim_out) and out.dtype == np.float64
    t = Scale((1.0, 2.0))
    for bad in ([1, 2], [[1, 2, 3]], [["a", "b"]]):
        with pytest.raises(ngffcore.ArgumentError):
            t.apply(bad)
    # integer input is accepted, the result is float64
    assert t.apply(np.array([[1, 2]], dtype=np.int16)).dtype == np.float64
    # an unsized identity keeps the points' width but has no matrix
    assert Identity().apply([[1, 2, 3]]).shape == (1, 3)
    with pytest.raises(ngffcore.UnsupportedError, match="unknown"):
        Identity().to_matrix()


def test_equality_and_refs() -> None:
    a = parse_transform({"type": "scale", "scale": [1, 2], "input": {"name": "x"}}, "w")
    b = parse_transform({"type": "scale", "scale": [1.0, 2.0], "input": {"name": "x",
                                                                        "path": None}}, "v")
    assert a == b and hash(a) == hash(b)
    assert a != parse_transform({"type": "scale", "scale": [1, 3]}, "w")
    moved = a.with_refs(SystemRef("p", "img"), None)
    assert moved.input == SystemRef("p", "img") and a.input == SystemRef("x")
    assert "Scale" in repr(a)


# ---------------------------------------------------------------- coordinate systems


def test_parse_coordinate_systems() -> None:
    doc = json.loads((EXAMPLES / "transformations" / "affine2d2d_with_channel.json")
                     .read_text())["coordinateSystems"]
    systems = parse_coordinate_systems(doc, "doc")
    assert [s.name for s in systems] == ["cji", "cyx"]
    assert systems[1] == CoordinateSystem("cyx", (Axis("c", "space"), Axis("y", "space"),
                                                  Axis("x", "space")))
    assert systems[1].ndim == 3 and systems[1].axis_names == ("c", "y", "x")
    units = parse_coordinate_systems([{"name": "p", "axes": [
        {"name": "t", "type": "time", "unit": "millisecond", "longName": "time"}]}], "doc")
    assert units[0].axes[0] == Axis("t", "time", "millisecond")
    assert parse_coordinate_systems([], "doc") == ()


@pytest.mark.parametrize("value, message", [
    ({"name": "a"}, "must be a list"),
    ([{"axes": [{"name": "x"}]}], r"doc\[0\].*non-empty string 'name'"),
    ([{"name": "", "axes": [{"name": "x"}]}], "non-empty string 'name'"),
    ([{"name": "a", "axes": [{"name": "x"}]}, {"name": "a", "axes": [{"name": "y"}]}],
     r"doc\[1\].*'a' is used twice"),
    ([{"name": "a"}], "non-empty 'axes' list"),
    ([{"name": "a", "axes": []}], "non-empty 'axes' list"),
    ([{"name": "a", "axes": [{"name": "x"}, {"name": "x"}]}], "names axis 'x' twice"),
    ([{"name": "a", "axes": [{"type": "space"}]}], r"axes\[0\].*non-empty string 'name'"),
    ([{"name": "a", "axes": ["x"]}], "an axis must be an object"),
    ([{"name": "a", "axes": [{"name": "x", "type": 3}]}], "'type' must be a string"),
    ([{"name": "a", "axes": [{"name": "x", "unit": ["um"]}]}], "'unit' must be a string"),
    ([{"name": "a", "axes": [{"name": "x", "discrete": "true"}]}], "'discrete' must be"),
    ([{"name": "a", "axes": [{"name": f"d{i}"} for i in range(33)]}], "33 axes"),
    (["a"], "must be an object"),
])
def test_bad_coordinate_systems(value: object, message: str) -> None:
    with pytest.raises(ngffcore.MetadataError, match=message) as info:
        parse_coordinate_systems(value, "doc")
    assert str(info.value).startswith("doc")


def test_system_refs() -> None:
    t = parse_transform({"type": "identity", "input": {"path": "s0"},
                         "output": {"name": "physical", "path": None}}, "w")
    assert t.input == SystemRef(None, "s0") and t.output == SystemRef("physical")
    for bad, message in (([1], "must be an object"), ({"name": 3}, "'name' must be a string"),
                         ({"name": ""}, "'name' must not be empty"),
                         ({"path": 1}, "'path' must be a string")):
        with pytest.raises(ngffcore.MetadataError, match=rf"w.input: .*{message}"):
            parse_transform({"type": "identity", "input": bad}, "w")
    with pytest.raises(ngffcore.MetadataError, match="'output'"):
        parse_transform({"type": "identity", "input": {"name": "a"}}, "w", require_refs=True)
