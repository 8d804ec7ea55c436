"""``open_array`` and :class:`Array`: metadata once, then plan → fetch → decode → numpy."""

from __future__ import annotations

import asyncio
import math
import os
from typing import Any

import numpy as np

from ngffcore import _core
from ngffcore.zarr import remote
from ngffcore.zarr.cache import ChunkCache
from ngffcore.zarr.cacheread import CachedRead, stored_sources
from ngffcore.errors import MetadataError, NotFoundError, OutputError, ReadLimitError
from ngffcore.limits import get_max_read_bytes
from ngffcore.zarr.fetch import Source, chunk_sources, load_source
from ngffcore.store.location import open_store
from ngffcore.zarr.metadata import ArrayMetadata, parse_json, parse_v2, parse_v3
from ngffcore.zarr.plan import ChunkPlan, Selection, normalize_selection, plan_chunks
from ngffcore.store.local import LocalStore
from ngffcore.store.objectstore import ObjectStore
from ngffcore.store.stats import RequestStats
from ngffcore.store.protocol import Store
from ngffcore.store.ioloop import run_on_io_loop


def open_array(location: Any, *, zarr_format: int | None = None, **store_options: Any
               ) -> "Array":
    """Open the Zarr v2 or v3 array at ``location`` (path, URL or obstore store).

    Reads ``zarr.json`` (v3) or ``.zarray`` (v2) once; ``zarr_format`` skips the probe for the
    other format. Raises :class:`NotFoundError` if neither exists, :class:`MetadataError` if
    the metadata is invalid or unsupported. ``store_options``: see
    :func:`ngffcore.store.location.open_store` (``concurrency``, ``max_bytes_in_flight`` — bytes one
    remote read may hold received and not yet decoded, default 512 MiB — and obstore's).
    """
    store = open_store(location, **store_options)
    return Array._open(store, zarr_format)


