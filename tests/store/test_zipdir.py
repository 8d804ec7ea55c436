"""The ZIP directory parser (``ngffcore.store.zipdir``) on archives Python's ``zipfile``
writes, checked against ``zipfile``'s own reading of them; its refusals of archives that
lie; and a seeded fuzz: random byte flips and cuts of a small archive, read whole through a
``ZipStore`` over a store that checks every read lies inside the archive, never raise
anything but an ``NgffError``."""

from __future__ import annotations

import io
import random
import struct
import zipfile
from typing import Any
from unittest import mock

import pytest

import ngffcore
from ngffcore.store import MemoryStore, ZipStore
from ngffcore.store import zipdir
from ngffcore.store.protocol import Suffix
from ngffcore.store.sync import run_sync

URL = "memory://a.ozx"
FILES = [("zarr.json", b'{"zarr_format": 3, "node_type": "group"}'),
         ("0/zarr.json", b'{"zarr_format": 3}'), ("0/c/0/0", bytes(range(200))),
         ("0/c/0/1", b"x" * 50), ("empty", b"")]


def build(files: list[tuple[str, bytes]] = FILES, *, comment: bytes = b"", zip64: bool = False,
          method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with mock.patch.object(zipfile, "ZIP64_LIMIT", 0 if zip64 else zipfile.ZIP64_LIMIT):
        with zipfile.ZipFile(buf, "w", method) as z:
            for name, data in files:
                z.writestr(name, data)
            z.comment = comment
    return buf.getvalue()


def directory(data: bytes, tail: int | None = None) -> dict[str, zipdir.Entry]:
    """The entries as the store finds them: the end records from the last ``tail`` bytes."""
    tail_bytes = data[-tail:] if tail else data
    end = zipdir.find_end(tail_bytes, len(data), URL)
    if end.zip64_at is not None:
        end = zipdir.zip64_end(end, data[end.zip64_at:end.zip64_at + 56], URL)
    return zipdir.parse_central(data[end.cd_offset:end.cd_offset + end.cd_size], end, URL)


@pytest.mark.parametrize("zip64", [False, True])
@pytest.mark.parametrize("comment", [b"", b'{"ome": {"version": "0.5"}}\0',
                                     b"PK\x05\x06 a fake record in the comment" * 100])
def test_entries_match_zipfile(zip64, comment):
    data = build(comment=comment, zip64=zip64)
    assert (b"PK\x06\x06" in data) == zip64
    entries = directory(data)
    # zipfile reads the same archive without the comment (a comment holding an EOCD
    # signature misleads it: it takes the last one); the entries are the same bytes
    with zipfile.ZipFile(io.BytesIO(build(zip64=zip64))) as z:
        infos = z.infolist()
    assert list(entries) == [i.filename for i in infos]
    for info in infos:
        e = entries[info.filename]
        assert (e.header_at, e.size, e.method) == (info.header_offset, info.file_size, 0)
        at = e.header_at + zipdir.local_header_length(e, data[e.header_at:], len(data), URL)
        assert data[at:at + e.size] == dict(FILES)[info.filename]
    end = zipdir.find_end(data, len(data), URL)
    assert end.comment == comment and end.entries == len(FILES)


def test_directory_entries_are_left_out():
    data = build([("zarr.json", b"{}"), ("0/", b""), ("0/x", b"1")])
    assert list(directory(data)) == ["zarr.json", "0/x"]


def test_utf8_names():
    data = build([("zarr.json", b"{}"), ("größe/ä", b"1")])
    assert "größe/ä" in directory(data)


def _fail(data: bytes, match: str) -> None:
    with pytest.raises(ngffcore.MetadataError, match=match) as err:
        directory(data)
    assert URL in str(err.value)


def test_refusals():
    good = build()
    cd = good.index(b"PK\x01\x02")
    eocd = good.rindex(b"PK\x05\x06")
    _fail(good[:10], "too short")
    _fail(good[:-1], "no end-of-central-directory")
    bad = bytearray(good)
    struct.pack_into("<HH", bad, eocd + 8, 1000, 1000)  # 1000 entries
    _fail(bytes(bad), "1000 entries cannot fit")
    bad = bytearray(good)
    struct.pack_into("<HH", bad, eocd + 4, 1, 1)  # disk numbers
    _fail(bytes(bad), "multi-part")
    bad = bytearray(good)
    struct.pack_into("<I", bad, cd + 42, len(good))  # the first entry's header offset
    _fail(bytes(bad), "'zarr.json'.*runs past")
    bad = bytearray(good)
    struct.pack_into("<I", bad, cd + 42, 3)  # overlapping the next... and itself moved
    _fail(bytes(bad), "overlap")
    bad = bytearray(good)
    bad[cd] ^= 0xFF  # a central header's signature
    _fail(bytes(bad), "entry 0 of 5 is missing or corrupt")


@pytest.mark.parametrize("name", ["../x", "/abs", "a\\b", "a//b", "./zarr.json"])
def test_names_that_escape_are_refused(name):
    _fail(build([("zarr.json", b"{}"), (name, b"1")]), "not a relative")


def test_duplicates_are_refused():
    with pytest.warns(UserWarning):
        data = build([("zarr.json", b"{}"), ("zarr.json", b"{}")])
    _fail(data, "appears twice")


def test_root_document_required():
    entries = directory(build([("readme", b"1")]))
    with pytest.raises(ngffcore.MetadataError, match="no zarr.json at the archive's root"):
        zipdir.check_root(entries, URL)
    for doc in zipdir.ROOT_DOCUMENTS:
        zipdir.check_root(directory(build([(doc, b"{}")])), URL)


def test_compressed_and_encrypted_entries():
    data = build(method=zipfile.ZIP_DEFLATED)
    entry = directory(data)["0/c/0/0"]
    with pytest.raises(ngffcore.UnsupportedError, match=r"a.ozx/0/c/0/0.*deflate"):
        zipdir.check_stored(entry, URL)
    flagged = zipdir.Entry("k", b"k", 0, 1, 0, 1, 0)
    with pytest.raises(ngffcore.UnsupportedError, match="encrypted"):
        zipdir.check_stored(flagged, URL)


def test_local_header_checks():
    data = build()
    entry = directory(data)["0/c/0/0"]
    h = entry.header_at
    local = bytearray(data[h:])
    local[31] ^= 1
    with pytest.raises(ngffcore.MetadataError, match="local header .* names"):
        zipdir.local_header_length(entry, local, len(data), URL)
    with pytest.raises(ngffcore.MetadataError, match="no local file header"):
        zipdir.local_header_length(entry, data[h + 1:], len(data), URL)
    with pytest.raises(ngffcore.MetadataError, match="run past"):
        zipdir.local_header_length(entry, data[h:], h + 100, URL)


# -- the store over spoiled archives --------------------------------------------------------


class Bounded(MemoryStore):
    """A memory store that fails the test on any read reaching outside the object."""

    async def get(self, key: str, byte_range: Any = None, *, max_bytes: int | None = None
                  ) -> Any:
        size = len(self._objects[key])
        assert byte_range is not None  # never the whole archive
        if not isinstance(byte_range, Suffix):
            assert 0 <= byte_range[0] < byte_range[1] <= size, (byte_range, size)
        return await super().get(key, byte_range, max_bytes=max_bytes)

    async def get_ranges(self, key: str, ranges: Any) -> Any:
        size = len(self._objects[key])
        assert all(0 <= a <= b <= size for a, b in ranges), (ranges, size)
        return await super().get_ranges(key, ranges)


def read_all(data: bytes, tail: int | None = None) -> dict[str, bytes]:
    """Every entry of ``data`` read through a ZipStore: whole, by a suffix, by two ranges."""
    store = ZipStore(Bounded({"a.ozx": data}), "a.ozx")
    out = {}
    with mock.patch("ngffcore.store.zipstore.TAIL_BYTES", tail or 66 * 1024):
        for key in run_sync(store, store.list_prefix("")):
            got = run_sync(store, store.get(key))
            assert got is not None
            out[key] = bytes(got.data)
            run_sync(store, store.get(key, Suffix(3)))
            run_sync(store, store.get_ranges(key, [(0, 2), (1, 9)]))
    return out


@pytest.mark.parametrize("tail", [None, 120, 400])
def test_store_reads_match(tail):
    for zip64 in (False, True):
        data = build(zip64=zip64)
        assert read_all(data, tail) == dict(FILES)


def test_fuzz_flips_and_cuts():
    rng = random.Random(20240611)
    good = build(comment=b'{"ome": {"version": "0.5"}}\0')
    good64 = build(zip64=True)
    kinds: dict[str, int] = {}
    for i in range(600):
        data = bytearray(good if i % 2 else good64)
        if i % 7 == 0:
            data = data[:rng.randrange(len(data))]
        else:
            structure = data.index(b"PK\x01\x02")  # flips aimed at the directory half the time
            for _ in range(rng.randint(1, 6)):
                lo = structure if rng.random() < 0.5 else 0
                data[rng.randrange(lo, len(data))] = rng.randrange(256)
        try:
            read_all(bytes(data), rng.choice([None, 150, 300]))
            kinds["read"] = kinds.get("read", 0) + 1
        except ngffcore.NgffError as exc:
            kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1
    # both outcomes happen: the fuzz reaches past the directory's checks
    assert kinds.get("read", 0) > 20 and kinds.get("MetadataError", 0) > 100, kinds
