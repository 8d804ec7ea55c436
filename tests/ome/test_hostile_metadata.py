"""Hostile metadata that used to escape as builtin errors (issue 13, item 11): every case
raises an ``NgffError`` (``MetadataError`` at open, naming the document; ``ArgumentError``
for unusable region bounds), and the legitimate neighbour of each case still reads the
same as zarr-python."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ngffcore

from ome_writers import _write_array, _write_group_doc, quiet


def _v2_array(path: Path, **overrides: Any) -> Path:
    doc = {"zarr_format": 2, "shape": [4, 6], "chunks": [2, 3], "dtype": "<u2",
           "compressor": None, "fill_value": 0, "order": "C", "filters": None}
    doc.update(overrides)
    path.mkdir(parents=True)
    (path / ".zarray").write_text(json.dumps(doc))
    return path


def _v3_array(path: Path, shape: list[int], chunk_shape: list[int],
              codecs: list[dict[str, Any]] | None = None, attributes: str | None = None,
              data_type: str = "uint8") -> Path:
    doc = {"zarr_format": 3, "node_type": "array", "shape": shape, "data_type": data_type,
           "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk_shape}},
           "chunk_key_encoding": {"name": "default"}, "fill_value": 0,
           "codecs": codecs or [{"name": "bytes"}]}
    text = json.dumps(doc)
    if attributes is not None:  # spliced in as text: json.dumps itself recurses
        text = text[:-1] + ', "attributes": ' + attributes + "}"
    path.mkdir(parents=True)
    (path / "zarr.json").write_text(text)
    return path


def _nested(depth: int) -> str:
    return '{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


# --------------------------------------------------------------------------------------
# JSON the parser cannot represent
# --------------------------------------------------------------------------------------


def test_integer_beyond_python_digit_limit_is_metadata_error(tmp_path: Path) -> None:
    text = '{"zarr_format": 2, "x": ' + "9" * 5000 + "}"
    with pytest.raises(ValueError):  # the reference: Python's own conversion limit
        json.loads(text)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / ".zarray").write_text(text)
    with pytest.raises(ngffcore.MetadataError, match=r"a/\.zarray"):
        ngffcore.open_array(tmp_path / "a")
    _write_group_doc(tmp_path / "g", "0.4", '{"multiscales": ' + "7" * 5000 + "}")
    with pytest.raises(ngffcore.MetadataError, match=r"g/\.zattrs"):
        ngffcore.open(tmp_path / "g")


def test_deep_attributes_are_refused_at_open(tmp_path: Path) -> None:
    deep = _nested(600)
    json.loads(deep)  # valid JSON that Python parses...
    a = _v3_array(tmp_path / "deep", [4], [2], attributes=deep)
    with pytest.raises(ngffcore.MetadataError, match=r"deep/zarr\.json.*nests deeper than 128"):
        ngffcore.open_array(a)
    # ... an OME group too (read at open)
    _write_group_doc(tmp_path / "g", "0.4", '{"multiscales": [], "x": ' + deep + "}")
    with pytest.raises(ngffcore.MetadataError, match=r"g/\.zattrs.*nests"):
        ngffcore.open(tmp_path / "g")
    # v2 attributes are read on first use: refused there, as a MetadataError
    v2 = _v2_array(tmp_path / "v2")
    (v2 / ".zattrs").write_text(deep)
    with pytest.raises(ngffcore.MetadataError, match=r"v2/\.zattrs.*nests"):
        ngffcore.open_array(v2).attrs


@pytest.mark.parametrize("text", ['{"multiscales": ' + "7" * 5000 + "}",
                                  '{"multiscales": [], "x": ' + _nested(600) + "}"])
def test_validate_reports_unrepresentable_json_as_a_problem(tmp_path: Path, text) -> None:
    pytest.importorskip("jsonschema")
    _write_group_doc(tmp_path / "g", "0.4", text)
    problems = ngffcore.validate(tmp_path / "g")
    assert [(p.rule, p.path) for p in problems] == [("json", ".zattrs")], problems


def test_nesting_within_the_limit_opens_and_pickles(tmp_path: Path) -> None:
    """Brackets inside strings are text, not nesting; a document at the limit opens and its
    array pickles (under pytest's own deep stack) with the attributes intact."""
    attrs = _nested(ngffcore.limits.MAX_JSON_DEPTH - 1)
    attrs = attrs[:-1] + ', "s": "' + "[{" * 5000 + '\\"]"}'
    a = _v3_array(tmp_path / "ok", [4], [2], attributes=attrs)
    arr = ngffcore.open_array(a)
    assert arr.attrs == json.loads(attrs)
    again = pickle.loads(pickle.dumps(arr))
    assert again.attrs == json.loads(attrs)
    np.testing.assert_array_equal(again[...], np.zeros(4, np.uint8))
    over = _v3_array(tmp_path / "over", [4], [2],
                     attributes=_nested(ngffcore.limits.MAX_JSON_DEPTH + 1))
    with pytest.raises(ngffcore.MetadataError, match="nests"):
        ngffcore.open_array(over)


# --------------------------------------------------------------------------------------
# sizes that overflow 64 bits
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [[2**70, 0], [0, 2**64], [2**62, 0, 3]])
def test_huge_extent_beside_an_empty_axis_is_refused_at_open(tmp_path: Path, shape) -> None:
    v2 = _v2_array(tmp_path / "v2", shape=shape, chunks=[1] * len(shape))
    with pytest.raises(ngffcore.MetadataError, match=r"v2/\.zarray.*overflows"):
        ngffcore.open_array(v2)
    v3 = _v3_array(tmp_path / "v3", shape, [1] * len(shape))
    with pytest.raises(ngffcore.MetadataError, match=r"v3/zarr\.json.*overflows"):
        ngffcore.open_array(v3)


