"""Channel compositing (ngffcore.ome.render, csrc/ngff_render.c) against a plain NumPy float64
reference written here.

The documented arithmetic rounds each channel's contribution half-up before the sum, and the
C core computes every lookup-table entry with the same float64 formula as a direct sample,
so the results must be byte-identical to the reference: no tolerance anywhere.
"""

from __future__ import annotations

import threading
import zlib
from typing import Any

import numpy as np
import pytest

import ngffcore
from ngffcore import Channel, OutputError, Window, _core
from ngffcore.ome.render import (
    DEFAULT_PALETTE,
    MAX_CHANNELS,
    channel_settings,
    composite,
    default_window,
    parse_color,
)

INT_DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8"]
FLOAT_DTYPES = ["f2", "f4", "f8"]
ALL_DTYPES = ["?"] + INT_DTYPES + FLOAT_DTYPES


# ---------------------------------------------------------------------------------------
# reference
# ---------------------------------------------------------------------------------------


def reference(pixels: np.ndarray, channel_axis: int | None, windows: Any, colors: Any,
              inverted: Any = None, gamma: Any = 1.0) -> np.ndarray:
    """The documented formula, in float64, channel by channel."""
    p = pixels[np.newaxis] if channel_axis is None else np.moveaxis(pixels, channel_axis, 0)
    n = p.shape[0]
    inv = [False] * n if inverted is None else (
        [inverted] * n if isinstance(inverted, bool) else list(inverted))
    gam = [gamma] * n if np.ndim(gamma) == 0 else list(gamma)
    acc = np.zeros(p.shape[1:] + (3,), dtype=np.float64)
    for c in range(n):
        x = p[c].astype(np.float64)
        s, e = (float(w) for w in windows[c])
        col = np.array(parse_color(colors[c]))  # tested separately below
        with np.errstate(all="ignore"):  # inf - inf, overflow to inf: part of the data
            if e > s:
                v = np.clip((x - s) / (e - s), 0.0, 1.0)
            else:
                v = (x > s).astype(np.float64)
            if inv[c]:
                v = 1.0 - v
            v = np.power(v, float(gam[c]))
            contribution = np.floor(v[..., np.newaxis] * col + 0.5)
        contribution[np.isnan(x)] = 0.0
        acc += contribution
    out = np.empty(p.shape[1:] + (4,), dtype=np.uint8)
    out[..., :3] = np.minimum(acc, 255.0).astype(np.uint8)
    out[..., 3] = 255
    return out


def random_pixels(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Values over the dtype's whole range plus a dense cluster near zero (where the windows
    are), and for floats NaN, ±inf, -0.0 and denormals."""
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    if dt.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        wide = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
        near = rng.integers(max(info.min, -300), min(info.max, 3000), n).astype(dt)
        vals = np.where(rng.random(n) < 0.5, wide, near)
        vals[: min(n, 2)] = [info.min, info.max][: min(n, 2)]
    else:
        vals = (rng.standard_normal(n) * 400.0 + 200.0).astype(dt)
        tiny = float(np.finfo(dt).smallest_subnormal)
        special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, tiny, -tiny, -np.nan], dtype=dt)
        if n:
            idx = rng.choice(n, size=min(n, 21), replace=False)
            vals[idx] = np.resize(special, idx.size)
    return vals.reshape(shape)


def random_settings(rng: np.random.Generator, n: int, dtype: str
                    ) -> tuple[list[tuple[float, float]], list[Any], list[bool], list[float]]:
    windows: list[tuple[float, float]] = []
    kinds = ["narrow", "wide", "step", "reversed", "fraction"]
    for c in range(n):
        kind = kinds[c % len(kinds)]
        if kind == "narrow":
            windows.append((100.0, 2900.0))
        elif kind == "wide":
            windows.append(default_window(dtype) if np.dtype(dtype).kind != "f"
                           else (-1000.0, 1000.0))
        elif kind == "step":
            windows.append((50.0, 50.0))
        elif kind == "reversed":
            windows.append((700.0, -5.0))
        else:
            windows.append((-3.25, 255.5))
    colors: list[Any] = []
    for c in range(n):
        choice = c % 4
        if choice == 0:
            colors.append("%02X%02X%02X" % tuple(rng.integers(0, 256, 3)))
        elif choice == 1:
            colors.append(tuple(int(v) for v in rng.integers(0, 256, 3)))
        elif choice == 2:
            colors.append(tuple(float(v) for v in rng.random(3)))
        else:
            colors.append("FFFFFF")
    inverted = [bool(b) for b in rng.integers(0, 2, n)]
    gamma = [[1.0, 0.45, 2.2, 1.0, 3.0][c % 5] for c in range(n)]
    return windows, colors, inverted, gamma


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """Seeded by the test's id, so every run of a test sees the same data."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


