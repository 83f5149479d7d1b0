"""`hearth env`: print `export` lines that point the AWS SDKs and CLI at this Hearth.

Usage: `eval "$(hearth env)"`. It reads the admin key the server generated (or the one given in
HEARTH_ACCESS_KEY_ID / HEARTH_SECRET_ACCESS_KEY) and never prints anything else on stdout.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from hearth.cli.client import find_key
from hearth.cli.main import main
from hearth.config import Settings


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--account", default=None, help="Use the first key of this account.")
@click.option("--https", "https", is_flag=True, default=False,
              help="Point at the HTTPS port (HEARTH_HTTPS_PORT) and trust Hearth's local CA.")
@click.option("--host", default=None, help="The server's address (default: HEARTH_HOST, else 127.0.0.1).")
@click.option("--port", type=int, default=None, help="The server's port (default: HEARTH_PORT, else 4566).")
def env(data_dir: Path | None, account: str | None, https: bool, host: str | None, port: int | None) -> None:
    """Print export lines for eval: endpoint, keys, region."""
    settings = Settings.from_env(data_dir=data_dir, host=host, port=port)
    key_id, secret = find_key(settings, account)
    host = settings.host
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    values = {
        "AWS_ENDPOINT_URL": f"http://{host}:{settings.port}",
        "AWS_ACCESS_KEY_ID": key_id or "",
        "AWS_SECRET_ACCESS_KEY": secret or "",
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_REGION": settings.region,
    }
    if https:
        if settings.https_port is None:
            raise click.ClickException("--https needs the server's HTTPS port in HEARTH_HTTPS_PORT")
        ca = str(settings.data_dir / "ca" / "ca.pem")
        values.update(AWS_ENDPOINT_URL=f"https://{'localhost' if host == '127.0.0.1' else host}:{settings.https_port}",
                      AWS_CA_BUNDLE=ca, NODE_EXTRA_CA_CERTS=ca)
    for name, value in values.items():
        click.echo(f"export {name}={shlex.quote(value)}")
    click.echo("unset AWS_SESSION_TOKEN AWS_PROFILE")
