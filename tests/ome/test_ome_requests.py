"""Requests sent when opening OME-Zarr images and plates over HTTP (docs/ome.md, "Requests").

Counted in the test server's own log (``servers.RangeServer``), not in ngffcore's stats. The
data are written by ome-zarr-py (``tests/ome_writers.py``); pixel reads are compared with
zarr-python's reads of the same files.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import product
from pathlib import Path

import numpy as np
import pytest

import ngffcore
import ome_writers as ow
from servers import RangeServer

HTTP = {"client_options": {"allow_http": True}}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("ome_served")
    data = {
        "img05": ow.write_ome_zarr_image(root, "0.5", name="img05.zarr"),
        "img04": ow.write_ome_zarr_image(root, "0.4", name="img04.zarr"),
        "plate05": ow.write_ome_zarr_plate(root, "0.5"),
        "plate04": ow.write_ome_zarr_plate(root, "0.4"),
        "bf2raw05": ow.write_bioformats2raw(root, "0.5"),
    }
    with RangeServer(str(root)) as server:
        yield server, root, data


@pytest.fixture
def server(served):
    srv, root, data = served
    srv.state.reset()
    return srv, root, data


def _url(srv, exp) -> str:
    return f"{srv.url}/{exp.path.name}"


def _rel(root: Path, p: Path) -> str:
    return "/" + p.relative_to(root).as_posix()


def _paths(srv) -> list[str]:
    reqs = srv.state.requests()
    assert all(r.method == "GET" for r in reqs), [(r.method, r.path) for r in reqs]
    return [r.path for r in reqs]


def _metadata_file(version: str, kind: str) -> str:
    if version == "0.5":
        return "zarr.json"
    return ".zattrs" if kind == "group" else ".zarray"


def _image_metadata_paths(root: Path, exp: ow.ImageExpect) -> set[str]:
    """The group's attributes document and one array metadata document per level."""
    base = _rel(root, exp.path)
    return {f"{base}/{_metadata_file(exp.version, 'group')}"} | {
        f"{base}/{lvl.path}/{_metadata_file(exp.version, 'array')}" for lvl in exp.levels}


def _chunk_keys(root: Path, exp: ow.ImageExpect, level: int) -> set[str]:
    """Every chunk object of a level, from its raw metadata (chunk key encoding included)."""
    lvl = exp.levels[level]
    arr_dir = exp.path / lvl.path
    if exp.version == "0.5":
        meta = ow.load_json(arr_dir / "zarr.json")
        chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
        enc = meta["chunk_key_encoding"]
        sep = enc.get("configuration", {}).get("separator", "/" if enc["name"] == "default"
                                                          else ".")
        prefix = "c" + sep if enc["name"] == "default" else ""
    else:
        meta = ow.load_json(arr_dir / ".zarray")
        chunks = meta["chunks"]
        sep = meta.get("dimension_separator", ".")
        prefix = ""
    grid = [math.ceil(s / c) for s, c in zip(meta["shape"], chunks)]
    base = _rel(root, arr_dir)
    return {f"{base}/{prefix}{sep.join(map(str, idx))}" for idx in product(*map(range, grid))}


def _all_exist(root: Path, paths: list[str]) -> None:
    """No probes: every object asked for exists."""
    missing = [p for p in paths if not (root / p.lstrip("/")).is_file()]
    assert not missing, f"requests for missing objects: {missing}"


def _no_repeats(paths: list[str]) -> None:
    again = {p: n for p, n in Counter(paths).items() if n > 1}
    assert not again, f"fetched more than once: {again}"


# --------------------------------------------------------------------------------------
# opening images
# --------------------------------------------------------------------------------------


def test_open_05_image_is_one_plus_n_gets(server):
    srv, root, data = server
    exp = data["img05"]
    img = ngffcore.open(_url(srv, exp), **HTTP)
    assert isinstance(img, ngffcore.Image)
    paths = _paths(srv)
    n = len(exp.levels)
    assert n == 3
    assert len(paths) == 1 + n
    assert paths[0] == f"/{exp.path.name}/zarr.json"  # the group first, then the levels
    assert set(paths) == _image_metadata_paths(root, exp)
    assert [lvl.shape for lvl in img.levels] == [e.shape for e in exp.levels]


def test_open_04_image_with_format_hint(server):
    srv, root, data = server
    exp = data["img04"]
    img = ngffcore.open(_url(srv, exp), zarr_format=2, **HTTP)
    paths = _paths(srv)
    assert len(paths) == 1 + len(exp.levels)
    assert paths[0] == f"/{exp.path.name}/.zattrs"
    assert set(paths) == _image_metadata_paths(root, exp)
    assert img.version == "0.4"


