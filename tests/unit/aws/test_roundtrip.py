"""Round trips through the gateway with botocore on both ends: botocore serializes and signs, the
gateway parses and hands params to a provider, renders its result, and botocore parses the answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.unit.aws.driver import EchoProvider, gateway_client, make_gateway

from hearth.aws.errors import AwsError
from hearth.services.base import RawResponse


def _setup(tmp_path: Path, service: str, results: dict[str, Any] | None = None) -> tuple[Any, EchoProvider]:
    echo = EchoProvider(results=results or {})
    gw = make_gateway(tmp_path, {service: [echo]})
    return gateway_client(gw, service), echo


LAMBDA_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("create_function", {
        "FunctionName": "fn-1", "Runtime": "python3.12", "Role": "arn:aws:iam::111122223333:role/r",
        "Handler": "app.handler", "Code": {"ZipFile": b"PK\x03\x04 zip bytes \xff"}, "MemorySize": 256,
        "Timeout": 30, "Publish": True, "Environment": {"Variables": {"AA": "1", "B_2": "two"}},
        "Tags": {"team": "x"}, "Architectures": ["arm64"], "EphemeralStorage": {"Size": 1024},
    }),
    ("get_function", {"FunctionName": "fn-1", "Qualifier": "live"}),
    ("get_function", {"FunctionName": "arn:aws:lambda:us-east-1:111122223333:function:fn-1:2"}),
    ("get_function_configuration", {"FunctionName": "fn-1"}),
    ("list_functions", {"MaxItems": 5, "Marker": "abc def/+="}),
    ("list_versions_by_function", {"FunctionName": "fn-1"}),
    ("publish_version", {"FunctionName": "fn-1", "Description": "v", "RevisionId": "r-1"}),
    ("update_function_code", {"FunctionName": "fn-1", "ZipFile": b"\x00\x01", "Publish": False}),
    ("update_function_configuration", {"FunctionName": "fn-1", "MemorySize": 512, "Layers": []}),
    ("delete_function", {"FunctionName": "fn-1", "Qualifier": "3"}),
    ("add_permission", {"FunctionName": "fn-1", "StatementId": "s1", "Action": "lambda:InvokeFunction",
                        "Principal": "s3.amazonaws.com"}),
    ("remove_permission", {"FunctionName": "fn-1", "StatementId": "s1"}),
    ("tag_resource", {"Resource": "arn:aws:lambda:us-east-1:111122223333:function:fn-1", "Tags": {"a": "b"}}),
    ("untag_resource", {"Resource": "arn:aws:lambda:us-east-1:111122223333:function:fn-1",
                        "TagKeys": ["a", "b c"]}),
    ("create_alias", {"FunctionName": "fn-1", "Name": "live", "FunctionVersion": "1",
                      "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.25}}}),
    ("put_function_concurrency", {"FunctionName": "fn-1", "ReservedConcurrentExecutions": 7}),
    ("list_provisioned_concurrency_configs", {"FunctionName": "fn-1"}),
    ("get_layer_version_by_arn", {"Arn": "arn:aws:lambda:us-east-1:111122223333:layer:l:1"}),
    ("invoke", {"FunctionName": "fn-1", "InvocationType": "Event", "LogType": "Tail",
                "ClientContext": "eyJhIjoxfQ==", "Payload": b'{"k": [1, 2]}', "Qualifier": "$LATEST"}),
    ("list_event_source_mappings", {"FunctionName": "fn-1", "MaxItems": 3}),
]


@pytest.mark.parametrize(("method", "params"), LAMBDA_CALLS, ids=[f"{m}-{i}" for i, (m, _) in enumerate(LAMBDA_CALLS)])
def test_lambda_params_arrive_as_given(tmp_path: Path, method: str, params: dict[str, Any]) -> None:
    client, echo = _setup(tmp_path, "lambda")
    getattr(client, method)(**params)
    assert len(echo.calls) == 1
    name, got, ctx = echo.calls[0]
    assert name == method
    assert got == params
    assert ctx.account_id == "111122223333" and ctx.region == "us-east-1" and ctx.service == "lambda"


def test_lambda_invoke_result_headers_status_and_raw_payload(tmp_path: Path) -> None:
    client, _ = _setup(tmp_path, "lambda", {"invoke": {
        "StatusCode": 200, "FunctionError": "Unhandled", "ExecutedVersion": "$LATEST",
        "LogResult": "bG9ncw==", "Payload": b'{"errorMessage": "boom"}'}})
    out = client.invoke(FunctionName="f", Payload=b"{}")
    assert out["StatusCode"] == 200
    assert out["FunctionError"] == "Unhandled"
    assert out["ExecutedVersion"] == "$LATEST"
    assert out["LogResult"] == "bG9ncw=="
    assert json.loads(out["Payload"].read()) == {"errorMessage": "boom"}


@pytest.mark.parametrize("status", [202, 204])
def test_lambda_invoke_status_member_sets_http_status(tmp_path: Path, status: int) -> None:
    client, _ = _setup(tmp_path, "lambda", {"invoke": {"StatusCode": status, "Payload": b""}})
    out = client.invoke(FunctionName="f", InvocationType="Event")
    assert out["StatusCode"] == status
    assert out["ResponseMetadata"]["HTTPStatusCode"] == status


def test_lambda_output_shapes_parse(tmp_path: Path) -> None:
    config = {"FunctionName": "f", "FunctionArn": "arn:aws:lambda:us-east-1:111122223333:function:f",
              "Runtime": "python3.12", "MemorySize": 128, "LastModified": "2024-01-01T00:00:00.000+0000",
              "Environment": {"Variables": {"A": "1"}}, "Architectures": ["x86_64"],
              "Layers": [{"Arn": "arn:aws:lambda:us-east-1:111122223333:layer:l:1", "CodeSize": 10}]}
    client, _ = _setup(tmp_path, "lambda", {
        "get_function": {"Configuration": config, "Code": {"Location": "http://x/y", "RepositoryType": "S3"},
                         "Tags": {"a": "b"}, "Concurrency": None},
        "delete_function": {"StatusCode": 204},
        "list_functions": {"Functions": [config], "NextMarker": "m"},
    })
    out = client.get_function(FunctionName="f")
    assert out["Configuration"] == config
    assert out["Tags"] == {"a": "b"}
    assert "Concurrency" not in out
    deleted = client.delete_function(FunctionName="f")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    listed = client.list_functions()
    assert listed["Functions"] == [config] and listed["NextMarker"] == "m"


@pytest.mark.parametrize(("error", "expected"), [
    (AwsError("ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:1:function:x", 404,
              fields={"Type": "User"}, message_key="Message"),
     {"Code": "ResourceNotFoundException", "Message": "Function not found: arn:aws:lambda:us-east-1:1:function:x"}),
    (AwsError("InvalidParameterValueException", "bad", 400, fields={"Type": "User"}),
     {"Code": "InvalidParameterValueException", "Message": "bad"}),
    (AwsError("TooManyRequestsException", "Rate exceeded", 429,
              fields={"Type": "User", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"},
              headers={"Retry-After": "1"}),
     {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}),
])
def test_lambda_errors_parse_in_botocore(tmp_path: Path, error: AwsError, expected: dict[str, str]) -> None:
    client, _ = _setup(tmp_path, "lambda", {"get_function": error})
    with pytest.raises(ClientError) as info:
        client.get_function(FunctionName="f")
    resp = info.value.response
    assert resp["Error"]["Code"] == expected["Code"]
    assert resp["Error"]["Message"] == expected["Message"]
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == error.status
    assert resp["Type"] == "User"
    for k, v in error.fields.items():
        assert resp[k] == v
    headers = resp["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-errortype"] == error.code
    assert headers["x-amzn-requestid"] == resp["ResponseMetadata"]["RequestId"]
    for k, v in error.headers.items():
        assert headers[k.lower()] == v


def test_provider_crash_is_a_500_service_exception_without_trace(tmp_path: Path) -> None:
    client, _ = _setup(tmp_path, "lambda", {"get_function": RuntimeError("secret internals /etc/x")})
    with pytest.raises(ClientError) as info:
        client.get_function(FunctionName="f")
    resp = info.value.response
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert resp["Error"]["Code"] == "ServiceException"
    assert "secret" not in json.dumps(resp, default=str)


def test_missing_provider_method_is_an_aws_error(tmp_path: Path) -> None:
    echo = EchoProvider(operations={"get_function"})
    client = gateway_client(make_gateway(tmp_path, {"lambda": [echo]}), "lambda")
    with pytest.raises(ClientError) as info:
        client.list_layers()
    assert info.value.response["Error"]["Code"] == "UnknownOperationException"


def test_first_provider_with_the_method_wins(tmp_path: Path) -> None:
    a = EchoProvider(operations={"get_function"}, results={"get_function": {"Tags": {"from": "a"}}})
    b = EchoProvider(results={"get_function": {"Tags": {"from": "b"}}, "invoke": {"StatusCode": 200}})
    client = gateway_client(make_gateway(tmp_path, {"lambda": [a, b]}), "lambda")
    assert client.get_function(FunctionName="f")["Tags"] == {"from": "a"}
    assert client.invoke(FunctionName="f")["StatusCode"] == 200
    assert [c[0] for c in b.calls] == ["invoke"]


def test_raw_response_and_async_provider(tmp_path: Path) -> None:
    async def chunks() -> Any:
        yield b'{"a":'
        yield b"1}"

    async def invoke(ctx: Any, params: dict[str, Any]) -> RawResponse:
        return RawResponse(200, {"Content-Type": "application/json", "X-Amz-Executed-Version": "7"}, chunks())

    client, _ = _setup(tmp_path, "lambda", {"invoke": invoke})
    out = client.invoke(FunctionName="f")
    assert out["ExecutedVersion"] == "7"
    assert out["Payload"].read() == b'{"a":1}'


# -- json protocol: logs, sqs, events -----------------------------------------------------------

def test_logs_params_and_output(tmp_path: Path) -> None:
    client, echo = _setup(tmp_path, "logs", {"filter_log_events": {
        "events": [{"logStreamName": "s", "timestamp": 1700000000000, "message": "hi", "ingestionTime": 1,
                    "eventId": "e1"}], "nextToken": "t"}})
    params = {"logGroupName": "/aws/lambda/f", "logStreamName": "2024/01/01/[$LATEST]abc",
              "logEvents": [{"timestamp": 1700000000000, "message": "line 1"}, {"timestamp": 1, "message": "x"}]}
    client.put_log_events(**params)
    assert echo.calls[-1][1] == params
    out = client.filter_log_events(logGroupName="/aws/lambda/f", startTime=5, interleaved=True)
    assert echo.calls[-1][1] == {"logGroupName": "/aws/lambda/f", "startTime": 5, "interleaved": True}
    assert out["events"][0]["message"] == "hi" and out["nextToken"] == "t"


def test_logs_error_uses_type_field(tmp_path: Path) -> None:
    client, _ = _setup(tmp_path, "logs", {"create_log_group": AwsError(
        "ResourceAlreadyExistsException", "The specified log group already exists", 400)})
    with pytest.raises(ClientError) as info:
        client.create_log_group(logGroupName="g")
    assert info.value.response["Error"] == {"Code": "ResourceAlreadyExistsException",
                                            "Message": "The specified log group already exists"}


def test_sqs_json_query_compatible(tmp_path: Path) -> None:
    client, echo = _setup(tmp_path, "sqs", {
        "send_message": {"MessageId": "m1", "MD5OfMessageBody": "x"},
        "get_queue_url": AwsError("AWS.SimpleQueueService.NonExistentQueue",
                                  "The specified queue does not exist.", 400)})
    params = {"QueueUrl": "http://h/1/q", "MessageBody": "hello", "DelaySeconds": 3,
              "MessageAttributes": {"a": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
                                    "b": {"DataType": "String", "StringValue": "v"}}}
    assert client.send_message(**params)["MessageId"] == "m1"
    assert echo.calls[-1][1] == params
    with pytest.raises(ClientError) as info:
        client.get_queue_url(QueueName="q")
    assert info.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


def test_events_timestamps(tmp_path: Path) -> None:
    client, echo = _setup(tmp_path, "events", {"put_events": {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}})
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    out = client.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}", "Time": when}])
    assert out["Entries"] == [{"EventId": "1"}]
    assert echo.calls[-1][1]["Entries"][0]["Time"] == when


# -- query protocol: sns -----------------------------------------------------------------------

def test_sns_query_params_and_xml(tmp_path: Path) -> None:
    client, echo = _setup(tmp_path, "sns", {
        "create_topic": {"TopicArn": "arn:aws:sns:us-east-1:111122223333:t"},
        "list_topics": {"Topics": [{"TopicArn": "a1"}, {"TopicArn": "a2 & <b>"}], "NextToken": "n"},
        "get_topic_attributes": {"Attributes": {"Policy": "{\"a\": 1}", "Owner": "1"}},
        "publish": AwsError("NotFound", "Topic does not exist", 404)})
    params = {"Name": "t", "Attributes": {"DisplayName": "d", "FifoTopic": "false"},
              "Tags": [{"Key": "k1", "Value": "v1"}, {"Key": "k2", "Value": ""}]}
    assert client.create_topic(**params)["TopicArn"].endswith(":t")
    assert echo.calls[-1][1] == params
    out = client.list_topics()
    assert out["Topics"] == [{"TopicArn": "a1"}, {"TopicArn": "a2 & <b>"}] and out["NextToken"] == "n"
    assert client.get_topic_attributes(TopicArn="x")["Attributes"] == {"Policy": "{\"a\": 1}", "Owner": "1"}
    pub = {"TopicArn": "x", "Message": "m", "MessageAttributes": {
        "n": {"DataType": "Number", "StringValue": "1"}, "b": {"DataType": "Binary", "BinaryValue": b"\x01"}}}
    with pytest.raises(ClientError) as info:
        client.publish(**pub)
    assert echo.calls[-1][1] == pub
    assert info.value.response["Error"]["Code"] == "NotFound"
    assert info.value.response["Error"]["Message"] == "Topic does not exist"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_sns_empty_list_and_unknown_action(tmp_path: Path) -> None:
    client, echo = _setup(tmp_path, "sns")
    client.tag_resource(ResourceArn="arn:aws:sns:us-east-1:1:t", Tags=[])
    assert echo.calls[-1][1] == {"ResourceArn": "arn:aws:sns:us-east-1:1:t", "Tags": []}


# -- ec2 protocol --------------------------------------------------------------------------------

EC2_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("create_vpc", {"CidrBlock": "10.0.0.0/16", "TagSpecifications": [
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "a & <b>"}, {"Key": "empty", "Value": ""}]}]}),
    ("describe_vpcs", {"VpcIds": ["vpc-1", "vpc-2"], "Filters": [
        {"Name": "tag:Name", "Values": ["x", "y"]}, {"Name": "is-default", "Values": ["false"]}]}),
    ("authorize_security_group_egress", {"GroupId": "sg-1", "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5433, "IpRanges": [{"CidrIp": "10.0.0.0/24",
                                                                              "Description": "db"}],
         "UserIdGroupPairs": [{"GroupId": "sg-2"}]}]}),
    ("create_security_group", {"GroupName": "g", "Description": "d", "VpcId": "vpc-1"}),
    ("delete_tags", {"Resources": ["vpc-1"], "Tags": [{"Key": "k"}]}),
]


@pytest.mark.parametrize(("method", "params"), EC2_CALLS, ids=[f"{m}-{i}" for i, (m, _) in enumerate(EC2_CALLS)])
def test_ec2_params_arrive_as_given(tmp_path: Path, method: str, params: dict[str, Any]) -> None:
    client, echo = _setup(tmp_path, "ec2")
    getattr(client, method)(**params)
    assert echo.calls[-1][0] == method
    assert echo.calls[-1][1] == params


def test_ec2_answers_and_errors(tmp_path: Path) -> None:
    vpc = {"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16", "IsDefault": False, "State": "available",
           "Tags": [{"Key": "Name", "Value": "n"}],
           "CidrBlockAssociationSet": [{"AssociationId": "a", "CidrBlock": "10.0.0.0/16",
                                        "CidrBlockState": {"State": "associated"}}]}
    group = {"GroupId": "sg-1", "GroupName": "g", "Description": "d", "VpcId": "vpc-1", "IpPermissions": [],
             "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                                      "UserIdGroupPairs": [], "Ipv6Ranges": [], "PrefixListIds": []}]}
    client, _ = _setup(tmp_path, "ec2", {
        "describe_vpcs": {"Vpcs": [vpc]}, "describe_security_groups": {"SecurityGroups": [group]},
        "delete_vpc": AwsError("InvalidVpcID.NotFound", "The vpc ID 'vpc-9' does not exist", 400)})
    out = client.describe_vpcs()
    assert out["Vpcs"] == [vpc]
    assert out["ResponseMetadata"]["RequestId"]
    assert client.describe_security_groups()["SecurityGroups"] == [group]
    with pytest.raises(ClientError) as info:
        client.delete_vpc(VpcId="vpc-9")
    assert info.value.response["Error"] == {"Code": "InvalidVpcID.NotFound",
                                            "Message": "The vpc ID 'vpc-9' does not exist"}
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
