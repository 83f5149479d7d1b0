"""Request-metrics configurations of a bucket (Put/Get/Delete/ListBucketMetricsConfiguration).

It owns storing them (the bucket's config item "metrics", by Id) and listing them a hundred at a
time, ordered by Id. It never produces metrics: no CloudWatch data is emitted for them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.s3 import errors
from hearth.services.s3.core import S3Core

PAGE = 100  # AWS lists metrics configurations a hundred at a time


def _no_such_configuration() -> AwsError:
    return AwsError("NoSuchConfiguration", "The specified configuration does not exist.", 404)


class MetricsOps(S3Core):

    def put_bucket_metrics_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutMetricsConfiguration")
        config = dict(params.get("MetricsConfiguration") or {})
        if config.get("Id") != params["Id"]:
            raise errors.invalid_argument("Document ID does not match the specified configuration ID.", "id",
                                          str(params["Id"]))
        configs = {**(bucket.config.get("metrics") or {}), params["Id"]: config}
        return self._set(ctx, params, "metrics", configs, "s3:PutMetricsConfiguration")

    def get_bucket_metrics_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        configs = self._get(ctx, params, "metrics", "s3:GetMetricsConfiguration") or {}
        if params["Id"] not in configs:
            raise _no_such_configuration()
        return {"MetricsConfiguration": configs[params["Id"]]}

    def delete_bucket_metrics_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutMetricsConfiguration")
        configs = dict(bucket.config.get("metrics") or {})
        if configs.pop(params["Id"], None) is None:
            raise _no_such_configuration()
        self._store.set_config(bucket.name, "metrics", configs)
        return {}

    def list_bucket_metrics_configurations(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        configs = self._get(ctx, params, "metrics", "s3:GetMetricsConfiguration") or {}
        token = params.get("ContinuationToken")
        after = ""
        if token:
            try:
                after = base64.urlsafe_b64decode(token.encode()).decode()
            except (binascii.Error, ValueError) as exc:
                raise errors.invalid_argument("The continuation token provided is incorrect",
                                              "continuation-token", token) from exc
        ids = sorted(i for i in configs if i > after)
        page = ids[:PAGE]
        out: dict[str, Any] = {"IsTruncated": len(ids) > PAGE}
        if page:
            out["MetricsConfigurationList"] = [configs[i] for i in page]
        if token:
            out["ContinuationToken"] = token
        if len(ids) > PAGE:
            out["NextContinuationToken"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
        return out
