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


# --------------------------------------------------------------------------------------
# write_image into a field's location: the well lists the field, as write_field does
# --------------------------------------------------------------------------------------

def _documents(root: Path, below: str | None = None) -> dict[str, bytes]:
    """Every metadata document under ``root`` (not those under ``below``), as bytes."""
    names = ("zarr.json", ".zattrs", ".zgroup", ".zarray")
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.name in names and not (below and p.is_relative_to(root / below))}


def _well_stores(monkeypatch) -> list[Any]:
    """The stores write_image opens at the parent of its location (their request counts)."""
    import ngffcore.ome.writer as writer

    opened: list[Any] = []

    def recording(location: Any, options: Any) -> Any:
        found = real(location, options)
        if found is not None:
            opened.append(found[0])
        return found

    real = getattr(writer, "parent_of", None)
    if real is not None:  # (without it, write_image looks at no parent: nothing recorded)
        monkeypatch.setattr(writer, "parent_of", recording)
    return opened


def _fields_seen_by_ome_zarr(well: Path) -> list[tuple[str, np.ndarray]]:
    """The well's field paths and level-0 pixels as ome-zarr-py reads them (a Well node,
    then each field as an image node); zarr-python on the raw attributes without it."""
    try:
        from ome_zarr.io import parse_url
        from ome_zarr.reader import Reader, Well
    except ImportError:
        group = zarr.open_group(str(well), mode="r")
        attrs = dict(group.attrs)
        images = attrs.get("ome", attrs)["well"]["images"]
        return [(i["path"], group[f"{i['path']}/0"][...]) for i in images]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        node = next(iter(Reader(parse_url(str(well)))()))
        spec = next(s for s in node.specs if isinstance(s, Well))
        out = []
        for image in spec.well_data["images"]:
            field = next(iter(Reader(parse_url(str(well / image["path"])))()))
            out.append((image["path"], np.asarray(field.data[0])))
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_write_image_into_plate_fields(tmp_path, version, monkeypatch):
    """``ngffcore.write_image`` into ``<plate>/A/1/0`` and then ``/1`` lists each field in
    the well (one GET and one put of its document, no LIST or HEAD), as ome-zarr-py,
    zarr-python, ome-zarr-models and ngffcore.open see after every field; the other well is
    untouched."""
    root = tmp_path / "plate.zarr"
    ngffcore.write_plate(str(root), rows=["A", "B"], columns=["1", "2"],
                         wells=["A/1", "B/2"], field_count=2, version=version)
    empty_b2 = _documents(root / "B/2")
    plate_doc = (root / ("zarr.json" if version == "0.5" else ".zattrs")).read_bytes()
    well_stores = _well_stores(monkeypatch)
    written: dict[str, np.ndarray] = {}
    for field in ["0", "1"]:
        data = _field_data(int(field), (10, 12))
        image = ngffcore.write_image(str(root / "A" / "1" / field), data, axes="yx",
                                     version=version)
        np.testing.assert_array_equal(image.levels[0][...], data, strict=True)
        written[field] = data
        listed = [{"path": f} for f in written]
        assert _attrs(root, "A/1", version)["well"] == {
            "images": listed, **({"version": "0.4"} if version == "0.4" else {})}
        # one GET of the well's document and one put of it: nothing else (no LIST, HEAD)
        stats = well_stores[-1].stats.snapshot()
        assert (stats["get"], stats["not_found"], stats["put"], stats["list"],
                stats["delete"]) == (1, 0, 1, 0, 0)
        seen = _fields_seen_by_ome_zarr(root / "A/1")
        assert [p for p, _ in seen] == list(written)
        for (_, pixels), values in zip(seen, written.values()):
            np.testing.assert_array_equal(pixels, values, strict=True)
        group = zarr.open_group(str(root), mode="r")
        for f, values in written.items():
            np.testing.assert_array_equal(group[f"A/1/{f}/0"][...], values, strict=True)
        opened = ngffcore.open(str(root))
        assert isinstance(opened, ngffcore.Plate)
        well = opened.well("A/1")
        assert [i.path for i in well.images] == list(written)
        for k, values in enumerate(written.values()):
            np.testing.assert_array_equal(well.field(k).levels[0][...], values, strict=True)
        assert opened.well("B/2").images == ()
        assert _documents(root / "B/2") == empty_b2
        assert (root / ("zarr.json" if version == "0.5" else ".zattrs")).read_bytes() \
            == plate_doc
        assert ngffcore.validate(str(root)) == []
        assert ngffcore.validate(str(root / "A/1"), strict=True) == []
        _hcs_model(root, version)
    # written again: already listed, so the well's document is read and left as it is
    before = _documents(root, below="A/1/0")
    ngffcore.write_image(str(root / "A" / "1" / "0"), written["0"], axes="yx",
                         version=version, overwrite=True)
    assert well_stores[-1].stats.snapshot()["put"] == 0
    assert _documents(root, below="A/1/0") == before


