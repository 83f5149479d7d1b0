"""Resource-based policies: AddPermission/RemovePermission/GetPolicy shapes and errors, and the
cross-account decisions they drive (invoke, read, URL auth, service principals)."""

from __future__ import annotations

import json

import pytest
from tests.unit.lambda_.helpers import ACCOUNT, OTHER, Env, ctx

from hearth.aws.errors import AwsError
from hearth.functions.errors import FunctionsError
from hearth.services.lambda_.errors import to_aws

ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function"
REGION = "us-east-1"


def err(exc: pytest.ExceptionInfo[AwsError] | pytest.ExceptionInfo[FunctionsError]) -> tuple[str, str, int]:
    """(code, message, status) as the caller sees it (a domain error as the Lambda providers map it)."""
    value = exc.value if isinstance(exc.value, AwsError) else to_aws(exc.value)
    return value.code, value.message, value.status


def add(env: Env, name: str, sid: str, principal: str, **extra: str) -> dict[str, object]:
    params = {"FunctionName": name, "StatementId": sid, "Action": "lambda:InvokeFunction", "Principal": principal}
    params.update(extra)
    return env.policies.add_permission(ctx(), params)


async def ready(env: Env, name: str = "fn") -> None:
    await env.create(name)
    await env.settle()


async def test_statement_and_policy_documents(env: Env) -> None:
    await ready(env)
    out = add(env, "fn", "sns", "sns.amazonaws.com", SourceArn="arn:aws:sns:us-east-1:000000000000:t",
              SourceAccount=ACCOUNT)
    assert json.loads(str(out["Statement"])) == {
        "Sid": "sns", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "lambda:InvokeFunction", "Resource": f"{ARN}:fn",
        "Condition": {"StringEquals": {"AWS:SourceAccount": ACCOUNT},
                      "ArnLike": {"AWS:SourceArn": "arn:aws:sns:us-east-1:000000000000:t"}},
    }
    add(env, "fn", "acct", OTHER)
    add(env, "fn", "url", "*", FunctionUrlAuthType="NONE")
    got = env.policies.get_policy(ctx(), {"FunctionName": "fn"})
    doc = json.loads(got["Policy"])
    assert (doc["Version"], doc["Id"]) == ("2012-10-17", "default")
    assert [s["Sid"] for s in doc["Statement"]] == ["sns", "acct", "url"]
    assert doc["Statement"][1]["Principal"] == {"AWS": f"arn:aws:iam::{OTHER}:root"}
    assert doc["Statement"][2]["Principal"] == "*"
    assert doc["Statement"][2]["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}
    env.policies.remove_permission(ctx(), {"FunctionName": "fn", "StatementId": "acct",
                                           "RevisionId": got["RevisionId"]})
    after = env.policies.get_policy(ctx(), {"FunctionName": "fn"})
    assert after["RevisionId"] != got["RevisionId"]
    assert [s["Sid"] for s in json.loads(after["Policy"])["Statement"]] == ["sns", "url"]


async def test_permission_errors_as_recorded(env: Env) -> None:
    await ready(env)
    cases = [
        (lambda: add(env, "fn", "s", "*", Qualifier="$LATEST"),
         ("InvalidParameterValueException", "We currently do not support adding policies for $LATEST.", 400)),
        (lambda: add(env, "fn", "s", "not a principal!"),
         ("InvalidParameterValueException",
          "The provided principal was invalid. Please check the principal and try again.", 400)),
        (lambda: env.policies.get_policy(ctx(), {"FunctionName": "doesnotexist"}),
         ("ResourceNotFoundException", "The resource you requested does not exist.", 404)),
        (lambda: env.policies.get_policy(ctx(), {"FunctionName": "fn", "Qualifier": "42"}),
         ("ResourceNotFoundException", "The resource you requested does not exist.", 404)),
        (lambda: add(env, "doesnotexist", "s", "*"),
         ("ResourceNotFoundException", f"Function not found: {ARN}:doesnotexist", 404)),
        (lambda: env.policies.remove_permission(ctx(), {"FunctionName": "fn", "StatementId": "s"}),
         ("ResourceNotFoundException", "No policy is associated with the given resource.", 404)),
        (lambda: add(env, "fn", "s", "*", Qualifier="alias-doesnotexist"),
         ("ResourceNotFoundException", f"Cannot find alias arn: {ARN}:fn:alias-doesnotexist", 404)),
        (lambda: add(env, "fn", "s", "*", Qualifier="42"),
         ("ResourceNotFoundException", f"Function not found: {ARN}:fn:42", 404)),
        (lambda: add(env, "fn", "s", "*", Qualifier="valid-with-$-but-doesnotexist"),
         ("ResourceNotFoundException", f"Function not found: {ARN}:fn:valid-with-$-but-doesnotexist", 404)),
        (lambda: env.policies.remove_permission(ctx(), {"FunctionName": "doesnotexist", "StatementId": "s"}),
         ("ResourceNotFoundException", f"No policy found for: {ARN}:doesnotexist", 404)),
        (lambda: add(env, f"{ARN}:fn:1", "s", "*", Qualifier="2"),
         ("InvalidParameterValueException",
          "The derived qualifier from the function name does not match the specified qualifier.", 400)),
    ]
    for call, expected in cases:
        with pytest.raises(AwsError) as exc:
            call()
        assert err(exc) == expected
    add(env, "fn", "s3", "*")
    with pytest.raises(AwsError) as exc:
        add(env, "fn", "s3", "*")
    assert err(exc) == ("ResourceConflictException", "The statement id (s3) provided already exists. Please "
                        "provide a new statement id, or remove the existing statement.", 409)
    with pytest.raises(AwsError) as exc:
        env.policies.remove_permission(ctx(), {"FunctionName": "fn", "StatementId": "non-existent"})
    assert err(exc) == ("ResourceNotFoundException", "Statement non-existent is not found in resource policy.", 404)
    with pytest.raises(AwsError) as exc:
        add(env, "fn", "s4", "*", RevisionId="stale")
    assert err(exc) == ("PreconditionFailedException", "The Revision Id provided does not match the latest "
                        "Revision Id. Call the GetPolicy API to retrieve the latest Revision Id", 412)


async def test_cross_account_invoke_and_read_need_a_grant(env: Env) -> None:
    await ready(env)
    target = f"{ARN}:fn"
    with pytest.raises(FunctionsError) as exc:
        env.functions.resolve(OTHER, REGION, target, None)
    assert err(exc) == (
        "AccessDeniedException",
        f"User: arn:aws:iam::{OTHER}:root is not authorized to perform: lambda:InvokeFunction on resource: "
        f"{target} because no resource-based policy allows the lambda:InvokeFunction action",
        403,
    )
    add(env, "fn", "other", OTHER)
    assert env.functions.resolve(OTHER, REGION, target, None).account_id == ACCOUNT
    with pytest.raises(AwsError) as exc:  # InvokeFunction does not grant reads
        env.provider.get_function(ctx(OTHER), {"FunctionName": target})
    assert exc.value.code == "AccessDeniedException" and "lambda:GetFunction " in exc.value.message
    env.policies.add_permission(ctx(), {"FunctionName": "fn", "StatementId": "read",
                                        "Action": "lambda:GetFunction", "Principal": OTHER})
    got = env.provider.get_function(ctx(OTHER), {"FunctionName": target})
    assert got["Configuration"]["FunctionArn"] == target and "Tags" not in got
    with pytest.raises(AwsError) as exc:  # management stays the owner's, whatever the policy says
        env.provider.delete_function(ctx(OTHER), {"FunctionName": target})
    assert exc.value.code == "AccessDeniedException"
    with pytest.raises(FunctionsError):  # a third account still has no grant
        env.functions.resolve("222222222222", REGION, target, None)


async def test_qualified_policies_apply_to_their_qualifier_only(env: Env) -> None:
    await ready(env)
    env.versions.publish_version(ctx(), {"FunctionName": "fn"})
    env.versions.create_alias(ctx(), {"FunctionName": "fn", "Name": "live", "FunctionVersion": "1"})
    add(env, f"{ARN}:fn:live", "alias", OTHER)
    assert env.functions.resolve(OTHER, REGION, f"{ARN}:fn:live", None).version == "1"
    with pytest.raises(FunctionsError):
        env.functions.resolve(OTHER, REGION, f"{ARN}:fn", None)
    with pytest.raises(FunctionsError):
        env.functions.resolve(OTHER, REGION, f"{ARN}:fn:1", None)
    doc = json.loads(env.policies.get_policy(ctx(), {"FunctionName": "fn", "Qualifier": "live"})["Policy"])
    assert doc["Statement"][0]["Resource"] == f"{ARN}:fn:live"
    with pytest.raises(AwsError):  # the unqualified function has no policy of its own
        env.policies.get_policy(ctx(), {"FunctionName": "fn"})
    env.versions.delete_alias(ctx(), {"FunctionName": "fn", "Name": "live"})
    env.versions.create_alias(ctx(), {"FunctionName": "fn", "Name": "live", "FunctionVersion": "1"})
    with pytest.raises(FunctionsError):  # a re-created alias does not inherit the old alias's policy
        env.functions.resolve(OTHER, REGION, f"{ARN}:fn:live", None)


async def test_authorize_for_urls_and_allows_service(env: Env) -> None:
    await ready(env)
    fv = env.functions.resolve(ACCOUNT, REGION, "fn", None)
    env.functions.authorize(ACCOUNT, fv, "lambda:InvokeFunctionUrl")  # the owner always may
    with pytest.raises(FunctionsError):
        env.functions.authorize(None, f"{ARN}:fn", "lambda:InvokeFunctionUrl",
                                context={"lambda:FunctionUrlAuthType": "NONE"})
    env.policies.add_permission(ctx(), {"FunctionName": "fn", "StatementId": "url", "Principal": "*",
                                        "Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE"})
    env.functions.authorize(None, f"{ARN}:fn", "lambda:InvokeFunctionUrl",
                            context={"lambda:FunctionUrlAuthType": "NONE"})
    with pytest.raises(FunctionsError):  # the condition must hold
        env.functions.authorize(OTHER, f"{ARN}:fn", "lambda:InvokeFunctionUrl",
                                context={"lambda:FunctionUrlAuthType": "AWS_IAM"})
    topic = "arn:aws:sns:us-east-1:000000000000:t"
    assert not env.functions.allows_service(f"{ARN}:fn", "sns.amazonaws.com", topic)
    add(env, "fn", "sns", "sns.amazonaws.com", SourceArn="arn:aws:sns:us-east-1:000000000000:*")
    assert env.functions.allows_service(f"{ARN}:fn", "sns.amazonaws.com", topic)
    assert not env.functions.allows_service(f"{ARN}:fn", "sns.amazonaws.com", "arn:aws:sns:us-east-1:1:t")
    assert not env.functions.allows_service(f"{ARN}:fn", "events.amazonaws.com", topic)
    assert not env.functions.allows_service(f"{ARN}:fn", "sns.amazonaws.com", None)


async def test_a_granted_account_manages_the_owners_function(env: Env) -> None:
    """With `lambda:*` granted, another account publishes, aliases, tags and deletes the owner's function
    (AWS's list of cross-account operations), acting on the owner's function, not on its own account."""
    await ready(env)
    fn = f"{ARN}:fn"
    with pytest.raises(AwsError) as exc:
        env.versions.publish_version(ctx(OTHER), {"FunctionName": fn})
    assert exc.value.code == "AccessDeniedException"
    add(env, "fn", "all", OTHER, Action="lambda:*")
    assert env.versions.publish_version(ctx(OTHER), {"FunctionName": fn})["Version"] == "1"
    env.versions.create_alias(ctx(OTHER), {"FunctionName": fn, "Name": "live", "FunctionVersion": "1"})
    assert env.versions.get_alias(ctx(), {"FunctionName": "fn", "Name": "live"})["FunctionVersion"] == "1"
    env.provider.tag_resource(ctx(OTHER), {"Resource": fn, "Tags": {"by": "other"}})
    assert env.provider.list_tags(ctx(), {"Resource": fn})["Tags"] == {"by": "other"}
    assert env.provider.delete_function(ctx(OTHER), {"FunctionName": fn}) == {"StatusCode": 204}
    with pytest.raises(AwsError) as exc:
        env.provider.get_function(ctx(), {"FunctionName": "fn"})
    assert exc.value.code == "ResourceNotFoundException"


async def test_first_permission_on_an_alias_expects_the_aliases_revision(env: Env) -> None:
    await ready(env)
    env.versions.publish_version(ctx(), {"FunctionName": "fn"})
    alias = env.versions.create_alias(ctx(), {"FunctionName": "fn", "Name": "live", "FunctionVersion": "1"})
    with pytest.raises(AwsError) as exc:
        add(env, "fn", "s1", "s3.amazonaws.com", Qualifier="live", RevisionId="wrong")
    assert exc.value.code == "PreconditionFailedException"
    out = add(env, "fn", "s1", "s3.amazonaws.com", Qualifier="live", RevisionId=alias["RevisionId"])
    assert json.loads(str(out["Statement"]))["Resource"] == f"{ARN}:fn:live"
