"""Dask arrays read through the core (issue 7): block rule and ``chunks=`` override, values
against zarr-python's reads on the threaded scheduler and on a ``LocalCluster`` with two
worker processes (local files and over HTTP), small pickles that re-read no metadata, and
credentials kept out of reprs, task names and graph keys.

References are zarr-python's reads of files written by ome-zarr-py / ngff-zarr
(``ome_writers.py``) reduced with NumPy; nothing compares ngffcore with itself.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

import ngffcore
import ome_writers as ow
from servers import RangeServer

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

HTTP = {"client_options": {"allow_http": True}}
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"  # a fake key; it must never show


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask_data")
    exp = {
        "img05": ow.write_ome_zarr_image(root, "0.5", name="img05.zarr", with_labels=False),
        "img04": ow.write_ome_zarr_image(root, "0.4", name="img04.zarr", with_labels=False),
        "shard05": ow.write_ngff_zarr_image(root, "0.5", chunks_per_shard=2),
    }
    return root, exp


@pytest.fixture(scope="module")
def served(data):
    root, exp = data
    with RangeServer(str(root)) as srv:
        yield srv


@pytest.fixture
def server(served):
    served.state.clear()
    return served


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes with one thread each; logs silenced; always closed."""
    distributed = pytest.importorskip("distributed")
    loggers = {name: logging.getLogger(name) for name in ("distributed", "tornado")}
    levels = {name: lg.level for name, lg in loggers.items()}
    for lg in loggers.values():
        lg.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its own start-up deprecations, not under test
        lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=logging.ERROR)
        client = distributed.Client(lc)
    try:
        yield client
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client.close()
            lc.close()
        for name, lg in loggers.items():
            lg.setLevel(levels[name])


def _url(srv, exp) -> str:
    return f"{srv.url}/{exp.path.name}"


def _requested(srv) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in srv.state.requests()]


METADATA_FILES = {"zarr.json", ".zarray", ".zattrs", ".zgroup"}


# -- block rule ----------------------------------------------------------------------------

# level 0 of the ome-zarr-py image: czyx (2, 8, 64, 96) uint16, chunks (1, 4, 32, 32):
# one chunk is 8 KiB; block_bytes → the blocks the rule must give (worked by hand)
RULE_CASES = [
    (8192, ((1, 1), (4, 4), (32, 32), (32, 32, 32))),        # one chunk per block
    (16384, ((2,), (4, 4), (32, 32), (32, 32, 32))),         # c taken whole, z cannot be
    (3 * 8192, ((2,), (4, 4), (32, 32), (32, 32, 32))),      # z would need 4 chunks: no
    (65536, ((2,), (8,), (64,), (32, 32, 32))),              # c, z, y whole; x one chunk
    (131072, ((2,), (8,), (64,), (64, 32))),                 # x: 2 of 3 chunks fit
    (196608, ((2,), (8,), (64,), (96,))),                    # the whole level
    (None, ((2,), (8,), (64,), (96,))),                      # default 64 MiB: one block
    (1, ((1, 1), (4, 4), (32, 32), (32, 32, 32))),           # never smaller than a chunk
]


@pytest.mark.parametrize("block_bytes,expected", RULE_CASES)
def test_blocks_follow_the_rule(data, block_bytes, expected):
    img = ngffcore.open(str(data[1]["img05"].path))
    x = img.to_dask(0, block_bytes=block_bytes)
    assert x.chunks == expected
    assert img.levels[0].to_dask(block_bytes=block_bytes).chunks == expected
    assert x.shape == img.levels[0].shape and x.dtype == img.levels[0].dtype


def test_blocks_even_out_along_the_cut_axis():
    """Along the axis that cannot be taken whole, blocks are as small as the same number of
    blocks allows: 10 chunks with 7 fitting → 2 blocks of 5 (not 7 + 3); 7 chunks with 3
    fitting → 3 blocks of 3 (one size for all, on the global grid: 3 + 3 + 1)."""
    from ngffcore.dask import block_chunks

    class Fake:
        dtype = np.dtype("u1")
        shards = None

        def __init__(self, shape, grid):
            self.shape = shape
            self.metadata = type("M", (), {"grid_shape": grid})()

    a = Fake((10, 4), (1, 4))
    assert block_chunks(a, block_bytes=7 * 4) == ((5, 5), (4,))  # type: ignore[arg-type]
    a = Fake((7, 4), (1, 4))
    assert block_chunks(a, block_bytes=3 * 4) == ((3, 3, 1), (4,))  # type: ignore[arg-type]


