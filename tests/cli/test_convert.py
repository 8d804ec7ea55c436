"""``ngffcore convert`` (issue 16): images (with labels), a plate and a bioformats2raw
collection written by ome-zarr-py, converted 0.4 → sharded 0.5 → 0.4; pixels compared with
zarr-python's reads of the source, attributes with the source's raw JSON (modulo the version
layout), ``ngffcore.validate`` clean; DEST holding anything refused; ``--resume`` after
SIGKILLs at random moments byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import ngffcore
from ngffcore import _core
from ngffcore.cli.main import main
from ngffcore.ome.convert import JOURNAL, convert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ome_writers import (quiet, raw_attributes, write_bioformats2raw,  # noqa: E402
                         write_ome_zarr_image, write_ome_zarr_plate)

VERSIONED = ("plate", "well", "image-label", "omero")


def norm(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes without their version layout: OME keys and others in one dict, no
    ``version`` anywhere OME-NGFF puts one."""
    attrs = copy.deepcopy(attrs)
    out = {**{k: v for k, v in attrs.items() if k != "ome"}, **attrs.get("ome", {})}
    out.pop("version", None)
    for entry in out.get("multiscales", []):
        entry.pop("version", None)
    for key in VERSIONED:
        if isinstance(out.get(key), dict):
            out[key].pop("version", None)
    return out


def groups(root: Path) -> dict[str, dict[str, Any]]:
    """Every group below ``root`` (relative path → normalised attributes)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        if "zarr.json" in files:
            doc = json.loads((Path(dirpath) / "zarr.json").read_text())
            if doc.get("node_type") != "group":
                continue
        elif ".zgroup" not in files:
            continue
        out[os.path.relpath(dirpath, root)] = norm(raw_attributes(Path(dirpath)))
    return out


def arrays(root: Path) -> dict[str, Any]:
    """Every array below ``root`` as zarr-python reads it (relative path → array)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        is_v3 = "zarr.json" in files and json.loads(
            (Path(dirpath) / "zarr.json").read_text()).get("node_type") == "array"
        if is_v3 or ".zarray" in files:
            with quiet():
                out[os.path.relpath(dirpath, root)] = zarr.open_array(dirpath, mode="r")
    return out


def files(root: Path) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(d, f), root): Path(d, f).read_bytes()
            for d, _, names in os.walk(root) for f in names}


def assert_same_content(src: Path, dst: Path, version: str) -> None:
    assert groups(dst) == groups(src)
    a, b = arrays(src), arrays(dst)
    assert sorted(a) == sorted(b)
    for path in a:
        want = a[path][...]
        with quiet():
            got = b[path][...]
        np.testing.assert_array_equal(got, want, err_msg=path)
        assert b[path].metadata.zarr_format == (3 if version == "0.5" else 2)
    assert ngffcore.validate(str(dst)) == []
    assert not (dst / JOURNAL).exists()


def run(*argv: str) -> int:
    return main(["convert", *argv])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("convert-src")
    write_ome_zarr_image(root, "0.4")
    write_ome_zarr_plate(root, "0.4")
    write_bioformats2raw(root, "0.4")
    return root


def test_image_04_to_sharded_05_and_back(data: Path, tmp_path: Path) -> None:
    src = data / "ome_zarr_py_04.zarr"
    v5, v4 = tmp_path / "v5.zarr", tmp_path / "v4.zarr"
    assert run(str(src), str(v5), "--chunks", "1,2,16,16", "--shards", "1,4,32,64") == 0
    assert_same_content(src, v5, "0.5")
    assert set(groups(v5)["labels"]["labels"]) == {"cells", "nuclei"}
    image = ngffcore.open(str(v5))
    assert image.version == "0.5"
    assert image.levels[0].shards == (1, 4, 32, 64) and image.levels[0].chunks == (1, 2, 16, 16)
    # the label image has no c axis: it takes the trailing values
    assert image.labels["cells"].levels[0].shards == (4, 32, 64)
    assert zarr.open_array(str(v5 / "s0")).metadata.dimension_names == ("c", "z", "y", "x")
    np.testing.assert_array_equal(image.levels[1].read(),
                                  zarr.open_array(str(src / "s1"), mode="r")[...])
    assert run(str(v5), str(v4), "--version", "0.4", "--compressor", "blosc") == 0
    assert_same_content(src, v4, "0.4")
    assert json.loads((v4 / "s0" / ".zarray").read_text())["compressor"]["id"] == "blosc"
    raw = raw_attributes(v4)
    assert raw["multiscales"][0]["version"] == "0.4" and "ome" not in raw
    assert raw_attributes(v4 / "labels" / "cells")["image-label"]["version"] == "0.4"


