"""The pan/zoom trace of the viewer benchmark (``test_bench_viewer.py``, issue 17): a user
browsing the 5-level whole-slide image of ``tiles_data.py`` (3 x 16384 x 16384, chunks 512)
through a 1024 x 768 viewport. Generated once with a fixed seed and kept in
``benchmarks/traces/pan_zoom.json``; the benchmark only loads it::

    python benchmarks/viewer_trace.py            # (re)write the trace (needs the tile data)
    python benchmarks/viewer_trace.py --check    # regenerate in memory, compare with the file

Each view is ``[t_ms, level, y0, y1, x0, x1, kind]``: the time offset from the start of the
replay, the level, and the half-open pixel box of that level on screen. Kinds: ``s`` start,
``p`` pan, ``f`` a step of a fling, ``i`` / ``o`` zoom in / out by one level.

How a session is drawn (``generate``), one gesture after the other:

* It starts on the overview (level 4, which the viewport nearly covers) and zooms in. A zoom
  changes the level by one around a point under the cursor (the point keeps its place on
  screen, as a mouse-wheel zoom does): zoom-in points favour tissue, zoom-out points are
  anywhere. Levels 0-2 are where a user reads a slide, so the walk leans there.
* A pan moves the view 50-400 px of its level along a heading that drifts (a drag); the
  heading is steered towards tissue (a user follows the section, not the glass) and turns
  back at the slide's edges. Views stay inside the level (every level is at least as large
  as the viewport).
* A fling: 4-8 views 16-50 ms apart, each moving 250-400 px at first and decaying.
* Between gestures the next view comes 60-200 ms later (a drag's view updates), 150-300 ms
  after a zoom, and with probability ``PAUSE_P`` after a 200-800 ms pause (reading).

Tissue is where the level-4 image is darker than ``TISSUE_LEVEL`` (mean of the channels): the
H&E section covers ~35 % of the slide and is where the bytes are (a 512 x 512 chunk of glass
is ~1 KiB compressed, one of tissue 150-260 KiB), so a trace over glass would measure
nothing. The data is only read when the trace is generated.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tiles_data as td  # noqa: E402

TRACE_PATH = Path(__file__).resolve().parent / "traces" / "pan_zoom.json"
VERSION = 1
SEED = 170010  # of 20 seeds tried, one whose views spread over levels 0-2 (60/80/93)
VIEWPORT = (768, 1024)  # (height, width) in pixels of the level shown
TILE = 512  # the viewer's tile grid (= the data's chunk grid)
MIN_VIEWS = 240
MAX_MS = 45_000
TISSUE_LEVEL = 235  # level-4 channel mean below this: tissue
PAUSE_P = 0.12
FLING_P = 0.08
ZOOM_P = 0.13
#: probability that a zoom at this level goes in (finer); level 0 only zooms out, 4 only in
ZOOM_IN_P = {0: 0.0, 1: 0.55, 2: 0.7, 3: 0.85, 4: 1.0}
KINDS = {"s": "start", "p": "pan", "f": "fling step", "i": "zoom in", "o": "zoom out"}


@dataclass(frozen=True)
class View:
    index: int
    t_ms: int
    level: int
    y0: int
    y1: int
    x0: int
    x1: int
    kind: str

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.y0, self.y1, self.x0, self.x1


@dataclass(frozen=True)
class Trace:
    views: tuple[View, ...]
    level_shapes: tuple[tuple[int, int], ...]
    viewport: tuple[int, int]
    tile: int
    dataset: str
    seed: int

    @property
    def duration_ms(self) -> int:
        return self.views[-1].t_ms

    def visible(self, view: View) -> list[tuple[int, int]]:
        """The (row, col) of the ``tile``-grid tiles the view intersects, row-major."""
        return visible_tiles(view.box, self.level_shapes[view.level], self.tile)

    def describe(self) -> str:
        kinds: dict[str, int] = {}
        for v in self.views:
            kinds[KINDS[v.kind]] = kinds.get(KINDS[v.kind], 0) + 1
        per_level: dict[int, int] = {}
        for v in self.views:
            per_level[v.level] = per_level.get(v.level, 0) + 1
        n_tiles = [len(self.visible(v)) for v in self.views]
        gaps = np.diff([v.t_ms for v in self.views])
        return (f"{len(self.views)} views over {self.duration_ms / 1e3:.1f} s ({', '.join(f'{n} {k}' for k, n in kinds.items())}); "
                f"views per level {dict(sorted(per_level.items()))}; {self.viewport[1]}x{self.viewport[0]} viewport, "
                f"{min(n_tiles)}-{max(n_tiles)} visible {self.tile}-px tiles per view ({sum(n_tiles)} in all); "
                f"gaps between views {int(gaps.min())}-{int(gaps.max())} ms, median {int(np.median(gaps))} ms")


def visible_tiles(box: tuple[int, int, int, int], shape: tuple[int, int], tile: int) -> list[tuple[int, int]]:
    y0, y1, x0, x1 = box
    y0, y1, x0, x1 = max(y0, 0), min(y1, shape[0]), max(x0, 0), min(x1, shape[1])
    if y0 >= y1 or x0 >= x1:
        return []
    return [(r, c) for r in range(y0 // tile, (y1 - 1) // tile + 1) for c in range(x0 // tile, (x1 - 1) // tile + 1)]


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------


def tissue_mask(small: bool = False) -> np.ndarray:
    """Tissue pixels of the coarsest level, read with zarr-python from the local data."""
    import warnings

    import zarr

    path = td.DATASETS["v2"].path(small) / str(td.N_LEVELS - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = np.asarray(zarr.open_array(str(path), mode="r")[:])
    return a.mean(axis=0) < TISSUE_LEVEL


class Walk:
    """The generator's state: level, view origin, heading; tissue lookups on the mask."""

    def __init__(self, rng: random.Random, mask: np.ndarray, shapes: list[tuple[int, int]]) -> None:
        self.rng, self.mask, self.shapes = rng, mask, shapes
        self.coarsest = len(shapes) - 1
        self.level = self.coarsest
        h, w = shapes[self.level]
        self.y0, self.x0 = self.clamp(self.level, (h - VIEWPORT[0]) / 2, (w - VIEWPORT[1]) / 2)
        self.heading = rng.uniform(0, 2 * math.pi)

    def clamp(self, level: int, y0: float, x0: float) -> tuple[int, int]:
        h, w = self.shapes[level]
        return (int(min(max(round(y0), 0), h - VIEWPORT[0])), int(min(max(round(x0), 0), w - VIEWPORT[1])))

    def tissue(self, level: int, y0: float, x0: float, h: float = VIEWPORT[0], w: float = VIEWPORT[1]) -> float:
        """Fraction of tissue in a box of ``level`` (through the coarsest level's mask)."""
        f = 2 ** (self.coarsest - level)
        a, b = int(max(y0, 0) // f), int(math.ceil(min(y0 + h, self.shapes[level][0]) / f))
        c, d = int(max(x0, 0) // f), int(math.ceil(min(x0 + w, self.shapes[level][1]) / f))
        return float(self.mask[a:max(b, a + 1), c:max(d, c + 1)].mean())

    def pan(self, dist: float, steer: bool = True) -> None:
        rng = self.rng
        if steer:
            if rng.random() < 0.2:
                self.heading = rng.uniform(0, 2 * math.pi)
            cands = [self.heading + math.radians(a) for a in (-60, -30, 0, 30, 60)]
            weights = []
            for th in cands:
                ty, tx = self.clamp(self.level, self.y0 + dist * math.sin(th), self.x0 + dist * math.cos(th))
                weights.append((0.05 + self.tissue(self.level, ty, tx)) ** 2 * (2.0 if th == self.heading else 1.0))
            self.heading = rng.choices(cands, weights)[0] + math.radians(rng.gauss(0, 10))
        y, x = self.y0 + dist * math.sin(self.heading), self.x0 + dist * math.cos(self.heading)
        ny, nx = self.clamp(self.level, y, x)
        if ny != round(y):  # hit an edge: turn back along that axis
            self.heading = math.atan2(-math.sin(self.heading), math.cos(self.heading))
        if nx != round(x):
            self.heading = math.atan2(math.sin(self.heading), -math.cos(self.heading))
        self.y0, self.x0 = ny, nx

    def zoom(self, zoom_in: bool) -> None:
        rng = self.rng
        # the cursor: a point on screen; zooming in, the most tissue around it of a few tries
        pts = [(rng.uniform(0.1, 0.9) * VIEWPORT[0], rng.uniform(0.1, 0.9) * VIEWPORT[1]) for _ in range(8)]
        if zoom_in:
            score = [self.tissue(self.level, self.y0 + sy - 96, self.x0 + sx - 128, 192, 256) for sy, sx in pts]
            sy, sx = rng.choices(pts, [(0.02 + s) ** 2 for s in score])[0]
        else:
            sy, sx = pts[0]
        py, px = self.y0 + sy, self.x0 + sx  # the point, in this level's pixels
        f = 2.0 if zoom_in else 0.5
        self.level += -1 if zoom_in else 1
        self.y0, self.x0 = self.clamp(self.level, py * f - sy, px * f - sx)

    def view(self, index: int, t_ms: float, kind: str) -> View:
        return View(index, int(round(t_ms)), self.level, self.y0, self.y0 + VIEWPORT[0], self.x0,
                    self.x0 + VIEWPORT[1], kind)


def generate(mask: np.ndarray, seed: int = SEED) -> Trace:
    rng = random.Random(seed)
    shapes = [(h, w) for _, h, w in td.level_shapes(False)]
    walk = Walk(rng, mask, shapes)
    views = [walk.view(0, 0.0, "s")]
    t = 0.0
    gap = rng.uniform(300, 500)  # the overview is looked at first

    while len(views) < MIN_VIEWS:
        t += gap
        r = rng.random()
        lvl = walk.level
        if lvl == walk.coarsest or (lvl >= 3 and r < 0.5) or r < ZOOM_P:
            zoom_in = rng.random() < ZOOM_IN_P[lvl]
            walk.zoom(zoom_in)
            views.append(walk.view(len(views), t, "i" if zoom_in else "o"))
            gap = rng.uniform(150, 300)
        elif r < ZOOM_P + FLING_P:
            dist = rng.uniform(250, 400)
            walk.pan(dist)
            views.append(walk.view(len(views), t, "f"))
            for _ in range(rng.randint(3, 7)):
                dist = max(50.0, dist * rng.uniform(0.65, 0.85))
                t += rng.uniform(16, 50)
                walk.pan(dist, steer=False)
                views.append(walk.view(len(views), t, "f"))
            gap = rng.uniform(60, 200)
        else:
            walk.pan(rng.uniform(50, 400))
            views.append(walk.view(len(views), t, "p"))
            gap = rng.uniform(60, 200)
        if rng.random() < PAUSE_P:
            gap = rng.uniform(200, 800)
    trace = Trace(tuple(views), tuple(shapes), VIEWPORT, TILE, td.DATASETS["v2"].dirname, seed)
    if trace.duration_ms > MAX_MS:
        raise RuntimeError(f"trace lasts {trace.duration_ms} ms > {MAX_MS}: adjust the gaps")
    return trace


# ---------------------------------------------------------------------------------------------
# File
# ---------------------------------------------------------------------------------------------


def to_json(trace: Trace) -> str:
    head = {
        "generator": "benchmarks/viewer_trace.py", "version": VERSION, "seed": trace.seed,
        "dataset": trace.dataset, "level_shapes": [list(s) for s in trace.level_shapes],
        "viewport": list(trace.viewport), "tile": trace.tile,
        "fields": ["t_ms", "level", "y0", "y1", "x0", "x1", "kind"], "kinds": KINDS,
    }
    lines = ["{"] + [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()] + ['  "views": [']
    rows = [json.dumps([v.t_ms, v.level, v.y0, v.y1, v.x0, v.x1, v.kind]) for v in trace.views]
    lines += [f"    {r}," for r in rows[:-1]] + [f"    {rows[-1]}", "  ]", "}"]
    return "\n".join(lines) + "\n"


def load(path: Path = TRACE_PATH) -> Trace:
    doc: dict[str, Any] = json.loads(Path(path).read_text())
    views = tuple(View(i, int(t), int(lv), int(a), int(b), int(c), int(d), str(k))
                  for i, (t, lv, a, b, c, d, k) in enumerate(doc["views"]))
    if any(b.t_ms < a.t_ms for a, b in zip(views, views[1:])):
        raise ValueError(f"{path}: view offsets are not in order")
    return Trace(views, tuple(tuple(s) for s in doc["level_shapes"]), tuple(doc["viewport"]),  # type: ignore[arg-type]
                 int(doc["tile"]), str(doc["dataset"]), int(doc["seed"]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="generate the pan/zoom trace of the viewer benchmark")
    ap.add_argument("--check", action="store_true", help="regenerate in memory and compare with the file")
    ap.add_argument("-o", "--output", default=str(TRACE_PATH))
    args = ap.parse_args(argv)
    td.ensure_tiles_data(False)
    trace = generate(tissue_mask(False))
    text = to_json(trace)
    out = Path(args.output)
    if args.check:
        same = out.exists() and out.read_text() == text
        print(f"{out}: {'matches' if same else 'DIFFERS from'} the generator's output")
        return 0 if same else 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written: {out} ({len(text)} bytes): {trace.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
