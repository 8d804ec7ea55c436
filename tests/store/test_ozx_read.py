"""Zipped OME-Zarr (``.ozx``, RFC-9) read through ranged reads of the archive: locally, over
HTTP (``servers.RangeServer``, requests counted in its log) and from S3 (moto's server,
counted in the store's stats).

Archives are built here from images ``ngffcore.write_image`` wrote (0.5 sharded, 0.4 v2),
with Python's ``zipfile`` (stored entries, ``zarr.json`` first, breadth-first), one with
ZIP64 everywhere (records, extra fields, saturated EOCD fields), one with a 64 KiB comment
(the central directory then needs a second read), and one by hand with local headers
longer than the central ones say. Pixels are compared with zarr-python reading the
unzipped directory and with the source array; request counts are exact.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import zarr

import ngffcore
from ngffcore.store import LocalStore, Suffix, ZipStore, open_store
from ngffcore.store.ioloop import BODY_BUDGET
from ngffcore.store.zipstore import EXTRA_MARGIN, HEADER_GAP, TAIL_BYTES
from ngffcore.zarr.pipeline import Budget
from servers import RangeServer

HTTP = {"client_options": {"allow_http": True}}
SOURCE = np.random.default_rng(9).integers(0, 65535, (2, 512, 512), dtype=np.uint16)
METADATA = ("zarr.json", ".zattrs", ".zgroup", ".zarray")

# -- building archives --------------------------------------------------------------------


def _members(src: Path) -> list[str]:
    """Files of a directory tree as archive names: metadata documents first, breadth-first
    (the root's first), then the rest sorted (RFC-9's recommended order)."""
    names = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    meta = sorted((n for n in names if n.rsplit("/", 1)[-1] in METADATA),
                  key=lambda n: (n.count("/"), n))
    return meta + [n for n in names if n not in meta]


def zip_tree(src: Path, dst: Path, *, comment: bytes = b"", zip64: bool = False,
             deflate: tuple[str, ...] = ()) -> Path:
    """``src`` zipped to ``dst`` (stored; the names in ``deflate`` compressed). ``zip64``:
    ZIP64 everywhere (zipfile's limit patched to 0), and the EOCD's fields saturated as
    in an archive over 4 GiB, so only the ZIP64 records say where things are."""
    with mock.patch.object(zipfile, "ZIP64_LIMIT", 0 if zip64 else zipfile.ZIP64_LIMIT):
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
            for name in _members(src):
                z.write(src / name, name, zipfile.ZIP_DEFLATED if name in deflate else None)
            z.comment = comment
    if zip64:
        data = bytearray(dst.read_bytes())
        at = data.rindex(b"PK\x05\x06")
        assert data[at - 20:at - 16] == b"PK\x06\x07"  # the locator is there
        data[at + 8:at + 20] = struct.pack("<HHII", 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        dst.write_bytes(bytes(data))
    return dst


def raw_zip(files: list[tuple[str, bytes]], pad: dict[str, int]) -> bytes:
    """A stored ZIP archive written by hand: ``pad[name]`` bytes of an unknown extra field
    (id 0xCAFE) in that entry's local header only (as page-aligning writers do)."""
    out, central = bytearray(), bytearray()
    for name, data in files:
        raw, crc, n = name.encode(), zlib.crc32(data), len(data)
        extra = (struct.pack("<HH", 0xCAFE, pad[name] - 4) + bytes(pad[name] - 4)
                 if pad.get(name) else b"")
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21, crc,
                               n, n, len(raw), 0, 0, 0, 0, 0, len(out)) + raw
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc, n, n,
                           len(raw), len(extra)) + raw + extra + data
    k = len(files)
    return bytes(out + central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, k, k,
                                             len(central), len(out), 0))


def infos(path: Path) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None  # zipfile reads every entry back: a valid archive
        return {i.filename: i for i in z.infolist()}


