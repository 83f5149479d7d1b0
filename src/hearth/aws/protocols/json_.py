"""The json protocol (awsJson1_0 / awsJson1_1: CloudWatch Logs, SQS, EventBridge, Kinesis).

It owns reading `X-Amz-Target: Prefix.Operation` requests with a JSON (or CBOR, see `cbor`) body and
writing outputs and errors (`{"__type": ..., "message": ...}`, plus `x-amzn-query-error` for services that are
awsQueryCompatible, such as SQS). It never validates constraints (`validate` does).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.model import OperationModel

from hearth.aws.errors import AwsError
from hearth.aws.models import ServiceApi
from hearth.aws.protocols import cbor
from hearth.aws.protocols.common import BadRequest, HttpResponse, dumps, from_json, to_json


def content_type(api: ServiceApi) -> str:
    return f"application/x-amz-json-{api.json_version}"


def operation_name(api: ServiceApi, target: str | None) -> str | None:
    """`Logs_20140328.CreateLogGroup` -> `CreateLogGroup` if the prefix is this service's."""
    if not target:
        return None
    prefix, dot, name = target.rpartition(".")
    if not dot or (api.target_prefix and prefix != api.target_prefix):
        return None
    return name


def is_cbor(headers: dict[str, str]) -> bool:
    """A request in the CBOR variant (the Java SDK's default for Kinesis): answered in CBOR too."""
    return headers.get("content-type", "").startswith(cbor.CONTENT_TYPE)


def parse_request(op: OperationModel, body: bytes, *, as_cbor: bool = False) -> dict[str, Any]:
    shape = op.input_shape
    if as_cbor:
        doc = cbor.to_json_value(cbor.loads(body)) if body else {}
        if not isinstance(doc, dict):
            raise BadRequest("Start of structure or map found where not expected.")
        result = from_json(shape, doc) if shape is not None else {}
        return {k: v for k, v in result.items() if v is not None}
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("") from None
    if b"\\ud" in body.lower():
        # JSON escapes can spell a lone surrogate, which is no Unicode text: no store or answer takes it.
        try:
            json.dumps(doc, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise BadRequest("Invalid UTF-8 in the request body") from None
    if not isinstance(doc, dict):
        raise BadRequest("Start of structure or map found where not expected.")
    if shape is None:
        return {}
    result = from_json(shape, doc)
    return {k: v for k, v in result.items() if v is not None}


def render(api: ServiceApi, op: OperationModel, result: dict[str, Any], request_id: str, *,
           as_cbor: bool = False) -> HttpResponse:
    shape = op.output_shape
    if as_cbor:
        out = cbor.from_output(shape, result) if shape is not None else {}
        return HttpResponse(200, {"x-amzn-RequestId": request_id, "Content-Type": cbor.CONTENT_TYPE},
                            cbor.dumps(out))
    doc = to_json(shape, result) if shape is not None else {}
    headers = {"x-amzn-RequestId": request_id, "Content-Type": content_type(api)}
    return HttpResponse(200, headers, dumps(doc))


def render_error(api: ServiceApi, err: AwsError, request_id: str, *, as_cbor: bool = False) -> HttpResponse:
    headers = {"x-amzn-RequestId": request_id,
               "Content-Type": cbor.CONTENT_TYPE if as_cbor else content_type(api)}
    code = err.code
    if api.query_compatible:
        # botocore reads the query-style code from this header; __type carries the json shape name.
        fault = "Sender" if err.sender_fault else "Receiver"
        headers["x-amzn-query-error"] = f"{code};{fault}"
        code = api.query_error_shapes.get(code, code)
    doc: dict[str, Any] = {"__type": code}
    doc.update(err.fields)
    if err.message or err.message_key != "message":
        doc[err.message_key] = err.message
    headers.update(err.headers)
    return HttpResponse(err.status, headers, cbor.dumps(doc) if as_cbor else dumps(doc))
