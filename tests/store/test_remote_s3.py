"""Reads from an S3-compatible server: moto's standalone server in a subprocess on 127.0.0.1,
used as a real HTTP S3 endpoint (not an in-process mock)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import numcodecs
import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, ShardingCodec, ZstdCodec

import ngffcore

pytest.importorskip("moto")
boto3 = pytest.importorskip("boto3")

BUCKET = "ngff-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("moto server did not start")
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
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
        options = dict(endpoint=endpoint, region="us-east-1", access_key_id="test",
                       secret_access_key="test", client_options={"allow_http": True})
        yield root, options
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
