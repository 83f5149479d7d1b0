"""Access keys: who may sign requests to Hearth, and which account each key acts in.

It owns the key file `<data_dir>/keys.json` (a JSON list of {"access_key_id", "secret_access_key",
"account_id"}) and the admin key from the settings. It never verifies signatures (`sigv4` does) and
never prints a secret.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hearth.aws.context import Principal
from hearth.config import Settings

log = logging.getLogger(__name__)

KEYS_FILE = "keys.json"


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str
    account_id: str
    # Keys from IAM and STS say whose they are; the settings' and keys.json's keys are the root's.
    principal: Principal | None = None
    active: bool = True  # IAM's UpdateAccessKey Status=Inactive refuses the key at once
    session_token: str | None = None  # temporary credentials: the token that must come with them
    expires: float | None = None  # temporary credentials: epoch seconds

    def __repr__(self) -> str:
        # Secrets must not leak into logs or tracebacks through a repr.
        return f"AccessKey({self.access_key_id!r}, account_id={self.account_id!r})"


def generate_key(account_id: str) -> AccessKey:
    """A fresh pair shaped like AWS's: AKIA + 16 base32 characters, a 40-character secret."""
    key_id = "AKIA" + base64.b32encode(secrets.token_bytes(10)).decode()[:16]
    secret = base64.b64encode(secrets.token_bytes(30)).decode()[:40]
    return AccessKey(key_id, secret, account_id)


# Another owner of keys (IAM users' keys, STS sessions): an access key id to its key, or None.
KeySource = Callable[[str], AccessKey | None]


class KeyStore:
    """All known keys, looked up by access key id: the root keys from a dict (O(1) on every request),
    then the sources (IAM's and STS's stores), which answer from their own durable state so that a
    deactivated key or a deleted role's session is refused at once."""

    def __init__(self, keys: list[AccessKey], admin: AccessKey, path: Path | None = None,
                 sources: Sequence[KeySource] = ()) -> None:
        self._sources = tuple(sources)
        self._by_id: dict[str, AccessKey] = {}
        for key in keys:
            self._by_id.setdefault(key.access_key_id, key)
        self._by_id.setdefault(admin.access_key_id, admin)
        self._admin = admin
        self._path = path

    @classmethod
    def load(cls, settings: Settings, sources: Sequence[KeySource] = ()) -> tuple[KeyStore, bool]:
        """Keys from the settings and `<data_dir>/keys.json`; generate an admin pair if there is none.

        Returns the store and whether a key pair was generated (the caller tells the user where).
        """
        path = settings.data_dir / KEYS_FILE
        file_keys = _read_keys_file(path)
        env_key: AccessKey | None = None
        if settings.access_key_id and settings.secret_access_key:
            env_key = AccessKey(settings.access_key_id, settings.secret_access_key, settings.account_id)
        keys = ([env_key] if env_key else []) + file_keys
        if env_key is not None:
            return cls(keys, env_key, path, sources), False
        admin = next((k for k in file_keys if k.account_id == settings.account_id), None)
        if admin is not None:
            return cls(keys, admin, path, sources), False
        admin = generate_key(settings.account_id)
        _write_keys_file(path, [*file_keys, admin])
        return cls([*file_keys, admin], admin, path, sources), True

    def admin_key(self) -> AccessKey:
        return self._admin

    def lookup(self, access_key_id: str) -> AccessKey | None:
        found = self._by_id.get(access_key_id)
        if found is not None:
            return found
        for source in self._sources:
            found = source(access_key_id)
            if found is not None:
                return found
        return None

    def key_for_account(self, account_id: str) -> AccessKey:
        """Any key of the account; functions get these as their credentials.

        If the account has no key yet, an in-memory one is created: it is valid for this server's
        lifetime only, which is exactly as long as the environments that hold it.
        """
        if self._admin.account_id == account_id:
            return self._admin
        for key in self._by_id.values():
            if key.account_id == account_id:
                return key
        key = generate_key(account_id)
        self._by_id[key.access_key_id] = key
        return key

    def keys(self) -> list[AccessKey]:
        return list(self._by_id.values())


def _read_keys_file(path: Path) -> list[AccessKey]:
    try:
        raw = path.read_text()
        mode = path.stat().st_mode
    except FileNotFoundError:
        return []
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by group or others; it holds secret keys (chmod 600 it)", path)
    try:
        entries = json.loads(raw)
        keys = [AccessKey(str(e["access_key_id"]), str(e["secret_access_key"]), str(e["account_id"]))
                for e in entries]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: not a JSON list of access keys ({exc})") from None
    return keys


def _write_keys_file(path: Path, keys: list[AccessKey]) -> None:
    """Atomically (temp file + rename) and never readable by anyone but the owner, even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps([{"access_key_id": k.access_key_id, "secret_access_key": k.secret_access_key,
                        "account_id": k.account_id} for k in keys], indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
