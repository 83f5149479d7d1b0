"""Hypothesis fuzz: whatever arrives, the framework answers with a parseable AWS-style response, never
a 500 from itself. Signed requests are generated too, so the fuzz reaches parsing and validation."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.aws.driver import ACCESS_KEY, SECRET_KEY, EchoProvider, call_asgi, make_gateway

_TMP = Path(tempfile.gettempdir())
GATEWAY = make_gateway(_TMP, {"lambda": [EchoProvider()], "logs": [EchoProvider()], "sns": [EchoProvider()],
                              "sqs": [EchoProvider()]})

PATHS = st.one_of(
    st.sampled_from(["/", "/2015-03-31/functions", "/2015-03-31/functions/f/invocations",
                     "/2015-03-31/functions/f", "/2018-10-31/layers", "/2015-03-31/functions/%ZZ/x",
                     "/2017-03-31/tags/arn%3Aaws", "//..//x/./y"]),
    st.text(alphabet="/abcdef%0123456789-._~:?=&", max_size=40).map(lambda s: "/" + s),
)
TARGETS = st.sampled_from(["Logs_20140328.CreateLogGroup", "Logs_20140328.Nope", "AmazonSQS.SendMessage",
                           "x", "", "Logs_20140328.PutLogEvents"])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
                    max_leaves=12)
KEYS = st.sampled_from(["FunctionName", "Runtime", "Role", "Code", "MemorySize", "logGroupName", "logEvents",
                        "QueueUrl", "MessageBody", "Tags", "Environment", "Payload", "Action", "Name"])
BODIES = st.one_of(st.binary(max_size=200), JSON.map(lambda v: json.dumps(v).encode()),
                   st.dictionaries(KEYS, JSON, max_size=5).map(lambda v: json.dumps(v).encode()),
                   st.dictionaries(st.sampled_from(["Action", "Name", "TopicArn", "Tags.member.1.Key",
                                                    "Attributes.entry.1.key", "Version"]),
                                   st.text(max_size=10), max_size=5)
                   .map(lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode()))
HEADER_VALUES = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


def _check(result: Any) -> None:
    assert result.status != 500, result.body
    assert result.status < 600
    assert "x-amzn-requestid" in result.headers
    if result.status >= 400:
        ctype = result.headers.get("content-type", "")
        if "xml" in ctype:
            # SQS's query API answers a GET without an Action with a bare element, as AWS does (recorded by
            # LocalStack's AWS-validated test_get_without_query_returns_unknown_operation).
            assert (b"<ErrorResponse" in result.body and b"<Code>" in result.body) or (
                result.status == 404 and result.body == b"<UnknownOperationException/>")
        else:
            doc = json.loads(result.body)
            assert "x-amzn-errortype" in result.headers or "__type" in doc


def _signed(method: str, path: str, query: str, body: bytes, service: str,
            extra: dict[str, str]) -> tuple[list[tuple[str, str]], str, str]:
    url = f"http://hearth.test:4566{path}" + (f"?{query}" if query else "")
    req = AWSRequest(method=method, url=url, data=body, headers=extra)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), service, "us-east-1").add_auth(req)
    headers = [(k, v if isinstance(v, str) else v.decode()) for k, v in req.headers.items()]
    headers.append(("host", "hearth.test:4566"))
    prepared = req.prepare()
    from urllib.parse import urlsplit
    parts = urlsplit(prepared.url)
    return headers, parts.path, parts.query


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]), path=PATHS, body=BODIES,
       query=st.text(alphabet="abcXYZ=&%+0123456789", max_size=30),
       auth=st.one_of(st.none(), HEADER_VALUES, HEADER_VALUES.map(lambda v: "AWS4-HMAC-SHA256 " + v)),
       target=st.one_of(st.none(), TARGETS), date=st.one_of(st.none(), HEADER_VALUES))
def test_unsigned_garbage_never_500(method: str, path: str, body: bytes, query: str, auth: str | None,
                                    target: str | None, date: str | None) -> None:
    headers = [(k, v) for k, v in (("authorization", auth), ("x-amz-target", target), ("x-amz-date", date))
               if v is not None]
    _check(asyncio.run(call_asgi(GATEWAY, method, path, query=query, headers=headers, body=body)))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(service=st.sampled_from(["lambda", "logs", "sns", "sqs"]), method=st.sampled_from(["GET", "POST", "PUT"]),
       path=PATHS, body=BODIES, query=st.text(alphabet="abcQualifer=&%+0123456789", max_size=30),
       target=st.one_of(st.none(), TARGETS),
       header=st.sampled_from(["x-amz-invocation-type", "x-amz-log-type", "x-amz-client-context",
                               "content-type", "x-amz-content-sha256"]), value=HEADER_VALUES)
def test_signed_garbage_never_500(service: str, method: str, path: str, body: bytes, query: str,
                                  target: str | None, header: str, value: str) -> None:
    extra = {header: value}
    if target:
        extra["X-Amz-Target"] = target
    if service == "sns":
        extra["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        headers, raw_path, raw_query = _signed(method, path, query, body, service, extra)
    except Exception:
        return  # botocore cannot sign this URL; nothing to send
    _check(asyncio.run(call_asgi(GATEWAY, method, raw_path or "/", query=raw_query, headers=headers,
                                 body=body, chunk=7)))


def test_body_over_limit_is_refused_early() -> None:
    headers = [("content-length", str(200 * 1024 * 1024))]
    headers_signed, raw_path, _ = _signed("POST", "/2015-03-31/functions/f/invocations", "", b"", "lambda", {})
    result = asyncio.run(call_asgi(GATEWAY, "POST", raw_path, headers=headers_signed + headers, body=b"x"))
    assert result.status == 413
    assert result.headers["x-amzn-errortype"] == "RequestEntityTooLargeException"
    assert b"Request must be smaller than 70167211 bytes for the Invoke operation" in result.body


def test_unknown_route_is_404_unknown_operation() -> None:
    headers, raw_path, _ = _signed("GET", "/2015-03-31/nothing-here", "", b"", "lambda", {})
    result = asyncio.run(call_asgi(GATEWAY, "GET", raw_path, headers=headers))
    assert result.status == 404 and result.headers["x-amzn-errortype"] == "UnknownOperationException"


def test_malformed_json_body_lambda_and_logs() -> None:
    headers, raw_path, _ = _signed("POST", "/2015-03-31/functions", "", b"{nope", "lambda", {})
    result = asyncio.run(call_asgi(GATEWAY, "POST", raw_path, headers=headers, body=b"{nope"))
    assert result.status == 400 and result.headers["x-amzn-errortype"] == "InvalidRequestContentException"
    headers, raw_path, _ = _signed("POST", "/", "", b"[1]", "logs",
                                   {"X-Amz-Target": "Logs_20140328.CreateLogGroup",
                                    "Content-Type": "application/x-amz-json-1.1"})
    result = asyncio.run(call_asgi(GATEWAY, "POST", raw_path, headers=headers, body=b"[1]"))
    assert result.status == 400 and json.loads(result.body)["__type"] == "SerializationException"
