"""Arrays read through an obstore store object (the remote code path, served locally).

The bytes reach the core as memory sources instead of file ranges, and shard indexes come
from one ranged GET each; results must equal zarr-python's reads of the same arrays.
"""

import numpy as np
import numcodecs
import pytest
import zarr
from zarr.codecs import BytesCodec, ShardingCodec, ZstdCodec

import ngffcore

obstore_store = pytest.importorskip("obstore.store")


def _reference(path: str) -> np.ndarray:
    return zarr.open_array(path, mode="r")[...]


@pytest.fixture
def v2_path(tmp_path):
    data = np.random.default_rng(7).integers(0, 5000, (37, 45)).astype("<u2")
    z = zarr.create_array(tmp_path / "v2", shape=data.shape, chunks=(8, 10), dtype=data.dtype,
                          zarr_format=2, compressors=numcodecs.Blosc("zstd", 3, 2),
                          fill_value=3)
    z[:30] = data[:30]  # the last rows stay missing: fill value
    return str(tmp_path / "v2")


@pytest.fixture
def v3_sharded_path(tmp_path):
    data = np.random.default_rng(8).normal(size=(40, 50)).astype("float32")
    z = zarr.create_array(tmp_path / "v3", shape=data.shape, chunks=(20, 25),
                          serializer=ShardingCodec(chunk_shape=(5, 5),
                                                   codecs=[BytesCodec(), ZstdCodec()]),
                          compressors=None, dtype=data.dtype, fill_value=np.nan)
    z[:, :26] = data[:, :26]
    return str(tmp_path / "v3")


@pytest.mark.parametrize("selection", [Ellipsis, (slice(3, 33), slice(7, 41)), (5, slice(None))])
def test_v2_through_obstore(v2_path, selection):
    a = ngffcore.open_array(obstore_store.LocalStore(v2_path))
    expected = _reference(v2_path)[selection]
    got = a[selection]
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("selection", [Ellipsis, (slice(3, 33), slice(7, 41)), (slice(None), 30)])
def test_sharded_through_obstore(v3_sharded_path, selection):
    a = ngffcore.open_array(obstore_store.LocalStore(v3_sharded_path))
    expected = _reference(v3_sharded_path)[selection]
    got = a[selection]
    assert got.tobytes() == np.ascontiguousarray(expected).tobytes()


def test_obstore_missing_array(tmp_path):
    with pytest.raises(ngffcore.NotFoundError):
        ngffcore.open_array(obstore_store.LocalStore(str(tmp_path)))


def test_obstore_corrupt_chunk_names_key(v2_path):
    with open(f"{v2_path}/1.1", "wb") as f:
        f.write(b"not blosc at all")
    a = ngffcore.open_array(obstore_store.LocalStore(v2_path))
    with pytest.raises(ngffcore.DecodeError, match=r"'1\.1'"):
        a[...]
