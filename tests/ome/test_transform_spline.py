"""``bspline-cubic``/``cubic`` interpolation of ``coordinates``/``displacements`` fields:
the interpolating cubic B-spline with mirror boundaries, checked against values worked out
by hand, against a smooth function it must approximate far better than linear
interpolation, and against ``scipy.ndimage.map_coordinates(order=3, mode="mirror")`` (an
independent implementation of the same spline) directly and through ``parse_transform``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import ngffcore
import ngffcore.ome.transform_fields as transform_fields
from ngffcore.ome.transform_spline import bspline_coefficients, bspline_evaluate
from ngffcore.ome.transforms import (
    Coordinates,
    Displacements,
    FieldData,
    parse_transform,
    sample_cubic,
    sample_linear,
)
from field_loader import loader

NAN = np.nan


def inside_points(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """n random points inside the field's pixels [-0.5, s - 0.5) per axis: a third near the
    lower border, a third near the upper border, a third anywhere."""
    grid = np.asarray(shape, dtype=float)
    anywhere = rng.uniform(-0.5, grid - 0.5, size=(n, len(shape)))
    low = rng.uniform(-0.5, np.minimum(1.0, grid - 0.5), size=(n, len(shape)))
    high = rng.uniform(np.maximum(grid - 2.0, -0.5), grid - 0.5 - 1e-9, size=(n, len(shape)))
    pick = rng.integers(0, 3, size=(n, len(shape)))
    return np.where(pick == 0, anywhere, np.where(pick == 1, low, high))


# ---------------------------------------------------------------- by hand, no scipy


def test_cubic_by_hand_1d() -> None:
    """Samples [0, 1, 0] mirror to the alternating ... 1 0 1 0 ...; the coefficients solving
    (c[i−1] + 4 c[i] + c[i+1]) / 6 = s[i] alternate −1, 2. At t = 1/4 the β³ weights are
    (27, 235, 121, 1) / 384, so s(0.25) = (2·27 − 235 + 2·121 − 1) / 384 = 5/32."""
    v = np.array([[0.0], [1.0], [0.0]])
    np.testing.assert_allclose(bspline_coefficients(v, 1)[:, 0], [-1, 2, -1], rtol=1e-14)
    pts = np.array([[0.25], [1.75], [-0.25], [0.75], [1.0], [0.5], [2.5], [-0.51], [NAN]])
    got = sample_cubic(v, pts)[:, 0]
    np.testing.assert_allclose(got, [5 / 32, 5 / 32, 5 / 32, 27 / 32, 1, 0.5, NAN, NAN, NAN],
                               rtol=1e-14, atol=1e-15)
    # linear interpolation gives 0.25 there: the test tells the two apart
    assert sample_linear(v, pts[:1])[0, 0] == 0.25


def test_cubic_passes_through_the_samples() -> None:
    rng = np.random.default_rng(7)
    for shape in [(6,), (2,), (4, 5), (3, 2, 4), (1, 4)]:
        v = rng.normal(size=shape + (3,))
        grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
        got = sample_cubic(v, grid.reshape(-1, len(shape)).astype(float))
        np.testing.assert_allclose(got, v.reshape(-1, 3), rtol=1e-12, atol=1e-12)


def test_cubic_constant_field_everywhere() -> None:
    v = np.full((3, 4, 2), 2.5)
    pts = inside_points(np.random.default_rng(3), (3, 4), 40)
    np.testing.assert_allclose(sample_cubic(v, pts), 2.5, rtol=1e-13)


def test_cubic_approximates_a_smooth_field_where_linear_does_not() -> None:
    # cos(π x / 8) on x = 0..8 has zero slope at both ends, so its mirror extension is smooth
    # and the cubic spline is within O(h⁴) of it up to the grid's edge
    def g(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.cos(np.pi * x / 8)
        return out

    v = g(np.arange(9.0))[:, None]
    pts = np.linspace(-0.5, 8.49, 61)[:, None]
    want = g(pts[:, 0])
    assert np.abs(sample_cubic(v, pts)[:, 0] - want).max() < 1e-4
    assert np.abs(sample_linear(v, pts)[:, 0] - want).max() > 1e-2


def test_nan_sample_spreads_and_ndim_limit() -> None:
    v = np.zeros((4, 1))
    v[2, 0] = NAN
    assert np.isnan(sample_cubic(v, np.array([[0.0], [0.4]]))).all()
    big = parse_transform({"type": "coordinates", "path": "f", "interpolation": "cubic"}, "w",
                          load_field=loader({"f": np.zeros((2,) * 7 + (1,))}))
    with pytest.raises(ngffcore.UnsupportedError, match="7-D field"):
        big.apply(np.zeros((1, 7)))


# ---------------------------------------------------------------- against scipy


@pytest.mark.parametrize("shape", [(7,), (2,), (5, 6), (2, 3), (4, 5, 6), (1, 5)])
def test_cubic_matches_scipy_map_coordinates(shape: tuple[int, ...]) -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(sum(shape))
    v = rng.normal(size=shape + (2,))
    pts = inside_points(rng, shape, 300)
    got = sample_cubic(v, pts)
    for comp in range(2):
        want = ndimage.map_coordinates(v[..., comp], pts.T, order=3, mode="mirror")
        np.testing.assert_allclose(got[:, comp], want, rtol=1e-10, atol=1e-12)
        coeffs = ndimage.spline_filter(v[..., comp], order=3, mode="mirror")
        np.testing.assert_allclose(bspline_coefficients(v, len(shape))[..., comp], coeffs,
                                   rtol=1e-10, atol=1e-12)
    # evaluating the spline itself (no inside rule) matches scipy outside the pixels too
    far = rng.uniform(-3.0, np.asarray(shape) + 2.0, size=(50, len(shape)))
    want0 = ndimage.map_coordinates(v[..., 0], far.T, order=3, mode="mirror")
    np.testing.assert_allclose(bspline_evaluate(bspline_coefficients(v, len(shape)), far)[:, 0],
                               want0, rtol=1e-10, atol=1e-12)
    # but the field lookup keeps the module's rule: NaN outside [-0.5, n - 0.5)
    outside = np.full((1, len(shape)), 0.0)
    outside[0, -1] = shape[-1] - 0.5
    assert np.isnan(sample_cubic(v, outside)).all()


@pytest.mark.parametrize("name", ["bspline-cubic", "cubic"])
def test_cubic_through_parse_transform(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(11)
    counted: list[int] = []

    def counting(samples: np.ndarray, axes: int | None = None) -> np.ndarray:
        counted.append(1)
        return bspline_coefficients(samples, axes)

    monkeypatch.setattr(transform_fields, "bspline_coefficients", counting)
    # a 2-D field of 3-vectors on a 5×6 grid, its own transform index → input: scale (2, 0.5)
    # then translation (−1, 3); points are given in the input system
    data = rng.normal(size=(5, 6, 3))
    own = parse_transform({"type": "sequence", "transformations": [
        {"type": "scale", "scale": [2, 0.5]}, {"type": "translation", "translation": [-1, 3]}]},
        "own")
    idx = inside_points(rng, (5, 6), 100)
    pts = idx * [2, 0.5] + [-1, 3]
    load = loader({"c": FieldData(data, transform=own)})
    c = parse_transform({"type": "coordinates", "path": "c", "interpolation": name}, "w",
                        load_field=load, ndim_in=2, ndim_out=3)
    assert isinstance(c, Coordinates) and c.interpolation == name
    want = np.stack([ndimage.map_coordinates(data[..., k], idx.T, order=3, mode="mirror")
                     for k in range(3)], axis=-1)
    np.testing.assert_allclose(c.apply(pts), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c.apply(pts[:7]), want[:7], rtol=1e-10, atol=1e-12)
    assert load.calls == ["c"] and len(counted) == 1  # loaded and prefiltered once
    assert np.isnan(c.apply([[-1 - 1.01, 3.0]])).all()  # index −0.505: outside

    # displacements: a 3-D field with its vector axis first (found by index), no own transform
    disp = rng.normal(size=(3, 4, 3, 5))
    d = parse_transform({"type": "displacements", "path": "d", "interpolation": name}, "w",
                        load_field=loader({"d": FieldData(disp, vector_axis=0)}))
    assert isinstance(d, Displacements)
    p3 = inside_points(rng, (4, 3, 5), 100)
    want3 = p3 + np.stack([ndimage.map_coordinates(disp[k], p3.T, order=3, mode="mirror")
                           for k in range(3)], axis=-1)
    np.testing.assert_allclose(d.apply(p3), want3, rtol=1e-10, atol=1e-12)
    # a non-linear field: linear interpolation would not give these values
    lin = parse_transform({"type": "displacements", "path": "d"}, "w",
                          load_field=loader({"d": FieldData(disp, vector_axis=0)}))
    assert np.abs(lin.apply(p3) - want3).max() > 1e-2
