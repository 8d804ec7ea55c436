"""The official OME-NGFF JSON schemas for :func:`ngffcore.validate`: the packaged schemas
of each version (``ngffcore/schemas/<version>``: 0.4, 0.5, and 0.6 = the 0.6rc0 schemas),
resolved offline, a validator per (version, schema, strict), and one-line messages for their
errors.

``jsonschema`` and ``referencing`` are imported only inside these functions (``pip install
'ngffcore[validate]'``): importing ngffcore does not need them.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Iterable
from typing import Any

#: OME-NGFF versions whose official schemas are packaged (``ngffcore/schemas/<version>``)
SCHEMA_VERSIONS = ("0.4", "0.5", "0.6")

#: group key → schema (file name without ".schema"), in the order they are applied
SCHEMAS = (("multiscales", "image"), ("image-label", "label"), ("plate", "plate"),
           ("well", "well"), ("bioformats2raw.layout", "bf2raw"), ("series", "ome"),
           ("scene", "scene"))
_SINCE_06 = frozenset({"scene"})
_HAS_STRICT = frozenset({"image", "label", "plate", "well"})
_SCHEMA_HOST = "https://ngff.openmicroscopy.org"
_MAX_MESSAGE = 400


def require_jsonschema() -> None:
    try:
        # jsonschema ships no type information (types-jsonschema is not required)
        import jsonschema  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
        import referencing  # noqa: F401
    except ImportError as exc:
        raise ImportError("ngffcore.validate() needs the jsonschema package: "
                          "pip install 'ngffcore[validate]'") from exc


def schemas_for(version: str) -> tuple[tuple[str, str], ...]:
    """The (group key, schema) pairs of ``version`` (``scene`` is new in 0.6)."""
    return tuple((key, name) for key, name in SCHEMAS
                 if version == "0.6" or name not in _SINCE_06)


def _schema_url(version: str, name: str) -> str:
    return f"{_SCHEMA_HOST}/{version}/schemas/{name}.schema"


@functools.lru_cache(maxsize=1)
def registry() -> Any:
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
def schema_validator(version: str, name: str, strict: bool) -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

    if strict and name in _HAS_STRICT:
        name = "strict_" + name
    schemas = registry()
    schema = schemas.contents(_schema_url(version, name))
    return Draft202012Validator(schema, registry=schemas)


def schema_message(error: Any, prefix: tuple[Any, ...] = ()) -> str:
    """One line: where in the attributes (``prefix`` + the error's path) and what is wrong."""
    where = _json_path((*prefix, *error.absolute_path))
    message = error.message
    closest = _closest_branch(error.context) if error.context else None
    if closest is not None:
        message += f" (closest: {_json_path(closest.absolute_path)}: {closest.message})"
    return shorten(f"{where}: {message}")


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


def shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 1] + "…"


__all__ = ["SCHEMA_VERSIONS", "SCHEMAS", "schemas_for", "require_jsonschema", "registry",
           "schema_validator", "schema_message", "shorten"]