def test_plate(data: Path, tmp_path: Path) -> None:
    src = data / "plate_04.zarr"
    dst = tmp_path / "plate.zarr"
    assert run(str(src), str(dst), "--shards", "1,32,32") == 0
    assert_same_content(src, dst, "0.5")
    plate = ngffcore.open(str(dst))
    assert isinstance(plate, ngffcore.Plate)
    assert [w.path for w in plate.wells] == ["A/1", "A/2", "A/3", "B/1", "B/2", "B/3"]
    field = plate.well("B", "3").field(1)
    np.testing.assert_array_equal(field.levels[0].read(), zarr.open_array(
        str(src / "B/3/1/s0"), mode="r")[...])


def test_bioformats2raw_collection(data: Path, tmp_path: Path) -> None:
    src = data / "bf2raw_04_series.zarr"
    dst = tmp_path / "bf.zarr"
    assert run(str(src), str(dst)) == 0
    assert_same_content(src, dst, "0.5")
    assert (dst / "OME" / "METADATA.ome.xml").read_bytes() == \
        (src / "OME" / "METADATA.ome.xml").read_bytes()
    collection = ngffcore.open(str(dst))
    assert isinstance(collection, ngffcore.Collection) and len(collection) == 2
    assert raw_attributes(dst)["ome"] == {"version": "0.5", "bioformats2raw.layout": 3}


def test_http_source(data: Path, tmp_path: Path) -> None:
    from servers import RangeServer

    src = data / "plate_04.zarr"
    with RangeServer(str(data)) as server:  # no listing over HTTP: the walk needs none
        assert run(f"{server.url}/plate_04.zarr", str(tmp_path / "p.zarr")) == 0
    assert_same_content(src, tmp_path / "p.zarr", "0.5")


