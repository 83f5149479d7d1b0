"""`hearth deploy DIR`: zip a folder and create or update a function from it, then wait until ready.

It owns the deployment package (a deterministic zip: the same folder always gives the same bytes and
so the same CodeSha256) and the create-or-update decision. It never writes Hearth's data: everything
goes through Lambda's API (CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration).
"""

from __future__ import annotations

import io
import os
import stat
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hearth.cli.client import api_errors, fail, make_client
from hearth.cli.main import main
from hearth.cli.roles import ensure_execution_role

SKIPPED_DIRS = frozenset({"__pycache__", ".git"})
# Zip's epoch; a fixed time keeps the archive (and CodeSha256) independent of when files were touched.
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
WAIT_TIMEOUT_S = 300.0
WAIT_INTERVAL_S = 0.5


def zip_directory(root: Path) -> bytes:
    """The folder as a zip: entries sorted by path, fixed timestamps, modes 0755 (any exec bit set)
    or 0644, no __pycache__ or .git. Symlinks to files are stored as the file they point to."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path, name in _files(root):
            mode = path.stat().st_mode
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so unzip and Lambda honour the mode bits below
            permissions = 0o755 if mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) else 0o644
            info.external_attr = (stat.S_IFREG | permissions) << 16
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def _files(root: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS and not os.path.islink(os.path.join(dirpath, d))]
        for filename in filenames:
            path = Path(dirpath) / filename
            if filename.endswith(".pyc") or not path.is_file():
                continue  # compiled bytecode is rebuilt by the runtime; broken links have nothing to zip
            found.append((path, path.relative_to(root).as_posix()))
    return sorted(found, key=lambda item: item[1])


def parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--env")
        env[key] = value
    return env


def wait_until_ready(client: Any, name: str, sleep: Callable[[float], None] = time.sleep,
                     timeout_s: float = WAIT_TIMEOUT_S) -> dict[str, Any]:
    """Poll GetFunctionConfiguration until State is Active and LastUpdateStatus is Successful."""
    deadline = time.monotonic() + timeout_s
    while True:
        config: dict[str, Any] = client.get_function_configuration(FunctionName=name)
        state, update = config.get("State", "Active"), config.get("LastUpdateStatus", "Successful")
        if state == "Failed" or update == "Failed":
            reason = config.get("LastUpdateStatusReason") or config.get("StateReason") or "no reason given"
            fail(f"{name} failed to become ready: {reason}")
        if state == "Active" and update == "Successful":
            return config
        if time.monotonic() > deadline:
            fail(f"{name} is still {state}/{update} after {timeout_s:.0f} s")
        sleep(WAIT_INTERVAL_S)


def deploy_function(client: Any, name: str, code: bytes, options: dict[str, Any],
                    default_role: str | Callable[[], str],
                    sleep: Callable[[float], None] = time.sleep) -> tuple[str, dict[str, Any]]:
    """Create the function or update its code (and configuration when options were given).

    `options` holds the CreateFunction members the user gave (Runtime, Handler, MemorySize, Timeout,
    Environment, Role); `default_role` is used only when creating without a Role.
    Returns ("created" | "updated", final configuration)."""
    from botocore.exceptions import ClientError

    try:
        current = client.get_function_configuration(FunctionName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        current = None
    if current is None:
        if "Role" not in options and callable(default_role):
            default_role = default_role()
        create = {"Role": default_role, **options}
        if "Runtime" not in create:
            fail(f"{name} does not exist; creating it needs --runtime (and --handler)")
        if "Handler" not in create:
            if not str(create["Runtime"]).startswith("provided"):
                fail(f"{name} does not exist; creating it needs --handler")
            create["Handler"] = "bootstrap"  # custom runtimes ignore it; `bootstrap` is the convention
        client.create_function(FunctionName=name, Code={"ZipFile": code}, **create)
        return "created", wait_until_ready(client, name, sleep)
    wait_until_ready(client, name, sleep)  # an update is refused while another one is in progress
    client.update_function_code(FunctionName=name, ZipFile=code)
    config = wait_until_ready(client, name, sleep)
    changes = {key: value for key, value in options.items() if _differs(config, key, value)}
    if changes:
        client.update_function_configuration(FunctionName=name, **changes)
        config = wait_until_ready(client, name, sleep)
    return "updated", config


def _differs(config: dict[str, Any], key: str, value: Any) -> bool:
    if key == "Environment":
        return bool((config.get("Environment") or {}).get("Variables", {}) != value["Variables"])
    return bool(config.get(key) != value)


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Function name.")
@click.option("--runtime", default=None, help="e.g. python3.12, nodejs20.x, provided.al2023.")
@click.option("--handler", default=None, help="e.g. app.handler.")
@click.option("--memory", type=int, default=None, help="Memory in MB.")
@click.option("--timeout", type=int, default=None, help="Timeout in seconds.")
@click.option("--env", "env_pairs", multiple=True, help="Environment variable KEY=VALUE (repeatable).")
@click.option("--role", default=None, help="Execution role ARN (default arn:aws:iam::<account>:role/hearth-lambda, "
              "made on first use with AWSLambdaBasicExecutionRole).")
@click.option("--endpoint-url", default=None, help="Hearth's URL (default: $AWS_ENDPOINT_URL or settings).")
def deploy(directory: Path, name: str, runtime: str | None, handler: str | None, memory: int | None,
           timeout: int | None, env_pairs: tuple[str, ...], role: str | None, endpoint_url: str | None) -> None:
    """Zip DIRECTORY and create or update the function NAME from it."""
    options: dict[str, Any] = {}
    if runtime:
        options["Runtime"] = runtime
    if handler:
        options["Handler"] = handler
    if memory is not None:
        options["MemorySize"] = memory
    if timeout is not None:
        options["Timeout"] = timeout
    if env_pairs:
        options["Environment"] = {"Variables": parse_env(env_pairs)}
    if role:
        options["Role"] = role
    code = zip_directory(directory)
    with api_errors():
        # The default role is made when a function is first created with it: it may write logs, nothing more.
        action, config = deploy_function(
            make_client("lambda", endpoint_url), name, code, options,
            lambda: ensure_execution_role(make_client("iam", endpoint_url), "hearth-lambda"))
    _summary(action, config, len(code))


def _summary(action: str, config: dict[str, Any], size: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for label, value in (
        ("Function", config.get("FunctionName")),
        ("ARN", config.get("FunctionArn")),
        ("Runtime", config.get("Runtime", "-")),
        ("Handler", config.get("Handler", "-")),
        ("CodeSha256", config.get("CodeSha256")),
        ("Code size", f"{config.get('CodeSize', size)} bytes"),
        ("State", f"{config.get('State', 'Active')} / {config.get('LastUpdateStatus', 'Successful')}"),
    ):
        table.add_row(label, str(value))
    console = Console()
    console.print(f"[green]{action}[/green] {config.get('FunctionName')}")
    console.print(table)
