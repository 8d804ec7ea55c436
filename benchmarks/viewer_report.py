"""The report of the pan/zoom viewer benchmark (``test_bench_viewer.py``): printed at the end of
the session and written to ``benchmarks/results/viewer.md``. Standalone, from a saved run::

    pytest benchmarks/test_bench_viewer.py --benchmark-enable -p no:cacheprovider --benchmark-json=viewer.json
    python benchmarks/viewer_report.py viewer.json [-o benchmarks/results/viewer.md]
"""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # servers.py
from report import _md_table, fmt_time, publish, report_cli, rows_from_json, rows_from_session, versions  # noqa: E402
from servers import describe_server  # noqa: E402

PLUGIN_NAME = "ngffcore-viewer-report"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
ORDER = ("scheduler", "ngffcore", "tensorstore")
KIND_TITLES = {"p": "pan", "f": "fling step", "i": "zoom in", "o": "zoom out", "s": "start"}
#: the issue's targets for (a)
TARGET_WASTE = 0.10
TARGET_FEWER = 2.0


def is_viewer(row_or_benchmark: Any) -> bool:
    extra = row_or_benchmark["extra"] if isinstance(row_or_benchmark, dict) else (row_or_benchmark.extra_info or {})
    return extra.get("suite") == "viewer"


def _mib(n: float | None) -> str:
    return "—" if n is None else f"{n / 2**20:.1f} MiB"


def _pct(a: float, b: float) -> str:
    return "—" if b <= 0 else f"{100 * a / b:.1f} %"


def _versions() -> str:
    return versions(('ngffcore', 'tensorstore', 'zarr', 'obstore', 'numpy'))


def _load_avg() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unknown"


def render(rows: list[dict[str, Any]], notes: list[dict[str, Any]] | None = None, header: str = "") -> str:
    notes = notes or []
    rows = [r for r in rows if is_viewer(r)]
    out: list[str] = [header, ""] if header else []
    by_ds: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        e = r["extra"]
        by_ds.setdefault(e["dataset"], {})[e["peer"]] = {**e, "wall": r["median"]}
    for ds, engines in by_ds.items():
        out += _dataset(ds, engines)
    if rows:
        out += _explain(rows[0]["extra"], by_ds)
    if notes:
        out += ["## Did not run", ""]
        out += [f"* `{n['group']}` {n['peer']}: {n['status']}: {n['reason']}" for n in notes]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _dataset(ds: str, engines: dict[str, dict[str, Any]]) -> list[str]:
    present = [e for e in ORDER if e in engines]
    any_e = engines[present[0]]
    out = [f"## `{ds}`: {any_e['dataset_label']}, HTTP {any_e['latency_ms']:g} ms per request", ""]
    out += _targets(engines)
    naive = engines.get("ngffcore")
    body = []
    for name in present:
        e = engines[name]
        m = e["metrics"]
        shown = m["bytes_shown"]
        th0, th, th1 = e["threads_before"], e["threads_during"], e["threads_after_close"]
        body.append([
            e["title"], fmt_time(m["first"]["p50"]), fmt_time(m["first"]["p95"]), fmt_time(m["all_settled"]["p95"]),
            f"{m['superseded']}/{m['views_with_new']}",
            f"{m['gets']}" + (f" (+{m['heads']} HEAD)" if m["heads"] else ""),
            f"{naive['metrics']['gets'] / m['gets']:.2f}×" if naive and m["gets"] else "—",
            _mib(shown), f"{_mib(m['bytes_never_shown'])} ({_pct(m['bytes_never_shown'], shown)})",
            _mib(m["bytes_duplicate"]),
            f"{th0['os']} / {th['os_peak']} / {th['os_after']} / {th1['os']}",
            f"{th0['py']} / {th['py_peak']} / {th1['py']}",
        ])
    out += _md_table(["engine", "first p50", "first p95", "all p95 (settled)", "superseded", "GETs", "(b) ÷ GETs",
                      "bytes shown", "never shown (÷ shown)", "duplicate", "OS threads before/peak/end/closed",
                      "Python threads before/peak/closed"], body, align_right_from=1)
    out.append("")
    kinds = sorted({k for n in present for k in engines[n]["metrics"]["first_by_kind"]},
                   key=lambda k: "spfio".find(k))
    body = []
    for name in present:
        fk = engines[name]["metrics"]["first_by_kind"]
        body.append([engines[name]["title"]] + [
            f"{fmt_time(fk[k]['p50'])} / {fmt_time(fk[k]['p95'])} ({fk[k]['n']})" if k in fk else "—" for k in kinds])
    out += ["Time to the first new tile by kind of view change, p50 / p95 (views):", ""]
    out += _md_table(["engine"] + [KIND_TITLES.get(k, k) for k in kinds], body, align_right_from=1)
    out.append("")
    body = []
    for name in present:
        e, m = engines[name], engines[name]["metrics"]
        st = m["calls_by_status"]
        body.append([e["title"], str(m["calls"]), ", ".join(f"{k} {v}" for k, v in sorted(st.items())),
                     f"{m.get('gets_shown', '?')} / {m.get('gets_never_shown', '?')} / {m.get('gets_duplicate', '?')}",
                     f"{m['tiles_shown']}", f"{m['tiles_fetched']} ({m['tiles_fetched_never_shown']} never shown)",
                     ", ".join(f"L{k} {v}" for k, v in m["gets_per_level"].items()),
                     f"{fmt_time(m['issue']['p50'])} / {fmt_time(m['issue']['max'])}",
                     f"{m['lag_ms_max']:.1f} ms", f"{m['replay_s']:.1f} s + {m['drain_s']:.2f} s",
                     fmt_time(e["server_cpu_s"]), str(e["checked_tiles"])])
    out += _md_table(["engine", "tile calls", "calls ended", "GETs shown / never shown / duplicate", "tiles shown", "tiles fetched", "GETs per level",
                      "issuing a view p50 / max", "replay lag max", "replay + drain", "server CPU", "tiles checked"], body, align_right_from=1)
    out.append("")
    sched = engines.get("scheduler")
    if sched and sched.get("engine_stats"):
        s = sched["engine_stats"]
        out.append("Scheduler stats after the replay: " + ", ".join(f"`{k}` {v}" for k, v in s.items()) + ".")
        out.append("")
    return out