@pytest.fixture
def restore_threads():
    before = ngffcore.get_num_threads()
    yield
    ngffcore.set_num_threads(before)


def check(pixels: np.ndarray, channel_axis: int | None, windows: Any, colors: Any,
          inverted: Any = None, gamma: Any = 1.0, out: np.ndarray | None = None) -> np.ndarray:
    got = composite(pixels, channel_axis=channel_axis, windows=windows, colors=colors,
                    inverted=inverted, gamma=gamma, out=out)
    if out is not None:
        assert got is out
    want = reference(pixels, channel_axis, windows, colors, inverted, gamma)
    assert got.shape == want.shape and got.dtype == np.uint8
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        y, x, k = bad[0]
        raise AssertionError(f"{len(bad)} bytes differ, first at {(y, x, k)}: "
                             f"got {got[y, x]}, want {want[y, x]}")
    return got


# ---------------------------------------------------------------------------------------
# against the reference
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["planar", "interleaved"])
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype_matches_reference(rng, dtype, layout):
    windows, colors, inverted, gamma = random_settings(rng, 5, dtype)
    planes = random_pixels(rng, (5, 37, 53), dtype)
    if dtype == "?":
        windows = [(0.0, 1.0), (0.0, 0.0), (0.5, 0.5), (1.0, 0.0), (-1.0, 3.0)]
    if layout == "planar":
        check(planes, 0, windows, colors, inverted, gamma)
    else:
        check(np.ascontiguousarray(np.moveaxis(planes, 0, -1)), -1, windows, colors,
              inverted, gamma)


@pytest.mark.parametrize("dtype", ["u1", "i1", "u2", "i2", "u4", "i4", "f2"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (400, 420)])
def test_table_and_direct_paths_agree(rng, dtype, shape):
    """Small images compute wide windows per sample, large ones through tables (of up to
    65536 entries, built on several threads); both equal the reference."""
    planes = random_pixels(rng, (3,) + shape, dtype)
    lo, hi = default_window(dtype)
    if np.dtype(dtype).kind == "f":
        lo, hi = -60000.0, 60000.0
    windows = [(lo, hi), (lo + 0.5, hi - 0.5), (-40000.0, 40000.0)]
    colors = ["FF8040", (0.1, 0.7, 0.3), (17, 255, 200)]
    check(planes, 0, windows, colors, [False, True, False], [0.6, 1.0, 1.7])


@pytest.mark.parametrize("dtype", ["u1", "i1", "u2", "i2", "f2"])
@pytest.mark.parametrize("path", ["direct", "table"])
def test_every_value_of_small_dtypes(dtype, path):
    """Every value (float16: every bit pattern, NaNs, infinities and subnormals included)
    through windows that resolve small and large values. 16-bit data per sample when the
    image is smaller than twice the table, through the table when it is larger."""
    bits = np.arange(2 ** (8 * np.dtype(dtype).itemsize), dtype=np.uint64)
    values = bits.astype(f"u{np.dtype(dtype).itemsize}").view(dtype)
    reps = 1 if path == "direct" else 4
    plane = np.tile(values, reps).reshape(-1, 256)
    windows = [(0.0, 6.2e-5), (-3.5, 2.0), (-1000.0, 60000.0)]
    if np.dtype(dtype).kind != "f":
        windows = [(0.0, 100.0), (-3.5, 2.0), default_window(dtype)]
    planes = np.stack([plane, plane[::-1], plane[:, ::-1]])
    colors = ["FF0000", (0, 255, 0), (0.0, 0.0, 1.0)]
    check(planes, 0, windows, colors, [False, True, False], [1.0, 1.0, 0.7])
    check(planes[:, :3], 0, windows, ["FFFFFF"] * 3)
    # six channels: one channel at a time instead of pixel by pixel; dim colours, so that
    # the sums stay below 255
    six = np.concatenate([planes, planes[:, ::-1]])
    check(six, 0, windows + windows[::-1], [(40, 0, 0), (0, 40, 0), (0, 0, 40)] * 2,
          [False, True, False, True, False, True], [1.0, 1.0, 0.7, 1.3, 1.0, 1.0])


