"""Bucket operations: create (names, location constraints), head, delete (only when empty), list,
location, and the stored configurations (tagging, versioning, encryption, CORS, policy, lifecycle,
ACL, notifications with their target checks and s3:TestEvent)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.s3 import errors
from hearth.services.s3.core import S3Core
from hearth.services.s3.notifications import (
    EVENT_NAMES,
    KINDS,
    test_event,
)
from hearth.services.s3.rules import (
    DEFAULT_ENCRYPTION,
    check_tags,
    new_config_id,
    owner_of,
    utc,
    valid_bucket_name,
    wall_clock,
)
from hearth.services.s3.store import Outgoing


class BucketOps(S3Core):

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
        existing = self._store.create_bucket(name, ctx.account_id, region, wall_clock())
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
        return {"Location": f"/{name}", "BucketArn": f"arn:aws:s3:::{name}"}

    def head_bucket(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:ListBucket")
        return {"BucketRegion": bucket.region, "AccessPointAlias": False, "BucketArn": f"arn:aws:s3:::{bucket.name}"}

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
        return {"Buckets": [{"Name": b.name, "CreationDate": utc(b.created), "BucketRegion": b.region}
                            for b in buckets],
                "Owner": owner_of(ctx.account_id), **({"Prefix": prefix} if prefix else {})}

    def get_bucket_location(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:GetBucketLocation")
        return {"LocationConstraint": None if bucket.region == "us-east-1" else bucket.region}

    def put_bucket_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        tags = (params.get("Tagging") or {}).get("TagSet") or []
        check_tags(tags)
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
        if not config.get("Rules"):
            raise errors.malformed_xml()
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
        # configurations stored before the setting existed have AWS's default
        return {"TransitionDefaultMinimumObjectSize": "all_storage_classes_128K", **config}

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
        minimum = params.get("TransitionDefaultMinimumObjectSize") or "all_storage_classes_128K"
        if minimum not in ("all_storage_classes_128K", "varies_by_storage_class"):
            raise errors.invalid_request(f"Invalid TransitionDefaultMinimumObjectSize found: {minimum}")
        self._set(ctx, params, "lifecycle", {**config, "TransitionDefaultMinimumObjectSize": minimum},
                  "s3:PutLifecycleConfiguration")
        self._lifecycle_wake.set()  # a rule may apply at once (a Date in the past)
        return {"TransitionDefaultMinimumObjectSize": minimum}

    def get_bucket_lifecycle_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        config = self._get(ctx, params, "lifecycle", "s3:GetLifecycleConfiguration")
        if not config:
            raise AwsError("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist", 404,
                           fields={"BucketName": params["Bucket"]})
        # configurations stored before the setting existed have AWS's default
        return {"TransitionDefaultMinimumObjectSize": "all_storage_classes_128K", **config}

    def delete_bucket_lifecycle(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set(ctx, params, "lifecycle", None, "s3:PutLifecycleConfiguration")



    def put_bucket_notification_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._check_document(ctx)
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutBucketNotification")
        if ctx.account_id != bucket.account_id:
            raise errors.access_denied()
        config = params.get("NotificationConfiguration") or {}
        failed: list[str] = []
        tests: list[Outgoing] = []
        body = test_event(bucket.name, wall_clock(), ctx.request_id)
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
                item.setdefault("Id", new_config_id())
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

    def put_bucket_ownership_controls(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set(ctx, params, "ownership", params.get("OwnershipControls") or {},
                         "s3:PutBucketOwnershipControls")

    def get_bucket_ownership_controls(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        config = self._get(ctx, params, "ownership", "s3:GetBucketOwnershipControls")
        if not config:
            raise AwsError("OwnershipControlsNotFoundError", "The bucket ownership controls were not found", 404,
                           fields={"BucketName": params["Bucket"]})
        return {"OwnershipControls": config}

    def delete_bucket_ownership_controls(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set(ctx, params, "ownership", None, "s3:PutBucketOwnershipControls")

    def put_public_access_block(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set(ctx, params, "public_access_block", params.get("PublicAccessBlockConfiguration") or {},
                         "s3:PutBucketPublicAccessBlock")

    def get_public_access_block(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        config = self._get(ctx, params, "public_access_block", "s3:GetBucketPublicAccessBlock")
        if not config:
            raise AwsError("NoSuchPublicAccessBlockConfiguration",
                           "The public access block configuration was not found", 404,
                           fields={"BucketName": params["Bucket"]})
        return {"PublicAccessBlockConfiguration": config}

    def delete_public_access_block(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set(ctx, params, "public_access_block", None, "s3:PutBucketPublicAccessBlock")
