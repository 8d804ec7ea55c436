"""Typed surface of the compiled core (checked against the binary by mypy's stubtest)."""

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, Union

import numpy as np
from numpy.typing import NDArray

from typing_extensions import Buffer, disjoint_base

CODEC_BLOSC: int
CODEC_ZSTD: int
CODEC_ZLIB: int
CODEC_LZ4: int
CODEC_CRC32C: int
DELTA_NONE: int
DELTA_INT: int
DELTA_UINT: int
DELTA_FLOAT: int
KEY_V2: int
KEY_DEFAULT: int
MAX_DIMS: int
MAX_CODECS: int
SHARD_ENTRY_BYTES: int

_Source = Union[None, bytes, memoryview, Buffer, tuple[bytes, int, int],
                tuple[bytes, int, int, bytes | None]]

@disjoint_base
class Pipeline:
    def __init__(
        self,
        *,
        itemsize: int,
        chunk_shape: Sequence[int],
        chunk_strides: Sequence[int],
        codecs: Sequence[int] = (),
        byteswap: int = 0,
        delta: int = 0,
        delta_swap: bool = False,
        fill_value: bytes = b"",
        codec_params: Sequence[Mapping[str, int]] = (),
    ) -> None: ...
    @property
    def ndim(self) -> int: ...
    @property
    def chunk_nbytes(self) -> int: ...

def plan_chunks(
    shape: Sequence[int], chunk_shape: Sequence[int], sel_start: Sequence[int],
    sel_stop: Sequence[int],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]: ...
def chunk_keys(coords: NDArray[np.int64], encoding: int, separator: str,
               prefix: str = "") -> list[str]: ...
def shard_index_parse(
    index: Buffer, n_inner: int, big_endian: bool, shard_len: int
) -> tuple[int, NDArray[np.int64], NDArray[np.int64], int]: ...
def crc32c(data: Buffer, crc: int = 0) -> int: ...
def default_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def decode_batch(
    pipeline: Pipeline, out: Buffer | NDArray[Any], boxes: NDArray[np.int64],
    sources: Sequence[_Source], keys: Sequence[str],
) -> None: ...
def read_chunk_files(
    pipeline: Pipeline, out: Buffer | NDArray[Any], shape: Sequence[int],
    chunk_shape: Sequence[int], sel_start: Sequence[int], sel_stop: Sequence[int],
    root: bytes, encoding: int, separator: str, key_prefix: str = "",
    confine: bytes | None = None,
) -> None: ...
def open_regular(path: bytes, root: bytes | None = None, directory_missing: bool = True,
                 ) -> tuple[int, int, int, str]: ...
def raise_status(status: int, key: str | None, *, in_shard_index: bool = False,
                 detail: bytes = b"") -> NoReturn: ...

BLOSC_CNAMES: dict[str, int]

def encode_bound(pipeline: Pipeline) -> int: ...
def encode_batch(
    pipeline: Pipeline, value: Buffer | NDArray[Any], boxes: NDArray[np.int64],
    bases: Sequence[_Source], keys: Sequence[str], *, skip_fill: bool,
) -> list[memoryview | None]: ...
def _encode_buffer(pipeline: Pipeline, decoded: Buffer, capacity: int,
                   guard: int = 64) -> tuple[bytes, bool]: ...
def write_chunk_files(
    pipeline: Pipeline, value: Buffer | NDArray[Any], shape: Sequence[int],
    chunk_shape: Sequence[int], sel_start: Sequence[int], sel_stop: Sequence[int],
    root: bytes, encoding: int, separator: str, key_prefix: str = "",
    confine: bytes | None = None, *, skip_fill: bool, fsync: bool = False,
) -> tuple[list[int], list[int], int]: ...

RENDER_MAX_CHANNELS: int

def render_rgba(
    pixels: NDArray[Any], channel_axis: int, out: NDArray[np.uint8],
    windows: NDArray[np.float64] | Sequence[Sequence[float]],
    colors: NDArray[np.float64] | Sequence[Sequence[float]],
    inverted: NDArray[np.bool_] | Sequence[bool],
    gamma: NDArray[np.float64] | Sequence[float],
) -> NDArray[np.uint8]: ...

DS_MEAN: int
DS_NEAREST: int
DS_MODE: int
DS_GAUSSIAN: int

def downsample(method: int, src: NDArray[Any], src_start: Sequence[int],
               full_shape: Sequence[int], factors: Sequence[int], out: NDArray[Any],
               out_start: Sequence[int]) -> None: ...
def downsample_input_box(
    method: int, full_shape: Sequence[int], factors: Sequence[int], out_start: Sequence[int],
    out_shape: Sequence[int],
) -> tuple[tuple[int, ...], tuple[int, ...]]: ...
