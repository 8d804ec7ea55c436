"""``RequestStats``: the requests one store has sent, by kind."""

from __future__ import annotations

import threading


class RequestStats:
    """Requests one store has sent, by kind (thread-safe counters; ``snapshot()`` to read).

    ``get``: whole-object GETs; ``range_get``: GETs of ``[start, end)`` ranges (obstore may
    merge nearby ranges into one request: counted as sent); ``suffix_get``: GETs of an object's
    last bytes (shard indexes); ``not_found``: GETs answered 404 (read as fill value);
    ``errors``: GETs that failed; ``retries``: GETs ngffcore sent again because a body failed
    after its headers (each attempt also counts as a request of its kind; obstore's own
    retries before the headers are not visible here); ``bytes``: body bytes received;
    ``seconds``: summed request latency. A store never sends HEAD or LIST.
    """

    FIELDS = ("get", "range_get", "suffix_get", "not_found", "errors", "retries", "bytes",
              "seconds")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, float] = dict.fromkeys(self.FIELDS, 0)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, value in deltas.items():
                self._counts[name] += value

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._counts)

    @property
    def requests(self) -> int:
        c = self.snapshot()
        return int(c["get"] + c["range_get"] + c["suffix_get"])

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(self.FIELDS, 0)

    def __repr__(self) -> str:
        return f"RequestStats({self.snapshot()})"


__all__ = ["RequestStats"]
