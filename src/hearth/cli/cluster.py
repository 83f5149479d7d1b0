"""`hearth cluster status`: the nodes sharing this Hearth's database, their state and load, and who holds
each lease, as the server's `GET /_hearth/health` reports them (no keys needed: health is public)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from hearth.cli.main import main
from hearth.config import Settings


@main.group()
def cluster() -> None:
    """Several Hearth servers on one PostgreSQL database (hearth serve --database)."""


@cluster.command()
@click.option("--endpoint", default=None, help="A node's URL (default: this host's Hearth, as `hearth env`).")
@click.option("--json", "as_json", is_flag=True, help="Print the cluster as JSON.")
def status(endpoint: str | None, as_json: bool) -> None:
    """Every node (alive, dead after missing its heartbeats, or left) and every lease."""
    url = f"{(endpoint or Settings.from_env().endpoint_url).rstrip('/')}/_hearth/health"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            health: dict[str, Any] = json.load(resp)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"no Hearth answers at {url}: {exc}") from None
    state = health.get("cluster")
    if as_json:
        click.echo(json.dumps(state, indent=2))
        return
    if not state:
        raise click.ClickException("this Hearth is a single node on SQLite (start it with --database to cluster)")
    if "error" in state:
        raise click.ClickException(f"node {state.get('node')}: the database is unreachable: {state['error']}")
    console = Console()
    nodes = Table("Node", "Address", "State", "Load", "Capacity", "Heartbeat age (s)")
    for node in state["nodes"]:
        me = " (this)" if node["id"] == state["node"] else ""
        nodes.add_row(node["id"] + me, node["address"], node["state"], str(node["load"]), str(node["capacity"]),
                      f"{node['heartbeat_age_s']:.1f}")
    console.print(nodes)
    leases = Table("Lease", "Holder", "Token", "Expires in (s)")
    for lease in state["leases"]:
        leases.add_row(lease["name"], lease["holder"] or "-", str(lease["token"]), f"{lease['expires_in_s']:.1f}")
    console.print(leases)
