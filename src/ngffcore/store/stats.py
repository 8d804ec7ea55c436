"""``RequestStats``: the requests one store has sent (or, for a local or memory store, the
reads and writes it has served), by kind."""

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
    ``seconds``: summed request latency; ``put``: objects written (one request each);
    ``delete``: delete requests; ``bytes_written``: bytes of objects written; ``list``: listing
    requests (only ``create_array(overwrite=True)`` lists). A store never sends HEAD, and
    never lists to read or write chunks.

    Every store counts: a local or memory store counts the reads and writes made through its
    methods (chunk files the native core reads itself, beneath ``local_root``, are not).
    """

    FIELDS = ("get", "range_get", "suffix_get", "not_found", "errors", "retries", "bytes",
              "seconds", "put", "delete", "bytes_written", "list")

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
        """Requests of every kind: reads, writes and deletes."""
        c = self.snapshot()
        return int(c["get"] + c["range_get"] + c["suffix_get"] + c["put"] + c["delete"]
                   + c["list"])

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(self.FIELDS, 0)

    def __repr__(self) -> str:
        return f"RequestStats({self.snapshot()})"


__all__ = ["RequestStats"]
