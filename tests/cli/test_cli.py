"""The ``ngffcore`` command line: ``info``, ``read``, ``validate``, run in-process through
``main(argv)``, on data written by zarr-python and ome-zarr-py; ``read`` results compared
with zarr-python's read of a pixel box computed here by hand (docs/ome.md's rounding rule).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import ngffcore
from ngffcore.cli.common import Progress, store_option
from ngffcore.cli.main import main
from ngffcore.zarr.grid import slab_boxes
from servers import RangeServer

with warnings.catch_warnings():
    # ome-zarr-py's writer module builds a deprecated Scaler as a default argument
    warnings.simplefilter("ignore", DeprecationWarning)
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import (
        write_image,
        write_labels,
        write_multiscale,
        write_plate_metadata,
        write_well_metadata,
    )

# c, y, x: 2 channels of 40 × 60 pixels of 0.5 µm; level 1 halves y and x and is shifted by
# (factor − 1)/2 level-0 pixels = 0.25 µm, as the writers shift coarser levels
DATA = np.arange(2 * 40 * 60, dtype="uint16").reshape(2, 40, 60)
AXES = [{"name": "c", "type": "channel"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"}]
TRANSFORMS = [[{"type": "scale", "scale": [1, 0.5, 0.5]}],
              [{"type": "scale", "scale": [1, 1.0, 1.0]},
               {"type": "translation", "translation": [0, 0.25, 0.25]}]]
OMERO = {"channels": [
    {"label": "DAPI", "color": "0000FF", "active": True,
     "window": {"start": 10, "end": 900, "min": 0, "max": 65535}},
    {"label": "GFP", "color": "00FF00", "active": False,
     "window": {"start": 0, "end": 4000, "min": 0, "max": 65535}}]}
FORMATS = {"0.4": FormatV04, "0.5": FormatV05}


def _quietly(fn: Any, *args: Any, **kwargs: Any) -> Any:
    # ome-zarr-py and zarr-python warn about their own choices (codecs, formats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _set_omero(group: zarr.Group, version: str) -> None:
    if version == "0.5":
        ome = dict(group.attrs["ome"])  # type: ignore[arg-type]
        ome["omero"] = OMERO
        group.attrs.update({"ome": ome})
    else:
        group.attrs.update({"omero": OMERO})


def _write_image(path: Path, version: str) -> Path:
    fmt = FORMATS[version]()
    group = zarr.open_group(path, mode="w", zarr_format=fmt.zarr_format)
    _quietly(write_multiscale, [DATA, DATA[:, ::2, ::2].copy()], group, fmt=fmt, axes=AXES,
             coordinate_transformations=TRANSFORMS, storage_options={"chunks": (1, 16, 16)})
    _quietly(write_labels, (DATA % 3).astype("uint8"), group, name="cells", fmt=fmt,
             axes="cyx", scaler=None, scale_factors=(2,))
    _set_omero(group, version)
    return path


def _field_data(well: str, field: int) -> np.ndarray:
    seed = sum(map(ord, well)) * 10 + field
    return np.random.default_rng(seed).integers(0, 255, (16, 16), dtype="uint8")


def _write_plate(path: Path) -> Path:
    fmt = FormatV04()
    root = zarr.open_group(path, mode="w", zarr_format=2)
    _quietly(write_plate_metadata, root, ["A", "B"], ["1", "2", "3"], ["A/1", "B/3"],
             fmt=fmt, field_count=2, acquisitions=[{"id": 0, "name": "first"}])
    for well in ("A/1", "B/3"):
        row, column = well.split("/")
        group = root.require_group(row).require_group(column)
        _quietly(write_well_metadata, group, ["0", "1"], fmt=fmt)
        for field in (0, 1):
            _quietly(write_image, _field_data(well, field), group.require_group(str(field)),
                     fmt=fmt, axes="yx", scale_factors=(2,))
    return path


def _write_collection(path: Path) -> Path:
    root = zarr.open_group(path, mode="w", zarr_format=2)
    root.attrs["bioformats2raw.layout"] = 3
    root.require_group("OME").attrs["series"] = ["0", "1"]
    for series in (0, 1):
        data = np.full((8, 8), series + 5, dtype="uint16")
        _quietly(write_image, data, root.require_group(str(series)), fmt=FormatV04(),
                 axes="yx", scale_factors=())
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    _write_image(root / "v04.zarr", "0.4")
    _write_image(root / "v05.zarr", "0.5")
    _write_plate(root / "plate.zarr")
    _write_collection(root / "collection.zarr")
    array = zarr.create_array(root / "array.zarr", shape=(30, 20), chunks=(8, 8),
                              dtype="int32", dimension_names=["row", "col"], fill_value=-1)
    array[:] = np.arange(600, dtype="int32").reshape(30, 20)
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _zarr_read(path: Path, selection: Any) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(zarr.open_array(path, mode="r")[selection])


# -- info ------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_info_prints_the_image_tree(root: Path, capsys: pytest.CaptureFixture[str],
                                    version: str) -> None:
    name = "v04.zarr" if version == "0.4" else "v05.zarr"
    code, out, err = run(capsys, "info", root / name)
    assert code == 0, err
    assert f"OME-NGFF {version}" in out
    assert "axes c (channel), y (space, micrometer), x (space, micrometer)" in out
    assert "level 0: s0" in out and "level 1: s1" in out
    assert "shape 2×40×60  uint16" in out and "shape 2×20×30  uint16" in out
    assert "chunks 1×16×16  shards none" in out
    assert "pixel size c=1, y=0.5 micrometer, x=0.5 micrometer" in out
    assert "pixel size c=1, y=1 micrometer, x=1 micrometer" in out
    # 40 × 0.5 = 20 and 60 × 0.5 = 30 on level 0, 20 × 1 and 30 × 1 on level 1
    assert out.count("extent y=20 micrometer, x=30 micrometer") == 2
    assert "translation c=0, y=0.25 micrometer, x=0.25 micrometer" in out
    assert "0: DAPI  #0000FF  window start=10 end=900 min=0 max=65535" in out
    assert "1: GFP  #00FF00  window start=0 end=4000 min=0 max=65535  (inactive)" in out
    assert "cells: 2 levels, shape 2×40×60 uint8" in out


@pytest.mark.parametrize("name", ["v04.zarr", "v05.zarr"])
def test_info_json_has_what_was_written(root: Path, capsys: pytest.CaptureFixture[str],
                                        name: str) -> None:
    code, out, _ = run(capsys, "info", root / name, "--json")
    assert code == 0
    d = json.loads(out)
    assert d["kind"] == "image"
    assert d["version"] == ("0.4" if name == "v04.zarr" else "0.5")
    assert d["axes"] == [{"name": a["name"], "type": a["type"], "unit": a.get("unit")}
                         for a in AXES]
    assert [lvl["path"] for lvl in d["levels"]] == ["s0", "s1"]
    assert [lvl["shape"] for lvl in d["levels"]] == [[2, 40, 60], [2, 20, 30]]
    assert [lvl["chunks"] for lvl in d["levels"]] == [[1, 16, 16], [1, 16, 16]]
    assert [lvl["shards"] for lvl in d["levels"]] == [None, None]
    assert [lvl["dtype"] for lvl in d["levels"]] == ["uint16", "uint16"]
    assert [lvl["scale"] for lvl in d["levels"]] == [[1, 0.5, 0.5], [1, 1, 1]]
    assert [lvl["translation"] for lvl in d["levels"]] == [[0, 0, 0], [0, 0.25, 0.25]]
    assert [lvl["extent"] for lvl in d["levels"]] == [{"y": 20, "x": 30}] * 2
    assert [lvl["zarr_format"] for lvl in d["levels"]] == [2 if name == "v04.zarr" else 3] * 2
    assert "zstd" in d["levels"][0]["codec"]
    assert [(c["label"], c["color"], c["window"]) for c in d["channels"]] == [
        (c["label"], c["color"], c["window"]) for c in OMERO["channels"]]
    assert d["labels"] == {"cells": {"levels": 2, "shape": [2, 40, 60], "dtype": "uint8"}}


def test_info_plate_shows_the_well_grid(root: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    code, out, err = run(capsys, "info", root / "plate.zarr")
    assert code == 0, err
    assert "2 rows × 3 columns  2 wells  field_count 2" in out
    lines = out.splitlines()
    assert "      1 2 3" in lines
    assert "    A # . ." in lines
    assert "    B . . #" in lines
    assert "0: first" in out
    assert "first field (A/1, field 0):" in out and "shape 16×16  uint8" in out

    code, out, _ = run(capsys, "info", root / "plate.zarr", "--json")
    d = json.loads(out)
    assert (d["kind"], d["rows"], d["columns"], d["wells"], d["field_count"]) == (
        "plate", ["A", "B"], ["1", "2", "3"], ["A/1", "B/3"], 2)
    assert [(a["id"], a["name"]) for a in d["acquisitions"]] == [(0, "first")]
    assert d["first_field"]["image"]["levels"][1]["shape"] == [8, 8]


def test_info_well_lists_its_fields(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "info", root / "plate.zarr" / "B" / "3", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["kind"] == "well"
    assert [f["path"] for f in d["fields"]] == ["0", "1"]
    assert d["first_field"]["url"].endswith("plate.zarr/B/3/0")


def test_info_collection_lists_series_and_opens_the_first(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "info", root / "collection.zarr")
    assert code == 0, err
    assert "bioformats2raw layout 3" in out and "series (2)" in out
    d = json.loads(run(capsys, "info", root / "collection.zarr", "--json")[1])
    assert [s["path"] for s in d["series"]] == ["0", "1"]
    assert d["first_series"]["levels"][0]["shape"] == [8, 8]
    assert d["first_series"]["levels"][0]["dtype"] == "uint16"


def test_info_on_a_plain_array(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "info", root / "array.zarr")
    assert code == 0, err
    assert "Array" in out and "shape 30×20  int32" in out and "chunks 8×8" in out
    d = json.loads(run(capsys, "info", root / "array.zarr", "--json")[1])
    assert (d["kind"], d["shape"], d["chunks"], d["dtype"], d["fill_value"],
            d["dimension_names"]) == ("array", [30, 20], [8, 8], "int32", -1, ["row", "col"])


def test_info_over_http(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with RangeServer(str(root)) as server:
        code, out, err = run(capsys, "info", f"{server.url}/v05.zarr", "--zarr-format", "3",
                             "--option", "concurrency=8")
        assert code == 0, err
        assert f"Image {server.url}/v05.zarr" in out
        assert "shape 2×40×60  uint16" in out and "cells: 2 levels" in out
        out_path = root.parent / "http.npy"
        code, _, err = run(capsys, "read", f"{server.url}/v04.zarr", "-o", out_path,
                           "--level", "1", "--region", "y=0:5")
        assert code == 0, err
        assert not [r for r in server.state.requests() if r.method != "GET"]
    # y=[0, 5) on level 1 (scale 1, translation 0.25): ⌈-0.25⌉ = 0 to ⌈4.75⌉ = 5
    np.testing.assert_array_equal(np.load(out_path),
                                  _zarr_read(root / "v04.zarr" / "s1", np.s_[:, 0:5, :]))


# -- read ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["v04.zarr", "v05.zarr"])
def test_read_writes_the_pixel_box_of_the_region(root: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 name: str) -> None:
    out_path = tmp_path / "out.npy"
    code, out, err = run(capsys, "read", root / name, "-o", out_path, "--level", "1",
                         "--region", "y=10.2:20", "--region", "x=3:7.6")
    assert code == 0, err
    # level 1: scale 1, translation 0.25; pixel i is selected when its centre 0.25 + i lies
    # in [a, b): y from ⌈10.2 − 0.25⌉ = 10 to ⌈20 − 0.25⌉ = 20, x from ⌈2.75⌉ = 3 to
    # ⌈7.35⌉ = 8; c is not named: read whole
    expected = _zarr_read(root / name / "s1", np.s_[:, 10:20, 3:8])
    got = np.load(out_path)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected, strict=True)
    assert "level 1 (s1), box c=0:2 y=10:20 x=3:8, shape 2×10×5, uint16" in out


def test_read_by_resolution_with_center_and_size(root: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / "out.npy"
    code, out, err = run(capsys, "read", root / "v04.zarr", "-o", out_path,
                         "--resolution", "1", "--center", "y=10", "--size", "y=4",
                         "--center", "c=1", "--size", "c=1")
    assert code == 0, err
    # resolution 1 → level 1 (pixel 1 ≤ 1); y = [8, 12): ⌈7.75⌉ = 8 to ⌈11.75⌉ = 12;
    # c = [0.5, 1.5) with scale 1, translation 0: channel 1 only
    np.testing.assert_array_equal(np.load(out_path),
                                  _zarr_read(root / "v04.zarr" / "s1", np.s_[1:2, 8:12, :]))
    assert "level 1 (s1), box c=1:2 y=8:12 x=0:30" in out


def test_slab_boxes_cut_the_outermost_axis_spanning_chunks_at_chunk_edges() -> None:
    # c spans one chunk (grid 1): y (grid 16) is cut; one y row is 60 × 2 = 120 bytes, so a
    # 500-byte budget allows one 16-row chunk row (1920 bytes, the minimum) per slab
    box = ((0, 1), (5, 40), (0, 60))
    assert slab_boxes(box, (1, 16, 16), 2, 500) == [
        ((0, 1), (5, 16), (0, 60)), ((0, 1), (16, 32), (0, 60)), ((0, 1), (32, 40), (0, 60))]
    # 8000 bytes: four 16-row chunk rows per slab, cut at multiples of 64
    assert slab_boxes(((0, 1), (5, 140), (0, 60)), (1, 16, 16), 2, 8000) == [
        ((0, 1), (5, 64), (0, 60)), ((0, 1), (64, 128), (0, 60)), ((0, 1), (128, 140), (0, 60))]
    assert slab_boxes(box, (1, 16, 16), 2, 10**6) == [box]  # small enough: one read
    assert slab_boxes(((3, 4), (0, 10)), (1, 16), 8, 1) == [((3, 4), (0, 10))]  # one chunk


def test_slab_read_is_identical_and_shows_progress(root: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    whole, slabbed = tmp_path / "whole.npy", tmp_path / "slabbed.npy"
    common = [root / "v05.zarr", "--level", "0", "--region", "c=0:1", "--region", "y=2.5:20"]
    code, _, err = run(capsys, "read", *common, "-o", whole)
    assert code == 0 and err == ""  # stderr is no terminal here: no progress by default
    code, _, err = run(capsys, "read", *common, "-o", slabbed, "--slab-bytes", "500",
                       "--progress")
    assert code == 0
    np.testing.assert_array_equal(np.load(slabbed), np.load(whole), strict=True)
    # y = [2.5, 20) at 0.5: pixels 5 to 40, cut at 16 and 32: 0% then three slabs
    assert err.count("\r[") == 4
    assert err.endswith("100% 4.1/4.1 KiB\n")
    np.testing.assert_array_equal(np.load(whole),
                                  _zarr_read(root / "v05.zarr" / "s0", np.s_[0:1, 5:40, :]))


def test_progress_bar_format() -> None:
    stream = io.StringIO()
    bar = Progress(stream, int(2.7 * 2**30))
    bar.update(int(1.2 * 2**30))
    assert stream.getvalue() == "\r[#############.................]  44% 1.2/2.7 GiB"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_for_large_reads_only(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    image = root / "v04.zarr"
    assert main(["read", str(image), "-o", str(tmp_path / "small.npy")]) == 0
    assert terminal.getvalue() == ""  # 9.4 KiB: under the slab size, over at once
    assert main(["read", str(image), "-o", str(tmp_path / "large.npy"),
                 "--slab-bytes", "1000"]) == 0
    assert terminal.getvalue().endswith("100% 9.4/9.4 KiB\n")
    np.testing.assert_array_equal(np.load(tmp_path / "large.npy"), DATA)


def test_a_region_outside_the_image_writes_an_empty_array(
        root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "read", root / "v04.zarr", "-o", tmp_path / "o.npy",
                         "--region", "y=100:200")
    assert code == 0, err
    got = np.load(tmp_path / "o.npy")
    assert (got.shape, got.dtype) == ((2, 0, 60), np.dtype("uint16"))
    assert "box c=0:2 y=40:40 x=0:60" in out


def test_quiet_prints_nothing(root: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "read", root / "v04.zarr", "-o", tmp_path / "o.npy",
                         "--quiet", "--slab-bytes", "100")
    assert (code, out, err) == (0, "", "")
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), DATA)


def test_read_a_plate_field_a_well_field_and_a_series(root: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    out_path = tmp_path / "o.npy"
    code, _, err = run(capsys, "read", root / "plate.zarr", "-o", out_path, "--field", "B/3/1")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(out_path), _field_data("B/3", 1))
    code, _, err = run(capsys, "read", root / "plate.zarr" / "A" / "1", "-o", out_path,
                       "--field", "1", "--level", "1")
    assert code == 0, err
    np.testing.assert_array_equal(
        np.load(out_path), _zarr_read(root / "plate.zarr" / "A" / "1" / "1" / "s1", ...))
    code, _, err = run(capsys, "read", root / "collection.zarr", "-o", out_path, "--series", "1")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(out_path), np.full((8, 8), 6, "uint16"))


def test_a_plate_needs_a_field(root: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "read", root / "plate.zarr", "-o", tmp_path / "o.npy")
    assert code == 2
    assert "--field ROW/COL/FIELD" in err and "A/1, B/3" in err


def test_read_a_label_image(root: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "read", root / "v04.zarr", "-o", tmp_path / "o.npy",
                       "--label", "cells")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), (DATA % 3).astype("uint8"))


def test_read_a_plain_array_by_pixel_indices(root: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / "o.npy"
    code, _, err = run(capsys, "read", root / "array.zarr", "-o", out_path,
                       "--region", "row=3:25", "--region", "1=-5:100", "--slab-bytes", "64")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(out_path),
                                  _zarr_read(root / "array.zarr", np.s_[3:25, -5:100]))
    code, _, err = run(capsys, "read", root / "array.zarr", "-o", out_path,
                       "--region", "row=-1", "--region", "col=2:4")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(out_path),
                                  _zarr_read(root / "array.zarr", np.s_[29:30, 2:4]))
    code, _, err = run(capsys, "read", root / "array.zarr", "-o", out_path, "--level", "1")
    assert code == 2 and "no levels" in err
    code, _, err = run(capsys, "read", root / "array.zarr", "-o", out_path, "--region", "row=1.5")
    assert code == 2 and "integer pixel indices" in err


def test_a_failed_read_leaves_no_output_file(root: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    image = shutil.copytree(root / "v04.zarr", tmp_path / "broken.zarr")
    chunk = image / "s0" / "0" / "0" / "0"
    assert chunk.is_file()
    chunk.write_bytes(b"not zstd at all")
    out_path = tmp_path / "o.npy"
    code, _, err = run(capsys, "read", image, "-o", out_path)
    assert code == 2
    assert "error:" in err and "Traceback" not in err
    assert not out_path.exists()


# -- errors and options ------------------------------------------------------------------------

def test_a_missing_location_is_exit_2_naming_it(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nothing-here.zarr"
    for command in (["info"], ["read", "-o", str(tmp_path / "o.npy")], ["validate"]):
        code, out, err = run(capsys, command[0], missing, *command[1:])
        assert code == 2, command
        assert "nothing-here.zarr" in err and "Traceback" not in err
        assert out == ""


def test_usage_errors_are_exit_2(root: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / "o.npy"
    assert run(capsys, "read", root / "v04.zarr", "-o", out_path, "--region", "q=1:2")[0] == 2
    assert run(capsys, "read", root / "v04.zarr", "-o", out_path, "--region", "y=1:z")[0] == 2
    assert run(capsys, "read", root / "v04.zarr", "-o", out_path, "--level", "9")[0] == 2
    assert run(capsys, "read", root / "v04.zarr", "-o", out_path, "--series", "1")[0] == 2
    code, _, err = run(capsys, "read", root / "v04.zarr", "-o", out_path, "--region", "y=1:2",
                       "--region", "y=3:4")
    assert code == 2 and "names axis y more than once" in err
    assert not out_path.exists()
    code, _, err = run(capsys, "info", root / "v04.zarr", "--option", "region=eu-west-1")
    assert code == 2 and "local paths take no store options" in err
    code, _, err = run(capsys, "info", "ftp://example.org/x.zarr")
    assert code == 2 and "unsupported location scheme" in err
    assert run(capsys)[0] == 2
    assert run(capsys, "--help")[0] == 0


def test_store_options_parse_json_values() -> None:
    assert store_option("skip_signature=true") == ("skip_signature", True)
    assert store_option("endpoint=http://127.0.0.1:9000") == ("endpoint",
                                                               "http://127.0.0.1:9000")
    assert store_option("concurrency=8") == ("concurrency", 8)
    assert store_option('client_options={"allow_http": true}') == (
        "client_options", {"allow_http": True})
    assert store_option("region=eu-west-1") == ("region", "eu-west-1")


def test_python_m_ngffcore_version() -> None:
    proc = subprocess.run([sys.executable, "-m", "ngffcore", "--version"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"ngffcore {ngffcore.__version__}"


# -- validate --------------------------------------------------------------------------------

def test_validate_a_valid_image_is_exit_0(root: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    code, out, err = run(capsys, "validate", root / "v05.zarr")
    assert code == 0, out + err
    assert "no problems found" in out


def test_validate_problems_are_exit_1(root: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    image = shutil.copytree(root / "v04.zarr", tmp_path / "bad.zarr")
    attrs = json.loads((image / ".zattrs").read_text())
    del attrs["multiscales"][0]["axes"][1]  # 2 axes for 3-D levels
    (image / ".zattrs").write_text(json.dumps(attrs))
    code, out, _ = run(capsys, "validate", image)
    assert code == 1
    assert ".zattrs: error:" in out and "error(s)" in out
    code, out, _ = run(capsys, "validate", image, "--json")
    assert code == 1
    problems = json.loads(out)
    assert problems and all({"path", "message", "rule", "severity"} <= set(p) for p in problems)
    assert {p["path"] for p in problems} >= {".zattrs"}
