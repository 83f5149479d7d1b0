"""Shared boto3 client construction and error presentation for the CLI commands that call the API.

It owns where a command sends its requests (endpoint, region, keys) and how API failures look on a
terminal (`hearth: <Code>: <Message>`, exit code 1, never a traceback). It never reads Hearth's data
beyond the key file `hearth env` also reads, and never retries: a command the user typed reports
what happened once.

Lookup order: an explicit option, then the standard AWS_* variables (so `eval "$(hearth env)"` and any
profile-free setup just work), then Hearth's own settings (HEARTH_* variables, defaults) with the
admin key from HEARTH_ACCESS_KEY_ID / HEARTH_SECRET_ACCESS_KEY or `<data_dir>/keys.json`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from hearth.config import Settings

READ_TIMEOUT_S = 900  # a synchronous invoke may run for Lambda's maximum of 15 minutes


def find_key(settings: Settings, account: str | None = None) -> tuple[str, str]:
    """The (access key id, secret) to sign with: the settings' key, else the key file's first
    key (of `account` when given). Raises a ClickException that says how to get one."""
    if settings.access_key_id and settings.secret_access_key and account is None:
        return settings.access_key_id, settings.secret_access_key
    keys_file = settings.data_dir / "keys.json"
    try:
        keys = json.loads(keys_file.read_text())
    except (OSError, ValueError) as exc:
        raise click.ClickException(
            f"no keys: {keys_file} is not readable ({exc}). Start the server once (hearth serve), "
            "run eval \"$(hearth env)\", or set HEARTH_ACCESS_KEY_ID and HEARTH_SECRET_ACCESS_KEY.") from None
    for key in keys:
        if account is None or key.get("account_id") == account:
            return str(key["access_key_id"]), str(key["secret_access_key"])
    raise click.ClickException(f"no key for account {account} in {keys_file}")


def make_client(service: str, endpoint: str | None = None, region: str | None = None) -> Any:
    """A boto3 client for `service` pointed at Hearth (or wherever AWS_ENDPOINT_URL says)."""
    import boto3
    from botocore.config import Config

    env = os.environ
    settings = Settings.from_env()
    endpoint = (endpoint or env.get(f"AWS_ENDPOINT_URL_{service.upper()}") or env.get("AWS_ENDPOINT_URL")
                or settings.endpoint_url)
    region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or settings.region
    kwargs: dict[str, Any] = {}
    if not (env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY")):
        key_id, secret = find_key(settings)
        kwargs = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        read_timeout=READ_TIMEOUT_S,
        connect_timeout=5,
        tcp_keepalive=True,
    )
    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name=region, config=config,
                                          **kwargs)


def fail(message: str) -> None:
    click.echo(f"hearth: {message}", err=True)
    sys.exit(1)


@contextmanager
def api_errors() -> Iterator[None]:
    """Turn botocore failures into one `hearth: …` line on stderr and exit code 1."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        fail(f"{error.get('Code', 'Error')}: {error.get('Message', str(exc))}")
    except EndpointConnectionError as exc:
        fail(f"cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}: is `hearth serve` running?")
    except BotoCoreError as exc:
        fail(str(exc))
