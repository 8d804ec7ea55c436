"""ngffcore: fast, correct reads of Zarr v2/v3 (OME-Zarr) arrays.

Data flow: location → store → metadata → plan → fetch → decode → scatter → numpy. The
decode and scatter of a whole read run in one native call on ngffcore's own threads with the
GIL released.
"""

from ngffcore import _core
from ngffcore._core import get_num_threads
from ngffcore.zarr.array import Array, open_array
from ngffcore.zarr.create import create_array
from ngffcore.zarr.cache import CacheStats, ChunkCache
from ngffcore.ome.collection import Collection, Plate, Well
from ngffcore.errors import (
    ArgumentError,
    AuthError,
    CastError,
    ClosedError,
    ExistsError,
    ReadOnlyError,
    WriteError,
    DecodeError,
    MetadataError,
    NgffError,
    NotFoundError,
    OutputError,
    ReadLimitError,
    SelectionError,
    ShardIndexError,
    StoreError,
    UnsupportedError,
)
from ngffcore.limits import (
    get_max_chunk_bytes,
    get_max_read_bytes,
    set_max_chunk_bytes,
    set_max_read_bytes,
)
from ngffcore.ome.image import Image, LabelImage, Level, Region
from ngffcore.ome.scheduler import Scheduler
from ngffcore.ome.multiscales import Axis, Channel, Window
from ngffcore.ome.node import open, open_async
from ngffcore.ome.scene import Scene, open_scene, open_scene_async
from ngffcore.ome.transforms import CoordinateSystem, SystemRef, Transform
from ngffcore.ome.writer import write_image, write_labels
from ngffcore.ome.plate_writer import PlateWriter, write_plate
# validate() imports jsonschema only when called: ngffcore itself does not need it
from ngffcore.ome.validate import Problem, validate

__version__ = "0.1.0"

#: set_num_threads was called in this process (a dask worker then keeps the size it was
#: given instead of sizing the pool itself: ngffcore.dask, docs/design.md "Dask")
_threads_set_explicitly = False


def set_num_threads(n: int) -> None:
    """Size of the native worker pool, counting the calling thread (``n >= 1``; default:
    one per core). Batches already running finish on the old pool."""
    global _threads_set_explicitly
    _core.set_num_threads(n)
    _threads_set_explicitly = True


__all__ = [
    "Array",
    "open_array",
    "create_array",
    "open",
    "open_async",
    "open_scene",
    "open_scene_async",
    "Scene",
    "CoordinateSystem",
    "SystemRef",
    "Transform",
    "write_image",
    "write_labels",
    "write_plate",
    "PlateWriter",
    "Image",
    "Scheduler",
    "LabelImage",
    "Level",
    "Region",
    "Axis",
    "Channel",
    "Window",
    "Plate",
    "Well",
    "Collection",
    "ChunkCache",
    "CacheStats",
    "validate",
    "Problem",
    "get_num_threads",
    "set_num_threads",
    "NgffError",
    "NotFoundError",
    "MetadataError",
    "UnsupportedError",
    "DecodeError",
    "ShardIndexError",
    "SelectionError",
    "ArgumentError",
    "OutputError",
    "ReadLimitError",
    "set_max_read_bytes",
    "get_max_read_bytes",
    "set_max_chunk_bytes",
    "get_max_chunk_bytes",
    "StoreError",
    "AuthError",
    "CastError",
    "ExistsError",
    "ReadOnlyError",
    "WriteError",
    "ClosedError",
]
