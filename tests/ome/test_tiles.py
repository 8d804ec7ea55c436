"""Viewer tiles (issue 5): ``Image.tile`` / ``tile_box`` (sync and async) against zarr-python
reads of the same boxes, errors, request counts per tile over HTTP, and cancellation.

Images are written once per module by zarr-python (hand-written OME metadata) and by
ome-zarr-py (``tile_writers.py``); expected pixels are zarr-python reads, expected requests
come from the chunk grid as written and from shard indexes parsed with numpy — never from
ngffcore's own output.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from typing import Any

import numpy as np
import pytest

import ngffcore
import tile_writers as tw
from servers import RangeServer
from tile_writers import served, server  # noqa: F401  (fixtures shared with the other tile tests)

HTTP = {"client_options": {"allow_http": True}}
CASES = [*tw.HAND_CASES, "ozp-0.4", "ozp-0.5"]
SIZE = 32  # grid tile size used below: every level has clipped edge tiles


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiles")
    return root, tw.write_cases(root)


_url = tw.url


def _grid(case: tw.TileCase, level: int, size: int = SIZE):
    """Every (row, col, y box, x box) of a ``size`` grid over ``level``, edges clipped."""
    Y, X = case.size("y", level), case.size("x", level)
    for row in range(math.ceil(Y / size)):
        for col in range(math.ceil(X / size)):
            yield row, col, (row * size, min(Y, (row + 1) * size)), \
                (col * size, min(X, (col + 1) * size))


def _check(identical, got: Any, expected: np.ndarray, what: str) -> None:
    assert isinstance(got, np.ndarray), what
    identical(got, expected, what)


# --------------------------------------------------------------------------------------
# the references themselves
# --------------------------------------------------------------------------------------


def test_references_are_the_written_data(written):
    """zarr-python reads back what was written: the references below mean something."""
    _, cases = written
    for case in cases.values():
        for level, data in enumerate(case.written):
            with tw.ow.quiet():
                np.testing.assert_array_equal(case.zarr_array(level)[...], data,
                                              err_msg=f"{case.name} level {level}")
    # t/z defaults select planes that differ from plane 0 (so a wrong default is caught)
    for name in ("czyx-0.4", "czyx-0.5", "tczyx-0.4", "tczyx-0.5-sharded"):
        case = cases[name]
        box = ((0, 8), (0, 8))
        assert not np.array_equal(case.reference(0, *box), case.reference(0, *box, t=0, z=0))


# --------------------------------------------------------------------------------------
# pixels: grid tiles on every level, boxes, channels, planes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", CASES)
def test_grid_tiles_every_level(written, identical, name, mode, cache):
    _, cases = written
    case = cases[name]
    img = ngffcore.open(str(case.path), cache=cache)
    assert isinstance(img, ngffcore.Image)
    assert len(img.levels) == case.n_levels
    assert (img.cache is None) == (not cache)
    jobs = [(lv, r, c, y, x) for lv in range(case.n_levels) for r, c, y, x in _grid(case, lv)]
    assert any(y[1] - y[0] < SIZE or x[1] - x[0] < SIZE for _, _, _, y, x in jobs)  # clipped
    if mode == "sync":
        got = [img.tile(lv, r, c, size=SIZE) for lv, r, c, _, _ in jobs]
    else:
        async def all_tiles():
            return await asyncio.gather(*(img.tile_async(lv, r, c, size=SIZE)
                                          for lv, r, c, _, _ in jobs))
        got = asyncio.run(all_tiles())
    for (lv, r, c, y, x), tile in zip(jobs, got):
        _check(identical, tile, case.reference(lv, y, x), f"{name} level {lv} tile ({r}, {c})")


@pytest.mark.parametrize("name", ["czyx-0.4", "czyx-0.5-sharded", "yx-0.5", "yxc-0.4"])
def test_default_tile_size_is_512(written, identical, name):
    """A 512-pixel grid over these small levels: tile (0, 0) is the whole plane."""
    _, cases = written
    case = cases[name]
    img = ngffcore.open(str(case.path))
    for lv in range(case.n_levels):
        Y, X = case.size("y", lv), case.size("x", lv)
        _check(identical, img.tile(lv, 0, 0), case.reference(lv, (0, Y), (0, X)),
               f"{name} level {lv}")
    with pytest.raises(ngffcore.SelectionError):
        img.tile(0, 1, 0)
    with pytest.raises(ngffcore.SelectionError):
        img.tile(0, 0, 1)


def _boxes(case: tw.TileCase, level: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    Y, X = case.size("y", level), case.size("x", level)
    return [
        ((3, min(37, Y)), (5, min(61, X))),  # unaligned, crossing chunk borders
        ((0, Y), (0, X)),  # the whole plane
        ((Y - 1, Y), (X - 1, X)),  # the last pixel
        ((0, 1), (0, 1)),  # the first pixel
        ((1, Y - 1), (2, X - 3)),  # all but a border
        ((Y // 2 - 1, Y // 2 + 2), (X // 3, X // 3 + 1)),  # a 3x1 sliver
    ]


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", CASES)
def test_tile_box_unaligned(written, identical, name, mode, cache):
    _, cases = written
    case = cases[name]
    img = ngffcore.open(str(case.path), cache=cache)
    jobs = [(lv, y, x) for lv in range(case.n_levels) for y, x in _boxes(case, lv)]
    if mode == "sync":
        got = [img.tile_box(lv, y, x) for lv, y, x in jobs]
    else:
        async def all_boxes():
            return await asyncio.gather(*(img.tile_box_async(lv, y, x) for lv, y, x in jobs))
        got = asyncio.run(all_boxes())
    for (lv, y, x), tile in zip(jobs, got):
        _check(identical, tile, case.reference(lv, y, x), f"{name} level {lv} box {y} x {x}")


def _channel_lists(case: tw.TileCase) -> list[list[int]]:
    n = case.n_channels
    if n == 1:
        return [[0]]
    if n == 2:
        return [[1], [0], [1, 0], [0, 1]]
    return [[2, 0], [0, 2], [1], [2], [2, 1, 0], [1, 2], [0, 1, 2], [1, 0, 2]]


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", CASES)
def test_channel_subsets(written, identical, name, mode, cache):
    """Subsets, non-contiguous and reordered lists: rows of the result in the order asked."""
    _, cases = written
    case = cases[name]
    img = ngffcore.open(str(case.path), cache=cache)
    lv = case.n_levels - 1 if case.n_levels > 1 else 0
    jobs = []
    for chans in _channel_lists(case):
        jobs.append(("tile", 0, 1, 1, chans))
        jobs.append(("box", 0, (5, 29), (7, 50), chans))
        jobs.append(("tile", lv, 0, 0, chans))
    if mode == "sync":
        got = [img.tile(a, b, c, size=SIZE, channels=ch) if kind == "tile"
               else img.tile_box(a, b, c, channels=ch) for kind, a, b, c, ch in jobs]
    else:
        async def run():
            return await asyncio.gather(*(
                img.tile_async(a, b, c, size=SIZE, channels=ch) if kind == "tile"
                else img.tile_box_async(a, b, c, channels=ch) for kind, a, b, c, ch in jobs))
        got = asyncio.run(run())
    for (kind, a, b, c, chans), tile in zip(jobs, got):
        if kind == "tile":
            Y, X = case.size("y", a), case.size("x", a)
            y = (b * SIZE, min(Y, (b + 1) * SIZE))
            x = (c * SIZE, min(X, (c + 1) * SIZE))
            expected = case.reference(a, y, x, channels=chans)
        else:
            expected = case.reference(a, b, c, channels=chans)
        assert tile.shape[0] == len(chans)
        _check(identical, tile, expected, f"{name} {kind} {a} {b} {c} channels {chans}")


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", ["czyx-0.4", "czyx-0.5", "czyx-0.5-sharded", "tczyx-0.4",
                                  "tczyx-0.5-sharded", "ozp-0.4", "ozp-0.5"])
def test_planes(written, identical, name, mode):
    """Every explicit t/z plane; None selects omero's rdefs.defaultT/defaultZ, else 0."""
    _, cases = written
    case = cases[name]
    img = ngffcore.open(str(case.path))
    box = ((2, 30), (4, 40))
    ts = [None, *range(case.size("t"))] if "t" in case.axes else [None]
    zs = [None, *range(case.size("z"))]
    jobs = [(t, z) for t in ts for z in zs]
    if mode == "sync":
        got = [img.tile_box(0, *box, t=t, z=z) for t, z in jobs]
    else:
        async def run():
            return await asyncio.gather(*(img.tile_box_async(0, *box, t=t, z=z)
                                          for t, z in jobs))
        got = asyncio.run(run())
    for (t, z), tile in zip(jobs, got):
        _check(identical, tile, case.reference(0, *box, t=t, z=z), f"{name} t={t} z={z}")