def test_sharded_blocks_are_whole_shards(data):
    exp = data[1]["shard05"]
    img = ngffcore.open(str(exp.path))
    lvl = img.levels[0]
    assert lvl.shards == (8, 32, 32) and lvl.chunks == (8, 16, 16)
    # smallest block: one shard, never one inner chunk
    assert img.to_dask(0, block_bytes=1).chunks == ((8,), (32, 32), (32, 32))
    # (8, 32, 32) uint16 shard = 16 KiB; two fit: y is grown to 2 shards (the whole axis)
    assert img.to_dask(0, block_bytes=2 * 16384).chunks == ((8,), (64,), (32, 32))
    x = img.to_dask(0)
    assert x.chunks == ((8,), (64,), (64,))
    np.testing.assert_array_equal(x.compute(scheduler="threads"), exp.levels[0].data)
    with pytest.raises(ValueError, match="shard shape"):
        img.to_dask(0, chunks=(8, 16, 32))  # an inner chunk multiple, not a shard multiple


def test_region_blocks_sit_on_the_global_grid(data):
    exp = data[1]["img05"]
    img = ngffcore.open(str(exp.path))
    region = {"z": (3.0, 13.0), "y": (5.0, 25.0), "x": (1.0, 40.0)}  # µm
    level, box = img.region_box(region, level=0)
    assert box == ((0, 2), (2, 7), (10, 50), (2, 80))
    x = img.to_dask(0, region, block_bytes=1)
    # cut at multiples of the chunk shape (1, 4, 32, 32) of the level, clipped to the box
    assert x.chunks == ((1, 1), (2, 3), (22, 18), (30, 32, 16))
    ref = exp.levels[0].data[tuple(slice(a, b) for a, b in box)]
    np.testing.assert_array_equal(x.compute(scheduler="threads"), ref)
    np.testing.assert_array_equal(img.read_region(region, level=0).data, ref)
    # by resolution, and with center/size: the same box rule as read_region
    y = img.to_dask(region=region, resolution=1.0)
    r = img.read_region(region, resolution=1.0)
    np.testing.assert_array_equal(y.compute(scheduler="threads"), r.data)
    z = img.to_dask(0, center={"y": 16.0, "x": 24.0}, size={"y": 8.0, "x": 8.0})
    r = img.read_region(center={"y": 16.0, "x": 24.0}, size={"y": 8.0, "x": 8.0}, level=0)
    np.testing.assert_array_equal(z.compute(scheduler="threads"), r.data)
    empty = img.to_dask(0, {"x": (1000.0, 2000.0)})
    assert empty.shape[3] == 0 and empty.compute(scheduler="threads").size == 0


def test_chunks_override(data):
    exp = data[1]["img04"]
    lvl = ngffcore.open(str(exp.path)).levels[0]  # (2, 8, 64, 96), chunks (1, 4, 32, 32)
    ref = exp.levels[0].data
    cases = {
        (1, 8, 64, 64): ((1, 1), (8,), (64,), (64, 32)),
        (2, -1, None, 96): ((2,), (8,), (64,), (96,)),
        (2, 8, 100, 96): ((2,), (8,), (64,), (96,)),  # at least the axis: the whole axis
        ((1, 1), (4, 4), (64,), (32, 64)): ((1, 1), (4, 4), (64,), (32, 64)),
    }
    for chunks, expected in cases.items():
        x = lvl.to_dask(chunks=chunks)
        assert x.chunks == expected, chunks
        np.testing.assert_array_equal(x.compute(scheduler="threads"), ref)
    bad = [
        (1, 3, 32, 32),            # splits a z chunk
        (1, 4, 48, 32),            # splits a y chunk
        (1, 4, 32),                # too few entries
        ((1, 1), (2, 6), (64,), (96,)),  # a boundary inside a chunk
        ((2,), (8,), (64,), (90,)),      # sizes do not sum to the axis
        "auto",
        (0, 4, 32, 32),
        (1.5, 4, 32, 32),
    ]
    for chunks in bad:
        with pytest.raises(ValueError):
            lvl.to_dask(chunks=chunks)


# -- values --------------------------------------------------------------------------------

def _projections(x, scheduler=None):
    """Maximum-intensity projection over z and per-channel mean of a czyx level."""
    mip, mean = dask.compute(x.max(axis=1), x.mean(axis=(1, 2, 3)), scheduler=scheduler)
    return mip, mean


