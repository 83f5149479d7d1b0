"""Connections and API destinations, and the request checks AWS words its own way, through a botocore
client answered in-process by the gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.unit.aws.driver import ACCOUNT, gateway_client, make_gateway

from hearth.events.delivery import DeliveryRouter
from hearth.services.events.component import EventBridge


@pytest.fixture
def events(tmp_path: Path) -> Iterator[Any]:
    eb = EventBridge(tmp_path / "eb", DeliveryRouter())
    yield gateway_client(make_gateway(tmp_path, {"events": [eb.provider]}), "events")
    eb.store.close()


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_connection_lifecycle_hides_its_secrets(events: Any) -> None:
    created = events.create_connection(Name="c1", AuthorizationType="API_KEY", AuthParameters={
        "ApiKeyAuthParameters": {"ApiKeyName": "Key", "ApiKeyValue": "s3cret"}, "InvocationHttpParameters": {}})
    arn = created["ConnectionArn"]
    assert arn.startswith(f"arn:aws:events:us-east-1:{ACCOUNT}:connection/c1/")
    assert created["ConnectionState"] == "AUTHORIZED" and "LastAuthorizedTime" not in created
    described = events.describe_connection(Name="c1")
    assert described["AuthParameters"] == {"ApiKeyAuthParameters": {"ApiKeyName": "Key"},
                                           "InvocationHttpParameters": {}}
    assert described["SecretArn"].startswith(
        f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:events!connection/c1/")
    assert "s3cret" not in json.dumps(described, default=str)
    events.update_connection(Name="c1", AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "Other"}})
    assert events.describe_connection(Name="c1")["AuthParameters"]["ApiKeyAuthParameters"] == {"ApiKeyName": "Other"}
    assert [c["Name"] for c in events.list_connections(NamePrefix="c")["Connections"]] == ["c1"]
    assert events.delete_connection(Name="c1")["ConnectionState"] == "DELETING"
    with pytest.raises(ClientError) as info:
        events.describe_connection(Name="c1")
    assert _error(info) == ("ResourceNotFoundException",
                            "Failed to describe the connection(s). Connection 'c1' does not exist.")


def test_api_destination_is_active_while_its_connection_is_authorized(events: Any) -> None:
    basic = events.create_connection(Name="basic", AuthorizationType="BASIC", AuthParameters={
        "BasicAuthParameters": {"Username": "u", "Password": "p"}})["ConnectionArn"]
    # AWS takes an OAuth method in any case; without a token the connection stays AUTHORIZING.
    oauth = events.create_connection(Name="oauth", AuthorizationType="OAUTH_CLIENT_CREDENTIALS", AuthParameters={
        "OAuthParameters": {"AuthorizationEndpoint": "https://example.com/token", "HttpMethod": "put",
                            "ClientParameters": {"ClientID": "id", "ClientSecret": "secret"}}})
    assert oauth["ConnectionState"] == "AUTHORIZING"
    made = events.create_api_destination(Name="d", ConnectionArn=basic, HttpMethod="POST",
                                         InvocationEndpoint="https://example.com/api")
    assert made["ApiDestinationState"] == "ACTIVE"
    described = events.describe_api_destination(Name="d")
    assert (described["InvocationRateLimitPerSecond"], described["ConnectionArn"]) == (300, basic)
    updated = events.update_api_destination(Name="d", ConnectionArn=oauth["ConnectionArn"], HttpMethod="PUT")
    assert updated["ApiDestinationState"] == "INACTIVE"
    assert events.list_api_destinations(NamePrefix="d")["ApiDestinations"][0]["HttpMethod"] == "PUT"
    events.delete_api_destination(Name="d")
    with pytest.raises(ClientError) as info:
        events.describe_api_destination(Name="d")
    assert _error(info) == ("ResourceNotFoundException",
                            "Failed to describe the api-destination(s). An api-destination 'd' does not exist.")


def test_validation_texts_as_aws_words_them(events: Any) -> None:
    with pytest.raises(ClientError) as info:
        events.create_connection(Name="x" * 65 + " !", AuthorizationType="BASIC", AuthParameters={
            "BasicAuthParameters": {"Username": "u", "Password": "p"}})
    # The name's pattern before its length (recorded by AWS).
    assert _error(info)[1].index("regular expression pattern") < _error(info)[1].index("length less than")
    with pytest.raises(ClientError) as info:
        events.create_api_destination(Name="d", ConnectionArn="not-an-arn", HttpMethod="FETCH",
                                      InvocationEndpoint="https://example.com")
    assert _error(info)[1].endswith("enum value set: [HEAD, POST, PATCH, DELETE, PUT, GET, OPTIONS]")
    entry = {"Source": "s", "DetailType": "t", "Detail": "{}"}
    with pytest.raises(ClientError) as info:
        events.put_events(Entries=[entry] * 11)
    assert _error(info)[1].startswith(
        "1 validation error detected: Value '[PutEventsRequestEntry(time=null, source=s, resources=null, "
        "detailType=t, detail={}, eventBusName=null, traceHeader=null, kmsKeyIdentifier=null, "
        "internalMetadata=null), ")
