"""Execution roles for the command line and the benchmarks: a role Lambda may assume, made if missing.

Hearth checks, as AWS does, that a function's role exists and trusts lambda.amazonaws.com; this is the
one place the CLI (`hearth deploy`'s default role) and the benchmarks make such a role. It never
changes a role that exists.
"""

from __future__ import annotations

import json
from typing import Any

LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
ADMINISTRATOR = "arn:aws:iam::aws:policy/AdministratorAccess"


def ensure_execution_role(iam: Any, name: str, policy_arn: str = BASIC_EXECUTION) -> str:
    """The ARN of role `name`, created (trusting Lambda, with `policy_arn` attached) if it does not exist."""
    from botocore.exceptions import ClientError

    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
            raise
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST,
                              Description="Made by Hearth: a function execution role")["Role"]["Arn"])
    iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    return arn
