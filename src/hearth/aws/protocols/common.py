"""What every wire protocol shares: the request/response records and scalar conversions.

It owns the conversions between wire scalars (base64 blobs, timestamps in epoch/ISO-8601/RFC-822,
JSON documents) and the Python values providers see. It never decides status codes or error codes
of a service.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape


class BadRequest(Exception):
    """The request body or a parameter cannot be read as the model says (a protocol-level 400)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class HttpRequest:
    method: str
    path: str  # raw (percent-encoded) path
    query_string: str
    query: dict[str, list[str]]  # decoded
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | AsyncIterator[bytes] = b""


# -- timestamps ---------------------------------------------------------------------------------

def parse_timestamp(value: Any) -> datetime:
    if isinstance(value, bool):
        raise BadRequest(f"expected a timestamp, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise BadRequest("timestamp is not a finite number")
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise BadRequest(f"timestamp out of range: {value!r}") from None
    if isinstance(value, str):
        text = value.strip()
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (ValueError, OverflowError, OSError):
            pass
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
        try:
            return parsedate_to_datetime(text).astimezone(UTC)
        except (TypeError, ValueError):
            pass
    raise BadRequest(f"expected a timestamp, got {value!r}")


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return None


def format_timestamp(value: Any, fmt: str) -> Any:
    """A provider's timestamp (datetime, epoch number, or a preformatted string) in `fmt`."""
    dt = _as_datetime(value)
    if dt is None:
        return value  # a string the provider already formatted (Lambda's LastModified)
    if fmt == "unixTimestamp":
        ts = dt.timestamp()
        return int(ts) if ts.is_integer() else round(ts, 3)
    if fmt == "rfc822":
        return format_datetime(dt.astimezone(UTC), usegmt=True)
    text = dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond // 1000:03d}"
    return text + "Z"


def timestamp_format(shape: Shape, default: str) -> str:
    return str(shape.serialization.get("timestampFormat") or shape.metadata.get("timestampFormat") or default)


def b64decode(value: Any) -> bytes:
    if not isinstance(value, str):
        raise BadRequest(f"expected a base64 string, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("blob is not valid base64") from None


def b64encode(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


# -- scalars from strings (headers, query strings, query protocol) ------------------------------

def scalar_from_text(shape: Shape, text: str, timestamp_default: str) -> Any:
    t = shape.type_name
    if t == "string":
        if shape.serialization.get("jsonvalue"):
            try:
                return json.loads(base64.b64decode(text))
            except (binascii.Error, ValueError):
                raise BadRequest("jsonvalue is not base64-encoded JSON") from None
        return text
    if t in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            raise BadRequest(f"'{text}' is not an integer") from None
    if t in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            raise BadRequest(f"'{text}' is not a number") from None
    if t == "boolean":
        low = text.lower()
        if low in ("true", "false"):
            return low == "true"
        raise BadRequest(f"'{text}' is not a boolean")
    if t == "timestamp":
        return parse_timestamp(text)
    if t == "blob":
        return b64decode(text)
    return text


def scalar_to_text(shape: Shape, value: Any, timestamp_default: str) -> str:
    t = shape.type_name
    if t == "boolean":
        return "true" if value else "false"
    if t == "timestamp":
        return str(format_timestamp(value, timestamp_format(shape, timestamp_default)))
    if t == "blob":
        return b64encode(value)
    if t == "string" and shape.serialization.get("jsonvalue"):
        return b64encode(json.dumps(value, separators=(",", ":")))
    if t in ("float", "double") and isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


# -- JSON documents (rest-json bodies and the json protocol) -----------------------------------

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "long": (int,), "float": (int, float), "double": (int, float),
    "boolean": (bool,),
}


def member_names(shape: StructureShape) -> dict[str, tuple[str, Shape]]:
    """Wire name -> (member name, shape), cached on the shape object (models are cached too)."""
    cached: dict[str, tuple[str, Shape]] | None = getattr(shape, "_hearth_wire_names", None)
    if cached is None:
        cached = {}
        for name, member in shape.members.items():
            cached[member.serialization.get("name", name)] = (name, member)
        shape._hearth_wire_names = cached
    return cached


def from_json(shape: Shape, value: Any, path: str = "") -> Any:
    """A JSON value as the Python value of `shape`; raise BadRequest on a type mismatch."""
    if value is None:
        return None
    t = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            raise BadRequest(f"Start of structure or map found where not expected at '{path}'"
                             if isinstance(value, list) else f"expected an object at '{path}'")
        if shape.metadata.get("document"):
            return value
        names = member_names(shape)
        out: dict[str, Any] = {}
        for key, item in value.items():
            found = names.get(key)
            if found is None:
                continue  # AWS ignores unknown members
            name, member = found
            out[name] = from_json(member, item, f"{path}.{name}" if path else name)
        return out
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            raise BadRequest(f"expected a list at '{path}'")
        return [from_json(shape.member, item, path) for item in value]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            raise BadRequest(f"expected an object at '{path}'")
        return {k: from_json(shape.value, v, path) for k, v in value.items()}
    if t == "blob":
        return b64decode(value)
    if t == "timestamp":
        return parse_timestamp(value)
    if t == "document" or shape.metadata.get("document"):
        return value
    expected = _JSON_TYPES.get(t)
    if expected is not None:
        if isinstance(value, bool) and t != "boolean":
            raise BadRequest(f"expected {t} at '{path}', got a boolean")
        if not isinstance(value, expected):
            raise BadRequest(f"expected {t} at '{path}', got {type(value).__name__}")
        if t in ("integer", "long") and isinstance(value, float):
            raise BadRequest(f"expected {t} at '{path}'")
    return value


def to_json(shape: Shape, value: Any, timestamp_default: str = "unixTimestamp") -> Any:
    """A provider value as the JSON value of `shape` (None members are left out)."""
    if value is None:
        return None
    if isinstance(shape, StructureShape):
        if shape.metadata.get("document") or not isinstance(value, dict):
            return value
        members = shape.members
        out: dict[str, Any] = {}
        for name, item in value.items():
            if item is None:
                continue
            member = members.get(name)
            if member is None:
                continue  # only modeled members go on the wire
            out[member.serialization.get("name", name)] = to_json(member, item, timestamp_default)
        return out
    if isinstance(shape, ListShape):
        return [to_json(shape.member, item, timestamp_default) for item in value]
    if isinstance(shape, MapShape):
        return {k: to_json(shape.value, v, timestamp_default) for k, v in value.items()}
    t = shape.type_name
    if t == "blob":
        return b64encode(value)
    if t == "timestamp":
        return format_timestamp(value, timestamp_format(shape, timestamp_default))
    return value


def dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default).encode()
    except UnicodeEncodeError:
        # A lone surrogate (JSON input can carry one, e.g. echoed in an error message) has no UTF-8
        # form; escaped (\ud800) it is still valid JSON.
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True, default=_json_default).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value, "unixTimestamp")
    if isinstance(value, (bytes, bytearray)):
        return b64encode(bytes(value))
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
