"""REST API `AWS` integrations with services other than Lambda (SQS, SNS, EventBridge, Kinesis, …):
the mapped request sent to the Hearth service the integration URI names, signed with a key of the
API's account (Hearth has no IAM roles: the integration's credentials role stands for its account).

It owns reading the URI — `arn:aws:apigateway:<region>:<service>:path/<path>` (the mapped body sent to
that path with the integration's method) or `…:action/<Action>` (query services: `Action=<Action>&`
before the mapped form body; json services: `X-Amz-Target: <prefix>.<Action>` with the json content
type) — and signing. A path-form SQS integration names its queue in the path (`path/<account>/<queue>`);
Hearth's SQS reads the queue from the parameters, so the path's queue URL is added as `QueueUrl` when
the mapped body has none. It never decides which integration response applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from hearth.aws.models import service_api

_URI = re.compile(r"^arn:aws[a-z-]*:apigateway:([a-z0-9-]+):([a-z0-9.-]+):(path|action)/(.*)$")
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class ServiceCall:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


def build(uri: str, method: str, payload: bytes, headers: list[tuple[str, str]], endpoint_url: str,
          credentials: tuple[str, str], query_params: list[tuple[str, str]] | None = None) -> ServiceCall | None:
    """The signed request for an AWS service integration, or None when the URI names none Hearth serves."""
    m = _URI.match(uri)
    if m is None:
        return None
    region, subdomain, kind, rest = m.groups()
    service = subdomain.split(".")[0]
    api = service_api(service)
    if api is None:
        return None
    signing_name = str(api.model.metadata.get("signingName") or service)
    out_headers = [(k, v) for k, v in headers if k.lower() not in ("host", "content-length")]
    body = payload
    if kind == "path":
        path = "/" + rest.lstrip("/")
        if service == "sqs" and b"QueueUrl=" not in body and _content_type(out_headers) == FORM:
            queue_url = endpoint_url.rstrip("/") + path
            body = body + (b"&" if body else b"") + f"QueueUrl={quote(queue_url, safe='')}".encode()
    else:
        action, _, query = rest.partition("&")
        path = "/"
        method = "POST"
        if api.protocol == "json":
            out_headers = [(k, v) for k, v in out_headers if k.lower() not in ("content-type", "x-amz-target")]
            out_headers += [("Content-Type", f"application/x-amz-json-{api.json_version}"),
                            ("X-Amz-Target", f"{api.target_prefix}.{action}")]
        else:
            out_headers = [(k, v) for k, v in out_headers if k.lower() != "content-type"] + [("Content-Type", FORM)]
            extra = "&".join(f"{quote(k)}={quote(v[0])}" for k, v in parse_qs(query).items())
            body = f"Action={quote(action)}&".encode() + (extra.encode() + b"&" if extra else b"") + body
    url = endpoint_url.rstrip("/") + path
    if query_params and kind == "path":  # mapped query parameters (S3's response-content-type, …)
        url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query_params)
    request = AWSRequest(method=method, url=url, data=body, headers=dict(out_headers))
    # S3 refuses a request without the payload's hash header (x-amz-content-sha256), which only its
    # own signer adds.
    signer = S3SigV4Auth if signing_name == "s3" else SigV4Auth
    signer(Credentials(*credentials), signing_name, region).add_auth(request)
    return ServiceCall(method, url, [(k, str(v)) for k, v in request.headers.items()], body)


def _content_type(headers: list[tuple[str, str]]) -> str:
    value = next((v for k, v in headers if k.lower() == "content-type"), "")
    return value.split(";", 1)[0].strip().lower()
