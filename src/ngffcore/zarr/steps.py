"""Sync from async, once: a read is written one time, as a coroutine whose waiting steps are
injected — :data:`SYNC` runs each step directly (on the calling thread, or on the I/O loop
for a store that must await the network) and never suspends, so :func:`drive` completes the
coroutine without an event loop; :data:`ASYNC` awaits each step on the caller's loop (native
work on a worker thread, run to its end even when the caller is cancelled).

Steps: ``fetch`` (the chunk pipeline, ``pipeline.read_into``), ``call`` (native work that
writes into the caller's buffers, or reads from them), ``run`` (a store coroutine: the write
pipeline) and ``wait`` (for another read's claim on cached chunks).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Coroutine, TypeVar

import numpy as np

from ngffcore.errors import NgffError
from ngffcore.store.ioloop import run_on_io_loop, settle
from ngffcore.store.protocol import Store
from ngffcore.store.sync import run_sync
from ngffcore.zarr.pipeline import BatchDecoder, read_into
from ngffcore.zarr.plan import ChunkPlan
from ngffcore.zarr.sharding import ShardIndex

T = TypeVar("T")


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine written against :data:`SYNC` steps (it never suspends)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise NgffError("internal error: a synchronous read suspended")


def _fetch_sync(store: Store, plan: ChunkPlan, out: np.ndarray,
                index_cache: dict[str, ShardIndex | None], decode: BatchDecoder | None) -> None:
    coro = read_into(store, plan, out, index_cache, decode)
    if store.local_root is not None:
        run_sync(store, coro)  # inline for a local store: no event loop hop
    else:
        # on ngffcore's own event loop thread: works even inside a running event loop
        run_on_io_loop(coro)


class SyncSteps:
    """Each step done before it returns: the coroutine using them never suspends."""

    async def fetch(self, store: Store, plan: ChunkPlan, out: np.ndarray,
                    index_cache: dict[str, ShardIndex | None],
                    decode: BatchDecoder | None = None) -> None:
        _fetch_sync(store, plan, out, index_cache, decode)

    async def call(self, fn: Callable[..., Any], *args: Any) -> None:
        fn(*args)

    async def run(self, store: Store, coro: Coroutine[Any, Any, T]) -> T:
        """A store coroutine, waited for here (inline, or on the I/O loop)."""
        return run_sync(store, coro)

    async def wait(self, pending: Any) -> None:
        pending.wait()


class AsyncSteps:
    """Each step awaited on the caller's loop."""

    async def fetch(self, store: Store, plan: ChunkPlan, out: np.ndarray,
                    index_cache: dict[str, ShardIndex | None],
                    decode: BatchDecoder | None = None) -> None:
        if store.local_root is not None:
            # the core reads the files itself and blocks while it does: on a worker thread
            await to_completion(_fetch_sync, store, plan, out, index_cache, decode)
        else:
            await read_into(store, plan, out, index_cache, decode)

    async def call(self, fn: Callable[..., Any], *args: Any) -> None:
        await to_completion(fn, *args)

    async def run(self, store: Store, coro: Coroutine[Any, Any, T]) -> T:
        """A store coroutine, awaited on the caller's loop."""
        return await coro

    async def wait(self, pending: Any) -> None:
        await pending.wait_async()


#: the steps of a synchronous read (:func:`drive` runs it) and of one awaited on a loop
SYNC = SyncSteps()
ASYNC = AsyncSteps()
Steps = SyncSteps | AsyncSteps


async def to_completion(fn: Callable[..., Any], *args: Any) -> None:
    """Run native work (which writes into the caller's buffers) on a worker thread. If the
    awaiting task is cancelled, the work still runs to its end before CancelledError
    propagates: nothing writes into ``out`` after the read has returned or raised."""
    work = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    try:
        await asyncio.shield(work)
    except asyncio.CancelledError:
        await settle(work)  # however many more cancellations arrive meanwhile
        raise


__all__ = ["ASYNC", "SYNC", "AsyncSteps", "Steps", "SyncSteps", "drive", "to_completion"]
