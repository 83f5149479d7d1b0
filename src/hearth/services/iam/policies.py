"""The IAM provider for policies: inline policies, customer managed policies and their versions, AWS
managed policies, attachments, policy tags, and SimulatePrincipalPolicy / SimulateCustomPolicy.

It owns IAM's policy rules: document validation (MalformedPolicyDocument with IAM's reasons, via
`documents`), sizes and counts (LimitExceeded), versions (at most five, the default one undeletable),
and what may be deleted while attached (DeleteConflict). Simulations run the one evaluator in
`hearth.aws.authz`. It never modifies an AWS managed policy.
"""

from __future__ import annotations

from typing import Any

from hearth.aws.authz import evaluate as ev
from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.iam import documents, managed
from hearth.services.iam.common import (
    INLINE_SIZE,
    KIND_TITLE,
    MANAGED_POLICIES_PER_ENTITY,
    MANAGED_POLICY_SIZE,
    POLICY_VERSIONS,
    IamOperations,
    already_exists,
    as_datetime,
    clock_now,
    delete_conflict,
    limit_exceeded,
    no_such_entity,
    paged,
    parse_policy_arn,
    path_param,
    tags_param,
    url_encoded,
)
from hearth.services.iam.principals import policies_of_arn
from hearth.services.iam.store import GROUP, POLICY, ROLE, USER, IamStore, new_id


