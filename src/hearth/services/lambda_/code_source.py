"""Where a function's or layer's deployment package comes from: an inline ZipFile, or an object in
Hearth's S3 (`S3Bucket`/`S3Key`/`S3ObjectVersion`).

It owns reading the archive from S3 on the caller's behalf and AWS's answer when it cannot
("Error occurred while GetObject. S3 Error Code: NoSuchKey. ..."). It never unpacks the archive.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hearth.aws.errors import AwsError
from hearth.functions import errors
from hearth.services.lambda_ import validation
from hearth.store.blobs import MSG_UNZIPPED_SIZE, UNZIPPED_LIMIT

# The largest archive read from S3: AWS bounds an S3 package by its unzipped size only, and a stored
# (uncompressed) archive is its content plus headers, so allow the unzipped limit plus room for them;
# the unzipped size itself is checked afterwards from the archive's directory.
S3_ARCHIVE_LIMIT = UNZIPPED_LIMIT + 16 * 1024 * 1024

# (account, bucket, key, version or None, size limit) -> the object's bytes; raises AwsError as S3 does.
S3Reader = Callable[[str, str, str, str | None, int], Awaitable[bytes]]


async def package(code: Mapping[str, Any], account_id: str, s3: S3Reader | None) -> bytes:
    """The zip archive a Code/Content structure (or UpdateFunctionCode's parameters) names."""
    bucket, key = code.get("S3Bucket"), code.get("S3Key")
    if (bucket or key) and s3 is not None and not code.get("ZipFile") and not code.get("ImageUri"):
        if not bucket or not key:
            raise errors.invalid_parameter("Please provide a source for function code.")
        try:
            return await s3(account_id, str(bucket), str(key), code.get("S3ObjectVersion"), S3_ARCHIVE_LIMIT)
        except AwsError as err:
            if err.code == "EntityTooLarge":
                raise errors.invalid_parameter(MSG_UNZIPPED_SIZE) from None
            raise errors.invalid_parameter(
                f"Error occurred while GetObject. S3 Error Code: {err.code}. S3 Error Message: {err.message}"
            ) from None
    return validation.check_code_source(code)
