"""The decoded-chunk cache (issue 5): ``ChunkCache`` against a reference LRU model, its
byte bound, bypass of large reads, clearing, sharing between images, exact hit/miss counts,
immutability of cached chunks, and correctness under concurrent use (8 threads, plus
asyncio tasks on another thread) with a cache small enough to evict constantly.

Pixels are compared with zarr-python reads (``tile_writers.py``); chunk counts come from the
chunk grid as written; requests are counted in the test server's own log.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections import Counter, OrderedDict
from typing import Any

import numpy as np
import pytest

import ngffcore
import tile_writers as tw
from tile_writers import served, server  # noqa: F401  (fixtures shared with the other tile tests)

HTTP = {"client_options": {"allow_http": True}}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    cases = tw.write_cases(root, ["czyx-0.4", "czyx-0.5-sharded", "yxc-0.5", "tczyx-0.4"],
                           ome_zarr_py=False)
    # same layout and chunk keys as czyx-0.4, other pixels: must never share cache entries
    version, axes, shape, chunks, opts = tw.HAND_CASES["czyx-0.4"]
    cases["twin"] = tw.write_case(root, "twin", version, axes, shape, chunks, seed=77, **opts)
    return root, cases


_url = tw.url


def _check(identical, got: Any, expected: np.ndarray, what: str) -> None:
    assert isinstance(got, np.ndarray), what
    identical(got, expected, what)


def _slab(n_chunks: int, chunk_bytes: int, value: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    slab = np.full(n_chunks * chunk_bytes, value % 256, dtype=np.uint8)
    return slab, [slab[i * chunk_bytes:(i + 1) * chunk_bytes] for i in range(n_chunks)]


def _stats(cache: ngffcore.ChunkCache) -> tuple[int, int, int, int, int]:
    s = cache.stats()
    return s.hits, s.misses, s.evictions, s.bytes, s.chunks


# --------------------------------------------------------------------------------------
# ChunkCache on its own
# --------------------------------------------------------------------------------------


def test_constructor_checks():
    with pytest.raises(ValueError):
        ngffcore.ChunkCache(-1)
    for bad in (0, -0.5, 1.01, 2):
        with pytest.raises(ValueError):
            ngffcore.ChunkCache(1000, bypass_fraction=bad)
    c = ngffcore.ChunkCache(1000, bypass_fraction=1)
    assert (c.max_bytes, c.bypass_fraction) == (1000, 1)
    assert _stats(c) == (0, 0, 0, 0, 0)
    assert ngffcore.ChunkCache().max_bytes == 512 * 2**20


def test_insert_needs_one_chunk_per_key():
    cache = ngffcore.ChunkCache(1000)
    slab, chunks = _slab(2, 10)
    with pytest.raises(ValueError):
        cache.insert(["a", "b", "c"], slab, chunks)
    assert _stats(cache) == (0, 0, 0, 0, 0)


def test_stats_exact_for_a_known_sequence():
    cache = ngffcore.ChunkCache(1000)
    assert cache.lookup(["a", "b"]) == [None, None]
    assert _stats(cache) == (0, 2, 0, 0, 0)
    slab, chunks = _slab(2, 100, 1)
    cache.insert(["a", "b"], slab, chunks)
    assert _stats(cache) == (0, 2, 0, 200, 2)
    found = cache.lookup(["a", "x", "b", "a"])
    assert found[1] is None
    for f, src in zip((found[0], found[2], found[3]), (chunks[0], chunks[1], chunks[0])):
        assert f is not None and np.shares_memory(f, src) and np.array_equal(f, src)
    assert _stats(cache) == (3, 3, 0, 200, 2)
    slab2, chunks2 = _slab(3, 200, 2)
    cache.insert(["x", "y", "z"], slab2, chunks2)
    assert _stats(cache) == (3, 3, 0, 800, 5)
    slab3, chunks3 = _slab(1, 300, 3)  # 1100 > 1000: the least recently used slab goes
    cache.insert(["w"], slab3, chunks3)
    assert _stats(cache) == (3, 3, 1, 900, 4)
    assert [f is None for f in cache.lookup(["a", "b", "x", "y", "z", "w"])] == \
        [True, True, False, False, False, False]
    assert _stats(cache) == (7, 5, 1, 900, 4)


def test_lru_order_is_by_slab():
    """A hit on one chunk of a slab keeps the whole slab; the least recently used slab is
    evicted first, with all its chunks."""
    cache = ngffcore.ChunkCache(600, bypass_fraction=1)
    for name, value in (("A", 1), ("B", 2), ("C", 3)):
        slab, chunks = _slab(2, 100, value)
        cache.insert([f"{name}1", f"{name}2"], slab, chunks)
    assert _stats(cache)[2:] == (0, 600, 6)
    cache.lookup(["A2"])  # A is now the most recently used; B the least
    slab, chunks = _slab(1, 100, 4)
    cache.insert(["D1"], slab, chunks)
    present = {k: f is not None for k, f in zip(["A1", "A2", "B1", "B2", "C1", "C2", "D1"],
                                                cache.lookup(["A1", "A2", "B1", "B2", "C1",
                                                              "C2", "D1"]))}
    assert present == {"A1": True, "A2": True, "B1": False, "B2": False, "C1": True,
                       "C2": True, "D1": True}
    assert _stats(cache)[2:] == (1, 500, 5)
    # that lookup touched A, C, D in this order: A is now the least recently used
    slab, chunks = _slab(2, 100, 5)
    cache.insert(["E1", "E2"], slab, chunks)  # 700 > 600: evict A (oldest of A, C, D)
    assert [f is None for f in cache.lookup(["A1", "C1", "D1", "E1"])] == \
        [True, False, False, False]
    assert _stats(cache)[2:] == (2, 500, 5)
    found = cache.lookup(["C2", "E2"])
    assert int(found[0][0]) == 3 and int(found[1][0]) == 5  # the right chunks, too


class _ModelLRU:
    """An independent LRU-by-slab model: what ChunkCache must do with distinct keys."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.slabs: OrderedDict[int, tuple[int, list[Any]]] = OrderedDict()
        self.where: dict[Any, tuple[int, int]] = {}  # key -> (slab id, value)
        self.hits = self.misses = self.evictions = 0
        self.n = 0

    def lookup(self, keys):
        out = []
        for k in keys:
            if k in self.where:
                sid, value = self.where[k]
                self.slabs.move_to_end(sid)
                self.hits += 1
                out.append(value)
            else:
                self.misses += 1
                out.append(None)
        return out

    def insert(self, keys, nbytes, value):
        if nbytes > self.max_bytes:
            return
        self.n += 1
        self.slabs[self.n] = (nbytes, list(keys))
        for k in keys:
            self.where[k] = (self.n, value)
        while sum(b for b, _ in self.slabs.values()) > self.max_bytes:
            _, (_, gone) = self.slabs.popitem(last=False)
            self.evictions += 1
            for k in gone:
                del self.where[k]

    def stats(self):
        return (self.hits, self.misses, self.evictions,
                sum(b for b, _ in self.slabs.values()), len(self.where))


