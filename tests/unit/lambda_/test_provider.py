"""LambdaProvider called directly: lifecycle, errors and limits as AWS answers them."""

from __future__ import annotations

import base64
import hashlib
import io
import urllib.parse
import zipfile
from typing import Any

import pytest
from tests.unit.lambda_.helpers import ACCOUNT, APP, OTHER, ROLE, Env, ctx, make_zip

from hearth.aws.errors import AwsError
from hearth.functions.errors import FunctionsError
from hearth.invoke.limiter import ConcurrencyLimiter
from hearth.services.lambda_.code_url import serve_code_download
from hearth.services.lambda_.concurrency import ConcurrencyProvider
from hearth.services.lambda_.errors import to_aws

ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function"


def err(exc: pytest.ExceptionInfo[AwsError] | pytest.ExceptionInfo[FunctionsError]) -> tuple[str, str, int]:
    """(code, message, status) as the caller sees it (a domain error as the Lambda providers map it)."""
    value = exc.value if isinstance(exc.value, AwsError) else to_aws(exc.value)
    return value.code, value.message, value.status


async def test_create_returns_pending_then_active(env: Env) -> None:
    code = make_zip({"app.py": APP})
    created = await env.create(
        "life",
        Code={"ZipFile": code},
        Description="d",
        Timeout=5,
        MemorySize=256,
        Environment={"Variables": {"A": "1"}},
        Tags={"team": "x"},
    )
    assert created["FunctionArn"] == f"{ARN}:life"
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
    assert created["CodeSize"] == len(code)
    assert (created["State"], created["StateReasonCode"]) == ("Pending", "Creating")
    assert created["StateReason"] == "The function is being created."
    assert "LastUpdateStatus" not in created
    assert created["Version"] == "$LATEST" and created["PackageType"] == "Zip"
    assert created["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/life"}
    assert created["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    assert created["EphemeralStorage"] == {"Size": 512} and created["TracingConfig"] == {
        "Mode": "PassThrough"
    }
    assert created["Environment"] == {"Variables": {"A": "1"}}
    assert created["LastModified"].endswith("+0000") and len(created["LastModified"]) == 28
    await env.settle()
    got = env.provider.get_function(ctx(), {"FunctionName": "life"})
    cfg = got["Configuration"]
    assert (cfg["State"], cfg["LastUpdateStatus"]) == ("Active", "Successful")
    assert "StateReason" not in cfg
    assert cfg["RevisionId"] != created["RevisionId"]  # the transition is a change, as on AWS
    assert got["Tags"] == {"team": "x"}
    assert got["Code"]["RepositoryType"] == "S3"


async def test_defaults_and_no_tags_key_when_untagged(env: Env) -> None:
    created = await env.create("plain")
    assert (created["Timeout"], created["MemorySize"], created["Description"]) == (3, 128, "")
    assert "Environment" not in created  # AWS leaves the member out for a function created without one
    await env.settle()
    assert "Tags" not in env.provider.get_function(ctx(), {"FunctionName": "plain"})


async def test_code_location_downloads_the_archive(env: Env) -> None:
    code = make_zip({"app.py": APP})
    await env.create("dl", Code={"ZipFile": code})
    url = env.provider.get_function(ctx(), {"FunctionName": "dl"})["Code"]["Location"]
    parts = urllib.parse.urlsplit(url)
    assert url.startswith("http://127.0.0.1:4566/_hearth/code/000000000000/")
    status, headers, body = await serve_code_download(
        env.provider._signer, env.blobs, parts.path, parts.query
    )
    assert (status, headers["content-type"], body) == (200, "application/zip", code)
    tampered = parts.query.replace("signature=", "signature=0")
    status, _, body = await serve_code_download(env.provider._signer, env.blobs, parts.path, tampered)
    assert status == 403 and b"SignatureDoesNotMatch" in body
    other_account = parts.path.replace(ACCOUNT, OTHER)
    status, _, _ = await serve_code_download(env.provider._signer, env.blobs, other_account, parts.query)
    assert status == 403


