"""S3's rules that need no state: bucket names, byte ranges, tags, continuation tokens, key
encoding in listings, lifecycle dates, bucket policy matching, CORS answer headers. It never reads
or writes the store."""

from __future__ import annotations

import base64
import fnmatch
import ipaddress
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote_plus

from hearth.aws.context import Principal
from hearth.aws.errors import AwsError
from hearth.services.s3 import errors
from hearth.services.s3.store import Bucket, ObjectRow

MAX_KEY_BYTES = 1024
# Bodies up to this size are kept in the metadata row: a small PUT is one database commit instead of
# a file write, two fsyncs and a rename.
INLINE_LIMIT = 64 * 1024
LIFECYCLE_INTERVAL_S = 60.0
LIFECYCLE_PRINCIPAL = Principal("", "")  # expirations are S3's own doing: the event names no requester
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
BUCKET_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
CONTENT_MEMBERS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl",
                   "Expires", "WebsiteRedirectLocation")
RESPONSE_OVERRIDES = {"ResponseContentType": "ContentType", "ResponseContentLanguage": "ContentLanguage",
                      "ResponseExpires": "Expires", "ResponseCacheControl": "CacheControl",
                      "ResponseContentDisposition": "ContentDisposition",
                      "ResponseContentEncoding": "ContentEncoding"}
CORS_DENIED = ("This CORS request is not allowed. This is usually because the evalution of Origin, request method / "
                "Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the "
                "resource's CORS spec.")
DEFAULT_ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                                 "BucketKeyEnabled": False}]}

# Lets notification configuration check that a function's policy allows S3 (arn, principal, source arn,
# source account) -> allowed.
ServiceAllows = Callable[[str, str, str | None, str | None], bool]


def wall_clock() -> float:
    return time.time()


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def valid_bucket_name(name: str) -> bool:
    if not BUCKET_NAME_PATTERN.fullmatch(name) or ".." in name or ".-" in name or "-." in name:
        return False
    try:
        ipaddress.ip_address(name)
        return False
    except ValueError:
        return True


def parse_range(header: str, size: int) -> tuple[int, int] | None:
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
                raise invalid_range(header, size)
            return max(0, size - n), size
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if end <= start - 0 and last:
        return None
    if start >= size:
        raise invalid_range(header, size)
    return start, min(end, size)


def invalid_range(header: str, size: int) -> AwsError:
    return AwsError("InvalidRange", "The requested range is not satisfiable", 416,
                    fields={"RangeRequested": header, "ActualObjectSize": size})


def url_encoded(value: str | None, url: bool) -> str | None:
    return quote_plus(value, safe="/") if (url and value is not None) else value


def continuation_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def from_continuation_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise errors.invalid_argument("The continuation token provided is incorrect", "continuation-token",
                                      token) from None


