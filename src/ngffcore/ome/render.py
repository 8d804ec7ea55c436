"""Channel compositing: multichannel pixels → an ``(h, w, 4)`` uint8 RGBA image.

Each channel is windowed, optionally inverted and gamma-corrected, tinted with its colour,
and the channels are added, clamped to 255 (additive blending, as OMERO and napari's
"additive" mode do); alpha is 255. The work is done in C (``csrc/ngff_render.c``) on
ngffcore's native threads (see :func:`ngffcore.set_num_threads`, the calling thread works
too) with the GIL released: a 512 × 512 × 3 uint8 tile takes well under a millisecond on
one core.

Per channel, for a sample ``x`` (in the data's own units, converted to float64)::

    v = clip((x - start) / (end - start), 0, 1)    if end > start
    v = 1.0 if x > start else 0.0                   if end <= start (a step at start)
    v = 1 - v                                       if inverted
    v = v ** gamma                                  (gamma > 1 darkens the mid-tones)
    contribution = floor(v * colour + 0.5)          per R, G, B; colour in 0..255

A NaN sample contributes nothing. Each component of the output is
``min(255, sum of the channels' contributions)``. The contributions are rounded half-up per
channel before the sum, so the result is exactly reproducible with NumPy float64 arithmetic
(lookup tables are used for integer and float16 data, but each entry is computed by that
same formula).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ngffcore import _core
from ngffcore.errors import ArgumentError
from ngffcore.ome.multiscales import Channel, Window

__all__ = [
    "DEFAULT_PALETTE",
    "MAX_CHANNELS",
    "channel_settings",
    "composite",
    "default_window",
    "parse_color",
]

#: Colours ("RRGGBB") given to channels that have none, by channel index (cycled): red,
#: green, blue, magenta, cyan, yellow, orange, violet. A single channel without a colour is
#: drawn white instead.
DEFAULT_PALETTE: tuple[str, ...] = (
    "FF0000", "00FF00", "0000FF", "FF00FF", "00FFFF", "FFFF00", "FF8000", "8000FF",
)

#: The most channels one call composites (each output component is a sum of at most this
#: many 0..255 contributions).
MAX_CHANNELS: int = _core.RENDER_MAX_CHANNELS

#: A colour: "RRGGBB" (or "#RRGGBB", any case), three ints 0..255, or three floats 0..1.
ColorLike = Union[str, Sequence[float]]
#: A window: a (start, end) pair in data units, or a :class:`ngffcore.Window`.
WindowLike = Union[Window, Sequence[float]]

_DTYPE_KINDS = "biuf"


def _check_dtype(dtype: np.dtype[Any]) -> None:
    if dtype.kind not in _DTYPE_KINDS or (dtype.kind == "f" and dtype.itemsize > 8):
        raise ArgumentError(f"cannot render {dtype} pixels: bool, (u)int8-64 and "
                            f"float16/32/64 only")


def default_window(dtype: DTypeLike) -> tuple[float, float]:
    """The window used when none is given: the dtype's full range for integers (bool:
    0..1), and 0..1 for floats (data-independent, so every tile of an image agrees)."""
    dt = np.dtype(dtype)
    _check_dtype(dt)
    if dt.kind == "b":
        return 0.0, 1.0
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return float(info.min), float(info.max)
    return 0.0, 1.0


def parse_color(color: ColorLike) -> tuple[float, float, float]:
    """A colour as R, G, B in 0..255 (floats). Accepts "RRGGBB" / "#RRGGBB" (hex, any case),
    a sequence of three ints 0..255, or of three numbers 0..1 when any of them is a float
    (so ``(1.0, 0, 0)`` is red and ``(255, 0, 0)`` is red too). :class:`ArgumentError` (a
    ValueError) otherwise."""
    if isinstance(color, str):
        text = color[1:] if color.startswith("#") else color
        if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise ArgumentError(f"colour {color!r} is not 'RRGGBB' hex")
        return (float(int(text[0:2], 16)), float(int(text[2:4], 16)),
                float(int(text[4:6], 16)))
    try:
        parts = list(color)
    except TypeError:
        raise ArgumentError(f"colour {color!r} is neither 'RRGGBB' nor an RGB triple"
                            ) from None
    if len(parts) != 3 or not all(
            isinstance(p, numbers.Real) and not isinstance(p, bool) for p in parts):
        raise ArgumentError(f"colour {color!r} is not three numbers")
    if all(isinstance(p, numbers.Integral) for p in parts):
        if not all(0 <= p <= 255 for p in parts):
            raise ArgumentError(f"colour {color!r}: integer components must be in 0..255")
        return float(parts[0]), float(parts[1]), float(parts[2])
    values = [float(p) for p in parts]
    if not all(0.0 <= v <= 1.0 for v in values):
        raise ArgumentError(f"colour {color!r}: float components must be in 0..1 (use ints "
                            f"for 0..255)")
    return values[0] * 255.0, values[1] * 255.0, values[2] * 255.0


def _window(window: WindowLike, dtype: np.dtype[Any], i: int) -> tuple[float, float]:
    lo, hi = default_window(dtype)
    if isinstance(window, Window):
        start = lo if window.start is None else window.start
        end = hi if window.end is None else window.end
    else:
        try:
            start, end = window
        except (TypeError, ValueError):
            raise ArgumentError(f"windows[{i}] = {window!r} is not a (start, end) pair or a "
                                f"Window") from None
    try:
        s, e = float(start), float(end)
    except (TypeError, ValueError):
        raise ArgumentError(f"windows[{i}] = {window!r} does not hold numbers") from None
    if not (math.isfinite(s) and math.isfinite(e)):
        raise ArgumentError(f"windows[{i}] = {window!r} is not finite")
    if e > s and not math.isfinite(e - s):
        raise ArgumentError(f"windows[{i}] = {window!r} is wider than a float64 can hold")
    return s, e


def _per_channel(value: Any, n: int, what: str) -> list[Any]:
    if isinstance(value, (str, bytes)) or np.ndim(value) == 0:
        return [value.item() if isinstance(value, np.ndarray) else value] * n
    items = list(value)
    if len(items) != n:
        raise ArgumentError(f"{what} has {len(items)} entries for {n} channels")
    return items


def channel_settings(channels: Sequence[Channel], dtype: DTypeLike
                     ) -> tuple[list[tuple[float, float]], list[str], list[bool]]:
    """Windows, colours ("RRGGBB") and inversion flags for OME ``omero`` channels, one
    entry per channel in order (inactive ones included: filter with ``c.active``).

    A missing window start or end (or a non-finite one) takes :func:`default_window` of
    ``dtype``. A missing colour is white when there is only one channel, else
    ``DEFAULT_PALETTE[index % 8]`` (red, green, blue, ...), by the channel's index in
    ``channels`` so colours stay put when channels are toggled. ``family`` and
    ``coefficient`` are not used (linear mapping only).
    """
    dt = np.dtype(dtype)
    lo, hi = default_window(dt)
    windows: list[tuple[float, float]] = []
    colors: list[str] = []
    inverted: list[bool] = []
    for i, ch in enumerate(channels):
        start, end = ch.window.start, ch.window.end
        s = start if start is not None and math.isfinite(start) else lo
        e = end if end is not None and math.isfinite(end) else hi
        windows.append((float(s), float(e)))
        if ch.color is not None:
            colors.append(ch.color)
        else:
            colors.append("FFFFFF" if len(channels) == 1
                          else DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)])
        inverted.append(bool(ch.inverted))
    return windows, colors, inverted


def composite(pixels: ArrayLike, *, channel_axis: int | None, windows: Sequence[WindowLike],
              colors: Sequence[ColorLike], inverted: bool | Sequence[bool] | None = None,
              gamma: float | Sequence[float] = 1.0,
              out: NDArray[np.uint8] | None = None) -> NDArray[np.uint8]:
    """Composite the channels of ``pixels`` into an ``(h, w, 4)`` uint8 RGBA image.

    ``pixels``: a 3-D array with the channels on ``channel_axis`` and y, x on the other two
    axes in that order — planar ``(c, y, x)`` (``channel_axis=0``) and interleaved
    ``(y, x, c)`` (``channel_axis=-1``) both work on views without copying — or a 2-D
    ``(y, x)`` array with ``channel_axis=None`` (one channel). Dtypes: bool, (u)int8-64
    (64-bit values beyond 2**53 are rounded to float64), float16/32/64; other byte orders
    are converted (a copy). Pass only the channels to draw (inactive ones left out).

    Per channel (sequences of one entry per channel): ``windows`` — (start, end) in data
    units or :class:`ngffcore.Window` (a missing start/end takes :func:`default_window`);
    ``colors`` — see :func:`parse_color`; ``inverted`` — None (no), one bool for all, or
    one per channel; ``gamma`` — finite > 0, one for all or one per channel. The formula is
    in the module docstring. At most :data:`MAX_CHANNELS` channels; none gives opaque
    black.

    ``out``: an ``(h, w, 4)`` uint8 array to write into (any strides, e.g. a view of a
    larger canvas; it may not overlap ``pixels``), else a new C-contiguous one. Returns
    ``out``. Raises :class:`ngffcore.ArgumentError` (a ValueError) for bad arguments,
    :class:`ngffcore.OutputError` for a bad ``out``. Thread-safe: runs on ngffcore's native
    threads with the GIL released, and many threads may call it at once.
    """
    arr = np.asarray(pixels)
    if arr.ndim == 2 and channel_axis is None:
        arr = arr[np.newaxis]
        axis = 0
    elif arr.ndim == 3 and channel_axis is not None:
        if isinstance(channel_axis, bool) or not isinstance(channel_axis, numbers.Integral):
            raise ArgumentError(f"channel_axis must be an int, not {channel_axis!r}")
        if not -3 <= channel_axis < 3:
            raise ArgumentError(f"channel_axis {channel_axis} is out of range for 3 "
                                f"dimensions")
        axis = int(channel_axis) % 3
    elif arr.ndim == 3:
        raise ArgumentError("3-D pixels need a channel_axis")
    elif arr.ndim == 2:
        raise ArgumentError("2-D pixels are one channel: pass channel_axis=None")
    else:
        raise ArgumentError(f"pixels must be 2-D (y, x) or 3-D (with a channel axis), not "
                            f"{arr.ndim}-D")
    _check_dtype(arr.dtype)
    if arr.dtype.kind == "b":
        arr = arr.view(np.uint8)
    elif not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    n = arr.shape[axis]
    if n > MAX_CHANNELS:
        raise ArgumentError(f"{n} channels; at most {MAX_CHANNELS} can be composited")
    if isinstance(windows, (str, bytes, Window)):
        raise ArgumentError("windows must be a sequence with one window per channel")
    if isinstance(colors, str):
        raise ArgumentError("colors must be a sequence with one colour per channel")
    win_items = list(windows)
    col_items = list(colors)
    if len(win_items) != n:
        raise ArgumentError(f"{len(win_items)} windows for {n} channels")
    if len(col_items) != n:
        raise ArgumentError(f"{len(col_items)} colours for {n} channels")
    win = np.array([_window(w, arr.dtype, i) for i, w in enumerate(win_items)],
                   dtype=np.float64).reshape(n, 2)
    col = np.array([parse_color(c) for c in col_items], dtype=np.float64).reshape(n, 3)
    inv_items = _per_channel(False if inverted is None else inverted, n, "inverted")
    for i, v in enumerate(inv_items):
        if not isinstance(v, (bool, np.bool_)):
            raise ArgumentError(f"inverted[{i}] = {v!r} is not a bool")
    inv = np.array(inv_items, dtype=bool).reshape(n)
    gam_items = _per_channel(gamma, n, "gamma")
    gam = np.empty(n, dtype=np.float64)
    for i, g in enumerate(gam_items):
        if isinstance(g, bool) or not isinstance(g, numbers.Real) or not (
                math.isfinite(float(g)) and float(g) > 0):
            raise ArgumentError(f"gamma {g!r} (channel {i}) must be a finite number > 0")
        gam[i] = float(g)
    y_axis, x_axis = [a for a in range(3) if a != axis]
    if out is None:
        out = np.empty((arr.shape[y_axis], arr.shape[x_axis], 4), dtype=np.uint8)
    return _core.render_rgba(arr, axis, out, win, col, inv, gam)
