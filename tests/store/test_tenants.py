"""Issue 13, item 9: tenants sharing one ``ChunkCache`` never see each other's chunks.

Two S3 endpoints (moto's server, two processes on 127.0.0.1) hold the same bucket and keys
with different pixels. Opened as the same ``s3://`` URL with other options, or as obstore
store objects with equal reprs, every tenant gets its own endpoint's pixels (compared with
zarr-python reads of the source arrays), in either order, and its own requests go out.
"""

from __future__ import annotations

import os
from datetime import timedelta

import numpy as np
import pytest
import zarr

import ngffcore
from ngffcore.store.location import open_store

pytest.importorskip("moto")
boto3 = pytest.importorskip("boto3")

BUCKET = "shared-name"
KEY = "test"
SECRET = "s3cr3t-value-never-in-a-key"


def _moto(start_moto, root, seed: int) -> str:
    """A moto S3 server holding ``root/img`` (written with ``seed``) under ``BUCKET``."""
    endpoint = start_moto()
    z = zarr.create_array(str(root / "img"), shape=(24, 40), chunks=(8, 8), dtype="uint16",
                          fill_value=0)
    z[...] = np.random.default_rng(seed).integers(1, 60000, (24, 40))
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    client.create_bucket(Bucket=BUCKET)
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            # readable without credentials: the second tenant signs nothing
            client.upload_file(path, BUCKET, os.path.relpath(path, root),
                               ExtraArgs={"ACL": "public-read"})
    return endpoint


@pytest.fixture(scope="module")
def two_endpoints(start_moto, tmp_path_factory):
    out = []
    for seed in (1, 2):
        root = tmp_path_factory.mktemp(f"tenant{seed}")
        endpoint = _moto(start_moto, root, seed)
        out.append((endpoint, zarr.open_array(str(root / "img"), mode="r")[...]))
    assert not np.array_equal(out[0][1], out[1][1])
    return out


def _private(endpoint: str) -> dict:
    return dict(endpoint=endpoint, region="us-east-1", access_key_id=KEY,
                secret_access_key=SECRET, client_options={"allow_http": True})


def _anonymous(endpoint: str) -> dict:
    return dict(endpoint=endpoint, region="us-east-1", skip_signature=True,
                client_options={"allow_http": True})


SEL = (slice(3, 21), slice(5, 37))


@pytest.mark.parametrize("private_first", [True, False])
@pytest.mark.parametrize("sel", [SEL, (slice(0, 8), slice(0, 8))])
def test_same_url_other_endpoint_never_shares_entries(two_endpoints, private_first, sel):
    """The issue's case: a tenant opening ``s3://bucket/img`` with another endpoint and no
    credentials gets its own endpoint's pixels (and sends its own requests), whether the
    private tenant read first or second; the private tenant is never poisoned."""
    (ep_a, ref_a), (ep_b, ref_b) = two_endpoints
    cache = ngffcore.ChunkCache()
    tenants = [(_private(ep_a), ref_a), (_anonymous(ep_b), ref_b)]
    if not private_first:
        tenants.reverse()
    for options, ref in tenants:
        a = ngffcore.open_array(f"s3://{BUCKET}/img", **options)
        assert a.stats is not None
        a.stats.reset()
        np.testing.assert_array_equal(a.read(sel, cache=cache), ref[sel])
        assert a.stats.requests > 0  # its own chunks, fetched from its own endpoint
    # each tenant again: all hits now, still its own pixels
    for options, ref in tenants:
        a = ngffcore.open_array(f"s3://{BUCKET}/img", **options)
        assert a.stats is not None
        a.stats.reset()  # the open's own metadata GET aside
        np.testing.assert_array_equal(a.read(sel, cache=cache), ref[sel])
        assert a.stats.requests == 0


@pytest.mark.parametrize("private_first", [True, False])
def test_obstore_objects_with_equal_reprs_never_share_entries(two_endpoints, private_first):
    from obstore.store import S3Store

    (ep_a, ref_a), (ep_b, ref_b) = two_endpoints
    stores = [(S3Store(BUCKET, prefix="img", endpoint=ep_a, region="us-east-1",
                       access_key_id=KEY, secret_access_key=SECRET,
                       client_options={"allow_http": True}), ref_a),
              (S3Store(BUCKET, prefix="img", endpoint=ep_b, region="us-east-1",
                       skip_signature=True, client_options={"allow_http": True}), ref_b)]
    assert repr(stores[0][0]) == repr(stores[1][0])
    if not private_first:
        stores.reverse()
    cache = ngffcore.ChunkCache()
    for store, ref in stores:
        got = ngffcore.open_array(store).read(SEL, cache=cache)
        np.testing.assert_array_equal(got, ref[SEL])


