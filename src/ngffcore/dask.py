"""Dask arrays read through the core: ``Array.to_dask`` / ``Image.to_dask`` (issue 7); and
written: :func:`store` / ``Array.write_dask`` (issue 15).

Each block of the dask array is one :meth:`ngffcore.Array.read` of its box: one native batch
locally, one pipelined remote read (every request of the block in flight) for object stores.
dask is imported here only, on first use; it is not a dependency of ngffcore.

**Block rule.** Start from the storage grid: the shard shape when the array is sharded,
else the chunk shape. Grow the block by whole multiples of the grid along the axes from the
outermost in: an axis is taken whole while the block stays within ``block_bytes``
(:data:`DEFAULT_BLOCK_BYTES`, 64 MiB), and the first axis that cannot be taken whole gets the
largest multiple that fits, evened out so the blocks along it are about equal; the axes
inside it stay one grid cell. A block is never smaller than one grid cell (a shard larger
than ``block_bytes`` is one block) and never splits one. Blocks sit on the array's global
grid: a region's first and last blocks along an axis are clipped, not shifted.

Why outermost first: whole-level work on OME images reduces over the outer axes (t, c, z:
projections, per-channel statistics, per-pixel channel arithmetic), and with those axes whole
in a block the reduction finishes inside the task; the y/x extent grows last. Why 64 MiB:
a block is then ~30-60 ms of decode per core, far above dask's per-task overhead (~0.1 ms
threaded, ~1 ms distributed) and, remote, hundreds of requests in flight per read for the
usual 0.25-4 MiB chunks, while a 1 GiB level still gives 16 tasks to spread over workers and
a worker thread holds one block (plus its reduction) at a time. dask's own default
(``array.chunk-size``, 128 MiB) halves the tasks and measured slower (docs/design.md, "Dask").

``chunks=`` overrides the block shape: one entry per axis, each a multiple of the grid (or
at least the axis length, or -1 / None: the whole axis), or dask-style explicit block sizes
per axis whose boundaries all lie on grid lines (or a single int for every axis). Anything
else raises :class:`ngffcore.ArgumentError` (a ``ValueError``).

**Names.** Task names are ``ngffcore-<token>``, the token a hash of the store URL (user
info, query and fragment removed) with the non-secret settings that locate it (endpoint,
region, bucket), the array's path, its metadata document, the region box and the block
sizes: never credentials or other store options, which travel only inside the pickled store
(see ``ObjectStore.__reduce__``).

**Threads** (``docs/design.md``, "Dask"): the threaded scheduler shares the calling process's
native pool as it is (it is process-wide, so dask's threads add at most their own number to
it). Inside a ``dask.distributed`` worker process, the first block read sizes the pool by
:func:`worker_pool_size`: ``OMP_NUM_THREADS``, which dask's nanny sets to 1 in the worker
processes it starts, unless ``ngffcore.set_num_threads`` was called in that process.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from ngffcore import _core
from ngffcore.errors import ArgumentError, SelectionError
from ngffcore.zarr.grid import Box, cells_spanned, cut
from ngffcore.zarr.plan import normalize_selection

if TYPE_CHECKING:  # Array.to_dask imports this module: no import of zarr.array at run time
    from ngffcore.zarr.array import Array

#: target size of one block (bytes of decoded pixels) when ``chunks`` is not given
DEFAULT_BLOCK_BYTES = 64 * 2**20


# -- blocks --------------------------------------------------------------------------------
def storage_grid(array: Array) -> tuple[int, ...]:
    """The storage grid blocks align with: the shard shape if sharded, else the chunk
    shape."""
    return array.metadata.grid_shape


def default_block_shape(array: Array, box: Box | None = None,
                        block_bytes: int | None = None) -> tuple[int, ...]:
    """Block shape the rule picks for ``box`` (default: the whole array); multiples of the
    storage grid, possibly larger than the box along axes taken whole."""
    target = DEFAULT_BLOCK_BYTES if block_bytes is None else int(block_bytes)
    if target < 1:
        raise ArgumentError(f"block_bytes must be positive, not {block_bytes!r}")
    box = _full_box(array) if box is None else box
    grid = storage_grid(array)
    extent = [b - a for a, b in box]
    if 0 in extent:
        return grid
    cells = [cells_spanned(a, b, g) for (a, b), g in zip(box, grid)]
    block = list(grid)
    itemsize = array.dtype.itemsize
    for k in range(len(block)):
        if cells[k] <= 1:
            continue
        per_cell = itemsize * math.prod(min(n, e) if j != k else min(grid[k], e)
                                        for j, (n, e) in enumerate(zip(block, extent)))
        fit = target // per_cell
        if fit >= cells[k]:
            block[k] = cells[k] * grid[k]  # the whole axis
            continue
        if fit >= 2:
            n_blocks = -(-cells[k] // fit)
            block[k] = -(-cells[k] // n_blocks) * grid[k]  # about equal blocks
        break
    return tuple(block)


def block_chunks(array: Array, box: Box | None = None, chunks: Any = None,
                 block_bytes: int | None = None) -> tuple[tuple[int, ...], ...]:
    """Dask ``chunks`` (block sizes per axis) of ``box`` under the block rule or the
    ``chunks`` override (validated: see the module docstring)."""
    box = _full_box(array) if box is None else box
    grid = storage_grid(array)
    shape = array.shape
    ndim = len(shape)
    if chunks is None:
        block: Any = default_block_shape(array, box, block_bytes)
    elif isinstance(chunks, (int, np.integer)) and not isinstance(chunks, bool):
        block = (int(chunks),) * ndim
    elif isinstance(chunks, (tuple, list)):
        block = tuple(chunks)
    else:
        raise ArgumentError(f"chunks must be None, an int or one entry per axis, not "
                         f"{chunks!r}")
    if len(block) != ndim:
        raise ArgumentError(f"chunks {chunks!r} has {len(block)} entries; the array has "
                         f"{ndim} axes")
    out = []
    for k, (b, g, n, (a, z)) in enumerate(zip(block, grid, shape, box)):
        if isinstance(b, (tuple, list)):
            out.append(_explicit_sizes(k, b, g, n, a, z))
            continue
        if b is None or (isinstance(b, (int, np.integer)) and b == -1):
            b = max(n, 1)
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise ArgumentError(f"chunks[{k}] = {b!r}: expected a positive int, -1 or None, or "
                             f"a tuple of block sizes")
        b = int(b)
        if b % g and b < n:
            raise ArgumentError(f"chunks[{k}] = {b} is not a multiple of the storage grid "
                             f"({g} along axis {k}: {_grid_name(array)} {grid}); blocks "
                             f"may not split a chunk or shard")
        out.append(_sizes(a, z, b))
    return tuple(out)


def _sizes(a: int, z: int, b: int) -> tuple[int, ...]:
    """Sizes of the blocks of ``[a, z)`` cut at the multiples of ``b``."""
    return tuple(y - x for x, y in cut(a, z, b)) or (0,)


def _explicit_sizes(k: int, sizes: Any, g: int, n: int, a: int, z: int) -> tuple[int, ...]:
    try:
        sizes = tuple(operator.index(s) for s in sizes)
    except TypeError:
        raise ArgumentError(f"chunks[{k}] = {sizes!r}: block sizes must be ints") from None
    if any(s < 0 for s in sizes) or sum(sizes) != z - a:
        raise ArgumentError(f"chunks[{k}] = {sizes!r} must be non-negative and sum to the "
                         f"axis extent {z - a}")
    edge = a
    for s in sizes[:-1]:
        edge += s
        if edge % g and edge not in (a, z, n):
            raise ArgumentError(f"chunks[{k}] = {sizes!r}: a block boundary at {edge} splits "
                             f"a chunk or shard of the storage grid ({g} along axis {k})")
    return sizes if sizes else (0,)


def _grid_name(array: Array) -> str:
    return "shard shape" if array.shards is not None else "chunk shape"


def _full_box(array: Array) -> Box:
    return tuple((0, n) for n in array.shape)


# -- names ---------------------------------------------------------------------------------
def public_url(url: str) -> str:
    """``url`` without user info, query or fragment (where credentials and signatures
    hide): what may appear in task names."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


