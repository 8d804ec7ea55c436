"""Hostile metadata and oversized reads: clear errors before any allocation or request."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

import ngffcore
from ngffcore.limits import MAX_LEVELS, MAX_METADATA_BYTES


@pytest.fixture
def image(tmp_path):
    """A one-level 0.4 image; returns (path, attrs) so tests can rewrite its metadata."""
    path = tmp_path / "img.zarr"
    zarr.create_array(str(path / "0"), data=np.arange(64, dtype=np.uint8).reshape(8, 8),
                      chunks=(4, 4), zarr_format=2)
    attrs = {"multiscales": [{"version": "0.4", "axes": [{"name": "y", "type": "space"},
                                                         {"name": "x", "type": "space"}],
                              "datasets": [{"path": "0", "coordinateTransformations": [
                                  {"type": "scale", "scale": [1.0, 1.0]}]}]}]}
    (path / ".zgroup").write_text('{"zarr_format": 2}')
    (path / ".zattrs").write_text(json.dumps(attrs))
    return path, attrs


def test_read_larger_than_the_limit_raises_before_allocating(image):
    path, _ = image
    a = ngffcore.open_array(path / "0")
    old = ngffcore.get_max_read_bytes()
    try:
        ngffcore.set_max_read_bytes(63)
        with pytest.raises(ngffcore.ReadLimitError, match="64 bytes.*limit is 63") as exc:
            a[...]
        assert isinstance(exc.value, MemoryError)
        assert a[:7, :9].shape == (7, 8)  # 56 bytes: fine
        ngffcore.set_max_read_bytes(64)
        np.testing.assert_array_equal(a[...], np.arange(64).reshape(8, 8))
    finally:
        ngffcore.set_max_read_bytes(old)
    with pytest.raises(ValueError):
        ngffcore.set_max_read_bytes(-1)


def test_hostile_shape_never_allocates(tmp_path):
    """A shape whose output would be 2**62 bytes: refused by the limit, not by the OS."""
    path = tmp_path / "huge"
    path.mkdir()
    (path / ".zarray").write_text(json.dumps({
        "zarr_format": 2, "shape": [2**31, 2**31], "chunks": [1024, 1024], "dtype": "<u1",
        "compressor": None, "fill_value": 0, "order": "C", "filters": None}))
    a = ngffcore.open_array(path)
    with pytest.raises(ngffcore.ReadLimitError):
        a[...]


def test_metadata_document_over_the_size_limit(image):
    path, attrs = image
    attrs["padding"] = "x" * (MAX_METADATA_BYTES + 1)
    (path / ".zattrs").write_text(json.dumps(attrs))
    with pytest.raises(ngffcore.MetadataError, match="limit"):
        ngffcore.open(path)


def test_deeply_nested_json(image):
    path, _ = image
    (path / ".zattrs").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ngffcore.MetadataError, match="not valid JSON|not a JSON object"):
        ngffcore.open(path)


def test_thousands_of_levels_refused_before_any_request(image):
    path, attrs = image
    ds = attrs["multiscales"][0]["datasets"][0]
    attrs["multiscales"][0]["datasets"] = [dict(ds, path=str(i)) for i in range(MAX_LEVELS + 1)]
    (path / ".zattrs").write_text(json.dumps(attrs))
    with pytest.raises(ngffcore.MetadataError, match="levels"):
        ngffcore.open(path)  # level "1" … do not exist: it must fail before looking


@pytest.mark.parametrize("version", ["0.9", "1.0", "banana"])
def test_unknown_versions(image, version):
    path, attrs = image
    attrs["multiscales"][0]["version"] = version
    (path / ".zattrs").write_text(json.dumps(attrs))
    with pytest.raises(ngffcore.UnsupportedError, match=repr(version)):
        ngffcore.open(path)


@pytest.mark.parametrize("version", ["0.4.0", "0.4-dev"])
def test_known_versions_with_suffixes_read(image, version):
    path, attrs = image
    attrs["multiscales"][0]["version"] = version
    (path / ".zattrs").write_text(json.dumps(attrs))
    assert ngffcore.open(path).levels[0].shape == (8, 8)


@pytest.mark.parametrize("bad", ["../0", "/etc", "a/../../b", "."])
def test_dataset_paths_escaping_the_image(image, bad):
    path, attrs = image
    attrs["multiscales"][0]["datasets"][0]["path"] = bad
    (path / ".zattrs").write_text(json.dumps(attrs))
    with pytest.raises(ngffcore.NgffError):
        ngffcore.open(path)
