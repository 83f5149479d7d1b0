"""The whole function lifecycle through boto3 against a real server (issue: foundation)."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.harness import ROLE, HearthServer, create_function, make_zip, wait_active

pytestmark = pytest.mark.integration

APP = "def handler(event, context):\n    return {'ok': True}\n"


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_create_get_update_delete(lam: Any, server: HearthServer) -> None:
    code = make_zip({"app.py": APP})
    created = lam.create_function(FunctionName="life", Runtime="python3.11", Handler="app.handler", Role=ROLE,
                                  Code={"ZipFile": code}, Description="d", Timeout=5, MemorySize=256,
                                  Environment={"Variables": {"AA": "1"}}, Tags={"team": "x"})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:life"
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
    assert created["CodeSize"] == len(code)
    assert created["Version"] == "$LATEST"
    assert created["State"] == "Pending"
    assert created["MemorySize"] == 256 and created["Timeout"] == 5
    assert created["EphemeralStorage"] == {"Size": 512}
    assert created["PackageType"] == "Zip" and created["Architectures"] == ["x86_64"]
    assert created["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/life"}

    cfg = wait_active(lam, "life")
    assert cfg["State"] == "Active" and cfg["LastUpdateStatus"] == "Successful"

    got = lam.get_function(FunctionName="life")
    assert got["Configuration"]["FunctionName"] == "life"
    assert got["Tags"] == {"team": "x"}
    with urllib.request.urlopen(got["Code"]["Location"], timeout=10) as resp:
        assert resp.read() == code

    updated = lam.update_function_configuration(FunctionName="life", MemorySize=512, RevisionId=cfg["RevisionId"])
    assert updated["MemorySize"] == 512 and updated["RevisionId"] != cfg["RevisionId"]
    wait_active(lam, "life")
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName="life", Timeout=9, RevisionId=cfg["RevisionId"])
    assert _error(exc)[0] == "PreconditionFailedException"

    new_code = make_zip({"app.py": APP + "# v2\n"})
    upd = lam.update_function_code(FunctionName="life", ZipFile=new_code)
    assert upd["CodeSha256"] == base64.b64encode(hashlib.sha256(new_code).digest()).decode()
    wait_active(lam, "life")

    assert "life" in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    lam.delete_function(FunctionName="life")
    with pytest.raises(ClientError) as exc:
        lam.get_function(FunctionName="life")
    code_, message, status = _error(exc)
    assert (code_, status) == ("ResourceNotFoundException", 404)
    assert message == "Function not found: arn:aws:lambda:us-east-1:000000000000:function:life"


def test_list_functions_paginates(lam: Any) -> None:
    for i in range(5):
        lam.create_function(FunctionName=f"page-{i}", Runtime="python3.11", Handler="app.handler", Role=ROLE,
                            Code={"ZipFile": make_zip({"app.py": APP})})
    names: list[str] = []
    for page in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2}):
        assert len(page["Functions"]) <= 2
        names += [f["FunctionName"] for f in page["Functions"]]
    assert [n for n in names if n.startswith("page-")] == [f"page-{i}" for i in range(5)]
    for i in range(5):
        lam.delete_function(FunctionName=f"page-{i}")


def test_validation_errors_match_aws(lam: Any) -> None:
    zip_ = make_zip({"app.py": APP})
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName="v1", Runtime="python3.11", Handler="app.handler", Role=ROLE,
                            Code={"ZipFile": zip_}, MemorySize=10241)
    assert _error(exc) == (
        "ValidationException",
        "1 validation error detected: Value '10241' at 'memorySize' failed to satisfy constraint: "
        "Member must have value less than or equal to 10240", 400)
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName="v1", Runtime="python3.11", Handler="app.handler", Role="not-a-role",
                            Code={"ZipFile": zip_})
    assert _error(exc)[0] == "ValidationException"
    assert "at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern" in _error(exc)[1]
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName="v1", Runtime="python3.11", Handler="app.handler", Role=ROLE,
                            Code={"ZipFile": b"this is not a zip"})
    assert _error(exc) == ("InvalidParameterValueException",
                           "Could not unzip uploaded file. Please check your file, then try to upload again.", 400)
    lam.create_function(FunctionName="dupe", Runtime="python3.11", Handler="app.handler", Role=ROLE,
                        Code={"ZipFile": zip_})
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName="dupe", Runtime="python3.11", Handler="app.handler", Role=ROLE,
                            Code={"ZipFile": zip_})
    assert _error(exc) == ("ResourceConflictException", "Function already exist: dupe", 409)
    lam.delete_function(FunctionName="dupe")


def test_missing_runtime_fails_with_reason(lam: Any) -> None:
    lam.create_function(FunctionName="noruntime", Runtime="java21", Handler="x::y", Role=ROLE,
                        Code={"ZipFile": make_zip({"a.txt": "x"})})
    cfg = wait_active(lam, "noruntime")
    assert cfg["State"] == "Failed"
    assert "python3.11" in cfg["StateReason"]
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="noruntime", Payload=b"{}")
    assert _error(exc)[0] == "ResourceConflictException"
    lam.delete_function(FunctionName="noruntime")


def test_tags_and_account_settings(lam: Any) -> None:
    cfg = create_function(lam, "tagged", {"app.py": APP})
    lam.tag_resource(Resource=cfg["FunctionArn"], Tags={"a": "1", "b": "2"})
    lam.untag_resource(Resource=cfg["FunctionArn"], TagKeys=["a"])
    assert lam.list_tags(Resource=cfg["FunctionArn"])["Tags"] == {"b": "2"}
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["CodeSizeZipped"] == 52428800
    assert settings["AccountUsage"]["FunctionCount"] >= 1
    lam.delete_function(FunctionName="tagged")


def test_accounts_are_isolated(server: HearthServer) -> None:
    mine = server.client("lambda")
    theirs = server.client("lambda", account="111111111111")
    create_function(mine, "private", {"app.py": APP})
    assert "private" not in [f["FunctionName"] for f in theirs.list_functions()["Functions"]]
    with pytest.raises(ClientError) as exc:
        theirs.get_function(FunctionName="private")
    assert _error(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        theirs.delete_function(FunctionName="arn:aws:lambda:us-east-1:000000000000:function:private")
    assert _error(exc)[2] in (403, 404)
    mine.get_function(FunctionName="private")
    mine.delete_function(FunctionName="private")


@pytest.mark.parametrize(
    ("key", "secret", "code"),
    [
        ("AKIAUNKNOWNKEY000000", "whatever", "UnrecognizedClientException"),
        ("AKIAHEARTHTESTADMIN0", "wrong-secret", "InvalidSignatureException"),
    ],
)
def test_bad_credentials_are_refused(server: HearthServer, key: str, secret: str, code: str) -> None:
    client = server.client("lambda", key=key, secret=secret)
    with pytest.raises(ClientError) as exc:
        client.list_functions()
    assert _error(exc)[0] == code and _error(exc)[2] == 403


def test_unsigned_request_is_refused(server: HearthServer) -> None:
    req = urllib.request.Request(f"{server.endpoint}/2015-03-31/functions/")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 403
    assert exc.value.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException")


def test_aws_cli_lifecycle(server: HearthServer, tmp_path: Any) -> None:
    zip_path = tmp_path / "hello.zip"
    zip_path.write_bytes(make_zip({"app.py": APP}))
    out = server.aws("lambda", "create-function", "--function-name", "cli-hello", "--runtime", "python3.11",
                     "--handler", "app.handler", "--role", ROLE, "--zip-file", f"fileb://{zip_path}")
    assert json.loads(out.stdout)["FunctionName"] == "cli-hello"
    wait_active(server.client("lambda"), "cli-hello")
    got = json.loads(server.aws("lambda", "get-function", "--function-name", "cli-hello").stdout)
    assert got["Configuration"]["State"] == "Active"
    bad = server.aws("lambda", "get-function", "--function-name", "nope", check=False)
    assert bad.returncode != 0 and "ResourceNotFoundException" in bad.stderr
    server.aws("lambda", "delete-function", "--function-name", "cli-hello")
