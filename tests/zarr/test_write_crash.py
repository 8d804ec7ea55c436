"""Crash safety (issue 15, item 4): a process writing a large sharded array is SIGKILLed at
random moments (24 runs); afterwards every shard decodes with zarr-python (its index checksum
holds) and every inner chunk holds one generation's contents whole, the one before or after,
never a mix; the only debris is temporary files, which no reader ever opens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import ngffcore

zarr = pytest.importorskip("zarr")

SHAPE = (32, 256, 256)
SHARDS = (16, 128, 128)
INNER = (8, 64, 64)

WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import ngffcore
    arr = ngffcore.open_array(sys.argv[1], mode="r+")
    base = np.arange(np.prod(arr.shape), dtype=np.uint32).reshape(arr.shape) % 50000
    gen = int(sys.argv[2])
    rng = np.random.default_rng(gen)
    print("ready", flush=True)
    while True:
        gen += 1
        if gen % 3:
            arr[...] = (base + gen).astype(np.uint16)  # every shard, whole
        else:  # one inner chunk of a shard (fetch, merge, write the shard)
            z, y, x = (int(rng.integers(0, n // c)) * c for n, c in zip(arr.shape, INNER))
            sl = tuple(slice(a, a + c) for a, c in zip((z, y, x), INNER))
            arr[sl] = (base[sl] + gen).astype(np.uint16)
""").replace("INNER", repr(INNER))


def _generation(block: np.ndarray, base: np.ndarray) -> set[int]:
    return set(np.unique((block.astype(np.int64) - base) % 65536).tolist())


def test_sigkill_never_tears_a_shard(tmp_path):
    path = str(tmp_path / "a.zarr")
    arr = ngffcore.create_array(path, shape=SHAPE, dtype="uint16", chunks=INNER,
                                shards=SHARDS, fill_value=0)
    base = (np.arange(np.prod(SHAPE), dtype=np.uint32).reshape(SHAPE) % 50000).astype(np.int64)
    arr[...] = (base + 0).astype(np.uint16)
    rng = np.random.default_rng(12345)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    runs = 24
    for run in range(runs):
        with subprocess.Popen([sys.executable, str(script), path, str(1000 * run)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != b"ready":
                proc.kill()
                pytest.fail(f"the writer did not start: {line + proc.stdout.read()!r}")
            time.sleep(float(rng.uniform(0.0, 0.4)))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL, proc.stdout.read()
        full = zarr.open_array(path, mode="r")[...]  # raises if a shard does not decode
        for idx in np.ndindex(*(n // c for n, c in zip(SHAPE, INNER))):
            sl = tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, INNER))
            gens = _generation(full[sl], base[sl])
            assert len(gens) == 1, f"run {run}: inner chunk {idx} mixes generations {gens}"
    debris = [f for _, _, files in os.walk(path) for f in files
              if not (f == "zarr.json" or f.isdigit())]
    assert all(f.startswith(".") and f.endswith(".partial") for f in debris), debris
