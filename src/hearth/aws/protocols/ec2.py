"""The ec2 protocol (EC2): form-encoded `Action=...` requests like query's, XML responses without a
result wrapper.

It owns what differs from query (`query.py` owns the rest): input names are a member's `queryName`,
else its capitalized `locationName`; every list is flattened (`GroupId.1`, `Filter.1.Value.2`); the
response's members sit directly under `<OpResponse>` beside a `<requestId>`; errors are
`<Response><Errors><Error>` documents with a `<RequestID>`, as botocore's EC2QueryParser reads them.
It never validates constraints.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from botocore.model import ListShape, OperationModel, Shape, StructureShape

from hearth.aws.errors import AwsError
from hearth.aws.models import ServiceApi
from hearth.aws.protocols import query
from hearth.aws.protocols.common import HttpResponse


def input_name(member: Shape, default: str) -> str:
    """The name botocore's EC2Serializer sends a member under."""
    if "queryName" in member.serialization:
        return str(member.serialization["queryName"])
    name = member.serialization.get("name")
    if name:
        return str(name[0].upper() + name[1:])
    return default


class _Reader(query._Reader):
    def _structure(self, shape: StructureShape, key: str) -> dict[str, Any] | None:
        if key and key not in self.prefixes:
            return None
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = input_name(member, name)
            value = self.read(member, f"{key}.{wire}" if key else wire)
            if value is not None:
                out[name] = value
        return out

    def _list(self, shape: ListShape, key: str) -> list[Any] | None:
        if not self.present(f"{key}.1"):
            return None
        out: list[Any] = []
        i = 1
        while self.present(f"{key}.{i}"):
            out.append(self.read(shape.member, f"{key}.{i}"))
            i += 1
        return out


def parse_request(op: OperationModel, params: dict[str, str]) -> dict[str, Any]:
    shape = op.input_shape
    if shape is None:
        return {}
    return _Reader(params).read(shape, "") or {}


def render(api: ServiceApi, op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse:
    ns = api.model.metadata.get("xmlNamespace", "") or "http://ec2.amazonaws.com/doc/2016-11-15/"
    name = op.name
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<{name}Response xmlns="{escape(ns)}">',
           f"<requestId>{escape(request_id)}</requestId>"]
    if op.output_shape is not None:
        query._xml_members(op.output_shape, result, out)
    out.append(f"</{name}Response>")
    headers = {"x-amzn-RequestId": request_id, "Content-Type": query.CONTENT_TYPE}
    return HttpResponse(200, headers, "".join(out).encode())


def render_error(err: AwsError, request_id: str) -> HttpResponse:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{escape(err.code)}</Code><Message>{query._text(err.message)}</Message>"
            f"</Error></Errors><RequestID>{escape(request_id)}</RequestID></Response>")
    headers = {"x-amzn-RequestId": request_id, "Content-Type": query.CONTENT_TYPE}
    headers.update(err.headers)
    return HttpResponse(err.status, headers, body.encode())
