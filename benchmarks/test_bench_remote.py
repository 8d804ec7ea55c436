"""Remote reads over HTTP: ngffcore against its peers at 20 ms and 100 ms per-request latency.

A child process serves ``benchmarks/data/remote/`` (128 MiB volume, Zarr v2 blosc-zstd and Zarr v3
sharded; ``remote_data.py``) with ``tests/servers.py``'s server (``servers.LatencyServer`` by
default), which sleeps the injected latency in each request's own thread (requests in flight overlap, like round trips to an
object store) and logs every request (``servers.ServerProcess``).

Groups are ``remote <latency>ms/<workload>`` (``remote_suite.WORKLOADS``); rows
(``extra_info["peer"]``, ``remote_suite.PEERS``): ngffcore, ngffcore without a format hint
(open workloads only), zarr-python over obstore's ``HTTPStore``, zarr-python over fsspec/aiohttp,
tensorstore's ``http`` kvstore, zarr-python with the zarrs pipeline over fsspec. All of them: 64
requests in flight where the reader has the knob, 2 decode threads.

Each benchmark: the array is opened (metadata read) outside timing, except in the ``open``
workloads where open + first chunk is the timed call. Then one cold check run, untimed, whose
server log gives the request counts and whose result is compared with ngffcore's local read.
Then the timed rounds; before each (untimed) the reader's caches are dropped and the server log
cleared, and after each the requests it sent are counted, so a round that was not cold shows.

The ``limit`` of a group (in ``extra_info`` of every row) is ``round trips x latency + decode``:
round trips from the request structure and ngffcore's request counts (``remote_suite.limit_for``),
decode = ngffcore's ``prep.run(out)`` of the same chunks read from disk. ``replay`` is ngffcore's
own requests re-sent wave by wave with bare obstore, bodies read and dropped: what this server
and client cost for that request structure, with no planning or decoding.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import pytest

import local_suite as bc
import remote_suite as rc
import remote_data as rd
from request_log import summarize
from servers import ServerProcess

CASES = [
    pytest.param(lat, key, peer, id=f"{key}-{lat}ms-{peer}",
                 marks=pytest.mark.benchmark(group=rc.group_name(lat, wl)))
    for key, wl in rc.WORKLOADS.items()
    for lat in rc.LATENCIES_MS
    for peer in rc.PEERS
    if peer != "ngffcore_probe" or wl.kind == "open"  # the format probe only costs when opening
]


@pytest.fixture(scope="session")
def remote_server() -> Any:
    rd.ensure_remote_data()
    with ServerProcess(rd.ROOT, answer_head=rc.ANSWER_HEAD) as srv:
        yield srv


class Groups:
    """Per-group facts, computed the first time a group is reached (whichever row comes first):
    the reference result, ngffcore's request log, the limit and the replay. Cases run workload by
    workload, so only the current workload's reference is kept."""

    def __init__(self, srv: ServerProcess) -> None:
        self.srv = srv
        self.decode: dict[str, float] = {}
        self.ref_key: str | None = None
        self.ref: Any = None
        self.info: dict[tuple[int, str], dict[str, Any]] = {}

    def reference(self, wl: rc.RemoteWorkload) -> Any:
        if self.ref_key != wl.key:
            self.ref, self.ref_key = None, None
            gc.collect()
            self.ref, self.ref_key = rc.reference(wl), wl.key
        return self.ref

    def get(self, latency_ms: int, wl: rc.RemoteWorkload) -> dict[str, Any]:
        key = (latency_ms, wl.key)
        if key in self.info:
            return self.info[key]
        if wl.key not in self.decode:
            self.decode[wl.key] = rc.decode_seconds(wl)
        lat = latency_ms / 1000
        self.srv.latency = lat
        peer = rc.PEER_IMPLS["ngffcore"]
        runner = rc.make_runner(peer, self.srv.url, wl)
        runner.fn()  # warm: connections, imports
        runner.before_round()
        self.srv.clear()
        runner.fn()
        log = self.srv.log()
        runner.close()
        limit = rc.limit_for(wl, log, lat, self.decode[wl.key])
        replay = rc.replay_seconds(self.srv.url, log, lat)
        self.info[key] = {
            "limit": limit.seconds,
            "limit_rounds": limit.rounds,
            "limit_explain": limit.explain,
            "decode": limit.decode,
            "replay": replay,
        }
        return self.info[key]


@pytest.fixture(scope="session")
def remote_groups(remote_server: ServerProcess) -> Groups:
    return Groups(remote_server)


@pytest.mark.parametrize(("latency_ms", "workload", "peer"), CASES)
def test_remote(benchmark: Any, remote_server: ServerProcess, remote_groups: Groups, remote_notes: list,
                latency_ms: int, workload: str, peer: str) -> None:
    wl = rc.WORKLOADS[workload]
    impl = rc.PEER_IMPLS[peer]
    group = rc.group_name(latency_ms, wl)
    srv = remote_server
    lat = latency_ms / 1000
    bc.import_ngffcore()  # sets ngffcore's pool to 2 threads
    bc.configure_zarr()

    reason = impl.unavailable(wl)
    if reason:
        remote_notes.append({"group": group, "peer": peer, "status": "skipped", "reason": reason})
        pytest.skip(reason)

    info = remote_groups.get(latency_ms, wl)
    ref = remote_groups.reference(wl)
    srv.latency = lat

    # cold check run (untimed): request counts from the server log, result checked
    try:
        runner = rc.make_runner(impl, srv.url, wl)
        runner.before_round()
        srv.clear()
        t0 = time.perf_counter()
        got = runner.fn()
        check_s = time.perf_counter() - t0
    except Exception as exc:  # a peer that cannot read over HTTP: reported, not faked
        if peer.startswith("ngffcore"):
            raise
        msg = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        log = srv.log()
        remote_notes.append({"group": group, "peer": peer, "status": "failed", "reason": msg,
                             "requests": summarize(log, lat)})
        pytest.skip(f"{peer} cannot read over HTTP here: {msg}")
    log = srv.log()
    requests = summarize(log, lat)
    requests["server_cpu"] = srv.cpu_seconds()
    if not bc.same_values(got, ref):
        pytest.fail(f"{peer} result differs from ngffcore's for {group}: {bc.first_mismatch(got, ref)}")
    del got
    gc.collect()

    per_round: list[int] = []
    started = [False]

    def setup() -> None:
        if started[0]:
            per_round.append(len(srv.log()))
        started[0] = True
        runner.before_round()
        srv.clear()

    rounds = rc.rounds_for(check_s)
    benchmark.extra_info.update(
        suite="remote", kind="remote", peer=peer, latency_ms=latency_ms, workload=wl.key,
        note=wl.note, threads=rc.THREADS, concurrency=rc.CONCURRENCY, check_seconds=check_s,
        requests={k: v for k, v in requests.items() if k != "wave_sizes"},
        wave_sizes=requests["wave_sizes"][:40], **info,
    )
    benchmark.pedantic(runner.fn, setup=setup, rounds=rounds, warmup_rounds=0, iterations=1)
    per_round.append(len(srv.log()))
    runner.close()
    benchmark.extra_info["round_requests"] = per_round
    benchmark.extra_info["cold"] = all(n >= requests["total"] for n in per_round)
    gc.collect()
