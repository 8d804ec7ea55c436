"""``coordinates`` and ``displacements`` transformations of the OME-NGFF 0.6 model: small
numpy fields handed to the parser through ``load_field``, nearest and (multi)linear
interpolation against values worked out by hand, the field's own index → input transform,
the vector axis found by its axis type, points outside the field, and the spec's
displacement example (its lookup table is the expected output)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ngffcore
from ngffcore.ome.multiscales import Axis
from ngffcore.ome.transforms import (
    Coordinates,
    Displacements,
    FieldData,
    parse_transform,
    sample_linear,
    sample_nearest,
)
from field_loader import loader

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "ngff-spec" / "0.6" / "examples"
NAN = np.nan


# ---------------------------------------------------------------- the spec's example


def spec_displacement_field() -> tuple[dict[str, Any], FieldData]:
    """The displacements example: the transform from multiscales.json; a field laid out as
    displacement_field.json describes it (axes c: displacement, y, x; its s0 maps array
    indices to "physical" by scale 2), holding the vectors of the spec's lookup table."""
    doc = json.loads((EXAMPLES / "transformations" / "displacements" /
                      "multiscales.json").read_text())
    (t,) = doc["multiscales"][0]["coordinateTransformations"]
    fdoc = json.loads((EXAMPLES / "transformations" / "displacements" /
                       "displacement_field.json").read_text())
    ms = fdoc["ome"]["multiscales"][0]
    axes = tuple(Axis(a["name"], a.get("type"), a.get("unit"))
                 for a in ms["coordinateSystems"][0]["axes"])
    (own,) = ms["datasets"][0]["coordinateTransformations"]
    data = np.zeros((2, 3, 3))  # (c, y, x)
    data[:, 0, 0] = (1.0, 2.0)  # table row: x = (0, 0) → x_a = (0, 0) → (1.0, 2.0)
    data[:, 1, 0] = (0.5, 1.2)  # table row: x = (2, 0) → x_a = (1, 0) → (0.5, 1.2)
    return t, FieldData(data, axes=axes, transform=parse_transform(own, "field s0"))


def test_spec_displacement_example_table() -> None:
    t, field = spec_displacement_field()
    load = loader({"coordinateTransformations/displacementField": field})
    d = parse_transform(t, "multiscales.json: coordinateTransformations[0]", load_field=load,
                        ndim_in=2, ndim_out=2, require_refs=True)
    assert isinstance(d, Displacements) and d.interpolation == "linear"
    got = d.apply([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0]])
    # displacement (table) added to the point; (1, 0) is x_a = (0.5, 0): (0.75, 1.6)
    np.testing.assert_allclose(got, [[1.0, 2.0], [2.5, 1.2], [1.75, 1.6]])
    assert load.calls == ["coordinateTransformations/displacementField"]
    d.apply([[0.0, 0.0]])
    assert len(load.calls) == 1  # loaded once
    with pytest.raises(ngffcore.UnsupportedError, match="closed-form inverse"):
        d.inverse()
    with pytest.raises(ngffcore.UnsupportedError, match="not affine"):
        d.to_matrix()


def test_spec_displacement_example_nearest_and_outside() -> None:
    t, field = spec_displacement_field()
    d = parse_transform(dict(t, interpolation="nearest"), "w",
                        load_field=loader({t["path"]: field}))
    # x_a = (0.5, 0) lies in pixel [0.5, 1.5) of sample 1 → (0.5, 1.2); (0.9, 0) → x_a 0.45
    got = d.apply([[1.0, 0.0], [0.9, 0.0]])
    np.testing.assert_allclose(got, [[1.5, 1.2], [1.9, 2.0]])
    # the field covers x_a in [-0.5, 2.5) per axis, i.e. physical [-1, 5): outside → NaN
    out = d.apply([[5.0, 0.0], [-1.0, -1.0], [4.9, 0.0]])
    assert np.isnan(out[0]).all() and not np.isnan(out[1]).any() and not np.isnan(out[2]).any()


def test_field_transform_including_the_vector_axis() -> None:
    t, field = spec_displacement_field()
    # the field's coordinate system has 3 axes (c, y, x): a 3-D scale with c's factor 1
    own3 = parse_transform({"type": "scale", "scale": [1, 2, 2]}, "own")
    d = parse_transform(t, "w", load_field=loader(
        {t["path"]: FieldData(field.data, axes=field.axes, transform=own3)}))
    np.testing.assert_allclose(d.apply([[1.0, 0.0]]), [[1.75, 1.6]])


# ---------------------------------------------------------------- interpolation by hand


def test_linear_2d_by_hand() -> None:
    v = np.array([[0.0, 20.0], [10.0, 40.0]])[..., None]  # v[i, j]: 0, 20 / 10, 40
    # (0.25, 0.5): .75*.5*0 + .75*.5*20 + .25*.5*10 + .25*.5*40 = 13.75
    pts = np.array([[0.25, 0.5], [0, 0], [1, 1], [-0.25, 0], [1.4, 1], [1.5, 0], [0, -0.6],
                    [0.5, 0.5], [NAN, 0]])
    got = sample_linear(v, pts)[:, 0]
    np.testing.assert_allclose(got, [13.75, 0, 40, 0, 40, NAN, NAN, 17.5, NAN])


