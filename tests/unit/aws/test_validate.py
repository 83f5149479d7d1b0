"""Validation texts against real AWS answers recorded in shared/reference/aws-recorded."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from hearth.aws.errors import ValidationError
from hearth.aws.validate import java_repr, validate, validation_errors

_MODEL = botocore.session.get_session().get_service_model("lambda")
ROLE = "arn:aws:iam::111122223333:role/r"


def _shape(op: str) -> Any:
    return _MODEL.operation_model(op).input_shape


def _message(op: str, params: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        validate(_shape(op), params)
    assert info.value.code == "ValidationException" and info.value.status == 400
    return info.value.message


def test_length_of_function_name_in_create() -> None:
    name = "arn:aws:lambda:us-east-1:111111111111:function:" + "a" * 100
    assert _message("CreateFunction", {"FunctionName": name, "Role": ROLE, "Code": {}}) == (
        f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: "
        "Member must have length less than or equal to 140")


def test_role_pattern() -> None:
    assert _message("CreateFunction", {"FunctionName": "f", "Role": "r1", "Code": {}}) == (
        "1 validation error detected: Value 'r1' at 'role' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+")


def test_list_element_constraints_are_listed_together() -> None:
    msg = _message("CreateFunction", {"FunctionName": "f", "Role": ROLE, "Code": {}, "Architectures": ["X86_64"]})
    assert msg == ("1 validation error detected: Value '[X86_64]' at 'architectures' failed to satisfy "
                   "constraint: Member must satisfy constraint: [Member must satisfy enum value set: "
                   "[x86_64, arm64], Member must not be null]")
    msg = _message("CreateFunction", {"FunctionName": "f", "Role": ROLE, "Code": {},
                                      "Architectures": ["x86_64", "arm64"]})
    assert msg == ("1 validation error detected: Value '[x86_64, arm64]' at 'architectures' failed to satisfy "
                   "constraint: Member must have length less than or equal to 1")


def test_enum_in_aws_order_and_nested_path() -> None:
    assert _message("PutFunctionRecursionConfig", {"FunctionName": "f", "RecursiveLoop": "InvalidValue"}) == (
        "1 validation error detected: Value 'InvalidValue' at 'recursiveLoop' failed to satisfy constraint: "
        "Member must satisfy enum value set: [Terminate, Allow]")
    msg = _message("CreateFunction", {"FunctionName": "f", "Role": ROLE, "Code": {},
                                      "SnapStart": {"ApplyOn": "invalidOption"}})
    assert msg == ("1 validation error detected: Value 'invalidOption' at 'snapStart.applyOn' failed to "
                   "satisfy constraint: Member must satisfy enum value set: [PublishedVersions, None]")


def test_map_values_and_keys() -> None:
    msg = _message("CreateAlias", {"FunctionName": "f", "Name": "a", "FunctionVersion": "1",
                                   "RoutingConfig": {"AdditionalVersionWeights": {"2": 2.0}}})
    assert msg == ("1 validation error detected: Value '{2=2.0}' at 'routingConfig.additionalVersionWeights' "
                   "failed to satisfy constraint: Map value must satisfy constraint: [Member must have value "
                   "less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must "
                   "not be null]")
    msg = _message("CreateAlias", {"FunctionName": "f", "Name": "a", "FunctionVersion": "1",
                                   "RoutingConfig": {"AdditionalVersionWeights": {"$LATEST": 0.5}}})
    assert msg == ("1 validation error detected: Value '{$LATEST=0.5}' at 'routingConfig.additionalVersionWeights'"
                   " failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length "
                   "less than or equal to 1024, Member must have length greater than or equal to 1, Member must "
                   "satisfy regular expression pattern: [0-9]+]")


def test_range_and_required() -> None:
    assert _message("PutProvisionedConcurrencyConfig", {
        "FunctionName": "f", "Qualifier": "q", "ProvisionedConcurrentExecutions": 0}) == (
        "1 validation error detected: Value '0' at 'provisionedConcurrentExecutions' failed to satisfy "
        "constraint: Member must have value greater than or equal to 1")
    assert _message("UntagResource", {"Resource": "arn:aws:lambda:us-east-1:111111111111:function:f"}) == (
        "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")


def test_several_errors_are_counted_and_joined() -> None:
    errors = validation_errors(_shape("CreateFunction"), {"FunctionName": "f", "Code": {}, "MemorySize": 99999,
                                                          "Runtime": "nope"})
    assert len(errors) == 3
    msg = _message("CreateFunction", {"FunctionName": "f", "Code": {}, "MemorySize": 99999, "Runtime": "nope"})
    assert msg.startswith("3 validation errors detected: Value 'nope' at 'runtime'")
    assert "; Value null at 'role' failed to satisfy constraint: Member must not be null; " in msg
    assert msg.endswith("Value '99999' at 'memorySize' failed to satisfy constraint: Member must have value "
                        "less than or equal to 32768")
    # A member the service judges itself (Lambda's runtime) is left to it.
    left = validation_errors(_shape("CreateFunction"), {"FunctionName": "f", "Code": {}, "MemorySize": 99999,
                                                        "Runtime": "nope"}, judged_by_service=frozenset({"runtime"}))
    assert len(left) == 2 and not any("'runtime'" in e for e in left)


def test_valid_params_pass() -> None:
    validate(_shape("CreateFunction"), {"FunctionName": "my-fn", "Role": ROLE, "Code": {"ZipFile": b"x"},
                                        "Runtime": "python3.12", "Handler": "a.b", "MemorySize": 128,
                                        "Tags": {"k é": "v"}, "Environment": {"Variables": {"AB": "x"}}})


@pytest.mark.parametrize(("value", "text"), [
    (None, "null"), (True, "true"), (2.0, "2.0"), ([1, "a"], "[1, a]"), ({"a": 0.5}, "{a=0.5}"), ("s", "s")])
def test_java_repr(value: Any, text: str) -> None:
    assert java_repr(value) == text


def test_doubles_are_printed_as_java_prints_them() -> None:
    # A weight sent as the JSON number 2 is a double to AWS: its message shows 2.0.
    assert _message("CreateAlias", {"FunctionName": "f", "Name": "a", "FunctionVersion": "1",
                                    "RoutingConfig": {"AdditionalVersionWeights": {"2": 2}}}).startswith(
        "1 validation error detected: Value '{2=2.0}' at 'routingConfig.additionalVersionWeights'")