def test_random_sequence_matches_a_model_lru_and_never_exceeds_the_bound():
    rng = random.Random(5)
    max_bytes = 10_000
    cache = ngffcore.ChunkCache(max_bytes, bypass_fraction=1)
    model = _ModelLRU(max_bytes)
    inserted: list[str] = []
    for step in range(600):
        if rng.random() < 0.5 and inserted:
            keys = rng.sample(inserted, min(len(inserted), rng.randint(1, 6)))
            if rng.random() < 0.3:
                keys.append(f"never{step}")
            got, want = cache.lookup(keys), model.lookup(keys)
            assert [g is None for g in got] == [w is None for w in want], step
            for g, w in zip(got, want):
                if w is not None:
                    assert int(g[0]) == w and np.all(g == w), step
        else:
            n = rng.randint(1, 5)
            chunk = rng.choice([10, 100, 700, 1500])
            if rng.random() < 0.05:
                chunk = max_bytes  # too big for the cache as a whole: not kept
            keys = [f"k{step}_{i}" for i in range(n)]
            value = step % 251
            slab, chunks = _slab(n, chunk, value)
            cache.insert(keys, slab, chunks)
            model.insert(keys, slab.nbytes, value)
            inserted += keys
            assert cache.stats().bytes <= max_bytes, step
        assert _stats(cache) == model.stats(), step
    assert model.evictions > 50 and model.hits > 50  # the sequence did exercise both


def test_slab_bigger_than_the_cache_is_not_kept():
    cache = ngffcore.ChunkCache(1000)
    slab, chunks = _slab(2, 100)
    cache.insert(["a", "b"], slab, chunks)
    big, big_chunks = _slab(2, 501)
    cache.insert(["c", "d"], big, big_chunks)
    assert _stats(cache) == (0, 0, 0, 200, 2)
    assert [f is None for f in cache.lookup(["a", "b", "c", "d"])] == [False, False, True, True]


def test_admits():
    cache = ngffcore.ChunkCache(1000)  # default bypass_fraction 0.25
    assert cache.bypass_fraction == 0.25
    assert cache.admits(0) and cache.admits(250)
    assert not cache.admits(251)
    assert ngffcore.ChunkCache(1000, bypass_fraction=1).admits(1000)
    assert not ngffcore.ChunkCache(1000, bypass_fraction=1).admits(1001)
    assert not ngffcore.ChunkCache(0).admits(1)


