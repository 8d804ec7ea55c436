"""``write_plate`` / ``PlateWriter.write_field`` (issue 16, docs/ome.md "Writing plates").

Plates are written field by field; after every field the raw well documents (``json.load``
of ``.zattrs`` / ``zarr.json``) must list exactly the fields written so far, zarr-python
must open every group and read the field pixels as numpy gave them, ``ngffcore.validate``
and ome-zarr-models must accept the plate and its wells, and ``ngffcore.open`` must read it
back as a Plate. Bad input must raise before anything is written.
"""

from __future__ import annotations

import json
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import ngffcore
from ngffcore.store.memory import MemoryStore

VERSIONS = ["0.4", "0.5"]
ROWS = ["A", "B", "C"]
COLUMNS = ["1", "2", "3", "4"]
WELLS = ["A/1", "B/3", "C/4"]


def _field_data(seed: int, shape: tuple[int, ...] = (2, 12, 10)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 60000, shape, dtype=np.uint16)


def _dump(store: MemoryStore, root: Path) -> Path:
    """A memory store's objects as files, for zarr-python and ome-zarr-models."""
    for key, data in store._objects.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _attrs(root: Path, group: str, version: str) -> dict[str, Any]:
    """A group's OME attributes straight from its JSON document."""
    base = root / group if group else root
    if version == "0.5":
        return json.loads((base / "zarr.json").read_text())["attributes"]["ome"]
    return json.loads((base / ".zattrs").read_text())


def _hcs_model(root: Path, version: str) -> Any:
    """ome-zarr-models' HCS model of the plate (it validates the plate and every well)."""
    if version == "0.5":
        from ome_zarr_models.v05.hcs import HCS
    else:
        from ome_zarr_models.v04.hcs import HCS
    group = zarr.open_group(str(root), mode="r")
    with warnings.catch_warnings():
        # ome-zarr-models 1.x wants a 'version' inside a 0.5 plate; the 0.5 spec puts it in
        # 'ome' only (as ngffcore writes it) and the model then assumes 0.5, as it should
        warnings.filterwarnings("ignore", "'version' field not specified in plate metadata")
        return HCS.from_zarr(group)


@pytest.fixture(params=["memory", "local"])
def target(request, tmp_path):
    """(location to write to, function returning a directory holding what was written)."""
    if request.param == "memory":
        store = MemoryStore()
        counter = iter(range(1000))
        return store, lambda: _dump(store, tmp_path / f"dump{next(counter)}")
    path = tmp_path / "plate.zarr"
    return str(path), lambda: path


