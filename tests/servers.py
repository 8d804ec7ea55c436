"""The HTTP servers tests and benchmarks talk to, on 127.0.0.1; one module, one request log.

* :class:`RangeServer`: a small HTTP/1.1 file server (``http.server``) with Range support
  (``bytes=a-b``, ``a-``, ``-n``), injected latency and jitter, optional ETag/Last-Modified,
  and per-path fault injection. It is ours rather than a library's so each test can assert
  the exact requests a read sent.
* :class:`LatencyServer`: a lean server for the benchmarks. ``http.server`` parses headers
  with the ``email`` package and reads, slices and writes each object in Python under the
  server's GIL, so the responses of one wave leave one after another; an object store answers
  requests independently, which is what the latency models. Here a thread per connection
  parses only what it needs, sleeps the latency counted from the request's arrival (GIL
  released) and sends the byte range with ``os.sendfile``.
* :class:`ServerProcess`: either server in a child process (``python servers.py ROOT``), so
  its threads do not take the GIL from the reader being measured; commands go as JSON lines.

Both servers log every request as a :class:`Request` stamped with its arrival time
(``time.monotonic``) and the status answered; both refuse HEAD with 405 unless ``answer_head``
(then HEAD is answered like GET without a body, as real servers do; still logged).
"""

from __future__ import annotations

import email.utils
import http.server
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    t: float = 0.0  # arrival on the server's monotonic clock, seconds
    status: int = 0  # the status answered (0: none, e.g. the connection was reset)


@dataclass
class ServerState:
    root: str
    latency: float = 0.0
    jitter: float = 0.0  # extra random delay in [0, jitter): shuffles response order
    validators: bool = False  # send ETag and Last-Modified with every object
    answer_head: bool = False  # answer HEAD like GET without a body, not 405
    log: list[Request] = field(default_factory=list)
    # path -> faults consumed one per request: "500", "503", "403", "401", "reset",
    # "truncate", "slow:<seconds>"; and (tests/store/test_faults.py):
    #   "<status>"          any other 3-digit status (e.g. "502", "504", "429"), empty body
    #   "reset-body"        headers and half the body, then a TCP reset
    #   "stall:<seconds>"   headers and half the body, then a pause, then the rest
    #   "overlong"          the body followed by junk bytes beyond its Content-Length
    #   "overlong-close"    no Content-Length: the body plus junk, delimited by closing
    #   "range-shift"       a ranged answer one byte later than asked (Content-Range and
    #                       body agree with each other, not with the request)
    #   "range-total"       a ranged answer whose Content-Range states a wrong object size
    #   "range-ignored"     200 with the whole object, as if Range were not supported
    #   "no-content-range"  206 without a Content-Range header
    faults: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, method: str, path: str, rng: str | None) -> tuple[Request, str | None]:
        """Log a request on arrival; the fault queued for its path, if any, is consumed."""
        entry = Request(method, path, rng, time.monotonic())
        with self.lock:
            self.log.append(entry)
            queue = self.faults.get(path)
            fault = queue.pop(0) if queue else None
        return entry, fault

    def requests(self, method: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.log if method is None or r.method == method]

    def counts(self) -> Counter:
        with self.lock:
            return Counter(r.method for r in self.log)

    def clear(self) -> None:
        with self.lock:
            self.log.clear()

    def reset(self) -> None:
        """Back to a plain server between tests: empty log, no faults, no latency/jitter."""
        with self.lock:
            self.log.clear()
            self.faults.clear()
        self.latency = 0.0
        self.jitter = 0.0


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """A ``Range`` header (``bytes=a-b``, ``a-``, ``-n``) over an object of ``size`` bytes:
    the half-open ``(start, stop)`` to send, or None to answer 416."""
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    a, b = m.groups()
    if not a:
        start, stop = max(0, size - int(b)), size
    else:
        start, stop = int(a), min(size, int(b) + 1 if b else size)
    if start >= size or start >= stop:
        return None
    return start, stop


def _file(root: str, path: str) -> str | None:
    """The file under ``root`` that the (decoded) request path names; None when there is
    none or the path escapes the root."""
    rel = os.path.normpath(path.lstrip("/"))
    full = os.path.join(root, rel)
    return None if rel.startswith("..") or not os.path.isfile(full) else full


