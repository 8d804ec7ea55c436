"""Network faults (issue 6, item 4) against our own HTTP server on 127.0.0.1.

``test_remote_http.py`` covers one 500 then success, a 500 without retries, a reset before
any response byte, a truncated body without retries and a slow response with a 300 ms
timeout, all on one unsharded v2 array. This module adds, for an unsharded v2 array and a
sharded v3 array (its index request, its ranged data requests and a whole-shard GET), sync and
async:

* 5xx bursts longer than the retry budget (StoreError naming the key and the status, exactly
  ``max_retries + 1`` requests, within the budget) and shorter than it (exact pixels);
* a reset mid-body, a truncated body, a body stalled mid-way past the request timeout:
  retried by ngffcore within the retry budget (obstore retries only until the headers), then
  an error;
* over-long bodies (bytes beyond Content-Length on a kept-alive connection; a body with no
  Content-Length at all);
* wrong Content-Range answers to ranged reads of a shard (shifted range, wrong total size,
  Range ignored, Content-Range missing);
* responses slower than the request timeout (``client_options={"timeout": ...}``), bounded
  by ``max_retries`` and by ``retry_timeout``;
* tiles read through the decoded-chunk cache.

Every failure must raise (never a silent success), within a measured bound. What the
caller's ``out`` holds after a failed read is checked too: every element is either untouched
(the sentinel it was filled with) or the correct pixel, the failed chunk's box is untouched,
and nothing is written after the read has raised. Expected pixels are zarr-python's reads of
the same files.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numcodecs
import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, ShardingCodec, ZstdCodec

import ngffcore
import tile_writers as tw
from servers import RangeServer

#: the longest any single read below may take before the test calls it a hang
HANG = 20.0


def retry(max_retries: int, retry_timeout: float = 10.0) -> dict[str, Any]:
    """A retry config with short backoffs (10 ms doubling to at most 50 ms)."""
    return {"max_retries": max_retries, "retry_timeout": timedelta(seconds=retry_timeout),
            "backoff": {"init_backoff": timedelta(milliseconds=10),
                        "max_backoff": timedelta(milliseconds=50), "base": 2}}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    rng = np.random.default_rng(6)
    v2 = rng.integers(0, 60000, (64, 64)).astype("<u2")
    z = zarr.create_array(root / "v2", shape=v2.shape, chunks=(16, 16), dtype=v2.dtype,
                          zarr_format=2, compressors=numcodecs.Blosc("zstd", 5, 1),
                          fill_value=0)
    z[...] = v2
    sh = rng.normal(size=(64, 96)).astype("float32")
    z = zarr.create_array(root / "sh", shape=sh.shape, chunks=(32, 48), dtype="float32",
                          serializer=ShardingCodec(chunk_shape=(8, 12),
                                                   codecs=[BytesCodec(), ZstdCodec()]),
                          compressors=None, fill_value=0)
    z[...] = sh
    tw.write_case(root, "img", "0.5", "czyx", (2, 2, 64, 96), (1, 1, 8, 12),
                  shards=(1, 1, 32, 48), n_levels=2, seed=9)
    # one 2 MiB shard of 4×4 uncompressed 128 KiB inner chunks (stored in Morton order): the
    # first row of them is two ranged GETs, 640 KiB apart (beyond the 256 KiB coalescing gap)
    big = rng.integers(0, 65535, (1024, 1024)).astype("uint16")
    z = zarr.create_array(root / "big", shape=big.shape, chunks=(1024, 1024), dtype="uint16",
                          serializer=ShardingCodec(chunk_shape=(256, 256),
                                                   codecs=[BytesCodec()]),
                          compressors=None, fill_value=0)
    z[...] = big
    with RangeServer(str(root)) as srv:
        yield srv, root


@pytest.fixture
def server(served):
    srv, root = served
    srv.state.reset()
    yield srv, root
    srv.state.faults.clear()


@dataclass(frozen=True)
class Target:
    """Where a fault hits: ``array`` read at ``sel``; the fault goes to the object ``path``;
    ``prime`` reads first so a shard's index is cached and the fault hits a data request;
    ``failed`` is the box of ``out`` (in output coordinates) that object would have filled."""

    array: str
    sel: tuple[slice, ...]
    path: str
    key: str
    prime: bool
    failed: tuple[slice, ...]
    sentinel: Any


TARGETS = {
    # 9 chunks; the fault on chunk 1.1 = rows 16:32, cols 16:32 = out[8:24, 8:24]
    "chunk": Target("v2", (slice(8, 40), slice(8, 40)), "/v2/1.1", "1.1", False,
                    (slice(8, 24), slice(8, 24)), 65535),
    # part of every shard; of shard c/0/0 only inner chunks (2..3, 2..3), a quarter of it:
    # its index (suffix GET), then one ranged GET; rows 20:32, cols 30:48 = out[0:12, 0:18]
    "shard-index": Target("sh", (slice(20, 60), slice(30, 90)), "/sh/c/0/0", "c/0/0", False,
                          (slice(0, 12), slice(0, 18)), -12345.0),
    "shard-range": Target("sh", (slice(20, 60), slice(30, 90)), "/sh/c/0/0", "c/0/0", True,
                          (slice(0, 12), slice(0, 18)), -12345.0),
    # all of shard c/0/0 (plus part of c/1/0): one GET of the whole shard, index included
    "whole-shard": Target("sh", (slice(0, 40), slice(0, 48)), "/sh/c/0/0", "c/0/0", False,
                          (slice(0, 32), slice(0, 48)), -12345.0),
}
#: the first request each target's read sends to its faulty object: (ranged, suffix)
FIRST_REQUEST = {"chunk": (False, False), "shard-index": (True, True),
                 "shard-range": (True, False), "whole-shard": (False, False)}


def _open(srv: RangeServer, target: Target, *, timeout: str = "5s", **retry_kw: Any
          ) -> ngffcore.Array:
    a = ngffcore.open_array(f"{srv.url}/{target.array}", client_options={"timeout": timeout},
                            retry_config=retry(**retry_kw) if retry_kw else retry(0))
    if target.prime:
        a[target.sel]  # caches the shard index: the fault then hits a data request
    srv.state.clear()
    return a


def _expected(root, target: Target) -> np.ndarray:
    return np.asarray(zarr.open_array(root / target.array, mode="r")[target.sel])


def _bounded(fn, limit: float = HANG) -> tuple[BaseException | None, float]:
    """Run ``fn`` on a thread: (the exception it raised or None, seconds taken). A call still
    running after ``limit`` seconds fails the test as a hang."""
    box: dict[str, Any] = {}

    def run() -> None:
        t0 = time.monotonic()
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["exc"] = exc
        box["dt"] = time.monotonic() - t0

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(limit)
    assert not th.is_alive(), f"the read hung for more than {limit} s"
    return box.get("exc"), box["dt"]


def _read(a: ngffcore.Array, target: Target, mode: str, out: np.ndarray) -> Any:
    if mode == "sync":
        return lambda: a.read(target.sel, out=out)
    return lambda: asyncio.run(a.read_async(target.sel, out=out))


def _fresh_out(a: ngffcore.Array, target: Target) -> np.ndarray:
    shape = tuple(s.indices(n)[1] - s.indices(n)[0] for s, n in zip(target.sel, a.shape))
    return np.full(shape, target.sentinel, dtype=a.dtype)


def assert_out_after_failure(out: np.ndarray, expected: np.ndarray, target: Target) -> None:
    """What ``out`` holds after a failed read: each element untouched (the sentinel) or the
    correct pixel, never anything else; the failed object's box untouched; and no write
    after the read raised."""
    untouched = out == np.asarray(target.sentinel, dtype=out.dtype)
    correct = out == expected
    assert np.all(untouched | correct), "out holds values that are neither pixels nor untouched"
    assert np.all(untouched[target.failed]), "the failed object's box was written"
    snapshot = out.copy()
    time.sleep(0.1)
    assert np.array_equal(out, snapshot), "out was written after the read raised"


def _requests_to(srv: RangeServer, path: str) -> int:
    return sum(r.path == path for r in srv.state.requests("GET"))


@pytest.mark.parametrize("where", list(TARGETS))
def test_each_target_hits_the_request_it_names(server, where):
    """The faults below land on the request their target names: a chunk GET, a shard's
    index (suffix GET), a ranged GET of inner chunks, a whole-shard GET."""
    srv, root = server
    target = TARGETS[where]
    a = _open(srv, target)
    assert np.array_equal(a[target.sel], _expected(root, target))
    first = next(r for r in srv.state.requests("GET") if r.path == target.path)
    ranged, suffix = FIRST_REQUEST[where]
    assert (first.range is not None) == ranged, first
    assert (first.range or "").startswith("bytes=-") == suffix, first


# --------------------------------------------------------------------------------------
# 5xx bursts
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("status", ["500", "503"])
@pytest.mark.parametrize("where", list(TARGETS))
def test_burst_longer_than_the_retry_budget_raises(server, where, status, mode):
    srv, root = server
    target = TARGETS[where]
    a = _open(srv, target, max_retries=2)
    srv.state.faults[target.path] = [status] * 6
    out = _fresh_out(a, target)
    exc, dt = _bounded(_read(a, target, mode, out))
    assert isinstance(exc, ngffcore.StoreError), exc
    assert exc.key == target.key and target.key in str(exc) and status in str(exc)
    assert "after 2 retries" in str(exc)
    assert _requests_to(srv, target.path) == 3  # bounded: 1 + max_retries, then no more
    assert dt < 2.0  # three attempts, backoffs of 10-50 ms
    assert_out_after_failure(out, _expected(root, target), target)  # waits 0.1 s
    assert _requests_to(srv, target.path) == 3  # nothing retried in the background


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("status", ["500", "502", "503", "504"])
@pytest.mark.parametrize("where", list(TARGETS))
def test_burst_within_the_retry_budget_succeeds(server, where, status, mode):
    srv, root = server
    target = TARGETS[where]
    a = _open(srv, target, max_retries=3)
    srv.state.faults[target.path] = [status] * 3
    out = _fresh_out(a, target)
    exc, dt = _bounded(_read(a, target, mode, out))
    assert exc is None, exc
    assert np.array_equal(out, _expected(root, target))
    assert srv.state.faults[target.path] == []  # all three answered, then success
    assert dt < 2.0


def test_retry_timeout_bounds_a_long_burst(server):
    """max_retries 50 but retry_timeout 0.5 s: the 5xx answers stop being retried once the
    retry budget's time is spent."""
    srv, _ = server
    target = TARGETS["chunk"]
    a = ngffcore.open_array(f"{srv.url}/v2", client_options={"timeout": "5s"},
                            retry_config={"max_retries": 50,
                                          "retry_timeout": timedelta(seconds=0.5),
                                          "backoff": {"init_backoff": timedelta(milliseconds=50),
                                                      "max_backoff": timedelta(milliseconds=100),
                                                      "base": 2}})
    srv.state.faults[target.path] = ["503"] * 1000
    exc, dt = _bounded(lambda: a[target.sel])
    assert isinstance(exc, ngffcore.StoreError) and "1.1" in str(exc)
    assert dt < 0.5 + 0.1 + 1.0  # the budget, one last backoff, slack
    assert 3 <= _requests_to(srv, target.path) < 20


