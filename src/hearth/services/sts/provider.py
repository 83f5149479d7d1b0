"""The STS provider: GetCallerIdentity, AssumeRole, GetSessionToken, GetFederationToken; and role sessions
for AWS services.

It owns STS's rules: who may assume a role (the role's trust policy, evaluated by the one evaluator in
`hearth.aws.authz`, together with the caller's own identity policies when the trust policy names
only the account), session names, durations within the role's MaxSessionDuration, session tags
(case-insensitive keys, transitive keys among them), inline session policies (validated as IAM does)
and the shape of issued credentials. Sessions are stored by `SessionStore`. `service_session` is how
Hearth itself (Lambda) obtains a session of an execution role on behalf of `lambda.amazonaws.com`.
It never issues credentials for a role whose trust policy does not allow the caller.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hearth.aws.authz import evaluate as ev
from hearth.aws.context import Principal, RequestContext, Session
from hearth.aws.errors import AwsError
from hearth.services.iam import documents
from hearth.services.iam import principals as iam_principals
from hearth.services.iam.principals import session_policies
from hearth.services.iam.store import ROLE, IamStore
from hearth.services.sts.sessions import IssuedCredentials, SessionStore

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$")
_ARN_SHAPE = re.compile(r"^arn:[^:]+:[^:]+:[^:]*:[^:]*:.+$")
MAX_SESSION_POLICY = 2048


def access_denied(message: str) -> AwsError:
    return AwsError("AccessDenied", message, 403)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _credentials(issued: IssuedCredentials) -> dict[str, Any]:
    return {"AccessKeyId": issued.access_key_id, "SecretAccessKey": issued.secret_access_key,
            "SessionToken": issued.session_token, "Expiration": _dt(issued.expires)}


class StsProvider:
    def __init__(self, iam: IamStore, sessions: SessionStore, clock: Callable[[], float] = time.time) -> None:
        self._iam = iam
        self._sessions = sessions
        self._clock = clock

    def get_caller_identity(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        p = ctx.principal
        return {"UserId": p.user_id or p.account_id, "Account": p.account_id, "Arn": p.caller_arn}

    # -- AssumeRole -------------------------------------------------------------------------------

    def assume_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        role_arn: str = params["RoleArn"]
        if not _ARN_SHAPE.match(role_arn):
            raise AwsError("ValidationError", f"{role_arn} is invalid", 400)
        caller = ctx.principal
        denied = access_denied(f"User: {caller.caller_arn} is not authorized to perform: sts:AssumeRole on "
                               f"resource: {role_arn}")
        match = _ROLE_ARN.match(role_arn)
        role = self._iam.get(match.group(1), ROLE, match.group(2)) if match else None
        if role is None or role["Arn"] != role_arn:
            raise denied
        tags, transitive = self._chained_tags(caller, self._session_tags(params),
                                              tuple(params.get("TransitiveTagKeys") or ()))
        context = {
            "aws:principalarn": [caller.caller_arn], "aws:principalaccount": [caller.account_id],
            "aws:principaltype": [{"root": "Account", "user": "User"}.get(caller.kind, "AssumedRole")],
            "sts:rolesessionname": [params["RoleSessionName"]], "aws:sourceip": [ctx.source_ip],
        }
        if params.get("ExternalId"):
            context["sts:externalid"] = [params["ExternalId"]]
        for key, value in tags:
            context[f"aws:requesttag/{key.lower()}"] = [value]
        if tags:
            context["aws:tagkeys"] = [k for k, _ in tags]
        if not self._trusts(caller, role, context):
            raise denied
        duration = params.get("DurationSeconds") or 3600
        if duration > role.get("MaxSessionDuration", 3600):
            raise AwsError("ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for "
                           "this role.", 400)
        policy = params.get("Policy")
        if policy is not None:
            documents.validate_permissions(policy)
            if len("".join(policy.split())) > MAX_SESSION_POLICY:
                raise AwsError("PackedPolicyTooLarge", "Packed policy consumes 100% of allotted space, please use "
                               "smaller policy.", 400)
        policy_arns = tuple(p["arn"] for p in params.get("PolicyArns") or [])
        issued, session_arn, assumed_id = self._issue(role, params["RoleSessionName"], duration, policy, policy_arns,
                                                      tags, transitive)
        out: dict[str, Any] = {"Credentials": _credentials(issued),
                               "AssumedRoleUser": {"AssumedRoleId": assumed_id, "Arn": session_arn}}
        if policy is not None or policy_arns or tags:
            out["PackedPolicySize"] = min(100, (len(policy or "") + 64 * (len(policy_arns) + len(tags))) * 100
                                          // MAX_SESSION_POLICY)
        if params.get("SourceIdentity"):
            out["SourceIdentity"] = params["SourceIdentity"]
        return out

    def _trusts(self, caller: Principal, role: dict[str, Any], context: dict[str, list[str]]) -> bool:
        trust = ev.Policy.parse(role["Arn"], role["trust"], "Trust Policy")
        if caller.is_root:
            identity = [ev.Policy("root", {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})]
            boundary: ev.Policy | None = None
            session: list[ev.Policy] = []
        else:
            found = self._caller_policies(caller)
            if found is None:
                return False
            identity, boundary, session = found
        role_arn = caller.session.role_arn if caller.session is not None else None
        request = ev.Request("sts:AssumeRole", role["Arn"], ev.Caller(caller.caller_arn, caller.account_id, role_arn),
                             context, resource_account=role["Arn"].split(":")[4])
        decision = ev.evaluate(request, ev.PolicySet(identity=identity, resource=trust, boundary=boundary,
                                                     session=session))
        # Unlike other resource policies, a trust policy must allow even within the role's own account.
        return decision.allowed and any(m.kind == "Trust Policy" for m in decision.matched)

    def _caller_policies(self, caller: Principal) -> tuple[list[ev.Policy], ev.Policy | None, list[ev.Policy]] | None:
        session = caller.session
        if session is not None and session.role_arn is not None:
            found = iam_principals.role(self._iam, caller.account_id, iam_principals.role_name(session.role_arn))
        else:
            found = iam_principals.policies_of_arn(self._iam, caller.arn)
        if found is None:
            return None
        return list(found.identity), found.boundary, session_policies(self._iam, session)

    @staticmethod
    def _session_tags(params: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        tags = tuple((t["Key"], t["Value"]) for t in params.get("Tags") or [])
        lowered = [k.lower() for k, _ in tags]
        if len(set(lowered)) != len(lowered):
            raise AwsError("InvalidParameterValue", "Duplicate tag keys found. Please note that Tag keys are case "
                           "insensitive.", 400)
        for key in params.get("TransitiveTagKeys") or []:
            if key.lower() not in lowered:
                raise AwsError("InvalidParameterValue", "The specified transitive tag key must be included in the "
                               "requested tags.", 400)
        return tags

    @staticmethod
    def _chained_tags(caller: Principal, tags: tuple[tuple[str, str], ...], transitive: tuple[str, ...],
                      ) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
        """Role chaining: the calling session's transitive tags pass into the new session and stay
        transitive; the request may not set them again (keys compared without case)."""
        session = caller.session
        if session is None or not session.transitive:
            return tags, transitive
        carried = {k.lower() for k in session.transitive}
        if any(k.lower() in carried for k, _ in tags):
            raise AwsError("InvalidParameterValue", "One of the specified transitive tag keys can't be set because "
                           "it conflicts with a transitive tag key from the calling session.", 400)
        inherited = tuple((k, v) for k, v in session.tags if k.lower() in carried)
        return inherited + tags, tuple(session.transitive) + transitive

    def _issue(self, role: dict[str, Any], name: str, duration: int, policy: str | None,
               policy_arns: tuple[str, ...], tags: tuple[tuple[str, str], ...], transitive: tuple[str, ...] = (),
               ) -> tuple[IssuedCredentials, str, str]:
        account = role["Arn"].split(":")[4]
        now = self._clock()
        session = Session(role["Arn"], role["RoleId"], name, policy, policy_arns, tags, now, now + duration,
                          transitive)
        session_arn = f"arn:aws:sts::{account}:assumed-role/{role['RoleName']}/{name}"
        assumed_id = f"{role['RoleId']}:{name}"
        issued = self._sessions.issue(account, "assumed-role", session_arn, assumed_id, session)
        return issued, session_arn, assumed_id

    # -- GetSessionToken --------------------------------------------------------------------------

    def get_session_token(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        caller = ctx.principal
        if caller.kind == "assumed-role" or caller.session is not None:
            raise access_denied("Cannot call GetSessionToken with session credentials")
        limit = 3600 if caller.is_root else 129600
        duration = params.get("DurationSeconds") or (3600 if caller.is_root else 43200)
        if not 900 <= duration <= limit:
            raise AwsError("ValidationError", f"1 validation error detected: Value '{duration}' at 'durationSeconds' "
                           f"failed to satisfy constraint: Member must have value less than or equal to {limit}", 400)
        now = self._clock()
        session = Session(None, None, "", None, (), (), now, now + duration)
        issued = self._sessions.issue(caller.account_id, caller.kind, caller.arn, caller.user_id, session)
        return {"Credentials": _credentials(issued)}

    # -- GetFederationToken -----------------------------------------------------------------------

    def get_federation_token(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """A federated user's session: its permissions are the session policies passed here, within the
        calling user's own (none passed: none at all, as AWS documents)."""
        caller = ctx.principal
        if caller.kind not in ("root", "user") or caller.session is not None:
            raise access_denied("Cannot call GetFederationToken with session credentials")
        limit = 3600 if caller.is_root else 129600
        duration = params.get("DurationSeconds") or (3600 if caller.is_root else 43200)
        if not 900 <= duration <= limit:
            raise AwsError("ValidationError", f"1 validation error detected: Value '{duration}' at 'durationSeconds' "
                           f"failed to satisfy constraint: Member must have value less than or equal to {limit}", 400)
        name: str = params["Name"]
        policy = params.get("Policy")
        if policy is not None:
            documents.validate_permissions(policy)
            if len("".join(policy.split())) > MAX_SESSION_POLICY:
                raise AwsError("PackedPolicyTooLarge", "Packed policy consumes 100% of allotted space, please use "
                               "smaller policy.", 400)
        policy_arns = tuple(p["arn"] for p in params.get("PolicyArns") or [])
        tags = self._session_tags(params)
        now = self._clock()
        session = Session(None, None, name, policy, policy_arns, tags, now, now + duration,
                          source_arn=caller.caller_arn)
        arn = f"arn:aws:sts::{caller.account_id}:federated-user/{name}"
        user_id = f"{caller.account_id}:{name}"
        issued = self._sessions.issue(caller.account_id, "federated-user", arn, user_id, session)
        return {"Credentials": _credentials(issued), "FederatedUser": {"FederatedUserId": user_id, "Arn": arn},
                "PackedPolicySize": min(100, (len(policy or "") + 64 * (len(policy_arns) + len(tags))) * 100
                                        // MAX_SESSION_POLICY)}

    # -- sessions for AWS services ----------------------------------------------------------------

    def service_session(self, role_arn: str, service: str, session_name: str, duration: int) -> IssuedCredentials:
        """A session of `role_arn` assumed by an AWS service (Lambda, for a function's environments).

        Raises LookupError when the role does not exist or its trust policy does not allow the service.
        """
        match = _ROLE_ARN.match(role_arn)
        role = self._iam.get(match.group(1), ROLE, match.group(2)) if match else None
        if role is None or role["Arn"] != role_arn or not service_trusted(role, service):
            raise LookupError(role_arn)
        issued, _, _ = self._issue(role, session_name, duration, None, (), ())
        return issued


def service_trusted(role: dict[str, Any], service: str) -> bool:
    """Whether the role's trust policy lets an AWS service assume it."""
    trust = ev.Policy.parse(role["Arn"], role["trust"], "Trust Policy")
    request = ev.Request("sts:AssumeRole", role["Arn"], ev.Caller(service, role["Arn"].split(":")[4], service=service))
    return ev.evaluate(request, ev.PolicySet(resource=trust)).allowed


def role_trusts_service(iam: IamStore, role_arn: str, service: str) -> bool:
    match = _ROLE_ARN.match(role_arn)
    role = iam.get(match.group(1), ROLE, match.group(2)) if match else None
    return role is not None and role["Arn"] == role_arn and service_trusted(role, service)
