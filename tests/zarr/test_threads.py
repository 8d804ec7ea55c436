"""Worker-pool size and concurrent reads of one ``Array`` from several Python threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numcodecs
import numpy as np
import pytest
from zarr.codecs import BytesCodec, ZstdCodec

import ngffcore


@pytest.fixture
def restore_threads():
    before = ngffcore.get_num_threads()
    yield
    ngffcore.set_num_threads(before)


@pytest.fixture(scope="module")
def arrays(writer, make_data):
    a = make_data((64, 48), "<f8", seed=70)
    b = make_data((60, 50), "uint16", seed=71)
    return [
        (writer.v2(a, chunks=(8, 8), compressor=numcodecs.Blosc(cname="zstd", shuffle=2, blocksize=256)), a),
        (writer.v3(b, chunks=(4, 5), shards=(12, 25), compressors=ZstdCodec(level=1),
                   serializer=BytesCodec(endian="big")), b),
    ]


def test_default_is_number_of_cores():
    out = subprocess.run(
        [sys.executable, "-c", "import ngffcore; print(ngffcore.get_num_threads())"],
        capture_output=True, text=True, check=True,
    )
    n = int(out.stdout.strip())
    cores = {os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        cores.add(len(os.sched_getaffinity(0)))
    assert n in cores


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_set_num_threads(restore_threads, arrays, identical, n):
    ngffcore.set_num_threads(n)
    assert ngffcore.get_num_threads() == n
    for path, data in arrays:
        arr = ngffcore.open_array(path)
        identical(arr[...], data)
        identical(arr[5:40, 3:33], data[5:40, 3:33])


def test_concurrent_reads_share_one_array(restore_threads, arrays, identical):
    ngffcore.set_num_threads(2)
    errors: list[BaseException] = []
    for path, data in arrays:
        arr = ngffcore.open_array(path)
        rng = np.random.default_rng(0)
        sels = []
        for _ in range(24):
            r0, c0 = rng.integers(0, data.shape[0]), rng.integers(0, data.shape[1])
            sels.append((slice(r0, r0 + int(rng.integers(1, 30))), slice(c0, c0 + int(rng.integers(1, 30)))))
        barrier = threading.Barrier(4)

        def worker(offset: int) -> None:
            try:
                barrier.wait()
                for k in range(len(sels)):
                    sel = sels[(k + offset) % len(sels)]
                    identical(arr[sel], data[sel], f"thread {offset} {sel}")
                    out = np.empty_like(data)
                    assert arr.read(..., out=out) is out
                    identical(out, data)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i * 5,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors[0]
