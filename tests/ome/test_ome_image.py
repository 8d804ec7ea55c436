"""The OME image model (docs/ome.md) on images written by the peers and by hand.

Every expectation comes from ``tests/ome_writers.py``: pixel data, shapes, chunks and shards as
zarr-python reads them, transforms composed from the raw JSON with plain Python, axes,
channels and labels from the raw JSON, plus what each writer was told to write.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import ngffcore
import ome_writers as ow

IMAGE_CASES = list(ow.IMAGE_WRITERS)
LABELLED = ["ome-zarr-py-0.4", "ome-zarr-py-0.5"]
WITH_CHANNELS = ["ome-zarr-py-0.4", "ome-zarr-py-0.5", "ome-zarr-py-multiscale-0.4",
                 "ome-zarr-py-multiscale-0.5", "ngff-zarr-channels-0.4", "ngff-zarr-channels-0.5"]
WITHOUT_CHANNELS = [c for c in IMAGE_CASES if c not in WITH_CHANNELS]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return ow.Library(tmp_path_factory.mktemp("ome_image"))


@pytest.fixture(scope="module")
def opened(lib):
    """case → (ngffcore.open(path), expectations); each image opened once per module."""
    cache: dict[str, tuple[object, ow.ImageExpect]] = {}

    def get(case: str):
        if case not in cache:
            exp = lib.image(case)
            cache[case] = (ngffcore.open(str(exp.path)), exp)
        return cache[case]

    return get


def _approx(values):
    return pytest.approx(tuple(values), rel=1e-12, abs=1e-12)


# --------------------------------------------------------------------------------------
# every writer / configuration
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_open_returns_an_image(opened, case):
    img, _ = opened(case)
    assert isinstance(img, ngffcore.Image)
    assert type(img).__name__ == "Image"  # not a LabelImage: no image-label here


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_levels_match_zarr_python(opened, case):
    img, exp = opened(case)
    assert isinstance(img.levels, tuple)
    assert len(img.levels) == len(exp.levels)
    for lvl, e in zip(img.levels, exp.levels):
        assert isinstance(lvl, ngffcore.Array)  # a Level is an Array (same read API)
        assert lvl.path == e.path
        assert lvl.shape == e.shape
        assert np.dtype(lvl.dtype) == e.dtype
        assert lvl.chunks == e.chunks
        assert lvl.shards == e.shards


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_level_transforms_compose_as_the_spec_says(opened, case):
    """scale = s_dataset * s_multiscale; translation = t_dataset * s_multiscale + t_multiscale
    (composed in ome_writers.compose from the raw JSON)."""
    img, exp = opened(case)
    for i, (lvl, e) in enumerate(zip(img.levels, exp.levels)):
        assert isinstance(lvl.scale, tuple) and isinstance(lvl.translation, tuple)
        assert len(lvl.scale) == len(lvl.translation) == len(e.shape)
        assert lvl.scale == _approx(e.scale), f"level {i} scale"
        assert lvl.translation == _approx(e.translation), f"level {i} translation"


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_level0_transform_is_what_the_writer_was_told(opened, case):
    img, exp = opened(case)
    names = [a.name for a in img.axes]
    lvl0 = img.levels[0]
    for axis, value in exp.told_scale.items():
        assert lvl0.scale[names.index(axis)] == pytest.approx(value, rel=1e-12), axis
    for axis, value in exp.told_translation.items():
        assert lvl0.translation[names.index(axis)] == pytest.approx(value, abs=1e-12), axis


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_axes_name_version_metadata(opened, case):
    img, exp = opened(case)
    assert isinstance(img.axes, tuple)
    assert [(a.name, a.type, a.unit) for a in img.axes] == exp.axes
    assert all(isinstance(a, ngffcore.Axis) for a in img.axes)
    assert img.name == exp.name
    assert img.version == exp.version
    assert img.metadata == exp.attributes
    assert list(img.multiscales) == exp.multiscales


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_level_pixels_equal_zarr_python(opened, case):
    img, exp = opened(case)
    for lvl, e in zip(img.levels, exp.levels):
        got = lvl[...]
        assert got.dtype == e.dtype
        np.testing.assert_array_equal(got, e.data, strict=True)
        # a box crossing chunk borders, with one integer axis dropped (plain Array indexing)
        sel = (0,) + tuple(slice(s // 3, s - s // 4) for s in e.shape[1:])
        np.testing.assert_array_equal(lvl[sel], e.data[sel], strict=True)


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_level_read_async_equals_zarr_python(opened, case):
    img, exp = opened(case)
    lvl, e = img.levels[-1], exp.levels[-1]
    got = asyncio.run(lvl.read_async(...))
    np.testing.assert_array_equal(got, e.data, strict=True)


# --------------------------------------------------------------------------------------
# literal expectations (independent of ome_writers.compose)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_spec_example_literal_transforms(opened, version):
    """The spec's multiscales_example: dataset scales (1,1,.5,.5,.5) / (1,1,1,1,1) /
    (1,1,2,2,2) times the multiscale's (0.1,1,1,1,1)."""
    img, _ = opened(f"spec-{version}-multiscales_example")
    assert [lvl.path for lvl in img.levels] == ["0", "1", "2"]
    assert img.levels[0].scale == _approx((0.1, 1.0, 0.5, 0.5, 0.5))
    assert img.levels[1].scale == _approx((0.1, 1.0, 1.0, 1.0, 1.0))
    assert img.levels[2].scale == _approx((0.1, 1.0, 2.0, 2.0, 2.0))
    for lvl in img.levels:
        assert lvl.translation == (0.0,) * 5
    assert [(a.name, a.type, a.unit) for a in img.axes] == [
        ("t", "time", "millisecond"), ("c", "channel", None), ("z", "space", "micrometer"),
        ("y", "space", "micrometer"), ("x", "space", "micrometer")]
    assert img.name == "example"
    assert img.version == version


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_spec_transformations_example_literal(opened, version):
    img, _ = opened(f"spec-{version}-multiscales_transformations")
    assert len(img.levels) == 1
    assert img.levels[0].scale == _approx((10.0, 10.0))
    assert img.levels[0].translation == (0.0, 0.0)
    assert img.name == "image_with_coordinateTransformations"


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ngff_zarr_literal_transforms(opened, version):
    """ngff-zarr was told scale z 2, y/x 0.5 µm and translation y 10, x −3; it shifts the
    x2 / x4 levels by (factor − 1)/2 input pixels."""
    img, _ = opened(f"ngff-zarr-{version}")
    assert [lvl.shape for lvl in img.levels] == [(8, 64, 64), (8, 32, 32), (8, 16, 16)]
    assert img.levels[0].scale == _approx((2.0, 0.5, 0.5))
    assert img.levels[0].translation == _approx((0.0, 10.0, -3.0))
    assert img.levels[1].scale == _approx((2.0, 1.0, 1.0))
    assert img.levels[1].translation == _approx((0.0, 10.25, -2.75))
    assert img.levels[2].scale == _approx((2.0, 2.0, 2.0))
    assert img.levels[2].translation == _approx((0.0, 10.75, -2.25))
    assert [(a.name, a.unit) for a in img.axes] == [("z", "micrometer"), ("y", "micrometer"),
                                                   ("x", "micrometer")]


