"""The Store protocol: what every store is (bytes by key, read and written by the same async
methods whatever the store), the byte ranges a read may ask for, and what a read returns.

Every store (``LocalStore``, ``ObjectStore``, ``MemoryStore``, ``ZipStore``) implements it;
nothing above the store layer needs to know which one it has, only its capability flags.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol, Union

from ngffcore.errors import ArgumentError
from ngffcore.store.stats import RequestStats

if TYPE_CHECKING:
    from typing_extensions import Buffer


class Suffix(NamedTuple):
    """The last ``length`` bytes of an object."""

    length: int


#: None: the whole object; (start, stop): bytes [start, stop) (stop clipped to the object's
#: end); Suffix(n): the last n bytes (the whole object if it is shorter)
ByteRange = Union[None, tuple[int, int], Suffix]


class Got(NamedTuple):
    """What a read brought: the bytes, and the whole object's size (learnt from the same
    single request: fstat, Content-Range/Content-Length, len — a shard index needs it)."""

    #: bytes-like (bytes, memoryview, obstore.Bytes): handed to the core without a copy
    data: Buffer
    size: int


class Store(Protocol):
    """Bytes by ``/``-separated key, below one root.

    ``get`` returns None for an object that does not exist; ``delete`` of a missing object
    is no error. Keys that would escape the root are refused (StoreError)."""

    #: for messages only (never a cache key)
    url: str
    #: requests in flight per read / fan-out
    concurrency: int

    @property
    def identity(self) -> Hashable:
        """What selects the bytes (decoded-chunk cache keys start with it)."""

    @property
    def stats(self) -> RequestStats:
        """What this store has done, by kind (every store counts)."""

    # capability flags
    #: whether ``get(key, Suffix(n))`` is one request (Azure: False; the store itself then
    #: asks for the size first: callers need not care)
    suffix_ranges: bool
    #: whether readers see a ``put`` object whole or not at all
    atomic_put: bool
    #: whether ``put``/``delete`` are allowed (HTTP: False, they raise StoreError)
    writable: bool
    #: whether its coroutines never suspend (local, memory): a sync caller may run them
    #: inline (``ngffcore.store.sync.run_sync``) instead of on the I/O loop
    inline: bool
    #: a directory (ending in ``/``) beneath which the native core may read chunk files
    #: itself (LocalStore: its root), or None
    local_root: bytes | None

    async def get(self, key: str, byte_range: ByteRange = None, *,
                  max_bytes: int | None = None) -> Got | None:
        """The object's bytes (or a range of them) and its size; None if it does not exist.
        A whole-object read larger than ``max_bytes`` (by default: the metadata limit for a
        metadata document, else unbounded) is refused."""

    async def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]
                         ) -> list[Buffer] | None:
        """Bytes ``[start, stop)`` of each range of one object; None if it does not exist."""

    async def put(self, key: str, data: Buffer) -> None:
        """Store ``data`` as the object ``key`` (atomically where ``atomic_put``)."""

    async def delete(self, key: str) -> None:
        """Remove the object ``key``; a missing object is no error."""

    async def list_prefix(self, prefix: str) -> list[str]:
        """Keys of every object whose key starts with ``prefix`` (a ``/``-terminated path,
        or "" for the whole store), sorted. Only ``create_array(overwrite=True)`` lists
        (to remove an old array's chunks); reads never do. StoreError on a store that
        cannot list (HTTP)."""


def check_range(byte_range: ByteRange) -> ByteRange:
    """``byte_range`` if it is one a store can serve, else ArgumentError: ``(start, stop)``
    with ``0 <= start < stop``, or ``Suffix(n)`` with ``n >= 1``."""
    if byte_range is None:
        return None
    if isinstance(byte_range, Suffix):
        if isinstance(byte_range.length, bool) or not isinstance(byte_range.length, int) \
                or byte_range.length < 1:
            raise ArgumentError(f"suffix length must be a positive int, not "
                                f"{byte_range.length!r}")
        return byte_range
    check_span(byte_range, empty=False)
    return byte_range


def check_span(span: tuple[int, int], *, empty: bool) -> tuple[int, int]:
    """``span`` if it is a ``(start, stop)`` pair of ints with ``0 <= start <= stop``
    (``start < stop`` unless ``empty``), else ArgumentError."""
    try:
        start, stop = span
    except (TypeError, ValueError):
        raise ArgumentError(f"a byte range is (start, stop) or Suffix(n), not {span!r}"
                            ) from None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop)) \
            or start < 0 or stop < start or (stop == start and not empty):
        raise ArgumentError(f"byte range {span!r} is not (start, stop) with "
                            f"0 <= start {'<=' if empty else '<'} stop")
    return start, stop


async def get_data(store: Store, key: str, *, max_bytes: int | None = None) -> Buffer | None:
    """The whole object's bytes, or None if it does not exist (``store.get`` without the
    size). Synchronously: ``run_sync(store, get_data(store, key))``."""
    got = await store.get(key, max_bytes=max_bytes)
    return None if got is None else got.data


async def get_many(store: Store, keys: Sequence[str], *, max_bytes: int | None = None
                   ) -> list[Got | None]:
    """Whole objects ``keys`` (None: missing), in order: one GET each, all at once. A store
    that can hand a batch back in one wake (``get_many``: remote stores, on fetch threads)
    does; any other is asked key by key, concurrently."""
    together = getattr(store, "get_many", None)
    if together is not None:
        return await together(keys, max_bytes=max_bytes)  # type: ignore[no-any-return]
    from ngffcore.store.ioloop import gather_or_cancel

    return await gather_or_cancel(*(store.get(k, max_bytes=max_bytes) for k in keys))


def range_kind(byte_range: ByteRange) -> str:
    """The ``RequestStats`` field a read of ``byte_range`` counts in."""
    if byte_range is None:
        return "get"
    return "suffix_get" if isinstance(byte_range, Suffix) else "range_get"


def span_in(byte_range: ByteRange, size: int) -> tuple[int, int]:
    """``[start, stop)`` of a (checked) ``byte_range`` in an object of ``size`` bytes,
    clipped to it (a range starting past the end is empty)."""
    if byte_range is None:
        return 0, size
    if isinstance(byte_range, Suffix):
        return max(0, size - byte_range.length), size
    start, stop = byte_range
    return min(start, size), min(stop, size)


__all__ = ["ByteRange", "Got", "Store", "Suffix", "check_range", "check_span", "get_data",
           "range_kind", "span_in"]
