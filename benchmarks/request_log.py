"""Summaries of an HTTP request log (``servers.ServerProcess.log()``) for the benchmark
reports: requests by kind and the sequential round trips (*waves*) a reader needed."""

from __future__ import annotations

from collections import Counter
from typing import Any

from servers import Request


def split_waves(log: list[Request], latency: float) -> list[list[Request]]:
    """The log cut into *waves*: a request arriving within ``latency / 2`` of the previous
    arrival belongs to the same wave. With injected latency L, a request that could only be
    sent after an earlier response arrived starts a new wave (it cannot arrive sooner than L
    after the earlier one), so the number of waves is the number of sequential round trips the
    reader needed; requests sent together but spread out by the reader itself may also split."""
    out: list[list[Request]] = []
    gap = max(latency / 2, 1e-3)
    last = None
    for r in sorted(log, key=lambda r: r.t):
        if last is None or r.t - last > gap:
            out.append([])
        out[-1].append(r)
        last = r.t
    return out


def waves(log: list[Request], latency: float) -> list[int]:
    """Requests per wave (see ``split_waves``)."""
    return [len(w) for w in split_waves(log, latency)]


def summarize(log: list[Request], latency: float) -> dict[str, Any]:
    """Counts by kind: whole-object GET, ranged GET (``bytes=a-b``/``a-``), suffix GET
    (``bytes=-n``), HEAD, 404 answers, and any other method; plus the waves."""
    c: Counter = Counter()
    for r in log:
        if r.method == "GET":
            if r.range is None:
                c["get"] += 1
            elif r.range.strip().startswith("bytes=-"):
                c["suffix"] += 1
            else:
                c["ranged"] += 1
        elif r.method == "HEAD":
            c["head"] += 1
        else:
            c["other"] += 1
        if r.status == 404:
            c["404"] += 1
    w = waves(log, latency)
    return {
        "total": len(log),
        "get": c["get"],
        "ranged": c["ranged"],
        "suffix": c["suffix"],
        "head": c["head"],
        "other": c["other"],
        "404": c["404"],
        "waves": len(w),
        "wave_sizes": w,
    }