def _targets(engines: dict[str, dict[str, Any]]) -> list[str]:
    a, b = engines.get("scheduler"), engines.get("ngffcore")
    if a is None:
        return []
    m = a["metrics"]
    bound = a["target_first_p95"]
    p95 = m["first"]["p95"]
    waste = m["bytes_never_shown"] / m["bytes_shown"] if m["bytes_shown"] else None

    def verdict(ok: bool | None) -> str:
        return "—" if ok is None else ("met" if ok else "**missed**")

    peers = "; ".join(f"{engines[n]['title']} {fmt_time(engines[n]['metrics']['first']['p95'])}"
                      for n in ORDER[1:] if n in engines)
    body = [[f"(a) p95 time to the first visible tile ≤ RTT + decode + 3 ms = {fmt_time(bound)}",
             f"{fmt_time(p95)} (p50 {fmt_time(m['first']['p50'])}); {peers}",
             verdict(None if p95 is None else p95 <= bound)],
            [f"(a) bytes for tiles never shown ≤ {TARGET_WASTE:.0%} of bytes shown",
             f"{_mib(m['bytes_never_shown'])} of {_mib(m['bytes_shown'])} = "
             + ("—" if waste is None else f"{waste:.1%}")
             + (f" (+ {_mib(m['bytes_duplicate'])} duplicate GETs)" if m["bytes_duplicate"] else ""),
             verdict(None if waste is None else waste <= TARGET_WASTE)]]
    floor = []
    if b is not None:
        ratio = b["metrics"]["gets"] / m["gets"] if m["gets"] else None
        body.append([f"(a) requests sent ≥ {TARGET_FEWER:g}× fewer than (b)",
                     f"(a) {m['gets']}, (b) {b['metrics']['gets']}: "
                     + ("—" if ratio is None else f"{ratio:.2f}× fewer"),
                     verdict(None if ratio is None else ratio >= TARGET_FEWER)])
        if m.get("gets_shown"):
            bm = b["metrics"]
            floor = ["", f"Floor for the request count: the {m['tiles_shown']} tiles (a) showed need {m['gets_shown']} "
                     f"GETs (one per chunk object); (b) sent {bm['gets_shown']} for the tiles it showed, "
                     f"{bm['gets_never_shown']} for tiles never shown and {bm['gets_duplicate']} duplicates, so on "
                     f"this trace no engine can send more than {bm['gets'] / m['gets_shown']:.2f}× fewer requests "
                     "than (b)."]
    out = ["### The issue's targets", ""]
    out += _md_table(["target", "measured", "verdict"], body, align_right_from=9)
    out += floor
    out += ["", f"decode = ngffcore's decode of one tile's chunks from memory, median of "
            f"{len(a['decode_times'])} trace tiles ({fmt_time(a['decode_p50'])}, slowest {fmt_time(a['decode_max'])}).", ""]
    return out


