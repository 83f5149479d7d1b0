"""Temporary credentials: the durable record of every STS session and its lookup for SigV4.

It owns the `sts` component database: one row per session (access key id ASIA..., secret, session
token, expiry, and whose session it is). A session is verified like a long-term key, with three more
rules applied on every lookup: its token must come with it, it is refused after its expiry
(ExpiredToken), and a role session is refused once its role is deleted (the role's unique id is
checked, so a new role of the same name does not revive old sessions). It never evaluates policies
and never prints a secret.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from hearth.aws.context import Principal, Session
from hearth.aws.keys import AccessKey
from hearth.services.iam.store import ROLE, IamStore
from hearth.store.component import ComponentDb

MIGRATIONS = (
    """
    CREATE TABLE sts_sessions (
        access_key_id TEXT PRIMARY KEY, account TEXT NOT NULL, secret TEXT NOT NULL, token TEXT NOT NULL,
        expires REAL NOT NULL, principal TEXT NOT NULL
    );
    CREATE INDEX sts_sessions_expires ON sts_sessions (expires);
    """,
)

# Expired sessions are kept this long (their ExpiredToken answer is more helpful than "invalid").
KEEP_EXPIRED_S = 24 * 3600


@dataclass(frozen=True)
class IssuedCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires: float

    def __repr__(self) -> str:
        return f"IssuedCredentials({self.access_key_id!r}, expires={self.expires})"


class SessionStore:
    def __init__(self, data_dir: Path, iam: IamStore, clock: Callable[[], float] = time.time,
                 *, time_scale: float = 1.0) -> None:
        self._db = ComponentDb(data_dir, "sts", MIGRATIONS)
        self._iam = iam
        self._clock = clock
        self._time_scale = time_scale  # a test knob: sessions end this many times sooner

    def close(self) -> None:
        self._db.close()

    def issue(self, account: str, kind: str, arn: str, user_id: str, session: Session) -> IssuedCredentials:
        key_id = "ASIA" + base64.b32encode(secrets.token_bytes(10)).decode()[:16]
        secret = base64.b64encode(secrets.token_bytes(30)).decode()[:40]
        # Shaped like AWS's (long, base64), and unguessable: it is a second secret.
        token = "IQoJb3JpZ2luX2VjE" + base64.b64encode(secrets.token_bytes(192)).decode()
        now = self._clock()
        if self._time_scale != 1.0:
            session = replace(session, expires=session.issued + (session.expires - session.issued) / self._time_scale)
        principal = {"kind": kind, "arn": arn, "user_id": user_id, "session": asdict(session)}
        with self._db.tx() as conn:
            conn.execute("DELETE FROM sts_sessions WHERE expires < ?", (now - KEEP_EXPIRED_S,))
            conn.execute("INSERT INTO sts_sessions (access_key_id, account, secret, token, expires, principal) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (key_id, account, secret, token, session.expires, json.dumps(principal)))
        return IssuedCredentials(key_id, secret, token, session.expires)

    def lookup(self, access_key_id: str) -> AccessKey | None:
        if not access_key_id.startswith("ASIA"):
            return None
        rows = self._db.query("SELECT * FROM sts_sessions WHERE access_key_id = ?", (access_key_id,))
        if not rows:
            return None
        row = rows[0]
        data = json.loads(row["principal"])
        raw = data["session"]
        session = Session(raw["role_arn"], raw["role_id"], raw["name"], raw["policy"], tuple(raw["policy_arns"]),
                          tuple((k, v) for k, v in raw["tags"]), raw["issued"], raw["expires"],
                          tuple(raw.get("transitive", ())), raw.get("source_arn"))
        if session.role_arn is not None:
            role = self._iam.get(row["account"], ROLE, session.role_arn.rsplit("/", 1)[-1])
            if role is None or role["RoleId"] != session.role_id:
                return None  # the role is gone: so are its sessions
        principal = Principal(access_key_id, row["account"], kind=data["kind"], arn=data["arn"],
                              user_id=data["user_id"], session=session)
        return AccessKey(access_key_id, row["secret"], row["account"], principal=principal,
                         session_token=row["token"], expires=float(row["expires"]))
