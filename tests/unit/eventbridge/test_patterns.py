"""The event pattern language: matching semantics and AWS's messages for malformed patterns."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hearth.services.events.patterns import PatternError, compile_pattern

EVENT: dict[str, Any] = {
    "version": "0", "id": "1", "detail-type": "Order Placed", "source": "com.shop", "account": "000000000000",
    "time": "2024-01-01T00:00:00Z", "region": "us-east-1", "resources": ["arn:aws:s3:::bucket/a.png"],
    "detail": {
        "state": "running", "amount": 150, "price": 9.5, "flag": True, "nothing": None,
        "tags": ["red", "blue"], "ip": "10.0.1.7", "file": "photo.PNG",
        "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 5}],
        "nested": {"deep": {"x": "y"}},
    },
}


def match(pattern: dict[str, Any], event: dict[str, Any] | None = None) -> bool:
    return compile_pattern(json.dumps(pattern)).matches(event or EVENT)


@pytest.mark.parametrize(("pattern", "expected"), [
    ({"source": ["com.shop"]}, True),
    ({"source": ["com.other"]}, False),
    ({"source": ["com.other", "com.shop"]}, True),
    ({"detail": {"amount": [150]}}, True),
    ({"detail": {"amount": [150.0]}}, True),
    ({"detail": {"amount": ["150"]}}, False),
    ({"detail": {"flag": [True]}}, True),
    ({"detail": {"flag": ["true"]}}, False),
    ({"detail": {"nothing": [None]}}, True),
    ({"detail": {"tags": ["blue"]}}, True),
    ({"detail": {"tags": ["green"]}}, False),
    ({"detail": {"nested": {"deep": {"x": ["y"]}}}}, True),
    ({"detail": {"items": {"sku": ["b"], "qty": [5]}}}, True),
    ({"detail": {"items": {"sku": ["a"], "qty": [5]}}}, False),  # fields must come from one element
    ({"detail": {"state": [{"prefix": "run"}]}}, True),
    ({"detail": {"state": [{"prefix": "RUN"}]}}, False),
    ({"detail": {"state": [{"prefix": {"equals-ignore-case": "RUN"}}]}}, True),
    ({"detail": {"file": [{"suffix": ".png"}]}}, False),
    ({"detail": {"file": [{"suffix": {"equals-ignore-case": ".png"}}]}}, True),
    ({"detail": {"state": [{"equals-ignore-case": "RUNNING"}]}}, True),
    ({"detail": {"state": [{"anything-but": "stopped"}]}}, True),
    ({"detail": {"state": [{"anything-but": ["running", "stopped"]}]}}, False),
    ({"detail": {"missing": [{"anything-but": "x"}]}}, False),
    ({"detail": {"amount": [{"anything-but": [100, 200]}]}}, True),
    ({"detail": {"state": [{"anything-but": {"prefix": "run"}}]}}, False),
    ({"detail": {"state": [{"anything-but": {"suffix": "ing"}}]}}, False),
    ({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["RUNNING"]}}]}}, False),
    ({"detail": {"state": [{"anything-but": {"wildcard": "r*g"}}]}}, False),
    ({"detail": {"amount": [{"numeric": [">", 100, "<=", 150]}]}}, True),
    ({"detail": {"amount": [{"numeric": [">", 150]}]}}, False),
    ({"detail": {"price": [{"numeric": ["=", 9.5]}]}}, True),
    ({"detail": {"state": [{"numeric": [">", 0]}]}}, False),
    ({"detail": {"state": [{"exists": True}]}}, True),
    ({"detail": {"missing": [{"exists": True}]}}, False),
    ({"detail": {"missing": [{"exists": False}]}}, True),
    ({"detail": {"state": [{"exists": False}]}}, False),
    ({"detail": {"nested": [{"exists": True}]}}, False),  # an object is not a leaf
    ({"detail": {"nothing": [{"exists": True}]}}, True),
    ({"detail": {"state": [{"wildcard": "r*n*g"}]}}, True),
    ({"detail": {"state": [{"wildcard": "r*x"}]}}, False),
    ({"detail": {"ip": [{"cidr": "10.0.0.0/16"}]}}, True),
    ({"detail": {"ip": [{"cidr": "10.1.0.0/16"}]}}, False),
    ({"resources": [{"suffix": ".png"}]}, True),
    ({"source": ["com.shop"], "detail": {"state": ["stopped"]}}, False),
    ({"$or": [{"source": ["x"]}, {"detail": {"state": ["running"]}}]}, True),
    ({"$or": [{"source": ["x"]}, {"detail": {"state": ["y"]}}]}, False),
    ({"detail": {"$or": [{"amount": [{"numeric": ["<", 10]}]}, {"price": [{"numeric": ["<", 10]}]}]}}, True),
    ({"detail": {"absent": {"inner": [{"exists": False}]}}}, True),
    ({"detail": {"absent": {"inner": ["v"]}}}, False),
])
def test_matching(pattern: dict[str, Any], expected: bool) -> None:
    assert match(pattern) is expected


@pytest.mark.parametrize(("text", "reason"), [
    ('{"int": 42}', '"int" must be an object or an array'),
    ('{"string": "my-value"}', '"string" must be an object or an array'),
    ('{"resources": []}', "Empty arrays are not allowed"),
    ('{"my_key": [{"EXISTS": true}]}', "Unrecognized match type EXISTS"),
    ('{"detail": {"equal": [{"NUMERIC": ["=", 5]}]}}', "Unrecognized match type NUMERIC"),
    ('{"detail": {"c": [{"numeric": [">", 0, ">", 0]}]}}', "Bad numeric range operator: >"),
    ('{"detail": {"c": [{"numeric": [">", 0, "<"]}]}}', "Value of < must be numeric"),
    ('{"time": [{"prefix": 123}]}', "prefix match pattern must be a string"),
    ('{"time": [{"prefix": ["2022"]}]}', "prefix match pattern must be a string"),
    ('{"f": [{"suffix": 123}]}', "suffix match pattern must be a string"),
    ('{"t": [{"equals-ignore-case": ["x"]}]}', "equals-ignore-case match pattern must be a string"),
    ('{"a": [{"wildcard": 123}]}', "wildcard match pattern must be a string"),
    ('{"a": [{"wildcard": "arn:aws:events:us-east-1:**:event-bus/*"}]}', "Consecutive wildcard characters at pos 26"),
    ('{"d": [{"anything-but": {"suffix": 123}}]}', "prefix/suffix match pattern must be a string"),
    ('{"d": [{"anything-but": {"prefix": {"equals-ignore-case": "f"}}}]}',
     "Value of anything-but must be an array or single string/number value."),
    ('{"d": [{"anything-but": {"equals-ignore-case": 123}}]}',
     "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."),
    ('{"ip": [{"cidr": "10.0.0.1"}]}', "Malformed CIDR, one '/' required"),
    ('{"ip": [{"cidr": "10.0.0.1/x"}]}', "Malformed CIDR, mask bits must be an integer"),
    ('{"ip": [{"cidr": "xx.11.xx/24"}]}', "Nonstandard IP address: xx.11.xx"),
    ('["not", "a", "dict"]', "Filter is not an object"),
    ("this is not json",
     "Unrecognized token 'this': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or "
     "'false')"),
    ("{'bad': 'quotation'}", "Unexpected character (''' (code 39)): was expecting double-quote to start field name"),
    ('{"e": [{"exists": "yes"}]}', "exists match pattern must be either true or false."),
])
def test_malformed_patterns(text: str, reason: str) -> None:
    with pytest.raises(PatternError) as info:
        compile_pattern(text)
    assert info.value.reason == reason


@pytest.mark.parametrize(("pattern", "expected"), [
    # anything-but of a string pattern matches values that are not strings (AWS-validated templates).
    ({"detail": {"amount": [{"anything-but": {"prefix": "init"}}]}}, True),
    ({"detail": {"nothing": [{"anything-but": {"suffix": ["a", "b"]}}]}}, True),
    ({"detail": {"nothing": [{"anything-but": {"wildcard": "*/dir/*"}}]}}, True),
    ({"detail": {"amount": [{"anything-but": {"equals-ignore-case": "x"}}]}}, True),
    ({"detail": {"state": [{"anything-but": {"prefix": "run"}}]}}, False),
    # Dots join field names both ways.
    ({"detail": {"nested.deep": {"x": ["y"]}}}, True),
    ({"detail": {"nested.deep.x": ["y"]}}, True),
    ({"detail": {"dotted": {"name": ["v"]}}}, True),
])
def test_anything_but_non_strings_and_dotted_names(pattern: dict[str, Any], expected: bool) -> None:
    event = {**EVENT, "detail": {**EVENT["detail"], "dotted.name": "v"}}
    assert match(pattern, event) is expected


def test_anything_but_empty_prefix_text() -> None:
    with pytest.raises(PatternError) as info:
        compile_pattern(json.dumps({"a": [{"anything-but": {"suffix": ""}}]}))
    assert str(info.value) == "Null prefix/suffix not allowed"


def test_objects_and_arrays_inside_template_text_lose_their_quotes() -> None:
    from hearth.services.events.transform import render_template

    rendered = render_template('"Payload of <p> with <l>"', {"p": {"acc_id": "a-1", "n": 2}, "l": ["HIGH", "LOW"]})
    assert json.loads(rendered) == "Payload of {acc_id:a-1,n:2} with [HIGH,LOW]"
