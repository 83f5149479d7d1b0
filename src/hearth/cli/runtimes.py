"""`hearth runtimes`: which AWS runtime ids this host can run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hearth.cli.main import main
from hearth.runtimes.registry import (
    FALLBACK_ENV,
    NODE_IDS,
    PYTHON_IDS,
    fallback_mode,
    installed_runtimes,
    node_sdk_dir,
    node_sdk_version,
    runtime_for,
)


@main.command()
def runtimes() -> None:
    """List the runtimes installed on this host (and, with HEARTH_RUNTIME_FALLBACK=nearest, the
    runtime ids that run on a stand-in)."""
    table = Table("Runtime", "Kind", "Version", "Executable")
    for info in sorted(installed_runtimes().values(), key=lambda r: r.runtime_id):
        table.add_row(info.runtime_id, info.kind, info.version or "-", str(info.executable or "(bootstrap)"))
    if fallback_mode() == "nearest":
        for runtime_id in (*PYTHON_IDS, *NODE_IDS):
            stand_in = runtime_for(runtime_id)
            if runtime_id not in installed_runtimes() and stand_in is not None:
                table.add_row(runtime_id, stand_in.kind, f"runs on {stand_in.runtime_id} ({stand_in.version})",
                              str(stand_in.executable))
    Console().print(table)
    if fallback_mode() == "nearest":
        Console().print(f"{FALLBACK_ENV}=nearest: a runtime id this host lacks runs on the nearest installed "
                        "version of its language.")
    if any(info.kind == "nodejs" for info in installed_runtimes().values()):
        sdk = node_sdk_dir()
        if sdk is None:
            Console().print("AWS SDK for JavaScript v3: absent (./run setup installs it); Node.js functions "
                            "that import @aws-sdk/* fail unless they bring it.")
        else:
            Console().print(f"AWS SDK for JavaScript v3: {node_sdk_version()} at {sdk} (read-only in every "
                            "Node.js environment)")
