"""Issue 13 item 2: a redirect to another host is refused by default; nothing reaches it.

``origin`` (127.0.0.1) answers every GET under ``/hop/`` with a redirect to the same path
on ``other`` (127.0.0.2: another host), and serves ``data.bin`` itself. ``other`` records
every request it receives, headers included, so the tests assert what left the process.
"""

from __future__ import annotations

import http.server
import pickle
import threading
from datetime import timedelta

import pytest

import ngffcore
from ngffcore.store.location import open_store
from ngffcore.store.sync import run_sync

NO_RETRY = {"retry_config": {"max_retries": 0, "retry_timeout": timedelta(seconds=5)}}
BODY = b"pixels of the internal host"


class Host:
    def __init__(self, address: str, answer) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                answer(self)

            do_CONNECT = do_GET

        self.server = http.server.ThreadingHTTPServer((address, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://{address}:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _send(handler, code: int, body: bytes = b"", location: str | None = None) -> None:
    handler.send_response(code)
    if location:
        handler.send_header("Location", location)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)



def _get(store, key):
    """The whole object as bytes (or None), read synchronously through the Store protocol."""
    got = run_sync(store, store.get(key))
    return None if got is None else bytes(got.data)


@pytest.fixture
def hosts(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    other = Host("127.0.0.2", lambda h: _send(h, 200, BODY))
    redirect = {"code": 302, "scheme": "http"}

    def origin_answer(h) -> None:
        path = h.path.split("?")[0]
        if path.endswith("/data.bin"):
            return _send(h, 200, b"origin data")
        if "/same/" in path:  # a redirect to another path of this same host
            return _send(h, 302, location=path.replace("/same/", "/") + ".bin")
        target = other.url.replace("http", redirect["scheme"], 1)
        _send(h, redirect["code"], location=f"{target}{path}")

    origin = Host("127.0.0.1", origin_answer)
    yield origin, other, redirect
    origin.close()
    other.close()


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_a_redirect_to_another_host_is_refused_and_nothing_reaches_it(hosts, code):
    origin, other, redirect = hosts
    redirect["code"] = code
    store = open_store(f"{origin.url}/root", client_options={
        "default_headers": {"X-Api-Key": "tenant-secret"}}, **NO_RETRY)
    assert _get(store, "data.bin") == b"origin data"  # the store's own host: direct
    with pytest.raises(ngffcore.StoreError) as info:
        _get(store, "hop/0.0")
    message = str(info.value)
    assert f"{origin.url}/root/hop/0.0" in message
    assert f"{other.url}/root/hop/0.0" in message and "allow_redirects" in message
    assert other.seen == []  # neither the request nor the key went out
    assert origin.seen[-1][1]["x-api-key"] == "tenant-secret"


def test_an_https_redirect_to_another_host_is_refused(hosts):
    origin, other, redirect = hosts
    redirect["scheme"] = "https"
    store = open_store(f"{origin.url}/root", **NO_RETRY)
    with pytest.raises(ngffcore.StoreError) as info:
        _get(store, "hop/0.0")
    host = other.url.split("//")[1]
    assert f"{origin.url}/root/hop/0.0" in str(info.value)
    assert f"https://{host}" in str(info.value)
    assert other.seen == []


def test_array_reads_refuse_a_redirected_chunk(hosts, tmp_path):
    """A chunk of a public array that redirects elsewhere never comes back as pixels."""
    import numpy as np
    import zarr

    origin, other, _ = hosts
    z = zarr.create_array(tmp_path / "a", shape=(4,), chunks=(4,), dtype="u1", zarr_format=2,
                          compressors=None, fill_value=0)
    z[:] = np.arange(4, dtype="u1")
    meta = (tmp_path / "a" / ".zarray").read_bytes()
    store = open_store(f"{origin.url}/hop", **NO_RETRY)
    # metadata comes from the origin itself; the chunk redirects
    from ngffcore.zarr.array import Array, parse_array_metadata

    a = Array(store, parse_array_metadata(2, meta, "test"), "")
    with pytest.raises(ngffcore.StoreError, match="another host"):
        a[:]
    assert other.seen == []


def test_a_redirect_within_the_same_host_is_followed(hosts):
    origin, other, _ = hosts
    store = open_store(f"{origin.url}/root", **NO_RETRY)
    assert _get(store, "same/data") == b"origin data"
    assert other.seen == []


def test_allow_redirects_follows_and_survives_pickling(hosts):
    origin, other, _ = hosts
    store = open_store(f"{origin.url}/root", allow_redirects=True, **NO_RETRY)
    assert _get(store, "hop/0.0") == BODY
    clone = pickle.loads(pickle.dumps(store))
    assert _get(clone, "hop/0.1") == BODY
    assert [p for p, _ in other.seen] == ["/root/hop/0.0", "/root/hop/0.1"]
    # and a default store still refuses after a round trip through pickle
    guarded = pickle.loads(pickle.dumps(open_store(f"{origin.url}/other", **NO_RETRY)))
    with pytest.raises(ngffcore.StoreError, match="another host"):
        _get(guarded, "hop/0.2")
    assert len(other.seen) == 2


@pytest.mark.parametrize("options", [
    {"client_options": {"default_headers": {"X-Api-Key": "k"}}},
    {"token": "session-token", "access_key_id": "a", "secret_access_key": "s"},
])
def test_allow_redirects_refuses_credentials_obstore_would_forward(options):
    url = "http://127.0.0.1:9/x" if "client_options" in options else "s3://bucket"
    with pytest.raises(ngffcore.ArgumentError, match="allow_redirects=True cannot be combined"):
        open_store(url, allow_redirects=True, **options)


def test_s3_endpoint_redirect_keeps_the_session_token_home(hosts):
    origin, other, _ = hosts
    store = open_store("s3://bucket/hop", endpoint=origin.url, region="us-east-1",
                       access_key_id="AK", secret_access_key="SK", token="SESSION-TOKEN",
                       **NO_RETRY)
    with pytest.raises(ngffcore.StoreError, match="another host"):
        _get(store, "0.0")
    assert origin.seen and origin.seen[-1][1]["x-amz-security-token"] == "SESSION-TOKEN"
    assert other.seen == []
