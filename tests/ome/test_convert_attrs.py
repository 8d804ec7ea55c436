"""``convert`` keeps every attribute of the source (issue 16: "keeping the name, axes,
transforms, omero, labels, plate structure and other attributes"): arrays' own attributes
(a v2 ``.zattrs``, a v3 ``attributes``), keys inside ``omero`` (its ``version`` too), unknown
keys inside the OME attributes and non-OME keys beside them, plate row groups' attributes;
OME-NGFF 0.1–0.3 sources upgraded to the target's metadata (axes dicts, scales inferred from
the level shapes as the reader infers them, plate well indices). Sources are written by
zarr-python / ome-zarr-py or as JSON by hand; results are checked in the destination's raw
JSON (json.load) and through zarr-python, ome-zarr-py and ``ngffcore.validate``.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import ngffcore
from ngffcore.errors import MetadataError, UnsupportedError
from ngffcore.ome.convert import convert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ome_writers import load_json, pixels, quiet, raw_attributes  # noqa: E402

UM = "micrometer"
AXES = [{"name": "c", "type": "channel"}, {"name": "y", "type": "space", "unit": UM},
        {"name": "x", "type": "space", "unit": UM}]
OMERO = {"id": 7, "name": "my image", "version": "0.4",
         "channels": [{"label": "DAPI", "color": "0000FF", "active": True,
                       "window": {"start": 0, "end": 900, "min": 0, "max": 65535},
                       "my-channel-key": "kept"},
                      {"label": "GFP", "color": "00FF00", "active": False,
                       "window": {"start": 5, "end": 500, "min": 0, "max": 4095}}],
         "rdefs": {"defaultT": 0, "defaultZ": 0, "model": "color"}}
#: a one-level image's dataset
LEVEL0 = {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 0.5, 0.5]}]}
#: every array's own attributes: xarray's _ARRAY_DIMENSIONS and user keys
ARRAY_ATTRS = {"s0": {"_ARRAY_DIMENSIONS": ["c", "y", "x"], "note": "level 0",
                      "nested": {"a": [1, 2]}},
               "s1": {"note": "level 1"}}


def _group_doc(path: Path, zarr_format: int, attrs: dict[str, Any]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if zarr_format == 3:
        (path / "zarr.json").write_text(json.dumps(
            {"zarr_format": 3, "node_type": "group", "attributes": attrs}))
    else:
        (path / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
        (path / ".zattrs").write_text(json.dumps(attrs))


def _array(path: Path, data: np.ndarray, zarr_format: int, attrs: dict[str, Any],
           names: list[str] | None = None) -> None:
    kwargs: dict[str, Any] = {"dimension_names": names} if zarr_format == 3 else {}
    with quiet():
        z = zarr.create_array(str(path), shape=data.shape,
                              chunks=tuple(min(s, 8) for s in data.shape), dtype=data.dtype,
                              zarr_format=zarr_format, fill_value=0,
                              attributes=attrs or None, **kwargs)
        z[...] = data


def _image(path: Path, zarr_format: int, ome: dict[str, Any], beside: dict[str, Any]
           ) -> dict[str, Any]:
    """A cyx image with levels s0 (2, 16, 24), s1 (2, 8, 12), each with ARRAY_ATTRS, and a
    label image ``cells``; group attributes ``ome`` (0.5: under "ome") plus ``beside``."""
    shapes = {"s0": (2, 16, 24), "s1": (2, 8, 12)}
    for i, (name, shape) in enumerate(shapes.items()):
        _array(path / name, pixels(shape, "uint16", seed=i), zarr_format,
               ARRAY_ATTRS[name], ["c", "y", "x"])
    attrs = {**beside, "ome": ome} if zarr_format == 3 else {**beside, **ome}
    _group_doc(path, zarr_format, attrs)
    _group_doc(path / "labels", zarr_format,
               {"ome": {"version": "0.5", "labels": ["cells"]}, "labels-note": 1}
               if zarr_format == 3 else {"labels": ["cells"], "labels-note": 1})
    _array(path / "labels/cells/0", pixels((1, 16, 24), "uint8", seed=9), zarr_format,
           {"label-array-key": True}, ["c", "y", "x"])
    label = {"multiscales": [{"axes": AXES, "datasets": [LEVEL0]}],
             "image-label": {"colors": [{"label-value": 1, "rgba": [255, 0, 0, 255]}],
                             "source": {"image": "../../"}, "unknown-label-key": "x"}}
    if zarr_format == 3:
        _group_doc(path / "labels/cells", 3, {"ome": {"version": "0.5", **label}})
    else:
        label["multiscales"][0]["version"] = "0.4"
        label["image-label"]["version"] = "0.4"
        _group_doc(path / "labels/cells", 2, label)
    return attrs


def _multiscales(version: str) -> list[dict[str, Any]]:
    ms: dict[str, Any] = {
        "name": "img", "axes": AXES, "type": "mean", "metadata": {"method": "by hand"},
        "datasets": [{"path": "s0", "coordinateTransformations": [
                         {"type": "scale", "scale": [1, 0.5, 0.5]}]},
                     {"path": "s1", "coordinateTransformations": [
                         {"type": "scale", "scale": [1, 1.0, 1.0]},
                         {"type": "translation", "translation": [0, 0.25, 0.25]}]}],
        "my-multiscale-key": [1, 2, 3]}
    if version == "0.4":
        ms["version"] = "0.4"
    return [ms]


def _array_doc(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the array document, its attributes) as stored, read with json.load."""
    if (path / "zarr.json").exists():
        doc = load_json(path / "zarr.json")
        return doc, doc.get("attributes", {})
    doc = load_json(path / ".zarray")
    attrs = load_json(path / ".zattrs") if (path / ".zattrs").exists() else {}
    return doc, attrs


