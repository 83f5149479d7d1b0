"""Resource-based policies through boto3: another account is denied, then allowed by AddPermission."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.integration.harness import ACCOUNT, OTHER_ACCOUNT, HearthServer, create_function

pytestmark = pytest.mark.integration

APP = "def handler(event, context):\n    return {'hello': event.get('who'), 'arn': context.invoked_function_arn}\n"


def test_cross_account_denied_then_allowed(server: HearthServer) -> None:
    lam = server.client("lambda")
    other = server.client("lambda", account=OTHER_ACCOUNT)
    name = "shared-fn"
    create_function(lam, name, {"app.py": APP})
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"

    with pytest.raises(ClientError) as exc:
        other.invoke(FunctionName=arn, Payload=b"{}")
    err = exc.value.response["Error"]
    assert (err["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDeniedException", 403)
    assert err["Message"] == (
        f"User: arn:aws:iam::{OTHER_ACCOUNT}:root is not authorized to perform: lambda:InvokeFunction on "
        f"resource: {arn} because no resource-based policy allows the lambda:InvokeFunction action"
    )

    added = lam.add_permission(FunctionName=name, StatementId="other-invoke", Action="lambda:InvokeFunction",
                               Principal=OTHER_ACCOUNT)
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(added["Statement"])["Principal"] == {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}
    resp = other.invoke(FunctionName=arn, Payload=json.dumps({"who": "other"}))
    assert resp["StatusCode"] == 200 and json.loads(resp["Payload"].read())["hello"] == "other"

    with pytest.raises(ClientError) as exc:  # invoking does not grant reading
        other.get_function_configuration(FunctionName=arn)
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    lam.add_permission(FunctionName=name, StatementId="other-read", Action="lambda:GetFunctionConfiguration",
                       Principal=f"arn:aws:iam::{OTHER_ACCOUNT}:root")
    assert other.get_function_configuration(FunctionName=arn)["FunctionArn"] == arn
    with pytest.raises(ClientError):  # nor managing it
        other.delete_function(FunctionName=arn)

    policy = lam.get_policy(FunctionName=name)
    assert [s["Sid"] for s in json.loads(policy["Policy"])["Statement"]] == ["other-invoke", "other-read"]
    lam.remove_permission(FunctionName=name, StatementId="other-invoke", RevisionId=policy["RevisionId"])
    with pytest.raises(ClientError) as exc:
        other.invoke(FunctionName=arn, Payload=b"{}")
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"

    cli = server.aws("lambda", "get-policy", "--function-name", name)
    assert "other-read" in json.loads(cli.stdout)["Policy"]
    lam.delete_function(FunctionName=name)
