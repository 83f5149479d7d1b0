"""Random items and update expressions through the item provider and the store: what is written is read
back as written (normalized), and nothing but AWS errors ever escapes."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hearth.aws.context import Principal, RequestContext
from hearth.aws.errors import AwsError
from hearth.services.dynamodb import values as v
from hearth.services.dynamodb.items_api import ItemsProvider
from hearth.services.dynamodb.reads_api import ReadsProvider
from hearth.services.dynamodb.store import TableStore
from hearth.services.dynamodb.tables_api import TablesProvider

CTX = RequestContext(service="dynamodb", operation="x", region="us-east-1", principal=Principal("AKIA", "1"),
                     request_id="r")


@pytest.fixture(scope="module")
def providers() -> Iterator[tuple[ItemsProvider, ReadsProvider]]:
    data = Path(tempfile.mkdtemp(prefix="hearth-ddb-items-fuzz-"))
    store = TableStore(data)
    TablesProvider(store, lambda a, r, s: f"arn:aws:kms:{r}:{a}:key/managed-{s}").create_table(CTX, {
        "TableName": "f", "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}, {"AttributeName": "s", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"},
                                 {"AttributeName": "s", "AttributeType": "N"}],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}})
    yield ItemsProvider(store), ReadsProvider(store)
    store.close()
    shutil.rmtree(data, ignore_errors=True)

numbers = st.one_of(st.integers(-10**20, 10**20).map(str), st.decimals(allow_nan=False, allow_infinity=False,
                                                                       places=4).map(str),
                    st.sampled_from(["1e5", "-0", "0.000", "1E-130", "9.9E+125", "1" * 39, "x"]))
scalars = st.one_of(st.text(max_size=8).map(lambda s: {"S": s}), numbers.map(lambda n: {"N": n}),
                    st.binary(max_size=8).map(lambda b: {"B": b}), st.booleans().map(lambda b: {"BOOL": b}),
                    st.just({"NULL": True}), st.lists(st.text(max_size=3), max_size=3).map(lambda x: {"SS": x}),
                    st.lists(numbers, max_size=3).map(lambda x: {"NS": x}),
                    st.lists(st.binary(max_size=3), max_size=3).map(lambda x: {"BS": x}))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(lambda x: {"L": x}),
    st.dictionaries(st.text(max_size=3), inner, max_size=3).map(lambda x: {"M": x})), max_leaves=8)
names = st.sampled_from(["a", "b", "c", "#n", "a.b", "a[0]", "c[1]"])
actions = st.lists(st.tuples(st.sampled_from(["SET", "REMOVE", "ADD", "DELETE"]), names,
                             st.sampled_from([":v", ":w", "a + :v", "if_not_exists(b, :v)", "list_append(c, :w)"])),
                   min_size=1, max_size=3)


def _update_text(chosen: list[tuple[str, str, str]]) -> str:
    parts: dict[str, list[str]] = {}
    for word, path, value in chosen:
        clause = f"{path} = {value}" if word == "SET" else path if word == "REMOVE" else f"{path} {value.split()[0]}"
        parts.setdefault(word, []).append(clause)
    return " ".join(f"{word} {', '.join(clauses)}" for word, clauses in parts.items())


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(min_size=1, max_size=5), st.integers(0, 5), st.dictionaries(st.sampled_from(["a", "b", "c"]), values,
                                                                           max_size=3), actions, values, values)
def test_writes_read_back_and_never_crash(providers: tuple[ItemsProvider, ReadsProvider], key: str, sort: int,
                                          attrs: dict[str, Any], chosen: list[tuple[str, str, str]], first: Any,
                                          second: Any) -> None:
    ITEMS, READS = providers
    item = {"k": {"S": key}, "s": {"N": str(sort)}, **attrs}
    ident = {"k": item["k"], "s": item["s"]}
    try:
        ITEMS.put_item(CTX, {"TableName": "f", "Item": item})
    except AwsError as err:
        assert err.code == "ValidationException"
    else:
        stored = ITEMS.get_item(CTX, {"TableName": "f", "Key": ident, "ConsistentRead": True})["Item"]
        assert all(v.equal(stored[name], v.validate_value(value)) for name, value in item.items())
    text = _update_text(chosen)
    params: dict[str, Any] = {"TableName": "f", "Key": ident, "UpdateExpression": text, "ReturnValues": "ALL_NEW"}
    used_values = {k: val for k, val in ((":v", first), (":w", second)) if k in text}
    if used_values:
        params["ExpressionAttributeValues"] = used_values
    if "#n" in text:
        params["ExpressionAttributeNames"] = {"#n": "n"}
    try:
        out = ITEMS.update_item(CTX, params)
    except AwsError as err:
        assert err.code in ("ValidationException", "ConditionalCheckFailedException"), err
        return
    got = ITEMS.get_item(CTX, {"TableName": "f", "Key": ident})["Item"]
    assert out["Attributes"] == got
    query = READS.query(CTX, {"TableName": "f", "KeyConditionExpression": "k = :k AND s = :s",
                              "ExpressionAttributeValues": {":k": item["k"], ":s": item["s"]}})
    assert query["Items"] == [got]