def test_ngff_zarr_sharded_levels(opened):
    img, exp = opened("ngff-zarr-0.5-sharded")
    assert img.levels[0].shards == (8, 32, 32)
    assert img.levels[0].chunks == (8, 16, 16)
    assert exp.levels[0].shards == (8, 32, 32)  # the writer did shard
    np.testing.assert_array_equal(img.levels[0][2:5, 20:50, 7:61], exp.levels[0].data[2:5, 20:50, 7:61])


def test_v03_scales_inferred_from_shapes(opened):
    """0.3: no transforms; level i gets shape_0 / shape_i, translation 0 (docs/ome.md)."""
    img, _ = opened("ome-zarr-py-0.3")
    assert img.version == "0.3"
    assert [lvl.scale for lvl in img.levels] == [(1.0, 1.0, 1.0), (1.0, 2.0, 2.0),
                                                 (1.0, 4.0, 4.0)]
    assert all(lvl.translation == (0.0, 0.0, 0.0) for lvl in img.levels)
    # 0.3 axes are bare names from {t, c, z, y, x}: the type is the one the name implies
    assert [(a.name, a.type, a.unit) for a in img.axes] == [
        ("z", "space", None), ("y", "space", None), ("x", "space", None)]


# --------------------------------------------------------------------------------------
# omero channels
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", WITH_CHANNELS)
def test_channels_from_omero(opened, case):
    img, exp = opened(case)
    assert isinstance(img.channels, tuple)
    assert len(img.channels) == len(exp.channels) > 0
    for ch, raw in zip(img.channels, exp.channels):
        assert isinstance(ch, ngffcore.Channel)
        assert ch.label == raw["label"]
        assert ch.color == raw["color"].upper()
        w = raw["window"]
        assert isinstance(ch.window, ngffcore.Window)
        assert (ch.window.start, ch.window.end, ch.window.min, ch.window.max) == (
            w["start"], w["end"], w["min"], w["max"])
        for key in ("active", "inverted", "coefficient", "family"):
            if key in raw:
                assert getattr(ch, key) == raw[key], key


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_channels_literal(opened, version):
    img, _ = opened(f"ome-zarr-py-{version}")
    dapi, gfp = img.channels
    assert (dapi.label, dapi.color, dapi.active, dapi.inverted) == ("DAPI", "0000FF", True, False)
    assert (dapi.coefficient, dapi.family) == (1.0, "linear")
    assert dapi.window == ngffcore.Window(start=0.0, end=1500.0, min=0.0, max=65535.0)
    assert (gfp.label, gfp.color, gfp.active) == ("GFP", "00FF00", False)
    assert (gfp.window.start, gfp.window.end, gfp.window.min, gfp.window.max) == (
        10.0, 500.0, 0.0, 4095.0)


