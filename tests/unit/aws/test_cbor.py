"""The json protocol's CBOR variant (the Java SDK's default for Kinesis): requests decoded, answers and
errors encoded in CBOR, blobs as byte strings and timestamps as tag 1 around epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from tests.unit.aws.driver import ACCESS_KEY, ENDPOINT, SECRET_KEY, AsgiResult, EchoProvider, make_gateway, send_through

from hearth.aws.errors import AwsError
from hearth.aws.protocols import cbor


def _send(app: Any, operation: str, payload: dict[str, Any]) -> AsgiResult:
    request = AWSRequest("POST", f"{ENDPOINT}/", data=cbor.dumps(payload), headers={
        "content-type": cbor.CONTENT_TYPE, "x-amz-target": f"Kinesis_20131202.{operation}"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "kinesis", "us-east-1").add_auth(request)
    return send_through(app, request.prepare())


def test_codec_round_trip_and_kinesis_timestamps() -> None:
    value = {"a": [1, -2, 2**40, 1.5, True, None, "héllo"], "b": b"\x00\xff",
             "t": datetime(2024, 1, 2, 3, 4, 5, 678000, UTC)}
    assert cbor.loads(cbor.dumps(value)) == value
    assert cbor.dumps(datetime.fromtimestamp(1.5, UTC)) == b"\xc1\x19\x05\xdc"  # tag 1, 1500 ms
    # Indefinite-length strings and maps, as some encoders write them.
    assert cbor.loads(b"\xbf\x61k\x7f\x62ab\x61c\xff\xff") == {"k": "abc"}


def test_cbor_requests_are_answered_in_cbor(tmp_path: Path) -> None:
    arrival = datetime(2024, 1, 2, 3, 4, 5, 678000, UTC)
    echo = EchoProvider(results={
        "get_records": {"Records": [{"SequenceNumber": "1", "Data": b"hello", "PartitionKey": "k",
                                     "ApproximateArrivalTimestamp": arrival}], "MillisBehindLatest": 0},
        "describe_stream": AwsError("ResourceNotFoundException", "Stream s under account 1 not found.")})
    app = make_gateway(tmp_path, {"kinesis": [echo]})
    put = _send(app, "PutRecord", {"StreamName": "s", "Data": b"\x00bytes", "PartitionKey": "k"})
    assert put.status == 200 and put.headers["content-type"] == cbor.CONTENT_TYPE
    assert echo.calls[-1][1] == {"StreamName": "s", "Data": b"\x00bytes", "PartitionKey": "k"}
    got = cbor.loads(_send(app, "GetRecords", {"ShardIterator": "it"}).body)
    assert got["Records"][0]["Data"] == b"hello"
    assert got["Records"][0]["ApproximateArrivalTimestamp"] == arrival
    failed = _send(app, "DescribeStream", {"StreamName": "s"})
    assert failed.status == 400
    assert cbor.loads(failed.body) == {"__type": "ResourceNotFoundException",
                                       "message": "Stream s under account 1 not found."}
