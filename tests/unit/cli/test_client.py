from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from hearth.cli import client as client_mod


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LOGS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_REGION", "AWS_DEFAULT_REGION", "HEARTH_ACCESS_KEY_ID", "HEARTH_SECRET_ACCESS_KEY",
                 "HEARTH_PORT", "HEARTH_HOST", "HEARTH_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HEARTH_DATA_DIR", str(tmp_path))


def test_uses_the_key_file_and_hearth_settings(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text(json.dumps([
        {"access_key_id": "AKIDADMIN", "secret_access_key": "s3cret", "account_id": "000000000000"}]))
    logs = client_mod.make_client("logs")
    assert logs.meta.endpoint_url == "http://127.0.0.1:4566"
    assert logs.meta.region_name == "us-east-1"
    assert logs._request_signer._credentials.access_key == "AKIDADMIN"
    assert logs.meta.config.read_timeout == client_mod.READ_TIMEOUT_S
    assert logs.meta.config.retries["total_max_attempts"] == 1


def test_aws_variables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LOGS", "http://127.0.0.1:5001")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert client_mod.make_client("lambda").meta.endpoint_url == "http://127.0.0.1:5000"
    logs = client_mod.make_client("logs")
    assert logs.meta.endpoint_url == "http://127.0.0.1:5001" and logs.meta.region_name == "eu-west-1"
    assert logs._request_signer._credentials.access_key == "AKIDENV"


def test_missing_keys_say_how_to_get_one() -> None:
    with pytest.raises(click.ClickException, match="hearth serve"):
        client_mod.make_client("lambda")