def in_tail(path: Path) -> set[str]:
    """Entries whose local header lies in the bytes the open reads (served without a request)."""
    start = path.stat().st_size - TAIL_BYTES
    return {n for n, i in infos(path).items() if i.header_offset >= start}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("ozx")
    src = root / "src"
    ngffcore.write_image(src / "img05.zarr", SOURCE, axes="cyx", chunks=(1, 64, 64),
                         shards=(1, 256, 256), levels=2)
    ngffcore.write_image(src / "img04.zarr", SOURCE, axes="cyx", chunks=(1, 64, 64), levels=2,
                         version="0.4")
    ngffcore.write_image(src / "small.zarr", SOURCE[:, :32, :32], axes="cyx",
                         chunks=(1, 16, 16), levels=1)
    pub = root / "pub"
    pub.mkdir()
    rfc9 = json.dumps({"ome": {"version": "0.5"}}).encode() + b"\0"
    zip_tree(src / "img05.zarr", pub / "img05.ozx", comment=rfc9)
    zip_tree(src / "img04.zarr", pub / "img04.ozx")
    zip_tree(src / "small.zarr", pub / "small.ozx", comment=rfc9)
    zip_tree(src / "img05.zarr", pub / "zip64.ozx", zip64=True)
    pad = json.dumps({"ome": {"version": "0.4"}, "pad": ""}).encode()
    zip_tree(src / "img04.zarr", pub / "comment.ozx",
             comment=pad[:-2] + b"x" * (65534 - len(pad)) + b'"}\0')
    files = [(n, (src / "img05.zarr" / n).read_bytes()) for n in _members(src / "img05.zarr")]
    (pub / "padded.ozx").write_bytes(raw_zip(files, {n: 300 for n, _ in files if "/c/" in n}))
    return src, pub


def reference(src: Path, image: str, level: int) -> np.ndarray:
    """The level as zarr-python reads it from the unzipped directory."""
    out = zarr.open_array(src / f"{image}.zarr" / str(level), mode="r")[...]
    if level == 0:
        np.testing.assert_array_equal(out, SOURCE)
    return out


def counts(store: Any) -> tuple[int, int, int]:
    c = store.stats.snapshot()
    return int(c["suffix_get"]), int(c["range_get"]), int(c["get"])


# -- local reads ---------------------------------------------------------------------------


def test_archives_are_what_the_tests_need(built):
    src, pub = built
    z64 = (pub / "zip64.ozx").read_bytes()
    assert b"PK\x06\x06" in z64[-TAIL_BYTES:]  # a ZIP64 end record
    assert z64[-22 + 10:-22 + 20] == b"\xff\xff" + b"\xff" * 8  # only ZIP64 says where
    assert all(i.header_offset < (pub / "img05.ozx").stat().st_size - TAIL_BYTES
               for n, i in infos(pub / "img05.ozx").items() if n.endswith("zarr.json"))
    assert list(infos(pub / "img05.ozx"))[0] == "zarr.json"
    assert len((pub / "small.ozx").read_bytes()) < TAIL_BYTES
    assert len(infos(pub / "comment.ozx")) > 100  # its directory is longer than 2 KiB


@pytest.mark.parametrize("name", ["img05", "zip64", "padded"])
def test_local_05_pixels_and_requests(built, name):
    src, pub = built
    store = open_store(str(pub / f"{name}.ozx"))
    assert isinstance(store, ZipStore) and store.local_root is None and store.inline
    img = ngffcore.open(store)
    assert img.version == "0.5" and img.url == f"file://{pub}/{name}.ozx"
    # the directory in one suffix read; the group's and the two levels' zarr.json one each
    assert counts(store) == (1, 3, 0)
    for level in (0, 1):
        store.stats.reset()
        got = img.levels[level][...]
        assert got.dtype == np.uint16
        np.testing.assert_array_equal(got, reference(src, "img05", level), strict=True)
        n_shards = 8 if level == 0 else 2
        # every shard is needed whole: one read of it (with its local header); a local
        # header longer than the central one plus the margin costs one more
        assert counts(store) == (0, n_shards * (2 if name == "padded" else 1), 0)
    store.stats.reset()
    img.levels[0][...]  # entries' data offsets are known now: one exact read per shard
    assert counts(store) == (0, 8, 0)


def test_local_05_partial_shard_reads(built):
    src, pub = built
    store = open_store(pub / "img05.ozx")
    img = ngffcore.open(store)
    level = img.levels[0]
    info = infos(pub / "img05.ozx")["0/c/0/0/0"]
    assert info.compress_size - 16 * 16 - 4 > HEADER_GAP  # the index is far from the header
    store.stats.reset()
    np.testing.assert_array_equal(level[0, 0:64, 0:64], SOURCE[0, 0:64, 0:64])
    # the shard's index (a suffix of the entry) and its local header, concurrently; then
    # the inner chunk
    assert counts(store) == (0, 3, 0)
    store.stats.reset()
    np.testing.assert_array_equal(level[0, 64:128, 0:256], SOURCE[0, 64:128, 0:256])
    assert counts(store) == (0, 1, 0)  # one run of 4 adjacent inner chunks: one read
    store.stats.reset()
    np.testing.assert_array_equal(level[1, 0:64, 256:320], SOURCE[1, 0:64, 256:320])
    assert counts(store) == (0, 3, 0)  # another shard: its header, index, chunk