def test_nearest_by_hand() -> None:
    v = np.arange(6, dtype=float).reshape(2, 3, 1)  # v[i, j] = 3 i + j
    pts = np.array([[0.49, 0.5], [0.5, 1.49], [-0.5, 2.49], [1.49, -0.5], [1.5, 0], [0, 2.5]])
    np.testing.assert_array_equal(sample_nearest(v, pts)[:, 0], [1, 4, 2, 3, NAN, NAN])


def test_linear_3d_matches_a_linear_function() -> None:
    # a field that is affine in its index is reproduced exactly inside the grid
    i, j, k = np.meshgrid(np.arange(3), np.arange(4), np.arange(5), indexing="ij")
    field = np.stack([2 * i + j, k - 3 * j, i + j + k + 1], axis=-1).astype(float)
    rng = np.random.default_rng(1)
    pts = rng.uniform([0, 0, 0], [2, 3, 4], size=(50, 3))
    want = np.stack([2 * pts[:, 0] + pts[:, 1], pts[:, 2] - 3 * pts[:, 1],
                     pts.sum(axis=1) + 1], axis=-1)
    np.testing.assert_allclose(sample_linear(field, pts), want, atol=1e-12)


def test_nan_sample_without_weight_does_not_spread() -> None:
    v = np.array([[1.0], [2.0], [NAN]])
    np.testing.assert_allclose(sample_linear(v, np.array([[0.5], [1.0], [1.5]]))[:, 0],
                               [1.5, 2.0, NAN])


# ---------------------------------------------------------------- coordinates


def test_coordinates_field_bare_array_vector_last() -> None:
    # 2×2 grid, input (i, j) → 3-D output (a, b, c) = (i + 10, 2 j, i * j)
    data = np.zeros((2, 2, 3))
    for i in range(2):
        for j in range(2):
            data[i, j] = (i + 10, 2 * j, i * j)
    c = parse_transform({"type": "coordinates", "path": "f", "input": {"name": "in"},
                         "output": {"name": "out"}}, "w", load_field=loader({"f": data}),
                        ndim_in=2, ndim_out=3)
    assert isinstance(c, Coordinates) and (c.ndim_in, c.ndim_out) == (2, 3)
    # bilinear at (0.5, 0.5): (10.5, 1, 0.25)
    np.testing.assert_allclose(c.apply([[0.5, 0.5], [1, 0]]), [[10.5, 1, 0.25], [11, 0, 0]])
    assert c.apply(np.zeros((0, 2))).shape == (0, 3)


def test_coordinates_vector_axis_by_type() -> None:
    data = np.array([[5.0, 6.0, 7.0], [-1.0, -2.0, -3.0]]).T  # shape (3, 2): axes x, c
    axes = (Axis("x", "space"), Axis("c", "coordinate"))
    c = parse_transform({"type": "coordinates", "path": "f", "interpolation": "nearest"},
                        "w", load_field=loader({"f": FieldData(data, axes=axes)}))
    np.testing.assert_allclose(c.apply([[1.2]]), [[6, -2]])
    # the same array with the vector axis first, found by its type
    c2 = parse_transform({"type": "coordinates", "path": "f", "interpolation": "nearest"},
                         "w", load_field=loader({"f": FieldData(data.T, axes=axes[::-1])}))
    np.testing.assert_allclose(c2.apply([[1.2]]), [[6, -2]])
    # or given by index
    c3 = parse_transform({"type": "coordinates", "path": "f", "interpolation": "nearest"},
                         "w", load_field=loader({"f": FieldData(data.T, vector_axis=0)}))
    np.testing.assert_allclose(c3.apply([[1.2]]), [[6, -2]])


def test_xarray_like_coordinate_lists() -> None:
    doc = json.loads((EXAMPLES / "transformations" / "xarrayLike.json").read_text())
    (t,) = doc["coordinateTransformations"]
    load = loader({"/xCoordinates": np.array([10.0, 20.0, 30.0]),
                   "/yCoordinates": np.array([-1.0, -2.0])})
    b = parse_transform(t, "xarrayLike.json", load_field=load, ndim_in=2, ndim_out=2)
    # x = xCoordinates at i (linear), y = yCoordinates at j
    np.testing.assert_allclose(b.apply([[0.5, 1.0], [2.0, 0.0]]), [[15, -2], [30, -1]])
    inline = json.loads((EXAMPLES / "transformations" / "byDimensionXarray.json").read_text())
    (t2,) = inline["coordinateTransformations"]
    b2 = parse_transform(t2, "byDimensionXarray.json", ndim_in=2, ndim_out=2,
                         load_field=loader({"xCoordinates": np.array([1.0, 3.0]),
                                            "yCoordinates": np.array([0.0, 100.0])}))
    np.testing.assert_allclose(b2.apply([[0.25, 0.75]]), [[1.5, 75]])