def test_plane_defaults_are_the_written_rdefs(written):
    """The cases' defaults (what ``reference`` uses for None) are what the metadata says."""
    _, cases = written
    assert (cases["czyx-0.4"].default_t, cases["czyx-0.4"].default_z) == (0, 2)
    assert (cases["czyx-0.5"].default_t, cases["czyx-0.5"].default_z) == (0, 3)
    assert (cases["tczyx-0.4"].default_t, cases["tczyx-0.4"].default_z) == (1, 2)
    assert (cases["tczyx-0.5-sharded"].default_t, cases["tczyx-0.5-sharded"].default_z) == (1, 0)
    assert (cases["czyx-0.5-sharded"].default_t, cases["czyx-0.5-sharded"].default_z) == (0, 0)
    attrs = tw.ow.raw_attributes(cases["czyx-0.5"].path)
    assert attrs["ome"]["omero"]["rdefs"]["defaultZ"] == 3
    assert "rdefs" not in tw.ow.raw_attributes(cases["ozp-0.5"].path)["ome"].get("omero", {})


def test_negative_level_counts_from_the_coarsest(written, identical):
    _, cases = written
    case = cases["czyx-0.4"]
    img = ngffcore.open(str(case.path))
    last = case.n_levels - 1
    Y, X = case.size("y", last), case.size("x", last)
    _check(identical, img.tile(-1, 0, 0, size=SIZE), case.reference(last, (0, Y), (0, X)),
           "level -1")
    _check(identical, img.tile_box(-case.n_levels, (0, 5), (0, 5)),
           case.reference(0, (0, 5), (0, 5)), "level -n")