async def test_missing_function_errors_match_aws(env: Env) -> None:
    for op in (
        env.provider.get_function,
        env.provider.get_function_configuration,
        env.provider.delete_function,
    ):
        with pytest.raises(AwsError) as exc:
            op(ctx(), {"FunctionName": "nope"})
        assert err(exc) == ("ResourceNotFoundException", f"Function not found: {ARN}:nope", 404)
        assert exc.value.message_key == "Message" and exc.value.fields == {"Type": "User"}
    with pytest.raises(AwsError) as exc:
        env.provider.get_function(ctx(), {"FunctionName": "nope", "Qualifier": "$LATEST"})
    assert err(exc)[1] == f"Function not found: {ARN}:nope:$LATEST"


async def test_duplicate_create_conflicts(env: Env) -> None:
    await env.create("dupe")
    with pytest.raises(AwsError) as exc:
        await env.create("dupe")
    assert err(exc) == ("ResourceConflictException", "Function already exist: dupe", 409)


async def test_create_by_arn_and_partial_arn(env: Env) -> None:
    a = await env.create(f"{ARN}:by-arn")
    b = await env.create(f"{ACCOUNT}:function:by-partial")
    assert (a["FunctionName"], b["FunctionName"]) == ("by-arn", "by-partial")


@pytest.mark.parametrize("runtime", ["python3.7", "nodejs12.x", "go1.x", "provided"])
async def test_deprecated_runtime_refused(env: Env, runtime: str) -> None:
    with pytest.raises(AwsError) as exc:
        await env.create("old", Runtime=runtime)
    assert err(exc) == (
        "InvalidParameterValueException",
        f"The runtime parameter of {runtime} is no longer supported for creating or updating AWS "
        "Lambda functions. We recommend you use a supported runtime while creating or updating "
        "functions.",
        400,
    )


async def test_unknown_runtime_refused_with_aws_enum_text(env: Env) -> None:
    with pytest.raises(AwsError) as exc:
        await env.create("x", Runtime="PYTHON3.9")
    assert exc.value.message.startswith(
        "Value PYTHON3.9 at 'runtime' failed to satisfy constraint: Member must "
        "satisfy enum value set: [nodejs20.x, python3.14, provided.al2023,"
    )
    assert exc.value.message.endswith("] or be a valid ARN")


async def test_runtime_not_installed_fails_with_reason(env: Env) -> None:
    await env.create("noruntime", Runtime="java21", Handler="x::y")
    await env.settle()
    cfg = env.provider.get_function_configuration(ctx(), {"FunctionName": "noruntime"})
    assert (cfg["State"], cfg["StateReasonCode"], cfg["LastUpdateStatus"]) == (
        "Failed",
        "InvalidRuntime",
        "Failed",
    )
    assert "python3.11" in cfg["StateReason"]
    assert env.functions.resolve(ACCOUNT, "us-east-1", "noruntime", None).state == "Failed"


async def test_memory_above_aws_limit_is_a_validation_error(env: Env) -> None:
    with pytest.raises(AwsError) as exc:
        await env.create("big", MemorySize=10241)
    assert err(exc) == (
        "ValidationException",
        "1 validation error detected: Value '10241' at 'memorySize' failed "
        "to satisfy constraint: Member must have value less than or equal to 10240",
        400,
    )


async def test_long_name_refused_as_aws(env: Env) -> None:
    with pytest.raises(AwsError) as exc:
        await env.create("a" * 65)
    assert err(exc)[0] == "InvalidParameterValueException"
    assert err(exc)[1].endswith(
        "at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 64"
    )


async def test_env_reserved_keys_and_size(env: Env) -> None:
    with pytest.raises(AwsError) as exc:
        await env.create(
            "e1", Environment={"Variables": {"AWS_REGION": "x", "OK": "1", "AWS_SESSION_TOKEN": "t"}}
        )
    assert err(exc)[1] == (
        "Lambda was unable to configure your environment variables because the environment variables "
        "you have provided contains reserved keys that are currently not supported for modification. "
        "Reserved keys used in this request: AWS_REGION, AWS_SESSION_TOKEN"
    )
    variables = {"SMALL_VAR": "ok", "LARGE_VAR": "x" * 4096}
    with pytest.raises(AwsError) as exc:
        await env.create("e2", Environment={"Variables": variables})
    assert err(exc)[1] == (
        "Lambda was unable to configure your environment variables because the environment variables "
        'you have provided exceeded the 4KB limit. String measured: {"SMALL_VAR":"ok","LARGE_VAR":"'
        + "x" * 4096
        + '"}'
    )
    # Just under the limit is accepted: {"K":"..."} is 8 bytes of syntax.
    await env.create("e3", Environment={"Variables": {"K": "x" * (4096 - 8)}})


