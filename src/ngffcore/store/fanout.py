"""Bounded fan-out: many independent metadata reads (labels, levels, …) run with at most the
store's ``concurrency`` of them in flight, and a failure cancels the rest.

Fan-outs nest (each label opens its levels). Each running item holds one slot of a budget
shared by the whole tree of fan-outs started under the outermost one: an inner fan-out runs
its first item in the slot its caller already holds and takes more workers only from free
slots, never waiting for one. Total in flight therefore stays within the outermost bound,
and a nested fan-out cannot deadlock waiting for slots its own ancestors hold.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

from ngffcore.store.ioloop import gather_or_cancel

T = TypeVar("T")

#: fan-out width for a store without a ``concurrency`` attribute (a local directory, whose
#: reads run inline and gain nothing from more)
DEFAULT_CONCURRENCY = 64


class _Budget:
    """Free worker slots of one fan-out tree (one event loop: no lock needed)."""

    def __init__(self, free: int) -> None:
        self.free = free


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "ngffcore_fanout_budget", default=None)


def _limit(store: Any) -> int:
    n = getattr(store, "concurrency", None)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        return DEFAULT_CONCURRENCY
    return n


async def gather_bounded(store: Any, aws: Iterable[Awaitable[T]]) -> list[T]:
    """Await every awaitable of ``aws``; results in order. At most ``store.concurrency``
    (default :data:`DEFAULT_CONCURRENCY`) run at once, counted across nested fan-outs; when
    one fails (or the caller is cancelled) the running ones are cancelled and awaited and
    the ones not started are closed, then the error propagates."""
    items = list(aws)
    if not items:
        return []
    outer = _budget.get()
    budget = outer if outer is not None else _Budget(_limit(store))
    if outer is None:
        taken = min(budget.free, len(items))
        workers = taken
    else:
        # the first worker runs in the slot this caller holds; more only from free slots
        taken = max(0, min(budget.free, len(items) - 1))
        workers = 1 + taken
    budget.free -= taken
    results: list[Any] = [None] * len(items)
    queue = iter(enumerate(items))

    async def worker() -> None:
        for i, aw in queue:
            results[i] = await aw

    token = _budget.set(budget)
    try:
        # the worker tasks copy this context: their items' own fan-outs see the budget
        await gather_or_cancel(*(worker() for _ in range(workers)))
    finally:
        _budget.reset(token)
        budget.free += taken  # every worker has ended: gather_or_cancel awaited them
        for _, aw in queue:  # never started (after a failure or cancellation)
            if asyncio.iscoroutine(aw):
                aw.close()
            elif isinstance(aw, asyncio.Future):
                aw.cancel()
    return results


__all__ = ["gather_bounded", "DEFAULT_CONCURRENCY"]
