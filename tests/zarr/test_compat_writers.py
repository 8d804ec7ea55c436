"""Arrays written by older and other writers (numcodecs 0.1-0.16, zarr-python 2.x/3.x).

Golden data: numcodecs' own backwards-compatibility fixtures (``tests/data/numcodecs-fixture``,
provenance in its PROVENANCE.md). Each encoded fixture chunk is wrapped in a one-chunk Zarr v2
array with the fixture's codec config and read with ngffcore; the result must equal the
fixture's array and numcodecs' own decode of the same bytes.
"""

from __future__ import annotations

import json
import lzma
import warnings
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import zarr

import ngffcore
from ngffcore.errors import UnsupportedChunkError

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "numcodecs-fixture"


def _cases(codec: str) -> list[tuple[Path, Path]]:
    """(array.NN.npy, codec.KK/encoded.NN.dat) pairs of a fixture directory."""
    out = []
    for arr in sorted((FIXTURE / codec).glob("**/array.*.npy")):
        n = arr.name.split(".")[1]
        for enc in sorted(arr.parent.glob(f"codec.*/encoded.{n}.dat")):
            out.append((arr, enc))
    return out


def _ids(cases: list[tuple[Path, Path]]) -> list[str]:
    return [str(enc.relative_to(FIXTURE)) for _, enc in cases]


def _load(arr_path: Path, enc_path: Path) -> tuple[np.ndarray, dict[str, Any], bytes]:
    with warnings.catch_warnings():
        # old .npy headers carry align=0, which numpy >= 2.4 warns about (as numcodecs does)
        warnings.filterwarnings("ignore", message="dtype.*align", category=UserWarning)
        arr = np.load(arr_path)
    config = json.loads((enc_path.parent / "config.json").read_text())
    return arr, config, enc_path.read_bytes()


def _numcodecs_decode(arr: np.ndarray, config: dict[str, Any], enc: bytes) -> np.ndarray:
    """numcodecs' own decode of the fixture bytes, shaped like the fixture array."""
    dec = np.frombuffer(bytes(numcodecs.get_codec(dict(config)).decode(enc)), np.uint8)
    order = "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"
    return dec.view(arr.dtype).reshape(arr.shape, order=order)


def _v2_array(tmp_path: Path, arr: np.ndarray, enc: bytes, *, compressor: Any = None,
              filters: Any = None) -> Path:
    """A one-chunk Zarr v2 array holding ``enc`` (chunk = the whole array, its memory order)."""
    order = "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"
    meta = {"zarr_format": 2, "shape": list(arr.shape), "chunks": list(arr.shape),
            "dtype": arr.dtype.str, "compressor": compressor, "filters": filters,
            "fill_value": None, "order": order}
    (tmp_path / ".zarray").write_text(json.dumps(meta))
    (tmp_path / ".".join("0" * arr.ndim)).write_bytes(enc)
    return tmp_path


def _check_read(tmp_path: Path, arr: np.ndarray, config: dict[str, Any], enc: bytes,
                **where: Any) -> None:
    expected = _numcodecs_decode(arr, config, enc)
    np.testing.assert_array_equal(expected, arr, strict=True)  # the fixture is self-consistent
    got = ngffcore.open_array(str(_v2_array(tmp_path, arr, enc, **where)))[...]
    np.testing.assert_array_equal(got, arr, strict=True)
    np.testing.assert_array_equal(got, expected, strict=True)
    # and zarr-python reads the same array the same way
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path), mode="r")[...], got,
                                  strict=True)


# --------------------------------------------------------------------------------------
# compressors
# --------------------------------------------------------------------------------------

COMPRESSOR_CASES = [c for name in ("bz2", "lzma", "zlib", "gzip", "zstd", "lz4")
                    for c in _cases(name)]


def test_fixture_subset_is_present():
    assert len(COMPRESSOR_CASES) >= 30
    assert len(_cases("blosc")) == 26
    assert len(_cases("delta")) == 5


@pytest.mark.parametrize(("arr_path", "enc_path"), COMPRESSOR_CASES, ids=_ids(COMPRESSOR_CASES))
def test_compressor_fixture(tmp_path, arr_path, enc_path):
    arr, config, enc = _load(arr_path, enc_path)
    _check_read(tmp_path, arr, config, enc, compressor=config)