def test_empty_array_still_reads_like_zarr(tmp_path: Path) -> None:
    import zarr

    for fmt in (2, 3):
        path = tmp_path / f"e{fmt}"
        _write_array(path, np.zeros((5, 0, 3), np.uint16), fmt, chunks=(2, 1, 3))
        with quiet():
            ref = zarr.open_array(str(path), mode="r")[...]
        got = ngffcore.open_array(path)[...]
        assert got.shape == ref.shape == (5, 0, 3) and got.dtype == ref.dtype


def _sharded(path: Path, n: int, inner: int = 1) -> Path:
    return _v3_array(path, [n], [n], [{"name": "sharding_indexed", "configuration": {
        "chunk_shape": [inner], "codecs": [{"name": "bytes"}]}}])


def test_shard_with_2_62_inner_chunks_is_refused_at_open(tmp_path: Path) -> None:
    a = _sharded(tmp_path / "s", 2**62)
    (a / "c").mkdir()
    (a / "c" / "0").write_bytes(bytes(100))
    with pytest.raises(ngffcore.MetadataError, match=r"s/zarr\.json.*inner chunks"):
        ngffcore.open_array(a)
    two_d = _v3_array(tmp_path / "s2", [2**31, 2**31], [2**31, 2**31], [
        {"name": "sharding_indexed", "configuration": {"chunk_shape": [1, 1],
                                                       "codecs": [{"name": "bytes"}]}}])
    with pytest.raises(ngffcore.MetadataError, match="inner chunks"):
        ngffcore.open_array(two_d)


def test_shard_index_larger_than_the_shard_is_a_shard_index_error(tmp_path: Path) -> None:
    """2**40 inner chunks: a 16 TiB index. The shard object is 100 bytes: reading its index
    reports it too short instead of allocating the declared length."""
    a = _sharded(tmp_path / "s", 2**40)
    (a / "c").mkdir()
    (a / "c" / "0").write_bytes(bytes(100))
    arr = ngffcore.open_array(a)
    with pytest.raises(ngffcore.ShardIndexError, match="too short"):
        arr[0:1]


def test_sharded_array_reads_like_zarr(tmp_path: Path) -> None:
    import zarr

    data = np.arange(64, dtype=np.uint8)
    _write_array(tmp_path / "z", data, 3, chunks=(4,), shards=(16,))
    with quiet():
        ref = zarr.open_array(str(tmp_path / "z"), mode="r")[...]
    np.testing.assert_array_equal(ngffcore.open_array(tmp_path / "z")[...], ref)


# --------------------------------------------------------------------------------------
# scales that compose to 0 or infinity
# --------------------------------------------------------------------------------------


def _image(path: Path, top: list[float], level: list[float], shape=(6, 8)) -> Path:
    _write_array(path / "0", np.arange(math.prod(shape), dtype=np.uint16).reshape(shape), 2,
                 chunks=(4, 4))
    ms = {"version": "0.4", "axes": [{"name": "y", "type": "space"},
                                     {"name": "x", "type": "space"}],
          "datasets": [{"path": "0", "coordinateTransformations": [
              {"type": "scale", "scale": level}]}],
          "coordinateTransformations": [{"type": "scale", "scale": top}]}
    _write_group_doc(path, "0.4", {"multiscales": [ms]})
    return path


@pytest.mark.parametrize("top, level", [
    ([1e-300, 1.0], [1e-300, 1.0]),  # underflows to 0
    ([1e300, 1.0], [1e300, 1.0]),  # overflows to inf
    ([1.0, 1.0], [1.0, 0.0]),  # zero as given
])
def test_scale_composing_to_zero_or_inf_is_refused_at_open(tmp_path: Path, top, level) -> None:
    assert top[0] * level[0] in (0.0, math.inf) or 0.0 in level  # the premise
    path = _image(tmp_path / "img", top, level)
    with pytest.raises(ngffcore.MetadataError, match=r"img.*composed scale of axis"):
        ngffcore.open(path)


def test_tiny_but_valid_scale_reads_the_whole_axis(tmp_path: Path) -> None:
    """A scale of 1e-300 is finite and non-zero: a region of [0, 1e10) divides to inf pixels,
    which is clipped to the axis like any region past the edge, not an OverflowError."""
    import zarr

    path = _image(tmp_path / "img", [1.0, 1.0], [1e-300, 1.0])
    with quiet():
        ref = zarr.open_array(str(path / "0"), mode="r")[...]
    img = ngffcore.open(path)
    region = img.read_region({"y": (0.0, 1e10), "x": (2.0, 5.0)})
    np.testing.assert_array_equal(region.data, ref[:, 2:5])
    np.testing.assert_array_equal(img.read_region({"y": -1e10}).data, ref[0:0])


# --------------------------------------------------------------------------------------
# region bounds that are not numbers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"region": {"y": math.nan}},
    {"region": {"y": math.inf}},
    {"region": {"y": (math.nan, 3.0)}},
    {"region": {"x": (0.0, math.inf)}},
    {"region": {"x": ("a", "b")}},
    {"center": {"y": math.nan}, "size": {"y": 2.0}},
    {"center": {"y": 1.0}, "size": {"y": math.nan}},
])
def test_unusable_region_bound_is_argument_error(tmp_path: Path, kwargs) -> None:
    img = ngffcore.open(_image(tmp_path / "img", [1.0, 1.0], [1.0, 1.0]))
    with pytest.raises(ngffcore.ArgumentError, match="finite number") as info:
        img.read_region(**kwargs)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ngffcore.NgffError)
    with pytest.raises(ngffcore.ArgumentError):
        img.region_box(**kwargs)