def _explain(extra: dict[str, Any], by_ds: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    out = ["## What was measured", ""]
    out.append(f"* Trace (`benchmarks/traces/pan_zoom.json`, `viewer_trace.py`): {extra['trace']}. Replayed in "
               "real time: each view issued at its offset from the start (`issuing a view`: time the replay "
               "thread spent in the engine's calls for one view, the cost on a viewer's UI thread; `replay lag "
               "max`: how late the latest view was issued); every engine opened afresh (cold caches, metadata read before).")
    out.append(f"* HTTP: {describe_server()}, {extra['latency_ms']:g} ms slept per request (requests in flight "
               "overlap), on the same 2 cores as the engines (`server CPU`). GETs and bytes come from its log "
               "of the replay; bytes are response sizes.")
    out.append("* A tile is *ready* for a view at the earliest end of a call for it made at or before that "
               "view. A view's *new* tiles are its visible tiles not ready when it was issued. `first`: view "
               "change → its first new tile ready; views whose new tiles all ended cancelled are "
               f"`superseded` (no value). `all (settled)`: → its last new tile, for views lasting ≥ "
               f"{extra['metrics']['settled_ms']} ms.")
    out.append("* *Shown*: a tile ready while a view showing it lasted. `never shown`: bytes of chunk objects "
               "whose tile was never shown (fetched for a view replaced before they were ready, or prefetched "
               "and never visible later); `duplicate`: a second GET of an object.")
    out.append("* Threads: `/proc/self/task` (all native threads) and `threading.active_count()`, after the "
               "open, peak during the replay, when every call had ended (`end`), and after the engine's close.")
    out.append("* Engines:")
    seen: set[str] = set()
    for engines in by_ds.values():
        for n in ORDER:
            if n in engines and n not in seen:
                seen.add(n)
                out.append(f"  * {engines[n]['title']}: {engines[n]['config']}")
    out.append("")
    return out


def result_name(rows: list[dict[str, Any]]) -> str:
    """``viewer.md`` for the issue's setting (the whole trace at 20 ms); other latencies and
    shortened (smoke) traces get their own file, so they never replace it."""
    e = rows[0]["extra"] if rows else {}
    name = "viewer"
    if e.get("latency_ms", 20) != 20:
        name += f"-{e['latency_ms']:g}ms"
    if e.get("trace_views", 0) < e.get("trace_full_views", 0):
        name += f"-smoke{e['trace_views']}"
    return name + ".md"


class ReportPlugin:
    """Registered by ``test_bench_viewer.py``; renders its rows at the end of the session."""

    def __init__(self) -> None:
        self.notes: list[dict[str, Any]] = []

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        bs = getattr(config, "_benchmarksession", None)
        if bs is None or bs.disabled:
            return
        rows = rows_from_session([b for b in bs.benchmarks if is_viewer(b)])
        if not rows and not self.notes:
            return
        now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        header = (f"# ngffcore pan/zoom viewer benchmark, {now}\n\n{os.cpu_count()} cores ({_load_avg()} at the "
                  f"end of the run), {rows[0]['extra']['threads'] if rows else '?'} decode threads per engine, "
                  f"{rows[0]['extra']['max_in_flight'] if rows else '?'} requests in flight; {_versions()}")
        text = render(rows, self.notes, header=header)
        publish(terminalreporter, "ngffcore viewer", text, RESULTS_DIR / result_name(rows))


def main(argv: list[str] | None = None) -> int:
    return report_cli(argv, "viewer tables", lambda path: render(rows_from_json(path),
                                                          header=f"# ngffcore pan/zoom viewer benchmark ({path})"))

if __name__ == "__main__":
    sys.exit(main())