async def test_zip_errors(env: Env) -> None:
    with pytest.raises(AwsError) as exc:
        await env.create("z1", Code={"ZipFile": b"this is not a zip"})
    assert err(exc) == (
        "InvalidParameterValueException",
        "Could not unzip uploaded file. Please check your file, then try to upload again.",
        400,
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        link = zipfile.ZipInfo("evil")
        link.external_attr = (0o120777) << 16
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(AwsError) as exc:
        await env.create("z2", Code={"ZipFile": buf.getvalue()})
    assert err(exc)[0] == "InvalidParameterValueException"
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(2):
            zf.writestr(f"zeros{i}", b"\0" * 140_000_000)
    with pytest.raises(AwsError) as exc:
        await env.create("z3", Code={"ZipFile": bomb.getvalue()})
    assert err(exc) == (
        "InvalidParameterValueException",
        "Unzipped size must be smaller than 262144000 bytes",
        400,
    )
    assert env.provider.list_functions(ctx(), {})["Functions"] == []


async def test_size_limits(env: Env) -> None:
    with pytest.raises(AwsError) as exc:
        await env.provider.create_function(ctx(body=b"x" * 70_167_212), {"FunctionName": "f"})
    assert err(exc) == (
        "RequestEntityTooLargeException",
        "Request must be smaller than 70167211 bytes for the CreateFunction operation",
        413,
    )
    with pytest.raises(AwsError) as exc:
        await env.create("f", Code={"ZipFile": b"PK" + b"\0" * 52_428_800})
    assert err(exc) == (
        "RequestEntityTooLargeException",
        "Zipped size must be smaller than 52428800 bytes",
        413,
    )


async def test_s3_code_is_refused_clearly(env: Env) -> None:
    with pytest.raises(AwsError) as exc:
        await env.create("s3", Code={"S3Bucket": "b", "S3Key": "k"})
    assert err(exc)[0] == "InvalidParameterValueException" and "S3" in err(exc)[1]


async def test_update_configuration_and_revision_ids(env: Env) -> None:
    await env.create("rev")
    await env.settle()
    cfg = env.provider.get_function_configuration(ctx(), {"FunctionName": "rev"})
    updated = env.provider.update_function_configuration(
        ctx(),
        {
            "FunctionName": "rev",
            "MemorySize": 512,
            "RevisionId": cfg["RevisionId"],
            "Environment": {"Variables": {"B": "2"}},
            "Description": "new",
        },
    )
    assert updated["MemorySize"] == 512 and updated["RevisionId"] != cfg["RevisionId"]
    assert (updated["LastUpdateStatus"], updated["LastUpdateStatusReasonCode"]) == ("InProgress", "Creating")
    assert updated["State"] == "Active"
    # While the update is in progress, a second one is refused as on AWS.
    with pytest.raises(AwsError) as exc:
        env.provider.update_function_configuration(ctx(), {"FunctionName": "rev", "Timeout": 9})
    assert err(exc) == (
        "ResourceConflictException",
        f"The operation cannot be performed at this time. An update is in progress for resource: {ARN}:rev",
        409,
    )
    await env.settle()
    after = env.provider.get_function_configuration(ctx(), {"FunctionName": "rev"})
    assert after["LastUpdateStatus"] == "Successful" and after["Environment"] == {"Variables": {"B": "2"}}
    with pytest.raises(AwsError) as exc:
        env.provider.update_function_configuration(
            ctx(), {"FunctionName": "rev", "Timeout": 9, "RevisionId": cfg["RevisionId"]}
        )
    assert err(exc) == (
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest "
        "Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
        412,
    )


async def test_update_while_pending_is_refused(env: Env) -> None:
    await env.create("pend")
    with pytest.raises(AwsError) as exc:
        env.provider.update_function_configuration(ctx(), {"FunctionName": "pend", "Timeout": 9})
    assert err(exc)[1] == (
        "The operation cannot be performed at this time. The function is currently in the "
        "following state: Pending"
    )


async def test_update_code(env: Env) -> None:
    await env.create("code")
    await env.settle()
    new = make_zip({"app.py": APP + "# v2\n"})
    dry = await env.provider.update_function_code(
        ctx(), {"FunctionName": "code", "ZipFile": new, "DryRun": True}
    )
    assert dry["CodeSha256"] == base64.b64encode(hashlib.sha256(new).digest()).decode()
    assert not env.blobs.exists(hashlib.sha256(new).hexdigest())
    before = env.functions.resolve(ACCOUNT, "us-east-1", "code", None)
    upd = await env.provider.update_function_code(ctx(), {"FunctionName": "code", "ZipFile": new})
    assert upd["LastUpdateStatus"] == "InProgress"
    # Invocations keep the previous code until the new one is ready.
    assert env.functions.resolve(ACCOUNT, "us-east-1", "code", None) == before
    await env.settle()
    after = env.functions.resolve(ACCOUNT, "us-east-1", "code", None)
    assert after.code_sha256 == hashlib.sha256(new).hexdigest()
    assert (after.code_dir / "app.py").read_text().endswith("# v2\n")
    with pytest.raises(AwsError) as exc:
        await env.provider.update_function_code(ctx(), {"FunctionName": "code", "ZipFile": b"junk"})
    assert err(exc)[0] == "InvalidParameterValueException"


async def test_list_functions_paginates_in_name_order(env: Env) -> None:
    for i in (3, 0, 4, 1, 2):
        await env.create(f"page-{i}")
    names: list[str] = []
    marker: str | None = None
    while True:
        params: dict[str, Any] = {"MaxItems": 2}
        if marker:
            params["Marker"] = marker
        page = env.provider.list_functions(ctx(), params)
        assert len(page["Functions"]) <= 2
        names += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert names == [f"page-{i}" for i in range(5)]
    # As AWS documents, listed entries carry no state fields (GetFunction has them).
    entry = env.provider.list_functions(ctx(), {})["Functions"][0]
    assert "State" not in entry and "LastUpdateStatus" not in entry and entry["Version"] == "$LATEST"


async def test_delete_and_qualifiers(env: Env) -> None:
    await env.create("del")
    with pytest.raises(AwsError) as exc:
        env.provider.delete_function(ctx(), {"FunctionName": "del", "Qualifier": "$LATEST"})
    assert err(exc)[1] == "$LATEST version cannot be deleted without deleting the function."
    with pytest.raises(AwsError) as exc:
        env.provider.delete_function(ctx(), {"FunctionName": "del", "Qualifier": "alias"})
    assert err(exc)[1] == "Deletion of aliases is not currently supported."
    with pytest.raises(AwsError) as exc:
        env.provider.get_function(ctx(), {"FunctionName": "del:$LATEST", "Qualifier": "1"})
    assert (
        err(exc)[1] == "The derived qualifier from the function name does not match the specified qualifier."
    )
    events: list[tuple[str, str]] = []
    env.functions.add_listener(lambda event, fv: events.append((event, fv.name)))
    assert env.provider.delete_function(ctx(), {"FunctionName": "del"}) == {"StatusCode": 204}
    assert events == [("deleted", "del")]
    with pytest.raises(FunctionsError) as exc:
        env.functions.resolve(ACCOUNT, "us-east-1", "del", None)
    assert err(exc)[1] == f"Function not found: {ARN}:del:$LATEST"


async def test_accounts_and_regions_are_isolated(env: Env) -> None:
    await env.create("private")
    assert env.provider.list_functions(ctx(OTHER), {})["Functions"] == []
    with pytest.raises(AwsError) as exc:
        env.provider.get_function(ctx(OTHER), {"FunctionName": "private"})
    assert err(exc)[:1] == ("ResourceNotFoundException",)
    with pytest.raises(AwsError) as exc:
        env.provider.delete_function(ctx(OTHER), {"FunctionName": f"{ARN}:private"})
    assert (exc.value.code, exc.value.status) == ("AccessDeniedException", 403)
    with pytest.raises(FunctionsError) as exc:
        env.functions.resolve(OTHER, "us-east-1", f"{ARN}:private", None)
    assert to_aws(exc.value).status == 403
    with pytest.raises(AwsError) as exc:
        env.provider.get_function(
            ctx(), {"FunctionName": f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:private"}
        )
    assert err(exc) == (
        "ResourceNotFoundException",
        "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')",
        404,
    )
    assert env.provider.list_functions(ctx(region="eu-west-1"), {})["Functions"] == []
    env.provider.get_function(ctx(), {"FunctionName": "private"})


async def test_tagging_gives_latest_a_new_revision(env: Env) -> None:
    # As AWS (LocalStack's TestLambdaTags::test_tag_lifecycle): each TagResource and UntagResource
    # changes $LATEST's RevisionId, and nothing else of its configuration.
    arn = (await env.create("rev"))["FunctionArn"]
    await env.settle()
    seen = [env.provider.get_function(ctx(), {"FunctionName": "rev"})["Configuration"]]
    env.provider.tag_resource(ctx(), {"Resource": arn, "Tags": {"a": "1"}})
    seen.append(env.provider.get_function(ctx(), {"FunctionName": "rev"})["Configuration"])
    env.provider.untag_resource(ctx(), {"Resource": arn, "TagKeys": ["a"]})
    seen.append(env.provider.get_function(ctx(), {"FunctionName": "rev"})["Configuration"])
    assert len({c["RevisionId"] for c in seen}) == 3
    assert {c["LastModified"] for c in seen} == {seen[0]["LastModified"]} and seen[2]["State"] == "Active"


async def test_tags_and_account_settings(env: Env) -> None:
    cfg = await env.create("tagged")
    arn = cfg["FunctionArn"]
    env.provider.tag_resource(ctx(), {"Resource": arn, "Tags": {"a": "1", "b": "2"}})
    env.provider.untag_resource(ctx(), {"Resource": arn, "TagKeys": ["a"]})
    assert env.provider.list_tags(ctx(), {"Resource": arn}) == {"Tags": {"b": "2"}}
    with pytest.raises(AwsError) as exc:
        env.provider.tag_resource(ctx(), {"Resource": arn, "Tags": {}})
    assert err(exc)[1] == "An error occurred and the request cannot be processed."
    with pytest.raises(AwsError) as exc:
        env.provider.tag_resource(ctx(), {"Resource": arn + ":1", "Tags": {"a": "1"}})
    assert (
        err(exc)[1]
        == "Tags on function aliases and versions are not supported. Please specify a function ARN."
    )
    with pytest.raises(AwsError) as exc:
        env.provider.tag_resource(ctx(), {"Resource": arn, "Tags": {f"k{i}": "v" for i in range(50)}})
    assert err(exc)[1] == "Number of tags exceeds resource tag limit."
    with pytest.raises(AwsError) as exc:
        env.provider.list_tags(ctx(), {"Resource": f"{ARN}:doesnotexist"})
    assert err(exc)[1] == f"Function not found: {ARN}:doesnotexist"
    account = ConcurrencyProvider(env.functions, ConcurrencyLimiter(1000))
    settings = account.get_account_settings(ctx(), {})
    assert settings["AccountLimit"] == {
        "TotalCodeSize": 80530636800,
        "CodeSizeUnzipped": 262144000,
        "CodeSizeZipped": 52428800,
        "ConcurrentExecutions": 1000,
        "UnreservedConcurrentExecutions": 1000,
    }
    assert settings["AccountUsage"] == {"TotalCodeSize": cfg["CodeSize"], "FunctionCount": 1}
    lib = make_zip({"lib.py": "x = 1"})
    layer = await env.layers.publish_layer_version(ctx(), {"LayerName": "lib", "Content": {"ZipFile": lib}})
    assert account.get_account_settings(ctx(), {})["AccountUsage"]["TotalCodeSize"] == (
        cfg["CodeSize"] + layer["Content"]["CodeSize"])  # layers count too, as on AWS
    assert account.get_account_settings(ctx(OTHER), {})["AccountUsage"] == {
        "TotalCodeSize": 0,
        "FunctionCount": 0,
    }


async def test_json_logging_defaults_levels(env: Env) -> None:
    cfg = await env.create("jsonlog", LoggingConfig={"LogFormat": "JSON"})
    assert cfg["LoggingConfig"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
        "LogGroup": "/aws/lambda/jsonlog",
    }


async def test_role_is_kept(env: Env) -> None:
    cfg = await env.create("role")
    assert cfg["Role"] == ROLE
