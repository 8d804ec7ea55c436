"""One level of a multiscale image (:class:`Level`: an array with its place in physical
space) and the result of a physical-region read (:class:`Region`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ngffcore.store.protocol import Store
from ngffcore.zarr.array import Array
from ngffcore.zarr.metadata import ArrayMetadata


class Level(Array):
    """One resolution level of an :class:`Image`: an :class:`Array` (same read API) plus its
    ``index`` in the image (0 = finest), its dataset path and per-axis ``scale`` (physical
    size of a pixel) and ``translation`` (physical position of pixel 0's centre), composed
    from the dataset's and the multiscale's coordinate transformations.

    Two paths: ``path`` (also ``dataset_path``) is the dataset path as the multiscale names
    it, relative to the image group (e.g. "s1"); ``store_path`` is where the array lives in
    its store (what :attr:`Array.path` is for an array opened on its own: "s1" for an
    image at the store's root, "A/1/0/s1" for a field of a plate)."""

    __slots__ = ("_dataset_path", "index", "scale", "translation")

    def __init__(self, store: Store, meta: ArrayMetadata, key_path: str, dataset_path: str,
                 index: int, scale: tuple[float, ...], translation: tuple[float, ...]) -> None:
        super().__init__(store, meta, key_path)
        self._dataset_path = dataset_path
        self.index = index
        self.scale = scale
        self.translation = translation

    @property
    def path(self) -> str:
        """The dataset path, relative to the image group (e.g. "s1"); see ``store_path``."""
        return self._dataset_path

    #: the dataset path: the same as ``path``, by a name no :class:`Array` has
    dataset_path = path

    @property
    def store_path(self) -> str:
        """Path of the level's array inside its store ("" at the root)."""
        return self._key_path


@dataclass(frozen=True)
class Region:
    """Pixels of a region read by :meth:`Image.read_region`.

    ``data`` has one axis per image axis; ``box`` is the half-open pixel box read on level
    ``level`` (``(start, stop)`` per axis); ``origin`` the physical coordinate of the first
    pixel's centre per axis; ``pixel_size`` the level's scale."""

    data: np.ndarray
    level: int
    box: tuple[tuple[int, int], ...]
    origin: tuple[float, ...]
    pixel_size: tuple[float, ...]


__all__ = ["Level", "Region"]
