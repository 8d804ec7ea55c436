"""Native downsampling kernels (csrc/ngff_downsample.c, issue 16) against independent
references: a per-block model in Python integers (mean, rounded half to even by int math),
numpy (float means, nearest), collections.Counter (mode) and scipy.ndimage (gaussian: the
filter with the spec's kernel through ``correlate1d`` bit-exact, and ``gaussian_filter``
itself within rounding). Regions tiled from ``downsample_input_box`` boxes must reassemble the
whole-image result exactly (no seams)."""

from __future__ import annotations

import itertools
import math
import threading
from collections import Counter

import numpy as np
import pytest
import scipy.ndimage as ndi

from ngffcore import _core
from ngffcore.errors import ArgumentError, NgffError, OutputError

MEAN, NEAREST, MODE, GAUSSIAN = _core.DS_MEAN, _core.DS_NEAREST, _core.DS_MODE, _core.DS_GAUSSIAN
METHODS = (MEAN, NEAREST, MODE, GAUSSIAN)
INT_DTYPES = ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")
FLOAT_DTYPES = ("float16", "float32", "float64", "complex64", "complex128")
ALL_DTYPES = INT_DTYPES + FLOAT_DTYPES


def _level_shape(shape, factors):
    return tuple(-(-n // f) for n, f in zip(shape, factors))


def _data(rng, shape, dtype, *, method=MEAN):
    """Random data of ``dtype``: labels with few values for mode (ties happen), moderate
    magnitudes for gaussian of 64-bit ints (float64 holds them), the full range otherwise."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind in "iu":
        if method == MODE:
            lo = -2 if dt.kind == "i" else 0
            return rng.integers(lo, lo + 4, size=shape).astype(dt)
        info = np.iinfo(dt)
        lo, hi = int(info.min), int(info.max)
        if method == GAUSSIAN and dt.itemsize == 8:
            lo, hi = max(lo, -(1 << 40)), 1 << 40
        return rng.integers(lo, hi, size=shape, dtype=dt, endpoint=True)
    if dt.kind == "c":
        re = rng.standard_normal(shape) * 100
        im = rng.standard_normal(shape) * 100
        return (re + 1j * im).astype(dt)
    return (rng.standard_normal(shape) * 100).astype(dt)


# --------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------


def _blocks(a, factors):
    """(output index, block) for every output pixel, blocks clipped at the edges."""
    for o in np.ndindex(*_level_shape(a.shape, factors)):
        yield o, a[tuple(slice(f * i, f * i + f) for f, i in zip(factors, o))]


def _round_half_even(num, den):
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return q


def ref_mean(a, factors):
    out = np.empty(_level_shape(a.shape, factors), dtype=a.dtype)
    for o, b in _blocks(a, factors):
        if a.dtype.kind in "biu":
            total = sum(int(v) for v in b.flat)  # Python ints: exact for 64-bit data
            out[o] = _round_half_even(total, b.size)
        elif a.dtype.kind == "c":
            out[o] = complex(b.real.astype(np.float64).mean(), b.imag.astype(np.float64).mean())
        else:
            out[o] = b.astype(np.float64).mean()
    return out


def ref_nearest(a, factors):
    return a[tuple(slice(None, None, f) for f in factors)]


def ref_mode(a, factors):
    out = np.empty(_level_shape(a.shape, factors), dtype=a.dtype)
    for o, b in _blocks(a, factors):
        counts = Counter(b.flat)
        out[o] = min(counts, key=lambda v: (-counts[v], v))
    return out


def _spec_weights(f):
    """The spec's kernel: exp(-0.5 / sigma**2 * x**2) by libm (math.exp), over its numpy sum."""
    sigma = f / 2
    radius = int(4.0 * sigma + 0.5)
    phi = np.array([math.exp((-0.5 / (sigma * sigma)) * float(x * x))
                    for x in range(-radius, radius + 1)])
    return phi / phi.sum()


def _cast(y, dtype):
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return np.clip(np.rint(y), 0, 1).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return np.clip(np.rint(y), info.min, info.max).astype(dt)
    return y.astype(dt)


def ref_gaussian(a, factors, *, spec_kernel=True):
    """The whole-image filter then every f-th pixel, cast to the dtype. spec_kernel: scipy's
    correlate1d with the spec's weights (bit-exact); else gaussian_filter itself."""
    def filt(x):
        x = x.astype(np.float64)
        if spec_kernel:
            for axis, f in enumerate(factors):
                if f > 1:
                    x = ndi.correlate1d(x, _spec_weights(f), axis=axis, mode="reflect")
        else:
            x = ndi.gaussian_filter(x, sigma=[f / 2 if f > 1 else 0 for f in factors],
                                    mode="reflect", truncate=4.0)
        return x[tuple(slice(None, None, f) for f in factors)]

    if a.dtype.kind == "c":
        return (filt(a.real) + 1j * filt(a.imag)).astype(a.dtype), None
    y = filt(a)
    return _cast(y, a.dtype), y


def _assert_matches(method, a, factors, got):
    if method == NEAREST:
        np.testing.assert_array_equal(got, ref_nearest(a, factors))
    elif method == MODE:
        np.testing.assert_array_equal(got, ref_mode(a, factors))
    elif method == GAUSSIAN:
        np.testing.assert_array_equal(got, ref_gaussian(a, factors)[0])
    elif a.dtype.kind in "biu":
        np.testing.assert_array_equal(got, ref_mean(a, factors))
    else:
        # float64 sums in another order: within 1 unit in the last place of the dtype, or
        # within float64 rounding of the block's magnitude (cancellation near 0)
        ref = ref_mean(a, factors)
        parts = [(got.real, ref.real), (got.imag, ref.imag)] if a.dtype.kind == "c" \
            else [(got, ref)]
        tol = 1e-12 * float(np.max(np.abs(a), initial=0.0))
        for g, r in parts:
            same = (g == r) | (np.isnan(g) & np.isnan(r))
            one_ulp = np.abs(g.astype(np.float64) - r) <= np.spacing(np.abs(r)).astype(np.float64)
            close = np.abs(g.astype(np.float64) - r.astype(np.float64)) <= tol
            assert (same | one_ulp | close).all(), (g, r)


def _run(method, a, factors, *, out=None):
    """The whole level from the whole image."""
    if out is None:
        out = np.empty(_level_shape(a.shape, factors), dtype=a.dtype)
    _core.downsample(method, a, (0,) * a.ndim, a.shape, factors, out, (0,) * a.ndim)
    return out


# --------------------------------------------------------------------------------------
# whole images
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_every_dtype(method, dtype):
    if method == MODE and np.dtype(dtype).kind not in "biu":
        pytest.skip("mode takes integer data (see test_bad_arguments)")
    rng = np.random.default_rng(hash((method, dtype)) % 2**32)
    for shape, factors in (((7, 9), (2, 2)), ((8, 11), (3, 2)), ((5, 6), (1, 4)),
                           ((3, 2), (4, 4)), ((10, 1), (2, 3)), ((17, 19), (8, 9))):
        a = _data(rng, shape, dtype, method=method)
        _assert_matches(method, a, factors, _run(method, a, factors))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("ndim", [1, 2, 3, 4, 5])
def test_dimensions_and_factors(method, ndim):
    rng = np.random.default_rng(100 + ndim * 7 + method)
    for trial in range(6):
        shape = tuple(int(n) for n in rng.integers(1, 9 if ndim < 4 else 6, size=ndim))
        factors = tuple(int(f) for f in rng.integers(1, 5, size=ndim))
        for dtype in ("uint16", "int8", "float32") if method != MODE else ("uint16", "int8"):
            a = _data(rng, shape, dtype, method=method)
            _assert_matches(method, a, factors, _run(method, a, factors))


def test_int64_mean_is_exact():
    """Sums past 64 bits and non power-of-two counts, rounded half to even."""
    rng = np.random.default_rng(5)
    for dtype in ("int64", "uint64"):
        info = np.iinfo(dtype)
        a = rng.integers(int(info.max) - 10, int(info.max), size=(9, 10), dtype=dtype,
                         endpoint=True)
        a[::3, ::2] = info.min if dtype == "int64" else info.max - 1
        for factors in ((2, 2), (3, 3), (3, 4)):
            np.testing.assert_array_equal(_run(MEAN, a, factors), ref_mean(a, factors))
    # exact halves: (1 + 2) / 2 -> 2, (2 + 3) / 2 -> 2, (-1 + -2) / 2 -> -2
    a = np.array([1, 2, 2, 3, -1, -2, -3, -2], dtype=np.int32)
    np.testing.assert_array_equal(_run(MEAN, a, (2,)), [2, 2, -2, -2])
    b = np.array([True, False, True, True, False, False, True], dtype=bool)
    np.testing.assert_array_equal(_run(MEAN, b, (2,)), [False, True, False, True])


def test_float16_rounding():
    """A pair mean of float16 is exact in float64, so numpy's narrowing is the reference:
    every rounding case of double -> half (ties, subnormals, overflow to inf, inf, nan)."""
    rng = np.random.default_rng(6)
    bits = rng.integers(0, 1 << 16, size=40000, dtype=np.uint16)
    a = bits.view(np.float16).copy()
    a = np.concatenate([a, np.array([65504, 65504, 65504, 65472, 6e-8, 0, 6e-8, 1.2e-7,
                                     np.inf, 1, -np.inf, np.inf, np.nan, 1, -0.0, -0.0],
                                    dtype=np.float16)])
    with np.errstate(invalid="ignore", over="ignore"):
        ref = ((a[0::2].astype(np.float64) + a[1::2].astype(np.float64)) / 2).astype(np.float16)
    np.testing.assert_array_equal(_run(MEAN, a, (2,)), ref)
    # gaussian narrowing too (float64 result -> float16)
    g = rng.standard_normal((12, 13)).astype(np.float16)
    np.testing.assert_array_equal(_run(GAUSSIAN, g, (2, 3)), ref_gaussian(g, (2, 3))[0])


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float64", "complex64"])
def test_gaussian_matches_scipy_gaussian_filter(dtype):
    """gaussian_filter itself (numpy's exp may differ from libm's in the last bit of a
    weight): floats to ~1e-12, integers equal except where the float lies on a .5 tie."""
    rng = np.random.default_rng(7)
    for shape, factors in (((20, 17), (2, 2)), ((6, 9, 13), (2, 3, 4)), ((5, 30), (1, 3)),
                           ((3, 4), (4, 4))):
        a = _data(rng, shape, dtype, method=GAUSSIAN)
        got = _run(GAUSSIAN, a, factors)
        ref, y = ref_gaussian(a, factors, spec_kernel=False)
        if np.dtype(dtype).kind in "cf":
            np.testing.assert_allclose(got, ref, rtol=1e-6 if dtype == "complex64" else 1e-12,
                                       atol=1e-9)
        else:
            near_tie = np.abs(np.abs(y - np.floor(y)) - 0.5) < 1e-9
            np.testing.assert_array_equal(got[~near_tie], ref[~near_tie])


def test_gaussian_constant_image():
    a = np.full((11, 12), 1234, dtype=np.uint16)
    np.testing.assert_array_equal(_run(GAUSSIAN, a, (3, 2)), np.full((4, 6), 1234))


# --------------------------------------------------------------------------------------
# strides
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", ["uint16", "int32", "float32", "complex128"])
def test_any_strides(method, dtype):
    if method == MODE and np.dtype(dtype).kind not in "biu":
        pytest.skip("mode takes integer data")
    rng = np.random.default_rng(8)
    base = _data(rng, (14, 9, 22), dtype, method=method)
    views = [base[::2, :, 1::2], base[::-1, ::-1, ::-1], base.transpose(2, 0, 1),
             np.asfortranarray(base)[:, 2:, ::-3]]
    for a in views:
        factors = (2, 3, 2)
        want = _run(method, np.ascontiguousarray(a), factors)
        _assert_matches(method, np.ascontiguousarray(a), factors, want)
        n0, n1, n2 = want.shape
        big = np.zeros((2 * n0, 3 * n1, 2 * n2), dtype=a.dtype)
        for out in (np.empty(want.shape[::-1], dtype=a.dtype).T, big[::-2, 1::3, ::-2]):
            assert out.shape == want.shape
            _run(method, a, factors, out=out)
            np.testing.assert_array_equal(out, want)


# --------------------------------------------------------------------------------------
# regions: no seams
# --------------------------------------------------------------------------------------


def _random_tiling(rng, shape):
    """Cut each axis at random points; every combination of pieces is one box."""
    cuts = []
    for n in shape:
        k = int(rng.integers(0, min(n, 4) + 1))
        pts = sorted(set(int(p) for p in rng.integers(1, max(n, 2), size=k)) - {0, n})
        cuts.append(list(zip([0] + pts, pts + [n])))
    for pieces in itertools.product(*cuts):
        yield tuple(p[0] for p in pieces), tuple(p[1] - p[0] for p in pieces)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", ["uint16", "float64", "int8", "complex64", "bool"])
def test_regions_have_no_seams(method, dtype):
    if method == MODE and np.dtype(dtype).kind not in "biu":
        pytest.skip("mode takes integer data")
    rng = np.random.default_rng(9 + method)
    for shape, factors in (((37, 41), (2, 2)), ((13, 19, 23), (2, 3, 2)),
                           ((9, 30, 31), (1, 4, 3)), ((5, 7, 6, 9), (2, 1, 3, 2))):
        a = _data(rng, shape, dtype, method=method)
        whole = _run(method, a, factors)
        level = whole.shape
        assembled = np.zeros(level, dtype=a.dtype)
        for o_start, o_shape in _random_tiling(rng, level):
            i_start, i_shape = _core.downsample_input_box(method, shape, factors, o_start,
                                                          o_shape)
            src = a[tuple(slice(s, s + n) for s, n in zip(i_start, i_shape))].copy()
            out = assembled[tuple(slice(s, s + n) for s, n in zip(o_start, o_shape))]
            _core.downsample(method, src, i_start, shape, factors, out, o_start)
        np.testing.assert_array_equal(assembled, whole)
        # a larger input box than needed gives the same pixels
        o_start = tuple(n // 3 for n in level)
        o_shape = tuple(n - s for n, s in zip(level, o_start))
        out = np.empty(o_shape, dtype=a.dtype)
        _core.downsample(method, a, (0,) * a.ndim, shape, factors, out, o_start)
        np.testing.assert_array_equal(out, whole[tuple(slice(s, None) for s in o_start)])


def test_input_box():
    box = _core.downsample_input_box
    assert box(MEAN, (10, 11), (2, 3), (1, 1), (3, 3)) == ((2, 3), (6, 8))
    assert box(MEAN, (10, 11), (2, 3), (4, 3), (1, 1)) == ((8, 9), (2, 2))
    assert box(MODE, (10, 11), (2, 3), (4, 3), (1, 1)) == ((8, 9), (2, 2))
    assert box(NEAREST, (10, 11), (2, 3), (1, 1), (3, 3)) == ((2, 3), (5, 7))
    # gaussian: radius 2f (f = 2: 4; f = 3: 6), clipped to the image; f = 1: no halo
    assert box(GAUSSIAN, (100, 11, 7), (2, 3, 1), (10, 1, 2), (5, 2, 3)) == (
        (16, 0, 2), (17, 11, 3))  # centres 20..28 +- 4; 3..12 +- 6 clipped to [0, 11)
    assert box(GAUSSIAN, (100,), (2,), (0,), (0,)) == ((0,), (0,))


# --------------------------------------------------------------------------------------
# threads and large images
# --------------------------------------------------------------------------------------


def test_large_image_on_the_pool_from_many_threads():
    rng = np.random.default_rng(10)
    a = rng.integers(0, 65536, size=(1030, 1027), dtype=np.uint16)
    s = (a[0:1030:2, 0:1026:2].astype(np.int64) + a[1::2, 0:1026:2] + a[0::2, 1::2]
         + a[1::2, 1::2])
    q, r = s >> 2, s & 3
    ref_inner = (q + ((r > 2) | ((r == 2) & (q & 1 == 1)))).astype(np.uint16)
    results = {}

    def work(k):
        results[k] = _run(MEAN, a, (2, 2))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        np.testing.assert_array_equal(results[k][:, :513], ref_inner)
        np.testing.assert_array_equal(results[k][:, 513],
                                      ref_mean(a[:, 1026:], (2, 1))[:, 0])
    g = a[:200, :300]
    np.testing.assert_array_equal(_run(GAUSSIAN, g, (2, 2)), ref_gaussian(g, (2, 2))[0])


# --------------------------------------------------------------------------------------
# bad arguments
# --------------------------------------------------------------------------------------


def test_bad_arguments():
    a = np.zeros((8, 8), dtype=np.uint16)
    out = np.zeros((4, 4), dtype=np.uint16)
    ds = _core.downsample
    with pytest.raises(ArgumentError, match="mode needs integer data"):
        ds(MODE, a.astype(np.float32), (0, 0), (8, 8), (2, 2), out.astype(np.float32), (0, 0))
    with pytest.raises(ArgumentError, match="unknown downsampling method"):
        ds(7, a, (0, 0), (8, 8), (2, 2), out, (0, 0))
    with pytest.raises(ArgumentError, match=r"axis 1: factor 0"):
        ds(MEAN, a, (0, 0), (8, 8), (2, 0), out, (0, 0))
    with pytest.raises(ArgumentError, match=r"axis 0: input box \[2, 10\) does not cover"):
        ds(MEAN, a, (2, 0), (12, 8), (2, 2), out, (0, 0))
    with pytest.raises(ArgumentError, match=r"axis 1: input box \[0, 8\) is outside"):
        ds(MEAN, a, (0, 0), (8, 7), (2, 2), out, (0, 0))
    with pytest.raises(ArgumentError, match=r"axis 0: output box \[1, 5\) is outside"):
        ds(MEAN, a, (0, 0), (8, 8), (2, 2), out, (1, 0))
    with pytest.raises(ArgumentError, match=r"axis 0: input box .* does not cover"):
        # gaussian needs the halo: the blocks alone are not enough
        ds(GAUSSIAN, a[:4], (0, 0), (16, 8), (2, 2), out[:2], (0, 0))
    with pytest.raises(ArgumentError, match="src_start has 1 entries"):
        ds(MEAN, a, (0,), (8, 8), (2, 2), out, (0, 0))
    with pytest.raises(ArgumentError, match="cannot downsample"):
        ds(MEAN, a.astype(">u2"), (0, 0), (8, 8), (2, 2), out.astype(">u2"), (0, 0))
    with pytest.raises(OutputError, match="dtype"):
        ds(MEAN, a, (0, 0), (8, 8), (2, 2), out.astype(np.int16), (0, 0))
    ro = out.copy()
    ro.flags.writeable = False
    with pytest.raises(OutputError, match="read-only"):
        ds(MEAN, a, (0, 0), (8, 8), (2, 2), ro, (0, 0))
    with pytest.raises(OutputError, match="overlaps"):
        ds(MEAN, a, (0, 0), (8, 8), (2, 2), a[:4, :4], (0, 0))
    with pytest.raises(OutputError, match="zero stride"):
        ds(MEAN, a, (0, 0), (8, 8), (2, 2), np.lib.stride_tricks.as_strided(out, (4, 4), (0, 2)),
           (0, 0))
    with pytest.raises(ArgumentError, match="axis 1: full shape 8 / factor 0"):
        _core.downsample_input_box(MEAN, (8, 8), (2, 0), (0, 0), (4, 4))
    with pytest.raises(ArgumentError, match="output box"):
        _core.downsample_input_box(MEAN, (8, 8), (2, 2), (0, 0), (5, 4))
    # every one is an NgffError and a ValueError
    for exc in (ArgumentError, OutputError):
        assert issubclass(exc, NgffError) and issubclass(exc, ValueError)
    # nothing was written by the failed calls
    assert not out.any()
