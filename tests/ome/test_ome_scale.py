"""OME metadata at scale (issue 13, items 6 and 7): a plate of 40,000 wells without indices
parses in linear time, and fan-outs over labels / levels keep at most the store's
``concurrency`` requests in flight and cancel the rest when one fails.

Concurrency is counted by the test server itself (requests being answered at once), not by
ngffcore."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ngffcore
from ome_writers import _write_array, _write_group_doc, quiet
from servers import RangeServer

HTTP = {"client_options": {"allow_http": True}}


# --------------------------------------------------------------------------------------
# item 6: plates whose wells carry no rowIndex / columnIndex
# --------------------------------------------------------------------------------------


def _big_plate(path: Path, n_rows: int, n_columns: int) -> dict[str, Any]:
    """A 0.3-style plate (no well indices): rows r0…, columns 1…, every well present."""
    plate = {"version": "0.3", "name": "big",
             "rows": [{"name": f"r{i}"} for i in range(n_rows)],
             "columns": [{"name": str(j + 1)} for j in range(n_columns)],
             "wells": [{"path": f"r{i}/{j + 1}"} for i in range(n_rows)
                       for j in range(n_columns)]}
    _write_group_doc(path, "0.4", {"plate": plate})
    return plate


def test_40k_wells_without_indices_parse_in_linear_time(tmp_path: Path) -> None:
    doc = _big_plate(tmp_path / "plate.zarr", 20000, 2)
    assert (tmp_path / "plate.zarr" / ".zattrs").stat().st_size > 10**6
    t0 = time.perf_counter()
    plate = ngffcore.open(tmp_path / "plate.zarr")
    elapsed = time.perf_counter() - t0
    assert isinstance(plate, ngffcore.Plate)
    # each well's indices are its row's and column's positions in the lists (by name)
    rows = [r["name"] for r in doc["rows"]]
    columns = [c["name"] for c in doc["columns"]]
    assert len(plate.wells) == 40000
    for w, raw in zip(plate.wells, doc["wells"]):
        row, column = raw["path"].split("/")
        assert (w.path, w.row, w.column) == (raw["path"], row, column)
    assert [w.row_index for w in plate.wells[::997]] == \
        [rows.index(w.row) for w in plate.wells[::997]]
    assert [w.column_index for w in plate.wells[::997]] == \
        [columns.index(w.column) for w in plate.wells[::997]]
    # a scan of the rows per well took ~10 s here (36 s in the issue); linear is ~0.1 s
    assert elapsed < 3.0, elapsed


def test_repeated_row_names_match_the_first(tmp_path: Path) -> None:
    plate = {"rows": [{"name": "A"}, {"name": "B"}, {"name": "A"}],
             "columns": [{"name": "1"}, {"name": "1"}],
             "wells": [{"path": "A/1"}, {"path": "B/1"}]}
    _write_group_doc(tmp_path / "p.zarr", "0.4", {"plate": plate})
    got = ngffcore.open(tmp_path / "p.zarr")
    assert [(w.row_index, w.column_index) for w in got.wells] == [(0, 0), (1, 0)]


def test_missing_well_lookups_do_not_scan_the_plate(tmp_path: Path) -> None:
    _big_plate(tmp_path / "plate.zarr", 20000, 2)
    plate = ngffcore.open(tmp_path / "plate.zarr")
    t0 = time.perf_counter()
    for i in range(2000):
        with pytest.raises(ngffcore.NotFoundError, match=f"no well 'r{i}/3'"):
            plate.well(f"r{i}", 3)
    assert time.perf_counter() - t0 < 3.0


# --------------------------------------------------------------------------------------
# item 7: bounded fan-out over labels (and their levels)
# --------------------------------------------------------------------------------------

N_LABELS = 1500


def _label_ms(path: str = "0") -> dict[str, Any]:
    return {"version": "0.4", "axes": [{"name": "y", "type": "space"},
                                       {"name": "x", "type": "space"}],
            "datasets": [{"path": path, "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, 1.0]}]}]}


@pytest.fixture(scope="module")
def many_labels(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """An image with 1,500 labels (one level each; label "l0" holds data written by
    zarr-python, the others share its array metadata and have no chunks)."""
    root = tmp_path_factory.mktemp("labels")
    img = root / "img.zarr"
    _write_array(img / "0", np.arange(48, dtype=np.uint16).reshape(6, 8), 2, chunks=(4, 4))
    _write_group_doc(img, "0.4", {"multiscales": [_label_ms()]})
    names = [f"l{i}" for i in range(N_LABELS)]
    _write_group_doc(img / "labels", "0.4", {"labels": names})
    label0 = (np.arange(48, dtype=np.uint8) % 5).reshape(6, 8)
    _write_array(img / "labels" / "l0" / "0", label0, 2, chunks=(4, 4))
    attrs = json.dumps({"multiscales": [_label_ms()], "image-label": {"version": "0.4"}})
    zarray = (img / "labels" / "l0" / "0" / ".zarray").read_text()
    for name in names:
        d = img / "labels" / name
        (d / "0").mkdir(parents=True, exist_ok=True)
        (d / ".zgroup").write_text('{"zarr_format": 2}')
        (d / ".zattrs").write_text(attrs)
        (d / "0" / ".zarray").write_text(zarray)
    return img, label0


class _InFlight:
    """Counts the server's requests being answered at once (peak) and in total."""

    def __init__(self, server: RangeServer) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = self.total = 0
        base = server._server.RequestHandlerClass
        counter = self

        class Counting(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:
                with counter.lock:
                    counter.now += 1
                    counter.total += 1
                    counter.peak = max(counter.peak, counter.now)
                try:
                    super().do_GET()
                finally:
                    with counter.lock:
                        counter.now -= 1

        server._server.RequestHandlerClass = Counting


@pytest.mark.parametrize("concurrency", [8, 32])
def test_labels_fan_out_within_the_store_concurrency(many_labels, concurrency) -> None:
    import zarr

    img_path, label0 = many_labels
    with RangeServer(str(img_path.parent)) as srv:
        srv.state.latency = 0.002  # requests overlap as they would on a real network
        inflight = _InFlight(srv)
        img = ngffcore.open(f"{srv.url}/{img_path.name}", concurrency=concurrency, **HTTP)
        labels = img.labels
        assert list(labels) == [f"l{i}" for i in range(N_LABELS)]
        # every label: its group document and its level's array metadata
        assert inflight.total >= 2 * N_LABELS
        assert inflight.peak <= concurrency, inflight.peak
        assert inflight.peak > 1  # still concurrent
        with quiet():
            ref = zarr.open_array(str(img_path / "labels" / "l0" / "0"), mode="r")[...]
        np.testing.assert_array_equal(ref, label0)
        np.testing.assert_array_equal(labels["l0"].levels[0][...], ref)


def test_a_failing_label_cancels_the_others(many_labels, tmp_path: Path) -> None:
    img_src, _ = many_labels
    img_path = tmp_path / "img.zarr"
    shutil.copytree(img_src, img_path)
    (img_path / "labels" / "l0" / ".zattrs").write_text("{not json")
    with RangeServer(str(tmp_path)) as srv:
        srv.state.latency = 0.002
        inflight = _InFlight(srv)
        img = ngffcore.open(f"{srv.url}/{img_path.name}", concurrency=8, **HTTP)
        before = inflight.total
        with pytest.raises(ngffcore.MetadataError, match=r"labels/l0/\.zattrs"):
            img.labels
        time.sleep(0.2)  # anything still running would reach the server by now
        sent = inflight.total - before
        # the labels group, then a few windows of 8 before l0's failure cancels the rest
        assert sent < 100, sent
        assert inflight.now == 0


def test_levels_fan_out_within_the_store_concurrency(tmp_path: Path) -> None:
    """An image of 200 levels (the level arrays' metadata are read at open)."""
    img = tmp_path / "levels.zarr"
    _write_array(img / "s0", np.arange(16, dtype=np.uint8).reshape(4, 4), 2, chunks=(2, 2))
    zarray = (img / "s0" / ".zarray").read_text()
    datasets = []
    for i in range(200):
        (img / f"s{i}").mkdir(exist_ok=True)
        (img / f"s{i}" / ".zarray").write_text(zarray)
        datasets.append({"path": f"s{i}", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0 + i, 1.0 + i]}]})
    ms = _label_ms()
    ms["datasets"] = datasets
    _write_group_doc(img, "0.4", {"multiscales": [ms]})
    with RangeServer(str(tmp_path)) as srv:
        srv.state.latency = 0.002
        inflight = _InFlight(srv)
        image = ngffcore.open(f"{srv.url}/{img.name}", concurrency=6, **HTTP)
        assert len(image.levels) == 200
        assert inflight.peak <= 6, inflight.peak
        assert [lvl.path for lvl in image.levels] == [f"s{i}" for i in range(200)]
        assert image.levels[199].scale == (200.0, 200.0)
        np.testing.assert_array_equal(image.levels[0][...],
                                      np.arange(16, dtype=np.uint8).reshape(4, 4))
        np.testing.assert_array_equal(image.levels[199][...], np.zeros((4, 4), np.uint8))
