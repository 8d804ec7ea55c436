"""Multiscale images: :class:`Image` (levels, axes, channels, labels, coordinate systems
and transforms; reads of physical regions, tiles and their rendering). The levels are
:class:`Level` (``ome/level.py``); the image's geometry (axis roles, default plane, channel
and level checks) is its :class:`Geometry` (``ome/geometry.py``); its coordinate model
(OME-NGFF 0.6: systems, transforms) its :class:`ImageSpace` (``ome/multiscales_06.py``);
:func:`open_image_async` (``ome/image_open.py``) builds one from its group's metadata.

An image's metadata is read once, at open: the group document, then every level's array
metadata concurrently (or from consolidated metadata, or from a plate's first field). Images
are immutable and thread-safe; ``labels`` are read on first use, once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ngffcore.zarr.cache import ChunkCache
from ngffcore.errors import NotFoundError, SelectionError
from ngffcore.store.fanout import gather_bounded
from ngffcore.ome.coordinate_graph import TransformGraph
from ngffcore.ome.geometry import Geometry
from ngffcore.ome.image_coords import ImageCoordinates
from ngffcore.ome.group import GroupMetadata, child_group_async
from ngffcore.ome.multiscales import (
    Axis,
    Channel,
    LabelInfo,
    Multiscale,
    parse_channels,
    parse_label_names,
)
from ngffcore.ome.multiscales_06 import ImageSpace
from ngffcore.ome.level import Level, Region
from ngffcore.ome.region import Interval, Placement, choose_level, region_intervals
from ngffcore.store.stats import RequestStats
from ngffcore.store.protocol import Store
from ngffcore.store.ioloop import run_on_io_loop
from ngffcore.ome.tile import TileRequest
from ngffcore.ome.scheduler import Scheduler


class Image(ImageCoordinates):
    """A multiscale image (OME-NGFF 0.1–0.6). Thread-safe.

    ``levels`` are finest first. ``axes`` (one per array dimension), ``name``, ``version``
    describe the multiscale used (the group's first unless another was asked for);
    ``metadata`` is the group's raw attributes; ``channels`` come from ``omero``; ``labels``
    maps label names to :class:`LabelImage` (read on first use). ``geometry`` says where the
    t/c/z/y/x axes are, the default plane and the channel count, and checks level and
    channel indexes. ``coordinate_systems``, ``intrinsic`` and :meth:`transform` are the
    coordinate model (0.1–0.5: one system, ``"intrinsic"``).
    """

    #: builds an image from its group's metadata (labels, other multiscales):
    #: ``image_open.open_image_async``, set by that module, which imports this one (layers
    #: and modules import downwards only)
    _opener: ClassVar[Callable[..., Awaitable["Image"]]]

    def __init__(self, store: Store, group: GroupMetadata, multiscales: tuple[Multiscale, ...],
                 index: int, levels: tuple[Level, ...], cache: ChunkCache | None = None
                 ) -> None:
        #: decoded chunks of every level and channel (and of label images), used by tile
        #: reads; None: tiles are read without a cache
        self.cache = cache
        self._store = store
        self._group = group
        self._multiscales = multiscales
        self._ms = multiscales[index]
        self.levels = levels
        self.channels: tuple[Channel, ...] = parse_channels(group.ome)
        self._space: ImageSpace = self._ms.space
        aligned = all(lvl.is_axis_aligned for lvl in levels)
        #: where the t/c/z/y/x axes are, the default plane, channel and level checks
        self.geometry = Geometry.of(self._ms.axes, [lvl.shape for lvl in levels], group.ome,
                                    [(lvl.scale, lvl.translation) for lvl in levels]
                                    if aligned else None)
        self._labels: dict[str, LabelImage] | None = None
        self._labels_lock = threading.Lock()
        self._graph: TransformGraph | None = None
        self._placements: dict[tuple[int, str], Placement] = {}

    # -- pickling (dask workers) -----------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Metadata travels (group, multiscales, levels as their JSON documents, labels
        if already read): unpickling does no I/O. The decoded-chunk cache does not: an
        unpickled image has ``cache = None`` (tiles read uncached; assign a
        :class:`ChunkCache` to ``cache`` to cache them in that process)."""
        state = dict(self.__dict__)
        del state["_labels_lock"]
        state["cache"] = None
        state["_graph"] = None  # rebuilt on first use
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._labels_lock = threading.Lock()

    # -- dask ------------------------------------------------------------------------------
    def to_dask(self, level: int | None = None, region: Mapping[str, Interval] | None = None,
                *, center: Mapping[str, float] | None = None,
                size: Mapping[str, float] | None = None,
                resolution: float | Mapping[str, float] | None = None,
                chunks: Any = None, block_bytes: int | None = None,
                coordinate_system: str | None = None) -> Any:
        """A level (``level``, else ``level_for(resolution)``, else 0), or the pixel box of a
        physical region of it (``region`` / ``center`` + ``size`` as in :meth:`read_region`,
        in ``coordinate_system``; the box is :meth:`region_box`'s), as a
        ``dask.array.Array``.
        Blocks follow :meth:`Array.to_dask`'s rule on the level's global storage grid: a
        region's first and last blocks along an axis are clipped, never shifted. Needs
        ``dask[array]``."""
        from ngffcore.dask import to_dask

        index, box = self.region_box(region, center=center, size=size,
                                     resolution=resolution, level=level,
                                     coordinate_system=coordinate_system)
        return to_dask(self.levels[index], chunks=chunks, block_bytes=block_bytes, box=box)

    # -- description -----------------------------------------------------------------------
    @property
    def axes(self) -> tuple[Axis, ...]:
        """One per array dimension (0.6: the intrinsic system's axes, in the order level 0
        maps the array axes to them)."""
        return self._ms.axes

    @property
    def name(self) -> str | None:
        return self._ms.name

    @property
    def version(self) -> str | None:
        """The OME-NGFF version, e.g. "0.4" or "0.5" (None if the metadata gives none)."""
        return self._ms.version or self._group.version

    @property
    def metadata(self) -> dict[str, Any]:
        """The group's attributes as stored (0.5: including the ``ome`` key)."""
        return self._group.attributes

    @property
    def multiscales(self) -> tuple[dict[str, Any], ...]:
        """Every multiscale of the group, raw; this image reads
        ``multiscales[multiscale_index]``."""
        return tuple(ms.raw for ms in self._multiscales)

    @property
    def multiscale_index(self) -> int:
        """Which of the group's multiscales this image reads (not a level: levels have
        :attr:`Level.index`)."""
        return self._ms.index

    @property
    def index(self) -> int:
        """The same as :attr:`multiscale_index` (the older name)."""
        return self._ms.index

    @property
    def path(self) -> str:
        """Path of the image group inside its store ("" at the root)."""
        return self._group.path

    @property
    def url(self) -> str:
        return self._group.url

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of level 0."""
        return self.levels[0].shape

    @property
    def dtype(self) -> np.dtype:
        return self.levels[0].dtype

    @property
    def ndim(self) -> int:
        return len(self._ms.axes)

    @property
    def stats(self) -> RequestStats | None:
        """Requests sent by this image's store; None for a store that sends none (local,
        memory: its ``inline`` coroutines never wait on a network)."""
        return None if self._store.inline else self._store.stats

    def __repr__(self) -> str:
        axes = "".join(a.name for a in self.axes)
        return (f"<ngffcore.{type(self).__name__} {self.url} version={self.version} "
                f"axes={axes} levels={[lvl.shape for lvl in self.levels]}>")

    def open_multiscale(self, index: int) -> "Image":
        """Another multiscale of the same group (its levels' metadata are read now)."""
        return run_on_io_loop(self.open_multiscale_async(index))

    async def open_multiscale_async(self, index: int) -> "Image":
        return await Image._opener(self._store, self._group, index, cache=self.cache)

    # -- labels ----------------------------------------------------------------------------
    @property
    def labels(self) -> Mapping[str, "LabelImage"]:
        """Label images beside this image (``labels/``), by name; read on first use."""
        if self._labels is None:
            labels = run_on_io_loop(self._read_labels_async())
            with self._labels_lock:
                if self._labels is None:
                    self._labels = labels
        return self._labels

    async def labels_async(self) -> Mapping[str, "LabelImage"]:
        if self._labels is None:
            labels = await self._read_labels_async()
            with self._labels_lock:
                if self._labels is None:
                    self._labels = labels
        return self._labels

    async def _read_labels_async(self) -> dict[str, "LabelImage"]:
        try:
            group = await child_group_async(self._store, self._group, "labels")
        except NotFoundError:
            return {}
        names = parse_label_names(group.ome, group.url) if "labels" in group.ome else ()

        async def open_label(name: str) -> Image:
            label_group = await child_group_async(self._store, group, name)
            return await Image._opener(self._store, label_group, label=True, cache=self.cache)

        # bounded (a group may list thousands of labels) and cancelled on the first failure
        images = await gather_bounded(self._store, (open_label(n) for n in names))
        return {n: img for n, img in zip(names, images) if isinstance(img, LabelImage)}

    # -- level choice and physical regions -----------------------------------------------
    def level_for(self, resolution: float | Mapping[str, float], *,
                  coordinate_system: str | None = None) -> int:
        """Index of the coarsest level whose pixel size is ≤ ``resolution`` (in the axes'
        units; a number applies to every spatial axis, a mapping names axes) on every named
        axis; 0 if no level is that fine. ``coordinate_system`` (None: intrinsic) names the
        axes and units; under an affine a pixel's size along an axis is the width of its
        bounding box there."""
        if coordinate_system is None and all(lvl.is_axis_aligned for lvl in self.levels):
            return choose_level(self.axes, [lvl.scale for lvl in self.levels], resolution)
        system = self.coordinate_system(coordinate_system)
        sizes = [self.placement(k, system.name).pixel_size() for k in range(len(self.levels))]
        return choose_level(system.axes, sizes, resolution)

    def region_box(self, region: Mapping[str, Interval] | None = None, *,
                   center: Mapping[str, float] | None = None,
                   size: Mapping[str, float] | None = None,
                   resolution: float | Mapping[str, float] | None = None,
                   level: int | None = None, coordinate_system: str | None = None
                   ) -> tuple[int, tuple[tuple[int, int], ...]]:
        """The level and half-open pixel box that :meth:`read_region` would read."""
        if level is not None and resolution is not None:
            raise SelectionError("give a resolution or a level, not both")
        if level is None:
            level = 0 if resolution is None else self.level_for(
                resolution, coordinate_system=coordinate_system)
        level = self.geometry.check_level(level)
        system = self.coordinate_system(coordinate_system)
        intervals = region_intervals(system.axes, region, center, size)
        box = self.placement(level, system.name).box(intervals, self.levels[level].shape)
        return level, box

    def read_region(self, region: Mapping[str, Interval] | None = None, *,
                    center: Mapping[str, float] | None = None,
                    size: Mapping[str, float] | None = None,
                    resolution: float | Mapping[str, float] | None = None,
                    level: int | None = None, out: np.ndarray | None = None,
                    coordinate_system: str | None = None) -> Region:
        """Read a region given in physical units (the axes' units).

        ``region`` maps axis names to half-open ``(start, stop)`` intervals, to a point
        (the one pixel containing it) or None (whole axis); or give ``center`` and ``size``
        mappings. Unnamed axes are read whole. The level is ``level``, else
        ``level_for(resolution)``, else 0. Pixels whose centres lie in the interval are read
        (docs/ome.md). ``out`` as in :meth:`Array.read`.

        ``coordinate_system`` (0.6; None: the intrinsic one) is the system whose axes the
        region names. Through a scale + translation (axes possibly permuted) the rule above
        applies axis by axis; through an affine or rotation nothing is resampled: the
        pixels of the bounding box (in array space) of the region's preimage are read, and
        :attr:`Region.affine` maps them into the system (docs/ome.md, "OME-NGFF 0.6").
        """
        index, box = self.region_box(region, center=center, size=size,
                                     resolution=resolution, level=level,
                                     coordinate_system=coordinate_system)
        data = self.levels[index].read(tuple(slice(a, b) for a, b in box), out=out)
        return self._region(index, box, data, coordinate_system)

    async def read_region_async(self, region: Mapping[str, Interval] | None = None, *,
                                center: Mapping[str, float] | None = None,
                                size: Mapping[str, float] | None = None,
                                resolution: float | Mapping[str, float] | None = None,
                                level: int | None = None, out: np.ndarray | None = None,
                                coordinate_system: str | None = None) -> Region:
        """:meth:`read_region` for asyncio code (cancellable like ``Array.read_async``)."""
        index, box = self.region_box(region, center=center, size=size,
                                     resolution=resolution, level=level,
                                     coordinate_system=coordinate_system)
        data = await self.levels[index].read_async(tuple(slice(a, b) for a, b in box),
                                                   out=out)
        return self._region(index, box, data, coordinate_system)

    # -- viewer tiles ----------------------------------------------------------------------
    def tile(self, level: int, row: int, col: int, *, size: int = 512, t: int | None = None,
             z: int | None = None, channels: Sequence[int] | None = None) -> np.ndarray:
        """Tile ``(row, col)`` of a grid of ``size``×``size`` pixel tiles over ``level``'s
        y/x plane (edge tiles clipped): ``(channels, h, w)`` pixels. ``t``/``z`` are plane
        indices (default: ``geometry.default_plane``, omero's ``defaultT``/``defaultZ`` when
        within the axis, else 0); ``channels`` indices (default all). Every channel's chunk
        requests are in flight together; chunks come from and go to ``self.cache``.
        Thread-safe."""
        return self._tile_request(level, row, col, size, t, z, channels).read(self.cache)

    async def tile_async(self, level: int, row: int, col: int, *, size: int = 512,
                         t: int | None = None, z: int | None = None,
                         channels: Sequence[int] | None = None) -> np.ndarray:
        """:meth:`tile` for asyncio code; cancelling it cancels its outstanding requests."""
        return await self._tile_request(level, row, col, size, t, z, channels).read_async(
            self.cache)

    def tile_box(self, level: int, y: tuple[int, int], x: tuple[int, int], *,
                 t: int | None = None, z: int | None = None,
                 channels: Sequence[int] | None = None) -> np.ndarray:
        """Any half-open pixel box ``y`` × ``x`` of ``level`` as a tile (viewers' tiles rarely
        align with chunks): ``(channels, y1 - y0, x1 - x0)``; otherwise as :meth:`tile`."""
        return TileRequest(self, level, y, x, t, z, channels).read(self.cache)

    async def tile_box_async(self, level: int, y: tuple[int, int], x: tuple[int, int], *,
                             t: int | None = None, z: int | None = None,
                             channels: Sequence[int] | None = None) -> np.ndarray:
        return await TileRequest(self, level, y, x, t, z, channels).read_async(self.cache)

    def scheduler(self, max_in_flight: int = 64, cache: ChunkCache | None = None
                  ) -> Scheduler:
        """A request scheduler for this image's tiles (levels, labels, channels): futures
        with priorities, ``set_view`` cancelling what is off view and prefetching around it,
        at most ``max_in_flight`` GETs in flight; ``cache`` default: ``self.cache``. See
        :class:`~ngffcore.ome.scheduler.Scheduler`."""
        return Scheduler(self, max_in_flight=max_in_flight, cache=cache)

    # -- rendering -------------------------------------------------------------------------
    def render_tile(self, level: int, row: int, col: int, *, size: int = 512,
                    t: int | None = None, z: int | None = None,
                    channels: Sequence[int] | None = None, **style: Any) -> np.ndarray:
        """Tile ``(row, col)`` (as :meth:`tile`) composited to ``(h, w, 4)`` uint8 RGBA.
        ``channels`` default to omero's active ones (all if none is marked); ``style``:
        ``windows``, ``colors``, ``inverted`` (one per drawn channel; default from omero),
        ``gamma``, ``out`` — see :func:`ngffcore.ome.render.composite`. Compositing runs on the
        native threads with the GIL released."""
        chans = self._drawn_channels(channels)
        pixels = self.tile(level, row, col, size=size, t=t, z=z, channels=chans)
        return self._composite(pixels, chans, style)

    async def render_tile_async(self, level: int, row: int, col: int, *, size: int = 512,
                                t: int | None = None, z: int | None = None,
                                channels: Sequence[int] | None = None, **style: Any
                                ) -> np.ndarray:
        chans = self._drawn_channels(channels)
        pixels = await self.tile_async(level, row, col, size=size, t=t, z=z, channels=chans)
        return await asyncio.get_running_loop().run_in_executor(
            None, self._composite, pixels, chans, style)

    def render_region(self, region: Mapping[str, Interval] | None = None, *,
                      center: Mapping[str, float] | None = None,
                      size: Mapping[str, float] | None = None,
                      resolution: float | Mapping[str, float] | None = None,
                      level: int | None = None, t: int | None = None, z: int | None = None,
                      channels: Sequence[int] | None = None,
                      coordinate_system: str | None = None, **style: Any) -> np.ndarray:
        """The y/x extent of a physical region (as :meth:`read_region`; its level and box
        are :meth:`region_box`'s) at plane ``t``/``z``, rendered as :meth:`render_tile`."""
        chans = self._drawn_channels(channels)
        index, box = self.region_box(region, center=center, size=size,
                                     resolution=resolution, level=level,
                                     coordinate_system=coordinate_system)
        y, x = self._yx_boxes(box)
        pixels = self.tile_box(index, y, x, t=t, z=z, channels=chans)
        return self._composite(pixels, chans, style)

    async def render_region_async(self, region: Mapping[str, Interval] | None = None, *,
                                  center: Mapping[str, float] | None = None,
                                  size: Mapping[str, float] | None = None,
                                  resolution: float | Mapping[str, float] | None = None,
                                  level: int | None = None, t: int | None = None,
                                  z: int | None = None, channels: Sequence[int] | None = None,
                                  coordinate_system: str | None = None, **style: Any
                                  ) -> np.ndarray:
        chans = self._drawn_channels(channels)
        index, box = self.region_box(region, center=center, size=size,
                                     resolution=resolution, level=level,
                                     coordinate_system=coordinate_system)
        y, x = self._yx_boxes(box)
        pixels = await self.tile_box_async(index, y, x, t=t, z=z, channels=chans)
        return await asyncio.get_running_loop().run_in_executor(
            None, self._composite, pixels, chans, style)

    def _yx_boxes(self, box: tuple[tuple[int, int], ...]
                  ) -> tuple[tuple[int, int], tuple[int, int]]:
        y, x = self.geometry.yx("render")
        return box[y], box[x]

    def _drawn_channels(self, channels: Sequence[int] | None) -> list[int]:
        if channels is not None:
            return [int(c) for c in channels]
        n = self.geometry.channel_count
        if len(self.channels) == n:
            active = [i for i, c in enumerate(self.channels) if c.active]
            if active:
                return active
        return list(range(n))

    def _composite(self, pixels: np.ndarray, chans: list[int], style: dict[str, Any]
                   ) -> np.ndarray:
        from ngffcore.ome.render import channel_settings, composite

        n = self.geometry.channel_count
        described = self.channels if len(self.channels) == n else (Channel(),) * n
        windows, colors, inverted = channel_settings(described, pixels.dtype)
        style = dict(style)
        return composite(pixels, channel_axis=0,
                         windows=style.pop("windows", [windows[c] for c in chans]),
                         colors=style.pop("colors", [colors[c] for c in chans]),
                         inverted=style.pop("inverted", [inverted[c] for c in chans]),
                         **style)

    def _tile_request(self, level: int, row: int, col: int, size: int, t: int | None,
                      z: int | None, channels: Sequence[int] | None) -> TileRequest:
        return TileRequest.grid(self, level, row, col, size, t, z, channels)

    def _region(self, index: int, box: tuple[tuple[int, int], ...], data: np.ndarray,
                coordinate_system: str | None) -> Region:
        system = self.coordinate_system(coordinate_system).name
        placement = self.placement(index, system)
        start = [a for a, _ in box]
        affine = None if placement.is_diagonal else placement.data_affine(start)
        return Region(data, index, box, placement.origin(start), placement.pixel_size(),
                      affine, system)


class LabelImage(Image):
    """A label image (``image-label``): an :class:`Image` with label ``colors`` (value →
    RGBA ints), ``properties`` (value → dict) and ``source``."""

    def __init__(self, store: Store, group: GroupMetadata, multiscales: tuple[Multiscale, ...],
                 index: int, levels: tuple[Level, ...], info: LabelInfo,
                 cache: ChunkCache | None = None) -> None:
        super().__init__(store, group, multiscales, index, levels, cache)
        self.label_info = info

    @property
    def colors(self) -> dict[int, tuple[int, int, int, int]]:
        return self.label_info.colors

    @property
    def properties(self) -> dict[int, dict[str, Any]]:
        return self.label_info.properties

    @property
    def source(self) -> dict[str, Any] | None:
        return self.label_info.source


__all__ = ["Image", "LabelImage", "Level", "Region"]