def test_open_04_image_without_hint_probes_once(server):
    srv, root, data = server
    exp = data["img04"]
    ngffcore.open(_url(srv, exp), **HTTP)
    paths = _paths(srv)
    assert len(paths) == 2 + len(exp.levels)
    assert paths[:2] == [f"/{exp.path.name}/zarr.json", f"/{exp.path.name}/.zattrs"]
    assert set(paths[2:]) == {f"/{exp.path.name}/{lvl.path}/.zarray" for lvl in exp.levels}


def test_open_05_with_format_hint_3(server):
    srv, root, data = server
    exp = data["img05"]
    ngffcore.open(_url(srv, exp), zarr_format=3, **HTTP)
    assert set(_paths(srv)) == _image_metadata_paths(root, exp)
    assert len(_paths(srv)) == 1 + len(exp.levels)


# --------------------------------------------------------------------------------------
# labels: read on first use, then cached
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["img05", "img04"])
def test_labels_are_read_on_first_use(server, key):
    srv, root, data = server
    exp = data[key]
    hint = {"zarr_format": 2} if exp.version == "0.4" else {}
    img = ngffcore.open(_url(srv, exp), **hint, **HTTP)
    assert not any("/labels" in p for p in _paths(srv))
    np.testing.assert_array_equal(img.levels[2][...], exp.levels[2].data)
    assert not any("/labels" in p for p in _paths(srv))  # reading pixels does not touch them
    srv.state.clear()

    labels = img.labels
    paths = _paths(srv)
    labels_dir = exp.path / "labels"
    expected = {f"{_rel(root, labels_dir)}/{_metadata_file(exp.version, 'group')}"}
    for name, lab in exp.labels.items():
        expected |= _image_metadata_paths(root, lab)
    assert set(paths) == expected
    assert len(paths) == len(expected) == 1 + 2 * (1 + 2)
    _all_exist(root, paths)

    srv.state.clear()
    again = img.labels
    assert sorted(again) == ["cells", "nuclei"]
    np.testing.assert_array_equal(labels["cells"].levels[1][...], exp.labels["cells"].levels[1].data)
    # the label pixels cost chunk GETs only; no metadata is read again
    assert set(_paths(srv)) == _chunk_keys(root, exp.labels["cells"], 1)


# --------------------------------------------------------------------------------------
# reading after open: chunk GETs only
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["img05", "img04"])
def test_level_reads_send_only_chunk_gets(server, key):
    srv, root, data = server
    exp = data[key]
    hint = {"zarr_format": 2} if exp.version == "0.4" else {}
    img = ngffcore.open(_url(srv, exp), **hint, **HTTP)
    for i in (1, 0):
        srv.state.clear()
        got = img.levels[i][...]
        np.testing.assert_array_equal(got, exp.levels[i].data, strict=True)
        paths = _paths(srv)
        _no_repeats(paths)
        assert set(paths) == _chunk_keys(root, exp, i)


def test_read_region_sends_only_the_chunks_of_the_box(server):
    srv, root, data = server
    exp = data["img05"]  # czyx; level 1: y/x 1 µm, translation 0.25; chunks (1, 4, 32, 32)
    img = ngffcore.open(_url(srv, exp), **HTTP)
    srv.state.clear()
    # c 1, z [0, 4) (z 2 µm: centres 0, 2, 4, 6 → pixels 0, 1), y [0, 31.5) → pixels 0 .. 31,
    # x [40.0, 47.5) → ⌈39.75⌉ = 40 .. ⌈47.25⌉ = 48: chunk (1, 0, 0, 1) only
    r = img.read_region({"c": 1, "z": (0.0, 4.0), "y": (0.0, 31.5), "x": (40.0, 47.5)}, level=1)
    assert r.box == ((1, 2), (0, 2), (0, 32), (40, 48))
    np.testing.assert_array_equal(r.data, exp.levels[1].data[1:2, 0:2, 0:32, 40:48])
    assert _paths(srv) == [f"/{exp.path.name}/s1/c/1/0/0/1"]


# --------------------------------------------------------------------------------------
# plates
# --------------------------------------------------------------------------------------


