"""The store layer: locations → stores (bytes by key, read and written through one protocol,
``protocol.Store``), and the I/O plumbing under them (the private I/O loop, retries, request
stats, ``run_sync``)."""

from ngffcore.store.local import LocalStore
from ngffcore.store.location import open_store
from ngffcore.store.memory import MemoryStore
from ngffcore.store.objectstore import ObjectStore
from ngffcore.store.protocol import ByteRange, Got, Store, Suffix
from ngffcore.store.sync import run_sync
from ngffcore.store.zipstore import ZipStore

__all__ = ["ByteRange", "Got", "LocalStore", "MemoryStore", "ObjectStore", "Store", "Suffix",
           "ZipStore", "open_store", "run_sync"]
