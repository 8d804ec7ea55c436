"""Shared pieces of the remote-read benchmarks: settings, workloads, peers, limit, replay.

Used by ``test_bench_remote.py``. Every peer reads the same HTTP server (``servers.ServerProcess``), which
serves ``benchmarks/data/remote/`` with an injected per-request latency; see the module
docstring of ``test_bench_remote.py`` and ``benchmarks/README.md``.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import local_suite as bc
from prefetch import prefetch
import remote_data as rd
from request_log import split_waves
from servers import Request

#: Requests in flight, for every peer that has such a knob (ngffcore ``concurrency``, zarr-python
#: ``async.concurrency``, tensorstore ``http_request_concurrency``).
CONCURRENCY = int(os.environ.get("NGFF_BENCH_CONCURRENCY", "64"))
#: Decode threads, for every peer (same knob as the local suite).
THREADS = bc.THREADS
#: Injected latencies, milliseconds.
LATENCIES_MS = tuple(int(x) for x in os.environ.get("NGFF_BENCH_LATENCIES", "20,100").split(",") if x.strip())
#: Timed rounds per benchmark (at most) and the wall-clock budget of one benchmark's timed
#: rounds: a peer whose cold check run took t seconds gets min(ROUNDS, budget / t) rounds, at
#: least 1 (so a peer needing seconds per read does not blow the suite's time budget).
ROUNDS = 7
ROUND_BUDGET_S = float(os.environ.get("NGFF_BENCH_REMOTE_BUDGET", "4"))
#: RangeServer answers HEAD with 405 (its tests assert nobody sends one). Real servers answer
#: it; by default the benchmark server does too (``NGFF_BENCH_HEAD=405`` keeps the 405).
ANSWER_HEAD = os.environ.get("NGFF_BENCH_HEAD", "answer").strip() != "405"
DECODE_REPEATS = 5
REPLAY_REPEATS = 3

METADATA_NAMES = ("zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata")


def rounds_for(check_seconds: float) -> int:
    n = max(1, min(ROUNDS, int(ROUND_BUDGET_S / max(check_seconds, 1e-6))))
    return bc.rounds_for(n)


# ---------------------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------------------

ALL = (slice(None), slice(None), slice(None))


@dataclass(frozen=True)
class RemoteWorkload:
    key: str  # group name part, e.g. "v2-roi"
    dataset: str  # remote_data.DATASETS key
    kind: str  # "read": metadata cached before timing; "open": open + read, timed together
    sel: tuple[Any, ...]
    structure: str  # "chunks", "shard-partial" (index, then data) or "shard-whole"
    note: str

    @property
    def spec(self) -> rd.RemoteSpec:
        return rd.DATASETS[self.dataset]


def _workloads() -> dict[str, RemoteWorkload]:
    v2, v3 = rd.DATASETS["v2"], rd.DATASETS["v3"]
    roi = bc.roi_selection(rd.SHAPE, v2.chunks, 64)
    n_roi = bc.chunks_touched(roi, rd.SHAPE, v2.chunks)
    first2 = tuple(slice(0, c) for c in v2.chunks)
    first3 = tuple(slice(0, c) for c in v3.chunks)
    # a 2 x 2 block of inner chunks of shard c/1/1/1, on one inner chunk's plane range
    z0, y0, x0 = v3.shards[0], v3.shards[1] + v3.chunks[1], v3.shards[2] + v3.chunks[2]  # type: ignore[index]
    sroi = (slice(z0, z0 + v3.chunks[0]), slice(y0, y0 + 2 * v3.chunks[1]), slice(x0, x0 + 2 * v3.chunks[2]))

    def fmt(sel: tuple[Any, ...]) -> str:
        return "[" + ", ".join(f"{s.start}:{s.stop}" for s in sel) + "]"

    n_shards = math.prod(v3.grid)
    inner_per_shard = math.prod(s // c for s, c in zip(v3.shards or (), v3.chunks))
    ws = [
        RemoteWorkload("v2-roi", "v2", "read", roi, "chunks",
                       f"unaligned box {fmt(roi)}, {n_roi} chunks of 2 MiB"),
        RemoteWorkload("v2-full", "v2", "read", ALL, "chunks", f"whole array, {math.prod(v2.grid)} chunks"),
        RemoteWorkload("v3-full", "v3", "read", ALL, "shard-whole",
                       f"whole array, {n_shards} shards of {inner_per_shard} inner chunks"),
        RemoteWorkload("v3-shard-roi", "v3", "read", sroi, "shard-partial",
                       f"{fmt(sroi)}: 2 x 2 inner chunks of shard c/1/1/1, one inner-chunk plane range"),
        RemoteWorkload("v2-open", "v2", "open", first2, "chunks",
                       f"cold open + first chunk {fmt(first2)} (array opened inside the timed call)"),
        RemoteWorkload("v3-open", "v3", "open", first3, "shard-partial",
                       f"cold open + first inner chunk {fmt(first3)} (opened inside the timed call)"),
    ]
    return {w.key: w for w in ws}


WORKLOADS = _workloads()


def group_name(latency_ms: int, wl: RemoteWorkload) -> str:
    return f"remote {latency_ms}ms/{wl.key}"


# ---------------------------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------------------------

#: Rows of every group, in display order.
PEERS = ("ngffcore", "ngffcore_probe", "zarr", "zarr_fsspec", "tensorstore", "zarrs")
PEER_TITLES = {
    "ngffcore": "ngffcore",
    "ngffcore_probe": "ngffcore[probe]",
    "zarr": "zarr+obstore",
    "zarr_fsspec": "zarr+fsspec",
    "tensorstore": "tensorstore",
    "zarrs": "zarrs+fsspec",
}
HTTP_OPTIONS: Any = {"allow_http": True}


class Peer:
    """One reader. ``open`` reads metadata (untimed for ``read`` workloads), ``read`` one
    selection, ``reset`` drops whatever the reader caches between rounds (chunk data, shard
    indexes) so every round is cold; metadata stays cached."""

    name = ""

    def unavailable(self, wl: RemoteWorkload) -> str | None:
        return None

    def open(self, base_url: str, wl: RemoteWorkload) -> Any:
        raise NotImplementedError

    def read(self, handle: Any, sel: tuple[Any, ...]) -> np.ndarray:
        raise NotImplementedError

    def reset(self, handle: Any) -> None:
        pass

    def close(self, handle: Any) -> None:
        pass


class NgffPeer(Peer):
    """``ngffcore.open_array(url, zarr_format=…, client_options={"allow_http": True},
    concurrency=64)``; ``a[sel]``. ``probe``: no ``zarr_format`` (v2 arrays cost a 404 on
    ``zarr.json`` first), the call a user writes without knowing the format."""

    def __init__(self, probe: bool = False) -> None:
        self.probe = probe
        self.name = "ngffcore_probe" if probe else "ngffcore"

    def open(self, base_url: str, wl: RemoteWorkload) -> Any:
        import ngffcore

        fmt = None if self.probe else wl.spec.zarr_format
        return ngffcore.open_array(f"{base_url}/{wl.dataset}.zarr", zarr_format=fmt, concurrency=CONCURRENCY,
                                   client_options=HTTP_OPTIONS)

    def read(self, handle: Any, sel: tuple[Any, ...]) -> np.ndarray:
        return handle[sel]

    def reset(self, handle: Any) -> None:
        handle._index_cache.clear()  # shard indexes (the only thing ngffcore caches per array)
        if handle.stats is not None:
            handle.stats.reset()


class ZarrPeer(Peer):
    """zarr-python, default ``BatchedCodecPipeline``; ``async.concurrency`` = 64 (set around every
    call), ``threading.max_workers`` = 2 (set once for the session by ``conftest.py``).

    * ``zarr``: ``zarr.storage.ObjectStore(obstore.store.HTTPStore.from_url(url, client_options=
      {"allow_http": True}))``
    * ``zarr_fsspec``: ``zarr.storage.FsspecStore.from_url(url)`` (fsspec ``HTTPFileSystem``, aiohttp)
    * ``zarrs``: ``FsspecStore`` + ``zarrs.ZarrsCodecPipeline`` (strict: no fallback). zarrs-python
      only takes a ``LocalStore`` or an ``FsspecStore`` over ``HTTPFileSystem`` (which it replaces
      by its own HTTP client, opendal); its only concurrency knob is its thread pool
      (``threading.max_workers`` = 2), ``chunk_concurrent_maximum`` = 64.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def unavailable(self, wl: RemoteWorkload) -> str | None:
        if self.name in ("zarr_fsspec", "zarrs"):
            try:
                import aiohttp  # noqa: F401
                import fsspec  # noqa: F401
            except ImportError as exc:
                return f"needs fsspec + aiohttp ({exc})"
        if self.name == "zarrs":
            try:
                import zarrs  # noqa: F401
            except ImportError as exc:
                return f"zarrs not installed ({exc})"
        return None

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"async.concurrency": CONCURRENCY}
        if self.name == "zarrs":
            cfg.update(bc.ZARRS_CONFIG)
            cfg["codec_pipeline.chunk_concurrent_maximum"] = CONCURRENCY
        return cfg

    def store(self, url: str) -> Any:
        import zarr

        if self.name == "zarr":
            from obstore.store import HTTPStore

            return zarr.storage.ObjectStore(HTTPStore.from_url(url, client_options=HTTP_OPTIONS), read_only=True)
        return zarr.storage.FsspecStore.from_url(url, read_only=True)

    def open(self, base_url: str, wl: RemoteWorkload) -> Any:
        zarr = bc.configure_zarr()
        with zarr.config.set(self.config()):
            arr = zarr.open_array(self.store(f"{base_url}/{wl.dataset}.zarr"), mode="r",
                                  zarr_format=wl.spec.zarr_format)
        pipe = arr._async_array.codec_pipeline
        if self.name == "zarrs":
            assert type(pipe).__name__ == "ZarrsCodecPipeline" and pipe.impl is not None, pipe
        else:
            assert type(pipe).__name__ == "BatchedCodecPipeline", pipe
        return arr

    def read(self, handle: Any, sel: tuple[Any, ...]) -> np.ndarray:
        import zarr

        with zarr.config.set({"async.concurrency": CONCURRENCY}):
            return handle[sel]


