"""The extension's .pyi must match the compiled module (mypy's stubtest)."""

import os
import subprocess
import sys

import pytest


def test_core_stub_matches_binary() -> None:
    pytest.importorskip("mypy")
    allowlist = os.path.join(os.path.dirname(__file__), "stubtest_allowlist.txt")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "ngffcore._core", "--allowlist", allowlist],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_package_is_typed() -> None:
    import ngffcore

    root = os.path.dirname(ngffcore.__file__)
    assert os.path.exists(os.path.join(root, "py.typed"))
    assert os.path.exists(os.path.join(root, "_core.pyi"))


def test_package_type_checks() -> None:
    """The Python layer type-checks strictly (``--strict``: the house rule) against the stub
    and numpy's/obstore's own types."""
    pytest.importorskip("mypy")
    import ngffcore

    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports", "--no-incremental",
         os.path.dirname(ngffcore.__file__)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
