"""The short sanitizer run of CI (issue 6): the C core built with AddressSanitizer and
UndefinedBehaviorSanitizer (``.ci/sanitize``) runs the bad-input, golden-chunk and fuzz
regression tests, where every hostile byte stream goes through the decoders.

The whole suite under ASan/UBSan (``bash .ci/sanitize``) and the TSan run (``bash .ci/tsan``)
are documented in ``docs/reliability.md``; this keeps the parsers' short version in every
run. Needs gcc's ``libasan``/``libubsan`` and cmake (the test extra brings cmake and Cython);
skipped, saying why, where they are missing. ``NGFF_SANITIZE_TEST=0`` skips it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _runtime(name: str) -> str | None:
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    path = subprocess.run([gcc, f"-print-file-name={name}"], capture_output=True,
                          text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


def _missing() -> str | None:
    if os.environ.get("NGFF_SANITIZE_TEST", "1") == "0":
        return "NGFF_SANITIZE_TEST=0"
    if "san" in os.environ.get("LD_PRELOAD", ""):
        return "already under a sanitizer (.ci/sanitize or .ci/tsan)"
    if shutil.which("cmake") is None:
        return "cmake not found"
    for lib in ("libasan.so", "libubsan.so"):
        if _runtime(lib) is None:
            return f"gcc's {lib} not found"
    return None


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_parsers_under_asan_and_ubsan():
    proc = subprocess.run(
        ["bash", str(ROOT / ".ci" / "sanitize"), "tests/zarr/test_bad_input.py",
         "tests/zarr/test_golden.py", "tests/core/test_fuzz_regressions.py", "-q", "-p",
         "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
        # the script runs `python`: this interpreter's environment, activated or not
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                   f"{os.environ.get('PATH', '')}"})
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    assert proc.returncode == 0, f".ci/sanitize failed (exit {proc.returncode}):\n{tail}"
    assert "ERROR: AddressSanitizer" not in proc.stderr and "runtime error:" not in proc.stderr
