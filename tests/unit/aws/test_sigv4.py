"""SigV4: botocore's own signers produce requests the verifier accepts; every failure is named."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from tests.unit.aws.driver import (
    ACCESS_KEY,
    SECRET_KEY,
    EchoProvider,
    call_asgi,
    gateway_client,
    make_gateway,
)

from hearth.aws.sigv4 import canonical_query

FN_URL = "http://hearth.test:4566/2015-03-31/functions/{name}/configuration"


def _signed(url: str, *, method: str = "GET", body: bytes = b"", secret: str = SECRET_KEY,
            key: str = ACCESS_KEY, service: str = "lambda", headers: dict[str, str] | None = None,
            presign: bool = False, expires: int = 60) -> tuple[str, str, str, list[tuple[str, str]], bytes]:
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    creds = Credentials(key, secret)
    signer = SigV4QueryAuth(creds, service, "eu-west-1", expires=expires) if presign \
        else SigV4Auth(creds, service, "eu-west-1")
    signer.add_auth(req)
    prepared = req.prepare()
    parts = urlsplit(prepared.url)
    hdrs = [(k, v if isinstance(v, str) else v.decode()) for k, v in prepared.headers.items()]
    hdrs.append(("host", parts.netloc))
    return method, parts.path, parts.query, hdrs, body


def _run(gw: Any, signed: tuple[str, str, str, list[tuple[str, str]], bytes]) -> Any:
    method, path, query, headers, body = signed
    return asyncio.run(call_asgi(gw, method, path, query=query, headers=headers, body=body))


@pytest.fixture
def gw(tmp_path: Path) -> Any:
    return make_gateway(tmp_path, {"lambda": [EchoProvider()], "logs": [EchoProvider()], "sns": [EchoProvider()]})


@pytest.mark.parametrize("name", ["plain", "arn%3Aaws%3Alambda%3Aeu-west-1%3A111122223333%3Afunction%3Afn",
                                  "fn%2Dx", "a.b-c_d"])
def test_header_signature_accepted_with_region_from_scope(tmp_path: Path, name: str) -> None:
    echo = EchoProvider()
    gw = make_gateway(tmp_path, {"lambda": [echo]})
    result = _run(gw, _signed(FN_URL.format(name=name) + "?Qualifier=%24LATEST"))
    assert result.status == 200, result.body
    _, params, ctx = echo.calls[0]
    assert ctx.region == "eu-west-1" and ctx.principal.access_key_id == ACCESS_KEY
    assert params["Qualifier"] == "$LATEST"


def test_presigned_url_accepted(gw: Any) -> None:
    assert _run(gw, _signed(FN_URL.format(name="f"), presign=True)).status == 200


def test_presigned_url_expired(tmp_path: Path) -> None:
    signed = _signed(FN_URL.format(name="f"), presign=True, expires=60)
    later = make_gateway(tmp_path, {"lambda": [EchoProvider()]}, clock=lambda: time.time() + 120)
    result = _run(later, signed)
    assert result.status == 403
    assert result.headers["x-amzn-errortype"] == "InvalidSignatureException"
    assert b"Signature expired" in result.body


class _Http2Signer(SigV4Auth):
    """Signs as the AWS SDK for JavaScript does over HTTP/2: the :authority pseudo-header instead of Host."""

    def headers_to_sign(self, request: AWSRequest) -> Any:
        headers = super().headers_to_sign(request)
        authority = headers["host"]
        del headers["host"]
        headers[":authority"] = authority
        return headers


def test_http2_authority_signature_checked_against_host(gw: Any) -> None:
    # hearth.http2 gives the ASGI app :authority as `host`; the signature must hold against it, and only it
    req = AWSRequest(method="GET", url=FN_URL.format(name="f"))
    _Http2Signer(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "eu-west-1").add_auth(req)
    assert "SignedHeaders=:authority;" in req.headers["Authorization"]
    headers = [(k, v) for k, v in req.headers.items()]
    parts = urlsplit(FN_URL.format(name="f"))
    ok = asyncio.run(call_asgi(gw, "GET", parts.path, headers=[*headers, ("host", parts.netloc)]))
    assert ok.status == 200, ok.body
    moved = asyncio.run(call_asgi(gw, "GET", parts.path, headers=[*headers, ("host", "elsewhere.test")]))
    assert moved.status == 403


def test_wrong_secret(gw: Any) -> None:
    result = _run(gw, _signed(FN_URL.format(name="f"), secret="nope"))
    assert result.status == 403
    assert result.headers["x-amzn-errortype"] == "InvalidSignatureException"
    assert b"The request signature we calculated does not match the signature you provided." in result.body


def test_tampered_body_and_content_hash(gw: Any) -> None:
    method, path, query, headers, _ = _signed("http://hearth.test:4566/2015-03-31/functions/f/invocations",
                                             method="POST", body=b'{"a":1}')
    result = asyncio.run(call_asgi(gw, method, path, query=query, headers=headers, body=b'{"a":2}'))
    assert result.status == 403 and result.headers["x-amzn-errortype"] == "InvalidSignatureException"
    signed = _signed("http://hearth.test:4566/2015-03-31/functions/f/invocations", method="POST", body=b"{}",
                     headers={"X-Amz-Content-SHA256": "0" * 64})
    assert _run(gw, signed).status == 403


def test_unknown_key(gw: Any) -> None:
    result = _run(gw, _signed(FN_URL.format(name="f"), key="AKIAUNKNOWN000000000"))
    assert result.status == 403
    assert result.headers["x-amzn-errortype"] == "UnrecognizedClientException"
    assert b"The security token included in the request is invalid." in result.body


def test_missing_auth(gw: Any) -> None:
    result = asyncio.run(call_asgi(gw, "GET", "/2015-03-31/functions/f/configuration"))
    assert result.status == 403
    assert result.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert b"Missing Authentication Token" in result.body


@pytest.mark.parametrize(("header", "text"), [
    ("AWS4-HMAC-SHA256 Credential=AKIAX/20240101/us-east-1/lambda/aws4_request",
     "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
     "parameter. Authorization=AWS4-HMAC-SHA256 Credential="),
    ("AWS4-HMAC-SHA256 Credential=AKIAX/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host, junk",
     "'junk' not a valid key=value pair (missing equal-sign) in Authorization header"),
])
def test_malformed_authorization(gw: Any, header: str, text: str) -> None:
    result = asyncio.run(call_asgi(gw, "GET", "/2015-03-31/functions/f/configuration",
                                   headers=[("Authorization", header), ("X-Amz-Date", "20240101T000000Z")]))
    assert result.status == 403
    assert result.headers["x-amzn-errortype"] == "IncompleteSignatureException"
    assert text in result.body.decode()


def test_stale_signature(tmp_path: Path) -> None:
    signed = _signed(FN_URL.format(name="f"))
    now = time.time() + 16 * 60
    gw = make_gateway(tmp_path, {"lambda": [EchoProvider()]}, clock=lambda: now)
    result = _run(gw, signed)
    assert result.status == 403
    assert result.headers["x-amzn-errortype"] == "InvalidSignatureException"
    assert b"Signature expired: " in result.body and b" - 15 min.)" in result.body


def test_json_and_query_services_spell_failures_their_way(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path, {"logs": [EchoProvider()], "sns": [EchoProvider()]})
    with pytest.raises(ClientError) as info:
        gateway_client(gw, "logs", secret="bad").describe_log_groups()
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    with pytest.raises(ClientError) as info:
        gateway_client(gw, "sns", key="AKIANOPE").list_topics()
    assert info.value.response["Error"]["Code"] == "InvalidClientTokenId"
    with pytest.raises(ClientError) as info:
        gateway_client(gw, "sns", secret="bad").list_topics()
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_auth_any_mode_account_from_numeric_key(tmp_path: Path) -> None:
    echo = EchoProvider()
    gw = make_gateway(tmp_path, {"lambda": [echo]}, auth="any")
    gateway_client(gw, "lambda", key="444455556666", secret="whatever").get_function(FunctionName="f")
    gateway_client(gw, "lambda", key="AKIAANYTHING", secret="x").get_function(FunctionName="f")
    assert [c[2].account_id for c in echo.calls] == ["444455556666", "111122223333"]
    result = asyncio.run(call_asgi(gw, "GET", "/2015-03-31/functions/f/configuration"))
    assert result.status == 403  # still needs a well-formed signature


def test_canonical_query_matches_botocore_encoding() -> None:
    assert canonical_query("b=2&a=x%20y&a=1&X-Amz-Signature=s", drop_signature=True) == "a=1&a=x%20y&b=2"
    assert canonical_query("k=a+b&e=") == "e=&k=a%2Bb"
    assert canonical_query("k=a+b&e=", plus_as_space=True) == "e=&k=a%20b"


def test_plus_on_the_wire_for_a_signed_space_is_accepted(tmp_path: Path) -> None:
    """Python's requests sends query parameters form-encoded ('+' for a space) after botocore signed
    '%20': AWS accepts it (LocalStack's AWS-validated SNS test posts Publish so)."""
    echo = EchoProvider()
    gw = make_gateway(tmp_path, {"lambda": [echo]})
    listing = "http://hearth.test:4566/2015-03-31/functions/"
    method, path, query, headers, body = _signed(listing + "?Marker=a%20b")
    result = _run(gw, (method, path, query.replace("%20", "+"), headers, body))
    assert result.status == 200, result.body
    assert echo.calls[0][1]["Marker"] == "a b"
    tampered = _signed(listing + "?Marker=a%20b")
    assert _run(gw, (tampered[0], tampered[1], "Marker=a+c", tampered[3], tampered[4])).status == 403