@pytest.mark.parametrize("version", VERSIONS)
def test_plate_round_trip(target, version):
    location, on_disk = target
    acquisitions = [{"id": 0, "name": "first", "maximumfieldcount": 2},
                    {"id": 7, "name": "second", "maximumfieldcount": 1}]
    plate = ngffcore.write_plate(location, rows=ROWS, columns=COLUMNS, wells=WELLS,
                                 field_count=3, acquisitions=acquisitions, name="screen",
                                 version=version)
    assert isinstance(plate, ngffcore.Plate)
    root = on_disk()
    expected_plate = {
        "name": "screen", "acquisitions": acquisitions, "field_count": 3,
        "rows": [{"name": r} for r in ROWS], "columns": [{"name": c} for c in COLUMNS],
        "wells": [{"path": "A/1", "rowIndex": 0, "columnIndex": 0},
                  {"path": "B/3", "rowIndex": 1, "columnIndex": 2},
                  {"path": "C/4", "rowIndex": 2, "columnIndex": 3}]}
    if version == "0.4":
        expected_plate["version"] = "0.4"
        assert _attrs(root, "", version) == {"plate": expected_plate}
    else:
        assert _attrs(root, "", version) == {"version": "0.5", "plate": expected_plate}
    assert ngffcore.validate(str(root)) == []
    for well in WELLS:
        assert ngffcore.open(str(root / well)).images == ()
        # the well schema wants at least one image: a well is valid from its first field
        assert [(p.rule, "non-empty" in p.message) for p in
                ngffcore.validate(str(root / well))] == [("schema", True)]

    # fields out of order, across wells and acquisitions; the well lists them in field order
    plan = [("B", "3", 2, 7), ("A", "1", 0, 0), ("B", "3", 0, 0), ("A", "1", 1, 0),
            ("C", "4", 0, 7)]
    written: dict[str, dict[int, tuple[int, np.ndarray]]] = {w: {} for w in WELLS}
    for seed, (row, column, field, acq) in enumerate(plan):
        data = _field_data(seed)
        image = plate.write_field(row, column, field, data, axes="cyx", levels=1,
                                  scale=[1, 0.5, 0.5], units={"y": "micrometer",
                                                              "x": "micrometer"},
                                  acquisition=acq)
        assert isinstance(image, ngffcore.Image)
        np.testing.assert_array_equal(image.levels[0][...], data, strict=True)
        written[f"{row}/{column}"][field] = (acq, data)
        root = on_disk()
        group = zarr.open_group(str(root), mode="r")
        for well, fields in written.items():
            images = [{"path": str(f), "acquisition": fields[f][0]} for f in sorted(fields)]
            meta = {"images": images, **({"version": "0.4"} if version == "0.4" else {})}
            assert _attrs(root, well, version)["well"] == meta
            # the writer reads like a Plate, and sees every field written so far
            assert [(i.path, i.acquisition) for i in plate.well(well).images] == [
                (im["path"], im["acquisition"]) for im in images]
            for f, (_, values) in fields.items():
                np.testing.assert_array_equal(group[f"{well}/{f}/0"][...], values,
                                              strict=True)
        assert ngffcore.validate(str(root)) == []
        hcs = _hcs_model(root, version)
        assert hcs.n_wells == 3
        wells_meta = [w.ome_attributes.well if version == "0.5" else w.attributes.well
                      for w in hcs.well_groups]
        assert [[(i.path, i.acquisition) for i in m.images] for m in wells_meta] == [
            [(str(f), fields[f][0]) for f in sorted(fields)] for fields in written.values()]
        for well, fields in written.items():
            if fields:
                assert ngffcore.validate(str(root / well), strict=True) == []

    opened = ngffcore.open(str(root))
    assert isinstance(opened, ngffcore.Plate) and not isinstance(opened, ngffcore.PlateWriter)
    assert opened.rows == tuple(ROWS) and opened.columns == tuple(COLUMNS)
    assert [w.path for w in opened.wells] == WELLS
    assert opened.field_count == 3 and opened.name == "screen"
    assert [(a.id, a.name, a.maximum_field_count) for a in opened.acquisitions] == [
        (0, "first", 2), (7, "second", 1)]
    for well, fields in written.items():
        w = opened.well(well)
        assert [i.path for i in w.images] == [str(f) for f in sorted(fields)]
        for k, f in enumerate(sorted(fields)):
            img = w.field(k)
            assert [a.name for a in img.axes] == ["c", "y", "x"]
            assert img.levels[0].scale == (1.0, 0.5, 0.5)
            np.testing.assert_array_equal(img.levels[0][...], fields[f][1], strict=True)
    assert ngffcore.validate(str(root), strict=True) == []
    assert ngffcore.validate(str(root / "B/3/2")) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_plate_with_pyramids(tmp_path, version):
    """Fields with several levels: each level as zarr-python reads it is ngffcore's."""
    pytest.importorskip("ngffcore._core").downsample  # noqa: B018 - native kernels built
    root = tmp_path / "plate.zarr"
    plate = ngffcore.write_plate(str(root), rows=["A"], columns=[1, 2], wells=["A/1", "A/2"],
                                 field_count=2, version=version)
    data = {(w, f): _field_data(10 * i + f, (3, 40, 36)).astype(np.float32)
            for i, w in enumerate(["A/1", "A/2"]) for f in range(2)}
    for (w, f), values in data.items():
        row, column = w.split("/")
        plate.write_field(row, int(column), f, values, axes="cyx", levels=3)
    assert ngffcore.validate(str(root)) == []
    _hcs_model(root, version)
    group = zarr.open_group(str(root), mode="r")
    opened = ngffcore.open(str(root))
    for (w, f), values in data.items():
        assert ngffcore.validate(str(root / w / str(f))) == []
        img = opened.well(w).field(f)
        assert [lvl.shape for lvl in img.levels] == [(3, 40, 36), (3, 20, 18), (3, 10, 9)]
        np.testing.assert_array_equal(img.levels[0][...], values, strict=True)
        for k, lvl in enumerate(img.levels):
            np.testing.assert_array_equal(lvl[...], group[f"{w}/{f}/{k}"][...], strict=True)


