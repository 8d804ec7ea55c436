"""The OME-NGFF 0.6 rules that its JSON schemas cannot express, for multiscales and scenes,
checked on the JSON itself (so a document that no reader could open still gets every problem
listed): coordinate systems (unique names, axes per system), the datasets' transformations
(input = the dataset's path, one intrinsic output system, scale / identity / scale-then-
translation), the multiscale's and the scene's transformations (references to coordinate
systems that exist — here, in a label image under ``labels/`` or in a scene's image —,
dimensionalities, via ``validate_transforms_06``) and the connectedness of the transformation
graph.

Groups that transformations reference by ``path`` are read by ``ome/validate.py`` and handed
in as :data:`External` (their coordinate systems and version); like the other rules, nothing
here reads.

Readings taken where the 0.6rc0 text is loose or contradicts itself (documented in
``docs/ome.md``, "Validation (0.6)"):

* The multiscales axes rules (2 to 5 axes, 2 or 3 of type ``space``, at most one ``time``,
  at most one channel/custom, time → channel/custom → space) apply to *every* coordinate
  system of a multiscale, as the text says; a system with two or more axes of type
  ``array`` stands in for the space axes (the schema's ``axes.schema`` alternative), with
  ``array`` axes ordered like space axes.
* A dataset transformation's ``input.name`` and ``output.path`` are warnings: the datasets
  section says SHOULD be omitted, the constraints summary MUST.
* A multiscale transformation to a label image may be identity, scale, translation (the
  multiscales section) or a sequence of a scale and a translation (the labels section).
* The graph rule ("any two coordinate systems in the metadata MUST be linked") is checked per
  multiscale (its systems, through its own transformations) and per scene (its systems and
  the images it references, each image counted as one node: its own graph is its business).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ngffcore.ome.validate_rules import count_of
from ngffcore.ome.validate_schema import shorten
from ngffcore.ome.validate_transforms_06 import TransformRules

#: coordinate system name → its axes (the well-formed entries of a ``coordinateSystems`` list)
Systems = dict[str, list[dict[str, Any]]]

#: the spec's two version strings of 0.6 (the schemas say "0.6rc0")
VERSIONS_06 = ("0.6", "0.6rc0")

_LABEL_TRANSFORMS = ("identity", "scale", "translation")


@dataclass(frozen=True)
class Referenced:
    """A group referenced by a transformation's ``path``: the coordinate systems of all its
    multiscales and its ``ome.version``."""

    systems: Systems
    version: Any


#: referenced path → the group there, or why there is none usable (a sentence)
External = dict[str, "Referenced | str"]


def _ref(value: Any) -> tuple[Any, str | None] | None:
    """``(name, path)`` of an ``input``/``output`` object (path None when omitted, null or
    empty: the same document); None if it is not an object."""
    if not isinstance(value, dict):
        return None
    path = value.get("path")
    return value.get("name"), path if isinstance(path, str) and path else None


def _transforms(value: Any) -> list[tuple[int, dict[str, Any]]]:
    return [(i, t) for i, t in enumerate(value) if isinstance(t, dict)] \
        if isinstance(value, list) else []


def _member_kinds(t: dict[str, Any]) -> list[Any] | None:
    """The ``type`` of each member of a wrapper's ``transformations`` (None for a member
    that is not an object); None when there is no such list."""
    members = t.get("transformations")
    if not isinstance(members, list):
        return None
    return [m.get("type") if isinstance(m, dict) else None for m in members]


def referenced_paths(ome: dict[str, Any]) -> list[str]:
    """The group paths that the multiscales' and the scene's transformations reference (in
    document order, each once): what ``validate`` reads before checking."""
    lists = [ms.get("coordinateTransformations") for ms in ome.get("multiscales", [])
             if isinstance(ms, dict)] if isinstance(ome.get("multiscales"), list) else []
    scene = ome.get("scene")
    if isinstance(scene, dict):
        lists.append(scene.get("coordinateTransformations"))
    paths: dict[str, None] = {}
    for transforms in lists:
        for _, t in _transforms(transforms):
            for side in ("input", "output"):
                ref = _ref(t.get(side))
                if ref is not None and ref[1] is not None:
                    paths[ref[1]] = None
    return list(paths)


def referenced_group(doc: dict[str, Any]) -> Referenced | str:
    """What a referenced group's ``zarr.json`` document offers: its coordinate systems, or why
    it has none (a sentence)."""
    attrs = doc.get("attributes")
    ome = attrs.get("ome") if isinstance(attrs, dict) else None
    if doc.get("node_type") != "group" or not isinstance(ome, dict):
        return "is not an OME-Zarr group (no attributes['ome'] in a group's zarr.json)"
    multiscales = ome.get("multiscales")
    if not isinstance(multiscales, list):
        return "is not a multiscale image (no ome.multiscales)"
    systems: Systems = {}
    for ms in multiscales:
        if isinstance(ms, dict):
            for name, axes in _systems(ms.get("coordinateSystems")).items():
                systems.setdefault(name, axes)
    return Referenced(systems, ome.get("version"))


def coordinate_system_lists(ome: dict[str, Any]) -> list[tuple[tuple[Any, ...], Any]]:
    """Every ``coordinateSystems`` list of a 0.6 group, with its path in the attributes."""
    found: list[tuple[tuple[Any, ...], Any]] = []
    multiscales = ome.get("multiscales")
    for i, ms in enumerate(multiscales if isinstance(multiscales, list) else []):
        if isinstance(ms, dict) and "coordinateSystems" in ms:
            found.append((("ome", "multiscales", i, "coordinateSystems"),
                          ms["coordinateSystems"]))
    scene = ome.get("scene")
    if isinstance(scene, dict) and "coordinateSystems" in scene:
        found.append((("ome", "scene", "coordinateSystems"), scene["coordinateSystems"]))
    return found


def _systems(value: Any) -> Systems:
    out: Systems = {}
    for cs in value if isinstance(value, list) else []:
        if isinstance(cs, dict) and isinstance(cs.get("name"), str):
            axes = cs.get("axes")
            if isinstance(axes, list) and all(isinstance(a, dict) for a in axes):
                out.setdefault(cs["name"], axes)
    return out


def _names(systems: Iterable[str]) -> str:
    listed = sorted(systems)
    return shorten(", ".join(map(repr, listed))) if listed else "none"


def _axis_rank(axis_type: Any) -> int:
    # time, then channel / custom / untyped, then space (array axes go with space)
    return 0 if axis_type == "time" else 2 if axis_type in ("space", "array") else 1


#: a node of the transformation graph: ("system", name) or ("image", path)
Node = tuple[str, str]


class _Graph:
    """Union-find over coordinate systems (and scene images): who is linked to whom."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self.parent: dict[Node, Node] = {n: n for n in nodes}

    def find(self, node: Node) -> Node:
        self.parent.setdefault(node, node)
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def link(self, a: Node, b: Node) -> None:
        self.parent[self.find(a)] = self.find(b)

    def components(self) -> list[list[Node]]:
        groups: dict[Node, list[Node]] = {}
        for node in list(self.parent):
            groups.setdefault(self.find(node), []).append(node)
        return list(groups.values())


