"""DynamoDB numbers, sizes and key encodings against AWS's documented rules and recorded sizes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hearth.aws.errors import AwsError
from hearth.services.dynamodb import values as v

# (input, stored form) — AWS answers numbers normalized, without exponent or trailing zeros.
NUMBERS = [
    ("1", "1"), ("1.0", "1"), ("01.50", "1.5"), ("-0", "0"), ("0.000", "0"), ("1e2", "100"), ("-1.25E-1", "-0.125"),
    ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
    ("9.9999999999999999999999999999999999999E+125", "9" * 38 + "0" * 88),
    ("1E-130", "0." + "0" * 129 + "1"),
]


@pytest.mark.parametrize(("raw", "stored"), NUMBERS)
def test_number_normalization(raw: str, stored: str) -> None:
    assert v.normalize_number(raw) == stored


@pytest.mark.parametrize(("raw", "message"), [
    ("1" * 39, "Attempting to store more than 38 significant digits in a Number"),
    ("1E+126", "Number overflow. Attempting to store a number with magnitude larger than supported range"),
    ("1E-131", "Number underflow. Attempting to store a number with magnitude smaller than supported range"),
    ("abc", "A value provided cannot be converted into a number"),
    ("NaN", "A value provided cannot be converted into a number"),
    ("Infinity", "A value provided cannot be converted into a number"),
])
def test_number_refusals(raw: str, message: str) -> None:
    with pytest.raises(AwsError) as info:
        v.normalize_number(raw)
    assert (info.value.code, info.value.message) == ("ValidationException", message)


def test_arithmetic_keeps_38_digits() -> None:
    big = Decimal("9" * 37)
    assert v.format_number(v.arithmetic(big, Decimal(1), False)) == "1" + "0" * 37
    with pytest.raises(AwsError):
        v.arithmetic(Decimal("9" * 38), Decimal("0.1"), False)  # 39 significant digits


@pytest.mark.parametrize(("item", "size"), [
    # AWS's recorded stream SizeBytes (keys + images): 12 + 34 = 46, 27 + 43 = 70.
    ({"id": {"S": "my-item-id"}, "attr1": {"S": "value1"}, "attr2": {"S": "value2"}}, 34),
    ({"binary_key": {"B": b"foobar"}, "my_partition_key": {"S": "hello world"}}, 43),
    ({"a": {"N": "1"}}, 1 + 2), ({"a": {"N": "123456"}}, 1 + 4), ({"a": {"N": "-0.001"}}, 1 + 2),
    ({"a": {"BOOL": True}}, 2), ({"a": {"NULL": True}}, 2), ({"ü": {"S": "é"}}, 4),
    ({"a": {"L": [{"S": "x"}, {"N": "1"}]}}, 1 + 3 + (1 + 1) + (1 + 2)),
    ({"a": {"M": {"k": {"S": "vv"}}}}, 1 + 3 + 1 + 1 + 2), ({"a": {"SS": ["ab", "c"]}}, 1 + 3),
])
def test_item_sizes(item: v.Item, size: int) -> None:
    assert v.item_size(item) == size


def test_item_limit_is_400_kb() -> None:
    v.check_item_size({"a": {"S": "x" * (400 * 1024 - 1)}})
    with pytest.raises(AwsError) as info:
        v.check_item_size({"a": {"S": "x" * (400 * 1024)}})
    assert info.value.message == "Item size has exceeded the maximum allowed size"


@pytest.mark.parametrize(("value", "message"), [
    ({}, "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"),
    ({"S": "a", "N": "1"}, "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the "
                           "supported datatypes"),
    ({"NS": []}, "One or more parameter values were invalid: An number set  may not be empty"),
    ({"SS": ["a", "a"]}, "One or more parameter values were invalid: Input collection [a, a] contains duplicates."),
    ({"NS": ["1", "1.0"]}, "One or more parameter values were invalid: Input collection [1, 1.0] contains "
                           "duplicates."),
])
def test_value_refusals(value: dict[str, object], message: str) -> None:
    with pytest.raises(AwsError) as info:
        v.validate_value(value)
    assert info.value.message == message


numbers = st.decimals(min_value=Decimal("-1E+20"), max_value=Decimal("1E+20"), allow_nan=False,
                      allow_infinity=False, places=6)


@given(numbers, numbers)
def test_number_key_encoding_keeps_order(a: Decimal, b: Decimal) -> None:
    ea, eb = v.encode_key({"N": v.format_number(v.check_number(a))}), v.encode_key({"N": v.format_number(
        v.check_number(b))})
    assert (ea < eb) == (a < b) and (ea == eb) == (a == b)


@given(st.text(), st.text())
def test_string_key_encoding_is_utf8_byte_order(a: str, b: str) -> None:
    assert (v.encode_key({"S": a}) < v.encode_key({"S": b})) == (a.encode() < b.encode())


@given(st.binary(), st.binary())
def test_binary_key_encoding_is_bytewise(a: bytes, b: bytes) -> None:
    assert (v.encode_key({"B": a}) < v.encode_key({"B": b})) == (a < b)
