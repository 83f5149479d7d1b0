"""SSM Parameter Store through boto3 and the AWS CLI against a real server."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.harness import ACCOUNT, HearthServer

pytestmark = pytest.mark.integration


@pytest.fixture
def ssm(server: HearthServer) -> Any:
    return server.client("ssm")


def _name(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def test_put_get_versions_and_arn(ssm: Any) -> None:
    name = _name()
    put = ssm.put_parameter(Name=name, Value="one", Type="String")
    assert (put["Version"], put["Tier"]) == (1, "Standard")
    got = ssm.get_parameter(Name=name)["Parameter"]
    assert got["Value"] == "one" and got["Version"] == 1 and got["Type"] == "String" and got["DataType"] == "text"
    assert got["ARN"] == f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/{name}"
    assert "Selector" not in got
    assert ssm.get_parameter(Name=got["ARN"])["Parameter"]["Name"] == name
    slashed = ssm.get_parameter(Name=f"/{name}")["Parameter"]  # a top-level name, with or without its slash
    assert (slashed["Name"], slashed["Value"], slashed["ARN"]) == (f"/{name}", "one", got["ARN"])

    with pytest.raises(ClientError) as err:
        ssm.put_parameter(Name=name, Value="two", Type="String")
    assert _code(err) == "ParameterAlreadyExists"
    assert ssm.put_parameter(Name=name, Value="two", Overwrite=True)["Version"] == 2  # the type is kept
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "two"
    old = ssm.get_parameter(Name=f"{name}:1")["Parameter"]
    assert old["Value"] == "one" and old["Selector"] == ":1"
    with pytest.raises(ClientError) as err:
        ssm.get_parameter(Name=f"{name}:9")
    assert _code(err) == "ParameterVersionNotFound"


def test_hierarchy_paths_and_names(ssm: Any) -> None:
    root = f"/{_name('app')}"
    for leaf, value in (("db/host", "h"), ("db/port", "5432"), ("flag", "on"), ("db/replica/host", "r")):
        ssm.put_parameter(Name=f"{root}/{leaf}", Value=value, Type="String")
    got = ssm.get_parameter(Name=f"{root}/db/host")["Parameter"]
    assert got["ARN"].endswith(f":parameter{root}/db/host")
    one_level = ssm.get_parameters_by_path(Path=f"{root}/db")["Parameters"]
    assert sorted(p["Name"] for p in one_level) == [f"{root}/db/host", f"{root}/db/port"]
    everything: list[str] = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=root, Recursive=True,
                                                                      PaginationConfig={"PageSize": 2}):
        everything += [p["Name"] for p in page["Parameters"]]
    assert sorted(everything) == sorted(f"{root}/{leaf}" for leaf in ("db/host", "db/port", "flag", "db/replica/host"))

    for bad in (f"{root}//db//host", f"{root[1:]}/db/host"):
        with pytest.raises(ClientError) as err:
            ssm.get_parameter(Name=bad)
        assert _code(err) == "ValidationException"
        assert "sub-paths divided by slash symbol" in str(err.value)
    with pytest.raises(ClientError) as err:
        ssm.put_parameter(Name="/aws/mine", Value="x", Type="String")
    assert _code(err) == "ValidationException"
    deep = "/" + "/".join(["l"] * 16)
    with pytest.raises(ClientError) as err:
        ssm.put_parameter(Name=deep, Value="x", Type="String")
    assert _code(err) == "HierarchyLevelLimitExceededException"


def test_get_parameters_and_missing(ssm: Any) -> None:
    name = _name()
    ssm.put_parameter(Name=name, Value="v", Type="StringList")
    answer = ssm.get_parameters(Names=[name, "nope-" + name, "/aws/reference/secretsmanager/none"],
                                WithDecryption=True)
    assert [p["Name"] for p in answer["Parameters"]] == [name]
    assert sorted(answer["InvalidParameters"]) == sorted(["nope-" + name, "/aws/reference/secretsmanager/none"])
    with pytest.raises(ClientError) as err:
        ssm.get_parameter(Name="nope-" + name)
    assert _code(err) == "ParameterNotFound"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as err:
        ssm.get_parameter(Name="/aws/reference/secretsmanager/inexistent", WithDecryption=True)
    assert _code(err) == "ParameterNotFound"
    assert "Secret /aws/reference/secretsmanager/inexistent not found." in str(err.value)


def test_secure_string(ssm: Any) -> None:
    name = _name("secret")
    ssm.put_parameter(Name=name, Value="hunter2", Type="SecureString")
    hidden = ssm.get_parameter(Name=name)["Parameter"]
    assert hidden["Type"] == "SecureString" and hidden["Value"] != "hunter2" and "hunter2" not in hidden["Value"]
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == "hunter2"
    meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
    assert meta[0]["KeyId"] == "alias/aws/ssm" and meta[0]["LastModifiedUser"] == f"arn:aws:iam::{ACCOUNT}:root"


def test_rules_on_values(ssm: Any) -> None:
    name = _name()
    with pytest.raises(ClientError) as err:
        ssm.put_parameter(Name=name, Value="abc", Type="String", AllowedPattern=r"^\d+$")
    assert _code(err) == "ParameterPatternMismatchException"
    with pytest.raises(ClientError) as err:
        ssm.put_parameter(Name=name, Value="x" * 4097, Type="String")
    assert _code(err) == "ValidationException" and "4096" in str(err.value)
    assert ssm.put_parameter(Name=name, Value="x" * 4097, Type="String", Tier="Advanced")["Tier"] == "Advanced"
    with pytest.raises(ClientError) as err:
        ssm.put_parameter(Name=_name(), Value="v")
    assert _code(err) == "ValidationException"
    with pytest.raises(ClientError) as err:
        ssm.put_parameter(Name=name, Value="v", Overwrite=True, Tags=[{"Key": "a", "Value": "b"}])
    assert _code(err) == "ValidationException"


def test_labels_history_describe_tags_delete(ssm: Any) -> None:
    prefix = f"/{_name('lbl')}"
    name = f"{prefix}/path"
    ssm.put_parameter(Name=name, Value="v1", Type="String", Description="first",
                      Tags=[{"Key": "team", "Value": "a"}])
    ssm.put_parameter(Name=name, Value="v2", Overwrite=True)
    answer = ssm.label_parameter_version(Name=name, ParameterVersion=1, Labels=["stable", "1bad", "awsx"])
    assert answer["ParameterVersion"] == 1 and sorted(answer["InvalidLabels"]) == ["1bad", "awsx"]
    assert ssm.get_parameter(Name=f"{name}:stable")["Parameter"]["Value"] == "v1"
    by_label = ssm.get_parameters_by_path(Path=prefix, ParameterFilters=[{"Key": "Label", "Values": ["stable"]}])
    assert [(p["Name"], p["Value"]) for p in by_label["Parameters"]] == [(name, "v1")]
    ssm.label_parameter_version(Name=name, Labels=["stable"])  # moves to the newest version
    history = ssm.get_parameter_history(Name=name)["Parameters"]
    assert [(h["Version"], h["Value"], h["Labels"]) for h in history] == [(1, "v1", []), (2, "v2", ["stable"])]
    assert history[1]["Description"] == "first"  # an overwrite without a description keeps it
    removed = ssm.unlabel_parameter_version(Name=name, ParameterVersion=2, Labels=["stable", "other"])
    assert removed["RemovedLabels"] == ["stable"] and removed["InvalidLabels"] == ["other"]

    found = ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [prefix]},
                                                      {"Key": "tag:team", "Values": ["a"]}])["Parameters"]
    assert [p["Name"] for p in found] == [name]
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"] == [
        {"Key": "team", "Value": "a"}]
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name, Tags=[{"Key": "env", "Value": "dev"}])
    ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId=name, TagKeys=["team"])
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"] == [
        {"Key": "env", "Value": "dev"}]

    ssm.delete_parameter(Name=name)
    with pytest.raises(ClientError) as err:
        ssm.delete_parameter(Name=name)
    assert _code(err) == "ParameterNotFound"
    other = _name()
    ssm.put_parameter(Name=other, Value="v", Type="String")
    answer = ssm.delete_parameters(Names=[other, name])
    assert (answer["DeletedParameters"], answer["InvalidParameters"]) == ([other], [name])


def test_parameters_survive_a_restart_and_the_cli_reads_them(tmp_path: Any) -> None:
    srv = HearthServer(tmp_path / "data")
    srv.start()
    try:
        ssm = srv.client("ssm")
        ssm.put_parameter(Name="/kept/value", Value="42", Type="String")
        srv.kill9()
        srv.start()
        out = srv.aws("ssm", "get-parameter", "--name", "/kept/value", "--output", "json")
        assert json.loads(out.stdout)["Parameter"]["Value"] == "42"
    finally:
        srv.stop()
