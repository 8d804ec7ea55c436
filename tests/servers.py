"""Servers the remote tests talk to, on 127.0.0.1, started and stopped by fixtures.

``RangeServer`` is a small HTTP/1.1 file server with Range support (``bytes=a-b``, ``a-``,
``-n``), injected latency, a log of every request, and per-path fault injection. It is ours
rather than a library's so each test can assert the exact requests a read sent.
"""

from __future__ import annotations

import email.utils
import http.server
import os
import random
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import unquote


@dataclass
class Request:
    method: str
    path: str
    range: str | None


@dataclass
class ServerState:
    root: str
    latency: float = 0.0
    jitter: float = 0.0  # extra random delay in [0, jitter): shuffles response order
    validators: bool = False  # send ETag and Last-Modified with every object
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


def _handler(state: ServerState) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in two sends: with Nagle on, a small body waits for the
        # client's delayed ACK (up to 40 ms) and distorts latency measurements
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            pass

        def _record(self) -> str | None:
            # GCS clients percent-encode every "/" and "." of a key: log and serve it decoded
            path = unquote(self.path.split("?", 1)[0])
            with state.lock:
                state.log.append(Request(self.command, path, self.headers.get("Range")))
                queue = state.faults.get(path)
                fault = queue.pop(0) if queue else None
            if state.latency or state.jitter:
                time.sleep(state.latency + random.random() * state.jitter)
            return fault

        def _plain(self, code: int) -> None:
            body = f"{code}\n".encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:  # recorded so tests can assert there are none
            self._record()
            self._plain(405)

        def do_GET(self) -> None:
            fault = self._record()
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
            rel = os.path.normpath(unquote(self.path.split("?", 1)[0]).lstrip("/"))
            path = os.path.join(state.root, rel)
            if rel.startswith("..") or not os.path.isfile(path):
                return self._plain(404)
            with open(path, "rb") as f:
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
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class RangeServer:
    """``with RangeServer(root) as srv: srv.url`` — serves ``root`` until the block ends."""

    def __init__(self, root: str, latency: float = 0.0, validators: bool = False) -> None:
        self.state = ServerState(root=root, latency=latency, validators=validators)
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self.state))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> "RangeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
