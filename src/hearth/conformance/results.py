"""The verdict on each test of a conformance run, read from pytest's JUnit XML.

Four verdicts, so that the pass rate measures Hearth's answers and nothing else:

- `passed`;
- `blocked`: the test needed an operation or a service Hearth does not serve (UnknownOperationException,
  UnknownServiceException, a 501, a query `InvalidAction`, a body an XML client cannot parse because
  Hearth answered "not served" in JSON, or no connection at all). It counts against Hearth;
- `differs`: any other failure or error — Hearth answered, and differently from AWS;
- `not_judgeable`: skipped by our plugin (the reason it gives) or by LocalStack's own markers, or failed
  only because this machine has no Docker or no toolchain to build the test's function.

Judgeable = passed + differs + blocked; the rate is passed / judgeable. This module never runs
anything: it reads a file and classifies, so it is tested with hand-written XML.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hearth.conformance.plugin import NOT_JUDGEABLE

Verdict = Literal["passed", "differs", "blocked", "not_judgeable"]

# What a missing operation or service looks like from the test's side. Each pattern names what is
# missing in its first group when it can.
_BLOCKED = [
    re.compile(r"\(UnknownOperationException\) when calling\s+the\s+(\w+)\s+operation"),
    re.compile(r"\(UnknownServiceException\) when calling\s+the\s+(\w+)\s+operation"),
    # (in a botocore parser error the body is shown as bytes, its quotes escaped)
    re.compile(r"The service \\?'([\w-]+)\\?' is not served by this Hearth endpoint"),
    re.compile(r"\(InvalidAction\) when calling\s+the\s+(\w+)\s+operation"),
    re.compile(r"\(501\) when calling\s+the\s+(\w+)\s+operation"),
    # A rest-xml client (S3, Route 53…) cannot parse Hearth's JSON "not served" answer: botocore is left
    # with the bare status line.
    re.compile(r"An error occurred \(400\) when calling\s+the\s+(\w+)\s+operation: Bad Request"),
    re.compile(r"Could not connect to the endpoint URL: \"([^\"]+)\""),
]

# Failures that say nothing about Hearth: the machine lacks what the test needs to even start.
_ENVIRONMENT = [
    (re.compile(r"DockerNotAvailable|Docker not available"), "needs Docker"),
    (re.compile(r"Failed to build multiruntime scenario='\w+' for runtime=<Runtime\.(\w+)"),
     "builds its function with a toolchain this machine lacks"),
]


@dataclass(frozen=True)
class CaseResult:
    """One test's verdict. `reason` is what is missing (blocked), why not judgeable, or the first line
    of the difference."""

    file: str
    test: str
    verdict: Verdict
    reason: str = ""


def file_of(classname: str) -> str:
    """`tests.aws.services.lambda_.test_lambda_api.TestX` -> `tests/aws/services/lambda_/test_lambda_api.py`."""
    parts = classname.split(".")
    for index, part in enumerate(parts):
        if part.startswith("test_"):
            return "/".join(parts[: index + 1]) + ".py"
    return "/".join(parts) + ".py"


def classify(skipped: str | None, problems: list[str]) -> tuple[Verdict, str]:
    """The verdict on one test from its skip message (if skipped) and its failure/error texts."""
    if problems:
        text = "\n".join(problems)
        for pattern, reason in _ENVIRONMENT:
            if pattern.search(text):
                return "not_judgeable", reason
        for pattern in _BLOCKED:
            match = pattern.search(text)
            if match:
                return "blocked", match.group(1)
        return "differs", _first_line(problems[0])
    if skipped is not None:
        if skipped.startswith(NOT_JUDGEABLE):
            return "not_judgeable", skipped[len(NOT_JUDGEABLE):]
        return "not_judgeable", f"skipped by LocalStack: {skipped}" if skipped else "skipped by LocalStack"
    return "passed", ""


def read_junit(path: Path) -> list[CaseResult]:
    """Every test case of a JUnit XML file, with its verdict. One entry per test (a test whose teardown
    also failed is one test, judged on all its texts)."""
    tree = ET.parse(path)
    order: list[tuple[str, str]] = []
    skips: dict[tuple[str, str], str] = {}
    problems: dict[tuple[str, str], list[str]] = {}
    for case in tree.iter("testcase"):
        key = (file_of(case.get("classname", "")), _test_name(case))
        if key not in problems:
            order.append(key)
            problems[key] = []
        for child in case:
            if child.tag == "skipped":
                skips[key] = _skip_reason(child)
            elif child.tag in ("failure", "error"):
                problems[key].append(f"{child.get('message') or ''}\n{child.text or ''}")
    results = []
    for key in order:
        verdict, reason = classify(skips.get(key), problems[key])
        results.append(CaseResult(file=key[0], test=key[1], verdict=verdict, reason=reason))
    return results


def _test_name(case: ET.Element) -> str:
    cls = case.get("classname", "").split(".")
    name = case.get("name", "")
    # The class (if any) follows the module in classname: keep it, tests are named per class.
    return f"{cls[-1]}::{name}" if cls and not cls[-1].startswith("test_") else name


def _skip_reason(element: ET.Element) -> str:
    message = element.get("message") or ""
    # pytest writes "<path>:<line>: <reason>" for skips raised from a marker.
    match = re.match(r"^[^:]*:\d+: (.*)$", message, re.DOTALL)
    return (match.group(1) if match else message).strip()


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m|#x1B\[[0-9;]*m", "", line).strip()
        if line:
            return line[:200]
    return ""
