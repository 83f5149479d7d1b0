"""AWS managed policies (`arn:aws:iam::aws:policy/...`): their names, paths, versions and documents.

The documents are not typed in here: they come from the AWS managed policy snapshot that the moto
package (a maintained AWS mock, installed from PyPI as a dependency) refreshes from AWS with every
release. Only that data file is read, loaded on first use without importing the rest of moto. It
never changes: AWS managed policies cannot be created, edited or deleted by an account.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

AWS_POLICY_PREFIX = "arn:aws:iam::aws:policy"

_lock = threading.Lock()
_cache: dict[str, ManagedPolicy] | None = None


@dataclass(frozen=True)
class ManagedPolicy:
    name: str
    path: str
    default_version: str
    document: str  # JSON text
    create_date: datetime
    update_date: datetime

    @property
    def arn(self) -> str:
        return f"{AWS_POLICY_PREFIX}{self.path}{self.name}"


def _data_file() -> Path:
    spec = importlib.util.find_spec("moto")
    if spec is None or spec.origin is None:
        raise RuntimeError("the moto package (AWS managed policy data) is not installed")
    return Path(spec.origin).parent / "iam" / "aws_managed_policies.py"


def _load() -> dict[str, ManagedPolicy]:
    # The data file is one Python assignment of a JSON string; executing just that module (not the
    # moto.iam package, whose import builds its whole mock backend) takes ~30 ms.
    spec = importlib.util.spec_from_file_location("_hearth_aws_managed_policies", _data_file())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    raw: dict[str, dict[str, Any]] = json.loads(module.aws_managed_policies_data)
    out: dict[str, ManagedPolicy] = {}
    for name, entry in raw.items():
        policy = ManagedPolicy(
            name=name, path=entry.get("Path", "/"), default_version=entry.get("DefaultVersionId", "v1"),
            document=json.dumps(entry["Document"], separators=(",", ":")),
            create_date=datetime.fromisoformat(entry["CreateDate"]),
            update_date=datetime.fromisoformat(entry.get("UpdateDate", entry["CreateDate"])),
        )
        out[policy.arn] = policy
    return out


def policies() -> dict[str, ManagedPolicy]:
    """Every AWS managed policy by ARN."""
    global _cache
    with _lock:
        if _cache is None:
            _cache = _load()
        return _cache


def get(arn: str) -> ManagedPolicy | None:
    if not arn.startswith(AWS_POLICY_PREFIX):
        return None
    return policies().get(arn)
