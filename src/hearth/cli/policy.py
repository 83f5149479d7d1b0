"""`hearth policy suggest ROLE`: the smallest policy that allows what ROLE's sessions did.

It owns asking the server (`GET /_hearth/policy/suggest?role=ROLE`, SigV4-signed with the account's
root key, as only the root may read what a role did) and printing the policy document. It never reads
Hearth's data directory beyond the key file.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request

import click

from hearth.cli.client import find_key
from hearth.cli.main import main
from hearth.config import Settings


@main.group()
def policy() -> None:
    """IAM policies from what functions actually did."""


@policy.command()
@click.argument("role")
@click.option("--endpoint-url", default=None, help="Hearth's URL (default: $AWS_ENDPOINT_URL or settings).")
def suggest(role: str, endpoint_url: str | None) -> None:
    """Print the smallest policy allowing exactly the calls ROLE's sessions made (since the server started)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    settings = Settings.from_env()
    endpoint = (endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or settings.endpoint_url).rstrip("/")
    key_id, secret = ((os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
                      if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")
                      else find_key(settings))
    url = f"{endpoint}/_hearth/policy/suggest?{urllib.parse.urlencode({'role': role})}"
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(key_id, secret), "iam", "us-east-1").add_auth(request)
    prepared = request.prepare()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=dict(prepared.headers)),
                                    timeout=30) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as exc:
        raise click.ClickException(exc.read().decode(errors="replace") or str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{endpoint}: {exc}") from None
    click.echo(json.dumps(body, indent=2))
