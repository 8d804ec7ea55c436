"""Peak memory of a full read (no pytest-benchmark): each reader in a fresh subprocess, see
``memory.py``. ngffcore must stay within ``output + 2 x threads x largest chunk + 64 MiB``;
the peers are measured and reported (end-of-session table), not asserted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import make_data
import memory

MiB = 2**20


@pytest.mark.slow
@pytest.mark.parametrize("dataset", list(make_data.DATASETS))
def test_memory_ngffcore(bench_data: Path, ngffcore: Any, memory_results: list, is_small: bool, dataset: str) -> None:
    r = memory.measure("ngffcore", dataset, is_small)
    memory_results.append(r)
    assert "error" not in r, r["error"]
    print(f"\n{dataset}: ngffcore peak - before = {r['delta'] / MiB:.0f} MiB, budget {r['budget'] / MiB:.0f} MiB")
    assert r["delta"] <= r["budget"], (
        f"full read of {dataset} used {r['delta'] / MiB:.0f} MiB beyond the RSS before the read; budget "
        f"{r['budget'] / MiB:.0f} MiB (output {r['out_nbytes'] / MiB:.0f} MiB)"
    )


@pytest.mark.slow
@pytest.mark.parametrize("peer", [p for p in memory.MEMORY_PEERS if p != "ngffcore"])
def test_memory_peers(bench_data: Path, memory_results: list, is_small: bool, peer: str) -> None:
    """Figures for the table only; a peer over the budget is not a failure."""
    for dataset in make_data.DATASETS:
        r = memory.measure(peer, dataset, is_small)
        memory_results.append(r)
        assert "error" not in r, f"{peer} on {dataset}: {r['error']}"