class TensorStorePeer(Peer):
    """``ts.open({"driver": "zarr"|"zarr3", "kvstore": {"driver": "http", "base_url": url}})``,
    context ``http_request_concurrency`` = 64, ``data_copy_concurrency`` = 2, ``cache_pool`` 0
    bytes (no chunk or shard-index cache: every round is cold); ``t[sel].read().result()``."""

    name = "tensorstore"

    def open(self, base_url: str, wl: RemoteWorkload) -> Any:
        import tensorstore as ts

        ctx = ts.Context({
            "http_request_concurrency": {"limit": CONCURRENCY},
            "data_copy_concurrency": {"limit": THREADS},
            "cache_pool": {"total_bytes_limit": 0},
        })
        spec = {
            "driver": "zarr" if wl.spec.zarr_format == 2 else "zarr3",
            "kvstore": {"driver": "http", "base_url": f"{base_url}/{wl.dataset}.zarr"},
        }
        return ts.open(spec, read=True, context=ctx).result()

    def read(self, handle: Any, sel: tuple[Any, ...]) -> np.ndarray:
        return handle[sel].read().result()


PEER_IMPLS: dict[str, Peer] = {
    "ngffcore": NgffPeer(),
    "ngffcore_probe": NgffPeer(probe=True),
    "zarr": ZarrPeer("zarr"),
    "zarr_fsspec": ZarrPeer("zarr_fsspec"),
    "tensorstore": TensorStorePeer(),
    "zarrs": ZarrPeer("zarrs"),
}