@pytest.mark.parametrize("dtype", ["u2", "i2", "u4", "i4"])
@pytest.mark.parametrize("layout", ["planar", "interleaved"])
def test_wide_windows_over_narrow_data(rng, dtype, layout):
    """Windows much wider than the data (a full-range default over 12-bit data): the table
    covers only the data's min..max, found per band of rows. Data entirely below, above,
    inside and across the window, one constant channel, and rows whose ranges differ (a
    ramp), so that a band's range is not the image's."""
    lo, hi = default_window(dtype)
    h, w = 300, 200  # several bands of rows
    ramp = (np.arange(h)[:, None] * 7 + np.arange(w)[None, :]) % 4096
    planes = np.stack([
        ramp,                                   # 0..4095 inside a full window
        ramp + 20000,                           # above the window (0, 10000)
        np.full((h, w), 5),                     # constant, below the window
        ramp - (2000 if lo < 0 else 0),         # across the window
        ramp[::-1] * 3 + 100,                   # 100..12385, rows in reverse
    ]).astype(dtype)
    windows = [(lo, hi), (0.0, 10000.0), (5000.0, 65000.0), (-1000.5, 3000.25),
               (2000.0, 9000.0)]
    colors = ["FF0000", "00FF00", "0000FF", (90, 90, 0), (0, 90, 90)]
    inverted = [False, True, True, False, True]
    gamma = [0.8, 1.0, 1.0, 2.0, 1.0]
    if layout == "interleaved":
        check(np.ascontiguousarray(np.moveaxis(planes, 0, -1)), -1, windows, colors,
              inverted, gamma)
    else:
        check(planes, 0, windows, colors, inverted, gamma)
    check(planes[:3], 0, windows[:3], colors[:3], inverted[:3], gamma[:3])  # pixel-major
    check(planes[:, ::-1, ::-1], 0, windows, colors, inverted, gamma)       # negative strides


@pytest.mark.parametrize("n", range(1, 9))
@pytest.mark.parametrize("dtype", ["u1", "i2", "u2", "f4", "i4"])
def test_channel_counts(rng, dtype, n):
    """1-4 tabled channels take the pixel-major path, more the channel-major one; sums over
    255 clamp."""
    windows, colors, inverted, gamma = random_settings(rng, n, dtype)
    check(random_pixels(rng, (n, 29, 301), dtype), 0, windows, colors, inverted, gamma)
    # interleaved too
    pix = random_pixels(rng, (29, 301, n), dtype)
    check(pix, 2, windows, colors, inverted, gamma)
    # all white and wide open: saturates wherever two channels are bright
    check(pix, 2, [(0, 1)] * n, ["FFFFFF"] * n)


@pytest.mark.parametrize("shape", [(1, 1), (513, 7), (7, 513), (1, 1000), (300, 1), (2, 257)])
@pytest.mark.parametrize("dtype", ["u1", "u2", "f8"])
def test_odd_sizes(rng, dtype, shape):
    windows, colors, inverted, gamma = random_settings(rng, 3, dtype)
    check(random_pixels(rng, (3,) + shape, dtype), 0, windows, colors, inverted, gamma)
    check(random_pixels(rng, shape + (3,), dtype), -1, windows, colors, inverted, gamma)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_empty_images(shape):
    out = composite(np.zeros((2,) + shape, np.uint16), channel_axis=0,
                    windows=[(0, 1)] * 2, colors=["FF0000"] * 2)
    assert out.shape == shape + (4,) and out.dtype == np.uint8


def test_no_channels_is_opaque_black():
    out = composite(np.zeros((0, 4, 6), np.uint8), channel_axis=0, windows=[], colors=[])
    assert out.shape == (4, 6, 4)
    assert (out[..., :3] == 0).all() and (out[..., 3] == 255).all()


