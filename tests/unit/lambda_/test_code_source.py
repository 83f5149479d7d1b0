"""Where a deployment package comes from: the zipped limit is a direct upload's, S3's is its unzipped size."""

from __future__ import annotations

import pytest

from hearth.aws.errors import AwsError
from hearth.functions import errors
from hearth.services.lambda_ import code_source
from hearth.services.lambda_.validation import ZIPPED_LIMIT
from hearth.store.blobs import MSG_UNZIPPED_SIZE, UNZIPPED_LIMIT


async def test_s3_archives_may_exceed_the_direct_upload_limit() -> None:
    asked: list[int] = []

    async def s3(account: str, bucket: str, key: str, version: str | None, limit: int) -> bytes:
        asked.append(limit)
        if limit < ZIPPED_LIMIT + 1:
            raise AwsError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", 400)
        return b"archive"

    code = {"S3Bucket": "b", "S3Key": "k"}
    assert await code_source.package(code, "000000000000", s3) == b"archive"
    assert asked[0] >= UNZIPPED_LIMIT  # LocalStack's test_large_lambda: a 250 MB stored archive from S3


async def test_an_s3_archive_over_the_limit_is_answered_as_aws() -> None:
    async def s3(account: str, bucket: str, key: str, version: str | None, limit: int) -> bytes:
        raise AwsError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", 400)

    with pytest.raises(errors.InvalidParameter) as exc:
        await code_source.package({"S3Bucket": "b", "S3Key": "k"}, "000000000000", s3)
    assert exc.value.message == MSG_UNZIPPED_SIZE  # test_oversized_unzipped_lambda


async def test_a_direct_upload_keeps_the_zipped_limit() -> None:
    with pytest.raises(errors.TooLarge) as exc:
        await code_source.package({"ZipFile": b"x" * (ZIPPED_LIMIT + 1)}, "000000000000", None)
    assert exc.value.message == f"Zipped size must be smaller than {ZIPPED_LIMIT} bytes"