@pytest.mark.parametrize("case", WITHOUT_CHANNELS)
def test_no_omero_no_channels(opened, case):
    img, exp = opened(case)
    assert exp.channels == []
    assert img.channels == ()


def test_window_fields_absent_are_none(lib):
    exp = lib.get("omero-partial", lambda root: ow.write_hand_image(
        root, "0.4", "omero", [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
                               {"name": "x", "type": "space"}],
        [((2, 8, 8), [1.0, 1.0, 1.0], None)]))
    attrs = dict(exp.attributes)
    attrs["omero"] = {"channels": [{"label": "only start", "color": "ff8000",
                                    "window": {"start": 5}}, {"label": "no window"}]}
    ow._write_group_doc(exp.path, "0.4", attrs)
    img = ngffcore.open(str(exp.path))
    a, b = img.channels
    assert a.label == "only start" and a.color == "FF8000"
    assert (a.window.start, a.window.end, a.window.min, a.window.max) == (5.0, None, None, None)
    assert b.label == "no window"
    assert (b.window.start, b.window.end, b.window.min, b.window.max) == (None,) * 4


# --------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", LABELLED)
def test_labels(opened, case):
    img, exp = opened(case)
    labels = img.labels
    assert sorted(labels) == sorted(exp.labels) == ["cells", "nuclei"]
    for name, e in exp.labels.items():
        lab = labels[name]
        assert isinstance(lab, ngffcore.Image) and isinstance(lab, ngffcore.LabelImage)
        assert type(lab).__name__ == "LabelImage"
        assert lab.colors == e.colors
        assert lab.properties == e.properties
        assert lab.source == e.source
        assert lab.name == e.name
        assert [(a.name, a.type, a.unit) for a in lab.axes] == e.axes
        assert len(lab.levels) == len(e.levels)
        for lvl, le in zip(lab.levels, e.levels):
            assert (lvl.path, lvl.shape, np.dtype(lvl.dtype)) == (le.path, le.shape, le.dtype)
            assert lvl.scale == _approx(le.scale)
            assert lvl.translation == _approx(le.translation)
            np.testing.assert_array_equal(lvl[...], le.data, strict=True)
    # caching (read once, on first use) is checked against the server log in test_ome_requests


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_labels_literal(opened, version):
    img, _ = opened(f"ome-zarr-py-{version}")
    cells = img.labels["cells"]
    assert cells.colors == {1: (255, 0, 0, 255), 2: (0, 255, 0, 128), 3: (0, 0, 255, 0)}
    assert all(isinstance(v, int) for rgba in cells.colors.values() for v in rgba)
    assert cells.properties == {1: {"class": "nucleus"}, 2: {"class": "cell", "area": 12.5},
                                3: {"class": "cell", "area": 7.0, "dividing": True}}
    assert cells.source == {"image": "../../"}
    nuclei = img.labels["nuclei"]
    assert nuclei.colors == {1: (10, 20, 30, 40)}
    assert nuclei.properties == {}
    assert nuclei.source is None
    assert np.dtype(nuclei.levels[0].dtype) == np.dtype("uint32")