@pytest.mark.parametrize("dtype", ["u1", "u2", "i4", "f4"])
def test_views_as_input(rng, dtype):
    """Flipped, strided, Fortran-ordered and broadcast (zero-stride) inputs, no copies."""
    windows, colors, inverted, gamma = random_settings(rng, 3, dtype)
    big = random_pixels(rng, (4, 61, 90), dtype)
    check(big[::-1][1:, ::-2, 3::3], 0, windows, colors, inverted, gamma)
    check(np.asfortranarray(big[:3]), 0, windows, colors, inverted, gamma)
    inter = np.moveaxis(big, 0, -1)  # (y, x, c) view of planar data: channel stride large
    check(inter[..., :3], 2, windows, colors, inverted, gamma)
    check(np.moveaxis(big[:3], 0, 1), 1, windows, colors, inverted, gamma)  # (y, c, x)
    flat = np.broadcast_to(big[0, 0, :], (3, 17, 90))
    check(flat, 0, windows, colors, inverted, gamma)


def test_non_contiguous_output(rng):
    windows, colors, inverted, gamma = random_settings(rng, 3, "u2")
    pix = random_pixels(rng, (3, 33, 41), "u2")
    want = reference(pix, 0, windows, colors, inverted, gamma)

    canvas = np.zeros((70, 123, 6), np.uint8)
    out = canvas[3:69:2, 1::3, 1:5]
    check(pix, 0, windows, colors, inverted, gamma, out=out)
    mask = np.ones(canvas.shape, bool)
    mask[3:69:2, 1::3, 1:5] = False
    assert not canvas[mask].any(), "wrote outside out"

    rev = np.zeros((33, 41, 4), np.uint8)
    composite(pix, channel_axis=0, windows=windows, colors=colors, inverted=inverted,
              gamma=gamma, out=rev[::-1, :, ::-1])  # negative row and component strides
    np.testing.assert_array_equal(rev[::-1, :, ::-1], want)

    planar = np.zeros((4, 33, 41), np.uint8)  # (component, y, x) through a transposed view
    composite(pix, channel_axis=0, windows=windows, colors=colors, inverted=inverted,
              gamma=gamma, out=planar.transpose(1, 2, 0))
    np.testing.assert_array_equal(planar.transpose(1, 2, 0), want)

    fortran = np.zeros((33, 41, 4), np.uint8, order="F")
    check(pix, 0, windows, colors, inverted, gamma, out=fortran)


# ---------------------------------------------------------------------------------------
# the formula's parts, with hand-computed values
# ---------------------------------------------------------------------------------------


def test_window_clipping_and_rounding():
    x = np.array([[0, 9, 10, 11, 15, 19, 20, 21, 255]], np.uint8)
    out = composite(x, channel_axis=None, windows=[(10, 20)], colors=["FFFFFF"])
    # (x - 10) / 10 * 255 rounded half-up: 0, 0, 0, 25.5→26, 127.5→128, 229.5→230, 255, 255
    assert out[0, :, 0].tolist() == [0, 0, 0, 26, 128, 230, 255, 255, 255]
    assert (out[0, :, 0] == out[0, :, 1]).all() and (out[0, :, 3] == 255).all()


def test_colour_weights_and_additive_clamp():
    x = np.full((2, 1, 1), 255, np.uint8)
    out = composite(x, channel_axis=0, windows=[(0, 255)] * 2,
                    colors=[(200, 100, 0), "#80C0ff"])
    assert out[0, 0].tolist() == [255, 255, 255, 255]  # 200 + 128, 100 + 192, 0 + 255
    half = np.full((2, 1, 1), 51, np.uint8)  # v = 0.2
    out = composite(half, channel_axis=0, windows=[(0, 255)] * 2,
                    colors=[(200, 100, 0), "80C0FF"])
    assert out[0, 0].tolist() == [40 + 26, 20 + 38, 0 + 51, 255]


