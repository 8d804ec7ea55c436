"""OME-NGFF 0.6 coordinate systems and references to them: ``coordinateSystems`` entries
(a name and its axes) and the ``input``/``output`` objects of a coordinate transformation
(``{"name": ..., "path": ...}``). Pure parsing: no I/O.

Axis *i* of a system is dimension *i* of the arrays and points expressed in it; a system's
dimensionality is its number of axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ngffcore.errors import MetadataError
from ngffcore.ome.multiscales import Axis

__all__ = ["CoordinateSystem", "SystemRef", "parse_coordinate_systems", "parse_system_ref",
           "MAX_SYSTEM_AXES"]

#: most axes a coordinate system may have here: the spec allows 5 (``axes.schema``); a
#: generous bound that still keeps every matrix built from a system tiny
MAX_SYSTEM_AXES = 32
#: most coordinate systems one ``coordinateSystems`` list may hold
MAX_SYSTEMS = 1024


@dataclass(frozen=True)
class CoordinateSystem:
    """One named coordinate system: ``axes[i]`` describes coordinate *i* of its points."""

    name: str
    axes: tuple[Axis, ...]

    @property
    def ndim(self) -> int:
        """Number of axes (the dimensionality of points in this system)."""
        return len(self.axes)

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)


@dataclass(frozen=True)
class SystemRef:
    """A transform's ``input`` or ``output``: ``name`` names a coordinate system, ``path`` the
    Zarr group (or, for a multiscale dataset's transform, the array) holding it, relative to
    the group holding the transform; either may be absent (None)."""

    name: str | None = None
    path: str | None = None


def _err(where: str, message: str) -> MetadataError:
    return MetadataError(message, path=where)


def _opt_str(obj: dict[str, Any], key: str, where: str, *, nonempty: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _err(where, f"{key!r} must be a string, not {value!r:.60}")
    if nonempty and not value:
        raise _err(where, f"{key!r} must not be empty")
    return value


def parse_system_ref(value: object, where: str) -> SystemRef | None:
    """An ``input``/``output`` value → :class:`SystemRef` (None when the value is None).

    The spec makes it an object with optional ``name`` and ``path`` strings (``null`` counts as
    absent). A bare string — written by the spec's own ``mapAxis1.json`` example and by
    pre-0.6 drafts — is read as ``{"name": value}``: readers are tolerant, validation flags
    it (the schema requires an object)."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise _err(where, "a coordinate system reference must not be an empty string")
        return SystemRef(name=value)
    if not isinstance(value, dict):
        raise _err(where, f"must be an object with 'name' and/or 'path', not {value!r:.60}")
    return SystemRef(name=_opt_str(value, "name", where, nonempty=True),
                     path=_opt_str(value, "path", where))


def _parse_axis(value: object, where: str) -> Axis:
    if not isinstance(value, dict):
        raise _err(where, f"an axis must be an object, not {value!r:.60}")
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise _err(where, f"an axis needs a non-empty string 'name', not {name!r:.60}")
    discrete = value.get("discrete")
    if discrete is not None and not isinstance(discrete, bool):
        raise _err(where, f"'discrete' must be true or false, not {discrete!r:.40}")
    _opt_str(value, "longName", where)
    return Axis(name, _opt_str(value, "type", where), _opt_str(value, "unit", where))


def parse_coordinate_systems(value: object, where: str) -> tuple[CoordinateSystem, ...]:
    """The ``coordinateSystems`` list → systems in document order.

    :class:`MetadataError` naming ``where`` and the entry for: a value that is not a list, an
    entry without a non-empty string ``name``, a name used twice, ``axes`` missing, empty,
    longer than :data:`MAX_SYSTEM_AXES` or not a list of axis objects, an axis without a
    non-empty ``name``, a name repeated within one system, non-string ``type``/``unit``/
    ``longName``, non-boolean ``discrete``. Which axis types a system may combine (2–3
    ``space`` axes, ordering) is the validator's business, not this parser's."""
    if not isinstance(value, list):
        raise _err(where, f"coordinateSystems must be a list, not {value!r:.60}")
    if len(value) > MAX_SYSTEMS:
        raise _err(where, f"coordinateSystems lists {len(value)} systems (at most "
                          f"{MAX_SYSTEMS} are read)")
    systems: list[CoordinateSystem] = []
    seen: set[str] = set()
    for i, entry in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise _err(at, f"a coordinate system must be an object, not {entry!r:.60}")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise _err(at, f"a coordinate system needs a non-empty string 'name', "
                           f"not {name!r:.60}")
        if name in seen:
            raise _err(at, f"coordinate system name {name!r} is used twice")
        seen.add(name)
        axes = entry.get("axes")
        if not isinstance(axes, list) or not axes:
            raise _err(at, f"coordinate system {name!r} needs a non-empty 'axes' list, "
                           f"not {axes!r:.60}")
        if len(axes) > MAX_SYSTEM_AXES:
            raise _err(at, f"coordinate system {name!r} has {len(axes)} axes (at most "
                           f"{MAX_SYSTEM_AXES} are read)")
        parsed = tuple(_parse_axis(a, f"{at}.axes[{j}]") for j, a in enumerate(axes))
        names = [a.name for a in parsed]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise _err(at, f"coordinate system {name!r} names axis {dup!r} twice")
        systems.append(CoordinateSystem(name, parsed))
    return tuple(systems)
