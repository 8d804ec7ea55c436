"""Read benchmarks: ngffcore against its peers, same data, same selections, same thread budget.

Groups are ``<dataset label>/<workload>``; rows (``extra_info["peer"]``):

* ``limit``         ngffcore's native decode + scatter of chunk bytes already in memory
                    (``prep = prefetch(a, sel)`` untimed, ``prep.run(out)`` timed)
* ``ngffcore``      ``a[sel]``
* ``ngffcore_out``  ``a.read(sel, out=preallocated)``
* ``tensorstore``   ``t[sel].read().result()``
* ``zarrs``         zarr-python with ``zarrs.ZarrsCodecPipeline``
* ``zarr``          zarr-python, default ``BatchedCodecPipeline``

Every row's result is checked against ngffcore's ``a[sel]`` once, after timing.
"""

from __future__ import annotations

from typing import Any

import pytest

import local_suite as bc
import make_data

CASES = [
    pytest.param(ds, wl, peer, id=f"{ds}-{wl}-{peer}", marks=pytest.mark.benchmark(group=bc.group_name(ds, wl)))
    for ds in make_data.DATASETS
    for wl in bc.WORKLOAD_NAMES
    for peer in bc.PEERS
]


@pytest.mark.parametrize(("dataset", "workload", "peer"), CASES)
def test_read(benchmark: Any, ngffcore: Any, arrays: Any, reference: Any, is_small: bool,
              dataset: str, workload: str, peer: str) -> None:
    spec = make_data.DATASETS[dataset]
    shape = make_data.shape_for(is_small)
    wl = bc.dataset_workloads(dataset, is_small)[workload]
    arr = arrays.get(peer, make_data.dataset_path(dataset, is_small), spec.zarr_format)
    ref = reference(dataset, workload)  # computed before timing, once per dataset/workload

    runner = bc.make_runner(peer, arr, wl, shape)
    benchmark.extra_info.update(
        peer=peer, kind="read", dataset=dataset, workload=workload, chunks=wl.chunks_touched,
        workload_note=wl.note, threads=bc.THREADS,
    )
    result = benchmark.pedantic(
        runner.fn, rounds=bc.rounds_for(bc.ROUNDS[workload]), warmup_rounds=bc.warmup_rounds(), iterations=1
    )

    got = runner.as_array(result)
    del result, runner
    if not bc.same_values(got, ref):
        pytest.fail(f"{peer} result differs from the reference for {dataset}/{workload}: {bc.first_mismatch(got, ref)}")