#: store settings that tell two stores with the same URL (or obstore repr) apart and are
#: not secrets: the only store options that enter task names
_IDENTITY_OPTIONS = ("endpoint", "aws_endpoint", "aws_endpoint_url", "region", "aws_region",
                     "bucket", "aws_bucket", "account_name", "azure_storage_account_name",
                     "container_name", "azure_container_name", "url")


def _store_identity(store: Any) -> list[Any]:
    """The store's URL without credentials, plus the non-secret settings that locate its
    data (an endpoint, a region; for an obstore object, its config's and prefix)."""
    options = getattr(store, "_options", None)
    if options is None:  # local, or made from an obstore object
        obj = getattr(store, "store", None)
        options = dict(getattr(obj, "config", None) or {})
        options["prefix"] = str(getattr(obj, "prefix", "") or "")
    located = {k: str(v) for k, v in options.items() if k in _IDENTITY_OPTIONS + ("prefix",)}
    return [public_url(store.url), sorted(located.items())]


def dask_name(array: Array, box: Box, chunks: tuple[tuple[int, ...], ...]) -> str:
    """``ngffcore-<token>``: a hash of what the blocks read (store URL without
    credentials and the endpoint/region that locate it, array path, metadata document,
    region box, blocks); no credentials or other store options."""
    meta = array.metadata
    doc = meta.document if meta.document is not None else repr(meta)
    what = json.dumps([_store_identity(array._store), array._key_path, doc,
                       [list(b) for b in box], [list(c) for c in chunks]],
                      sort_keys=True, default=str)
    return "ngffcore-" + hashlib.sha256(what.encode()).hexdigest()[:32]


