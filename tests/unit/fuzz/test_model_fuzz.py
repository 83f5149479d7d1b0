"""Model-driven fuzz of every service Hearth serves: requests generated from botocore's input shapes.

One whole server is started in-process (`Hearth.start`, every component and every provider, process
isolation); Hypothesis builds parameters for every operation of every served service from its model
(in range and out of range, valid enums and junk, missing required members), botocore serializes and
signs them exactly as it would for AWS, and they go through the server's gateway. The properties: the
server never answers 500; botocore parses every answer — success into the modeled output, failure into
a modeled or framework error with a code and a message; and every operation a provider implements is
reached (some generated request passes the protocol layer's validation and calls the provider), so
the fuzz cannot silently stop at the front door.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import re
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
from botocore.exceptions import (
    ClientError,
    EndpointResolutionError,
    EventStreamError,
    InvalidEndpointConfigurationError,
    MissingDependencyException,
    ParamValidationError,
)
from botocore.model import Shape
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jmespath.exceptions import JMESPathError
from tests.unit.aws.driver import call_asgi

from hearth.config import Settings
from hearth.server import Hearth

KEY, SECRET, ACCOUNT = "AKIAHEARTHFUZZ000001", "hearth-fuzz-secret-000000000000000000000", "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/fuzz"
# The services the server answers (botocore's names); each one's every operation is fuzzed. An
# operation Hearth does not implement must still get a clean AWS-style answer, never a 500.
# DEEP services are also held to "every implemented operation is reached by some generated request";
# the services of this round (WIDE) are held, for now, to a clean answer for every generated request,
# with fewer examples each (there are ~1,000 of their operations; the suite's time is bounded).
DEEP = ("events", "kinesis", "lambda", "logs", "sns", "sqs")
WIDE = ("apigateway", "apigatewaymanagementapi", "apigatewayv2", "cloudformation", "dynamodb", "dynamodbstreams",
        "ec2", "ecr", "iam", "kms", "s3", "ssm", "sts")
SERVICES = tuple(sorted(DEEP + WIDE))
_SESSION = botocore.session.get_session()
MODELS = {name: _SESSION.get_service_model(name) for name in SERVICES}
# EC2's model has ~750 operations and Hearth serves its networking subset: those are fuzzed, with a
# few it does not serve (each must still get a clean answer, as in the other services).
SUBSETS = {"ec2": (
    "AuthorizeSecurityGroupEgress", "AuthorizeSecurityGroupIngress", "CreateSecurityGroup", "CreateSubnet",
    "CreateTags", "CreateVpc", "DeleteSecurityGroup", "DeleteSubnet", "DeleteTags", "DeleteVpc",
    "DescribeNetworkInterfaces", "DescribeSecurityGroups", "DescribeSubnets", "DescribeTags", "DescribeVpcs",
    "RevokeSecurityGroupEgress", "RevokeSecurityGroupIngress", "DescribeInstances", "RunInstances",
    "CreateNatGateway"),
    # KMS: the AWS managed keys' registry (three operations), and two it does not serve.
    "kms": ("DescribeKey", "ListAliases", "ListKeys", "CreateKey", "Encrypt")}
CASES = [(service, op) for service in SERVICES
         for op in sorted(SUBSETS.get(service) or MODELS[service].operation_names)]
EXAMPLES_PER_OPERATION = 6
EXAMPLES_TO_REACH = 60
EXAMPLES_WIDE = 2


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(e, c):\n    return e\n")
    return buf.getvalue()


VALID_ZIP = _zip()
# Strings that reach deeper than random text: an existing function, its ARN, edge cases.
FZ_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fz"
QUEUE_URL = f"http://hearth.test:4566/{ACCOUNT}/fz"
INTERESTING = ["fz", FZ_ARN, f"{FZ_ARN}:$LATEST", "$LATEST", "1",
               "python3.11", "app.handler", ROLE, "", " ", "a" * 200, "fz:nope", "ünïcødé",
               "arn:aws:lambda:us-east-1:111111111111:function:other", "../../etc/passwd", "%00", "x" * 65,
               # the other services' existing resources (created by the fixture)
               QUEUE_URL, f"arn:aws:sqs:us-east-1:{ACCOUNT}:fz", f"arn:aws:sns:us-east-1:{ACCOUNT}:fz",
               f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/fz", "default", "shardId-000000000000",
               f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default", "/fz", '{"source": ["fz"]}',
               "00000000-0000-4000-8000-000000000000"]


def _string(shape: Shape, valid: bool) -> st.SearchStrategy[Any]:
    """Any string (interesting ones, junk, the model's own), or with `valid` only what the model accepts
    where it says (its enum, its pattern), so that some requests reach past validation."""
    options: list[st.SearchStrategy[Any]] = []
    if shape.enum:
        options.append(st.sampled_from(list(shape.enum)))
    pattern = shape.metadata.get("pattern")
    if pattern and not shape.enum:
        try:
            re.compile(pattern)
        except re.error:  # a Java-only construct (\p{...}): the other options only
            pass
        else:
            high = shape.metadata.get("max", 10_000)
            options.append(st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) <= high))
    if valid and not options:  # the model says only how long: the interesting strings that fit
        low, high = shape.metadata.get("min", 0), shape.metadata.get("max", 10_000)
        options = [st.sampled_from([v for v in INTERESTING if low <= len(v) <= high] or INTERESTING)]
    if valid:
        return st.one_of(*options)
    return st.one_of(st.sampled_from(INTERESTING), st.text(max_size=30), *options)


def _number(shape: Shape) -> st.SearchStrategy[Any]:
    low = shape.metadata.get("min", -5)
    high = shape.metadata.get("max", 10_000)
    return st.one_of(st.integers(min_value=int(low) - 2, max_value=int(low) + 2),
                     st.integers(min_value=int(low), max_value=min(int(high), 10**9)),
                     st.integers(min_value=int(min(high, 10**9)) - 1, max_value=int(min(high, 10**9)) + 2))


def request(shape: Shape) -> st.SearchStrategy[Any]:
    """Half the requests hold to the model's enums and patterns throughout; half may break anything."""
    return st.one_of(strategy(shape, valid=True), strategy(shape, valid=False))


def strategy(shape: Shape, depth: int = 0, *, valid: bool = False) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if kind == "string":
        return _string(shape, valid)
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
        member = strategy(shape.member, depth + 1, valid=valid)  # type: ignore[attr-defined]
        low = min(int(shape.metadata.get("min", 0)), 3)
        return st.lists(member, min_size=low if valid else 0, max_size=3)
    if kind == "map":
        return st.dictionaries(strategy(shape.key, depth + 1, valid=valid),  # type: ignore[attr-defined]
                               strategy(shape.value, depth + 1, valid=valid),  # type: ignore[attr-defined]
                               max_size=3)
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        required = set(shape.required_members)  # type: ignore[attr-defined]
        fixed = {n: strategy(m, depth + 1, valid=valid) for n, m in members.items() if n in required}
        optional = {n: strategy(m, depth + 1, valid=valid) for n, m in members.items() if n not in required}
        complete = st.fixed_dictionaries(fixed, optional=optional)
        if valid:
            return complete
        # Mostly complete requests, sometimes one without its required members.
        return st.one_of(complete, st.fixed_dictionaries({}, optional={**fixed, **optional}))
    return st.nothing()



class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


class Server:
    """One whole Hearth started on a private event loop; a botocore client per service answered by it."""

    def __init__(self) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="hearth-fuzz-"))
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.hearth = Hearth(Settings(data_dir=self.data, account_id=ACCOUNT, isolation="process",
                                      access_key_id=KEY, secret_access_key=SECRET))
        self.loop.run_until_complete(self.hearth.start())
        gateway = self.hearth.gateway
        assert gateway is not None
        assert tuple(gateway.services) == SERVICES, "a new service: add it to SERVICES"
        find = gateway._method
        self.implemented = {case for case in CASES if find(*case) is not None}
        self.reached: set[tuple[str, str]] = set()

        def spy(service: str, operation: str) -> Any:
            # Called by the gateway only after a request passed parsing and validation.
            handler = find(service, operation)
            if handler is not None:
                self.reached.add((service, operation))
            return handler

        setattr(gateway, "_method", spy)  # noqa: B010 - a test's spy on the one dispatch point
        self.clients = {name: self._client(name) for name in SERVICES}

    def _client(self, service: str) -> Any:
        client = _SESSION.create_client(
            service, region_name="us-east-1", endpoint_url="http://hearth.test:4566", aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=False))
        client.meta.events.register("before-send", self._send)
        return client

    def _send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        parts = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        elif hasattr(body, "read"):
            body = body.read()
        headers = [(k, v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()]
        headers.append(("host", parts.netloc))
        gateway = self.hearth.gateway
        result = self.loop.run_until_complete(call_asgi(gateway, request.method, parts.path or "/",
                                                        query=parts.query, headers=headers, body=body))
        assert result.status != 500, (request.method, request.url, result.body[:500])
        return AWSResponse(request.url, result.status, result.headers, _Raw(result.body))

    def seed(self) -> None:
        """Resources the interesting strings name, so that requests reach past "not found"."""
        c = self.clients
        c["iam"].create_role(RoleName="fuzz", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]}))
        c["lambda"].create_function(FunctionName="fz", Runtime="python3.11", Handler="app.handler", Role=ROLE,
                                    Code={"ZipFile": VALID_ZIP})
        c["sqs"].create_queue(QueueName="fz")
        c["sns"].create_topic(Name="fz")
        c["kinesis"].create_stream(StreamName="fz", ShardCount=1)
        c["logs"].create_log_group(logGroupName="/fz")
        functions = self.hearth.functions
        assert functions is not None
        self.loop.run_until_complete(functions.wait_idle())

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.hearth.stop())
        finally:
            self.loop.close()
            asyncio.set_event_loop(None)
            shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server()
    try:
        s.seed()
        yield s
    finally:
        s.close()