def test_inversion_and_gamma():
    x = np.arange(256, dtype=np.uint8).reshape(1, 256)
    out = composite(x, channel_axis=None, windows=[(0, 255)], colors=["FFFFFF"], inverted=True)
    assert out[0, :, 0].tolist() == list(range(255, -1, -1))
    out = composite(x, channel_axis=None, windows=[(0, 255)], colors=["FFFFFF"], gamma=2.0)
    want = np.floor((np.arange(256) / 255.0) ** 2 * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(out[0, :, 0], want)
    assert out[0, 128, 0] == 64  # (128/255)**2 * 255 = 64.25
    # gamma applies after inversion
    out = composite(x, channel_axis=None, windows=[(0, 255)], colors=["FFFFFF"],
                    inverted=[True], gamma=[0.5])
    want = np.floor((1 - np.arange(256) / 255.0) ** 0.5 * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(out[0, :, 0], want)


@pytest.mark.parametrize("dtype", ["u1", "i2", "u4", "i8", "f4", "f8"])
@pytest.mark.parametrize("window", [(10, 10), (10, -3), (10.5, 10.5), (10, 9.5)])
def test_degenerate_windows_are_a_step_at_start(dtype, window):
    values = [-5, 0, 9, 10, 11, 12, 100]
    x = np.array([[v for v in values if v >= 0 or np.dtype(dtype).kind != "u"]], dtype=dtype)
    out = composite(x, channel_axis=None, windows=[window], colors=["FF0000"])
    want = [255 if v > window[0] else 0 for v in x[0].tolist()]
    assert out[0, :, 0].tolist() == want
    inv = composite(x, channel_axis=None, windows=[window], colors=["FF0000"], inverted=True)
    assert inv[0, :, 0].tolist() == [255 - v for v in want]
    check(x, None, [window], ["FF0000"], [True], 2.0)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_nan_contributes_nothing(dtype):
    x = np.array([[[np.nan, 0.5, np.inf, -np.inf]], [[np.nan, np.nan, 0.25, np.nan]]],
                 dtype=dtype)
    out = composite(x, channel_axis=0, windows=[(0, 1)] * 2, colors=["FF0000", "00FF00"],
                    inverted=[False, True])
    assert out[0, :, :3].tolist() == [[0, 0, 0], [128, 0, 0], [255, 191, 0], [0, 0, 0]]
    check(x, 0, [(0, 1)] * 2, ["FF0000", "00FF00"], [True, True], [0.5, 2.0])


def test_window_outside_the_dtype_range(rng):
    pix = random_pixels(rng, (4, 20, 30), "i1")
    check(pix, 0, [(-1e9, -1e8), (1e8, 1e9), (-1e300, 1e300), (200.0, 300.0)],
          ["FF0000", "00FF00", "0000FF", "FFFFFF"], [True, False, False, True])
    check(random_pixels(rng, (2, 20, 30), "f8"), 0, [(1e308, -1e308), (-1e308, 1e307)],
          ["FF0000", "00FF00"])
    pix16 = random_pixels(rng, (2, 20, 30), "u2")
    check(pix16, 0, [(-70000.5, -1.5), (65535.5, 1e6)], ["FF0000", "00FF00"], [True, True])


def test_big_endian_input_is_converted(rng):
    pix = random_pixels(rng, (2, 9, 11), "u2")
    swapped = pix.astype(">u2")
    args: dict[str, Any] = dict(channel_axis=0, windows=[(0, 3000), (100, 200)],
                                colors=["FF0000", "00FF00"])
    np.testing.assert_array_equal(composite(swapped, **args), composite(pix, **args))


# ---------------------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_results_do_not_depend_on_the_thread_count(rng, restore_threads, threads):
    pix = random_pixels(rng, (3, 700, 300), "u2")
    windows, colors, inverted, gamma = random_settings(rng, 3, "u2")
    windows[0] = (0.0, 65535.0)  # a 65536-entry table: built in segments on the pool
    ngffcore.set_num_threads(threads)
    check(pix, 0, windows, colors, inverted, gamma)
    check(random_pixels(rng, (6, 300, 257), "f4"), 0, *random_settings(rng, 6, "f4"))


def test_concurrent_calls_give_identical_results(rng, restore_threads):
    ngffcore.set_num_threads(4)
    jobs = []
    for i, dtype in enumerate(["u1", "u2", "f4", "i2", "u1", "u2", "f8", "i4"]):
        n = 1 + i % 5
        pix = random_pixels(rng, (n, 257 + i, 190), dtype)
        settings = random_settings(rng, n, dtype)
        jobs.append((pix, settings, reference(pix, 0, *settings)))
    results: list[list[bool]] = [[] for _ in jobs]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def work(k: int) -> None:
        try:
            pix, (w, c, inv, g), want = jobs[k]
            out = np.empty(want.shape, np.uint8)
            barrier.wait(timeout=60)
            for _ in range(15):
                composite(pix, channel_axis=0, windows=w, colors=c, inverted=inv, gamma=g,
                          out=out)
                results[k].append(np.array_equal(out, want))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(len(r) == 15 and all(r) for r in results)


def test_same_input_from_many_threads(rng, restore_threads):
    ngffcore.set_num_threads(3)
    pix = random_pixels(rng, (3, 512, 512), "u1")
    settings = random_settings(rng, 3, "u1")
    want = reference(pix, 0, *settings)
    outs = [np.empty_like(want) for _ in range(8)]

    def work(k: int) -> None:
        for _ in range(10):
            composite(pix, channel_axis=0, windows=settings[0], colors=settings[1],
                      inverted=settings[2], gamma=settings[3], out=outs[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for o in outs:
        np.testing.assert_array_equal(o, want)


# ---------------------------------------------------------------------------------------
# settings from omero channels, colours
# ---------------------------------------------------------------------------------------


def test_channel_settings_defaults():
    chans = [Channel(color="00FF00", window=Window(start=10.0, end=500.0), inverted=True),
             Channel(window=Window(start=5.0)),
             Channel(window=Window(start=float("nan"), end=float("inf")), active=False),
             Channel()]
    windows, colors, inverted = channel_settings(chans, np.uint16)
    assert windows == [(10.0, 500.0), (5.0, 65535.0), (0.0, 65535.0), (0.0, 65535.0)]
    # missing colours by index: blue for the third, magenta for the fourth
    assert colors == ["00FF00", "00FF00", "0000FF", "FF00FF"]
    assert inverted == [True, False, False, False]
    assert channel_settings([Channel()], np.int8) == ([(-128.0, 127.0)], ["FFFFFF"], [False])
    assert channel_settings([Channel()], np.float32)[0] == [(0.0, 1.0)]
    assert channel_settings([Channel()], bool)[0] == [(0.0, 1.0)]
    many = channel_settings([Channel()] * 10, np.uint8)[1]
    assert many == [DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)] for i in range(10)]
    assert many[:3] == ["FF0000", "00FF00", "0000FF"]
    assert channel_settings([], np.uint8) == ([], [], [])


def test_channel_settings_feed_composite(rng):
    chans = [Channel(color="FF0000", window=Window(100.0, 2000.0)), Channel(),
             Channel(color="0000FF", window=Window(end=900.0), inverted=True)]
    pix = random_pixels(rng, (3, 40, 50), "u2")
    windows, colors, inverted = channel_settings(chans, pix.dtype)
    check(pix, 0, windows, colors, inverted)
    # Window objects directly: missing fields take the dtype range
    out = composite(pix, channel_axis=0, windows=[c.window for c in chans], colors=colors,
                    inverted=inverted)
    np.testing.assert_array_equal(out, reference(pix, 0, windows, colors, inverted))


def test_parse_color():
    assert parse_color("FF8000") == (255.0, 128.0, 0.0)
    assert parse_color("#ff8000") == (255.0, 128.0, 0.0)
    assert parse_color((255, 128, 0)) == (255.0, 128.0, 0.0)
    assert parse_color(np.array([255, 128, 0])) == (255.0, 128.0, 0.0)
    assert parse_color((1.0, 0.5, 0)) == (255.0, 127.5, 0.0)
    assert parse_color((1, 1, 1)) == (1.0, 1.0, 1.0)  # ints are 0..255
    for bad in ["FF80", "GG0000", "#FF00000", (256, 0, 0), (-1, 0, 0), (1.5, 0.0, 0.0),
                (0, 0), (0, 0, 0, 0), ("a", 0, 0), (True, 0, 0), 5, None, (float("nan"), 0, 0)]:
        with pytest.raises(ValueError):
            parse_color(bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------------------------


GOOD: dict[str, Any] = dict(windows=[(0, 10)] * 2, colors=["FF0000", "00FF00"])


@pytest.mark.parametrize(("pixels", "kwargs", "match"), [
    (np.zeros((2, 3, 4, 5), np.uint8), dict(channel_axis=0), "2-D"),
    (np.zeros(5, np.uint8), dict(channel_axis=0), "2-D"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=None), "channel_axis"),
    (np.zeros((3, 4), np.uint8), dict(channel_axis=0), "channel_axis=None"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=3), "out of range"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=-4), "out of range"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=1.0), "int"),
    (np.zeros((2, 3, 4), np.complex64), dict(channel_axis=0), "cannot render"),
    (np.zeros((2, 3, 4), np.float128 if hasattr(np, "float128") else "O"),
     dict(channel_axis=0), "cannot render"),
    (np.zeros((2, 3, 4), "U1"), dict(channel_axis=0), "cannot render"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, windows=[(0, 1)]), "2 channels"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, colors=["FF0000"]), "2 channels"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, colors="FF0000"), "sequence"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, windows=(0, 1)), "pair"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, windows=[(0, 1), (0, np.nan)]),
     "finite"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, windows=[(0, 1), (-np.inf, 1)]),
     "finite"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, windows=[(0, 1), (-1e308, 1e308)]),
     "wider"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, windows=[(0, 1), ("a", 1)]),
     "numbers"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, windows=[(0, 1), (0, 1, 2)]), "pair"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, colors=["FF0000", "red"]), "hex"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, gamma=0.0), "gamma"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, gamma=-1.0), "gamma"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, gamma=[1.0, np.nan]), "gamma"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, gamma=[1.0, np.inf]), "gamma"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, gamma=[1.0]), "entries"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, gamma="1"), "gamma"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, inverted=[True]), "entries"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, inverted=[True, "yes"]), "bool"),
    (np.zeros((2, 3, 4), np.uint8), dict(channel_axis=0, inverted=1), "bool"),
])
def test_bad_arguments(pixels, kwargs, match):
    args = {**GOOD, **kwargs}
    with pytest.raises(ValueError, match=match):
        composite(pixels, **args)