@pytest.mark.parametrize("version", VERSIONS)
def test_write_image_into_a_group_that_is_no_well(tmp_path, version, monkeypatch):
    """An image written below a group that is no well (a plain group, a plate's row group,
    a well of the other version, a directory with no group) changes no other document and
    costs one GET at the parent (none when the name is checked beforehand and fine)."""
    root = tmp_path / "tree.zarr"
    zarr.open_group(str(root / "plain"), mode="w",
                    zarr_format=3 if version == "0.5" else 2).attrs["note"] = "kept"
    ngffcore.write_plate(str(root / "plate"), rows=["A"], columns=["1"], wells=["A/1"],
                         version=version)
    other = "0.4" if version == "0.5" else "0.5"
    ngffcore.write_plate(str(root / "other"), rows=["A"], columns=["1"], wells=["A/1"],
                         version=other)
    well_stores = _well_stores(monkeypatch)
    data = _field_data(3, (6, 6))
    for target in ["plain/img", "plate/A/img", "other/A/1/0", "nothing/img", "img"]:
        before = _documents(root)
        image = ngffcore.write_image(str(root / target), data, axes="yx", version=version)
        np.testing.assert_array_equal(image.levels[0][...], data, strict=True)
        assert _documents(root, below=target) == before, target
        stats = well_stores[-1].stats.snapshot()
        assert (stats["get"], stats["put"], stats["list"]) == (1, 0, 0), target
    assert ngffcore.open(str(root / "other")).well("A/1").images == ()
    # a store object has no parent to look at: no store is opened for one
    looked = len(well_stores)
    ngffcore.write_image(MemoryStore(), data, axes="yx", version=version)
    assert len(well_stores) == looked


