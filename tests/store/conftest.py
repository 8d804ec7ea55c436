"""Fixtures shared by the store tests: the options that point obstore's GCS and Azure clients
at ``RangeServer`` (moto's S3 server is in ``tests/conftest.py``, shared by every directory)."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest


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