def _check(x, ref, scheduler=None):
    mip, mean = _projections(x, scheduler)
    np.testing.assert_array_equal(mip, ref.max(axis=1))
    np.testing.assert_allclose(mean, ref.mean(axis=(1, 2, 3)), rtol=1e-12)


@pytest.mark.parametrize("name", ["img05", "img04"])
def test_threaded_local(data, name):
    exp = data[1][name]
    img = ngffcore.open(str(exp.path))
    for level in range(3):
        x = img.to_dask(level, block_bytes=8192)
        assert x.npartitions > 1
        _check(x, exp.levels[level].data, "threads")


@pytest.mark.parametrize("name", ["img05", "img04"])
def test_threaded_http(data, server, name):
    exp = data[1][name]
    img = ngffcore.open(_url(server, exp), **HTTP)
    server.state.clear()
    x = img.to_dask(0, block_bytes=8192)
    _check(x, exp.levels[0].data, "threads")
    # every chunk object once per task that needs it, nothing else
    assert not METADATA_FILES & set(_requested(server))
    assert all(r.method == "GET" for r in server.state.requests())


def test_slices_of_a_dask_array_read_only_what_they_need(data, server):
    """dask fuses later slicing into the block getter: one plane of one channel reads that
    plane's chunks, not whole blocks."""
    exp = data[1]["img05"]
    img = ngffcore.open(_url(server, exp), **HTTP)
    x = img.to_dask(0)  # one block: the whole level
    server.state.clear()
    plane = x[1, 5, 10:50, ::3].compute(scheduler="threads")
    np.testing.assert_array_equal(plane, exp.levels[0].data[1, 5, 10:50, ::3])
    assert len(server.state.requests()) == 2 * 3  # y chunks 0-1 × x chunks 0-2 of one plane
    picked = x[:, [7, 2, 2], 3].compute(scheduler="threads")
    np.testing.assert_array_equal(picked, exp.levels[0].data[:, [7, 2, 2], 3])


def test_cluster_local(data, cluster):
    for name in ("img05", "shard05"):
        exp = data[1][name]
        img = ngffcore.open(str(exp.path))
        x = img.to_dask(0, block_bytes=8192)
        ref = exp.levels[0].data
        if name == "img05":
            _check(x, ref)
        else:  # zyx: projection over z, mean of everything
            np.testing.assert_array_equal(x.max(axis=0).compute(), ref.max(axis=0))
            np.testing.assert_allclose(x.mean().compute(), ref.mean(), rtol=1e-12)


def test_cluster_http(data, server, cluster):
    for name in ("img05", "img04"):
        exp = data[1][name]
        img = ngffcore.open(_url(server, exp), **HTTP)
        server.state.clear()
        x = img.to_dask(0, block_bytes=8192)
        _check(x, exp.levels[0].data)
        got = _requested(server)
        assert got and not METADATA_FILES & set(got)  # the workers re-read no metadata


def test_cluster_workers_share_one_store_and_size_their_pool(data, server, cluster):
    """On a worker, every task's array shares one store per process (one HTTP client), and
    the first block read sized the native pool by the rule in docs/design.md: dask's nanny
    sets OMP_NUM_THREADS=1 in the worker processes it starts, and the pool follows it."""
    exp = data[1]["img05"]
    img = ngffcore.open(_url(server, exp), **HTTP)
    x = img.to_dask(0, block_bytes=8192)
    x.sum().compute()

    def probe():
        import os

        import ngffcore.store.objectstore as st

        return (len(st._SHARED), ngffcore.get_num_threads(), os.environ.get("OMP_NUM_THREADS"))

    for n_shared, threads, omp in cluster.run(probe).values():
        assert n_shared >= 1
        assert omp == "1" and threads == 1


def test_worker_pool_rule():
    from ngffcore.dask import worker_pool_size

    assert worker_pool_size(8, {"OMP_NUM_THREADS": "1"}) == 1
    assert worker_pool_size(8, {"OMP_NUM_THREADS": "4"}) == 4
    assert worker_pool_size(2, {"OMP_NUM_THREADS": "16"}) == 2  # never above the cores
    assert worker_pool_size(8, {}) is None  # no limit given: the pool is left alone
    assert worker_pool_size(8, {"OMP_NUM_THREADS": "many"}) is None
    assert worker_pool_size(8, {"OMP_NUM_THREADS": "0"}) is None


