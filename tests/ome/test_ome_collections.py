"""Plates, wells and bioformats2raw containers (docs/ome.md), and what ``open()`` says about
groups that are none of these.

Plates are written by ome-zarr-py; bioformats2raw containers by hand (no Python peer writes
them, see ``ome_writers.write_bioformats2raw``) around ome-zarr-py images. Expectations come
from the raw JSON and zarr-python (``tests/ome_writers.py``).
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import zarr

import ngffcore
import ome_writers as ow

VERSIONS = ["0.4", "0.5"]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return ow.Library(tmp_path_factory.mktemp("ome_collections"))


@pytest.fixture(scope="module")
def plates(lib):
    return {v: lib.get(f"plate-{v}", lambda root, v=v: ow.write_ome_zarr_plate(root, v))
            for v in VERSIONS}


def _same_image(img, exp: ow.ImageExpect) -> None:
    assert isinstance(img, ngffcore.Image)
    assert [lvl.path for lvl in img.levels] == [e.path for e in exp.levels]
    for lvl, e in zip(img.levels, exp.levels):
        assert lvl.shape == e.shape
        assert lvl.scale == pytest.approx(e.scale, rel=1e-12)
        assert lvl.translation == pytest.approx(e.translation, abs=1e-12)
        np.testing.assert_array_equal(lvl[...], e.data, strict=True)
    assert [(a.name, a.type, a.unit) for a in img.axes] == exp.axes


# --------------------------------------------------------------------------------------
# plates
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_plate_metadata(plates, version):
    exp = plates[version]
    plate = ngffcore.open(str(exp.path))
    assert isinstance(plate, ngffcore.Plate)
    assert plate.rows == ("A", "B")
    assert plate.columns == ("1", "2", "3")
    assert list(plate.rows) == exp.rows and list(plate.columns) == exp.columns
    assert [w.path for w in plate.wells] == exp.wells == ["A/1", "A/2", "A/3", "B/1", "B/2",
                                                          "B/3"]
    b3 = plate.wells[5]
    assert (b3.row, b3.column, b3.row_index, b3.column_index) == ("B", "3", 1, 2)
    assert [(a.id, a.name) for a in plate.acquisitions] == [
        (a["id"], a["name"]) for a in exp.acquisitions] == [(0, "first pass"), (1, "second pass")]
    assert [a.maximum_field_count for a in plate.acquisitions] == [1, 1]
    assert plate.field_count == 2
    assert plate.name == exp.name == "test plate"
    assert plate.version == version
    assert plate.metadata == exp.attributes


@pytest.mark.parametrize("version", VERSIONS)
def test_plate_fields_are_images(plates, version):
    exp = plates[version]
    plate = ngffcore.open(str(exp.path))
    well = plate.well("B", 3)
    assert isinstance(well, ngffcore.Well)
    assert len(well) == 2
    assert [im.path for im in well.images] == exp.field_paths["B/3"] == ["0", "1"]
    assert [im.acquisition for im in well.images] == [0, 1]
    for f in (0, 1):
        _same_image(well.field(f), exp.fields[("B/3", f)])
    # fields of different wells hold different pixels (the test data is not degenerate)
    other = plate.well("A", "1").field(1)
    _same_image(other, exp.fields[("A/1", 1)])
    assert not np.array_equal(other.levels[0][...], well.field(1).levels[0][...])


@pytest.mark.parametrize("version", VERSIONS)
def test_every_field_of_the_plate(plates, version):
    """With field metadata reuse on (the default), every field still reads its own pixels."""
    exp = plates[version]
    plate = ngffcore.open(str(exp.path))
    for w in exp.wells:
        row, col = w.split("/")
        well = plate.well(row, col)
        for f in range(2):
            _same_image(well.field(f), exp.fields[(w, f)])


@pytest.mark.parametrize("version", VERSIONS)
def test_plate_without_field_metadata_reuse(plates, version):
    exp = plates[version]
    plate = ngffcore.open(str(exp.path), reuse_field_metadata=False)
    _same_image(plate.well("A", 2).field(0), exp.fields[("A/2", 0)])
    _same_image(plate.well("A", 2).field(1), exp.fields[("A/2", 1)])


def test_plate_well_forms(plates):
    exp = plates["0.5"]
    plate = ngffcore.open(str(exp.path))
    f = exp.fields[("B/2", 1)]
    for well in (plate.well("B", 2), plate.well("B", "2"), plate.well("B/2")):
        np.testing.assert_array_equal(well.field(1).levels[1][...], f.levels[1].data)


def test_plate_missing_well(plates):
    plate = ngffcore.open(str(plates["0.4"].path))
    with pytest.raises(ngffcore.NgffError):
        plate.well("C", 1)
    with pytest.raises(ngffcore.NgffError):
        plate.well("A", 4)


@pytest.mark.parametrize("version", VERSIONS)
def test_well_group_opened_directly(plates, version):
    exp = plates[version]
    well = ngffcore.open(str(exp.path / "A" / "3"))
    assert isinstance(well, ngffcore.Well)
    assert [im.path for im in well.images] == ["0", "1"]
    assert well.version == version
    _same_image(well.field(1), exp.fields[("A/3", 1)])
    with pytest.raises(ngffcore.NgffError):
        well.field(2)


@pytest.mark.parametrize("version", VERSIONS)
def test_field_group_opened_directly(plates, version):
    exp = plates[version]
    img = ngffcore.open(str(exp.path / "B" / "1" / "0"))
    _same_image(img, exp.fields[("B/1", 0)])


def test_plate_async(plates):
    exp = plates["0.5"]

    async def main():
        plate = await ngffcore.open_async(str(exp.path))
        well = await plate.well_async("B", 1)
        return await asyncio.gather(well.field_async(0), well.field_async(1))

    f0, f1 = asyncio.run(main())
    _same_image(f0, exp.fields[("B/1", 0)])
    _same_image(f1, exp.fields[("B/1", 1)])


# --------------------------------------------------------------------------------------
# bioformats2raw
# --------------------------------------------------------------------------------------

BF2RAW_CASES = [("0.4", True, True), ("0.5", True, True), ("0.4", False, True),
                ("0.4", False, False), ("0.5", False, True)]


def _bf2raw_id(case):
    version, series_list, ome_attrs = case
    return f"{version}-" + ("series" if series_list else "xml" if ome_attrs else "xml-noattrs")


@pytest.mark.parametrize("case", BF2RAW_CASES, ids=_bf2raw_id)
def test_bioformats2raw_collection(lib, case):
    version, series_list, ome_attrs = case
    exp = lib.get(f"bf2raw-{_bf2raw_id(case)}", lambda root: ow.write_bioformats2raw(
        root, version, series_list=series_list, ome_attrs=ome_attrs))
    coll = ngffcore.open(str(exp.path))
    assert isinstance(coll, ngffcore.Collection)
    assert len(coll) == 2  # series list, or the two <Image> elements of METADATA.ome.xml
    assert tuple(coll.series) == ("0", "1")
    images = list(coll)
    assert len(images) == 2
    for i, e in enumerate(exp.series):
        _same_image(coll[i], e)
        _same_image(images[i], e)
    assert coll[0].levels[0].shape == (1, 2, 1, 32, 32)
    assert coll[1].levels[0].shape == (1, 1, 1, 24, 40)
    assert coll[1].name == "series 1"
    with pytest.raises(ngffcore.NgffError):
        coll[2]


def test_bioformats2raw_series_paths_are_followed(lib, tmp_path):
    """The OME group's ``series`` list names the groups: a reversed list reverses them."""
    exp = ow.write_bioformats2raw(tmp_path, "0.4")
    ow._write_group_doc(exp.path / "OME", "0.4", {"series": ["1", "0"]})
    coll = ngffcore.open(str(exp.path))
    assert len(coll) == 2
    _same_image(coll[0], exp.series[1])
    _same_image(coll[1], exp.series[0])