def test_label_image_tiles(written, identical):
    """A label image (zyx, no channel axis) tiles as (1, h, w), sharing the image's cache."""
    _, cases = written
    for version in ("0.4", "0.5"):
        case = cases[f"ozp-{version}"]
        img = ngffcore.open(str(case.path))
        label = img.labels["cells"]
        assert label.cache is img.cache
        label_dir = case.path / "labels" / "cells"
        first = tw.ow.ome_namespace(tw.ow.raw_attributes(label_dir))["multiscales"][0]
        data, _ = tw.ow.zarr_read(label_dir / first["datasets"][0]["path"])
        _check(identical, label.tile_box(0, (3, 40), (5, 70)), data[0, 3:40, 5:70][np.newaxis],
               f"labels/cells {version}")
        _check(identical, label.tile(0, 0, 1, size=32, z=5), data[5, 0:32, 32:64][np.newaxis],
               f"labels/cells {version} z=5")


# --------------------------------------------------------------------------------------
# repeated reads and mutation of results
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("name", CASES)
def test_repeat_and_mutation(written, identical, name, cache):
    """The same tile twice is equal; scribbling on a returned tile (or on overlapping ones)
    never changes what later reads return."""
    _, cases = written
    case = cases[name]
    img = ngffcore.open(str(case.path), cache=cache)
    y, x = (3, 37), (5, 41)
    expected = case.reference(0, y, x)
    first = img.tile_box(0, y, x)
    second = img.tile_box(0, y, x)
    _check(identical, first, expected, "first")
    _check(identical, second, expected, "second")
    assert not np.shares_memory(first, second)
    for tile in (first, second):
        assert tile.flags.writeable
        tile[...] = 7
    grid = img.tile(0, 0, 0, size=SIZE)
    grid[:, ::2] = 1
    _check(identical, img.tile_box(0, y, x), expected, "after scribbling")
    _check(identical, img.tile(0, 0, 0, size=SIZE),
           case.reference(0, (0, SIZE), (0, SIZE)), "grid tile after scribbling")

    async def run():
        a = await img.tile_box_async(0, y, x)
        a[...] = 3
        return await img.tile_box_async(0, y, x)

    _check(identical, asyncio.run(run()), expected, "async after scribbling")


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


