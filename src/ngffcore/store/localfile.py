"""Local files read from Python (metadata documents, shard indexes, chunks whose codec the
core does not link), opened the way the core opens chunk files (``ngff_open_regular`` in
csrc/ngff_fetch.c): without blocking, regular files only, and beneath the store root unless
the store follows external links; and files written whole or not at all (``write_atomic``)."""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import Any

from ngffcore import _core
from ngffcore.errors import StoreError


def open_regular(path: bytes, root: bytes | None, name: str, key: str,
                 directory_missing: bool = True) -> tuple[int, int] | None:
    """``(fd, size)`` of the regular file ``path`` (the caller closes ``fd``), or None if it
    does not exist (a dangling link included). A FIFO, socket or device, or (with ``root``, a
    prefix of ``path`` ending in ``/``) a path leading outside ``root`` through a symbolic
    link, is a :class:`StoreError` naming ``name``, raised before anything is read."""
    status, fd, size, detail = _core.open_regular(path, root, directory_missing)
    if status:
        raise StoreError(f"cannot read {name}: {detail or 'invalid path'}", key=key)
    return None if fd < 0 else (fd, size)


def read_at(fd: int, offset: int, length: int) -> bytes:
    """Up to ``length`` bytes at ``offset`` (fewer only where the file ends)."""
    parts = []
    got = 0
    while got < length:
        part = os.pread(fd, length - got, offset + got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_to_end(fd: int, size: int, limit: int | None) -> bytes:
    """The file from its current position to its end, but never more than ``limit + 1``
    bytes (a file may grow, or report no size, as some special file systems do): a result
    longer than ``limit`` means the file is over it."""
    cap = None if limit is None else limit + 1
    parts = []
    got = 0
    step = max(size, 0) + 1  # the size, +1: a regular file's end shows in one more call
    while cap is None or got < cap:
        part = os.read(fd, step if cap is None else min(step, cap - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
        step = 1 << 20
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_range(path: bytes, offset: int, length: int, root: bytes | None) -> bytes | None:
    """Bytes ``[offset, offset + length)`` of a file (``length`` < 0: to its end), or None if
    it does not exist; opened as :func:`open_regular` does."""
    name = os.fsdecode(path)
    opened = open_regular(path, root, name, name, directory_missing=False)
    if opened is None:
        return None
    fd, size = opened
    try:
        return read_at(fd, offset, size - offset if length < 0 else length)
    except OSError as exc:
        raise StoreError(f"cannot read {name}: {exc}", key=name) from exc
    finally:
        os.close(fd)


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`write_atomic`'s temporary files (left behind only
    by a process killed mid-write; never a key: keys of Zarr objects do not start with '.'
    and end in '.partial')."""
    return name.startswith(".") and name.endswith(".partial")


def write_atomic(path: str, data: Any, fsync: bool) -> int:
    """Write ``data`` (bytes-like) as the file ``path``, creating its parent directories:
    into a temporary file beside it, then renamed over it, so a reader opens the old file or
    the new one, never a part. With ``fsync`` the file and its directory are flushed to disk
    before the call returns. Returns the bytes written."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.partial")
    # O_EXCL: a name another writer (or an attacker's link) holds is never written through
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileNotFoundError:  # the first object of its directory (checked after: cheaper)
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, flags, 0o666)
    try:
        view = memoryview(data).cast("B")
        written = 0
        while written < len(view):
            written += os.write(fd, view[written:])
        if fsync:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return written
