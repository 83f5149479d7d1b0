"""S3 through boto3 and the AWS CLI against one server: buckets, objects, listings, multipart,
presigned URLs, errors, notifications to functions and queues, and the thumbnail flow."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.harness import (
    ACCESS_KEY,
    ACCOUNT,
    LAMBDA_TRUST,
    OTHER_ACCESS_KEY,
    OTHER_ACCOUNT,
    OTHER_SECRET_KEY,
    SECRET_KEY,
    HearthServer,
    create_function,
)

MiB = 1024 * 1024


def s3_client(server: HearthServer, *, account: str = ACCOUNT, **config: Any) -> Any:
    key, secret = (ACCESS_KEY, SECRET_KEY) if account == ACCOUNT else (OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    config.setdefault("s3", {"addressing_style": "path"})
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}, **config))


@pytest.fixture(scope="module")
def s3(server: HearthServer) -> Any:
    return s3_client(server)


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_lifecycle_and_errors(s3: Any) -> None:
    s3.create_bucket(Bucket="life-bucket")
    assert "life-bucket" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket="life-bucket")
    assert s3.get_bucket_location(Bucket="life-bucket")["LocationConstraint"] is None
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="Bad_Name")
    assert _code(exc) == ("InvalidBucketName", 400)
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="x-bucket", CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert _code(exc) == ("InvalidLocationConstraint", 400)
    s3.put_object(Bucket="life-bucket", Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket="life-bucket")
    assert _code(exc) == ("BucketNotEmpty", 409)
    assert exc.value.response["Error"]["Message"] == "The bucket you tried to delete is not empty"
    s3.delete_object(Bucket="life-bucket", Key="k")
    s3.delete_bucket(Bucket="life-bucket")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="life-bucket")
    assert _code(exc) == ("404", 404)
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket="life-bucket")
    assert _code(exc) == ("NoSuchBucket", 404)
    assert exc.value.response["Error"]["Message"] == "The specified bucket does not exist"


def test_bucket_configuration(s3: Any) -> None:
    s3.create_bucket(Bucket="conf-bucket")
    s3.put_bucket_tagging(Bucket="conf-bucket", Tagging={"TagSet": [{"Key": "team", "Value": "a"}]})
    assert s3.get_bucket_tagging(Bucket="conf-bucket")["TagSet"] == [{"Key": "team", "Value": "a"}]
    assert "Status" not in s3.get_bucket_versioning(Bucket="conf-bucket")
    enc = s3.get_bucket_encryption(Bucket="conf-bucket")["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                      "Resource": "arn:aws:s3:::conf-bucket/public/*"}]}
    s3.put_bucket_policy(Bucket="conf-bucket", Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket="conf-bucket")["Policy"]) == policy
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_cors(Bucket="conf-bucket")
    assert _code(exc) == ("NoSuchCORSConfiguration", 404)


def test_object_round_trip_metadata_ranges_conditions(s3: Any) -> None:
    s3.create_bucket(Bucket="obj-bucket")
    body = b"hello world, " * 100
    put = s3.put_object(Bucket="obj-bucket", Key="dir/ünï cødé %..//x.txt", Body=body, ContentType="text/plain",
                        Metadata={"color": "blue"}, Tagging="a=1&b=2")
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket="obj-bucket", Key="dir/ünï cødé %..//x.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain" and got["Metadata"] == {"color": "blue"}
    assert got["ContentLength"] == len(body) and got["TagCount"] == 2
    head = s3.head_object(Bucket="obj-bucket", Key="dir/ünï cødé %..//x.txt")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    part = s3.get_object(Bucket="obj-bucket", Key="dir/ünï cødé %..//x.txt", Range="bytes=6-10")
    assert part["Body"].read() == b"world" and part["ContentRange"] == f"bytes 6-10/{len(body)}"
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="obj-bucket", Key="dir/ünï cødé %..//x.txt", Range=f"bytes={len(body)}-")
    assert _code(exc) == ("InvalidRange", 416)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="obj-bucket", Key="dir/ünï cødé %..//x.txt", IfMatch='"nope"')
    assert _code(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="obj-bucket", Key="dir/ünï cødé %..//x.txt", IfNoneMatch=put["ETag"])
    assert _code(exc)[1] == 304
    over = s3.get_object(Bucket="obj-bucket", Key="dir/ünï cødé %..//x.txt", ResponseContentType="image/png",
                         ResponseContentDisposition="attachment")
    assert over["ContentType"] == "image/png" and over["ContentDisposition"] == "attachment"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="obj-bucket", Key="dir/ünï cødé %..//x.txt", Body=b"again", IfNoneMatch="*")
    assert _code(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="obj-bucket", Key="missing")
    assert _code(exc) == ("NoSuchKey", 404)
    assert exc.value.response["Error"]["Message"] == "The specified key does not exist."
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="obj-bucket", Key="k" * 1025, Body=b"")
    assert _code(exc) == ("KeyTooLongError", 400)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="obj-bucket", Key="md5", Body=b"abc",
                      ContentMD5=base64.b64encode(hashlib.md5(b"abd").digest()).decode())
    assert _code(exc) == ("BadDigest", 400)
    assert s3.get_object_tagging(Bucket="obj-bucket", Key="dir/ünï cødé %..//x.txt")["TagSet"] == [
        {"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]


def test_checksums_match_botocore(s3: Any) -> None:
    s3.create_bucket(Bucket="sum-bucket")
    for algorithm in ("CRC32", "SHA1", "SHA256"):  # (botocore needs awscrt for CRC32C: unit-tested)
        put = s3.put_object(Bucket="sum-bucket", Key=algorithm, Body=b"checksum me", ChecksumAlgorithm=algorithm)
        got = s3.get_object(Bucket="sum-bucket", Key=algorithm, ChecksumMode="ENABLED")
        assert got["Body"].read() == b"checksum me"
        assert got[f"Checksum{algorithm}"] == put[f"Checksum{algorithm}"]


def test_copy_delete_objects_and_listing(s3: Any) -> None:
    s3.create_bucket(Bucket="list-bucket")
    keys = ["a/1", "a/2", "a/b/3", "b/4", "c", "d e+f"]
    for key in keys:
        s3.put_object(Bucket="list-bucket", Key=key, Body=key.encode(), Metadata={"src": "yes"})
    s3.copy_object(Bucket="list-bucket", Key="copy", CopySource={"Bucket": "list-bucket", "Key": "c"})
    assert s3.get_object(Bucket="list-bucket", Key="copy")["Metadata"] == {"src": "yes"}
    s3.copy_object(Bucket="list-bucket", Key="copy", CopySource="list-bucket/c", MetadataDirective="REPLACE",
                   Metadata={"new": "1"})
    assert s3.head_object(Bucket="list-bucket", Key="copy")["Metadata"] == {"new": "1"}
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket="list-bucket", Key="c", CopySource="list-bucket/c")
    assert _code(exc) == ("InvalidRequest", 400)
    listing = s3.list_objects_v2(Bucket="list-bucket", Delimiter="/")
    assert [p["Prefix"] for p in listing["CommonPrefixes"]] == ["a/", "b/"]
    assert [o["Key"] for o in listing["Contents"]] == ["c", "copy", "d e+f"]
    seen: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="list-bucket", PaginationConfig={"PageSize": 2}):
        seen += [o["Key"] for o in page.get("Contents", [])]
    assert seen == sorted([*keys, "copy"])
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="list-bucket", StartAfter="b/4")["Contents"]] == [
        "c", "copy", "d e+f"]
    assert [o["Key"] for o in s3.list_objects(Bucket="list-bucket", Prefix="a/")["Contents"]] == ["a/1", "a/2", "a/b/3"]
    encoded = s3.list_objects_v2(Bucket="list-bucket", Prefix="d", EncodingType="url")
    assert [o["Key"] for o in encoded["Contents"]] == ["d+e%2Bf"]  # asked for by the caller: left encoded
    result = s3.delete_objects(Bucket="list-bucket", Delete={"Objects": [{"Key": k} for k in [*keys, "copy"]]})
    assert len(result["Deleted"]) == len(keys) + 1
    assert s3.list_objects_v2(Bucket="list-bucket")["KeyCount"] == 0


def test_versioning_and_delete_markers(s3: Any) -> None:
    s3.create_bucket(Bucket="ver-bucket")
    s3.put_bucket_versioning(Bucket="ver-bucket", VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="ver-bucket", Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket="ver-bucket", Key="k", Body=b"two")["VersionId"]
    assert v1 != v2
    assert s3.get_object(Bucket="ver-bucket", Key="k", VersionId=v1)["Body"].read() == b"one"
    deleted = s3.delete_object(Bucket="ver-bucket", Key="k")
    assert deleted["DeleteMarker"] is True
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="ver-bucket", Key="k")
    assert _code(exc) == ("NoSuchKey", 404)
    versions = s3.list_object_versions(Bucket="ver-bucket")
    assert {v["VersionId"] for v in versions["Versions"]} == {v1, v2}
    assert versions["DeleteMarkers"][0]["IsLatest"] is True
    s3.delete_object(Bucket="ver-bucket", Key="k", VersionId=deleted["VersionId"])
    assert s3.get_object(Bucket="ver-bucket", Key="k")["Body"].read() == b"two"


def test_multipart_upload_etag_equals_botocore(s3: Any, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="mp-bucket")
    parts_data = [b"a" * (5 * MiB), b"b" * (5 * MiB), b"tail"]
    upload = s3.create_multipart_upload(Bucket="mp-bucket", Key="big")["UploadId"]
    etags = []
    for number, data in enumerate(parts_data, start=1):
        etags.append(s3.upload_part(Bucket="mp-bucket", Key="big", UploadId=upload, PartNumber=number,
                                    Body=data)["ETag"])
    listed = s3.list_parts(Bucket="mp-bucket", Key="big", UploadId=upload)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1, 2, 3]
    assert s3.list_multipart_uploads(Bucket="mp-bucket")["Uploads"][0]["UploadId"] == upload
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket="mp-bucket", Key="big", UploadId=upload, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]})
    assert _code(exc) == ("InvalidPart", 400)
    done = s3.complete_multipart_upload(Bucket="mp-bucket", Key="big", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
    expected = hashlib.md5(b"".join(hashlib.md5(d).digest() for d in parts_data)).hexdigest() + "-3"
    assert done["ETag"] == f'"{expected}"'
    got = s3.get_object(Bucket="mp-bucket", Key="big", Range=f"bytes={5 * MiB - 2}-{5 * MiB + 1}")
    assert got["Body"].read() == b"aabb"
    assert s3.head_object(Bucket="mp-bucket", Key="big", PartNumber=3)["ContentLength"] == 4
    # Small parts: EntityTooSmall; aborted uploads are gone.
    small = s3.create_multipart_upload(Bucket="mp-bucket", Key="small")["UploadId"]
    e1 = s3.upload_part(Bucket="mp-bucket", Key="small", UploadId=small, PartNumber=1, Body=b"x")["ETag"]
    e2 = s3.upload_part_copy(Bucket="mp-bucket", Key="small", UploadId=small, PartNumber=2,
                             CopySource="mp-bucket/big", CopySourceRange="bytes=0-9")["CopyPartResult"]["ETag"]
    assert e2 == f'"{hashlib.md5(b"a" * 10).hexdigest()}"'
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket="mp-bucket", Key="small", UploadId=small, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert _code(exc) == ("EntityTooSmall", 400)
    s3.abort_multipart_upload(Bucket="mp-bucket", Key="small", UploadId=small)
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket="mp-bucket", Key="small", UploadId=small)
    assert _code(exc) == ("NoSuchUpload", 404)
    # The transfer manager (upload_file) agrees on the ETag it would compute itself.
    path = tmp_path / "file.bin"
    path.write_bytes(b"z" * (12 * MiB))
    from boto3.s3.transfer import TransferConfig

    s3.upload_file(str(path), "mp-bucket", "managed", Config=TransferConfig(multipart_threshold=5 * MiB,
                                                                            multipart_chunksize=5 * MiB))
    chunks = [b"z" * (5 * MiB), b"z" * (5 * MiB), b"z" * (2 * MiB)]
    assert s3.head_object(Bucket="mp-bucket", Key="managed")["ETag"] == (
        f'"{hashlib.md5(b"".join(hashlib.md5(c).digest() for c in chunks)).hexdigest()}-3"')
    out = tmp_path / "back.bin"
    s3.download_file("mp-bucket", "managed", str(out))
    assert out.read_bytes() == path.read_bytes()


def test_addressing_styles_and_presigned_urls(server: HearthServer, s3: Any) -> None:
    s3.create_bucket(Bucket="addr-bucket")
    s3.put_object(Bucket="addr-bucket", Key="p/q.txt", Body=b"hosted")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "addr-bucket", "Key": "p/q.txt"}, ExpiresIn=60)
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"hosted"
    req = urllib.request.Request(url.replace("p/q.txt", "p/other.txt"))
    with pytest.raises(urllib.error.HTTPError) as http_err:
        urllib.request.urlopen(req)
    assert http_err.value.code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in http_err.value.read()
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "addr-bucket", "Key": "up"}, ExpiresIn=60)
    with urllib.request.urlopen(urllib.request.Request(put_url, data=b"via url", method="PUT",
                                                       headers={"Content-Type": ""})) as resp:
        assert resp.status == 200
    assert s3.get_object(Bucket="addr-bucket", Key="up")["Body"].read() == b"via url"
    v4 = s3_client(server, signature_version="s3v4")
    v4_put = v4.generate_presigned_url("put_object", Params={"Bucket": "addr-bucket", "Key": "v4 ünï"}, ExpiresIn=60)
    assert "X-Amz-Signature=" in v4_put
    with urllib.request.urlopen(urllib.request.Request(v4_put, data=b"v4 body", method="PUT")) as resp:
        assert resp.status == 200
    v4_get = v4.generate_presigned_url("get_object", Params={"Bucket": "addr-bucket", "Key": "v4 ünï"}, ExpiresIn=60)
    with urllib.request.urlopen(v4_get) as resp:
        assert resp.read() == b"v4 body"
    v2 = s3_client(server, signature_version="s3")
    v2_url = v2.generate_presigned_url("get_object", Params={"Bucket": "addr-bucket", "Key": "up"}, ExpiresIn=60)
    assert "AWSAccessKeyId=" in v2_url
    with urllib.request.urlopen(v2_url) as resp:
        assert resp.read() == b"via url"
    # Host-based addressing: virtual-hosted <bucket>.s3.localhost and <bucket>.s3.<region>.amazonaws.com.
    for host in (f"addr-bucket.s3.localhost:{server.port}", "addr-bucket.s3.us-east-1.amazonaws.com"):
        signed = _signed_get(server, host, "/p/q.txt")
        with urllib.request.urlopen(signed) as resp:
            assert resp.read() == b"hosted"
    with urllib.request.urlopen(_signed_get(server, "s3.us-east-1.amazonaws.com", "/addr-bucket/p/q.txt")) as resp:
        assert resp.read() == b"hosted"


def _signed_get(server: HearthServer, host: str, path: str) -> urllib.request.Request:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=f"http://{host}{path}", headers={"Host": host})
    request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    return urllib.request.Request(f"{server.endpoint}{path}", headers=dict(request.headers.items()))


def test_other_accounts_and_anonymous_follow_the_bucket_policy(server: HearthServer, s3: Any) -> None:
    s3.create_bucket(Bucket="pol-bucket")
    s3.put_object(Bucket="pol-bucket", Key="public/a", Body=b"open")
    s3.put_object(Bucket="pol-bucket", Key="private/b", Body=b"closed")
    other = s3_client(server, account=OTHER_ACCOUNT)
    with pytest.raises(ClientError) as exc:
        other.get_object(Bucket="pol-bucket", Key="public/a")
    assert _code(exc) == ("AccessDenied", 403)
    s3.put_bucket_policy(Bucket="pol-bucket", Policy=json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::pol-bucket/public/*"}]}))
    assert other.get_object(Bucket="pol-bucket", Key="public/a")["Body"].read() == b"open"
    with pytest.raises(ClientError) as exc:
        other.get_object(Bucket="pol-bucket", Key="private/b")
    assert _code(exc) == ("AccessDenied", 403)
    anonymous = urllib.request.Request(f"{server.endpoint}/public/a",
                                       headers={"Host": f"pol-bucket.s3.localhost:{server.port}"})
    with urllib.request.urlopen(anonymous) as resp:
        assert resp.read() == b"open"
    with urllib.request.urlopen(f"{server.endpoint}/pol-bucket/public/a") as resp:  # path style, anonymous
        assert resp.read() == b"open"
    with pytest.raises(urllib.error.HTTPError) as http_err:
        urllib.request.urlopen(f"{server.endpoint}/pol-bucket/private/b")
    assert http_err.value.code == 403 and b"<Code>AccessDenied</Code>" in http_err.value.read()


def test_cors_preflight(server: HearthServer, s3: Any) -> None:
    s3.create_bucket(Bucket="cors-bucket")
    s3.put_bucket_cors(Bucket="cors-bucket", CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["*"],
        "MaxAgeSeconds": 300}]})
    req = urllib.request.Request(f"{server.endpoint}/cors-bucket/x", method="OPTIONS", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type"})
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "PUT" in resp.headers["Access-Control-Allow-Methods"]
    denied = urllib.request.Request(f"{server.endpoint}/cors-bucket/x", method="OPTIONS", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"})
    with pytest.raises(urllib.error.HTTPError) as http_err:
        urllib.request.urlopen(denied)
    assert http_err.value.code == 403


def test_aws_cli_cp_ls_sync_rm(server: HearthServer, s3: Any, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="cli-bucket")
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    (src / "one.txt").write_text("one")
    (src / "nested" / "two.txt").write_text("two")
    (src / "big.bin").write_bytes(b"0123456789abcdef" * (MiB // 16) * 10)  # 10 MiB: the CLI goes multipart
    server.aws("s3", "cp", str(src / "one.txt"), "s3://cli-bucket/one.txt")
    assert "one.txt" in server.aws("s3", "ls", "s3://cli-bucket/").stdout
    server.aws("s3", "sync", str(src), "s3://cli-bucket/synced")
    listing = server.aws("s3api", "list-objects-v2", "--bucket", "cli-bucket", "--prefix", "synced/").stdout
    assert sorted(o["Key"] for o in json.loads(listing)["Contents"]) == [
        "synced/big.bin", "synced/nested/two.txt", "synced/one.txt"]
    assert s3.head_object(Bucket="cli-bucket", Key="synced/big.bin")["ETag"].endswith('-2"')
    server.aws("s3", "cp", "s3://cli-bucket/synced/big.bin", str(tmp_path / "big.bin"))
    assert (tmp_path / "big.bin").read_bytes() == (src / "big.bin").read_bytes()
    server.aws("s3", "cp", "s3://cli-bucket/synced/nested/two.txt", str(tmp_path / "got.txt"))
    assert (tmp_path / "got.txt").read_text() == "two"
    server.aws("s3", "rm", "s3://cli-bucket/", "--recursive")
    assert "Contents" not in json.loads(server.aws("s3api", "list-objects-v2", "--bucket", "cli-bucket").stdout
                                        or "{}")


THUMBNAIL = '''
import boto3, json, urllib.parse

s3 = boto3.client("s3")

def handler(event, context):
    record = event["Records"][0]
    bucket = record["s3"]["bucket"]["name"]
    key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    name = key.split("/", 1)[1]
    s3.put_object(Bucket=bucket, Key="events/" + name + ".json", Body=json.dumps(event).encode())
    s3.put_object(Bucket=bucket, Key="thumbs/" + name, Body=body[:8])
'''


def _wait_for(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_thumbnail_flow_and_queue_notifications(server: HearthServer, s3: Any) -> None:
    lam = server.client("lambda")
    sqs = server.client("sqs")
    from aws_lambda_powertools.utilities.parser.models import S3Model

    fn = create_function(lam, "thumbnailer", {"app.py": THUMBNAIL}, handler="app.handler")
    s3.create_bucket(Bucket="img-bucket")
    config = {"LambdaFunctionConfigurations": [{
        "LambdaFunctionArn": fn["FunctionArn"], "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}}}]}
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_notification_configuration(Bucket="img-bucket", NotificationConfiguration=config)
    assert _code(exc) == ("InvalidArgument", 400)
    lam.add_permission(FunctionName="thumbnailer", StatementId="s3", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::img-bucket", SourceAccount=ACCOUNT)
    queue_url = sqs.create_queue(QueueName="s3-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    config["QueueConfigurations"] = [{"QueueArn": queue_arn, "Events": ["s3:ObjectRemoved:*"]}]
    s3.put_bucket_notification_configuration(Bucket="img-bucket", NotificationConfiguration=config)
    got = s3.get_bucket_notification_configuration(Bucket="img-bucket")
    assert got["LambdaFunctionConfigurations"][0]["LambdaFunctionArn"] == fn["FunctionArn"]
    test_message = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=10)["Messages"][0]
    assert json.loads(test_message["Body"])["Event"] == "s3:TestEvent"
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=test_message["ReceiptHandle"])
    s3.put_object(Bucket="img-bucket", Key="uploads/cat photo.jpg", Body=b"JPEGDATA-and-more")
    thumb = _wait_for(lambda: s3.get_object(Bucket="img-bucket", Key="thumbs/cat photo.jpg"))
    assert thumb["Body"].read() == b"JPEGDATA"
    event = json.loads(s3.get_object(Bucket="img-bucket", Key="events/cat photo.jpg.json")["Body"].read())
    S3Model(**event)  # an independent model of AWS's S3 event accepts it
    record = event["Records"][0]
    assert record["eventName"] == "ObjectCreated:Put" and record["eventVersion"] == "2.1"
    assert record["s3"]["object"]["key"] == "uploads/cat+photo.jpg" and record["s3"]["object"]["size"] == 17
    s3.delete_object(Bucket="img-bucket", Key="uploads/cat photo.jpg")
    message = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=10)["Messages"][0]
    removed = json.loads(message["Body"])["Records"][0]
    assert removed["eventName"] == "ObjectRemoved:Delete"
    assert removed["s3"]["bucket"]["name"] == "img-bucket"


def test_lambda_code_from_s3(server: HearthServer, s3: Any) -> None:
    from tests.integration.harness import ROLE, make_zip, wait_active

    lam = server.client("lambda")
    s3.create_bucket(Bucket="code-bucket")
    s3.put_object(Bucket="code-bucket", Key="fn.zip",
                  Body=make_zip({"app.py": "def handler(e, c):\n    return {'from': 's3'}\n"}))
    lam.create_function(FunctionName="from-s3", Runtime="python3.11", Handler="app.handler", Role=ROLE,
                        Code={"S3Bucket": "code-bucket", "S3Key": "fn.zip"})
    wait_active(lam, "from-s3")
    out = lam.invoke(FunctionName="from-s3")
    assert json.loads(out["Payload"].read()) == {"from": "s3"}
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName="from-s3-missing", Runtime="python3.11", Handler="app.handler", Role=ROLE,
                            Code={"S3Bucket": "code-bucket", "S3Key": "nope.zip"})
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert exc.value.response["Error"]["Message"] == (
        "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist.")
    # A new version of the code, by version id; a layer from S3; another account's bucket is refused.
    s3.put_bucket_versioning(Bucket="code-bucket", VersioningConfiguration={"Status": "Enabled"})
    v2 = s3.put_object(Bucket="code-bucket", Key="fn.zip",
                       Body=make_zip({"app.py": "def handler(e, c):\n    return {'from': 's3 v2'}\n"}))["VersionId"]
    s3.put_object(Bucket="code-bucket", Key="fn.zip", Body=b"not the one")
    lam.update_function_code(FunctionName="from-s3", S3Bucket="code-bucket", S3Key="fn.zip", S3ObjectVersion=v2)
    wait_active(lam, "from-s3")
    for _ in range(100):
        if lam.get_function_configuration(FunctionName="from-s3").get("LastUpdateStatus") != "InProgress":
            break
        time.sleep(0.1)
    assert json.loads(lam.invoke(FunctionName="from-s3")["Payload"].read()) == {"from": "s3 v2"}
    s3.put_object(Bucket="code-bucket", Key="layer.zip", Body=make_zip({"python/helper.py": "X = 1\n"}))
    layer = lam.publish_layer_version(LayerName="from-s3", Content={"S3Bucket": "code-bucket", "S3Key": "layer.zip"})
    assert layer["Version"] == 1 and layer["Content"]["CodeSize"] > 0
    other = server.client("lambda", account=OTHER_ACCOUNT)
    other_iam = server.client("iam", account=OTHER_ACCOUNT)
    with contextlib.suppress(other_iam.exceptions.EntityAlreadyExistsException):
        other_iam.create_role(RoleName="r", AssumeRolePolicyDocument=LAMBDA_TRUST)
    with pytest.raises(ClientError) as exc:
        other.create_function(FunctionName="theirs", Runtime="python3.11", Handler="app.handler",
                              Role=f"arn:aws:iam::{OTHER_ACCOUNT}:role/r",
                              Code={"S3Bucket": "code-bucket", "S3Key": "fn.zip"})
    assert "S3 Error Code: AccessDenied" in exc.value.response["Error"]["Message"]


def test_acknowledged_objects_and_notifications_survive_kill_9(fresh_server: HearthServer) -> None:
    fresh_server.start()
    s3 = s3_client(fresh_server)
    sqs = fresh_server.client("sqs")
    s3.create_bucket(Bucket="dur-bucket")
    queue_url = sqs.create_queue(QueueName="dur-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket="dur-bucket", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    bodies = {f"k{i}": bytes([i]) * (1000 + i) for i in range(20)}
    for key, body in bodies.items():
        s3.put_object(Bucket="dur-bucket", Key=key, Body=body)
    # An upload in flight when the server dies: half its body sent, never acknowledged.
    import http.client

    url = s3.generate_presigned_url("put_object", Params={"Bucket": "dur-bucket", "Key": "half"}, ExpiresIn=300)
    parts = url.split("/", 3)
    conn = http.client.HTTPConnection("127.0.0.1", fresh_server.port)
    conn.putrequest("PUT", "/" + parts[3])
    conn.putheader("Content-Length", str(10 * MiB))
    conn.endheaders()
    conn.send(b"h" * MiB)
    deadline = time.monotonic() + 30
    tmp_dir = fresh_server.data_dir / "s3" / "tmp"
    while not any(tmp_dir.iterdir()) and time.monotonic() < deadline:  # the server is writing it
        time.sleep(0.05)
    fresh_server.kill9()
    conn.close()
    fresh_server.start()
    assert not any(tmp_dir.iterdir())  # the interrupted upload's file is gone
    s3 = s3_client(fresh_server)
    sqs = fresh_server.client("sqs")
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket="dur-bucket", Key="half")
    assert _code(exc) == ("404", 404)
    for key, body in bodies.items():
        assert s3.get_object(Bucket="dur-bucket", Key=key)["Body"].read() == body
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    while not set(bodies) <= seen and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=2).get("Messages", []):
            doc = json.loads(message["Body"])
            seen.update(r["s3"]["object"]["key"] for r in doc.get("Records", []))
    assert set(bodies) <= seen




def _receive_all(sqs: Any, queue_url: str, want: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < want and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=2).get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_lifecycle_expiration_and_eventbridge_delivery(server: HearthServer, s3: Any) -> None:
    sqs = server.client("sqs")
    events = server.client("events")
    queue_url = sqs.create_queue(QueueName="s3-bus-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="s3-objects", EventPattern=json.dumps({"source": ["aws.s3"],
                                                                "detail": {"bucket": {"name": ["lc-bucket"]}}}))
    events.put_targets(Rule="s3-objects", Targets=[{"Id": "q", "Arn": queue_arn}])
    s3.create_bucket(Bucket="lc-bucket")
    s3.put_bucket_notification_configuration(Bucket="lc-bucket", NotificationConfiguration={
        "EventBridgeConfiguration": {}})
    assert "EventBridgeConfiguration" in s3.get_bucket_notification_configuration(Bucket="lc-bucket")
    s3.put_object(Bucket="lc-bucket", Key="tmp/old", Body=b"x")
    s3.put_object(Bucket="lc-bucket", Key="keep/this", Body=b"y")
    created = _receive_all(sqs, queue_url, 2)
    assert sorted(e["detail"]["object"]["key"] for e in created) == ["keep/this", "tmp/old"]
    assert {e["detail-type"] for e in created} == {"Object Created"}
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_lifecycle_configuration(Bucket="lc-bucket", LifecycleConfiguration={"Rules": [{
            "ID": "bad", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
            "Expiration": {"Date": "2020-01-01T10:00:00Z"}}]})
    assert _code(exc) == ("InvalidArgument", 400)
    s3.put_bucket_lifecycle_configuration(Bucket="lc-bucket", LifecycleConfiguration={"Rules": [{
        "ID": "expire-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
        "Expiration": {"Date": "2020-01-01T00:00:00Z"}}]})
    rules = s3.get_bucket_lifecycle_configuration(Bucket="lc-bucket")["Rules"]
    assert rules[0]["ID"] == "expire-tmp" and rules[0]["Expiration"]["Date"].year == 2020
    deleted = _receive_all(sqs, queue_url, 1)
    assert deleted[0]["detail-type"] == "Object Deleted" and deleted[0]["detail"]["object"]["key"] == "tmp/old"
    assert deleted[0]["detail"]["reason"] == "Lifecycle Expiration"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="lc-bucket")["Contents"]] == ["keep/this"]


def test_streaming_unsigned_payload_with_trailing_checksum(server: HearthServer, s3: Any) -> None:
    """What current botocore sends over https: aws-chunked, STREAMING-UNSIGNED-PAYLOAD-TRAILER, a
    trailing x-amz-checksum-crc32 (built here with botocore's own pieces, sent over http)."""
    import http.client
    import io

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

    s3.create_bucket(Bucket="chunk-bucket")
    payload = b"streamed in chunks " * 5000

    def send(body: bytes, trailer_value: str | None = None) -> tuple[int, bytes]:
        if trailer_value is not None:
            body = body.replace(body[body.rindex(b"x-amz-checksum-crc32:"):], f"x-amz-checksum-crc32:{trailer_value}"
                                "\r\n\r\n".encode())
        request = AWSRequest(method="PUT", url=f"{server.endpoint}/chunk-bucket/streamed", headers={
            "Content-Encoding": "aws-chunked", "X-Amz-Trailer": "x-amz-checksum-crc32",
            "X-Amz-Decoded-Content-Length": str(len(payload)), "Content-Length": str(len(body))})
        request.context["checksum"] = {"request_algorithm": {"in": "trailer", "algorithm": "crc32"}}
        S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        conn.request("PUT", "/chunk-bucket/streamed", body=body, headers=dict(request.headers.items()))
        resp = conn.getresponse()
        result = resp.status, resp.read()
        conn.close()
        return result

    wrapped = AwsChunkedWrapper(io.BytesIO(payload), checksum_cls=Crc32Checksum,
                                checksum_name="x-amz-checksum-crc32", chunk_size=16384).read()
    status, answer = send(wrapped)
    assert status == 200, answer
    assert s3.get_object(Bucket="chunk-bucket", Key="streamed")["Body"].read() == payload
    status, answer = send(wrapped, trailer_value="AAAAAA==")
    assert status == 400 and b"<Code>BadDigest</Code>" in answer


def test_expired_v2_presigned_url_is_refused(server: HearthServer, s3: Any) -> None:
    s3.create_bucket(Bucket="exp-bucket")
    s3.put_object(Bucket="exp-bucket", Key="k", Body=b"x")
    url = s3_client(server, signature_version="s3").generate_presigned_url(
        "get_object", Params={"Bucket": "exp-bucket", "Key": "k"}, ExpiresIn=-60)
    with pytest.raises(urllib.error.HTTPError) as http_err:
        urllib.request.urlopen(url)
    body = http_err.value.read()
    assert http_err.value.code == 403 and b"<Code>AccessDenied</Code>" in body and b"Request has expired" in body


def test_signed_streaming_chunks_and_malformed_xml(server: HearthServer, s3: Any) -> None:
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD: each chunk signed, chained from the request's signature."""
    import hmac
    import http.client

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from hearth.aws.sigv4 import signing_key

    s3.create_bucket(Bucket="signed-chunks")
    chunks = [b"a" * 8192, b"b" * 100]
    total = sum(len(c) for c in chunks)

    class StreamingAuth(S3SigV4Auth):
        def payload(self, request: Any) -> str:
            return "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"

    def put(tamper: bool) -> tuple[int, bytes]:
        request = AWSRequest(method="PUT", url=f"{server.endpoint}/signed-chunks/obj", headers={
            "Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(total)})
        StreamingAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
        seed = headers["Authorization"].rpartition("Signature=")[2]
        date = headers["X-Amz-Date"]
        scope = f"{date[:8]}/us-east-1/s3/aws4_request"
        key = signing_key(SECRET_KEY, date[:8], "us-east-1", "s3")
        body, previous = b"", seed
        for chunk in [*chunks, b""]:
            string_to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", date, scope, previous,
                                        hashlib.sha256(b"").hexdigest(), hashlib.sha256(chunk).hexdigest()])
            previous = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
            sent = chunk.replace(b"b", b"c") if tamper else chunk
            body += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + sent + b"\r\n"
        headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        conn.request("PUT", "/signed-chunks/obj", body=body, headers=headers)
        resp = conn.getresponse()
        result = resp.status, resp.read()
        conn.close()
        return result

    assert put(tamper=False)[0] == 200
    assert s3.get_object(Bucket="signed-chunks", Key="obj")["Body"].read() == b"".join(chunks)
    status, answer = put(tamper=True)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in answer
    assert s3.get_object(Bucket="signed-chunks", Key="obj")["Body"].read() == b"".join(chunks)  # untouched
    # A DeleteObjects body that is not XML.
    from botocore.auth import S3SigV4Auth as Auth

    bad = AWSRequest(method="POST", url=f"{server.endpoint}/signed-chunks?delete", data=b"<Delete><Object>",
                     headers={"Content-MD5": base64.b64encode(hashlib.md5(b"<Delete><Object>").digest()).decode()})
    Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(bad)
    req = urllib.request.Request(f"{server.endpoint}/signed-chunks?delete", data=b"<Delete><Object>", method="POST",
                                 headers=dict(bad.headers.items()))
    with pytest.raises(urllib.error.HTTPError) as http_err:
        urllib.request.urlopen(req)
    assert http_err.value.code == 400 and b"<Code>MalformedXML</Code>" in http_err.value.read()


def test_multipart_composite_checksum(s3: Any) -> None:
    s3.create_bucket(Bucket="composite")
    upload = s3.create_multipart_upload(Bucket="composite", Key="k", ChecksumAlgorithm="SHA256")["UploadId"]
    data = [b"p" * (5 * MiB), b"q" * 10]
    parts = []
    for number, chunk in enumerate(data, start=1):
        out = s3.upload_part(Bucket="composite", Key="k", UploadId=upload, PartNumber=number, Body=chunk,
                             ChecksumAlgorithm="SHA256")
        assert out["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(chunk).digest()).decode()
        parts.append({"PartNumber": number, "ETag": out["ETag"], "ChecksumSHA256": out["ChecksumSHA256"]})
    bare = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
    with pytest.raises(ClientError) as exc:  # a COMPOSITE upload's completion must name each part's checksum
        s3.complete_multipart_upload(Bucket="composite", Key="k", UploadId=upload, MultipartUpload={"Parts": bare})
    assert _code(exc) == ("InvalidRequest", 400)
    wrong = [{**p, "ChecksumSHA256": parts[1]["ChecksumSHA256"]} for p in parts]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket="composite", Key="k", UploadId=upload, MultipartUpload={"Parts": wrong})
    assert _code(exc) == ("InvalidPart", 400)
    done = s3.complete_multipart_upload(Bucket="composite", Key="k", UploadId=upload, MultipartUpload={"Parts": parts})
    assert done["ChecksumType"] == "COMPOSITE"
    head = s3.head_object(Bucket="composite", Key="k", ChecksumMode="ENABLED")
    composite = hashlib.sha256(b"".join(hashlib.sha256(c).digest() for c in data)).digest()
    assert head["ChecksumSHA256"] == f"{base64.b64encode(composite).decode()}-2"
    attrs = s3.get_object_attributes(Bucket="composite", Key="k",
                                     ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"])
    assert attrs["ETag"] == head["ETag"].strip('"')  # unquoted here, unlike HEAD's
    assert attrs["Checksum"] == {"ChecksumSHA256": head["ChecksumSHA256"], "ChecksumType": "COMPOSITE"}
    assert attrs["StorageClass"] == "STANDARD" and attrs["ObjectSize"] == 5 * MiB + 10
    assert attrs["ObjectParts"]["TotalPartsCount"] == 2
    assert [p["ChecksumSHA256"] for p in attrs["ObjectParts"]["Parts"]] == [p["ChecksumSHA256"] for p in parts]
    only_size = s3.get_object_attributes(Bucket="composite", Key="k", ObjectAttributes=["ObjectSize"])
    assert "ETag" not in only_size and "Checksum" not in only_size


def test_crc64nvme_checksum_and_malformed_checksum_values(s3: Any) -> None:
    s3.create_bucket(Bucket="crc64")
    check = base64.b64encode(bytes.fromhex("ae8b14860a799888")).decode()  # CRC-64/NVME's check value
    put = s3.put_object(Bucket="crc64", Key="k", Body=b"123456789", ChecksumCRC64NVME=check)
    assert put["ChecksumCRC64NVME"] == check
    head = s3.head_object(Bucket="crc64", Key="k", ChecksumMode="enabled")  # the mode's case does not matter
    assert head["ChecksumCRC64NVME"] == put["ChecksumCRC64NVME"]
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="crc64", Key="k", Body=b"x", ChecksumCRC32="not-base64")
    assert _code(exc) == ("InvalidRequest", 400)
    assert exc.value.response["Error"]["Message"] == "Value for x-amz-checksum-crc32 header is invalid."


def test_lifecycle_transition_default_minimum_object_size(s3: Any) -> None:
    s3.create_bucket(Bucket="lc-minimum")
    rules = {"Rules": [{"ID": "r", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 7}}]}
    put = s3.put_bucket_lifecycle_configuration(Bucket="lc-minimum", LifecycleConfiguration=rules)
    assert put["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"  # AWS's default
    s3.put_bucket_lifecycle_configuration(Bucket="lc-minimum", LifecycleConfiguration=rules,
                                          TransitionDefaultMinimumObjectSize="varies_by_storage_class")
    got = s3.get_bucket_lifecycle_configuration(Bucket="lc-minimum")
    assert got["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class"
    put_object = s3.put_object(Bucket="lc-minimum", Key="k", Body=b"x")
    head = s3.head_object(Bucket="lc-minimum", Key="k")
    assert head["Expiration"] == put_object["Expiration"]
    assert head["Expiration"].startswith('expiry-date="') and head["Expiration"].endswith(' 00:00:00 GMT", rule-id="r"')
    sized = {"Rules": [{"ID": "big", "Status": "Enabled", "Expiration": {"Days": 1},
                        "Filter": {"ObjectSizeGreaterThan": 10}}]}
    s3.put_bucket_lifecycle_configuration(Bucket="lc-minimum", LifecycleConfiguration=sized)
    assert "Expiration" not in s3.head_object(Bucket="lc-minimum", Key="k")  # 1 byte: the rule does not apply
    assert "big" in s3.put_object(Bucket="lc-minimum", Key="large", Body=b"x" * 11)["Expiration"]
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_lifecycle_configuration(Bucket="lc-minimum", LifecycleConfiguration=rules,
                                              TransitionDefaultMinimumObjectSize="value")
    assert _code(exc) == ("InvalidRequest", 400)


def test_bucket_and_object_acls(s3: Any) -> None:
    s3.create_bucket(Bucket="acls")
    owner = s3.get_bucket_acl(Bucket="acls")["Owner"]
    s3.put_bucket_acl(Bucket="acls", ACL="public-read")
    grants = s3.get_bucket_acl(Bucket="acls")["Grants"]
    assert grants == [{"Grantee": {**owner, "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"},
                      {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                       "Permission": "READ"}]
    s3.put_bucket_acl(Bucket="acls", GrantRead='uri="http://acs.amazonaws.com/groups/s3/LogDelivery"')
    assert [g["Permission"] for g in s3.get_bucket_acl(Bucket="acls")["Grants"]] == ["READ"]
    for kwargs, code in (({"ACL": "fake-acl"}, "InvalidArgument"),
                         ({"GrantWrite": 'fakekey="1234"'}, "InvalidArgument"),
                         ({"AccessControlPolicy": {"Grants": []}}, "MalformedACLError"),
                         ({}, "MissingSecurityHeader")):
        with pytest.raises(ClientError) as exc:
            s3.put_bucket_acl(Bucket="acls", **kwargs)
        assert _code(exc) == (code, 400)
    s3.put_object(Bucket="acls", Key="k", Body=b"x")
    assert len(s3.get_object_acl(Bucket="acls", Key="k")["Grants"]) == 1
    s3.put_object_acl(Bucket="acls", Key="k", ACL="public-read")
    assert len(s3.get_object_acl(Bucket="acls", Key="k")["Grants"]) == 2


def test_bucket_metrics_configurations(s3: Any) -> None:
    s3.create_bucket(Bucket="metrics")
    for n in range(101):
        out = s3.put_bucket_metrics_configuration(Bucket="metrics", Id=f"m{n:03}",
                                                  MetricsConfiguration={"Id": f"m{n:03}", "Filter": {"Prefix": "a/"}})
        assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    got = s3.get_bucket_metrics_configuration(Bucket="metrics", Id="m007")["MetricsConfiguration"]
    assert got == {"Id": "m007", "Filter": {"Prefix": "a/"}}
    first = s3.list_bucket_metrics_configurations(Bucket="metrics")
    assert len(first["MetricsConfigurationList"]) == 100 and first["IsTruncated"]
    second = s3.list_bucket_metrics_configurations(Bucket="metrics", ContinuationToken=first["NextContinuationToken"])
    assert [c["Id"] for c in second["MetricsConfigurationList"]] == ["m100"] and not second["IsTruncated"]
    s3.delete_bucket_metrics_configuration(Bucket="metrics", Id="m007")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket_metrics_configuration(Bucket="metrics", Id="m007")
    assert _code(exc) == ("NoSuchConfiguration", 404)