def _bad_calls(case: tw.TileCase) -> list[tuple[str, str, tuple, dict]]:
    """(what, method, args, kwargs) of requests that must raise SelectionError."""
    n = case.n_levels
    Y, X, C = case.size("y"), case.size("x"), case.n_channels
    rows, cols = math.ceil(Y / SIZE), math.ceil(X / SIZE)
    last = n - 1
    calls = [
        ("level n", "tile", (n, 0, 0), {}),
        ("level -n-1", "tile", (-n - 1, 0, 0), {}),
        ("box level n", "tile_box", (n, (0, 1), (0, 1)), {}),
        ("box level -n-1", "tile_box", (-n - 1, (0, 1), (0, 1)), {}),
        ("row past the end", "tile", (0, rows, 0), {"size": SIZE}),
        ("col past the end", "tile", (0, 0, cols), {"size": SIZE}),
        ("row past the end of a coarse level", "tile",
         (last, math.ceil(case.size("y", last) / SIZE), 0), {"size": SIZE}),
        ("negative row", "tile", (0, -1, 0), {"size": SIZE}),
        ("negative col", "tile", (0, 0, -1), {"size": SIZE}),
        ("size 0", "tile", (0, 0, 0), {"size": 0}),
        ("negative size", "tile", (0, 0, 0), {"size": -SIZE}),
        ("y starts before 0", "tile_box", (0, (-1, 5), (0, 5)), {}),
        ("y ends past the level", "tile_box", (0, (0, Y + 1), (0, 5)), {}),
        ("y past the level", "tile_box", (0, (Y, Y + 2), (0, 5)), {}),
        ("empty y", "tile_box", (0, (5, 5), (0, 5)), {}),
        ("reversed y", "tile_box", (0, (6, 5), (0, 5)), {}),
        ("x starts before 0", "tile_box", (0, (0, 5), (-2, 5)), {}),
        ("x ends past the level", "tile_box", (0, (0, 5), (0, X + 1)), {}),
        ("empty x", "tile_box", (0, (0, 5), (3, 3)), {}),
        ("reversed x", "tile_box", (0, (0, 5), (9, 2)), {}),
        ("x past a coarse level", "tile_box",
         (last, (0, 1), (0, case.size("x", last) + 1)), {}),
        ("channel C", "tile", (0, 0, 0), {"channels": [C]}),
        ("channel -1", "tile", (0, 0, 0), {"channels": [-1]}),
        ("no channels", "tile", (0, 0, 0), {"channels": []}),
        ("one channel out of range", "tile_box", (0, (0, 5), (0, 5)), {"channels": [0, C]}),
    ]
    for axis in "tz":
        if axis in case.axes:
            size = case.size(axis)
            calls += [(f"{axis}={size}", "tile", (0, 0, 0), {axis: size}),
                      (f"{axis}=-1", "tile_box", (0, (0, 5), (0, 5)), {axis: -1}),
                      (f"{axis}={size + 10}", "tile", (0, 0, 0), {axis: size + 10})]
    return calls


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", CASES)
def test_out_of_range_requests_raise_selection_error(written, name, mode):
    _, cases = written
    case = cases[name]
    img = ngffcore.open(str(case.path))
    for what, method, args, kwargs in _bad_calls(case):
        with pytest.raises(ngffcore.SelectionError) as info:
            if mode == "sync":
                getattr(img, method)(*args, **kwargs)
            else:
                asyncio.run(getattr(img, f"{method}_async")(*args, **kwargs))
        assert isinstance(info.value, IndexError), what  # the natural builtin, too
    # the image still reads correctly after all of that
    assert np.array_equal(img.tile_box(0, (0, 5), (0, 5)), case.reference(0, (0, 5), (0, 5)))


@pytest.mark.parametrize("name", ["yx-0.4", "yx-0.5", "yxc-0.4", "czyx-0.4", "ozp-0.5"])
def test_plane_index_for_an_axis_the_image_lacks(written, identical, name):
    """An image without a t (or z) axis has one plane along it: 0 (or None) reads it, any
    other index is out of range — as ``channels`` must be None or [0] without a c axis."""
    _, cases = written
    case = cases[name]
    img = ngffcore.open(str(case.path))
    expected = case.reference(0, (0, 5), (0, 5))
    missing = [a for a in "tz" if a not in case.axes]
    assert missing
    for axis in missing:
        _check(identical, img.tile_box(0, (0, 5), (0, 5), **{axis: 0}), expected, f"{axis}=0")
        for bad in (1, 3, -1):
            with pytest.raises(ngffcore.SelectionError):
                img.tile_box(0, (0, 5), (0, 5), **{axis: bad})
    if "c" not in case.axes:
        with pytest.raises(ngffcore.SelectionError):
            img.tile(0, 0, 0, channels=[1])
        _check(identical, img.tile_box(0, (0, 5), (0, 5), channels=[0]), expected, "[0]")


