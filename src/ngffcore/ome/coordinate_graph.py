"""The graph of coordinate systems and transforms (OME-NGFF 0.6, "Graph connectedness"):
systems are nodes, transforms edges; the transform between two systems is the chain of
edges on a shortest path, composed into one :class:`Transform`.

A node is ``(name, path)``: the name of a coordinate system and the path of the group
defining it, relative to the group the graph is built for (``""``: that group itself).
A level's array is the node ``(None, "<image path>/<dataset path>")``. An edge is walked
forwards, or backwards where its transform has a closed-form inverse (``inverse()``): the
spec counts non-invertible transforms as connecting, but only invertible ones can be
travelled against their direction. Pure: no I/O.
"""

from __future__ import annotations

import posixpath
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from ngffcore.errors import ArgumentError, MetadataError, UnsupportedError
from ngffcore.ome.coordinate_systems import CoordinateSystem, SystemRef
from ngffcore.ome.transform_compose import SequenceTransform
from ngffcore.ome.transform_linear import Identity
from ngffcore.ome.transforms import Transform

Node = tuple[str | None, str]


def join(base: str, path: str | None) -> str:
    """``path`` (relative to the group at ``base``; None or "" for that group) as a path
    relative to the graph's root, normalised ("a/./b/" → "a/b"). A path starting with "/"
    is taken from the root (docs/ome.md, "OME-NGFF 0.6")."""
    if not path:
        return base
    joined = path if path.startswith("/") or not base else f"{base}/{path}"
    out = posixpath.normpath(joined).strip("/")
    return "" if out == "." else out


def node_of(ref: SystemRef, base: str = "") -> Node:
    """The node a reference written in the group at ``base`` names."""
    return (ref.name, join(base, ref.path))


def node_from(ref: Any) -> Node:
    """The node a caller names: a system name (of the graph's own group), a
    :class:`SystemRef`, or a mapping ``{"name": ..., "path": ...}`` (either may be absent);
    ArgumentError for anything else."""
    if isinstance(ref, str):
        return (ref, "")
    if isinstance(ref, SystemRef):
        return node_of(ref)
    if isinstance(ref, Mapping):
        name, path = ref.get("name"), ref.get("path")
        if (name is not None and not isinstance(name, str)) or \
                (path is not None and not isinstance(path, str)):
            raise ArgumentError(f"a reference's name and path must be strings: {ref!r:.80}")
        return node_of(SystemRef(name, path))
    raise ArgumentError(f"a coordinate system reference must be a name or a "
                        f"{{'name', 'path'}} mapping, not {ref!r:.60}")


def describe(node: Node) -> str:
    name, path = node
    if name is None:
        return f"array {path!r}"
    return f"coordinate system {name!r}" + (f" of {path!r}" if path else "")


class TransformGraph:
    """Coordinate systems (with their axes where known) and the transforms between them."""

    def __init__(self) -> None:
        self._systems: dict[Node, CoordinateSystem] = {}
        self._out: dict[Node, list[tuple[Node, Transform]]] = {}
        self._in: dict[Node, list[tuple[Node, Transform]]] = {}

    def add_systems(self, systems: Iterable[CoordinateSystem], path: str) -> None:
        for s in systems:
            self._systems[(s.name, path)] = s

    def add(self, src: Node, dst: Node, transform: Transform) -> None:
        self._out.setdefault(src, []).append((dst, transform))
        self._in.setdefault(dst, []).append((src, transform))

    def system(self, node: Node) -> CoordinateSystem | None:
        return self._systems.get(node)

    def known(self, node: Node) -> bool:
        return node in self._systems or node in self._out or node in self._in

    def _neighbours(self, node: Node) -> Iterable[tuple[Node, Transform | None]]:
        """Forward edges first (preferred on paths of equal length), then backward ones
        with their inverse (None where there is none: the edge connects but can't be
        walked this way)."""
        for dst, t in self._out.get(node, ()):
            yield dst, t
        for src, t in self._in.get(node, ()):
            try:
                yield src, t.inverse()
            except UnsupportedError:
                yield src, None

    def find(self, src: Node, dst: Node, where: str) -> Transform:
        """The transform from ``src`` to ``dst``: the composition of the edges on a
        shortest path (an identity when they are the same node). ArgumentError when either
        is not in the graph; UnsupportedError when only non-invertible edges walked
        backwards would connect them; MetadataError when nothing connects them."""
        for node in (src, dst):
            if not self.known(node):
                known = sorted(describe(n) for n in self._systems)
                raise ArgumentError(f"{where}: no {describe(node)} (known: "
                                    f"{', '.join(known) or 'none'})")
        if src == dst:
            system = self._systems.get(src)
            return Identity(None if system is None else system.ndim, input=_ref(src),
                            output=_ref(dst), where=where)
        previous: dict[Node, tuple[Node, Transform]] = {}
        blocked = False
        queue = deque([src])
        seen = {src}
        while queue:
            node = queue.popleft()
            for nxt, t in self._neighbours(node):
                if nxt in seen:
                    continue
                if t is None:
                    blocked = True
                    continue
                seen.add(nxt)
                previous[nxt] = (node, t)
                if nxt == dst:
                    return self._compose(src, dst, previous, where)
                queue.append(nxt)
        if blocked:
            raise UnsupportedError(f"{describe(src)} and {describe(dst)} are connected only "
                                   f"through transforms without a closed-form inverse, "
                                   f"walked against their direction", path=where)
        raise MetadataError(f"no chain of coordinate transformations leads from "
                            f"{describe(src)} to {describe(dst)}", path=where)

    @staticmethod
    def _compose(src: Node, dst: Node, previous: dict[Node, tuple[Node, Transform]],
                 where: str) -> Transform:
        chain = []
        node = dst
        while node != src:
            node, t = previous[node][0], previous[node][1]
            chain.append(t)
        chain.reverse()
        refs = (_ref(src), _ref(dst))
        if len(chain) == 1:
            t = chain[0]
            if (t.input, t.output) == refs:
                return t
            if t.is_affine:  # a copy with the ends named as asked (parameters shared)
                return t.with_refs(*refs)
        # a field keeps what it loaded in its own object: wrapped, not copied, so it is
        # read once however often the path is asked for
        return SequenceTransform(chain, input=refs[0], output=refs[1], where=where)


def _ref(node: Node) -> SystemRef:
    name, path = node
    return SystemRef(name, path or None)


__all__ = ["Node", "TransformGraph", "join", "node_of", "node_from", "describe"]