def test_plate_on_s3(moto_plate):
    """Any writable store: S3 (moto's server)."""
    url, options, client, bucket = moto_plate
    plate = ngffcore.write_plate(url, rows=["A", "B"], columns=["1"], wells=["A/1", "B/1"],
                                 field_count=2, **options)
    values = [_field_data(s, (8, 6)) for s in range(3)]
    plate.write_field("A", "1", 1, values[0], axes="yx", levels=1)
    plate.write_field("B", "1", 0, values[1], axes="yx", levels=1)
    plate.write_field("A", "1", 0, values[2], axes="yx", levels=1)
    key = url.split(f"s3://{bucket}/", 1)[1]
    raw = client.get_object(Bucket=bucket, Key=f"{key}/A/1/zarr.json")["Body"].read()
    assert json.loads(raw)["attributes"]["ome"]["well"] == {
        "images": [{"path": "0"}, {"path": "1"}]}
    opened = ngffcore.open(url, **options)
    assert isinstance(opened, ngffcore.Plate)
    np.testing.assert_array_equal(opened.well("A/1").field(0).levels[0][...], values[2])
    np.testing.assert_array_equal(opened.well("A/1").field(1).levels[0][...], values[0])
    np.testing.assert_array_equal(opened.well("B/1").field(0).levels[0][...], values[1])
    assert ngffcore.validate(url, **options) == []
    assert ngffcore.validate(f"{url}/A/1", **options) == []


@pytest.fixture(scope="module")
def moto_s3_server(moto_s3):
    """The session's moto S3 server (tests/conftest.py) with this module's bucket."""
    _endpoint, client, options = moto_s3
    client.create_bucket(Bucket="plates")
    return options, client


@pytest.fixture
def moto_plate(moto_s3_server, request):
    options, client = moto_s3_server
    return f"s3://plates/{request.node.name}.zarr", options, client, "plates"


# --------------------------------------------------------------------------------------
# bad input: a specific error, nothing written
# --------------------------------------------------------------------------------------

GOOD = dict(rows=["A", "B"], columns=["1", "2"], wells=["A/1", "B/2"])


@pytest.mark.parametrize("kwargs, words", [
    (dict(rows=[]), "at least one"),
    (dict(rows="AB"), "list of names"),
    (dict(rows=["A", "A"]), "repeat"),
    (dict(rows=["A-1", "B"]), "letters and digits"),
    (dict(columns=["1", ""]), "letters and digits"),
    (dict(columns=[1.5]), "letters and digits"),
    (dict(wells=[]), "at least one"),
    (dict(wells=["A1"]), "'row/column'"),
    (dict(wells=["A/1/0"]), "'row/column'"),
    (dict(wells=["Z/1"]), "row 'Z'"),
    (dict(wells=["A/9"]), "column '9'"),
    (dict(wells=["A/1", "A/1"]), "more than once"),
    (dict(field_count=0), "field_count"),
    (dict(field_count=True), "field_count"),
    (dict(acquisitions=[{"name": "x"}]), "integer 'id'"),
    (dict(acquisitions=[0, {"id": 0}]), "repeat"),
    (dict(acquisitions=[{"id": -1}]), "non-negative"),
    (dict(acquisitions=[{"id": 0, "maximumfieldcount": 0}]), "positive"),
    (dict(acquisitions=[{"id": 0, "starttime": "today"}]), "starttime"),
    (dict(acquisitions=[{"id": 0, "colour": "red"}]), "unknown key 'colour'"),
    (dict(name=3), "name"),
    (dict(version="0.3"), "version"),
])
def test_write_plate_bad_input(kwargs, words):
    store = MemoryStore()
    with pytest.raises(ngffcore.ArgumentError, match=words) as info:
        ngffcore.write_plate(store, **{**GOOD, **kwargs})
    assert isinstance(info.value, ValueError)
    assert store._objects == {}


def test_write_plate_refuses_a_used_destination(tmp_path):
    ngffcore.write_image(str(tmp_path / "p.zarr"), np.zeros((4, 4), np.uint8), axes="yx",
                         levels=1)
    before = sorted(p.name for p in (tmp_path / "p.zarr").rglob("*"))
    with pytest.raises(ngffcore.ExistsError, match="not empty") as info:
        ngffcore.write_plate(str(tmp_path / "p.zarr"), **GOOD)
    assert isinstance(info.value, FileExistsError)
    assert sorted(p.name for p in (tmp_path / "p.zarr").rglob("*")) == before


@pytest.fixture
def small_plate():
    store = MemoryStore()
    plate = ngffcore.write_plate(store, **GOOD, field_count=2,
                                 acquisitions=[{"id": 1}, {"id": 2, "maximumfieldcount": 1}])
    plate.write_field("A", "1", 0, _field_data(0, (4, 4)), axes="yx", levels=1, acquisition=2)
    return store, plate


