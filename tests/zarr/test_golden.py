"""Golden chunks encoded by numcodecs (see tests/data/golden/README.md), read by ngffcore.

Needs only numpy and ngffcore at run time (no zarr, no numcodecs): it guards the decoders
against drift independently of zarr-python.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ngffcore

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir() and (p / "expected.npy").exists())


def test_golden_cases_present():
    expected_some = {
        "v2_blosc_lz4_shuffle",
        "v2_blosc_zstd_bitshuffle",
        "v2_blosc_zlib_noshuffle",
        "v2_blosc_blosclz_shuffle",
        "v2_zstd",
        "v2_zlib",
        "v2_gzip",
        "v2_lz4",
        "v2_bz2",
        "v2_lzma",
        "v2_delta_blosc",
        "v3_crc32c",
        "v3_shard_index_end",
        "v3_shard_index_start",
        "v3_zstd_no_content_size",
    }
    assert expected_some <= set(CASES), sorted(expected_some - set(CASES))
    assert len(CASES) >= 35


@pytest.mark.parametrize("case", CASES)
def test_golden(identical, case):
    path = GOLDEN / case
    expected = np.load(path / "expected.npy")
    arr = ngffcore.open_array(str(path))
    assert arr.shape == expected.shape
    assert arr.dtype == expected.dtype
    identical(arr[...], expected, case)
    for sel in [(slice(3, 9), slice(5, 11)), (9, slice(None)), (slice(None), 11), (0, 0), (slice(4, 8), slice(8, 12))]:
        identical(arr[sel], expected[sel + (Ellipsis,)], f"{case}[{sel}]")
