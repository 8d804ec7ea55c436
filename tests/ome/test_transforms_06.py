"""The OME-NGFF 0.6 transform model (``ngffcore.ome.transforms``) against the spec's own
examples: every example under ``examples/transformations`` (and the multiscales, scene and
subspace examples) parsed with the dimensionalities of the coordinate systems it names, its
points mapped to values written down by hand from the spec's definitions (parameter *i*
belongs to axis *i*; an affine's last column is its translation), matrices compared to
hand-built ones, inverses checked by round trips. Pure: no I/O beyond reading the examples.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ngffcore
from ngffcore.ome.transforms import (
    Affine,
    Bijection,
    ByDimension,
    Identity,
    MapAxis,
    ProjectAxis,
    Rotation,
    SequenceTransform,
    SystemRef,
    Transform,
    Translation,
    parse_coordinate_systems,
    parse_transform,
)
from spec_json import load_commented_json, strip_comments

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "ngff-spec" / "0.6" / "examples"
TRANSFORMATIONS = EXAMPLES / "transformations"


def test_strip_comments() -> None:
    assert json.loads(strip_comments('{"a": "http://x//y", // c\n "b": 1}')) == {
        "a": "http://x//y", "b": 1}


def example_transforms(name: str, **kw: Any) -> dict[str, Transform]:
    """Every transform of ``transformations/<name>``, sized by the systems it names, keyed
    by its name (or its index)."""
    doc = load_commented_json(TRANSFORMATIONS / name)
    systems = {s.name: s for s in parse_coordinate_systems(doc["coordinateSystems"], name)}
    out = {}
    for i, t in enumerate(doc["coordinateTransformations"]):
        def ref(v: Any) -> str:
            return v if isinstance(v, str) else v["name"]
        out[t.get("name", str(i))] = parse_transform(
            t, f"{name}: coordinateTransformations[{i}]",
            ndim_in=systems[ref(t["input"])].ndim, ndim_out=systems[ref(t["output"])].ndim,
            require_refs=True, **kw)
    return out


def only(name: str, **kw: Any) -> Transform:
    (t,) = example_transforms(name, **kw).values()
    return t


def check_round_trip(t: Transform, pts: np.ndarray) -> None:
    back = t.inverse().apply(t.apply(pts))
    np.testing.assert_allclose(back, pts, atol=1e-9)


PTS2 = np.array([[1.0, 2.0], [0.0, 0.0], [-3.5, 7.25]])


# ---------------------------------------------------------------- every example file
# (expected values below are the spec's function for each example, evaluated by hand)


def test_identity_example() -> None:
    t = only("identity.json")
    assert isinstance(t, Identity) and t.type == "identity"
    assert (t.ndim_in, t.ndim_out) == (2, 2)
    assert t.input == SystemRef("in") and t.output == SystemRef("out")
    np.testing.assert_array_equal(t.apply(PTS2), PTS2)
    np.testing.assert_array_equal(t.to_matrix(), np.eye(3))
    assert t.inverse().input == SystemRef("out") and t.inverse().output == SystemRef("in")
    check_round_trip(t, PTS2)


def test_map_axis_example() -> None:
    ts = example_transforms("mapAxis1.json")
    same, perm = ts["equivalent to identity"], ts["permutation"]
    # "equivalent to identity" writes its input/output as bare strings: read as names
    assert same.input == SystemRef("in") and same.output == SystemRef("out1")
    np.testing.assert_array_equal(same.apply([[1, 2]]), [[1, 2]])
    # permutation [1, 0]: output 0 (y) = input 1 (i), output 1 (x) = input 0 (j)
    np.testing.assert_array_equal(perm.apply([[1, 2], [5, -6]]), [[2, 1], [-6, 5]])
    np.testing.assert_array_equal(perm.to_matrix(), [[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    check_round_trip(perm, PTS2)


def test_project_axis_examples() -> None:
    up = only("projectAxis.json")
    assert isinstance(up, ProjectAxis) and (up.ndim_in, up.ndim_out) == (2, 4)
    # c = 0, z = 0, y = i, x = j
    np.testing.assert_array_equal(up.apply([[1, 2], [3, 4]]), [[0, 0, 1, 2], [0, 0, 3, 4]])
    np.testing.assert_array_equal(up.to_matrix(), [[0, 0, 0], [0, 0, 0], [1, 0, 0],
                                                   [0, 1, 0], [0, 0, 1]])
    check_round_trip(up, PTS2)  # nothing dropped: dropping the created axes undoes it
    both = only("projectAxis2.json")
    # (c, i, j) → (z, y, x): z = 0, y = i, x = j
    assert (both.ndim_in, both.ndim_out) == (3, 3)
    np.testing.assert_array_equal(both.apply([[5, 1, 2]]), [[0, 1, 2]])
    with pytest.raises(ngffcore.UnsupportedError, match="drops"):
        both.inverse()


def test_translation_example() -> None:
    t = only("translation.json")
    assert isinstance(t, Translation)
    # translation [9, -1.42]: y = j + 9, x = i - 1.42 (parameter k on axis k)
    np.testing.assert_allclose(t.apply([[1, 2]]), [[10, 0.58]])
    np.testing.assert_allclose(t.to_matrix(), [[1, 0, 9], [0, 1, -1.42], [0, 0, 1]])
    check_round_trip(t, PTS2)


def test_scale_examples() -> None:
    t = only("scale.json")
    # scale [2, 3.12]: y = 2 j, x = 3.12 i
    np.testing.assert_allclose(t.apply([[1, 2], [-1, 0.5]]), [[2, 6.24], [-2, 1.56]])
    np.testing.assert_allclose(t.to_matrix(), [[2, 0, 0], [0, 3.12, 0], [0, 0, 1]])
    check_round_trip(t, PTS2)
    d = only("scale_with_discrete.json")
    np.testing.assert_allclose(d.apply([[1, 2, 3]]), [[1, 6.24, 6]])
    assert d.to_matrix().shape == (4, 4)


def test_affine_examples() -> None:
    a = only("affine2d2d.json")
    assert isinstance(a, Affine) and (a.ndim_in, a.ndim_out) == (2, 2)
    # y = 1 j + 2 i + 3, x = 4 j + 5 i + 6
    np.testing.assert_allclose(a.apply([[1, 2], [0, 0]]), [[8, 20], [3, 6]])
    np.testing.assert_allclose(a.to_matrix(), [[1, 2, 3], [4, 5, 6], [0, 0, 1]])
    check_round_trip(a, PTS2)
    c = only("affine2d2d_with_channel.json")
    # c = k, y = j + 2 i + 3, x = 4 j + 5 i + 6
    np.testing.assert_allclose(c.apply([[2, 1, 1]]), [[2, 6, 15]])
    check_round_trip(c, np.array([[2.0, 1, 1], [0, -1, 3]]))
    # 2-D → 3-D, last column the translation (the rule; the example's prose reads the first
    # column as the translation): z = i, y = 2 i + 3 j + 4, x = 5 i + 6 j + 7
    up = only("affine2d3d.json")
    assert (up.ndim_in, up.ndim_out) == (2, 3)
    np.testing.assert_allclose(up.apply([[1, 2]]), [[1, 12, 24]])
    np.testing.assert_allclose(up.to_matrix(), [[1, 0, 0], [2, 3, 4], [5, 6, 7], [0, 0, 1]])
    with pytest.raises(ngffcore.UnsupportedError, match="not invertible"):
        up.inverse()


def test_rotation_example() -> None:
    r = only("rotation.json")
    assert isinstance(r, Rotation) and (r.ndim_in, r.ndim_out) == (2, 2)
    # [[0, -1], [1, 0]] on (j, i): y = -i, x = j
    np.testing.assert_allclose(r.apply([[1, 2]]), [[-2, 1]])
    np.testing.assert_allclose(r.to_matrix(), [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    inv = r.inverse()
    assert isinstance(inv, Rotation)
    np.testing.assert_allclose(inv.apply([[-2, 1]]), [[1, 2]])
    check_round_trip(r, PTS2)


def test_sequence_example() -> None:
    s = only("sequence.json")
    assert isinstance(s, SequenceTransform) and [m.type for m in s.members] == [
        "translation", "scale"]
    # y = (j + 0.1) * 2, x = (i + 0.9) * 3
    np.testing.assert_allclose(s.apply([[1, 2], [0, 0]]), [[2.2, 8.7], [0.2, 2.7]])
    np.testing.assert_allclose(s.to_matrix(), [[2, 0, 0.2], [0, 3, 2.7], [0, 0, 1]])
    inv = s.inverse()
    assert [m.type for m in inv.members] == ["scale", "translation"]  # type: ignore[attr-defined]
    assert inv.input == SystemRef("out") and inv.output == SystemRef("in")
    check_round_trip(s, PTS2)


def test_by_dimension_examples() -> None:
    b = only("byDimension1.json")
    assert isinstance(b, ByDimension) and (b.ndim_in, b.ndim_out) == (2, 2)
    # x = i - 1 (axis 1), y = 2 j (axis 0)
    np.testing.assert_allclose(b.apply([[1, 2], [3, -1]]), [[2, 1], [6, -2]])
    np.testing.assert_allclose(b.to_matrix(), [[2, 0, 0], [0, 1, -1], [0, 0, 1]])
    check_round_trip(b, PTS2)
    b2 = only("byDimension2.json")
    # (l, j, k, i) → (z, y, x): y = i + 0.5, x = k + 1.5, z = 2 j; l unused
    assert (b2.ndim_in, b2.ndim_out) == (4, 3)
    np.testing.assert_allclose(b2.apply([[1, 2, 3, 4], [9, 0, 0, 0]]),
                               [[4, 4.5, 4.5], [0, 0.5, 1.5]])
    np.testing.assert_allclose(b2.to_matrix(), [[0, 2, 0, 0, 0], [0, 0, 0, 1, 0.5],
                                                [0, 0, 1, 0, 1.5], [0, 0, 0, 0, 1]])
    with pytest.raises(ngffcore.UnsupportedError, match="byDimension is invertible only"):
        b2.inverse()


@pytest.mark.parametrize("name", ["byDimensionInvalid1.json", "byDimensionInvalid2.json"])
def test_by_dimension_invalid_examples(name: str) -> None:
    with pytest.raises(ngffcore.MetadataError, match=f"{name}: coordinateTransformations"
                                                     r"\[0\].*output ax"):
        example_transforms(name)
    # without the systems' sizes, too: the entries themselves collide
    doc = load_commented_json(TRANSFORMATIONS / name)["coordinateTransformations"][0]
    with pytest.raises(ngffcore.MetadataError, match="more than once"):
        parse_transform(doc, name)


def test_sequence_subspace_example_is_refused() -> None:
    # members with inputAxes/outputAxes inside a sequence have no meaning in the 0.6 text
    with pytest.raises(ngffcore.UnsupportedError, match=r"transformations\[0\].*subspace"):
        example_transforms("sequenceSubspace1.json")


def test_bijection_examples_parse_alike() -> None:
    short = only("bijection.json")
    assert isinstance(short, Bijection)
    # members without input/output take the bijection's (swapped for the inverse) — exactly
    # what bijection_verbose.json spells out
    verbose = parse_transform(load_commented_json(TRANSFORMATIONS / "bijection_verbose.json"),
                              "bijection_verbose.json", ndim_in=2, ndim_out=2)
    assert verbose == short
    assert short.forward.input == SystemRef("src") and short.forward.output == SystemRef("tgt")
    assert short.inverse_transform.input == SystemRef("tgt")
    inv = short.inverse()
    assert inv.input == SystemRef("tgt") and inv.forward is short.inverse_transform
    # no loader: it parses, but its fields cannot be evaluated
    with pytest.raises(ngffcore.UnsupportedError, match="forward_coordinates"):
        short.apply([[0, 0]])


def test_every_transformation_example_is_covered() -> None:
    """Each example file is exercised above (or in test_transform_fields.py for fields)."""
    covered = {"identity", "mapAxis1", "projectAxis", "projectAxis2", "translation", "scale",
               "scale_with_discrete", "affine2d2d", "affine2d2d_with_channel", "affine2d3d",
               "rotation", "sequence", "byDimension1", "byDimension2", "byDimensionInvalid1",
               "byDimensionInvalid2", "sequenceSubspace1", "bijection", "bijection_verbose",
               "byDimensionXarray", "xarrayLike"}
    assert {p.stem for p in TRANSFORMATIONS.glob("[!.]*.json")} == covered


# ---------------------------------------------------------------- multiscales, scene, subspace


def multiscale_transforms(doc: dict[str, Any]) -> list[Transform]:
    ome = doc.get("attributes", doc).get("ome", doc)
    out = []
    for m in ome["multiscales"]:
        systems = {s.name: s for s in parse_coordinate_systems(m["coordinateSystems"], "cs")}
        for d, ds in enumerate(m["datasets"]):
            (t,) = ds["coordinateTransformations"]
            n = systems[t["output"]["name"]].ndim  # the array has the intrinsic system's rank
            out.append(parse_transform(t, f"datasets[{d}]", ndim_in=n, ndim_out=n,
                                       require_refs=True))
        for i, t in enumerate(m.get("coordinateTransformations", [])):
            n_in = systems[t["input"]["name"]].ndim if t["input"].get("name") in systems \
                else None
            out.append(parse_transform(t, f"coordinateTransformations[{i}]", ndim_in=n_in,
                                       ndim_out=systems[t["output"]["name"]].ndim,
                                       require_refs=True))
    return out


def test_multiscales_example() -> None:
    s0, s1, s2 = multiscale_transforms(load_commented_json(EXAMPLES / "multiscales_strict" /
                                                    "multiscales_example.json"))
    assert s0.input == SystemRef(path="s0") and s0.output == SystemRef("intrinsic")
    p = np.array([[1.0, 2, 3, 4, 5]])
    np.testing.assert_allclose(s0.apply(p), [[0.1, 2, 1.5, 2, 2.5]])
    # s1: scale [0.1, 1, 1, 1, 1] then translation [0, 0, .25, .25, .25]
    np.testing.assert_allclose(s1.apply(p), [[0.1, 2, 3.25, 4.25, 5.25]])
    m = np.diag([0.1, 1, 2, 2, 2, 1])
    m[2:5, 5] = 0.75
    np.testing.assert_allclose(s2.to_matrix(), m)
    check_round_trip(s2, p)


def test_multiscales_relative_and_extra_transforms() -> None:
    s0, s1, s2, extra = multiscale_transforms(load_commented_json(
        EXAMPLES / "multiscales_strict" / "multiscales_example_relative.json"))
    assert extra.name == "additional_translation" and extra.output == SystemRef("world")
    np.testing.assert_allclose(extra.apply([[0, 0, 0, 0, 0]]), [[0, 0, 10, 20, 30]])
    np.testing.assert_allclose(s2.apply([[0, 0, 1, 1, 1]]), [[0, 0, 5.5, 5.5, 5.5]])
    (lvl, to_physical) = multiscale_transforms(load_commented_json(
        EXAMPLES / "multiscales_strict" / "multiscales_transformations.json"))
    np.testing.assert_allclose(to_physical.apply([[1, 2]]), [[10, 20]])
    (lvl, label) = multiscale_transforms(load_commented_json(
        EXAMPLES / "multiscales_strict" / "multiscales_reference_to_label.json"))
    assert label.input == SystemRef("physical", "labels/cell_segmentation")
    assert label.type == "identity" and label.ndim_in == 3


def test_subspace_permute_example() -> None:
    lvl, perm = multiscale_transforms(load_commented_json(EXAMPLES / "subspace" /
                                                   "subspacePermute.json"))
    assert isinstance(perm, MapAxis) and perm.name == "transform-name"
    # array_coordinates (dim_0, dim_1) → physical (y, x) by [1, 0]: y = dim_1, x = dim_0
    np.testing.assert_array_equal(
        SequenceTransform([lvl, perm]).apply([[3, 4]]), [[4, 3]])


def test_scene_stitching_example() -> None:
    doc = load_commented_json(EXAMPLES / "scene" / "scene_stitching.json")
    scene = doc["attributes"]["ome"]["scene"]
    (world,) = parse_coordinate_systems(scene["coordinateSystems"], "scene")
    ts = [parse_transform(t, f"scene[{i}]", ndim_out=world.ndim, require_refs=True)
          for i, t in enumerate(scene["coordinateTransformations"])]
    assert [t.input for t in ts] == [SystemRef("physical", f"tile_{k}") for k in range(4)]
    # tile k's origin lands at its translation in the world system
    got = np.vstack([t.apply([[0.0, 0.0]]) for t in ts])
    np.testing.assert_array_equal(got, [[0, 0], [0, 348], [276, 0], [276, 348]])