def test_dest_holding_anything_is_refused(data: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    src = data / "bf2raw_04_series.zarr"
    dst = tmp_path / "out.zarr"
    dst.mkdir()
    (dst / "precious.txt").write_text("keep me")
    assert run(str(src), str(dst)) == 2
    assert "is not empty" in capsys.readouterr().err
    assert run(str(src), str(dst), "--resume") == 2  # no journal: nothing to resume
    assert "no interrupted conversion" in capsys.readouterr().err
    assert files(dst) == {"precious.txt": b"keep me"}
    assert run(str(src), str(dst), "--overwrite") == 0
    assert "precious.txt" not in files(dst)
    assert_same_content(src, dst, "0.5")
    before = files(dst)  # complete (killed after its last step): nothing to resume
    assert run(str(src), str(dst), "--resume") == 0
    assert "nothing to resume" in capsys.readouterr().err and files(dst) == before


def test_resume_refuses_other_parameters(data: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    src = data / "ome_zarr_py_04.zarr"
    dst = tmp_path / "out.zarr"

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert(str(src), str(dst), chunks=(1, 2, 16, 16), progress=stop)
    assert (dst / JOURNAL).exists() and not (dst / "zarr.json").exists()
    assert run(str(src), str(dst), "--resume", "--chunks", "1,2,32,32") == 2
    assert "other parameters" in capsys.readouterr().err
    assert run(str(src), str(dst), "--resume", "--chunks", "1,2,16,16") == 0
    assert_same_content(src, dst, "0.5")


def test_resume_skips_complete_slabs(data: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import ngffcore.ome.convert as conv

    monkeypatch.setattr(conv, "SLAB_BYTES", 4096)
    src = data / "ome_zarr_py_04.zarr"
    ref, dst = tmp_path / "ref.zarr", tmp_path / "out.zarr"
    convert(str(src), str(ref), chunks=(1, 1, 16, 16))
    calls = []

    def stop(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert(str(src), str(dst), chunks=(1, 1, 16, 16), progress=stop)
    journal = json.loads((dst / JOURNAL).read_text())
    assert sum(journal["done"].values()) == 20
    reads = []
    real_copy = conv._copy

    def counting(*args: Any) -> int:
        reads.append(args[1].path)
        return real_copy(*args)

    seen: list[int] = []
    monkeypatch.setattr(conv, "_copy", counting)
    convert(str(src), str(dst), chunks=(1, 1, 16, 16), resume=True,
            progress=lambda d, t: seen.append(d))
    # the first report after resuming already counts the 20 slabs done before
    assert seen[0] > calls[-1]
    assert files(dst) == files(ref)


def test_progress_bar(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = data / "bf2raw_04_series.zarr"
    assert run(str(src), str(tmp_path / "a.zarr")) == 0
    assert capsys.readouterr().err == ""  # stderr is no terminal here
    assert run(str(src), str(tmp_path / "b.zarr"), "--progress") == 0
    err = capsys.readouterr().err
    total = sum(a.nbytes for a in arrays(src).values())
    assert f"100% {total / 1024:.1f}/{total / 1024:.1f} KiB ETA" in err


CONVERTER = textwrap.dedent("""
    import sys
    import ngffcore.ome.convert as conv
    from ngffcore.cli.main import main
    conv.SLAB_BYTES = 16384  # many slabs, so kills land between journal updates
    sys.exit(main(["convert", *sys.argv[1:]]))
""")


def test_resume_after_sigkill_is_byte_identical(tmp_path: Path) -> None:
    with quiet():
        from ome_zarr.format import FormatV04
        from ome_zarr.writer import write_image
    src = tmp_path / "big.zarr"
    rng = np.random.default_rng(7)
    data = (rng.integers(0, 4000, (2, 4, 384, 384)) // 7).astype("uint16")  # ~2.4 MiB
    with quiet():
        g = zarr.open_group(str(src), mode="w", zarr_format=2)
        write_image(data, g, scale_factors=[2], fmt=FormatV04(), axes="czyx",
                    storage_options={"chunks": (1, 1, 64, 64)})
    script = tmp_path / "convert.py"
    script.write_text(CONVERTER)
    args = ["--chunks", "1,1,32,32", "--shards", "1,2,64,64", "--compressor", "zstd:3"]
    ref = tmp_path / "ref.zarr"
    start = time.monotonic()
    subprocess.run([sys.executable, str(script), str(src), str(ref), *args], check=True)
    took = time.monotonic() - start
    want = files(ref)
    kills = midway = 0
    for attempt in range(6):
        dst = tmp_path / f"out{attempt}.zarr"
        first = True
        while True:
            mode = [] if first else ["--resume"]
            first = False
            with subprocess.Popen([sys.executable, str(script), str(src), str(dst), *args,
                                   *mode]) as proc:
                try:
                    proc.wait(timeout=float(rng.uniform(0.2, took)))
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=30)
                    kills += 1
                    midway += (dst / JOURNAL).exists() and not (dst / "zarr.json").exists()
                    continue
            assert proc.returncode == 0
            break
        assert files(dst) == want, f"attempt {attempt}"
    assert kills >= 5 and midway >= 3, (kills, midway)


@pytest.mark.skipif(not hasattr(_core, "downsample"),
                    reason="the native downsampling kernels are not built yet")
def test_levels_adds_levels_beyond_the_source(data: Path, tmp_path: Path) -> None:
    src = data / "ome_zarr_py_04.zarr"
    dst = tmp_path / "more.zarr"
    assert run(str(src), str(dst), "--levels", "4") == 0
    image = ngffcore.open(str(dst))
    # z (2 µm) is no coarser than y/x after the step (4 µm): all three halve
    assert [lv.shape for lv in image.levels][3] == (2, 4, 8, 12)
    base = zarr.open_array(str(src / "s2"), mode="r")[...].astype(np.float64)
    want = base.reshape(2, 4, 2, 8, 2, 12, 2).mean(axis=(2, 4, 6))
    np.testing.assert_allclose(image.levels[3].read(), np.round(want), atol=1)
    for k in range(3):  # copied, not recomputed
        np.testing.assert_array_equal(image.levels[k].read(), zarr.open_array(
            str(src / f"s{k}"), mode="r")[...])
    assert ngffcore.validate(str(dst)) == []


def test_s3_destination_and_source(data: Path, tmp_path: Path, moto_s3: Any) -> None:
    """Any writable store: convert into S3 (moto), then from S3 back to a local 0.4 copy."""
    _endpoint, client, options = moto_s3
    client.create_bucket(Bucket="convert")
    src = data / "plate_04.zarr"
    url = "s3://convert/plate.ome.zarr"
    convert(str(src), url, version="0.5", dest_options=options)
    assert ngffcore.validate(url, **options) == []
    back = tmp_path / "back.zarr"
    convert(url, str(back), version="0.4", source_options=options)
    assert_same_content(src, back, "0.4")
