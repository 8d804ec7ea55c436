"""The benchmarks' HTTP server, run in a child process.

The benchmark process must not host the server: its handler threads would compete with the
reader under test for the GIL (zarr-python, fsspec and ngffcore all run Python per request)
and the time they hold it would be charged to the reader. The child answers commands (JSON
lines on its stdin/stdout):

* ``latency(seconds)``: the per-request latency the server injects (slept in the request's
  thread, so requests in flight overlap, like round trips to a remote store);
* ``clear()`` / ``log()``: the request log, each entry stamped with its arrival time on the
  server's clock (used to count sequential request *waves*);
* ``cpu_seconds()``: CPU time the server process used since ``clear()``.

Which server (``NGFF_BENCH_SERVER``):

* ``lean`` (default): ``latency_server.LatencyServer``, a thread per connection that sends byte
  ranges with ``sendfile``; see its docstring for why (the old server serialised each wave's
  responses under its GIL, adding ~4 ms to a 12-request wave for every engine).
* ``threaded``: ``tests/servers.py``'s ``RangeServer`` (the tests' server), with these changes
  made in the child only:

  * the log list is replaced by one that also records arrival times;
  * ``TCP_NODELAY`` on every connection. ``BaseHTTPRequestHandler`` writes headers and body in
    two sends; with Nagle on, a small body (metadata, a shard index, a 404) waits for the ACK
    of the headers, which the client delays by up to 40 ms (the 4-inner-chunk sharded read at
    20 ms took ~91 ms instead of ~51 ms). ``NGFF_BENCH_NAGLE=1`` leaves Nagle on;
  * a listen backlog of 1024 instead of ``socketserver``'s 5;
  * with ``answer_head``, HEAD is answered like GET without a body (200 + Content-Length, or
    404) instead of 405.

Both answer HEAD with ``answer_head`` (real servers do, and zarrs sends one before every GET)
and log it, so HEADs show in the request counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESTS_DIR = Path(__file__).resolve().parent.parent / "tests"


@dataclass(frozen=True)
class LoggedRequest:
    t: float  # arrival on the server's monotonic clock, seconds
    method: str
    path: str
    range: str | None
    status: int  # derived: 405 for HEAD (unless answered), 404 for a missing file, 206/200


class _TimedLog(list):
    """A list that remembers when each entry was appended (the server appends on arrival)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: Any) -> None:  # called under the server's lock
        self.times.append(time.monotonic())
        super().append(item)

    def clear(self) -> None:
        self.times.clear()
        super().clear()


def _status(root: str, method: str, path: str, rng: str | None, answer_head: bool) -> int:
    if method == "HEAD" and not answer_head:
        return 405
    if method not in ("GET", "HEAD"):
        return 501
    rel = os.path.normpath(path.lstrip("/"))
    if rel.startswith("..") or not os.path.isfile(os.path.join(root, rel)):
        return 404
    return 206 if rng else 200


def _answer_head(handler_cls: Any, root: str) -> None:
    """Make HEAD answer like GET without a body (200 + Content-Length, or 404), as real HTTP
    servers and object stores do, instead of RangeServer's 405. Still logged as a HEAD."""

    def do_HEAD(self: Any) -> None:
        self._record()
        rel = os.path.normpath(self.path.split("?", 1)[0].lstrip("/"))
        path = os.path.join(root, rel)
        if rel.startswith("..") or not os.path.isfile(path):
            return self._plain(404)
        self.send_response(200)
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()

    handler_cls.do_HEAD = do_HEAD


def _serve(root: str, answer_head: bool) -> None:  # child process: JSON commands on stdin, one reply line each
    if server_kind() == "threaded":
        return _serve_threaded(root, answer_head)
    from latency_server import LatencyServer, entries

    srv = LatencyServer(root, answer_head=answer_head)
    state = srv.state

    def clear() -> None:
        with state.lock:
            state.log.clear()

    def log() -> list[Any]:
        return entries(state)

    def set_latency(seconds: float) -> None:
        state.latency = seconds

    with srv:
        _command_loop(srv.url, set_latency, clear, log)


def _command_loop(url: str, set_latency: Any, clear: Any, log: Any) -> None:
    out = sys.stdout

    def reply(value: Any) -> None:
        out.write(json.dumps(value) + "\n")
        out.flush()

    def cpu() -> float:
        return time.process_time()  # user + system, all threads, ns resolution (os.times: 10 ms)

    cpu0 = cpu()
    reply(url)
    for line in sys.stdin:
        cmd, arg = json.loads(line)
        if cmd == "latency":
            set_latency(float(arg))
            reply(None)
        elif cmd == "clear":
            clear()
            cpu0 = cpu()
            reply(None)
        elif cmd == "cpu":
            reply(cpu() - cpu0)
        elif cmd == "log":
            reply(log())
        elif cmd == "stop":
            reply(None)
            return


