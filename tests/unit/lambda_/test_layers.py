"""Layers: publishing, listing, deleting, permissions, and functions referencing layer versions."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from typing import Any

import pytest
from tests.unit.lambda_.helpers import ACCOUNT, OTHER, Env, ctx, make_zip

from hearth.aws.errors import AwsError
from hearth.store import blobs as blobs_mod

LAYER = f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer"
REGION = "us-east-1"


def err(exc: pytest.ExceptionInfo[AwsError]) -> tuple[str, str, int]:
    return exc.value.code, exc.value.message, exc.value.status


async def publish(env: Env, name: str = "lib", files: dict[str, str | bytes] | None = None,
                  account: str = ACCOUNT, **extra: Any) -> dict[str, Any]:
    content = make_zip(files or {"python/lib.py": "X = 1\n"})
    params: dict[str, Any] = {"LayerName": name, "Content": {"ZipFile": content}}
    params.update(extra)
    return await env.layers.publish_layer_version(ctx(account), params)


async def test_publish_get_list_delete(env: Env) -> None:
    code = make_zip({"python/lib.py": "X = 1\n"})
    out = await env.layers.publish_layer_version(ctx(), {
        "LayerName": "lib", "Content": {"ZipFile": code}, "CompatibleRuntimes": ["python3.11"],
        "CompatibleArchitectures": ["x86_64"], "Description": "d", "LicenseInfo": "MIT",
    })
    assert (out["LayerArn"], out["LayerVersionArn"], out["Version"]) == (f"{LAYER}:lib", f"{LAYER}:lib:1", 1)
    assert out["Content"]["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
    assert out["Content"]["CodeSize"] == len(code) and "/_hearth/code/" in out["Content"]["Location"]
    assert (out["CompatibleRuntimes"], out["LicenseInfo"], out["Description"]) == (["python3.11"], "MIT", "d")
    empty = await publish(env, "bare")
    # Not named: left out, as AWS; named empty: answered empty (LocalStack's test_layer_s3_content, _exceptions)
    assert "CompatibleRuntimes" not in empty and "CompatibleArchitectures" not in empty
    named_empty = await publish(env, "bare2", CompatibleRuntimes=[], CompatibleArchitectures=[])
    assert (named_empty["CompatibleRuntimes"], named_empty["CompatibleArchitectures"]) == ([], [])
    assert (await publish(env, "lib", CompatibleRuntimes=["nodejs20.x"]))["Version"] == 2
    assert env.layers.get_layer_version(ctx(), {"LayerName": "lib", "VersionNumber": 1}) == out
    assert env.layers.get_layer_version_by_arn(ctx(), {"Arn": f"{LAYER}:lib:1"}) == out
    listed = env.layers.list_layer_versions(ctx(), {"LayerName": "lib"})["LayerVersions"]
    assert [v["Version"] for v in listed] == [2, 1]
    py = env.layers.list_layer_versions(ctx(), {"LayerName": "lib", "CompatibleRuntime": "python3.11"})
    assert [v["Version"] for v in py["LayerVersions"]] == [1]
    layers = env.layers.list_layers(ctx(), {})["Layers"]
    assert [(x["LayerName"], x["LatestMatchingVersion"]["Version"]) for x in layers] == [("bare", 1), ("bare2", 1),
                                                                                   ("lib", 2)]
    only_py = env.layers.list_layers(ctx(), {"CompatibleRuntime": "python3.11"})["Layers"]
    assert [(x["LayerName"], x["LatestMatchingVersion"]["Version"]) for x in only_py] == [("lib", 1)]
    assert env.layers.list_layer_versions(ctx(), {"LayerName": "nothing"}) == {"LayerVersions": []}
    env.layers.delete_layer_version(ctx(), {"LayerName": "lib", "VersionNumber": 2})
    env.layers.delete_layer_version(ctx(), {"LayerName": "lib", "VersionNumber": 2})  # idempotent: 204
    assert (await publish(env, "lib"))["Version"] == 3  # numbers are never reused
    for version, expected in ((0, ("InvalidParameterValueException", "Layer Version Cannot be less than 1", 400)),
                              (2, ("ResourceNotFoundException", "The resource you requested does not exist.", 404))):
        with pytest.raises(AwsError) as exc:
            env.layers.get_layer_version(ctx(), {"LayerName": "lib", "VersionNumber": version})
        assert err(exc) == expected
    with pytest.raises(AwsError) as exc:
        await env.layers.publish_layer_version(ctx(), {"LayerName": "s3", "Content": {"S3Bucket": "b", "S3Key": "k"}})
    assert exc.value.code == "InvalidParameterValueException" and "ZipFile" in exc.value.message


async def test_layer_permissions(env: Env) -> None:
    await publish(env)
    with pytest.raises(AwsError) as exc:
        env.layers.get_layer_version_policy(ctx(), {"LayerName": "lib", "VersionNumber": 1})
    assert err(exc) == ("ResourceNotFoundException", "No policy is associated with the given resource.", 404)
    with pytest.raises(AwsError) as exc:  # another account cannot read it yet
        env.layers.get_layer_version_by_arn(ctx(OTHER), {"Arn": f"{LAYER}:lib:1"})
    assert exc.value.code == "AccessDeniedException"
    added = env.layers.add_layer_version_permission(ctx(), {
        "LayerName": "lib", "VersionNumber": 1, "StatementId": "s1", "Action": "lambda:GetLayerVersion",
        "Principal": "*"})
    assert json.loads(added["Statement"]) == {"Sid": "s1", "Effect": "Allow", "Principal": "*",
                                              "Action": "lambda:GetLayerVersion", "Resource": f"{LAYER}:lib:1"}
    assert env.layers.get_layer_version_by_arn(ctx(OTHER), {"Arn": f"{LAYER}:lib:1"})["Version"] == 1
    with pytest.raises(AwsError) as exc:
        env.layers.add_layer_version_permission(ctx(), {
            "LayerName": "lib", "VersionNumber": 1, "StatementId": "s1", "Action": "lambda:GetLayerVersion",
            "Principal": "*"})
    assert err(exc)[0::2] == ("ResourceConflictException", 409) and "(s1)" in exc.value.message
    for call in ("add", "remove"):
        with pytest.raises(AwsError) as exc:
            if call == "add":
                env.layers.add_layer_version_permission(ctx(), {
                    "LayerName": "lib", "VersionNumber": 1, "StatementId": "s2", "Action": "lambda:GetLayerVersion",
                    "Principal": "*", "RevisionId": "wrong"})
            else:
                env.layers.remove_layer_version_permission(ctx(), {
                    "LayerName": "lib", "VersionNumber": 1, "StatementId": "s1", "RevisionId": "wrong"})
        assert err(exc) == ("PreconditionFailedException", "The Revision Id provided does not match the latest "
                            "Revision Id. Call the GetLayerPolicy API to retrieve the latest Revision Id", 412)
    with pytest.raises(AwsError) as exc:
        env.layers.get_layer_version_policy(ctx(), {"LayerName": "lib", "VersionNumber": 2})
    assert err(exc) == ("ResourceNotFoundException", f"Layer version {LAYER}:lib:2 does not exist.", 404)
    with pytest.raises(AwsError) as exc:
        env.layers.remove_layer_version_permission(ctx(), {"LayerName": "lib", "VersionNumber": 1,
                                                           "StatementId": "doesnotexist"})
    assert err(exc) == ("ResourceNotFoundException", "Statement doesnotexist is not found in resource policy.", 404)
    with pytest.raises(AwsError) as exc:
        env.layers.add_layer_version_permission(ctx(), {
            "LayerName": "lib", "VersionNumber": 1, "StatementId": "org", "Action": "lambda:GetLayerVersion",
            "Principal": "*", "OrganizationId": "o-abcdefghij"})
    assert exc.value.code == "InvalidParameterValueException"
    policy = env.layers.get_layer_version_policy(ctx(), {"LayerName": "lib", "VersionNumber": 1})
    env.layers.remove_layer_version_permission(ctx(), {"LayerName": "lib", "VersionNumber": 1, "StatementId": "s1",
                                                       "RevisionId": policy["RevisionId"]})
    with pytest.raises(AwsError):
        env.layers.get_layer_version_by_arn(ctx(OTHER), {"Arn": f"{LAYER}:lib:1"})


async def test_functions_reference_layers(env: Env) -> None:
    one = await publish(env, "one", {"python/a.py": "A = 1\n", "bin/tool": "#!/bin/sh\n"})
    two = await publish(env, "two", {"python/a.py": "A = 2\n"})
    created = await env.create("fn", Layers=[one["LayerVersionArn"], two["LayerVersionArn"]])
    assert created["Layers"] == [{"Arn": one["LayerVersionArn"], "CodeSize": one["Content"]["CodeSize"]},
                                 {"Arn": two["LayerVersionArn"], "CodeSize": two["Content"]["CodeSize"]}]
    await env.settle()
    fv = env.functions.resolve(ACCOUNT, REGION, "fn", None)
    assert [(d / "python" / "a.py").read_text() for d in fv.layer_dirs] == ["A = 1\n", "A = 2\n"]
    assert all(stat.S_IMODE(d.stat().st_mode) == 0o755 for d in fv.layer_dirs)  # the sandbox user reads them
    env.layers.delete_layer_version(ctx(), {"LayerName": "one", "VersionNumber": 1})
    assert env.functions.resolve(ACCOUNT, REGION, "fn", None).layer_dirs == fv.layer_dirs  # kept, as AWS
    env.provider.update_function_configuration(ctx(), {"FunctionName": "fn", "Layers": [two["LayerVersionArn"]]})
    await env.settle()
    assert len(env.functions.resolve(ACCOUNT, REGION, "fn", None).layer_dirs) == 1
    env.provider.update_function_configuration(ctx(), {"FunctionName": "fn", "Layers": []})
    await env.settle()
    cfg = env.provider.get_function_configuration(ctx(), {"FunctionName": "fn"})
    assert "Layers" not in cfg and env.functions.resolve(ACCOUNT, REGION, "fn", None).layer_dirs == ()


async def test_layer_reference_errors(env: Env) -> None:
    lib = await publish(env, "lib")
    await publish(env, "lib")
    v1, v2 = f"{LAYER}:lib:1", f"{LAYER}:lib:2"
    cases: list[tuple[list[str], str]] = [
        ([v1, v2], "Two different versions of the same layer are not allowed to be referenced in the same "
                   f"function. {v1} and {v2} are versions of the same layer."),
        ([v1, v1], "Two different versions of the same layer are not allowed to be referenced in the same "
                   f"function. {v1} and {v1} are versions of the same layer."),
        ([f"{LAYER}:doesnotexist:1"], f"Layer version {LAYER}:doesnotexist:1 does not exist."),
        ([f"{LAYER}:lib:9"], f"Layer version {LAYER}:lib:9 does not exist."),
        ([f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:lib:1"],
         "Layers are not in the same region as the function. Layers are expected to be in region us-east-1."),
        ([lib["LayerVersionArn"]] * 6, "Cannot reference more than 5 layers."),
    ]
    for arns, message in cases:
        with pytest.raises(AwsError) as exc:
            await env.create("bad", Layers=arns)
        assert err(exc) == ("InvalidParameterValueException", message, 400)
    other = await publish(env, "theirs", account=OTHER)
    with pytest.raises(AwsError) as exc:
        await env.create("bad", Layers=[other["LayerVersionArn"]])
    assert exc.value.code == "AccessDeniedException"
    env.layers.add_layer_version_permission(ctx(OTHER), {
        "LayerName": "theirs", "VersionNumber": 1, "StatementId": "share", "Action": "lambda:GetLayerVersion",
        "Principal": ACCOUNT})
    ok = await env.create("good", Layers=[other["LayerVersionArn"]])
    assert ok["Layers"][0]["Arn"] == other["LayerVersionArn"]


async def test_code_and_layers_share_the_unzipped_limit(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    big = (await publish(env, "big", {"python/blob.txt": "x" * 600}))["LayerVersionArn"]
    big2 = (await publish(env, "big2", {"blob": "y" * 600}))["LayerVersionArn"]
    monkeypatch.setattr("hearth.functions.service.UNZIPPED_LIMIT", 1000)
    await env.create("fn", Layers=[big])  # code + 600 fits
    await env.settle()
    code_size = env.functions.get(ACCOUNT, REGION, "fn").code_unzipped_size
    assert code_size > 0
    with pytest.raises(AwsError) as exc:
        env.provider.update_function_configuration(ctx(), {"FunctionName": "fn", "Layers": [big, big2]})
    assert err(exc) == ("InvalidParameterValueException",
                        "Function code combined with layers exceeds the maximum allowed size of 1000 bytes. "
                        f"The actual size is {code_size + 1200} bytes.", 400)
    with pytest.raises(AwsError) as exc:  # new code is measured against the layers the function has
        await env.provider.update_function_code(ctx(), {"FunctionName": "fn",
                                                        "ZipFile": make_zip({"app.py": "z" * 500})})
    assert exc.value.message.endswith("The actual size is 1100 bytes.")
    assert blobs_mod.UNZIPPED_LIMIT == 262_144_000  # the real limit is untouched
