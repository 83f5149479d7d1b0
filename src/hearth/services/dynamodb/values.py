"""DynamoDB attribute values: validation, AWS's number rules, item sizes, ordering and key encodings.

It owns what a value *is*: an AttributeValue is a one-key dict (`{"S": str}`, `{"N": str}`,
`{"B": bytes}`, `{"BOOL": bool}`, `{"NULL": True}`, `{"M": {...}}`, `{"L": [...]}`, `{"SS": [...]}`,
`{"NS": [...]}`, `{"BS": [...]}`), as the protocol layer hands it over (binaries already decoded).
It never touches storage and never parses expressions.

Numbers follow AWS: up to 38 significant digits, magnitude 1E-130 .. 9.9999…E+125 (else
"Number overflow"/"Number underflow"), stored and answered normalized ("1.50" -> "1.5", "1e2" -> "100",
"-0" -> "0"). Sizes follow AWS's published rules, checked against recorded stream `SizeBytes`:
names and strings count their UTF-8 bytes, a number (significant digits + 1) // 2 + 1 bytes, a binary
its length, BOOL and NULL 1 byte, a list or map 3 bytes plus 1 byte and the size of each element
(a map's element counts its key too), a set the sum of its elements.
"""

from __future__ import annotations

import base64
import decimal
import json
from decimal import Decimal
from typing import Any

from hearth.aws.errors import AwsError

Value = dict[str, Any]
Item = dict[str, Value]

MAX_ITEM_BYTES = 400 * 1024
MAX_DIGITS = 38
MAX_EXPONENT = 125  # 9.9999999999999999999999999999999999999E+125
MIN_EXPONENT = -130  # 1E-130
TYPES = ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS")
SET_TYPES = {"SS": "S", "NS": "N", "BS": "B"}
SET_NAMES = {"SS": "string", "NS": "number", "BS": "binary"}

# Arithmetic is exact up to 38 digits; the traps turn what AWS refuses into errors.
CONTEXT = decimal.Context(prec=MAX_DIGITS, rounding=decimal.ROUND_HALF_EVEN, Emax=999, Emin=-999,
                          traps=[decimal.InvalidOperation, decimal.Overflow, decimal.Inexact])


