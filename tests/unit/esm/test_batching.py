from __future__ import annotations

import base64
import json

import pytest

from hearth.esm import batching
from hearth.esm.batching import COMPLETE_FAILURE, SUCCESS, ItemVerdict, item_failures


@pytest.mark.parametrize("payload", [b"", b"null", b"{}", b'{"batchItemFailures": []}',
                                     b'{"batchItemFailures": null}', b"  "])
def test_empty_responses_are_complete_success(payload: bytes) -> None:
    assert item_failures(payload, ["a", "b"]) == SUCCESS


@pytest.mark.parametrize("payload", [b"not json", b"[1]", b'"text"', b'{"batchItemFailures": {}}',
                                     b'{"batchItemFailures": [{"itemIdentifier": ""}]}',
                                     b'{"batchItemFailures": [{"itemIdentifier": null}]}',
                                     b'{"batchItemFailures": [{"itemId": "a"}]}',
                                     b'{"batchItemFailures": [{"itemIdentifier": "zzz"}]}',
                                     b'{"batchItemFailures": ["a"]}'])
def test_malformed_responses_are_complete_failure(payload: bytes) -> None:
    assert item_failures(payload, ["a", "b"]) == COMPLETE_FAILURE


def test_named_items_fail() -> None:
    verdict = item_failures(b'{"batchItemFailures": [{"itemIdentifier": "b"}]}', ["a", "b", "c"])
    assert verdict == ItemVerdict(False, frozenset({"b"})) and not verdict.success


def test_filters_see_parsed_bodies_and_decoded_data() -> None:
    filters = batching.compile_filters(['{"body": {"kind": ["keep"]}}', '{"body": ["plain"]}'])
    assert batching.keep(filters, batching.sqs_filter_view({"body": json.dumps({"kind": "keep"})}))
    assert batching.keep(filters, batching.sqs_filter_view({"body": "plain"}))
    assert not batching.keep(filters, batching.sqs_filter_view({"body": json.dumps({"kind": "drop"})}))
    assert batching.keep((), batching.sqs_filter_view({"body": "anything"}))
    kfilters = batching.compile_filters(['{"data": {"t": [{"numeric": [">", 5]}]}, "partitionKey": ["p"]}'])
    record = {"kinesis": {"partitionKey": "p", "data": base64.b64encode(b'{"t": 9}').decode()}}
    assert batching.keep(kfilters, batching.kinesis_filter_view(record))
    record["kinesis"]["data"] = base64.b64encode(b"\xff\xfe").decode()
    assert not batching.keep(kfilters, batching.kinesis_filter_view(record))


@pytest.mark.parametrize("pattern", ['{"a": 1}', "not json", "[]", '{"a": [{"nope": 1}]}'])
def test_bad_patterns_are_refused_with_aws_text(pattern: str) -> None:
    with pytest.raises(batching.FilterError, match=r"^Invalid filter pattern definition\.$"):
        batching.compile_filters([pattern])


def test_halves() -> None:
    assert batching.halves([1, 2, 3, 4, 5]) == ([1, 2], [3, 4, 5])
    assert batching.halves([1, 2]) == ([1], [2])
