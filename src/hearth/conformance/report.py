"""The conformance table and JSON summary: counts per service and test file, the pass rate among
judgeable tests, the reasons tests could not be judged, and what Hearth lacked.

It only formats `results.CaseResult`s; it never runs or classifies anything.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hearth.conformance.results import CaseResult


@dataclass
class FileSummary:
    service: str
    file: str
    passed: int = 0
    differs: int = 0
    blocked: int = 0
    not_judgeable: int = 0
    not_judgeable_reasons: Counter[str] = field(default_factory=Counter)
    missing: Counter[str] = field(default_factory=Counter)

    @property
    def judgeable(self) -> int:
        return self.passed + self.differs + self.blocked

    @property
    def rate(self) -> float | None:
        return self.passed / self.judgeable if self.judgeable else None

    def add(self, result: CaseResult) -> None:
        if result.verdict == "passed":
            self.passed += 1
        elif result.verdict == "differs":
            self.differs += 1
        elif result.verdict == "blocked":
            self.blocked += 1
            self.missing[result.reason] += 1
        else:
            self.not_judgeable += 1
            self.not_judgeable_reasons[result.reason] += 1


def summarize(results_by_service: dict[str, list[CaseResult]]) -> list[FileSummary]:
    """One summary per (service, test file), in the order the files first appear."""
    summaries: dict[tuple[str, str], FileSummary] = {}
    for service, results in results_by_service.items():
        for result in results:
            key = (service, result.file)
            if key not in summaries:
                summaries[key] = FileSummary(service=service, file=result.file)
            summaries[key].add(result)
    return list(summaries.values())


def _total(service: str, rows: list[FileSummary]) -> FileSummary:
    total = FileSummary(service=service, file="(all)")
    for row in rows:
        total.passed += row.passed
        total.differs += row.differs
        total.blocked += row.blocked
        total.not_judgeable += row.not_judgeable
        total.not_judgeable_reasons.update(row.not_judgeable_reasons)
        total.missing.update(row.missing)
    return total


def _rate(summary: FileSummary) -> str:
    return "—" if summary.rate is None else f"{100 * summary.rate:.1f} %"


def table(summaries: list[FileSummary]) -> str:
    """A plain-text table per service (a row per file and a total), then the reasons and what was missing."""
    lines: list[str] = []
    header = f"{'test file':<48} {'passed':>6} {'differs':>7} {'blocked':>7} {'not judg.':>9} {'rate':>8}"
    for service in dict.fromkeys(s.service for s in summaries):
        rows = [s for s in summaries if s.service == service]
        lines += ["", f"== {service}", header]
        for row in [*rows, _total(service, rows)] if len(rows) > 1 else rows:
            name = row.file.rsplit("/", 1)[-1]
            lines.append(f"{name:<48} {row.passed:>6} {row.differs:>7} {row.blocked:>7} {row.not_judgeable:>9} "
                         f"{_rate(row):>8}")
        total = _total(service, rows)
        if total.not_judgeable_reasons:
            lines.append("  not judgeable here:")
            lines += [f"    {count:>4}  {reason}" for reason, count in total.not_judgeable_reasons.most_common()]
        if total.missing:
            lines.append("  blocked by (missing operation or service):")
            lines += [f"    {count:>4}  {what}" for what, count in total.missing.most_common()]
    return "\n".join(lines).lstrip("\n")


def summary_json(summaries: list[FileSummary], results_by_service: dict[str, list[CaseResult]],
                 meta: dict[str, Any]) -> dict[str, Any]:
    """The machine-readable summary: meta (date, endpoint, python…), rows, and every test's verdict."""
    def row(s: FileSummary) -> dict[str, Any]:
        return {
            "service": s.service, "file": s.file, "passed": s.passed, "differs": s.differs,
            "blocked": s.blocked, "not_judgeable": s.not_judgeable, "judgeable": s.judgeable,
            "rate": None if s.rate is None else round(s.rate, 4),
            "not_judgeable_reasons": dict(s.not_judgeable_reasons), "missing": dict(s.missing),
        }
    services = {}
    for service in dict.fromkeys(s.service for s in summaries):
        services[service] = row(_total(service, [s for s in summaries if s.service == service]))
    return {
        **meta,
        "services": services,
        "files": [row(s) for s in summaries],
        "tests": [
            {"service": service, "file": r.file, "test": r.test, "verdict": r.verdict, "reason": r.reason}
            for service, results in results_by_service.items() for r in results
        ],
    }