def _read_with_ome_zarr(path: Path) -> Any:
    with quiet():
        from ome_zarr.io import parse_url
        from ome_zarr.reader import Reader

        return list(Reader(parse_url(str(path)))())[0]


def test_v2_image_04_to_05_and_back_keeps_every_attribute(tmp_path: Path) -> None:
    src, v5, v4 = tmp_path / "src.zarr", tmp_path / "v5.zarr", tmp_path / "v4.zarr"
    ome = {"multiscales": _multiscales("0.4"), "omero": copy.deepcopy(OMERO)}
    beside = {"_creator": {"name": "by hand", "version": "1.0"}, "user": {"k": [1, 2]}}
    attrs = _image(src, 2, ome, beside)
    convert(str(src), str(v5))

    got = raw_attributes(v5)
    # non-OME keys beside "ome", not copied into it; omero whole, its own version too
    assert {k: v for k, v in got.items() if k != "ome"} == beside
    assert got["ome"]["version"] == "0.5" and got["ome"]["omero"] == OMERO
    want_ms = _multiscales("0.5")
    assert got["ome"]["multiscales"] == want_ms
    assert set(got["ome"]) == {"version", "multiscales", "omero"}
    assert raw_attributes(v5 / "labels") == {"ome": {"version": "0.5", "labels": ["cells"]},
                                             "labels-note": 1}
    cells = raw_attributes(v5 / "labels/cells")["ome"]
    assert cells["image-label"]["unknown-label-key"] == "x"
    assert "version" not in cells["image-label"]
    # the arrays' own attributes: kept whole, _ARRAY_DIMENSIONS too (as zarr-python's
    # migrate_v3 does), and dimension_names from the axes
    for name, want in ARRAY_ATTRS.items():
        doc, got_attrs = _array_doc(v5 / name)
        assert got_attrs == want
        assert doc["dimension_names"] == ["c", "y", "x"]
        with quiet():
            z = zarr.open_array(str(v5 / name), mode="r")
        assert dict(z.attrs) == want and z.metadata.dimension_names == ("c", "y", "x")
    assert _array_doc(v5 / "labels/cells/0")[1] == {"label-array-key": True}
    assert ngffcore.validate(str(v5)) == []
    node = _read_with_ome_zarr(v5)
    assert [a["name"] for a in node.metadata["axes"]] == ["c", "y", "x"]

    convert(str(v5), str(v4), version="0.4")
    # 0.4 → 0.5 → 0.4: every group's and array's attributes exactly the source's
    assert raw_attributes(v4) == attrs
    for sub in ("labels", "labels/cells"):
        assert raw_attributes(v4 / sub) == raw_attributes(src / sub)
    for name, want in ARRAY_ATTRS.items():
        assert _array_doc(v4 / name)[1] == want
        with quiet():
            assert dict(zarr.open_array(str(v4 / name), mode="r").attrs) == want
    assert _array_doc(v4 / "labels/cells/0")[1] == {"label-array-key": True}
    assert ngffcore.validate(str(v4)) == []