# --------------------------------------------------------------------------------------
# resets, truncated and stalled bodies
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("where", list(TARGETS))
def test_reset_before_the_response_is_retried(server, where, mode):
    srv, root = server
    target = TARGETS[where]
    a = _open(srv, target, max_retries=2)
    srv.state.faults[target.path] = ["reset", "reset"]
    out = _fresh_out(a, target)
    exc, _ = _bounded(_read(a, target, mode, out))
    assert exc is None, exc
    assert np.array_equal(out, _expected(root, target))


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("fault", ["reset-body", "truncate"])
@pytest.mark.parametrize("where", list(TARGETS))
def test_body_cut_short_raises_never_partial(server, where, fault, mode):
    """Headers, then half the body, then a reset (or a clean close short of Content-Length):
    a StoreError naming the object, never the half body decoded as if it were whole."""
    srv, root = server
    target = TARGETS[where]
    a = _open(srv, target)  # no retries
    srv.state.faults[target.path] = [fault]
    out = _fresh_out(a, target)
    exc, dt = _bounded(_read(a, target, mode, out))
    assert isinstance(exc, ngffcore.StoreError), exc
    assert exc.key == target.key and target.key in str(exc)
    assert dt < 2.0
    assert_out_after_failure(out, _expected(root, target), target)
    # the same read succeeds once the server behaves
    out2 = _fresh_out(a, target)
    assert _bounded(_read(a, target, mode, out2))[0] is None
    assert np.array_equal(out2, _expected(root, target))


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("fault", ["reset-body", "truncate", "stall:3"])
@pytest.mark.parametrize("where", ["chunk", "shard-index", "shard-range", "whole-shard"])
def test_body_fault_once_is_retried(server, where, fault, mode):
    """A body that fails after its headers is sent for again (obstore retries only until the
    headers arrive): exact pixels, one extra GET of that object, counted as a retry."""
    srv, root = server
    target = TARGETS[where]
    a = _open(srv, target, timeout="1s", max_retries=2)
    before = a.stats.snapshot()
    srv.state.faults[target.path] = [fault]
    out = _fresh_out(a, target)
    exc, _ = _bounded(_read(a, target, mode, out))
    assert exc is None, exc
    assert np.array_equal(out, _expected(root, target))
    after = a.stats.snapshot()
    assert after["retries"] - before["retries"] == 1
    assert after["errors"] - before["errors"] == 1
    assert _requests_to(srv, target.path) == 2 + (where == "shard-index")


