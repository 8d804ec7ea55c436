"""A lean HTTP/1.1 file server with Range support and injected latency, for the benchmarks.

Why not ``tests/servers.py``'s ``RangeServer`` (still available: ``NGFF_BENCH_SERVER=threaded``)?
It is built on ``http.server``: every request parses its headers with the ``email`` package,
reads the whole object into memory, slices it and writes it, all in Python under the server
process's GIL. After the injected latency, the responses of one wave therefore leave one
after another: measured on the tile benchmark (12 requests of ~130 KiB per tile, 20 ms), bare
obstore needed 24.2 ms per wave where 20 ms + its own reading would do, and on the 64-chunk
ROI the server used ~40 ms of CPU per read on the same two cores as the reader. An object
store answers requests independently; that is what the latency is meant to model.

Here each connection has a thread that parses only the request line and the ``Range`` and
``Connection`` headers, sleeps the latency (GIL released, so requests in flight overlap), and
sends the byte range with ``os.sendfile`` (GIL released, no copy through Python). Per request
the server holds the GIL for tens of microseconds. Behaviour the benchmarks rely on matches
``RangeServer``: ``bytes=a-b`` / ``a-`` / ``-n`` ranges (206 + ``Content-Range``; 416 when
unsatisfiable), 404 for a missing file or a path escaping the root, HEAD answered 405 (or like
GET without a body with ``answer_head``), ``TCP_NODELAY``, and a log of every request stamped
with its arrival time (``time.monotonic``). The latency is counted from arrival (the
request's own work is done inside it), so every answer leaves ``latency`` after its request
came in.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import byte_range  # noqa: E402  (the tests' server parses Range the same way)

_REASONS = {200: "OK", 206: "Partial Content", 400: "Bad Request", 404: "Not Found",
            405: "Method Not Allowed", 416: "Range Not Satisfiable", 501: "Not Implemented"}
_MAX_HEAD = 64 * 1024


@dataclass
class LoggedEntry:
    t: float
    method: str
    path: str
    range: str | None
    status: int


@dataclass
class LatencyState:
    root: str
    answer_head: bool = False
    latency: float = 0.0
    log: list[LoggedEntry] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class LatencyServer:
    """``with LatencyServer(root) as srv: srv.url``; ``srv.state.latency`` may change at any time."""

    def __init__(self, root: str, latency: float = 0.0, answer_head: bool = False) -> None:
        self.state = LatencyState(root=os.path.realpath(root), answer_head=answer_head,
                                  latency=latency)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1024)
        self._closing = False
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> "LatencyServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        with self._conns_lock:
            for c in list(self._conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(timeout=10)

    # -- connections --------------------------------------------------------------------------
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

        Everything that needs Python (parsing, resolving and opening the file, the header)
        happens before the latency is slept, and the sleep ends ``latency`` after the
        request arrived: after it only two system calls remain (``sendmsg`` of the header,
        ``sendfile`` of the body), both with the GIL released, so the responses of one wave
        leave together instead of queueing for the server's GIL."""
        arrival = time.monotonic()
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            self._send_plain(conn, 400, "GET")
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
        path = unquote(target.split("?", 1)[0])
        state = self.state
        entry = LoggedEntry(arrival, method, path, rng, 0)
        with state.lock:
            state.log.append(entry)
        fd = -1
        try:
            code, header, start, stop, fd = self._prepare(method, path, rng, keep_alive)
            entry.status = code
            if state.latency:
                time.sleep(max(0.0, arrival + state.latency - time.monotonic()))
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

    def _prepare(self, method: str, path: str, rng: str | None, keep_alive: bool
                 ) -> tuple[int, bytes, int, int, int]:
        """(status, header bytes — with the body for plain answers, body start, stop, open file
        descriptor or -1)."""
        state = self.state
        if method not in ("GET", "HEAD"):
            return 501, _plain(501, method), 0, 0, -1
        if method == "HEAD" and not state.answer_head:
            return 405, _plain(405, method), 0, 0, -1
        full = os.path.realpath(os.path.join(state.root, path.lstrip("/")))
        if not full.startswith(state.root + os.sep):
            return 404, _plain(404, method), 0, 0, -1
        try:
            fd = os.open(full, os.O_RDONLY)
        except OSError:
            return 404, _plain(404, method), 0, 0, -1
        try:
            size = os.fstat(fd).st_size
            start, stop, code = 0, size, 200
            if rng is not None:
                span = byte_range(rng, size)
                if span is None:
                    os.close(fd)
                    return 416, _plain(416, method), 0, 0, -1
                start, stop, code = span[0], span[1], 206
        except BaseException:
            os.close(fd)
            raise
        hdr = [f"HTTP/1.1 {code} {_REASONS[code]}", f"Content-Length: {stop - start}",
               "Accept-Ranges: bytes", "Content-Type: application/octet-stream"]
        if code == 206:
            hdr.append(f"Content-Range: bytes {start}-{stop - 1}/{size}")
        if not keep_alive:
            hdr.append("Connection: close")
        return code, ("\r\n".join(hdr) + "\r\n\r\n").encode("latin-1"), start, stop, fd

    @staticmethod
    def _send_plain(conn: socket.socket, code: int, method: str) -> None:
        conn.sendall(_plain(code, method))


def _plain(code: int, method: str) -> bytes:
    """A whole plain-text answer (header and, except for HEAD, body)."""
    body = f"{code}\n".encode()
    header = (f"HTTP/1.1 {code} {_REASONS[code]}\r\nContent-Length: {len(body)}\r\n"
              f"Content-Type: text/plain\r\n\r\n").encode("latin-1")
    return header if method == "HEAD" else header + body


def entries(state: LatencyState) -> list[tuple[Any, ...]]:
    """The log as (t, method, path, range, status) tuples."""
    with state.lock:
        return [(e.t, e.method, e.path, e.range, e.status) for e in state.log]
