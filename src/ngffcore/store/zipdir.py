"""The directory of a ZIP archive, parsed from its bytes without I/O: the end records (the
end-of-central-directory record, the ZIP64 locator and end record), the central directory
(ZIP64 extended information included), and local file headers. What a zipped OME-Zarr
(RFC-9, ``.ozx``) needs: each entry's local header offset and stored size, so a reader can
map a key's byte range onto one ranged read of the archive.

Every offset and length an archive states is checked against the archive's size and
against the others before it is used: the central directory must end exactly where the end
records begin, every entry must lie before the central directory and entries must not
overlap. A lie is a :class:`MetadataError` naming the archive (and the entry), never an
``IndexError``, ``struct.error`` or a read outside the archive. Layouts follow PKWARE's
APPNOTE (sections 4.3.7, 4.3.12, 4.3.14-16, 4.5.3). All offsets are bytes from the start
of the archive; all ranges half-open.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ngffcore.errors import MetadataError, UnsupportedError
from ngffcore.limits import MAX_METADATA_BYTES

# Record layouts (little-endian); each starts with its signature
#: EOCD: disk, disk of the central directory, entries on this disk, entries, cd size,
#: cd offset, comment length
_EOCD = struct.Struct("<IHHHHIIH")
#: ZIP64 locator: disk of the ZIP64 end record, its offset, number of disks
_LOCATOR = struct.Struct("<IIQI")
#: ZIP64 end record: its size - 12, made by, needed, disk, cd disk, entries on this disk,
#: entries, cd size, cd offset
_ZIP64_END = struct.Struct("<IQHHIIQQQQ")
#: central directory header: made by, needed, flags, method, time, date, crc, compressed
#: and uncompressed sizes, name, extra and comment lengths, disk, internal and external
#: attributes, local header offset
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
#: local file header: needed, flags, method, time, date, crc, sizes, name and extra lengths
_LOCAL = struct.Struct("<IHHHHHIIIHH")
EOCD_SIG, LOCATOR_SIG, ZIP64_END_SIG = 0x06054B50, 0x07064B50, 0x06064B50
CENTRAL_SIG, LOCAL_SIG = 0x02014B50, 0x04034B50

#: fixed sizes of the records, in bytes
EOCD_SIZE = _EOCD.size  # 22
LOCATOR_SIZE = _LOCATOR.size  # 20
ZIP64_END_SIZE = _ZIP64_END.size  # 56
CENTRAL_SIZE = _CENTRAL.size  # 46
LOCAL_SIZE = _LOCAL.size  # 30
#: the most bytes the end records can take: an EOCD with the longest comment (65535 bytes),
#: the ZIP64 locator before it and the ZIP64 end record before that (65633 bytes): a read of
#: this many bytes at the end of an archive finds them whatever its comment
END_RECORDS_MAX = EOCD_SIZE + 0xFFFF + LOCATOR_SIZE + ZIP64_END_SIZE

#: general-purpose flag bits: 0 encrypted, 6 strong encryption, 11 UTF-8 names
_ENCRYPTED = 0x0001 | 0x0040
_UTF8 = 0x0800
#: compression methods by number, for messages
_METHODS = {8: "deflate", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstd", 95: "xz"}
#: documents any of which marks the root of a Zarr hierarchy
ROOT_DOCUMENTS = ("zarr.json", ".zgroup", ".zattrs", ".zarray")


@dataclass(frozen=True)
class End:
    """What an archive's end records state (offsets from the archive's start)."""

    #: entries in the central directory
    entries: int
    #: the central directory: ``[cd_offset, cd_offset + cd_size)``
    cd_offset: int
    cd_size: int
    #: the archive comment (RFC-9: null-terminated JSON ``{"ome": {"version": ...}}``)
    comment: bytes
    #: the EOCD record's offset
    eocd_at: int
    #: the ZIP64 end record's offset and its locator's, or None without ZIP64
    zip64_at: int | None = None
    locator_at: int | None = None


@dataclass(frozen=True)
class Entry:
    """One file of the archive, as the central directory states it."""

    name: str
    #: the name's bytes (the local header must repeat them)
    raw_name: bytes
    #: offset of the entry's local file header
    header_at: int
    #: bytes stored (for a stored entry, method 0, also its uncompressed size)
    size: int
    #: compression method (0: stored) and general-purpose flags
    method: int
    flags: int
    #: length of the central header's extra field: the local one is usually as long or a
    #: little longer (ZIP64 sizes, timestamps), which is what a first read guesses
    central_extra: int


def _bad(url: str, message: str) -> MetadataError:
    return MetadataError(f"not a readable ZIP archive: {message}", path=url)


def find_end(tail: Any, size: int, url: str) -> End:
    """The end records found in ``tail``, the last ``len(tail)`` bytes of an archive of
    ``size`` bytes (at least :data:`END_RECORDS_MAX` of them, or the whole archive). The
    EOCD record is the last one whose comment ends exactly at the end of the archive.
    Without ZIP64 the central directory is checked here; with it (``zip64_at`` set), by
    :func:`zip64_end` once the ZIP64 end record is read."""
    tail = bytes(tail)
    start = size - len(tail)
    if len(tail) < EOCD_SIZE:
        raise _bad(url, f"{size} bytes, too short for an end-of-central-directory record")
    sig = struct.pack("<I", EOCD_SIG)
    lowest = max(0, len(tail) - EOCD_SIZE - 0xFFFF)
    pos = tail.rfind(sig, lowest, len(tail) - EOCD_SIZE + 4)
    while pos >= 0 and pos + EOCD_SIZE + _EOCD.unpack_from(tail, pos)[7] != len(tail):
        pos = tail.rfind(sig, lowest, pos + 3)
    if pos < 0:
        raise _bad(url, "no end-of-central-directory record in its last "
                        f"{len(tail) - lowest} bytes (truncated, or not a ZIP archive)")
    _, disk, cd_disk, here, entries, cd_size, cd_offset, clen = _EOCD.unpack_from(tail, pos)
    eocd_at = start + pos
    comment = tail[pos + EOCD_SIZE:]
    at = pos - LOCATOR_SIZE
    if at >= 0 and _LOCATOR.unpack_from(tail, at)[0] == LOCATOR_SIG:
        _, record_disk, record_at, disks = _LOCATOR.unpack_from(tail, at)
        if record_disk != 0 or disks > 1:
            raise _bad(url, f"split into {disks} parts (RFC-9 forbids multi-part archives)")
        if record_at + ZIP64_END_SIZE > start + at:
            raise _bad(url, f"the ZIP64 locator points at {record_at}, past where the ZIP64 "
                            f"end record can be (before {start + at - ZIP64_END_SIZE})")
        return End(entries, cd_offset, cd_size, comment, eocd_at, record_at, start + at)
    if disk != 0 or cd_disk != 0 or here != entries:
        raise _bad(url, "split into parts (RFC-9 forbids multi-part archives)")
    end = End(entries, cd_offset, cd_size, comment, eocd_at)
    check_central_span(end, eocd_at, url)
    return end


def zip64_end(end: End, record: Any, url: str) -> End:
    """``end`` with the values of its ZIP64 end record (``record``: the archive's
    :data:`ZIP64_END_SIZE` bytes at ``end.zip64_at``; its extensible data, if any, is not
    needed), checked."""
    assert end.zip64_at is not None and end.locator_at is not None
    record = bytes(record)
    if len(record) < ZIP64_END_SIZE or _ZIP64_END.unpack_from(record)[0] != ZIP64_END_SIG:
        raise _bad(url, f"no ZIP64 end record at {end.zip64_at}, where its locator points")
    (_, rest, _, _, disk, cd_disk, here, entries, cd_size,
     cd_offset) = _ZIP64_END.unpack_from(record)
    if end.zip64_at + 12 + rest != end.locator_at:
        raise _bad(url, f"the ZIP64 end record at {end.zip64_at} states {rest + 12} bytes; "
                        f"its locator follows at {end.locator_at}")
    if disk != 0 or cd_disk != 0 or here != entries:
        raise _bad(url, "split into parts (RFC-9 forbids multi-part archives)")
    out = End(entries, cd_offset, cd_size, end.comment, end.eocd_at, end.zip64_at,
              end.locator_at)
    check_central_span(out, end.zip64_at, url)
    return out


def check_central_span(end: End, cd_end: int, url: str) -> None:
    """The central directory must end exactly at ``cd_end`` (where the end records begin),
    hold room for its entries, and not exceed the metadata limit."""
    if end.cd_offset + end.cd_size != cd_end:
        raise _bad(url, f"the central directory is said to span [{end.cd_offset}, "
                        f"{end.cd_offset + end.cd_size}), but the end records begin at {cd_end}")
    if end.entries * CENTRAL_SIZE > end.cd_size:
        raise _bad(url, f"{end.entries} entries cannot fit in a central directory of "
                        f"{end.cd_size} bytes")
    if end.cd_size > MAX_METADATA_BYTES:
        raise _bad(url, f"a central directory of {end.cd_size} bytes is over the "
                        f"{MAX_METADATA_BYTES}-byte metadata limit")


def parse_central(cd: Any, end: End, url: str) -> dict[str, Entry]:
    """The files of the archive by key, from its central directory ``cd`` (the
    ``end.cd_size`` bytes at ``end.cd_offset``). Directory entries (names ending in ``/``)
    are checked and left out."""
    cd = bytes(cd)
    if len(cd) != end.cd_size:
        raise _bad(url, f"read {len(cd)} bytes of a {end.cd_size}-byte central directory")
    found: dict[str, Entry] = {}
    spans: list[tuple[int, int, str]] = []
    pos = 0
    for i in range(end.entries):
        if pos + CENTRAL_SIZE > len(cd) or _CENTRAL.unpack_from(cd, pos)[0] != CENTRAL_SIG:
            raise _bad(url, f"central directory entry {i} of {end.entries} is missing or "
                            f"corrupt (at {end.cd_offset + pos})")
        (_, _, _, flags, method, _, _, _, size, usize, nlen, elen, clen, disk, _, _,
         header_at) = _CENTRAL.unpack_from(cd, pos)
        stop = pos + CENTRAL_SIZE + nlen + elen + clen
        if stop > len(cd):
            raise _bad(url, f"central directory entry {i} runs past the directory's end")
        raw = cd[pos + CENTRAL_SIZE:pos + CENTRAL_SIZE + nlen]
        name = _name(raw, flags, url)
        extra = cd[pos + CENTRAL_SIZE + nlen:pos + CENTRAL_SIZE + nlen + elen]
        usize, size, header_at, disk = _zip64_extra(extra, usize, size, header_at, disk,
                                                    name, url)
        if disk != 0:
            raise _bad(url, f"entry {name!r} is on part {disk} (RFC-9 forbids multi-part "
                            "archives)")
        if method == 0 and size != usize:
            raise _bad(url, f"entry {name!r} is stored, yet states {size} bytes stored and "
                            f"{usize} uncompressed")
        if header_at + LOCAL_SIZE + nlen + size > end.cd_offset:
            raise _bad(url, f"entry {name!r} ({size} bytes, local header at {header_at}) "
                            f"runs past the central directory at {end.cd_offset}")
        spans.append((header_at, header_at + LOCAL_SIZE + nlen + size, name))
        if not name.endswith("/"):
            if name in found:
                raise _bad(url, f"entry {name!r} appears twice")
            found[name] = Entry(name, raw, header_at, size, method, flags, elen)
        pos = stop
    if pos != len(cd):
        raise _bad(url, f"the central directory holds {len(cd) - pos} bytes beyond its "
                        f"{end.entries} entries")
    spans.sort()
    for (_, stop, a), (start, _, b) in zip(spans, spans[1:]):
        if start < stop:
            raise _bad(url, f"entries {a!r} and {b!r} overlap")
    return found


def _name(raw: bytes, flags: int, url: str) -> str:
    """An entry's name as a key: UTF-8 when flagged (bit 11), else code page 437. Names
    that would leave the archive's root, or use backslashes, are refused: a key is never
    silently unreachable."""
    try:
        name = raw.decode("utf-8" if flags & _UTF8 else "cp437")
    except UnicodeDecodeError:
        raise _bad(url, f"entry name {raw[:100]!r} is not valid UTF-8") from None
    parts = name.rstrip("/").split("/")
    if not name or name.startswith("/") or "\\" in name or "\0" in name \
            or any(p in ("", ".", "..") for p in parts):
        raise _bad(url, f"entry name {name[:200]!r} is not a relative '/'-separated path "
                        "inside the archive")
    return name


def _zip64_extra(extra: bytes, usize: int, size: int, header_at: int, disk: int,
                 name: str, url: str) -> tuple[int, int, int, int]:
    """The values a ZIP64 extended information extra field (id 1) holds in place of the
    central header's saturated ones (0xFFFFFFFF, disk 0xFFFF), in APPNOTE's order:
    uncompressed size, compressed size, local header offset, disk."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + length]
        if len(body) != length:
            raise _bad(url, f"entry {name!r}: an extra field runs past its header")
        if tag == 1:
            at = 0
            values = [usize, size, header_at]
            for k, value in enumerate(values):
                if value == 0xFFFFFFFF:
                    if at + 8 > length:
                        raise _bad(url, f"entry {name!r}: its ZIP64 extra field is too short")
                    values[k] = struct.unpack_from("<Q", body, at)[0]
                    at += 8
            if disk == 0xFFFF:
                if at + 4 > length:
                    raise _bad(url, f"entry {name!r}: its ZIP64 extra field is too short")
                disk = struct.unpack_from("<I", body, at)[0]
            return values[0], values[1], values[2], disk
        pos += 4 + length
    return usize, size, header_at, disk