def test_same_location_and_options_still_share(two_endpoints):
    """Two opens with the same options (timeouts and retries aside) are one tenant: the
    second read is all hits and sends no request."""
    (ep_a, ref_a), _ = two_endpoints
    cache = ngffcore.ChunkCache()
    first = ngffcore.open_array(f"s3://{BUCKET}/img", **_private(ep_a))
    np.testing.assert_array_equal(first.read(SEL, cache=cache), ref_a[SEL])
    options = _private(ep_a)
    options["client_options"] = {"allow_http": True, "timeout": "7s"}
    options["retry_config"] = {"max_retries": 1}
    second = ngffcore.open_array(f"s3://{BUCKET}/img", **options)
    assert second.stats is not None
    second.stats.reset()
    np.testing.assert_array_equal(second.read(SEL, cache=cache), ref_a[SEL])
    assert second.stats.requests == 0


# --------------------------------------------------------------------------------------
# identity rules, without servers
# --------------------------------------------------------------------------------------
def _ident(url: str = "s3://b/img", **options):
    missing = options.pop("missing_on_403", False)
    return open_store(url, missing_on_403=missing, **options).identity


def test_url_store_identity_covers_everything_that_selects_bytes():
    base = dict(endpoint="http://127.0.0.1:1", region="us-east-1", access_key_id="k",
                secret_access_key=SECRET)
    ident = _ident(**base)
    hash(ident)
    assert _ident(**base) == ident
    # tuning only: same tenant
    assert _ident(**base, retry_config={"max_retries": 0,
                                        "retry_timeout": timedelta(seconds=1)}) == ident
    assert _ident(**base, client_options={"timeout": "1s", "connect_timeout": "1s"}) == ident
    # anything that selects the bytes (or whether a refusal reads as missing): another one
    for change in (dict(endpoint="http://127.0.0.1:2"), dict(region="eu-west-1"),
                   dict(access_key_id="other"), dict(secret_access_key="other"),
                   dict(client_options={"default_headers": {"x-tenant": "2"}}),
                   dict(missing_on_403=True)):
        assert _ident(**{**base, **change}) != ident, change
    assert _ident("s3://b/other", **base) != ident
    assert _ident("s3://c/img", **base) != ident
    # secrets never in clear
    for text in (repr(ident), str(ident)):
        assert SECRET not in text


def test_obstore_object_identity():
    from obstore.store import HTTPStore, MemoryStore, S3Store

    def s3(**kw):
        return open_store(S3Store("b", prefix="img", region="us-east-1", **kw)).identity

    a = s3(endpoint="http://127.0.0.1:1", access_key_id="k", secret_access_key=SECRET)
    assert a == s3(endpoint="http://127.0.0.1:1", access_key_id="k", secret_access_key=SECRET)
    assert a != s3(endpoint="http://127.0.0.1:2", access_key_id="k", secret_access_key=SECRET)
    assert a != s3(endpoint="http://127.0.0.1:1", access_key_id="k", secret_access_key="x")
    assert SECRET not in repr(a)

    def provider_1():
        return {"access_key_id": "k1", "secret_access_key": "s1", "token": None,
                "expires_at": None}

    def provider_2():
        return {"access_key_id": "k2", "secret_access_key": "s2", "token": None,
                "expires_at": None}

    p1 = s3(endpoint="http://127.0.0.1:1", credential_provider=provider_1)
    assert p1 == s3(endpoint="http://127.0.0.1:1", credential_provider=provider_1)
    assert p1 != s3(endpoint="http://127.0.0.1:1", credential_provider=provider_2)
    h = open_store(HTTPStore.from_url("http://127.0.0.1:1/x")).identity
    assert h == open_store(HTTPStore.from_url("http://127.0.0.1:1/x")).identity
    assert h != open_store(HTTPStore.from_url("http://127.0.0.1:2/x")).identity
    m1, m2 = MemoryStore(), MemoryStore()
    assert open_store(m1).identity != open_store(m2).identity
    assert open_store(m1).identity == open_store(m1).identity


def test_local_store_identity_is_the_real_path(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "e").mkdir()
    os.symlink(tmp_path / "d", tmp_path / "link")
    ident = open_store(str(tmp_path / "d")).identity
    assert open_store(str(tmp_path / "link")).identity == ident
    assert open_store(str(tmp_path / "e" / ".." / "d")).identity == ident
    assert open_store(str(tmp_path / "e")).identity != ident
    # a store that follows links out of its root reads other bytes than a confined one
    from ngffcore.store.local import LocalStore

    assert LocalStore(tmp_path / "d", follow_external_links=True).identity != ident
    assert LocalStore(tmp_path / "d").identity == ident
