"""The query protocol (SNS; SQS's query view): form-encoded `Action=...` requests, XML responses.

It owns reading flattened form keys (`Attributes.entry.1.key`, `Tags.member.2.Key`, flattened
variants) into the input shape, and writing `<OpResponse><OpResult>` documents and
`<ErrorResponse>` errors as botocore's QueryParser reads them. It never validates constraints.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from hearth.aws.errors import AwsError
from hearth.aws.models import ServiceApi
from hearth.aws.protocols.common import (
    BadRequest,
    HttpRequest,
    HttpResponse,
    dumps,
    scalar_from_text,
    scalar_to_text,
    to_json,
)

CONTENT_TYPE = "text/xml"
# Characters XML 1.0 cannot carry at all, not even as references (most C0 controls). A value a caller
# sent with one (echoed in an error message, stored in an attribute) would make the whole document
# unreadable; each is written as U+FFFD instead.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    # A carriage return is written as a reference: a literal one is read back as "\n" by every XML parser
    # (end-of-line normalisation), and AWS returns message bodies with "\r" intact.
    return escape(_NOT_XML.sub("\ufffd", value), {"\r": "&#xD;"})


def form_params(req: HttpRequest) -> dict[str, str]:
    """The request's parameters: the query string, then the form body on top."""
    params: dict[str, str] = {k: v[0] for k, v in req.query.items() if v}
    if req.body:
        try:
            text = req.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("request body is not UTF-8") from None
        for key, value in parse_qsl(text, keep_blank_values=True):
            params.setdefault(key, value)
    return params


class _Reader:
    def __init__(self, params: dict[str, str]) -> None:
        self.params = params
        prefixes: set[str] = set()
        for key in params:
            parts = key.split(".")
            for i in range(1, len(parts)):
                prefixes.add(".".join(parts[:i]))
        self.prefixes = prefixes

    def present(self, key: str) -> bool:
        return key in self.params or key in self.prefixes

    def read(self, shape: Shape, key: str) -> Any:
        if isinstance(shape, StructureShape):
            return self._structure(shape, key)
        if isinstance(shape, ListShape):
            return self._list(shape, key)
        if isinstance(shape, MapShape):
            return self._map(shape, key)
        text = self.params.get(key)
        if text is None:
            return None
        return scalar_from_text(shape, text, "iso8601")

    def _structure(self, shape: StructureShape, key: str) -> dict[str, Any] | None:
        if key and key not in self.prefixes:
            return None
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            value = self.read(member, f"{key}.{wire}" if key else wire)
            if value is not None:
                out[name] = value
        return out

    def _list(self, shape: ListShape, key: str) -> list[Any] | None:
        if self.params.get(key) == "":
            return []  # botocore sends an empty list as `Name=`
        if shape.serialization.get("flattened"):
            base = key
            member_name = shape.member.serialization.get("name")
            if member_name and not self.present(f"{key}.1"):
                base = ".".join([*key.split(".")[:-1], member_name])
        else:
            base = f"{key}.{shape.member.serialization.get('name', 'member')}"
        if base not in self.prefixes:
            return None
        out: list[Any] = []
        i = 1
        while self.present(f"{base}.{i}"):
            out.append(self.read(shape.member, f"{base}.{i}"))
            i += 1
        return out

    def _map(self, shape: MapShape, key: str) -> dict[str, Any] | None:
        base = key if shape.serialization.get("flattened") else f"{key}.entry"
        if base not in self.prefixes:
            return None
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        out: dict[str, Any] = {}
        i = 1
        while self.present(f"{base}.{i}"):
            k = self.params.get(f"{base}.{i}.{key_name}")
            if k is None:
                raise BadRequest(f"map entry {base}.{i} has no key")
            out[k] = self.read(shape.value, f"{base}.{i}.{value_name}")
            i += 1
        return out


def parse_request(op: OperationModel, params: dict[str, str]) -> dict[str, Any]:
    shape = op.input_shape
    if shape is None:
        return {}
    return _Reader(params).read(shape, "") or {}


# -- responses ------------------------------------------------------------------------------------