def check_root(entries: dict[str, Entry], url: str) -> None:
    """RFC-9: the archive's root is the hierarchy's root, holding its root ``zarr.json``
    (Zarr v2 hierarchies: ``.zgroup``, ``.zattrs`` or ``.zarray``)."""
    if any(doc in entries for doc in ROOT_DOCUMENTS):
        return
    nested = sorted(k for k in entries if k.count("/") == 1 and k.endswith("/zarr.json"))
    hint = (f" (found {nested[0]!r}: RFC-9 puts the hierarchy's root at the archive's root, "
            "not in a folder)") if nested else ""
    raise MetadataError(f"not a zipped OME-Zarr: no zarr.json at the archive's root "
                        f"({len(entries)} entries){hint}", path=url)


def check_stored(entry: Entry, url: str) -> None:
    """An entry can be read as a byte range of the archive only if it is stored (method 0,
    as RFC-9 recommends) and not encrypted."""
    if entry.flags & _ENCRYPTED:
        raise UnsupportedError("entry is encrypted; only unencrypted entries can be read",
                               path=f"{url}/{entry.name}")
    if entry.method != 0:
        how = _METHODS.get(entry.method, f"method {entry.method}")
        raise UnsupportedError(f"entry is compressed ({how}); a zipped OME-Zarr stores its "
                               "entries uncompressed (method 0), as RFC-9 recommends",
                               path=f"{url}/{entry.name}")


