"""`hearth invoke FUNCTION`: invoke a function through the API and show its answer and log tail.

It owns reading the payload (`--payload JSON`, `@file`, `-` for stdin), the presentation (response
payload on stdout, pretty when JSON; decoded log tail on stderr) and the exit code (1 when the function
failed). It never runs functions itself: everything goes through Lambda's Invoke API.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import click

from hearth.cli.client import api_errors, make_client
from hearth.cli.main import main


def read_payload(value: str | None) -> bytes:
    """`--payload`: JSON text, `@path` for a file's bytes, `-` for stdin; nothing means `{}`."""
    if value is None:
        return b"{}"
    if value == "-":
        return sys.stdin.buffer.read()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--payload") from None
    return value.encode()


def render_payload(payload: bytes) -> str:
    """Pretty JSON when the payload is JSON, else the text as it came."""
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except ValueError:
        return payload.decode("utf-8", "replace")


@main.command()
@click.argument("function")
@click.option("--payload", default=None, help="JSON event, @file, or - for stdin (default {}).")
@click.option("--qualifier", default=None, help="Version or alias.")
@click.option("--event", "asynchronous", is_flag=True, help="Invoke asynchronously (InvocationType=Event).")
@click.option("--tail/--no-tail", default=True, show_default=True, help="Print the log tail to stderr.")
@click.option("--endpoint-url", default=None, help="Hearth's URL (default: $AWS_ENDPOINT_URL or settings).")
def invoke(function: str, payload: str | None, qualifier: str | None, asynchronous: bool, tail: bool,
           endpoint_url: str | None) -> None:
    """Invoke FUNCTION and print its response (exit code 1 when the function failed)."""
    body = read_payload(payload)
    params: dict[str, Any] = {"FunctionName": function, "Payload": body}
    if qualifier:
        params["Qualifier"] = qualifier
    if asynchronous:
        params["InvocationType"] = "Event"
    elif tail:
        params["LogType"] = "Tail"
    with api_errors():
        response = make_client("lambda", endpoint_url).invoke(**params)
        stream = response.get("Payload")
        result = stream.read() if stream is not None else b""
    if asynchronous:
        request_id = response.get("ResponseMetadata", {}).get("RequestId", "")
        click.echo(f"hearth: queued (status {response.get('StatusCode')}, request {request_id})", err=True)
        return
    if tail and response.get("LogResult"):
        click.echo(base64.b64decode(response["LogResult"]).decode("utf-8", "replace").rstrip("\n"), err=True)
    if result:
        click.echo(render_payload(result))
    function_error = response.get("FunctionError")
    if function_error:
        click.echo(f"hearth: the function failed ({function_error}){_error_type(result)}", err=True)
        sys.exit(1)


def _error_type(payload: bytes) -> str:
    try:
        error = json.loads(payload)
    except ValueError:
        return ""
    if isinstance(error, dict) and error.get("errorType"):
        return f": {error['errorType']}"
    return ""
