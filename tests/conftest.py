"""Shared fixtures for the ngffcore test suite.

Everything here writes *reference* data with independent implementations (zarr-python,
tensorstore) or builds arrays with numpy, and compares ngffcore's reads against those.
Nothing here ever uses ngffcore's own output as a reference.

zarr and tensorstore are imported lazily so that ``test_golden.py`` (which must not need
zarr at run time) can use :func:`assert_identical`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

# --------------------------------------------------------------------------------------
# slow tests: only on request
# --------------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (long variants of the load tests) are skipped unless asked
    for: ``NGFF_SLOW=1 pytest`` or ``pytest -m slow``. A plain ``pytest`` stays fast."""
    if os.environ.get("NGFF_SLOW") or "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with NGFF_SLOW=1 or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# --------------------------------------------------------------------------------------
# reference data
# --------------------------------------------------------------------------------------

#: NaNs with non-default payloads / signalling NaNs, plus signed zeros and infinities,
#: as raw bit patterns (native-endian unsigned ints of the float's width).
_SPECIAL_FLOAT_BITS = {
    2: [0x7E01, 0xFE00, 0x7C01, 0x8000, 0x7C00, 0xFC00, 0x0001],
    4: [0x7FC00001, 0xFFC00000, 0x7F800001, 0x80000000, 0x7F800000, 0xFF800000, 0x00000001],
    8: [
        0x7FF8000000000001,
        0xFFF8000000000000,
        0x7FF0000000000001,
        0x8000000000000000,
        0x7FF0000000000000,
        0xFFF0000000000000,
        0x0000000000000001,
    ],
}


def _float_values(n: int, itemsize: int, rng: np.random.Generator) -> np.ndarray:
    """n native floats of width ``itemsize``: half a smooth ramp (compressible), half random
    (incompressible), with NaN payloads, -0.0, +-inf and denormals sprinkled in."""
    fdt = np.dtype(f"f{itemsize}")
    half = n // 2
    ramp = (np.arange(half, dtype=np.float64) * 0.25).astype(fdt)
    noise = (rng.standard_normal(n - half) * 1000.0).astype(fdt)
    vals = np.concatenate([ramp, noise])
    special = np.array(_SPECIAL_FLOAT_BITS[itemsize], dtype=f"u{itemsize}").view(fdt)
    if n:
        idx = rng.choice(n, size=min(n, len(special) * 2), replace=False)
        vals[idx] = np.resize(special, idx.size)
    return vals


