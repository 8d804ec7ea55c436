"""``RetryPolicy``: when ngffcore re-sends a GET whose body failed after its headers."""

from __future__ import annotations

import random
from typing import Any


class RetryPolicy:
    """How many times, and after which pause, ngffcore re-sends a GET whose body failed: the
    store's obstore ``retry_config`` (obstore's defaults when it has none: 10 retries, 100 ms
    doubling to 15 s, 180 s in all). Pauses are jittered (50–100 % of the backoff) so many
    reads failing together do not retry in lockstep."""

    def __init__(self, max_retries: int = 10, init_backoff: float = 0.1,
                 max_backoff: float = 15.0, base: float = 2.0, retry_timeout: float = 180.0
                 ) -> None:
        self.max_retries = max_retries
        self.init_backoff = init_backoff
        self.max_backoff = max_backoff
        self.base = base
        self.retry_timeout = retry_timeout

    @classmethod
    def of(cls, store: Any) -> "RetryPolicy":
        config = getattr(store, "retry_config", None) or {}
        backoff = config.get("backoff") or {}
        defaults = cls()
        return cls(max_retries=int(config.get("max_retries", defaults.max_retries)),
                   init_backoff=_seconds(backoff.get("init_backoff"), defaults.init_backoff),
                   max_backoff=_seconds(backoff.get("max_backoff"), defaults.max_backoff),
                   base=float(backoff.get("base", defaults.base)),
                   retry_timeout=_seconds(config.get("retry_timeout"), defaults.retry_timeout))

    def delay(self, retries_done: int, elapsed: float) -> float | None:
        """Seconds to wait before the next attempt, or None when the budget is spent."""
        if retries_done >= self.max_retries or elapsed >= self.retry_timeout:
            return None
        backoff = min(self.max_backoff, self.init_backoff * self.base ** retries_done)
        return backoff * (0.5 + 0.5 * random.random())


def _seconds(value: Any, default: float) -> float:
    if value is None:
        return default
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


__all__ = ["RetryPolicy"]
