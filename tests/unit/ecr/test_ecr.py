"""ECR repositories through a botocore client wired to the gateway: create, describe, settings, policies,
tags, the empty image list, and AWS's errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.unit.aws.driver import ACCOUNT, gateway_client, make_gateway

from hearth.services.ecr.provider import EcrProvider
from hearth.services.ecr.repositories import RepositoryStore


@pytest.fixture
def ecr(tmp_path: Path) -> Iterator[Any]:
    store = RepositoryStore(tmp_path)
    yield gateway_client(make_gateway(tmp_path, {"ecr": [EcrProvider(store)]}), "ecr")
    store.close()


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_a_repository_is_created_described_and_deleted(ecr: Any) -> None:
    made = ecr.create_repository(repositoryName="team/app", imageTagMutability="IMMUTABLE",
                                 imageScanningConfiguration={"scanOnPush": True},
                                 tags=[{"Key": "k", "Value": "v"}])["repository"]
    assert made["repositoryArn"] == f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/app"
    assert made["repositoryUri"] == f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/team/app"
    assert made["registryId"] == ACCOUNT and made["imageTagMutability"] == "IMMUTABLE"
    assert made["imageScanningConfiguration"] == {"scanOnPush": True}
    assert made["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert ecr.describe_repositories()["repositories"] == [made]
    assert ecr.list_tags_for_resource(resourceArn=made["repositoryArn"])["tags"] == [{"Key": "k", "Value": "v"}]
    with pytest.raises(ClientError) as exc:
        ecr.create_repository(repositoryName="team/app")
    assert _code(exc) == ("RepositoryAlreadyExistsException",
                          f"The repository with name 'team/app' already exists in the registry with id '{ACCOUNT}'")
    assert ecr.delete_repository(repositoryName="team/app")["repository"]["repositoryName"] == "team/app"
    with pytest.raises(ClientError) as exc:
        ecr.describe_repositories(repositoryNames=["team/app"])
    assert _code(exc) == ("RepositoryNotFoundException",
                          f"The repository with name 'team/app' does not exist in the registry with id '{ACCOUNT}'")


def test_settings_policies_and_pages(ecr: Any) -> None:
    for name in ("a1", "b2", "c3"):
        ecr.create_repository(repositoryName=name)
    first = ecr.describe_repositories(maxResults=2)
    assert [r["repositoryName"] for r in first["repositories"]] == ["a1", "b2"]
    rest = ecr.describe_repositories(maxResults=2, nextToken=first["nextToken"])
    assert [r["repositoryName"] for r in rest["repositories"]] == ["c3"] and "nextToken" not in rest

    ecr.put_image_tag_mutability(repositoryName="a1", imageTagMutability="IMMUTABLE")
    ecr.put_image_scanning_configuration(repositoryName="a1", imageScanningConfiguration={"scanOnPush": True})
    a1 = ecr.describe_repositories(repositoryNames=["a1"])["repositories"][0]
    assert (a1["imageTagMutability"], a1["imageScanningConfiguration"]) == ("IMMUTABLE", {"scanOnPush": True})

    with pytest.raises(ClientError) as exc:
        ecr.get_lifecycle_policy(repositoryName="a1")
    assert _code(exc)[0] == "LifecyclePolicyNotFoundException"
    rules = json.dumps({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType":
                                   "sinceImagePushed", "countUnit": "days", "countNumber": 1},
                                   "action": {"type": "expire"}}]})
    ecr.put_lifecycle_policy(repositoryName="a1", lifecyclePolicyText=rules)
    assert ecr.get_lifecycle_policy(repositoryName="a1")["lifecyclePolicyText"] == rules
    with pytest.raises(ClientError) as exc:
        ecr.set_repository_policy(repositoryName="a1", policyText="not json")
    assert _code(exc)[0] == "InvalidParameterException"
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    ecr.set_repository_policy(repositoryName="a1", policyText=policy)
    assert ecr.delete_repository_policy(repositoryName="a1")["policyText"] == policy
    with pytest.raises(ClientError) as exc:
        ecr.get_repository_policy(repositoryName="a1")
    assert _code(exc)[0] == "RepositoryPolicyNotFoundException"


def test_no_images_are_ever_stored(ecr: Any) -> None:
    ecr.create_repository(repositoryName="empty")
    assert ecr.describe_images(repositoryName="empty")["imageDetails"] == []
    assert ecr.list_images(repositoryName="empty")["imageIds"] == []
    with pytest.raises(ClientError) as exc:
        ecr.describe_images(repositoryName="empty", imageIds=[{"imageTag": "latest"}])
    assert _code(exc)[0] == "ImageNotFoundException"
    with pytest.raises(ClientError) as exc:
        ecr.list_images(repositoryName="missing")
    assert _code(exc)[0] == "RepositoryNotFoundException"
