"""Property tests (issue 15): random sequences of writes and reads against a numpy model, for
sharded and unsharded arrays, Zarr v2 and v3, every dtype; the final state is also read by
zarr-python."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ngffcore
from ngffcore.store.memory import MemoryStore

zarr = pytest.importorskip("zarr")

DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
          "float16", "float32", "float64", "complex64", "complex128"]
V3_INNER = [None,
            [{"name": "bytes", "configuration": {"endian": "big"}},
             {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5,
                                                 "shuffle": "bitshuffle", "typesize": 4}}],
            [{"name": "transpose", "configuration": {"order": [1, 0]}},
             {"name": "bytes", "configuration": {"endian": "little"}},
             {"name": "gzip", "configuration": {"level": 1}}, {"name": "crc32c"}]]
V2_COMPRESSORS = ["default", None, {"id": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 2},
                  {"id": "lz4"}, {"id": "zlib", "level": 1}]


@st.composite
def layouts(draw):
    shape = (draw(st.integers(1, 17)), draw(st.integers(1, 17)))
    chunks = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    dtype = draw(st.sampled_from(DTYPES))
    fmt = draw(st.sampled_from([2, 3]))
    options = {"shape": shape, "dtype": dtype, "chunks": chunks, "zarr_format": fmt}
    if fmt == 3:
        options["codecs"] = draw(st.sampled_from(V3_INNER))
        if draw(st.booleans()):
            options["shards"] = (chunks[0] * draw(st.integers(1, 3)),
                                 chunks[1] * draw(st.integers(1, 3)))
        options["fill_value"] = draw(st.sampled_from([None, 1]))
    else:
        options["compressor"] = draw(st.sampled_from(V2_COMPRESSORS))
        options["order"] = draw(st.sampled_from(["C", "F"]))
        options["fill_value"] = draw(st.sampled_from([None, 0, 1]))
    return options


def _box(draw, shape):
    sel = []
    for n in shape:
        if draw(st.integers(0, 4)) == 0:
            sel.append(draw(st.integers(-n, n - 1)))  # an integer index (dropped axis)
        else:
            a = draw(st.integers(0, n))
            b = draw(st.integers(a, n + 3))  # past the end clips
            sel.append(slice(a, b))
    return tuple(sel)


def _values(rng, dtype, shape):
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    return rng.standard_normal(shape).astype(dt)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(options=layouts(), data=st.data())
def test_random_writes_match_numpy(options, data, tmp_path_factory):
    local = data.draw(st.booleans())
    location = str(tmp_path_factory.mktemp("w") / "a.zarr") if local else MemoryStore()
    arr = ngffcore.create_array(location, **options)
    dtype = arr.dtype
    fill = arr.fill_value
    model = np.zeros(options["shape"], dtype) if fill is None else np.full(options["shape"],
                                                                            fill, dtype)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    for _ in range(data.draw(st.integers(1, 6))):
        sel = _box(data.draw, options["shape"])
        target = model[sel]
        kind = data.draw(st.sampled_from(["array", "scalar", "fill"]))
        if kind == "array":
            value = _values(rng, dtype, np.shape(target))
        elif kind == "scalar":
            value = _values(rng, dtype, ())[()]
        else:
            value = model.dtype.type(0 if fill is None else fill)
        arr[sel] = value
        model[sel] = value
        check = _box(data.draw, options["shape"])
        np.testing.assert_array_equal(arr[check], model[check])
    np.testing.assert_array_equal(arr[...], model)
    if local:
        np.testing.assert_array_equal(zarr.open_array(location, mode="r")[...], model)
