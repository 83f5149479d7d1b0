from __future__ import annotations

import base64
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from click.testing import CliRunner

from hearth.cli import deploy as deploy_mod
from hearth.cli import invoke as invoke_mod
from hearth.cli import logs as logs_mod
from hearth.cli.main import main

ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"


def client(service: str) -> Any:
    return boto3.session.Session().client(
        service, region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")


def body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


# -- deploy's zip ---------------------------------------------------------------------------------

def make_tree(root: Path) -> None:
    (root / "pkg").mkdir(parents=True)
    (root / "app.py").write_text("def handler(e, c):\n    return e\n")
    (root / "pkg" / "mod.py").write_text("X = 1\n")
    (root / "bootstrap").write_text("#!/bin/sh\n")
    (root / "bootstrap").chmod(0o755)
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"junk")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref\n")


def test_zip_is_deterministic_sorted_and_skips_caches(tmp_path: Path) -> None:
    make_tree(tmp_path / "a")
    first = deploy_mod.zip_directory(tmp_path / "a")
    os.utime(tmp_path / "a" / "app.py", (1_000_000_000, 1_000_000_000))
    assert deploy_mod.zip_directory(tmp_path / "a") == first
    make_tree(tmp_path / "b")  # same content, other files' times
    assert deploy_mod.zip_directory(tmp_path / "b") == first
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names == ["app.py", "bootstrap", "pkg/mod.py"]


def test_zip_preserves_the_executable_bit(tmp_path: Path) -> None:
    make_tree(tmp_path)
    archive = zipfile.ZipFile(io.BytesIO(deploy_mod.zip_directory(tmp_path)))
    modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in archive.infolist()}
    assert modes == {"app.py": 0o644, "bootstrap": 0o755, "pkg/mod.py": 0o644}
    archive.extractall(tmp_path / "out")
    # zipfile itself does not restore modes; check what Lambda's unzip would see instead.
    assert archive.getinfo("bootstrap").create_system == 3


def test_parse_env() -> None:
    assert deploy_mod.parse_env(("A=1", "B=x=y")) == {"A": "1", "B": "x=y"}
    with pytest.raises(Exception, match="KEY=VALUE"):
        deploy_mod.parse_env(("nope",))


# -- deploy ---------------------------------------------------------------------------------------

def config(state: str = "Active", update: str = "Successful", **extra: Any) -> dict[str, Any]:
    return {"FunctionName": "fn", "FunctionArn": ARN, "State": state, "LastUpdateStatus": update,
            "CodeSha256": "abc", "Runtime": "python3.12", "Handler": "app.handler", **extra}


def not_found(stub: Stubber, method: str) -> None:
    stub.add_client_error(method, "ResourceNotFoundException", "Function not found: " + ARN, 404)


def test_deploy_creates_then_waits_until_active(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path)
    lam = client("lambda")
    with Stubber(lam) as stub:
        not_found(stub, "get_function_configuration")
        stub.add_response("create_function", config(state="Pending"), {
            "FunctionName": "fn", "Code": {"ZipFile": ANY}, "Runtime": "python3.12", "Handler": "app.handler",
            "Role": "arn:aws:iam::000000000000:role/hearth-lambda", "MemorySize": 256,
            "Environment": {"Variables": {"K": "V"}}})
        stub.add_response("get_function_configuration", config(state="Pending"))
        stub.add_response("get_function_configuration", config())
        monkeypatch.setattr(deploy_mod, "make_client", lambda *a, **k: lam)
        monkeypatch.setattr(deploy_mod, "ensure_execution_role",
                            lambda iam, name: f"arn:aws:iam::000000000000:role/{name}")
        monkeypatch.setattr(deploy_mod, "WAIT_INTERVAL_S", 0.0)
        monkeypatch.delenv("HEARTH_ACCOUNT_ID", raising=False)
        result = CliRunner().invoke(main, ["deploy", str(tmp_path), "--name", "fn", "--runtime", "python3.12",
                                           "--handler", "app.handler", "--memory", "256", "--env", "K=V"])
        stub.assert_no_pending_responses()
    assert result.exit_code == 0, result.output
    assert "created" in result.output and ARN in result.output


