"""Channel compositing to RGBA (``ngffcore.ome.render.composite``) against NumPy.

Groups ``render/<tile>``: one 512 x 512 tile of 3 channels (seeded noise plus a gradient, so
values spread over the window) into a preallocated (512, 512, 4) uint8 RGBA array. Rows:

* ``ngffcore 1 thread``            ``set_num_threads(1)``: one core (the issue's target: uint8
                                   planar <= 1 ms)
* ``ngffcore 1 thread interleaved`` the same tile as (y, x, c), one core
* ``ngffcore N threads``           the default pool size (one per core)
* ``numpy float64``                the documented formula in vectorised float64 NumPy (what
                                   the tests compare against; same bytes)
* ``numpy table``                  (8/16-bit only) NumPy at its best: one ``np.take`` per
                                   channel through a table like the C core's, then a clip

No data files are needed. The table (median per call) is printed at the end of the session and
written to ``benchmarks/results/render.md``. Run::

    pytest benchmarks/test_bench_render.py --benchmark-enable -p no:cacheprovider
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import local_suite as bc
import report

SIZE = 512
N_CHANNELS = 3
COLORS = ["FF0000", "00FF00", "0000FF"]

#: tile name → dtype, windows, inverted, gamma
TILES: dict[str, tuple[str, list[tuple[float, float]], list[bool], list[float]]] = {
    "uint8": ("u1", [(10.0, 240.0), (0.0, 255.0), (30.0, 200.0)], [False] * 3, [1.0] * 3),
    "uint16": ("u2", [(100.0, 3900.0), (0.0, 4095.0), (200.0, 3000.0)], [False] * 3, [1.0] * 3),
    # tables of 65536 entries with a pow() each: the worst case for the table build
    "uint16 full range, gamma": ("u2", [(0.0, 65535.0)] * 3, [False, True, False],
                                 [0.7, 1.0, 2.2]),
    "float32": ("f4", [(0.0, 1.0), (0.1, 0.9), (-0.5, 1.5)], [False] * 3, [1.0] * 3),
}

ROWS = ("ngffcore 1 thread", "ngffcore 1 thread interleaved", "ngffcore N threads",
        "numpy float64", "numpy table")

CASES = [
    pytest.param(tile, row, id=f"{tile.replace(' ', '_').replace(',', '')}-{row.replace(' ', '_')}",
                 marks=pytest.mark.benchmark(group=f"render/{SIZE}x{SIZE}x{N_CHANNELS} {tile}"))
    for tile in TILES
    for row in ROWS
    if not (row == "numpy table" and TILES[tile][0] == "f4")
]


RESULTS = Path(__file__).resolve().parent / "results" / "render.md"
PLUGIN_NAME = "ngffcore-render-report"


class RenderReport:
    """Prints the render table and writes ``results/render.md`` at the end of the session."""

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int,
                                config: pytest.Config) -> None:
        bs = getattr(config, "_benchmarksession", None)
        if bs is None or bs.disabled:
            return
        rows = [r for r in report.rows_from_session(bs.benchmarks)
                if r["extra"].get("kind") == "render"]
        if not rows:
            return
        med = {(r["extra"]["tile"], r["extra"]["peer"]): r["median"] for r in rows}
        body = []
        for tile in TILES:
            cells = [report.fmt_time(med.get((tile, row))) for row in ROWS]
            ratio = report.fmt_ratio(med.get((tile, "numpy float64")),
                                     med.get((tile, "ngffcore 1 thread")))
            body.append([tile] + cells + [ratio])
        now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        lines = [
            f"# ngffcore render benchmarks, {now}",
            "",
            f"{SIZE}x{SIZE}x{N_CHANNELS} tile → RGBA, median per call; {os.cpu_count()} cores "
            f"(N threads = {_default_threads()}); python {platform.python_version()}, "
            f"numpy {np.__version__}. Target: uint8 on 1 thread <= 1 ms.",
            "",
        ]
        lines += report._md_table(["tile"] + list(ROWS) + ["numpy float64 / 1 thread"], body)
        text = "\n".join(lines) + "\n"
        report.publish(terminalreporter, "ngffcore render", text, RESULTS)


def _default_threads() -> int:
    from ngffcore import _core

    return int(_core.default_num_threads())


@pytest.fixture(scope="session")
def render_report(request: pytest.FixtureRequest) -> RenderReport:
    plugin: RenderReport = report.report_plugin(request.config, PLUGIN_NAME, RenderReport)
    return plugin


def make_tile(dtype: str) -> np.ndarray:
    """(c, y, x): a gradient plus noise, in the dtype's useful range."""
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    base = (x + y) / (2.0 * SIZE)
    planes = np.stack([base, base[::-1], base[:, ::-1]]) + rng.normal(0, 0.1, (3, SIZE, SIZE))
    planes = np.clip(planes, 0, 1)
    if dtype == "u1":
        return (planes * 255).astype(np.uint8)
    if dtype == "u2":
        return (planes * 4095).astype(np.uint16)
    return planes.astype(np.float32)


