"""The napari reader (``ngffcore.napari``, npe2 plugin ``ngffcore``), through npe2 as napari
calls it, without napari: ``npe2.read([path], stack=..., plugin_name="ngffcore")``.

The data are written by ome-zarr-py and ngff-zarr (``tests/ome_writers.py``); what a layer
must say comes from what those writers were told (omero channels, label colours and
properties) and from the raw JSON (scale, translation), its pixels from zarr-python's read of
each level. Two tests need napari itself (one of them Qt too) and are skipped without it.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ngffcore
import ome_writers as ow
from ngffcore.napari import LevelView, get_reader, read_layers
from servers import RangeServer

npe2 = pytest.importorskip("npe2")


# -- data and plugin -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("napari")
    out: dict[str, Any] = {
        "img05": ow.write_ome_zarr_image(root, "0.5"),
        "img04": ow.write_ome_zarr_image(root, "0.4"),
        "tcyx": ow.write_ome_zarr_multiscale(root, "0.5"),
        "zyx": ow.write_ngff_zarr_image(root, "0.5"),
        "plate": ow.write_ome_zarr_plate(root, "0.5"),
        "bf2raw": ow.write_bioformats2raw(root, "0.4"),
        "root": root,
    }
    # omero edited by hand: channel 0 inverted, channel 1 without a window end
    edited = root / "edited.zarr"
    shutil.copytree(out["img04"].path, edited)
    attrs = json.loads((edited / ".zattrs").read_text())
    attrs["omero"]["channels"][0]["inverted"] = True
    del attrs["omero"]["channels"][1]["window"]["end"]
    (edited / ".zattrs").write_text(json.dumps(attrs))
    out["edited"] = edited
    return out


@pytest.fixture(scope="module", autouse=True)
def plugin() -> None:
    """The installed package's entry point, found as napari finds it."""
    pm = npe2.PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("ngffcore")
    assert manifest.contributions.readers[0].command == "ngffcore.get_reader"


def read(*paths: Any, stack: bool = False) -> list[tuple[Any, dict[str, Any], str]]:
    return npe2.read([str(p) for p in paths], stack=stack, plugin_name="ngffcore")


def check_levels(views: list[Any], levels: list[ow.LevelExpect], identical: Any,
                 drop: int | None = None) -> None:
    """Every level: a LevelView of the expected shape whose pixels are zarr-python's
    (``drop``: an axis of size 1 the layer leaves out)."""
    assert len(views) == len(levels)
    for view, lvl in zip(views, levels):
        ref = lvl.data if drop is None else np.take(lvl.data, 0, axis=drop)
        assert isinstance(view, LevelView)
        assert view.shape == ref.shape and view.dtype == ref.dtype and view.ndim == ref.ndim
        assert view.size == ref.size
        identical(np.asarray(view), ref, lvl.path)


def without(values: tuple[float, ...], axis: int | None) -> list[float]:
    return [v for i, v in enumerate(values) if i != axis]


# -- the manifest --------------------------------------------------------------------------
def test_manifest_validates() -> None:
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(
        Path(ngffcore.__file__).with_name("napari.yaml"))
    manifest.validate_imports()  # ngffcore.napari:get_reader imports and exists
    reader = manifest.contributions.readers[0]
    assert manifest.name == "ngffcore"
    assert reader.filename_patterns == ["*.zarr", "*.ome.zarr", "*.ozx"]
    assert reader.accepts_directories


# -- images --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["img05", "img04"])
def test_image_and_labels(data: dict[str, Any], case: str, identical: Any) -> None:
    exp = data[case]
    layers = read(exp.path)
    assert [t for _, _, t in layers] == ["image", "labels", "labels"]

    views, kw, _ = layers[0]
    check_levels(views, exp.levels, identical)
    channels = ow.OMERO["channels"]
    assert kw["channel_axis"] == 0 and kw["multiscale"] is True and kw["rgb"] is False
    assert kw["name"] == [ch["label"] for ch in channels]
    assert kw["colormap"] == [f"#{ch['color']}" for ch in channels]
    assert kw["contrast_limits"] == [[ch["window"]["start"], ch["window"]["end"]]
                                     for ch in channels]
    assert kw["visible"] == [ch["active"] for ch in channels]
    assert kw["scale"] == without(exp.levels[0].scale, 0) == [2.0, 0.5, 0.5]
    assert kw["translate"] == without(exp.levels[0].translation, 0)

    for (views, kw, _), name in zip(layers[1:], ["cells", "nuclei"]):
        lab = exp.labels[name]
        assert kw["name"] == name and kw["multiscale"] is True
        check_levels(views, lab.levels, identical)
        assert kw["scale"] == list(lab.levels[0].scale)
        assert kw["translate"] == list(lab.levels[0].translation)
    cells = layers[1][1]
    assert cells["colormap"] == {**{c["label-value"]: [v / 255 for v in c["rgba"]]
                                    for c in ow.CELL_COLORS}, None: [0.0, 0.0, 0.0, 0.0]}
    assert cells["features"] == {
        "index": [1, 2, 3], "area": [None, 12.5, 7.0], "class": ["nucleus", "cell", "cell"],
        "dividing": [None, None, True]}
    assert "features" not in layers[2][1]