def test_local_04_pixels_and_requests(built):
    src, pub = built
    store = open_store(pub / "img04.ozx")
    img = ngffcore.open(store)
    assert img.version == "0.4"
    # no zarr.json in the archive: its probe costs nothing; .zattrs and two .zarray
    assert counts(store) == (1, 3, 0)
    tail = in_tail(pub / "img04.ozx")
    assert 0 < len(tail) < 32  # the last chunks of level 1 came with the directory
    for level, prefix in ((0, "0/"), (1, "1/")):
        store.stats.reset()
        np.testing.assert_array_equal(img.levels[level][...], reference(src, "img04", level))
        chunks = [n for n in infos(pub / "img04.ozx") if n.startswith(prefix)
                  and n.rsplit("/", 1)[-1] not in METADATA]
        assert len(chunks) == (128 if level == 0 else 32)
        assert counts(store) == (0, len([c for c in chunks if c not in tail]), 0)


def test_small_archive_is_one_read(built):
    src, pub = built
    store = open_store(pub / "small.ozx")
    img = ngffcore.open(store)
    np.testing.assert_array_equal(img.levels[0][...], SOURCE[:, :32, :32])
    assert counts(store) == (1, 0, 0)  # everything came with the directory


def test_long_comment_costs_a_second_directory_read(built):
    src, pub = built
    store = open_store(pub / "comment.ozx")
    img = ngffcore.open(store, zarr_format=2)
    assert counts(store) == (1, 1 + 3, 0)  # the central directory, then the metadata
    np.testing.assert_array_equal(img.levels[1][...], reference(src, "img04", 1))


def test_budget_holds_exactly_what_is_returned(built):
    _, pub = built
    store = ZipStore(LocalStore(pub), "img05.ozx")
    size = infos(pub / "img05.ozx")["0/c/0/0/0"].compress_size

    async def read(key: str, rng: Any, store: Any = store) -> int:
        budget = Budget(1 << 30)
        token = BODY_BUDGET.set(budget)
        try:
            got = await store.get(key, rng)
        finally:
            BODY_BUDGET.reset(token)
        assert got is not None
        assert budget.held == len(memoryview(got.data))
        return budget.held

    # far from the header (two reads), then exact; a whole entry; an entry from the tail
    assert asyncio.run(read("0/c/0/0/0", (size - 260, size))) == 260
    assert asyncio.run(read("0/c/0/0/0", (10, 20))) == 10
    assert asyncio.run(read("0/c/0/1/1", None)) == infos(pub / "img05.ozx")["0/c/0/1/1"].file_size
    assert asyncio.run(read("zarr.json", (0, 5), ZipStore(LocalStore(pub), "small.ozx"))) == 5


def test_store_protocol(built, tmp_path):
    _, pub = built
    (tmp_path / "SMALL.OZX").write_bytes((pub / "small.ozx").read_bytes())
    assert isinstance(open_store(tmp_path / "SMALL.OZX"), ZipStore)
    assert isinstance(open_store(f"file://{tmp_path}/SMALL.OZX"), ZipStore)
    store = open_store(pub / "img05.ozx")
    assert isinstance(store, ZipStore)
    assert store.identity == ("zip", LocalStore(pub).identity, "img05.ozx")
    again = pickle.loads(pickle.dumps(store))
    assert again.identity == store.identity
    assert asyncio.run(store.list_prefix("1/")) == sorted(
        n for n in infos(pub / "img05.ozx") if n.startswith("1/"))
    assert asyncio.run(store.get("nope")) is None
    parts = asyncio.run(store.get_ranges("0/c/0/0/1", [(0, 4), (8, 8), (10, 30)]))
    raw = zipfile.ZipFile(pub / "img05.ozx").read("0/c/0/0/1")
    assert [bytes(p) for p in parts] == [raw[0:4], b"", raw[10:30]]
    got = asyncio.run(store.get("0/c/0/0/1", Suffix(7)))
    assert bytes(got.data) == raw[-7:] and got.size == len(raw)
    with pytest.raises(ngffcore.ReadOnlyError):
        asyncio.run(store.put("x", b"1"))
    with pytest.raises(ngffcore.ReadOnlyError, match="img05.ozx"):
        ngffcore.write_image(pub / "img05.ozx", SOURCE[:, :8, :8], axes="cyx", overwrite=True)