# -- tasks ---------------------------------------------------------------------------------
class BlockSource:
    """What dask slices: ``array`` restricted to the box starting at ``offset`` with
    ``shape``. ``source[index]`` takes numpy indexing relative to the box (ints, slices with
    any step, ``...``, integer or boolean arrays along an axis) and does one
    :meth:`Array.read` of the index's bounding box, then takes the index from it: slices
    that dask fuses into a block's getter read only what they need. Picklable (small: the
    array's metadata document, the store's URL and options)."""

    __slots__ = ("array", "offset", "shape", "dtype")

    def __init__(self, array: Array, offset: tuple[int, ...], shape: tuple[int, ...]) -> None:
        self.array = array
        self.offset = tuple(offset)
        self.shape = tuple(shape)
        self.dtype = array.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __reduce__(self) -> tuple[Any, ...]:
        return (BlockSource, (self.array, self.offset, self.shape))

    def __repr__(self) -> str:
        return f"BlockSource({self.array!r}, offset={self.offset}, shape={self.shape})"

    def __getitem__(self, index: Any) -> np.ndarray:
        sel, post = self._selection(index)
        _size_pool_for_worker()
        data = self.array.read(sel)
        return data if post is None else data[post]

    def _selection(self, index: Any) -> tuple[tuple[slice, ...], tuple[Any, ...] | None]:
        """The absolute bounding box to read (step-1 slices, no axis dropped) and the numpy
        index that takes ``index``'s result from it (None: the box is the result).

        The basic part (ints, step-1 slices, ``...``) is the array's own selection rule
        (:func:`ngffcore.zarr.plan.normalize_selection`); stepped slices and index arrays,
        which dask fuses into the getter, stand in as whole axes there and are narrowed
        to their bounding interval here."""
        items = index if isinstance(index, tuple) else (index,)
        basic = tuple(slice(None) if _is_fancy(ix) else ix for ix in items)
        sel = normalize_selection(basic, self.shape)
        start, stop = list(sel.start), list(sel.stop)
        post: list[Any] = [0 if d else slice(None) for d in sel.dropped]
        at = next((k for k, ix in enumerate(items) if ix is Ellipsis), None)
        for k, ix in enumerate(items):
            if not _is_fancy(ix):
                continue
            axis = k if at is None or k < at else self.ndim - (len(items) - k)
            start[axis], stop[axis], post[axis] = _fancy_axis(ix, self.shape[axis])
        box = tuple(slice(off + a, off + b) for off, a, b in zip(self.offset, start, stop))
        whole = all(isinstance(p, slice) and p == slice(None) for p in post)
        return box, None if whole else tuple(post)


def _is_fancy(ix: Any) -> bool:
    """An index item beyond basic step-1 indexing: an index array or a stepped slice."""
    if isinstance(ix, slice):
        return ix.step is not None and ix.step != 1
    return isinstance(ix, (list, np.ndarray))


