"""One GET on a fetch thread (``fetchthreads``) with obstore's blocking API, and what it
can come back as: the body (with the budget room it holds), the headers only (the read's
budget had no room yet), a body declared too long, or a body that failed after the headers.
``ObjectStore`` turns these outcomes into results, errors and retries; this module only runs
them and keeps the budget's books straight when the caller stops waiting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ngffcore.store import fetchthreads
from ngffcore.store.ioloop import ensure_exit_hook


@dataclass
class Body:
    data: Any  # obstore.Bytes: the buffer protocol, handed to the core without a copy
    size: int  # the object's size
    reserved: int  # bytes of the read's budget this body holds


@dataclass
class Headers:  # the response, its body not read: the budget had no room yet
    result: Any
    nbytes: int


@dataclass
class Declared:  # a response declaring more than max_bytes
    nbytes: int


@dataclass
class BodyFailed:  # the body failed after the headers (obstore does not retry that)
    error: Exception
    reserved: int


def fetch(store: Any, key: str, options: Any, max_bytes: int | None, budget: Any
           ) -> Body | Headers | Declared | BodyFailed:
    """One GET with obstore's blocking API, on a fetch thread: the headers, then the body
    once the read's budget has room for it (headers and body in one call: one hop back to
    the loop). A body longer than ``max_bytes`` is refused from the length the response
    declares, before it is read (obstore refuses a response that declares none, and stops
    a body at its declared length)."""
    import obstore

    result = obstore.get(store, key, options=options)
    start, stop = result.range
    if max_bytes is not None and stop - start > max_bytes:
        return Declared(stop - start)  # dropping the unread result closes the connection
    reserved = 0
    if budget is not None:
        if not budget.try_reserve(stop - start):
            return Headers(result, stop - start)
        reserved = stop - start
    return read_body(result, reserved)


def read_body(result: Any, reserved: int) -> Body | BodyFailed:
    try:
        return Body(result.bytes(), int(result.meta["size"]), reserved)
    except Exception as exc:
        return BodyFailed(exc, reserved)


async def on_fetch_thread(fn: Callable[[], Any], budget: Any) -> Any:
    """``fn()`` on a fetch thread. Cancelled before a thread took it, it is never sent;
    cancelled later, it runs on and the budget room its body took is given back."""
    ensure_exit_hook()  # at exit, wait for calls inside obstore before finalizing
    future = fetchthreads.submit(fn)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        future.cancel()
        loop = asyncio.get_running_loop()
        future.add_done_callback(lambda f: _soon(loop, _give_back, f, budget))
        raise


def _soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    """``fn(*args)`` on ``loop``, unless it has closed meanwhile (its reads, and their budgets,
    are gone)."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        pass


def _give_back(future: "concurrent.futures.Future[Any]", budget: Any) -> None:
    if budget is None or future.cancelled() or future.exception() is not None:
        return
    got = future.result()
    if isinstance(got, (Body, BodyFailed)) and got.reserved:
        budget.release(got.reserved)


async def read_later(got: Headers, budget: Any) -> Body | BodyFailed:
    """The body of a response whose headers came while the budget was full: wait for room,
    then read it on a fetch thread."""
    await budget.reserve(got.nbytes)
    try:
        # no give-back on cancelling: the room is given back here, once
        body: Body | BodyFailed = await on_fetch_thread(
            lambda: read_body(got.result, got.nbytes), None)
    except BaseException:
        budget.release(got.nbytes)
        raise
    return body


def _captured(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` returning the exception it raises instead of raising it (a batch's other
    GETs go on; the caller sorts the outcomes)."""
    def run() -> Any:
        try:
            return fn()
        except Exception as exc:
            return exc
    return run


async def on_fetch_threads(fns: Sequence[Callable[[], Any]]) -> list[Any]:
    """Every ``fn()`` on a fetch thread at once; their outcomes (an exception raised by one
    is its outcome), once all have ended: the loop wakes once, not once per GET, so a dozen
    responses landing together do not queue behind each other's Python on the loop.
    Cancelled: the calls no thread has taken are dropped, the others run to their end."""
    ensure_exit_hook()
    combined, items = fetchthreads.submit_all([_captured(fn) for fn in fns])
    try:
        return await asyncio.wrap_future(combined)
    except asyncio.CancelledError:
        for item in items:
            item.cancel()
        raise


__all__ = ["Body", "BodyFailed", "Declared", "Headers", "fetch", "on_fetch_thread",
           "on_fetch_threads", "read_body", "read_later"]
