"""The gateway's S3 path: addressing, S3's signature rules, streamed bodies, rest-xml answers.

S3 differs from every other service the gateway serves in three ways, and this module owns them:
- addressing: the bucket is in the Host (`<bucket>.s3.localhost:4566`, `<bucket>.s3.<region>.amazonaws.com`)
  or the first path segment (`/<bucket>/<key>`, also behind `s3.<region>.amazonaws.com`), and several
  operations share a method and URI (PutObject/CopyObject/UploadPart/UploadPartCopy) and are told
  apart by query members and headers;
- signatures: no double URI-encoding, `x-amz-content-sha256` (UNSIGNED-PAYLOAD, aws-chunked
  streaming forms), presigned URLs in SigV4 and in signature version 2, anonymous requests (judged by
  the bucket's policy, in the provider);
- bodies: object uploads are never buffered: the provider receives a `BodyStream` and writes it to
  disk; object downloads are an async iterator sent chunk by chunk with their Content-Length.
It never holds S3's business rules (the provider does) and never renders a shape by hand.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, unquote

from botocore.model import OperationModel

from hearth.asgi import BodyTooLarge, read_body, send_stream
from hearth.aws.authz.authorizer import Authorizer
from hearth.aws.body_stream import BodyStream, ChunkSigning
from hearth.aws.context import Principal, RequestContext
from hearth.aws.errors import AwsError
from hearth.aws.models import ServiceApi
from hearth.aws.protocols import rest_xml
from hearth.aws.protocols.common import BadRequest, HttpRequest, HttpResponse
from hearth.aws.sigv4 import AuthFailure, SignedRequest, SigV4Verifier, Verified
from hearth.services.base import RawResponse, method_name

log = logging.getLogger(__name__)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Non-streaming S3 request bodies are XML documents (DeleteObjects of 1,000 keys, a 10,000-part
# CompleteMultipartUpload): a few MB at most.
XML_BODY_LIMIT = 20 * 1024 * 1024
# Bodies up to this size are read and dropped when the answer came first (keeps the connection).
_DRAIN_LIMIT = 8 * 1024 * 1024

ANONYMOUS = Principal("", "")

# The sub-resources signature version 2 signs (botocore's HmacV1Auth.QSAOfInterest).
_V2_SUBRESOURCES = frozenset({
    "accelerate", "acl", "cors", "defaultObjectAcl", "location", "logging", "partNumber", "policy",
    "requestPayment", "torrent", "versioning", "versionId", "versions", "website", "uploads", "uploadId",
    "response-content-type", "response-content-language", "response-expires", "response-cache-control",
    "response-content-disposition", "response-content-encoding", "delete", "lifecycle", "tagging",
    "restore", "storageClass", "notification", "replication", "analytics", "metrics",
    "inventory", "select", "select-type", "object-lock",
})

# Operations that share `METHOD /{Bucket}/{Key+}` with no query literal to tell them apart.
_SHARED_OBJECT_ROUTES = frozenset({"PutObject", "CopyObject", "UploadPart", "UploadPartCopy", "GetObject",
                                   "ListParts", "DeleteObject", "AbortMultipartUpload",
                                   "CompleteMultipartUpload"})


# Deprecated operations that share a route with their successor: the successor answers.
_SUPERSEDED = {"PutBucketNotification": "PutBucketNotificationConfiguration",
               "GetBucketNotification": "GetBucketNotificationConfiguration",
               "PutBucketLifecycle": "PutBucketLifecycleConfiguration",
               "GetBucketLifecycle": "GetBucketLifecycleConfiguration"}


_PLAIN_OBJECT_METHODS = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}
# Query members of those operations (not sub-resources that select another operation).
_PLAIN_OBJECT_QUERY = frozenset({"versionId", "partNumber", "uploadId", "x-id", "AWSAccessKeyId", "Signature",
                                 "Expires"})


def host_bucket(host: str) -> str | None:
    """The bucket a virtual-hosted Host names; "" for an S3 host in path style; None: not an S3 host."""
    name = host.rpartition(":")[0] if host.count(":") == 1 else host
    name = name.lower()
    if name.startswith(("s3.", "s3-")) or name == "s3.localhost":
        return ""
    at = name.rfind(".s3.")
    if at < 0:
        at = name.rfind(".s3-")  # legacy <bucket>.s3-<region>.amazonaws.com
    if at > 0 and (name.endswith(".amazonaws.com") or name.endswith(".localhost")):
        return name[:at]
    return None


# Bucket sub-resources whose Get (with `?id=`) and List (without) have the same route.
_BY_ID: dict[str, tuple[str, str]] = {
    name: (f"GetBucket{kind}Configuration", f"ListBucket{kind}Configurations")
    for kind in ("Metrics", "Analytics", "Inventory", "IntelligentTiering")
    for name in (f"GetBucket{kind}Configuration", f"ListBucket{kind}Configurations")
}


def _resolve_shared(name: str, method: str, query: dict[str, list[str]], headers: dict[str, str]) -> str:
    upload = "uploadId" in query
    copy = "x-amz-copy-source" in headers
    if method == "PUT":
        if upload:
            return "UploadPartCopy" if copy else "UploadPart"
        return "CopyObject" if copy else "PutObject"
    if method == "GET":
        return "ListParts" if upload else "GetObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if upload else "DeleteObject"
    if method == "POST" and upload:
        return "CompleteMultipartUpload"
    return name


class S3Front:
    """Serves S3 requests for the gateway (one instance, built when an "s3" provider is configured)."""

    def __init__(self, api: ServiceApi, verifier: SigV4Verifier, providers: list[object], region: str,
                 authorizer: Authorizer | None = None) -> None:
        self._api = api
        self._authorizer = authorizer  # IAM's identity side for signed, non-root callers (their bucket policy
        #                                is S3's own judgment, for other accounts and anonymous callers)
        self._verifier = verifier
        self._providers = providers
        self._region = region
        self._methods: dict[str, Callable[..., Any] | None] = {}

    def claims(self, raw_path: str) -> bool:
        """Whether an unsigned path-style request that no other service claimed names a bucket
        (anonymous access, judged by the bucket's policy)."""
        exists = self._method("has_bucket")
        bucket = unquote(raw_path.lstrip("/").partition("/")[0])
        return bool(bucket) and exists is not None and bool(exists(bucket))

    def _method(self, name: str) -> Callable[..., Any] | None:
        if name not in self._methods:
            attr = method_name(name) if name[:1].isupper() else name
            self._methods[name] = next((getattr(p, attr) for p in self._providers
                                        if callable(getattr(p, attr, None))), None)
        return self._methods[name]

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send, req: HttpRequest,
                       first_query: dict[str, str], vhost: str | None, request_id: str) -> None:
        head = req.method == "HEAD"
        streams: list[BodyStream] = []  # the body stream, once made (drained after an early answer)
        bucket = ""
        try:
            bucket, key_raw = self._address(req.path, vhost)
            if req.method == "OPTIONS":
                response = await self._preflight(bucket, req, receive)
            else:
                op, labels = self._operation(req, bucket, key_raw)
                response = await self._serve(scope, receive, req, first_query, op, labels, bucket,
                                             key_raw, vhost, request_id, streams)
        except AwsError as err:
            response = rest_xml.render_error(err, request_id, head=head)
        except Exception:
            log.exception("internal error in s3 %s %s", req.method, req.path)
            response = rest_xml.render_error(AwsError("InternalError", "We encountered an internal error. "
                                                      "Please try again.", 500), request_id, head=head)
        if streams and response.status >= 300:
            declared = req.headers.get("content-length", "")
            if declared.isdigit() and int(declared) <= _DRAIN_LIMIT:
                with contextlib.suppress(AwsError):
                    await streams[0].drain()
        origin = req.headers.get("origin")
        if origin and bucket and req.method != "OPTIONS":
            cors = self._method("cors_headers")
            if cors is not None:
                response.headers.update(cors(bucket, req.method, req.headers))
        await _send(send, response, head)

    # -- addressing -------------------------------------------------------------------------------

    @staticmethod
    def _address(raw_path: str, vhost: str | None) -> tuple[str, str]:
        """(bucket, raw key) from the Host's bucket or the path's first segment."""
        if vhost:
            return vhost, raw_path[1:] if raw_path.startswith("/") else raw_path
        path = raw_path[1:] if raw_path.startswith("/") else raw_path
        bucket, _, key = path.partition("/")
        return unquote(bucket), key

    def _operation(self, req: HttpRequest, bucket: str, key_raw: str) -> tuple[OperationModel, dict[str, str]]:
        if key_raw and bucket and req.method in _PLAIN_OBJECT_METHODS and all(
                q in _PLAIN_OBJECT_QUERY or q.startswith(("response-", "X-Amz-")) for q in req.query):
            # The common object requests (no sub-resource): skip the scan of S3's ~100 routes.
            name = _resolve_shared(_PLAIN_OBJECT_METHODS[req.method], req.method, req.query, req.headers)
            return self._api.operations[name], {"Bucket": bucket, "Key": unquote(key_raw)}
        route_path = "/" if not bucket else (f"/{quote(bucket, safe='')}/{key_raw}" if key_raw
                                             else f"/{quote(bucket, safe='')}")
        found = self._api.match(req.method, route_path, req.query)
        if found is None:
            raise AwsError("MethodNotAllowed", "The specified method is not allowed against this resource.", 405,
                           fields={"Method": req.method, "ResourceType": "OBJECT" if key_raw else "BUCKET"})
        op, labels = found
        if op.name in _BY_ID:  # a Get and a List share `GET /{Bucket}?<sub-resource>`: `id` tells them apart
            op = self._api.operations[_BY_ID[op.name][0 if "id" in req.query else 1]]
        if op.name in _SUPERSEDED:
            op = self._api.operations[_SUPERSEDED[op.name]]
        if op.name in _SHARED_OBJECT_ROUTES:
            name = _resolve_shared(op.name, req.method, req.query, req.headers)
            if name != op.name:
                op = self._api.operations[name]
        return op, labels

    # -- one operation ----------------------------------------------------------------------------

    async def _serve(self, scope: dict[str, Any], receive: Receive, req: HttpRequest, first_query: dict[str, str],
                     op: OperationModel, labels: dict[str, str], bucket: str, key_raw: str, vhost: str | None,
                     request_id: str, streams: list[BodyStream]) -> HttpResponse:
        streaming = rest_xml.is_streaming_input(op)
        if not streaming:
            try:
                req.body = await read_body(receive, req.headers, XML_BODY_LIMIT)
            except BodyTooLarge:
                raise AwsError("MaxMessageLengthExceeded", "Your request was too big.", 400) from None
        verified = self._authenticate(req, first_query, bucket, key_raw, vhost, streaming)
        stream: BodyStream | None = None
        if streaming:
            stream = self._body_stream(receive, req, verified)
            streams.append(stream)
        try:
            params = rest_xml.parse_request(op, req, labels, stream)
        except BadRequest:
            if op.name in ("CompleteMultipartUpload", "DeleteObjects") or req.body.strip().startswith(b"<"):
                raise AwsError("MalformedXML", "The XML you provided was not well-formed or did not validate "
                                               "against our published schema", 400) from None
            raise AwsError("InvalidArgument", "Argument format not recognized", 400) from None
        handler = self._method(op.name)
        if handler is None:
            raise AwsError("NotImplemented", "A header you provided implies functionality that is not "
                                             "implemented", 501)
        client = scope.get("client")
        principal = verified.principal if verified is not None else ANONYMOUS
        ctx = RequestContext(
            service="s3", operation=op.name, region=verified.cred.region if verified else self._region,
            principal=principal, request_id=request_id, headers=req.headers, raw_body=req.body,
            source_ip=client[0] if client else "127.0.0.1",
        )
        if self._authorizer is not None and verified is not None:
            ctx.granted_owner = self._authorizer.authorize(ctx, params, secure=scope.get("scheme") == "https")
        result = handler(ctx, params)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, RawResponse):
            headers = dict(result.headers)
            headers.setdefault("x-amz-request-id", request_id)
            return HttpResponse(result.status, headers, result.body)
        return rest_xml.render(op, result or {}, request_id)

    def _authenticate(self, req: HttpRequest, first_query: dict[str, str], bucket: str, key_raw: str,
                      vhost: str | None, streaming: bool) -> Verified | None:
        signed = SignedRequest(req.method, req.path, req.query_string, req.headers, req.body,
                               body_deferred=streaming)
        try:
            if "authorization" not in req.headers and "AWSAccessKeyId" in first_query:
                resource = _v2_resource(req.path if not vhost else f"/{quote(vhost, safe='')}{req.path}",
                                        req.query)
                return self._verifier.verify_v2_query(signed, first_query, resource, self._region)
            if "authorization" not in req.headers and "X-Amz-Credential" not in first_query \
                    and "X-Amz-Signature" not in first_query:
                return None  # anonymous: the bucket's policy decides
            return self._verifier.verify_detailed(signed, first_query)
        except AuthFailure as failure:
            raise failure.for_protocol("rest-xml") from None

    @staticmethod
    def _body_stream(receive: Receive, req: HttpRequest, verified: Verified | None) -> BodyStream:
        sha = req.headers.get("x-amz-content-sha256")
        chunked = "aws-chunked" in req.headers.get("content-encoding", "") or bool(sha and sha.startswith("STREAMING-"))
        decoded = req.headers.get("x-amz-decoded-content-length")
        signing = None
        if (chunked and sha and sha.startswith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD") and verified is not None
                and verified.signing_key is not None):
            cred = verified.cred
            signing = ChunkSigning(verified.signing_key, verified.amz_date,
                                   f"{cred.date}/{cred.region}/{cred.service}/aws4_request", verified.signature)
        return BodyStream(receive, content_sha256=None if chunked else sha, chunked=chunked,
                          decoded_length=int(decoded) if decoded and decoded.isdigit() else None, signing=signing)

    async def _preflight(self, bucket: str, req: HttpRequest, receive: Receive) -> HttpResponse:
        await read_body(receive, req.headers, XML_BODY_LIMIT)
        handler = self._method("cors_preflight")
        if handler is None or not bucket:
            raise AwsError("CORSResponse", "CORS is not enabled for this bucket.", 403)
        result: RawResponse = handler(bucket, req.headers)
        return HttpResponse(result.status, dict(result.headers), result.body)


def _v2_resource(path: str, query: dict[str, list[str]]) -> str:
    subs = []
    for name in sorted(query):
        if name in _V2_SUBRESOURCES:
            value = query[name][0]
            subs.append(f"{name}={value}" if value != "" else name)
    return path + ("?" + "&".join(subs) if subs else "")


async def _send(send: Send, response: HttpResponse, head: bool) -> None:
    raw_headers: list[tuple[bytes, bytes]] = []
    length: str | None = None
    for k, v in response.headers.items():
        if k.lower() == "content-length":
            length = str(v)
            continue
        raw_headers.append((k.lower().encode("latin-1"), str(v).encode("latin-1", "replace")))
    body = response.body
    if isinstance(body, (bytes, bytearray)):
        if not (head and length is not None):
            length = str(len(body))
        raw_headers.append((b"content-length", length.encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": b"" if head else bytes(body)})
        return
    if length is not None:
        raw_headers.append((b"content-length", length.encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
    await send_stream(send, body)
