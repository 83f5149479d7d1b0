"""Lambda's own request checks, beyond what botocore's model lets the protocol layer check.

It owns the business limits AWS enforces in the Lambda service itself (runtimes it still accepts,
reserved environment variables, the 4 KB environment limit, MemorySize above 10240, request and
archive sizes) and their exact AWS texts. It never stores anything and never looks functions up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hearth.aws.errors import ValidationError
from hearth.functions import errors

CREATE_REQUEST_LIMIT = 70_167_211  # bytes of a CreateFunction/UpdateFunctionCode request
ZIPPED_LIMIT = 52_428_800
ENV_LIMIT = 4096
MAX_TAGS = 50
NAME_LIMIT = 64

# What AWS accepts in CreateFunction today, in the order AWS prints in its error message.
SUPPORTED_RUNTIMES: tuple[str, ...] = (
    "nodejs20.x",
    "python3.14",
    "provided.al2023",
    "python3.12",
    "python3.13",
    "nodejs24.x",
    "nodejs22.x",
    "java25",
    "python3.10",
    "python3.11",
    "java21",
    "ruby3.3",
    "ruby3.4",
    "ruby3.2",
    "python3.8",
    "python3.9",
    "java17",
    "nodejs16.x",
    "dotnet10",
    "dotnet8",
    "java11",
    "dotnet6",
    "nodejs18.x",
    "provided.al2",
    "java8.al2",
)
# Announced in botocore's model after that list was recorded: accepted, not advertised.
NEWER_RUNTIMES = frozenset(
    {"nodejs26.x", "python3.15", "ruby4.0", "java8.al2023", "java11.al2023", "java17.al2023"}
)
# Runtimes AWS refuses for creates and updates with its deprecation message.
DEPRECATED_RUNTIMES = frozenset(
    {
        "nodejs",
        "nodejs4.3",
        "nodejs4.3-edge",
        "nodejs6.10",
        "nodejs8.10",
        "nodejs10.x",
        "nodejs12.x",
        "nodejs14.x",
        "java8",
        "python2.7",
        "python3.6",
        "python3.7",
        "dotnetcore1.0",
        "dotnetcore2.0",
        "dotnetcore2.1",
        "dotnetcore3.1",
        "go1.x",
        "ruby2.5",
        "ruby2.7",
        "provided",
    }
)
# Variables the Lambda service sets itself; AWS refuses them in Environment.Variables.
# (AWS_LAMBDA_EXEC_WRAPPER and other AWS_LAMBDA_* knobs are user-settable on AWS, so no prefix rule.)
RESERVED_ENV_KEYS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


_ENV_PREFIX = (
    "Lambda was unable to configure your environment variables because the environment variables "
    "you have provided"
)


def check_runtime(runtime: str) -> None:
    if runtime in DEPRECATED_RUNTIMES:
        raise errors.invalid_parameter(
            f"The runtime parameter of {runtime} is no longer supported for creating or updating AWS Lambda "
            "functions. We recommend you use a supported runtime while creating or updating functions."
        )
    if runtime not in SUPPORTED_RUNTIMES and runtime not in NEWER_RUNTIMES:
        raise errors.invalid_parameter(
            f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: "
            f"[{', '.join(SUPPORTED_RUNTIMES)}] or be a valid ARN"
        )


def check_environment(variables: Mapping[str, str]) -> None:
    reserved = [k for k in variables if k in RESERVED_ENV_KEYS]
    if reserved:
        raise errors.invalid_parameter(
            f"{_ENV_PREFIX} contains reserved keys that are currently not supported for modification. "
            f"Reserved keys used in this request: {', '.join(reserved)}"
        )
    measured = json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False)
    if len(measured.encode()) > ENV_LIMIT:
        raise errors.invalid_parameter(f"{_ENV_PREFIX} exceeded the 4KB limit. String measured: {measured}")


def _max_error(value: int, member: str, limit: int) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: Member must have value less than or equal to {limit}"
    )


def check_limits(params: Mapping[str, Any]) -> None:
    """Ranges where AWS's service is stricter than the published model (which allows more)."""
    memory = params.get("MemorySize")
    if memory is not None and memory > 10240:
        raise _max_error(memory, "memorySize", 10240)
    timeout = params.get("Timeout")
    if timeout is not None and timeout > 900:
        raise _max_error(timeout, "timeout", 900)
    ephemeral = (params.get("EphemeralStorage") or {}).get("Size")
    if ephemeral is not None and ephemeral > 10240:
        raise _max_error(ephemeral, "ephemeralStorage.size", 10240)


def check_create_name(name: str) -> None:
    if len(name) > NAME_LIMIT:
        raise errors.invalid_parameter(
            f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: "
            f"Member must have length less than or equal to {NAME_LIMIT}"
        )


def check_request_size(raw_body: bytes, operation: str) -> None:
    if len(raw_body) > CREATE_REQUEST_LIMIT:
        raise errors.too_large(
            f"Request must be smaller than {CREATE_REQUEST_LIMIT} bytes for the {operation} operation"
        )


def check_zipped_size(zip_file: bytes) -> None:
    if len(zip_file) > ZIPPED_LIMIT:
        raise errors.too_large(f"Zipped size must be smaller than {ZIPPED_LIMIT} bytes")


def check_code_source(code: Mapping[str, Any]) -> bytes:
    """The ZipFile of a Code structure (or of UpdateFunctionCode's parameters)."""
    if code.get("ImageUri"):
        raise errors.invalid_parameter(
            "Container image functions are not supported by Hearth yet; deploy a .zip archive (ZipFile)."
        )
    if code.get("S3Bucket") or code.get("S3Key"):  # without an object store (code_source reads S3 otherwise)
        raise errors.invalid_parameter("Code from S3Bucket/S3Key needs Hearth's S3 service; upload the archive "
                                       "with ZipFile instead.")
    zip_file = code.get("ZipFile")
    if not zip_file:
        raise errors.invalid_parameter("Please provide a source for function code.")
    # The 50 MB zipped limit is the limit of a direct upload; an archive from S3 is bounded by its
    # unzipped size only, as AWS.
    check_zipped_size(zip_file)
    return bytes(zip_file)


def check_tags(count: int) -> None:
    """`count`: how many distinct keys the function would carry."""
    if count > MAX_TAGS:
        raise errors.invalid_parameter("Number of tags exceeds resource tag limit.")


def _snap_start_runtime(runtime: str) -> bool:
    # AWS: Java 11 and later, Python 3.12 and later, .NET 8 and later.
    for family, first in (("python3.", 12), ("java", 11), ("dotnet", 8)):
        if runtime.startswith(family):
            number = runtime[len(family):].split(".")[0]
            return number.isdigit() and int(number) >= first
    return False


def check_snap_start(apply_on: str, runtime: str) -> None:
    """SnapStart only on the runtimes AWS offers it for, with AWS's message."""
    if apply_on == "PublishedVersions" and not _snap_start_runtime(runtime):
        raise errors.invalid_parameter(f"{runtime} is not supported for SnapStart enabled functions.")