def test_channel_axis_not_first(data: dict[str, Any], identical: Any) -> None:
    """tcyx: the channel axis is 1; scale and translate are t, y, x's."""
    exp = data["tcyx"]
    (views, kw, kind), = read(exp.path)
    assert kind == "image" and kw["channel_axis"] == 1
    assert kw["scale"] == without(exp.levels[0].scale, 1) == [3.0, 0.25, 0.25]
    assert kw["name"] == ["DAPI", "GFP"]
    check_levels(views, exp.levels, identical)


def test_no_channel_axis(data: dict[str, Any], identical: Any) -> None:
    """zyx, no omero: one layer, no split, named after the location, napari's own colours
    and contrast limits; the translation (y 10, x -3) from the JSON."""
    exp = data["zyx"]
    (views, kw, kind), = read(exp.path)
    assert kind == "image"
    assert "channel_axis" not in kw and "colormap" not in kw and "contrast_limits" not in kw
    assert kw["name"] == exp.path.name.removesuffix(".zarr")
    assert kw["scale"] == list(exp.levels[0].scale)
    assert kw["translate"] == list(exp.levels[0].translation) == [0.0, 10.0, -3.0]
    check_levels(views, exp.levels, identical)


def test_inverted_channel_and_missing_window(data: dict[str, Any]) -> None:
    (_, kw, _), *_ = read(data["edited"])
    assert kw["colormap"][0] == {"name": "#0000FF inverted",
                                 "colors": [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]]}
    assert kw["colormap"][1] == "#00FF00"
    # one channel has no window end: napari computes every channel's limits from the data
    assert "contrast_limits" not in kw


def test_unreadable_label_leaves_the_image(data: dict[str, Any], tmp_path: Path,
                                           identical: Any) -> None:
    """A labels group listing a label image that is not there: the image opens, with a
    warning naming the missing label."""
    exp = data["img04"]
    path = tmp_path / "broken.zarr"
    shutil.copytree(exp.path, path)
    shutil.rmtree(path / "labels" / "nuclei")
    with pytest.warns(UserWarning, match="nuclei"):
        layers = read(path)
    assert [t for _, _, t in layers] == ["image"]
    check_levels(layers[0][0], exp.levels, identical)


def test_napari_style_reads_are_lazy(data: dict[str, Any], identical: Any) -> None:
    """napari's multiscale slicing: the channel split, then every non-displayed axis whole
    with the viewport crop, then the plane; nothing is read before numpy.asarray, which reads
    exactly that plane of that channel."""
    exp = data["img05"]
    (views, _, _), *_ = read(exp.path)
    channel = views[0][1]
    crop = channel[:, 10:50, 20:70]
    assert isinstance(channel, LevelView) and isinstance(crop, LevelView)
    assert crop.shape == (8, 40, 50)
    identical(np.asarray(crop[5]), exp.levels[0].data[1, 5, 10:50, 20:70])
    identical(np.asarray(crop[-1, ..., 3:]), exp.levels[0].data[1, -1, 10:50, 23:70])
    # anything beyond ints and step-1 slices reads the window, then indexes it
    ref = exp.levels[0].data[1, :, 10:50, 20:70]
    identical(crop[2, ::3, [0, 7]], ref[2, ::3, [0, 7]])  # numpy's rules, axes moved
    mask = np.asarray(crop[0]) % 2 == 0
    assert 0 < mask.sum() < mask.size
    identical(crop[0][mask], ref[0][mask])


# -- plates, wells, containers, label images, lists ---------------------------------------
def test_plate_well_and_container_show_their_first_image(data: dict[str, Any],
                                                           identical: Any) -> None:
    plate = data["plate"]
    first = plate.fields[(plate.wells[0], 0)]
    for location in (plate.path, plate.path / plate.wells[0]):
        (views, kw, kind), = read(location)
        assert kind == "image" and kw["channel_axis"] == 0
        check_levels(views, first.levels, identical)
    bf = data["bf2raw"]
    (views, kw, kind), = read(bf.path)
    assert kind == "image" and kw["channel_axis"] == 1  # tczyx
    check_levels(views, bf.series[0].levels, identical)