@pytest.mark.parametrize("fault", ["reset-body", "truncate"])
@pytest.mark.parametrize("where", ["chunk", "shard-range"])
def test_body_faults_beyond_the_retry_budget_raise(server, where, fault):
    """max_retries 2 and three failed bodies in a row: StoreError after exactly 3 GETs of the
    object, saying how often its body failed; out never half-written as a success."""
    srv, root = server
    target = TARGETS[where]
    a = _open(srv, target, max_retries=2)
    srv.state.faults[target.path] = [fault] * 3
    out = _fresh_out(a, target)
    exc, dt = _bounded(_read(a, target, "sync", out))
    assert isinstance(exc, ngffcore.StoreError), exc
    assert exc.key == target.key and "body failed 3 times" in str(exc)
    assert _requests_to(srv, target.path) == 3
    assert dt < 2.0
    assert_out_after_failure(out, _expected(root, target), target)


def test_retry_timeout_bounds_body_retries(server):
    """50 retries allowed but retry_timeout 0.3 s, every body cut short after a 0.1 s delay:
    body retries stop once the budget's time is spent."""
    srv, root = server
    target = TARGETS["chunk"]
    a = ngffcore.open_array(f"{srv.url}/{target.array}", client_options={"timeout": "5s"},
                            retry_config=retry(50, retry_timeout=0.3))
    srv.state.clear()
    srv.state.latency = 0.1
    srv.state.faults[target.path] = ["truncate"] * 50
    out = _fresh_out(a, target)
    exc, dt = _bounded(_read(a, target, "sync", out))
    assert isinstance(exc, ngffcore.StoreError), exc
    assert 2 <= _requests_to(srv, target.path) <= 6
    assert dt < 0.3 + 0.1 + 0.1 + 0.5


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("where", ["chunk", "shard-range"])
def test_body_stalled_past_the_timeout_raises_in_time(server, where, mode):
    """Headers and half the body at once, the rest 3 s later; request timeout 1 s, 1 retry:
    two attempts, each cut off by the timeout, not by the server's 3 s."""
    srv, root = server
    target = TARGETS[where]
    a = _open(srv, target, timeout="1s", max_retries=1)
    srv.state.faults[target.path] = ["stall:3"] * 2
    out = _fresh_out(a, target)
    exc, dt = _bounded(_read(a, target, mode, out))
    assert isinstance(exc, ngffcore.StoreError), exc
    assert target.key in str(exc)
    assert 1.9 < dt < 2.0 + 1.0
    assert _requests_to(srv, target.path) == 2
    assert_out_after_failure(out, _expected(root, target), target)


