"""The Store protocol, checked the same way against every store kind: memory, local, HTTP
(``servers.RangeServer``), S3 (moto's server), GCS and Azure (obstore's own clients pointed at
``RangeServer``, as in ``test_remote_cloud.py``).

Objects are put in place through each back end itself (files, boto3), not through the store
under test, except for the memory store. Where a server logs requests (``RangeServer``), the
counts are the server's: one request per read (Azure: two for a suffix, which it lacks), and
never a HEAD or a LIST. The GCS and Azure emulation serves reads only, so writes are checked
against memory, local and S3 (and refused by HTTP stores, which are read-only).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import pytest

import ngffcore
from ngffcore.store import LocalStore, MemoryStore, Suffix, open_store, run_sync
from servers import RangeServer

KINDS = ["memory", "local", "http", "s3", "gs", "az"]
BUCKET = "conformance"
DATA = bytes(range(256)) * 4 + b"tail"  # 1028 bytes, every position distinguishable


@dataclass
class Kind:
    name: str
    store: Any
    #: puts an object in place through the back end (not the store under test)
    seed: Callable[[str, bytes], None]
    #: requests by method the server saw since the test began, or None (not logged)
    methods: Callable[[], Counter] | None
    #: whether the back end takes writes (the GCS and Azure emulation serves reads only)
    writes: bool
    #: another store of the same kind with another root, and one with the same root again
    other: Callable[[], Any]
    again: Callable[[], Any]


@pytest.fixture(scope="module")
def range_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("conformance")
    with RangeServer(str(root), validators=True) as srv:
        yield srv, root


@pytest.fixture(scope="module")
def s3_bucket(moto_s3):
    _, client, options = moto_s3
    client.create_bucket(Bucket=BUCKET)
    return client, options


def _write(root: Any, key: str, data: bytes) -> None:
    path = os.path.join(root, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


@pytest.fixture(params=KINDS)
def kind(request, tmp_path) -> Kind:
    name = request.param
    prefix = uuid.uuid4().hex  # every test its own root: nothing leaks between tests
    if name == "memory":
        store = MemoryStore()

        def seed(key: str, data: bytes) -> None:
            run_sync(store, store.put(key, data))
            store.stats.reset()
        return Kind(name, store, seed, None, True, MemoryStore, MemoryStore)
    if name == "local":
        root = tmp_path / "root"
        return Kind(name, LocalStore(root), lambda k, d: _write(root, k, d), None, True,
                    lambda: LocalStore(tmp_path / "elsewhere"), lambda: LocalStore(root))
    if name == "s3":
        client, options = request.getfixturevalue("s3_bucket")

        def open_s3(p: str = prefix) -> Any:
            return open_store(f"s3://{BUCKET}/{p}", **options)

        def put_s3(key: str, data: bytes) -> None:
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/{key}", Body=data)
        return Kind(name, open_s3(), put_s3, None, True, lambda: open_s3("elsewhere"), open_s3)
    srv, root = request.getfixturevalue("range_server")
    srv.state.reset()
    if name == "http":
        def open_http(p: str = prefix) -> Any:
            return open_store(f"{srv.url}/{p}")
        base = root / prefix
    else:
        options = request.getfixturevalue("cloud_options")(name, srv.url)

        def open_http(p: str = prefix) -> Any:
            return open_store(f"{name}://bucket/{p}", **options)
        base = root / "bucket" / prefix
    return Kind(name, open_http(), lambda k, d: _write(base, k, d), srv.state.counts,
                name == "s3", lambda: open_http("elsewhere"), open_http)


def get(store: Any, key: str, byte_range: Any = None, **kw: Any) -> Any:
    return run_sync(store, store.get(key, byte_range, **kw))


def data_of(got: Any) -> bytes:
    return bytes(memoryview(got.data))  # any bytes-like object, as the core takes it


def test_get_whole_range_suffix_and_missing(kind: Kind) -> None:
    kind.seed("a/obj", DATA)
    store = kind.store
    n = len(DATA)
    cases = [(None, DATA), ((100, 200), DATA[100:200]), ((1000, 5000), DATA[1000:]),
             (Suffix(10), DATA[-10:]), (Suffix(5000), DATA), ((0, 1), DATA[:1])]
    for byte_range, expected in cases:
        got = get(store, "a/obj", byte_range)
        assert got is not None, byte_range
        assert (data_of(got), got.size) == (expected, n), byte_range
    assert get(store, "a/missing") is None
    assert get(store, "a/missing", (0, 10)) is None
    assert get(store, "a/missing", Suffix(10)) is None


def test_each_read_is_one_request_and_never_a_head_or_list(kind: Kind) -> None:
    kind.seed("obj", DATA)
    store = kind.store
    store.stats.reset()
    if kind.methods is not None:
        kind.methods()  # (the seed went to disk: nothing logged yet)
    get(store, "obj")
    get(store, "obj", (5, 50))
    get(store, "obj", Suffix(16))
    get(store, "nothing")
    counts = store.stats.snapshot()
    suffix_requests = 1 if store.suffix_ranges else 2  # Azure: 1-byte GET for the size first
    assert (counts["get"], counts["not_found"]) == (2, 1)
    assert counts["suffix_get"] + counts["range_get"] == 1 + suffix_requests
    assert store.stats.requests == 3 + suffix_requests
    if kind.methods is not None:
        assert kind.methods() == Counter({"GET": 3 + suffix_requests})  # no HEAD, no LIST


def test_get_ranges(kind: Kind) -> None:
    kind.seed("r", DATA)
    store = kind.store
    store.stats.reset()
    parts = run_sync(store, store.get_ranges("r", [(0, 10), (500, 600), (1020, 4000)]))
    assert parts is not None
    assert [bytes(memoryview(p)) for p in parts] == [DATA[:10], DATA[500:600], DATA[1020:]]
    assert store.stats.snapshot()["range_get"] == 3
    if kind.methods is not None:
        assert kind.methods() == Counter({"GET": 3})
    assert run_sync(store, store.get_ranges("r-missing", [(0, 10)])) is None


def test_bad_ranges_are_argument_errors(kind: Kind) -> None:
    for bad in [(5, 5), (9, 3), (-1, 4), Suffix(0), Suffix(-3), (1.5, 4)]:
        with pytest.raises(ngffcore.ArgumentError):
            get(kind.store, "x", bad)
    if kind.methods is not None:
        assert kind.methods() == Counter()  # refused before any request


def test_max_bytes_refuses_a_larger_object(kind: Kind) -> None:
    kind.seed("big", DATA)
    with pytest.raises(ngffcore.StoreError, match=str(len(DATA))):
        get(kind.store, "big", max_bytes=100)
    assert data_of(get(kind.store, "big", max_bytes=len(DATA))) == DATA


def test_keys_escaping_the_root_are_refused(kind: Kind) -> None:
    for key in ["../x", "a/../../x", "/etc/passwd", "a/./b", "a\\b"]:
        with pytest.raises(ngffcore.StoreError, match="escapes"):
            get(kind.store, key)
        if kind.store.writable:
            with pytest.raises(ngffcore.StoreError, match="escapes"):
                run_sync(kind.store, kind.store.put(key, b"x"))
    if kind.methods is not None:
        assert kind.methods() == Counter()


def test_put_get_delete(kind: Kind) -> None:
    store = kind.store
    if not store.writable:
        for call in (store.put("w/obj", b"data"), store.delete("w/obj")):
            with pytest.raises(ngffcore.StoreError, match="read-only"):
                run_sync(store, call)
        assert kind.methods is None or kind.methods() == Counter()  # nothing was sent
        return
    assert store.atomic_put
    if not kind.writes:
        pytest.skip(f"the {kind.name} emulation serves reads only")
    store.stats.reset()
    run_sync(store, store.put("w/deep/obj", DATA))
    got = get(store, "w/deep/obj")
    assert (data_of(got), got.size) == (DATA, len(DATA))
    run_sync(store, store.put("w/deep/obj", memoryview(b"second")))  # replaced, any buffer
    assert data_of(get(store, "w/deep/obj")) == b"second"
    run_sync(store, store.delete("w/deep/obj"))
    assert get(store, "w/deep/obj") is None
    run_sync(store, store.delete("w/deep/obj"))  # missing: no error
    run_sync(store, store.delete("never/was"))
    counts = store.stats.snapshot()
    assert (counts["put"], counts["delete"]) == (2, 3)
    assert counts["bytes_written"] == len(DATA) + len(b"second")


def test_capabilities(kind: Kind) -> None:
    store = kind.store
    local = kind.name in ("memory", "local")
    assert store.inline is local
    assert store.writable is (kind.name != "http")
    assert store.suffix_ranges is (kind.name != "az")
    assert store.concurrency >= 1
    if kind.name == "local":
        assert store.local_root == os.fsencode(os.path.join(store.root, ""))
    else:
        assert store.local_root is None
    assert isinstance(store.stats, ngffcore.store.stats.RequestStats)


def test_identity(kind: Kind) -> None:
    store = kind.store
    hash(store.identity)
    assert kind.other().identity != store.identity
    again = kind.again().identity
    if kind.name == "memory":
        assert again != store.identity  # each memory store is its own
    else:
        assert again == store.identity


def test_identities_differ_across_kinds(tmp_path, range_server, s3_bucket, cloud_options):
    srv, _ = range_server
    _, options = s3_bucket
    stores = [MemoryStore(), LocalStore(tmp_path), open_store(f"{srv.url}/x"),
              open_store(f"s3://{BUCKET}/x", **options),
              open_store("gs://bucket/x", **cloud_options("gs", srv.url)),
              open_store("az://bucket/x", **cloud_options("az", srv.url))]
    assert len({s.identity for s in stores}) == len(stores)


@pytest.mark.parametrize("store_kind", ["local", "memory"])
def test_a_reader_never_sees_a_partial_object(tmp_path, store_kind):
    """Readers in a thread while large objects are replaced: each read is one whole version."""
    store = LocalStore(tmp_path) if store_kind == "local" else MemoryStore()
    size = 4 << 20
    versions = [bytes([v]) * size for v in range(4)]
    run_sync(store, store.put("big", versions[0]))
    done = threading.Event()
    seen: list[tuple[int, int, bool]] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not done.is_set():
                got = get(store, "big")
                data = data_of(got)
                seen.append((len(data), got.size, data.count(data[:1]) == len(data)))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(40):
            run_sync(store, store.put("big", versions[i % len(versions)]))
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not errors
    assert seen and all(s == (size, size, True) for s in seen)
    if store_kind == "local":  # no temporary file is left beside it
        assert os.listdir(tmp_path) == ["big"]


def test_local_writes_never_follow_a_link_out_of_the_root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "out").symlink_to(outside)
    store = LocalStore(root)
    with pytest.raises(ngffcore.StoreError, match="outside the store root"):
        run_sync(store, store.put("out/evil", b"x"))
    with pytest.raises(ngffcore.StoreError, match="outside the store root"):
        run_sync(store, store.delete("out/evil"))
    assert list(outside.iterdir()) == []
    following = LocalStore(root, follow_external_links=True)
    run_sync(following, following.put("out/ok", b"y"))
    assert (outside / "ok").read_bytes() == b"y"


def test_run_sync_refuses_an_inline_coroutine_that_suspends():
    import asyncio

    async def suspends() -> None:
        await asyncio.sleep(0)

    with pytest.raises(ngffcore.NgffError, match="suspended"):
        run_sync(MemoryStore(), suspends())
