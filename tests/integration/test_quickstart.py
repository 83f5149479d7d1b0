"""The README's quick start, run exactly as it is printed, against a new server.

The commands are read from README.md (the shell block that follows `./run serve`) and run by bash with
the AWS CLI that the set-up installs in `.venv/bin`, as a new user would paste them, in a scratch
directory. The server is new too: its first function is the one a new user creates first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import ACCESS_KEY, SECRET_KEY, HearthServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent  # the virtualenv running the suite (./run set it up)


def quick_start_commands() -> str:
    """The second shell block of the README's Quick start section: the one a user pastes."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) >= 2, "the quick start has lost its commands"
    return str(blocks[1])


@pytest.fixture(scope="module")
def new_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    srv = HearthServer(tmp_path_factory.mktemp("quickstart") / "data", make_role=False)  # the README makes it
    srv.start()
    yield srv
    srv.stop()


def test_the_readme_quick_start_runs_as_printed(new_server: HearthServer, tmp_path: Path) -> None:
    if not (VENV / "bin" / "aws").exists():
        pytest.fail("the AWS CLI is missing from the virtualenv: ./run setup installs it")
    commands = quick_start_commands()
    assert "aws lambda wait function-active-v2 --function-name hello" in commands
    work = tmp_path / "clone"
    work.mkdir()
    (work / ".venv").symlink_to(VENV)  # `$PWD/.venv/bin` as in a fresh clone after ./run serve
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HEARTH_"))}
    # What the user's `hearth env` reads: this server's data directory, port and admin key.
    env.update(HEARTH_DATA_DIR=str(new_server.data_dir), HEARTH_PORT=str(new_server.port),
               HEARTH_ACCESS_KEY_ID=ACCESS_KEY, HEARTH_SECRET_ACCESS_KEY=SECRET_KEY, HOME=str(tmp_path))
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run([bash, "-euo", "pipefail", "-c", commands], cwd=work, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert json.loads((work / "out.json").read_text()) == {"hello": "hearth"}
    # `aws lambda invoke ... && cat out.json`: the CLI's answer, then the function's.
    assert '"StatusCode": 200' in done.stdout and '{"hello": "hearth"}' in done.stdout
