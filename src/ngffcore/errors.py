"""ngffcore's exceptions, and the one function that turns a native status into one.

Every exception is an :class:`NgffError` and also subclasses the builtin a caller would
naturally catch (``ValueError``, ``FileNotFoundError``, ``IndexError``, ``OSError``).
"""

from __future__ import annotations

from typing import NoReturn

__all__ = [
    "NgffError",
    "NotFoundError",
    "MetadataError",
    "UnsupportedError",
    "UnsupportedChunkError",
    "DecodeError",
    "ShardIndexError",
    "SelectionError",
    "ArgumentError",
    "OutputError",
    "ReadLimitError",
    "StoreError",
    "AuthError",
    "ReadOnlyError",
    "ExistsError",
    "CastError",
    "WriteError",
    "ClosedError",
    "raise_for_status",
]


class NgffError(Exception):
    """Base class of every error raised by ngffcore."""


class NotFoundError(NgffError, FileNotFoundError):
    """No array (or group) metadata exists at the location."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])


class MetadataError(NgffError, ValueError):
    """Metadata is malformed, inconsistent or hostile (``path`` names the document)."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class UnsupportedError(MetadataError):
    """Valid metadata asks for something ngffcore does not implement (codec, dtype, grid)."""


class ReadLimitError(NgffError, MemoryError):
    """A read would produce more bytes than ``ngffcore.set_max_read_bytes`` allows."""


class DecodeError(NgffError, ValueError):
    """A chunk's bytes cannot be decoded. ``key`` names the chunk, ``codec`` the codec."""

    def __init__(self, message: str, *, key: str | None = None, codec: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.codec = codec


class UnsupportedChunkError(UnsupportedError, DecodeError):
    """A chunk is well formed but encoded in a way this build cannot decode (e.g. a blosc
    frame compressed with snappy): an :class:`UnsupportedError` found at decode time, so a
    :class:`DecodeError` too, with the chunk's ``key`` and ``codec``."""

    def __init__(self, message: str, *, key: str | None = None, codec: str | None = None) -> None:
        DecodeError.__init__(self, message, key=key, codec=codec)
        self.path = None


class ShardIndexError(DecodeError):
    """A shard index is truncated, fails its checksum, or points outside the shard."""


class SelectionError(NgffError, IndexError):
    """A selection is out of range or of a kind ngffcore does not support."""


class ArgumentError(NgffError, ValueError):
    """An argument has a value no read can use (a NaN or infinite region bound, a bound that
    is not a number): a ValueError, not a selection out of range."""


class OutputError(NgffError, ValueError):
    """``out=`` has the wrong shape or dtype, or is not writable."""


class StoreError(NgffError, OSError):
    """Reading a chunk object failed. ``key`` names the object."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key

    def __str__(self) -> str:
        return str(self.args[0])


class AuthError(StoreError, PermissionError):
    """The store refused access (HTTP 401/403). Names the location."""


class ReadOnlyError(NgffError, PermissionError):
    """A write to an array opened read-only (``mode="r"``) or to a store that takes no
    writes (HTTP). Raised before anything is written."""


class ExistsError(NgffError, FileExistsError):
    """``create_array`` found metadata (an array or a group) at the location and was not
    asked to overwrite it. ``path`` names the document found."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])


class CastError(NgffError, TypeError):
    """A value cannot be written into an array of this dtype (float into int, a complex into
    float, a Python int out of range, an object array). Raised before anything is written."""


class WriteError(StoreError):
    """Writing an object failed (after the store's retries). ``key`` names the object that
    failed; ``written`` lists the keys already written (put or deleted) by the same write,
    in no particular order: the objects the failed write did change."""

    def __init__(self, message: str, *, key: str | None = None,
                 written: list[str] | None = None) -> None:
        super().__init__(message, key=key)
        self.written = list(written or ())


class ClosedError(NgffError, RuntimeError):
    """A call on something already closed (a request scheduler after ``close()``); the
    message names what was closed and the call refused."""


# Native status codes (csrc/ngff_status.h), by name, to the exception they become.
_STATUS_EXCEPTIONS: dict[str, type[NgffError]] = {
    "NGFF_ERR_TRUNCATED": DecodeError,
    "NGFF_ERR_CORRUPT": DecodeError,
    "NGFF_ERR_SIZE_MISMATCH": DecodeError,
    "NGFF_ERR_CHECKSUM": DecodeError,
    "NGFF_ERR_UNSUPPORTED": UnsupportedChunkError,
    "NGFF_ERR_SHARD_INDEX": ShardIndexError,
    "NGFF_ERR_IO": StoreError,
}


def raise_for_status(
    status_name: str,
    status_message: str,
    *,
    key: str | None,
    codec: str | None = None,
    detail: str = "",
    in_shard_index: bool = False,
    checked: str | None = None,
) -> NoReturn:
    """Raise the exception for a failed native call. The only such translation in ngffcore.

    ``status_name`` is the C enum name, ``status_message`` its text from the C status table,
    ``key`` the chunk (or shard) key, ``codec`` the failing codec, ``detail`` the underlying
    library's message. ``checked``: the call's arguments were checked by C (``detail`` names
    what is wrong): invalid-argument and overflow statuses then mean the caller's arguments,
    an :class:`ArgumentError` naming the operation ``checked``.
    """
    if checked is not None and status_name in ("NGFF_ERR_INVALID_ARGUMENT",
                                                "NGFF_ERR_OVERFLOW"):
        raise ArgumentError(f"{checked}: {detail or status_message}")
    if status_name == "NGFF_ERR_NOMEM":
        raise MemoryError(f"ngffcore: out of memory decoding {key!r}")
    if in_shard_index:
        raise ShardIndexError(f"shard index of {key!r}: {status_message}"
                              + (f": {detail}" if detail else ""), key=key, codec="sharding_indexed")
    where = f"chunk {key!r}" if key is not None else "chunk"
    via = f" ({codec})" if codec else ""
    text = f"{status_message} in {where}{via}"
    if detail:
        text += f": {detail}"
    cls = _STATUS_EXCEPTIONS.get(status_name)
    if cls is StoreError:
        raise StoreError(text, key=key)
    if cls is not None:
        raise cls(text, key=key, codec=codec)  # type: ignore[call-arg]
    # NGFF_ERR_INVALID_ARGUMENT / NGFF_ERR_OVERFLOW: the plan handed to C was inconsistent.
    raise NgffError(f"internal error ({status_name}: {status_message}) in {where}{via}"
                    + (f": {detail}" if detail else ""))
