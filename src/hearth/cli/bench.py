"""`hearth bench`: run the benchmark suite and print figures next to their baselines and targets."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from hearth.cli.main import main

# (figure, target ratio, what it is compared with) — the promises of docs/specification.md.
TARGETS = [
    ("python_cold_ratio", 1.5, "cold start p50 / bare python start+import p50"),
    ("node_cold_ratio", 1.5, "cold start p50 / bare node start+require p50"),
    ("python_warm_ratio", 3.0, "warm invoke p50 / echo app round trip p50"),
    ("node_warm_ratio", 3.0, "warm invoke p50 / echo app round trip p50"),
]


@main.command()
@click.option("--runs", default=20, show_default=True, help="Cold starts (and bare starts) per language.")
@click.option("--warm-runs", default=300, show_default=True, help="Warm invocations per language.")
@click.option("--endpoint", default=None, help="Measure a running Hearth instead of starting one.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Write the JSON results here.")
def bench(runs: int, warm_runs: int, endpoint: str | None, output: Path | None) -> None:
    """Measure cold start and warm latency against same-run baselines."""
    from hearth.bench import latency

    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results["latency"] = latency.run(runs=runs, warm_runs=warm_runs, endpoint=endpoint)
    console = Console()
    figures = Table("figure", "p50 ms", "p99 ms", "n", title="Latency (end to end through the HTTP API)")
    for key, value in results["latency"].items():
        if isinstance(value, dict):
            figures.add_row(key, f"{value['p50']:.2f}", f"{value['p99']:.2f}", str(value["n"]))
    console.print(figures)
    ratios = Table("ratio", "measured", "target", "met", "meaning", title="Against same-run baselines")
    for key, target, meaning in TARGETS:
        measured = results["latency"].get(key)
        if measured is None:
            continue
        ratios.add_row(key, f"{measured:.2f}", f"<= {target}", "yes" if measured <= target else "NO", meaning)
    console.print(ratios)
    text = json.dumps(results, indent=2)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        console.print(f"results written to {output}")