def sample_data(shape: tuple[int, ...], dtype: Any, seed: int = 0) -> np.ndarray:
    """Deterministic test data of ``dtype`` (byte order preserved) and ``shape``.

    Integers cover the whole range of the type (so deltas wrap around), floats include NaN
    payloads, -0.0, infinities; the first half (C order) is a compressible ramp.
    """
    dt = np.dtype(dtype)
    native = dt.newbyteorder("=")
    n = math.prod(shape)
    rng = np.random.default_rng(seed)
    if dt.kind == "b":
        half = n // 2
        vals = np.concatenate([(np.arange(half) // 7) % 2 == 0, rng.integers(0, 2, n - half) == 1])
    elif dt.kind in "iu":
        info = np.iinfo(native)
        half = n // 2
        ramp = (np.arange(half, dtype=np.int64) % int(min(info.max, 1 << 30))).astype(native)
        noise = rng.integers(info.min, info.max, n - half, dtype=native, endpoint=True)
        vals = np.concatenate([ramp, noise])
    elif dt.kind == "f":
        vals = _float_values(n, dt.itemsize, rng)
    elif dt.kind == "c":
        half = dt.itemsize // 2
        re = _float_values(n, half, rng)
        im = _float_values(n, half, rng)[::-1].copy()
        vals = np.empty(n, dtype=native)
        pair = vals.view(f"f{half}").reshape(n, 2)
        pair[:, 0] = re
        pair[:, 1] = im
    else:  # pragma: no cover - test authoring error
        raise AssertionError(f"no sample data for {dt}")
    out = np.asarray(vals, dtype=native).reshape(shape)
    # byte-order conversion through numpy is a pure byte swap (keeps NaN payloads)
    return out.astype(dt)


def expected_with_fill(data: np.ndarray, region: Any, fill: Any) -> np.ndarray:
    """The full array a reader must return when only ``data[region]`` was written and
    everything else reads as ``fill`` (None = zeros)."""
    out = np.zeros(data.shape, dtype=data.dtype)
    if fill is not None:
        out[...] = np.asarray(fill).astype(data.dtype)
    if region is not None:
        out[region] = data[region]
    return out


# --------------------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------------------


def _bits(x: np.ndarray) -> np.ndarray:
    """Raw-bit view of ``x`` as unsigned ints (same byte order), flattened in C order."""
    flat = np.ascontiguousarray(x).reshape(-1)
    dt = flat.dtype
    if dt.kind == "b":
        return flat.view(np.uint8)
    width = dt.itemsize // 2 if dt.kind == "c" else dt.itemsize
    udt = np.dtype(f"u{width}")
    if dt.byteorder in "<>":
        udt = udt.newbyteorder(dt.byteorder)
    return flat.view(udt)


def assert_identical(actual: Any, expected: Any, what: str = "") -> None:
    """Bit-exact equality: same type (ndarray), dtype incl. byte order, shape and bytes.

    NaN payloads and -0.0 count (floats are compared through their raw bits).
    """
    expected = np.asarray(expected)
    assert isinstance(actual, np.ndarray), f"{what}: expected numpy.ndarray, got {type(actual)!r}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype.str} != {expected.dtype.str}"
    assert actual.dtype.str == expected.dtype.str, f"{what}: dtype {actual.dtype.str} != {expected.dtype.str}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    # readable value diff first (NaN == NaN here), then the bit-exact check
    np.testing.assert_array_equal(actual, expected, err_msg=what, strict=True)
    np.testing.assert_array_equal(_bits(actual), _bits(expected), err_msg=f"{what} (raw bits)")


def standard_selections(shape: tuple[int, ...]) -> list[Any]:
    """A handful of selections that cross chunk boundaries, drop axes and clip."""
    sels: list[Any] = [Ellipsis, ()]
    if not shape:
        return sels
    nd = len(shape)
    # interior box, odd offsets
    sels.append(tuple(slice(min(1, s), max(min(1, s), s - 1)) for s in shape))
    # first element of axis 0, rest full
    sels.append((0, Ellipsis))
    # last element along every axis -> 0-d result
    sels.append(tuple(-1 for _ in shape))
    # negative and past-the-end slice bounds
    sels.append((slice(-(shape[0] // 2 + 1), shape[0] + 100),) + (Ellipsis,))
    if nd >= 2:
        sels.append((Ellipsis, shape[-1] // 2))
        sels.append((slice(None), shape[1] - 1) + (slice(None),) * (nd - 2))
    # an empty selection
    sels.append((slice(3, 3),) + (Ellipsis,))
    return sels


#: zarr-python warnings that are about zarr-python itself, not about the data under test
_HARMLESS_ZARR_WARNINGS = [
    r"Combining a `sharding_indexed` codec disables partial reads",
]


@contextlib.contextmanager
def quiet_zarr():
    """Silence the (few, named) zarr-python performance warnings while it writes/reads."""
    with warnings.catch_warnings():
        for msg in _HARMLESS_ZARR_WARNINGS:
            warnings.filterwarnings("ignore", message=msg)
        yield


def _open_zarr(path: str):
    import zarr

    with quiet_zarr():
        return zarr.open_array(path, mode="r")


def assert_read_matches(path: str | os.PathLike[str], selections: list[Any] | None = None) -> None:
    """``ngffcore.open_array(path)[sel]`` must equal ``zarr.open_array(path)[sel]`` bit-exactly
    for every selection (default: :func:`standard_selections`)."""
    import ngffcore

    path = str(path)
    ref = _open_zarr(path)
    arr = ngffcore.open_array(path)
    if selections is None:
        selections = standard_selections(tuple(ref.shape))
    for sel in selections:
        with quiet_zarr():
            expected = ref[sel]
        if isinstance(expected, np.generic):
            # zarr-python returns a numpy *scalar* (native byte order) for 0-d arrays; the
            # contract is an ndarray of the array's dtype (v2 keeps the metadata byte order)
            expected = np.asarray(expected).astype(ref.dtype)
        expected = np.asarray(expected)
        actual = arr[sel]
        assert_identical(actual, expected, f"{path}[{sel!r}]")


# --------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------


class Writer:
    """Writes test arrays into a session temp directory (one fresh sub-directory each)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._n = itertools.count()

    def new_path(self, name: str = "a") -> str:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60]
        p = self.root / f"{next(self._n):05d}_{safe}"
        return str(p)

    # zarr-python ----------------------------------------------------------------------
    def v2(
        self,
        data: np.ndarray,
        *,
        chunks: tuple[int, ...],
        compressor: Any = None,
        filters: Any = None,
        order: str = "C",
        separator: str = ".",
        fill_value: Any = 0,
        region: Any = Ellipsis,
        name: str = "v2",
    ) -> str:
        """Zarr v2 array written by zarr-python; only ``data[region]`` is written
        (``region=None``: nothing, so every chunk is missing)."""
        import zarr

        path = self.new_path(name)
        with quiet_zarr():
            z = zarr.create_array(
                path,
                shape=data.shape,
                chunks=chunks,
                dtype=data.dtype,
                zarr_format=2,
                compressors=compressor,
                filters=filters,
                order=order,
                chunk_key_encoding={"name": "v2", "separator": separator},
                fill_value=fill_value,
            )
        if region is not None:
            with quiet_zarr():
                z[region] = data[region]
        return path

    def v3(
        self,
        data: np.ndarray,
        *,
        chunks: tuple[int, ...],
        shards: Any = None,
        serializer: Any = "auto",
        compressors: Any = None,
        filters: Any = None,
        fill_value: Any = 0,
        chunk_key_encoding: Any = None,
        region: Any = Ellipsis,
        name: str = "v3",
    ) -> str:
        """Zarr v3 array written by zarr-python (``data`` is stored with its native value;
        use ``serializer=BytesCodec(endian=...)`` for the storage byte order)."""
        import zarr

        path = self.new_path(name)
        with quiet_zarr():
            z = zarr.create_array(
                path,
                shape=data.shape,
                chunks=chunks,
                shards=shards,
                dtype=data.dtype.newbyteorder("="),
                zarr_format=3,
                serializer=serializer,
                compressors=compressors,
                filters=filters,
                fill_value=fill_value,
                chunk_key_encoding=chunk_key_encoding,
            )
        if region is not None:
            with quiet_zarr():
                z[region] = data[region]
        return path

    # tensorstore ----------------------------------------------------------------------
    def tensorstore(self, driver: str, data: np.ndarray, metadata: dict[str, Any], *,
                    region: Any = Ellipsis, name: str = "ts") -> str:
        """Array written by tensorstore (``driver`` = ``zarr`` or ``zarr3``)."""
        import tensorstore as ts

        path = self.new_path(name)
        spec = {
            "driver": driver,
            "kvstore": {"driver": "file", "path": path},
            "metadata": metadata,
        }
        store = ts.open(spec, create=True, delete_existing=True).result()
        if region is not None:
            store[region].write(data[region]).result()
        return path


# --------------------------------------------------------------------------------------
# metadata patching (for hand-made / hostile metadata)
# --------------------------------------------------------------------------------------


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)


def patch_metadata(array_path: str, **changes: Any) -> dict[str, Any]:
    """Rewrite ``.zarray`` / ``zarr.json`` of ``array_path`` with ``changes`` applied; a
    value of ``"__delete__"`` removes that key."""
    p = Path(array_path)
    meta_file = p / "zarr.json" if (p / "zarr.json").exists() else p / ".zarray"
    meta = read_json(meta_file)
    for key, value in changes.items():
        if value == "__delete__":
            meta.pop(key, None)
        else:
            meta[key] = value
    write_json(meta_file, meta)
    return meta


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def writer(tmp_path_factory: pytest.TempPathFactory) -> Writer:
    """Writes arrays with zarr-python / tensorstore into a fresh session directory."""
    return Writer(tmp_path_factory.mktemp("arrays"))


@pytest.fixture(scope="session")
def make_data():
    """``make_data(shape, dtype, seed=0)`` → deterministic reference data (see
    :func:`sample_data`)."""
    return sample_data


@pytest.fixture(scope="session")
def check_read():
    """``check_read(path, selections=None)``: ngffcore vs zarr-python, bit-exact."""
    return assert_read_matches


@pytest.fixture(scope="session")
def identical():
    """``identical(actual, expected, what='')``: bit-exact ndarray comparison."""
    return assert_identical


@pytest.fixture(scope="session")
def with_fill():
    """``with_fill(data, region, fill)`` → the array a reader must return."""
    return expected_with_fill


@pytest.fixture(scope="session")
def metadata_tools():
    """Namespace with ``read_json``, ``write_json`` and ``patch_metadata``."""

    class _Tools:
        read = staticmethod(read_json)
        write = staticmethod(write_json)
        patch = staticmethod(patch_metadata)

    return _Tools


# --------------------------------------------------------------------------------------
# moto's S3 server: one per session, for every test directory
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def start_moto() -> Any:
    """A function starting a moto S3 server on 127.0.0.1 and returning its endpoint URL; every
    server started is stopped at the end of the session."""
    pytest.importorskip("moto")
    started: list[subprocess.Popen[bytes]] = []

    def start() -> str:
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        started.append(proc)
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                return endpoint
            except OSError:
                time.sleep(0.05)
        pytest.fail("moto server did not start")

    try:
        yield start
    finally:
        for proc in started:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_s3(start_moto: Callable[[], str]) -> Any:
    """``(endpoint, boto3 client, obstore options)`` of one moto S3 server shared by the
    session (each test module makes its own bucket)."""
    boto3 = pytest.importorskip("boto3")
    endpoint = start_moto()
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    options = dict(endpoint=endpoint, region="us-east-1", access_key_id="test",
                   secret_access_key="test", client_options={"allow_http": True})
    return endpoint, client, options