def test_deploy_updates_code_and_only_changed_configuration(tmp_path: Path) -> None:
    make_tree(tmp_path)
    lam = client("lambda")
    with Stubber(lam) as stub:
        stub.add_response("get_function_configuration", config())
        stub.add_response("get_function_configuration", config())
        stub.add_response("update_function_code", config(update="InProgress"),
                          {"FunctionName": "fn", "ZipFile": ANY})
        stub.add_response("get_function_configuration", config(update="InProgress"))
        stub.add_response("get_function_configuration", config(MemorySize=128))
        stub.add_response("update_function_configuration", config(update="InProgress"),
                          {"FunctionName": "fn", "MemorySize": 512})
        stub.add_response("get_function_configuration", config(MemorySize=512))
        action, final = deploy_mod.deploy_function(
            lam, "fn", b"zip", {"Runtime": "python3.12", "MemorySize": 512}, "role", sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert action == "updated" and final["MemorySize"] == 512


def test_deploy_reports_a_failed_update_and_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path)
    lam = client("lambda")
    with Stubber(lam) as stub:
        stub.add_response("get_function_configuration", config())
        stub.add_response("get_function_configuration", config())
        stub.add_response("update_function_code", config(update="InProgress"))
        stub.add_response("get_function_configuration",
                          config(update="Failed", LastUpdateStatusReason="bad zip"))
        monkeypatch.setattr(deploy_mod, "make_client", lambda *a, **k: lam)
        result = CliRunner().invoke(main, ["deploy", str(tmp_path), "--name", "fn"])
    assert result.exit_code == 1
    assert "bad zip" in result.output


# -- invoke ---------------------------------------------------------------------------------------

def test_invoke_prints_pretty_payload_and_log_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    lam = client("lambda")
    tail = base64.b64encode(b"START RequestId: 1\nhello\n").decode()
    with Stubber(lam) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "Payload": body(b'{"ok":true}'), "LogResult": tail,
                                     "ExecutedVersion": "$LATEST"},
                          {"FunctionName": "fn", "Payload": b'{"a": 1}', "LogType": "Tail"})
        monkeypatch.setattr(invoke_mod, "make_client", lambda *a, **k: lam)
        result = CliRunner().invoke(main, ["invoke", "fn", "--payload", '{"a": 1}'])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True} and '  "ok": true' in result.stdout
    assert "hello" in result.stderr and "hello" not in result.stdout


def test_invoke_function_error_exits_1_with_error_type(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lam = client("lambda")
    event = tmp_path / "event.json"
    event.write_bytes(b'{"x": 2}')
    error = b'{"errorType": "ZeroDivisionError", "errorMessage": "division by zero"}'
    with Stubber(lam) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "Payload": body(error), "FunctionError": "Unhandled"},
                          {"FunctionName": "fn", "Payload": b'{"x": 2}', "Qualifier": "live"})
        monkeypatch.setattr(invoke_mod, "make_client", lambda *a, **k: lam)
        result = CliRunner().invoke(
            main, ["invoke", "fn", "--payload", f"@{event}", "--qualifier", "live", "--no-tail"])
    assert result.exit_code == 1
    assert "Unhandled" in result.stderr and "ZeroDivisionError" in result.stderr


def test_invoke_reads_stdin_and_api_errors_have_no_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    lam = client("lambda")
    with Stubber(lam) as stub:
        stub.add_client_error("invoke", "ResourceNotFoundException", f"Function not found: {ARN}", 404,
                              expected_params={"FunctionName": "fn", "Payload": b"[1]", "LogType": "Tail"})
        monkeypatch.setattr(invoke_mod, "make_client", lambda *a, **k: lam)
        result = CliRunner().invoke(main, ["invoke", "fn", "--payload", "-"], input="[1]")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"hearth: ResourceNotFoundException: Function not found: {ARN}"
    assert "Traceback" not in result.stderr


# -- logs -----------------------------------------------------------------------------------------

def event(ts: int, message: str, event_id: str, stream: str = "2024/01/01/[$LATEST]abc") -> dict[str, Any]:
    return {"timestamp": ts, "message": message, "eventId": event_id, "logStreamName": stream,
            "ingestionTime": ts}


def test_parse_since() -> None:
    now = 10_000_000_000
    assert logs_mod.parse_since("10m", now) == now - 600_000
    assert logs_mod.parse_since("2d", now) == now - 2 * 86_400_000
    assert logs_mod.parse_since("2024-01-01T00:00:00Z", now) == 1_704_067_200_000
    with pytest.raises(Exception, match="duration"):
        logs_mod.parse_since("yesterday", now)


