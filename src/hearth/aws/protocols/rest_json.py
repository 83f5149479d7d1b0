"""The rest-json protocol (Lambda): parameters in the path, query string, headers and a JSON body.

It owns reading a rest-json request into the operation's input and writing an output or an error
the way botocore's RestJSONParser reads them. It never chooses the operation (the route table in
`models` does) and never validates constraints (`validate` does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from hearth.aws.errors import AwsError
from hearth.aws.protocols.common import (
    BadRequest,
    HttpRequest,
    HttpResponse,
    dumps,
    from_json,
    scalar_from_text,
    scalar_to_text,
    to_json,
)

CONTENT_TYPE = "application/json"


@dataclass
class _Plan:
    """Where each input/output member lives, computed once per operation."""

    uri: list[tuple[str, str, Shape]] = field(default_factory=list)
    query: list[tuple[str, str, Shape]] = field(default_factory=list)
    query_map: tuple[str, MapShape] | None = None
    headers: list[tuple[str, str, Shape]] = field(default_factory=list)
    header_maps: list[tuple[str, str, MapShape]] = field(default_factory=list)
    status_member: str | None = None
    payload: tuple[str, Shape] | None = None
    body: dict[str, tuple[str, Shape]] = field(default_factory=dict)  # wire name -> (member, shape)
    has_body_members: bool = False


def _plan(shape: StructureShape | None) -> _Plan:
    plan = _Plan()
    if shape is None:
        return plan
    payload_name = shape.serialization.get("payload")
    for name, member in shape.members.items():
        loc = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if loc == "uri":
            plan.uri.append((name, wire, member))
        elif loc == "querystring":
            if isinstance(member, MapShape):
                plan.query_map = (name, member)
            else:
                plan.query.append((name, wire, member))
        elif loc == "header":
            plan.headers.append((name, wire.lower(), member))
        elif loc == "headers":
            assert isinstance(member, MapShape)
            plan.header_maps.append((name, wire.lower(), member))
        elif loc == "statusCode":
            plan.status_member = name
        elif name == payload_name:
            plan.payload = (name, member)
        else:
            plan.body[wire] = (name, member)
            plan.has_body_members = True
    return plan


_plans: dict[int, tuple[_Plan, _Plan]] = {}


def plans(op: OperationModel) -> tuple[_Plan, _Plan]:
    """(input plan, output plan) for an operation; keyed by id() of the long-lived cached model."""
    key = id(op)
    found = _plans.get(key)
    if found is None:
        found = (_plan(op.input_shape), _plan(op.output_shape))
        _plans[key] = found
    return found


def parse_request(op: OperationModel, req: HttpRequest, labels: dict[str, str]) -> dict[str, Any]:
    plan = plans(op)[0]
    params = bind_http_members(plan, req, labels)
    if plan.payload is not None:
        name, shape = plan.payload
        if shape.type_name == "blob":
            params[name] = req.body
        elif shape.type_name == "string":
            if req.body:
                params[name] = text_payload(req.body)
        elif req.body:
            params[name] = from_json(shape, _load_json(req.body), name)
    elif plan.has_body_members and req.body.strip():
        doc = _load_json(req.body)
        if not isinstance(doc, dict):
            raise BadRequest("Start of structure or map found where not expected.")
        for wire, item in doc.items():
            member = plan.body.get(wire)
            if member is not None and item is not None:
                params[member[0]] = from_json(member[1], item, member[0])
    return params


def text_payload(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("payload is not UTF-8 text") from None


def bind_http_members(plan: _Plan, req: HttpRequest, labels: dict[str, str]) -> dict[str, Any]:
    """The members a REST protocol (rest-json, rest-xml) carries in the URI, the query and the headers."""
    params: dict[str, Any] = {}
    for name, wire, shape in plan.uri:
        if wire in labels:
            params[name] = scalar_from_text(shape, labels[wire], "iso8601")
    for name, wire, shape in plan.query:
        values = req.query.get(wire)
        if values is None:
            continue
        if isinstance(shape, ListShape):
            params[name] = [scalar_from_text(shape.member, v, "iso8601") for v in values]
        else:
            params[name] = scalar_from_text(shape, values[0], "iso8601")
    if plan.query_map is not None:
        name, mshape = plan.query_map
        taken = {wire for _, wire, _ in plan.query}
        rest = {k: v for k, v in req.query.items() if k not in taken}
        if rest:
            if isinstance(mshape.value, ListShape):
                params[name] = rest
            else:
                params[name] = {k: v[0] for k, v in rest.items()}
    for name, wire, shape in plan.headers:
        value = req.headers.get(wire)
        if value is None:
            continue
        if isinstance(shape, ListShape):
            params[name] = [scalar_from_text(shape.member, v.strip(), "rfc822") for v in value.split(",")]
        else:
            params[name] = scalar_from_text(shape, value, "rfc822")
    for name, prefix, _ in plan.header_maps:
        found = {k[len(prefix):]: v for k, v in req.headers.items() if k.startswith(prefix)}
        if found:
            params[name] = found
    return params


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"Invalid UTF-8 start byte 0x{body[exc.start]:02x}") from None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def render(op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse:
    plan = plans(op)[1]
    status = int(op.http.get("responseCode", 200))
    headers = {"x-amzn-RequestId": request_id, "Content-Type": CONTENT_TYPE}
    if plan.status_member is not None and result.get(plan.status_member) is not None:
        status = int(result[plan.status_member])
    for name, wire, shape in plan.headers:
        value = result.get(name)
        if value is not None:
            if isinstance(shape, ListShape):
                headers[wire] = ",".join(scalar_to_text(shape.member, v, "rfc822") for v in value)
            else:
                headers[wire] = scalar_to_text(shape, value, "rfc822")
    for name, prefix, _ in plan.header_maps:
        for k, v in (result.get(name) or {}).items():
            headers[prefix + k] = str(v)
    if "content-type" in headers:  # an output member names the type (GetExport's): it replaces the default
        del headers["Content-Type"]
    body: bytes = b""
    if plan.payload is not None:
        name, shape = plan.payload
        value = result.get(name)
        if value is None:
            body = b""
        elif shape.type_name in ("blob", "string"):
            body = value.encode() if isinstance(value, str) else bytes(value)
        else:
            body = dumps(to_json(shape, value))
    elif plan.has_body_members:
        out: dict[str, Any] = {}
        for wire, (name, shape) in plan.body.items():
            value = result.get(name)
            if value is not None:
                out[wire] = to_json(shape, value)
        body = dumps(out)
    return HttpResponse(status, headers, body)


def render_error(err: AwsError, request_id: str) -> HttpResponse:
    doc: dict[str, Any] = dict(err.fields)
    doc.setdefault("Type", "User" if err.sender_fault else "Service")
    # A field set to None is one AWS leaves out of this error's body (some Lambda errors carry no Type).
    doc = {key: value for key, value in doc.items() if value is not None}
    doc[err.message_key] = err.message
    headers = {"x-amzn-RequestId": request_id, "Content-Type": CONTENT_TYPE, "X-Amzn-ErrorType": err.code}
    headers.update(err.headers)
    return HttpResponse(err.status, headers, dumps(doc))
