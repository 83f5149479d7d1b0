"""The policies that apply to an IAM identity: what the evaluator needs to judge its requests.

It owns the gathering: a user's inline and attached policies and its groups' ones, a role's inline and
attached policies, the permissions boundary, and the documents of managed policies (the default
version of a customer managed policy, or AWS's document). It never decides anything (the evaluator
does) and never writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hearth.aws.authz.evaluate import Policy, PolicySet
from hearth.aws.context import Principal, Session
from hearth.aws.keys import AccessKey, KeySource
from hearth.services.iam import managed
from hearth.services.iam.store import GROUP, POLICY, ROLE, USER, IamStore


@dataclass(frozen=True)
class Identity:
    arn: str
    entity: dict[str, Any]
    identity: tuple[Policy, ...]
    boundary: Policy | None

    @property
    def tags(self) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.entity.get("Tags") or []}


def managed_document(store: IamStore, arn: str) -> str | None:
    """The default version's document of a managed policy, or None if there is no such policy."""
    aws = managed.get(arn)
    if aws is not None:
        return aws.document
    parts = arn.split(":", 5)
    if len(parts) != 6 or "/" not in parts[5]:
        return None
    policy = store.get(parts[4], POLICY, parts[5].rsplit("/", 1)[1])
    if policy is None or policy["Arn"] != arn:
        return None
    return str(policy["versions"][policy["DefaultVersionId"]]["doc"])


def _gather(store: IamStore, entity: dict[str, Any], label: str) -> list[Policy]:
    out = [Policy.parse(f"{label}_{name}", doc) for name, doc in sorted(entity.get("inline", {}).items())]
    for arn in entity.get("attached", []):
        doc = managed_document(store, arn)
        if doc is not None:
            out.append(Policy.parse(arn, doc))
    return out


def role(store: IamStore, account: str, name: str) -> Identity | None:
    found = store.get(account, ROLE, name)
    if found is None:
        return None
    return Identity(found["Arn"], found, tuple(_gather(store, found, name)), _boundary(store, found))


def user(store: IamStore, account: str, name: str) -> Identity | None:
    found = store.get(account, USER, name)
    if found is None:
        return None
    policies = _gather(store, found, name)
    for group_name in found.get("groups", []):
        group = store.get(account, GROUP, group_name)
        if group is not None:
            policies += _gather(store, group, group_name)
    return Identity(found["Arn"], found, tuple(policies), _boundary(store, found))


def _boundary(store: IamStore, entity: dict[str, Any]) -> Policy | None:
    arn = entity.get("boundary")
    if not arn:
        return None
    doc = managed_document(store, arn)
    # A boundary whose policy is gone allows nothing (IAM refuses deleting it while in use).
    return Policy.parse(arn, doc if doc is not None else '{"Statement": []}', "Permissions Boundary")


def policies_of_arn(store: IamStore, arn: str) -> Identity | None:
    """The identity of a user, role or group ARN (`arn:aws:iam::<acct>:role/path/name`)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam":
        return None
    kind, _, rest = parts[5].partition("/")
    name = rest.rsplit("/", 1)[-1]
    if kind == "role":
        return role(store, parts[4], name)
    if kind == "user":
        return user(store, parts[4], name)
    if kind == "group":  # SimulatePrincipalPolicy takes a group: its own policies
        found = store.get(parts[4], GROUP, name)
        return None if found is None else Identity(found["Arn"], found, tuple(_gather(store, found, name)), None)
    return None


def role_name(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1]


def key_source(store: IamStore) -> KeySource:
    """IAM users' access keys for SigV4 verification, read from the store on each request so that a
    deactivated or deleted key is refused at once."""

    def lookup(access_key_id: str) -> AccessKey | None:
        if not access_key_id.startswith("AKIA"):
            return None
        key = store.key(access_key_id)
        if key is None:
            return None
        found = store.get(key.account, USER, key.user_name)
        if found is None:
            return None
        principal = Principal(key.access_key_id, key.account, kind="user", arn=found["Arn"], user_id=found["UserId"])
        return AccessKey(key.access_key_id, key.secret, key.account, principal=principal,
                         active=key.status == "Active")

    return lookup


def session_policies(store: IamStore, session: Session | None) -> list[Policy]:
    """The session policies of a session (inline and managed): they limit what the session may do."""
    if session is None:
        return []
    out = []
    if session.policy is not None:
        out.append(Policy.parse("SessionPolicy", session.policy, "Session Policy"))
    for arn in session.policy_arns:
        doc = managed_document(store, arn)
        out.append(Policy.parse(arn, doc if doc is not None else '{"Statement": []}', "Session Policy"))
    return out


def policy_source(store: IamStore) -> Callable[[Principal], tuple[PolicySet, Mapping[str, str]] | None]:
    """The policies that apply to a (non-root) principal, for the gateway's authorizer."""

    def policies_for(principal: Principal) -> tuple[PolicySet, Mapping[str, str]] | None:
        session = principal.session
        if principal.kind == "assumed-role" and session is not None and session.role_arn is not None:
            found = role(store, principal.account_id, role_name(session.role_arn))
        elif principal.kind == "user":
            found = policies_of_arn(store, principal.arn)
        elif principal.kind == "federated-user" and session is not None and session.source_arn:
            # Within what the user who asked for it may do (its root: anything), and only what its
            # session policies grant: without any, nothing.
            if not (session.policy or session.policy_arns):
                return None
            if session.source_arn.endswith(":root"):
                return PolicySet(identity=[Policy("root", {"Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"}]})],
                    session=session_policies(store, session)), dict(session.tags)
            found = policies_of_arn(store, session.source_arn)
        else:
            return None
        if found is None:
            return None
        policies = PolicySet(identity=found.identity, boundary=found.boundary,
                             session=session_policies(store, session))
        return policies, found.tags

    return policies_for