def _xml_value(shape: Shape, value: Any, tag: str, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(shape, StructureShape):
        out.append(f"<{tag}>")
        _xml_members(shape, value, out)
        out.append(f"</{tag}>")
    elif isinstance(shape, ListShape):
        member_tag = shape.member.serialization.get("name", "member")
        if shape.serialization.get("flattened"):
            for item in value:
                _xml_value(shape.member, item, shape.member.serialization.get("name", tag), out)
        else:
            out.append(f"<{tag}>")
            for item in value:
                _xml_value(shape.member, item, member_tag, out)
            out.append(f"</{tag}>")
    elif isinstance(shape, MapShape):
        key_tag = shape.key.serialization.get("name", "key")
        value_tag = shape.value.serialization.get("name", "value")
        flattened = shape.serialization.get("flattened")
        if not flattened:
            out.append(f"<{tag}>")
        for k, v in value.items():
            out.append(f"<{tag}>" if flattened else "<entry>")
            out.append(f"<{key_tag}>{_text(str(k))}</{key_tag}>")
            _xml_value(shape.value, v, value_tag, out)
            out.append(f"</{tag}>" if flattened else "</entry>")
        if not flattened:
            out.append(f"</{tag}>")
    else:
        out.append(f"<{tag}>{_text(scalar_to_text(shape, value, 'iso8601'))}</{tag}>")


def _xml_members(shape: StructureShape, value: dict[str, Any], out: list[str]) -> None:
    members = shape.members
    for name, item in value.items():
        member = members.get(name)
        if member is not None and item is not None:
            _xml_value(member, item, member.serialization.get("name", name), out)


def render(api: ServiceApi, op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse:
    ns = api.model.metadata.get("xmlNamespace", "")
    name = op.name
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<{name}Response xmlns="{escape(ns)}">']
    shape = op.output_shape
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{name}Result")
        start = len(out)
        _xml_members(shape, result, out)
        # An empty result is one empty element, as AWS writes it (`<ReceiveMessageResult/>`).
        out[start:] = [f"<{wrapper}>", *out[start:], f"</{wrapper}>"] if len(out) > start else [f"<{wrapper}/>"]
    out.append(f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>"
               f"</{name}Response>")
    headers = {"x-amzn-RequestId": request_id, "Content-Type": CONTENT_TYPE}
    return HttpResponse(200, headers, "".join(out).encode())


def wants_json(headers: dict[str, str]) -> bool:
    """A query request that asks for JSON (`Accept: application/json`): AWS answers it in JSON."""
    accept = headers.get("accept", "")
    return "application/json" in accept and "xml" not in accept


def render_json(op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse:
    """The query answer as JSON: `{"<Op>Response": {"<Op>Result": …, "ResponseMetadata": …}}`, the result's
    members starting in lower case (AWS: `ReceiveMessageResult.messages[0].Body`)."""
    name = op.name
    shape = op.output_shape
    doc: dict[str, Any] = {}
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{name}Result")
        doc[wrapper] = {member[:1].lower() + member[1:]: to_json(member_shape, result[member])
                        for member, member_shape in shape.members.items() if result.get(member) is not None}
    doc["ResponseMetadata"] = {"RequestId": request_id}
    headers = {"x-amzn-RequestId": request_id, "Content-Type": "application/json"}
    return HttpResponse(200, headers, dumps({f"{name}Response": doc}))


def error_code(api: ServiceApi | None, err: AwsError) -> str:
    """The query code of an error. Errors of awsQueryCompatible services are raised as their json shape
    (`QueueDoesNotExist`) with the query code in `x-amzn-query-error`; over the query protocol the code
    is that legacy one (`AWS.SimpleQueueService.NonExistentQueue`), as the query-era API answered."""
    header = err.headers.get("x-amzn-query-error")
    if header:
        return header.split(";", 1)[0]
    if api is not None and api.query_compatible:
        for code, shape in api.query_error_shapes.items():
            if shape == err.code:
                return code
    return err.code


def render_error(api: ServiceApi | None, err: AwsError, request_id: str) -> HttpResponse:
    ns = api.model.metadata.get("xmlNamespace", "") if api is not None else ""
    fault = "Sender" if err.sender_fault else "Receiver"
    extra = "".join(f"<{k}>{_text(str(v))}</{k}>" for k, v in err.fields.items())
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="{escape(ns)}"><Error>'
            f"<Type>{fault}</Type><Code>{escape(error_code(api, err))}</Code>"
            f"<Message>{_text(err.message)}</Message>"
            f"{extra}</Error><RequestId>{escape(request_id)}</RequestId></ErrorResponse>")
    headers = {"x-amzn-RequestId": request_id, "Content-Type": CONTENT_TYPE}
    # The json-protocol carrier of the query code has no place in a query answer.
    headers.update((k, v) for k, v in err.headers.items() if k.lower() != "x-amzn-query-error")
    return HttpResponse(err.status, headers, body.encode())