def test_clear():
    cache = ngffcore.ChunkCache(1000, bypass_fraction=1)
    for i in range(4):
        slab, chunks = _slab(2, 100, i)
        cache.insert([f"a{i}", f"b{i}"], slab, chunks)
    cache.lookup(["a0", "zz"])
    cache.clear()
    s = cache.stats()
    assert (s.bytes, s.chunks) == (0, 0)
    assert all(f is None for f in cache.lookup([f"a{i}" for i in range(4)]))
    # the byte count starts again from zero: five 200-byte slabs fit, the sixth evicts one
    before = cache.stats().evictions
    for i in range(5):
        slab, chunks = _slab(2, 100, i)
        cache.insert([f"n{i}a", f"n{i}b"], slab, chunks)
    assert cache.stats().evictions == before and cache.stats().bytes == 1000
    slab, chunks = _slab(2, 100)
    cache.insert(["n5a", "n5b"], slab, chunks)
    assert cache.stats().evictions == before + 1 and cache.stats().bytes == 1000
    assert cache.lookup(["n0a"]) == [None]


def test_cached_chunks_are_read_only():
    """Cached chunks are immutable: what lookup hands out cannot be written to."""
    cache = ngffcore.ChunkCache(1000)
    slab, chunks = _slab(2, 100, 9)
    cache.insert(["a", "b"], slab, chunks)
    for found in cache.lookup(["a", "b"]):
        assert not found.flags.writeable
        with pytest.raises(ValueError):
            found[0] = 1
    assert all(int(v) == 9 for f in cache.lookup(["a", "b"]) for v in f)


def _address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


def _new_slab(cache: ngffcore.ChunkCache, n_chunks: int, chunk_bytes: int, value: int
              ) -> tuple[np.ndarray, list[np.ndarray]]:
    slab = cache.new_slab((n_chunks * chunk_bytes,), np.dtype(np.uint8))
    slab[:] = value
    return slab, [slab[i * chunk_bytes:(i + 1) * chunk_bytes] for i in range(n_chunks)]


needs_recycling = pytest.mark.skipif(
    not ngffcore.zarr.cache._RECYCLE, reason="slab recycling is on only on CPython 3.10-3.13")


@needs_recycling
def test_evicted_and_cleared_slabs_are_recycled():
    """A slab the cache drops while nobody holds a view of it becomes the memory of the next
    slab of a fitting size (at least the size, at most twice it); spares stay within
    ``spare_bytes``; other sizes get new memory."""
    cache = ngffcore.ChunkCache(1000, bypass_fraction=1, spare_bytes=400)
    assert ngffcore.ChunkCache(1000).spare_bytes == 250  # a quarter of a small cache
    assert ngffcore.ChunkCache().spare_bytes == 64 * 2**20
    with pytest.raises(ValueError):
        ngffcore.ChunkCache(1000, spare_bytes=-1)
    slab, chunks = _new_slab(cache, 2, 100, 1)
    first = _address(slab)
    cache.insert(["a", "b"], slab, chunks)
    del slab, chunks
    cache.clear()
    assert cache.stats().spare_bytes == 200
    again = cache.new_slab((150,), np.dtype(np.uint8))  # 200 bytes fit 150 (<= 2x)
    assert _address(again) == first and again.flags.writeable and again.shape == (150,)
    assert cache.stats().recycled == 1 and cache.stats().spare_bytes == 0
    del again
    # eviction: five 200-byte slabs in a 1000-byte cache; the sixth evicts the first, whose
    # memory the seventh gets
    addresses = []
    for i in range(6):
        slab, chunks = _new_slab(cache, 2, 100, i)
        addresses.append(_address(slab))
        cache.insert([f"e{i}a", f"e{i}b"], slab, chunks)
        del slab, chunks
    assert cache.stats().evictions == 1 and cache.stats().spare_bytes == 200
    slab = cache.new_slab((2, 100), np.dtype(np.uint8))
    assert _address(slab) == addresses[0]
    assert _address(cache.new_slab((50,), np.dtype(np.uint8))) not in addresses  # too big a spare
    del slab
    # clearing five slabs keeps only spare_bytes of them: the most recently used
    recent = [_address(c) for c in cache.lookup(["e5a", "e4a"])]
    cache.clear()
    assert cache.stats().spare_bytes == 400
    assert {_address(cache.new_slab((200,), np.dtype(np.uint8))) for _ in range(2)} == set(recent)
    # a dtype view of recycled memory
    wide = cache.new_slab((2, 25), np.dtype(np.float32))
    assert wide.dtype == np.float32 and wide.shape == (2, 25) and wide.flags.c_contiguous


