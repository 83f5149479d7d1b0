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