@pytest.mark.parametrize("version", VERSIONS)
def test_write_image_into_a_well_checks_before_writing(tmp_path, version):
    """Into a well, a name that is no field name (letters and digits) and a bad
    ``acquisition`` raise ArgumentError before anything is written; ``acquisition=``
    outside a well too. A good acquisition is listed."""
    root = tmp_path / "plate.zarr"
    ngffcore.write_plate(str(root), rows=["A"], columns=["1"], wells=["A/1"],
                         field_count=3, acquisitions=[0, 5], version=version)
    data = _field_data(4, (6, 6))
    files = sorted(p for p in tmp_path.rglob("*"))
    for name, kwargs, words in [("f_1", {}, "letters and digits"),
                                ("0", {"acquisition": -1}, "acquisition -1"),
                                ("0", {"acquisition": True}, "acquisition True"),
                                ("0", {"acquisition": "5"}, "acquisition '5'")]:
        with pytest.raises(ngffcore.ArgumentError, match=words):
            ngffcore.write_image(str(root / "A/1" / name), data, axes="yx", version=version,
                                 **kwargs)
        assert sorted(p for p in tmp_path.rglob("*")) == files
    with pytest.raises(ngffcore.ArgumentError, match="no OME-Zarr"):
        ngffcore.write_image(str(root / "A" / "img"), data, axes="yx", version=version,
                             acquisition=0)
    assert sorted(p for p in tmp_path.rglob("*")) == files
    with pytest.raises(ngffcore.ArgumentError, match="for a field of a well"):
        ngffcore.write_image(MemoryStore(), data, axes="yx", acquisition=0)
    # a name that is no field name is fine outside a well
    ngffcore.write_image(str(tmp_path / "not_a_well" / "f_1"), data, axes="yx",
                         version=version)
    ngffcore.write_image(str(root / "A/1/2"), data, axes="yx", version=version,
                         acquisition=5)
    ngffcore.write_image(str(root / "A/1/0"), data, axes="yx", version=version,
                         acquisition=np.int64(0))
    assert _attrs(root, "A/1", version)["well"]["images"] == [
        {"path": "0", "acquisition": 0}, {"path": "2", "acquisition": 5}]
    assert [(i.path, i.acquisition) for i in ngffcore.open(str(root)).well("A/1").images] \
        == [("0", 0), ("2", 5)]
    assert ngffcore.validate(str(root)) == []
    assert ngffcore.validate(str(root / "A/1"), strict=True) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_write_image_fields_of_one_well_from_threads(tmp_path, version):
    """write_image of fields 0 … 3 of one well from 4 threads at once lists all 4; so do
    write_image and PlateWriter.write_field racing on one well (they share its lock)."""
    root = tmp_path / "plate.zarr"
    plate = ngffcore.write_plate(str(root), rows=["A"], columns=["1", "2"],
                                 wells=["A/1", "A/2"], field_count=8, version=version)
    start = threading.Barrier(4)

    def write(field: int) -> None:
        start.wait()
        ngffcore.write_image(str(root / "A" / "1" / str(field)), _field_data(field, (6, 6)),
                             axes="yx", levels=1, version=version)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    assert _attrs(root, "A/1", version)["well"]["images"] == [{"path": str(f)}
                                                              for f in range(4)]
    well = ngffcore.open(str(root)).well("A/1")
    for f in range(4):
        np.testing.assert_array_equal(well.field(f).levels[0][...], _field_data(f, (6, 6)),
                                      strict=True)

    both = threading.Barrier(8)

    def mixed(field: int) -> None:
        data = _field_data(10 + field, (6, 6))
        both.wait()
        if field % 2:
            plate.write_field("A", "2", field, data, axes="yx", levels=1)
        else:
            ngffcore.write_image(str(root / "A" / "2" / str(field)), data, axes="yx",
                                 levels=1, version=version)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(mixed, range(8)))
    assert _attrs(root, "A/2", version)["well"]["images"] == [{"path": str(f)}
                                                              for f in range(8)]
    assert [i.path for i in plate.well("A/2").images] == [str(f) for f in range(8)]


def test_write_image_into_s3_plate_field(moto_plate):
    """A URL location: the well is found at the URL's parent, on the same bucket."""
    url, options, client, bucket = moto_plate
    ngffcore.write_plate(url, rows=["A"], columns=["1"], wells=["A/1"], field_count=2,
                         **options)
    values = [_field_data(s, (8, 6)) for s in range(2)]
    ngffcore.write_image(f"{url}/A/1/1", values[1], axes="yx", levels=1, **options)
    ngffcore.write_image(f"{url}/A/1/0", values[0], axes="yx", levels=1, **options)
    key = url.split(f"s3://{bucket}/", 1)[1]
    raw = client.get_object(Bucket=bucket, Key=f"{key}/A/1/zarr.json")["Body"].read()
    assert json.loads(raw)["attributes"]["ome"]["well"] == {
        "images": [{"path": "0"}, {"path": "1"}]}
    well = ngffcore.open(url, **options).well("A/1")
    for f, v in enumerate(values):
        np.testing.assert_array_equal(well.field(f).levels[0][...], v, strict=True)
    assert ngffcore.validate(url, **options) == []


def test_a_parent_the_credentials_may_not_read_is_no_well():
    """Credentials limited to the image's prefix: the parent's refused GET (AuthError) means
    no well to list the image in, and nothing is written there; the plate's own well
    (write_field) is never rewritten from nothing on a refusal."""
    from ngffcore.ome.well_update import add_field, empty_well

    class Refusing(MemoryStore):
        async def get(self, key, byte_range=None, *, max_bytes=None):
            raise ngffcore.AuthError(f"{self.url}/{key}: refused")

    store = Refusing()
    assert add_field(store, "", "0", None, "0.5") is None
    assert store._objects == {}
    with pytest.raises(ngffcore.AuthError, match="refused"):
        add_field(store, "A/1", "0", None, "0.5", missing=empty_well("0.5"))
    assert store._objects == {}
