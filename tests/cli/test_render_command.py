"""``ngffcore render`` and its PNG encoder, run in-process through ``main(argv)``.

Every picture is decoded with Pillow (an independent PNG decoder that checks the chunks'
CRCs) and compared exactly with ``Image.render_region`` for the same level, pixel box,
channels, z and t — and, for the pixels themselves, with a NumPy composite (the formula of
``ome/render.py``'s docstring) of the raw pixels zarr-python reads, so a wrong level, box,
plane or channel cannot pass by agreeing with itself. The encoder is checked against Pillow
on odd sizes, on rows built so that each of the five PNG filters is the best one, and on its
chunk structure and CRCs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from PIL import Image as PILImage

import ngffcore
from ngffcore.cli.main import build_parser, main
from ngffcore.cli.png import encode_png
from ngffcore.cli.render import picture_name, thumbnail_command
from ngffcore.ome.render import composite
from servers import RangeServer

# t, c, z, y, x: 2 time points, 2 channels, 4 z planes of 60 × 84 pixels
SHAPE = (2, 2, 4, 60, 84)
DATA = np.random.default_rng(17).integers(0, 4000, SHAPE, dtype="uint16")
CHANNELS = [
    {"label": "DAPI", "color": "FF00FF", "window": {"start": 100, "end": 3000}},
    {"label": "GFP", "color": "00FFC0", "window": {"start": 500, "end": 2500},
     "active": False},
]
#: y and x halved at each step, z kept: defaultZ is the same plane on every level
YX_ONLY = [[1, 1, 1, 2, 2], [1, 1, 1, 2, 2]]
#: z halved too
ZYX = [[1, 1, 2, 2, 2], [1, 1, 2, 2, 2]]


def _set_rdefs(path: Path, version: str, **rdefs: int) -> None:
    """Add omero ``rdefs`` keys to an image written by ``write_image``."""
    if version == "0.5":
        doc = json.loads((path / "zarr.json").read_text())
        doc["attributes"]["ome"]["omero"]["rdefs"].update(rdefs)
        (path / "zarr.json").write_text(json.dumps(doc))
    else:
        doc = json.loads((path / ".zattrs").read_text())
        doc["omero"]["rdefs"].update(rdefs)
        (path / ".zattrs").write_text(json.dumps(doc))


def _write(path: Path, version: str, factors: list[list[int]] = YX_ONLY,
           name: str | None = "sample", **rdefs: int) -> Path:
    ngffcore.write_image(path, DATA, axes="tczyx", factors=factors, chunks=(1, 1, 1, 16, 16),
                         scale=[1, 1, 1.5, 0.5, 0.5], channels=CHANNELS, name=name,
                         version=version)
    if rdefs:
        _set_rdefs(path, version, **rdefs)
    return path


@pytest.fixture(scope="module", params=["0.4", "0.5"])
def image_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Path:
    root = tmp_path_factory.mktemp(f"render{request.param}")
    return _write(root / "sample.ome.zarr", request.param, defaultZ=2, defaultT=1)


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def decode(path: Path) -> np.ndarray:
    with PILImage.open(path) as im:
        assert (im.format, im.mode) == ("PNG", "RGBA")
        return np.asarray(im).copy()


def zarr_pixels(path: Path, level: str, t: int, channels: list[int], z: int,
                y: tuple[int, int], x: tuple[int, int]) -> np.ndarray:
    """``(channels, h, w)`` raw pixels as zarr-python reads them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        array = zarr.open_array(path / level, mode="r")
        return np.stack([np.asarray(array[t, c, z, y[0]:y[1], x[0]:x[1]]) for c in channels])


def numpy_composite(pixels: np.ndarray, channels: list[int]) -> np.ndarray:
    """The documented compositing formula in float64: window, tint, round half up per
    channel, add, clamp."""
    rgb = np.zeros(pixels.shape[1:] + (3,))
    for plane, c in zip(pixels, channels):
        w = CHANNELS[c]["window"]
        v = np.clip((plane.astype(np.float64) - w["start"]) / (w["end"] - w["start"]), 0, 1)
        colour = np.array([int(CHANNELS[c]["color"][i:i + 2], 16) for i in (0, 2, 4)])
        rgb += np.floor(v[..., np.newaxis] * colour + 0.5)
    alpha = np.full(pixels.shape[1:] + (1,), 255.0)
    return np.concatenate([np.minimum(rgb, 255), alpha], axis=2).astype(np.uint8)


