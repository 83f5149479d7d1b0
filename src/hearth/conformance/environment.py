"""The Python ≥ 3.12 virtualenv LocalStack's test framework runs in, built once and re-used.

It lives in `<repo>/.conformance/venv` (gitignored). A stamp file holds a hash of what was installed
(the requirements and the constraints); when they change, the environment is built again from scratch.

What is installed, and why not `localstack-core[test]` as LocalStack's own README says:
- `localstack-core[test]==2026.3.0` pulls in LocalStack's whole runtime (moto with every service, the
  AWS CDK, Java bridges): ~900 MB and ~2 minutes to install. The tests need a fraction of it: the
  framework's fixtures (`localstack-core[base-runtime]`, `jinja2`, `moto-ext` for its id generator), the
  snapshot library and pytest's plugins. That installs in under a minute, which is what lets CI run a part.
- The shared `constraints.txt` pins `awscli`, `boto3`, `botocore` and `s3transfer` one release behind the
  versions `localstack-core==2026.3.0` itself pins exactly, so pip cannot satisfy both: those four are
  dropped from the constraints and LocalStack's own pins apply. Every other pin is kept.

It never installs into Hearth's own environment and never touches the shared tests.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

LOCALSTACK = "localstack-core[base-runtime]==2026.3.0"
REQUIREMENTS = [
    LOCALSTACK,
    "jinja2",                 # localstack.testing's CloudFormation helpers, imported by its fixtures
    "moto-ext",               # localstack.utils.id_generator
    "pytest",
    "localstack-snapshot",    # the snapshot fixture that compares answers with AWS's recordings
    "pytest-httpserver",      # fixtures of the Lambda and SNS tests
    "pytest-rerunfailures",
    "json5",
    "httpx[http2]",
    "websocket-client",
    "pyotp",
    "pymongo",                # its `bson`: DynamoDB's tests import LocalStack's dynamodbstreams_api, which needs it
    "crontab",                # localstack.services.events.scheduler, imported by the EventBridge tests
]
# Pinned by localstack-core==2026.3.0 itself, at other versions than the shared constraints.
_DROPPED_PINS = ("awscli", "boto3", "botocore", "s3transfer")
MIN_PYTHON = (3, 12)


class SetupFailed(RuntimeError):
    """The environment could not be found or built (no Python ≥ 3.12, pip failed)."""


def find_python() -> Path:
    """A Python ≥ 3.12 interpreter: $HEARTH_CONFORMANCE_PYTHON, pyenv's versions, or python3.1x on PATH."""
    candidates: list[Path] = []
    if os.environ.get("HEARTH_CONFORMANCE_PYTHON"):
        candidates.append(Path(os.environ["HEARTH_CONFORMANCE_PYTHON"]))
    if sys.version_info >= MIN_PYTHON:
        candidates.append(Path(sys.executable))
    for root in (Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser(), Path("/root/.pyenv")):
        versions = root / "versions"
        if versions.is_dir():
            # Newest first: 3.13 before 3.12.
            for version in sorted(versions.iterdir(), key=lambda p: _version_key(p.name), reverse=True):
                candidates.append(version / "bin" / "python3")
    for name in ("python3.13", "python3.12", "python3.14", "python3"):
        found = shutil.which(name)
        if found:
            candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and _version_of(candidate) >= MIN_PYTHON:
            return candidate
    raise SetupFailed("LocalStack's test framework needs Python ≥ 3.12 and none was found "
                            "(set HEARTH_CONFORMANCE_PYTHON to one)")


def ensure(venv: Path, constraints: Path, log: Path) -> Path:
    """The environment's interpreter, building the environment first if it is missing or stale."""
    filtered = _filtered_constraints(constraints)
    stamp = venv / ".hearth-conformance"
    want = hashlib.sha256(("\n".join(REQUIREMENTS) + "\n" + filtered).encode()).hexdigest()
    python = venv / "bin" / "python"
    if python.is_file() and stamp.is_file() and stamp.read_text().strip() == want:
        return python
    if venv.exists():
        shutil.rmtree(venv)
    base = find_python()
    print(f"conformance: building {venv} with {base} (once; about a minute)", file=sys.stderr, flush=True)
    _run([str(base), "-m", "venv", str(venv)], log)
    pinned = venv / "constraints.txt"
    pinned.write_text(filtered)
    _run([str(python), "-m", "pip", "install", "--quiet", "-c", str(pinned), *REQUIREMENTS], log)
    stamp.write_text(want + "\n")
    return python


def _filtered_constraints(constraints: Path) -> str:
    lines = []
    for line in constraints.read_text().splitlines():
        name = line.split("==", 1)[0].strip().lower()
        if name not in _DROPPED_PINS:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _run(argv: list[str], log: Path) -> None:
    with log.open("a") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise SetupFailed(f"{' '.join(argv[:4])}… failed ({done.returncode}); see {log}")


def _version_of(python: Path) -> tuple[int, int]:
    try:
        out = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30, check=False).stdout.split()
        return (int(out[0]), int(out[1]))
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return (0, 0)


def _version_key(name: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (0,)