@pytest.mark.parametrize("args, kwargs, words", [
    (("Z", "1", 0), {}, "row 'Z'"),
    ((5, "1", 0), {}, "row 5"),
    (("A", "9", 0), {}, "column '9'"),
    (("A", "2", 0), {}, "well 'A/2' is not one of"),
    (("A", "1", 2), {}, "field 2"),
    (("A", "1", -1), {}, "field -1"),
    (("A", "1", "1"), {}, "field '1'"),
    (("A", "1", 1), {"acquisition": None}, "say which"),
    (("A", "1", 1), {"acquisition": 3}, "acquisition 3"),
    (("A", "1", 1), {"acquisition": 2}, "maximumfieldcount"),
    (("A", "1", 1), {"acquisition": 1, "version": "0.4"}, "version"),
    (("A", "1", 1), {"acquisition": 1, "axes": "zyx"}, "axes"),
])
def test_write_field_bad_input(small_plate, args, kwargs, words):
    store, plate = small_plate
    before = dict(store._objects)
    with pytest.raises(ngffcore.ArgumentError, match=words):
        plate.write_field(*args, _field_data(1, (4, 4)), **{"axes": "yx", "levels": 1,
                                                             **kwargs})
    assert store._objects == before


def test_write_field_no_acquisitions():
    store = MemoryStore()
    plate = ngffcore.write_plate(store, **GOOD)
    before = dict(store._objects)
    with pytest.raises(ngffcore.ArgumentError, match="no acquisitions"):
        plate.write_field("A", "1", 0, _field_data(0, (4, 4)), axes="yx", acquisition=0)
    assert store._objects == before


def test_write_field_twice_needs_overwrite(small_plate):
    store, plate = small_plate
    before = dict(store._objects)
    with pytest.raises(ngffcore.ExistsError):
        plate.write_field("A", "1", 0, _field_data(1, (4, 4)), axes="yx", levels=1,
                          acquisition=2)
    assert store._objects == before
    new = _field_data(2, (4, 4))
    plate.write_field("A", "1", 0, new, axes="yx", levels=1, acquisition=1, overwrite=True)
    well = plate.well("A/1")
    assert [(i.path, i.acquisition) for i in well.images] == [("0", 1)]
    np.testing.assert_array_equal(well.field(0).levels[0][...], new, strict=True)


def test_fields_alike_must_match(tmp_path):
    """Readers share the array metadata of fields whose multiscales documents are equal
    (collection._FieldTemplates), so such fields must have the same shape and dtype: a
    field that differs only in shape is refused before it is written, while one whose
    multiscales differ (here its scale) may have any shape."""
    root = tmp_path / "p.zarr"
    plate = ngffcore.write_plate(str(root), **GOOD, field_count=3)
    plate.write_field("A", "1", 0, _field_data(0, (8, 8)), axes="yx", levels=1)
    with pytest.raises(ngffcore.ArgumentError, match="shape, dtype"):
        plate.write_field("A", "1", 1, _field_data(1, (6, 8)), axes="yx", levels=1)
    with pytest.raises(ngffcore.ArgumentError, match="shape, dtype"):
        plate.write_field("B", "2", 0, _field_data(1, (8, 8)).astype(np.int32), axes="yx",
                          levels=1)
    assert not (root / "A/1/1").exists() and not (root / "B/2/0").exists()
    other = _field_data(2, (6, 8))
    plate.write_field("A", "1", 1, other, axes="yx", levels=1, scale=[2, 2])
    opened = ngffcore.open(str(root))
    np.testing.assert_array_equal(opened.well("A/1").field(0).levels[0][...],
                                  _field_data(0, (8, 8)), strict=True)
    np.testing.assert_array_equal(opened.well("A/1").field(1).levels[0][...], other,
                                  strict=True)


def test_fields_of_one_well_from_threads(tmp_path):
    """Fields of one well written at once from several threads all end up listed."""
    root = tmp_path / "p.zarr"
    plate = ngffcore.write_plate(str(root), rows=["A"], columns=["1"], wells=["A/1"],
                                 field_count=12, version="0.4")
    start = threading.Barrier(4)

    def write(field: int) -> None:
        if field < 4:
            start.wait()
        plate.write_field("A", "1", field, _field_data(field, (6, 6)), axes="yx", levels=1)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(12)))
    assert _attrs(root, "A/1", "0.4")["well"]["images"] == [{"path": str(f)}
                                                            for f in range(12)]
    well = ngffcore.open(str(root)).well("A/1")
    for f in range(12):
        np.testing.assert_array_equal(well.field(f).levels[0][...], _field_data(f, (6, 6)))
