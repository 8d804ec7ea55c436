"""``gs://`` and ``az://`` locations, read through obstore's own GCS and Azure clients.

There is no GCS or Azure emulator among the test dependencies, but both clients can be
pointed at another base URL: GCS through the service-account key's ``gcs_base_url`` (with
``disable_oauth``: no token request), Azure through ``endpoint`` (with ``skip_signature``).
They then send their real requests (GCS: ``GET /<bucket>/<percent-encoded key>``; Azure:
``GET /<container>/<key>``, and no suffix ranges) to ``tests/servers.py``'s ``RangeServer``,
which logs each one. So these tests check what a user of those schemes gets: exact pixels
(against zarr-python reading the same files), one GET per chunk, no HEAD or LIST, and the
shard-index requests each service accepts.
"""

from __future__ import annotations

import numcodecs
import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, ShardingCodec, ZstdCodec

import ngffcore
from servers import RangeServer


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("cloud")
    rng = np.random.default_rng(21)
    bucket = root / "bucket"
    v2 = rng.integers(0, 60000, (40, 50)).astype("<u2")
    z = zarr.create_array(bucket / "v2.zarr", shape=v2.shape, chunks=(16, 16), dtype=v2.dtype,
                          zarr_format=2, compressors=numcodecs.Blosc("zstd", 5, 2),
                          fill_value=3)
    z[:32] = v2[:32]  # rows 32.. stay missing: fill value
    sh = rng.normal(size=(64, 64)).astype("float32")
    z = zarr.create_array(bucket / "sh.zarr", shape=sh.shape, chunks=(32, 32), dtype="float32",
                          serializer=ShardingCodec(chunk_shape=(8, 8),
                                                   codecs=[BytesCodec(), ZstdCodec()]),
                          compressors=None, fill_value=0)
    z[...] = sh
    with RangeServer(str(root), validators=True) as srv:
        yield srv, root


@pytest.fixture
def server(served):
    srv, root = served
    srv.state.reset()
    return srv, root


def _reference(root, name, sel):
    return np.asarray(zarr.open_array(root / "bucket" / name, mode="r")[sel])


SCHEMES = ["gs", "az"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_v2_roi_is_one_get_per_chunk(server, scheme, cloud_options):
    srv, root = server
    a = ngffcore.open_array(f"{scheme}://bucket/v2.zarr", zarr_format=2,
                            **cloud_options(scheme, srv.url))
    assert [r.path for r in srv.state.requests()] == ["/bucket/v2.zarr/.zarray"]
    srv.state.clear()
    before = a.stats.snapshot()
    sel = (slice(5, 40), slice(10, 45))  # 3 x 3 chunks, the last row of them missing
    got = a[sel]
    assert np.array_equal(got, _reference(root, "v2.zarr", sel))
    paths = sorted(r.path for r in srv.state.requests())
    assert paths == sorted(f"/bucket/v2.zarr/{i}.{j}" for i in range(3) for j in range(3))
    assert all(r.method == "GET" and r.range is None for r in srv.state.requests())
    after = a.stats.snapshot()
    assert after["get"] - before["get"] == 9 and after["not_found"] - before["not_found"] == 3


def test_gs_sharded_roi_uses_a_suffix_range_for_the_index(server, cloud_options):
    srv, root = server
    a = ngffcore.open_array("gs://bucket/sh.zarr", **cloud_options("gs", srv.url))
    srv.state.clear()
    sel = (slice(4, 12), slice(4, 12))  # one shard, 2 x 2 of its 4 x 4 inner chunks
    planned = a.plan(sel)
    assert [p.kind for p in planned] == ["suffix_get", "range_get"]
    assert np.array_equal(a[sel], _reference(root, "sh.zarr", sel))
    reqs = srv.state.requests()
    assert [r.method for r in reqs] == ["GET", "GET"]
    assert reqs[0].range is not None and reqs[0].range.startswith("bytes=-")
    assert reqs[1].range is not None and not reqs[1].range.startswith("bytes=-")


def test_az_sharded_roi_learns_the_size_without_a_head(server, cloud_options):
    """Azure Blob Storage refuses suffix ranges: the index at the end costs a 1-byte ranged
    GET (for the size) and a ranged GET of the index; then the data ranges. Never a HEAD."""
    srv, root = server
    a = ngffcore.open_array("az://bucket/sh.zarr", **cloud_options("az", srv.url))
    srv.state.clear()
    before = a.stats.snapshot()
    sel = (slice(4, 12), slice(4, 12))  # one shard, 2 x 2 of its 4 x 4 inner chunks
    planned = a.plan(sel)
    assert [(p.kind, p.start, p.end) for p in planned[:2]] == [("range_get", 0, 1),
                                                              ("range_get", None, None)]
    assert np.array_equal(a[sel], _reference(root, "sh.zarr", sel))
    reqs = srv.state.requests()
    assert [r.method for r in reqs] == ["GET"] * 3
    assert [r.path for r in reqs] == ["/bucket/sh.zarr/c/0/0"] * 3
    assert reqs[0].range == "bytes=0-0"
    size = (root / "bucket" / "sh.zarr" / "c" / "0" / "0").stat().st_size
    index_nbytes = 4 * 4 * 16 + 4  # 4 x 4 inner chunks, (offset, nbytes) each, + crc32c
    assert reqs[1].range == f"bytes={size - index_nbytes}-{size - 1}"
    # the index is cached: a second read of that shard sends only data ranges
    srv.state.clear()
    assert np.array_equal(a[sel], _reference(root, "sh.zarr", sel))
    assert len(srv.state.requests()) == 1
    after = a.stats.snapshot()
    assert after["suffix_get"] == 0 and after["range_get"] - before["range_get"] == 4


@pytest.mark.parametrize("scheme", SCHEMES)
def test_whole_array_reads_match(server, scheme, cloud_options):
    srv, root = server
    for name in ("v2.zarr", "sh.zarr"):
        a = ngffcore.open_array(f"{scheme}://bucket/{name}", **cloud_options(scheme, srv.url))
        assert np.array_equal(a[...], _reference(root, name, Ellipsis))
    assert not srv.state.requests("HEAD")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_missing_array_is_not_found(server, scheme, cloud_options):
    srv, _ = server
    with pytest.raises(ngffcore.NotFoundError, match="nothing.zarr"):
        ngffcore.open_array(f"{scheme}://bucket/nothing.zarr", **cloud_options(scheme, srv.url))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_credentials_stay_out_of_messages(server, scheme, cloud_options):
    """A failed read names the object, never the service-account key or account key."""
    srv, _ = server
    options = cloud_options(scheme, srv.url)
    if scheme == "az":
        options = {**options, "skip_signature": False,
                   "access_key": "c2VjcmV0LWFjY291bnQta2V5LWRvLW5vdC1wcmludA=="}
    a = ngffcore.open_array(f"{scheme}://bucket/v2.zarr", zarr_format=2, **options)
    srv.state.faults["/bucket/v2.zarr/0.0"] = ["500"]
    with pytest.raises(ngffcore.StoreError) as info:
        ngffcore.open_array(f"{scheme}://bucket/v2.zarr", zarr_format=2,
                            retry_config={"max_retries": 0}, **options)[0:1, 0:1]
    text = str(info.value) + repr(a) + str(a)
    assert "0.0" in str(info.value)
    for secret in ("private_key", "c2VjcmV0LWFjY291bnQta2V5"):
        assert secret not in text
