"""Function URLs end to end: config API, the 2.0 event, response mapping, CORS, AWS_IAM, streaming,
and InvokeWithResponseStream — through boto3 and plain HTTP clients."""

from __future__ import annotations

import base64
import http.client
import json
import time
import uuid
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import LambdaFunctionUrlModel
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.integration.harness import (
    ACCESS_KEY,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    SECRET_KEY,
    HearthServer,
    create_function,
)

PY_APP = '''
import base64, json, time

def handler(event, context):
    q = event.get("queryStringParameters") or {}
    mode = q.get("mode") or event.get("mode")
    if mode == "string":
        return "hello there"
    if mode == "dict":
        return {"a": 1}
    if mode == "number":
        return 42
    if mode == "binary":
        return {"statusCode": 201, "headers": {"content-type": "application/octet-stream", "x-num": 7},
                "cookies": ["a=1; Path=/", "b=2"], "body": base64.b64encode(b"\\x00\\x01\\xff").decode(),
                "isBase64Encoded": True}
    if mode == "error":
        raise ValueError("boom")
    if mode == "stream":
        return stream()
    if mode == "plainstream":
        return plain()
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}

def stream():
    yield {"statusCode": 203, "headers": {"content-type": "text/plain", "x-streamed": "yes"}}
    yield "first\\n"
    time.sleep(1)
    yield b"second\\n"

def plain():
    yield "one,"
    yield "two"
'''

NODE_APP = '''
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  const stream = awslambda.HttpResponseStream.from(responseStream,
    { statusCode: 202, headers: { "content-type": "text/plain", "x-node": "1" } });
  stream.write("first\\n");
  await new Promise((r) => setTimeout(r, 1000));
  stream.write("second\\n");
  if (event.fail) throw new Error("late failure");
  stream.end();
});
'''


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _url_id(url: str) -> str:
    return url.split("//", 1)[1].split(".", 1)[0]


