"""Peak memory of a full-array read, each reader in a fresh process.

    python benchmarks/memory.py                 # all peers, all datasets, 1 GiB data
    python benchmarks/memory.py --small         # the small variant (also NGFF_BENCH_SMALL=1)
    python benchmarks/memory.py --peers ngffcore --datasets v3_shard

For every (peer, dataset) a child process imports the reader, configures it for
``NGFF_BENCH_THREADS`` (2) threads, opens the array, then records

* ``before``: VmRSS just before the read (after ``gc.collect()``),
* ``peak``:   ``VmHWM`` after the read (the peak-RSS counter is reset through
  ``/proc/self/clear_refs`` just before the read where the kernel allows it, so an earlier
  import-time peak cannot hide the read's). Not ``ru_maxrss``: Linux keeps that across
  ``fork`` + ``exec`` in the process's signal state, so a child of a large process (pytest
  after the read benchmarks, ~6 GB) reported the parent's peak for every read,

and reports ``peak - before``: the read's own footprint, output array included. The budget is
``output size + 2 x threads x largest (inner) chunk + 64 MiB``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import local_suite as bc  # noqa: E402
import make_data  # noqa: E402

MEMORY_PEERS = ("ngffcore", "tensorstore", "zarrs", "zarr")
MiB = 2**20


def budget(dataset: str, small: bool, threads: int = bc.THREADS) -> tuple[int, int]:
    """(output bytes, budget bytes) for a full read of ``dataset``."""
    import math

    spec = make_data.DATASETS[dataset]
    out = math.prod(make_data.shape_for(small)) * make_data.DTYPE.itemsize
    return out, out + 2 * threads * spec.chunk_nbytes + 64 * MiB


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _vm_rss() -> int:
    return _status_bytes("VmRSS")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(peer: str, dataset: str, small: bool) -> dict[str, Any]:
    spec = make_data.DATASETS[dataset]
    path = make_data.dataset_path(dataset, small)
    arr = bc.open_peer(peer, path, spec.zarr_format)
    if peer == "tensorstore":
        read = lambda: arr.read().result()  # noqa: E731
    else:
        read = lambda: arr[...]  # noqa: E731
    gc.collect()
    before = _vm_rss()
    reset = _reset_peak()
    res = read()
    try:
        peak = _status_bytes("VmHWM")  # this process's own peak (see the module docstring)
    except (OSError, RuntimeError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert res.shape == make_data.shape_for(small), res.shape
    return {"peer": peer, "dataset": dataset, "before": before, "peak": peak, "delta": peak - before,
            "peak_reset": reset, "out_nbytes": int(res.nbytes)}


def measure(peer: str, dataset: str, small: bool, timeout: float = 600) -> dict[str, Any]:
    """Run one child; returns its figures plus ``budget`` (or ``error``)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", peer, dataset] + (["--small"] if small else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out_nbytes, bud = budget(dataset, small)
    if proc.returncode != 0:
        return {"peer": peer, "dataset": dataset, "budget": bud, "out_nbytes": out_nbytes,
                "error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["budget"] = bud
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="peak RSS of a full read, per reader, in fresh processes")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--peers", default=",".join(MEMORY_PEERS))
    ap.add_argument("--datasets", default=",".join(make_data.DATASETS))
    ap.add_argument("--child", nargs=2, metavar=("PEER", "DATASET"), help=argparse.SUPPRESS)
    ap.add_argument("-o", "--output", help="also write the markdown table here")
    args = ap.parse_args(argv)
    small = args.small or make_data.env_small()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], small)))
        return 0

    import report

    make_data.ensure_data(small)
    results = []
    for ds in args.datasets.split(","):
        for peer in args.peers.split(","):
            r = measure(peer, ds, small)
            results.append(r)
            if "error" in r:
                print(f"{ds:<10} {peer:<12} ERROR {r['error']}", flush=True)
            else:
                print(f"{ds:<10} {peer:<12} peak-before {r['delta'] / MiB:7.0f} MiB   budget {r['budget'] / MiB:7.0f} MiB"
                      f"   {'ok' if r['delta'] <= r['budget'] else 'OVER'}", flush=True)
    text = "\n".join(report.render_memory(results))
    print()
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    ngff_over = [r for r in results if r["peer"] == "ngffcore" and ("error" in r or r["delta"] > r["budget"])]
    return 1 if ngff_over else 0


if __name__ == "__main__":
    sys.exit(main())