class Array:
    """A Zarr v2 / v3 array (sharded or not). Reading is thread-safe; metadata is immutable.

    Shapes are in elements, selections are numpy basic indexing (ints, step-1 slices,
    ``...``), boxes are half-open.
    """

    __slots__ = ("_store", "_meta", "_key_path", "_index_cache")

    def __init__(self, store: Store, meta: ArrayMetadata, path: str = "") -> None:
        self._store = store
        self._meta = meta
        # where the array lives in its store; chunk keys start with it
        self._key_path = path
        # shard key -> parsed index (or None: no such shard); remote stores only, since a
        # local index costs one pread and a cached one could go stale under a writer
        self._index_cache: dict[str, Any] = {}

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
    def _open(cls, store: Store, zarr_format: int | None, path: str = "") -> "Array":
        for fmt, key in _metadata_keys(zarr_format, path):
            # asked one after the other: a v3 open stays exactly one GET (issue 3)
            raw = store.get(key)
            if raw is not None:
                return cls(store, parse_array_metadata(fmt, raw, f"{store.url}/{key}"), path)
        raise _not_found(store, zarr_format, path)

    @classmethod
    async def _open_async(cls, store: Store, zarr_format: int | None, path: str = ""
                          ) -> "Array":
        for fmt, key in _metadata_keys(zarr_format, path):
            raw = await store.get_async(key)
            if raw is not None:
                return cls(store, parse_array_metadata(fmt, raw, f"{store.url}/{key}"), path)
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
            raw = self._store.get(prefix + ".zattrs")
            attrs = parse_json(raw, f"{self._store.url}/{prefix}.zattrs") if raw else {}
            object.__setattr__(self._meta, "attributes", attrs)
        return self._meta.attributes  # type: ignore[return-value]

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
        if out.size == 0:
            return out
        if cache is not None and self._meta.ndim:
            cr = CachedRead(self, self._plan_selection(sel), sel, out, cache)
            direct = cr.direct()
            if direct is not None:  # not admitted: decoded into out, no slab
                if isinstance(self._store, ObjectStore):
                    run_on_io_loop(self._read_remote(direct, sel, out))
                else:
                    self._decode(direct, *chunk_sources(self._store, direct), sel, out)
            while cr.todo:
                claim = cache.claim(cr.keys, cr.todo, cr.nbytes(len(cr.todo)))
                try:
                    if claim.mine:
                        fill, decode = cr.fill(claim.mine)
                        if isinstance(self._store, ObjectStore):
                            run_on_io_loop(remote.read_into(
                                self._store, fill, self._core_view(sel, out),
                                self._index_cache, decode=decode))
                        else:
                            self._fill_local(fill, decode)
                        cr.keep()
                finally:
                    cache.release(claim)
                for pending in claim.others:
                    pending.wait()
                cr.collect()
            cr.finish()
            return out
        meta = self._meta
        if (isinstance(self._store, LocalStore) and meta.codec.shard is None
                and not meta.codec.python_stages):
            # the common local case: everything from plan to scatter in one native call
            assert meta.codec.pipeline is not None
            prefix = f"{self._key_path}/" if self._key_path else ""
            _core.read_chunk_files(meta.codec.pipeline, self._core_view(sel, out), meta.shape,
                                   meta.grid_shape, sel.start, sel.stop,
                                   os.fsencode(os.path.join(
                                       self._store.local_path(self._key_path), "")),
                                   meta.key_encoding, meta.key_separator, prefix,
                                   self._store.confine)
            return out
        plan = self._plan_selection(sel)
        if isinstance(self._store, ObjectStore):
            # on ngffcore's own event loop thread: works even inside a running event loop
            run_on_io_loop(self._read_remote(plan, sel, out))
            return out
        sources, names = chunk_sources(self._store, plan)
        self._decode(plan, sources, names, sel, out)
        return out

    async def read_async(self, selection: Any = Ellipsis, out: np.ndarray | None = None, *,
                         cache: ChunkCache | None = None) -> np.ndarray:
        """``read`` for asyncio code. Remote reads run on the caller's loop; cancelling one
        cancels its outstanding requests (a decode batch already in the core finishes first,
        so nothing writes into ``out`` after this returns or raises)."""
        sel = normalize_selection(selection, self._meta.shape)
        out = self._output(sel, out)
        if out.size == 0:
            return out
        plan = self._plan_selection(sel)
        if cache is not None and self._meta.ndim:
            cr = CachedRead(self, plan, sel, out, cache)
            direct = cr.direct()
            if direct is not None:  # not admitted: decoded into out, no slab
                if isinstance(self._store, ObjectStore):
                    await self._read_remote(direct, sel, out)
                else:
                    sources, names = await asyncio.get_running_loop().run_in_executor(
                        None, chunk_sources, self._store, direct)
                    await _to_completion(self._decode, direct, sources, names, sel, out)
            while cr.todo:
                claim = cache.claim(cr.keys, cr.todo, cr.nbytes(len(cr.todo)))
                try:
                    if claim.mine:
                        fill, decode = cr.fill(claim.mine)
                        if isinstance(self._store, ObjectStore):
                            await remote.read_into(self._store, fill, self._core_view(sel, out),
                                                   self._index_cache, decode=decode)
                        else:
                            await _to_completion(self._fill_local, fill, decode)
                        cr.keep()
                finally:
                    cache.release(claim)
                for pending in claim.others:
                    await pending.wait_async()
                cr.collect()
            await _to_completion(cr.finish)
            return out
        if isinstance(self._store, ObjectStore):
            await self._read_remote(plan, sel, out)
            return out
        assert isinstance(self._store, LocalStore)
        sources, names = await asyncio.get_running_loop().run_in_executor(
            None, chunk_sources, self._store, plan)
        await _to_completion(self._decode, plan, sources, names, sel, out)
        return out

    # -- reads through a chunk cache (cacheread.py) ----------------------------------------
    def _fill_local(self, fill: ChunkPlan, decode: remote.BatchDecoder) -> None:
        assert isinstance(self._store, LocalStore)
        sources, names = chunk_sources(self._store, fill)
        decode(np.arange(len(fill), dtype=np.int64), stored_sources(sources), names)

    async def _read_remote(self, plan: ChunkPlan, sel: Selection, out: np.ndarray) -> None:
        assert isinstance(self._store, ObjectStore)
        await remote.read_into(self._store, plan, self._core_view(sel, out), self._index_cache)

    def plan(self, selection: Any = Ellipsis) -> list[remote.PlannedRequest]:
        """The requests a read of ``selection`` would send now, sending none (a dry run).

        Remote stores: one ``get`` per chunk object; for shards, the index request (until it
        is cached) and the coalesced ranged reads. Local stores: one ``get`` per chunk object
        (a file read)."""
        plan = self._plan(selection)
        if isinstance(self._store, ObjectStore):
            return remote.planned_requests(plan, self._index_cache,
                                           suffix_ranges=self._store.suffix_ranges)
        return remote.planned_requests(plan, {})

    @property
    def stats(self) -> RequestStats | None:
        """Requests sent by this array's store (shared by arrays on the same store); None for
        local stores, which send none."""
        return self._store.stats if isinstance(self._store, ObjectStore) else None

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

    def _decode(self, plan: ChunkPlan, sources: list[Source], names: list[str],
                sel: Selection, out: np.ndarray) -> None:
        assert plan.codec.pipeline is not None  # innermost chunks always have one
        _core.decode_batch(plan.codec.pipeline, self._core_view(sel, out), plan.boxes, sources,
                           names)

    @staticmethod
    def _core_view(sel: Selection, out: np.ndarray) -> np.ndarray:
        """The core writes boxes of an ndim-dimensional output: dropped axes come back as
        length-1 axes of a view (no copy)."""
        if any(sel.dropped):
            return out[tuple(None if d else slice(None) for d in sel.dropped)]
        return out

    def _prefetch(self, selection: Any = Ellipsis) -> "PrefetchedRead":
        """Read every needed chunk's bytes into memory now; ``.run(out)`` then decodes and
        scatters them in one native call (the benchmark's no-I/O limit). Local arrays only:
        benchmarks of remote reads measure their limit on the same data opened locally."""
        if not isinstance(self._store, LocalStore):
            raise TypeError("_prefetch reads local arrays only")
        sel = normalize_selection(selection, self._meta.shape)
        plan = self._plan_selection(sel)
        sources, names = chunk_sources(self._store, plan)
        loaded: list[Source] = [load_source(s) for s in sources]
        return PrefetchedRead(self, sel, plan, loaded, names)


