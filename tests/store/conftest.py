"""Fixtures shared by the store tests: moto's S3 server (a real HTTP S3 endpoint in a
subprocess) and the options that point obstore's GCS and Azure clients at ``RangeServer``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any, Callable

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def start_moto() -> Any:
    """A function starting a moto S3 server on 127.0.0.1 and returning its endpoint URL; every
    server started is stopped at the end of the session."""
    pytest.importorskip("moto")
    started: list[subprocess.Popen[bytes]] = []

    def start() -> str:
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        started.append(proc)
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                return endpoint
            except OSError:
                time.sleep(0.05)
        pytest.fail("moto server did not start")

    try:
        yield start
    finally:
        for proc in started:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_s3(start_moto: Callable[[], str]) -> Any:
    """``(endpoint, boto3 client, obstore options)`` of one moto S3 server shared by the
    session (each test module makes its own bucket)."""
    boto3 = pytest.importorskip("boto3")
    endpoint = start_moto()
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    options = dict(endpoint=endpoint, region="us-east-1", access_key_id="test",
                   secret_access_key="test", client_options={"allow_http": True})
    return endpoint, client, options


def _cloud_options(scheme: str, url: str) -> dict[str, Any]:
    """Store options sending a ``gs://`` or ``az://`` store's requests to the server at
    ``url`` (GCS: the service-account key's ``gcs_base_url`` with ``disable_oauth``, no token
    request; Azure: ``endpoint`` with ``skip_signature``)."""
    if scheme == "gs":
        key = {"gcs_base_url": url, "disable_oauth": True, "client_email": "",
               "private_key": "", "private_key_id": ""}
        return {"service_account_key": json.dumps(key), "client_options": {"allow_http": True}}
    return {"endpoint": url, "account_name": "devstoreaccount1", "skip_signature": True}


@pytest.fixture(scope="session")
def cloud_options() -> Callable[[str, str], dict[str, Any]]:
    return _cloud_options
