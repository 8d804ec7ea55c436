"""Concurrent writes (issue 15, item 5): threads writing disjoint selections that share chunks
and shards never lose an update; async writes on one loop likewise; dask arrays whose chunks
straddle shards written from a 2-process LocalCluster lose nothing."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

import ngffcore
import ngffcore.dask
from ngffcore.store.memory import MemoryStore

zarr = pytest.importorskip("zarr")


@pytest.mark.parametrize("sharded", [False, True])
@pytest.mark.parametrize("local", [False, True])
def test_threads_sharing_chunks(tmp_path, sharded, local):
    location = str(tmp_path / "a.zarr") if local else MemoryStore()
    shape = (64, 60)
    arr = ngffcore.create_array(location, shape=shape, dtype="int32", chunks=(16, 12),
                                shards=(32, 60) if sharded else None, fill_value=-1)
    n_threads, rounds = 8, 6
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait()
                # rows [8t, 8t+8): every chunk (16 rows) and shard is shared by 2 or 4 threads
                arr[8 * t:8 * t + 8, :] = np.full((8, 60), 1000 * r + t, np.int32)
                # and a column strip: selections cross in chunks of other threads' rows
                arr[8 * t:8 * t + 8, 3 + 7 * t:5 + 7 * t] = -(1000 * r + t)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    expected = np.empty(shape, np.int32)
    last = 1000 * (rounds - 1)
    for t in range(n_threads):
        expected[8 * t:8 * t + 8, :] = last + t
        expected[8 * t:8 * t + 8, 3 + 7 * t:5 + 7 * t] = -(last + t)
    np.testing.assert_array_equal(arr[...], expected)
    if local:
        np.testing.assert_array_equal(zarr.open_array(location, mode="r")[...], expected)


def test_async_writes_sharing_shards():
    store = MemoryStore()
    arr = ngffcore.create_array(store, shape=(40, 40), dtype="uint16", chunks=(5, 5),
                                shards=(20, 20))

    async def main() -> None:
        await asyncio.gather(*(arr.write_async((slice(i, i + 1),), i + 1) for i in range(40)))

    asyncio.run(main())
    expected = np.repeat(np.arange(1, 41, dtype=np.uint16)[:, None], 40, axis=1)
    np.testing.assert_array_equal(arr[...], expected)


def test_dask_store_aligns_blocks_to_shards(tmp_path):
    da = pytest.importorskip("dask.array")
    path = str(tmp_path / "a.zarr")
    arr = ngffcore.create_array(path, shape=(50, 70), dtype="float32", chunks=(5, 7),
                                shards=(10, 14))
    data = np.arange(50 * 70, dtype="float32").reshape(50, 70)
    source = da.from_array(data, chunks=(6, 9))  # straddles every shard boundary
    ngffcore.dask.store(source, arr, scheduler="threads")
    np.testing.assert_array_equal(zarr.open_array(path, mode="r")[...], data)
    assert ngffcore.dask.aligned_chunks(((6,) * 8 + (2,), (9,) * 7 + (7,)), (10, 14),
                                        (50, 70)) == ((10,) * 5, (14,) * 5)


def test_dask_distributed_two_processes(tmp_path):
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    path = str(tmp_path / "a.zarr")
    arr = ngffcore.create_array(path, shape=(96, 90), dtype="int16", chunks=(8, 9),
                                shards=(16, 18))
    rng = np.random.default_rng(0)
    data = rng.integers(-3000, 3000, size=(96, 90)).astype("int16")
    source = da.from_array(data, chunks=(11, 13))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        arr.write_dask(source)
    np.testing.assert_array_equal(zarr.open_array(path, mode="r")[...], data)