def physical(img: ngffcore.Image, level: int, y: tuple[int, int], x: tuple[int, int]
             ) -> dict[str, tuple[float, float]]:
    """The region from the first pixel centre to the centre after the last (docs/ome.md: a
    pixel belongs to a region when its centre does), checked by ``region_box``."""
    lvl = img.levels[level]
    region = {name: (lvl.translation[i] + a * lvl.scale[i], lvl.translation[i] + b * lvl.scale[i])
              for name, i, (a, b) in (("y", 3, y), ("x", 4, x))}
    assert img.region_box(region, level=level)[1][3:] == (y, x)
    return region


# -- pictures --------------------------------------------------------------------------------

def test_render_matches_render_region(image_path: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "view.png"
    code, stdout, err = run(capsys, "render", image_path, "--level", 1, "--region", "y=3:25",
                            "--region", "x=5:37", "--channels", "1,0", "--z", 3, "--t", 0,
                            "-o", out)
    assert code == 0, err
    assert f"{out}: " in stdout and "level 1" in stdout and "32×22 pixels" in stdout
    picture = decode(out)
    img = ngffcore.open(image_path)
    expected = img.render_region(physical(img, 1, (3, 25), (5, 37)), level=1,
                                 channels=[1, 0], z=3, t=0)
    assert picture.shape == (22, 32, 4)
    np.testing.assert_array_equal(picture, expected)
    raw = zarr_pixels(image_path, "1", 0, [1, 0], 3, (3, 25), (5, 37))
    np.testing.assert_array_equal(picture, numpy_composite(raw, [1, 0]))


def test_render_channels_by_label_and_open_bounds(image_path: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gfp.png"
    code, _, err = run(capsys, "render", image_path, "--level", 0, "--region", "y=40:",
                       "--region", "X=:9", "--channels", "GFP", "-o", out)
    assert code == 0, err
    raw = zarr_pixels(image_path, "0", 1, [1], 2, (40, 60), (0, 9))  # defaultT 1, defaultZ 2
    np.testing.assert_array_equal(decode(out), numpy_composite(raw, [1]))


def test_render_defaults(image_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    """The coarsest level, the whole plane, the active channel (GFP is inactive), omero's
    defaultZ 2 and defaultT 1, and <name>.png in the current directory."""
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run(capsys, "render", image_path)
    assert code == 0, err
    assert os.listdir(tmp_path) == ["sample.png"]
    assert "level 2" in stdout
    picture = decode(tmp_path / "sample.png")
    img = ngffcore.open(image_path)
    np.testing.assert_array_equal(picture, img.render_region(level=2))
    assert picture.shape == (15, 21, 4)
    raw = zarr_pixels(image_path, "2", 1, [0], 2, (0, 15), (0, 21))
    np.testing.assert_array_equal(picture, numpy_composite(raw, [0]))


def test_render_by_resolution(image_path: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """Pixels of 0.5, 1 and 2 (y/x; z is 1.5 on every level): at most 1.2 is level 1."""
    out = tmp_path / "r.png"
    code, stdout, err = run(capsys, "render", image_path, "--resolution", 1.2, "-o", out)
    assert code == 0, err
    assert "level 1" in stdout
    img = ngffcore.open(image_path)
    np.testing.assert_array_equal(decode(out), img.render_region(level=1))
    # z's 1.5 must not count: a number applied to every spatial axis picks level 0
    assert img.level_for(1.2) == 0


def test_default_plane_follows_a_downsampled_z(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """With z halved per level, level-0 defaultZ 2 (z = 3.0) is plane 1 of level 1 (its
    centre 3.75 spans 2.25–5.25) and plane 0 of level 2 (one plane of 4)."""
    path = _write(tmp_path / "zyx.zarr", "0.5", factors=ZYX, defaultZ=2)
    for level, z in ((1, 1), (2, 0)):
        out = tmp_path / f"l{level}.png"
        code, _, err = run(capsys, "render", path, "--level", level, "-o", out)
        assert code == 0, err
        shape = ngffcore.open(path).levels[level].shape
        raw = zarr_pixels(path, str(level), 0, [0], z, (0, shape[3]), (0, shape[4]))
        np.testing.assert_array_equal(decode(out), numpy_composite(raw, [0]))


@pytest.mark.parametrize(("name", "location", "expected"), [
    ("sample", "/data/x.zarr", "sample.png"),
    ("Sample #1/ a", "/data/x.zarr", "Sample_1_a.png"),
    ("../../etc/passwd", "/data/x.zarr", "etc_passwd.png"),
    (None, "/data/plain.ome.zarr", "plain.png"),
    (None, "/data/Other.ZARR/", "Other.png"),
    (None, "https://host/bucket/img.ome.zarr/?x=1", "img.png"),
    (None, "s3://bucket/a b.zarr", "a_b.png"),
    ("", "s3://bucket/.zarr", "zarr.png"),
    ("...", "/data/x.zarr", "image.png"),
    (None, "s3://bucket/", "bucket.png"),
])
def test_picture_name(name: str | None, location: str, expected: str) -> None:
    assert picture_name(name, location) == expected


def test_name_from_the_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "unnamed.ome.zarr", "0.4", name=None)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "render", f"{path}/")
    assert code == 0, err
    assert (tmp_path / "unnamed.png").is_file()


def test_output_is_replaced_atomically(image_path: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "view.png"
    out.write_bytes(b"old")
    os.chmod(out, 0o600)
    assert run(capsys, "render", image_path, "-o", out)[0] == 0
    assert decode(out).shape == (15, 21, 4)
    assert os.listdir(tmp_path) == ["view.png"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~umask  # a new file, as open() makes it
    code, _, err = run(capsys, "render", image_path, "-o", tmp_path / "missing" / "v.png")
    assert code == 2 and "cannot write" in err and "missing" in err


def test_info_prints_the_thumbnail_command(image_path: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "info", image_path)
    assert code == 0, err
    command = f"ngffcore render {image_path} -o sample.png"
    assert out.splitlines()[-1] == f"thumbnail: {command}"
    code, out, _ = run(capsys, "info", image_path, "--json")
    assert json.loads(out)["thumbnail"] == command
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(command)[1:]) == 0
    img = ngffcore.open(image_path)
    np.testing.assert_array_equal(decode(tmp_path / "sample.png"),
                                  img.render_region(level=len(img.levels) - 1))


def test_info_thumbnail_of_a_plate_and_over_http(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    plate = ngffcore.write_plate(tmp_path / "plate.zarr", rows=["A"], columns=["1"],
                                 wells=["A/1"])
    field = DATA[0, :, 0]
    plate.write_field("A", "1", 0, field, axes="cyx", channels=CHANNELS, name="f0")
    monkeypatch.chdir(tmp_path)
    with RangeServer(str(tmp_path)) as server:
        url = f"{server.url}/plate.zarr"
        code, out, err = run(capsys, "info", url, "-O", "concurrency=8", "--zarr-format", 3)
        assert code == 0, err
        command = out.splitlines()[-1].removeprefix("thumbnail: ")
        assert command == (f"ngffcore render {url} -O concurrency=8 --zarr-format 3 "
                           f"--field A/1/0 -o f0.png")
        assert main(shlex.split(command)[1:]) == 0, capsys.readouterr().err
    level = len(ngffcore.open(tmp_path / "plate.zarr" / "A" / "1" / "0").levels) - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = np.asarray(zarr.open_array(tmp_path / f"plate.zarr/A/1/0/{level}", mode="r")[:1])
    np.testing.assert_array_equal(decode(tmp_path / "f0.png"), numpy_composite(raw, [0]))


def test_thumbnail_command_parses_back_to_the_same_options() -> None:
    """Store options go into the command as the parser reads them back: a string that
    looks like JSON stays a string, a location with a space is quoted."""
    options = [("region", "eu-west-1"), ("skip_signature", True), ("token", "5"),
               ("headers", {"a": "b c"})]
    info = argparse.Namespace(location="s3://bucket/my data.zarr", options=options,
                              zarr_format=2)
    command = thumbnail_command(info, None, ["--series", "0"])
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert (args.command, args.location, args.options, args.zarr_format, args.series,
            args.output) == ("render", "s3://bucket/my data.zarr", options, 2, 0,
                             "my_data.png")


def test_info_has_no_thumbnail_for_a_plain_array(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "array.zarr"
    zarr.create_array(path, shape=(8, 8), chunks=(4, 4), dtype="uint8")
    code, out, _ = run(capsys, "info", path)
    assert code == 0 and "thumbnail:" not in out
    assert "thumbnail" not in json.loads(run(capsys, "info", path, "--json")[1])
    code, _, err = run(capsys, "render", path, "-o", tmp_path / "a.png")
    assert code == 2 and "plain Zarr array" in err


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["--channels", "0,5"], "no channel 5: the image has 2"),
    (["--channels", "-1"], "no channel -1"),
    (["--channels", "RFP"], "'RFP' is neither a channel index nor a channel label"),
    (["--channels", "0,,1"], "'' is neither"),
    (["--level", "3"], "level 3 out of range: the image has 3 levels"),
    (["--level", "-4"], "level -4 out of range"),
    (["--region", "y=5:2"], "--region y=5:2: need 0 ≤ START < STOP ≤ 15"),
    (["--region", "y=4:4"], "need 0 ≤ START < STOP"),
    (["--level", "0", "--region", "x=0:85"], "level 0 has 84 pixels along x"),
    (["--region", "y=-1:3"], "need 0 ≤ START"),
    (["--region", "z=0:2"], "axis 'z' is not y or x"),
    (["--region", "q=0:2"], "axis 'q' is not y or x"),
    (["--region", "y=0:2.5"], "'2.5' is not a whole pixel index"),
    (["--region", "y=a:3"], "'a' is not a whole pixel index"),
    (["--region", "y=3"], "write AXIS=START:STOP"),
    (["--region", "y=0:3", "--region", "y=1:2"], "names axis y more than once"),
    (["--z", "4"], "z=4 out of range [0, 4)"),
    (["--z", "-1"], "z=-1 out of range"),
    (["--t", "2"], "t=2 out of range [0, 2)"),
    (["--resolution", "0"], "resolution for axis 'y' must be > 0"),
    (["--label", "cells"], "has no label image 'cells'"),
])
def test_bad_input_exits_2_with_one_line(image_path: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str],
                                         args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "render", image_path, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("ngffcore render: error: ") and err.count("\n") == 1, err
    assert message in err
    assert os.listdir(tmp_path) == []  # nothing written


def test_no_z_axis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "yx.zarr"
    ngffcore.write_image(path, DATA[0, 0, 0], axes="yx", levels=1)
    code, _, err = run(capsys, "render", path, "--z", 1, "-o", tmp_path / "a.png")
    assert code == 2 and "no z axis" in err
    code, _, err = run(capsys, "render", path, "-o", tmp_path / "b.png")
    assert code == 0, err
    # one channel without omero: white, the dtype's full range
    plane = DATA[0, 0, 0].astype(np.float64)
    grey = np.floor(plane / 65535 * 255 + 0.5).astype(np.uint8)
    picture = decode(tmp_path / "b.png")
    np.testing.assert_array_equal(picture[..., 0], grey)
    np.testing.assert_array_equal(picture[..., 2], grey)


# -- the PNG encoder -------------------------------------------------------------------------

def _chunks(png: bytes) -> list[tuple[bytes, bytes, int]]:
    """(type, data, stored CRC) of every chunk, after checking the signature."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])
        out.append((kind, data, crc))
        pos += 12 + length
    assert pos == len(png)
    return out


def _pillow(png: bytes) -> np.ndarray:
    with PILImage.open(io.BytesIO(png)) as im:
        im.verify()  # every chunk's CRC (a verified image cannot be loaded: open again)
    with PILImage.open(io.BytesIO(png)) as im:
        assert im.mode == "RGBA"
        return np.asarray(im).copy()


@pytest.mark.parametrize("shape", [(1, 1), (3, 517), (517, 3), (300, 700)])
def test_png_matches_pillow(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    noise = rng.integers(0, 256, (*shape, 4), dtype=np.uint8)
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    smooth = np.stack([(x * 3) % 256, (y * 5) % 256, (x + y) % 256,
                       np.full(shape, 255)], axis=2).astype(np.uint8)
    for rgba in (noise, smooth, smooth[::-1, ::-1]):  # the last a non-contiguous view
        png = encode_png(rgba)
        np.testing.assert_array_equal(_pillow(png), rgba)
        chunks = _chunks(png)
        assert [k for k, _, _ in chunks[:1] + chunks[-1:]] == [b"IHDR", b"IEND"]
        assert {k for k, _, _ in chunks[1:-1]} == {b"IDAT"}
        assert chunks[0][1] == struct.pack(">IIBBBBB", shape[1], shape[0], 8, 6, 0, 0, 0)
        for kind, data, crc in chunks:
            assert crc == zlib.crc32(kind + data), kind


def test_png_crcs_are_checked_by_pillow() -> None:
    """Pillow's verify() accepts the file and refuses it with the IHDR or an IDAT CRC
    changed, so the comparisons above would catch a wrong CRC there. Pillow skips IEND's;
    IEND is a fixed 12 bytes whose CRC the PNG specification prints (AE 42 60 82)."""
    png = encode_png(np.full((4, 5, 4), 200, dtype=np.uint8))
    with PILImage.open(io.BytesIO(png)) as im:
        im.verify()
    pos = 8
    for kind, data, _ in _chunks(png)[:-1]:
        crc_at = pos + 8 + len(data)
        broken = png[:crc_at] + bytes([png[crc_at] ^ 1]) + png[crc_at + 1:]
        # IHDR's is checked on open (UnidentifiedImageError, an OSError), IDAT's by verify
        with pytest.raises((SyntaxError, OSError), match="(?i)crc|checksum|cannot identify"):
            with PILImage.open(io.BytesIO(broken)) as im:
                im.verify()
        pos = crc_at + 4
    assert png[pos:] == bytes.fromhex("0000000049454e44ae426082")


def test_png_uses_every_filter_where_it_is_best() -> None:
    """Rows built so that one filter is clearly best: None (a zero row), Sub (a step of 7
    from a random start), Up (the row above again), Average (the predictor's own output)
    and Paeth (see below). Pillow must decode each, and each row must carry that filter's
    type byte."""
    rng = np.random.default_rng(5)
    width = 40
    n = width * 4

    rows = [np.zeros(n, dtype=np.int64)]                                 # 0: None
    rows.append(rng.integers(0, 256, n))                                 # 1: (noise)
    start = rng.integers(0, 256, 4)
    rows.append((np.tile(start, width) + 7 * np.repeat(np.arange(width), 4)) % 256)  # 2: Sub
    rows.append(rows[-1].copy())                                         # 3: Up
    rows.append(rng.integers(0, 256, n))                                 # 4: (noise)
    up, row = rows[-1], np.zeros(n, dtype=np.int64)
    for i in range(n):
        row[i] = ((row[i - 4] if i >= 4 else 0) + up[i]) // 2
    rows.append(row)                                                     # 5: Average
    # a row that is all Paeth predictions equals the row above (Up would tie and win), so
    # Paeth wins by switching: a flat left half (it predicts from the left, as Sub) under
    # zeros, and the right half a copy of the noise above it (it predicts from above, as Up)
    half = n // 2
    rows.append(np.concatenate([np.zeros(half, np.int64), rng.integers(0, 256, half)]))
    rows.append(np.concatenate([np.full(half, 100), rows[-1][half:]]))   # 6: (above), 7: Paeth
    rgba = np.stack(rows).astype(np.uint8).reshape(len(rows), width, 4)
    png = encode_png(rgba)
    np.testing.assert_array_equal(_pillow(png), rgba)
    raw = zlib.decompress(b"".join(d for k, d, _ in _chunks(png) if k == b"IDAT"))
    filters = [raw[i * (n + 1)] for i in range(len(rows))]
    assert [filters[i] for i in (0, 2, 3, 5, 7)] == [0, 1, 2, 3, 4]


def test_png_is_smaller_than_unfiltered_for_smooth_pictures() -> None:
    """What the filters are for: a smooth composite compresses better than filter 0."""
    y, x = np.mgrid[0:256, 0:256]
    plane = (2000 + 1500 * np.sin(x / 17) * np.cos(y / 23)).astype("uint16")
    rgba = composite(plane, channel_axis=None, windows=[(0, 4000)],
                                     colors=["FF8000"])
    unfiltered = zlib.compress(b"".join(b"\0" + r.tobytes() for r in rgba), 6)
    idat = b"".join(d for k, d, _ in _chunks(encode_png(rgba)) if k == b"IDAT")
    assert len(idat) < 0.85 * len(unfiltered)  # 0.77 when this was written


@pytest.mark.parametrize("bad", [
    np.zeros((2, 2, 4), dtype=np.float32),
    np.zeros((2, 2, 3), dtype=np.uint8),
    np.zeros((2, 2), dtype=np.uint8),
    np.zeros((0, 5, 4), dtype=np.uint8),
    np.zeros((5, 0, 4), dtype=np.uint8),
    [[[0, 0, 0, 255]]],
])
def test_png_refuses_what_is_not_rgba(bad: Any) -> None:
    with pytest.raises(ngffcore.ArgumentError, match="encode_png|a PNG is"):
        encode_png(bad)