def test_too_many_channels():
    n = MAX_CHANNELS + 1
    with pytest.raises(ValueError, match="at most"):
        composite(np.zeros((n, 2, 2), np.uint8), channel_axis=0, windows=[(0, 1)] * n,
                  colors=["FFFFFF"] * n)
    out = composite(np.full((MAX_CHANNELS, 2, 2), 1, np.uint8), channel_axis=0,
                    windows=[(0, 1)] * MAX_CHANNELS, colors=["FFFFFF"] * MAX_CHANNELS)
    assert (out == 255).all()


@pytest.mark.parametrize("make_out", [
    lambda: np.zeros((3, 4, 4), np.int8),
    lambda: np.zeros((3, 4, 4), np.uint16),
    lambda: np.zeros((4, 3, 4), np.uint8),
    lambda: np.zeros((3, 4, 3), np.uint8),
    lambda: np.zeros((3, 4), np.uint8),
    lambda: bytearray(48),
    lambda: np.broadcast_to(np.zeros(4, np.uint8), (3, 4, 4)),  # read-only
    lambda: np.lib.stride_tricks.as_strided(np.zeros(16, np.uint8), (3, 4, 4), (0, 4, 1),
                                            writeable=True),  # rows alias each other
    lambda: np.lib.stride_tricks.as_strided(np.zeros(16, np.uint8), (3, 4, 4), (16, 1, 1),
                                            writeable=True),  # pixels overlap
])
def test_bad_out(make_out):
    out = make_out()
    with pytest.raises(OutputError):
        composite(np.zeros((2, 3, 4), np.uint8), channel_axis=0, out=out, **GOOD)