def _fancy_axis(ix: Any, n: int) -> tuple[int, int, Any]:
    """The interval ``[lo, hi)`` of an axis of ``n`` that a stepped slice or an index array
    touches, and the index taking its elements from that interval."""
    if isinstance(ix, slice):
        r = range(*ix.indices(n))
        if len(r) == 0:
            return 0, 0, slice(None)
        # the interval spans exactly the slice's first..last element
        return min(r[0], r[-1]), max(r[0], r[-1]) + 1, slice(None, None, r.step)
    arr = np.asarray(ix)
    if arr.dtype == bool:
        if arr.ndim != 1 or len(arr) != n:
            raise SelectionError(f"boolean index of shape {arr.shape} for an axis "
                                 f"of length {n}")
        arr = np.flatnonzero(arr)
    if arr.dtype.kind not in "iu" and arr.size:
        raise SelectionError(f"arrays used as indices must be integers, not {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < -n or arr.max() >= n):
        raise SelectionError(f"index out of range for an axis of length {n}")
    arr = arr % n if n else arr
    lo = int(arr.min()) if arr.size else 0
    hi = int(arr.max()) + 1 if arr.size else 0
    return lo, hi, arr - lo


#: the native pool size this process's dask tasks settled on (None: not decided yet)
_worker_threads: int | None = None
_worker_lock = threading.Lock()


def worker_pool_size(cores: int, environ: Any = os.environ) -> int | None:
    """Native pool size for a ``dask.distributed`` worker process: the per-process limit dask
    sets for native thread pools in the worker processes it starts, ``OMP_NUM_THREADS`` (the
    nanny sets it to 1 by default, ``distributed.nanny.pre-spawn-environ``: the cluster's
    processes × threads already fill the cores), at most ``cores``. None when there is no
    such limit (workers without a nanny, or in the client's own process): the pool is then
    left as it is, as under the threaded scheduler."""
    try:
        limit = int(environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return min(limit, max(1, cores)) if limit >= 1 else None


def _size_pool_for_worker() -> None:
    """Inside a ``dask.distributed`` worker, once per process: size the native pool by
    :func:`worker_pool_size` (``docs/design.md``, "Dask"), unless ``ngffcore.set_num_threads``
    was called in this process. Outside distributed workers nothing happens (the threaded
    scheduler shares the caller's pool as it is)."""
    global _worker_threads
    if _worker_threads is not None:
        return
    if not _in_distributed_worker():
        return  # asked again at the next block (cheap): a worker may start here later
    with _worker_lock:
        if _worker_threads is not None:
            return
        size = worker_pool_size(_cores())
        if size is not None and _core_pool_is_default():
            _core.set_num_threads(size)
        _worker_threads = int(_core.get_num_threads())


def _in_distributed_worker() -> bool:
    """This code runs in a task of a ``dask.distributed`` worker."""
    import sys

    if "distributed" not in sys.modules:
        return False
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def _cores() -> int:
    return int(_core.default_num_threads())


def _core_pool_is_default() -> bool:
    """Nobody called ``ngffcore.set_num_threads`` in this process."""
    import ngffcore

    return not ngffcore._threads_set_explicitly


def to_dask(array: Array, chunks: Any = None, *, block_bytes: int | None = None,
            box: Box | None = None) -> Any:
    """``array`` (or its half-open pixel ``box``) as a ``dask.array.Array``; blocks and
    names as the module docstring says. Each task reads its block with one
    :meth:`Array.read`."""
    import dask.array as da

    full = _full_box(array)
    if box is None:
        box = full
    box = tuple((int(a), int(b)) for a, b in box)
    if len(box) != array.ndim or any(not 0 <= a <= b <= n
                                     for (a, b), n in zip(box, array.shape)):
        raise ArgumentError(f"box {box} does not lie inside the array's shape {array.shape}")
    sizes = block_chunks(array, box, chunks, block_bytes)
    source = BlockSource(array, tuple(a for a, _ in box), tuple(b - a for a, b in box))
    # fancy=True: dask fuses later slicing (and integer-array indexing) into the getter only
    # then (dask 2026.8 never fuses into getter_nofancy), so x[0, 5] reads one plane's chunks
    from_array: Any = da.from_array  # dask's own annotations leave it untyped
    return from_array(source, chunks=sizes, name=dask_name(array, box, sizes),
                         asarray=False, fancy=True, lock=False,
                         meta=np.empty((0,) * array.ndim, dtype=array.dtype))


# -- writing -------------------------------------------------------------------------------
def aligned_chunks(chunks: tuple[tuple[int, ...], ...], grid: tuple[int, ...],
                   shape: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Block sizes near ``chunks`` whose boundaries all lie on the storage ``grid`` (the
    last block of an axis ends at the array's end): no two blocks share a chunk or shard."""
    out = []
    for sizes, g, n in zip(chunks, grid, shape):
        typical = max(sizes) if sizes else g
        b = max(g, round(typical / g) * g)
        out.append(tuple(min(b, n - a) for a in range(0, n, b)) if n else (0,))
    return tuple(out)


def store(source: Any, array: Array, *, compute: bool = True, **compute_kwargs: Any) -> Any:
    """Write the dask array ``source`` (the array's shape; values cast as ``Array.write``
    casts) into ``array`` (writable). ``source`` is first rechunked so every block's
    boundaries lie on the array's object grid (shards, or chunks when unsharded): no two
    tasks touch one object, so tasks on different processes or machines
    (``dask.distributed``) never lose each other's data, with no lock. Each task writes its
    block with one :meth:`Array.write`. ``compute=False`` returns the delayed result, as
    ``dask.array.store``."""
    import dask.array as da

    from ngffcore.errors import ReadOnlyError

    if tuple(source.shape) != array.shape:
        raise ArgumentError(f"the dask array's shape {tuple(source.shape)} is not the "
                            f"array's {array.shape}")
    if not array.writable:
        raise ReadOnlyError(f"{array!r} was opened read-only: open_array(..., mode='r+')")
    aligned = source.rechunk(aligned_chunks(source.chunks, storage_grid(array), array.shape))
    target: Any = array  # dask only needs __setitem__
    return da.store(aligned, target, lock=False, compute=compute, **compute_kwargs)


__all__ = ["DEFAULT_BLOCK_BYTES", "BlockSource", "aligned_chunks", "block_chunks",
           "dask_name", "default_block_shape", "public_url", "storage_grid", "store",
           "to_dask", "worker_pool_size"]
