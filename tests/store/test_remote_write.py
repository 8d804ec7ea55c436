"""Writes to remote object stores (issue 15): S3 on moto's server, behind a fault-injecting
proxy (``tests/fault_proxy.py``), and ``gs://`` / ``az://`` against that module's in-memory
object server (obstore's own GCS and Azure clients, pointed at it as in
``test_remote_cloud.py``).

Every write is checked three ways: the store's ``stats`` counters, the server's own log of
the requests it received (method + path), and the bytes read back (ngffcore and
zarr-python, through a connection that bypasses the proxy) against a numpy model. Faults:
a 500 and a connection reset (mid-upload, or after the object was stored but before the
answer) are retried by obstore and the write succeeds; persistent 500s / resets raise
WriteError naming the object, ``written`` lists exactly the objects the server accepted,
and the failed object is absent or its previous complete version, never partial.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any, Callable

import numpy as np
import pytest
import zarr

import ngffcore
from fault_proxy import FaultServer
from servers import RangeServer

pytest.importorskip("moto")
boto3 = pytest.importorskip("boto3")
obstore_store = pytest.importorskip("obstore.store")

BUCKET = "ngff-write-test"
_names = itertools.count()


def retry(max_retries: int) -> dict[str, Any]:
    """A retry config with short backoffs (10 ms doubling to at most 50 ms), so the tests
    of failures are fast."""
    return {"max_retries": max_retries, "retry_timeout": timedelta(seconds=10),
            "backoff": {"init_backoff": timedelta(milliseconds=10),
                        "max_backoff": timedelta(milliseconds=50), "base": 2}}


def fresh(stem: str) -> str:
    """An array name no other test uses (the bucket is shared by the module)."""
    return f"{stem}-{next(_names)}.zarr"


def chunk_keys(grid: tuple[int, ...], zarr_format: int = 3) -> list[str]:
    cells = itertools.product(*(range(n) for n in grid))
    if zarr_format == 2:
        return sorted(".".join(map(str, c)) for c in cells)
    return sorted("c/" + "/".join(map(str, c)) for c in cells)


def write(arr: ngffcore.Array, sel: Any, value: Any, mode: str, **kw: Any) -> None:
    if mode == "async":
        asyncio.run(arr.write_async(sel, value, **kw))
    elif kw:
        arr.write(sel, value, **kw)
    else:
        arr[sel] = value


class S3:
    """moto's S3 behind the fault proxy: ``options`` go through the proxy, ``direct`` to
    moto; ``client`` is boto3 (direct)."""

    def __init__(self, client: Any, options: dict[str, Any], proxy: FaultServer) -> None:
        self.client = client
        self.direct = options
        self.proxy = proxy
        self.options = {**options, "endpoint": proxy.url, "retry_config": retry(3)}

    def create(self, name: str, **kw: Any) -> ngffcore.Array:
        """A new array through the proxy; stats and the proxy log then start from zero."""
        arr = ngffcore.create_array(f"s3://{BUCKET}/{name}", **kw, **self.options)
        arr.stats.reset()
        self.proxy.reset()
        return arr

    def objects(self, name: str) -> dict[str, bytes]:
        """Every object under the array, read with boto3 from moto itself."""
        got = self.client.list_objects_v2(Bucket=BUCKET, Prefix=name + "/").get("Contents", [])
        return {o["Key"][len(name) + 1:]: self.client.get_object(
            Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in got}

    def readback(self, name: str) -> list[np.ndarray]:
        """The whole array read by ngffcore and by zarr-python, both straight from moto."""
        ours = ngffcore.open_array(f"s3://{BUCKET}/{name}", **self.direct)[...]
        d = self.direct
        store = obstore_store.S3Store(
            BUCKET, endpoint=d["endpoint"], region=d["region"],
            access_key_id=d["access_key_id"], secret_access_key=d["secret_access_key"],
            client_options={"allow_http": True})
        theirs = zarr.open_array(zarr.storage.ObjectStore(store, read_only=True), path=name,
                                 mode="r")[...]
        return [ours, np.asarray(theirs)]

    def puts(self, name: str) -> list[tuple[str, int]]:
        """(key under the array, status) of each PUT the proxy saw, in arrival order."""
        return [(e.path.split(f"/{BUCKET}/{name}/", 1)[1], e.status)
                for e in self.proxy.log("PUT")]


@pytest.fixture(scope="module")
def s3_server(moto_s3):
    endpoint, client, options = moto_s3
    client.create_bucket(Bucket=BUCKET)
    with FaultServer(endpoint) as proxy:
        yield S3(client, options, proxy)


@pytest.fixture
def s3(s3_server):
    s3_server.proxy.reset()
    yield s3_server
    s3_server.proxy.settle()  # nothing of this test still arriving in the next one's log
    s3_server.proxy.reset()


def relative(name: str, keys: list[str]) -> list[str]:
    """Store keys (as WriteError names them) relative to the array ``name``."""
    return [k.split(f"{name}/", 1)[-1] for k in keys]


def assert_reads(s3: S3, name: str, model: np.ndarray) -> None:
    for got in s3.readback(name):
        assert got.dtype == model.dtype
        assert np.array_equal(got, model)


def reads(counts: dict[str, Any]) -> int:
    return int(counts["get"] + counts["range_get"] + counts["suffix_get"])


# -- exact request counts ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sync", "async"])
def test_whole_write_is_one_put_per_chunk(s3, mode):
    name = fresh("whole")
    model = np.random.default_rng(1).integers(1, 60000, (20, 30)).astype("<u2")
    arr = s3.create(name, shape=model.shape, dtype=model.dtype, chunks=(8, 8), fill_value=0)
    write(arr, Ellipsis, model, mode)
    counts = arr.stats.snapshot()
    expected = chunk_keys((3, 4))
    assert (counts["put"], reads(counts), counts["delete"], counts["list"]) == (12, 0, 0, 0)
    assert sorted(s3.puts(name)) == [(k, 200) for k in expected]
    assert [e.method for e in s3.proxy.log()] == ["PUT"] * 12
    stored = s3.objects(name)
    assert sorted(stored) == sorted(expected + ["zarr.json"])
    assert counts["bytes_written"] == sum(len(v) for k, v in stored.items() if k != "zarr.json")
    assert_reads(s3, name, model)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_whole_write_is_one_put_per_shard(s3, mode):
    name = fresh("sharded")
    model = np.random.default_rng(2).normal(size=(32, 48)).astype("float32")
    arr = s3.create(name, shape=model.shape, dtype=model.dtype, chunks=(8, 8),
                    shards=(16, 24), fill_value=0)
    write(arr, Ellipsis, model, mode)
    counts = arr.stats.snapshot()
    assert (counts["put"], reads(counts), counts["delete"]) == (4, 0, 0)
    assert sorted(s3.puts(name)) == [(k, 200) for k in chunk_keys((2, 2))]
    assert len(s3.proxy.log()) == 4
    assert_reads(s3, name, model)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("layout", ["v2", "v3", "sharded"])
@pytest.mark.parametrize("before", ["written", "missing"])
def test_partial_write_is_one_get_and_one_put_per_object(s3, mode, layout, before):
    """Rows 5:19 x cols 3:12 touch 3 x 2 chunks of 8 x 8 (2 x 1 shards of 16 x 16), none of
    them whole: each touched object is read once (a 404 where none was written yet) and
    written once."""
    name = fresh(f"partial-{layout}")
    rng = np.random.default_rng(3)
    model = np.full((24, 32), 7, dtype="<i4")
    kw: dict[str, Any] = dict(shape=model.shape, dtype=model.dtype, chunks=(8, 8),
                              fill_value=7)
    if layout == "v2":
        kw["zarr_format"] = 2
    if layout == "sharded":
        kw["shards"] = (16, 16)
    arr = s3.create(name, **kw)
    if before == "written":
        model[...] = rng.integers(-1000, 1000, model.shape)
        arr[...] = model
        arr.stats.reset()
        s3.proxy.reset()
    sel = (slice(5, 19), slice(3, 12))
    patch = rng.integers(-1000, 1000, (14, 9)).astype("<i4")
    write(arr, sel, patch, mode)
    model[sel] = patch
    if layout == "sharded":
        touched = ["c/0/0", "c/1/0"]  # rows 5:19 cross the shard boundary at 16
    else:
        touched = chunk_keys((3, 2), 2 if layout == "v2" else 3)
    counts = arr.stats.snapshot()
    n = len(touched)
    assert (counts["get"], counts["range_get"], counts["suffix_get"]) == (n, 0, 0)
    assert counts["not_found"] == (n if before == "missing" else 0)
    assert (counts["put"], counts["delete"]) == (n, 0)
    log = s3.proxy.log()
    assert sorted((e.method, e.path.split(f"{name}/", 1)[1]) for e in log) == sorted(
        [("GET", k) for k in touched] + [("PUT", k) for k in touched])
    assert_reads(s3, name, model)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_chunks_left_all_fill_value_are_deleted(s3, mode):
    name = fresh("fill")
    model = np.random.default_rng(4).integers(1, 250, (16, 24)).astype("u1")
    arr = s3.create(name, shape=model.shape, dtype=model.dtype, chunks=(8, 8), fill_value=0)
    arr[...] = model
    arr.stats.reset()
    s3.proxy.reset()
    # chunks 0.0 and 0.1 covered whole by fill values: DELETE, no read
    write(arr, (slice(0, 8), slice(0, 16)), 0, mode)
    model[0:8, 0:16] = 0
    counts = arr.stats.snapshot()
    assert (counts["delete"], counts["put"], reads(counts)) == (2, 0, 0)
    # obstore deletes with S3's DeleteObjects: one POST per object, naming its key
    assert [(e.method, e.status) for e in s3.proxy.log() if not e.batched] == [("POST", 200)] * 2
    assert sorted(e.path.rsplit(f"{name}/", 1)[1] for e in s3.proxy.log("DELETE")) == [
        "c/0/0", "c/0/1"]
    assert sorted(s3.objects(name)) == ["c/0/2", "c/1/0", "c/1/1", "c/1/2", "zarr.json"]
    # a partial write that leaves chunk 1.2 all fill: its GET, then a DELETE instead of a PUT
    arr.stats.reset()
    s3.proxy.reset()
    model[8:16, 16:24] = 0
    write(arr, (slice(8, 16), slice(16, 24)), model[8:16, 16:24], mode)
    counts = arr.stats.snapshot()
    assert (counts["delete"], counts["put"]) == (1, 0)
    assert "c/1/2" not in s3.objects(name)
    assert_reads(s3, name, model)
    # write_empty_chunks=True stores the fill-value chunk instead
    arr.stats.reset()
    s3.proxy.reset()
    write(arr, (slice(0, 8), slice(0, 8)), 0, mode, write_empty_chunks=True)
    counts = arr.stats.snapshot()
    assert (counts["put"], counts["delete"], reads(counts)) == (1, 0, 0)
    assert [(e.method, e.status) for e in s3.proxy.log()] == [("PUT", 200)]
    assert "c/0/0" in s3.objects(name)
    assert_reads(s3, name, model)


# -- faults -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["500", "503", "reset-upload", "reset-response"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_fault_then_success_is_retried(s3, fault, mode):
    """The third PUT of the write fails once (a 5xx; a reset mid-upload; a reset after the
    object was stored): obstore sends that PUT again and the write succeeds."""
    name = fresh("retried")
    model = np.random.default_rng(5).integers(0, 2**31, (16, 24)).astype("<u4")
    arr = s3.create(name, shape=model.shape, dtype=model.dtype, chunks=(8, 8), fill_value=0)
    s3.proxy.add_fault("PUT", None, fault, skip=2)
    write(arr, Ellipsis, model, mode)
    puts = s3.puts(name)
    failed = [k for k, status in puts if status != 200]
    assert len(failed) == 1 and len(puts) == 7
    assert sorted(k for k, status in puts if status == 200) == chunk_keys((2, 3))
    assert arr.stats.snapshot()["put"] == 6
    assert_reads(s3, name, model)


@pytest.mark.parametrize("fault", ["500", "reset-upload"])
@pytest.mark.parametrize("layout", ["chunks", "shards"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_persistent_failure_raises_and_leaves_the_previous_object(s3, fault, layout, mode):
    """Every PUT of one object fails: WriteError naming it after max_retries + 1 attempts;
    ``written`` names only objects the server stored; the failed object keeps its previous
    complete bytes; every other object is wholly the old or the new version, the new one
    exactly where the server accepted a PUT."""
    name = fresh(f"failing-{layout}")
    rng = np.random.default_rng(6)
    kw: dict[str, Any] = dict(shape=(32, 32), dtype="<i2", chunks=(8, 8), fill_value=0)
    if layout == "shards":
        kw["shards"] = (16, 16)
    arr = s3.create(name, **kw)
    old = rng.integers(1, 30000, (32, 32)).astype("<i2")
    arr[...] = old
    before = s3.objects(name)
    victim = "c/1/0"
    s3.proxy.reset()
    s3.proxy.add_fault("PUT", f"/{BUCKET}/{name}/{victim}", fault, times=None)
    new = -rng.integers(1, 30000, (32, 32)).astype("<i2")
    with pytest.raises(ngffcore.WriteError) as info:
        write(arr, Ellipsis, new, mode)
    err = info.value
    assert isinstance(err, ngffcore.StoreError)
    assert err.key is not None and err.key.endswith(victim)
    assert victim in str(err)
    s3.proxy.settle()  # PUTs cancelled in flight may still be stored: the server decides
    attempts = [s for k, s in s3.puts(name) if k == victim]
    assert len(attempts) == 4 and all(s in (0, 500) for s in attempts)  # max_retries 3
    stored = sorted(k for k, s in s3.puts(name) if s == 200)
    assert set(relative(name, err.written)) <= set(stored)
    after = s3.objects(name)
    assert after[victim] == before[victim]
    # each object is whole: the old version or the new one, and the new one only if written
    ours = s3.readback(name)[0]
    step = 16 if layout == "shards" else 8
    for key in after:
        if key == "zarr.json":
            continue
        i, j = (int(x) * step for x in key.split("/")[1:])
        box = (slice(i, i + step), slice(j, j + step))
        expected = new if key in stored else old
        assert np.array_equal(ours[box], expected[box]), key
        assert (after[key] != before[key]) == (key in stored)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_written_names_every_object_the_failed_write_changed(s3, mode):
    """WriteError's contract: ``written`` lists the objects the failed write changed. Here
    every PUT but the failing one is slow (0.3 s at the server, whose bodies have all
    arrived), so they are in flight when the failing object runs out of retries; the store
    completes them all the same, as S3 does a PUT whose body it has received."""
    name = fresh("inflight")
    arr = s3.create(name, shape=(8, 32), dtype="u1", chunks=(8, 8), fill_value=0)
    victim = f"/{BUCKET}/{name}/c/0/0"
    s3.proxy.add_fault("PUT", victim, "500", times=None)
    for key in chunk_keys((1, 4))[1:]:
        s3.proxy.add_fault("PUT", f"/{BUCKET}/{name}/{key}", "slow:0.3")
    with pytest.raises(ngffcore.WriteError) as info:
        write(arr, Ellipsis, 9, mode)
    s3.proxy.settle()
    changed = sorted(k for k in s3.objects(name) if k != "zarr.json")
    assert changed == ["c/0/1", "c/0/2", "c/0/3"]
    assert sorted(relative(name, info.value.written)) == changed


def test_a_failed_first_write_leaves_no_object(s3):
    """A reset mid-upload on every attempt at a new object: nothing appears under its key."""
    name = fresh("absent")
    arr = s3.create(name, shape=(8, 16), dtype="u2", chunks=(8, 8), fill_value=0)
    s3.proxy.add_fault("PUT", f"/{BUCKET}/{name}/c/0/1", "reset-upload", times=None)
    with pytest.raises(ngffcore.WriteError) as info:
        arr[...] = np.arange(128, dtype="u2").reshape(8, 16) + 1
    assert info.value.key is not None and info.value.key.endswith("c/0/1")
    stored = s3.objects(name)
    assert "c/0/1" not in stored
    assert sorted(stored) == sorted(["zarr.json"] + (["c/0/0"] if info.value.written else []))
    with pytest.raises(s3.client.exceptions.ClientError):
        s3.client.head_object(Bucket=BUCKET, Key=f"{name}/c/0/1")


# -- gs:// and az:// against the in-memory object server ---------------------------------------

SCHEMES = ["gs", "az"]


@pytest.fixture(scope="module")
def memory_server():
    with FaultServer() as srv:
        yield srv


@pytest.fixture
def cloud(memory_server):
    memory_server.reset()
    yield memory_server
    memory_server.settle()
    memory_server.reset()


def _cloud_create(srv: FaultServer, scheme: str, name: str,
                  options: Callable[[str, str], dict[str, Any]], **kw: Any) -> ngffcore.Array:
    arr = ngffcore.create_array(f"{scheme}://bucket/{name}", **kw,
                                **options(scheme, srv.url), retry_config=retry(3))
    assert [(e.method, e.path.rsplit("/", 1)[1]) for e in srv.log()] == [
        ("GET", "zarr.json"), ("GET", ".zarray"), ("GET", ".zgroup"), ("GET", ".zattrs"),
        ("PUT", "zarr.json")]
    arr.stats.reset()
    srv.reset()
    return arr


def _keys(srv: FaultServer, name: str, method: str | None = None) -> list[str]:
    return sorted(e.path.split(f"/bucket/{name}/", 1)[1] for e in srv.log(method))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_cloud_whole_write_counts(cloud, scheme, cloud_options):
    name = fresh(f"{scheme}-whole")
    model = np.random.default_rng(7).normal(size=(20, 30))
    arr = _cloud_create(cloud, scheme, name, cloud_options, shape=model.shape,
                        dtype="float64", chunks=(8, 8), fill_value=0)
    arr[...] = model
    assert [e.method for e in cloud.log()] == ["PUT"] * 12
    assert _keys(cloud, name) == chunk_keys((3, 4))
    counts = arr.stats.snapshot()
    assert (counts["put"], reads(counts)) == (12, 0)
    assert counts["bytes_written"] == sum(
        len(o.data) for p, o in cloud.objects.items() if p.startswith(f"/bucket/{name}/c/"))
    cloud.reset()
    again = ngffcore.open_array(f"{scheme}://bucket/{name}", **cloud_options(scheme, cloud.url))
    assert np.array_equal(again[...], model)
    assert not cloud.log("PUT") and not cloud.log("HEAD")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_cloud_sharded_partial_and_delete_counts(cloud, scheme, cloud_options):
    name = fresh(f"{scheme}-sharded")
    model = np.random.default_rng(8).integers(1, 60000, (32, 32)).astype("<u2")
    arr = _cloud_create(cloud, scheme, name, cloud_options, shape=model.shape,
                        dtype=model.dtype, chunks=(8, 8), shards=(16, 16), fill_value=0)
    asyncio.run(arr.write_async(Ellipsis, model))
    assert [e.method for e in cloud.log()] == ["PUT"] * 4
    assert _keys(cloud, name) == chunk_keys((2, 2))
    cloud.reset()
    # inside shard c/1/1 only: one GET of it, one PUT
    arr[20:25, 18:30] = 5
    model[20:25, 18:30] = 5
    assert [(e.method, e.path.split(f"{name}/", 1)[1]) for e in cloud.log()] == [
        ("GET", "c/1/1"), ("PUT", "c/1/1")]
    cloud.reset()
    # shard c/0/1 all fill value: deleted (Azure: in a Blob Batch POST), nothing read
    arr[0:16, 16:32] = 0
    model[0:16, 16:32] = 0
    deletes = cloud.log("DELETE")
    assert [e.path.split(f"{name}/", 1)[1] for e in deletes] == ["c/0/1"]
    assert all(e.batched == (scheme == "az") for e in deletes)
    assert not cloud.log("GET") and not cloud.log("PUT")
    assert f"/bucket/{name}/c/0/1" not in cloud.objects
    counts = arr.stats.snapshot()
    assert (counts["put"], counts["get"], counts["delete"]) == (4 + 1, 1, 1)
    got = ngffcore.open_array(f"{scheme}://bucket/{name}", **cloud_options(scheme, cloud.url))
    assert np.array_equal(got[...], model)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_cloud_500_then_success_and_persistent_failure(cloud, scheme, cloud_options):
    name = fresh(f"{scheme}-faults")
    model = np.arange(16 * 16, dtype="<i4").reshape(16, 16) + 1
    arr = _cloud_create(cloud, scheme, name, cloud_options, shape=model.shape,
                        dtype=model.dtype, chunks=(8, 8), fill_value=0)
    cloud.add_fault("PUT", f"/bucket/{name}/c/0/1", "500")
    arr[...] = model
    assert sorted((e.path.split(f"{name}/", 1)[1], e.status) for e in cloud.log("PUT")) == \
        sorted([(k, 200) for k in chunk_keys((2, 2))] + [("c/0/1", 500)])
    assert np.array_equal(ngffcore.open_array(f"{scheme}://bucket/{name}",
                                              **cloud_options(scheme, cloud.url))[...], model)
    cloud.reset()
    cloud.add_fault("PUT", f"/bucket/{name}/c/1/1", "503", times=None)
    with pytest.raises(ngffcore.WriteError) as info:
        arr[...] = -model
    assert info.value.key is not None and info.value.key.endswith("c/1/1")
    cloud.settle()
    assert [e.status for e in cloud.log("PUT") if e.path.endswith("c/1/1")] == [503] * 4
    assert set(relative(name, info.value.written)) <= {
        e.path.split(f"{name}/", 1)[1] for e in cloud.log("PUT") if e.status == 200}
    got = ngffcore.open_array(f"{scheme}://bucket/{name}", **cloud_options(scheme, cloud.url))
    assert np.array_equal(got[8:16, 8:16], model[8:16, 8:16])  # the failed chunk: old


# -- http(s):// takes no writes ---------------------------------------------------------------

def test_http_is_read_only(tmp_path):
    z = zarr.create_array(tmp_path / "a.zarr", shape=(4, 4), chunks=(2, 2), dtype="u1",
                          fill_value=0)
    z[...] = 1
    with RangeServer(str(tmp_path)) as srv:
        url = f"{srv.url}/a.zarr"
        with pytest.raises(ngffcore.ReadOnlyError, match="mode='r'") as info:
            ngffcore.open_array(url, mode="r+")
        assert isinstance(info.value, PermissionError)
        assert isinstance(info.value, ngffcore.NgffError)
        assert srv.url in str(info.value)
        assert not srv.state.requests()  # refused before any request
        with pytest.raises(ngffcore.ReadOnlyError):
            ngffcore.create_array(f"{srv.url}/b.zarr", shape=(4,), dtype="u1", chunks=(2,))
        assert not srv.state.requests("PUT")
        arr = ngffcore.open_array(url, mode="r")
        with pytest.raises(ngffcore.ReadOnlyError):
            arr[0, 0] = 5
        with pytest.raises(ngffcore.ReadOnlyError):
            asyncio.run(arr.write_async((0, 0), 5))
        assert np.array_equal(arr[...], np.ones((4, 4), "u1"))
        assert {r.method for r in srv.state.requests()} == {"GET"}


def test_endpoint_and_allow_http_from_the_environment(s3_server, monkeypatch):
    """An S3 endpoint configured only through the environment (as MinIO and moto users do):
    our client options must not drop obstore's AWS_ALLOW_HTTP (plain HTTP was refused)."""
    endpoint = s3_server.options["endpoint"]
    for name, value in {"AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true",
                        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    data = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48)
    url = f"s3://{BUCKET}/from-env.zarr"
    ngffcore.write_image(url, data, axes="yx", chunks=(32, 32), levels=1)
    np.testing.assert_array_equal(ngffcore.open(url).levels[0][...], data)
    got = s3_server.client.get_object(Bucket=BUCKET, Key="from-env.zarr/zarr.json")
    assert b'"multiscales"' in got["Body"].read()
