"""Model-driven fuzz of the Lambda API: requests generated from botocore's own input shapes.

Hypothesis builds parameters for every Lambda operation from the service model (in range and out of
range, valid enums and junk, missing required members), botocore serializes and signs them exactly as
it would for AWS, and they go through the real gateway to the real providers over a real store. The
properties: the server never answers 500, and botocore parses every answer — success into the modeled
output, failure into a modeled or framework error with a code and a message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import Shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.aws.driver import call_asgi

from hearth.aws.gateway import AwsGateway
from hearth.aws.keys import AccessKey, KeyStore
from hearth.config import Settings
from hearth.functions.service import FunctionService
from hearth.services.lambda_.code_url import CodeUrlSigner
from hearth.services.lambda_.provider import LambdaProvider
from hearth.store.blobs import BlobStore
from hearth.store.db import open_store

KEY, SECRET, ACCOUNT = "AKIAHEARTHFUZZ000001", "hearth-fuzz-secret-000000000000000000000", "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/fuzz"
MODEL = botocore.session.get_session().get_service_model("lambda")
# Operations Hearth implements today are fuzzed hardest; every other operation must still get a clean
# AWS-style answer (e.g. 501 UnknownOperationException), never a 500.
OPERATIONS = sorted(MODEL.operation_names)


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(e, c):\n    return e\n")
    return buf.getvalue()


VALID_ZIP = _zip()
# Strings that reach deeper than random text: an existing function, its ARN, edge cases.
FZ_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fz"
INTERESTING = ["fz", FZ_ARN, f"{FZ_ARN}:$LATEST", "$LATEST", "1",
               "python3.11", "app.handler", ROLE, "", " ", "a" * 200, "fz:nope", "ünïcødé",
               "arn:aws:lambda:us-east-1:111111111111:function:other", "../../etc/passwd", "%00", "x" * 65]


def _string(shape: Shape) -> st.SearchStrategy[Any]:
    options: list[st.SearchStrategy[Any]] = [st.sampled_from(INTERESTING), st.text(max_size=30)]
    if shape.enum:
        options.append(st.sampled_from(list(shape.enum)))
        options.append(st.sampled_from(list(shape.enum)))
    return st.one_of(*options)


def _number(shape: Shape) -> st.SearchStrategy[Any]:
    low = shape.metadata.get("min", -5)
    high = shape.metadata.get("max", 10_000)
    return st.one_of(st.integers(min_value=int(low) - 2, max_value=int(low) + 2),
                     st.integers(min_value=int(low), max_value=min(int(high), 10**9)),
                     st.integers(min_value=int(min(high, 10**9)) - 1, max_value=int(min(high, 10**9)) + 2))


def strategy(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if kind == "string":
        return _string(shape)
    if kind in ("integer", "long"):
        return _number(shape)
    if kind in ("float", "double"):
        return st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1),
                            timezones=st.just(dt.UTC))
    if kind == "blob":
        return st.one_of(st.just(VALID_ZIP), st.binary(max_size=40), st.just(b'{"k": 1}'))
    if depth > 3:  # deep enough: empty containers
        return st.just({} if kind in ("structure", "map") else [])
    if kind == "list":
        return st.lists(strategy(shape.member, depth + 1), max_size=3)  # type: ignore[attr-defined]
    if kind == "map":
        return st.dictionaries(strategy(shape.key, depth + 1), strategy(shape.value, depth + 1),  # type: ignore[attr-defined]
                               max_size=3)
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        required = set(shape.required_members)  # type: ignore[attr-defined]
        fixed = {n: strategy(m, depth + 1) for n, m in members.items() if n in required}
        optional = {n: strategy(m, depth + 1) for n, m in members.items() if n not in required}
        # Mostly complete requests, sometimes one without its required members.
        return st.one_of(st.fixed_dictionaries(fixed, optional=optional),
                         st.fixed_dictionaries({}, optional={**fixed, **optional}))
    return st.nothing()


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


@pytest.fixture(scope="module")
def lambda_client() -> Iterator[Any]:
    data = Path(tempfile.mkdtemp(prefix="hearth-fuzz-"))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    cfg = Settings(data_dir=data, account_id=ACCOUNT)
    store = open_store(data)
    blobs = BlobStore(data)
    functions = FunctionService(cfg, store, blobs, runtime_check=lambda runtime: None)
    provider = LambdaProvider(cfg, store, functions, CodeUrlSigner.load(data))
    keys = KeyStore([AccessKey(KEY, SECRET, ACCOUNT)], AccessKey(KEY, SECRET, ACCOUNT))
    gateway = AwsGateway(cfg, keys, {"lambda": [provider]})
    client = botocore.session.get_session().create_client(
        "lambda", region_name="us-east-1", endpoint_url="http://hearth.test:4566", aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=False))
    statuses: list[int] = []

    def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        parts = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        elif hasattr(body, "read"):
            body = body.read()
        headers = [(k, v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()]
        headers.append(("host", parts.netloc))
        result = loop.run_until_complete(call_asgi(gateway, request.method, parts.path or "/", query=parts.query,
                                                   headers=headers, body=body))
        statuses.append(result.status)
        assert result.status != 500, (request.method, request.url, result.body[:500])
        return AWSResponse(request.url, result.status, result.headers, _Raw(result.body))

    client.meta.events.register("before-send", before_send)
    client.create_function(FunctionName="fz", Runtime="python3.11", Handler="app.handler", Role=ROLE,
                           Code={"ZipFile": VALID_ZIP})
    loop.run_until_complete(functions.wait_idle())
    yield client
    loop.run_until_complete(functions.close())
    store.close()
    loop.close()
    asyncio.set_event_loop(None)
    shutil.rmtree(data, ignore_errors=True)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_modeled_request_gets_a_parseable_answer(lambda_client: Any, data: st.DataObject) -> None:
    operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
    if operation in ("Invoke", "InvokeAsync", "InvokeWithResponseStream"):
        return  # no invoke path in this in-process harness (it has no environments)
    input_shape = MODEL.operation_model(operation).input_shape
    params = data.draw(strategy(input_shape), label="params") if input_shape is not None else {}
    method = getattr(lambda_client, botocore.xform_name(operation))
    try:
        response = method(**params)
    except ClientError as exc:
        error = exc.response["Error"]
        assert error.get("Code"), exc.response
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] < 500 or error["Code"] in (
            "ServiceException", "UnknownOperationException", "ResourceNotReadyException"), exc.response
        return
    except (ValueError, TypeError, KeyError) as exc:
        # botocore itself refused to serialize the generated value (e.g. a timestamp in a URI label)
        if "serializ" in str(exc).lower() or isinstance(exc, (TypeError, KeyError)):
            return
        raise
    assert 200 <= response["ResponseMetadata"]["HTTPStatusCode"] < 300
