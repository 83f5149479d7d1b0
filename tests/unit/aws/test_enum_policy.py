"""Which services refuse values outside a modelled enum at the framework level (see the gateway's
`_framework_checks_enums`): json-born services do, query-born ones (SNS, SQS) leave it to the operation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from tests.unit.aws.driver import EchoProvider, gateway_client, make_gateway

from hearth.aws.validate import validation_errors


def _setup(tmp_path: Path, service: str) -> tuple[Any, EchoProvider]:
    echo = EchoProvider()
    return gateway_client(make_gateway(tmp_path, {service: [echo]}), service), echo


def test_sqs_receive_accepts_message_system_attribute_names(tmp_path: Path) -> None:
    client, echo = _setup(tmp_path, "sqs")
    names = ["ApproximateReceiveCount", "SentTimestamp", "SenderId", "AWSTraceHeader"]
    client.receive_message(QueueUrl="http://h/1/q", AttributeNames=names)
    assert echo.calls[-1][0] == "receive_message"
    assert echo.calls[-1][1]["AttributeNames"] == names


def test_sqs_unknown_enum_values_reach_the_operation(tmp_path: Path) -> None:
    client, echo = _setup(tmp_path, "sqs")
    client.get_queue_attributes(QueueUrl="http://h/1/q", AttributeNames=["Bogus"])
    client.create_queue(QueueName="q", Attributes={"NotAnAttribute": "1"})
    assert [c[0] for c in echo.calls] == ["get_queue_attributes", "create_queue"]


@pytest.mark.parametrize(("service", "call", "params", "path", "code"), [
    ("lambda", "put_function_recursion_config", {"FunctionName": "f", "RecursiveLoop": "Bad"}, "recursiveLoop",
     "ValidationException"),
    ("kinesis", "get_shard_iterator", {"StreamName": "s", "ShardId": "shardId-0", "ShardIteratorType": "BAD"},
     "shardIteratorType", "ValidationException"),
    # CloudWatch Logs' classic operations spell the framework's refusal InvalidParameterException, its
    # newer delivery operations ValidationException (both recorded against AWS by LocalStack's tests).
    ("logs", "describe_log_streams", {"logGroupName": "g", "orderBy": "Newest"}, "orderBy",
     "InvalidParameterException"),
    ("logs", "put_delivery_destination", {"name": "d", "outputFormat": "foobar", "deliveryDestinationConfiguration":
                                          {"destinationResourceArn": "arn:aws:s3:::b"}}, "outputFormat",
     "ValidationException"),
])
def test_json_services_still_refuse_unknown_enum_values(tmp_path: Path, service: str, call: str,
                                                        params: dict[str, Any], path: str, code: str) -> None:
    client, echo = _setup(tmp_path, service)
    with pytest.raises(ClientError) as info:
        getattr(client, call)(**params)
    error = info.value.response["Error"]
    assert error["Code"] == code
    assert f"at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [" in error["Message"]
    assert echo.calls == []


def test_validation_without_enums_keeps_other_constraints() -> None:
    model = botocore.session.get_session().get_service_model("lambda")
    shape = model.operation_model("CreateFunction").input_shape
    params = {"FunctionName": "f", "Role": "arn:aws:iam::111122223333:role/r", "Code": {},
              "Architectures": ["X86_64"], "MemorySize": 1}
    with_enums = validation_errors(shape, params)
    without = validation_errors(shape, params, enums=False)
    assert len(with_enums) == 2 and len(without) == 1
    assert "memorySize" in without[0] and "enum" not in without[0]


def test_logs_limit_out_of_range_is_an_invalid_parameter(tmp_path: Path) -> None:
    client, echo = _setup(tmp_path, "logs")
    with pytest.raises(ClientError) as info:
        client.get_log_events(logGroupName="g", logStreamName="s", limit=10001)
    assert info.value.response["Error"] == {
        "Code": "InvalidParameterException",
        "Message": "1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: Member "
                   "must have value less than or equal to 10000"}
    assert echo.calls == []


def test_logs_metric_namespace_may_hold_a_colon(tmp_path: Path) -> None:
    client, echo = _setup(tmp_path, "logs")
    client.put_metric_filter(logGroupName="g", filterName="f", filterPattern="x", metricTransformations=[
        {"metricNamespace": "A.B-c_d/1#2:metricNamespace", "metricName": "m", "metricValue": "1"}])
    assert echo.calls[-1][0] == "put_metric_filter"


def test_sns_spells_missing_parameters_and_nested_violations_as_aws(tmp_path: Path) -> None:
    client, echo = _setup(tmp_path, "sns")
    with pytest.raises(ClientError) as missing:
        client.unsubscribe()
    assert missing.value.response["Error"]["Code"] == "InvalidParameter"
    assert missing.value.response["Error"]["Message"] == (
        "Invalid parameter: SubscriptionArn Reason: no value for required parameter")
    with pytest.raises(ClientError) as nested:
        client.publish(TopicArn="arn:aws:sns:us-east-1:111122223333:t", Message="m",
                       MessageAttributes={"attr1": {"StringValue": "v"}})
    assert nested.value.response["Error"] == {
        "Type": "Sender", "Code": "ValidationError",
        "Message": "1 validation error detected: Value null at 'messageAttributes.attr1.member.dataType' failed to "
                   "satisfy constraint: Member must not be null"}
    assert echo.calls == []