def test_bijection_of_coordinate_fields() -> None:
    # forward: src (j, i) on a 3×3 grid → tgt (y, x) = (2 j + 1, 3 i − 1)
    j, i = np.meshgrid(np.arange(3.0), np.arange(3.0), indexing="ij")
    fwd = np.stack([2 * j + 1, 3 * i - 1], axis=-1)
    # inverse: a field sampled on tgt through its own transform (index → tgt: scale 2, 3
    # then translation 1, −1), so its vectors are just its indices
    own = parse_transform({"type": "sequence", "transformations": [
        {"type": "scale", "scale": [2, 3]}, {"type": "translation", "translation": [1, -1]}]},
        "own")
    a, b = np.meshgrid(np.arange(3.0), np.arange(3.0), indexing="ij")
    inv = FieldData(np.stack([a, b], axis=-1), transform=own)
    doc = json.loads((EXAMPLES / "transformations" / "bijection.json").read_text())
    (t,) = doc["coordinateTransformations"]
    bij = parse_transform(t, "bijection.json", ndim_in=2, ndim_out=2, require_refs=True,
                          load_field=loader({"forward_coordinates": fwd,
                                             "inverse_coordinates": inv}))
    np.testing.assert_allclose(bij.apply([[1, 1], [0.5, 1.5]]), [[3, 2], [2, 3.5]])
    np.testing.assert_allclose(bij.inverse().apply([[3, 2], [2, 3.5]]), [[1, 1], [0.5, 1.5]])


def test_scene_registration_example_round_trip() -> None:
    """scene_registration.json: a bijection of (displacements, affine) and its written
    inverse (affine⁻¹, displacements); with zero displacement fields the two affines must
    undo each other (to the precision the example writes them)."""
    doc = json.loads((EXAMPLES / "scene" / "scene_registration.json").read_text())
    (t,) = doc["attributes"]["ome"]["scene"]["coordinateTransformations"]
    zero = FieldData(np.zeros((4, 4, 4, 3)), transform=parse_transform(
        {"type": "scale", "scale": [100, 100, 100]}, "own"))
    bij = parse_transform(t, "scene", ndim_in=3, ndim_out=3, require_refs=True,
                          load_field=loader({"coordinateTransformations/dfield": zero,
                                             "coordinateTransformations/invdfield": zero}))
    pts = np.array([[10.0, 20.0, 30.0], [100.0, 5.0, 60.0]])
    # forward = the affine: row 0 of its matrix by hand for the first point
    want0 = 0.549687 * 10 - 0.0138092 * 20 + 0.000127526 * 30 + 2.9986
    fwd = bij.apply(pts)
    assert fwd[0, 0] == pytest.approx(want0)
    np.testing.assert_allclose(bij.inverse().apply(fwd), pts, atol=1e-4)


# ---------------------------------------------------------------- failures


def test_field_problems() -> None:
    t = {"type": "displacements", "path": "f"}
    with pytest.raises(ngffcore.UnsupportedError, match="no array loader"):
        parse_transform(t, "w").apply([[0, 0]])
    sinc = parse_transform(dict(t, interpolation="windowed-sinc"), "w",
                           load_field=loader({"f": np.zeros((2, 2, 2))}))
    with pytest.raises(ngffcore.UnsupportedError, match="'windowed-sinc' interpolation"):
        sinc.apply([[0, 0]])
    cases = [
        (np.zeros((2, 2, 3)), 2, "displacement vectors have 3 components"),
        (np.zeros((2, 2, 2, 2)), 2, "grid axes"),
        (np.array([["a"]]), None, "not numbers"),
        (FieldData(np.zeros((2, 2, 2)), axes=(Axis("y"), Axis("x"), Axis("c"))), None,
         "exactly one axis of type"),
        (FieldData(np.zeros((2, 2, 2)), axes=(Axis("c", "coordinate"), Axis("y"),
                                              Axis("x"))), None, "not 'coordinate'"),
        (FieldData(np.zeros((2, 2, 2)), axes=(Axis("y"), Axis("x"))), None, "2 axes"),
        (np.zeros((0, 2, 2)), None, "empty"),
    ]
    for field, ndim, message in cases:
        d = parse_transform(t, "doc.json: ct[3]", ndim_in=ndim, ndim_out=ndim,
                            load_field=loader({"f": field}))
        with pytest.raises(ngffcore.MetadataError, match=message) as info:
            d.apply([[0.5, 0.5]])
        assert "doc.json: ct[3]" in str(info.value)
    for bad, message in (({"type": "coordinates"}, "non-empty string 'path'"),
                         ({"type": "coordinates", "path": ""}, "non-empty string 'path'"),
                         ({"type": "coordinates", "path": "f", "interpolation": 1},
                          "interpolation must be a string")):
        with pytest.raises(ngffcore.MetadataError, match=message):
            parse_transform(bad, "w")
    with pytest.raises(ngffcore.MetadataError, match="displacements input and output"):
        parse_transform(t, "w", ndim_in=2, ndim_out=3)
