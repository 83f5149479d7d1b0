"""The `hearth` command: one click group; each command lives in a module of its own.

It owns argument parsing and presentation. It never touches Hearth's data directly except
`serve` (which starts the server) and `env` (which reads the key file the server wrote);
everything else talks to a running server through its AWS API.
"""

from __future__ import annotations

import click

from hearth import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hearth")
def main() -> None:
    """Hearth: a self-hosted serverless platform that speaks the AWS Lambda API."""


def _register() -> None:
    # Commands register themselves on import; importing here keeps `hearth --help` complete.
    import importlib

    for module in ("serve", "runtimes", "env", "logs", "invoke", "deploy", "bench", "policy", "cluster"):
        try:
            importlib.import_module(f"hearth.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"hearth.cli.{module}":
                raise


_register()