def test_plate_open_is_one_get(server):
    srv, root, data = server
    exp = data["plate05"]
    plate = ngffcore.open(_url(srv, exp), **HTTP)
    assert isinstance(plate, ngffcore.Plate)
    assert _paths(srv) == [f"/{exp.path.name}/zarr.json"]
    assert plate.rows == ("A", "B")


def test_plate_04_open_is_one_get_with_hint(server):
    srv, root, data = server
    exp = data["plate04"]
    ngffcore.open(_url(srv, exp), zarr_format=2, **HTTP)
    assert _paths(srv) == [f"/{exp.path.name}/.zattrs"]


@pytest.mark.parametrize("key", ["plate05", "plate04"])
def test_field_metadata_reuse(server, key):
    srv, root, data = server
    exp = data[key]
    v = exp.version
    hint = {"zarr_format": 2} if v == "0.4" else {}
    base = f"/{exp.path.name}"
    group, array = _metadata_file(v, "group"), _metadata_file(v, "array")
    plate = ngffcore.open(_url(srv, exp), **hint, **HTTP)
    everything = _paths(srv)

    srv.state.clear()
    well = plate.well("B", 3)
    assert _paths(srv) == [f"{base}/B/3/{group}"]  # a well: 1 GET, on first use
    everything += _paths(srv)

    srv.state.clear()
    f0 = well.field(0)  # the first field of the plate: its group + N levels
    n = len(exp.fields[("B/3", 0)].levels)
    assert n == 2
    assert set(_paths(srv)) == {f"{base}/B/3/0/{group}"} | {
        f"{base}/B/3/0/{lvl.path}/{array}" for lvl in exp.fields[("B/3", 0)].levels}
    assert len(_paths(srv)) == 1 + n
    everything += _paths(srv)

    srv.state.clear()
    f1 = well.field(1)  # same multiscales document: 1 GET
    assert _paths(srv) == [f"{base}/B/3/1/{group}"]
    everything += _paths(srv)

    srv.state.clear()
    g0 = plate.well("A", 2).field(0)  # another well: its group + the field's group
    assert _paths(srv) == [f"{base}/A/2/{group}", f"{base}/A/2/0/{group}"]
    everything += _paths(srv)

    # the reused metadata reads the right objects and pixels
    for img, key_ in ((f0, ("B/3", 0)), (f1, ("B/3", 1)), (g0, ("A/2", 0))):
        fexp = exp.fields[key_]
        srv.state.clear()
        for lvl, e in zip(img.levels, fexp.levels):
            assert (lvl.shape, lvl.chunks) == (e.shape, e.chunks)
            np.testing.assert_array_equal(lvl[...], e.data, strict=True)
        assert set(_paths(srv)) == set().union(*(_chunk_keys(root, fexp, i)
                                                 for i in range(len(fexp.levels))))
        everything += _paths(srv)

    # asking again sends nothing
    srv.state.clear()
    assert plate.well("B", 3).field(1) is not None
    plate.well("A", 2).field(0)
    assert _paths(srv) == []

    _all_exist(root, everything)
    _no_repeats(everything)


def test_field_metadata_reuse_off(server):
    srv, root, data = server
    exp = data["plate05"]
    base = f"/{exp.path.name}"
    plate = ngffcore.open(_url(srv, exp), reuse_field_metadata=False, **HTTP)
    well = plate.well("A", 1)
    well.field(0)
    srv.state.clear()
    f1 = well.field(1)
    fexp = exp.fields[("A/1", 1)]
    assert set(_paths(srv)) == {f"{base}/A/1/1/zarr.json"} | {
        f"{base}/A/1/1/{lvl.path}/zarr.json" for lvl in fexp.levels}
    assert len(_paths(srv)) == 1 + len(fexp.levels)
    np.testing.assert_array_equal(f1.levels[1][...], fexp.levels[1].data)


# --------------------------------------------------------------------------------------
# bioformats2raw: no probes below the root
# --------------------------------------------------------------------------------------


def test_bioformats2raw_no_probes(server):
    srv, root, data = server
    exp = data["bf2raw05"]
    coll = ngffcore.open(_url(srv, exp), **HTTP)
    images = [coll[0], coll[1]]
    for img, e in zip(images, exp.series):
        np.testing.assert_array_equal(img.levels[1][...], e.levels[1].data)
    paths = _paths(srv)
    _all_exist(root, paths)
    _no_repeats(paths)
    assert paths[0] == f"/{exp.path.name}/zarr.json"
    assert f"/{exp.path.name}/OME/zarr.json" in paths
    for e in exp.series:
        assert _image_metadata_paths(root, e) <= set(paths)