def test_v3_image_05_keeps_unknown_ome_keys_and_array_attributes(tmp_path: Path) -> None:
    src, v5, v4 = tmp_path / "src.zarr", tmp_path / "v5.zarr", tmp_path / "v4.zarr"
    omero = {k: v for k, v in OMERO.items() if k != "version"}
    ome = {"version": "0.5", "multiscales": _multiscales("0.5"), "omero": omero,
           "_creator": {"name": "by hand"}, "my-ome-key": {"x": 1}}
    beside = {"user": "beside ome"}
    attrs = _image(src, 3, ome, beside)
    convert(str(src), str(v5))
    assert raw_attributes(v5) == attrs  # 0.5 → 0.5: every key where it was
    for name, want in ARRAY_ATTRS.items():
        assert _array_doc(v5 / name)[1] == want

    convert(str(src), str(v4), version="0.4")
    got = raw_attributes(v4)
    # 0.4 has one namespace: the keys inside ome and those beside it, all at the top
    assert got["_creator"] == {"name": "by hand"} and got["my-ome-key"] == {"x": 1}
    assert got["user"] == "beside ome" and got["omero"] == omero and "ome" not in got
    assert got["multiscales"] == _multiscales("0.4")
    for name, want in ARRAY_ATTRS.items():  # a v3 array's attributes become its .zattrs
        assert _array_doc(v4 / name)[1] == want
        with quiet():
            assert dict(zarr.open_array(str(v4 / name), mode="r").attrs) == want
    assert ngffcore.validate(str(v4)) == []


def test_05_to_04_refuses_a_key_both_inside_and_beside_ome(tmp_path: Path) -> None:
    src = tmp_path / "src.zarr"
    _image(src, 3, {"version": "0.5", "multiscales": _multiscales("0.5"), "k": 1}, {"k": 2})
    with pytest.raises(MetadataError, match="'k'"):
        convert(str(src), str(tmp_path / "v4.zarr"), version="0.4")
    assert not (tmp_path / "v4.zarr").exists() or not any((tmp_path / "v4.zarr").iterdir())


def test_array_dimensions_name_a_level_the_axes_cannot(tmp_path: Path) -> None:
    """dimension_names come from the multiscale's axes (0.5 requires them to match); a level
    with another dimension count (here in a second multiscale) takes a v2 array's
    ``_ARRAY_DIMENSIONS`` instead, when it is one name per dimension."""
    src, dst = tmp_path / "src.zarr", tmp_path / "dst.zarr"
    second = {"version": "0.4", "name": "flat", "axes": AXES, "datasets": [
        {"path": "flat", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]},
        {"path": "flat2", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]}]}
    _image(src, 2, {"multiscales": _multiscales("0.4") + [second]}, {})
    _array(src / "flat", pixels((16, 24), "uint16"), 2, {"_ARRAY_DIMENSIONS": ["y", "x"]})
    _array(src / "flat2", pixels((16, 24), "uint16"), 2, {"_ARRAY_DIMENSIONS": ["y"]})
    convert(str(src), str(dst))
    assert load_json(dst / "s0" / "zarr.json")["dimension_names"] == ["c", "y", "x"]
    flat = load_json(dst / "flat" / "zarr.json")
    assert flat["dimension_names"] == ["y", "x"]
    assert flat["attributes"] == {"_ARRAY_DIMENSIONS": ["y", "x"]}
    assert "dimension_names" not in load_json(dst / "flat2" / "zarr.json")  # not one per axis
    with quiet():
        assert zarr.open_array(str(dst / "flat"), mode="r").metadata.dimension_names == (
            "y", "x")


