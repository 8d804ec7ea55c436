"""One level of a multiscale image (:class:`Level`: an array with its place in physical
space) and the result of a physical-region read (:class:`Region`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ngffcore.errors import UnsupportedError
from ngffcore.ome.multiscales_06 import scale_translation
from ngffcore.store.protocol import Store
from ngffcore.zarr.array import Array
from ngffcore.zarr.metadata import ArrayMetadata

if TYPE_CHECKING:
    from ngffcore.ome.transforms import Transform


class Level(Array):
    """One resolution level of an :class:`Image`: an :class:`Array` (same read API) plus its
    ``index`` in the image (0 = finest), its dataset path and per-axis ``scale`` (physical
    size of a pixel) and ``translation`` (physical position of pixel 0's centre), composed
    from the dataset's and the multiscale's coordinate transformations.

    Two paths: ``path`` (also ``dataset_path``) is the dataset path as the multiscale names
    it, relative to the image group (e.g. "s1"); ``store_path`` is where the array lives in
    its store (what :attr:`Array.path` is for an array opened on its own: "s1" for an
    image at the store's root, "A/1/0/s1" for a field of a plate)."""

    __slots__ = ("_dataset_path", "index", "_scale", "_translation", "_transform")

    def __init__(self, store: Store, meta: ArrayMetadata, key_path: str, dataset_path: str,
                 index: int, scale: tuple[float, ...] | None,
                 translation: tuple[float, ...] | None, transform: Transform | None = None
                 ) -> None:
        super().__init__(store, meta, key_path)
        self._dataset_path = dataset_path
        self.index = index
        self._scale = scale
        self._translation = translation
        self._transform = transform

    @property
    def transform(self) -> Transform:
        """The transform from the level's array indices to the image's intrinsic coordinate
        system (OME-NGFF 0.6: the dataset's, as parsed). 0.1–0.5: the sequence scale, then
        translation, to ``"intrinsic"``, built on first use (opening an image, or a plate's
        many fields, builds none)."""
        if self._transform is None:
            # racing threads build equal transforms: whichever is kept, the result is the same
            self._transform = scale_translation(self.scale, self.translation,
                                                self._dataset_path)
        return self._transform

    @property
    def is_axis_aligned(self) -> bool:
        """Whether ``scale``/``translation`` describe the level (its transform to the
        intrinsic system is scale + translation)."""
        return self._scale is not None and self._translation is not None

    def _placement_error(self) -> UnsupportedError:
        kind = "unknown" if self._transform is None else self._transform.type
        return UnsupportedError(f"level {self._dataset_path!r} maps to the intrinsic "
                                f"coordinate system by a {kind} transformation, not a scale "
                                f"+ translation: use Level.transform", path=self._key_path)

    @property
    def scale(self) -> tuple[float, ...]:
        """Per array axis: the size of a pixel along the intrinsic axis it maps to."""
        if self._scale is None:
            raise self._placement_error()
        return self._scale

    @property
    def translation(self) -> tuple[float, ...]:
        """Per array axis: the intrinsic coordinate of pixel 0's centre."""
        if self._translation is None:
            raise self._placement_error()
        return self._translation

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

    ``data`` has one axis per image axis (array axis); ``box`` is the half-open pixel box
    read on level ``level`` (``(start, stop)`` per array axis); ``origin`` the coordinates
    of the first pixel's centre and ``pixel_size`` the extent of a pixel, per axis of the
    coordinate system the region was given in (``coordinate_system``; for the intrinsic
    system of a scale + translation level: per image axis, the level's scale).

    ``affine`` is None when the level maps to that system by a scale + translation in axis
    order (positive scales); otherwise (axes permuted or flipped, rotation, shear) the
    pixels are not resampled: ``data`` is the array-space bounding box of the region's
    preimage and ``affine`` the homogeneous ``(ndim_out + 1, ndim + 1)`` float64 matrix
    mapping indices into ``data`` to the system's coordinates (``pixel_size`` is then the
    width of a pixel's bounding box along each axis)."""

    data: np.ndarray
    level: int
    box: tuple[tuple[int, int], ...]
    origin: tuple[float, ...]
    pixel_size: tuple[float, ...]
    affine: np.ndarray | None = None
    coordinate_system: str | None = None


__all__ = ["Level", "Region"]
