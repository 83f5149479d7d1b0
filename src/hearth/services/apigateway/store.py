"""Durable API definitions of API Gateway: one JSON document per REST API and per HTTP API.

It owns the `apigw_apis` table (component "apigateway") and an in-memory copy of every document (the
data plane reads it on every request). A document holds the whole API — resources, methods,
integrations, deployments (with their frozen snapshots), stages, authorizers — so one write is one
consistent state of the API. It never interprets a document: the providers and the front do.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
from pathlib import Path
from typing import Any

from hearth.store.component import ComponentDb

COMPONENT = "apigateway"
MIGRATIONS = [
    """
    CREATE TABLE apigw_apis (
        api_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,               -- REST | HTTP | WEBSOCKET
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        doc TEXT NOT NULL                 -- JSON of the whole API
    );
    """,
]

_ALNUM = string.ascii_lowercase + string.digits

Doc = dict[str, Any]


def new_id(length: int = 10) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


class ApiStore:
    """Every API document, durable and in memory. Calls run on the event loop thread."""

    def __init__(self, data_dir: Path) -> None:
        self._db = ComponentDb(data_dir, COMPONENT, MIGRATIONS)
        self._docs: dict[str, Doc] = {}
        for row in self._db.query("SELECT api_id, kind, account, region, doc FROM apigw_apis"):
            doc = json.loads(row["doc"])
            self._docs[row["api_id"]] = doc

    def get(self, api_id: str) -> Doc | None:
        """The live document (callers that change it must `put` it back)."""
        return self._docs.get(api_id)

    def all(self, kind: str, account: str, region: str) -> list[Doc]:
        return [d for d in self._docs.values()
                if d["_kind"] == kind and d["_account"] == account and d["_region"] == region]

    def unused_id(self) -> str:
        while True:
            api_id = new_id()
            if api_id not in self._docs:
                return api_id

    def put(self, doc: Doc) -> None:
        text = json.dumps(doc, separators=(",", ":"))
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO apigw_apis (api_id, kind, account, region, doc) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (api_id) DO UPDATE SET doc = excluded.doc",
                (doc["_id"], doc["_kind"], doc["_account"], doc["_region"], text))
        self._docs[doc["_id"]] = doc

    def delete(self, api_id: str) -> None:
        with self._db.tx() as db:
            db.execute("DELETE FROM apigw_apis WHERE api_id = ?", (api_id,))
        self._docs.pop(api_id, None)

    def close(self) -> None:
        self._db.close()


def public(doc: Doc) -> Doc:
    """A copy without the store's private keys (those starting with "_")."""
    return {k: copy.deepcopy(v) for k, v in doc.items() if not k.startswith("_")}