# --------------------------------------------------------------------------------------
# sync tiles inside a running event loop (viewers' async code)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["local", "http"])
def test_sync_tile_inside_a_running_loop(written, server, identical, where):
    _, cases = written
    case = cases["czyx-0.4"]
    location = str(case.path) if where == "local" else _url(server, case)
    kw = HTTP if where == "http" else {}

    async def main():
        img = ngffcore.open(location, **kw)
        one_run = img.tile_box(0, (0, 20), (0, 30))
        two_runs = img.tile_box(0, (10, 40), (20, 60), channels=[2, 0])
        return one_run, two_runs

    one_run, two_runs = asyncio.run(main())
    _check(identical, one_run, case.reference(0, (0, 20), (0, 30)), "one run")
    _check(identical, two_runs, case.reference(0, (10, 40), (20, 60), channels=[2, 0]),
           "two runs")


# --------------------------------------------------------------------------------------
# requests per tile over HTTP (counted in the server's own log)
# --------------------------------------------------------------------------------------


def _gets(srv: RangeServer) -> list[Any]:
    reqs = srv.state.requests()
    assert all(r.method == "GET" for r in reqs), [(r.method, r.path) for r in reqs]
    return reqs


def _paths(srv: RangeServer) -> Counter:
    return Counter(r.path for r in _gets(srv))


def _expected(case: tw.TileCase, names: list[str]) -> Counter:
    return Counter(f"/{case.path.name}/{n}" for n in names)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", ["czyx-0.4", "czyx-0.5", "tczyx-0.4", "yx-0.4", "yx-0.5",
                                  "ozp-0.4", "ozp-0.5"])
def test_requests_per_tile_planar(written, server, identical, name, mode):
    """C channels × K chunks touched GETs (each chunk object once), no HEAD; the same tile
    again: 0; a neighbour sharing chunks: only the new ones."""
    _, cases = written
    case = cases[name]
    img = ngffcore.open(_url(server, case), **HTTP)

    def read(y, x, channels=None):
        server.state.clear()
        if mode == "sync":
            return img.tile_box(0, y, x, channels=channels)
        return asyncio.run(img.tile_box_async(0, y, x, channels=channels))

    C = case.n_channels
    first = ((8, 40), (10, 40))
    names = case.objects(0, *first)
    K = len(names) // C
    assert K > 1 and len(names) == C * K
    _check(identical, read(*first), case.reference(0, *first), "first")
    assert _paths(server) == _expected(case, names)
    assert server.state.counts() == Counter({"GET": C * K})

    _check(identical, read(*first), case.reference(0, *first), "warm repeat")
    assert server.state.requests() == []

    neighbour = ((8, 40), (30, min(case.size("x"), 70)))
    new = sorted(set(case.objects(0, *neighbour)) - set(names))
    assert 0 < len(new) < len(case.objects(0, *neighbour))
    _check(identical, read(*neighbour), case.reference(0, *neighbour), "neighbour")
    assert _paths(server) == _expected(case, new)

    # a grid tile on another level
    lv = case.n_levels - 1
    server.state.clear()
    Y, X = case.size("y", lv), case.size("x", lv)
    _check(identical, img.tile(lv, 0, 0, size=SIZE),
           case.reference(lv, (0, min(Y, SIZE)), (0, min(X, SIZE))), "coarse grid tile")
    assert _paths(server) == _expected(case, case.objects(lv, (0, min(Y, SIZE)),
                                                          (0, min(X, SIZE))))
    if C > 1:  # a non-contiguous channel subset, cold: those channels' chunks only
        img = ngffcore.open(_url(server, case), **HTTP)
        chans = [C - 1, 0]
        _check(identical, read(*first, channels=chans),
               case.reference(0, *first, channels=chans), "subset")
        assert _paths(server) == _expected(case, case.objects(0, *first, channels=chans))
        assert len(_gets(server)) == len(chans) * K


@pytest.mark.parametrize("channels", [None, [0, 1, 2], [1], [2, 0], [0, 2]],
                         ids=["all", "012", "1", "20", "02"])
@pytest.mark.parametrize("name", ["yxc-0.4", "yxc-0.5"])
def test_requests_per_tile_interleaved_rgb(written, server, identical, name, channels):
    """yxc with (Y, X, 3) chunks: one GET per chunk whatever channels are asked for —
    channels are never split into separate requests for the same chunk."""
    _, cases = written
    case = cases[name]
    img = ngffcore.open(_url(server, case), **HTTP)
    box = ((8, 40), (10, 40))
    names = case.objects(0, *box)
    assert len(names) == 9
    server.state.clear()
    _check(identical, img.tile_box(0, *box, channels=channels),
           case.reference(0, *box, channels=channels), "rgb")
    assert _paths(server) == _expected(case, names)
    server.state.clear()
    _check(identical, img.tile_box(0, *box, channels=channels),
           case.reference(0, *box, channels=channels), "rgb warm")
    assert server.state.requests() == []