def _serve_threaded(root: str, answer_head: bool) -> None:
    """``tests/servers.py``'s ``RangeServer`` (the benchmarks' server until 2026-11-21)."""
    sys.path.insert(0, str(TESTS_DIR))
    import servers

    servers._QuietServer.request_queue_size = 1024
    srv = servers.RangeServer(root)
    if os.environ.get("NGFF_BENCH_NAGLE", "") != "1":
        srv._server.RequestHandlerClass.disable_nagle_algorithm = True  # TCP_NODELAY
    if answer_head:
        _answer_head(srv._server.RequestHandlerClass, root)
    log = _TimedLog()
    srv.state.log = log

    def set_latency(seconds: float) -> None:
        srv.state.latency = seconds

    def entries() -> list[Any]:
        with srv.state.lock:
            pairs = list(zip(log.times, list(log)))
        return [(t, r.method, r.path, r.range, _status(root, r.method, r.path, r.range, answer_head))
                for t, r in pairs]

    with srv:
        _command_loop(srv.url, set_latency, srv.state.clear, entries)


def server_kind() -> str:
    """Which server the benchmarks start (``NGFF_BENCH_SERVER``): ``lean`` or ``threaded``."""
    kind = os.environ.get("NGFF_BENCH_SERVER", "lean")
    if kind not in ("lean", "threaded"):
        raise ValueError(f"NGFF_BENCH_SERVER={kind!r}: expected 'lean' or 'threaded'")
    return kind


def describe_server() -> str:
    """One phrase naming the server, for the reports."""
    if server_kind() == "threaded":
        return ("`tests/servers.py`'s `RangeServer` (`http.server`, whole object read per request) "
                "in a child process (`NGFF_BENCH_SERVER=threaded`)")
    return ("`latency_server.LatencyServer` in a child process (a thread per connection, "
            "byte ranges sent with `sendfile`)")


class ServerProcess:
    """``with ServerProcess(root) as srv: srv.url`` — ``root`` served over HTTP/1.1 on 127.0.0.1
    by a child Python process (``python remote_server.py ROOT``)."""

    def __init__(self, root: str | Path, latency: float = 0.0, answer_head: bool = False) -> None:
        self.root = str(root)
        self.answer_head = answer_head
        self._proc = subprocess.Popen(
            [sys.executable, "-u", str(Path(__file__).resolve()), self.root] + (["--answer-head"] if answer_head else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        line = self._proc.stdout.readline() if self._proc.stdout else ""
        if not line:
            self._proc.kill()
            raise RuntimeError("range server process did not start")
        self.url: str = json.loads(line)
        self._latency = 0.0
        self.latency = latency

    def _call(self, cmd: str, arg: Any = None) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps([cmd, arg]) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"range server process exited (code {self._proc.poll()})")
        return json.loads(line)

    @property
    def latency(self) -> float:
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._call("latency", seconds)
        self._latency = seconds

    def clear(self) -> None:
        self._call("clear")

    def log(self) -> list[LoggedRequest]:
        return [LoggedRequest(*e) for e in self._call("log")]

    def cpu_seconds(self) -> float:
        """CPU time (user + system, all threads) the server process used since ``clear()``: the
        server shares the machine's cores with the reader being measured."""
        return float(self._call("cpu"))

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._call("stop")
            except (OSError, RuntimeError, ValueError):
                pass
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        for f in (self._proc.stdin, self._proc.stdout):
            if f is not None:
                f.close()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Summaries of a request log
# ---------------------------------------------------------------------------------------------


def split_waves(log: list[LoggedRequest], latency: float) -> list[list[LoggedRequest]]:
    """The log cut into *waves*: a request arriving within ``latency / 2`` of the previous
    arrival belongs to the same wave. With injected latency L, a request that could only be
    sent after an earlier response arrived starts a new wave (it cannot arrive sooner than L
    after the earlier one), so the number of waves is the number of sequential round trips the
    reader needed; requests sent together but spread out by the reader itself may also split."""
    out: list[list[LoggedRequest]] = []
    gap = max(latency / 2, 1e-3)
    last = None
    for r in sorted(log, key=lambda r: r.t):
        if last is None or r.t - last > gap:
            out.append([])
        out[-1].append(r)
        last = r.t
    return out


def waves(log: list[LoggedRequest], latency: float) -> list[int]:
    """Requests per wave (see ``split_waves``)."""
    return [len(w) for w in split_waves(log, latency)]


def summarize(log: list[LoggedRequest], latency: float) -> dict[str, Any]:
    """Counts by kind: whole-object GET, ranged GET (``bytes=a-b``/``a-``), suffix GET
    (``bytes=-n``), HEAD, 404 answers, and any other method; plus the waves."""
    c: Counter = Counter()
    for r in log:
        if r.method == "GET":
            if r.range is None:
                c["get"] += 1
            elif r.range.strip().startswith("bytes=-"):
                c["suffix"] += 1
            else:
                c["ranged"] += 1
        elif r.method == "HEAD":
            c["head"] += 1
        else:
            c["other"] += 1
        if r.status == 404:
            c["404"] += 1
    w = waves(log, latency)
    return {
        "total": len(log),
        "get": c["get"],
        "ranged": c["ranged"],
        "suffix": c["suffix"],
        "head": c["head"],
        "other": c["other"],
        "404": c["404"],
        "waves": len(w),
        "wave_sizes": w,
    }


if __name__ == "__main__":
    _serve(sys.argv[1], "--answer-head" in sys.argv[2:])
