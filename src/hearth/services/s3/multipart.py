"""Multipart uploads: create, upload part (streamed), upload part copy, complete (AWS's part-size
rules and multipart ETag; the parts' files become the object's segments, never copied), abort,
list parts, list uploads."""

from __future__ import annotations

import base64
import re
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.s3 import errors
from hearth.services.s3.checksums import (
    BodyDigests,
    multipart_etag,
    new_digest,
)
from hearth.services.s3.core import S3Core
from hearth.services.s3.rules import (
    MIN_PART_SIZE,
    check_key,
    check_part_number,
    owner_of,
    utc,
    wall_clock,
)
from hearth.services.s3.store import NULL_VERSION, ObjectRow, Part


class MultipartOps(S3Core):

    def create_multipart_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutObject", params["Key"])
        key = check_key(params["Key"])
        meta = self._object_meta(ctx, params, {})
        if params.get("ChecksumAlgorithm"):
            meta["ChecksumAlgorithm"] = str(params["ChecksumAlgorithm"]).upper()
            # CRC64NVME exists only as a whole-object checksum; the others default to COMPOSITE.
            default = "FULL_OBJECT" if meta["ChecksumAlgorithm"] == "CRC64NVME" else "COMPOSITE"
            meta["ChecksumType"] = str(params.get("ChecksumType") or default).upper()
        meta["Initiator"] = ctx.account_id
        upload_id = self._store.create_upload(bucket.name, key, wall_clock(), meta)
        out: dict[str, Any] = {"Bucket": bucket.name, "Key": key, "UploadId": upload_id,
                               "ServerSideEncryption": "AES256"}
        if params.get("ChecksumAlgorithm"):
            out["ChecksumAlgorithm"] = meta["ChecksumAlgorithm"]
            out["ChecksumType"] = meta["ChecksumType"]
        return out

    def _upload(self, bucket: str, key: str, upload_id: str) -> dict[str, Any]:
        found = self._store.upload(upload_id)
        if found is None or found[0] != bucket or found[1] != key:
            raise errors.no_such_upload(upload_id)
        return found[3]

    async def upload_part(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutObject", params["Key"])
        number = check_part_number(params.get("PartNumber"))
        self._upload(bucket.name, params["Key"], params["UploadId"])
        blob, _, size, md5, checksums = await self._receive_body(ctx, params)
        assert blob is not None  # parts are always files: a completed object is made of them
        etag = f'"{md5.hex()}"'
        self._install_part(params["UploadId"], Part(number, blob, size, etag, wall_clock(), checksums))
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
        number = check_part_number(params.get("PartNumber"))
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
        self._install_part(params["UploadId"], Part(number, blob, end - start, etag, wall_clock(), {}))
        out: dict[str, Any] = {"CopyPartResult": {"ETag": etag, "LastModified": utc(wall_clock())},
                               "ServerSideEncryption": "AES256"}
        if src.version_id != NULL_VERSION:
            out["CopySourceVersionId"] = src.version_id
        return out

    def complete_multipart_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._check_document(ctx)
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutObject", params["Key"])
        upload_id = params["UploadId"]
        meta = self._upload(bucket.name, params["Key"], upload_id)
        self._write_conditions(bucket, params["Key"], params)
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
            self._check_part_checksum(meta, item, part, upload_id)
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
        checksum_type = meta.pop("ChecksumType", "COMPOSITE")
        meta["Parts"] = [p.size for p in chosen]
        # A FULL_OBJECT checksum would need the parts' CRCs combined: not computed (none is stored).
        if algorithm and checksum_type == "COMPOSITE" and all(algorithm in p.checksums for p in chosen):
            # COMPOSITE: the checksum of the parts' binary checksums, dash, the part count.
            composite = new_digest(algorithm)
            for p in chosen:
                composite.update(base64.b64decode(p.checksums[algorithm]))
            meta["Checksums"] = {algorithm: f"{base64.b64encode(composite.digest()).decode()}-{len(chosen)}"}
            meta["PartChecksums"] = [{algorithm: p.checksums[algorithm]} for p in chosen]  # GetObjectAttributes
        size = sum(p.size for p in chosen)
        row = ObjectRow(bucket.name, params["Key"], "", True, False, [(p.blob, p.size) for p in chosen], size, etag,
                        wall_clock(), meta)
        unused = [p.blob for n, p in stored.items() if all(c.number != n for c in chosen)]
        self._commit(ctx, bucket, row, "ObjectCreated:CompleteMultipartUpload", upload_id=upload_id)
        self._files.remove(unused)
        out: dict[str, Any] = {"Location": f"/{bucket.name}/{params['Key']}", "Bucket": bucket.name,
                               "Key": params["Key"], "ETag": etag, "ServerSideEncryption": "AES256"}
        for name, value in (meta.get("Checksums") or {}).items():
            out[f"Checksum{name}"] = value
            out["ChecksumType"] = "COMPOSITE"
        if bucket.versioning:
            out["VersionId"] = row.version_id
        return out

    @staticmethod
    def _check_part_checksum(meta: dict[str, Any], item: dict[str, Any], part: Part, upload_id: str) -> None:
        """A COMPOSITE upload's completion names each part's checksum, and it must be the one stored."""
        algorithm = meta.get("ChecksumAlgorithm")
        if not algorithm or meta.get("ChecksumType") != "COMPOSITE":
            return
        given = item.get(f"Checksum{algorithm}")
        if not given:
            raise errors.invalid_request(f"The upload was created using a {algorithm.lower()} checksum. The complete "
                                         f"request must include the checksum for each part. It was missing for part "
                                         f"{part.number} in the request.")
        if given != part.checksums.get(algorithm):
            raise AwsError("InvalidPart", "One or more of the specified parts could not be found.  The part may not "
                                          "have been uploaded, or the specified entity tag may not match the part's "
                                          "entity tag.", 400,
                           fields={"UploadId": upload_id, "PartNumber": part.number, "ETag": part.etag.strip('"')})

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
            "Parts": [{"PartNumber": p.number, "LastModified": utc(p.last_modified), "ETag": p.etag, "Size": p.size,
                       **({f"Checksum{a}": v for a, v in p.checksums.items()} if meta.get("ChecksumAlgorithm")
                          else {})} for p in page] or None,
            "Initiator": {"ID": meta.get("Initiator", ""), "DisplayName": "webfile"},
            "Owner": owner_of(bucket.account_id), "StorageClass": "STANDARD",
        }
        if page:
            out["NextPartNumberMarker"] = page[-1].number
        return out

    def list_multipart_uploads(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:ListBucketMultipartUploads")
        prefix = params.get("Prefix") or ""
        delimiter = params.get("Delimiter") or ""
        uploads, prefixes = [], []
        for upload in self._store.uploads(bucket.name):
            key = upload[1]
            if not key.startswith(prefix):
                continue
            at = key.find(delimiter, len(prefix)) if delimiter else -1
            if at >= 0:
                common = key[:at + len(delimiter)]
                if common not in prefixes:
                    prefixes.append(common)
                continue
            uploads.append(upload)
        limit = min(params.get("MaxUploads") or 1000, 1000)
        out: dict[str, Any] = {
            "Bucket": bucket.name, "KeyMarker": params.get("KeyMarker") or "",
            "UploadIdMarker": params.get("UploadIdMarker") or "", "MaxUploads": limit,
            "IsTruncated": len(uploads) > limit, **({"Prefix": prefix} if prefix else {}),
            "Uploads": [{"UploadId": uid, "Key": key, "Initiated": utc(created), "StorageClass": "STANDARD",
                         "Owner": owner_of(bucket.account_id),
                         "Initiator": {"ID": meta.get("Initiator", ""), "DisplayName": "webfile"}}
                        for uid, key, created, meta in uploads[:limit]] or None,
            "CommonPrefixes": [{"Prefix": p} for p in prefixes] or None,
        }
        if delimiter:
            out["Delimiter"] = delimiter
        return out