@pytest.mark.parametrize("name", ["czyx-0.4", "yxc-0.5", "czyx-0.5-sharded"])
def test_requests_without_cache_refetch(written, server, identical, name):
    _, cases = written
    case = cases[name]
    img = ngffcore.open(_url(server, case), cache=False, **HTTP)
    assert img.cache is None
    box = ((8, 40), (10, 50))
    server.state.clear()
    _check(identical, img.tile_box(0, *box), case.reference(0, *box), "first")
    first = _paths(server)
    assert first
    server.state.clear()
    _check(identical, img.tile_box(0, *box), case.reference(0, *box), "again")
    again = _paths(server)
    if case.shards is None:
        assert first == again == _expected(case, case.objects(0, *box))
    else:
        # shard indexes stay cached on the level; the data ranges are asked for again
        assert set(again) == set(first) == set(_expected(case, case.objects(0, *box)))
        assert not any(r.range and r.range.startswith("bytes=-") for r in _gets(server))


def _kind(rng: str | None) -> tuple[str, int | None, int | None]:
    """A logged Range header as (kind, start, end) in ``PlannedRequest`` terms."""
    if rng is None:
        return "get", None, None
    a, b = rng.removeprefix("bytes=").split("-")
    if not a:
        return "suffix_get", None, None
    return "range_get", int(a), int(b) + 1


def _planned(img, level: int, sel: tuple) -> list[tuple[str, str, int | None, int | None]]:
    return sorted((p.kind, p.key, p.start, p.end) for p in img.levels[level].plan(sel))


def _sent(srv: RangeServer, case: tw.TileCase) -> list[tuple[str, str, int | None, int | None]]:
    prefix = f"/{case.path.name}/"
    out = []
    for r in _gets(srv):
        kind, start, end = _kind(r.range)
        out.append((kind, r.path.removeprefix(prefix), start, end))
    return sorted(out)


