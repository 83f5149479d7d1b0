"""Function references as callers write them."""

from __future__ import annotations

import pytest

from hearth.functions.names import (
    FunctionRef,
    InvalidFunctionRef,
    function_arn,
    parse_function_ref,
    role_session_name,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fn", FunctionRef("fn")),
        ("fn:$LATEST", FunctionRef("fn", "$LATEST")),
        ("fn:prod", FunctionRef("fn", "prod")),
        ("123456789012:function:fn", FunctionRef("fn", None, "123456789012")),
        ("123456789012:function:fn:7", FunctionRef("fn", "7", "123456789012")),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:fn",
            FunctionRef("fn", None, "123456789012", "us-east-1"),
        ),
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:fn:$LATEST",
            FunctionRef("fn", "$LATEST", "123456789012", "eu-west-1"),
        ),
        # AWS reads an ARN that stops after "function" as a function named "function".
        (
            "arn:aws:lambda:us-east-1:123456789012:function",
            FunctionRef("function", None, "123456789012", "us-east-1"),
        ),
    ],
)
def test_parse(text: str, expected: FunctionRef) -> None:
    assert parse_function_ref(text) == expected


@pytest.mark.parametrize("text", ["my-function!", "*", "a:b:c:d:e", ""])
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidFunctionRef):
        parse_function_ref(text)


def test_arn() -> None:
    assert (
        function_arn("us-east-1", "000000000000", "f") == "arn:aws:lambda:us-east-1:000000000000:function:f"
    )
    assert function_arn("us-east-1", "000000000000", "f", "$LATEST").endswith(":function:f:$LATEST")


def test_role_session_name() -> None:
    # A role session name needs two characters: AWS suffixes a one-character function's (test_assume_role[1]).
    assert (role_session_name("f"), role_session_name("fn")) == ("f@lambda_function", "fn")
