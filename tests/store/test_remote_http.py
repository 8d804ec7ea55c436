"""Remote reads over HTTP against a real server on 127.0.0.1: request economy and faults.

Every assertion on requests is checked against the server's own log, not only ngffcore's
stats; every result against zarr-python reading the same files from disk.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import numcodecs
import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, ShardingCodec, ZstdCodec

import ngffcore
from servers import RangeServer

HTTP = {"client_options": {"allow_http": True}}
NO_RETRY = {"retry_config": {"max_retries": 0, "retry_timeout": timedelta(seconds=5)}}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    rng = np.random.default_rng(11)
    data2 = rng.integers(0, 60000, (48, 64)).astype("<u2")
    z2 = zarr.create_array(root / "v2", shape=data2.shape, chunks=(8, 16), dtype=data2.dtype,
                           zarr_format=2, compressors=numcodecs.Blosc("lz4", 5, 1),
                           fill_value=7)
    z2[:40] = data2[:40]  # rows 40.. stay missing: fill value
    data3 = rng.normal(size=(64, 64)).astype("float32")
    z3 = zarr.create_array(root / "v3", shape=data3.shape, chunks=(32, 32), dtype="float32",
                           serializer=ShardingCodec(chunk_shape=(8, 8),
                                                    codecs=[BytesCodec(), ZstdCodec()]),
                           compressors=None, fill_value=0)
    z3[:, :48] = data3[:, :48]
    with RangeServer(str(root)) as server:
        yield server, root


@pytest.fixture
def server(served):
    srv, root = served
    srv.state.reset()
    return srv, root


def _reference(root, name, sel):
    return zarr.open_array(root / name, mode="r")[sel]


def _gets(srv, *, ranged=None):
    reqs = srv.state.requests("GET")
    if ranged is None:
        return reqs
    return [r for r in reqs if (r.range is not None) == ranged]


def test_open_v3_is_one_get(server):
    srv, _ = server
    ngffcore.open_array(f"{srv.url}/v3", **HTTP)
    assert [r.path for r in srv.state.requests()] == ["/v3/zarr.json"]


def test_open_v2_with_known_format_is_one_get(server):
    srv, _ = server
    ngffcore.open_array(f"{srv.url}/v2", zarr_format=2, **HTTP)
    assert [r.path for r in srv.state.requests()] == ["/v2/.zarray"]


def test_open_v2_probing_costs_one_404(server):
    srv, _ = server
    ngffcore.open_array(f"{srv.url}/v2", **HTTP)
    assert [r.path for r in srv.state.requests()] == ["/v2/zarr.json", "/v2/.zarray"]


@pytest.mark.parametrize("sel", [(slice(4, 36), slice(10, 50)), (slice(None), 3), (Ellipsis,)])
def test_one_get_per_chunk_no_head(server, sel):
    srv, root = server
    a = ngffcore.open_array(f"{srv.url}/v2", zarr_format=2, **HTTP)
    srv.state.clear()
    got = a[sel]
    np.testing.assert_array_equal(got, _reference(root, "v2", sel))
    plan = a._plan(sel)
    paths = sorted(r.path for r in srv.state.requests())
    assert paths == sorted(f"/v2/{k}" for k in plan.keys)  # each chunk once, nothing else
    assert srv.state.counts()["HEAD"] == 0
    assert all(r.range is None for r in srv.state.requests())


def test_missing_chunks_are_one_404_each_and_fill(server):
    srv, root = server
    a = ngffcore.open_array(f"{srv.url}/v2", zarr_format=2, **HTTP)
    a.stats.reset()
    srv.state.clear()
    got = a[40:48, :]
    np.testing.assert_array_equal(got, np.full((8, 64), 7, "<u2"))
    assert len(srv.state.requests()) == 4  # 4 chunks, each asked once, no retry of a 404
    assert a.stats.snapshot()["not_found"] == 4


def test_sharded_roi_is_index_then_ranges(server):
    srv, root = server
    a = ngffcore.open_array(f"{srv.url}/v3", **HTTP)
    srv.state.clear()
    sel = (slice(3, 13), slice(3, 13))  # 4 inner chunks (8x8) of shard c/0/0
    np.testing.assert_array_equal(a[sel], _reference(root, "v3", sel))
    reqs = srv.state.requests()
    assert all(r.path == "/v3/c/0/0" for r in reqs)
    suffix = [r for r in reqs if r.range and r.range.startswith("bytes=-")]
    assert len(suffix) == 1  # the index, once
    ranged = [r for r in reqs if r.range and not r.range.startswith("bytes=-")]
    assert 1 <= len(ranged) <= 4
    assert srv.state.counts()["HEAD"] == 0
    # the index is cached: a second read of the same shard sends only data requests
    srv.state.clear()
    np.testing.assert_array_equal(a[sel], _reference(root, "v3", sel))
    assert not [r for r in srv.state.requests() if r.range and r.range.startswith("bytes=-")]


def test_sharded_whole_read_and_empty_region(server):
    srv, root = server
    a = ngffcore.open_array(f"{srv.url}/v3", **HTTP)
    got = a[...]
    assert got.tobytes() == _reference(root, "v3", Ellipsis).tobytes()
    # columns 48.. were never written: inner chunks empty (or whole shards absent)
    np.testing.assert_array_equal(a[:, 48:], 0)


def test_stats_match_the_server(server):
    srv, _ = server
    a = ngffcore.open_array(f"{srv.url}/v3", **HTTP)
    a.stats.reset()
    srv.state.clear()
    a[0:40, 0:40]
    assert a.stats.requests == len(srv.state.requests())


def test_500_then_success_is_retried(server):
    srv, root = server
    a = ngffcore.open_array(f"{srv.url}/v2", zarr_format=2, **HTTP)
    srv.state.faults["/v2/1.1"] = ["500"]
    srv.state.clear()
    np.testing.assert_array_equal(a[8:16, 16:32], _reference(root, "v2", (slice(8, 16),
                                                                           slice(16, 32))))
    assert [r.path for r in srv.state.requests()] == ["/v2/1.1", "/v2/1.1"]


def test_500_without_retries_raises_store_error_naming_the_key(server):
    srv, _ = server
    a = ngffcore.open_array(f"{srv.url}/v2", zarr_format=2, **HTTP, **NO_RETRY)
    srv.state.faults["/v2/1.1"] = ["500"]
    out = np.zeros((8, 16), "<u2")
    with pytest.raises(ngffcore.StoreError, match=r"1\.1"):
        a.read((slice(8, 16), slice(16, 32)), out=out)


def test_connection_reset_is_retried(server):
    srv, root = server
    a = ngffcore.open_array(f"{srv.url}/v2", zarr_format=2, **HTTP)
    srv.state.faults["/v2/2.2"] = ["reset"]
    np.testing.assert_array_equal(a[16:24, 32:48], _reference(root, "v2", (slice(16, 24),
                                                                            slice(32, 48))))


def test_truncated_body_is_an_error_or_retried_never_silent(server):
    srv, root = server
    a = ngffcore.open_array(f"{srv.url}/v2", zarr_format=2, **HTTP, **NO_RETRY)
    srv.state.faults["/v2/0.0"] = ["truncate"]
    with pytest.raises(ngffcore.NgffError):
        a[0:8, 0:16]
    # the same read succeeds once the server behaves
    np.testing.assert_array_equal(a[0:8, 0:16], _reference(root, "v2", (slice(0, 8),
                                                                          slice(0, 16))))


def test_slow_response_times_out(server):
    srv, _ = server
    a = ngffcore.open_array(f"{srv.url}/v2", zarr_format=2,
                            client_options={"allow_http": True, "timeout": "300ms"}, **NO_RETRY)
    srv.state.faults["/v2/3.3"] = ["slow:2"]
    with pytest.raises(ngffcore.StoreError, match=r"3\.3"):
        a[24:32, 48:64]


def test_403_is_an_auth_error_or_missing_when_asked(server):
    srv, _ = server
    a = ngffcore.open_array(f"{srv.url}/v2", zarr_format=2, **HTTP, **NO_RETRY)
    srv.state.faults["/v2/4.0"] = ["403"]
    with pytest.raises(ngffcore.AuthError) as info:
        a[32:40, 0:16]
    assert isinstance(info.value, PermissionError) and "4.0" in str(info.value)
    b = ngffcore.open_array(f"{srv.url}/v2", zarr_format=2, missing_on_403=True, **HTTP,
                            **NO_RETRY)
    srv.state.faults["/v2/4.0"] = ["403"]
    np.testing.assert_array_equal(b[32:40, 0:16], 7)


def test_read_async_matches_and_sync_read_works_inside_a_loop(server):
    srv, root = server
    a = ngffcore.open_array(f"{srv.url}/v3", **HTTP)
    sel = (slice(5, 60), slice(1, 47))

    async def main():
        got_async = await a.read_async(sel)
        got_sync = a.read(sel)  # called from inside a running loop: must not deadlock
        return got_async, got_sync

    got_async, got_sync = asyncio.run(main())
    expected = _reference(root, "v3", sel)
    np.testing.assert_array_equal(got_async, expected)
    np.testing.assert_array_equal(got_sync, expected)


def test_cancelling_read_async_leaves_nothing_running(server):
    srv, _ = server
    a = ngffcore.open_array(f"{srv.url}/v2", zarr_format=2, **HTTP)
    srv.state.latency = 0.5

    async def main():
        task = asyncio.ensure_future(a.read_async(Ellipsis))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return others

    assert asyncio.run(main()) == []


def test_nested_shards_over_http(tmp_path):
    data = np.random.default_rng(5).integers(0, 1000, (32, 40)).astype("int32")
    inner = ShardingCodec(chunk_shape=(4, 5), codecs=[BytesCodec(), ZstdCodec()])
    z = zarr.create_array(tmp_path / "nested", shape=data.shape, chunks=(16, 20),
                          serializer=ShardingCodec(chunk_shape=(8, 10), codecs=[inner]),
                          compressors=None, dtype=data.dtype, fill_value=-1)
    z[:20] = data[:20]
    with RangeServer(str(tmp_path)) as srv:
        a = ngffcore.open_array(f"{srv.url}/nested", **HTTP)
        for sel in [Ellipsis, (slice(3, 17), slice(4, 33)), (19, slice(None))]:
            np.testing.assert_array_equal(a[sel], z[sel])
        assert srv.state.counts()["HEAD"] == 0


def test_plan_is_a_dry_run_that_matches_the_read(server):
    srv, _ = server
    a = ngffcore.open_array(f"{srv.url}/v3", **HTTP)
    sel = (slice(3, 13), slice(3, 13))
    srv.state.clear()
    before = a.plan(sel)
    assert srv.state.requests() == []  # planning sends nothing
    assert [r.kind for r in before] == ["suffix_get", "range_get"]
    a[sel]
    after = a.plan(sel)  # index cached: exact ranges now
    data_requests = [r for r in srv.state.requests() if not r.range.startswith("bytes=-")]
    assert len(after) == len(data_requests)
    assert sorted((r.start, r.end - 1) for r in after) == sorted(
        tuple(int(x) for x in r.range[len("bytes="):].split("-")) for r in data_requests)
    b = ngffcore.open_array(f"{srv.url}/v2", zarr_format=2, **HTTP)
    assert [(r.kind, r.key) for r in b.plan((slice(0, 8), slice(0, 32)))] == [
        ("get", "0.0"), ("get", "0.1")]


def test_plain_http_url_needs_no_client_options(server):
    srv, root = server
    a = ngffcore.open_array(f"{srv.url}/v2", zarr_format=2)
    np.testing.assert_array_equal(a[0:8, 0:16], _reference(root, "v2", (slice(0, 8),
                                                                          slice(0, 16))))


@pytest.mark.parametrize("name", ["v2", "v3"])
def test_response_order_does_not_change_results(server, name):
    srv, root = server
    srv.state.jitter = 0.03  # responses come back in a random order
    a = ngffcore.open_array(f"{srv.url}/{name}", **HTTP)
    expected = _reference(root, name, Ellipsis)
    for _ in range(3):
        a._index_cache.clear()
        assert a[...].tobytes() == expected.tobytes()


def test_a_fully_needed_shard_is_one_get_with_its_index(server):
    srv, root = server
    a = ngffcore.open_array(f"{srv.url}/v3", **HTTP)
    srv.state.clear()
    sel = (slice(0, 32), slice(0, 32))  # exactly shard c/0/0
    np.testing.assert_array_equal(a[sel], _reference(root, "v3", sel))
    assert [(r.path, r.range) for r in srv.state.requests()] == [("/v3/c/0/0", None)]
    srv.state.clear()
    a[0:8, 0:8]  # its index came with it: now cached
    assert not [r for r in srv.state.requests() if r.range and r.range.startswith("bytes=-")]
