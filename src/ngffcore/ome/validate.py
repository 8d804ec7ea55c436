"""``validate(location)``: check an OME-Zarr group against the official JSON schemas of its
version and against the rules of the specification that those schemas cannot express.

Every problem found is returned (nothing stops at the first one), each as a
:class:`Problem` naming the metadata object it is in (``zarr.json``, ``.zattrs``,
``s1/.zarray``, …), the rule it breaks and a message that prints on one line.

Which schemas apply is decided by what the group holds: ``multiscales`` → image,
``image-label`` → label, ``plate``, ``well``, ``bioformats2raw.layout`` → bf2raw,
``series`` → ome (the bioformats2raw ``OME`` group), ``scene`` → scene (0.6). A ``labels``
group has no schema; only its rule is checked. The version comes from the metadata itself
(0.5 and 0.6: ``ome.version``, where ``"0.6"`` and ``"0.6rc0"`` both select the packaged
0.6rc0 schemas; 0.4: the ``version`` of the multiscales, image-label, plate or well).

0.6 groups get the 0.6 rules (``validate_rules_06``, ``validate_transforms_06``) in place of
the 0.4/0.5 axes and transform rules; the groups that their transformations reference by
``path`` (a label image's, a scene's images) are read too, for their coordinate systems.

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

This module reads the documents (the group's, then its level arrays', all at once from
object stores), decides the version and which schemas and rules apply, and walks the
metadata; the schemas are ``validate_schema``'s, the rules and :class:`Problem`
``validate_rules``'. Group attributes are found as ``ome/group.py`` finds them (the same
OME keys), level arrays are parsed as ``Array`` parses them.

``jsonschema`` is imported only when :func:`validate` runs (``pip install
'ngffcore[validate]'``): the rest of ngffcore does not need it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ngffcore.errors import MetadataError, NotFoundError, StoreError, UnsupportedError
from ngffcore.ome.group import OME_KEYS, check_zarr_format
from ngffcore.ome.validate_rules import LevelDoc, Problem, error_text, raw_level
from ngffcore.ome.validate_rules_06 import (
    VERSIONS_06,
    External,
    Rules06,
    coordinate_system_lists,
    referenced_group,
    referenced_paths,
)
from ngffcore.ome.validate_schema import (
    SCHEMA_VERSIONS,
    SCHEMAS,
    require_jsonschema,
    schema_message,
    schema_validator,
    schemas_for,
    shorten,
)
from ngffcore.store.fanout import gather_bounded
from ngffcore.store.keys import check_key
from ngffcore.store.location import open_store
from ngffcore.store.protocol import Store, get_data
from ngffcore.store.sync import run_sync
from ngffcore.zarr.metadata import parse_v2, parse_v3

__all__ = ["validate", "Problem", "SCHEMA_VERSIONS"]

# versions that exist but predate the packaged schemas (all Zarr v2)
_OLD_VERSIONS = ("0.1", "0.2", "0.3")
# keys that make a group an OME-Zarr node ("omero" alone does not): the schema kinds, then
# labels groups
_KIND_KEYS = tuple(key for key, _ in SCHEMAS) + ("labels",)
# most groups that 0.6 transformations may reference and have read (a hostile document could
# otherwise make one validation issue any number of requests)
_MAX_REFERENCED = 1024
# keys that carry a version in 0.4 (bioformats2raw and labels groups have none)
_V2_VERSIONED = ("multiscales", "image-label", "plate", "well")


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
    require_jsonschema()
    check_zarr_format(zarr_format)
    checker = _Checker(open_store(location, **store_options), strict)
    checker.run(zarr_format)
    return checker.problems


@dataclass(frozen=True)
class _Group:
    zarr_format: int
    key: str  # the document that holds the attributes: "zarr.json" or ".zattrs"
    attributes: dict[str, Any]


class _Checker(Rules06):
    """One validation run: reads what it needs from ``store`` and collects problems."""

    def __init__(self, store: Store, strict: bool) -> None:
        super().__init__()
        self.store = store
        self.strict = strict

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
                found = [k for k in attrs if k in OME_KEYS]
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
        if version == "0.6":
            self.check_ome_06(ome, where)
            return
        if "scene" in ome:
            self.add("version", f"{where}scene: scene metadata is new in OME-Zarr 0.6; this "
                     f"group is {version} (the scene was not checked)")
        self.check_ome(ome, where, group)

    def read_group(self, zarr_format: int | None) -> _Group | None:
        """The group's attributes, or None after recording why there are none to check."""
        store = self.store
        if zarr_format in (None, 3):
            raw = self.fetch(["zarr.json"])[0]
            if raw is not None:
                return self.v3_group(raw)
        if zarr_format in (None, 2):
            raw_attrs, raw_group = self.fetch([".zattrs", ".zgroup"])
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
            if self.fetch([".zarray"])[0] is not None:
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
        if version in VERSIONS_06:
            return "0.6"
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
        elif version == "0.5" or version in VERSIONS_06:
            self.add("version", f"version {version!r} requires Zarr v3 (zarr.json with "
                     "attributes['ome']), but this is a Zarr v2 group (nothing else was checked)")
        else:
            self.unknown_version(version)
        return None

    def unknown_version(self, version: Any) -> None:
        self.add("version", f"unknown OME-Zarr version {version!r}: schemas are packaged for "
                 f"{', '.join(SCHEMA_VERSIONS)} (nothing else was checked)")

    # -- schema -------------------------------------------------------------------------------
    def check_schemas(self, version: str, attrs: dict[str, Any], ome: dict[str, Any]) -> None:
        if version == "0.6" and ome.get("version") == "0.6":
            # the packaged 0.6rc0 schemas' version enum predates the release: "0.6" is let
            # through as "0.6rc0" (nothing else is changed)
            attrs = {**attrs, "ome": {**ome, "version": "0.6rc0"}}
        for key, name in schemas_for(version):
            if key in ome:
                self.schema_errors(schema_validator(version, name, self.strict), attrs, ())
        if version == "0.6" and self.strict:
            # the spec's axis types are a SHOULD that upstream's strict_image schema does not
            # apply; strict_coordinate_systems says it, so strict mode applies it
            validator = schema_validator(version, "strict_coordinate_systems", False)
            for prefix, systems in coordinate_system_lists(ome):
                self.schema_errors(validator, systems, prefix)

    def schema_errors(self, validator: Any, doc: Any, prefix: tuple[Any, ...]) -> None:
        errors = sorted(validator.iter_errors(doc),
                        key=lambda e: [str(p) for p in e.absolute_path])
        for error in errors:
            self.add("schema", schema_message(error, prefix))

    # -- semantic rules -----------------------------------------------------------------------
    def check_ome(self, ome: dict[str, Any], where: str, group: _Group) -> None:
        multiscales = ome.get("multiscales")
        first: tuple[list[dict[str, Any]] | None, LevelDoc | None] = (None, None)
        if isinstance(multiscales, list):
            for i, ms in enumerate(multiscales):
                if isinstance(ms, dict):
                    seen = self.check_multiscale(ms, f"{where}multiscales[{i}]", group,
                                                 is_label="image-label" in ome)
                    if i == 0:
                        first = seen
        self.check_others(ome, where, first)

    def check_others(self, ome: dict[str, Any], where: str,
                     first: tuple[list[dict[str, Any]] | None, LevelDoc | None]) -> None:
        """omero, image-label, plate, well and labels (the same rules in every version)."""
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
                         f"{shorten(repr(labels))}")

    def check_ome_06(self, ome: dict[str, Any], where: str) -> None:
        """The 0.6 rules: multiscales with coordinate systems, scenes, then the rest. Groups
        that transformations reference by path are read first (all at once)."""
        external = self.read_referenced(referenced_paths(ome))
        self.check_referenced_versions(external, ome.get("version"))
        first: tuple[list[dict[str, Any]] | None, LevelDoc | None] = (None, None)
        multiscales = ome.get("multiscales")
        for i, ms in enumerate(multiscales if isinstance(multiscales, list) else []):
            if not isinstance(ms, dict):
                continue
            ms_where = f"{where}multiscales[{i}]"
            axes, paths = self.check_multiscale_06(ms, ms_where, external)
            levels = self.read_levels(paths, 3, f"{ms_where}.datasets")
            # 0.6 says nothing of dimension_names: they are not compared with the axes
            self.check_levels(levels, axes, 3, "image-label" in ome, dimension_names=False)
            if i == 0:
                first = (axes, levels[0] if levels and levels[0].index == 0 else None)
        if isinstance(ome.get("scene"), dict):
            self.check_scene(ome["scene"], f"{where}scene", external)
        self.check_others(ome, where, first)

    def read_referenced(self, paths: list[str]) -> External:
        """The groups that transformations reference by path, as far as they are usable."""
        external: External = {}
        wanted: list[tuple[str, str]] = []
        if len(paths) > _MAX_REFERENCED:
            self.add("ngffcore-support", f"transformations reference {len(paths)} groups; only "
                     f"the first {_MAX_REFERENCED} were read (references to the others were "
                     "not checked)", severity="warning")
            paths = paths[:_MAX_REFERENCED]
        for path in paths:
            key = f"{path.strip('/')}/zarr.json"
            try:
                if not path.strip("/"):
                    raise StoreError("empty path")
                check_key(key)
            except StoreError:
                external[path] = "does not name a group inside this one"
                continue
            wanted.append((path, key))
        for (path, key), raw in zip(wanted, self.fetch([key for _, key in wanted])):
            if raw is None:
                external[path] = f"no Zarr group there (no {key})"
                continue
            doc = self.load_json(raw, key)
            external[path] = f"{key} is not usable JSON" if doc is None \
                else referenced_group(doc)
        return external

    def check_multiscale(self, ms: dict[str, Any], where: str, group: _Group, *,
                         is_label: bool) -> tuple[list[dict[str, Any]] | None, LevelDoc | None]:
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
    # -- levels -------------------------------------------------------------------------------
    def read_levels(self, paths: list[tuple[int, str]], zarr_format: int, where: str
                    ) -> list[LevelDoc]:
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
        if store.inline or len(keys) < 2:  # nothing to overlap: no event loop needed
            return [run_sync(store, get_data(store, k)) for k in keys]

        async def get_all() -> list[Any]:
            return await gather_bounded(store, (get_data(store, k) for k in keys))
        return run_sync(store, get_all())

    def parse_level(self, index: int, path: str, key: str, raw: Any, zarr_format: int
                    ) -> LevelDoc | None:
        doc = self.load_json(raw, key)
        if doc is None:
            return None
        try:
            meta = parse_v3(doc, key) if zarr_format == 3 else parse_v2(doc, key)
        except UnsupportedError as exc:
            # valid Zarr that ngffcore cannot decode: still check its shape and dtype
            self.add("ngffcore-support", f"ngffcore cannot read this level: "
                     f"{error_text(exc, key)}", path=key, severity="warning")
            return raw_level(index, path, key, doc, zarr_format)
        except MetadataError as exc:
            self.add("array-metadata", error_text(exc, key), path=key)
            return None
        return LevelDoc(index, path, key, meta.shape, meta.dtype, meta.dimension_names)
