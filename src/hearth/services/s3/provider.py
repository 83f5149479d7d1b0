"""The S3 API: one method per operation (botocore's names), over the metadata store and body files.

It owns S3's rules: bucket names and location constraints, who may act on a bucket (its owner, or
whom its policy allows), object versions and delete markers, conditional and ranged reads, copies,
listings, multipart uploads and their ETags, and which notifications a change queues. Bodies
stream from the request to a file and from the file to the response; the metadata row (and its
notifications) is committed only after the body is durable. It never parses HTTP (the gateway's
S3 front and the rest-xml protocol do).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fnmatch
import hashlib
import ipaddress
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote_plus, unquote

from hearth.aws.body_stream import BodyStream
from hearth.aws.context import Principal, RequestContext
from hearth.aws.errors import AwsError
from hearth.services.base import RawResponse
from hearth.services.s3 import errors
from hearth.services.s3.checksums import (
    ALGORITHMS,
    BodyDigests,
    check_checksums,
    check_md5,
    expected_md5,
    multipart_etag,
    new_digest,
)
from hearth.services.s3.files import ObjectFiles
from hearth.services.s3.notifications import (
    EVENT_NAMES,
    KINDS,
    Dispatcher,
    config_id,
    eventbridge_event,
    outgoing,
    record,
    targets,
    test_event,
)
from hearth.services.s3.store import NULL_VERSION, Bucket, ObjectRow, Outgoing, Part, S3Store

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 1024
# Bodies up to this size are kept in the metadata row: a small PUT is one database commit instead of
# a file write, two fsyncs and a rename.
INLINE_LIMIT = 64 * 1024
LIFECYCLE_INTERVAL_S = 60.0
LIFECYCLE_PRINCIPAL = Principal("", "")  # expirations are S3's own doing: the event names no requester
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CONTENT_MEMBERS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl",
                    "Expires", "WebsiteRedirectLocation")
_OVERRIDES = {"ResponseContentType": "ContentType", "ResponseContentLanguage": "ContentLanguage",
              "ResponseExpires": "Expires", "ResponseCacheControl": "CacheControl",
              "ResponseContentDisposition": "ContentDisposition", "ResponseContentEncoding": "ContentEncoding"}
_CORS_DENIED = ("This CORS request is not allowed. This is usually because the evalution of Origin, request method / "
                "Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the "
                "resource's CORS spec.")
DEFAULT_ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                                 "BucketKeyEnabled": False}]}

# Lets notification configuration check that a function's policy allows S3 (arn, principal, source arn,
# source account) -> allowed.
ServiceAllows = Callable[[str, str, str | None, str | None], bool]


def _now() -> float:
    return time.time()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def valid_bucket_name(name: str) -> bool:
    if not _BUCKET_NAME.fullmatch(name) or ".." in name or ".-" in name or "-." in name:
        return False
    try:
        ipaddress.ip_address(name)
        return False
    except ValueError:
        return True


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """[start, end) of a `bytes=` range; None when the header is not a single byte range (ignored, as
    AWS does); InvalidRange when it is one but cannot be satisfied."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            n = int(last)
            if n == 0:
                raise _invalid_range(header, size)
            return max(0, size - n), size
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if end <= start - 0 and last:
        return None
    if start >= size:
        raise _invalid_range(header, size)
    return start, min(end, size)


def _invalid_range(header: str, size: int) -> AwsError:
    return AwsError("InvalidRange", "The requested range is not satisfiable", 416,
                    fields={"RangeRequested": header, "ActualObjectSize": size})


def _encode(value: str | None, url: bool) -> str | None:
    return quote_plus(value, safe="/") if (url and value is not None) else value


def _token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise errors.invalid_argument("The continuation token provided is incorrect", "continuation-token",
                                      token) from None