def test_label_image_on_its_own(data: dict[str, Any], identical: Any) -> None:
    exp = data["img05"]
    (views, kw, kind), = read(exp.path / "labels" / "cells")
    assert kind == "labels" and kw["name"] == "cells"
    check_levels(views, exp.labels["cells"].levels, identical)


def test_list_of_paths(data: dict[str, Any]) -> None:
    layers = read(data["zyx"].path, data["img05"].path, stack=True)
    assert [(t, kw["name"]) for _, kw, t in layers] == [
        ("image", "ngff_zarr_05"), ("image", ["DAPI", "GFP"]), ("labels", "cells"),
        ("labels", "nuclei")]


# -- what the reader refuses -----------------------------------------------------------------
def test_not_ome_zarr_is_refused(data: dict[str, Any], tmp_path: Path) -> None:
    import zarr

    plain = tmp_path / "plain.zarr"
    zarr.open_group(str(plain), mode="w").create_array("a", shape=(4,), dtype="u1")
    random_file = tmp_path / "random.zarr"
    random_file.write_bytes(np.random.default_rng(0).bytes(4096))
    text_ozx = tmp_path / "text.ozx"
    text_ozx.write_text("not a zip")
    labels_group = data["img05"].path / "labels"  # lists label images: open one of them
    for path in (plain, random_file, text_ozx, labels_group, tmp_path / "missing.zarr"):
        assert get_reader(str(path)) is None, path
        with pytest.raises(ValueError, match="refused the file"):
            read(path)
    # one non-OME path in a list refuses the list
    assert get_reader([str(data["zyx"].path), str(plain)]) is None
    # a directory without OME metadata is refused whatever its name; a file whose name
    # matches no pattern is not offered to the reader at all
    assert get_reader(str(data["zyx"].path.parent)) is None
    with pytest.raises(ValueError, match="not a compatible reader"):
        read(tmp_path / "notes.txt")


