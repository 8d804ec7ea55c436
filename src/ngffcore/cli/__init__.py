"""The ``ngffcore`` command line: one module per command (``info``, ``read``, ``validate``,
``bench``), the helpers they share in ``common``, the parser and dispatch in ``main``."""

from ngffcore.cli.main import main

__all__ = ["main"]