@needs_recycling
def test_a_slab_in_use_is_never_recycled():
    """A reader holding a chunk it looked up before the slab was evicted keeps its pixels:
    that memory is not handed to the next slab."""
    cache = ngffcore.ChunkCache(400, bypass_fraction=1, spare_bytes=1000)
    slab, chunks = _new_slab(cache, 2, 100, 7)
    cache.insert(["a", "b"], slab, chunks)
    del slab, chunks
    held = cache.lookup(["a"])[0]
    cache.clear()
    assert cache.stats().spare_bytes == 0
    for i in range(4):  # new slabs, written over, inserted, evicted
        slab, chunks = _new_slab(cache, 2, 100, 100 + i)
        assert not np.shares_memory(slab, held)
        cache.insert([f"n{i}a", f"n{i}b"], slab, chunks)
        del slab, chunks
    s = cache.stats()  # n2 evicted n0, whose memory became n3; n3 evicted n1 (now spare)
    assert (s.evictions, s.recycled, s.spare_bytes) == (2, 1, 200)
    assert (held == 7).all()
    # slabs a caller made itself are never recycled
    own = np.zeros(200, np.uint8)
    cache.insert(["o"], own, [own])
    del own
    cache.clear()
    assert all(not np.shares_memory(cache.new_slab((200,), np.dtype(np.uint8)), held)
               for _ in range(3))


def test_insert_of_keys_already_cached():
    """A concurrent read may cache the same chunks first: the first chunks stay, and a
    slab none of whose chunks is kept holds no memory, so counts no bytes."""
    cache = ngffcore.ChunkCache(1000, bypass_fraction=1)
    slab_a, chunks_a = _slab(2, 100, 1)
    cache.insert(["k1", "k2"], slab_a, chunks_a)
    slab_b, chunks_b = _slab(2, 100, 2)
    cache.insert(["k1", "k2"], slab_b, chunks_b)
    found = cache.lookup(["k1", "k2"])
    assert all(int(f[0]) == 1 for f in found)
    s = cache.stats()
    assert (s.chunks, s.bytes, s.evictions) == (2, 200, 0)
    # partly new: the new chunk keeps its slab alive, so that slab counts
    slab_c, chunks_c = _slab(2, 100, 3)
    cache.insert(["k2", "k3"], slab_c, chunks_c)
    found = cache.lookup(["k1", "k2", "k3"])
    assert [int(f[0]) for f in found] == [1, 1, 3]
    s = cache.stats()
    assert (s.chunks, s.bytes) == (3, 400)


def test_concurrent_inserts_and_lookups_keep_the_invariants():
    max_bytes = 20_000
    cache = ngffcore.ChunkCache(max_bytes, bypass_fraction=1)
    n_threads, per_thread = 8, 300
    lookups = [0] * n_threads
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def work(t: int) -> None:
        try:
            rng = random.Random(t)
            barrier.wait()
            for i in range(per_thread):
                n = rng.randint(1, 4)
                keys = [(t, i, j) for j in range(n)]
                value = (t * 31 + i) % 251
                slab, chunks = _slab(n, rng.choice([50, 400, 1200]), value)
                cache.insert(keys, slab, chunks)
                assert cache.stats().bytes <= max_bytes
                probe = [(t, rng.randrange(i + 1), 0) for _ in range(3)]
                for key, f in zip(probe, cache.lookup(probe)):
                    lookups[t] += 1
                    if f is not None:  # a chunk, if still there, is the one inserted
                        assert int(f[0]) == (t * 31 + key[1]) % 251
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    s = cache.stats()
    assert s.hits + s.misses == sum(lookups)
    assert s.bytes <= max_bytes and s.evictions > 0
    every = [(t, i, j) for t in range(n_threads) for i in range(per_thread) for j in range(4)]
    assert sum(f is not None for f in cache.lookup(every)) == s.chunks


# --------------------------------------------------------------------------------------
# the cache under tiles and array reads
# --------------------------------------------------------------------------------------


