"""``run_sync``: the one way synchronous code runs a store coroutine — inline for stores whose
coroutines never suspend (local, memory: no event loop hop), else on the private I/O loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Coroutine, TypeVar

from ngffcore.errors import NgffError
from ngffcore.store.ioloop import run_on_io_loop

if TYPE_CHECKING:
    from ngffcore.store.protocol import Store

T = TypeVar("T")


def run_sync(store: "Store", coro: Coroutine[Any, Any, T]) -> T:
    """The result of ``coro`` (a coroutine of ``store``'s), waited for synchronously: driven
    inline when ``store.inline``, else run on ngffcore's I/O loop thread (so this works
    inside a running event loop too)."""
    if not store.inline:
        return run_on_io_loop(coro)
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise NgffError(f"internal error: a coroutine of {store!r}, an inline store, suspended")


__all__ = ["run_sync"]
