"""A small threaded HTTP server on 127.0.0.1 for the remote write tests: a fault-injecting
proxy in front of another server (moto's S3), or, with no upstream, an in-memory object
server that takes GET, PUT and DELETE the way obstore's GCS and Azure clients send them.

Either way it logs every request (method, decoded path without the query, status answered)
so a test can compare the requests a write sent with the store's own counters, and it can
be told to misbehave on chosen requests (:meth:`FaultServer.add_fault`):

* ``"500"`` / ``"503"``: the request body is read whole, then that status (S3-style XML);
  nothing is forwarded, so the object is unchanged;
* ``"reset-upload"``: half the request body is read, then the connection is reset (TCP
  RST): the upload dies mid-way and nothing is forwarded;
* ``"reset-response"``: the request is forwarded (the object IS written) and the connection
  is reset instead of answering: the client cannot know it succeeded.
* ``"slow:<seconds>"``: the body is read, then a pause, then the request is forwarded and
  answered as usual (also when the client gave up waiting: like a real store, the object
  is then written all the same).

obstore deletes even one object with a bulk request: on S3 a DeleteObjects ``POST
/<bucket>?delete`` (XML body of ``<Key>``s; the proxy forwards it and logs each key as a
``DELETE`` entry with ``batched`` set, after the POST's own entry); on Azure a Blob Batch
``POST /<container>?restype=container&comp=batch`` (a multipart body of ``DELETE``
sub-requests), which the in-memory server answers, logged the same way.

``tests/servers.py``'s ``RangeServer`` serves files read-only; this is the writable side.
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import http
import http.client
import http.server
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from servers import _Background, byte_range

#: headers that describe one connection, not the message: never passed through
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te",
        "trailer", "upgrade", "content-length"}
_LINGER_RST = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close() sends RST


@dataclass
class Logged:
    method: str
    path: str
    status: int = 0  # 0: no answer (the connection was reset)
    fault: str | None = None
    batched: bool = False  # a DELETE inside an Azure Blob Batch POST


@dataclass
class Rule:
    """``fault`` for requests of ``method`` to ``path`` (None: any path): the first ``skip``
    matching requests pass, then the next ``times`` (None: all) get the fault."""

    method: str
    path: str | None
    fault: str
    skip: int = 0
    times: int | None = 1


@dataclass
class Obj:
    data: bytes
    etag: str
    modified: float


class FaultServer(_Background):
    """``with FaultServer(upstream) as srv: srv.url`` — proxies to ``upstream`` (an
    ``http://host:port`` URL), or with ``upstream=None`` serves ``srv.objects`` from memory."""

    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = urlsplit(upstream) if upstream else None
        self.objects: dict[str, Obj] = {}
        self.rules: list[Rule] = []
        self._log: list[Logged] = []
        self._active = 0  # requests being handled
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.port = self._server.server_port


    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def add_fault(self, method: str, path: str | None, fault: str, *, skip: int = 0,
                  times: int | None = 1) -> None:
        with self._lock:
            self.rules.append(Rule(method, path, fault, skip, times))

    def log(self, method: str | None = None) -> list[Logged]:
        with self._lock:
            return [e for e in self._log if method is None or e.method == method]

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being handled: a request the client gave up on (a
        cancelled write) may still be forwarded and answered after the client's call
        returned, and the log must not be read half-way through it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._active == 0:
                    return
            time.sleep(0.01)
        raise TimeoutError(f"{self.url}: requests still being handled after {timeout} s")

    def reset(self) -> None:
        """Empty log, no faults (the objects stay)."""
        with self._lock:
            self._log.clear()
            self.rules.clear()

    def _note_batch(self, bucket_path: str, body: bytes, status: int) -> None:
        """Log each key of an S3 DeleteObjects POST (``<Key>`` elements) as a batched
        DELETE, with the POST's status (faults apply to the POST, not to its keys)."""
        keys = re.findall(rb"<Key>([^<]*)</Key>", body)
        with self._lock:
            for key in keys:
                path = f"{bucket_path.rstrip('/')}/{html.unescape(key.decode())}"
                self._log.append(Logged("DELETE", path, status, batched=True))

    def _arrive(self, method: str, path: str, batched: bool = False
                ) -> tuple[Logged, str | None]:
        entry = Logged(method, path, batched=batched)
        with self._lock:
            self._log.append(entry)
            for rule in self.rules:
                if rule.method != method or rule.path not in (None, path):
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    continue
                if rule.times == 0:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                entry.fault = rule.fault
                break
        return entry, entry.fault


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: object, client_address: object) -> None:
        # the client hangs up on connections a fault reset: expected here
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _handler(srv: FaultServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            pass

        def _body(self, limit: int | None = None) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(out)
                    out += self.rfile.read(size)
                    self.rfile.readline()
                    if limit is not None and len(out) >= limit:
                        return bytes(out)
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n if limit is None else min(n, limit))

        def _reset(self, entry: Logged) -> None:
            entry.status = 0
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            self.close_connection = True

        def _answer(self, entry: Logged, status: int, headers: list[tuple[str, str]],
                    body: bytes) -> None:
            entry.status = status
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            if not any(n.lower() == "content-length" for n, _ in headers):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            with srv._lock:
                srv._active += 1
            try:
                self._serve()
            finally:
                with srv._lock:
                    srv._active -= 1

        def _serve(self) -> None:
            path = unquote(self.path.split("?", 1)[0])
            entry, fault = srv._arrive(self.command, path)
            if fault == "reset-upload":
                n = int(self.headers.get("Content-Length") or 0)
                self._body(limit=n // 2)
                return self._reset(entry)
            body = self._body()
            if fault is not None and fault.isdigit():
                xml = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError"
                       f"</Code><Message>injected {fault}</Message></Error>").encode()
                return self._answer(entry, int(fault), [("Content-Type", "application/xml")],
                                    xml)
            if fault is not None and fault.startswith("slow:"):
                time.sleep(float(fault[5:]))
            if srv.upstream is not None:
                status, headers, data = self._forward(body)
                if self.command == "POST" and "delete" in self.path.split("?", 1)[-1]:
                    srv._note_batch(path, body, status)
            else:
                status, headers, data = self._memory(path, body)
            if fault == "reset-response":
                return self._reset(entry)
            self._answer(entry, status, headers, data)

        do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = _handle

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            up = srv.upstream
            assert up is not None and up.hostname is not None
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                keep = [(k, v) for k, v in resp.getheaders()
                        if k.lower() not in _HOP or (self.command == "HEAD"
                                                     and k.lower() == "content-length")]
                return resp.status, keep, data
            finally:
                conn.close()

        def _memory(self, path: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            with srv._lock:
                if self.command == "PUT":
                    put = Obj(body, '"' + hashlib.md5(body).hexdigest() + '"', time.time())
                    srv.objects[path] = put
                    return 200, self._validators(put), b""
                if self.command == "DELETE":
                    return (204, [], b"") if srv.objects.pop(path, None) else (404, [], b"")
            if self.command == "POST" and "comp=batch" in self.path:
                return self._batch(body)
            with srv._lock:
                if self.command != "GET":
                    return 405, [], b""
                obj = srv.objects.get(path)
            if obj is None:
                return 404, [], b""
            rng = self.headers.get("Range")
            if rng is None:
                return 200, self._validators(obj), obj.data
            span = byte_range(rng, len(obj.data))
            if span is None:
                return 416, [], b""
            start, stop = span
            return 206, self._validators(obj) + [
                ("Content-Range", f"bytes {start}-{stop - 1}/{len(obj.data)}")
            ], obj.data[start:stop]

        def _batch(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            """An Azure Blob Batch of deletes: each ``DELETE /<container>/<blob>`` sub-request
            answered 202 (404 when missing; a fault's status when one is set for it) in a
            multipart/mixed answer whose parts carry the sub-requests' Content-IDs."""
            parts = re.findall(rb"Content-ID: *(\d+)\r\n\r\nDELETE (\S+) HTTP/1.1", body,
                               flags=re.IGNORECASE)
            out = bytearray()
            for cid, target in parts:
                path = unquote(target.decode().split("?", 1)[0])
                entry, fault = srv._arrive("DELETE", path, batched=True)
                with srv._lock:
                    if fault is not None and fault.isdigit():
                        code = int(fault)
                    else:
                        code = 202 if srv.objects.pop(path, None) else 404
                entry.status = code
                out += (f"--batchresponse\r\nContent-Type: application/http\r\nContent-ID: "
                        f"{int(cid)}\r\n\r\nHTTP/1.1 {code} {http.HTTPStatus(code).phrase}"
                        f"\r\n\r\n").encode()
            out += b"--batchresponse--\r\n"
            return 202, [("Content-Type", "multipart/mixed; boundary=batchresponse")], bytes(out)

        @staticmethod
        def _validators(obj: Obj) -> list[tuple[str, str]]:
            # the GCS and Azure clients refuse answers (reads and writes) without an ETag
            return [("ETag", obj.etag),
                    ("Last-Modified", email.utils.formatdate(obj.modified, usegmt=True))]

    return Handler