class Rules06(TransformRules):
    """The 0.6 multiscale and scene rules (see the module docstring)."""

    # -- coordinate systems -------------------------------------------------------------------
    def check_systems(self, value: Any, where: str, *, multiscale: bool) -> Systems:
        """Unique system names and per-system axis rules; returns the usable systems."""
        if not isinstance(value, list):
            return {}
        seen: dict[str, int] = {}
        for i, cs in enumerate(value):
            if not isinstance(cs, dict):
                continue
            name = cs.get("name")
            if isinstance(name, str):
                if name in seen:
                    self.add("system-names", f"{where}[{i}]: coordinate system name {name!r} "
                             f"is also used by [{seen[name]}]; names are unique")
                else:
                    seen[name] = i
            axes = cs.get("axes")
            if isinstance(axes, list) and all(isinstance(a, dict) for a in axes):
                self.check_system_axes(axes, f"{where}[{i}].axes", multiscale=multiscale)
        return _systems(value)

    def check_system_axes(self, axes: list[dict[str, Any]], where: str, *, multiscale: bool
                          ) -> None:
        names = [a.get("name") for a in axes]
        for name in sorted({n for n in names if isinstance(n, str) and names.count(n) > 1}):
            self.add("axes-names", f"{where}: axis name {name!r} is used {names.count(name)} "
                     "times; names are unique within a coordinate system")
        for j, a in enumerate(axes):
            if a.get("type") in ("displacement", "coordinate") and a.get("discrete") is not True:
                self.add("field-axis", f"{where}[{j}]: a {a['type']} axis is discrete "
                         "(\"discrete\": true)")
        if not multiscale:
            return
        types = [a.get("type") for a in axes]
        if not 2 <= len(axes) <= 5:
            self.add("axes-count", f"{where}: {count_of(len(axes), 'axis')}; a multiscale's "
                     "coordinate systems have 2 to 5")
        n_space = types.count("space")
        if types.count("array") < 2 and not 2 <= n_space <= 3:
            self.add("axes-count", f"{where}: {count_of(n_space, 'space axis')}; a "
                     "multiscale's coordinate systems have 2 or 3 (or 2 or more array axes)")
        if types.count("time") > 1:
            self.add("axes-count", f"{where}: {types.count('time')} time axes; at most one")
        other = [n for n, t in zip(names, types) if t not in ("space", "time", "array")]
        if len(other) > 1:
            self.add("axes-count", f"{where}: {len(other)} channel or custom axes "
                     f"({', '.join(map(str, other))}); at most one")
        ranks = [_axis_rank(t) for t in types]
        if ranks != sorted(ranks):
            described = ", ".join(f"{n} ({t or 'untyped'})" for n, t in zip(names, types))
            self.add("axes-order", f"{where}: axes {described} are out of order; the order is "
                     "time, then channel or custom, then space")

    # -- multiscales --------------------------------------------------------------------------
    def check_multiscale_06(self, ms: dict[str, Any], where: str, external: External
                            ) -> tuple[list[dict[str, Any]] | None, list[tuple[int, str]]]:
        """Everything of one 0.6 multiscale but its level arrays; returns the intrinsic
        system's axes (None if unknown) and the datasets' ``(index, path)`` to read."""
        systems = self.check_systems(ms.get("coordinateSystems"), f"{where}.coordinateSystems",
                                     multiscale=True)
        outputs: dict[str, list[int]] = {}
        paths: list[tuple[int, str]] = []
        datasets = ms.get("datasets")
        for i, ds in enumerate(datasets if isinstance(datasets, list) else []):
            if not isinstance(ds, dict):
                continue
            path = ds.get("path")
            if isinstance(path, str):
                paths.append((i, path))
            for j, t in _transforms(ds.get("coordinateTransformations")):
                name = self._dataset_transform(t, f"{where}.datasets[{i}].coordinateTransformations"
                                               f"[{j}]", path, systems)
                if name is not None:
                    outputs.setdefault(name, []).append(i)
        if len(outputs) > 1:
            said = "; ".join(f"{name!r} ({'dataset' if len(idx) == 1 else 'datasets'} "
                             f"{', '.join(map(str, idx))})" for name, idx in outputs.items())
            self.add("intrinsic-system", f"{where}.datasets: the levels' transformations output "
                     f"to {said}; every level maps to the same (intrinsic) coordinate system")
        intrinsic = next(iter(outputs), None)
        self._multiscale_transforms(ms.get("coordinateTransformations"),
                                    f"{where}.coordinateTransformations", systems, intrinsic,
                                    external)
        if intrinsic in systems:
            self._connected(systems, intrinsic, ms.get("coordinateTransformations"),
                            f"{where}.coordinateSystems")
        return systems.get(intrinsic) if intrinsic is not None else None, paths

    def _dataset_transform(self, t: dict[str, Any], where: str, path: Any, systems: Systems
                           ) -> str | None:
        """One level's transformation; returns the name of the system it outputs to."""
        kind = t.get("type")
        kinds = _member_kinds(t)
        if kind not in ("scale", "identity", "sequence") or (
                kind == "sequence" and kinds != ["scale", "translation"]):
            what = f"a sequence of {kinds}" if kind == "sequence" else repr(kind)
            self.add("dataset-transform", f"{where}: {what}; a level's transformation is a "
                     "scale, an identity, or a sequence of a scale then a translation")
        inp, out = t.get("input"), t.get("output")
        if isinstance(inp, dict):
            if isinstance(path, str) and isinstance(inp.get("path"), str) \
                    and inp["path"] != path:
                self.add("dataset-input", f"{where}.input.path {inp['path']!r} is not the "
                         f"dataset's path {path!r}; they are the same")
            if inp.get("name") is not None:
                self.add("dataset-input", f"{where}.input has a name ({inp['name']!r}); a "
                         "level's input is its array, named by path only", severity="warning")
        name = out.get("name") if isinstance(out, dict) else None
        if isinstance(out, dict) and out.get("path") is not None:
            self.add("dataset-output", f"{where}.output has a path ({out['path']!r}); a level "
                     "outputs to a coordinate system of this multiscale, named by name only",
                     severity="warning")
        if not isinstance(name, str):
            return None
        if name not in systems:
            self.add("system-reference", f"{where}.output: no coordinate system named "
                     f"{name!r} in this multiscale (it has {_names(systems)})")
            return name
        n = len(systems[name])
        self.check_top(t, where, n, n)
        return name

    def _multiscale_transforms(self, transforms: Any, where: str, systems: Systems,
                               intrinsic: str | None, external: External) -> None:
        for k, t in _transforms(transforms):
            tw = f"{where}[{k}]"
            refs = {side: _ref(t.get(side)) for side in ("input", "output")}
            named = all(r is not None and isinstance(r[0], str) for r in refs.values())
            if intrinsic is not None and named and (intrinsic, None) not in refs.values():
                self.add("multiscale-transform-refs", f"{tw}: neither input nor output is the "
                         f"intrinsic coordinate system {intrinsic!r} (by name, without path); "
                         "a multiscale's transformations start or end there")
            dims: dict[str, int | None] = {}
            for side, ref in refs.items():
                dims[side] = None
                if ref is None or not isinstance(ref[0], str):
                    continue  # the schema says what is missing
                name, path = ref
                if path is None:
                    dims[side] = self._local(name, systems, f"{tw}.{side}", "this multiscale")
                    continue
                parts = path.strip("/").split("/")
                if parts[0] != "labels" or len(parts) < 2:
                    self.add("multiscale-transform-refs", f"{tw}.{side}.path {path!r}: a "
                             "multiscale's transformations reference coordinate systems of "
                             "this multiscale (no path) or of a label image in its labels group "
                             "(path 'labels/...')")
                    continue
                self._label_transform(t, tw)
                dims[side] = self._remote(name, path, external, f"{tw}.{side}")
            self.check_top(t, tw, dims["input"], dims["output"])

    def _label_transform(self, t: dict[str, Any], where: str) -> None:
        kind = t.get("type")
        kinds = _member_kinds(t) or []
        # the labels section does not order the sequence's scale and translation
        if kind in _LABEL_TRANSFORMS or (kind == "sequence" and sorted(kinds, key=str)
                                         == ["scale", "translation"]):
            return
        self.add("labels-transform", f"{where}: a {kind!r} to a label image's coordinate "
                 "system; those are identity, scale, translation or a sequence of a scale and "
                 "a translation")

    def _local(self, name: str, systems: Systems, where: str, holder: str) -> int | None:
        if name in systems:
            return len(systems[name])
        self.add("system-reference", f"{where}: no coordinate system named {name!r} in "
                 f"{holder} (it has {_names(systems)})")
        return None

    def _remote(self, name: str, path: str, external: External, where: str) -> int | None:
        group = external.get(path)
        if group is None:
            return None
        if isinstance(group, str):
            self.add("system-reference", f"{where}.path {path!r}: {group}")
            return None
        return self._local(name, group.systems, where, f"the image at {path!r}")

    def _connected(self, systems: Systems, intrinsic: str, transforms: Any, where: str) -> None:
        graph = _Graph(("system", name) for name in systems)
        for _, t in _transforms(transforms):
            a, b = _ref(t.get("input")), _ref(t.get("output"))
            if a is not None and b is not None and a[1] is None and b[1] is None \
                    and isinstance(a[0], str) and isinstance(b[0], str) \
                    and a[0] in systems and b[0] in systems:
                graph.link(("system", a[0]), ("system", b[0]))
        root = graph.find(("system", intrinsic))
        loose = sorted(n for n in systems if graph.find(("system", n)) != root)
        if loose:
            self.add("graph-connected", f"{where}: {_names(loose)} not linked to the intrinsic "
                     f"system {intrinsic!r} by this multiscale's coordinateTransformations; "
                     "every two coordinate systems are linked by a path of transformations")

    # -- scenes -------------------------------------------------------------------------------
    def check_scene(self, scene: dict[str, Any], where: str, external: External) -> None:
        systems = self.check_systems(scene.get("coordinateSystems"),
                                     f"{where}.coordinateSystems", multiscale=False)
        graph = _Graph(("system", name) for name in systems)
        for k, t in _transforms(scene.get("coordinateTransformations")):
            tw = f"{where}.coordinateTransformations[{k}]"
            dims: dict[str, int | None] = {}
            nodes: list[Node] = []
            for side in ("input", "output"):
                dims[side] = None
                ref = _ref(t.get(side))
                if ref is None or not isinstance(ref[0], str):
                    continue
                name, path = ref
                if path is None:
                    dims[side] = self._local(name, systems, f"{tw}.{side}",
                                             "the scene's coordinateSystems (give a path to "
                                             "name an image's)")
                    nodes.append(("system", name))
                else:
                    dims[side] = self._remote(name, path, external, f"{tw}.{side}")
                    nodes.append(("image", path.strip("/")))
            self.check_top(t, tw, dims["input"], dims["output"])
            for node in nodes:
                graph.link(nodes[0], node)
        parts = graph.components()
        if len(parts) > 1:
            said = "; ".join(", ".join(f"{kind} {name!r}" for kind, name in sorted(part))
                             for part in sorted(parts, key=lambda p: sorted(p)))
            self.add("graph-connected", f"{where}: the coordinate systems and images fall apart "
                     f"into {len(parts)} unlinked groups ({shorten(said)}); every two are "
                     "linked by a path of transformations")

    def check_referenced_versions(self, external: External, version: Any) -> None:
        for path, group in external.items():
            if isinstance(group, Referenced) and group.version != version:
                self.add("version", f"the group at {path!r} (referenced by a transformation) "
                         f"says version {group.version!r}, this one {version!r}; the version is "
                         "the same throughout a hierarchy")


__all__ = ["Rules06", "Referenced", "External", "Systems", "VERSIONS_06", "referenced_paths",
           "referenced_group", "coordinate_system_lists"]
