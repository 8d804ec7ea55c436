"""Tables for the remote-read benchmarks (``test_bench_remote.py``): ratios, request economy,
the issue's targets.

Called by ``conftest.py`` at the end of a session that ran remote benchmarks (printed, and written
to ``benchmarks/results/remote.md``), and by ``report.py`` on a ``--benchmark-json`` file.
Rows are ``report.rows_from_session`` / ``rows_from_json`` rows whose ``extra["suite"]`` is
``"remote"``; ``notes`` lists peers that were skipped or failed (not benchmarks, so not in JSON).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from servers import describe_server
from report import _md_table, fmt_ratio, fmt_time

from remote_suite import PEER_TITLES
from remote_suite import PEERS as PEER_ORDER

PEER_RATIOS = ("zarr", "zarr_fsspec", "tensorstore", "zarrs")
#: The issue's targets, checked at this latency.
TARGET_LATENCY_MS = 20


def is_remote(row: dict[str, Any]) -> bool:
    return row["extra"].get("suite") == "remote"


def _group_key(g: str) -> tuple[Any, ...]:
    # "remote 20ms/v2-roi": latency first, then the workload order of the run
    head = g.partition("/")[0]
    try:
        ms = int(head.split()[-1].removesuffix("ms"))
    except ValueError:
        ms = 0
    return (ms,)


def render(rows: list[dict[str, Any]], notes: list[dict[str, Any]] | None = None, header: str = "") -> str:
    notes = notes or []
    groups: "OrderedDict[str, dict[str, dict[str, Any]]]" = OrderedDict()
    for r in rows:
        if is_remote(r):
            groups.setdefault(r["group"], {})[r["extra"].get("peer")] = r
    order = sorted(groups, key=_group_key)  # stable: workloads keep their run order per latency
    out: list[str] = []
    if header:
        out += [header, ""]
    if not groups and not notes:
        return "\n".join(out).rstrip() + "\n"

    # ---- times and ratios ----------------------------------------------------------------
    peers = [p for p in PEER_ORDER if any(p in groups[g] for g in order)]
    out += ["## Remote reads over HTTP (median per round; ratios > 1 mean the first is slower)", ""]
    head = (["group", "limit", "replay"] + [PEER_TITLES[p] for p in peers] + ["ngffcore/limit"]
            + [f"{PEER_TITLES[p]}/ngffcore" for p in PEER_RATIOS if p in peers])
    body = []
    for g in order:
        ps = groups[g]
        any_row = next(iter(ps.values()))
        limit = any_row["extra"].get("limit")
        replay = any_row["extra"].get("replay")
        med = {p: ps[p]["median"] if p in ps else None for p in peers}
        body.append([g, fmt_time(limit), fmt_time(replay)] + [fmt_time(med[p]) for p in peers]
                    + [fmt_ratio(med.get("ngffcore"), limit)]
                    + [fmt_ratio(med[p], med.get("ngffcore")) for p in PEER_RATIOS if p in peers])
    out += _md_table(head, body)
    out += [
        "",
        "* `limit` = round trips × latency + decode: round trips from the request structure with 64 "
        "requests per round trip and ngffcore's request counts; decode = ngffcore's `prep.run(out)` "
        "of the same chunks from disk (2 threads). See *Limits* below.",
        "* `replay` = ngffcore's own requests (from the server log) re-sent wave by wave with bare "
        "obstore, bodies read and dropped: the cost of this server + an HTTP client for that request "
        "structure, without planning or decoding.",
        f"* Server: {describe_server()}; it shares the 2 cores with the reader.",
        "",
    ]

    # ---- request economy -------------------------------------------------------------------
    out += ["## Requests per read (server log of one cold read; `waves` = sequential round trips)", ""]
    body = []
    for g in order:
        for p in PEER_ORDER:
            row = groups[g].get(p)
            if row is None:
                continue
            e = row["extra"]
            q = e.get("requests", {})
            sizes = e.get("wave_sizes", [])
            ws = "+".join(str(n) for n in sizes[:12]) + ("+…" if len(sizes) > 12 else "")
            per_round = e.get("round_requests", [])
            cold = "yes" if e.get("cold", True) else "**no**"
            cpu = q.get("server_cpu")
            body.append([g, PEER_TITLES.get(p, p), str(q.get("total", "")), str(q.get("get", "")),
                         str(q.get("ranged", "")), str(q.get("suffix", "")), str(q.get("head", "")),
                         str(q.get("404", "")), str(q.get("waves", "")), ws,
                         fmt_time(cpu) if cpu is not None else "—",
                         str(row.get("rounds", "")), ",".join(str(n) for n in per_round), cold])
    out += _md_table(["group", "peer", "requests", "GET", "ranged GET", "suffix GET", "HEAD", "404",
                      "waves", "wave sizes", "server CPU", "rounds", "requests per timed round", "cold"],
                     body, align_right_from=2, left=(9, 12, 13))
    out += ["", "GET = whole object; ranged GET = `bytes=a-b` / `bytes=a-`; suffix GET = `bytes=-n` "
            "(shard indexes); 404 = GET of an object that does not exist (format probes). `waves`: "
            "requests arriving within latency/2 of the previous one form a wave, so waves = sequential "
            "round trips. `server CPU`: CPU time the server process spent on that read — it runs on "
            "the same cores as the reader. `cold`: every timed round sent at least as many requests as "
            "the cold check run (no cache survived between rounds).", ""]

    # ---- targets -----------------------------------------------------------------------------
    out += _targets(groups)

    # ---- limits, workloads, notes -------------------------------------------------------------
    out += ["## Limits and workloads", ""]
    for g in order:
        e = next(iter(groups[g].values()))["extra"]
        out.append(f"* `{g}`: {e.get('limit_explain', '?')}, decode {fmt_time(e.get('decode'))} → "
                   f"limit {fmt_time(e.get('limit'))}")
    out.append("")
    wls: "OrderedDict[str, str]" = OrderedDict()
    for g in order:
        e = next(iter(groups[g].values()))["extra"]
        wls.setdefault(e.get("workload"), e.get("note"))
    out += [f"* `{k}`: {v}" for k, v in wls.items()]
    out.append("")
    if notes:
        out += ["## Peers that did not run", ""]
        for n in notes:
            q = n.get("requests")
            extra = ""
            if q:
                extra = f" (requests before the failure: {q.get('total')} total, {q.get('head')} HEAD)"
            out.append(f"* `{n['group']}` {PEER_TITLES.get(n['peer'], n['peer'])}: {n['status']}: "
                       f"{n['reason']}{extra}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _targets(groups: "OrderedDict[str, dict[str, dict[str, Any]]]") -> list[str]:
    def row(wl: str) -> dict[str, dict[str, Any]] | None:
        return groups.get(f"remote {TARGET_LATENCY_MS}ms/{wl}")

    lat = TARGET_LATENCY_MS / 1000
    body = []

    def verdict(ok: bool | None) -> str:
        return "—" if ok is None else ("met" if ok else "**missed**")

    roi = row("v2-roi")
    if roi and "ngffcore" in roi:
        ng = roi["ngffcore"]
        limit = ng["extra"]["limit"]
        r = ng["median"] / limit
        body.append(["v2-roi (64 chunks)", "ngffcore ≤ 1.2 × limit",
                     f"{fmt_time(ng['median'])} / {fmt_time(limit)} = {r:.2f}×", verdict(r <= 1.2)])
        peers = {p: v["median"] for p, v in roi.items() if p in PEER_RATIOS}
        if peers:
            best = min(peers, key=peers.get)  # type: ignore[arg-type]
            rr = peers[best] / ng["median"]
            body.append(["v2-roi (64 chunks)", "fastest peer ≥ 1.4 × ngffcore",
                         f"{PEER_TITLES[best]} {fmt_time(peers[best])} / {fmt_time(ng['median'])} = {rr:.2f}×",
                         verdict(rr >= 1.4)])
    sroi = row("v3-shard-roi")
    if sroi and "ngffcore" in sroi:
        ng = sroi["ngffcore"]
        waves = ng["extra"]["requests"].get("waves")
        body.append(["v3-shard-roi (4 inner chunks)", "≤ 2 round trips", f"{waves} waves", verdict(waves <= 2)])
        body.append(["v3-shard-roi (4 inner chunks)", "≤ 45 ms",
                     f"{fmt_time(ng['median'])} (replay of the same requests, no decode: "
                     f"{fmt_time(ng['extra'].get('replay'))})", verdict(ng["median"] <= 0.045)])
    for wl in ("v2-open", "v3-open"):
        o = row(wl)
        if not o or "ngffcore" not in o:
            continue
        for p in ("ngffcore", "ngffcore_probe"):
            if p not in o:
                continue
            ng = o[p]
            waves = ng["extra"]["requests"].get("waves")
            bound = 2 * lat + ng["extra"]["decode"]
            body.append([f"{wl} ({PEER_TITLES[p]})", "≤ 2 round trips + decode",
                         f"{waves} waves; {fmt_time(ng['median'])} vs 2 × {TARGET_LATENCY_MS} ms + "
                         f"{fmt_time(ng['extra']['decode'])} = {fmt_time(bound)}",
                         verdict(waves <= 2 and ng["median"] <= bound)])
    if not body:
        return []
    out = [f"## The issue's targets at {TARGET_LATENCY_MS} ms (2 cores)", ""]
    out += _md_table(["workload", "target", "measured", "verdict"], body, align_right_from=9)
    out.append("")
    return out
