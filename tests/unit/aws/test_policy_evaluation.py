"""The policy evaluator against AWS's documented evaluation examples, one row per case, each citing the
IAM User Guide page it comes from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from hearth.aws.authz import evaluate as ev

GUIDE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/"
SINGLE_ACCOUNT = GUIDE + "reference_policies_evaluation-logic_policy-eval-basics.html"
DENY_ALLOW = GUIDE + "reference_policies_evaluation-logic_policy-eval-denyallow.html"
CROSS_ACCOUNT = GUIDE + "reference_policies_evaluation-logic-cross-account.html"
BOUNDARIES = GUIDE + "access_policies_boundaries.html"
SESSION_POLICIES = GUIDE + "access_policies.html#policies_session"
NOT_ACTION = GUIDE + "reference_policies_elements_notaction.html"
NOT_RESOURCE = GUIDE + "reference_policies_elements_notresource.html"
OPERATORS = GUIDE + "reference_policies_elements_condition_operators.html"
MULTI_VALUED = GUIDE + "reference_policies_condition-single-vs-multi-valued-context-keys.html"
VARIABLES = GUIDE + "reference_policies_variables.html"

ACCT, OTHER = "111122223333", "444455556666"
CARLOS = ev.Caller(f"arn:aws:iam::{ACCT}:user/carlossalazar", ACCT)
ROLE_ARN = f"arn:aws:iam::{ACCT}:role/app"
SESSION = ev.Caller(f"arn:aws:sts::{ACCT}:assumed-role/app/s1", ACCT, ROLE_ARN)
STRANGER = ev.Caller(f"arn:aws:iam::{OTHER}:user/bob", OTHER)
LOGS = "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar-logs"
BUCKET = "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar"


def _p(*statements: dict[str, Any], kind: str = "IAM Policy") -> ev.Policy:
    return ev.Policy("p", {"Version": "2012-10-17", "Statement": list(statements)}, kind)


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


@dataclass
class Case:
    name: str
    source: str
    action: str
    resource: str
    policies: ev.PolicySet
    expected: str
    caller: ev.Caller = CARLOS
    context: dict[str, list[str]] = field(default_factory=dict)
    resource_account: str | None = None
    missing: str | None = None


CARLOS_IDENTITY = _p(allow(["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"], [BUCKET, BUCKET + "/*"]),
                     deny("s3:DeleteObject", BUCKET + "/*"))
LOGS_POLICY = _p({"Effect": "Allow", "Principal": {"AWS": CARLOS.arn}, "Action": "s3:PutObject",
                  "Resource": LOGS + "/*"},
                 {"Effect": "Deny", "Principal": {"AWS": CARLOS.arn},
                     "Action": "s3:GetObject", "Resource": LOGS + "/*"},
                 kind="Resource Policy")

CASES = [
    # Identity and resource policies in one account: their union, an explicit deny overriding both.
    Case("identity policy allows", SINGLE_ACCOUNT, "s3:GetObject", BUCKET + "/a.txt",
         ev.PolicySet(identity=[CARLOS_IDENTITY]), ev.ALLOWED),
    Case("resource policy alone allows the user it names", SINGLE_ACCOUNT, "s3:PutObject", LOGS + "/a.log",
         ev.PolicySet(identity=[CARLOS_IDENTITY], resource=LOGS_POLICY), ev.ALLOWED),
    Case("explicit deny in the resource policy wins", SINGLE_ACCOUNT, "s3:GetObject", LOGS + "/a.log",
         ev.PolicySet(identity=[_p(allow("s3:*"))], resource=LOGS_POLICY), ev.EXPLICIT_DENY),
    Case("explicit deny in the identity policy wins", DENY_ALLOW, "s3:DeleteObject", BUCKET + "/a.txt",
         ev.PolicySet(identity=[CARLOS_IDENTITY, _p(allow("s3:*"))]), ev.EXPLICIT_DENY),
    Case("nothing allows: implicit deny", DENY_ALLOW, "s3:PutObject", BUCKET + "/a.txt",
         ev.PolicySet(identity=[CARLOS_IDENTITY]), ev.IMPLICIT_DENY, missing=ev.NO_IDENTITY),
    Case("no policies at all: implicit deny", DENY_ALLOW, "sqs:SendMessage", "*", ev.PolicySet(), ev.IMPLICIT_DENY),
    # Permissions boundaries: the intersection with identity policies; a resource policy naming the user
    # is not limited by the boundary, one naming a role is.
    Case("boundary limits identity permissions", BOUNDARIES, "iam:CreateUser", f"arn:aws:iam::{ACCT}:user/x",
         ev.PolicySet(identity=[_p(allow("iam:*"))], boundary=_p(allow(["s3:*", "cloudwatch:*", "ec2:*"]))),
         ev.IMPLICIT_DENY, missing=ev.NO_BOUNDARY),
    Case("boundary and identity both allow", BOUNDARIES, "s3:GetObject", BUCKET + "/k",
         ev.PolicySet(identity=[_p(allow("s3:GetObject"))], boundary=_p(allow(["s3:*", "ec2:*"]))), ev.ALLOWED),
    Case("boundary alone grants nothing", BOUNDARIES, "s3:GetObject", BUCKET + "/k",
         ev.PolicySet(boundary=_p(allow("s3:*"))), ev.IMPLICIT_DENY, missing=ev.NO_IDENTITY),
    Case("resource policy naming the user is not limited by the boundary", BOUNDARIES, "s3:PutObject",
         LOGS + "/x", ev.PolicySet(boundary=_p(allow("ec2:*")), resource=LOGS_POLICY), ev.ALLOWED),
    Case("explicit deny in a boundary wins", BOUNDARIES, "s3:GetObject", BUCKET + "/k",
         ev.PolicySet(identity=[_p(allow("s3:*"))], boundary=_p(allow("*"), deny("s3:GetObject"))),
         ev.EXPLICIT_DENY),
    # Session policies: the session gets the intersection of the role's and the session's policies.
    Case("session policy limits a role session", SESSION_POLICIES, "sqs:CreateQueue", "arn:aws:sqs:us-east-1:1:q",
         ev.PolicySet(identity=[_p(allow("sqs:*"))], session=[_p(allow("sqs:ListQueues"))]), ev.IMPLICIT_DENY,
         caller=SESSION, missing=ev.NO_SESSION),
    Case("session policy and role both allow", SESSION_POLICIES, "sqs:ListQueues", "*",
         ev.PolicySet(identity=[_p(allow("sqs:*"))], session=[_p(allow("sqs:ListQueues"))]), ev.ALLOWED,
         caller=SESSION),
    Case("session policy cannot add to the role's permissions", SESSION_POLICIES, "s3:GetObject", BUCKET,
         ev.PolicySet(identity=[_p(allow("sqs:*"))], session=[_p(allow("*"))]), ev.IMPLICIT_DENY, caller=SESSION,
         missing=ev.NO_IDENTITY),
    Case("resource policy naming the session ARN is not limited by the session policy", SESSION_POLICIES,
         "s3:GetObject", BUCKET + "/k",
         ev.PolicySet(session=[_p(allow("sqs:*"))], resource=_p(
             {"Effect": "Allow", "Principal": {"AWS": SESSION.arn}, "Action": "s3:GetObject", "Resource": "*"},
             kind="Resource Policy")), ev.ALLOWED, caller=SESSION),
    Case("resource policy naming the role ARN is limited by the session policy", SESSION_POLICIES,
         "s3:GetObject", BUCKET + "/k",
         ev.PolicySet(session=[_p(allow("sqs:*"))], resource=_p(
             {"Effect": "Allow", "Principal": {"AWS": ROLE_ARN}, "Action": "s3:GetObject", "Resource": "*"},
             kind="Resource Policy")), ev.IMPLICIT_DENY, caller=SESSION, missing=ev.NO_SESSION),
    # Cross-account: both the caller's identity policy and the resource's policy must allow.
    Case("cross-account needs the resource policy", CROSS_ACCOUNT, "sqs:SendMessage",
         f"arn:aws:sqs:us-east-1:{ACCT}:q", ev.PolicySet(identity=[_p(allow("sqs:*"))]), ev.IMPLICIT_DENY,
         caller=STRANGER, resource_account=ACCT, missing=ev.NO_RESOURCE),
    Case("cross-account needs the identity policy", CROSS_ACCOUNT, "sqs:SendMessage",
         f"arn:aws:sqs:us-east-1:{ACCT}:q",
         ev.PolicySet(resource=_p({"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "sqs:SendMessage",
                                   "Resource": "*"}, kind="Resource Policy")),
         ev.IMPLICIT_DENY, caller=STRANGER, resource_account=ACCT, missing=ev.NO_IDENTITY),
    Case("cross-account allowed by both sides", CROSS_ACCOUNT, "sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCT}:q",
         ev.PolicySet(identity=[_p(allow("sqs:SendMessage"))],
                      resource=_p({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
                                   "Action": "sqs:SendMessage", "Resource": "*"}, kind="Resource Policy")),
         ev.ALLOWED, caller=STRANGER, resource_account=ACCT),
    Case("resource policy naming another account does not cover this caller", CROSS_ACCOUNT, "sqs:SendMessage",
         f"arn:aws:sqs:us-east-1:{ACCT}:q",
         ev.PolicySet(identity=[_p(allow("sqs:*"))],
                      resource=_p({"Effect": "Allow", "Principal": {"AWS": "999999999999"}, "Action": "sqs:*",
                                   "Resource": "*"}, kind="Resource Policy")),
         ev.IMPLICIT_DENY, caller=STRANGER, resource_account=ACCT, missing=ev.NO_RESOURCE),
    # NotAction / NotResource.
    Case("NotAction allows everything else", NOT_ACTION, "s3:GetObject", BUCKET,
         ev.PolicySet(identity=[_p({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})]), ev.ALLOWED),
    Case("NotAction does not allow what it names", NOT_ACTION, "iam:CreateUser", "*",
         ev.PolicySet(identity=[_p({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})]), ev.IMPLICIT_DENY),
    Case("Deny with NotAction denies everything else", NOT_ACTION, "ec2:RunInstances", "*",
         ev.PolicySet(identity=[_p(allow("*"), {"Effect": "Deny", "NotAction": ["iam:*", "sts:*"], "Resource": "*"})]),
         ev.EXPLICIT_DENY),
    Case("NotResource excludes a resource", NOT_RESOURCE, "s3:GetObject", BUCKET + "/secret",
         ev.PolicySet(identity=[_p({"Effect": "Allow", "Action": "s3:*", "NotResource": BUCKET + "/secret"})]),
         ev.IMPLICIT_DENY),
    Case("action names are case-insensitive, wildcards match", DENY_ALLOW, "SQS:SendMessage", "*",
         ev.PolicySet(identity=[_p(allow("sqs:Send*"))]), ev.ALLOWED),
    # Policy variables.
    Case("${aws:username} in a resource", VARIABLES, "s3:GetObject", BUCKET + "/home/carlossalazar/a",
         ev.PolicySet(identity=[_p(allow("s3:GetObject", BUCKET + "/home/${aws:username}/*"))]), ev.ALLOWED,
         context={"aws:username": ["carlossalazar"]}),
    Case("${aws:username} of another user", VARIABLES, "s3:GetObject", BUCKET + "/home/maria/a",
         ev.PolicySet(identity=[_p(allow("s3:GetObject", BUCKET + "/home/${aws:username}/*"))]), ev.IMPLICIT_DENY,
         context={"aws:username": ["carlossalazar"]}),
    Case("a variable without a value and without a default matches nothing", VARIABLES, "s3:GetObject",
         BUCKET + "/home//a", ev.PolicySet(identity=[_p(allow("s3:GetObject", BUCKET + "/home/${aws:username}/*"))]),
         ev.IMPLICIT_DENY),
    Case("a variable's default value", VARIABLES, "s3:GetObject", BUCKET + "/home/nobody/a",
         ev.PolicySet(identity=[_p(allow("s3:GetObject", BUCKET + "/home/${aws:username, 'nobody'}/*"))]),
         ev.ALLOWED),
    # Condition operators.
    Case("StringEquals on a principal tag", OPERATORS, "ec2:StartInstances", "*",
         ev.PolicySet(identity=[_p(allow("ec2:*", Condition={"StringEquals": {"aws:PrincipalTag/team": "a"}}))]),
         ev.ALLOWED, context={"aws:principaltag/team": ["a"]}),
    Case("StringNotEquals with the key absent holds", OPERATORS, "ec2:StartInstances", "*",
         ev.PolicySet(identity=[_p(allow("ec2:*", Condition={"StringNotEquals": {"aws:PrincipalTag/team": "b"}}))]),
         ev.ALLOWED),
    Case("StringLike wildcard", OPERATORS, "s3:ListBucket", BUCKET,
         ev.PolicySet(identity=[_p(allow("s3:ListBucket", Condition={"StringLike": {"s3:prefix": ["home/*"]}}))]),
         ev.ALLOWED, context={"s3:prefix": ["home/carlos"]}),
    Case("Bool aws:SecureTransport false denies", OPERATORS, "sqs:SendMessage", "*",
         ev.PolicySet(identity=[_p(allow("sqs:*"), deny("sqs:*",
             Condition={"Bool": {"aws:SecureTransport": "false"}}))]),
         ev.EXPLICIT_DENY, context={"aws:securetransport": ["false"]}),
    Case("NumericLessThanEquals", OPERATORS, "s3:ListBucket", BUCKET,
         ev.PolicySet(identity=[_p(allow("s3:ListBucket",
             Condition={"NumericLessThanEquals": {"s3:max-keys": "10"}}))]),
         ev.IMPLICIT_DENY, context={"s3:max-keys": ["11"]}),
    Case("DateLessThan", OPERATORS, "iam:*", "*",
         ev.PolicySet(identity=[_p(allow("iam:*",
             Condition={"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}))]),
         ev.IMPLICIT_DENY, context={"aws:currenttime": ["2026-12-06T00:00:00Z"]}),
    Case("IpAddress in a CIDR", OPERATORS, "s3:GetObject", "*",
         ev.PolicySet(identity=[_p(allow("s3:*", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}))]),
         ev.ALLOWED, context={"aws:sourceip": ["203.0.113.9"]}),
    Case("NotIpAddress denies outside the range", OPERATORS, "s3:GetObject", "*",
         ev.PolicySet(identity=[_p(allow("s3:*"), deny("*",
             Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))]),
         ev.EXPLICIT_DENY, context={"aws:sourceip": ["203.0.113.9"]}),
    Case("ArnLike aws:SourceArn", OPERATORS, "sqs:SendMessage", "*",
         ev.PolicySet(identity=[_p(allow("sqs:SendMessage", Condition={
             "ArnLike": {"aws:SourceArn": "arn:aws:sns:*:111122223333:topic-*"}}))]),
         ev.ALLOWED, context={"aws:sourcearn": ["arn:aws:sns:us-east-1:111122223333:topic-a"]}),
    Case("ArnEquals aws:SourceArn of another topic", OPERATORS, "sqs:SendMessage", "*",
         ev.PolicySet(identity=[_p(allow("sqs:SendMessage", Condition={
             "ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:111122223333:a"}}))]),
         ev.IMPLICIT_DENY, context={"aws:sourcearn": ["arn:aws:sns:us-east-1:111122223333:b"]}),
    Case("...IfExists holds when the key is absent", OPERATORS, "ec2:RunInstances", "*",
         ev.PolicySet(identity=[_p(allow("ec2:*",
             Condition={"StringEqualsIfExists": {"ec2:InstanceType": "t2.micro"}}))]),
         ev.ALLOWED),
    Case("without IfExists an absent key fails", OPERATORS, "ec2:RunInstances", "*",
         ev.PolicySet(identity=[_p(allow("ec2:*", Condition={"StringEquals": {"ec2:InstanceType": "t2.micro"}}))]),
         ev.IMPLICIT_DENY),
    Case("Null true: the key is absent", OPERATORS, "ec2:RunInstances", "*",
         ev.PolicySet(identity=[_p(allow("ec2:*"), deny("ec2:*", Condition={"Null": {"aws:TokenIssueTime": "true"}}))]),
         ev.EXPLICIT_DENY),
    Case("several keys in a block are ANDed", OPERATORS, "sqs:SendMessage", "*",
         ev.PolicySet(identity=[_p(allow("sqs:*", Condition={"StringEquals": {
             "aws:SourceAccount": "111122223333", "aws:RequestedRegion": "us-east-1"}}))]),
         ev.IMPLICIT_DENY, context={"aws:sourceaccount": ["111122223333"], "aws:requestedregion": ["eu-west-1"]}),
    Case("ForAllValues: every requested tag key is allowed", MULTI_VALUED, "ec2:CreateTags", "*",
         ev.PolicySet(identity=[_p(allow("ec2:CreateTags", Condition={
             "ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}))]),
         ev.ALLOWED, context={"aws:tagkeys": ["env"]}),
    Case("ForAllValues: one key outside the set fails", MULTI_VALUED, "ec2:CreateTags", "*",
         ev.PolicySet(identity=[_p(allow("ec2:CreateTags", Condition={
             "ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}))]),
         ev.IMPLICIT_DENY, context={"aws:tagkeys": ["env", "owner"]}),
    Case("ForAllValues holds when the key is absent", MULTI_VALUED, "ec2:CreateTags", "*",
         ev.PolicySet(identity=[_p(allow("ec2:CreateTags", Condition={
             "ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}))]), ev.ALLOWED),
    Case("ForAnyValue: one matching value suffices", MULTI_VALUED, "ec2:CreateTags", "*",
         ev.PolicySet(identity=[_p(deny("ec2:CreateTags", Condition={
             "ForAnyValue:StringEquals": {"aws:TagKeys": ["admin"]}}), allow("*"))]),
         ev.EXPLICIT_DENY, context={"aws:tagkeys": ["env", "admin"]}),
    Case("ForAnyValue fails when the key is absent", MULTI_VALUED, "ec2:CreateTags", "*",
         ev.PolicySet(identity=[_p(allow("ec2:CreateTags", Condition={
             "ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}))]), ev.IMPLICIT_DENY),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_documented_evaluation(case: Case) -> None:
    decision = ev.evaluate(ev.Request(case.action, case.resource, case.caller, case.context,
                                      resource_account=case.resource_account), case.policies)
    assert decision.decision == case.expected, case.source
    if case.missing is not None:
        assert decision.missing == case.missing, case.source


def test_service_principal_in_a_trust_policy() -> None:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
    trust = _p({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
               kind="Trust Policy")
    lam = ev.Caller("lambda.amazonaws.com", ACCT, service="lambda.amazonaws.com")
    ec2 = ev.Caller("ec2.amazonaws.com", ACCT, service="ec2.amazonaws.com")
    assert ev.evaluate(ev.Request("sts:AssumeRole", ROLE_ARN, lam), ev.PolicySet(resource=trust)).allowed
    assert not ev.evaluate(ev.Request("sts:AssumeRole", ROLE_ARN, ec2), ev.PolicySet(resource=trust)).allowed
