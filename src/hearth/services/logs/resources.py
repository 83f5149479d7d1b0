"""CloudWatch Logs' settings beside groups and streams: metric filters, subscription filters, resource
policies and destinations, stored as JSON documents in the logs database's `log_resources` table.

It owns their storage only: one row per (account, region, kind, name), its body the output shape the
provider answers. It never judges a request (limits, names, which errors: the provider's) and never
looks at another account's rows. Filters belong to a log group: their name is `<group>:<filter>` (a log
group name cannot hold a colon), so a group's filters are found, and deleted with it, by that prefix.
"""

from __future__ import annotations

import json
from typing import Any

from hearth.store.component import ComponentDb
from hearth.store.engine import Connection

# Kinds of resource a group owns: deleted with the group.
GROUP_SCOPED = ("metric_filter", "subscription_filter")


def scoped_name(group: str, name: str) -> str:
    return f"{group}:{name}"


class LogResources:
    """JSON documents keyed by (account, region, kind, name)."""

    def __init__(self, db: ComponentDb) -> None:
        self._db = db

    def put(self, account: str, region: str, kind: str, name: str, body: dict[str, Any]) -> None:
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO log_resources (account, region, kind, name, body) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (account, region, kind, name) DO UPDATE SET body = excluded.body",
                (account, region, kind, name, json.dumps(body)))

    def get(self, account: str, region: str, kind: str, name: str) -> dict[str, Any] | None:
        rows = self._db.query("SELECT body FROM log_resources WHERE account = ? AND region = ? AND kind = ? "
                              "AND name = ?", (account, region, kind, name))
        return json.loads(rows[0][0]) if rows else None

    def list(self, account: str, region: str, kind: str, prefix: str = "") -> list[dict[str, Any]]:
        """Every document of a kind whose name starts with `prefix`, ordered by name."""
        rows = self._db.query("SELECT name, body FROM log_resources WHERE account = ? AND region = ? AND kind = ? "
                              "ORDER BY name", (account, region, kind))
        return [json.loads(body) for name, body in rows if str(name).startswith(prefix)]

    def delete(self, account: str, region: str, kind: str, name: str) -> bool:
        if self.get(account, region, kind, name) is None:
            return False
        with self._db.tx() as db:
            db.execute("DELETE FROM log_resources WHERE account = ? AND region = ? AND kind = ? AND name = ?",
                       (account, region, kind, name))
        return True

    def delete_group_scoped(self, db: Connection, account: str, region: str, group: str) -> None:
        """Inside the caller's transaction: the filters of a group being deleted."""
        for kind in GROUP_SCOPED:
            rows = db.execute("SELECT name FROM log_resources WHERE account = ? AND region = ? AND kind = ?",
                              (account, region, kind)).fetchall()
            for (name,) in rows:
                if str(name).startswith(f"{group}:"):
                    db.execute("DELETE FROM log_resources WHERE account = ? AND region = ? AND kind = ? "
                               "AND name = ?", (account, region, kind, name))
