"""The S3 pieces that need no server: aws-chunked decoding and its signatures, checksums, ETags,
rest-xml parsing and rendering, Host addressing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from typing import Any

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from hearth.aws.body_stream import EMPTY_SHA256, BodyStream, ChunkSigning
from hearth.aws.errors import AwsError
from hearth.aws.models import service_api
from hearth.aws.protocols import rest_xml
from hearth.aws.protocols.common import HttpRequest
from hearth.aws.s3_front import host_bucket
from hearth.services.s3.checksums import BodyDigests, multipart_etag


def _receiver(data: bytes, size: int = 7) -> Any:
    pieces = [data[i:i + size] for i in range(0, len(data), size)] or [b""]

    async def receive() -> dict[str, Any]:
        piece = pieces.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    return receive


async def _collect(stream: BodyStream) -> bytes:
    return b"".join([c async for c in stream])


def test_unsigned_trailer_form_from_botocore() -> None:
    import io

    payload = b"hello chunked world" * 50
    wrapped = AwsChunkedWrapper(io.BytesIO(payload), checksum_cls=Crc32Checksum,
                                checksum_name="x-amz-checksum-crc32", chunk_size=100).read()
    stream = BodyStream(_receiver(wrapped), content_sha256=None, chunked=True, decoded_length=len(payload))
    assert asyncio.run(_collect(stream)) == payload
    digests = BodyDigests({"CRC32"})
    digests.update(payload)
    assert stream.trailers["x-amz-checksum-crc32"] == digests.checksums()["CRC32"]


def _signed_chunks(chunks: list[bytes], key: bytes, seed: str, scope: str, date: str) -> bytes:
    out, previous = b"", seed
    for chunk in [*chunks, b""]:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", date, scope, previous, EMPTY_SHA256,
                         hashlib.sha256(chunk).hexdigest()])
        previous = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk + b"\r\n"
    return out


def test_signed_chunks_verify_and_a_tampered_chunk_fails() -> None:
    key, seed, scope, date = b"k" * 32, "a" * 64, "20260101/us-east-1/s3/aws4_request", "20260101T000000Z"
    body = _signed_chunks([b"x" * 64, b"y" * 10], key, seed, scope, date)
    signing = ChunkSigning(key, date, scope, seed)
    stream = BodyStream(_receiver(body), content_sha256=None, chunked=True, decoded_length=74, signing=signing)
    assert asyncio.run(_collect(stream)) == b"x" * 64 + b"y" * 10
    tampered = body.replace(b"y" * 10, b"z" * 10)
    bad = BodyStream(_receiver(tampered), content_sha256=None, chunked=True, decoded_length=74, signing=signing)
    with pytest.raises(AwsError) as exc:
        asyncio.run(_collect(bad))
    assert exc.value.code == "SignatureDoesNotMatch"


def test_plain_body_checks_the_declared_sha256() -> None:
    good = BodyStream(_receiver(b"abc"), content_sha256=hashlib.sha256(b"abc").hexdigest(), chunked=False,
                      decoded_length=None)
    assert asyncio.run(_collect(good)) == b"abc"
    bad = BodyStream(_receiver(b"abd"), content_sha256=hashlib.sha256(b"abc").hexdigest(), chunked=False,
                     decoded_length=None)
    with pytest.raises(AwsError) as exc:
        asyncio.run(_collect(bad))
    assert exc.value.code == "XAmzContentSHA256Mismatch"


def test_checksums_and_multipart_etag() -> None:
    digests = BodyDigests({"CRC32C", "SHA256"})
    digests.update(b"123456789")
    assert base64.b64decode(digests.checksums()["CRC32C"]) == (0xE3069283).to_bytes(4, "big")
    parts = [b"a" * 10, b"b" * 3]
    expected = hashlib.md5(hashlib.md5(parts[0]).digest() + hashlib.md5(parts[1]).digest()).hexdigest()
    assert multipart_etag([hashlib.md5(p).digest() for p in parts]) == f'"{expected}-2"'


def test_rest_xml_parses_headers_metadata_and_xml_payloads() -> None:
    api = service_api("s3")
    assert api is not None
    put = api.operations["PutObject"]
    req = HttpRequest("PUT", "/b/k", "", {}, {"content-type": "text/plain", "x-amz-meta-color": "blue"}, b"")
    params = rest_xml.parse_request(put, req, {"Bucket": "b", "Key": "a/b c"})
    assert params["Key"] == "a/b c" and params["Metadata"] == {"color": "blue"}
    assert params["ContentType"] == "text/plain"
    delete = api.operations["DeleteObjects"]
    body = (b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a</Key></Object>'
            b"<Object><Key>b</Key><VersionId>v</VersionId></Object><Quiet>true</Quiet></Delete>")
    params = rest_xml.parse_request(delete, HttpRequest("POST", "/b", "delete", {"delete": [""]}, {}, body),
                                    {"Bucket": "b"})
    assert params["Delete"] == {"Objects": [{"Key": "a"}, {"Key": "b", "VersionId": "v"}], "Quiet": True}


def test_rest_xml_renders_what_botocore_parses() -> None:
    from botocore.parsers import RestXMLParser

    api = service_api("s3")
    assert api is not None
    op = api.operations["ListObjectsV2"]
    response = rest_xml.render(op, {"Name": "b", "KeyCount": 1, "IsTruncated": False,
                                    "Contents": [{"Key": "k&<", "Size": 3, "ETag": '"e"'}],
                                    "CommonPrefixes": [{"Prefix": "p/"}]}, "rid")
    assert isinstance(response.body, bytes)
    parsed = RestXMLParser().parse({"status_code": 200, "headers": response.headers, "body": response.body},
                                   op.output_shape)
    assert parsed["Contents"][0]["Key"] == "k&<" and parsed["CommonPrefixes"] == [{"Prefix": "p/"}]
    error = rest_xml.render_error(AwsError("NoSuchKey", "The specified key does not exist.", 404,
                                           fields={"Key": "k"}), "rid")
    assert isinstance(error.body, bytes) and b"<Code>NoSuchKey</Code>" in error.body
    assert b"<RequestId>rid</RequestId>" in error.body


@pytest.mark.parametrize(("host", "bucket"), [
    ("my-bucket.s3.localhost:4566", "my-bucket"), ("my.bucket.s3.us-east-1.amazonaws.com", "my.bucket"),
    ("s3.us-west-2.amazonaws.com", ""), ("s3.amazonaws.com", ""), ("127.0.0.1:4566", None),
    ("abc.lambda-url.us-east-1.localhost", None),
])
def test_host_addressing(host: str, bucket: str | None) -> None:
    assert host_bucket(host) == bucket