def test_threaded_scheduler_leaves_the_pool_alone(data):
    before = ngffcore.get_num_threads()
    img = ngffcore.open(str(data[1]["img05"].path))
    img.to_dask(0, block_bytes=8192).sum().compute(scheduler="threads")
    assert ngffcore.get_num_threads() == before


# -- pickling ------------------------------------------------------------------------------

def test_pickles_are_small_and_reread_nothing(data, server):
    exp = data[1]["img05"]
    img = ngffcore.open(_url(server, exp), **HTTP)
    lvl = img.levels[1]
    arr = ngffcore.open_array(f"{_url(server, exp)}/s0", **HTTP)
    blobs = {"image": pickle.dumps(img), "level": pickle.dumps(lvl), "array": pickle.dumps(arr)}
    assert len(blobs["level"]) < 2048 and len(blobs["array"]) < 2048
    assert len(blobs["image"]) < 16384
    server.state.clear()
    img2, lvl2, arr2 = (pickle.loads(blobs[k]) for k in ("image", "level", "array"))
    assert server.state.requests() == []  # unpickling sends nothing
    assert isinstance(img2, ngffcore.Image) and isinstance(lvl2, ngffcore.Level)
    assert img2.cache is None and img.cache is not None  # the chunk cache stays behind
    assert (lvl2.path, lvl2.index, lvl2.scale, lvl2.translation) == (
        lvl.path, lvl.index, lvl.scale, lvl.translation)
    assert img2.axes == img.axes and img2.channels == img.channels
    assert [lv.shape for lv in img2.levels] == [lv.shape for lv in img.levels]
    assert img2._store is lvl2._store  # one store per process and location
    assert img2._store is not img._store
    assert pickle.loads(blobs["array"])._store is arr2._store
    np.testing.assert_array_equal(lvl2[:], exp.levels[1].data)
    np.testing.assert_array_equal(arr2[0, 3], exp.levels[0].data[0, 3])
    np.testing.assert_array_equal(img2.read_region(level=2).data, exp.levels[2].data)
    assert not METADATA_FILES & set(_requested(server))


def test_pickles_local_and_v2_attributes(data):
    exp = data[1]["img04"]
    img = ngffcore.open(str(exp.path))
    lvl = img.levels[0]
    attrs = lvl.attrs  # v2: .zattrs read now; travels with the pickle
    lvl2 = pickle.loads(pickle.dumps(lvl))
    m, m2 = lvl.metadata, lvl2.metadata
    assert m2.document == m.document and lvl2.attrs == attrs
    assert (m2.shape, m2.dtype, m2.grid_shape, m2.fill_bytes, m2.codec.names) == (
        m.shape, m.dtype, m.grid_shape, m.fill_bytes, m.codec.names)
    np.testing.assert_array_equal(lvl2[:], exp.levels[0].data)
    img2 = pickle.loads(pickle.dumps(img))
    np.testing.assert_array_equal(img2.to_dask(1).compute(scheduler="threads"),
                                  exp.levels[1].data)


def test_pickled_sharded_array_leaves_its_index_cache(data, server):
    exp = data[1]["shard05"]
    img = ngffcore.open(_url(server, exp), **HTTP)
    lvl = img.levels[0]
    lvl[0, :16, :16]
    assert lvl._index_cache
    lvl2 = pickle.loads(pickle.dumps(lvl))
    assert lvl2._index_cache == {}
    np.testing.assert_array_equal(lvl2[:], exp.levels[0].data)


def test_store_from_an_obstore_object_pickles(data, server):
    from obstore.store import HTTPStore

    exp = data[1]["img05"]
    obj = HTTPStore.from_url(f"{_url(server, exp)}/s0", client_options={"allow_http": True})
    arr = ngffcore.open_array(obj)
    arr2 = pickle.loads(pickle.dumps(arr))
    assert arr2._store is pickle.loads(pickle.dumps(arr))._store
    np.testing.assert_array_equal(arr2[:], exp.levels[0].data)
    np.testing.assert_array_equal(arr.to_dask(chunks=(1, 4, 32, 32)).compute(
        scheduler="threads"), exp.levels[0].data)


# -- credentials ---------------------------------------------------------------------------

