"""Cubic B-spline interpolation of a sampled field (the ``bspline-cubic`` interpolation of
OME-NGFF 0.6 ``coordinates``/``displacements``): the interpolating cubic B-spline of
Thévenaz, Blu & Unser, "Interpolation revisited", IEEE TMI 19(7), 2000, section 8.3 (and
Unser, "Splines: a perfect fit", IEEE SPM 1999, for the recursive prefilter).

Two steps. :func:`bspline_coefficients` turns samples into B-spline coefficients with the
causal/anti-causal recursive filter of pole ``z1 = sqrt(3) - 2`` (gain 6) along each grid
axis, so that the spline passes through every sample. :func:`bspline_evaluate` sums the
coefficients of the 4 neighbours per axis weighted by the cubic B-spline ``β³``.

Everything is in field index space: sample *i* of an axis sits at coordinate *i*. Both steps
extend the samples mirror-symmetrically about the first and last sample
(``… s2 s1 | s0 s1 … s(n-1) | s(n-2) s(n-3) …``, period ``2 (n − 1)``; scipy.ndimage's
``mode="mirror"``), so the result equals ``scipy.ndimage.map_coordinates(…, order=3,
mode="mirror")``. An axis of length 1 is constant. Which points are inside the field is the
caller's rule; here any finite point is evaluated on the mirror-extended spline.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["POLE", "bspline_coefficients", "bspline_evaluate"]

#: the pole of the cubic B-spline's inverse filter (Unser 1999, Table I)
POLE = math.sqrt(3.0) - 2.0
#: the filter's gain (1 − z)(1 − 1/z): 6 for the cubic B-spline
_GAIN = (1.0 - POLE) * (1.0 - 1.0 / POLE)


def _filter_axis0(c: np.ndarray) -> np.ndarray:
    """Prefilter along axis 0 of ``c`` (float64, length n ≥ 2, other axes any), vectorised
    over the other axes. Returns a new array."""
    n = c.shape[0]
    z = POLE
    c = c * _GAIN
    # causal start: the exact sum over one period of the mirrored signal, closed by the
    # geometric series 1 / (1 − z^(2n−2)); weights of s0, s1..s(n−2), s(n−1)
    k = np.arange(n, dtype=np.float64)
    w = z**k + np.where((k > 0) & (k < n - 1), z ** (2 * (n - 1) - k), 0.0)
    w /= 1.0 - z ** (2 * (n - 1))
    out = np.empty_like(c)
    out[0] = np.tensordot(w, c, axes=(0, 0))
    for i in range(1, n):  # causal: c+(i) = s(i) + z c+(i−1)
        out[i] = c[i] + z * out[i - 1]
    # anti-causal start for a mirror boundary (c+ is mirror-symmetric about n − 1 too)
    out[n - 1] = (z / (z * z - 1.0)) * (out[n - 1] + z * out[n - 2])
    for i in range(n - 2, -1, -1):  # anti-causal: c(i) = z (c(i+1) − c+(i))
        out[i] = z * (out[i + 1] - out[i])
    return out


def bspline_coefficients(samples: np.ndarray, axes: int | None = None) -> np.ndarray:
    """The cubic B-spline coefficients of ``samples`` along its first ``axes`` axes (all
    axes when None; a field's grid axes, leaving its trailing vector axis alone).

    Same shape as ``samples``, float64. Mirror boundaries (module docstring); axes of length
    1 are left as they are (a constant). NaN samples spread along every filtered axis: one
    NaN makes the whole line — and, across axes, the whole field — NaN."""
    c = np.array(samples, dtype=np.float64)
    for a in range(c.ndim if axes is None else axes):
        if c.shape[a] < 2:
            continue
        c = np.moveaxis(_filter_axis0(np.moveaxis(c, a, 0)), 0, a)
    return c


def _weights(t: np.ndarray) -> tuple[np.ndarray, ...]:
    """β³ weights of the neighbours at offsets −1, 0, +1, +2 from ``floor(x)``, for the
    fractional part ``t = x − floor(x)`` in [0, 1); they sum to 1."""
    s = 1.0 - t
    t2, t3 = t * t, t * t * t
    return (s * s * s / 6.0, (4.0 - 6.0 * t2 + 3.0 * t3) / 6.0,
            (1.0 + 3.0 * (t + t2 - t3)) / 6.0, t3 / 6.0)


def _mirror(i: np.ndarray, n: int) -> np.ndarray:
    """Integer indices folded into [0, n) by the mirror extension (period 2 (n − 1))."""
    if n == 1:
        return np.zeros_like(i)
    period = 2 * (n - 1)
    i = np.abs(i) % period
    out: np.ndarray = np.where(i >= n, period - i, i)
    return out


def bspline_evaluate(coefficients: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The spline with ``coefficients`` (grid shape + (k,), from :func:`bspline_coefficients`
    with ``axes`` = grid ndim) at index-space points ``idx`` (m, grid ndim): (m, k) float64.

    Sums 4**ndim terms (4 neighbours per axis, mirrored at the borders), vectorised over the
    points; ``idx`` must be finite (the caller filters NaN and points outside)."""
    grid = coefficients.shape[:-1]
    ndim = len(grid)
    m = idx.shape[0]
    base = np.floor(idx)
    frac = idx - base
    base_i = base.astype(np.intp)
    # per axis: the 4 neighbour indices (mirrored) and their weights, each (4, m)
    at = [np.stack([_mirror(base_i[:, a] + o, grid[a]) for o in (-1, 0, 1, 2)])
          for a in range(ndim)]
    wt = [np.stack(_weights(frac[:, a])) for a in range(ndim)]
    acc = np.zeros((m, coefficients.shape[-1]))
    for term in np.ndindex(*(4,) * ndim):
        w = np.ones(m)
        for a, o in enumerate(term):
            w = w * wt[a][o]
        acc += w[:, None] * coefficients[tuple(at[a][o] for a, o in enumerate(term))]
    return acc