def invalid(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def invalid_param(message: str) -> AwsError:
    return invalid(f"One or more parameter values were invalid: {message}")


# -- numbers --------------------------------------------------------------------------------------

def parse_number(text: Any) -> Decimal:
    """A DynamoDB number, validated as AWS does (digits, magnitude)."""
    if not isinstance(text, str):
        raise invalid("A value provided cannot be converted into a number")
    raw = text.strip()
    try:
        value = Decimal(raw)
    except decimal.InvalidOperation:
        raise invalid("A value provided cannot be converted into a number") from None
    if not value.is_finite() or not raw or raw.lower().startswith(("inf", "nan", "+inf", "-inf")):
        raise invalid("A value provided cannot be converted into a number")
    return check_number(value)


def check_number(value: Decimal) -> Decimal:
    if value.is_zero():
        return Decimal(0)
    value = value.normalize(decimal.Context(prec=200))
    digits = len(value.as_tuple().digits)
    if digits > MAX_DIGITS:
        raise invalid("Attempting to store more than 38 significant digits in a Number")
    if value.adjusted() > MAX_EXPONENT:
        raise invalid("Number overflow. Attempting to store a number with magnitude larger than supported range")
    if value.adjusted() < MIN_EXPONENT:
        raise invalid("Number underflow. Attempting to store a number with magnitude smaller than supported range")
    return value


def format_number(value: Decimal) -> str:
    if value.is_zero():
        return "0"
    text = format(value.normalize(decimal.Context(prec=200)), "f")
    return text


def normalize_number(text: Any) -> str:
    return format_number(parse_number(text))


def arithmetic(left: Decimal, right: Decimal, subtract: bool) -> Decimal:
    try:
        result = CONTEXT.subtract(left, right) if subtract else CONTEXT.add(left, right)
    except decimal.Inexact:
        raise invalid("Number overflow. Attempting to store a number with magnitude larger than supported "
                      "range") from None
    return check_number(result)


# -- validation -----------------------------------------------------------------------------------

def validate_value(value: Any, *, top: bool = True) -> Value:
    """Check one AttributeValue and return it normalized (numbers, sets in AWS's form)."""
    if not isinstance(value, dict) or not value:
        raise invalid("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
    present = [k for k, v in value.items() if v is not None]
    if not present:
        raise invalid("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
    if len(present) > 1:
        raise invalid("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the "
                      "supported datatypes")
    kind = present[0]
    raw = value[kind]
    if kind == "S":
        return {"S": text(raw)}
    if kind == "N":
        return {"N": normalize_number(raw)}
    if kind == "B":
        return {"B": bytes(raw)}
    if kind == "BOOL":
        return {"BOOL": bool(raw)}
    if kind == "NULL":
        if raw is not True:
            raise invalid_param("Null attribute value types must have the value of true")
        return {"NULL": True}
    if kind == "M":
        return {"M": {text(k): validate_value(v, top=False) for k, v in dict(raw).items()}}
    if kind == "L":
        return {"L": [validate_value(v, top=False) for v in list(raw)]}
    if kind in SET_TYPES:
        items = list(raw)
        if not items:
            raise invalid_param(f"An {SET_NAMES[kind]} set  may not be empty")
        if kind == "NS":
            parsed = [parse_number(x) for x in items]
            out = [format_number(x) for x in parsed]
            if len(set(parsed)) != len(parsed):
                raise invalid_param(f"Input collection {_show_list(items)} contains duplicates.")
        elif kind == "BS":
            blobs = [bytes(x) for x in items]
            if len(set(blobs)) != len(blobs):
                raise invalid_param(f"Input collection {_show_list(items)}of type BS contains duplicates.")
            return {kind: blobs}
        else:
            out = [text(x) for x in items]
            if len(set(out)) != len(out):
                raise invalid_param(f"Input collection {_show_list(items)} contains duplicates.")
        return {kind: out}
    raise invalid("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")


def text(raw: Any) -> str:
    """A string that is valid Unicode (JSON can carry lone surrogates, which no UTF-8 store takes)."""
    value = str(raw)
    try:
        value.encode()
    except UnicodeEncodeError:
        raise invalid("One or more parameter values were invalid: A string value is not valid UTF-8") from None
    return value


def _show_list(items: list[Any]) -> str:
    return "[" + ", ".join(str(x) for x in items) + "]"


def validate_item(item: Any) -> Item:
    return {text(k): validate_value(v) for k, v in dict(item).items()}


# -- sizes ----------------------------------------------------------------------------------------

def number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_size(value: Value) -> int:
    kind, raw = next(iter(value.items()))
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return number_size(raw)
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in raw.items())
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "SS":
        return sum(len(x.encode()) for x in raw)
    if kind == "NS":
        return sum(number_size(x) for x in raw)
    if kind == "BS":
        return sum(len(x) for x in raw)
    return 0


def item_size(item: Item) -> int:
    return sum(len(k.encode()) + value_size(v) for k, v in item.items())


def check_item_size(item: Item) -> int:
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise invalid("Item size has exceeded the maximum allowed size")
    return size


# -- equality and order ---------------------------------------------------------------------------

def kind_of(value: Value) -> str:
    return next(iter(value))


def equal(a: Value | None, b: Value | None) -> bool:
    if a is None or b is None:
        return False
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        return False
    va, vb = a[ka], b[kb]
    if ka == "N":
        return Decimal(va) == Decimal(vb)
    if ka == "NS":
        return {Decimal(x) for x in va} == {Decimal(x) for x in vb}
    if ka in ("SS", "BS"):
        return set(va) == set(vb)
    if ka == "M":
        return va.keys() == vb.keys() and all(equal(va[k], vb[k]) for k in va)
    if ka == "L":
        return len(va) == len(vb) and all(equal(x, y) for x, y in zip(va, vb, strict=True))
    return bool(va == vb)


def compare(a: Value, b: Value) -> int | None:
    """-1/0/1 for two scalars of the same orderable type (S by UTF-8 bytes, N, B bytewise), else None."""
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb or ka not in ("S", "N", "B"):
        return None
    if ka == "N":
        x: Any = Decimal(a["N"])
        y: Any = Decimal(b["N"])
    elif ka == "S":
        x, y = a["S"].encode(), b["S"].encode()
    else:
        x, y = a["B"], b["B"]
    return int(x > y) - int(x < y)


# -- key encodings (sortable text columns) --------------------------------------------------------

def encode_key(value: Value) -> str:
    """A text whose bytewise order is DynamoDB's order of values of one key type.

    S and B: hex of the bytes (bytewise order kept, any byte safe in any SQL engine). N: a class
    digit (0 negative, 1 zero, 2 positive), a 3-digit biased exponent (complemented when negative)
    and the digits (complemented and closed by '~' when negative, so that -1.55 < -1.5)."""
    kind = kind_of(value)
    if kind == "S":
        return str(value["S"]).encode().hex()
    if kind == "B":
        return bytes(value["B"]).hex()
    number = Decimal(value["N"])
    if number.is_zero():
        return "1"
    sign, digits, _ = number.as_tuple()
    exponent = number.adjusted() + 500
    text = "".join(str(d) for d in digits).rstrip("0") or "0"
    if sign == 0:
        return f"2{exponent:03d}{text}"
    complement = "".join(str(9 - int(d)) for d in text)
    return f"0{999 - exponent:03d}{complement}~"


# -- storage form ---------------------------------------------------------------------------------

def _to_doc(value: Value) -> Any:
    kind, raw = next(iter(value.items()))
    if kind == "B":
        return {"B": base64.b64encode(raw).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(x).decode() for x in raw]}
    if kind == "M":
        return {"M": {k: _to_doc(v) for k, v in raw.items()}}
    if kind == "L":
        return {"L": [_to_doc(v) for v in raw]}
    return value


def _from_doc(doc: Any) -> Value:
    kind, raw = next(iter(doc.items()))
    if kind == "B":
        return {"B": base64.b64decode(raw)}
    if kind == "BS":
        return {"BS": [base64.b64decode(x) for x in raw]}
    if kind == "M":
        return {"M": {k: _from_doc(v) for k, v in raw.items()}}
    if kind == "L":
        return {"L": [_from_doc(v) for v in raw]}
    return dict(doc)


def dump_item(item: Item) -> str:
    """DynamoDB JSON (binaries base64), as stored."""
    return json.dumps({k: _to_doc(v) for k, v in item.items()}, separators=(",", ":"), ensure_ascii=False)


def load_item(text: str) -> Item:
    return {k: _from_doc(v) for k, v in json.loads(text).items()}


def to_wire(item: Item) -> dict[str, Any]:
    """DynamoDB JSON for an event payload (binaries base64), as Lambda receives stream records."""
    return {k: _to_doc(v) for k, v in item.items()}
