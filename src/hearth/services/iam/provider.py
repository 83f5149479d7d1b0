"""The IAM provider for identities: users, access keys, groups, roles, service-linked roles, instance
profiles, boundaries and tags (one method per IAM operation; query protocol, a global service).

It owns IAM's rules for identities as an account sees them: names unique per account and kind, what
must be removed before an entity can be deleted (DeleteConflict), quotas (LimitExceeded), trust policy
validation, and AWS's error texts. Entities are stored by `IamStore`, one transaction per operation.
It never sees another account's entities: every name is looked up in the caller's account. Policies
(inline, managed, attachments, simulation) are `policies.IamPolicyProvider`'s.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.iam import documents, service_roles
from hearth.services.iam.common import (
    ACCESS_KEYS_PER_USER,
    IamOperations,
    already_exists,
    as_datetime,
    clock_now,
    delete_conflict,
    limit_exceeded,
    no_such_entity,
    paged,
    path_param,
    tags_param,
)
from hearth.services.iam.store import GROUP, INSTANCE_PROFILE, ROLE, USER, IamStore, new_id


class IamProvider(IamOperations):
    # -- users ------------------------------------------------------------------------------------

    def create_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, path = params["UserName"], path_param(params)
        user = {"UserName": name, "UserId": new_id(USER), "Path": path, "created": clock_now(),
                "Arn": self._arn(ctx.account_id, "user", path, name), "Tags": tags_param(params), "inline": {},
                "attached": [], "groups": [], "boundary": params.get("PermissionsBoundary")}
        with self._store.tx() as conn:
            if not IamStore.insert(conn, ctx.account_id, USER, name, user):
                raise already_exists(f"User with name {name} already exists.")
        return {"User": self._user_out(user)}

    def get_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("UserName")
        if not name:
            principal = ctx.principal
            if principal.kind == "user":
                name = principal.arn.rsplit("/", 1)[1]
            elif principal.is_root:
                return {"User": {"UserId": ctx.account_id, "Arn": f"arn:aws:iam::{ctx.account_id}:root",
                                 "CreateDate": as_datetime(0), "Path": "/", "UserName": ""}}
            else:  # a role or federated session is no user
                raise AwsError("ValidationError", "Must specify userName when calling with non-User credentials", 400)
        return {"User": self._user_out(self._get(ctx.account_id, USER, name))}

    def list_users(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        users = [self._user_out(u, tags=False) for u in self._store.entities(ctx.account_id, USER)
                 if u["Path"].startswith(prefix)]
        return paged(users, params, "Users")

    def update_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("NewUserName") and params["NewUserName"] != params["UserName"]:
            raise AwsError("InvalidInput", "Renaming users is not supported by Hearth.", 400)
        with self._store.tx() as conn:
            user = self._need(conn, ctx.account_id, USER, params["UserName"])
            if params.get("NewPath"):
                user["Path"] = path_param({"Path": params["NewPath"]})
                user["Arn"] = self._arn(ctx.account_id, "user", user["Path"], user["UserName"])
            IamStore.write(conn, ctx.account_id, USER, user["UserName"], user)
        return {}

    def delete_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["UserName"]
        with self._store.tx() as conn:
            user = self._need(conn, ctx.account_id, USER, name)
            if IamStore.count_keys(conn, ctx.account_id, name):
                raise delete_conflict("Cannot delete entity, must delete access keys first.")
            if user["inline"]:
                raise delete_conflict("Cannot delete entity, must delete policies first.")
            if user["attached"]:
                raise delete_conflict("Cannot delete entity, must detach all policies first.")
            if user["groups"]:
                raise delete_conflict("Cannot delete entity, must remove users from group first.")
            if user.get("service_credentials"):
                raise delete_conflict("Cannot delete entity, must remove referenced objects first.")
            IamStore.remove(conn, ctx.account_id, USER, name)
        return {}

    # -- access keys ------------------------------------------------------------------------------

    def create_access_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._key_user(ctx, params)
        with self._store.tx() as conn:
            self._need(conn, ctx.account_id, USER, name)
            if IamStore.count_keys(conn, ctx.account_id, name) >= ACCESS_KEYS_PER_USER:
                raise limit_exceeded(f"Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}")
            key = IamStore.add_key(conn, ctx.account_id, name)
        return {"AccessKey": {"UserName": name, "AccessKeyId": key.access_key_id, "Status": key.status,
                              "SecretAccessKey": key.secret, "CreateDate": as_datetime(key.created)}}

    def list_access_keys(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._key_user(ctx, params)
        self._get(ctx.account_id, USER, name)
        keys = [{"UserName": k.user_name, "AccessKeyId": k.access_key_id, "Status": k.status,
                 "CreateDate": as_datetime(k.created)} for k in self._store.keys_of(ctx.account_id, name)]
        return paged(keys, params, "AccessKeyMetadata")

    def _own_key(self, ctx: RequestContext, params: dict[str, Any]) -> str:
        name = self._key_user(ctx, params)
        key = self._store.key(params["AccessKeyId"])
        if key is None or key.account != ctx.account_id or key.user_name != name:
            raise no_such_entity(f"The Access Key with id {params['AccessKeyId']} cannot be found.")
        return key.access_key_id

    def update_access_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key_id = self._own_key(ctx, params)
        with self._store.tx() as conn:
            IamStore.set_key_status(conn, key_id, params["Status"])
        return {}

    def delete_access_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key_id = self._own_key(ctx, params)
        with self._store.tx() as conn:
            IamStore.delete_key(conn, key_id)
        return {}

    def get_access_key_last_used(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = self._store.key(params["AccessKeyId"])
        if key is None or key.account != ctx.account_id:
            raise AwsError("AccessDenied", "Access denied", 403)
        return {"UserName": key.user_name,
                "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}

    # -- groups -----------------------------------------------------------------------------------

    def create_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, path = params["GroupName"], path_param(params)
        group = {"GroupName": name, "GroupId": new_id(GROUP), "Path": path, "created": clock_now(),
                 "Arn": self._arn(ctx.account_id, "group", path, name), "inline": {}, "attached": []}
        with self._store.tx() as conn:
            if not IamStore.insert(conn, ctx.account_id, GROUP, name, group):
                raise already_exists(f"Group with name {name} already exists.")
        return {"Group": self._group_out(group)}

    def get_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = self._get(ctx.account_id, GROUP, params["GroupName"])
        users = [self._user_out(u, tags=False) for u in self._store.entities(ctx.account_id, USER)
                 if group["GroupName"] in u["groups"]]
        out = paged(users, params, "Users")
        out["Group"] = self._group_out(group)
        return out

    def list_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        return paged([self._group_out(g) for g in self._store.entities(ctx.account_id, GROUP)
                      if g["Path"].startswith(prefix)], params, "Groups")

    def list_groups_for_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        user = self._get(ctx.account_id, USER, params["UserName"])
        groups = [self._group_out(g) for name in user["groups"]
                  if (g := self._store.get(ctx.account_id, GROUP, name)) is not None]
        return paged(groups, params, "Groups")

    def add_user_to_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            self._need(conn, ctx.account_id, GROUP, params["GroupName"])
            user = self._need(conn, ctx.account_id, USER, params["UserName"])
            if params["GroupName"] not in user["groups"]:
                user["groups"].append(params["GroupName"])
                IamStore.write(conn, ctx.account_id, USER, user["UserName"], user)
        return {}

    def remove_user_from_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            self._need(conn, ctx.account_id, GROUP, params["GroupName"])
            user = self._need(conn, ctx.account_id, USER, params["UserName"])
            if params["GroupName"] in user["groups"]:
                user["groups"].remove(params["GroupName"])
                IamStore.write(conn, ctx.account_id, USER, user["UserName"], user)
        return {}

    def delete_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["GroupName"]
        with self._store.tx() as conn:
            group = self._need(conn, ctx.account_id, GROUP, name)
            if any(name in u["groups"] for u in IamStore.all_of(conn, ctx.account_id, USER)):
                raise delete_conflict("Cannot delete entity, must remove users from group first.")
            if group["inline"]:
                raise delete_conflict("Cannot delete entity, must delete policies first.")
            if group["attached"]:
                raise delete_conflict("Cannot delete entity, must detach all policies first.")
            IamStore.remove(conn, ctx.account_id, GROUP, name)
        return {}

    # -- roles ------------------------------------------------------------------------------------

    def create_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, path = params["RoleName"], path_param(params)
        trust = params["AssumeRolePolicyDocument"]
        documents.validate_trust(trust)
        if params.get("PermissionsBoundary"):
            self._need_policy(ctx.account_id, params["PermissionsBoundary"])
        role = {"RoleName": name, "RoleId": new_id(ROLE), "Path": path, "created": clock_now(),
                "Arn": self._arn(ctx.account_id, "role", path, name), "trust": trust,
                "Description": params.get("Description") or "",
                "MaxSessionDuration": params.get("MaxSessionDuration") or 3600, "Tags": tags_param(params),
                "inline": {}, "attached": [], "boundary": params.get("PermissionsBoundary")}
        return {"Role": self._insert_role(ctx.account_id, role)}

    def _insert_role(self, account: str, role: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            if not IamStore.insert(conn, account, ROLE, role["RoleName"], role):
                raise already_exists(f"Role with name {role['RoleName']} already exists.")
        out = self._role_out(role, full=False)
        return out

    def get_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Role": self._role_out(self._get(ctx.account_id, ROLE, params["RoleName"]))}

    def list_roles(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        roles = []
        for r in self._store.entities(ctx.account_id, ROLE):
            if r["Path"].startswith(prefix):
                out = self._role_out(r)
                out.pop("RoleLastUsed", None)
                out.pop("Tags", None)
                out.pop("PermissionsBoundary", None)
                roles.append(out)
        return paged(roles, params, "Roles")

    def update_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            role = self._need(conn, ctx.account_id, ROLE, params["RoleName"])
            if "Description" in params:
                role["Description"] = params["Description"]
            if params.get("MaxSessionDuration"):
                role["MaxSessionDuration"] = params["MaxSessionDuration"]
            IamStore.write(conn, ctx.account_id, ROLE, role["RoleName"], role)
        return {}

    def update_role_description(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.update_role(ctx, params)
        return {"Role": self._role_out(self._get(ctx.account_id, ROLE, params["RoleName"]))}

    def update_assume_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        documents.validate_trust(params["PolicyDocument"])
        with self._store.tx() as conn:
            role = self._need(conn, ctx.account_id, ROLE, params["RoleName"])
            role["trust"] = params["PolicyDocument"]
            IamStore.write(conn, ctx.account_id, ROLE, role["RoleName"], role)
        return {}

    def delete_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["RoleName"]
        with self._store.tx() as conn:
            role = self._need(conn, ctx.account_id, ROLE, name)
            if role.get("service_linked"):
                raise AwsError("UnmodifiableEntity", f"Cannot perform the operation on the protected role '{name}' "
                               "- this role is only modifiable by AWS", 400)
            if any(name in p["roles"] for p in IamStore.all_of(conn, ctx.account_id, INSTANCE_PROFILE)):
                raise delete_conflict("Cannot delete entity, must remove roles from instance profile first.")
            if role["inline"]:
                raise delete_conflict("Cannot delete entity, must delete policies first.")
            if role["attached"]:
                raise delete_conflict("Cannot delete entity, must detach all policies first.")
            IamStore.remove(conn, ctx.account_id, ROLE, name)
        return {}

    def put_role_permissions_boundary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set_boundary(ctx, ROLE, params["RoleName"], params["PermissionsBoundary"])

    def delete_role_permissions_boundary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set_boundary(ctx, ROLE, params["RoleName"], None)

    def put_user_permissions_boundary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set_boundary(ctx, USER, params["UserName"], params["PermissionsBoundary"])

    def delete_user_permissions_boundary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set_boundary(ctx, USER, params["UserName"], None)

    def _set_boundary(self, ctx: RequestContext, kind: str, name: str, arn: str | None) -> dict[str, Any]:
        if arn is not None:
            self._need_policy(ctx.account_id, arn)
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            entity["boundary"] = arn
            IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}

    # -- service-linked roles ---------------------------------------------------------------------

    def create_service_linked_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        service = params["AWSServiceName"]
        entry = service_roles.lookup(service)
        name = entry.role_name
        if params.get("CustomSuffix"):
            if not entry.custom_suffix:
                raise AwsError("InvalidInput", f"Custom suffix is not allowed for {service}", 400)
            name += f"_{params['CustomSuffix']}"
        path = f"/aws-service-role/{service}/"
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})
        # The service's own managed policies are attached by AWS, not through AttachRolePolicy: no
        # attachability check and no per-role quota apply.
        role: dict[str, Any] = {
                "RoleName": name, "RoleId": new_id(ROLE), "Path": path, "created": clock_now(),
                "Arn": self._arn(ctx.account_id, "role", path, name), "trust": trust,
                "Description": params.get("Description") or "", "MaxSessionDuration": 3600, "Tags": [],
                "inline": {}, "attached": list(entry.policy_arns), "boundary": None, "service_linked": True}
        with self._store.tx() as conn:
            if not IamStore.insert(conn, ctx.account_id, ROLE, name, role):
                raise AwsError("InvalidInput", f"Service role name {name} has been taken in this account, please "
                               "try a different suffix.", 400)
        return {"Role": self._role_out(role, full=False)}

    def delete_service_linked_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        # AWS deletes asynchronously and reports through the task; Hearth deletes at once, so every task it
        # hands out has already SUCCEEDED.
        with self._store.tx() as conn:
            role = self._need(conn, ctx.account_id, ROLE, params["RoleName"])
            if not role.get("service_linked"):  # AWS looks among service-linked roles only
                raise no_such_entity(f"The role with name {role['RoleName']} cannot be found.")
            IamStore.remove(conn, ctx.account_id, ROLE, role["RoleName"])
        return {"DeletionTaskId": f"task{role['Path']}{role['RoleName']}/{uuid.uuid4()}"}

    def get_service_linked_role_deletion_status(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        task = str(params["DeletionTaskId"])
        if not task.startswith("task/aws-service-role/"):  # AWS: an unknown task is NoSuchEntity (404)
            raise no_such_entity(f"Deletion task {task} cannot be found.")
        return {"Status": "SUCCEEDED"}

    # -- instance profiles ------------------------------------------------------------------------

    def create_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, path = params["InstanceProfileName"], path_param(params)
        profile = {"InstanceProfileName": name, "InstanceProfileId": new_id(INSTANCE_PROFILE), "Path": path,
                   "created": clock_now(), "Arn": self._arn(ctx.account_id, "instance-profile", path, name),
                   "roles": [], "Tags": tags_param(params)}
        with self._store.tx() as conn:
            if not IamStore.insert(conn, ctx.account_id, INSTANCE_PROFILE, name, profile):
                raise already_exists(f"Instance Profile {name} already exists.")
        return {"InstanceProfile": self._profile_out(ctx.account_id, profile)}

    def get_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        profile = self._get(ctx.account_id, INSTANCE_PROFILE, params["InstanceProfileName"])
        return {"InstanceProfile": self._profile_out(ctx.account_id, profile)}

    def list_instance_profiles(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        return paged([self._profile_out(ctx.account_id, p)
                      for p in self._store.entities(ctx.account_id, INSTANCE_PROFILE) if p["Path"].startswith(prefix)],
                     params, "InstanceProfiles")

    def list_instance_profiles_for_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["RoleName"]
        self._get(ctx.account_id, ROLE, name)
        return paged([self._profile_out(ctx.account_id, p)
                      for p in self._store.entities(ctx.account_id, INSTANCE_PROFILE) if name in p["roles"]],
                     params, "InstanceProfiles")

    def add_role_to_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            profile = self._need(conn, ctx.account_id, INSTANCE_PROFILE, params["InstanceProfileName"])
            self._need(conn, ctx.account_id, ROLE, params["RoleName"])
            if profile["roles"]:
                raise limit_exceeded("Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
            profile["roles"].append(params["RoleName"])
            IamStore.write(conn, ctx.account_id, INSTANCE_PROFILE, profile["InstanceProfileName"], profile)
        return {}

    def remove_role_from_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            profile = self._need(conn, ctx.account_id, INSTANCE_PROFILE, params["InstanceProfileName"])
            self._need(conn, ctx.account_id, ROLE, params["RoleName"])
            if params["RoleName"] in profile["roles"]:
                profile["roles"].remove(params["RoleName"])
            IamStore.write(conn, ctx.account_id, INSTANCE_PROFILE, profile["InstanceProfileName"], profile)
        return {}

    def delete_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            profile = self._need(conn, ctx.account_id, INSTANCE_PROFILE, params["InstanceProfileName"])
            if profile["roles"]:
                raise delete_conflict("Cannot delete entity, must remove roles from instance profile first.")
            IamStore.remove(conn, ctx.account_id, INSTANCE_PROFILE, profile["InstanceProfileName"])
        return {}

    def tag_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._tag(ctx, ROLE, params["RoleName"], tags_param(params))

    def untag_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._untag(ctx, ROLE, params["RoleName"], params["TagKeys"])

    def list_role_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return paged(self._get(ctx.account_id, ROLE, params["RoleName"]).get("Tags") or [], params, "Tags")

    def tag_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._tag(ctx, USER, params["UserName"], tags_param(params))

    def untag_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._untag(ctx, USER, params["UserName"], params["TagKeys"])

    def list_user_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return paged(self._get(ctx.account_id, USER, params["UserName"]).get("Tags") or [], params, "Tags")

    def tag_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._tag(ctx, INSTANCE_PROFILE, params["InstanceProfileName"], tags_param(params))

    def untag_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._untag(ctx, INSTANCE_PROFILE, params["InstanceProfileName"], params["TagKeys"])

    def list_instance_profile_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        profile = self._get(ctx.account_id, INSTANCE_PROFILE, params["InstanceProfileName"])
        return paged(profile.get("Tags") or [], params, "Tags")
