"""The catalog of service-linked roles: for each AWS service principal, the role name AWS gives it, the
AWS managed policies AWS attaches and whether the service takes a CustomSuffix.

The facts live in `service_linked_roles.json` next to this module (read once, on first use) so that a
service is added by adding a data entry, not code. This module only answers questions about the
catalog; it never stores roles (the provider does) and never invents a policy for a listed service.
A service missing from the catalog still gets a role (deploy templates name services Hearth has never
heard of): its name is derived from the principal's first label and it has no policy attached.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

POLICY_PREFIX = "arn:aws:iam::aws:policy/aws-service-role/"

_DATA = Path(__file__).with_name("service_linked_roles.json")
_lock = threading.Lock()
_cache: dict[str, ServiceRole] | None = None


@dataclass(frozen=True)
class ServiceRole:
    service: str  # the principal, e.g. "batch.amazonaws.com"
    role_name: str
    policy_arns: tuple[str, ...]
    custom_suffix: bool
    known: bool  # False: not in the catalog, name derived


def _load() -> dict[str, ServiceRole]:
    raw = json.loads(_DATA.read_text(encoding="utf-8"))
    return {service: ServiceRole(service=service, role_name=entry["role"],
                                 policy_arns=tuple(POLICY_PREFIX + p for p in entry.get("policies", [])),
                                 custom_suffix=bool(entry.get("custom_suffix")), known=True)
            for service, entry in raw["services"].items()}


def catalog() -> dict[str, ServiceRole]:
    global _cache
    with _lock:
        if _cache is None:
            _cache = _load()
        return _cache


def lookup(service: str) -> ServiceRole:
    """The catalog's entry for `service`, or a derived one (custom suffix allowed, no policy)."""
    found = catalog().get(service)
    if found is not None:
        return found
    label = service.split(".")[0]
    return ServiceRole(service=service, role_name="AWSServiceRoleFor" + label[:1].upper() + label[1:],
                       policy_arns=(), custom_suffix=True, known=False)
