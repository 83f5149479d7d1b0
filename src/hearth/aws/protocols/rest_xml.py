"""The rest-xml protocol (S3): parameters in the path, query string and headers, XML or raw payloads.

It owns reading a rest-xml request into the operation's input (URI labels, greedy keys, query
members, header members and header maps such as `x-amz-meta-*`, an XML or blob/string payload) and
writing outputs (header-bound members, XML documents, streaming blobs) and S3's XML errors the way
botocore's RestXMLParser reads them. It never chooses the operation and never validates constraints.

A streaming input payload (PutObject's and UploadPart's `Body`) is handed to the provider as the
request's body stream untouched: it is never read here.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any
from xml.sax.saxutils import escape

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from hearth.aws.errors import AwsError
from hearth.aws.protocols.common import (
    BadRequest,
    HttpRequest,
    HttpResponse,
    format_timestamp,
    scalar_from_text,
    scalar_to_text,
    timestamp_format,
)
from hearth.aws.protocols.rest_json import bind_http_members, plans, text_payload

CONTENT_TYPE = "application/xml"
S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

# Output shapes carry no root element name in the model; these are the names AWS writes.
# (botocore ignores the root's name; other readers do not.)
_ROOTS = {
    "ListBuckets": "ListAllMyBucketsResult",
    "ListObjects": "ListBucketResult",
    "ListObjectsV2": "ListBucketResult",
    "ListObjectVersions": "ListVersionsResult",
    "CreateMultipartUpload": "InitiateMultipartUploadResult",
    "CompleteMultipartUpload": "CompleteMultipartUploadResult",
    "ListParts": "ListPartsResult",
    "ListMultipartUploads": "ListMultipartUploadsResult",
    "DeleteObjects": "DeleteResult",
    "GetBucketTagging": "Tagging",
    "GetObjectTagging": "Tagging",
    "GetBucketVersioning": "VersioningConfiguration",
    "GetBucketCors": "CORSConfiguration",
    "GetBucketNotificationConfiguration": "NotificationConfiguration",
    "GetBucketLifecycleConfiguration": "LifecycleConfiguration",
    "GetBucketAcl": "AccessControlPolicy",
    "GetObjectAcl": "AccessControlPolicy",
}


# Operations (besides every DELETE) that AWS answers with 204 No Content.
_NO_CONTENT = frozenset({"PutBucketTagging", "PutBucketPolicy", "PutBucketMetricsConfiguration"})


def is_streaming_input(op: OperationModel) -> bool:
    """Whether the operation's payload is a streaming blob (its body must not be buffered)."""
    shape = op.input_shape
    if shape is None:
        return False
    payload = shape.serialization.get("payload")
    if payload is None:
        return False
    member = shape.members[payload]
    return member.type_name == "blob" and bool(member.serialization.get("streaming")
                                                 or getattr(member, "metadata", {}).get("streaming"))


# -- requests -------------------------------------------------------------------------------------

def parse_request(op: OperationModel, req: HttpRequest, labels: dict[str, str],
                  stream: AsyncIterable[bytes] | None = None) -> dict[str, Any]:
    plan = plans(op)[0]
    params = bind_http_members(plan, req, labels)
    if plan.payload is not None:
        name, shape = plan.payload
        if shape.type_name == "blob":
            params[name] = stream if stream is not None else req.body
        elif shape.type_name == "string":
            if req.body:
                params[name] = text_payload(req.body)
        elif req.body.strip():
            params[name] = from_xml(shape, _parse_xml(req.body))
    return params


def _parse_xml(body: bytes) -> ET.Element:
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise BadRequest("XML documents with a DTD are not accepted")  # no entity expansion, ever
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadRequest(str(exc)) from None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _member_tag(name: str, member: Shape) -> str:
    if isinstance(member, ListShape) and member.serialization.get("flattened"):
        inner = member.member.serialization.get("name")
        if inner:
            return str(inner)
    return str(member.serialization.get("name", name))


def from_xml(shape: Shape, elem: ET.Element) -> Any:
    """An element as the Python value of `shape` (unknown elements are ignored, as AWS does)."""
    if isinstance(shape, StructureShape):
        children: dict[str, list[ET.Element]] = {}
        for child in elem:
            children.setdefault(_local(child.tag), []).append(child)
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            if member.serialization.get("xmlAttribute"):
                wire = str(member.serialization.get("name", name))
                for key, value in elem.attrib.items():
                    if _local(key) == wire.rpartition(":")[2]:
                        out[name] = value
                continue
            found = children.get(_member_tag(name, member))
            if not found:
                continue
            if isinstance(member, ListShape) and member.serialization.get("flattened"):
                out[name] = [from_xml(member.member, e) for e in found]
            else:
                out[name] = from_xml(member, found[0])
        return out
    if isinstance(shape, ListShape):
        return [from_xml(shape.member, child) for child in elem]
    if isinstance(shape, MapShape):
        result: dict[str, Any] = {}
        key_tag = shape.key.serialization.get("name", "key")
        value_tag = shape.value.serialization.get("name", "value")
        for entry in elem:
            k = next((c.text or "" for c in entry if _local(c.tag) == key_tag), None)
            v = next((c for c in entry if _local(c.tag) == value_tag), None)
            if k is not None and v is not None:
                result[k] = from_xml(shape.value, v)
        return result
    return scalar_from_text(shape, (elem.text or "").strip() if shape.type_name != "string" else (elem.text or ""),
                            "iso8601")


