"""Fixtures and the end-of-session ratio report for the ngffcore benchmark suite.

Run (the root pytest config disables benchmarks and only collects ``tests/``)::

    pytest benchmarks --benchmark-enable -p no:cacheprovider

``NGFF_BENCH_SMALL=1`` uses the 128 MiB variant of the data (smoke runs), ``NGFF_BENCH_ROUNDS=1``
caps the rounds. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the HTTP servers are the tests' (tests/servers.py): one server module for both
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import local_suite as bc  # noqa: E402
import make_data  # noqa: E402
import remote_report  # noqa: E402
import report  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MEMORY_KEY = pytest.StashKey[list]()
REMOTE_NOTES_KEY = pytest.StashKey[list]()  # remote peers that were skipped or failed

# zarr-python's thread pool is created once, at its first synchronous call, with
# threading.max_workers: configure it before any test (or fixture) touches zarr.
bc.configure_zarr()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[MEMORY_KEY] = []
    config.stash[REMOTE_NOTES_KEY] = []


@pytest.fixture(scope="session")
def is_small() -> bool:
    return bc.small()


@pytest.fixture(scope="session")
def bench_data(is_small: bool) -> Path:
    """The data directory; generated (in a subprocess) if the marker file is missing/stale."""
    return make_data.ensure_data(is_small)


@pytest.fixture(scope="session")
def ngffcore() -> Any:
    """ngffcore with its pool sized like the peers. A failed import fails the suite (no skip)."""
    return bc.import_ngffcore()


class Arrays:
    """Arrays opened once per (peer kind, path): metadata is cached outside the timed code."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Any] = {}

    def get(self, peer: str, path: Path, zarr_format: int) -> Any:
        kind = "ngffcore" if peer in bc.NGFF_PEERS else peer
        key = (kind, str(path))
        if key not in self._cache:
            self._cache[key] = bc.open_peer(kind, path, zarr_format)
        return self._cache[key]


@pytest.fixture(scope="session")
def arrays(bench_data: Path) -> Arrays:
    return Arrays()


@pytest.fixture(scope="session")
def reference(arrays: Arrays, is_small: bool, ngffcore: Any) -> Callable[[str, str], Any]:
    """ngffcore's ``a[sel]`` result for (dataset, workload) (tiles stacked), computed outside
    timing. Only the latest one is kept (tests run dataset by dataset, workload by workload),
    so at most one full-array reference (1 GiB) is alive."""
    cache: dict[tuple[str, str], Any] = {}

    def get(dataset: str, workload: str) -> Any:
        key = (dataset, workload)
        if key not in cache:
            cache.clear()
            spec = make_data.DATASETS[dataset]
            arr = arrays.get("ngffcore", make_data.dataset_path(dataset, is_small), spec.zarr_format)
            wl = bc.dataset_workloads(dataset, is_small)[workload]
            cache[key] = bc._stack([arr[s] for s in wl.selections])
        return cache[key]

    return get


@pytest.fixture(scope="session")
def memory_results(request: pytest.FixtureRequest) -> list:
    return request.config.stash[MEMORY_KEY]


@pytest.fixture(scope="session")
def remote_notes(request: pytest.FixtureRequest) -> list:
    return request.config.stash[REMOTE_NOTES_KEY]


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _versions() -> str:
    return report.versions(('ngffcore', 'zarr', 'zarrs', 'tensorstore', 'numcodecs', 'numpy', 'obstore', 'fsspec', 'aiohttp'))


LOCAL_SUITE_MODULES = ("test_bench_read.py", "test_bench_stages.py", "test_bench_memory.py")


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    bs = getattr(config, "_benchmarksession", None)
    memory = config.stash.get(MEMORY_KEY, [])
    remote_notes = config.stash.get(REMOTE_NOTES_KEY, [])
    all_rows = report.rows_from_session(bs.benchmarks) if bs is not None else []
    # latest.md holds the local read suite only: render and tile benchmarks report themselves
    rows = [r for r in all_rows if not remote_report.is_remote(r)
            and r.get("module") in LOCAL_SUITE_MODULES]
    remote_rows = [r for r in all_rows if remote_report.is_remote(r)]
    if bs is not None and bs.disabled and not memory:
        terminalreporter.write_line(
            "ngffcore bench: benchmarks were disabled (root pytest config); pass --benchmark-enable", yellow=True
        )
        return
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    RESULTS_DIR.mkdir(exist_ok=True)
    if remote_rows or remote_notes:
        import remote_suite

        header = (
            f"# ngffcore remote-read benchmarks (HTTP, injected latency), {now}\n\n"
            f"{os.cpu_count()} cores, {remote_suite.THREADS} decode threads and "
            f"{remote_suite.CONCURRENCY} requests in flight per reader, "
            f"HEAD {'answered' if remote_suite.ANSWER_HEAD else 'refused (405)'} by the server; {_versions()}"
        )
        text = remote_report.render(remote_rows, remote_notes, header=header)
        report.publish(terminalreporter, "ngffcore remote ratios", text,
                       RESULTS_DIR / "remote.md")
    if not rows and not memory:
        return
    small = bc.small()
    header = (
        f"# ngffcore benchmarks — {'SMALL (smoke) data' if small else 'full data'}, {now}\n\n"
        f"{os.cpu_count()} cores, {bc.THREADS} threads per reader, "
        f"rounds capped at {os.environ.get('NGFF_BENCH_ROUNDS', 'defaults')}; {_versions()}"
    )
    text = report.render(rows, memory=memory, header=header)
    out = RESULTS_DIR / ("latest-small.md" if small else "latest.md")
    if not rows:  # memory-only run: do not clobber the read tables
        out = RESULTS_DIR / ("memory-small.md" if small else "memory.md")
    report.publish(terminalreporter, "ngffcore ratios", text, out)
