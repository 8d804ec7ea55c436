"""CI fuzzing on every run of the test suite: each libFuzzer target's input layout fuzzed for
a bounded time through the built extension, with atheris (``tests/fuzz_smoke.py``).

``NGFF_FUZZ_SECONDS`` per target (default 30; targets run side by side, one per core). The
campaign itself (ASan/UBSan-instrumented, hours) is ``fuzz/run.sh``; see
``docs/fuzzing.md``. A failing input is kept under the test's ``tmp_path`` and named in the
failure; add it to ``tests/data/fuzz/<target>-<what>.bin`` once fixed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("atheris")

HERE = Path(__file__).resolve().parents[1]
TARGETS = ["blosc", "zstd", "zlib", "lz4", "crc32c", "pipeline", "shard", "grid", "render"]
SECONDS = int(os.environ.get("NGFF_FUZZ_SECONDS", "30"))


@pytest.fixture(scope="module")
def fuzz_runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path, float]]:
    root = tmp_path_factory.mktemp("fuzz")

    def run(target: str) -> tuple[subprocess.CompletedProcess, Path, float]:
        out = root / target
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, str(HERE / "fuzz_smoke.py"), target, str(SECONDS),
                               str(out / "corpus")], capture_output=True, text=True,
                              timeout=SECONDS + 300)
        return proc, out, time.monotonic() - t0

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        return dict(zip(TARGETS, pool.map(run, TARGETS)))


@pytest.mark.skipif(SECONDS <= 0, reason="NGFF_FUZZ_SECONDS=0")
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target(fuzz_runs, target):
    proc, out, took = fuzz_runs[target]
    crashes = sorted(out.glob("crash-*"))
    tail = "\n".join(proc.stderr.splitlines()[-25:])
    assert proc.returncode == 0 and not crashes, (
        f"fuzzing {target} for {SECONDS} s found a failing input {[str(c) for c in crashes]}:\n"
        f"{tail}")
    execs = re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    assert execs is not None, f"no libFuzzer statistics from {target}:\n{tail}"
    assert int(execs.group(1)) > 500, f"{target}: only {execs.group(1)} inputs in {took:.0f} s"
    assert took < SECONDS + 120