class IamPolicyProvider(IamOperations):
    # -- inline policies --------------------------------------------------------------------------

    def _put_inline(self, ctx: RequestContext, kind: str, name: str, policy_name: str, doc: str) -> dict[str, Any]:
        documents.validate_permissions(doc)
        limit = INLINE_SIZE[kind]
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            inline = dict(entity["inline"])
            inline[policy_name] = doc
            size = sum(len("".join(d.split())) for d in inline.values())
            if size > limit:
                raise limit_exceeded(f"Maximum policy size of {limit} bytes exceeded for {KIND_TITLE[kind]} {name}")
            entity["inline"] = inline
            IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}

    def _get_inline(self, ctx: RequestContext, kind: str, name: str, policy_name: str) -> str:
        entity = self._get(ctx.account_id, kind, name)
        doc = entity["inline"].get(policy_name)
        if doc is None:
            raise no_such_entity(f"The {KIND_TITLE[kind]} policy with name {policy_name} cannot be found.")
        return str(doc)

    def _delete_inline(self, ctx: RequestContext, kind: str, name: str, policy_name: str) -> dict[str, Any]:
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            if policy_name not in entity["inline"]:
                raise no_such_entity(f"The {KIND_TITLE[kind]} policy with name {policy_name} cannot be found.")
            del entity["inline"][policy_name]
            IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}

    def _list_inline(self, ctx: RequestContext, kind: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        return paged(sorted(self._get(ctx.account_id, kind, name)["inline"]), params, "PolicyNames")

    def put_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._put_inline(ctx, ROLE, params["RoleName"], params["PolicyName"], params["PolicyDocument"])

    def get_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._get_inline(ctx, ROLE, params["RoleName"], params["PolicyName"])
        return {"RoleName": params["RoleName"], "PolicyName": params["PolicyName"], "PolicyDocument": url_encoded(doc)}

    def delete_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._delete_inline(ctx, ROLE, params["RoleName"], params["PolicyName"])

    def list_role_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_inline(ctx, ROLE, params["RoleName"], params)

    def put_user_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._put_inline(ctx, USER, params["UserName"], params["PolicyName"], params["PolicyDocument"])

    def get_user_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._get_inline(ctx, USER, params["UserName"], params["PolicyName"])
        return {"UserName": params["UserName"], "PolicyName": params["PolicyName"], "PolicyDocument": url_encoded(doc)}

    def delete_user_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._delete_inline(ctx, USER, params["UserName"], params["PolicyName"])

    def list_user_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_inline(ctx, USER, params["UserName"], params)

    def put_group_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._put_inline(ctx, GROUP, params["GroupName"], params["PolicyName"], params["PolicyDocument"])

    def get_group_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._get_inline(ctx, GROUP, params["GroupName"], params["PolicyName"])
        return {"GroupName": params["GroupName"], "PolicyName": params["PolicyName"],
                "PolicyDocument": url_encoded(doc)}

    def delete_group_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._delete_inline(ctx, GROUP, params["GroupName"], params["PolicyName"])

    def list_group_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_inline(ctx, GROUP, params["GroupName"], params)

    def create_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, path, doc = params["PolicyName"], path_param(params), params["PolicyDocument"]
        documents.validate_permissions(doc)
        if len("".join(doc.split())) > MANAGED_POLICY_SIZE:
            raise limit_exceeded(f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}")
        now = clock_now()
        policy = {"PolicyName": name, "PolicyId": new_id(POLICY), "Path": path, "created": now, "updated": now,
                  "Arn": self._arn(ctx.account_id, "policy", path, name), "DefaultVersionId": "v1",
                  "Description": params.get("Description") or "", "Tags": tags_param(params), "next": 2,
                  "versions": {"v1": {"doc": doc, "created": now}}}
        with self._store.tx() as conn:
            if not IamStore.insert(conn, ctx.account_id, POLICY, name, policy):
                raise already_exists(f"A policy called {name} already exists. Duplicate names are not allowed.")
        return {"Policy": self._policy_out(ctx.account_id, policy)}

    def get_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._need_policy(ctx.account_id, params["PolicyArn"])
        if isinstance(found, managed.ManagedPolicy):
            return {"Policy": self._aws_policy_out(found, self._attachment_count(ctx.account_id, found.arn))}
        return {"Policy": self._policy_out(ctx.account_id, found)}

    def list_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        scope = params.get("Scope") or "All"
        prefix = params.get("PathPrefix") or "/"
        out: list[dict[str, Any]] = []
        attached: set[str] = {arn for kind in (USER, ROLE, GROUP) for e in self._store.entities(ctx.account_id, kind)
                              for arn in e.get("attached", [])}
        if scope in ("All", "AWS"):
            for m in managed.policies().values():
                if m.path.startswith(prefix) and (not params.get("OnlyAttached") or m.arn in attached):
                    out.append(self._aws_policy_out(m, 1 if m.arn in attached else 0))
        if scope in ("All", "Local"):
            for p in self._store.entities(ctx.account_id, POLICY):
                if p["Path"].startswith(prefix) and (not params.get("OnlyAttached") or p["Arn"] in attached):
                    item = self._policy_out(ctx.account_id, p)
                    item.pop("Tags", None)
                    item.pop("Description", None)
                    out.append(item)
        return paged(out, params, "Policies")

    def delete_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["PolicyArn"]
        owner, name = parse_policy_arn(arn)
        if owner == "aws":
            raise AwsError("UnmodifiableEntity", "Cannot delete policies outside your own account.", 400)
        policy = self._need_policy(ctx.account_id, arn)
        assert isinstance(policy, dict)
        if self._attachment_count(ctx.account_id, arn):
            raise delete_conflict("Cannot delete a policy attached to entities.")
        if len(policy["versions"]) > 1:
            raise delete_conflict("This policy has more than one version. Before you delete a policy, you must "
                                  "delete the policy's versions. The default version is deleted with the policy.")
        with self._store.tx() as conn:
            IamStore.remove(conn, ctx.account_id, POLICY, name)
        return {}

    def create_policy_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        doc = params["PolicyDocument"]
        documents.validate_permissions(doc)
        policy = self._local_policy(ctx, params["PolicyArn"])
        if len(policy["versions"]) >= POLICY_VERSIONS:
            raise limit_exceeded("A managed policy can have up to 5 versions. Before you create a new version, you "
                                 "must delete an existing version.")
        now = clock_now()
        version = f"v{policy['next']}"
        policy["next"] += 1
        policy["versions"][version] = {"doc": doc, "created": now}
        policy["updated"] = now
        if params.get("SetAsDefault"):
            policy["DefaultVersionId"] = version
        with self._store.tx() as conn:
            IamStore.write(conn, ctx.account_id, POLICY, policy["PolicyName"], policy)
        return {"PolicyVersion": {"VersionId": version, "IsDefaultVersion": policy["DefaultVersionId"] == version,
                                  "CreateDate": as_datetime(now)}}

    def get_policy_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn, version = params["PolicyArn"], params["VersionId"]
        found = self._need_policy(ctx.account_id, arn)
        if isinstance(found, managed.ManagedPolicy):
            if version != found.default_version:
                raise no_such_entity(f"Policy {arn} version {version} does not exist or is not attachable.")
            return {"PolicyVersion": {"Document": url_encoded(found.document), "VersionId": version,
                                      "IsDefaultVersion": True, "CreateDate": found.update_date}}
        entry = found["versions"].get(version)
        if entry is None:
            raise no_such_entity(f"Policy {arn} version {version} does not exist or is not attachable.")
        return {"PolicyVersion": {"Document": url_encoded(entry["doc"]), "VersionId": version,
                                  "IsDefaultVersion": found["DefaultVersionId"] == version,
                                  "CreateDate": as_datetime(entry["created"])}}

    def list_policy_versions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._need_policy(ctx.account_id, params["PolicyArn"])
        if isinstance(found, managed.ManagedPolicy):
            versions = [{"VersionId": found.default_version, "IsDefaultVersion": True,
                         "CreateDate": found.update_date}]
        else:
            versions = [{"VersionId": v, "IsDefaultVersion": found["DefaultVersionId"] == v,
                         "CreateDate": as_datetime(e["created"])}
                        for v, e in sorted(found["versions"].items(), key=lambda kv: -int(kv[0][1:]))]
        return paged(versions, params, "Versions")

    def delete_policy_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._local_policy(ctx, params["PolicyArn"])
        version = params["VersionId"]
        if version not in policy["versions"]:
            raise no_such_entity(f"Policy {params['PolicyArn']} version {version} does not exist or is not "
                                 "attachable.")
        if version == policy["DefaultVersionId"]:
            raise delete_conflict("Cannot delete the default version of a policy.")
        del policy["versions"][version]
        with self._store.tx() as conn:
            IamStore.write(conn, ctx.account_id, POLICY, policy["PolicyName"], policy)
        return {}

    def set_default_policy_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._local_policy(ctx, params["PolicyArn"])
        version = params["VersionId"]
        if version not in policy["versions"]:
            raise no_such_entity(f"Policy {params['PolicyArn']} version {version} does not exist or is not "
                                 "attachable.")
        policy["DefaultVersionId"] = version
        with self._store.tx() as conn:
            IamStore.write(conn, ctx.account_id, POLICY, policy["PolicyName"], policy)
        return {}

    # -- attach / detach --------------------------------------------------------------------------

    def _attach(self, ctx: RequestContext, kind: str, name: str, arn: str) -> dict[str, Any]:
        self._need_policy(ctx.account_id, arn, attachable=True)
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            if arn not in entity["attached"]:
                if len(entity["attached"]) >= MANAGED_POLICIES_PER_ENTITY:
                    title = {ROLE: "PoliciesPerRole", USER: "PoliciesPerUser", GROUP: "PoliciesPerGroup"}[kind]
                    raise limit_exceeded(f"Cannot exceed quota for {title}: {MANAGED_POLICIES_PER_ENTITY}")
                entity["attached"].append(arn)
                IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}

    def _detach(self, ctx: RequestContext, kind: str, name: str, arn: str) -> dict[str, Any]:
        parse_policy_arn(arn)
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            if arn not in entity["attached"]:
                raise no_such_entity(f"Policy {arn} was not found.")
            entity["attached"].remove(arn)
            IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}

    def _list_attached(self, ctx: RequestContext, kind: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        entity = self._get(ctx.account_id, kind, name)
        prefix = params.get("PathPrefix") or "/"
        out = []
        for arn in entity["attached"]:
            path = "/" + arn.split(":", 5)[5].split("/", 1)[1].rpartition("/")[0]
            path = path if path.endswith("/") else path + "/"
            if path.startswith(prefix):
                out.append({"PolicyName": arn.rsplit("/", 1)[1], "PolicyArn": arn})
        return paged(out, params, "AttachedPolicies")

    def attach_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._attach(ctx, ROLE, params["RoleName"], params["PolicyArn"])

    def detach_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._detach(ctx, ROLE, params["RoleName"], params["PolicyArn"])

    def list_attached_role_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_attached(ctx, ROLE, params["RoleName"], params)

    def attach_user_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._attach(ctx, USER, params["UserName"], params["PolicyArn"])

    def detach_user_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._detach(ctx, USER, params["UserName"], params["PolicyArn"])

    def list_attached_user_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_attached(ctx, USER, params["UserName"], params)

    def attach_group_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._attach(ctx, GROUP, params["GroupName"], params["PolicyArn"])

    def detach_group_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._detach(ctx, GROUP, params["GroupName"], params["PolicyArn"])

    def list_attached_group_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_attached(ctx, GROUP, params["GroupName"], params)

    def list_entities_for_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["PolicyArn"]
        self._need_policy(ctx.account_id, arn)
        out: dict[str, Any] = {"PolicyGroups": [], "PolicyUsers": [], "PolicyRoles": [], "IsTruncated": False}
        for g in self._store.entities(ctx.account_id, GROUP):
            if arn in g["attached"]:
                out["PolicyGroups"].append({"GroupName": g["GroupName"], "GroupId": g["GroupId"]})
        for u in self._store.entities(ctx.account_id, USER):
            if arn in u["attached"]:
                out["PolicyUsers"].append({"UserName": u["UserName"], "UserId": u["UserId"]})
        for r in self._store.entities(ctx.account_id, ROLE):
            if arn in r["attached"]:
                out["PolicyRoles"].append({"RoleName": r["RoleName"], "RoleId": r["RoleId"]})
        return out

    def tag_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._local_policy(ctx, params["PolicyArn"])
        return self._tag(ctx, POLICY, policy["PolicyName"], tags_param(params))

    def untag_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._local_policy(ctx, params["PolicyArn"])
        return self._untag(ctx, POLICY, policy["PolicyName"], params["TagKeys"])

    def list_policy_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return paged(self._local_policy(ctx, params["PolicyArn"]).get("Tags") or [], params, "Tags")

    # -- simulation -------------------------------------------------------------------------------

    def simulate_principal_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        source = params["PolicySourceArn"]
        found = policies_of_arn(self._store, source)
        if found is None:
            raise no_such_entity(f"The entity {source} cannot be found.")
        identity = list(found.identity) + [ev.Policy.parse(f"PolicyInputList.{i + 1}", doc)
                                           for i, doc in enumerate(params.get("PolicyInputList") or [])]
        caller = ev.Caller(params.get("CallerArn") or source, source.split(":")[4])
        policies = ev.PolicySet(identity=identity, boundary=found.boundary, resource=self._resource_policy(params))
        return self._simulate(caller, policies, params)

    def simulate_custom_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        identity = []
        for i, doc in enumerate(params["PolicyInputList"]):
            documents.parse(doc)
            identity.append(ev.Policy.parse(f"PolicyInputList.{i + 1}", doc))
        boundaries = params.get("PermissionsBoundaryPolicyInputList") or []
        boundary = ev.Policy.parse("PermissionsBoundaryPolicyInputList.1", boundaries[0]) if boundaries else None
        caller = ev.Caller(params.get("CallerArn") or f"arn:aws:iam::{ctx.account_id}:root", ctx.account_id)
        policies = ev.PolicySet(identity=identity, boundary=boundary, resource=self._resource_policy(params))
        return self._simulate(caller, policies, params)

    @staticmethod
    def _resource_policy(params: dict[str, Any]) -> ev.Policy | None:
        doc = params.get("ResourcePolicy")
        return ev.Policy.parse("ResourcePolicy", doc, "Resource Policy") if doc else None

    @staticmethod
    def _simulate(caller: ev.Caller, policies: ev.PolicySet, params: dict[str, Any]) -> dict[str, Any]:
        context: dict[str, list[str]] = {"aws:principalarn": [caller.arn], "aws:principalaccount": [caller.account]}
        for entry in params.get("ContextEntries") or []:
            context[entry["ContextKeyName"].lower()] = [str(v) for v in entry.get("ContextKeyValues") or []]
        results = []
        for action in params["ActionNames"]:
            for resource in params.get("ResourceArns") or ["*"]:
                account = resource.split(":")[4] if resource.count(":") >= 5 else None
                owner = params.get("ResourceOwner")
                if owner:
                    account = owner.split(":")[4] if owner.startswith("arn:") else owner
                decision = ev.evaluate(ev.Request(action, resource, caller, context,
                                                  resource_account=account or None), policies)
                statements = [{"SourcePolicyId": m.policy_id, "SourcePolicyType": m.kind} for m in decision.matched]
                results.append({
                    "EvalActionName": action, "EvalResourceName": resource, "EvalDecision": decision.decision,
                    "MatchedStatements": statements, "MissingContextValues": [], "EvalDecisionDetails": {},
                    "OrganizationsDecisionDetail": {"AllowedByOrganizations": True},
                })
        return paged(results, params, "EvaluationResults")