# -- responses ------------------------------------------------------------------------------------

def _scalar_xml(shape: Shape, value: Any) -> str:
    if shape.type_name == "timestamp":
        return str(format_timestamp(value, timestamp_format(shape, "iso8601")))
    return scalar_to_text(shape, value, "iso8601")


def to_xml(shape: Shape, value: Any, tag: str, out: list[str], ns: str = "") -> None:
    """`value` as the element `<tag>` (for a flattened list: as repeated elements)."""
    if value is None:
        return
    xmlns = f' xmlns="{ns}"' if ns else ""
    if isinstance(shape, StructureShape):
        attrs = ""
        body: list[str] = []
        for name, member in shape.members.items():
            item = value.get(name) if isinstance(value, dict) else None
            if item is None:
                continue
            if member.serialization.get("xmlAttribute"):
                wire = member.serialization.get("name", name)
                attrs += f' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" {wire}="{escape(str(item))}"'
                continue
            to_xml(member, item, _member_tag(name, member), body)
        out.append(f"<{tag}{xmlns}{attrs}>{''.join(body)}</{tag}>")
    elif isinstance(shape, ListShape):
        if shape.serialization.get("flattened"):
            for item in value:
                to_xml(shape.member, item, tag, out)
        else:
            inner = shape.member.serialization.get("name", "member")
            out.append(f"<{tag}{xmlns}>")
            for item in value:
                to_xml(shape.member, item, inner, out)
            out.append(f"</{tag}>")
    elif isinstance(shape, MapShape):
        key_tag = shape.key.serialization.get("name", "key")
        value_tag = shape.value.serialization.get("name", "value")
        out.append(f"<{tag}{xmlns}>")
        for k, v in value.items():
            out.append(f"<entry><{key_tag}>{escape(str(k))}</{key_tag}>")
            to_xml(shape.value, v, value_tag, out)
            out.append("</entry>")
        out.append(f"</{tag}>")
    else:
        out.append(f"<{tag}{xmlns}>{escape(_scalar_xml(shape, value))}</{tag}>")


def document(shape: Shape, value: Any, root: str) -> bytes:
    out = [XML_DECLARATION]
    to_xml(shape, value, root, out, S3_NAMESPACE)
    return "".join(out).encode()


def render(op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse:
    plan = plans(op)[1]
    status = int(op.http.get("responseCode", 200))
    headers: dict[str, str] = {"x-amz-request-id": request_id, "x-amz-id-2": host_id(request_id)}
    if plan.status_member is not None and result.get(plan.status_member) is not None:
        status = int(result[plan.status_member])
    elif result.get("ContentRange") is not None and op.name == "GetObject":
        status = 206  # a ranged read is a Partial Content answer
    elif op.http.get("method") == "DELETE" or op.name in _NO_CONTENT:
        status = 204  # S3 answers these with No Content (the model does not say so)
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
    body: bytes | AsyncIterator[bytes] = b""
    if plan.payload is not None:
        name, shape = plan.payload
        value = result.get(name)
        if value is None:
            body = b""
        elif shape.type_name == "blob":
            body = value if not isinstance(value, (bytes, bytearray, str)) else (
                value.encode() if isinstance(value, str) else bytes(value))
        elif shape.type_name == "string":
            body = value.encode() if isinstance(value, str) else bytes(value)
        else:
            root = str(shape.serialization.get("name") or shape.name)
            body = document(shape, value, root)
            headers["Content-Type"] = CONTENT_TYPE
    elif op.name == "GetBucketLocation":
        # botocore reads this one answer's root text (its own handler): <LocationConstraint>region</...>
        region = result.get("LocationConstraint")
        body = (f'{XML_DECLARATION}<LocationConstraint xmlns="{S3_NAMESPACE}">{escape(region or "")}'
                "</LocationConstraint>").encode()
        headers["Content-Type"] = CONTENT_TYPE
    elif plan.has_body_members and op.output_shape is not None:
        members = {m: result[m] for _, (m, _s) in plan.body.items() if result.get(m) is not None}
        root = _ROOTS.get(op.name, f"{op.name}Result")
        body = document(op.output_shape, members, root)
        headers["Content-Type"] = CONTENT_TYPE
    return HttpResponse(status, headers, body)


def host_id(request_id: str) -> str:
    """S3's x-amz-id-2 (an opaque id of the host that answered); derived so it is stable per request."""
    return uuid.uuid5(uuid.NAMESPACE_OID, request_id).hex


def render_error(err: AwsError, request_id: str, *, head: bool = False) -> HttpResponse:
    """`<Error><Code/><Message/>…extra fields…<RequestId/><HostId/></Error>`; a HEAD answer has no body."""
    headers = {"x-amz-request-id": request_id, "x-amz-id-2": host_id(request_id)}
    headers.update(err.headers)
    if head or err.status == 304:
        return HttpResponse(err.status, headers, b"")
    parts = [XML_DECLARATION, "<Error><Code>", escape(err.code), "</Code><Message>", escape(err.message),
             "</Message>"]
    for key, value in err.fields.items():
        if value is not None:
            parts.append(f"<{key}>{escape(str(value))}</{key}>")
    parts.append(f"<RequestId>{request_id}</RequestId><HostId>{host_id(request_id)}</HostId></Error>")
    headers["Content-Type"] = CONTENT_TYPE
    return HttpResponse(err.status, headers, "".join(parts).encode())