@dataclass
class Runner:
    """``fn()`` is what is timed; ``before_round()`` makes the next round cold (untimed)."""

    fn: Callable[[], np.ndarray]
    before_round: Callable[[], None]
    close: Callable[[], None]


def make_runner(peer: Peer, base_url: str, wl: RemoteWorkload) -> Runner:
    sel = wl.sel
    if wl.kind == "open":
        def fn() -> np.ndarray:
            h = peer.open(base_url, wl)
            out = peer.read(h, sel)
            peer.close(h)
            return out

        return Runner(fn, lambda: None, lambda: None)
    handle = peer.open(base_url, wl)

    def fn_read() -> np.ndarray:
        return peer.read(handle, sel)

    return Runner(fn_read, lambda: peer.reset(handle), lambda: peer.close(handle))


# ---------------------------------------------------------------------------------------------
# Limit: round trips of the request structure x latency + ngffcore's decode of local bytes
# ---------------------------------------------------------------------------------------------


def is_metadata(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in METADATA_NAMES


def decode_seconds(wl: RemoteWorkload) -> float:
    """Median of ``prep.run(out)`` after ``prep = prefetch(a, sel)`` on the array opened from
    disk: ngffcore's decode + scatter of the chunk bytes, no I/O, ``set_num_threads(2)``."""
    ngffcore = bc.import_ngffcore()
    arr = ngffcore.open_array(str(wl.spec.path))
    prep = prefetch(arr, wl.sel)
    out = np.empty(prep.shape, arr.dtype)
    prep.run(out)  # warm
    times = []
    for _ in range(DECODE_REPEATS):
        t0 = time.perf_counter()
        prep.run(out)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@dataclass
class Limit:
    rounds: int
    latency: float
    decode: float
    explain: str

    @property
    def seconds(self) -> float:
        return self.rounds * self.latency + self.decode


def limit_for(wl: RemoteWorkload, log: list[Request], latency: float, decode: float) -> Limit:
    """Round trips the request structure needs, with ``CONCURRENCY`` requests per round trip;
    request counts from ngffcore's run (server log).

    * ``chunks``: ``ceil(chunk GETs / concurrency)``;
    * ``shard-partial``: index round(s) then data round(s): ``ceil(index GETs / c) +
      ceil(data GETs / c)``;
    * ``shard-whole`` (every needed shard is read whole): one GET per shard, whose response ends
      with the index, so ``ceil(shards / c)`` — no separate index round is needed;
    * ``open`` workloads: one more round for the metadata document (format known).
    """
    data = [r for r in log if not is_metadata(r.path)]
    c = CONCURRENCY
    if wl.structure == "chunks":
        rounds = math.ceil(len(data) / c)
        why = f"ceil({len(data)} GETs / {c})"
    elif wl.structure == "shard-partial":
        idx = [r for r in data if r.range and r.range.strip().startswith("bytes=-")]
        rest = len(data) - len(idx)
        rounds = math.ceil(len(idx) / c) + math.ceil(rest / c)
        why = f"ceil({len(idx)} index GETs / {c}) + ceil({rest} data GETs / {c})"
    elif wl.structure == "shard-whole":
        shards = len({r.path for r in data})
        rounds = math.ceil(shards / c)
        why = f"ceil({shards} whole-shard GETs / {c})"
    else:
        raise ValueError(wl.structure)
    if wl.kind == "open":
        rounds += 1
        why = "1 metadata + " + why
    return Limit(rounds, latency, decode, f"{rounds} RT = {why}")


# ---------------------------------------------------------------------------------------------
# Replay: ngffcore's own requests, wave by wave, with nothing but obstore (no decode)
# ---------------------------------------------------------------------------------------------


def _options(r: Request) -> Any:
    if not r.range:
        return None
    spec = r.range.strip().removeprefix("bytes=")
    a, b = spec.split("-", 1)
    if not a:
        return {"range": {"suffix": int(b)}}
    if not b:
        return {"range": {"offset": int(a)}}
    return {"range": (int(a), int(b) + 1)}


def replay_seconds(base_url: str, log: list[Request], latency: float) -> float:
    """Median time to send the same requests as ``log`` in the same sequential waves (each wave
    all at once, up to ``CONCURRENCY``), reading the bodies and nothing else: what this server
    and the HTTP client cost for ngffcore's request structure, without decode or planning."""
    import obstore
    from obstore.store import HTTPStore

    store = HTTPStore.from_url(base_url, client_options=HTTP_OPTIONS)
    waves = split_waves(log, latency)

    async def one(r: Request, sem: asyncio.Semaphore) -> None:
        async with sem:
            try:
                res = await obstore.get_async(store, r.path.lstrip("/"), options=_options(r))
                await res.bytes_async()
            except FileNotFoundError:
                pass

    async def run() -> None:
        sem = asyncio.Semaphore(CONCURRENCY)
        for wave in waves:
            await asyncio.gather(*(one(r, sem) for r in wave if r.method == "GET"))

    asyncio.run(run())  # warm the connection pool
    times = []
    for _ in range(REPLAY_REPEATS):
        t0 = time.perf_counter()
        asyncio.run(run())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------
# Per-group facts computed once (reference, ngffcore's requests, limit, replay)
# ---------------------------------------------------------------------------------------------


@dataclass
class GroupInfo:
    reference: np.ndarray
    ngff_log: list[Request]
    limit: Limit
    replay: float
    extra: dict[str, Any] = field(default_factory=dict)


def reference(wl: RemoteWorkload) -> np.ndarray:
    """ngffcore's read of the selection from the local copy (checked against zarr-python's local
    read of the same files once, so the remote rows are compared with independent data)."""
    ngffcore = bc.import_ngffcore()
    ref = ngffcore.open_array(str(wl.spec.path))[wl.sel]
    zarr = bc.configure_zarr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zref = zarr.open_array(str(wl.spec.path), mode="r")[wl.sel]
    if not bc.same_values(np.asarray(zref), ref):
        raise AssertionError(f"ngffcore's local read differs from zarr-python's for {wl.key}: "
                             f"{bc.first_mismatch(np.asarray(zref), ref)}")
    return ref