def _handler(state: ServerState, nagle: bool) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in two sends: with Nagle on, a small body waits for the
        # client's delayed ACK (up to 40 ms) and distorts latency measurements
        disable_nagle_algorithm = not nagle
        _entry: Request | None = None

        def log_message(self, *args: object) -> None:
            pass

        def send_response(self, code: int, message: str | None = None) -> None:
            if self._entry is not None:
                self._entry.status = code
            super().send_response(code, message)

        def _record(self) -> tuple[str, str | None]:
            # GCS clients percent-encode every "/" and "." of a key: log and serve it decoded
            path = unquote(self.path.split("?", 1)[0])
            self._entry, fault = state.record(self.command, path, self.headers.get("Range"))
            if state.latency or state.jitter:
                time.sleep(state.latency + random.random() * state.jitter)
            return path, fault

        def _plain(self, code: int) -> None:
            body = f"{code}\n".encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:  # recorded so tests can assert there are none
            path, _ = self._record()
            if not state.answer_head:
                return self._plain(405)
            found = _file(state.root, path)
            if found is None:
                return self._plain(404)
            self.send_response(200)
            self.send_header("Content-Length", str(os.path.getsize(found)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()

        def do_GET(self) -> None:
            path, fault = self._record()
            if fault in ("500", "503", "403", "401"):
                return self._plain(int(fault))
            if fault and fault.isdigit() and len(fault) == 3:
                return self._plain(int(fault))
            if fault == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.close_connection = True
                return
            if fault and fault.startswith("slow:"):
                time.sleep(float(fault[5:]))
            found = _file(state.root, path)
            if found is None:
                return self._plain(404)
            with open(found, "rb") as f:
                data = f.read()
                mtime = os.fstat(f.fileno()).st_mtime
            rng = self.headers.get("Range")
            start, end, code = 0, len(data), 200
            if rng:
                span = byte_range(rng, len(data))
                if span is None:
                    return self._plain(416)
                (start, end), code = span, 206
            total = len(data)
            if code == 206 and fault == "range-shift":
                shift = 1 if end < len(data) else -1 if start > 0 else 0
                start, end = start + shift, end + shift
            if code == 206 and fault == "range-ignored":
                start, end, code = 0, len(data), 200
            if code == 206 and fault == "range-total":
                total = len(data) + 4096
            body = data[start:end]
            self.send_response(code)
            if code == 206 and fault != "no-content-range":
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{total}")
            if fault != "overlong-close":
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if state.validators:
                # the GCS and Azure clients refuse answers without these. With an ETag, obstore
                # also resumes a body that fails mid-way by itself (a ranged GET of the rest,
                # If-Match): the body-fault tests run without, so ngffcore's retry is tested
                self.send_header("ETag", f'"{len(data):x}-{int(mtime * 1e6):x}"')
                self.send_header("Last-Modified", email.utils.formatdate(mtime, usegmt=True))
            self.end_headers()
            if fault == "truncate":
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            if fault == "reset-body":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.close_connection = True
                return
            if fault and fault.startswith("stall:"):
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                time.sleep(float(fault[6:]))
                self.wfile.write(body[len(body) // 2:])
                return
            if fault in ("overlong", "overlong-close"):
                self.wfile.write(body + b"\xa5" * max(64, len(body)))
                self.close_connection = fault == "overlong-close"
                return
            self.wfile.write(body)

    return Handler


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # 64 clients connecting at once must not overflow the backlog

    def handle_error(self, request: object, client_address: object) -> None:
        # clients that cancel reads hang up mid-response: expected here, not an error
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _Background:
    """A server run by ``_thread`` while its ``with`` block lasts, on 127.0.0.1:``port``."""

    _thread: threading.Thread
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self


class RangeServer(_Background):
    """``with RangeServer(root) as srv: srv.url`` — serves ``root`` until the block ends.
    ``nagle=True`` leaves Nagle's algorithm on (TCP_NODELAY off)."""

    def __init__(self, root: str, latency: float = 0.0, validators: bool = False,
                 answer_head: bool = False, nagle: bool = False) -> None:
        self.state = ServerState(root=root, latency=latency, validators=validators,
                                 answer_head=answer_head)
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self.state, nagle))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.port = self._server.server_port

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


# -- the lean server -------------------------------------------------------------------------

_REASONS = {200: "OK", 206: "Partial Content", 400: "Bad Request", 404: "Not Found",
            405: "Method Not Allowed", 416: "Range Not Satisfiable", 501: "Not Implemented"}
_MAX_HEAD = 64 * 1024


class LatencyServer(_Background):
    """``with LatencyServer(root) as srv: srv.url``; ``srv.state.latency`` may change at any
    time. Ranges, 404s, 416s and HEAD as :class:`RangeServer` answers them, no faults;
    ``TCP_NODELAY``; every answer leaves ``latency`` after its request arrived."""

    def __init__(self, root: str, latency: float = 0.0, answer_head: bool = False) -> None:
        self.state = ServerState(root=root, latency=latency, answer_head=answer_head)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1024)
        self._closing = False
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.port = self._sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        for sock in [self._sock, *self._open_connections()]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._sock.close()
        self._thread.join(timeout=10)

    def _open_connections(self) -> list[socket.socket]:
        with self._conns_lock:
            return list(self._conns)

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._conns_lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve_connection, args=(conn,), daemon=True).start()

    def _serve_connection(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                end = buf.find(b"\r\n\r\n")
                while end < 0:
                    if len(buf) > _MAX_HEAD:
                        return
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                    end = buf.find(b"\r\n\r\n")
                head, buf = buf[:end].decode("latin-1"), buf[end + 4:]
                if not self._answer(conn, head):
                    return
        except OSError:  # the client hung up (cancelled reads do)
            return
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            conn.close()

    def _answer(self, conn: socket.socket, head: str) -> bool:
        """Answer one request; False when the connection must close afterwards.

        Everything that needs Python (parsing, opening the file, the header) happens before
        the latency is slept, and the sleep ends ``latency`` after the request arrived: after
        it only ``sendmsg`` of the header and ``sendfile`` of the body remain, both with the
        GIL released, so the responses of one wave leave together."""
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            conn.sendall(_plain(400, "GET"))
            return False
        method, target, version = parts
        rng = None
        keep_alive = version == "HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "range":
                rng = value.strip()
            elif name == "connection":
                keep_alive = value.strip().lower() != "close"
        entry, _ = self.state.record(method, unquote(target.split("?", 1)[0]), rng)
        fd = -1
        try:
            entry.status, header, start, stop, fd = self._prepare(entry, keep_alive)
            if self.state.latency:
                time.sleep(max(0.0, entry.t + self.state.latency - time.monotonic()))
            if fd < 0 or method == "HEAD" or stop == start:
                conn.sendall(header)
                return keep_alive
            conn.sendmsg([header], [], socket.MSG_MORE)  # header and body in one segment
            offset = start
            while offset < stop:
                sent = os.sendfile(conn.fileno(), fd, offset, stop - offset)
                if sent == 0:  # the file shrank under us
                    return False
                offset += sent
            return keep_alive
        finally:
            if fd >= 0:
                os.close(fd)

    def _prepare(self, entry: Request, keep_alive: bool) -> tuple[int, bytes, int, int, int]:
        """(status, header bytes — with the body for plain answers, body start, stop, open
        file descriptor or -1)."""
        method = entry.method
        if method not in ("GET", "HEAD"):
            return 501, _plain(501, method), 0, 0, -1
        if method == "HEAD" and not self.state.answer_head:
            return 405, _plain(405, method), 0, 0, -1
        found = _file(self.state.root, entry.path)
        try:
            fd = os.open(found, os.O_RDONLY) if found is not None else -1
        except OSError:
            fd = -1
        if fd < 0:
            return 404, _plain(404, method), 0, 0, -1
        size = os.fstat(fd).st_size
        start, stop, code = 0, size, 200
        if entry.range is not None:
            span = byte_range(entry.range, size)
            if span is None:
                os.close(fd)
                return 416, _plain(416, method), 0, 0, -1
            (start, stop), code = span, 206
        hdr = [f"HTTP/1.1 {code} {_REASONS[code]}", f"Content-Length: {stop - start}",
               "Accept-Ranges: bytes", "Content-Type: application/octet-stream"]
        if code == 206:
            hdr.append(f"Content-Range: bytes {start}-{stop - 1}/{size}")
        if not keep_alive:
            hdr.append("Connection: close")
        return code, ("\r\n".join(hdr) + "\r\n\r\n").encode("latin-1"), start, stop, fd


def _plain(code: int, method: str) -> bytes:
    """A whole plain-text answer (header and, except for HEAD, body)."""
    body = f"{code}\n".encode()
    header = (f"HTTP/1.1 {code} {_REASONS[code]}\r\nContent-Length: {len(body)}\r\n"
              f"Content-Type: text/plain\r\n\r\n").encode("latin-1")
    return header if method == "HEAD" else header + body


# -- either server in a child process --------------------------------------------------------

def server_kind() -> str:
    """Which server :class:`ServerProcess` starts (``NGFF_BENCH_SERVER``): ``lean``
    (:class:`LatencyServer`, the default) or ``threaded`` (:class:`RangeServer`;
    ``NGFF_BENCH_NAGLE=1`` leaves Nagle's algorithm on)."""
    kind = os.environ.get("NGFF_BENCH_SERVER", "lean")
    if kind not in ("lean", "threaded"):
        raise ValueError(f"NGFF_BENCH_SERVER={kind!r}: expected 'lean' or 'threaded'")
    return kind


def describe_server() -> str:
    """One phrase naming the server, for the benchmark reports."""
    if server_kind() == "threaded":
        return ("`tests/servers.py`'s `RangeServer` (`http.server`, whole object read per "
                "request) in a child process (`NGFF_BENCH_SERVER=threaded`)")
    return ("`tests/servers.py`'s `LatencyServer` in a child process (a thread per "
            "connection, byte ranges sent with `sendfile`)")


def _serve(root: str, answer_head: bool) -> None:
    """The child process: JSON commands ``[name, arg]`` on stdin, one reply line each;
    ``latency``, ``clear`` (the log, and the CPU clock), ``cpu`` (CPU seconds since
    ``clear``, all threads), ``log`` and ``stop``."""
    srv: RangeServer | LatencyServer
    if server_kind() == "threaded":
        srv = RangeServer(root, answer_head=answer_head,
                          nagle=os.environ.get("NGFF_BENCH_NAGLE", "") == "1")
    else:
        srv = LatencyServer(root, answer_head=answer_head)
    state = srv.state

    def reply(value: Any) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    with srv:
        cpu0 = time.process_time()
        reply(srv.url)
        for line in sys.stdin:
            cmd, arg = json.loads(line)
            if cmd == "latency":
                state.latency = float(arg)
            elif cmd == "clear":
                state.clear()
                cpu0 = time.process_time()
            elif cmd == "cpu":
                reply(time.process_time() - cpu0)
                continue
            elif cmd == "log":
                reply([[r.method, r.path, r.range, r.t, r.status] for r in state.requests()])
                continue
            reply(None)
            if cmd == "stop":
                return


class ServerProcess:
    """``with ServerProcess(root) as srv: srv.url`` — ``root`` served on 127.0.0.1 by a child
    Python process running this module (the server :func:`server_kind` names)."""

    def __init__(self, root: str | Path, latency: float = 0.0, answer_head: bool = False) -> None:
        self.root = str(root)
        self.answer_head = answer_head
        self._proc = subprocess.Popen(
            [sys.executable, "-u", str(Path(__file__).resolve()), self.root]
            + (["--answer-head"] if answer_head else []),
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

    def log(self) -> list[Request]:
        return [Request(*e) for e in self._call("log")]

    def cpu_seconds(self) -> float:
        """CPU time (user + system, all threads) the server process used since ``clear()``:
        the server shares the machine's cores with the reader being measured."""
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


if __name__ == "__main__":
    _serve(sys.argv[1], "--answer-head" in sys.argv[2:])