def _zip_dir(src: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zf:
        for f in sorted(src.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(src).as_posix())
    return dest


def test_zipped_ome_zarr_is_read_in_place(data: dict[str, Any], tmp_path: Path,
                                          identical: Any) -> None:
    """A .ozx holding OME metadata is OME-Zarr: the reader is offered and reads it through
    the zip store, the same layers and pixels as the directory. A zip without OME metadata
    is not taken."""
    exp = data["img05"]
    ozx = _zip_dir(exp.path, tmp_path / "image.ozx")
    assert get_reader(str(ozx)) is read_layers
    layers = read(ozx)
    assert [t for _, _, t in layers] == [t for _, _, t in read(exp.path)]
    views, kw, _ = layers[0]
    assert kw["name"] == ["DAPI", "GFP"]
    identical(np.asarray(views[0][1][5, 10:50, 20:70]), exp.levels[0].data[1, 5, 10:50, 20:70])
    other = tmp_path / "other.ozx"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("zarr.json", json.dumps({"zarr_format": 3, "node_type": "group",
                                             "attributes": {}}))
    assert get_reader(str(other)) is None


# -- over HTTP -------------------------------------------------------------------------------
def test_http(data: dict[str, Any], identical: Any) -> None:
    exp = data["img05"]
    with RangeServer(str(exp.path.parent)) as srv:
        url = f"{srv.url}/{exp.path.name}"
        assert get_reader(url) is read_layers
        assert srv.state.requests() == []  # deciding sent nothing
        layers = read(url)
        assert [t for _, _, t in layers] == ["image", "labels", "labels"]
        views, kw, _ = layers[0]
        assert kw["name"] == ["DAPI", "GFP"] and kw["scale"] == [2.0, 0.5, 0.5]

        # napari's slicing of channel 1, z 5, viewport y 10:50, x 20:70 of level 0
        srv.state.clear()
        crop = views[0][1][:, 10:50, 20:70]
        plane = crop[5]
        assert srv.state.requests() == []  # nothing read before numpy asks
        identical(np.asarray(plane), exp.levels[0].data[1, 5, 10:50, 20:70])
        gets = srv.state.requests()
        cy, cx = exp.levels[0].chunks[2:]
        touched = (((50 - 1) // cy - 10 // cy + 1) * ((70 - 1) // cx - 20 // cx + 1))
        assert all(r.method == "GET" and r.range is None for r in gets)
        assert len(gets) == len({r.path for r in gets}) == touched == 6
        # the same plane again comes from the image's decoded-chunk cache
        srv.state.clear()
        identical(np.asarray(crop[5]), exp.levels[0].data[1, 5, 10:50, 20:70])
        assert srv.state.requests() == []
        check_levels(layers[1][0], exp.labels["cells"].levels, identical)


# -- with napari -------------------------------------------------------------------------------
def _napari() -> Any:
    napari = pytest.importorskip(
        "napari", reason="napari is not installed (pip install 'ngffcore[napari]')")
    return napari


def _check_viewer_layers(viewer: Any, exp: ow.ImageExpect) -> None:
    names = [layer.name for layer in viewer.layers]
    assert names == ["DAPI", "GFP", "cells", "nuclei"]
    dapi, gfp, cells, _ = viewer.layers
    assert dapi.colormap.name == "blue" and gfp.colormap.name == "green"
    assert list(dapi.contrast_limits) == [0.0, 1500.0] and not gfp.visible
    assert list(dapi.scale) == [2.0, 0.5, 0.5] and dapi.multiscale
    assert type(cells).__name__ == "Labels" and cells.multiscale
    # what napari sliced through the views: the value under a world position at each z
    for z in (0, 3, 7):
        viewer.dims.set_point(0, z * 2.0)
        level, value = dapi.get_value((z * 2.0, 10.0, 20.0), world=True)
        ref = exp.levels[level].data
        f = exp.levels[0].shape[2] // ref.shape[2]
        assert value == ref[0, z, int(20 // f), int(40 // f)]


# napari, its dependencies and Qt warn about themselves (deprecations, the Qt backend): not
# under test here
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
@pytest.mark.filterwarnings("ignore:::napari")
@pytest.mark.filterwarnings("ignore:::vispy")
def test_napari_viewer_model(data: dict[str, Any]) -> None:
    """napari's ViewerModel (no Qt, no window) opens through the plugin and slices."""
    _napari()
    from napari.components import ViewerModel

    viewer = ViewerModel()
    viewer.open(str(data["img05"].path), plugin="ngffcore")
    _check_viewer_layers(viewer, data["img05"])


# napari, its dependencies and Qt warn about themselves (deprecations, the Qt backend): not
# under test here
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
@pytest.mark.filterwarnings("ignore:::napari")
@pytest.mark.filterwarnings("ignore:::vispy")
def test_napari_viewer(data: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """``napari.Viewer(show=False)``: needs napari and a Qt binding (offscreen)."""
    napari = _napari()
    # no window: offscreen, unless the caller chose a platform (e.g. xcb under Xvfb)
    monkeypatch.setenv("QT_QPA_PLATFORM", os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    try:
        from qtpy.QtGui import QOpenGLContext
        from qtpy.QtWidgets import QApplication
    except Exception as exc:  # qtpy raises its own error when no binding is installed
        pytest.skip(f"no Qt binding for napari.Viewer: {exc}")
    app = QApplication.instance() or QApplication([])  # kept: Qt needs it alive
    context = QOpenGLContext()
    if not context.create():
        pytest.skip("Qt makes no OpenGL context here, and napari.Viewer draws with OpenGL")
    del context
    viewer = napari.Viewer(show=False)
    try:
        viewer.open(str(data["img05"].path), plugin="ngffcore")
        _check_viewer_layers(viewer, data["img05"])
    finally:
        viewer.close()


def test_scene_shows_its_first_image(tmp_path: Path, identical: Any) -> None:
    """A 0.6 scene directory is OME-Zarr to the reader (its group holds ``ome.scene``): it
    shows the scene's first image by path, at that image's own scale."""
    import ome06_data as d6

    root = tmp_path / "stitched.zarr"
    d6.write_group(root, d6.ome_of(d6.example("scene/scene_stitching.json")))
    tiles = {}
    for k in range(4):
        systems = [{"name": "physical", "axes": d6.axes("y:space:micrometer",
                                                        "x:space:micrometer")}]
        ome = d6.multiscale(systems, [("s0", d6.scale(0.5, 0.25))], "physical")
        tiles[k] = d6.write_image(root / f"tile_{k}", ome, {"s0": (4, 5)}, seed=k)
    assert get_reader(str(root)) is read_layers
    [(views, kw, kind)] = read(root)
    assert kind == "image" and kw["name"] == "stitched" and kw["scale"] == [0.5, 0.25]
    first = ngffcore.open(str(root / "tile_0"))
    assert isinstance(first, ngffcore.Image)
    identical(np.asarray(views[0][:, :]), first.levels[0][:, :])

