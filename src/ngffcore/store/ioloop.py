"""ngffcore's asyncio plumbing: the private I/O event loop thread and its orderly shutdown
at exit, cancellation-proof waits, and the byte budget a response's body waits for.

obstore runs its requests on a Rust (tokio) runtime whose threads call back into Python
when a request ends, and also when the asyncio future of a cancelled request is found
cancelled. A tokio thread that takes the GIL while the interpreter finalizes kills the
process (SIGSEGV, SIGABRT or SIGBUS). So before finalization (an ``atexit`` hook, which runs
first) ngffcore cancels every task of its loop, stops the loop, joins its thread, and waits
(bounded) until obstore has let go of every future ngffcore handed it, and until no fetch
thread (``fetchthreads``: GETs run with obstore's blocking API) is inside obstore.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import threading
import time
import weakref
from contextvars import ContextVar
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")

#: bound on each wait of the shutdown at exit (seconds): for the loop's tasks to finish
#: after being cancelled, and for obstore to release the futures of its requests
EXIT_TIMEOUT = 5.0

_lock = threading.Lock()
#: asyncio futures returned by obstore that its runtime may still complete or inspect
_obstore_futures: "weakref.WeakSet[Any]" = weakref.WeakSet()
_hook_registered = False


def ensure_exit_hook() -> None:
    global _hook_registered
    if _hook_registered:  # every request passes here: no lock once it is done
        return
    with _lock:
        if not _hook_registered:
            atexit.register(shutdown)
            _hook_registered = True


def track(future: T) -> T:
    """Note an awaitable obstore returned, so the shutdown at exit waits until obstore's
    runtime no longer holds it (it is freed only once the Rust side dropped it)."""
    try:
        with _lock:
            _obstore_futures.add(future)
    except TypeError:  # not weak-referenceable: nothing obstore will call back into
        return future
    ensure_exit_hook()
    return future


class LoopThread:
    """One private event loop thread, so sync reads work inside a running event loop."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    @classmethod
    def run(cls, coro: Coroutine[Any, Any, T]) -> T:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="ngffcore-io",
                                          daemon=True)
                thread.start()
                cls._loop, cls._thread = loop, thread
                ensure_exit_hook()
            loop = cls._loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    @classmethod
    def stop(cls, timeout: float = EXIT_TIMEOUT) -> None:
        """Cancel every task on the loop, wait (up to ``timeout``) for them to finish, then
        stop and close the loop and join its thread. The next ``run`` starts a new one."""
        with cls._lock:
            loop, thread = cls._loop, cls._thread
            cls._loop = cls._thread = None
        if loop is None or thread is None:
            return
        if loop.is_running() and thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(_cancel_all(timeout), loop).result(
                    timeout + 1.0)
            except BaseException:  # a stuck task must not keep the process from exiting
                pass
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
        if not loop.is_running():
            loop.close()


async def _cancel_all(timeout: float) -> None:
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)


def _obstore_settled(deadline: float) -> bool:
    """Wait until obstore holds none of the futures ngffcore handed it, or ``deadline``.
    A cancelled future lives on in reference cycles (its exception's traceback), hence the
    collection before each look; the sleep releases the GIL to the runtime's threads."""
    while True:
        with _lock:
            left = len(_obstore_futures)
        if left:
            gc.collect()
            with _lock:
                left = len(_obstore_futures)
        if not left or time.monotonic() >= deadline:
            return not left
        time.sleep(0.005)


def shutdown(timeout: float = EXIT_TIMEOUT) -> None:
    """Stop the I/O loop and wait for obstore's pending work (the ``atexit`` hook)."""
    from ngffcore.store import fetchthreads

    LoopThread.stop(timeout)
    _obstore_settled(time.monotonic() + timeout)
    fetchthreads.settled(time.monotonic() + timeout)


def run_on_io_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on ngffcore's private event loop thread and wait for it."""
    return LoopThread.run(coro)


async def settle(*futures: "asyncio.Future[Any]") -> bool:
    """Wait until every one of ``futures`` is done, whatever cancellations of the caller
    arrive meanwhile (a cleanup that a second ``cancel()`` could cut short would leave native
    work writing into the caller's buffer, or tasks pending). True if the caller was
    cancelled during the wait: it then re-raises CancelledError once its cleanup is over."""
    cancelled = False
    pending = {f for f in futures if not f.done()}
    while pending:
        try:
            _, pending = await asyncio.wait(pending)
        except asyncio.CancelledError:
            cancelled = True
    return cancelled


async def gather_or_cancel(*aws: Any) -> list[Any]:
    """``asyncio.gather``, except that when one fails (or the caller is cancelled) the others
    are cancelled and awaited before the error propagates: no request of a failed read is
    left running."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    if not tasks:
        return []
    cancelled = False
    try:
        # asyncio.wait, not gather: a cancelled gather cancels the children itself, and the
        # cleanup here would cancel them a second time, cutting their own cleanup short
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        cancelled = True
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
    if cancelled or failed or any(t.cancelled() for t in tasks):
        for task in tasks:
            if not task.done():
                task.cancel()
        cancelled |= await settle(*tasks)
        for task in tasks:  # retrieved, so none is reported as never retrieved
            if not task.cancelled():
                task.exception()
        if cancelled or not failed:
            raise asyncio.CancelledError
        error = failed[0].exception()
        assert error is not None  # failed holds the tasks that raised
        raise error
    return [t.result() for t in tasks]


#: default of ``max_bytes_in_flight``: bytes of responses one remote read has received (or
#: has room reserved for) and not yet decoded
DEFAULT_MAX_BYTES_IN_FLIGHT = 512 * 1024 * 1024

#: the byte budget (``zarr.pipeline.Budget``) of the read running in this context, or None. A GET
#: takes room for its body when the response headers have told its length, before reading
#: it: the bound then holds for bytes held, however many requests are in flight
BODY_BUDGET: ContextVar[Any] = ContextVar("ngffcore_body_budget", default=None)


async def hold_body(nbytes: int) -> None:
    """Take room in the context's budget for a body of ``nbytes`` that a store holds whole
    already (memory, a local file read): every store's ``get`` takes its body's room, so
    the read that releases it as chunks are decoded never gives back more than it took."""
    budget = BODY_BUDGET.get()
    if budget is not None:
        await budget.reserve(nbytes)