def _request(server: HearthServer, url_id: str, method: str = "GET", path: str = "/", *, query: str = "",
             body: bytes | None = None, headers: dict[str, str] | None = None, host_form: bool = True,
             ) -> tuple[int, dict[str, str], list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    target = path if host_form else f"/_hearth/url/{url_id}{path}"
    if query:
        target += "?" + query
    hdrs = dict(headers or {})
    if host_form:
        hdrs["Host"] = f"{url_id}.lambda-url.us-east-1.localhost:{server.port}"
    try:
        conn.request(method, target, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.getheaders(), data
    finally:
        conn.close()


def _public(lam: Any, name: str, **kwargs: Any) -> dict[str, Any]:
    """A NONE-auth URL as AWS users make one: the config, plus the permission that opens it to all."""
    created: dict[str, Any] = lam.create_function_url_config(FunctionName=name, AuthType="NONE", **kwargs)
    lam.add_permission(FunctionName=name, StatementId="public-url", Action="lambda:InvokeFunctionUrl",
                       Principal="*", FunctionUrlAuthType="NONE", **({"Qualifier": kwargs["Qualifier"]}
                                                                      if "Qualifier" in kwargs else {}))
    return created


@pytest.fixture(scope="module")
def py_url(server: HearthServer) -> tuple[str, str]:
    lam = server.client("lambda")
    name = _name("url-py")
    create_function(lam, name, {"app.py": PY_APP})
    created = _public(lam, name)
    return name, _url_id(created["FunctionUrl"])


def test_url_config_lifecycle_and_errors(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = _name("url-cfg")
    create_function(lam, name, {"app.py": PY_APP})
    created = lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["AuthType"] == "NONE" and "InvokeMode" not in created
    assert created["FunctionArn"].endswith(f":function:{name}")
    url_id = _url_id(created["FunctionUrl"])
    assert len(url_id) == 32 and url_id.isalnum() and url_id.lower() == url_id
    assert created["FunctionUrl"] == f"http://{url_id}.lambda-url.us-east-1.localhost:{server.port}/"

    with pytest.raises(ClientError) as exc:
        lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    err = exc.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert err["Error"]["Message"] == (
        f"Failed to create function url config for [functionArn = {created['FunctionArn']}]. Error message:  "
        "FunctionUrlConfig exists for this Lambda function")

    got = lam.get_function_url_config(FunctionName=name)
    assert got["InvokeMode"] == "BUFFERED" and got["FunctionUrl"] == created["FunctionUrl"]
    assert "LastModifiedTime" in got

    cors = {"AllowOrigins": ["https://example.com"], "AllowMethods": ["GET", "POST"], "MaxAge": 60}
    updated = lam.update_function_url_config(FunctionName=name, AuthType="AWS_IAM", Cors=cors,
                                             InvokeMode="RESPONSE_STREAM")
    assert updated["AuthType"] == "AWS_IAM" and updated["Cors"] == cors and updated["InvokeMode"] == "RESPONSE_STREAM"
    assert lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"][0]["AuthType"] == "AWS_IAM"

    for qualifier in ("$LATEST", "1"):
        with pytest.raises(ClientError) as exc:
            lam.get_function_url_config(FunctionName=name, Qualifier=qualifier)
        assert exc.value.response["Error"]["Code"] == "ValidationException"
        assert exc.value.response["Error"]["Message"] == (
            f"1 validation error detected: Value '{qualifier}' at 'qualifier' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)")
    with pytest.raises(ClientError) as exc:
        lam.create_function_url_config(FunctionName=name, Qualifier="nosuchalias", AuthType="NONE")
    assert exc.value.response["Error"]["Message"] == "Function does not exist"
    with pytest.raises(ClientError) as exc:
        lam.get_function_url_config(FunctionName=f"{name}:other", Qualifier="nosuchalias")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"

    assert lam.delete_function_url_config(FunctionName=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        lam.get_function_url_config(FunctionName=name)
    assert exc.value.response["Error"]["Message"] == "The resource you requested does not exist."
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"] == []
    with pytest.raises(ClientError) as exc:
        lam.list_function_url_configs(FunctionName=_name("missing"))
    assert exc.value.response["Error"]["Message"] == "Function does not exist"
    with pytest.raises(ClientError) as exc:
        lam.create_function_url_config(FunctionName=_name("missing"), AuthType="NONE")
    assert exc.value.response["Error"]["Message"] == "Function does not exist"
    # deleting the function deletes its URL
    again = lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert again["FunctionUrl"] == created["FunctionUrl"]  # stable url-id
    lam.delete_function(FunctionName=name)
    status, _, _, _ = _request(server, url_id)
    assert status == 403  # an unknown URL, as AWS


def test_get_and_post_event(server: HearthServer, py_url: tuple[str, str]) -> None:
    _, url_id = py_url
    status, headers, _, body = _request(
        server, url_id, "GET", "/some/path", query="a=1&a=2&b=x%20y",
        headers={"Cookie": "c1=v1; c2=v2", "X-Multi": "one", "User-Agent": "hearth-test"})
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    event = json.loads(body)
    LambdaFunctionUrlModel(**event)
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/some/path" and event["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert "cookie" not in event["headers"] and event["headers"]["x-multi"] == "one"
    ctx = event["requestContext"]
    assert ctx["accountId"] == "anonymous" and ctx["apiId"] == url_id and ctx["domainPrefix"] == url_id
    assert ctx["http"] == {"method": "GET", "path": "/some/path", "protocol": "HTTP/1.1",
                           "sourceIp": "127.0.0.1", "userAgent": "hearth-test"}
    assert ctx["stage"] == "$default" and ctx["requestId"] == headers["x-amzn-requestid"]
    assert time.strptime(ctx["time"], "%d/%b/%Y:%H:%M:%S +0000")
    assert event["isBase64Encoded"] is False and "body" not in event

    status, _, _, body = _request(server, url_id, "POST", "/p", body=b'{"k": "v"}',
                                  headers={"Content-Type": "application/json"}, host_form=False)
    event = json.loads(body)
    LambdaFunctionUrlModel(**event)
    assert event["body"] == '{"k": "v"}' and event["isBase64Encoded"] is False and event["rawPath"] == "/p"

    raw = bytes(range(256))
    status, _, _, body = _request(server, url_id, "POST", "/bin", body=raw,
                                  headers={"Content-Type": "application/octet-stream"})
    event = json.loads(body)
    LambdaFunctionUrlModel(**event)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == raw


def test_response_mapping(server: HearthServer, py_url: tuple[str, str]) -> None:
    _, url_id = py_url
    status, headers, _, body = _request(server, url_id, query="mode=string")
    assert (status, headers["content-type"], body) == (200, "application/json", b"hello there")
    status, _, _, body = _request(server, url_id, query="mode=dict")
    assert status == 200 and json.loads(body) == {"a": 1}
    status, _, _, body = _request(server, url_id, query="mode=number")
    assert (status, body) == (200, b"42")
    status, headers, raw_headers, body = _request(server, url_id, query="mode=binary")
    assert (status, body) == (201, b"\x00\x01\xff")
    assert headers["content-type"] == "application/octet-stream" and headers["x-num"] == "7"
    assert [v for k, v in raw_headers if k.lower() == "set-cookie"] == ["a=1; Path=/", "b=2"]
    status, _, _, body = _request(server, url_id, query="mode=error")
    assert (status, body) == (502, b"Internal Server Error")  # as AWS: no JSON for a function error
    status, _, _, _ = _request(server, url_id, "POST", body=b"x" * (6 * 1024 * 1024 + 1))
    assert status == 413
    status, headers, _, body = _request(server, "0" * 32)
    assert (status, body, headers["x-amzn-errortype"]) == (403, b'{"Message":null}', "AccessDeniedException")


def test_cors(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = _name("url-cors")
    create_function(lam, name, {"app.py": PY_APP})
    cors = {"AllowOrigins": ["https://example.com"], "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["x-custom"], "ExposeHeaders": ["x-num"], "MaxAge": 300, "AllowCredentials": True}
    url_id = _url_id(_public(lam, name, Cors=cors)["FunctionUrl"])
    status, headers, _, body = _request(server, url_id, "OPTIONS", headers={
        "Origin": "https://example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-custom"})
    assert status == 200 and body == b""
    assert headers["access-control-allow-origin"] == "https://example.com"
    assert headers["access-control-allow-methods"] == "GET,POST"
    assert headers["access-control-allow-headers"] == "x-custom"
    assert headers["access-control-max-age"] == "300"
    assert headers["access-control-allow-credentials"] == "true"
    status, headers, _, _ = _request(server, url_id, "OPTIONS", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert status == 200 and "access-control-allow-origin" not in headers
    status, headers, _, _ = _request(server, url_id, query="mode=binary", headers={"Origin": "https://example.com"})
    assert status == 201 and headers["access-control-allow-origin"] == "https://example.com"
    assert headers["access-control-expose-headers"] == "x-num"


def _signed(server: HearthServer, url_id: str, key: str, secret: str, body: bytes) -> dict[str, str]:
    url = f"http://127.0.0.1:{server.port}/_hearth/url/{url_id}/signed?x=1"
    req = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key, secret), "lambda", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def test_aws_iam_auth(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = _name("url-iam")
    create_function(lam, name, {"app.py": PY_APP})
    url_id = _url_id(lam.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")["FunctionUrl"])
    status, _, _, body = _request(server, url_id, "POST", "/signed", query="x=1", body=b"{}", host_form=False)
    assert status == 403 and json.loads(body)["Message"].startswith("Forbidden.")
    bad = _signed(server, url_id, ACCESS_KEY, "wrong-secret", b"{}")
    status, _, _, _ = _request(server, url_id, "POST", "/signed", query="x=1", body=b"{}", headers=bad,
                               host_form=False)
    assert status == 403
    good = _signed(server, url_id, ACCESS_KEY, SECRET_KEY, b"{}")
    status, _, _, body = _request(server, url_id, "POST", "/signed", query="x=1", body=b"{}", headers=good,
                                  host_form=False)
    assert status == 200, body
    event = json.loads(body)
    LambdaFunctionUrlModel(**event)
    assert event["requestContext"]["accountId"] == "000000000000"
    assert event["requestContext"]["authorizer"]["iam"]["accessKey"] == ACCESS_KEY
    # another account, with no resource policy granting it: refused
    other = _signed(server, url_id, OTHER_ACCESS_KEY, OTHER_SECRET_KEY, b"{}")
    status, _, _, _ = _request(server, url_id, "POST", "/signed", query="x=1", body=b"{}", headers=other,
                               host_form=False)
    assert status == 403


def _stream_timing(server: HearthServer, url_id: str, query: str = "") -> tuple[int, dict[str, str], bytes, float,
                                                                              float]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        started = time.monotonic()
        conn.request("GET", "/" + (f"?{query}" if query else ""),
                     headers={"Host": f"{url_id}.lambda-url.us-east-1.localhost:{server.port}"})
        resp = conn.getresponse()
        first = resp.read1(65536)
        first_at = time.monotonic() - started
        rest = resp.read()
        done_at = time.monotonic() - started
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, first + rest, first_at, done_at
    finally:
        conn.close()


@pytest.mark.parametrize("runtime", ["python3.11", "nodejs20.x"])
def test_streaming_time_to_first_byte(server: HearthServer, runtime: str) -> None:
    lam = server.client("lambda")
    name = _name("url-stream")
    if runtime.startswith("python"):
        create_function(lam, name, {"app.py": PY_APP}, runtime=runtime)
        query, status_code, marker = "mode=stream", 203, "x-streamed"
    else:
        create_function(lam, name, {"index.js": NODE_APP}, runtime=runtime, handler="index.handler")
        query, status_code, marker = "", 202, "x-node"
    url_id = _url_id(_public(lam, name, InvokeMode="RESPONSE_STREAM")["FunctionUrl"])
    _stream_timing(server, url_id, query)  # warm: the measured call starts no environment
    status, headers, body, first_at, done_at = _stream_timing(server, url_id, query)
    assert status == status_code and headers["content-type"] == "text/plain" and marker in headers
    assert body == b"first\nsecond\n"
    # the handler sleeps 1 s between its writes: the first bytes arrive well before it finishes
    assert done_at - first_at > 0.7
    assert first_at < 0.5


def test_python_plain_stream_and_buffered_url(server: HearthServer, py_url: tuple[str, str]) -> None:
    _, url_id = py_url  # a BUFFERED URL gathers a streamed response
    status, headers, _, body = _request(server, url_id, query="mode=plainstream")
    assert (status, headers["content-type"], body) == (200, "application/octet-stream", b"one,two")


def _events(resp: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    data = b""
    complete: dict[str, Any] = {}
    for event in resp["EventStream"]:
        if "PayloadChunk" in event:
            data += event["PayloadChunk"]["Payload"]
        if "InvokeComplete" in event:
            complete = event["InvokeComplete"]
    return data, complete


def test_invoke_with_response_stream(server: HearthServer, py_url: tuple[str, str]) -> None:
    lam = server.client("lambda")
    name, _ = py_url
    resp = lam.invoke_with_response_stream(FunctionName=name, Payload=json.dumps({"mode": "dict"}))
    assert resp["StatusCode"] == 200 and resp["ExecutedVersion"] == "$LATEST"
    data, complete = _events(resp)
    assert json.loads(data) == {"a": 1} and "ErrorCode" not in complete

    resp = lam.invoke_with_response_stream(FunctionName=name, Payload=json.dumps({"mode": "plainstream"}),
                                           LogType="Tail")
    assert resp["ResponseStreamContentType"] == "application/octet-stream"
    data, complete = _events(resp)
    assert data == b"one,two" and "LogResult" in complete
    assert "START RequestId" in base64.b64decode(complete["LogResult"]).decode()

    resp = lam.invoke_with_response_stream(FunctionName=name, Payload=json.dumps({"mode": "error"}))
    data, complete = _events(resp)
    assert complete["ErrorCode"] == "ValueError" and "boom" in complete["ErrorDetails"]

    node = _name("iwrs-node")
    create_function(lam, node, {"index.js": NODE_APP}, runtime="nodejs20.x", handler="index.handler")
    resp = lam.invoke_with_response_stream(FunctionName=node, Payload=json.dumps({"fail": True}))
    assert resp["ResponseStreamContentType"] == "application/vnd.awslambda.http-integration-response"
    data, complete = _events(resp)
    assert data.endswith(b"\0" * 8 + b"first\nsecond\n")
    assert complete["ErrorCode"] == "Error" and "late failure" in complete["ErrorDetails"]


def test_none_auth_needs_a_public_permission(server: HearthServer) -> None:
    """As AWS: AuthType NONE opens nothing until a policy lets "*" call lambda:InvokeFunctionUrl."""
    lam = server.client("lambda")
    name = _name("url-closed")
    create_function(lam, name, {"app.py": PY_APP})
    url_id = _url_id(lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"])
    status, _, _, body = _request(server, url_id)
    assert status == 403 and json.loads(body)["Message"].startswith("Forbidden.")
    lam.add_permission(FunctionName=name, StatementId="public-url", Action="lambda:InvokeFunctionUrl",
                       Principal="*", FunctionUrlAuthType="NONE")
    status, _, _, _ = _request(server, url_id)
    assert status == 200


def test_malformed_requests(server: HearthServer, py_url: tuple[str, str]) -> None:
    _, url_id = py_url
    status, _, _, body = _request(server, url_id, headers={"X-Big": "a" * 11_000})
    assert (status, json.loads(body)) == (431, {"Message": "Request Header Fields Too Large"})
    status, _, _, body = _request(server, url_id, "POST", body=b"x" * (6 * 1024 * 1024 + 1))
    assert status == 413
    # A broken percent-encoding is not Hearth's to repair: the function sees the raw path, as sent.
    status, _, _, _ = _request(server, url_id, path="/a%ZZb", query="x=%E0%A4")
    assert status == 200
