"""CloudFormation resource types of container images: ECR repositories (created through Hearth's ECR
API, which keeps repositories and their settings but no images)."""

from __future__ import annotations

from typing import Any

from hearth.services.cloudformation.resources.base import (
    Handler,
    Outcome,
    ResourceRequest,
    as_json,
    ignore_missing,
    tags_dict,
    tags_list,
)
from hearth.services.ecr.provider import repository_arn, repository_uri


class Repository(Handler):
    type = "AWS::ECR::Repository"
    attributes = ("Arn", "RepositoryUri")
    replace_on = frozenset({"RepositoryName", "EncryptionConfiguration"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        name = r.name("RepositoryName", 256, lower=True)
        encryption = p.get("EncryptionConfiguration") or {}
        await r.client("ecr", "CreateRepository", {
            "repositoryName": name, "imageTagMutability": p.get("ImageTagMutability"),
            "imageScanningConfiguration": _scanning(p),
            "encryptionConfiguration": {"encryptionType": encryption.get("EncryptionType", "AES256"),
                                        "kmsKey": encryption.get("KmsKey")} if encryption else None,
            "tags": tags_list(p.get("Tags")) or None})
        r.created = name
        await self._apply_policies(r, name, {})
        return self._outcome(r, name)

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        name, p = str(r.physical_id), r.properties
        await r.client("ecr", "PutImageTagMutability", {
            "repositoryName": name, "imageTagMutability": p.get("ImageTagMutability", "MUTABLE")})
        await r.client("ecr", "PutImageScanningConfiguration", {
            "repositoryName": name, "imageScanningConfiguration": _scanning(p) or {"scanOnPush": False}})
        await self._apply_policies(r, name, old)
        arn = repository_arn(r.region, r.account, name)
        new_tags, old_tags = tags_dict(p.get("Tags")), tags_dict(old.get("Tags"))
        if gone := [k for k in old_tags if k not in new_tags]:
            await r.client("ecr", "UntagResource", {"resourceArn": arn, "tagKeys": gone})
        if new_tags:
            await r.client("ecr", "TagResource", {"resourceArn": arn, "tags": tags_list(new_tags)})
        return self._outcome(r, name)

    async def delete(self, r: ResourceRequest) -> None:
        # `EmptyOnDelete` needs nothing: Hearth's repositories never hold images.
        await ignore_missing(r.client("ecr", "DeleteRepository", {"repositoryName": str(r.physical_id),
                                                                 "force": True}))

    @staticmethod
    async def _apply_policies(r: ResourceRequest, name: str, old: dict[str, Any]) -> None:
        lifecycle = (r.properties.get("LifecyclePolicy") or {}).get("LifecyclePolicyText")
        if lifecycle:
            await r.client("ecr", "PutLifecyclePolicy", {"repositoryName": name,
                                                         "lifecyclePolicyText": as_json(lifecycle)})
        elif (old.get("LifecyclePolicy") or {}).get("LifecyclePolicyText"):
            await ignore_missing(r.client("ecr", "DeleteLifecyclePolicy", {"repositoryName": name}))
        policy = r.properties.get("RepositoryPolicyText")
        if policy:
            await r.client("ecr", "SetRepositoryPolicy", {"repositoryName": name, "policyText": as_json(policy)})
        elif old.get("RepositoryPolicyText"):
            await ignore_missing(r.client("ecr", "DeleteRepositoryPolicy", {"repositoryName": name}))

    @staticmethod
    def _outcome(r: ResourceRequest, name: str) -> Outcome:
        return Outcome(name, {"Arn": repository_arn(r.region, r.account, name),
                              "RepositoryUri": repository_uri(r.region, r.account, name)})


def _scanning(props: dict[str, Any]) -> dict[str, Any] | None:
    given = props.get("ImageScanningConfiguration")
    return {"scanOnPush": given.get("ScanOnPush", False)} if given else None


HANDLERS: tuple[type[Handler], ...] = (Repository,)