def _plate(path: Path) -> None:
    """A 0.4 plate by hand: row A, columns 1 and 2, one field per well; user keys on the
    plate, inside ``plate``, on the row group and on the wells."""
    wells = [{"path": "A/1", "rowIndex": 0, "columnIndex": 0},
             {"path": "A/2", "rowIndex": 0, "columnIndex": 1}]
    _group_doc(path, 2, {"plate": {"version": "0.4", "name": "p", "rows": [{"name": "A"}],
                                   "columns": [{"name": "1"}, {"name": "2"}],
                                   "wells": wells, "field_count": 1, "my-plate-key": 3},
                         "plate-user": {"a": 1}})
    _group_doc(path / "A", 2, {"row-user": "row A"})
    for i, w in enumerate(wells):
        _group_doc(path / w["path"], 2, {"well": {"version": "0.4", "images": [{"path": "0"}],
                                                  "my-well-key": i}, "well-user": i})
        _array(path / w["path"] / "0" / "0", pixels((2, 8, 8), "uint16", seed=i), 2,
               {"field-array": i})
        _group_doc(path / w["path"] / "0", 2, {"multiscales": [
            {"version": "0.4", "axes": AXES, "datasets": [LEVEL0]}], "field-user": i})


def test_plate_keeps_row_well_and_unknown_plate_keys(tmp_path: Path) -> None:
    src, v5, v4 = tmp_path / "src.zarr", tmp_path / "v5.zarr", tmp_path / "v4.zarr"
    _plate(src)
    convert(str(src), str(v5))
    got = raw_attributes(v5)
    assert got["plate-user"] == {"a": 1} and "plate-user" not in got["ome"]
    assert got["ome"]["plate"]["my-plate-key"] == 3
    assert raw_attributes(v5 / "A") == {"row-user": "row A"}
    for i, w in enumerate(("A/1", "A/2")):
        wa = raw_attributes(v5 / w)
        assert wa["well-user"] == i and wa["ome"]["well"]["my-well-key"] == i
        assert raw_attributes(v5 / w / "0")["field-user"] == i
        assert _array_doc(v5 / w / "0" / "0")[1] == {"field-array": i}
    assert ngffcore.validate(str(v5)) == []
    convert(str(v5), str(v4), version="0.4")
    for sub in ("", "A", "A/1", "A/2", "A/1/0", "A/2/0"):
        assert raw_attributes(v4 / sub) == raw_attributes(src / sub), sub
    assert _array_doc(v4 / "A/2/0/0")[1] == {"field-array": 1}


# -- OME-NGFF 0.1–0.3 sources -------------------------------------------------------------

def _old_image(path: Path, version: str) -> None:
    """ome-zarr-py's writer of ``version``: 0.1/0.2 5-D without axes; 0.3 zyx names."""
    with quiet():
        from ome_zarr.format import FormatV01, FormatV02, FormatV03
        from ome_zarr.writer import write_multiscale

        fmt = {"0.1": FormatV01, "0.2": FormatV02, "0.3": FormatV03}[version]()
        base = pixels((1, 2, 4, 16, 24) if version != "0.3" else (4, 16, 24), "uint16")
        pyramid = [base, base[..., ::2, ::2].copy(), base[..., ::4, ::4].copy()]
        g = zarr.open_group(str(path), mode="w", zarr_format=2)
        write_multiscale(pyramid, g, fmt=fmt, axes="zyx" if version == "0.3" else None)
    attrs = raw_attributes(path)
    window = {"start": 0, "end": 100, "min": 0, "max": 65535}
    attrs["omero"] = {"channels": [{"label": n, "color": "FF0000", "window": window}
                                   for n in ("a", "b")[:1 if version == "0.3" else 2]],
                      "version": version}
    attrs["user"] = version
    (path / ".zattrs").write_text(json.dumps(attrs))


