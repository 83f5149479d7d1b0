"""Persistence plumbing shared by every component: the database engine (`engine`), the one way a
component opens, migrates and writes its store (`component.ComponentDb`), and the content-addressed
blob store for code archives (`blobs`).

It owns bytes on disk and their durability. It never holds a component's tables or business rules:
each component's schema and SQL live with its domain (`hearth.functions.store`, `hearth.esm.store`,
`hearth.services.<service>/`).
"""

from hearth.store.blobs import BlobStore, ZipRejected
from hearth.store.component import ComponentDb, ComponentDbError
from hearth.store.engine import Engine, SqliteEngine, engine_for, use_engine

__all__ = [
    "BlobStore",
    "ComponentDb",
    "ComponentDbError",
    "Engine",
    "SqliteEngine",
    "ZipRejected",
    "engine_for",
    "use_engine",
]