# --------------------------------------------------------------------------------------
# over-long bodies
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("where", list(TARGETS))
def test_bytes_beyond_content_length_are_not_data(server, where, mode):
    """The body, then junk past its Content-Length on a kept-alive connection: the read uses
    exactly Content-Length bytes, and the reads after it (which may reuse that connection)
    are exact too."""
    srv, root = server
    target = TARGETS[where]
    a = _open(srv, target, max_retries=2)
    expected = _expected(root, target)
    srv.state.faults[target.path] = ["overlong"]
    for _ in range(4):
        out = _fresh_out(a, target)
        exc, _ = _bounded(_read(a, target, mode, out))
        assert exc is None, exc
        assert np.array_equal(out, expected)


@pytest.mark.parametrize("where", list(TARGETS))
def test_a_body_without_content_length_is_refused(server, where):
    """No Content-Length, more bytes than the object, delimited by closing the connection:
    obstore refuses such a response (StoreError), so junk never reaches the decoder."""
    srv, root = server
    target = TARGETS[where]
    a = _open(srv, target)
    srv.state.faults[target.path] = ["overlong-close"]
    out = _fresh_out(a, target)
    exc, _ = _bounded(_read(a, target, "sync", out))
    assert isinstance(exc, ngffcore.StoreError), exc
    assert target.key in str(exc) and "Content-Length" in str(exc)
    assert_out_after_failure(out, _expected(root, target), target)


