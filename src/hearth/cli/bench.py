"""`hearth bench`: run the benchmark suite and print figures next to their baselines and targets."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichBars
from rich.table import Table

from hearth.bench import report
from hearth.bench.check import Verdict, evaluate, missed
from hearth.bench.progress import Progress
from hearth.cli.main import main

SECTIONS = ("latency", "scale", "keepalive", "esm", "schedule", "apigw", "dynamodb", "s3", "deploy", "network",
            "soak")
# The soak runs only when asked; so do the services' sections (each starts servers of its own).
DEFAULT_SECTIONS = ("latency", "scale", "keepalive", "esm", "schedule")


class _RichProgress(Progress):
    """Progress on the terminal: one bar per phase of a section, the finished ones left on screen."""

    def __init__(self, bars: RichBars) -> None:
        self._bars = bars

    def phase(self, description: str, total: int) -> Callable[[int], None]:
        task = self._bars.add_task(description, total=total)

        def advance(steps: int = 1) -> None:
            self._bars.advance(task, steps)

        return advance


@main.command()
@click.option("--runs", default=20, show_default=True, help="Cold starts (and bare starts) per language.")
@click.option("--warm-runs", default=300, show_default=True, help="Warm invocations per language and memory size.")
@click.option("--endpoint", default=None, help="Measure a running Hearth instead of starting one.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Write the JSON results here.")
@click.option("--html", "html_path", type=click.Path(path_type=Path), default=None,
              help="Write an HTML report (latency distributions plotted with the optional matplotlib) here.")
@click.option("--section", "sections", multiple=True, type=click.Choice(SECTIONS),
              help="Run only these sections (repeatable; default: all but soak).")
@click.option("--seconds", default=2.0, show_default=True, help="Duration of each throughput measurement.")
@click.option("--burst", "burst_size", default=100, show_default=True, help="Concurrent invocations in the burst.")
@click.option("--minutes", default=30.0, show_default=True, help="Duration of the soak section.")
@click.option("--check", is_flag=True, help="Exit with status 1 when a promise of docs/specification.md is missed.")
def bench(runs: int, warm_runs: int, endpoint: str | None, output: Path | None, html_path: Path | None,
          sections: tuple[str, ...], seconds: float, burst_size: int, minutes: float, check: bool) -> None:
    """Measure latency, throughput, scale-out, density and keep-alive against baselines and targets."""
    chosen = sections or DEFAULT_SECTIONS
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    console = Console()
    with RichBars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bars:
        progress = _RichProgress(bars)
        if "latency" in chosen:
            _latency(console, results, runs, warm_runs, endpoint, progress)
        if "scale" in chosen:
            _scale(console, results, seconds, burst_size, progress)
        if "keepalive" in chosen:
            _keepalive(console, results)
        if "esm" in chosen:
            _esm(console, results, progress)
        if "schedule" in chosen:
            _schedule(console, results)
        if "apigw" in chosen:
            _apigw(console, results, warm_runs, seconds)
        if "dynamodb" in chosen:
            _dynamodb(console, results)
        if "s3" in chosen:
            _s3(console, results, seconds)
        if "deploy" in chosen:
            _deploy(console, results)
        if "network" in chosen:
            _network(console, results, runs, progress)
        if "soak" in chosen:
            _soak(console, results, minutes, progress)
    verdicts = evaluate(results)
    _print_verdicts(console, verdicts)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2))
        console.print(f"results written to {output}")
    if html_path:
        report.write(results, html_path)
        console.print(f"report written to {html_path}")
    if check and missed(verdicts):
        console.print(f"[red]{len(missed(verdicts))} promise(s) missed[/red]")
        raise SystemExit(1)


def _print_verdicts(console: Console, verdicts: list[Verdict]) -> None:
    table = Table("figure", "measured", "target", "met", title="Promises of docs/specification.md (see --html)")
    for v in verdicts:
        if v.met is None:
            continue
        table.add_row(f"{v.promise.section}: {v.promise.figure}", f"{v.measured:.2f}",
                      f"{v.promise.op} {v.promise.target:g}", "yes" if v.met else "[red]NO[/red]")
    if table.row_count:
        console.print(table)


def _latency(console: Console, results: dict[str, Any], runs: int, warm_runs: int, endpoint: str | None,
             progress: Progress) -> None:
    from hearth.bench import latency

    results["latency"] = latency.run(runs=runs, warm_runs=warm_runs, endpoint=endpoint, progress=progress)
    figures = Table("figure", "p50 ms", "p99 ms", "n",
                    title="Latency (raw signed HTTP client; *_boto3_* through boto3)")
    for key, value in results["latency"].items():
        if isinstance(value, dict) and "p50" in value:
            figures.add_row(key, f"{value['p50']:.2f}", f"{value['p99']:.2f}", str(value["n"]))
    console.print(figures)
    ratios = Table("ratio", "measured", title="Ratios against same-run baselines")
    for key, value in results["latency"].items():
        if key.endswith("_ratio") and isinstance(value, float):
            ratios.add_row(key, f"{value:.2f}")
    console.print(ratios)


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def _scale(console: Console, results: dict[str, Any], seconds: float, burst_size: int, progress: Progress) -> None:
    from hearth.bench import scale

    r = results["scale"] = scale.run(seconds=seconds, burst_size=burst_size, progress=progress)
    table = Table("figure", "measured", "baseline / target", "met", title="Throughput, scale-out, density")
    for concurrency, row in r["throughput"].items():
        target = ">= 0.50 of echo" if concurrency == "16" else "(informative)"
        table.add_row(f"throughput c={concurrency}", f"{row['hearth_rps']:.0f}/s ({row['ratio']:.2f} of echo)",
                      f"echo {row['echo_rps']:.0f}/s; {target}", _met(row["ratio"] >= 0.5) if concurrency == "16"
                      else "")
    out = r["scale_out"]
    table.add_row("scale-out", f"{out['environments_per_s']:.0f} env/s ({out['new_environments']:.0f} new, "
                  f"{out['errors']:.0f} errors, last started after {out['last_started_s']:.2f} s)", ">= 200 env/s",
                  _met(out["environments_per_s"] >= 200))
    density = r["density"]
    if density.get("environments_measured"):
        table.add_row("density (PSS / idle env)", f"{density['pss_mib_p50']:.1f} MiB "
                      f"({density['fit_in_2gib']} fit in 2 GiB)", "<= 10 MiB", _met(density["pss_mib_p50"] <= 10))
    console.print(table)


def _keepalive(console: Console, results: dict[str, Any]) -> None:
    from hearth.bench import keepalive

    r = results["keepalive"] = keepalive.run()
    trace = r["trace"]
    table = Table("policy", "cold-start rate", "cold starts", "idle env-hours",
                  title=f"Keep-alive replay ({trace['invocations']} invocations of {trace['functions']} functions "
                        f"over {trace['hours']:.0f} simulated hours)")
    for row in r["policies"]:
        table.add_row(row["policy"], f"{row['cold_start_rate'] * 100:.2f} %", str(row["cold_starts"]),
                      f"{row['idle_env_seconds'] / 3600:.1f}")
    console.print(table)


def _schedule(console: Console, results: dict[str, Any]) -> None:
    from hearth.bench import schedule

    r = results["schedule"] = schedule.run()
    table = Table("figure", "measured", title=f"Schedule firing accuracy ({r['rules']} rate(1 minute) rules, "
                                              f"clock x{r['clock_scale']:.0f}, {r['firings']} firings)")
    table.add_row("delay after the due time", f"p50 {r['delay_p50_ms']:.1f} ms, p99 {r['delay_p99_ms']:.1f} ms, "
                                              f"max {r['delay_max_ms']:.1f} ms")
    table.add_row("fired early", str(r["early_firings"]))
    console.print(table)


def _esm(console: Console, results: dict[str, Any], progress: Progress) -> None:
    from hearth.bench import esm

    r = results["esm"] = esm.run(progress=progress)
    table = Table("figure", "measured", title="Event source mappings (no-op function, warm)")
    for row in r["queue_throughput"]:
        table.add_row(f"queue throughput, batch {row['batch_size']}",
                      f"{row['messages_per_s']:.0f} msg/s ({row['messages']} in {row['seconds']:.2f} s)")
    lat = r["send_to_handler"]
    table.add_row("SendMessage -> handler", f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms (n={lat['n']})")
    st = r["stream"]
    table.add_row("stream, one shard", f"{st['records_per_s_per_shard']:.0f} records/s (batch {st['batch_size']})")
    console.print(table)


def _soak(console: Console, results: dict[str, Any], minutes: float, progress: Progress) -> None:
    from hearth.bench import soak

    r = results["soak"] = soak.run(minutes=minutes, progress=progress)
    table = Table("figure", "measured", title=f"Soak ({r['minutes']:.1f} min, restart with kill -9 at "
                                              f"{r['restart_at_s']:.0f} s)")
    for key in ("sync_invokes", "async_invokes", "messages_sent", "records_put", "errors", "errors_in_restart",
                "lost", "duplicates", "rss_growth_mib", "fd_growth", "task_growth", "thread_growth"):
        table.add_row(key, f"{r.get(key)}")
    console.print(table)


def _apigw(console: Console, results: dict[str, Any], warm_runs: int, seconds: float) -> None:
    from hearth.bench import apigw

    r = results["apigw"] = apigw.run(warm_runs=warm_runs, seconds=seconds)
    table = Table("figure", "p50 ms", "p99 ms", "vs echo p50", "met", "vs URL p50", "req/s at c=16",
                  title="API Gateway (warm, no-op function, raw keep-alive HTTP client)")
    for kind, label in (("echo", "ASGI echo baseline"), ("url", "function URL (same function)"),
                        ("http", "HTTP API (payload 2.0)"), ("rest", "REST API (AWS_PROXY)")):
        row = r[f"{kind}_ms"]
        ratio = r.get(f"{kind}_ratio")
        vs_url = r.get(f"{kind}_vs_url")
        table.add_row(label, f"{row['p50']:.2f}", f"{row['p99']:.2f}", "" if ratio is None else f"{ratio:.2f}",
                      "" if ratio is None else _met(ratio <= r["target_ratio"]),
                      "" if vs_url is None else f"{vs_url:.2f}", f"{r['rps_c16'][kind]:.0f}")
    console.print(table)


def _dynamodb(console: Console, results: dict[str, Any]) -> None:
    from hearth.bench import dynamodb

    r = results["dynamodb"] = dynamodb.run()
    table = Table("figure", "p50 ms", "p99 ms", "ops/s", "against echo", title="DynamoDB (raw signed HTTP client)")
    for key in ("echo", "put_item", "get_item"):
        row = r[key]
        ratio = r.get(f"{key}_ratio")
        table.add_row(key, f"{row['p50']:.2f}", f"{row['p99']:.2f}", f"{row['ops_per_s']:.0f}",
                      f"{ratio:.2f} (target <= 2.0, {_met(ratio <= 2.0)})" if ratio is not None else "")
    q = r["query_1000"]
    table.add_row(f"Query of {q['items']:.0f} items", f"{q['p50']:.2f}", f"{q['p99']:.2f}", f"{q['ops_per_s']:.0f}", "")
    s = r["write_to_handler"]
    if s.get("n"):
        table.add_row("PutItem -> stream -> handler", f"{s['p50']:.1f}", f"{s['p99']:.1f}", "", f"n={s['n']:.0f}")
    console.print(table)


def _s3(console: Console, results: dict[str, Any], seconds: float) -> None:
    from hearth.bench import s3

    r = results["s3"] = s3.run(seconds=seconds)
    large, small, rss = r["large"], r["small"], r["rss"]
    table = Table("figure", "measured", "baseline / target", "met", title="S3 (presigned requests, one server)")
    table.add_row(f"PUT {large['mib']} MiB", f"{large['put_mib_s']:.0f} MiB/s ({large['put_ratio']:.2f} of dd)",
                  f"dd {large['dd_write_mib_s']:.0f} MiB/s (fsync); >= 0.5", _met(large["put_ratio"] >= 0.5))
    table.add_row(f"GET {large['mib']} MiB", f"{large['get_mib_s']:.0f} MiB/s ({large['get_ratio']:.2f} of dd)",
                  f"dd {large['dd_read_mib_s']:.0f} MiB/s; >= 0.5", _met(large["get_ratio"] >= 0.5))
    table.add_row("PUT 4 KiB", f"{small['put_ops_s']:.0f}/s ({small['put_ratio']:.2f} of echo)",
                  f"echo {small['echo_ops_s']:.0f}/s; >= 0.3", _met(small["put_ratio"] >= 0.3))
    table.add_row("GET 4 KiB", f"{small['get_ops_s']:.0f}/s ({small['get_ratio']:.2f} of echo)",
                  f"echo {small['echo_ops_s']:.0f}/s; >= 0.3", _met(small["get_ratio"] >= 0.3))
    table.add_row(f"peak RSS moving {rss['mib_moved']} MiB", f"+{rss['peak_above_idle_mib']:.0f} MiB above idle "
                  f"({rss['peak_rss_mib']:.0f} MiB peak)", "<= 100 MiB above idle",
                  _met(rss["peak_above_idle_mib"] <= 100))
    console.print(table)


def _network(console: Console, results: dict[str, Any], runs: int, progress: Progress) -> None:
    from hearth.bench import network

    r = results["network"] = network.run(runs=runs, progress=progress)
    if "skipped" in r:
        console.print(f"network: not measured: {r['skipped']}")
        return
    table = Table("figure", "p50 ms", "p99 ms", title="cold starts with sandbox networking (Python, 1,769 MB)")
    for label, key in (("no VpcConfig (egress bridge)", "python_egress_cold_start_ms"),
                       ("VpcConfig (subnet on a host bridge)", "python_vpc_cold_start_ms")):
        table.add_row(label, f"{r[key]['p50']:.1f}", f"{r[key]['p99']:.1f}")
    table.add_row("VPC / no VPC", f"{r['vpc_cold_ratio']:.2f}", "")
    table.add_row("pool misses", str(r["pool_misses"]), "")
    console.print(table)


def _deploy(console: Console, results: dict[str, Any]) -> None:
    from hearth.bench import deploy

    r = results["deploy"] = deploy.run()
    if "skipped" in r:
        console.print(f"deploy: not measured: {r['skipped']}")
        return
    table = Table("figure", "seconds", "per resource", title=f"sam deploy of {r['application']} "
                  f"({r['resources']} resources)")
    table.add_row("sam deploy, start to end", f"{r['sam_deploy_s']:.1f}", f"{r['sam_deploy_s_per_resource']:.2f}")
    table.add_row("CloudFormation: CREATE_IN_PROGRESS to CREATE_COMPLETE", f"{r['create_s']:.1f}",
                  f"{r['create_s_per_resource']:.2f}")
    console.print(table)
