"""AWS's event-stream encoding (application/vnd.amazon.eventstream): the framing of the answers that
arrive as a sequence of events (Lambda's InvokeWithResponseStream, Kinesis' SubscribeToShard), and the
events of a json-protocol operation rendered from their botocore shapes.

Framing, per message: total length (4 bytes, big-endian), headers length (4), CRC32 of those 8 bytes
(4), headers, payload, CRC32 of everything before it (4). A header: name length (1), name, type 7
(string), value length (2), value. botocore's `botocore.eventstream` is the reader this must satisfy.

A json-protocol operation whose output has an event-stream member answers first an `initial-response`
event (the output's other members, `{}` when there are none: botocore refuses a stream that starts
otherwise), then one event per item, named by its member of the stream's union shape. It never decides
what the events are (the service does) and never writes to a connection.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from botocore.model import Shape, StructureShape

from hearth.aws.protocols.common import dumps, to_json

CONTENT_TYPE = "application/vnd.amazon.eventstream"


def encode_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message with string-valued headers."""
    encoded = b"".join(
        struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v
        for n, v in ((name.encode(), value.encode()) for name, value in headers)
    )
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def json_event(event_type: str, payload: bytes) -> bytes:
    return encode_message([(":event-type", event_type), (":content-type", "application/json"),
                           (":message-type", "event")], payload)


def initial_response(members: dict[str, Any] | None = None) -> bytes:
    """The first event of a json-protocol event stream: the output's members besides the stream."""
    return json_event("initial-response", dumps(members or {}))


def shaped_event(stream_shape: Shape, event_type: str, value: dict[str, Any]) -> bytes:
    """An event of the stream's union shape `stream_shape`, its payload `value` rendered as that member's
    JSON (blobs base64, timestamps epoch seconds, unmodeled keys left out)."""
    assert isinstance(stream_shape, StructureShape), "an event stream's shape is a structure (a union)"
    return json_event(event_type, dumps(to_json(stream_shape.members[event_type], value)))
