"""DynamoDB expressions: a table of AWS's documented results, AWS's error texts, and a fuzz proving
that garbage always ends as a ValidationException, never a crash."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.aws.errors import AwsError
from hearth.services.dynamodb.evaluate import apply_update, check, project
from hearth.services.dynamodb.expressions import (
    ExpressionError,
    Substitutions,
    parse_condition,
    parse_projection,
    parse_update,
)

# The developer guide's example item (ProductCatalog), in DynamoDB JSON.
ITEM: dict[str, Any] = {
    "Id": {"N": "123"}, "Title": {"S": "Bicycle 123"}, "Price": {"N": "500"}, "Color": {"SS": ["Red", "Black"]},
    "ProductCategory": {"S": "Bicycle"}, "InStock": {"BOOL": True}, "QuantityOnHand": {"NULL": True},
    "RelatedItems": {"L": [{"N": "341"}, {"N": "472"}, {"N": "649"}]},
    "Pictures": {"M": {"FrontView": {"S": "http://example.com/products/123_front.jpg"},
                       "SideView": {"S": "http://example.com/products/123_left_side.jpg"}}},
    "ProductReviews": {"M": {"FiveStar": {"L": [{"S": "Excellent! Can't recommend it highly enough! Buy it!"},
                                               {"S": "Do yourself a favor and buy this."}]},
                             "OneStar": {"L": [{"S": "Terrible product! Do no buy this."}]}}},
    "Comment": {"S": "This product sells out quickly during the summer"},
    "Safety.Warning": {"S": "Always wear a helmet"},
}
VALUES = {":p": {"N": "500"}, ":lo": {"N": "100"}, ":hi": {"N": "600"}, ":c": {"S": "Red"}, ":v": {"S": "Bicycle"},
          ":t": {"S": "SS"}, ":n": {"N": "3"}, ":m": {"S": "M"}, ":b": {"S": "Bi"}, ":bool": {"BOOL": True},
          ":x": {"S": "x"}, ":s": {"S": "summer"}, ":nine": {"N": "649"}, ":five": {"N": "500.0"}}
NAMES = {"#sw": "Safety.Warning", "#pr": "ProductReviews", "#c": "Comment"}

# (condition, expected) — results the developer guide documents for its comparison operators and functions.
CONDITIONS = [
    ("Price = :p", True), ("Price = :five", True), ("Price <> :p", False), ("Price < :p", False),
    ("Price <= :p", True), ("Price > :lo", True), ("Price BETWEEN :lo AND :hi", True),
    ("Price IN (:lo, :hi)", False), ("Price IN (:lo, :p)", True), ("Title > :b", True),
    ("attribute_exists(Pictures.SideView)", True), ("attribute_exists(Pictures.RearView)", False),
    ("attribute_not_exists(Manufacturer)", True), ("attribute_exists(#sw)", True),
    ("attribute_type(Color, :t)", True), ("attribute_type(Pictures, :m)", True), ("attribute_type(Price, :m)", False),
    ("begins_with(Pictures.FrontView, :x)", False), ("begins_with(ProductCategory, :b)", True),
    ("contains(Color, :c)", True), ("contains(#c, :s)", True), ("contains(RelatedItems, :nine)", True),
    ("size(Color) = :n", False), ("size(RelatedItems) = :n", True), ("size(#pr.FiveStar) < :n", True),
    ("RelatedItems[2] = :nine", True), ("RelatedItems[7] = :nine", False), ("InStock = :bool", True),
    ("NOT Price = :p", False), ("Price = :p AND ProductCategory = :v", True),
    ("Price = :lo OR ProductCategory = :v", True), ("(Price = :lo OR Price = :hi) AND ProductCategory = :v", False),
    ("Price = :c", False), ("Price < :c", False), ("Absent <> :c", True), ("Absent = :c", False),
    ("NOT (attribute_exists(Id) AND Price > :hi)", True), ("Price = Price", True),
]


@pytest.mark.parametrize(("text", "expected"), CONDITIONS)
def test_documented_conditions(text: str, expected: bool) -> None:
    subs = Substitutions(dict(NAMES), dict(VALUES))
    assert check(ITEM, parse_condition(text, subs)) is expected


def _update(text: str, item: dict[str, Any] | None = None, values: dict[str, Any] | None = None) -> dict[str, Any]:
    subs = Substitutions(dict(NAMES), values or dict(VALUES))
    return apply_update(item or ITEM, parse_update(text, subs), ("Id",))


def test_documented_updates() -> None:
    values = {":p": {"N": "75"}, ":ri": {"L": [{"S": "Hammer"}]}, ":r": {"NS": ["472", "649"]},
              ":one": {"N": "-1"}, ":c": {"SS": ["Yellow", "Red"]}, ":z": {"N": "0"}}
    out = _update("SET Price = Price - :p, RelatedItems = list_append(:ri, RelatedItems), Stock = if_not_exists("
                  "Stock, :z) + :one ADD Color :c REMOVE Pictures.RearView, #pr.OneStar", values=values)
    assert out["Price"] == {"N": "425"} and out["Stock"] == {"N": "-1"}
    assert out["RelatedItems"]["L"][0] == {"S": "Hammer"} and len(out["RelatedItems"]["L"]) == 4
    assert sorted(out["Color"]["SS"]) == ["Black", "Red", "Yellow"]
    assert "OneStar" not in out["ProductReviews"]["M"] and ITEM["ProductReviews"]["M"]["OneStar"]  # no mutation
    removed = _update("REMOVE RelatedItems[1], RelatedItems[2]")
    assert removed["RelatedItems"] == {"L": [{"N": "341"}]}  # by original index
    appended = _update("SET RelatedItems[10] = :x")
    assert appended["RelatedItems"]["L"][-1] == {"S": "x"}  # past the end: appended
    deleted = _update("DELETE Color :c", values={":c": {"SS": ["Red", "Black"]}})
    assert "Color" not in deleted  # an emptied set is removed


@pytest.mark.parametrize(("text", "message"), [
    ("SET Price = Title + :n", "An operand in the update expression has an incorrect data type"),
    ("SET Nope.Deeper = :n", "The document path provided in the update expression is invalid for update"),
    ("SET a = :n, a = :n", "Invalid UpdateExpression: Two document paths overlap with each other; must remove or "
                           "rewrite one of these paths; path one: [a], path two: [a]"),
    ("SET a.b = :n REMOVE a", "Invalid UpdateExpression: Two document paths overlap with each other; must remove or "
                              "rewrite one of these paths; path one: [a, b], path two: [a]"),
    ("SET a = :n SET b = :n", 'Invalid UpdateExpression: The "SET" section can only be used once in an update '
                              "expression;"),
    ("ADD Title :c", "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, "
                     "operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND"),
    ("SET a = size(Title)", "Invalid UpdateExpression: The function is not allowed in an update expression; "
                            "function: size"),
    ("SET Id = :n", "One or more parameter values were invalid: Cannot update attribute Id. This attribute is part "
                    "of the key"),
    ("SET a = Absent", "The provided expression refers to an attribute that does not exist in the item"),
])
def test_update_errors(text: str, message: str) -> None:
    with pytest.raises(AwsError) as info:
        _update(text)
    assert (info.value.code, info.value.message) == ("ValidationException", message)


@pytest.mark.parametrize(("text", "message"), [
    ("", "Invalid ConditionExpression: The expression can not be empty;"),
    ("Price = ", 'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "= "'),
    ("Price == :p", 'Invalid ConditionExpression: Syntax error; token: "=", near: "== :p"'),
    ("my-attr = :p", 'Invalid ConditionExpression: Syntax error; token: "-", near: "my-attr"'),
    ("Price = :undefined", "Invalid ConditionExpression: An expression attribute value used in expression is not "
                           "defined; attribute value: :undefined"),
    ("#undefined = :p", "Invalid ConditionExpression: An expression attribute name used in the document path is not "
                        "defined; attribute name: #undefined"),
    ("Name = :p", "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: Name"),
    ("nope(Price)", "Invalid ConditionExpression: Invalid function name; function: nope"),
    ("attribute_exists(Price, Title)", "Invalid ConditionExpression: Incorrect number of operands for operator or "
                                       "function; operator or function: attribute_exists, number of operands: 2"),
    ("Price BETWEEN :hi AND :lo", "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be "
                                  "greater than or equal to lower bound; lower bound operand: AttributeValue: "
                                  "{N:600}, upper bound operand: AttributeValue: {N:100}"),
    ("attribute_type(Price, :x)", "Invalid ConditionExpression: Invalid attribute type name found; type: x, valid "
                                  "types: { B,NULL,SS,BOOL,L,BS,N,NS,S,M }"),
    ("size(:n) = :n", "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or "
                      "function: size, operand type: N"),
])
def test_condition_errors(text: str, message: str) -> None:
    with pytest.raises(AwsError) as info:
        check(ITEM, parse_condition(text, Substitutions(dict(NAMES), dict(VALUES))))
    assert (info.value.code, info.value.message) == ("ValidationException", message)


def test_unused_placeholders_are_refused() -> None:
    subs = Substitutions({"#a": "a", "#b": "b"}, {":v": {"S": "1"}})
    parse_condition("#a = :v", subs)
    with pytest.raises(ExpressionError) as info:
        subs.check_unused()
    assert info.value.message == "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"


def test_projection_of_nested_paths_and_list_elements() -> None:
    paths = parse_projection("Pictures.FrontView, RelatedItems[2], RelatedItems[0], #pr.FiveStar[1], Absent.x",
                             Substitutions(dict(NAMES), None))
    assert project(ITEM, paths) == {
        "Pictures": {"M": {"FrontView": ITEM["Pictures"]["M"]["FrontView"]}},
        "RelatedItems": {"L": [{"N": "341"}, {"N": "649"}]},
        "ProductReviews": {"M": {"FiveStar": {"L": [{"S": "Do yourself a favor and buy this."}]}}},
    }


_ALPHABET = st.sampled_from(["Price", "a", "#sw", ":p", ":c", "=", "<>", "<", ">=", "(", ")", "[", "]", "0", "12",
                             ".", ",", "+", "-", "AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD",
                             "DELETE", "size", "contains", "if_not_exists", "list_append", "attribute_exists",
                             "begins_with", " ", "#", ":", "$", "é", "\x00"])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(_ALPHABET, max_size=14).map(" ".join), st.text(max_size=40)))
def test_garbage_never_crashes(text: str) -> None:
    for parse in (lambda s: parse_condition(s, Substitutions(dict(NAMES), dict(VALUES))),
                  lambda s: parse_update(s, Substitutions(dict(NAMES), dict(VALUES))),
                  lambda s: parse_projection(s, Substitutions(dict(NAMES), dict(VALUES)))):
        try:
            tree = parse(text)
        except AwsError as err:
            assert err.code == "ValidationException" and err.message
            continue
        try:
            if isinstance(tree, list):
                if tree and hasattr(tree[0], "kind"):
                    apply_update(ITEM, tree, ("Id",))
                else:
                    project(ITEM, tree)
            else:
                check(ITEM, tree)
        except AwsError as err:
            assert err.code == "ValidationException"