def test_lzma_raw_fixture_is_covered():
    # the case the issue reported: format 3 (raw LZMA2) with a filters list
    configs = [json.loads(p.read_text()) for p in (FIXTURE / "lzma").glob("codec.*/config.json")]
    assert {"id": 33, "preset": 1} in [f for c in configs for f in (c["filters"] or [])]
    assert any(c["format"] == lzma.FORMAT_RAW for c in configs)


LZMA_WRITTEN = [
    {"format": lzma.FORMAT_XZ, "check": lzma.CHECK_SHA256, "preset": 6},
    {"format": lzma.FORMAT_ALONE, "preset": 2},
    {"format": lzma.FORMAT_RAW, "filters": [{"id": lzma.FILTER_LZMA2, "preset": 1}]},
    {"format": lzma.FORMAT_RAW, "filters": [{"id": lzma.FILTER_DELTA, "dist": 4},
                                            {"id": lzma.FILTER_LZMA1, "preset": 3}]},
    {"format": lzma.FORMAT_XZ, "filters": [{"id": lzma.FILTER_DELTA, "dist": 4},
                                           {"id": lzma.FILTER_LZMA2, "preset": 1}]},
]


@pytest.mark.parametrize("params", LZMA_WRITTEN, ids=lambda p: f"format{p['format']}")
def test_lzma_formats_and_filters_v2(tmp_path, params):
    """numcodecs' LZMA with every container format, written by numcodecs itself."""
    data = (np.arange(3000, dtype="<i4") % 97).reshape(60, 50)
    codec = numcodecs.LZMA(**params)
    enc = bytes(codec.encode(data))
    config = codec.get_config()
    got = ngffcore.open_array(str(_v2_array(tmp_path, data, enc, compressor=config)))[...]
    np.testing.assert_array_equal(got, data, strict=True)


