"""Ratio tables of the write benchmarks (``test_bench_write.py``) -> ``results/write.md``.

Written at the end of a run of ``test_bench_write.py``; rebuilt from a saved run with::

    pytest benchmarks/test_bench_write.py --benchmark-enable -p no:cacheprovider --benchmark-json=w.json
    python benchmarks/write_report.py w.json -o benchmarks/results/write.md

(memory figures only come with the live run).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

MiB = 2**20
PEERS = ("tensorstore", "zarrs", "zarr")
COMMAND = "pytest benchmarks/test_bench_write.py --benchmark-enable -p no:cacheprovider"


@dataclass(frozen=True)
class Workload:
    layout: str
    title: str


WORKLOADS = {
    "a-v2-full": Workload("v2", "(a) whole volume, v2 blosc-zstd-5 bitshuffle, chunks 64x256x256"),
    "b-v3-full": Workload("v3", "(b) whole volume, v3 shards 64x512x512 of 32x128x128 zstd-3"),
    "c-v2-overwrite": Workload("v2", "(c) 200 single-chunk overwrites into an existing array of (a)'s layout"),
    "c-v2s-overwrite": Workload("v2s", "(c') 200 single-chunk overwrites, (a)'s codec with 8x64x64 chunks "
                                       "(64 KiB): the per-chunk overhead"),
    "d-v3-s3": Workload("v3", "(d) (b) to S3 (moto), injected latency per request"),
}


def group(workload: str) -> str:
    return f"write/{workload}"


def _ms(s: float) -> str:
    return f"{s * 1e3:.0f} ms" if s >= 0.1 else f"{s * 1e3:.2f} ms"


def _by_peer(rows: list[dict[str, Any]], workload: str) -> dict[str, dict[str, Any]]:
    return {r["extra"]["peer"]: r for r in rows if r["extra"].get("workload") == workload}


def _fastest(got: dict[str, dict[str, Any]]) -> tuple[str, float] | None:
    peers = [(p, got[p]["median"]) for p in PEERS if p in got]
    return min(peers, key=lambda x: x[1]) if peers else None


def _times(got: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| row | median | min | rounds |", "| --- | --- | --- | --- |"]
    for peer in ("limit", "floor", "ngffcore") + PEERS:
        if peer in got:
            r = got[peer]
            lines.append(f"| {peer} | {_ms(r['median'])} | {_ms(r['min'])} | {r['rounds']} |")
    return lines


def _local(workload: str, got: dict[str, dict[str, Any]]) -> list[str]:
    lines = _times(got) + [""]
    ng, fast = got.get("ngffcore"), _fastest(got)
    if ng and fast:
        ratio = fast[1] / ng["median"]
        lines.append(f"* fastest peer {fast[0]} / ngffcore = **{ratio:.2f}x** (target >= 1.3x: "
                     f"{'met' if ratio >= 1.3 else 'MISSED'})")
    if ng and "limit" in got and "floor" in got:
        lf = got["limit"]["median"] + got["floor"]["median"]
        ratio = ng["median"] / lf
        lines.append(f"* ngffcore / (limit + floor) = {_ms(ng['median'])} / {_ms(lf)} = **{ratio:.2f}x** "
                     f"(target <= 1.2x: {'met' if ratio <= 1.2 else 'MISSED'})")
        if fast and fast[1] / 1.3 < lf:
            lines.append(f"* 1.3x faster than {fast[0]} means <= {_ms(fast[1] / 1.3)}: below ngffcore's own "
                         f"limit + floor ({_ms(lf)}), so not reachable without a faster encoder")
    if workload.startswith("c-") and ng and "limit" in got and "floor" in got:
        n = ng["extra"].get("chunks") or 1
        over = (ng["median"] - got["limit"]["median"] - got["floor"]["median"]) / n * 1e6
        lines.append(f"* per chunk: ngffcore {ng['median'] / n * 1e6:.0f} µs, encode "
                     f"{got['limit']['median'] / n * 1e6:.0f} µs, file write {got['floor']['median'] / n * 1e6:.0f} µs; "
                     f"beyond encode + write **{over:.0f} µs** (target <= 10 µs: {'met' if over <= 10 else 'MISSED'}); "
                     f"beyond encode alone {(ng['median'] - got['limit']['median']) / n * 1e6:.0f} µs")
    return lines


def _s3(got: dict[str, dict[str, Any]]) -> list[str]:
    lines = _times(got) + [""]
    ng, fast = got.get("ngffcore"), _fastest(got)
    any_row = next(iter(got.values()), None)
    if any_row is None:
        return lines
    ex = any_row["extra"]
    lat, conc, objects = ex.get("latency_ms", 20) / 1e3, ex.get("concurrency", 64), ex.get("objects", 0)
    if ng and fast:
        lines.append(f"* fastest peer {fast[0]} / ngffcore = **{fast[1] / ng['median']:.2f}x**")
    if ng and "limit" in got:
        bound = math.ceil(objects / conc) * lat + got["limit"]["median"]
        ratio = ng["median"] / bound
        lines.append(f"* bound = ceil({objects} objects / {conc}) x {lat * 1e3:g} ms + encode "
                     f"{_ms(got['limit']['median'])} = {_ms(bound)}; ngffcore / bound = **{ratio:.2f}x** "
                     f"(target <= 1.2x: {'met' if ratio <= 1.2 else 'MISSED'})")
    if ng and "floor" in got and "limit" in got:
        lf = got["limit"]["median"] + got["floor"]["median"]
        lines.append(f"* ngffcore / (limit + floor) = {_ms(ng['median'])} / {_ms(lf)} = "
                     f"**{ng['median'] / lf:.2f}x**: the PUTs of the encoded bytes alone (floor) take "
                     f"{got['floor']['median'] / max(lat, 1e-9):.0f} round trips' time, moto receiving "
                     "the bodies on the same 2 cores")
    if ng and "floor" in got:
        lines.append(f"* floor (ngffcore's objects PUT by bare obstore, {conc} in flight) "
                     f"{_ms(got['floor']['median'])}; ngffcore / floor = {ng['median'] / got['floor']['median']:.2f}x")
    lines += ["", "Requests seen by the server (untimed check run; last timed round):", "",
              "| writer | requests (check run) | last round | writer's own count |", "| --- | --- | --- | --- |"]
    for peer in ("floor", "ngffcore") + PEERS:
        if peer in got:
            e = got[peer]["extra"]
            own = e.get("own_stats")
            own_s = ", ".join(f"{k} {v}" for k, v in own.items() if k in ("get", "put", "delete", "list") and v) if own else ""
            fmt = lambda d: ", ".join(f"{k} {v}" for k, v in sorted((d or {}).items()))  # noqa: E731
            lines.append(f"| {peer} | {fmt(e.get('requests'))} | {fmt(e.get('requests_last_round'))} | {own_s} |")
    return lines


def render_memory(memory: list[dict[str, Any]]) -> list[str]:
    lines = ["## Peak memory of a whole write (fresh process per writer)", "",
             "`input + (VmHWM after - VmRSS before)`, the volume (input) already loaded before; budget "
             "`input + 2 x threads x largest object + 64 MiB` (asserted for ngffcore only).", "",
             "| layout | writer | input + peak - before | budget | |", "| --- | --- | --- | --- | --- |"]
    for r in memory:
        if "error" in r:
            lines.append(f"| {r['layout']} | {r['peer']} | error: {r['error']} | {r['budget'] / MiB:.0f} MiB | |")
            continue
        used = r["in_nbytes"] + r["delta"]
        lines.append(f"| {r['layout']} | {r['peer']} | {used / MiB:.0f} MiB | {r['budget'] / MiB:.0f} MiB | "
                     f"{'ok' if used <= r['budget'] else 'OVER'} |")
    return lines + [""]


NOTES = """\
Rows: `limit` = ngffcore's `_core.encode_batch` on the same (inner) chunks from memory, all
cores, no I/O (plan untimed; (c): one call per chunk, as 200 single-chunk writes do);
`floor` = writing ngffcore's already-encoded objects again (files: temp + rename, one after the
other; S3: bare obstore PUTs, 64 in flight). Every writer creates the array and writes the whole
1 GiB volume (already in memory) into an emptied directory / prefix each round; its output is
read back with zarr-python and compared (spot boxes; (c): overwritten and untouched chunks).
(c) uses (a)'s layout (whole 8 MiB chunks, no shard read-modify-write): its per-chunk figure is
encode-dominated (~20 ms per chunk on one core), so round-to-round noise (~0.2 ms per chunk)
is far above the 10 µs target; the sign of "beyond encode + write" is within noise."""


def render(rows: list[dict[str, Any]], memory: list[dict[str, Any]], header: str) -> str:
    lines = [header, "", f"Command: `{COMMAND}`", "", NOTES, ""]
    for key, wl in WORKLOADS.items():
        got = _by_peer(rows, key)
        if not got:
            continue
        lines += [f"## {wl.title}", ""]
        lines += _s3(got) if key.startswith("d-") else _local(key, got)
        lines.append("")
    if memory:
        lines += render_memory(memory)
    return "\n".join(lines)


def _header(small: bool) -> str:
    import local_suite as bc

    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (f"# ngffcore write benchmarks (issue 15) — {'SMALL (smoke) data' if small else 'full data'}, {now}\n\n"
            f"{os.cpu_count()} cores, {bc.THREADS} threads per writer, rounds capped at "
            f"{os.environ.get('NGFF_BENCH_ROUNDS', 'defaults')}")


def write(rows: list[dict[str, Any]], memory: list[dict[str, Any]], small: bool) -> Path:
    out = HERE / "results" / ("write-small.md" if small else "write.md")
    out.parent.mkdir(exist_ok=True)
    out.write_text(render(rows, memory, _header(small)))
    return out


def main(argv: list[str] | None = None) -> int:
    import report

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json")
    ap.add_argument("-o", "--output")
    args = ap.parse_args(argv)
    rows = [r for r in report.rows_from_json(args.json) if r["extra"].get("suite") == "write"]
    text = render(rows, [], _header(False))
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
