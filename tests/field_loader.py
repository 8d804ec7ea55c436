"""A stand-in for the ``load_field`` callback of ``parse_transform``: it serves the fields a
test built (numpy arrays or ``FieldData``) by path and records every path asked for, in order
(``load.calls``), so tests can check that a field is loaded once and only on use."""

from __future__ import annotations

from typing import Any


def loader(fields: dict[str, Any]) -> Any:
    """``load(path)`` → ``fields[path]`` (KeyError for a path the test did not give);
    ``load.calls`` lists the paths asked for."""
    calls: list[str] = []

    def load(path: str) -> Any:
        calls.append(path)
        return fields[path]

    load.calls = calls  # type: ignore[attr-defined]
    return load