def _n_chunks(case: tw.TileCase, y: tuple[int, int], x: tuple[int, int],
              channels: list[int] | None = None) -> int:
    """Innermost chunks a box touches (all channels, or those given), from the chunk grid."""
    cy, cx = case.chunk("y"), case.chunk("x")
    per = ((y[1] - 1) // cy - y[0] // cy + 1) * ((x[1] - 1) // cx - x[0] // cx + 1)
    chans = list(range(case.n_channels)) if channels is None else channels
    return per * len({c // case.chunk("c") for c in chans})


def _chunk_nbytes(case: tw.TileCase) -> int:
    return math.prod(case.chunks) * case.written[0].dtype.itemsize


def test_open_cache_option(written):
    _, cases = written
    case = cases["czyx-0.4"]
    default = ngffcore.open(str(case.path))
    assert isinstance(default.cache, ngffcore.ChunkCache)
    assert default.cache.max_bytes == 512 * 2**20
    assert ngffcore.open(str(case.path), cache=True).cache is not default.cache
    assert ngffcore.open(str(case.path), cache=False).cache is None
    shared = ngffcore.ChunkCache(10**6)
    assert ngffcore.open(str(case.path), cache=shared).cache is shared


@pytest.mark.parametrize("name", ["czyx-0.4", "czyx-0.5-sharded", "yxc-0.5", "tczyx-0.4"])
def test_hits_and_misses_exact_for_tiles(written, identical, name):
    _, cases = written
    case = cases[name]
    cache = ngffcore.ChunkCache(10**7)
    img = ngffcore.open(str(case.path), cache=cache)
    nb = _chunk_nbytes(case)
    a = ((3, 20), (5, 30))
    b = ((10, 40), (5, 30))  # shares chunks with a
    ka, kb = _n_chunks(case, *a), _n_chunks(case, *b)
    union = len(set(case.objects(0, *a)) | set(case.objects(0, *b))) if case.shards is None \
        else None
    _check(identical, img.tile_box(0, *a), case.reference(0, *a), "a")
    assert _stats(cache) == (0, ka, 0, ka * nb, ka)
    _check(identical, img.tile_box(0, *a), case.reference(0, *a), "a again")
    assert _stats(cache) == (ka, ka, 0, ka * nb, ka)
    _check(identical, img.tile_box(0, *b), case.reference(0, *b), "b")
    h, m, e, nbytes, n = _stats(cache)
    assert h + m == 2 * ka + kb and e == 0
    assert n == m and nbytes == n * nb
    assert 0 < h - ka < kb  # some of b came from the cache, some did not
    if union is not None:
        assert n == union
    # a channel subset of a cached area: only hits
    if case.n_channels > 1:
        chans = [case.n_channels - 1, 0]
        _check(identical, img.tile_box(0, *a, channels=chans),
               case.reference(0, *a, channels=chans), "subset")
        assert _stats(cache)[:2] == (h + _n_chunks(case, *a, chans), m)


def test_lru_eviction_through_tiles(written, identical, server):
    """A cache holding two tiles' slabs: the least recently used tile's chunks are fetched
    again, the recently used ones are not."""
    _, cases = written
    case = cases["czyx-0.4"]
    a, b, c = ((0, 16), (0, 24)), ((16, 32), (0, 24)), ((32, 48), (0, 24))
    slab = _n_chunks(case, *a) * _chunk_nbytes(case)  # 3 channels x 1 chunk
    cache = ngffcore.ChunkCache(2 * slab, bypass_fraction=0.5)
    img = ngffcore.open(_url(server, case), cache=cache, **HTTP)
    for box in (a, b, a, c):  # a touched again before c: b is the least recently used
        _check(identical, img.tile_box(0, *box), case.reference(0, *box), f"{box}")
    assert cache.stats().evictions == 1
    server.state.clear()
    _check(identical, img.tile_box(0, *a), case.reference(0, *a), "a, cached")
    assert server.state.requests() == []
    _check(identical, img.tile_box(0, *b), case.reference(0, *b), "b, evicted")
    assert len(server.state.requests("GET")) == case.n_channels


@pytest.mark.parametrize("via", ["tile", "read", "read_async"])
def test_large_reads_bypass_the_cache(written, identical, via):
    """A read whose missing chunks exceed bypass_fraction × max_bytes leaves the cache as
    it was (nothing added, nothing evicted) and still returns the right pixels; a read of
    exactly that size goes through it."""
    _, cases = written
    case = cases["czyx-0.4"]
    nb = _chunk_nbytes(case)
    cache = ngffcore.ChunkCache(16 * nb, bypass_fraction=0.25)  # reads of ≤ 4 chunks
    img = ngffcore.open(str(case.path), cache=cache)
    level = img.levels[0]
    z = case.default_z

    def read(box, channels):
        c0, c1 = channels
        if via == "tile":
            return img.tile_box(0, *box, channels=list(range(c0, c1)))
        sel = (slice(c0, c1), z, slice(*box[0]), slice(*box[1]))
        if via == "read":
            return level.read(sel, cache=cache)
        return asyncio.run(level.read_async(sel, cache=cache))

    small = ((0, 32), (0, 48))  # 2 x 2 chunks of one channel = 4 chunks: admitted
    _check(identical, read(small, (0, 1)), case.reference(0, *small, channels=[0]), "small")
    assert _stats(cache) == (0, 4, 0, 4 * nb, 4)
    big = ((0, 40), (0, 48))  # 3 x 2 chunks = 6 > 4: bypass
    for chans in ((1, 2), (0, 3)):
        got = read(big, chans)
        _check(identical, got, case.reference(0, *big, channels=list(range(*chans))), "big")
        h, m, e, nbytes, n = _stats(cache)
        assert (e, nbytes, n) == (0, 4 * nb, 4)
    # the small read's chunks are still there: only hits
    before = _stats(cache)
    _check(identical, read(small, (0, 1)), case.reference(0, *small, channels=[0]), "again")
    assert _stats(cache)[:2] == (before[0] + 4, before[1])
    # a whole-level read through the cache: bypassed too
    full = ((0, case.size("y")), (0, case.size("x")))
    _check(identical, read(full, (0, 3)), case.reference(0, *full), "whole level")
    assert _stats(cache)[2:] == (0, 4 * nb, 4)


def test_array_reads_through_a_cache(written, identical):
    """``Array.read(..., cache=)`` / ``read_async``: zarr-python's pixels, dropped axes,
    ``out=``, empty selections; chunks cached by one are hits for the other and for tiles."""
    _, cases = written
    case = cases["tczyx-0.4"]
    cache = ngffcore.ChunkCache(10**7)
    img = ngffcore.open(str(case.path), cache=cache)
    level = img.levels[0]
    ref = case.zarr_array(0)
    sels = [(1, slice(0, 3), 2, slice(3, 29), slice(5, 41)),
            (0, 1, 0, slice(0, 40), slice(0, 50)),
            (slice(0, 2), 2, slice(1, 3), 7, slice(10, 40)),
            (1, 0, 0, 5, 6)]
    for sel in sels:
        with tw.ow.quiet():
            expected = np.asarray(ref[sel])
        _check(identical, level.read(sel, cache=cache), expected, f"read {sel}")
        _check(identical, asyncio.run(level.read_async(sel, cache=cache)), expected,
               f"read_async {sel}")
        out = np.zeros(expected.shape, expected.dtype)
        assert level.read(sel, out=out, cache=cache) is out
        _check(identical, out, expected, f"read out= {sel}")
    empty = level.read((0, 0, 0, slice(5, 5), slice(0, 10)), cache=cache)
    assert empty.shape == (0, 10)
    # tile (t=1, all channels, z=2) over chunks read above: hits only
    h, m = _stats(cache)[:2]
    _check(identical, img.tile_box(0, (3, 29), (5, 41), t=1, z=2),
           case.reference(0, (3, 29), (5, 41), t=1, z=2), "tile after reads")
    assert _stats(cache)[1] == m and _stats(cache)[0] > h


def test_clear_then_refetch(written, identical, server):
    _, cases = written
    case = cases["czyx-0.4"]
    img = ngffcore.open(_url(server, case), **HTTP)
    box = ((8, 40), (10, 40))
    expected_gets = Counter(f"/{case.path.name}/{n}" for n in case.objects(0, *box))
    _check(identical, img.tile_box(0, *box), case.reference(0, *box), "first")
    server.state.clear()
    img.cache.clear()
    assert (img.cache.stats().bytes, img.cache.stats().chunks) == (0, 0)
    _check(identical, img.tile_box(0, *box), case.reference(0, *box), "after clear")
    assert Counter(r.path for r in server.state.requests("GET")) == expected_gets
    assert server.state.counts() == Counter({"GET": sum(expected_gets.values())})


# --------------------------------------------------------------------------------------
# sharing
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["czyx-0.4", "czyx-0.5-sharded", "yxc-0.5"])
def test_shared_cache_between_two_opens(written, identical, server, name):
    """Two images opened from one location with one ChunkCache: the second image's tile
    sends no request at all."""
    _, cases = written
    case = cases[name]
    shared = ngffcore.ChunkCache(10**7)
    one = ngffcore.open(_url(server, case), cache=shared, **HTTP)
    two = ngffcore.open(_url(server, case), cache=shared, **HTTP)
    assert one.cache is two.cache is shared
    box = ((5, 37), (7, 45))
    _check(identical, one.tile_box(0, *box), case.reference(0, *box), "first image")
    assert server.state.requests("GET")
    server.state.clear()
    _check(identical, two.tile_box(0, *box), case.reference(0, *box), "second image")
    assert server.state.requests() == []
    # a level read on the first image is a hit for a tile on the second, too
    lv = case.n_levels - 1
    Y, X = case.size("y", lv), case.size("x", lv)
    sel = [slice(None)] * len(case.axes)
    for axis, v in (("t", case.default_t), ("z", case.default_z)):
        if axis in case.axes:
            sel[case.axes.index(axis)] = v
    one.levels[lv].read(tuple(sel), cache=shared)
    server.state.clear()
    _check(identical, two.tile(lv, 0, 0, size=1024), case.reference(lv, (0, Y), (0, X)),
           "coarse level")
    assert server.state.requests() == []


@pytest.mark.parametrize("where", ["local", "http"])
def test_shared_cache_keeps_locations_apart(written, identical, server, where):
    """Two images with the same chunk keys at different locations share one cache without
    ever seeing each other's pixels."""
    _, cases = written
    a, b = cases["czyx-0.4"], cases["twin"]
    assert a.objects(0, (0, 70), (0, 90)) == b.objects(0, (0, 70), (0, 90))
    assert not np.array_equal(a.written[0], b.written[0])
    shared = ngffcore.ChunkCache(10**7)
    loc = (lambda c: str(c.path)) if where == "local" else (lambda c: _url(server, c))
    kw = HTTP if where == "http" else {}
    img_a = ngffcore.open(loc(a), cache=shared, **kw)
    img_b = ngffcore.open(loc(b), cache=shared, **kw)
    for lv in range(a.n_levels):
        box = ((0, a.size("y", lv)), (0, a.size("x", lv)))
        for img, case in ((img_a, a), (img_b, b), (img_a, a), (img_b, b)):
            _check(identical, img.tile_box(lv, *box), case.reference(lv, *box),
                   f"{case.name} level {lv}")
    s = shared.stats()
    assert s.evictions == 0
    assert s.chunks == s.misses and s.hits == s.misses  # each image: cold, then warm


# --------------------------------------------------------------------------------------
# immutability of cached chunks
# --------------------------------------------------------------------------------------


class _RecordingCache(ngffcore.ChunkCache):
    """Remembers every chunk it was given and every chunk it handed out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.given: list[np.ndarray] = []
        self.handed: list[np.ndarray] = []
        self._rec = threading.Lock()

    def insert(self, keys, slab, chunks):
        super().insert(keys, slab, chunks)
        with self._rec:
            self.given.extend(chunks)

    def lookup(self, keys):
        found = super().lookup(keys)
        with self._rec:
            self.handed.extend(f for f in found if f is not None)
        return found


@pytest.mark.parametrize("name", ["czyx-0.4", "czyx-0.5-sharded", "yxc-0.5"])
def test_chunks_cached_by_tile_reads_are_read_only(written, identical, name):
    _, cases = written
    case = cases[name]
    cache = _RecordingCache(10**7)
    img = ngffcore.open(str(case.path), cache=cache)
    box = ((3, 37), (5, 41))
    first = img.tile_box(0, *box)
    second = img.tile_box(0, *box)
    assert cache.given and cache.handed
    for chunk in cache.given + cache.handed:
        assert not chunk.flags.writeable
        with pytest.raises(ValueError):
            chunk.reshape(-1)[0] = 0
        for tile in (first, second):
            assert not np.shares_memory(tile, chunk)  # results are copies, never the cache
    _check(identical, img.tile_box(0, *box), case.reference(0, *box), "after the attempts")


# --------------------------------------------------------------------------------------
# concurrency
# --------------------------------------------------------------------------------------


def _random_requests(case: tw.TileCase, rng: random.Random, n: int) -> list[tuple]:
    chans = [None, [0], [1], [2], [2, 0], [0, 1], [1, 2, 0]]
    out = []
    for _ in range(n):
        lv = rng.randrange(case.n_levels)
        Y, X = case.size("y", lv), case.size("x", lv)
        h, w = rng.randint(1, min(Y, 40)), rng.randint(1, min(X, 40))
        y0, x0 = rng.randrange(Y - h + 1), rng.randrange(X - w + 1)
        z = rng.choice([None, *range(case.size("z"))])
        out.append((lv, (y0, y0 + h), (x0, x0 + w), z, rng.choice(chans)))
    return out


def _expected(full: list[dict[int, np.ndarray]], req: tuple, default_z: int) -> np.ndarray:
    lv, y, x, z, chans = req
    plane = full[lv][default_z if z is None else z]  # (c, Y, X) of that z
    tile = plane[:, y[0]:y[1], x[0]:x[1]]
    return np.ascontiguousarray(tile if chans is None else tile[chans])


@pytest.mark.parametrize("where", ["local", "http"])
@pytest.mark.parametrize("name", ["czyx-0.4", "czyx-0.5-sharded"])
def test_eight_threads_and_asyncio_tasks_with_a_small_cache(written, server, name, where):
    """8 threads reading random tiles (sync) and asyncio tasks on another thread share one
    image whose cache holds ~16 chunks: every tile equals zarr-python's pixels, the byte
    bound holds throughout, and the cache did hit and evict."""
    _, cases = written
    case = cases[name]
    # zarr-python's reads of every (level, z) plane, made before any thread starts
    full: list[dict[int, np.ndarray]] = []
    for lv in range(case.n_levels):
        with tw.ow.quiet():
            data = np.asarray(case.zarr_array(lv)[...])  # czyx
        full.append({z: data[:, z] for z in range(case.size("z"))})
    max_bytes = 16 * _chunk_nbytes(case)
    cache = ngffcore.ChunkCache(max_bytes, bypass_fraction=0.5)
    location = str(case.path) if where == "local" else _url(server, case)
    img = ngffcore.open(location, cache=cache, **(HTTP if where == "http" else {}))
    n_threads, per_thread, n_tasks, per_task = 8, 40, 8, 15
    errors: list[str] = []
    done = threading.Event()
    peak = [0]

    def check(req, got):
        want = _expected(full, req, case.default_z)
        if got.shape != want.shape or got.dtype != want.dtype or not np.array_equal(got, want):
            errors.append(f"{req}: wrong pixels")

    def worker(seed: int) -> None:
        try:
            for req in _random_requests(case, random.Random(seed), per_thread):
                lv, y, x, z, chans = req
                check(req, img.tile_box(lv, y, x, z=z, channels=chans))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    def async_side() -> None:
        async def task(seed: int) -> None:
            for req in _random_requests(case, random.Random(seed), per_task):
                lv, y, x, z, chans = req
                check(req, await img.tile_box_async(lv, y, x, z=z, channels=chans))

        async def main() -> None:
            await asyncio.gather(*(task(1000 + k) for k in range(n_tasks)))

        try:
            asyncio.run(main())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    def monitor() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], cache.stats().bytes)
            done.wait(0.001)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    threads.append(threading.Thread(target=async_side))
    watcher = threading.Thread(target=monitor)
    watcher.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    done.set()
    watcher.join()
    assert not any(th.is_alive() for th in threads)
    assert not errors, errors[:5]
    s = cache.stats()
    assert peak[0] <= max_bytes and s.bytes <= max_bytes
    assert s.hits > 0 and s.evictions > 0 and s.misses > 0
    # afterwards, the cache still serves right pixels
    for req in _random_requests(case, random.Random(99), 20):
        lv, y, x, z, chans = req
        check(req, img.tile_box(lv, y, x, z=z, channels=chans))
    assert not errors, errors[:5]


# --------------------------------------------------------------------------------------
# concurrent misses of one chunk: fetched once
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["threads", "asyncio"])
def test_concurrent_reads_of_one_chunk_fetch_it_once(written, identical, server, mode):
    """Eight viewers asking for the same tile at once (the server answers after 0.2 s, so
    they all miss together): each chunk object is requested exactly once."""
    _, cases = written
    case = cases["czyx-0.4"]
    img = ngffcore.open(_url(server, case), **HTTP)
    box = ((8, 40), (10, 40))
    expected_gets = Counter(f"/{case.path.name}/{n}" for n in case.objects(0, *box))
    server.state.clear()
    server.state.latency = 0.2
    if mode == "threads":
        results: list[Any] = [None] * 8

        def one(k: int) -> None:
            results[k] = img.tile_box(0, *box)

        threads = [threading.Thread(target=one, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    else:
        async def many() -> list[Any]:
            return list(await asyncio.gather(*(img.tile_box_async(0, *box) for _ in range(8))))

        results = asyncio.run(many())
    for k, got in enumerate(results):
        _check(identical, got, case.reference(0, *box), f"reader {k}")
    assert Counter(r.path for r in server.state.requests("GET")) == expected_gets


def test_a_failed_claim_lets_the_waiters_try_themselves(written, identical, server):
    """The reader that claimed a chunk fails (a 403 on its GET); readers waiting for that
    chunk are woken and fetch it themselves: no reader hangs, and later reads succeed."""
    _, cases = written
    case = cases["czyx-0.4"]
    img = ngffcore.open(_url(server, case), **HTTP)
    box = ((8, 40), (10, 40))
    first = f"/{case.path.name}/{case.objects(0, *box)[0]}"
    server.state.latency = 0.2
    server.state.faults[first] = ["403"]  # one failure: the next GET of it succeeds

    async def two() -> list[Any]:
        return list(await asyncio.gather(img.tile_box_async(0, *box),
                                         img.tile_box_async(0, *box),
                                         return_exceptions=True))

    outcomes = asyncio.run(asyncio.wait_for(two(), 20))
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], ngffcore.AuthError), outcomes
    ok = [o for o in outcomes if not isinstance(o, BaseException)]
    _check(identical, ok[0], case.reference(0, *box), "the waiter")
    assert img.cache._pending == {}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("box, jitter, n_chunks", [
    (((0, 16), (0, 24)), 0.0, 3),  # one chunk per channel, all answered at once
    (((5, 40), (3, 60)), 0.01, 27),  # 3 x 3 chunks per channel, answers spread over 10 ms
])
def test_cold_tiles_with_responses_out_of_order(written, identical, server, mode, box, jitter,
                                                n_chunks):
    """Responses arrive in any order and are decoded in batches of any make-up (all of the
    tile's chunks in one batch, in arrival order, or a few at a time), each batch scattered
    into the tile from the decoding thread: every chunk lands in its own box."""
    _, cases = written
    case = cases["czyx-0.4"]
    server.state.jitter = jitter
    img = ngffcore.open(_url(server, case), cache=ngffcore.ChunkCache(2**24), **HTTP)
    assert _n_chunks(case, *box) == n_chunks
    for i in range(20):
        img.cache.clear()
        got = (img.tile_box(0, *box) if mode == "sync"
               else asyncio.run(img.tile_box_async(0, *box)))
        _check(identical, got, case.reference(0, *box), f"round {i}")