def test_directory_named_ozx_is_a_directory(built):
    src, _ = built
    os.rename(src / "small.zarr", src / "dir.ozx")
    try:
        assert isinstance(open_store(src / "dir.ozx"), LocalStore)
        img = ngffcore.open(src / "dir.ozx")
        np.testing.assert_array_equal(img.levels[0][...], SOURCE[:, :32, :32])
    finally:
        os.rename(src / "dir.ozx", src / "small.zarr")


# -- HTTP ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(built):
    with RangeServer(str(built[1])) as srv:
        yield srv


def _log(srv: RangeServer, name: str) -> list[str | None]:
    reqs = srv.state.requests()
    assert all(r.method == "GET" and r.path == f"/{name}" for r in reqs), reqs
    return [r.range for r in reqs]


@pytest.mark.parametrize("name", ["img05", "zip64"])
def test_http_05(built, server, name):
    src, pub = built
    server.state.reset()
    img = ngffcore.open(f"{server.url}/{name}.ozx", **HTTP)
    assert img.url == f"{server.url}/{name}.ozx"
    ranges = _log(server, f"{name}.ozx")
    assert ranges[0] == f"bytes=-{TAIL_BYTES}" and len(ranges) == 4
    size = (pub / f"{name}.ozx").stat().st_size
    spans = dict(tuple(map(int, r[6:].split("-"))) for r in ranges[1:])  # type: ignore
    assert ranges[1] == f"bytes={min(spans)}-{spans[min(spans)]}"  # the root's first
    for doc in ("zarr.json", "0/zarr.json", "1/zarr.json"):
        i = infos(pub / f"{name}.ozx")[doc]
        # one read from the local header to the data's end (+ the margin), inside the file
        a, b = i.header_offset, spans[i.header_offset]
        assert b < size
        assert b + 1 >= a + 30 + len(doc) + i.file_size
        assert b + 1 == a + 30 + len(doc) + len(i.extra) + EXTRA_MARGIN + i.file_size
    server.state.clear()
    np.testing.assert_array_equal(img.levels[0][...], SOURCE, strict=True)
    assert len(_log(server, f"{name}.ozx")) == 8  # one per shard
    server.state.clear()
    level = img.levels[1]
    np.testing.assert_array_equal(level[1, 0:64, 0:64], reference(src, "img05", 1)[1, :64, :64])
    # the shard's local header and index concurrently, then the chunk
    assert len(_log(server, f"{name}.ozx")) == 3
    server.state.clear()
    np.testing.assert_array_equal(level[1, 64:128, :64], reference(src, "img05", 1)[1, 64:128, :64])
    assert len(_log(server, f"{name}.ozx")) == 1


def test_http_04(built, server):
    src, pub = built
    server.state.reset()
    img = ngffcore.open(f"{server.url}/img04.ozx", zarr_format=2, **HTTP)
    assert len(_log(server, "img04.ozx")) == 1 + 3
    server.state.clear()
    np.testing.assert_array_equal(img.levels[0][0:2, 0:128, 0:128], SOURCE[:, :128, :128])
    assert len(_log(server, "img04.ozx")) == 8  # one per chunk


def test_http_missing_archive(server):
    with pytest.raises(ngffcore.NotFoundError, match="nope.ozx"):
        ngffcore.open(f"{server.url}/nope.ozx", **HTTP)


# -- S3 ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(moto_s3, built):
    _, client, options = moto_s3
    client.create_bucket(Bucket="ozx")
    for name in ("img05.ozx", "img04.ozx", "zip64.ozx"):
        client.upload_file(str(built[1] / name), "ozx", f"sub/{name}")
    return options


@pytest.mark.parametrize("name", ["img05", "zip64"])
def test_s3_05(built, s3, name):
    src, _ = built
    img = ngffcore.open(f"s3://ozx/sub/{name}.ozx", **s3)
    assert counts(img) == (1, 3, 0)
    img.stats.reset()
    np.testing.assert_array_equal(img.levels[1][...], reference(src, "img05", 1), strict=True)
    assert counts(img) == (0, 2, 0)
    img.stats.reset()
    np.testing.assert_array_equal(img.levels[0][0, 300:320, 0:64], SOURCE[0, 300:320, 0:64])
    assert counts(img) == (0, 3, 0)  # header and index concurrently, then the chunk


def test_s3_04(built, s3):
    src, _ = built
    img = ngffcore.open("s3://ozx/sub/img04.ozx", **s3)
    assert counts(img) == (1, 3, 0)
    img.stats.reset()
    np.testing.assert_array_equal(img.levels[0][1, 0:64, 0:192], SOURCE[1, :64, :192])
    assert counts(img) == (0, 3, 0)


