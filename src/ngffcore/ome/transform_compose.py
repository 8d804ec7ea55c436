"""The OME-NGFF 0.6 transformations built from others: ``sequence`` (composition),
``byDimension`` (lower-dimensional transforms on subsets of axes) and ``bijection`` (a
forward transform with its explicit inverse).

Members' own ``input``/``output`` references are kept as written but play no part in
evaluation: a sequence feeds each member the previous member's output.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ngffcore.errors import MetadataError, UnsupportedError
from ngffcore.ome.transform_base import MAX_TRANSFORM_NDIM, Transform, err, merge_ndim

__all__ = ["SequenceTransform", "ByDimension", "DimensionItem", "Bijection"]


def _chain_dims(members: list[Transform], ndim_in: int | None,
                ndim_out: int | None) -> list[Transform]:
    """``members`` with the dimensionality each passes to the next made consistent: known
    sizes flow both ways through members that can take them (an identity between a 3-D scale
    and anything is 3-D). :class:`MetadataError` where neighbours disagree."""
    bounds: list[int | None] = [ndim_in] + [None] * (len(members) - 1) + [ndim_out]
    for _ in range(len(members) + 2):
        changed = False
        for i, m in enumerate(members):
            # every _fix_ndim raises, saying what is wrong, where a size contradicts it
            fixed = m._fix_ndim(bounds[i], bounds[i + 1])
            if fixed is not m:
                members[i] = m = fixed
                changed = True
            new_in = bounds[i] if m.ndim_in is None else m.ndim_in
            new_out = bounds[i + 1] if m.ndim_out is None else m.ndim_out
            if (new_in, new_out) != (bounds[i], bounds[i + 1]):
                bounds[i], bounds[i + 1] = new_in, new_out
                changed = True
        if not changed:
            break
    return members


class SequenceTransform(Transform):
    """``sequence``: ``members[0]`` first, then ``members[1]`` on its result, … (the spec's
    ``f2(f1(f0(x)))`` for ``[f0, f1, f2]``)."""

    type = "sequence"

    def __init__(self, members: Iterable[Transform], *, ndim_in: int | None = None,
                 ndim_out: int | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        chain = list(members)
        if not chain:
            raise err(self.where, "a sequence needs a non-empty 'transformations' list")
        self.members = tuple(_chain_dims(chain, ndim_in, ndim_out))
        self.ndim_in, self.ndim_out = self.members[0].ndim_in, self.members[-1].ndim_out

    def _key(self) -> tuple[Any, ...]:
        return (self.members,)

    def _fix_ndim(self, ndim_in: int | None, ndim_out: int | None) -> Transform:
        if self.ndim_in == ndim_in and self.ndim_out == ndim_out:
            return self
        return SequenceTransform(self.members, ndim_in=ndim_in, ndim_out=ndim_out,
                                 input=self.input, output=self.output, name=self.name,
                                 where=self.where)

    def _apply(self, pts: np.ndarray) -> np.ndarray:
        for m in self.members:
            pts = m.apply(pts)
        return pts

    @property
    def is_affine(self) -> bool:
        return all(m.is_affine for m in self.members)

    def to_matrix(self) -> np.ndarray:
        out = self.members[0].to_matrix()
        # finite members can compose to a product beyond float64 (1e300 · 1e300): that is
        # metadata no reader can use, not a numpy warning
        with np.errstate(over="ignore", invalid="ignore"):
            for m in self.members[1:]:
                out = m.to_matrix() @ out
        if not np.isfinite(out).all():
            raise MetadataError("the sequence's transformations compose to a matrix with "
                                "non-finite values", path=self.where)
        return out

    def inverse(self) -> Transform:
        return SequenceTransform([m.inverse() for m in reversed(self.members)],
                                 input=self.output, output=self.input, name=self.name,
                                 where=self.where)


class DimensionItem:
    """One ``byDimension`` entry: ``transform`` maps input axes ``input_axes`` (in that order)
    to output axes ``output_axes``."""

    __slots__ = ("transform", "input_axes", "output_axes")

    def __init__(self, transform: Transform, input_axes: tuple[int, ...],
                 output_axes: tuple[int, ...]) -> None:
        self.transform = transform
        self.input_axes = tuple(input_axes)
        self.output_axes = tuple(output_axes)

    def _key(self) -> tuple[Any, ...]:
        return (self.transform, self.input_axes, self.output_axes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DimensionItem) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"DimensionItem({self.transform!r}, input_axes={self.input_axes}, "
                f"output_axes={self.output_axes})")


class ByDimension(Transform):
    """``byDimension``: output coordinates ``item.output_axes`` = ``item.transform`` applied to
    input coordinates ``item.input_axes``, for each item. Every output axis is written by
    exactly one item; input axes may be left unused (so ``ndim_in`` is known only from the
    input system) or read by several items."""

    type = "byDimension"

    def __init__(self, items: Iterable[DimensionItem], *, ndim_in: int | None = None,
                 ndim_out: int | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        where = self.where
        parts: list[DimensionItem] = []
        for i, item in enumerate(items):
            at = f"{where}.transformations[{i}]"
            for what, axes in (("inputAxes", item.input_axes), ("outputAxes", item.output_axes)):
                if not axes:
                    raise err(at, f"{what} must be a non-empty list of axis indices")
                if any(a < 0 or a >= MAX_TRANSFORM_NDIM for a in axes):
                    raise err(at, f"{what} {list(axes)} holds an index outside "
                                  f"0..{MAX_TRANSFORM_NDIM - 1}")
                if len(set(axes)) != len(axes):
                    raise err(at, f"{what} {list(axes)} repeats an axis")
            t = item.transform._fix_ndim(len(item.input_axes), len(item.output_axes))
            parts.append(DimensionItem(t, item.input_axes, item.output_axes))
        if not parts:
            raise err(where, "a byDimension needs a non-empty 'transformations' list")
        self.items = tuple(parts)
        written = [a for p in parts for a in p.output_axes]
        top_out = max(written) + 1
        if ndim_out is None:
            ndim_out = top_out
        missing = sorted(set(range(ndim_out)) - set(written))
        twice = sorted({a for a in written if written.count(a) > 1})
        beyond = sorted(a for a in set(written) if a >= ndim_out)
        if beyond:
            raise err(where, f"byDimension outputAxes refer to axes {beyond}, but the output "
                             f"system has only {ndim_out} (indices 0..{ndim_out - 1})")
        if twice:
            raise err(where, f"byDimension writes output axes {twice} more than once: each "
                             f"output axis must appear in exactly one outputAxes")
        if missing:
            raise err(where, f"byDimension leaves output axes {missing} unwritten: each "
                             f"output axis must appear in exactly one outputAxes")
        read = max(a for p in parts for a in p.input_axes)
        if ndim_in is not None and read >= ndim_in:
            raise err(where, f"byDimension inputAxes refer to axis {read}, but the input "
                             f"system has only {ndim_in} (indices 0..{ndim_in - 1})")
        self.ndim_in, self.ndim_out = ndim_in, ndim_out

    def _key(self) -> tuple[Any, ...]:
        return (self.items,)

    def _fix_ndim(self, ndim_in: int | None, ndim_out: int | None) -> Transform:
        n_in = merge_ndim(self.ndim_in, ndim_in, "byDimension input", self.where)
        n_out = merge_ndim(self.ndim_out, ndim_out, "byDimension output", self.where)
        if (n_in, n_out) == (self.ndim_in, self.ndim_out):
            return self
        return ByDimension(self.items, ndim_in=n_in, ndim_out=n_out, input=self.input,
                           output=self.output, name=self.name, where=self.where)

    def _apply(self, pts: np.ndarray) -> np.ndarray:
        read = max(a for p in self.items for a in p.input_axes)
        if pts.shape[1] <= read:
            raise err(self.where, f"byDimension reads input axis {read} of "
                                  f"{pts.shape[1]}-D points")
        assert self.ndim_out is not None  # always known (from the output axes)
        out = np.empty((pts.shape[0], self.ndim_out))
        for p in self.items:
            out[:, list(p.output_axes)] = p.transform.apply(pts[:, list(p.input_axes)])
        return out

    @property
    def is_affine(self) -> bool:
        return self.ndim_in is not None and all(p.transform.is_affine for p in self.items)

    def to_matrix(self) -> np.ndarray:
        if self.ndim_in is None or self.ndim_out is None:
            raise self._unsized("the matrix")
        m = np.zeros((self.ndim_out + 1, self.ndim_in + 1))
        m[-1, -1] = 1.0
        for p in self.items:
            sub = p.transform.to_matrix()
            m[np.ix_(p.output_axes, p.input_axes)] = sub[:-1, :-1]
            m[list(p.output_axes), -1] = sub[:-1, -1]
        return m

    def inverse(self) -> Transform:
        read = [a for p in self.items for a in p.input_axes]
        if self.ndim_in != self.ndim_out or sorted(read) != list(range(self.ndim_out or 0)):
            raise UnsupportedError("a byDimension is invertible only when its items read "
                                   "every input axis exactly once (and input and output "
                                   "have as many axes)", path=self.where)
        return ByDimension([DimensionItem(p.transform.inverse(), p.output_axes, p.input_axes)
                            for p in self.items],
                           ndim_in=self.ndim_out, ndim_out=self.ndim_in, input=self.output,
                           output=self.input, name=self.name, where=self.where)


class Bijection(Transform):
    """``bijection``: ``forward`` maps input → output, ``inverse`` output → input (the spec
    requires equal input and output dimensionality). ``apply`` applies ``forward``;
    :meth:`inverse` swaps the two."""

    type = "bijection"

    def __init__(self, forward: Transform, inverse: Transform, *, ndim_in: int | None = None,
                 ndim_out: int | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        n = merge_ndim(ndim_in, ndim_out, "bijection input and output", self.where)
        for t in (forward, inverse):
            n = merge_ndim(n, t.ndim_in, f"bijection {t.type} input", t.where)
            n = merge_ndim(n, t.ndim_out, f"bijection {t.type} output", t.where)
        self.forward = forward._fix_ndim(n, n)
        self.inverse_transform = inverse._fix_ndim(n, n)
        self.ndim_in = self.ndim_out = n

    def _key(self) -> tuple[Any, ...]:
        return (self.forward, self.inverse_transform)

    def _fix_ndim(self, ndim_in: int | None, ndim_out: int | None) -> Transform:
        n = merge_ndim(ndim_in, ndim_out, "bijection input and output", self.where)
        n = merge_ndim(self.ndim_in, n, "bijection", self.where)
        if n == self.ndim_in:
            return self
        return Bijection(self.forward, self.inverse_transform, ndim_in=n, ndim_out=n,
                         input=self.input, output=self.output, name=self.name,
                         where=self.where)

    def _apply(self, pts: np.ndarray) -> np.ndarray:
        return self.forward.apply(pts)

    @property
    def is_affine(self) -> bool:
        return self.forward.is_affine

    def to_matrix(self) -> np.ndarray:
        return self.forward.to_matrix()

    def inverse(self) -> Transform:
        return Bijection(self.inverse_transform, self.forward, input=self.output,
                         output=self.input, name=self.name, where=self.where)
