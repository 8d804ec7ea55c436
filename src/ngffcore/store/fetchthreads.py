"""The threads that run obstore's blocking requests for the I/O loop.

Awaiting obstore's asyncio API costs two hops from its Rust runtime to the event loop per
GET (``get_async``, then ``bytes_async``), each a ``call_soon_threadsafe`` that waits for the
loop and the GIL; with a dozen responses landing at once the last body reached Python about
2 ms after it left the server. The blocking API called on a thread of its own (headers and
body in one call, the GIL released throughout) hands the body over in one hop: the bodies of
a cold viewer tile arrive ~1.5 ms sooner (docs/targets.md, "Issue 17").

Threads are daemons, started as requests need them (at most ``MAX_THREADS``, with small
stacks), wait on one queue, and end after ``IDLE_SECONDS`` without work (a burst of requests
leaves no threads behind). A call cancelled before a thread took it is never sent; one already sent
runs to its end (a blocking request cannot be stopped) and its result is dropped. At exit,
``ioloop.shutdown`` waits (bounded) until no call is inside obstore, so no thread returns into
a finalizing interpreter (which would kill the process).
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

#: the most threads blocked in requests at once (one per request in flight; a read's own
#: ``concurrency`` bounds how many it sends; beyond this, requests queue)
MAX_THREADS = 256
#: a thread without work for this long ends
IDLE_SECONDS = 5.0
#: stack of a fetch thread: a blocking obstore call and a few Python frames, not the
#: interpreter's default (8 MiB of address space each: 256 threads would take 2 GiB)
STACK_BYTES = 1 << 20

_lock = threading.Lock()
_stack_lock = threading.Lock()
_work: "queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]]" = \
    queue.SimpleQueue()
_threads = 0
_idle = 0  # threads waiting for work
_queued = 0  # calls no thread has taken yet
_running = 0  # calls inside obstore now


def submit(fn: Callable[[], Any]) -> "concurrent.futures.Future[Any]":
    """Run ``fn()`` on a fetch thread; its future (cancel it to drop the call if no thread
    has started it)."""
    global _threads, _queued
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    with _lock:
        _queued += 1
        # every queued call gets a thread at once (up to the cap): a dozen GETs sent
        # together must not wait for each other
        start = _queued > _idle and _threads < MAX_THREADS
        if start:
            _threads += 1
    _work.put((future, fn))
    if start:
        _start_thread()
    return future


def submit_all(fns: Sequence[Callable[[], Any]]
               ) -> tuple["concurrent.futures.Future[list[Any]]",
                          list["concurrent.futures.Future[Any]"]]:
    """Run every ``fn()`` (none may raise) on fetch threads; a future of all their results
    in order, completed by the last one to end (one wake for the waiter), and each call's
    own future (cancel those to drop the calls not started yet)."""
    combined: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()
    results: list[Any] = [None] * len(fns)
    left = [len(fns)]
    count = threading.Lock()
    if not fns:
        combined.set_result(results)
        return combined, []

    def one(i: int, fn: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            results[i] = fn()
            with count:
                left[0] -= 1
                last = left[0] == 0
            if last and combined.set_running_or_notify_cancel():
                combined.set_result(results)
        return run

    return combined, [submit(one(i, fn)) for i, fn in enumerate(fns)]


def _start_thread() -> None:
    with _stack_lock:  # stack_size is process-wide: set it only around our own start
        old = threading.stack_size(STACK_BYTES)
        try:
            threading.Thread(target=_serve, name="ngffcore-fetch", daemon=True).start()
        finally:
            threading.stack_size(old)


def _serve() -> None:
    global _idle, _queued, _running, _threads
    while True:
        with _lock:
            _idle += 1
        try:
            future, fn = _work.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            with _lock:
                _idle -= 1
                if _queued <= _idle:  # no call is left waiting for this thread
                    _threads -= 1
                    return
            continue
        with _lock:
            _idle -= 1
            _queued -= 1
        if not future.set_running_or_notify_cancel():
            continue  # cancelled while queued: never sent
        with _lock:
            _running += 1
        try:
            result = fn()
        except BaseException as exc:  # handed to the awaiting read, which raises it
            future.set_exception(exc)
        else:
            future.set_result(result)
        finally:
            with _lock:
                _running -= 1
            del future, fn


def settled(deadline: float) -> bool:
    """Wait until no call is running, or until ``deadline`` (``time.monotonic``)."""
    while True:
        with _lock:
            left = _running
        if not left or time.monotonic() >= deadline:
            return not left
        time.sleep(0.005)


__all__ = ["MAX_THREADS", "settled", "submit", "submit_all"]