# -- archives that lie -------------------------------------------------------------------


@pytest.fixture
def small(built, tmp_path):
    """A copy of small.ozx's bytes, and where to write a spoiled one."""
    return bytearray((built[1] / "small.ozx").read_bytes()), tmp_path / "bad.ozx"


def _open_bad(path: Path, data: bytes) -> Any:
    path.write_bytes(bytes(data))
    return ngffcore.open(path)


@pytest.mark.parametrize("spoil,match", [
    (lambda d: d[:-30], "no end-of-central-directory"),  # truncated
    (lambda d: d[:len(d) // 2], "no end-of-central-directory"),
    (lambda d: d.replace(b"PK\x05\x06", b"PK\x05\x07"), "no end-of-central-directory"),
    (lambda d: b"", "too short"),
    (lambda d: bytes(range(256)) * 4, "no end-of-central-directory"),
])
def test_hostile_end(small, spoil, match):
    data, path = small
    with pytest.raises(ngffcore.MetadataError, match=match) as err:
        _open_bad(path, spoil(bytes(data)))
    assert "bad.ozx" in str(err.value)


def _eocd(data: bytearray) -> int:
    return data.rindex(b"PK\x05\x06")


def test_hostile_directory_offsets(small):
    data, path = small
    at = _eocd(data)
    cd_size, cd_off = struct.unpack_from("<II", data, at + 12)
    for size, off in ((cd_size, len(data) + 1000), (cd_size + 10, cd_off),
                      (cd_size, cd_off - 1), (0xFFFFFFFF, cd_off)):
        bad = bytearray(data)
        struct.pack_into("<II", bad, at + 12, size, off)
        with pytest.raises(ngffcore.MetadataError, match="bad.ozx.*central directory"):
            _open_bad(path, bad)


def test_hostile_entry_sizes(small):
    data, path = small
    first = data.index(b"PK\x01\x02")  # the central entry of zarr.json
    for size in (len(data), 0xFFFFFFF0):
        bad = bytearray(data)
        struct.pack_into("<II", bad, first + 20, size, size)
        with pytest.raises(ngffcore.MetadataError, match="'zarr.json'.*runs past"):
            _open_bad(path, bad)
    bad = bytearray(data)
    struct.pack_into("<I", bad, first + 20, 7)  # stored, but sizes disagree
    with pytest.raises(ngffcore.MetadataError, match="'zarr.json' is stored"):
        _open_bad(path, bad)


def test_hostile_local_header(built, tmp_path):
    pub = built[1]
    data = bytearray((pub / "img05.ozx").read_bytes())
    at = infos(pub / "img05.ozx")["0/c/1/0/0"].header_offset
    assert at < len(data) - TAIL_BYTES  # read with a ranged read, not from the tail
    data[at + 30] ^= 1  # its name in the local header
    img = _open_bad(tmp_path / "bad.ozx", data)
    np.testing.assert_array_equal(img.levels[0][0, :256, :256], SOURCE[0, :256, :256])
    with pytest.raises(ngffcore.MetadataError, match=r"bad.ozx/0/c/1/0/0.*local header"):
        img.levels[0][1, :256, :256]


def test_compressed_entry(built, tmp_path):
    src = built[0] / "img05.zarr"
    path = zip_tree(src, tmp_path / "deflated.ozx", deflate=("1/c/0/0/0",))
    img = ngffcore.open(path)
    np.testing.assert_array_equal(img.levels[0][...], SOURCE)
    with pytest.raises(ngffcore.UnsupportedError, match=r"deflated.ozx/1/c/0/0/0.*deflate"):
        img.levels[1][...]


def test_not_ome_zarr(built, tmp_path):
    with zipfile.ZipFile(tmp_path / "plain.ozx", "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ngffcore.MetadataError, match="plain.ozx.*no zarr.json"):
        ngffcore.open(tmp_path / "plain.ozx")
    with zipfile.ZipFile(tmp_path / "nested.ozx", "w") as z:
        for name in _members(built[0] / "small.zarr"):
            z.write(built[0] / "small.zarr" / name, f"small.zarr/{name}")
    with pytest.raises(ngffcore.MetadataError, match="found 'small.zarr/zarr.json'"):
        ngffcore.open(tmp_path / "nested.ozx")
    with pytest.raises(ngffcore.NotFoundError, match="missing.ozx"):
        ngffcore.open(tmp_path / "missing.ozx")
