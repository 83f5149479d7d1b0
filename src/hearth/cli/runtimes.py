"""`hearth runtimes`: which AWS runtime ids this host can run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hearth.cli.main import main
from hearth.runtimes.registry import installed_runtimes


@main.command()
def runtimes() -> None:
    """List the runtimes installed on this host."""
    table = Table("Runtime", "Kind", "Version", "Executable")
    for info in sorted(installed_runtimes().values(), key=lambda r: r.runtime_id):
        table.add_row(info.runtime_id, info.kind, info.version or "-", str(info.executable or "(bootstrap)"))
    Console().print(table)
