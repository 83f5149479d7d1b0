"""Function names and ARNs: parsing what callers pass as `FunctionName`, and building ARNs.

It owns the grammar AWS accepts for a function reference (a name, `name:qualifier`, a partial ARN
`123456789012:function:name`, a full ARN, each with an optional qualifier) and the ARN spelling.
It never looks anything up and never decides whether a caller may see the function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LATEST = "$LATEST"

# The same grammar as botocore's NamespacedFunctionName pattern, with named groups.
_REF = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso[a-z]?))?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9-_.]+)"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
)


@dataclass(frozen=True)
class FunctionRef:
    """A parsed function reference; `account`/`region`/`qualifier` are None when not given."""

    name: str
    qualifier: str | None = None
    account: str | None = None
    region: str | None = None


class InvalidFunctionRef(ValueError):
    """The text is not a function name or ARN (the protocol layer normally refuses it first)."""


def parse_function_ref(text: str) -> FunctionRef:
    """Split a FunctionName parameter into its parts.

    >>> parse_function_ref("arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST")
    FunctionRef(name='f', qualifier='$LATEST', account='000000000000', region='us-east-1')
    """
    match = _REF.fullmatch(text)
    if match is None:
        raise InvalidFunctionRef(text)
    return FunctionRef(match["name"], match["qualifier"], match["account"], match["region"])


def function_arn(region: str, account: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def runtime_version_arn(region: str, runtime: str) -> str:
    """A stable RuntimeVersionArn for a runtime id (AWS shows one per runtime build)."""
    import hashlib

    digest = hashlib.sha256(f"hearth:{runtime}".encode()).hexdigest()
    return f"arn:aws:lambda:{region}::runtime:{digest}"


def role_session_name(function_name: str) -> str:
    """The session name of the role session a function's environments run with: the function's name,
    as AWS, except that a role session name needs two characters, so a one-character name gets AWS's
    `@lambda_function` suffix (`f@lambda_function`)."""
    return function_name if len(function_name) >= 2 else f"{function_name}@lambda_function"
