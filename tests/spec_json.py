"""The OME-NGFF spec's example documents are JSON with ``//`` line comments: one reader of
them for every test (``tests/data/ngff-spec/``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def strip_comments(text: str) -> str:
    """JSON with ``//`` line comments → plain JSON; ``//`` inside strings is kept."""
    out: list[str] = []
    in_string, i = False, 0
    while i < len(text):
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\":
                out.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def load_commented_json(path: Path) -> Any:
    """The document at ``path``, its comments stripped."""
    return json.loads(strip_comments(path.read_text()))
