"""Per-object write locks inside one process: a write that merges into an object (read,
modify, write) holds the object from its read until its write, so two threads writing
disjoint selections that share a chunk or shard never lose each other's update.

A write takes all the objects of one batch at once or none of them (never holding some while
waiting for others), so two writes can never wait for each other in a cycle. Synchronous
writes on an inline store wait on a condition; writes on an event loop poll, never blocking
the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable, Iterable

_cond = threading.Condition()
_held: set[tuple[Hashable, str]] = set()

#: polling interval bounds of a write waiting on an event loop (seconds)
_POLL_FIRST = 0.0005
_POLL_MOST = 0.01


def _try_take(names: list[tuple[Hashable, str]]) -> bool:
    if any(n in _held for n in names):
        return False
    _held.update(names)
    return True


async def acquire(store_identity: Hashable, keys: Iterable[str]) -> list[tuple[Hashable, str]]:
    """Hold every object of ``keys`` (a store's keys); returns the token :func:`release`
    takes. Without a running event loop (an inline store driven synchronously) this blocks
    the thread; on a loop it polls."""
    names = [(store_identity, k) for k in set(keys)]
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with _cond:
            while not _try_take(names):
                _cond.wait()
        return names
    delay = _POLL_FIRST
    while True:
        with _cond:
            if _try_take(names):
                return names
        await asyncio.sleep(delay)
        delay = min(delay * 2, _POLL_MOST)


def release(names: list[tuple[Hashable, str]]) -> None:
    """Let go of what :func:`acquire` took."""
    with _cond:
        _held.difference_update(names)
        _cond.notify_all()


__all__ = ["acquire", "release"]
