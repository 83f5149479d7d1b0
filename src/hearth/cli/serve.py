"""`hearth serve`: start the server in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from hearth.cli.main import main
from hearth.config import Settings


@main.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to bind (default 4566).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where Hearth keeps its state (default ~/.local/share/hearth or $HEARTH_DATA_DIR).")
@click.option("--auth", type=click.Choice(["sigv4", "any"]), default=None,
              help="sigv4 (default): every request must be signed by a known key. "
                   "any: accept any well-formed signature (development only, loopback only).")
@click.option("--isolation", type=click.Choice(["auto", "namespace", "process"]), default=None,
              help="How functions are isolated (default auto: namespaces and cgroups when possible).")
@click.option("--keep-alive", "keep_alive_s", type=float, default=None,
              help="Seconds an idle environment is kept warm (default 600).")
@click.option("--snapstart-latest/--no-snapstart-latest", "snapstart_latest", default=None,
              help="Restore $LATEST environments of Python functions from a snapshot of their INIT, as "
                   "SnapStart does for published versions (default off; $HEARTH_SNAPSTART_LATEST=1).")
@click.option("--https-port", type=int, default=None,
              help="Also serve HTTPS on this port, with a certificate of a local CA made at first start "
                   "(<data-dir>/ca/ca.pem; `hearth env --https` prints AWS_CA_BUNDLE) ($HEARTH_HTTPS_PORT).")
@click.option("--iam", "iam_mode", type=click.Choice(["enforce", "audit"]), default=None,
              help="IAM policies for non-root callers: enforce (default) answers AccessDenied; audit allows "
                   "the call and logs the denial with the statement that would be needed ($HEARTH_IAM).")
@click.option("--network", type=click.Choice(["egress", "none"]), default=None,
              help="egress (default): functions reach what the host reaches, through Hearth's bridge and "
                   "packet filter; none: functions reach only Hearth's AWS API ($HEARTH_NETWORK).")
@click.option("--network-pool", "network_pool", type=int, default=None,
              help="Network namespaces kept prepared per network (default 4) ($HEARTH_NETWORK_POOL).")
@click.option("--network-conn-limit", "network_conn_limit", type=int, default=None,
              help="Tracked connections per environment (default 1024) ($HEARTH_NETWORK_CONN_LIMIT).")
@click.option("--vpc-network", "vpc_networks", multiple=True,
              help="Map a VPC subnet (its id or CIDR) to a host bridge: SUBNET=BRIDGE, repeatable. A function "
                   "in that subnet gets an interface on that bridge and nothing else ($HEARTH_VPC_NETWORKS).")
@click.option("--database", "database_url", default=None, metavar="URL",
              help="Keep every component's state in this PostgreSQL database (postgresql://USER@HOST/DB) "
                   "instead of SQLite files in the data directory; several servers on one database are one "
                   "Hearth cluster ($HEARTH_DATABASE_URL).")
@click.option("--node-id", default=None, help="This server's id in a cluster (default HOST:PORT; $HEARTH_NODE_ID).")
@click.option("--node-address", default=None, metavar="URL",
              help="Where the other nodes of a cluster reach this one, e.g. http://10.0.0.5:4566 (default: the "
                   "endpoint, or with --host 0.0.0.0 the default route's interface; $HEARTH_NODE_ADDRESS).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default=None)
def serve(**options: object) -> None:
    """Start Hearth (the AWS API on http://HOST:PORT)."""
    from hearth.server import serve as run

    run(Settings.from_env(**options))
