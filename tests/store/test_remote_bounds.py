"""Issue 13 item 3: a response is refused from the size it declares, before its body is held.

A hostile server declares (and starts sending) a body far larger than the object can be: a
metadata document over the metadata limit, a chunk far over what its codec can produce. The
read fails with an error naming the key, the declared size and the limit, and the server
gets to send only a small part of the body (the client hangs up instead of reading it).
"""

from __future__ import annotations

import http.server
import os
from pathlib import Path
import threading
from datetime import timedelta

import numcodecs
import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, ShardingCodec, ZstdCodec

import ngffcore
from ngffcore.limits import MAX_METADATA_BYTES
from ngffcore.zarr.source import max_object_bytes

OPTS = {"client_options": {"allow_http": True},
        "retry_config": {"max_retries": 0, "retry_timeout": timedelta(seconds=5)}}
HUGE = 256 * 2**20  # what the hostile answers declare, and send if they are read


class BloatServer:
    """Serves files from ``root``; a path in ``bloat`` is answered with a declared
    ``HUGE``-byte body of junk, streamed until the client hangs up. ``sent[path]`` counts
    the body bytes that went out for it."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.bloat: set[str] = set()
        self.sent: dict[str, int] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.lstrip("/")
                if path in outer.bloat:
                    self.send_response(200)
                    self.send_header("Content-Length", str(HUGE))
                    self.end_headers()
                    block, sent = b"\xa5" * 2**16, 0
                    try:
                        while sent < HUGE:
                            self.wfile.write(block)
                            sent += len(block)
                    except OSError:
                        pass
                    outer.sent[path] = sent
                    self.close_connection = True
                    return
                full = os.path.join(outer.root, path)
                if not os.path.isfile(full):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with open(full, "rb") as f:
                    data = f.read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> "BloatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("bounds")
    data = np.arange(256, dtype="u1").reshape(16, 16)
    z2 = zarr.create_array(root / "v2", shape=(16, 16), chunks=(8, 8), dtype="u1",
                           zarr_format=2, compressors=numcodecs.Zstd(), fill_value=0)
    z2[:] = data
    z3 = zarr.create_array(root / "v3", shape=(16, 16), chunks=(16, 16), dtype="u1",
                           serializer=ShardingCodec(chunk_shape=(8, 8),
                                                    codecs=[BytesCodec(), ZstdCodec()]),
                           compressors=None, fill_value=0)
    z3[:] = data
    with BloatServer(str(root)) as srv:
        yield srv, data


@pytest.fixture
def server(served):
    srv, data = served
    srv.bloat.clear()
    srv.sent.clear()
    return srv, data


def _wait_sent(srv: BloatServer, path: str) -> int:
    for _ in range(200):  # the handler records the count once the client has hung up
        if path in srv.sent:
            return srv.sent[path]
        threading.Event().wait(0.05)
    raise AssertionError(f"the server never finished answering {path}")


@pytest.mark.parametrize("doc", ["v2/.zarray", "v3/zarr.json"])
def test_metadata_declared_over_the_limit_is_refused_unread(server, doc):
    srv, _ = server
    srv.bloat.add(doc)
    with pytest.raises(ngffcore.MetadataError) as info:
        ngffcore.open_array(f"{srv.url}/{doc.split('/')[0]}", **OPTS)
    message = str(info.value)
    assert doc in message and str(HUGE) in message and str(MAX_METADATA_BYTES) in message
    assert _wait_sent(srv, doc) < HUGE // 4


def test_group_attributes_declared_over_the_limit_are_refused(server):
    srv, _ = server
    srv.bloat.add("v2/.zattrs")
    with pytest.raises(ngffcore.MetadataError) as info:
        ngffcore.open(f"{srv.url}/v2", zarr_format=2, **OPTS)
    assert "v2/.zattrs" in str(info.value) and str(HUGE) in str(info.value)
    assert _wait_sent(srv, "v2/.zattrs") < HUGE // 4


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_chunk_declared_far_over_its_codec_bound_is_refused_unread(server, mode):
    srv, _ = server
    a = ngffcore.open_array(f"{srv.url}/v2", **OPTS)
    srv.bloat.add("v2/0.1")
    with pytest.raises(ngffcore.StoreError) as info:
        if mode == "sync":
            a[:8, 8:]
        else:
            import asyncio

            asyncio.run(a.read_async((slice(0, 8), slice(8, 16))))
    message = str(info.value)
    bound = 64 * 32 + 1024 + 2**20
    assert "v2/0.1" in message and str(HUGE) in message and str(bound) in message
    assert _wait_sent(srv, "v2/0.1") < HUGE // 4


def test_whole_shard_declared_far_over_its_bound_is_refused_unread(server):
    srv, _ = server
    a = ngffcore.open_array(f"{srv.url}/v3", **OPTS)
    srv.bloat.add("v3/c/0/0")
    with pytest.raises(ngffcore.StoreError) as info:
        a[:]
    assert "v3/c/0/0" in str(info.value) and str(HUGE) in str(info.value)
    assert _wait_sent(srv, "v3/c/0/0") < HUGE // 4


@pytest.mark.parametrize("name", ["v2", "v3"])
def test_bodies_within_bounds_read_as_before(server, name):
    srv, data = server
    a = ngffcore.open_array(f"{srv.url}/{name}", **OPTS)
    np.testing.assert_array_equal(a[:], data)
    np.testing.assert_array_equal(
        a[:], zarr.open_array(os.path.join(srv.root, name), mode="r")[:])


@pytest.mark.parametrize("compressor", [numcodecs.GZip(9), numcodecs.Zstd(22),
                                        numcodecs.Blosc("lz4", 5, 1), numcodecs.LZ4()])
def test_the_chunk_bound_covers_incompressible_tiny_chunks(tmp_path, compressor):
    """The bound is generous: random bytes in 2x2 chunks (where codec headers weigh most)
    stay well under it, for every compressor."""
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, (4, 4)).astype("u1")
    z = zarr.create_array(tmp_path / "w", shape=data.shape, chunks=(2, 2), dtype="u1",
                          zarr_format=2, compressors=compressor, fill_value=0)
    z[:] = data
    a = ngffcore.open_array(str(tmp_path / "w"))
    from ngffcore.zarr.plan import normalize_selection, plan_chunks

    plan = plan_chunks(a.metadata, normalize_selection(..., a.shape), "")
    bound = max_object_bytes(plan, 1)
    stored = max(os.path.getsize(tmp_path / "w" / f"{i}.{j}") for i in (0, 1) for j in (0, 1))
    assert stored > 4 and stored < bound
    assert bound < 2 * 2**20  # and yet a 1 GiB answer for such a chunk is refused


@pytest.mark.parametrize("where", ["local", "http"])
def test_ome_xml_over_its_limit_is_refused_unread(served, tmp_path, monkeypatch, where):
    """A bioformats2raw container with no series list is read from its OME-XML, bounded by
    MAX_OME_XML_BYTES from the size the store declares (lowered here: the real limit is
    the size this server declares)."""
    from ngffcore.store import bodies

    monkeypatch.setitem(bodies.METADATA_LIMITS, "METADATA.ome.xml", 2**20)
    srv, _ = served
    srv.bloat.clear()
    srv.sent.clear()
    root = tmp_path if where == "local" else Path(srv.root)
    container = root / f"b2r-{where}"
    (container / "OME").mkdir(parents=True)
    (container / ".zattrs").write_text('{"bioformats2raw.layout": 3}')
    (container / ".zgroup").write_text('{"zarr_format": 2}')
    (container / "OME" / ".zgroup").write_text('{"zarr_format": 2}')
    xml = container / "OME" / "METADATA.ome.xml"
    if where == "local":
        with open(xml, "wb") as f:  # sparse: 8 MiB declared by the file system
            f.truncate(8 * 2**20)
        location = str(container)
    else:
        srv.bloat.add(f"{container.name}/OME/METADATA.ome.xml")
        location = f"{srv.url}/{container.name}"
    with pytest.raises(ngffcore.MetadataError) as info:
        ngffcore.open(location, **({} if where == "local" else OPTS))
    assert "METADATA.ome.xml" in str(info.value) and str(2**20) in str(info.value)
    if where == "http":
        assert _wait_sent(srv, f"{container.name}/OME/METADATA.ome.xml") < HUGE // 4