class S3Provider:
    def __init__(self, store: S3Store, files: ObjectFiles, dispatcher: Dispatcher, *, region: str,
                 service_allows: ServiceAllows) -> None:
        self._store = store
        self._files = files
        self._dispatcher = dispatcher
        self._region = region
        self._service_allows = service_allows
        self._lifecycle_wake = asyncio.Event()
        # Group commit of PutObject rows: waiting rows, and the task committing them.
        self._pending: list[tuple[ObjectRow, str, Callable[[ObjectRow], list[Outgoing]],
                                  asyncio.Future[list[str]]]] = []
        self._committing: asyncio.Task[None] | None = None
        self._lifecycle_task: asyncio.Task[None] | None = None

    # -- access -----------------------------------------------------------------------------------

    def _bucket(self, ctx: RequestContext, name: str, action: str, key: str | None = None) -> Bucket:
        bucket = self._store.bucket(name)
        if bucket is None:
            raise errors.no_such_bucket(name)
        if ctx.account_id != bucket.account_id and not self._policy_allows(ctx, bucket, action, key):
            raise errors.access_denied()
        return bucket

    def _policy_allows(self, ctx: RequestContext, bucket: Bucket, action: str, key: str | None) -> bool:
        """The bucket policy's verdict for another account or an anonymous caller: an explicit Deny
        wins, then any Allow (identity policies of other accounts are not modelled: they allow)."""
        text = bucket.config.get("policy")
        if not text:
            return False
        try:
            statements = json.loads(text).get("Statement", [])
        except (ValueError, AttributeError):
            return False
        if isinstance(statements, dict):
            statements = [statements]
        resource = f"arn:aws:s3:::{bucket.name}" + (f"/{key}" if key is not None else "")
        allowed = False
        for st in statements:
            if not isinstance(st, dict) or not _principal_matches(st.get("Principal"), ctx.account_id):
                continue
            if not _any_match(st.get("Action"), action) or not _any_match(st.get("Resource"), resource):
                continue
            if st.get("Effect") == "Deny":
                return False
            if st.get("Effect") == "Allow":
                allowed = True
        return allowed

    # -- buckets ----------------------------------------------------------------------------------

    def create_bucket(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Bucket"]
        if ctx.account_id == "":
            raise errors.access_denied()
        if not valid_bucket_name(name):
            raise AwsError("InvalidBucketName", "The specified bucket is not valid.", 400, fields={"BucketName": name})
        constraint = (params.get("CreateBucketConfiguration") or {}).get("LocationConstraint")
        if ctx.region == "us-east-1":
            if constraint == "us-east-1":
                raise AwsError("InvalidLocationConstraint", "The specified location-constraint is not valid", 400,
                               fields={"LocationConstraint": constraint})
            region = constraint or "us-east-1"
            if region == "EU":
                region = "eu-west-1"
        else:
            if constraint != ctx.region:
                raise AwsError("IllegalLocationConstraintException",
                               f"The {constraint or 'unspecified'} location constraint is incompatible for the "
                               "region specific endpoint this request was sent to.", 400)
            region = constraint
        existing = self._store.create_bucket(name, ctx.account_id, region, _now())
        if existing is not None:
            if existing.account_id != ctx.account_id:
                raise AwsError("BucketAlreadyExists", "The requested bucket name is not available. The bucket "
                                                      "namespace is shared by all users of the system. Please "
                                                      "select a different name and try again.", 409,
                               fields={"BucketName": name})
            if region != "us-east-1":  # us-east-1 answers a repeated create with 200 (legacy behaviour)
                raise AwsError("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket "
                                                          "succeeded and you already own it.", 409,
                               fields={"BucketName": name})
        return {"Location": f"/{name}"}

    def head_bucket(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:ListBucket")
        return {"BucketRegion": bucket.region, "AccessPointAlias": False}

    def delete_bucket(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:DeleteBucket")
        if not self._store.is_empty(bucket.name):
            message = "The bucket you tried to delete is not empty"
            if bucket.versioning:
                message += ". You must delete all versions in the bucket."
            raise AwsError("BucketNotEmpty", message, 409, fields={"BucketName": bucket.name})
        self._files.remove(self._store.delete_bucket(bucket.name))
        return {}

    def list_buckets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if ctx.account_id == "":
            raise errors.access_denied()
        prefix = params.get("Prefix") or ""
        buckets = [b for b in self._store.buckets(ctx.account_id) if b.name.startswith(prefix)]
        return {"Buckets": [{"Name": b.name, "CreationDate": _dt(b.created), "BucketRegion": b.region}
                            for b in buckets],
                "Owner": _owner(ctx.account_id), **({"Prefix": prefix} if prefix else {})}

    def get_bucket_location(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:GetBucketLocation")
        return {"LocationConstraint": None if bucket.region == "us-east-1" else bucket.region}

    @staticmethod
    def _check_document(ctx: RequestContext) -> None:
        """Content-MD5 / x-amz-checksum-* of an XML (or policy) request body, which botocore sends
        with every such body."""
        header = ctx.headers.get("content-md5")
        expected = expected_md5(header)
        check_md5(expected, hashlib.md5(ctx.raw_body).digest(), header)
        declared = {a: ctx.headers[f"x-amz-checksum-{a.lower()}"] for a in ALGORITHMS
                    if f"x-amz-checksum-{a.lower()}" in ctx.headers}
        if declared:
            digests = BodyDigests(set(declared))
            digests.update(ctx.raw_body)
            check_checksums(declared, digests.checksums())

    def _set(self, ctx: RequestContext, params: dict[str, Any], item: str, value: Any, action: str) -> dict[str, Any]:
        self._check_document(ctx)
        bucket = self._bucket(ctx, params["Bucket"], action)
        self._store.set_config(bucket.name, item, value)
        return {}

    def _get(self, ctx: RequestContext, params: dict[str, Any], item: str, action: str) -> Any:
        return self._bucket(ctx, params["Bucket"], action).config.get(item)

    def put_bucket_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        tags = (params.get("Tagging") or {}).get("TagSet") or []
        _check_tags(tags)
        return self._set(ctx, params, "tags", tags, "s3:PutBucketTagging")

    def get_bucket_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        tags = self._get(ctx, params, "tags", "s3:GetBucketTagging")
        if not tags:
            raise AwsError("NoSuchTagSet", "The TagSet does not exist", 404, fields={"BucketName": params["Bucket"]})
        return {"TagSet": tags}

    def delete_bucket_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set(ctx, params, "tags", None, "s3:PutBucketTagging")

    def put_bucket_versioning(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._check_document(ctx)
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutBucketVersioning")
        status = (params.get("VersioningConfiguration") or {}).get("Status")
        if status not in ("Enabled", "Suspended"):
            raise errors.malformed_xml()
        self._store.set_versioning(bucket.name, status)
        return {}

    def get_bucket_versioning(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:GetBucketVersioning")
        return {"Status": bucket.versioning} if bucket.versioning else {}

    def put_bucket_encryption(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        config = params.get("ServerSideEncryptionConfiguration") or {}
        for rule in config.get("Rules") or []:
            default = rule.get("ApplyServerSideEncryptionByDefault") or {}
            if default.get("KMSMasterKeyID") and default.get("SSEAlgorithm") not in ("aws:kms", "aws:kms:dsse"):
                raise errors.invalid_argument("a KMSMasterKeyID is not applicable if the default sse algorithm is "
                                              "not aws:kms or aws:kms:dsse", "ApplyServerSideEncryptionByDefault")
        return self._set(ctx, params, "encryption", config, "s3:PutEncryptionConfiguration")

    def get_bucket_encryption(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        config = self._get(ctx, params, "encryption", "s3:GetEncryptionConfiguration")
        return {"ServerSideEncryptionConfiguration": config or DEFAULT_ENCRYPTION}

    def delete_bucket_encryption(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set(ctx, params, "encryption", None, "s3:PutEncryptionConfiguration")

    def put_bucket_cors(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        config = params.get("CORSConfiguration") or {}
        for rule in config.get("CORSRules") or []:
            for method in rule.get("AllowedMethods") or []:
                if method not in ("GET", "PUT", "HEAD", "POST", "DELETE"):
                    raise errors.invalid_request(f"Found unsupported HTTP method in CORS config. Unsupported "
                                                 f"method is {method}")
        return self._set(ctx, params, "cors", config, "s3:PutBucketCORS")

    def get_bucket_cors(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        config = self._get(ctx, params, "cors", "s3:GetBucketCORS")
        if not config:
            raise AwsError("NoSuchCORSConfiguration", "The CORS configuration does not exist", 404,
                           fields={"BucketName": params["Bucket"]})
        return dict(config)

    def delete_bucket_cors(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set(ctx, params, "cors", None, "s3:PutBucketCORS")

    def put_bucket_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._check_document(ctx)
        text = params.get("Policy") or ""
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or not text.lstrip().startswith("{"):
                raise ValueError
        except ValueError:
            raise AwsError("MalformedPolicy", "Policies must be valid JSON and the first byte must be '{'",
                           400) from None
        bucket = self._store.bucket(params["Bucket"])
        if bucket is None:
            raise errors.no_such_bucket(params["Bucket"])
        if ctx.account_id != bucket.account_id:  # only the owner changes a policy
            raise errors.access_denied()
        self._store.set_config(bucket.name, "policy", text)
        return {}

    def get_bucket_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        text = self._get(ctx, params, "policy", "s3:GetBucketPolicy")
        if not text:
            raise AwsError("NoSuchBucketPolicy", "The bucket policy does not exist", 404,
                           fields={"BucketName": params["Bucket"]})
        return {"Policy": text}

    def delete_bucket_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set(ctx, params, "policy", None, "s3:DeleteBucketPolicy")

    def put_bucket_lifecycle_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        config = params.get("LifecycleConfiguration") or {}
        for rule in config.get("Rules") or []:
            expiration = rule.get("Expiration") or {}
            date = expiration.get("Date")
            if isinstance(date, datetime):
                if (date.hour, date.minute, date.second, date.microsecond) != (0, 0, 0, 0):
                    raise errors.invalid_argument("'Date' must be at midnight GMT", "Date", date.isoformat())
                expiration["Date"] = date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            days = expiration.get("Days")
            if days is not None and days < 1:
                raise errors.invalid_argument("'Days' for Expiration action must be a positive integer", "Days",
                                              str(days))
        result = self._set(ctx, params, "lifecycle", config, "s3:PutLifecycleConfiguration")
        self._lifecycle_wake.set()  # a rule may apply at once (a Date in the past)
        return result

    def get_bucket_lifecycle_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        config = self._get(ctx, params, "lifecycle", "s3:GetLifecycleConfiguration")
        if not config:
            raise AwsError("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist", 404,
                           fields={"BucketName": params["Bucket"]})
        return dict(config)

    def delete_bucket_lifecycle(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set(ctx, params, "lifecycle", None, "s3:PutLifecycleConfiguration")

    def get_bucket_acl(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:GetBucketAcl")
        owner = _owner(bucket.account_id)
        return {"Owner": owner, "Grants": [{"Grantee": {**owner, "Type": "CanonicalUser"},
                                            "Permission": "FULL_CONTROL"}]}

    # -- notifications ----------------------------------------------------------------------------

    def put_bucket_notification_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._check_document(ctx)
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutBucketNotification")
        if ctx.account_id != bucket.account_id:
            raise errors.access_denied()
        config = params.get("NotificationConfiguration") or {}
        failed: list[str] = []
        tests: list[Outgoing] = []
        body = test_event(bucket.name, _now(), ctx.request_id)
        for kind, arn_member in KINDS:
            for item in config.get(kind) or []:
                for event in item.get("Events") or []:
                    if event not in EVENT_NAMES:
                        raise errors.invalid_argument("The event is not supported for notifications", event,
                                                      event)
                for rule in ((item.get("Filter") or {}).get("Key") or {}).get("FilterRules") or []:
                    if str(rule.get("Name", "")).lower() not in ("prefix", "suffix"):
                        raise errors.invalid_argument("filter rule name must be either prefix or suffix",
                                                      "FilterRule.Name", rule.get("Name"))
                item.setdefault("Id", _config_id())
                arn = item[arn_member]
                if kind == "LambdaFunctionConfigurations":
                    if not self._service_allows(arn, "s3.amazonaws.com", f"arn:aws:s3:::{bucket.name}",
                                                bucket.account_id):
                        failed.append(arn)
                else:
                    tests.append(Outgoing(arn, body, f"arn:aws:s3:::{bucket.name}"))
        if failed:
            raise AwsError("InvalidArgument", "Unable to validate the following destination configurations", 400,
                           fields={"ArgumentName1": failed[0], "ArgumentValue1": "Not authorized to invoke function "
                                   f"[{failed[0]}]"})
        self._store.set_config(bucket.name, "notification", config or None)
        if tests:
            self._store.queue(tests)
            self._dispatcher.notify()
        return {}

    def get_bucket_notification_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return dict(self._get(ctx, params, "notification", "s3:GetBucketNotification") or {})

    def _events(self, ctx: RequestContext, bucket: Bucket, event_name: str, row: ObjectRow) -> list[Outgoing]:
        notification = bucket.config.get("notification")
        if not notification:
            return []
        found = targets(notification, event_name, row.key)
        removed = event_name.startswith(("ObjectRemoved", "LifecycleExpiration"))
        out = []
        if "EventBridgeConfiguration" in notification:
            event = eventbridge_event(
                event_name=event_name, account=bucket.account_id, region=bucket.region, bucket=bucket.name,
                key=row.key, size=row.size, etag=row.etag, version_id=row.version_id if bucket.versioning else None,
                sequencer=row.seq, principal=ctx.principal.account_id, source_ip=ctx.source_ip,
                request_id=ctx.request_id, when=row.last_modified)
            if event is not None:
                out.append(Outgoing(f"arn:aws:events:{bucket.region}:{bucket.account_id}:event-bus/default",
                                    json.dumps(event), f"arn:aws:s3:::{bucket.name}"))
        for arn in found:
            rec = record(event_name=event_name, region=bucket.region, bucket=bucket.name, owner=bucket.account_id,
                         key=row.key, size=None if removed else row.size, etag=None if removed else row.etag,
                         version_id=row.version_id if bucket.versioning else None, sequencer=row.seq,
                         principal=ctx.principal.access_key_id, source_ip=ctx.source_ip,
                         request_id=ctx.request_id, configuration_id=config_id(notification, arn),
                         when=row.last_modified)
            out.append(outgoing(arn, [rec], bucket.name))
        return out

    def _commit(self, ctx: RequestContext, bucket: Bucket, row: ObjectRow, event_name: str,
                upload_id: str | None = None) -> None:
        """Store `row` as the key's latest version with its notifications, in one transaction."""
        freed = self._store.put(row, bucket.versioning, lambda r: self._events(ctx, bucket, event_name, r),
                                upload_id=upload_id)
        if bucket.config.get("notification"):
            self._dispatcher.notify()
        self._files.remove(freed)

    async def _group_commit(self, ctx: RequestContext, bucket: Bucket, row: ObjectRow, event_name: str) -> None:
        """`_commit` for PutObject: concurrent PUTs share one transaction (one fsync), run in a worker
        thread while the event loop keeps serving; each caller returns once its row is durable."""
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._pending.append((row, bucket.versioning, lambda r: self._events(ctx, bucket, event_name, r), future))
        if self._committing is None:
            self._committing = asyncio.get_running_loop().create_task(self._commit_pending())
        freed = await asyncio.shield(future)
        if bucket.config.get("notification"):
            self._dispatcher.notify()
        self._files.remove(freed)

    async def _commit_pending(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await asyncio.to_thread(self._store.put_many, [(r, v, e) for r, v, e, _ in batch])
                except BaseException as exc:
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (*_, future), freed in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(freed)
        finally:
            self._committing = None

    def _remove_version(self, ctx: RequestContext, bucket: Bucket, key: str, version_id: str) -> None:
        freed = self._store.delete_version(bucket.name, key, version_id,
                                           lambda r: self._events(ctx, bucket, "ObjectRemoved:Delete", r))
        if bucket.config.get("notification"):
            self._dispatcher.notify()
        self._files.remove(freed)

    # -- objects ----------------------------------------------------------------------------------

    async def put_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutObject", params["Key"])
        key = _check_key(params["Key"])
        if params.get("IfNoneMatch") not in (None, "*"):
            raise AwsError("NotImplemented", "A header you provided implies functionality that is not implemented",
                           501, fields={"Header": "If-None-Match"})
        if params.get("IfNoneMatch") == "*" and self._store.get(bucket.name, key) is not None \
                and not self._store.get(bucket.name, key).delete_marker:  # type: ignore[union-attr]
            raise errors.precondition_failed("If-None-Match")
        if params.get("IfMatch") is not None:
            current = self._store.get(bucket.name, key)
            if current is None or current.delete_marker:
                raise errors.no_such_key(key)
            if current.etag != params["IfMatch"]:
                raise errors.precondition_failed("If-Match")
        blob, inline, size, md5, checksums = await self._receive_body(ctx, params, inline=True)
        meta = self._object_meta(ctx, params, checksums)
        row = ObjectRow(bucket.name, key, "", True, False, [(blob, size)] if blob else [], size, f'"{md5.hex()}"',
                        _now(), meta, inline=inline)
        blobs = [blob] if blob else []
        if params.get("IfNoneMatch") == "*":
            current = self._store.get(bucket.name, key)
            if current is not None and not current.delete_marker:  # lost the race to another writer
                self._files.remove(blobs)
                raise AwsError("ConditionalRequestConflict", "The conditional request cannot succeed due to a "
                                                             "conflicting operation against this resource.", 409,
                               fields={"Condition": "If-None-Match", "Key": key})
        try:
            await self._group_commit(ctx, bucket, row, "ObjectCreated:Put")
        except BaseException:
            self._files.remove(blobs)
            raise
        return _write_result(row, bucket, checksums)

    async def _receive_body(self, ctx: RequestContext, params: dict[str, Any], *, inline: bool = False,
                            ) -> tuple[str | None, bytes | None, int, bytes, dict[str, str]]:
        """Streams the request body to a durable file: (blob id, None, size, MD5, checksums); with
        `inline`, a body of at most INLINE_LIMIT bytes is returned instead: (None, bytes, ...)."""
        expected = expected_md5(params.get("ContentMD5"))
        declared = {a: params[f"Checksum{a}"] for a in ALGORITHMS if params.get(f"Checksum{a}")}
        wanted = set(declared)
        trailer = ctx.headers.get("x-amz-trailer", "")
        for name in trailer.split(","):
            name = name.strip().lower()
            if name.startswith("x-amz-checksum-"):
                wanted.add(name.removeprefix("x-amz-checksum-").upper())
        if params.get("ChecksumAlgorithm"):
            wanted.add(str(params["ChecksumAlgorithm"]).upper())
        digests = BodyDigests(wanted)
        writer = None if inline else self._files.writer()
        small = bytearray()
        size = 0
        try:
            body = params.get("Body")
            chunks: AsyncIterable[bytes] = body if isinstance(body, BodyStream) else _one(bytes(body or b""))
            async for chunk in chunks:
                digests.update(chunk)
                size += len(chunk)
                if writer is None:
                    small += chunk
                    if len(small) <= INLINE_LIMIT:
                        continue
                    writer = self._files.writer()
                    writer.write(bytes(small))
                    small.clear()
                    continue
                writer.write(chunk)
            if isinstance(body, BodyStream):
                for name, value in body.trailers.items():
                    if name.startswith("x-amz-checksum-"):
                        declared[name.removeprefix("x-amz-checksum-").upper()] = value
            md5 = digests.md5.digest()
            check_md5(expected, md5, params.get("ContentMD5"))
            checksums = digests.checksums()
            check_checksums(declared, checksums)
            if writer is None:
                return None, bytes(small), size, md5, checksums
            blob = await writer.commit()
        except BaseException:
            if writer is not None:
                writer.discard()
            raise
        return blob, None, size, md5, checksums

    def _body(self, row: ObjectRow, start: int, end: int) -> AsyncIterator[bytes]:
        if row.inline is not None:
            return _one(row.inline[start:end])
        return self._files.read(row.segments, start, end)

    def _object_meta(self, ctx: RequestContext, params: dict[str, Any], checksums: dict[str, str]) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        for member in _CONTENT_MEMBERS:
            value = params.get(member)
            if value is not None:
                meta[member] = value.timestamp() if isinstance(value, datetime) else value
        encoding = meta.get("ContentEncoding")
        if encoding:  # the transfer framing is not the object's encoding
            kept = [e.strip() for e in str(encoding).split(",") if e.strip() and e.strip() != "aws-chunked"]
            if kept:
                meta["ContentEncoding"] = ",".join(kept)
            else:
                meta.pop("ContentEncoding")
        meta.setdefault("ContentType", "binary/octet-stream")
        meta["Metadata"] = params.get("Metadata") or {}
        if params.get("Tagging"):
            meta["Tags"] = _parse_tagging(params["Tagging"])
        if checksums:
            meta["Checksums"] = checksums
        meta["StorageClass"] = params.get("StorageClass") or "STANDARD"
        return meta

    def _object(self, ctx: RequestContext, params: dict[str, Any], action: str) -> tuple[Bucket, ObjectRow]:
        bucket = self._bucket(ctx, params["Bucket"], action, params["Key"])
        version = params.get("VersionId")
        row = self._store.get(bucket.name, params["Key"], version)
        if row is None:
            if version is not None:
                raise errors.no_such_version(params["Key"], version)
            raise errors.no_such_key(params["Key"])
        if row.delete_marker:
            if version is not None:
                raise AwsError("MethodNotAllowed", "The specified method is not allowed against this resource.",
                               405, headers={"x-amz-delete-marker": "true", "x-amz-version-id": row.version_id},
                               fields={"Method": "GET", "ResourceType": "DeleteMarker"})
            raise AwsError("NoSuchKey", "The specified key does not exist.", 404, fields={"Key": params["Key"]},
                           headers={"x-amz-delete-marker": "true", "x-amz-version-id": row.version_id})
        return bucket, row

    def _conditions(self, params: dict[str, Any], row: ObjectRow, prefix: str = "") -> None:
        modified = int(row.last_modified)
        if_match = params.get(f"{prefix}IfMatch")
        if if_match is not None and if_match.strip() not in ("*", row.etag) and f'"{if_match}"' != row.etag:
            raise errors.precondition_failed("If-Match")
        unmodified = params.get(f"{prefix}IfUnmodifiedSince")
        if if_match is None and unmodified is not None and modified > unmodified.timestamp():
            raise errors.precondition_failed("If-Unmodified-Since")
        none_match = params.get(f"{prefix}IfNoneMatch")
        if none_match is not None and (none_match.strip() in ("*", row.etag) or f'"{none_match}"' == row.etag):
            if prefix:
                raise errors.precondition_failed("x-amz-copy-source-If-None-Match")
            raise errors.not_modified()
        since = params.get(f"{prefix}IfModifiedSince")
        if none_match is None and since is not None and modified <= since.timestamp():
            if prefix:
                raise errors.precondition_failed("x-amz-copy-source-If-Modified-Since")
            raise errors.not_modified()

    def _describe(self, bucket: Bucket, row: ObjectRow, params: dict[str, Any]) -> dict[str, Any]:
        meta = row.meta
        out: dict[str, Any] = {
            "AcceptRanges": "bytes", "LastModified": _dt(row.last_modified), "ContentLength": row.size,
            "ETag": row.etag, "Metadata": meta.get("Metadata") or {}, "ServerSideEncryption": "AES256",
        }
        for member in _CONTENT_MEMBERS:
            if meta.get(member) is not None:
                out[member] = _dt(meta[member]) if member == "Expires" else meta[member]
        if row.version_id != NULL_VERSION or bucket.versioning:
            out["VersionId"] = row.version_id
        if meta.get("Tags"):
            out["TagCount"] = len(meta["Tags"])
        if meta.get("StorageClass", "STANDARD") != "STANDARD":
            out["StorageClass"] = meta["StorageClass"]
        if params.get("ChecksumMode") == "ENABLED":
            for algorithm, value in (meta.get("Checksums") or {}).items():
                out[f"Checksum{algorithm}"] = value
            if meta.get("Checksums"):
                out["ChecksumType"] = "COMPOSITE" if meta.get("Parts") else "FULL_OBJECT"
        if meta.get("Parts"):
            out["PartsCount"] = len(meta["Parts"])
        for override, member in _OVERRIDES.items():
            if params.get(override) is not None:
                value = params[override]
                out[member] = value
        return out

    def get_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket, row = self._object(ctx, params, "s3:GetObject")
        self._conditions(params, row)
        out = self._describe(bucket, row, params)
        start, end = 0, row.size
        part_number = params.get("PartNumber")
        if part_number is not None:
            if params.get("Range"):
                raise errors.invalid_request("Cannot specify both Range header and partNumber query parameter")
            start, end = self._part_bounds(row, part_number)
            if row.meta.get("Parts"):
                out["ContentRange"] = f"bytes {start}-{end - 1}/{row.size}"
        elif params.get("Range"):
            found = _parse_range(params["Range"], row.size)
            if found is not None:
                start, end = found
                out["ContentRange"] = f"bytes {start}-{end - 1}/{row.size}"
        if (start, end) != (0, row.size):  # a part of the body: the whole body's checksums do not apply
            for algorithm in ALGORITHMS:
                out.pop(f"Checksum{algorithm}", None)
            out.pop("ChecksumType", None)
        out["ContentLength"] = end - start
        out["Body"] = self._body(row, start, end)
        return out

    @staticmethod
    def _part_bounds(row: ObjectRow, number: int) -> tuple[int, int]:
        sizes = row.meta.get("Parts") or [row.size]
        if not 1 <= number <= len(sizes):
            raise AwsError("InvalidPartNumber", "The requested partnumber is not satisfiable", 416,
                           fields={"PartNumberRequested": number, "ActualPartCount": len(sizes)})
        start = sum(sizes[:number - 1])
        return start, start + sizes[number - 1]

    def head_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket, row = self._object(ctx, params, "s3:GetObject")
        self._conditions(params, row)
        out = self._describe(bucket, row, params)
        if params.get("PartNumber") is not None:
            start, end = self._part_bounds(row, params["PartNumber"])
            out["ContentLength"] = end - start
        elif params.get("Range"):
            found = _parse_range(params["Range"], row.size)
            if found is not None:
                out["ContentLength"] = found[1] - found[0]
                out["ContentRange"] = f"bytes {found[0]}-{found[1] - 1}/{row.size}"
        return out

    def read_object(self, account_id: str, bucket_name: str, key: str, version_id: str | None) -> ObjectRow:
        """Another component's read of an object it names (Lambda's Code.S3Bucket/S3Key): its body
        segments and size. Raises AwsError NoSuchBucket/NoSuchKey/AccessDenied as S3 would."""
        bucket = self._store.bucket(bucket_name)
        if bucket is None:
            raise errors.no_such_bucket(bucket_name)
        if bucket.account_id != account_id:
            raise errors.access_denied()
        row = self._store.get(bucket_name, key, version_id)
        if row is None or row.delete_marker:
            raise errors.no_such_key(key)
        return row

    async def read_bytes(self, account_id: str, bucket_name: str, key: str, version_id: str | None,
                         limit: int) -> bytes:
        row = self.read_object(account_id, bucket_name, key, version_id)
        if row.size > limit:
            raise AwsError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", 400)
        return b"".join([chunk async for chunk in self._body(row, 0, row.size)])

    def delete_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:DeleteObject", params["Key"])
        return self._delete(ctx, bucket, params["Key"], params.get("VersionId"))

    def _delete(self, ctx: RequestContext, bucket: Bucket, key: str, version_id: str | None) -> dict[str, Any]:
        if version_id is not None:
            row = self._store.get(bucket.name, key, version_id)
            if row is None:
                if version_id != NULL_VERSION and not re.fullmatch(r"[0-9a-f]{32}", version_id):
                    raise errors.invalid_argument("Invalid version id specified", "versionId", version_id)
                return {"VersionId": version_id}
            self._remove_version(ctx, bucket, key, version_id)
            out: dict[str, Any] = {"VersionId": version_id}
            if row.delete_marker:
                out["DeleteMarker"] = True
            return out
        current = self._store.get(bucket.name, key)
        if not bucket.versioning:
            if current is None:
                return {}
            self._remove_version(ctx, bucket, key, NULL_VERSION)
            return {}
        marker = ObjectRow(bucket.name, key, "", True, True, [], 0, "", _now(), {})
        self._commit(ctx, bucket, marker, "ObjectRemoved:DeleteMarkerCreated")
        return {"DeleteMarker": True, "VersionId": marker.version_id}

    def delete_objects(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._check_document(ctx)
        bucket = self._bucket(ctx, params["Bucket"], "s3:DeleteObject")
        spec = params.get("Delete") or {}
        objects = spec.get("Objects") or []
        if not objects or len(objects) > 1000:
            raise errors.malformed_xml()
        deleted, failed = [], []
        for obj in objects:
            key = obj.get("Key", "")
            try:
                result = self._delete(ctx, bucket, key, obj.get("VersionId"))
            except AwsError as err:
                failed.append({"Key": key, "Code": err.code, "Message": err.message,
                               **({"VersionId": obj["VersionId"]} if obj.get("VersionId") else {})})
                continue
            entry: dict[str, Any] = {"Key": key}
            if obj.get("VersionId"):
                entry["VersionId"] = obj["VersionId"]
            if result.get("DeleteMarker"):
                entry["DeleteMarker"] = True
                entry["DeleteMarkerVersionId"] = result.get("VersionId")
            deleted.append(entry)
        out: dict[str, Any] = {}
        if deleted and not spec.get("Quiet"):
            out["Deleted"] = deleted
        if failed:
            out["Errors"] = failed
        return out

    def _source(self, ctx: RequestContext, copy_source: str) -> tuple[Bucket, ObjectRow]:
        source = copy_source.lstrip("/")
        path, _, query = source.partition("?")
        src_bucket, _, src_key = unquote(path).partition("/")
        if not src_bucket or not src_key:
            raise errors.invalid_argument("Invalid copy source object key", "x-amz-copy-source", copy_source)
        version = dict(parse_qsl(query)).get("versionId")
        params = {"Bucket": src_bucket, "Key": src_key, **({"VersionId": version} if version else {})}
        return self._object(ctx, params, "s3:GetObject")

    def copy_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutObject", params["Key"])
        key = _check_key(params["Key"])
        src_bucket, src = self._source(ctx, params["CopySource"])
        self._conditions(params, src, prefix="CopySource")
        directive = params.get("MetadataDirective") or "COPY"
        if src_bucket.name == bucket.name and src.key == key and directive != "REPLACE" \
                and not params.get("StorageClass") and not params.get("WebsiteRedirectLocation"):
            raise errors.invalid_request("This copy request is illegal because it is trying to copy an object to "
                                         "itself without changing the object's metadata, storage class, website "
                                         "redirect location or encryption attributes.")
        if directive == "REPLACE":
            meta = self._object_meta(ctx, params, src.meta.get("Checksums") or {})
        else:
            meta = dict(src.meta)
            meta.pop("Parts", None)
        if params.get("TaggingDirective") == "REPLACE":
            meta["Tags"] = _parse_tagging(params.get("Tagging") or "")
        elif directive == "REPLACE":
            meta["Tags"] = src.meta.get("Tags") or []
        if src.meta.get("Parts"):
            meta["Parts"] = src.meta["Parts"]
        segments = [(self._files.link(blob), size) for blob, size in src.segments]
        row = ObjectRow(bucket.name, key, "", True, False, segments, src.size, src.etag, _now(), meta,
                        inline=src.inline)
        try:
            self._commit(ctx, bucket, row, "ObjectCreated:Copy")
        except BaseException:
            self._files.remove([b for b, _ in segments])
            raise
        out: dict[str, Any] = {"CopyObjectResult": {"ETag": row.etag, "LastModified": _dt(row.last_modified)},
                               "ServerSideEncryption": "AES256"}
        if bucket.versioning:
            out["VersionId"] = row.version_id
        if src.version_id != NULL_VERSION:
            out["CopySourceVersionId"] = src.version_id
        return out

    def list_objects_v2(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:ListBucket")
        url = _encoding(params)
        after = params.get("StartAfter") or ""
        if params.get("ContinuationToken"):
            after = _untoken(params["ContinuationToken"])
        keys, prefixes, last, truncated = self._scan(bucket, params, after)
        out: dict[str, Any] = {
            "Name": bucket.name, "Prefix": _encode(params.get("Prefix") or "", url),
            "MaxKeys": params.get("MaxKeys", 1000), "KeyCount": len(keys) + len(prefixes), "IsTruncated": truncated,
            "Contents": [self._entry(r, url, owner=bool(params.get("FetchOwner"))) for r in keys] or None,
            "CommonPrefixes": [{"Prefix": _encode(p, url)} for p in prefixes] or None,
        }
        if params.get("Delimiter"):
            out["Delimiter"] = _encode(params["Delimiter"], url)
        if url:
            out["EncodingType"] = "url"
        if params.get("ContinuationToken"):
            out["ContinuationToken"] = params["ContinuationToken"]
        if params.get("StartAfter"):
            out["StartAfter"] = _encode(params["StartAfter"], url)
        if truncated and last is not None:
            out["NextContinuationToken"] = _token(last)
        return out

    def list_objects(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:ListBucket")
        url = _encoding(params)
        keys, prefixes, last, truncated = self._scan(bucket, params, params.get("Marker") or "")
        out: dict[str, Any] = {
            "Name": bucket.name, "Prefix": _encode(params.get("Prefix") or "", url),
            "Marker": _encode(params.get("Marker") or "", url), "MaxKeys": params.get("MaxKeys", 1000),
            "IsTruncated": truncated,
            "Contents": [self._entry(r, url, owner=True) for r in keys] or None,
            "CommonPrefixes": [{"Prefix": _encode(p, url)} for p in prefixes] or None,
        }
        if params.get("Delimiter"):
            out["Delimiter"] = _encode(params["Delimiter"], url)
            if truncated and last is not None:
                out["NextMarker"] = _encode(last, url)
        if url:
            out["EncodingType"] = "url"
        return out

    def _scan(self, bucket: Bucket, params: dict[str, Any], after: str,
              ) -> tuple[list[ObjectRow], list[str], str | None, bool]:
        """Keys and common prefixes after `after`, up to MaxKeys; (keys, prefixes, last, truncated)."""
        prefix = params.get("Prefix") or ""
        delimiter = params.get("Delimiter") or ""
        limit = params.get("MaxKeys", 1000)
        limit = 1000 if limit is None or limit > 1000 else max(limit, 0)
        keys: list[ObjectRow] = []
        prefixes: list[str] = []
        last: str | None = None
        while True:
            batch = self._store.list_latest(bucket.name, prefix, after, 1000)
            if not batch:
                return keys, prefixes, last, False
            for row in batch:
                common = None
                if delimiter:
                    at = row.key.find(delimiter, len(prefix))
                    if at >= 0:
                        common = row.key[:at + len(delimiter)]
                if common is not None and prefixes and prefixes[-1] == common:
                    after = row.key
                    continue
                if len(keys) + len(prefixes) >= limit:
                    return keys, prefixes, last, True
                if common is not None:
                    prefixes.append(common)
                    last = common
                    after = common + "\U0010ffff"  # past every key under this prefix
                    break
                keys.append(row)
                last = after = row.key
            else:
                continue
            continue

    @staticmethod
    def _entry(row: ObjectRow, url: bool, *, owner: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"Key": _encode(row.key, url), "LastModified": _dt(row.last_modified),
                                 "ETag": row.etag, "Size": row.size,
                                 "StorageClass": row.meta.get("StorageClass", "STANDARD")}
        if row.meta.get("Checksums"):
            entry["ChecksumAlgorithm"] = sorted(row.meta["Checksums"])
            entry["ChecksumType"] = "COMPOSITE" if row.meta.get("Parts") else "FULL_OBJECT"
        if owner:
            entry["Owner"] = _owner(row.meta.get("Owner", ""))
        return entry

    def list_object_versions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:ListBucketVersions")
        url = _encoding(params)
        prefix = params.get("Prefix") or ""
        limit = min(params.get("MaxKeys") or 1000, 1000)
        rows = self._store.list_versions(bucket.name, prefix, params.get("KeyMarker") or "", limit + 1)
        truncated = len(rows) > limit
        rows = rows[:limit]
        versions, markers = [], []
        for row in rows:
            entry = {"Key": _encode(row.key, url), "VersionId": row.version_id, "IsLatest": row.is_latest,
                     "LastModified": _dt(row.last_modified), "Owner": _owner(bucket.account_id)}
            if row.delete_marker:
                markers.append(entry)
            else:
                versions.append({**entry, "ETag": row.etag, "Size": row.size, "StorageClass": "STANDARD"})
        out: dict[str, Any] = {"Name": bucket.name, "Prefix": _encode(prefix, url),
                               "KeyMarker": params.get("KeyMarker") or "", "MaxKeys": limit,
                               "IsTruncated": truncated, "Versions": versions or None,
                               "DeleteMarkers": markers or None}
        if truncated and rows:
            out["NextKeyMarker"] = _encode(rows[-1].key, url)
            out["NextVersionIdMarker"] = rows[-1].version_id
        if url:
            out["EncodingType"] = "url"
        return out

    # -- object tagging ---------------------------------------------------------------------------

    def get_object_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        _, row = self._object(ctx, params, "s3:GetObjectTagging")
        out: dict[str, Any] = {"TagSet": row.meta.get("Tags") or []}
        if row.version_id != NULL_VERSION:
            out["VersionId"] = row.version_id
        return out

    def put_object_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._check_document(ctx)
        tags = (params.get("Tagging") or {}).get("TagSet") or []
        _check_tags(tags)
        return self._retag(ctx, params, tags)

    def delete_object_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._retag(ctx, params, [])

    def _retag(self, ctx: RequestContext, params: dict[str, Any], tags: list[dict[str, str]]) -> dict[str, Any]:
        bucket, row = self._object(ctx, params, "s3:PutObjectTagging")
        with self._store.db.tx() as db:
            meta = dict(row.meta)
            meta["Tags"] = tags
            db.execute("UPDATE s3_objects SET meta = ? WHERE bucket = ? AND key = ? AND version_id = ?",
                       (json.dumps(meta), bucket.name, row.key, row.version_id))
        return {"VersionId": row.version_id} if row.version_id != NULL_VERSION else {}

    # -- multipart --------------------------------------------------------------------------------

    def create_multipart_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutObject", params["Key"])
        key = _check_key(params["Key"])
        meta = self._object_meta(ctx, params, {})
        if params.get("ChecksumAlgorithm"):
            meta["ChecksumAlgorithm"] = str(params["ChecksumAlgorithm"]).upper()
        meta["Initiator"] = ctx.account_id
        upload_id = self._store.create_upload(bucket.name, key, _now(), meta)
        out: dict[str, Any] = {"Bucket": bucket.name, "Key": key, "UploadId": upload_id,
                               "ServerSideEncryption": "AES256"}
        if params.get("ChecksumAlgorithm"):
            out["ChecksumAlgorithm"] = meta["ChecksumAlgorithm"]
            out["ChecksumType"] = "COMPOSITE"
        return out

    def _upload(self, bucket: str, key: str, upload_id: str) -> dict[str, Any]:
        found = self._store.upload(upload_id)
        if found is None or found[0] != bucket or found[1] != key:
            raise errors.no_such_upload(upload_id)
        return found[3]

    async def upload_part(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutObject", params["Key"])
        number = _part_number(params.get("PartNumber"))
        self._upload(bucket.name, params["Key"], params["UploadId"])
        blob, _, size, md5, checksums = await self._receive_body(ctx, params)
        assert blob is not None  # parts are always files: a completed object is made of them
        etag = f'"{md5.hex()}"'
        self._install_part(params["UploadId"], Part(number, blob, size, etag, _now(), checksums))
        out: dict[str, Any] = {"ETag": etag, "ServerSideEncryption": "AES256"}
        for algorithm, value in checksums.items():
            out[f"Checksum{algorithm}"] = value
        return out

    def _install_part(self, upload_id: str, part: Part) -> None:
        try:
            replaced = self._store.put_part(upload_id, part)
        except BaseException:
            self._files.remove([part.blob])
            raise
        if replaced is None:
            self._files.remove([part.blob])
            raise errors.no_such_upload(upload_id)
        self._files.remove(replaced)

    async def upload_part_copy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutObject", params["Key"])
        number = _part_number(params.get("PartNumber"))
        self._upload(bucket.name, params["Key"], params["UploadId"])
        _, src = self._source(ctx, params["CopySource"])
        self._conditions(params, src, prefix="CopySource")
        start, end = 0, src.size
        if params.get("CopySourceRange"):
            m = re.fullmatch(r"bytes=(\d+)-(\d+)", params["CopySourceRange"].strip())
            if m is None:
                raise errors.invalid_argument("The x-amz-copy-source-range value must be of the form bytes=first-last "
                                              "where first and last are the zero-based offsets of the first and last "
                                              "bytes to copy", "x-amz-copy-source-range", params["CopySourceRange"])
            start, end = int(m.group(1)), int(m.group(2)) + 1
            if end > src.size or start >= end:
                raise errors.invalid_request("The specified copy range is invalid for the source object size")
        digests = BodyDigests(set())
        writer = self._files.writer()
        try:
            async for chunk in self._body(src, start, end):
                digests.update(chunk)
                writer.write(chunk)
            blob = await writer.commit()
        except BaseException:
            writer.discard()
            raise
        etag = f'"{digests.md5.hexdigest()}"'
        self._install_part(params["UploadId"], Part(number, blob, end - start, etag, _now(), {}))
        out: dict[str, Any] = {"CopyPartResult": {"ETag": etag, "LastModified": _dt(_now())}}
        if src.version_id != NULL_VERSION:
            out["CopySourceVersionId"] = src.version_id
        return out

    def complete_multipart_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._check_document(ctx)
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutObject", params["Key"])
        upload_id = params["UploadId"]
        meta = self._upload(bucket.name, params["Key"], upload_id)
        requested = (params.get("MultipartUpload") or {}).get("Parts") or []
        if not requested:
            raise errors.invalid_request("You must specify at least one part")
        stored = {p.number: p for p in self._store.parts(upload_id)}
        chosen: list[Part] = []
        previous = 0
        for item in requested:
            number = item.get("PartNumber") or 0
            if number <= previous:
                raise AwsError("InvalidPartOrder", "The list of parts was not in ascending order. Parts must be "
                                                   "ordered by part number.", 400, fields={"UploadId": upload_id})
            previous = number
            part = stored.get(number)
            etag = str(item.get("ETag") or "")
            if part is None or (etag.strip('"') != part.etag.strip('"')):
                raise AwsError("InvalidPart", "One or more of the specified parts could not be found.  The part may "
                                              "not have been uploaded, or the specified entity tag may not match the "
                                              "part's entity tag.", 400,
                               fields={"UploadId": upload_id, "PartNumber": number, "ETag": etag})
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < MIN_PART_SIZE:
                raise AwsError("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size", 400,
                               fields={"ProposedSize": part.size, "MinSizeAllowed": MIN_PART_SIZE,
                                       "PartNumber": part.number, "ETag": part.etag})
        etag = multipart_etag([bytes.fromhex(p.etag.strip('"')) for p in chosen])
        meta = dict(meta)
        meta.pop("Initiator", None)
        algorithm = meta.pop("ChecksumAlgorithm", None)
        meta["Parts"] = [p.size for p in chosen]
        if algorithm and all(algorithm in p.checksums for p in chosen):
            # COMPOSITE: the checksum of the parts' binary checksums, dash, the part count.
            composite = new_digest(algorithm)
            for p in chosen:
                composite.update(base64.b64decode(p.checksums[algorithm]))
            meta["Checksums"] = {algorithm: f"{base64.b64encode(composite.digest()).decode()}-{len(chosen)}"}
        size = sum(p.size for p in chosen)
        row = ObjectRow(bucket.name, params["Key"], "", True, False, [(p.blob, p.size) for p in chosen], size, etag,
                        _now(), meta)
        unused = [p.blob for n, p in stored.items() if all(c.number != n for c in chosen)]
        self._commit(ctx, bucket, row, "ObjectCreated:CompleteMultipartUpload", upload_id=upload_id)
        self._files.remove(unused)
        out: dict[str, Any] = {"Location": f"/{bucket.name}/{params['Key']}", "Bucket": bucket.name,
                               "Key": params["Key"], "ETag": etag, "ServerSideEncryption": "AES256"}
        if bucket.versioning:
            out["VersionId"] = row.version_id
        return out

    def abort_multipart_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:AbortMultipartUpload", params["Key"])
        self._upload(bucket.name, params["Key"], params["UploadId"])
        self._files.remove(self._store.abort_upload(params["UploadId"]))
        return {}

    def list_parts(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:ListMultipartUploadParts", params["Key"])
        meta = self._upload(bucket.name, params["Key"], params["UploadId"])
        marker = params.get("PartNumberMarker") or 0
        limit = min(params.get("MaxParts") or 1000, 1000)
        parts = [p for p in self._store.parts(params["UploadId"]) if p.number > marker]
        page = parts[:limit]
        out: dict[str, Any] = {
            "Bucket": bucket.name, "Key": params["Key"], "UploadId": params["UploadId"],
            "PartNumberMarker": marker, "MaxParts": limit, "IsTruncated": len(parts) > limit,
            "Parts": [{"PartNumber": p.number, "LastModified": _dt(p.last_modified), "ETag": p.etag, "Size": p.size,
                       **{f"Checksum{a}": v for a, v in p.checksums.items()}} for p in page] or None,
            "Initiator": {"ID": meta.get("Initiator", ""), "DisplayName": "webfile"},
            "Owner": _owner(bucket.account_id), "StorageClass": "STANDARD",
        }
        if page:
            out["NextPartNumberMarker"] = page[-1].number
        return out

    def list_multipart_uploads(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:ListBucketMultipartUploads")
        prefix = params.get("Prefix") or ""
        uploads = [u for u in self._store.uploads(bucket.name) if u[1].startswith(prefix)]
        limit = min(params.get("MaxUploads") or 1000, 1000)
        return {
            "Bucket": bucket.name, "KeyMarker": params.get("KeyMarker") or "",
            "UploadIdMarker": params.get("UploadIdMarker") or "", "MaxUploads": limit,
            "IsTruncated": len(uploads) > limit, **({"Prefix": prefix} if prefix else {}),
            "Uploads": [{"UploadId": uid, "Key": key, "Initiated": _dt(created), "StorageClass": "STANDARD",
                         "Owner": _owner(bucket.account_id),
                         "Initiator": {"ID": meta.get("Initiator", ""), "DisplayName": "webfile"}}
                        for uid, key, created, meta in uploads[:limit]] or None,
        }

    # -- CORS (browser requests; not API operations) ----------------------------------------------

    def has_bucket(self, name: str) -> bool:
        return self._store.bucket(name) is not None

    def _cors_rule(self, bucket_name: str, origin: str, method: str, headers: list[str]) -> dict[str, Any] | None:
        bucket = self._store.bucket(bucket_name)
        if bucket is None:
            return None
        for rule in (bucket.config.get("cors") or {}).get("CORSRules") or []:
            if not any(fnmatch.fnmatchcase(origin, o) for o in rule.get("AllowedOrigins") or []):
                continue
            if method not in (rule.get("AllowedMethods") or []):
                continue
            allowed = [h.lower() for h in rule.get("AllowedHeaders") or []]
            if all(any(fnmatch.fnmatchcase(h.lower(), a) for a in allowed) for h in headers):
                return dict(rule)
        return None

    def cors_preflight(self, bucket_name: str, headers: dict[str, str]) -> RawResponse:
        origin = headers.get("origin", "")
        method = headers.get("access-control-request-method", "")
        requested = [h.strip() for h in headers.get("access-control-request-headers", "").split(",") if h.strip()]
        bucket = self._store.bucket(bucket_name)
        if bucket is None:
            raise errors.no_such_bucket(bucket_name)
        if not origin or not method:
            raise AwsError("BadRequest", "Insufficient information. Origin request header needed.", 400)
        if not bucket.config.get("cors"):
            raise AwsError("CORSResponse", "CORS is not enabled for this bucket.", 403)
        rule = self._cors_rule(bucket_name, origin, method, requested)
        if rule is None:
            raise AwsError("CORSResponse", _CORS_DENIED, 403)
        out = _cors_headers(rule, origin)
        out["Access-Control-Allow-Methods"] = ", ".join(rule.get("AllowedMethods") or [])
        if requested:
            out["Access-Control-Allow-Headers"] = ", ".join(h.lower() for h in requested)
        if rule.get("MaxAgeSeconds") is not None:
            out["Access-Control-Max-Age"] = str(rule["MaxAgeSeconds"])
        return RawResponse(200, out, b"")

    def cors_headers(self, bucket_name: str, method: str, headers: dict[str, str]) -> dict[str, str]:
        origin = headers.get("origin", "")
        rule = self._cors_rule(bucket_name, origin, method, [])
        return _cors_headers(rule, origin) if rule is not None else {}

    # -- lifecycle expiration ---------------------------------------------------------------------

    def start(self) -> None:
        """Starts the lifecycle sweep (every LIFECYCLE_INTERVAL_S, and when a configuration changes)."""
        self._lifecycle_task = asyncio.get_running_loop().create_task(self._lifecycle_loop())

    async def close(self) -> None:
        if self._lifecycle_task is not None:
            self._lifecycle_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lifecycle_task
            self._lifecycle_task = None

    async def _lifecycle_loop(self) -> None:
        while True:
            self._lifecycle_wake.clear()
            try:
                self.expire_lifecycle(_now())
            except Exception:
                log.exception("s3 lifecycle sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lifecycle_wake.wait(), LIFECYCLE_INTERVAL_S)

    def expire_lifecycle(self, now: float) -> int:
        """Applies every enabled Expiration and AbortIncompleteMultipartUpload rule; returns how many
        objects expired. An object expires at the first midnight UTC after `Days` have passed since it
        was written (as AWS rounds), or once `Date` has come."""
        expired = 0
        ctx = RequestContext(service="s3", operation="LifecycleExpiration", region=self._region,
                             principal=LIFECYCLE_PRINCIPAL, request_id=str(uuid.uuid4()), source_ip="s3.amazonaws.com")
        for bucket in self._store.all_buckets():
            for rule in (bucket.config.get("lifecycle") or {}).get("Rules") or []:
                if rule.get("Status") != "Enabled":
                    continue
                prefix, tags = _rule_filter(rule)
                expiration = rule.get("Expiration") or {}
                cutoff_date = expiration.get("Date")
                days = expiration.get("Days")
                if cutoff_date is not None or days is not None:
                    for row in self._store.list_latest(bucket.name, prefix, "", 100_000):
                        if tags and not all(t in (row.meta.get("Tags") or []) for t in tags):
                            continue
                        if cutoff_date is not None:
                            due = datetime.fromisoformat(str(cutoff_date).replace("Z", "+00:00")).timestamp()
                        else:
                            due = _next_midnight(row.last_modified + int(days or 0) * 86400)
                        if now >= due:
                            self._expire(ctx, bucket, row)
                            expired += 1
                abort = (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")
                if abort is not None:
                    for upload_id, key, created, _ in self._store.uploads(bucket.name):
                        if key.startswith(prefix) and now >= _next_midnight(created + int(abort) * 86400):
                            self._files.remove(self._store.abort_upload(upload_id))
        return expired

    def _expire(self, ctx: RequestContext, bucket: Bucket, row: ObjectRow) -> None:
        if not bucket.versioning:
            freed = self._store.delete_version(bucket.name, row.key, row.version_id,
                                               lambda r: self._events(ctx, bucket, "LifecycleExpiration:Delete", r))
            self._files.remove(freed)
        else:
            marker = ObjectRow(bucket.name, row.key, "", True, True, [], 0, "", _now(), {})
            self._commit(ctx, bucket, marker, "LifecycleExpiration:DeleteMarkerCreated")
        if bucket.config.get("notification"):
            self._dispatcher.notify()


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _rule_filter(rule: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
    """(prefix, tags) a lifecycle rule applies to."""
    filt = rule.get("Filter") or {}
    both = filt.get("And") or {}
    prefix = filt.get("Prefix") or both.get("Prefix") or rule.get("Prefix") or ""
    tags = [filt["Tag"]] if filt.get("Tag") else list(both.get("Tags") or [])
    return str(prefix), tags


def _next_midnight(ts: float) -> float:
    day = 86400
    return (int(ts) // day + (0 if int(ts) % day == 0 else 1)) * day


def _cors_headers(rule: dict[str, Any], origin: str) -> dict[str, str]:
    wildcard = "*" in (rule.get("AllowedOrigins") or [])
    out = {"Access-Control-Allow-Origin": "*" if wildcard else origin,
           "Vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"}
    if not wildcard:
        out["Access-Control-Allow-Credentials"] = "true"
    if rule.get("ExposeHeaders"):
        out["Access-Control-Expose-Headers"] = ", ".join(rule["ExposeHeaders"])
    out["Access-Control-Allow-Methods"] = ", ".join(rule.get("AllowedMethods") or [])
    return out


def _owner(account_id: str) -> dict[str, str]:
    return {"ID": account_id, "DisplayName": "webfile"}


def _config_id() -> str:
    return uuid.uuid4().hex


def _encoding(params: dict[str, Any]) -> bool:
    value = params.get("EncodingType")
    if value is None:
        return False
    if value != "url":
        raise errors.invalid_argument("Invalid Encoding Method specified in Request", "encoding-type", value)
    return True


def _check_key(key: str) -> str:
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise AwsError("KeyTooLongError", "Your key is too long", 400,
                       fields={"MaxSizeAllowed": MAX_KEY_BYTES, "Size": size})
    return key


def _part_number(value: Any) -> int:
    if not isinstance(value, int) or not 1 <= value <= MAX_PARTS:
        raise errors.invalid_argument("Part number must be an integer between 1 and 10000, inclusive", "partNumber",
                                      str(value))
    return value


def _parse_tagging(text: str) -> list[dict[str, str]]:
    tags = [{"Key": k, "Value": v} for k, v in parse_qsl(text, keep_blank_values=True)]
    if len({t["Key"] for t in tags}) != len(tags):
        raise errors.invalid_argument("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL "
                                      "query parameters without tag name duplicates.", "x-amz-tagging", text)
    _check_tags(tags)
    return tags


def _check_tags(tags: list[dict[str, str]]) -> None:
    keys = [t.get("Key", "") for t in tags]
    if len(set(keys)) != len(keys):
        raise AwsError("InvalidTag", "Cannot provide multiple Tags with the same key", 400)
    for key in keys:
        if key.startswith("aws:"):
            raise AwsError("InvalidTag", "Your TagKey cannot be prefixed with aws:", 400)
        if not key or len(key) > 128:
            raise AwsError("InvalidTag", "The TagKey you have provided is invalid", 400)


def _principal_matches(principal: Any, account_id: str) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        values = principal.get("AWS")
        if values is None:
            return False
        if isinstance(values, str):
            values = [values]
        for value in values:
            if value == "*" or (account_id and (value == account_id
                                                or value == f"arn:aws:iam::{account_id}:root")):
                return True
    return False


def _any_match(patterns: Any, value: str) -> bool:
    if isinstance(patterns, str):
        patterns = [patterns]
    return any(fnmatch.fnmatchcase(value, p) for p in patterns or [])


def _write_result(row: ObjectRow, bucket: Bucket, checksums: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"ETag": row.etag, "ServerSideEncryption": "AES256"}
    if bucket.versioning:
        out["VersionId"] = row.version_id
    for algorithm, value in checksums.items():
        out[f"Checksum{algorithm}"] = value
    if checksums:
        out["ChecksumType"] = "FULL_OBJECT"
    return out



