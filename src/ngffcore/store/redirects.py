"""Refusing redirects to another host.

obstore (reqwest underneath) follows 301/302/307/308 to any host and forwards custom
headers (``default_headers``) and S3's ``x-amz-security-token`` to it; it offers no redirect
policy. ngffcore therefore gives each guarded store an HTTP proxy that is a trap: a listener
in this process that answers every request with a refusal. The store's own host is excluded
from the proxy (``proxy_excludes``), so its requests go direct, exactly as without the guard;
only a request to another host (which is a followed redirect: the store sends no other) goes
to the trap, which records where it was going and refuses it. Nothing reaches the other host.

What reqwest exempts from the proxy is matched by host name only: a redirect to the same host
on another port or scheme is not caught. The guard replaces the system proxy
(``HTTP(S)_PROXY``), so it is not installed when a proxy is configured.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import threading
from collections import OrderedDict
from typing import Any

from ngffcore.errors import ArgumentError

#: the text every refusal carries; obstore copies a 4xx body into its error message
MARKER = "ngffcore refused a redirect"

_PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
              "all_proxy")


class _Trap:
    """The listener: one per process, started on first use, answers on a daemon thread."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        # guard token -> the last target refused for that store (bounded: tokens of stores
        # that were dropped would otherwise accumulate)
        self.refused: OrderedDict[str, str] = OrderedDict()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, name="ngffcore-redirect-guard",
                         daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            head = b""
            try:
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    part = conn.recv(4096)
                    if not part:
                        return
                    head += part
            except OSError:
                return
            lines = head.split(b"\r\n")
            fields = lines[0].decode("latin-1").split(" ")
            method, target = (fields[0], fields[1]) if len(fields) >= 2 else ("?", "?")
            if method == "CONNECT":  # an https target: only host:port is visible to a proxy
                target = f"https://{target}"
            token = ""
            for line in lines[1:]:
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "proxy-authorization":
                    token = _token_of(value.strip())
            if token:
                with self.lock:
                    self.refused.pop(token, None)
                    self.refused[token] = target
                    while len(self.refused) > 1024:
                        self.refused.popitem(last=False)
            # the body names the target, but the error raised to the caller is built from
            # ``refused`` (a CONNECT refusal's body never reaches obstore's message)
            body = f"{MARKER} to {target}".encode()
            # 421: a 4xx that obstore neither retries nor reads as missing (404) or
            # forbidden (403, which missing_on_403 would read as missing)
            reply = (b"HTTP/1.1 421 Misdirected Request\r\nConnection: close\r\n"
                     b"Content-Type: text/plain\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
            try:
                conn.sendall(reply)
            except OSError:
                pass


def _token_of(value: str) -> str:
    import base64
    import binascii

    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(encoded).decode("latin-1").partition(":")[0]
    except (binascii.Error, ValueError):
        return ""


_trap: _Trap | None = None
_trap_lock = threading.Lock()


def _the_trap() -> _Trap:
    global _trap
    with _trap_lock:
        # a forked child inherits the socket but not the thread that answers it
        if _trap is None or _trap.pid != os.getpid():
            _trap = _Trap()
        return _trap


def guard_options(host: str | None, client: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``client_options`` with the trap installed for a store whose requests go to ``host``,
    and the store's guard token; unchanged (and no token) when the guard cannot apply: no
    known host, or a proxy the caller configured (options or environment)."""
    if not host or client.get("proxy_url") or any(os.environ.get(v) for v in _PROXY_ENV):
        return client, None
    token = secrets.token_hex(8)
    trap = _the_trap()
    return {**client, "proxy_url": f"http://{token}:x@127.0.0.1:{trap.port}",
            "proxy_excludes": host}, token


def refused_target(token: str | None, exc: BaseException) -> str | None:
    """Where a request refused by the trap was going, if ``exc`` is such a refusal."""
    if token is None or _trap is None:
        return None
    text = str(exc)
    found = re.search(re.escape(MARKER) + r" to (\S+?)\"?$", text, re.MULTILINE)
    if found:  # a plain-http target: the trap's answer, body included, is in the message
        return found.group(1)
    if "TunnelUnsuccessful" not in text:
        return None
    # an https target: the trap refused the CONNECT, whose answer obstore does not show
    with _trap.lock:
        return _trap.refused.get(token)


# options that make obstore send a credential reqwest does not strip on a cross-host redirect
# (it strips Authorization, Cookie and Proxy-Authorization, nothing else)
_FORWARDED_CREDENTIALS = ("token", "session_token", "aws_session_token", "aws_token",
                          "credential_provider")


def check_allow_redirects(options: dict[str, Any]) -> None:
    """``allow_redirects=True`` is refused with options whose secrets obstore would forward
    to the redirect's host: custom headers and S3 session tokens."""
    client = options.get("client_options") or {}
    forwarded = sorted(k for k in _FORWARDED_CREDENTIALS if options.get(k) is not None)
    if client.get("default_headers"):
        forwarded.insert(0, "client_options['default_headers']")
    if forwarded:
        raise ArgumentError(
            f"allow_redirects=True cannot be combined with {', '.join(forwarded)}: obstore "
            "would send them to whichever host a redirect names")


__all__ = ["MARKER", "check_allow_redirects", "guard_options", "refused_target"]