@pytest.mark.parametrize("version", ["0.1", "0.2", "0.3"])
@pytest.mark.parametrize("target", ["0.4", "0.5"])
def test_old_versions_are_upgraded(tmp_path: Path, version: str, target: str) -> None:
    src, dst = tmp_path / "src.zarr", tmp_path / "dst.zarr"
    _old_image(src, version)
    convert(str(src), str(dst), version=target)
    got = raw_attributes(dst)
    ome = got["ome"] if target == "0.5" else got
    ms = ome["multiscales"][0]
    names = "tczyx" if version != "0.3" else "zyx"
    kinds = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
    assert ms["axes"] == [{"name": n, "type": kinds[n]} for n in names]
    lead = [1.0] * (len(names) - 2)
    assert [d["coordinateTransformations"] for d in ms["datasets"]] == [
        [{"type": "scale", "scale": lead + [f, f]}] for f in (1.0, 2.0, 4.0)]
    assert ms.get("version") == (None if target == "0.5" else "0.4")
    assert ms["name"] == "/"  # what ome-zarr-py wrote
    assert ome["omero"]["version"] == version and got["user"] == version
    assert ngffcore.validate(str(dst)) == []
    a, b = ngffcore.open(str(src)), ngffcore.open(str(dst))
    assert b.axes == a.axes
    assert [lv.scale for lv in b.levels] == [lv.scale for lv in a.levels]
    for k in range(3):
        with quiet():
            want = zarr.open_array(str(src / f"s{k}"), mode="r")[...]
        np.testing.assert_array_equal(b.levels[k].read(), want)
    node = _read_with_ome_zarr(dst)
    assert [a["name"] for a in node.metadata["axes"]] == list(names)
    if target == "0.5":
        assert load_json(dst / "s0" / "zarr.json")["dimension_names"] == list(names)


def test_old_plate_gets_well_indices(tmp_path: Path) -> None:
    with quiet():
        from ome_zarr.format import FormatV03
        from ome_zarr.writer import write_multiscale, write_plate_metadata, write_well_metadata

        src = tmp_path / "plate03.zarr"
        g = zarr.open_group(str(src), mode="w", zarr_format=2)
        write_plate_metadata(g, ["A", "B"], ["1", "2"], ["A/2", "B/1"], fmt=FormatV03())
        for w in ("A/2", "B/1"):
            r, c = w.split("/")
            wg = g.require_group(r).require_group(c)
            write_well_metadata(wg, [{"path": "0"}], fmt=FormatV03())
            write_multiscale([pixels((8, 8), "uint16")], wg.require_group("0"),
                             fmt=FormatV03(), axes="yx")
    dst = tmp_path / "dst.zarr"
    convert(str(src), str(dst))
    plate = raw_attributes(dst)["ome"]["plate"]
    assert plate["wells"] == [{"path": "A/2", "rowIndex": 0, "columnIndex": 1},
                              {"path": "B/1", "rowIndex": 1, "columnIndex": 0}]
    assert ngffcore.validate(str(dst)) == []
    assert [w.path for w in ngffcore.open(str(dst)).wells] == ["A/2", "B/1"]


def test_old_5d_version_with_other_dimension_count_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src.zarr"
    _old_image(src, "0.3")
    attrs = raw_attributes(src)
    del attrs["multiscales"][0]["axes"]
    attrs["multiscales"][0]["version"] = "0.2"  # 0.2: tczyx implied, but the arrays are 3-D
    (src / ".zattrs").write_text(json.dumps(attrs))
    with pytest.raises(MetadataError, match="dimensions"):
        convert(str(src), str(tmp_path / "dst.zarr"))
    with pytest.raises(MetadataError, match="dimensions"):
        ngffcore.open(str(src))  # the reader refuses it alike


def test_unknown_version_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src.zarr"
    _image(src, 2, {"multiscales": _multiscales("0.4")}, {})
    attrs = raw_attributes(src)
    attrs["multiscales"][0]["version"] = "0.9"
    (src / ".zattrs").write_text(json.dumps(attrs))
    with pytest.raises(UnsupportedError, match="0.9"):
        convert(str(src), str(tmp_path / "dst.zarr"))
