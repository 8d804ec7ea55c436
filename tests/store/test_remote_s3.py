"""Reads from an S3-compatible server: moto's standalone server in a subprocess on 127.0.0.1,
used as a real HTTP S3 endpoint (not an in-process mock)."""

from __future__ import annotations

import os

import numcodecs
import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, ShardingCodec, ZstdCodec

import ngffcore

pytest.importorskip("moto")
boto3 = pytest.importorskip("boto3")

BUCKET = "ngff-test"


@pytest.fixture(scope="module")
def s3(moto_s3, tmp_path_factory):
    _, client, options = moto_s3
    client.create_bucket(Bucket=BUCKET)
    root = tmp_path_factory.mktemp("s3src")
    rng = np.random.default_rng(3)
    v2 = zarr.create_array(root / "v2", shape=(30, 40), chunks=(8, 8), dtype="<i4",
                           zarr_format=2, compressors=numcodecs.Zstd(), fill_value=-5)
    v2[:20] = rng.integers(-1000, 1000, (20, 40))
    v3 = zarr.create_array(root / "v3", shape=(32, 32), chunks=(16, 16), dtype="float64",
                           serializer=ShardingCodec(chunk_shape=(4, 4),
                                                    codecs=[BytesCodec(), ZstdCodec()]),
                           compressors=None, fill_value=np.nan)
    v3[:, :20] = rng.normal(size=(32, 20))
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            client.upload_file(path, BUCKET, os.path.relpath(path, root))
    return root, options


@pytest.mark.parametrize("name,sel", [
    ("v2", Ellipsis), ("v2", (slice(5, 25), slice(3, 30))),
    ("v3", Ellipsis), ("v3", (slice(2, 30), 7)),
])
def test_s3_reads_match_zarr(s3, name, sel):
    root, options = s3
    a = ngffcore.open_array(f"s3://{BUCKET}/{name}", **options)
    expected = zarr.open_array(root / name, mode="r")[sel]
    got = a[sel]
    assert got.dtype == expected.dtype
    assert got.tobytes() == np.ascontiguousarray(expected).tobytes()


def test_s3_request_economy(s3):
    _, options = s3
    a = ngffcore.open_array(f"s3://{BUCKET}/v2", zarr_format=2, **options)
    a.stats.reset()
    a[0:16, 0:16]  # 4 chunks
    counts = a.stats.snapshot()
    assert (counts["get"], counts["range_get"], counts["suffix_get"]) == (4, 0, 0)
    b = ngffcore.open_array(f"s3://{BUCKET}/v3", **options)
    b.stats.reset()
    b[0:8, 0:8]  # 4 inner chunks of one shard
    counts = b.stats.snapshot()
    assert counts["suffix_get"] == 1 and 1 <= counts["range_get"] + counts["get"] <= 4


def test_s3_missing_array(s3):
    _, options = s3
    with pytest.raises(ngffcore.NotFoundError):
        ngffcore.open_array(f"s3://{BUCKET}/nope", **options)
