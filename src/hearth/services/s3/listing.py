"""Listings: ListObjectsV2 and V1 (prefix, delimiter and common prefixes, max-keys, continuation,
start-after, encoding-type=url) and ListObjectVersions."""

from __future__ import annotations

from typing import Any

from hearth.aws.context import RequestContext
from hearth.services.s3.core import S3Core
from hearth.services.s3.rules import (
    continuation_token,
    from_continuation_token,
    owner_of,
    url_encoded,
    url_encoding_requested,
    utc,
)
from hearth.services.s3.store import Bucket, ObjectRow


class ListingOps(S3Core):
    def list_objects_v2(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:ListBucket")
        url = url_encoding_requested(params)
        after = params.get("StartAfter") or ""
        if params.get("ContinuationToken"):
            after = from_continuation_token(params["ContinuationToken"])
        keys, prefixes, last, truncated = self._scan(bucket, params, after)
        out: dict[str, Any] = {
            "Name": bucket.name, "Prefix": url_encoded(params.get("Prefix") or "", url),
            "MaxKeys": params.get("MaxKeys", 1000), "KeyCount": len(keys) + len(prefixes), "IsTruncated": truncated,
            "Contents": [self._entry(r, url, owner=bool(params.get("FetchOwner"))) for r in keys] or None,
            "CommonPrefixes": [{"Prefix": url_encoded(p, url)} for p in prefixes] or None,
        }
        if params.get("Delimiter"):
            out["Delimiter"] = url_encoded(params["Delimiter"], url)
        if url:
            out["EncodingType"] = "url"
        if params.get("ContinuationToken"):
            out["ContinuationToken"] = params["ContinuationToken"]
        if params.get("StartAfter"):
            out["StartAfter"] = url_encoded(params["StartAfter"], url)
        if truncated and last is not None:
            out["NextContinuationToken"] = continuation_token(last)
        return out

    def list_objects(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:ListBucket")
        url = url_encoding_requested(params)
        keys, prefixes, last, truncated = self._scan(bucket, params, params.get("Marker") or "")
        out: dict[str, Any] = {
            "Name": bucket.name, "Prefix": url_encoded(params.get("Prefix") or "", url),
            "Marker": url_encoded(params.get("Marker") or "", url), "MaxKeys": params.get("MaxKeys", 1000),
            "IsTruncated": truncated,
            "Contents": [self._entry(r, url, owner=True) for r in keys] or None,
            "CommonPrefixes": [{"Prefix": url_encoded(p, url)} for p in prefixes] or None,
        }
        if params.get("Delimiter"):
            out["Delimiter"] = url_encoded(params["Delimiter"], url)
            if truncated and last is not None:
                out["NextMarker"] = url_encoded(last, url)
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
        entry: dict[str, Any] = {"Key": url_encoded(row.key, url), "LastModified": utc(row.last_modified),
                                 "ETag": row.etag, "Size": row.size,
                                 "StorageClass": row.meta.get("StorageClass", "STANDARD")}
        if row.meta.get("Checksums"):
            entry["ChecksumAlgorithm"] = sorted(row.meta["Checksums"])
            entry["ChecksumType"] = "COMPOSITE" if row.meta.get("Parts") else "FULL_OBJECT"
        if owner:
            entry["Owner"] = owner_of(row.meta.get("Owner", ""))
        return entry

    def list_object_versions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:ListBucketVersions")
        url = url_encoding_requested(params)
        prefix = params.get("Prefix") or ""
        limit = min(params.get("MaxKeys") or 1000, 1000)
        rows = self._store.list_versions(bucket.name, prefix, params.get("KeyMarker") or "", limit + 1)
        truncated = len(rows) > limit
        rows = rows[:limit]
        versions, markers = [], []
        for row in rows:
            entry = {"Key": url_encoded(row.key, url), "VersionId": row.version_id, "IsLatest": row.is_latest,
                     "LastModified": utc(row.last_modified), "Owner": owner_of(bucket.account_id)}
            if row.delete_marker:
                markers.append(entry)
            else:
                version: dict[str, Any] = {**entry, "ETag": row.etag, "Size": row.size, "StorageClass": "STANDARD"}
                if row.meta.get("Checksums"):
                    version["ChecksumAlgorithm"] = sorted(row.meta["Checksums"])
                    version["ChecksumType"] = "COMPOSITE" if row.meta.get("Parts") else "FULL_OBJECT"
                versions.append(version)
        out: dict[str, Any] = {"Name": bucket.name, "Prefix": url_encoded(prefix, url),
                               "KeyMarker": params.get("KeyMarker") or "",
                               "VersionIdMarker": params.get("VersionIdMarker") or "", "MaxKeys": limit,
                               "IsTruncated": truncated, "Versions": versions or None,
                               "DeleteMarkers": markers or None}
        if truncated and rows:
            out["NextKeyMarker"] = url_encoded(rows[-1].key, url)
            out["NextVersionIdMarker"] = rows[-1].version_id
        if url:
            out["EncodingType"] = "url"
        return out