@pytest.fixture
def s3_image(data, server):
    """The test server as a path-style S3 endpoint: it serves ``<root>/<bucket>/<key>`` and
    ignores signatures, so with its root moved up one directory the data directory is the
    bucket. Fake credentials, sent (signed) with every request."""
    root, exp = data
    bucket = root.name
    server.state.root = str(root.parent)
    options = dict(endpoint=server.url, region="us-east-1", aws_access_key_id="AKIAFAKEKEY",
                   aws_secret_access_key=SECRET, virtual_hosted_style_request=False,
                   client_options={"allow_http": True})
    try:
        yield f"s3://{bucket}/img05.zarr", options, exp["img05"]
    finally:
        server.state.root = str(root)


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text
        assert "AKIAFAKEKEY" not in text


def test_credentials_stay_out_of_names_and_reprs(s3_image, server):
    url, options, exp = s3_image
    img = ngffcore.open(url, **options)
    lvl = img.levels[0]
    x = img.to_dask(0, block_bytes=8192)
    y = lvl.to_dask()
    graph = dict(x.__dask_graph__())
    _no_secret(repr(img), str(img), repr(lvl), repr(lvl._store), str(x), repr(x), x.name,
               y.name, repr(list(graph)), repr(graph), repr(x.__dask_graph__().layers),
               repr(dask.base.tokenize(x)))
    # the credentials do travel, inside the pickled store, as obstore options
    blob = pickle.dumps(lvl)
    assert SECRET.encode() in blob
    lvl2 = pickle.loads(blob)
    assert lvl2._store._options["aws_secret_access_key"] == SECRET
    server.state.clear()
    np.testing.assert_array_equal(x.compute(scheduler="threads"), exp.levels[0].data)
    assert server.state.requests()


def test_credentials_reach_workers(s3_image, server, cluster):
    url, options, exp = s3_image
    img = ngffcore.open(url, **options)
    x = img.to_dask(0, block_bytes=8192)
    _check(x, exp.levels[0].data)


def test_task_names_depend_on_what_is_read(data):
    exp = data[1]["img05"]
    img = ngffcore.open(str(exp.path))
    again = ngffcore.open(str(exp.path))
    assert img.to_dask(0).name == again.to_dask(0).name  # deterministic
    assert img.to_dask(0).name.startswith("ngffcore-")
    names = {img.to_dask(0).name, img.to_dask(1).name, img.to_dask(0, block_bytes=1).name,
             img.to_dask(0, {"x": (0.0, 10.0)}).name}
    assert len(names) == 4


def test_same_url_other_endpoint_other_name(data, server):
    """Two stores with one URL but different endpoints hold different data: their arrays get
    different task names (and the secret-free settings are what tells them apart)."""
    from ngffcore.dask import dask_name

    lvl = ngffcore.open(str(data[1]["img05"].path)).levels[0]
    box = tuple((0, n) for n in lvl.shape)
    chunks = lvl.to_dask().chunks
    names = set()
    for endpoint, secret in [("http://a:1", "x"), ("http://b:1", "x"), ("http://a:1", "y")]:
        store = ngffcore.store.objectstore.ObjectStore(None, "s3://bucket/img", options={
            "endpoint": endpoint, "aws_secret_access_key": secret})
        clone = ngffcore.Level(store, lvl.metadata, "s0", "s0", 0, lvl.scale, lvl.translation)
        names.add(dask_name(clone, box, chunks))
    assert len(names) == 2  # the endpoint counts, the secret does not


def test_public_url_drops_user_info_and_query():
    from ngffcore.dask import public_url

    assert public_url("https://user:pw@host:8443/a/b?sig=xyz#f") == "https://host:8443/a/b"
    assert public_url("s3://bucket/key") == "s3://bucket/key"
    assert public_url('S3Store(bucket="b")') == 'S3Store(bucket="b")'


def test_dask_is_not_imported_by_ngffcore():
    import subprocess
    import sys

    code = "import ngffcore, sys; assert 'dask' not in sys.modules, 'dask imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_empty_and_zero_dim(tmp_path: Path):
    import zarr

    z = zarr.create_array(str(tmp_path / "e.zarr"), shape=(0, 5), chunks=(2, 5), dtype="i4")
    x = ngffcore.open_array(str(tmp_path / "e.zarr")).to_dask()
    assert x.shape == (0, 5) and x.compute(scheduler="threads").shape == (0, 5)
    z = zarr.create_array(str(tmp_path / "s.zarr"), shape=(), chunks=(), dtype="f8",
                          fill_value=2.5)
    z[()] = 7.0
    x = ngffcore.open_array(str(tmp_path / "s.zarr")).to_dask()
    assert x.shape == () and float(x.compute(scheduler="threads")) == 7.0
