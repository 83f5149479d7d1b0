"""CBOR (RFC 8949) for the json protocol's `application/x-amz-cbor-1.1` variant, which the AWS SDK for
Java sends to Kinesis by default.

It owns encoding and decoding CBOR data items and AWS's reading of them: blobs are byte strings, a
timestamp is tag 1 around an integer count of epoch milliseconds (Kinesis' deviation from RFC 8949's
seconds, which the SDKs expect). `to_json_value` turns a decoded request into the JSON-shaped document
the json protocol parses (blobs as base64 text, timestamps as epoch seconds), `from_output` a provider's
output into CBOR-ready values. It never validates against a model.
"""

from __future__ import annotations

import base64
import math
import struct
from datetime import UTC, datetime
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from hearth.aws.protocols.common import BadRequest, format_timestamp

CONTENT_TYPE = "application/x-amz-cbor-1.1"
_BREAK = object()


# -- decoding -------------------------------------------------------------------------------------

class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BadRequest("truncated CBOR data")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def argument(self, info: int) -> int | None:
        """The head's argument; None for an indefinite length (info 31)."""
        if info < 24:
            return info
        if info in (24, 25, 26, 27):
            return int.from_bytes(self.take(1 << (info - 24)), "big")
        if info == 31:
            return None
        raise BadRequest("malformed CBOR data item")

    def item(self) -> Any:
        head = self.take(1)[0]
        major, info = head >> 5, head & 0x1F
        if major == 7:
            return self._simple(info)
        arg = self.argument(info)
        if major == 0:
            return arg
        if major == 1:
            return -1 - (arg or 0)
        if major in (2, 3):
            if arg is None:
                chunks = []
                while (chunk := self.item()) is not _BREAK:
                    chunks.append(chunk)
                raw = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
            else:
                raw = self.take(arg)
            if major == 2:
                return raw
            try:
                return raw.decode()
            except UnicodeDecodeError:
                raise BadRequest("invalid UTF-8 in a CBOR text string") from None
        if major == 4:
            out: list[Any] = []
            while arg is None or len(out) < arg:
                value = self.item()
                if value is _BREAK:
                    break
                out.append(value)
            return out
        if major == 5:
            items: dict[Any, Any] = {}
            count = 0
            while arg is None or count < arg:
                key = self.item()
                if key is _BREAK:
                    break
                items[key] = self.item()
                count += 1
            return items
        value = self.item()  # major 6: a tag
        if arg == 1 and isinstance(value, (int, float)):
            return datetime.fromtimestamp(value / 1000, UTC)
        return value

    def _simple(self, info: int) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info in (22, 23):
            return None
        if info == 25:
            return _half(self.take(2))
        if info == 26:
            return struct.unpack(">f", self.take(4))[0]
        if info == 27:
            return struct.unpack(">d", self.take(8))[0]
        if info == 31:
            return _BREAK
        raise BadRequest("unsupported CBOR simple value")


def _half(raw: bytes) -> float:
    bits = int.from_bytes(raw, "big")
    exponent, mantissa = (bits >> 10) & 0x1F, bits & 0x3FF
    if exponent == 0:
        value = mantissa * 2.0 ** -24
    elif exponent == 31:
        value = math.inf if mantissa == 0 else math.nan
    else:
        value = (mantissa + 1024) * 2.0 ** (exponent - 25)
    return -value if bits & 0x8000 else value


def loads(data: bytes) -> Any:
    reader = _Reader(data)
    value = reader.item()
    if value is _BREAK or reader.pos != len(data):
        raise BadRequest("malformed CBOR body")
    return value


# -- encoding -------------------------------------------------------------------------------------

def _head(major: int, arg: int) -> bytes:
    if arg < 24:
        return bytes([major << 5 | arg])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if arg < 1 << (8 * size):
            return bytes([major << 5 | info]) + arg.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def dumps(value: Any) -> bytes:
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _encode(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        out += _head(0, value) if value >= 0 else _head(1, -1 - value)
    elif isinstance(value, float):
        out += b"\xfb" + struct.pack(">d", value)
    elif isinstance(value, (bytes, bytearray)):
        out += _head(2, len(value)) + bytes(value)
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        out += _head(3, len(raw)) + raw
    elif isinstance(value, datetime):
        out.append(0xC1)  # tag 1, epoch milliseconds as Kinesis writes them
        _encode(round(value.timestamp() * 1000), out)
    elif isinstance(value, (list, tuple)):
        out += _head(4, len(value))
        for item in value:
            _encode(item, out)
    elif isinstance(value, dict):
        out += _head(5, len(value))
        for key, item in value.items():
            _encode(key, out)
            _encode(item, out)
    else:
        raise TypeError(f"not CBOR serializable: {type(value).__name__}")


# -- the json protocol's documents ----------------------------------------------------------------

def to_json_value(value: Any) -> Any:
    """A decoded CBOR request as the JSON document the json protocol parses."""
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json_value(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.timestamp()
    return value


def from_output(shape: Shape | None, value: Any) -> Any:
    """A provider's output value as CBOR-ready values: blobs as bytes, timestamps as datetimes."""
    if value is None or shape is None:
        return value
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for name, item in value.items():
            member = shape.members.get(name)
            if member is not None and item is not None:
                out[member.serialization.get("name", name)] = from_output(member, item)
        return out
    if isinstance(shape, ListShape):
        return [from_output(shape.member, item) for item in value]
    if isinstance(shape, MapShape):
        return {k: from_output(shape.value, v) for k, v in value.items()}
    if shape.type_name == "blob":
        return value if isinstance(value, (bytes, bytearray)) else base64.b64decode(value)
    if shape.type_name == "timestamp":
        if isinstance(value, datetime):
            return value
        return datetime.fromtimestamp(float(format_timestamp(value, "unixTimestamp")), UTC)
    return value
