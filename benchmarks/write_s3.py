"""Workload (d) of the write benchmarks: workload (b) (v3 sharded) written to S3 — moto's
server in a child process, with an injected per-request latency.

moto answers S3 on 127.0.0.1 through a WSGI wrapper (``python write_s3.py PORT LATENCY``) that
sleeps the latency in each request's own thread before moto handles it (werkzeug's threaded
server: requests in flight overlap, like round trips to a real object store) and counts every
request by method. ``/_bench/counts`` and ``/_bench/clear`` (no latency, not counted) read and
reset the counts, so each writer's requests are counted by the server, independently of
the writer's own statistics.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import local_suite as bc  # noqa: E402

BUCKET = "ngff-write-bench"
REGION = "us-east-1"
KEY_ID, SECRET = "test", "test"
LATENCY_MS = int(os.environ.get("NGFF_BENCH_S3_LATENCY", "20"))
#: Requests in flight for every writer that has the knob (as the remote read suite).
CONCURRENCY = int(os.environ.get("NGFF_BENCH_CONCURRENCY", "64"))
PEERS = ("ngffcore", "tensorstore", "zarr", "zarrs")


def _serve(port: int, latency: float) -> None:
    from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                               create_backend_app)
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path in ("/_bench/counts", "/_bench/clear"):
            with lock:
                body = json.dumps(dict(counts)).encode()
                if path == "/_bench/clear":
                    counts.clear()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        with lock:
            counts[environ["REQUEST_METHOD"]] += 1
        time.sleep(latency)
        return app(environ, start_response)

    srv = make_server("127.0.0.1", port, wrapped, threaded=True, request_handler=MotoRequestHandler)
    srv.serve_forever()


class MotoServer:
    """moto's S3 with ``latency_ms`` per request in a child process; ``counts()``/``clear()``."""

    def __init__(self, latency_ms: int = LATENCY_MS) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.latency_ms = latency_ms
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(self.port),
                                      str(latency_ms / 1e3)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                self._call("counts")
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.close()
            raise RuntimeError("moto server did not start")
        self.client = self._boto()
        self.client.create_bucket(Bucket=BUCKET)

    def _call(self, what: str) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.endpoint}/_bench/{what}", timeout=5) as r:
            return dict(json.loads(r.read()))

    def counts(self) -> dict[str, int]:
        return self._call("counts")

    def clear(self) -> None:
        self._call("clear")

    def _boto(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)

    def empty(self, prefix: str) -> None:
        """Delete every object under ``prefix`` (untimed, between rounds)."""
        while True:
            got = self.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
            keys = [{"Key": o["Key"]} for o in got.get("Contents", [])]
            if not keys:
                return
            self.client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})

    def objects(self, prefix: str) -> dict[str, bytes]:
        got = self.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return {o["Key"][len(prefix):]: self.client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
                for o in got.get("Contents", [])}

    # -- options for each client ------------------------------------------------------------

    def ngff_options(self) -> dict[str, Any]:
        return dict(endpoint=self.endpoint, region=REGION, access_key_id=KEY_ID, secret_access_key=SECRET,
                    client_options={"allow_http": True})

    def obstore(self, prefix: str) -> Any:
        from obstore.store import S3Store

        return S3Store(BUCKET, prefix=prefix, **self.ngff_options())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def s3_writer(peer: str, layout: Any, srv: MotoServer, prefix: str, vol: np.ndarray
              ) -> tuple[Callable[[], Any], Callable[[], dict[str, int] | None]]:
    """(timed call: create + write the whole volume under ``prefix``, the writer's own request
    counts after it, where it keeps any)."""
    import write_suite as ws

    shape = vol.shape
    if peer == "ngffcore":
        holder: list[Any] = []

        def fn() -> None:
            a = ws.ngffcore_create(layout, f"s3://{BUCKET}/{prefix}", shape, concurrency=CONCURRENCY,
                                   **srv.ngff_options())
            holder[:] = [a]
            a[...] = vol

        def stats() -> dict[str, int] | None:
            return dict(holder[0].stats.snapshot()) if holder and holder[0].stats is not None else None

        return fn, stats
    if peer in ("zarr", "zarrs"):
        zarr = bc.configure_zarr()
        from zarr.storage import ObjectStore

        cfg = {"async.concurrency": CONCURRENCY, **(bc.ZARRS_CONFIG if peer == "zarrs" else {})}

        def fn() -> None:
            with zarr.config.set(cfg):
                z = ws.zarr_create(layout, ObjectStore(srv.obstore(prefix)), shape, zarrs=peer == "zarrs")
                z[...] = vol

        return fn, lambda: None
    if peer == "tensorstore":
        import tensorstore as ts

        ctx = ts.Context({"data_copy_concurrency": {"limit": bc.THREADS},
                          "s3_request_concurrency": {"limit": CONCURRENCY},
                          "aws_credentials": {"type": "environment"},
                          "cache_pool": {"total_bytes_limit": 0}})
        os.environ.setdefault("AWS_ACCESS_KEY_ID", KEY_ID)
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", SECRET)
        kv = {"driver": "s3", "bucket": BUCKET, "path": prefix, "endpoint": srv.endpoint,
              "aws_region": REGION}

        def fn() -> None:
            ws.ts_create(layout, kv, shape, context=ctx).write(vol).result()

        return fn, lambda: None
    raise ValueError(peer)


def putter(srv: MotoServer, prefix: str, objects: dict[str, bytes]) -> Callable[[], None]:
    """The floor of (d): PUT already-encoded objects (bare obstore, ``CONCURRENCY`` in flight)."""
    import obstore

    store = srv.obstore(prefix)

    async def run() -> None:
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(key: str, data: bytes) -> None:
            async with sem:
                await obstore.put_async(store, key, data, use_multipart=False)

        await asyncio.gather(*(one(k, v) for k, v in objects.items()))

    return lambda: asyncio.run(run())


if __name__ == "__main__":
    _serve(int(sys.argv[1]), float(sys.argv[2]))