# --------------------------------------------------------------------------------------
# wrong Content-Range on ranged reads of a shard
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("fault, where, message", [
    ("range-shift", "shard-index", r"Requested \d+\.\.\d+, got \d+\.\.\d+"),
    ("range-shift", "shard-range", r"Requested \d+\.\.\d+, got \d+\.\.\d+"),
    ("range-total", "shard-index", r"Requested \d+\.\.\d+, got \d+\.\.\d+"),
    ("range-ignored", "shard-index", "Range request not supported"),
    ("range-ignored", "shard-range", "Range request not supported"),
    ("no-content-range", "shard-index", "Content-Range header not present"),
    ("no-content-range", "shard-range", "Content-Range header not present"),
])
def test_wrong_content_range_raises(server, fault, where, message, mode):
    srv, root = server
    target = TARGETS[where]
    a = _open(srv, target, max_retries=2)
    srv.state.faults[target.path] = [fault]
    out = _fresh_out(a, target)
    exc, _ = _bounded(_read(a, target, mode, out))
    assert isinstance(exc, ngffcore.StoreError), exc
    assert exc.key == target.key and re.search(message, str(exc)), str(exc)
    assert_out_after_failure(out, _expected(root, target), target)
    # nothing wrong was cached (a bad index above all): the next read is exact
    out2 = _fresh_out(a, target)
    assert _bounded(_read(a, target, mode, out2))[0] is None
    assert np.array_equal(out2, _expected(root, target))


def test_a_wrong_total_on_a_data_range_is_harmless(server):
    """A ranged data answer whose Content-Range states a wrong object size, but the asked
    bytes: the bytes are right, and the read is exact."""
    srv, root = server
    target = TARGETS["shard-range"]
    a = _open(srv, target)
    srv.state.faults[target.path] = ["range-total"]
    assert np.array_equal(a[target.sel], _expected(root, target))
    assert srv.state.faults[target.path] == []


# --------------------------------------------------------------------------------------
# responses slower than the request timeout
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("where", ["chunk", "shard-index"])
def test_slow_responses_past_the_timeout_raise_in_bounded_time(server, where, mode):
    """Every answer 3 s late, timeout 1 s, 1 retry: StoreError after two timed-out attempts
    (~2 s), never the server's 3 s per attempt."""
    srv, root = server
    target = TARGETS[where]
    a = _open(srv, target, timeout="1s", max_retries=1)
    srv.state.faults[target.path] = ["slow:3"] * 4
    out = _fresh_out(a, target)
    exc, dt = _bounded(_read(a, target, mode, out))
    assert isinstance(exc, ngffcore.StoreError), exc
    assert exc.key == target.key and target.key in str(exc)
    assert 1.9 < dt < 2.0 + 1.0
    assert _requests_to(srv, target.path) == 2
    assert_out_after_failure(out, _expected(root, target), target)


def test_one_slow_response_is_retried(server):
    srv, root = server
    target = TARGETS["chunk"]
    a = _open(srv, target, timeout="1s", max_retries=2)
    srv.state.faults[target.path] = ["slow:3"]
    exc, dt = _bounded(lambda: np.testing.assert_array_equal(a[target.sel],
                                                             _expected(root, target)))
    assert exc is None, exc
    assert 0.9 < dt < 1.0 + 1.0


def test_retry_timeout_bounds_slow_responses(server):
    """10 retries allowed, but retry_timeout 1.5 s with a 0.5 s timeout: no retry starts
    after 1.5 s, so the read fails within retry_timeout + one timeout + slack."""
    srv, _ = server
    target = TARGETS["chunk"]
    a = _open(srv, target, timeout="500ms", max_retries=10, retry_timeout=1.5)
    srv.state.faults[target.path] = ["slow:3"] * 20
    exc, dt = _bounded(lambda: a[target.sel])
    assert isinstance(exc, ngffcore.StoreError) and "1.1" in str(exc)
    assert dt < 1.5 + 0.5 + 1.0
    assert _requests_to(srv, target.path) <= 5