def test_out_overlapping_the_input():
    buf = np.zeros((3, 4, 8), np.uint8)
    with pytest.raises(OutputError, match="overlaps"):
        composite(buf[..., :2], channel_axis=2, out=buf[..., 4:], **GOOD)


def test_core_wrapper_checks_its_arguments():
    pix = np.zeros((2, 3, 4), np.uint8)
    out = np.zeros((3, 4, 4), np.uint8)
    win = np.array([(0, 1)] * 2, np.float64)
    col = np.array([(255, 0, 0)] * 2, np.float64)
    inv = np.zeros(2, bool)
    gam = np.ones(2)
    _core.render_rgba(pix, 0, out, win, col, inv, gam)
    with pytest.raises(TypeError):
        _core.render_rgba(pix.tolist(), 0, out, win, col, inv, gam)
    with pytest.raises(ValueError, match="native"):
        _core.render_rgba(pix.astype(">u2"), 0, out, win, col, inv, gam)
    with pytest.raises(ValueError, match="0..255"):
        _core.render_rgba(pix, 0, out, win, col * 2, inv, gam)
    with pytest.raises(ValueError, match="shape"):
        _core.render_rgba(pix, 0, out, win[:1], col, inv, gam)
    with pytest.raises(ValueError, match="gamma"):
        _core.render_rgba(pix, 0, out, win, col, inv, -gam)
    with pytest.raises(ValueError, match="finite"):
        _core.render_rgba(pix, 0, out, np.full_like(win, np.inf), col, inv, gam)
    with pytest.raises(ValueError, match="channel_axis"):
        _core.render_rgba(pix, 5, out, win, col, inv, gam)