async def single_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def rule_filter(rule: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
    """(prefix, tags) a lifecycle rule applies to."""
    filt = rule.get("Filter") or {}
    both = filt.get("And") or {}
    prefix = filt.get("Prefix") or both.get("Prefix") or rule.get("Prefix") or ""
    tags = [filt["Tag"]] if filt.get("Tag") else list(both.get("Tags") or [])
    return str(prefix), tags


def size_matches(rule: dict[str, Any], size: int) -> bool:
    """A lifecycle rule's ObjectSizeGreaterThan / ObjectSizeLessThan bounds (exclusive) admit `size`."""
    filt = rule.get("Filter") or {}
    both = filt.get("And") or {}
    above = filt.get("ObjectSizeGreaterThan", both.get("ObjectSizeGreaterThan"))
    below = filt.get("ObjectSizeLessThan", both.get("ObjectSizeLessThan"))
    return (above is None or size > int(above)) and (below is None or size < int(below))


def next_midnight(ts: float) -> float:
    day = 86400
    return (int(ts) // day + (0 if int(ts) % day == 0 else 1)) * day


def cors_response_headers(rule: dict[str, Any], origin: str) -> dict[str, str]:
    wildcard = "*" in (rule.get("AllowedOrigins") or [])
    out = {"Access-Control-Allow-Origin": "*" if wildcard else origin,
           "Vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"}
    if not wildcard:
        out["Access-Control-Allow-Credentials"] = "true"
    if rule.get("ExposeHeaders"):
        out["Access-Control-Expose-Headers"] = ", ".join(rule["ExposeHeaders"])
    out["Access-Control-Allow-Methods"] = ", ".join(rule.get("AllowedMethods") or [])
    return out


def owner_of(account_id: str) -> dict[str, str]:
    return {"ID": account_id}  # AWS no longer returns DisplayName


def new_config_id() -> str:
    return uuid.uuid4().hex


def url_encoding_requested(params: dict[str, Any]) -> bool:
    value = params.get("EncodingType")
    if value is None:
        return False
    if value != "url":
        raise errors.invalid_argument("Invalid Encoding Method specified in Request", "encoding-type", value)
    return True


def check_key(key: str) -> str:
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise AwsError("KeyTooLongError", "Your key is too long", 400,
                       fields={"MaxSizeAllowed": MAX_KEY_BYTES, "Size": size})
    return key


def check_part_number(value: Any) -> int:
    if not isinstance(value, int) or not 1 <= value <= MAX_PARTS:
        raise errors.invalid_argument("Part number must be an integer between 1 and 10000, inclusive", "partNumber",
                                      str(value))
    return value


def parse_tagging(text: str) -> list[dict[str, str]]:
    tags = [{"Key": k, "Value": v} for k, v in parse_qsl(text, keep_blank_values=True)]
    if len({t["Key"] for t in tags}) != len(tags):
        raise errors.invalid_argument("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL "
                                      "query parameters without tag name duplicates.", "x-amz-tagging", text)
    check_tags(tags)
    return tags


def check_tags(tags: list[dict[str, str]]) -> None:
    keys = [t.get("Key", "") for t in tags]
    if len(set(keys)) != len(keys):
        raise AwsError("InvalidTag", "Cannot provide multiple Tags with the same key", 400)
    for key in keys:
        if key.startswith("aws:"):
            raise AwsError("InvalidTag", "Your TagKey cannot be prefixed with aws:", 400)
        if not key or len(key) > 128:
            raise AwsError("InvalidTag", "The TagKey you have provided is invalid", 400)


def principal_matches(principal: Any, account_id: str) -> bool:
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


def any_match(patterns: Any, value: str) -> bool:
    if isinstance(patterns, str):
        patterns = [patterns]
    return any(fnmatch.fnmatchcase(value, p) for p in patterns or [])


def expiration_header(bucket: Bucket, row: ObjectRow) -> str | None:
    """x-amz-expiration of an object an enabled Expiration rule applies to: when it will expire (the
    same rounding as the sweep) and which rule says so."""
    for rule in (bucket.config.get("lifecycle") or {}).get("Rules") or []:
        expiration = rule.get("Expiration") or {}
        if rule.get("Status") != "Enabled" or (expiration.get("Days") is None and expiration.get("Date") is None):
            continue
        prefix, tags = rule_filter(rule)
        if not row.key.startswith(prefix) or not all(t in (row.meta.get("Tags") or []) for t in tags):
            continue
        if not size_matches(rule, row.size):
            continue
        if expiration.get("Date") is not None:
            due = datetime.fromisoformat(str(expiration["Date"]).replace("Z", "+00:00")).timestamp()
        else:
            due = next_midnight(row.last_modified + int(expiration["Days"]) * 86400)
        when = datetime.fromtimestamp(due, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
        return f'expiry-date="{when}", rule-id="{rule.get("ID", "")}"'
    return None


def write_result(row: ObjectRow, bucket: Bucket, checksums: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"ETag": row.etag, "ServerSideEncryption": "AES256"}
    expiration = expiration_header(bucket, row)
    if expiration is not None:
        out["Expiration"] = expiration
    if bucket.versioning:
        out["VersionId"] = row.version_id
    for algorithm, value in checksums.items():
        out[f"Checksum{algorithm}"] = value
    if checksums:
        out["ChecksumType"] = "FULL_OBJECT"
    return out