@pytest.mark.parametrize("case", [c for c in IMAGE_CASES if c not in LABELLED])
def test_no_labels_group_no_labels(opened, case):
    img, _ = opened(case)
    assert len(img.labels) == 0
    assert dict(img.labels) == {}


# --------------------------------------------------------------------------------------
# several multiscales in one group
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_two_multiscales(lib, version):
    first, second = lib.get(f"two-{version}", lambda root: ow.write_two_multiscales(root, version))
    img = ngffcore.open(str(first.path))
    assert img.name == "first"
    assert len(img.multiscales) == 2
    assert [m["name"] for m in img.multiscales] == ["first", "second"]
    assert [lvl.path for lvl in img.levels] == ["a/0", "a/1"]
    # two names for two paths: the dataset path (== path) and the array's path in its store
    assert [lvl.dataset_path for lvl in img.levels] == ["a/0", "a/1"]
    assert [lvl.store_path for lvl in img.levels] == [img.path + "/a/0" if img.path else "a/0",
                                                      img.path + "/a/1" if img.path else "a/1"]
    assert [lvl.index for lvl in img.levels] == [0, 1]
    assert img.multiscale_index == img.index == 0
    # literal: dataset (0.5, t 1,2) then multiscale (scale 2, translation −5, 7)
    assert img.levels[0].scale == _approx((1.0, 1.0))
    assert img.levels[0].translation == _approx((-3.0, 11.0))
    assert img.levels[1].scale == _approx((2.0, 2.0))
    assert img.levels[1].translation == _approx((-2.5, 11.5))
    np.testing.assert_array_equal(img.levels[1][...], first.levels[1].data, strict=True)

    other = ngffcore.open(str(first.path), multiscale=1)
    assert isinstance(other, ngffcore.Image)
    assert other.name == "second"
    assert other.multiscale_index == other.index == 1
    assert [lvl.path for lvl in other.levels] == ["b/0"]
    assert other.levels[0].shape == second.levels[0].shape == (12, 10)
    assert other.levels[0].scale == _approx((3.0, 3.0))
    assert other.levels[0].translation == (0.0, 0.0)
    np.testing.assert_array_equal(other.levels[0][...], second.levels[0].data, strict=True)
    assert list(other.multiscales) == list(img.multiscales)


def test_multiscale_index_out_of_range(lib):
    first, _ = lib.get("two-0.5", lambda root: ow.write_two_multiscales(root, "0.5"))
    with pytest.raises(ngffcore.NgffError) as info:
        ngffcore.open(str(first.path), multiscale=2)
    assert isinstance(info.value, (ValueError, IndexError))


def test_open_async_equals_open(opened):
    img, exp = opened("ngff-zarr-0.5")
    aimg = asyncio.run(ngffcore.open_async(str(exp.path)))
    assert isinstance(aimg, ngffcore.Image)
    assert [lvl.shape for lvl in aimg.levels] == [lvl.shape for lvl in img.levels]
    assert [lvl.translation for lvl in aimg.levels] == [lvl.translation for lvl in img.levels]
    np.testing.assert_array_equal(aimg.levels[1][...], exp.levels[1].data, strict=True)
