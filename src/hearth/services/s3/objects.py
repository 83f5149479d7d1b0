"""Object operations: put (streamed, conditional), get (ranges, conditions, response-* overrides),
head, delete (versions and delete markers), DeleteObjects, CopyObject (metadata and tagging
directives, conditional copy), object tagging."""

from __future__ import annotations

import json
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.s3 import errors
from hearth.services.s3.checksums import (
    ALGORITHMS,
    checksum_type,
)
from hearth.services.s3.core import S3Core
from hearth.services.s3.rules import (
    check_key,
    check_tags,
    parse_range,
    parse_tagging,
    utc,
    wall_clock,
    write_result,
)
from hearth.services.s3.store import NULL_VERSION, ObjectRow


class ObjectOps(S3Core):

    async def put_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutObject", params["Key"])
        key = check_key(params["Key"])
        self._write_conditions(bucket, key, params)
        blob, inline, size, md5, checksums = await self._receive_body(ctx, params, inline=True)
        meta = self._object_meta(ctx, params, checksums)
        row = ObjectRow(bucket.name, key, "", True, False, [(blob, size)] if blob else [], size, f'"{md5.hex()}"',
                        wall_clock(), meta, inline=inline)
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
        return write_result(row, bucket, checksums)

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
            out["ContentRange"] = f"bytes {start}-{end - 1}/{row.size}"  # a part is answered as 206
        elif params.get("Range"):
            found = parse_range(params["Range"], row.size)
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

    def head_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket, row = self._object(ctx, params, "s3:GetObject")
        self._conditions(params, row)
        out = self._describe(bucket, row, params)
        if params.get("PartNumber") is not None:
            start, end = self._part_bounds(row, params["PartNumber"])
            out["ContentLength"] = end - start
        elif params.get("Range"):
            found = parse_range(params["Range"], row.size)
            if found is not None:
                out["ContentLength"] = found[1] - found[0]
                out["ContentRange"] = f"bytes {found[0]}-{found[1] - 1}/{row.size}"
        return out

    def delete_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:DeleteObject", params["Key"])
        return self._delete(ctx, bucket, params["Key"], params.get("VersionId"))

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
                if err.code == "InvalidArgument" and obj.get("VersionId"):  # DeleteObjects names it so
                    err = errors.no_such_version(key, obj["VersionId"])
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

    def copy_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutObject", params["Key"])
        key = check_key(params["Key"])
        self._write_conditions(bucket, key, params)
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
            meta["Tags"] = parse_tagging(params.get("Tagging") or "")
        elif directive == "REPLACE":
            meta["Tags"] = src.meta.get("Tags") or []
        if src.meta.get("Parts"):
            meta["Parts"] = src.meta["Parts"]
        segments = [(self._files.link(blob), size) for blob, size in src.segments]
        row = ObjectRow(bucket.name, key, "", True, False, segments, src.size, src.etag, wall_clock(), meta,
                        inline=src.inline)
        try:
            self._commit(ctx, bucket, row, "ObjectCreated:Copy")
        except BaseException:
            self._files.remove([b for b, _ in segments])
            raise
        result: dict[str, Any] = {"ETag": row.etag, "LastModified": utc(row.last_modified)}
        checksums = row.meta.get("Checksums") or {}
        if checksums:
            result["ChecksumType"] = checksum_type(row.meta)
            for algorithm, value in checksums.items():
                result[f"Checksum{algorithm}"] = value
        out: dict[str, Any] = {"CopyObjectResult": result, "ServerSideEncryption": "AES256"}
        if bucket.versioning:
            out["VersionId"] = row.version_id
        if src.version_id != NULL_VERSION:
            out["CopySourceVersionId"] = src.version_id
        return out


    def get_object_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """Only the attributes asked for; the ETag unquoted (as AWS answers it here), the storage
        class always named, and a multipart object's parts listed only when they carry checksums
        (a COMPOSITE checksum), else just counted."""
        bucket, row = self._object(ctx, params, "s3:GetObjectAttributes")
        self._conditions(params, row)
        wanted = set(params.get("ObjectAttributes") or [])
        out: dict[str, Any] = {"LastModified": utc(row.last_modified)}
        if row.version_id != NULL_VERSION or bucket.versioning:
            out["VersionId"] = row.version_id
        if "ETag" in wanted:
            out["ETag"] = row.etag.strip('"')
        if "StorageClass" in wanted:
            out["StorageClass"] = row.meta.get("StorageClass") or "STANDARD"
        if "ObjectSize" in wanted:
            out["ObjectSize"] = row.size
        checksums = row.meta.get("Checksums") or {}
        if "Checksum" in wanted and checksums:
            checksum: dict[str, Any] = {f"Checksum{a}": v for a, v in checksums.items()}
            checksum["ChecksumType"] = checksum_type(row.meta)
            out["Checksum"] = checksum
        sizes = row.meta.get("Parts")
        if "ObjectParts" in wanted and sizes:
            parts: dict[str, Any] = {"TotalPartsCount": len(sizes)}
            part_checksums = row.meta.get("PartChecksums")
            if part_checksums and checksum_type(row.meta) == "COMPOSITE":
                marker = params.get("PartNumberMarker") or 0
                limit = params.get("MaxParts") or 1000
                numbered = [(n + 1, size, part_checksums[n]) for n, size in enumerate(sizes) if n + 1 > marker]
                page = numbered[:limit]
                parts.update({"PartNumberMarker": marker, "MaxParts": limit, "IsTruncated": len(numbered) > limit,
                              "Parts": [{"PartNumber": n, "Size": size, **{f"Checksum{a}": v for a, v in c.items()}}
                                        for n, size, c in page]})
                if page:
                    parts["NextPartNumberMarker"] = page[-1][0]
            out["ObjectParts"] = parts
        return out


    def get_object_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        _, row = self._object(ctx, params, "s3:GetObjectTagging", on_marker="MethodNotAllowed")
        out: dict[str, Any] = {"TagSet": row.meta.get("Tags") or []}
        if row.version_id != NULL_VERSION:
            out["VersionId"] = row.version_id
        return out

    def put_object_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._check_document(ctx)
        tags = (params.get("Tagging") or {}).get("TagSet") or []
        check_tags(tags)
        return self._retag(ctx, params, tags)

    def delete_object_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._retag(ctx, params, [])

    def _retag(self, ctx: RequestContext, params: dict[str, Any], tags: list[dict[str, str]]) -> dict[str, Any]:
        bucket, row = self._object(ctx, params, "s3:PutObjectTagging", on_marker="MethodNotAllowed")
        with self._store.db.tx() as db:
            meta = dict(row.meta)
            meta["Tags"] = tags
            db.execute("UPDATE s3_objects SET meta = ? WHERE bucket = ? AND key = ? AND version_id = ?",
                       (json.dumps(meta), bucket.name, row.key, row.version_id))
        return {"VersionId": row.version_id} if row.version_id != NULL_VERSION else {}
