"""``ngffcore bench``, run in-process through ``main(argv)`` on images written by
ome-zarr-py and ngff-zarr, local and over the HTTP test server.

Expectations are computed here without ngffcore: the tile universe from the levels' shapes
as zarr-python reads them, each tile's box from its grid position, the chunks (and shards)
a tile touches from zarr-python's chunk shapes, the chunk objects' sizes from the files on
disk, and the requests from the server's own log.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from ngffcore.cli.bench import byte_size, channel_list
from ngffcore.cli.main import main
from ome_writers import (
    ImageExpect,
    expect_image,
    write_bioformats2raw,
    write_ngff_zarr_image,
    write_ome_zarr_image,
    write_ome_zarr_plate,
)
from servers import RangeServer

# ome-zarr-py czyx uint16 (2, 8, 64, 96), levels y/x 64×96, 32×48, 16×24, chunks (1, 4, 32, 32)
C, Z, Y, X = 0, 1, 2, 3


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bench")
    out: dict[str, Any] = {"root": root}
    out["v04"] = write_ome_zarr_image(root, "0.4")
    out["v05"] = write_ome_zarr_image(root, "0.5", with_labels=False)
    out["sharded"] = write_ngff_zarr_image(root, "0.5", chunks_per_shard=2)
    out["plate"] = write_ome_zarr_plate(root, "0.4")
    out["collection"] = write_bioformats2raw(root, "0.4")
    array = zarr.create_array(root / "array.zarr", shape=(30, 20), chunks=(8, 8), dtype="int32")
    array[:] = 1
    return out


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main(["bench", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    return code, out, err


def bench_json(capsys: pytest.CaptureFixture[str], *argv: Any) -> dict[str, Any]:
    code, out, err = run(capsys, *argv, "--json", "-")
    assert code == 0, err
    return json.loads(out)


def rel(data: dict[str, Any], image: ImageExpect) -> str:
    return image.path.relative_to(data["root"]).as_posix()


# -- independent expectations ----------------------------------------------------------------

def grid(n: int, size: int) -> int:
    return -(-n // size)


def universe(image: ImageExpect, size: int, levels: Iterable[int] | None = None) -> int:
    levels = range(len(image.levels)) if levels is None else levels
    return sum(grid(image.levels[i].shape[Y], size) * grid(image.levels[i].shape[X], size)
               for i in levels)


def cells(box: list[int], step: int) -> range:
    return range(box[0] // step, (box[1] - 1) // step + 1)


def touched(image: ImageExpect, item: dict[str, Any], channels: Iterable[int] = (0, 1),
            grid_of: str = "chunks") -> set[tuple[int, ...]]:
    """(level, c, z, y, x) grid cells of a czyx item: chunks, or shards with ``grid_of``."""
    shape = getattr(image.levels[item["level"]], grid_of)
    return {(item["level"], c // shape[C], item["z"] // shape[Z], cy, cx)
            for c in channels for cy in cells(item["y"], shape[Y])
            for cx in cells(item["x"], shape[X])}


def new_chunks(image: ImageExpect, items: list[dict[str, Any]], channels: Iterable[int] = (0, 1)
               ) -> list[int]:
    """Chunks each item decodes through a cache that starts empty: those no earlier item
    touched."""
    seen: set[tuple[int, ...]] = set()
    out = []
    for item in items:
        chunks = touched(image, item, channels)
        out.append(len(chunks - seen))
        seen |= chunks
    return out


def check_tiles(image: ImageExpect, items: list[dict[str, Any]], size: int) -> None:
    """Distinct tiles whose boxes are their grid cells (edge tiles clipped)."""
    assert len({(i["level"], i["t"], i["z"], i["row"], i["col"]) for i in items}) == len(items)
    for item in items:
        shape = image.levels[item["level"]].shape
        row, col = item["row"], item["col"]
        assert item["y"] == [row * size, min((row + 1) * size, shape[Y])]
        assert item["x"] == [col * size, min((col + 1) * size, shape[X])]


def check_latency(p: dict[str, Any]) -> None:
    lat = p["latency_ms"]
    ms = sorted(i["ms"] for i in p["items"])
    assert lat["min"] == pytest.approx(ms[0]) and lat["max"] == pytest.approx(ms[-1])
    assert lat["min"] <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert lat["mean"] == pytest.approx(sum(ms) / len(ms))
    assert lat["p50"] == pytest.approx(float(np.median(ms)))
    assert p["items_per_second"] == pytest.approx(p["count"] / p["seconds"])
    assert p["pixel_bytes"] == sum(i["pixel_bytes"] for i in p["items"])
    assert p["pixel_mb_per_second"] == pytest.approx(p["pixel_bytes"] / 1e6 / p["seconds"])


# -- local -----------------------------------------------------------------------------------

def test_local_tiles_cold_then_warm(data: dict[str, Any],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    image = data["v04"]
    d = bench_json(capsys, image.path, "--tiles", 12, "--size", 20, "--seed", 3)
    assert (d["version"], d["tool"], d["store"]) == (1, "ngffcore bench", "local")
    assert d["url"] == f"file://{image.path}"
    assert (d["image"]["axes"], d["image"]["dtype"], d["image"]["channels"]) == (
        "czyx", "uint16", 2)
    assert [lv["shape"] for lv in d["image"]["levels"]] == [list(lv.shape) for lv in image.levels]
    # y/x tiles of 20 px: 4×5 + 2×3 + 1×2
    assert [lv["tiles"] for lv in d["image"]["levels"]] == [20, 6, 2]
    assert universe(image, 20) == 28
    assert d["settings"]["levels"] == [0, 1, 2] and d["settings"]["tiles"] == 12
    assert d["open"]["requests"] is None and d["open"]["seconds"] > 0
    cold, warm = d["passes"]["cold"], d["passes"]["warm"]
    assert d["passes"]["rois"] is None
    assert (cold["kind"], cold["cache_state"], warm["cache_state"]) == ("tiles", "cold", "warm")
    assert cold["count"] == warm["count"] == len(cold["items"]) == 12
    items = cold["items"]
    check_tiles(image, items, 20)
    assert all(i["t"] is None and i["z"] == 0 for i in items)  # no rdefs: plane z=0
    strip = [{k: v for k, v in i.items() if k in ("level", "z", "row", "col", "y", "x")}
             for i in items]
    assert strip == [{k: v for k, v in i.items() if k in ("level", "z", "row", "col", "y", "x")}
                     for i in warm["items"]]  # the same tiles in the same order
    for item in items:
        h, w = item["y"][1] - item["y"][0], item["x"][1] - item["x"][0]
        assert item["pixel_bytes"] == 2 * h * w * 2
        assert item["requests"] is None and item["fetched_bytes"] is None
    # a cache that starts empty decodes each chunk once; the rest of the lookups hit
    expected = new_chunks(image, items)
    assert [i["cache_misses"] for i in items] == [i["chunks"] for i in items] == expected
    assert [i["cache_hits"] for i in items] == [len(touched(image, i)) - n
                                                for i, n in zip(items, expected)]
    assert cold["chunks"] == cold["cache"]["misses"] == sum(expected)
    assert cold["cache"]["evictions"] == 0
    assert cold["requests"] is None and cold["fetched_bytes"] is None
    # warm: every lookup hits
    assert [i["cache_misses"] for i in warm["items"]] == [0] * 12
    assert [i["cache_hits"] for i in warm["items"]] == [len(touched(image, i)) for i in items]
    assert warm["cache"]["hit_rate"] == 1.0 and warm["chunks"] == 0
    check_latency(cold)
    check_latency(warm)
    by_level = cold["by_level"]
    assert sum(v["count"] for v in by_level.values()) == 12
    for level, v in by_level.items():
        mine = [i for i in items if i["level"] == int(level)]
        assert v["chunks_per_item"] == pytest.approx(sum(i["chunks"] for i in mine) / len(mine))


def test_the_seed_decides_the_tiles(data: dict[str, Any],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = data["v04"].path

    def tiles(*argv: Any) -> list[tuple[int, int, int]]:
        d = bench_json(capsys, path, "--size", 20, "--tiles", 10, "--no-warm", *argv)
        return [(i["level"], i["row"], i["col"]) for i in d["passes"]["cold"]["items"]]

    assert tiles("--seed", 7) == tiles("--seed", 7)
    assert tiles("--seed", 7) != tiles("--seed", 8)
    assert tiles() == tiles("--seed", 0)  # default seed 0
    # --level restricts the universe: level 1 has 2×3 tiles of 20 px, all of them read
    d = bench_json(capsys, path, "--size", 20, "--level", 1, "--no-warm")
    items = d["passes"]["cold"]["items"]
    assert sorted((i["row"], i["col"]) for i in items) == [(r, c) for r in range(2)
                                                           for c in range(3)]
    assert d["passes"]["warm"] is None
    assert bench_json(capsys, path, "--size", 20, "--level", "-1", "--tiles", "1")[
        "settings"]["levels"] == [2]


def test_channels_and_random_planes(data: dict[str, Any],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    image = data["v04"]
    d = bench_json(capsys, image.path, "--size", 32, "--tiles", 30, "--channels", "1",
                   "--planes", "random", "--seed", 5)
    items = d["passes"]["cold"]["items"]
    # tiles of 32 px: 2×3 + 1×2 + 1×1 per plane, 8 z planes each
    assert [lv["tiles"] for lv in d["image"]["levels"]] == [48, 16, 8]
    assert len(items) == 30
    assert all(0 <= i["z"] < 8 for i in items) and len({i["z"] for i in items}) > 1
    check_tiles(image, items, 32)
    assert [i["chunks"] for i in items] == new_chunks(image, items, channels=(1,))
    for item in items:
        h, w = item["y"][1] - item["y"][0], item["x"][1] - item["x"][0]
        assert item["pixel_bytes"] == h * w * 2  # one channel
    assert d["settings"]["channels"] == [1] and d["settings"]["planes"] == "random"


def test_rois_touch_the_chunks_of_their_box(data: dict[str, Any],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    image = data["v04"]
    d = bench_json(capsys, image.path, "--tiles", 2, "--rois", 6, "--roi-size", 40,
                   "--seed", 11)
    rois = d["passes"]["rois"]
    assert (rois["kind"], rois["cache_state"], rois["count"]) == ("rois", "off", 6)
    for item in rois["items"]:
        shape = image.levels[item["level"]].shape
        assert item["row"] is None and item["col"] is None and item["z"] == 0
        for axis, box in ((Y, item["y"]), (X, item["x"])):
            assert 0 <= box[0] < box[1] <= shape[axis]
            assert box[1] - box[0] == min(40, shape[axis])
        # no cache: every chunk the box touches is decoded
        assert item["chunks"] == len(touched(image, item))
        assert item["cache_hits"] is None and item["requests"] is None
        h, w = item["y"][1] - item["y"][0], item["x"][1] - item["x"][0]
        assert item["pixel_bytes"] == 2 * h * w * 2
    assert rois["cache"] is None
    assert rois["chunks"] == sum(i["chunks"] for i in rois["items"])
    check_latency(rois)
    # the ROIs do not depend on how many tiles were drawn before them
    again = bench_json(capsys, image.path, "--tiles", 5, "--rois", 6, "--roi-size", 40,
                       "--seed", 11)
    assert [(i["level"], i["y"], i["x"]) for i in again["passes"]["rois"]["items"]] == [
        (i["level"], i["y"], i["x"]) for i in rois["items"]]


def test_a_small_cache_shows_in_the_warm_pass(data: dict[str, Any],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # one decoded chunk is 1×4×32×32×2 = 8 KiB: a 1 KiB cache holds none
    code, out, err = run(capsys, data["v04"].path, "--size", 32, "--tiles", 4,
                         "--cache-bytes", "1K")
    assert code == 0, err
    assert "warm: " in out and "missed the cache" in out and "--cache-bytes 1.0 KiB" in out
    d = bench_json(capsys, data["v04"].path, "--size", 32, "--tiles", 4, "--cache-bytes", "1K")
    assert d["settings"]["cache_bytes"] == 1024
    warm = d["passes"]["warm"]
    assert warm["cache"]["hits"] == 0 and warm["chunks"] == d["passes"]["cold"]["chunks"] > 0


# -- remote ----------------------------------------------------------------------------------

def test_remote_requests_are_the_chunks_and_the_server_log(
        data: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    image = data["v05"]
    with RangeServer(str(data["root"])) as server:
        d = bench_json(capsys, f"{server.url}/{rel(data, image)}", "--zarr-format", "3",
                       "--tiles", 15, "--size", 20, "--seed", 1, "--option", "concurrency=8")
        log = server.state.requests()
    assert d["store"] == "remote" and d["url"] == f"{server.url}/{rel(data, image)}"
    assert all(r.method == "GET" for r in log)
    opened, cold, warm = d["open"], d["passes"]["cold"], d["passes"]["warm"]
    # 0.5 with the format given: the group, then each level's zarr.json
    assert opened["requests"] == {"total": 4, "get": 4, "range_get": 0, "suffix_get": 0,
                                  "not_found": 0, "errors": 0}
    assert opened["fetched_bytes"] == sum(
        (image.path / p / "zarr.json").stat().st_size for p in ("", "s0", "s1", "s2"))
    items = cold["items"]
    check_tiles(image, items, 20)
    expected = new_chunks(image, items)
    # one GET per chunk not cached yet; its bytes are the chunk object's
    assert [i["requests"]["total"] for i in items] == [i["requests"]["get"] for i in items] \
        == [i["cache_misses"] for i in items] == expected
    seen: set[tuple[int, ...]] = set()
    for item in items:
        chunks = touched(image, item) - seen
        seen |= chunks
        assert item["fetched_bytes"] == sum(
            (image.path / image.levels[lv].path / "c" / str(c) / str(z) / str(y) / str(x))
            .stat().st_size for lv, c, z, y, x in chunks)
    assert cold["requests"]["total"] == sum(expected)
    assert cold["requests_per_item"]["get"] == pytest.approx(sum(expected) / len(items))
    assert cold["fetched_bytes"] == sum(i["fetched_bytes"] for i in items)
    # warm: nothing sent
    assert warm["requests"]["total"] == 0 and warm["fetched_bytes"] == 0
    assert all(i["requests"]["total"] == 0 for i in warm["items"])
    # everything the server saw is accounted for
    assert len(log) == opened["requests"]["total"] + cold["requests"]["total"]


def test_remote_sharded_counts_requests_by_kind(data: dict[str, Any],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    image = data["sharded"]
    # zyx (8, 64, 64), inner chunks (8, 16, 16), shards (8, 32, 32) on levels 0 and 1 (level
    # 2 is one chunk per shard: read whole, index included); a 16-px tile needs one inner
    # chunk, a quarter of its shard: the shard's index, then one ranged GET
    assert [lv.shards for lv in image.levels[:2]] == [(8, 32, 32)] * 2
    with RangeServer(str(data["root"])) as server:
        d = bench_json(capsys, f"{server.url}/{rel(data, image)}", "--tiles", 12, "--size", 16,
                       "--level", 0, "--level", 1, "--rois", 2, "--roi-size", 24)
        log = server.state.requests()
    cold, warm, rois = (d["passes"][k] for k in ("cold", "warm", "rois"))
    items = cold["items"]

    def cells_of(item: dict[str, Any], grid_of: str) -> set[tuple[int, ...]]:
        shape = getattr(image.levels[item["level"]], grid_of)
        return {(item["level"], cy, cx) for cy in cells(item["y"], shape[1])
                for cx in cells(item["x"], shape[2])}

    shards: set[tuple[int, ...]] = set()
    chunks: set[tuple[int, ...]] = set()
    for item in items:
        assert item["z"] == 0
        new = cells_of(item, "chunks") - chunks
        assert item["cache_misses"] == len(new)
        chunks |= new
        shards |= cells_of(item, "shards")
    # one index (suffix) request per shard, cached on the array; data by range or whole
    assert cold["requests"]["suffix_get"] == len(shards)
    assert cold["requests"]["total"] == sum(cold["requests"][k] for k in
                                            ("get", "range_get", "suffix_get"))
    assert cold["requests"]["range_get"] == cold["chunks"] == len(chunks) == 12
    assert cold["requests"]["get"] == 0
    assert [i["requests"]["total"] for i in items] == [
        1 + (i["requests"]["suffix_get"] == 1) for i in items]
    assert warm["requests"]["total"] == 0
    assert rois["requests"]["total"] > 0 and rois["cache"] is None
    assert len(log) == sum(p["requests"]["total"] for p in (d["open"], cold, warm, rois))


def test_latency_is_in_the_cold_pass_not_the_warm_one(
        data: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    image = data["v04"]
    with RangeServer(str(data["root"]), latency=0.02) as server:
        url = f"{server.url}/{rel(data, image)}"
        # 32-px tiles are chunk-aligned: 9 tiles of 2 chunks each, none shared
        d = bench_json(capsys, url, "--size", 32, "--tiles", 9)
        assert server.state.counts()["GET"] == d["open"]["requests"]["total"] + 18
        server.state.clear()
        k = bench_json(capsys, url, "--size", 32, "--tiles", 9, "--concurrency", 4)
        assert server.state.counts()["GET"] == k["open"]["requests"]["total"] + 18
    cold, warm = d["passes"]["cold"], d["passes"]["warm"]
    # 0.4 at the root: zarr.json (404), .zattrs, then the three .zarray together
    assert d["open"]["requests"]["not_found"] == 1 and d["open"]["requests"]["total"] == 5
    assert d["open"]["seconds"] >= 0.04
    assert [i["requests"]["get"] for i in cold["items"]] == [2] * 9
    assert cold["latency_ms"]["min"] >= 20.0  # every cold tile waits for the server
    assert warm["latency_ms"]["p50"] < cold["latency_ms"]["p50"]
    assert warm["requests"]["total"] == 0
    check_latency(cold)
    # K in flight: counts per pass only; the pass takes less than its reads' latencies
    kc = k["passes"]["cold"]
    assert k["settings"]["concurrency"] == 4
    assert kc["count"] == 9 and kc["requests"]["total"] == 18
    assert all(i["requests"] is None and i["cache_misses"] is None and i["chunks"] is None
               for i in kc["items"])
    assert kc["chunks"] == kc["cache"]["misses"] == 18
    assert kc["seconds"] < sum(i["ms"] for i in kc["items"]) / 1000
    assert kc["latency_ms"]["min"] >= 20.0
    assert k["passes"]["warm"]["requests"]["total"] == 0
    assert sorted((i["level"], i["row"], i["col"]) for i in kc["items"]) == sorted(
        (i["level"], i["row"], i["col"]) for i in cold["items"])


def test_remote_rois_send_one_get_per_chunk(data: dict[str, Any],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    image = data["v04"]
    with RangeServer(str(data["root"])) as server:
        d = bench_json(capsys, f"{server.url}/{rel(data, image)}", "--tiles", 0, "--rois", 5,
                       "--roi-size", 50, "--concurrency", 2)
        log = server.state.requests()
    rois = d["passes"]["rois"]
    assert d["passes"]["cold"]["count"] == 0 and d["passes"]["cold"]["latency_ms"] is None
    expected = sum(len(touched(image, i)) for i in rois["items"])
    assert rois["chunks"] == rois["requests"]["get"] == rois["requests"]["total"] == expected
    assert len(log) == d["open"]["requests"]["total"] + expected


# -- output ----------------------------------------------------------------------------------

def test_table_and_json_file(data: dict[str, Any], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bench.json"
    code, out, err = run(capsys, data["v04"].path, "--size", 20, "--tiles", 40, "--rois", 2,
                         "--json", path)
    assert code == 0 and err == ""  # stderr is no terminal here: no progress by default
    lines = out.splitlines()
    assert lines[0] == f"ngffcore bench file://{data['v04'].path} (local store)"
    header = next(line for line in lines if line.startswith("pass"))
    for column in ("items", "p50 ms", "p95 ms", "p99 ms", "mean ms", "max ms", "req/item",
                   "chunks/item", "hit %", "items/s", "px MB/s"):
        assert column in header
    rows = {line.split()[0]: line.split() for line in lines
            if line.split() and line.split()[0] in ("cold", "warm", "rois")}
    # 28 tiles of 20 px exist: all read once per pass
    assert rows["cold"][1] == rows["warm"][1] == "28" and rows["rois"][1] == "2"
    assert rows["warm"][10] == "100"  # hit %
    assert "only 28 distinct tiles at these levels (asked for 40)" in out
    assert "local store: no requests are counted" in out
    d = json.loads(path.read_text())
    assert d["passes"]["cold"]["count"] == 28 and d["settings"]["tiles"] == 40
    # --quiet: nothing printed, the file still written
    path.unlink()
    code, out, err = run(capsys, data["v04"].path, "--size", 20, "--quiet", "--json", path)
    assert (code, out, err) == (0, "", "")
    assert json.loads(path.read_text())["version"] == 1


def test_remote_table_shows_requests_by_kind(data: dict[str, Any],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with RangeServer(str(data["root"])) as server:
        code, out, err = run(capsys, f"{server.url}/{rel(data, data['v04'])}", "--size", 32,
                             "--no-warm")
    assert code == 0, err
    assert "(remote store)" in out
    assert "open " in out and "5 requests (5 get; 1 not found)" in out
    assert "cold: requests per item by kind: get 2.00" in out
    assert not any(line.startswith("warm") for line in out.splitlines())


def test_progress_counts_items(data: dict[str, Any], capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(capsys, data["v04"].path, "--size", 32, "--tiles", 3, "--rois", 1,
                       "--progress")
    assert code == 0
    assert err.count("\r[") == (1 + 3) * 2 + (1 + 1)  # 0 then each item, per pass
    assert "100% 3/3 cold tiles\n" in err and "100% 3/3 warm tiles\n" in err
    assert err.endswith("100% 1/1 rois\n")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert main(["bench", str(data["v04"].path), "--size", "32", "--tiles", "2"]) == 0
    assert "100% 2/2 warm tiles\n" in terminal.getvalue()  # a terminal gets it by default
    terminal.truncate(0)
    assert main(["bench", str(data["v04"].path), "--tiles", "2", "--quiet"]) == 0
    assert terminal.getvalue() == ""


# -- what gets benchmarked -------------------------------------------------------------------

def test_plates_wells_collections_and_labels(data: dict[str, Any],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    plate = data["plate"].path
    d = bench_json(capsys, plate, "--size", 16, "--tiles", 3)
    assert d["url"] == f"file://{plate}/A/1/0"  # the first well's first field
    assert d["image"]["levels"][0]["shape"] == [2, 24, 32]
    d = bench_json(capsys, plate, "--size", 16, "--tiles", 3, "--field", "B/3/1")
    assert d["url"] == f"file://{plate}/B/3/1"
    d = bench_json(capsys, plate / "A" / "2", "--size", 16, "--tiles", 3, "--field", "1")
    assert d["url"] == f"file://{plate}/A/2/1"
    coll = data["collection"].path
    d = bench_json(capsys, coll, "--size", 16, "--tiles", 3, "--series", "1")
    assert d["url"] == f"file://{coll}/1" and d["image"]["axes"] == "tczyx"
    assert all(i["t"] == 0 and i["z"] == 0 for i in d["passes"]["cold"]["items"])
    # tczyx (1, 1, 1, 24, 40): 2×3 tiles of 16 px on level 0, 1×2 on level 1
    assert [lv["tiles"] for lv in d["image"]["levels"]] == [6, 2]
    d = bench_json(capsys, data["v04"].path, "--size", 32, "--tiles", 3, "--label", "cells")
    assert d["url"].endswith("/labels/cells") and d["image"]["dtype"] == "uint8"
    assert d["image"]["channels"] is None
    expect = expect_image(data["v04"].path / "labels" / "cells")
    assert [lv["shape"] for lv in d["image"]["levels"]] == [list(lv.shape) for lv in expect.levels]


def test_errors_are_exit_2(data: dict[str, Any], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    image = data["v04"].path
    code, out, err = run(capsys, data["root"] / "array.zarr")
    assert code == 2 and out == ""
    assert "plain Zarr array, not an OME-Zarr image" in err and "Traceback" not in err
    code, _, err = run(capsys, tmp_path / "nothing-here.zarr")
    assert code == 2 and "nothing-here.zarr" in err
    for argv, message in ((["--level", "3"], "--level 3 out of range"),
                          (["--channels", "0,2"], "--channels 2 out of range"),
                          (["--tiles", "0"], "nothing to read"),
                          (["--field", "A/1/0"], "--field applies to plates and wells"),
                          (["--series", "1"], "--series applies to bioformats2raw")):
        code, _, err = run(capsys, image, *argv)
        assert code == 2 and message in err, (argv, err)
    for argv in (["--size", "0"], ["--concurrency", "0"], ["--tiles", "-1"],
                 ["--channels", "a"], ["--cache-bytes", "lots"], ["--planes", "all"]):
        assert run(capsys, image, *argv)[0] == 2, argv
    code, _, err = run(capsys, image, "--json", tmp_path / "no" / "such" / "dir.json")
    assert code == 2 and "cannot write" in err
    code, _, err = run(capsys, data["collection"].path, "--series", "1", "--channels", "1")
    assert code == 2 and "the image has 1 channel" in err


def test_option_parsers() -> None:
    assert channel_list("0,2") == [0, 2]
    assert channel_list("0-2,5") == [0, 1, 2, 5]
    assert byte_size("4096") == 4096
    assert byte_size("512M") == byte_size("512MiB") == 512 * 2**20
    assert byte_size("1.5k") == 1536 and byte_size("2G") == 2 * 2**30
    for bad in ("x", "1T", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            byte_size(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        channel_list("1,,2")
    assert math.isclose(byte_size("0.5K"), 512)