# --------------------------------------------------------------------------------------
# not an OME-Zarr node
# --------------------------------------------------------------------------------------


def _raises_metadata_error(path, *words):
    with pytest.raises(ngffcore.MetadataError) as info:
        ngffcore.open(str(path))
    msg = str(info.value)
    assert str(path) in msg or path.name in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_open_plain_array(tmp_path, zarr_format):
    path = tmp_path / f"array{zarr_format}"
    z = zarr.create_array(str(path), shape=(4, 4), chunks=(2, 2), dtype="u1",
                          zarr_format=zarr_format)
    z[...] = 1
    _raises_metadata_error(path)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_open_empty_group(tmp_path, zarr_format):
    path = tmp_path / f"group{zarr_format}"
    zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    _raises_metadata_error(path)


@pytest.mark.parametrize("version", VERSIONS)
def test_open_group_with_other_attributes_names_the_keys(tmp_path, version):
    path = tmp_path / f"other{version}"
    attrs = ({"ome": {"version": "0.5", "somethingelse": 1}} if version == "0.5"
             else {"somethingelse": 1, "another_key": [1, 2]})
    ow._write_group_doc(path, version, attrs)
    _raises_metadata_error(path, "somethingelse")


def test_open_nothing_there(tmp_path):
    with pytest.raises(ngffcore.NgffError) as info:
        ngffcore.open(str(tmp_path / "absent.zarr"))
    assert isinstance(info.value, (ngffcore.NotFoundError, ngffcore.MetadataError))
    assert "absent.zarr" in str(info.value)


def test_open_labels_group_is_not_an_image(lib):
    exp = lib.image("ome-zarr-py-0.4")
    # the labels group itself lists label images; the label images are images
    with pytest.raises(ngffcore.MetadataError):
        ngffcore.open(str(exp.path / "labels"))
    lab = ngffcore.open(str(exp.path / "labels" / "cells"))
    assert isinstance(lab, ngffcore.LabelImage)
    assert lab.colors == exp.labels["cells"].colors
    raw = json.loads((exp.path / "labels" / ".zattrs").read_text())
    assert raw == {"labels": ["cells", "nuclei"]}
