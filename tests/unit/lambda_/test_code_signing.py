"""Code signing configurations: the nine operations answer as AWS does (LocalStack's AWS-validated
snapshots, TestCodeSigningConfig), survive a restart, and a deleted function's association goes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.lambda_.helpers import ACCOUNT, Env, ctx

from hearth.aws.errors import AwsError
from hearth.services.lambda_.code_signing import CodeSigningProvider, CodeSigningStore

PROFILE = f"arn:aws:signer:us-east-1:{ACCOUNT}:/signing-profiles/test"
FN_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function"


@pytest.fixture
def csc(env: Env) -> Iterator[CodeSigningProvider]:
    store = CodeSigningStore(env.data_dir)
    env.functions.add_listener(store.on_function_change)
    yield CodeSigningProvider(env.functions, store)
    store.close()


def create(csc: CodeSigningProvider, policy: str = "Enforce") -> dict[str, object]:
    out = csc.create_code_signing_config(ctx(), {
        "Description": "Testing CodeSigning Config", "AllowedPublishers": {"SigningProfileVersionArns": [PROFILE]},
        "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": policy}})
    config = out["CodeSigningConfig"]
    assert isinstance(config, dict)
    return config


def error(exc: pytest.ExceptionInfo[AwsError]) -> tuple[str, str, int, dict[str, object]]:
    return exc.value.code, exc.value.message, exc.value.status, exc.value.fields


async def test_the_lifecycle_answers_as_aws(env: Env, csc: CodeSigningProvider) -> None:
    await env.create("fn")
    config = create(csc)
    arn = str(config["CodeSigningConfigArn"])
    assert re.fullmatch(rf"arn:aws:lambda:us-east-1:{ACCOUNT}:code-signing-config:csc-[a-z0-9]{{17}}", arn)
    assert config["CodeSigningConfigId"] == arn.rsplit(":", 1)[1]
    assert config["AllowedPublishers"] == {"SigningProfileVersionArns": [PROFILE]}
    assert config["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", str(config["LastModified"]))

    updated = csc.update_code_signing_config(ctx(), {"CodeSigningConfigArn": arn,
                                                     "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Warn"}})
    assert updated["CodeSigningConfig"]["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Warn"}
    assert updated["CodeSigningConfig"]["Description"] == "Testing CodeSigning Config"  # untouched
    assert csc.get_code_signing_config(ctx(), {"CodeSigningConfigArn": arn}) == updated

    assert csc.get_function_code_signing_config(ctx(), {"FunctionName": "fn"}) == {}  # none yet: empty 200
    put = csc.put_function_code_signing_config(ctx(), {"CodeSigningConfigArn": arn, "FunctionName": "fn"})
    assert put == {"CodeSigningConfigArn": arn, "FunctionName": "fn"}
    assert csc.get_function_code_signing_config(ctx(), {"FunctionName": f"{FN_ARN}:fn"}) == put
    assert csc.list_code_signing_configs(ctx(), {})["CodeSigningConfigs"] == [updated["CodeSigningConfig"]]
    assert csc.list_functions_by_code_signing_config(ctx(), {"CodeSigningConfigArn": arn}) == {
        "FunctionArns": [f"{FN_ARN}:fn"]}

    with pytest.raises(AwsError) as exc:  # still used by fn
        csc.delete_code_signing_config(ctx(), {"CodeSigningConfigArn": arn})
    assert (exc.value.code, exc.value.status) == ("ResourceConflictException", 409)
    assert csc.delete_function_code_signing_config(ctx(), {"FunctionName": "fn"}) == {}
    assert csc.delete_function_code_signing_config(ctx(), {"FunctionName": "fn"}) == {}  # nothing to delete
    assert csc.delete_code_signing_config(ctx(), {"CodeSigningConfigArn": arn}) == {}
    assert csc.list_code_signing_configs(ctx(), {}) == {"CodeSigningConfigs": []}


async def test_missing_resources_answer_as_aws(env: Env, csc: CodeSigningProvider) -> None:
    await env.create("fn")
    arn = str(create(csc)["CodeSigningConfigArn"])
    invalid = arn[:-1] + ("x" if arn[-1] != "x" else "y")
    not_found = ("ResourceNotFoundException", f"The Lambda code signing configuration {invalid} can not be found.",
                 404, {"Type": None})  # None: AWS's body carries no Type (the renderer's default is "User")
    for call in (csc.delete_code_signing_config, csc.get_code_signing_config,
                 csc.update_code_signing_config, csc.list_functions_by_code_signing_config):
        with pytest.raises(AwsError) as exc:
            call(ctx(), {"CodeSigningConfigArn": invalid})
        assert error(exc) == not_found
        assert exc.value.message_key == "Message"
    no_function = ("ResourceNotFoundException", f"Function not found: {FN_ARN}:csc-test-doesnotexist", 404,
                   {"Type": "User"})
    for call in (csc.delete_function_code_signing_config, csc.get_function_code_signing_config):
        with pytest.raises(AwsError) as exc:
            call(ctx(), {"FunctionName": "csc-test-doesnotexist"})
        assert error(exc) == no_function
    with pytest.raises(AwsError) as exc:
        csc.put_function_code_signing_config(ctx(), {"FunctionName": "csc-test-doesnotexist",
                                                     "CodeSigningConfigArn": arn})
    assert error(exc) == no_function
    missing_csc = ("CodeSigningConfigNotFoundException", "The code signing configuration cannot be found. Check "
                   f"that the provided configuration is not deleted: {invalid}.", 404, {"Type": "User"})
    for name in ("fn", "csc-test-doesnotexist"):  # the configuration is named first, even when both are missing
        with pytest.raises(AwsError) as exc:
            csc.put_function_code_signing_config(ctx(), {"FunctionName": name, "CodeSigningConfigArn": invalid})
        assert error(exc) == missing_csc
    with pytest.raises(AwsError) as exc:
        csc.get_function_code_signing_config(ctx(region="eu-west-1"), {"FunctionName": f"{FN_ARN}:fn"})
    assert exc.value.message == "Functions from 'us-east-1' are not reachable in this region ('eu-west-1')"
    # An update naming nothing answers the configuration unchanged.
    same = csc.get_code_signing_config(ctx(), {"CodeSigningConfigArn": arn})
    assert csc.update_code_signing_config(ctx(), {"CodeSigningConfigArn": arn}) == same
    assert csc.list_functions_by_code_signing_config(ctx(), {"CodeSigningConfigArn": arn}) == {"FunctionArns": []}
    # Another account or region does not see it.
    with pytest.raises(AwsError):
        csc.get_code_signing_config(ctx(account="111111111111"), {"CodeSigningConfigArn": arn})


async def test_stored_durably_and_forgotten_with_the_function(env: Env, csc: CodeSigningProvider,
                                                              tmp_path: Path) -> None:
    await env.create("fn")
    await env.settle()
    arn = str(create(csc, "Warn")["CodeSigningConfigArn"])
    csc.put_function_code_signing_config(ctx(), {"CodeSigningConfigArn": arn, "FunctionName": "fn"})
    reopened = CodeSigningStore(env.data_dir)  # another connection sees what was acknowledged
    try:
        assert reopened.function_config(ACCOUNT, "us-east-1", "fn") == arn
        assert [r["arn"] for r in reopened.configs(ACCOUNT, "us-east-1")] == [arn]
    finally:
        reopened.close()
    env.provider.delete_function(ctx(), {"FunctionName": "fn"})
    assert csc.list_functions_by_code_signing_config(ctx(), {"CodeSigningConfigArn": arn}) == {"FunctionArns": []}
    assert csc.delete_code_signing_config(ctx(), {"CodeSigningConfigArn": arn}) == {}


async def test_lists_page(env: Env, csc: CodeSigningProvider) -> None:
    arns = [create(csc)["CodeSigningConfigArn"] for _ in range(3)]
    first = csc.list_code_signing_configs(ctx(), {"MaxItems": 2})
    assert [c["CodeSigningConfigArn"] for c in first["CodeSigningConfigs"]] == arns[:2]
    rest = csc.list_code_signing_configs(ctx(), {"MaxItems": 2, "Marker": first["NextMarker"]})
    assert [c["CodeSigningConfigArn"] for c in rest["CodeSigningConfigs"]] == arns[2:]
    assert "NextMarker" not in rest


def test_through_the_gateway_with_botocore(tmp_path: Path) -> None:
    """AWS's statuses (201 on create, 204 on delete) and bodies, as botocore parses them."""
    from tests.unit.aws.driver import gateway_client, make_gateway
    from tests.unit.lambda_.helpers import build

    env = build(tmp_path / "data")
    store = CodeSigningStore(env.data_dir)
    try:
        gateway = make_gateway(tmp_path, {"lambda": [CodeSigningProvider(env.functions, store)]})
        client = gateway_client(gateway, "lambda")
        created = client.create_code_signing_config(
            AllowedPublishers={"SigningProfileVersionArns": [PROFILE]},
            CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"})
        assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
        arn = created["CodeSigningConfig"]["CodeSigningConfigArn"]
        assert created["CodeSigningConfig"]["Description"] == ""
        assert client.list_code_signing_configs()["CodeSigningConfigs"][0]["CodeSigningConfigArn"] == arn
        missing = arn[:-1] + ("x" if arn[-1] != "x" else "y")
        with pytest.raises(client.exceptions.ResourceNotFoundException) as exc:
            client.get_code_signing_config(CodeSigningConfigArn=missing)
        assert exc.value.response["Error"]["Message"] == (
            f"The Lambda code signing configuration {missing} can not be found.")
        deleted = client.delete_code_signing_config(CodeSigningConfigArn=arn)
        assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    finally:
        store.close()
        env.store.close()
