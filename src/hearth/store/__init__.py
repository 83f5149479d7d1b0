"""Persistence: the control-plane store (SQLite by default, behind the `Store` protocol) and the
content-addressed blob store for code archives.

It owns bytes on disk and their durability. It never holds business rules: what a function is and
which transitions are allowed live in `hearth.functions`.
"""

from hearth.store.blobs import BlobStore, ZipRejected
from hearth.store.db import AlreadyExists, RevisionMismatch, SqliteStore, Store, VersionRow, open_store

__all__ = [
    "AlreadyExists",
    "BlobStore",
    "RevisionMismatch",
    "SqliteStore",
    "Store",
    "VersionRow",
    "ZipRejected",
    "open_store",
]
