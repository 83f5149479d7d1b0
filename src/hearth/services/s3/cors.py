"""CORS as browsers see it: the preflight answer (OPTIONS) and the headers added to actual
requests, from the bucket's CORSConfiguration. Not API operations: the S3 front calls them."""

from __future__ import annotations

import fnmatch
from typing import Any

from hearth.aws.errors import AwsError
from hearth.services.base import RawResponse
from hearth.services.s3 import errors
from hearth.services.s3.core import S3Core
from hearth.services.s3.rules import (
    CORS_DENIED,
    cors_response_headers,
)


class CorsOps(S3Core):
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
            raise AwsError("CORSResponse", CORS_DENIED, 403)
        out = cors_response_headers(rule, origin)
        out["Access-Control-Allow-Methods"] = ", ".join(rule.get("AllowedMethods") or [])
        if requested:
            out["Access-Control-Allow-Headers"] = ", ".join(h.lower() for h in requested)
        if rule.get("MaxAgeSeconds") is not None:
            out["Access-Control-Max-Age"] = str(rule["MaxAgeSeconds"])
        return RawResponse(200, out, b"")

    def cors_headers(self, bucket_name: str, method: str, headers: dict[str, str]) -> dict[str, str]:
        origin = headers.get("origin", "")
        rule = self._cors_rule(bucket_name, origin, method, [])
        return cors_response_headers(rule, origin) if rule is not None else {}
