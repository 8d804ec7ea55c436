"""``ngffcore bench``: the report — a pass as JSON (latency percentiles, requests and bytes
per item, cache counts, per-level figures; schema in ``ngffcore.cli.bench``) and the
report as a table for people.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ngffcore.cli.bench_measure import REQUEST_KINDS, Measured, PassResult
from ngffcore.cli.common import human_bytes


def _latency(seconds: Sequence[float]) -> dict[str, float] | None:
    if not seconds:
        return None
    ms = np.asarray(seconds, dtype=float) * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(ms.mean()),
            "min": float(ms.min()), "max": float(ms.max())}


def _per(value: float | None, n: int) -> float | None:
    return None if value is None or n == 0 else value / n


def _rate(value: float | None, seconds: float) -> float | None:
    return None if value is None or seconds <= 0 else value / seconds


def item_json(m: Measured) -> dict[str, Any]:
    it = m.item
    return {"level": it.level, "t": it.t, "z": it.z, "row": it.row, "col": it.col,
            "y": list(it.y), "x": list(it.x), "ms": m.seconds * 1000.0,
            "pixel_bytes": m.pixel_bytes, "requests": m.requests,
            "fetched_bytes": m.fetched_bytes, "cache_hits": m.hits, "cache_misses": m.misses,
            "chunks": m.chunks}


def _by_level(p: PassResult) -> dict[str, Any]:
    levels = sorted({m.item.level for m in p.items})
    out = {}
    for level in levels:
        ms = [m for m in p.items if m.item.level == level]
        lat = _latency([m.seconds for m in ms])
        assert lat is not None
        reqs = [m.requests["total"] for m in ms if m.requests is not None]
        chunks = [m.chunks for m in ms if m.chunks is not None]
        out[str(level)] = {
            "count": len(ms), "p50_ms": lat["p50"], "mean_ms": lat["mean"],
            "requests_per_item": sum(reqs) / len(ms) if len(reqs) == len(ms) else None,
            "chunks_per_item": sum(chunks) / len(ms) if len(chunks) == len(ms) else None}
    return out


def pass_json(p: PassResult) -> dict[str, Any]:
    n = len(p.items)
    pixel_bytes = sum(m.pixel_bytes for m in p.items)
    per_item = (None if p.requests is None or n == 0
                else {k: v / n for k, v in p.requests.items()})
    cache = None
    if p.hits is not None and p.misses is not None:
        looked = p.hits + p.misses
        cache = {"hits": p.hits, "misses": p.misses, "evictions": p.evictions,
                 "hit_rate": p.hits / looked if looked else None}
    return {
        "kind": p.kind, "cache_state": p.cache_state, "count": n, "seconds": p.seconds,
        "latency_ms": _latency([m.seconds for m in p.items]),
        "items_per_second": _rate(n, p.seconds),
        "pixel_bytes": pixel_bytes,
        "pixel_mb_per_second": _rate(pixel_bytes / 1e6, p.seconds),
        "requests": p.requests, "requests_per_item": per_item,
        "fetched_bytes": p.fetched_bytes,
        "fetched_bytes_per_item": _per(p.fetched_bytes, n),
        "fetched_mb_per_second": (None if p.fetched_bytes is None
                                  else _rate(p.fetched_bytes / 1e6, p.seconds)),
        "chunks": p.chunks, "chunks_per_item": _per(p.chunks, n),
        "cache": cache,
        "by_level": _by_level(p),
        "items": [item_json(m) for m in p.items],
    }


def _num(value: float | None) -> str:
    """Three or more significant digits, never scientific notation; "-" for None."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def render_table(report: dict[str, Any]) -> str:
    remote = report["store"] == "remote"
    settings, image = report["settings"], report["image"]
    levels = settings["levels"]
    universe = sum(image["levels"][lv]["tiles"] for lv in levels)
    channels = settings["channels"]
    lines = [
        f"ngffcore bench {report['url']} ({report['store']} store)",
        f"  {image['axes']} {image['dtype']}, levels {', '.join(map(str, levels))} of "
        f"{len(image['levels'])}, {settings['size']}-px tiles "
        f"({universe} at these levels), channels "
        f"{'all' if channels is None else ','.join(map(str, channels))}, "
        f"{'random planes' if settings['planes'] == 'random' else 'default plane'}, "
        f"seed {settings['seed']}, "
        f"concurrency {settings['concurrency']}, cache {human_bytes(settings['cache_bytes'])}",
    ]
    op = report["open"]
    text = f"  open {_num(op['seconds'] * 1000)} ms"
    if op["requests"] is not None:
        r = op["requests"]
        kinds = ", ".join(f"{r[k]} {k}" for k in REQUEST_KINDS if r[k])
        text += (f", {r['total']} request{'' if r['total'] == 1 else 's'} ({kinds or 'none'}"
                 + (f"; {r['not_found']} not found" if r["not_found"] else "")
                 + f"), {human_bytes(op['fetched_bytes'])}")
    lines += [text, ""]
    head = (f"{'pass':<10} {'items':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
            f"{'mean ms':>8} {'max ms':>8} {'req/item':>9} {'KiB/item':>9} "
            f"{'chunks/item':>11} {'hit %':>6} {'items/s':>8} {'px MB/s':>8} {'net MB/s':>9}")
    lines.append(head)
    notes = []
    for name, p in report["passes"].items():
        if p is None:
            continue
        lat = p["latency_ms"]
        cells = [_num(lat[k] if lat else None) for k in ("p50", "p95", "p99", "mean", "max")]
        per = p["requests_per_item"]
        fetched = p["fetched_bytes_per_item"]
        hit = p["cache"]["hit_rate"] if p["cache"] else None
        lines.append(
            f"{name:<10} {p['count']:>6} {cells[0]:>8} {cells[1]:>8} {cells[2]:>8} "
            f"{cells[3]:>8} {cells[4]:>8} {_num(per['total'] if per else None):>9} "
            f"{_num(None if fetched is None else fetched / 1024):>9} "
            f"{_num(p['chunks_per_item']):>11} "
            f"{_num(None if hit is None else hit * 100):>6} "
            f"{_num(p['items_per_second']):>8} "
            f"{_num(p['pixel_mb_per_second']):>8} "
            f"{_num(p['fetched_mb_per_second']):>9}")
        if per is not None and p["count"]:
            kinds = ", ".join(f"{k} {per[k]:.2f}" for k in (*REQUEST_KINDS, "not_found")
                              if per[k])
            notes.append(f"  {name}: requests per item by kind: {kinds or 'none'}")
        if name == "warm" and p["cache"] and p["cache"]["misses"]:
            notes.append(f"  warm: {p['cache']['misses']} chunk lookups missed the cache "
                         f"({p['cache']['evictions']} evictions): the tiles need more than "
                         f"--cache-bytes {human_bytes(settings['cache_bytes'])}, or single "
                         f"reads larger than a quarter of it bypass it")
    if settings["tiles"] > report["passes"]["cold"]["count"]:
        notes.append(f"  only {report['passes']['cold']['count']} distinct tiles at these "
                     f"levels (asked for {settings['tiles']}): each is read once per pass")
    if settings["concurrency"] > 1:
        notes.append("  concurrency > 1: requests, bytes and cache counts are per pass "
                     "(shown per item as the mean); latency is per read while others are "
                     "in flight")
    if not remote:
        notes.append("  local store: no requests are counted; chunks/item are chunks decoded "
                     "(cache misses; for ROIs the chunks they touch), each a file read")
    if notes:
        lines += [""] + notes
    return "\n".join(lines)


__all__ = ["item_json", "pass_json", "render_table"]
