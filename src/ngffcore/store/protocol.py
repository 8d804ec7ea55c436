"""What every store is."""

from __future__ import annotations

from ngffcore.store.local import LocalStore
from ngffcore.store.objectstore import ObjectStore

Store = LocalStore | ObjectStore

__all__ = ["Store"]