async def _to_completion(fn: Any, *args: Any) -> None:
    """Run native work (which writes into the caller's buffers) on a worker thread. If the
    awaiting task is cancelled, the work still runs to its end before CancelledError
    propagates: nothing writes into ``out`` after the read has returned or raised."""
    work = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    try:
        await asyncio.shield(work)
    except asyncio.CancelledError:
        while not work.done():
            try:
                await asyncio.wait([work])
            except asyncio.CancelledError:
                pass
        raise


def _metadata_keys(zarr_format: int | None, path: str) -> list[tuple[int, str]]:
    """The metadata objects that may describe an array at ``path``, in the order asked."""
    if zarr_format not in (None, 2, 3):
        raise ValueError(f"zarr_format must be 2, 3 or None, not {zarr_format!r}")
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


class PrefetchedRead:
    """Encoded bytes of one read, held in memory; decoding them does no I/O."""

    def __init__(self, array: Array, sel: Selection, plan: ChunkPlan, sources: list[Source],
                 names: list[str]) -> None:
        self.array = array
        self.selection = sel
        self.plan = plan
        self.sources = sources
        self.names = names

    @property
    def shape(self) -> tuple[int, ...]:
        return self.selection.out_shape

    def run(self, out: np.ndarray | None = None) -> np.ndarray:
        out = self.array._output(self.selection, out)
        if out.size:
            self.array._decode(self.plan, self.sources, self.names, self.selection, out)
        return out


__all__ = ["Array", "open_array", "PrefetchedRead", "MetadataError"]
