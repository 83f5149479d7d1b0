"""The gateway's authorizer: who is judged, which action and resource, each service's denial, audit mode."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import pytest

from hearth.aws.authz import evaluate as ev
from hearth.aws.authz.authorizer import Authorizer, PolicySource, ResourcePolicy
from hearth.aws.authz.usage import UsageRecorder
from hearth.aws.context import Principal, RequestContext, Session
from hearth.aws.errors import AwsError

ACCT = "000000000000"
USER = Principal("AKIAUSER", ACCT, kind="user", arn=f"arn:aws:iam::{ACCT}:user/dev", user_id="AIDA1")
ROLE = f"arn:aws:iam::{ACCT}:role/app"
SESSION = Principal("ASIAROLE", ACCT, kind="assumed-role", arn=f"arn:aws:sts::{ACCT}:assumed-role/app/s",
                    user_id="AROA1:s", session=Session(ROLE, "AROA1", "s", None, (), (("team", "a"),), 0.0, 1e12))


def _ctx(principal: Principal, service: str, operation: str) -> RequestContext:
    return RequestContext(service, operation, "us-east-1", principal, "req")


def _source(*statements: dict[str, object]) -> PolicySource:
    policy = ev.Policy("p", {"Version": "2012-10-17", "Statement": list(statements)})

    def policies(principal: Principal) -> tuple[ev.PolicySet, Mapping[str, str]]:
        return ev.PolicySet(identity=[policy]), {}
    return policies


def test_root_is_never_judged() -> None:
    Authorizer(_source()).authorize(_ctx(Principal("AKIAROOT", ACCT), "sqs", "DeleteQueue"), {}, secure=False)


@pytest.mark.parametrize(("service", "operation", "params", "code", "resource"), [
    ("sqs", "SendMessage", {"QueueUrl": f"http://h/{ACCT}/q"}, "AccessDeniedException",
     f"arn:aws:sqs:us-east-1:{ACCT}:q"),
    ("lambda", "GetFunction", {"FunctionName": "f"}, "AccessDeniedException",
     f"arn:aws:lambda:us-east-1:{ACCT}:function:f"),
    ("iam", "DeleteRole", {"RoleName": "r"}, "AccessDenied", f"arn:aws:iam::{ACCT}:role/r"),
    ("sns", "Publish", {"TopicArn": f"arn:aws:sns:us-east-1:{ACCT}:t"}, "AuthorizationError",
     f"arn:aws:sns:us-east-1:{ACCT}:t"),
    ("logs", "CreateLogGroup", {"logGroupName": "g"}, "AccessDeniedException",
     f"arn:aws:logs:us-east-1:{ACCT}:log-group:g:*"),
    ("ecr", "CreateRepository", {"repositoryName": "r"}, "AccessDeniedException",
     f"arn:aws:ecr:us-east-1:{ACCT}:repository/r"),
])
def test_denials_name_the_action_and_resource(service: str, operation: str, params: dict[str, str], code: str,
                                              resource: str) -> None:
    with pytest.raises(AwsError) as exc:
        Authorizer(_source()).authorize(_ctx(USER, service, operation), params, secure=False)
    assert exc.value.code == code
    action = f"{service}:{operation}" if service != "sns" else f"SNS:{operation}"
    assert exc.value.message == (f"User: {USER.arn} is not authorized to perform: {action} on resource: "
                                 f"{resource} because no identity-based policy allows the {action} action")


def test_session_tags_and_secure_transport_reach_conditions() -> None:
    source = _source({"Effect": "Allow", "Action": "sqs:*", "Resource": "*", "Condition": {
        "StringEquals": {"aws:PrincipalTag/team": "a", "aws:PrincipalArn": ROLE},
        "Bool": {"aws:SecureTransport": "true"}}})
    authorizer = Authorizer(source)
    authorizer.authorize(_ctx(SESSION, "sqs", "ListQueues"), {}, secure=True)
    with pytest.raises(AwsError):
        authorizer.authorize(_ctx(SESSION, "sqs", "ListQueues"), {}, secure=False)


def test_audit_mode_allows_logs_and_records(caplog: pytest.LogCaptureFixture) -> None:
    usage = UsageRecorder()
    authorizer = Authorizer(_source(), mode="audit", usage=usage)
    with caplog.at_level(logging.WARNING):
        authorizer.authorize(_ctx(SESSION, "sqs", "CreateQueue"), {"QueueName": "q"}, secure=False)
    assert "would deny" in caplog.text and '"Action": "sqs:CreateQueue"' in caplog.text
    assert usage.used(ROLE) == {("sqs:CreateQueue", f"arn:aws:sqs:us-east-1:{ACCT}:q")}


def test_handing_a_role_to_lambda_needs_pass_role() -> None:
    params = {"FunctionName": "f", "Role": ROLE}
    only_lambda = Authorizer(_source({"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}))
    with pytest.raises(AwsError) as exc:
        only_lambda.authorize(_ctx(USER, "lambda", "CreateFunction"), params, secure=False)
    assert exc.value.code == "AccessDeniedException"
    assert exc.value.message == (f"User: {USER.arn} is not authorized to perform: iam:PassRole on resource: {ROLE} "
                                 "because no identity-based policy allows the iam:PassRole action")
    with_pass = Authorizer(_source(
        {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE,
         "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}}))
    with_pass.authorize(_ctx(USER, "lambda", "CreateFunction"), params, secure=False)
    with_pass.authorize(_ctx(USER, "lambda", "UpdateFunctionConfiguration"), {"FunctionName": "f"}, secure=False)


def test_actions_named_otherwise_than_their_operation() -> None:
    from hearth.aws.authz.resources import action_name

    assert action_name("lambda", "Invoke") == "lambda:InvokeFunction"  # the Service Authorization Reference
    assert action_name("lambda", "InvokeWithResponseStream") == "lambda:InvokeFunction"
    assert action_name("sqs", "SendMessage") == "sqs:SendMessage"


def test_resource_policies_grant_deny_and_admit_other_accounts() -> None:
    other = "111111111111"
    queue = f"arn:aws:sqs:us-east-1:{ACCT}:q"
    held: dict[str, ResourcePolicy] = {}
    authorizer = Authorizer(_source(), resource_policies={"sqs": held.get})
    params = {"QueueUrl": f"http://h/{ACCT}/q"}
    held[queue] = ResourcePolicy(ACCT, json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": USER.arn}, "Action": "sqs:SendMessage", "Resource": "*"}]}))
    assert authorizer.authorize(_ctx(USER, "sqs", "SendMessage"), params, secure=False) is None  # same account
    with pytest.raises(AwsError):
        authorizer.authorize(_ctx(USER, "sqs", "DeleteQueue"), params, secure=False)
    root = Principal("AKIAOTHER", other)
    with pytest.raises(AwsError) as exc:  # another account's root: the queue's policy does not name it
        authorizer.authorize(_ctx(root, "sqs", "SendMessage"), params, secure=False)
    assert "no resource-based policy allows" in exc.value.message
    held[queue] = ResourcePolicy(ACCT, json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": other}, "Action": "sqs:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "sqs:DeleteQueue", "Resource": "*"}]}))
    assert authorizer.authorize(_ctx(root, "sqs", "SendMessage"), params, secure=False) == ACCT
    with pytest.raises(AwsError) as exc:
        authorizer.authorize(_ctx(root, "sqs", "DeleteQueue"), params, secure=False)
    assert "explicit deny in a resource-based policy" in exc.value.message
    # The owner's own root is never judged and never looked up.
    held.clear()
    assert authorizer.authorize(_ctx(Principal("AKIAROOT", ACCT), "sqs", "DeleteQueue"), params, secure=False) \
        is None


def test_own_account_policies_grant_only_in_their_account() -> None:
    # Lambda: a function policy naming a user of its account grants it; other accounts stay Lambda's to judge.
    function = f"arn:aws:lambda:us-east-1:{ACCT}:function:f"
    looked_up: list[str] = []

    def lookup(arn: str) -> ResourcePolicy | None:
        looked_up.append(arn)
        return ResourcePolicy(ACCT, json.dumps({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": USER.arn}, "Action": "lambda:InvokeFunction",
             "Resource": function}]}))

    authorizer = Authorizer(_source(), own_account_policies={"lambda": lookup})
    assert authorizer.authorize(_ctx(USER, "lambda", "Invoke"), {"FunctionName": "f"}, secure=False) is None
    with pytest.raises(AwsError):
        authorizer.authorize(_ctx(USER, "lambda", "GetFunction"), {"FunctionName": "f"}, secure=False)
    looked_up.clear()
    other_user = Principal("AKIAOTHER", "111111111111", kind="user", arn="arn:aws:iam::111111111111:user/x",
                           user_id="AIDA2")
    with pytest.raises(AwsError):  # its identity side allows nothing; the function's policy is not consulted
        authorizer.authorize(_ctx(other_user, "lambda", "Invoke"), {"FunctionName": function}, secure=False)
    assert looked_up == []


def test_resource_account_of_an_arn_without_one_comes_from_its_owner() -> None:
    # An S3 ARN names no account: the bucket's owner answers for aws:ResourceAccount (the CDK
    # bootstrap roles' policies allow their bucket only with `aws:ResourceAccount` = their account).
    source = _source({"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                      "Condition": {"StringEquals": {"aws:ResourceAccount": ACCT}}})
    owners = {"arn:aws:s3:::mine": ACCT, "arn:aws:s3:::theirs": "999999999999"}

    def bucket(arn: str) -> ResourcePolicy | None:
        return ResourcePolicy(owners[arn], None) if arn in owners else None

    authorizer = Authorizer(source, resource_policies={"s3": bucket})
    ctx = _ctx(SESSION, "s3", "GetBucketLocation")
    authorizer.authorize(ctx, {"Bucket": "mine"}, secure=True)
    with pytest.raises(AwsError):
        authorizer.authorize(ctx, {"Bucket": "theirs"}, secure=True)
    with pytest.raises(AwsError):  # no owner known: the condition on aws:ResourceAccount fails
        Authorizer(source).authorize(ctx, {"Bucket": "mine"}, secure=True)
