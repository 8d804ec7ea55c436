"""Ratio tables for the ngffcore benchmark suite.

Used in two ways:

* by ``conftest.py`` at the end of a ``pytest benchmarks --benchmark-enable`` session (printed in
  the terminal summary and written to ``benchmarks/results/latest.md``, or ``latest-small.md``
  for the small data);
* standalone, on a pytest-benchmark JSON file::

      pytest benchmarks --benchmark-enable -p no:cacheprovider --benchmark-json=bench.json
      python benchmarks/report.py bench.json [-o benchmarks/results/latest.md]

Every benchmark carries ``extra_info`` with ``peer`` (row name) and, for the per-stage and
overhead groups, ``chunks`` (chunk objects per call), from which a per-chunk time is derived.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable


def versions(modules: Iterable[str]) -> str:
    """"python X, mod version, …" for the ``modules`` already imported (a report's header)."""
    parts = [f"python {platform.python_version()}"]
    for mod in modules:
        m = sys.modules.get(mod)
        if m is None:
            continue
        v = getattr(m, "__version__", None)
        if v is None:
            try:
                from importlib.metadata import version

                v = version(mod)
            except Exception:
                v = "?"
        parts.append(f"{mod} {v}")
    return ", ".join(parts)

PEER_ORDER = ("limit", "ngffcore", "ngffcore_out", "tensorstore", "zarrs", "zarr")
PEER_TITLES = {
    "limit": "limit",
    "ngffcore": "ngffcore",
    "ngffcore_out": "ngffcore[out]",
    "tensorstore": "tensorstore",
    "zarrs": "zarrs",
    "zarr": "zarr",
}
RATIOS = (
    ("ngffcore/limit", "ngffcore", "limit"),
    ("ngffcore[out]/limit", "ngffcore_out", "limit"),
    ("tensorstore/ngffcore", "tensorstore", "ngffcore"),
    ("zarr/ngffcore", "zarr", "ngffcore"),
    ("zarrs/ngffcore", "zarrs", "ngffcore"),
)


def rows_from_session(benchmarks: Iterable[Any]) -> list[dict[str, Any]]:
    """pytest-benchmark ``Metadata`` objects -> plain rows."""
    rows = []
    for b in benchmarks:
        if not b or not getattr(b, "stats", None):
            continue
        data = list(b.stats.data)
        if not data:
            continue
        rows.append(
            {
                "group": b.group or "",
                "name": b.name,
                "module": str(getattr(b, "fullname", "")).split("::")[0].rsplit("/", 1)[-1],
                "extra": dict(b.extra_info or {}),
                "median": statistics.median(data),
                "min": min(data),
                "rounds": len(data),
            }
        )
    return rows


def rows_from_json(path: str | Path) -> list[dict[str, Any]]:
    doc = json.loads(Path(path).read_text())
    rows = []
    for b in doc.get("benchmarks", []):
        st = b.get("stats") or {}
        if "median" not in st:
            continue
        rows.append(
            {
                "group": b.get("group") or "",
                "name": b.get("name", ""),
                "extra": b.get("extra_info") or {},
                "median": st["median"],
                "min": st.get("min", st["median"]),
                "rounds": st.get("rounds", 0),
            }
        )
    return rows


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def fmt_ratio(num: float | None, den: float | None) -> str:
    if num is None or den is None or den <= 0:
        return "—"
    return f"{num / den:.2f}×"


def _md_table(header: list[str], body: list[list[str]], align_right_from: int = 1, left: tuple[int, ...] = ()) -> list[str]:
    """Markdown table; columns before ``align_right_from`` and those in ``left`` are left-aligned."""
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    right = [i >= align_right_from and i not in left for i in range(len(header))]

    def line(cells: list[str]) -> str:
        out = []
        for i, (c, w) in enumerate(zip(cells, widths)):
            out.append(c.rjust(w) if right[i] else c.ljust(w))
        return "| " + " | ".join(out) + " |"

    sep = "| " + " | ".join(("-" * (w - 1) + ":") if right[i] else "-" * w for i, w in enumerate(widths)) + " |"
    return [line(header), sep] + [line(r) for r in body]


def render(rows: list[dict[str, Any]], memory: list[dict[str, Any]] | None = None, header: str = "") -> str:
    """Markdown: one ratio table for the read groups, one table for stage/overhead groups,
    and the memory table if given."""
    read_groups: "OrderedDict[str, dict[str, dict[str, Any]]]" = OrderedDict()
    other_groups: "OrderedDict[str, list[dict[str, Any]]]" = OrderedDict()
    for r in rows:
        if r["extra"].get("suite") == "remote":  # rendered by remote_report.py
            continue
        peer = r["extra"].get("peer")
        kind = r["extra"].get("kind", "read")
        if kind in ("read", "overhead") and peer in PEER_ORDER:
            read_groups.setdefault(r["group"], {})[peer] = r
        if kind != "read":
            other_groups.setdefault(r["group"], []).append(r)

    out: list[str] = []
    if header:
        out += [header, ""]
    if read_groups:
        out += ["## Reads (median per round; ratios > 1 mean the first is slower)", ""]
        head = ["group"] + [PEER_TITLES[p] for p in PEER_ORDER] + [t for t, _, _ in RATIOS]
        body = []
        for g, peers in read_groups.items():
            med = {p: peers[p]["median"] if p in peers else None for p in PEER_ORDER}
            body.append([g] + [fmt_time(med[p]) for p in PEER_ORDER] + [fmt_ratio(med[a], med[b]) for _, a, b in RATIOS])
        out += _md_table(head, body)
        out.append("")
        notes = OrderedDict()
        for g, peers in read_groups.items():
            any_row = next(iter(peers.values()))
            note = any_row["extra"].get("workload_note")
            if note:
                notes[g] = (note, any_row["extra"].get("chunks"))
        if notes:
            out += ["Workloads:", ""]
            for g, (note, n) in notes.items():
                out.append(f"* `{g}`: {note}" + (f" — {n} chunk reads" if n else ""))
            out.append("")
    if other_groups:
        out += ["## Stages and per-chunk overhead (median of the timed function; per call / per chunk derived)", ""]
        body = []
        for g, rs in other_groups.items():
            for r in rs:
                calls = r["extra"].get("calls", 1) or 1
                n = r["extra"].get("chunks")
                per_chunk = fmt_time(r["median"] / n) if n else "—"
                body.append(
                    [g, r["extra"].get("peer", r["name"]), fmt_time(r["median"]), str(calls), fmt_time(r["median"] / calls),
                     str(n or "—"), per_chunk, r["extra"].get("note", "")]
                )
        out += _md_table(["group", "row", "median", "calls", "per call", "chunks", "per chunk", "what"], body, align_right_from=2, left=(7,))
        out.append("")
    if memory:
        out += render_memory(memory)
    return "\n".join(out).rstrip() + "\n"


def render_memory(memory: list[dict[str, Any]]) -> list[str]:
    out = [
        "## Peak memory of a full read (fresh process; VmHWM − RSS before the read)",
        "",
    ]
    body = []
    for m in memory:
        if "error" in m:
            body.append([m["dataset"], m["peer"], "error", "", "", m["error"][:80]])
            continue
        mib = 2**20
        ok = "ok" if m["delta"] <= m["budget"] else "OVER"
        body.append(
            [
                m["dataset"],
                m["peer"],
                f"{m['delta'] / mib:.0f} MiB",
                f"{m['budget'] / mib:.0f} MiB",
                f"{(m['delta'] - m['out_nbytes']) / mib:+.0f} MiB",
                ok,
            ]
        )
    out += _md_table(["dataset", "peer", "peak − before", "budget", "beyond output", "vs budget"], body, align_right_from=2)
    out += ["", "budget = output size + 2 × threads × largest (inner) chunk + 64 MiB", ""]
    return out


def report_plugin(config: Any, name: str, make: Any) -> Any:
    """The session's report plugin ``name``, registered with pytest on first use (``make()``
    builds it); the benchmarks of one report share it."""
    plugin = config.pluginmanager.get_plugin(name)
    if plugin is None:
        plugin = make()
        config.pluginmanager.register(plugin, name)
    return plugin


def publish(terminalreporter: Any, title: str, text: str, out: Path) -> None:
    """A rendered report: shown as a section of pytest's terminal summary and written to
    ``out`` (its folder made if needed)."""
    terminalreporter.section(title)
    for line in text.splitlines():
        terminalreporter.write_line(line)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    terminalreporter.write_line(f"written: {out}")


def report_cli(argv: list[str] | None, what: str, render_json: Any) -> int:
    """A report script's command line: ``JSON [-o OUT]`` → ``render_json(path)`` (the
    markdown) on stdout, and in OUT if given."""
    ap = argparse.ArgumentParser(description=f"{what} from a pytest-benchmark JSON file")
    ap.add_argument("json", help="file written by --benchmark-json")
    ap.add_argument("-o", "--output", help="also write the markdown here")
    args = ap.parse_args(argv)
    text = render_json(args.json)
    sys.stdout.write(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    return 0


def _render_json(path: str) -> str:
    rows = rows_from_json(path)
    text = render(rows, header=f"# ngffcore benchmarks ({path})")
    if any(r["extra"].get("suite") == "remote" for r in rows):
        import remote_report

        text = text.rstrip() + "\n\n" + remote_report.render(rows)
    return text


def main(argv: list[str] | None = None) -> int:
    return report_cli(argv, "ratio tables", _render_json)

if __name__ == "__main__":
    sys.exit(main())