@pytest.mark.parametrize("params", LZMA_WRITTEN[1:4], ids=lambda p: f"format{p['format']}")
def test_lzma_formats_and_filters_v3(tmp_path, params):
    """zarr-python 3 writing the ``numcodecs.lzma`` codec: the config's format and filters."""
    from zarr.codecs.numcodecs import LZMA

    data = (np.arange(3000, dtype="<u2") % 251).reshape(60, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numcodecs.zarr3: "not part of the Zarr v3 spec"
        z = zarr.create_array(str(tmp_path), shape=data.shape, chunks=(25, 20), dtype=data.dtype,
                              compressors=[LZMA(**params)], fill_value=0)
        z[...] = data
        expected = z[...]
    got = ngffcore.open_array(str(tmp_path))[...]
    np.testing.assert_array_equal(got, expected, strict=True)
    np.testing.assert_array_equal(got, data, strict=True)


@pytest.mark.parametrize("fmt", [7, "xz", True])
def test_lzma_unknown_format_is_a_metadata_error(tmp_path, fmt):
    data = np.zeros(4, np.uint8)
    _v2_array(tmp_path, data, b"", compressor={"id": "lzma", "format": fmt})
    with pytest.raises(ngffcore.MetadataError, match="lzma format"):
        ngffcore.open_array(str(tmp_path))


def test_lzma_raw_without_filters_is_a_metadata_error(tmp_path):
    data = np.zeros(4, np.uint8)
    _v2_array(tmp_path, data, b"", compressor={"id": "lzma", "format": 3, "filters": None})
    with pytest.raises(ngffcore.MetadataError, match="filters"):
        ngffcore.open_array(str(tmp_path))


# --------------------------------------------------------------------------------------
# blosc: every cname numcodecs ever wrote; snappy is not in c-blosc2
# --------------------------------------------------------------------------------------

BLOSC_CASES = _cases("blosc")


@pytest.mark.parametrize(("arr_path", "enc_path"), BLOSC_CASES, ids=_ids(BLOSC_CASES))
def test_blosc_fixture(tmp_path, arr_path, enc_path):
    # snappy included: numcodecs' snappy fixtures are memcpyed frames (the header names
    # snappy, no block went through it), which c-blosc2 and ngffcore decode
    arr, config, enc = _load(arr_path, enc_path)
    _check_read(tmp_path, arr, config, enc, compressor=config)


def test_blosc_snappy_fixtures_are_memcpyed():
    snappy = [(enc_path, _load(arr_path, enc_path)) for arr_path, enc_path in BLOSC_CASES
              if "codec.09" in str(enc_path)]
    assert len(snappy) == 2
    for _, (_, config, enc) in snappy:
        assert config["cname"] == "snappy"
        assert enc[2] >> 5 == 2 and enc[2] & 0x2  # format code snappy, BLOSC_MEMCPYED


def _snappy_frame() -> tuple[np.ndarray, dict[str, Any], bytes]:
    """A compressed (not memcpyed) numcodecs lz4 fixture frame whose header names snappy
    (format code 2 in bits 5-7 of the flags byte), as c-blosc 1.x wrote snappy frames. Neither
    c-blosc2 nor numcodecs (whose c-blosc has no snappy either) can decode it."""
    for arr_path, enc_path in BLOSC_CASES:
        arr, config, enc = _load(arr_path, enc_path)
        if config["cname"] == "lz4" and not enc[2] & 0x2:
            frame = bytearray(enc)
            frame[2] = (frame[2] & 0x1F) | (2 << 5)
            return arr, config, bytes(frame)
    raise AssertionError("no compressed lz4 fixture")


@pytest.mark.parametrize("sel", [(Ellipsis,), (slice(3, 9),)], ids=["whole", "part"])
def test_blosc_snappy_frame_is_unsupported(tmp_path, sel):
    """The frame header names a codec this build lacks: an UnsupportedError naming the chunk
    and the codec (and a DecodeError: the chunk cannot be decoded), not "corrupt"."""
    arr, config, enc = _snappy_frame()
    with pytest.raises(RuntimeError):  # numcodecs cannot decode it either
        numcodecs.get_codec(dict(config)).decode(enc)
    _v2_array(tmp_path, arr, enc, compressor=dict(config, cname="snappy"))
    a = ngffcore.open_array(str(tmp_path))
    with pytest.raises(ngffcore.UnsupportedError, match="snappy") as info:
        a[sel]
    assert isinstance(info.value, ngffcore.DecodeError)
    assert isinstance(info.value, UnsupportedChunkError)
    assert info.value.key == ".".join("0" * arr.ndim)
    assert info.value.codec == "blosc"
    assert repr(info.value.key) in str(info.value)
    assert "corrupt" not in str(info.value)


def test_blosc_corrupt_frame_stays_a_decode_error(tmp_path):
    """Only a codec this build lacks is 'unsupported': other damage is still corruption."""
    arr, config, enc = next(
        _load(a, e) for a, e in BLOSC_CASES
        if json.loads((e.parent / "config.json").read_text())["cname"] == "lz4"
        and not e.read_bytes()[2] & 0x2)
    bad = bytearray(enc)
    bad[20:] = bytes(len(bad) - 20)  # keep the header, wreck the block table and data
    _v2_array(tmp_path, arr, bytes(bad), compressor=config)
    with pytest.raises(ngffcore.DecodeError) as info:
        ngffcore.open_array(str(tmp_path))[...]
    assert not isinstance(info.value, ngffcore.UnsupportedError)


# --------------------------------------------------------------------------------------
# delta filter
# --------------------------------------------------------------------------------------

DELTA_CASES = _cases("delta")


@pytest.mark.parametrize(("arr_path", "enc_path"), DELTA_CASES, ids=_ids(DELTA_CASES))
def test_delta_fixture(tmp_path, arr_path, enc_path):
    arr, config, enc = _load(arr_path, enc_path)
    if arr.dtype != bool:
        _check_read(tmp_path, arr, config, enc, filters=[config])
        return
    # README: the delta filter supports (u)int8-64 and float32/64 only
    _v2_array(tmp_path, arr, enc, filters=[config])
    with pytest.raises(ngffcore.UnsupportedError, match="delta filter on bool"):
        ngffcore.open_array(str(tmp_path))


def test_numcodecs_bool_delta_does_not_round_trip():
    """Why bool delta is refused rather than decoded as numcodecs does: numcodecs encodes
    bool differences with XOR (numpy's diff) and decodes with a running OR (cumsum into
    bool), so its decode is not the data written (the fixture array is all False, where
    both agree). If numcodecs fixes this, ngffcore can decode bool delta as it does."""
    codec = numcodecs.Delta(dtype=bool)
    data = np.array([True, False, True, True, False])
    assert not np.array_equal(codec.decode(codec.encode(data)), data)