def _needed_ranges(case: tw.TileCase, level: int, c: int, z: int, y: tuple[int, int],
                   x: tuple[int, int]) -> tuple[str, list[tuple[int, int]], int]:
    """Shard object, byte ranges of the inner chunks a box needs (from the shard file's
    index, parsed with numpy), and the shard's size. Boxes lie inside one shard."""
    (name,) = case.objects(level, y, x, z=z, channels=[c])
    sy, sx = case.shards[-2], case.shards[-1]  # type: ignore[index]
    cy, cx = case.chunk("y"), case.chunk("x")
    ny, nx = sy // cy, sx // cx
    offsets, nbytes, size = tw.shard_index(case.path / name, ny * nx)
    wanted = []
    for iy in range((y[0] % sy) // cy, ((y[1] - 1) % sy) // cy + 1):
        for ix in range((x[0] % sx) // cx, ((x[1] - 1) % sx) // cx + 1):
            k = iy * nx + ix
            assert offsets[k] >= 0
            wanted.append((int(offsets[k]), int(offsets[k] + nbytes[k])))
    return name, wanted, size


def _covered(ranges: list[tuple[int | None, int | None]], size: int,
             wanted: list[tuple[int, int]]) -> bool:
    spans = [(0, size) if s is None else (s, e) for s, e in ranges]
    return all(any(s <= a and b <= e for s, e in spans) for a, b in wanted)


def test_requests_per_tile_sharded(written, server, identical):
    """Sharded 0.5: per shard one suffix GET for the index (cold) and ranged GETs for the
    needed inner chunks — what ``level.plan`` says before the read; a second tile in the
    same shards: exactly the planned ranges; a warm repeat: nothing."""
    _, cases = written
    case = cases["czyx-0.5-sharded"]
    img = ngffcore.open(_url(server, case), **HTTP)
    C, z = case.n_channels, 1
    index_range = f"bytes=-{tw.index_nbytes(case)}"

    # cold: index + data per shard (a quarter of each shard's inner chunks)
    a = ((0, 16), (0, 24))
    plan = _planned(img, 0, (slice(0, C), z, slice(*a[0]), slice(*a[1])))
    server.state.clear()
    _check(identical, img.tile_box(0, *a, z=z), case.reference(0, *a, z=z), "cold")
    sent = _sent(server, case)
    assert [(k, key) for k, key, _, _ in sent] == [(k, key) for k, key, _, _ in plan]
    assert Counter(k for k, *_ in sent) == Counter({"suffix_get": C, "range_get": C})
    assert all(r.range == index_range for r in _gets(server)
               if r.range and r.range.startswith("bytes=-"))
    for c in range(C):
        key, wanted, size = _needed_ranges(case, 0, c, z, *a)
        mine = [(s, e) for k, kk, s, e in sent if kk == key and k == "range_get"]
        assert _covered(mine, size, wanted)
        assert sum(e - s for s, e in mine) < size  # not the whole shard

    # the rest of the same shards' rows: indexes cached, exactly the planned ranges
    b = ((16, 32), (0, 24))
    plan = _planned(img, 0, (slice(0, C), z, slice(*b[0]), slice(*b[1])))
    assert all(k != "suffix_get" and s is not None for k, _, s, _ in plan)
    server.state.clear()
    _check(identical, img.tile_box(0, *b, z=z), case.reference(0, *b, z=z), "warm index")
    assert _sent(server, case) == plan
    for c in range(C):
        key, wanted, size = _needed_ranges(case, 0, c, z, *b)
        assert _covered([(s, e) for _, kk, s, e in plan if kk == key], size, wanted)

    # warm repeats: nothing
    server.state.clear()
    _check(identical, img.tile_box(0, *a, z=z), case.reference(0, *a, z=z), "repeat a")
    _check(identical, img.tile_box(0, *b, z=z), case.reference(0, *b, z=z), "repeat b")
    assert server.state.requests() == []


def test_requests_whole_shard_tile_match_plan(written, server, identical):
    """A tile covering whole shards, cold: the read sends what ``level.plan`` said it would
    (the dry run and the read agree on the index request)."""
    _, cases = written
    case = cases["czyx-0.5-sharded"]
    img = ngffcore.open(_url(server, case), **HTTP)
    box, z = ((0, 32), (0, 48)), 2
    sel = (slice(0, case.n_channels), z, slice(*box[0]), slice(*box[1]))
    plan = _planned(img, 0, sel)
    server.state.clear()
    _check(identical, img.tile_box(0, *box, z=z), case.reference(0, *box, z=z), "whole shard")
    assert [(k, key) for k, key, _, _ in _sent(server, case)] == \
        [(k, key) for k, key, _, _ in plan]


def test_requests_sharded_rgb(written, server, identical):
    """Interleaved RGB in shards: one index request per shard and ranged data, no channel
    split; warm repeat: nothing."""
    _, cases = written
    case = cases["yxc-0.5-sharded"]
    img = ngffcore.open(_url(server, case), **HTTP)
    box = ((0, 16), (32, 48))  # one inner chunk of shard (0, 1)
    (shard,) = case.objects(0, *box)
    server.state.clear()
    _check(identical, img.tile_box(0, *box), case.reference(0, *box), "rgb shard")
    sent = _sent(server, case)
    assert [(k, key) for k, key, _, _ in sent] == [("range_get", shard), ("suffix_get", shard)]
    server.state.clear()
    for chans in (None, [2, 0], [1]):
        _check(identical, img.tile_box(0, *box, channels=chans),
               case.reference(0, *box, channels=chans), f"rgb shard warm {chans}")
    assert server.state.requests() == []


# --------------------------------------------------------------------------------------
# cancellation
# --------------------------------------------------------------------------------------

LATENCY = 1.0


async def _until_requested(srv: RangeServer, timeout: float = 10.0) -> None:
    """Wait until the server has seen a request (so one is in flight: its answer comes
    ``LATENCY`` after it arrived). Polling, not a fixed sleep: on a loaded machine the first
    request can take longer than any fixed delay to reach the server."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not srv.state.requests():
        assert asyncio.get_running_loop().time() < deadline, "no request reached the server"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("channels", [None, [2, 0]], ids=["one-run", "two-runs"])
@pytest.mark.parametrize("name", ["czyx-0.4", "czyx-0.5-sharded", "yxc-0.5"])
def test_cancel_tile_async(written, identical, name, channels):
    """A tile the viewer abandons: CancelledError promptly, no ngffcore task left on the
    loop, nothing cached from it, and the image reads correct tiles afterwards."""
    root, cases = written
    case = cases[name]
    box = ((0, 32), (0, 48))
    expected = case.reference(0, *box, channels=channels)
    with RangeServer(str(root)) as srv:
        async def main():
            loop = asyncio.get_running_loop()
            img = await ngffcore.open_async(_url(srv, case), **HTTP)
            srv.state.latency = LATENCY
            srv.state.clear()
            task = asyncio.ensure_future(img.tile_box_async(0, *box, channels=channels))
            await _until_requested(srv)
            assert not task.done()
            task.cancel()
            t1 = loop.time()
            with pytest.raises(asyncio.CancelledError):
                await task
            done = loop.time()
            # before the answer to the request in flight (LATENCY after it arrived)
            assert done - t1 < LATENCY / 2, f"cancel took {done - t1:.3f} s"
            await asyncio.sleep(0.1)
            me = asyncio.current_task()
            left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
            assert left == [], f"tasks left on the loop: {left}"
            stats = img.cache.stats()
            assert (stats.chunks, stats.bytes) == (0, 0), stats  # nothing decoded arrived
            srv.state.latency = 0.0
            again = await img.tile_box_async(0, *box, channels=channels)
            return again, img

        again, img = asyncio.run(main())
        _check(identical, again, expected, "after cancel (async)")
        _check(identical, img.tile_box(0, *box, channels=channels), expected,
               "after cancel (sync)")
        _check(identical, img.tile(0, 0, 0, size=SIZE, channels=channels),
               case.reference(0, (0, SIZE), (0, SIZE), channels=channels), "neighbour")


def test_cancel_many_tiles_then_read(written, identical):
    """A viewer panning: many tiles started, all abandoned; then every tile reads right."""
    root, cases = written
    case = cases["czyx-0.5"]
    jobs = [(lv, r, c, y, x) for lv in range(case.n_levels) for r, c, y, x in _grid(case, lv)]
    with RangeServer(str(root)) as srv:
        async def main():
            img = await ngffcore.open_async(_url(srv, case), **HTTP)
            srv.state.latency = LATENCY
            tasks = [asyncio.ensure_future(img.tile_async(lv, r, c, size=SIZE))
                     for lv, r, c, _, _ in jobs]
            await _until_requested(srv)
            t0 = time.monotonic()
            for t in tasks:
                t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert time.monotonic() - t0 < LATENCY / 2
            assert all(isinstance(r, asyncio.CancelledError) for r in results)
            await asyncio.sleep(0.1)
            me = asyncio.current_task()
            assert [t for t in asyncio.all_tasks() if t is not me and not t.done()] == []
            srv.state.latency = 0.0
            return await asyncio.gather(*(img.tile_async(lv, r, c, size=SIZE)
                                          for lv, r, c, _, _ in jobs)), img

        got, img = asyncio.run(main())
        for (lv, r, c, y, x), tile in zip(jobs, got):
            _check(identical, tile, case.reference(lv, y, x), f"level {lv} ({r}, {c})")


def test_default_plane_follows_the_level(tmp_path):
    """omero's defaultZ is a level-0 index: on a level whose z is halved it is the plane
    holding that plane's centre, so tiles, renders and the scheduler show the same place."""
    import json

    import zarr

    rng = np.random.default_rng(3)
    data = rng.integers(0, 255, size=(2, 12, 64, 64), dtype=np.uint8)
    path = tmp_path / "img.zarr"
    ngffcore.write_image(str(path), data, axes="czyx", factors=[[1, 2, 2, 2], [1, 2, 2, 2]],
                         chunks=(1, 4, 32, 32), version="0.4")
    attrs = json.loads((path / ".zattrs").read_text())
    attrs["omero"]["rdefs"] = {"defaultZ": 5, "defaultT": 0}
    (path / ".zattrs").write_text(json.dumps(attrs))
    img = ngffcore.open(str(path))
    assert [img.geometry.default_plane("z", k) for k in range(3)] == [5, 2, 1]
    for level, plane in enumerate([5, 2, 1]):
        ref = zarr.open_array(str(path / str(level)), mode="r")[:, plane]
        np.testing.assert_array_equal(img.tile(level, 0, 0, size=16), ref[:, :16, :16])
    with img.scheduler() as sched:
        np.testing.assert_array_equal(sched.tile(2, 0, 0, size=16).result(timeout=30),
                                      zarr.open_array(str(path / "2"), mode="r")[:, 1, :16, :16])
