"""Unit tests of the function URL pieces: event building, response mapping, CORS, event-stream framing."""

from __future__ import annotations

import base64
import json

import pytest
from aws_lambda_powertools.utilities.parser.models import LambdaFunctionUrlModel
from botocore.eventstream import EventStreamBuffer

from hearth.services.lambda_.stream_api import invoke_complete, payload_chunk
from hearth.services.lambda_.urls import url_for, url_id_for
from hearth.urls import cors
from hearth.urls.event import IamCaller, UrlRequest, aws_time, build_event, is_text
from hearth.urls.front import match
from hearth.urls.response import BadResponse, map_result, split_prelude


def _event(**kw: object) -> dict[str, object]:
    req = UrlRequest(
        method=str(kw.get("method", "GET")), raw_path="/a/b", raw_query=str(kw.get("query", "")),
        headers=list(kw.get("headers", [("Host", "x"), ("X-Dup", "1"), ("x-dup", "2")])),  # type: ignore[call-overload]
        body=bytes(kw.get("body", b"")), source_ip="10.0.0.1")  # type: ignore[call-overload]
    return build_event(req, url_id="u" * 32, domain_name="d", request_id="rid", epoch_ms=1_795_568_523_000,
                       caller=kw.get("caller"))  # type: ignore[arg-type]


def test_event_headers_query_cookies() -> None:
    event = _event(query="a=1&a=2&b=%2F", headers=[("Cookie", "x=1; y=2"), ("X-Dup", "1"), ("x-dup", "2")])
    LambdaFunctionUrlModel(**event)
    assert event["headers"]["x-dup"] == "1,2"  # type: ignore[index]
    assert event["cookies"] == ["x=1", "y=2"]
    assert event["queryStringParameters"] == {"a": "1,2", "b": "/"}
    assert event["requestContext"]["accountId"] == "anonymous"  # type: ignore[index]
    assert event["requestContext"]["time"] == aws_time(1_795_568_523_000)  # type: ignore[index]


def test_event_host_port_and_hop_by_hop_headers_as_aws() -> None:
    # LocalStack's test_lambda_url_form_payload / echo_http_fixture tests: AWS's event names the URL's
    # domain as host (the port goes to x-forwarded-port) and passes no `connection` header.
    event = _event(headers=[("Host", "d:4566"), ("Connection", "keep-alive"), ("Accept", "*/*")])
    headers = event["headers"]
    assert headers == {"host": "d", "accept": "*/*", "x-forwarded-proto": "http",  # type: ignore[comparison-overlap]
                       "x-forwarded-for": "10.0.0.1", "x-forwarded-port": "4566"}
    assert _event(headers=[("Host", "d")])["headers"]["x-forwarded-port"] == "80"  # type: ignore[index]


def test_event_http_path_is_decoded() -> None:
    req = UrlRequest(method="GET", raw_path="/pa2%25Fth/1", raw_query="", headers=[], body=b"", source_ip="1.2.3.4")
    event = build_event(req, url_id="u" * 32, domain_name="d", request_id="rid", epoch_ms=0, caller=None)
    assert (event["rawPath"], event["requestContext"]["http"]["path"]) == ("/pa2%25Fth/1", "/pa2%Fth/1")


def test_event_time_format() -> None:
    assert aws_time(1_795_568_523_000) == "25/Nov/2026:01:02:03 +0000"


def test_event_body_encoding() -> None:
    text = _event(method="POST", body=b"{}", headers=[("Content-Type", "application/json; charset=utf-8")])
    assert text["body"] == "{}" and text["isBase64Encoded"] is False
    binary = _event(method="POST", body=b"\xff\x00", headers=[("Content-Type", "text/plain")])
    assert binary["isBase64Encoded"] is True and base64.b64decode(str(binary["body"])) == b"\xff\x00"
    form = _event(method="POST", body=b"a=1", headers=[("Content-Type", "application/x-www-form-urlencoded")])
    assert form["isBase64Encoded"] is True
    assert is_text("application/problem+json") and not is_text(None) and not is_text("image/png")