def local_header_length(entry: Entry, header: Any, data_end: int, url: str) -> int:
    """The length of ``entry``'s local file header (30 + name + extra field), from
    ``header``, bytes of the archive starting at ``entry.header_at`` (at least 30 + the
    name's length of them, unless the archive's data ends first). Checked: the signature,
    the name, the method and encryption, and that the data it is followed by ends by
    ``data_end`` (where the central directory begins)."""
    where = f"{url}/{entry.name}"
    view = memoryview(header)
    if len(view) < LOCAL_SIZE or _LOCAL.unpack_from(view)[0] != LOCAL_SIG:
        raise MetadataError(f"no local file header at {entry.header_at}, where the central "
                            "directory says the entry begins", path=where)
    _, _, flags, method, _, _, _, _, _, nlen, elen = _LOCAL.unpack_from(view)
    if bytes(view[LOCAL_SIZE:LOCAL_SIZE + nlen]) != entry.raw_name:
        local = bytes(view[LOCAL_SIZE:LOCAL_SIZE + min(nlen, 200)])
        raise MetadataError(f"the local header at {entry.header_at} names {local!r}, not "
                            "the entry the central directory places there", path=where)
    if method != entry.method or (flags & _ENCRYPTED) != (entry.flags & _ENCRYPTED):
        raise MetadataError(f"the local header states method {method} and flags {flags:#x}, "
                            f"the central directory method {entry.method} and flags "
                            f"{entry.flags:#x}", path=where)
    length = LOCAL_SIZE + int(nlen) + int(elen)
    if entry.header_at + length + entry.size > data_end:
        raise MetadataError(f"its {entry.size} bytes after a {length}-byte local header run "
                            f"past the central directory at {data_end}", path=where)
    return length


__all__ = ["END_RECORDS_MAX", "End", "Entry", "ROOT_DOCUMENTS", "check_root", "check_stored",
           "find_end", "local_header_length", "parse_central", "zip64_end"]