def test_logs_uses_the_functions_log_group_and_follows_pagination(monkeypatch: pytest.MonkeyPatch) -> None:
    lam, cw = client("lambda"), client("logs")
    with Stubber(lam) as lstub, Stubber(cw) as cstub:
        lstub.add_response("get_function_configuration",
                           {"FunctionName": "fn", "LoggingConfig": {"LogGroup": "/custom/group"}},
                           {"FunctionName": "fn"})
        cstub.add_response("filter_log_events", {"events": [event(1_704_067_200_000, "first\n", "1")],
                                                 "nextToken": "t1"},
                           {"logGroupName": "/custom/group", "startTime": ANY, "filterPattern": "ERROR"})
        cstub.add_response("filter_log_events", {"events": [event(1_704_067_200_001, "second\n", "2")]},
                           {"logGroupName": "/custom/group", "startTime": ANY, "filterPattern": "ERROR",
                            "nextToken": "t1"})
        monkeypatch.setattr(logs_mod, "make_client", lambda service, *a: lam if service == "lambda" else cw)
        result = CliRunner().invoke(main, ["logs", "fn", "--filter", "ERROR", "--since", "1h"])
        cstub.assert_no_pending_responses()
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "2024-01-01T00:00:00.000Z 2024/01/01/[$LATEST]abc first",
        "2024-01-01T00:00:00.001Z 2024/01/01/[$LATEST]abc second",
    ]


def test_logs_of_a_missing_function_fall_back_to_the_default_group() -> None:
    lam = client("lambda")
    with Stubber(lam) as stub:
        not_found(stub, "get_function_configuration")
        assert logs_mod.log_group_of(lam, "gone") == "/aws/lambda/gone"
    assert logs_mod.log_group_of(lam, "/already/a/group") == "/already/a/group"


def test_follow_prints_each_event_once_and_ends_on_ctrl_c() -> None:
    cw = client("logs")
    printed: list[str] = []
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    with Stubber(cw) as stub:
        stub.add_response("filter_log_events", {"events": [event(100, "a\n", "1"), event(200, "b\n", "2")]},
                          {"logGroupName": "/g", "startTime": 0})
        # The second poll starts at the newest timestamp seen and gets "b" again: printed once only.
        stub.add_response("filter_log_events", {"events": [event(200, "b\n", "2"), event(200, "c\n", "3")]},
                          {"logGroupName": "/g", "startTime": 200})
        logs_mod.follow_until_interrupted(logs_mod.Follower(cw, "/g", 0, None, printed.append), sleep=sleep)
        stub.assert_no_pending_responses()
    assert [line.split(" ", 2)[2] for line in printed] == ["a", "b", "c"]
    assert sleeps == [logs_mod.POLL_INTERVAL_S] * 2


def test_follow_stops_with_exit_1_on_other_api_errors() -> None:
    cw = client("logs")
    with Stubber(cw) as stub:
        stub.add_client_error("filter_log_events", "AccessDeniedException", "no", 400)
        with pytest.raises(SystemExit) as exit_info:
            logs_mod.follow_until_interrupted(logs_mod.Follower(cw, "/g", 0, None, print), sleep=lambda _: None)
    assert exit_info.value.code == 1


def test_follow_waits_for_a_group_that_does_not_exist_yet() -> None:
    cw = client("logs")
    printed: list[str] = []
    calls = iter([None, KeyboardInterrupt()])

    def sleep(_: float) -> None:
        step = next(calls)
        if step is not None:
            raise step

    with Stubber(cw) as stub:
        stub.add_client_error("filter_log_events", "ResourceNotFoundException",
                              "The specified log group does not exist.", 400)
        stub.add_response("filter_log_events", {"events": [event(5, "hi\n", "9")]})
        logs_mod.follow_until_interrupted(logs_mod.Follower(cw, "/g", 0, None, printed.append), sleep=sleep)
    assert len(printed) == 1 and printed[0].endswith(" hi")


# -- env: the hint a new server prints, and the exports it names ------------------------------------

def test_the_env_hint_names_the_servers_port_and_env_exports_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from hearth.aws.keys import KeyStore
    from hearth.config import Settings
    from hearth.server import env_command

    for name in ("HEARTH_PORT", "HEARTH_HOST", "HEARTH_DATA_DIR", "HEARTH_ACCESS_KEY_ID",
                 "HEARTH_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(data_dir=tmp_path, port=4567)
    KeyStore.load(settings)  # the key pair a first start generates
    hint = env_command(settings)
    assert hint == f"hearth env --data-dir {tmp_path} --port 4567"
    assert env_command(Settings(data_dir=tmp_path)) == f"hearth env --data-dir {tmp_path}"
    result = CliRunner().invoke(main, hint.split()[1:])
    assert result.exit_code == 0, result.output
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:4567\n" in result.output
