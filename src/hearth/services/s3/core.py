"""What every S3 operation shares: the collaborators (metadata store, body files, notification
dispatcher), who may act on a bucket (its owner, or whom its policy allows), streaming a request body
to a durable file with its digests checked, reading an object and its conditions, and committing a
new version together with its notifications (group-committed for concurrent PUTs). Operations live
in the sibling modules; `provider.S3Provider` puts them together. It never parses HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from hearth.aws.body_stream import BodyStream
from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.s3 import errors
from hearth.services.s3.checksums import (
    ALGORITHMS,
    BodyDigests,
    check_checksums,
    check_declared,
    check_md5,
    expected_md5,
)
from hearth.services.s3.files import ObjectFiles
from hearth.services.s3.notifications import (
    Dispatcher,
    config_id,
    eventbridge_event,
    outgoing,
    record,
    targets,
)
from hearth.services.s3.rules import (
    CONTENT_MEMBERS,
    INLINE_LIMIT,
    RESPONSE_OVERRIDES,
    ServiceAllows,
    any_match,
    expiration_header,
    parse_tagging,
    principal_matches,
    single_chunk,
    utc,
    wall_clock,
)
from hearth.services.s3.store import NULL_VERSION, Bucket, ObjectRow, Outgoing, S3Store


class S3Core:
    def __init__(self, store: S3Store, files: ObjectFiles, dispatcher: Dispatcher, *, region: str,
                 service_allows: ServiceAllows, sweep_gate: Callable[[], bool] | None = None) -> None:
        self._store = store
        # In a cluster: whether this node runs the lifecycle sweep now (it holds the lease); None: always.
        self._sweep_gate = sweep_gate
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
            if not isinstance(st, dict) or not principal_matches(st.get("Principal"), ctx.account_id):
                continue
            if not any_match(st.get("Action"), action) or not any_match(st.get("Resource"), resource):
                continue
            if st.get("Effect") == "Deny":
                return False
            if st.get("Effect") == "Allow":
                allowed = True
        return allowed

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

    async def _receive_body(self, ctx: RequestContext, params: dict[str, Any], *, inline: bool = False,
                            ) -> tuple[str | None, bytes | None, int, bytes, dict[str, str]]:
        """Streams the request body to a durable file: (blob id, None, size, MD5, checksums); with
        `inline`, a body of at most INLINE_LIMIT bytes is returned instead: (None, bytes, ...)."""
        expected = expected_md5(params.get("ContentMD5"))
        declared = {a: params[f"Checksum{a}"] for a in ALGORITHMS if params.get(f"Checksum{a}")}
        for algorithm, value in declared.items():  # a malformed value is refused before the body is read
            check_declared(algorithm, value)
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
            chunks: AsyncIterable[bytes] = body if isinstance(body, BodyStream) else single_chunk(bytes(body or b""))
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
            return single_chunk(row.inline[start:end])
        return self._files.read(row.segments, start, end)

    def _object_meta(self, ctx: RequestContext, params: dict[str, Any], checksums: dict[str, str]) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        for member in CONTENT_MEMBERS:
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
            meta["Tags"] = parse_tagging(params["Tagging"])
        if checksums:
            meta["Checksums"] = checksums
        meta["StorageClass"] = params.get("StorageClass") or "STANDARD"
        return meta

    def _object(self, ctx: RequestContext, params: dict[str, Any], action: str, *,
                on_marker: str = "NoSuchKey") -> tuple[Bucket, ObjectRow]:
        """The addressed version; a delete marker answers NoSuchKey (reads of the latest), or
        MethodNotAllowed (a version addressed by id, and sub-resources such as tagging)."""
        bucket = self._bucket(ctx, params["Bucket"], action, params["Key"])
        version = params.get("VersionId")
        row = self._store.get(bucket.name, params["Key"], version)
        if row is None:
            if version is not None:
                raise errors.no_such_version(params["Key"], version)
            raise errors.no_such_key(params["Key"])
        if row.delete_marker:
            if version is not None or on_marker == "MethodNotAllowed":
                raise AwsError("MethodNotAllowed", "The specified method is not allowed against this resource.",
                               405, headers={"x-amz-delete-marker": "true", "x-amz-version-id": row.version_id},
                               fields={"Method": _http_method(ctx.operation), "ResourceType": "DeleteMarker"})
            raise AwsError("NoSuchKey", "The specified key does not exist.", 404, fields={"Key": params["Key"]},
                           headers={"x-amz-delete-marker": "true", "x-amz-version-id": row.version_id})
        return bucket, row

    def _write_conditions(self, bucket: Bucket, key: str, params: dict[str, Any]) -> None:
        """A conditional write's If-None-Match (only `*`: the key must not exist) and If-Match (the
        current version's ETag), checked before the body is read."""
        none_match, if_match = params.get("IfNoneMatch"), params.get("IfMatch")
        if none_match is None and if_match is None:
            return
        if none_match is not None and none_match != "*":
            raise AwsError("NotImplemented", "A header you provided implies functionality that is not implemented",
                           501, fields={"Header": "If-None-Match"})
        current = self._store.get(bucket.name, key)
        exists = current is not None and not current.delete_marker
        if none_match == "*" and exists:
            raise errors.precondition_failed("If-None-Match")
        if if_match is not None:
            if current is None or not exists:
                raise errors.no_such_key(key)
            if if_match.strip() != "*" and if_match.strip('"') != current.etag.strip('"'):
                raise errors.precondition_failed("If-Match")

    def _conditions(self, params: dict[str, Any], row: ObjectRow, prefix: str = "") -> None:
        modified = int(row.last_modified)
        header = "x-amz-copy-source-" if prefix else ""  # how the failed condition is named
        if_match = params.get(f"{prefix}IfMatch")
        if if_match is not None and if_match.strip() not in ("*", row.etag) and f'"{if_match}"' != row.etag:
            raise errors.precondition_failed(f"{header}If-Match")
        unmodified = params.get(f"{prefix}IfUnmodifiedSince")
        if if_match is None and unmodified is not None and modified > unmodified.timestamp():
            raise errors.precondition_failed(f"{header}If-Unmodified-Since")
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
            "AcceptRanges": "bytes", "LastModified": utc(row.last_modified), "ContentLength": row.size,
            "ETag": row.etag, "Metadata": meta.get("Metadata") or {}, "ServerSideEncryption": "AES256",
        }
        for member in CONTENT_MEMBERS:
            if meta.get(member) is not None:
                out[member] = utc(meta[member]) if member == "Expires" else meta[member]
        if row.version_id != NULL_VERSION or bucket.versioning:
            out["VersionId"] = row.version_id
        if meta.get("Tags"):
            out["TagCount"] = len(meta["Tags"])
        expiration = expiration_header(bucket, row)
        if expiration is not None:
            out["Expiration"] = expiration
        if meta.get("StorageClass", "STANDARD") != "STANDARD":
            out["StorageClass"] = meta["StorageClass"]
        if str(params.get("ChecksumMode") or "").upper() == "ENABLED":  # AWS ignores its case
            for algorithm, value in (meta.get("Checksums") or {}).items():
                out[f"Checksum{algorithm}"] = value
            if meta.get("Checksums"):
                out["ChecksumType"] = "COMPOSITE" if meta.get("Parts") else "FULL_OBJECT"
        if meta.get("Parts"):
            out["PartsCount"] = len(meta["Parts"])
        for override, member in RESPONSE_OVERRIDES.items():
            if params.get(override) is not None:
                value = params[override]
                out[member] = value
        return out

    @staticmethod
    def _part_bounds(row: ObjectRow, number: int) -> tuple[int, int]:
        sizes = row.meta.get("Parts") or [row.size]
        if not 1 <= number <= len(sizes):
            raise AwsError("InvalidPartNumber", "The requested partnumber is not satisfiable", 416,
                           fields={"PartNumberRequested": number, "ActualPartCount": len(sizes)})
        start = sum(sizes[:number - 1])
        return start, start + sizes[number - 1]

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
        marker = ObjectRow(bucket.name, key, "", True, True, [], 0, "", wall_clock(), {})
        self._commit(ctx, bucket, marker, "ObjectRemoved:DeleteMarkerCreated")
        return {"DeleteMarker": True, "VersionId": marker.version_id}

    def _source(self, ctx: RequestContext, copy_source: str) -> tuple[Bucket, ObjectRow]:
        source = copy_source.lstrip("/")
        path, _, query = source.partition("?")
        src_bucket, _, src_key = unquote(path).partition("/")
        if not src_bucket or not src_key:
            raise errors.invalid_argument("Invalid copy source object key", "x-amz-copy-source", copy_source)
        version = dict(parse_qsl(query)).get("versionId")
        params = {"Bucket": src_bucket, "Key": src_key, **({"VersionId": version} if version else {})}
        return self._object(ctx, params, "s3:GetObject")


    def has_bucket(self, name: str) -> bool:
        return self._store.bucket(name) is not None


def _http_method(operation: str) -> str:
    for prefix, method in (("Put", "PUT"), ("Delete", "DELETE"), ("Head", "HEAD"), ("Post", "POST")):
        if operation.startswith(prefix):
            return method
    return "GET"
