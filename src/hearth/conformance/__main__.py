"""`python -m hearth.conformance [SERVICE…] [-k EXPR] [--ci]`: measure Hearth against LocalStack's
AWS-validated tests and print the table (see the package docstring).

SERVICE is a folder of the tests (`lambda`, `sqs`, `sns`, `kinesis`, `events`, `logs`, …; `lambda` means
`lambda_`) or one test file in it (`lambda/test_lambda_api.py`). Without one, every service the server
says it serves. `--ci` runs the fixed part in `hearth.conformance.ci` and fails if any of it does not pass.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hearth.conformance import ci, environment, plugin
from hearth.conformance.report import summarize, summary_json, table
from hearth.conformance.results import CaseResult, read_junit
from hearth.conformance.server import PRIMARY, Server
from hearth.runtimes.registry import installed_runtimes

REPO = Path(__file__).resolve().parents[3]
SERVICES_DIR = Path("tests/aws/services")


def find_tests(explicit: str | None) -> Path:
    """The shared copy of LocalStack's tests: --tests, $HEARTH_CONFORMANCE_DIR, or `shared/conformance`
    beside the repository (`../shared`; from a git worktree under `wt/`, `../../shared`)."""
    candidates = [Path(explicit)] if explicit else []
    if os.environ.get("HEARTH_CONFORMANCE_DIR"):
        candidates.append(Path(os.environ["HEARTH_CONFORMANCE_DIR"]))
    candidates += [REPO.parent / "shared" / "conformance", REPO.parent.parent / "shared" / "conformance"]
    for candidate in candidates:
        if (candidate / "localstack-tests" / SERVICES_DIR).is_dir():
            return candidate
    raise SystemExit("conformance: LocalStack's tests not found (looked in "
                     + ", ".join(str(c) for c in candidates) + "); pass --tests DIR")


def targets(names: list[str], served: list[str], tests: Path) -> dict[str, list[str]]:
    """Service name → the test paths (relative to the tests' root) to run for it."""
    root = tests / "localstack-tests"
    chosen: dict[str, list[str]] = {}
    for name in names or served:
        folder, _, file = name.partition("/")
        folder = "lambda_" if folder in ("lambda", "lambda_") else folder
        path = SERVICES_DIR / folder / file if file else SERVICES_DIR / folder
        if not (root / path).exists():
            if names:
                raise SystemExit(f"conformance: no tests for {name!r} ({root / path})")
            continue
        chosen.setdefault(folder.rstrip("_"), []).append(str(path))
    return chosen


def run_pytest(python: Path, scratch: Path, paths: list[str], junit: Path, log: Path, endpoint: str,
               extra: list[str], caller: dict[str, str] | None = None) -> None:
    """`caller`: the key the tests sign with (Server.caller: an IAM user's when served), else the root's."""
    key = caller or PRIMARY
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TEST_", "PYTEST_"))}
    env.update(
        TEST_SKIP_LOCALSTACK_START="1", TEST_AWS_ENDPOINT_URL=endpoint,
        # Where LocalStack's helpers build URLs to (function URLs by host name, `*.localhost`).
        LOCALSTACK_HOST=f"localhost:{endpoint.rsplit(':', 1)[1]}",
        # Where tests that sign raw HTTP requests send them (`config.internal_service_url()`: Kinesis' CBOR);
        # the plugin sets it after LocalStack's conftest has reset it to port 4566.
        HEARTH_CONFORMANCE_GATEWAY=f"127.0.0.1:{endpoint.rsplit(':', 1)[1]}",
        AWS_ACCESS_KEY_ID=key["access_key_id"], AWS_SECRET_ACCESS_KEY=key["secret_access_key"],
        TEST_AWS_ACCESS_KEY_ID=key["access_key_id"], TEST_AWS_SECRET_ACCESS_KEY=key["secret_access_key"],
        AWS_DEFAULT_REGION="us-east-1", PYTHONPATH=str(scratch), PYTHONDONTWRITEBYTECODE="1",
        # What the plugin judges runtime-parametrised tests by: the runtimes the server can run.
        HEARTH_CONFORMANCE_RUNTIMES=",".join(sorted(installed_runtimes())),
    )
    argv = [str(python), "-m", "pytest", "-p", "no:cacheprovider",
            # The conftest overrides four of LocalStack's fixtures, which this plugin would refuse.
            "-p", "no:localstack.testing.pytest.fixture_conflicts",
            "-p", "hearth_conformance_plugin", "-q", "-rN", f"--junitxml={junit}", *extra, *paths]
    with log.open("w") as out:
        subprocess.run(argv, cwd=scratch, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run conformance", description=__doc__.split("\n\n")[0])
    parser.add_argument("services", nargs="*", metavar="SERVICE", help="service folder or folder/test_file.py")
    parser.add_argument("-k", dest="expr", help="pytest -k expression, passed on")
    parser.add_argument("--ci", action="store_true", help="run the fixed CI part; fail unless all of it passes")
    parser.add_argument("--tests", help="the shared conformance folder (holds localstack-tests/)")
    parser.add_argument("--output", default=str(REPO / ".conformance" / "results"),
                        help="where the JUnit XML, logs, table and summary.json go")
    args = parser.parse_args(argv)

    started = time.monotonic()
    work = REPO / ".conformance"
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    tests = find_tests(args.tests)
    try:
        python = environment.ensure(work / "venv", tests / "constraints.txt", work / "venv-build.log")
    except environment.SetupFailed as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2
    built = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="hearth-conformance-") as tmp:
        scratch = Path(tmp) / "tests"
        # A copy: the framework may write next to the tests, and the shared folder is read-only in CI.
        shutil.copytree(tests / "localstack-tests", scratch)
        shutil.copy(plugin.__file__, scratch / "hearth_conformance_plugin.py")
        server = Server(Path(tmp) / "data", output / "server.log")
        health = server.start()
        served = sorted(health.get("services", {}))
        try:
            if args.ci:
                plan = {service: list(ids) for service, ids in ci.TESTS.items()}
            else:
                plan = targets(args.services, served, tests)
            results: dict[str, list[CaseResult]] = {}
            for service, paths in plan.items():
                shown = ", ".join(Path(p).name for p in paths) if len(paths) <= 5 else f"{len(paths)} tests"
                print(f"conformance: {service}: {shown}", file=sys.stderr, flush=True)
                junit = output / f"{service}.xml"
                junit.unlink(missing_ok=True)
                run_pytest(python, scratch, paths, junit, output / f"{service}.log", server.endpoint,
                           ["-k", args.expr] if args.expr else [], server.caller)
                if not junit.is_file():
                    print(f"conformance: {service}: pytest wrote no report; see {output / f'{service}.log'}",
                          file=sys.stderr)
                    return 2
                results[service] = read_junit(junit)
        finally:
            server.stop()

    summaries = summarize(results)
    text = table(summaries)
    print(text)
    (output / "table.txt").write_text(text + "\n")
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "served": served, "ci": args.ci, "k": args.expr,
        "environment_seconds": round(built - started, 1), "total_seconds": round(time.monotonic() - started, 1),
    }
    (output / "summary.json").write_text(json.dumps(summary_json(summaries, results, meta), indent=1) + "\n")
    print(f"\nJUnit XML, logs, table.txt and summary.json in {output} "
          f"({meta['total_seconds']:.0f} s, of which {meta['environment_seconds']:.0f} s for the environment)")
    if args.ci:
        bad = [(s, r) for s, rs in results.items() for r in rs if r.verdict != "passed"]
        missing = ci.missing(results)
        for service, result in bad:
            print(f"REGRESSION {service}: {result.test}: {result.verdict} {result.reason}", file=sys.stderr)
        for test in missing:
            print(f"REGRESSION: {test} did not run", file=sys.stderr)
        return 1 if bad or missing else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
