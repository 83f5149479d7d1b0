"""S3's errors, with the codes, statuses and texts AWS answers (reference/aws-recorded/10_s3_error_catalog)."""

from __future__ import annotations

from hearth.aws.errors import AwsError


def no_such_bucket(bucket: str) -> AwsError:
    return AwsError("NoSuchBucket", "The specified bucket does not exist", 404, fields={"BucketName": bucket})


def no_such_key(key: str) -> AwsError:
    return AwsError("NoSuchKey", "The specified key does not exist.", 404, fields={"Key": key})


def no_such_version(key: str, version_id: str) -> AwsError:
    return AwsError("NoSuchVersion", "The specified version does not exist.", 404,
                    fields={"Key": key, "VersionId": version_id})


def no_such_upload(upload_id: str) -> AwsError:
    return AwsError("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the "
                                    "upload may have been aborted or completed.", 404, fields={"UploadId": upload_id})


def access_denied() -> AwsError:
    return AwsError("AccessDenied", "Access Denied", 403)


def invalid_argument(message: str, name: str | None = None, value: str | None = None) -> AwsError:
    fields = {"ArgumentName": name, "ArgumentValue": value} if name is not None else {}
    return AwsError("InvalidArgument", message, 400, fields=fields)


def invalid_request(message: str) -> AwsError:
    return AwsError("InvalidRequest", message, 400)


def malformed_xml() -> AwsError:
    return AwsError("MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                                    "published schema", 400)


def precondition_failed(condition: str) -> AwsError:
    return AwsError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412,
                    fields={"Condition": condition})


def not_modified() -> AwsError:
    return AwsError("NotModified", "Not Modified", 304)
