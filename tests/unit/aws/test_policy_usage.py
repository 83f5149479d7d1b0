"""`hearth policy suggest`'s policy: exactly the used (action, resource) pairs, in few statements."""

from __future__ import annotations

from hearth.aws.authz import evaluate as ev
from hearth.aws.authz.usage import UsageRecorder, smallest_policy

Q1, Q2, FN = "arn:aws:sqs:us-east-1:1:q1", "arn:aws:sqs:us-east-1:1:q2", "arn:aws:lambda:us-east-1:1:function:f"


def test_resources_with_the_same_actions_share_a_statement() -> None:
    policy = smallest_policy({("sqs:SendMessage", Q1), ("sqs:SendMessage", Q2), ("lambda:InvokeFunction", FN),
                              ("sqs:ReceiveMessage", Q2)})
    assert policy["Statement"] == [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": FN},
        {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:SendMessage"], "Resource": Q2},
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": Q1},
    ]


def test_the_suggestion_allows_what_was_used_and_nothing_else() -> None:
    usage = UsageRecorder()
    role = "arn:aws:iam::1:role/app"
    for pair in (("sqs:SendMessage", Q1), ("lambda:InvokeFunction", FN)):
        usage.record(role, *pair)
    suggested = ev.PolicySet(identity=[ev.Policy("s", usage.suggest(role))])
    caller = ev.Caller("arn:aws:sts::1:assumed-role/app/s", "1", role)
    assert ev.evaluate(ev.Request("sqs:SendMessage", Q1, caller), suggested).allowed
    assert ev.evaluate(ev.Request("lambda:InvokeFunction", FN, caller), suggested).allowed
    assert not ev.evaluate(ev.Request("sqs:SendMessage", Q2, caller), suggested).allowed
    assert not ev.evaluate(ev.Request("sqs:DeleteQueue", Q1, caller), suggested).allowed