def test_event_iam_caller() -> None:
    event = _event(caller=IamCaller("AKIA1", "123456789012"))
    LambdaFunctionUrlModel(**event)
    assert event["requestContext"]["accountId"] == "123456789012"  # type: ignore[index]
    assert event["requestContext"]["authorizer"]["iam"]["accessKey"] == "AKIA1"  # type: ignore[index]


def test_response_mapping_rules() -> None:
    assert map_result(b'"hi"').body == b"hi"
    inferred = map_result(b'{"a": 1}')
    assert (inferred.status, inferred.headers, inferred.body) == (200, [("content-type", "application/json")],
                                                                  b'{"a":1}')  # compact, as AWS
    assert map_result(b'["hello", 3, true]').body == b'["hello",3,true]'
    structured = map_result(json.dumps({"statusCode": 404, "headers": {"X-A": True}, "cookies": ["c=1"],
                                        "body": base64.b64encode(b"\x01").decode(), "isBase64Encoded": True}).encode())
    assert structured.status == 404 and structured.body == b"\x01"
    assert ("x-a", "true") in structured.headers and ("set-cookie", "c=1") in structured.headers
    assert map_result(b'{"statusCode": 200, "body": {"k": 1}}').body == b'{"k": 1}'
    with pytest.raises(BadResponse):
        map_result(b'{"statusCode": "abc"}')


def test_prelude() -> None:
    assert split_prelude(b'{"statusCode": 201}') is None
    meta, rest = split_prelude(b'{"statusCode": 201}' + b"\0" * 8 + b"body")  # type: ignore[misc]
    assert meta == {"statusCode": 201} and rest == b"body"
    with pytest.raises(BadResponse):
        split_prelude(b"[1]" + b"\0" * 8)


def test_cors() -> None:
    cfg = {"AllowOrigins": ["*"], "AllowMethods": ["*"], "MaxAge": 5}
    headers = {"origin": "https://a.example", "access-control-request-method": "PUT"}
    assert cors.is_preflight("OPTIONS", headers) and not cors.is_preflight("GET", headers)
    pre = dict(cors.preflight_headers(cfg, headers))
    assert pre["access-control-allow-origin"] == "*" and pre["access-control-allow-methods"] == "PUT"
    out = dict(cors.apply(cfg, {"origin": "https://a.example"}, [("access-control-allow-origin", "evil")]))
    assert out["access-control-allow-origin"] == "*"
    assert cors.apply(None, {}, [("a", "b")]) == [("a", "b")]
    denied = dict(cors.preflight_headers({"AllowOrigins": ["https://b.example"], "AllowMethods": ["GET"]}, headers))
    assert "access-control-allow-origin" not in denied


def test_event_stream_frames_parse_with_botocore() -> None:
    buf = EventStreamBuffer()
    buf.add_data(payload_chunk(b"hello") + invoke_complete("Err", "details", "bG9n"))
    messages = list(buf)
    assert messages[0].headers[":event-type"] == "PayloadChunk" and messages[0].payload == b"hello"
    assert messages[1].headers[":event-type"] == "InvokeComplete"
    assert json.loads(messages[1].payload) == {"ErrorCode": "Err", "ErrorDetails": "details", "LogResult": "bG9n"}


def test_url_ids_and_matching() -> None:
    uid = url_id_for("000000000000", "us-east-1", "fn", "")
    assert len(uid) == 32 and uid.isalnum() and uid == uid.lower()
    assert uid == url_id_for("000000000000", "us-east-1", "fn", "")
    assert uid != url_id_for("000000000000", "us-east-1", "fn", "a")
    assert url_for(uid, "us-east-1", "http://127.0.0.1:4566") == f"http://{uid}.lambda-url.us-east-1.localhost:4566/"
    host_header = f"{uid}.lambda-url.us-east-1.localhost:4566".encode()
    host = {"type": "http", "raw_path": b"/x?y", "headers": [(b"host", host_header)]}
    assert match(host) == (uid, "us-east-1", "/x")
    path = {"type": "http", "raw_path": f"/_hearth/url/{uid}/p/q".encode(), "headers": [(b"host", b"127.0.0.1")]}
    assert match(path) == (uid, None, "/p/q")
    assert match({"type": "http", "raw_path": b"/2015-03-31/functions", "headers": []}) is None