def _tame(service: str, operation: str, params: Any) -> Any:
    """Keep each call short: no SQS long poll (its wait is bounded by the model, but 20 s per example
    would make the fuzz slow, not stronger)."""
    if isinstance(params, dict) and service == "sqs" and "WaitTimeSeconds" in params:
        params["WaitTimeSeconds"] = 0
    return params


def call(server: Server, service: str, operation: str, params: dict[str, Any]) -> None:
    method = getattr(server.clients[service], botocore.xform_name(operation))
    try:
        response = method(**params)
    except ClientError as exc:
        error = exc.response["Error"]
        assert error.get("Code"), exc.response
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] < 500 or error["Code"] in (
            "ServiceException", "UnknownOperationException", "ResourceNotReadyException",
            "InternalFailure", "NotImplemented"), exc.response  # NotImplemented: S3's own 501
        return
    except (MissingDependencyException, EndpointResolutionError, InvalidEndpointConfigurationError,
            UnicodeEncodeError, ParamValidationError, JMESPathError):
        return  # botocore refused before sending (its CRT signer; a bad endpoint id; a non-latin-1 header;
        #         its own checks and endpoint rules)
    except (ValueError, TypeError, KeyError) as exc:
        # botocore itself refused to serialize the generated value (e.g. a timestamp in a URI label)
        if "serializ" in str(exc).lower() or isinstance(exc, (TypeError, KeyError)):
            return
        raise
    except EventStreamError:
        return  # an event-stream answer's error frame: parsed, with its code
    status = response["ResponseMetadata"]["HTTPStatusCode"]
    assert 200 <= status < 300
    stream = response.get("EventStream") or response.get("responseStream")
    if stream is not None and hasattr(stream, "close"):
        stream.close()


@pytest.mark.parametrize(("service", "operation"), CASES, ids=[f"{s}.{o}" for s, o in CASES])
def test_any_modeled_request_gets_a_parseable_answer(server: Server, service: str, operation: str) -> None:
    input_shape = MODELS[service].operation_model(operation).input_shape
    case = (service, operation)
    # A few examples for every operation; more, only for an implemented one none of them reached.
    rounds = (EXAMPLES_PER_OPERATION, EXAMPLES_TO_REACH) if service in DEEP else (EXAMPLES_WIDE,)
    for examples in rounds:
        # Derandomized: the same examples every run, so "reached" is a stable property of the code. No
        # shrinking: a failing example is reported as generated (shrinking hundreds of cases is slow).
        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
        @given(data=st.data())
        def fuzz(data: st.DataObject) -> None:
            params = data.draw(request(input_shape), label="params") if input_shape is not None else {}
            call(server, service, operation, _tame(service, operation, params))

        fuzz()
        if case not in server.implemented or case in server.reached or service in WIDE:
            return
    pytest.fail(f"no generated {service}.{operation} request got past the protocol layer to its provider")
