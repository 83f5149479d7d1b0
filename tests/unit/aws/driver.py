"""Test drivers for the AWS gateway: an ASGI caller and botocore clients wired straight into it.

No sockets: `call_asgi` runs the app with in-memory receive/send; `gateway_client` gives a real
botocore client whose HTTP sends are answered by the gateway (so botocore signs, serializes and
parses exactly as it does against AWS).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config

from hearth.aws.gateway import AwsGateway
from hearth.aws.keys import AccessKey, KeyStore
from hearth.config import Settings

ACCESS_KEY = "AKIAHEARTHTEST000001"
SECRET_KEY = "hearth-test-secret-key-0000000000000000"
ACCOUNT = "111122223333"
ENDPOINT = "http://hearth.test:4566"


@dataclass
class AsgiResult:
    status: int
    headers: dict[str, str]
    body: bytes


async def call_asgi(app: Any, method: str, raw_path: str, *, query: str = "",
                    headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                    chunk: int = 0) -> AsgiResult:
    """Drive one HTTP request through an ASGI app; `chunk` > 0 splits the body into messages."""
    pieces = [body[i:i + chunk] for i in range(0, len(body), chunk)] if chunk and body else [body]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1}
                for i, p in enumerate(pieces)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": method, "path": raw_path, "raw_path": raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"), "client": ("127.0.0.1", 5555),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or [])],
    }
    await app(scope, receive, send)
    start = sent[0]
    assert start["type"] == "http.response.start"
    out = b"".join(m.get("body", b"") for m in sent[1:])
    assert not sent[-1].get("more_body", False)
    return AsgiResult(start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, out)


@dataclass
class EchoProvider:
    """Records every call; answers with `results[operation]` (a dict, an exception, or a callable)."""

    operations: set[str] | None = None
    results: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or (self.operations is not None and name not in self.operations):
            raise AttributeError(name)

        def handler(ctx: Any, params: dict[str, Any]) -> Any:
            self.calls.append((name, params, ctx))
            result = self.results.get(name, {})
            if isinstance(result, BaseException):
                raise result
            return result(ctx, params) if callable(result) else result

        return handler


def make_keys(tmp: Path) -> KeyStore:
    return KeyStore([AccessKey(ACCESS_KEY, SECRET_KEY, ACCOUNT)], AccessKey(ACCESS_KEY, SECRET_KEY, ACCOUNT))


def make_gateway(tmp: Path, providers: dict[str, list[object]], *, auth: str = "sigv4",
                 clock: Callable[[], float] | None = None) -> AwsGateway:
    settings = Settings(data_dir=tmp, auth=auth, account_id=ACCOUNT)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {"clock": clock} if clock else {}
    return AwsGateway(settings, make_keys(tmp), providers, **kwargs)


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def send_through(app: Any, request: AWSPreparedRequest) -> AsgiResult:
    parts = urlsplit(request.url)
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    elif hasattr(body, "read"):
        body = body.read()
    headers = [(k, v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()]
    headers.append(("host", parts.netloc))
    return asyncio.run(call_asgi(app, request.method, parts.path or "/", query=parts.query,
                                 headers=headers, body=body))


def gateway_client(app: Any, service: str, *, secret: str = SECRET_KEY, key: str = ACCESS_KEY,
                   region: str = "us-east-1", captured: list[AsgiResult] | None = None) -> Any:
    """A botocore client whose requests are answered in-process by `app` (tests must be sync)."""
    session = botocore.session.get_session()
    client = session.create_client(
        service, region_name=region, endpoint_url=ENDPOINT, aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=False),
    )

    def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        result = send_through(app, request)
        if captured is not None:
            captured.append(result)
        return AWSResponse(request.url, result.status, result.headers, _Raw(result.body))

    client.meta.events.register("before-send", before_send)
    return client


