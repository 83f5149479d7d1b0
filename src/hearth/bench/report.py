"""The HTML report of one benchmark run: verdicts against the specification and latency distributions.

It owns turning a results dict into one self-contained HTML file. The plots are drawn by matplotlib (the
optional `bench` extra: `pip install 'hearth[bench]'`) as inline SVG, so the report opens anywhere
without network access or JavaScript. Why matplotlib and not plotly: plotly's interactive HTML carries
~3.5 MB of JavaScript per report (or a network fetch, which the hosts Hearth runs on often lack); an SVG
of an empirical distribution is a few tens of kilobytes. Without matplotlib the report still has every
figure and verdict, and says the plots were skipped. It never runs a benchmark.

Distributions come from `results[section]["distributions"]`: a list of
`{"title": str, "series": {name: [milliseconds, ...]}}`; each is drawn as empirical CDFs on a log axis,
one line per series, so a figure and its baseline are read side by side, tails included.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from hearth.bench.check import Verdict, evaluate


def _svg(title: str, series: dict[str, list[float]]) -> str:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    try:
        for name, samples in series.items():
            if not samples:
                continue
            ordered = sorted(samples)
            n = len(ordered)
            ax.step(ordered, [(i + 1) / n for i in range(n)], where="post", label=f"{name} (n={n})")
        ax.set_xscale("log")
        ax.set_xlabel("milliseconds (log)")
        ax.set_ylabel("fraction of calls ≤ x")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg")
    finally:
        plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg"):]  # drop the XML prologue: the SVG is inlined into HTML


def _series_svg(title: str, samples: list[dict[str, float]], keys: tuple[str, ...]) -> str:
    """Time series (one panel per key) of a soak's server samples, the restart showing as a drop."""
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(7.5, 2.6))
    try:
        for ax, key in zip(axes, keys, strict=True):
            ax.plot([s["t_s"] for s in samples], [s.get(key, 0.0) for s in samples], marker=".", linewidth=1)
            ax.set_title(key, fontsize=9)
            ax.set_xlabel("seconds", fontsize=8)
            ax.grid(True, alpha=0.3)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg")
    finally:
        plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg"):]


def _plots_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _verdict_rows(verdicts: list[Verdict]) -> str:
    rows = []
    for v in verdicts:
        met = {True: "yes", False: "NO", None: "not measured"}[v.met]
        measured = "—" if v.measured is None else f"{v.measured:.3f}"
        rows.append(f"<tr class='{met.replace(' ', '-')}'><td>{html.escape(v.promise.section)}</td>"
                    f"<td><code>{html.escape(v.promise.figure)}</code></td><td>{measured}</td>"
                    f"<td>{v.promise.op} {v.promise.target:g}</td><td>{met}</td>"
                    f"<td>{html.escape(v.promise.meaning)}</td></tr>")
    return "\n".join(rows)


def _without_samples(value: Any) -> Any:
    """The results as figures only: the raw samples are plotted, not listed."""
    if isinstance(value, dict):
        return {k: _without_samples(v) for k, v in value.items() if k not in ("samples", "distributions")}
    if isinstance(value, list):
        return [_without_samples(v) for v in value]
    return value


def render(results: dict[str, Any]) -> str:
    verdicts = evaluate(results)
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Hearth benchmark</title><style>",
             "body{font-family:sans-serif;max-width:60em;margin:1em auto}td,th{padding:2px 8px;text-align:left}"
             "tr.NO{background:#fdd}tr.yes{background:#dfd}tr.not-measured{color:#888}"
             "pre{background:#f6f6f6;padding:8px;overflow:auto}",
             "</style></head><body>",
             f"<h1>Hearth benchmark, {html.escape(str(results.get('started', '')))}</h1>",
             "<h2>Promises of docs/specification.md</h2><table><tr><th>section</th><th>figure</th>"
             "<th>measured</th><th>target</th><th>met</th><th>meaning</th></tr>",
             _verdict_rows(verdicts), "</table>"]
    plots = _plots_available()
    soak = results.get("soak")
    if isinstance(soak, dict) and soak.get("samples") and plots:
        parts.append("<h2>Soak: the server over time</h2>")
        parts.append(_series_svg("server process (kill -9 and restart half-way)", soak["samples"],
                                 ("rss_mib", "fds", "tasks")))
    for section, value in results.items():
        if not isinstance(value, dict) or not value.get("distributions"):
            continue
        parts.append(f"<h2>Distributions: {html.escape(section)}</h2>")
        if not plots:
            parts.append("<p>Plots skipped: matplotlib is not installed (<code>pip install 'hearth[bench]'</code>)."
                         "</p>")
            continue
        for dist in value["distributions"]:
            parts.append(_svg(str(dist["title"]), {str(k): list(v) for k, v in dist["series"].items()}))
    parts.append("<h2>All figures</h2><pre>")
    parts.append(html.escape(json.dumps(_without_samples(results), indent=2)))
    parts.append("</pre></body></html>")
    return "\n".join(parts)


def write(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(results))
