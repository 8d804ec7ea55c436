"""``validate(location)``: check an OME-Zarr group against the official JSON schemas of its
version and against the rules of the specification that those schemas cannot express.

Every problem found is returned (nothing stops at the first one), each as a
:class:`Problem` naming the metadata object it is in (``zarr.json``, ``.zattrs``,
``s1/.zarray``, …), the rule it breaks and a message that prints on one line.

Which schemas apply is decided by what the group holds: ``multiscales`` → image,
``image-label`` → label, ``plate``, ``well``, ``bioformats2raw.layout`` → bf2raw,
``series`` → ome (the bioformats2raw ``OME`` group). A ``labels`` group has no schema; only
its rule is checked. The version comes from the metadata itself (0.5: ``ome.version``;
0.4: the ``version`` of the multiscales, image-label, plate or well).

Severity. ``error``: the specification (a MUST) or the Zarr format is broken, or the data
cannot be interpreted. ``warning``: a SHOULD is missed, or something is legal but almost
certainly wrong, or ngffcore itself cannot read an otherwise valid level. In particular the
``omero`` rendering window is only ever a warning: ``omero`` is transitional metadata
whose window has no ordering rule in the spec (the spec's own examples put ``start`` below
``min``), so only ``start > end`` and ``min > max`` are flagged.

Semantic rules state a requirement in full even where the schema covers part of it (axis
counts, transform kinds), so such a violation is reported twice: by the schema in its
words and by the rule in the spec's. Only the group at ``location`` and its level arrays
are read; wells, fields, labels and series below it are not visited.

``jsonschema`` is imported only when :func:`validate` runs (``pip install
'ngffcore[validate]'``): the rest of ngffcore does not need it.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ngffcore.errors import MetadataError, NotFoundError, StoreError, UnsupportedError
from ngffcore.store.fanout import gather_bounded
from ngffcore.store.location import open_store
from ngffcore.limits import MAX_JSON_DEPTH
from ngffcore.zarr.metadata import nests_deeper, parse_v2, parse_v3
from ngffcore.store.objectstore import ObjectStore
from ngffcore.store.protocol import Store
from ngffcore.store.keys import check_key
from ngffcore.store.ioloop import run_on_io_loop

__all__ = ["validate", "Problem", "SCHEMA_VERSIONS"]

Severity = Literal["error", "warning"]

#: OME-NGFF versions whose official schemas are packaged (``ngffcore/schemas/<version>``)
SCHEMA_VERSIONS = ("0.4", "0.5")
# versions that exist but predate the packaged schemas (all Zarr v2)
_OLD_VERSIONS = ("0.1", "0.2", "0.3")

# group key → schema (file name without ".schema"), in the order they are applied
_SCHEMAS = (("multiscales", "image"), ("image-label", "label"), ("plate", "plate"),
            ("well", "well"), ("bioformats2raw.layout", "bf2raw"), ("series", "ome"))
_HAS_STRICT = frozenset({"image", "label", "plate", "well"})
# keys that make a group an OME-Zarr node ("omero" alone does not)
_KIND_KEYS = tuple(key for key, _ in _SCHEMAS) + ("labels",)
_OME_KEYS = _KIND_KEYS + ("omero",)
# keys that carry a version in 0.4 (bioformats2raw and labels groups have none)
_V2_VERSIONED = ("multiscales", "image-label", "plate", "well")
_SCHEMA_HOST = "https://ngff.openmicroscopy.org"
_MAX_MESSAGE = 400
_HEX_COLOR = re.compile(r"[0-9A-Fa-f]{6}")


@dataclass(frozen=True)
class Problem:
    """One problem found by :func:`validate`.

    ``path``: the metadata object it is in, relative to the validated location
    (``"zarr.json"``, ``".zattrs"``, ``"s1/.zarray"``). ``rule``: ``"schema"`` for the
    official JSON schema, else the name of the rule (``"axes-order"``, ``"level-shapes"``,
    …). ``severity``: ``"error"`` or ``"warning"`` (see the module docstring).
    """

    path: str
    message: str
    rule: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.severity}: {self.message} [{self.rule}]"


def validate(location: Any, *, zarr_format: int | None = None, strict: bool = False,
             **store_options: Any) -> list[Problem]:
    """Check the OME-Zarr group at ``location`` (path, URL or obstore store; store options
    as for :func:`ngffcore.open_array`) and return every problem found (empty: valid).

    ``zarr_format`` (2 or 3) skips probing for the other format. ``strict`` uses the
    ``strict_*`` schemas, which also require what the spec only recommends (names,
    versions, downsampling type and metadata).

    Raises :class:`NotFoundError` if there is no Zarr group metadata at ``location``,
    ``ImportError`` if ``jsonschema`` is not installed, and :class:`StoreError` /
    :class:`AuthError` if the store cannot be read (that says nothing about the data).
    Problems in the metadata, JSON that does not parse included, are returned, never raised.
    """
    _require_jsonschema()
    if zarr_format not in (None, 2, 3):
        raise ValueError(f"zarr_format must be 2, 3 or None, not {zarr_format!r}")
    checker = _Checker(open_store(location, **store_options), strict)
    checker.run(zarr_format)
    return checker.problems


# -- schemas ----------------------------------------------------------------------------------

def _require_jsonschema() -> None:
    try:
        # jsonschema ships no type information (types-jsonschema is not required)
        import jsonschema  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
        import referencing  # noqa: F401
    except ImportError as exc:
        raise ImportError("ngffcore.validate() needs the jsonschema package: "
                          "pip install 'ngffcore[validate]'") from exc


def _schema_url(version: str, name: str) -> str:
    return f"{_SCHEMA_HOST}/{version}/schemas/{name}.schema"


@functools.lru_cache(maxsize=1)
def _registry() -> Any:
    """Every packaged schema, under its ``$id`` and its canonical versioned URL. Any other
    reference is refused rather than fetched: validation never uses the network."""
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource
    from referencing.jsonschema import DRAFT202012

    def refuse(uri: str) -> Any:
        raise NoSuchResource(uri)

    pairs = []
    root = importlib.resources.files("ngffcore") / "schemas"
    for version in SCHEMA_VERSIONS:
        for entry in (root / version).iterdir():
            if not entry.name.endswith(".schema"):
                continue
            resource = Resource.from_contents(json.loads(entry.read_text("utf-8")),
                                              default_specification=DRAFT202012)
            pairs.append((_schema_url(version, entry.name[:-len(".schema")]), resource))
            own_id = resource.id()
            if own_id is not None:
                pairs.append((own_id, resource))
    # (referencing's attrs alias ``retrieve`` is not visible to mypy)
    return Registry(retrieve=refuse).with_resources(pairs).crawl()  # type: ignore[call-arg]


@functools.lru_cache(maxsize=None)
def _validator(version: str, name: str, strict: bool) -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

    if strict and name in _HAS_STRICT:
        name = "strict_" + name
    registry = _registry()
    schema = registry.contents(_schema_url(version, name))
    return Draft202012Validator(schema, registry=registry)


def _schema_message(error: Any) -> str:
    where = _json_path(error.absolute_path)
    message = error.message
    closest = _closest_branch(error.context) if error.context else None
    if closest is not None:
        message += f" (closest: {_json_path(closest.absolute_path)}: {closest.message})"
    return _shorten(f"{where}: {message}")


def _closest_branch(context: list[Any]) -> Any:
    """The first error of the oneOf / anyOf alternative that came closest: the fewest
    errors, and of those the fewest that only say "this is the other kind" (enum, const,
    not). jsonschema's best_match prefers the shallowest error instead, which names the
    wrong alternative when a ``type`` field picks the branch (a bad scale would be told it
    lacks a ``translation``)."""
    branches: dict[Any, list[Any]] = {}
    for sub in context:
        branch = sub.relative_schema_path[0] if sub.relative_schema_path else None
        branches.setdefault(branch, []).append(sub)
    best = min(branches.values(), key=lambda errs: (
        len(errs), sum(e.validator in ("enum", "const", "not") for e in errs)))
    return best[0]


def _json_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "attributes"


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 1] + "…"


# -- the checks -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Group:
    zarr_format: int
    key: str  # the document that holds the attributes: "zarr.json" or ".zattrs"
    attributes: dict[str, Any]


@dataclass(frozen=True)
class _Level:
    index: int
    path: str
    key: str
    shape: tuple[int, ...] | None
    dtype: np.dtype | None
    dimension_names: tuple[Any, ...] | None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer())


def _duplicates(values: Iterable[Any]) -> list[tuple[Any, int]]:
    counts = Counter(v for v in values if isinstance(v, (str, int, float)))
    return [(v, n) for v, n in counts.items() if n > 1]


def _count(n: int, noun: str) -> str:
    """``_count(1, "axis")`` → "1 axis", ``_count(2, "axis")`` → "2 axes"."""
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun[:-2] + 'es' if noun.endswith('is') else noun + 's'}"


def _describe_axes(axes: Sequence[dict[str, Any]]) -> str:
    return ", ".join(f"{a.get('name')} ({a.get('type') or 'untyped'})" for a in axes)


def _axis_rank(axis_type: Any) -> int:
    # the spec's order: time, then channel or custom (or untyped), then space
    return 0 if axis_type == "time" else 2 if axis_type == "space" else 1


class _Checker:
    """One validation run: reads what it needs from ``store`` and collects problems."""

    def __init__(self, store: Store, strict: bool) -> None:
        self.store = store
        self.strict = strict
        self.problems: list[Problem] = []
        self.key = ""  # the group's attribute document, the default place of a problem

    def add(self, rule: str, message: str, *, path: str | None = None,
            severity: Severity = "error") -> None:
        problem = Problem(self.key if path is None else path, message, rule, severity)
        if problem not in self.problems:
            self.problems.append(problem)

    def load_json(self, raw: Any, key: str) -> dict[str, Any] | None:
        """A metadata document, or None after recording why it is unusable."""
        text = raw if isinstance(raw, (bytes, bytearray, str)) else bytes(raw)
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:  # ValueError: also a >4300-digit int
            self.add("json", f"not valid JSON: {exc}", path=key)
            return None
        if not isinstance(doc, dict):
            self.add("json", f"is not a JSON object but {type(doc).__name__}", path=key)
            return None
        if nests_deeper(doc, text, MAX_JSON_DEPTH):
            # the schema check recurses through the document: refused before it
            self.add("json", f"nests deeper than {MAX_JSON_DEPTH} levels", path=key)
            return None
        return doc

    # -- group --------------------------------------------------------------------------------
    def run(self, zarr_format: int | None) -> None:
        group = self.read_group(zarr_format)
        if group is None:
            return
        self.key = group.key
        attrs = group.attributes
        if group.zarr_format == 3:
            ome = attrs.get("ome")
            if ome is None:
                found = [k for k in attrs if k in _OME_KEYS]
                if not found:
                    self.add("ome-metadata", "no OME-Zarr metadata: a Zarr v3 OME-Zarr group "
                             "keeps it in attributes['ome'] (found attributes "
                             f"{sorted(attrs)})")
                    return
                # what pre-0.5 writers of Zarr v3 did; readers (ngffcore too) accept it
                self.add("ome-namespace", f"OME keys {found} are at the top level of the "
                         "attributes; OME-Zarr 0.5 keeps them in attributes['ome'] (the schemas "
                         "were not applied)")
                self.check_ome({k: attrs[k] for k in found}, "", group)
                return
            if not isinstance(ome, dict):
                self.add("ome-metadata", "attributes['ome'] is not a JSON object")
                return
            if not self.has_kind(ome, "attributes['ome']"):
                return
            version = self.v3_version(ome)
            where = "ome."
        else:
            ome = attrs
            if not self.has_kind(ome, "attributes"):
                return
            version = self.v2_version(ome)
            where = ""
        if version is None:
            return
        self.check_schemas(version, attrs, ome)
        self.check_ome(ome, where, group)

    def read_group(self, zarr_format: int | None) -> _Group | None:
        """The group's attributes, or None after recording why there are none to check."""
        store = self.store
        if zarr_format in (None, 3):
            raw = store.get("zarr.json")
            if raw is not None:
                return self.v3_group(raw)
        if zarr_format in (None, 2):
            raw_attrs, raw_group = store.get(".zattrs"), store.get(".zgroup")
            if raw_attrs is not None or raw_group is not None:
                return self.v2_group(raw_attrs, raw_group)
        looked = {None: "zarr.json, .zattrs and .zgroup", 3: "zarr.json",
                  2: ".zattrs and .zgroup"}[zarr_format]
        raise NotFoundError(f"no Zarr group at {store.url} (looked for {looked})",
                            path=store.url)

    def v3_group(self, raw: Any) -> _Group | None:
        doc = self.load_json(raw, "zarr.json")
        if doc is None:
            return None
        self.key = "zarr.json"
        if doc.get("zarr_format") != 3:
            self.add("zarr-group", f"zarr_format is {doc.get('zarr_format')!r}, expected 3")
        node_type = doc.get("node_type")
        if node_type == "array":
            self.add("zarr-group", "this is a Zarr array, not a group: validate() checks "
                     "OME-Zarr groups (image, label image, plate, well, ...)")
            return None
        if node_type != "group":
            self.add("zarr-group", f"node_type is {node_type!r}, expected 'group'")
        attrs = doc.get("attributes", {})
        if not isinstance(attrs, dict):
            self.add("zarr-group", "attributes is not a JSON object")
            return None
        return _Group(3, "zarr.json", attrs)

    def v2_group(self, raw_attrs: Any, raw_group: Any) -> _Group | None:
        if raw_group is None:
            if self.store.get(".zarray") is not None:
                self.add("zarr-group", "this is a Zarr array, not a group: validate() checks "
                         "OME-Zarr groups (image, label image, plate, well, ...)",
                         path=".zarray")
                return None
            # ngffcore reads such a group, zarr-python (and so ome-zarr-py) does not
            self.add("zarr-group", "missing: a Zarr v2 group needs a .zgroup document",
                     path=".zgroup")
        else:
            zgroup = self.load_json(raw_group, ".zgroup")
            if zgroup is not None and zgroup.get("zarr_format") != 2:
                self.add("zarr-group", f"zarr_format is {zgroup.get('zarr_format')!r}, "
                         "expected 2", path=".zgroup")
        if raw_attrs is None:
            self.add("ome-metadata", "no .zattrs: the group has no attributes, so no OME-Zarr "
                     "metadata", path=".zattrs")
            return None
        attrs = self.load_json(raw_attrs, ".zattrs")
        return None if attrs is None else _Group(2, ".zattrs", attrs)

    def has_kind(self, ome: dict[str, Any], what: str) -> bool:
        if any(key in ome for key in _KIND_KEYS):
            return True
        self.add("ome-metadata", f"no OME-Zarr metadata: {what} hold none of "
                 f"{list(_KIND_KEYS)} (found {sorted(ome)})")
        return False

    # -- version ------------------------------------------------------------------------------
    def v3_version(self, ome: dict[str, Any]) -> str | None:
        """The schema version for a Zarr v3 group, or None if it cannot be checked."""
        version = ome.get("version")
        if version is None:
            self.add("version", "attributes['ome'] has no 'version' (required since 0.5); "
                     "checked as 0.5")
            return "0.5"
        if version == "0.5":
            return "0.5"
        if version in _OLD_VERSIONS + ("0.4",):
            self.add("version", f"version {version!r} is defined on Zarr v2 (.zattrs); a Zarr "
                     "v3 group holds OME-Zarr 0.5 or later (nothing else was checked)")
        else:
            self.unknown_version(version)
        return None

    def v2_version(self, ome: dict[str, Any]) -> str | None:
        """The schema version for a Zarr v2 group, or None if it cannot be checked."""
        found: list[tuple[str, Any]] = []
        multiscales = ome.get("multiscales")
        if isinstance(multiscales, list):
            found += [(f"multiscales[{i}]", ms["version"]) for i, ms in enumerate(multiscales)
                      if isinstance(ms, dict) and ms.get("version") is not None]
        for key in _V2_VERSIONED[1:]:
            node = ome.get(key)
            if isinstance(node, dict) and node.get("version") is not None:
                found.append((key, node["version"]))
        if not found:
            versioned = [key for key in _V2_VERSIONED if key in ome]
            if versioned:
                self.add("version", f"no version given in {', '.join(versioned)} (the spec "
                         "asks for one); checked as 0.4", severity="warning")
            return "0.4"
        if len({json.dumps(v) for _, v in found}) > 1:
            self.add("version", "inconsistent versions: " + ", ".join(
                f"{where} says {v!r}" for where, v in found) + f"; checked as {found[0][1]!r}")
        version = found[0][1]
        if version == "0.4":
            return "0.4"
        if version in _OLD_VERSIONS:
            self.add("version", f"version {version!r} predates the packaged schemas "
                     f"({', '.join(SCHEMA_VERSIONS)}): nothing else was checked")
        elif version == "0.5":
            self.add("version", "version '0.5' requires Zarr v3 (zarr.json with "
                     "attributes['ome']), but this is a Zarr v2 group (nothing else was checked)")
        else:
            self.unknown_version(version)
        return None

    def unknown_version(self, version: Any) -> None:
        self.add("version", f"unknown OME-Zarr version {version!r}: schemas are packaged for "
                 f"{', '.join(SCHEMA_VERSIONS)} (nothing else was checked)")

    # -- schema -------------------------------------------------------------------------------
    def check_schemas(self, version: str, attrs: dict[str, Any], ome: dict[str, Any]) -> None:
        for key, name in _SCHEMAS:
            if key not in ome:
                continue
            validator = _validator(version, name, self.strict)
            errors = sorted(validator.iter_errors(attrs),
                            key=lambda e: [str(p) for p in e.absolute_path])
            for error in errors:
                self.add("schema", _schema_message(error))

    # -- semantic rules -----------------------------------------------------------------------
    def check_ome(self, ome: dict[str, Any], where: str, group: _Group) -> None:
        multiscales = ome.get("multiscales")
        first: tuple[list[dict[str, Any]] | None, _Level | None] = (None, None)
        if isinstance(multiscales, list):
            for i, ms in enumerate(multiscales):
                if isinstance(ms, dict):
                    seen = self.check_multiscale(ms, f"{where}multiscales[{i}]", group,
                                                 is_label="image-label" in ome)
                    if i == 0:
                        first = seen
        if isinstance(ome.get("omero"), dict):
            self.check_omero(ome["omero"], f"{where}omero", *first)
        if isinstance(ome.get("image-label"), dict):
            self.check_image_label(ome["image-label"], f"{where}image-label",
                                   "multiscales" in ome)
        if isinstance(ome.get("plate"), dict):
            self.check_plate(ome["plate"], f"{where}plate")
        if isinstance(ome.get("well"), dict):
            self.check_well(ome["well"], f"{where}well")
        if "labels" in ome:
            labels = ome["labels"]
            if not isinstance(labels, list) or not all(isinstance(p, str) for p in labels):
                self.add("labels", f"{where}labels must be a list of paths to label images, not "
                         f"{_shorten(repr(labels))}")

    def check_multiscale(self, ms: dict[str, Any], where: str, group: _Group, *,
                         is_label: bool) -> tuple[list[dict[str, Any]] | None, _Level | None]:
        """Axes, transforms and level arrays of one multiscale; returns its axes and its
        first level (for the omero checks)."""
        axes = ms.get("axes")
        if not (isinstance(axes, list) and all(isinstance(a, dict) for a in axes)):
            axes = None
        n_axes = None if axes is None else len(axes)
        if axes is not None:
            self.check_axes(axes, f"{where}.axes")
        if isinstance(ms.get("coordinateTransformations"), list):
            self.check_transforms(ms["coordinateTransformations"],
                                  f"{where}.coordinateTransformations", n_axes)
        paths: list[tuple[int, str]] = []
        datasets = ms.get("datasets")
        if isinstance(datasets, list):
            for i, ds in enumerate(datasets):
                if not isinstance(ds, dict):
                    continue
                if isinstance(ds.get("coordinateTransformations"), list):
                    self.check_transforms(ds["coordinateTransformations"],
                                          f"{where}.datasets[{i}].coordinateTransformations",
                                          n_axes)
                if isinstance(ds.get("path"), str):
                    paths.append((i, ds["path"]))
        levels = self.read_levels(paths, group.zarr_format, f"{where}.datasets")
        self.check_levels(levels, axes, group.zarr_format, is_label)
        first = levels[0] if levels and levels[0].index == 0 else None
        return axes, first

    def check_axes(self, axes: list[dict[str, Any]], where: str) -> None:
        types = [a.get("type") for a in axes]
        n_space, n_time = types.count("space"), types.count("time")
        other = [a for a in axes if a.get("type") not in ("space", "time")]
        if not 2 <= len(axes) <= 5:
            self.add("axes-count", f"{where}: {_count(len(axes), 'axis')}; an image has 2 to 5")
        if not 2 <= n_space <= 3:
            self.add("axes-count", f"{where}: {_count(n_space, 'space axis')}; an image has 2 "
                     "or 3")
        if n_time > 1:
            self.add("axes-count", f"{where}: {n_time} time axes; at most one is allowed")
        if len(other) > 1:
            self.add("axes-count", f"{where}: {len(other)} channel or custom axes "
                     f"({_describe_axes(other)}); at most one is allowed")
        ranks = [_axis_rank(t) for t in types]
        if ranks != sorted(ranks):
            self.add("axes-order", f"{where}: axes {_describe_axes(axes)} are out of order; "
                     "the order is time, then channel or custom, then space")
        for name, count in _duplicates(a.get("name") for a in axes):
            self.add("axes-names", f"{where}: axis name {name!r} is used {count} times; "
                     "names must be unique")

    def check_transforms(self, transforms: list[Any], where: str, n_axes: int | None) -> None:
        kinds = [t.get("type") if isinstance(t, dict) else None for t in transforms]
        n_scale = kinds.count("scale")
        if n_scale != 1:
            self.add("transforms", f"{where}: {_count(n_scale, 'scale transformation')}; "
                     "exactly one is required")
        elif kinds.index("scale") != 0:
            self.add("transforms", f"{where}: {kinds[0]!r} comes before the scale; the scale "
                     "must be first (a translation is in physical units, after the scale)")
        if kinds.count("translation") > 1:
            self.add("transforms", f"{where}: {kinds.count('translation')} translations; at "
                     "most one is allowed")
        others = [k for k in kinds if k not in ("scale", "translation")]
        if others:
            self.add("transforms", f"{where}: only scale and translation are allowed here, "
                     f"not {others}")
        if n_axes is None:
            return
        for j, t in enumerate(transforms):
            kind = kinds[j]
            values = t.get(kind) if kind in ("scale", "translation") else None
            if isinstance(values, list) and len(values) != n_axes:
                self.add("transforms-length", f"{where}[{j}]: {kind} has "
                         f"{_count(len(values), 'value')} for {_count(n_axes, 'axis')}")

    # -- levels -------------------------------------------------------------------------------
    def read_levels(self, paths: list[tuple[int, str]], zarr_format: int, where: str
                    ) -> list[_Level]:
        """The level arrays' metadata (all requested at once from object stores); levels
        that are missing or unreadable are reported and left out."""
        name = "zarr.json" if zarr_format == 3 else ".zarray"
        wanted: list[tuple[int, str, str]] = []
        for index, path in paths:
            key = f"{path.rstrip('/')}/{name}"
            try:
                if not path.strip("/"):
                    raise StoreError("empty path")
                check_key(key)
            except StoreError:
                self.add("level-array", f"{where}[{index}].path {path!r} does not name an "
                         "array inside the group")
                continue
            wanted.append((index, path, key))
        raws = self.fetch([key for _, _, key in wanted])
        levels = []
        for (index, path, key), raw in zip(wanted, raws):
            if raw is None:
                self.add("level-array", f"no array at dataset path {path!r} (no {name})",
                         path=key)
                continue
            level = self.parse_level(index, path, key, raw, zarr_format)
            if level is not None:
                levels.append(level)
        return levels

    def fetch(self, keys: list[str]) -> list[Any]:
        store = self.store
        if isinstance(store, ObjectStore) and len(keys) > 1:
            async def get_all() -> list[Any]:
                return await gather_bounded(store, (store.get_async(k) for k in keys))
            return run_on_io_loop(get_all())
        return [store.get(k) for k in keys]

    def parse_level(self, index: int, path: str, key: str, raw: Any, zarr_format: int
                    ) -> _Level | None:
        doc = self.load_json(raw, key)
        if doc is None:
            return None
        try:
            meta = parse_v3(doc, key) if zarr_format == 3 else parse_v2(doc, key)
        except UnsupportedError as exc:
            # valid Zarr that ngffcore cannot decode: still check its shape and dtype
            self.add("ngffcore-support", f"ngffcore cannot read this level: "
                     f"{_error_text(exc, key)}", path=key, severity="warning")
            return _raw_level(index, path, key, doc, zarr_format)
        except MetadataError as exc:
            self.add("array-metadata", _error_text(exc, key), path=key)
            return None
        return _Level(index, path, key, meta.shape, meta.dtype, meta.dimension_names)

    def check_levels(self, levels: list[_Level], axes: list[dict[str, Any]] | None,
                     zarr_format: int, is_label: bool) -> None:
        names = [a.get("name") for a in axes] if axes is not None else None
        for level in levels:
            if level.shape is None:
                continue
            if names is not None and len(level.shape) != len(names):
                self.add("level-ndim", f"level {level.index} ({level.path!r}) has "
                         f"{_count(len(level.shape), 'dimension')}; the multiscale has "
                         f"{_count(len(names), 'axis')}",
                         path=level.key)
            elif (names is not None and zarr_format == 3
                  and all(isinstance(n, str) for n in names)):
                if level.dimension_names is None:
                    self.add("dimension-names", f"no dimension_names; OME-Zarr 0.5 wants the "
                             f"axes names {names}", path=level.key, severity="warning")
                elif list(level.dimension_names) != names:
                    self.add("dimension-names", f"dimension_names {list(level.dimension_names)} "
                             f"do not match the axes names {names}", path=level.key)
        shaped = [lv for lv in levels if lv.shape is not None]
        for prev, level in zip(shaped, shaped[1:]):
            assert prev.shape is not None and level.shape is not None
            if len(prev.shape) != len(level.shape):
                continue
            larger = [d for d, (a, b) in enumerate(zip(prev.shape, level.shape)) if b > a]
            if larger:
                along = ", ".join(str(names[d]) if names and len(names) == len(level.shape)
                                  else f"dimension {d}" for d in larger)
                self.add("level-shapes", f"level {level.index} ({level.path!r}) shape "
                         f"{list(level.shape)} is larger than level {prev.index} shape "
                         f"{list(prev.shape)} along {along}; levels go from largest to "
                         "smallest", path=level.key)
            elif level.shape == prev.shape:
                self.add("level-shapes", f"level {level.index} ({level.path!r}) has the same "
                         f"shape {list(level.shape)} as level {prev.index}: not downsampled",
                         path=level.key, severity="warning")
        typed = [lv for lv in levels if lv.dtype is not None]
        if not typed:
            return
        base = typed[0]
        assert base.dtype is not None
        for level in typed[1:]:
            assert level.dtype is not None
            # byte order is a storage detail (v2), not a different type
            if (level.dtype.kind, level.dtype.itemsize) != (base.dtype.kind,
                                                            base.dtype.itemsize):
                self.add("level-dtype", f"level {level.index} ({level.path!r}) has dtype "
                         f"{_dtype_name(level.dtype)}, level {base.index} has "
                         f"{_dtype_name(base.dtype)}; all levels have the same dtype",
                         path=level.key)
        if is_label and base.dtype.kind not in "iu":
            self.add("label-dtype", f"label image level {base.index} has dtype "
                     f"{_dtype_name(base.dtype)}; label images have an integer dtype "
                     "(int8 to uint64)", path=base.key)

    # -- other metadata -----------------------------------------------------------------------
    def check_omero(self, omero: dict[str, Any], where: str,
                    axes: list[dict[str, Any]] | None, level0: _Level | None) -> None:
        channels = omero.get("channels")
        if not isinstance(channels, list):
            return
        for j, channel in enumerate(channels):
            if not isinstance(channel, dict):
                continue
            window = channel.get("window")
            if isinstance(window, dict):
                for low, high in (("start", "end"), ("min", "max")):
                    a: Any = window.get(low)
                    b: Any = window.get(high)
                    if _is_number(a) and _is_number(b) and a > b:
                        self.add("omero-window", f"{where}.channels[{j}].window: {low} {a} is "
                                 f"above {high} {b}", severity="warning")
            color = channel.get("color")
            if isinstance(color, str) and not _HEX_COLOR.fullmatch(color):
                self.add("omero-color", f"{where}.channels[{j}].color {color!r} is not an "
                         "RRGGBB hex color", severity="warning")
        if axes is None or level0 is None or level0.shape is None:
            return
        if len(level0.shape) != len(axes):
            return
        c = next((d for d, a in enumerate(axes) if a.get("type") == "channel"), None)
        size = 1 if c is None else level0.shape[c]
        if len(channels) != size:
            axis = "no channel axis" if c is None else \
                f"the channel axis {axes[c].get('name')!r} has size {size}"
            self.add("omero-channels", f"{where}.channels lists {len(channels)} channels but "
                     f"{axis}", severity="warning")

    def check_image_label(self, label: dict[str, Any], where: str, has_multiscales: bool
                          ) -> None:
        if not has_multiscales:
            self.add("label-image", f"{where}: a label image is a multiscale image, but the "
                     "group has no multiscales")
        for key in ("colors", "properties"):
            entries = label.get(key)
            if not isinstance(entries, list):
                continue
            values: list[int] = []
            for j, entry in enumerate(entries):
                value: Any = entry.get("label-value") if isinstance(entry, dict) else None
                if not _is_number(value):
                    continue
                if _is_int(value):
                    values.append(int(value))
                else:
                    self.add("label-values", f"{where}.{key}[{j}].label-value {value!r} is not "
                             "an integer pixel value")
            for value, count in _duplicates(values):
                self.add("label-values", f"{where}.{key}: label-value {value} appears {count} "
                         "times; label values must be unique")

    def check_plate(self, plate: dict[str, Any], where: str) -> None:
        names: dict[str, list[Any]] = {}
        for key in ("rows", "columns"):
            entries = plate.get(key)
            names[key] = [e.get("name") if isinstance(e, dict) else None
                          for e in entries] if isinstance(entries, list) else []
            for name, count in _duplicates(names[key]):
                self.add("plate-names", f"{where}.{key}: name {name!r} is used {count} times; "
                         "names must be unique")
        wells = plate.get("wells")
        if isinstance(wells, list):
            for j, well in enumerate(wells):
                if isinstance(well, dict):
                    self.check_well_entry(well, f"{where}.wells[{j}]", names)
            for path, count in _duplicates(w.get("path") for w in wells if isinstance(w, dict)):
                self.add("plate-wells", f"{where}.wells: path {path!r} is listed {count} times")
        acquisitions = plate.get("acquisitions")
        if isinstance(acquisitions, list):
            ids = [a.get("id") for a in acquisitions if isinstance(a, dict)]
            for ident, count in _duplicates(i for i in ids if _is_number(i)):
                self.add("plate-acquisitions", f"{where}.acquisitions: id {ident!r} is used "
                         f"{count} times; ids must be unique")

    def check_well_entry(self, well: dict[str, Any], where: str,
                         names: dict[str, list[Any]]) -> None:
        picked = []
        for index_key, list_key in (("rowIndex", "rows"), ("columnIndex", "columns")):
            index = well.get(index_key)
            if not (isinstance(index, int) and not isinstance(index, bool)):
                return
            if not 0 <= index < len(names[list_key]):
                self.add("plate-wells", f"{where}: {index_key} {index} is outside the "
                         f"{len(names[list_key])} {list_key} of the plate")
                return
            picked.append(names[list_key][index])
        path = well.get("path")
        expected = f"{picked[0]}/{picked[1]}"
        if isinstance(path, str) and all(isinstance(n, str) for n in picked) and path != expected:
            self.add("plate-wells", f"{where}: path {path!r} does not match rowIndex "
                     f"{well['rowIndex']} and columnIndex {well['columnIndex']}, which name "
                     f"{expected!r}")

    def check_well(self, well: dict[str, Any], where: str) -> None:
        images = well.get("images")
        if isinstance(images, list):
            paths = [i.get("path") for i in images if isinstance(i, dict)]
            for path, count in _duplicates(paths):
                self.add("well-images", f"{where}.images: path {path!r} is listed {count} "
                         "times; field paths must be unique")


def _error_text(exc: MetadataError, key: str) -> str:
    """An ngffcore error's message without the location it starts with (the Problem's path
    already says it)."""
    text = str(exc)
    return text[len(key) + 2:] if text.startswith(f"{key}: ") else text


def _dtype_name(dtype: np.dtype) -> str:
    return dtype.name if dtype.byteorder in "=|" else dtype.str


def _raw_level(index: int, path: str, key: str, doc: dict[str, Any], zarr_format: int
               ) -> _Level:
    """Shape, dtype and dimension names read straight from an array document that ngffcore
    cannot open (each None when it cannot be made out)."""
    shape: Any = doc.get("shape")
    ok_shape = isinstance(shape, list) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    name = doc.get("dtype" if zarr_format == 2 else "data_type")
    try:
        # np.dtype(None) would be float64: only a named type counts
        dtype: np.dtype | None = np.dtype(name) if isinstance(name, str) else None
    except (TypeError, ValueError):
        dtype = None
    names = doc.get("dimension_names")
    return _Level(index, path, key, tuple(shape) if ok_shape else None, dtype,
                  tuple(names) if isinstance(names, list) else None)
