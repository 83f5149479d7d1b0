"""Message-level rules of SQS that need no storage: checksums, attribute validation, sizes, and the
SQS record a Lambda function receives.

It owns the exact MD5 algorithms AWS uses (`MD5OfMessageBody`, `MD5OfMessageAttributes`,
`MD5OfMessageSystemAttributes`) and the shape of an `aws:sqs` event record. It never touches the
database or the clock.

Message attributes are kept in SQS's wire shape with one change: a `BinaryValue` is held as its
base64 text, so attributes can be stored as JSON and passed through `events.delivery.Message`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from hearth.aws.errors import AwsError
from hearth.services.sqs.errors import invalid_parameter

MAX_ATTRIBUTES = 10
# Letters and digits of any script (AWS accepts "attr.1øßä"), plus '_', '-' and '.'.
_ATTRIBUTE_NAME = re.compile(r"^[\w\-.]{1,256}$")
# XML 1.0's character set: what SQS accepts in bodies and attribute values.
_INVALID_CHARS = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

Attributes = dict[str, dict[str, Any]]


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_of_body(body: str) -> str:
    return md5_hex(body.encode("utf-8"))


def _field(raw: bytes) -> bytes:
    return len(raw).to_bytes(4, "big") + raw


def md5_of_attributes(attributes: Attributes) -> str | None:
    """AWS's digest: per attribute, sorted by name, length-prefixed name, type, a transport byte
    (1 string, 2 binary) and the length-prefixed value. None when there are no attributes."""
    if not attributes:
        return None
    out = bytearray()
    for name in sorted(attributes):
        attr = attributes[name]
        out += _field(name.encode()) + _field(str(attr["DataType"]).encode())
        if attr.get("StringValue") is not None:
            out += b"\x01" + _field(str(attr["StringValue"]).encode())
        elif attr.get("BinaryValue") is not None:
            out += b"\x02" + _field(binary_value(attr["BinaryValue"]))
    return md5_hex(bytes(out))


def binary_value(value: Any) -> bytes:
    """A stored BinaryValue (base64 text) or one from a caller (bytes) as bytes."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return base64.b64decode(str(value))


def invalid_characters(text: str) -> bool:
    return _INVALID_CHARS.search(text) is not None


def normalize_attributes(attributes: dict[str, Any] | None, *, system: bool = False) -> Attributes:
    """Validate message attributes as SQS does and return them with BinaryValue as base64 text."""
    if not attributes:
        return {}
    kind = "system" if system else "user"
    if len(attributes) > MAX_ATTRIBUTES and not system:
        raise invalid_parameter(f"Number of message attributes [{len(attributes)}] exceeds the allowed "
                                f"maximum [{MAX_ATTRIBUTES}].")
    out: Attributes = {}
    for name, attr in attributes.items():
        if not _ATTRIBUTE_NAME.match(name) or name.lower().startswith((".", "aws.", "amazon.")) or name.endswith(".") \
                or ".." in name:
            raise invalid_parameter(f"Message ({kind}) attribute name '{name}' is invalid.")
        data_type = str(attr.get("DataType") or "")
        if not data_type:
            raise invalid_parameter(f"The message attribute '{name}' must contain non-empty message attribute "
                                    "type.")
        base = data_type.split(".", 1)[0]
        if base not in ("String", "Number", "Binary"):
            raise invalid_parameter(f"The type of message ({kind}) attribute '{name}' is invalid. You must use "
                                    "only the following supported type prefixes: Binary, Number, String.")
        entry: dict[str, Any] = {"DataType": data_type}
        if base == "Binary":
            value = attr.get("BinaryValue")
            if value is None or len(value) == 0:
                raise _empty_value(name, base)
            entry["BinaryValue"] = base64.b64encode(binary_value(value)).decode()
        else:
            text = attr.get("StringValue")
            if text is None:
                raise _empty_value(name, base)
            if text == "":  # present but empty: AWS's other text (recorded)
                raise invalid_parameter(f"Message ({kind}) attribute '{name}' must contain a non-empty value of "
                                        f"type '{base}'.")
            if invalid_characters(text):
                raise invalid_parameter(f"Message ({kind}) attribute '{name}' contains invalid characters.")
            if base == "Number" and not _is_number(text):
                raise invalid_parameter(f"Can't cast the value of message ({kind}) attribute '{name}' to a number.")
            entry["StringValue"] = text
        out[name] = entry
    return out


def _empty_value(name: str, base: str) -> AwsError:
    return invalid_parameter(f"The message attribute '{name}' must contain non-empty message attribute value "
                             f"for message attribute type '{base}'.")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def message_size(body: str, attributes: Attributes) -> int:
    """What counts against MaximumMessageSize: the body plus every attribute's name, type and value."""
    size = len(body.encode("utf-8"))
    for name, attr in attributes.items():
        size += len(name.encode()) + len(str(attr["DataType"]).encode())
        if "StringValue" in attr:
            size += len(str(attr["StringValue"]).encode())
        elif "BinaryValue" in attr:
            size += len(binary_value(attr["BinaryValue"]))
    return size


def attributes_for_api(attributes: Attributes) -> dict[str, dict[str, Any]]:
    """Stored attributes as the API returns them (BinaryValue back to bytes)."""
    out: dict[str, dict[str, Any]] = {}
    for name, attr in attributes.items():
        entry: dict[str, Any] = {"DataType": attr["DataType"]}
        if "StringValue" in attr:
            entry["StringValue"] = attr["StringValue"]
        if "BinaryValue" in attr:
            entry["BinaryValue"] = binary_value(attr["BinaryValue"])
        out[name] = entry
    return out


def select_attributes(attributes: Attributes, names: list[str] | None) -> Attributes:
    """The attributes a ReceiveMessage asked for: `All`, `.*`, `prefix.*` or exact names."""
    if not names or not attributes:
        return {}
    if any(n in ("All", ".*", "*") for n in names):
        return dict(attributes)
    # "Hel.*" selects "Hello" and "Help.Me": the prefix is what comes before ".*" (recorded by AWS).
    prefixes = tuple(n[:-2] for n in names if n.endswith(".*"))
    exact = {n for n in names if not n.endswith(".*")}
    return {k: v for k, v in attributes.items() if k in exact or (prefixes and k.startswith(prefixes))}


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """AWS's `aws:sqs` event record for one message returned by `QueueService.receive`
    (which must have been asked for all system and message attributes)."""
    attrs: dict[str, str] = {}
    for key in ("ApproximateReceiveCount", "SentTimestamp", "SequenceNumber", "MessageGroupId", "SenderId",
                "MessageDeduplicationId", "ApproximateFirstReceiveTimestamp", "AWSTraceHeader",
                "DeadLetterQueueSourceArn"):
        value = message.get("Attributes", {}).get(key)
        if value is not None:
            attrs[key] = value
    message_attributes: dict[str, Any] = {}
    for name, attr in message.get("MessageAttributes", {}).items():
        entry: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": attr["DataType"]}
        if attr.get("StringValue") is not None:
            entry["stringValue"] = attr["StringValue"]
        if attr.get("BinaryValue") is not None:
            entry["binaryValue"] = base64.b64encode(binary_value(attr["BinaryValue"])).decode()
        message_attributes[name] = entry
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attrs,
        "messageAttributes": message_attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record
