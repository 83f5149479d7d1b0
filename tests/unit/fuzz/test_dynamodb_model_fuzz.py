"""Model-driven fuzz of the DynamoDB and DynamoDB Streams APIs: requests generated from botocore's input
shapes (the Lambda fuzz's strategies) against a table that exists, through the real gateway, providers
and store. The properties: never a 500, and botocore parses every answer."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jmespath.exceptions import JMESPathError
from tests.unit.aws.driver import call_asgi
from tests.unit.fuzz.test_model_fuzz import _Raw, strategy

from hearth.aws.gateway import AwsGateway
from hearth.aws.keys import AccessKey, KeyStore
from hearth.config import Settings
from hearth.services.dynamodb.items_api import ItemsProvider
from hearth.services.dynamodb.partiql import PartiqlProvider
from hearth.services.dynamodb.reads_api import ReadsProvider
from hearth.services.dynamodb.store import TableStore
from hearth.services.dynamodb.streams_api import StreamsProvider
from hearth.services.dynamodb.tables_api import TablesProvider

KEY, SECRET, ACCOUNT = "AKIAHEARTHFUZZ000001", "hearth-fuzz-secret-000000000000000000000", "000000000000"
SESSION = botocore.session.get_session()
MODELS = {name: SESSION.get_service_model(name) for name in ("dynamodb", "dynamodbstreams")}
OPERATIONS = [(s, op) for s, m in MODELS.items() for op in sorted(m.operation_names)]


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, Any]]:
    data = Path(tempfile.mkdtemp(prefix="hearth-ddb-fuzz-"))
    loop = asyncio.new_event_loop()
    store = TableStore(data)
    keys = KeyStore([AccessKey(KEY, SECRET, ACCOUNT)], AccessKey(KEY, SECRET, ACCOUNT))
    gateway = AwsGateway(Settings(data_dir=data, account_id=ACCOUNT), keys, {  # type: ignore[call-arg]
        "dynamodb": [TablesProvider(store, lambda a, r, s: f"arn:aws:kms:{r}:{a}:key/managed-{s}"),
                     ItemsProvider(store), ReadsProvider(store), PartiqlProvider(store)],
        "dynamodbstreams": [StreamsProvider(store)]})

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
        assert result.status != 500, (request.headers.get("X-Amz-Target"), body[:300], result.body[:500])
        return AWSResponse(request.url, result.status, result.headers, _Raw(result.body))

    out = {}
    for name in MODELS:
        client = SESSION.create_client(name, region_name="us-east-1", endpoint_url="http://hearth.test:4566",
                                       aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                                       config=Config(retries={"max_attempts": 1}, parameter_validation=False))
        client.meta.events.register("before-send", before_send)
        out[name] = client
    yield out
    store.close()
    loop.close()
    shutil.rmtree(data, ignore_errors=True)


def _ensure_table(ddb: Any) -> None:
    """The table the generated requests name ("fz", a key named "1"): a DeleteTable may have dropped it."""
    try:
        ddb.create_table(
            TableName="fz", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "fz", "KeyType": "HASH"}, {"AttributeName": "1", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "fz", "AttributeType": "S"},
                                  {"AttributeName": "1", "AttributeType": "N"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        ddb.put_item(TableName="fz", Item={"fz": {"S": "fz"}, "1": {"N": "1"}})
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ResourceInUseException"


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_modeled_request_gets_a_parseable_answer(clients: dict[str, Any], data: st.DataObject) -> None:
    _ensure_table(clients["dynamodb"])
    service, operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
    input_shape = MODELS[service].operation_model(operation).input_shape
    params = data.draw(strategy(input_shape), label="params") if input_shape is not None else {}
    method = getattr(clients[service], botocore.xform_name(operation))
    try:
        response = method(**params)
    except ClientError as exc:
        error = exc.response["Error"]
        assert error.get("Code"), exc.response
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] < 500 or error["Code"] in (
            "UnknownOperationException",), exc.response
        return
    except JMESPathError:
        return  # botocore's endpoint rules could not read the generated parameters (client side)
    except (ValueError, TypeError, KeyError) as exc:
        if "serializ" in str(exc).lower() or isinstance(exc, (TypeError, KeyError)):
            return
        raise
    assert 200 <= response["ResponseMetadata"]["HTTPStatusCode"] < 300


@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb"])
def test_lone_surrogates_are_refused_not_crashed(clients: dict[str, Any], bad: str) -> None:
    ddb = clients["dynamodb"]
    _ensure_table(ddb)
    for call in (lambda: ddb.put_item(TableName="fz", Item={"fz": {"S": bad}, "1": {"N": "1"}}),
                 lambda: ddb.put_item(TableName="fz", Item={"fz": {"S": "x"}, "1": {"N": "1"}, bad: {"S": bad}}),
                 lambda: ddb.get_item(TableName="fz", Key={"fz": {"S": "fz"}, "1": {"N": "1"}},
                                      ProjectionExpression=bad),
                 lambda: ddb.execute_statement(Statement=f"SELECT * FROM fz WHERE fz = '{bad}'")):
        with pytest.raises(ClientError) as info:
            call()
        assert info.value.response["Error"]["Code"] in ("ValidationException", "SerializationException")
