"""The conformance run's caller: an IAM user of the primary account, as AWS recorded the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from hearth.conformance import __main__ as runner
from hearth.conformance.server import CALLER_USER, PRIMARY, Server


def test_tests_sign_as_an_iam_user_allowed_everything(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", tmp_path / "server.log")
    server.start()
    try:
        assert server.caller["access_key_id"] != PRIMARY["access_key_id"]
        session = boto3.Session(aws_access_key_id=server.caller["access_key_id"],
                                aws_secret_access_key=server.caller["secret_access_key"], region_name="us-east-1")
        identity = session.client("sts", endpoint_url=server.endpoint).get_caller_identity()
        assert identity["Arn"] == f"arn:aws:iam::{PRIMARY['account_id']}:user/{CALLER_USER}"
        sns = session.client("sns", endpoint_url=server.endpoint)
        topic = sns.create_topic(Name="t")["TopicArn"]  # AdministratorAccess: allowed like the root
        sub = sns.subscribe(TopicArn=topic, Protocol="sms", Endpoint="+15550100")["SubscriptionArn"]
        attributes = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
        assert attributes["SubscriptionPrincipal"] == identity["Arn"]
    finally:
        server.stop()


def test_the_caller_key_reaches_the_tests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(runner, "installed_runtimes", lambda: ["python3.12"])
    monkeypatch.setattr(runner.subprocess, "run", lambda argv, **kw: seen.update(kw.get("env") or {}))
    caller = {"access_key_id": "AKIAUSER", "secret_access_key": "s"}
    runner.run_pytest(Path("python"), tmp_path, [], tmp_path / "j.xml", tmp_path / "log", "http://127.0.0.1:1", [],
                      caller)
    assert seen["AWS_ACCESS_KEY_ID"] == seen["TEST_AWS_ACCESS_KEY_ID"] == "AKIAUSER"
