"""The Amazon ECR API (boto3's `ecr` client, json protocol 1.1), repositories only: one method per operation.

It owns the business rules of repositories — who owns a registry, what a repository's ARN and URI
are, policy and lifecycle texts being JSON, pages — and AWS's error codes and texts. It never writes
SQL (`repositories.RepositoryStore` does). Hearth keeps no images: DescribeImages and ListImages of
a repository answer an empty list, and the registry operations behind `docker push`/`pull`
(GetAuthorizationToken, layer uploads) answer `UnknownOperationException`, as every operation not
here does — AWS CDK's bootstrap stack needs the repository to exist, not to hold images.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.ecr.repositories import Repository, RepositoryStore

MAX_TAGS = 50


def repository_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


def repository_uri(region: str, account: str, name: str) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{name}"


def _not_found(name: str, registry: str) -> AwsError:
    return AwsError("RepositoryNotFoundException",
                    f"The repository with name '{name}' does not exist in the registry with id '{registry}'")


def _invalid(member: str, constraint: str) -> AwsError:
    return AwsError("InvalidParameterException",
                    f"Invalid parameter at '{member}' failed to satisfy constraint: '{constraint}'")


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    tags = {t["Key"]: t.get("Value", "") for t in items or []}
    if len(tags) > MAX_TAGS:
        raise AwsError("TooManyTagsException", f"A maximum of {MAX_TAGS} tags can be applied to a repository.")
    return tags


def _json_object(text: str, member: str, constraint: str) -> str:
    try:
        document = json.loads(text)
    except ValueError:
        raise _invalid(member, constraint) from None
    if not isinstance(document, dict):
        raise _invalid(member, constraint)
    return text


class EcrProvider:
    def __init__(self, store: RepositoryStore) -> None:
        self.store = store

    # -- helpers ----------------------------------------------------------------------------------------

    @staticmethod
    def _registry(ctx: RequestContext, params: dict[str, Any]) -> str:
        """The registry (account) asked for: a caller sees only its own account's registry."""
        return str(params.get("registryId") or ctx.principal.account_id)

    def _find(self, ctx: RequestContext, params: dict[str, Any]) -> Repository:
        registry = self._registry(ctx, params)
        name = params["repositoryName"]
        found = (self.store.get(ctx.principal.account_id, ctx.region, name)
                 if registry == ctx.principal.account_id else None)
        if found is None:
            raise _not_found(name, registry)
        return found

    def _from_arn(self, ctx: RequestContext, arn: str) -> Repository:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "ecr" or not parts[5].startswith("repository/"):
            raise _invalid("resourceArn", "Invalid ARN")
        account, name = parts[4], parts[5].removeprefix("repository/")
        found = (self.store.get(account, parts[3], name)
                 if account == ctx.principal.account_id and parts[3] == ctx.region else None)
        if found is None:
            raise _not_found(name, account)
        return found

    @staticmethod
    def _render(r: Repository) -> dict[str, Any]:
        encryption: dict[str, Any] = {"encryptionType": r.encryption_type}
        if r.kms_key:
            encryption["kmsKey"] = r.kms_key
        return {
            "repositoryArn": repository_arn(r.region, r.account, r.name), "registryId": r.account,
            "repositoryName": r.name, "repositoryUri": repository_uri(r.region, r.account, r.name),
            "createdAt": datetime.fromtimestamp(r.created_at, UTC), "imageTagMutability": r.tag_mutability,
            "imageScanningConfiguration": {"scanOnPush": r.scan_on_push}, "encryptionConfiguration": encryption,
        }

    # -- repositories -----------------------------------------------------------------------------------

    def create_repository(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        account, name = ctx.principal.account_id, params["repositoryName"]
        registry = self._registry(ctx, params)
        if registry != account:
            raise AwsError("AccessDeniedException", f"The registry with id '{registry}' belongs to another account")
        encryption = params.get("encryptionConfiguration") or {}
        kind = encryption.get("encryptionType", "AES256")
        kms_key = encryption.get("kmsKey", "")
        if kind == "AES256" and kms_key:
            raise _invalid("encryptionConfiguration.kmsKey", "KMS key should not be specified for AES256 encryption")
        created = self.store.create(
            account, ctx.region, name, tag_mutability=params.get("imageTagMutability", "MUTABLE"),
            scan_on_push=bool((params.get("imageScanningConfiguration") or {}).get("scanOnPush", False)),
            encryption_type=kind, kms_key=kms_key, tags=_tags(params.get("tags")))
        if created is None:
            raise AwsError("RepositoryAlreadyExistsException",
                           f"The repository with name '{name}' already exists in the registry with id '{account}'")
        return {"repository": self._render(created)}

    def describe_repositories(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        registry = self._registry(ctx, params)
        names = params.get("repositoryNames")
        if names:
            return {"repositories": [self._render(self._find(ctx, {**params, "repositoryName": n})) for n in names]}
        found = self.store.all(ctx.principal.account_id, ctx.region) if registry == ctx.principal.account_id else []
        token = params.get("nextToken")
        if token:
            found = [r for r in found if r.name > token]
        limit = int(params.get("maxResults") or 1000)
        page = found[:limit]
        out: dict[str, Any] = {"repositories": [self._render(r) for r in page]}
        if len(found) > limit:
            out["nextToken"] = page[-1].name
        return out

    def delete_repository(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._find(ctx, params)
        # Hearth keeps no images, so a repository is always empty and `force` never matters.
        self.store.delete(found.account, found.region, found.name)
        return {"repository": self._render(found)}

    def put_image_tag_mutability(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._find(ctx, params)
        self.store.update(found.account, found.region, found.name, "tag_mutability", params["imageTagMutability"])
        return {"registryId": found.account, "repositoryName": found.name,
                "imageTagMutability": params["imageTagMutability"]}

    def put_image_scanning_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._find(ctx, params)
        scan = bool(params["imageScanningConfiguration"].get("scanOnPush", False))
        self.store.update(found.account, found.region, found.name, "scan_on_push", int(scan))
        return {"registryId": found.account, "repositoryName": found.name,
                "imageScanningConfiguration": {"scanOnPush": scan}}

    # -- lifecycle and repository policies --------------------------------------------------------------

    def put_lifecycle_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._find(ctx, params)
        text = _json_object(params["lifecyclePolicyText"], "lifecyclePolicyText",
                            "Lifecycle policy validation failure")
        self.store.update(found.account, found.region, found.name, "lifecycle_policy", text)
        return {"registryId": found.account, "repositoryName": found.name, "lifecyclePolicyText": text}

    def get_lifecycle_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._lifecycle(ctx, params)
        return {"registryId": found.account, "repositoryName": found.name,
                "lifecyclePolicyText": found.lifecycle_policy}

    def delete_lifecycle_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._lifecycle(ctx, params)
        self.store.update(found.account, found.region, found.name, "lifecycle_policy", "")
        return {"registryId": found.account, "repositoryName": found.name,
                "lifecyclePolicyText": found.lifecycle_policy}

    def _lifecycle(self, ctx: RequestContext, params: dict[str, Any]) -> Repository:
        found = self._find(ctx, params)
        if not found.lifecycle_policy:
            raise AwsError("LifecyclePolicyNotFoundException",
                           f"Lifecycle policy does not exist for the repository with name '{found.name}' "
                           f"in the registry with id '{found.account}'")
        return found

    def set_repository_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._find(ctx, params)
        text = _json_object(params["policyText"], "PolicyText", "Invalid repository policy provided")
        self.store.update(found.account, found.region, found.name, "policy", text)
        return {"registryId": found.account, "repositoryName": found.name, "policyText": text}

    def get_repository_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._policy(ctx, params)
        return {"registryId": found.account, "repositoryName": found.name, "policyText": found.policy}

    def delete_repository_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._policy(ctx, params)
        self.store.update(found.account, found.region, found.name, "policy", "")
        return {"registryId": found.account, "repositoryName": found.name, "policyText": found.policy}

    def _policy(self, ctx: RequestContext, params: dict[str, Any]) -> Repository:
        found = self._find(ctx, params)
        if not found.policy:
            raise AwsError("RepositoryPolicyNotFoundException",
                           f"Repository policy does not exist for the repository with name '{found.name}' "
                           f"in the registry with id '{found.account}'")
        return found

    # -- images (none are ever stored) ------------------------------------------------------------------

    def describe_images(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._find(ctx, params)
        if params.get("imageIds"):
            # Asked for by id or tag: none exists, as AWS answers for a missing image.
            first = params["imageIds"][0]
            shown = (f"imageTag={first['imageTag']}" if "imageTag" in first
                     else f"imageDigest={first.get('imageDigest')}")
            raise AwsError("ImageNotFoundException",
                           f"The image with imageId {{{shown}}} does not exist within the repository with name "
                           f"'{found.name}' in the registry with id '{found.account}'")
        return {"imageDetails": []}

    def list_images(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._find(ctx, params)
        return {"imageIds": []}

    # -- tags -------------------------------------------------------------------------------------------

    def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._from_arn(ctx, params["resourceArn"])
        tags = _tags(params["tags"])
        if len({**self.store.tags(found.account, found.region, found.name), **tags}) > MAX_TAGS:
            raise AwsError("TooManyTagsException", f"A maximum of {MAX_TAGS} tags can be applied to a repository.")
        self.store.add_tags(found.account, found.region, found.name, tags)
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._from_arn(ctx, params["resourceArn"])
        self.store.remove_tags(found.account, found.region, found.name, params["tagKeys"])
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._from_arn(ctx, params["resourceArn"])
        return {"tags": [{"Key": k, "Value": v} for k, v in self.store.tags(found.account, found.region,
                                                                           found.name).items()]}