def numpy_float64(pix: np.ndarray, windows: Any, colors: np.ndarray, inverted: Any,
                  gamma: Any, out: np.ndarray) -> np.ndarray:
    acc = np.zeros((pix.shape[1], pix.shape[2], 3))
    for c in range(pix.shape[0]):
        x = pix[c].astype(np.float64)
        s, e = windows[c]
        v = np.clip((x - s) / (e - s), 0.0, 1.0)
        if inverted[c]:
            v = 1.0 - v
        if gamma[c] != 1.0:
            v = v ** gamma[c]
        contribution = np.floor(v[..., None] * colors[c] + 0.5)
        contribution[np.isnan(x)] = 0
        acc += contribution
    out[..., :3] = np.minimum(acc, 255)
    out[..., 3] = 255
    return out


def numpy_tables(pix: np.ndarray, windows: Any, colors: np.ndarray, inverted: Any,
                 gamma: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Tables over every value of the dtype (built outside the timing), then per call one
    take per channel and a clip."""
    values = np.arange(np.iinfo(pix.dtype).max + 1, dtype=np.float64)
    tables = []
    for c in range(pix.shape[0]):
        s, e = windows[c]
        v = np.clip((values - s) / (e - s), 0.0, 1.0)
        if inverted[c]:
            v = 1.0 - v
        v = v ** gamma[c]
        tables.append(np.floor(v[:, None] * colors[c] + 0.5).astype(np.uint16))

    def run(out: np.ndarray) -> np.ndarray:
        acc = np.take(tables[0], pix[0], axis=0)
        for c in range(1, pix.shape[0]):
            acc += np.take(tables[c], pix[c], axis=0)
        np.minimum(acc, 255, out=acc)
        out[..., :3] = acc
        out[..., 3] = 255
        return out

    return run


@pytest.mark.parametrize(("tile", "row"), CASES)
def test_render(benchmark: Any, ngffcore: Any, render_report: Any, tile: str, row: str) -> None:
    from ngffcore import _core
    from ngffcore.ome.render import composite, parse_color

    dtype, windows, inverted, gamma = TILES[tile]
    pix = make_tile(dtype)
    inter = np.ascontiguousarray(np.moveaxis(pix, 0, -1))
    colors = np.array([parse_color(c) for c in COLORS])
    out = np.empty((SIZE, SIZE, 4), np.uint8)
    want = numpy_float64(pix, windows, colors, inverted, gamma, np.empty_like(out))
    threads_before = ngffcore.get_num_threads()
    threads = 1 if "1 thread" in row else _core.default_num_threads()
    kw: dict[str, Any] = dict(windows=windows, colors=COLORS, inverted=inverted, gamma=gamma,
                              out=out)
    if row.startswith("ngffcore"):
        src, axis = (inter, -1) if "interleaved" in row else (pix, 0)
        fn: Callable[[], Any] = lambda: composite(src, channel_axis=axis, **kw)  # noqa: E731
        note = f"composite(), {threads} thread(s), " + ("(y, x, c)" if axis == -1 else "(c, y, x)")
    elif row == "numpy float64":
        fn = lambda: numpy_float64(pix, windows, colors, inverted, gamma, out)  # noqa: E731
        note = "vectorised float64 NumPy, the tests' formula"
    else:
        run = numpy_tables(pix, windows, colors, inverted, gamma)
        fn = lambda: run(out)  # noqa: E731
        note = "NumPy np.take through prebuilt per-channel tables"
    iterations = 1 if row == "numpy float64" else 10
    benchmark.extra_info.update(peer=row, kind="render", tile=tile, calls=1,
                                threads=threads, note=note)
    ngffcore.set_num_threads(threads)
    try:
        benchmark.pedantic(fn, rounds=bc.rounds_for(30), iterations=iterations,
                           warmup_rounds=1)
    finally:
        ngffcore.set_num_threads(threads_before)
    np.testing.assert_array_equal(out, want)