# --------------------------------------------------------------------------------------
# many chunks, one fault, and the decoded-chunk cache
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name, path, failed", [
    ("v2", "/v2/2.1", (slice(32, 48), slice(16, 32))),
    ("sh", "/sh/c/1/0", (slice(32, 64), slice(0, 48))),
])
def test_a_whole_array_read_with_one_failing_object(server, name, path, failed, mode):
    srv, root = server
    sentinel = 65535 if name == "v2" else -12345.0
    target = Target(name, (slice(None), slice(None)), path, path.split("/", 2)[2], False,
                    failed, sentinel)
    a = _open(srv, target)
    srv.state.latency = 0.01  # the other objects are still arriving when one fails
    srv.state.faults[path] = ["503"]
    out = _fresh_out(a, target)
    exc, _ = _bounded(_read(a, target, mode, out))
    assert isinstance(exc, ngffcore.StoreError) and exc.key == target.key, exc
    assert_out_after_failure(out, _expected(root, target), target)


def _tile_reference(root, level: int, channels: list[int], y: tuple[int, int],
                    x: tuple[int, int]) -> np.ndarray:
    z = zarr.open_array(root / "img.zarr" / str(level), mode="r")
    return np.asarray(z[channels[0]:channels[-1] + 1, 0, y[0]:y[1], x[0]:x[1]])


def test_a_failed_tile_caches_nothing(server):
    """A tile whose second channel's shard fails: StoreError; nothing of that read is kept
    in the image's cache, so the same tile read again asks for that shard again and is
    exact."""
    srv, root = server
    img = ngffcore.open(f"{srv.url}/img.zarr", retry_config=retry(0))
    assert img.cache is not None
    shard = "/img.zarr/0/c/1/0/0/0"
    srv.state.faults[shard] = ["503"]
    exc, _ = _bounded(lambda: img.tile(0, 0, 0, size=32, z=0, channels=[0, 1]))
    assert isinstance(exc, ngffcore.StoreError) and "c/1/0/0/0" in str(exc)
    srv.state.clear()
    tiles: list[np.ndarray] = []
    exc, _ = _bounded(lambda: tiles.append(img.tile(0, 0, 0, size=32, z=0, channels=[0, 1])))
    assert exc is None, exc
    np.testing.assert_array_equal(tiles[0], _tile_reference(root, 0, [0, 1], (0, 32), (0, 32)))
    assert _requests_to(srv, shard) >= 1


def test_a_failed_tile_leaves_nothing_running(server):
    """Channels 0 and 1 are separate reads (planar chunks). Channel 0's shard index fails
    at once; channel 1's index comes 0.5 s later. After tile() raises, no request may still
    be sent: the data request channel 1 would make after its index must never come."""
    srv, _ = server
    img = ngffcore.open(f"{srv.url}/img.zarr", retry_config=retry(0), cache=False)
    srv.state.faults["/img.zarr/0/c/0/0/0/0"] = ["503"]
    srv.state.faults["/img.zarr/0/c/1/0/0/0"] = ["slow:0.5"]
    srv.state.clear()
    # channels in the order [1, 0]: two reads (one per planar channel), in flight together
    exc, _ = _bounded(lambda: img.tile(0, 0, 0, size=16, z=0, channels=[1, 0]))
    assert isinstance(exc, ngffcore.StoreError)
    n = len(srv.state.requests())
    time.sleep(1.0)
    assert srv.state.requests()[n:] == []


def test_a_failed_range_request_leaves_no_task_behind(server):
    """A row of one shard's inner chunks: two ranged GETs in flight together. The first to
    arrive fails (503, no retries), the other is answered 1 s later. When read_async raises,
    no task of that read may still be pending on the loop."""
    srv, root = server
    a = ngffcore.open_array(f"{srv.url}/big", retry_config=retry(0))
    a[0:1, 0:1]  # caches the shard index
    sel = (slice(0, 256), slice(0, 1024))
    assert [r.kind for r in a.plan(sel)] == ["range_get", "range_get"]  # the aim
    srv.state.clear()
    srv.state.faults["/big/c/0/0"] = ["503", "slow:1"]

    async def main() -> tuple[BaseException | None, list[str]]:
        try:
            await a.read_async(sel)
        except ngffcore.StoreError as exc:
            await asyncio.sleep(0.2)  # anything merely finishing its cancellation is done now
            return exc, [repr(t) for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return None, []

    exc, left = asyncio.run(main())
    assert isinstance(exc, ngffcore.StoreError)
    assert left == []
