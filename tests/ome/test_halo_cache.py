"""The gaussian pyramid's halo cache (ngffcore.ome.halo_cache): the base read once, and what
it keeps is the halo shells along the traversal front, not rows of objects."""

from __future__ import annotations

import numpy as np
import pytest

import ngffcore
from ngffcore.ome import pyramid
from ngffcore.ome.halo_cache import HaloCache, _groups
from ngffcore.store.memory import MemoryStore

pytest.importorskip("scipy")


@pytest.fixture
def caches(monkeypatch):
    made: list[HaloCache] = []

    class Recording(HaloCache):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(pyramid, "HaloCache", Recording)
    return made


def test_wide_image_keeps_shells_not_rows(caches):
    """A 2-D image 64 objects wide: the cache never holds more than a few percent of it, every
    pixel is read once, nothing is dropped too early, and everything is dropped at the end."""
    rng = np.random.default_rng(2)
    data = rng.integers(0, 60000, size=(512, 4096), dtype=np.uint16)
    img = ngffcore.write_image(MemoryStore(), data, axes="yx", chunks=(64, 64), levels=4,
                               downsample="gaussian")
    (cache,) = caches
    assert cache.pixels_read == data.size
    assert cache.rereads == 0
    assert cache.kept_bytes == 0
    row_of_objects = 64 * data.shape[1] * data.itemsize  # what keeping neighbours whole costs
    assert 0 < cache.peak_kept_bytes < row_of_objects / 3, cache.peak_kept_bytes
    from scipy import ndimage
    g = ndimage.gaussian_filter(data.astype(np.float64), sigma=1, mode="reflect", truncate=4.0)
    np.testing.assert_array_equal(img.levels[1][...],
                                  np.clip(np.round(g[::2, ::2]), 0, 65535).astype(np.uint16))


def test_mean_does_not_use_the_cache(caches):
    ngffcore.write_image(MemoryStore(), np.zeros((256, 256), np.uint8), axes="yx",
                         chunks=(64, 64), levels=3, downsample="mean")
    assert caches == []


def test_groups_cover_cells_once():
    cells = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 1), (3, 3)]
    groups = _groups(cells)
    covered = [(i, j) for (a, b), (c, d) in groups
               for i in range(a, c + 1) for j in range(b, d + 1)]
    assert sorted(covered) == sorted(cells)
    assert ((0, 0), (1, 1)) in groups  # grown along both axes
