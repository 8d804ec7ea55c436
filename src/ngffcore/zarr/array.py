"""``open_array`` and :class:`Array`: metadata once, then reads (plan → source → decode, see
``pipeline.py``), written once for sync and async callers (``steps.py``), through a chunk
cache or not (``cacheread.py``)."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ngffcore import _core
from ngffcore.errors import ArgumentError, MetadataError, NotFoundError, OutputError
from ngffcore.errors import ReadLimitError, ReadOnlyError
from ngffcore.limits import get_max_read_bytes
from ngffcore.store.location import open_store
from ngffcore.store.protocol import Store, get_data
from ngffcore.store.stats import RequestStats
from ngffcore.store.sync import run_sync
from ngffcore.zarr.cache import ChunkCache, forget_everywhere
from ngffcore.zarr.cacheread import CachedRead
from ngffcore.zarr.metadata import (ArrayMetadata, metadata_bytes, parse_json, parse_v2,
                                     parse_v3)
from ngffcore.zarr.pipeline import PlannedRequest, planned_requests
from ngffcore.zarr.plan import ChunkPlan, Selection, normalize_selection, plan_chunks
from ngffcore.zarr.sharding import ShardIndex
from ngffcore.zarr.source import file_confine
from ngffcore.zarr.filewrite import covers_whole_chunks, write_files
from ngffcore.zarr.steps import ASYNC, SYNC, Steps, drive
from ngffcore.zarr.write import WriteOptions, check_writable, value_array, write_selection


def open_array(location: Any, mode: str = "r", *, zarr_format: int | None = None,
               **store_options: Any) -> "Array":
    """Open the Zarr v2 or v3 array at ``location`` (path, URL or obstore store).

    ``mode``: ``"r"`` (reads only: writes raise ReadOnlyError) or ``"r+"`` (reads and writes;
    ReadOnlyError at once for a store that takes no writes: ``http(s)://``).

    Reads ``zarr.json`` (v3) or ``.zarray`` (v2) once; ``zarr_format`` skips the probe for the
    other format. Raises :class:`NotFoundError` if neither exists, :class:`MetadataError` if
    the metadata is invalid or unsupported. ``store_options``: see
    :func:`ngffcore.store.location.open_store` (``concurrency``, ``max_bytes_in_flight`` — bytes one
    remote read may hold received and not yet decoded, default 512 MiB — and obstore's).
    """
    check_mode(mode)
    store = open_store(location, **store_options)
    if mode == "r+" and not store.writable:
        raise ReadOnlyError(f"{store.url} takes no writes: open it with mode='r'")
    return Array._open(store, zarr_format, mode=mode)


def check_mode(mode: Any) -> str:
    if mode not in ("r", "r+"):
        raise ArgumentError(f"mode must be 'r' or 'r+', not {mode!r}")
    return str(mode)


class Array:
    """A Zarr v2 / v3 array (sharded or not). Reading is thread-safe; metadata is immutable.

    Shapes are in elements, selections are numpy basic indexing (ints, step-1 slices,
    ``...``), boxes are half-open.
    """

    __slots__ = ("_store", "_meta", "_key_path", "_index_cache", "_mode")

    def __init__(self, store: Store, meta: ArrayMetadata, path: str = "", mode: str = "r"
                 ) -> None:
        self._store = store
        self._mode = check_mode(mode)
        self._meta = meta
        # where the array lives in its store; chunk keys start with it
        self._key_path = path
        # shard key -> parsed index (or None: no such shard), for stores that hand over
        # bytes (a local index costs one pread, and a cached one could go stale under a writer)
        self._index_cache: dict[str, ShardIndex | None] = {}

    @property
    def store(self) -> Store:
        """The store this array reads from (shared with the arrays opened from it)."""
        return self._store

    @property
    def path(self) -> str:
        """Path of the array inside the store it was opened from ("" at the root)."""
        return self._key_path

    # -- pickling (dask workers) -----------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Small: the store (how to re-open it, see ``ObjectStore.__reduce__``) and the
        metadata as its JSON document, re-parsed on unpickling with no I/O. The shard index
        cache stays behind."""
        state = {}
        for cls in type(self).__mro__:
            for name in cls.__dict__.get("__slots__", ()):
                if name != "_index_cache" and hasattr(self, name):
                    state[name] = getattr(self, name)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self._index_cache = {}

    def to_dask(self, chunks: Any = None, *, block_bytes: int | None = None) -> Any:
        """This array as a ``dask.array.Array`` whose blocks are whole storage chunks
        (shards when sharded), grown along axes from the outermost in up to about
        ``block_bytes`` (default ``ngffcore.dask.DEFAULT_BLOCK_BYTES``, 64 MiB); each task
        is one :meth:`read` of its block. ``chunks`` overrides the block shape (one entry per
        axis: a multiple of the storage grid, or -1 / None for the whole axis; or dask-style
        block sizes per axis whose boundaries lie on the grid), else ValueError. See
        :func:`ngffcore.dask.to_dask`. Needs ``dask[array]``."""
        from ngffcore.dask import to_dask

        return to_dask(self, chunks=chunks, block_bytes=block_bytes)

    @classmethod
    def _open(cls, store: Store, zarr_format: int | None, path: str = "", mode: str = "r"
              ) -> "Array":
        return run_sync(store, cls._open_async(store, zarr_format, path, mode))

    @classmethod
    async def _open_async(cls, store: Store, zarr_format: int | None, path: str = "",
                          mode: str = "r") -> "Array":
        for fmt, key in _metadata_keys(zarr_format, path):
            # asked one after the other: a v3 open stays exactly one GET (issue 3)
            raw = await get_data(store, key)
            if raw is not None:
                return cls(store, parse_array_metadata(fmt, raw, f"{store.url}/{key}"), path,
                           mode)
        raise _not_found(store, zarr_format, path)

    def __repr__(self) -> str:
        return (f"<ngffcore.{type(self).__name__} {self._store.url}"
                f"{'/' + self._key_path if self._key_path else ''} shape={self.shape} "
                f"dtype={self.dtype} chunks={self.chunks} shards={self.shards} "
                f"codecs={self._meta.codec.describe()}>")

    # -- attributes ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape in elements."""
        return self._meta.shape

    @property
    def dtype(self) -> np.dtype:
        """Element type of results (v2: as stored, incl. byte order; v3: native order)."""
        return self._meta.dtype

    @property
    def chunks(self) -> tuple[int, ...]:
        """Chunk shape; the inner chunk shape of a sharded array (its first level, as
        zarr-python reports it, when shards are nested)."""
        shard = self._meta.codec.shard
        return shard.inner.chunk_shape if shard is not None else self._meta.grid_shape

    @property
    def shards(self) -> tuple[int, ...] | None:
        """Shard shape, or None if the array is not sharded."""
        return self._meta.grid_shape if self._meta.codec.shard is not None else None

    @property
    def fill_value(self) -> Any:
        """Value of never-written elements, as zarr-python reports it."""
        return self._meta.fill_value

    @property
    def ndim(self) -> int:
        return len(self._meta.shape)

    @property
    def size(self) -> int:
        return math.prod(self._meta.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the whole array decoded."""
        return self.size * self._meta.dtype.itemsize

    @property
    def zarr_format(self) -> int:
        return self._meta.zarr_format

    @property
    def metadata(self) -> ArrayMetadata:
        return self._meta

    @property
    def attrs(self) -> dict[str, Any]:
        """User attributes (v3: from ``zarr.json``; v2: ``.zattrs``, read on first use)."""
        if self._meta.attributes is None:
            prefix = f"{self._key_path}/" if self._key_path else ""
            raw = run_sync(self._store, get_data(self._store, prefix + ".zattrs"))
            attrs = parse_json(raw, f"{self._store.url}/{prefix}.zattrs") if raw else {}
            object.__setattr__(self._meta, "attributes", attrs)
        return self._meta.attributes  # type: ignore[return-value]

    @property
    def writable(self) -> bool:
        """Whether writes are allowed (opened with ``mode="r+"`` or made by
        ``create_array``)."""
        return self._mode == "r+"

    # -- writing (write.py) ----------------------------------------------------------------
    def __setitem__(self, selection: Any, value: Any) -> None:
        self.write(selection, value)

    def write(self, selection: Any, value: Any, *, write_empty_chunks: bool = False
              ) -> None:
        """Write ``value`` into ``selection`` (the same selections as reads: slices past the
        end clip, an integer out of bounds raises SelectionError). ``value`` is broadcast
        to the selection's shape; numpy arrays cast with ``same_kind`` rules, Python values
        by NumPy's (they must fit the dtype): CastError otherwise. Every error is raised
        before anything is written. Chunks (shards) the selection covers whole are written
        without reading them; others are read once, merged and written once. A chunk left
        all fill value is deleted unless ``write_empty_chunks``. Each object is replaced
        atomically. Thread-safe: concurrent writes of disjoint selections never lose an
        update (objects they share are merged one after the other). A store failure raises
        WriteError naming the object, with the objects already written in ``.written``."""
        sel, val = self._prepare_write(selection, value)
        if val.size:
            drive(self._write(sel, val, write_empty_chunks, SYNC))

    async def write_async(self, selection: Any, value: Any, *,
                          write_empty_chunks: bool = False) -> None:
        """``write`` for asyncio code (native encoding runs on a worker thread)."""
        sel, val = self._prepare_write(selection, value)
        if val.size:
            await self._write(sel, val, write_empty_chunks, ASYNC)

    async def _write(self, sel: Selection, value: np.ndarray, write_empty_chunks: bool,
                     steps: Steps) -> None:
        """One write, for both callers (``steps.py``): whole local chunks in one native call,
        anything else through the write pipeline (``write.py``)."""
        if self._whole_chunk_files(sel):
            await steps.call(self._write_files, sel, value, write_empty_chunks)
        else:
            await steps.run(self._store, self._write_objects(sel, value, write_empty_chunks))

    def _whole_chunk_files(self, sel: Selection) -> bool:
        """Whether the core writes ``sel`` as chunk files itself: a local unsharded array
        (as ``_files_root``) and whole chunks only (nothing to merge, nothing to lock)."""
        return (self._files_root() is not None
                and covers_whole_chunks(sel, self._meta.shape, self._meta.grid_shape))

    def _write_files(self, sel: Selection, value: np.ndarray, write_empty_chunks: bool
                     ) -> None:
        root = self._files_root()
        assert root is not None
        prefix = f"{self._key_path}/" if self._key_path else ""
        write_files(self._store, self._meta, root, prefix, sel, value, write_empty_chunks)

    def _prepare_write(self, selection: Any, value: Any) -> tuple[Selection, np.ndarray]:
        where = f"{self._store.url}/{self._key_path}"
        if not self.writable:
            raise ReadOnlyError(f"{where} was opened read-only (open_array(..., mode='r+') "
                                "to write)")
        check_writable(self._meta, where)
        sel = normalize_selection(selection, self._meta.shape)
        return sel, value_array(value, self._meta.dtype, sel)

    async def _write_objects(self, sel: Selection, value: np.ndarray,
                             write_empty_chunks: bool) -> None:
        prefix = f"{self._key_path}/" if self._key_path else ""
        written: list[str] = []
        try:
            await write_selection(self._store, self._meta, prefix, sel, value,
                                  WriteOptions(write_empty_chunks), written)
        finally:
            for key in written:  # what readers of this array or any cache held is stale
                self._index_cache.pop(key, None)
            forget_everywhere(self._store.identity, written)

    def write_dask(self, source: Any, *, compute: bool = True, **compute_kwargs: Any) -> Any:
        """Write the dask array ``source`` into this array: :func:`ngffcore.dask.store`."""
        from ngffcore.dask import store

        return store(source, self, compute=compute, **compute_kwargs)

    def update_attributes(self, attributes: dict[str, Any]) -> None:
        """Merge ``attributes`` into the array's user attributes (``dict.update``) and write
        them atomically (v3: ``zarr.json``; v2: ``.zattrs``)."""
        if not self.writable:
            raise ReadOnlyError(f"{self._store.url}/{self._key_path} was opened read-only")
        if not isinstance(attributes, dict):
            raise ArgumentError(f"attributes must be a dict, not {type(attributes).__name__}")
        merged = {**self.attrs, **attributes}
        prefix = f"{self._key_path}/" if self._key_path else ""
        meta = self._meta
        if meta.zarr_format == 3:
            doc = {**(meta.document or {}), "attributes": merged}
            run_sync(self._store, self._store.put(prefix + "zarr.json", metadata_bytes(doc)))
            object.__setattr__(meta, "document", doc)
        else:
            run_sync(self._store, self._store.put(prefix + ".zattrs", metadata_bytes(merged)))
        object.__setattr__(meta, "attributes", merged)

    # -- reading ---------------------------------------------------------------------------
    def __getitem__(self, selection: Any) -> np.ndarray:
        return self.read(selection)

    def read(self, selection: Any = Ellipsis, out: np.ndarray | None = None, *,
             cache: ChunkCache | None = None) -> np.ndarray:
        """Read ``selection`` into a new array, or into ``out`` (right shape and dtype, any
        strides, writable) which is returned. Missing chunks read as the fill value.
        ``cache``: take chunks from it and keep the ones decoded here (see ``cache.py``)."""
        sel = normalize_selection(selection, self._meta.shape)
        out = self._output(sel, out)
        if out.size:
            if cache is None and self._files_root() is not None:
                self._read_files(sel, out)  # the common local case, no coroutine at all
            else:
                drive(self._read(sel, out, cache, SYNC))
        return out

    async def read_async(self, selection: Any = Ellipsis, out: np.ndarray | None = None, *,
                         cache: ChunkCache | None = None) -> np.ndarray:
        """``read`` for asyncio code. Remote reads run on the caller's loop; cancelling one
        cancels its outstanding requests (a decode batch already in the core finishes first,
        so nothing writes into ``out`` after this returns or raises)."""
        sel = normalize_selection(selection, self._meta.shape)
        out = self._output(sel, out)
        if out.size:
            await self._read(sel, out, cache, ASYNC)
        return out

    async def _read(self, sel: Selection, out: np.ndarray, cache: ChunkCache | None,
                    steps: Steps) -> None:
        """One read of ``sel`` into ``out``, for both callers: ``steps`` does the waiting
        (``steps.py``)."""
        view = self._core_view(sel, out)
        store, index_cache = self._store, self._index_cache
        if cache is None or not self._meta.ndim:
            if self._files_root() is not None:
                await steps.call(self._read_files, sel, out)
            else:
                await steps.fetch(store, self._plan_selection(sel), view, index_cache)
            return
        cr = CachedRead(self, self._plan_selection(sel), sel, out, cache)
        direct = cr.direct()
        if direct is not None:  # not admitted: decoded into out, no slab
            await steps.fetch(store, direct, view, index_cache)
        while cr.todo:
            claim = cache.claim(cr.keys, cr.todo, cr.nbytes(len(cr.todo)))
            try:
                if claim.mine:
                    fill, decode = cr.fill(claim.mine)
                    await steps.fetch(store, fill, view, index_cache, decode)
                    cr.keep()
            finally:
                cache.release(claim)
            for pending in claim.others:
                await steps.wait(pending)
            cr.collect()
        await steps.call(cr.finish)

    def _files_root(self) -> bytes | None:
        """The array's directory when one native call reads the whole selection (chunk files
        the core reads itself: a store with ``local_root``, unsharded, no Python stages)."""
        root = self._store.local_root
        codec = self._meta.codec
        if root is None or codec.shard is not None or codec.python_stages:
            return None
        return root + os.fsencode(self._key_path + "/") if self._key_path else root

    def _read_files(self, sel: Selection, out: np.ndarray) -> None:
        """Everything from plan to scatter in one native call."""
        meta = self._meta
        assert meta.codec.pipeline is not None
        root = self._files_root()
        assert root is not None
        prefix = f"{self._key_path}/" if self._key_path else ""
        _core.read_chunk_files(meta.codec.pipeline, self._core_view(sel, out), meta.shape,
                               meta.grid_shape, sel.start, sel.stop, root, meta.key_encoding,
                               meta.key_separator, prefix, file_confine(self._store))

    def plan(self, selection: Any = Ellipsis) -> list[PlannedRequest]:
        """The requests a read of ``selection`` would send now, sending none (a dry run).

        One ``get`` per chunk object; for shards, the index request (until it is cached:
        stores that hand over bytes cache indexes per array, local ones read them each time)
        and the coalesced ranged reads (an index at the end costs two requests on a store
        without suffix ranges: Azure)."""
        plan = self._plan(selection)
        cached = self._index_cache if self._store.local_root is None else {}
        return planned_requests(plan, cached, suffix_ranges=self._store.suffix_ranges)

    @property
    def stats(self) -> RequestStats | None:
        """Requests sent by this array's store (shared by arrays on the same store); None for
        a store that sends none (local, memory: ``store.inline``)."""
        return None if self._store.inline else self._store.stats

    def _output(self, sel: Selection, out: np.ndarray | None) -> np.ndarray:
        shape = sel.out_shape
        nbytes = math.prod(shape) * self._meta.dtype.itemsize
        if nbytes > get_max_read_bytes():
            raise ReadLimitError(f"reading {shape} of {self._meta.dtype} from "
                                 f"{self._store.url}/{self._key_path} needs {nbytes} bytes; "
                                 f"the limit is {get_max_read_bytes()} "
                                 f"(ngffcore.set_max_read_bytes)")
        if out is None:
            return np.empty(shape, dtype=self._meta.dtype)
        if type(out) is not np.ndarray and not isinstance(out, np.ndarray):
            raise OutputError(f"out must be a numpy array, not {type(out).__name__}")
        if out.shape != shape:
            raise OutputError(f"out has shape {out.shape}, the selection has shape {shape}")
        if out.dtype != self._meta.dtype:
            raise OutputError(f"out has dtype {out.dtype}, the array has dtype "
                              f"{self._meta.dtype}")
        if not out.flags.writeable:
            raise OutputError("out is read-only")
        return out

    def _plan_selection(self, sel: Selection) -> ChunkPlan:
        prefix = f"{self._key_path}/" if self._key_path else ""
        return plan_chunks(self._meta, sel, prefix)

    def _plan(self, selection: Any = Ellipsis) -> ChunkPlan:
        """The chunks a read of ``selection`` touches, without reading anything."""
        return self._plan_selection(normalize_selection(selection, self._meta.shape))

    @staticmethod
    def _core_view(sel: Selection, out: np.ndarray) -> np.ndarray:
        """The core writes boxes of an ndim-dimensional output: dropped axes come back as
        length-1 axes of a view (no copy)."""
        if any(sel.dropped):
            return out[tuple(None if d else slice(None) for d in sel.dropped)]
        return out


def _metadata_keys(zarr_format: int | None, path: str) -> list[tuple[int, str]]:
    """The metadata objects that may describe an array at ``path``, in the order asked."""
    if zarr_format not in (None, 2, 3):
        raise ArgumentError(f"zarr_format must be 2, 3 or None, not {zarr_format!r}")
    prefix = f"{path}/" if path else ""
    return [(fmt, prefix + name) for fmt, name in ((3, "zarr.json"), (2, ".zarray"))
            if zarr_format in (None, fmt)]


def parse_array_metadata(zarr_format: int, raw: Any, where: str) -> ArrayMetadata:
    """``zarr.json`` (3) or ``.zarray`` (2) bytes → metadata; ``where`` names it in errors."""
    doc = parse_json(raw, where)
    return parse_v3(doc, where) if zarr_format == 3 else parse_v2(doc, where)


def _not_found(store: Store, zarr_format: int | None, path: str) -> NotFoundError:
    names = " and ".join(key.rsplit("/", 1)[-1] for _, key in _metadata_keys(zarr_format, path))
    return NotFoundError(f"no Zarr array at {store.url}/{path} (looked for {names})",
                         path=f"{store.url}/{path}")


__all__ = ["Array", "open_array", "MetadataError"]
