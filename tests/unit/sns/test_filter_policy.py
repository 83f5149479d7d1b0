"""The SNS filter policy language on attributes and bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hearth.services.sns.filter_policy import FilterPolicyError, matches, parse


def _attrs(**values: Any) -> dict[str, dict[str, str]]:
    out = {}
    for name, value in values.items():
        if isinstance(value, list):
            out[name] = {"DataType": "String.Array", "StringValue": json.dumps(value)}
        elif isinstance(value, (int, float)):
            out[name] = {"DataType": "Number", "StringValue": str(value)}
        else:
            out[name] = {"DataType": "String", "StringValue": value}
    return out


def _match(policy: dict[str, Any], **values: Any) -> bool:
    return matches(parse(json.dumps(policy)), "MessageAttributes", _attrs(**values), "")


@pytest.mark.parametrize(("policy", "values", "expected"), [
    ({"c": ["red"]}, {"c": "red"}, True),
    ({"c": ["red"]}, {"c": "blue"}, False),
    ({"c": ["red"]}, {}, False),
    ({"c": [{"prefix": "bl"}]}, {"c": "blue"}, True),
    ({"c": [{"suffix": "ue"}]}, {"c": "blue"}, True),
    ({"c": [{"equals-ignore-case": "RED"}]}, {"c": "red"}, True),
    ({"c": [{"anything-but": ["red", "green"]}]}, {"c": "blue"}, True),
    ({"c": [{"anything-but": "red"}]}, {"c": "red"}, False),
    ({"c": [{"anything-but": "red"}]}, {}, False),
    ({"c": [{"anything-but": {"prefix": "re"}}]}, {"c": "red"}, False),
    ({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 5}, True),
    ({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 6}, False),
    ({"n": [5]}, {"n": 5.0}, True),
    ({"c": [{"exists": True}]}, {"c": "x"}, True),
    ({"c": [{"exists": False}]}, {}, True),
    ({"c": [{"exists": False}]}, {"c": "x"}, False),
    ({"c": ["a", "b"]}, {"c": ["z", "b"]}, True),
    ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.0.7"}, True),
    ({"c": ["red"], "n": [1]}, {"c": "red", "n": 2}, False),
    ({"$or": [{"c": ["red"]}, {"n": [1]}]}, {"n": 1}, True),
    ({"$or": [{"c": ["red"]}, {"n": [1]}]}, {"n": 2}, False),
])
def test_attribute_scope(policy: dict[str, Any], values: dict[str, Any], expected: bool) -> None:
    assert _match(policy, **values) is expected


def test_body_scope_is_nested() -> None:
    policy = parse(json.dumps({"order": {"kind": ["book"], "price": [{"numeric": [">=", 10]}]}}), "MessageBody")
    body = json.dumps({"order": {"kind": "book", "price": 12}})
    assert matches(policy, "MessageBody", {}, body)
    assert not matches(policy, "MessageBody", {}, json.dumps({"order": {"kind": "book", "price": 3}}))
    assert not matches(policy, "MessageBody", {}, "not json")
    listed = parse(json.dumps({"items": {"sku": ["a"]}}), "MessageBody")
    assert matches(listed, "MessageBody", {}, json.dumps({"items": [{"sku": "b"}, {"sku": "a"}]}))


@pytest.mark.parametrize("policy", [
    "not json", "[]", '{"a": "x"}', '{"a": [{"wat": 1}]}', '{"a": [{"numeric": [">", "x"]}]}',
    '{"a": []}', '{"a": {"b": ["x"]}}', '{"$or": [{"a": ["x"]}]}',
])
def test_invalid_policies(policy: str) -> None:
    with pytest.raises(FilterPolicyError):
        parse(policy)


@pytest.mark.parametrize(("policy", "reason"), [
    ({"k": [["v"]]}, "Match value must be String, number, true, false, or null"),
    ({"k": [{"suffix": "v", "prefix": "w"}]}, "Only one key allowed in match expression"),
    ({"k": {"suffix": "v"}}, '"suffix" must be an object or an array'),
    ({"k": []}, "Empty arrays are not allowed"),
    ({"k": [{"cidr": ["x"]}]}, "prefix match pattern must be a string"),
    ({"k": [{"cidr": "bad/64"}]}, "Nonstandard IP address: bad"),
    ({"k": [{"cidr": "bad-/64x"}]}, "Malformed CIDR, mask bits must be an integer"),
    ({"k": [{"numeric": []}]}, "Invalid member in numeric match: ]"),
    ({"k": [{"numeric": [1, "<="]}]}, "Invalid member in numeric match: 1"),
    ({"k": [{"numeric": ["=", "0"]}]}, "Value of equals must be numeric"),
    ({"k": [{"numeric": ["<", 100, ">", 10]}]}, "Too many elements in numeric expression"),
    ({"k": [{"numeric": [">=", 1, ">", 2]}]}, "Bad numeric range operator: >"),
    ({"k": [{"numeric": [">", 20, 30]}]}, "Bad value in numeric range: 30"),
    ({"k": [{"numeric": [">", 3, "<", 1]}]}, "Bottom must be less than top"),
    ({"k": [{"numeric": [">", 2, "<", 3, "<", 5]}]}, "Too many terms in numeric range expression"),
    ({"k": [{"anything-but": {"suffix": "x"}}]}, "Unsupported anything-but pattern: suffix"),
    ({"k": [f"v{i}" for i in range(151)]}, "Filter policy is too complex"),
    ({f"k{i}": ["v"] for i in range(6)}, "Filter policy can not have more than 5 keys"),
    # 3x4 (3 levels down, 4 values) x 2x3 x 1x3 = 216 (AWS's example)
    ({"a": {"b": {"c": ["1", "2", "3", "4"]}}, "d": {"e": ["1", "2", "3"]}, "f": ["1", "2", "3"]},
     "Filter policy is too complex"),
])
def test_invalid_policy_reasons_are_aws_texts(policy: dict[str, Any], reason: str) -> None:
    with pytest.raises(FilterPolicyError) as info:
        parse(json.dumps(policy), "MessageBody")  # the body scope: nested policies allowed
    assert str(info.value) == reason


def test_body_paths_are_dotted() -> None:
    policy = parse(json.dumps({"object.nested": ["v"]}), "MessageBody")
    assert matches(policy, "MessageBody", {}, json.dumps({"object": {"nested": "v"}}))
    assert matches(policy, "MessageBody", {}, json.dumps({"object.nested": "v"}))
    assert not matches(policy, "MessageBody", {}, json.dumps({"object": {"nested": "w"}}))
    with pytest.raises(FilterPolicyError) as info:
        parse(json.dumps({"a": {"b": ["x"]}}))
    assert info.value.bare
