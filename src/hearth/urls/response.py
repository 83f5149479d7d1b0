"""The HTTP response a function URL gives for a function's result, by AWS's rules.

It owns the mapping: a JSON object with `statusCode` is a structured response (`statusCode`, `headers`,
`cookies` as Set-Cookie headers, `body`, `isBase64Encoded`); any other JSON value is inferred as a 200
`application/json` response whose body is the value (a JSON string is the body itself, unquoted; other
values are their JSON text). It also reads the metadata prelude of a streamed HTTP response (JSON then
8 NUL bytes). It never touches sockets.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

Headers = list[tuple[str, str]]

HTTP_INTEGRATION_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_END = b"\0" * 8
MAX_PRELUDE = 64 * 1024


class BadResponse(Exception):
    """The function's answer cannot be an HTTP response (AWS answers 502)."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Headers
    body: bytes


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text.replace("\r", " ").replace("\n", " ")


def _status(value: Any) -> int:
    try:
        status = int(value)
    except (TypeError, ValueError):
        raise BadResponse(f"invalid statusCode {value!r}") from None
    if isinstance(value, bool) or not 100 <= status <= 599:
        raise BadResponse(f"invalid statusCode {value!r}")
    return status


def metadata_headers(meta: dict[str, Any]) -> tuple[int, Headers]:
    """(status, headers) of a structured response or a stream's prelude; content-type defaults to JSON."""
    status = _status(meta.get("statusCode", 200))
    headers: Headers = []
    raw = meta.get("headers")
    if isinstance(raw, dict):
        for k, v in raw.items():
            if v is not None:
                headers.append((str(k).lower(), _header_text(v)))
    cookies = meta.get("cookies")
    if isinstance(cookies, list):
        headers += [("set-cookie", _header_text(c)) for c in cookies]
    if not any(k == "content-type" for k, _ in headers):
        headers.append(("content-type", "application/json"))
    return status, headers


def map_result(payload: bytes) -> HttpAnswer:
    try:
        value = json.loads(payload) if payload else None
    except (ValueError, UnicodeDecodeError):
        # Not JSON (a custom runtime's raw bytes): passed on as the body.
        return HttpAnswer(200, [("content-type", "application/json")], payload)
    if isinstance(value, dict) and "statusCode" in value:
        status, headers = metadata_headers(value)
        body = value.get("body")
        if body is None:
            data = b""
        elif isinstance(body, str):
            if value.get("isBase64Encoded") is True:
                try:
                    data = base64.b64decode(body, validate=False)
                except (binascii.Error, ValueError):
                    raise BadResponse("body is not base64") from None
            else:
                data = body.encode("utf-8")
        else:
            data = json.dumps(body).encode("utf-8")
        return HttpAnswer(status, headers, data)
    if isinstance(value, str):
        data = value.encode("utf-8")
    elif value is None and not payload:
        data = b""
    else:
        # Any other JSON value is the body, re-serialized compactly as AWS does ('["a",3,true]').
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return HttpAnswer(200, [("content-type", "application/json")], data)


def split_prelude(buffer: bytes) -> tuple[dict[str, Any], bytes] | None:
    """(metadata, rest of the body) once the prelude is complete; None while more bytes are needed."""
    end = buffer.find(PRELUDE_END)
    if end < 0:
        if len(buffer) > MAX_PRELUDE:
            raise BadResponse("the response metadata prelude is too large")
        return None
    try:
        meta = json.loads(buffer[:end]) if end else {}
    except (ValueError, UnicodeDecodeError):
        raise BadResponse("the response metadata prelude is not JSON") from None
    if not isinstance(meta, dict):
        raise BadResponse("the response metadata prelude is not an object")
    return meta, buffer[end + len(PRELUDE_END):]
